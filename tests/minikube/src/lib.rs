//! Shared helpers of the end-to-end and smoke suites that run against the local stack
//! (`tests/minikube/stack up`) or the cluster of `LOCO_TEST_KUBECONFIG`.
//!
//! Every test reads its servers from the variables `tests/minikube/stack env` prints.
//! When one is missing the test is skipped with a message, except under `CI=true`,
//! where a missing or broken component fails the test: CI never passes by skipping.

use std::future::Future;
use std::time::{Duration, Instant};

/// Whether a missing server must fail the test (CI) instead of skipping it.
pub fn strict() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The value of `var`, or `None` (the caller returns early, skipping) when it is unset
/// outside CI. Under CI a missing variable panics with the command that sets it.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if strict() => panic!(
            "{var} is not set but CI=true requires every test server: run `eval \"$(tests/minikube/stack env)\"` after `tests/minikube/stack up`"
        ),
        _ => {
            eprintln!(
                "skipping: {var} is not set (run tests/minikube/stack up, then eval \"$(tests/minikube/stack env)\")"
            );
            None
        }
    }
}

/// A name unique to this test run, for objects that other runs must not collide with.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0x00ff_ffff)
}

/// Polls `probe` until it yields `Some`, or fails after `timeout` with the last
/// observation, so a failing test says what it saw instead of just "timed out".
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
