//! One deployment, from claimed to ready or failed: render the revision (and the active
//! one, the revert target), pass the preflight gate, apply with prune, rollout wait and
//! revert, then record the result. Every step is an audit event of the deployment, which
//! is also what the API streams to the client.

use loco_preflight::Purpose;
use tokio::sync::mpsc;

use super::gate::{request_for, summary};
use super::input::{self, Placement};
use super::{Deployer, FailReason};
use loco_apply::{Applier, Progress};
use loco_db::deployments::{self, Status};
use loco_db::events::{self, Actor, NewEvent};
use loco_db::queue::{self, Claimed};
use loco_db::{DbError, revisions};
use loco_render::{ObjectRef, Rendered};
use loco_spec::ResolvedSpec;

const ACTOR: Actor = Actor::System("deploy");

/// Runs a claimed deployment to its end. Errors are the database's only: everything that
/// goes wrong in the cluster ends as a failed deployment with a reason.
pub async fn run(d: &Deployer, claimed: &Claimed) -> Result<(), DbError> {
    let id = claimed.deployment_id;
    let at = input::placement(&d.db, claimed.app_id).await?;
    let lease = d.config.lease;
    let renewer = {
        let db = d.db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match queue::renew(&db, id, lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(deployment_id = id, error = %e, "lease renewal failed")
                    }
                }
            }
        })
    };
    let result = attempt(d, &at, claimed).await;
    renewer.abort();
    match result {
        Ok(rendered) => succeed(d, &at, id, &rendered).await,
        Err(f) => fail(d, &at, id, f).await,
    }
}

/// Why a deployment failed: a snake_case reason and a sentence with the next step.
pub struct Failed {
    pub reason: &'static str,
    pub message: String,
}

impl<E: FailReason> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed {
            reason: e.fail_reason(),
            message: e.to_string(),
        }
    }
}

async fn attempt(d: &Deployer, at: &Placement, claimed: &Claimed) -> Result<Rendered, Failed> {
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

    let client = d.clusters.get(&d.db, &d.kek, at.cluster_id).await?;
    let input::RenderedRevision {
        rendered: desired,
        spec,
    } = input::render_revision(&d.db, &d.kek, &d.config.render, at, &revision, &deployment).await?;

    // The revert target: what the active deployment applied.
    let active = deployments::active(&d.db, at.app.id).await?;
    let (previous, previous_inventory) = match active.filter(|a| a.id != id) {
        Some(a) => {
            let inventory: Vec<ObjectRef> =
                serde_json::from_value(a.inventory.clone()).unwrap_or_default();
            let prev_rev = revisions::get(&d.db, at.app.org_id, a.revision_id).await?;
            let rendered =
                input::render_revision(&d.db, &d.kek, &d.config.render, at, &prev_rev, &a)
                    .await
                    .map_err(|e| {
                        tracing::warn!(deployment_id = id, error = %e, "the active revision cannot be rendered; no revert target");
                    })
                    .ok()
                    .map(|r| r.rendered);
            (rendered, inventory)
        }
        None => (None, Vec::new()),
    };

    preflight(d, at, id, &revision, &spec, &desired, &client).await?;

    let applier = Applier::new(client, d.config.apply.clone());
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
        .deploy(&desired, previous.as_ref(), &previous_inventory, Some(&tx))
        .await;
    drop(tx);
    // Progress events land before the final status, so a stream reads them in order.
    let _ = recorder.await;
    match outcome {
        Ok(_) => Ok(desired),
        Err(f) => {
            let mut message = f.message.clone();
            match (f.reverted, &f.revert_error, &previous) {
                (true, _, Some(_)) => {
                    message.push_str(" The previous deployment was re-applied and keeps serving.")
                }
                (true, _, None) => message.push_str(" What this first deploy created was removed."),
                (false, Some(e), _) => message.push_str(&format!(" Reverting failed as well: {e}")),
                (false, None, _) => {}
            }
            Err(Failed {
                reason: f.reason,
                message,
            })
        }
    }
}

async fn preflight(
    d: &Deployer,
    at: &Placement,
    id: i64,
    revision: &revisions::Revision,
    spec: &ResolvedSpec,
    desired: &Rendered,
    client: &kube::Client,
) -> Result<(), Failed> {
    let purpose = if revision.cause == "wake" {
        Purpose::Wake
    } else {
        Purpose::Deploy
    };
    let max = spec.autoscaling.as_ref().map(|_| spec.replicas.max);
    let Some(req) = request_for(
        desired,
        purpose,
        max,
        d.config.preflight_factor,
        spec.profile.as_deref(),
    ) else {
        return Ok(());
    };
    let gate = d.gates.gate(at.cluster_id, client);
    let verdict = gate.check(&req).await.map_err(|e| Failed {
        reason: "preflight_unavailable",
        message: format!(
            "the preflight check could not read the cluster: {e}. Nothing was applied; deploy again when the cluster answers"
        ),
    })?;
    if !verdict.pass {
        return Err(Failed {
            reason: "preflight_failed",
            message: format!("{}. Nothing was applied.", summary(&verdict)),
        });
    }
    record(d, at, id, "preflight_passed", summary(&verdict)).await?;
    Ok(())
}

async fn succeed(
    d: &Deployer,
    at: &Placement,
    id: i64,
    rendered: &Rendered,
) -> Result<(), DbError> {
    let inventory = serde_json::to_value(rendered.inventory())
        .map_err(|e| DbError::Corrupt(format!("inventory: {e}")))?;
    let mut tx = d.db.begin().await?;
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

async fn fail(d: &Deployer, at: &Placement, id: i64, f: Failed) -> Result<(), DbError> {
    tracing::warn!(
        deployment_id = id,
        app_id = at.app.id,
        reason = f.reason,
        "deployment failed"
    );
    let message: String = f.message.chars().take(3900).collect();
    let mut tx = d.db.begin().await?;
    match deployments::set_status(&mut tx, id, Status::Failed, Some(f.reason), Some(&message)).await
    {
        // Someone else finished it meanwhile (a lease taken over): theirs stands.
        Err(DbError::InvalidTransition { .. }) => return Ok(()),
        other => other?,
    }
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
