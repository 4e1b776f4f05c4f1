//! Reading what the cluster holds: object metadata (ownership and applied-hash).
//!
//! Secrets are never read, not even their metadata: loco-api's ServiceAccount has no
//! `get` or `list` on them. What a live Secret holds comes from the record on the app's
//! Deployment ([`ANNOTATION_APPLIED_SECRETS`](super::ANNOTATION_APPLIED_SECRETS)); whether
//! it exists, from a dry-run create (409 AlreadyExists when it does), which shows nothing
//! of the live Secret.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _, stream};
use kube::Client;
use kube::api::{ApiResource, ListParams, PostParams};

use super::FIELD_MANAGER;
use super::error::ApplyError;
use super::plan::{LiveMeta, Prepared, SecretKind, recorded_secret_hash};
use super::resource::dynamic_api;
use loco_render::ObjectRef;

pub(crate) type LiveIndex = HashMap<ObjectRef, LiveMeta>;

/// Page size of cluster-wide LISTs: large enough for few round trips, small enough that
/// one answer never weighs much on the API server.
const PAGE: u32 = 500;

/// The live metadata of one app's objects: a metadata GET each, concurrently. When the
/// app's namespace does not exist, nothing inside it can, so those reads are skipped.
pub(crate) async fn read_app(
    client: &Client,
    namespace: &str,
    objects: &[Prepared],
    concurrency: usize,
) -> Result<LiveIndex, ApplyError> {
    let mut index = LiveIndex::new();
    let ns_object = objects
        .iter()
        .find(|p| p.reference.kind == "Namespace" && p.reference.name == namespace);
    let namespace_absent = match ns_object {
        Some(p) => match get_meta(client, p).await? {
            Some(live) => {
                index.insert(p.reference.clone(), live);
                false
            }
            None => true,
        },
        None => false,
    };
    let to_read = objects.iter().filter(|p| {
        p.reference.kind != "Namespace"
            && p.secret == SecretKind::No
            && !(namespace_absent && p.reference.namespace.as_deref() == Some(namespace))
    });
    // Futures collected first: a closure left inside the stream would make the caller's
    // future not `Send` (rustc's higher-ranked closure limitation), and daemons spawn it.
    let reads: Vec<_> =
        to_read
            .map(|p| async move {
                Ok::<_, ApplyError>((p.reference.clone(), get_meta(client, p).await?))
            })
            .collect();
    let found: Vec<(ObjectRef, Option<LiveMeta>)> = stream::iter(reads)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    index.extend(found.into_iter().filter_map(|(r, l)| l.map(|l| (r, l))));
    let absent: HashSet<String> = if namespace_absent {
        HashSet::from([namespace.to_owned()])
    } else {
        HashSet::new()
    };
    add_secrets(client, objects.iter(), &absent, &mut index, concurrency).await?;
    Ok(index)
}

/// Adds the live state of the Secrets among `objects` to `index`, without reading them:
/// each is probed for existence (unless its namespace is known to be absent) and takes
/// its hash from the record on the loco Deployment of its namespace. An existing Secret
/// counts as loco's: the API server refuses loco-api any change of one that is not (the
/// admission policy of core-api/rbac/loco-api.yaml), and apply reports that refusal.
pub(crate) async fn add_secrets<'a>(
    client: &Client,
    objects: impl Iterator<Item = &'a Prepared>,
    absent_namespaces: &HashSet<String>,
    index: &mut LiveIndex,
    concurrency: usize,
) -> Result<(), ApplyError> {
    let records: HashMap<&str, &str> = index
        .iter()
        .filter(|(r, l)| r.kind == "Deployment" && l.managed)
        .filter_map(|(r, l)| Some((r.namespace.as_deref()?, l.applied_secrets.as_deref()?)))
        .collect();
    let probes: Vec<_> = objects
        .filter(|p| p.secret != SecretKind::No)
        .filter(|p| {
            p.reference
                .namespace
                .as_ref()
                .is_none_or(|ns| !absent_namespaces.contains(ns))
        })
        .map(|p| async move { Ok::<_, ApplyError>((p, exists(client, p).await?)) })
        .collect();
    let found: Vec<(&Prepared, bool)> = stream::iter(probes)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut secrets = Vec::new();
    for (p, exists) in found {
        if !exists {
            continue;
        }
        let recorded = p
            .reference
            .namespace
            .as_deref()
            .and_then(|ns| records.get(ns))
            .and_then(|record| recorded_secret_hash(record, &p.reference.name));
        secrets.push((
            p.reference.clone(),
            LiveMeta {
                managed: true,
                hash: recorded.map(str::to_owned),
                ..LiveMeta::default()
            },
        ));
    }
    index.extend(secrets);
    Ok(())
}

/// Whether the object exists, asked by a dry-run create: 409 AlreadyExists when it
/// does. The answer carries only what was sent, never the live object.
async fn exists(client: &Client, p: &Prepared) -> Result<bool, ApplyError> {
    let api = dynamic_api(client, &p.resource, p.reference.namespace.as_deref());
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    match api.create(&params, &p.body).await {
        Ok(_) => Ok(false),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(true),
        // The namespace is gone: nothing inside it exists.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(ApplyError::from_kube(e, "check", &p.reference)),
    }
}

async fn get_meta(client: &Client, p: &Prepared) -> Result<Option<LiveMeta>, ApplyError> {
    dynamic_api(client, &p.resource, p.reference.namespace.as_deref())
        .get_metadata_opt(&p.reference.name)
        .await
        .map(|m| m.map(|m| LiveMeta::of(&m.metadata)))
        .map_err(|e| ApplyError::from_kube(e, "read", &p.reference))
}

/// What the cluster holds of many apps' prepared objects: one metadata LIST per kind
/// they use, then the Secret probes, skipped in namespaces the LIST did not find
/// (nothing inside them exists). apply_each and compare read through here.
pub(crate) async fn read_many(
    client: &Client,
    desired: &[loco_render::Rendered],
    prepared: &[Result<Vec<Prepared>, ApplyError>],
    concurrency: usize,
) -> Result<LiveIndex, ApplyError> {
    let mut kinds: std::collections::BTreeMap<(String, String), ApiResource> =
        std::collections::BTreeMap::new();
    for p in prepared
        .iter()
        .flatten()
        .flatten()
        .filter(|p| p.secret == SecretKind::No)
    {
        kinds
            .entry((p.resource.api_version.clone(), p.resource.kind.clone()))
            .or_insert_with(|| p.resource.clone());
    }
    let kinds: Vec<ApiResource> = kinds.into_values().collect();
    let mut live = read_cluster(client, &kinds, concurrency).await?;
    let absent: HashSet<String> = desired
        .iter()
        .map(|r| r.namespace.clone())
        .filter(|ns| !live.contains_key(&super::namespace::namespace_ref(ns)))
        .collect();
    add_secrets(
        client,
        prepared.iter().flatten().flatten(),
        &absent,
        &mut live,
        concurrency,
    )
    .await?;
    Ok(live)
}

/// The live metadata of every object of the given kinds, cluster-wide: one paged
/// metadata LIST per kind. A kind the cluster does not serve lists as empty (applying
/// it then fails with a clear `kind_not_installed`).
pub(crate) async fn read_cluster(
    client: &Client,
    kinds: &[ApiResource],
    concurrency: usize,
) -> Result<LiveIndex, ApplyError> {
    let reads: Vec<_> = kinds.iter().map(|ar| list_kind(client, ar)).collect();
    let lists: Vec<LiveIndex> = stream::iter(reads)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

async fn list_kind(client: &Client, ar: &ApiResource) -> Result<LiveIndex, ApplyError> {
    let api = dynamic_api(client, ar, None);
    let kind_ref = ObjectRef {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: None,
        name: "(all)".to_owned(),
    };
    let mut index = LiveIndex::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = match api.list_metadata(&lp).await {
            Ok(p) => p,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(index),
            Err(e) => return Err(ApplyError::from_kube(e, "list", &kind_ref)),
        };
        for item in &page.items {
            let m = &item.metadata;
            let Some(name) = m.name.clone() else { continue };
            index.insert(
                ObjectRef {
                    api_version: ar.api_version.clone(),
                    kind: ar.kind.clone(),
                    namespace: m.namespace.clone(),
                    name,
                },
                LiveMeta::of(m),
            );
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(index);
        }
    }
}
