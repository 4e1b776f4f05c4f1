//! The Google (OpenID Connect) client: the discovery document, the JWKS, the code
//! exchange, and the validation of the ID token, which is the only thing loco reads from
//! the token answer (Google's access token is dropped unused).
//!
//! An ID token counts only when its RS256 signature verifies with a key of the issuer's
//! JWKS (other algorithms are refused, so no `alg` confusion), `iss` is the configured
//! issuer, `aud` is loco's client id, it has not expired, its `nonce` is the one this
//! login sent, and its email is verified.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::config::{GoogleConfig, provider_url};
use super::error::ProviderError;

const GOOGLE: &str = "Google";
/// How long the discovery document and the JWKS are reused (an unknown `kid` refetches).
const CACHE_TTL: Duration = Duration::from_secs(3600);

/// The parts of the discovery document loco uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

#[derive(Debug, Clone)]
struct Cached {
    discovery: Discovery,
    jwks: JwkSet,
    fetched: Instant,
}

/// The issuer's discovery document and keys, fetched at most once an hour.
#[derive(Debug, Default)]
pub struct Cache(tokio::sync::Mutex<Option<Cached>>);

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<T, ProviderError> {
    let url = provider_url("google", url)
        .map_err(|_| ProviderError::malformed(GOOGLE, format!("{what} URL is not https")))?;
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GOOGLE, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ProviderError::Unreachable {
            provider: GOOGLE,
            detail: format!("{what} answered {status}"),
        });
    }
    resp.json()
        .await
        .map_err(|_| ProviderError::malformed(GOOGLE, format!("{what} is not the expected JSON")))
}

async fn fetch(http: &reqwest::Client, cfg: &GoogleConfig) -> Result<Cached, ProviderError> {
    let discovery: Discovery = get_json(
        http,
        &format!("{}/.well-known/openid-configuration", cfg.issuer),
        "discovery document",
    )
    .await?;
    if discovery.issuer.trim_end_matches('/') != cfg.issuer {
        return Err(ProviderError::malformed(
            GOOGLE,
            "the discovery document names another issuer",
        ));
    }
    let jwks: JwkSet = get_json(http, &discovery.jwks_uri, "JWKS").await?;
    Ok(Cached {
        discovery,
        jwks,
        fetched: Instant::now(),
    })
}

impl Cache {
    /// The discovery document and JWKS; `refresh` refetches (a `kid` we do not know
    /// yet means the issuer rotated its keys).
    async fn get(
        &self,
        http: &reqwest::Client,
        cfg: &GoogleConfig,
        refresh: bool,
    ) -> Result<(Discovery, JwkSet), ProviderError> {
        let mut guard = self.0.lock().await;
        if let Some(c) = guard.as_ref()
            && !refresh
            && c.fetched.elapsed() < CACHE_TTL
        {
            return Ok((c.discovery.clone(), c.jwks.clone()));
        }
        let c = fetch(http, cfg).await?;
        let out = (c.discovery.clone(), c.jwks.clone());
        *guard = Some(c);
        Ok(out)
    }

    pub async fn discovery(
        &self,
        http: &reqwest::Client,
        cfg: &GoogleConfig,
    ) -> Result<Discovery, ProviderError> {
        Ok(self.get(http, cfg, false).await?.0)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
}

/// Exchanges the code for the token answer and returns only its ID token.
pub async fn exchange_code(
    http: &reqwest::Client,
    cfg: &GoogleConfig,
    discovery: &Discovery,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<String, ProviderError> {
    let url = provider_url("google", &discovery.token_endpoint)
        .map_err(|_| ProviderError::malformed(GOOGLE, "token endpoint is not https"))?;
    let resp = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.expose()),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .map_err(|e| ProviderError::unreachable(GOOGLE, e))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(ProviderError::Unreachable {
            provider: GOOGLE,
            detail: format!("token endpoint answered {status}"),
        });
    }
    let answer: TokenAnswer = resp.json().await.map_err(|_| {
        ProviderError::malformed(
            GOOGLE,
            format!("token endpoint answered {status} without JSON"),
        )
    })?;
    match (answer.id_token, answer.error) {
        (Some(t), None) => Ok(t),
        (_, Some(code)) => Err(ProviderError::refused(GOOGLE, &code)),
        _ => Err(ProviderError::malformed(
            GOOGLE,
            "token answer without id_token",
        )),
    }
}

/// The claims loco reads from an ID token.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    email: Option<String>,
    /// A boolean in Google's ID tokens; some issuers send the string "true".
    email_verified: Option<serde_json::Value>,
    nonce: Option<String>,
}

/// A validated Google identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    pub email: String,
}

/// Why an ID token was refused; each is a login refusal, none a server error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("its signature does not verify with the issuer's keys")]
    Signature,
    #[error("it was issued for another application (audience)")]
    Audience,
    #[error("it was issued by another issuer")]
    Issuer,
    #[error("it has expired")]
    Expired,
    #[error("its nonce is not this login's")]
    Nonce,
    #[error("its email address is missing or not verified")]
    EmailUnverified,
    #[error("it is malformed")]
    Malformed,
}

/// Validates an ID token against keys, issuer, audience, expiry and nonce.
pub fn validate(
    id_token: &str,
    jwks: &JwkSet,
    cfg: &GoogleConfig,
    nonce: &str,
) -> Result<Identity, IdTokenError> {
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| IdTokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(IdTokenError::Signature);
    }
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or(IdTokenError::Signature)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| IdTokenError::Signature)?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[cfg.client_id.as_str()]);
    // Google's tokens say "accounts.google.com" or "https://accounts.google.com".
    let bare = cfg.issuer.trim_start_matches("https://");
    v.set_issuer(&[cfg.issuer.as_str(), bare]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(id_token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidAlgorithm | K::InvalidRsaKey(_) => {
                IdTokenError::Signature
            }
            K::InvalidAudience => IdTokenError::Audience,
            K::InvalidIssuer => IdTokenError::Issuer,
            K::ExpiredSignature => IdTokenError::Expired,
            _ => IdTokenError::Malformed,
        }
    })?;
    let c = data.claims;
    if c.nonce.as_deref() != Some(nonce) {
        return Err(IdTokenError::Nonce);
    }
    let verified = matches!(&c.email_verified, Some(serde_json::Value::Bool(true)))
        || matches!(&c.email_verified, Some(serde_json::Value::String(s)) if s == "true");
    match c.email {
        Some(email) if verified && !email.is_empty() && email.len() <= 320 => {
            Ok(Identity { sub: c.sub, email })
        }
        _ => Err(IdTokenError::EmailUnverified),
    }
}

/// Validates with the cached keys, refetching them once when the token's key is unknown.
pub async fn validate_fresh(
    cache: &Cache,
    http: &reqwest::Client,
    cfg: &GoogleConfig,
    id_token: &str,
    nonce: &str,
) -> Result<Result<Identity, IdTokenError>, ProviderError> {
    let (_, jwks) = cache.get(http, cfg, false).await?;
    match validate(id_token, &jwks, cfg, nonce) {
        Err(IdTokenError::Signature) => {
            let kid_known = jsonwebtoken::decode_header(id_token)
                .ok()
                .and_then(|h| h.kid)
                .is_some_and(|kid| jwks.find(&kid).is_some());
            if kid_known {
                return Ok(Err(IdTokenError::Signature));
            }
            let (_, jwks) = cache.get(http, cfg, true).await?;
            Ok(validate(id_token, &jwks, cfg, nonce))
        }
        other => Ok(other),
    }
}
