//! Putting the cluster back after a failed deploy. The revert is itself an apply (field
//! manager `loco`): the previous revision's render is applied, so a Deployment the failed
//! deploy modified is rolled back, not just new objects deleted.

use tokio::sync::mpsc::UnboundedSender;

use super::deploy::Previous;
use super::error::ApplyError;
use super::progress::Progress;
use super::prune::Pruned;
use super::resource::same_object;
use super::{Applier, ApplyReport};
use loco_render::{ObjectRef, Rendered};

/// What the failed deploy created that `previous` does not have: revert deletes these.
pub(crate) fn created_extras(created: &[ObjectRef], previous: &[ObjectRef]) -> Vec<ObjectRef> {
    created
        .iter()
        .filter(|c| !previous.iter().any(|p| same_object(p, c)))
        .cloned()
        .collect()
}

impl Applier {
    /// With a previous revision: re-apply it, delete what the failed deploy created that
    /// it lacks, and wait for its rollout. Without (a first deploy): delete what was
    /// created; if that includes the namespace, deleting it takes everything inside. With
    /// an unrenderable previous revision: nothing is deleted, and the revert fails.
    /// Every delete is recorded into `deleted` as it happens.
    pub(crate) async fn revert(
        &self,
        desired: &Rendered,
        previous: Previous<'_>,
        failed: &ApplyReport,
        progress: Option<&UnboundedSender<Progress>>,
        deleted: &mut Pruned,
    ) -> Result<(), ApplyError> {
        match previous {
            Previous::Unrenderable(why) => Err(ApplyError::PreviousUnrenderable {
                why: why.to_owned(),
            }),
            Previous::Rendered(prev) => {
                let mut report = ApplyReport::default();
                self.apply_into(prev, progress, &mut report).await?;
                self.delete_into(&created_extras(&failed.created, &prev.inventory()), deleted)
                    .await?;
                self.wait_rollout_with(prev, progress).await
            }
            Previous::FirstDeploy => {
                let created_namespace = failed
                    .created
                    .iter()
                    .any(|r| r.kind == "Namespace" && r.name == desired.namespace);
                if created_namespace {
                    // Objects outside the namespace first; the namespace takes the rest.
                    let outside: Vec<ObjectRef> = failed
                        .created
                        .iter()
                        .filter(|r| {
                            r.kind != "Namespace"
                                && r.namespace.as_deref() != Some(&desired.namespace)
                        })
                        .cloned()
                        .collect();
                    self.delete_into(&outside, deleted).await?;
                    self.delete_app(&desired.namespace).await?;
                    deleted.deleted.extend(
                        failed
                            .created
                            .iter()
                            .filter(|r| !outside.iter().any(|o| same_object(o, r)))
                            .cloned(),
                    );
                    Ok(())
                } else {
                    self.delete_into(&failed.created, deleted).await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("wks-1-app-2".into()),
            name: name.into(),
        }
    }

    #[test]
    fn revert_deletes_only_what_the_failed_deploy_added() {
        let created = vec![r("Secret", "env-new"), r("Service", "app")];
        let previous = vec![r("Service", "app"), r("Secret", "env-old")];
        assert_eq!(
            created_extras(&created, &previous),
            vec![r("Secret", "env-new")]
        );
    }
}
