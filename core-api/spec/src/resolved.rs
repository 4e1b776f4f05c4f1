//! The resolved spec: what loco deploys, with every default filled in and one region and
//! profile applied. Plain data. The database stores it per deployment (as JSON, versioned by
//! `spec_version`) and `render` turns it into Kubernetes objects.
//!
//! It holds environment variable NAMES only. Values are secrets and travel separately in
//! [`EnvValues`], which is neither serialisable nor printable.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Bumped whenever the JSON shape below changes incompatibly; readers of stored specs
/// dispatch on it.
pub const SPEC_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolvedSpec {
    /// Version of this JSON shape; see [`SPEC_VERSION`].
    pub spec_version: u32,
    /// The loco.toml format version the spec was read from.
    pub config_version: String,
    pub app: App,
    /// The profile applied (`--profile`), if any.
    pub profile: Option<String>,
    /// The region deployed to: a key of the file's RegionConfig.
    pub region: String,
    pub build: BuildSource,
    /// Every container port; exactly one has `routed = true`.
    pub ports: Vec<Port>,
    pub routing: Routing,
    pub grpc: Option<Grpc>,
    pub resources: Resources,
    pub replicas: ReplicaBounds,
    /// Present when autoscaling is on: an HPA then owns the replica count.
    pub autoscaling: Option<Autoscaling>,
    pub health: Health,
    pub env: Env,
    pub sleep: Sleep,
    pub obs: Obs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// DNS-1123 label.
    pub name: String,
    pub description: String,
    pub kind: AppKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BuildSource {
    /// Build from a Dockerfile (path relative to loco.toml).
    Dockerfile { path: String },
    /// Deploy a prebuilt image.
    Image { reference: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortProtocol {
    Http,
    Grpc,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// IANA service name, unique in the app.
    pub name: String,
    pub port: u16,
    pub protocol: PortProtocol,
    /// True for the one port the HTTPRoute sends traffic to.
    pub routed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Hostname of the HTTPRoute (and the GRPCRoute), under the platform's base domain.
    pub host: String,
    /// Starts with '/'.
    pub path_prefix: String,
    /// Name of the routed port in `ports`.
    pub port_name: String,
    pub port: u16,
    pub idle_timeout_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grpc {
    pub port_name: String,
    pub port: u16,
    /// Fully qualified service names, each a GRPCRoute match.
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// As written, e.g. "100m"; Kubernetes quantity syntax.
    pub cpu: String,
    /// As written, e.g. "256Mi".
    pub memory: String,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    /// The size limit of the app's /tmp when loco.toml sets `TmpSize` (as written, and in
    /// bytes); absent means the platform's setting. Older stored specs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp_size: Option<TmpSize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmpSize {
    /// As written, e.g. "512Mi"; Kubernetes quantity syntax.
    pub quantity: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaBounds {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMetric {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub metric: ScaleMetric,
    /// Target average utilisation, 1-100.
    pub target_percent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthCheck {
    Http { path: String, port: u16 },
    Grpc { port: u16, service: String },
    Command { command: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub check: HealthCheck,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
    /// 0-300: how long the startup probe lets the app come up.
    pub startup_grace_period_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvSource {
    /// Written inline in loco.toml ([Env.Variables] or a profile's).
    Inline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub source: EnvSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Values also come from this dotenv file (relative to loco.toml); the client reads it
    /// and sends the values as secrets. Its variable names are not known here.
    pub file: Option<String>,
    /// Inline variables, by name, sorted. Values are in [`EnvValues`], never here.
    pub variables: Vec<EnvVar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    pub enabled: bool,
    /// Seconds without traffic after which the app sleeps.
    pub idle_window_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Obs {
    pub logging: Logging,
    pub metrics: Metrics,
    pub tracing: Tracing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub enabled: bool,
    pub retention_seconds: u64,
    pub structured: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub enabled: bool,
    pub path: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    pub enabled: bool,
    pub sample_rate: f64,
    pub tags: BTreeMap<String, String>,
}

/// Inline environment values (profile overrides applied), by name. Secrets: Debug prints
/// names only and there is deliberately no Serialize; hand them to the crypto layer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvValues(BTreeMap<String, String>);

impl EnvValues {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// A valid loco.toml: the spec to store, and the env values to encrypt.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub spec: ResolvedSpec,
    pub env_values: EnvValues,
}
