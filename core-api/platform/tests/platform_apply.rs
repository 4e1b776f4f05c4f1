//! The platform layer on the test cluster: the pinned Gateway API CRDs upgrade the
//! previous minor in place (stored versions kept served, Established, the pinned bundle
//! version), loco's Gateway is applied and accepted by the bed's real gateway (Traefik),
//! a GatewayClass of another controller is refused, and a dry run writes nothing.
//!
//! One test function on purpose: the CRDs are cluster-wide, so the downgrade to the
//! previous minor and the upgrade back must not interleave with another test of this
//! binary (cargo runs test binaries one after another).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use loco_crypto::Secret;
use loco_platform::{
    ApplyOptions, GATEWAY_API_VERSION, PlatformError, Release, gateway_api_crds, live_crds,
};
use serde_json::json;

fn stack_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if matches!(std::env::var("CI").as_deref(), Ok("true" | "1")) => {
            panic!(
                "{var} is not set but CI=true requires the test bed: eval \"$(tests/minikube/stack env)\""
            )
        }
        _ => {
            eprintln!(
                "skipping: {var} is not set (tests/minikube/stack up, then eval \"$(tests/minikube/stack env)\")"
            );
            None
        }
    }
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}", (nanos ^ std::process::id()) & 0xff_ffff)
}

fn gvk_api(
    client: &kube::Client,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind),
        plural,
    );
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn values(u: &str, controller: &str) -> serde_json::Value {
    json!({"gateway": {
        "namespace": format!("platform-test-{u}"),
        "name": format!("gw-{u}"),
        "className": format!("platform-test-{u}"),
        "controllerName": controller,
        "hostname": format!("*.p{u}.loco.test"),
        "httpPort": std::env::var("LOCO_GATEWAY_URL").ok()
            .and_then(|u| u.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()))
            .unwrap_or(80),
    }})
}

async fn accepted(client: &kube::Client, ns: &str, name: &str) -> bool {
    let gw = gvk_api(client, "Gateway", "gateways", Some(ns))
        .get(name)
        .await
        .unwrap();
    gw.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Accepted" && c["status"] == "True")
}

#[tokio::test]
async fn crds_upgrade_from_the_previous_minor_then_the_gateway_serves() {
    let (Some(_), Some(previous)) = (
        stack_var("KUBECONFIG"),
        stack_var("LOCO_TEST_GATEWAY_API_PREVIOUS_DIR"),
    ) else {
        return;
    };
    let client = kube::Client::try_default().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let no_kubeconfig = Secret::new(String::new());

    // 1. The cluster on the previous minor (as an older loco or the bed would have left it).
    let old_params = PatchParams::apply("loco-test-previous").force();
    let mut old_versions = Vec::new();
    let mut old_names = Vec::new();
    for entry in std::fs::read_dir(&previous).unwrap() {
        let path = entry.unwrap().path();
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        old_versions.push(
            crd.metadata.annotations.as_ref().unwrap()[loco_platform::BUNDLE_VERSION_ANNOTATION]
                .clone(),
        );
        crds.patch(&name, &old_params, &Patch::Apply(&crd))
            .await
            .unwrap();
        old_names.push(name);
    }
    assert!(
        old_versions.iter().all(|v| v != GATEWAY_API_VERSION),
        "{old_versions:?}"
    );

    // 2. A dry run reports the upgrade and writes nothing.
    let u = unique();
    let release = Release {
        chart_version: "0.1.0".into(),
        values: values(&u, "traefik.io/gateway-controller"),
    };
    let dry = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    let report = loco_platform::apply(&client, &no_kubeconfig, &release, &dry)
        .await
        .unwrap();
    assert!(report.dry_run);
    let gw_crd = report
        .crds
        .iter()
        .find(|c| c.name == "gateways.gateway.networking.k8s.io")
        .unwrap();
    assert_ne!(
        gw_crd.from.as_deref(),
        Some(GATEWAY_API_VERSION),
        "{report:?}"
    );
    let live = live_crds(&client).await.unwrap();
    let gw_live = live
        .iter()
        .find(|(n, _)| n == "gateways.gateway.networking.k8s.io")
        .unwrap();
    assert_ne!(
        gw_live.1.as_ref().unwrap().bundle_version.as_deref(),
        Some(GATEWAY_API_VERSION),
        "the dry run left the CRDs as they were"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get_opt(&format!("platform-test-{u}"))
            .await
            .unwrap()
            .is_none()
    );

    // 3. The upgrade: every pinned CRD Established at the pinned version, stored
    //    versions still served; then the Gateway, accepted by Traefik.
    let report = loco_platform::apply(&client, &no_kubeconfig, &release, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(report.crds.len(), gateway_api_crds().unwrap().len());
    for (name, state) in live_crds(&client).await.unwrap() {
        let s = state.unwrap_or_else(|| panic!("{name} missing after the apply"));
        assert!(s.established, "{name}");
        assert_eq!(
            s.bundle_version.as_deref(),
            Some(GATEWAY_API_VERSION),
            "{name}"
        );
        for stored in &s.stored {
            assert!(
                s.served.contains(stored),
                "{name}: stored {stored} not served"
            );
        }
    }
    assert_eq!(
        report.gateway,
        [
            format!("Namespace/platform-test-{u}"),
            format!("GatewayClass/platform-test-{u}"),
            format!("Gateway/gw-{u}"),
        ]
    );
    let ns = format!("platform-test-{u}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !accepted(&client, &ns, &format!("gw-{u}")).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Traefik never accepted the Gateway gw-{u}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Applying again changes nothing it reports as missing.
    let again = loco_platform::apply(&client, &no_kubeconfig, &release, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(
        again
            .crds
            .iter()
            .all(|c| c.from.as_deref() == Some(GATEWAY_API_VERSION))
    );

    // 4. The same class name for another controller is refused, naming both.
    let other = Release {
        chart_version: "0.1.0".into(),
        values: values(&u, "example.com/another-controller"),
    };
    let e = loco_platform::apply(&client, &no_kubeconfig, &other, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, PlatformError::GatewayClassController { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("example.com/another-controller"),
        "{e}"
    );

    // The older installation lets go: applying nothing as its manager drops its claim on
    // the fields loco shares, and removes the old-only ones (as an operator would after
    // handing the CRDs to loco).
    for name in old_names {
        let empty = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
        });
        crds.patch(
            &name,
            &PatchParams::apply("loco-test-previous"),
            &Patch::Apply(&empty),
        )
        .await
        .unwrap();
        let crd = crds.get(&name).await.unwrap();
        let managers: Vec<_> = crd
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(
            !managers.iter().any(|m| m == "loco-test-previous"),
            "{name}: {managers:?}"
        );
        assert!(managers.iter().any(|m| m == "loco"), "{name}: {managers:?}");
    }
    // Clean up what this test made (the CRDs stay: they are the bed's, now pinned).
    gvk_api(&client, "GatewayClass", "gatewayclasses", None)
        .delete(&format!("platform-test-{u}"), &DeleteParams::default())
        .await
        .unwrap();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
}
