//! One deployment, from claimed to ready or failed: render the revision (and the active
//! one, the revert target), pass the preflight gate, apply with prune, rollout wait and
//! revert, then record the result. Every step is an audit event of the deployment, which
//! is also what the API streams to the client.

use std::sync::Arc;

use loco_preflight::Purpose;
use tokio::sync::mpsc;

use super::gate::{request_for_change, summary};
use super::input::{self, Placement};
use super::lease::Held;
use super::{Deployer, FailReason};
use loco_apply::{Applier, Previous, Progress};
use loco_db::deployments::{self, Status};
use loco_db::events::{self, Actor, NewEvent};
use loco_db::queue::{self, Claimed, Lease};
use loco_db::{DbError, revisions};
use loco_render::{ObjectRef, Rendered};
use loco_spec::ResolvedSpec;

const ACTOR: Actor = Actor::System("deploy");

/// Runs a claimed deployment to its end, while `held` (renewed by the worker loop) is
/// its lease. Errors are the database's only: everything that goes wrong in the cluster
/// ends as a failed deployment with a reason. A worker that lost its lease stops before
/// its next cluster write and records nothing: the worker that took over does.
pub async fn run(d: &Deployer, claimed: &Claimed, held: &Arc<Held>) -> Result<(), DbError> {
    let id = claimed.deployment_id;
    let at = input::placement(&d.db, claimed.app_id).await?;
    let result = attempt(d, &at, claimed, held).await;
    let finished = match result {
        Ok(rendered) => succeed(d, &at, held.lease(), &rendered).await,
        Err(f) => fail(d, &at, held.lease(), f).await,
    };
    match finished {
        Err(DbError::LeaseLost { .. }) => {
            tracing::warn!(
                deployment_id = id,
                "lease lost: another worker carries on with this deployment"
            );
            Ok(())
        }
        other => other,
    }
}

/// Why a deployment failed: a snake_case reason and a sentence with the next step.
/// Internals (database, cluster connection, credential errors) are `detail`: logged with
/// the deployment id, never stored in the row or events users read.
pub struct Failed {
    pub reason: &'static str,
    pub message: String,
    pub detail: Option<String>,
}

impl Failed {
    /// A failure whose cause is loco's or the operator's, not the user's: users see the
    /// reason and the deployment id only.
    pub fn internal(reason: &'static str, detail: impl std::fmt::Display) -> Self {
        Failed {
            reason,
            message: String::new(),
            detail: Some(detail.to_string()),
        }
    }

    /// What the deployment row and the failure event say.
    fn shown(&self, id: i64) -> String {
        match &self.detail {
            None => self.message.clone(),
            Some(_) => format!(
                "deployment {id} stopped on an internal error ({}); nothing more is shown here. Deploy again; if it keeps failing, give deployment id {id} to the operator.",
                self.reason
            ),
        }
    }
}

impl<E: FailReason> From<E> for Failed {
    fn from(e: E) -> Self {
        if e.is_internal() {
            Failed::internal(e.fail_reason(), &e)
        } else {
            Failed {
                reason: e.fail_reason(),
                message: e.to_string(),
                detail: None,
            }
        }
    }
}

/// Apply failures whose text is the cluster's, not about the app: connection errors,
/// API server status lines, what apply could not prepare.
const INTERNAL_APPLY_REASONS: &[&str] = &[
    "cluster_unreachable",
    "kube_api_error",
    "apply_prepare_failed",
    "apply_forbidden",
];

async fn attempt(
    d: &Deployer,
    at: &Placement,
    claimed: &Claimed,
    held: &Arc<Held>,
) -> Result<Rendered, Failed> {
    let id = claimed.deployment_id;
    let deployment = deployments::get(&d.db, at.app.org_id, id).await?;
    let revision = revisions::get(&d.db, at.app.org_id, deployment.revision_id).await?;
    record(
        d,
        at,
        id,
        if claimed.resumed {
            "deployment_resumed"
        } else {
            "deployment_applying"
        },
        format!(
            "applying revision {} ({}) of app {}{}",
            revision.id,
            revision.cause,
            at.app.name,
            if claimed.resumed {
                "; the worker that started it stopped, this one starts over"
            } else {
                ""
            }
        ),
    )
    .await?;

    let client = d.client(at.cluster_id).await?;
    let settings = d.render_settings(at.cluster_id).await?;
    let input::RenderedRevision {
        rendered: desired,
        spec,
    } = input::render_revision(&d.db, &d.kek, &settings, at, &revision, &deployment).await?;

    // The revert target: what the active deployment applied. One that cannot be
    // rendered is no "first deploy": its objects stay, and a revert says why it cannot.
    let active = deployments::active(&d.db, at.app.id).await?;
    let mut unrenderable = String::new();
    let previous = match active.filter(|a| a.id != id) {
        Some(a) => {
            let prev_rev = revisions::get(&d.db, at.app.org_id, a.revision_id).await?;
            match input::render_revision(&d.db, &d.kek, &settings, at, &prev_rev, &a).await {
                Ok(r) => Some(r.rendered),
                Err(e) => {
                    tracing::warn!(deployment_id = id, error = %e, "the active revision cannot be rendered; no revert target");
                    unrenderable = e.to_string();
                    None
                }
            }
        }
        None => None,
    };
    let previous = match &previous {
        Some(r) => Previous::Rendered(r),
        None if !unrenderable.is_empty() => Previous::Unrenderable(&unrenderable),
        None => Previous::FirstDeploy,
    };
    // Prune against the active deployment's inventory and those of the deployments that
    // failed after it: what a failed deploy left behind goes with the next good one.
    let mut previous_inventory: Vec<ObjectRef> = Vec::new();
    for (from, inventory) in deployments::prune_inventories(&d.db, at.app.id).await? {
        if from != id {
            previous_inventory.extend(input::inventory_of(from, inventory)?);
        }
    }

    let running = match previous {
        Previous::Rendered(r) => Some(r),
        _ => None,
    };
    let change = Change {
        revision: &revision,
        spec: &spec,
        desired: &desired,
        running,
    };
    preflight(d, at, id, change, &client).await?;

    // Recorded before the first write, so whatever this attempt applies is in some
    // inventory even if it dies midway.
    let inventory = serde_json::to_value(desired.inventory())
        .map_err(|e| DbError::Corrupt(format!("inventory: {e}")))?;
    let mut tx = d.db.begin().await.map_err(DbError::from)?;
    queue::fence(&mut tx, held.lease()).await?;
    deployments::set_inventory(&mut *tx, id, &inventory).await?;
    tx.commit().await.map_err(DbError::from)?;

    let applier = Applier::new(client, d.config.apply.clone()).with_fence(held.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
    let recorder = {
        let (d, at) = (d.clone(), at.clone());
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Err(e) = record(&d, &at, id, p.reason(), p.to_string()).await {
                    tracing::warn!(deployment_id = id, error = %e, "cannot record progress");
                }
            }
        })
    };
    let outcome = applier
        .deploy_with(&desired, previous, &previous_inventory, Some(&tx))
        .await;
    drop(tx);
    // Progress events land before the final status, so a stream reads them in order.
    let _ = recorder.await;
    // apply words what became of the cluster (reverted or not); an internal failure's
    // text is the cluster's, so it is logged and the user sees loco's sentence and the id.
    outcome.map(|_| desired).map_err(|f| {
        let message = if INTERNAL_APPLY_REASONS.contains(&f.reason) {
            tracing::warn!(deployment_id = id, reason = f.reason, detail = %f.message, "apply failed");
            format!(
                "applying deployment {id} failed on the cluster ({}); the details are logged under deployment id {id} for the operator.{}",
                f.reason,
                if f.reverted { " What it changed was reverted." } else { "" }
            )
        } else {
            f.message
        };
        Failed {
            reason: f.reason,
            message,
            detail: None,
        }
    })
}
/// What runs now and what is to run: the change the preflight gate judges.
struct Change<'a> {
    revision: &'a revisions::Revision,
    spec: &'a ResolvedSpec,
    desired: &'a Rendered,
    running: Option<&'a Rendered>,
}

async fn preflight(
    d: &Deployer,
    at: &Placement,
    id: i64,
    change: Change<'_>,
    client: &kube::Client,
) -> Result<(), Failed> {
    let Change {
        revision,
        spec,
        desired,
        running,
    } = change;
    let purpose = if revision.cause == "wake" {
        Purpose::Wake
    } else {
        Purpose::Deploy
    };
    let max = spec.autoscaling.as_ref().map(|_| spec.replicas.max);
    // Only what the change adds: the app's own pods that the rollout frees are not
    // counted as taken (a scale-down or a rollback to a smaller revision adds nothing).
    let Some(req) = request_for_change(
        desired,
        running,
        purpose,
        max,
        d.config.preflight_factor,
        spec.profile.as_deref(),
    ) else {
        return Ok(());
    };
    let gate = d.gates.gate(at.cluster_id, client);
    let verdict = gate.check(&req).await.map_err(|e| {
        tracing::warn!(deployment_id = id, error = %e, "preflight could not read the cluster");
        Failed {
            reason: "preflight_unavailable",
            message: format!(
                "the preflight check could not read the cluster (logged under deployment id {id}). Nothing was applied; deploy again when the cluster answers"
            ),
            detail: None,
        }
    })?;
    if !verdict.pass {
        return Err(Failed {
            reason: "preflight_failed",
            message: format!("{}. Nothing was applied.", summary(&verdict)),
            detail: None,
        });
    }
    record(d, at, id, "preflight_passed", summary(&verdict)).await?;
    Ok(())
}

async fn succeed(
    d: &Deployer,
    at: &Placement,
    lease: &Lease,
    rendered: &Rendered,
) -> Result<(), DbError> {
    let id = lease.deployment_id;
    let inventory = serde_json::to_value(rendered.inventory())
        .map_err(|e| DbError::Corrupt(format!("inventory: {e}")))?;
    let mut tx = d.db.begin().await?;
    queue::fence(&mut tx, lease).await?;
    deployments::set_inventory(&mut *tx, id, &inventory).await?;
    deployments::activate(&mut tx, id).await?;
    sqlx::query!(
        "UPDATE images i SET last_deployed_at = now()
           FROM deployments d JOIN app_revisions r ON r.id = d.revision_id
          WHERE d.id = $1 AND i.digest = r.image_digest AND i.org_id = $2",
        id,
        at.app.org_id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    d.metrics.finished("ready");
    Ok(())
}

async fn fail(d: &Deployer, at: &Placement, lease: &Lease, f: Failed) -> Result<(), DbError> {
    let id = lease.deployment_id;
    tracing::warn!(
        deployment_id = id,
        app_id = at.app.id,
        reason = f.reason,
        detail = f.detail.as_deref().unwrap_or(""),
        "deployment failed"
    );
    let message: String = f.shown(id).chars().take(3900).collect();
    let mut tx = d.db.begin().await?;
    queue::fence(&mut tx, lease).await?;
    deployments::set_status(&mut tx, id, Status::Failed, Some(f.reason), Some(&message)).await?;
    tx.commit().await?;
    d.metrics.finished("failed");
    Ok(())
}

async fn record(
    d: &Deployer,
    at: &Placement,
    id: i64,
    reason: &'static str,
    message: String,
) -> Result<(), DbError> {
    events::record(
        &d.db,
        &NewEvent {
            org_id: at.app.org_id,
            workspace_id: Some(at.app.workspace_id),
            app_id: Some(at.app.id),
            deployment_id: Some(id),
            actor: ACTOR,
            reason,
            message: message.chars().take(4000).collect(),
        },
    )
    .await?;
    Ok(())
}
