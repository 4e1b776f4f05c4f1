//! Login settings: which identity providers are configured, where they live, and how
//! long loco sessions last.
//!
//! Every provider URL is configurable so tests run the real client code against a local
//! stand-in (DESIGN.md: GitHub and Google are the only outside services). Client secrets
//! and the server's GitHub token are [`Secret`]s: they print as `<redacted>` in Debug
//! output, `loco-api serve` hides their env values in `--help`, and no log line names them.
//! The flags themselves are the binary's (`loco-api`'s `flags::auth`).

use std::time::Duration;

use reqwest::Url;

use loco_crypto::Secret;

/// A GitHub OAuth app and GitHub's endpoints.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub device_code_url: Url,
}

/// A Google OAuth client and the OpenID Connect issuer.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// Compared exactly with the discovery document's and the ID tokens' `iss`.
    pub issuer: String,
}

/// Everything logins, sessions and the deploy gate need to know.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Base of redirect URIs (`{public_url}/v1/auth/{provider}/callback`).
    pub public_url: Option<Url>,
    pub github: Option<GithubConfig>,
    pub google: Option<GoogleConfig>,
    /// GitHub's REST API, for user lookups at login and the deploy gate.
    pub github_api_url: Url,
    /// The deploy gate's server-side token.
    pub github_token: Option<Secret>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Deadline of one call to a provider.
    pub http_timeout: Duration,
    /// How long a started login (browser or device) may take.
    pub flow_ttl: Duration,
    /// How long a deploy-gate answer of GitHub is reused.
    pub gate_cache_ttl: Duration,
}

impl Default for AuthConfig {
    /// No provider configured: every login endpoint answers `login_provider_not_configured`.
    fn default() -> Self {
        AuthConfig {
            public_url: None,
            github: None,
            google: None,
            github_api_url: Url::parse("https://api.github.com").expect("literal URL"),
            github_token: None,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            http_timeout: Duration::from_secs(10),
            flow_ttl: Duration::from_secs(15 * 60),
            gate_cache_ttl: Duration::from_secs(60),
        }
    }
}

/// A setting that cannot be used; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

/// Parses a provider URL. Plain http is accepted only for loopback hosts (a local
/// stand-in): codes, client secrets and tokens must never cross a network unencrypted.
pub fn provider_url(flag: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError {
        flag,
        message: format!("not a URL ({e})"),
    })?;
    let loopback = url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError {
            flag,
            message: "must be an https:// URL (http:// only for localhost)".to_string(),
        }),
    }
}
