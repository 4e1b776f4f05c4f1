//! `--watch`: probe every interval; after N failed probes in a row an incident opens
//! (webhook), and the automatic action is a re-apply only (no orphan is deleted, no
//! cluster recreated); the cluster's health row follows every probe (`/status` shows it);
//! failed repairs back off; `/metrics` and `/healthz` on `--listen`.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use super::cli::Args;
use super::diagnosis::{self, Verdict};
use super::error::Error;
use super::progress::Progress;
use super::{Ctx, lock, options, rebuild};
use loco_db::clusters::{self, Health};
use loco_telemetry::Metrics;
use loco_telemetry::ops::{self, Readiness};

/// The watch's metrics.
#[derive(Clone, Default)]
struct WatchMetrics {
    probes: Counter,
    probe_failures: Counter,
    incidents: Counter,
    apps_restored: Counter,
    detect_seconds: Gauge<f64, AtomicU64>,
    recover_seconds: Gauge<f64, AtomicU64>,
}

impl WatchMetrics {
    fn register(m: &Metrics) -> Self {
        let w = WatchMetrics::default();
        m.register(
            "resurrect_probes",
            "Probes of the cluster",
            w.probes.clone(),
        );
        m.register(
            "resurrect_probe_failures",
            "Probes that found the cluster unhealthy",
            w.probe_failures.clone(),
        );
        m.register(
            "resurrect_incidents",
            "Incidents opened",
            w.incidents.clone(),
        );
        m.register(
            "resurrect_apps_restored",
            "Apps re-applied by the watch",
            w.apps_restored.clone(),
        );
        m.register(
            "resurrect_time_to_detect_seconds",
            "Last incident: seconds from the first failed probe to the incident",
            w.detect_seconds.clone(),
        );
        m.register(
            "resurrect_time_to_recover_seconds",
            "Last incident: seconds from the first failed probe to healthy again",
            w.recover_seconds.clone(),
        );
        w
    }
}

/// The state of the watch between probes (pure, tested below).
#[derive(Debug, Default)]
pub struct Incident {
    pub failures: u32,
    pub first_failure: Option<Instant>,
    pub open: bool,
    pub backoff: u32,
}

/// What to do after a probe.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    Open,
    Repair,
    Close,
}

impl Incident {
    pub fn observe(&mut self, healthy: bool, threshold: u32, now: Instant) -> Vec<Step> {
        if healthy {
            let was_open = self.open;
            *self = Incident::default();
            return if was_open {
                vec![Step::Close]
            } else {
                vec![Step::Nothing]
            };
        }
        self.failures += 1;
        self.first_failure.get_or_insert(now);
        if self.failures < threshold.max(1) {
            return vec![Step::Nothing];
        }
        let mut steps = Vec::new();
        if !self.open {
            self.open = true;
            steps.push(Step::Open);
        }
        steps.push(Step::Repair);
        steps
    }

    /// The wait before the next probe: the interval, doubled per failed repair, at most 10 min.
    pub fn wait(&self, interval: Duration) -> Duration {
        let factor = 1u32 << self.backoff.min(5);
        (interval * factor)
            .min(Duration::from_secs(600))
            .max(interval)
    }
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<(), Error> {
    let metrics = Metrics::new("loco-resurrect");
    let m = WatchMetrics::register(&metrics);
    let ready = Readiness::default();
    let (listener, addr) = ops::bind(args.listen)
        .await
        .map_err(|e| Error::Usage(e.to_string()))?;
    tokio::spawn(ops::serve(
        listener,
        ops::router(metrics, ready.clone()),
        ops::shutdown_signal(),
    ));
    ready.set(true);
    tracing::info!(cluster = %ctx.cluster.name, %addr, interval = args.interval, threshold = args.failures_before_action, "watching");
    let (dopts, mut ropts) = options(args);
    // The automatic action is a re-apply: never a delete.
    ropts.prune_orphans = false;
    let http = reqwest::Client::builder().no_proxy().build().ok();
    let interval = Duration::from_secs(args.interval.max(1));
    let mut incident = Incident::default();
    let shutdown = ops::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        m.probes.inc();
        let (d, apps) = match diagnosis::diagnose(ctx, &dopts).await {
            Ok(x) => x,
            Err(e) => {
                // The database is down or erred: nothing is acted on, the incident state stays.
                tracing::warn!(error = %e, "probe failed; nothing is done this round");
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(interval) => {}
                }
                continue;
            }
        };
        let healthy = d.verdict == Verdict::Healthy;
        let reason = verdict_reason(d.verdict);
        let diag = Some((d, apps));
        if !healthy {
            m.probe_failures.inc();
        }
        if let Some((d, _)) = &diag {
            let health = match d.verdict {
                Verdict::Healthy => Health::Healthy,
                Verdict::ClusterUnreachable => Health::Unreachable,
                _ => Health::Degraded,
            };
            let _ = clusters::set_health(
                &ctx.db,
                ctx.cluster.id,
                health,
                (!healthy).then_some(reason),
            )
            .await;
        }
        let now = Instant::now();
        let first = incident.first_failure;
        for step in incident.observe(healthy, args.failures_before_action, now) {
            match step {
                Step::Nothing => {}
                Step::Open => {
                    m.incidents.inc();
                    let detect = incident
                        .first_failure
                        .map_or(0.0, |f| f.elapsed().as_secs_f64());
                    m.detect_seconds.set(detect);
                    tracing::warn!(cluster = %ctx.cluster.name, reason, detect_seconds = detect, "incident opened");
                    notify(
                        http.as_ref(),
                        args,
                        "incident_opened",
                        &ctx.cluster.name,
                        reason,
                    )
                    .await;
                }
                Step::Repair => {
                    let Some((d, apps)) = &diag else { continue };
                    if d.verdict == Verdict::ClusterUnreachable {
                        tracing::warn!(cluster = %ctx.cluster.name, "not acting: {}", d.plan.join("; "));
                        continue;
                    }
                    if let Some(why) = &d.guard.refuses {
                        if !args.force {
                            tracing::warn!(cluster = %ctx.cluster.name, "not acting (guard): {why}");
                            continue;
                        }
                        tracing::warn!(cluster = %ctx.cluster.name, "--force overrides the guard ({why}); re-applying");
                    }
                    let held = match lock::ClusterLock::take(
                        &args.database_url,
                        ctx.cluster.id,
                        &ctx.cluster.name,
                    )
                    .await
                    {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!(error = %e, "not acting this round");
                            continue;
                        }
                    };
                    let progress = Progress::new(&ctx.cluster.name, true);
                    match rebuild::run(ctx, d, apps, &ropts, &progress).await {
                        Ok(r) => {
                            m.apps_restored.inc_by(r.apps_applied as u64);
                            if r.complete() {
                                incident.backoff = 0;
                            } else {
                                incident.backoff += 1;
                            }
                            tracing::info!(cluster = %ctx.cluster.name, applied = r.apps_applied, ready = r.apps_ready, "re-applied");
                        }
                        Err(e) => {
                            incident.backoff += 1;
                            tracing::warn!(error = %e, "repair failed; backing off");
                        }
                    }
                    held.release().await;
                }
                Step::Close => {
                    let recover = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
                    m.recover_seconds.set(recover);
                    tracing::info!(cluster = %ctx.cluster.name, recover_seconds = recover, "incident closed");
                    notify(
                        http.as_ref(),
                        args,
                        "incident_closed",
                        &ctx.cluster.name,
                        "healthy",
                    )
                    .await;
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(incident.wait(interval)) => {}
        }
    }
}

fn verdict_reason(v: Verdict) -> &'static str {
    match v {
        Verdict::ClusterUnreachable => "api_server_unreachable",
        Verdict::EmptyCluster => "cluster_empty",
        Verdict::PlatformMissing => "platform_missing",
        Verdict::AppsDrifted => "apps_drifted",
        Verdict::Healthy => "healthy",
    }
}

/// POSTs `{"event", "cluster", "reason", "at"}` to the webhook, if one is set; a failing
/// webhook is logged and never stops the watch.
async fn notify(
    http: Option<&reqwest::Client>,
    args: &Args,
    event: &str,
    cluster: &str,
    reason: &str,
) {
    let (Some(http), Some(url)) = (http, &args.webhook_url) else {
        return;
    };
    let body = serde_json::json!({
        "event": event, "cluster": cluster, "reason": reason,
        "at": chrono::Utc::now().to_rfc3339(),
    });
    match http
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(
            status = r.status().as_u16(),
            "webhook refused the notification"
        ),
        Err(e) => tracing::warn!(error = %e, "webhook not reached"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_opens_after_n_failures_and_closes_on_health() {
        let mut i = Incident::default();
        let t = Instant::now();
        assert_eq!(i.observe(false, 3, t), vec![Step::Nothing]);
        assert_eq!(i.observe(false, 3, t), vec![Step::Nothing]);
        assert_eq!(i.observe(false, 3, t), vec![Step::Open, Step::Repair]);
        assert_eq!(i.observe(false, 3, t), vec![Step::Repair], "opened once");
        assert_eq!(i.observe(true, 3, t), vec![Step::Close]);
        assert_eq!(i.observe(true, 3, t), vec![Step::Nothing]);
        // A blip shorter than the threshold opens nothing.
        assert_eq!(i.observe(false, 3, t), vec![Step::Nothing]);
        assert_eq!(i.observe(true, 3, t), vec![Step::Nothing]);
    }

    #[test]
    fn failed_repairs_back_off_up_to_ten_minutes() {
        let mut i = Incident::default();
        let s = Duration::from_secs(30);
        assert_eq!(i.wait(s), s);
        i.backoff = 2;
        assert_eq!(i.wait(s), Duration::from_secs(120));
        i.backoff = 50;
        assert_eq!(i.wait(s), Duration::from_secs(600));
    }
}
