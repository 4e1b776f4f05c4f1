//! Property tests standing in for cargo-fuzz (which needs nightly): whatever the input,
//! `validate` returns (never panics), errors carry sane positions, and a valid result
//! survives a JSON round trip.
//!
//! The quick properties run with every `cargo test` (PROPTEST_CASES raises their count).
//! The long run is ignored by default:
//!
//! ```text
//! LOCO_FUZZ_SECONDS=300 cargo test -p loco-spec --release --lib fuzz::long_run -- --ignored --nocapture
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::{Options, ResolvedSpec, validate};

const FIXTURES: &[&str] = &[
    include_str!("../tests/fixtures/minimal.toml"),
    include_str!("../tests/fixtures/existing_flat.toml"),
    include_str!("../tests/fixtures/existing_tables.toml"),
    include_str!("../tests/fixtures/legacy_init.toml"),
    include_str!("../tests/fixtures/profiles.toml"),
    include_str!("../tests/fixtures/full.toml"),
    include_str!("../tests/fixtures/invalid_many.toml"),
    include_str!("../tests/fixtures/large_200.toml"),
];

/// Key names loco.toml uses, so generated documents reach deep into the validator.
const KEYS: &[&str] = &[
    "Metadata",
    "Name",
    "ConfigVersion",
    "Region",
    "Type",
    "type",
    "Build",
    "Image",
    "DockerfilePath",
    "Routing",
    "Port",
    "PathPrefix",
    "IdleTimeout",
    "Ports",
    "GRPC",
    "Services",
    "DomainConfig",
    "Hostname",
    "RegionConfig",
    "us-east-1",
    "CPU",
    "Memory",
    "ReplicasMin",
    "ReplicasMax",
    "Replicas",
    "Min",
    "Max",
    "EnableAutoScaling",
    "CPUTarget",
    "MemoryTarget",
    "Scalers",
    "Enabled",
    "Profile",
    "dev",
    "prod",
    "BaseDomain",
    "Health",
    "Path",
    "Command",
    "GRPCService",
    "Interval",
    "Timeout",
    "FailThreshold",
    "StartupGracePeriod",
    "Env",
    "File",
    "Variables",
    "LOCO_X",
    "Sleep",
    "IdleWindow",
    "Obs",
    "Logging",
    "Metrics",
    "Tracing",
    "SampleRate",
    "Tags",
    "PrimaryRegion",
    "http",
];

const STRINGS: &[&str] = &[
    "",
    "0.1",
    "myapp",
    "My_App",
    "us-east-1",
    "SERVICE",
    "docker",
    "custom",
    "platform",
    "100m",
    "0.5",
    "256Mi",
    "256MB",
    "1e3",
    "1E",
    "-1",
    ".5",
    "/",
    "/health",
    "health",
    "7d",
    "1d12h",
    "7 days",
    "grpc",
    "command",
    "http",
    "a.b",
    "x.deploy-app.com",
    "é",
    "\u{0}",
    "9999999999999999999999Gi",
    "1e999",
    "ghcr.io/a/b:1",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z_.\\- é]{0,12}",
    ]
}

fn scalar() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        proptest::sample::select(STRINGS).prop_map(|s| toml::Value::String(s.to_owned())),
        any::<String>().prop_map(toml::Value::String),
        (-3i64..70_000).prop_map(toml::Value::Integer),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ]
}

fn value() -> impl Strategy<Value = toml::Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            proptest::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary TOML documents whose keys are mostly loco.toml's own.
fn toml_doc() -> impl Strategy<Value = String> {
    proptest::collection::btree_map(key(), value(), 0..10).prop_map(|m| {
        let t: toml::Table = m.into_iter().collect();
        toml::to_string(&t).unwrap_or_default()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    DropLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (
            any::<usize>(),
            prop_oneof!["[\\[\\]=\"'{}.,#\\n a-zA-Z0-9_-]{0,12}", any::<String>()]
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DropLine),
    ]
}

fn apply(src: &str, m: &Mutation) -> String {
    let boundaries: Vec<usize> = src
        .char_indices()
        .map(|(i, _)| i)
        .chain([src.len()])
        .collect();
    let at = |n: usize| boundaries[n % boundaries.len()];
    let lines: Vec<&str> = src.lines().collect();
    match m {
        Mutation::Delete(a, n) => {
            let start = a % boundaries.len();
            let end = (start + n).min(boundaries.len() - 1);
            format!("{}{}", &src[..boundaries[start]], &src[boundaries[end]..])
        }
        Mutation::Insert(a, s) => {
            let i = at(*a);
            format!("{}{s}{}", &src[..i], &src[i..])
        }
        Mutation::DuplicateLine(n) | Mutation::DropLine(n) if lines.is_empty() => {
            let _ = n;
            src.to_owned()
        }
        Mutation::DuplicateLine(n) => {
            let mut l = lines.clone();
            let i = n % l.len();
            l.insert(i, lines[i]);
            l.join("\n")
        }
        Mutation::DropLine(n) => {
            let mut l = lines.clone();
            l.remove(n % lines.len());
            l.join("\n")
        }
    }
}

fn mutated_fixture() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(FIXTURES),
        proptest::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(src, ms)| ms.iter().fold(src.to_owned(), |s, m| apply(&s, m)))
}

fn options() -> impl Strategy<Value = Options> {
    (
        proptest::option::of(proptest::sample::select(
            &["dev", "prod", "staging", "x y"][..],
        )),
        0u32..20,
    )
        .prop_map(|(p, cap)| Options {
            profile: p.map(str::to_owned),
            max_replicas: cap,
            ..Options::default()
        })
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => toml_doc(),
        2 => mutated_fixture(),
        1 => any::<String>(),
        1 => "[\\[\\]=\"{}.,#\\n a-zA-Z0-9_-]{0,200}",
    ]
}

/// The property: no panic, positions inside the file, valid specs round-trip.
fn check(src: &str, opts: &Options) -> Result<(), TestCaseError> {
    match validate(src, "loco.toml", opts) {
        Ok(v) => {
            let json =
                serde_json::to_string(&v.spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: ResolvedSpec =
                serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &v.spec);
            prop_assert!(v.spec.replicas.min >= 1 && v.spec.replicas.min <= v.spec.replicas.max);
            prop_assert!(v.spec.replicas.max <= opts.max_replicas);
        }
        Err(e) => {
            prop_assert!(!e.errors.is_empty());
            let lines = src.split('\n').count();
            for x in &e.errors {
                prop_assert!(
                    x.line >= 1 && x.line <= lines,
                    "line {} of {}",
                    x.line,
                    lines
                );
                prop_assert!(x.column >= 1);
                prop_assert!(!x.message.is_empty());
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_toml_never_panics(src in toml_doc(), opts in options()) {
        check(&src, &opts)?;
    }

    #[test]
    fn mutated_fixtures_never_panic(src in mutated_fixture(), opts in options()) {
        check(&src, &opts)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        check(&src, &Options::default())?;
    }
}

/// Runs the property for LOCO_FUZZ_SECONDS (default 300) over fresh random seeds and
/// prints how many cases ran.
#[test]
#[ignore = "long run; see the module docs"]
fn long_run() {
    let seconds: u64 = std::env::var("LOCO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let cases = AtomicU64::new(0);
    let valid = AtomicU64::new(0);
    let strategy = (any_input(), options());
    let mut batch: u64 = 0;
    let seed_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    while Instant::now() < deadline {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&seed_base.to_le_bytes());
        seed[8..16].copy_from_slice(&batch.to_le_bytes());
        let config = Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let result = runner.run(&strategy, |(src, opts)| {
            cases.fetch_add(1, Ordering::Relaxed);
            if validate(&src, "loco.toml", &opts).is_ok() {
                valid.fetch_add(1, Ordering::Relaxed);
            }
            check(&src, &opts)
        });
        if let Err(e) = result {
            panic!(
                "property failed after {} cases: {e}",
                cases.load(Ordering::Relaxed)
            );
        }
        batch += 1;
    }
    println!(
        "spec fuzz: {} cases ({} valid specs) in {:.1}s, seed base {seed_base}",
        cases.load(Ordering::Relaxed),
        valid.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}
