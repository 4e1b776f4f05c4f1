//! `--once`: repair what the diagnosis found, through the shared engines only: the
//! platform layer (`loco_platform::apply`, the function `loco-api platform apply` calls),
//! then the apps workspace by workspace in bounded waves (`loco_apply::Applier` with
//! force, preflight at factor 1 before each wave), then the wait for readiness.
//!
//! It never invents a deployment row: it re-applies each app's active deployment, which
//! is the truth (a failed deployment's revision was already reverted by its deploy).
//! Every step is an audit event of the app; the cluster's health row says `rebuilding`
//! while it acts, which keeps loco-api's deploy workers out of the cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt as _, stream};
use serde::Serialize;

mod admit;

use admit::{preflight, preflight_failed, waves};

use super::Ctx;
use super::desired::{AppRef, DesiredApp, Rendering};
use super::diagnosis::{AppDiagnosis, Diagnosis, Verdict};
use super::error::Error;
use super::probe::{self, ApiCredential};
use super::progress::Progress;
use loco_apply::{Applier, ApplyConfig};
use loco_db::clusters::{self, Health};
use loco_db::events::{self, Actor, NewEvent};
use loco_platform::{ApplyOptions, HelmConfig, Release};
use loco_preflight::ListGate;
use loco_render::Rendered;

const ACTOR: Actor = Actor::System("resurrector");

/// How to rebuild.
#[derive(Debug, Clone)]
pub struct Options {
    pub chart: Option<HelmConfig>,
    pub wave_size: usize,
    pub concurrency: usize,
    pub ready_deadline: Duration,
    pub prune_orphans: bool,
    pub gateway_url: Option<String>,
    pub api_token_seconds: i64,
}

/// What happened to one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Was as the database says; nothing written.
    Unchanged,
    /// Re-applied and Ready (awake) or back at 0 replicas (asleep).
    Ready,
    /// Re-applied, not Ready before the deadline.
    NotReady,
    /// Preflight found no room for it even at factor 1.
    PreflightRefused,
    ApplyFailed,
    /// Not touched: never deployed, in flight, blocked or unrenderable (the diagnosis says why).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppOutcome {
    #[serde(flatten)]
    pub app: AppRef,
    pub outcome: Outcome,
    pub asleep: bool,
    pub replicas: Option<i32>,
    pub objects_written: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    pub detect_seconds: f64,
    pub platform_seconds: f64,
    pub apps_seconds: f64,
    pub ready_seconds: f64,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub cluster: String,
    pub before: Verdict,
    pub apps_desired: usize,
    pub apps_ready: usize,
    pub apps_asleep: usize,
    pub apps_applied: usize,
    pub apps_not_ready: usize,
    pub apps_failed: usize,
    pub apps_answering: usize,
    pub objects_written: usize,
    pub platform_applied: bool,
    pub api_token_reissued: bool,
    pub orphans_deleted: Vec<String>,
    pub orphans_reported: Vec<String>,
    pub not_restorable: Vec<String>,
    pub phases: Phases,
    pub apps: Vec<AppOutcome>,
}

impl RebuildReport {
    /// Every deployed app is as the database says.
    pub fn complete(&self) -> bool {
        self.apps_not_ready == 0 && self.apps_failed == 0
    }
}

/// Repairs the cluster. `d` is the diagnosis just made (its guard already passed or forced).
pub async fn run(
    ctx: &Ctx,
    d: &Diagnosis,
    apps: &[DesiredApp],
    opts: &Options,
    progress: &Progress,
) -> Result<RebuildReport, Error> {
    let started = Instant::now();
    clusters::set_health(
        &ctx.db,
        ctx.cluster.id,
        Health::Rebuilding,
        Some("resurrector_rebuilding"),
    )
    .await?;
    let result = rebuild(ctx, d, apps, opts, progress).await;
    let (health, reason) = match &result {
        Ok(r) if r.complete() => (Health::Healthy, None),
        Ok(_) => (Health::Degraded, Some("rebuild_incomplete")),
        Err(e) => (Health::Degraded, Some(e.reason())),
    };
    clusters::set_health(&ctx.db, ctx.cluster.id, health, reason).await?;
    let mut report = result?;
    report.phases.detect_seconds = d.seconds;
    report.phases.total_seconds = d.seconds + started.elapsed().as_secs_f64();
    Ok(report)
}

async fn rebuild(
    ctx: &Ctx,
    d: &Diagnosis,
    apps: &[DesiredApp],
    opts: &Options,
    progress: &Progress,
) -> Result<RebuildReport, Error> {
    let mut report = RebuildReport {
        cluster: ctx.cluster.name.clone(),
        before: d.verdict,
        apps_desired: apps.iter().filter(|a| a.deployment_id.is_some()).count(),
        apps_ready: 0,
        apps_asleep: 0,
        apps_applied: 0,
        apps_not_ready: 0,
        apps_failed: 0,
        apps_answering: 0,
        objects_written: 0,
        platform_applied: false,
        api_token_reissued: false,
        orphans_deleted: Vec::new(),
        orphans_reported: Vec::new(),
        not_restorable: d.not_restorable.clone(),
        phases: Phases::default(),
        apps: Vec::new(),
    };

    // 1. The platform layer, when it needs it.
    let t = Instant::now();
    let platform_needs = d
        .platform
        .as_ref()
        .is_some_and(|p| p.needs_apply(opts.chart.is_some()));
    if platform_needs && let Some(row) = loco_db::platform::current(&ctx.db, ctx.cluster.id).await?
    {
        progress.step(&format!(
            "platform: Gateway API {} CRDs, Gateway{}",
            loco_platform::GATEWAY_API_VERSION,
            if opts.chart.is_some() {
                ", chart"
            } else {
                ", loco-api's identity"
            }
        ));
        let release = Release {
            chart_version: row.chart_version.clone(),
            values: row.values.clone(),
        };
        let popts = ApplyOptions {
            dry_run: false,
            helm: opts.chart.clone(),
            ..ApplyOptions::default()
        };
        loco_platform::apply(&ctx.client, ctx.installer.secret(), &release, &popts)
            .await
            .map_err(|e| {
                Error::Failed(format!(
                    "installing the platform layer failed ({}): {e}; no app was touched",
                    e.reason()
                ))
            })?;
        report.platform_applied = true;
    }
    if d.api_credential == ApiCredential::Rejected {
        progress.step("loco-api: a new ServiceAccount token, stored sealed");
        reissue_api_credential(ctx, opts.api_token_seconds).await?;
        report.api_token_reissued = true;
    }
    report.phases.platform_seconds = t.elapsed().as_secs_f64();

    // 2. The apps, workspace by workspace, in waves.
    let t = Instant::now();
    let diag: BTreeMap<i64, &AppDiagnosis> = d.apps.iter().map(|a| (a.app.app_id, a)).collect();
    let applier = Applier::new(
        ctx.client.clone(),
        ApplyConfig {
            concurrency: opts.concurrency,
            rollout_deadline: opts.ready_deadline,
            force: true,
            ..ApplyConfig::default()
        },
    );
    let to_apply: Vec<&DesiredApp> = apps
        .iter()
        .filter(|a| diag.get(&a.app_id).is_some_and(|x| x.needs_apply()) && a.rendered().is_some())
        .collect();
    let waves = waves(&to_apply, opts.wave_size);
    let mut outcomes: BTreeMap<i64, AppOutcome> = BTreeMap::new();
    let total = to_apply.len();
    let mut done = 0usize;
    // Preflight: one LIST of the pods for the whole rebuild, then each admitted app's
    // pods counted against the next (the controllers are still creating the previous
    // wave's pods when the next one is weighed, so a fresh LIST per wave would miss
    // them); the nodes are read again before each wave.
    let gate = ListGate::new(ctx.client.clone(), None);
    let (mut first_nodes, mut pods) = if waves.is_empty() {
        (None, Vec::new())
    } else {
        let snap = gate.snapshot().await.map_err(preflight_failed)?;
        (Some(snap.nodes), snap.pods)
    };
    let rendered_of = |apps: &[&DesiredApp]| -> Vec<Rendered> {
        apps.iter().filter_map(|a| a.rendered().cloned()).collect()
    };
    // The next wave's objects are read while this one writes.
    let mut read_ahead = None;
    for (i, wave) in waves.iter().enumerate() {
        progress.step(&format!(
            "apps: wave {} of {} ({} app(s), {done} of {total} done)",
            i + 1,
            waves.len(),
            wave.len()
        ));
        // The first wave uses the snapshot's nodes; later ones read them again.
        let nodes = match first_nodes.take() {
            Some(n) => n,
            None => gate.nodes().await.map_err(preflight_failed)?,
        };
        let admitted = preflight(&nodes, &mut pods, wave, &mut outcomes)?;
        let rendered = rendered_of(&admitted);
        let read = match read_ahead.take() {
            Some(r) => r,
            None => applier.read_live(&rendered).await,
        };
        let next = waves.get(i + 1).map(|w| rendered_of(w));
        let (results, ahead) = futures::join!(applier.apply_each_read(&rendered, read), async {
            match &next {
                Some(n) => Some(applier.read_live(n).await),
                None => None,
            }
        });
        read_ahead = ahead;
        let mut audit = Vec::with_capacity(admitted.len());
        for (a, (r, err)) in admitted.iter().zip(results) {
            let written = r.written.len();
            report.objects_written += written;
            let (outcome, message) = match &err {
                None => (Outcome::Ready, None),
                Some(e) => (
                    Outcome::ApplyFailed,
                    Some(format!("{} ({})", e, e.reason())),
                ),
            };
            let (reason, text) = match &err {
                None => (
                    "app_resurrected",
                    format!(
                        "loco-resurrect re-applied deployment {} ({written} objects written)",
                        a.deployment_id.unwrap_or_default()
                    ),
                ),
                Some(e) => (
                    "app_resurrect_failed",
                    format!(
                        "loco-resurrect could not re-apply deployment {}: {}",
                        a.deployment_id.unwrap_or_default(),
                        e.reason()
                    ),
                ),
            };
            audit.push(record(ctx, a, reason, text));
            outcomes.insert(a.app_id, outcome_of(a, outcome, written, message));
        }
        // The wave's audit events, a few at a time (one by one would add a round trip
        // per app to the rebuild).
        stream::iter(audit)
            .buffer_unordered(AUDIT_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
        done += wave.len();
    }
    report.phases.apps_seconds = t.elapsed().as_secs_f64();

    // 3. Readiness, all applied apps at once, each up to the deadline.
    let t = Instant::now();
    let applied: Vec<&DesiredApp> = to_apply
        .iter()
        .copied()
        .filter(|a| {
            outcomes
                .get(&a.app_id)
                .is_some_and(|o| o.outcome == Outcome::Ready)
        })
        .collect();
    progress.step(&format!(
        "ready: waiting for {} app(s) (deadline {}s)",
        applied.len(),
        opts.ready_deadline.as_secs()
    ));
    let waits: Vec<_> = applied
        .iter()
        .map(|a| {
            let applier = applier.clone();
            async move {
                let r = match a.rendered() {
                    Some(r) => applier.wait_rollout(r).await,
                    None => Ok(()),
                };
                (a.app_id, r)
            }
        })
        .collect();
    let waited: Vec<(i64, Result<(), loco_apply::ApplyError>)> = stream::iter(waits)
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (id, r) in waited {
        if let (Err(e), Some(o)) = (r, outcomes.get_mut(&id)) {
            o.outcome = Outcome::NotReady;
            o.message = Some(format!("{e} ({})", e.reason()));
        }
    }
    if let Some(url) = &opts.gateway_url {
        answer_through_gateway(
            url,
            apps,
            &mut outcomes,
            opts.ready_deadline.min(Duration::from_secs(60)),
        )
        .await;
    }
    report.phases.ready_seconds = t.elapsed().as_secs_f64();

    // 4. Orphans: reported, deleted only when asked.
    for n in &d.extra_namespaces {
        if opts.prune_orphans {
            progress.step(&format!("orphans: deleting namespace {}", n.name));
            match applier.delete_app(&n.name).await {
                Ok(()) => report.orphans_deleted.push(n.name.clone()),
                Err(e) => {
                    tracing::warn!(namespace = %n.name, error = %e, "orphan namespace not deleted");
                    report.orphans_reported.push(format!(
                        "{} (not deleted: {})",
                        n.name,
                        e.reason()
                    ));
                }
            }
        } else {
            report.orphans_reported.push(n.name.clone());
        }
    }

    // The apps the rebuild did not touch keep their diagnosis.
    for a in apps {
        if outcomes.contains_key(&a.app_id) {
            continue;
        }
        let x = diag.get(&a.app_id);
        let outcome = match x.map(|x| x.state) {
            Some(super::diagnosis::AppState::Healthy) => Outcome::Unchanged,
            _ => Outcome::Skipped,
        };
        let message = match (&a.render, x.and_then(|x| x.message.clone())) {
            (Rendering::NeverDeployed, _) => Some("never deployed: nothing to rebuild".into()),
            (_, m) => m,
        };
        outcomes.insert(a.app_id, outcome_of(a, outcome, 0, message));
    }
    for o in outcomes.into_values() {
        let deployed = apps
            .iter()
            .any(|a| a.app_id == o.app.app_id && a.deployment_id.is_some());
        match o.outcome {
            Outcome::Ready | Outcome::Unchanged if deployed => {
                report.apps_ready += 1;
                if o.asleep {
                    report.apps_asleep += 1;
                }
                if o.answer_status.is_some() {
                    report.apps_answering += 1;
                }
            }
            Outcome::NotReady => report.apps_not_ready += 1,
            Outcome::ApplyFailed | Outcome::PreflightRefused => report.apps_failed += 1,
            Outcome::Skipped if deployed => report.apps_failed += 1,
            _ => {}
        }
        if matches!(o.outcome, Outcome::Ready | Outcome::NotReady) {
            report.apps_applied += 1;
        }
        report.apps.push(o);
    }
    Ok(report)
}

fn outcome_of(
    a: &DesiredApp,
    outcome: Outcome,
    written: usize,
    message: Option<String>,
) -> AppOutcome {
    AppOutcome {
        app: AppRef::from(a),
        outcome,
        asleep: a.asleep,
        replicas: a.replicas,
        objects_written: written,
        answer_status: None,
        message,
    }
}

/// A new token for loco-api's ServiceAccount (the platform layer just re-created it),
/// stored sealed as the cluster's credentials: loco-api's workers deploy again.
async fn reissue_api_credential(ctx: &Ctx, ttl_seconds: i64) -> Result<(), Error> {
    let kubeconfig =
        loco_platform::api_kubeconfig(&ctx.client, ctx.installer.secret(), ttl_seconds)
            .await
            .map_err(|e| Error::Failed(format!("issuing loco-api a new token failed: {e}")))?;
    let creds = loco_db::kubeconfig::InlineKubeconfig::parse(kubeconfig)
        .map_err(|e| Error::Failed(format!("loco-api's new kubeconfig is not usable: {e}")))?;
    clusters::set_credentials(&ctx.db, &ctx.kek, ctx.cluster.id, &creds).await?;
    if probe::api_credential(&creds, ctx.cluster.id).await != ApiCredential::Accepted {
        return Err(Error::Failed(
            "loco-api's new token is not accepted by the API server; check that the platform layer applied core-api/rbac/loco-api.yaml".into(),
        ));
    }
    Ok(())
}

/// Asks each awake, Ready app through the gateway until it answers or `deadline` passes
/// (routes take a moment to be programmed).
async fn answer_through_gateway(
    url: &str,
    apps: &[DesiredApp],
    outcomes: &mut BTreeMap<i64, AppOutcome>,
    deadline: Duration,
) {
    let Ok(http) = reqwest::Client::builder().no_proxy().build() else {
        return;
    };
    let until = Instant::now() + deadline;
    for a in apps {
        let Some(o) = outcomes.get_mut(&a.app_id) else {
            continue;
        };
        if o.outcome != Outcome::Ready || a.asleep || a.replicas == Some(0) {
            continue;
        }
        loop {
            let answer = probe::through_gateway(&http, url, &a.host, &a.path_prefix).await;
            if answer.answers || Instant::now() >= until {
                o.answer_status = answer.status.filter(|_| answer.answers);
                if !answer.answers {
                    o.outcome = Outcome::NotReady;
                    o.message = Some(format!(
                        "Ready, but it does not answer through the gateway (last status {})",
                        answer.status.map_or("none".to_owned(), |s| s.to_string())
                    ));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Audit events written at once after each wave.
const AUDIT_CONCURRENCY: usize = 8;

async fn record(ctx: &Ctx, a: &DesiredApp, reason: &'static str, message: String) {
    let e = NewEvent {
        org_id: a.org_id,
        workspace_id: Some(a.workspace_id),
        app_id: Some(a.app_id),
        deployment_id: a.deployment_id,
        actor: ACTOR,
        reason,
        message,
    };
    if let Err(err) = events::record(&ctx.db, &e).await {
        tracing::warn!(app_id = a.app_id, error = %err, "could not record the audit event");
    }
}
