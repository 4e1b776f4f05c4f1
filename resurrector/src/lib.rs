//! loco-resurrect: probe a cluster, diagnose what broke, and rebuild it from the loco
//! database (render + apply). Runs outside the cluster it protects, from the bundle alone
//! (database URL, KEK); the cluster's credentials come from the database.
//!
//! - [`diagnosis`]: the probes and the read-only compare, one report (changes nothing).
//! - [`rebuild`]: `--once`, platform first, then apps in waves through the shared engines.
//! - [`watch`]: `--watch`, re-apply after N failed probes, health rows, metrics, webhook.
//! - [`lock`]: one resurrector per cluster (Postgres advisory lock).

pub mod bundle;
pub mod cli;
pub mod desired;
pub mod diagnosis;
pub mod error;
pub mod lock;
pub mod probe;
pub mod progress;
pub mod rebuild;
pub mod report;
pub mod watch;

use std::time::Duration;

pub use bundle::Ctx;
pub use cli::{Args, Mode, Output};
pub use error::Error;

use loco_platform::HelmConfig;

/// Runs one command line to its end.
pub async fn run(args: Args) -> Result<(), Error> {
    let cluster = args
        .cluster
        .clone()
        .ok_or_else(|| Error::Usage("name the cluster: --cluster NAME (or LOCO_CLUSTER)".into()))?;
    let kek = bundle::kek_from_env()?;
    let ctx = Ctx::connect(&args.database_url, kek, &cluster).await?;
    match args.mode() {
        Mode::Watch => watch::run(&ctx, &args).await,
        mode => once(&ctx, &args, mode).await,
    }
}

/// The options of the diagnosis and the rebuild, from the flags.
pub fn options(args: &Args) -> (diagnosis::Options, rebuild::Options) {
    let chart = (!args.no_chart).then(|| HelmConfig {
        helm: args.helm.clone(),
        chart_dir: args.chart_dir.clone(),
        timeout: Duration::from_secs(args.ready_deadline_seconds),
    });
    (
        diagnosis::Options {
            chart: chart.is_some(),
            gateway_url: args.gateway_url.clone().filter(|u| !u.is_empty()),
            prune_orphans: args.prune_orphans,
            concurrency: args.concurrency,
        },
        rebuild::Options {
            chart,
            wave_size: args.wave_size,
            concurrency: args.concurrency,
            ready_deadline: Duration::from_secs(args.ready_deadline_seconds),
            prune_orphans: args.prune_orphans,
            gateway_url: args.gateway_url.clone().filter(|u| !u.is_empty()),
            api_token_seconds: args.api_token_hours.clamp(1, 24 * 365) * 3600,
        },
    )
}

/// `diagnose`, `--dry-run` and `--once`.
async fn once(ctx: &Ctx, args: &Args, mode: Mode) -> Result<(), Error> {
    let (dopts, ropts) = options(args);
    // Acting takes the cluster's lock first; a diagnosis reads only.
    let lock = match mode {
        Mode::Once => Some(
            lock::ClusterLock::take(&args.database_url, ctx.cluster.id, &ctx.cluster.name).await?,
        ),
        _ => None,
    };
    let progress = progress::Progress::new(&ctx.cluster.name, args.output == Output::Json);
    progress.step("probing the cluster and comparing it with the database");
    let (d, apps) = diagnosis::diagnose(ctx, &dopts).await?;
    let result = match mode {
        Mode::Once => act(ctx, args, &d, &apps, &ropts, &progress).await,
        _ => {
            progress.finish();
            print_diagnosis(args, &d, mode == Mode::DryRun);
            if d.verdict == diagnosis::Verdict::Healthy {
                Ok(())
            } else {
                Err(Error::Unhealthy(ctx.cluster.name.clone()))
            }
        }
    };
    if let Some(l) = lock {
        l.release().await;
    }
    result
}

async fn act(
    ctx: &Ctx,
    args: &Args,
    d: &diagnosis::Diagnosis,
    apps: &[desired::DesiredApp],
    ropts: &rebuild::Options,
    progress: &progress::Progress,
) -> Result<(), Error> {
    if d.verdict == diagnosis::Verdict::ClusterUnreachable {
        progress.finish();
        return Err(Error::Unreachable {
            cluster: ctx.cluster.name.clone(),
            cause: d.api.error.clone().unwrap_or_default(),
        });
    }
    if let Some(why) = &d.guard.refuses {
        if !args.force {
            progress.finish();
            print_diagnosis(args, d, true);
            return Err(Error::Refused(format!("{why}; nothing was done")));
        }
        eprintln!("warning: --force overrides the guard ({why}). What follows:");
        for p in &d.plan {
            eprintln!("  - {p}");
        }
    }
    let report = rebuild::run(ctx, d, apps, ropts, progress).await;
    progress.finish();
    let report = report?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
        Output::Text => print!("{}", report::rebuild_text(&report)),
    }
    if report.complete() {
        Ok(())
    } else {
        Err(Error::Incomplete(format!(
            "cluster {}: {} app(s) not Ready and {} not rebuilt (see the report); run again once the cause is fixed, a rerun converges",
            ctx.cluster.name, report.apps_not_ready, report.apps_failed
        )))
    }
}

fn print_diagnosis(args: &Args, d: &diagnosis::Diagnosis, dry_run: bool) {
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(d).unwrap_or_default()),
        Output::Text => print!("{}", report::diagnosis_text(d, dry_run)),
    }
}
