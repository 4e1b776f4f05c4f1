//! The write side of every change: one transaction writes the new revision and its
//! pending deployment, under the app's advisory lock; the workers take it from there.
//!
//! A change always starts from the *deployed* revision (the one the active deployment
//! applied), falling back to the newest when nothing is deployed yet: after a failed
//! deploy, scaling or changing env keeps the image that actually runs. A deploy that
//! would change nothing writes nothing and answers with the active deployment.

use std::collections::BTreeMap;

use super::Deployer;
use super::image::ImageRef;
use super::registry::{RegistryError, ResolvedImage};
use loco_crypto::Secret;
use loco_db::events::{self, Actor, NewEvent};
use loco_db::revisions::{self, EnvChange, NewRevision, Revision};
use loco_db::{DbError, Tx, apps, deployments};
use loco_spec::ResolvedSpec;

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

fn invalid(
    field: &'static str,
    message: impl Into<String>,
    next: impl Into<String>,
) -> RequestError {
    RequestError::Invalid {
        field,
        message: message.into(),
        next_step: next.into(),
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

/// The revision a change starts from.
async fn base_revision(
    conn: &mut sqlx::PgConnection,
    app_id: i64,
) -> Result<Option<Revision>, DbError> {
    match revisions::deployed(&mut *conn, app_id).await? {
        Some(r) => Ok(Some(r)),
        None => revisions::current(&mut *conn, app_id).await,
    }
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
            (Some(reference), _) => Some(self.resolve(reference).await?),
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
                        "the deployed revision records no image reference",
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
        let env = match (&spec_env, &base) {
            (Some(values), Some(b)) => {
                let mut merged: BTreeMap<String, Secret> =
                    revisions::env(&mut tx, &self.kek, app.id, b.id)
                        .await?
                        .into_iter()
                        .collect();
                let unchanged = values
                    .iter()
                    .all(|(k, v)| merged.get(k).is_some_and(|old| old.expose() == v));
                for (k, v) in values {
                    merged.insert(k.clone(), Secret::new(v.clone()));
                }
                if unchanged {
                    EnvChange::CopyFrom(b.id)
                } else {
                    EnvChange::Replace(merged.into_iter().collect())
                }
            }
            (Some(values), None) => EnvChange::Replace(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                    .collect(),
            ),
            (None, Some(b)) => EnvChange::CopyFrom(b.id),
            (None, None) => EnvChange::Replace(vec![]),
        };
        let replicas = match &base {
            Some(b) => u32::try_from(b.replicas)
                .unwrap_or(spec.replicas.min)
                .clamp(spec.replicas.min, spec.replicas.max),
            None => spec.replicas.min,
        };

        // No change: the same spec, image, env and scale as the active deployment.
        if let Some(b) = &base
            && let Some(active) = deployments::active(&mut *tx, app.id).await?
            && active.revision_id == b.id
            && !b.asleep
            && b.spec == spec_json
            && b.image.as_deref() == Some(pinned.as_str())
            && u32::try_from(b.replicas).ok() == Some(replicas)
            && matches!(env, EnvChange::CopyFrom(id) if id == b.id)
        {
            tx.commit().await?;
            return Ok(Outcome::Unchanged {
                deployment_id: active.id,
            });
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
            record_image(&mut tx, app, i).await?;
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
            message: "the deployed revision records no image reference".into(),
            next_step: "deploy the app again with `image`".into(),
        })?;
        let mut spec_json = base.spec.clone();
        let mut digest = base.image_digest.clone();
        let mut image_ref = image;
        let mut replicas = base.replicas;
        let mut asleep = base.asleep;
        // Whether the new revision runs the deployed one's pod template: then its
        // deployment keeps that template's id and the apply replaces no pod.
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
                    None => previous_deployed(&mut tx, app, base.id)
                        .await?
                        .ok_or_else(|| RequestError::Conflict {
                            reason: "no_rollback_target",
                            message: format!(
                                "app {} has no earlier ready deployment to roll back to",
                                app.name
                            ),
                            next_step:
                                "name a revision with `revision_id` (GET .../revisions lists them)"
                                    .into(),
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
            Change::Sleep => {
                if base.asleep {
                    return Err(RequestError::Conflict {
                        reason: "already_asleep",
                        message: format!("app {} is already asleep", app.name),
                        next_step: "nothing to do; wake it with POST .../wake".into(),
                    });
                }
                asleep = true;
                (
                    EnvChange::CopyFrom(base.id),
                    "sleep: 0 replicas, routes to the reviver".to_owned(),
                    true,
                )
            }
            Change::Wake => {
                if !base.asleep {
                    return Err(RequestError::Conflict {
                        reason: "not_asleep",
                        message: format!("app {} is awake", app.name),
                        next_step: "nothing to do".into(),
                    });
                }
                asleep = false;
                (EnvChange::CopyFrom(base.id), "wake".to_owned(), true)
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
        let template = match deployments::active(&mut *tx, app.id).await? {
            Some(active) if same_template && active.revision_id == base.id => {
                Some(active.template_id())
            }
            _ => None,
        };
        let out = queue(&mut tx, &self.kek, app, &revision, template, actor, &what).await?;
        tx.commit().await?;
        self.notify();
        Ok(out)
    }

    async fn resolve(&self, reference: &str) -> Result<ResolvedImage, RequestError> {
        let image = ImageRef::parse(reference, &self.config.registry.default_registry).map_err(|e| {
            invalid(
                "image",
                e.message,
                "send a reference like registry.deploy-app.com/team/app:v1 or ...@sha256:<digest>",
            )
        })?;
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

/// The revision of the newest ready-then-superseded deployment older than the active one.
async fn previous_deployed(
    tx: &mut Tx<'_>,
    app: &apps::App,
    active_revision: i64,
) -> Result<Option<Revision>, DbError> {
    let id = sqlx::query_scalar!(
        "SELECT revision_id FROM deployments
          WHERE app_id = $1 AND status = 'superseded' AND revision_id <> $2
          ORDER BY id DESC LIMIT 1",
        app.id,
        active_revision
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    Ok(Some(revisions::get(&mut **tx, app.org_id, id).await?))
}

/// Loco's record of an image it deployed (the janitor orders by these).
async fn record_image(tx: &mut Tx<'_>, app: &apps::App, i: &ResolvedImage) -> Result<(), DbError> {
    let tag = i.reference.tag.clone().unwrap_or_else(|| {
        // An untagged reference is recorded under its digest's hex prefix.
        format!("sha256-{}", &i.digest["sha256:".len()..][..16])
    });
    let repository = format!("{}/{}", i.reference.registry, i.reference.repository);
    sqlx::query!(
        "INSERT INTO images (org_id, app_id, repository, tag, digest, size_bytes, pushed_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (repository, tag) DO UPDATE
            SET digest = EXCLUDED.digest, size_bytes = EXCLUDED.size_bytes,
                app_id = EXCLUDED.app_id,
                pushed_at = CASE WHEN images.digest = EXCLUDED.digest THEN images.pushed_at ELSE now() END",
        app.org_id,
        app.id,
        repository,
        tag,
        i.digest,
        i64::try_from(i.size_bytes).unwrap_or(i64::MAX)
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A loco.toml deployed to an app must describe that app: same name and route.
fn check_matches_app(spec: &ResolvedSpec, app: &apps::App) -> Result<(), RequestError> {
    if spec.app.name != app.name {
        return Err(invalid(
            "spec",
            format!(
                "the loco.toml names app {:?}, but this is app {:?}",
                spec.app.name, app.name
            ),
            "deploy the loco.toml to the app it names, or change [Metadata] Name",
        ));
    }
    if spec.routing.host != app.host || spec.routing.path_prefix != app.path_prefix {
        return Err(invalid(
            "spec",
            format!(
                "the loco.toml routes {}{}, but the app is registered for {}{}",
                spec.routing.host, spec.routing.path_prefix, app.host, app.path_prefix
            ),
            "make [DomainConfig] Hostname and [Routing] PathPrefix match the app, or create an app for the new route",
        ));
    }
    Ok(())
}

/// Whether two specs render the same pod template: the replica bounds are the only part
/// of a spec that never reaches it (they size the Deployment or the HPA).
fn same_pod_template(before: &ResolvedSpec, after: &ResolvedSpec) -> bool {
    let mut before = before.clone();
    before.replicas = after.replicas;
    before == *after
}

/// Applies a scale change to the spec and replica count; returns what changed.
fn scale(
    spec: &mut ResolvedSpec,
    replicas: &mut i32,
    r: Option<u32>,
    cpu: Option<String>,
    memory: Option<String>,
    cap: u32,
) -> Result<String, RequestError> {
    let mut what = Vec::new();
    if r.is_none() && cpu.is_none() && memory.is_none() {
        return Err(invalid(
            "scale",
            "nothing to change",
            "send at least one of replicas, cpu, memory",
        ));
    }
    if let Some(n) = r {
        if spec.autoscaling.is_some() {
            return Err(invalid(
                "replicas",
                "the app autoscales: its HPA owns the replica count",
                "change Replicas.Min/Max in loco.toml and deploy it, or turn autoscaling off",
            ));
        }
        if n > cap {
            return Err(invalid(
                "replicas",
                format!("at most {cap} replicas on this platform"),
                format!("send a number from 0 to {cap}"),
            ));
        }
        *replicas = i32::try_from(n).unwrap_or(i32::MAX);
        spec.replicas.max = spec.replicas.max.max(n);
        spec.replicas.min = spec.replicas.min.min(n.max(1));
        what.push(format!("{n} replicas"));
    }
    if let Some(c) = cpu {
        let millis = loco_preflight::quantity::cpu_millis(&c).map_err(|e| {
            invalid(
                "cpu",
                format!("{c:?} is not a CPU quantity: {e}"),
                "send e.g. \"500m\" or \"1\"",
            )
        })?;
        if millis == 0 {
            return Err(invalid("cpu", "must be more than 0", "send e.g. \"250m\""));
        }
        spec.resources.cpu = c.clone();
        spec.resources.cpu_millis = millis;
        what.push(format!("cpu {c}"));
    }
    if let Some(m) = memory {
        let bytes = loco_preflight::quantity::bytes(&m).map_err(|e| {
            invalid(
                "memory",
                format!("{m:?} is not a memory quantity: {e}"),
                "send e.g. \"512Mi\" or \"1Gi\" (Mi/Gi, not MB)",
            )
        })?;
        if bytes < 4 * 1024 * 1024 {
            return Err(invalid(
                "memory",
                "must be at least 4Mi",
                "send e.g. \"256Mi\"",
            ));
        }
        spec.resources.memory = m.clone();
        spec.resources.memory_bytes = bytes;
        what.push(format!("memory {m}"));
    }
    Ok(format!("scale: {}", what.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::{same_pod_template, scale};
    use loco_spec::ResolvedSpec;

    fn spec() -> ResolvedSpec {
        let src =
            "[Metadata]\nName = \"web\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n";
        loco_spec::validate(src, "loco.toml", &Default::default())
            .unwrap()
            .spec
    }

    fn scaled(r: Option<u32>, cpu: Option<&str>, memory: Option<&str>) -> ResolvedSpec {
        let mut s = spec();
        let mut replicas = 1;
        scale(
            &mut s,
            &mut replicas,
            r,
            cpu.map(str::to_owned),
            memory.map(str::to_owned),
            20,
        )
        .unwrap();
        s
    }

    #[test]
    fn only_a_replica_only_scale_keeps_the_pod_template() {
        let base = spec();
        let more = scaled(Some(5), None, None);
        assert_ne!(more.replicas, base.replicas, "the bounds widen to 5");
        assert!(same_pod_template(&base, &more));
        assert!(same_pod_template(&base, &scaled(Some(0), None, None)));
        assert!(!same_pod_template(
            &base,
            &scaled(Some(2), Some("250m"), None)
        ));
        assert!(!same_pod_template(&base, &scaled(None, None, Some("1Gi"))));
        // The same quantity as before renders the same requests.
        let cpu = base.resources.cpu.clone();
        assert!(same_pod_template(&base, &scaled(None, Some(&cpu), None)));
    }
}
