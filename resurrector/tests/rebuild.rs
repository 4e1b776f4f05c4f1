//! The resurrector on the test cluster (kwok nodes): drift found and repaired, objects
//! without loco's label untouched, orphans deleted only when asked, no deployment row
//! invented, a rerun after kill -9 converging, and the guard refusing a database far
//! emptier than the cluster. The empty-etcd rebuild from the bundle alone is the demo's
//! drill (tests/minikube/demo, last in tests/all).

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret as KubeSecret, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use sqlx::PgPool;

use loco_resurrector::diagnosis::{self, AppState, Verdict};
use support::db_support::*;
use support::*;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn drift_is_repaired_and_nothing_without_locos_label_is_touched(pool: PgPool) {
    let Some((t, ctx)) = setup(&pool, "resurrect-drift").await else {
        return;
    };
    let admin = apply_support::admin_client().await.unwrap();
    let a = deployed_app(&pool, &t, "alpha", "one").await;
    let b = deployed_app(&pool, &t, "beta", "two").await;
    let c = deployed_app(&pool, &t, "gamma", "three").await;
    let ns = |app: i64| loco_render::namespace_name(t.workspace, app);
    let mut to_clean: Vec<String> = [a, b, c].iter().map(|id| ns(*id)).collect();

    // A first rebuild brings the three apps up (none of them is in the cluster yet).
    let (d, r) = once(&ctx, &[]).await;
    assert_eq!(d.verdict, Verdict::AppsDrifted, "{}", d.summary);
    assert!(
        d.apps.iter().all(|x| x.state == AppState::Missing),
        "{:?}",
        d.apps
    );
    assert_eq!(
        (r.apps_desired, r.apps_ready, r.apps_applied),
        (3, 3, 3),
        "{r:?}"
    );
    let rows = count(
        &pool,
        "SELECT count(*) FROM deployments WHERE app_id >= $1",
        a,
    )
    .await;
    assert_eq!(rows, 3, "no deployment row is invented");
    // Each app's env Secret holds the database's value (compared here, never printed).
    for (id, want) in [(a, "one"), (b, "two"), (c, "three")] {
        let secrets: Api<KubeSecret> = Api::namespaced(admin.clone(), &ns(id));
        let env = secrets
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|s| {
                s.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("env-"))
            })
            .expect("the app's env Secret");
        let got = env.data.and_then(|d| d.get("TOKEN").cloned()).map(|v| v.0);
        assert!(
            got.as_deref() == Some(want.as_bytes()),
            "app {id}'s TOKEN is not the database's value"
        );
    }

    // Drift: alpha's Deployment deleted, beta's Service edited by hand (a field loco
    // owns), an extra loco-labelled app namespace, and three objects without loco's
    // label: a ConfigMap and a Secret in app namespaces, a namespace of someone else's.
    let deps: Api<Deployment> = Api::namespaced(admin.clone(), &ns(a));
    deps.delete("app", &DeleteParams::default()).await.unwrap();
    let svcs: Api<Service> = Api::namespaced(admin.clone(), &ns(b));
    svcs.patch(
        "app",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(serde_json::json!([
                {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9999}
            ]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    let nss: Api<Namespace> = Api::all(admin.clone());
    let orphan = format!("wks-{}-app-999999", t.workspace);
    let foreign = format!("resurrect-foreign-{}", t.workspace);
    to_clean.extend([orphan.clone(), foreign.clone()]);
    let workspace = t.workspace.to_string();
    nss.create(
        &PostParams::default(),
        &Namespace {
            metadata: labelled(
                &orphan,
                &[
                    ("app.kubernetes.io/managed-by", "loco"),
                    ("loco.deploy-app.com/workspace", &workspace),
                    ("loco.deploy-app.com/app", "999999"),
                ],
            ),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    nss.create(
        &PostParams::default(),
        &Namespace {
            metadata: labelled(&foreign, &[("team", "someone-else")]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns(a));
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: labelled("not-locos", &[("team", "someone-else")]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secrets: Api<KubeSecret> = Api::namespaced(admin.clone(), &ns(b));
    secrets
        .create(
            &PostParams::default(),
            &KubeSecret {
                metadata: labelled("not-locos", &[("team", "someone-else")]),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let (dopts, _) = opts(&[]);
    let (d, _) = diagnosis::diagnose(&ctx, &dopts).await.unwrap();
    let state = |id: i64| d.apps.iter().find(|x| x.app.app_id == id).unwrap();
    assert_eq!(state(a).state, AppState::Drifted);
    assert!(
        state(a)
            .drift
            .iter()
            .any(|x| x.object.kind == "Deployment" && x.state == loco_apply::ObjectState::Missing),
        "{:?}",
        state(a).drift
    );
    assert_eq!(state(b).state, AppState::Drifted);
    assert!(
        state(b).drift.iter().any(|x| x.object.kind == "Service"
            && x.state == loco_apply::ObjectState::EditedByHand),
        "the hand edit is seen by the dry run: {:?}",
        state(b).drift
    );
    assert_eq!(state(c).state, AppState::Healthy);
    assert_eq!(
        d.extra_namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        vec![orphan.as_str()],
        "only loco-labelled app namespaces are extra"
    );
    assert!(
        d.plan.iter().any(|p| p.contains("delete nothing")),
        "{:?}",
        d.plan
    );

    // Without --prune-orphans the orphan is only reported.
    let (_, r) = once(&ctx, &[]).await;
    assert_eq!(r.apps_applied, 2, "only the drifted apps: {r:?}");
    assert_eq!(r.orphans_reported, vec![orphan.clone()]);
    assert!(nss.get_opt(&orphan).await.unwrap().is_some());
    let d_after = deps.get("app").await.unwrap();
    assert!(d_after.metadata.name.is_some());
    let port = svcs.get("app").await.unwrap().spec.unwrap().ports.unwrap()[0]
        .target_port
        .clone();
    assert_eq!(
        port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)),
        "the hand edit is undone"
    );

    // With it, the orphan goes; nothing without loco's label does.
    let (_, r) = once(&ctx, &["--prune-orphans"]).await;
    assert_eq!(r.apps_applied, 0, "nothing left to repair: {r:?}");
    assert_eq!(r.objects_written, 0);
    assert_eq!(r.orphans_deleted, vec![orphan.clone()]);
    assert!(
        nss.get_opt(&foreign).await.unwrap().is_some(),
        "someone else's namespace stays"
    );
    assert!(
        cms.get_opt("not-locos").await.unwrap().is_some(),
        "someone else's ConfigMap stays"
    );
    assert!(
        secrets
            .get_metadata_opt("not-locos")
            .await
            .unwrap()
            .is_some(),
        "someone else's Secret stays"
    );
    let (d, _) = diagnosis::diagnose(&ctx, &dopts).await.unwrap();
    assert_eq!(d.verdict, Verdict::Healthy, "{}: {:?}", d.summary, d.plan);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM deployments WHERE app_id >= $1",
            a
        )
        .await,
        3
    );
    delete_namespaces(&admin, &to_clean).await;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_rebuild_killed_midway_converges_when_run_again(pool: PgPool) {
    let Some((t, ctx)) = setup(&pool, "resurrect-kill").await else {
        return;
    };
    let admin = apply_support::admin_client().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(deployed_app(&pool, &t, &format!("app{i}"), "v").await);
    }
    let url = database_url(&pool).await;
    let bin = env!("CARGO_BIN_EXE_loco-resurrect");
    let run = || {
        let mut c = tokio::process::Command::new(bin);
        c.args([
            "--cluster",
            "resurrect-kill-cluster",
            "--once",
            "--force",
            "--no-chart",
            "--output",
            "json",
        ])
        .args(["--concurrency", "2", "--wave-size", "3"])
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("LOCO_KEK", base64_of(&KEY))
        .env("LOCO_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        c
    };
    // Killed (SIGKILL) once it has written part of the cluster.
    let mut child = run().spawn().unwrap();
    let nss: Api<Namespace> = Api::all(admin.clone());
    let first = loco_render::namespace_name(t.workspace, ids[0]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while nss.get_opt(&first).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first rebuild wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await.unwrap();
    let _ = child.wait().await;
    // The killed run's lock went with its connection; the rerun converges.
    let out = run().output().await.unwrap();
    assert!(
        out.status.success(),
        "the rerun: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["apps_ready"], 12, "{report}");
    assert!(
        report["apps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "ready" || a["outcome"] == "unchanged"),
        "{report}"
    );
    // Converged: the next diagnosis is healthy, one Deployment per app, no extra row.
    let (dopts, _) = opts(&[]);
    let (d, _) = diagnosis::diagnose(&ctx, &dopts).await.unwrap();
    assert_eq!(d.verdict, Verdict::Healthy, "{}", d.summary);
    for id in &ids {
        let deps: Api<Deployment> = Api::namespaced(
            admin.clone(),
            &loco_render::namespace_name(t.workspace, *id),
        );
        assert_eq!(deps.list(&Default::default()).await.unwrap().items.len(), 1);
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM deployments WHERE app_id >= $1",
            ids[0]
        )
        .await,
        12
    );
    let names: Vec<String> = ids
        .iter()
        .map(|id| loco_render::namespace_name(t.workspace, *id))
        .collect();
    delete_namespaces(&admin, &names).await;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_guard_refuses_a_database_far_emptier_than_the_cluster(pool: PgPool) {
    let Some((t, ctx)) = setup(&pool, "resurrect-guard").await else {
        return;
    };
    let admin = apply_support::admin_client().await.unwrap();
    // The cluster holds loco app namespaces this database knows nothing about.
    let nss: Api<Namespace> = Api::all(admin.clone());
    let mut made = Vec::new();
    for i in 0..3 {
        let name = format!("wks-{}-app-{}", t.workspace, 900 + i);
        let workspace = t.workspace.to_string();
        let app = (900 + i).to_string();
        nss.create(
            &PostParams::default(),
            &Namespace {
                metadata: labelled(
                    &name,
                    &[
                        ("app.kubernetes.io/managed-by", "loco"),
                        ("loco.deploy-app.com/workspace", &workspace),
                        ("loco.deploy-app.com/app", &app),
                    ],
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        made.push(name);
    }
    let (dopts, _) = opts(&["--prune-orphans"]);
    let (d, _) = diagnosis::diagnose(&ctx, &dopts).await.unwrap();
    let why = d.guard.refuses.clone().expect("the guard refuses");
    assert!(why.contains("0 deployed app(s)"), "{why}");
    assert!(d.plan[0].starts_with("refuse to act"), "{:?}", d.plan);
    // The command line refuses before writing: exit 5, every namespace still there.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loco-resurrect"))
        .args([
            "--cluster",
            "resurrect-guard-cluster",
            "--once",
            "--no-chart",
            "--prune-orphans",
        ])
        .env_clear()
        .env("DATABASE_URL", database_url(&pool).await)
        .env("LOCO_KEK", base64_of(&KEY))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    for n in &made {
        assert!(
            nss.get_opt(n).await.unwrap().is_some(),
            "{n} was left alone"
        );
    }
    delete_namespaces(&admin, &made).await;
}
