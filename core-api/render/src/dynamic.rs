//! The plain data of objects that have no k8s-openapi type (Gateway API, Envoy Gateway)
//! and of a kind's API coordinates. Render keeps its own types so that its dependency list
//! holds no cluster client and no HTTP types (kube-core carries both); apply turns them
//! into kube's `ApiResource` / `DynamicObject`, which serialise to the same JSON.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// apiVersion and kind, as every Kubernetes object carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeMeta {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
}

/// An object without a typed Rust struct: type, metadata, and the rest as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    pub metadata: ObjectMeta,
    #[serde(flatten)]
    pub data: serde_json::Value,
}

/// Where a kind lives in the API: what a dynamic client needs to address it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    pub kind: String,
    /// The lower-case plural of the URL path (`httproutes`).
    pub plural: String,
}

impl ApiResource {
    /// The coordinates of `kind` in `api_version`, with the plural the API server uses for
    /// every kind loco renders (lower case + "s", "y" -> "ies").
    pub fn of(api_version: &str, kind: &str) -> Self {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            plural: plural_of(kind),
        }
    }
}

fn plural_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}
