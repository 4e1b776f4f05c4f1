//! The resurrector fails closed before it touches anything: no database, no cluster,
//! another resurrector holding the lock. Against the stack's Postgres (DATABASE_URL);
//! outside CI a missing database skips the lock test with a message.

use loco_resurrector::lock::ClusterLock;
use loco_resurrector::{Ctx, Error};

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("CI=true needs DATABASE_URL (eval \"$(tests/minikube/stack env)\")")
        }
        _ => {
            eprintln!("skipped: no DATABASE_URL (tests/minikube/stack up, then stack env)");
            None
        }
    }
}

#[tokio::test]
async fn an_unreachable_database_does_nothing_and_says_so() {
    let kek = loco_crypto::Kek::from_base64(
        &"A".repeat(43)
            .chars()
            .chain("=".chars())
            .collect::<String>(),
    )
    .expect("a 32-byte key");
    // Port 9 (discard) on loopback: nothing listens there.
    let e = Ctx::connect("postgres://loco:x@127.0.0.1:9/loco", kek, "prod")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Database(_)), "{e:?}");
    assert_eq!(e.exit_code(), 3);
    let text = e.to_string();
    assert!(text.contains("nothing was done"), "{text}");
    assert!(!text.contains("loco:x"), "the password never shows: {text}");
}

#[tokio::test]
async fn a_second_resurrector_is_refused_and_told_who_holds_the_cluster() {
    let Some(url) = database_url() else { return };
    // A cluster id no other test uses: the lock is by key, no row is needed.
    let id = 900_000 + i64::from(std::process::id() % 1000);
    let first = ClusterLock::take(&url, id, "prod")
        .await
        .expect("the first one gets it");
    let e = ClusterLock::take(&url, id, "prod").await.unwrap_err();
    assert_eq!(e.reason(), "cluster_locked");
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.contains("loco-resurrect pid"),
        "names the holder: {text}"
    );
    assert!(text.contains("nothing was done"), "{text}");
    // Released when the holder goes (a killed process closes its connection the same way).
    first.release().await;
    let again = ClusterLock::take(&url, id, "prod")
        .await
        .expect("free again");
    again.release().await;
}
