//! The check itself: pure functions from plain data to a `Verdict`.
//!
//! A cluster-wide sum of free resources is the wrong question (it passes when no single
//! node can take a pod), so each replica, scaled by the factor, is placed on a node the
//! way kube-scheduler's filters would allow it (Ready, schedulable, no pressure, taints
//! tolerated, node selector matched, fits in allocatable minus the requests of the pods
//! already bound there) and, among those, on the least allocated one (the scheduler's
//! default score), one replica at a time.

use std::borrow::Borrow;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::error::Error;
use crate::model::{
    ComponentInfo, ComponentSelector, ComponentsState, ConditionStatus, NodeInfo, PodUsage,
    Purpose, Request, Resources, Taint, TaintEffect,
};
use crate::quantity::{Cpu, Mem};
pub use crate::usage::Usage;

/// The taint Kubernetes puts on cordoned nodes; tolerating it allows a cordoned node.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
/// Above this the request is surely a mistake, and the simulation would only burn CPU.
pub const MAX_REPLICAS: u32 = 100_000;

/// Why a node cannot take (more) replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NodeProblem {
    NotReady {
        status: ConditionStatus,
    },
    Cordoned,
    MemoryPressure,
    DiskPressure,
    PidPressure,
    NetworkUnavailable,
    UntoleratedTaint {
        taint: Taint,
    },
    NodeSelectorMismatch {
        key: String,
        want: String,
        have: Option<String>,
    },
    InsufficientCpu {
        free_millis: u64,
        need_millis: u64,
    },
    InsufficientMemory {
        free_bytes: u64,
        need_bytes: u64,
    },
    TooManyPods {
        free: u64,
        need: u64,
    },
}

impl NodeProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            NodeProblem::NotReady { .. } => "not_ready",
            NodeProblem::Cordoned => "cordoned",
            NodeProblem::MemoryPressure => "memory_pressure",
            NodeProblem::DiskPressure => "disk_pressure",
            NodeProblem::PidPressure => "pid_pressure",
            NodeProblem::NetworkUnavailable => "network_unavailable",
            NodeProblem::UntoleratedTaint { .. } => "untolerated_taint",
            NodeProblem::NodeSelectorMismatch { .. } => "node_selector_mismatch",
            NodeProblem::InsufficientCpu { .. } => "insufficient_cpu",
            NodeProblem::InsufficientMemory { .. } => "insufficient_memory",
            NodeProblem::TooManyPods { .. } => "too_many_pods",
        }
    }

    fn is_capacity(&self) -> bool {
        matches!(
            self,
            NodeProblem::InsufficientCpu { .. }
                | NodeProblem::InsufficientMemory { .. }
                | NodeProblem::TooManyPods { .. }
        )
    }

    pub fn message(&self) -> String {
        match self {
            NodeProblem::NotReady { status } => format!("not Ready (Ready={status:?})"),
            NodeProblem::Cordoned => "cordoned (spec.unschedulable)".to_string(),
            NodeProblem::MemoryPressure => "under memory pressure".to_string(),
            NodeProblem::DiskPressure => "under disk pressure".to_string(),
            NodeProblem::PidPressure => "under PID pressure".to_string(),
            NodeProblem::NetworkUnavailable => "network unavailable".to_string(),
            NodeProblem::UntoleratedTaint { taint } => format!(
                "taint {}{}:{:?} not tolerated",
                taint.key,
                taint
                    .value
                    .as_deref()
                    .map(|v| format!("={v}"))
                    .unwrap_or_default(),
                taint.effect
            ),
            NodeProblem::NodeSelectorMismatch { key, want, have } => match have {
                Some(have) => format!("label {key}={have}, the node selector wants {want}"),
                None => format!("no label {key} (the node selector wants {key}={want})"),
            },
            NodeProblem::InsufficientCpu {
                free_millis,
                need_millis,
            } => format!(
                "{} CPU free, a replica needs {}",
                Cpu(*free_millis),
                Cpu(*need_millis)
            ),
            NodeProblem::InsufficientMemory {
                free_bytes,
                need_bytes,
            } => format!(
                "{} memory free, a replica needs {}",
                Mem(*free_bytes),
                Mem(*need_bytes)
            ),
            NodeProblem::TooManyPods { free, need } => {
                format!("{free} pod slots free, a replica needs {need}")
            }
        }
    }
}

/// One node in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub name: String,
    /// Passes every filter but capacity (Ready, schedulable, taints, selector, pressure).
    pub eligible: bool,
    pub allocatable: Resources,
    /// Requests of the non-terminated pods bound to it (DaemonSet pods included).
    pub requested: Resources,
    /// The DaemonSet share of `requested`.
    pub daemonset_requested: Resources,
    pub free: Resources,
    /// How many scaled replicas would fit on it alone.
    pub fits: u64,
    /// How many the simulation placed on it.
    pub placed: u32,
    pub problems: Vec<NodeProblem>,
}

/// A reason the whole check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable snake_case: no_nodes, no_eligible_nodes, insufficient_capacity,
    /// components_not_installed, components_not_ready.
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentsReport {
    /// not_checked, ready, not_installed, not_ready.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<ComponentSelector>,
    pub deployments: Vec<ComponentInfo>,
    /// True when a problem here fails the check (not during a rebuild).
    pub required: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub pass: bool,
    pub purpose: Purpose,
    pub factor: f64,
    pub replicas: u32,
    /// One replica as requested.
    pub per_replica: Resources,
    /// One replica times the factor: what the simulation places.
    pub per_replica_scaled: Resources,
    pub placed: u32,
    pub nodes: Vec<NodeReport>,
    /// Pods not bound to a node yet: they take nothing now but will.
    pub pods_pending: u64,
    pub components: ComponentsReport,
    pub failures: Vec<Failure>,
    /// What a person can do about the failures (also set on a pass for warnings).
    pub next_steps: Vec<String>,
}

impl Verdict {
    /// The first failure's reason (for events and metrics), or "pass".
    pub fn reason(&self) -> &'static str {
        self.failures.first().map(|f| f.reason).unwrap_or("pass")
    }
}

fn scale(v: u64, factor: f64) -> u64 {
    // `as` saturates for f64 -> u64, so huge products cannot wrap.
    (v as f64 * factor).ceil() as u64
}

/// Checks the request and returns the scaled per-replica need.
pub fn validate(req: &Request) -> Result<(f64, Resources), Error> {
    let factor = req.factor();
    if !factor.is_finite() || factor <= 0.0 || factor > 100.0 {
        return Err(Error::InvalidRequest(format!(
            "factor {factor} is outside (0, 100]"
        )));
    }
    if req.replicas > MAX_REPLICAS {
        return Err(Error::InvalidRequest(format!(
            "{} replicas is more than the {MAX_REPLICAS} preflight simulates",
            req.replicas
        )));
    }
    for k in req.node_selector.keys() {
        if k.is_empty() {
            return Err(Error::InvalidRequest("a node selector key is empty".into()));
        }
    }
    let need = Resources::new(
        scale(req.cpu_millis, factor),
        scale(req.memory_bytes, factor),
        // A replica beside its replacement during a rollout: one pod slot per whole factor.
        scale(1, factor).max(1),
    );
    Ok((factor, need))
}

/// The filters that do not depend on capacity.
fn filter_problems(node: &NodeInfo, req: &Request) -> Vec<NodeProblem> {
    let mut p = Vec::new();
    if node.ready != ConditionStatus::True {
        p.push(NodeProblem::NotReady { status: node.ready });
    }
    let tolerated = |t: &Taint| req.tolerations.iter().any(|tol| tol.tolerates(t));
    if node.unschedulable
        && !tolerated(&Taint::new(
            UNSCHEDULABLE_TAINT,
            None,
            TaintEffect::NoSchedule,
        ))
    {
        p.push(NodeProblem::Cordoned);
    }
    for (cond, problem) in [
        (node.memory_pressure, NodeProblem::MemoryPressure),
        (node.disk_pressure, NodeProblem::DiskPressure),
        (node.pid_pressure, NodeProblem::PidPressure),
        (node.network_unavailable, NodeProblem::NetworkUnavailable),
    ] {
        if cond {
            p.push(problem);
        }
    }
    for t in &node.taints {
        if t.effect.blocks_placement() && !tolerated(t) {
            p.push(NodeProblem::UntoleratedTaint { taint: t.clone() });
        }
    }
    for (key, want) in &req.node_selector {
        let have = node.labels.get(key);
        if have != Some(want) {
            p.push(NodeProblem::NodeSelectorMismatch {
                key: key.clone(),
                want: want.clone(),
                have: have.cloned(),
            });
        }
    }
    p
}

fn capacity_problems(free: Resources, need: Resources) -> Vec<NodeProblem> {
    let mut p = Vec::new();
    if free.cpu_millis < need.cpu_millis {
        p.push(NodeProblem::InsufficientCpu {
            free_millis: free.cpu_millis,
            need_millis: need.cpu_millis,
        });
    }
    if free.memory_bytes < need.memory_bytes {
        p.push(NodeProblem::InsufficientMemory {
            free_bytes: free.memory_bytes,
            need_bytes: need.memory_bytes,
        });
    }
    if free.pods < need.pods {
        p.push(NodeProblem::TooManyPods {
            free: free.pods,
            need: need.pods,
        });
    }
    p
}

/// kube-scheduler's LeastAllocated score, in millionths: the mean free share of CPU and
/// memory once one more replica is on the node. Higher is emptier.
fn least_allocated_score(alloc: Resources, free: Resources, need: Resources) -> u64 {
    let share = |alloc: u64, free: u64, need: u64| -> u64 {
        if alloc == 0 {
            return 0;
        }
        let after = u128::from(free.saturating_sub(need));
        u64::try_from(after * 1_000_000 / u128::from(alloc)).unwrap_or(1_000_000)
    };
    (share(alloc.cpu_millis, free.cpu_millis, need.cpu_millis)
        + share(alloc.memory_bytes, free.memory_bytes, need.memory_bytes))
        / 2
}

/// Places the replicas and returns the verdict. Pure: the cache, a LIST or a test
/// fixture all end here.
pub fn evaluate<N: Borrow<NodeInfo>, P: Borrow<PodUsage>>(
    nodes: &[N],
    pods: &[P],
    components: &ComponentsState,
    req: &Request,
) -> Result<Verdict, Error> {
    validate(req)?;
    evaluate_with_usage(nodes, &Usage::from_pods(pods), components, req)
}

/// `evaluate` with the pods already summed per node.
pub fn evaluate_with_usage<N: Borrow<NodeInfo>>(
    nodes: &[N],
    usage: &Usage,
    components: &ComponentsState,
    req: &Request,
) -> Result<Verdict, Error> {
    let (factor, need) = validate(req)?;
    let pods_pending = usage.pending;

    let mut reports: Vec<NodeReport> = nodes
        .iter()
        .map(|n| {
            let n = n.borrow();
            let (requested, daemonset_requested) = usage.on(&n.name);
            let free = n.allocatable.saturating_sub(requested);
            let mut problems = filter_problems(n, req);
            let eligible = problems.is_empty();
            problems.extend(capacity_problems(free, need));
            NodeReport {
                name: n.name.clone(),
                eligible,
                allocatable: n.allocatable,
                requested,
                daemonset_requested,
                free,
                fits: if eligible { free.times_fits(need) } else { 0 },
                placed: 0,
                problems,
            }
        })
        .collect();
    reports.sort_by(|a, b| a.name.cmp(&b.name));

    // Replica by replica onto the least allocated node that still fits one; ties go to
    // the first name, so the answer is the same every time.
    let mut heap: BinaryHeap<(u64, std::cmp::Reverse<usize>)> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.fits > 0)
        .map(|(i, r)| {
            (
                least_allocated_score(r.allocatable, r.free, need),
                std::cmp::Reverse(i),
            )
        })
        .collect();
    let mut remaining: Vec<Resources> = reports.iter().map(|r| r.free).collect();
    let mut placed = 0u32;
    while placed < req.replicas {
        let Some((_, std::cmp::Reverse(i))) = heap.pop() else {
            break;
        };
        remaining[i] = remaining[i].saturating_sub(need);
        reports[i].placed += 1;
        placed += 1;
        if remaining[i].times_fits(need) > 0 {
            let score = least_allocated_score(reports[i].allocatable, remaining[i], need);
            heap.push((score, std::cmp::Reverse(i)));
        }
    }

    let components = components_report(components, req.purpose);
    let mut v = Verdict {
        pass: false,
        purpose: req.purpose,
        factor,
        replicas: req.replicas,
        per_replica: Resources::new(req.cpu_millis, req.memory_bytes, 1),
        per_replica_scaled: need,
        placed,
        nodes: reports,
        pods_pending,
        components,
        failures: Vec::new(),
        next_steps: Vec::new(),
    };
    explain(&mut v, req);
    v.pass = v.failures.is_empty();
    Ok(v)
}

fn components_report(state: &ComponentsState, purpose: Purpose) -> ComponentsReport {
    let required = purpose != Purpose::Rebuild;
    match state {
        ComponentsState::NotChecked => ComponentsReport {
            state: "not_checked",
            selector: None,
            deployments: Vec::new(),
            required: false,
        },
        ComponentsState::Observed {
            selector,
            deployments,
        } => {
            let mut deployments = deployments.clone();
            deployments.sort_by(|a, b| a.name.cmp(&b.name));
            let state = if deployments.is_empty() {
                "not_installed"
            } else if deployments.iter().all(ComponentInfo::is_ready) {
                "ready"
            } else {
                "not_ready"
            };
            ComponentsReport {
                state,
                selector: Some(selector.clone()),
                deployments,
                required,
            }
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn profile_hint(req: &Request) -> String {
    match &req.profile {
        Some(p) => format!(" in [Profile.{p}]"),
        None => " in the app's profile".to_string(),
    }
}

/// Fills failures and next steps.
fn explain(v: &mut Verdict, req: &Request) {
    let need = v.per_replica_scaled;
    let per = v.per_replica;
    let f = v.factor;
    if v.nodes.is_empty() {
        v.failures.push(Failure {
            reason: "no_nodes",
            message: "the cluster has no nodes".into(),
        });
        v.next_steps.push(
            "add a node (or check that the cluster's node pool exists and has joined)".into(),
        );
    } else if v.placed < v.replicas {
        let eligible: Vec<&NodeReport> = v.nodes.iter().filter(|n| n.eligible).collect();
        if eligible.is_empty() {
            let mut counts: Vec<(&'static str, Vec<&str>)> = Vec::new();
            for n in &v.nodes {
                for p in n.problems.iter().filter(|p| !p.is_capacity()) {
                    match counts.iter_mut().find(|(r, _)| *r == p.reason()) {
                        Some((_, names)) => names.push(&n.name),
                        None => counts.push((p.reason(), vec![&n.name])),
                    }
                }
            }
            let summary: Vec<String> = counts
                .iter()
                .map(|(r, names)| format!("{} {r}", names.len()))
                .collect();
            v.failures.push(Failure {
                reason: "no_eligible_nodes",
                message: format!(
                    "none of the {} can take the app's pods ({})",
                    plural(v.nodes.len() as u64, "node", "nodes"),
                    summary.join(", ")
                ),
            });
            for (reason, names) in &counts {
                let first = names.first().copied().unwrap_or("NODE");
                let step = match *reason {
                    "not_ready" => format!(
                        "bring the NotReady nodes back (kubectl describe node {first}) or add a node"
                    ),
                    "cordoned" => format!(
                        "uncordon a node when its maintenance is over (kubectl uncordon {first}) or add a node"
                    ),
                    "memory_pressure" | "disk_pressure" | "pid_pressure" => format!(
                        "relieve the {} on {first} or add a node",
                        reason.replace('_', " ")
                    ),
                    "network_unavailable" => format!("fix the network plugin on {first}"),
                    "untolerated_taint" => {
                        "add a node without that taint, or a matching toleration to the app"
                            .to_string()
                    }
                    "node_selector_mismatch" => {
                        let sel: Vec<String> = req
                            .node_selector
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        format!(
                            "label a node with {} (kubectl label node NAME {}) or change the app's node selector",
                            sel.join(","),
                            sel.join(" ")
                        )
                    }
                    _ => continue,
                };
                v.next_steps.push(step);
            }
        } else {
            let best_cpu = eligible
                .iter()
                .map(|n| n.free.cpu_millis)
                .max()
                .unwrap_or(0);
            let best_mem = eligible
                .iter()
                .map(|n| n.free.memory_bytes)
                .max()
                .unwrap_or(0);
            let best_pods = eligible.iter().map(|n| n.free.pods).max().unwrap_or(0);
            let missing = v.replicas - v.placed;
            v.failures.push(Failure {
                reason: "insufficient_capacity",
                message: format!(
                    "{} of {} fit with {f}x headroom (each placed as {} CPU, {} memory) on {} eligible {}",
                    v.placed,
                    plural(u64::from(v.replicas), "replica", "replicas"),
                    Cpu(need.cpu_millis),
                    Mem(need.memory_bytes),
                    eligible.len(),
                    if eligible.len() == 1 { "node" } else { "nodes" },
                ),
            });
            let hint = profile_hint(req);
            if need.cpu_millis > best_cpu {
                v.next_steps.push(format!(
                    "needs {f} x {} CPU per replica; the largest free node has {}: add a node or lower CPU{hint}",
                    Cpu(per.cpu_millis),
                    Cpu(best_cpu)
                ));
            }
            if need.memory_bytes > best_mem {
                v.next_steps.push(format!(
                    "needs {f} x {} memory per replica; the largest free node has {}: add a node or lower memory{hint}",
                    Mem(per.memory_bytes),
                    Mem(best_mem)
                ));
            }
            if need.pods > best_pods {
                v.next_steps.push(format!(
                    "every eligible node is at its pod limit (at most {best_pods} more pods): add a node"
                ));
            }
            if v.next_steps.is_empty() {
                v.next_steps.push(format!(
                    "{} fit; add room for {} more (a node with at least {} CPU and {} memory free) or lower replicas or requests{hint}",
                    plural(u64::from(v.placed), "replica", "replicas"),
                    missing,
                    Cpu(need.cpu_millis),
                    Mem(need.memory_bytes),
                ));
            }
        }
    }

    let c = &v.components;
    let sel = c
        .selector
        .as_ref()
        .map(|s| {
            format!(
                "Deployments labelled {} in namespace {}",
                s.label_selector, s.namespace
            )
        })
        .unwrap_or_default();
    let (reason, message, step) = match c.state {
        "not_installed" => (
            "components_not_installed",
            format!("loco's components are not installed: no {sel}"),
            "install loco's chart (helm install loco charts/loco), or point --components-namespace/--components-selector at where it runs".to_string(),
        ),
        "not_ready" => {
            let bad: Vec<String> = c
                .deployments
                .iter()
                .filter(|d| !d.is_ready())
                .map(|d| format!("{} ({}/{} ready)", d.name, d.ready.min(d.available), d.desired))
                .collect();
            let first = c.deployments.iter().find(|d| !d.is_ready());
            (
                "components_not_ready",
                format!("loco's components are not ready: {}", bad.join(", ")),
                match first {
                    Some(d) => format!(
                        "look at why (kubectl -n {} describe deployment {}) and wait for it to become ready",
                        d.namespace, d.name
                    ),
                    None => String::new(),
                },
            )
        }
        _ => return,
    };
    if c.required {
        v.failures.push(Failure { reason, message });
        v.next_steps.push(step);
    } else {
        v.next_steps.push(format!(
            "warning (not blocking a rebuild): {message}; {step}"
        ));
    }
}

#[cfg(test)]
mod tests;
