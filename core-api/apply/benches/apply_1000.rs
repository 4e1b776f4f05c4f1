//! Apply 1,000 apps' rendered objects to an empty cluster: loco's apply engine vs
//! `kubectl apply --server-side` of the same YAML vs a raw concurrent server-side-apply
//! loop (namespaces first, then everything else, same concurrency, no reads, no waits).
//! Then a no-change redeploy of all apps, which must make 0 writes.
//!
//! Targets (issue): ours >= 3x faster than kubectl, and within 1.2x of the raw loop.
//!
//!     eval "$(tests/minikube/stack env)"
//!     cargo bench -p loco-apply --bench apply_1000          # LOCO_BENCH_APPS=100 to scale down
//!
//! The test bed's Service range is a /24 (254 ClusterIPs) and every app has a Service,
//! so the bench adds a ServiceCIDR (`loco-bench-apply`, 10.100.0.0/16) first and removes
//! it at the end.
//!
//! Each variant applies to its own fresh namespaces (its own workspace id). Between
//! variants the bench waits until the controllers have created the previous variant's
//! pods, so one variant's background work does not slow the next. Everything is deleted
//! by label at the end.

#[path = "../../testsupport/bench_support/mod.rs"]
mod bench_support;

use std::time::Instant;

use bench_support::*;
use kube::Client;
use loco_apply::{Applier, ApplyConfig};

#[tokio::main]
async fn main() {
    if std::env::var("KUBECONFIG").map_or(true, |k| k.is_empty()) {
        eprintln!("apply_1000: KUBECONFIG is not set; run: eval \"$(tests/minikube/stack env)\"");
        return;
    }
    let n: i64 = std::env::var("LOCO_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let client = Client::try_default().await.expect("kube client");
    let base = 500_000 + i64::from(std::process::id() % 10_000) * 10;
    let (w_ours, w_kubectl, w_raw) = (base + 1, base + 2, base + 3);
    let config = ApplyConfig::default();
    add_service_range(&client).await;

    let ours_apps = render_apps(w_ours, n);
    let objects: usize = ours_apps.iter().map(|a| a.objects.len()).sum();
    println!(
        "apply_1000: {n} apps, {objects} objects per variant, concurrency {}",
        config.concurrency
    );

    let (t_raw, raw_objects) = raw_loop(&client, &render_apps(w_raw, n), config.concurrency).await;
    println!(
        "raw SSA loop:            {:>8.2}s  ({raw_objects} objects)",
        t_raw.as_secs_f64()
    );
    settle(&client, w_raw, n as usize).await;

    let t_kubectl = kubectl(&render_apps(w_kubectl, n)).await;
    println!(
        "kubectl apply --server-side: {:>8.2}s",
        t_kubectl.as_secs_f64()
    );
    settle(&client, w_kubectl, n as usize).await;

    let applier = Applier::new(client.clone(), config);
    let started = Instant::now();
    let report = applier.apply_many(&ours_apps).await.expect("apply_many");
    let t_ours = started.elapsed();
    let first_writes = applier.writes();
    println!(
        "loco apply_many:         {:>8.2}s  ({} written, {first_writes} write requests)",
        t_ours.as_secs_f64(),
        report.written.len()
    );
    settle(&client, w_ours, n as usize).await;

    let started = Instant::now();
    let again = applier
        .apply_many(&ours_apps)
        .await
        .expect("no-change apply_many");
    let t_again = started.elapsed();
    let no_change_writes = applier.writes() - first_writes;
    println!(
        "no-change redeploy:      {:>8.2}s  ({} unchanged, {no_change_writes} writes)",
        t_again.as_secs_f64(),
        again.unchanged
    );

    let vs_kubectl = t_kubectl.as_secs_f64() / t_ours.as_secs_f64();
    let vs_raw = t_ours.as_secs_f64() / t_raw.as_secs_f64();
    println!(
        "ratio kubectl/ours = {vs_kubectl:.2}x (target >= 3.0: {})",
        if vs_kubectl >= 3.0 { "met" } else { "MISSED" }
    );
    println!(
        "ratio ours/raw     = {vs_raw:.2}x (target <= 1.2: {})",
        if vs_raw <= 1.2 { "met" } else { "MISSED" }
    );
    println!(
        "no-change writes   = {no_change_writes} (target 0: {})",
        if no_change_writes == 0 {
            "met"
        } else {
            "MISSED"
        }
    );

    let started = Instant::now();
    delete_workspaces(&client, &[w_ours, w_kubectl, w_raw]).await;
    remove_service_range(&client).await;
    println!(
        "cleanup: all bench namespaces gone after {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
