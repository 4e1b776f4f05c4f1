//! Shared by the integration tests and the benchmark: the test cluster and fake nodes.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The test cluster from KUBECONFIG, or None (the test then returns). With CI=true a
/// missing cluster fails the test instead: CI must not pass by skipping.
pub async fn cluster() -> Option<Client> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = |why: String| {
        if ci {
            panic!(
                "CI=true but there is no test cluster: {why} (run: eval \"$(tests/minikube/stack env)\")"
            );
        }
        eprintln!("skipping: no test cluster (run tests/minikube/stack up) [{why}]");
        None
    };
    let Some(kubeconfig) = std::env::var("KUBECONFIG").ok().filter(|k| !k.is_empty()) else {
        return skip("KUBECONFIG is not set".into());
    };
    let client =
        match loco_preflight::cli::client(Some(&kubeconfig), None, Duration::from_secs(5)).await {
            Ok(c) => c,
            Err(e) => return skip(e.to_string()),
        };
    match client.apiserver_version().await {
        Ok(_) => Some(client),
        Err(e) => skip(format!(
            "the API at KUBECONFIG={kubeconfig} is unreachable: {e}"
        )),
    }
}

/// A short unique suffix so parallel runs and leftovers never collide.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:05x}", std::process::id() % 0xfff, nanos % 0xfffff)
}

pub struct FakeNode<'a> {
    pub name: String,
    pub cpu: &'a str,
    pub memory: &'a str,
    pub pods: &'a str,
    pub labels: serde_json::Value,
    /// kwok manages (and keeps Ready) only nodes labelled type=kwok.
    pub managed: bool,
    pub unschedulable: bool,
    pub taints: serde_json::Value,
}

impl FakeNode<'_> {
    pub fn object(&self) -> Node {
        let mut labels = self.labels.clone();
        if self.managed {
            labels["type"] = json!("kwok");
        }
        labels["kubernetes.io/hostname"] = json!(self.name);
        let resources = json!({"cpu": self.cpu, "memory": self.memory, "pods": self.pods});
        let mut status = json!({"allocatable": resources, "capacity": resources});
        if !self.managed {
            status["conditions"] = json!([{
                "type": "Ready", "status": "False",
                "reason": "NotManaged", "message": "a test node no kubelet or kwok manages"
            }]);
        }
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}
            },
            "spec": {"unschedulable": self.unschedulable, "taints": self.taints},
            "status": status
        }))
        .expect("a valid node")
    }
}

/// Creates a node with a plain POST (status included, as kwok expects).
pub async fn create_node(client: &Client, node: &FakeNode<'_>) {
    let api: Api<Node> = Api::all(client.clone());
    api.create(&PostParams::default(), &node.object())
        .await
        .unwrap_or_else(|e| panic!("create node {}: {e}", node.name));
}

pub async fn delete_nodes(client: &Client, label_selector: &str) {
    let api: Api<Node> = Api::all(client.clone());
    if let Err(e) = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(label_selector),
        )
        .await
    {
        eprintln!("cleanup: deleting nodes {label_selector}: {e}");
    }
}

pub async fn delete_pods(client: &Client, namespace: &str, label_selector: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(e) = api
        .delete_collection(&dp, &ListParams::default().labels(label_selector))
        .await
    {
        eprintln!("cleanup: deleting pods {label_selector}: {e}");
    }
}

/// Polls `probe` until it returns Some, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ready=True on every named node (kwok sets it on managed nodes after creation).
pub async fn wait_ready(client: &Client, names: &[&str]) {
    let api: Api<Node> = Api::all(client.clone());
    for name in names {
        wait_for(
            &format!("node {name} Ready and without the node-lifecycle taints"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                async move {
                    let n = api.get(name).await.ok()?;
                    // The controller manager taints a new node not-ready until its next
                    // sync after kwok marks it Ready; the scheduler (and preflight) see
                    // that taint, so wait for it to go too.
                    let lifecycle_tainted = n.spec.as_ref()?.taints.iter().flatten().any(|t| {
                        t.key == "node.kubernetes.io/not-ready"
                            || t.key == "node.kubernetes.io/unreachable"
                    });
                    let ready = n
                        .status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                    (ready && !lifecycle_tainted).then_some(())
                }
            },
        )
        .await;
    }
}
