//! The CLI's GitHub login (OAuth device flow): `POST /v1/auth/github/device` starts it
//! and returns the code the user enters at GitHub; the CLI then polls
//! `POST /v1/auth/github/device/poll` with loco's device id until GitHub says yes, no,
//! or the code expired. GitHub's device code stays on the server, sealed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::denied;
use super::flow::{self, FlowSecrets};
use super::github::{self, DevicePoll};
use super::session::{self, SessionTokens};
use super::web::github_user;
use crate::Ctx;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use loco_db::DbError;
use loco_db::orgs::Provider;
use loco_db::sessions::{self, DEVICE_PREFIX, FlowKind, NewFlow};
use loco_db::tokens::hash;

/// A started device login: show `user_code` and `verification_uri` to the user, then
/// poll with `device_id` every `interval` seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStart {
    /// loco's id of this login; send it to POST /v1/auth/github/device/poll.
    pub device_id: String,
    /// The code the user enters at `verification_uri`.
    pub user_code: String,
    pub verification_uri: String,
    /// Seconds to wait between polls.
    pub interval: u64,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// A device login that is not finished yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePending {
    /// `authorization_pending` (the user has not entered the code yet) or `slow_down`
    /// (poll less often).
    pub status: &'static str,
    /// Seconds to wait before the next poll.
    pub interval: u64,
    pub message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePollRequest {
    pub device_id: String,
}

/// Starts a GitHub login for a device without a browser (the CLI).
#[utoipa::path(post, path = "/v1/auth/github/device", tag = "auth",
    responses((status = 201, body = DeviceStart), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn github_device_start(
    State(ctx): State<Ctx>,
) -> Result<(StatusCode, axum::Json<DeviceStart>), ApiError> {
    let cfg = ctx.login.github()?;
    let http = ctx.login.http("GitHub")?;
    let started = github::start_device(http, cfg).await?;
    let handle = sessions::generate(DEVICE_PREFIX).map_err(DbError::from)?;
    let interval = started.interval.unwrap_or(5).clamp(1, 3600);
    let expires_in = started.expires_in.clamp(1, 3600);
    let sealed = flow::seal(
        &handle.plaintext,
        &FlowSecrets {
            device_code: Some(started.device_code),
            ..Default::default()
        },
    )?;
    sessions::create_flow(
        ctx.db(),
        &NewFlow {
            handle_sha256: handle.sha256,
            provider: Provider::Github,
            kind: FlowKind::Device,
            binding_sha256: None,
            sealed: &sealed,
            interval_seconds: i32::try_from(interval).unwrap_or(5),
            expires_at: Utc::now() + chrono::Duration::seconds(expires_in as i64),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(DeviceStart {
            device_id: handle.plaintext.to_string(),
            user_code: started.user_code,
            verification_uri: started.verification_uri,
            interval,
            expires_in,
        }),
    ))
}

fn expired() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::GONE,
        reason: "device_code_expired",
        message: "the device login expired before the code was entered".to_string(),
        next_step: "start a new login (loco login, or POST /v1/auth/github/device) and enter the new code in time",
    }
}

/// Asks whether the user has entered the code: 200 with a session when they have, 202
/// while waiting, 410 when the code expired, 403 when the user declined.
#[utoipa::path(post, path = "/v1/auth/github/device/poll", tag = "auth",
    request_body = DevicePollRequest,
    responses((status = 200, body = SessionTokens), (status = 202, body = DevicePending),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn github_device_poll(
    State(ctx): State<Ctx>,
    Json(body): Json<DevicePollRequest>,
) -> Result<Response, ApiError> {
    let cfg = ctx.login.github()?;
    let http = ctx.login.http("GitHub")?;
    let unknown = || ApiError::Rejected {
        status: StatusCode::NOT_FOUND,
        reason: "device_login_not_found",
        message: "no device login has this id (it finished, expired or never started)".to_string(),
        next_step: "start a new login with POST /v1/auth/github/device",
    };
    if !body.device_id.starts_with(DEVICE_PREFIX) || body.device_id.len() > 128 {
        return Err(unknown());
    }
    let handle_sha = hash(&body.device_id);
    let Some(f) =
        sessions::find_flow(ctx.db(), &handle_sha, Provider::Github, FlowKind::Device).await?
    else {
        return Err(unknown());
    };
    if f.expires_at <= Utc::now() {
        sessions::delete_flow(ctx.db(), f.id).await?;
        return Err(expired());
    }
    let secrets = flow::open(&body.device_id, &f.sealed)?;
    let device_code = secrets.device_code.as_deref().unwrap_or_default();
    let interval = u64::try_from(f.interval_seconds).unwrap_or(5);
    match github::poll_device(http, cfg, device_code).await? {
        DevicePoll::Pending => Ok((
            StatusCode::ACCEPTED,
            axum::Json(DevicePending {
                status: "authorization_pending",
                interval,
                message: "waiting for the code to be entered at GitHub".to_string(),
            }),
        )
            .into_response()),
        DevicePoll::SlowDown(new) => {
            // GitHub adds 5 seconds per slow_down unless it names the new interval.
            let next = new.unwrap_or(interval + 5).clamp(interval, 3600);
            sessions::set_flow_interval(ctx.db(), f.id, i32::try_from(next).unwrap_or(3600))
                .await?;
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(DevicePending {
                    status: "slow_down",
                    interval: next,
                    message: format!("polling too often; wait {next} seconds between polls"),
                }),
            )
                .into_response())
        }
        DevicePoll::Expired => {
            sessions::delete_flow(ctx.db(), f.id).await?;
            Err(expired())
        }
        DevicePoll::Denied => {
            sessions::delete_flow(ctx.db(), f.id).await?;
            Err(denied("GitHub"))
        }
        DevicePoll::Token(token) => {
            // Spent first: a second poll racing this one finds nothing to exchange.
            sessions::delete_flow(ctx.db(), f.id).await?;
            let user_id = github_user(&ctx, http, token).await?;
            let tokens: SessionTokens = session::issue(&ctx, user_id).await?;
            Ok((StatusCode::OK, axum::Json(tokens)).into_response())
        }
    }
}
