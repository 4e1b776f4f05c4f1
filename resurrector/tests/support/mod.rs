//! What the resurrector's tests on the test cluster start from: a tenant whose cluster
//! is the test cluster, and apps deployed as a finished deploy leaves them.
#![allow(dead_code)]

#[path = "../../../core-api/testsupport/apply_support/mod.rs"]
pub mod apply_support;
#[path = "../../../core-api/testsupport/db_support/mod.rs"]
pub mod db_support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta};
use sqlx::PgPool;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::deployments;
use loco_db::queue::{self, ClaimRules};
use loco_db::revisions::{self, EnvChange, NewRevision};
use loco_resurrector::diagnosis;
use loco_resurrector::progress::Progress;
use loco_resurrector::rebuild;
use loco_resurrector::{Ctx, options};

pub const KEY: [u8; 32] = [7u8; 32];

pub fn kek() -> Kek {
    Kek::from_bytes(KEY)
}

pub fn spec_json(name: &str) -> serde_json::Value {
    let toml = format!(
        "[Metadata]\nName = \"{name}\"\n[Routing]\nPort = 8080\n[Health]\nPath = \"/healthz\"\n[RegionConfig.us-east-1]\nCPU = \"10m\"\nMemory = \"16Mi\"\n"
    );
    let opts = loco_spec::Options {
        base_domain: "loco.test".into(),
        ..Default::default()
    };
    let v = loco_spec::validate(&toml, "loco.toml", &opts).unwrap();
    serde_json::to_value(v.spec).unwrap()
}

/// An app with one revision (with an env value) and its deployment active, as a
/// finished deploy leaves them. Returns the app id.
pub async fn deployed_app(pool: &PgPool, t: &Tenant, name: &str, env: &str) -> i64 {
    let host = format!("{name}-{}.loco.test", t.workspace);
    let mut tx = pool.begin().await.unwrap();
    let app = loco_db::apps::create(&mut tx, &kek(), &new_app(t, name, &host, "/"), &t.actor())
        .await
        .unwrap();
    let spec = spec_json(name);
    let rev = revisions::create(
        &mut tx,
        &kek(),
        &NewRevision {
            app_id: app,
            spec: &spec,
            image_digest: DIGEST,
            image: IMAGE,
            replicas: 1,
            asleep: false,
            cause: "deploy",
            env: EnvChange::Replace(vec![("TOKEN".to_owned(), Secret::new(env))]),
            created_by: None,
        },
    )
    .await
    .unwrap();
    deployments::create(&mut tx, app, rev, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let c = queue::claim(pool, ClaimRules::new(100, Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the deployment is runnable");
    let mut tx = pool.begin().await.unwrap();
    queue::fence(&mut tx, &c.lease).await.unwrap();
    deployments::activate(&mut tx, c.deployment_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app
}

/// A tenant whose cluster is the test cluster: loco-api's token as its credential, the
/// admin kubeconfig as its installer credential. No platform release is recorded, so
/// the bed's own Gateway is left alone.
pub async fn setup(pool: &PgPool, name: &str) -> Option<(Tenant, Ctx)> {
    let admin = apply_support::admin_client().await?;
    drop(admin);
    distinct_ids(pool).await;
    let t = tenant(pool, &kek(), name).await;
    let api_kc = apply_support::kubeconfig_yaml_for(&apply_support::loco_api_token().await);
    let creds = loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(api_kc)).unwrap();
    loco_db::clusters::set_credentials(pool, &kek(), t.cluster, &creds)
        .await
        .unwrap();
    let admin_kc = std::fs::read_to_string(std::env::var("KUBECONFIG").unwrap()).unwrap();
    let installer = loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(admin_kc)).unwrap();
    loco_db::clusters::set_installer_credentials(pool, &kek(), t.cluster, &installer)
        .await
        .unwrap();
    let url = database_url(pool).await;
    let ctx = Ctx::connect(&url, kek(), &format!("{name}-cluster"))
        .await
        .unwrap();
    Some((t, ctx))
}

pub fn labelled(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

pub async fn delete_namespaces(admin: &kube::Client, names: &[String]) {
    let ns: Api<Namespace> = Api::all(admin.clone());
    for n in names {
        let _ = ns.delete(n, &DeleteParams::default()).await;
    }
}

pub fn base64_of(key: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The options of a run with `extra` flags. Apps on kwok never answer HTTP, so the
/// gateway check (LOCO_GATEWAY_URL from the stack's env) is off.
pub fn opts(extra: &[&str]) -> (diagnosis::Options, rebuild::Options) {
    let (mut d, mut r) = options(&args(extra));
    d.gateway_url = None;
    r.gateway_url = None;
    (d, r)
}

pub fn args(extra: &[&str]) -> loco_resurrector::Args {
    use clap::Parser as _;
    let mut v = vec![
        "loco-resurrect",
        "--no-chart",
        "--ready-deadline-seconds",
        "120",
    ];
    v.extend_from_slice(extra);
    loco_resurrector::Args::try_parse_from(v).unwrap()
}

pub async fn once(ctx: &Ctx, extra: &[&str]) -> (diagnosis::Diagnosis, rebuild::RebuildReport) {
    let (dopts, ropts) = opts(extra);
    let (d, apps) = diagnosis::diagnose(ctx, &dopts).await.unwrap();
    // The shared test cluster holds other tests' (and the demo's) app namespaces, of
    // workspaces this test's database does not know: they weigh in the guard (which
    // may refuse, as it would for a too-old database: rebuild::run is what --force
    // runs) and are never extra, so --prune-orphans leaves them.
    let r = rebuild::run(ctx, &d, &apps, &ropts, &Progress::new("test", true))
        .await
        .unwrap();
    (d, r)
}
