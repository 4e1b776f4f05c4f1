//! loco-api's identity (core-api/rbac/loco-api.yaml): least privilege on paper (no
//! wildcards, no RBAC verbs) and in fact (the API server refuses what it does not need).

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use apply_support::{admin_client, kubeconfig_yaml_for, loco_api_client, rbac_documents};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{ListParams, PostParams};

#[test]
fn the_cluster_role_has_no_wildcards_and_no_rbac_or_escalation_verbs() {
    let docs = rbac_documents();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    );
    let role = &docs[1];
    for rule in role["rules"].as_array().unwrap() {
        for field in ["apiGroups", "resources", "verbs"] {
            for v in rule[field].as_array().unwrap() {
                let v = v.as_str().unwrap();
                assert!(!v.contains('*'), "wildcard in {field}: {rule}");
                assert_ne!(v, "rbac.authorization.k8s.io", "RBAC rights: {rule}");
                assert!(
                    !["escalate", "bind", "impersonate", "update"].contains(&v),
                    "{v}: {rule}"
                );
            }
        }
        assert!(rule.get("nonResourceURLs").is_none());
    }
    let binding = &docs[2];
    assert_eq!(binding["subjects"][0]["name"], "loco-api");
    assert_eq!(binding["roleRef"]["name"], "loco-api");
}

#[tokio::test]
async fn the_loco_api_token_can_do_what_apply_needs_and_nothing_else() {
    let Some(_admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    // Preflight's reads work.
    Api::<Node>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
        .expect("list nodes");
    // What it was not granted is refused.
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default())
        .await
        .expect_err("configmaps are not loco-api's business");
    assert!(
        matches!(cm, kube::Error::Api(ref s) if s.code == 403),
        "{cm}"
    );
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta {
            name: Some("loco-api-escalated".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = Api::<ClusterRole>::all(client)
        .create(&PostParams::default(), &role)
        .await
        .expect_err("loco-api must not write RBAC");
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 403), "{e}");
}

#[test]
fn the_kubeconfig_for_a_token_carries_the_token_and_nothing_of_the_admin() {
    if std::env::var("KUBECONFIG").map_or(true, |k| k.is_empty()) {
        return;
    }
    let yaml = kubeconfig_yaml_for("tok-123");
    assert!(yaml.contains("tok-123"));
    assert!(yaml.contains("server:"));
    assert!(!yaml.contains("client-key-data") && !yaml.contains("client-certificate-data"));
}
