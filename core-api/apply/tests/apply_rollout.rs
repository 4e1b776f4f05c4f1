//! Failed rollouts on the real test cluster: kwok never makes a pod Ready whose image
//! contains "never-ready" (tests/minikube/kwok/pod-never-ready.yaml). A failed deploy
//! puts the previous revision back (a rollback of the Deployment, not only deletes); a
//! failed first deploy deletes what it created.

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use std::time::Duration;

use apply_support::{
    App, admin_client, cleanup, deployment, image_of, is_rolled_out, loco_api_client,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use loco_apply::{Applier, ApplyConfig};

fn config(deadline_secs: u64) -> ApplyConfig {
    ApplyConfig {
        rollout_deadline: Duration::from_secs(deadline_secs),
        ..ApplyConfig::default()
    }
}

/// Issue 14, finding 3: prune runs only after the new revision is Ready (PruneLast), so
/// the old pods keep their env Secret while the rollout runs; a rollout that never gets
/// Ready prunes nothing at all.
#[tokio::test]
async fn the_old_env_secret_stays_until_the_new_revision_is_ready() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let mut app = App::new("prune_last");
    let good = app.render();
    Applier::new(client.clone(), config(60))
        .deploy(&good, None, &[], None)
        .await
        .expect("good deploy");
    let old_secret = good
        .inventory()
        .into_iter()
        .find(|r| r.kind == "Secret" && r.name.starts_with("env-"))
        .expect("an env Secret");

    // A new env value (so a new env Secret) on pods that never get Ready.
    app.never_ready = true;
    app.env_value = "second".into();
    let bad = app.render();
    assert!(
        !bad.inventory().contains(&old_secret),
        "the env Secret is renamed"
    );
    let applier = Applier::new(client, config(8));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let f = applier
        .deploy(&bad, Some(&good), &good.inventory(), Some(&tx))
        .await
        .expect_err("a never-ready rollout must fail");
    assert_eq!(f.reason, "rollout_deadline_exceeded");
    drop(tx);
    let mut reasons = Vec::new();
    while let Some(p) = rx.recv().await {
        reasons.push(p.reason());
    }
    assert!(
        !reasons.contains(&"objects_pruned"),
        "pruned while the old pods still served: {reasons:?}"
    );
    assert!(
        !f.deleted.contains(&old_secret),
        "the old env Secret was deleted: {:?}",
        f.deleted
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(admin.clone(), &app.namespace());
    assert!(secrets.get_opt(&old_secret.name).await.unwrap().is_some());
    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn a_rollout_that_never_gets_ready_is_reverted_to_the_previous_image() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let mut app = App::new("rollout_reverted");
    let good = app.render();
    Applier::new(client.clone(), config(60))
        .deploy(&good, None, &[], None)
        .await
        .expect("good deploy");

    app.never_ready = true;
    app.version = "2.0.0".into();
    let bad = app.render();
    let applier = Applier::new(client, config(8));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let f = applier
        .deploy(&bad, Some(&good), &good.inventory(), Some(&tx))
        .await
        .expect_err("a never-ready rollout must fail");
    assert_eq!(f.reason, "rollout_deadline_exceeded");
    assert!(f.reverted, "{f:?}");
    assert_eq!(f.revert_error, None);
    assert!(f.message.contains("0 of 1 new pods ready"), "{}", f.message);
    assert!(
        f.message.contains(&format!("{}/app", app.namespace())),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("previous revision was restored"),
        "{}",
        f.message
    );

    // Back on the previous image, rolled out.
    let d = deployment(&admin, &app.namespace()).await;
    app.never_ready = false;
    app.version = "1.0.0".into();
    assert_eq!(image_of(&d), app.image());
    assert!(is_rolled_out(&d), "{:?}", d.status);

    drop(tx);
    let mut reasons = Vec::new();
    while let Some(p) = rx.recv().await {
        reasons.push(p.reason());
    }
    for want in ["rollout_progress", "reverting", "reverted"] {
        assert!(reasons.contains(&want), "{want} missing from {reasons:?}");
    }

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn a_failed_first_deploy_deletes_what_it_created() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let mut app = App::new("first_deploy_fails");
    app.never_ready = true;
    let bad = app.render();
    let applier = Applier::new(loco_api_client().await, config(5));
    let f = applier
        .deploy(&bad, None, &[], None)
        .await
        .expect_err("a never-ready first deploy must fail");
    assert_eq!(f.reason, "rollout_deadline_exceeded");
    assert!(f.reverted, "{f:?}");
    assert!(f.message.contains("first deploy"), "{}", f.message);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    assert!(
        namespaces
            .get_opt(&app.namespace())
            .await
            .unwrap()
            .is_none(),
        "the namespace of a failed first deploy is still there"
    );
    cleanup(&admin, &app).await;
}
