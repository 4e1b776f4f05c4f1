//! Resolves an image reference to its digest and size through the OCI distribution API,
//! before a revision is written: a deploy pins what it runs, and a missing or oversized
//! image is refused at the door instead of failing later as an ImagePullBackOff.
//!
//! Auth: anonymous first; on `401` with a `Bearer` challenge a token is fetched from the
//! challenge's realm (with the configured read-only login when there is one), on a
//! `Basic` challenge the login is sent directly.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::image::ImageRef;
use loco_crypto::Secret;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";
/// A manifest is small; a larger body is not one.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registry of references that name none.
    pub default_registry: String,
    /// Registries spoken to over plain HTTP (a local test registry); all others use HTTPS.
    pub insecure: BTreeSet<String>,
    /// Largest image (config + layers, compressed) a deploy accepts.
    pub max_image_bytes: u64,
    /// Read-only login used to read manifests, if the registry needs one.
    pub login: Option<(String, Secret)>,
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            default_registry: "registry.deploy-app.com".to_owned(),
            insecure: BTreeSet::new(),
            max_image_bytes: 10 * 1024 * 1024 * 1024,
            login: None,
            timeout: Duration::from_secs(15),
        }
    }
}

/// What a deploy records about its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    pub reference: ImageRef,
    /// `sha256:...` of the manifest (or index) the reference points at.
    pub digest: String,
    /// Compressed size of config + layers (of the linux/amd64 image of an index).
    pub size_bytes: u64,
}

impl ResolvedImage {
    /// `registry/repository[:tag]@digest`.
    pub fn pinned(&self) -> String {
        self.reference.pinned(&self.digest)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("image {image} was not found in its registry")]
    NotFound { image: String },
    #[error("image {image} is {size_mib} MiB; this platform accepts images up to {max_mib} MiB")]
    TooLarge {
        image: String,
        size_mib: u64,
        max_mib: u64,
    },
    #[error("the registry refused to show {image} to loco (HTTP {status})")]
    Denied { image: String, status: u16 },
    #[error("the registry of {image} cannot be reached: {cause}")]
    Unreachable { image: String, cause: String },
    #[error(
        "the registry answered for {image} with something that is not an image manifest: {cause}"
    )]
    BadManifest { image: String, cause: String },
    #[error("{image} resolved to {found}, not the digest the reference pins")]
    DigestMismatch { image: String, found: String },
}

impl RegistryError {
    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::NotFound { .. } => "image_not_found",
            RegistryError::TooLarge { .. } => "image_too_large",
            RegistryError::Denied { .. } => "image_access_denied",
            RegistryError::Unreachable { .. } => "registry_unreachable",
            RegistryError::BadManifest { .. } => "image_manifest_invalid",
            RegistryError::DigestMismatch { .. } => "image_digest_mismatch",
        }
    }

    pub fn next_step(&self) -> &'static str {
        match self {
            RegistryError::NotFound { .. } => {
                "push the image first (docker push <reference>), then deploy that exact reference"
            }
            RegistryError::TooLarge { .. } => {
                "make the image smaller (multi-stage build, slimmer base image) and push it again"
            }
            RegistryError::Denied { .. } => {
                "push the image to the platform registry, or ask the operator to give loco's pull credential read access"
            }
            RegistryError::Unreachable { .. } => "try again in a minute; the registry may be down",
            RegistryError::BadManifest { .. } | RegistryError::DigestMismatch { .. } => {
                "push the image again and deploy the digest `docker push` printed"
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    /// Present on an index / manifest list.
    manifests: Option<Vec<IndexEntry>>,
}

#[derive(Deserialize)]
struct Descriptor {
    size: u64,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("loco/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        RegistryClient { http, config }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Parses `reference`, fetches its manifest, and checks its size against the limit.
    pub async fn resolve(&self, image: &ImageRef) -> Result<ResolvedImage, RegistryError> {
        let name = image.to_string();
        let (body, digest) = self.manifest(image, image.manifest_reference()).await?;
        if let Some(pinned) = &image.digest
            && *pinned != digest
        {
            return Err(RegistryError::DigestMismatch {
                image: name,
                found: digest,
            });
        }
        let manifest = parse(&name, &body)?;
        let size_bytes = match manifest.manifests {
            Some(entries) => {
                let chosen = entries
                    .iter()
                    .find(|e| {
                        e.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                    })
                    .or(entries.first())
                    .ok_or_else(|| RegistryError::BadManifest {
                        image: name.clone(),
                        cause: "an image index without manifests".into(),
                    })?;
                let (body, _) = self.manifest(image, &chosen.digest).await?;
                image_size(&name, &parse(&name, &body)?)?
            }
            None => image_size(&name, &manifest)?,
        };
        if size_bytes > self.config.max_image_bytes {
            return Err(RegistryError::TooLarge {
                image: name,
                size_mib: size_bytes.div_ceil(1024 * 1024),
                max_mib: self.config.max_image_bytes / (1024 * 1024),
            });
        }
        Ok(ResolvedImage {
            reference: image.clone(),
            digest,
            size_bytes,
        })
    }

    /// One manifest's bytes and their digest (computed here, never trusted from a header).
    async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let scheme = if self.config.insecure.contains(&image.registry) {
            "http"
        } else {
            "https"
        };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{reference}",
            image.registry, image.repository
        );
        let name = image.to_string();
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            image: name.clone(),
            cause: without_url(e),
        };
        let mut resp = self
            .http
            .get(&url)
            .header(ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .map_err(unreachable)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let auth = self.authorization(resp.headers(), &name).await?;
            resp = self
                .http
                .get(&url)
                .header(ACCEPT, MANIFEST_TYPES)
                .header(reqwest::header::AUTHORIZATION, auth.expose())
                .send()
                .await
                .map_err(unreachable)?;
        }
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(RegistryError::NotFound { image: name }),
            s if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => {
                return Err(RegistryError::Denied {
                    image: name,
                    status: s.as_u16(),
                });
            }
            s => {
                return Err(RegistryError::Unreachable {
                    image: name,
                    cause: format!("HTTP {s}"),
                });
            }
        }
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.contains("json"));
        if !is_json {
            return Err(RegistryError::BadManifest {
                image: name,
                cause: "the content type is not JSON".into(),
            });
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(RegistryError::BadManifest {
                image: name,
                cause: "larger than 4 MiB".into(),
            });
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::BadManifest {
                image: name,
                cause: "larger than 4 MiB".into(),
            });
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        Ok((body.to_vec(), digest))
    }

    /// The Authorization header value answering a registry's challenge.
    async fn authorization(
        &self,
        headers: &HeaderMap,
        image: &str,
    ) -> Result<Secret, RegistryError> {
        let denied = || RegistryError::Denied {
            image: image.to_owned(),
            status: 401,
        };
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(denied)?;
        let basic = |(user, pass): &(String, Secret)| {
            use base64::Engine;
            let raw = format!("{user}:{}", pass.expose());
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        };
        if challenge.len() >= 5 && challenge[..5].eq_ignore_ascii_case("basic") {
            return self.config.login.as_ref().map(basic).ok_or_else(denied);
        }
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(denied());
        };
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(denied)?;
        let query: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .collect();
        let mut req = self.http.get(&realm).query(&query);
        if let Some(login) = &self.config.login {
            req = req.header(reqwest::header::AUTHORIZATION, basic(login).expose());
        }
        let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
            image: image.to_owned(),
            cause: without_url(e),
        })?;
        if !resp.status().is_success() {
            return Err(denied());
        }
        let t: TokenResponse = resp.json().await.map_err(|_| denied())?;
        let token = t.token.or(t.access_token).ok_or_else(denied)?;
        Ok(Secret::new(format!("Bearer {token}")))
    }
}

fn parse(image: &str, body: &[u8]) -> Result<Manifest, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::BadManifest {
        image: image.to_owned(),
        cause: e.to_string(),
    })
}

fn image_size(image: &str, m: &Manifest) -> Result<u64, RegistryError> {
    let config = m
        .config
        .as_ref()
        .ok_or_else(|| RegistryError::BadManifest {
            image: image.to_owned(),
            cause: format!(
                "no config descriptor (media type {})",
                m.media_type.as_deref().unwrap_or("unknown")
            ),
        })?;
    Ok(m.layers
        .iter()
        .fold(config.size, |sum, l| sum.saturating_add(l.size)))
}

/// `key="value", key2="value2"` of a WWW-Authenticate challenge.
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => match q.split_once('"') {
                Some((v, t)) => (v, t),
                None => (q, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.push((key, value.to_owned()));
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

/// reqwest errors print the URL; ours carry the image name instead.
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or no route".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_bearer_challenge() {
        let p = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull""#,
        );
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:team/app:pull".into()),
            ]
        );
    }

    #[test]
    fn sizes_a_manifest_from_config_and_layers() {
        let m: Manifest = serde_json::from_str(
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"size":10},"layers":[{"size":5},{"size":7}]}"#,
        )
        .unwrap();
        assert_eq!(image_size("x", &m).unwrap(), 22);
        let index: Manifest = serde_json::from_str(r#"{"manifests":[]}"#).unwrap();
        assert!(image_size("x", &index).is_err());
    }
}
