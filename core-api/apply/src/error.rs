//! Why an apply or a deploy failed, in words a person can act on.
//!
//! Messages name the object (`kind namespace/name`) and say what to do. They never carry
//! Secret data: for a Secret the API server's own message is withheld (it is logged at
//! debug level only), and no variant holds an object body.

use std::time::Duration;

use super::diagnose::PodTrouble;
use super::resource::show;
use loco_render::{LABEL_MANAGED_BY, MANAGED_BY, ObjectRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{} exists but loco did not create it (it lacks the label {LABEL_MANAGED_BY}={MANAGED_BY}, or loco's field manager never wrote it), and loco never changes or deletes such objects. Rename or remove it, then deploy again.",
        show(.object)
    )]
    NotManagedByLoco { object: Box<ObjectRef> },

    #[error("the API server rejected {}{}. If the app's loco.toml is valid, this is a loco bug: report it with this message.", show(.object), detail_suffix(.detail))]
    Rejected {
        object: Box<ObjectRef>,
        /// The API server's explanation; empty for Secrets (it may quote their content).
        detail: String,
    },

    #[error(
        "loco-api is not allowed to {verb} {}: its ServiceAccount lacks that permission. Apply core-api/rbac/loco-api.yaml (or the chart's RBAC) to the cluster, then retry.",
        show(.object)
    )]
    Forbidden {
        verb: &'static str,
        object: Box<ObjectRef>,
    },

    #[error(
        "the namespace {namespace} is being deleted. Wait until it is gone (kubectl get namespace {namespace}), then deploy again."
    )]
    NamespaceTerminating { namespace: String },

    #[error(
        "the cluster does not serve {} ({}), needed for {}. Install its CRD, or turn off the setting that renders it, then deploy again.",
        .object.kind, .object.api_version, show(.object)
    )]
    KindNotInstalled { object: Box<ObjectRef> },

    #[error(
        "could not {verb} {}: the API server answered {code} {reason}. Retry; if it keeps failing, check the API server's health.",
        show(.object)
    )]
    Api {
        verb: &'static str,
        object: Box<ObjectRef>,
        code: u16,
        reason: String,
    },

    #[error(
        "could not reach the cluster's API server to {verb} {}: {message}. Check the cluster's address, credentials and network, then retry.",
        show(.object)
    )]
    Unreachable {
        verb: &'static str,
        object: Box<ObjectRef>,
        message: String,
    },

    #[error(
        "the Deployment {namespace}/{name} did not roll out within {}s: {ready} of {desired} new pods ready. {}",
        .deadline.as_secs(), cause_sentence(.cause)
    )]
    RolloutDeadlineExceeded {
        namespace: String,
        name: String,
        ready: i32,
        desired: i32,
        deadline: Duration,
        /// Why the new pods are not Ready, when their status says.
        cause: Option<PodTrouble>,
    },

    #[error(
        "the Deployment {namespace}/{name} stopped progressing ({ready} of {desired} new pods ready; Kubernetes reports ProgressDeadlineExceeded). {}",
        cause_sentence(.cause)
    )]
    RolloutStalled {
        namespace: String,
        name: String,
        ready: i32,
        desired: i32,
        cause: Option<PodTrouble>,
    },

    #[error(
        "the Deployment {namespace}/{name} disappeared while loco waited for its rollout. Something deleted it: find out what, then deploy again."
    )]
    DeploymentMissing { namespace: String, name: String },

    #[error(
        "the namespace {namespace} still exists {}s after loco deleted it; a finalizer is holding it. `kubectl get namespace {namespace} -o yaml` shows which; resolve it and retry.",
        .deadline.as_secs()
    )]
    NamespaceDeleteTimeout {
        namespace: String,
        deadline: Duration,
    },

    #[error("cannot prepare {} for apply: {message}. This is a loco bug: report it with this message.", show(.object))]
    Prepare {
        object: Box<ObjectRef>,
        message: String,
    },

    #[error(
        "stopped before writing {}: {why}. Another worker carries on with this deployment.",
        show(.object)
    )]
    Fenced { object: Box<ObjectRef>, why: String },

    #[error(
        "the previous revision cannot be rendered ({why}), so there is nothing to put back; the objects it applied were left in place. Deploy a revision that works, or roll back to one that renders."
    )]
    PreviousUnrenderable { why: String },

    #[error("{failed} of {total} apps failed to apply; the first: {first}")]
    SomeAppsFailed {
        failed: usize,
        total: usize,
        first: Box<ApplyError>,
    },
}

/// The name of loco-api's admission policy (core-api/rbac/loco-api.yaml).
pub const ADMISSION_POLICY: &str = "loco-api-boundaries";

/// The messages of that policy's ownership rules, as the API server quotes them.
pub(crate) const NOT_LOCO_MESSAGES: &[&str] = &[
    "loco-api writes only objects labelled app.kubernetes.io/managed-by=loco",
    "loco-api never takes over an object loco did not create",
    "loco-api changes or deletes only objects loco's field manager wrote",
];

/// Whether a 403's message is loco-api's admission policy refusing an object that is not
/// loco's (rather than RBAC, or the policy's other rules).
pub(crate) fn refused_as_not_loco(message: &str) -> bool {
    message.contains(&format!("ValidatingAdmissionPolicy '{ADMISSION_POLICY}'"))
        && NOT_LOCO_MESSAGES.iter().any(|m| message.contains(m))
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", detail.trim_end_matches('.'))
    }
}

/// The sentence of a rollout failure's cause; without one, the readiness check is the
/// usual suspect.
fn cause_sentence(cause: &Option<PodTrouble>) -> String {
    cause.as_ref().unwrap_or(&PodTrouble::NotReady).sentence()
}

impl ApplyError {
    /// Stable snake_case name: metric label and audit event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotManagedByLoco { .. } => "not_managed_by_loco",
            Self::Rejected { .. } => "apply_rejected",
            Self::Forbidden { .. } => "apply_forbidden",
            Self::NamespaceTerminating { .. } => "namespace_terminating",
            Self::KindNotInstalled { .. } => "kind_not_installed",
            Self::Api { .. } => "kube_api_error",
            Self::Unreachable { .. } => "cluster_unreachable",
            Self::RolloutDeadlineExceeded { cause, .. } => cause
                .as_ref()
                .and_then(PodTrouble::reason)
                .unwrap_or("rollout_deadline_exceeded"),
            Self::RolloutStalled { cause, .. } => cause
                .as_ref()
                .and_then(PodTrouble::reason)
                .unwrap_or("rollout_stalled"),
            Self::DeploymentMissing { .. } => "deployment_missing",
            Self::NamespaceDeleteTimeout { .. } => "namespace_delete_timeout",
            Self::Prepare { .. } => "apply_prepare_failed",
            Self::Fenced { .. } => "lease_lost",
            Self::PreviousUnrenderable { .. } => "previous_unrenderable",
            Self::SomeAppsFailed { .. } => "apply_many_failed",
        }
    }

    /// Turns a kube error of `verb` on `object` into a message a person can act on. The
    /// raw answer goes to the debug log, never into the message (Secrets withheld even there).
    pub(crate) fn from_kube(e: kube::Error, verb: &'static str, object: &ObjectRef) -> Self {
        let secret = object.kind == "Secret";
        let object = Box::new(object.clone());
        match e {
            kube::Error::Api(status) => {
                let message = if secret {
                    "<withheld: Secret>"
                } else {
                    status.message.as_str()
                };
                tracing::debug!(
                    verb, kind = %object.kind, namespace = ?object.namespace, name = %object.name,
                    code = status.code, reason = %status.reason, message, "kube API error"
                );
                let code = status.code;
                match code {
                    403 if status.message.contains("being terminated") => {
                        Self::NamespaceTerminating {
                            namespace: object.namespace.clone().unwrap_or_default(),
                        }
                    }
                    403 if refused_as_not_loco(&status.message) => {
                        Self::NotManagedByLoco { object }
                    }
                    403 => Self::Forbidden { verb, object },
                    404 if verb == "apply"
                        && status
                            .details
                            .as_ref()
                            .is_none_or(|d| d.kind != "namespaces") =>
                    {
                        Self::KindNotInstalled { object }
                    }
                    // "check" is the dry-run create that asks whether a Secret exists: the
                    // API server validates its body as it would the apply's.
                    400 | 409 | 422 if verb == "apply" || verb == "check" => Self::Rejected {
                        detail: if secret {
                            String::new()
                        } else {
                            status.message.clone()
                        },
                        object,
                    },
                    _ => Self::Api {
                        verb,
                        object,
                        code,
                        reason: if status.reason.is_empty() {
                            "(no reason given)".to_owned()
                        } else {
                            status.reason.clone()
                        },
                    },
                }
            }
            // Transport failures describe the connection, never a body.
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::Auth(_) => {
                Self::Unreachable {
                    verb,
                    message: e.to_string(),
                    object,
                }
            }
            // Decoding and other client errors may quote the answer (a Secret's data):
            // a fixed sentence for people, the detail for the debug log only.
            other => {
                if !secret {
                    tracing::debug!(verb, kind = %object.kind, name = %object.name, error = %other, "kube client error");
                }
                Self::Unreachable {
                    verb,
                    message: "the client could not use the API server's answer".to_owned(),
                    object,
                }
            }
        }
    }
}

/// A failed deploy: why, what to do, and whether the cluster was put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeployFailure {
    /// Stable snake_case reason, e.g. `rollout_deadline_exceeded`, `apply_rejected`,
    /// `not_managed_by_loco`; stored as the deployment's failure reason.
    pub reason: &'static str,
    /// What happened and the next step, for people.
    pub message: String,
    /// The cluster is back on the state before this deploy: the previous revision
    /// re-applied (and rolled out), or a first deploy's objects deleted. Also true when
    /// the deploy failed before writing anything.
    pub reverted: bool,
    /// Why putting the cluster back failed, when it did.
    pub revert_error: Option<String>,
    /// Every object this deploy's prune and revert deleted, also when a later step failed.
    pub deleted: Vec<ObjectRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    fn secret() -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("wks-1-app-2".into()),
            name: "loco-pull".into(),
        }
    }

    #[test]
    fn the_policys_ownership_refusals_read_as_not_managed_by_loco() {
        let yaml = include_str!("../../rbac/loco-api.yaml");
        assert!(yaml.contains(&format!("name: {ADMISSION_POLICY}")));
        for m in NOT_LOCO_MESSAGES {
            assert!(yaml.contains(m), "the policy no longer says {m:?}");
            let e = ApplyError::from_kube(
                status(
                    403,
                    &format!(
                        "secrets \"loco-pull\" is forbidden: ValidatingAdmissionPolicy '{ADMISSION_POLICY}' with binding '{ADMISSION_POLICY}' denied request: {m}"
                    ),
                ),
                "apply",
                &secret(),
            );
            assert_eq!(e.reason(), "not_managed_by_loco", "{m}");
            assert!(
                e.to_string().contains("Secret wks-1-app-2/loco-pull"),
                "{e}"
            );
        }
        // RBAC's refusal, and the policy's other rules, stay a permission problem.
        let rbac = status(
            403,
            "secrets \"loco-pull\" is forbidden: User \"system:serviceaccount:loco-system:loco-api\" cannot get resource \"secrets\"",
        );
        assert_eq!(
            ApplyError::from_kube(rbac, "apply", &secret()).reason(),
            "apply_forbidden"
        );
        let elsewhere = status(
            403,
            &format!(
                "ValidatingAdmissionPolicy '{ADMISSION_POLICY}' with binding '{ADMISSION_POLICY}' denied request: loco-api writes only in wks-*-app-* namespaces, not in default"
            ),
        );
        assert!(!refused_as_not_loco(&elsewhere.to_string()));
    }
}
