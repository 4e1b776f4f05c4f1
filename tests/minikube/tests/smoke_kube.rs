//! The Kubernetes part of the test bed is real: the API server stores and validates,
//! the scheduler places pods on kwok nodes, and kwok makes them Running and Ready.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use loco_minikube_tests::{require_env, unique, wait_for};
use serde_json::json;

async fn client() -> Option<kube::Client> {
    require_env("KUBECONFIG")?;
    Some(
        kube::Client::try_default()
            .await
            .expect("KUBECONFIG is set but no Kubernetes client could be built from it"),
    )
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"loco.test/suite": "smoke"}}
    }))
    .unwrap();
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

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
            }
        }
    }))
    .unwrap()
}

fn ready_status(p: &Pod) -> Option<(String, Option<String>)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn deployment_pod_becomes_ready_on_a_kwok_node() {
    let Some(client) = client().await else { return };
    let ns = unique("smoke-deploy");
    namespace(&client, &ns).await;
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &deployment("web", "registry.test/web:1"),
        )
        .await
        .expect("creating a Deployment");

    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let node_name = wait_for("the pod to be Ready", Duration::from_secs(90), || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .map_err(|e| e.to_string())?;
        let p = list
            .items
            .first()
            .ok_or("no pod yet (controller manager?)")?;
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        match (ready_status(p), node) {
            (Some((s, _)), Some(n)) if s == "True" => Ok(n),
            (r, n) => Err(format!("ready={r:?} node={n:?}")),
        }
    })
    .await;

    let node = Api::<Node>::all(client.clone())
        .get(&node_name)
        .await
        .unwrap();
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("type").map(String::as_str),
        Some("kwok"),
        "pod landed on {node_name}, which is not a kwok node"
    );
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn never_ready_image_runs_but_never_becomes_ready() {
    let Some(client) = client().await else { return };
    let ns = unique("smoke-never-ready");
    namespace(&client, &ns).await;
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &deployment("stuck", "registry.test/never-ready:1"),
        )
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    // The marker stage reports Running with Ready=False and reason ReadinessProbeFailed:
    // a positive observation, not the absence of readiness within some sleep.
    wait_for(
        "the pod to be Running and NotReady",
        Duration::from_secs(90),
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=stuck"))
                .await
                .map_err(|e| e.to_string())?;
            let p = list.items.first().ok_or("no pod yet")?;
            let phase = p.status.as_ref().and_then(|s| s.phase.clone());
            match (phase.as_deref(), ready_status(p)) {
                (Some("Running"), Some((s, Some(r))))
                    if s == "False" && r == "ReadinessProbeFailed" =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let d = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("stuck")
        .await
        .unwrap();
    let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    assert_eq!(ready, 0, "a never-ready pod must not count as ready");
    delete_namespace(&client, &ns).await;
}

fn http_route_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

fn http_route(name: &str, path: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "loco", "namespace": "loco-system"}],
            "hostnames": ["app.loco.test"],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{"name": "app", "port": 8080}]
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn gateway_api_crds_validate_http_routes() {
    let Some(client) = client().await else { return };
    let ns = unique("smoke-route");
    namespace(&client, &ns).await;
    let routes = http_route_api(&client, &ns);

    routes
        .create(&PostParams::default(), &http_route("good", "/api"))
        .await
        .expect("a valid HTTPRoute is accepted");

    // A PathPrefix must start with "/": the CRD's schema rejects it, so the API server
    // answers 422 Invalid before anything is stored.
    let err = routes
        .create(&PostParams::default(), &http_route("bad", "api"))
        .await
        .expect_err("an HTTPRoute whose path does not start with / must be rejected");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert_eq!(s.reason, "Invalid", "{s:?}");
        }
        other => panic!("expected a 422 from the API server, got {other}"),
    }
    assert!(routes.get_opt("bad").await.unwrap().is_none());

    // The platform layer the stack installs: the Gateway admits routes only from
    // namespaces labelled loco.deploy-app.com/routes=allowed.
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
    let gw = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "loco-system",
        &ApiResource::from_gvk(&gvk),
    )
    .get("loco")
    .await
    .expect("Gateway loco-system/loco exists");
    for listener in gw.data["spec"]["listeners"].as_array().unwrap() {
        assert_eq!(
            listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]["loco.deploy-app.com/routes"],
            "allowed",
            "{listener}"
        );
    }
    delete_namespace(&client, &ns).await;
}

/// The field managers of an object's spec (`Apply`/`Update` entries, status excluded).
fn spec_managers(obj: &DynamicObject) -> Vec<(String, String)> {
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() != Some("status"))
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_beds_platform_layer_is_applied_by_loco_not_by_the_bed() {
    // `stack platform` (the last step of `stack up`) runs `loco-api platform apply
    // --no-chart`: the CRDs, GatewayClass and Gateway are written by loco's field manager
    // with server-side apply, and by nothing of the bed's own (field manager loco-stack).
    let Some(client) = client().await else { return };
    let gw_api = |kind: &str, ns: Option<&str>| {
        let r = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "gateway.networking.k8s.io",
            "v1",
            kind,
        ));
        match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &r),
            None => Api::<DynamicObject>::all_with(client.clone(), &r),
        }
    };
    let crd = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    ));
    let objects = [
        (
            "CRD gateways.gateway.networking.k8s.io",
            Api::<DynamicObject>::all_with(client.clone(), &crd)
                .get("gateways.gateway.networking.k8s.io")
                .await,
        ),
        (
            "GatewayClass loco",
            gw_api("GatewayClass", None).get("loco").await,
        ),
        (
            "Gateway loco-system/loco",
            gw_api("Gateway", Some("loco-system")).get("loco").await,
        ),
    ];
    for (what, obj) in objects {
        let obj = obj.unwrap_or_else(|e| {
            panic!("{what} is missing ({e}): run tests/minikube/stack platform")
        });
        let managers = spec_managers(&obj);
        assert!(
            managers.iter().any(|(m, op)| m == "loco" && op == "Apply"),
            "{what} was not applied by loco: managers {managers:?}"
        );
        // `loco-test-previous` is core-api/platform's CRD upgrade test playing an older
        // installation on this bed (it hands its fields back when it ends, but a run cut
        // short leaves it); any other manager, the bed's `loco-stack` first, is a failure.
        assert!(
            managers
                .iter()
                .all(|(m, _)| m == "loco" || m == "loco-test-previous"),
            "{what} is also written by something other than loco: {managers:?}"
        );
    }
}
