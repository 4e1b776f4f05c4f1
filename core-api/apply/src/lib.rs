//! Apply: the one engine that writes render's objects to a cluster. Deploy, env change,
//! scale, sleep, wake, rollback and the resurrector's rebuild all come through here
//! (DESIGN.md "The one idea", "Apply").
//!
//! What it promises:
//! - **Server-side apply, field manager `loco`**, forcing conflicts: loco's revision is the
//!   truth for the fields loco renders. Phases run in [`Phase`](loco_render::Phase) order
//!   (a phase finishes before the next starts) with bounded concurrency inside a phase.
//! - **Never touches what loco does not own.** An existing object without
//!   `app.kubernetes.io/managed-by: loco` is neither changed nor deleted: apply refuses the
//!   whole app before writing anything ([`ApplyError::NotManagedByLoco`]), prune leaves it.
//! - **No change, no write.** Apply stamps each object with the annotation
//!   [`ANNOTATION_APPLIED_HASH`], a SHA-256 of the object as applied, and skips any object
//!   whose live annotation already carries the desired hash. Secrets are the exception in
//!   what is hashed: their `data`/`stringData` never enter the hash (a hash of a
//!   low-entropy value is a way to guess it); render's keyed data-hash annotation
//!   (`loco_render::ANNOTATION_DATA_HASH`) stands in for the data.
//! - **Secrets are never read.** loco-api's ServiceAccount has no `get`/`list` on Secrets,
//!   so their applied-hashes are recorded on the app's Deployment
//!   ([`ANNOTATION_APPLIED_SECRETS`], written after them) and their existence is asked by
//!   a dry-run create (409 AlreadyExists), which shows nothing of the live Secret. Their
//!   ownership is the API server's to enforce (the admission policy of
//!   core-api/rbac/loco-api.yaml): a refused write is [`ApplyError::NotManagedByLoco`],
//!   a refused prune leaves the Secret.
//! - **Reads are cheap and few.** One app: one metadata GET per object (a dry-run create
//!   per Secret), none at all when the app's namespace does not exist yet. Many apps
//!   ([`Applier::apply_many`]): one cluster-wide metadata LIST per kind, and the Secret
//!   probes.
//!
//! Limits, on purpose:
//! - A hand edit of a field loco owns is not detected by a no-change redeploy: the live
//!   annotation still matches, so nothing is written (a Secret's data included: it is
//!   never read). `ApplyConfig { force: true, .. }` re-applies everything regardless; the
//!   resurrector's rebuild uses it. A Secret deleted by hand is seen (the probe) and
//!   re-created.
//! - Ownership is checked when apply reads, not atomically with the write: an unlabelled
//!   object created in that moment would be taken over. Prune's deletes, which cannot be
//!   undone, carry a uid + resourceVersion precondition instead.

mod compare;
mod deploy;
mod diagnose;
mod engine;
mod error;
mod hash;
mod live;
mod namespace;
mod plan;
mod progress;
mod prune;
mod resource;
mod revert;
mod rollout;
mod write;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use compare::{AppComparison, Drift, LiveAppNamespace, ObjectState};
pub use deploy::{DeployReport, Previous};
pub use diagnose::{PodTrouble, PullFailure, trouble_of};
pub use engine::LiveRead;
pub use error::{ApplyError, DeployFailure};
pub use hash::{ANNOTATION_APPLIED_HASH, ANNOTATION_APPLIED_SECRETS, applied_hashes};
pub use progress::Progress;
pub use resource::{kube_resource, same_object};
pub use write::REPLICAS_HANDOVER_MANAGER;

use loco_render::ObjectRef;

/// The field manager of every loco write (apply, revert, rebuild).
pub const FIELD_MANAGER: &str = "loco";

/// How an [`Applier`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConfig {
    /// Most write (and read) requests in flight at once, per call.
    pub concurrency: usize,
    /// How long [`Applier::wait_rollout`] waits for a rollout.
    pub rollout_deadline: Duration,
    /// How long [`Applier::delete_app`] (and the revert of a failed first deploy) waits for
    /// a namespace to be gone. Pods get their termination grace period (30 s by default)
    /// first, so this is longer than a rollout usually takes.
    pub delete_deadline: Duration,
    /// Re-apply every object, even those whose applied-hash matches. The rebuild uses it.
    pub force: bool,
}

impl Default for ApplyConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            rollout_deadline: Duration::from_secs(300),
            delete_deadline: Duration::from_secs(180),
            force: false,
        }
    }
}

/// Asked right before every write an [`Applier`] sends: a deploy worker whose claim of
/// the deployment was taken over must stop before its next cluster write.
pub trait Fence: Send + Sync {
    /// `Err(why)` when no more writes may be sent.
    fn check(&self) -> Result<(), String>;
}

/// The apply engine for one cluster. Cheap to clone: clones share the client, the
/// write counter and the fence.
#[derive(Clone)]
pub struct Applier {
    client: kube::Client,
    config: ApplyConfig,
    writes: Arc<AtomicU64>,
    fence: Option<Arc<dyn Fence>>,
}

impl fmt::Debug for Applier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applier")
            .field("config", &self.config)
            .field("writes", &self.writes())
            .finish_non_exhaustive()
    }
}

/// What an apply (and prune) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Objects written (server-side applied), in apply order.
    pub written: Vec<ObjectRef>,
    /// Objects skipped because the live object already matched.
    pub unchanged: usize,
    /// Objects deleted by prune.
    pub pruned: Vec<ObjectRef>,
    /// The part of `written` that did not exist before: what a failed first deploy deletes.
    pub created: Vec<ObjectRef>,
    /// Objects prune would have deleted but left alone: they lack loco's managed-by label.
    pub kept_unmanaged: Vec<ObjectRef>,
}

impl ApplyReport {
    fn absorb(&mut self, other: ApplyReport) {
        self.written.extend(other.written);
        self.unchanged += other.unchanged;
        self.pruned.extend(other.pruned);
        self.created.extend(other.created);
        self.kept_unmanaged.extend(other.kept_unmanaged);
    }
}

impl Applier {
    pub fn new(client: kube::Client, config: ApplyConfig) -> Self {
        Self {
            client,
            config: ApplyConfig {
                concurrency: config.concurrency.max(1),
                ..config
            },
            writes: Arc::new(AtomicU64::new(0)),
            fence: None,
        }
    }

    /// Checks `fence` before every write.
    pub fn with_fence(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    pub fn config(&self) -> &ApplyConfig {
        &self.config
    }

    /// Write requests (PATCH, POST, DELETE) this Applier and its clones have sent, failed
    /// ones included. Tests and benchmarks count with it.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Checks the fence and counts one write request; called right before it is sent.
    fn before_write(&self, object: &ObjectRef) -> Result<(), ApplyError> {
        if let Some(fence) = &self.fence {
            fence.check().map_err(|why| ApplyError::Fenced {
                object: Box::new(object.clone()),
                why,
            })?;
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
