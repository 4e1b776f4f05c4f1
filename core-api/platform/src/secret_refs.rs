//! The Secrets the chart's pods need before they can start (database URL, KEK, OAuth
//! client secrets...). The chart only names them; they are the operator's, not in
//! Postgres, so a deleted namespace or a wiped cluster loses them. Checked before
//! anything is applied: without it `helm upgrade --install --atomic` waits its whole
//! timeout for pods stuck in CreateContainerConfigError, then rolls back with helm's
//! own words.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use serde::Deserialize as _;
use serde_json::Value;

use super::error::PlatformError;

/// Keys of one Secret that rendered objects need, and which objects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Needed {
    /// Keys read one by one (`secretKeyRef`, volume `items`); empty when the whole
    /// Secret is used (`envFrom`, a volume without items).
    pub keys: Vec<String>,
    /// `Kind/name` of the objects that need it.
    pub by: Vec<String>,
}

/// The non-optional Secret references of `manifests` (helm's rendered YAML stream), by
/// Secret name. Image pull Secrets are left out: a pod starts without them.
pub(crate) fn referenced(manifests: &str) -> Result<BTreeMap<String, Needed>, PlatformError> {
    let mut out: BTreeMap<String, Needed> = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(manifests) {
        let obj = Value::deserialize(doc).map_err(|e| PlatformError::Bundled {
            what: "the chart's rendered manifests".to_owned(),
            cause: e.to_string(),
        })?;
        if obj.is_null() {
            continue;
        }
        let by = format!(
            "{}/{}",
            obj["kind"].as_str().unwrap_or("?"),
            obj["metadata"]["name"].as_str().unwrap_or("?")
        );
        walk(&obj, &by, &mut out);
    }
    for n in out.values_mut() {
        n.keys.sort();
        n.keys.dedup();
        n.by.sort();
        n.by.dedup();
    }
    Ok(out)
}

fn optional(v: &Value) -> bool {
    v["optional"].as_bool().unwrap_or(false)
}

fn note(out: &mut BTreeMap<String, Needed>, name: Option<&str>, keys: Vec<String>, by: &str) {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return;
    };
    let n = out.entry(name.to_owned()).or_default();
    n.keys.extend(keys);
    n.by.push(by.to_owned());
}

fn walk(v: &Value, by: &str, out: &mut BTreeMap<String, Needed>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match k.as_str() {
                    // env[].valueFrom.secretKeyRef
                    "secretKeyRef" if !optional(child) => {
                        let key = child["key"].as_str().map(str::to_owned);
                        note(out, child["name"].as_str(), key.into_iter().collect(), by);
                    }
                    // envFrom[].secretRef
                    "secretRef" if !optional(child) => {
                        note(out, child["name"].as_str(), Vec::new(), by);
                    }
                    // volumes[].secret
                    "secret" if child.get("secretName").is_some() && !optional(child) => {
                        let keys = child["items"]
                            .as_array()
                            .map(|items| {
                                items
                                    .iter()
                                    .filter_map(|i| i["key"].as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        note(out, child["secretName"].as_str(), keys, by);
                    }
                    _ => walk(child, by, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, by, out)),
        _ => {}
    }
}

/// Refuses, naming every missing Secret and key, when `namespace` lacks what `needed`
/// lists. Reads each Secret once; only its key names are looked at.
pub(crate) async fn check(
    client: &kube::Client,
    namespace: &str,
    needed: &BTreeMap<String, Needed>,
) -> Result<(), PlatformError> {
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let mut missing = Vec::new();
    let mut hint = None;
    for (name, n) in needed {
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| PlatformError::kube("read", &format!("Secret {namespace}/{name}"), e))?;
        let by = n.by.join(", ");
        let absent: Vec<&String> = match &found {
            None => n.keys.iter().collect(),
            Some(s) => {
                // stringData is write-only: the API server returns every key in data.
                let has = |k: &String| s.data.as_ref().is_some_and(|d| d.contains_key(k));
                n.keys.iter().filter(|k| !has(k)).collect()
            }
        };
        if found.is_none() {
            missing.push(if absent.is_empty() {
                format!("{name} (for {by})")
            } else {
                format!("{name} with key {} (for {by})", join(&absent))
            });
        } else if !absent.is_empty() {
            missing.push(format!("key {} of {name} (for {by})", join(&absent)));
        } else {
            continue;
        }
        hint.get_or_insert_with(|| {
            let key = absent.first().map(|k| k.as_str()).unwrap_or("KEY");
            format!("kubectl -n {namespace} create secret generic {name} --from-file={key}=FILE")
        });
    }
    let Some(mut hint) = hint else {
        return Ok(());
    };
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns = namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| PlatformError::kube("read", &format!("Namespace {namespace}"), e))?;
    if ns.is_none() {
        hint = format!("kubectl create namespace {namespace} && {hint}");
    }
    Err(PlatformError::SecretsMissing {
        namespace: namespace.to_owned(),
        missing,
        hint,
    })
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"
---
# Source: loco/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: loco-api}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: loco-api}
spec:
  template:
    spec:
      imagePullSecrets: [{name: pull}]
      containers:
        - name: loco-api
          env:
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: loco-database, key: database-url}}
            - name: LOCO_GITHUB_CLIENT_SECRET
              valueFrom: {secretKeyRef: {name: gh, key: client-secret, optional: true}}
          envFrom:
            - secretRef: {name: extra}
      volumes:
        - name: kek
          secret:
            secretName: loco-kek
            items: [{key: kek, path: kek}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: loco-gc}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: gc
              env:
                - name: DATABASE_URL
                  valueFrom: {secretKeyRef: {name: loco-database, key: database-url}}
"#;

    #[test]
    fn every_required_secret_reference_is_found_with_its_keys_and_users() {
        let refs = referenced(RENDERED).unwrap();
        assert_eq!(
            refs.keys().map(String::as_str).collect::<Vec<_>>(),
            ["extra", "loco-database", "loco-kek"],
            "optional refs and image pull Secrets are not required"
        );
        assert_eq!(refs["loco-database"].keys, ["database-url"]);
        assert_eq!(
            refs["loco-database"].by,
            ["CronJob/loco-gc", "Deployment/loco-api"]
        );
        assert_eq!(refs["loco-kek"].keys, ["kek"]);
        assert!(
            refs["extra"].keys.is_empty(),
            "envFrom needs the whole Secret"
        );
    }

    #[test]
    fn a_broken_manifest_stream_is_an_error_not_a_panic() {
        assert!(referenced("kind: [unclosed").is_err());
        assert!(referenced("").unwrap().is_empty());
    }
}
