//! Check latency from the watch cache vs a check that LISTs nodes and pods each time,
//! on 1,000 kwok nodes and 10,000 pods, in the same run. Target: cache p99 <= 10 ms.
//!
//! Run against the test cluster (creates and then deletes everything it made, labelled
//! loco.test/bench=preflight, also when it fails):
//!
//!   eval "$(tests/minikube/stack env)"
//!   cargo bench -p loco-preflight --bench cache_check
//!
//! Sizes: LOCO_BENCH_NODES (1000), LOCO_BENCH_PODS (10000), LOCO_BENCH_CHECKS (300),
//! LOCO_BENCH_LIST_CHECKS (20), LOCO_BENCH_CONCURRENCY (32).

#[path = "../tests/common/mod.rs"]
mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use loco_preflight::{
    Cache, CapacityGate, ListGate, Purpose, Request, TaintEffect, Toleration, TolerationOperator,
};
use serde_json::json;

const KEY: &str = "loco.test/bench";
const VALUE: &str = "preflight";
const SELECTOR: &str = "loco.test/bench=preflight";
const NAMESPACE: &str = "default";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn node(i: usize) -> common::FakeNode<'static> {
    common::FakeNode {
        name: format!("pf-bench-{i:04}"),
        cpu: "4",
        memory: "16Gi",
        pods: "110",
        labels: json!({ KEY: VALUE }),
        managed: true,
        unschedulable: false,
        taints: json!([{"key": KEY, "value": VALUE, "effect": "NoSchedule"}]),
    }
}

fn pod(i: usize, nodes: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("pf-bench-{i:05}"), "labels": { KEY: VALUE }},
        "spec": {
            // Bound directly: the scheduler is not part of what is measured.
            "nodeName": format!("pf-bench-{:04}", i % nodes),
            "tolerations": [{"key": KEY, "operator": "Exists"}],
            "containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
        }
    }))
    .expect("a valid pod")
}

/// Creates with bounded concurrency; an object left from an earlier run counts as created.
async fn create_all<F, Fut>(what: &str, n: usize, concurrency: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let start = Instant::now();
    let mut errors = 0usize;
    let mut done = 0usize;
    let mut s = futures::stream::iter(0..n)
        .map(&make)
        .buffer_unordered(concurrency);
    while let Some(r) = s.next().await {
        match r {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                errors += 1;
                if errors <= 5 {
                    eprintln!("create {what}: {e}");
                }
            }
        }
        done += 1;
        if done.is_multiple_of(1000) {
            eprintln!("  {done}/{n} {what} ({:.0?})", start.elapsed());
        }
    }
    assert!(errors == 0, "{errors} {what} could not be created");
    eprintln!("created {n} {what} in {:.1?}", start.elapsed());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

async fn measure<G: CapacityGate>(gate: &G, req: &Request, n: usize) -> Vec<Duration> {
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let v = gate.check(req).await.expect("check");
        t.push(start.elapsed());
        std::hint::black_box(v);
    }
    t.sort();
    t
}

/// Deletes one by one with bounded concurrency: a single DELETE collection of 10,000
/// pods runs on one server worker and can outlast the request timeout.
async fn cleanup(client: &Client) {
    let start = Instant::now();
    let concurrency = env_usize("LOCO_BENCH_CONCURRENCY", 32).max(1);
    let lp = ListParams::default().labels(SELECTOR);
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let nodes: Api<Node> = Api::all(client.clone());
    let pod_names = match pods.list_metadata(&lp).await {
        Ok(l) => l
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect(),
        Err(e) => {
            eprintln!("cleanup: listing pods: {e}");
            Vec::new()
        }
    };
    let node_names = match nodes.list_metadata(&lp).await {
        Ok(l) => l
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect(),
        Err(e) => {
            eprintln!("cleanup: listing nodes: {e}");
            Vec::new()
        }
    };
    if pod_names.is_empty() && node_names.is_empty() {
        return;
    }
    eprintln!(
        "cleanup: deleting {} pods and {} nodes labelled {SELECTOR}",
        pod_names.len(),
        node_names.len()
    );
    let failed = futures::stream::iter(pod_names)
        .map(|name: String| {
            let (pods, force) = (pods.clone(), force.clone());
            async move { pods.delete(&name, &force).await.err() }
        })
        .buffer_unordered(concurrency)
        .filter_map(
            |e| async move { e.filter(|e| !matches!(e, kube::Error::Api(s) if s.code == 404)) },
        )
        .count()
        .await;
    let failed = failed
        + futures::stream::iter(node_names)
            .map(|name: String| {
                let nodes = nodes.clone();
                async move { nodes.delete(&name, &DeleteParams::default()).await.err() }
            })
            .buffer_unordered(concurrency)
            .filter_map(|e| async move {
                e.filter(|e| !matches!(e, kube::Error::Api(s) if s.code == 404))
            })
            .count()
            .await;
    if failed > 0 {
        eprintln!(
            "cleanup: {failed} deletions failed; delete what is left with: kubectl delete pods,nodes -A -l {SELECTOR}"
        );
    }
    eprintln!("cleanup done in {:.1?}", start.elapsed());
}

async fn bench(client: &Client) {
    let nodes = env_usize("LOCO_BENCH_NODES", 1000).max(1);
    let pods = env_usize("LOCO_BENCH_PODS", 10_000);
    let checks = env_usize("LOCO_BENCH_CHECKS", 300).max(1);
    let list_checks = env_usize("LOCO_BENCH_LIST_CHECKS", 20).max(1);
    let concurrency = env_usize("LOCO_BENCH_CONCURRENCY", 32).max(1);

    let node_api: Api<Node> = Api::all(client.clone());
    create_all("nodes", nodes, concurrency, |i| {
        let api = node_api.clone();
        async move {
            api.create(&PostParams::default(), &node(i).object())
                .await
                .map(drop)
        }
    })
    .await;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    create_all("pods", pods, concurrency, |i| {
        let api = pod_api.clone();
        async move {
            api.create(&PostParams::default(), &pod(i, nodes))
                .await
                .map(drop)
        }
    })
    .await;

    let mut req = Request::new(Purpose::Deploy, 500, 256 << 20, 10);
    req.node_selector.insert(KEY.into(), VALUE.into());
    req.tolerations.push(Toleration {
        key: Some(KEY.into()),
        operator: TolerationOperator::Exists,
        value: None,
        effect: Some(TaintEffect::NoSchedule),
    });

    let start = Instant::now();
    let cache = Cache::spawn(client.clone(), None);
    cache
        .wait_synced(Duration::from_secs(300))
        .await
        .expect("cache synced");
    eprintln!("cache synced in {:.1?}", start.elapsed());
    // The cache must hold what was created before its figures mean anything.
    let lp = ListParams::default().labels(SELECTOR);
    let want_nodes = node_api.list_metadata(&lp).await.expect("list").items.len();
    common::wait_for(
        "the cache to hold the bench objects",
        Duration::from_secs(300),
        || {
            let cache = cache.clone();
            let req = req.clone();
            async move {
                let v = cache.check(&req).await.ok()?;
                let bench_nodes = v
                    .nodes
                    .iter()
                    .filter(|n| n.name.starts_with("pf-bench-"))
                    .count();
                let bench_pods: u64 = v
                    .nodes
                    .iter()
                    .filter(|n| n.name.starts_with("pf-bench-"))
                    .map(|n| n.requested.pods)
                    .sum();
                (bench_nodes >= want_nodes && bench_pods >= pods as u64).then_some(())
            }
        },
    )
    .await;
    let (cn, cp) = cache.len();
    let v = cache.check(&req).await.expect("check");
    eprintln!(
        "cache holds {cn} nodes and {cp} pods; verdict: pass={} placed={}/{} on {} nodes",
        v.pass,
        v.placed,
        v.replicas,
        v.nodes.len()
    );

    // Warm up both paths once, then measure.
    let list_gate = ListGate::new(client.clone(), None);
    list_gate.check(&req).await.expect("list check");
    let cached = measure(&cache, &req, checks).await;
    let listed = measure(&list_gate, &req, list_checks).await;
    // The same simulation over one fixed snapshot: no watch, no lock, no I/O. Its p99
    // beside the cache's tells the machine's scheduling noise from the cache's own cost.
    let fixed = list_gate.snapshot().await.expect("snapshot");
    let pure = measure(&fixed, &req, checks).await;

    let (c50, c99) = (percentile(&cached, 0.50), percentile(&cached, 0.99));
    let (l50, l99) = (percentile(&listed, 0.50), percentile(&listed, 0.99));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "preflight check latency, {cn} nodes / {cp} pods in the cluster ({nodes} + {pods} created by the bench)"
    );
    println!(
        "  cache  ({checks:>4} checks): p50 {:>9.3} ms  p99 {:>9.3} ms",
        c50.as_secs_f64() * 1e3,
        c99.as_secs_f64() * 1e3
    );
    println!(
        "  LIST   ({list_checks:>4} checks): p50 {:>9.3} ms  p99 {:>9.3} ms",
        l50.as_secs_f64() * 1e3,
        l99.as_secs_f64() * 1e3
    );
    println!(
        "  pure evaluate, fixed snapshot ({checks:>4} checks): p50 {:>9.3} ms  p99 {:>9.3} ms",
        percentile(&pure, 0.50).as_secs_f64() * 1e3,
        percentile(&pure, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  LIST / cache: p50 {:.0}x  p99 {:.0}x",
        ratio(l50, c50),
        ratio(l99, c99)
    );
    println!(
        "  target cache p99 <= 10 ms: {}",
        if c99 <= Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        }
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and must not
    // create 11,000 objects in the shared cluster.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "cache_check: not run (it is a benchmark: cargo bench -p loco-preflight --bench cache_check)"
        );
        return;
    }
    let Some(client) = common::cluster().await else {
        return;
    };
    // Leftovers of an interrupted run would skew the figures.
    cleanup(&client).await;
    let result = AssertUnwindSafe(bench(&client)).catch_unwind().await;
    cleanup(&client).await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
