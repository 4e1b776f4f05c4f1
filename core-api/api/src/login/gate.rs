//! The org deploy gate (the seeds' abuse gate): when an org lists repositories in
//! `orgs.deploy_gate_repos`, only GitHub collaborators of at least one of them may
//! deploy there.
//!
//! The user's own GitHub token is not kept after login, so the check asks GitHub with a
//! server-side token (`LOCO_GITHUB_TOKEN`). Answers are reused for a short while so a
//! burst of deploys does not become a burst of GitHub calls. When GitHub cannot answer
//! (unreachable, rate-limited, no server token) the gate stays closed: 503, not a deploy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::github;
use crate::Ctx;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use loco_db::orgs;
use loco_db::tokens::Scope;

/// Answers of GitHub by (repository, login), with when they were fetched.
#[derive(Debug, Default)]
pub struct Cache(Mutex<HashMap<(String, String), (Instant, bool)>>);

/// Past this many entries the cache starts over rather than grow without bound.
const CACHE_MAX: usize = 10_000;

impl Cache {
    fn get(&self, repo: &str, login: &str, ttl: std::time::Duration) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(repo.to_string(), login.to_string()))
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, yes)| *yes)
    }

    fn put(&self, repo: &str, login: &str, yes: bool) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert((repo.to_string(), login.to_string()), (Instant::now(), yes));
    }
}

fn refused(message: String, next_step: String) -> ApiError {
    ApiError::Forbidden {
        reason: "deploy_gate_not_collaborator",
        message,
        next_step,
    }
}

fn unavailable(message: &str, next_step: &'static str) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::SERVICE_UNAVAILABLE,
        reason: "deploy_gate_unavailable",
        message: message.to_string(),
        next_step,
    }
}

/// Refuses a deploy in `org_id` by `user_id` unless the org's deploy gate is off or the
/// user is a GitHub collaborator of one of its listed repositories.
///
/// - gate off (no repositories listed): `Ok(())`, no GitHub call;
/// - not a collaborator of any, or not a GitHub user (Google login): 403
///   `deploy_gate_not_collaborator` with a next step;
/// - GitHub cannot answer, or no server token is configured: 503
///   `deploy_gate_unavailable` (fail closed).
pub async fn check_deploy_gate(
    ctx: &crate::Ctx,
    org_id: i64,
    user_id: i64,
) -> Result<(), crate::ApiError> {
    let org = orgs::get_org(ctx.db(), org_id).await?;
    if org.deploy_gate_repos.is_empty() {
        return Ok(());
    }
    let listed = org.deploy_gate_repos.join(", ");
    let user = orgs::get_user(ctx.db(), user_id).await?;
    if user.provider != "github" || !github::valid_login(&user.login) {
        return Err(refused(
            format!(
                "org {} only lets GitHub collaborators of {listed} deploy; you logged in with {}",
                org.name, user.provider
            ),
            format!(
                "log in with GitHub (loco login) as a collaborator of one of {listed}, or ask an org admin to add you there"
            ),
        ));
    }
    let cfg = &ctx.login.config;
    let ttl = cfg.gate_cache_ttl;
    let mut unknown = false;
    for repo in &org.deploy_gate_repos {
        let yes = match ctx.login.gate.get(repo, &user.login, ttl) {
            Some(yes) => yes,
            None => {
                let (Some(token), Some(http)) =
                    (cfg.github_token.as_ref(), ctx.login.http.as_ref())
                else {
                    tracing::error!(
                        org_id,
                        "deploy gate is on but loco-api has no GitHub token (LOCO_GITHUB_TOKEN)"
                    );
                    return Err(unavailable(
                        "this org's deploy gate needs GitHub, and this loco installation has no GitHub token to ask with",
                        "the operator sets loco-api serve --github-token (LOCO_GITHUB_TOKEN); retry the deploy afterwards",
                    ));
                };
                match github::is_collaborator(http, &cfg.github_api_url, token, repo, &user.login)
                    .await
                {
                    Ok(yes) => {
                        ctx.login.gate.put(repo, &user.login, yes);
                        yes
                    }
                    Err(e) => {
                        tracing::warn!(org_id, user_id, error = %e, "deploy gate check failed");
                        unknown = true;
                        continue;
                    }
                }
            }
        };
        if yes {
            return Ok(());
        }
    }
    if unknown {
        return Err(unavailable(
            "GitHub could not be asked whether you collaborate on this org's gate repositories, so the deploy was not started",
            "retry in a minute; if it keeps failing, the operator checks GitHub's status and loco-api's --github-token",
        ));
    }
    Err(refused(
        format!(
            "org {} only lets GitHub collaborators of {listed} deploy, and {} is a collaborator of none of them",
            org.name, user.login
        ),
        format!(
            "ask a maintainer of one of {listed} to add {} as a collaborator, then deploy again",
            user.login
        ),
    ))
}

/// The repositories of an org's deploy gate; empty means the gate is off.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployGate {
    /// GitHub repositories as `owner/name`, at most 20.
    pub repos: Vec<String>,
}

/// `owner/name` as GitHub allows them: the owner a valid login, the name of letters,
/// digits, `.`, `-` and `_`, not `.` or `..`.
pub fn valid_repo(repo: &str) -> bool {
    let Some((owner, name)) = repo.split_once('/') else {
        return false;
    };
    github::valid_login(owner)
        && (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && name != "."
        && name != ".."
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/deploy-gate", tag = "orgs", security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DeployGate), (status = 404, body = ErrorBody)))]
pub async fn get_gate(
    State(ctx): State<Ctx>,
    a: OrgAccess,
) -> Result<axum::Json<DeployGate>, ApiError> {
    a.require(Scope::Read)?;
    let org = orgs::get_org(ctx.db(), a.org_id).await?;
    Ok(axum::Json(DeployGate {
        repos: org.deploy_gate_repos,
    }))
}

/// Sets the repositories whose GitHub collaborators alone may deploy in the org (owners
/// and admins only); an empty list turns the gate off.
#[utoipa::path(put, path = "/v1/orgs/{org_id}/deploy-gate", tag = "orgs", security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1)), request_body = DeployGate,
    responses((status = 200, body = DeployGate), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_gate(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Json(body): Json<DeployGate>,
) -> Result<axum::Json<DeployGate>, ApiError> {
    a.require(Scope::Admin)?;
    if body.repos.len() > 20 {
        return Err(ApiError::invalid(
            "repos",
            "at most 20 repositories",
            "list fewer repositories; collaborators of any one of them may deploy",
        ));
    }
    let mut repos = Vec::with_capacity(body.repos.len());
    for r in body.repos {
        let r = r.trim().to_string();
        if !valid_repo(&r) {
            return Err(ApiError::invalid(
                "repos",
                format!("{r:?} is not a GitHub repository as owner/name"),
                "write each repository as owner/name, e.g. loco-dev/loco",
            ));
        }
        if !repos.contains(&r) {
            repos.push(r);
        }
    }
    let mut tx = ctx.db().begin().await.map_err(loco_db::DbError::from)?;
    orgs::set_deploy_gate(&mut *tx, a.org_id, &repos).await?;
    loco_db::events::record(
        &mut *tx,
        &loco_db::events::NewEvent {
            org_id: a.org_id,
            actor: a.actor(),
            reason: "deploy_gate_changed",
            message: if repos.is_empty() {
                "deploy gate turned off".to_string()
            } else {
                format!("deploy gate set to collaborators of {}", repos.join(", "))
            },
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await.map_err(loco_db::DbError::from)?;
    Ok(axum::Json(DeployGate { repos }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_are_owner_slash_name() {
        assert!(valid_repo("loco-dev/loco"));
        assert!(valid_repo("a/b.c_d-e"));
        for bad in [
            "loco", "a/", "/b", "a/..", "a/b/c", "a/b?x", "-a/b", "a b/c",
        ] {
            assert!(!valid_repo(bad), "{bad}");
        }
    }

    #[test]
    fn cache_entries_expire() {
        let c = Cache::default();
        c.put("o/r", "u", true);
        assert_eq!(
            c.get("o/r", "u", std::time::Duration::from_secs(60)),
            Some(true)
        );
        assert_eq!(c.get("o/r", "u", std::time::Duration::ZERO), None);
        assert_eq!(c.get("o/r", "v", std::time::Duration::from_secs(60)), None);
    }
}
