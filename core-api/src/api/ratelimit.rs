//! Per-org rate limits of the actions that cost the platform most: deploys and app
//! creation. One token bucket per (org, action), in memory: a bucket holds up to
//! `burst` tokens and refills at `per_minute`; an action takes one token or is refused
//! with 429 and `Retry-After`.
//!
//! In memory means per process: with several loco-api replicas an org gets the limit
//! once per replica. That bounds abuse well enough without a database write per
//! request; a shared limit would need one.
//!
//! Memory stays bounded: a bucket that has refilled to full is the same as no bucket,
//! so when the map grows past a threshold the full ones are dropped (amortised, never
//! on every call).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;

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

/// `loco-api serve`'s rate-limit flags (flattened into its arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitArgs {
    /// Deploys an org may start per minute, sustained (per loco-api process).
    #[arg(long, env = "LOCO_API_DEPLOY_RATE_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub deploy_rate_per_minute: u32,
    /// Deploys an org may start at once before the per-minute rate applies.
    #[arg(long, env = "LOCO_API_DEPLOY_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub deploy_burst: u32,
    /// Apps an org may create per minute, sustained (per loco-api process).
    #[arg(long, env = "LOCO_API_APP_CREATE_RATE_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub app_create_rate_per_minute: u32,
    /// Apps an org may create at once before the per-minute rate applies.
    #[arg(long, env = "LOCO_API_APP_CREATE_BURST", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub app_create_burst: u32,
}

impl From<&RateLimitArgs> for RateLimitConfig {
    fn from(a: &RateLimitArgs) -> Self {
        RateLimitConfig {
            deploy: Limit {
                per_minute: f64::from(a.deploy_rate_per_minute),
                burst: f64::from(a.deploy_burst),
            },
            create_app: Limit {
                per_minute: f64::from(a.app_create_rate_per_minute),
                burst: f64::from(a.app_create_burst),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<(i64, RateAction), Bucket>,
    /// The map size at which full buckets are swept next.
    sweep_at: usize,
}

/// The size below which the map is never swept.
const SWEEP_FLOOR: usize = 4096;

/// The buckets of every org, shared by the process's requests.
#[derive(Debug)]
pub struct RateLimits {
    config: RateLimitConfig,
    buckets: Mutex<Buckets>,
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimits {
            config,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
        }
    }

    fn limit(&self, action: RateAction) -> Limit {
        match action {
            RateAction::Deploy => self.config.deploy,
            RateAction::CreateApp => self.config.create_app,
        }
    }

    /// Takes one token of `org_id`'s bucket for `action`, or refuses with 429
    /// (`rate_limited`) saying when to retry.
    pub fn check(&self, org_id: i64, action: RateAction) -> Result<(), ApiError> {
        self.check_at(org_id, action, Instant::now())
    }

    /// [`check`](Self::check) at a given instant (for tests).
    pub fn check_at(&self, org_id: i64, action: RateAction, now: Instant) -> Result<(), ApiError> {
        let limit = self.limit(action);
        let per_second = limit.per_minute / 60.0;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.map.len() >= b.sweep_at {
            b.map.retain(|(_, action), bucket| {
                let limit = match action {
                    RateAction::Deploy => self.config.deploy,
                    RateAction::CreateApp => self.config.create_app,
                };
                refilled(bucket, limit, now) < limit.burst
            });
            b.sweep_at = (b.map.len() * 2).max(SWEEP_FLOOR);
        }
        let bucket = b.map.entry((org_id, action)).or_insert(Bucket {
            tokens: limit.burst,
            updated: now,
        });
        bucket.tokens = refilled(bucket, limit, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0);
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

    /// Buckets held in memory (for tests of the eviction).
    pub fn buckets(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

fn refilled(bucket: &Bucket, limit: Limit, now: Instant) -> f64 {
    let elapsed = now
        .checked_duration_since(bucket.updated)
        .unwrap_or(Duration::ZERO);
    (bucket.tokens + elapsed.as_secs_f64() * limit.per_minute / 60.0).min(limit.burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: f64, burst: f64) -> RateLimits {
        let l = Limit { per_minute, burst };
        RateLimits::new(RateLimitConfig {
            deploy: l,
            create_app: l,
        })
    }

    fn retry_after(e: ApiError) -> u64 {
        match e {
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => retry_after_seconds,
            other => panic!("not rate limited: {other:?}"),
        }
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let r = limits(6.0, 2.0); // a token every 10 s
        let t = Instant::now();
        r.check_at(1, RateAction::Deploy, t).unwrap();
        r.check_at(1, RateAction::Deploy, t).unwrap();
        let e = r.check_at(1, RateAction::Deploy, t).unwrap_err();
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(e.reason(), "rate_limited");
        assert_eq!(retry_after(e), 10);
        assert_eq!(
            retry_after(
                r.check_at(1, RateAction::Deploy, t + Duration::from_secs(4))
                    .unwrap_err()
            ),
            6
        );
        r.check_at(1, RateAction::Deploy, t + Duration::from_secs(10))
            .unwrap();
    }

    #[test]
    fn orgs_and_actions_have_their_own_buckets() {
        let r = limits(1.0, 1.0);
        let t = Instant::now();
        r.check_at(1, RateAction::Deploy, t).unwrap();
        assert!(r.check_at(1, RateAction::Deploy, t).is_err());
        r.check_at(2, RateAction::Deploy, t).unwrap();
        r.check_at(1, RateAction::CreateApp, t).unwrap();
    }

    #[test]
    fn full_buckets_are_evicted_when_the_map_grows() {
        let r = limits(60.0, 1.0); // refills fully within a second
        let t = Instant::now();
        for org in 0..SWEEP_FLOOR as i64 {
            r.check_at(org, RateAction::Deploy, t).unwrap();
        }
        assert_eq!(r.buckets(), SWEEP_FLOOR);
        // A second later every bucket is full again: the next call sweeps them all.
        let later = t + Duration::from_secs(2);
        r.check_at(-1, RateAction::Deploy, later).unwrap();
        assert_eq!(r.buckets(), 1);
        // An org still limited survives a sweep.
        let r = limits(1.0, 1.0);
        r.check_at(7, RateAction::Deploy, t).unwrap();
        for org in 0..SWEEP_FLOOR as i64 {
            r.check_at(1000 + org, RateAction::Deploy, t).unwrap();
        }
        assert!(
            r.check_at(7, RateAction::Deploy, t + Duration::from_secs(1))
                .is_err()
        );
    }
}
