//! JSON logs and Prometheus metrics, the ops router ([`ops`]) and exit codes ([`exit`]), shared by every loco binary.
//!
//! Logs go to stderr, one JSON object a line on a non-terminal (so log shippers parse
//! them) and human-readable text on a terminal. Spans carry org / workspace / app ids as
//! fields, which the JSON formatter writes on every line inside the span.

pub mod exit;
pub mod ops;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON on a non-terminal, text on a terminal.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// The logging flag every loco binary shares: `#[command(flatten)] pub log: LogArgs`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct LogArgs {
    /// How log lines are written: auto picks JSON when stderr is not a terminal.
    #[arg(long, env = "LOCO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
}

/// Installs the global tracing subscriber. The filter comes from `LOCO_LOG`
/// (e.g. `info,loco_deploy=debug`), defaulting to `info`. Calling it twice is harmless,
/// which lets tests call it freely.
pub fn init_logging(service: &'static str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("LOCO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        tracing::debug!(service, "logging initialised");
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: String,
    version: String,
}

/// The metrics registry of one process. Components register their own metrics into
/// `registry` at construction; `/metrics` encodes it.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<std::sync::RwLock<Registry>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with the `loco` prefix and a `loco_build_info{service,version}` gauge,
    /// so every scraped loco process is identifiable in Prometheus.
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix("loco");
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Which loco service and version this process runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                service: service.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        Self {
            registry: Arc::new(std::sync::RwLock::new(registry)),
        }
    }

    /// Registers a metric; `name` is prefixed with `loco_`.
    pub fn register<M>(&self, name: &str, help: &str, metric: M)
    where
        M: prometheus_client::registry::Metric,
    {
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        registry.register(name, help, metric);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Encoding into a String cannot fail (fmt::Write on String is infallible).
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_exported_with_service_label() {
        let text = Metrics::new("loco-test").encode();
        assert!(
            text.contains("loco_build_info{service=\"loco-test\""),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[test]
    fn registered_metrics_are_encoded() {
        let m = Metrics::new("x");
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        m.register("things", "Things seen", c.clone());
        c.inc_by(3);
        assert!(m.encode().contains("loco_things_total 3"));
    }
}

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
