//! `loco-api spec validate FILE`: checks a loco.toml the way a deploy would and prints the
//! resolved spec, or every error with its position and a fix.
//!
//! Exit codes: 0 valid, 1 invalid spec, 2 usage or I/O error (clap's own usage errors exit 2
//! as well).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use loco_spec::{DEFAULT_BASE_DOMAIN, DEFAULT_MAX_REPLICAS, DEFAULT_REGION, Options, SpecErrors};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Args)]
pub struct SpecArgs {
    #[command(subcommand)]
    pub command: SpecCommand,
}

#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Validates a loco.toml and prints the resolved spec, or every error with its line, column and a fix.
    Validate(ValidateArgs),
}

pub use crate::output::Output;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The loco.toml to validate.
    pub file: PathBuf,
    /// The [Profile.<name>] of the file to apply, as `loco deploy --profile` would.
    #[arg(long, env = "LOCO_PROFILE")]
    pub profile: Option<String>,
    /// Text for people, JSON for scripts (the resolved spec, or {"errors": [...]}).
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// The platform's limits and defaults a loco.toml is validated against, shared by
/// `spec validate`, `render` and `serve` so all three read a file alike.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// The most replicas this platform lets an app ask for.
    #[arg(long, env = "LOCO_MAX_REPLICAS", default_value_t = DEFAULT_MAX_REPLICAS)]
    pub max_replicas: u32,
    /// The domain platform hostnames live under when no profile sets BaseDomain.
    #[arg(long, env = "LOCO_BASE_DOMAIN", default_value = DEFAULT_BASE_DOMAIN)]
    pub base_domain: String,
    /// The region used when a loco.toml names none and has no RegionConfig.
    #[arg(long, env = "LOCO_DEFAULT_REGION", default_value = DEFAULT_REGION)]
    pub default_region: String,
    /// The largest /tmp an app may ask for with TmpSize, a Kubernetes quantity (e.g. 1Gi).
    #[arg(long, env = "LOCO_MAX_TMP_SIZE", default_value = "1Gi", value_parser = size_bytes)]
    pub max_tmp_size: u64,
}

/// A byte size flag ("1Gi", "500M") in bytes.
fn size_bytes(s: &str) -> Result<u64, String> {
    loco_spec::syntax::parse_quantity(s)
        .filter(|q| !q.is_negative())
        .and_then(|q| q.units())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("{s:?} is not a positive size; write a Kubernetes quantity such as 1Gi")
        })
}

impl PlatformArgs {
    /// The validation options, with the profile to apply.
    pub fn options(&self, profile: Option<String>) -> Options {
        Options {
            profile,
            max_replicas: self.max_replicas,
            base_domain: self.base_domain.clone(),
            default_region: self.default_region.clone(),
            max_tmp_size_bytes: self.max_tmp_size,
        }
    }
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    errors: &'a [loco_spec::SpecError],
}

/// Runs a `spec` subcommand and returns the process exit code.
pub fn run(args: SpecArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    match args.command {
        SpecCommand::Validate(a) => validate(&a, &mut stdout.lock(), &mut stderr.lock()),
    }
}

/// `spec validate`, writing to the given streams (tests pass buffers).
pub fn validate(a: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let opts = a.platform.options(a.profile.clone());
    let source = match std::fs::read_to_string(&a.file) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "cannot read {}: {e}", a.file.display());
            return EXIT_USAGE;
        }
    };
    let name = a.file.display().to_string();
    let code = match loco_spec::validate(&source, &name, &opts) {
        Ok(v) => {
            let written = match a.output {
                Output::Json => serde_json::to_string_pretty(&v.spec)
                    .map_err(std::io::Error::other)
                    .and_then(|s| writeln!(out, "{s}")),
                Output::Text => write_summary(out, &name, &v.spec),
            };
            if written.is_err() {
                EXIT_USAGE
            } else {
                EXIT_OK
            }
        }
        Err(errors) => {
            let written = match a.output {
                Output::Json => serde_json::to_string_pretty(&JsonFailure {
                    errors: &errors.errors,
                })
                .map_err(std::io::Error::other)
                .and_then(|s| writeln!(out, "{s}")),
                Output::Text => write_errors(err, &errors),
            };
            if written.is_err() {
                EXIT_USAGE
            } else {
                EXIT_INVALID
            }
        }
    };
    let _ = out.flush();
    code
}

fn write_errors(w: &mut dyn Write, errors: &SpecErrors) -> std::io::Result<()> {
    writeln!(w, "{errors}")
}

fn write_summary(
    w: &mut dyn Write,
    file: &str,
    s: &loco_spec::ResolvedSpec,
) -> std::io::Result<()> {
    writeln!(w, "{file} is valid (spec_version {}).", s.spec_version)?;
    writeln!(w, "  app:        {} ({:?})", s.app.name, s.app.kind)?;
    if let Some(p) = &s.profile {
        writeln!(w, "  profile:    {p}")?;
    }
    writeln!(w, "  region:     {}", s.region)?;
    writeln!(
        w,
        "  route:      https://{}{} -> port {} ({})",
        s.routing.host, s.routing.path_prefix, s.routing.port, s.routing.port_name
    )?;
    if let Some(g) = &s.grpc {
        writeln!(
            w,
            "  grpc:       port {} services {}",
            g.port,
            g.services.join(", ")
        )?;
    }
    writeln!(
        w,
        "  resources:  cpu {} memory {}",
        s.resources.cpu, s.resources.memory
    )?;
    writeln!(w, "  replicas:   {}-{}", s.replicas.min, s.replicas.max)?;
    if let Some(a) = &s.autoscaling {
        writeln!(w, "  autoscale:  {:?} at {}%", a.metric, a.target_percent)?;
    }
    let names: Vec<&str> = s.env.variables.iter().map(|v| v.name.as_str()).collect();
    writeln!(
        w,
        "  env:        {} inline variable(s){}{}",
        names.len(),
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        },
        s.env
            .file
            .as_ref()
            .map_or(String::new(), |f| format!(", values from {f}"))
    )?;
    writeln!(
        w,
        "  sleep:      {}",
        if s.sleep.enabled {
            format!("after {}s idle", s.sleep.idle_window_seconds)
        } else {
            "never".to_owned()
        }
    )?;
    writeln!(w, "Use --output json for the full resolved spec.")
}
