//! The GitHub client: code and device-code exchange, who the user is, and whether a
//! user collaborates on a repository. Thin I/O over GitHub's documented endpoints; every
//! base URL comes from [`super::config`].
//!
//! GitHub's token endpoint answers errors with 200 and `{"error": ...}` (and form
//! encoding unless asked for JSON), so every call asks for JSON and reads `error` first.

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::config::GithubConfig;
use super::error::ProviderError;
use loco_crypto::Secret;

const GITHUB: &str = "GitHub";
/// What loco asks for: the profile and the email addresses (to keep a verified one).
const SCOPE: &str = "read:user user:email";

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    interval: Option<u64>,
}

async fn token_call(
    http: &reqwest::Client,
    cfg: &GithubConfig,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, ProviderError> {
    let resp = http
        .post(cfg.token_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GITHUB, e))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(ProviderError::Unreachable {
            provider: GITHUB,
            detail: format!("token endpoint answered {status}"),
        });
    }
    // 4xx with an OAuth error body is a refusal; without one it is unusable.
    resp.json::<TokenAnswer>().await.map_err(|_| {
        ProviderError::malformed(
            GITHUB,
            format!("token endpoint answered {status} without an OAuth JSON body"),
        )
    })
}

/// Exchanges a browser login's code (with its PKCE verifier) for GitHub's access token.
pub async fn exchange_code(
    http: &reqwest::Client,
    cfg: &GithubConfig,
    client_secret: &Secret,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<Secret, ProviderError> {
    let answer = token_call(
        http,
        cfg,
        &[
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", client_secret.expose()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await?;
    match (answer.access_token, answer.error) {
        (Some(t), None) if !t.is_empty() => Ok(Secret::new(t)),
        (_, Some(code)) => Err(ProviderError::refused(GITHUB, &code)),
        _ => Err(ProviderError::malformed(
            GITHUB,
            "token answer without access_token",
        )),
    }
}

/// A started device login, as GitHub answers it.
#[derive(Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: u64,
    pub interval: Option<u64>,
}

/// Starts a device login: the user enters `user_code` at `verification_uri`.
pub async fn start_device(
    http: &reqwest::Client,
    cfg: &GithubConfig,
) -> Result<DeviceCode, ProviderError> {
    let resp = http
        .post(cfg.device_code_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[("client_id", cfg.client_id.as_str()), ("scope", SCOPE)])
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GITHUB, e))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(ProviderError::Unreachable {
            provider: GITHUB,
            detail: format!("device-code endpoint answered {status}"),
        });
    }
    let body: serde_json::Value = resp.json().await.map_err(|_| {
        ProviderError::malformed(
            GITHUB,
            format!("device-code endpoint answered {status} without JSON"),
        )
    })?;
    if let Some(code) = body.get("error").and_then(|e| e.as_str()) {
        // e.g. device_flow_disabled, incorrect_client_credentials: the OAuth app's setup.
        return Err(ProviderError::malformed(
            GITHUB,
            format!(
                "device-code endpoint refused: {}",
                ProviderError::refused(GITHUB, code)
            ),
        ));
    }
    serde_json::from_value(body)
        .map_err(|_| ProviderError::malformed(GITHUB, "device-code answer lacks fields"))
}

/// Where a device login stands.
#[derive(Debug)]
pub enum DevicePoll {
    Token(Secret),
    Pending,
    /// Polling too fast: wait this much longer (GitHub's new interval, when given).
    SlowDown(Option<u64>),
    Expired,
    Denied,
}

/// Asks GitHub once whether the user has entered the code yet.
pub async fn poll_device(
    http: &reqwest::Client,
    cfg: &GithubConfig,
    device_code: &str,
) -> Result<DevicePoll, ProviderError> {
    let answer = token_call(
        http,
        cfg,
        &[
            ("client_id", cfg.client_id.as_str()),
            ("device_code", device_code),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ],
    )
    .await?;
    match (answer.access_token, answer.error.as_deref()) {
        (Some(t), None) if !t.is_empty() => Ok(DevicePoll::Token(Secret::new(t))),
        (_, Some("authorization_pending")) => Ok(DevicePoll::Pending),
        (_, Some("slow_down")) => Ok(DevicePoll::SlowDown(answer.interval)),
        (_, Some("expired_token")) => Ok(DevicePoll::Expired),
        (_, Some("access_denied")) => Ok(DevicePoll::Denied),
        (_, Some(code)) => Err(ProviderError::malformed(
            GITHUB,
            format!(
                "device token endpoint refused: {}",
                ProviderError::refused(GITHUB, code)
            ),
        )),
        _ => Err(ProviderError::malformed(
            GITHUB,
            "token answer without access_token",
        )),
    }
}

/// Who a GitHub access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub login: String,
    /// The primary email, only when GitHub says it is verified.
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct UserAnswer {
    id: i64,
    login: String,
}

#[derive(Deserialize)]
struct EmailAnswer {
    email: String,
    primary: bool,
    verified: bool,
}

fn api_url(api: &Url, path: &[&str]) -> Result<Url, ProviderError> {
    let mut url = api.clone();
    url.path_segments_mut()
        .map_err(|_| ProviderError::malformed(GITHUB, "the API URL cannot take a path"))?
        .pop_if_empty()
        .extend(path);
    Ok(url)
}

fn api_get(http: &reqwest::Client, url: Url, token: &Secret) -> reqwest::RequestBuilder {
    http.get(url)
        .bearer_auth(token.expose())
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
}

/// GitHub logins: letters, digits and single hyphens, at most 39 characters. Anything
/// else is refused before it reaches a URL path or the users table.
pub fn valid_login(login: &str) -> bool {
    (1..=39).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
}

/// Reads the user behind `token` (GET /user, then /user/emails for a verified primary
/// address; a token without the email scope just yields no email).
pub async fn identity(
    http: &reqwest::Client,
    api: &Url,
    token: &Secret,
) -> Result<Identity, ProviderError> {
    let resp = api_get(http, api_url(api, &["user"])?, token)
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GITHUB, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ProviderError::Malformed {
            provider: GITHUB,
            detail: format!("GET /user answered {status}"),
        });
    }
    let user: UserAnswer = resp
        .json()
        .await
        .map_err(|_| ProviderError::malformed(GITHUB, "GET /user answer lacks id or login"))?;
    if !valid_login(&user.login) {
        return Err(ProviderError::malformed(
            GITHUB,
            "GET /user returned an invalid login",
        ));
    }
    let resp = api_get(http, api_url(api, &["user", "emails"])?, token)
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GITHUB, e))?;
    let email = if resp.status().is_success() {
        resp.json::<Vec<EmailAnswer>>()
            .await
            .map_err(|_| ProviderError::malformed(GITHUB, "GET /user/emails answer is not a list"))?
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email)
    } else {
        None
    };
    Ok(Identity {
        id: user.id,
        login: user.login,
        email,
    })
}

/// Whether `login` collaborates on `repo` ("owner/name"): GitHub answers 204 for yes and
/// 404 for no; anything else means loco cannot tell.
pub async fn is_collaborator(
    http: &reqwest::Client,
    api: &Url,
    token: &Secret,
    repo: &str,
    login: &str,
) -> Result<bool, ProviderError> {
    let (owner, name) = repo.split_once('/').ok_or_else(|| {
        ProviderError::malformed(GITHUB, "deploy gate repository is not owner/name")
    })?;
    let url = api_url(api, &["repos", owner, name, "collaborators", login])?;
    let resp = api_get(http, url, token)
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GITHUB, e))?;
    match resp.status() {
        StatusCode::NO_CONTENT => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        other => Err(ProviderError::Unreachable {
            provider: GITHUB,
            detail: format!("collaborator check on {repo} answered {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_that_could_escape_a_url_path_are_refused() {
        assert!(valid_login("octo-cat"));
        assert!(valid_login("A1"));
        for bad in ["", "-x", "a/b", "a..", "a%2f", &"x".repeat(40)] {
            assert!(!valid_login(bad), "{bad}");
        }
    }

    #[test]
    fn api_paths_are_escaped_segments() {
        let api = Url::parse("http://127.0.0.1:9/gh/api/").unwrap();
        let u = api_url(&api, &["repos", "o", "r?x", "collaborators", "l"]).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/gh/api/repos/o/r%3Fx/collaborators/l"
        );
    }
}
