//! Waiting for a Deployment to roll out: poll its status until the new pods are ready or
//! the deadline passes. Polling (not a watch) keeps the RBAC to get/list and costs one
//! small GET per interval.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use tokio::sync::mpsc::UnboundedSender;

use super::Applier;
use super::diagnose::pod_trouble;
use super::engine::emit;
use super::error::ApplyError;
use super::progress::Progress;
use loco_render::{Object, ObjectRef, Rendered};

const POLL: Duration = Duration::from_millis(300);

/// Where a rollout stands, from the Deployment's status alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rollout {
    Done {
        desired: i32,
    },
    Waiting {
        ready: i32,
        desired: i32,
    },
    /// Kubernetes gave up (Progressing=False, ProgressDeadlineExceeded).
    Stalled {
        ready: i32,
        desired: i32,
    },
}

/// The same rules as `kubectl rollout status`: the controller has seen the current
/// generation, every replica is updated, no old replica is left and the updated ones are
/// available. 0 desired replicas (asleep) is done once the generation is observed.
///
/// `ready` counts new pods that are available: the Deployment status has no such field,
/// so it is `available - old pods`, which holds while old pods are all available (our
/// strategy never takes one down before a new one is ready).
pub(crate) fn rollout_of(d: &Deployment) -> Rollout {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let ready = (available - (total - updated).max(0)).clamp(0, updated.max(0));
    if !observed {
        return Rollout::Waiting { ready: 0, desired };
    }
    if desired == 0 || (updated >= desired && total <= updated && available >= updated) {
        return Rollout::Done { desired };
    }
    let stalled = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if stalled {
        Rollout::Stalled { ready, desired }
    } else {
        Rollout::Waiting { ready, desired }
    }
}

impl Applier {
    /// Waits until the app's Deployment has rolled out (observedGeneration, updated and
    /// available replicas; 0 replicas is done at once) or the deadline passes. An app
    /// without a Deployment has nothing to wait for.
    pub async fn wait_rollout(&self, desired: &Rendered) -> Result<(), ApplyError> {
        self.wait_rollout_with(desired, None).await
    }

    pub(crate) async fn wait_rollout_with(
        &self,
        desired: &Rendered,
        progress: Option<&UnboundedSender<Progress>>,
    ) -> Result<(), ApplyError> {
        let Some(r) = desired.objects.iter().find_map(|o| match &o.object {
            Object::Deployment(_) => Some(o.object.reference()),
            _ => None,
        }) else {
            return Ok(());
        };
        let namespace = r.namespace.clone().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        let started = Instant::now();
        let deadline = started + self.config.rollout_deadline;
        let mut last = None;
        loop {
            let d = api
                .get_opt(&r.name)
                .await
                .map_err(|e| ApplyError::from_kube(e, "read", &r))?
                .ok_or_else(|| missing(&r))?;
            let state = rollout_of(&d);
            match state {
                Rollout::Done { desired } => {
                    emit(
                        progress,
                        Progress::RolledOut {
                            namespace,
                            desired,
                            elapsed: started.elapsed(),
                        },
                    );
                    return Ok(());
                }
                Rollout::Stalled { ready, desired } => {
                    let cause = pod_trouble(&self.client, &namespace, &image_of(&d)).await;
                    return Err(ApplyError::RolloutStalled {
                        namespace,
                        name: r.name,
                        ready,
                        desired,
                        cause,
                    });
                }
                Rollout::Waiting { ready, desired } => {
                    if last != Some((ready, desired)) {
                        last = Some((ready, desired));
                        emit(
                            progress,
                            Progress::Rollout {
                                namespace: namespace.clone(),
                                ready,
                                desired,
                            },
                        );
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        let cause = pod_trouble(&self.client, &namespace, &image_of(&d)).await;
                        return Err(ApplyError::RolloutDeadlineExceeded {
                            namespace,
                            name: r.name,
                            ready,
                            desired,
                            deadline: self.config.rollout_deadline,
                            cause,
                        });
                    }
                    tokio::time::sleep(POLL.min(deadline - now)).await;
                }
            }
        }
    }
}

/// The image of the Deployment's first container: what the new pods run.
fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn missing(r: &ObjectRef) -> ApplyError {
    ApplyError::DeploymentMissing {
        namespace: r.namespace.clone().unwrap_or_default(),
        name: r.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn dep(generation: i64, desired: i32, status: DeploymentStatus) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(desired),
                ..DeploymentSpec::default()
            }),
            status: Some(status),
            ..Deployment::default()
        };
        d.metadata.generation = Some(generation);
        d
    }

    fn st(observed: i64, total: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(total),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn a_complete_rollout_is_done() {
        assert_eq!(
            rollout_of(&dep(2, 3, st(2, 3, 3, 3))),
            Rollout::Done { desired: 3 }
        );
    }

    #[test]
    fn an_unobserved_generation_is_not_done_even_if_counts_look_right() {
        assert_eq!(
            rollout_of(&dep(3, 1, st(2, 1, 1, 1))),
            Rollout::Waiting {
                ready: 0,
                desired: 1
            }
        );
    }

    #[test]
    fn a_new_pod_that_never_gets_ready_keeps_the_rollout_waiting() {
        // Surge 1, unavailable 0: the old pod still serves, the new one is not ready.
        assert_eq!(
            rollout_of(&dep(2, 1, st(2, 2, 1, 1))),
            Rollout::Waiting {
                ready: 0,
                desired: 1
            }
        );
        // Two of three new pods ready, one old left.
        assert_eq!(
            rollout_of(&dep(2, 3, st(2, 4, 3, 3))),
            Rollout::Waiting {
                ready: 2,
                desired: 3
            }
        );
    }

    #[test]
    fn zero_replicas_is_done_once_observed() {
        assert_eq!(
            rollout_of(&dep(4, 0, st(4, 1, 0, 1))),
            Rollout::Done { desired: 0 }
        );
        assert_eq!(
            rollout_of(&dep(4, 0, st(3, 1, 0, 1))),
            Rollout::Waiting {
                ready: 0,
                desired: 0
            }
        );
    }

    #[test]
    fn kubernetes_giving_up_is_a_stall() {
        let mut s = st(2, 2, 1, 1);
        s.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..DeploymentCondition::default()
        }]);
        assert_eq!(
            rollout_of(&dep(2, 1, s)),
            Rollout::Stalled {
                ready: 0,
                desired: 1
            }
        );
    }

    #[test]
    fn the_deadline_message_names_counts_and_the_next_step() {
        let e = ApplyError::RolloutDeadlineExceeded {
            namespace: "wks-1-app-2".into(),
            name: "app".into(),
            ready: 0,
            desired: 2,
            deadline: Duration::from_secs(300),
            cause: None,
        };
        let m = e.to_string();
        assert!(
            m.contains("wks-1-app-2/app") && m.contains("0 of 2") && m.contains("300s"),
            "{m}"
        );
        assert!(m.contains("logs"), "{m}");
        assert_eq!(e.reason(), "rollout_deadline_exceeded");
    }

    #[test]
    fn a_known_cause_gives_its_reason_and_sentence() {
        let e = ApplyError::RolloutDeadlineExceeded {
            namespace: "wks-1-app-2".into(),
            name: "app".into(),
            ready: 0,
            desired: 1,
            deadline: Duration::from_secs(60),
            cause: Some(crate::PodTrouble::ImagePull {
                image: "r.io/acme/web:v1".into(),
                kind: crate::PullFailure::Refused,
            }),
        };
        assert_eq!(e.reason(), "image_pull_failed");
        let m = e.to_string();
        assert!(
            m.contains("pull credential") && !m.contains("readiness"),
            "{m}"
        );
    }
}
