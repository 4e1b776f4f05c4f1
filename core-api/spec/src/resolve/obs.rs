//! Observability: logs, metrics and tracing settings.

use super::*;

pub(super) fn resolve_obs(
    cx: &mut Ctx<'_>,
    obs: Option<&raw::Obs>,
    metrics_port: Option<u16>,
) -> Obs {
    let l = obs.and_then(|o| o.logging.as_ref());
    let m = obs.and_then(|o| o.metrics.as_ref());
    let t = obs.and_then(|o| o.tracing.as_ref());
    let logging = Logging {
        enabled: l
            .and_then(|l| l.enabled.as_ref())
            .map_or(defaults::LOG_ENABLED, |e| e.value),
        retention_seconds: cx.duration(
            &l.and_then(|l| l.retention_period.clone()),
            "Obs.Logging.RetentionPeriod",
            defaults::LOG_RETENTION,
            3_600,
            365 * 86_400,
        ),
        structured: l
            .and_then(|l| l.structured.as_ref())
            .is_some_and(|e| e.value),
    };
    let metrics_path = match m.and_then(|m| m.path.as_ref()) {
        Some(p) => {
            cx.http_path(p, "Obs.Metrics.Path", "\"/metrics\"");
            p.value.clone()
        }
        None => defaults::METRICS_PATH.to_owned(),
    };
    let metrics = Metrics {
        enabled: m.and_then(|m| m.enabled.as_ref()).is_some_and(|e| e.value),
        path: metrics_path,
        port: metrics_port.unwrap_or(9090),
    };
    let sample_rate = match t.and_then(|t| t.sample_rate.as_ref()) {
        Some(s) if (0.0..=1.0).contains(&s.value) => s.value,
        Some(s) => {
            cx.issues.push(
                s.span.clone(),
                "Obs.Tracing.SampleRate",
                E::OutOfRange,
                format!("sample rate {} is outside 0.0-1.0", s.value),
                "write a fraction, e.g. 0.1 to trace one request in ten",
            );
            defaults::TRACING_SAMPLE_RATE
        }
        None => defaults::TRACING_SAMPLE_RATE,
    };
    let tags = t
        .and_then(|t| t.tags.as_ref())
        .map(|tags| {
            tags.0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    Obs {
        logging,
        metrics,
        tracing: Tracing {
            enabled: t.and_then(|t| t.enabled.as_ref()).is_some_and(|e| e.value),
            sample_rate,
            tags,
        },
    }
}
