//! Browser logins: `GET /v1/auth/{github,google}/login` sends the browser to the
//! provider with a fresh `state` (plus PKCE, and a nonce for Google) and a binding
//! cookie; the provider sends it back to `.../callback?code&state`, where loco exchanges
//! the code, learns who the user is, drops the provider's token and starts a session.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ProviderError, denied, not_configured};
use super::flow::{self, clear_cookie};
use super::session::{self, SessionTokens};
use super::{github, google};
use crate::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use loco_crypto::Secret;
use loco_db::orgs::{self, Provider};

/// What a provider appends to the callback URL (other fields it adds, such as
/// `scope` or `authuser`, are ignored).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code (absent when the user declined).
    pub code: Option<String>,
    /// The `state` loco sent with the login.
    pub state: Option<String>,
    /// Set by the provider when the login did not happen, e.g. `access_denied`.
    pub error: Option<String>,
}

/// The part of a provider's callback both providers share: the login that sent the
/// browser (by `state` and the login cookie), then the code, unless the user declined.
async fn callback_code<'q>(
    ctx: &Ctx,
    provider: Provider,
    what: &'static str,
    q: &'q CallbackParams,
    headers: &HeaderMap,
) -> Result<(flow::FlowSecrets, &'q str), ApiError> {
    let secrets = flow::finish_web(ctx, provider, q.state.as_deref(), headers).await?;
    if q.error.is_some() {
        return Err(denied(what));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| super::error::bad_state("the callback carries no `code`"))?;
    Ok((secrets, code))
}

fn redirect_uri(ctx: &Ctx, provider: &str, what: &'static str) -> Result<String, ApiError> {
    let base = ctx
        .login
        .config
        .public_url
        .as_ref()
        .ok_or_else(|| not_configured(what))?;
    Ok(format!(
        "{}/v1/auth/{provider}/callback",
        base.as_str().trim_end_matches('/')
    ))
}

fn redirect_to(location: &str, cookie: axum::http::HeaderValue) -> Result<Response, ApiError> {
    let location = axum::http::HeaderValue::from_str(location).map_err(ApiError::internal)?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            ),
        ],
    )
        .into_response())
}

fn session_response(tokens: SessionTokens) -> Response {
    (
        [
            (header::SET_COOKIE, clear_cookie()),
            (
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            ),
        ],
        axum::Json(tokens),
    )
        .into_response()
}

/// Starts a browser login with GitHub: redirects to GitHub's authorization page.
#[utoipa::path(get, path = "/v1/auth/github/login", tag = "auth",
    responses((status = 302, description = "Redirect to GitHub's authorization page; sets the login cookie"),
        (status = 404, body = ErrorBody)))]
pub async fn github_login(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let cfg = ctx.login.github()?;
    if cfg.client_secret.is_none() {
        return Err(not_configured("GitHub"));
    }
    let redirect_uri = redirect_uri(&ctx, "github", "GitHub")?;
    let started = flow::start_web(&ctx, Provider::Github).await?;
    let mut url = cfg.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "read:user user:email")
        .append_pair("state", &started.state)
        .append_pair("code_challenge", &started.pkce_challenge)
        .append_pair("code_challenge_method", "S256");
    redirect_to(url.as_str(), started.cookie)
}

/// Where GitHub sends the browser back: completes the login and returns a session.
#[utoipa::path(get, path = "/v1/auth/github/callback", tag = "auth", params(CallbackParams),
    responses((status = 200, body = SessionTokens), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn github_callback(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let cfg = ctx.login.github()?;
    let secret = cfg
        .client_secret
        .as_ref()
        .ok_or_else(|| not_configured("GitHub"))?;
    let redirect_uri = redirect_uri(&ctx, "github", "GitHub")?;
    let http = ctx.login.http("GitHub")?;
    let (secrets, code) = callback_code(&ctx, Provider::Github, "GitHub", &q, &headers).await?;
    let verifier = secrets.pkce_verifier.as_deref().unwrap_or_default();
    let token = github::exchange_code(http, cfg, secret, code, verifier, &redirect_uri).await?;
    let user_id = github_user(&ctx, http, token).await?;
    Ok(session_response(session::issue(&ctx, user_id).await?))
}

/// Reads who GitHub's token belongs to and records the user; the token is dropped here.
pub(crate) async fn github_user(
    ctx: &Ctx,
    http: &reqwest::Client,
    token: Secret,
) -> Result<i64, ApiError> {
    let who = github::identity(http, &ctx.login.config.github_api_url, &token).await;
    drop(token);
    let who = who?;
    Ok(orgs::upsert_user(
        ctx.db(),
        Provider::Github,
        &who.id.to_string(),
        &who.login,
        who.email.as_deref(),
    )
    .await?)
}

/// Starts a browser login with Google: redirects to Google's authorization page.
#[utoipa::path(get, path = "/v1/auth/google/login", tag = "auth",
    responses((status = 302, description = "Redirect to Google's authorization page; sets the login cookie"),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn google_login(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let cfg = ctx.login.google()?;
    let redirect_uri = redirect_uri(&ctx, "google", "Google")?;
    let http = ctx.login.http("Google")?;
    let discovery = ctx.login.google.discovery(http, cfg).await?;
    let mut url = super::config::provider_url("google", &discovery.authorization_endpoint)
        .map_err(|_| {
            ApiError::from(ProviderError::malformed(
                "Google",
                "authorization endpoint is not https",
            ))
        })?;
    let started = flow::start_web(&ctx, Provider::Google).await?;
    url.query_pairs_mut()
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", &started.state)
        .append_pair("nonce", &started.nonce)
        .append_pair("code_challenge", &started.pkce_challenge)
        .append_pair("code_challenge_method", "S256");
    redirect_to(url.as_str(), started.cookie)
}

/// Where Google sends the browser back: validates the ID token and returns a session.
#[utoipa::path(get, path = "/v1/auth/google/callback", tag = "auth", params(CallbackParams),
    responses((status = 200, body = SessionTokens), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn google_callback(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let cfg = ctx.login.google()?;
    let redirect_uri = redirect_uri(&ctx, "google", "Google")?;
    let http = ctx.login.http("Google")?;
    let (secrets, code) = callback_code(&ctx, Provider::Google, "Google", &q, &headers).await?;
    let discovery = ctx.login.google.discovery(http, cfg).await?;
    let verifier = secrets.pkce_verifier.as_deref().unwrap_or_default();
    let id_token =
        google::exchange_code(http, cfg, &discovery, code, verifier, &redirect_uri).await?;
    let nonce = secrets.nonce.as_deref().unwrap_or_default();
    let who = match google::validate_fresh(&ctx.login.google, http, cfg, &id_token, nonce).await? {
        Ok(who) => who,
        Err(google::IdTokenError::EmailUnverified) => {
            return Err(ApiError::Forbidden {
                reason: "login_email_unverified",
                message: "Google did not confirm a verified email address for this account"
                    .to_string(),
                next_step: "verify the account's email address with Google, or log in with GitHub"
                    .to_string(),
            });
        }
        Err(e) => {
            tracing::warn!(problem = %e, "Google ID token refused");
            return Err(ApiError::Unauthenticated {
                reason: "login_id_token_invalid",
                message: format!("Google's ID token for this login was refused: {e}"),
                next_step: "start the login again; if it keeps failing, the operator checks --google-client-id and --google-issuer".to_string(),
            });
        }
    };
    let user_id = orgs::upsert_user(
        ctx.db(),
        Provider::Google,
        &who.sub,
        &who.email,
        Some(&who.email),
    )
    .await?;
    Ok(session_response(session::issue(&ctx, user_id).await?))
}
