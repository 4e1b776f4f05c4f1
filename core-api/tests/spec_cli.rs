//! `loco-api spec validate` as a user runs it: exit codes, and output compared with golden
//! files under core-api/spec/tests/fixtures/. Regenerate the golden files after an intended change
//! with `LOCO_BLESS=1 cargo test -p loco-api --test spec_cli`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use loco_spec::ResolvedSpec;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/tests/fixtures")
}

/// Runs in the fixtures directory so file names in messages are stable.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loco-api"))
        .current_dir(fixtures())
        .env_remove("LOCO_PROFILE")
        .env_remove("LOCO_OUTPUT")
        .env_remove("LOCO_MAX_REPLICAS")
        .env_remove("LOCO_BASE_DOMAIN")
        .env_remove("LOCO_DEFAULT_REGION")
        .env("LOCO_LOG_FORMAT", "text")
        .args(args)
        .output()
        .expect("run loco-api")
}

fn golden(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("LOCO_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the output:\n{actual}\nRegenerate with LOCO_BLESS=1 cargo test -p loco-api --test spec_cli if the change is intended.",
        path.display()
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn valid_file_prints_a_summary_and_exits_0() {
    let out = run(&["spec", "validate", "minimal.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("minimal.toml is valid"), "{stdout}");
    assert!(stdout.contains("https://hello.deploy-app.com/"));
}

#[test]
fn json_output_is_the_resolved_spec() {
    let out = run(&[
        "spec",
        "validate",
        "full.toml",
        "--profile",
        "staging",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let spec: ResolvedSpec = serde_json::from_str(&stdout).expect("resolved spec JSON");
    assert_eq!(spec.profile.as_deref(), Some("staging"));
    golden("full.staging.resolved.json", &stdout);
}

#[test]
fn invalid_file_lists_every_error_and_exits_1() {
    let out = run(&["spec", "validate", "invalid_many.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("secret-value-never-printed"));
    golden("invalid_many.errors.txt", &stderr);
}

#[test]
fn invalid_file_as_json_exits_1() {
    let out = run(&["spec", "validate", "custom_domain.toml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON errors");
    let e = &v["errors"][0];
    assert_eq!(e["code"], "custom_domain_withdrawn");
    assert_eq!(e["line"], 9);
    assert_eq!(e["column"], 8);
    assert_eq!(e["path"], "DomainConfig.Type");
}

#[test]
fn unknown_profile_exits_1() {
    let out = run(&["spec", "validate", "profiles.toml", "--profile", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("profile \"staging\" is not defined"));
}

#[test]
fn unreadable_file_and_bad_usage_exit_2() {
    let out = run(&["spec", "validate", "does-not-exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read does-not-exist.toml"));
    let out = run(&["spec", "validate", "minimal.toml", "--output", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}
