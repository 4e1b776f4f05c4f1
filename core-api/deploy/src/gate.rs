//! The preflight gate in front of every apply that adds pods (deploy, wake, rebuild):
//! nodes Ready and the request times a factor placed replica by replica (loco-preflight).
//!
//! [`GateSource`] hands out one gate per cluster. The API and the daemons use
//! [`CachedGates`] (watch-based: a check reads memory, no LIST); one-shot tools may use
//! [`ListGates`]; tests of callers put a `FixedGate` behind [`StaticGate`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use loco_preflight::{Cache, CapacityGate, ComponentSelector, ListGate, Purpose, Request, Verdict};

use loco_render::{Object, Rendered};

/// Gives the gate of a cluster, given its client.
pub trait GateSource: Send + Sync {
    fn gate(&self, cluster_id: i64, client: &kube::Client) -> Arc<dyn CapacityGate>;

    /// Drops what is kept for a cluster (its credentials changed); nothing by default.
    fn forget(&self, _cluster_id: i64) {}
}

/// One watch-based cache per cluster, started on first use and kept.
#[derive(Default)]
pub struct CachedGates {
    components: Option<ComponentSelector>,
    caches: Mutex<HashMap<i64, Arc<Cache>>>,
}

impl CachedGates {
    /// `components`: where loco's own Deployments live, checked Ready before a deploy;
    /// `None` skips that check (a cluster without the chart installed, e.g. the test bed).
    pub fn new(components: Option<ComponentSelector>) -> Self {
        CachedGates {
            components,
            caches: Mutex::new(HashMap::new()),
        }
    }
}

impl GateSource for CachedGates {
    fn gate(&self, cluster_id: i64, client: &kube::Client) -> Arc<dyn CapacityGate> {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches
            .entry(cluster_id)
            .or_insert_with(|| Arc::new(Cache::spawn(client.clone(), self.components.clone())))
            .clone()
    }

    /// Drops a cluster's watch cache (its credentials changed): the next gate watches
    /// with the new client.
    fn forget(&self, cluster_id: i64) {
        self.caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cluster_id);
    }
}

/// LISTs nodes and pods on every check.
pub struct ListGates {
    pub components: Option<ComponentSelector>,
}

impl GateSource for ListGates {
    fn gate(&self, _cluster_id: i64, client: &kube::Client) -> Arc<dyn CapacityGate> {
        Arc::new(ListGate::new(client.clone(), self.components.clone()))
    }
}

/// The same gate for every cluster (tests of callers: a `FixedGate`).
pub struct StaticGate(pub Arc<dyn CapacityGate>);

impl GateSource for StaticGate {
    fn gate(&self, _cluster_id: i64, _client: &kube::Client) -> Arc<dyn CapacityGate> {
        self.0.clone()
    }
}

/// The preflight request of a rendered app: its Deployment's pod requests, times the
/// most replicas it may run (the HPA maximum when it autoscales). `None` when it runs no
/// pods (asleep, or scaled to 0): nothing to place.
pub fn request_for(
    rendered: &Rendered,
    purpose: Purpose,
    max_replicas: Option<u32>,
    factor: Option<f64>,
    profile: Option<&str>,
) -> Option<Request> {
    let deployment: &Deployment = rendered.objects.iter().find_map(|o| match &o.object {
        Object::Deployment(d) => Some(d),
        _ => None,
    })?;
    let mut req = Request::for_deployment(deployment, purpose, max_replicas);
    if req.replicas == 0 {
        return None;
    }
    req.factor = factor;
    req.profile = profile.map(str::to_owned);
    Some(req)
}

/// What one revision's pods ask of the cluster: per-pod requests and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pods {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub replicas: u32,
}

/// How many new pods a change adds to the cluster at its peak, given what runs before
/// it (`old`; `None` when nothing runs) and whether the pod template changes. The render
/// rolls out with maxSurge 1 and maxUnavailable 0: a template change adds one surge pod
/// beyond the new count, and each old pod it replaces frees at least the room of a new
/// one when the new pods are no bigger. A scale-down, and a rollback to a smaller
/// revision, adds nothing; a rolling update of the same size adds its surge.
pub fn added_replicas(old: Option<Pods>, new: Pods, template_changes: bool) -> u32 {
    let Some(old) = old.filter(|o| o.replicas > 0) else {
        return new.replicas;
    };
    if !template_changes {
        return new.replicas.saturating_sub(old.replicas);
    }
    let no_bigger = new.cpu_millis <= old.cpu_millis && new.memory_bytes <= old.memory_bytes;
    if no_bigger {
        (new.replicas + 1).saturating_sub(old.replicas)
    } else {
        new.replicas
    }
}

fn deployment_of(rendered: &Rendered) -> Option<&Deployment> {
    rendered.objects.iter().find_map(|o| match &o.object {
        Object::Deployment(d) => Some(d),
        _ => None,
    })
}

/// The preflight request of a change from `previous` (what runs now, if anything) to
/// `desired`: only the pods the change adds ([`added_replicas`]), each with the new
/// pod's requests. `None` when it adds none: nothing to place.
pub fn request_for_change(
    desired: &Rendered,
    previous: Option<&Rendered>,
    purpose: Purpose,
    max_replicas: Option<u32>,
    factor: Option<f64>,
    profile: Option<&str>,
) -> Option<Request> {
    let mut req = request_for(desired, purpose, max_replicas, factor, profile)?;
    let Some(old) = previous.and_then(deployment_of) else {
        return Some(req);
    };
    let new = deployment_of(desired)?;
    let old_req = Request::for_deployment(old, purpose, None);
    let old_pods = Pods {
        cpu_millis: old_req.cpu_millis,
        memory_bytes: old_req.memory_bytes,
        // An autoscaled previous Deployment renders no count: 1 is the least it runs.
        replicas: match old.spec.as_ref().and_then(|s| s.replicas) {
            Some(n) => u32::try_from(n).unwrap_or(0),
            None => 1,
        },
    };
    let template = |d: &Deployment| {
        d.spec
            .as_ref()
            .map(|s| serde_json::to_value(&s.template).ok())
    };
    let added = added_replicas(
        Some(old_pods),
        Pods {
            cpu_millis: req.cpu_millis,
            memory_bytes: req.memory_bytes,
            replicas: req.replicas,
        },
        template(old) != template(new),
    );
    if added == 0 {
        return None;
    }
    req.replicas = added;
    Some(req)
}

/// One line for an event and the deployment's message: the failures and what to do.
pub fn summary(v: &Verdict) -> String {
    let failures: Vec<&str> = v.failures.iter().map(|f| f.message.as_str()).collect();
    let mut s = if v.pass {
        format!("preflight passed: {} x {} placed", v.placed, v.factor)
    } else {
        format!("preflight refused the deploy: {}", failures.join("; "))
    };
    if !v.next_steps.is_empty() {
        s.push_str(". Next: ");
        s.push_str(&v.next_steps.join("; "));
    }
    s.chars().take(3000).collect()
}

#[cfg(test)]
mod tests {
    use super::{Pods, added_replicas};

    fn pods(cpu: u64, mem: u64, n: u32) -> Pods {
        Pods {
            cpu_millis: cpu,
            memory_bytes: mem,
            replicas: n,
        }
    }

    #[test]
    fn a_change_asks_only_for_what_it_adds() {
        // Nothing runs (first deploy, wake): every new pod.
        assert_eq!(added_replicas(None, pods(100, 64, 5), true), 5);
        assert_eq!(
            added_replicas(Some(pods(100, 64, 0)), pods(100, 64, 5), false),
            5
        );
        // Scale-only: the difference, nothing for a scale-down.
        assert_eq!(
            added_replicas(Some(pods(100, 64, 10)), pods(100, 64, 5), false),
            0
        );
        assert_eq!(
            added_replicas(Some(pods(100, 64, 2)), pods(100, 64, 5), false),
            3
        );
        // A rolling update of the same size: its surge of one.
        assert_eq!(
            added_replicas(Some(pods(100, 64, 5)), pods(100, 64, 5), true),
            1
        );
        // A rollback to a smaller revision: nothing.
        assert_eq!(
            added_replicas(Some(pods(200, 128, 5)), pods(100, 64, 3), true),
            0
        );
        // Bigger pods: freed old pods may not hold a new one, so all of them.
        assert_eq!(
            added_replicas(Some(pods(100, 64, 5)), pods(200, 64, 5), true),
            5
        );
    }
}
