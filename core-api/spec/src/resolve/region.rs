//! Regions: reading one region table and choosing the region a deploy goes to.

use super::*;

pub(super) struct RegionOut {
    pub(super) cpu: Option<From<String>>,
    pub(super) memory: Option<From<String>>,
    pub(super) tmp_size: Option<From<String>>,
    pub(super) replicas: ReplicaInput,
    pub(super) scale: ScaleInput,
}

/// Picks one of two spellings of the same setting, refusing both at once.
pub(super) fn one_of<T: Clone>(
    cx: &mut Ctx<'_>,
    flat: Option<From<T>>,
    table: Option<From<T>>,
) -> Option<From<T>> {
    match (flat, table) {
        (Some(f), Some(t)) => {
            cx.issues.push(
                t.span.clone(),
                t.path.clone(),
                E::ConflictingKeys,
                format!("{} and {} set the same thing", f.path, t.path),
                format!("keep one of them; remove {}", f.path),
            );
            Some(t)
        }
        (f, t) => t.or(f),
    }
}

pub(super) fn read_region(cx: &mut Ctx<'_>, r: &raw::Region, path: &str) -> RegionOut {
    let p = |k: &str| join(path, k);
    let table_min = r
        .replicas
        .as_ref()
        .and_then(|t| from(&t.min, format!("{}.Min", p("Replicas"))));
    let table_max = r
        .replicas
        .as_ref()
        .and_then(|t| from(&t.max, format!("{}.Max", p("Replicas"))));
    let replicas = ReplicaInput {
        min: one_of(cx, from(&r.replicas_min, p("ReplicasMin")), table_min),
        max: one_of(cx, from(&r.replicas_max, p("ReplicasMax")), table_max),
    };
    let s = r.scalers.as_ref();
    let scale = ScaleInput {
        enabled: one_of(
            cx,
            from(&r.enable_autoscaling, p("EnableAutoScaling")),
            s.and_then(|s| from(&s.enabled, format!("{}.Enabled", p("Scalers")))),
        ),
        cpu: one_of(
            cx,
            from(&r.cpu_target, p("CPUTarget")),
            s.and_then(|s| from(&s.cpu_target, format!("{}.CPUTarget", p("Scalers")))),
        ),
        memory: one_of(
            cx,
            from(&r.memory_target, p("MemoryTarget")),
            s.and_then(|s| from(&s.memory_target, format!("{}.MemoryTarget", p("Scalers")))),
        ),
    };
    RegionOut {
        cpu: from(&r.cpu, p("CPU")),
        memory: from(&r.memory, p("Memory")),
        tmp_size: from(&r.tmp_size, p("TmpSize")),
        replicas,
        scale,
    }
}

pub(super) fn select_region(
    cx: &mut Ctx<'_>,
    doc: &raw::LocoToml,
    meta: &raw::Metadata,
    regions: &BTreeMap<String, RegionOut>,
) -> Option<String> {
    let chosen = match (&meta.region, &doc.primary_region) {
        (Some(a), Some(b)) if a.value != b.value => {
            cx.issues.push(
                b.span.clone(),
                "PrimaryRegion",
                E::ConflictingKeys,
                format!(
                    "PrimaryRegion {:?} differs from Metadata.Region {:?}",
                    b.value, a.value
                ),
                "remove PrimaryRegion; Metadata.Region names the deploy region",
            );
            Some((a, "Metadata.Region"))
        }
        (Some(a), _) => Some((a, "Metadata.Region")),
        (None, Some(b)) => Some((b, "PrimaryRegion")),
        (None, None) => None,
    };
    let names: Vec<&str> = regions.keys().map(String::as_str).collect();
    match chosen {
        Some((r, path)) => {
            if doc.regions.is_none() || regions.contains_key(&r.value) {
                if doc.regions.is_none() {
                    cx.dns_name(r, path, "region");
                }
                return Some(r.value.clone());
            }
            let hint = match suggest(&r.value, names.iter().copied()) {
                Some(s) => format!(
                    "did you mean {s:?}? Regions in this file: {}",
                    names.join(", ")
                ),
                None if names.is_empty() => format!(
                    "add a [RegionConfig.{}] table with CPU and Memory",
                    crate::read::key_segment(&r.value)
                ),
                None => format!(
                    "use one of: {}, or add [RegionConfig.{}]",
                    names.join(", "),
                    crate::read::key_segment(&r.value)
                ),
            };
            cx.issues.push(
                r.span.clone(),
                path,
                E::RegionNotFound,
                format!("region {:?} has no [RegionConfig] entry", r.value),
                hint,
            );
            None
        }
        None => match names.as_slice() {
            [] if doc.regions.is_none() => Some(cx.opts.default_region.clone()),
            [only] => Some((*only).to_owned()),
            _ => {
                cx.missing(
                    meta.span.clone(),
                    "Metadata.Region",
                    "Metadata.Region",
                    if names.is_empty() {
                        "add a [RegionConfig.<region>] table, or remove the empty [RegionConfig]".into()
                    } else {
                        format!("this file configures several regions; set Region under [Metadata] to one of: {}", names.join(", "))
                    },
                );
                None
            }
        },
    }
}
