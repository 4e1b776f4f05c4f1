//! `loco-api clusters add|list|set-pull-credential`: a kubeconfig is stored sealed (its
//! token appears nowhere in the row), read back the way the deploy workers read it, and
//! every bad input is refused with the next step, writing nothing and quoting no secret.

#[path = "../testsupport/apply_support/mod.rs"]
mod apply_support;
#[path = "../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::database_url;
use std::io::Write;
use std::path::Path;

use loco_api::clusters::{NewCluster, add};
use loco_crypto::Kek;
use loco_db::clusters;
use loco_deploy::cluster::ClusterClients;
use sqlx::PgPool;

fn canary() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    format!("kubeconfig-canary-{}", hex::encode(bytes))
}

/// A kubeconfig with a bearer token and inline CA data for `server`.
fn kubeconfig(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         users:\n- name: u\n  user:\n    token: {token}\n\
         contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    )
}

fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn new<'a>(name: &'a str, path: &'a Path) -> NewCluster<'a> {
    NewCluster {
        region: "hetzner/fsn1",
        name,
        endpoint: None,
        kubeconfig: path,
        check: false,
    }
}

async fn cluster_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM clusters")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_kubeconfig_is_stored_sealed_and_reads_back_as_the_deploy_workers_read_it(
    pool: PgPool,
) {
    let kek = Kek::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = canary();
    let text = kubeconfig("https://127.0.0.1:6443", &secret);
    let path = file(dir.path(), "kubeconfig", &text);

    let c = add(&pool, &kek, &new("fsn1-a", &path)).await.unwrap();
    assert_eq!(
        (
            c.provider.as_str(),
            c.region.as_str(),
            c.name.as_str(),
            c.endpoint.as_str(),
            c.status.as_str()
        ),
        (
            "hetzner",
            "fsn1",
            "fsn1-a",
            "https://127.0.0.1:6443",
            "unknown"
        ),
        "the endpoint defaults to the kubeconfig's server"
    );

    // Every column of the row, text as text and bytea as raw bytes and as hex.
    let row: String = sqlx::query_scalar("SELECT c::text FROM clusters c")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!row.contains(&secret) && !row.contains(&hex::encode(&secret)));
    assert!(!row.contains("kubeconfig-canary"));
    let ciphertext: Vec<u8> = sqlx::query_scalar("SELECT credentials_ciphertext FROM clusters")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !ciphertext
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );

    assert_eq!(
        clusters::credentials(&pool, &kek, c.id)
            .await
            .unwrap()
            .expose(),
        text
    );
    ClusterClients::default()
        .get(&pool, &kek, c.id)
        .await
        .expect("the deploy workers build a client from what was stored");

    // A second cluster in the same region reuses the region; a given endpoint is kept.
    let d = add(
        &pool,
        &kek,
        &NewCluster {
            endpoint: Some("https://fsn1-b.example.com:6443"),
            ..new("fsn1-b", &path)
        },
    )
    .await
    .unwrap();
    assert_eq!(d.region_id, c.region_id);
    assert_eq!(d.endpoint, "https://fsn1-b.example.com:6443");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn bad_input_is_refused_with_a_next_step_and_nothing_stored(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = canary();
    let good = file(
        dir.path(),
        "good",
        &kubeconfig("https://127.0.0.1:6443", &secret),
    );
    add(&pool, &kek, &new("taken", &good)).await.unwrap();

    let missing = dir.path().join("missing");
    let not_yaml = file(dir.path(), "not-yaml", &format!("{secret}: [unclosed\n\t:"));
    // A string where a list belongs: parsers quote the offending value.
    let wrong_shape = file(
        dir.path(),
        "wrong-shape",
        &format!("apiVersion: v1\nkind: Config\nusers: \"{secret}\"\n"),
    );
    let no_context = file(dir.path(), "no-context", "apiVersion: v1\nkind: Config\n");
    let with_files = file(
        dir.path(),
        "with-files",
        &kubeconfig("https://127.0.0.1:6443", &secret).replace(
            "server: https",
            "certificate-authority: /etc/kubernetes/ca.crt\n    server: https",
        ),
    );
    let plain_http = file(
        dir.path(),
        "http",
        &kubeconfig("http://127.0.0.1:8080", &secret),
    );
    let cases: Vec<(NewCluster<'_>, &[&str])> = vec![
        (
            new("a", &missing),
            &["cannot read the kubeconfig file", "--kubeconfig"],
        ),
        (
            new("a", dir.path()),
            &["cannot read the kubeconfig file", "--kubeconfig"],
        ),
        (
            new("a", &not_yaml),
            &["not a usable kubeconfig", "kubectl config view --raw"],
        ),
        (new("a", &wrong_shape), &["not a usable kubeconfig"]),
        (new("a", &no_context), &["not a usable kubeconfig"]),
        (
            new("a", &with_files),
            &["certificate-authority", "inline the certificates"],
        ),
        (new("a", &plain_http), &["not an https:// URL"]),
        (
            new("taken", &good),
            &["already exists", "clusters list", "--name"],
        ),
        (
            new("Bad_Name", &good),
            &["--name", "not a valid cluster name"],
        ),
        (
            NewCluster {
                region: "fsn1",
                ..new("a", &good)
            },
            &["--region \"fsn1\" is not PROVIDER/NAME", "hetzner/fsn1"],
        ),
        (
            NewCluster {
                region: "Hetzner/FSN1",
                ..new("a", &good)
            },
            &["PROVIDER/NAME"],
        ),
        (
            NewCluster {
                endpoint: Some("http://127.0.0.1:6443"),
                ..new("a", &good)
            },
            &["not an https:// URL", "--endpoint"],
        ),
    ];
    for (req, says) in cases {
        let err = format!("{:#}", add(&pool, &kek, &req).await.unwrap_err());
        for s in says {
            assert!(err.contains(s), "{req:?}: expected {s:?} in: {err}");
        }
        assert!(
            !err.contains(&secret),
            "{req:?}: the error quotes the kubeconfig: {err}"
        );
    }
    let other_kek = Kek::generate().unwrap();
    let err = add(&pool, &other_kek, &new("a", &good))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(other_kek.id()) && err.contains(kek.id()) && err.contains("LOCO_KEK_FILE"),
        "a cluster sealed under another KEK than the stored data keys is refused: {err}"
    );
    assert_eq!(
        cluster_count(&pool).await,
        1,
        "a refused add stores nothing"
    );
    let regions: i64 = sqlx::query_scalar("SELECT count(*) FROM regions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(regions, 1);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_check_refuses_a_kubeconfig_that_does_not_reach_its_cluster(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let path = file(
        dir.path(),
        "kubeconfig",
        &kubeconfig("https://127.0.0.1:1", &canary()),
    );
    let err = add(
        &pool,
        &kek,
        &NewCluster {
            check: true,
            ..new("gone", &path)
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not reach the cluster at https://127.0.0.1:1")
            && err.contains("--skip-check"),
        "{err}"
    );
    assert_eq!(cluster_count(&pool).await, 0);
}

/// The demo's path: loco-api's own ServiceAccount token on the test cluster passes the check.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn loco_apis_service_account_kubeconfig_passes_the_check(pool: PgPool) {
    if apply_support::admin_client().await.is_none() {
        return;
    }
    let kek = Kek::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = apply_support::loco_api_token().await;
    let path = file(
        dir.path(),
        "kubeconfig",
        &apply_support::kubeconfig_yaml_for(&token),
    );
    let c = add(
        &pool,
        &kek,
        &NewCluster {
            check: true,
            ..new("test-bed", &path)
        },
    )
    .await
    .unwrap();
    assert!(
        c.endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        c.endpoint
    );
    // A token the API server does not know fails the check.
    let forged = file(
        dir.path(),
        "forged",
        &apply_support::kubeconfig_yaml_for("not-a-real-token"),
    );
    let err = add(
        &pool,
        &kek,
        &NewCluster {
            check: true,
            ..new("forged", &forged)
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not reach the cluster"), "{err}");
    assert!(!err.contains("not-a-real-token"), "{err}");
}

fn loco_api(url: &str, kek_file: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loco-api"));
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("LOCO_LOG_FORMAT", "text")
        .env_remove("LOCO_KEK")
        .env_remove("LOCO_OUTPUT")
        .env_remove("LOCO_KEK_FILE");
    if let Some(k) = kek_file {
        cmd.env("LOCO_KEK_FILE", k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_commands_add_list_and_store_a_pull_login_without_printing_secrets(pool: PgPool) {
    let url = database_url(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = canary();
    let kc = file(
        dir.path(),
        "kubeconfig",
        &kubeconfig("https://127.0.0.1:6443", &secret),
    );
    let kek_bytes = [7u8; 32];
    let kek_file = file(
        dir.path(),
        "kek",
        &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, kek_bytes),
    );
    let kc = kc.to_str().unwrap();
    let add_args = [
        "clusters",
        "add",
        "--region",
        "local/test-bed",
        "--name",
        "local",
        "--kubeconfig",
        kc,
        "--skip-check",
    ];

    let (code, _, stderr) = loco_api(&url, None, &add_args);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("needs the key-encryption key") && stderr.contains("LOCO_KEK_FILE"),
        "{stderr}"
    );

    let (code, stdout, stderr) = loco_api(
        &url,
        Some(&kek_file),
        &[&add_args[..], &["--output", "json"]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    let added: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(added["name"], "local");
    assert_eq!(added["region"], "local/test-bed");
    assert_eq!(added["status"], "unknown");

    let (code, _, stderr) = loco_api(&url, Some(&kek_file), &add_args);
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists"), "{stderr}");

    let (code, stdout, stderr) = loco_api(&url, None, &["clusters", "list", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], added["id"]);
    assert_eq!(list[0]["endpoint"], "https://127.0.0.1:6443");
    let (code, text, _) = loco_api(&url, None, &["clusters", "list"]);
    assert_eq!(code, 0);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("local/test-bed")
                && l.contains("https://127.0.0.1:6443")
                && l.ends_with("unknown")),
        "{text}"
    );

    let password = canary();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loco-api"));
    let out = cmd
        .args([
            "clusters",
            "set-pull-credential",
            "--cluster",
            "local",
            "--registry",
            "127.0.0.1:25000",
            "--username",
            "puller",
        ])
        .env("DATABASE_URL", &url)
        .env("LOCO_KEK_FILE", &kek_file)
        .env("LOCO_PULL_PASSWORD", &password)
        .env("LOCO_LOG_FORMAT", "text")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(&password), "{all}");
    let kek = Kek::from_bytes(kek_bytes);
    let id = added["id"].as_i64().unwrap();
    let pull = clusters::pull_credential(&pool, &kek, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            pull.registry.as_str(),
            pull.username.as_str(),
            pull.password.expose()
        ),
        ("127.0.0.1:25000", "puller", password.as_str())
    );

    for (_, out, err) in [
        loco_api(&url, Some(&kek_file), &add_args),
        loco_api(&url, None, &["clusters", "list"]),
    ] {
        assert!(
            !out.contains(&secret) && !err.contains(&secret),
            "{out}{err}"
        );
    }
}
