//! Rebuild N apps (default 1,000) from an empty cluster to all Ready with
//! `loco-resurrect --once` (the binary, from a database seeded here), against the two
//! baselines measured in the same run on the same kind of objects: a raw concurrent
//! server-side-apply loop (this machine's API server write ceiling) and `kubectl apply
//! --server-side` (bench_support, shared with loco-apply's apply_1000). Also the
//! resurrector's peak RSS during the rebuild.
//!
//! Targets (issue 17): ours (writes) <= 1.2x the raw loop; >= 10x Velero's published
//! ~10-20 objects/s restore rate.
//!
//!     eval "$(tests/minikube/stack env)"
//!     cargo bench -p loco-resurrector --bench rebuild_1000     # LOCO_BENCH_APPS=100 to scale down
//!
//! It adds 40 kwok nodes (`kwok-bench-*`, 110 pods each) and a ServiceCIDR for the
//! Services, and removes them, the namespaces and its database at the end. Apps are 10
//! per workspace (siblings' URLs are rendered into each app's env, as in production).

#[path = "../../core-api/testsupport/bench_support/mod.rs"]
mod bench_support;

use std::time::{Duration, Instant};

use bench_support::*;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use loco_crypto::{Kek, Secret};
use loco_db::events::Actor;
use loco_db::queue::{self, ClaimRules};
use loco_db::revisions::{self, EnvChange, NewRevision};
use loco_db::{apps, clusters, deployments, orgs, workspaces};
use sqlx::{Connection as _, PgConnection, PgPool};

const KEY: [u8; 32] = [5u8; 32];
const PER_WORKSPACE: i64 = 10;
const NODES: usize = 40;

fn base64_of(key: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key)
}

async fn add_nodes(client: &Client) {
    let api: Api<Node> = Api::all(client.clone());
    for i in 0..NODES {
        let name = format!("kwok-bench-{i}");
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"type": "kwok", "kubernetes.io/hostname": name},
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "status": {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                       "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"}}
        }))
        .expect("node");
        let _ = api.create(&PostParams::default(), &node).await;
    }
    // kwok marks them Ready within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = api
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|n| {
                        n.metadata
                            .name
                            .as_deref()
                            .is_some_and(|m| m.starts_with("kwok-bench-"))
                    })
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .count()
            })
            .unwrap_or(0);
        if ready >= NODES || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn remove_nodes(client: &Client) {
    let api: Api<Node> = Api::all(client.clone());
    for i in 0..NODES {
        let _ = api
            .delete(&format!("kwok-bench-{i}"), &DeleteParams::default())
            .await;
    }
}

/// A database with one org, one cluster (installer credential: the admin kubeconfig)
/// and `n` deployed apps, 10 per workspace from workspace id `base + 1` on.
async fn seed(pool: &PgPool, kek: &Kek, n: i64, base: i64) -> Vec<i64> {
    let kubeconfig = std::fs::read_to_string(std::env::var("KUBECONFIG").unwrap()).unwrap();
    let creds = loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(kubeconfig)).unwrap();
    sqlx::query("SELECT setval(pg_get_serial_sequence('workspaces', 'id'), $1)")
        .bind(base)
        .execute(pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let user = orgs::upsert_user(&mut *tx, orgs::Provider::Github, "bench", "bench", None)
        .await
        .unwrap();
    let org = orgs::create_org(&mut tx, "bench", user).await.unwrap();
    let region = clusters::upsert_region(&mut *tx, "local", "bench")
        .await
        .unwrap();
    let cluster = clusters::create(
        &mut tx,
        kek,
        region,
        "bench",
        "https://127.0.0.1:26443",
        &creds,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    clusters::set_installer_credentials(pool, kek, cluster, &creds)
        .await
        .unwrap();
    let actor = Actor::User(user);
    let mut workspace_ids = Vec::new();
    for w in 0..(n + PER_WORKSPACE - 1) / PER_WORKSPACE {
        let mut tx = pool.begin().await.unwrap();
        let ws = workspaces::create(&mut tx, org, cluster, &format!("w{w}"), &actor)
            .await
            .unwrap();
        for i in 0..PER_WORKSPACE.min(n - w * PER_WORKSPACE) {
            let idx = w * PER_WORKSPACE + i + 1;
            let name = format!("bench{idx}");
            let host = format!("{name}.loco.test");
            let app = apps::create(
                &mut tx,
                kek,
                &apps::NewApp {
                    org_id: org,
                    workspace_id: ws,
                    name: &name,
                    kind: "service",
                    host: &host,
                    path_prefix: "/",
                    ports: serde_json::json!([{"name": "http", "port": 8000, "protocol": "http", "routed": true}]),
                    sleep_enabled: false,
                    sleep_idle_window_seconds: 1800,
                    grpc_services: &[],
                },
                &actor,
            )
            .await
            .unwrap();
            let v =
                loco_spec::validate(&spec_source(idx), "loco.toml", &Default::default()).unwrap();
            let spec = serde_json::to_value(&v.spec).unwrap();
            let image = format!("registry.deploy-app.com/o1/bench:1.0.0@{DIGEST}");
            let rev = revisions::create(
                &mut tx,
                kek,
                &NewRevision {
                    app_id: app,
                    spec: &spec,
                    image_digest: DIGEST,
                    image: &image,
                    replicas: 1,
                    asleep: false,
                    cause: "deploy",
                    env: EnvChange::Replace(vec![(
                        "GREETING".to_owned(),
                        Secret::new(format!("hello {idx}")),
                    )]),
                    created_by: None,
                },
            )
            .await
            .unwrap();
            deployments::create(&mut tx, app, rev, &actor)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        workspace_ids.push(ws);
    }
    // Every deployment claimed and activated, as finished deploys leave them.
    let rules = ClaimRules::new(1_000_000, Duration::from_secs(600));
    while let Some(c) = queue::claim(pool, rules).await.unwrap() {
        let mut tx = pool.begin().await.unwrap();
        queue::fence(&mut tx, &c.lease).await.unwrap();
        deployments::activate(&mut tx, c.deployment_id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    workspace_ids
}

/// Runs the resurrector binary once; returns its JSON report, wall time and peak RSS (kB).
async fn resurrect(database_url: &str) -> (serde_json::Value, Duration, u64) {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loco-resurrect"))
        .args([
            "--cluster",
            "bench",
            "--once",
            "--force",
            "--no-chart",
            "--output",
            "json",
        ])
        .args(["--ready-deadline-seconds", "900"])
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("LOCO_KEK", base64_of(&KEY))
        .env("LOCO_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("run loco-resurrect");
    let pid = child.id().unwrap_or_default();
    // Read stdout while it runs: a report larger than the pipe's buffer would block the
    // child on its last write otherwise.
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s).await;
        s
    });
    let mut peak = 0u64;
    let out = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        tokio::select! {
            r = child.wait() => break r,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    let took = started.elapsed();
    let stdout = reader.await.unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or(serde_json::json!({"raw": stdout}));
    assert!(
        out.is_ok_and(|s| s.success()),
        "loco-resurrect failed: {report}"
    );
    (report, took, peak)
}

#[tokio::main]
async fn main() {
    let (Some(kc), Some(db)) = (
        std::env::var_os("KUBECONFIG"),
        std::env::var("DATABASE_URL").ok(),
    ) else {
        eprintln!(
            "rebuild_1000: KUBECONFIG or DATABASE_URL is not set; run: eval \"$(tests/minikube/stack env)\""
        );
        return;
    };
    drop(kc);
    let n: i64 = std::env::var("LOCO_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let client = Client::try_default().await.expect("kube client");
    let base = 700_000 + i64::from(std::process::id() % 10_000) * 1000;
    let (w_raw, w_kubectl) = (base + 900, base + 901);

    let name = format!("loco_bench_rebuild_{}", std::process::id());
    let root = db
        .rsplit_once('/')
        .map_or(db.clone(), |(r, _)| r.to_owned());
    let mut admin_db = PgConnection::connect(&db).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin_db)
        .await
        .unwrap();
    let url = format!("{root}/{name}");
    let pool = loco_db::connect(&url).await.unwrap();
    loco_db::migrate(&pool).await.unwrap();
    let kek = Kek::from_bytes(KEY);
    let t = Instant::now();
    let ours_workspaces = seed(&pool, &kek, n, base).await;
    println!(
        "rebuild_1000: {n} apps in {} workspaces seeded in {:.1}s",
        ours_workspaces.len(),
        t.elapsed().as_secs_f64()
    );

    add_service_range(&client).await;
    add_nodes(&client).await;

    let (t_raw, raw_objects) = raw_loop(&client, &render_apps(w_raw, n), 32).await;
    println!(
        "raw SSA loop:                 {:>8.2}s  ({raw_objects} objects, {:.0} objects/s)",
        t_raw.as_secs_f64(),
        raw_objects as f64 / t_raw.as_secs_f64()
    );
    settle(&client, w_raw, n as usize).await;
    let t_kubectl = kubectl(&render_apps(w_kubectl, n)).await;
    println!(
        "kubectl apply --server-side:  {:>8.2}s",
        t_kubectl.as_secs_f64()
    );
    settle(&client, w_kubectl, n as usize).await;

    let (report, wall, peak_kb) = resurrect(&url).await;
    let written = report["objects_written"].as_f64().unwrap_or(0.0);
    let apps_phase = report["phases"]["apps_seconds"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let ready_phase = report["phases"]["ready_seconds"]
        .as_f64()
        .unwrap_or(f64::NAN);
    println!(
        "loco-resurrect --once:        {:>8.2}s wall (detect {:.2}s, apps {:.2}s, all Ready {:.2}s); {} of {} apps Ready, {written} objects",
        wall.as_secs_f64(),
        report["phases"]["detect_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN),
        apps_phase,
        ready_phase,
        report["apps_ready"],
        report["apps_desired"],
    );
    let vs_raw = apps_phase / t_raw.as_secs_f64();
    let rate = written / (apps_phase + ready_phase);
    println!(
        "ratio ours(apps phase)/raw = {vs_raw:.2}x (target <= 1.2: {})",
        if vs_raw <= 1.2 { "met" } else { "MISSED" }
    );
    println!(
        "ratio kubectl/ours(apps)   = {:.2}x",
        t_kubectl.as_secs_f64() / apps_phase
    );
    println!(
        "objects/s to all Ready     = {rate:.0} ({:.0}x Velero's ~20/s; target >= 10x: {})",
        rate / 20.0,
        if rate >= 200.0 { "met" } else { "MISSED" }
    );
    println!(
        "resurrector peak RSS       = {:.1} MB",
        peak_kb as f64 / 1024.0
    );

    let t = Instant::now();
    let mut all = ours_workspaces.clone();
    all.extend([w_raw, w_kubectl]);
    delete_workspaces(&client, &all).await;
    remove_nodes(&client).await;
    remove_service_range(&client).await;
    pool.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin_db)
    .await;
    println!("cleanup: {:.0}s", t.elapsed().as_secs_f64());
}
