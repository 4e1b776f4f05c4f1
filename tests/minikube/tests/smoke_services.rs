//! Postgres, the OCI registry, S3 and Prometheus of the test bed are real servers,
//! reached with the same clients the product uses (sqlx, reqwest, aws-sdk-s3).

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use loco_minikube_tests::{require_env, unique, wait_for};
use sha2::{Digest, Sha256};
use sqlx::Connection;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test]
async fn sqlx_connects_and_runs_the_workspace_migrations() {
    let Some(url) = require_env("DATABASE_URL") else {
        return;
    };
    // A fresh database of its own (the name is ours: letters, digits, underscores), so the test sees the migrations run from zero.
    let name = unique("smoke_migrate").replace('-', "_");
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("connecting to DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let db_url = format!("{}/{name}", url.rsplit_once('/').unwrap().0);

    let pool = loco_db::connect(&db_url).await.unwrap();
    loco_db::migrate(&pool).await.unwrap();
    // Running them again is a no-op: start-up applies them on every boot.
    loco_db::migrate(&pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    let known = loco_db::MIGRATOR.iter().count() as i64;
    assert!(known > 0, "the workspace has migrations");
    assert_eq!(applied, known);
    let orgs: i64 = sqlx::query_scalar("SELECT count(*) FROM orgs")
        .fetch_one(&pool)
        .await
        .expect("the migrated schema has the orgs table");
    assert_eq!(orgs, 0);
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn oci_image_is_pushed_listed_and_deleted_by_digest() {
    let Some(registry) = require_env("LOCO_REGISTRY_URL") else {
        return;
    };
    let http = reqwest::Client::new();
    let repo = format!("smoke/{}", unique("img"));

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tarball, but the registry stores bytes by digest".to_vec();
    for blob in [config.to_vec(), layer.clone()] {
        let start = http
            .post(format!("{registry}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 202, "starting an upload");
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{registry}{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = http
            .put(format!("{location}{sep}digest={}", sha256(&blob)))
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.status(),
            201,
            "finishing an upload: {:?}",
            put.text().await
        );
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(&layer), "size": layer.len()}]
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let put = http
        .put(format!("{registry}/v2/{repo}/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    assert_eq!(put.headers()["docker-content-digest"], digest.as_str());

    let tags: serde_json::Value = http
        .get(format!("{registry}/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));

    let del = http
        .delete(format!("{registry}/v2/{repo}/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.status(),
        202,
        "deletes are enabled on the test registry"
    );
    let gone = http
        .get(format!("{registry}/v2/{repo}/manifests/{digest}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn s3_object_is_put_listed_read_and_deleted() {
    let Some(endpoint) = require_env("LOCO_S3_ENDPOINT") else {
        return;
    };
    let bucket = require_env("LOCO_S3_BUCKET").unwrap();
    let (Some(ak), Some(sk)) = (
        require_env("AWS_ACCESS_KEY_ID"),
        require_env("AWS_SECRET_ACCESS_KEY"),
    ) else {
        return;
    };
    let region = std::env::var("LOCO_S3_REGION").unwrap_or_else(|_| "us-east-1".into());
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(Credentials::new(ak, sk, None, None, "loco-test-bed"))
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let key = format!("smoke/{}.txt", unique("obj"));
    let body = b"snapshot manifest placeholder".to_vec();

    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(body.clone().into())
        .send()
        .await
        .expect("put_object");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("smoke/")
        .send()
        .await
        .unwrap();
    assert!(
        listed
            .contents()
            .iter()
            .any(|o| o.key() == Some(key.as_str())),
        "{key} is listed"
    );
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );
    s3.delete_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty(), "{key} is gone after delete");
}

#[tokio::test]
async fn prometheus_scrapes_a_loco_process() {
    let Some(prom) = require_env("PROMETHEUS_URL") else {
        return;
    };
    let targets = require_env("LOCO_PROMETHEUS_TARGETS_DIR").unwrap();
    let service = unique("loco-smoke");
    // This test process serves loco-telemetry's /metrics, as every loco binary does.
    let metrics = loco_telemetry::Metrics::new(&service);
    let (listener, addr) = loco_telemetry::ops::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let app = loco_telemetry::ops::router(metrics, loco_telemetry::ops::Readiness::default());
    tokio::spawn(loco_telemetry::ops::serve(
        listener,
        app,
        std::future::pending(),
    ));

    let target_file = std::path::Path::new(&targets).join(format!("{service}.json"));
    std::fs::write(
        &target_file,
        serde_json::json!([{"targets": [addr.to_string()], "labels": {"suite": "smoke"}}])
            .to_string(),
    )
    .expect("writing a Prometheus file_sd target");

    let http = reqwest::Client::new();
    let query = format!("loco_build_info{{service=\"{service}\"}}");
    let instance: String = wait_for(
        "Prometheus to scrape us",
        Duration::from_secs(60),
        || async {
            let v: serde_json::Value = http
                .get(format!("{prom}/api/v1/query"))
                .query(&[("query", query.as_str())])
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            match v["data"]["result"][0]["metric"]["instance"].as_str() {
                Some(i) => Ok(i.to_string()),
                None => Err(v.to_string()),
            }
        },
    )
    .await;
    assert_eq!(instance, addr.to_string());
    let _ = std::fs::remove_file(target_file);
}
