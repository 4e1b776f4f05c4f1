//! The whole deploy of one app: apply, wait for the rollout, prune; on failure, revert.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::engine::emit;
use super::error::{ApplyError, DeployFailure};
use super::progress::Progress;
use super::prune::Pruned;
use super::{Applier, ApplyReport};
use loco_render::{ObjectRef, Rendered};

/// What ran before a deploy: what a failed deploy puts back.
#[derive(Debug, Clone, Copy)]
pub enum Previous<'a> {
    /// Nothing: a first deploy. Reverting deletes what it created.
    FirstDeploy,
    /// The previous revision's render: reverting re-applies it.
    Rendered(&'a Rendered),
    /// There was a previous revision, but it cannot be rendered (`why`): reverting is
    /// impossible, and deletes nothing either (the previous objects stay in place).
    Unrenderable(&'a str),
}

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
    /// [`Applier::deploy_with`] with `previous` as an option (`None`: a first deploy).
    pub async fn deploy(
        &self,
        desired: &Rendered,
        previous: Option<&Rendered>,
        previous_inventory: &[ObjectRef],
        progress: Option<&UnboundedSender<Progress>>,
    ) -> Result<DeployReport, DeployFailure> {
        let previous = previous.map_or(Previous::FirstDeploy, Previous::Rendered);
        self.deploy_with(desired, previous, previous_inventory, progress)
            .await
    }

    /// The whole deploy of one app: apply, wait for the rollout, then prune what
    /// `previous_inventory` has and `desired` lacks. Prune runs last (Argo CD's
    /// PruneLast): the old pods keep their env Secret until the new ones are Ready and the
    /// old ones gone. On failure the cluster is put back (see [`Previous`]). Progress
    /// events go to `progress` if given.
    pub async fn deploy_with(
        &self,
        desired: &Rendered,
        previous: Previous<'_>,
        previous_inventory: &[ObjectRef],
        progress: Option<&UnboundedSender<Progress>>,
    ) -> Result<DeployReport, DeployFailure> {
        let started = Instant::now();
        let mut out = DeployReport::default();
        let mut pruned = Pruned::default();
        let result = async {
            self.apply_into(desired, progress, &mut out.apply).await?;
            out.apply_time = started.elapsed();
            let t = Instant::now();
            self.wait_rollout_with(desired, progress).await?;
            out.rollout_time = t.elapsed();
            let t = Instant::now();
            self.prune_into(desired, previous_inventory, progress, &mut pruned)
                .await?;
            out.prune_time = t.elapsed();
            Ok::<(), ApplyError>(())
        }
        .await;
        // What prune deleted counts even when it stopped halfway.
        out.apply.pruned = pruned.deleted;
        out.apply.kept_unmanaged = pruned.kept_unmanaged;
        match result {
            Ok(()) => {
                out.total_time = started.elapsed();
                Ok(out)
            }
            Err(e) => Err(self.fail(e, desired, previous, &out.apply, progress).await),
        }
    }

    /// Reverts (when anything was changed) and words the failure: the one place that
    /// says what became of the cluster.
    async fn fail(
        &self,
        error: ApplyError,
        desired: &Rendered,
        previous: Previous<'_>,
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
                deleted: Vec::new(),
            };
        }
        // A worker that lost its claim writes nothing more, not even a revert: the
        // worker that took over owns the cluster's state now.
        if matches!(error, ApplyError::Fenced { .. }) {
            return DeployFailure {
                reason,
                message: error.to_string(),
                reverted: false,
                revert_error: None,
                deleted: report.pruned.clone(),
            };
        }
        emit(
            progress,
            Progress::Reverting {
                namespace: namespace.clone(),
                cause: reason,
            },
        );
        let mut deleted = Pruned {
            deleted: report.pruned.clone(),
            ..Pruned::default()
        };
        match self
            .revert(desired, previous, report, progress, &mut deleted)
            .await
        {
            Ok(()) => {
                emit(progress, Progress::Reverted { namespace });
                let back = match previous {
                    Previous::Rendered(_) => {
                        "The previous revision was restored: the previous deployment was re-applied and keeps serving."
                    }
                    _ => "This was the app's first deploy: what it created was deleted.",
                };
                DeployFailure {
                    reason,
                    message: format!("{error} {back}"),
                    reverted: true,
                    revert_error: None,
                    deleted: deleted.deleted,
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
                let gone = if deleted.deleted.is_empty() {
                    String::new()
                } else {
                    format!(
                        " Deleted meanwhile: {}.",
                        deleted
                            .deleted
                            .iter()
                            .map(super::resource::show)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                DeployFailure {
                    reason,
                    message: format!(
                        "{error} Putting the previous state back failed too: {revert}{gone} The app may be half-deployed: fix the cause, then deploy again or roll back to a revision that worked."
                    ),
                    reverted: false,
                    revert_error: Some(revert.to_string()),
                    deleted: deleted.deleted,
                }
            }
        }
    }
}
