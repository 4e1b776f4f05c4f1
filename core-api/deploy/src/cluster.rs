//! Kubernetes clients for the clusters in the database, built from their sealed
//! kubeconfigs and kept per cluster id with the version of the credentials they were
//! built from: every use compares that version with the row's (one small query), so
//! after the resurrector writes a new kubeconfig every process builds a new client. A
//! client whose cluster stopped answering is dropped ([`ClusterClients::forget`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::config::{KubeConfigOptions, Kubeconfig};
use sqlx::PgPool;

use loco_crypto::Kek;
use loco_db::{DbError, clusters};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The stored credentials are not a usable kubeconfig (never prints them).
    #[error("the stored credentials of cluster {cluster_id} are not a usable kubeconfig: {cause}")]
    BadCredentials { cluster_id: i64, cause: String },
}

impl ClusterError {
    pub fn reason(&self) -> &'static str {
        match self {
            ClusterError::Db(e) => e.reason(),
            ClusterError::BadCredentials { .. } => "cluster_credentials_invalid",
        }
    }
}

/// Clients per cluster id, with the credentials version each was built from. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct ClusterClients {
    cache: Arc<Mutex<HashMap<i64, Cached>>>,
}

/// A client and the credentials version it was built from.
type Cached = (Vec<u8>, kube::Client);

/// A client and whether it replaced a cached one built from older credentials.
pub struct Fetched {
    pub client: kube::Client,
    pub replaced: bool,
}

impl std::fmt::Debug for ClusterClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterClients")
    }
}

/// A client built from a cluster's decrypted kubeconfig (in memory only). For one-shot
/// commands (`loco-api platform apply`, the resurrector) that need no cache.
pub async fn client_from(
    creds: &loco_db::kubeconfig::InlineKubeconfig,
    cluster_id: i64,
) -> Result<kube::Client, ClusterError> {
    let bad = |cause: String| ClusterError::BadCredentials { cluster_id, cause };
    let kubeconfig = Kubeconfig::from_yaml(creds.expose()).map_err(|e| {
        bad(format!(
            "not kubeconfig YAML ({})",
            first_line(&e.to_string())
        ))
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| bad(first_line(&e.to_string())))?;
    kube::Client::try_from(config).map_err(|e| bad(first_line(&e.to_string())))
}

impl ClusterClients {
    /// The client of `cluster_id`, from the cache or from its sealed kubeconfig.
    pub async fn get(
        &self,
        db: &PgPool,
        kek: &Kek,
        cluster_id: i64,
    ) -> Result<kube::Client, ClusterError> {
        Ok(self.fetch(db, kek, cluster_id).await?.client)
    }

    /// As [`ClusterClients::get`], saying whether the credentials changed since the
    /// cached client was built (then it was replaced).
    pub async fn fetch(
        &self,
        db: &PgPool,
        kek: &Kek,
        cluster_id: i64,
    ) -> Result<Fetched, ClusterError> {
        let version = clusters::credentials_version(db, cluster_id).await?;
        let replaced = match self.lock().get(&cluster_id) {
            Some((v, c)) if *v == version => {
                return Ok(Fetched {
                    client: c.clone(),
                    replaced: false,
                });
            }
            Some(_) => true,
            None => false,
        };
        // An InlineKubeconfig: no exec or auth-provider plugin, no file reference.
        let creds = clusters::credentials(db, kek, cluster_id).await?;
        let client = client_from(&creds, cluster_id).await?;
        self.lock().insert(cluster_id, (version, client.clone()));
        Ok(Fetched { client, replaced })
    }

    /// Drops the cached client, e.g. after the cluster stopped answering.
    pub fn forget(&self, cluster_id: i64) {
        self.lock().remove(&cluster_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Cached>> {
        // A panic while holding this lock cannot leave the map half-written.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}
