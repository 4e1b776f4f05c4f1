//! Which apps a rebuild applies, and when: whole workspaces in bounded waves, each app
//! weighed by preflight at factor 1 against the nodes and the pods the rebuild has
//! already placed.

use std::collections::BTreeMap;

use super::{AppOutcome, Outcome, outcome_of};
use crate::desired::{DesiredApp, Rendering};
use crate::error::Error;
use loco_preflight::{ComponentsState, NodeInfo, PodUsage, Purpose};

/// Whole workspaces per wave, at most `size` apps (a workspace larger than `size` is a
/// wave of its own), in the database's order.
pub(super) fn waves<'a>(apps: &[&'a DesiredApp], size: usize) -> Vec<Vec<&'a DesiredApp>> {
    let size = size.max(1);
    let mut by_ws: Vec<Vec<&'a DesiredApp>> = Vec::new();
    for a in apps {
        match by_ws.last_mut() {
            Some(w) if w.first().is_some_and(|f| f.workspace_id == a.workspace_id) => w.push(a),
            _ => by_ws.push(vec![a]),
        }
    }
    let mut out: Vec<Vec<&'a DesiredApp>> = Vec::new();
    for ws in by_ws {
        match out.last_mut() {
            Some(w) if w.len() + ws.len() <= size => w.extend(ws),
            _ => out.push(ws),
        }
    }
    out
}

pub(super) fn preflight_failed(e: loco_preflight::Error) -> Error {
    Error::Failed(format!(
        "preflight could not read the cluster: {e}; the wave was not applied"
    ))
}

/// Preflight of one wave at factor 1 (Purpose::Rebuild) on `nodes` and the `pods` the
/// rebuild accounts for; each admitted app's pods are added to `pods`, so they count
/// against the next app and the next wave. Refused apps get their outcome.
pub(super) fn preflight<'a>(
    nodes: &[NodeInfo],
    pods: &mut Vec<PodUsage>,
    wave: &[&'a DesiredApp],
    outcomes: &mut BTreeMap<i64, AppOutcome>,
) -> Result<Vec<&'a DesiredApp>, Error> {
    let mut admitted = Vec::new();
    for a in wave {
        let Rendering::Rendered { rendered, spec } = &a.render else {
            continue;
        };
        let max = spec.autoscaling.as_ref().map(|_| spec.replicas.max);
        let Some(req) = loco_deploy::gate::request_for_change(
            rendered,
            Some(rendered),
            Purpose::Rebuild,
            max,
            None,
            spec.profile.as_deref(),
        ) else {
            admitted.push(*a);
            continue;
        };
        let verdict = loco_preflight::evaluate(nodes, pods, &ComponentsState::NotChecked, &req)
            .map_err(|e| Error::Failed(format!("preflight of {} failed: {e}", a.name)))?;
        if !verdict.pass {
            outcomes.insert(
                a.app_id,
                outcome_of(
                    a,
                    Outcome::PreflightRefused,
                    0,
                    Some(loco_deploy::gate::summary(&verdict)),
                ),
            );
            continue;
        }
        for n in &verdict.nodes {
            for i in 0..n.placed {
                pods.push(PodUsage::on(
                    &n.name,
                    &format!("rebuild-{}-{i}", a.app_id),
                    verdict.per_replica.cpu_millis,
                    verdict.per_replica.memory_bytes,
                ));
            }
        }
        admitted.push(*a);
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loco_render::RenderInput;

    /// An app of `replicas` pods at `cpu` each, rendered as a rebuild renders it.
    fn app(app_id: i64, workspace_id: i64, cpu: &str, replicas: u32) -> DesiredApp {
        let src = format!(
            "[Metadata]\nName = \"app{app_id}\"\nRegion = \"fra1\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/h\"\n[RegionConfig.fra1]\nCPU = \"{cpu}\"\nReplicasMin = 1\nReplicasMax = 10\n"
        );
        let v = loco_spec::validate(&src, "loco.toml", &Default::default()).unwrap();
        let rendered = loco_render::render(&RenderInput {
            deployment_id: app_id * 10,
            template_deployment_id: app_id * 10,
            replicas: Some(replicas),
            ..RenderInput::export(
                1,
                workspace_id,
                app_id,
                v.spec.clone(),
                v.env_values,
                format!("registry.example/app@sha256:{}", "a".repeat(64)),
            )
        })
        .unwrap();
        DesiredApp {
            app_id,
            org_id: 1,
            workspace_id,
            name: format!("app{app_id}"),
            host: format!("app{app_id}.loco.test"),
            path_prefix: "/".to_owned(),
            namespace: loco_render::namespace_name(workspace_id, app_id),
            deployment_id: Some(app_id * 10),
            asleep: false,
            replicas: Some(replicas as i32),
            render: Rendering::Rendered {
                rendered: Box::new(rendered),
                spec: Box::new(v.spec),
            },
        }
    }

    fn ids(apps: &[&DesiredApp]) -> Vec<i64> {
        apps.iter().map(|a| a.app_id).collect()
    }

    #[test]
    fn pods_placed_by_one_wave_count_against_the_next() {
        // One node with room for four pods of 300m: the first wave places two, so the
        // second wave, weighed before the controllers have made any pod, has room for
        // two more and no further. Weighing each wave against the cluster's pods alone
        // (none yet) would admit all three apps and overcommit the node.
        let nodes = vec![NodeInfo::ready("n1", 1_200, 64 << 30, 110)];
        let (a, b, c) = (
            app(1, 1, "300m", 2),
            app(2, 2, "300m", 2),
            app(3, 3, "300m", 1),
        );
        let mut pods = Vec::new();
        let mut outcomes = BTreeMap::new();
        let first = preflight(&nodes, &mut pods, &[&a], &mut outcomes).unwrap();
        assert_eq!(ids(&first), vec![1]);
        assert_eq!(pods.len(), 2, "the admitted app's pods are accounted for");
        let second = preflight(&nodes, &mut pods, &[&b, &c], &mut outcomes).unwrap();
        assert_eq!(
            ids(&second),
            vec![2],
            "app 3 finds no room left by apps 1 and 2"
        );
        assert_eq!(pods.len(), 4);
        let refused = &outcomes[&3];
        assert_eq!(refused.outcome, Outcome::PreflightRefused);
        assert!(
            refused.message.as_deref().is_some_and(|m| !m.is_empty()),
            "the refusal says why: {refused:?}"
        );
        assert!(!outcomes.contains_key(&1) && !outcomes.contains_key(&2));
    }

    #[test]
    fn pods_already_running_count_too() {
        let nodes = vec![NodeInfo::ready("n1", 1_000, 64 << 30, 110)];
        let mut pods = vec![PodUsage::on("n1", "running", 800, 1 << 30)];
        let mut outcomes = BTreeMap::new();
        let a = app(1, 1, "300m", 1);
        let admitted = preflight(&nodes, &mut pods, &[&a], &mut outcomes).unwrap();
        assert!(admitted.is_empty());
        assert_eq!(outcomes[&1].outcome, Outcome::PreflightRefused);
    }

    #[test]
    fn waves_keep_workspaces_whole() {
        let apps = [
            app(1, 1, "100m", 1),
            app(2, 1, "100m", 1),
            app(3, 2, "100m", 1),
            app(4, 3, "100m", 1),
        ];
        let refs: Vec<&DesiredApp> = apps.iter().collect();
        let w: Vec<Vec<i64>> = waves(&refs, 3).iter().map(|w| ids(w)).collect();
        assert_eq!(w, vec![vec![1, 2, 3], vec![4]]);
        // A workspace larger than the wave size is a wave of its own.
        let w: Vec<Vec<i64>> = waves(&refs, 1).iter().map(|w| ids(w)).collect();
        assert_eq!(w, vec![vec![1, 2], vec![3], vec![4]]);
    }
}
