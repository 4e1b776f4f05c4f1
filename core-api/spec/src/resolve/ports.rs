//! gRPC services and the container ports (routed, gRPC, metrics).

use super::*;

/// (port, services) of [GRPC], validated.
pub(super) fn resolve_grpc_input(cx: &mut Ctx<'_>, g: &raw::Grpc) -> (Option<u16>, Vec<String>) {
    let port = match &g.port {
        Some(p) => cx.port(p, "GRPC.Port"),
        None => {
            cx.missing(
                g.span.clone(),
                "GRPC.Port",
                "GRPC.Port",
                "add Port = 9000 (the port serving gRPC; it may equal Routing.Port)".into(),
            );
            None
        }
    };
    let mut services = Vec::new();
    match &g.services {
        Some(list) if !list.value.is_empty() => {
            let mut seen = BTreeSet::new();
            for (i, s) in list.value.iter().enumerate() {
                let path = format!("GRPC.Services[{i}]");
                if !syntax::is_grpc_service(&s.value) {
                    cx.issues.push(
                        s.span.clone(),
                        path,
                        E::InvalidGrpcService,
                        format!("{:?} is not a fully qualified gRPC service name", s.value),
                        "write package.Service as in your .proto, e.g. \"helloworld.Greeter\"",
                    );
                } else if !seen.insert(s.value.clone()) {
                    cx.issues.push(
                        s.span.clone(),
                        path,
                        E::InvalidGrpcService,
                        format!("{:?} is listed twice", s.value),
                        "list each service once",
                    );
                } else {
                    services.push(s.value.clone());
                }
            }
        }
        Some(list) => cx.issues.push(
            list.span.clone(),
            "GRPC.Services",
            E::MissingKey,
            "GRPC.Services is empty",
            "list the gRPC services to route, e.g. Services = [\"helloworld.Greeter\"]",
        ),
        None => cx.missing(
            g.span.clone(),
            "GRPC.Services",
            "GRPC.Services",
            "add Services = [\"package.Service\"] listing the gRPC services to route".into(),
        ),
    }
    (port, services)
}

/// Builds the container port list: the routed HTTP port, named [Ports], the gRPC port and
/// the metrics port. Returns (ports, routed port name, gRPC port name).
pub(super) fn build_ports(
    cx: &mut Ctx<'_>,
    named: Option<&raw::SpMap<Sp<i64>>>,
    routed: Option<u16>,
    grpc: Option<u16>,
    metrics: Option<u16>,
    metrics_span: Option<Range<usize>>,
) -> (Vec<Port>, Option<String>, Option<String>) {
    let mut ports: Vec<Port> = Vec::new();
    let mut named_ok: Vec<(String, u16, Range<usize>)> = Vec::new();
    if let Some(named) = named {
        for (k, v) in &named.0 {
            let path = join("Ports", &k.value);
            let mut ok = true;
            if !syntax::is_port_name(&k.value) {
                cx.issues.push(
                    k.span.clone(),
                    path.clone(),
                    E::InvalidName,
                    format!("port name {:?} is not an IANA service name", k.value),
                    "use at most 15 lowercase letters, digits and '-', with at least one letter, e.g. \"admin\"",
                );
                ok = false;
            }
            let Some(n) = cx.port(v, &path) else { continue };
            if let Some((other, _, _)) = named_ok.iter().find(|(_, p, _)| *p == n) {
                cx.issues.push(
                    v.span.clone(),
                    path,
                    E::PortConflict,
                    format!("port {n} is already named {other:?}"),
                    "give each port number one name",
                );
                continue;
            }
            if ok {
                named_ok.push((k.value.clone(), n, k.span.clone()));
            }
        }
    }
    let Some(routed) = routed else {
        return (ports, None, None);
    };
    let routed_name = match named_ok.iter().find(|(_, p, _)| *p == routed) {
        Some((n, _, _)) => n.clone(),
        None => {
            if let Some((_, p, span)) = named_ok
                .iter()
                .find(|(n, _, _)| n == defaults::ROUTED_PORT_NAME)
            {
                cx.issues.push(
                    span.clone(),
                    "Ports.http",
                    E::PortConflict,
                    format!("the name \"http\" belongs to the routed port {routed} (Routing.Port), but here it is {p}"),
                    format!("rename this port, or set Routing.Port = {p}"),
                );
            }
            defaults::ROUTED_PORT_NAME.to_owned()
        }
    };
    ports.push(Port {
        name: routed_name.clone(),
        port: routed,
        protocol: PortProtocol::Http,
        routed: true,
    });
    for (n, p, _) in &named_ok {
        if *p != routed {
            ports.push(Port {
                name: n.clone(),
                port: *p,
                protocol: PortProtocol::Tcp,
                routed: false,
            });
        }
    }
    let extra = |cx: &mut Ctx<'_>,
                 ports: &mut Vec<Port>,
                 number: u16,
                 name: &str,
                 protocol: PortProtocol,
                 path: &str,
                 span: Range<usize>|
     -> String {
        if let Some(existing) = ports.iter_mut().find(|p| p.port == number) {
            if !existing.routed {
                existing.protocol = protocol;
            }
            return existing.name.clone();
        }
        if let Some(existing) = ports.iter().find(|p| p.name == name) {
            cx.issues.push(
                span,
                path,
                E::PortConflict,
                format!(
                    "port {number} would be named {name:?}, but that name is port {}",
                    existing.port
                ),
                format!(
                    "rename the other {name:?} port in [Ports], or use port {} here",
                    existing.port
                ),
            );
        }
        ports.push(Port {
            name: name.to_owned(),
            port: number,
            protocol,
            routed: false,
        });
        name.to_owned()
    };
    let grpc_name = grpc.map(|g| {
        extra(
            cx,
            &mut ports,
            g,
            defaults::GRPC_PORT_NAME,
            PortProtocol::Grpc,
            "GRPC.Port",
            0..0,
        )
    });
    if let Some(m) = metrics {
        extra(
            cx,
            &mut ports,
            m,
            defaults::METRICS_PORT_NAME,
            PortProtocol::Http,
            "Obs.Metrics.Port",
            metrics_span.unwrap_or(0..0),
        );
    }
    (ports, Some(routed_name), grpc_name)
}
