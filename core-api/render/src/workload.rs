//! ServiceAccount, Secrets, Deployment and HPA.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    ExecAction, GRPCAction, HTTPGetAction, LocalObjectReference, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource,
    SecurityContext, ServiceAccount, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest as _, Sha256};

use super::{
    ANNOTATION_DEPLOYMENT, ANNOTATION_REVISION, Cx, PULL_SECRET_NAME, PullCredential, RenderError,
    SERVICE_NAME,
};
use loco_spec::{HealthCheck, ScaleMetric};

const CONTAINER_NAME: &str = "app";

pub(super) fn service_account(cx: &Cx) -> ServiceAccount {
    ServiceAccount {
        metadata: cx.meta(SERVICE_NAME),
        // Apps never talk to the Kubernetes API; a mounted token would only be a risk.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The cluster's read-only registry login as a dockerconfigjson Secret.
pub(super) fn pull_secret(cx: &Cx, cred: &PullCredential) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", cred.username, cred.password));
    let config = serde_json::json!({
        "auths": { cred.registry.as_str(): {
            "username": cred.username, "password": cred.password, "auth": auth,
        }}
    });
    Secret {
        metadata: cx.meta(PULL_SECRET_NAME),
        type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(config.to_string().into_bytes()),
        )])),
        ..Secret::default()
    }
}

/// The env values as an Opaque Secret named after a keyed hash of its content: a changed
/// value is a new name, so the Deployment's envFrom changes and the pods roll. `None`
/// when the revision has no env values.
pub(super) fn env_secret(cx: &Cx) -> Option<Secret> {
    let env = &cx.input.env;
    if env.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    let key = &cx.input.checksum_key.0;
    h.update((key.len() as u64).to_be_bytes());
    h.update(key);
    for (name, value) in env.iter() {
        // Length-prefixed, so ("A", "BC") and ("AB", "C") never hash alike.
        for part in [name, value] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
    }
    let digest = hex::encode(h.finalize());
    let data = env
        .iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
    Some(Secret {
        metadata: cx.meta(&format!("env-{}", &digest[..10])),
        type_: Some("Opaque".to_owned()),
        // Content-named: never edited in place, so immutability costs nothing and spares
        // the kubelet a watch per pod.
        immutable: Some(true),
        data: Some(data),
        ..Secret::default()
    })
}

fn to_i32(what: &'static str, value: u64) -> Result<i32, RenderError> {
    i32::try_from(value).map_err(|_| RenderError::OutOfRange { what, value })
}

/// The version named by the image: its tag when it has one, else its digest.
fn app_version(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match (last.split_once(':'), digest) {
        (Some((_, tag)), _) => tag,
        (None, Some(d)) => d,
        (None, None) => "latest",
    }
}

/// LOCO_APP_NAME and friends, plus LOCO_<APP>_URL for every other app of the workspace.
fn loco_env(cx: &Cx) -> Vec<EnvVar> {
    let i = cx.input;
    let s = cx.settings();
    let mut vars = BTreeMap::from([
        ("LOCO_APP_NAME".to_owned(), i.spec.app.name.clone()),
        (
            "LOCO_APP_VERSION".to_owned(),
            app_version(&i.image).to_owned(),
        ),
        (
            "LOCO_PROFILE".to_owned(),
            i.spec.profile.clone().unwrap_or_default(),
        ),
        (
            "LOCO_DEPLOYMENT_ID".to_owned(),
            i.template_deployment_id.to_string(),
        ),
        ("LOCO_VERSION".to_owned(), s.loco_version.clone()),
        (
            "LOCO_METRICS_ENDPOINT".to_owned(),
            s.metrics_endpoint.clone(),
        ),
        (
            "LOCO_TRACING_ENDPOINT".to_owned(),
            s.tracing_endpoint.clone(),
        ),
    ]);
    for app in &i.workspace_apps {
        if app.namespace == cx.namespace || app.name == i.spec.app.name {
            continue;
        }
        let key = format!(
            "LOCO_{}_URL",
            app.name.to_ascii_uppercase().replace('-', "_")
        );
        vars.entry(key).or_insert_with(|| {
            format!("http://{}.{}.svc:{}", app.service, app.namespace, app.port)
        });
    }
    vars.into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect()
}

fn probe(cx: &Cx) -> Result<Probe, RenderError> {
    let h = &cx.input.spec.health;
    let mut p = Probe {
        period_seconds: Some(to_i32("Health.Interval", h.interval_seconds.into())?),
        timeout_seconds: Some(to_i32("Health.Timeout", h.timeout_seconds.into())?),
        failure_threshold: Some(to_i32("Health.FailThreshold", h.failure_threshold.into())?),
        ..Probe::default()
    };
    match &h.check {
        HealthCheck::Http { path, port } => {
            p.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port: IntOrString::Int(i32::from(*port)),
                scheme: Some("HTTP".to_owned()),
                ..HTTPGetAction::default()
            });
        }
        HealthCheck::Grpc { port, service } => {
            p.grpc = Some(GRPCAction {
                port: i32::from(*port),
                service: (!service.is_empty()).then(|| service.clone()),
            });
        }
        HealthCheck::Command { command } => {
            p.exec = Some(ExecAction {
                command: Some(command.clone()),
            });
        }
    }
    Ok(p)
}

/// The startup probe gives the app `StartupGracePeriod` to come up before liveness counts.
fn startup_probe(cx: &Cx, base: &Probe) -> Option<Probe> {
    let h = &cx.input.spec.health;
    if h.startup_grace_period_seconds == 0 {
        return None;
    }
    let period = h.interval_seconds.clamp(1, 10);
    let attempts = h.startup_grace_period_seconds.div_ceil(period).max(1);
    Some(Probe {
        period_seconds: Some(i32::try_from(period).unwrap_or(10)),
        failure_threshold: Some(i32::try_from(attempts).unwrap_or(i32::MAX)),
        ..base.clone()
    })
}

fn container(cx: &Cx, env_secret: Option<&str>) -> Result<Container, RenderError> {
    let spec = &cx.input.spec;
    let probe = probe(cx)?;
    let read_only = cx.settings().read_only_root_filesystem;
    Ok(Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(cx.input.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        ports: Some(
            spec.ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.clone()),
                    container_port: i32::from(p.port),
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        env: Some(loco_env(cx)),
        env_from: env_secret.map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.to_owned(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        }),
        // Requests are what the scheduler and the HPA count; only memory is limited, a
        // CPU limit would throttle an app below what the node can spare.
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity(spec.resources.cpu.clone())),
                ("memory".to_owned(), Quantity(spec.resources.memory.clone())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity(spec.resources.memory.clone()),
            )])),
            ..ResourceRequirements::default()
        }),
        startup_probe: startup_probe(cx, &probe),
        readiness_probe: Some(probe.clone()),
        liveness_probe: Some(probe),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(read_only),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: read_only.then(|| {
            vec![VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..VolumeMount::default()
            }]
        }),
        ..Container::default()
    })
}

/// The app's /tmp limit: its loco.toml's `TmpSize` (validated against the platform's
/// maximum), else the platform's setting.
fn tmp_size_limit<'a>(cx: &'a Cx<'_>) -> &'a str {
    match &cx.input.spec.resources.tmp_size {
        Some(t) => &t.quantity,
        None => &cx.settings().tmp_size_limit,
    }
}

/// The replica count the Deployment states, or `None` when the HPA owns it.
fn replicas(cx: &Cx) -> Result<Option<i32>, RenderError> {
    let i = cx.input;
    if i.asleep {
        return Ok(Some(0));
    }
    if i.spec.autoscaling.is_some() {
        return Ok(None);
    }
    let n = i.replicas.unwrap_or(i.spec.replicas.min);
    to_i32("replicas", n.into()).map(Some)
}

pub(super) fn deployment(cx: &Cx, env_secret: Option<&str>) -> Result<Deployment, RenderError> {
    let i = cx.input;
    let mut meta = cx.meta(SERVICE_NAME);
    let ann = meta.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(
        ANNOTATION_DEPLOYMENT.to_owned(),
        i.deployment_id.to_string(),
    );
    ann.insert(ANNOTATION_REVISION.to_owned(), i.revision_id.to_string());

    let mut pod_labels = cx.labels();
    pod_labels.extend(cx.selector());
    let read_only = cx.settings().read_only_root_filesystem;
    let placement = &cx.settings().placement;
    let pod = PodSpec {
        containers: vec![container(cx, env_secret)?],
        service_account_name: Some(SERVICE_NAME.to_owned()),
        automount_service_account_token: Some(false),
        // Service links would inject every Service of the namespace as env variables.
        enable_service_links: Some(false),
        image_pull_secrets: i.pull_secret.as_ref().map(|_| {
            vec![LocalObjectReference {
                name: PULL_SECRET_NAME.to_owned(),
            }]
        }),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        volumes: read_only.then(|| {
            vec![Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: None,
                    size_limit: Some(Quantity(tmp_size_limit(cx).to_owned())),
                }),
                ..Volume::default()
            }]
        }),
        node_selector: (!placement.node_selector.is_empty())
            .then(|| placement.node_selector.clone()),
        tolerations: (!placement.tolerations.is_empty()).then(|| tolerations(placement)),
        ..PodSpec::default()
    };
    Ok(Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: replicas(cx)?,
            selector: LabelSelector {
                match_labels: Some(cx.selector()),
                match_expressions: None,
            },
            // A new pod is Ready before an old one goes: the previous revision keeps serving.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            // Rollback re-renders an earlier revision; ReplicaSet history is not needed.
            revision_history_limit: Some(2),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(cx.annotations()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

fn tolerations(placement: &crate::Placement) -> Vec<Toleration> {
    placement
        .tolerations
        .iter()
        .map(|t| Toleration {
            key: Some(t.key.clone()),
            operator: Some(if t.value.is_some() { "Equal" } else { "Exists" }.to_owned()),
            value: t.value.clone(),
            effect: Some(t.effect.clone()),
            toleration_seconds: None,
        })
        .collect()
}

/// autoscaling/v2 HPA when autoscaling is on and the app is awake.
pub(super) fn hpa(cx: &Cx) -> Result<Option<HorizontalPodAutoscaler>, RenderError> {
    let i = cx.input;
    let Some(auto) = i.spec.autoscaling.filter(|_| !i.asleep) else {
        return Ok(None);
    };
    let resource = match auto.metric {
        ScaleMetric::Cpu => "cpu",
        ScaleMetric::Memory => "memory",
    };
    let max = to_i32("ReplicasMax", i.spec.replicas.max.into())?.max(1);
    let min = to_i32("ReplicasMin", i.spec.replicas.min.into())?.clamp(1, max);
    Ok(Some(HorizontalPodAutoscaler {
        metadata: cx.meta(SERVICE_NAME),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: SERVICE_NAME.to_owned(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: resource.to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(i32::from(auto.target_percent)),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        },
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::app_version;

    #[test]
    fn app_version_prefers_the_tag_then_the_digest() {
        assert_eq!(app_version("r.io:5000/team/app:1.2@sha256:ab"), "1.2");
        assert_eq!(app_version("r.io:5000/team/app@sha256:ab"), "sha256:ab");
        assert_eq!(app_version("r.io:5000/team/app"), "latest");
        assert_eq!(app_version("app:v3"), "v3");
    }
}
