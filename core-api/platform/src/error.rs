//! Why the platform layer could not be applied, with the next step.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{what} shipped with loco does not parse ({cause}); this is a loco bug: report it")]
    Bundled { what: String, cause: String },

    #[error(
        "the platform values are invalid at {path}: {message}. Fix the values file, then `loco-api platform set-values` again"
    )]
    Values { path: String, message: String },

    #[error(
        "the cluster stores {crd} objects in version(s) {} that the pinned Gateway API release no longer serves; upgrading would make them unreadable. Migrate the stored objects to a served version (and update the CRD's status.storedVersions), then apply again",
        .versions.join(", ")
    )]
    StoredVersionNotServed { crd: String, versions: Vec<String> },

    #[error("the CRDs {} are not Established with the pinned version after {seconds}s; look at `kubectl get crd -o wide` and the API server's log", .crds.join(", "))]
    NotEstablished { crds: Vec<String>, seconds: u64 },

    #[error(
        "GatewayClass {class} belongs to the controller {have}, not {want}, and its controllerName cannot change. Delete it (`kubectl delete gatewayclass {class}`; its Gateways stop being served until applied again) or set gateway.className to a new name, then apply again"
    )]
    GatewayClassController {
        class: String,
        have: String,
        want: String,
    },

    #[error(
        "could not {verb} {object}: {message}. Check that the cluster answers and loco's credentials allow it, then retry"
    )]
    Kube {
        verb: &'static str,
        object: String,
        message: String,
    },

    #[error("the chart at {} has version {found}, but the release recorded for this cluster is {recorded}. Use the chart of version {recorded} (--chart), or record values for {found} with `loco-api platform set-values`", .dir.display())]
    ChartVersion {
        dir: PathBuf,
        found: String,
        recorded: String,
    },

    #[error("no Helm chart at {}: {cause}. Point --chart (LOCO_CHART_DIR) at loco's charts/loco", .dir.display())]
    ChartMissing { dir: PathBuf, cause: String },

    #[error("helm could not be run ({cause}): install helm 3 on PATH or set --helm (LOCO_HELM)")]
    HelmMissing { cause: String },

    #[error(
        "the chart's pods need Secrets that {namespace} does not hold: {}. They are the operator's and not in Postgres, so a deleted namespace or a wiped cluster loses them. Create them (e.g. `{hint}`), then apply again; nothing was changed",
        .missing.join("; ")
    )]
    SecretsMissing {
        namespace: String,
        missing: Vec<String>,
        hint: String,
    },

    #[error(
        "helm template failed (exit {code}): {summary}. Fix the recorded values with `loco-api platform set-values`"
    )]
    Template { code: i32, summary: String },

    #[error("helm upgrade --install failed (exit {code}) and rolled back (--atomic): {summary}")]
    Helm { code: i32, summary: String },

    #[error("could not write a temporary file for helm: {0}")]
    Io(String),
}

impl PlatformError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Bundled { .. } => "platform_bundle_broken",
            Self::Values { .. } => "platform_values_invalid",
            Self::StoredVersionNotServed { .. } => "crd_stored_version_not_served",
            Self::NotEstablished { .. } => "crd_not_established",
            Self::GatewayClassController { .. } => "gateway_class_controller_differs",
            Self::Kube { .. } => "cluster_error",
            Self::ChartVersion { .. } => "chart_version_differs",
            Self::ChartMissing { .. } => "chart_missing",
            Self::HelmMissing { .. } => "helm_missing",
            Self::SecretsMissing { .. } => "platform_secrets_missing",
            Self::Template { .. } => "chart_render_failed",
            Self::Helm { .. } => "helm_failed",
            Self::Io(_) => "io_error",
        }
    }

    /// A kube error as loco's sentence: the API server's status message (these objects
    /// hold no secrets), or the client's first line.
    pub(crate) fn kube(verb: &'static str, object: &str, e: kube::Error) -> Self {
        let message = match &e {
            kube::Error::Api(s) => format!(
                "the API server answered {} {}: {}",
                s.code, s.reason, s.message
            ),
            other => other
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        Self::Kube {
            verb,
            object: object.to_owned(),
            message,
        }
    }
}
