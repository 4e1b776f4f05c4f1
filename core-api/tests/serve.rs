//! `loco-api serve` as an operator runs it: the real binary against the test bed's
//! Postgres, its ops endpoints, graceful shutdown, and a clear error for a bad database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("DATABASE_URL is not set but CI=true: run eval \"$(tests/minikube/stack env)\"")
        }
        _ => {
            eprintln!("skipping: DATABASE_URL is not set (tests/minikube/stack up)");
            None
        }
    }
}

fn loco_api(args: &[&str], db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_loco-api"))
        .args(args)
        .env("DATABASE_URL", db)
        // serve refuses to start without the key-encryption key; a throwaway one.
        .env("LOCO_KEK", "v3mMBqKy+LwyIPO9L/pMNxIgv+jnRq4xYnVNkt8PD+k=")
        .env_remove("LOCO_KEK_FILE")
        .env("LOCO_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting loco-api")
}

/// Reads JSON log lines until the "listening" line and returns its address.
fn listening_addr(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("loco-api logged no listening address within 60 s")
}

#[tokio::test]
async fn serve_exposes_ops_endpoints_and_stops_on_sigterm() {
    let Some(db) = database_url() else { return };
    let mut child = loco_api(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shutdown-delay-seconds",
            "2",
        ],
        &db,
    );
    let addr = listening_addr(&mut child);
    let http = reqwest::Client::new();

    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "ready once migrations ran");
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("loco_build_info{service=\"loco-api\""),
        "{metrics}"
    );

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // The drain: not ready, but still answering, so a Service can let go of the pod first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let draining = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .expect("loco-api still answers while it drains");
    assert_eq!(draining.status(), 503, "not ready once SIGTERM arrived");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "loco-api ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn unreachable_database_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let out = Command::new(env!("CARGO_BIN_EXE_loco-api"))
        .args(["migrate"])
        .env(
            "DATABASE_URL",
            "postgres://loco:hunter2-secret@127.0.0.1:1/loco",
        )
        .env("LOCO_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to Postgres at 127.0.0.1:1/loco"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL"),
        "names the setting to fix: {stderr}"
    );
    assert!(
        !stderr.contains("hunter2-secret"),
        "password leaked: {stderr}"
    );
}
