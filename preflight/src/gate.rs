//! The gate callers hold: deploy (before apply), wake and rebuild call `check`.
//!
//! Three implementations of one trait: `Cache` (watches, for the long-running daemons:
//! a check reads memory and does not LIST), `ListGate` (one LIST per check, for the CLI
//! and one-shot jobs) and `FixedGate` (a literal cluster, for callers' tests).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::convert;
use crate::error::Error;
use crate::model::{
    ComponentInfo, ComponentSelector, ComponentsState, NodeInfo, PodUsage, Request,
};
use crate::placement::{Verdict, evaluate, evaluate_with_usage};
use crate::usage::UsageIndex;

/// Pods that hold resources: Succeeded and Failed pods release theirs.
pub const LIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// Answers "can the cluster take this?". Object safe, so callers can hold an
/// `Arc<dyn CapacityGate>` and put a `FixedGate` in its place in tests.
pub trait CapacityGate: Send + Sync {
    fn check<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Verdict, Error>>;
}

/// A gate over a literal cluster (no I/O): for the tests of the callers.
#[derive(Debug, Clone)]
pub struct FixedGate {
    pub nodes: Vec<NodeInfo>,
    pub pods: Vec<PodUsage>,
    pub components: ComponentsState,
}

impl CapacityGate for FixedGate {
    fn check<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Verdict, Error>> {
        Box::pin(async move { evaluate(&self.nodes, &self.pods, &self.components, req) })
    }
}

/// Lists nodes, pods and loco's Deployments on every check.
#[derive(Clone)]
pub struct ListGate {
    client: Client,
    components: Option<ComponentSelector>,
}

impl ListGate {
    pub fn new(client: Client, components: Option<ComponentSelector>) -> Self {
        ListGate { client, components }
    }

    /// The nodes alone (one LIST): for a caller that keeps its own account of the pods
    /// it placed since a [`ListGate::snapshot`], as the resurrector does between waves.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let list = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::from_kube("list nodes", e))?;
        Ok(list.items.iter().map(convert::node_info).collect())
    }

    /// One LIST of each kind, converted to plain data.
    pub async fn snapshot(&self) -> Result<FixedGate, Error> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let (nodes, pods, components) = futures::try_join!(
            self.nodes(),
            async {
                let list = pods
                    .list(&ListParams::default().fields(LIVE_PODS))
                    .await
                    .map_err(|e| Error::from_kube("list pods", e))?;
                Ok(list
                    .items
                    .iter()
                    .map(convert::pod_usage)
                    .collect::<Vec<_>>())
            },
            async {
                let Some(sel) = &self.components else {
                    return Ok(ComponentsState::NotChecked);
                };
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &sel.namespace);
                let list = api
                    .list(&ListParams::default().labels(&sel.label_selector))
                    .await
                    .map_err(|e| {
                        Error::from_kube(&format!("list deployments in {}", sel.namespace), e)
                    })?;
                Ok(ComponentsState::Observed {
                    selector: sel.clone(),
                    deployments: list.items.iter().map(convert::component_info).collect(),
                })
            }
        )?;
        Ok(FixedGate {
            nodes,
            pods,
            components,
        })
    }
}

impl CapacityGate for ListGate {
    fn check<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Verdict, Error>> {
        Box::pin(async move {
            let snap = self.snapshot().await?;
            evaluate(&snap.nodes, &snap.pods, &snap.components, req)
        })
    }
}

// The cache stores plain data, converted once per watch event, so a check neither
// LISTs nor re-parses quantities of 10,000 pods.
macro_rules! lookup {
    ($t:ty, $kind:literal, $group:literal, $plural:literal, |$s:ident| $ns:expr) => {
        impl Lookup for $t {
            type DynamicType = ();
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn name(&self) -> Option<Cow<'_, str>> {
                Some(Cow::Borrowed(&self.name))
            }
            fn namespace(&self) -> Option<Cow<'_, str>> {
                let $s = self;
                $ns
            }
            fn resource_version(&self) -> Option<Cow<'_, str>> {
                None
            }
            fn uid(&self) -> Option<Cow<'_, str>> {
                None
            }
        }
    };
}

lookup!(NodeInfo, "Node", "", "nodes", |_node| None);
lookup!(PodUsage, "Pod", "", "pods", |p| Some(Cow::Borrowed(
    p.namespace.as_str()
)));
lookup!(
    ComponentInfo,
    "Deployment",
    "apps",
    "deployments",
    |d| Some(Cow::Borrowed(d.namespace.as_str()))
);

fn map_event<A, B>(ev: watcher::Event<A>, f: impl Fn(&A) -> B) -> watcher::Event<B> {
    match ev {
        watcher::Event::Apply(a) => watcher::Event::Apply(f(&a)),
        watcher::Event::Delete(a) => watcher::Event::Delete(f(&a)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(a) => watcher::Event::InitApply(f(&a)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// Whether a watch is connected: its last item was an event, not an error.
#[derive(Debug, Default)]
struct Health {
    synced: AtomicBool,
    failing: Mutex<Option<Error>>,
}

impl Health {
    fn record<K>(&self, what: &str, item: &Result<watcher::Event<K>, watcher::Error>) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match item {
            Ok(ev) => {
                if matches!(ev, watcher::Event::InitDone) {
                    self.synced.store(true, Ordering::Release);
                }
                *failing = None;
            }
            Err(e) => {
                tracing::warn!(watch = what, error = %e, "watch failed; retrying with backoff");
                let action = format!("watch {what}");
                *failing = Some(match e {
                    watcher::Error::InitialListFailed(k)
                    | watcher::Error::WatchStartFailed(k)
                    | watcher::Error::WatchFailed(k) => {
                        Error::from_kube(&action, clone_kube_error(k))
                    }
                    watcher::Error::WatchError(s) => Error::Api {
                        action,
                        message: s.message.clone(),
                    },
                    watcher::Error::NoResourceVersion => Error::Api {
                        action,
                        message: e.to_string(),
                    },
                });
            }
        }
    }

    fn check(&self) -> Result<(), Error> {
        let failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match &*failing {
            None => Ok(()),
            Some(e) => Err(copy_error(e)),
        }
    }
}

/// kube::Error is not Clone; keep what classification needs.
fn clone_kube_error(e: &kube::Error) -> kube::Error {
    match e {
        kube::Error::Api(s) => kube::Error::Api(s.clone()),
        other => kube::Error::Service(other.to_string().into()),
    }
}

fn copy_error(e: &Error) -> Error {
    match e {
        Error::Forbidden { action, message } => Error::Forbidden {
            action: action.clone(),
            message: message.clone(),
        },
        Error::Api { action, message } => Error::Api {
            action: action.clone(),
            message: message.clone(),
        },
        Error::Unreachable(m) => Error::Unreachable(m.clone()),
        other => Error::Unreachable(other.to_string()),
    }
}

/// Aborts the watch tasks when the cache is dropped.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Watches nodes, live pods and loco's Deployments; checks read this memory.
#[derive(Clone)]
pub struct Cache {
    nodes: Store<NodeInfo>,
    pods: Store<PodUsage>,
    /// The pods summed per node, kept current event by event by the pod watch.
    usage: Arc<Mutex<UsageIndex>>,
    components: Option<(ComponentSelector, Store<ComponentInfo>)>,
    health: Vec<(&'static str, Arc<Health>)>,
    /// How long a check waits for the first list before giving up.
    sync_timeout: Duration,
    _tasks: Arc<Tasks>,
}

/// Drops updates that do not change the converted object: kwok's and the kubelet's
/// heartbeats and status churn then cost a decode, but no store write and no recount.
fn dedupe<T: Lookup<DynamicType = ()> + Clone + PartialEq>() -> impl FnMut(
    watcher::Result<watcher::Event<T>>,
) -> futures::future::Ready<
    Option<watcher::Result<watcher::Event<T>>>,
> {
    let mut last: HashMap<(Option<String>, String), T> = HashMap::new();
    let key = |t: &T| {
        (
            t.namespace().map(Cow::into_owned),
            t.name().map(Cow::into_owned).unwrap_or_default(),
        )
    };
    move |item| {
        let keep = match &item {
            Ok(watcher::Event::Init) => {
                last.clear();
                true
            }
            Ok(watcher::Event::InitApply(t)) => {
                last.insert(key(t), t.clone());
                true
            }
            Ok(watcher::Event::Apply(t)) => {
                let k = key(t);
                if last.get(&k) == Some(t) {
                    false
                } else {
                    last.insert(k, t.clone());
                    true
                }
            }
            Ok(watcher::Event::Delete(t)) => {
                last.remove(&key(t));
                true
            }
            Ok(watcher::Event::InitDone) | Err(_) => true,
        };
        futures::future::ready(keep.then_some(item))
    }
}

/// One watch feeding one store.
struct Reflected<T: Lookup<DynamicType = ()> + Clone + 'static> {
    store: Store<T>,
    health: Arc<Health>,
    task: tokio::task::JoinHandle<()>,
}

/// Sees every event after the store applied it.
type Observer<T> = Box<dyn FnMut(&watcher::Event<T>) + Send>;

fn spawn_reflector<K, T>(
    api: Api<K>,
    config: watcher::Config,
    convert: fn(&K) -> T,
    what: &'static str,
    mut observe: Option<Observer<T>>,
) -> Reflected<T>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    T: Lookup<DynamicType = ()> + Clone + PartialEq + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<T>();
    let health = Arc::new(Health::default());
    let h = health.clone();
    let stream = watcher(api, config)
        .map_ok(move |ev| map_event(ev, convert))
        .filter_map(dedupe())
        .default_backoff();
    let task = tokio::spawn(async move {
        reflector::reflector(writer, stream)
            .for_each(|item| {
                if let (Some(observe), Ok(ev)) = (observe.as_mut(), &item) {
                    observe(ev);
                }
                h.record(what, &item);
                futures::future::ready(())
            })
            .await;
    });
    Reflected {
        store,
        health,
        task,
    }
}

/// Feeds the pod watch's events into the per-node sums.
fn usage_observer(index: Arc<Mutex<UsageIndex>>) -> Observer<PodUsage> {
    Box::new(move |ev| {
        let mut idx = index.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            watcher::Event::Init => idx.relist_started(),
            watcher::Event::InitApply(p) => idx.relist_pod(p.clone()),
            watcher::Event::InitDone => idx.relisted(),
            watcher::Event::Apply(p) => idx.upsert(p.clone()),
            watcher::Event::Delete(p) => idx.delete(p),
        }
    })
}

impl Cache {
    /// Starts the watches (needs a Tokio runtime). Pass `None` to skip loco's components.
    pub fn spawn(client: Client, components: Option<ComponentSelector>) -> Cache {
        let nodes = spawn_reflector(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            convert::node_info,
            "nodes",
            None,
        );
        let usage = Arc::new(Mutex::new(UsageIndex::default()));
        let pods = spawn_reflector(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(LIVE_PODS),
            convert::pod_usage,
            "pods",
            Some(usage_observer(usage.clone())),
        );
        let mut health = vec![("nodes", nodes.health), ("pods", pods.health)];
        let mut tasks = vec![nodes.task, pods.task];
        let components = components.map(|sel| {
            let r = spawn_reflector(
                Api::<Deployment>::namespaced(client.clone(), &sel.namespace),
                watcher::Config::default().labels(&sel.label_selector),
                convert::component_info,
                "deployments",
                None,
            );
            health.push(("deployments", r.health));
            tasks.push(r.task);
            (sel, r.store)
        });
        Cache {
            nodes: nodes.store,
            pods: pods.store,
            usage,
            components,
            health,
            sync_timeout: Duration::from_secs(30),
            _tasks: Arc::new(Tasks(tasks)),
        }
    }

    pub fn with_sync_timeout(mut self, t: Duration) -> Self {
        self.sync_timeout = t;
        self
    }

    /// Waits until every watch has listed once, or fails with the watch's error.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), Error> {
        let all = async {
            self.nodes.wait_until_ready().await.ok();
            self.pods.wait_until_ready().await.ok();
            if let Some((_, s)) = &self.components {
                s.wait_until_ready().await.ok();
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            for (_, h) in &self.health {
                h.check()?;
            }
            return Err(Error::CacheNotReady(timeout));
        }
        Ok(())
    }

    fn synced(&self) -> bool {
        self.health
            .iter()
            .all(|(_, h)| h.synced.load(Ordering::Acquire))
    }

    /// Nodes and pods the cache holds now.
    pub fn len(&self) -> (usize, usize) {
        (self.nodes.len(), self.pods.len())
    }
}

impl CapacityGate for Cache {
    fn check<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Verdict, Error>> {
        Box::pin(async move {
            if !self.synced() {
                self.wait_synced(self.sync_timeout).await?;
            }
            // A watch that is failing means the API is unreachable now and the memory
            // is stale: say so instead of answering from old data.
            for (_, h) in &self.health {
                h.check()?;
            }
            let nodes = self.nodes.state();
            let (usage, app_pods) = {
                let idx = self.usage.lock().unwrap_or_else(|p| p.into_inner());
                let app_pods = req
                    .rollout
                    .as_ref()
                    .map(|r| idx.pods_in(&r.namespace))
                    .unwrap_or_default();
                (idx.usage(), app_pods)
            };
            let components = match &self.components {
                None => ComponentsState::NotChecked,
                Some((sel, store)) => ComponentsState::Observed {
                    selector: sel.clone(),
                    deployments: store.state().iter().map(|d| (**d).clone()).collect(),
                },
            };
            evaluate_with_usage(&nodes, &usage, &app_pods, &components, req)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeInfo, Purpose};

    #[tokio::test]
    async fn the_store_keeps_converted_objects_by_name() {
        let node = |name: &str, cpu: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "10"},
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap()
        };
        let events = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(node("a", "1"))),
            Ok(watcher::Event::InitApply(node("b", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(node("a", "2"))),
            Ok(watcher::Event::Delete(node("b", "1"))),
        ];
        let (store, writer) = reflector::store::<NodeInfo>();
        let stream = futures::stream::iter(events).map_ok(|ev| map_event(ev, convert::node_info));
        reflector::reflector(writer, stream)
            .for_each(|_| async {})
            .await;
        let state = store.state();
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].name, "a");
        assert_eq!(state[0].allocatable.cpu_millis, 2000);
    }

    #[tokio::test]
    async fn unchanged_updates_are_dropped() {
        let a = NodeInfo::ready("a", 1000, 1 << 30, 10);
        let mut a2 = a.clone();
        a2.unschedulable = true;
        let events: Vec<watcher::Result<watcher::Event<NodeInfo>>> = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(a.clone())),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(a.clone())),
            Ok(watcher::Event::Apply(a2.clone())),
            Ok(watcher::Event::Apply(a2.clone())),
            Ok(watcher::Event::Delete(a2.clone())),
            Ok(watcher::Event::Apply(a2.clone())),
        ];
        let kept: Vec<String> = futures::stream::iter(events)
            .filter_map(dedupe())
            .map(|e| match e.unwrap() {
                watcher::Event::Init => "init".to_string(),
                watcher::Event::InitApply(_) => "init_apply".into(),
                watcher::Event::InitDone => "init_done".into(),
                watcher::Event::Apply(n) => format!("apply cordoned={}", n.unschedulable),
                watcher::Event::Delete(_) => "delete".into(),
            })
            .collect()
            .await;
        assert_eq!(
            kept,
            [
                "init",
                "init_apply",
                "init_done",
                "apply cordoned=true",
                "delete",
                "apply cordoned=true"
            ]
        );
    }

    #[tokio::test]
    async fn a_fixed_gate_answers_from_its_literals() {
        let gate: Arc<dyn CapacityGate> = Arc::new(FixedGate {
            nodes: vec![NodeInfo::ready("a", 4000, 16 << 30, 110)],
            pods: vec![],
            components: ComponentsState::NotChecked,
        });
        let v = gate
            .check(&Request::new(Purpose::Deploy, 500, 256 << 20, 3))
            .await
            .unwrap();
        assert!(v.pass);
    }

    #[test]
    fn a_failing_watch_makes_checks_fail_until_it_recovers() {
        let h = Health::default();
        let err: Result<watcher::Event<NodeInfo>, _> = Err(watcher::Error::NoResourceVersion);
        h.record("nodes", &err);
        assert_eq!(h.check().unwrap_err().reason(), "api_error");
        h.record::<NodeInfo>("nodes", &Ok(watcher::Event::InitDone));
        assert!(h.check().is_ok());
        assert!(h.synced.load(Ordering::Acquire));
    }
}
