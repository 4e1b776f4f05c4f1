//! Defaults, profile and region selection, and every semantic check. Works on `raw` values
//! (which carry spans) and records all issues before giving up, so a person sees every
//! problem in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::Options;
use super::error::{ErrorCode as E, Issues};
use super::raw::{self, Sp};
use super::read::{join, suggest};
use super::resolved::*;
use super::syntax;

mod build;
mod env;
mod health;
mod host;
mod obs;
mod ports;
mod region;
mod scale;
mod text;

use build::*;
use env::*;
use health::*;
use host::*;
use obs::*;
use ports::*;
use region::*;
use scale::*;
use text::*;

/// loco.toml format versions this code reads.
pub const SUPPORTED_CONFIG_VERSIONS: &[&str] = &["0.1"];
pub const DEFAULT_CONFIG_VERSION: &str = "0.1";
const KNOWN_APP_TYPES: &[&str] = &["SERVICE", "DATABASE", "FUNCTION", "CACHE", "QUEUE", "BLOB"];
const PORT_RANGE: (i64, i64) = (1024, 65535);

/// Defaults, documented in core-api/README.md (keep the table there in step).
pub mod defaults {
    pub const APP_TYPE: &str = "SERVICE";
    pub const DOCKERFILE: &str = "Dockerfile";
    pub const BUILD_TYPE: &str = "docker";
    pub const PATH_PREFIX: &str = "/";
    pub const IDLE_TIMEOUT_SECONDS: i64 = 60;
    pub const CPU: &str = "100m";
    pub const MEMORY: &str = "256Mi";
    pub const REPLICAS_MIN: i64 = 1;
    pub const HEALTH_TYPE: &str = "http";
    pub const HEALTH_INTERVAL_SECONDS: i64 = 30;
    pub const HEALTH_TIMEOUT_SECONDS: i64 = 5;
    pub const HEALTH_FAIL_THRESHOLD: i64 = 3;
    pub const HEALTH_STARTUP_GRACE_SECONDS: i64 = 0;
    pub const SLEEP_ENABLED: bool = true;
    pub const SLEEP_IDLE_WINDOW: &str = "7d";
    pub const LOG_ENABLED: bool = true;
    pub const LOG_RETENTION: &str = "7d";
    pub const METRICS_PATH: &str = "/metrics";
    pub const METRICS_PORT: i64 = 9090;
    pub const TRACING_SAMPLE_RATE: f64 = 0.1;
    pub const ROUTED_PORT_NAME: &str = "http";
    pub const GRPC_PORT_NAME: &str = "grpc";
    pub const METRICS_PORT_NAME: &str = "metrics";
}

fn span_of<T>(v: &Option<Sp<T>>) -> Option<Range<usize>> {
    v.as_ref().map(|s| s.span.clone())
}

/// A value with the key path it came from (profiles and regions both feed the result).
#[derive(Clone)]
struct From<T> {
    value: T,
    span: Range<usize>,
    path: String,
}

fn from<T: Clone>(v: &Option<Sp<T>>, path: String) -> Option<From<T>> {
    v.as_ref().map(|s| From {
        value: s.value.clone(),
        span: s.span.clone(),
        path,
    })
}

struct Ctx<'o> {
    issues: Issues,
    opts: &'o Options,
}

impl Ctx<'_> {
    fn missing(&mut self, at: Range<usize>, path: &str, what: &str, hint: String) {
        let message = if what == path {
            "this required key is missing".to_owned()
        } else {
            format!("{what} is required")
        };
        self.issues.push(at, path, E::MissingKey, message, hint);
    }

    /// An integer in [lo, hi], or the default when absent.
    fn ranged(
        &mut self,
        v: &Option<Sp<i64>>,
        path: &str,
        lo: i64,
        hi: i64,
        default: i64,
        unit: &str,
    ) -> i64 {
        match v {
            None => default,
            Some(s) if (lo..=hi).contains(&s.value) => s.value,
            Some(s) => {
                self.issues.push(
                    s.span.clone(),
                    path,
                    E::OutOfRange,
                    format!("{} is outside {lo}-{hi}{unit}", s.value),
                    format!("use a value from {lo} to {hi}{unit}; the default is {default}"),
                );
                default
            }
        }
    }

    fn port(&mut self, v: &Sp<i64>, path: &str) -> Option<u16> {
        let (lo, hi) = PORT_RANGE;
        if (lo..=hi).contains(&v.value) {
            u16::try_from(v.value).ok()
        } else {
            let why = if v.value > 0 && v.value < lo {
                "ports below 1024 need root, and loco runs apps as non-root"
            } else {
                "a TCP port is 1-65535"
            };
            self.issues.push(
                v.span.clone(),
                path,
                E::InvalidPort,
                format!("port {} is outside {lo}-{hi} ({why})", v.value),
                format!("listen on a port from {lo} to {hi}, e.g. 8000"),
            );
            None
        }
    }

    fn http_path(&mut self, v: &Sp<String>, path: &str, example: &str) -> bool {
        let s = &v.value;
        let problem = if !s.starts_with('/') {
            Some("does not start with '/'")
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains whitespace")
        } else if s.contains(['?', '#']) {
            Some("contains a query or fragment ('?' or '#')")
        } else if s.len() > 1024 {
            Some("is longer than 1024 characters")
        } else {
            None
        };
        if let Some(problem) = problem {
            let fixed = if s.starts_with('/') {
                example.to_owned()
            } else {
                format!("\"/{}\"", s.trim())
            };
            self.issues.push(
                v.span.clone(),
                path,
                E::InvalidPath,
                format!("path {s:?} {problem}"),
                format!("write an absolute URL path, e.g. {fixed}"),
            );
            false
        } else {
            true
        }
    }

    fn duration(
        &mut self,
        v: &Option<Sp<String>>,
        path: &str,
        default: &str,
        min: u64,
        max: u64,
    ) -> u64 {
        let fallback = syntax::parse_duration(default).unwrap_or(0);
        let Some(s) = v else { return fallback };
        match syntax::parse_duration(&s.value) {
            Some(secs) if (min..=max).contains(&secs) => secs,
            Some(_) => {
                self.issues.push(
                    s.span.clone(),
                    path,
                    E::OutOfRange,
                    format!("{:?} is outside {}-{}", s.value, human(min), human(max)),
                    format!(
                        "use a duration from {} to {}; the default is {default:?}",
                        human(min),
                        human(max)
                    ),
                );
                fallback
            }
            None => {
                self.issues.push(
                    s.span.clone(),
                    path,
                    E::InvalidDuration,
                    format!("{:?} is not a duration", s.value),
                    format!("write a number with a unit d, h, m or s, e.g. {default:?} or \"12h\""),
                );
                fallback
            }
        }
    }

    fn quantity(
        &mut self,
        v: &From<String>,
        check: fn(&str) -> Result<u64, syntax::QuantityProblem>,
    ) -> Option<u64> {
        match check(&v.value) {
            Ok(n) => Some(n),
            Err(p) => {
                self.issues.push(
                    v.span.clone(),
                    v.path.clone(),
                    E::InvalidQuantity,
                    p.message,
                    p.hint,
                );
                None
            }
        }
    }

    /// A `TmpSize`: a size quantity within the platform's maximum.
    fn tmp_size(&mut self, v: &From<String>) -> Option<u64> {
        match syntax::tmp_size_bytes(&v.value, self.opts.max_tmp_size_bytes) {
            Ok(n) => Some(n),
            Err(p) => {
                self.issues.push(
                    v.span.clone(),
                    v.path.clone(),
                    E::InvalidQuantity,
                    p.message,
                    p.hint,
                );
                None
            }
        }
    }

    fn enum_value(&mut self, v: &Sp<String>, path: &str, allowed: &[&str]) -> bool {
        if allowed.contains(&v.value.as_str()) {
            return true;
        }
        let list = allowed
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match suggest(&v.value, allowed.iter().copied()) {
            Some(s) => format!("did you mean {s:?}? Allowed: {list}"),
            None => format!("use one of {list}"),
        };
        self.issues.push(
            v.span.clone(),
            path,
            E::UnsupportedValue,
            format!("{:?} is not a supported value", v.value),
            hint,
        );
        false
    }

    fn dns_name(&mut self, v: &Sp<String>, path: &str, what: &str) -> bool {
        if syntax::is_dns1123_label(&v.value) {
            return true;
        }
        let fixed = sanitize_label(&v.value);
        let hint = if fixed.is_empty() {
            format!("use lowercase letters, digits and '-', e.g. \"my-{what}\"")
        } else {
            format!("use lowercase letters, digits and '-' (at most 63), e.g. {fixed:?}")
        };
        self.issues.push(
            v.span.clone(),
            path,
            E::InvalidName,
            format!("{what} name {:?} is not a DNS-1123 label", v.value),
            hint,
        );
        false
    }

    fn hostname(&mut self, v: &Sp<String>, path: &str, example: &str) -> bool {
        if syntax::is_hostname(&v.value) {
            return true;
        }
        let why = if !v.value.contains('.') {
            "has no domain part"
        } else if v.value.starts_with("*.") {
            "is a wildcard"
        } else if v.value.chars().any(|c| c.is_ascii_uppercase()) {
            "has capital letters"
        } else {
            "is not a valid DNS hostname"
        };
        self.issues.push(
            v.span.clone(),
            path,
            E::InvalidHostname,
            format!("hostname {:?} {why}", v.value),
            format!("write a lowercase hostname of DNS labels joined by dots, e.g. {example:?}"),
        );
        false
    }

    fn env_names(&mut self, vars: &raw::SpMap<Sp<raw::SecretValue>>, table_path: &str) {
        for (k, _) in &vars.0 {
            let path = join(table_path, &k.value);
            if !syntax::is_env_name(&k.value) {
                let fixed: String = k
                    .value
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                self.issues.push(
                    k.span.clone(),
                    path,
                    E::InvalidEnvName,
                    format!("{:?} is not a valid environment variable name", k.value),
                    format!(
                        "use letters, digits and '_', not starting with a digit, e.g. {:?}",
                        if fixed.starts_with(|c: char| c.is_ascii_digit()) {
                            format!("_{fixed}")
                        } else {
                            fixed
                        }
                    ),
                );
            } else if k.value.to_ascii_uppercase().starts_with("LOCO_") {
                self.issues.push(
                    k.span.clone(),
                    path,
                    E::ReservedEnvName,
                    format!("{:?} is reserved: LOCO_* variables are set by the platform", k.value),
                    "rename it without the LOCO_ prefix (loco injects LOCO_APP_NAME, LOCO_PROFILE, LOCO_<APP>_URL, ...)",
                );
            }
        }
    }
}

pub(crate) fn resolve(doc: &raw::LocoToml, opts: &Options) -> (Option<Validated>, Issues) {
    let mut cx = Ctx {
        issues: Issues::default(),
        opts,
    };
    let out = resolve_in(&mut cx, doc);
    let issues = cx.issues;
    if issues.is_empty() {
        (out, issues)
    } else {
        (None, issues)
    }
}

fn resolve_in(cx: &mut Ctx<'_>, doc: &raw::LocoToml) -> Option<Validated> {
    let top = 0..0;
    let empty_meta = raw::Metadata::default();
    let meta = match &doc.metadata {
        Some(m) => m,
        None => {
            cx.missing(
                top.clone(),
                "Metadata",
                "the [Metadata] table",
                "add [Metadata] with Name = \"myapp\"".into(),
            );
            &empty_meta
        }
    };

    // --- Metadata
    let config_version = match &meta.config_version {
        None => DEFAULT_CONFIG_VERSION.to_owned(),
        Some(v) if SUPPORTED_CONFIG_VERSIONS.contains(&v.value.as_str()) => v.value.clone(),
        Some(v) => {
            cx.issues.push(
                v.span.clone(),
                "Metadata.ConfigVersion",
                E::UnsupportedConfigVersion,
                format!("ConfigVersion {:?} is not supported", v.value),
                format!(
                    "set ConfigVersion = {DEFAULT_CONFIG_VERSION:?}; this loco reads: {}",
                    SUPPORTED_CONFIG_VERSIONS.join(", ")
                ),
            );
            v.value.clone()
        }
    };
    let name = match &meta.name {
        Some(n) => {
            cx.dns_name(n, "Metadata.Name", "app");
            n.value.clone()
        }
        None if doc.metadata.is_none() => String::new(),
        None => {
            cx.missing(
                meta.span.clone(),
                "Metadata.Name",
                "Metadata.Name",
                "add Name = \"myapp\" under [Metadata] (lowercase letters, digits, '-')".into(),
            );
            String::new()
        }
    };
    let description = meta.description.as_ref().map_or_else(String::new, |d| {
        if d.value.chars().count() > 1024 {
            cx.issues.push(
                d.span.clone(),
                "Metadata.Description",
                E::OutOfRange,
                "the description is longer than 1024 characters",
                "shorten it to one or two sentences",
            );
        }
        d.value.clone()
    });
    if let Some(t) = &meta.kind {
        if t.value != defaults::APP_TYPE && KNOWN_APP_TYPES.contains(&t.value.as_str()) {
            cx.issues.push(
                t.span.clone(),
                "Metadata.Type",
                E::UnsupportedValue,
                format!("app type {:?} is not supported yet: loco deploys stateless services only", t.value),
                "set Type = \"SERVICE\" (or remove it) and run the stateful part as a managed service",
            );
        } else {
            cx.enum_value(t, "Metadata.Type", &[defaults::APP_TYPE]);
        }
    }

    // --- Build
    let build = doc.build.as_ref().map_or(
        BuildSource::Dockerfile {
            path: defaults::DOCKERFILE.to_owned(),
        },
        |b| resolve_build(cx, b),
    );

    // --- Profile (needed by domain, resources and env)
    let profiles = doc.profiles.as_ref();
    if let Some(ps) = profiles {
        for (k, p) in &ps.0 {
            check_profile(cx, k, p);
        }
    }
    let profile: Option<(&Sp<String>, &raw::Profile)> = match &cx.opts.profile {
        None => None,
        Some(want) => match profiles.and_then(|ps| ps.get_entry(want)) {
            Some(found) => Some(found),
            None => {
                let names: Vec<&str> = profiles.map(|ps| ps.keys().collect()).unwrap_or_default();
                let at = profiles
                    .and_then(|ps| ps.0.first().map(|(k, _)| k.span.clone()))
                    .unwrap_or(top.clone());
                let hint = match (suggest(want, names.iter().copied()), names.is_empty()) {
                    (Some(s), _) => format!(
                        "did you mean --profile {s}? Profiles in this file: {}",
                        names.join(", ")
                    ),
                    (None, true) => format!(
                        "add a [Profile.{}] table, or deploy without --profile",
                        super::read::key_segment(want)
                    ),
                    (None, false) => format!(
                        "use one of: {}, or add [Profile.{}]",
                        names.join(", "),
                        super::read::key_segment(want)
                    ),
                };
                cx.issues.push(
                    at,
                    join("Profile", want),
                    E::ProfileNotFound,
                    format!("profile {want:?} is not defined in this file"),
                    hint,
                );
                None
            }
        },
    };
    let profile_name = cx.opts.profile.clone().filter(|_| profile.is_some());
    let profile_path = profile
        .map(|(k, _)| join("Profile", &k.value))
        .unwrap_or_default();

    // --- Regions
    let mut region_outs: BTreeMap<String, RegionOut> = BTreeMap::new();
    if let Some(rs) = &doc.regions {
        for (k, r) in &rs.0 {
            let path = join("RegionConfig", &k.value);
            cx.dns_name(k, &path, "region");
            let out = read_region(cx, r, &path);
            if let Some(c) = &out.cpu {
                cx.quantity(c, syntax::cpu_millis);
            }
            if let Some(m) = &out.memory {
                cx.quantity(m, syntax::memory_bytes);
            }
            if let Some(t) = &out.tmp_size {
                cx.tmp_size(t);
            }
            check_replicas(cx, &out.replicas, &k.span, &path);
            check_scale(cx, &out.scale, &k.span, &path);
            region_outs.insert(k.value.clone(), out);
        }
    }
    let region = select_region(cx, doc, meta, &region_outs);

    // Resolved resources: region, then profile over it, then defaults.
    let region_out = region.as_ref().and_then(|r| region_outs.get(r));
    let prof = profile.map(|(_, p)| p);
    let cpu = prof
        .and_then(|p| from(&p.cpu, join(&profile_path, "CPU")))
        .or_else(|| region_out.and_then(|r| r.cpu.clone()))
        .unwrap_or(From {
            value: defaults::CPU.to_owned(),
            span: top.clone(),
            path: "CPU".into(),
        });
    let memory = prof
        .and_then(|p| from(&p.memory, join(&profile_path, "Memory")))
        .or_else(|| region_out.and_then(|r| r.memory.clone()))
        .unwrap_or(From {
            value: defaults::MEMORY.to_owned(),
            span: top.clone(),
            path: "Memory".into(),
        });
    // No default here: without TmpSize the platform's setting applies (render).
    let tmp_size = prof
        .and_then(|p| from(&p.tmp_size, join(&profile_path, "TmpSize")))
        .or_else(|| region_out.and_then(|r| r.tmp_size.clone()));
    // Errors were reported where the values were read; here only the numbers are needed.
    let cpu_millis = syntax::cpu_millis(&cpu.value).ok();
    let memory_bytes = syntax::memory_bytes(&memory.value).ok();
    let tmp_size = tmp_size.and_then(|t| {
        let bytes = syntax::tmp_size_bytes(&t.value, cx.opts.max_tmp_size_bytes).ok()?;
        Some(TmpSize {
            quantity: t.value,
            bytes,
        })
    });

    let mut replicas_in = region_out.map(|r| r.replicas.clone()).unwrap_or_default();
    let mut replicas_anchor = (top.clone(), "RegionConfig".to_owned());
    if let Some((k, p)) = profile
        && let Some(r) = &p.replicas
    {
        if let Some(m) = from(&r.min, format!("{}.Replicas.Min", profile_path)) {
            replicas_in.min = Some(m);
        }
        if let Some(m) = from(&r.max, format!("{}.Replicas.Max", profile_path)) {
            replicas_in.max = Some(m);
        }
        replicas_anchor = (k.span.clone(), profile_path.clone());
    }
    let replicas = check_replicas(cx, &replicas_in, &replicas_anchor.0, &replicas_anchor.1);
    let autoscaling = region_out.and_then(|r| {
        let a = check_scale(cx, &r.scale, &replicas_anchor.0, &replicas_anchor.1)?;
        if let Some(b) = replicas
            && b.min == b.max
        {
            let (span, path) = r.scale.enabled.as_ref().map_or(
                (replicas_anchor.0.clone(), replicas_anchor.1.clone()),
                |e| (e.span.clone(), e.path.clone()),
            );
            cx.issues.push(
                span,
                path,
                E::InvalidAutoscaling,
                format!(
                    "autoscaling is on but min and max replicas are both {}",
                    b.min
                ),
                "give it room: set the maximum above the minimum, or turn autoscaling off",
            );
            return None;
        }
        Some(a)
    });

    // --- Routing and ports
    let routing_raw = doc.routing.as_ref();
    let routed_port = match routing_raw.and_then(|r| r.port.as_ref()) {
        Some(p) => cx.port(p, "Routing.Port"),
        None => {
            let at = routing_raw.map_or(top.clone(), |r| r.span.clone());
            cx.missing(
                at,
                "Routing.Port",
                "Routing.Port",
                "add [Routing] with Port = 8000 (the port your app listens on)".into(),
            );
            None
        }
    };
    let path_prefix = match routing_raw.and_then(|r| r.path_prefix.as_ref()) {
        Some(p) => {
            cx.http_path(p, "Routing.PathPrefix", "\"/api\"");
            p.value.clone()
        }
        None => defaults::PATH_PREFIX.to_owned(),
    };
    let idle_timeout = cx.ranged(
        &routing_raw.and_then(|r| r.idle_timeout.clone()),
        "Routing.IdleTimeout",
        1,
        3600,
        defaults::IDLE_TIMEOUT_SECONDS,
        " seconds",
    );

    let grpc_in = doc.grpc.as_ref().map(|g| resolve_grpc_input(cx, g));
    let metrics_enabled = doc
        .obs
        .as_ref()
        .and_then(|o| o.metrics.as_ref())
        .and_then(|m| m.enabled.as_ref())
        .is_some_and(|e| e.value);
    let metrics_port_raw = doc
        .obs
        .as_ref()
        .and_then(|o| o.metrics.as_ref())
        .and_then(|m| m.port.as_ref());
    let metrics_port = match metrics_port_raw {
        Some(p) => cx.port(p, "Obs.Metrics.Port"),
        None => u16::try_from(defaults::METRICS_PORT).ok(),
    };
    let (ports, routed_name, grpc_port_name) = build_ports(
        cx,
        doc.ports.as_ref(),
        routed_port,
        grpc_in.as_ref().and_then(|g| g.0),
        metrics_enabled.then_some(metrics_port).flatten(),
        metrics_port_raw.map(|p| p.span.clone()),
    );

    // --- Domain
    let host = resolve_host(
        cx,
        doc.domain.as_ref(),
        &name,
        profile.map(|(_, p)| p),
        &profile_path,
    );

    // --- Health
    let health = resolve_health(
        cx,
        doc.health.as_ref(),
        routed_port,
        grpc_in.as_ref().and_then(|g| g.0),
    );

    // --- Env
    let (env, env_values) = resolve_env(cx, doc.env.as_ref(), profile.map(|(_, p)| p));

    // --- Sleep
    let sleep = {
        let s = doc.sleep.as_ref();
        Sleep {
            enabled: s
                .and_then(|s| s.enabled.as_ref())
                .map_or(defaults::SLEEP_ENABLED, |e| e.value),
            idle_window_seconds: cx.duration(
                &s.and_then(|s| s.idle_window.clone()),
                "Sleep.IdleWindow",
                defaults::SLEEP_IDLE_WINDOW,
                3_600,
                90 * 86_400,
            ),
        }
    };

    // --- Obs
    let obs = resolve_obs(cx, doc.obs.as_ref(), metrics_port);

    if !cx.issues.is_empty() {
        return None;
    }
    let routed_port = routed_port?;
    let grpc = match (grpc_in, grpc_port_name) {
        (Some((Some(port), services)), Some(port_name)) => Some(Grpc {
            port_name,
            port,
            services,
        }),
        _ => None,
    };
    Some(Validated {
        spec: ResolvedSpec {
            spec_version: SPEC_VERSION,
            config_version,
            app: App {
                name,
                description,
                kind: AppKind::Service,
            },
            profile: profile_name,
            region: region?,
            build,
            ports,
            routing: Routing {
                host: host?,
                path_prefix,
                port_name: routed_name?,
                port: routed_port,
                idle_timeout_seconds: u32::try_from(idle_timeout).ok()?,
            },
            grpc,
            resources: Resources {
                cpu: cpu.value,
                memory: memory.value,
                cpu_millis: cpu_millis?,
                memory_bytes: memory_bytes?,
                tmp_size,
            },
            replicas: replicas?,
            autoscaling,
            health: health?,
            env,
            sleep,
            obs,
        },
        env_values,
    })
}

fn check_profile(cx: &mut Ctx<'_>, k: &Sp<String>, p: &raw::Profile) {
    let path = join("Profile", &k.value);
    cx.dns_name(k, &path, "profile");
    if let Some(c) = from(&p.cpu, join(&path, "CPU")) {
        cx.quantity(&c, syntax::cpu_millis);
    }
    if let Some(m) = from(&p.memory, join(&path, "Memory")) {
        cx.quantity(&m, syntax::memory_bytes);
    }
    if let Some(t) = from(&p.tmp_size, join(&path, "TmpSize")) {
        cx.tmp_size(&t);
    }
    if let Some(d) = &p.base_domain {
        cx.hostname(d, &join(&path, "BaseDomain"), "dev.deploy-app.com");
    }
    if let Some(r) = &p.replicas {
        for (v, key) in [(&r.min, "Min"), (&r.max, "Max")] {
            let Some(v) = v else { continue };
            if v.value < 1 {
                cx.issues.push(
                    v.span.clone(),
                    format!("{path}.Replicas.{key}"),
                    E::InvalidReplicas,
                    format!("{} replicas is below 1", v.value),
                    "run at least 1 replica; to stop an app when idle use [Sleep] instead",
                );
            }
        }
    }
    if let Some(e) = &p.env {
        check_env_table(cx, e, &join(&path, "Env"));
    }
}

fn check_env_table(cx: &mut Ctx<'_>, e: &raw::Env, path: &str) {
    if let Some(f) = &e.file
        && f.value.contains('\0')
    {
        cx.issues.push(
            f.span.clone(),
            join(path, "File"),
            E::InvalidPath,
            "the env file path contains a NUL byte",
            "write the path relative to loco.toml, e.g. \".env\"",
        );
    }
    if let Some(vars) = &e.variables {
        cx.env_names(vars, &join(path, "Variables"));
    }
}
