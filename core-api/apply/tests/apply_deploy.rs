//! Apply against the real test cluster, as loco-api's own ServiceAccount: a new app, a
//! no-change redeploy (0 writes), changes that write only what changed, sleep, and
//! delete_app. Needs `eval "$(tests/minikube/stack env)"`.

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use std::time::Duration;

use apply_support::{
    App, admin_client, cleanup, deployment, image_of, is_rolled_out, loco_api_client,
};
use kube::api::{Api, DynamicObject};
use loco_apply::{ANNOTATION_APPLIED_HASH, Applier, ApplyConfig, applied_hashes};
use loco_render::{Object, ObjectRef, Rendered};

fn config() -> ApplyConfig {
    ApplyConfig {
        rollout_deadline: Duration::from_secs(60),
        ..ApplyConfig::default()
    }
}

async fn live(admin: &kube::Client, o: &Object) -> Option<DynamicObject> {
    let ar = loco_apply::kube_resource(&o.api_resource());
    let api: Api<DynamicObject> = match &o.metadata().namespace {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
        None => Api::all_with(admin.clone(), &ar),
    };
    api.get_opt(o.metadata().name.as_deref().unwrap())
        .await
        .unwrap()
}

fn kinds(refs: &[ObjectRef]) -> Vec<String> {
    refs.iter()
        .map(|r| format!("{}/{}", r.kind, r.name))
        .collect()
}

fn secret_name(r: &Rendered) -> String {
    r.objects
        .iter()
        .find_map(|o| match &o.object {
            Object::Secret(s)
                if s.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("env-")) =>
            {
                s.metadata.name.clone()
            }
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn deploy_then_redeploy_writes_nothing_and_a_change_writes_only_what_changed() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let mut app = App::new("deploy_then_redeploy");
    let first = app.render();

    // A new app: every object written, labelled and stamped; the Deployment rolls out.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = applier
        .deploy(&first, None, &[], Some(&tx))
        .await
        .expect("first deploy");
    assert_eq!(report.apply.written.len(), first.objects.len());
    assert_eq!(report.apply.created.len(), first.objects.len());
    let hashes = applied_hashes(&first).unwrap();
    for (o, (reference, hash)) in first.objects.iter().zip(&hashes) {
        assert_eq!(&o.object.reference(), reference);
        let live = live(&admin, &o.object)
            .await
            .unwrap_or_else(|| panic!("{:?} missing", o.object.reference()));
        let labels = live.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get(loco_render::LABEL_MANAGED_BY)
                .map(String::as_str),
            Some("loco")
        );
        assert_eq!(
            labels.get(loco_render::LABEL_APP),
            Some(&app.app_id.to_string())
        );
        assert_eq!(
            labels.get(loco_render::LABEL_WORKSPACE),
            Some(&app.workspace_id.to_string())
        );
        let ann = live.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann.get(ANNOTATION_APPLIED_HASH), Some(hash));
    }
    assert!(is_rolled_out(&deployment(&admin, &app.namespace()).await));
    drop(tx);
    let mut reasons = Vec::new();
    while let Some(p) = rx.recv().await {
        reasons.push(p.reason());
    }
    assert_eq!(
        reasons.iter().filter(|r| **r == "phase_applied").count(),
        7,
        "{reasons:?}"
    );
    assert_eq!(reasons.last(), Some(&"rollout_complete"), "{reasons:?}");

    // The same render again: not one write.
    let before = applier.writes();
    let again = applier
        .deploy(&first, Some(&first), &first.inventory(), None)
        .await
        .expect("no-change redeploy");
    assert_eq!(applier.writes() - before, 0, "a no-change redeploy wrote");
    assert_eq!(again.apply.unchanged, first.objects.len());
    assert!(again.apply.written.is_empty());

    // One env value changed: the new (content-named) env Secret and the Deployment that
    // points at it are written; the old env Secret is pruned. Nothing else.
    app.env_value = "second".into();
    let second = app.render();
    let before = applier.writes();
    let r = applier
        .deploy(&second, Some(&first), &first.inventory(), None)
        .await
        .expect("env change");
    assert_eq!(
        kinds(&r.apply.written),
        [
            format!("Secret/{}", secret_name(&second)),
            "Deployment/app".to_owned()
        ]
    );
    assert_eq!(
        kinds(&r.apply.pruned),
        [format!("Secret/{}", secret_name(&first))]
    );
    assert_eq!(applier.writes() - before, 3, "two applies and one delete");

    // A new image: only the Deployment.
    app.version = "1.1.0".into();
    let third = app.render();
    let before = applier.writes();
    let r = applier
        .deploy(&third, Some(&second), &second.inventory(), None)
        .await
        .expect("image change");
    assert_eq!(kinds(&r.apply.written), ["Deployment/app"]);
    assert_eq!(applier.writes() - before, 1);
    let d = deployment(&admin, &app.namespace()).await;
    assert_eq!(image_of(&d), app.image());
    assert!(is_rolled_out(&d));

    // force re-applies everything (what the resurrector's rebuild uses).
    let forced = Applier::new(
        loco_api_client().await,
        ApplyConfig {
            force: true,
            ..config()
        },
    );
    let r = forced.apply(&third).await.expect("forced apply");
    assert_eq!(r.written.len(), third.objects.len());
    assert_eq!(forced.writes(), third.objects.len() as u64);

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn sleep_scales_to_zero_routes_to_the_reviver_and_wake_undoes_it() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let mut app = App::new("sleep_and_wake");
    app.autoscaling = true;
    let awake = app.render();
    applier
        .deploy(&awake, None, &[], None)
        .await
        .expect("awake deploy");
    assert!(
        awake
            .objects
            .iter()
            .any(|o| matches!(o.object, Object::HorizontalPodAutoscaler(_)))
    );

    app.asleep = true;
    let asleep = app.render();
    let r = applier
        .deploy(&asleep, Some(&awake), &awake.inventory(), None)
        .await
        .expect("sleep");
    let d = deployment(&admin, &app.namespace()).await;
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(kinds(&r.apply.pruned), ["HorizontalPodAutoscaler/app"]);
    let grant = asleep
        .objects
        .iter()
        .find(|o| o.object.reference().kind == "ReferenceGrant")
        .expect("a ReferenceGrant while asleep");
    assert_eq!(
        grant.object.metadata().namespace.as_deref(),
        Some("loco-system")
    );
    assert!(live(&admin, &grant.object).await.is_some());
    let route = asleep
        .objects
        .iter()
        .find(|o| o.object.reference().kind == "HTTPRoute")
        .unwrap();
    let live_route = live(&admin, &route.object).await.unwrap();
    assert_eq!(
        live_route.data["spec"]["rules"][0]["backendRefs"][0]["name"],
        "loco-reviver"
    );

    // Wake: the HPA is back, the grant pruned. Then delete_app removes it all.
    app.asleep = false;
    let woken = app.render();
    let r = applier
        .deploy(&woken, Some(&asleep), &asleep.inventory(), None)
        .await
        .expect("wake");
    assert!(
        kinds(&r.apply.pruned)
            .iter()
            .any(|k| k.starts_with("ReferenceGrant/")),
        "{:?}",
        r.apply.pruned
    );
    assert!(live(&admin, &grant.object).await.is_none());
    assert!(is_rolled_out(&deployment(&admin, &app.namespace()).await));

    // Asleep again, then removed: delete_app takes the namespace and the grant outside it.
    applier
        .deploy(&asleep, Some(&woken), &woken.inventory(), None)
        .await
        .expect("sleep again");
    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    assert!(
        ns.get_opt(&app.namespace()).await.unwrap().is_none(),
        "namespace still there"
    );
    assert!(
        live(&admin, &grant.object).await.is_none(),
        "the grant outlived the app"
    );
    // Removing an absent app is not an error.
    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app again");
    cleanup(&admin, &app).await;
}

/// Issue 14, finding 6: switching an app to an HPA must not drop its Deployment to one
/// replica (under server-side apply a field no manager owns falls back to its default):
/// apply hands `replicas` over at the live count first.
#[tokio::test]
async fn turning_on_autoscaling_keeps_the_replica_count() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let mut app = App::new("hpa_handover");
    let mut fixed = app.input();
    fixed.replicas = Some(2);
    let fixed = loco_render::render(&fixed).expect("render");
    applier
        .deploy(&fixed, None, &[], None)
        .await
        .expect("fixed deploy");
    let ns = app.namespace();
    assert_eq!(
        deployment(&admin, &ns).await.spec.unwrap().replicas,
        Some(2)
    );

    // Watch the live count while the HPA version is applied.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let (admin, ns) = (admin.clone(), ns.clone());
        tokio::spawn(async move {
            let mut lowest = i32::MAX;
            loop {
                let d = deployment(&admin, &ns).await;
                lowest = lowest.min(d.spec.unwrap().replicas.unwrap_or(1));
                if stopped.try_recv().is_ok() {
                    return lowest;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    app.autoscaling = true;
    let scaled = app.render();
    assert!(
        scaled
            .objects
            .iter()
            .any(|o| matches!(o.object, Object::HorizontalPodAutoscaler(_)))
    );
    applier
        .deploy(&scaled, Some(&fixed), &fixed.inventory(), None)
        .await
        .expect("autoscaled deploy");
    let _ = stop.send(());
    let lowest = watcher.await.unwrap();
    assert_eq!(lowest, 2, "the Deployment dropped below its replica count");
    let d = deployment(&admin, &ns).await;
    assert_eq!(d.spec.unwrap().replicas, Some(2));
    let owners: Vec<String> = d
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
        })
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        !owners.iter().any(|m| m == "loco"),
        "loco still owns replicas: {owners:?}"
    );
    applier.delete_app(&ns).await.expect("delete_app");
    cleanup(&admin, &app).await;
}
