//! loco-core: the deploy core every loco binary shares.
//!
//! Postgres is the only source of truth; a cluster is a cache of it. The modules follow
//! DESIGN.md: `spec` (loco.toml), `db` (queries and transactions), `telemetry` (logs and
//! metrics shared by every binary), and later `crypto`, `render` (pure) and `apply`.

pub mod api;
pub mod apply;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod deploy;
pub mod exit;
pub mod gc;
pub mod ops;
pub mod render;
pub mod spec;
pub mod telemetry;

/// Returned by a command whose capability is planned but not built yet, so an operator
/// gets a plain answer instead of a silent no-op. Remove a use when the command is built.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{command}` is not built yet: it arrives with {planned}. Nothing was changed. See the README's Status section."
)]
pub struct NotBuiltYet {
    pub command: &'static str,
    pub planned: &'static str,
}
