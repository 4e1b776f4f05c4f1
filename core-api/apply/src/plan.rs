//! The pure half of apply: the bodies apply sends, and for each the decision to write or
//! skip given what the cluster holds. No I/O here.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use super::error::ApplyError;
use super::hash::{ANNOTATION_APPLIED_HASH, hash_body};
use super::resource::kube_resource;
use loco_render::{Object, ObjectRef, Phase, Rendered};

/// One object ready to send: the body (annotation stamped) and what decisions need.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub reference: ObjectRef,
    pub phase: Phase,
    pub resource: ApiResource,
    pub body: DynamicObject,
    pub hash: String,
    /// A Secret's data (`stringData` folded in, as the API server does), compared with
    /// the live Secret because the hash leaves it out.
    pub secret_data: Option<BTreeMap<String, Vec<u8>>>,
}

/// Only names: a Prepared holds Secret data, and Debug output ends up in logs.
impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("reference", &self.reference)
            .field("phase", &self.phase)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Builds the bodies of an app's objects, in apply order.
pub(crate) fn prepare(rendered: &Rendered) -> Result<Vec<Prepared>, ApplyError> {
    let mut out: Vec<Prepared> = rendered
        .objects
        .iter()
        .map(|o| prepare_one(o.phase, &o.object))
        .collect::<Result<_, _>>()?;
    // Render already sorts by phase; a stable sort keeps that promise for hand-built input.
    out.sort_by_key(|p| p.phase);
    Ok(out)
}

fn prepare_one(phase: Phase, object: &Object) -> Result<Prepared, ApplyError> {
    let reference = object.reference();
    let failed = |message: String| ApplyError::Prepare {
        object: Box::new(reference.clone()),
        message,
    };
    let is_secret = matches!(object, Object::Secret(_));
    let mut body = object.to_json().map_err(|e| failed(e.to_string()))?;
    let hash = hash_body(&body, is_secret);
    let annotations = body
        .as_object_mut()
        .map(|b| {
            b.entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()))
        })
        .and_then(Value::as_object_mut)
        .map(|m| {
            m.entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()))
        })
        .and_then(Value::as_object_mut)
        .ok_or_else(|| failed("the object has no metadata map".to_owned()))?;
    annotations.insert(
        ANNOTATION_APPLIED_HASH.to_owned(),
        Value::String(hash.clone()),
    );
    // Never print the serde error of a Secret body: it may quote the data.
    let body: DynamicObject = serde_json::from_value(body).map_err(|e| {
        failed(if is_secret {
            "the Secret does not convert to a dynamic object".to_owned()
        } else {
            e.to_string()
        })
    })?;
    let secret_data = match object {
        Object::Secret(s) => {
            let mut data: BTreeMap<String, Vec<u8>> = s
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            for (k, v) in s.string_data.iter().flatten() {
                data.insert(k.clone(), v.as_bytes().to_vec());
            }
            Some(data)
        }
        _ => None,
    };
    Ok(Prepared {
        resource: kube_resource(&object.api_resource()),
        reference,
        phase,
        body,
        hash,
        secret_data,
    })
}

/// What the cluster holds of one object, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LiveMeta {
    pub managed: bool,
    pub hash: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub deleting: bool,
}

impl LiveMeta {
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            managed: super::resource::is_managed(meta.labels.as_ref()),
            hash: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_APPLIED_HASH))
                .cloned(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

/// What apply does with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Absent: write it (a failed first deploy deletes it again).
    Create,
    /// Present and different (or `force`): write it.
    Update,
    /// A Secret whose hash matches: write it only if its data differs from the live data.
    CompareSecretData,
    /// Present and identical: nothing to send.
    Skip,
}

/// The decision for one object. Refuses anything that exists without loco's label.
pub(crate) fn decide(
    desired: &Prepared,
    live: Option<&LiveMeta>,
    force: bool,
) -> Result<Action, ApplyError> {
    let Some(live) = live else {
        return Ok(Action::Create);
    };
    if !live.managed {
        return Err(ApplyError::NotManagedByLoco {
            object: Box::new(desired.reference.clone()),
        });
    }
    if force || live.hash.as_deref() != Some(desired.hash.as_str()) {
        return Ok(Action::Update);
    }
    Ok(if desired.secret_data.is_some() {
        Action::CompareSecretData
    } else {
        Action::Skip
    })
}

/// Decides every object of an app up front, so a refusal stops the app before any write.
/// `namespace_live` is the app namespace's live state, if the app has one.
pub(crate) fn decide_all(
    objects: &[Prepared],
    live: &std::collections::HashMap<ObjectRef, LiveMeta>,
    force: bool,
) -> Result<Vec<Action>, ApplyError> {
    for p in objects {
        if p.reference.kind == "Namespace"
            && let Some(l) = live.get(&p.reference)
            && l.deleting
        {
            return Err(ApplyError::NamespaceTerminating {
                namespace: p.reference.name.clone(),
            });
        }
    }
    objects
        .iter()
        .map(|p| decide(p, live.get(&p.reference), force))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loco_render::RenderInput;
    use std::collections::HashMap;

    fn rendered(env: &str) -> Rendered {
        let src = format!(
            "[Metadata]\nName = \"hello\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n[Env]\nVariables = {{ TOKEN = \"{env}\" }}\n"
        );
        let v = loco_spec::validate(&src, "loco.toml", &Default::default()).unwrap();
        loco_render::render(&RenderInput {
            org_id: 1,
            workspace_id: 2,
            app_id: 3,
            deployment_id: 4,
            template_deployment_id: 4,
            revision_id: 5,
            spec: v.spec,
            image: format!("registry.example/hello@sha256:{}", "a".repeat(64)),
            replicas: None,
            asleep: false,
            env: v.env_values,
            checksum_key: Default::default(),
            pull_secret: None,
            workspace_apps: vec![],
            settings: Default::default(),
        })
        .unwrap()
    }

    fn live_of(p: &Prepared) -> LiveMeta {
        LiveMeta {
            managed: true,
            hash: Some(p.hash.clone()),
            ..LiveMeta::default()
        }
    }

    #[test]
    fn bodies_carry_the_hash_annotation_and_it_matches_applied_hash() {
        let r = rendered("hunter2");
        let prepared = prepare(&r).unwrap();
        assert_eq!(prepared.len(), r.objects.len());
        for (p, o) in prepared.iter().zip(&r.objects) {
            let ann = p.body.metadata.annotations.as_ref().unwrap();
            assert_eq!(ann.get(ANNOTATION_APPLIED_HASH), Some(&p.hash));
            assert_eq!(p.hash, super::super::applied_hash(&o.object).unwrap());
            assert_eq!(p.reference, o.object.reference());
        }
        let secret = prepared
            .iter()
            .find(|p| p.reference.kind == "Secret")
            .unwrap();
        assert_eq!(secret.secret_data.as_ref().unwrap()["TOKEN"], b"hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn absent_objects_are_created_and_matching_ones_skipped() {
        let prepared = prepare(&rendered("x")).unwrap();
        let svc = prepared
            .iter()
            .find(|p| p.reference.kind == "Service")
            .unwrap();
        assert_eq!(decide(svc, None, false).unwrap(), Action::Create);
        assert_eq!(
            decide(svc, Some(&live_of(svc)), false).unwrap(),
            Action::Skip
        );
        assert_eq!(
            decide(svc, Some(&live_of(svc)), true).unwrap(),
            Action::Update
        );
        let stale = LiveMeta {
            hash: Some("other".into()),
            ..live_of(svc)
        };
        assert_eq!(decide(svc, Some(&stale), false).unwrap(), Action::Update);
        let unstamped = LiveMeta {
            hash: None,
            ..live_of(svc)
        };
        assert_eq!(
            decide(svc, Some(&unstamped), false).unwrap(),
            Action::Update
        );
    }

    #[test]
    fn a_secret_with_a_matching_hash_is_compared_by_data() {
        let prepared = prepare(&rendered("x")).unwrap();
        let secret = prepared
            .iter()
            .find(|p| p.reference.kind == "Secret")
            .unwrap();
        assert_eq!(
            decide(secret, Some(&live_of(secret)), false).unwrap(),
            Action::CompareSecretData
        );
        assert_eq!(
            decide(secret, Some(&live_of(secret)), true).unwrap(),
            Action::Update
        );
    }

    #[test]
    fn objects_without_loco_label_are_refused_even_with_force() {
        let prepared = prepare(&rendered("x")).unwrap();
        let dep = prepared
            .iter()
            .find(|p| p.reference.kind == "Deployment")
            .unwrap();
        let foreign = LiveMeta {
            managed: false,
            ..live_of(dep)
        };
        for force in [false, true] {
            let e = decide(dep, Some(&foreign), force).unwrap_err();
            assert_eq!(e.reason(), "not_managed_by_loco");
            assert!(e.to_string().contains("Deployment wks-2-app-3/app"), "{e}");
        }
        // decide_all refuses the whole app, whatever comes before the foreign object.
        let mut live: HashMap<ObjectRef, LiveMeta> = prepared
            .iter()
            .map(|p| (p.reference.clone(), live_of(p)))
            .collect();
        live.insert(dep.reference.clone(), foreign);
        assert_eq!(
            decide_all(&prepared, &live, false).unwrap_err().reason(),
            "not_managed_by_loco"
        );
    }

    #[test]
    fn a_terminating_namespace_stops_the_app() {
        let prepared = prepare(&rendered("x")).unwrap();
        let ns = &prepared[0];
        assert_eq!(ns.reference.kind, "Namespace");
        let live = HashMap::from([(
            ns.reference.clone(),
            LiveMeta {
                deleting: true,
                ..live_of(ns)
            },
        )]);
        assert_eq!(
            decide_all(&prepared, &live, false).unwrap_err().reason(),
            "namespace_terminating"
        );
    }

    #[test]
    fn a_changed_env_value_changes_only_the_secret_and_the_deployment() {
        let a = prepare(&rendered("one")).unwrap();
        let b = prepare(&rendered("two")).unwrap();
        let changed: Vec<String> = b
            .iter()
            .filter(|p| {
                !a.iter()
                    .any(|q| q.reference == p.reference && q.hash == p.hash)
            })
            .map(|p| p.reference.kind.clone())
            .collect();
        // The env Secret is content-named: a new value is a new Secret, and the
        // Deployment's envFrom points at it.
        assert_eq!(changed, vec!["Secret", "Deployment"]);
    }
}
