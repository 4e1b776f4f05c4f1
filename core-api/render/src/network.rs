//! Namespace, NetworkPolicies and the Service.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Cx, LABEL_ROUTES, LABEL_WORKSPACE, SERVICE_NAME};
use loco_spec::PortProtocol;

/// The built-in label every namespace carries with its own name.
const LABEL_NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

pub(super) fn namespace(cx: &Cx) -> Namespace {
    let mut labels = cx.labels();
    labels.insert(LABEL_ROUTES.to_owned(), "allowed".to_owned());
    // Pod Security Admission enforces what the Deployment already promises.
    for mode in ["enforce", "warn", "audit"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
    }
    let mut meta = cx.meta(&cx.namespace);
    meta.namespace = None;
    meta.labels = Some(labels);
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

fn policy(cx: &Cx, name: &str, from: Vec<NetworkPolicyPeer>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: cx.meta(name),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            // An empty list (not a missing one) is what "deny all ingress" means.
            ingress: Some(if from.is_empty() {
                vec![]
            } else {
                vec![NetworkPolicyIngressRule {
                    from: Some(from),
                    ports: None,
                }]
            }),
            egress: None,
        }),
    }
}

fn namespaces_labelled(key: &str, value: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            match_expressions: None,
        }),
        ..NetworkPolicyPeer::default()
    }
}

/// Default-deny ingress first, then the allows: the same workspace, the gateway's
/// namespace, and any extra namespaces of the settings.
pub(super) fn network_policies(cx: &Cx) -> Vec<NetworkPolicy> {
    let s = cx.settings();
    let mut out = vec![
        policy(cx, "default-deny-ingress", vec![]),
        policy(
            cx,
            "allow-same-workspace",
            vec![namespaces_labelled(
                LABEL_WORKSPACE,
                &cx.input.workspace_id.to_string(),
            )],
        ),
        policy(
            cx,
            "allow-gateway",
            vec![namespaces_labelled(
                LABEL_NAMESPACE_NAME,
                &s.gateway_namespace,
            )],
        ),
    ];
    let extra: BTreeSet<&str> = s
        .extra_ingress_namespaces
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty() && *n != s.gateway_namespace)
        .collect();
    if !extra.is_empty() {
        out.push(policy(
            cx,
            "allow-platform",
            extra
                .into_iter()
                .map(|n| namespaces_labelled(LABEL_NAMESPACE_NAME, n))
                .collect(),
        ));
    }
    out.push(egress(cx));
    out
}

/// Egress: to the cluster DNS, to the same workspace, and to the internet minus the
/// denied ranges (metadata endpoints, nodes, Pods and Services of other workspaces, the
/// control plane). Rules are a union: the workspace rule admits its own Pods even
/// though the Pod range is denied as an address block.
fn egress(cx: &Cx) -> NetworkPolicy {
    let e = &cx.settings().egress;
    let dns_ports = ["UDP", "TCP"]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            protocol: Some(protocol.to_owned()),
            end_port: None,
        })
        .collect();
    let mut dns_peer = namespaces_labelled(LABEL_NAMESPACE_NAME, &e.dns_namespace);
    dns_peer.pod_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "k8s-app".to_owned(),
            "kube-dns".to_owned(),
        )])),
        match_expressions: None,
    });
    let mut rules = vec![
        NetworkPolicyEgressRule {
            to: Some(vec![dns_peer]),
            ports: Some(dns_ports),
        },
        NetworkPolicyEgressRule {
            to: Some(vec![namespaces_labelled(
                LABEL_WORKSPACE,
                &cx.input.workspace_id.to_string(),
            )]),
            ports: None,
        },
    ];
    if e.internet {
        let (v6, v4): (Vec<&String>, Vec<&String>) =
            e.denied_cidrs.iter().partition(|c| c.contains(':'));
        let block = |cidr: &str, except: Vec<&String>| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: (!except.is_empty()).then(|| except.into_iter().cloned().collect()),
            }),
            ..NetworkPolicyPeer::default()
        };
        rules.push(NetworkPolicyEgressRule {
            to: Some(vec![block("0.0.0.0/0", v4), block("::/0", v6)]),
            ports: None,
        });
    }
    NetworkPolicy {
        metadata: cx.meta("egress"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Egress".to_owned()]),
            ingress: None,
            egress: Some(rules),
        }),
    }
}

/// A ClusterIP Service with every declared port.
pub(super) fn service(cx: &Cx) -> Service {
    let ports = cx
        .input
        .spec
        .ports
        .iter()
        .map(|p| ServicePort {
            name: Some(p.name.clone()),
            port: i32::from(p.port),
            target_port: Some(IntOrString::Int(i32::from(p.port))),
            protocol: Some("TCP".to_owned()),
            // The gateway must speak HTTP/2 cleartext to a gRPC backend.
            app_protocol: match p.protocol {
                PortProtocol::Http => Some("http".to_owned()),
                PortProtocol::Grpc => Some("kubernetes.io/h2c".to_owned()),
                PortProtocol::Tcp => None,
            },
            node_port: None,
        })
        .collect();
    Service {
        metadata: cx.meta(SERVICE_NAME),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(cx.selector()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
