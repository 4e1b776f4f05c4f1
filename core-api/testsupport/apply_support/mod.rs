//! Shared by the apply tests (and reusable by the deploy flow's): the test cluster, loco-api's
//! own identity on it, and apps to render.
//!
//! The admin kubeconfig (KUBECONFIG, from `eval "$(tests/minikube/stack env)"`) is for
//! setup and inspection only; apply runs as the `loco-api` ServiceAccount of
//! core-api/rbac/loco-api.yaml through [`loco_api_client`].
#![allow(dead_code)]

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config};
use loco_render::{ChecksumKey, PullCredential, RenderInput, Rendered};

pub const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
/// kwok never makes a pod Ready when its image contains this (tests/minikube/kwok).
pub const NEVER_READY: &str = "never-ready";
const SA_NAMESPACE: &str = "loco-system";
const SA_NAME: &str = "loco-api";

/// The admin client, or None when there is no test cluster (the test then returns).
/// With CI=true a missing cluster fails: CI must not pass by skipping.
pub async fn admin_client() -> Option<Client> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = |why: String| {
        assert!(
            !ci,
            "CI=true but there is no test cluster: {why} (run: eval \"$(tests/minikube/stack env)\")"
        );
        eprintln!("skipping: no test cluster [{why}] (run tests/minikube/stack up)");
        None
    };
    if std::env::var("KUBECONFIG").map_or(true, |k| k.is_empty()) {
        return skip("KUBECONFIG is not set".into());
    }
    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => return skip(e.to_string()),
    };
    match client.apiserver_version().await {
        Ok(_) => Some(client),
        Err(e) => skip(format!("the API server is unreachable: {e}")),
    }
}

// This file is included by the tests of several crates (apply, api, loco-api), so the
// manifest is found relative to this file, not to the crate being tested.
const RBAC_YAML: &str = include_str!("../../rbac/loco-api.yaml");

/// The documents of core-api/rbac/loco-api.yaml.
pub fn rbac_documents() -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(RBAC_YAML)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("rbac yaml");
            serde_json::to_value(v).expect("rbac yaml as json")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Applies core-api/rbac/loco-api.yaml with the admin client, mints a token for the
/// `loco-api` ServiceAccount (TokenRequest API) and returns a client that authenticates
/// with it: same server and CA as the admin kubeconfig, nothing else of the admin's.
pub async fn loco_api_client() -> Client {
    client_from_kubeconfig(&kubeconfig_yaml_for(&loco_api_token().await)).await
}

/// Applies core-api/rbac/loco-api.yaml and mints a token for its ServiceAccount (what the
/// deploy tests store as the cluster's credential, through [`kubeconfig_yaml_for`]); waits
/// until the API server's authoriser accepts it (it learns of a new binding through its
/// cache, so the first request could race it).
pub async fn loco_api_token() -> String {
    let token = mint_loco_api_token().await;
    let client = client_from_kubeconfig(&kubeconfig_yaml_for(&token)).await;
    let namespaces: Api<Namespace> = Api::all(client);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match namespaces
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            Ok(_) => return token,
            Err(e) if Instant::now() > deadline => panic!("loco-api's token never worked: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn mint_loco_api_token() -> String {
    let admin = admin_client()
        .await
        .expect("a test cluster (see admin_client)");
    let setup = PatchParams::apply("loco-test-setup").force();
    for doc in rbac_documents() {
        let obj: DynamicObject = serde_json::from_value(doc).expect("rbac object");
        let types = obj.types.clone().expect("apiVersion and kind");
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", &types.api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
        let name = obj.metadata.name.clone().expect("name");
        let api: Api<DynamicObject> = match &obj.metadata.namespace {
            Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
            None => Api::all_with(admin.clone(), &ar),
        };
        api.patch(&name, &setup, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("apply {} {name}: {e}", types.kind));
    }
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), SA_NAMESPACE);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    sas.create_token_request(SA_NAME, &PostParams::default(), &request)
        .await
        .expect("TokenRequest for loco-api")
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// A kubeconfig for the admin kubeconfig's cluster (server and CA) that authenticates
/// with `token`: what the deploy flow stores as a cluster credential.
pub fn kubeconfig_yaml_for(token: &str) -> String {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let admin = Kubeconfig::read_from(&path).expect("read the admin kubeconfig");
    let context = admin
        .current_context
        .as_ref()
        .and_then(|c| admin.contexts.iter().find(|x| &x.name == c))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = admin
        .clusters
        .iter()
        .find(|c| Some(&c.name) == context.as_ref())
        .or_else(|| admin.clusters.first())
        .and_then(|c| c.cluster.clone())
        .expect("a cluster in the admin kubeconfig");
    let mut cluster_json = serde_json::json!({ "server": cluster.server });
    if let Some(ca) = &cluster.certificate_authority_data {
        cluster_json["certificate-authority-data"] = ca.clone().into();
    }
    if let Some(ca) = &cluster.certificate_authority {
        cluster_json["certificate-authority"] = ca.clone().into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "loco", "cluster": cluster_json }],
        "users": [{ "name": SA_NAME, "user": { "token": token } }],
        "contexts": [{ "name": "loco", "context": { "cluster": "loco", "user": SA_NAME, "namespace": SA_NAMESPACE } }],
        "current-context": "loco",
    });
    serde_yaml::to_string(&doc).expect("kubeconfig yaml")
}

pub async fn client_from_kubeconfig(yaml: &str) -> Client {
    let kc = Kubeconfig::from_yaml(yaml).expect("parse kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to config");
    Client::try_from(config).expect("client")
}

/// Ids no other test or run uses: the namespace is wks-<w>-app-<a>.
pub fn unique_ids(test: &str) -> (i64, i64) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name_hash = test
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let w = 700_000
        + i64::try_from(name_hash % 90_000).unwrap_or(0)
        + i64::from(std::process::id() % 10_000);
    let a = i64::try_from(nanos % 1_000_000_000).unwrap_or(1) + 1;
    (w, a)
}

/// An app to render: the knobs the tests turn.
#[derive(Debug, Clone)]
pub struct App {
    pub workspace_id: i64,
    pub app_id: i64,
    pub version: String,
    pub env_value: String,
    pub grpc: bool,
    pub autoscaling: bool,
    pub asleep: bool,
    pub never_ready: bool,
    pub pull_password: String,
}

impl App {
    pub fn new(test: &str) -> Self {
        let (workspace_id, app_id) = unique_ids(test);
        Self {
            workspace_id,
            app_id,
            version: "1.0.0".into(),
            env_value: "first".into(),
            grpc: false,
            autoscaling: false,
            asleep: false,
            never_ready: false,
            pull_password: "pull-password-1".into(),
        }
    }

    pub fn namespace(&self) -> String {
        loco_render::namespace_name(self.workspace_id, self.app_id)
    }

    pub fn image(&self) -> String {
        let name = if self.never_ready {
            format!("loco-{NEVER_READY}")
        } else {
            "app".to_owned()
        };
        format!(
            "registry.deploy-app.com/o1/{name}:{}@{DIGEST}",
            self.version
        )
    }

    pub fn toml(&self) -> String {
        let mut s = format!(
            "[Metadata]\nName = \"app{}\"\nRegion = \"fra1\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n\
             [RegionConfig.fra1]\nCPU = \"1m\"\nMemory = \"8Mi\"\nReplicasMin = 1\nReplicasMax = 2\n\
             [Env]\nVariables = {{ GREETING = {:?} }}\n",
            self.app_id, self.env_value
        );
        if self.autoscaling {
            s.push_str("[RegionConfig.fra1.Scalers]\nEnabled = true\nCPUTarget = 70\n");
        }
        if self.grpc {
            s.push_str("[GRPC]\nPort = 50051\nServices = [\"demo.Greeter\"]\n");
        }
        s
    }

    pub fn input(&self) -> RenderInput {
        let v = loco_spec::validate(&self.toml(), "loco.toml", &Default::default())
            .unwrap_or_else(|e| panic!("spec: {e}"));
        RenderInput {
            org_id: 1,
            workspace_id: self.workspace_id,
            app_id: self.app_id,
            deployment_id: 1,
            template_deployment_id: 1,
            revision_id: 1,
            spec: v.spec,
            image: self.image(),
            replicas: None,
            asleep: self.asleep,
            env: v.env_values,
            checksum_key: ChecksumKey(b"apply-test-key".to_vec()),
            pull_secret: Some(PullCredential {
                registry: "registry.deploy-app.com".into(),
                username: "loco-pull".into(),
                password: self.pull_password.clone(),
            }),
            workspace_apps: vec![],
            settings: Default::default(),
        }
    }

    pub fn render(&self) -> Rendered {
        loco_render::render(&self.input()).expect("render")
    }
}

/// The live Deployment `app` of a namespace (admin view).
pub async fn deployment(admin: &Client, namespace: &str) -> Deployment {
    Api::<Deployment>::namespaced(admin.clone(), namespace)
        .get(loco_render::SERVICE_NAME)
        .await
        .expect("the Deployment")
}

/// The container image of the live Deployment.
pub fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Whether the Deployment has rolled out: every replica updated and available.
pub fn is_rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    st.observed_generation >= d.metadata.generation
        && st.updated_replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
}

/// Deletes a test namespace (and the app's ReferenceGrants elsewhere) with the admin
/// client. Does not wait: pods take their 30 s grace period, and the names are unique.
/// Safe to call on an absent namespace.
pub async fn cleanup(admin: &Client, app: &App) {
    let grants = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1beta1",
        "ReferenceGrant",
    ));
    let selector = format!("{}={}", loco_render::LABEL_APP, app.app_id);
    let api: Api<DynamicObject> = Api::all_with(admin.clone(), &grants);
    if let Ok(list) = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
    {
        for g in list.items {
            let (Some(gns), Some(name)) = (g.metadata.namespace, g.metadata.name) else {
                continue;
            };
            let _ = Api::<DynamicObject>::namespaced_with(admin.clone(), &gns, &grants)
                .delete(&name, &DeleteParams::default())
                .await;
        }
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let _ = namespaces
        .delete(&app.namespace(), &DeleteParams::background())
        .await;
}

/// Waits (with a deadline) for a condition on the admin view.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
