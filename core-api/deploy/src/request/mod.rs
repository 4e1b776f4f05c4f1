//! The write side of every change: one transaction writes the new revision and its
//! pending deployment, under the app's advisory lock; the workers take it from there.
//!
//! Every change builds on the app's *intended* state ([`revisions::intended`]: the
//! newest revision that did not fail, queued or applied), merges env into it and checks
//! conflicts against it: a scale right after a deploy scales the new image, even while
//! that deploy still waits in the queue (the queue then supersedes the older deployment,
//! [`loco_db::queue`]). After a failed deploy the intended state is what runs again. A
//! change that would change nothing writes nothing and answers with the deployment that
//! carries the intended state; two wakes (or sleeps) of one app make one revision.
//!
//! `validate`: field checks; `env`: how a deploy's inline env merges into the intended
//! env; `scale`: scale arithmetic; `image_record`: loco's push records.

mod env;
mod image_record;
mod scale;
mod validate;

use super::Deployer;
use super::image::ImageRef;
use super::registry::{RegistryError, ResolvedImage};
use loco_crypto::Secret;
use loco_db::events::{self, Actor, NewEvent};
use loco_db::revisions::{self, EnvChange, NewRevision, Revision};
use loco_db::{DbError, Tx, apps, deployments};
use loco_spec::ResolvedSpec;
use scale::{same_pod_template, scale};
use validate::{check_matches_app, invalid};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new revision and a pending deployment (its id).
    Queued {
        deployment_id: i64,
        revision_id: i64,
    },
    /// Nothing would change: the active deployment's id; nothing was written.
    Unchanged { deployment_id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
        next_step: String,
    },
    #[error("the loco.toml has errors:\n{0}")]
    Spec(loco_spec::SpecErrors),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{message}")]
    Conflict {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// The caller may not use this (another org's image).
    #[error("{message}")]
    Forbidden {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    /// The cluster or another dependency cannot do it now.
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
        next_step: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RequestError {
    fn from(e: sqlx::Error) -> Self {
        RequestError::Db(e.into())
    }
}

/// A deploy: a new image, a new loco.toml, or both.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub image: Option<String>,
    /// The loco.toml text; its inline [Env] values become the revision's (other names
    /// set through the env endpoint are kept).
    pub spec: Option<String>,
    pub profile: Option<String>,
}

/// A change that keeps the image: env, scale, rollback, sleep, wake.
#[derive(Debug, Clone)]
pub enum Change {
    /// The complete env of the next revision (a rolling restart).
    Env(Vec<(String, Secret)>),
    Scale {
        replicas: Option<u32>,
        cpu: Option<String>,
        memory: Option<String>,
    },
    /// Back to an earlier revision (default: the one deployed before the active one).
    Rollback {
        revision_id: Option<i64>,
    },
    Sleep,
    Wake,
}

impl Change {
    /// The audit event's reason for the request.
    fn requested(cause: &str) -> &'static str {
        match cause {
            "env" => "env_changed",
            "scale" => "scale_changed",
            "rollback" => "rollback_requested",
            "sleep" => "sleep_requested",
            "wake" => "wake_requested",
            _ => "deploy_requested",
        }
    }

    fn cause(&self) -> &'static str {
        match self {
            Change::Env(_) => "env",
            Change::Scale { .. } => "scale",
            Change::Rollback { .. } => "rollback",
            Change::Sleep => "sleep",
            Change::Wake => "wake",
        }
    }
}

/// The revision a change builds on: the app's intended state.
async fn base_revision(
    conn: &mut sqlx::PgConnection,
    app_id: i64,
) -> Result<Option<Revision>, DbError> {
    revisions::intended(&mut *conn, app_id).await
}

/// Refuses changes of an app whose deletion has started (its queue is fenced).
async fn refuse_deleting(tx: &mut Tx<'_>, app: &apps::App) -> Result<(), RequestError> {
    if apps::deleting(&mut **tx, app.id).await? {
        return Err(RequestError::Conflict {
            reason: "app_being_deleted",
            message: format!("app {} is being deleted", app.name),
            next_step: "create the app again once its deletion finished".into(),
        });
    }
    Ok(())
}

/// The deployment that carries `revision` while it is queued, running or active: a
/// change that would only repeat it answers with that one.
async fn carrier(tx: &mut Tx<'_>, revision: &Revision) -> Result<Option<i64>, DbError> {
    Ok(deployments::of_revision(&mut **tx, revision.id)
        .await?
        .filter(|d| d.active || d.status == "pending" || d.status == "applying")
        .map(|d| d.id))
}

impl Deployer {
    /// Validates, resolves the image's digest, and queues a deployment.
    pub async fn request_deploy(
        &self,
        app: &apps::App,
        req: &DeployRequest,
        actor: &Actor,
    ) -> Result<Outcome, RequestError> {
        // Read without the lock (the registry is asked below, outside any transaction),
        // then checked again under it.
        let base = base_revision(&mut *self.db.acquire().await?, app.id).await?;
        let (spec, spec_env) = match &req.spec {
            Some(text) => {
                let mut opts = self.config.spec.clone();
                opts.profile = req.profile.clone();
                let v =
                    loco_spec::validate(text, "loco.toml", &opts).map_err(RequestError::Spec)?;
                check_matches_app(&v.spec, app)?;
                let env: Vec<(String, String)> = v
                    .env_values
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (v.spec, Some(env))
            }
            None => {
                let Some(b) = &base else {
                    return Err(invalid(
                        "spec",
                        "the first deploy of an app needs its loco.toml",
                        "send the loco.toml text in `spec`",
                    ));
                };
                if req.profile.is_some() {
                    return Err(invalid(
                        "profile",
                        "a profile only applies together with a loco.toml",
                        "send the loco.toml in `spec` with the profile, or drop `profile`",
                    ));
                }
                let spec: ResolvedSpec = serde_json::from_value(b.spec.clone())
                    .map_err(|e| DbError::Corrupt(format!("revision {} spec: {e}", b.id)))?;
                (spec, None)
            }
        };
        let image = match (&req.image, &base) {
            (Some(reference), _) => Some(self.resolve(app, reference).await?),
            (None, Some(_)) => None,
            (None, None) => {
                return Err(invalid(
                    "image",
                    "the first deploy of an app needs an image",
                    "send `image`, e.g. registry.deploy-app.com/team/app:v1",
                ));
            }
        };
        let spec_json = serde_json::to_value(&spec)
            .map_err(|e| DbError::Corrupt(format!("spec serialisation: {e}")))?;

        let mut tx = self.db.begin().await?;
        loco_db::lock_app(&mut tx, app.id).await?;
        refuse_deleting(&mut tx, app).await?;
        // Another change landed between the read above and the lock: what was validated
        // and merged no longer starts from the app's state.
        if base_revision(&mut tx, app.id).await?.map(|r| r.id) != base.as_ref().map(|r| r.id) {
            return Err(RequestError::Conflict {
                reason: "app_changed_concurrently",
                message: format!(
                    "app {} changed while this deploy was being checked",
                    app.name
                ),
                next_step: "send the deploy again".into(),
            });
        }
        let (digest, pinned) = match (&image, &base) {
            (Some(i), _) => (i.digest.clone(), i.pinned()),
            (None, Some(b)) => (
                b.image_digest.clone(),
                b.image.clone().ok_or_else(|| {
                    invalid(
                        "image",
                        "the app's current revision records no image reference",
                        "send `image` with this deploy",
                    )
                })?,
            ),
            (None, None) => {
                return Err(invalid(
                    "image",
                    "the first deploy of an app needs an image",
                    "send `image`, e.g. registry.deploy-app.com/team/app:v1",
                ));
            }
        };
        let env = match &base {
            Some(b) => {
                let intended = revisions::env(&mut tx, &self.kek, app.id, b.id).await?;
                env::merge(b.id, intended, spec_env.as_deref())
            }
            None => env::first(spec_env.as_deref()),
        };
        let replicas = match &base {
            Some(b) => u32::try_from(b.replicas)
                .unwrap_or(spec.replicas.min)
                .clamp(spec.replicas.min, spec.replicas.max),
            None => spec.replicas.min,
        };

        // No change: the same spec, image, env and scale as the intended state, whose
        // deployment is queued, running or active.
        if let Some(b) = &base
            && !b.asleep
            && b.spec == spec_json
            && b.image.as_deref() == Some(pinned.as_str())
            && u32::try_from(b.replicas).ok() == Some(replicas)
            && matches!(env, EnvChange::CopyFrom(id) if id == b.id)
            && let Some(deployment_id) = carrier(&mut tx, b).await?
        {
            tx.commit().await?;
            return Ok(Outcome::Unchanged { deployment_id });
        }

        let revision = NewRevision {
            app_id: app.id,
            spec: &spec_json,
            image_digest: &digest,
            image: &pinned,
            replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
            asleep: false,
            cause: "deploy",
            env,
            created_by: actor.user_id(),
        };
        let out = queue(
            &mut tx,
            &self.kek,
            app,
            &revision,
            None,
            actor,
            &format!("deploy of {pinned}"),
        )
        .await?;
        if let Some(i) = &image {
            image_record::record_image(&mut tx, app, i).await?;
        }
        tx.commit().await?;
        self.notify();
        Ok(out)
    }

    /// Queues a change that keeps the image (env, scale, rollback, sleep, wake).
    pub async fn request_change(
        &self,
        app: &apps::App,
        change: Change,
        actor: &Actor,
    ) -> Result<Outcome, RequestError> {
        let cause = change.cause();
        let mut tx = self.db.begin().await?;
        loco_db::lock_app(&mut tx, app.id).await?;
        refuse_deleting(&mut tx, app).await?;
        let Some(base) = base_revision(&mut tx, app.id).await? else {
            return Err(RequestError::Conflict {
                reason: "app_not_deployed",
                message: format!(
                    "app {} has no revision yet; a {cause} changes a deployed app",
                    app.name
                ),
                next_step: "deploy the app once (POST .../deployments with image and spec)".into(),
            });
        };
        let image = base.image.clone().ok_or_else(|| RequestError::Conflict {
            reason: "revision_unrenderable",
            message: "the app's current revision records no image reference".into(),
            next_step: "deploy the app again with `image`".into(),
        })?;
        let mut spec_json = base.spec.clone();
        let mut digest = base.image_digest.clone();
        let mut image_ref = image;
        let mut replicas = base.replicas;
        let mut asleep = base.asleep;
        // Whether the new revision runs the base's pod template: then its deployment keeps
        // that template's id and the apply replaces no pod.
        let (env, what, same_template) = match change {
            Change::Env(values) => {
                let names: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
                let what = format!(
                    "env replaced: {} variable(s): {}",
                    names.len(),
                    names.join(", ")
                );
                // A rolling restart: a new template even when the values are the same.
                (EnvChange::Replace(values), what, false)
            }
            Change::Scale {
                replicas: r,
                cpu,
                memory,
            } => {
                let mut spec: ResolvedSpec = serde_json::from_value(spec_json.clone())
                    .map_err(|e| DbError::Corrupt(format!("revision {} spec: {e}", base.id)))?;
                let before = spec.clone();
                let what = scale(
                    &mut spec,
                    &mut replicas,
                    r,
                    cpu,
                    memory,
                    self.config.spec.max_replicas,
                )?;
                spec_json = serde_json::to_value(&spec)
                    .map_err(|e| DbError::Corrupt(format!("spec serialisation: {e}")))?;
                (
                    EnvChange::CopyFrom(base.id),
                    what,
                    same_pod_template(&before, &spec),
                )
            }
            Change::Rollback { revision_id } => {
                let target = match revision_id {
                    Some(id) => {
                        let r = revisions::get(&mut *tx, app.org_id, id).await?;
                        if r.app_id != app.id {
                            return Err(DbError::NotFound("revision").into());
                        }
                        r
                    }
                    None => previous_deployed(&mut tx, app).await?.ok_or_else(|| {
                        RequestError::Conflict {
                            reason: "no_rollback_target",
                            message: format!(
                                "app {} has no earlier ready deployment to roll back to",
                                app.name
                            ),
                            next_step:
                                "name a revision with `revision_id` (GET .../revisions lists them)"
                                    .into(),
                        }
                    })?,
                };
                let Some(target_image) = target.image.clone() else {
                    return Err(RequestError::Conflict {
                        reason: "revision_unrenderable",
                        message: format!("revision {} records no image reference", target.id),
                        next_step: "roll back to a newer revision, or deploy the image again"
                            .into(),
                    });
                };
                spec_json = target.spec.clone();
                digest = target.image_digest.clone();
                image_ref = target_image;
                replicas = target.replicas;
                asleep = false;
                (
                    EnvChange::CopyFrom(target.id),
                    format!("rollback to revision {}", target.id),
                    false,
                )
            }
            Change::Sleep | Change::Wake => {
                let to_sleep = cause == "sleep";
                if base.asleep == to_sleep {
                    // Single-flight: the app's lock makes every later caller see the first
                    // one's revision; while its deployment runs, they all get its id.
                    if base.cause == cause
                        && let Some(deployment_id) = carrier(&mut tx, &base).await?
                        && deployment_id != active_id(&mut tx, app).await?.unwrap_or(0)
                    {
                        tx.commit().await?;
                        return Ok(Outcome::Unchanged { deployment_id });
                    }
                    return Err(if to_sleep {
                        RequestError::Conflict {
                            reason: "already_asleep",
                            message: format!("app {} is already asleep", app.name),
                            next_step: "nothing to do; wake it with POST .../wake".into(),
                        }
                    } else {
                        RequestError::Conflict {
                            reason: "not_asleep",
                            message: format!("app {} is awake", app.name),
                            next_step: "nothing to do".into(),
                        }
                    });
                }
                asleep = to_sleep;
                let what = if to_sleep {
                    "sleep: 0 replicas, routes to the reviver"
                } else {
                    "wake"
                };
                (EnvChange::CopyFrom(base.id), what.to_owned(), true)
            }
        };
        let revision = NewRevision {
            app_id: app.id,
            spec: &spec_json,
            image_digest: &digest,
            image: &image_ref,
            replicas,
            asleep,
            cause,
            env,
            created_by: actor.user_id(),
        };
        // The template running is the active deployment's, when it deployed the base; with
        // nothing deployed (the first deploy failed) there is none to keep.
        // The template is the one the base's deployment runs (queued or applied).
        let template = match deployments::of_revision(&mut *tx, base.id).await? {
            Some(d) if same_template => Some(d.template_id()),
            _ => None,
        };
        let out = queue(&mut tx, &self.kek, app, &revision, template, actor, &what).await?;
        tx.commit().await?;
        self.notify();
        Ok(out)
    }

    async fn resolve(
        &self,
        app: &apps::App,
        reference: &str,
    ) -> Result<ResolvedImage, RequestError> {
        let image = ImageRef::parse(reference, &self.config.registry.default_registry).map_err(|e| {
            invalid(
                "image",
                e.message,
                "send a reference like registry.deploy-app.com/team/app:v1 or ...@sha256:<digest>",
            )
        })?;
        // On the platform's registry a repository belongs to the org whose name is its
        // first path component (org names are unique in the database); one pull
        // credential reads every repository there, so this check is what keeps org B
        // from running org A's private image. Checked before the registry is asked.
        if self.config.registry.is_platform(&image.registry) {
            let org = loco_db::orgs::get_org(&self.db, app.org_id).await?;
            let prefix = format!("{}/", org.name);
            if !image.repository.starts_with(&prefix) {
                return Err(RequestError::Forbidden {
                    reason: "image_not_owned",
                    message: format!(
                        "{} is not a repository of org {}: on {} an org deploys only repositories under {prefix}",
                        image.repository, org.name, image.registry
                    ),
                    next_step: format!(
                        "push the image to {}/{prefix}<name> and deploy that reference",
                        image.registry
                    ),
                });
            }
        }
        Ok(self.registry.resolve(&image).await?)
    }
}

/// Writes the revision and its pending deployment, and records the request. `template`:
/// the template id of the deployment whose pod template the revision keeps, if it does.
async fn queue(
    tx: &mut Tx<'_>,
    kek: &loco_crypto::Kek,
    app: &apps::App,
    revision: &NewRevision<'_>,
    template: Option<i64>,
    actor: &Actor,
    what: &str,
) -> Result<Outcome, DbError> {
    let revision_id = revisions::create(tx, kek, revision).await?;
    let deployment_id = match template {
        Some(t) => deployments::create_keeping_template(tx, app.id, revision_id, t, actor).await?,
        None => deployments::create(tx, app.id, revision_id, actor).await?,
    };
    events::record(
        &mut **tx,
        &NewEvent {
            org_id: app.org_id,
            workspace_id: Some(app.workspace_id),
            app_id: Some(app.id),
            deployment_id: Some(deployment_id),
            actor: actor.clone(),
            reason: Change::requested(revision.cause),
            message: format!(
                "{what} of app {}: revision {revision_id} ({}) queued as deployment {deployment_id}",
                app.name, revision.cause
            )
            .chars()
            .take(4000)
            .collect(),
        },
    )
    .await?;
    Ok(Outcome::Queued {
        deployment_id,
        revision_id,
    })
}

/// The id of the app's active deployment.
async fn active_id(tx: &mut Tx<'_>, app: &apps::App) -> Result<Option<i64>, DbError> {
    Ok(deployments::active(&mut **tx, app.id).await?.map(|d| d.id))
}

/// The revision deployed before the active one: that of the newest deployment the
/// active one superseded (one that was ready, not one superseded while queued).
async fn previous_deployed(tx: &mut Tx<'_>, app: &apps::App) -> Result<Option<Revision>, DbError> {
    let id = sqlx::query_scalar!(
        "SELECT d.revision_id FROM deployments d
          WHERE d.app_id = $1 AND d.status = 'superseded'
            AND d.reason IS DISTINCT FROM 'superseded_in_queue'
            AND d.revision_id <> coalesce(
                (SELECT a.revision_id FROM deployments a WHERE a.app_id = $1 AND a.active), 0)
          ORDER BY d.id DESC LIMIT 1",
        app.id
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(revisions::get(&mut **tx, app.org_id, id).await?))
}
