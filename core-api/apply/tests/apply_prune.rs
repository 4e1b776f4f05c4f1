//! Prune and ownership on the real test cluster: what the render drops is deleted, what
//! lacks loco's label is never changed or deleted. Apply runs as loco-api's ServiceAccount;
//! the admin client only sets up "hand-made" objects and inspects.

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use std::time::Duration;

use apply_support::{App, admin_client, cleanup, loco_api_client};
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use loco_apply::{Applier, ApplyConfig, ApplyError};
use loco_render::{Object, ObjectRef};

fn config() -> ApplyConfig {
    ApplyConfig {
        rollout_deadline: Duration::from_secs(60),
        ..ApplyConfig::default()
    }
}

/// A Service someone made by hand in the app's namespace, without loco's label.
async fn hand_made_service(admin: &kube::Client, namespace: &str, name: &str) -> ObjectRef {
    let svc = Service {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some([("team".to_owned(), "ops".to_owned())].into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Service>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &svc)
        .await
        .expect("create the hand-made Service");
    ObjectRef {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some(namespace.into()),
        name: name.into(),
    }
}

fn route_of(r: &loco_render::Rendered, kind: &str) -> Object {
    r.objects
        .iter()
        .find(|o| o.object.reference().kind == kind)
        .unwrap()
        .object
        .clone()
}

async fn exists(admin: &kube::Client, o: &Object) -> bool {
    let api: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        o.metadata().namespace.as_deref().unwrap(),
        &loco_apply::kube_resource(&o.api_resource()),
    );
    api.get_opt(o.metadata().name.as_deref().unwrap())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn prune_deletes_a_dropped_route_but_never_an_object_without_loco_label() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let mut app = App::new("prune_dropped_route");
    app.grpc = true;
    let with_grpc = app.render();
    applier
        .deploy(&with_grpc, None, &[], None)
        .await
        .expect("deploy with gRPC");
    let grpc_route = route_of(&with_grpc, "GRPCRoute");
    assert!(exists(&admin, &grpc_route).await);

    // An unlabelled object that (wrongly) sits in the previous inventory: prune keeps it.
    let manual = hand_made_service(&admin, &app.namespace(), "hand-made").await;
    let mut inventory = with_grpc.inventory();
    inventory.push(manual.clone());

    app.grpc = false;
    let without = app.render();
    let r = applier
        .deploy(&without, Some(&with_grpc), &inventory, None)
        .await
        .expect("deploy without gRPC");
    assert_eq!(r.apply.pruned, vec![grpc_route.reference()]);
    assert_eq!(r.apply.kept_unmanaged, vec![manual.clone()]);
    assert!(
        !exists(&admin, &grpc_route).await,
        "the GRPCRoute survived prune"
    );
    let svc = Api::<Service>::namespaced(admin.clone(), &app.namespace())
        .get("hand-made")
        .await;
    assert!(svc.is_ok(), "prune deleted an object without loco's label");

    // prune on its own says the same, and deletes nothing more.
    let before = applier.writes();
    assert!(
        applier
            .prune(&without, &inventory)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(applier.writes(), before);

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn apply_refuses_to_modify_a_same_named_object_without_loco_label() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let mut app = App::new("refuse_foreign_route");
    let first = app.render();
    applier
        .deploy(&first, None, &[], None)
        .await
        .expect("first deploy");

    // Someone creates the GRPCRoute `app` by hand, without loco's label.
    app.grpc = true;
    let second = app.render();
    let Object::Dynamic(mut foreign) = route_of(&second, "GRPCRoute") else {
        panic!("GRPCRoute is dynamic")
    };
    foreign.metadata.labels = Some([("team".to_owned(), "ops".to_owned())].into());
    foreign.metadata.annotations = None;
    let api: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        &app.namespace(),
        &loco_apply::kube_resource(&route_of(&second, "GRPCRoute").api_resource()),
    );
    api.patch(
        "app",
        &PatchParams::apply("someone-else"),
        &Patch::Apply(&foreign),
    )
    .await
    .expect("hand-made GRPCRoute");
    // The gateway (Traefik on the test bed) writes the route's status, so its
    // resourceVersion moves on its own: what must not change is what loco could write.
    let owned_parts = |o: DynamicObject| {
        let loco_wrote = o
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("loco"));
        (
            o.metadata.generation,
            o.metadata.labels,
            o.metadata.annotations,
            o.data["spec"].clone(),
            loco_wrote,
        )
    };
    let before = owned_parts(api.get("app").await.unwrap());

    // apply refuses, names it, and writes nothing at all (not even the other objects).
    let writes = applier.writes();
    let e = applier.apply(&second).await.expect_err("apply must refuse");
    assert!(matches!(e, ApplyError::NotManagedByLoco { .. }), "{e:?}");
    assert_eq!(e.reason(), "not_managed_by_loco");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("GRPCRoute {}/app", app.namespace())),
        "{msg}"
    );
    assert!(msg.contains("app.kubernetes.io/managed-by=loco"), "{msg}");
    assert_eq!(applier.writes(), writes);
    // force does not override ownership.
    let forced = Applier::new(
        loco_api_client().await,
        ApplyConfig {
            force: true,
            ..config()
        },
    );
    assert_eq!(
        forced.apply(&second).await.unwrap_err().reason(),
        "not_managed_by_loco"
    );
    assert_eq!(forced.writes(), 0);

    // Through deploy: a failure with that reason, and nothing to revert.
    let f = applier
        .deploy(&second, Some(&first), &first.inventory(), None)
        .await
        .expect_err("deploy must refuse");
    assert_eq!(f.reason, "not_managed_by_loco");
    assert!(f.reverted && f.revert_error.is_none());
    assert!(f.message.contains("Nothing was changed"), "{}", f.message);
    assert_eq!(
        owned_parts(api.get("app").await.unwrap()),
        before,
        "the foreign route changed"
    );

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn delete_app_refuses_a_namespace_loco_does_not_own() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config());
    let app = App::new("delete_foreign_namespace");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(app.namespace()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let e = applier
        .delete_app(&app.namespace())
        .await
        .expect_err("must refuse");
    assert_eq!(e.reason(), "not_managed_by_loco");
    assert!(
        e.to_string()
            .contains(&format!("Namespace {}", app.namespace())),
        "{e}"
    );
    let live = namespaces.get(&app.namespace()).await.expect("still there");
    assert!(live.metadata.deletion_timestamp.is_none());
    assert_eq!(applier.writes(), 0);
    cleanup(&admin, &app).await;
}
