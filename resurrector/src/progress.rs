//! Progress of a long run: a spinner with the current step on a terminal (indicatif),
//! one structured log line per step otherwise (JSON when stderr is not a terminal).

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    cluster: String,
}

impl Progress {
    /// A spinner when stderr is a terminal and `quiet` is false (JSON output keeps
    /// stderr for log lines).
    pub fn new(cluster: &str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            cluster: cluster.to_owned(),
        }
    }

    pub fn step(&self, what: &str) {
        match &self.bar {
            Some(b) => {
                b.println(format!("  {what}"));
                b.set_message(what.to_owned());
            }
            None => tracing::info!(cluster = %self.cluster, step = what, "resurrect progress"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
