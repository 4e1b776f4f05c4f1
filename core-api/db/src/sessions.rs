//! loco sessions (after a GitHub or Google login) and logins in progress.
//!
//! A session has a short-lived access token and a long-lived refresh token; both are
//! random, shown to the client once and stored only as SHA-256, so a database dump holds
//! nothing a client could present. Each kind of token has its own prefix, so the auth
//! extractor knows from the first bytes which table to ask (one indexed lookup).
//!
//! Refreshing rotates both tokens. The refresh token it replaced is kept as a hash in
//! `session_rotated_refresh_tokens`: presenting it again means two parties hold the
//! session's tokens, so the whole session is revoked (refresh-token reuse detection).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use zeroize::Zeroizing;

use super::orgs::Provider;
use super::tokens::{Minted, hash};
use super::{DbError, Tx};
use loco_crypto::CryptoError;

/// Prefix of a session's access token (the bearer credential of interactive use).
pub const ACCESS_PREFIX: &str = "loco-access_";
/// Prefix of a session's refresh token (accepted only by `POST /v1/auth/refresh`).
pub const REFRESH_PREFIX: &str = "loco-refresh_";
/// Prefix of the id a CLI polls a device login with.
pub const DEVICE_PREFIX: &str = "loco-device_";

/// A random token: `prefix` + 64 hex digits (32 bytes from the OS), and its SHA-256.
pub fn generate(prefix: &str) -> Result<Minted, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut()).map_err(|e| CryptoError::Random(e.to_string()))?;
    let plaintext = Zeroizing::new(format!("{prefix}{}", hex::encode(raw.as_ref())));
    let sha256 = hash(&plaintext);
    Ok(Minted { plaintext, sha256 })
}

/// The hashes and lifetimes of a new session's two tokens.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: i64,
    pub access_sha256: [u8; 32],
    pub access_expires_at: DateTime<Utc>,
    pub refresh_sha256: [u8; 32],
    /// When the refresh token (and so the session) expires.
    pub expires_at: DateTime<Utc>,
}

pub async fn create(db: impl PgExecutor<'_>, s: &NewSession) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO sessions (user_id, access_token_sha256, access_expires_at,
                               refresh_token_sha256, expires_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        s.user_id,
        &s.access_sha256[..],
        s.access_expires_at,
        &s.refresh_sha256[..],
        s.expires_at
    )
    .fetch_one(db)
    .await?)
}

/// A session as the auth extractor sees it, found by its access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAccess {
    pub id: i64,
    pub user_id: i64,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The session whose current access token hashes to `sha256`, expired and revoked ones
/// included (the caller tells the holder which it is).
pub async fn find_by_access(
    db: impl PgExecutor<'_>,
    sha256: &[u8; 32],
) -> Result<Option<SessionAccess>, DbError> {
    Ok(sqlx::query_as!(
        SessionAccess,
        "SELECT id, user_id, access_expires_at, expires_at, revoked_at
           FROM sessions WHERE access_token_sha256 = $1",
        &sha256[..]
    )
    .fetch_optional(db)
    .await?)
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// The session now has the new tokens; the presented refresh token is spent.
    Rotated {
        session_id: i64,
        user_id: i64,
    },
    /// The token was already rotated away: the session was revoked just now.
    Reused {
        session_id: i64,
        user_id: i64,
    },
    Expired,
    Revoked,
    Unknown,
}

/// The tokens a refresh hands out.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub access_sha256: [u8; 32],
    pub access_expires_at: DateTime<Utc>,
    pub refresh_sha256: [u8; 32],
    pub expires_at: DateTime<Utc>,
}

/// Exchanges a refresh token for new tokens, or detects its reuse. The row lock makes
/// two refreshes with one token serialise: the second no longer finds it current, finds
/// it among the rotated ones, and revokes the session.
pub async fn rotate(
    tx: &mut Tx<'_>,
    presented_sha256: &[u8; 32],
    next: &Rotation,
) -> Result<Refreshed, DbError> {
    let current = sqlx::query!(
        "SELECT id, user_id, expires_at, revoked_at FROM sessions
          WHERE refresh_token_sha256 = $1 FOR UPDATE",
        &presented_sha256[..]
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(s) = current else {
        let reused = sqlx::query!(
            "SELECT s.id, s.user_id FROM session_rotated_refresh_tokens r
               JOIN sessions s ON s.id = r.session_id
              WHERE r.refresh_token_sha256 = $1",
            &presented_sha256[..]
        )
        .fetch_optional(&mut **tx)
        .await?;
        return Ok(match reused {
            Some(r) => {
                revoke(&mut **tx, r.id).await?;
                Refreshed::Reused {
                    session_id: r.id,
                    user_id: r.user_id,
                }
            }
            None => Refreshed::Unknown,
        });
    };
    if s.revoked_at.is_some() {
        return Ok(Refreshed::Revoked);
    }
    if s.expires_at <= Utc::now() {
        return Ok(Refreshed::Expired);
    }
    sqlx::query!(
        "INSERT INTO session_rotated_refresh_tokens (refresh_token_sha256, session_id)
         VALUES ($1, $2)",
        &presented_sha256[..],
        s.id
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET access_token_sha256 = $2, access_expires_at = $3,
                refresh_token_sha256 = $4, expires_at = $5, last_refreshed_at = now()
          WHERE id = $1",
        s.id,
        &next.access_sha256[..],
        next.access_expires_at,
        &next.refresh_sha256[..],
        next.expires_at
    )
    .execute(&mut **tx)
    .await?;
    Ok(Refreshed::Rotated {
        session_id: s.id,
        user_id: s.user_id,
    })
}

/// Ends a session: neither its access nor its refresh token works afterwards.
/// Revoking a revoked session changes nothing.
pub async fn revoke(db: impl PgExecutor<'_>, session_id: i64) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whether a login is a browser redirect flow or a CLI device flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Web,
    Device,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Web => "web",
            FlowKind::Device => "device",
        }
    }
}

/// A login being started.
#[derive(Debug, Clone)]
pub struct NewFlow<'a> {
    /// SHA-256 of the `state` (web) or the loco device id (device).
    pub handle_sha256: [u8; 32],
    pub provider: Provider,
    pub kind: FlowKind,
    /// SHA-256 of the browser cookie a web login must come back with.
    pub binding_sha256: Option<[u8; 32]>,
    /// The flow's secrets, sealed under a key derived from the handle.
    pub sealed: &'a [u8],
    pub interval_seconds: i32,
    pub expires_at: DateTime<Utc>,
}

/// A login in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub id: i64,
    pub provider: String,
    pub binding_sha256: Option<Vec<u8>>,
    pub sealed: Vec<u8>,
    pub interval_seconds: i32,
    pub expires_at: DateTime<Utc>,
}

/// Records a started login, and drops logins that expired long ago (no daemon owns
/// this table, so every new login sweeps it).
pub async fn create_flow(db: &sqlx::PgPool, f: &NewFlow<'_>) -> Result<i64, DbError> {
    sqlx::query!("DELETE FROM login_flows WHERE expires_at < now() - interval '1 hour'")
        .execute(db)
        .await?;
    Ok(sqlx::query_scalar!(
        "INSERT INTO login_flows (handle_sha256, provider, kind, binding_sha256, sealed,
                                  interval_seconds, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &f.handle_sha256[..],
        f.provider.as_str(),
        f.kind.as_str(),
        f.binding_sha256.as_ref().map(|b| &b[..]),
        f.sealed,
        f.interval_seconds,
        f.expires_at
    )
    .fetch_one(db)
    .await?)
}

/// Removes and returns a login of `provider` and `kind`: a browser login's `state` is
/// good for one callback only, whatever the callback's outcome.
pub async fn take_flow(
    db: impl PgExecutor<'_>,
    handle_sha256: &[u8; 32],
    provider: Provider,
    kind: FlowKind,
) -> Result<Option<Flow>, DbError> {
    Ok(sqlx::query_as!(
        Flow,
        "DELETE FROM login_flows WHERE handle_sha256 = $1 AND provider = $2 AND kind = $3
         RETURNING id, provider, binding_sha256, sealed, interval_seconds, expires_at",
        &handle_sha256[..],
        provider.as_str(),
        kind.as_str()
    )
    .fetch_optional(db)
    .await?)
}

/// A login of `provider` and `kind`, left in place (device logins are polled many times).
pub async fn find_flow(
    db: impl PgExecutor<'_>,
    handle_sha256: &[u8; 32],
    provider: Provider,
    kind: FlowKind,
) -> Result<Option<Flow>, DbError> {
    Ok(sqlx::query_as!(
        Flow,
        "SELECT id, provider, binding_sha256, sealed, interval_seconds, expires_at
           FROM login_flows WHERE handle_sha256 = $1 AND provider = $2 AND kind = $3",
        &handle_sha256[..],
        provider.as_str(),
        kind.as_str()
    )
    .fetch_optional(db)
    .await?)
}

/// Remembers the poll interval the provider asked for (after a `slow_down`).
pub async fn set_flow_interval(
    db: impl PgExecutor<'_>,
    flow_id: i64,
    seconds: i32,
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE login_flows SET interval_seconds = $2 WHERE id = $1",
        flow_id,
        seconds.clamp(1, 3600)
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_flow(db: impl PgExecutor<'_>, flow_id: i64) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM login_flows WHERE id = $1", flow_id)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use sqlx::PgPool;

    use super::*;
    use crate::orgs;

    async fn user(pool: &PgPool) -> i64 {
        orgs::upsert_user(pool, Provider::Github, "uid-1", "octo", None)
            .await
            .unwrap()
    }

    fn tokens() -> (Minted, Minted) {
        (
            generate(ACCESS_PREFIX).unwrap(),
            generate(REFRESH_PREFIX).unwrap(),
        )
    }

    async fn session(pool: &PgPool, user_id: i64) -> (i64, Minted, Minted) {
        let (a, r) = tokens();
        let id = create(
            pool,
            &NewSession {
                user_id,
                access_sha256: a.sha256,
                access_expires_at: Utc::now() + Duration::minutes(15),
                refresh_sha256: r.sha256,
                expires_at: Utc::now() + Duration::days(30),
            },
        )
        .await
        .unwrap();
        (id, a, r)
    }

    fn rotation(a: &Minted, r: &Minted) -> Rotation {
        Rotation {
            access_sha256: a.sha256,
            access_expires_at: Utc::now() + Duration::minutes(15),
            refresh_sha256: r.sha256,
            expires_at: Utc::now() + Duration::days(30),
        }
    }

    #[test]
    fn token_kinds_are_told_apart_by_prefix() {
        let a = generate(ACCESS_PREFIX).unwrap();
        assert!(a.plaintext.starts_with(ACCESS_PREFIX));
        assert!(!a.plaintext.starts_with(super::super::tokens::TOKEN_PREFIX));
        assert_eq!(a.plaintext.len(), ACCESS_PREFIX.len() + 64);
        assert_eq!(hash(&a.plaintext), a.sha256);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn rotation_spends_the_old_refresh_token_and_reuse_revokes(pool: PgPool) {
        let uid = user(&pool).await;
        let (id, a1, r1) = session(&pool, uid).await;
        let found = find_by_access(&pool, &a1.sha256).await.unwrap().unwrap();
        assert_eq!((found.id, found.user_id), (id, uid));
        assert!(found.revoked_at.is_none());

        let (a2, r2) = tokens();
        let mut tx = pool.begin().await.unwrap();
        let out = rotate(&mut tx, &r1.sha256, &rotation(&a2, &r2))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            out,
            Refreshed::Rotated {
                session_id: id,
                user_id: uid
            }
        );
        // The old access token is gone with the rotation; the new one works.
        assert!(find_by_access(&pool, &a1.sha256).await.unwrap().is_none());
        assert!(find_by_access(&pool, &a2.sha256).await.unwrap().is_some());

        // Presenting the spent refresh token again revokes the whole session.
        let (a3, r3) = tokens();
        let mut tx = pool.begin().await.unwrap();
        let out = rotate(&mut tx, &r1.sha256, &rotation(&a3, &r3))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            out,
            Refreshed::Reused {
                session_id: id,
                user_id: uid
            }
        );
        let s = find_by_access(&pool, &a2.sha256).await.unwrap().unwrap();
        assert!(s.revoked_at.is_some());
        let mut tx = pool.begin().await.unwrap();
        let out = rotate(&mut tx, &r2.sha256, &rotation(&a3, &r3))
            .await
            .unwrap();
        assert_eq!(out, Refreshed::Revoked);

        let unknown = generate(REFRESH_PREFIX).unwrap();
        let out = rotate(&mut tx, &unknown.sha256, &rotation(&a3, &r3))
            .await
            .unwrap();
        assert_eq!(out, Refreshed::Unknown);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn an_expired_session_cannot_be_refreshed(pool: PgPool) {
        let uid = user(&pool).await;
        let (a, r) = tokens();
        create(
            &pool,
            &NewSession {
                user_id: uid,
                access_sha256: a.sha256,
                access_expires_at: Utc::now() - Duration::minutes(1),
                refresh_sha256: r.sha256,
                expires_at: Utc::now() - Duration::seconds(1),
            },
        )
        .await
        .unwrap();
        let (a2, r2) = tokens();
        let mut tx = pool.begin().await.unwrap();
        assert_eq!(
            rotate(&mut tx, &r.sha256, &rotation(&a2, &r2))
                .await
                .unwrap(),
            Refreshed::Expired
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn flows_are_scoped_by_provider_and_kind_and_taken_once(pool: PgPool) {
        let handle = generate(DEVICE_PREFIX).unwrap();
        let id = create_flow(
            &pool,
            &NewFlow {
                handle_sha256: handle.sha256,
                provider: Provider::Github,
                kind: FlowKind::Device,
                binding_sha256: None,
                sealed: b"sealed",
                interval_seconds: 5,
                expires_at: Utc::now() + Duration::minutes(15),
            },
        )
        .await
        .unwrap();
        let other = |p, k| find_flow(&pool, &handle.sha256, p, k);
        assert!(
            other(Provider::Google, FlowKind::Device)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            other(Provider::Github, FlowKind::Web)
                .await
                .unwrap()
                .is_none()
        );
        set_flow_interval(&pool, id, 10).await.unwrap();
        let f = other(Provider::Github, FlowKind::Device)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.id, f.interval_seconds, f.sealed.as_slice()),
            (id, 10, &b"sealed"[..])
        );
        let taken = take_flow(&pool, &handle.sha256, Provider::Github, FlowKind::Device)
            .await
            .unwrap();
        assert_eq!(taken.map(|f| f.id), Some(id));
        assert!(
            take_flow(&pool, &handle.sha256, Provider::Github, FlowKind::Device)
                .await
                .unwrap()
                .is_none()
        );
    }
}
