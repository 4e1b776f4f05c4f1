//! What render reads: plain data the I/O layer fills from database rows (or the CLI from a
//! loco.toml). No database, cluster or HTTP types here.

use std::collections::BTreeMap;
use std::fmt;

use loco_spec::{EnvValues, ResolvedSpec};

/// One app's current revision and everything around it that its objects depend on.
///
/// Ids are the database's bigint ids. `Debug` never shows a secret: [`EnvValues`] prints
/// names only, and [`PullCredential`] and [`ChecksumKey`] print nothing of their content.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderInput {
    pub org_id: i64,
    pub workspace_id: i64,
    pub app_id: i64,
    /// The deployment applying this render (the Deployment's annotation); 0 for an export
    /// outside any deployment.
    pub deployment_id: i64,
    /// The deployment that introduced this pod template, injected as LOCO_DEPLOYMENT_ID:
    /// `deployment_id` itself, unless this deployment only changes the replica count or
    /// the sleep state of the one before it (`deployments.template_deployment_id`). Only
    /// ids in the pod template make the Deployment controller replace pods, so a scale,
    /// sleep or wake that carried `deployment_id` there would roll every pod.
    pub template_deployment_id: i64,
    /// The revision rendered; 0 for an export outside any deployment.
    pub revision_id: i64,
    /// The revision's resolved spec (`app_revisions.spec`).
    pub spec: ResolvedSpec,
    /// The image to run, pinned by digest (`repository[:tag]@sha256:...`). A tag before the
    /// digest only names the version (LOCO_APP_VERSION); the digest decides what runs.
    pub image: String,
    /// `app_revisions.replicas`; `None` means the spec's minimum. Ignored while asleep
    /// (always 0) and under autoscaling (the HPA owns the count).
    pub replicas: Option<u32>,
    /// `app_revisions.asleep`.
    pub asleep: bool,
    /// The revision's decrypted env values (inline and file variables alike).
    pub env: EnvValues,
    /// Per-app secret bytes mixed into the env Secret's name hash, so the name (visible to
    /// whoever can read the Deployment) reveals nothing about low-entropy values. Derive it
    /// from the app's data key; an export may leave it empty.
    pub checksum_key: ChecksumKey,
    /// The cluster's read-only registry credential, rendered as the imagePullSecret.
    pub pull_secret: Option<PullCredential>,
    /// Every app of the same workspace (this one may be included; it is skipped), for the
    /// LOCO_<APP>_URL variables.
    pub workspace_apps: Vec<SiblingApp>,
    pub settings: RenderSettings,
}

impl RenderInput {
    /// An app's render outside any deployment (an export, a fixture): deployment and
    /// revision 0, the spec's replica count, awake, no pull secret, no siblings, the
    /// default settings and an empty checksum key. Set the fields a caller knows with
    /// struct update syntax.
    pub fn export(
        org_id: i64,
        workspace_id: i64,
        app_id: i64,
        spec: ResolvedSpec,
        env: EnvValues,
        image: String,
    ) -> Self {
        RenderInput {
            org_id,
            workspace_id,
            app_id,
            deployment_id: 0,
            template_deployment_id: 0,
            revision_id: 0,
            spec,
            image,
            replicas: None,
            asleep: false,
            env,
            checksum_key: ChecksumKey::default(),
            pull_secret: None,
            workspace_apps: Vec::new(),
            settings: RenderSettings::default(),
        }
    }
}

/// Another app of the workspace, as the in-cluster URL `http://{service}.{namespace}.svc:{port}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SiblingApp {
    /// The app's name (DNS label); the variable is LOCO_<NAME>_URL, upper-cased, '-' -> '_'.
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub port: u16,
}

impl SiblingApp {
    /// A sibling as loco itself renders it: its namespace from the ids and loco's Service.
    pub fn rendered_by_loco(workspace_id: i64, app_id: i64, name: &str, port: u16) -> Self {
        Self {
            name: name.to_owned(),
            namespace: super::namespace_name(workspace_id, app_id),
            service: super::SERVICE_NAME.to_owned(),
            port,
        }
    }
}

/// A registry login for pulling images (read-only). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PullCredential {
    /// Registry host (and port), as in the image reference, e.g. `registry.deploy-app.com`.
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for PullCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullCredential")
            .field("registry", &self.registry)
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Secret key material for the env Secret's name hash. Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChecksumKey(pub Vec<u8>);

impl fmt::Debug for ChecksumKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChecksumKey(<redacted>)")
    }
}

/// The platform around the app: where the gateway and the reviver live, and what the
/// cluster has installed. Stored per cluster in the database (the deploy flow reads
/// them there, so a rebuild renders what was last applied); loco-api's flags seed them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RenderSettings {
    /// Namespace of the Gateway and the reviver.
    pub gateway_namespace: String,
    /// Name of the Gateway every route attaches to.
    pub gateway_name: String,
    /// The reviver's Service in `gateway_namespace`: sleeping apps' routes point there.
    pub reviver_service: String,
    pub reviver_port: u16,
    /// Injected as LOCO_METRICS_ENDPOINT.
    pub metrics_endpoint: String,
    /// Injected as LOCO_TRACING_ENDPOINT.
    pub tracing_endpoint: String,
    /// Injected as LOCO_VERSION.
    pub loco_version: String,
    /// Envoy Gateway's BackendTrafficPolicy CRD is installed: the route's IdleTimeout is
    /// rendered as one. Without it the timeout is the gateway's default.
    pub backend_traffic_policy: bool,
    /// More namespaces allowed to reach app pods (e.g. the Prometheus that scrapes them),
    /// beyond the same workspace and the gateway's namespace.
    pub extra_ingress_namespaces: Vec<String>,
    /// Mount the root filesystem read-only (with a writable emptyDir at /tmp).
    pub read_only_root_filesystem: bool,
    /// Size limit of the /tmp emptyDir (a Kubernetes quantity): a full /tmp evicts the
    /// pod instead of filling the node's disk. An app's `TmpSize` in loco.toml overrides it.
    pub tmp_size_limit: String,
    /// Egress from app pods: DNS, the same workspace, and (when allowed) the internet
    /// minus `denied_cidrs`.
    pub egress: EgressSettings,
    /// Which nodes app pods run on: a node selector and the taints they tolerate (e.g.
    /// a dedicated node pool). Empty: wherever the scheduler likes.
    pub placement: Placement,
}

/// Where app pods may be scheduled. Preflight reads the same fields from the rendered
/// Deployment, so it counts only the nodes the pods can land on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Labels a node must carry.
    pub node_selector: BTreeMap<String, String>,
    /// Taints app pods tolerate.
    pub tolerations: Vec<PlacementToleration>,
}

/// One toleration: `key=value:Effect` (value compared with `Equal`) or `key:Effect`
/// (`Exists`). The effect is NoSchedule, PreferNoSchedule or NoExecute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlacementToleration {
    pub key: String,
    /// `None`: the toleration matches any value (`operator: Exists`).
    pub value: Option<String>,
    pub effect: String,
}

impl std::str::FromStr for PlacementToleration {
    type Err = String;

    /// Parses `key=value:Effect` or `key:Effect`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kv, effect) = s.rsplit_once(':').ok_or_else(|| {
            format!("toleration '{s}' has no effect: write key=value:NoSchedule or key:NoSchedule")
        })?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "toleration '{s}': the effect must be NoSchedule, PreferNoSchedule or NoExecute, not '{effect}'"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("toleration '{s}' has an empty key"));
        }
        Ok(PlacementToleration {
            key: key.to_owned(),
            value,
            effect: effect.to_owned(),
        })
    }
}

/// What app pods may connect to. Everything not allowed here is refused by the
/// namespace's NetworkPolicies (where the CNI enforces them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EgressSettings {
    /// Allow the internet (0.0.0.0/0 and ::/0 minus `denied_cidrs`). The roadmap asks
    /// for per-org control later; off means DNS and the workspace only.
    pub internet: bool,
    /// Ranges refused even when the internet is allowed: the metadata endpoints and the
    /// nodes', Pods', Services' and control plane's ranges. IPv4 and IPv6 CIDRs.
    pub denied_cidrs: Vec<String>,
    /// Namespace of the cluster DNS (pods labelled `k8s-app=kube-dns`).
    pub dns_namespace: String,
}

/// The metadata endpoints (AWS, GCP, Azure, ... at 169.254.169.254; AWS's IPv6 one)
/// inside the link-local ranges, and the private ranges clusters put nodes, Pods,
/// Services and control planes in. Operators replace the list with their own ranges.
pub const DEFAULT_EGRESS_DENIED: &[&str] = &[
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "fd00:ec2::254/128",
    "fc00::/7",
    "fe80::/10",
];

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            internet: true,
            denied_cidrs: DEFAULT_EGRESS_DENIED
                .iter()
                .map(|s| s.to_string())
                .collect(),
            dns_namespace: "kube-system".to_owned(),
        }
    }
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            gateway_namespace: "loco-system".to_owned(),
            gateway_name: "loco".to_owned(),
            reviver_service: "loco-reviver".to_owned(),
            reviver_port: 80,
            metrics_endpoint: String::new(),
            tracing_endpoint: String::new(),
            loco_version: env!("CARGO_PKG_VERSION").to_owned(),
            backend_traffic_policy: false,
            extra_ingress_namespaces: Vec::new(),
            read_only_root_filesystem: true,
            tmp_size_limit: "256Mi".to_owned(),
            egress: EgressSettings::default(),
            placement: Placement::default(),
        }
    }
}
