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

/// Issue 13 item 4, "no change of another field manager's objects": inside an app
/// namespace, as loco-api, an object without loco's label cannot be changed or deleted,
/// and neither can one that carries the label but was written by another field manager
/// (someone copied loco's label onto their own object). loco's own objects can. Every
/// attempt as loco-api is a dry run; the admin's objects are real.
#[tokio::test]
async fn loco_api_cannot_change_or_delete_objects_loco_did_not_write() {
    use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
    use kube::api::{DeleteParams, Patch, PatchParams};
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let (w, a) = apply_support::unique_ids("fieldmanagers");
    let ns = format!("wks-{w}-app-{a}");
    let labelled = serde_json::json!({"app.kubernetes.io/managed-by": "loco"});
    let service = |name: &str, labels: &serde_json::Value| -> Service {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap()
    };
    // loco's namespace and Service, written as loco writes (server-side apply, manager loco).
    let as_loco = PatchParams::apply("loco").force();
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &as_loco,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labelled}
            })),
        )
        .await
        .expect("loco-api applies its namespace");
    let as_loco_api = Api::<Service>::namespaced(client.clone(), &ns);
    as_loco_api
        .patch("own", &as_loco, &Patch::Apply(service("own", &labelled)))
        .await
        .expect("loco-api applies its Service");
    // The admin's objects: one unlabelled, one with loco's label copied onto it.
    let as_admin = Api::<Service>::namespaced(admin.clone(), &ns);
    let admin_manager = PatchParams::apply("cluster-admin").force();
    for (name, labels) in [
        ("unlabelled", serde_json::json!({})),
        ("lookalike", labelled.clone()),
    ] {
        as_admin
            .patch(name, &admin_manager, &Patch::Apply(service(name, &labels)))
            .await
            .unwrap();
    }

    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let edit = |name: &str| {
        let mut s = service(name, &labelled);
        s.metadata.annotations = Some([("x".to_owned(), "y".to_owned())].into());
        s
    };
    let refused = |r: &Result<(), kube::Error>, why: &str| {
        matches!(r, Err(kube::Error::Api(s))
            if s.code == 403 && s.message.contains("loco-api-boundaries") && s.message.contains(why))
    };
    let delete = |name: &'static str| {
        let api = as_loco_api.clone();
        let dp = dry_delete.clone();
        async move { api.delete(name, &dp).await.map(|_| ()) }
    };
    let apply = |name: &'static str| {
        let api = as_loco_api.clone();
        let body = edit(name);
        async move {
            api.patch(
                name,
                &PatchParams::apply("loco").force().dry_run(),
                &Patch::Apply(body),
            )
            .await
            .map(|_| ())
        }
    };
    // The policy may have just been updated by loco_api_client(): the API server picks
    // up a new version a moment later, so the first refusal is waited for.
    let written_by_loco = "loco's field manager wrote";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if refused(&delete("lookalike").await, written_by_loco) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "loco-api may delete a labelled Service another field manager wrote"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let r = apply("lookalike").await;
    assert!(
        refused(&r, written_by_loco),
        "loco-api took over the lookalike: {r:?}"
    );
    let merge = as_loco_api
        .patch(
            "lookalike",
            &PatchParams::default().dry_run(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"x": "y"}}})),
        )
        .await
        .map(|_| ());
    assert!(
        refused(&merge, written_by_loco),
        "a merge patch of the lookalike: {merge:?}"
    );
    // Without the label at all: refused, delete and update alike.
    let r = delete("unlabelled").await;
    assert!(
        refused(&r, "labelled app.kubernetes.io/managed-by=loco"),
        "{r:?}"
    );
    let r = apply("unlabelled").await;
    assert!(refused(&r, "did not create"), "{r:?}");
    // loco's own object: changed and deleted as before.
    apply("own")
        .await
        .expect("loco-api updates its own Service");
    delete("own")
        .await
        .expect("loco-api deletes its own Service");

    // A Secret with loco's label that loco did not write, in the way of a prune: loco-api
    // cannot read it, the API server refuses its delete, and prune leaves it.
    let lookalike: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "env-0123456789", "namespace": ns, "labels": labelled},
        "data": {"K": "dg=="}
    }))
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .patch("env-0123456789", &admin_manager, &Patch::Apply(lookalike))
        .await
        .unwrap();
    let applier = loco_apply::Applier::new(client.clone(), Default::default());
    let empty = loco_render::Rendered {
        namespace: ns.clone(),
        objects: vec![],
    };
    let previous = [loco_render::ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(ns.clone()),
        name: "env-0123456789".into(),
    }];
    let pruned = applier.prune(&empty, &previous).await.expect("prune");
    assert!(pruned.is_empty(), "{pruned:?}");
    assert!(
        Api::<Secret>::namespaced(admin.clone(), &ns)
            .get_opt("env-0123456789")
            .await
            .unwrap()
            .is_some(),
        "the admin's Secret was deleted"
    );

    Api::<Namespace>::all(admin)
        .delete(&ns, &Default::default())
        .await
        .unwrap();
}
