//! Shared by the render tests: the fixture cases and the input the I/O layer would build.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use loco_render::{ChecksumKey, PullCredential, RenderInput, RenderSettings, SiblingApp};
use loco_spec::Options;

pub const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

/// One golden case: a spec fixture, how it is deployed, and the golden file it renders to.
pub struct Case {
    pub name: &'static str,
    pub spec: &'static str,
    pub profile: Option<&'static str>,
    pub asleep: bool,
    pub backend_traffic_policy: bool,
}

pub const CASES: &[Case] = &[
    Case {
        name: "minimal",
        spec: "minimal.toml",
        profile: None,
        asleep: false,
        backend_traffic_policy: false,
    },
    Case {
        name: "full_staging",
        spec: "full.toml",
        profile: Some("staging"),
        asleep: false,
        backend_traffic_policy: false,
    },
    Case {
        name: "full_staging_asleep",
        spec: "full.toml",
        profile: Some("staging"),
        asleep: true,
        backend_traffic_policy: false,
    },
    Case {
        name: "full_idle_timeout_policy",
        spec: "full.toml",
        profile: None,
        asleep: false,
        backend_traffic_policy: true,
    },
    Case {
        name: "profiles_prod",
        spec: "profiles.toml",
        profile: Some("prod"),
        asleep: false,
        backend_traffic_policy: false,
    },
    Case {
        name: "profiles_dev_asleep",
        spec: "profiles.toml",
        profile: Some("dev"),
        asleep: true,
        backend_traffic_policy: false,
    },
];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The input for a case, with literal ids so the output is stable.
pub fn input(case: &Case, workspace_id: i64, app_id: i64) -> RenderInput {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/tests/fixtures")
        .join(case.spec);
    let opts = Options {
        profile: case.profile.map(str::to_owned),
        ..Options::default()
    };
    let v = loco_spec::load(&path, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RenderInput {
        org_id: 3,
        workspace_id,
        app_id,
        deployment_id: 120,
        template_deployment_id: 120,
        revision_id: 340,
        image: format!(
            "registry.deploy-app.com/o3/{}:1.0.0@{DIGEST}",
            v.spec.app.name
        ),
        spec: v.spec,
        replicas: None,
        asleep: case.asleep,
        env: v.env_values,
        checksum_key: ChecksumKey(b"golden-checksum-key".to_vec()),
        pull_secret: Some(PullCredential {
            registry: "registry.deploy-app.com".into(),
            username: "loco-pull".into(),
            password: "golden-pull-password".into(),
        }),
        workspace_apps: vec![
            SiblingApp::rendered_by_loco(workspace_id, app_id + 1, "billing-api", 8000),
            SiblingApp::rendered_by_loco(workspace_id, app_id + 2, "auth", 9090),
        ],
        settings: RenderSettings {
            metrics_endpoint: "http://prometheus.loco-system.svc:9090".into(),
            tracing_endpoint: "http://otel-collector.loco-system.svc:4317".into(),
            loco_version: "0.1.0".into(),
            backend_traffic_policy: case.backend_traffic_policy,
            ..RenderSettings::default()
        },
    }
}
