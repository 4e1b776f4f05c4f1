//! Read-only: what the cluster holds against what loco would apply. The resurrector's
//! diagnosis; nothing here writes (the hand-edit check is a server-side-apply dry run,
//! which the API server validates and persists nothing of).
//!
//! Per object: absent, stale (its applied-hash is not the desired one), edited by hand
//! (the hash matches, but a dry-run apply would change a field loco owns), not loco's
//! (it exists without loco's label), or the same. Secrets are never read: their state
//! comes from the existence probe and the record on the app's Deployment, as in apply,
//! so a Secret's data edited by hand is not seen (apply with `force` rewrites it).

use std::collections::HashSet;

use futures::{StreamExt as _, stream};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

use super::error::ApplyError;
use super::live::{self, LiveIndex};
use super::namespace::namespace_ref;
use super::plan::{self, Prepared, SecretKind};
use super::resource::dynamic_api;
use super::{Applier, FIELD_MANAGER};
use loco_render::{LABEL_APP, LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGED_BY, ObjectRef, Rendered};

/// How one desired object stands in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectState {
    Same,
    /// Not in the cluster.
    Missing,
    /// Its applied-hash differs: another revision (or none) was applied.
    Stale,
    /// The applied-hash matches, but a field loco owns was changed since.
    EditedByHand,
    /// It exists without loco's label: apply refuses the app.
    NotLoco,
}

/// One object that is not as loco would apply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub object: ObjectRef,
    pub state: ObjectState,
}

/// One app compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppComparison {
    pub namespace: String,
    /// Objects that differ, in apply order.
    pub drift: Vec<Drift>,
    /// Objects that are as loco would apply them.
    pub same: usize,
}

impl AppComparison {
    pub fn is_same(&self) -> bool {
        self.drift.is_empty()
    }

    /// Nothing of the app is in the cluster (its namespace included).
    pub fn is_missing(&self) -> bool {
        self.same == 0 && self.drift.iter().all(|d| d.state == ObjectState::Missing)
    }
}

/// A loco-labelled app namespace in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveAppNamespace {
    pub name: String,
    pub workspace: Option<String>,
    pub app: Option<String>,
}

impl Applier {
    /// Compares many apps with the cluster: one metadata LIST per kind, the Secret
    /// probes, and with `hand_edits` one GET and one dry-run apply per object whose hash
    /// matches. Results in input order; an app that cannot be prepared is an error of its own.
    pub async fn compare(
        &self,
        desired: &[Rendered],
        hand_edits: bool,
    ) -> Result<Vec<Result<AppComparison, ApplyError>>, ApplyError> {
        let prepared: Vec<Result<Vec<Prepared>, ApplyError>> =
            desired.iter().map(plan::prepare).collect();
        let live =
            live::read_many(&self.client, desired, &prepared, self.config.concurrency).await?;
        let mut out = Vec::with_capacity(desired.len());
        for (rendered, objects) in desired.iter().zip(prepared) {
            out.push(match objects {
                Ok(objects) => Ok(self
                    .compare_app(rendered, &objects, &live, hand_edits)
                    .await?),
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    async fn compare_app(
        &self,
        rendered: &Rendered,
        objects: &[Prepared],
        live: &LiveIndex,
        hand_edits: bool,
    ) -> Result<AppComparison, ApplyError> {
        let states: Vec<ObjectState> = objects
            .iter()
            .map(|p| state_of(p, live.get(&p.reference)))
            .collect();
        let checks: Vec<_> = objects
            .iter()
            .zip(&states)
            .filter(|(p, s)| hand_edits && **s == ObjectState::Same && p.secret == SecretKind::No)
            .map(|(p, _)| async move {
                let edited = self.edited_by_hand(p).await?;
                Ok::<_, ApplyError>((p.reference.clone(), edited))
            })
            .collect();
        let edited: Vec<Result<(ObjectRef, bool), ApplyError>> = stream::iter(checks)
            .buffered(self.config.concurrency)
            .collect()
            .await;
        let mut edited_refs = HashSet::new();
        for e in edited {
            let (r, yes) = e?;
            if yes {
                edited_refs.insert(r);
            }
        }
        let mut cmp = AppComparison {
            namespace: rendered.namespace.clone(),
            drift: Vec::new(),
            same: 0,
        };
        for (p, state) in objects.iter().zip(states) {
            let state = if edited_refs.contains(&p.reference) {
                ObjectState::EditedByHand
            } else {
                state
            };
            if state == ObjectState::Same {
                cmp.same += 1;
            } else {
                cmp.drift.push(Drift {
                    object: p.reference.clone(),
                    state,
                });
            }
        }
        Ok(cmp)
    }

    /// Whether a dry-run apply of `p` (forced, as apply writes) would change the live
    /// object: a field loco owns was edited after loco applied it.
    async fn edited_by_hand(&self, p: &Prepared) -> Result<bool, ApplyError> {
        let api = dynamic_api(&self.client, &p.resource, p.reference.namespace.as_deref());
        let Some(live) = api
            .get_opt(&p.reference.name)
            .await
            .map_err(|e| ApplyError::from_kube(e, "read", &p.reference))?
        else {
            return Ok(false);
        };
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = true;
        let after = match api
            .patch(&p.reference.name, &params, &Patch::Apply(&p.body))
            .await
        {
            Ok(a) => a,
            // The live object merged with loco's would be invalid (e.g. a port edited by
            // hand: a second list entry under the same name): it was edited, and apply
            // will say why it cannot write it.
            Err(kube::Error::Api(s)) if s.code == 422 => return Ok(true),
            Err(e) => return Err(ApplyError::from_kube(e, "check", &p.reference)),
        };
        let as_value = |o: &kube::api::DynamicObject| serde_json::to_value(o).unwrap_or_default();
        Ok(comparable(as_value(&live)) != comparable(as_value(&after)))
    }

    /// The app namespaces loco labelled (its managed-by and app labels), cluster-wide.
    pub async fn loco_app_namespaces(&self) -> Result<Vec<LiveAppNamespace>, ApplyError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_APP}");
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ApplyError::from_kube(e, "list", &namespace_ref("(loco apps)")))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| {
                let labels = n.metadata.labels.unwrap_or_default();
                Some(LiveAppNamespace {
                    name: n.metadata.name?,
                    workspace: labels.get(LABEL_WORKSPACE).cloned(),
                    app: labels.get(LABEL_APP).cloned(),
                })
            })
            .collect())
    }
}

/// The state from metadata alone.
fn state_of(p: &Prepared, live: Option<&plan::LiveMeta>) -> ObjectState {
    match live {
        None => ObjectState::Missing,
        Some(l) if !l.managed => ObjectState::NotLoco,
        Some(l) if l.hash.as_deref() == Some(p.hash.as_str()) => ObjectState::Same,
        Some(_) => ObjectState::Stale,
    }
}

/// An object without what changes on every write or is the controllers' (status,
/// resourceVersion, managedFields, generation, timestamps).
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            m.remove(k);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_a_write_always_changes_is_ignored() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "1", "generation": 1,
            "managedFields": [{"manager": "loco"}]}, "spec": {"ports": [{"port": 80}]}, "status": {"x": 1}});
        let after_same = json!({"metadata": {"name": "a", "resourceVersion": "2", "generation": 1,
            "managedFields": [{"manager": "loco", "time": "t"}]}, "spec": {"ports": [{"port": 80}]}, "status": {"x": 2}});
        let after_fixed = json!({"metadata": {"name": "a", "resourceVersion": "2", "generation": 2},
            "spec": {"ports": [{"port": 8080}]}});
        assert_eq!(comparable(live.clone()), comparable(after_same));
        assert_ne!(comparable(live), comparable(after_fixed));
    }

    #[test]
    fn states_from_metadata() {
        let r = loco_render::ObjectRef {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some("n".into()),
            name: "app".into(),
        };
        let p = Prepared {
            reference: r,
            phase: loco_render::Phase::Service,
            resource: kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
            body: serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app"}}),
            )
            .unwrap(),
            hash: "h1".into(),
            secret: SecretKind::No,
        };
        let meta = |managed: bool, hash: &str| plan::LiveMeta {
            managed,
            hash: Some(hash.into()),
            ..Default::default()
        };
        assert_eq!(state_of(&p, None), ObjectState::Missing);
        assert_eq!(state_of(&p, Some(&meta(true, "h1"))), ObjectState::Same);
        assert_eq!(state_of(&p, Some(&meta(true, "h0"))), ObjectState::Stale);
        assert_eq!(state_of(&p, Some(&meta(false, "h1"))), ObjectState::NotLoco);
    }
}
