//! The whole deploy of one app: apply, prune, wait for the rollout; on failure, revert.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::engine::emit;
use super::error::{ApplyError, DeployFailure};
use super::progress::Progress;
use super::{Applier, ApplyReport};
use loco_render::{ObjectRef, Rendered};

/// What a successful deploy did, and how long each step took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployReport {
    pub apply: ApplyReport,
    pub apply_time: Duration,
    pub prune_time: Duration,
    pub rollout_time: Duration,
    pub total_time: Duration,
}

impl Applier {
    /// The whole deploy of one app: apply, prune, wait. On failure the cluster is put
    /// back: `previous` (the revision that ran before) is re-applied and rolled out and
    /// what this deploy created beyond it is deleted; with no previous (a first deploy)
    /// what was created is deleted. Progress events go to `progress` if given.
    pub async fn deploy(
        &self,
        desired: &Rendered,
        previous: Option<&Rendered>,
        previous_inventory: &[ObjectRef],
        progress: Option<&UnboundedSender<Progress>>,
    ) -> Result<DeployReport, DeployFailure> {
        let started = Instant::now();
        let mut out = DeployReport::default();
        let result = async {
            self.apply_into(desired, progress, &mut out.apply).await?;
            out.apply_time = started.elapsed();
            let t = Instant::now();
            let pruned = self
                .prune_with(desired, previous_inventory, progress)
                .await?;
            out.apply.pruned = pruned.deleted;
            out.apply.kept_unmanaged = pruned.kept_unmanaged;
            out.prune_time = t.elapsed();
            let t = Instant::now();
            self.wait_rollout_with(desired, progress).await?;
            out.rollout_time = t.elapsed();
            Ok::<(), ApplyError>(())
        }
        .await;
        match result {
            Ok(()) => {
                out.total_time = started.elapsed();
                Ok(out)
            }
            Err(e) => Err(self.fail(e, desired, previous, &out.apply, progress).await),
        }
    }

    /// Reverts (when anything was changed) and words the failure.
    async fn fail(
        &self,
        error: ApplyError,
        desired: &Rendered,
        previous: Option<&Rendered>,
        report: &ApplyReport,
        progress: Option<&UnboundedSender<Progress>>,
    ) -> DeployFailure {
        let namespace = desired.namespace.clone();
        let reason = error.reason();
        tracing::warn!(namespace, reason, "deploy failed: {error}");
        let nothing_changed = report.written.is_empty() && report.pruned.is_empty();
        if nothing_changed {
            return DeployFailure {
                reason,
                message: format!("{error} Nothing was changed in the cluster."),
                reverted: true,
                revert_error: None,
            };
        }
        emit(
            progress,
            Progress::Reverting {
                namespace: namespace.clone(),
                cause: reason,
            },
        );
        match self.revert(desired, previous, report, progress).await {
            Ok(()) => {
                emit(progress, Progress::Reverted { namespace });
                let back = if previous.is_some() {
                    "The previous revision was restored and is running."
                } else {
                    "This was the app's first deploy: what it created was deleted."
                };
                DeployFailure {
                    reason,
                    message: format!("{error} {back}"),
                    reverted: true,
                    revert_error: None,
                }
            }
            Err(revert) => {
                tracing::error!(
                    namespace,
                    reason = revert.reason(),
                    "revert failed: {revert}"
                );
                emit(
                    progress,
                    Progress::RevertFailed {
                        namespace,
                        cause: revert.reason(),
                    },
                );
                DeployFailure {
                    reason,
                    message: format!(
                        "{error} Putting the previous state back failed too: {revert} The app may be half-deployed: fix the cause, then deploy again or roll back to a revision that worked."
                    ),
                    reverted: false,
                    revert_error: Some(revert.to_string()),
                }
            }
        }
    }
}
