//! loco-preflight: checks that a cluster can take a deploy, a wake or a rebuild.
//!
//! A leaf library below the deploy core: loco-deploy, the sleeper's wake and the
//! resurrector's rebuild call it through [`CapacityGate`], so it depends on no other
//! loco crate.
//!
//! - [`model`]: the plain data of a question ([`Request`]) and of a cluster.
//! - [`convert`]: Kubernetes objects to that data (the scheduler's pod request rules).
//! - [`placement`]: the pure simulation that gives a [`Verdict`].
//! - [`gate`]: [`Cache`] (watches, for daemons), [`ListGate`] (one LIST, for the CLI),
//!   [`FixedGate`] (a literal cluster, for callers' tests).

pub mod cli;
pub mod convert;
pub mod error;
pub mod gate;
pub mod model;
pub mod placement;
pub mod usage;

/// The quantity parser shared with loco.toml validation (crate loco-quantity).
pub use loco_quantity as quantity;

pub use cli::{Args, init_logging, run};
pub use error::Error;
pub use gate::{Cache, CapacityGate, FixedGate, ListGate};
pub use model::{
    ComponentInfo, ComponentSelector, ComponentsState, NodeInfo, PodUsage, Purpose, Request,
    Resources, Rollout, Taint, TaintEffect, Toleration, TolerationOperator,
};
pub use placement::{ChangeReport, Failure, NodeProblem, NodeReport, Verdict, evaluate};
