//! Plain data the check works on: what is asked for, and what the cluster looks like.
//! No I/O here; `convert` turns Kubernetes objects into these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Amounts of the resources the scheduler's fit check counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
}

impl Resources {
    pub const fn new(cpu_millis: u64, memory_bytes: u64, pods: u64) -> Self {
        Resources {
            cpu_millis,
            memory_bytes,
            pods,
        }
    }

    pub fn saturating_add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            pods: self.pods.saturating_add(o.pods),
        }
    }

    pub fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
            pods: self.pods.saturating_sub(o.pods),
        }
    }

    /// Per resource maximum (how the scheduler combines init containers with the rest).
    pub fn max(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            pods: self.pods.max(o.pods),
        }
    }

    /// How many times `need` fits into `self` (u64::MAX when `need` is all zero).
    pub fn times_fits(self, need: Resources) -> u64 {
        let per = |free: u64, need: u64| free.checked_div(need).unwrap_or(u64::MAX);
        per(self.cpu_millis, need.cpu_millis)
            .min(per(self.memory_bytes, need.memory_bytes))
            .min(per(self.pods, need.pods))
    }
}

/// What the check is for; it decides the default headroom factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A deploy: room for twice the request, as the seeds ask.
    Deploy,
    /// Waking a sleeping app: same headroom as a deploy.
    Wake,
    /// A disaster rebuild: exactly the request, so the gate never blocks recovery.
    Rebuild,
}

impl Purpose {
    pub fn default_factor(self) -> f64 {
        match self {
            Purpose::Deploy | Purpose::Wake => 2.0,
            Purpose::Rebuild => 1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Deploy => "deploy",
            Purpose::Wake => "wake",
            Purpose::Rebuild => "rebuild",
        }
    }
}

/// The question: can the cluster hold `replicas` pods of this size, times the factor?
/// With a [`Rollout`], only what the change adds to the app's running pods is asked for.
///
/// Plain data so loco's render can produce it (see `Request::for_deployment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub purpose: Purpose,
    /// Overrides the purpose's factor (2 for deploy and wake, 1 for rebuild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// CPU request of one replica, in millicores (pod total, as the scheduler counts it).
    pub cpu_millis: u64,
    /// Memory request of one replica, in bytes.
    pub memory_bytes: u64,
    /// The most replicas the app may run (the HPA maximum when it autoscales).
    pub replicas: u32,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// The loco.toml profile the request comes from, so the next step can name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The app runs already: how its pods are replaced. `None` asks for every replica (a
    /// first deploy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// How a change reaches an app whose pods may run already, so the check asks only for
/// what it adds: the new pods minus the app's pods that the rollout frees, times the
/// factor. A scale-down, and a rollback to a smaller revision, add nothing; a rolling
/// update on a full cluster is judged by its surge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The namespace of the app's pods (loco runs one app per namespace): the live,
    /// bound pods there are the ones the change replaces or keeps.
    pub namespace: String,
    /// The pod template changes, so the Deployment replaces every pod by a rolling
    /// update. False when only the count changes: the running pods stay (or some go).
    pub replaces_pods: bool,
    /// The Deployment's rolling update as pod counts (resolved against the new replica
    /// count as Kubernetes does). render writes maxSurge 1, maxUnavailable 0.
    pub max_surge: u32,
    pub max_unavailable: u32,
}

impl Request {
    pub fn new(purpose: Purpose, cpu_millis: u64, memory_bytes: u64, replicas: u32) -> Self {
        Request {
            purpose,
            factor: None,
            cpu_millis,
            memory_bytes,
            replicas,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            profile: None,
            rollout: None,
        }
    }

    pub fn factor(&self) -> f64 {
        self.factor.unwrap_or_else(|| self.purpose.default_factor())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
    /// An effect this version does not know; it does not block placement.
    #[serde(other)]
    Unknown,
}

impl TaintEffect {
    pub fn parse(s: &str) -> TaintEffect {
        match s {
            "NoSchedule" => TaintEffect::NoSchedule,
            "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
            "NoExecute" => TaintEffect::NoExecute,
            _ => TaintEffect::Unknown,
        }
    }

    /// Only these keep a pod off a node; PreferNoSchedule is a scoring hint.
    pub fn blocks_placement(self) -> bool {
        matches!(self, TaintEffect::NoSchedule | TaintEffect::NoExecute)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: TaintEffect,
}

impl Taint {
    pub fn new(key: &str, value: Option<&str>, effect: TaintEffect) -> Self {
        Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TolerationOperator {
    #[default]
    Equal,
    Exists,
    /// Numeric comparisons (Kubernetes 1.35+): the taint's value is less/greater.
    Lt,
    Gt,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toleration {
    /// Empty with `Exists` tolerates every taint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub operator: TolerationOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Empty tolerates every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// The same rule as Kubernetes' `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(effect) = self.effect
            && effect != taint.effect
        {
            return false;
        }
        let key = self.key.as_deref().unwrap_or("");
        if !key.is_empty() && key != taint.key {
            return false;
        }
        let want = self.value.as_deref().unwrap_or("");
        let have = taint.value.as_deref().unwrap_or("");
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => want == have,
            TolerationOperator::Lt | TolerationOperator::Gt => {
                let (Ok(want), Ok(have)) = (want.parse::<i64>(), have.parse::<i64>()) else {
                    return false;
                };
                if self.operator == TolerationOperator::Lt {
                    have < want
                } else {
                    have > want
                }
            }
        }
    }
}

/// The status of a node condition; a missing condition counts as Unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

impl ConditionStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }
}

/// One node as the check needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`).
    #[serde(default)]
    pub unschedulable: bool,
    pub ready: ConditionStatus,
    #[serde(default)]
    pub memory_pressure: bool,
    #[serde(default)]
    pub disk_pressure: bool,
    #[serde(default)]
    pub pid_pressure: bool,
    #[serde(default)]
    pub network_unavailable: bool,
    /// `status.allocatable`; a missing entry is zero, as the scheduler counts it.
    pub allocatable: Resources,
}

impl NodeInfo {
    /// A Ready, schedulable node without taints: the usual start of a test fixture.
    pub fn ready(name: &str, cpu_millis: u64, memory_bytes: u64, pods: u64) -> Self {
        NodeInfo {
            name: name.to_string(),
            ready: ConditionStatus::True,
            allocatable: Resources::new(cpu_millis, memory_bytes, pods),
            ..NodeInfo::default()
        }
    }
}

/// What one existing pod takes from its node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    /// None while the pod waits for the scheduler: it takes nothing yet.
    pub node_name: Option<String>,
    /// The scheduler's view: max(init, sum(containers)) + overhead, and one pod slot.
    pub requests: Resources,
    /// Owned by a DaemonSet (reported apart: that overhead is on every node).
    #[serde(default)]
    pub daemonset: bool,
    /// Succeeded or Failed: holds no resources any more.
    #[serde(default)]
    pub terminated: bool,
}

impl PodUsage {
    pub fn on(node: &str, name: &str, cpu_millis: u64, memory_bytes: u64) -> Self {
        PodUsage {
            namespace: "default".to_string(),
            name: name.to_string(),
            node_name: Some(node.to_string()),
            requests: Resources::new(cpu_millis, memory_bytes, 1),
            daemonset: false,
            terminated: false,
        }
    }
}

/// One of loco's own Deployments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub namespace: String,
    pub name: String,
    pub desired: u32,
    pub ready: u32,
    pub available: u32,
}

impl ComponentInfo {
    pub fn is_ready(&self) -> bool {
        self.desired > 0 && self.ready >= self.desired && self.available >= self.desired
    }
}

/// Where loco's components live; configurable because installs differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSelector {
    pub namespace: String,
    /// A label selector (`k=v,k2=v2`) for loco's Deployments.
    pub label_selector: String,
}

impl Default for ComponentSelector {
    fn default() -> Self {
        ComponentSelector {
            namespace: "loco-system".to_string(),
            label_selector: "app.kubernetes.io/part-of=loco".to_string(),
        }
    }
}

/// What was observed of loco's components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentsState {
    /// The caller turned the component check off.
    NotChecked,
    Observed {
        selector: ComponentSelector,
        deployments: Vec<ComponentInfo>,
    },
}
