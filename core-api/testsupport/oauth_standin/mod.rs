//! A local stand-in for GitHub's and Google's OAuth / OpenID Connect endpoints: an axum
//! server on 127.0.0.1:0 inside the test process, so loco-api's real provider clients
//! run against it. A [`Script`] says how it behaves (which user logs in, how a device
//! login proceeds, who collaborates on which repository, how an ID token is spoiled)
//! and records what it handed out, so tests can search for it where it must not be.
//!
//! ID tokens are RS256-signed with the test-only key in
//! `tests/fixtures/oauth-standin-test-only-rsa2048.pem`; the JWKS serves its public half.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const GITHUB_CLIENT_ID: &str = "standin-gh-client";
pub const GITHUB_CLIENT_SECRET: &str = "standin-gh-client-secret-1f2e3d";
pub const GOOGLE_CLIENT_ID: &str = "standin-google-client.apps.example";
pub const GOOGLE_CLIENT_SECRET: &str = "standin-google-client-secret-9a8b7c";
/// The deploy gate's server-side token, as the stand-in expects it.
pub const SERVER_TOKEN: &str = "ghs_standin_server_token_5d4c";
const KID: &str = "standin-key-1";
const PEM: &[u8] = include_bytes!("oauth-standin-test-only-rsa2048.pem");

/// One answer of the device-grant token endpoint, consumed in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStep {
    Pending,
    SlowDown,
    Expired,
    Denied,
    Success,
}

/// How the Google token endpoint spoils the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoogleMode {
    #[default]
    Good,
    WrongAudience,
    BadSignature,
    Expired,
    WrongNonce,
    WrongIssuer,
    UnverifiedEmail,
}

/// How the GitHub token endpoint answers a code exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeMode {
    #[default]
    Good,
    /// 200 with `{"error": "bad_verification_code"}`, as GitHub does.
    BadCode,
    /// 500 with an HTML body.
    ServerError,
}

#[derive(Debug, Clone)]
struct Grant {
    challenge: String,
    redirect_uri: String,
    nonce: Option<String>,
}

/// What the stand-in does and what it handed out.
#[derive(Debug, Default)]
pub struct Script {
    pub github_id: i64,
    pub github_login: String,
    pub exchange: ExchangeMode,
    pub device_steps: VecDeque<DeviceStep>,
    /// (repository, login) pairs that are collaborators.
    pub collaborators: HashSet<(String, String)>,
    pub collaborators_down: bool,
    pub collaborator_calls: usize,
    pub google_mode: GoogleMode,
    pub google_sub: String,
    pub google_email: String,
    /// Every provider access token, authorization code and device code handed out.
    pub handed_out: Vec<String>,
    grants: HashMap<String, Grant>,
    device_codes: HashSet<String>,
    access_tokens: HashSet<String>,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<Script>>,
    base: String,
    key: Arc<EncodingKey>,
}

pub struct Standin {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Standin {
    pub async fn start() -> Standin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            github_id: 4242,
            github_login: "octo-dev".to_string(),
            google_sub: "google-sub-777".to_string(),
            google_email: "dev@example.com".to_string(),
            ..Script::default()
        }));
        let shared = Shared {
            script: script.clone(),
            base: base.clone(),
            key: Arc::new(EncodingKey::from_rsa_pem(PEM).unwrap()),
        };
        let app = Router::new()
            .route("/gh/login/oauth/authorize", get(authorize))
            .route("/gh/login/oauth/access_token", post(github_token))
            .route("/gh/login/device/code", post(device_code))
            .route("/gh/api/user", get(github_user))
            .route("/gh/api/user/emails", get(github_emails))
            .route(
                "/gh/api/repos/{owner}/{repo}/collaborators/{login}",
                get(collaborator),
            )
            .route("/google/.well-known/openid-configuration", get(discovery))
            .route("/google/auth", get(authorize))
            .route("/google/token", post(google_token))
            .route("/google/jwks", get(jwks))
            .with_state(shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Standin { base, script, task }
    }

    pub fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub fn github_issuer(&self) -> String {
        format!("{}/gh", self.base)
    }

    pub fn google_issuer(&self) -> String {
        format!("{}/google", self.base)
    }
}

fn random() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Both providers' authorization pages: the user approves at once; the page sends the
/// browser back with a code (or `error=access_denied` when the state says `deny`).
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (StatusCode::BAD_REQUEST, "PKCE S256 required").into_response();
    }
    let code = format!("code_{}", random());
    let mut script = s.script.lock().unwrap();
    script.grants.insert(
        code.clone(),
        Grant {
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            redirect_uri: redirect_uri.clone(),
            nonce: q.get("nonce").cloned(),
        },
    );
    script.handed_out.push(code.clone());
    let mut url = reqwest::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn take_grant(script: &mut Script, form: &HashMap<String, String>) -> Result<Grant, &'static str> {
    let code = form.get("code").ok_or("invalid_request")?;
    let grant = script.grants.remove(code).ok_or("bad_verification_code")?;
    let verifier = form.get("code_verifier").ok_or("invalid_request")?;
    if challenge(verifier) != grant.challenge {
        return Err("invalid_grant");
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err("redirect_uri_mismatch");
    }
    Ok(grant)
}

fn new_access_token(script: &mut Script, prefix: &str) -> String {
    let t = format!("{prefix}{}", random());
    script.access_tokens.insert(t.clone());
    script.handed_out.push(t.clone());
    t
}

async fn github_token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    // GitHub answers form encoding unless asked for JSON; a client that forgets gets
    // an answer it cannot parse.
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return "error=accept_json_missing".into_response();
    }
    let mut script = s.script.lock().unwrap();
    if form.get("client_id").map(String::as_str) != Some(GITHUB_CLIENT_ID) {
        return Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    if form.get("grant_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:grant-type:device_code")
    {
        let known = form
            .get("device_code")
            .is_some_and(|d| script.device_codes.contains(d));
        if !known {
            return Json(json!({"error": "incorrect_device_code"})).into_response();
        }
        let step = script
            .device_steps
            .pop_front()
            .unwrap_or(DeviceStep::Pending);
        return Json(match step {
            DeviceStep::Pending => json!({"error": "authorization_pending"}),
            DeviceStep::SlowDown => json!({"error": "slow_down", "interval": 10}),
            DeviceStep::Expired => json!({"error": "expired_token"}),
            DeviceStep::Denied => json!({"error": "access_denied"}),
            DeviceStep::Success => {
                let t = new_access_token(&mut script, "gho_standin_");
                json!({"access_token": t, "token_type": "bearer", "scope": "read:user,user:email"})
            }
        })
        .into_response();
    }
    match script.exchange {
        ExchangeMode::Good => {}
        ExchangeMode::BadCode => {
            return Json(json!({"error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired."}))
            .into_response();
        }
        ExchangeMode::ServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "<html>unicorn</html>").into_response();
        }
    }
    if form.get("client_secret").map(String::as_str) != Some(GITHUB_CLIENT_SECRET) {
        return Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    if let Err(e) = take_grant(&mut script, &form) {
        return Json(json!({"error": e})).into_response();
    }
    let t = new_access_token(&mut script, "gho_standin_");
    Json(json!({"access_token": t, "token_type": "bearer", "scope": "read:user,user:email"}))
        .into_response()
}

async fn device_code(
    State(s): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("client_id").map(String::as_str) != Some(GITHUB_CLIENT_ID) {
        return Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let mut script = s.script.lock().unwrap();
    let dc = format!("devicecode_{}", random());
    script.device_codes.insert(dc.clone());
    script.handed_out.push(dc.clone());
    Json(json!({
        "device_code": dc,
        "user_code": "WDJB-MJHT",
        "verification_uri": format!("{}/gh/login/device", s.base),
        "expires_in": 900,
        "interval": 5
    }))
    .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

async fn github_user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let script = s.script.lock().unwrap();
    if !bearer(&headers).is_some_and(|t| script.access_tokens.contains(&t)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    Json(json!({"id": script.github_id, "login": script.github_login, "email": null}))
        .into_response()
}

async fn github_emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let script = s.script.lock().unwrap();
    if !bearer(&headers).is_some_and(|t| script.access_tokens.contains(&t)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!([
        {"email": "old@example.com", "primary": false, "verified": true},
        {"email": format!("{}@users.example.com", script.github_login), "primary": true, "verified": true}
    ]))
    .into_response()
}

async fn collaborator(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, login)): Path<(String, String, String)>,
) -> Response {
    let mut script = s.script.lock().unwrap();
    script.collaborator_calls += 1;
    if script.collaborators_down {
        return (StatusCode::BAD_GATEWAY, "down").into_response();
    }
    if bearer(&headers).as_deref() != Some(SERVER_TOKEN) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if script
        .collaborators
        .contains(&(format!("{owner}/{repo}"), login))
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn discovery(State(s): State<Shared>) -> Json<Value> {
    let issuer = format!("{}/google", s.base);
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"]
    }))
}

async fn jwks(State(s): State<Shared>) -> Json<JwkSet> {
    let mut jwk = Jwk::from_encoding_key(&s.key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(KID.to_string());
    Json(JwkSet { keys: vec![jwk] })
}

async fn google_token(
    State(s): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut script = s.script.lock().unwrap();
    if form.get("client_id").map(String::as_str) != Some(GOOGLE_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(GOOGLE_CLIENT_SECRET)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let grant = match take_grant(&mut script, &form) {
        Ok(g) => g,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
        }
    };
    let now = chrono::Utc::now().timestamp();
    let mode = script.google_mode;
    let mut claims = json!({
        "iss": format!("{}/google", s.base),
        "aud": GOOGLE_CLIENT_ID,
        "sub": script.google_sub,
        "email": script.google_email,
        "email_verified": true,
        "nonce": grant.nonce,
        "iat": now,
        "exp": now + 3600,
    });
    match mode {
        GoogleMode::Good | GoogleMode::BadSignature => {}
        GoogleMode::WrongAudience => claims["aud"] = json!("someone-elses-client"),
        GoogleMode::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        GoogleMode::WrongNonce => claims["nonce"] = json!("not-this-logins-nonce"),
        GoogleMode::WrongIssuer => claims["iss"] = json!("https://evil.example.com"),
        GoogleMode::UnverifiedEmail => claims["email_verified"] = json!(false),
    }
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(KID.to_string());
    let mut id_token = jsonwebtoken::encode(&h, &claims, &s.key).unwrap();
    if mode == GoogleMode::BadSignature {
        // Same header and claims, another signature: flip one byte of it.
        let (signed, sig) = id_token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[10] ^= 0x55;
        id_token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(raw));
    }
    let access = new_access_token(&mut script, "ya29.standin_");
    Json(json!({
        "access_token": access,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 3599,
        "scope": "openid email"
    }))
    .into_response()
}
