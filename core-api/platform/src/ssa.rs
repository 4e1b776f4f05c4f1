//! One server-side apply of a JSON object the platform layer writes (gateway objects,
//! loco-api's identity).

use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::error::PlatformError;

/// Applies `obj` as `ar` (cluster-wide or in its `metadata.namespace`); returns `Kind/name`.
pub(crate) async fn apply_json(
    client: &kube::Client,
    obj: &Value,
    ar: &ApiResource,
    params: &PatchParams,
) -> Result<String, PlatformError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let what = format!("{}/{}", ar.kind, name);
    api.patch(&name, params, &Patch::Apply(obj))
        .await
        .map_err(|e| PlatformError::kube("apply", &what, e))?;
    Ok(what)
}
