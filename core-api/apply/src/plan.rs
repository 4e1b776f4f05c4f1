//! The pure half of apply: the bodies apply sends, and for each the decision to write or
//! skip given what the cluster holds. No I/O here.

use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use super::error::ApplyError;
use super::hash::{ANNOTATION_APPLIED_HASH, ANNOTATION_APPLIED_SECRETS, hash_body};
use super::resource::kube_resource;
use loco_render::{ANNOTATION_DATA_HASH, Object, ObjectRef, Phase, Rendered};

/// How apply knows a Secret's live state without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretKind {
    /// Not a Secret: read back through its metadata.
    No,
    /// A Secret with render's data-hash annotation: its applied-hash covers its data, and
    /// the app's Deployment records it ([`ANNOTATION_APPLIED_SECRETS`]).
    Hashed,
    /// A Secret without one (a render without a checksum key): its hash says nothing of
    /// its data, so it is written on every apply.
    Unhashed,
}

/// One object ready to send: the body (annotation stamped) and what decisions need.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub reference: ObjectRef,
    pub phase: Phase,
    pub resource: ApiResource,
    pub body: DynamicObject,
    pub hash: String,
    pub secret: SecretKind,
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

/// Builds the bodies of an app's objects, in apply order. The app's Deployment carries
/// the applied-hash of every hashed Secret of its namespace
/// ([`ANNOTATION_APPLIED_SECRETS`]): written after the Secrets, it is how the next apply
/// knows what the Secrets hold without reading them.
pub(crate) fn prepare(rendered: &Rendered) -> Result<Vec<Prepared>, ApplyError> {
    let mut out: Vec<Prepared> = rendered
        .objects
        .iter()
        .map(|o| prepare_one(o.phase, &o.object, None))
        .collect::<Result<_, _>>()?;
    for i in 0..out.len() {
        if out[i].reference.kind != "Deployment" {
            continue;
        }
        let record = secrets_record(&out, out[i].reference.namespace.as_deref());
        if let Some(record) = record
            && let Some(o) = rendered.objects.get(i)
        {
            out[i] = prepare_one(o.phase, &o.object, Some(&record))?;
        }
    }
    // Render already sorts by phase; a stable sort keeps that promise for hand-built input.
    out.sort_by_key(|p| p.phase);
    Ok(out)
}

/// `name=hash,...` of the hashed Secrets in `namespace`, sorted by name; `None` when
/// there are none.
fn secrets_record(objects: &[Prepared], namespace: Option<&str>) -> Option<String> {
    let mut entries: Vec<String> = objects
        .iter()
        .filter(|p| p.secret == SecretKind::Hashed && p.reference.namespace.as_deref() == namespace)
        .map(|p| format!("{}={}", p.reference.name, p.hash))
        .collect();
    entries.sort();
    (!entries.is_empty()).then(|| entries.join(","))
}

/// The applied-hash a Deployment's record gives for the Secret `name`.
pub(crate) fn recorded_secret_hash<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record
        .split(',')
        .filter_map(|e| e.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, h)| h)
}

fn prepare_one(
    phase: Phase,
    object: &Object,
    secrets_record: Option<&str>,
) -> Result<Prepared, ApplyError> {
    let reference = object.reference();
    let failed = |message: String| ApplyError::Prepare {
        object: Box::new(reference.clone()),
        message,
    };
    let is_secret = matches!(object, Object::Secret(_));
    let mut body = object.to_json().map_err(|e| failed(e.to_string()))?;
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
    if let Some(record) = secrets_record {
        annotations.insert(
            ANNOTATION_APPLIED_SECRETS.to_owned(),
            Value::String(record.to_owned()),
        );
    }
    let secret = match object {
        Object::Secret(_) if annotations.contains_key(ANNOTATION_DATA_HASH) => SecretKind::Hashed,
        Object::Secret(_) => SecretKind::Unhashed,
        _ => SecretKind::No,
    };
    let hash = hash_body(&body, is_secret);
    if let Some(a) = body
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(
            ANNOTATION_APPLIED_HASH.to_owned(),
            Value::String(hash.clone()),
        );
    }
    // Never print the serde error of a Secret body: it may quote the data.
    let body: DynamicObject = serde_json::from_value(body).map_err(|e| {
        failed(if is_secret {
            "the Secret does not convert to a dynamic object".to_owned()
        } else {
            e.to_string()
        })
    })?;
    Ok(Prepared {
        resource: kube_resource(&object.api_resource()),
        reference,
        phase,
        body,
        hash,
        secret,
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
    /// A Deployment's record of the Secrets applied with it ([`ANNOTATION_APPLIED_SECRETS`]).
    pub applied_secrets: Option<String>,
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
            applied_secrets: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_APPLIED_SECRETS))
                .cloned(),
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
    if force
        || desired.secret == SecretKind::Unhashed
        || live.hash.as_deref() != Some(desired.hash.as_str())
    {
        return Ok(Action::Update);
    }
    Ok(Action::Skip)
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
    use loco_render::{ChecksumKey, PullCredential, RenderInput};
    use std::collections::HashMap;

    fn render_with(env: &str, pull_password: &str, key: &[u8]) -> Rendered {
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
            checksum_key: ChecksumKey(key.to_vec()),
            pull_secret: Some(PullCredential {
                registry: "registry.example".into(),
                username: "puller".into(),
                password: pull_password.into(),
            }),
            workspace_apps: vec![],
            settings: Default::default(),
        })
        .unwrap()
    }

    fn rendered(env: &str) -> Rendered {
        render_with(env, "pull-1", b"apply-unit-key")
    }

    fn live_of(p: &Prepared) -> LiveMeta {
        LiveMeta {
            managed: true,
            hash: Some(p.hash.clone()),
            ..LiveMeta::default()
        }
    }

    fn find<'a>(prepared: &'a [Prepared], kind: &str, name_prefix: &str) -> &'a Prepared {
        prepared
            .iter()
            .find(|p| p.reference.kind == kind && p.reference.name.starts_with(name_prefix))
            .unwrap()
    }

    fn record(p: &Prepared) -> String {
        p.body.metadata.annotations.as_ref().unwrap()[ANNOTATION_APPLIED_SECRETS].clone()
    }

    #[test]
    fn bodies_carry_the_hash_annotation_and_secrets_never_show_in_debug() {
        let r = rendered("hunter2");
        let prepared = prepare(&r).unwrap();
        assert_eq!(prepared.len(), r.objects.len());
        for (p, o) in prepared.iter().zip(&r.objects) {
            let ann = p.body.metadata.annotations.as_ref().unwrap();
            assert_eq!(ann.get(ANNOTATION_APPLIED_HASH), Some(&p.hash));
            assert_eq!(p.reference, o.object.reference());
        }
        let applied: Vec<(ObjectRef, String)> = super::super::applied_hashes(&r).unwrap();
        assert_eq!(
            applied,
            prepared
                .iter()
                .map(|p| (p.reference.clone(), p.hash.clone()))
                .collect::<Vec<_>>()
        );
        let secret = find(&prepared, "Secret", "env-");
        assert_eq!(secret.secret, SecretKind::Hashed);
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn the_deployment_records_the_applied_hash_of_every_secret() {
        let prepared = prepare(&rendered("x")).unwrap();
        let env = find(&prepared, "Secret", "env-");
        let pull = find(&prepared, "Secret", "loco-pull");
        let rec = record(find(&prepared, "Deployment", "app"));
        assert_eq!(
            rec,
            format!(
                "{}={},loco-pull={}",
                env.reference.name, env.hash, pull.hash
            )
        );
        assert_eq!(
            recorded_secret_hash(&rec, "loco-pull"),
            Some(pull.hash.as_str())
        );
        assert_eq!(recorded_secret_hash(&rec, "loco-pul"), None);
        assert_eq!(recorded_secret_hash("garbage", "loco-pull"), None);
        // Other objects carry no record.
        let svc = find(&prepared, "Service", "app");
        assert!(
            !svc.body
                .metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key(ANNOTATION_APPLIED_SECRETS)
        );
    }

    #[test]
    fn a_new_pull_password_changes_the_secret_and_the_record_not_the_pods() {
        let a = prepare(&render_with("x", "pull-1", b"k")).unwrap();
        let b = prepare(&render_with("x", "pull-2", b"k")).unwrap();
        let (pa, pb) = (
            find(&a, "Secret", "loco-pull"),
            find(&b, "Secret", "loco-pull"),
        );
        assert_ne!(pa.hash, pb.hash, "the data-hash annotation moves the hash");
        let (da, db) = (find(&a, "Deployment", "app"), find(&b, "Deployment", "app"));
        assert_ne!(da.hash, db.hash);
        assert_eq!(
            da.body.data["spec"]["template"], db.body.data["spec"]["template"],
            "a credential rotation rolls no pod"
        );
        // Another app's key: another data hash for the same password.
        let c = prepare(&render_with("x", "pull-1", b"other")).unwrap();
        assert_ne!(pa.hash, find(&c, "Secret", "loco-pull").hash);
    }

    #[test]
    fn a_secret_without_a_data_hash_is_always_written() {
        // A render without a checksum key (an export) stamps no data hash.
        let prepared = prepare(&render_with("x", "p", b"")).unwrap();
        let secret = find(&prepared, "Secret", "env-");
        assert_eq!(secret.secret, SecretKind::Unhashed);
        assert_eq!(
            decide(secret, Some(&live_of(secret)), false).unwrap(),
            Action::Update
        );
        assert!(
            !find(&prepared, "Deployment", "app")
                .body
                .metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key(ANNOTATION_APPLIED_SECRETS),
            "unhashed Secrets are never recorded"
        );
    }

    #[test]
    fn absent_objects_are_created_and_matching_ones_skipped() {
        let prepared = prepare(&rendered("x")).unwrap();
        for p in [
            find(&prepared, "Service", "app"),
            find(&prepared, "Secret", "env-"),
        ] {
            assert_eq!(decide(p, None, false).unwrap(), Action::Create);
            assert_eq!(decide(p, Some(&live_of(p)), false).unwrap(), Action::Skip);
            assert_eq!(decide(p, Some(&live_of(p)), true).unwrap(), Action::Update);
            let stale = LiveMeta {
                hash: Some("other".into()),
                ..live_of(p)
            };
            assert_eq!(decide(p, Some(&stale), false).unwrap(), Action::Update);
            let unstamped = LiveMeta {
                hash: None,
                ..live_of(p)
            };
            assert_eq!(decide(p, Some(&unstamped), false).unwrap(), Action::Update);
        }
    }

    #[test]
    fn objects_without_loco_label_are_refused_even_with_force() {
        let prepared = prepare(&rendered("x")).unwrap();
        let dep = find(&prepared, "Deployment", "app");
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
