//! `loco-api serve` flags for logins and sessions; they build loco-http's [`AuthConfig`].

use std::time::Duration;

use loco_crypto::Secret;
use loco_http::login::config::{AuthConfig, ConfigError, GithubConfig, GoogleConfig, provider_url};
use reqwest::Url;

/// `loco-api serve` flags for logins and sessions (all also read from the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// The URL clients reach this API at, e.g. https://api.loco.example.com; browser
    /// logins redirect back to it, so they are off without it.
    #[arg(long, env = "LOCO_API_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The client id of loco's GitHub OAuth app; GitHub logins are off without it.
    #[arg(long, env = "LOCO_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// The client secret of loco's GitHub OAuth app (browser logins need it; the
    /// device flow of the CLI does not).
    #[arg(long, env = "LOCO_GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<Secret>,
    /// GitHub's authorization page, where browser logins are sent.
    #[arg(
        long,
        env = "LOCO_GITHUB_AUTHORIZE_URL",
        default_value = "https://github.com/login/oauth/authorize"
    )]
    pub github_authorize_url: String,
    /// GitHub's token endpoint, where codes and device codes are exchanged.
    #[arg(
        long,
        env = "LOCO_GITHUB_TOKEN_URL",
        default_value = "https://github.com/login/oauth/access_token"
    )]
    pub github_token_url: String,
    /// GitHub's device-code endpoint, where CLI logins start.
    #[arg(
        long,
        env = "LOCO_GITHUB_DEVICE_CODE_URL",
        default_value = "https://github.com/login/device/code"
    )]
    pub github_device_code_url: String,
    /// GitHub's REST API (users, emails, repository collaborators).
    #[arg(
        long,
        env = "LOCO_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// A server-side GitHub token the deploy gate uses to ask whether a user is a
    /// collaborator of an org's listed repositories (needs read access to them). Without
    /// it, orgs that turn the gate on cannot deploy.
    #[arg(long, env = "LOCO_GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<Secret>,

    /// The OAuth client id of loco for Google; Google logins are off without it.
    #[arg(long, env = "LOCO_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    /// The OAuth client secret of loco for Google.
    #[arg(long, env = "LOCO_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<Secret>,
    /// The OpenID Connect issuer; its discovery document is read from
    /// ISSUER/.well-known/openid-configuration.
    #[arg(
        long,
        env = "LOCO_GOOGLE_ISSUER",
        default_value = "https://accounts.google.com"
    )]
    pub google_issuer: String,

    /// How long a session's access token is valid, in seconds.
    #[arg(long, env = "LOCO_SESSION_ACCESS_TTL", default_value_t = 15 * 60)]
    pub session_access_ttl: u64,
    /// How long a session's refresh token is valid, in seconds; each refresh starts it anew.
    #[arg(long, env = "LOCO_SESSION_REFRESH_TTL", default_value_t = 30 * 24 * 3600)]
    pub session_refresh_ttl: u64,
}

impl AuthArgs {
    /// Checks the flags and builds the config; a half-configured provider is an error
    /// here rather than a login that fails later.
    pub fn into_config(self) -> Result<AuthConfig, ConfigError> {
        let public_url = match self.public_url.as_deref().filter(|s| !s.is_empty()) {
            Some(u) => {
                let url = Url::parse(u).map_err(|e| ConfigError {
                    flag: "--public-url",
                    message: format!("not a URL ({e})"),
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError {
                        flag: "--public-url",
                        message: "must be an http(s) URL".to_string(),
                    });
                }
                Some(url)
            }
            None => None,
        };
        let github = match self.github_client_id.filter(|s| !s.is_empty()) {
            Some(client_id) => Some(GithubConfig {
                client_id,
                client_secret: self.github_client_secret.filter(|s| !s.expose().is_empty()),
                authorize_url: provider_url("--github-authorize-url", &self.github_authorize_url)?,
                token_url: provider_url("--github-token-url", &self.github_token_url)?,
                device_code_url: provider_url(
                    "--github-device-code-url",
                    &self.github_device_code_url,
                )?,
            }),
            None => None,
        };
        let google = match self.google_client_id.filter(|s| !s.is_empty()) {
            Some(client_id) => {
                let client_secret = self
                    .google_client_secret
                    .filter(|s| !s.expose().is_empty())
                    .ok_or_else(|| ConfigError {
                        flag: "--google-client-secret",
                        message: "is required when --google-client-id is set".to_string(),
                    })?;
                provider_url("--google-issuer", &self.google_issuer)?;
                Some(GoogleConfig {
                    client_id,
                    client_secret,
                    issuer: self.google_issuer.trim_end_matches('/').to_string(),
                })
            }
            None => None,
        };
        let ttl = |flag, secs: u64, min: u64, max: u64| {
            if (min..=max).contains(&secs) {
                Ok(Duration::from_secs(secs))
            } else {
                Err(ConfigError {
                    flag,
                    message: format!("must be between {min} and {max} seconds"),
                })
            }
        };
        Ok(AuthConfig {
            public_url,
            github,
            google,
            github_api_url: provider_url("--github-api-url", &self.github_api_url)?,
            github_token: self.github_token.filter(|s| !s.expose().is_empty()),
            access_ttl: ttl(
                "--session-access-ttl",
                self.session_access_ttl,
                60,
                24 * 3600,
            )?,
            refresh_ttl: ttl(
                "--session-refresh-ttl",
                self.session_refresh_ttl,
                3600,
                365 * 24 * 3600,
            )?,
            ..AuthConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
    }

    fn parse(args: &[&str]) -> Result<AuthConfig, ConfigError> {
        let mut argv = vec!["loco-api"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().auth.into_config()
    }

    #[test]
    fn nothing_configured_means_no_provider() {
        let c = parse(&[]).unwrap();
        assert!(c.github.is_none() && c.google.is_none() && c.public_url.is_none());
        assert_eq!(c.access_ttl, Duration::from_secs(900));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = parse(&[
            "--github-client-id",
            "gh-id",
            "--github-client-secret",
            "gh-very-secret",
            "--github-token",
            "ghp-server-secret",
            "--google-client-id",
            "g-id",
            "--google-client-secret",
            "g-very-secret",
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("gh-id"));
        for secret in ["gh-very-secret", "ghp-server-secret", "g-very-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn plain_http_only_for_loopback_and_google_needs_a_secret() {
        assert!(provider_url("--x", "http://127.0.0.1:9/a").is_ok());
        assert!(provider_url("--x", "http://localhost/a").is_ok());
        let e = provider_url("--x", "http://github.example.com").unwrap_err();
        assert!(e.to_string().contains("https"));
        let e = parse(&["--google-client-id", "g"]).unwrap_err();
        assert_eq!(e.flag, "--google-client-secret");
        let e = parse(&["--session-access-ttl", "5"]).unwrap_err();
        assert_eq!(e.flag, "--session-access-ttl");
    }
}
