//! loco-api's identity in the workload cluster (core-api/rbac/loco-api.yaml, the one
//! source the chart's rbac.yaml links to): applied by the platform layer when loco-api
//! runs outside the cluster (no chart), and a fresh token for it after a rebuild, since a
//! ServiceAccount token dies with the cluster's etcd.

use kube::Api;
use kube::api::{ApiResource, GroupVersionKind, PatchParams};
use serde_json::Value;

use super::error::PlatformError;
use loco_crypto::Secret;

/// The ServiceAccount, ClusterRole, ClusterRoleBinding and admission policy of loco-api.
const RBAC: &str = include_str!("../../rbac/loco-api.yaml");

/// Where loco-api's ServiceAccount lives (the file's own choice).
pub const API_NAMESPACE: &str = "loco-system";
pub const API_SERVICE_ACCOUNT: &str = "loco-api";

/// The objects of core-api/rbac/loco-api.yaml, in file order.
pub fn api_identity_objects() -> Result<Vec<Value>, PlatformError> {
    let bundled = |cause: String| PlatformError::Bundled {
        what: "core-api/rbac/loco-api.yaml".to_owned(),
        cause,
    };
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(RBAC) {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e: serde_yaml::Error| bundled(e.to_string()))?;
        if v.is_null() {
            continue;
        }
        plural(&v).ok_or_else(|| bundled(format!("unexpected kind {}", v["kind"])))?;
        out.push(v);
    }
    Ok(out)
}

/// The plural of each kind the file holds (named, not guessed).
fn plural(obj: &Value) -> Option<&'static str> {
    Some(match obj["kind"].as_str()? {
        "ServiceAccount" => "serviceaccounts",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ValidatingAdmissionPolicy" => "validatingadmissionpolicies",
        "ValidatingAdmissionPolicyBinding" => "validatingadmissionpolicybindings",
        _ => return None,
    })
}

/// Applies loco-api's identity (server-side apply, field manager `loco`). Returns
/// `Kind/name` of each object.
pub async fn apply(client: &kube::Client, dry_run: bool) -> Result<Vec<String>, PlatformError> {
    let mut params = PatchParams::apply(loco_apply::FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut report = Vec::new();
    for obj in api_identity_objects()? {
        let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = obj["kind"].as_str().unwrap_or_default();
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural(&obj).unwrap_or_default(),
        );
        let what = super::ssa::apply_json(client, &obj, &ar, &params).await?;
        report.push(what);
    }
    Ok(report)
}

/// A kubeconfig for loco-api's ServiceAccount with a token valid for `ttl_seconds`,
/// reaching the cluster at the server (and CA) of `installer`, the credential that
/// asked for it. Both in memory only.
pub async fn api_kubeconfig(
    client: &kube::Client,
    installer: &Secret,
    ttl_seconds: i64,
) -> Result<Secret, PlatformError> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let what = format!("ServiceAccount {API_NAMESPACE}/{API_SERVICE_ACCOUNT}");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), API_NAMESPACE);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(ttl_seconds),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let answer = accounts
        .create_token_request(API_SERVICE_ACCOUNT, &Default::default(), &request)
        .await
        .map_err(|e| PlatformError::kube("request a token for", &what, e))?;
    let token = answer
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| PlatformError::Kube {
            verb: "request a token for",
            object: what.clone(),
            message: "the answer holds no token".to_owned(),
        })?;
    let (server, ca) = server_of(installer)?;
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": API_SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": API_SERVICE_ACCOUNT, "context": {"cluster": "cluster", "user": API_SERVICE_ACCOUNT, "namespace": API_NAMESPACE}}],
        "current-context": API_SERVICE_ACCOUNT,
    });
    serde_yaml::to_string(&kubeconfig)
        .map(Secret::new)
        .map_err(|e| PlatformError::Io(format!("writing loco-api's kubeconfig: {e}")))
}

/// The server and inline CA of a kubeconfig's current context (never its user).
fn server_of(kubeconfig: &Secret) -> Result<(String, Option<String>), PlatformError> {
    let bad = |why: &str| PlatformError::Kube {
        verb: "read",
        object: "the installer kubeconfig".to_owned(),
        message: why.to_owned(),
    };
    let doc: Value = serde_yaml::from_str(kubeconfig.expose()).map_err(|_| bad("not YAML"))?;
    let context = doc["current-context"].as_str().unwrap_or_default();
    let cluster_name = doc["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == context))
        .and_then(|c| c["context"]["cluster"].as_str())
        .or_else(|| doc["clusters"][0]["name"].as_str())
        .unwrap_or_default();
    let cluster = doc["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == cluster_name))
        .map(|c| &c["cluster"])
        .ok_or_else(|| bad("it names no cluster"))?;
    let server = cluster["server"]
        .as_str()
        .ok_or_else(|| bad("its cluster has no server"))?;
    Ok((
        server.to_owned(),
        cluster["certificate-authority-data"]
            .as_str()
            .map(str::to_owned),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rbac_file_parses_into_known_kinds() {
        let objs = api_identity_objects().unwrap();
        let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert!(kinds.contains(&"ServiceAccount"), "{kinds:?}");
        assert!(kinds.contains(&"ClusterRole"), "{kinds:?}");
        assert!(
            kinds.contains(&"ValidatingAdmissionPolicyBinding"),
            "{kinds:?}"
        );
    }

    #[test]
    fn the_server_comes_from_the_current_context_and_no_user_is_read() {
        let kc = Secret::new(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'https://a:6443', certificate-authority-data: Q0E=}\n- name: b\n  cluster: {server: 'https://b:6443'}\ncontexts:\n- name: x\n  context: {cluster: b, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: secret-token}\n".to_owned(),
        );
        assert_eq!(server_of(&kc).unwrap(), ("https://b:6443".to_owned(), None));
        let e = server_of(&Secret::new("clusters: []\n".to_owned())).unwrap_err();
        assert!(!e.to_string().contains("secret-token"));
    }
}
