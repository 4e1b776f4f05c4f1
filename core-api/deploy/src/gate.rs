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

    /// Drops a cluster's cache (after its credentials changed).
    pub fn forget(&self, cluster_id: i64) {
        self.caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cluster_id);
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
