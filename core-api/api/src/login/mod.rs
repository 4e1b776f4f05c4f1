//! Logins and sessions: GitHub OAuth (browser code flow and the CLI's device flow),
//! Google OpenID Connect, loco sessions with refresh, and the org deploy gate.
//!
//! The identity provider's access token is used for the few calls that establish who
//! the user is, then dropped: it is never stored, returned or logged. What the client
//! keeps is a loco session (see [`session`]). The deploy gate asks GitHub with a
//! server-side token instead ([`gate`]).
//!
//! Layout: [`config`] (flags and settings), `flow` (logins in progress, their secrets
//! sealed), `github` and `google` (the provider clients), `web` and `device` (the login
//! endpoints), [`session`] (tokens, refresh, logout) and [`gate`].

pub mod config;
pub(crate) mod device;
mod error;
mod flow;
pub mod gate;
mod github;
mod google;
pub mod session;
pub(crate) mod web;

use std::fmt;
use std::sync::Arc;

pub use config::AuthConfig;
pub use gate::check_deploy_gate;

use super::Ctx;
use super::error::ApiError;

/// Login settings with the HTTP client and the caches that go with them; one per process,
/// held by [`Ctx`].
pub struct Login {
    pub config: AuthConfig,
    /// `None` only when built by [`Login::disabled`]: no provider, no gate token.
    http: Option<reqwest::Client>,
    google: google::Cache,
    gate: gate::Cache,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's secrets print as <redacted>; the caches are not worth printing.
        f.debug_struct("Login")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The HTTP client for the providers could not be built (a TLS setup problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for identity providers: {0}")]
pub struct LoginSetupError(String);

impl Login {
    pub fn new(config: AuthConfig) -> Result<Login, LoginSetupError> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            // Token and API endpoints do not redirect; following one could send a code
            // or a token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loco-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LoginSetupError(e.to_string()))?;
        Ok(Login {
            config,
            http: Some(http),
            google: google::Cache::default(),
            gate: gate::Cache::default(),
        })
    }

    /// No provider and no gate token: what [`Ctx::new`] starts with.
    pub fn disabled() -> Login {
        Login {
            config: AuthConfig::default(),
            http: None,
            google: google::Cache::default(),
            gate: gate::Cache::default(),
        }
    }

    /// GitHub's settings, or the `not configured` answer.
    fn github(&self) -> Result<&config::GithubConfig, ApiError> {
        self.config
            .github
            .as_ref()
            .ok_or_else(|| error::not_configured("GitHub"))
    }

    /// Google's settings, or the `not configured` answer.
    fn google(&self) -> Result<&config::GoogleConfig, ApiError> {
        self.config
            .google
            .as_ref()
            .ok_or_else(|| error::not_configured("Google"))
    }

    /// The HTTP client, or the `not configured` answer for `what`.
    fn http(&self, what: &'static str) -> Result<&reqwest::Client, ApiError> {
        self.http
            .as_ref()
            .ok_or_else(|| error::not_configured(what))
    }
}

impl Ctx {
    /// This context with logins as configured (`loco-api serve` and tests call it once).
    pub fn with_login(mut self, login: Login) -> Ctx {
        self.login = Arc::new(login);
        self
    }
}
