//! The [Env] table: plain values and references.

use super::*;

pub(super) fn resolve_env(
    cx: &mut Ctx<'_>,
    env: Option<&raw::Env>,
    profile: Option<&raw::Profile>,
) -> (Env, EnvValues) {
    let mut file = None;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if let Some(e) = env {
        check_env_table(cx, e, "Env");
        file = e.file.as_ref().map(|f| f.value.clone());
        if let Some(vars) = &e.variables {
            for (k, v) in &vars.0 {
                values.insert(k.value.clone(), v.value.0.clone());
            }
        }
    }
    // Profile tables were checked with the other profiles; here they are only merged.
    if let Some(pe) = profile.and_then(|p| p.env.as_ref()) {
        if let Some(f) = &pe.file {
            file = Some(f.value.clone());
        }
        if let Some(vars) = &pe.variables {
            for (k, v) in &vars.0 {
                values.insert(k.value.clone(), v.value.0.clone());
            }
        }
    }
    // loco's own files write `File = ""` for "no file".
    let file = file.filter(|f| !f.is_empty());
    let variables = values
        .keys()
        .map(|name| EnvVar {
            name: name.clone(),
            source: EnvSource::Inline,
        })
        .collect();
    (Env { file, variables }, EnvValues::new(values))
}
