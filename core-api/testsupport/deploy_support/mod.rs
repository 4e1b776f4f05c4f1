//! The deploy tests' world: the test bed's registry (images pushed over the distribution
//! API), its cluster registered as a cluster row with loco-api's own least-privilege
//! identity, and an API context whose deploy workers run in the background.
#![allow(dead_code)]

use std::time::Duration;

use loco_crypto::{Kek, Secret};
use loco_db::clusters;
use loco_deploy::{DeployConfig, Deployer};
use loco_http::{ApiConfig, Ctx};
use loco_telemetry::Metrics;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `LOCO_REGISTRY_URL` of the stack (http://host:port); the tests need the stack.
pub fn registry_url() -> String {
    std::env::var("LOCO_REGISTRY_URL")
        .expect("LOCO_REGISTRY_URL is unset: run `eval \"$(tests/minikube/stack env)\"` (tests/minikube/stack up first)")
}

/// host:port of the stack's registry, as image references name it.
pub fn registry_host() -> String {
    registry_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A short random suffix for names that must not collide between runs.
pub fn unique() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

/// Pushes a small image (config + one layer of `layer_bytes` bytes + manifest) as
/// `repo:tag` and returns its manifest digest.
pub async fn push_image(repo: &str, tag: &str, layer_bytes: usize) -> String {
    let registry = registry_url();
    let http = reqwest::Client::new();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"t":"{tag}"}}}}}}"#
    )
    .into_bytes();
    let mut layer = vec![0u8; layer_bytes];
    layer[..tag.len().min(layer_bytes)]
        .copy_from_slice(&tag.as_bytes()[..tag.len().min(layer_bytes)]);
    for blob in [&config, &layer] {
        upload_blob(&http, &registry, repo, blob).await;
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(&layer), "size": layer.len()}]
    }))
    .unwrap();
    let put = http
        .put(format!("{registry}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    sha256(&manifest)
}

/// The deploy settings of the test bed: its registry over HTTP, short deadlines.
pub fn deploy_config() -> DeployConfig {
    let mut c = DeployConfig::default();
    c.registry.insecure.insert(registry_host());
    // The test bed's registry listens on loopback, which only a configured registry may.
    c.registry.private_ok.insert(registry_host());
    c.registry.default_registry = registry_host();
    c.apply.rollout_deadline = Duration::from_secs(20);
    c.poll = Duration::from_millis(200);
    c.lease = Duration::from_secs(30);
    c
}

/// An API context on `pool` whose deployer uses `config`.
pub fn ctx_with(pool: &PgPool, kek: Kek, config: DeployConfig) -> Ctx {
    let metrics = Metrics::new("loco-api-deploy-test");
    let deployer = Deployer::new(pool.clone(), kek, config, &metrics);
    Ctx::new(deployer, metrics, ApiConfig::default())
}

/// Points cluster `cluster_id` at the test bed's API server with `kubeconfig`.
pub async fn use_test_cluster(pool: &PgPool, kek: &Kek, cluster_id: i64, kubeconfig: &str) {
    clusters::set_credentials(
        pool,
        kek,
        cluster_id,
        &loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(kubeconfig)).unwrap(),
    )
    .await
    .unwrap();
}

/// Polls `f` every 200 ms until it returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies the stack's test image `source` (`host/repo@sha256:...`, e.g.
/// `LOCO_TEST_IMAGE_HTTPD`) into `repo:tag` of the stack's registry with `env` added to
/// its config (replacing variables of the same name): a new config, so a new digest
/// that no node has pulled yet, on the same layers (mounted, not copied). Returns the
/// new manifest digest.
pub async fn copy_test_image(source: &str, repo: &str, tag: &str, env: &[(&str, &str)]) -> String {
    let registry = registry_url();
    let http = reqwest::Client::new();
    let (path, digest) = source
        .split_once('@')
        .expect("a test image reference with @sha256:");
    let from = path.split_once('/').expect("host/repo").1;
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let manifest: serde_json::Value = http
        .get(format!("{registry}/v2/{from}/manifests/{digest}"))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the test image is in the stack's registry (tests/minikube/stack up pushes it)")
        .json()
        .await
        .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let mut config: serde_json::Value = http
        .get(format!("{registry}/v2/{from}/blobs/{config_digest}"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let vars = config["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut vars: Vec<String> = vars
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|v| !env.iter().any(|(k, _)| v.starts_with(&format!("{k}="))))
        .collect();
    vars.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    config["config"]["Env"] = serde_json::json!(vars);
    let config = serde_json::to_vec(&config).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let d = layer["digest"].as_str().unwrap();
        let r = http
            .post(format!(
                "{registry}/v2/{repo}/blobs/uploads/?mount={d}&from={from}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "mounting layer {d} from {from} into {repo}"
        );
    }
    upload_blob(&http, &registry, repo, &config).await;
    let mut manifest = manifest;
    manifest["config"]["digest"] = serde_json::json!(sha256(&config));
    manifest["config"]["size"] = serde_json::json!(config.len());
    let body = serde_json::to_vec(&manifest).unwrap();
    let media = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let put = http
        .put(format!("{registry}/v2/{repo}/manifests/{tag}"))
        .header("content-type", media)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    sha256(&body)
}

/// One monolithic blob upload (POST, then PUT with the digest).
async fn upload_blob(http: &reqwest::Client, registry: &str, repo: &str, blob: &[u8]) {
    let start = http
        .post(format!("{registry}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202, "starting an upload");
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{registry}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = http
        .put(format!("{location}{sep}digest={}", sha256(blob)))
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "finishing an upload");
}

/// A variable of `tests/minikube/stack env`; `None` (the test skips, saying why) when it
/// is unset outside CI. Under CI=true a missing part of the bed fails the test.
pub fn stack_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if matches!(std::env::var("CI").as_deref(), Ok("true" | "1")) => panic!(
            "{var} is not set but CI=true requires the whole test bed: run `tests/minikube/stack up`, then `eval \"$(tests/minikube/stack env)\"`"
        ),
        _ => {
            eprintln!(
                "skipping: {var} is not set (tests/minikube/stack up, then eval \"$(tests/minikube/stack env)\")"
            );
            None
        }
    }
}
