//! Gateway API routes (and, while asleep, the ReferenceGrant that lets them reach the
//! reviver), plus Envoy Gateway's BackendTrafficPolicy for the idle timeout.

use super::dynamic::{DynamicObject, TypeMeta};
use serde_json::{Value, json};

use super::{Cx, SERVICE_NAME};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
const GATEWAY_V1: &str = "gateway.networking.k8s.io/v1";
/// ReferenceGrant is still v1beta1 in Gateway API's standard channel (1.4).
const GATEWAY_V1BETA1: &str = "gateway.networking.k8s.io/v1beta1";
const ENVOY_V1ALPHA1: &str = "gateway.envoyproxy.io/v1alpha1";
/// The Gateway API schema allows at most 64 matches in one GRPCRoute rule.
const GRPC_MATCHES_PER_RULE: usize = 64;

fn object(
    cx: &Cx,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: &str,
    spec: Value,
) -> DynamicObject {
    DynamicObject {
        types: Some(TypeMeta {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }),
        metadata: cx.meta_in(name, namespace),
        data: json!({ "spec": spec }),
    }
}

/// Where the routes send traffic: the app's Service, or the reviver while asleep.
fn backend(cx: &Cx, port: u16) -> Value {
    let s = cx.settings();
    if cx.input.asleep {
        json!({
            "group": "", "kind": "Service",
            "name": s.reviver_service, "namespace": s.gateway_namespace, "port": s.reviver_port,
        })
    } else {
        json!({ "group": "", "kind": "Service", "name": SERVICE_NAME, "port": port })
    }
}

fn parent_refs(cx: &Cx) -> Value {
    let s = cx.settings();
    json!([{
        "group": GATEWAY_GROUP, "kind": "Gateway",
        "namespace": s.gateway_namespace, "name": s.gateway_name,
    }])
}

pub(super) fn routes(cx: &Cx) -> Vec<DynamicObject> {
    let spec = &cx.input.spec;
    let mut out = Vec::new();
    let mut route_kinds = vec!["HTTPRoute"];
    if spec.grpc.as_ref().is_some_and(|g| !g.services.is_empty()) {
        route_kinds.push("GRPCRoute");
    }

    if cx.input.asleep {
        let s = cx.settings();
        let from: Vec<Value> = route_kinds
            .iter()
            .map(|k| json!({ "group": GATEWAY_GROUP, "kind": k, "namespace": cx.namespace }))
            .collect();
        out.push(object(
            cx,
            GATEWAY_V1BETA1,
            "ReferenceGrant",
            // One per sleeping app, in the reviver's namespace: prune removes it on wake.
            &format!("reviver-{}", cx.namespace),
            &s.gateway_namespace,
            json!({
                "from": from,
                "to": [{ "group": "", "kind": "Service", "name": s.reviver_service }],
            }),
        ));
    }

    out.push(object(
        cx,
        GATEWAY_V1,
        "HTTPRoute",
        SERVICE_NAME,
        &cx.namespace,
        json!({
            "parentRefs": parent_refs(cx),
            "hostnames": [spec.routing.host],
            "rules": [{
                "matches": [{ "path": { "type": "PathPrefix", "value": spec.routing.path_prefix } }],
                "backendRefs": [backend(cx, spec.routing.port)],
            }],
        }),
    ));

    if let Some(grpc) = spec.grpc.as_ref().filter(|g| !g.services.is_empty()) {
        let rules: Vec<Value> = grpc
            .services
            .chunks(GRPC_MATCHES_PER_RULE)
            .map(|services| {
                let matches: Vec<Value> = services
                    .iter()
                    .map(|svc| json!({ "method": { "type": "Exact", "service": svc } }))
                    .collect();
                json!({ "matches": matches, "backendRefs": [backend(cx, grpc.port)] })
            })
            .collect();
        out.push(object(
            cx,
            GATEWAY_V1,
            "GRPCRoute",
            SERVICE_NAME,
            &cx.namespace,
            json!({
                "parentRefs": parent_refs(cx),
                "hostnames": [spec.routing.host],
                "rules": rules,
            }),
        ));
    }

    if cx.settings().backend_traffic_policy {
        let target_refs: Vec<Value> = route_kinds
            .iter()
            .map(|k| json!({ "group": GATEWAY_GROUP, "kind": k, "name": SERVICE_NAME }))
            .collect();
        out.push(object(
            cx,
            ENVOY_V1ALPHA1,
            "BackendTrafficPolicy",
            SERVICE_NAME,
            &cx.namespace,
            json!({
                "targetRefs": target_refs,
                "timeout": { "http": {
                    "connectionIdleTimeout": format!("{}s", spec.routing.idle_timeout_seconds),
                }},
            }),
        ));
    }
    out
}
