//! Replicas and autoscaling: the min/max/target arithmetic and its checks.

use super::*;

/// Replica bounds as read from one place (a region or a profile).
#[derive(Default, Clone)]
pub(super) struct ReplicaInput {
    pub(super) min: Option<From<i64>>,
    pub(super) max: Option<From<i64>>,
}

/// Autoscaling as read from a region, in either of loco's two spellings.
pub(super) struct ScaleInput {
    pub(super) enabled: Option<From<bool>>,
    pub(super) cpu: Option<From<i64>>,
    pub(super) memory: Option<From<i64>>,
}

/// 1 <= min <= max <= cap. Returns the bounds when they hold.
pub(super) fn check_replicas(
    cx: &mut Ctx<'_>,
    r: &ReplicaInput,
    anchor: &Range<usize>,
    anchor_path: &str,
) -> Option<ReplicaBounds> {
    let cap = i64::from(cx.opts.max_replicas);
    let mut ok = true;
    let min = match &r.min {
        Some(m) if m.value < 1 => {
            cx.issues.push(
                m.span.clone(),
                m.path.clone(),
                E::InvalidReplicas,
                format!("minimum replicas is {}, below 1", m.value),
                "run at least 1 replica; to stop an app when idle use [Sleep] instead",
            );
            ok = false;
            1
        }
        Some(m) => m.value,
        None => defaults::REPLICAS_MIN,
    };
    let max = r.max.as_ref().map_or(min, |m| m.value);
    if let Some(m) = &r.max
        && m.value < min
    {
        let min_at = r
            .min
            .as_ref()
            .map_or(String::from("the default minimum"), |x| x.path.clone());
        cx.issues.push(
            m.span.clone(),
            m.path.clone(),
            E::InvalidReplicas,
            format!(
                "maximum replicas {} is below the minimum {min} ({min_at})",
                m.value
            ),
            format!("raise the maximum to at least {min} or lower the minimum"),
        );
        ok = false;
    }
    if max > cap {
        let (span, path) = match (&r.max, &r.min) {
            (Some(m), _) => (m.span.clone(), m.path.clone()),
            (None, Some(m)) => (m.span.clone(), m.path.clone()),
            (None, None) => (anchor.clone(), anchor_path.to_owned()),
        };
        cx.issues.push(
            span,
            path,
            E::InvalidReplicas,
            format!("{max} replicas is above this platform's cap of {cap}"),
            format!("use at most {cap} replicas, or ask the operator to raise the cap"),
        );
        ok = false;
    }
    let (min, max) = (u32::try_from(min).ok()?, u32::try_from(max).ok()?);
    ok.then_some(ReplicaBounds { min, max })
}

pub(super) fn check_scale(
    cx: &mut Ctx<'_>,
    s: &ScaleInput,
    anchor: &Range<usize>,
    anchor_path: &str,
) -> Option<Autoscaling> {
    let enabled = s.enabled.as_ref().is_some_and(|e| e.value);
    let mut set = Vec::new();
    for (t, metric) in [(&s.cpu, ScaleMetric::Cpu), (&s.memory, ScaleMetric::Memory)] {
        let Some(t) = t else { continue };
        if !(0..=100).contains(&t.value) {
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::InvalidAutoscaling,
                format!("target {}% is outside 1-100", t.value),
                "set a utilisation percent from 1 to 100 (0 means unset)",
            );
            continue;
        }
        if t.value == 0 {
            continue;
        }
        if !enabled {
            let switch = s
                .enabled
                .as_ref()
                .map_or("EnableAutoScaling = true".to_owned(), |e| {
                    format!("{} = true", e.path.rsplit('.').next().unwrap_or("Enabled"))
                });
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::InvalidAutoscaling,
                "a target is set but autoscaling is off",
                format!("set {switch} to autoscale, or set the target to 0 (unset)"),
            );
            continue;
        }
        set.push((t, metric));
    }
    if !enabled {
        return None;
    }
    match set.as_slice() {
        [] => {
            let (span, path) = s
                .enabled
                .as_ref()
                .map_or((anchor.clone(), anchor_path.to_owned()), |e| {
                    (e.span.clone(), e.path.clone())
                });
            cx.issues.push(
                span,
                path,
                E::InvalidAutoscaling,
                "autoscaling is on but neither CPUTarget nor MemoryTarget is set",
                "set exactly one of CPUTarget or MemoryTarget (1-100), e.g. CPUTarget = 70",
            );
            None
        }
        [(t, metric)] => Some(Autoscaling {
            metric: *metric,
            target_percent: u8::try_from(t.value).ok()?,
        }),
        [_, (second, _), ..] => {
            cx.issues.push(
                second.span.clone(),
                second.path.clone(),
                E::InvalidAutoscaling,
                "both CPUTarget and MemoryTarget are set",
                "set exactly one of CPUTarget or MemoryTarget; set the other to 0 or remove it",
            );
            None
        }
    }
}
