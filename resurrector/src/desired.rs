//! What the database says the cluster should hold: every app of the cluster's
//! workspaces, rendered from its active deployment's revision exactly as that deployment
//! applied it (loco-deploy's `render_revision`, the path every deploy takes).

use std::collections::HashSet;

use futures::{StreamExt as _, stream};
use serde::Serialize;
use sqlx::PgPool;

use super::error::Error;
use loco_crypto::Kek;
use loco_db::clusters;
use loco_deploy::input::{self, Placement};
use loco_render::{RenderSettings, Rendered};
use loco_spec::ResolvedSpec;

/// One app of the cluster as the database has it.
#[derive(Debug)]
pub struct DesiredApp {
    pub app_id: i64,
    pub org_id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub host: String,
    pub path_prefix: String,
    pub namespace: String,
    /// The active deployment (`None`: never deployed, nothing to rebuild).
    pub deployment_id: Option<i64>,
    pub asleep: bool,
    pub replicas: Option<i32>,
    pub render: Rendering,
}

/// The app's objects, or why there are none.
#[derive(Debug)]
pub enum Rendering {
    Rendered {
        rendered: Box<Rendered>,
        spec: Box<ResolvedSpec>,
    },
    /// No active deployment: the app was created but never deployed (or every deploy failed).
    NeverDeployed,
    /// A worker is applying a deployment of the app right now: left to it.
    InFlight,
    /// The revision cannot be rendered (stored data the renderer refuses).
    Unrenderable {
        reason: &'static str,
        message: String,
    },
}

/// The render settings stored for the cluster; a cluster loco-api never deployed to
/// has none, and renders with the defaults (said in the report).
pub async fn settings(db: &PgPool, cluster_id: i64) -> Result<(RenderSettings, bool), Error> {
    match clusters::render_settings(db, cluster_id).await? {
        Some((_, stored)) => serde_json::from_value(stored).map(|s| (s, true)).map_err(|e| {
            Error::Failed(format!(
                "the render settings stored for cluster {cluster_id} do not parse ({e}); nothing was done"
            ))
        }),
        None => Ok((RenderSettings::default(), false)),
    }
}

/// Every app of the cluster, workspace by workspace, rendered (bounded concurrency).
pub async fn load(
    db: &PgPool,
    kek: &Kek,
    cluster_id: i64,
    settings: &RenderSettings,
) -> Result<Vec<DesiredApp>, Error> {
    let rows = clusters::apps_with_active(db, cluster_id).await?;
    let applying: HashSet<i64> = clusters::apps_applying(db, cluster_id)
        .await?
        .into_iter()
        .collect();
    let jobs: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let applying = applying.contains(&row.app.id);
            async move {
                let namespace = loco_render::namespace_name(row.app.workspace_id, row.app.id);
                let render = match (&row.deployment, &row.revision) {
                    _ if applying => Rendering::InFlight,
                    (Some(d), Some(r)) => {
                        let at = Placement {
                            app: row.app.clone(),
                            cluster_id,
                        };
                        match input::render_revision(db, kek, settings, &at, r, d).await {
                            Ok(rr) => Rendering::Rendered {
                                rendered: Box::new(rr.rendered),
                                spec: Box::new(rr.spec),
                            },
                            Err(input::InputError::Db(e)) => return Err(Error::from(e)),
                            Err(e) => Rendering::Unrenderable {
                                reason: e.reason(),
                                message: e.to_string(),
                            },
                        }
                    }
                    _ => Rendering::NeverDeployed,
                };
                Ok(DesiredApp {
                    app_id: row.app.id,
                    org_id: row.app.org_id,
                    workspace_id: row.app.workspace_id,
                    name: row.app.name.clone(),
                    host: row.app.host.clone(),
                    path_prefix: row.app.path_prefix.clone(),
                    namespace,
                    deployment_id: row.deployment.as_ref().map(|d| d.id),
                    asleep: row.revision.as_ref().is_some_and(|r| r.asleep),
                    replicas: row.revision.as_ref().map(|r| r.replicas),
                    render,
                })
            }
        })
        .collect();
    let apps: Vec<Result<DesiredApp, Error>> = stream::iter(jobs).buffered(8).collect().await;
    apps.into_iter().collect()
}

impl DesiredApp {
    pub fn rendered(&self) -> Option<&Rendered> {
        match &self.render {
            Rendering::Rendered { rendered, .. } => Some(rendered),
            _ => None,
        }
    }
}

/// How an app is summarised in reports.
#[derive(Debug, Clone, Serialize)]
pub struct AppRef {
    pub app_id: i64,
    pub name: String,
    pub workspace_id: i64,
    pub namespace: String,
}

impl From<&DesiredApp> for AppRef {
    fn from(a: &DesiredApp) -> Self {
        AppRef {
            app_id: a.app_id,
            name: a.name.clone(),
            workspace_id: a.workspace_id,
            namespace: a.namespace.clone(),
        }
    }
}
