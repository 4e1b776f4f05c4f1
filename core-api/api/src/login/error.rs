//! How login failures reach the client: with a stable reason and a next step, never
//! with a provider's raw answer (which could echo a code or a token back).

use axum::http::StatusCode;

use crate::error::ApiError;

/// `what` logins (or the deploy gate's GitHub access) are not set up on this server.
pub fn not_configured(what: &'static str) -> ApiError {
    let next_step = match what {
        "GitHub" => {
            "the operator sets loco-api serve --github-client-id (and --github-client-secret and --public-url for browser logins); meanwhile use an API token"
        }
        "Google" => {
            "the operator sets loco-api serve --google-client-id, --google-client-secret and --public-url; meanwhile log in with GitHub or use an API token"
        }
        _ => "the operator configures the login providers of loco-api serve (see --help)",
    };
    ApiError::Rejected {
        status: StatusCode::NOT_FOUND,
        reason: "login_provider_not_configured",
        message: format!("{what} logins are not configured on this loco installation"),
        next_step,
    }
}

/// A login in progress that cannot continue: unknown, used, expired or started by
/// another browser.
pub fn bad_state(message: impl Into<String>) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::BAD_REQUEST,
        reason: "login_state_invalid",
        message: message.into(),
        next_step: "start the login again from its beginning (GET /v1/auth/{provider}/login) in the same browser",
    }
}

/// The user declined on the provider's page.
pub fn denied(provider: &str) -> ApiError {
    ApiError::Forbidden {
        reason: "login_denied",
        message: format!("the login was declined at {provider}"),
        next_step: format!(
            "start the login again and approve loco's access at {provider}, or use another account"
        ),
    }
}

/// A call to an identity provider that went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer, a timeout, or a 5xx.
    #[error("{provider} could not be reached: {detail}")]
    Unreachable {
        provider: &'static str,
        detail: String,
    },
    /// The provider refused the grant (a bad or used code, a wrong PKCE verifier, ...).
    #[error("{provider} refused the login: {code}")]
    Refused {
        provider: &'static str,
        /// The OAuth error code, reduced to `[a-z0-9_]` so nothing else gets through.
        code: String,
    },
    /// An answer loco cannot use (wrong shape, unexpected status, missing fields).
    #[error("{provider} gave an unusable answer: {detail}")]
    Malformed {
        provider: &'static str,
        detail: String,
    },
}

impl ProviderError {
    pub fn unreachable(provider: &'static str, e: reqwest::Error) -> Self {
        // Without the URL: provider URLs carry no secrets today, but one never should
        // end up in a log line by accident.
        ProviderError::Unreachable {
            provider,
            detail: e.without_url().to_string(),
        }
    }

    pub fn refused(provider: &'static str, code: &str) -> Self {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        ProviderError::Refused {
            provider,
            code: if code.is_empty() {
                "unknown".to_string()
            } else {
                code
            },
        }
    }

    pub fn malformed(provider: &'static str, detail: impl Into<String>) -> Self {
        ProviderError::Malformed {
            provider,
            detail: detail.into(),
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        tracing::warn!(error = %e, "identity provider call failed");
        match e {
            ProviderError::Refused { provider, code } => ApiError::Rejected {
                status: StatusCode::BAD_REQUEST,
                reason: "login_code_rejected",
                message: format!(
                    "{provider} did not accept the login's authorization code ({code}); codes are single-use and expire after a few minutes"
                ),
                next_step: "start the login again from its beginning",
            },
            ProviderError::Unreachable { provider, .. }
            | ProviderError::Malformed { provider, .. } => ApiError::Rejected {
                status: StatusCode::BAD_GATEWAY,
                reason: "login_provider_unavailable",
                message: format!("{provider} could not complete the login right now"),
                next_step: "try again in a minute; if it keeps failing, the operator checks loco-api's logs and the provider URLs it is configured with",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_codes_are_reduced_to_a_safe_alphabet() {
        let e = ProviderError::refused("GitHub", "bad_verification_code<script>gho_x y");
        assert_eq!(
            e.to_string(),
            "GitHub refused the login: bad_verification_codescriptgho_xy"
        );
        let api: ApiError = ProviderError::refused("GitHub", "").into();
        assert_eq!(api.reason(), "login_code_rejected");
        assert!(api.to_string().contains("(unknown)"));
    }
}
