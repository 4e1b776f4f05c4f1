//! Per-org rate limits of the actions that cost the platform most: deploys and app
//! creation. One token bucket per (org, action), in Postgres (`db::ratelimit`), so every
//! loco-api replica takes from the same bucket: a bucket holds up to `burst` tokens and
//! refills at `per_minute`; an action takes one token or is refused with 429 and
//! `Retry-After`. Both actions write rows anyway, so the bucket's one upsert is cheap
//! beside them; reads are never limited and never touch a bucket.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::ApiError;
use loco_db::ratelimit::{self, Taken};

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateAction {
    Deploy,
    CreateApp,
}

impl RateAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RateAction::Deploy => "deploy",
            RateAction::CreateApp => "app creation",
        }
    }

    /// The bucket's name in the database.
    fn key(self) -> &'static str {
        match self {
            RateAction::Deploy => "deploy",
            RateAction::CreateApp => "create_app",
        }
    }

    fn flags(self) -> &'static str {
        match self {
            RateAction::Deploy => "--deploy-rate-per-minute / --deploy-burst",
            RateAction::CreateApp => "--app-create-rate-per-minute / --app-create-burst",
        }
    }
}

/// One action's limit: `burst` at once, refilling at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_minute: f64,
    pub burst: f64,
}

/// The limits of every action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    pub deploy: Limit,
    pub create_app: Limit,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            deploy: Limit {
                per_minute: 30.0,
                burst: 10.0,
            },
            create_app: Limit {
                per_minute: 20.0,
                burst: 5.0,
            },
        }
    }
}

/// The limits; the buckets are rows.
#[derive(Debug)]
pub struct RateLimits {
    config: RateLimitConfig,
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimits { config }
    }

    fn limit(&self, action: RateAction) -> Limit {
        match action {
            RateAction::Deploy => self.config.deploy,
            RateAction::CreateApp => self.config.create_app,
        }
    }

    /// Takes one token of `org_id`'s bucket for `action`, or refuses with 429
    /// (`rate_limited`) saying when to retry.
    pub async fn check(
        &self,
        db: &PgPool,
        org_id: i64,
        action: RateAction,
    ) -> Result<(), ApiError> {
        self.check_at(db, org_id, action, None).await
    }

    /// [`check`](Self::check) at a given instant (`None`: the database's clock; tests
    /// pass instants).
    pub async fn check_at(
        &self,
        db: &PgPool,
        org_id: i64,
        action: RateAction,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        let limit = self.limit(action);
        let per_second = limit.per_minute / 60.0;
        let tokens =
            match ratelimit::take(db, org_id, action.key(), per_second, limit.burst, at).await? {
                Taken::Yes => return Ok(()),
                Taken::No { tokens } => tokens,
            };
        let wait = ((1.0 - tokens) / per_second).ceil().max(1.0);
        let retry_after_seconds = wait as u64;
        Err(ApiError::RateLimited {
            retry_after_seconds,
            message: format!(
                "this org reached its {} limit ({} per minute, {} at once)",
                action.as_str(),
                limit.per_minute,
                limit.burst
            ),
            next_step: format!(
                "retry after {retry_after_seconds} s (the Retry-After header); if the org needs more, ask the operator to raise loco-api serve {}",
                action.flags()
            ),
        })
    }
}
