//! Authentication and per-org authorisation, as extractors.
//!
//! [`Principal`] reads `Authorization: Bearer <credential>` and resolves it to a user.
//! Two credentials, told apart by prefix so each is one indexed lookup by SHA-256: an API
//! token (`loco_...`) reaches only its own org, within its scopes; a session access token
//! (`loco-access_...`, from a GitHub or Google login, see [`super::login`]) reaches every
//! org its user is a member of (`reachable_org` returns `None`), where the role decides.
//!
//! [`OrgAccess`] adds the org of the path (`{org_id}`): the caller's role there, narrowed
//! by the credential's scope. A caller who is not a member, or whose token belongs to
//! another org, gets 404 (not 403), so ids of other tenants cannot be probed.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;

use super::Ctx;
use super::error::ApiError;
use loco_db::events::Actor;
use loco_db::orgs::{self, Role};
use loco_db::sessions;
use loco_db::tokens::{self, Scope};

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token, bound to one org; `role` is its user's role there when the token
    /// was read (read in the same query, so an org route costs no second lookup).
    ApiToken {
        id: i64,
        org_id: i64,
        role: Option<Role>,
    },
    /// A loco session (after a GitHub or Google login), by session id.
    Session { id: i64 },
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub credential: Credential,
    /// The most the credential allows, whatever the user's role.
    pub scope: Scope,
}

impl Principal {
    /// Who the audit trail names.
    pub fn actor(&self) -> Actor {
        match self.credential {
            Credential::ApiToken { id, .. } => Actor::Token(id),
            Credential::Session { .. } => Actor::User(self.user_id),
        }
    }

    /// The only org this credential reaches, or `None` when it reaches all of the user's.
    pub fn reachable_org(&self) -> Option<i64> {
        match self.credential {
            Credential::ApiToken { org_id, .. } => Some(org_id),
            Credential::Session { .. } => None,
        }
    }

    /// Refuses when the credential's scope is below `needed`.
    pub fn require_scope(&self, needed: Scope) -> Result<(), ApiError> {
        if self.scope >= needed {
            return Ok(());
        }
        Err(ApiError::Forbidden {
            reason: "token_scope_insufficient",
            message: format!(
                "this token's scope is {}; this needs {}",
                self.scope.as_str(),
                needed.as_str()
            ),
            next_step: format!(
                "use a token with scope {} (loco-api tokens create --scopes {})",
                needed.as_str(),
                needed.as_str()
            ),
        })
    }

    async fn from_bearer(ctx: &Ctx, presented: &str) -> Result<Principal, ApiError> {
        if presented.starts_with(sessions::ACCESS_PREFIX) {
            return super::login::session::authenticate(ctx, presented).await;
        }
        if presented.starts_with(sessions::REFRESH_PREFIX) {
            return Err(ApiError::Unauthenticated {
                reason: "token_invalid",
                message: "a refresh token is not a bearer credential".to_string(),
                next_step:
                    "exchange it at POST /v1/auth/refresh and send the access_token it returns"
                        .to_string(),
            });
        }
        if !presented.starts_with(tokens::TOKEN_PREFIX) {
            return Err(unauthenticated(
                "token_invalid",
                "the bearer credential is not a loco API token",
            ));
        }
        let Some(t) = tokens::authenticate(ctx.db(), &tokens::hash(presented)).await? else {
            return Err(unauthenticated(
                "token_invalid",
                "the API token is not known; it may have been mistyped or deleted",
            ));
        };
        if t.revoked_at.is_some() {
            return Err(unauthenticated(
                "token_revoked",
                "the API token was revoked",
            ));
        }
        if t.expires_at <= Utc::now() {
            return Err(unauthenticated(
                "token_expired",
                format!("the API token expired at {}", t.expires_at.to_rfc3339()),
            ));
        }
        // Workspace-narrowed tokens are not enforced by this API yet: refuse rather
        // than silently widen them to the whole org.
        if t.workspace_id.is_some() {
            return Err(unauthenticated(
                "token_unsupported",
                "workspace-narrowed API tokens are not supported by this API version",
            ));
        }
        let Some(scope) = t.max_scope() else {
            return Err(unauthenticated(
                "token_invalid",
                "the API token carries no known scope",
            ));
        };
        Ok(Principal {
            user_id: t.user_id,
            credential: Credential::ApiToken {
                id: t.id,
                org_id: t.org_id,
                role: t.role.as_deref().and_then(Role::parse),
            },
            scope,
        })
    }
}

fn unauthenticated(reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated {
        reason,
        message: message.into(),
        next_step: "send `Authorization: Bearer <token>` with a valid API token; an operator mints one with `loco-api tokens create`".to_string(),
    }
}

impl FromRequestParts<Ctx> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthenticated(
                "unauthenticated",
                "this endpoint needs an API token",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthenticated(
                    "malformed_authorization",
                    "the Authorization header is not `Bearer <token>`",
                )
            })?;
        let principal = Principal::from_bearer(ctx, presented).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// What a role allows: viewer reads, member also writes apps and env, admin and owner
/// also manage workspaces and members.
pub fn role_allows(role: Role) -> Scope {
    match role {
        Role::Viewer => Scope::Read,
        Role::Member => Scope::Write,
        Role::Admin | Role::Owner => Scope::Admin,
    }
}

/// The caller as a member of the org named by the path's `{org_id}`.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    pub principal: Principal,
    pub org_id: i64,
    pub role: Role,
}

impl OrgAccess {
    /// Refuses with 403 when the role or the credential's scope is below `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if role_allows(self.role) < needed {
            let roles = match needed {
                Scope::Read => "viewer",
                Scope::Write => "member, admin or owner",
                Scope::Admin => "admin or owner",
            };
            return Err(ApiError::Forbidden {
                reason: "role_insufficient",
                message: format!(
                    "your role in this org is {}; this needs {roles}",
                    self.role.as_str()
                ),
                next_step: "ask an admin or owner of the org for a higher role".to_string(),
            });
        }
        self.principal.require_scope(needed)
    }

    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }
}

impl FromRequestParts<Ctx> for OrgAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, ctx).await?;
        let super::extract::Path(params) =
            super::extract::Path::<HashMap<String, String>>::from_request_parts(parts, ctx).await?;
        let org_id = params
            .get("org_id")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|id| *id >= 1)
            .ok_or_else(|| ApiError::Rejected {
                status: axum::http::StatusCode::BAD_REQUEST,
                reason: "invalid_path",
                message: "org_id must be a positive integer".to_string(),
                next_step: "take org ids from GET /v1/orgs",
            })?;
        let role = match principal.credential {
            Credential::ApiToken {
                org_id: token_org,
                role,
                ..
            } => role.filter(|_| token_org == org_id),
            Credential::Session { .. } => {
                orgs::role_of(ctx.db(), org_id, principal.user_id).await?
            }
        }
        .ok_or(ApiError::NotFound("org"))?;
        // Every later log line of the request names the org.
        tracing::Span::current().record("org_id", org_id);
        Ok(OrgAccess {
            principal,
            org_id,
            role,
        })
    }
}
