//! Kubernetes objects -> the plain data of `model`. Pure; tested from literals.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::model::{
    ComponentInfo, ConditionStatus, NodeInfo, PodUsage, Purpose, Request, Resources, Rollout,
    Taint, TaintEffect, Toleration, TolerationOperator,
};
use crate::quantity;

type QuantityMap = BTreeMap<String, K8sQuantity>;

/// cpu/memory of a quantity map; unreadable or absent entries count as zero (the API
/// server validated them, so this only happens with hand-made data).
fn cpu_mem(map: Option<&QuantityMap>) -> (Option<u64>, Option<u64>) {
    let Some(map) = map else {
        return (None, None);
    };
    let cpu = map
        .get("cpu")
        .map(|q| quantity::cpu_millis(&q.0).unwrap_or(0));
    let mem = map
        .get("memory")
        .map(|q| quantity::bytes(&q.0).unwrap_or(0));
    (cpu, mem)
}

/// A container's requests; a resource with only a limit requests that limit (the API
/// server's defaulting for pods, applied here so unsaved templates count the same).
fn container_requests(resources: Option<&ResourceRequirements>) -> Resources {
    let Some(r) = resources else {
        return Resources::default();
    };
    let (rc, rm) = cpu_mem(r.requests.as_ref());
    let (lc, lm) = cpu_mem(r.limits.as_ref());
    Resources::new(rc.or(lc).unwrap_or(0), rm.or(lm).unwrap_or(0), 0)
}

fn requests_of(c: &Container) -> Resources {
    container_requests(c.resources.as_ref())
}

/// What one pod of this spec takes from a node, as kube-scheduler's
/// `computePodResourceRequest` counts it: regular containers plus sidecars (init
/// containers with `restartPolicy: Always`) summed, at least the largest init step,
/// pod-level requests winning when set, plus the RuntimeClass overhead; one pod slot.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut sum = spec
        .containers
        .iter()
        .map(requests_of)
        .fold(Resources::default(), Resources::saturating_add);
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for ic in spec.init_containers.iter().flatten() {
        let r = requests_of(ic);
        let step = if ic.restart_policy.as_deref() == Some("Always") {
            sum = sum.saturating_add(r);
            sidecars = sidecars.saturating_add(r);
            sidecars
        } else {
            sidecars.saturating_add(r)
        };
        init_peak = init_peak.max(step);
    }
    let mut total = sum.max(init_peak);
    if let Some(pod_level) = spec.resources.as_ref() {
        let (cpu, mem) = cpu_mem(pod_level.requests.as_ref());
        if let Some(cpu) = cpu {
            total.cpu_millis = cpu;
        }
        if let Some(mem) = mem {
            total.memory_bytes = mem;
        }
    }
    let (oc, om) = cpu_mem(spec.overhead.as_ref());
    total = total.saturating_add(Resources::new(oc.unwrap_or(0), om.unwrap_or(0), 0));
    total.pods = 1;
    total
}

pub fn toleration(t: &k8s_openapi::api::core::v1::Toleration) -> Toleration {
    Toleration {
        key: t.key.clone().filter(|k| !k.is_empty()),
        operator: match t.operator.as_deref() {
            Some("Exists") => TolerationOperator::Exists,
            Some("Lt") => TolerationOperator::Lt,
            Some("Gt") => TolerationOperator::Gt,
            _ => TolerationOperator::Equal,
        },
        value: t.value.clone(),
        effect: t
            .effect
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(TaintEffect::parse),
    }
}

pub fn node_info(node: &Node) -> NodeInfo {
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    let cond = |kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
            .map(|c| ConditionStatus::parse(&c.status))
    };
    let alloc = status.and_then(|s| s.allocatable.as_ref());
    let (cpu, mem) = cpu_mem(alloc);
    let pods = alloc
        .and_then(|a| a.get("pods"))
        .and_then(|q| quantity::bytes(&q.0).ok())
        .unwrap_or(0);
    NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .map(|ts| {
                ts.iter()
                    .map(|t| Taint {
                        key: t.key.clone(),
                        value: t.value.clone().filter(|v| !v.is_empty()),
                        effect: TaintEffect::parse(&t.effect),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        ready: cond("Ready").unwrap_or_default(),
        memory_pressure: cond("MemoryPressure") == Some(ConditionStatus::True),
        disk_pressure: cond("DiskPressure") == Some(ConditionStatus::True),
        pid_pressure: cond("PIDPressure") == Some(ConditionStatus::True),
        network_unavailable: cond("NetworkUnavailable") == Some(ConditionStatus::True),
        allocatable: Resources::new(cpu.unwrap_or(0), mem.unwrap_or(0), pods),
    }
}

pub fn pod_usage(pod: &Pod) -> PodUsage {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let spec = pod.spec.as_ref();
    PodUsage {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        requests: spec.map(pod_requests).unwrap_or_default(),
        daemonset: pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet" && o.controller == Some(true)),
        terminated: matches!(phase, Some("Succeeded" | "Failed")),
    }
}

pub fn component_info(d: &Deployment) -> ComponentInfo {
    let status = d.status.as_ref();
    let n = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    ComponentInfo {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        name: d.metadata.name.clone().unwrap_or_default(),
        // An unset replicas field means 1 (the API server's default).
        desired: n(Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
        ready: n(status.and_then(|s| s.ready_replicas)),
        available: n(status.and_then(|s| s.available_replicas)),
    }
}

impl Request {
    /// The request for a rendered Deployment: its pod template's requests, replicas,
    /// node selector and tolerations. Pass the HPA maximum as `max_replicas` when the
    /// app autoscales (the Deployment then carries no replicas).
    pub fn for_deployment(d: &Deployment, purpose: Purpose, max_replicas: Option<u32>) -> Request {
        let spec = d.spec.as_ref();
        let pod = spec.and_then(|s| s.template.spec.as_ref());
        let per_replica = pod.map(pod_requests).unwrap_or_default();
        let replicas = max_replicas.unwrap_or_else(|| {
            u32::try_from(spec.and_then(|s| s.replicas).unwrap_or(1)).unwrap_or(0)
        });
        let mut req = Request::new(
            purpose,
            per_replica.cpu_millis,
            per_replica.memory_bytes,
            replicas,
        );
        if let Some(pod) = pod {
            req.node_selector = pod.node_selector.clone().unwrap_or_default();
            req.tolerations = pod.tolerations.iter().flatten().map(toleration).collect();
        }
        req
    }
}

/// A maxSurge/maxUnavailable value as a pod count of `desired`, as the Deployment
/// controller resolves it: percentages round up for the surge, down for unavailability;
/// an unset value is 25%.
fn scaled(v: Option<&IntOrString>, desired: u32, round_up: bool) -> u32 {
    let percent = match v {
        Some(IntOrString::Int(n)) => return u32::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(25),
        None => 25,
    };
    let n = u64::from(desired) * percent;
    let n = if round_up { n.div_ceil(100) } else { n / 100 };
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Rollout {
    /// How `d` (the Deployment as it will be applied) replaces the app's pods, for
    /// `replicas` new pods: its strategy's surge and unavailability as pod counts
    /// (`Recreate` stops every old pod first: no surge). The namespace is the
    /// Deployment's.
    pub fn for_deployment(d: &Deployment, replaces_pods: bool, replicas: u32) -> Rollout {
        let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
        let (max_surge, max_unavailable) = if strategy.and_then(|s| s.type_.as_deref())
            == Some("Recreate")
        {
            (0, replicas)
        } else {
            let ru = strategy.and_then(|s| s.rolling_update.as_ref());
            let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), replicas, true);
            let unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), replicas, false);
            // Kubernetes never lets both be zero: the rollout could not progress.
            if surge == 0 && unavailable == 0 {
                (0, 1)
            } else {
                (surge, unavailable)
            }
        };
        Rollout {
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            replaces_pods,
            max_surge,
            max_unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rolling_update_counts_resolve_like_the_deployment_controller() {
        let d = |strategy: serde_json::Value| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "app", "namespace": "wks-1-app-2"},
                "spec": {"selector": {}, "template": {}, "strategy": strategy}
            }))
            .unwrap()
        };
        let counts = |s: serde_json::Value, n: u32| {
            let r = Rollout::for_deployment(&d(s), true, n);
            (r.max_surge, r.max_unavailable)
        };
        // What render writes.
        let loco =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
        assert_eq!(counts(loco.clone(), 10), (1, 0));
        assert_eq!(
            Rollout::for_deployment(&d(loco), false, 3).namespace,
            "wks-1-app-2"
        );
        // Kubernetes' defaults (25% / 25%): the surge rounds up, unavailability down.
        assert_eq!(counts(json!({}), 10), (3, 2));
        assert_eq!(counts(json!({}), 1), (1, 0));
        assert_eq!(
            counts(
                json!({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "10%"}}),
                5
            ),
            (3, 0)
        );
        // Both zero is not a rollout that progresses: one may be unavailable.
        assert_eq!(
            counts(
                json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
                4
            ),
            (0, 1)
        );
        assert_eq!(counts(json!({"type": "Recreate"}), 4), (0, 4));
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn containers_sum_and_init_takes_the_max() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {
                "nodeName": "a",
                "initContainers": [
                    {"name": "migrate", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}
                ],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}}
                ]
            }
        }));
        let u = pod_usage(&p);
        assert_eq!(u.node_name.as_deref(), Some("a"));
        assert_eq!(u.requests, Resources::new(2000, 256 << 20, 1));
    }

    #[test]
    fn sidecars_add_to_containers_and_overhead_is_added() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [
                    {"name": "proxy", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}},
                    {"name": "init", "resources": {"requests": {"cpu": "300m"}}}
                ],
                "containers": [
                    {"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
                ],
                "overhead": {"cpu": "10m", "memory": "1Mi"}
            }
        }));
        // Sidecar + app = 200m/96Mi; init step = sidecar + init = 400m; max = 400m/96Mi.
        assert_eq!(
            pod_usage(&p).requests,
            Resources::new(410, (96 << 20) + (1 << 20), 1)
        );
    }

    #[test]
    fn limits_stand_in_for_missing_requests_and_pod_level_wins() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
                "resources": {"requests": {"memory": "2Gi"}}
            }
        }));
        assert_eq!(pod_usage(&p).requests, Resources::new(1000, 2 << 30, 1));
    }

    #[test]
    fn daemonset_and_terminated_are_recognised() {
        let p = pod(json!({
            "metadata": {"name": "ds-x", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "1", "controller": true}
            ]},
            "spec": {"nodeName": "", "containers": []},
            "status": {"phase": "Succeeded"}
        }));
        let u = pod_usage(&p);
        assert!(u.daemonset && u.terminated);
        assert_eq!(u.node_name, None, "empty nodeName means unscheduled");
    }

    #[test]
    fn node_from_json() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"pool": "a"}},
            "spec": {"unschedulable": true, "taints": [
                {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                {"key": "soft", "effect": "PreferNoSchedule"}
            ]},
            "status": {
                "allocatable": {"cpu": "3920m", "memory": "16Gi", "pods": "110"},
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "DiskPressure", "status": "True"},
                    {"type": "MemoryPressure", "status": "False"}
                ]
            }
        }))
        .unwrap();
        let i = node_info(&n);
        assert_eq!(i.allocatable, Resources::new(3920, 16 << 30, 110));
        assert!(i.unschedulable && i.disk_pressure && !i.memory_pressure && !i.pid_pressure);
        assert_eq!(i.ready, ConditionStatus::False);
        assert_eq!(
            i.taints[0],
            Taint::new("dedicated", Some("db"), TaintEffect::NoSchedule)
        );
        assert_eq!(i.taints[1].effect, TaintEffect::PreferNoSchedule);
        assert_eq!(node_info(&Node::default()).ready, ConditionStatus::Unknown);
    }

    #[test]
    fn request_for_deployment() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {},
                "template": {"spec": {
                    "nodeSelector": {"pool": "apps"},
                    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]
                }}
            }
        }))
        .unwrap();
        let r = Request::for_deployment(&d, Purpose::Deploy, None);
        assert_eq!(
            (r.cpu_millis, r.memory_bytes, r.replicas),
            (500, 256 << 20, 3)
        );
        assert_eq!(
            r.node_selector.get("pool").map(String::as_str),
            Some("apps")
        );
        assert!(r.tolerations[0].tolerates(&Taint::new(
            "dedicated",
            Some("x"),
            TaintEffect::NoSchedule
        )));
        assert_eq!(
            Request::for_deployment(&d, Purpose::Wake, Some(10)).replicas,
            10
        );
    }

    #[test]
    fn component_readiness() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "loco-api", "namespace": "loco-system"},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1, "availableReplicas": 1}
        }))
        .unwrap();
        let c = component_info(&d);
        assert_eq!((c.desired, c.ready, c.available), (2, 1, 1));
        assert!(!c.is_ready());
    }
}
