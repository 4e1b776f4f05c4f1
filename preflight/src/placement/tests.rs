//! The placement simulation from literal clusters.

use super::*;
use crate::model::{Toleration, TolerationOperator};

const GI: u64 = 1 << 30;
const MI: u64 = 1 << 20;

fn req(cpu: u64, mem: u64, replicas: u32) -> Request {
    Request::new(Purpose::Deploy, cpu, mem, replicas)
}

fn run(nodes: &[NodeInfo], pods: &[PodUsage], r: &Request) -> Verdict {
    evaluate(nodes, pods, &ComponentsState::NotChecked, r).unwrap()
}

fn node(v: &Verdict, name: &str) -> NodeReport {
    v.nodes.iter().find(|n| n.name == name).unwrap().clone()
}

fn reasons(v: &Verdict, name: &str) -> Vec<&'static str> {
    node(v, name)
        .problems
        .iter()
        .map(NodeProblem::reason)
        .collect()
}

#[test]
fn fits_with_twice_the_request() {
    let nodes = [NodeInfo::ready("a", 4000, 16 * GI, 110)];
    let v = run(&nodes, &[], &req(500, 256 * MI, 3));
    assert!(v.pass, "{v:#?}");
    assert_eq!(v.per_replica_scaled, Resources::new(1000, 512 * MI, 2));
    assert_eq!(v.placed, 3);
    assert_eq!(node(&v, "a").fits, 4);
    assert_eq!(v.reason(), "pass");
}

#[test]
fn the_factor_is_what_fails_a_deploy_but_not_a_rebuild() {
    // 3 replicas of 1 CPU: fit at 1x (3 CPU), not at 2x (6 CPU) on one 4 CPU node.
    let nodes = [NodeInfo::ready("a", 4000, 16 * GI, 110)];
    let deploy = run(&nodes, &[], &req(1000, MI, 3));
    assert!(!deploy.pass);
    assert_eq!(deploy.placed, 2);
    let mut r = req(1000, MI, 3);
    r.purpose = Purpose::Rebuild;
    let rebuild = run(&nodes, &[], &r);
    assert!(rebuild.pass, "{rebuild:#?}");
    assert_eq!(rebuild.factor, 1.0);
    r.factor = Some(1.5);
    assert_eq!(run(&nodes, &[], &r).per_replica_scaled.cpu_millis, 1500);
}

#[test]
fn fragmentation_sum_fits_but_no_node_does() {
    // 4 nodes with 400m free each: 1600m in total, but a replica needs 2 x 500m.
    let nodes: Vec<NodeInfo> = (0..4)
        .map(|i| NodeInfo::ready(&format!("n{i}"), 400, 8 * GI, 110))
        .collect();
    let v = run(&nodes, &[], &req(500, 64 * MI, 1));
    assert!(!v.pass);
    assert_eq!(v.placed, 0);
    assert_eq!(v.failures[0].reason, "insufficient_capacity");
    assert_eq!(
        v.next_steps[0],
        "needs 2 x 500m CPU per replica; the largest free node has 400m: add a node or lower CPU in the app's profile"
    );
    assert_eq!(reasons(&v, "n0"), ["insufficient_cpu"]);
}

#[test]
fn the_message_names_the_profile() {
    let nodes = [NodeInfo::ready("a", 300, 8 * GI, 110)];
    let mut r = req(500, 64 * MI, 1);
    r.profile = Some("prod".into());
    let v = run(&nodes, &[], &r);
    assert_eq!(
        v.next_steps[0],
        "needs 2 x 500m CPU per replica; the largest free node has 300m: add a node or lower CPU in [Profile.prod]"
    );
}

#[test]
fn existing_pods_and_daemonsets_take_their_share() {
    let nodes = [
        NodeInfo::ready("a", 2000, 4 * GI, 110),
        NodeInfo::ready("b", 2000, 4 * GI, 110),
    ];
    // A DaemonSet pod on every node takes 600m: 1400m left, one 2 x 500m replica each.
    let mut pods = vec![];
    for n in ["a", "b"] {
        let mut p = PodUsage::on(n, &format!("ds-{n}"), 600, 100 * MI);
        p.daemonset = true;
        pods.push(p);
    }
    let v = run(&nodes, &pods, &req(500, 64 * MI, 3));
    assert!(!v.pass);
    assert_eq!(v.placed, 2);
    let a = node(&v, "a");
    assert_eq!(a.daemonset_requested, Resources::new(600, 100 * MI, 1));
    assert_eq!(a.free.cpu_millis, 1400);
    assert_eq!(a.fits, 1);
    // Without the DaemonSet the same request passes.
    assert!(run(&nodes, &[], &req(500, 64 * MI, 3)).pass);
}

#[test]
fn terminated_and_unscheduled_pods_take_nothing() {
    let nodes = [NodeInfo::ready("a", 1000, GI, 110)];
    let mut done = PodUsage::on("a", "done", 1000, GI);
    done.terminated = true;
    let mut pending = PodUsage::on("a", "pending", 1000, GI);
    pending.node_name = None;
    let v = run(&nodes, &[done, pending], &req(500, MI, 1));
    assert!(v.pass);
    assert_eq!(v.pods_pending, 1);
}

#[test]
fn pods_on_unknown_nodes_are_ignored() {
    let nodes = [NodeInfo::ready("a", 1000, GI, 110)];
    let v = run(
        &nodes,
        &[PodUsage::on("gone", "x", 1000, GI)],
        &req(500, MI, 1),
    );
    assert!(v.pass);
}

#[test]
fn zero_nodes() {
    let v = run(&[], &[], &req(500, MI, 1));
    assert!(!v.pass);
    assert_eq!(v.reason(), "no_nodes");
    assert!(v.next_steps[0].starts_with("add a node"));
}

#[test]
fn not_ready_cordoned_and_pressure_nodes_are_skipped() {
    let mut not_ready = NodeInfo::ready("not-ready", 8000, 32 * GI, 110);
    not_ready.ready = ConditionStatus::False;
    let mut unknown = NodeInfo::ready("unknown", 8000, 32 * GI, 110);
    unknown.ready = ConditionStatus::Unknown;
    let mut cordoned = NodeInfo::ready("cordoned", 8000, 32 * GI, 110);
    cordoned.unschedulable = true;
    let mut mem = NodeInfo::ready("mem", 8000, 32 * GI, 110);
    mem.memory_pressure = true;
    let mut disk = NodeInfo::ready("disk", 8000, 32 * GI, 110);
    disk.disk_pressure = true;
    let mut pid = NodeInfo::ready("pid", 8000, 32 * GI, 110);
    pid.pid_pressure = true;
    let small = NodeInfo::ready("small", 1000, 32 * GI, 110);
    let nodes = [not_ready, unknown, cordoned, mem, disk, pid, small];
    let v = run(&nodes, &[], &req(500, MI, 2));
    assert!(!v.pass);
    assert_eq!(v.placed, 1, "only the small node is eligible");
    assert_eq!(node(&v, "small").placed, 1);
    assert_eq!(reasons(&v, "not-ready"), ["not_ready"]);
    assert_eq!(reasons(&v, "unknown"), ["not_ready"]);
    assert_eq!(reasons(&v, "cordoned"), ["cordoned"]);
    assert_eq!(reasons(&v, "mem"), ["memory_pressure"]);
    assert_eq!(reasons(&v, "disk"), ["disk_pressure"]);
    assert_eq!(reasons(&v, "pid"), ["pid_pressure"]);
    assert!(!node(&v, "mem").eligible);
    assert_eq!(node(&v, "mem").fits, 0);
}

#[test]
fn no_eligible_node_says_why() {
    let mut a = NodeInfo::ready("a", 8000, 32 * GI, 110);
    a.unschedulable = true;
    let mut b = NodeInfo::ready("b", 8000, 32 * GI, 110);
    b.ready = ConditionStatus::False;
    let v = run(&[a, b], &[], &req(500, MI, 1));
    assert_eq!(v.reason(), "no_eligible_nodes");
    assert_eq!(
        v.failures[0].message,
        "none of the 2 nodes can take the app's pods (1 cordoned, 1 not_ready)"
    );
    assert!(
        v.next_steps
            .iter()
            .any(|s| s.contains("kubectl uncordon a")),
        "{:?}",
        v.next_steps
    );
    assert!(
        v.next_steps
            .iter()
            .any(|s| s.contains("kubectl describe node b"))
    );
}

#[test]
fn tolerating_the_unschedulable_taint_allows_a_cordoned_node() {
    let mut a = NodeInfo::ready("a", 8000, 32 * GI, 110);
    a.unschedulable = true;
    let mut r = req(500, MI, 1);
    r.tolerations.push(Toleration {
        key: Some(UNSCHEDULABLE_TAINT.into()),
        operator: TolerationOperator::Exists,
        ..Toleration::default()
    });
    assert!(run(&[a], &[], &r).pass);
}

#[test]
fn taints_need_tolerations() {
    let mut gpu = NodeInfo::ready("gpu", 8000, 32 * GI, 110);
    gpu.taints.push(Taint::new(
        "nvidia.com/gpu",
        Some("true"),
        TaintEffect::NoSchedule,
    ));
    let mut evict = NodeInfo::ready("evict", 8000, 32 * GI, 110);
    evict
        .taints
        .push(Taint::new("maintenance", None, TaintEffect::NoExecute));
    let mut soft = NodeInfo::ready("soft", 1000, 32 * GI, 110);
    soft.taints
        .push(Taint::new("spot", None, TaintEffect::PreferNoSchedule));
    let nodes = [gpu, evict, soft];

    let v = run(&nodes, &[], &req(500, MI, 2));
    assert_eq!(v.placed, 1, "only the PreferNoSchedule node is usable");
    assert_eq!(reasons(&v, "gpu"), ["untolerated_taint"]);
    assert_eq!(reasons(&v, "evict"), ["untolerated_taint"]);
    assert!(
        node(&v, "gpu").problems[0]
            .message()
            .contains("nvidia.com/gpu=true:NoSchedule")
    );

    let mut r = req(500, MI, 2);
    r.tolerations.push(Toleration {
        key: Some("nvidia.com/gpu".into()),
        operator: TolerationOperator::Equal,
        value: Some("true".into()),
        effect: Some(TaintEffect::NoSchedule),
    });
    let v = run(&nodes, &[], &r);
    assert!(v.pass);
    assert_eq!(node(&v, "evict").placed, 0);

    // The wrong value or effect does not tolerate.
    let wrong_value = Toleration {
        key: Some("nvidia.com/gpu".into()),
        value: Some("false".into()),
        ..Toleration::default()
    };
    assert!(!wrong_value.tolerates(&nodes[0].taints[0]));
    let wrong_effect = Toleration {
        key: Some("nvidia.com/gpu".into()),
        operator: TolerationOperator::Exists,
        effect: Some(TaintEffect::NoExecute),
        ..Toleration::default()
    };
    assert!(!wrong_effect.tolerates(&nodes[0].taints[0]));
    // An empty key with Exists tolerates everything.
    let all = Toleration {
        operator: TolerationOperator::Exists,
        ..Toleration::default()
    };
    assert!(
        nodes
            .iter()
            .flat_map(|n| &n.taints)
            .all(|t| all.tolerates(t))
    );
}

#[test]
fn numeric_tolerations() {
    let t = Taint::new("level", Some("5"), TaintEffect::NoSchedule);
    let gt = |v: &str| Toleration {
        key: Some("level".into()),
        operator: TolerationOperator::Gt,
        value: Some(v.into()),
        ..Toleration::default()
    };
    assert!(gt("4").tolerates(&t));
    assert!(!gt("5").tolerates(&t));
    assert!(!gt("x").tolerates(&t));
    let lt = Toleration {
        operator: TolerationOperator::Lt,
        ..gt("6")
    };
    assert!(lt.tolerates(&t));
}

#[test]
fn node_selector_is_respected() {
    let mut a = NodeInfo::ready("a", 8000, 32 * GI, 110);
    a.labels.insert("pool".into(), "apps".into());
    let mut b = NodeInfo::ready("b", 8000, 32 * GI, 110);
    b.labels.insert("pool".into(), "db".into());
    let c = NodeInfo::ready("c", 8000, 32 * GI, 110);
    let mut r = req(1000, MI, 10);
    r.node_selector.insert("pool".into(), "apps".into());
    let v = run(&[a, b, c], &[], &r);
    assert_eq!(v.placed, 4, "only node a (8 CPU / 2 CPU per replica)");
    assert_eq!(reasons(&v, "b"), ["node_selector_mismatch"]);
    assert!(node(&v, "b").problems[0].message().contains("pool=db"));
    assert!(
        node(&v, "c").problems[0]
            .message()
            .contains("no label pool")
    );

    r.node_selector.insert("pool".into(), "nowhere".into());
    let v = run(&v_nodes(), &[], &r);
    assert_eq!(v.reason(), "no_eligible_nodes");
    assert!(
        v.next_steps[0].contains("kubectl label node NAME pool=nowhere"),
        "{:?}",
        v.next_steps
    );
}

fn v_nodes() -> Vec<NodeInfo> {
    vec![NodeInfo::ready("x", 8000, 32 * GI, 110)]
}

#[test]
fn memory_and_pod_slots_count_too() {
    let v = run(
        &[NodeInfo::ready("a", 8000, GI, 110)],
        &[],
        &req(100, 600 * MI, 1),
    );
    assert!(!v.pass);
    assert_eq!(reasons(&v, "a"), ["insufficient_memory"]);
    assert!(
        v.next_steps[0]
            .starts_with("needs 2 x 600Mi memory per replica; the largest free node has 1Gi")
    );

    let full: Vec<PodUsage> = (0..109)
        .map(|i| PodUsage::on("a", &format!("p{i}"), 0, 0))
        .collect();
    let v = run(
        &[NodeInfo::ready("a", 8000, 8 * GI, 110)],
        &full,
        &req(100, MI, 1),
    );
    assert!(!v.pass, "a replica needs two pod slots at 2x");
    assert_eq!(reasons(&v, "a"), ["too_many_pods"]);
}

#[test]
fn replicas_spread_to_the_least_allocated_node() {
    let nodes = [
        NodeInfo::ready("a", 4000, 16 * GI, 110),
        NodeInfo::ready("b", 4000, 16 * GI, 110),
        NodeInfo::ready("c", 4000, 16 * GI, 110),
    ];
    let busy = [PodUsage::on("a", "x", 2000, 8 * GI)];
    let v = run(&nodes, &busy, &req(500, 256 * MI, 4));
    assert!(v.pass);
    let placed: Vec<u32> = ["a", "b", "c"].iter().map(|n| node(&v, n).placed).collect();
    assert_eq!(placed, [0, 2, 2]);
}

#[test]
fn capacity_is_summed_across_nodes_not_just_the_largest() {
    // Each node takes one 2 x 1 CPU replica; three nodes take three.
    let nodes: Vec<NodeInfo> = (0..3)
        .map(|i| NodeInfo::ready(&format!("n{i}"), 2500, 4 * GI, 110))
        .collect();
    let v = run(&nodes, &[], &req(1000, MI, 3));
    assert!(v.pass);
    let v = run(&nodes, &[], &req(1000, MI, 4));
    assert!(!v.pass);
    assert_eq!(v.placed, 3);
    assert!(
        v.next_steps[0]
            .starts_with("3 replicas fit; add room for 1 more (a node with at least 2 CPU"),
        "{:?}",
        v.next_steps
    );
}

#[test]
fn components() {
    let nodes = [NodeInfo::ready("a", 4000, 16 * GI, 110)];
    let sel = ComponentSelector::default();
    let missing = ComponentsState::Observed {
        selector: sel.clone(),
        deployments: vec![],
    };
    let v = evaluate(&nodes, &[] as &[PodUsage], &missing, &req(100, MI, 1)).unwrap();
    assert!(!v.pass);
    assert_eq!(v.reason(), "components_not_installed");
    assert_eq!(v.components.state, "not_installed");
    assert!(
        v.failures[0]
            .message
            .contains("app.kubernetes.io/part-of=loco in namespace loco-system")
    );

    let api = |ready| ComponentInfo {
        namespace: "loco-system".into(),
        name: "loco-api".into(),
        desired: 2,
        ready,
        available: ready,
    };
    let unready = ComponentsState::Observed {
        selector: sel.clone(),
        deployments: vec![api(1)],
    };
    let v = evaluate(&nodes, &[] as &[PodUsage], &unready, &req(100, MI, 1)).unwrap();
    assert_eq!(v.reason(), "components_not_ready");
    assert_eq!(
        v.failures[0].message,
        "loco's components are not ready: loco-api (1/2 ready)"
    );
    assert!(v.next_steps[0].contains("kubectl -n loco-system describe deployment loco-api"));

    // A rebuild is not blocked by missing components: it installs them.
    let mut r = req(100, MI, 1);
    r.purpose = Purpose::Rebuild;
    let v = evaluate(&nodes, &[] as &[PodUsage], &unready, &r).unwrap();
    assert!(v.pass);
    assert!(v.next_steps[0].starts_with("warning"));

    let ready = ComponentsState::Observed {
        selector: sel,
        deployments: vec![api(2)],
    };
    let v = evaluate(&nodes, &[] as &[PodUsage], &ready, &req(100, MI, 1)).unwrap();
    assert!(v.pass);
    assert_eq!(v.components.state, "ready");
}

#[test]
fn invalid_requests_are_errors_not_panics() {
    let nodes = [NodeInfo::ready("a", 4000, 16 * GI, 110)];
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY, 101.0] {
        let mut r = req(100, MI, 1);
        r.factor = Some(factor);
        let e = evaluate(&nodes, &[] as &[PodUsage], &ComponentsState::NotChecked, &r).unwrap_err();
        assert_eq!(e.reason(), "invalid_request");
    }
    let e = evaluate(
        &nodes,
        &[] as &[PodUsage],
        &ComponentsState::NotChecked,
        &req(1, 1, MAX_REPLICAS + 1),
    )
    .unwrap_err();
    assert_eq!(e.reason(), "invalid_request");
}

#[test]
fn extreme_values_do_not_panic() {
    let nodes = [
        NodeInfo::ready("max", u64::MAX, u64::MAX, u64::MAX),
        NodeInfo::ready("zero", 0, 0, 0),
        NodeInfo::default(),
    ];
    let pods = [
        PodUsage::on("max", "huge", u64::MAX, u64::MAX),
        PodUsage::on("max", "huge2", u64::MAX, u64::MAX),
    ];
    let mut r = req(u64::MAX, u64::MAX, MAX_REPLICAS);
    r.factor = Some(100.0);
    let v = run(&nodes, &pods, &r);
    assert!(!v.pass);
    // Zero-sized replicas fit everywhere there is a pod slot.
    let v = run(&nodes, &[], &req(0, 0, 1000));
    assert!(v.pass);
    assert_eq!(node(&v, "max").placed, 1000);
    assert_eq!(run(&nodes, &[], &req(1, 1, 0)).placed, 0);
}

#[test]
fn json_output_has_stable_reasons() {
    let mut a = NodeInfo::ready("a", 100, GI, 110);
    a.unschedulable = true;
    let v = run(&[a], &[], &req(500, MI, 1));
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["pass"], false);
    assert_eq!(j["purpose"], "deploy");
    assert_eq!(j["failures"][0]["reason"], "no_eligible_nodes");
    assert_eq!(j["nodes"][0]["problems"][0]["reason"], "cordoned");
    assert_eq!(j["nodes"][0]["problems"][1]["reason"], "insufficient_cpu");
    assert_eq!(j["nodes"][0]["problems"][1]["need_millis"], 1000);
}

/// Not a timed assertion: prints what one evaluation of a bench-sized cluster costs.
/// `cargo test --release -p loco-preflight --lib -- --ignored --nocapture evaluation_cost`
#[test]
#[ignore]
fn evaluation_cost() {
    let nodes: Vec<std::sync::Arc<NodeInfo>> = (0..1000)
        .map(|i| {
            let mut n = NodeInfo::ready(&format!("pf-bench-{i:04}"), 4000, 16 * GI, 110);
            n.labels
                .insert("loco.test/bench".into(), "preflight".into());
            n.labels
                .insert("kubernetes.io/hostname".into(), n.name.clone());
            n.taints.push(Taint::new(
                "loco.test/bench",
                Some("preflight"),
                TaintEffect::NoSchedule,
            ));
            std::sync::Arc::new(n)
        })
        .collect();
    let pods: Vec<std::sync::Arc<PodUsage>> = (0..10_000)
        .map(|i| {
            std::sync::Arc::new(PodUsage::on(
                &format!("pf-bench-{:04}", i % 1000),
                &format!("p{i}"),
                100,
                128 * MI,
            ))
        })
        .collect();
    let mut r = req(500, 256 * MI, 10);
    r.node_selector
        .insert("loco.test/bench".into(), "preflight".into());
    r.tolerations.push(Toleration {
        key: Some("loco.test/bench".into()),
        operator: TolerationOperator::Exists,
        ..Toleration::default()
    });
    let mut t = Vec::new();
    for _ in 0..200 {
        let start = std::time::Instant::now();
        let v = evaluate(&nodes, &pods, &ComponentsState::NotChecked, &r).unwrap();
        t.push(start.elapsed());
        assert!(v.pass);
    }
    t.sort();
    eprintln!(
        "evaluate 1000 nodes / 10000 pods: p50 {:?} p99 {:?}",
        t[100], t[197]
    );
}

// --- Changes to a running app: only what the change adds is asked for.

const APP_NS: &str = "wks-1-app-2";

/// Two nodes filled to the brim: each holds 5 of the app's pods (100m / 64Mi) and a
/// filler pod of another app that takes the rest.
fn full_cluster() -> (Vec<NodeInfo>, Vec<PodUsage>) {
    let nodes = vec![
        NodeInfo::ready("a", 1000, GI, 110),
        NodeInfo::ready("b", 1000, GI, 110),
    ];
    let mut pods = Vec::new();
    for (n, node) in ["a", "b"].into_iter().enumerate() {
        for i in 0..5 {
            let mut p = PodUsage::on(node, &format!("app-{n}{i}"), 100, 64 * MI);
            p.namespace = APP_NS.into();
            pods.push(p);
        }
        pods.push(PodUsage::on(
            node,
            &format!("filler-{node}"),
            500,
            GI - 320 * MI,
        ));
    }
    (nodes, pods)
}

fn change(cpu: u64, mem: u64, replicas: u32, replaces_pods: bool) -> Request {
    let mut r = req(cpu, mem, replicas);
    r.rollout = Some(Rollout {
        namespace: APP_NS.into(),
        replaces_pods,
        max_surge: 1,
        max_unavailable: 0,
    });
    r
}

/// Frees `cpu`/`mem` on node `node` by shrinking its filler pod.
fn free_on(pods: &mut [PodUsage], node: &str, cpu: u64, mem: u64) {
    let f = pods
        .iter_mut()
        .find(|p| p.name == format!("filler-{node}"))
        .unwrap();
    f.requests.cpu_millis -= cpu;
    f.requests.memory_bytes -= mem;
}

#[test]
fn a_scale_down_and_a_rollback_to_smaller_pods_pass_on_a_full_cluster() {
    let (nodes, pods) = full_cluster();
    // Without a rollout, 5 replicas are asked for in full: nothing is free.
    assert!(!run(&nodes, &pods, &req(100, 64 * MI, 5)).pass);
    // Scale 10 -> 5: the count only; the change adds nothing.
    let v = run(&nodes, &pods, &change(100, 64 * MI, 5, false));
    assert!(v.pass, "{v:#?}");
    let c = v.change.as_ref().unwrap();
    assert_eq!((c.running, c.new_pods, c.adds), (10, 5, 0));
    assert_eq!((v.replicas, v.placed), (0, 0));
    // A rollback to a smaller revision (3 pods of 50m): the rollout never needs more
    // pods than run now.
    let v = run(&nodes, &pods, &change(50, 32 * MI, 3, true));
    assert!(v.pass, "{v:#?}");
    assert_eq!(v.change.unwrap().adds, 0);
    // Nothing added passes whatever the nodes and loco's components look like.
    let cordoned: Vec<NodeInfo> = nodes
        .iter()
        .cloned()
        .map(|mut n| {
            n.unschedulable = true;
            n
        })
        .collect();
    let unready = ComponentsState::Observed {
        selector: ComponentSelector::default(),
        deployments: vec![],
    };
    let v = evaluate(&cordoned, &pods, &unready, &change(100, 64 * MI, 5, false)).unwrap();
    assert!(v.pass, "{v:#?}");
    assert!(v.next_steps[0].starts_with("warning"), "{:?}", v.next_steps);
    let v = evaluate(
        &[] as &[NodeInfo],
        &pods,
        &unready,
        &change(100, 64 * MI, 5, false),
    )
    .unwrap();
    assert!(v.pass, "{v:#?}");
}

#[test]
fn a_rolling_update_on_a_full_cluster_is_judged_by_its_surge() {
    let (nodes, mut pods) = full_cluster();
    let update = change(100, 64 * MI, 10, true);
    // Full: not even the one surge pod fits.
    let v = run(&nodes, &pods, &update);
    assert!(!v.pass);
    assert_eq!((v.replicas, v.placed), (1, 0));
    assert_eq!(
        v.failures[0].message,
        "0 of the 1 pod the change adds (a rolling update of 10 running pods to 10, 1 beyond the count at a time) fit with 2x headroom (each placed as 200m CPU, 128Mi memory) on 2 eligible nodes"
    );
    // One pod's room free: enough at factor 1, not at the deploy's 2x.
    free_on(&mut pods, "a", 100, 64 * MI);
    let mut at_one = update.clone();
    at_one.factor = Some(1.0);
    assert!(run(&nodes, &pods, &at_one).pass);
    assert!(!run(&nodes, &pods, &update).pass);
    // Room for the surge times the factor: it passes, while asking for all ten new pods
    // (the check before a rollout was known) would be refused.
    free_on(&mut pods, "a", 100, 64 * MI);
    let v = run(&nodes, &pods, &update);
    assert!(v.pass, "{v:#?}");
    assert_eq!((v.placed, node(&v, "a").placed), (1, 1));
    assert!(!run(&nodes, &pods, &req(100, 64 * MI, 10)).pass);
}

#[test]
fn a_scale_up_asks_for_the_difference_and_names_the_shortfall() {
    let (nodes, mut pods) = full_cluster();
    free_on(&mut pods, "a", 200, 128 * MI);
    free_on(&mut pods, "b", 200, 128 * MI);
    // 10 -> 14: four more pods at 2x; room for two.
    let v = run(&nodes, &pods, &change(100, 64 * MI, 14, false));
    assert!(!v.pass);
    assert_eq!(v.change.as_ref().unwrap().adds, 4);
    assert_eq!(v.placed, 2);
    assert!(
        v.failures[0]
            .message
            .starts_with("2 of the 4 pods the change adds (10 running pods, 14 wanted) fit"),
        "{}",
        v.failures[0].message
    );
    assert!(
        v.next_steps[0].starts_with("2 replicas fit; add room for 2 more"),
        "{:?}",
        v.next_steps
    );
    // 10 -> 12 fits exactly.
    assert!(run(&nodes, &pods, &change(100, 64 * MI, 12, false)).pass);
    // A scale-up with a new template adds its surge too: 12 + 1 - 10 = 3.
    let v = run(&nodes, &pods, &change(100, 64 * MI, 12, true));
    assert_eq!((v.replicas, v.pass), (3, false));
}

#[test]
fn larger_new_pods_need_the_difference_times_the_factor() {
    let (nodes, mut pods) = full_cluster();
    // 150m instead of 100m: the surge pod (300m at 2x) fits on a, but ten pods need
    // 10 x 50m x 2 = 1000m more than the old ones free.
    free_on(&mut pods, "a", 400, 256 * MI);
    let v = run(&nodes, &pods, &change(150, 64 * MI, 10, true));
    assert!(!v.pass, "{v:#?}");
    let c = v.change.as_ref().unwrap();
    assert!(c.larger_pods);
    assert_eq!(v.placed, 1, "the surge itself fits");
    assert_eq!(c.replaced_fit, 7);
    assert!(
        v.failures[0].message.starts_with(
            "the new pods (150m CPU, 64Mi memory each) are larger than the app's 10 running pods: 7 of 10 fit"
        ),
        "{}",
        v.failures[0].message
    );
    // Room for the difference on both nodes: it passes.
    free_on(&mut pods, "a", 100, 0);
    free_on(&mut pods, "b", 500, 0);
    let v = run(&nodes, &pods, &change(150, 64 * MI, 10, true));
    assert!(v.pass, "{v:#?}");
    assert_eq!(v.change.unwrap().replaced_fit, 10);
}

#[test]
fn the_apps_pending_pods_free_nothing_and_other_namespaces_are_not_the_app() {
    let nodes = vec![NodeInfo::ready("a", 1000, GI, 110)];
    let mut pods = Vec::new();
    for i in 0..3 {
        let mut p = PodUsage::on("a", &format!("app-{i}"), 100, 64 * MI);
        p.namespace = APP_NS.into();
        pods.push(p);
    }
    let mut pending = PodUsage::on("a", "app-pending", 100, 64 * MI);
    pending.namespace = APP_NS.into();
    pending.node_name = None;
    pods.push(pending);
    // Same names in another namespace belong to another app.
    let mut other = PodUsage::on("a", "app-0", 100, 64 * MI);
    other.namespace = "wks-1-app-3".into();
    pods.push(other);
    let v = run(&nodes, &pods, &change(100, 64 * MI, 5, false));
    let c = v.change.unwrap();
    assert_eq!((c.running, c.pending, c.adds), (3, 1, 2));
}

#[test]
fn a_recreate_rollout_adds_no_surge() {
    let (nodes, pods) = full_cluster();
    let mut r = change(100, 64 * MI, 10, true);
    r.rollout.as_mut().unwrap().max_surge = 0;
    r.rollout.as_mut().unwrap().max_unavailable = 10;
    let v = run(&nodes, &pods, &r);
    assert!(v.pass, "{v:#?}");
    assert_eq!(v.change.unwrap().adds, 0);
}
