//! Unit tests of render from literal loco.toml inputs.

use serde_json::Value;

use super::*;
use loco_spec::Options;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000abc";
const SECRET_VALUE: &str = "s3cr3t-value-never-shown";

const WEB: &str = r#"
[Metadata]
Name = "web-front"
[Routing]
Port = 8000
PathPrefix = "/api"
[Health]
Path = "/health"
StartupGracePeriod = 30
[Env]
Variables = { API_TOKEN = "s3cr3t-value-never-shown", MODE = "prod" }
"#;

const GRPC_AUTOSCALE: &str = r#"
[Metadata]
Name = "greeter"
Region = "fra1"
[Build]
Image = "ghcr.io/team/greeter:1.4.2"
[Routing]
Port = 8080
[GRPC]
Port = 50051
Services = ["helloworld.Greeter"]
[RegionConfig.fra1]
CPU = "1"
Memory = "512Mi"
ReplicasMin = 2
ReplicasMax = 4
[RegionConfig.fra1.Scalers]
Enabled = true
CPUTarget = 65
[Health]
Type = "grpc"
GRPCService = "helloworld.Greeter"
"#;

fn input(src: &str) -> RenderInput {
    let v = loco_spec::validate(src, "loco.toml", &Options::default()).unwrap();
    RenderInput {
        org_id: 7,
        workspace_id: 11,
        app_id: 42,
        deployment_id: 900,
        template_deployment_id: 900,
        revision_id: 901,
        spec: v.spec,
        image: format!("registry.deploy-app.com/o7/web:1.0@{DIGEST}"),
        replicas: None,
        asleep: false,
        env: v.env_values,
        checksum_key: ChecksumKey(b"per-app-key".to_vec()),
        pull_secret: Some(PullCredential {
            registry: "registry.deploy-app.com".into(),
            username: "puller".into(),
            password: "pull-password-never-shown".into(),
        }),
        workspace_apps: vec![
            SiblingApp::rendered_by_loco(11, 43, "billing-api", 9000),
            SiblingApp::rendered_by_loco(11, 42, "web-front", 8000),
        ],
        settings: RenderSettings::default(),
    }
}

fn json_of(r: &Rendered) -> Vec<Value> {
    r.objects
        .iter()
        .map(|o| o.object.to_json().unwrap())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Option<&'a Value> {
    objs.iter().find(|o| o["kind"] == kind)
}

fn container(objs: &[Value]) -> &Value {
    &find(objs, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]
}

fn env_var<'a>(objs: &'a [Value], name: &str) -> Option<&'a str> {
    container(objs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn objects_come_in_apply_order_with_default_deny_first() {
    let r = render(&input(WEB)).unwrap();
    assert_eq!(r.namespace, "wks-11-app-42");
    let phases: Vec<Phase> = r.objects.iter().map(|o| o.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted);
    let kinds: Vec<String> = r.inventory().into_iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "ServiceAccount",
            "Secret",
            "Secret",
            "Service",
            "Deployment",
            "HTTPRoute"
        ]
    );
    let objs = json_of(&r);
    assert_eq!(objs[1]["metadata"]["name"], "default-deny-ingress");
    assert_eq!(objs[1]["spec"]["ingress"], serde_json::json!([]));
    assert_eq!(
        objs[2]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
            [LABEL_WORKSPACE],
        "11"
    );
    assert_eq!(
        objs[3]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "loco-system"
    );
}

#[test]
fn every_object_carries_the_four_labels_and_the_app_name() {
    for src in [WEB, GRPC_AUTOSCALE] {
        for asleep in [false, true] {
            let mut i = input(src);
            i.asleep = asleep;
            i.settings.backend_traffic_policy = true;
            for o in json_of(&render(&i).unwrap()) {
                let l = &o["metadata"]["labels"];
                assert_eq!(l[LABEL_MANAGED_BY], "loco", "{o}");
                assert_eq!(l[LABEL_ORG], "7", "{o}");
                assert_eq!(l[LABEL_WORKSPACE], "11", "{o}");
                assert_eq!(l[LABEL_APP], "42", "{o}");
                assert!(o["metadata"]["annotations"][ANNOTATION_APP_NAME].is_string());
            }
        }
    }
}

#[test]
fn namespace_admits_routes_and_enforces_restricted_pods() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let ns = find(&objs, "Namespace").unwrap();
    assert_eq!(ns["metadata"]["name"], "wks-11-app-42");
    assert!(ns["metadata"].get("namespace").is_none());
    assert_eq!(ns["metadata"]["labels"][LABEL_ROUTES], "allowed");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

#[test]
fn pods_are_restricted_and_never_privileged() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let pod = &find(&objs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["imagePullSecrets"][0]["name"], PULL_SECRET_NAME);
    for c in pod["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(sc["capabilities"].get("add").is_none());
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(sc["readOnlyRootFilesystem"], true);
    }
    let sa = find(&objs, "ServiceAccount").unwrap();
    assert_eq!(sa["automountServiceAccountToken"], false);
}

#[test]
fn deployment_id_is_an_annotation_never_a_selector() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let d = find(&objs, "Deployment").unwrap();
    assert_eq!(d["metadata"]["annotations"][ANNOTATION_DEPLOYMENT], "900");
    let sel = d["spec"]["selector"]["matchLabels"].to_string();
    assert!(!sel.contains("900"), "{sel}");
    // The selector must not move between deploys of the same app.
    let mut other = input(WEB);
    other.deployment_id = 1000;
    other.image = format!("registry.deploy-app.com/o7/web:2.0@{DIGEST}");
    let objs2 = json_of(&render(&other).unwrap());
    assert_eq!(
        find(&objs2, "Deployment").unwrap()["spec"]["selector"],
        d["spec"]["selector"]
    );
}

#[test]
fn scale_sleep_and_wake_keep_the_pod_template_so_no_pod_rolls() {
    let before = input(WEB);
    let template = |i: &RenderInput| {
        let objs = json_of(&render(i).unwrap());
        let d = find(&objs, "Deployment").unwrap().clone();
        (d["spec"]["template"].clone(), d)
    };
    let (t0, d0) = template(&before);
    // The next deployment scales to 3: a new deployment and revision, the same template.
    let mut scaled = before.clone();
    scaled.deployment_id = 950;
    scaled.revision_id = 951;
    scaled.replicas = Some(3);
    scaled.spec.replicas.max = 3;
    let (t1, d1) = template(&scaled);
    assert_eq!(t1, t0, "a replica-only change keeps the pod template");
    assert_eq!(d1["spec"]["replicas"], 3);
    assert_eq!(d1["metadata"]["annotations"][ANNOTATION_DEPLOYMENT], "950");
    assert_ne!(d1["metadata"], d0["metadata"]);
    // Asleep, and awake again.
    let mut asleep = scaled.clone();
    asleep.deployment_id = 960;
    asleep.asleep = true;
    let (t2, d2) = template(&asleep);
    assert_eq!(t2, t0, "sleep keeps the pod template");
    assert_eq!(d2["spec"]["replicas"], 0);
    // A new template id is a new template: that deployment rolls the pods.
    let mut rolled = before.clone();
    rolled.deployment_id = 970;
    rolled.template_deployment_id = 970;
    let (t3, _) = template(&rolled);
    assert_ne!(t3, t0);
    assert_eq!(
        t3["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "LOCO_DEPLOYMENT_ID")
            .map(|e| e["value"].clone()),
        Some(Value::from("970"))
    );
}

#[test]
fn secret_values_appear_only_in_secrets() {
    let i = input(WEB);
    let r = render(&i).unwrap();
    for o in &r.objects {
        let text = o.object.to_json().unwrap().to_string();
        if matches!(o.object, Object::Secret(_)) {
            continue;
        }
        assert!(!text.contains(SECRET_VALUE), "{text}");
        assert!(!text.contains("pull-password-never-shown"), "{text}");
    }
    let debug = format!("{r:?} {i:?}");
    assert!(!debug.contains(SECRET_VALUE));
    assert!(!debug.contains("pull-password"));
    assert!(debug.contains("API_TOKEN"), "names stay visible");
    let masked = r.to_yaml(Secrets::Masked).unwrap();
    assert!(!masked.contains(SECRET_VALUE));
    assert!(!masked.contains("cHVsbC1wYXNzd29yZC1uZXZlci1zaG93bg"));
    assert!(masked.contains(REDACTED));
    // Shown: the real value, base64 as Kubernetes stores it.
    let shown = r.to_yaml(Secrets::Shown).unwrap();
    assert!(shown.contains("czNjcjN0LXZhbHVlLW5ldmVyLXNob3du"));
}

#[test]
fn env_secret_is_named_by_content_and_referenced_by_the_deployment() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let env = objs
        .iter()
        .find(|o| o["kind"] == "Secret" && o["type"] == "Opaque")
        .unwrap();
    let name = env["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("env-") && name.len() == 14, "{name}");
    assert_eq!(container(&objs)["envFrom"][0]["secretRef"]["name"], name);
    let pull = objs
        .iter()
        .find(|o| o["type"] == "kubernetes.io/dockerconfigjson")
        .unwrap();
    assert_eq!(pull["metadata"]["name"], PULL_SECRET_NAME);

    // A changed value renames the Secret (pods roll); a scale change does not.
    let mut changed = input(&WEB.replace("\"prod\"", "\"dev\""));
    changed.replicas = Some(3);
    let objs2 = json_of(&render(&changed).unwrap());
    let name2 = container(&objs2)["envFrom"][0]["secretRef"]["name"].clone();
    assert_ne!(name2, name);
    let mut scaled = input(WEB);
    scaled.replicas = Some(3);
    let objs3 = json_of(&render(&scaled).unwrap());
    assert_eq!(container(&objs3)["envFrom"][0]["secretRef"]["name"], name);
    assert_eq!(find(&objs3, "Deployment").unwrap()["spec"]["replicas"], 3);
    // The per-app key changes the name too: the hash cannot be brute-forced without it.
    let mut keyed = input(WEB);
    keyed.checksum_key = ChecksumKey(b"other".to_vec());
    let objs4 = json_of(&render(&keyed).unwrap());
    assert_ne!(container(&objs4)["envFrom"][0]["secretRef"]["name"], name);
}

#[test]
fn no_env_values_means_no_env_secret() {
    let src = "[Metadata]\nName = \"hello\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/h\"\n";
    let mut i = input(src);
    i.pull_secret = None;
    let objs = json_of(&render(&i).unwrap());
    assert!(find(&objs, "Secret").is_none());
    assert!(container(&objs).get("envFrom").is_none());
    let pod = &find(&objs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert!(pod.get("imagePullSecrets").is_none());
}

#[test]
fn loco_variables_are_injected_with_urls_of_the_other_apps() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    assert_eq!(env_var(&objs, "LOCO_APP_NAME"), Some("web-front"));
    assert_eq!(env_var(&objs, "LOCO_APP_VERSION"), Some("1.0"));
    assert_eq!(env_var(&objs, "LOCO_DEPLOYMENT_ID"), Some("900"));
    assert_eq!(env_var(&objs, "LOCO_PROFILE"), Some(""));
    assert!(env_var(&objs, "LOCO_VERSION").is_some());
    assert!(env_var(&objs, "LOCO_METRICS_ENDPOINT").is_some());
    assert!(env_var(&objs, "LOCO_TRACING_ENDPOINT").is_some());
    assert_eq!(
        env_var(&objs, "LOCO_BILLING_API_URL"),
        Some("http://app.wks-11-app-43.svc:9000")
    );
    assert_eq!(env_var(&objs, "LOCO_WEB_FRONT_URL"), None, "not itself");
}

#[test]
fn autoscaling_renders_an_hpa_and_no_replicas_field() {
    let objs = json_of(&render(&input(GRPC_AUTOSCALE)).unwrap());
    let d = find(&objs, "Deployment").unwrap();
    assert!(d["spec"].get("replicas").is_none(), "{d}");
    let hpa = find(&objs, "HorizontalPodAutoscaler").unwrap();
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 4);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        65
    );
    let probe = &container(&objs)["readinessProbe"];
    assert_eq!(probe["grpc"]["port"], 50051);
    assert_eq!(probe["grpc"]["service"], "helloworld.Greeter");
}

#[test]
fn asleep_means_zero_replicas_no_hpa_and_routes_to_the_reviver() {
    for src in [WEB, GRPC_AUTOSCALE] {
        let mut i = input(src);
        i.asleep = true;
        let objs = json_of(&render(&i).unwrap());
        assert_eq!(find(&objs, "Deployment").unwrap()["spec"]["replicas"], 0);
        assert!(find(&objs, "HorizontalPodAutoscaler").is_none());
        let mut routes = 0;
        for kind in ["HTTPRoute", "GRPCRoute"] {
            let Some(route) = find(&objs, kind) else {
                continue;
            };
            routes += 1;
            for rule in route["spec"]["rules"].as_array().unwrap() {
                let b = &rule["backendRefs"][0];
                assert_eq!(b["name"], "loco-reviver");
                assert_eq!(b["namespace"], "loco-system");
            }
        }
        assert!(routes >= 1);
        let grant = find(&objs, "ReferenceGrant").unwrap();
        assert_eq!(grant["metadata"]["namespace"], "loco-system");
        assert_eq!(grant["spec"]["from"][0]["namespace"], "wks-11-app-42");
        assert_eq!(grant["spec"]["to"][0]["name"], "loco-reviver");
    }
    // Awake: no grant, backends are the app's Service.
    let objs = json_of(&render(&input(WEB)).unwrap());
    assert!(find(&objs, "ReferenceGrant").is_none());
    let b = &find(&objs, "HTTPRoute").unwrap()["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(b["name"], SERVICE_NAME);
    assert!(b.get("namespace").is_none());
}

#[test]
fn routes_attach_to_the_gateway_with_host_and_prefix() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let r = find(&objs, "HTTPRoute").unwrap();
    assert_eq!(r["spec"]["parentRefs"][0]["name"], "loco");
    assert_eq!(r["spec"]["parentRefs"][0]["namespace"], "loco-system");
    assert_eq!(r["spec"]["hostnames"][0], "web-front.deploy-app.com");
    assert_eq!(r["spec"]["rules"][0]["matches"][0]["path"]["value"], "/api");
    assert!(find(&objs, "GRPCRoute").is_none());
    assert!(find(&objs, "BackendTrafficPolicy").is_none());
}

#[test]
fn backend_traffic_policy_only_when_the_crd_is_installed() {
    let mut i = input(GRPC_AUTOSCALE);
    i.settings.backend_traffic_policy = true;
    let objs = json_of(&render(&i).unwrap());
    let btp = find(&objs, "BackendTrafficPolicy").unwrap();
    assert_eq!(btp["spec"]["targetRefs"][1]["kind"], "GRPCRoute");
    assert_eq!(
        btp["spec"]["timeout"]["http"]["connectionIdleTimeout"],
        "60s"
    );
    assert!(find(&objs, "GRPCRoute").is_some());
}

#[test]
fn service_has_every_port() {
    let objs = json_of(&render(&input(GRPC_AUTOSCALE)).unwrap());
    let ports = find(&objs, "Service").unwrap()["spec"]["ports"]
        .as_array()
        .unwrap()
        .clone();
    let numbers: Vec<i64> = ports.iter().map(|p| p["port"].as_i64().unwrap()).collect();
    assert!(
        numbers.contains(&8080) && numbers.contains(&50051),
        "{numbers:?}"
    );
    let grpc = ports.iter().find(|p| p["port"] == 50051).unwrap();
    assert_eq!(grpc["appProtocol"], "kubernetes.io/h2c");
}

#[test]
fn startup_probe_covers_the_grace_period() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let c = container(&objs);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
    let s = &c["startupProbe"];
    let covered = s["periodSeconds"].as_i64().unwrap() * s["failureThreshold"].as_i64().unwrap();
    assert!(covered >= 30, "{s}");
}

#[test]
fn rendering_is_deterministic() {
    let a = render(&input(WEB))
        .unwrap()
        .to_yaml(Secrets::Shown)
        .unwrap();
    let mut i = input(WEB);
    i.workspace_apps.reverse();
    let b = render(&i).unwrap().to_yaml(Secrets::Shown).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_ids_and_images_are_refused_with_codes() {
    let mut i = input(WEB);
    i.workspace_id = 0;
    assert_eq!(render(&i).unwrap_err().code(), "render_invalid_id");
    let mut i = input(WEB);
    i.template_deployment_id = -1;
    assert_eq!(render(&i).unwrap_err().code(), "render_invalid_id");
    let mut i = input(WEB);
    i.image = " ".into();
    assert_eq!(render(&i).unwrap_err().code(), "render_invalid_image");
}

#[test]
fn to_dynamic_keeps_kind_and_api_version() {
    for o in render(&input(GRPC_AUTOSCALE)).unwrap().objects {
        let d = o.object.to_dynamic().unwrap();
        let t = d.types.unwrap();
        let ar = o.object.api_resource();
        assert_eq!(t.kind, ar.kind);
        assert_eq!(t.api_version, ar.api_version);
    }
}

/// Finding: app namespaces allowed all egress (the metadata endpoint, nodes and the
/// control plane were reachable from any tenant pod) and /tmp had no size limit.
#[test]
fn egress_is_dns_the_workspace_and_the_internet_minus_metadata_and_cluster_ranges() {
    let r = render(&input(WEB)).unwrap();
    let objs = json_of(&r);
    let egress = objs
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "egress")
        .expect("an egress NetworkPolicy");
    assert_eq!(egress["spec"]["policyTypes"], serde_json::json!(["Egress"]));
    let rules = egress["spec"]["egress"].as_array().unwrap();
    assert_eq!(rules[0]["ports"][0]["port"], 53);
    assert_eq!(
        rules[0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );
    assert_eq!(
        rules[1]["to"][0]["namespaceSelector"]["matchLabels"][LABEL_WORKSPACE],
        "11"
    );
    let v4 = &rules[2]["to"][0]["ipBlock"];
    let v6 = &rules[2]["to"][1]["ipBlock"];
    assert_eq!(v4["cidr"], "0.0.0.0/0");
    assert_eq!(v6["cidr"], "::/0");
    let except = |b: &serde_json::Value| -> Vec<String> {
        b["except"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for denied in [
        "169.254.0.0/16",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ] {
        assert!(
            except(v4).contains(&denied.to_owned()),
            "{denied} reachable: {v4}"
        );
    }
    assert!(except(v6).contains(&"fd00:ec2::254/128".to_owned()), "{v6}");

    // Internet egress off (the setting the roadmap asks for): DNS and the workspace only.
    let mut i = input(WEB);
    i.settings.egress.internet = false;
    let objs = json_of(&render(&i).unwrap());
    let egress = objs
        .iter()
        .find(|o| o["metadata"]["name"] == "egress")
        .unwrap();
    assert_eq!(egress["spec"]["egress"].as_array().unwrap().len(), 2);

    // /tmp is an emptyDir with a size limit.
    let deployment = json_of(&r)
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["name"], "tmp");
    assert_eq!(volumes[0]["emptyDir"]["sizeLimit"], "256Mi");
}

#[test]
fn placement_renders_the_node_selector_and_tolerations_only_when_set() {
    let objs = json_of(&render(&input(WEB)).unwrap());
    let pod = &find(&objs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert!(pod.get("nodeSelector").is_none() && pod.get("tolerations").is_none());

    let mut i = input(WEB);
    i.settings.placement = crate::Placement {
        node_selector: [("loco.deploy-app.com/node".to_owned(), "real".to_owned())].into(),
        tolerations: vec![
            "loco.deploy-app.com/real-node=true:NoSchedule"
                .parse()
                .unwrap(),
            "dedicated:NoExecute".parse().unwrap(),
        ],
    };
    let objs = json_of(&render(&i).unwrap());
    let pod = &find(&objs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(
        pod["nodeSelector"],
        serde_json::json!({"loco.deploy-app.com/node": "real"})
    );
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([
            {"key": "loco.deploy-app.com/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}
        ])
    );
}

#[test]
fn a_toleration_needs_a_known_effect_and_a_key() {
    use crate::PlacementToleration as T;
    for bad in ["novalue", "k=v:Sometimes", "=v:NoSchedule", ":NoSchedule"] {
        let e = bad.parse::<T>().unwrap_err();
        assert!(e.contains(bad), "{e}");
    }
    let t: T = "k=:NoSchedule".parse().unwrap();
    assert_eq!(t.value.as_deref(), Some(""));
}

#[test]
fn an_apps_tmp_size_overrides_the_platform_setting() {
    let tmp_limit = |src: &str, settings: RenderSettings| -> Value {
        let mut i = input(src);
        i.settings = settings;
        let objs = json_of(&render(&i).unwrap());
        find(&objs, "Deployment").unwrap()["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]
            ["sizeLimit"]
            .clone()
    };
    let platform = RenderSettings {
        tmp_size_limit: "128Mi".into(),
        ..RenderSettings::default()
    };
    // Without TmpSize: the platform's setting.
    assert_eq!(tmp_limit(WEB, platform.clone()), "128Mi");
    // With it: the app's, as written.
    let sized = WEB.replace(
        "[Health]",
        "[RegionConfig.us-east-1]\nTmpSize = \"768Mi\"\n[Health]",
    );
    assert_eq!(tmp_limit(&sized, platform.clone()), "768Mi");
    // Without a read-only root filesystem there is no /tmp volume to size.
    let writable = RenderSettings {
        read_only_root_filesystem: false,
        ..platform
    };
    assert_eq!(tmp_limit(&sized, writable), Value::Null);
}
