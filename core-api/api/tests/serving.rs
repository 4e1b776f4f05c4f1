//! Apps that serve: the deploy flow (API -> queue -> render -> apply) places apps on the
//! test bed's real node (a render setting: node selector + toleration), containerd runs
//! them, and requests reach them through the real gateway (Traefik) on their host and
//! path prefix. Readiness is kubelet's own probe; env values are checked by asking the
//! app for their SHA-256, never printed.
//!
//! Needs `tests/minikube/stack up` with the real node. Outside CI a missing part skips
//! these tests with a message; under CI=true it fails them.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;
#[path = "../../testsupport/deploy_support/mod.rs"]
mod deploy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api_support::{call, get, kek, token};
use axum::http::{Method, StatusCode};
use db_support::{distinct_ids, tenant};
use deploy_support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use loco_deploy::DeployConfig;
use loco_render::{Placement, PlacementToleration};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

const NODE_LABEL: &str = "loco.deploy-app.com/node";
const NODE_TAINT: &str = "loco.deploy-app.com/real-node";

/// What these tests need from `stack env`.
struct Bed {
    gateway: String,
    httpd: String,
    unhealthy: String,
}

fn bed() -> Option<Bed> {
    stack_var("LOCO_TEST_REAL_NODE")?;
    Some(Bed {
        gateway: stack_var("LOCO_GATEWAY_URL")?,
        httpd: stack_var("LOCO_TEST_IMAGE_HTTPD")?,
        unhealthy: stack_var("LOCO_TEST_IMAGE_UNHEALTHY")?,
    })
}

/// The deploy settings of the test bed, with apps placed on the real node.
fn real_node_config() -> DeployConfig {
    let mut c = deploy_config();
    c.render.placement = Placement {
        node_selector: BTreeMap::from([(NODE_LABEL.to_owned(), "real".to_owned())]),
        tolerations: vec![PlacementToleration {
            key: NODE_TAINT.to_owned(),
            value: Some("true".to_owned()),
            effect: "NoSchedule".to_owned(),
        }],
    };
    c.apply.rollout_deadline = Duration::from_secs(30);
    // The test bed's Gateway listens for *.loco.test.
    c.spec.base_domain = "loco.test".to_owned();
    c
}

/// One org on the test cluster, with loco-api's router and deploy workers running.
struct World {
    app: axum::Router,
    org: i64,
    workspace: i64,
    cluster: i64,
    tok: String,
    gateway: String,
    _workers: tokio::task::JoinHandle<()>,
}

/// Namespaces of test workspaces (ids from `distinct_ids`, >= 1000; the demo's are
/// small) older than two hours: what earlier runs left when a test failed before its
/// cleanup. Real pods hold the real node's 2 CPUs, so leftovers would fill it run by run.
async fn sweep_stale_test_namespaces() {
    let admin = apply_support::admin_client()
        .await
        .expect("the test cluster (tests/minikube/stack up)");
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin);
    let list = api
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=loco"))
        .await
        .unwrap();
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 2 * 3600;
    for ns in list.items {
        let ws: i64 = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("loco.deploy-app.com/workspace"))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        let old = ns
            .metadata
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| t.0.as_second() < cutoff);
        if ws >= 1000 && old && ns.metadata.deletion_timestamp.is_none() {
            let name = ns.metadata.name.clone().unwrap_or_default();
            let _ = api.delete(&name, &Default::default()).await;
        }
    }
}

async fn world(pool: &PgPool, bed: &Bed, config: DeployConfig) -> World {
    sweep_stale_test_namespaces().await;
    distinct_ids(pool).await;
    let t = tenant(pool, &kek(), "acme").await;
    let kubeconfig = apply_support::kubeconfig_yaml_for(&apply_support::loco_api_token().await);
    use_test_cluster(pool, &kek(), t.cluster, &kubeconfig).await;
    let ctx = ctx_with(pool, kek(), config);
    let workers = {
        let d = ctx.deployer.clone();
        tokio::spawn(async move { d.run_workers(std::future::pending()).await })
    };
    World {
        app: loco_http::router(ctx),
        org: t.org,
        workspace: t.workspace,
        cluster: t.cluster,
        tok: token(pool, t.org, t.user).await,
        gateway: bed.gateway.clone(),
        _workers: workers,
    }
}

impl World {
    /// Deletes the namespaces of this test's workspace (the rows go with the test's
    /// database; the cluster objects would stay and hold the real node).
    async fn cleanup(&self) {
        let admin = apply_support::admin_client().await.unwrap();
        let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin);
        let list = api
            .list(
                &ListParams::default()
                    .labels(&format!("loco.deploy-app.com/workspace={}", self.workspace)),
            )
            .await
            .unwrap();
        for ns in list.items {
            let name = ns.metadata.name.unwrap_or_default();
            api.delete(&name, &Default::default()).await.unwrap();
        }
    }

    /// Creates an app on `host` + `prefix`; returns its id.
    async fn create_app(&self, name: &str, host: &str, prefix: &str) -> i64 {
        let r = call(
            &self.app,
            Method::POST,
            &format!("/v1/orgs/{}/workspaces/{}/apps", self.org, self.workspace),
            Some(&self.tok),
            Some(json!({"name": name, "host": host, "path_prefix": prefix})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_i64().unwrap()
    }

    /// POSTs `body` to `path` and returns the deployment id it queued.
    async fn queue(&self, method: Method, path: &str, body: Value) -> i64 {
        let r = call(&self.app, method, path, Some(&self.tok), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_i64().unwrap()
    }

    async fn deploy(&self, app_id: i64, body: Value) -> i64 {
        self.queue(
            Method::POST,
            &format!("/v1/orgs/{}/apps/{app_id}/deployments", self.org),
            body,
        )
        .await
    }

    /// Waits until deployment `id` is ready or failed; returns its JSON.
    async fn finished(&self, id: i64) -> Value {
        let path = format!("/v1/orgs/{}/deployments/{id}", self.org);
        eventually(150, &format!("deployment {id} to finish"), || async {
            let d = get(&self.app, &path, &self.tok).await.json;
            matches!(d["status"].as_str(), Some("ready" | "failed")).then_some(d)
        })
        .await
    }

    async fn ready(&self, id: i64) {
        let d = self.finished(id).await;
        assert_eq!(d["status"], "ready", "{d:#}");
    }

    /// GET `path` on `host` through the gateway until `accept(status, body)`; returns the body.
    async fn until(
        &self,
        host: &str,
        path: &str,
        what: &str,
        accept: impl Fn(u16, &str) -> bool,
    ) -> String {
        eventually(60, what, || async {
            let (status, body) = via_gateway(&self.gateway, host, path).await.ok()?;
            accept(status, &body).then_some(body)
        })
        .await
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// One GET through the gateway with a Host header.
async fn via_gateway(gateway: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let resp = http()
        .get(format!("{gateway}{path}"))
        .header(reqwest::header::HOST, host)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

/// The value of `key` in the test app's answer (`app`, `version`, `pod`, `env`, ...).
fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
}

/// A loco.toml on the test bed's domain; `prefix` is the app's path prefix.
fn spec(name: &str, extra: &str) -> String {
    spec_at(name, &format!("{name}.loco.test"), "/", extra)
}

fn spec_at(name: &str, host: &str, prefix: &str, extra: &str) -> String {
    format!(
        "[Metadata]\nName = \"{name}\"\n[DomainConfig]\nHostname = \"{host}\"\n[Routing]\nPort = 8080\nPathPrefix = \"{prefix}\"\n[Health]\nPath = \"/healthz\"\nInterval = 1\n\
         [RegionConfig.us-east-1]\nCPU = \"20m\"\nMemory = \"32Mi\"\n{extra}"
    )
}

/// The test app image as `acme/<repo>:<tag>`, answering as app `name`, version `version`:
/// a digest of its own, so no node has it cached.
async fn image(source: &str, repo: &str, name: &str, version: &str) -> String {
    let repo = format!("acme/{repo}");
    copy_test_image(
        source,
        &repo,
        version,
        &[("LOCO_TEST_APP", name), ("LOCO_TEST_VERSION", version)],
    )
    .await;
    format!("{}/{repo}:{version}", registry_host())
}

fn sha256_hex(v: &str) -> String {
    hex::encode(Sha256::digest(v.as_bytes()))
}

async fn app_pods(ns: &str) -> Vec<Pod> {
    let admin = apply_support::admin_client()
        .await
        .expect("the test cluster (tests/minikube/stack up)");
    Api::<Pod>::namespaced(admin, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn deployed_app_serves_on_its_host_with_private_env_restarts_and_scales(pool: PgPool) {
    let Some(bed) = bed() else { return };
    let w = world(&pool, &bed, real_node_config()).await;
    let u = unique();
    let name = format!("web-{u}");
    let host = format!("{name}.loco.test");
    let app_id = w.create_app(&name, &host, "/").await;
    let ns = format!("wks-{}-app-{app_id}", w.workspace);
    let v1 = image(&bed.httpd, &name, &name, &format!("v1-{u}")).await;
    let canary = format!("canary-{}", unique());

    let dep = w
        .deploy(
            app_id,
            json!({"image": v1, "spec": spec(&name, &format!("[Env]\nVariables = {{ API_KEY = \"{canary}\" }}\n"))}),
        )
        .await;
    w.ready(dep).await;
    let pods = app_pods(&ns).await;
    assert_eq!(pods.len(), 1, "{pods:#?}");
    assert_eq!(
        pods[0].spec.as_ref().unwrap().node_name.as_deref(),
        stack_var("LOCO_TEST_REAL_NODE").as_deref(),
        "the render setting placed the pod on the real node"
    );

    // The app answers on its host, through the gateway, with the env variable's name only.
    let body = w
        .until(
            &host,
            "/hello",
            "the app to answer through the gateway",
            |s, _| s == 200,
        )
        .await;
    assert_eq!(field(&body, "app"), Some(name.as_str()), "{body}");
    assert_eq!(field(&body, "version"), Some(format!("v1-{u}").as_str()));
    assert_eq!(field(&body, "path"), Some("/hello"));
    assert!(
        field(&body, "env")
            .unwrap()
            .split(',')
            .any(|n| n == "API_KEY"),
        "{body}"
    );
    assert!(!body.contains(&canary), "the app shows names, never values");
    let (status, _) = via_gateway(&w.gateway, &format!("other-{u}.loco.test"), "/")
        .await
        .unwrap();
    assert_eq!(status, 404, "another host is not this app's");

    // The env value set through the API is in the container (compared as a hash).
    let (status, sum) = via_gateway(&w.gateway, &host, "/env-sha256/API_KEY")
        .await
        .unwrap();
    assert_eq!((status, sum.trim()), (200, sha256_hex(&canary).as_str()));
    let changed = format!("{canary}-2");
    let env_dep = w
        .queue(
            Method::PUT,
            &format!("/v1/orgs/{}/apps/{app_id}/env", w.org),
            json!({"API_KEY": changed}),
        )
        .await;
    w.ready(env_dep).await;
    w.until(
        &host,
        "/env-sha256/API_KEY",
        "the new env value to serve",
        |s, b| s == 200 && b.trim() == sha256_hex(&changed),
    )
    .await;

    // A container killed by hand is restarted by kubelet, and the app answers again.
    let pod = app_pods(&ns).await.into_iter().next().expect("a pod");
    let pod_name = pod.metadata.name.clone().unwrap();
    let status = pod.status.unwrap().container_statuses.unwrap().remove(0);
    let id = status.container_id.unwrap();
    kill_container(id.trim_start_matches("containerd://"));
    eventually(120, "kubelet to restart the killed container", || async {
        let p = app_pods(&ns)
            .await
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(&pod_name))?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        (cs.restart_count >= 1 && cs.ready && cs.container_id.as_deref() != Some(id.as_str()))
            .then_some(())
    })
    .await;
    w.until(&host, "/", "the restarted container to answer", |s, b| {
        s == 200 && field(b, "pod") == Some(pod_name.as_str())
    })
    .await;

    // Scale to 2: both pods answer through the gateway.
    let scaled = w
        .queue(
            Method::POST,
            &format!("/v1/orgs/{}/apps/{app_id}/scale", w.org),
            json!({"replicas": 2}),
        )
        .await;
    w.ready(scaled).await;
    let pods: BTreeSet<String> = app_pods(&ns)
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let seen = eventually(60, "both pods to answer through the gateway", || async {
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            if let Ok((200, b)) = via_gateway(&w.gateway, &host, "/").await
                && let Some(p) = field(&b, "pod")
            {
                seen.insert(p.to_owned());
            }
        }
        (seen == pods).then_some(seen)
    })
    .await;
    assert_eq!(seen.len(), 2);
    w.cleanup().await;
}

/// SIGKILLs a container through the node's containerd, as a crash would.
fn kill_container(id: &str) {
    let containerd =
        stack_var("LOCO_TEST_CONTAINERD_ADDRESS").expect("LOCO_TEST_CONTAINERD_ADDRESS");
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
            id,
        ])
        .output()
        .expect("running ctr (Debian package containerd)");
    assert!(
        out.status.success(),
        "ctr task kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn two_apps_on_one_host_each_get_their_own_prefix(pool: PgPool) {
    let Some(bed) = bed() else { return };
    let w = world(&pool, &bed, real_node_config()).await;
    let u = unique();
    let host = format!("shop-{u}.loco.test");
    let mut deployments = Vec::new();
    for (name, prefix) in [(format!("front-{u}"), "/"), (format!("api-{u}"), "/api")] {
        let id = w.create_app(&name, &host, prefix).await;
        let img = image(&bed.httpd, &name, &name, "v1").await;
        deployments.push(
            w.deploy(
                id,
                json!({"image": img, "spec": spec_at(&name, &host, prefix, "")}),
            )
            .await,
        );
    }
    for d in deployments {
        w.ready(d).await;
    }
    let app_at = |path: &'static str| {
        let w = &w;
        let host = &host;
        async move {
            let body = w
                .until(host, path, &format!("{path} to answer"), |s, _| s == 200)
                .await;
            field(&body, "app").unwrap().to_owned()
        }
    };
    assert_eq!(app_at("/api/items").await, format!("api-{u}"));
    assert_eq!(app_at("/api").await, format!("api-{u}"));
    assert_eq!(app_at("/").await, format!("front-{u}"));
    assert_eq!(
        app_at("/apiary").await,
        format!("front-{u}"),
        "a prefix matches whole segments"
    );
    w.cleanup().await;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_unhealthy_revision_fails_while_the_previous_keeps_answering(pool: PgPool) {
    let Some(bed) = bed() else { return };
    let w = world(&pool, &bed, real_node_config()).await;
    let u = unique();
    let name = format!("steady-{u}");
    let host = format!("{name}.loco.test");
    let app_id = w.create_app(&name, &host, "/").await;
    let good = image(&bed.httpd, &name, &name, "good").await;
    let first = w
        .deploy(app_id, json!({"image": good, "spec": spec(&name, "")}))
        .await;
    w.ready(first).await;
    w.until(&host, "/", "the first revision to answer", |s, b| {
        s == 200 && field(b, "version") == Some("good")
    })
    .await;

    // Ask the gateway all along the failed rollout and its revert.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (gateway, host, stop) = (w.gateway.clone(), host.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let a = via_gateway(&gateway, &host, "/").await;
                answers.push(a.map(|(s, b)| (s, field(&b, "version").map(str::to_owned))));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    };
    let bad = image(&bed.unhealthy, &name, &name, "bad").await;
    let second = w.deploy(app_id, json!({"image": bad})).await;
    let d = w.finished(second).await;
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["reason"], "rollout_deadline_exceeded", "{d:#}");
    let message = d["message"].as_str().unwrap();
    assert!(message.contains("readiness check"), "{message}");
    let reasons: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"deployment_reverted") || message.contains("previous deployment"),
        "{d:#}"
    );
    let after = get(
        &w.app,
        &format!("/v1/orgs/{}/deployments/{first}", w.org),
        &w.tok,
    )
    .await;
    assert_eq!(
        after.json["active"], true,
        "the first deployment is still the active one"
    );
    // Until the unhealthy pod is gone, and a little after.
    let ns = format!("wks-{}-app-{app_id}", w.workspace);
    eventually(60, "the unhealthy pod to be removed", || async {
        let pods = app_pods(&ns).await;
        (pods.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = poller.await.unwrap();
    assert!(
        answers.len() >= 20,
        "the poller asked only {} times",
        answers.len()
    );
    let wrong: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a, Ok((200, Some(v))) if v == "good"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers were not the previous revision's 200: {:?}",
        wrong.len(),
        answers.len(),
        &wrong[..wrong.len().min(5)]
    );
    w.cleanup().await;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_wrong_pull_credential_fails_the_deploy_and_the_right_one_serves(pool: PgPool) {
    let Some(bed) = bed() else { return };
    let (Some(auth_url), Some(user), Some(password_file)) = (
        stack_var("LOCO_TEST_REGISTRY_AUTH_URL"),
        stack_var("LOCO_TEST_REGISTRY_AUTH_USER"),
        stack_var("LOCO_TEST_REGISTRY_AUTH_PASSWORD_FILE"),
    ) else {
        return;
    };
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_owned();
    let auth_host = auth_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // The platform registry is the one behind basic auth: loco reads manifests with its
    // own login there, and the cluster pulls with the cluster's pull credential.
    let mut config = real_node_config();
    config.registry.default_registry = auth_host.clone();
    config.registry.insecure.insert(auth_host.clone());
    config.registry.private_ok.insert(auth_host.clone());
    config.registry.login = Some((user.clone(), loco_crypto::Secret::new(password.clone())));
    let w = world(&pool, &bed, config).await;
    let cluster = w.cluster;
    let set_credential = |password: String| {
        let (pool, user, auth_host) = (pool.clone(), user.clone(), auth_host.clone());
        async move {
            loco_db::clusters::set_pull_credential(
                &pool,
                &kek(),
                cluster,
                &loco_db::clusters::PullCredential {
                    registry: auth_host,
                    username: user,
                    password: loco_crypto::Secret::new(password),
                },
            )
            .await
            .unwrap();
        }
    };
    set_credential(format!("{password}-wrong")).await;

    let u = unique();
    let name = format!("private-{u}");
    let host = format!("{name}.loco.test");
    let app_id = w.create_app(&name, &host, "/").await;
    let pushed = image(&bed.httpd, &name, &name, &format!("p-{u}")).await;
    let private = pushed.replacen(&registry_host(), &auth_host, 1);
    let first = w
        .deploy(app_id, json!({"image": private, "spec": spec(&name, "")}))
        .await;
    let d = w.finished(first).await;
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["reason"], "image_pull_failed", "{d:#}");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("pull credential") && message.contains("set-pull-credential"),
        "{message}"
    );
    assert!(!message.contains(&password), "never the password");

    set_credential(password.clone()).await;
    let second = w
        .deploy(app_id, json!({"image": private, "spec": spec(&name, "")}))
        .await;
    w.ready(second).await;
    let body = w
        .until(&host, "/", "the privately pulled app to answer", |s, _| {
            s == 200
        })
        .await;
    assert_eq!(field(&body, "app"), Some(name.as_str()));
    w.cleanup().await;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn preflight_counts_only_the_nodes_the_placement_allows(pool: PgPool) {
    let Some(bed) = bed() else { return };
    // 1.2 CPU with preflight's 2x headroom fits on every 4-CPU kwok node but not on the
    // 2-CPU real node, the only node the placement allows: preflight refuses before
    // anything is applied.
    let w = world(&pool, &bed, real_node_config()).await;
    let u = unique();
    let name = format!("big-{u}");
    let app_id = w.create_app(&name, &format!("{name}.loco.test"), "/").await;
    let img = image(&bed.httpd, &name, &name, "v1").await;
    let big = spec(&name, "").replace("CPU = \"20m\"", "CPU = \"1200m\"");
    let d = w
        .finished(w.deploy(app_id, json!({"image": img, "spec": big})).await)
        .await;
    assert_eq!(
        (d["status"].as_str(), d["reason"].as_str()),
        (Some("failed"), Some("preflight_failed")),
        "{d:#}"
    );
    assert!(
        app_pods(&format!("wks-{}-app-{app_id}", w.workspace))
            .await
            .is_empty()
    );
    w.cleanup().await;
}

/// The control of the test above: without the placement the same app fits (on kwok).
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn without_the_placement_the_same_app_fits_on_the_kwok_nodes(pool: PgPool) {
    let Some(bed) = bed() else { return };
    let mut c = real_node_config();
    c.render.placement = Placement::default();
    let w = world(&pool, &bed, c).await;
    let name = format!("big-{}", unique());
    let app_id = w.create_app(&name, &format!("{name}.loco.test"), "/").await;
    let img = image(&bed.httpd, &name, &name, "v1").await;
    let big = spec(&name, "").replace("CPU = \"20m\"", "CPU = \"1200m\"");
    let d = w
        .finished(w.deploy(app_id, json!({"image": img, "spec": big})).await)
        .await;
    assert_eq!(d["status"], "ready", "{d:#}");
    let pods = app_pods(&format!("wks-{}-app-{app_id}", w.workspace)).await;
    let node = pods[0].spec.as_ref().unwrap().node_name.clone().unwrap();
    assert!(node.starts_with("kwok-"), "{node}");
    w.cleanup().await;
}
