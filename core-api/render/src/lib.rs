//! Render: one app's revision (plus its workspace's other apps) -> the Kubernetes objects
//! that make it run. PURE: no database, cluster or HTTP types, no clock, no randomness.
//!
//! DESIGN.md "The one idea": deploy, env change, scale, sleep, wake, rollback and rebuild
//! all write a revision, then render and apply it. So the output is deterministic (same
//! input, byte-identical YAML) and ordered for apply ([`Phase`]): Namespace,
//! NetworkPolicies, ServiceAccount, Secrets, Service, Deployment/HPA, routes.
//!
//! Names: the namespace is `wks-{workspace_id}-app-{app_id}`; inside it the objects have
//! fixed names (`app`, `env-<hash>`, `loco-pull`, ...) because an app name may start with
//! a digit, which a Service name may not. Human names are annotations.
//!
//! ```
//! use loco_render::{RenderInput};
//! let src = "[Metadata]\nName = \"hello\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n";
//! let v = loco_spec::validate(src, "loco.toml", &Default::default()).unwrap();
//! let input = RenderInput {
//!     org_id: 1, workspace_id: 2, app_id: 3, deployment_id: 4, template_deployment_id: 4,
//!     revision_id: 5,
//!     spec: v.spec, image: format!("registry.example/hello@sha256:{}", "a".repeat(64)),
//!     replicas: None, asleep: false, env: v.env_values, checksum_key: Default::default(),
//!     pull_secret: None, workspace_apps: vec![], settings: Default::default(),
//! };
//! let out = loco_render::render(&input).unwrap();
//! assert_eq!(out.namespace, "wks-2-app-3");
//! ```

mod dynamic;
mod input;
mod network;
mod object;
mod routes;
mod secret_hash;
mod workload;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use dynamic::{ApiResource, DynamicObject, TypeMeta};
pub use input::{
    ChecksumKey, DEFAULT_EGRESS_DENIED, EgressSettings, Placement, PlacementToleration,
    PullCredential, RenderInput, RenderSettings, SiblingApp,
};
pub use object::{Object, ObjectRef, Phase, REDACTED, Rendered, RenderedObject, Secrets};
pub use secret_hash::{ANNOTATION_DATA_HASH, secret_data_hash};

/// Name of the Deployment, Service, ServiceAccount, HPA and routes in an app's namespace.
pub const SERVICE_NAME: &str = "app";
/// Name of the imagePullSecret in every app namespace.
pub const PULL_SECRET_NAME: &str = "loco-pull";

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "loco";
pub const LABEL_ORG: &str = "loco.deploy-app.com/org";
pub const LABEL_WORKSPACE: &str = "loco.deploy-app.com/workspace";
pub const LABEL_APP: &str = "loco.deploy-app.com/app";
/// The Gateway admits routes only from namespaces with this label (value `allowed`).
pub const LABEL_ROUTES: &str = "loco.deploy-app.com/routes";
pub const ANNOTATION_APP_NAME: &str = "loco.deploy-app.com/app-name";
pub const ANNOTATION_DEPLOYMENT: &str = "loco.deploy-app.com/deployment-id";
pub const ANNOTATION_REVISION: &str = "loco.deploy-app.com/revision-id";

/// Why an input cannot be rendered. Inputs come from validated rows, so these are
/// programming or data errors, reported with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{field} must be a positive database id, got {value}")]
    InvalidId { field: &'static str, value: i64 },
    #[error(
        "the image reference must name a registry image (got {0:?}); pass the pinned image of the revision"
    )]
    InvalidImage(String),
    #[error("{what} is out of range for Kubernetes ({value})")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("cannot serialise the {kind}: {message}")]
    Serialize { kind: String, message: String },
}

impl RenderError {
    /// Stable snake_case name for metrics and audit events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId { .. } => "render_invalid_id",
            Self::InvalidImage(_) => "render_invalid_image",
            Self::OutOfRange { .. } => "render_out_of_range",
            Self::Serialize { .. } => "render_serialize",
        }
    }
}

/// The namespace of an app: ids only, so names never collide across orgs and stay short.
pub fn namespace_name(workspace_id: i64, app_id: i64) -> String {
    format!("wks-{workspace_id}-app-{app_id}")
}

/// Renders one app. The objects come back in apply order; see [`Phase`].
pub fn render(input: &RenderInput) -> Result<Rendered, RenderError> {
    for (field, value) in [
        ("org_id", input.org_id),
        ("workspace_id", input.workspace_id),
        ("app_id", input.app_id),
    ] {
        if value <= 0 {
            return Err(RenderError::InvalidId { field, value });
        }
    }
    for (field, value) in [
        ("deployment_id", input.deployment_id),
        ("template_deployment_id", input.template_deployment_id),
        ("revision_id", input.revision_id),
    ] {
        if value < 0 {
            return Err(RenderError::InvalidId { field, value });
        }
    }
    let image = input.image.trim();
    if image.is_empty() || image != input.image || image.contains(char::is_whitespace) {
        return Err(RenderError::InvalidImage(input.image.clone()));
    }

    let cx = Cx::new(input);
    let mut objects = Vec::new();
    let mut push = |phase, object| objects.push(RenderedObject { phase, object });

    push(Phase::Namespace, Object::Namespace(network::namespace(&cx)));
    for np in network::network_policies(&cx) {
        push(Phase::NetworkPolicy, Object::NetworkPolicy(np));
    }
    push(
        Phase::Identity,
        Object::ServiceAccount(workload::service_account(&cx)),
    );
    if let Some(cred) = &input.pull_secret {
        push(
            Phase::Secret,
            Object::Secret(secret_hash::stamp(
                &input.checksum_key,
                workload::pull_secret(&cx, cred),
            )),
        );
    }
    let env_secret = workload::env_secret(&cx);
    let env_secret_name = env_secret.as_ref().and_then(|s| s.metadata.name.clone());
    if let Some(s) = env_secret {
        push(
            Phase::Secret,
            Object::Secret(secret_hash::stamp(&input.checksum_key, s)),
        );
    }
    push(Phase::Service, Object::Service(network::service(&cx)));
    push(
        Phase::Workload,
        Object::Deployment(workload::deployment(&cx, env_secret_name.as_deref())?),
    );
    if let Some(hpa) = workload::hpa(&cx)? {
        push(Phase::Workload, Object::HorizontalPodAutoscaler(hpa));
    }
    for route in routes::routes(&cx) {
        push(Phase::Route, Object::Dynamic(route));
    }
    objects.sort_by_key(|o| o.phase);
    Ok(Rendered {
        namespace: cx.namespace,
        objects,
    })
}

/// Shared by the builders: the input and what is derived from it once.
struct Cx<'a> {
    input: &'a RenderInput,
    namespace: String,
}

impl<'a> Cx<'a> {
    fn new(input: &'a RenderInput) -> Self {
        Self {
            input,
            namespace: namespace_name(input.workspace_id, input.app_id),
        }
    }

    fn settings(&self) -> &RenderSettings {
        &self.input.settings
    }

    /// The four labels every rendered object carries.
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
            (LABEL_ORG.to_owned(), self.input.org_id.to_string()),
            (
                LABEL_WORKSPACE.to_owned(),
                self.input.workspace_id.to_string(),
            ),
            (LABEL_APP.to_owned(), self.input.app_id.to_string()),
        ])
    }

    /// Pod selector: ids only, so it never changes for the app's lifetime (a Deployment's
    /// selector is immutable).
    fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
            (LABEL_APP.to_owned(), self.input.app_id.to_string()),
        ])
    }

    fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            ANNOTATION_APP_NAME.to_owned(),
            self.input.spec.app.name.clone(),
        )])
    }

    /// Metadata of an object in the app's namespace.
    fn meta(&self, name: &str) -> ObjectMeta {
        self.meta_in(name, &self.namespace)
    }

    fn meta_in(&self, name: &str, namespace: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(self.labels()),
            annotations: Some(self.annotations()),
            ..ObjectMeta::default()
        }
    }
}
