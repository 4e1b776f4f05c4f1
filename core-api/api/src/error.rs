//! The one error type of the HTTP API and how it becomes a response.
//!
//! Every error a client sees is `{error, message, next_step, request_id}`: `error` is a
//! stable snake_case reason (also the metric label), `message` says what went wrong and
//! `next_step` what to do about it. Database and internal errors are logged with the
//! request id and shown only as that id, so no query text, constraint name or driver
//! message ever reaches a client.
//!
//! A handler cannot see the request id, so [`ApiError::into_response`] attaches an
//! [`ErrorEnvelope`] to the response and [`finish_errors`] (a middleware that sees both
//! the request and the response) fills in the id, logs internal errors and counts them.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Ctx;
use loco_db::DbError;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case reason, e.g. `token_expired`, `app_name_taken`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// What to do next.
    pub next_step: String,
    /// The `x-request-id` of the request; quote it when reporting a problem.
    pub request_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, a malformed, unknown, expired or revoked credential.
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// Authenticated, but the role or the token's scope does not allow this.
    #[error("{message}")]
    Forbidden {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// Missing, or another tenant's: the two are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule or the object's state refused the change.
    #[error("{message}")]
    Conflict {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// A well-formed request whose content breaks a rule (length, name syntax, range).
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        message: String,
        next_step: String,
    },
    /// The request could not be read: JSON syntax, content type, body size, path or query.
    #[error("{message}")]
    Rejected {
        status: StatusCode,
        reason: &'static str,
        message: String,
        next_step: &'static str,
    },
    /// A dependency (a cluster, the registry, GitHub) cannot answer now: 503, retry later.
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// The org used up its rate limit for this action (see `super::ratelimit`): 429.
    #[error("{message}")]
    RateLimited {
        retry_after_seconds: u64,
        message: String,
        next_step: String,
    },
    #[error("no such endpoint")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Anything the client cannot act on: logged with the request id, shown as the id.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>, next_step: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_string(),
            message: message.into(),
            next_step: next_step.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Rejected { status, .. } => *status,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case name: the `error` field and the metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { reason, .. }
            | ApiError::Forbidden { reason, .. }
            | ApiError::Conflict { reason, .. }
            | ApiError::Unavailable { reason, .. }
            | ApiError::Rejected { reason, .. } => reason,
            ApiError::NotFound(_) => "not_found",
            ApiError::Invalid { .. } => "invalid_input",
            ApiError::NoRoute => "no_such_endpoint",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn next_step(&self) -> String {
        match self {
            ApiError::Unauthenticated { next_step, .. }
            | ApiError::Forbidden { next_step, .. }
            | ApiError::Conflict { next_step, .. }
            | ApiError::Unavailable { next_step, .. }
            | ApiError::RateLimited { next_step, .. }
            | ApiError::Invalid { next_step, .. } => next_step.clone(),
            ApiError::Rejected { next_step, .. } => (*next_step).to_string(),
            ApiError::NotFound(what) => format!(
                "check the {what} id; list what you can see with the matching GET endpoint (an object of an org you are not a member of reads as not found)"
            ),
            ApiError::NoRoute => "see GET /openapi.json for the endpoints".to_string(),
            ApiError::MethodNotAllowed => {
                "see GET /openapi.json for the methods of this path".to_string()
            }
            ApiError::Internal(_) => String::new(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => ApiError::NotFound(what),
            DbError::Conflict { reason, message } => ApiError::Conflict {
                reason,
                message: message.to_string(),
                next_step: "change the conflicting value and send the request again".to_string(),
            },
            DbError::InvalidTransition { .. } => ApiError::Conflict {
                reason: "invalid_status_transition",
                message: e.to_string(),
                next_step: "reload the object and retry from its current state".to_string(),
            },
            // Connection, query and crypto failures are the operator's problem: logged, not shown.
            other => ApiError::Internal(format!("{} ({other})", other.reason())),
        }
    }
}

impl From<loco_crypto::CryptoError> for ApiError {
    fn from(e: loco_crypto::CryptoError) -> Self {
        ApiError::Internal(format!("{} ({e})", e.reason()))
    }
}

/// What an error response carries until [`finish_errors`] knows the request id.
#[derive(Debug, Clone)]
pub struct ErrorEnvelope {
    reason: &'static str,
    message: String,
    next_step: String,
    /// For the log only (internal errors).
    detail: Option<String>,
}

impl ErrorEnvelope {
    fn body(&self, request_id: &str) -> ErrorBody {
        let (message, next_step) = match &self.detail {
            Some(_) => (
                format!("internal error; quote request id {request_id}"),
                format!(
                    "try again later; if it keeps failing, give request id {request_id} to the operator"
                ),
            ),
            None => (self.message.clone(), self.next_step.clone()),
        };
        ErrorBody {
            error: self.reason.to_string(),
            message,
            next_step,
            request_id: request_id.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let envelope = ErrorEnvelope {
            reason: self.reason(),
            message: self.to_string(),
            next_step: self.next_step(),
            detail: match &self {
                ApiError::Internal(d) => Some(d.clone()),
                _ => None,
            },
        };
        // Without `finish_errors` (a handler called outside the router) the body still
        // has the right shape, with an unknown request id.
        let mut resp = (status, Json(envelope.body("unknown"))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::RateLimited {
            retry_after_seconds,
            ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        resp.extensions_mut().insert(envelope);
        resp
    }
}

/// Fills the request id into error bodies, logs internal errors (with the request id,
/// never to the client) and counts errors by reason.
pub async fn finish_errors(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string();
    let mut resp = next.run(req).await;
    let Some(envelope) = resp.extensions_mut().remove::<ErrorEnvelope>() else {
        return resp;
    };
    ctx.metrics.error(envelope.reason);
    if let Some(detail) = &envelope.detail {
        tracing::error!(%request_id, reason = envelope.reason, error = %detail, "request failed");
    }
    let body = match serde_json::to_vec(&envelope.body(&request_id)) {
        Ok(b) => b,
        Err(_) => return resp,
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// The router's fallbacks, so unknown paths and methods get the same error shape.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
