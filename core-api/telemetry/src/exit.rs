//! How every loco binary ends: exit 0, or one `error: ...` line with the whole cause
//! chain and exit 1. Never a backtrace or a Debug dump: an operator at 3 a.m. needs the
//! message and its next step, which the error types carry.

use std::process::ExitCode;

/// Turns the result of a command into the process exit code, printing the error.
pub fn report<E: Into<anyhow::Error>>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e: anyhow::Error = e.into();
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
