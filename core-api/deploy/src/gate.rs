//! The preflight gate in front of every apply that adds pods (deploy, wake, rebuild):
//! nodes Ready and the request times a factor placed replica by replica (loco-preflight).
//!
//! [`GateSource`] hands out one gate per cluster. The API and the daemons use
//! [`CachedGates`] (watch-based: a check reads memory, no LIST); one-shot tools may use
//! [`ListGates`]; tests of callers put a `FixedGate` behind [`StaticGate`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use loco_preflight::{
    Cache, CapacityGate, ComponentSelector, ListGate, Purpose, Request, Rollout, Verdict,
};

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

fn deployment_of(rendered: &Rendered) -> Option<&Deployment> {
    rendered.objects.iter().find_map(|o| match &o.object {
        Object::Deployment(d) => Some(d),
        _ => None,
    })
}

/// The preflight request of a change from `previous` (what ran before, if anything) to
/// `desired`: the new pods with a [`Rollout`], so preflight asks only for what the
/// change adds to the app's running pods (a scale-down or a rollback to a smaller
/// revision adds nothing, a rolling update its surge). The rollout's surge comes from
/// the Deployment as render writes it; whether pods are replaced from comparing the two
/// pod templates. `None` when the app runs no pods after the change: nothing to place.
pub fn request_for_change(
    desired: &Rendered,
    previous: Option<&Rendered>,
    purpose: Purpose,
    max_replicas: Option<u32>,
    factor: Option<f64>,
    profile: Option<&str>,
) -> Option<Request> {
    let mut req = request_for(desired, purpose, max_replicas, factor, profile)?;
    let (Some(old), Some(new)) = (previous.and_then(deployment_of), deployment_of(desired)) else {
        return Some(req);
    };
    let template = |d: &Deployment| {
        d.spec
            .as_ref()
            .map(|s| serde_json::to_value(&s.template).ok())
    };
    req.rollout = Some(Rollout::for_deployment(
        new,
        template(old) != template(new),
        req.replicas,
    ));
    Some(req)
}

/// One line for an event and the deployment's message: the failures and what to do.
pub fn summary(v: &Verdict) -> String {
    let failures: Vec<&str> = v.failures.iter().map(|f| f.message.as_str()).collect();
    let mut s = if v.pass {
        match &v.change {
            Some(c) if c.adds == 0 => format!(
                "preflight passed: the change adds no pods ({} running, {} after it)",
                c.running, c.new_pods
            ),
            Some(c) => format!(
                "preflight passed: the {} the change adds placed at {}x ({} running, {} after it)",
                if c.adds == 1 {
                    "1 pod".to_owned()
                } else {
                    format!("{} pods", c.adds)
                },
                v.factor,
                c.running,
                c.new_pods
            ),
            None => format!("preflight passed: {} x {} placed", v.placed, v.factor),
        }
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
    use super::{request_for_change, summary};
    use loco_preflight::{
        ComponentsState, NodeInfo, PodUsage, Purpose, Request, Rollout, evaluate,
    };
    use loco_render::{RenderInput, Rendered};

    fn render(cpu: &str, replicas: u32, image: &str, asleep: bool) -> Rendered {
        let src = format!(
            "[Metadata]\nName = \"web\"\nRegion = \"fra1\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/h\"\n[RegionConfig.fra1]\nCPU = \"{cpu}\"\nReplicasMin = 1\nReplicasMax = 10\n"
        );
        let v = loco_spec::validate(&src, "loco.toml", &Default::default()).unwrap();
        loco_render::render(&RenderInput {
            deployment_id: 4,
            template_deployment_id: 4,
            revision_id: 5,
            replicas: Some(replicas),
            asleep,
            ..RenderInput::export(
                1,
                2,
                3,
                v.spec,
                v.env_values,
                format!("registry.example/{image}@sha256:{}", "a".repeat(64)),
            )
        })
        .unwrap()
    }

    #[test]
    fn a_change_names_its_rollout_so_preflight_asks_only_for_what_it_adds() {
        let ten = render("100m", 10, "web:1", false);
        // A first deploy asks for every pod: nothing runs to free room.
        let r = request_for_change(&ten, None, Purpose::Deploy, None, None, None).unwrap();
        assert_eq!((r.replicas, r.cpu_millis), (10, 100));
        assert!(r.rollout.is_none());
        // A scale: the template is the same, so no pod is replaced.
        let five = render("100m", 5, "web:1", false);
        let r = request_for_change(&five, Some(&ten), Purpose::Deploy, None, None, None).unwrap();
        let ro = r.rollout.unwrap();
        assert_eq!(r.replicas, 5);
        assert_eq!(ro.namespace, "wks-2-app-3");
        assert!(!ro.replaces_pods);
        // A new image: a rolling update with render's maxSurge 1, maxUnavailable 0.
        let update = render("100m", 10, "web:2", false);
        let ro = request_for_change(&update, Some(&ten), Purpose::Deploy, None, None, None)
            .unwrap()
            .rollout
            .unwrap();
        assert!(ro.replaces_pods);
        assert_eq!((ro.max_surge, ro.max_unavailable), (1, 0));
        // A wake from sleep (0 replicas rendered) scales up the same template.
        let asleep = render("100m", 10, "web:1", true);
        let ro = request_for_change(&ten, Some(&asleep), Purpose::Wake, None, None, None)
            .unwrap()
            .rollout
            .unwrap();
        assert!(!ro.replaces_pods);
        // Asleep after the change: nothing to place, no check.
        assert!(
            request_for_change(&asleep, Some(&ten), Purpose::Deploy, None, None, None).is_none()
        );
    }

    #[test]
    fn the_summary_says_what_the_change_added() {
        let nodes = [NodeInfo::ready("a", 4000, 8 << 30, 110)];
        let pods: Vec<PodUsage> = (0..3)
            .map(|i| {
                let mut p = PodUsage::on("a", &format!("p{i}"), 100, 64 << 20);
                p.namespace = "wks-2-app-3".into();
                p
            })
            .collect();
        let with = |replicas: u32, replaces_pods: bool| {
            let mut r = Request::new(Purpose::Deploy, 100, 64 << 20, replicas);
            r.rollout = Some(Rollout {
                namespace: "wks-2-app-3".into(),
                replaces_pods,
                max_surge: 1,
                max_unavailable: 0,
            });
            summary(&evaluate(&nodes, &pods, &ComponentsState::NotChecked, &r).unwrap())
        };
        assert_eq!(
            with(2, false),
            "preflight passed: the change adds no pods (3 running, 2 after it)"
        );
        assert_eq!(
            with(3, true),
            "preflight passed: the 1 pod the change adds placed at 2x (3 running, 3 after it)"
        );
        assert_eq!(
            with(5, false),
            "preflight passed: the 2 pods the change adds placed at 2x (3 running, 5 after it)"
        );
    }
}
