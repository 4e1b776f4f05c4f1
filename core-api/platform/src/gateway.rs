//! loco's GatewayClass and Gateway, and the namespace they live in, built from the
//! `gateway` section of the recorded platform values. Listeners admit routes only from
//! namespaces labelled `loco.deploy-app.com/routes: allowed` (render labels every awake
//! app's namespace so), so a route in any other namespace is not attached by the gateway
//! itself.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PlatformError;

/// The label a namespace needs for its routes to attach to loco's Gateway.
pub const ROUTES_LABEL: &str = "loco.deploy-app.com/routes";

/// The `gateway` section of the platform values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayValues {
    /// The namespace of the Gateway and of loco's own components.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_name")]
    pub class_name: String,
    /// The GatewayClass controller of the Gateway API implementation, e.g.
    /// `traefik.io/gateway-controller` or `gateway.envoyproxy.io/gatewayclass-controller`.
    pub controller_name: String,
    /// The listeners' hostname, e.g. `*.deploy-app.com`.
    pub hostname: String,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// The HTTPS listener's port; off when unset.
    #[serde(default)]
    pub https_port: Option<u16>,
    /// The TLS Secret (in `namespace`) of the HTTPS listener.
    #[serde(default = "default_tls_secret")]
    pub tls_secret: String,
}

fn default_namespace() -> String {
    "loco-system".to_owned()
}
fn default_name() -> String {
    "loco".to_owned()
}
fn default_http_port() -> u16 {
    80
}
fn default_tls_secret() -> String {
    "loco-gateway-tls".to_owned()
}

impl GatewayValues {
    /// Reads the `gateway` section of `values`, naming what is wrong.
    pub fn from_values(values: &Value) -> Result<Self, PlatformError> {
        let section = values.get("gateway").ok_or_else(|| PlatformError::Values {
            path: "gateway".to_owned(),
            message: "is missing: set gateway.controllerName and gateway.hostname".to_owned(),
        })?;
        let g: GatewayValues =
            serde_json::from_value(section.clone()).map_err(|e| PlatformError::Values {
                path: "gateway".to_owned(),
                message: e.to_string(),
            })?;
        for (path, v) in [
            ("gateway.namespace", &g.namespace),
            ("gateway.name", &g.name),
            ("gateway.className", &g.class_name),
            ("gateway.controllerName", &g.controller_name),
            ("gateway.hostname", &g.hostname),
        ] {
            if v.trim().is_empty() {
                return Err(PlatformError::Values {
                    path: path.to_owned(),
                    message: "must not be empty".to_owned(),
                });
            }
        }
        Ok(g)
    }

    fn listener(&self, name: &str, protocol: &str, port: u16) -> Value {
        let mut l = json!({
            "name": name,
            "protocol": protocol,
            "port": port,
            "hostname": self.hostname,
            "allowedRoutes": {
                "kinds": [{"kind": "HTTPRoute"}, {"kind": "GRPCRoute"}],
                "namespaces": {
                    "from": "Selector",
                    "selector": {"matchLabels": {ROUTES_LABEL: "allowed"}}
                }
            }
        });
        if protocol == "HTTPS" {
            l["tls"] = json!({"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": self.tls_secret}]});
        }
        l
    }

    /// The namespace, GatewayClass and Gateway, in apply order.
    pub fn objects(&self) -> Vec<Value> {
        let labels = json!({"app.kubernetes.io/managed-by": "loco"});
        let mut listeners = vec![self.listener("http", "HTTP", self.http_port)];
        if let Some(p) = self.https_port {
            listeners.push(self.listener("https", "HTTPS", p));
        }
        vec![
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                // Routes allowed: the chart's own HTTPRoutes (the API and status hosts)
                // live here.
                "metadata": {"name": self.namespace, "labels": {
                    "app.kubernetes.io/managed-by": "loco",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    ROUTES_LABEL: "allowed"
                }}
            }),
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": self.class_name, "labels": labels},
                "spec": {"controllerName": self.controller_name}
            }),
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels},
                "spec": {"gatewayClassName": self.class_name, "listeners": listeners}
            }),
        ]
    }
}

/// The API resource of one of the three objects this module writes (plurals named, not
/// guessed from the kind).
fn resource(obj: &Value) -> ApiResource {
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "Namespace" => "namespaces",
        "GatewayClass" => "gatewayclasses",
        _ => "gateways",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// What applying the gateway objects did, per object (`Kind/name`).
pub type GatewayReport = Vec<String>;

/// Applies the namespace, GatewayClass and Gateway (server-side apply, field manager
/// `loco`). A GatewayClass of another controller is refused (its controllerName is
/// immutable): the operator decides whether to delete it.
pub async fn apply(
    client: &kube::Client,
    g: &GatewayValues,
    dry_run: bool,
) -> Result<GatewayReport, PlatformError> {
    let classes: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(&json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass"})),
    );
    if let Some(live) = classes
        .get_opt(&g.class_name)
        .await
        .map_err(|e| PlatformError::kube("read the GatewayClass", &g.class_name, e))?
    {
        let have = live.data["spec"]["controllerName"]
            .as_str()
            .unwrap_or_default();
        if have != g.controller_name {
            return Err(PlatformError::GatewayClassController {
                class: g.class_name.clone(),
                have: have.to_owned(),
                want: g.controller_name.clone(),
            });
        }
    }
    let mut params = PatchParams::apply(loco_apply::FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut report = Vec::new();
    // A dry run cannot validate objects in a namespace it did not really create.
    let namespace_missing = dry_run
        && Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .get_opt(&g.namespace)
            .await
            .map_err(|e| PlatformError::kube("read the namespace", &g.namespace, e))?
            .is_none();
    for obj in g.objects() {
        if namespace_missing && obj["metadata"]["namespace"].is_string() {
            report.push(format!(
                "{}/{} (not validated: its namespace is created by the real apply)",
                obj["kind"].as_str().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            ));
            continue;
        }
        let what = super::ssa::apply_json(client, &obj, &resource(&obj), &params).await?;
        report.push(what);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_admits_routes_only_from_labelled_namespaces() {
        let g = GatewayValues::from_values(&json!({"gateway": {
            "controllerName": "traefik.io/gateway-controller",
            "hostname": "*.loco.test", "httpPort": 28080, "httpsPort": 28443
        }}))
        .unwrap();
        let objs = g.objects();
        assert_eq!(objs[0]["metadata"]["name"], "loco-system");
        assert_eq!(
            objs[0]["metadata"]["labels"][ROUTES_LABEL], "allowed",
            "the chart's routes attach"
        );
        assert_eq!(
            objs[1]["spec"]["controllerName"],
            "traefik.io/gateway-controller"
        );
        let listeners = objs[2]["spec"]["listeners"].as_array().unwrap();
        assert_eq!(listeners.len(), 2);
        for l in listeners {
            assert_eq!(
                l["allowedRoutes"]["namespaces"]["selector"]["matchLabels"][ROUTES_LABEL],
                "allowed"
            );
            assert_eq!(l["hostname"], "*.loco.test");
        }
        assert_eq!(
            listeners[1]["tls"]["certificateRefs"][0]["name"],
            "loco-gateway-tls"
        );
        assert_eq!(resource(&objs[1]).plural, "gatewayclasses");
        assert_eq!(resource(&objs[2]).plural, "gateways");
        assert_eq!(resource(&objs[0]).plural, "namespaces");
    }

    #[test]
    fn missing_or_unknown_gateway_values_name_their_path() {
        let e = GatewayValues::from_values(&json!({})).unwrap_err();
        assert!(e.to_string().contains("gateway"), "{e}");
        let e = GatewayValues::from_values(&json!({"gateway": {"hostname": "*.x"}})).unwrap_err();
        assert!(e.to_string().contains("controllerName"), "{e}");
        let e = GatewayValues::from_values(&json!({"gateway": {
            "controllerName": "c", "hostname": "*.x", "colour": "blue"
        }}))
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = GatewayValues::from_values(
            &json!({"gateway": {"controllerName": " ", "hostname": "*.x"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("gateway.controllerName"), "{e}");
    }
}
