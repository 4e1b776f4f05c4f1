//! The keyed hash of a Secret's content that render stamps on every Secret it writes.
//!
//! loco-api never reads a Secret back (its ServiceAccount has no `get` or `list` on
//! Secrets), so "is the live Secret what loco would write?" is answered from metadata
//! loco wrote itself: this annotation makes the Secret's applied-hash (which covers
//! metadata, never data) change whenever the data does. It is keyed with the app's
//! checksum key (derived from its data key, never in the cluster), so whoever can read
//! the annotation cannot test guesses of a low-entropy value against it.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use sha2::Sha256;

use super::ChecksumKey;

/// Annotation on every Secret render produces: HMAC-SHA256 of its type and data.
pub const ANNOTATION_DATA_HASH: &str = "loco.deploy-app.com/data-hash";

/// Versions the encoding below: changing it changes every hash once.
const DOMAIN: &[u8] = b"loco/secret-data/v1\0";

fn put(mac: &mut Hmac<Sha256>, part: &[u8]) {
    // Length-prefixed, so ("A", "BC") and ("AB", "C") never encode alike.
    mac.update(&(part.len() as u64).to_be_bytes());
    mac.update(part);
}

/// The keyed hash of `secret`'s type and data (`stringData` folded in, as the API
/// server stores it), hex. `None` without a key (an export outside any installation):
/// an unkeyed hash of a secret value would be a way to guess it.
pub fn secret_data_hash(key: &ChecksumKey, secret: &Secret) -> Option<String> {
    if key.0.is_empty() {
        return None;
    }
    let mut data: BTreeMap<&str, &[u8]> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.as_str(), v.as_bytes());
    }
    // HMAC takes keys of any length; the error case cannot happen.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).ok()?;
    mac.update(DOMAIN);
    put(
        &mut mac,
        secret.type_.as_deref().unwrap_or("Opaque").as_bytes(),
    );
    put(&mut mac, &(data.len() as u64).to_be_bytes());
    for (k, v) in data {
        put(&mut mac, k.as_bytes());
        put(&mut mac, v);
    }
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// Puts [`ANNOTATION_DATA_HASH`] on `secret` (nothing without a key).
pub(super) fn stamp(key: &ChecksumKey, mut secret: Secret) -> Secret {
    if let Some(h) = secret_data_hash(key, &secret) {
        secret
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANNOTATION_DATA_HASH.to_owned(), h);
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            type_: Some("Opaque".into()),
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn key(k: &str) -> ChecksumKey {
        ChecksumKey(k.as_bytes().to_vec())
    }

    #[test]
    fn the_hash_follows_the_data_the_type_and_the_key() {
        let k = key("per-app-key");
        let a = secret_data_hash(&k, &secret(&[("TOKEN", "hunter2")])).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            secret_data_hash(&k, &secret(&[("TOKEN", "hunter2")])).unwrap()
        );
        for other in [
            secret(&[("TOKEN", "hunter3")]),
            secret(&[("TOKEN2", "hunter2")]),
            secret(&[("TOKEN", "hunter2"), ("X", "")]),
            secret(&[("TOKE", "Nhunter2")]),
        ] {
            assert_ne!(a, secret_data_hash(&k, &other).unwrap());
        }
        let mut typed = secret(&[("TOKEN", "hunter2")]);
        typed.type_ = Some("kubernetes.io/dockerconfigjson".into());
        assert_ne!(a, secret_data_hash(&k, &typed).unwrap());
        // Another app's key: another hash for the same value.
        assert_ne!(
            a,
            secret_data_hash(&key("other-key"), &secret(&[("TOKEN", "hunter2")])).unwrap()
        );
        // stringData counts as the data it becomes.
        let mut as_string = secret(&[]);
        as_string.string_data = Some([("TOKEN".to_owned(), "hunter2".to_owned())].into());
        assert_eq!(a, secret_data_hash(&k, &as_string).unwrap());
    }

    #[test]
    fn it_is_an_hmac_of_the_documented_encoding() {
        // A literal: hashes on live Secrets must not drift between loco versions unless
        // DOMAIN changes (that rewrites every Secret once).
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"loco/secret-data/v1\0");
        for part in [&b"Opaque"[..], &1u64.to_be_bytes(), b"A", b"b"] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            secret_data_hash(&key("k"), &secret(&[("A", "b")])).as_deref(),
            Some(want.as_str())
        );
    }

    #[test]
    fn without_a_key_there_is_no_hash() {
        assert_eq!(
            secret_data_hash(&ChecksumKey::default(), &secret(&[("A", "b")])),
            None
        );
        let s = stamp(&ChecksumKey::default(), secret(&[("A", "b")]));
        assert!(s.metadata.annotations.is_none());
        let s = stamp(&key("k"), secret(&[("A", "b")]));
        assert!(s.metadata.annotations.unwrap()[ANNOTATION_DATA_HASH].len() == 64);
    }
}
