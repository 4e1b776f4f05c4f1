//! Secrets on the real test cluster: their values never appear in an ApplyError, a
//! DeployFailure or a Progress line; the applied-hash says nothing about them; and a
//! changed value is still detected (by comparing the live Secret's data).

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use std::time::Duration;

use apply_support::{App, admin_client, cleanup, loco_api_client};
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use loco_apply::{ANNOTATION_APPLIED_HASH, Applier, ApplyConfig};
use loco_render::{Object, PULL_SECRET_NAME};

fn config(deadline_secs: u64) -> ApplyConfig {
    ApplyConfig {
        rollout_deadline: Duration::from_secs(deadline_secs),
        ..ApplyConfig::default()
    }
}

/// A value that appears nowhere unless something leaks it.
fn marker(what: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-s3cr3t-{n:x}")
}

fn assert_clean(text: &str, secrets: &[&str]) {
    for s in secrets {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        assert!(
            !text.contains(s) && !text.contains(&b64),
            "a secret leaked into: {text}"
        );
    }
}

#[tokio::test]
async fn secret_values_never_appear_in_errors_failures_or_progress() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let (env_secret, pull_secret) = (marker("env"), marker("pull"));
    let secrets = [env_secret.as_str(), pull_secret.as_str()];
    let mut app = App::new("secret_never_leaks");
    app.env_value = env_secret.clone();
    app.pull_password = pull_secret.clone();
    app.never_ready = true;

    // A failed first deploy: every progress line and the failure, Display and Debug.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let f = Applier::new(client.clone(), config(4))
        .deploy(&app.render(), None, &[], Some(&tx))
        .await
        .expect_err("never-ready must fail");
    drop(tx);
    let mut texts = vec![f.to_string(), format!("{f:?}")];
    while let Some(p) = rx.recv().await {
        texts.push(p.to_string());
        texts.push(format!("{p:?}"));
    }
    assert!(texts.len() > 6, "{texts:?}");

    // A Secret the API server rejects (an invalid key, carrying the secret value).
    app.never_ready = false;
    let mut rendered = app.render();
    for o in &mut rendered.objects {
        if let Object::Secret(s) = &mut o.object
            && s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("env-"))
        {
            s.data.get_or_insert_with(Default::default).insert(
                format!("bad key {}", "!"),
                ByteString(env_secret.clone().into_bytes()),
            );
        }
    }
    let applier = Applier::new(client, config(30));
    let e = applier
        .apply(&rendered)
        .await
        .expect_err("the API server must reject the key");
    assert_eq!(e.reason(), "apply_rejected", "{e}");
    assert!(e.to_string().contains("Secret "), "{e}");
    texts.push(e.to_string());
    texts.push(format!("{e:?}"));
    let f = applier
        .deploy(&rendered, None, &[], None)
        .await
        .expect_err("deploy of the rejected Secret");
    texts.push(f.to_string());
    texts.push(format!("{f:?}"));

    for t in &texts {
        assert_clean(t, &secrets);
    }
    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

#[tokio::test]
async fn a_changed_secret_value_is_written_yet_the_hash_does_not_move() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let applier = Applier::new(loco_api_client().await, config(60));
    let mut app = App::new("secret_value_change");
    let first = app.render();
    applier
        .deploy(&first, None, &[], None)
        .await
        .expect("deploy");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &app.namespace());
    let hash_of =
        |s: &Secret| s.metadata.annotations.as_ref().unwrap()[ANNOTATION_APPLIED_HASH].clone();
    let before = secrets.get(PULL_SECRET_NAME).await.unwrap();

    // A new pull password: exactly one write (the pull Secret), and the same hash.
    app.pull_password = "pull-password-2".into();
    let second = app.render();
    let writes = applier.writes();
    let r = applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes() - writes, 1);
    assert_eq!(r.written.len(), 1);
    assert_eq!(r.written[0].name, PULL_SECRET_NAME);
    let after = secrets.get(PULL_SECRET_NAME).await.unwrap();
    assert_eq!(
        hash_of(&before),
        hash_of(&after),
        "the hash moved with the value"
    );
    let data = &after.data.as_ref().unwrap()[".dockerconfigjson"].0;
    assert!(String::from_utf8_lossy(data).contains("pull-password-2"));

    // A hand edit of the Secret's data (label kept) is undone by the next apply, even
    // though the hash still matches: Secret data is compared directly.
    let edit = serde_json::json!({ "data": { ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode("{}") } });
    secrets
        .patch(
            PULL_SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(&edit),
        )
        .await
        .expect("hand edit");
    let writes = applier.writes();
    applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes() - writes, 1);
    let restored = secrets.get(PULL_SECRET_NAME).await.unwrap();
    assert!(
        String::from_utf8_lossy(&restored.data.as_ref().unwrap()[".dockerconfigjson"].0)
            .contains("pull-password-2")
    );

    // And with nothing changed, nothing is written.
    let writes = applier.writes();
    applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes(), writes);

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}
