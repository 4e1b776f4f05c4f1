//! API tokens for non-interactive use (`loco deploy --non-interactive --token`), and the
//! membership lookups the API's auth extractor needs.
//!
//! A token is `loco_` followed by 64 hex digits (32 random bytes). Only its SHA-256 is
//! stored, so a database dump reveals no usable token; the plaintext is shown once, when
//! it is minted. A token acts for one user in one org, with scopes that can only narrow
//! what that user's role allows.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use zeroize::Zeroizing;

use super::events::{self, Actor, NewEvent};
use super::{DbError, Tx};
use loco_crypto::CryptoError;

/// Every token starts with this, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "loco_";

/// What a token may do, at most; the user's role in the org still applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// GET endpoints.
    Read,
    /// Plus apps and env.
    Write,
    /// Plus workspaces, members and orgs.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "read" => Scope::Read,
            "write" => Scope::Write,
            "admin" => Scope::Admin,
            _ => return None,
        })
    }
}

/// A freshly generated token: the plaintext (shown once) and the hash that is stored.
#[derive(Debug)]
pub struct Minted {
    pub plaintext: Zeroizing<String>,
    pub sha256: [u8; 32],
}

/// Generates a random token.
pub fn generate() -> Result<Minted, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut()).map_err(|e| CryptoError::Random(e.to_string()))?;
    let plaintext = Zeroizing::new(format!("{TOKEN_PREFIX}{}", hex::encode(raw.as_ref())));
    let sha256 = hash(&plaintext);
    Ok(Minted { plaintext, sha256 })
}

/// The SHA-256 under which a presented token is looked up.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub org_id: i64,
    pub user_id: i64,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub expires_at: DateTime<Utc>,
}

/// Stores a new token's hash (the user must be a member of the org) and records it.
/// Returns the token id and the plaintext, which is never stored.
pub async fn mint(
    tx: &mut Tx<'_>,
    token: &NewToken<'_>,
    actor: &Actor,
) -> Result<(i64, Zeroizing<String>), DbError> {
    if super::orgs::role_of(&mut **tx, token.org_id, token.user_id)
        .await?
        .is_none()
    {
        return Err(DbError::NotFound("membership"));
    }
    let minted = generate()?;
    let scopes: Vec<String> = token
        .scopes
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let id = sqlx::query_scalar!(
        "INSERT INTO api_tokens (org_id, user_id, name, token_sha256, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        token.org_id,
        token.user_id,
        token.name,
        &minted.sha256[..],
        &scopes,
        token.expires_at
    )
    .fetch_one(&mut **tx)
    .await?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id: token.org_id,
            actor: actor.clone(),
            reason: "api_token_created",
            message: format!(
                "API token {id} ({}) created for user {} with scopes {}, expiring {}",
                token.name,
                token.user_id,
                scopes.join(","),
                token.expires_at.to_rfc3339()
            ),
            ..Default::default()
        },
    )
    .await?;
    Ok((id, minted.plaintext))
}

/// A stored token as the auth extractor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: i64,
    pub org_id: i64,
    pub user_id: i64,
    pub workspace_id: Option<i64>,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user's role in the token's org now (`None`: no longer a member).
    pub role: Option<String>,
}

impl StoredToken {
    /// The widest scope the token carries (unknown scope names grant nothing).
    pub fn max_scope(&self) -> Option<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s)).max()
    }
}

/// The token whose hash is `sha256`, if any (expired and revoked ones included: the
/// caller tells the holder which it is), with its user's role in its org.
///
/// One statement, because it runs before every authenticated request: it also notes
/// that a usable token was used, at most once a minute per token (a write per request
/// would turn every read into a write; an UPDATE that matches no row writes nothing).
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    sha256: &[u8; 32],
) -> Result<Option<StoredToken>, DbError> {
    Ok(sqlx::query_as!(
        StoredToken,
        r#"WITH t AS (
               SELECT id, org_id, user_id, workspace_id, scopes, expires_at, revoked_at,
                      last_used_at
                 FROM api_tokens WHERE token_sha256 = $1
           ), touched AS (
               UPDATE api_tokens a SET last_used_at = now()
                 FROM t
                WHERE a.id = t.id AND t.revoked_at IS NULL AND t.expires_at > now()
                  AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
           )
           SELECT t.id AS "id!", t.org_id AS "org_id!", t.user_id AS "user_id!",
                  t.workspace_id, t.scopes AS "scopes!", t.expires_at AS "expires_at!",
                  t.revoked_at, m.role AS "role?"
             FROM t LEFT JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id"#,
        &sha256[..]
    )
    .fetch_optional(db)
    .await?)
}

/// The id of the org called `name` (for operator commands that take a name).
pub async fn org_id_by_name(db: impl PgExecutor<'_>, name: &str) -> Result<i64, DbError> {
    sqlx::query_scalar!("SELECT id FROM orgs WHERE name = $1", name)
        .fetch_optional(db)
        .await?
        .ok_or(DbError::NotFound("org"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_unique_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.plaintext.starts_with(TOKEN_PREFIX));
        assert_eq!(a.plaintext.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(*a.plaintext, *b.plaintext);
        assert_eq!(hash(&a.plaintext), a.sha256);
    }

    #[test]
    fn scopes_order_read_write_admin() {
        assert!(Scope::Read < Scope::Write && Scope::Write < Scope::Admin);
        assert_eq!(Scope::parse("write"), Some(Scope::Write));
        assert_eq!(Scope::parse("root"), None);
    }
}
