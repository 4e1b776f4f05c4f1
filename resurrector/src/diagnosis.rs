//! One report of what is broken, why, and what `--once` would do about it: the probes,
//! the database's apps compared with the cluster (loco-apply's read-only compare), the
//! orphans, and the guard. Classification and the guard are plain functions, tested from
//! literals below.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;

use super::Ctx;
use super::desired::{self, AppRef, DesiredApp, Rendering};
use super::error::Error;
use super::probe::{self, Answer, ApiCredential, ApiProbe, PlatformProbe};
use loco_apply::{AppComparison, Applier, ApplyConfig, Drift, LiveAppNamespace};
use loco_platform::GatewayValues;

/// The headline, in the order an operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    ClusterUnreachable,
    EmptyCluster,
    PlatformMissing,
    AppsDrifted,
    Healthy,
}

/// One app's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    Healthy,
    /// Nothing of it is in the cluster.
    Missing,
    /// Some objects are missing, stale or edited by hand.
    Drifted,
    /// An object it needs exists without loco's label: apply refuses it; nobody's object is touched.
    Blocked,
    /// Objects as loco applied them, but it does not answer through the gateway.
    NotAnswering,
    NeverDeployed,
    InFlight,
    Unrenderable,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppDiagnosis {
    #[serde(flatten)]
    pub app: AppRef,
    pub state: AppState,
    pub asleep: bool,
    pub replicas: Option<i32>,
    pub deployment_id: Option<i64>,
    pub drift: Vec<Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AppDiagnosis {
    /// Whether `--once` re-applies it.
    pub fn needs_apply(&self) -> bool {
        matches!(
            self.state,
            AppState::Missing | AppState::Drifted | AppState::NotAnswering
        )
    }
}

/// The maxUnhealthy-style guard: a database that holds far fewer apps for a cluster
/// than the cluster holds loco app namespaces is probably restored from too long ago or
/// the wrong one, and acting on it would roll back or prune a live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guard {
    pub database_apps: usize,
    pub cluster_namespaces: usize,
    /// `Some(why)` when the guard refuses.
    pub refuses: Option<String>,
}

pub fn guard(cluster: &str, database_apps: usize, cluster_namespaces: usize) -> Guard {
    let refuses = (cluster_namespaces > 0 && database_apps * 2 < cluster_namespaces).then(|| {
        format!(
            "the database holds {database_apps} deployed app(s) for cluster {cluster}, but the cluster holds {cluster_namespaces} loco app namespaces: a database restored from too long ago (or the wrong database) would roll back or prune a live cluster. Check DATABASE_URL; --force acts anyway"
        )
    });
    Guard {
        database_apps,
        cluster_namespaces,
        refuses,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub cluster: String,
    /// The cluster's health row as the last probe or rebuild left it.
    pub cluster_status: String,
    pub verdict: Verdict,
    pub summary: String,
    pub api: ApiProbe,
    pub platform: Option<PlatformProbe>,
    pub api_credential: ApiCredential,
    pub apps: Vec<AppDiagnosis>,
    /// loco-labelled app namespaces of the database's workspaces that no app owns.
    pub extra_namespaces: Vec<LiveAppNamespace>,
    /// loco-labelled app namespaces of workspaces the database does not know: left alone.
    pub foreign_namespaces: Vec<String>,
    pub guard: Guard,
    /// What `--once` would do, step by step.
    pub plan: Vec<String>,
    /// What no run can restore from the database (a snapshot would).
    pub not_restorable: Vec<String>,
    /// Whether the cluster has stored render settings (else the defaults are used).
    pub render_settings_stored: bool,
    pub seconds: f64,
}

impl Diagnosis {
    pub fn apps_needing_apply(&self) -> impl Iterator<Item = &AppDiagnosis> {
        self.apps.iter().filter(|a| a.needs_apply())
    }
}

/// How to diagnose.
#[derive(Debug, Clone)]
pub struct Options {
    pub chart: bool,
    pub gateway_url: Option<String>,
    pub prune_orphans: bool,
    pub concurrency: usize,
}

/// Probes and compares; changes nothing. An unreachable API server is a diagnosis, not an error.
pub async fn diagnose(ctx: &Ctx, opts: &Options) -> Result<(Diagnosis, Vec<DesiredApp>), Error> {
    let started = Instant::now();
    let api = probe::api(&ctx.client).await;
    // Read now, not at start-up: a watch outlives many rebuilds.
    let cluster_status = loco_db::clusters::get(&ctx.db, ctx.cluster.id)
        .await?
        .status;
    let release = loco_db::platform::current(&ctx.db, ctx.cluster.id).await?;
    let gateway = match &release {
        Some(r) => Some(GatewayValues::from_values(&r.values).map_err(|e| {
            Error::Failed(format!(
                "the recorded platform release {} is not usable: {e}",
                r.id
            ))
        })?),
        None => None,
    };
    let (settings, settings_stored) = desired::settings(&ctx.db, ctx.cluster.id).await?;
    let apps = desired::load(&ctx.db, &ctx.kek, ctx.cluster.id, &settings).await?;
    let creds = loco_db::clusters::credentials(&ctx.db, &ctx.kek, ctx.cluster.id).await?;
    let database_apps = apps.iter().filter(|a| a.deployment_id.is_some()).count();
    if !api.reachable() {
        let d = Diagnosis {
            cluster: ctx.cluster.name.clone(),
            cluster_status: cluster_status.clone(),
            verdict: Verdict::ClusterUnreachable,
            summary: format!(
                "cluster unreachable: {}",
                api.error.clone().unwrap_or_default()
            ),
            api,
            platform: None,
            api_credential: ApiCredential::Unknown,
            apps: Vec::new(),
            extra_namespaces: Vec::new(),
            foreign_namespaces: Vec::new(),
            guard: guard(&ctx.cluster.name, database_apps, 0),
            plan: vec![
                "nothing: the API server does not answer (bring the control plane back first)"
                    .into(),
            ],
            not_restorable: Vec::new(),
            render_settings_stored: settings_stored,
            seconds: started.elapsed().as_secs_f64(),
        };
        return Ok((d, apps));
    }
    let platform = probe::platform(&ctx.client, gateway.as_ref())
        .await
        .map_err(|e| {
            Error::Failed(format!(
                "reading the platform layer failed: {e}; nothing was done"
            ))
        })?;
    let api_credential = probe::api_credential(&creds, ctx.cluster.id).await;
    let applier = Applier::new(
        ctx.client.clone(),
        ApplyConfig {
            concurrency: opts.concurrency,
            ..ApplyConfig::default()
        },
    );
    let rendered: Vec<&DesiredApp> = apps.iter().filter(|a| a.rendered().is_some()).collect();
    let to_compare: Vec<loco_render::Rendered> = rendered
        .iter()
        .filter_map(|a| a.rendered().cloned())
        .collect();
    let compared = applier.compare(&to_compare, true).await.map_err(|e| {
        Error::Failed(format!(
            "comparing the apps with the cluster failed: {e}; nothing was done"
        ))
    })?;
    let live_ns = applier.loco_app_namespaces().await.map_err(|e| {
        Error::Failed(format!(
            "listing loco's namespaces failed: {e}; nothing was done"
        ))
    })?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| Error::Failed(format!("no HTTP client: {e}")))?;
    let mut by_app = std::collections::HashMap::new();
    for (a, c) in rendered.iter().zip(compared) {
        by_app.insert(a.app_id, c);
    }
    let mut out = Vec::with_capacity(apps.len());
    for a in &apps {
        let compared = by_app.remove(&a.app_id);
        let mut d = app_diagnosis(a, compared);
        if d.state == AppState::Healthy
            && !a.asleep
            && a.replicas.unwrap_or(1) > 0
            && let Some(url) = &opts.gateway_url
        {
            let answer = probe::through_gateway(&http, url, &a.host, &a.path_prefix).await;
            if !answer.answers {
                d.state = AppState::NotAnswering;
            }
            d.answer = Some(answer);
        }
        out.push(d);
    }
    // Extra: app namespaces of this database's workspaces that no app owns (an app
    // deleted while the cluster was away). Namespaces of workspaces the database does
    // not know (another installation's, or newer than a restored database) are only
    // counted: never extra, never pruned; the guard weighs them.
    let known: HashSet<&str> = apps.iter().map(|a| a.namespace.as_str()).collect();
    let workspaces: HashSet<String> = apps.iter().map(|a| a.workspace_id.to_string()).collect();
    let (ours, foreign): (Vec<&LiveAppNamespace>, Vec<&LiveAppNamespace>) = live_ns
        .iter()
        .partition(|n| n.workspace.as_ref().is_some_and(|w| workspaces.contains(w)));
    let extra: Vec<LiveAppNamespace> = ours
        .into_iter()
        .filter(|n| !known.contains(n.name.as_str()))
        .cloned()
        .collect();
    let foreign: Vec<String> = foreign.into_iter().map(|n| n.name.clone()).collect();
    let g = guard(&ctx.cluster.name, database_apps, live_ns.len());
    let mut d = Diagnosis {
        cluster: ctx.cluster.name.clone(),
        cluster_status: cluster_status.clone(),
        verdict: Verdict::Healthy,
        summary: String::new(),
        api,
        platform: Some(platform),
        api_credential,
        apps: out,
        extra_namespaces: extra,
        foreign_namespaces: foreign,
        guard: g,
        plan: Vec::new(),
        not_restorable: Vec::new(),
        render_settings_stored: settings_stored,
        seconds: 0.0,
    };
    classify(&mut d, live_ns.len(), opts);
    d.seconds = started.elapsed().as_secs_f64();
    Ok((d, apps))
}

fn app_diagnosis(
    a: &DesiredApp,
    compared: Option<Result<AppComparison, loco_apply::ApplyError>>,
) -> AppDiagnosis {
    let mut d = AppDiagnosis {
        app: AppRef::from(a),
        state: AppState::Healthy,
        asleep: a.asleep,
        replicas: a.replicas,
        deployment_id: a.deployment_id,
        drift: Vec::new(),
        answer: None,
        message: None,
    };
    match &a.render {
        Rendering::NeverDeployed => d.state = AppState::NeverDeployed,
        Rendering::InFlight => {
            d.state = AppState::InFlight;
            d.message =
                Some("a worker is applying a deployment of this app; it is left to it".into());
        }
        Rendering::Unrenderable { message, .. } => {
            d.state = AppState::Unrenderable;
            d.message = Some(message.clone());
        }
        Rendering::Rendered { .. } => match compared {
            Some(Ok(c)) => {
                d.state = if c.is_same() {
                    AppState::Healthy
                } else if c
                    .drift
                    .iter()
                    .any(|x| x.state == loco_apply::ObjectState::NotLoco)
                {
                    AppState::Blocked
                } else if c.is_missing() {
                    AppState::Missing
                } else {
                    AppState::Drifted
                };
                if d.state == AppState::Blocked {
                    d.message = Some("an object this app needs exists without loco's label; loco never changes it. Remove or rename it, then run again".into());
                }
                d.drift = c.drift;
            }
            Some(Err(e)) => {
                d.state = AppState::Unrenderable;
                d.message = Some(e.to_string());
            }
            None => d.state = AppState::Unrenderable,
        },
    }
    d
}

/// Sets the verdict, the summary, the plan and what cannot be restored.
pub fn classify(d: &mut Diagnosis, live_namespaces: usize, opts: &Options) {
    let platform_needs = d
        .platform
        .as_ref()
        .is_some_and(|p| p.needs_apply(opts.chart));
    let release_missing = d.platform.as_ref().is_some_and(|p| !p.release_recorded);
    let crds_all_missing = d.platform.as_ref().is_some_and(|p| {
        p.crds_wrong.len() == loco_platform::gateway_api_crds().map_or(0, |c| c.len())
    });
    let unhealthy = d
        .apps
        .iter()
        .filter(|a| !matches!(a.state, AppState::Healthy | AppState::NeverDeployed))
        .count();
    d.verdict = if !d.api.reachable() {
        Verdict::ClusterUnreachable
    } else if live_namespaces == 0 && crds_all_missing {
        Verdict::EmptyCluster
    } else if platform_needs {
        Verdict::PlatformMissing
    } else if unhealthy > 0 || !d.extra_namespaces.is_empty() {
        Verdict::AppsDrifted
    } else {
        Verdict::Healthy
    };
    d.summary = match d.verdict {
        Verdict::ClusterUnreachable => "cluster unreachable".into(),
        Verdict::EmptyCluster => format!(
            "empty cluster: no platform layer and none of the {} deployed app(s)",
            d.guard.database_apps
        ),
        Verdict::PlatformMissing => "platform layer missing or broken".into(),
        Verdict::AppsDrifted => format!(
            "{unhealthy} app(s) drifted{}",
            if d.extra_namespaces.is_empty() {
                String::new()
            } else {
                format!(", {} extra namespace(s)", d.extra_namespaces.len())
            }
        ),
        Verdict::Healthy => format!("healthy: {} app(s) as the database says", d.apps.len()),
    };
    let to_apply: Vec<&AppDiagnosis> = d.apps_needing_apply().collect();
    let mut plan = Vec::new();
    if let Some(why) = &d.guard.refuses {
        plan.push(format!("refuse to act (guard): {why}"));
    }
    if release_missing {
        plan.push(
            "leave the platform layer alone: no release is recorded for this cluster (`loco-api platform set-values` records one)"
                .into(),
        );
    } else if platform_needs {
        plan.push(format!(
            "install the platform layer: Gateway API {} CRDs, GatewayClass and Gateway, {}",
            loco_platform::GATEWAY_API_VERSION,
            if opts.chart {
                "then the chart (helm upgrade --install --atomic)"
            } else {
                "loco-api's identity (no chart)"
            }
        ));
    }
    if d.api_credential == ApiCredential::Rejected {
        plan.push("issue loco-api a new ServiceAccount token and store it sealed (its old one is rejected)".into());
    }
    if !to_apply.is_empty() {
        let asleep = to_apply.iter().filter(|a| a.asleep).count();
        plan.push(format!(
            "re-apply {} app(s) with force, workspace by workspace, preflight at factor 1 ({} asleep stay asleep): {}",
            to_apply.len(),
            asleep,
            names(&to_apply)
        ));
        plan.push("wait until they are Ready, then report each".into());
    }
    let blocked: Vec<&AppDiagnosis> = d
        .apps
        .iter()
        .filter(|a| a.state == AppState::Blocked)
        .collect();
    if !blocked.is_empty() {
        plan.push(format!(
            "leave {} app(s) blocked by objects without loco's label: {}",
            blocked.len(),
            names(&blocked)
        ));
    }
    let in_flight: Vec<&AppDiagnosis> = d
        .apps
        .iter()
        .filter(|a| a.state == AppState::InFlight)
        .collect();
    if !in_flight.is_empty() {
        plan.push(format!(
            "leave {} app(s) to the worker applying them: {}",
            in_flight.len(),
            names(&in_flight)
        ));
    }
    if !d.extra_namespaces.is_empty() {
        let list: Vec<&str> = d.extra_namespaces.iter().map(|n| n.name.as_str()).collect();
        plan.push(if opts.prune_orphans {
            format!(
                "delete {} extra namespace(s) (--prune-orphans): {}",
                list.len(),
                list.join(", ")
            )
        } else {
            format!(
                "report {} extra namespace(s), delete nothing (--prune-orphans deletes them): {}",
                list.len(),
                list.join(", ")
            )
        });
    }
    if d.cluster_status == "rebuilding" {
        plan.push("finish the rebuild an earlier run left (the cluster is marked rebuilding, so loco-api's deploy workers skip it until a --once run ends)".into());
    }
    if !d.foreign_namespaces.is_empty() {
        plan.push(format!(
            "leave {} app namespace(s) of workspaces this database does not know (another installation's, or newer than the database)",
            d.foreign_namespaces.len()
        ));
    }
    if plan.is_empty() || plan.iter().all(|p| p.starts_with("leave ")) {
        plan.insert(
            0,
            "nothing to repair: the cluster is as the database says".into(),
        );
    }
    let mut nr = Vec::new();
    if d.platform.as_ref().is_some_and(|p| p.tls_secret_missing) {
        nr.push("the Gateway's TLS Secret: the database holds no copy; a snapshot would restore it (loco-snapshot is not built yet), until then the HTTPS listener has no certificate".into());
    }
    d.plan = plan;
    d.not_restorable = nr;
}

fn names(apps: &[&AppDiagnosis]) -> String {
    let mut s: Vec<String> = apps.iter().take(10).map(|a| a.app.name.clone()).collect();
    if apps.len() > 10 {
        s.push(format!("and {} more", apps.len() - 10));
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_a_database_far_emptier_than_the_cluster() {
        assert!(
            guard("prod", 0, 0).refuses.is_none(),
            "empty both: nothing to protect"
        );
        assert!(
            guard("prod", 10, 0).refuses.is_none(),
            "an empty cluster is what a rebuild is for"
        );
        assert!(
            guard("prod", 10, 12).refuses.is_none(),
            "a few orphans are not a wrong database"
        );
        assert!(guard("prod", 5, 10).refuses.is_none(), "half is the line");
        let g = guard("prod", 0, 3);
        let why = g.refuses.unwrap();
        assert!(
            why.contains("0 deployed app(s)") && why.contains("3 loco app namespaces"),
            "{why}"
        );
        assert!(why.contains("--force"), "names the way out: {why}");
        assert!(guard("prod", 4, 10).refuses.is_some());
    }
}
