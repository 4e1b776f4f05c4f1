//! apply_many on the real test cluster: several apps at once, a second run writes
//! nothing, a change writes only what changed, and one refused app does not stop the rest.

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use apply_support::{App, admin_client, cleanup, loco_api_client};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use loco_apply::{Applier, ApplyConfig, ApplyError};

#[tokio::test]
async fn apply_many_applies_every_app_and_a_second_run_writes_nothing() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, ApplyConfig::default());
    let mut apps: Vec<App> = (0..4)
        .map(|i| App::new(&format!("apply_many_{i}")))
        .collect();
    for (i, a) in apps.iter_mut().enumerate() {
        a.app_id += i as i64; // distinct even when the clock repeats
        a.grpc = i % 2 == 0;
    }
    let rendered: Vec<_> = apps.iter().map(App::render).collect();
    let total: usize = rendered.iter().map(|r| r.objects.len()).sum();

    let r = applier.apply_many(&rendered).await.expect("apply_many");
    assert_eq!(r.written.len(), total);
    assert_eq!(applier.writes(), total as u64);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for a in &apps {
        assert!(namespaces.get_opt(&a.namespace()).await.unwrap().is_some());
        let svc: Api<Service> = Api::namespaced(admin.clone(), &a.namespace());
        assert!(svc.get_opt("app").await.unwrap().is_some());
    }

    let before = applier.writes();
    let r = applier
        .apply_many(&rendered)
        .await
        .expect("second apply_many");
    assert_eq!(applier.writes() - before, 0, "a no-change apply_many wrote");
    assert_eq!(r.unchanged, total);

    // One app's image changes: one write.
    apps[1].version = "1.2.0".into();
    let mut changed = rendered.clone();
    changed[1] = apps[1].render();
    let before = applier.writes();
    let r = applier
        .apply_many(&changed)
        .await
        .expect("apply_many with a change");
    assert_eq!(applier.writes() - before, 1);
    assert_eq!(r.written.len(), 1);
    assert_eq!(r.written[0].kind, "Deployment");

    // A foreign object in one app: that app is refused, the others still apply.
    let foreign = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "app", "labels": { "team": "ops" } },
        "spec": { "ports": [{ "port": 80 }] },
    });
    let svc: Api<Service> = Api::namespaced(admin.clone(), &apps[2].namespace());
    svc.delete("app", &Default::default())
        .await
        .expect("delete loco's Service");
    svc.patch(
        "app",
        &PatchParams::apply("someone-else"),
        &Patch::Apply(&foreign),
    )
    .await
    .expect("foreign Service");
    apps[0].version = "1.3.0".into();
    changed[0] = apps[0].render();
    let e = applier
        .apply_many(&changed)
        .await
        .expect_err("one app is refused");
    let ApplyError::SomeAppsFailed {
        failed,
        total,
        first,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*failed, *total), (1, 4));
    assert_eq!(first.reason(), "not_managed_by_loco");
    assert!(
        e.to_string()
            .contains(&format!("Service {}/app", apps[2].namespace())),
        "{e}"
    );
    let each = applier.apply_each(&changed).await;
    assert!(each[0].1.is_none() && each[2].1.is_some());
    let d = apply_support::deployment(&admin, &apps[0].namespace()).await;
    assert_eq!(
        apply_support::image_of(&d),
        apps[0].image(),
        "the other apps were not applied"
    );

    for a in &apps {
        cleanup(&admin, a).await;
    }
}
