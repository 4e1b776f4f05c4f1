//! Logins in progress: the browser's `state` (with PKCE and, for Google, a nonce) and
//! the CLI's device id.
//!
//! The database keeps only the SHA-256 of the handle the client holds (`state` or device
//! id) and the flow's secrets sealed with XChaCha20-Poly1305 under a key derived from
//! that handle: someone reading the database cannot finish another person's login.
//! A browser login is also bound to a cookie set when it started, so a callback URL
//! sent to someone else's browser (login CSRF) is refused.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::bad_state;
use crate::Ctx;
use crate::error::ApiError;
use loco_db::orgs::Provider;
use loco_db::sessions::{self, FlowKind, NewFlow};
use loco_db::tokens::hash;

/// The cookie that binds a browser login to the browser that started it.
pub const BINDING_COOKIE: &str = "loco_login";

/// What a login must keep secret until it completes.
#[derive(Default, Serialize, Deserialize)]
pub struct FlowSecrets {
    pub pkce_verifier: Option<String>,
    pub nonce: Option<String>,
    pub device_code: Option<String>,
}

impl std::fmt::Debug for FlowSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowSecrets(<redacted>)")
    }
}

/// `n` random bytes from the OS, base64url without padding (PKCE verifiers, nonces,
/// cookie values).
pub fn random_b64(n: usize) -> Result<Zeroizing<String>, ApiError> {
    let mut raw = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(raw.as_mut_slice()).map_err(ApiError::internal)?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_slice())))
}

/// The PKCE S256 challenge of a verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn cipher(handle: &str) -> Result<XChaCha20Poly1305, ApiError> {
    let key = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(
        [b"loco/login-flow/v1\0".as_slice(), handle.as_bytes()].concat(),
    )));
    XChaCha20Poly1305::new_from_slice(key.as_ref())
        .map_err(|_| ApiError::internal("login flow key has the wrong length"))
}

const AD: &[u8] = b"loco/login-flow/v1";
const NONCE_LEN: usize = 24;

/// Seals the flow's secrets under the handle: nonce followed by ciphertext.
pub fn seal(handle: &str, secrets: &FlowSecrets) -> Result<Vec<u8>, ApiError> {
    let plain = Zeroizing::new(serde_json::to_vec(secrets).map_err(ApiError::internal)?);
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(ApiError::internal)?;
    let ciphertext = cipher(handle)?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: AD,
            },
        )
        .map_err(|_| ApiError::internal("sealing a login flow failed"))?;
    Ok([nonce.as_slice(), &ciphertext].concat())
}

/// Opens what [`seal`] sealed under the same handle.
pub fn open(handle: &str, sealed: &[u8]) -> Result<FlowSecrets, ApiError> {
    let fail = || ApiError::internal("a stored login flow cannot be opened");
    if sealed.len() < NONCE_LEN {
        return Err(fail());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| fail())?;
    let plain = Zeroizing::new(
        cipher(handle)?
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: AD,
                },
            )
            .map_err(|_| fail())?,
    );
    serde_json::from_slice(&plain).map_err(|_| fail())
}

/// A browser login just started: what goes into the authorize URL and the cookie.
#[derive(Debug)]
pub struct StartedWeb {
    pub state: Zeroizing<String>,
    pub pkce_challenge: String,
    pub nonce: Zeroizing<String>,
    pub cookie: HeaderValue,
}

/// Records a browser login of `provider` and returns its `state`, PKCE challenge,
/// nonce and binding cookie.
pub async fn start_web(ctx: &Ctx, provider: Provider) -> Result<StartedWeb, ApiError> {
    let state = random_b64(32)?;
    let binding = random_b64(32)?;
    let verifier = random_b64(32)?;
    let nonce = random_b64(32)?;
    let sealed = seal(
        &state,
        &FlowSecrets {
            pkce_verifier: Some(verifier.to_string()),
            nonce: Some(nonce.to_string()),
            device_code: None,
        },
    )?;
    let ttl = ctx.login.config.flow_ttl;
    sessions::create_flow(
        ctx.db(),
        &NewFlow {
            handle_sha256: hash(&state),
            provider,
            kind: FlowKind::Web,
            binding_sha256: Some(hash(&binding)),
            sealed: &sealed,
            interval_seconds: 5,
            expires_at: Utc::now() + ttl,
        },
    )
    .await?;
    let secure = ctx
        .login
        .config
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https");
    let cookie = format!(
        "{BINDING_COOKIE}={}; Path=/v1/auth; HttpOnly; SameSite=Lax; Max-Age={}{}",
        binding.as_str(),
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    Ok(StartedWeb {
        pkce_challenge: pkce_challenge(&verifier),
        state,
        nonce,
        cookie: HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    })
}

/// The cookie header that removes the binding cookie once the login is over.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("loco_login=; Path=/v1/auth; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Ends a browser login at its callback: the `state` must be known, unused, unexpired
/// and come back to the browser that started it. It is spent whatever happens next.
pub async fn finish_web(
    ctx: &Ctx,
    provider: Provider,
    state: Option<&str>,
    headers: &HeaderMap,
) -> Result<FlowSecrets, ApiError> {
    let Some(state) = state.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return Err(bad_state("the callback carries no `state`"));
    };
    let Some(flow) = sessions::take_flow(ctx.db(), &hash(state), provider, FlowKind::Web).await?
    else {
        return Err(bad_state(
            "the login's `state` is unknown or was already used",
        ));
    };
    if flow.expires_at <= Utc::now() {
        return Err(bad_state("the login took too long and expired"));
    }
    let bound = cookie_value(headers, BINDING_COOKIE)
        .is_some_and(|c| flow.binding_sha256.as_deref() == Some(&hash(c)[..]));
    if !bound {
        return Err(bad_state(
            "this login was not started in this browser (its login cookie is missing or different)",
        ));
    }
    open(state, &flow.sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_handle() {
        let s = FlowSecrets {
            device_code: Some("dc-123".into()),
            ..Default::default()
        };
        let sealed = seal("handle-a", &s).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("dc-123"));
        assert_eq!(
            open("handle-a", &sealed).unwrap().device_code.as_deref(),
            Some("dc-123")
        );
        assert!(open("handle-b", &sealed).is_err());
        assert!(open("handle-a", &sealed[..10]).is_err());
        assert_eq!(format!("{s:?}"), "FlowSecrets(<redacted>)");
    }

    #[test]
    fn pkce_challenge_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; loco_login=xyz; b=2"),
        );
        assert_eq!(cookie_value(&h, BINDING_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
