//! Why a check could not give an answer. A failed check is not an error: it is a
//! `Verdict` with `pass: false`.

/// Errors of the preflight library. `reason()` is stable: it is the metric label and the
/// event reason the callers record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is not valid: {0}")]
    InvalidRequest(String),

    #[error(transparent)]
    InvalidQuantity(#[from] crate::quantity::QuantityError),

    #[error("no cluster configuration found: {0} (set KUBECONFIG or pass --kubeconfig)")]
    Kubeconfig(String),

    #[error(
        "the Kubernetes API is not reachable: {0} (check the cluster's address and that it is up)"
    )]
    Unreachable(String),

    #[error(
        "the Kubernetes API refused to {action}: {message} (preflight needs list and watch on nodes and pods, list on deployments in the components' namespace)"
    )]
    Forbidden { action: String, message: String },

    #[error("the Kubernetes API failed to {action}: {message}")]
    Api { action: String, message: String },

    #[error(
        "the cluster cache has not finished its first list within {0:?}; the API may be slow or unreachable"
    )]
    CacheNotReady(std::time::Duration),
}

impl Error {
    /// A stable snake_case name for metrics, events and `--output json`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidQuantity(_) => "invalid_quantity",
            Error::Kubeconfig(_) => "kubeconfig",
            Error::Unreachable(_) => "api_unreachable",
            Error::Forbidden { .. } => "api_forbidden",
            Error::Api { .. } => "api_error",
            Error::CacheNotReady(_) => "cache_not_ready",
        }
    }

    /// Classifies a kube client error from a call that did `action` ("list nodes").
    pub(crate) fn from_kube(action: &str, e: kube::Error) -> Error {
        match &e {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
                Error::Forbidden {
                    action: action.to_string(),
                    message: status.message.clone(),
                }
            }
            kube::Error::Api(status) => Error::Api {
                action: action.to_string(),
                message: format!("{} ({})", status.message, status.code),
            },
            kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::HttpError(_)
            | kube::Error::RustlsTls(_) => Error::Unreachable(format!("{action}: {e}")),
            _ => Error::Api {
                action: action.to_string(),
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_snake_case() {
        let all = [
            Error::InvalidRequest(String::new()),
            Error::Kubeconfig(String::new()),
            Error::Unreachable(String::new()),
            Error::Forbidden {
                action: String::new(),
                message: String::new(),
            },
            Error::Api {
                action: String::new(),
                message: String::new(),
            },
            Error::CacheNotReady(std::time::Duration::from_secs(1)),
        ];
        for e in all {
            let r = e.reason();
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        }
    }
}
