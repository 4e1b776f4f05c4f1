//! What a deploy is doing, as it does it: one line for a person (Display) and a stable
//! reason for the audit log. Events name objects and counts only, never content.

use std::fmt;
use std::time::Duration;

use super::resource::show;
use loco_render::{ObjectRef, Phase};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A phase finished: how many of its objects were written and how many already matched.
    PhaseApplied {
        namespace: String,
        phase: Phase,
        written: usize,
        unchanged: usize,
    },
    /// Prune deleted objects the new render no longer has.
    Pruned {
        namespace: String,
        objects: Vec<ObjectRef>,
    },
    /// Prune left an object alone because it lacks loco's managed-by label.
    KeptUnmanaged { object: ObjectRef },
    /// The rollout moved: `ready` of `desired` new pods are ready.
    Rollout {
        namespace: String,
        ready: i32,
        desired: i32,
    },
    /// The Deployment rolled out.
    RolledOut {
        namespace: String,
        desired: i32,
        elapsed: Duration,
    },
    /// The deploy failed (`cause` is the failure's reason); loco is putting things back.
    Reverting {
        namespace: String,
        cause: &'static str,
    },
    /// The cluster is back on the state before the deploy.
    Reverted { namespace: String },
    /// Putting things back failed too (`cause` is that failure's reason).
    RevertFailed {
        namespace: String,
        cause: &'static str,
    },
}

impl Progress {
    /// Stable snake_case name, stored as the audit event's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PhaseApplied { .. } => "phase_applied",
            Self::Pruned { .. } => "objects_pruned",
            Self::KeptUnmanaged { .. } => "prune_kept_unmanaged",
            Self::Rollout { .. } => "rollout_progress",
            Self::RolledOut { .. } => "rollout_complete",
            Self::Reverting { .. } => "reverting",
            Self::Reverted { .. } => "reverted",
            Self::RevertFailed { .. } => "revert_failed",
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Namespace => "namespace",
        Phase::NetworkPolicy => "network policies",
        Phase::Identity => "service account",
        Phase::Secret => "secrets",
        Phase::Service => "service",
        Phase::Workload => "workload",
        Phase::Route => "routes",
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PhaseApplied {
                namespace,
                phase,
                written,
                unchanged,
            } => write!(
                f,
                "{namespace}: applied {}: {written} written, {unchanged} unchanged",
                phase_name(*phase)
            ),
            Self::Pruned { namespace, objects } => {
                let names: Vec<String> = objects.iter().map(show).collect();
                write!(
                    f,
                    "{namespace}: pruned {} object(s) the new revision no longer has: {}",
                    objects.len(),
                    names.join(", ")
                )
            }
            Self::KeptUnmanaged { object } => write!(
                f,
                "kept {}: it lacks loco's managed-by label, so prune leaves it alone",
                show(object)
            ),
            Self::Rollout {
                namespace,
                ready,
                desired,
            } => write!(f, "{namespace}: rollout: {ready}/{desired} new pods ready"),
            Self::RolledOut {
                namespace,
                desired,
                elapsed,
            } => write!(
                f,
                "{namespace}: rolled out, {desired}/{desired} pods ready after {:.1}s",
                elapsed.as_secs_f64()
            ),
            Self::Reverting { namespace, cause } => write!(
                f,
                "{namespace}: the deploy failed ({cause}); putting the previous state back"
            ),
            Self::Reverted { namespace } => {
                write!(f, "{namespace}: the previous state is back")
            }
            Self::RevertFailed { namespace, cause } => write!(
                f,
                "{namespace}: putting the previous state back failed too ({cause})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_as_one_line_with_a_snake_case_reason() {
        let r = ObjectRef {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "GRPCRoute".into(),
            namespace: Some("wks-1-app-2".into()),
            name: "app".into(),
        };
        let ns = || "wks-1-app-2".to_owned();
        let events = [
            Progress::PhaseApplied {
                namespace: ns(),
                phase: Phase::Secret,
                written: 1,
                unchanged: 2,
            },
            Progress::Pruned {
                namespace: ns(),
                objects: vec![r.clone()],
            },
            Progress::KeptUnmanaged { object: r },
            Progress::Rollout {
                namespace: ns(),
                ready: 1,
                desired: 3,
            },
            Progress::RolledOut {
                namespace: ns(),
                desired: 3,
                elapsed: Duration::from_millis(1500),
            },
            Progress::Reverting {
                namespace: ns(),
                cause: "rollout_deadline_exceeded",
            },
            Progress::Reverted { namespace: ns() },
            Progress::RevertFailed {
                namespace: ns(),
                cause: "apply_rejected",
            },
        ];
        for e in &events {
            let line = e.to_string();
            assert!(
                !line.contains('\n') && line.starts_with(|c: char| c.is_ascii_lowercase()),
                "{line}"
            );
            assert!(
                e.reason()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
        }
        assert_eq!(
            events[3].to_string(),
            "wks-1-app-2: rollout: 1/3 new pods ready"
        );
        assert_eq!(
            events[1].to_string(),
            "wks-1-app-2: pruned 1 object(s) the new revision no longer has: GRPCRoute wks-1-app-2/app"
        );
    }
}
