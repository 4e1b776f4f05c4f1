//! Prune: delete what the previous deployment applied and the new render no longer has,
//! if loco owns it.

use futures::{StreamExt as _, stream};
use tokio::sync::mpsc::UnboundedSender;

use super::Applier;
use super::engine::emit;
use super::error::ApplyError;
use super::progress::Progress;
use super::resource::{deletion_waves, same_object};
use super::write::Deleted;
use loco_render::{ObjectRef, Rendered};

/// The objects of `previous` that `desired` lacks. Namespaces are never pruned: the
/// namespace of an app never changes, and removing an app is [`Applier::delete_app`]'s job.
pub(crate) fn prune_candidates(desired: &[ObjectRef], previous: &[ObjectRef]) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = Vec::new();
    for p in previous {
        if p.kind != "Namespace"
            && !desired.iter().any(|d| same_object(d, p))
            && !out.iter().any(|o| same_object(o, p))
        {
            out.push(p.clone());
        }
    }
    out
}

/// What a prune did.
#[derive(Debug, Default)]
pub(crate) struct Pruned {
    pub deleted: Vec<ObjectRef>,
    pub kept_unmanaged: Vec<ObjectRef>,
}

impl Applier {
    /// Deletes objects of `previous_inventory` that `desired` lacks, only if the live
    /// object carries `app.kubernetes.io/managed-by=loco`. Routes go first and the
    /// Deployment before its Secrets, so nothing points at an object already gone.
    pub async fn prune(
        &self,
        desired: &Rendered,
        previous_inventory: &[ObjectRef],
    ) -> Result<Vec<ObjectRef>, ApplyError> {
        Ok(self
            .prune_with(desired, previous_inventory, None)
            .await?
            .deleted)
    }

    pub(crate) async fn prune_with(
        &self,
        desired: &Rendered,
        previous_inventory: &[ObjectRef],
        progress: Option<&UnboundedSender<Progress>>,
    ) -> Result<Pruned, ApplyError> {
        let mut pruned = Pruned::default();
        self.prune_into(desired, previous_inventory, progress, &mut pruned)
            .await?;
        Ok(pruned)
    }

    /// As [`Applier::prune_with`], recording into `pruned` as it goes, so a caller knows
    /// exactly what was deleted even when a later delete fails.
    pub(crate) async fn prune_into(
        &self,
        desired: &Rendered,
        previous_inventory: &[ObjectRef],
        progress: Option<&UnboundedSender<Progress>>,
        pruned: &mut Pruned,
    ) -> Result<(), ApplyError> {
        let candidates = prune_candidates(&desired.inventory(), previous_inventory);
        let result = self.delete_into(&candidates, pruned).await;
        for object in &pruned.kept_unmanaged {
            emit(
                progress,
                Progress::KeptUnmanaged {
                    object: object.clone(),
                },
            );
        }
        if !pruned.deleted.is_empty() {
            emit(
                progress,
                Progress::Pruned {
                    namespace: desired.namespace.clone(),
                    objects: pruned.deleted.clone(),
                },
            );
        }
        result
    }

    /// Guarded deletes of `refs`, latest phase first, each phase concurrently.
    pub(crate) async fn delete_refs(&self, refs: &[ObjectRef]) -> Result<Pruned, ApplyError> {
        let mut out = Pruned::default();
        self.delete_into(refs, &mut out).await?;
        Ok(out)
    }

    /// As [`Applier::delete_refs`], recording each delete into `out` as it happens: on an
    /// error, `out` still lists every object already deleted.
    pub(crate) async fn delete_into(
        &self,
        refs: &[ObjectRef],
        out: &mut Pruned,
    ) -> Result<(), ApplyError> {
        for wave in deletion_waves(refs) {
            // Futures first, then the stream: see live::read_app on `Send`.
            let deletes: Vec<_> = wave
                .into_iter()
                .map(|r| async move {
                    let d = self.delete_if_managed(&r).await;
                    (r, d)
                })
                .collect();
            let results: Vec<(ObjectRef, Result<Deleted, ApplyError>)> = stream::iter(deletes)
                .buffered(self.config.concurrency)
                .collect()
                .await;
            let mut first_error = None;
            for (r, d) in results {
                match d {
                    Ok(Deleted::Yes) => out.deleted.push(r),
                    Ok(Deleted::NotManaged) => out.kept_unmanaged.push(r),
                    Ok(Deleted::Absent) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(av: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: av.into(),
            kind: kind.into(),
            namespace: (kind != "Namespace").then(|| "wks-1-app-2".into()),
            name: name.into(),
        }
    }

    #[test]
    fn only_objects_the_new_render_lacks_are_candidates() {
        let previous = vec![
            r("v1", "Namespace", "wks-1-app-2"),
            r("v1", "Secret", "env-aaaa"),
            r("apps/v1", "Deployment", "app"),
            r("gateway.networking.k8s.io/v1", "GRPCRoute", "app"),
            r("autoscaling/v2", "HorizontalPodAutoscaler", "app"),
        ];
        let desired = vec![
            r("v1", "Namespace", "wks-1-app-2"),
            r("v1", "Secret", "env-bbbb"),
            r("apps/v1", "Deployment", "app"),
        ];
        let names: Vec<String> = prune_candidates(&desired, &previous)
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect();
        assert_eq!(
            names,
            [
                "Secret/env-aaaa",
                "GRPCRoute/app",
                "HorizontalPodAutoscaler/app"
            ]
        );
    }

    #[test]
    fn a_version_bump_is_not_a_prune_and_namespaces_never_are() {
        let previous = vec![
            r("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "g"),
            r("v1", "Namespace", "wks-1-app-9"),
        ];
        let desired = vec![r("gateway.networking.k8s.io/v1", "ReferenceGrant", "g")];
        assert!(prune_candidates(&desired, &previous).is_empty());
    }

    #[test]
    fn duplicates_in_the_inventory_are_pruned_once() {
        let previous = vec![r("v1", "Secret", "s"), r("v1", "Secret", "s")];
        assert_eq!(prune_candidates(&[], &previous).len(), 1);
    }
}
