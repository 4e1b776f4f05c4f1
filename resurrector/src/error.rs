//! Why loco-resurrect stopped, with the next step and a documented exit code.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}; nothing was done")]
    Usage(String),

    #[error(
        "the loco database cannot be reached ({0}); nothing was done. Check DATABASE_URL and that Postgres runs, then run again"
    )]
    Database(String),

    #[error(
        "the key-encryption key cannot be used ({0}); nothing was done. Load the KEK loco-api runs with (LOCO_KEK_FILE or LOCO_KEK)"
    )]
    Kek(String),

    #[error("{0}")]
    Setup(String),

    #[error(
        "cluster {cluster}'s API server does not answer ({cause}); nothing was done. This provider (kubeconfig) cannot recreate a cluster: bring the control plane back, then run again"
    )]
    Unreachable { cluster: String, cause: String },

    #[error("{0}")]
    Refused(String),

    #[error(
        "another loco-resurrect acts on cluster {cluster} ({holder}); nothing was done. Wait for it to finish, or stop it"
    )]
    Locked { cluster: String, holder: String },

    #[error("{0}")]
    Failed(String),

    /// The diagnosis found the cluster not healthy (the report says why).
    #[error("cluster {0} is not healthy (see the report above)")]
    Unhealthy(String),

    /// The rebuild ran, and some apps are not Ready or could not be applied.
    #[error("{0}")]
    Incomplete(String),
}

impl Error {
    /// Stable snake_case name (metric label, event reason).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Database(_) => "database_unreachable",
            Error::Kek(_) => "kek_unusable",
            Error::Setup(_) => "setup_incomplete",
            Error::Unreachable { .. } => "cluster_unreachable",
            Error::Refused(_) => "guard_refused",
            Error::Locked { .. } => "cluster_locked",
            Error::Failed(_) => "rebuild_failed",
            Error::Unhealthy(_) => "cluster_unhealthy",
            Error::Incomplete(_) => "rebuild_incomplete",
        }
    }

    /// The exit codes of the README ("loco-resurrect exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Database(_) | Error::Kek(_) | Error::Setup(_) => 3,
            Error::Unreachable { .. } => 4,
            Error::Refused(_) | Error::Locked { .. } => 5,
            Error::Failed(_) | Error::Incomplete(_) => 6,
            Error::Unhealthy(_) => 8,
        }
    }
}

impl From<loco_db::DbError> for Error {
    fn from(e: loco_db::DbError) -> Self {
        match e {
            loco_db::DbError::Crypto(c) => Error::Kek(c.to_string()),
            loco_db::DbError::Connect { target, cause } => {
                Error::Database(format!("{target}: {cause}"))
            }
            loco_db::DbError::Corrupt(what) => Error::Failed(format!(
                "the database holds data loco did not write ({what}); nothing more was done. Restore the database or fix the row, then run again"
            )),
            other => {
                // Internal text (queries, drivers) goes to the log only.
                tracing::error!(error = %other, "database error");
                Error::Database(other.reason().to_owned())
            }
        }
    }
}

/// Prints the error (one line with its cause) and turns it into the exit code.
pub fn exit(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
