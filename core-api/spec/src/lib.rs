//! loco.toml: parse, default, apply a profile and validate the app spec.
//!
//! Pure code (no database, cluster or HTTP types); the only I/O is [`load`], a convenience
//! that reads a file. The flow is two passes over a span-preserving TOML tree, so every error
//! can name file:line:col and all of them are reported at once:
//!
//! 1. `read`: TOML -> `raw` types (wrong types and unknown keys, with "did you mean");
//! 2. `resolve`: defaults, region and profile selection, every semantic check ->
//!    [`ResolvedSpec`], the versioned plain-data spec the database stores per deployment.
//!
//! ```
//! use loco_spec::{validate, Options};
//! let src = "[Metadata]\nName = \"hello\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n";
//! let v = validate(src, "loco.toml", &Options::default()).unwrap();
//! assert_eq!(v.spec.routing.host, "hello.deploy-app.com");
//! ```

mod error;
pub mod raw;
mod read;
mod resolve;
pub mod resolved;
pub mod schema;
pub mod syntax;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{ErrorCode, SpecError, SpecErrors};
pub use resolve::{SUPPORTED_CONFIG_VERSIONS, defaults};
pub use resolved::*;

/// What the platform decides rather than the file: which profile, the replica cap, the
/// base domain of platform hostnames and the region used when a file names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--profile`: a `[Profile.<name>]` of the file to apply.
    pub profile: Option<String>,
    /// Highest ReplicasMax a file may ask for.
    pub max_replicas: u32,
    /// Platform hostnames are `<subdomain>.<base_domain>` unless a profile sets BaseDomain.
    pub base_domain: String,
    /// Region used when the file has no RegionConfig and no Metadata.Region.
    pub default_region: String,
    /// Largest `TmpSize` a file may ask for, in bytes.
    pub max_tmp_size_bytes: u64,
}

pub const DEFAULT_MAX_REPLICAS: u32 = 10;
pub const DEFAULT_BASE_DOMAIN: &str = "deploy-app.com";
pub const DEFAULT_REGION: &str = "us-east-1";
/// The default cap of `TmpSize` (1Gi): /tmp is node disk shared by every pod there.
pub const DEFAULT_MAX_TMP_SIZE_BYTES: u64 = 1 << 30;

impl Default for Options {
    fn default() -> Self {
        Self {
            profile: None,
            max_replicas: DEFAULT_MAX_REPLICAS,
            base_domain: DEFAULT_BASE_DOMAIN.to_owned(),
            default_region: DEFAULT_REGION.to_owned(),
            max_tmp_size_bytes: DEFAULT_MAX_TMP_SIZE_BYTES,
        }
    }
}

/// Validates loco.toml source text. `file` is the name used in error positions.
///
/// Returns every error found, in file order. Never panics, whatever the input.
pub fn validate(source: &str, file: &str, opts: &Options) -> Result<Validated, SpecErrors> {
    let (root, syntax_errors) = toml::de::DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        // The recovered tree would produce follow-on errors ("Name is required" because
        // its line was broken); syntax errors alone are the honest report.
        let mut issues = error::Issues::default();
        for e in syntax_errors {
            let span = e.span().unwrap_or(0..0);
            issues.push(
                span,
                "",
                ErrorCode::TomlSyntax,
                format!("TOML syntax: {}", e.message().trim_end()),
                "fix the TOML at this position (quote strings, one key per line, [Table] headers)",
            );
        }
        return Err(error::into_errors(file, source, issues));
    }
    let mut reader = read::Reader::new();
    let doc = reader.document(&root);
    let (validated, issues) = resolve::resolve(&doc, opts);
    let mut all = reader.issues;
    all.0.extend(issues.0);
    match validated {
        Some(v) if all.is_empty() => Ok(v),
        _ => {
            if all.is_empty() {
                // resolve only returns None after recording an issue; keep the promise of an
                // error with a position even if that ever breaks.
                all.push(
                    0..0,
                    "",
                    ErrorCode::MissingKey,
                    "the spec could not be resolved",
                    "report this as a loco bug with the file attached",
                );
            }
            Err(error::into_errors(file, source, all))
        }
    }
}

/// Why [`load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] SpecErrors),
}

impl LoadError {
    /// Stable snake_case name for metrics and audit events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "spec_unreadable",
            Self::Invalid(_) => "spec_invalid",
        }
    }
}

/// Reads and validates a loco.toml file.
pub fn load(path: &Path, opts: &Options) -> Result<Validated, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(validate(&source, &path.display().to_string(), opts)?)
}
