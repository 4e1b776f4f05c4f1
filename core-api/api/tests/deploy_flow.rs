//! The deploy flow end to end on the test cluster, through loco-api's router with its
//! deploy workers running: deploy, no-change redeploy, env update, scale, a rollout that
//! never becomes Ready (reverted), rollback, sleep and wake, the progress stream, and
//! delete. The cluster is reached with loco-api's own least-privilege identity.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/apply_support/mod.rs"]
mod apply_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;
#[path = "../../testsupport/deploy_support/mod.rs"]
mod deploy_support;

use std::time::Duration;

use api_support::{call, get, kek, send, token};
use apply_support::image_of;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use db_support::{distinct_ids, tenant};
use deploy_support::*;

/// The stack's admin client, for inspecting what loco applied (never for applying).
async fn admin_client() -> kube::Client {
    apply_support::admin_client()
        .await
        .expect("the test cluster (tests/minikube/stack up)")
}
use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret as KubeSecret};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use sqlx::PgPool;

fn spec(name: &str, extra: &str) -> String {
    format!(
        "[Metadata]\nName = \"{name}\"\n[Routing]\nPort = 8080\n[Health]\nPath = \"/health\"\n\
         [RegionConfig.us-east-1]\nCPU = \"100m\"\nMemory = \"64Mi\"\n{extra}"
    )
}

async fn status_of(app: &axum::Router, org: i64, id: i64, tok: &str) -> Value {
    get(app, &format!("/v1/orgs/{org}/deployments/{id}"), tok)
        .await
        .json
}

/// Waits until deployment `id` is ready or failed; returns its JSON.
async fn finished(app: &axum::Router, org: i64, id: i64, tok: &str) -> Value {
    eventually(90, &format!("deployment {id} to finish"), || async {
        let d = status_of(app, org, id, tok).await;
        matches!(d["status"].as_str(), Some("ready" | "failed")).then_some(d)
    })
    .await
}

async fn live_deployment(ns: &str) -> Deployment {
    Api::<Deployment>::namespaced(admin_client().await, ns)
        .get("app")
        .await
        .unwrap()
}

/// The pod template as the API server stores it: what decides whether pods are replaced.
fn template_of(d: &Deployment) -> Value {
    serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap()
}

/// A variable loco injects into the app's container.
fn env_of(d: &Deployment, name: &str) -> Option<String> {
    let pod = d.spec.as_ref()?.template.spec.as_ref()?;
    pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn deployment_annotation(d: &Deployment) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()?
        .get(loco_render::ANNOTATION_DEPLOYMENT)
        .cloned()
}

/// The ReplicaSet the Deployment scales (the one asked for pods) and the uids of its pods
/// that are not being deleted: what a user sees as "the pods that run".
async fn serving_pods(ns: &str) -> (String, BTreeSet<String>) {
    let client = admin_client().await;
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let serving: Vec<&ReplicaSet> = sets
        .items
        .iter()
        .filter(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        .collect();
    assert_eq!(serving.len(), 1, "one ReplicaSet scaled up: {serving:#?}");
    let rs = serving[0];
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    let pods = Api::<Pod>::namespaced(client, ns)
        .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
        .await
        .unwrap();
    let uids = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    (rs.metadata.name.clone().unwrap(), uids)
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn deploy_env_scale_failed_rollout_rollback_sleep_wake_and_delete(pool: PgPool) {
    distinct_ids(&pool).await;
    let t = tenant(&pool, &kek(), "acme").await;
    let kubeconfig = apply_support::kubeconfig_yaml_for(&apply_support::loco_api_token().await);
    use_test_cluster(&pool, &kek(), t.cluster, &kubeconfig).await;
    let ctx = ctx_with(&pool, kek(), deploy_config());
    let workers = {
        let d = ctx.deployer.clone();
        tokio::spawn(async move { d.run_workers(std::future::pending()).await })
    };
    let app = loco_http::router(ctx);
    let tok = token(&pool, t.org, t.user).await;
    let org = t.org;

    let u = unique();
    let name = format!("web-{u}");
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/workspaces/{}/apps", t.workspace),
        Some(&tok),
        Some(json!({"name": name, "host": format!("{name}.deploy-app.com")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let app_id = r.json["id"].as_i64().unwrap();
    let ns = format!("wks-{}-app-{app_id}", t.workspace);
    let repo = format!("acme/{name}");
    let v1 = push_image(&repo, "v1", 64).await;
    let v2 = push_image(&repo, "v2", 64).await;
    let never_ready = push_image(&format!("acme/never-ready-{u}"), "v1", 64).await;
    let reg = registry_host();
    let deployments = format!("/v1/orgs/{org}/apps/{app_id}/deployments");
    let canary = format!("canary-{}", unique());

    // 1. First deploy: image + loco.toml (with an inline env value).
    let r = call(
        &app,
        Method::POST,
        &deployments,
        Some(&tok),
        Some(json!({"image": format!("{reg}/{repo}:v1"),
                    "spec": spec(&name, &format!("[Env]\nVariables = {{ API_KEY = \"{canary}\" }}\n"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let first = r.json["id"].as_i64().unwrap();
    let d = finished(&app, org, first, &tok).await;
    assert_eq!(d["status"], "ready", "{d:#}");
    assert_eq!(d["active"], true);
    let reasons: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"preflight_passed"), "{reasons:?}");
    assert!(reasons.contains(&"deployment_ready"), "{reasons:?}");
    let live = live_deployment(&ns).await;
    assert_eq!(image_of(&live), format!("{reg}/{repo}:v1@{v1}"));
    let env_secret = live
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env_from
        .as_ref()
        .and_then(|e| e[0].secret_ref.as_ref())
        .map(|s| s.name.clone())
        .expect("the env Secret is referenced");
    let secret = Api::<KubeSecret>::namespaced(admin_client().await, &ns)
        .get(&env_secret)
        .await
        .unwrap();
    assert_eq!(
        secret.data.unwrap()["API_KEY"].0,
        canary.as_bytes(),
        "the env value reaches the cluster, decrypted"
    );

    // 2. The same deploy again writes nothing: 200 with the active deployment's id.
    let revisions_before = db_support::count(
        &pool,
        "SELECT count(*) FROM app_revisions WHERE app_id = $1",
        app_id,
    )
    .await;
    let r = call(
        &app,
        Method::POST,
        &deployments,
        Some(&tok),
        Some(json!({"image": format!("{reg}/{repo}:v1")})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["id"].as_i64()),
        (StatusCode::OK, Some(first)),
        "{}",
        r.text
    );
    assert_eq!(
        db_support::count(
            &pool,
            "SELECT count(*) FROM app_revisions WHERE app_id = $1",
            app_id
        )
        .await,
        revisions_before
    );

    // 3. A new image: ready, the previous deployment superseded.
    let r = call(
        &app,
        Method::POST,
        &deployments,
        Some(&tok),
        Some(json!({"image": format!("{reg}/{repo}:v2")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = r.json["id"].as_i64().unwrap();
    assert_eq!(finished(&app, org, second, &tok).await["status"], "ready");
    assert_eq!(
        status_of(&app, org, first, &tok).await["status"],
        "superseded"
    );
    assert_eq!(
        image_of(&live_deployment(&ns).await),
        format!("{reg}/{repo}:v2@{v2}")
    );

    // 4. Env update without an image: a rolling restart with the new value.
    let r = call(
        &app,
        Method::PUT,
        &format!("/v1/orgs/{org}/apps/{app_id}/env"),
        Some(&tok),
        Some(json!({"API_KEY": format!("{canary}-2"), "MODE": "fast"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let env_dep = r.json["id"].as_i64().unwrap();
    assert_eq!(finished(&app, org, env_dep, &tok).await["status"], "ready");
    assert_eq!(
        image_of(&live_deployment(&ns).await),
        format!("{reg}/{repo}:v2@{v2}"),
        "env keeps the image"
    );

    // 5. Scale to 2 replicas: the pod template stays the env change's, so the pod that
    // runs keeps running and one more joins it from the same ReplicaSet.
    let before_scale = live_deployment(&ns).await;
    assert_eq!(
        env_of(&before_scale, "LOCO_DEPLOYMENT_ID"),
        Some(env_dep.to_string())
    );
    let (set_before_scale, pods_before_scale) = serving_pods(&ns).await;
    assert!(!pods_before_scale.is_empty());
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/apps/{app_id}/scale"),
        Some(&tok),
        Some(json!({"replicas": 2})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let scaled = r.json["id"].as_i64().unwrap();
    assert_eq!(finished(&app, org, scaled, &tok).await["status"], "ready");
    let after_scale = live_deployment(&ns).await;
    assert_eq!(after_scale.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        env_of(&after_scale, "LOCO_DEPLOYMENT_ID"),
        Some(env_dep.to_string()),
        "the pods still carry the deployment that introduced their template"
    );
    assert_eq!(
        template_of(&after_scale),
        template_of(&before_scale),
        "a replica-only scale leaves the pod template as it was"
    );
    assert_eq!(
        deployment_annotation(&after_scale),
        Some(scaled.to_string()),
        "the Deployment itself names the deployment that applied it"
    );
    let (set_after_scale, pods_after_scale) = serving_pods(&ns).await;
    assert_eq!(set_after_scale, set_before_scale, "no new ReplicaSet");
    assert!(
        pods_after_scale.is_superset(&pods_before_scale),
        "the running pods were not replaced: {pods_before_scale:?} -> {pods_after_scale:?}"
    );

    // 6. A rollout that never becomes Ready fails and is reverted: the cluster runs v2 again.
    let r = call(
        &app,
        Method::POST,
        &deployments,
        Some(&tok),
        Some(json!({"image": format!("{reg}/acme/never-ready-{u}:v1")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bad = r.json["id"].as_i64().unwrap();
    let d = finished(&app, org, bad, &tok).await;
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["reason"], "rollout_deadline_exceeded", "{d:#}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("previous deployment"),
        "{d:#}"
    );
    assert_eq!(
        status_of(&app, org, scaled, &tok).await["active"],
        true,
        "the previous deployment keeps serving"
    );
    let live = eventually(60, "the revert to finish rolling out", || async {
        let l = live_deployment(&ns).await;
        let st = l.status.clone().unwrap_or_default();
        (image_of(&l).ends_with(&v2) && st.ready_replicas == Some(2)).then_some(l)
    })
    .await;
    assert!(!image_of(&live).contains(&never_ready));
    assert_eq!(
        template_of(&live),
        template_of(&before_scale),
        "the revert re-applies the scaled deployment's template, the env change's"
    );

    // 7. Rollback (default target: the deployment before the active one = the env change).
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/apps/{app_id}/rollback"),
        Some(&tok),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rolled = r.json["id"].as_i64().unwrap();
    assert_eq!(finished(&app, org, rolled, &tok).await["status"], "ready");
    assert_eq!(
        live_deployment(&ns).await.spec.unwrap().replicas,
        Some(1),
        "back to the env revision's scale"
    );
    let before_sleep = live_deployment(&ns).await;
    assert_eq!(
        env_of(&before_sleep, "LOCO_DEPLOYMENT_ID"),
        Some(rolled.to_string()),
        "a rollback is a new rollout"
    );
    let (set_before_sleep, _) = serving_pods(&ns).await;

    // 8. Sleep: 0 replicas; wake: back.
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/apps/{app_id}/sleep"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        finished(&app, org, r.json["id"].as_i64().unwrap(), &tok).await["status"],
        "ready"
    );
    let asleep = live_deployment(&ns).await;
    assert_eq!(asleep.spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(template_of(&asleep), template_of(&before_sleep));
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/apps/{app_id}/sleep"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::CONFLICT, "already_asleep")
    );
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/apps/{app_id}/wake"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let woke = r.json["id"].as_i64().unwrap();
    assert_eq!(finished(&app, org, woke, &tok).await["status"], "ready");
    let awake = live_deployment(&ns).await;
    assert_eq!(awake.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        template_of(&awake),
        template_of(&before_sleep),
        "sleep and wake bring back the same pod template"
    );
    assert_eq!(deployment_annotation(&awake), Some(woke.to_string()));
    assert_eq!(
        serving_pods(&ns).await.0,
        set_before_sleep,
        "wake scales the ReplicaSet from before the sleep back up"
    );

    // 9. The progress stream of a finished deployment: its events, then `done`.
    let req = Request::builder()
        .uri(format!("/v1/orgs/{org}/deployments/{woke}/stream"))
        .header("authorization", format!("Bearer {tok}"))
        .body(Body::empty())
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), send(&app, req))
        .await
        .expect("the stream ends");
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("event: progress"), "{}", r.text);
    assert!(r.text.contains("event: done"), "{}", r.text);
    assert!(r.text.contains("\"status\":\"ready\""), "{}", r.text);

    // 10. The env values never show in events or API responses.
    for path in [
        format!("/v1/orgs/{org}/events?limit=200"),
        deployments.clone(),
        format!("/v1/orgs/{org}/deployments/{first}"),
        format!("/v1/orgs/{org}/apps/{app_id}/revisions"),
    ] {
        let r = get(&app, &path, &tok).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.text.contains(&canary), "{path} shows an env value");
    }

    // 11. Delete: the namespace goes, then the rows.
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v1/orgs/{org}/apps/{app_id}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let ns_api = Api::<Namespace>::all(admin_client().await);
    eventually(60, "the namespace to be deleted", || async {
        match ns_api.get_opt(&ns).await.unwrap() {
            None => Some(()),
            Some(n) => n.metadata.deletion_timestamp.map(|_| ()),
        }
    })
    .await;
    assert_eq!(
        db_support::count(
            &pool,
            "SELECT count(*) FROM deployments WHERE app_id = $1",
            app_id
        )
        .await,
        0
    );
    workers.abort();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn refused_at_the_door_missing_image_oversized_image_bad_spec_and_no_room(pool: PgPool) {
    distinct_ids(&pool).await;
    let t = tenant(&pool, &kek(), "bolt").await;
    let kubeconfig = apply_support::kubeconfig_yaml_for(&apply_support::loco_api_token().await);
    use_test_cluster(&pool, &kek(), t.cluster, &kubeconfig).await;
    let mut config = deploy_config();
    config.registry.max_image_bytes = 4096;
    let ctx = ctx_with(&pool, kek(), config);
    let workers = {
        let d = ctx.deployer.clone();
        tokio::spawn(async move { d.run_workers(std::future::pending()).await })
    };
    let app = loco_http::router(ctx);
    let tok = token(&pool, t.org, t.user).await;
    let org = t.org;
    let u = unique();
    let name = format!("api-{u}");
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/orgs/{org}/workspaces/{}/apps", t.workspace),
        Some(&tok),
        Some(json!({"name": name, "host": format!("{name}.deploy-app.com")})),
    )
    .await;
    let app_id = r.json["id"].as_i64().unwrap();
    let deployments = format!("/v1/orgs/{org}/apps/{app_id}/deployments");
    let reg = registry_host();
    let repo = format!("bolt/{name}");
    push_image(&repo, "small", 64).await;
    push_image(&repo, "big", 8192).await;

    let cases = [
        (
            json!({"image": format!("{reg}/{repo}:nope"), "spec": spec(&name, "")}),
            StatusCode::CONFLICT,
            "image_unresolvable",
        ),
        (
            json!({"image": format!("{reg}/{repo}:big"), "spec": spec(&name, "")}),
            StatusCode::CONFLICT,
            "image_too_large",
        ),
        (
            json!({"image": format!("{reg}/{repo}"), "spec": spec(&name, "")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"image": format!("{reg}/{repo}:small")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"image": format!("{reg}/{repo}:small"), "spec": spec("other-name", "")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"image": format!("{reg}/{repo}:small"), "spec": "[Metadata]\nName = 3\n"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"image": "127.0.0.1:1/nothing/here:v1", "spec": spec(&name, "")}),
            StatusCode::CONFLICT,
            "image_unresolvable",
        ),
    ];
    for (body, status, reason) in cases {
        let r = call(
            &app,
            Method::POST,
            &deployments,
            Some(&tok),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (status, reason),
            "{body}: {}",
            r.text
        );
        assert!(
            !r.json["next_step"].as_str().unwrap_or_default().is_empty(),
            "{}",
            r.text
        );
    }
    assert_eq!(
        db_support::count(
            &pool,
            "SELECT count(*) FROM app_revisions WHERE app_id = $1",
            app_id
        )
        .await,
        0
    );

    // Preflight: 40 replicas of 3 CPU each, times 2, cannot be placed on 3 nodes of 4 CPU.
    let r = call(&app, Method::POST, &deployments, Some(&tok), Some(json!({
        "image": format!("{reg}/{repo}:small"),
        "spec": format!("[Metadata]\nName = \"{name}\"\n[Routing]\nPort = 8080\n[Health]\nPath = \"/health\"\n\
                         [RegionConfig.us-east-1]\nCPU = \"3\"\nMemory = \"64Mi\"\nReplicas = {{ Min = 10, Max = 10 }}\n")
    }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_i64().unwrap();
    let d = finished(&app, org, id, &tok).await;
    assert_eq!(
        (d["status"].as_str(), d["reason"].as_str()),
        (Some("failed"), Some("preflight_failed")),
        "{d:#}"
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("Nothing was applied"),
        "{d:#}"
    );
    let ns = format!("wks-{}-app-{app_id}", t.workspace);
    assert!(
        Api::<Namespace>::all(admin_client().await)
            .get_opt(&ns)
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );
    workers.abort();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn two_workspaces_get_their_own_network_policies(pool: PgPool) {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    distinct_ids(&pool).await;
    let t = tenant(&pool, &kek(), "duo").await;
    let kubeconfig = apply_support::kubeconfig_yaml_for(&apply_support::loco_api_token().await);
    use_test_cluster(&pool, &kek(), t.cluster, &kubeconfig).await;
    let mut tx = pool.begin().await.unwrap();
    let second_ws = loco_db::workspaces::create(&mut tx, t.org, t.cluster, "second", &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ctx = ctx_with(&pool, kek(), deploy_config());
    let workers = {
        let d = ctx.deployer.clone();
        tokio::spawn(async move { d.run_workers(std::future::pending()).await })
    };
    let app = loco_http::router(ctx);
    let tok = token(&pool, t.org, t.user).await;
    let org = t.org;
    let reg = registry_host();
    let u = unique();

    let mut queued = vec![];
    for ws in [t.workspace, second_ws] {
        let name = format!("net-{ws}-{u}");
        let r = call(
            &app,
            Method::POST,
            &format!("/v1/orgs/{org}/workspaces/{ws}/apps"),
            Some(&tok),
            Some(json!({"name": name, "host": format!("{name}.deploy-app.com")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let app_id = r.json["id"].as_i64().unwrap();
        push_image(&format!("duo/{name}"), "v1", 64).await;
        let r = call(
            &app,
            Method::POST,
            &format!("/v1/orgs/{org}/apps/{app_id}/deployments"),
            Some(&tok),
            Some(json!({"image": format!("{reg}/duo/{name}:v1"), "spec": spec(&name, "")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        queued.push((ws, app_id, r.json["id"].as_i64().unwrap()));
    }
    let admin = admin_client().await;
    for (ws, app_id, dep) in &queued {
        assert_eq!(finished(&app, org, *dep, &tok).await["status"], "ready");
        let ns = format!("wks-{ws}-app-{app_id}");
        let namespace = Api::<Namespace>::all(admin.clone()).get(&ns).await.unwrap();
        assert_eq!(
            namespace.metadata.labels.unwrap()["loco.deploy-app.com/workspace"],
            ws.to_string()
        );
        let policies = Api::<NetworkPolicy>::namespaced(admin.clone(), &ns);
        let deny = policies.get("default-deny-ingress").await.unwrap();
        assert!(
            deny.spec.unwrap().ingress.unwrap_or_default().is_empty(),
            "default deny has no allow"
        );
        let same = policies.get("allow-same-workspace").await.unwrap();
        let selector = serde_json::to_value(&same.spec.unwrap().ingress.unwrap()[0]).unwrap();
        assert_eq!(
            selector["from"][0]["namespaceSelector"]["matchLabels"]["loco.deploy-app.com/workspace"],
            ws.to_string(),
            "{selector}"
        );
        // Egress as the API server stored it (kwok's bed does not enforce it): DNS, the
        // workspace, and the internet minus the metadata endpoint and private ranges.
        let egress = policies.get("egress").await.unwrap();
        let rules = serde_json::to_value(egress.spec.unwrap().egress.unwrap()).unwrap();
        assert_eq!(
            rules[1]["to"][0]["namespaceSelector"]["matchLabels"]["loco.deploy-app.com/workspace"],
            ws.to_string(),
            "{rules}"
        );
        let except = rules[2]["to"][0]["ipBlock"]["except"].to_string();
        assert!(
            except.contains("169.254.0.0/16") && except.contains("10.0.0.0/8"),
            "{rules}"
        );
    }
    // The first app goes by itself; the second with its workspace (issue 14, finding 4:
    // a workspace delete used to drop rows only, leaving namespaces and env Secrets).
    let (_, first_app, _) = queued[0];
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v1/orgs/{org}/apps/{first_app}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (ws, second_app, _) = queued[1];
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v1/orgs/{org}/workspaces/{ws}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for (ws, app_id, _) in &queued {
        let ns = format!("wks-{ws}-app-{app_id}");
        assert!(
            Api::<Namespace>::all(admin.clone())
                .get_opt(&ns)
                .await
                .unwrap()
                .is_none(),
            "namespace {ns} outlived its rows"
        );
    }
    let _ = second_app;
    workers.abort();
}
