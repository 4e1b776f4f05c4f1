//! Database rows -> [`RenderInput`]: the one place that reads what render needs (the
//! revision, its decrypted env, the workspace's other apps, the cluster's pull
//! credential). Deploy, rollback, wake and the resurrector's rebuild all go through it,
//! so a rebuild renders exactly what a deploy rendered.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::crypto::Kek;
use crate::db::revisions::{self, Revision};
use crate::db::{DbError, apps, clusters, workspaces};
use crate::render::{
    self, ChecksumKey, PullCredential, RenderInput, RenderSettings, Rendered, SiblingApp,
};
use crate::spec::{EnvValues, ResolvedSpec};

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
    let org_id = sqlx::query_scalar!("SELECT org_id FROM apps WHERE id = $1", app_id)
        .fetch_optional(db)
        .await?
        .ok_or(DbError::NotFound("app"))?;
    let app = apps::get(db, org_id, app_id).await?;
    let ws = workspaces::get(db, org_id, app.workspace_id).await?;
    Ok(Placement {
        app,
        cluster_id: ws.cluster_id,
    })
}

/// Renders `revision` of the app as deployment `deployment_id` would apply it.
pub async fn render_revision(
    db: &PgPool,
    kek: &Kek,
    settings: &RenderSettings,
    at: &Placement,
    revision: &Revision,
    deployment_id: i64,
) -> Result<Rendered, InputError> {
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
        deployment_id,
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
    render::render(&input).map_err(|e| unrenderable(e.to_string()))
}
