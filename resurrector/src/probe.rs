//! Reads the cluster (never writes): the API server's health endpoints, the nodes, the
//! platform layer (pinned CRDs, GatewayClass, Gateway, loco's workloads), loco-api's
//! stored credential, and whether awake apps answer through the gateway.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret as KubeSecret};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;

use loco_platform::GatewayValues;

/// How long one health request may take before the API server counts as not answering.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The API server and the nodes.
#[derive(Debug, Clone, Serialize)]
pub struct ApiProbe {
    pub readyz: bool,
    pub livez: bool,
    /// Why it does not answer, when it does not (one line, no credentials).
    pub error: Option<String>,
    pub nodes: usize,
    pub nodes_ready: usize,
    pub nodes_schedulable: usize,
}

impl ApiProbe {
    pub fn reachable(&self) -> bool {
        self.error.is_none()
    }
}

/// `/readyz`, `/livez` and the nodes.
pub async fn api(client: &kube::Client) -> ApiProbe {
    let mut p = ApiProbe {
        readyz: false,
        livez: false,
        error: None,
        nodes: 0,
        nodes_ready: 0,
        nodes_schedulable: 0,
    };
    for (path, slot) in [("/readyz", &mut p.readyz), ("/livez", &mut p.livez)] {
        let req = match http_get(path) {
            Some(r) => r,
            None => continue,
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, client.request_text(req)).await {
            Ok(Ok(body)) => *slot = body.trim() == "ok",
            Ok(Err(e)) => {
                p.error.get_or_insert_with(|| one_line(&e.to_string()));
            }
            Err(_) => {
                p.error
                    .get_or_insert_with(|| format!("no answer within {HEALTH_TIMEOUT:?}"));
            }
        }
    }
    if p.error.is_some() {
        return p;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => {
            p.nodes = list.items.len();
            for n in &list.items {
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let cordoned = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false);
                if ready {
                    p.nodes_ready += 1;
                    if !cordoned {
                        p.nodes_schedulable += 1;
                    }
                }
            }
        }
        Err(e) => p.error = Some(one_line(&e.to_string())),
    }
    p
}

fn http_get(path: &str) -> Option<http::Request<Vec<u8>>> {
    http::Request::get(path).body(Vec::new()).ok()
}

/// The platform layer as the cluster holds it.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformProbe {
    /// Pinned CRDs missing, not Established, or at another bundle version.
    pub crds_wrong: Vec<String>,
    pub gateway_class_accepted: bool,
    pub gateway_accepted: bool,
    pub gateway_programmed: bool,
    /// loco's Deployments in its namespace (`app.kubernetes.io/part-of=loco`) not Ready.
    pub workloads_not_ready: Vec<String>,
    pub workloads: usize,
    /// The Gateway's TLS Secret is absent (a snapshot restores it; the database has no copy).
    pub tls_secret_missing: bool,
    /// No platform release is recorded for the cluster.
    pub release_recorded: bool,
}

impl PlatformProbe {
    /// Whether `platform apply` has something to do (a missing TLS Secret it cannot fix).
    pub fn needs_apply(&self, chart: bool) -> bool {
        // Without a recorded release there is nothing to apply (the report says so).
        self.release_recorded
            && (!self.crds_wrong.is_empty()
                || !self.gateway_class_accepted
                || !self.gateway_accepted
                || (chart && (self.workloads == 0 || !self.workloads_not_ready.is_empty())))
    }
}

/// Reads the platform layer. `values` is the recorded release's values.
pub async fn platform(
    client: &kube::Client,
    gateway: Option<&GatewayValues>,
) -> Result<PlatformProbe, String> {
    let mut p = PlatformProbe {
        crds_wrong: Vec::new(),
        gateway_class_accepted: false,
        gateway_accepted: false,
        gateway_programmed: false,
        workloads_not_ready: Vec::new(),
        workloads: 0,
        tls_secret_missing: false,
        release_recorded: gateway.is_some(),
    };
    let crds = loco_platform::live_crds(client)
        .await
        .map_err(|e| e.to_string())?;
    for (name, state) in crds {
        let ok = state.is_some_and(|s| {
            s.established && s.bundle_version.as_deref() == Some(loco_platform::GATEWAY_API_VERSION)
        });
        if !ok {
            p.crds_wrong.push(name);
        }
    }
    let Some(g) = gateway else {
        return Ok(p);
    };
    let gvk = |kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind),
            plural,
        )
    };
    if p.crds_wrong.is_empty() {
        let classes: Api<DynamicObject> =
            Api::all_with(client.clone(), &gvk("GatewayClass", "gatewayclasses"));
        if let Some(c) = classes.get_opt(&g.class_name).await.map_err(kube_line)? {
            p.gateway_class_accepted = condition(&c, "Accepted");
        }
        let gateways: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &g.namespace, &gvk("Gateway", "gateways"));
        if let Some(gw) = gateways.get_opt(&g.name).await.map_err(kube_line)? {
            // A listener whose certificate is missing (the TLS Secret, which the database
            // cannot restore) makes the whole Gateway "ListenersNotValid"; the others
            // still serve, and applying again would change nothing.
            let serving = gw.data["status"]["listeners"].as_array().is_some_and(|ls| {
                ls.iter().any(|l| {
                    l["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Programmed" && c["status"] == "True")
                    })
                })
            });
            p.gateway_accepted = condition(&gw, "Accepted")
                || (condition_reason(&gw, "Accepted") == Some("ListenersNotValid") && serving);
            p.gateway_programmed = condition(&gw, "Programmed") || serving;
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_metadata_opt(&g.namespace)
        .await
        .map_err(kube_line)?
        .is_some()
    {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &g.namespace);
        let list = deployments
            .list(&ListParams::default().labels("app.kubernetes.io/part-of=loco"))
            .await
            .map_err(kube_line)?;
        p.workloads = list.items.len();
        for d in &list.items {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if ready < want {
                p.workloads_not_ready
                    .push(d.metadata.name.clone().unwrap_or_default());
            }
        }
        if g.https_port.is_some() {
            let secrets: Api<KubeSecret> = Api::namespaced(client.clone(), &g.namespace);
            p.tls_secret_missing = secrets
                .get_metadata_opt(&g.tls_secret)
                .await
                .map_err(kube_line)?
                .is_none();
        }
    } else {
        p.tls_secret_missing = g.https_port.is_some();
    }
    Ok(p)
}

fn condition_reason<'a>(o: &'a DynamicObject, kind: &str) -> Option<&'a str> {
    o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["reason"]
        .as_str()
}

fn condition(o: &DynamicObject, kind: &str) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// Whether loco-api's stored credential (a ServiceAccount token) is still accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiCredential {
    Accepted,
    /// 401: its ServiceAccount is gone (an emptied etcd) or the token expired.
    Rejected,
    /// It could not be checked (another error); nothing is done about it.
    Unknown,
}

pub async fn api_credential(
    creds: &loco_db::kubeconfig::InlineKubeconfig,
    cluster_id: i64,
) -> ApiCredential {
    let Ok(client) = loco_deploy::cluster::client_from(creds, cluster_id).await else {
        return ApiCredential::Unknown;
    };
    let namespaces: Api<Namespace> = Api::all(client);
    match namespaces
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => ApiCredential::Accepted,
        Err(kube::Error::Api(s)) if s.code == 401 => ApiCredential::Rejected,
        Err(_) => ApiCredential::Unknown,
    }
}

/// What an awake app answered through the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub status: Option<u16>,
    pub answers: bool,
}

/// GET `prefix` of `host` through the gateway. An app answers when the gateway reached
/// it: any status but the gateway's own 404 (no route) and 5xx (no backend).
pub async fn through_gateway(
    http: &reqwest::Client,
    gateway_url: &str,
    host: &str,
    prefix: &str,
) -> Answer {
    let url = format!("{}{}", gateway_url.trim_end_matches('/'), prefix);
    match http
        .get(&url)
        .header(reqwest::header::HOST, host)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            Answer {
                status: Some(s),
                answers: s != 404 && s < 500,
            }
        }
        Err(_) => Answer {
            status: None,
            answers: false,
        },
    }
}

fn kube_line(e: kube::Error) -> String {
    one_line(&e.to_string())
}

fn one_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}
