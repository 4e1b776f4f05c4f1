//! loco.toml as written, before defaults: every value keeps the byte span it came from so
//! later checks can point at it. These types also generate the JSON Schema of loco.toml
//! (`core-api/spec/schema/loco.schema.json`), so the doc comments here are what editors show.
//!
//! Key names are the ones loco users already have (PascalCase, as loco's Go loader wrote
//! them). The reader in `read.rs` lists the same keys; a unit test keeps the two in step.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A value and the bytes of loco.toml it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A table whose keys the user names (regions, profiles, env variables, ports), in file
/// order, each key with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpMap<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for SpMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> SpMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
    pub fn get_entry(&self, key: &str) -> Option<(&Sp<String>, &V)> {
        self.0
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }
}

impl<V: JsonSchema> JsonSchema for SpMap<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let v = generator.subschema_for::<V>();
        json_schema!({ "type": "object", "additionalProperties": v })
    }
}

/// The value of an environment variable: a secret. Its Debug output is redacted so it never
/// reaches a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl JsonSchema for SecretValue {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "SecretValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

/// loco.toml: the app spec a loco user hands to `loco deploy`.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(title = "loco.toml", deny_unknown_fields)]
pub struct LocoToml {
    #[serde(rename = "Metadata")]
    pub metadata: Option<Metadata>,
    /// Older loco.toml files name the deploy region here instead of `Metadata.Region`.
    #[serde(rename = "PrimaryRegion")]
    pub primary_region: Option<Sp<String>>,
    #[serde(rename = "Build")]
    pub build: Option<Build>,
    #[serde(rename = "Routing")]
    pub routing: Option<Routing>,
    /// Named container ports besides the routed HTTP port, e.g. `admin = 9000`. Names are
    /// IANA service names (lowercase, at most 15 characters).
    #[serde(rename = "Ports")]
    pub ports: Option<SpMap<Sp<i64>>>,
    #[serde(rename = "GRPC")]
    pub grpc: Option<Grpc>,
    #[serde(rename = "DomainConfig")]
    pub domain: Option<DomainConfig>,
    /// Resources, replicas and autoscaling per region; `Metadata.Region` picks one.
    #[serde(rename = "RegionConfig")]
    pub regions: Option<SpMap<Region>>,
    /// Named profiles (dev, uat, prod...) chosen with `--profile`; each overrides the region.
    #[serde(rename = "Profile")]
    pub profiles: Option<SpMap<Profile>>,
    #[serde(rename = "Health")]
    pub health: Option<Health>,
    #[serde(rename = "Env")]
    pub env: Option<Env>,
    #[serde(rename = "Sleep")]
    pub sleep: Option<Sleep>,
    #[serde(rename = "Obs")]
    pub obs: Option<Obs>,
    /// Span of the whole document, for errors about missing tables.
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Metadata {
    /// Version of the loco.toml format. Supported: "0.1". Default: "0.1".
    #[serde(rename = "ConfigVersion")]
    pub config_version: Option<Sp<String>>,
    /// App name: a DNS-1123 label (lowercase letters, digits, '-'; at most 63). Required.
    #[serde(rename = "Name")]
    pub name: Option<Sp<String>>,
    /// Short description of the app. Default: "".
    #[serde(rename = "Description")]
    pub description: Option<Sp<String>>,
    /// App type. Only "SERVICE" is supported (the default).
    #[serde(rename = "Type")]
    pub kind: Option<Sp<String>>,
    /// Deploy region: a key of RegionConfig. Default: the only RegionConfig entry, or the
    /// platform's default region when there is no RegionConfig.
    #[serde(rename = "Region")]
    pub region: Option<Sp<String>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Build {
    /// Path of the Dockerfile, relative to loco.toml. Default: "Dockerfile".
    #[serde(rename = "DockerfilePath")]
    pub dockerfile_path: Option<Sp<String>>,
    /// Build type. Only "docker" (the default).
    #[serde(rename = "Type")]
    pub kind: Option<Sp<String>>,
    /// Lowercase spelling of `Type` found in loco's own examples; accepted as the same key.
    #[serde(rename = "type")]
    pub kind_lower: Option<Sp<String>>,
    /// A prebuilt image to deploy instead of building one, e.g. "ghcr.io/org/app:1.2".
    #[serde(rename = "Image")]
    pub image: Option<Sp<String>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Routing {
    /// The HTTP port the app listens on and the gateway routes to (1024-65535). Required.
    #[serde(rename = "Port")]
    pub port: Option<Sp<i64>>,
    /// Requests whose path starts with this prefix reach the app. Default: "/".
    #[serde(rename = "PathPrefix")]
    pub path_prefix: Option<Sp<String>>,
    /// Seconds an idle connection stays open at the gateway (1-3600). Default: 60.
    #[serde(rename = "IdleTimeout")]
    pub idle_timeout: Option<Sp<i64>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Grpc {
    /// The port serving gRPC (1024-65535); may equal Routing.Port. Required with [GRPC].
    #[serde(rename = "Port")]
    pub port: Option<Sp<i64>>,
    /// Fully qualified gRPC service names routed to the app, e.g. "helloworld.Greeter".
    #[serde(rename = "Services")]
    pub services: Option<Sp<Vec<Sp<String>>>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DomainConfig {
    /// Platform hostname, e.g. "myapp.deploy-app.com". Its leftmost label is the app's
    /// subdomain; a profile's BaseDomain replaces the rest. Default: "<Name>.<base domain>".
    #[serde(rename = "Hostname")]
    pub hostname: Option<Sp<String>>,
    /// "platform" (default). "custom" was withdrawn and is refused.
    #[serde(rename = "Type")]
    pub kind: Option<Sp<String>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Region {
    /// CPU request, a Kubernetes quantity such as "100m" or "0.5". Default: "100m".
    #[serde(rename = "CPU")]
    pub cpu: Option<Sp<String>>,
    /// Memory request, a Kubernetes quantity such as "256Mi" or "1Gi". Default: "256Mi".
    #[serde(rename = "Memory")]
    pub memory: Option<Sp<String>>,
    /// Size limit of the app's writable /tmp, a Kubernetes quantity such as "512Mi", at
    /// most the platform's maximum (default "1Gi"). Default: the platform's setting ("256Mi").
    #[serde(rename = "TmpSize")]
    pub tmp_size: Option<Sp<String>>,
    /// Minimum replicas (flat form). Default: 1.
    #[serde(rename = "ReplicasMin")]
    pub replicas_min: Option<Sp<i64>>,
    /// Maximum replicas (flat form). Default: the minimum.
    #[serde(rename = "ReplicasMax")]
    pub replicas_max: Option<Sp<i64>>,
    /// Replicas as a table; use this or the flat keys, not both.
    #[serde(rename = "Replicas")]
    pub replicas: Option<Replicas>,
    /// Autoscaling on (flat form). Default: false.
    #[serde(rename = "EnableAutoScaling")]
    pub enable_autoscaling: Option<Sp<bool>>,
    /// Target CPU utilisation percent (1-100); 0 means unset. Flat form.
    #[serde(rename = "CPUTarget")]
    pub cpu_target: Option<Sp<i64>>,
    /// Target memory utilisation percent (1-100); 0 means unset. Flat form.
    #[serde(rename = "MemoryTarget")]
    pub memory_target: Option<Sp<i64>>,
    /// Autoscaling as a table; use this or the flat keys, not both.
    #[serde(rename = "Scalers")]
    pub scalers: Option<Scalers>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Replicas {
    #[serde(rename = "Min")]
    pub min: Option<Sp<i64>>,
    #[serde(rename = "Max")]
    pub max: Option<Sp<i64>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Scalers {
    #[serde(rename = "Enabled")]
    pub enabled: Option<Sp<bool>>,
    /// Target CPU utilisation percent (1-100); 0 means unset.
    #[serde(rename = "CPUTarget")]
    pub cpu_target: Option<Sp<i64>>,
    /// Target memory utilisation percent (1-100); 0 means unset.
    #[serde(rename = "MemoryTarget")]
    pub memory_target: Option<Sp<i64>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Profile {
    /// CPU request for this profile, overriding the region's.
    #[serde(rename = "CPU")]
    pub cpu: Option<Sp<String>>,
    /// Memory request for this profile, overriding the region's.
    #[serde(rename = "Memory")]
    pub memory: Option<Sp<String>>,
    /// Size limit of /tmp for this profile, overriding the region's.
    #[serde(rename = "TmpSize")]
    pub tmp_size: Option<Sp<String>>,
    /// Domain the app's subdomain is placed under, e.g. "dev.deploy-app.com".
    #[serde(rename = "BaseDomain")]
    pub base_domain: Option<Sp<String>>,
    /// Replica bounds overriding the region's; either key may be left out.
    #[serde(rename = "Replicas")]
    pub replicas: Option<Replicas>,
    /// Env overrides: `File` replaces, `Variables` are merged over [Env.Variables].
    #[serde(rename = "Env")]
    pub env: Option<Env>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Health {
    /// "http" (default), "grpc" or "command".
    #[serde(rename = "Type")]
    pub kind: Option<Sp<String>>,
    /// HTTP path probed, starting with '/'. Required for http checks.
    #[serde(rename = "Path")]
    pub path: Option<Sp<String>>,
    /// Port probed. Default: Routing.Port (http) or GRPC.Port (grpc).
    #[serde(rename = "Port")]
    pub port: Option<Sp<i64>>,
    /// gRPC health service name asked by grpc checks. Default: "" (the server as a whole).
    #[serde(rename = "GRPCService")]
    pub grpc_service: Option<Sp<String>>,
    /// Command run in the container by command checks, e.g. ["/bin/check", "--quick"].
    #[serde(rename = "Command")]
    pub command: Option<Sp<Vec<Sp<String>>>>,
    /// Seconds between checks (1-3600). Default: 30.
    #[serde(rename = "Interval")]
    pub interval: Option<Sp<i64>>,
    /// Seconds a check may take (1-3600). Default: 5.
    #[serde(rename = "Timeout")]
    pub timeout: Option<Sp<i64>>,
    /// Failed checks before a restart (1-100). Default: 3.
    #[serde(rename = "FailThreshold")]
    pub fail_threshold: Option<Sp<i64>>,
    /// Seconds the app may take to start before checks count (0-300). Default: 0.
    #[serde(rename = "StartupGracePeriod")]
    pub startup_grace_period: Option<Sp<i64>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Env {
    /// Path of a dotenv file, relative to loco.toml, whose values are sent as secrets.
    #[serde(rename = "File")]
    pub file: Option<Sp<String>>,
    /// Inline variables. Names: letters, digits, '_', not starting with a digit; LOCO_* is
    /// reserved for the platform.
    #[serde(rename = "Variables")]
    pub variables: Option<SpMap<Sp<SecretValue>>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Sleep {
    /// Whether the app may be put to sleep when idle. Default: true.
    #[serde(rename = "Enabled")]
    pub enabled: Option<Sp<bool>>,
    /// How long without traffic before sleeping, e.g. "7d", "12h" (1h-90d). Default: "7d".
    #[serde(rename = "IdleWindow")]
    pub idle_window: Option<Sp<String>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Obs {
    #[serde(rename = "Logging")]
    pub logging: Option<Logging>,
    #[serde(rename = "Metrics")]
    pub metrics: Option<Metrics>,
    #[serde(rename = "Tracing")]
    pub tracing: Option<Tracing>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Logging {
    /// Default: true.
    #[serde(rename = "Enabled")]
    pub enabled: Option<Sp<bool>>,
    /// How long logs are kept, e.g. "7d". Default: "7d".
    #[serde(rename = "RetentionPeriod")]
    pub retention_period: Option<Sp<String>>,
    /// Parse log lines as JSON. Default: false.
    #[serde(rename = "Structured")]
    pub structured: Option<Sp<bool>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Metrics {
    /// Default: false.
    #[serde(rename = "Enabled")]
    pub enabled: Option<Sp<bool>>,
    /// Path scraped. Default: "/metrics".
    #[serde(rename = "Path")]
    pub path: Option<Sp<String>>,
    /// Port scraped (1024-65535). Default: 9090.
    #[serde(rename = "Port")]
    pub port: Option<Sp<i64>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Tracing {
    /// Default: false.
    #[serde(rename = "Enabled")]
    pub enabled: Option<Sp<bool>>,
    /// Fraction of requests traced, 0.0-1.0. Default: 0.1.
    #[serde(rename = "SampleRate")]
    pub sample_rate: Option<Sp<f64>>,
    /// Tags added to every trace.
    #[serde(rename = "Tags")]
    pub tags: Option<SpMap<Sp<String>>>,
    #[schemars(skip)]
    pub span: Range<usize>,
}
