//! axum's extractors with their rejections turned into [`ApiError`], so a bad body, path
//! or query gets the same `{error, message, next_step, request_id}` as everything else.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// A JSON body: 400 for bad syntax, 415 without `Content-Type: application/json`, 413
/// past the body limit, 422 when the JSON does not fit the expected shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let (reason, next_step) = match &r {
        JsonRejection::JsonDataError(_) => (
            "invalid_body",
            "fix the body to match the endpoint's schema in GET /openapi.json",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ("malformed_json", "send a syntactically valid JSON document")
        }
        JsonRejection::MissingJsonContentType(_) => (
            "unsupported_media_type",
            "send the body with `Content-Type: application/json`",
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "send a smaller body; the limit is loco-api serve --body-limit (LOCO_API_BODY_LIMIT)",
        ),
        _ => ("body_unreadable", "send the request body again"),
    };
    ApiError::Rejected {
        status,
        reason,
        message: r.body_text(),
        next_step,
    }
}

/// Path parameters; a malformed one (e.g. a non-numeric id) is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::BAD_REQUEST,
        reason: "invalid_path",
        message: r.body_text(),
        next_step: "ids in the path are positive integers; take them from the list endpoints",
    }
}

/// Query parameters; unknown or malformed ones are a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::BAD_REQUEST,
        reason: "invalid_query",
        message: r.body_text(),
        next_step: "fix the query parameters; see GET /openapi.json",
    }
}

/// A database id: a positive integer (ids start at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct Id(pub i64);

impl TryFrom<i64> for Id {
    type Error = &'static str;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        if v >= 1 {
            Ok(Id(v))
        } else {
            Err("ids are positive integers")
        }
    }
}
