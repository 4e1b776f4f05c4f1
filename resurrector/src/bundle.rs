//! The context of one run, built from the bundle alone: the database pool, the KEK, the
//! cluster's row and a client from its installer credential (decrypted in memory,
//! never printed or written anywhere).

use sqlx::PgPool;

use super::error::Error;
use loco_crypto::Kek;
use loco_db::clusters::{self, Cluster};
use loco_db::kubeconfig::InlineKubeconfig;

/// One run's context. Tests build it with [`Ctx::connect`] too.
pub struct Ctx {
    pub db: PgPool,
    pub kek: Kek,
    pub cluster: Cluster,
    pub installer: InlineKubeconfig,
    pub client: kube::Client,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("cluster", &self.cluster.name)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// Connects to the database, opens the cluster's installer credential with the KEK
    /// and builds its client. Every failure says what to fix; nothing is written.
    pub async fn connect(database_url: &str, kek: Kek, cluster_name: &str) -> Result<Self, Error> {
        if database_url.is_empty() {
            return Err(Error::Usage(
                "no database: set DATABASE_URL (or --database-url) to the loco database".into(),
            ));
        }
        let db = loco_db::connect(database_url).await?;
        let cluster = clusters::list(&db)
            .await?
            .into_iter()
            .find(|c| c.name == cluster_name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "the database has no cluster named {cluster_name:?} (`loco-api clusters list` shows the registered ones)"
                ))
            })?;
        let installer = clusters::installer_credentials(&db, &kek, cluster.id)
            .await?
            .ok_or_else(|| {
                Error::Setup(format!(
                    "cluster {} has no installer credential, which a rebuild needs (loco-api's own token dies with the cluster's etcd); nothing was done. Store one with `loco-api clusters set-installer-credential --cluster {} --kubeconfig FILE`",
                    cluster.name, cluster.name
                ))
            })?;
        let client = loco_deploy::cluster::client_from(&installer, cluster.id)
            .await
            .map_err(|e| Error::Setup(format!("{e}; nothing was done")))?;
        Ok(Ctx {
            db,
            kek,
            cluster,
            installer,
            client,
        })
    }
}

/// The KEK from LOCO_KEK_FILE or LOCO_KEK.
pub fn kek_from_env() -> Result<Kek, Error> {
    Kek::from_env().map_err(|e| Error::Kek(e.to_string()))
}
