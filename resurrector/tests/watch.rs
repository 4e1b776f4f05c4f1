//! `loco-resurrect --watch` on the test cluster, as a process run from the bundle alone:
//! a deleted Deployment is seen, after three failed probes an incident opens (webhook),
//! the automatic re-apply brings the Deployment back and the incident closes (webhook);
//! then the API server is cut off (a TCP proxy in front of it stops): the incident opens
//! with `api_server_unreachable`, nothing is acted on, and it closes when the proxy is
//! back. The cluster's health row follows every probe; /healthz and /metrics answer.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DeleteParams;
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use support::db_support::*;
use support::*;

/// Every (status, reason) the cluster's health row showed.
type Seen = Arc<Mutex<BTreeSet<(String, Option<String>)>>>;

/// A TCP proxy in front of the API server that the test can switch off: off, it refuses
/// new connections and drops open ones, as a dead API server does.
struct Proxy {
    port: u16,
    on: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (on, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !*rx.borrow() {
                    continue; // dropped: the connection is refused
                }
                let mut off = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut out) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = off.wait_for(|on| !*on) => {}
                    }
                });
            }
        });
        Proxy { port, on }
    }

    fn set(&self, on: bool) {
        self.on.send_replace(on);
    }
}

/// The webhook's receiver: every JSON body it gets, in order.
async fn webhook() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, rx)
}

/// The API server's address and the admin kubeconfig pointed at `proxy_port` instead.
fn proxied_kubeconfig(proxy_port: u16) -> (SocketAddr, String) {
    let path = std::env::var("KUBECONFIG").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let server = kc.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.server.clone())
        .expect("the admin kubeconfig names its server");
    let hostport = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let upstream: SocketAddr = hostport
        .parse()
        .unwrap_or_else(|e| panic!("the test's API server {server} is not ip:port: {e}"));
    let proxied = text.replace(&server, &format!("https://{}:{proxy_port}", upstream.ip()));
    (upstream, proxied)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of a counter or gauge in a /metrics text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics:\n{text}"))
}

/// The last lines of the watch's log, for failure messages.
fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The next webhook call, within 90 s.
async fn next(
    events: &mut mpsc::UnboundedReceiver<serde_json::Value>,
    log: &std::path::Path,
    what: &str,
) -> serde_json::Value {
    match tokio::time::timeout(Duration::from_secs(90), events.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("no webhook call for {what}:\n{}", tail(log)),
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_watch_repairs_drift_and_never_acts_on_an_unreachable_api_server(pool: PgPool) {
    let Some((t, ctx)) = setup(&pool, "resurrect-watch").await else {
        return;
    };
    let admin = apply_support::admin_client().await.unwrap();
    let a = deployed_app(&pool, &t, "alpha", "one").await;
    let b = deployed_app(&pool, &t, "beta", "two").await;
    let names: Vec<String> = [a, b]
        .iter()
        .map(|id| loco_render::namespace_name(t.workspace, *id))
        .collect();
    // The apps are up before the watch starts (the guard is forced: the shared test
    // cluster holds other tests' app namespaces).
    let (_, r) = once(&ctx, &["--force"]).await;
    assert_eq!(r.apps_ready, 2, "{r:?}");

    // The watch reaches the cluster through the proxy: its installer credential says so.
    let (upstream, _) = proxied_kubeconfig(0);
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = proxied_kubeconfig(proxy.port);
    let installer =
        loco_db::kubeconfig::InlineKubeconfig::parse(loco_crypto::Secret::new(proxied)).unwrap();
    loco_db::clusters::set_installer_credentials(&pool, &kek(), t.cluster, &installer)
        .await
        .unwrap();

    let (hook, mut events) = webhook().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loco-resurrect"))
        .args(["--cluster", "resurrect-watch-cluster", "--watch"])
        .args(["--interval", "1s", "--failures-before-action", "3"])
        .args(["--force", "--no-chart", "--ready-deadline-seconds", "60"])
        .args(["--listen", &listen, "--webhook-url", &hook])
        .env_clear()
        .env("DATABASE_URL", database_url(&pool).await)
        .env("LOCO_KEK", base64_of(&KEY))
        .env("LOCO_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log_tail = || tail(log.path());

    // Every health the cluster's row shows while the watch runs.
    let seen: Seen = Arc::default();
    let poller = {
        let (pool, seen, id) = (pool.clone(), seen.clone(), t.cluster);
        tokio::spawn(async move {
            loop {
                let row: (String, Option<String>) =
                    sqlx::query_as("SELECT status, status_reason FROM clusters WHERE id = $1")
                        .bind(id)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                seen.lock().unwrap().insert(row);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("http://{listen}{path}"));
        async move {
            let r = http.get(&url).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.text().await.ok()?))
        }
    };
    let healthy_row = |seen: &Seen| {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(s, _)| s.as_str() == "healthy")
    };
    // Up: /healthz answers and a first probe found the cluster healthy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let up = matches!(get("/healthz").await, Some((200, _)));
        if up && healthy_row(&seen) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch did not come up healthy: {:?}\n{}",
            seen.lock().unwrap(),
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen.lock().unwrap().clear();
    // Drift: alpha's Deployment is deleted by hand. Three failed probes, then the
    // incident and the re-apply; the Deployment is back and the incident closes.
    let deps: Api<Deployment> = Api::namespaced(admin.clone(), &names[0]);
    deps.delete("app", &DeleteParams::default()).await.unwrap();
    let opened = next(&mut events, log.path(), "the drift incident opening").await;
    assert_eq!(opened["event"], "incident_opened", "{opened}");
    assert_eq!(opened["reason"], "apps_drifted", "{opened}");
    assert_eq!(opened["cluster"], "resurrect-watch-cluster");
    let closed = next(&mut events, log.path(), "the drift incident closing").await;
    assert_eq!(closed["event"], "incident_closed", "{closed}");
    assert!(
        deps.get_opt("app").await.unwrap().is_some(),
        "the re-apply brought alpha's Deployment back"
    );
    let (status, text) = get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "loco_resurrect_incidents_total"), 1.0);
    assert!(metric(&text, "loco_resurrect_probe_failures_total") >= 3.0);
    let restored = metric(&text, "loco_resurrect_apps_restored_total");
    assert_eq!(restored, 1.0, "only alpha was re-applied:\n{text}");
    assert!(metric(&text, "loco_resurrect_time_to_detect_seconds") > 0.0);
    assert!(metric(&text, "loco_resurrect_time_to_recover_seconds") > 0.0);
    {
        let s = seen.lock().unwrap();
        assert!(
            s.contains(&("degraded".to_owned(), Some("apps_drifted".to_owned()))),
            "the health row showed the drift: {s:?}"
        );
        assert!(
            s.iter().any(|(x, _)| x == "healthy"),
            "and healthy again: {s:?}"
        );
    }
    seen.lock().unwrap().clear();

    // The API server goes away (the proxy stops): seen, reported, never acted on.
    proxy.set(false);
    let opened = next(&mut events, log.path(), "the unreachable incident opening").await;
    assert_eq!(opened["event"], "incident_opened", "{opened}");
    assert_eq!(opened["reason"], "api_server_unreachable", "{opened}");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(s, _)| s.as_str() == "unreachable"),
        "the health row says unreachable: {:?}",
        seen.lock().unwrap()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(true);
    let closed = next(&mut events, log.path(), "the unreachable incident closing").await;
    assert_eq!(closed["event"], "incident_closed", "{closed}");
    let (_, text) = get("/metrics").await.expect("/metrics answers");
    assert_eq!(metric(&text, "loco_resurrect_incidents_total"), 2.0);
    assert_eq!(
        metric(&text, "loco_resurrect_apps_restored_total"),
        restored,
        "nothing was re-applied while the API server was away"
    );

    // SIGTERM ends the watch cleanly.
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the watch stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{}", log_tail());
    poller.abort();
    let row: (String,) = sqlx::query_as("SELECT status FROM clusters WHERE id = $1")
        .bind(t.cluster)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.0, "healthy");
    delete_namespaces(&admin, &names).await;
}
