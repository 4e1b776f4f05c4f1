//! Why a rollout did not finish, read from the new pods' status when the wait ends: the
//! image could not be pulled, the container keeps exiting, no node can take the pods, or
//! the pods run but never pass their readiness check. The sentence is loco's own; what
//! kubelet and the registry said goes to the log only (it can name internal hosts).

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use loco_render::{LABEL_MANAGED_BY, MANAGED_BY};

/// What keeps the new pods from becoming Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodTrouble {
    /// kubelet cannot pull the image (ErrImagePull, ImagePullBackOff, InvalidImageName).
    ImagePull { image: String, kind: PullFailure },
    /// The container exits and is restarted (CrashLoopBackOff, or terminated with an error).
    Crashing {
        exit_code: Option<i32>,
        restarts: i32,
    },
    /// kubelet cannot build the container (a missing Secret or ConfigMap, a bad setting).
    ContainerConfig,
    /// The scheduler found no node for the pods; its summary (node counts and reasons).
    Unschedulable { summary: String },
    /// The pods run, but the readiness check never passed.
    NotReady,
}

/// What the registry answered a pull, as far as kubelet's message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// 401/403: the cluster's pull credential was refused.
    Refused,
    /// The image or tag does not exist.
    NotFound,
    /// The registry could not be reached, or another error.
    Other,
}

impl PodTrouble {
    /// Stable snake_case reason of a rollout that failed for this cause.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::ImagePull { .. } => Some("image_pull_failed"),
            Self::Crashing { .. } => Some("app_crashing"),
            Self::ContainerConfig => Some("container_config_error"),
            Self::Unschedulable { .. } => Some("pods_unschedulable"),
            // A readiness failure is what a rollout deadline means: keep its reason.
            Self::NotReady => None,
        }
    }

    /// One sentence for people, with the next step.
    pub fn sentence(&self) -> String {
        match self {
            Self::ImagePull { image, kind } => {
                let why = match kind {
                    PullFailure::Refused => {
                        "the registry refused the cluster's pull credential. Set the right one with `loco-api clusters set-pull-credential`"
                    }
                    PullFailure::NotFound => {
                        "the registry has no such image. Push it (check the tag and digest)"
                    }
                    PullFailure::Other => {
                        "the registry could not be reached or answered an error. Check the registry and the cluster's pull credential"
                    }
                };
                format!("The node could not pull the image {image}: {why}, then deploy again.")
            }
            Self::Crashing {
                exit_code,
                restarts,
            } => {
                let code = exit_code.map_or_else(String::new, |c| format!(" with exit code {c}"));
                format!(
                    "The app's container exits{code} and was restarted {restarts} time(s). Look at the app's logs (it must keep running and listen on its port), then deploy again."
                )
            }
            Self::ContainerConfig => "kubelet could not create the app's container from its settings (a Secret or setting it references is missing). Deploy again; if it repeats, report it as a loco bug.".to_owned(),
            Self::Unschedulable { summary } => format!(
                "No node can take the new pods ({summary}). Lower the app's CPU or memory, or add nodes, then deploy again."
            ),
            Self::NotReady => "The new pods never passed their readiness check (the [Health] check; kubelet restarts a container whose check keeps failing): look at the app's logs and its [Health] settings, then deploy again.".to_owned(),
        }
    }
}

/// Lists the app's pods in `namespace` and returns why those running `image` are not
/// Ready. An error listing them is logged and gives `None`: the diagnosis only adds
/// words to a failure that is already certain.
pub(crate) async fn pod_trouble(
    client: &kube::Client,
    namespace: &str,
    image: &str,
) -> Option<PodTrouble> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match api
        .list(&ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}")))
        .await
    {
        Ok(pods) => trouble_of(&pods.items, image),
        Err(e) => {
            tracing::warn!(namespace, error = %e, "could not list the app's pods to say why the rollout failed");
            None
        }
    }
}

/// The first cause found on the not-Ready pods that run `image`, most telling first.
pub fn trouble_of(pods: &[Pod], image: &str) -> Option<PodTrouble> {
    let new: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| runs(p, image))
        .filter(|p| !ready(p))
        .collect();
    let causes: Vec<PodTrouble> = new.iter().filter_map(|p| cause_of(p, image)).collect();
    let rank = |t: &PodTrouble| match t {
        PodTrouble::ImagePull { .. } => 0,
        PodTrouble::Unschedulable { .. } => 1,
        PodTrouble::ContainerConfig => 2,
        PodTrouble::Crashing { .. } => 3,
        PodTrouble::NotReady => 4,
    };
    causes.into_iter().min_by_key(rank)
}

fn runs(p: &Pod, image: &str) -> bool {
    p.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .any(|c| c.image.as_deref() == Some(image))
    })
}

fn ready(p: &Pod) -> bool {
    conditions(p).any(|(t, s, _, _)| t == "Ready" && s == "True")
}

fn conditions(p: &Pod) -> impl Iterator<Item = (&str, &str, Option<&str>, Option<&str>)> {
    p.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref(),
                c.message.as_deref(),
            )
        })
}

fn cause_of(p: &Pod, image: &str) -> Option<PodTrouble> {
    let pod = p.metadata.name.as_deref().unwrap_or("");
    if let Some((_, _, _, message)) = conditions(p)
        .find(|(t, s, r, _)| *t == "PodScheduled" && *s == "False" && *r == Some("Unschedulable"))
    {
        let summary = message
            .and_then(|m| m.split(". ").next())
            .unwrap_or("the scheduler gave no reason")
            .trim_end_matches('.')
            .to_owned();
        return Some(PodTrouble::Unschedulable { summary });
    }
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())?;
    let c = statuses
        .iter()
        .find(|c| c.image == image || c.name == "app")?;
    let state = c.state.as_ref();
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let message = w.message.as_deref().unwrap_or("");
        match w.reason.as_deref() {
            Some(
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull",
            ) => {
                tracing::info!(
                    pod,
                    kubelet = message,
                    "the new pod's image cannot be pulled"
                );
                return Some(PodTrouble::ImagePull {
                    image: image.to_owned(),
                    kind: pull_failure(message),
                });
            }
            Some("CreateContainerConfigError" | "CreateContainerError") => {
                tracing::info!(
                    pod,
                    kubelet = message,
                    "the new pod's container cannot be created"
                );
                return Some(PodTrouble::ContainerConfig);
            }
            Some("CrashLoopBackOff") => {
                return Some(if exited_by_itself(c) {
                    crashing(c)
                } else {
                    PodTrouble::NotReady
                });
            }
            _ => {}
        }
    }
    if c.restart_count > 0
        && exited_by_itself(c)
        && state.and_then(|s| s.running.as_ref()).is_none()
    {
        return Some(crashing(c));
    }
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return Some(PodTrouble::NotReady);
    }
    None
}

/// Whether the container's last run ended on its own (an error exit, or OOM) rather than
/// being stopped by kubelet after failed liveness checks (SIGTERM/SIGKILL: exit 0 from a
/// graceful shutdown, 143 or 137). A health path that never answers 200 fails both the
/// readiness and the liveness check, so its restarts are a health-check failure.
fn exited_by_itself(c: &k8s_openapi::api::core::v1::ContainerStatus) -> bool {
    c.last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| {
            t.reason.as_deref() == Some("OOMKilled") || !matches!(t.exit_code, 0 | 137 | 143)
        })
}

fn crashing(c: &k8s_openapi::api::core::v1::ContainerStatus) -> PodTrouble {
    PodTrouble::Crashing {
        exit_code: c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        restarts: c.restart_count,
    }
}

/// kubelet's pull message carries the registry's answer ("401 Unauthorized", "not found").
fn pull_failure(message: &str) -> PullFailure {
    let m = message.to_ascii_lowercase();
    if m.contains("401")
        || m.contains("403")
        || m.contains("unauthorized")
        || m.contains("forbidden")
        || m.contains("authorization failed")
    {
        PullFailure::Refused
    } else if m.contains("not found") || m.contains("404") || m.contains("manifest unknown") {
        PullFailure::NotFound
    } else {
        PullFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
        ContainerStateWaiting, ContainerStatus, PodCondition, PodSpec, PodStatus,
    };

    const IMG: &str = "r.io/acme/web:v2@sha256:ab";

    fn pod(image: &str, ready: bool, state: ContainerState, restarts: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    image: image.into(),
                    ready,
                    restart_count: restarts,
                    state: Some(state),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn waiting(reason: &str, message: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some(message.into()),
            }),
            ..ContainerState::default()
        }
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }
    }

    #[test]
    fn a_refused_pull_names_the_pull_credential() {
        let pods = [pod(
            IMG,
            false,
            waiting(
                "ImagePullBackOff",
                "pulling from host r.io failed with status code [manifests sha256:ab]: 401 Unauthorized",
            ),
            0,
        )];
        let t = trouble_of(&pods, IMG).unwrap();
        assert_eq!(
            t,
            PodTrouble::ImagePull {
                image: IMG.into(),
                kind: PullFailure::Refused
            }
        );
        assert_eq!(t.reason(), Some("image_pull_failed"));
        assert!(
            t.sentence().contains("set-pull-credential"),
            "{}",
            t.sentence()
        );
        assert!(
            !t.sentence().contains("401"),
            "kubelet's words stay in the log"
        );
    }

    #[test]
    fn a_missing_image_is_not_called_a_credential_problem() {
        let pods = [pod(
            IMG,
            false,
            waiting("ErrImagePull", "rpc error: ... : not found"),
            0,
        )];
        assert!(matches!(
            trouble_of(&pods, IMG),
            Some(PodTrouble::ImagePull {
                kind: PullFailure::NotFound,
                ..
            })
        ));
    }

    #[test]
    fn old_ready_pods_and_other_images_are_ignored() {
        let pods = [
            pod(
                "r.io/acme/web:v1@sha256:00",
                false,
                waiting("ImagePullBackOff", "401"),
                0,
            ),
            pod(IMG, true, running(), 0),
        ];
        assert_eq!(trouble_of(&pods, IMG), None);
    }

    #[test]
    fn running_but_not_ready_is_a_readiness_failure() {
        let pods = [pod(IMG, false, running(), 0)];
        let t = trouble_of(&pods, IMG).unwrap();
        assert_eq!(t, PodTrouble::NotReady);
        assert_eq!(t.reason(), None);
    }

    #[test]
    fn a_crash_loop_reports_the_exit_code() {
        let mut p = pod(IMG, false, waiting("CrashLoopBackOff", "back-off"), 3);
        p.status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .last_state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 2,
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        });
        let t = trouble_of(&[p], IMG).unwrap();
        assert_eq!(
            t,
            PodTrouble::Crashing {
                exit_code: Some(2),
                restarts: 3
            }
        );
        assert!(t.sentence().contains("exit code 2"));
    }

    #[test]
    fn restarts_after_failed_health_checks_are_a_readiness_failure() {
        let mut p = pod(IMG, false, waiting("CrashLoopBackOff", "back-off"), 2);
        p.status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .last_state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                reason: Some("Completed".into()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        });
        assert_eq!(trouble_of(&[p], IMG), Some(PodTrouble::NotReady));
    }

    #[test]
    fn an_unschedulable_pod_gives_the_scheduler_summary() {
        let mut p = pod(IMG, false, ContainerState::default(), 0);
        let st = p.status.as_mut().unwrap();
        st.container_statuses = None;
        st.conditions.as_mut().unwrap().push(PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(
                "0/4 nodes are available: 4 Insufficient cpu. preemption: not helpful".into(),
            ),
            ..PodCondition::default()
        });
        let t = trouble_of(&[p], IMG).unwrap();
        assert_eq!(
            t,
            PodTrouble::Unschedulable {
                summary: "0/4 nodes are available: 4 Insufficient cpu".into()
            }
        );
    }

    #[test]
    fn the_pull_failure_wins_over_a_readiness_failure() {
        let pods = [
            pod(IMG, false, running(), 0),
            pod(IMG, false, waiting("ErrImagePull", "403 Forbidden"), 0),
        ];
        assert!(matches!(
            trouble_of(&pods, IMG),
            Some(PodTrouble::ImagePull { .. })
        ));
    }
}
