//! Logins and sessions through loco-api's real router, against a local stand-in for
//! GitHub and Google (tests/oauth_standin): browser and device logins, Google ID token
//! validation, refresh rotation with reuse detection, logout, expiry, the deploy gate,
//! and that the provider's tokens are never kept, shown or logged.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/oauth_standin/mod.rs"]
mod oauth_standin;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::*;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use loco_crypto::Secret;
use loco_db::orgs::{self, Provider, Role};
use loco_http::login::config::{GithubConfig, GoogleConfig};
use loco_http::login::{AuthConfig, Login, check_deploy_gate};
use loco_http::{Ctx, router as api_router};
use oauth_standin::*;
use reqwest::Url;
use serde_json::json;
use sqlx::PgPool;

const PUBLIC: &str = "http://loco.test";

fn config(s: &Standin) -> AuthConfig {
    let gh = s.github_issuer();
    AuthConfig {
        public_url: Some(Url::parse(PUBLIC).unwrap()),
        github: Some(GithubConfig {
            client_id: GITHUB_CLIENT_ID.to_string(),
            client_secret: Some(Secret::new(GITHUB_CLIENT_SECRET)),
            authorize_url: Url::parse(&format!("{gh}/login/oauth/authorize")).unwrap(),
            token_url: Url::parse(&format!("{gh}/login/oauth/access_token")).unwrap(),
            device_code_url: Url::parse(&format!("{gh}/login/device/code")).unwrap(),
        }),
        google: Some(GoogleConfig {
            client_id: GOOGLE_CLIENT_ID.to_string(),
            client_secret: Secret::new(GOOGLE_CLIENT_SECRET),
            issuer: s.google_issuer(),
        }),
        github_api_url: Url::parse(&format!("{gh}/api")).unwrap(),
        github_token: Some(Secret::new(SERVER_TOKEN)),
        http_timeout: Duration::from_secs(5),
        ..AuthConfig::default()
    }
}

fn login_ctx(pool: &PgPool, cfg: AuthConfig) -> Ctx {
    ctx(pool).with_login(Login::new(cfg).unwrap())
}

/// A browser that does not follow redirects, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a browser login leaves: the callback path (with code and state) and the cookie.
struct AtCallback {
    path: String,
    cookie: String,
}

/// Starts a browser login at loco, lets the stand-in approve it, and stops where the
/// provider sends the browser back to loco.
async fn to_callback(app: &Router, provider: &str) -> AtCallback {
    let r = call(
        app,
        Method::GET,
        &format!("/v1/auth/{provider}/login"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.headers[header::LOCATION].to_str().unwrap().to_string();
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let url = Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{PUBLIC}/v1/auth/{provider}/callback")
    );
    let back = browser().get(location).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    let back = back.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    AtCallback {
        path: back.strip_prefix(PUBLIC).unwrap().to_string(),
        cookie,
    }
}

async fn callback(app: &Router, at: &AtCallback, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder().method(Method::GET).uri(&at.path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

async fn web_login(app: &Router, provider: &str) -> Reply {
    let at = to_callback(app, provider).await;
    callback(app, &at, Some(&at.cookie)).await
}

fn access(r: &Reply) -> String {
    r.json["access_token"].as_str().expect(&r.text).to_string()
}

fn refresh_token(r: &Reply) -> String {
    r.json["refresh_token"].as_str().expect(&r.text).to_string()
}

async fn refresh(app: &Router, token: &str) -> Reply {
    call(
        app,
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": token })),
    )
    .await
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn github_browser_login_gives_a_session_that_reaches_the_users_orgs(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));

    let r = web_login(&app, "github").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(access(&r).starts_with("loco-access_"));
    assert!(refresh_token(&r).starts_with("loco-refresh_"));
    assert_eq!(r.json["user"]["provider"], "github");
    assert_eq!(r.json["user"]["login"], "octo-dev");
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the login cookie is cleared"
    );
    let user_id = r.json["user"]["id"].as_i64().unwrap();
    let stored = orgs::get_user(&pool, user_id).await.unwrap();
    assert_eq!(
        (stored.provider_uid.as_str(), stored.email.as_deref()),
        ("4242", Some("octo-dev@users.example.com")),
        "GitHub's numeric id and the verified primary email"
    );
    let tok = access(&r);

    // A session reaches every org of its user, each with the user's role there.
    let other = db_support_tenant(&pool, "acme").await;
    let mut tx = pool.begin().await.unwrap();
    let mine = orgs::create_org(&mut tx, "octo-org", user_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    orgs::add_member(&pool, other, user_id, Role::Viewer)
        .await
        .unwrap();
    let r = get(&app, "/v1/orgs", &tok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let roles: Vec<_> = r.json["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_i64().unwrap(),
                o["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want = vec![(other, "viewer".to_string()), (mine, "owner".to_string())];
    want.sort();
    assert_eq!(roles, want);
    assert_eq!(
        get(&app, &format!("/v1/orgs/{mine}"), &tok).await.status,
        StatusCode::OK
    );

    // Roles are enforced per org: a viewer cannot change the gate, an owner can.
    let r = call(
        &app,
        Method::PUT,
        &format!("/v1/orgs/{other}/deploy-gate"),
        Some(&tok),
        Some(json!({"repos": ["acme/app"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error(), "role_insufficient");
    let r = call(
        &app,
        Method::PUT,
        &format!("/v1/orgs/{mine}/deploy-gate"),
        Some(&tok),
        Some(json!({"repos": ["octo/app"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // An org the user is not a member of reads as missing.
    let stranger = db_support_tenant(&pool, "stranger").await;
    let r = get(&app, &format!("/v1/orgs/{stranger}"), &tok).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

/// An org owned by a fresh user (not the logged-in one).
async fn db_support_tenant(pool: &PgPool, name: &str) -> i64 {
    let owner = orgs::upsert_user(pool, Provider::Github, &format!("uid-{name}"), name, None)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let org = orgs::create_org(&mut tx, name, owner).await.unwrap();
    tx.commit().await.unwrap();
    org
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_callback_refuses_a_missing_unknown_used_or_foreign_state(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));

    let r = call(
        &app,
        Method::GET,
        "/v1/auth/github/callback?code=x",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "login_state_invalid");
    let r = call(
        &app,
        Method::GET,
        "/v1/auth/github/callback?code=x&state=forged",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "login_state_invalid");

    // The right state in a browser that did not start the login (login CSRF): refused,
    // and the state is spent, so the right browser cannot use it afterwards either.
    let at = to_callback(&app, "github").await;
    let r = callback(&app, &at, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "login_state_invalid");
    assert!(r.json["message"].as_str().unwrap().contains("browser"));
    let r = callback(&app, &at, Some("loco_login=someone-elses")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = callback(&app, &at, Some(&at.cookie)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // A state of a GitHub login is not one of a Google login.
    let at = to_callback(&app, "github").await;
    let google_path = at.path.replace("/github/", "/google/");
    let r = send(
        &app,
        Request::builder()
            .uri(&google_path)
            .header(header::COOKIE, &at.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // A completed login's state cannot be replayed.
    let at = to_callback(&app, "github").await;
    assert_eq!(
        callback(&app, &at, Some(&at.cookie)).await.status,
        StatusCode::OK
    );
    let r = callback(&app, &at, Some(&at.cookie)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "login_state_invalid");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn failed_code_exchanges_are_clear_errors_not_500s(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));

    s.script().exchange = ExchangeMode::BadCode;
    let r = web_login(&app, "github").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "login_code_rejected");
    assert!(r.text.contains("bad_verification_code"), "{}", r.text);

    s.script().exchange = ExchangeMode::ServerError;
    let r = web_login(&app, "github").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.error(), "login_provider_unavailable");
    assert!(
        !r.text.contains("unicorn"),
        "no raw provider answer: {}",
        r.text
    );

    // A user who declines at the provider.
    s.script().exchange = ExchangeMode::Good;
    let at = to_callback(&app, "github").await;
    let declined = AtCallback {
        path: at.path.replace("code=", "error=access_denied&ignored="),
        cookie: at.cookie.clone(),
    };
    let r = callback(&app, &declined, Some(&at.cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error(), "login_denied");

    // GitHub unreachable: a closed port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut cfg = config(&s);
    cfg.github.as_mut().unwrap().token_url =
        Url::parse(&format!("{dead}/login/oauth/access_token")).unwrap();
    let app = api_router(login_ctx(&pool, cfg));
    let r = web_login(&app, "github").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.error(), "login_provider_unavailable");
}

async fn device_start(app: &Router) -> String {
    let r = call(app, Method::POST, "/v1/auth/github/device", None, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["user_code"], "WDJB-MJHT");
    assert_eq!(r.json["interval"], 5);
    assert!(
        r.json["verification_uri"]
            .as_str()
            .unwrap()
            .ends_with("/gh/login/device")
    );
    assert!(
        r.json.get("device_code").is_none(),
        "GitHub's device code stays on the server"
    );
    let id = r.json["device_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("loco-device_"));
    id
}

async fn poll(app: &Router, device_id: &str) -> Reply {
    call(
        app,
        Method::POST,
        "/v1/auth/github/device/poll",
        None,
        Some(json!({ "device_id": device_id })),
    )
    .await
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn device_login_waits_slows_down_and_completes_or_expires(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));

    s.script().device_steps = [
        DeviceStep::Pending,
        DeviceStep::SlowDown,
        DeviceStep::Success,
    ]
    .into_iter()
    .collect();
    let id = device_start(&app).await;
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json["status"], "authorization_pending");
    assert_eq!(r.json["interval"], 5);
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json["status"], "slow_down");
    assert_eq!(r.json["interval"], 10);
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["user"]["login"], "octo-dev");
    let tok = access(&r);
    assert_eq!(get(&app, "/v1/orgs", &tok).await.status, StatusCode::OK);
    // Finished: the device id is spent.
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.error(), "device_login_not_found");

    s.script().device_steps = [DeviceStep::Pending, DeviceStep::Expired]
        .into_iter()
        .collect();
    let id = device_start(&app).await;
    assert_eq!(poll(&app, &id).await.status, StatusCode::ACCEPTED);
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert_eq!(r.error(), "device_code_expired");
    assert_eq!(poll(&app, &id).await.status, StatusCode::NOT_FOUND);

    s.script().device_steps = [DeviceStep::Denied].into_iter().collect();
    let id = device_start(&app).await;
    let r = poll(&app, &id).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error(), "login_denied");

    let r = poll(&app, "loco-device_0000").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = poll(&app, "anything").await;
    assert_eq!(r.error(), "device_login_not_found");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn google_login_validates_the_id_token(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));

    let r = web_login(&app, "google").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["user"]["provider"], "google");
    assert_eq!(r.json["user"]["login"], "dev@example.com");
    assert_eq!(
        get(&app, "/v1/orgs", &access(&r)).await.status,
        StatusCode::OK
    );

    for (mode, words) in [
        (GoogleMode::WrongAudience, "audience"),
        (GoogleMode::BadSignature, "signature"),
        (GoogleMode::Expired, "expired"),
        (GoogleMode::WrongNonce, "nonce"),
        (GoogleMode::WrongIssuer, "issuer"),
    ] {
        s.script().google_mode = mode;
        let r = web_login(&app, "google").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{mode:?}: {}", r.text);
        assert_eq!(r.error(), "login_id_token_invalid", "{mode:?}");
        assert!(r.text.contains(words), "{mode:?}: {}", r.text);
        assert!(r.json.get("access_token").is_none());
    }
    s.script().google_mode = GoogleMode::UnverifiedEmail;
    let r = web_login(&app, "google").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.error(), "login_email_unverified");

    // Only the one good login made a session.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));
    // The user is a member of an org before logging in: that org's audit trail names
    // their sessions.
    let org = db_support_tenant(&pool, "acme").await;
    let first = web_login(&app, "github").await;
    let (a1, r1) = (access(&first), refresh_token(&first));
    let user_id = first.json["user"]["id"].as_i64().unwrap();
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')")
        .bind(org)
        .bind(user_id)
        .execute(&pool)
        .await
        .unwrap();
    let audit = |reason: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT message FROM events WHERE org_id = $1 AND reason = $2 ORDER BY id",
            )
            .bind(org)
            .bind(reason)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };

    let second = refresh(&app, &r1).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let (a2, r2) = (access(&second), refresh_token(&second));
    assert!(a2 != a1 && r2 != r1);
    assert_eq!(get(&app, "/v1/orgs", &a2).await.status, StatusCode::OK);
    let r = get(&app, "/v1/orgs", &a1).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the replaced access token"
    );
    assert_eq!(r.error(), "session_invalid");

    // r1 again: someone else holds a copy, so the whole session ends.
    let r = refresh(&app, &r1).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.error(), "refresh_token_reused");
    let r = get(&app, "/v1/orgs", &a2).await;
    assert_eq!(r.error(), "session_revoked");
    let r = refresh(&app, &r2).await;
    assert_eq!(r.error(), "session_revoked");
    let reused = audit("refresh_token_reused").await;
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert!(reused[0].contains("session was ended"), "{reused:?}");
    assert!(
        !reused[0].contains(&r1),
        "the token itself is never in the trail"
    );

    // Refresh tokens are not bearer credentials, and junk is not a refresh token.
    let other = web_login(&app, "github").await;
    let started = audit("session_started").await;
    assert_eq!(
        started.len(),
        1,
        "the login after joining the org: {started:?}"
    );
    assert!(started[0].contains("with github"), "{started:?}");
    let r = call(
        &app,
        Method::POST,
        "/v1/auth/logout",
        Some(&access(&other)),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(audit("session_ended").await.len(), 1);
    let other = web_login(&app, "github").await;
    let r = get(&app, "/v1/orgs", &refresh_token(&other)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("/v1/auth/refresh")
    );
    let r = refresh(&app, "loco-refresh_00").await;
    assert_eq!(r.error(), "refresh_token_invalid");
    let r = refresh(&app, &access(&other)).await;
    assert_eq!(r.error(), "refresh_token_invalid");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn logout_ends_the_session_and_expired_access_tokens_say_refresh(pool: PgPool) {
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));
    let r = web_login(&app, "github").await;
    let (tok, rt) = (access(&r), refresh_token(&r));
    let r = call(&app, Method::POST, "/v1/auth/logout", Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = get(&app, "/v1/orgs", &tok).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error(), "session_revoked");
    assert_eq!(refresh(&app, &rt).await.error(), "session_revoked");
    let r = call(&app, Method::POST, "/v1/auth/logout", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // An API token is not a session.
    let t = db_support_tenant(&pool, "acme").await;
    let owner = orgs::upsert_user(&pool, Provider::Github, "uid-acme", "acme", None)
        .await
        .unwrap();
    let api_tok = token(&pool, t, owner).await;
    let r = call(&app, Method::POST, "/v1/auth/logout", Some(&api_tok), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "not_a_session");

    // Access tokens that expire at once: 401 that says how to get a new one.
    let mut cfg = config(&s);
    cfg.access_ttl = Duration::ZERO;
    let app = api_router(login_ctx(&pool, cfg));
    let r = web_login(&app, "github").await;
    let r2 = get(&app, "/v1/orgs", &access(&r)).await;
    assert_eq!(r2.status, StatusCode::UNAUTHORIZED, "{}", r2.text);
    assert_eq!(r2.error(), "access_token_expired");
    assert!(
        r2.json["next_step"]
            .as_str()
            .unwrap()
            .contains("POST /v1/auth/refresh")
    );
    assert_eq!(
        refresh(&app, &refresh_token(&r)).await.status,
        StatusCode::OK
    );
}

/// Collects every log line of the test (all targets, all levels).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// The process-wide log of this test binary. Global rather than a thread-local default:
/// tracing caches per call site whether anyone listens, and a test thread without a
/// subscriber can make a thread-local one miss events.
fn capture_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(logs.clone())
                .finish(),
        )
        .expect("no other global subscriber in this test binary");
        logs
    })
    .clone()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn provider_tokens_and_secrets_are_never_stored_shown_or_logged(pool: PgPool) {
    let logs = capture_logs();
    let s = Standin::start().await;
    let app = api_router(login_ctx(&pool, config(&s)));
    let mut shown = String::new();
    for provider in ["github", "google"] {
        let r = web_login(&app, provider).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        shown += &r.text;
        shown += &format!("{:?}", r.headers);
    }
    s.script().device_steps = [DeviceStep::Pending, DeviceStep::Success]
        .into_iter()
        .collect();
    let id = device_start(&app).await;
    for _ in 0..2 {
        let r = poll(&app, &id).await;
        shown += &r.text;
    }
    // And a failed exchange, whose error must not echo anything either.
    s.script().exchange = ExchangeMode::BadCode;
    shown += &web_login(&app, "github").await.text;

    let handed_out = s.script().handed_out.clone();
    assert!(
        handed_out
            .iter()
            .filter(|t| t.starts_with("gho_") || t.starts_with("ya29."))
            .count()
            >= 3,
        "the logins really got provider tokens: {handed_out:?}"
    );
    let mut secrets = handed_out;
    secrets.extend([GITHUB_CLIENT_SECRET, GOOGLE_CLIENT_SECRET, SERVER_TOKEN].map(str::to_string));

    // Every row of every table, as text.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "sessions") && tables.iter().any(|t| t == "login_flows"));
    let mut dump = String::new();
    for t in &tables {
        // Table names come from the catalogue, not from input.
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT string_agg(x::text, E'\\n') FROM \"{t}\" x"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        dump += &rows.unwrap_or_default();
    }
    assert!(dump.contains("octo-dev"), "the dump has the users: {dump}");
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logged.contains("session started"), "logs were captured");
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "{secret} is in the database"
        );
        assert!(
            !shown.contains(secret.as_str()),
            "{secret} was shown to a client"
        );
        assert!(!logged.contains(secret.as_str()), "{secret} was logged");
    }
    // Nor are loco's own session tokens stored in the clear.
    let r = web_login(&app, "google").await;
    let dump_after: Option<String> =
        sqlx::query_scalar("SELECT string_agg(x::text, E'\\n') FROM sessions x")
            .fetch_one(&pool)
            .await
            .unwrap();
    let dump_after = dump_after.unwrap();
    assert!(!dump_after.contains(&access(&r)) && !dump_after.contains(&refresh_token(&r)));
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn unconfigured_providers_answer_with_a_next_step(pool: PgPool) {
    let app = router(&pool);
    for (method, path) in [
        (Method::GET, "/v1/auth/github/login"),
        (Method::GET, "/v1/auth/github/callback?code=x&state=y"),
        (Method::POST, "/v1/auth/github/device"),
        (Method::GET, "/v1/auth/google/login"),
    ] {
        let r = call(&app, method, path, None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.error(), "login_provider_not_configured", "{path}");
    }
    // GitHub without a public URL: device logins work, browser logins do not.
    let s = Standin::start().await;
    let mut cfg = config(&s);
    cfg.public_url = None;
    cfg.google = None;
    let app = api_router(login_ctx(&pool, cfg));
    let r = call(&app, Method::GET, "/v1/auth/github/login", None, None).await;
    assert_eq!(r.error(), "login_provider_not_configured");
    let r = call(&app, Method::GET, "/v1/auth/google/login", None, None).await;
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("--google-client-id")
    );
    device_start(&app).await;

    let doc = loco_http::openapi();
    let paths = serde_json::to_value(&doc).unwrap()["paths"].clone();
    for p in [
        "/v1/auth/github/login",
        "/v1/auth/github/callback",
        "/v1/auth/github/device",
        "/v1/auth/github/device/poll",
        "/v1/auth/google/login",
        "/v1/auth/google/callback",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/orgs/{org_id}/deploy-gate",
    ] {
        assert!(paths.get(p).is_some(), "{p} missing from /openapi.json");
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_deploy_gate_admits_collaborators_only_and_fails_closed(pool: PgPool) {
    let s = Standin::start().await;
    let ctx = login_ctx(&pool, config(&s));
    let app = api_router(ctx.clone());
    let gh = web_login(&app, "github").await;
    let gh_user = gh.json["user"]["id"].as_i64().unwrap();
    let google = web_login(&app, "google").await;
    let google_user = google.json["user"]["id"].as_i64().unwrap();
    let mut tx = pool.begin().await.unwrap();
    let org = orgs::create_org(&mut tx, "gated", gh_user).await.unwrap();
    tx.commit().await.unwrap();
    orgs::add_member(&pool, org, google_user, Role::Member)
        .await
        .unwrap();
    let path = format!("/v1/orgs/{org}/deploy-gate");
    let owner_tok = access(&gh);

    // Gate off: anyone deploys, GitHub is not asked.
    check_deploy_gate(&ctx, org, gh_user).await.unwrap();
    check_deploy_gate(&ctx, org, google_user).await.unwrap();
    assert_eq!(s.script().collaborator_calls, 0);

    // Setting it: validated, owners/admins only.
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(&owner_tok),
        Some(json!({"repos": ["not a repo"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(&access(&google)),
        Some(json!({"repos": ["x/y"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(&owner_tok),
        Some(json!({"repos": ["loco-dev/loco", "loco-dev/seeds", "loco-dev/loco"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["repos"], json!(["loco-dev/loco", "loco-dev/seeds"]));
    assert_eq!(get(&app, &path, &owner_tok).await.json, r.json);

    // Not a collaborator of any listed repository: 403 with a next step.
    let e = check_deploy_gate(&ctx, org, gh_user).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::FORBIDDEN);
    assert_eq!(e.reason(), "deploy_gate_not_collaborator");
    assert!(e.to_string().contains("octo-dev"), "{e}");
    // A Google user has no GitHub login to check.
    let e = check_deploy_gate(&ctx, org, google_user).await.unwrap_err();
    assert_eq!(e.reason(), "deploy_gate_not_collaborator");
    assert!(e.to_string().contains("google"), "{e}");

    // Every change that starts a rollout passes the same gate, not only a deploy.
    let app_id = gated_app(&pool, org, gh_user).await;
    for (method, what, body) in [
        (Method::PUT, "env", json!({"A": "1"})),
        (Method::POST, "scale", json!({"replicas": 2})),
        (Method::POST, "rollback", json!({})),
        (Method::POST, "wake", json!({})),
        (Method::POST, "sleep", json!({})),
        (Method::POST, "deployments", json!({"image": "team/app:v1"})),
    ] {
        let r = call(
            &app,
            method,
            &format!("/v1/orgs/{org}/apps/{app_id}/{what}"),
            Some(&owner_tok),
            Some(body),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "deploy_gate_not_collaborator"),
            "{what}: {}",
            r.text
        );
    }

    // A collaborator of the second repository deploys.
    s.script()
        .collaborators
        .insert(("loco-dev/seeds".to_string(), "octo-dev".to_string()));
    let fresh = login_ctx(&pool, config(&s));
    check_deploy_gate(&fresh, org, gh_user).await.unwrap();
    let calls = s.script().collaborator_calls;
    // The answer is reused for a while, even if GitHub goes away meanwhile.
    s.script().collaborators_down = true;
    check_deploy_gate(&fresh, org, gh_user).await.unwrap();
    assert_eq!(
        s.script().collaborator_calls,
        calls,
        "answered from the cache"
    );

    // GitHub unreachable and nothing cached: closed, 503.
    let cold = login_ctx(&pool, config(&s));
    let e = check_deploy_gate(&cold, org, gh_user).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(e.reason(), "deploy_gate_unavailable");

    // No server-side token configured: closed too.
    s.script().collaborators_down = false;
    let mut cfg = config(&s);
    cfg.github_token = None;
    let e = check_deploy_gate(&login_ctx(&pool, cfg), org, gh_user)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "deploy_gate_unavailable");

    // Turning it off again.
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(&owner_tok),
        Some(json!({"repos": []})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    check_deploy_gate(&cold, org, google_user).await.unwrap();
}

/// An app of `org` (on a cluster and workspace of its own), never deployed.
async fn gated_app(pool: &PgPool, org: i64, user: i64) -> i64 {
    use loco_db::{apps, clusters, events::Actor, kubeconfig::InlineKubeconfig, workspaces};
    let mut tx = pool.begin().await.unwrap();
    let region = clusters::upsert_region(&mut *tx, "hetzner", "fsn1")
        .await
        .unwrap();
    let kubeconfig =
        InlineKubeconfig::parse(Secret::new("apiVersion: v1\nkind: Config\n")).unwrap();
    let cluster = clusters::create(
        &mut tx,
        &kek(),
        region,
        "gated",
        "https://127.0.0.1:6443",
        &kubeconfig,
    )
    .await
    .unwrap();
    let actor = Actor::User(user);
    let ws = workspaces::create(&mut tx, org, cluster, "default", &actor)
        .await
        .unwrap();
    let app = apps::NewApp {
        org_id: org,
        workspace_id: ws,
        name: "web",
        kind: "service",
        host: "web.deploy-app.com",
        path_prefix: "/",
        ports: json!([{"name": "http", "port": 8080, "protocol": "http", "routed": true}]),
        sleep_enabled: false,
        sleep_idle_window_seconds: 1800,
        grpc_services: &[],
    };
    let id = apps::create(&mut tx, &kek(), &app, &actor).await.unwrap();
    tx.commit().await.unwrap();
    id
}
