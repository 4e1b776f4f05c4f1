//! Health checks: HTTP, TCP or gRPC probes with their timings.

use super::*;

pub(super) fn resolve_health(
    cx: &mut Ctx<'_>,
    h: Option<&raw::Health>,
    routed: Option<u16>,
    grpc: Option<u16>,
) -> Option<Health> {
    let empty = raw::Health::default();
    let h = h.unwrap_or(&empty);
    let kind = match &h.kind {
        Some(k) => {
            if !cx.enum_value(k, "Health.Type", &["http", "grpc", "command"]) {
                return None;
            }
            k.value.as_str()
        }
        None => defaults::HEALTH_TYPE,
    };
    let interval = cx.ranged(
        &h.interval,
        "Health.Interval",
        1,
        3600,
        defaults::HEALTH_INTERVAL_SECONDS,
        " seconds",
    );
    let timeout = cx.ranged(
        &h.timeout,
        "Health.Timeout",
        1,
        3600,
        defaults::HEALTH_TIMEOUT_SECONDS,
        " seconds",
    );
    let fail = cx.ranged(
        &h.fail_threshold,
        "Health.FailThreshold",
        1,
        100,
        defaults::HEALTH_FAIL_THRESHOLD,
        "",
    );
    let grace = cx.ranged(
        &h.startup_grace_period,
        "Health.StartupGracePeriod",
        0,
        300,
        defaults::HEALTH_STARTUP_GRACE_SECONDS,
        " seconds",
    );
    let port = match &h.port {
        Some(p) => cx.port(p, "Health.Port"),
        None => None,
    };
    let not_for = |cx: &mut Ctx<'_>, span: Option<Range<usize>>, key: &str, applies: &str| {
        if let Some(span) = span {
            cx.issues.push(
                span,
                format!("Health.{key}"),
                E::ConflictingKeys,
                format!("Health.{key} only applies when Type = {applies:?}, but Type = {kind:?}"),
                format!("remove {key}, or set Type = {applies:?}"),
            );
        }
    };
    let check = match kind {
        "grpc" => {
            not_for(cx, span_of(&h.path), "Path", "http");
            not_for(cx, span_of(&h.command), "Command", "command");
            let port = port.or(grpc).or(routed);
            HealthCheck::Grpc {
                port: port?,
                service: h
                    .grpc_service
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
            }
        }
        "command" => {
            not_for(cx, span_of(&h.path), "Path", "http");
            not_for(cx, span_of(&h.grpc_service), "GRPCService", "grpc");
            not_for(cx, span_of(&h.port), "Port", "http");
            match &h.command {
                Some(c) if !c.value.is_empty() && c.value.iter().all(|a| !a.value.is_empty()) => {
                    HealthCheck::Command {
                        command: c.value.iter().map(|a| a.value.clone()).collect(),
                    }
                }
                Some(c) => {
                    cx.issues.push(
                        c.span.clone(),
                        "Health.Command",
                        E::MissingKey,
                        "the health command is empty",
                        "write the program and its arguments, e.g. Command = [\"/bin/healthcheck\", \"--quick\"]",
                    );
                    return None;
                }
                None => {
                    cx.missing(
                        h.span.clone(),
                        "Health.Command",
                        "Health.Command",
                        "add Command = [\"/bin/healthcheck\"] (exit 0 means healthy)".into(),
                    );
                    return None;
                }
            }
        }
        _ => {
            not_for(cx, span_of(&h.command), "Command", "command");
            not_for(cx, span_of(&h.grpc_service), "GRPCService", "grpc");
            match &h.path {
                Some(p) => {
                    if !cx.http_path(p, "Health.Path", "\"/health\"") {
                        return None;
                    }
                    HealthCheck::Http {
                        path: p.value.clone(),
                        port: port.or(routed)?,
                    }
                }
                None => {
                    cx.missing(
                        h.span.clone(),
                        "Health.Path",
                        "Health.Path",
                        "add [Health] with Path = \"/health\" (an HTTP path answering 200 when the app is healthy)".into(),
                    );
                    return None;
                }
            }
        }
    };
    Some(Health {
        check,
        interval_seconds: u32::try_from(interval).ok()?,
        timeout_seconds: u32::try_from(timeout).ok()?,
        failure_threshold: u32::try_from(fail).ok()?,
        startup_grace_period_seconds: u32::try_from(grace).ok()?,
    })
}
