//! Reading what the cluster holds: object metadata (ownership and applied-hash) and, for
//! Secrets whose hash matches, their data.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt as _, TryStreamExt as _, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, ListParams};
use kube::{Api, Client};

use super::error::ApplyError;
use super::plan::{LiveMeta, Prepared};
use super::resource::dynamic_api;
use loco_render::{LABEL_MANAGED_BY, MANAGED_BY, ObjectRef};

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
    Ok(index)
}

async fn get_meta(client: &Client, p: &Prepared) -> Result<Option<LiveMeta>, ApplyError> {
    dynamic_api(client, &p.resource, p.reference.namespace.as_deref())
        .get_metadata_opt(&p.reference.name)
        .await
        .map(|m| m.map(|m| LiveMeta::of(&m.metadata)))
        .map_err(|e| ApplyError::from_kube(e, "read", &p.reference))
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

pub(crate) type SecretData = BTreeMap<String, Vec<u8>>;

/// Where the live data of Secrets comes from.
pub(crate) enum SecretSource {
    /// A GET of each Secret that needs comparing (one app).
    Fetch,
    /// Every loco-labelled Secret, read by one cluster-wide LIST (many apps).
    Loaded(HashMap<(String, String), SecretData>),
}

impl SecretSource {
    /// Whether the live Secret holds exactly the data `p` would write.
    pub async fn matches(&self, client: &Client, p: &Prepared) -> Result<bool, ApplyError> {
        let Some(want) = &p.secret_data else {
            return Ok(true);
        };
        let ns = p.reference.namespace.clone().unwrap_or_default();
        let live = match self {
            Self::Loaded(all) => all.get(&(ns, p.reference.name.clone())).cloned(),
            Self::Fetch => Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&p.reference.name)
                .await
                .map_err(|e| ApplyError::from_kube(e, "read", &p.reference))?
                .map(|s| data_of(&s)),
        };
        Ok(live.as_ref() == Some(want))
    }

    /// Reads every loco-labelled Secret of the cluster (paged).
    pub async fn load(client: &Client) -> Result<Self, ApplyError> {
        let api: Api<Secret> = Api::all(client.clone());
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
        let kind_ref = ObjectRef {
            api_version: "v1".to_owned(),
            kind: "Secret".to_owned(),
            namespace: None,
            name: "(all loco Secrets)".to_owned(),
        };
        let mut all = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().labels(&selector).limit(PAGE);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api
                .list(&lp)
                .await
                .map_err(|e| ApplyError::from_kube(e, "list", &kind_ref))?;
            for s in &page.items {
                if let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) {
                    all.insert((ns.clone(), name.clone()), data_of(s));
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(Self::Loaded(all));
            }
        }
    }
}

/// A live Secret's data with `stringData` folded in (the API server does the same; it
/// never returns stringData, but a hand-built object might carry it).
fn data_of(s: &Secret) -> SecretData {
    let mut data: SecretData = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.as_bytes().to_vec());
    }
    data
}
