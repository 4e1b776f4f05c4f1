//! The output of render: typed objects, each with the apply phase it belongs to, in the
//! order apply writes them. Also their YAML form, with Secret values masked by default.

use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::RenderError;
use super::dynamic::{ApiResource, DynamicObject};

/// DESIGN.md "Apply": the order objects are written in. Apply finishes a phase before it
/// starts the next; within a phase the order of [`Rendered::objects`] is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Namespace,
    /// Default-deny first, then the allows.
    NetworkPolicy,
    /// ServiceAccount and RBAC.
    Identity,
    Secret,
    Service,
    /// Deployment and HPA.
    Workload,
    /// ReferenceGrant (while asleep), HTTPRoute, GRPCRoute, BackendTrafficPolicy.
    Route,
}

/// One desired object. Gateway API and Envoy Gateway kinds have no k8s-openapi types and
/// travel as [`DynamicObject`]s with their TypeMeta set.
// About ten objects per app, built once per apply: boxing the big variants would only add
// noise to every match in apply.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    NetworkPolicy(NetworkPolicy),
    ServiceAccount(ServiceAccount),
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
    /// HTTPRoute, GRPCRoute, ReferenceGrant, BackendTrafficPolicy.
    Dynamic(DynamicObject),
}

/// What the deployment's inventory records for each applied object (and prune compares).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
    pub name: String,
}

impl Object {
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Namespace(o) => &o.metadata,
            Self::NetworkPolicy(o) => &o.metadata,
            Self::ServiceAccount(o) => &o.metadata,
            Self::Secret(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::Deployment(o) => &o.metadata,
            Self::HorizontalPodAutoscaler(o) => &o.metadata,
            Self::Dynamic(o) => &o.metadata,
        }
    }

    /// The API resource (group, version, kind, plural) for kube's dynamic API.
    pub fn api_resource(&self) -> ApiResource {
        fn typed<K: k8s_openapi::Resource>() -> ApiResource {
            ApiResource {
                group: K::GROUP.to_owned(),
                version: K::VERSION.to_owned(),
                api_version: K::API_VERSION.to_owned(),
                kind: K::KIND.to_owned(),
                plural: K::URL_PATH_SEGMENT.to_owned(),
            }
        }
        match self {
            Self::Namespace(_) => typed::<Namespace>(),
            Self::NetworkPolicy(_) => typed::<NetworkPolicy>(),
            Self::ServiceAccount(_) => typed::<ServiceAccount>(),
            Self::Secret(_) => typed::<Secret>(),
            Self::Service(_) => typed::<Service>(),
            Self::Deployment(_) => typed::<Deployment>(),
            Self::HorizontalPodAutoscaler(_) => typed::<HorizontalPodAutoscaler>(),
            Self::Dynamic(o) => {
                let (api_version, kind) = o
                    .types
                    .as_ref()
                    .map(|t| (t.api_version.as_str(), t.kind.as_str()))
                    .unwrap_or_default();
                ApiResource::of(api_version, kind)
            }
        }
    }

    pub fn reference(&self) -> ObjectRef {
        let ar = self.api_resource();
        let m = self.metadata();
        ObjectRef {
            api_version: ar.api_version,
            kind: ar.kind,
            namespace: m.namespace.clone(),
            name: m.name.clone().unwrap_or_default(),
        }
    }

    /// The full object as JSON, apiVersion and kind included: the body of a server-side apply.
    pub fn to_json(&self) -> Result<serde_json::Value, RenderError> {
        let v = match self {
            Self::Namespace(o) => serde_json::to_value(o),
            Self::NetworkPolicy(o) => serde_json::to_value(o),
            Self::ServiceAccount(o) => serde_json::to_value(o),
            Self::Secret(o) => serde_json::to_value(o),
            Self::Service(o) => serde_json::to_value(o),
            Self::Deployment(o) => serde_json::to_value(o),
            Self::HorizontalPodAutoscaler(o) => serde_json::to_value(o),
            Self::Dynamic(o) => serde_json::to_value(o),
        };
        v.map_err(|e| RenderError::Serialize {
            kind: self.api_resource().kind,
            message: e.to_string(),
        })
    }

    /// The object as a [`DynamicObject`], for kube's dynamic API.
    pub fn to_dynamic(&self) -> Result<DynamicObject, RenderError> {
        if let Self::Dynamic(o) = self {
            return Ok(o.clone());
        }
        serde_json::from_value(self.to_json()?).map_err(|e| RenderError::Serialize {
            kind: self.api_resource().kind,
            message: e.to_string(),
        })
    }
}

/// Secrets print their metadata and key names only: a Debug of render's output must be
/// safe to log.
impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => {
                let keys: Vec<&String> = s.data.iter().flat_map(|d| d.keys()).collect();
                f.debug_struct("Secret")
                    .field("metadata", &s.metadata)
                    .field("type_", &s.type_)
                    .field("data_keys", &keys)
                    .finish_non_exhaustive()
            }
            Self::Namespace(o) => o.fmt(f),
            Self::NetworkPolicy(o) => o.fmt(f),
            Self::ServiceAccount(o) => o.fmt(f),
            Self::Service(o) => o.fmt(f),
            Self::Deployment(o) => o.fmt(f),
            Self::HorizontalPodAutoscaler(o) => o.fmt(f),
            Self::Dynamic(o) => o.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    pub phase: Phase,
    pub object: Object,
}

/// Everything one app renders to, in apply order (sorted by phase, stable within one).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The app's namespace, `wks-{workspace_id}-app-{app_id}`.
    pub namespace: String,
    pub objects: Vec<RenderedObject>,
}

/// How [`Rendered::to_yaml`] prints Secret values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Every value of every Secret's `data` printed as `<redacted>`.
    Masked,
    /// The real (base64) values: the output can be applied as it is.
    Shown,
}

pub const REDACTED: &str = "<redacted>";

impl Rendered {
    /// The inventory a deployment records: what prune compares against.
    pub fn inventory(&self) -> Vec<ObjectRef> {
        self.objects.iter().map(|o| o.object.reference()).collect()
    }

    /// The objects as multi-document YAML (`---` between documents), in apply order.
    /// Byte-identical for identical inputs.
    pub fn to_yaml(&self, secrets: Secrets) -> Result<String, RenderError> {
        let mut out = String::new();
        for (i, o) in self.objects.iter().enumerate() {
            let mut v = o.object.to_json()?;
            if secrets == Secrets::Masked
                && matches!(o.object, Object::Secret(_))
                && let Some(data) = v.get_mut("data").and_then(|d| d.as_object_mut())
            {
                for value in data.values_mut() {
                    *value = serde_json::Value::String(REDACTED.to_owned());
                }
            }
            let doc = serde_yaml::to_string(&v).map_err(|e| RenderError::Serialize {
                kind: o.object.api_resource().kind,
                message: e.to_string(),
            })?;
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&doc);
        }
        Ok(out)
    }
}
