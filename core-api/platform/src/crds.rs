//! The Gateway API CRDs loco runs on, pinned here (one place) and shipped in the binary.
//! They are applied by server-side apply (field manager `loco`), never by Helm's `crds/`
//! folder, which Helm never upgrades. Upgrading to a newer Gateway API version is: put
//! its standard-channel files beside these, move [`GATEWAY_API_VERSION`], run
//! `loco-api platform apply`.
//!
//! The upgrade rule the apply checks: every version the cluster has stored objects in
//! (`status.storedVersions` of the live CRD) must still be served by the new CRD, or
//! objects would become unreadable; then it applies, waits for Established, and checks
//! that the live CRDs carry the pinned bundle version.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::error::PlatformError;

/// The Gateway API release of the pinned CRDs.
pub const GATEWAY_API_VERSION: &str = "v1.4.1";

/// The annotation each Gateway API CRD carries with its release.
pub const BUNDLE_VERSION_ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";

/// The standard channel of [`GATEWAY_API_VERSION`], file by file.
const FILES: &[(&str, &str)] = &[
    (
        "gatewayclasses",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_gatewayclasses.yaml"),
    ),
    (
        "gateways",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_gateways.yaml"),
    ),
    (
        "httproutes",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_httproutes.yaml"),
    ),
    (
        "grpcroutes",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_grpcroutes.yaml"),
    ),
    (
        "referencegrants",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_referencegrants.yaml"),
    ),
    (
        "backendtlspolicies",
        include_str!("../gateway-api/v1.4.1/gateway.networking.k8s.io_backendtlspolicies.yaml"),
    ),
];

/// The pinned CRDs, parsed.
pub fn gateway_api_crds() -> Result<Vec<CustomResourceDefinition>, PlatformError> {
    FILES
        .iter()
        .map(|(name, text)| {
            serde_yaml::from_str(text).map_err(|e| PlatformError::Bundled {
                what: format!("the Gateway API CRD {name}"),
                cause: e.to_string(),
            })
        })
        .collect()
}

/// A CRD as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrdState {
    pub name: String,
    /// The Gateway API release it came from (its bundle-version annotation).
    pub bundle_version: Option<String>,
    pub served: Vec<String>,
    pub stored: Vec<String>,
    pub established: bool,
}

fn state_of(c: &CustomResourceDefinition) -> CrdState {
    let status = c.status.as_ref();
    CrdState {
        name: c.metadata.name.clone().unwrap_or_default(),
        bundle_version: c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(BUNDLE_VERSION_ANNOTATION).cloned()),
        served: c
            .spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.clone())
            .collect(),
        stored: status
            .and_then(|s| s.stored_versions.clone())
            .unwrap_or_default(),
        established: status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            }),
    }
}

/// The live state of the pinned CRDs' names (`None` for a CRD the cluster lacks).
pub async fn live(client: &kube::Client) -> Result<Vec<(String, Option<CrdState>)>, PlatformError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for crd in gateway_api_crds()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let live = api
            .get_opt(&name)
            .await
            .map_err(|e| PlatformError::kube("read the CRD", &name, e))?;
        out.push((name, live.as_ref().map(state_of)));
    }
    Ok(out)
}

/// The refusal of an upgrade that would stop serving a version objects are stored in.
pub fn check_upgrade(
    desired: &CustomResourceDefinition,
    live: &CrdState,
) -> Result<(), PlatformError> {
    let served: Vec<&str> = desired
        .spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect();
    let lost: Vec<String> = live
        .stored
        .iter()
        .filter(|v| !served.contains(&v.as_str()))
        .cloned()
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(PlatformError::StoredVersionNotServed {
            crd: live.name.clone(),
            versions: lost,
        })
    }
}

/// What applying the CRDs did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrdChange {
    pub name: String,
    /// The bundle version before (`None`: the CRD was missing).
    pub from: Option<String>,
    pub to: String,
}

/// Applies the pinned CRDs (server-side apply, field manager `loco`, conflicts forced:
/// loco owns these), after checking each upgrade keeps every stored version served;
/// then waits until all are Established and carry the pinned bundle version.
/// `dry_run` asks the API server to validate without persisting.
pub async fn apply(
    client: &kube::Client,
    dry_run: bool,
    deadline: Duration,
) -> Result<Vec<CrdChange>, PlatformError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = gateway_api_crds()?;
    let live = live(client).await?;
    // Check them all before writing any.
    for (crd, (_, state)) in crds.iter().zip(&live) {
        if let Some(state) = state {
            check_upgrade(crd, state)?;
        }
    }
    let mut params = PatchParams::apply(loco_apply::FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut changes = Vec::new();
    for (crd, (name, state)) in crds.iter().zip(&live) {
        let from = state.as_ref().and_then(|s| s.bundle_version.clone());
        let mut body = crd.clone();
        body.status = None;
        api.patch(name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| PlatformError::kube("apply the CRD", name, e))?;
        changes.push(CrdChange {
            name: name.clone(),
            from,
            to: GATEWAY_API_VERSION.to_owned(),
        });
    }
    if !dry_run {
        wait_established(client, deadline).await?;
    }
    Ok(changes)
}

/// Waits until every pinned CRD is Established at the pinned bundle version.
pub async fn wait_established(
    client: &kube::Client,
    deadline: Duration,
) -> Result<(), PlatformError> {
    let start = Instant::now();
    loop {
        let live = live(client).await?;
        let pending: Vec<String> = live
            .iter()
            .filter(|(_, s)| {
                !s.as_ref().is_some_and(|s| {
                    s.established && s.bundle_version.as_deref() == Some(GATEWAY_API_VERSION)
                })
            })
            .map(|(n, _)| n.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            return Err(PlatformError::NotEstablished {
                crds: pending,
                seconds: deadline.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_crds_parse_and_carry_the_pinned_version() {
        let crds = gateway_api_crds().unwrap();
        assert_eq!(crds.len(), FILES.len());
        for c in &crds {
            let s = state_of(c);
            assert_eq!(
                s.bundle_version.as_deref(),
                Some(GATEWAY_API_VERSION),
                "{}",
                s.name
            );
            assert!(s.name.ends_with(".gateway.networking.k8s.io"), "{}", s.name);
            assert!(!s.served.is_empty());
        }
    }

    #[test]
    fn an_upgrade_that_stops_serving_a_stored_version_is_refused() {
        let crds = gateway_api_crds().unwrap();
        let gw = crds
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("gateways.gateway.networking.k8s.io"))
            .unwrap();
        let mut live = state_of(gw);
        live.stored = vec!["v1".into()];
        assert!(check_upgrade(gw, &live).is_ok());
        live.stored = vec!["v1".into(), "v1alpha1".into()];
        let e = check_upgrade(gw, &live).unwrap_err();
        assert!(e.to_string().contains("v1alpha1"), "{e}");
    }
}
