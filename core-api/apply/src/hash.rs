//! The applied-hash: how apply knows, from metadata alone, that a live object already is
//! what loco would write.
//!
//! SHA-256 over a canonical JSON form (object keys sorted, no whitespace) of the object as
//! applied, the annotation itself left out. For a Secret, `data` and `stringData` are left
//! out too: the annotation is readable by anyone who can read the Secret's metadata (a
//! metadata LIST is granted far more widely than a GET of Secret data), and a hash of a
//! low-entropy value lets anyone check guesses against it. The data still counts, through
//! render's keyed data-hash annotation (`loco_render::ANNOTATION_DATA_HASH`), which is
//! metadata.
//!
//! loco-api cannot read Secrets at all (no `get`/`list` in its ClusterRole), not even
//! their metadata, so a Secret's applied-hash is also recorded on the app's Deployment
//! ([`ANNOTATION_APPLIED_SECRETS`]), which apply reads anyway.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use loco_render::{ObjectRef, Rendered};

use super::error::ApplyError;
use super::plan;

/// Annotation holding the hash of the object as loco last applied it.
pub const ANNOTATION_APPLIED_HASH: &str = "loco.deploy-app.com/applied-hash";

/// Annotation on an app's Deployment: `name=applied-hash,...` of the Secrets loco applied
/// in its namespace before it (sorted by name). Written after the Secrets, so it never
/// names a Secret write that did not happen.
pub const ANNOTATION_APPLIED_SECRETS: &str = "loco.deploy-app.com/applied-secrets";

/// Mixed into every hash: changing how apply builds its bodies changes this, so the next
/// deploy rewrites every object once instead of trusting hashes of another scheme.
const SCHEME: &[u8] = b"loco-apply/v1\n";

/// The hash apply stamps on each object of `rendered`, in apply order (a Deployment's
/// covers its record of the app's Secrets, so it depends on the whole render).
pub fn applied_hashes(rendered: &Rendered) -> Result<Vec<(ObjectRef, String)>, ApplyError> {
    Ok(plan::prepare(rendered)?
        .into_iter()
        .map(|p| (p.reference, p.hash))
        .collect())
}

/// The hash of an object's JSON body. `is_secret` leaves `data` and `stringData` out.
pub(crate) fn hash_body(body: &Value, is_secret: bool) -> String {
    let mut h = Sha256::new();
    h.update(SCHEME);
    let mut buf = Vec::with_capacity(1024);
    canonical(body, &mut buf, is_secret, Path::Root);
    h.update(&buf);
    hex::encode(h.finalize())
}

/// Where in the object a value sits: the only places something is left out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Root,
    Metadata,
    Annotations,
    Other,
}

/// Writes `v` with sorted keys, leaving out the Secret data fields at the root and the
/// applied-hash under `metadata.annotations`.
fn canonical(v: &Value, out: &mut Vec<u8>, is_secret: bool, path: Path) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            let mut first = true;
            for k in keys {
                let skip = match path {
                    Path::Root => is_secret && (k == "data" || k == "stringData"),
                    Path::Annotations => k == ANNOTATION_APPLIED_HASH,
                    Path::Metadata | Path::Other => false,
                };
                if skip {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_string(k, out);
                out.push(b':');
                let child = match (path, k.as_str()) {
                    (Path::Root, "metadata") => Path::Metadata,
                    (Path::Metadata, "annotations") => Path::Annotations,
                    _ => Path::Other,
                };
                canonical(&map[k.as_str()], out, is_secret, child);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out, is_secret, Path::Other);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is canonical (one encoding per string).
    out.extend_from_slice(Value::String(s.to_owned()).to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(value: &str, name: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": { "name": name, "namespace": "wks-1-app-2",
                          "labels": { "app.kubernetes.io/managed-by": "loco" } },
            "data": { "TOKEN": value },
            "stringData": { "OTHER": value },
        })
    }

    #[test]
    fn the_hash_is_stable_and_ignores_key_order() {
        let a = json!({ "kind": "Service", "metadata": { "name": "app", "labels": { "a": "1", "b": "2" } }, "spec": { "ports": [1, 2] } });
        let b = json!({ "spec": { "ports": [1, 2] }, "metadata": { "labels": { "b": "2", "a": "1" }, "name": "app" }, "kind": "Service" });
        assert_eq!(hash_body(&a, false), hash_body(&b, false));
        // A literal: the hash of an object must not drift between loco versions
        // unless SCHEME changes (that would rewrite every object of every cluster).
        assert_eq!(
            hash_body(
                &json!({ "kind": "Namespace", "metadata": { "name": "x" } }),
                false
            ),
            {
                let mut h = Sha256::new();
                h.update(SCHEME);
                h.update(br#"{"kind":"Namespace","metadata":{"name":"x"}}"#);
                hex::encode(h.finalize())
            }
        );
    }

    #[test]
    fn any_change_outside_the_excluded_fields_changes_the_hash() {
        let a = json!({ "kind": "Deployment", "spec": { "image": "a", "replicas": 1 } });
        let b = json!({ "kind": "Deployment", "spec": { "image": "b", "replicas": 1 } });
        let c = json!({ "kind": "Deployment", "spec": { "image": "a", "replicas": 2 } });
        let (ha, hb, hc) = (
            hash_body(&a, false),
            hash_body(&b, false),
            hash_body(&c, false),
        );
        assert_ne!(ha, hb);
        assert_ne!(ha, hc);
        // Array order is meaningful (containers, rules): it counts.
        let x = json!({ "a": [1, 2] });
        let y = json!({ "a": [2, 1] });
        assert_ne!(hash_body(&x, false), hash_body(&y, false));
    }

    #[test]
    fn the_applied_hash_annotation_itself_is_excluded() {
        let plain = json!({ "kind": "Service", "metadata": { "name": "app", "annotations": { "x": "1" } } });
        let stamped = json!({ "kind": "Service", "metadata": { "name": "app", "annotations": {
            "x": "1", ANNOTATION_APPLIED_HASH: "deadbeef" } } });
        assert_eq!(hash_body(&plain, false), hash_body(&stamped, false));
        // ...but only there: the same key elsewhere is ordinary content.
        let elsewhere = json!({ "kind": "Service", "metadata": { "name": "app", "annotations": { "x": "1" } },
            "spec": { ANNOTATION_APPLIED_HASH: "deadbeef" } });
        assert_ne!(hash_body(&plain, false), hash_body(&elsewhere, false));
    }

    #[test]
    fn secret_data_never_enters_the_hash() {
        let a = hash_body(&secret("aHVudGVyMg==", "env-1"), true);
        let b = hash_body(&secret("c3dvcmRmaXNo", "env-1"), true);
        assert_eq!(
            a, b,
            "two values, one hash: the hash says nothing about the value"
        );
        // Everything else of a Secret still counts.
        assert_ne!(a, hash_body(&secret("aHVudGVyMg==", "env-2"), true));
        // A non-Secret with the same shape hashes its data.
        assert_ne!(
            hash_body(&secret("aHVudGVyMg==", "env-1"), false),
            hash_body(&secret("c3dvcmRmaXNo", "env-1"), false)
        );
    }

    #[test]
    fn the_hash_of_a_secret_covers_its_data_hash_annotation_not_its_data() {
        let mut a = secret("aHVudGVyMg==", "env-1");
        a["metadata"]["annotations"] = json!({ "loco.deploy-app.com/data-hash": "1111" });
        let mut b = secret("c3dvcmRmaXNo", "env-1");
        b["metadata"]["annotations"] = json!({ "loco.deploy-app.com/data-hash": "1111" });
        assert_eq!(hash_body(&a, true), hash_body(&b, true));
        b["metadata"]["annotations"] = json!({ "loco.deploy-app.com/data-hash": "2222" });
        assert_ne!(hash_body(&a, true), hash_body(&b, true));
    }
}
