//! The real node and the gateway data plane are real: containerd runs the stack's images
//! on the node `LOCO_TEST_REAL_NODE`, kubelet runs their probes and restarts them, and
//! Traefik carries HTTP requests from `LOCO_GATEWAY_URL` to them by Host and path.
//!
//! Pods ask for the real node with the nodeSelector `loco.deploy-app.com/node: real` and
//! a toleration of the taint `loco.deploy-app.com/real-node=true:NoSchedule`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use loco_minikube_tests::{require_env, unique, wait_for};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NODE_LABEL: &str = "loco.deploy-app.com/node";
const NODE_TAINT: &str = "loco.deploy-app.com/real-node";
const ROUTES_LABEL: &str = "loco.deploy-app.com/routes";

/// Everything these tests need from `stack env`; `None` (skip) outside CI when missing.
struct Bed {
    client: kube::Client,
    node: String,
    gateway: String,
    httpd: String,
}

async fn bed() -> Option<Bed> {
    require_env("KUBECONFIG")?;
    let node = require_env("LOCO_TEST_REAL_NODE")?;
    let gateway = require_env("LOCO_GATEWAY_URL")?;
    let httpd = require_env("LOCO_TEST_IMAGE_HTTPD")?;
    let client = kube::Client::try_default()
        .await
        .expect("KUBECONFIG is set but no Kubernetes client could be built from it");
    Some(Bed {
        client,
        node,
        gateway,
        httpd,
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn namespace(client: &kube::Client, name: &str, routes_allowed: bool) {
    let mut labels = json!({"loco.test/suite": "smoke-node"});
    if routes_allowed {
        labels[ROUTES_LABEL] = json!("allowed");
    }
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
}

async fn delete_namespace(client: &kube::Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// A pod spec for the real node: nodeSelector + toleration, a readiness probe on /healthz.
fn real_node_spec(image: &str, app: &str, extra_env: Value) -> Value {
    let mut env = vec![json!({"name": "LOCO_TEST_APP", "value": app})];
    if let Value::Array(more) = extra_env {
        env.extend(more);
    }
    json!({
        "nodeSelector": {NODE_LABEL: "real"},
        "tolerations": [{"key": NODE_TAINT, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "app",
            "image": image,
            "env": env,
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
        }]
    })
}

fn pod(name: &str, spec: Value) -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}),
    )
    .unwrap()
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": real_node_spec(image, name, json!([]))}
        }
    }))
    .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}
    }))
    .unwrap()
}

fn route_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

fn route(name: &str, host: &str, path: &str, backend: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "loco", "namespace": "loco-system", "sectionName": "http"}],
            "hostnames": [host],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{"name": backend, "port": 8080}]
            }]
        }
    }))
    .unwrap()
}

/// The conditions (type -> (status, reason)) the gateway's controller wrote for parent
/// loco-system/loco on the route.
fn route_conditions(r: &DynamicObject) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for parent in r.data["status"]["parents"].as_array().into_iter().flatten() {
        if parent["parentRef"]["name"] != "loco" {
            continue;
        }
        for c in parent["conditions"].as_array().into_iter().flatten() {
            out.insert(
                c["type"].as_str().unwrap_or("").to_string(),
                (
                    c["status"].as_str().unwrap_or("").to_string(),
                    c["reason"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
    }
    out
}

async fn wait_route_accepted(client: &kube::Client, ns: &str, name: &str) {
    let routes = route_api(client, ns);
    wait_for(
        &format!("HTTPRoute {ns}/{name} Accepted and ResolvedRefs"),
        Duration::from_secs(60),
        || async {
            let r = routes.get(name).await.map_err(|e| e.to_string())?;
            let c = route_conditions(&r);
            let ok = |t: &str| c.get(t).is_some_and(|(s, _)| s == "True");
            if ok("Accepted") && ok("ResolvedRefs") {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        },
    )
    .await;
}

fn ready(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

async fn wait_pod_ready(pods: &Api<Pod>, name: &str) -> Pod {
    wait_for(
        &format!("pod {name} Ready"),
        Duration::from_secs(120),
        || async {
            let p = pods.get(name).await.map_err(|e| e.to_string())?;
            if ready(&p).as_deref() == Some("True") {
                Ok(p)
            } else {
                Err(format!("{:?}", p.status))
            }
        },
    )
    .await
}

async fn wait_deployment_ready(client: &kube::Client, ns: &str, name: &str) {
    let d = Api::<Deployment>::namespaced(client.clone(), ns);
    wait_for(
        &format!("Deployment {ns}/{name} ready"),
        Duration::from_secs(120),
        || async {
            let s = d.get(name).await.map_err(|e| e.to_string())?.status;
            match s.as_ref().and_then(|s| s.ready_replicas) {
                Some(n) if n >= 1 => Ok(()),
                _ => Err(format!("{s:?}")),
            }
        },
    )
    .await;
}

/// GET through the gateway with a Host header until `accept` holds for (status, body).
async fn via_gateway(
    gateway: &str,
    host: &str,
    path: &str,
    what: &str,
    accept: impl Fn(u16, &str) -> bool,
) -> String {
    let http = http();
    let url = format!("{gateway}{path}");
    wait_for(what, Duration::from_secs(60), || {
        let req = http.get(&url).header(reqwest::header::HOST, host);
        let accept = &accept;
        async move {
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            if accept(status, &body) {
                Ok(body)
            } else {
                Err(format!("{status}: {body}"))
            }
        }
    })
    .await
}

#[tokio::test]
async fn real_node_is_labelled_and_tainted() {
    let Some(bed) = bed().await else { return };
    let node = Api::<Node>::all(bed.client.clone())
        .get(&bed.node)
        .await
        .expect("the real node is registered");
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get(NODE_LABEL).map(String::as_str), Some("real"));
    assert_eq!(
        labels.get("type"),
        None,
        "kwok manages nodes labelled type=kwok; the real node must not be one"
    );
    let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(
        taints.iter().any(|t| t.key == NODE_TAINT
            && t.value.as_deref() == Some("true")
            && t.effect == "NoSchedule"),
        "{taints:?}"
    );
}

#[tokio::test]
async fn pod_for_the_real_node_becomes_ready_there_and_shows_env_names_only() {
    let Some(bed) = bed().await else { return };
    let ns = unique("node-pod");
    namespace(&bed.client, &ns, false).await;
    let secret_value = format!("not-for-printing-{}", unique("v"));
    let pods = Api::<Pod>::namespaced(bed.client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &pod(
            "web",
            real_node_spec(
                &bed.httpd,
                "web",
                json!([{"name": "SMOKE_SECRET", "value": secret_value}]),
            ),
        ),
    )
    .await
    .unwrap();
    let p = wait_pod_ready(&pods, "web").await;
    assert_eq!(
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(bed.node.as_str())
    );
    let ip = p
        .status
        .and_then(|s| s.pod_ip)
        .expect("a Ready pod has an IP");

    // The host reaches the pod's IP over the stack's bridge.
    let body = http()
        .get(format!("http://{ip}:8080/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("app web"), "{body}");
    assert!(body.contains("SMOKE_SECRET"), "{body}");
    assert!(
        !body.contains(&secret_value),
        "the page must never show env values"
    );
    let sum = http()
        .get(format!("http://{ip}:8080/env-sha256/SMOKE_SECRET"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sum.trim(),
        hex::encode(Sha256::digest(secret_value.as_bytes()))
    );
    delete_namespace(&bed.client, &ns).await;
}

#[tokio::test]
async fn deployment_service_and_route_answer_through_the_gateway() {
    let Some(bed) = bed().await else { return };
    let ns = unique("node-gw");
    namespace(&bed.client, &ns, true).await;
    let c = &bed.client;
    Api::<Deployment>::namespaced(c.clone(), &ns)
        .create(&PostParams::default(), &deployment("hello", &bed.httpd))
        .await
        .unwrap();
    let svc = Api::<Service>::namespaced(c.clone(), &ns)
        .create(&PostParams::default(), &service("hello"))
        .await
        .unwrap();
    let host = format!("{ns}.loco.test");
    route_api(c, &ns)
        .create(
            &PostParams::default(),
            &route("hello", &host, "/hello", "hello"),
        )
        .await
        .unwrap();
    wait_deployment_ready(c, &ns, "hello").await;
    wait_route_accepted(c, &ns, "hello").await;

    let body = via_gateway(
        &bed.gateway,
        &host,
        "/hello/world",
        "the app through the gateway",
        |s, b| s == 200 && b.contains("app hello"),
    )
    .await;
    assert!(body.contains("path /hello/world"), "{body}");
    // Outside the route's path prefix, and on another host, the gateway has no route.
    via_gateway(
        &bed.gateway,
        &host,
        "/other",
        "404 outside the prefix",
        |s, _| s == 404,
    )
    .await;
    via_gateway(
        &bed.gateway,
        "nobody.loco.test",
        "/hello",
        "404 for another host",
        |s, _| s == 404,
    )
    .await;

    // kube-proxy: the ClusterIP answers from the host too.
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).unwrap();
    let body = wait_for(
        "the ClusterIP from the host",
        Duration::from_secs(30),
        || async {
            let r = http()
                .get(format!("http://{cluster_ip}:8080/"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            r.text().await.map_err(|e| e.to_string())
        },
    )
    .await;
    assert!(body.contains("app hello"), "{body}");
    delete_namespace(c, &ns).await;
}

#[tokio::test]
async fn two_routes_on_one_host_reach_their_own_backends() {
    let Some(bed) = bed().await else { return };
    let ns = unique("node-paths");
    namespace(&bed.client, &ns, true).await;
    let c = &bed.client;
    let host = format!("{ns}.loco.test");
    for app in ["front", "api"] {
        Api::<Deployment>::namespaced(c.clone(), &ns)
            .create(&PostParams::default(), &deployment(app, &bed.httpd))
            .await
            .unwrap();
        Api::<Service>::namespaced(c.clone(), &ns)
            .create(&PostParams::default(), &service(app))
            .await
            .unwrap();
    }
    let routes = route_api(c, &ns);
    routes
        .create(&PostParams::default(), &route("front", &host, "/", "front"))
        .await
        .unwrap();
    routes
        .create(&PostParams::default(), &route("api", &host, "/api", "api"))
        .await
        .unwrap();
    for app in ["front", "api"] {
        wait_deployment_ready(c, &ns, app).await;
        wait_route_accepted(c, &ns, app).await;
    }
    via_gateway(
        &bed.gateway,
        &host,
        "/api/users",
        "/api to the api app",
        |s, b| s == 200 && b.contains("app api\n"),
    )
    .await;
    via_gateway(&bed.gateway, &host, "/", "/ to the front app", |s, b| {
        s == 200 && b.contains("app front\n")
    })
    .await;
    via_gateway(
        &bed.gateway,
        &host,
        "/apiary",
        "/apiary is not /api",
        |s, b| s == 200 && b.contains("app front\n"),
    )
    .await;
    delete_namespace(c, &ns).await;
}

#[tokio::test]
async fn unhealthy_image_never_becomes_ready() {
    let Some(bed) = bed().await else { return };
    let Some(image) = require_env("LOCO_TEST_IMAGE_UNHEALTHY") else {
        return;
    };
    let ns = unique("node-sick");
    namespace(&bed.client, &ns, false).await;
    let pods = Api::<Pod>::namespaced(bed.client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &pod("sick", real_node_spec(&image, "sick", json!([]))),
    )
    .await
    .unwrap();
    // Positive observations: the container runs, and kubelet reported failed readiness
    // probes (HTTP 500) as events; only then is "not Ready" a result, not a race.
    let events = Api::<Event>::namespaced(bed.client.clone(), &ns);
    wait_for(
        "kubelet to report the readiness probe failing",
        Duration::from_secs(120),
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=sick"))
                .await
                .map_err(|e| e.to_string())?;
            let failures: i32 = list
                .items
                .iter()
                .filter(|e| {
                    e.reason.as_deref() == Some("Unhealthy")
                        && e.message.as_deref().unwrap_or("").contains("500")
                })
                .map(|e| e.count.unwrap_or(1))
                .sum();
            if failures >= 3 {
                Ok(())
            } else {
                let seen: Vec<_> = list.items.iter().map(|e| (&e.reason, &e.message)).collect();
                Err(format!("{seen:?}"))
            }
        },
    )
    .await;
    let p = pods.get("sick").await.unwrap();
    let st = p.status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"), "{st:?}");
    assert_eq!(ready(&p).as_deref(), Some("False"), "{st:?}");
    let cs = &st.container_statuses.unwrap()[0];
    assert!(
        !cs.ready && cs.state.as_ref().unwrap().running.is_some(),
        "{cs:?}"
    );
    delete_namespace(&bed.client, &ns).await;
}

#[tokio::test]
async fn killed_container_is_restarted() {
    let Some(bed) = bed().await else { return };
    let Some(containerd) = require_env("LOCO_TEST_CONTAINERD_ADDRESS") else {
        return;
    };
    let ns = unique("node-kill");
    namespace(&bed.client, &ns, false).await;
    let pods = Api::<Pod>::namespaced(bed.client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &pod("victim", real_node_spec(&bed.httpd, "victim", json!([]))),
    )
    .await
    .unwrap();
    let p = wait_pod_ready(&pods, "victim").await;
    let cs = p.status.unwrap().container_statuses.unwrap().remove(0);
    assert_eq!(cs.restart_count, 0);
    let id = cs
        .container_id
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    let out = std::process::Command::new("ctr")
        .args([
            "--address",
            &containerd,
            "-n",
            "k8s.io",
            "task",
            "kill",
            "-s",
            "SIGKILL",
            &id,
        ])
        .output()
        .expect("running ctr (Debian package containerd)");
    assert!(
        out.status.success(),
        "ctr task kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "kubelet to restart the killed container",
        Duration::from_secs(120),
        || async {
            let p = pods.get("victim").await.map_err(|e| e.to_string())?;
            let cs = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first().cloned())
                .ok_or("no container status")?;
            let new_id = cs.container_id.clone().unwrap_or_default();
            if cs.restart_count >= 1 && cs.ready && !new_id.ends_with(&id) {
                Ok(())
            } else {
                Err(format!("{cs:?}"))
            }
        },
    )
    .await;
    delete_namespace(&bed.client, &ns).await;
}

#[tokio::test]
async fn route_in_an_unlabelled_namespace_is_not_attached() {
    let Some(bed) = bed().await else { return };
    let ns = unique("node-nolabel");
    namespace(&bed.client, &ns, false).await;
    let c = &bed.client;
    Api::<Deployment>::namespaced(c.clone(), &ns)
        .create(&PostParams::default(), &deployment("stray", &bed.httpd))
        .await
        .unwrap();
    Api::<Service>::namespaced(c.clone(), &ns)
        .create(&PostParams::default(), &service("stray"))
        .await
        .unwrap();
    let host = format!("{ns}.loco.test");
    let routes = route_api(c, &ns);
    routes
        .create(&PostParams::default(), &route("stray", &host, "/", "stray"))
        .await
        .unwrap();
    wait_deployment_ready(c, &ns, "stray").await;
    // The gateway itself refuses it: its listeners admit only labelled namespaces.
    let conditions = wait_for(
        "the route to be refused by the gateway",
        Duration::from_secs(60),
        || async {
            let r = routes.get("stray").await.map_err(|e| e.to_string())?;
            let c = route_conditions(&r);
            match c.get("Accepted") {
                Some((s, _)) if s == "False" => Ok(c),
                _ => Err(format!("{c:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        conditions["Accepted"].1, "NotAllowedByListeners",
        "{conditions:?}"
    );
    via_gateway(
        &bed.gateway,
        &host,
        "/",
        "404 for the unattached route",
        |s, _| s == 404,
    )
    .await;
    delete_namespace(c, &ns).await;
}

fn pull_secret(password: &str) -> Secret {
    let registry = std::env::var("LOCO_TEST_REGISTRY_AUTH_URL").unwrap();
    let registry = registry.trim_start_matches("http://");
    let user = std::env::var("LOCO_TEST_REGISTRY_AUTH_USER").unwrap();
    let config = json!({"auths": {registry: {"username": user, "password": password}}});
    serde_json::from_value(json!({
        "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config.to_string()}
    }))
    .unwrap()
}

/// Pods pulling from the registry behind basic auth: the right password pulls, a wrong
/// one fails with ErrImagePull / ImagePullBackOff. imagePullPolicy Always, so the image
/// already on the node from the anonymous registry does not hide the check.
#[tokio::test]
async fn pull_secret_password_decides_the_pull() {
    let Some(bed) = bed().await else { return };
    let Some(image) = require_env("LOCO_TEST_IMAGE_HTTPD_PRIVATE") else {
        return;
    };
    let Some(pw_file) = require_env("LOCO_TEST_REGISTRY_AUTH_PASSWORD_FILE") else {
        return;
    };
    let password = std::fs::read_to_string(&pw_file).expect("reading the pull password file");
    let c = &bed.client;
    for (case, pw) in [
        ("good", password.trim().to_string()),
        ("bad", "wrong-password".to_string()),
    ] {
        let ns = unique(&format!("node-pull-{case}"));
        namespace(c, &ns, false).await;
        Api::<Secret>::namespaced(c.clone(), &ns)
            .create(&PostParams::default(), &pull_secret(&pw))
            .await
            .unwrap();
        let mut spec = real_node_spec(&image, "private", json!([]));
        spec["imagePullSecrets"] = json!([{"name": "pull"}]);
        spec["containers"][0]["imagePullPolicy"] = json!("Always");
        let pods = Api::<Pod>::namespaced(c.clone(), &ns);
        pods.create(&PostParams::default(), &pod("private", spec))
            .await
            .unwrap();
        if case == "good" {
            wait_pod_ready(&pods, "private").await;
        } else {
            wait_for(
                "the pull with a wrong password to fail",
                Duration::from_secs(120),
                || async {
                    let p = pods.get("private").await.map_err(|e| e.to_string())?;
                    let waiting = p
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .and_then(|c| c.first())
                        .and_then(|c| c.state.as_ref())
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.clone());
                    match waiting.as_deref() {
                        Some("ErrImagePull" | "ImagePullBackOff") => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await;
            assert_ne!(
                ready(&pods.get("private").await.unwrap()).as_deref(),
                Some("True")
            );
        }
        delete_namespace(c, &ns).await;
    }
}
