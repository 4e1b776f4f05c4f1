//! How long validating a 200-line loco.toml takes, against plain TOML parsing of the same
//! file measured in the same run (the floor any validator pays). Target: under 1 ms.
//!
//! cargo bench -p loco-spec --bench spec_validate

use std::hint::black_box;
use std::time::{Duration, Instant};

use loco_spec::{Options, validate};

const FIXTURE: &str = include_str!("../tests/fixtures/large_200.toml");

/// Median per-iteration time over several rounds of `iters` calls.
fn measure(iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters / 10 {
        f();
    }
    let mut rounds: Vec<Duration> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .collect();
    rounds.sort();
    rounds[rounds.len() / 2]
}

fn main() {
    let lines = FIXTURE.lines().count();
    let opts = Options {
        profile: Some("prod".to_owned()),
        ..Options::default()
    };
    // Fail loudly rather than time the error path.
    if let Err(e) = validate(FIXTURE, "large_200.toml", &opts) {
        eprintln!("fixture is invalid:\n{e}");
        std::process::exit(1);
    }
    let iters = 2_000;
    let baseline = measure(iters, || {
        black_box(toml::from_str::<toml::Table>(black_box(FIXTURE)).ok());
    });
    let spec = measure(iters, || {
        black_box(validate(black_box(FIXTURE), "large_200.toml", &opts).ok());
    });
    let ratio = spec.as_secs_f64() / baseline.as_secs_f64().max(1e-12);
    println!(
        "spec_validate: {lines}-line loco.toml validated in {:.1} µs (baseline toml::from_str::<toml::Table>: {:.1} µs, ratio {ratio:.2}x); target < 1000 µs: {}",
        spec.as_secs_f64() * 1e6,
        baseline.as_secs_f64() * 1e6,
        if spec < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
