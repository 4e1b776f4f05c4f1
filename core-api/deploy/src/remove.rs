//! Removing an app from its cluster before its rows go: the namespace (and with it every
//! object loco rendered there) is deleted through apply, which refuses a namespace that
//! does not carry loco's label.

use super::Deployer;
use super::input;
use super::request::RequestError;
use loco_apply::Applier;
use loco_db::{DbError, apps};
use loco_render::namespace_name;

impl Deployer {
    /// Deletes the app's namespace from its cluster. Its queued deployments are
    /// cancelled; refused while one is applying (the worker would re-create what this
    /// deletes).
    pub async fn remove_app(&self, app: &apps::App) -> Result<(), RequestError> {
        let in_flight = loco_db::queue::cancel_pending(&self.db, app.id).await?;
        if let Some(id) = in_flight {
            return Err(RequestError::Conflict {
                reason: "deployment_in_progress",
                message: format!("deployment {id} of app {} is still running", app.name),
                next_step: format!(
                    "wait until deployment {id} is ready or failed (GET .../deployments/{id}), then delete the app"
                ),
            });
        }
        let deployed = sqlx::query_scalar!(
            // Only a deployment a worker started can have written to the cluster.
            r#"SELECT EXISTS (SELECT 1 FROM deployments
                               WHERE app_id = $1 AND started_at IS NOT NULL) AS "any!""#,
            app.id
        )
        .fetch_one(&self.db)
        .await
        .map_err(DbError::from)?;
        if !deployed {
            return Ok(());
        }
        let at = input::placement(&self.db, app.id).await?;
        let client = self
            .clusters
            .get(&self.db, &self.kek, at.cluster_id)
            .await
            .map_err(|e| RequestError::Unavailable {
                reason: e.reason(),
                message: format!("the app's cluster cannot be used: {e}"),
                next_step:
                    "ask the operator to check the cluster's credentials; the app was not deleted"
                        .into(),
            })?;
        let namespace = namespace_name(app.workspace_id, app.id);
        Applier::new(client, self.config.apply.clone())
            .delete_app(&namespace)
            .await
            .map_err(|e| {
                self.clusters.forget(at.cluster_id);
                RequestError::Unavailable {
                    reason: e.reason(),
                    message: format!("removing namespace {namespace} failed: {e}"),
                    next_step: "try again in a minute; the app and its rows were kept".into(),
                }
            })
    }
}
