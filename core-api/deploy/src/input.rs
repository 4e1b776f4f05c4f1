//! Database rows -> [`RenderInput`]: the one place that reads what render needs (the
//! revision, its decrypted env, the workspace's other apps, the cluster's pull
//! credential). Deploy, rollback, wake and the resurrector's rebuild all go through it,
//! so a rebuild renders exactly what a deploy rendered.

use std::collections::BTreeMap;

use sqlx::PgPool;

use loco_crypto::Kek;
use loco_db::deployments::Deployment;
use loco_db::revisions::{self, Revision};
use loco_db::{DbError, apps, clusters};
use loco_render::{
    self, ChecksumKey, ObjectRef, PullCredential, RenderInput, RenderSettings, Rendered, SiblingApp,
};
use loco_spec::{EnvValues, ResolvedSpec};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "revision {revision_id} cannot be rendered: {why}; deploy the app again to write a current revision"
    )]
    Unrenderable { revision_id: i64, why: String },
}

impl InputError {
    pub fn reason(&self) -> &'static str {
        match self {
            InputError::Db(e) => e.reason(),
            InputError::Unrenderable { .. } => "revision_unrenderable",
        }
    }
}

/// Where an app lives: its row and its workspace's cluster.
#[derive(Debug, Clone)]
pub struct Placement {
    pub app: apps::App,
    pub cluster_id: i64,
}

/// The app (of any org: callers have checked access) and its cluster.
pub async fn placement(db: &PgPool, app_id: i64) -> Result<Placement, DbError> {
    // The app's composite key on (workspace_id, org_id) keeps the workspace in its org.
    let row = sqlx::query!(
        "SELECT a.org_id, w.cluster_id FROM apps a JOIN workspaces w ON w.id = a.workspace_id
          WHERE a.id = $1",
        app_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("app"))?;
    Ok(Placement {
        app: apps::get(db, row.org_id, app_id).await?,
        cluster_id: row.cluster_id,
    })
}

/// The inventory stored with deployment `deployment_id`. One that does not parse is
/// an error, never an empty list: pruning against nothing would leave objects behind
/// unnoticed.
pub fn inventory_of(
    deployment_id: i64,
    inventory: serde_json::Value,
) -> Result<Vec<ObjectRef>, DbError> {
    serde_json::from_value(inventory).map_err(|e| {
        DbError::Corrupt(format!(
            "the inventory of deployment {deployment_id} is not a list of objects ({e})"
        ))
    })
}

/// A revision rendered, with its stored spec parsed once for whoever needs it after
/// render (the preflight gate).
#[derive(Debug)]
pub struct RenderedRevision {
    pub rendered: Rendered,
    pub spec: ResolvedSpec,
}

/// Renders `revision` (the revision of `deployment`) as that deployment applies it: the
/// Deployment annotated with its id, the pods running its template deployment's.
pub async fn render_revision(
    db: &PgPool,
    kek: &Kek,
    settings: &RenderSettings,
    at: &Placement,
    revision: &Revision,
    deployment: &Deployment,
) -> Result<RenderedRevision, InputError> {
    let unrenderable = |why: String| InputError::Unrenderable {
        revision_id: revision.id,
        why,
    };
    let spec: ResolvedSpec = serde_json::from_value(revision.spec.clone())
        .map_err(|e| unrenderable(format!("its stored spec does not parse ({e})")))?;
    let image = revision
        .image
        .clone()
        .ok_or_else(|| unrenderable("it records no image reference".into()))?;
    let app_id = at.app.id;

    let mut conn = db.acquire().await.map_err(DbError::from)?;
    let env = revisions::env(&mut conn, kek, app_id, revision.id).await?;
    let env = EnvValues::new(
        env.into_iter()
            .map(|(name, value)| (name, value.expose().to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    let dek = apps::data_key(&mut *conn, kek, app_id).await?;
    let checksum_key = ChecksumKey(dek.checksum_key().to_vec());
    let pull_secret = clusters::pull_credential(db, kek, at.cluster_id)
        .await?
        .map(|c| PullCredential {
            registry: c.registry,
            username: c.username,
            password: c.password.expose().to_owned(),
        });
    let workspace_apps = apps::siblings(&mut *conn, at.app.workspace_id)
        .await?
        .into_iter()
        .filter(|s| s.id != app_id)
        .filter_map(|s| {
            let port = u16::try_from(s.port).ok()?;
            Some(SiblingApp::rendered_by_loco(
                at.app.workspace_id,
                s.id,
                &s.name,
                port,
            ))
        })
        .collect();
    drop(conn);

    let input = RenderInput {
        org_id: at.app.org_id,
        workspace_id: at.app.workspace_id,
        app_id,
        deployment_id: deployment.id,
        template_deployment_id: deployment.template_id(),
        revision_id: revision.id,
        spec,
        image,
        replicas: u32::try_from(revision.replicas).ok(),
        asleep: revision.asleep,
        env,
        checksum_key,
        pull_secret,
        workspace_apps,
        settings: settings.clone(),
    };
    let rendered = loco_render::render(&input).map_err(|e| unrenderable(e.to_string()))?;
    Ok(RenderedRevision {
        rendered,
        spec: input.spec,
    })
}

#[cfg(test)]
mod tests {
    use super::inventory_of;

    #[test]
    fn a_corrupt_inventory_is_an_error_not_an_empty_list() {
        let good = serde_json::json!([{"apiVersion": "v1", "kind": "Secret", "namespace": "n", "name": "s"}]);
        assert_eq!(inventory_of(1, good).unwrap().len(), 1);
        for bad in [
            serde_json::json!({"kind": "Secret"}),
            serde_json::json!([{"kind": "Secret"}]),
            serde_json::json!("[]"),
        ] {
            let e = inventory_of(9, bad).unwrap_err();
            assert_eq!(e.reason(), "stored_data_corrupt");
            assert!(e.to_string().contains("deployment 9"), "{e}");
        }
    }
}
