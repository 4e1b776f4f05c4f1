//! Errors a person can fix in one pass: every one names file:line:col, the key path, what
//! is wrong and how to fix it, and all of them are reported together.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// Stable snake_case names: used as metric labels and as the reason of audit events, so
/// renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    TomlSyntax,
    UnknownKey,
    WrongType,
    MissingKey,
    ConflictingKeys,
    UnsupportedConfigVersion,
    UnsupportedValue,
    InvalidName,
    InvalidHostname,
    CustomDomainWithdrawn,
    InvalidQuantity,
    InvalidReplicas,
    InvalidPort,
    PortConflict,
    InvalidPath,
    RegionNotFound,
    ProfileNotFound,
    InvalidEnvName,
    ReservedEnvName,
    InvalidAutoscaling,
    OutOfRange,
    InvalidDuration,
    InvalidGrpcService,
    InvalidImage,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TomlSyntax => "toml_syntax",
            Self::UnknownKey => "unknown_key",
            Self::WrongType => "wrong_type",
            Self::MissingKey => "missing_key",
            Self::ConflictingKeys => "conflicting_keys",
            Self::UnsupportedConfigVersion => "unsupported_config_version",
            Self::UnsupportedValue => "unsupported_value",
            Self::InvalidName => "invalid_name",
            Self::InvalidHostname => "invalid_hostname",
            Self::CustomDomainWithdrawn => "custom_domain_withdrawn",
            Self::InvalidQuantity => "invalid_quantity",
            Self::InvalidReplicas => "invalid_replicas",
            Self::InvalidPort => "invalid_port",
            Self::PortConflict => "port_conflict",
            Self::InvalidPath => "invalid_path",
            Self::RegionNotFound => "region_not_found",
            Self::ProfileNotFound => "profile_not_found",
            Self::InvalidEnvName => "invalid_env_name",
            Self::ReservedEnvName => "reserved_env_name",
            Self::InvalidAutoscaling => "invalid_autoscaling",
            Self::OutOfRange => "out_of_range",
            Self::InvalidDuration => "invalid_duration",
            Self::InvalidGrpcService => "invalid_grpc_service",
            Self::InvalidImage => "invalid_image",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem found before line numbers are known: a byte span into the source.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub span: Range<usize>,
    pub path: String,
    pub code: ErrorCode,
    pub message: String,
    pub hint: String,
}

/// Collects issues while reading and validating; never stops at the first one.
#[derive(Debug, Default)]
pub(crate) struct Issues(pub Vec<Issue>);

impl Issues {
    pub fn push(
        &mut self,
        span: Range<usize>,
        path: impl Into<String>,
        code: ErrorCode,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.0.push(Issue {
            span,
            path: path.into(),
            code,
            message: message.into(),
            hint: hint.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One error in a loco.toml, positioned for a person (1-based line and column, counted in
/// characters, not bytes).
///
/// Messages never contain the value of an environment variable: those are secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `RegionConfig."us-east-1".Memory`; empty for syntax errors.
    pub path: String,
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{} [{}]", self.message, self.code)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Every error found in one loco.toml, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct SpecErrors {
    pub errors: Vec<SpecError>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        let n = self.errors.len();
        let file = self.errors.first().map_or("loco.toml", |e| e.file.as_str());
        write!(
            f,
            "\n{n} error{} in {file}; fix them all and run `loco-api spec validate` again.",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Turns byte offsets into 1-based line and character columns.
pub(crate) struct LineIndex<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub fn new(source: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            source,
            line_starts,
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        // A span may start inside a multi-byte character only if the parser is wrong; count
        // what is safely countable instead of panicking.
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

pub(crate) fn into_errors(file: &str, source: &str, issues: Issues) -> SpecErrors {
    let index = LineIndex::new(source);
    let mut issues = issues.0;
    issues.sort_by(|a, b| {
        (a.span.start, &a.path, a.code, &a.message).cmp(&(
            b.span.start,
            &b.path,
            b.code,
            &b.message,
        ))
    });
    issues.dedup_by(|a, b| a.span == b.span && a.path == b.path && a.message == b.message);
    let errors = issues
        .into_iter()
        .map(|i| {
            let (line, column) = index.line_col(i.span.start);
            SpecError {
                file: file.to_owned(),
                line,
                column,
                path: i.path,
                code: i.code,
                message: i.message,
                hint: i.hint,
            }
        })
        .collect();
    SpecErrors { errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let src = "a = 1\nbé = \"x\"\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(4), (1, 5));
        assert_eq!(idx.line_col(6), (2, 1));
        // after "bé" (3 bytes) comes the space: column 3 in characters
        assert_eq!(idx.line_col(9), (2, 3));
        assert_eq!(idx.line_col(10_000), (3, 1));
    }

    #[test]
    fn display_names_position_path_message_and_hint() {
        let e = SpecError {
            file: "loco.toml".into(),
            line: 3,
            column: 7,
            path: "Routing.Port".into(),
            code: ErrorCode::InvalidPort,
            message: "port 80 is below 1024".into(),
            hint: "use a port between 1024 and 65535".into(),
        };
        assert_eq!(
            e.to_string(),
            "loco.toml:3:7: Routing.Port: port 80 is below 1024 [invalid_port]\n  hint: use a port between 1024 and 65535"
        );
    }
}
