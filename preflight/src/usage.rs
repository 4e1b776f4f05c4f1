//! What the live, bound pods take, per node, and how the watch cache keeps that sum
//! current pod by pod instead of recounting every pod after each change.
//!
//! In a busy cluster pods change all the time (rollouts, jobs, restarts), so a sum
//! recounted on change is recounted on almost every check: 10,000 pods cost about a
//! millisecond, twice the simulation itself. [`UsageIndex`] applies each watch event as
//! a difference (take the old pod out, put the new one in) and hands checks a shared
//! snapshot, copied only when a check still holds the previous one.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{PodUsage, Resources};

/// Requests of the non-terminated pods, per node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Node name -> (all requests, the DaemonSet share, how many pods).
    per_node: HashMap<String, NodeSum>,
    /// Pods not bound to a node yet.
    pub pending: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct NodeSum {
    requested: Resources,
    daemonset: Resources,
    /// Counted so a node's entry goes when its last pod does (saturating sums alone
    /// cannot tell "empty" from "clamped at zero").
    pods: u64,
}

impl Usage {
    pub fn from_pods<P: Borrow<PodUsage>>(pods: &[P]) -> Usage {
        let mut u = Usage::default();
        for pod in pods {
            u.add(pod.borrow());
        }
        u
    }

    /// (all requests, the DaemonSet share) of the pods bound to `node`.
    pub fn on(&self, node: &str) -> (Resources, Resources) {
        self.per_node
            .get(node)
            .map(|s| (s.requested, s.daemonset))
            .unwrap_or_default()
    }

    fn add(&mut self, pod: &PodUsage) {
        if pod.terminated {
            return;
        }
        let Some(node) = pod.node_name.as_deref() else {
            self.pending += 1;
            return;
        };
        // get_mut first: most pods land on a node already seen, and this avoids
        // allocating a key for them.
        let e = match self.per_node.get_mut(node) {
            Some(e) => e,
            None => self.per_node.entry(node.to_string()).or_default(),
        };
        e.requested = e.requested.saturating_add(pod.requests);
        if pod.daemonset {
            e.daemonset = e.daemonset.saturating_add(pod.requests);
        }
        e.pods += 1;
    }

    /// Undoes `add` of the same pod.
    fn remove(&mut self, pod: &PodUsage) {
        if pod.terminated {
            return;
        }
        let Some(node) = pod.node_name.as_deref() else {
            self.pending = self.pending.saturating_sub(1);
            return;
        };
        let Some(e) = self.per_node.get_mut(node) else {
            return;
        };
        e.pods = e.pods.saturating_sub(1);
        if e.pods == 0 {
            self.per_node.remove(node);
            return;
        }
        e.requested = e.requested.saturating_sub(pod.requests);
        if pod.daemonset {
            e.daemonset = e.daemonset.saturating_sub(pod.requests);
        }
    }
}

type Key = (String, String);

fn key(p: &PodUsage) -> Key {
    (p.namespace.clone(), p.name.clone())
}

/// The pods the watch has seen and their sum, updated event by event. Ordered by
/// (namespace, name), so one app's pods (its namespace) are a range, not a scan.
#[derive(Debug, Default)]
pub struct UsageIndex {
    pods: BTreeMap<Key, PodUsage>,
    usage: Arc<Usage>,
    /// A relist in progress: built aside and swapped in when it is complete, so checks
    /// never see half a list.
    relist: Option<(BTreeMap<Key, PodUsage>, Usage)>,
}

impl UsageIndex {
    /// The sum now; cheap (a reference count), and unaffected by later events.
    pub fn usage(&self) -> Arc<Usage> {
        self.usage.clone()
    }

    /// The live pods of one namespace (terminated ones left out).
    pub fn pods_in(&self, namespace: &str) -> Vec<PodUsage> {
        self.pods
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p)
            .filter(|p| !p.terminated)
            .cloned()
            .collect()
    }

    /// Pods held (after the last complete list).
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// A relist starts: what follows until [`UsageIndex::relisted`] replaces everything.
    pub fn relist_started(&mut self) {
        self.relist = Some(Default::default());
    }

    /// A pod of the relist in progress (or, outside one, an ordinary update).
    pub fn relist_pod(&mut self, pod: PodUsage) {
        match &mut self.relist {
            Some((pods, usage)) => {
                usage.add(&pod);
                if let Some(old) = pods.insert(key(&pod), pod) {
                    usage.remove(&old);
                }
            }
            None => self.upsert(pod),
        }
    }

    /// The relist is complete: it replaces what was held.
    pub fn relisted(&mut self) {
        if let Some((pods, usage)) = self.relist.take() {
            self.pods = pods;
            self.usage = Arc::new(usage);
        }
    }

    /// A pod was added or changed.
    pub fn upsert(&mut self, pod: PodUsage) {
        let k = key(&pod);
        if self.pods.get(&k) == Some(&pod) {
            return;
        }
        // Copies the sum only when a check still reads the previous snapshot.
        let usage = Arc::make_mut(&mut self.usage);
        usage.add(&pod);
        if let Some(old) = self.pods.insert(k, pod) {
            usage.remove(&old);
        }
    }

    /// A pod was deleted.
    pub fn delete(&mut self, pod: &PodUsage) {
        if let Some(old) = self.pods.remove(&key(pod)) {
            Arc::make_mut(&mut self.usage).remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;

    fn pod(name: &str, node: Option<&str>, cpu: u64) -> PodUsage {
        PodUsage {
            namespace: "default".into(),
            name: name.into(),
            node_name: node.map(str::to_string),
            requests: Resources::new(cpu, cpu << 20, 1),
            daemonset: false,
            terminated: false,
        }
    }

    /// The index must always equal a recount of the pods it holds.
    fn assert_consistent(idx: &UsageIndex) {
        let pods: Vec<&PodUsage> = idx.pods.values().collect();
        assert_eq!(*idx.usage(), Usage::from_pods(&pods));
    }

    #[test]
    fn updates_move_a_pods_requests_between_nodes_and_pending() {
        let mut idx = UsageIndex::default();
        idx.relist_started();
        idx.relist_pod(pod("a", Some("n1"), 100));
        idx.relist_pod(pod("b", None, 200));
        assert_eq!(idx.usage().pending, 0, "a half relist is not visible");
        idx.relisted();
        assert_eq!(idx.usage().pending, 1);
        assert_eq!(idx.usage().on("n1").0.cpu_millis, 100);
        assert_consistent(&idx);

        // b is scheduled onto n1, a grows and is applied twice, then a terminates.
        idx.upsert(pod("b", Some("n1"), 200));
        idx.upsert(pod("a", Some("n1"), 300));
        idx.upsert(pod("a", Some("n1"), 300));
        assert_eq!(idx.usage().pending, 0);
        assert_eq!(idx.usage().on("n1").0, Resources::new(500, 500 << 20, 2));
        assert_consistent(&idx);
        let mut done = pod("a", Some("n1"), 300);
        done.terminated = true;
        idx.upsert(done);
        assert_eq!(idx.usage().on("n1").0, Resources::new(200, 200 << 20, 1));
        assert_consistent(&idx);

        // The last pod of a node leaves: the node has no entry, not a clamped zero.
        idx.delete(&pod("b", Some("n1"), 200));
        assert_eq!(idx.usage().on("n1").0, Resources::default());
        assert_eq!(idx.len(), 1, "the terminated pod is still known");
        assert_consistent(&idx);
        idx.delete(&pod("never-seen", Some("n1"), 1));
        assert_consistent(&idx);
    }

    #[test]
    fn a_relist_replaces_everything_and_a_held_snapshot_does_not_change() {
        let mut idx = UsageIndex::default();
        idx.relist_started();
        for i in 0..50 {
            idx.relist_pod(pod(&format!("p{i}"), Some(&format!("n{}", i % 5)), 10));
        }
        idx.relisted();
        let held = idx.usage();
        idx.upsert(pod("late", Some("n0"), 1000));
        assert_eq!(
            held.on("n0").0.cpu_millis,
            100,
            "a check's snapshot is fixed"
        );
        assert_eq!(idx.usage().on("n0").0.cpu_millis, 1100);

        // After a reconnect the list has only two pods: the rest were deleted meanwhile.
        idx.relist_started();
        idx.relist_pod(pod("p0", Some("n0"), 10));
        idx.relist_pod(pod("p0", Some("n0"), 10));
        idx.relist_pod(pod("x", Some("n9"), 7));
        idx.relisted();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.usage().on("n0").0.cpu_millis, 10);
        assert_eq!(idx.usage().on("n1").0, Resources::default());
        assert_consistent(&idx);
    }

    #[test]
    fn one_namespaces_live_pods_are_a_range() {
        let mut idx = UsageIndex::default();
        let at = |ns: &str, name: &str| PodUsage {
            namespace: ns.into(),
            ..pod(name, Some("n1"), 10)
        };
        for (ns, name) in [
            ("a", "x"),
            ("app", "p1"),
            ("app", "p2"),
            ("app-2", "q"),
            ("b", "y"),
        ] {
            idx.upsert(at(ns, name));
        }
        let mut gone = at("app", "p0");
        gone.terminated = true;
        idx.upsert(gone);
        let names: Vec<String> = idx.pods_in("app").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["p1", "p2"]);
        assert!(idx.pods_in("none").is_empty());
        assert!(idx.pods_in("").is_empty());
    }

    #[test]
    fn daemonset_share_is_kept_apart() {
        let mut idx = UsageIndex::default();
        let mut ds = pod("ds", Some("n1"), 50);
        ds.daemonset = true;
        idx.upsert(ds.clone());
        idx.upsert(pod("app", Some("n1"), 100));
        assert_eq!(idx.usage().on("n1").1.cpu_millis, 50);
        assert_eq!(idx.usage().on("n1").0.cpu_millis, 150);
        idx.delete(&ds);
        assert_eq!(idx.usage().on("n1").1.cpu_millis, 0);
        assert_consistent(&idx);
    }
}
