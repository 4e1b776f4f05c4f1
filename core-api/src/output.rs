//! How a `loco-api` command prints its result: `--output text` for people, `--output json`
//! for scripts (one format type for every command).

/// The result format of a command (`--output`, env `LOCO_OUTPUT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines for a person.
    #[default]
    Text,
    /// One JSON document.
    Json,
}
