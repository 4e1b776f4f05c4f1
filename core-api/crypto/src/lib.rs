//! Envelope encryption of secrets (DESIGN.md "Secrets and keys").
//!
//! Each app (and each cluster, for its credentials) has a random 256-bit data key (DEK).
//! Values are sealed with the DEK using XChaCha20-Poly1305; the associated data binds a
//! ciphertext to its owner and purpose (app id + variable name for env values, cluster
//! id for credentials), so a ciphertext copied to another app or variable fails to open.
//! The DEK is stored only wrapped by the key-encryption key (KEK), which comes from a
//! file or the environment and never enters the database. Deleting the wrapped DEK
//! makes every copy of the owner's ciphertexts unreadable (crypto-shredding).
//!
//! Key material lives in [`Zeroizing`] buffers (wiped on drop) and every type that holds
//! it prints as `<redacted>` in Debug output.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Bytes in a KEK or DEK.
pub const KEY_LEN: usize = 32;
/// Bytes in an XChaCha20-Poly1305 nonce; random nonces of this size never collide in practice.
pub const NONCE_LEN: usize = 24;

/// Environment variable naming a file that holds the base64 KEK.
pub const KEK_FILE_ENV: &str = "LOCO_KEK_FILE";
/// Environment variable holding the base64 KEK itself.
pub const KEK_ENV: &str = "LOCO_KEK";

/// Crypto failures. Messages name keys by id and owners by id, never a key or a value.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "no key-encryption key configured: set {KEK_FILE_ENV} to a file holding it (base64 of 32 random bytes) or {KEK_ENV} to the base64 itself"
    )]
    KekMissing,
    #[error("cannot read the key-encryption key file {path}: {source}")]
    KekFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key-encryption key is not valid: {why}. It must be the base64 of exactly 32 random bytes, e.g. `head -c 32 /dev/urandom | base64`"
    )]
    KekInvalid { why: &'static str },
    #[error(
        "the stored data key was wrapped by KEK {found}, but the loaded KEK is {expected}. Start with the KEK the data was written with, or finish `loco-api keys rotate`"
    )]
    KekMismatch { expected: String, found: String },
    #[error("a stored data key could not be unwrapped: it was altered or belongs to another owner")]
    UnwrapFailed,
    #[error(
        "a stored secret could not be decrypted: it was altered, or moved from another app, variable or cluster"
    )]
    DecryptFailed,
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("a stored secret is malformed: {0}")]
    Malformed(&'static str),
}

impl CryptoError {
    /// Stable snake_case name for metric labels and audit/Kubernetes event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            CryptoError::KekMissing => "kek_missing",
            CryptoError::KekFileUnreadable { .. } => "kek_file_unreadable",
            CryptoError::KekInvalid { .. } => "kek_invalid",
            CryptoError::KekMismatch { .. } => "kek_mismatch",
            CryptoError::UnwrapFailed => "dek_unwrap_failed",
            CryptoError::DecryptFailed => "secret_decrypt_failed",
            CryptoError::Random(_) => "random_unavailable",
            CryptoError::Malformed(_) => "secret_malformed",
        }
    }
}

fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut buf = Zeroizing::new([0u8; N]);
    getrandom::fill(buf.as_mut()).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(buf)
}

/// The key-encryption key. Only ever in memory; identified by a fingerprint.
pub struct Kek {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Kek {
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        let key = Zeroizing::new(key);
        // A fingerprint, domain-separated so it is useless as a key and tells KEKs apart
        // (which one wrapped a DEK) without revealing anything about them.
        let digest = Sha256::new()
            .chain_update(b"loco/kek-id/v1\0")
            .chain_update(key.as_ref())
            .finalize();
        let id = format!("kek-{}", hex::encode(&digest[..8]));
        Kek { key, id }
    }

    /// A fresh random KEK (tests, and `keys generate` someday).
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_bytes(*random_bytes::<KEY_LEN>()?))
    }

    /// Parses the base64 of 32 bytes (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes =
            Zeroizing::new(
                BASE64
                    .decode(text.trim())
                    .map_err(|_| CryptoError::KekInvalid {
                        why: "not valid base64",
                    })?,
            );
        let key: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::KekInvalid {
                    why: "it does not decode to 32 bytes",
                })?;
        Ok(Self::from_bytes(key))
    }

    /// Reads a file holding the base64 KEK.
    pub fn from_file(path: &Path) -> Result<Self, CryptoError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::KekFileUnreadable {
                path: path.to_path_buf(),
                source,
            }
        })?);
        Self::from_base64(&text)
    }

    /// `LOCO_KEK_FILE` if set, else `LOCO_KEK`.
    pub fn from_env() -> Result<Self, CryptoError> {
        if let Some(path) = std::env::var_os(KEK_FILE_ENV).filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&path));
        }
        match std::env::var(KEK_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_base64(&Zeroizing::new(text)),
            _ => Err(CryptoError::KekMissing),
        }
    }

    /// The fingerprint stored beside every DEK this KEK wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(self.key.as_ref()).expect("keys are 32 bytes")
    }

    /// Wraps `dek` for `owner` (see [`DekOwner`]).
    pub fn wrap(&self, dek: &Dek, owner: DekOwner) -> Result<WrappedDek, CryptoError> {
        let sealed = seal_with(&self.cipher(), dek.key.as_ref(), &owner.ad())?;
        Ok(WrappedDek {
            kek_id: self.id.clone(),
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        })
    }

    /// Unwraps a DEK stored for `owner`; fails if another KEK wrapped it or it was moved.
    pub fn unwrap(&self, wrapped: &WrappedDek, owner: DekOwner) -> Result<Dek, CryptoError> {
        if wrapped.kek_id != self.id {
            return Err(CryptoError::KekMismatch {
                expected: self.id.clone(),
                found: wrapped.kek_id.clone(),
            });
        }
        let sealed = Sealed {
            nonce: wrapped.nonce.clone(),
            ciphertext: wrapped.ciphertext.clone(),
        };
        let plain = open_with(&self.cipher(), &sealed, &owner.ad()).map_err(|e| match e {
            CryptoError::DecryptFailed => CryptoError::UnwrapFailed,
            other => other,
        })?;
        let key: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("data key has the wrong length"))?;
        Ok(Dek {
            key: Zeroizing::new(key),
        })
    }

    /// Unwraps with `self` and wraps again with `new`; the DEK itself is unchanged, so
    /// every ciphertext it sealed stays valid.
    pub fn rewrap(
        &self,
        new: &Kek,
        wrapped: &WrappedDek,
        owner: DekOwner,
    ) -> Result<WrappedDek, CryptoError> {
        new.wrap(&self.unwrap(wrapped, owner)?, owner)
    }
}

/// Whose data key a wrap belongs to; bound into the wrap as associated data, so a
/// wrapped DEK copied onto another row fails to unwrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DekOwner {
    App(i64),
    Cluster(i64),
}

impl DekOwner {
    fn ad(self) -> Vec<u8> {
        let (tag, id): (&[u8], i64) = match self {
            DekOwner::App(id) => (b"loco/dek/app/v1\0", id),
            DekOwner::Cluster(id) => (b"loco/dek/cluster/v1\0", id),
        };
        [tag, &id.to_be_bytes()].concat()
    }
}

/// A data key in memory.
pub struct Dek {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

impl Dek {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Dek {
            key: random_bytes::<KEY_LEN>()?,
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(self.key.as_ref()).expect("keys are 32 bytes")
    }

    /// Seals an env value of `app_id` named `name`.
    pub fn seal_env(&self, app_id: i64, name: &str, value: &Secret) -> Result<Sealed, CryptoError> {
        seal_with(
            &self.cipher(),
            value.expose().as_bytes(),
            &env_ad(app_id, name),
        )
    }

    /// Opens an env value; fails unless `app_id` and `name` are the ones it was sealed for.
    pub fn open_env(
        &self,
        app_id: i64,
        name: &str,
        sealed: &Sealed,
    ) -> Result<Secret, CryptoError> {
        let plain = open_with(&self.cipher(), sealed, &env_ad(app_id, name))?;
        Secret::from_utf8(plain)
    }

    /// Seals a cluster's credentials (its kubeconfig or token).
    pub fn seal_cluster_credentials(
        &self,
        cluster_id: i64,
        credentials: &Secret,
    ) -> Result<Sealed, CryptoError> {
        seal_with(
            &self.cipher(),
            credentials.expose().as_bytes(),
            &cluster_credentials_ad(cluster_id),
        )
    }

    pub fn open_cluster_credentials(
        &self,
        cluster_id: i64,
        sealed: &Sealed,
    ) -> Result<Secret, CryptoError> {
        let plain = open_with(&self.cipher(), sealed, &cluster_credentials_ad(cluster_id))?;
        Secret::from_utf8(plain)
    }

    /// Seals a cluster's installer credential: the identity `loco-api platform apply`
    /// and the resurrector install the platform with (it may create CRDs and RBAC, which
    /// loco-api's own identity may not). Its own purpose tag: neither credential opens
    /// as the other.
    pub fn seal_installer_credentials(
        &self,
        cluster_id: i64,
        credentials: &Secret,
    ) -> Result<Sealed, CryptoError> {
        seal_with(
            &self.cipher(),
            credentials.expose().as_bytes(),
            &installer_credentials_ad(cluster_id),
        )
    }

    pub fn open_installer_credentials(
        &self,
        cluster_id: i64,
        sealed: &Sealed,
    ) -> Result<Secret, CryptoError> {
        let plain = open_with(
            &self.cipher(),
            sealed,
            &installer_credentials_ad(cluster_id),
        )?;
        Secret::from_utf8(plain)
    }

    /// A key derived from this DEK for keyed hashes of env values (render names the env
    /// Secret after such a hash): knowing the hash reveals nothing about low-entropy
    /// values without the DEK, and the DEK itself is never exposed.
    pub fn checksum_key(&self) -> Zeroizing<Vec<u8>> {
        let mut h = Sha256::new();
        h.update(b"loco/env-checksum-key/v1\0");
        h.update(self.key.as_ref());
        Zeroizing::new(h.finalize().to_vec())
    }

    /// Seals a cluster's read-only registry credential (rendered as imagePullSecrets).
    pub fn seal_pull_credential(
        &self,
        cluster_id: i64,
        credential: &Secret,
    ) -> Result<Sealed, CryptoError> {
        seal_with(
            &self.cipher(),
            credential.expose().as_bytes(),
            &pull_credential_ad(cluster_id),
        )
    }

    pub fn open_pull_credential(
        &self,
        cluster_id: i64,
        sealed: &Sealed,
    ) -> Result<Secret, CryptoError> {
        let plain = open_with(&self.cipher(), sealed, &pull_credential_ad(cluster_id))?;
        Secret::from_utf8(plain)
    }
}

// Associated data: a purpose tag, the owner id as fixed-width bytes, then the name
// (variable names cannot contain NUL, so the encoding is unambiguous).
fn env_ad(app_id: i64, name: &str) -> Vec<u8> {
    [
        b"loco/env/v1\0".as_slice(),
        &app_id.to_be_bytes(),
        name.as_bytes(),
    ]
    .concat()
}

fn cluster_credentials_ad(cluster_id: i64) -> Vec<u8> {
    [
        b"loco/cluster-credentials/v1\0".as_slice(),
        &cluster_id.to_be_bytes(),
    ]
    .concat()
}

fn installer_credentials_ad(cluster_id: i64) -> Vec<u8> {
    [
        b"loco/cluster-installer/v1\0".as_slice(),
        &cluster_id.to_be_bytes(),
    ]
    .concat()
}

fn pull_credential_ad(cluster_id: i64) -> Vec<u8> {
    [
        b"loco/pull-credential/v1\0".as_slice(),
        &cluster_id.to_be_bytes(),
    ]
    .concat()
}

fn seal_with(cipher: &XChaCha20Poly1305, plain: &[u8], ad: &[u8]) -> Result<Sealed, CryptoError> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        .map_err(|_| CryptoError::Malformed("value too large to encrypt"))?;
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    sealed: &Sealed,
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce: [u8; NONCE_LEN] = sealed
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("nonce has the wrong length"))?;
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: ad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptFailed)
}

/// A DEK as stored: ciphertext + nonce + the id of the KEK that wrapped it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek {
    pub kek_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedDek")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A sealed value as stored: nonce + ciphertext (with its authentication tag).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A secret value in memory (an env value, cluster credentials). Debug and Display never
/// show it; read it with [`Secret::expose`] only where it is needed (render, apply).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn from_utf8(bytes: Zeroizing<Vec<u8>>) -> Result<Self, CryptoError> {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CryptoError::Malformed("decrypted value is not UTF-8"))?;
        Ok(Secret::new(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::generate().unwrap()
    }

    #[test]
    fn env_value_round_trips() {
        let dek = Dek::generate().unwrap();
        let sealed = dek.seal_env(7, "API_KEY", &"hunter2".into()).unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(
            dek.open_env(7, "API_KEY", &sealed).unwrap().expose(),
            "hunter2"
        );
    }

    #[test]
    fn env_value_fails_for_another_app_or_variable() {
        let dek = Dek::generate().unwrap();
        let sealed = dek.seal_env(7, "API_KEY", &"hunter2".into()).unwrap();
        for (app, name) in [(8, "API_KEY"), (7, "API_KEY2"), (7, "API_KE")] {
            let err = dek.open_env(app, name, &sealed).unwrap_err();
            assert_eq!(err.reason(), "secret_decrypt_failed");
        }
        // A name that shifts bytes into the id cannot collide: ids are fixed width.
        assert!(dek.open_env(7, "API_KEY", &sealed).is_ok());
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let dek = Dek::generate().unwrap();
        let mut sealed = dek.seal_env(1, "A", &"value".into()).unwrap();
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            dek.open_env(1, "A", &sealed),
            Err(CryptoError::DecryptFailed)
        ));
    }

    #[test]
    fn nonces_are_fresh() {
        let dek = Dek::generate().unwrap();
        let a = dek.seal_env(1, "A", &"same".into()).unwrap();
        let b = dek.seal_env(1, "A", &"same".into()).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn wrapped_dek_is_bound_to_kek_and_owner() {
        let (k1, k2) = (kek(), kek());
        let dek = Dek::generate().unwrap();
        let sealed = dek.seal_env(3, "X", &"v".into()).unwrap();
        let wrapped = k1.wrap(&dek, DekOwner::App(3)).unwrap();
        assert_eq!(wrapped.kek_id, k1.id());

        let back = k1.unwrap(&wrapped, DekOwner::App(3)).unwrap();
        assert_eq!(back.open_env(3, "X", &sealed).unwrap().expose(), "v");

        assert_eq!(
            k1.unwrap(&wrapped, DekOwner::App(4)).unwrap_err().reason(),
            "dek_unwrap_failed"
        );
        assert_eq!(
            k1.unwrap(&wrapped, DekOwner::Cluster(3))
                .unwrap_err()
                .reason(),
            "dek_unwrap_failed"
        );
        assert_eq!(
            k2.unwrap(&wrapped, DekOwner::App(3)).unwrap_err().reason(),
            "kek_mismatch"
        );
        // Same id but another key (a forged kek_id) still fails cryptographically.
        let forged = WrappedDek {
            kek_id: k2.id().to_string(),
            ..wrapped.clone()
        };
        assert_eq!(
            k2.unwrap(&forged, DekOwner::App(3)).unwrap_err().reason(),
            "dek_unwrap_failed"
        );
    }

    #[test]
    fn rewrap_keeps_the_dek() {
        let (old, new) = (kek(), kek());
        let dek = Dek::generate().unwrap();
        let sealed = dek.seal_env(5, "DB_URL", &"postgres://x".into()).unwrap();
        let wrapped = old.wrap(&dek, DekOwner::App(5)).unwrap();
        let rewrapped = old.rewrap(&new, &wrapped, DekOwner::App(5)).unwrap();
        assert_eq!(rewrapped.kek_id, new.id());
        let dek2 = new.unwrap(&rewrapped, DekOwner::App(5)).unwrap();
        assert_eq!(
            dek2.open_env(5, "DB_URL", &sealed).unwrap().expose(),
            "postgres://x"
        );
        assert!(old.unwrap(&rewrapped, DekOwner::App(5)).is_err());
    }

    #[test]
    fn cluster_credentials_are_bound_to_the_cluster() {
        let dek = Dek::generate().unwrap();
        let sealed = dek
            .seal_cluster_credentials(9, &"kubeconfig".into())
            .unwrap();
        assert_eq!(
            dek.open_cluster_credentials(9, &sealed).unwrap().expose(),
            "kubeconfig"
        );
        assert!(dek.open_cluster_credentials(10, &sealed).is_err());
        // The installer credential and loco-api's credential never open as each other.
        assert!(dek.open_installer_credentials(9, &sealed).is_err());
        let installer = dek.seal_installer_credentials(9, &"admin".into()).unwrap();
        assert_eq!(
            dek.open_installer_credentials(9, &installer)
                .unwrap()
                .expose(),
            "admin"
        );
        assert!(dek.open_cluster_credentials(9, &installer).is_err());
        // An env value of app 9 is not a credential of cluster 9.
        assert!(dek.open_env(9, "", &sealed).is_err());
    }

    #[test]
    fn kek_parsing() {
        let raw = [42u8; KEY_LEN];
        let text = BASE64.encode(raw);
        let k = Kek::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(k.id(), Kek::from_bytes(raw).id());
        assert!(k.id().starts_with("kek-") && k.id().len() == 4 + 16);
        assert_eq!(
            Kek::from_base64("not base64!").unwrap_err().reason(),
            "kek_invalid"
        );
        assert_eq!(
            Kek::from_base64(&BASE64.encode([1u8; 16]))
                .unwrap_err()
                .reason(),
            "kek_invalid"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Kek::from_file(&path).unwrap().id(), k.id());
        let err = Kek::from_file(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.reason(), "kek_file_unreadable");
    }

    #[test]
    fn debug_output_never_shows_key_material_or_values() {
        let raw = [0xABu8; KEY_LEN];
        let k = Kek::from_bytes(raw);
        let dek = Dek::generate().unwrap();
        let secret = Secret::new("s3cr3t-canary-debug");
        let sealed = dek.seal_env(1, "A", &secret).unwrap();
        let wrapped = k.wrap(&dek, DekOwner::App(1)).unwrap();
        let shown = format!("{k:?} {dek:?} {secret:?} {sealed:?} {wrapped:?} {k:#?}");
        assert!(!shown.contains("s3cr3t-canary-debug"), "{shown}");
        assert!(!shown.contains(&BASE64.encode(raw)), "{shown}");
        assert!(!shown.contains("171"), "{shown}"); // 0xAB as a decimal array
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn error_messages_never_contain_values() {
        let dek = Dek::generate().unwrap();
        let sealed = dek.seal_env(1, "A", &"s3cr3t-canary-err".into()).unwrap();
        let err = dek.open_env(2, "A", &sealed).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t-canary-err"));
    }
}
