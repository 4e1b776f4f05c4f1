//! The HTTP API driven in-process: happy paths of every resource, and each way a
//! request can go wrong, with the `{error, message, next_step, request_id}` shape.

#[path = "../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../testsupport/db_support/mod.rs"]
mod db_support;

use api_support::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use db_support::{revision_with_env, tenant};
use loco_db::orgs::Role;
use loco_db::tokens::Scope;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn orgs_workspaces_apps_env_and_events_round_trip(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = router(&pool);
    let tok = token(&pool, t.org, t.user).await;

    // Orgs: the token's own org, with the caller's role.
    let r = get(&app, "/v1/orgs", &tok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["orgs"][0]["id"], t.org);
    assert_eq!(r.json["orgs"][0]["role"], "owner");
    let r = get(&app, &format!("/v1/orgs/{}", t.org), &tok).await;
    assert_eq!(r.json["name"], "acme", "{}", r.text);
    let r = get(&app, &format!("/v1/orgs/{}/members", t.org), &tok).await;
    assert_eq!(r.json["members"][0]["login"], "acme", "{}", r.text);
    let r = get(&app, "/v1/regions", &tok).await;
    let region = r.json["regions"][0]["id"].as_i64().expect("a region");

    // Creating an org makes the caller its owner and returns only the id.
    let r = call(
        &app,
        Method::POST,
        "/v1/orgs",
        Some(&tok),
        Some(json!({"name": "acme-two"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.json.as_object().unwrap().len(),
        1,
        "only the id: {}",
        r.text
    );
    let org2 = r.json["id"].as_i64().unwrap();
    let owner = loco_db::orgs::role_of(&pool, org2, t.user).await.unwrap();
    assert_eq!(owner, Some(Role::Owner));

    // Workspaces.
    let ws_path = format!("/v1/orgs/{}/workspaces", t.org);
    let r = call(
        &app,
        Method::POST,
        &ws_path,
        Some(&tok),
        Some(json!({"name": "staging", "region_id": region})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ws = r.json["id"].as_i64().unwrap();
    let r = get(&app, &ws_path, &tok).await;
    let names: Vec<_> = r.json["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(names, [json!("default"), json!("staging")]);
    let r = get(&app, &format!("{ws_path}/{ws}"), &tok).await;
    assert_eq!(r.json["name"], "staging");

    // Apps.
    let apps_path = format!("{ws_path}/{ws}/apps");
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&tok),
        Some(json!({
            "name": "web", "host": "web.apps.example.com", "path_prefix": "/",
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "routed": true}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let app_id = r.json["id"].as_i64().unwrap();
    let r = get(&app, &apps_path, &tok).await;
    assert_eq!(r.json["apps"][0]["id"], app_id, "{}", r.text);
    let one = format!("/v1/orgs/{}/apps/{app_id}", t.org);
    let r = get(&app, &one, &tok).await;
    assert_eq!(r.json["host"], "web.apps.example.com");
    assert_eq!(r.json["ports"][0]["port"], 8080);

    // Env: refused before the first revision, then a new revision per PUT; names only.
    let env = format!("{one}/env");
    let r = call(&app, Method::PUT, &env, Some(&tok), Some(json!({"A": "1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error(), "app_not_deployed");
    let first = revision_with_env(&pool, &kek(), app_id, &[("OLD", "x")]).await;
    let r = call(
        &app,
        Method::PUT,
        &env,
        Some(&tok),
        Some(json!({"DATABASE_URL": "postgres://x", "API_KEY": "k"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The id is the deployment that rolls the new env out; the names come from its revision.
    let deployment = r.json["id"].as_i64().unwrap();
    let r = get(&app, &env, &tok).await;
    let rev = r.json["revision_id"].as_i64().unwrap();
    assert!(rev > first);
    assert_eq!(
        r.json,
        json!({"revision_id": rev, "names": ["API_KEY", "DATABASE_URL"]})
    );
    let r = get(
        &app,
        &format!("/v1/orgs/{}/deployments/{deployment}", t.org),
        &tok,
    )
    .await;
    assert_eq!(r.json["revision_id"], rev, "{}", r.text);
    assert_eq!(r.json["status"], "pending", "no worker runs in this test");
    let r = get(&app, &one, &tok).await;
    assert_eq!(r.json["current_revision_id"], rev);

    // Events: filtered by app, newest first, keyset-paginated.
    let events = format!("/v1/orgs/{}/events", t.org);
    let r = get(&app, &format!("{events}?app_id={app_id}"), &tok).await;
    let reasons: Vec<_> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reasons,
        ["env_changed", "deployment_created", "app_created"],
        "{}",
        r.text
    );
    let r = get(&app, &format!("{events}?limit=2"), &tok).await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 2);
    let after = r.json["next_after"]
        .as_i64()
        .expect("a full page has next_after");
    let r2 = get(&app, &format!("{events}?limit=200&after={after}"), &tok).await;
    let older: Vec<i64> = r2.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(
        !older.is_empty() && older.iter().all(|id| *id < after),
        "{older:?}"
    );
    assert!(r2.json["next_after"].is_null());
    let r = get(&app, &format!("{events}?workspace_id={ws}"), &tok).await;
    assert!(
        r.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["workspace_id"] == ws)
    );

    // Deletes: 204, then 404; the app's rows and data key are gone, the event stays.
    let r = call(&app, Method::DELETE, &one, Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(get(&app, &one, &tok).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        db_support::count(&pool, "SELECT count(*) FROM apps WHERE id = $1", app_id).await,
        0
    );
    assert_eq!(
        db_support::count(
            &pool,
            "SELECT count(*) FROM app_revisions WHERE app_id = $1",
            app_id
        )
        .await,
        0
    );
    let r = get(&app, &format!("{events}?app_id={app_id}&limit=1"), &tok).await;
    assert_eq!(r.json["events"][0]["reason"], "app_deleted");
    let r = call(
        &app,
        Method::DELETE,
        &format!("{ws_path}/{ws}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        get(&app, &format!("{ws_path}/{ws}"), &tok).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn credentials_are_checked_with_a_next_step(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = router(&pool);
    let path = format!("/v1/orgs/{}", t.org);

    let r = call(&app, Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error(), "unauthenticated");
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");

    let req = Request::get(&path)
        .header("authorization", "Basic dXNlcjpwdw==")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "malformed_authorization")
    );

    let wrong = format!("loco_{}", "0".repeat(64));
    let r = get(&app, &path, &wrong).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "token_invalid")
    );
    let r = get(&app, &path, "not-a-loco-token").await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "token_invalid")
    );

    let expired = token_with(&pool, t.org, t.user, &[Scope::Admin], Duration::seconds(-1)).await;
    let r = get(&app, &path, &expired).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );

    let ok = token(&pool, t.org, t.user).await;
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = $1")
        .bind(&loco_db::tokens::hash(&ok)[..])
        .execute(&pool)
        .await
        .unwrap();
    let r = get(&app, &path, &ok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );

    // Only the hash is stored.
    let fresh = token(&pool, t.org, t.user).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE encode(token_sha256, 'hex') = $1 OR encode(token_sha256, 'escape') LIKE '%' || $2 || '%'")
        .bind(hex::encode(loco_db::tokens::hash(&fresh)))
        .bind(&fresh)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "found by hash only");
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_tokens WHERE token_sha256 = $1",
        )
        .bind(&loco_db::tokens::hash(&fresh)[..])
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None, "never used yet");
    assert_eq!(get(&app, &path, &fresh).await.status, StatusCode::OK);
    let first = last_used().await.expect("the use is noted");
    assert_eq!(get(&app, &path, &fresh).await.status, StatusCode::OK);
    assert_eq!(
        last_used().await,
        Some(first),
        "noted at most once a minute, not on every request"
    );
    // The revoked token's use is not noted.
    let revoked_used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE token_sha256 = $1")
            .bind(&loco_db::tokens::hash(&ok)[..])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(revoked_used, None);

    // A token outlives its user's membership only as a 404 on the org.
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(t.org)
        .bind(t.user)
        .execute(&pool)
        .await
        .unwrap();
    let r = get(&app, &path, &fresh).await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn roles_and_scopes_limit_writes(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app_id = db_support::app(&pool, &kek(), &t, "web").await;
    revision_with_env(&pool, &kek(), app_id, &[]).await;
    let app = router(&pool);
    let viewer = member(&pool, t.org, "vic", Role::Viewer).await;
    let member_user = member(&pool, t.org, "mia", Role::Member).await;
    let viewer_tok = token(&pool, t.org, viewer).await;
    let member_tok = token(&pool, t.org, member_user).await;
    let apps_path = format!("/v1/orgs/{}/workspaces/{}/apps", t.org, t.workspace);
    let env = format!("/v1/orgs/{}/apps/{app_id}/env", t.org);
    let new_app = json!({"name": "api", "host": "api.apps.example.com"});

    // Viewer: reads yes, writes 403.
    assert_eq!(
        get(&app, &apps_path, &viewer_tok).await.status,
        StatusCode::OK
    );
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&viewer_tok),
        Some(new_app.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "role_insufficient")
    );
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("admin or owner")
    );
    let r = call(
        &app,
        Method::PUT,
        &env,
        Some(&viewer_tok),
        Some(json!({"A": "b"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v1/orgs/{}/apps/{app_id}", t.org),
        Some(&viewer_tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Member: apps and env yes, workspaces no.
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&member_tok),
        Some(new_app),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(
        &app,
        Method::PUT,
        &env,
        Some(&member_tok),
        Some(json!({"A": "b"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ws = format!("/v1/orgs/{}/workspaces", t.org);
    let r = call(
        &app,
        Method::POST,
        &ws,
        Some(&member_tok),
        Some(json!({"name": "x", "region_id": 1})),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "role_insufficient")
    );
    let r = call(
        &app,
        Method::DELETE,
        &format!("{ws}/{}", t.workspace),
        Some(&member_tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An owner's read-scoped token cannot write: the scope narrows the role.
    let read_only = token_with(&pool, t.org, t.user, &[Scope::Read], Duration::hours(1)).await;
    let r = call(
        &app,
        Method::PUT,
        &env,
        Some(&read_only),
        Some(json!({"A": "c"})),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "token_scope_insufficient")
    );
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("--scopes write")
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn bad_requests_get_the_error_shape(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = router(&pool);
    let tok = token(&pool, t.org, t.user).await;
    let apps_path = format!("/v1/orgs/{}/workspaces/{}/apps", t.org, t.workspace);
    let raw = |body: &'static str, ctype: Option<&str>| {
        let mut req = Request::post(&apps_path).header("authorization", format!("Bearer {tok}"));
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        req.body(Body::from(body)).unwrap()
    };

    let r = send(&app, raw("{not json", Some("application/json"))).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let r = send(&app, raw(r#"{"name":"web","host":"h.example.com"}"#, None)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json")
    );
    let r = send(&app, raw(r#"{"name": 5}"#, Some("application/json"))).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    let r = send(
        &app,
        raw(
            r#"{"name":"web","host":"h.example.com","colour":"red"}"#,
            Some("application/json"),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        "unknown fields are refused"
    );

    // Validation: DNS-1123 names, hosts, paths, ports, ranges; each with a next step.
    for (body, field) in [
        (json!({"name": "Web_App", "host": "h.example.com"}), "name"),
        (
            json!({"name": "a".repeat(64), "host": "h.example.com"}),
            "name",
        ),
        (json!({"name": "web", "host": "H..example"}), "host"),
        (
            json!({"name": "web", "host": "h.example.com", "path_prefix": "api"}),
            "path_prefix",
        ),
        (
            json!({"name": "web", "host": "h.example.com", "ports": [{"name": "http", "port": 70000, "protocol": "http"}]}),
            "ports[].port",
        ),
        (
            json!({"name": "web", "host": "h.example.com", "sleep_idle_window_seconds": 1}),
            "sleep_idle_window_seconds",
        ),
    ] {
        let r = call(
            &app,
            Method::POST,
            &apps_path,
            Some(&tok),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{body}"
        );
        assert!(
            r.json["message"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            r.text
        );
    }

    // Too large: 413 before anything is parsed.
    let huge = format!(
        r#"{{"name":"web","host":"{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let req = Request::post(&apps_path)
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(Body::from(huge))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    // Ids: malformed is 400, out of range 400, unknown 404.
    let r = get(&app, &format!("/v1/orgs/{}/apps/abc", t.org), &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
    let r = get(&app, &format!("/v1/orgs/{}/apps/0", t.org), &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
    let r = get(&app, "/v1/orgs/-3", &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
    let r = get(&app, &format!("/v1/orgs/{}/apps/999999", t.org), &tok).await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
    let r = get(&app, &format!("/v1/orgs/{}/events?limit=0", t.org), &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input")
    );
    let r = get(&app, &format!("/v1/orgs/{}/events?colour=red", t.org), &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );

    // Unknown routes and methods.
    let r = get(&app, "/v1/nothing-here", &tok).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::NOT_FOUND, "no_such_endpoint")
    );
    let r = call(&app, Method::PATCH, "/v1/orgs", Some(&tok), None).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    // Duplicates: 409 with the rule's reason.
    let body = json!({"name": "web", "host": "web.example.com"});
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&tok),
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&tok),
        Some(json!({"name": "web", "host": "other.example.com"})),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::CONFLICT, "app_name_taken")
    );
    let r = call(
        &app,
        Method::POST,
        &apps_path,
        Some(&tok),
        Some(json!({"name": "web2", "host": "web.example.com"})),
    )
    .await;
    assert_eq!((r.status, r.error()), (StatusCode::CONFLICT, "route_taken"));
    let r = call(
        &app,
        Method::POST,
        "/v1/orgs",
        Some(&tok),
        Some(json!({"name": "acme"})),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::CONFLICT, "org_name_taken")
    );
    assert!(
        !r.text.contains("orgs_name_key"),
        "no constraint names: {}",
        r.text
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn request_ids_are_echoed_and_database_errors_show_only_the_id(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = router(&pool);
    let tok = token(&pool, t.org, t.user).await;

    let req = Request::get("/v1/regions")
        .header("authorization", format!("Bearer {tok}"))
        .header("x-request-id", "client-chosen-1")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-request-id"], "client-chosen-1");
    let r = get(&app, "/v1/nothing", &tok).await;
    let generated = r.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(generated.len() >= 16, "a generated id: {generated}");

    // The database goes away: a 500 that names the request id and nothing else; the
    // log line has the id and the cause.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    pool.close().await;
    let r = get(&app, &format!("/v1/orgs/{}", t.org), &tok).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.error(), "internal_error");
    let id = r.json["request_id"].as_str().unwrap();
    assert_eq!(
        r.json["message"],
        format!("internal error; quote request id {id}")
    );
    for leak in ["pool", "sqlx", "database", "closed", "postgres"] {
        assert!(
            !r.text.to_lowercase().contains(leak),
            "{leak} in {}",
            r.text
        );
    }
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains("request failed"))
        .map(str::to_string)
        .expect("the internal error is logged");
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["fields"]["request_id"], id, "{line}");
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["fields"]["error"].as_str().unwrap().contains("closed"),
        "the cause is logged: {line}"
    );
}

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn openapi_document_lists_the_routes(pool: PgPool) {
    let app = router(&pool);
    let r = call(&app, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.json["paths"].as_object().unwrap();
    for p in [
        "/v1/orgs",
        "/v1/orgs/{org_id}/apps/{app_id}/env",
        "/v1/orgs/{org_id}/events",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(r.json["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(loco_http::openapi().paths.paths.len(), paths.len());
}

#[test]
fn serve_refuses_to_start_without_a_kek() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loco-api"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://loco:pw@127.0.0.1:1/loco")
        .env_remove("LOCO_KEK")
        .env_remove("LOCO_KEK_FILE")
        .env("LOCO_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loco-api serve cannot start"), "{stderr}");
    assert!(
        stderr.contains("LOCO_KEK_FILE") && stderr.contains("LOCO_KEK"),
        "names the settings: {stderr}"
    );
}
