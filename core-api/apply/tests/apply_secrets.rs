//! Secrets on the real test cluster: their values never appear in an ApplyError, a
//! DeployFailure or a Progress line; their hashes say nothing about them without the
//! app's key; a changed value is detected without loco-api ever reading a Secret.

#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;

use std::time::Duration;

use apply_support::{App, admin_client, cleanup, loco_api_client};
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use loco_apply::{ANNOTATION_APPLIED_HASH, ANNOTATION_APPLIED_SECRETS, Applier, ApplyConfig};
use loco_render::{ANNOTATION_DATA_HASH, ChecksumKey, Object, PULL_SECRET_NAME, secret_data_hash};

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

/// The data of a live Secret, as the admin reads it.
async fn data_of(secrets: &Api<Secret>, name: &str) -> String {
    let s = secrets.get(name).await.unwrap();
    String::from_utf8_lossy(&s.data.as_ref().unwrap()[".dockerconfigjson"].0).into_owned()
}

#[tokio::test]
async fn a_changed_secret_value_is_written_and_its_hash_says_nothing_without_the_key() {
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
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &app.namespace());
    let annotation = |s: &Secret, key: &str| s.metadata.annotations.as_ref().unwrap()[key].clone();
    let before = secrets.get(PULL_SECRET_NAME).await.unwrap();
    let template_of =
        |d: &Deployment| serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    let template = template_of(&deployments.get("app").await.unwrap());

    // The data-hash on the live Secret is render's keyed hash: the app's key gives it,
    // another key (or no key) does not.
    let rendered_pull = |r: &loco_render::Rendered| {
        r.objects
            .iter()
            .find_map(|o| match &o.object {
                Object::Secret(s) if s.metadata.name.as_deref() == Some(PULL_SECRET_NAME) => {
                    Some(s.clone())
                }
                _ => None,
            })
            .unwrap()
    };
    let mine = secret_data_hash(&app.input().checksum_key, &rendered_pull(&first)).unwrap();
    assert_eq!(annotation(&before, ANNOTATION_DATA_HASH), mine);
    let other = secret_data_hash(
        &ChecksumKey(b"another-app".to_vec()),
        &rendered_pull(&first),
    );
    assert_ne!(other.as_deref(), Some(mine.as_str()));

    // A new pull password: the pull Secret and the Deployment's record of it are
    // written, nothing else, and the Deployment's pods do not roll (same pod template).
    app.pull_password = "pull-password-2".into();
    let second = app.render();
    let writes = applier.writes();
    let r = applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes() - writes, 2);
    let written: Vec<String> = r
        .written
        .iter()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    assert_eq!(
        written,
        [
            format!("Secret/{PULL_SECRET_NAME}"),
            "Deployment/app".to_owned()
        ]
    );
    let after = secrets.get(PULL_SECRET_NAME).await.unwrap();
    assert_ne!(
        annotation(&before, ANNOTATION_APPLIED_HASH),
        annotation(&after, ANNOTATION_APPLIED_HASH),
        "the applied-hash covers the data (through the data-hash)"
    );
    assert!(
        data_of(&secrets, PULL_SECRET_NAME)
            .await
            .contains("pull-password-2")
    );
    // (A Deployment's generation counts annotation changes too; its pod template is
    // what rolls pods.)
    assert_eq!(
        template_of(&deployments.get("app").await.unwrap()),
        template
    );

    // With nothing changed, nothing is written.
    let writes = applier.writes();
    applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes(), writes);

    // A hand edit of the Secret's data (label and annotations kept) is not seen by a
    // plain apply: loco-api cannot read Secrets, like any hand edit of a field loco owns
    // (see loco_apply's docs). A forced apply (the resurrector's) puts it back.
    let edit = serde_json::json!({ "data": { ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode("{}") } });
    secrets
        .patch(
            PULL_SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(&edit),
        )
        .await
        .expect("hand edit");
    applier.apply(&second).await.expect("apply");
    assert_eq!(data_of(&secrets, PULL_SECRET_NAME).await, "{}");
    let forced = Applier::new(
        loco_api_client().await,
        ApplyConfig {
            force: true,
            ..config(60)
        },
    );
    forced.apply(&second).await.expect("forced apply");
    assert!(
        data_of(&secrets, PULL_SECRET_NAME)
            .await
            .contains("pull-password-2")
    );

    applier
        .delete_app(&app.namespace())
        .await
        .expect("delete_app");
    cleanup(&admin, &app).await;
}

/// Issue 13 item 4: loco-api holds no read of Secrets. As loco-api, the API server
/// refuses get and list of a Secret (data or metadata only), while a deploy still writes
/// the app's Secrets, a no-change redeploy writes nothing, an env change prunes the old
/// env Secret, and a Secret deleted by hand is put back.
#[tokio::test]
async fn loco_api_cannot_read_secrets_yet_applies_them_and_skips_unchanged_ones() {
    let Some(admin) = admin_client().await else {
        return;
    };
    let client = loco_api_client().await;
    let applier = Applier::new(client.clone(), config(60));
    let mut app = App::new("secrets_unreadable");
    let first = app.render();
    applier
        .deploy(&first, None, &[], None)
        .await
        .expect("first deploy");
    let ns = app.namespace();
    let env = secret_name(&first);

    let forbidden = |e: kube::Error| matches!(e, kube::Error::Api(ref s) if s.code == 403);
    let mine: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for name in [env.as_str(), PULL_SECRET_NAME] {
        assert!(forbidden(mine.get(name).await.unwrap_err()), "get {name}");
        assert!(
            forbidden(mine.get_metadata(name).await.unwrap_err()),
            "get metadata {name}"
        );
    }
    assert!(forbidden(
        mine.list(&ListParams::default()).await.unwrap_err()
    ));
    assert!(forbidden(
        mine.list_metadata(&ListParams::default())
            .await
            .unwrap_err()
    ));
    let everywhere: Api<Secret> = Api::all(client.clone());
    assert!(forbidden(
        everywhere.list(&ListParams::default()).await.unwrap_err()
    ));
    let kube_system: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    assert!(forbidden(
        kube_system
            .list_metadata(&ListParams::default())
            .await
            .unwrap_err()
    ));

    // The deploy wrote both Secrets (the admin sees them) and recorded them.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let live_env = secrets.get(&env).await.expect("the env Secret");
    assert_eq!(
        live_env.data.as_ref().unwrap()["GREETING"].0,
        app.env_value.as_bytes()
    );
    assert!(
        data_of(&secrets, PULL_SECRET_NAME)
            .await
            .contains("pull-password-1")
    );
    let record = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .get("app")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()[ANNOTATION_APPLIED_SECRETS]
        .clone();
    assert!(
        record.starts_with(&format!("{env}=")) && record.contains(",loco-pull="),
        "{record}"
    );

    // No change: not one write, every object counted unchanged.
    let writes = applier.writes();
    let again = applier
        .deploy(&first, Some(&first), &first.inventory(), None)
        .await
        .expect("no-change redeploy");
    assert_eq!(applier.writes(), writes, "a no-change redeploy wrote");
    assert_eq!(again.apply.unchanged, first.objects.len());

    // An env change: the new env Secret and the Deployment; the old env Secret is pruned
    // without loco-api reading it.
    app.env_value = "second".into();
    let second = app.render();
    let r = applier
        .deploy(&second, Some(&first), &first.inventory(), None)
        .await
        .expect("env change");
    let new_env = secret_name(&second);
    let pruned: Vec<&str> = r.apply.pruned.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(pruned, [env.as_str()]);
    assert!(
        secrets.get_opt(&env).await.unwrap().is_none(),
        "old env Secret pruned"
    );
    assert!(secrets.get_opt(&new_env).await.unwrap().is_some());

    // A Secret deleted by hand is seen missing (without reading it) and put back.
    secrets
        .delete(PULL_SECRET_NAME, &Default::default())
        .await
        .unwrap();
    let writes = applier.writes();
    let r = applier.apply(&second).await.expect("apply");
    assert_eq!(applier.writes() - writes, 1);
    assert_eq!(r.created.len(), 1);
    assert_eq!(r.created[0].name, PULL_SECRET_NAME);
    assert!(
        data_of(&secrets, PULL_SECRET_NAME)
            .await
            .contains("pull-password-1")
    );

    applier.delete_app(&ns).await.expect("delete_app");
    cleanup(&admin, &app).await;
}

fn secret_name(r: &loco_render::Rendered) -> String {
    r.objects
        .iter()
        .find_map(|o| match &o.object {
            Object::Secret(s) => s.metadata.name.clone().filter(|n| n.starts_with("env-")),
            _ => None,
        })
        .unwrap()
}
