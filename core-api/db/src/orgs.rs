//! Orgs, users (GitHub or Google identities) and memberships with roles.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::{DbError, Page, Tx, events};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: i64,
    pub name: String,
    pub deploy_gate_repos: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Github,
    Google,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Google => "google",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub provider: String,
    pub provider_uid: String,
    pub login: String,
    pub email: Option<String>,
}

/// Creates the org with `owner` as its first owner, and records it.
pub async fn create_org(tx: &mut Tx<'_>, name: &str, owner: i64) -> Result<i64, DbError> {
    let id = sqlx::query_scalar!("INSERT INTO orgs (name) VALUES ($1) RETURNING id", name)
        .fetch_one(&mut **tx)
        .await?;
    add_member(&mut **tx, id, owner, Role::Owner).await?;
    events::record(
        &mut **tx,
        &events::NewEvent {
            org_id: id,
            actor: events::Actor::User(owner),
            reason: "org_created",
            message: format!("org {name} created"),
            ..Default::default()
        },
    )
    .await?;
    Ok(id)
}

pub async fn get_org(db: impl PgExecutor<'_>, org_id: i64) -> Result<Org, DbError> {
    sqlx::query_as!(
        Org,
        "SELECT id, name, deploy_gate_repos, created_at FROM orgs WHERE id = $1",
        org_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("org"))
}

/// The orgs `user_id` belongs to, by id.
pub async fn list_orgs_of_user(
    db: impl PgExecutor<'_>,
    user_id: i64,
    page: Page,
) -> Result<Vec<Org>, DbError> {
    Ok(sqlx::query_as!(
        Org,
        "SELECT o.id, o.name, o.deploy_gate_repos, o.created_at
           FROM orgs o JOIN memberships m ON m.org_id = o.id
          WHERE m.user_id = $1 AND ($2::bigint IS NULL OR o.id > $2)
          ORDER BY o.id
          LIMIT $3",
        user_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}

pub async fn set_deploy_gate(
    db: impl PgExecutor<'_>,
    org_id: i64,
    repos: &[String],
) -> Result<(), DbError> {
    let done = sqlx::query!(
        "UPDATE orgs SET deploy_gate_repos = $2 WHERE id = $1",
        org_id,
        repos
    )
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound("org"));
    }
    Ok(())
}

/// Finds or creates the user of an identity; login and email follow the provider's.
pub async fn upsert_user(
    db: impl PgExecutor<'_>,
    provider: Provider,
    provider_uid: &str,
    login: &str,
    email: Option<&str>,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO users (provider, provider_uid, login, email) VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider, provider_uid) DO UPDATE SET login = EXCLUDED.login, email = EXCLUDED.email
         RETURNING id",
        provider.as_str(),
        provider_uid,
        login,
        email
    )
    .fetch_one(db)
    .await?)
}

/// The user of an identity, if one signed in or was bootstrapped before (unlike
/// [`upsert_user`], this changes nothing).
pub async fn user_by_identity(
    db: impl PgExecutor<'_>,
    provider: Provider,
    provider_uid: &str,
) -> Result<Option<User>, DbError> {
    Ok(sqlx::query_as!(
        User,
        "SELECT id, provider, provider_uid, login, email FROM users
          WHERE provider = $1 AND provider_uid = $2",
        provider.as_str(),
        provider_uid
    )
    .fetch_optional(db)
    .await?)
}

pub async fn get_user(db: impl PgExecutor<'_>, user_id: i64) -> Result<User, DbError> {
    sqlx::query_as!(
        User,
        "SELECT id, provider, provider_uid, login, email FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("user"))
}

/// Adds a member, or changes the role of an existing one.
pub async fn add_member(
    db: impl PgExecutor<'_>,
    org_id: i64,
    user_id: i64,
    role: Role,
) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        org_id,
        user_id,
        role.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The role of `user_id` in `org_id`, or `None` for a non-member.
pub async fn role_of(
    db: impl PgExecutor<'_>,
    org_id: i64,
    user_id: i64,
) -> Result<Option<Role>, DbError> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2",
        org_id,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// A member of an org as the API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: i64,
    pub provider: String,
    pub login: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// Members of an org by user id.
pub async fn members(
    db: impl PgExecutor<'_>,
    org_id: i64,
    page: Page,
) -> Result<Vec<Member>, DbError> {
    Ok(sqlx::query_as!(
        Member,
        "SELECT u.id AS user_id, u.provider, u.login, m.role, m.created_at
           FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.org_id = $1 AND ($2::bigint IS NULL OR u.id > $2)
          ORDER BY u.id LIMIT $3",
        org_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}
