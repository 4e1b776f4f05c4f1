//! loco sessions: what a login hands out, how a session's access token authenticates a
//! request, and refresh and logout.
//!
//! The access token is short-lived (15 minutes by default) so a leaked one is worth
//! little; the refresh token (30 days) is accepted only by `POST /v1/auth/refresh`, which
//! rotates both. Both are stored only as SHA-256 (db::sessions).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Ctx;
use crate::auth::{Credential, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use loco_db::DbError;
use loco_db::events::{self, Actor};
use loco_db::orgs;
use loco_db::sessions::{self, ACCESS_PREFIX, NewSession, REFRESH_PREFIX, Refreshed, Rotation};
use loco_db::tokens::{Scope, hash};

/// A session's tokens, as a login or a refresh returns them. Shown once: only their
/// hashes are stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionTokens {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    /// Exchange at POST /v1/auth/refresh for new tokens before the access token expires.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub user: SessionUser,
}

/// Who the session acts for.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionUser {
    pub id: i64,
    /// `github` or `google`.
    pub provider: String,
    /// The GitHub login, or the Google email address.
    pub login: String,
}

fn chrono_ttl(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::minutes(15))
}

/// Starts a session for `user_id` (after a completed login).
pub async fn issue(ctx: &Ctx, user_id: i64) -> Result<SessionTokens, ApiError> {
    let access = sessions::generate(ACCESS_PREFIX).map_err(DbError::from)?;
    let refresh = sessions::generate(REFRESH_PREFIX).map_err(DbError::from)?;
    let now = Utc::now();
    let access_expires_at = now + chrono_ttl(ctx.login.config.access_ttl);
    let refresh_expires_at = now + chrono_ttl(ctx.login.config.refresh_ttl);
    let user = orgs::get_user(ctx.db(), user_id).await?;
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    let id = sessions::create(
        &mut *tx,
        &NewSession {
            user_id,
            access_sha256: access.sha256,
            access_expires_at,
            refresh_sha256: refresh.sha256,
            expires_at: refresh_expires_at,
        },
    )
    .await?;
    events::record_for_member(
        &mut *tx,
        user_id,
        &Actor::User(user_id),
        "session_started",
        &format!(
            "{} logged in with {} (session {id})",
            user.login, user.provider
        ),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    tracing::info!(user_id, session_id = id, provider = %user.provider, "session started");
    Ok(SessionTokens {
        access_token: access.plaintext.to_string(),
        access_expires_at,
        refresh_token: refresh.plaintext.to_string(),
        refresh_expires_at,
        token_type: "Bearer",
        user: SessionUser {
            id: user.id,
            provider: user.provider,
            login: user.login,
        },
    })
}

fn session_error(reason: &'static str, message: &str, next_step: &str) -> ApiError {
    ApiError::Unauthenticated {
        reason,
        message: message.to_string(),
        next_step: next_step.to_string(),
    }
}

const LOG_IN_AGAIN: &str =
    "log in again (loco login, or GET /v1/auth/github/login or /v1/auth/google/login)";

/// The caller behind a session access token (`loco-access_...`). A session reaches
/// every org its user is a member of; the role there decides, so its scope is the
/// widest one.
pub async fn authenticate(ctx: &Ctx, presented: &str) -> Result<Principal, ApiError> {
    let Some(s) = sessions::find_by_access(ctx.db(), &hash(presented)).await? else {
        return Err(session_error(
            "session_invalid",
            "the session access token is not known; it may have been replaced by a refresh",
            "use the newest access token, or get one with POST /v1/auth/refresh; otherwise log in again",
        ));
    };
    if s.revoked_at.is_some() {
        return Err(session_error(
            "session_revoked",
            "this session was ended (logout, or a reused refresh token)",
            LOG_IN_AGAIN,
        ));
    }
    let now = Utc::now();
    if s.expires_at <= now {
        return Err(session_error(
            "session_expired",
            "this session expired",
            LOG_IN_AGAIN,
        ));
    }
    if s.access_expires_at.is_none_or(|t| t <= now) {
        return Err(session_error(
            "access_token_expired",
            "the session's access token expired (they live a few minutes)",
            "get a new one with POST /v1/auth/refresh and your refresh token, then retry",
        ));
    }
    Ok(Principal {
        user_id: s.user_id,
        credential: Credential::Session { id: s.id },
        scope: Scope::Admin,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last login or refresh (`loco-refresh_...`).
    pub refresh_token: String,
}

/// Exchanges a refresh token for new session tokens. The refresh token is spent:
/// presenting it again ends the session (someone else may hold a copy).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = SessionTokens), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(ctx): State<Ctx>,
    Json(body): Json<RefreshRequest>,
) -> Result<axum::Json<SessionTokens>, ApiError> {
    if !body.refresh_token.starts_with(REFRESH_PREFIX) {
        return Err(session_error(
            "refresh_token_invalid",
            "this is not a loco refresh token",
            "send the refresh_token of your last login or refresh (it starts with loco-refresh_)",
        ));
    }
    let access = sessions::generate(ACCESS_PREFIX).map_err(DbError::from)?;
    let refresh = sessions::generate(REFRESH_PREFIX).map_err(DbError::from)?;
    let now = Utc::now();
    let next = Rotation {
        access_sha256: access.sha256,
        access_expires_at: now + chrono_ttl(ctx.login.config.access_ttl),
        refresh_sha256: refresh.sha256,
        expires_at: now + chrono_ttl(ctx.login.config.refresh_ttl),
    };
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    let outcome = sessions::rotate(&mut tx, &hash(&body.refresh_token), &next).await?;
    tx.commit().await.map_err(DbError::from)?;
    let user_id = match outcome {
        Refreshed::Rotated { user_id, .. } => user_id,
        Refreshed::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(
                session_id,
                user_id,
                "a rotated refresh token was presented again; the session is revoked"
            );
            events::record_for_member(
                ctx.db(),
                user_id,
                &Actor::System("loco-api"),
                "refresh_token_reused",
                &format!(
                    "an already rotated refresh token of session {session_id} was presented again \
                     (a leaked token or a confused client); the session was ended"
                ),
            )
            .await?;
            return Err(session_error(
                "refresh_token_reused",
                "this refresh token was already used; to be safe the whole session was ended",
                LOG_IN_AGAIN,
            ));
        }
        Refreshed::Revoked => {
            return Err(session_error(
                "session_revoked",
                "this session was ended",
                LOG_IN_AGAIN,
            ));
        }
        Refreshed::Expired => {
            return Err(session_error(
                "session_expired",
                "this session expired",
                LOG_IN_AGAIN,
            ));
        }
        Refreshed::Unknown => {
            return Err(session_error(
                "refresh_token_invalid",
                "the refresh token is not known",
                LOG_IN_AGAIN,
            ));
        }
    };
    let user = orgs::get_user(ctx.db(), user_id).await?;
    Ok(axum::Json(SessionTokens {
        access_token: access.plaintext.to_string(),
        access_expires_at: next.access_expires_at,
        refresh_token: refresh.plaintext.to_string(),
        refresh_expires_at: next.expires_at,
        token_type: "Bearer",
        user: SessionUser {
            id: user.id,
            provider: user.provider,
            login: user.login,
        },
    }))
}

/// Ends the session of the bearer access token: neither of its tokens works afterwards.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "The session is ended"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn logout(State(ctx): State<Ctx>, p: Principal) -> Result<StatusCode, ApiError> {
    let Credential::Session { id } = p.credential else {
        return Err(ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            reason: "not_a_session",
            message: "logout ends login sessions; this request carries an API token".to_string(),
            next_step: "API tokens end at their expiry; ask an operator to revoke one that leaked",
        });
    };
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    sessions::revoke(&mut *tx, id).await?;
    events::record_for_member(
        &mut *tx,
        p.user_id,
        &p.actor(),
        "session_ended",
        &format!("session {id} ended by logout"),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    tracing::info!(
        session_id = id,
        user_id = p.user_id,
        "session ended by logout"
    );
    Ok(StatusCode::NO_CONTENT)
}
