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

fn human(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs.is_multiple_of(3_600) {
        format!("{}h", secs / 3_600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn example_label(app_name: &str) -> String {
    let l = sanitize_label(app_name);
    if l.is_empty() { "myapp".to_owned() } else { l }
}

fn sanitize_label(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-')
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// Replica bounds as read from one place (a region or a profile).
#[derive(Default, Clone)]
struct ReplicaInput {
    min: Option<From<i64>>,
    max: Option<From<i64>>,
}

/// Autoscaling as read from a region, in either of loco's two spellings.
struct ScaleInput {
    enabled: Option<From<bool>>,
    cpu: Option<From<i64>>,
    memory: Option<From<i64>>,
}

struct RegionOut {
    cpu: Option<From<String>>,
    memory: Option<From<String>>,
    replicas: ReplicaInput,
    scale: ScaleInput,
}

/// Picks one of two spellings of the same setting, refusing both at once.
fn one_of<T: Clone>(
    cx: &mut Ctx<'_>,
    flat: Option<From<T>>,
    table: Option<From<T>>,
) -> Option<From<T>> {
    match (flat, table) {
        (Some(f), Some(t)) => {
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::ConflictingKeys,
                format!("{} and {} set the same thing", f.path, t.path),
                format!("keep one of them; remove {}", f.path),
            );
            Some(t)
        }
        (f, t) => t.or(f),
    }
}

fn read_region(cx: &mut Ctx<'_>, r: &raw::Region, path: &str) -> RegionOut {
    let p = |k: &str| join(path, k);
    let table_min = r
        .replicas
        .as_ref()
        .and_then(|t| from(&t.min, format!("{}.Min", p("Replicas"))));
    let table_max = r
        .replicas
        .as_ref()
        .and_then(|t| from(&t.max, format!("{}.Max", p("Replicas"))));
    let replicas = ReplicaInput {
        min: one_of(cx, from(&r.replicas_min, p("ReplicasMin")), table_min),
        max: one_of(cx, from(&r.replicas_max, p("ReplicasMax")), table_max),
    };
    let s = r.scalers.as_ref();
    let scale = ScaleInput {
        enabled: one_of(
            cx,
            from(&r.enable_autoscaling, p("EnableAutoScaling")),
            s.and_then(|s| from(&s.enabled, format!("{}.Enabled", p("Scalers")))),
        ),
        cpu: one_of(
            cx,
            from(&r.cpu_target, p("CPUTarget")),
            s.and_then(|s| from(&s.cpu_target, format!("{}.CPUTarget", p("Scalers")))),
        ),
        memory: one_of(
            cx,
            from(&r.memory_target, p("MemoryTarget")),
            s.and_then(|s| from(&s.memory_target, format!("{}.MemoryTarget", p("Scalers")))),
        ),
    };
    RegionOut {
        cpu: from(&r.cpu, p("CPU")),
        memory: from(&r.memory, p("Memory")),
        replicas,
        scale,
    }
}

/// 1 <= min <= max <= cap. Returns the bounds when they hold.
fn check_replicas(
    cx: &mut Ctx<'_>,
    r: &ReplicaInput,
    anchor: &Range<usize>,
    anchor_path: &str,
) -> Option<ReplicaBounds> {
    let cap = i64::from(cx.opts.max_replicas);
    let mut ok = true;
    let min = match &r.min {
        Some(m) if m.value < 1 => {
            cx.issues.push(
                m.span.clone(),
                m.path.clone(),
                E::InvalidReplicas,
                format!("minimum replicas is {}, below 1", m.value),
                "run at least 1 replica; to stop an app when idle use [Sleep] instead",
            );
            ok = false;
            1
        }
        Some(m) => m.value,
        None => defaults::REPLICAS_MIN,
    };
    let max = r.max.as_ref().map_or(min, |m| m.value);
    if let Some(m) = &r.max
        && m.value < min
    {
        let min_at = r
            .min
            .as_ref()
            .map_or(String::from("the default minimum"), |x| x.path.clone());
        cx.issues.push(
            m.span.clone(),
            m.path.clone(),
            E::InvalidReplicas,
            format!(
                "maximum replicas {} is below the minimum {min} ({min_at})",
                m.value
            ),
            format!("raise the maximum to at least {min} or lower the minimum"),
        );
        ok = false;
    }
    if max > cap {
        let (span, path) = match (&r.max, &r.min) {
            (Some(m), _) => (m.span.clone(), m.path.clone()),
            (None, Some(m)) => (m.span.clone(), m.path.clone()),
            (None, None) => (anchor.clone(), anchor_path.to_owned()),
        };
        cx.issues.push(
            span,
            path,
            E::InvalidReplicas,
            format!("{max} replicas is above this platform's cap of {cap}"),
            format!("use at most {cap} replicas, or ask the operator to raise the cap"),
        );
        ok = false;
    }
    let (min, max) = (u32::try_from(min).ok()?, u32::try_from(max).ok()?);
    ok.then_some(ReplicaBounds { min, max })
}

fn check_scale(
    cx: &mut Ctx<'_>,
    s: &ScaleInput,
    anchor: &Range<usize>,
    anchor_path: &str,
) -> Option<Autoscaling> {
    let enabled = s.enabled.as_ref().is_some_and(|e| e.value);
    let mut set = Vec::new();
    for (t, metric) in [(&s.cpu, ScaleMetric::Cpu), (&s.memory, ScaleMetric::Memory)] {
        let Some(t) = t else { continue };
        if !(0..=100).contains(&t.value) {
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::InvalidAutoscaling,
                format!("target {}% is outside 1-100", t.value),
                "set a utilisation percent from 1 to 100 (0 means unset)",
            );
            continue;
        }
        if t.value == 0 {
            continue;
        }
        if !enabled {
            let switch = s
                .enabled
                .as_ref()
                .map_or("EnableAutoScaling = true".to_owned(), |e| {
                    format!("{} = true", e.path.rsplit('.').next().unwrap_or("Enabled"))
                });
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::InvalidAutoscaling,
                "a target is set but autoscaling is off",
                format!("set {switch} to autoscale, or set the target to 0 (unset)"),
            );
            continue;
        }
        set.push((t, metric));
    }
    if !enabled {
        return None;
    }
    match set.as_slice() {
        [] => {
            let (span, path) = s
                .enabled
                .as_ref()
                .map_or((anchor.clone(), anchor_path.to_owned()), |e| {
                    (e.span.clone(), e.path.clone())
                });
            cx.issues.push(
                span,
                path,
                E::InvalidAutoscaling,
                "autoscaling is on but neither CPUTarget nor MemoryTarget is set",
                "set exactly one of CPUTarget or MemoryTarget (1-100), e.g. CPUTarget = 70",
            );
            None
        }
        [(t, metric)] => Some(Autoscaling {
            metric: *metric,
            target_percent: u8::try_from(t.value).ok()?,
        }),
        [_, (second, _), ..] => {
            cx.issues.push(
                second.span.clone(),
                second.path.clone(),
                E::InvalidAutoscaling,
                "both CPUTarget and MemoryTarget are set",
                "set exactly one of CPUTarget or MemoryTarget; set the other to 0 or remove it",
            );
            None
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
    // Errors were reported where the values were read; here only the numbers are needed.
    let cpu_millis = syntax::cpu_millis(&cpu.value).ok();
    let memory_bytes = syntax::memory_bytes(&memory.value).ok();

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

fn resolve_build(cx: &mut Ctx<'_>, b: &raw::Build) -> BuildSource {
    let kind = match (&b.kind, &b.kind_lower) {
        (Some(upper), Some(lower)) => {
            cx.issues.push(
                lower.span.clone(),
                "Build.type",
                E::ConflictingKeys,
                "both `Type` and `type` are set; they are the same key",
                "keep `Type` and remove `type`",
            );
            Some(upper)
        }
        (a, b) => a.as_ref().or(b.as_ref()),
    };
    if let Some(k) = kind {
        let path = if b.kind.is_some() {
            "Build.Type"
        } else {
            "Build.type"
        };
        cx.enum_value(k, path, &[defaults::BUILD_TYPE]);
    }
    match (&b.image, &b.dockerfile_path) {
        (Some(img), Some(df)) => {
            cx.issues.push(
                df.span.clone(),
                "Build.DockerfilePath",
                E::ConflictingKeys,
                "both Image and DockerfilePath are set: loco either builds or deploys an image",
                "remove DockerfilePath to deploy the image, or remove Image to build",
            );
            BuildSource::Image {
                reference: img.value.clone(),
            }
        }
        (Some(img), None) => {
            if !syntax::is_image_reference(&img.value) {
                cx.issues.push(
                    img.span.clone(),
                    "Build.Image",
                    E::InvalidImage,
                    format!("{:?} is not a container image reference", img.value),
                    "write registry/repository:tag in lowercase, e.g. \"ghcr.io/org/app:1.2\"",
                );
            }
            BuildSource::Image {
                reference: img.value.clone(),
            }
        }
        (None, Some(df)) => {
            if df.value.trim().is_empty() || df.value.contains('\0') {
                cx.issues.push(
                    df.span.clone(),
                    "Build.DockerfilePath",
                    E::InvalidPath,
                    "the Dockerfile path is empty",
                    "write the path relative to loco.toml, e.g. \"Dockerfile\", or remove the key",
                );
            }
            BuildSource::Dockerfile {
                path: df.value.clone(),
            }
        }
        (None, None) => BuildSource::Dockerfile {
            path: defaults::DOCKERFILE.to_owned(),
        },
    }
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

fn select_region(
    cx: &mut Ctx<'_>,
    doc: &raw::LocoToml,
    meta: &raw::Metadata,
    regions: &BTreeMap<String, RegionOut>,
) -> Option<String> {
    let chosen = match (&meta.region, &doc.primary_region) {
        (Some(a), Some(b)) if a.value != b.value => {
            cx.issues.push(
                b.span.clone(),
                "PrimaryRegion",
                E::ConflictingKeys,
                format!(
                    "PrimaryRegion {:?} differs from Metadata.Region {:?}",
                    b.value, a.value
                ),
                "remove PrimaryRegion; Metadata.Region names the deploy region",
            );
            Some((a, "Metadata.Region"))
        }
        (Some(a), _) => Some((a, "Metadata.Region")),
        (None, Some(b)) => Some((b, "PrimaryRegion")),
        (None, None) => None,
    };
    let names: Vec<&str> = regions.keys().map(String::as_str).collect();
    match chosen {
        Some((r, path)) => {
            if doc.regions.is_none() || regions.contains_key(&r.value) {
                if doc.regions.is_none() {
                    cx.dns_name(r, path, "region");
                }
                return Some(r.value.clone());
            }
            let hint = match suggest(&r.value, names.iter().copied()) {
                Some(s) => format!(
                    "did you mean {s:?}? Regions in this file: {}",
                    names.join(", ")
                ),
                None if names.is_empty() => format!(
                    "add a [RegionConfig.{}] table with CPU and Memory",
                    super::read::key_segment(&r.value)
                ),
                None => format!(
                    "use one of: {}, or add [RegionConfig.{}]",
                    names.join(", "),
                    super::read::key_segment(&r.value)
                ),
            };
            cx.issues.push(
                r.span.clone(),
                path,
                E::RegionNotFound,
                format!("region {:?} has no [RegionConfig] entry", r.value),
                hint,
            );
            None
        }
        None => match names.as_slice() {
            [] if doc.regions.is_none() => Some(cx.opts.default_region.clone()),
            [only] => Some((*only).to_owned()),
            _ => {
                cx.missing(
                    meta.span.clone(),
                    "Metadata.Region",
                    "Metadata.Region",
                    if names.is_empty() {
                        "add a [RegionConfig.<region>] table, or remove the empty [RegionConfig]".into()
                    } else {
                        format!("this file configures several regions; set Region under [Metadata] to one of: {}", names.join(", "))
                    },
                );
                None
            }
        },
    }
}

/// (port, services) of [GRPC], validated.
fn resolve_grpc_input(cx: &mut Ctx<'_>, g: &raw::Grpc) -> (Option<u16>, Vec<String>) {
    let port = match &g.port {
        Some(p) => cx.port(p, "GRPC.Port"),
        None => {
            cx.missing(
                g.span.clone(),
                "GRPC.Port",
                "GRPC.Port",
                "add Port = 9000 (the port serving gRPC; it may equal Routing.Port)".into(),
            );
            None
        }
    };
    let mut services = Vec::new();
    match &g.services {
        Some(list) if !list.value.is_empty() => {
            let mut seen = BTreeSet::new();
            for (i, s) in list.value.iter().enumerate() {
                let path = format!("GRPC.Services[{i}]");
                if !syntax::is_grpc_service(&s.value) {
                    cx.issues.push(
                        s.span.clone(),
                        path,
                        E::InvalidGrpcService,
                        format!("{:?} is not a fully qualified gRPC service name", s.value),
                        "write package.Service as in your .proto, e.g. \"helloworld.Greeter\"",
                    );
                } else if !seen.insert(s.value.clone()) {
                    cx.issues.push(
                        s.span.clone(),
                        path,
                        E::InvalidGrpcService,
                        format!("{:?} is listed twice", s.value),
                        "list each service once",
                    );
                } else {
                    services.push(s.value.clone());
                }
            }
        }
        Some(list) => cx.issues.push(
            list.span.clone(),
            "GRPC.Services",
            E::MissingKey,
            "GRPC.Services is empty",
            "list the gRPC services to route, e.g. Services = [\"helloworld.Greeter\"]",
        ),
        None => cx.missing(
            g.span.clone(),
            "GRPC.Services",
            "GRPC.Services",
            "add Services = [\"package.Service\"] listing the gRPC services to route".into(),
        ),
    }
    (port, services)
}

/// Builds the container port list: the routed HTTP port, named [Ports], the gRPC port and
/// the metrics port. Returns (ports, routed port name, gRPC port name).
fn build_ports(
    cx: &mut Ctx<'_>,
    named: Option<&raw::SpMap<Sp<i64>>>,
    routed: Option<u16>,
    grpc: Option<u16>,
    metrics: Option<u16>,
    metrics_span: Option<Range<usize>>,
) -> (Vec<Port>, Option<String>, Option<String>) {
    let mut ports: Vec<Port> = Vec::new();
    let mut named_ok: Vec<(String, u16, Range<usize>)> = Vec::new();
    if let Some(named) = named {
        for (k, v) in &named.0 {
            let path = join("Ports", &k.value);
            let mut ok = true;
            if !syntax::is_port_name(&k.value) {
                cx.issues.push(
                    k.span.clone(),
                    path.clone(),
                    E::InvalidName,
                    format!("port name {:?} is not an IANA service name", k.value),
                    "use at most 15 lowercase letters, digits and '-', with at least one letter, e.g. \"admin\"",
                );
                ok = false;
            }
            let Some(n) = cx.port(v, &path) else { continue };
            if let Some((other, _, _)) = named_ok.iter().find(|(_, p, _)| *p == n) {
                cx.issues.push(
                    v.span.clone(),
                    path,
                    E::PortConflict,
                    format!("port {n} is already named {other:?}"),
                    "give each port number one name",
                );
                continue;
            }
            if ok {
                named_ok.push((k.value.clone(), n, k.span.clone()));
            }
        }
    }
    let Some(routed) = routed else {
        return (ports, None, None);
    };
    let routed_name = match named_ok.iter().find(|(_, p, _)| *p == routed) {
        Some((n, _, _)) => n.clone(),
        None => {
            if let Some((_, p, span)) = named_ok
                .iter()
                .find(|(n, _, _)| n == defaults::ROUTED_PORT_NAME)
            {
                cx.issues.push(
                    span.clone(),
                    "Ports.http",
                    E::PortConflict,
                    format!("the name \"http\" belongs to the routed port {routed} (Routing.Port), but here it is {p}"),
                    format!("rename this port, or set Routing.Port = {p}"),
                );
            }
            defaults::ROUTED_PORT_NAME.to_owned()
        }
    };
    ports.push(Port {
        name: routed_name.clone(),
        port: routed,
        protocol: PortProtocol::Http,
        routed: true,
    });
    for (n, p, _) in &named_ok {
        if *p != routed {
            ports.push(Port {
                name: n.clone(),
                port: *p,
                protocol: PortProtocol::Tcp,
                routed: false,
            });
        }
    }
    let extra = |cx: &mut Ctx<'_>,
                 ports: &mut Vec<Port>,
                 number: u16,
                 name: &str,
                 protocol: PortProtocol,
                 path: &str,
                 span: Range<usize>|
     -> String {
        if let Some(existing) = ports.iter_mut().find(|p| p.port == number) {
            if !existing.routed {
                existing.protocol = protocol;
            }
            return existing.name.clone();
        }
        if let Some(existing) = ports.iter().find(|p| p.name == name) {
            cx.issues.push(
                span,
                path,
                E::PortConflict,
                format!(
                    "port {number} would be named {name:?}, but that name is port {}",
                    existing.port
                ),
                format!(
                    "rename the other {name:?} port in [Ports], or use port {} here",
                    existing.port
                ),
            );
        }
        ports.push(Port {
            name: name.to_owned(),
            port: number,
            protocol,
            routed: false,
        });
        name.to_owned()
    };
    let grpc_name = grpc.map(|g| {
        extra(
            cx,
            &mut ports,
            g,
            defaults::GRPC_PORT_NAME,
            PortProtocol::Grpc,
            "GRPC.Port",
            0..0,
        )
    });
    if let Some(m) = metrics {
        extra(
            cx,
            &mut ports,
            m,
            defaults::METRICS_PORT_NAME,
            PortProtocol::Http,
            "Obs.Metrics.Port",
            metrics_span.unwrap_or(0..0),
        );
    }
    (ports, Some(routed_name), grpc_name)
}

fn resolve_host(
    cx: &mut Ctx<'_>,
    domain: Option<&raw::DomainConfig>,
    app_name: &str,
    profile: Option<&raw::Profile>,
    profile_path: &str,
) -> Option<String> {
    let mut hostname: Option<&Sp<String>> = None;
    let mut refused_custom = false;
    if let Some(d) = domain {
        if let Some(t) = &d.kind {
            if t.value == "custom" {
                refused_custom = true;
                let label = d
                    .hostname
                    .as_ref()
                    .and_then(|h| h.value.split('.').next().filter(|l| !l.is_empty()))
                    .unwrap_or(app_name);
                let base = profile
                    .and_then(|p| p.base_domain.as_ref())
                    .map_or(cx.opts.base_domain.as_str(), |b| b.value.as_str());
                cx.issues.push(
                    t.span.clone(),
                    "DomainConfig.Type",
                    E::CustomDomainWithdrawn,
                    "custom domains were withdrawn from loco's roadmap and are not served",
                    format!(
                        "remove Type (or set Type = \"platform\") and use the platform hostname \"{label}.{base}\"; with --profile the app is served under that profile's BaseDomain"
                    ),
                );
            } else {
                cx.enum_value(t, "DomainConfig.Type", &["platform", "custom"]);
            }
        }
        if let Some(h) = &d.hostname
            && cx.hostname(
                h,
                "DomainConfig.Hostname",
                &format!("{}.{}", example_label(app_name), cx.opts.base_domain),
            )
        {
            hostname = Some(h);
        }
    }
    if refused_custom {
        return None;
    }
    let base_override = profile.and_then(|p| p.base_domain.as_ref());
    let (label, rest) = match hostname {
        Some(h) => match h.value.split_once('.') {
            Some((l, r)) => (l.to_owned(), r.to_owned()),
            None => return None,
        },
        None => (app_name.to_owned(), cx.opts.base_domain.clone()),
    };
    let base = base_override.map_or(rest, |b| b.value.clone());
    let host = format!("{label}.{base}");
    if label.is_empty() || !syntax::is_hostname(&host) {
        // The parts were reported where they were written; only flag a combination that is
        // invalid although its parts are fine (e.g. too long).
        if syntax::is_dns1123_label(&label) && syntax::is_hostname(&base) {
            let (span, path) = match base_override {
                Some(b) => (b.span.clone(), join(profile_path, "BaseDomain")),
                None => (
                    hostname.map_or(0..0, |h| h.span.clone()),
                    "DomainConfig.Hostname".to_owned(),
                ),
            };
            cx.issues.push(
                span,
                path,
                E::InvalidHostname,
                format!(
                    "the resulting hostname {host:?} is not valid (longer than 253 characters?)"
                ),
                "shorten the app name or the base domain",
            );
        }
        return None;
    }
    // A platform hostname lives under the platform's domain; anything else would be a
    // custom domain by another name, and those were withdrawn.
    let platform = cx.opts.base_domain.as_str();
    if base != platform && !base.ends_with(&format!(".{platform}")) {
        let (span, path) = match base_override {
            Some(b) => (b.span.clone(), join(profile_path, "BaseDomain")),
            None => (
                hostname.map_or(0..0, |h| h.span.clone()),
                "DomainConfig.Hostname".to_owned(),
            ),
        };
        cx.issues.push(
            span,
            path,
            E::InvalidHostname,
            format!("{host:?} is not under this platform's domain {platform:?}"),
            format!(
                "use the platform hostname \"{label}.{platform}\" (or a BaseDomain under {platform}); custom domains were withdrawn"
            ),
        );
        return None;
    }
    Some(host)
}

fn resolve_health(
    cx: &mut Ctx<'_>,
    h: Option<&raw::Health>,
    routed: Option<u16>,
    grpc: Option<u16>,
) -> Option<Health> {
    let empty = raw::Health::default();
    let h = h.unwrap_or(&empty);
    let kind = match &h.kind {
        Some(k) => {
            if !cx.enum_value(k, "Health.Type", &["http", "grpc", "command"]) {
                return None;
            }
            k.value.as_str()
        }
        None => defaults::HEALTH_TYPE,
    };
    let interval = cx.ranged(
        &h.interval,
        "Health.Interval",
        1,
        3600,
        defaults::HEALTH_INTERVAL_SECONDS,
        " seconds",
    );
    let timeout = cx.ranged(
        &h.timeout,
        "Health.Timeout",
        1,
        3600,
        defaults::HEALTH_TIMEOUT_SECONDS,
        " seconds",
    );
    let fail = cx.ranged(
        &h.fail_threshold,
        "Health.FailThreshold",
        1,
        100,
        defaults::HEALTH_FAIL_THRESHOLD,
        "",
    );
    let grace = cx.ranged(
        &h.startup_grace_period,
        "Health.StartupGracePeriod",
        0,
        300,
        defaults::HEALTH_STARTUP_GRACE_SECONDS,
        " seconds",
    );
    let port = match &h.port {
        Some(p) => cx.port(p, "Health.Port"),
        None => None,
    };
    let not_for = |cx: &mut Ctx<'_>, span: Option<Range<usize>>, key: &str, applies: &str| {
        if let Some(span) = span {
            cx.issues.push(
                span,
                format!("Health.{key}"),
                E::ConflictingKeys,
                format!("Health.{key} only applies when Type = {applies:?}, but Type = {kind:?}"),
                format!("remove {key}, or set Type = {applies:?}"),
            );
        }
    };
    let check = match kind {
        "grpc" => {
            not_for(cx, span_of(&h.path), "Path", "http");
            not_for(cx, span_of(&h.command), "Command", "command");
            let port = port.or(grpc).or(routed);
            HealthCheck::Grpc {
                port: port?,
                service: h
                    .grpc_service
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
            }
        }
        "command" => {
            not_for(cx, span_of(&h.path), "Path", "http");
            not_for(cx, span_of(&h.grpc_service), "GRPCService", "grpc");
            not_for(cx, span_of(&h.port), "Port", "http");
            match &h.command {
                Some(c) if !c.value.is_empty() && c.value.iter().all(|a| !a.value.is_empty()) => {
                    HealthCheck::Command {
                        command: c.value.iter().map(|a| a.value.clone()).collect(),
                    }
                }
                Some(c) => {
                    cx.issues.push(
                        c.span.clone(),
                        "Health.Command",
                        E::MissingKey,
                        "the health command is empty",
                        "write the program and its arguments, e.g. Command = [\"/bin/healthcheck\", \"--quick\"]",
                    );
                    return None;
                }
                None => {
                    cx.missing(
                        h.span.clone(),
                        "Health.Command",
                        "Health.Command",
                        "add Command = [\"/bin/healthcheck\"] (exit 0 means healthy)".into(),
                    );
                    return None;
                }
            }
        }
        _ => {
            not_for(cx, span_of(&h.command), "Command", "command");
            not_for(cx, span_of(&h.grpc_service), "GRPCService", "grpc");
            match &h.path {
                Some(p) => {
                    if !cx.http_path(p, "Health.Path", "\"/health\"") {
                        return None;
                    }
                    HealthCheck::Http {
                        path: p.value.clone(),
                        port: port.or(routed)?,
                    }
                }
                None => {
                    cx.missing(
                        h.span.clone(),
                        "Health.Path",
                        "Health.Path",
                        "add [Health] with Path = \"/health\" (an HTTP path answering 200 when the app is healthy)".into(),
                    );
                    return None;
                }
            }
        }
    };
    Some(Health {
        check,
        interval_seconds: u32::try_from(interval).ok()?,
        timeout_seconds: u32::try_from(timeout).ok()?,
        failure_threshold: u32::try_from(fail).ok()?,
        startup_grace_period_seconds: u32::try_from(grace).ok()?,
    })
}

fn resolve_env(
    cx: &mut Ctx<'_>,
    env: Option<&raw::Env>,
    profile: Option<&raw::Profile>,
) -> (Env, EnvValues) {
    let mut file = None;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if let Some(e) = env {
        check_env_table(cx, e, "Env");
        file = e.file.as_ref().map(|f| f.value.clone());
        if let Some(vars) = &e.variables {
            for (k, v) in &vars.0 {
                values.insert(k.value.clone(), v.value.0.clone());
            }
        }
    }
    // Profile tables were checked with the other profiles; here they are only merged.
    if let Some(pe) = profile.and_then(|p| p.env.as_ref()) {
        if let Some(f) = &pe.file {
            file = Some(f.value.clone());
        }
        if let Some(vars) = &pe.variables {
            for (k, v) in &vars.0 {
                values.insert(k.value.clone(), v.value.0.clone());
            }
        }
    }
    // loco's own files write `File = ""` for "no file".
    let file = file.filter(|f| !f.is_empty());
    let variables = values
        .keys()
        .map(|name| EnvVar {
            name: name.clone(),
            source: EnvSource::Inline,
        })
        .collect();
    (Env { file, variables }, EnvValues::new(values))
}

fn resolve_obs(cx: &mut Ctx<'_>, obs: Option<&raw::Obs>, metrics_port: Option<u16>) -> Obs {
    let l = obs.and_then(|o| o.logging.as_ref());
    let m = obs.and_then(|o| o.metrics.as_ref());
    let t = obs.and_then(|o| o.tracing.as_ref());
    let logging = Logging {
        enabled: l
            .and_then(|l| l.enabled.as_ref())
            .map_or(defaults::LOG_ENABLED, |e| e.value),
        retention_seconds: cx.duration(
            &l.and_then(|l| l.retention_period.clone()),
            "Obs.Logging.RetentionPeriod",
            defaults::LOG_RETENTION,
            3_600,
            365 * 86_400,
        ),
        structured: l
            .and_then(|l| l.structured.as_ref())
            .is_some_and(|e| e.value),
    };
    let metrics_path = match m.and_then(|m| m.path.as_ref()) {
        Some(p) => {
            cx.http_path(p, "Obs.Metrics.Path", "\"/metrics\"");
            p.value.clone()
        }
        None => defaults::METRICS_PATH.to_owned(),
    };
    let metrics = Metrics {
        enabled: m.and_then(|m| m.enabled.as_ref()).is_some_and(|e| e.value),
        path: metrics_path,
        port: metrics_port.unwrap_or(9090),
    };
    let sample_rate = match t.and_then(|t| t.sample_rate.as_ref()) {
        Some(s) if (0.0..=1.0).contains(&s.value) => s.value,
        Some(s) => {
            cx.issues.push(
                s.span.clone(),
                "Obs.Tracing.SampleRate",
                E::OutOfRange,
                format!("sample rate {} is outside 0.0-1.0", s.value),
                "write a fraction, e.g. 0.1 to trace one request in ten",
            );
            defaults::TRACING_SAMPLE_RATE
        }
        None => defaults::TRACING_SAMPLE_RATE,
    };
    let tags = t
        .and_then(|t| t.tags.as_ref())
        .map(|tags| {
            tags.0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    Obs {
        logging,
        metrics,
        tracing: Tracing {
            enabled: t.and_then(|t| t.enabled.as_ref()).is_some_and(|e| e.value),
            sample_rate,
            tags,
        },
    }
}
