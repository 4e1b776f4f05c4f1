//! `loco-api serve`'s per-org rate-limit flags.

use loco_http::ratelimit::{Limit, RateLimitConfig};

/// `loco-api serve`'s rate-limit flags (flattened into its arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitArgs {
    /// Deploys an org may start per minute, sustained (shared by every loco-api replica).
    #[arg(long, env = "LOCO_API_DEPLOY_RATE_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub deploy_rate_per_minute: u32,
    /// Deploys an org may start at once before the per-minute rate applies.
    #[arg(long, env = "LOCO_API_DEPLOY_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub deploy_burst: u32,
    /// Apps an org may create per minute, sustained (shared by every loco-api replica).
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
