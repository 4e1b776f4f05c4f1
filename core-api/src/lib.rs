//! loco-api: the HTTP API server and the operator's one-shot commands, one module per
//! subcommand. `main.rs` parses the arguments and calls [`cli::run`]; everything else is
//! in the library crates (loco-spec, loco-render, loco-crypto, loco-db, loco-apply,
//! loco-deploy, loco-http, loco-telemetry). clap lives here, never in those crates.

pub mod cli;
pub mod flags;
pub mod output;

pub mod bootstrap;
pub mod clusters;
pub mod gc;
pub mod keys;
pub mod migrate;
pub mod platform;
pub mod render;
pub mod serve;
pub mod spec;
pub mod tokens;
