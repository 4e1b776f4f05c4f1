//! The reports as text for a person and JSON for a script (stdout; logs go to stderr).

use std::fmt::Write as _;

use super::diagnosis::{AppState, Diagnosis};
use super::rebuild::{Outcome, RebuildReport};

pub fn diagnosis_text(d: &Diagnosis, dry_run: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "cluster {}: {}", d.cluster, d.summary);
    let a = &d.api;
    let _ = writeln!(
        s,
        "  api server: readyz {}, livez {}{}",
        ok(a.readyz),
        ok(a.livez),
        a.error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    if a.reachable() {
        let _ = writeln!(
            s,
            "  nodes: {} ({} Ready, {} schedulable)",
            a.nodes, a.nodes_ready, a.nodes_schedulable
        );
    }
    if let Some(p) = &d.platform {
        let _ = writeln!(
            s,
            "  platform: CRDs {}, GatewayClass {}, Gateway {}{}, loco workloads {}{}",
            if p.crds_wrong.is_empty() {
                format!("{} ok", loco_platform::GATEWAY_API_VERSION)
            } else {
                format!(
                    "missing or not {}: {}",
                    loco_platform::GATEWAY_API_VERSION,
                    p.crds_wrong.join(", ")
                )
            },
            if p.gateway_class_accepted {
                "accepted"
            } else {
                "missing or not accepted"
            },
            if p.gateway_accepted {
                "accepted"
            } else {
                "missing or not accepted"
            },
            if p.gateway_programmed {
                " and programmed"
            } else {
                ""
            },
            p.workloads,
            if p.workloads_not_ready.is_empty() {
                String::new()
            } else {
                format!(" (not Ready: {})", p.workloads_not_ready.join(", "))
            }
        );
        let _ = writeln!(s, "  loco-api's credential: {:?}", d.api_credential);
    }
    if !d.apps.is_empty() {
        let _ = writeln!(s, "  apps ({}):", d.apps.len());
        for app in &d.apps {
            let mut line = format!(
                "    {:<24} {:<14} {}",
                app.app.name,
                state_name(app.state),
                app.app.namespace
            );
            if app.asleep {
                line.push_str(" (asleep)");
            }
            if let Some(ans) = &app.answer {
                let _ = write!(
                    line,
                    " gateway: {}",
                    ans.status.map_or("no answer".to_owned(), |c| c.to_string())
                );
            }
            let _ = writeln!(s, "{line}");
            // A missing app is missing whole; listing its objects says nothing more.
            let listed = if app.state == AppState::Missing { 0 } else { 8 };
            for x in app.drift.iter().take(listed) {
                let _ = writeln!(
                    s,
                    "        {:?}: {} {}",
                    x.state, x.object.kind, x.object.name
                );
            }
            if let Some(m) = &app.message {
                let _ = writeln!(s, "        {m}");
            }
        }
    }
    for n in &d.extra_namespaces {
        let _ = writeln!(
            s,
            "  extra: namespace {} (loco-labelled, no app in the database)",
            n.name
        );
    }
    if !d.foreign_namespaces.is_empty() {
        let _ = writeln!(
            s,
            "  {} app namespace(s) of workspaces this database does not know (left alone): {}",
            d.foreign_namespaces.len(),
            d.foreign_namespaces
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for n in &d.not_restorable {
        let _ = writeln!(s, "  not restorable yet: {n}");
    }
    if !d.render_settings_stored {
        let _ = writeln!(
            s,
            "  note: no render settings are stored for this cluster; the defaults are used"
        );
    }
    let _ = writeln!(
        s,
        "{}",
        if dry_run {
            "--once would (dry run: nothing written):"
        } else {
            "--once would:"
        }
    );
    for p in &d.plan {
        let _ = writeln!(s, "  - {p}");
    }
    let _ = writeln!(s, "(probed in {:.1}s)", d.seconds);
    s
}

pub fn rebuild_text(r: &RebuildReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cluster {}: {} of {} deployed app(s) as the database says ({} asleep, {} answering through the gateway); {} re-applied, {} objects written",
        r.cluster,
        r.apps_ready,
        r.apps_desired,
        r.apps_asleep,
        r.apps_answering,
        r.apps_applied,
        r.objects_written
    );
    if r.platform_applied {
        let _ = writeln!(s, "  platform layer installed");
    }
    if r.api_token_reissued {
        let _ = writeln!(s, "  loco-api has a new token (stored sealed)");
    }
    for a in &r.apps {
        let _ = writeln!(
            s,
            "  {:<24} {:<17} {}{}{}",
            a.app.name,
            outcome_name(a.outcome),
            a.app.namespace,
            if a.asleep { " (asleep)" } else { "" },
            a.answer_status
                .map(|c| format!(" gateway {c}"))
                .unwrap_or_default()
        );
        if let Some(m) = &a.message {
            let _ = writeln!(s, "      {m}");
        }
    }
    for n in &r.orphans_deleted {
        let _ = writeln!(s, "  deleted orphan namespace {n}");
    }
    for n in &r.orphans_reported {
        let _ = writeln!(
            s,
            "  orphan namespace {n} left in place (--prune-orphans deletes it)"
        );
    }
    for n in &r.not_restorable {
        let _ = writeln!(s, "  not restorable yet: {n}");
    }
    let p = &r.phases;
    let _ = writeln!(
        s,
        "  took {:.1}s: detect {:.1}s, platform {:.1}s, apps {:.1}s, all Ready {:.1}s",
        p.total_seconds, p.detect_seconds, p.platform_seconds, p.apps_seconds, p.ready_seconds
    );
    s
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "failing" }
}

pub fn state_name(s: AppState) -> &'static str {
    match s {
        AppState::Healthy => "healthy",
        AppState::Missing => "missing",
        AppState::Drifted => "drifted",
        AppState::Blocked => "blocked",
        AppState::NotAnswering => "not answering",
        AppState::NeverDeployed => "never deployed",
        AppState::InFlight => "deploy running",
        AppState::Unrenderable => "unrenderable",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Unchanged => "unchanged",
        Outcome::Ready => "rebuilt, Ready",
        Outcome::NotReady => "rebuilt, NOT Ready",
        Outcome::PreflightRefused => "no room (preflight)",
        Outcome::ApplyFailed => "apply failed",
        Outcome::Skipped => "skipped",
    }
}
