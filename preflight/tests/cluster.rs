//! The gate against the local test cluster (kube-apiserver + scheduler + kwok).
//!
//! Run: `eval "$(tests/minikube/stack env)" && cargo test -p loco-preflight --test cluster`.
//! Other tests share the cluster, so every test creates its own nodes with a label and a
//! taint unique to it, asks with that label as the node selector, and deletes them after.

mod common;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use common::{
    FakeNode, cluster, create_node, delete_nodes, delete_pods, unique, wait_for, wait_ready,
};
use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use loco_preflight::{
    Cache, CapacityGate, ComponentSelector, ListGate, Purpose, Request, Rollout, TaintEffect,
    Toleration, TolerationOperator, Verdict,
};
use serde_json::json;

const TEST_LABEL: &str = "loco.test/pf";

/// Runs `body`, then `cleanup` even when `body` panics.
async fn guarded<B, C>(body: B, cleanup: C)
where
    B: std::future::Future<Output = ()>,
    C: std::future::Future<Output = ()>,
{
    let result = AssertUnwindSafe(body).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn node<'a>(id: &str, name: &str, cpu: &'a str, memory: &'a str) -> FakeNode<'a> {
    FakeNode {
        name: format!("pf-{id}-{name}"),
        cpu,
        memory,
        pods: "110",
        labels: json!({ TEST_LABEL: id }),
        managed: true,
        unschedulable: false,
        // Keeps the scheduler from putting other tests' pods here.
        taints: json!([{"key": TEST_LABEL, "value": id, "effect": "NoSchedule"}]),
    }
}

/// A request confined to this test's nodes.
fn request(id: &str, cpu_millis: u64, memory_bytes: u64, replicas: u32) -> Request {
    let mut r = Request::new(Purpose::Deploy, cpu_millis, memory_bytes, replicas);
    r.node_selector.insert(TEST_LABEL.into(), id.into());
    r.tolerations.push(Toleration {
        key: Some(TEST_LABEL.into()),
        operator: TolerationOperator::Equal,
        value: Some(id.into()),
        effect: Some(TaintEffect::NoSchedule),
    });
    r
}

fn report<'a>(v: &'a Verdict, name: &str) -> &'a loco_preflight::NodeReport {
    v.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("node {name} missing from the verdict"))
}

fn reasons(v: &Verdict, name: &str) -> Vec<&'static str> {
    report(v, name)
        .problems
        .iter()
        .map(|p| p.reason())
        .collect()
}

#[tokio::test]
async fn sizes_cordoned_and_not_ready_nodes() {
    let Some(client) = cluster().await else {
        return;
    };
    let id = format!("sz{}", unique());
    let selector = format!("{TEST_LABEL}={id}");
    let pod_name = format!("pf-{id}-busy");
    let c = client.clone();
    let body = async {
        let big = node(&id, "big", "4", "8Gi");
        let small = node(&id, "small", "1", "2Gi");
        let mut cordoned = node(&id, "cordoned", "8", "16Gi");
        cordoned.unschedulable = true;
        let mut not_ready = node(&id, "notready", "8", "16Gi");
        not_ready.managed = false;
        for n in [&big, &small, &cordoned, &not_ready] {
            create_node(&client, n).await;
        }
        wait_ready(&client, &[&big.name, &small.name, &cordoned.name]).await;

        // An existing pod bound to the big node takes 1 CPU of its 4.
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod_name, "labels": {TEST_LABEL: id}},
            "spec": {
                "nodeName": big.name,
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "c", "image": "busybox",
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();

        let gate = ListGate::new(client.clone(), None);
        // 2 x 1 CPU per replica: the big node (3 CPU free) takes one, the small none,
        // the cordoned and the NotReady node none whatever their size.
        let v = gate.check(&request(&id, 1000, 256 << 20, 2)).await.unwrap();
        assert!(!v.pass, "{v:#?}");
        assert_eq!(v.placed, 1);
        assert_eq!(v.reason(), "insufficient_capacity");
        let b = report(&v, &big.name);
        assert_eq!(b.requested.cpu_millis, 1000, "the bound pod is counted");
        assert_eq!((b.free.cpu_millis, b.fits, b.placed), (3000, 1, 1));
        assert_eq!(reasons(&v, &small.name), ["insufficient_cpu"]);
        assert!(
            reasons(&v, &cordoned.name).contains(&"cordoned"),
            "{:?}",
            reasons(&v, &cordoned.name)
        );
        assert!(reasons(&v, &not_ready.name).contains(&"not_ready"));
        assert!(!report(&v, &cordoned.name).eligible && !report(&v, &not_ready.name).eligible);
        assert_eq!(
            v.next_steps[0],
            "1 replica fit; add room for 1 more (a node with at least 2 CPU and 512Mi memory free) or lower replicas or requests in the app's profile"
        );

        // One replica passes; a rebuild (1x) of two passes: 3 CPU free on big, 1 on small.
        assert!(
            gate.check(&request(&id, 1000, 256 << 20, 1))
                .await
                .unwrap()
                .pass
        );
        let mut rebuild = request(&id, 1000, 256 << 20, 2);
        rebuild.purpose = Purpose::Rebuild;
        let v = gate.check(&rebuild).await.unwrap();
        assert!(v.pass, "{v:#?}");

        // The cache gives the same answer without listing.
        let cache = Cache::spawn(client.clone(), None);
        cache.wait_synced(Duration::from_secs(30)).await.unwrap();
        let cached = cache
            .check(&request(&id, 1000, 256 << 20, 2))
            .await
            .unwrap();
        let listed = gate.check(&request(&id, 1000, 256 << 20, 2)).await.unwrap();
        let mine = |v: &Verdict| -> Vec<(String, u64, u32, Vec<&'static str>)> {
            v.nodes
                .iter()
                .filter(|n| n.name.starts_with(&format!("pf-{id}-")))
                .map(|n| {
                    (
                        n.name.clone(),
                        n.fits,
                        n.placed,
                        n.problems.iter().map(|p| p.reason()).collect(),
                    )
                })
                .collect()
        };
        assert_eq!(mine(&cached), mine(&listed));
        assert_eq!(cached.placed, listed.placed);

        // Uncordoning is seen by the cache: the 8 CPU node now takes 4 more replicas.
        let nodes: Api<Node> = Api::all(client.clone());
        nodes
            .patch(
                &cordoned.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": false}})),
            )
            .await
            .unwrap();
        let v = wait_for(
            "the cache to see the uncordon",
            Duration::from_secs(60),
            || {
                let cache = cache.clone();
                let req = request(&id, 1000, 256 << 20, 5);
                async move { cache.check(&req).await.ok().filter(|v| v.pass) }
            },
        )
        .await;
        assert_eq!(report(&v, &cordoned.name).placed, 4);
    };
    let cleanup = async {
        delete_pods(&c, "default", &selector).await;
        delete_nodes(&c, &selector).await;
    };
    guarded(body, cleanup).await;
}

#[tokio::test]
async fn a_selector_no_node_matches_fails_with_advice() {
    let Some(client) = cluster().await else {
        return;
    };
    let id = format!("none{}", unique());
    let gate = ListGate::new(client, None);
    let v = gate.check(&request(&id, 100, 1 << 20, 1)).await.unwrap();
    assert!(!v.pass);
    assert_eq!(v.reason(), "no_eligible_nodes");
    assert!(
        v.next_steps
            .iter()
            .any(|s| s.contains(&format!("kubectl label node NAME {TEST_LABEL}={id}"))),
        "{:?}",
        v.next_steps
    );
}

/// A pod bound straight to `node` (no scheduler), as a running app's pods are.
fn bound_pod(name: &str, id: &str, node: &str, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {TEST_LABEL: id}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
        }
    }))
    .unwrap()
}

/// Issue 14 item 5 on kwok nodes filled to the brim: preflight asks for what a change
/// adds (the new pods minus the app's pods the rollout frees, times the factor). Node a
/// holds 5 of the app's 10 pods (100m / 64Mi each) and a filler pod of another app
/// (200m / 128Mi); node b holds the other 5; nothing is free anywhere.
#[tokio::test]
async fn a_full_cluster_takes_what_a_change_adds_and_no_more() {
    let Some(client) = cluster().await else {
        return;
    };
    let id = format!("full{}", unique());
    let selector = format!("{TEST_LABEL}={id}");
    let app_ns = format!("pf-{id}");
    let c = client.clone();
    let body = async {
        let a = node(&id, "a", "700m", "448Mi");
        let b = node(&id, "b", "500m", "320Mi");
        create_node(&client, &a).await;
        create_node(&client, &b).await;
        wait_ready(&client, &[&a.name, &b.name]).await;
        let ns: Namespace = serde_json::from_value(
            json!({"metadata": {"name": app_ns, "labels": {TEST_LABEL: id}}}),
        )
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let app_pods: Api<Pod> = Api::namespaced(client.clone(), &app_ns);
        for i in 0..10 {
            let on = if i < 5 { &a.name } else { &b.name };
            app_pods
                .create(
                    &PostParams::default(),
                    &bound_pod(&format!("app-{i}"), &id, on, "100m", "64Mi"),
                )
                .await
                .unwrap();
        }
        let others: Api<Pod> = Api::namespaced(client.clone(), "default");
        let filler = format!("pf-{id}-filler");
        others
            .create(
                &PostParams::default(),
                &bound_pod(&filler, &id, &a.name, "200m", "128Mi"),
            )
            .await
            .unwrap();

        let change = |replicas: u32, replaces_pods: bool| {
            let mut r = request(&id, 100, 64 << 20, replicas);
            r.rollout = Some(Rollout {
                namespace: app_ns.clone(),
                replaces_pods,
                max_surge: 1,
                max_unavailable: 0,
            });
            r
        };
        let gate = ListGate::new(client.clone(), None);

        // Scale 10 -> 5 on the full cluster: it adds nothing, so it passes.
        let v = gate.check(&change(5, false)).await.unwrap();
        assert!(v.pass, "{v:#?}");
        let ch = v.change.clone().unwrap();
        assert_eq!((ch.running, ch.new_pods, ch.adds), (10, 5, 0));
        // Asked without a rollout (the old question), the same 5 pods are refused.
        assert!(
            !gate
                .check(&request(&id, 100, 64 << 20, 5))
                .await
                .unwrap()
                .pass
        );

        // A rolling update of the 10 pods needs room for its one surge pod: none.
        let v = gate.check(&change(10, true)).await.unwrap();
        assert!(!v.pass, "{v:#?}");
        assert_eq!((v.replicas, v.placed), (1, 0));
        assert!(
            v.failures[0].message.starts_with(
                "0 of the 1 pod the change adds (a rolling update of 10 running pods to 10"
            ),
            "{}",
            v.failures[0].message
        );

        // The filler shrinks to one pod's size: one pod's room is free on a. Enough for
        // the surge at factor 1, not at the deploy's 2x.
        others
            .delete(
                &filler,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await
            .unwrap();
        wait_for("the filler pod to be gone", Duration::from_secs(60), || {
            let others = others.clone();
            let filler = filler.clone();
            async move { others.get_opt(&filler).await.ok().filter(Option::is_none) }
        })
        .await;
        others
            .create(
                &PostParams::default(),
                &bound_pod(&filler, &id, &a.name, "100m", "64Mi"),
            )
            .await
            .unwrap();
        let mut at_one = change(10, true);
        at_one.factor = Some(1.0);
        let v = gate.check(&at_one).await.unwrap();
        assert!(v.pass, "{v:#?}");
        assert_eq!(report(&v, &a.name).placed, 1);
        assert!(!gate.check(&change(10, true)).await.unwrap().pass);

        // The filler goes: the surge's room times the factor is free, the update passes
        // (asking for all ten new pods, as before, would not).
        others
            .delete(
                &filler,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await
            .unwrap();
        let v = wait_for(
            "the room of the filler pod",
            Duration::from_secs(60),
            || {
                let gate = gate.clone();
                let req = change(10, true);
                async move { gate.check(&req).await.ok().filter(|v| v.pass) }
            },
        )
        .await;
        assert_eq!((v.placed, report(&v, &a.name).placed), (1, 1));
        assert!(
            !gate
                .check(&request(&id, 100, 64 << 20, 10))
                .await
                .unwrap()
                .pass
        );

        // A scale-up beyond capacity: 10 -> 14 adds 4 pods at 2x, room for 1.
        let v = gate.check(&change(14, false)).await.unwrap();
        assert!(!v.pass, "{v:#?}");
        assert_eq!(v.reason(), "insufficient_capacity");
        assert!(
            v.failures[0].message.starts_with(
                "1 of the 4 pods the change adds (10 running pods, 14 wanted) fit with 2x headroom"
            ),
            "{}",
            v.failures[0].message
        );
        assert!(
            v.next_steps[0].starts_with("1 replica fit; add room for 3 more"),
            "{:?}",
            v.next_steps
        );

        // The watch cache finds the app's pods by namespace and answers the same.
        let cache = Cache::spawn(client.clone(), None);
        cache.wait_synced(Duration::from_secs(30)).await.unwrap();
        let cached = wait_for(
            "the cache to see the app's pods",
            Duration::from_secs(60),
            || {
                let cache = cache.clone();
                let req = change(14, false);
                async move {
                    cache
                        .check(&req)
                        .await
                        .ok()
                        .filter(|v| v.change.as_ref().is_some_and(|c| c.running == 10))
                }
            },
        )
        .await;
        assert_eq!((cached.pass, cached.placed), (false, 1));
        assert_eq!(cached.failures, v.failures);
        assert!(cache.check(&change(5, false)).await.unwrap().pass);
        assert!(cache.check(&change(10, true)).await.unwrap().pass);
    };
    let cleanup = async {
        delete_pods(&c, "default", &selector).await;
        delete_pods(&c, &app_ns, &selector).await;
        let _ = Api::<Namespace>::all(c.clone())
            .delete(&app_ns, &DeleteParams::background())
            .await;
        delete_nodes(&c, &selector).await;
    };
    guarded(body, cleanup).await;
}

fn deployment(name: &str, id: &str, node_selector: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "loco", TEST_LABEL: id}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": node_selector,
                    "containers": [{"name": "c", "image": "busybox"}]
                }
            }
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn components_not_installed_not_ready_and_ready() {
    let Some(client) = cluster().await else {
        return;
    };
    let id = format!("cmp{}", unique());
    let ns = format!("pf-{id}");
    let c = client.clone();
    let ns_name = ns.clone();
    let body = async {
        let sel = ComponentSelector {
            namespace: ns.clone(),
            label_selector: "app.kubernetes.io/part-of=loco".into(),
        };
        let gate = ListGate::new(client.clone(), Some(sel.clone()));
        // Any node will do for the capacity part: ask for nothing.
        let req = Request::new(Purpose::Deploy, 0, 0, 0);

        let v = gate.check(&req).await.unwrap();
        assert_eq!(v.components.state, "not_installed");
        assert_eq!(v.reason(), "components_not_installed");

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns, "labels": {TEST_LABEL: id}}}))
                .unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        // loco-api can run (kwok's default nodes take it); the gateway's pods can never
        // be scheduled (no node has that label), so it stays not ready.
        deployments
            .create(
                &PostParams::default(),
                &deployment("loco-api", &id, json!({"type": "kwok"})),
            )
            .await
            .unwrap();
        deployments
            .create(
                &PostParams::default(),
                &deployment("loco-gateway", &id, json!({TEST_LABEL: "nowhere"})),
            )
            .await
            .unwrap();

        let cache = Cache::spawn(client.clone(), Some(sel));
        let v = wait_for(
            "loco-api ready, the gateway not",
            Duration::from_secs(90),
            || {
                let gate = gate.clone();
                let req = req.clone();
                async move {
                    let v = gate.check(&req).await.ok()?;
                    let api = v
                        .components
                        .deployments
                        .iter()
                        .find(|d| d.name == "loco-api")?;
                    api.is_ready().then_some(v)
                }
            },
        )
        .await;
        assert!(!v.pass);
        assert_eq!(v.components.state, "not_ready");
        assert_eq!(v.reason(), "components_not_ready");
        assert!(
            v.failures[0].message.contains("loco-gateway (0/1 ready)"),
            "{:?}",
            v.failures
        );
        assert!(!v.failures[0].message.contains("loco-api"));
        // A rebuild is not blocked by it.
        let mut rebuild = req.clone();
        rebuild.purpose = Purpose::Rebuild;
        assert!(gate.check(&rebuild).await.unwrap().pass);

        deployments
            .delete("loco-gateway", &DeleteParams::default())
            .await
            .unwrap();
        let v = wait_for(
            "the cache to see every component ready",
            Duration::from_secs(60),
            || {
                let cache = cache.clone();
                let req = req.clone();
                async move {
                    match cache.check(&req).await {
                        Ok(v) if v.pass => Some(v),
                        Ok(v) => {
                            eprintln!("not yet: {:?} {:?}", v.failures, v.components.deployments);
                            None
                        }
                        Err(e) => {
                            eprintln!("not yet: {e}");
                            None
                        }
                    }
                }
            },
        )
        .await;
        assert_eq!(v.components.state, "ready");
        assert_eq!(v.components.deployments.len(), 1);
    };
    let cleanup = async {
        let namespaces: Api<Namespace> = Api::all(c.clone());
        if let Err(e) = namespaces.delete(&ns_name, &DeleteParams::default()).await {
            eprintln!("cleanup: deleting namespace {ns_name}: {e}");
        }
    };
    guarded(body, cleanup).await;
}

fn preflight(args: &[&str], kubeconfig: Option<&str>) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loco-preflight"));
    cmd.args(args);
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        None => cmd.env_remove("KUBECONFIG"),
    };
    let out = cmd.output().expect("run loco-preflight");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn cli_exit_codes() {
    // Usage and unreachable need no cluster.
    let (code, _) = preflight(&["check", "--cpu", "lots", "--memory", "1Gi"], None);
    assert_eq!(code, 2);
    let dead = std::env::temp_dir().join(format!("pf-dead-{}.kubeconfig", unique()));
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let (code, out) = preflight(
        &[
            "check",
            "--cpu",
            "1",
            "--memory",
            "1Gi",
            "--output",
            "json",
            "--timeout",
            "2",
        ],
        dead.to_str(),
    );
    let _ = std::fs::remove_file(&dead);
    assert_eq!(code, 3, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["error"]["reason"], "api_unreachable");

    let Some(client) = cluster().await else {
        return;
    };
    let kubeconfig = std::env::var("KUBECONFIG").unwrap();
    let id = format!("cli{}", unique());
    let sel = format!("{TEST_LABEL}={id}");
    let tol = format!("{TEST_LABEL}={id}:NoSchedule");
    let c = client.clone();
    let body = async {
        let (code, out) = preflight(
            &[
                "check",
                "--cpu",
                "500m",
                "--memory",
                "256Mi",
                "--node-selector",
                &sel,
                "--skip-components",
                "--output",
                "json",
            ],
            Some(&kubeconfig),
        );
        assert_eq!(code, 1, "{out}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["failures"][0]["reason"], "no_eligible_nodes");

        let n = node(&id, "a", "4", "8Gi");
        create_node(&client, &n).await;
        wait_ready(&client, &[&n.name]).await;
        let args = |replicas: &'static str| {
            vec![
                "check",
                "--cpu",
                "1",
                "--memory",
                "256Mi",
                "--replicas",
                replicas,
                "--node-selector",
                &sel,
                "--toleration",
                &tol,
                "--skip-components",
            ]
        };
        let (code, out) = preflight(&args("2"), Some(&kubeconfig));
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("PASS"), "{out}");
        let (code, out) = preflight(&args("3"), Some(&kubeconfig));
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("next step: 2 replicas fit; add room for 1 more"),
            "{out}"
        );
    };
    guarded(body, delete_nodes(&c, &sel)).await;
}
