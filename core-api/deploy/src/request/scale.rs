//! Scale arithmetic: a scale request applied to a spec and a replica count, and whether
//! the result still renders the same pod template (then no pod is replaced).

use super::RequestError;
use super::validate::invalid;
use loco_spec::ResolvedSpec;

/// Whether two specs render the same pod template: the replica bounds are the only part
/// of a spec that never reaches it (they size the Deployment or the HPA).
pub(super) fn same_pod_template(before: &ResolvedSpec, after: &ResolvedSpec) -> bool {
    let mut before = before.clone();
    before.replicas = after.replicas;
    before == *after
}

/// Applies a scale change to the spec and replica count; returns what changed.
pub(super) fn scale(
    spec: &mut ResolvedSpec,
    replicas: &mut i32,
    r: Option<u32>,
    cpu: Option<String>,
    memory: Option<String>,
    cap: u32,
) -> Result<String, RequestError> {
    let mut what = Vec::new();
    if r.is_none() && cpu.is_none() && memory.is_none() {
        return Err(invalid(
            "scale",
            "nothing to change",
            "send at least one of replicas, cpu, memory",
        ));
    }
    if let Some(n) = r {
        if spec.autoscaling.is_some() {
            return Err(invalid(
                "replicas",
                "the app autoscales: its HPA owns the replica count",
                "change Replicas.Min/Max in loco.toml and deploy it, or turn autoscaling off",
            ));
        }
        if n > cap {
            return Err(invalid(
                "replicas",
                format!("at most {cap} replicas on this platform"),
                format!("send a number from 0 to {cap}"),
            ));
        }
        *replicas = i32::try_from(n).unwrap_or(i32::MAX);
        spec.replicas.max = spec.replicas.max.max(n);
        spec.replicas.min = spec.replicas.min.min(n.max(1));
        what.push(format!("{n} replicas"));
    }
    if let Some(c) = cpu {
        let millis = loco_preflight::quantity::cpu_millis(&c).map_err(|e| {
            invalid(
                "cpu",
                format!("{c:?} is not a CPU quantity: {e}"),
                "send e.g. \"500m\" or \"1\"",
            )
        })?;
        if millis == 0 {
            return Err(invalid("cpu", "must be more than 0", "send e.g. \"250m\""));
        }
        spec.resources.cpu = c.clone();
        spec.resources.cpu_millis = millis;
        what.push(format!("cpu {c}"));
    }
    if let Some(m) = memory {
        let bytes = loco_preflight::quantity::bytes(&m).map_err(|e| {
            invalid(
                "memory",
                format!("{m:?} is not a memory quantity: {e}"),
                "send e.g. \"512Mi\" or \"1Gi\" (Mi/Gi, not MB)",
            )
        })?;
        if bytes < 4 * 1024 * 1024 {
            return Err(invalid(
                "memory",
                "must be at least 4Mi",
                "send e.g. \"256Mi\"",
            ));
        }
        spec.resources.memory = m.clone();
        spec.resources.memory_bytes = bytes;
        what.push(format!("memory {m}"));
    }
    Ok(format!("scale: {}", what.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::{same_pod_template, scale};
    use loco_spec::ResolvedSpec;

    fn spec() -> ResolvedSpec {
        let src =
            "[Metadata]\nName = \"web\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n";
        loco_spec::validate(src, "loco.toml", &Default::default())
            .unwrap()
            .spec
    }

    fn scaled(r: Option<u32>, cpu: Option<&str>, memory: Option<&str>) -> ResolvedSpec {
        let mut s = spec();
        let mut replicas = 1;
        scale(
            &mut s,
            &mut replicas,
            r,
            cpu.map(str::to_owned),
            memory.map(str::to_owned),
            20,
        )
        .unwrap();
        s
    }

    #[test]
    fn only_a_replica_only_scale_keeps_the_pod_template() {
        let base = spec();
        let more = scaled(Some(5), None, None);
        assert_ne!(more.replicas, base.replicas, "the bounds widen to 5");
        assert!(same_pod_template(&base, &more));
        assert!(same_pod_template(&base, &scaled(Some(0), None, None)));
        assert!(!same_pod_template(
            &base,
            &scaled(Some(2), Some("250m"), None)
        ));
        assert!(!same_pod_template(&base, &scaled(None, None, Some("1Gi"))));
        // The same quantity as before renders the same requests.
        let cpu = base.resources.cpu.clone();
        assert!(same_pod_template(&base, &scaled(None, Some(&cpu), None)));
    }
}
