//! Shared by the scale benches (loco-apply's apply_1000, loco-resurrect's rebuild_1000):
//! apps rendered without a database, the two baselines measured in the same run
//! (`kubectl apply --server-side` of the same YAML, a raw concurrent server-side-apply
//! loop), a ServiceCIDR with room for thousands of Services, and the cleanup.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures::{StreamExt as _, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Api, Client};
use loco_render::{LABEL_WORKSPACE, Phase, RenderInput, Rendered, Secrets};

pub const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

pub fn spec_source(app: i64) -> String {
    format!(
        "[Metadata]\nName = \"bench{app}\"\nRegion = \"fra1\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n\
         [RegionConfig.fra1]\nCPU = \"1m\"\nMemory = \"8Mi\"\nReplicasMin = 1\nReplicasMax = 1\n\
         [Env]\nVariables = {{ GREETING = \"hello {app}\" }}\n"
    )
}

/// One app per id, rendered without a database: 9 objects each (namespace, 3 network
/// policies, service account, env Secret, Service, Deployment, HTTPRoute).
pub fn render_apps(workspace_id: i64, n: i64) -> Vec<Rendered> {
    (1..=n)
        .map(|app_id| {
            let v = loco_spec::validate(&spec_source(app_id), "loco.toml", &Default::default())
                .expect("bench spec");
            loco_render::render(&RenderInput {
                deployment_id: 1,
                template_deployment_id: 1,
                revision_id: 1,
                ..RenderInput::export(
                    1,
                    workspace_id,
                    app_id,
                    v.spec,
                    v.env_values,
                    format!("registry.deploy-app.com/o1/bench:1.0.0@{DIGEST}"),
                )
            })
            .expect("render")
        })
        .collect()
}

pub async fn kubectl(apps: &[Rendered]) -> Duration {
    let kubectl = std::env::var("LOCO_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("apps.yaml");
    let mut yaml = String::new();
    for a in apps {
        if !yaml.is_empty() {
            yaml.push_str("---\n");
        }
        yaml.push_str(&a.to_yaml(Secrets::Shown).expect("yaml"));
    }
    std::fs::write(&file, yaml).expect("write yaml");
    let started = Instant::now();
    let out = tokio::process::Command::new(&kubectl)
        .args([
            "apply",
            "--server-side",
            "--field-manager=kubectl-bench",
            "-f",
        ])
        .arg(&file)
        .output()
        .await
        .expect("run kubectl");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The baseline: namespaces first, then every other object at once (bounded by the same
/// concurrency), server-side apply without reads or waits.
pub async fn raw_loop(client: &Client, apps: &[Rendered], concurrency: usize) -> (Duration, usize) {
    let params = PatchParams::apply("raw-bench").force();
    let apply = |o: &loco_render::Object| {
        let body = o.to_dynamic().expect("dynamic");
        let ar = loco_apply::kube_resource(&o.api_resource());
        let api: Api<DynamicObject> = match &o.metadata().namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let name = o.metadata().name.clone().unwrap_or_default();
        let params = params.clone();
        async move {
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .unwrap_or_else(|e| panic!("raw apply {name}: {e}"));
        }
    };
    let (namespaces, rest): (Vec<_>, Vec<_>) = apps
        .iter()
        .flat_map(|a| a.objects.iter())
        .partition(|o| o.phase == Phase::Namespace);
    let started = Instant::now();
    stream::iter(namespaces.iter().map(|o| apply(&o.object)))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    stream::iter(rest.iter().map(|o| apply(&o.object)))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    (started.elapsed(), namespaces.len() + rest.len())
}

/// Waits until the controllers have made the pods of a variant (or a deadline passes),
/// so its background work does not land in the next variant's timing.
pub async fn settle(client: &Client, workspace: i64, pods: usize) {
    let api: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{LABEL_WORKSPACE}={workspace}"));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = api
            .list_metadata(&lp)
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        if n >= pods {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("note: only {n}/{pods} pods of workspace {workspace} after 300s; going on");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub const BENCH_CIDR: &str = "loco-bench-apply";

pub fn service_cidrs(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
    ));
    Api::all_with(client.clone(), &ar)
}

/// Room for 3 x N ClusterIPs: a ServiceCIDR next to the cluster's own, once Ready.
pub async fn add_service_range(client: &Client) {
    let api = service_cidrs(client);
    let body: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
        "metadata": { "name": BENCH_CIDR },
        "spec": { "cidrs": ["10.100.0.0/16"] },
    }))
    .expect("ServiceCIDR body");
    api.patch(
        BENCH_CIDR,
        &PatchParams::apply("loco-bench"),
        &Patch::Apply(&body),
    )
    .await
    .expect("create the bench ServiceCIDR");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live = api
            .get(BENCH_CIDR)
            .await
            .expect("read the bench ServiceCIDR");
        let ready = live.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the bench ServiceCIDR never became Ready"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn remove_service_range(client: &Client) {
    let _ = service_cidrs(client)
        .delete(BENCH_CIDR, &DeleteParams::default())
        .await;
}

pub async fn delete_workspaces(client: &Client, workspaces: &[i64]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for w in workspaces {
        let lp = ListParams::default().labels(&format!("{LABEL_WORKSPACE}={w}"));
        let names: Vec<String> = api
            .list_metadata(&lp)
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        stream::iter(names)
            .map(|n| {
                let api = api.clone();
                async move {
                    let _ = api.delete(&n, &DeleteParams::background()).await;
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    for w in workspaces {
        let lp = ListParams::default().labels(&format!("{LABEL_WORKSPACE}={w}"));
        while api
            .list_metadata(&lp)
            .await
            .map(|l| !l.items.is_empty())
            .unwrap_or(false)
        {
            if Instant::now() > deadline {
                eprintln!("note: namespaces of workspace {w} still terminating after 15 min");
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
