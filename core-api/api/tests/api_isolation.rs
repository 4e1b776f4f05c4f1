//! Tenant isolation, for every route the OpenAPI document lists (so a new route cannot
//! be forgotten): a caller of org A gets 404, never 403 or 2xx, on each of org B's
//! objects, whether the path names B's org or A's org with B's object ids.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::collections::BTreeSet;

use api_support::*;
use axum::http::{Method, StatusCode};
use db_support::{revision_with_env, tenant};
use loco_db::orgs::Role;
use loco_db::{apps, revisions, workspaces};
use serde_json::json;
use sqlx::PgPool;

/// Routes that name no org object: each is checked for leaks separately below.
const NOT_ORG_SCOPED: &[(&str, &str)] = &[
    ("get", "/v1/orgs"),
    ("post", "/v1/orgs"),
    ("get", "/v1/regions"),
    // Logins and sessions (api/login): no org in the path; a session reaches only the
    // orgs its user is a member of (api_login.rs).
    ("get", "/v1/auth/github/login"),
    ("get", "/v1/auth/github/callback"),
    ("post", "/v1/auth/github/device"),
    ("post", "/v1/auth/github/device/poll"),
    ("get", "/v1/auth/google/login"),
    ("get", "/v1/auth/google/callback"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    // Public (see PUBLIC): platform-wide figures, no tenant's names or ids.
    ("get", "/status"),
];

/// Routes that answer a caller without any token, on purpose. Every other route of the
/// OpenAPI document must refuse an anonymous caller with 401 and document its bearer
/// security requirement (checked by `every_route_but_the_public_ones_needs_a_token`).
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/status"),
    // Logging in is what a caller without a token does.
    ("get", "/v1/auth/github/login"),
    ("get", "/v1/auth/github/callback"),
    ("post", "/v1/auth/github/device"),
    ("post", "/v1/auth/github/device/poll"),
    ("get", "/v1/auth/google/login"),
    ("get", "/v1/auth/google/callback"),
    ("post", "/v1/auth/refresh"),
];

/// A valid body for each route that takes one, so the 404 comes from the tenant
/// check, not from a parse error.
fn sample_body(method: &str, path: &str, region: i64) -> serde_json::Value {
    match (method, path) {
        ("post", "/v1/orgs/{org_id}/workspaces") => json!({"name": "iso", "region_id": region}),
        ("post", "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps") => {
            json!({"name": "iso", "host": "iso.apps.example.com"})
        }
        ("put", "/v1/orgs/{org_id}/apps/{app_id}/env") => json!({"INJECTED": "x"}),
        ("put", "/v1/orgs/{org_id}/deploy-gate") => json!({"repos": ["o/r"]}),
        ("post", "/v1/orgs/{org_id}/apps/{app_id}/deployments") => {
            json!({"image": "registry.example/team/app:v1"})
        }
        ("post", "/v1/orgs/{org_id}/apps/{app_id}/rollback") => json!({}),
        ("post", "/v1/orgs/{org_id}/apps/{app_id}/scale") => json!({"replicas": 1}),
        _ => panic!("{method} {path} takes a body: add a valid sample to sample_body"),
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn org_a_sees_none_of_org_bs_objects(pool: PgPool) {
    let a = tenant(&pool, &kek(), "org-a").await;
    let b = tenant(&pool, &kek(), "org-b").await;
    let b_app = db_support::app(&pool, &kek(), &b, "secret-app").await;
    let b_rev = revision_with_env(&pool, &kek(), b_app, &[("B_ONLY", "b-value")]).await;
    let b_deployment = {
        let mut tx = pool.begin().await.unwrap();
        let id = loco_db::deployments::create(&mut tx, b_app, b_rev, &b.actor())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    // A has objects of its own, so A's callers have something to find.
    let a_app = db_support::app(&pool, &kek(), &a, "web").await;
    revision_with_env(&pool, &kek(), a_app, &[]).await;
    let region = sqlx::query_scalar::<_, i64>("SELECT id FROM regions LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();

    let app = router(&pool);
    let doc = call(&app, Method::GET, "/openapi.json", None, None)
        .await
        .json;
    let member_user = member(&pool, a.org, "a-member", Role::Member).await;
    let callers = [
        ("member of A", token(&pool, a.org, member_user).await),
        ("owner of A", token(&pool, a.org, a.user).await),
    ];

    let mut unscoped = BTreeSet::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            if !path.contains("{org_id}") {
                unscoped.insert((method.clone(), path.clone()));
                continue;
            }
            let body = op
                .get("requestBody")
                .map(|_| sample_body(method, path, region));
            let params: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let fill = |org: i64| {
                let mut p = path.replace("{org_id}", &org.to_string());
                for param in &params {
                    let id = match *param {
                        "org_id" => continue,
                        "workspace_id" => b.workspace,
                        "app_id" => b_app,
                        "deployment_id" => b_deployment,
                        other => panic!("{path}: teach this test about {{{other}}}"),
                    };
                    p = p.replace(&format!("{{{param}}}"), &id.to_string());
                }
                p
            };
            let mut variants = vec![fill(b.org)];
            if params.len() > 1 {
                variants.push(fill(a.org));
            }
            for (who, tok) in &callers {
                for url in &variants {
                    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    let r = call(&app, m, url, Some(tok), body.clone()).await;
                    assert_eq!(
                        r.status,
                        StatusCode::NOT_FOUND,
                        "{who}: {method} {url} (route {path}) must be 404: {}",
                        r.text
                    );
                    assert_eq!(r.error(), "not_found");
                    checked += 1;
                }
            }
        }
    }
    let expected: BTreeSet<_> = NOT_ORG_SCOPED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        unscoped, expected,
        "a route outside /v1/orgs/{{org_id}} appeared or went: decide how it is isolated and update NOT_ORG_SCOPED"
    );
    assert!(checked >= 30, "only {checked} requests checked");

    // The unscoped routes: A's org list has no B, and an org create touches nothing of B.
    for (_, tok) in &callers {
        let r = get(&app, "/v1/orgs", tok).await;
        let ids: Vec<_> = r.json["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [a.org], "{}", r.text);
    }

    // B is untouched: its workspace, app and env are as they were.
    workspaces::get(&pool, b.org, b.workspace).await.unwrap();
    apps::get(&pool, b.org, b_app).await.unwrap();
    let current = revisions::intended(&pool, b_app).await.unwrap().unwrap();
    assert_eq!(current.id, b_rev);
    assert_eq!(
        revisions::env_names(&pool, b_rev).await.unwrap(),
        ["B_ONLY"]
    );
    let b_apps = apps::list(&pool, b.org, b.workspace, Default::default())
        .await
        .unwrap();
    assert_eq!(b_apps.len(), 1, "nothing created in B");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn every_route_but_the_public_ones_needs_a_token(pool: PgPool) {
    let t = tenant(&pool, &kek(), "org-a").await;
    let app = router(&pool);
    let doc = call(&app, Method::GET, "/openapi.json", None, None)
        .await
        .json;
    let mut public = BTreeSet::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            // Real ids of the caller-less tenant, so nothing but the missing token can refuse.
            let mut url = path.replace("{org_id}", &t.org.to_string());
            url = url.replace("{workspace_id}", &t.workspace.to_string());
            while let (Some(open), Some(close)) = (url.find('{'), url.find('}')) {
                url.replace_range(open..=close, "1");
            }
            let body = op.get("requestBody").map(|_| json!({}));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = call(&app, m, &url, None, body).await;
            checked += 1;
            if r.status == StatusCode::UNAUTHORIZED {
                assert_eq!(r.error(), "unauthenticated", "{method} {url}");
                assert!(
                    op["security"].as_array().is_some_and(|s| !s.is_empty()),
                    "{method} {path} needs a token but its OpenAPI entry has no security requirement"
                );
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{method} {path} answered {} without a token but documents a security requirement",
                    r.status
                );
                public.insert((method.clone(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<_> = PUBLIC
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        public, expected,
        "routes answering without a token: list a route in PUBLIC only if it is meant to be public; otherwise it lacks its auth extractor"
    );
    assert!(checked > PUBLIC.len(), "only {checked} routes checked");
}
