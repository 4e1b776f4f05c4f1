//! The registry client as an attacker who may deploy would use it: hostile stand-in
//! registries on loopback ports (the only addresses these tests aim at) that point the
//! token realm elsewhere, ask for Basic credentials or redirect, and references to local
//! ports that are not registries. Asserts that the platform's login never leaves the
//! platform's registry, that nothing is connected to before the allowlist and the
//! address filter agree, and that users get one sentence for every failure.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loco_crypto::Secret;
use loco_deploy::image::ImageRef;
use loco_deploy::registry::{RegistryClient, RegistryConfig, RegistryError, Unresolved};

/// What a stand-in saw: path and Authorization header of every request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Starts a stand-in on 127.0.0.1 answering every request with `answer(path)`.
async fn standin(
    answer: impl Fn(&str) -> Response + Clone + Send + Sync + 'static,
) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(move |req: Request| {
        let (s, answer) = (s.clone(), answer.clone());
        async move {
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            let path = req.uri().path().to_owned();
            s.lock().unwrap().push((path.clone(), auth));
            answer(&path)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), seen)
}

fn challenge(value: String) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::WWW_AUTHENTICATE, value.parse().unwrap());
    (StatusCode::UNAUTHORIZED, h).into_response()
}

const PASSWORD: &str = "platform-pull-password";

/// A configuration whose platform registry is `platform`, with its login, and where
/// every host in `local` is a test host (plain HTTP, loopback allowed).
fn config(platform: &str, local: &[&str]) -> RegistryConfig {
    let local: BTreeSet<String> = local.iter().map(|s| s.to_string()).collect();
    RegistryConfig {
        default_registry: platform.to_owned(),
        allowed: BTreeSet::new(),
        insecure: local.clone(),
        private_ok: local,
        login: Some(("loco-pull".into(), Secret::new(PASSWORD))),
        ..RegistryConfig::default()
    }
}

fn image(registry: &str) -> ImageRef {
    ImageRef::parse(&format!("{registry}/team/app:v1"), "unused.example").unwrap()
}

fn carried_credentials(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|(_, a)| a.clone())
        .collect()
}

fn why(e: &RegistryError) -> Unresolved {
    match e {
        RegistryError::Unresolvable { why, .. } => *why,
        other => panic!("expected an unresolvable image, got {other:?}"),
    }
}

#[tokio::test]
async fn the_platform_login_is_never_sent_to_a_realm_on_another_host() {
    let (collector, seen) = standin(|_| StatusCode::OK.into_response()).await;
    let realm = format!("http://{collector}/token");
    let (registry, _) = standin(move |_| {
        challenge(format!(
            r#"Bearer realm="{realm}",service="x",scope="repository:team/app:pull""#
        ))
    })
    .await;

    // The hostile host is the platform's registry itself: its realm is not an auth host.
    let client = RegistryClient::new(config(&registry, &[&registry, &collector]));
    let e = client.resolve(&image(&registry)).await.unwrap_err();
    assert_eq!(why(&e), Unresolved::NotAllowed, "{e:?}");
    assert_eq!(
        seen.lock().unwrap().len(),
        0,
        "the realm on another port was contacted"
    );

    // An allowed public registry whose realm is an allowed auth host: asked anonymously.
    let mut c = config("registry.platform.example", &[&registry, &collector]);
    c.allowed.insert(registry.clone());
    c.auth_hosts.insert(collector.clone());
    let e = RegistryClient::new(c)
        .resolve(&image(&registry))
        .await
        .unwrap_err();
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the auth host is asked once: {e:?}"
    );
    assert_eq!(
        carried_credentials(&seen),
        Vec::<String>::new(),
        "a credential reached a host that is not the platform's"
    );
}

#[tokio::test]
async fn a_basic_challenge_from_another_registry_gets_no_login() {
    let (registry, seen) = standin(|_| challenge(r#"Basic realm="x""#.into())).await;
    let mut c = config("registry.platform.example", &[&registry]);
    c.allowed.insert(registry.clone());
    let e = RegistryClient::new(c)
        .resolve(&image(&registry))
        .await
        .unwrap_err();
    assert_eq!(why(&e), Unresolved::NotFound, "{e:?}");
    assert!(carried_credentials(&seen).is_empty(), "{:?}", seen.lock());

    // The platform's own registry does get its login on a Basic challenge.
    let (platform, seen) = standin(|_| challenge(r#"Basic realm="x""#.into())).await;
    let _ = RegistryClient::new(config(&platform, &[&platform]))
        .resolve(&image(&platform))
        .await;
    assert_eq!(carried_credentials(&seen).len(), 1);
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed() {
    let (elsewhere, seen) = standin(|_| StatusCode::OK.into_response()).await;
    let target = format!("http://{elsewhere}/v2/team/app/manifests/v1");
    let (registry, _) = standin(move |_| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, target.clone())],
        )
            .into_response()
    })
    .await;
    let e = RegistryClient::new(config(&registry, &[&registry, &elsewhere]))
        .resolve(&image(&registry))
        .await
        .unwrap_err();
    assert_eq!(why(&e), Unresolved::Unreachable, "{e:?}");
    assert!(seen.lock().unwrap().is_empty(), "the redirect was followed");
}

/// A listening port that is not a registry (stands in for Postgres' or the API server's
/// port on 127.0.0.1): nothing may connect to it.
fn internal_port() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn assert_never_connected(l: &std::net::TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{what}: something connected to the internal port: {other:?}"),
    }
}

#[tokio::test]
async fn local_ports_are_refused_before_any_connection() {
    let port = internal_port();
    let local = port.local_addr().unwrap().to_string();
    let named = format!("localhost:{}", port.local_addr().unwrap().port());
    let env_ports = ["LOCO_STACK_POSTGRES_PORT", "LOCO_STACK_APISERVER_PORT"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|p| format!("127.0.0.1:{p}"));

    // Not on the allowlist at all.
    let client = RegistryClient::new(RegistryConfig {
        insecure: BTreeSet::from([local.clone()]),
        ..RegistryConfig::default()
    });
    for r in [local.clone(), named.clone()].into_iter().chain(env_ports) {
        let e = client.resolve(&image(&r)).await.unwrap_err();
        assert_eq!(why(&e), Unresolved::NotAllowed, "{r}: {e:?}");
    }
    assert_never_connected(&port, "not allowlisted");

    // Allowlisted (an operator's mistake), but loopback is not configured as allowed:
    // the address filter refuses the literal and the name alike.
    let client = RegistryClient::new(RegistryConfig {
        allowed: BTreeSet::from([local.clone(), named.clone()]),
        insecure: BTreeSet::from([local.clone(), named.clone()]),
        ..RegistryConfig::default()
    });
    for r in [&local, &named] {
        let e = client.resolve(&image(r)).await.unwrap_err();
        assert!(
            matches!(e, RegistryError::Unresolvable { .. }),
            "{r}: {e:?}"
        );
    }
    assert_never_connected(&port, "allowlisted, loopback not allowed");
}

#[tokio::test]
async fn not_allowed_not_found_and_unreachable_read_the_same() {
    let (registry, _) = standin(|_| StatusCode::NOT_FOUND.into_response()).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut c = config(&registry, &[&registry, &closed]);
    c.allowed.insert(closed.clone());
    let client = RegistryClient::new(c);
    let mut texts = BTreeSet::new();
    for (r, expect) in [
        (registry.as_str(), Unresolved::NotFound),
        (closed.as_str(), Unresolved::Unreachable),
        ("10.0.0.1:5432", Unresolved::NotAllowed),
        ("169.254.169.254", Unresolved::NotAllowed),
    ] {
        let e = client.resolve(&image(r)).await.unwrap_err();
        assert_eq!(why(&e), expect, "{r}: {e:?}");
        assert_eq!(e.reason(), "image_unresolvable");
        texts.insert(e.to_string().replace(r, "R"));
    }
    assert_eq!(texts.len(), 1, "users can tell the cases apart: {texts:#?}");
}
