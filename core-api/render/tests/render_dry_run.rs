//! Every rendered object is accepted by the real API server: server-side apply, dry run,
//! field manager `loco`. The namespace is created for real (a namespaced dry run needs it)
//! and deleted at the end. BackendTrafficPolicy's CRD is not installed on the test cluster,
//! so those cases run with that setting off.
//!
//! The cluster comes from KUBECONFIG: `eval "$(tests/minikube/stack env)"`.

mod render_support;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use loco_render::Object;
use render_support::{CASES, input};

const TEST_LABEL: &str = "loco.deploy-app.com/test";

/// The test cluster, or None (the test then returns). With CI=true a missing cluster
/// fails the test: CI must not pass by skipping.
async fn cluster() -> Option<Client> {
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

/// Positive ids no other run uses: the namespace is wks-<w>-app-<a>.
fn unique_ids() -> (i64, i64) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let w = 900_000 + i64::from(std::process::id() % 100_000);
    let a = i64::try_from(nanos % 1_000_000_000).unwrap_or(1) + 1;
    (w, a)
}

fn api(client: &Client, object: &Object) -> Api<DynamicObject> {
    let r = object.api_resource();
    let ar = kube::api::ApiResource {
        group: r.group,
        version: r.version,
        api_version: r.api_version,
        kind: r.kind,
        plural: r.plural,
    };
    match &object.metadata().namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

#[tokio::test]
async fn every_rendered_object_passes_a_server_side_apply_dry_run() {
    let Some(client) = cluster().await else {
        return;
    };
    let (workspace_id, app_id) = unique_ids();
    let namespace = loco_render::namespace_name(workspace_id, app_id);

    // The namespace for real, labelled as a test leftover should it outlive the run.
    let first = loco_render::render(&input(&CASES[0], workspace_id, app_id)).expect("render");
    let mut ns = first.objects[0].object.to_dynamic().expect("namespace");
    ns.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(TEST_LABEL.into(), "render-dry-run".into());
    let ns_api = api(&client, &first.objects[0].object);
    ns_api
        .patch(&namespace, &PatchParams::apply("loco"), &Patch::Apply(&ns))
        .await
        .expect("create the test namespace");

    let dry_run = PatchParams::apply("loco").dry_run();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in CASES {
        assert!(!case.backend_traffic_policy || case.name.contains("policy"));
        let mut i = input(case, workspace_id, app_id);
        i.settings.backend_traffic_policy = false;
        let rendered = loco_render::render(&i).expect("render");
        for o in &rendered.objects {
            let body = o.object.to_dynamic().expect("dynamic");
            let name = o.object.metadata().name.clone().unwrap_or_default();
            let r = api(&client, &o.object)
                .patch(&name, &dry_run, &Patch::Apply(&body))
                .await;
            checked += 1;
            if let Err(e) = r {
                let kind = o.object.api_resource().kind;
                failures.push(format!("{}: {kind}/{name}: {e}", case.name));
            }
        }
    }

    let deleted = ns_api.delete(&namespace, &DeleteParams::default()).await;
    assert!(
        failures.is_empty(),
        "the API server refused:\n{}",
        failures.join("\n")
    );
    assert!(checked > 40, "only {checked} objects checked");
    deleted.expect("delete the test namespace");
}
