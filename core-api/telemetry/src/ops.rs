//! The operational HTTP surface every loco process serves: `/metrics`, `/healthz`,
//! `/readyz`, and graceful shutdown on SIGTERM or Ctrl-C (with a drain: not ready first,
//! still serving, so a Service's endpoints forget the pod before it stops answering).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Metrics;

/// Whether the process is ready to serve (dependencies reachable, start-up done).
/// Liveness (`/healthz`) is separate: a process that is up but not ready stays alive.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug)]
struct OpsState {
    metrics: Metrics,
    ready: Readiness,
}

/// `/metrics`, `/healthz` and `/readyz`, to merge into a binary's router.
pub fn router(metrics: Metrics, ready: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(OpsState { metrics, ready })
}

async fn metrics_handler(State(s): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<OpsState>) -> impl IntoResponse {
    if s.ready.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Errors of the ops server.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(
        "cannot listen on {addr}: {source}. Is another process using the port? Choose another with --listen."
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

impl OpsError {
    /// Stable name for metric labels and event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            OpsError::Bind { .. } => "listen_failed",
            OpsError::Serve(_) => "serve_failed",
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and returns the listener with its real address.
pub async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), OpsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| OpsError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves `app` until `shutdown` resolves, finishing in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), OpsError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(OpsError::Serve)
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight work");
}

/// Resolves `delay` after `signal`: at the signal `/readyz` turns 503 while the server
/// keeps answering, so Kubernetes takes the pod out of its Service's endpoints (and every
/// node's proxy rules) before the listener closes. Without it a rolling update leaves a
/// window in which a Service still sends connections to a pod that no longer accepts them.
pub async fn drain(
    signal: impl std::future::Future<Output = ()>,
    ready: Readiness,
    delay: Duration,
) {
    signal.await;
    ready.set(false);
    tracing::info!(
        delay_seconds = delay.as_secs_f64(),
        "not ready; serving on while the Service's endpoints drop this pod"
    );
    tokio::time::sleep(delay).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn a_draining_server_answers_not_ready_until_the_delay_ends() {
        let ready = Readiness::default();
        ready.set(true);
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let app = router(Metrics::new("test"), ready.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let _ = rx.await;
        };
        let delay = Duration::from_millis(800);
        let server = tokio::spawn(serve(listener, app, drain(signal, ready.clone(), delay)));
        assert!(
            get(addr, "/readyz")
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        let stopped_at = std::time::Instant::now();
        tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let during = get(addr, "/readyz")
            .await
            .expect("still answering while draining");
        assert!(during.starts_with("HTTP/1.1 503"), "{during}");
        assert!(
            get(addr, "/healthz")
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        server.await.unwrap().unwrap();
        assert!(
            stopped_at.elapsed() >= delay,
            "stopped before the drain delay"
        );
        assert!(
            get(addr, "/readyz").await.is_err(),
            "still listening after the drain"
        );
    }
}
