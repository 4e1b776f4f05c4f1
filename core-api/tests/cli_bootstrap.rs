//! `loco-api bootstrap`: the first user, org and admin token without a login or SQL.
//! Run twice it reuses what exists; its token works against the API; bad input is
//! refused before anything is written.

#[path = "../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../testsupport/db_support/mod.rs"]
mod db_support;

use api_support::{get, router};
use axum::http::StatusCode;
use db_support::database_url;
use loco_api::bootstrap::{Bootstrap, bootstrap};
use loco_api::tokens::TokenOptions;
use loco_db::orgs::{self, Provider, Role};
use sqlx::PgPool;

fn request<'a>(org: &'a str, uid: &'a str, scopes: &'a [String]) -> Bootstrap<'a> {
    Bootstrap {
        provider: Provider::Github,
        login: "octo",
        provider_uid: uid,
        org,
        token: TokenOptions {
            name: "bootstrap",
            scopes,
            ttl: "1h",
        },
    }
}

fn admin() -> Vec<String> {
    vec!["admin".to_string()]
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn reasons(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT reason FROM events ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn bootstrap_twice_reuses_user_and_org_and_both_tokens_work(pool: PgPool) {
    let scopes = admin();
    let first = bootstrap(&pool, &request("acme", "1001", &scopes))
        .await
        .unwrap();
    assert!(first.user_created && first.org_created && first.owner_added);
    let second = bootstrap(&pool, &request("acme", "1001", &scopes))
        .await
        .unwrap();
    assert_eq!(
        (second.user_id, second.org_id),
        (first.user_id, first.org_id)
    );
    assert!(!second.user_created && !second.org_created && !second.owner_added);
    assert_ne!(*first.token.plaintext, *second.token.plaintext);
    assert_ne!(first.token.id, second.token.id);

    assert_eq!(count(&pool, "SELECT count(*) FROM users").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM orgs").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM memberships").await, 1);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_tokens WHERE scopes = '{admin}'"
        )
        .await,
        2
    );
    assert_eq!(
        reasons(&pool).await,
        [
            "org_created",
            "api_token_created",
            "bootstrapped",
            "api_token_created",
            "bootstrapped"
        ]
    );
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT actor FROM events WHERE reason <> 'org_created'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actors, ["system:loco-api-bootstrap"]);

    let app = router(&pool);
    for token in [&first.token.plaintext, &second.token.plaintext] {
        let r = get(&app, "/v1/orgs", token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["orgs"][0]["name"], "acme", "{}", r.text);
        assert_eq!(r.json["orgs"][0]["role"], "owner", "{}", r.text);
        let members = get(&app, &format!("/v1/orgs/{}/members", first.org_id), token).await;
        assert_eq!(members.status, StatusCode::OK, "{}", members.text);
        assert_eq!(members.json["members"][0]["login"], "octo");
    }
    // An admin-scoped owner may create a workspace: with no cluster registered yet the
    // API says so (422 on region_id), not that the token lacks the right (403).
    let r = api_support::call(
        &app,
        axum::http::Method::POST,
        &format!("/v1/orgs/{}/workspaces", first.org_id),
        Some(&second.token.plaintext),
        Some(serde_json::json!({"name": "default", "region_id": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.json["message"].as_str().unwrap().contains("region_id"),
        "{}",
        r.text
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_existing_user_keeps_their_login_and_becomes_owner_of_an_existing_org(pool: PgPool) {
    let user = orgs::upsert_user(
        &pool,
        Provider::Github,
        "1001",
        "octo-renamed",
        Some("octo@example.com"),
    )
    .await
    .unwrap();
    let other = orgs::upsert_user(&pool, Provider::Github, "2002", "hubot", None)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let org = orgs::create_org(&mut tx, "acme", other).await.unwrap();
    tx.commit().await.unwrap();
    orgs::add_member(&pool, org, user, Role::Viewer)
        .await
        .unwrap();

    let scopes = admin();
    let done = bootstrap(&pool, &request("acme", "1001", &scopes))
        .await
        .unwrap();
    assert_eq!((done.user_id, done.org_id), (user, org));
    assert!(!done.user_created && !done.org_created && done.owner_added);
    assert_eq!(done.kept_login.as_deref(), Some("octo-renamed"));
    let stored = orgs::get_user(&pool, user).await.unwrap();
    assert_eq!(
        (stored.login.as_str(), stored.email.as_deref()),
        ("octo-renamed", Some("octo@example.com")),
        "bootstrap does not overwrite what a sign-in stored"
    );
    assert_eq!(
        orgs::role_of(&pool, org, user).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        orgs::role_of(&pool, org, other).await.unwrap(),
        Some(Role::Owner),
        "the org's other owner stays"
    );
    let message: String =
        sqlx::query_scalar("SELECT message FROM events WHERE reason = 'bootstrapped'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        message.contains("reused") && message.contains("user made owner"),
        "{message}"
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn bad_input_is_refused_with_the_flag_named_and_nothing_written(pool: PgPool) {
    let scopes = admin();
    let good = request("acme", "1001", &scopes);
    let cases: Vec<(Bootstrap<'_>, &str)> = vec![
        (request("Acme Corp", "1001", &scopes), "--org"),
        (request("-acme", "1001", &scopes), "--org"),
        (request("acme", "octo", &scopes), "not a GitHub user id"),
        (request("acme", "", &scopes), "--provider-uid"),
        (
            Bootstrap {
                login: "two words",
                ..good
            },
            "--login",
        ),
        (Bootstrap { login: "", ..good }, "--login"),
        (
            Bootstrap {
                token: TokenOptions {
                    ttl: "5w",
                    ..good.token
                },
                ..good
            },
            "--ttl",
        ),
        (
            Bootstrap {
                token: TokenOptions {
                    ttl: "400d",
                    ..good.token
                },
                ..good
            },
            "365d",
        ),
        (
            Bootstrap {
                token: TokenOptions {
                    name: "",
                    ..good.token
                },
                ..good
            },
            "--token-name",
        ),
    ];
    for (req, says) in cases {
        let err = bootstrap(&pool, &req).await.unwrap_err().to_string();
        assert!(err.contains(says), "{req:?}: {err}");
    }
    // Google's ids are not numbers-only; any non-blank id is taken.
    let google = Bootstrap {
        provider: Provider::Google,
        login: "ada@example.com",
        provider_uid: "g-118",
        ..good
    };
    for sql in [
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM orgs",
        "SELECT count(*) FROM memberships",
        "SELECT count(*) FROM api_tokens",
        "SELECT count(*) FROM events",
    ] {
        assert_eq!(
            count(&pool, sql).await,
            0,
            "{sql}: written by a refused bootstrap"
        );
    }
    let done = bootstrap(&pool, &google).await.unwrap();
    assert!(done.user_created);
}

fn loco_api(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loco-api"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("LOCO_LOG_FORMAT", "text")
        .env_remove("LOCO_OUTPUT")
        .env_remove("LOCO_TOKEN_TTL")
        .env_remove("LOCO_TOKEN_NAME")
        .output()
        .unwrap()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_command_prints_the_token_once_on_stdout_or_ids_and_token_as_json(pool: PgPool) {
    let url = database_url(&pool).await;
    let args = [
        "bootstrap",
        "--provider",
        "github",
        "--login",
        "octo",
        "--provider-uid",
        "1001",
        "--org",
        "acme",
    ];
    let out = loco_api(&url, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let token = stdout.trim();
    assert!(
        token.starts_with("loco_") && token.len() == 69 && stdout.lines().count() == 1,
        "stdout is the token alone: {stdout:?}"
    );
    assert!(
        !stderr.contains(token),
        "the token is printed once: {stderr}"
    );
    assert!(stderr.contains("shown only now"), "{stderr}");

    let out = loco_api(&url, &[&args[..], &["--output", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["user_created"], false);
    assert_eq!(json["org_created"], false);
    assert!(json["org_id"].as_i64().is_some() && json["user_id"].as_i64().is_some());
    let second = json["token"].as_str().unwrap();
    assert!(second.starts_with("loco_") && second != token);
    let r = get(&router(&pool), "/v1/orgs", second).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let out = loco_api(&url, &[&args[..6], &["1001", "--org", "ACME"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: --org \"ACME\""), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = loco_api(
        "postgres://loco:pw@127.0.0.1:1/loco",
        &[&args[..], &["--ttl", "1d"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to Postgres") && !stderr.contains(":pw@"),
        "{stderr}"
    );
}
