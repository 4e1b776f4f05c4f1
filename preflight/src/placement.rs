//! The check itself: pure functions from plain data to a `Verdict`.
//!
//! A cluster-wide sum of free resources is the wrong question (it passes when no single
//! node can take a pod), so each replica, scaled by the factor, is placed on a node the
//! way kube-scheduler's filters would allow it (Ready, schedulable, no pressure, taints
//! tolerated, node selector matched, fits in allocatable minus the requests of the pods
//! already bound there) and, among those, on the least allocated one (the scheduler's
//! default score), one replica at a time.
//!
//! A change to an app that runs already (a [`Rollout`]) asks only for what it adds: the
//! new pods minus the app's pods the rollout frees. Its running pods stay counted as
//! taken (they are, until the rollout replaces them); the pods placed with the factor
//! are only those beyond them: the surge of a rolling update, the extra pods of a
//! scale-up. When the new pods are larger than the ones they replace, the difference,
//! times the factor, must also fit in the room the old pods free plus the free room.

use std::borrow::Borrow;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::error::Error;
use crate::model::{
    ComponentInfo, ComponentSelector, ComponentsState, ConditionStatus, NodeInfo, PodUsage,
    Purpose, Request, Resources, Rollout, Taint, TaintEffect,
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

/// What a change to a running app adds, and how that was worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeReport {
    /// The app's namespace.
    pub namespace: String,
    /// The app's live pods bound to a node: the room the rollout frees.
    pub running: u32,
    /// The app's live pods no node took yet: they free nothing.
    pub pending: u32,
    /// The pods the app runs after the change.
    pub new_pods: u32,
    /// A rolling update replaces every pod (the template changes).
    pub replaces_pods: bool,
    pub max_surge: u32,
    pub max_unavailable: u32,
    /// New pods beyond those the rollout frees: what is placed with the factor.
    pub adds: u32,
    /// A new pod is larger than an app pod it replaces, so the room the old pods free
    /// must be checked too (the difference times the factor, node by node).
    pub larger_pods: bool,
    /// Of the new pods, how many fit in the room the old pods free plus the free room
    /// (`new_pods` when none is larger).
    pub replaced_fit: u32,
}

impl ChangeReport {
    /// What `rollout` adds for `new` pods of `per_pod`, given the app's live pods.
    fn new(rollout: &Rollout, app_pods: &[PodUsage], new: u32, per_pod: Resources) -> Self {
        let bound: Vec<&PodUsage> = app_pods
            .iter()
            .filter(|p| !p.terminated && p.node_name.is_some())
            .collect();
        let running = u32::try_from(bound.len()).unwrap_or(u32::MAX);
        let pending = u32::try_from(
            app_pods
                .iter()
                .filter(|p| !p.terminated && p.node_name.is_none())
                .count(),
        )
        .unwrap_or(u32::MAX);
        // At a rollout's peak the Deployment runs at most new + maxSurge pods, and never
        // more new ones than `new`: what exceeds the running pods is what it adds. A
        // change of the count only adds the difference (a scale-down adds nothing).
        let adds = if rollout.replaces_pods {
            new.saturating_add(rollout.max_surge)
                .saturating_sub(running)
                .min(new)
        } else {
            new.saturating_sub(running)
        };
        let larger_pods = rollout.replaces_pods
            && bound.iter().any(|p| {
                per_pod.cpu_millis > p.requests.cpu_millis
                    || per_pod.memory_bytes > p.requests.memory_bytes
            });
        ChangeReport {
            namespace: rollout.namespace.clone(),
            running,
            pending,
            new_pods: new,
            replaces_pods: rollout.replaces_pods,
            max_surge: rollout.max_surge,
            max_unavailable: rollout.max_unavailable,
            adds,
            larger_pods,
            replaced_fit: new,
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub pass: bool,
    pub purpose: Purpose,
    pub factor: f64,
    /// The pods placed with the factor: every replica, or with a rollout only the pods
    /// the change adds ([`ChangeReport::adds`]).
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
    /// Set when the request named a rollout: what the change adds to the running app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeReport>,
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
    let app_pods: Vec<PodUsage> = match &req.rollout {
        Some(r) => pods
            .iter()
            .map(Borrow::borrow)
            .filter(|p| p.namespace == r.namespace && !p.terminated)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    evaluate_with_usage(nodes, &Usage::from_pods(pods), &app_pods, components, req)
}

/// `evaluate` with the pods already summed per node; `app_pods` are the live pods of
/// the request's rollout namespace (ignored without a rollout).
pub fn evaluate_with_usage<N: Borrow<NodeInfo>>(
    nodes: &[N],
    usage: &Usage,
    app_pods: &[PodUsage],
    components: &ComponentsState,
    req: &Request,
) -> Result<Verdict, Error> {
    let (factor, need) = validate(req)?;
    let pods_pending = usage.pending;
    let per_pod = Resources::new(req.cpu_millis, req.memory_bytes, 1);
    let mut change = req
        .rollout
        .as_ref()
        .map(|r| ChangeReport::new(r, app_pods, req.replicas, per_pod));
    let to_place = change.as_ref().map_or(req.replicas, |c| c.adds);

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
    while placed < to_place {
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

    if let Some(c) = change.as_mut().filter(|c| c.larger_pods) {
        c.replaced_fit = fit_in_freed_room(&reports, app_pods, c.new_pods, factor, need);
    }

    let components = components_report(components, req.purpose);
    let mut v = Verdict {
        pass: false,
        purpose: req.purpose,
        factor,
        replicas: to_place,
        per_replica: per_pod,
        per_replica_scaled: need,
        placed,
        nodes: reports,
        pods_pending,
        components,
        change,
        failures: Vec::new(),
        next_steps: Vec::new(),
    };
    explain(&mut v, req);
    v.pass = v.failures.is_empty();
    Ok(v)
}

/// How many of `new` pods (each `need`, the factor applied) fit on the eligible nodes
/// once the app's old pods are gone, their room counted times the factor too: the
/// difference between a new and an old pod, times the factor, must fit in what is
/// free. Replica by replica onto the node with the most room left, as above.
fn fit_in_freed_room(
    reports: &[NodeReport],
    app_pods: &[PodUsage],
    new: u32,
    factor: f64,
    need: Resources,
) -> u32 {
    let mut room: Vec<Resources> = reports
        .iter()
        .map(|r| {
            let freed = app_pods
                .iter()
                .filter(|p| !p.terminated && p.node_name.as_deref() == Some(r.name.as_str()))
                .fold(Resources::default(), |a, p| a.saturating_add(p.requests));
            r.free.saturating_add(Resources::new(
                scale(freed.cpu_millis, factor),
                scale(freed.memory_bytes, factor),
                scale(freed.pods, factor),
            ))
        })
        .collect();
    let mut heap: BinaryHeap<(u64, std::cmp::Reverse<usize>)> = reports
        .iter()
        .enumerate()
        .filter(|(i, r)| r.eligible && room[*i].times_fits(need) > 0)
        .map(|(i, r)| {
            (
                least_allocated_score(r.allocatable, room[i], need),
                std::cmp::Reverse(i),
            )
        })
        .collect();
    let mut fit = 0u32;
    while fit < new {
        let Some((_, std::cmp::Reverse(i))) = heap.pop() else {
            break;
        };
        room[i] = room[i].saturating_sub(need);
        fit += 1;
        if room[i].times_fits(need) > 0 {
            let score = least_allocated_score(reports[i].allocatable, room[i], need);
            heap.push((score, std::cmp::Reverse(i)));
        }
    }
    fit
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

/// "a rolling update of 5 running pods to 5, 1 beyond the count at a time" and the like.
fn change_words(c: &ChangeReport) -> String {
    let running = plural(u64::from(c.running), "running pod", "running pods");
    if c.replaces_pods {
        format!(
            "a rolling update of {running} to {}, {} beyond the count at a time",
            c.new_pods, c.max_surge
        )
    } else {
        format!("{running}, {} wanted", c.new_pods)
    }
}

fn old_pod_words(c: &ChangeReport) -> String {
    plural(u64::from(c.running), "running pod", "running pods")
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
    // A change that adds no pod (a scale-down, a rollback to smaller pods) cannot
    // overload anything: it passes whatever the nodes look like.
    let adds_nothing = v
        .change
        .as_ref()
        .is_some_and(|c| c.adds == 0 && !c.larger_pods);
    if v.nodes.is_empty() && !adds_nothing {
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
            let asked = match &v.change {
                None => plural(u64::from(v.replicas), "replica", "replicas"),
                Some(c) => format!(
                    "the {} the change adds ({})",
                    plural(u64::from(v.replicas), "pod", "pods"),
                    change_words(c)
                ),
            };
            v.failures.push(Failure {
                reason: "insufficient_capacity",
                message: format!(
                    "{} of {asked} fit with {f}x headroom (each placed as {} CPU, {} memory) on {} eligible {}",
                    v.placed,
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

    if let Some(c) = v.change.as_ref().filter(|c| c.replaced_fit < c.new_pods) {
        let old = old_pod_words(c);
        v.failures.push(Failure {
            reason: "insufficient_capacity",
            message: format!(
                "the new pods ({} CPU, {} memory each) are larger than the app's {old}: {} of {} fit in the room the old pods free plus the free room, with {f}x headroom on the difference",
                Cpu(per.cpu_millis),
                Mem(per.memory_bytes),
                c.replaced_fit,
                c.new_pods,
            ),
        });
        v.next_steps.push(format!(
            "add a node, or keep the pods' CPU and memory at what they run with now{}",
            profile_hint(req)
        ));
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
    if c.required && !adds_nothing {
        v.failures.push(Failure { reason, message });
        v.next_steps.push(step);
    } else if adds_nothing {
        v.next_steps.push(format!(
            "warning (not blocking a change that adds no pods): {message}; {step}"
        ));
    } else {
        v.next_steps.push(format!(
            "warning (not blocking a rebuild): {message}; {step}"
        ));
    }
}

#[cfg(test)]
mod tests;
