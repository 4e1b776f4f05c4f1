//! A secret env value, once PUT, comes back in no API response (env, app, events, the
//! OpenAPI document, error responses) and in no log line, even at trace level.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use api_support::*;
use axum::http::{Method, StatusCode};
use db_support::{revision_with_env, tenant};
use serde_json::json;
use sqlx::PgPool;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
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
async fn an_env_value_is_in_no_response_and_no_log(pool: PgPool) {
    // The only test in this binary, so the global subscriber sees every thread.
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_current_span(true)
        .with_writer(move || writer.clone())
        .init();

    let mut random = [0u8; 12];
    getrandom::fill(&mut random).unwrap();
    let canary = format!("canary-{}", hex::encode(random));

    let t = tenant(&pool, &kek(), "acme").await;
    let app_id = db_support::app(&pool, &kek(), &t, "web").await;
    revision_with_env(&pool, &kek(), app_id, &[]).await;
    let app = router(&pool);
    let tok = token(&pool, t.org, t.user).await;
    let base = format!("/v1/orgs/{}/apps/{app_id}", t.org);

    let put = call(
        &app,
        Method::PUT,
        &format!("{base}/env"),
        Some(&tok),
        Some(json!({"SECRET_TOKEN": canary, "PLAIN": "x"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text);
    let request_id = put.headers["x-request-id"].to_str().unwrap().to_string();

    let mut responses = vec![put];
    // Refused writes carrying the value must not echo it either.
    for body in [
        json!({"1BAD": canary}),
        json!({"OK": canary, "ALSO": ["not", "a", "string"]}),
        json!({"OK": format!("{canary}{}", "x".repeat(40 * 1024))}),
    ] {
        let r = call(
            &app,
            Method::PUT,
            &format!("{base}/env"),
            Some(&tok),
            Some(body),
        )
        .await;
        assert!(r.status.is_client_error(), "{}", r.text);
        responses.push(r);
    }
    for path in [
        format!("{base}/env"),
        base.clone(),
        format!("/v1/orgs/{}/events?limit=200", t.org),
        format!("/v1/orgs/{}/events?app_id={app_id}", t.org),
        format!("/v1/orgs/{}/workspaces/{}/apps", t.org, t.workspace),
        "/openapi.json".to_string(),
    ] {
        let r = get(&app, &path, &tok).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        responses.push(r);
    }
    let env = &responses[responses.len() - 6];
    assert_eq!(
        env.json["names"],
        json!(["PLAIN", "SECRET_TOKEN"]),
        "names are listed"
    );

    for r in &responses {
        assert!(
            !r.text.contains(&canary),
            "the secret is in a response: {}",
            r.text
        );
        for (name, value) in &r.headers {
            assert!(
                !value
                    .as_bytes()
                    .windows(canary.len())
                    .any(|w| w == canary.as_bytes()),
                "in header {name}"
            );
        }
    }
    let logs = logs.text();
    assert!(
        logs.contains(&request_id),
        "the log capture works: {} bytes captured",
        logs.len()
    );
    assert!(!logs.contains(&canary), "the secret is in the logs");
    // Log lines of a request carry its id and its org.
    assert!(
        logs.lines()
            .any(|l| l.contains(&request_id) && l.contains(&format!("\"org_id\":{}", t.org))),
        "no log line with both the request id and the org id"
    );
    // And it is really stored (encrypted): the API decrypts nothing, the database has a row.
    let stored = db_support::count(&pool, "SELECT count(*) FROM app_revision_env e JOIN app_revisions r ON r.id = e.revision_id WHERE r.app_id = $1 AND e.name = 'SECRET_TOKEN'", app_id).await;
    assert_eq!(stored, 1);
}
