//! Unit tests of the whole spec pass, from literal loco.toml inputs and the fixtures under
//! core-api/spec/tests/fixtures/ (included at compile time: no I/O).

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../tests/fixtures/", $name))
    };
}

fn ok(src: &str) -> Validated {
    ok_with(src, &Options::default())
}

fn ok_with(src: &str, opts: &Options) -> Validated {
    match validate(src, "loco.toml", opts) {
        Ok(v) => v,
        Err(e) => panic!("expected a valid spec, got:\n{e}"),
    }
}

fn errs(src: &str) -> Vec<SpecError> {
    errs_with(src, &Options::default())
}

fn errs_with(src: &str, opts: &Options) -> Vec<SpecError> {
    match validate(src, "loco.toml", opts) {
        Ok(v) => panic!("expected errors, got a valid spec: {:?}", v.spec),
        Err(e) => e.errors,
    }
}

fn profile(name: &str) -> Options {
    Options {
        profile: Some(name.to_owned()),
        ..Options::default()
    }
}

fn find(errors: &[SpecError], path: &str) -> SpecError {
    errors
        .iter()
        .find(|e| e.path == path)
        .cloned()
        .unwrap_or_else(|| panic!("no error at {path}; got: {errors:#?}"))
}

const MINIMAL: &str =
    "[Metadata]\nName = \"hello\"\n[Routing]\nPort = 8000\n[Health]\nPath = \"/health\"\n";

#[test]
fn minimal_file_gets_every_default() {
    let s = ok(fixture!("minimal.toml")).spec;
    assert_eq!(s.spec_version, SPEC_VERSION);
    assert_eq!(s.config_version, "0.1");
    assert_eq!(s.app.name, "hello");
    assert_eq!(s.app.kind, AppKind::Service);
    assert_eq!(s.profile, None);
    assert_eq!(s.region, "us-east-1");
    assert_eq!(
        s.build,
        BuildSource::Dockerfile {
            path: "Dockerfile".into()
        }
    );
    assert_eq!(s.routing.host, "hello.deploy-app.com");
    assert_eq!(s.routing.path_prefix, "/");
    assert_eq!(s.routing.port_name, "http");
    assert_eq!(s.routing.idle_timeout_seconds, 60);
    assert_eq!(s.ports.len(), 1);
    assert!(s.ports[0].routed);
    assert_eq!(s.resources.cpu, "100m");
    assert_eq!(s.resources.cpu_millis, 100);
    assert_eq!(s.resources.memory_bytes, 256 * 1024 * 1024);
    assert_eq!(s.replicas, ReplicaBounds { min: 1, max: 1 });
    assert_eq!(s.autoscaling, None);
    assert_eq!(
        s.health.check,
        HealthCheck::Http {
            path: "/health".into(),
            port: 8000
        }
    );
    assert_eq!(
        (
            s.health.interval_seconds,
            s.health.timeout_seconds,
            s.health.failure_threshold,
            s.health.startup_grace_period_seconds
        ),
        (30, 5, 3, 0)
    );
    assert_eq!(s.env.file, None);
    assert!(s.env.variables.is_empty());
    assert_eq!(
        s.sleep,
        Sleep {
            enabled: true,
            idle_window_seconds: 7 * 86_400
        }
    );
    assert!(s.obs.logging.enabled);
    assert_eq!(s.obs.logging.retention_seconds, 7 * 86_400);
    assert!(!s.obs.metrics.enabled);
    assert!(!s.obs.tracing.enabled);
    assert_eq!(s.obs.tracing.sample_rate, 0.1);
}

#[test]
fn existing_flat_format_reads_unchanged() {
    let v = ok(fixture!("existing_flat.toml"));
    let s = v.spec;
    assert_eq!(s.app.description, "Orders API");
    assert_eq!(s.region, "us-east-1");
    assert_eq!(s.routing.host, "orders.deploy-app.com");
    assert_eq!(s.routing.path_prefix, "/api");
    assert_eq!(s.routing.idle_timeout_seconds, 120);
    assert_eq!(s.resources.cpu_millis, 250);
    assert_eq!(s.replicas, ReplicaBounds { min: 2, max: 4 });
    assert_eq!(
        s.autoscaling,
        Some(Autoscaling {
            metric: ScaleMetric::Cpu,
            target_percent: 70
        })
    );
    assert_eq!(s.health.startup_grace_period_seconds, 15);
    assert_eq!(s.env.file.as_deref(), Some(".env"));
    let names: Vec<_> = s.env.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["FEATURE_X", "LOG_LEVEL"]);
    assert_eq!(v.env_values.get("LOG_LEVEL"), Some("info"));
    assert!(s.obs.logging.structured);
    assert!(s.obs.metrics.enabled);
    assert_eq!(s.obs.tracing.sample_rate, 0.25);
    assert_eq!(
        s.obs.tracing.tags.get("team").map(String::as_str),
        Some("payments")
    );
    // the metrics port joins the container ports under its own name
    assert!(
        s.ports
            .iter()
            .any(|p| p.name == "metrics" && p.port == 9090)
    );
}

#[test]
fn existing_table_format_and_lowercase_build_type_read_unchanged() {
    let s = ok(fixture!("existing_tables.toml")).spec;
    assert_eq!(s.region, "eu-west-1");
    assert_eq!(s.resources.cpu_millis, 500);
    assert_eq!(s.resources.memory, "1Gi");
    assert_eq!(s.replicas, ReplicaBounds { min: 1, max: 3 });
    assert_eq!(
        s.autoscaling,
        Some(Autoscaling {
            metric: ScaleMetric::Memory,
            target_percent: 80
        })
    );
}

#[test]
fn legacy_init_file_without_region_uses_its_only_region() {
    let s = ok(fixture!("legacy_init.toml")).spec;
    assert_eq!(s.region, "us-east-1");
    assert_eq!(s.env.file, None, "File = \"\" means no file");
    assert!(s.obs.tracing.tags.is_empty());
}

#[test]
fn profiles_override_region_domain_replicas_and_env() {
    let src = fixture!("profiles.toml");
    let base = ok(src);
    assert_eq!(base.spec.profile, None);
    assert_eq!(base.spec.resources.cpu, "200m");
    assert_eq!(base.spec.routing.host, "billing.deploy-app.com");
    assert_eq!(base.spec.replicas, ReplicaBounds { min: 1, max: 2 });

    let dev = ok_with(src, &profile("dev")).spec;
    assert_eq!(dev.profile.as_deref(), Some("dev"));
    assert_eq!(dev.resources.cpu, "100m");
    assert_eq!(dev.resources.memory, "128Mi");
    assert_eq!(dev.routing.host, "billing.dev.deploy-app.com");

    let prod = ok_with(src, &profile("prod"));
    assert_eq!(prod.spec.resources.cpu, "500m");
    assert_eq!(prod.spec.routing.host, "billing.deploy-app.com");
    assert_eq!(prod.spec.replicas, ReplicaBounds { min: 1, max: 5 });
    assert_eq!(prod.env_values.get("LOG_LEVEL"), Some("warn"));
    assert_eq!(prod.env_values.get("DB_POOL"), Some("5"));
}

#[test]
fn unknown_profile_is_refused_with_a_suggestion() {
    let e = errs_with(fixture!("profiles.toml"), &profile("prd"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].code, ErrorCode::ProfileNotFound);
    assert!(e[0].hint.contains("--profile prod"), "{}", e[0].hint);
    let e = errs_with(MINIMAL, &profile("dev"));
    assert_eq!(e[0].code, ErrorCode::ProfileNotFound);
    assert!(e[0].hint.contains("[Profile.dev]"));
}

#[test]
fn replica_cap_is_configurable() {
    let src = fixture!("profiles.toml");
    let tight = Options {
        profile: Some("prod".into()),
        max_replicas: 3,
        ..Options::default()
    };
    let e = errs_with(src, &tight);
    let r = find(&e, "Profile.prod.Replicas.Max");
    assert_eq!(r.code, ErrorCode::InvalidReplicas);
    assert!(r.message.contains("cap of 3"));
    assert_eq!((r.line, r.column), (31, 18));
}

#[test]
fn custom_domains_are_refused_with_the_platform_alternative() {
    let e = errs(fixture!("custom_domain.toml"));
    assert_eq!(e.len(), 1, "{e:#?}");
    let c = &e[0];
    assert_eq!(c.code, ErrorCode::CustomDomainWithdrawn);
    assert_eq!(c.path, "DomainConfig.Type");
    assert_eq!((c.line, c.column), (9, 8));
    assert!(c.message.contains("withdrawn"));
    assert!(c.hint.contains("\"blog.deploy-app.com\""), "{}", c.hint);
    assert!(c.hint.contains("BaseDomain"));
}

#[test]
fn platform_hostnames_stay_under_the_platform_domain() {
    let elsewhere = format!("{MINIMAL}[DomainConfig]\nHostname = \"blog.example.org\"\n");
    let e = errs(&elsewhere);
    let h = find(&e, "DomainConfig.Hostname");
    assert_eq!(h.code, ErrorCode::InvalidHostname);
    assert!(h.hint.contains("\"blog.deploy-app.com\""), "{}", h.hint);
    let opts = Options {
        base_domain: "example.org".into(),
        ..Options::default()
    };
    assert_eq!(
        ok_with(&elsewhere, &opts).spec.routing.host,
        "blog.example.org"
    );
    let sneaky = format!("{MINIMAL}[Profile.dev]\nBaseDomain = \"example.org\"\n");
    let e = errs_with(&sneaky, &profile("dev"));
    assert_eq!(
        find(&e, "Profile.dev.BaseDomain").code,
        ErrorCode::InvalidHostname
    );
}

#[test]
fn full_file_resolves_ports_grpc_health_and_sleep() {
    let s = ok(fixture!("full.toml")).spec;
    assert_eq!(
        s.build,
        BuildSource::Image {
            reference: "ghcr.io/team/greeter:1.4.2".into()
        }
    );
    let ports: Vec<_> = s
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.port, p.protocol, p.routed))
        .collect();
    assert_eq!(
        ports,
        [
            ("web", 8080, PortProtocol::Http, true),
            ("admin", 9000, PortProtocol::Tcp, false),
            ("grpc", 50051, PortProtocol::Grpc, false),
            ("metrics", 9100, PortProtocol::Http, false),
        ]
    );
    assert_eq!(s.routing.port_name, "web");
    let g = s.grpc.as_ref().expect("grpc");
    assert_eq!(g.port_name, "grpc");
    assert_eq!(g.services, ["helloworld.Greeter", "helloworld.Farewell"]);
    assert_eq!(
        s.health.check,
        HealthCheck::Grpc {
            port: 50051,
            service: "helloworld.Greeter".into()
        }
    );
    assert_eq!(
        s.sleep,
        Sleep {
            enabled: false,
            idle_window_seconds: 3 * 86_400
        }
    );
    let staging = ok_with(fixture!("full.toml"), &profile("staging")).spec;
    assert_eq!(staging.routing.host, "greeter.staging.deploy-app.com");
    assert_eq!(staging.replicas, ReplicaBounds { min: 1, max: 2 });
}

#[test]
fn every_mistake_is_reported_at_once_with_position_and_fix() {
    let src = fixture!("invalid_many.toml");
    let e = errs(src);
    let expect = [
        (
            "Metadata.ConfigVersion",
            ErrorCode::UnsupportedConfigVersion,
        ),
        ("Metadata.Name", ErrorCode::InvalidName),
        ("Metadata.Regoin", ErrorCode::UnknownKey),
        // the misspelt Region leaves two regions to choose from
        ("Metadata.Region", ErrorCode::MissingKey),
        ("Build.type", ErrorCode::ConflictingKeys),
        ("Routing.Port", ErrorCode::InvalidPort),
        ("Routing.PathPrefix", ErrorCode::InvalidPath),
        ("Routing.IdleTimeout", ErrorCode::OutOfRange),
        ("DomainConfig.Hostname", ErrorCode::InvalidHostname),
        ("RegionConfig.us-east-1.CPU", ErrorCode::InvalidQuantity),
        ("RegionConfig.us-east-1.Memory", ErrorCode::InvalidQuantity),
        (
            "RegionConfig.us-east-1.ReplicasMax",
            ErrorCode::InvalidReplicas,
        ),
        (
            "RegionConfig.us-east-1.CPUTarget",
            ErrorCode::InvalidAutoscaling,
        ),
        (
            "RegionConfig.us-west-1.Replicas.Max",
            ErrorCode::InvalidReplicas,
        ),
        (
            "RegionConfig.us-west-1.Scalers.MemoryTarget",
            ErrorCode::InvalidAutoscaling,
        ),
        ("Health.Path", ErrorCode::InvalidPath),
        ("Health.StartupGracePeriod", ErrorCode::OutOfRange),
        ("Health.Interval", ErrorCode::WrongType),
        ("Env.Variables.1BAD", ErrorCode::InvalidEnvName),
        ("Env.Variables.LOCO_TOKEN", ErrorCode::ReservedEnvName),
        ("Env.Variables.GOOD", ErrorCode::WrongType),
        ("Sleep.IdleWindow", ErrorCode::InvalidDuration),
        ("Obs.Tracing.SampleRate", ErrorCode::OutOfRange),
    ];
    for (path, code) in expect {
        let found = find(&e, path);
        assert_eq!(found.code, code, "{path}: {found}");
    }
    assert_eq!(e.len(), expect.len(), "unexpected extra errors: {e:#?}");
    // sorted in file order
    assert!(
        e.windows(2)
            .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column))
    );
    for x in &e {
        assert!(x.line >= 1 && x.column >= 1);
        assert!(!x.path.is_empty(), "{x}");
        assert!(!x.hint.is_empty(), "{x}");
        assert!(!x.to_string().contains("secret-value-never-printed"), "{x}");
    }
    let mem = find(&e, "RegionConfig.us-east-1.Memory");
    assert_eq!((mem.line, mem.column), (21, 10));
    assert!(mem.hint.contains("\"256Mi\""), "{}", mem.hint);
    let unknown = find(&e, "Metadata.Regoin");
    assert!(
        unknown.hint.starts_with("did you mean `Region`?"),
        "{}",
        unknown.hint
    );
    assert_eq!((unknown.line, unknown.column), (5, 1));
}

#[test]
fn syntax_errors_carry_positions() {
    let e = errs(fixture!("syntax_error.toml"));
    assert!(!e.is_empty());
    assert!(e.iter().all(|x| x.code == ErrorCode::TomlSyntax));
    assert_eq!(e[0].line, 2, "{e:#?}");
}

#[test]
fn unknown_keys_suggest_the_right_spelling() {
    let e = errs(&format!("{MINIMAL}[Sleep]\nEnable = true\n"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "Sleep.Enable");
    assert!(e[0].hint.starts_with("did you mean `Enabled`?"));
    let e = errs(&format!("{MINIMAL}[Helth]\n"));
    assert!(
        e[0].hint.starts_with("did you mean `Health`?"),
        "{}",
        e[0].hint
    );
    let e = errs(&MINIMAL.replace("Name", "name"));
    let u = find(&e, "Metadata.name");
    assert!(u.hint.starts_with("did you mean `Name`?"));
    assert_eq!(find(&e, "Metadata.Name").code, ErrorCode::MissingKey);
}

#[test]
fn missing_required_keys_are_named() {
    let e = errs("");
    let paths: Vec<_> = e.iter().map(|x| x.path.as_str()).collect();
    // same position (the top of the file), so ordered by path
    assert_eq!(paths, ["Health.Path", "Metadata", "Routing.Port"]);
    assert!(e.iter().all(|x| (x.line, x.column) == (1, 1)));
}

#[test]
fn region_selection_rules() {
    let two =
        format!("{MINIMAL}[RegionConfig.a1]\nCPU = \"100m\"\n[RegionConfig.b1]\nCPU = \"100m\"\n");
    let e = errs(&two);
    assert_eq!(find(&e, "Metadata.Region").code, ErrorCode::MissingKey);
    let wrong = two.replace("Name = \"hello\"", "Name = \"hello\"\nRegion = \"a2\"");
    let e = errs(&wrong);
    let r = find(&e, "Metadata.Region");
    assert_eq!(r.code, ErrorCode::RegionNotFound);
    assert!(r.hint.contains("a1, b1"), "{}", r.hint);
    let old = format!("PrimaryRegion = \"b1\"\n{two}");
    assert_eq!(ok(&old).spec.region, "b1");
}

#[test]
fn autoscaling_rules() {
    let base = |extra: &str| {
        format!("{MINIMAL}[RegionConfig.r1]\nReplicasMin = 1\nReplicasMax = 3\n{extra}")
    };
    let e = errs(&base("EnableAutoScaling = true\n"));
    assert!(
        find(&e, "RegionConfig.r1.EnableAutoScaling")
            .message
            .contains("neither")
    );
    let e = errs(&base("EnableAutoScaling = true\nCPUTarget = 101\n"));
    assert_eq!(
        find(&e, "RegionConfig.r1.CPUTarget").code,
        ErrorCode::InvalidAutoscaling
    );
    let e = errs(&base(
        "EnableAutoScaling = true\nCPUTarget = 50\nScalers = { CPUTarget = 50 }\n",
    ));
    assert_eq!(
        find(&e, "RegionConfig.r1.Scalers.CPUTarget").code,
        ErrorCode::ConflictingKeys
    );
    let pinned = format!(
        "{MINIMAL}[RegionConfig.r1]\nReplicasMin = 2\nReplicasMax = 2\nEnableAutoScaling = true\nCPUTarget = 60\n"
    );
    let e = errs(&pinned);
    assert!(
        find(&e, "RegionConfig.r1.EnableAutoScaling")
            .message
            .contains("both 2")
    );
    let good = ok(&base("EnableAutoScaling = true\nMemoryTarget = 75\n")).spec;
    assert_eq!(
        good.autoscaling.map(|a| a.metric),
        Some(ScaleMetric::Memory)
    );
}

#[test]
fn ports_must_not_collide() {
    let e = errs(&format!("{MINIMAL}[Ports]\nhttp = 9000\n"));
    assert_eq!(find(&e, "Ports.http").code, ErrorCode::PortConflict);
    let e = errs(&format!("{MINIMAL}[Ports]\na1 = 9000\nb1 = 9000\n"));
    assert_eq!(find(&e, "Ports.b1").code, ErrorCode::PortConflict);
    let e = errs(&format!("{MINIMAL}[Ports]\nBadName = 9000\n"));
    assert_eq!(find(&e, "Ports.BadName").code, ErrorCode::InvalidName);
    let e = errs(&MINIMAL.replace("8000", "70000"));
    assert_eq!(find(&e, "Routing.Port").code, ErrorCode::InvalidPort);
}

#[test]
fn health_check_kinds() {
    let cmd = MINIMAL.replace(
        "Path = \"/health\"",
        "Type = \"command\"\nCommand = [\"/bin/check\", \"-q\"]",
    );
    assert_eq!(
        ok(&cmd).spec.health.check,
        HealthCheck::Command {
            command: vec!["/bin/check".into(), "-q".into()]
        }
    );
    let e = errs(&MINIMAL.replace("Path = \"/health\"", "Type = \"command\"\nPath = \"/h\""));
    assert_eq!(find(&e, "Health.Path").code, ErrorCode::ConflictingKeys);
    assert_eq!(find(&e, "Health.Command").code, ErrorCode::MissingKey);
    let grpc = MINIMAL.replace("Path = \"/health\"", "Type = \"grpc\"");
    assert_eq!(
        ok(&grpc).spec.health.check,
        HealthCheck::Grpc {
            port: 8000,
            service: String::new()
        }
    );
    let e = errs(&MINIMAL.replace("Path = \"/health\"", "Type = \"tcp\""));
    assert!(find(&e, "Health.Type").hint.contains("\"http\""));
}

#[test]
fn grpc_table_needs_port_and_services() {
    let e = errs(&format!("{MINIMAL}[GRPC]\n"));
    assert_eq!(find(&e, "GRPC.Port").code, ErrorCode::MissingKey);
    assert_eq!(find(&e, "GRPC.Services").code, ErrorCode::MissingKey);
    let e = errs(&format!(
        "{MINIMAL}[GRPC]\nPort = 9000\nServices = [\"a/b\", \"x.Y\", \"x.Y\"]\n"
    ));
    assert_eq!(
        find(&e, "GRPC.Services[0]").code,
        ErrorCode::InvalidGrpcService
    );
    assert_eq!(
        find(&e, "GRPC.Services[2]").code,
        ErrorCode::InvalidGrpcService
    );
    let shared = ok(&format!(
        "{MINIMAL}[GRPC]\nPort = 8000\nServices = [\"x.Y\"]\n"
    ))
    .spec;
    assert_eq!(shared.grpc.map(|g| g.port_name), Some("http".into()));
    assert_eq!(shared.ports.len(), 1);
}

#[test]
fn env_values_stay_out_of_debug_and_errors() {
    let src =
        format!("{MINIMAL}[Env]\nVariables = {{ API_KEY = \"hunter2\", LOCO_X = \"hunter3\" }}\n");
    let e = validate(&src, "loco.toml", &Options::default()).unwrap_err();
    assert!(!format!("{e}{e:?}").contains("hunter"));
    let v = ok(&src.replace("LOCO_X", "OTHER"));
    let debug = format!("{v:?}");
    assert!(!debug.contains("hunter"), "{debug}");
    assert!(debug.contains("API_KEY"));
    let json = serde_json::to_string(&v.spec).unwrap();
    assert!(!json.contains("hunter"));
    let e = errs(&format!("{MINIMAL}[Env]\nVariables = {{ N = 12345678 }}\n"));
    assert!(!e[0].to_string().contains("12345678"));
}

#[test]
fn build_rules() {
    let e = errs(&format!(
        "{MINIMAL}[Build]\nImage = \"ghcr.io/a/b:1\"\nDockerfilePath = \"D\"\n"
    ));
    assert_eq!(
        find(&e, "Build.DockerfilePath").code,
        ErrorCode::ConflictingKeys
    );
    let e = errs(&format!("{MINIMAL}[Build]\nType = \"buildpack\"\n"));
    assert_eq!(find(&e, "Build.Type").code, ErrorCode::UnsupportedValue);
    let e = errs(&format!("{MINIMAL}[Build]\nImage = \"Upper/Case\"\n"));
    assert_eq!(find(&e, "Build.Image").code, ErrorCode::InvalidImage);
}

#[test]
fn stateful_app_types_are_not_supported_yet() {
    let e = errs(&MINIMAL.replace("Name = \"hello\"", "Name = \"hello\"\nType = \"DATABASE\""));
    let t = find(&e, "Metadata.Type");
    assert_eq!(t.code, ErrorCode::UnsupportedValue);
    assert!(t.message.contains("stateless"));
}

#[test]
fn resolved_spec_round_trips_through_json() {
    for (src, opts) in [
        (fixture!("minimal.toml"), Options::default()),
        (fixture!("existing_flat.toml"), Options::default()),
        (fixture!("existing_tables.toml"), Options::default()),
        (fixture!("legacy_init.toml"), Options::default()),
        (fixture!("profiles.toml"), profile("prod")),
        (fixture!("full.toml"), profile("staging")),
        (fixture!("large_200.toml"), profile("dev")),
    ] {
        let spec = ok_with(src, &opts).spec;
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["spec_version"], serde_json::json!(SPEC_VERSION));
        let back: ResolvedSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, spec);
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }
}

#[test]
fn stored_specs_refuse_unknown_fields() {
    let spec = ok(MINIMAL).spec;
    let mut json = serde_json::to_value(&spec).unwrap();
    json["surprise"] = serde_json::json!(1);
    assert!(serde_json::from_value::<ResolvedSpec>(json).is_err());
}

#[test]
fn tmp_size_comes_from_the_profile_or_the_region_and_is_absent_by_default() {
    assert_eq!(ok(MINIMAL).spec.resources.tmp_size, None);
    let src = fixture!("profiles.toml");
    assert_eq!(ok(src).spec.resources.tmp_size, None);
    assert_eq!(
        ok_with(src, &profile("prod")).spec.resources.tmp_size,
        Some(TmpSize {
            quantity: "512Mi".into(),
            bytes: 512 << 20
        })
    );
    let region = MINIMAL.replace(
        "[Health]",
        "[RegionConfig.fra1]\nTmpSize = \"100M\"\n[Health]",
    );
    let r = ok(&region).spec.resources.tmp_size.unwrap();
    assert_eq!((r.quantity.as_str(), r.bytes), ("100M", 100_000_000));
    // A profile's TmpSize wins over the region's.
    let both = format!("{region}[Profile.big]\nTmpSize = \"1Gi\"\n");
    assert_eq!(
        ok_with(&both, &profile("big"))
            .spec
            .resources
            .tmp_size
            .unwrap()
            .bytes,
        1 << 30
    );
}

#[test]
fn tmp_size_must_be_a_size_within_the_platforms_maximum() {
    let with = |v: &str| {
        MINIMAL.replace(
            "[Health]",
            &format!("[RegionConfig.fra1]\nTmpSize = {v:?}\n[Health]"),
        )
    };
    let e = find(&errs(&with("512MB")), "RegionConfig.fra1.TmpSize");
    assert_eq!(e.code, ErrorCode::InvalidQuantity);
    assert!(e.hint.contains("\"512Mi\""), "{}", e.hint);
    let e = find(&errs(&with("512m")), "RegionConfig.fra1.TmpSize");
    assert!(e.hint.contains("\"512Mi\""), "{}", e.hint);
    let e = find(&errs(&with("0")), "RegionConfig.fra1.TmpSize");
    assert!(e.message.contains("too small"), "{}", e.message);
    let e = find(&errs(&with("-1Gi")), "RegionConfig.fra1.TmpSize");
    assert_eq!(e.code, ErrorCode::InvalidQuantity);
    // Above the platform's maximum (1Gi by default): the cap and who can raise it.
    let e = find(&errs(&with("2Gi")), "RegionConfig.fra1.TmpSize");
    assert!(e.message.contains("maximum of 1Gi"), "{}", e.message);
    assert!(e.hint.contains("--max-tmp-size"), "{}", e.hint);
    assert_eq!((e.line, e.column), (6, 11));
    let roomy = Options {
        max_tmp_size_bytes: 4 << 30,
        ..Options::default()
    };
    assert_eq!(
        ok_with(&with("2Gi"), &roomy)
            .spec
            .resources
            .tmp_size
            .unwrap()
            .bytes,
        2 << 30
    );
    // Checked in every profile, chosen or not, at its own path.
    let p = format!("{MINIMAL}[Profile.huge]\nTmpSize = \"10Gi\"\n");
    let e = find(&errs(&p), "Profile.huge.TmpSize");
    assert_eq!(e.code, ErrorCode::InvalidQuantity);
    // A misspelt key gets the usual suggestion.
    let typo = MINIMAL.replace(
        "[Health]",
        "[RegionConfig.fra1]\nTmpSise = \"1Gi\"\n[Health]",
    );
    let e = find(&errs(&typo), "RegionConfig.fra1.TmpSise");
    assert!(e.hint.contains("TmpSize"), "{}", e.hint);
}

#[test]
fn specs_stored_before_tmp_size_still_read_and_compare_equal() {
    let spec = ok(MINIMAL).spec;
    let json = serde_json::to_value(&spec).unwrap();
    assert!(
        json["resources"].get("tmp_size").is_none(),
        "an absent TmpSize must not change the stored JSON: {json}"
    );
    let back: ResolvedSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}
