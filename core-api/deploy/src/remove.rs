//! Removing apps from their cluster before their rows go: each app's namespace (and with
//! it every object loco rendered there, its env Secrets included) is deleted through
//! apply, which refuses a namespace that does not carry loco's label. The rows, and with
//! them the app's data key, are the caller's to delete afterwards, once the namespaces
//! are gone: the key goes last.

use super::Deployer;
use super::input;
use super::request::RequestError;
use loco_apply::Applier;
use loco_db::{DbError, Page, apps};
use loco_render::namespace_name;

fn in_progress(id: i64, app: &str, then: &str) -> RequestError {
    RequestError::Conflict {
        reason: "deployment_in_progress",
        message: format!("deployment {id} of app {app} is still running"),
        next_step: format!(
            "wait until deployment {id} is ready or failed (GET .../deployments/{id}), then {then}"
        ),
    }
}

impl Deployer {
    /// Deletes the app's namespace from its cluster. First its queue is fenced: queued
    /// deployments are cancelled, and none of its deployments can be claimed or resumed
    /// any more (nor a change accepted), so no worker re-creates what this deletes.
    /// Refused while one applies under a live lease.
    pub async fn remove_app(&self, app: &apps::App) -> Result<(), RequestError> {
        if let Some(id) = loco_db::queue::fence_app(&self.db, app.id).await? {
            return Err(in_progress(id, &app.name, "delete the app"));
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
            .client(at.cluster_id)
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

    /// Deletes the namespaces of every app of a workspace of `org_id`, each as
    /// [`Deployer::remove_app`] does. Refused, before anything is deleted, while any
    /// deployment of the workspace applies.
    pub async fn remove_workspace(
        &self,
        org_id: i64,
        workspace_id: i64,
    ) -> Result<(), RequestError> {
        let running = sqlx::query!(
            "SELECT d.id, a.name FROM deployments d JOIN apps a ON a.id = d.app_id
              WHERE a.org_id = $1 AND a.workspace_id = $2
                AND d.status = 'applying' AND d.lease_expires_at > now()
              ORDER BY d.id LIMIT 1",
            org_id,
            workspace_id
        )
        .fetch_optional(&self.db)
        .await
        .map_err(DbError::from)?;
        if let Some(r) = running {
            return Err(in_progress(r.id, &r.name, "delete the workspace"));
        }
        let mut page = Page::first(Page::MAX_LIMIT);
        loop {
            let batch = apps::list(&self.db, org_id, workspace_id, page).await?;
            for app in &batch {
                self.remove_app(app).await?;
            }
            match batch.last() {
                Some(last) if batch.len() as i64 == page.limit => {
                    page = Page::after(last.id, Page::MAX_LIMIT);
                }
                _ => return Ok(()),
            }
        }
    }
}
