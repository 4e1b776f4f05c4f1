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
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
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

/// Finding: "objects without loco's label are never touched" and "only app namespaces"
/// were enforced in loco's code only; the ClusterRole lets loco-api create Services and
/// Deployments anywhere. Now the API server refuses them (the ValidatingAdmissionPolicy
/// of core-api/rbac/loco-api.yaml). Every attempt is a dry run: nothing is written, and
/// admission still runs. The policy reaches the API server's admission a moment after
/// it is applied, so the first refusal is waited for.
#[tokio::test]
async fn the_api_server_refuses_what_loco_never_does_when_asked_as_loco_api() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, Service};
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let (w, a) = apply_support::unique_ids("vap");
    let app_ns = format!("wks-{w}-app-{a}");
    let labelled = serde_json::json!({"app.kubernetes.io/managed-by": "loco"});
    let service = |ns: &str, labels: serde_json::Value| -> Service {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "probe", "namespace": ns, "labels": labels},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap()
    };
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let refused = |r: Result<Service, kube::Error>| {
        matches!(r, Err(kube::Error::Api(s))
            if s.code == 403 && s.message.contains("ValidatingAdmissionPolicy"))
    };

    // An app namespace loco-api may create (the admin removes it at the end).
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": app_ns, "labels": labelled}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("loco-api creates a labelled app namespace");

    // Outside app namespaces (RBAC allows Services cluster-wide): refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = Api::<Service>::namespaced(client.clone(), "default")
            .create(&dry, &service("default", labelled.clone()))
            .await;
        if refused(r) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a labelled Service in namespace default was admitted for loco-api"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let in_app = Api::<Service>::namespaced(client.clone(), &app_ns);
    // Without loco's label, even in an app namespace: refused.
    let r = in_app
        .create(&dry, &service(&app_ns, serde_json::json!({})))
        .await;
    assert!(refused(r), "an unlabelled Service was admitted");
    // Taking over an object loco did not create (the admin made it): refused.
    Api::<Service>::namespaced(admin.clone(), &app_ns)
        .create(
            &PostParams::default(),
            &service(&app_ns, serde_json::json!({})),
        )
        .await
        .unwrap();
    let take_over = in_app
        .patch(
            "probe",
            &kube::api::PatchParams::apply("loco").force().dry_run(),
            &kube::api::Patch::Apply(service(&app_ns, labelled.clone())),
        )
        .await;
    assert!(refused(take_over), "loco-api took over the admin's Service");
    // What loco does is admitted.
    let mut own = service(&app_ns, labelled.clone());
    own.metadata.name = Some("own".into());
    in_app
        .create(&dry, &own)
        .await
        .expect("a labelled Service in an app namespace");
    // A pod template with another ServiceAccount than the app's own: refused.
    let deployment = |sa: &str| -> Deployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "probe", "namespace": app_ns, "labels": labelled},
            "spec": {
                "selector": {"matchLabels": {"x": "y"}},
                "template": {
                    "metadata": {"labels": {"x": "y"}},
                    "spec": {"serviceAccountName": sa,
                             "containers": [{"name": "c", "image": "registry.example/x@sha256:0000000000000000000000000000000000000000000000000000000000000001"}]}
                }
            }
        }))
        .unwrap()
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), &app_ns);
    let r = deployments.create(&dry, &deployment("default")).await;
    assert!(
        matches!(&r, Err(kube::Error::Api(s)) if s.code == 403),
        "a Deployment running as ServiceAccount default was admitted: {r:?}"
    );
    deployments
        .create(&dry, &deployment("app"))
        .await
        .expect("a Deployment running as the app's own ServiceAccount");

    Api::<Namespace>::all(admin)
        .delete(&app_ns, &Default::default())
        .await
        .unwrap();
}
