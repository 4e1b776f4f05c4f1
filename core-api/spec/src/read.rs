//! Reads the span-preserving TOML tree into `raw` types. Wrong types and unknown keys become
//! issues; reading goes on so every problem in the file is reported in one pass.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ErrorCode, Issues};
use super::raw::*;

pub(crate) const ROOT_KEYS: &[&str] = &[
    "Metadata",
    "PrimaryRegion",
    "Build",
    "Routing",
    "Ports",
    "GRPC",
    "DomainConfig",
    "RegionConfig",
    "Profile",
    "Health",
    "Env",
    "Sleep",
    "Obs",
];
pub(crate) const METADATA_KEYS: &[&str] =
    &["ConfigVersion", "Name", "Description", "Type", "Region"];
pub(crate) const BUILD_KEYS: &[&str] = &["DockerfilePath", "Type", "type", "Image"];
pub(crate) const ROUTING_KEYS: &[&str] = &["Port", "PathPrefix", "IdleTimeout"];
pub(crate) const GRPC_KEYS: &[&str] = &["Port", "Services"];
pub(crate) const DOMAIN_KEYS: &[&str] = &["Hostname", "Type"];
pub(crate) const REGION_KEYS: &[&str] = &[
    "CPU",
    "Memory",
    "TmpSize",
    "ReplicasMin",
    "ReplicasMax",
    "Replicas",
    "EnableAutoScaling",
    "CPUTarget",
    "MemoryTarget",
    "Scalers",
];
pub(crate) const REPLICAS_KEYS: &[&str] = &["Min", "Max"];
pub(crate) const SCALERS_KEYS: &[&str] = &["Enabled", "CPUTarget", "MemoryTarget"];
pub(crate) const PROFILE_KEYS: &[&str] =
    &["CPU", "Memory", "TmpSize", "BaseDomain", "Replicas", "Env"];
pub(crate) const HEALTH_KEYS: &[&str] = &[
    "Type",
    "Path",
    "Port",
    "GRPCService",
    "Command",
    "Interval",
    "Timeout",
    "FailThreshold",
    "StartupGracePeriod",
];
pub(crate) const ENV_KEYS: &[&str] = &["File", "Variables"];
pub(crate) const SLEEP_KEYS: &[&str] = &["Enabled", "IdleWindow"];
pub(crate) const OBS_KEYS: &[&str] = &["Logging", "Metrics", "Tracing"];
pub(crate) const LOGGING_KEYS: &[&str] = &["Enabled", "RetentionPeriod", "Structured"];
pub(crate) const METRICS_KEYS: &[&str] = &["Enabled", "Path", "Port"];
pub(crate) const TRACING_KEYS: &[&str] = &["Enabled", "SampleRate", "Tags"];

/// Quotes a key for a dotted path when it is not a bare TOML key.
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key_segment(key)
    } else {
        format!("{parent}.{}", key_segment(key))
    }
}

/// The closest known name, for "did you mean" hints.
pub(crate) fn suggest<'a>(
    given: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = given.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        let score = if k.eq_ignore_ascii_case(given) {
            2.0
        } else {
            strsim::jaro_winkler(&lower, &k.to_ascii_lowercase())
        };
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| k)
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One table being read: its path for messages and the span of its header/key.
struct Tbl<'a, 'i> {
    path: String,
    table: &'a DeTable<'i>,
    span: Range<usize>,
}

pub(crate) struct Reader {
    pub issues: Issues,
}

impl Reader {
    pub fn new() -> Self {
        Self {
            issues: Issues::default(),
        }
    }

    fn unknown_keys(&mut self, t: &Tbl<'_, '_>, known: &[&str]) {
        for (k, _) in t.table.iter() {
            let key = k.get_ref().as_ref();
            if known.contains(&key) {
                continue;
            }
            let hint = match suggest(key, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? Known keys here: {}", known.join(", ")),
                None => format!("remove it; known keys here: {}", known.join(", ")),
            };
            let what = if t.path.is_empty() {
                format!("unknown key `{key}` at the top level")
            } else {
                format!("unknown key `{key}` in [{}]", t.path)
            };
            self.issues.push(
                k.span(),
                join(&t.path, key),
                ErrorCode::UnknownKey,
                what,
                hint,
            );
        }
    }

    fn entry<'a, 'i>(
        &self,
        t: &Tbl<'a, 'i>,
        key: &str,
    ) -> Option<(
        &'a Spanned<std::borrow::Cow<'i, str>>,
        &'a Spanned<DeValue<'i>>,
    )> {
        t.table.get_key_value(key)
    }

    fn wrong_type(
        &mut self,
        span: Range<usize>,
        path: String,
        want: &str,
        got: &DeValue<'_>,
        hint: &str,
    ) {
        self.issues.push(
            span,
            path,
            ErrorCode::WrongType,
            format!("expected {want}, found {}", type_name(got)),
            hint,
        );
    }

    fn string(&mut self, t: &Tbl<'_, '_>, key: &str, example: &str) -> Option<Sp<String>> {
        let (_, v) = self.entry(t, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            other => {
                let hint = format!("write it as a quoted string, e.g. {key} = {example}");
                self.wrong_type(v.span(), join(&t.path, key), "a string", other, &hint);
                None
            }
        }
    }

    fn int(&mut self, t: &Tbl<'_, '_>, key: &str, example: &str) -> Option<Sp<i64>> {
        let (_, v) = self.entry(t, key)?;
        self.int_value(join(&t.path, key), key, v, example)
    }

    fn int_value(
        &mut self,
        path: String,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        example: &str,
    ) -> Option<Sp<i64>> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n, v.span())),
                Err(_) => {
                    self.issues.push(
                        v.span(),
                        path,
                        ErrorCode::OutOfRange,
                        "the integer does not fit in 64 bits",
                        format!("use a small whole number, e.g. {key} = {example}"),
                    );
                    None
                }
            },
            other => {
                let hint = match other {
                    DeValue::String(_) => format!("remove the quotes: {key} = {example}"),
                    _ => format!("write a whole number, e.g. {key} = {example}"),
                };
                self.wrong_type(v.span(), path, "an integer", other, &hint);
                None
            }
        }
    }

    fn float(&mut self, t: &Tbl<'_, '_>, key: &str, example: &str) -> Option<Sp<f64>> {
        let (_, v) = self.entry(t, key)?;
        let path = join(&t.path, key);
        let parsed = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            other => {
                let hint = format!("write a number, e.g. {key} = {example}");
                self.wrong_type(v.span(), path, "a number", other, &hint);
                return None;
            }
        };
        match parsed {
            Some(f) if f.is_finite() => Some(Sp::new(f, v.span())),
            _ => {
                self.issues.push(
                    v.span(),
                    path,
                    ErrorCode::OutOfRange,
                    "the number is not finite",
                    format!("write a plain number, e.g. {key} = {example}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, t: &Tbl<'_, '_>, key: &str) -> Option<Sp<bool>> {
        let (_, v) = self.entry(t, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, v.span())),
            other => {
                let hint = match other {
                    DeValue::String(_) => format!("remove the quotes: {key} = true or false"),
                    _ => format!("write {key} = true or {key} = false"),
                };
                self.wrong_type(v.span(), join(&t.path, key), "a boolean", other, &hint);
                None
            }
        }
    }

    fn strings(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        example: &str,
    ) -> Option<Sp<Vec<Sp<String>>>> {
        let (_, v) = self.entry(t, key)?;
        let path = join(&t.path, key);
        match v.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (n, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Sp::new(s.to_string(), item.span())),
                        other => {
                            let hint =
                                format!("every element is a quoted string, e.g. {key} = {example}");
                            self.wrong_type(
                                item.span(),
                                format!("{path}[{n}]"),
                                "a string",
                                other,
                                &hint,
                            );
                        }
                    }
                }
                Some(Sp::new(out, v.span()))
            }
            other => {
                let hint = format!("write an array of strings, e.g. {key} = {example}");
                self.wrong_type(v.span(), path, "an array of strings", other, &hint);
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, t: &Tbl<'a, 'i>, key: &str) -> Option<Tbl<'a, 'i>> {
        let (k, v) = self.entry(t, key)?;
        let path = join(&t.path, key);
        match v.get_ref() {
            DeValue::Table(table) => Some(Tbl {
                path,
                table,
                span: k.span(),
            }),
            other => {
                let hint = format!("make it a table: a [{path}] header or {key} = {{ ... }}");
                self.wrong_type(v.span(), path, "a table", other, &hint);
                None
            }
        }
    }

    /// A table of user-named entries, each read with `f`.
    fn map<'a, 'i, V>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
        mut f: impl FnMut(&mut Self, Tbl<'a, 'i>, &'a Spanned<DeValue<'i>>) -> Option<V>,
    ) -> Option<SpMap<V>> {
        let outer = self.table(t, key)?;
        let mut out = Vec::with_capacity(outer.table.len());
        for (k, v) in outer.table.iter() {
            let name = k.get_ref().as_ref();
            let inner = Tbl {
                path: join(&outer.path, name),
                table: outer.table,
                span: k.span(),
            };
            if let Some(value) = f(self, inner, v) {
                out.push((Sp::new(name.to_owned(), k.span()), value));
            }
        }
        Some(SpMap(out))
    }

    fn sub_table<'a, 'i>(
        &mut self,
        entry: Tbl<'a, 'i>,
        v: &'a Spanned<DeValue<'i>>,
        example: &str,
    ) -> Option<Tbl<'a, 'i>> {
        match v.get_ref() {
            DeValue::Table(table) => Some(Tbl {
                path: entry.path,
                table,
                span: entry.span,
            }),
            other => {
                let hint = format!("make it a table: [{}] {example}", entry.path);
                self.wrong_type(v.span(), entry.path, "a table", other, &hint);
                None
            }
        }
    }

    fn string_value(
        &mut self,
        entry: &Tbl<'_, '_>,
        v: &Spanned<DeValue<'_>>,
        secret: bool,
    ) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            other => {
                // Never echo the value: env values are secrets.
                let hint = if secret {
                    "quote the value: environment values are strings, e.g. NAME = \"3\"".to_owned()
                } else {
                    "quote the value, e.g. key = \"value\"".to_owned()
                };
                self.wrong_type(v.span(), entry.path.clone(), "a string", other, &hint);
                None
            }
        }
    }

    pub fn document(&mut self, root: &Spanned<DeTable<'_>>) -> LocoToml {
        let t = Tbl {
            path: String::new(),
            table: root.get_ref(),
            span: 0..0,
        };
        self.unknown_keys(&t, ROOT_KEYS);
        LocoToml {
            metadata: self.table(&t, "Metadata").map(|t| self.metadata(t)),
            primary_region: self.string(&t, "PrimaryRegion", "\"us-east-1\""),
            build: self.table(&t, "Build").map(|t| self.build(t)),
            routing: self.table(&t, "Routing").map(|t| self.routing(t)),
            ports: self.map(&t, "Ports", |r, e, v| {
                r.int_value(e.path, "admin", v, "9000")
            }),
            grpc: self.table(&t, "GRPC").map(|t| self.grpc(t)),
            domain: self.table(&t, "DomainConfig").map(|t| self.domain(t)),
            regions: self.map(&t, "RegionConfig", |r, e, v| {
                let t = r.sub_table(e, v, "with CPU, Memory and replicas")?;
                Some(r.region(t))
            }),
            profiles: self.map(&t, "Profile", |r, e, v| {
                let t = r.sub_table(e, v, "with CPU, Memory, BaseDomain, Replicas or Env")?;
                Some(r.profile(t))
            }),
            health: self.table(&t, "Health").map(|t| self.health(t)),
            env: self.table(&t, "Env").map(|t| self.env(t)),
            sleep: self.table(&t, "Sleep").map(|t| self.sleep(t)),
            obs: self.table(&t, "Obs").map(|t| self.obs(t)),
            span: root.span(),
        }
    }

    fn metadata(&mut self, t: Tbl<'_, '_>) -> Metadata {
        self.unknown_keys(&t, METADATA_KEYS);
        Metadata {
            config_version: self.string(&t, "ConfigVersion", "\"0.1\""),
            name: self.string(&t, "Name", "\"myapp\""),
            description: self.string(&t, "Description", "\"what the app does\""),
            kind: self.string(&t, "Type", "\"SERVICE\""),
            region: self.string(&t, "Region", "\"us-east-1\""),
            span: t.span,
        }
    }

    fn build(&mut self, t: Tbl<'_, '_>) -> Build {
        self.unknown_keys(&t, BUILD_KEYS);
        Build {
            dockerfile_path: self.string(&t, "DockerfilePath", "\"Dockerfile\""),
            kind: self.string(&t, "Type", "\"docker\""),
            kind_lower: self.string(&t, "type", "\"docker\""),
            image: self.string(&t, "Image", "\"ghcr.io/org/app:1.0\""),
            span: t.span,
        }
    }

    fn routing(&mut self, t: Tbl<'_, '_>) -> Routing {
        self.unknown_keys(&t, ROUTING_KEYS);
        Routing {
            port: self.int(&t, "Port", "8000"),
            path_prefix: self.string(&t, "PathPrefix", "\"/\""),
            idle_timeout: self.int(&t, "IdleTimeout", "60"),
            span: t.span,
        }
    }

    fn grpc(&mut self, t: Tbl<'_, '_>) -> Grpc {
        self.unknown_keys(&t, GRPC_KEYS);
        Grpc {
            port: self.int(&t, "Port", "9000"),
            services: self.strings(&t, "Services", "[\"helloworld.Greeter\"]"),
            span: t.span,
        }
    }

    fn domain(&mut self, t: Tbl<'_, '_>) -> DomainConfig {
        self.unknown_keys(&t, DOMAIN_KEYS);
        DomainConfig {
            hostname: self.string(&t, "Hostname", "\"myapp.deploy-app.com\""),
            kind: self.string(&t, "Type", "\"platform\""),
            span: t.span,
        }
    }

    fn replicas(&mut self, t: Tbl<'_, '_>) -> Replicas {
        self.unknown_keys(&t, REPLICAS_KEYS);
        Replicas {
            min: self.int(&t, "Min", "1"),
            max: self.int(&t, "Max", "3"),
            span: t.span,
        }
    }

    fn region(&mut self, t: Tbl<'_, '_>) -> Region {
        self.unknown_keys(&t, REGION_KEYS);
        Region {
            cpu: self.string(&t, "CPU", "\"100m\""),
            memory: self.string(&t, "Memory", "\"256Mi\""),
            tmp_size: self.string(&t, "TmpSize", "\"512Mi\""),
            replicas_min: self.int(&t, "ReplicasMin", "1"),
            replicas_max: self.int(&t, "ReplicasMax", "3"),
            replicas: self.table(&t, "Replicas").map(|t| self.replicas(t)),
            enable_autoscaling: self.boolean(&t, "EnableAutoScaling"),
            cpu_target: self.int(&t, "CPUTarget", "70"),
            memory_target: self.int(&t, "MemoryTarget", "80"),
            scalers: self.table(&t, "Scalers").map(|t| {
                self.unknown_keys(&t, SCALERS_KEYS);
                Scalers {
                    enabled: self.boolean(&t, "Enabled"),
                    cpu_target: self.int(&t, "CPUTarget", "70"),
                    memory_target: self.int(&t, "MemoryTarget", "80"),
                    span: t.span,
                }
            }),
            span: t.span,
        }
    }

    fn profile(&mut self, t: Tbl<'_, '_>) -> Profile {
        self.unknown_keys(&t, PROFILE_KEYS);
        Profile {
            cpu: self.string(&t, "CPU", "\"500m\""),
            memory: self.string(&t, "Memory", "\"1Gi\""),
            tmp_size: self.string(&t, "TmpSize", "\"512Mi\""),
            base_domain: self.string(&t, "BaseDomain", "\"dev.deploy-app.com\""),
            replicas: self.table(&t, "Replicas").map(|t| self.replicas(t)),
            env: self.table(&t, "Env").map(|t| self.env(t)),
            span: t.span,
        }
    }

    fn health(&mut self, t: Tbl<'_, '_>) -> Health {
        self.unknown_keys(&t, HEALTH_KEYS);
        Health {
            kind: self.string(&t, "Type", "\"http\""),
            path: self.string(&t, "Path", "\"/health\""),
            port: self.int(&t, "Port", "8000"),
            grpc_service: self.string(&t, "GRPCService", "\"\""),
            command: self.strings(&t, "Command", "[\"/bin/healthcheck\"]"),
            interval: self.int(&t, "Interval", "30"),
            timeout: self.int(&t, "Timeout", "5"),
            fail_threshold: self.int(&t, "FailThreshold", "3"),
            startup_grace_period: self.int(&t, "StartupGracePeriod", "15"),
            span: t.span,
        }
    }

    fn env(&mut self, t: Tbl<'_, '_>) -> Env {
        self.unknown_keys(&t, ENV_KEYS);
        Env {
            file: self.string(&t, "File", "\".env\""),
            variables: self.map(&t, "Variables", |r, e, v| {
                r.string_value(&e, v, true)
                    .map(|s| Sp::new(SecretValue(s.value), s.span))
            }),
            span: t.span,
        }
    }

    fn sleep(&mut self, t: Tbl<'_, '_>) -> Sleep {
        self.unknown_keys(&t, SLEEP_KEYS);
        Sleep {
            enabled: self.boolean(&t, "Enabled"),
            idle_window: self.string(&t, "IdleWindow", "\"7d\""),
            span: t.span,
        }
    }

    fn obs(&mut self, t: Tbl<'_, '_>) -> Obs {
        self.unknown_keys(&t, OBS_KEYS);
        Obs {
            logging: self.table(&t, "Logging").map(|t| {
                self.unknown_keys(&t, LOGGING_KEYS);
                Logging {
                    enabled: self.boolean(&t, "Enabled"),
                    retention_period: self.string(&t, "RetentionPeriod", "\"7d\""),
                    structured: self.boolean(&t, "Structured"),
                    span: t.span,
                }
            }),
            metrics: self.table(&t, "Metrics").map(|t| {
                self.unknown_keys(&t, METRICS_KEYS);
                Metrics {
                    enabled: self.boolean(&t, "Enabled"),
                    path: self.string(&t, "Path", "\"/metrics\""),
                    port: self.int(&t, "Port", "9090"),
                    span: t.span,
                }
            }),
            tracing: self.table(&t, "Tracing").map(|t| {
                self.unknown_keys(&t, TRACING_KEYS);
                Tracing {
                    enabled: self.boolean(&t, "Enabled"),
                    sample_rate: self.float(&t, "SampleRate", "0.1"),
                    tags: self.map(&t, "Tags", |r, e, v| r.string_value(&e, v, false)),
                    span: t.span,
                }
            }),
            span: t.span,
        }
    }
}
