//! Resolves an image reference to its digest and size through the OCI distribution API,
//! before a revision is written: a deploy pins what it runs, and a missing or oversized
//! image is refused at the door instead of failing later as an ImagePullBackOff.
//!
//! A tenant names the host, so every connection is a trust decision (see
//! THREAT-MODEL.md): only allowlisted registries (the platform's own, plus the public
//! ones the operator configures), HTTPS unless a registry is configured insecure, no
//! redirect to another host, and no address outside the public internet unless the
//! operator says a registry lives there ([`AddressFilter`], checked at DNS resolution so
//! the connection goes to the checked address). A Bearer challenge's realm must be on
//! the registry's own host or an allowlisted auth host. The platform's read-only login
//! is sent only to the platform's registry and its token service, never to another host.
//! Users see one sentence for "not allowed", "not found" and "unreachable", so the error
//! is no port scanner; the detail is logged (under the request id of the API call).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::address::AddressFilter;
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
    /// The platform's own registry (host[:port]): the registry of references that name
    /// none, and the only one the platform's login is ever sent to.
    pub default_registry: String,
    /// Further registries a deploy may name (host[:port]), e.g. `ghcr.io`; anonymous.
    pub allowed: BTreeSet<String>,
    /// Hosts (host[:port]) a registry's token realm may be on besides the registry's
    /// own host (Docker Hub's `auth.docker.io`).
    pub auth_hosts: BTreeSet<String>,
    /// The platform registry's token service (host[:port]), the one realm the login is
    /// sent to; `None`: the platform registry's own host.
    pub platform_auth_host: Option<String>,
    /// Registries (and auth hosts) spoken to over plain HTTP (a local test registry);
    /// all others use HTTPS.
    pub insecure: BTreeSet<String>,
    /// Registries and auth hosts (host[:port]) that may resolve to loopback, link-local,
    /// private or the cluster's ranges (an in-cluster registry, the test bed's).
    pub private_ok: BTreeSet<String>,
    /// Ranges refused besides the non-public ones: the cluster's Pod, Service and node
    /// CIDRs, the control plane's addresses.
    pub blocked_ranges: Vec<IpNet>,
    /// Largest image (config + layers, compressed) a deploy accepts.
    pub max_image_bytes: u64,
    /// Read-only login of the platform's registry, if it needs one.
    pub login: Option<(String, Secret)>,
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            default_registry: "registry.deploy-app.com".to_owned(),
            allowed: BTreeSet::from(["ghcr.io".to_owned()]),
            auth_hosts: BTreeSet::new(),
            platform_auth_host: None,
            insecure: BTreeSet::new(),
            private_ok: BTreeSet::new(),
            blocked_ranges: Vec::new(),
            max_image_bytes: 10 * 1024 * 1024 * 1024,
            login: None,
            timeout: Duration::from_secs(15),
        }
    }
}

impl RegistryConfig {
    /// Whether `registry` (host[:port]) is the platform's own registry.
    pub fn is_platform(&self, registry: &str) -> bool {
        registry.eq_ignore_ascii_case(&self.default_registry)
    }

    fn is_allowed(&self, registry: &str) -> bool {
        self.is_platform(registry) || contains(&self.allowed, registry)
    }

    fn platform_auth(&self) -> &str {
        self.platform_auth_host
            .as_deref()
            .unwrap_or(&self.default_registry)
    }
}

fn contains(set: &BTreeSet<String>, authority: &str) -> bool {
    set.iter().any(|s| s.eq_ignore_ascii_case(authority))
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

/// Why an image could not be resolved; logged, never shown (one sentence covers all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// The registry, its realm or its address is not allowed.
    NotAllowed,
    /// 404, or 401/403 after authenticating.
    NotFound,
    /// No answer, a redirect elsewhere, or an unexpected status.
    Unreachable,
}

impl Unresolved {
    pub fn as_str(self) -> &'static str {
        match self {
            Unresolved::NotAllowed => "not_allowed",
            Unresolved::NotFound => "not_found",
            Unresolved::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not allowed, not found or unreachable: the same words for all three.
    #[error(
        "could not resolve image {image}: its registry is not allowed, the image is not there, or the registry cannot be reached"
    )]
    Unresolvable {
        image: String,
        why: Unresolved,
        /// For the log only.
        detail: String,
    },
    #[error("image {image} is {size_mib} MiB; this platform accepts images up to {max_mib} MiB")]
    TooLarge {
        image: String,
        size_mib: u64,
        max_mib: u64,
    },
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
            RegistryError::Unresolvable { .. } => "image_unresolvable",
            RegistryError::TooLarge { .. } => "image_too_large",
            RegistryError::BadManifest { .. } => "image_manifest_invalid",
            RegistryError::DigestMismatch { .. } => "image_digest_mismatch",
        }
    }

    pub fn next_step(&self) -> &'static str {
        match self {
            RegistryError::Unresolvable { .. } => {
                "check the reference (registry, repository, tag); push the image to the platform registry (or an allowed public registry) first; if it is there, try again in a minute"
            }
            RegistryError::TooLarge { .. } => {
                "make the image smaller (multi-stage build, slimmer base image) and push it again"
            }
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
    filter: AddressFilter,
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

/// DNS resolution through the address filter: a name that resolves to a refused
/// address is refused as a whole, and the connection goes to the addresses checked here
/// (no second lookup an attacker's DNS could answer differently).
#[derive(Debug, Clone)]
struct GuardedResolver {
    filter: AddressFilter,
    /// Host names (without port) of `private_ok`.
    private_ok: Arc<BTreeSet<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let this = self.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !this.private_ok.contains(&host) {
                for a in &addrs {
                    this.filter
                        .check(a.ip())
                        .map_err(|r| format!("{host} resolves to a refused address: {r}"))?;
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// host[:port] of a URL, as the configuration names hosts.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn host_of(authority: &str) -> String {
    let a = authority.to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_owned();
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => a,
    }
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Self {
        let filter = AddressFilter::new(&config.blocked_ranges);
        let resolver = GuardedResolver {
            filter: filter.clone(),
            private_ok: Arc::new(config.private_ok.iter().map(|a| host_of(a)).collect()),
        };
        // Redirects only within the host a request was checked for.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same = attempt.previous().last().is_some_and(|prev| {
                prev.scheme() == attempt.url().scheme()
                    && authority(prev) == authority(attempt.url())
            });
            if same && attempt.previous().len() < 5 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("loco/", env!("CARGO_PKG_VERSION")))
            .redirect(redirects)
            .dns_resolver(Arc::new(resolver))
            .build()
            .unwrap_or_default();
        RegistryClient {
            http,
            config,
            filter,
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Fetches `image`'s manifest and checks its size against the limit. Unresolvable
    /// images are logged here with the detail (inside the caller's span: the API
    /// request's id) and returned as one uniform error.
    pub async fn resolve(&self, image: &ImageRef) -> Result<ResolvedImage, RegistryError> {
        let r = self.resolve_inner(image).await;
        if let Err(RegistryError::Unresolvable { image, why, detail }) = &r {
            tracing::warn!(%image, why = why.as_str(), %detail, "image could not be resolved");
        }
        r
    }

    async fn resolve_inner(&self, image: &ImageRef) -> Result<ResolvedImage, RegistryError> {
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

    /// The URL of `authority` + `path` if loco may connect there: HTTPS unless
    /// configured insecure, and an IP literal must pass the address filter (names pass
    /// it when they are resolved).
    fn url_for(&self, authority: &str, path: &str, image: &str) -> Result<Url, RegistryError> {
        let scheme = if contains(&self.config.insecure, authority) {
            "http"
        } else {
            "https"
        };
        let url = Url::parse(&format!("{scheme}://{authority}{path}"))
            .map_err(|e| unresolvable(image, Unresolved::NotAllowed, format!("bad URL: {e}")))?;
        self.check_url(&url, image)?;
        Ok(url)
    }

    fn check_url(&self, url: &Url, image: &str) -> Result<(), RegistryError> {
        let a = authority(url);
        if url.scheme() != "https"
            && !(url.scheme() == "http" && contains(&self.config.insecure, &a))
        {
            return Err(unresolvable(
                image,
                Unresolved::NotAllowed,
                format!(
                    "{} is not HTTPS and {a} is not configured insecure",
                    url.scheme()
                ),
            ));
        }
        if contains(&self.config.private_ok, &a) {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            self.filter
                .check(ip)
                .map_err(|r| unresolvable(image, Unresolved::NotAllowed, format!("address {r}")))?;
        }
        Ok(())
    }

    /// One manifest's bytes and their digest (computed here, never trusted from a header).
    async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let name = image.to_string();
        if !self.config.is_allowed(&image.registry) {
            return Err(unresolvable(
                &name,
                Unresolved::NotAllowed,
                format!("registry {} is not on the allowlist", image.registry),
            ));
        }
        let url = self.url_for(
            &image.registry,
            &format!("/v2/{}/manifests/{reference}", image.repository),
            &name,
        )?;
        let unreachable =
            |e: reqwest::Error| unresolvable(&name, Unresolved::Unreachable, without_url(&e));
        let mut resp = self
            .http
            .get(url.clone())
            .header(ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .map_err(unreachable)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let auth = self.authorization(resp.headers(), image, &name).await?;
            let mut req = self.http.get(url).header(ACCEPT, MANIFEST_TYPES);
            if let Some(auth) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, auth.expose());
            }
            resp = req.send().await.map_err(unreachable)?;
        }
        match resp.status() {
            s if s.is_success() => {}
            s @ (StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(unresolvable(
                    &name,
                    Unresolved::NotFound,
                    format!("HTTP {s}"),
                ));
            }
            s => {
                return Err(unresolvable(
                    &name,
                    Unresolved::Unreachable,
                    format!("HTTP {s}"),
                ));
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

    /// The Authorization header value answering a registry's challenge (`None`: ask
    /// again anonymously, which the registry will refuse if it needs a login).
    async fn authorization(
        &self,
        headers: &HeaderMap,
        image: &ImageRef,
        name: &str,
    ) -> Result<Option<Secret>, RegistryError> {
        let denied = |detail: &str| unresolvable(name, Unresolved::NotFound, detail.to_owned());
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| denied("401 without a challenge"))?;
        let platform = self.config.is_platform(&image.registry);
        // The platform's login goes to the platform's registry only.
        let login = self.config.login.as_ref().filter(|_| platform);
        let basic = |(user, pass): &(String, Secret)| {
            use base64::Engine;
            let raw = format!("{user}:{}", pass.expose());
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        };
        if challenge.len() >= 5 && challenge[..5].eq_ignore_ascii_case("basic") {
            return login
                .map(|l| Some(basic(l)))
                .ok_or_else(|| denied("Basic challenge and no login for this registry"));
        }
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(denied("an unknown challenge"));
        };
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| denied("a Bearer challenge without realm"))?;
        let realm = Url::parse(&realm).map_err(|_| {
            unresolvable(
                name,
                Unresolved::NotAllowed,
                "the realm is not a URL".into(),
            )
        })?;
        let realm_host = authority(&realm);
        let platform_realm =
            platform && realm_host.eq_ignore_ascii_case(self.config.platform_auth());
        if !(platform_realm
            || realm_host.eq_ignore_ascii_case(&image.registry)
            || contains(&self.config.auth_hosts, &realm_host))
        {
            return Err(unresolvable(
                name,
                Unresolved::NotAllowed,
                format!("token realm {realm_host} is not an allowed auth host"),
            ));
        }
        self.check_url(&realm, name)?;
        let query: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .collect();
        let mut req = self.http.get(realm).query(&query);
        if let Some(login) = login.filter(|_| platform_realm) {
            req = req.header(reqwest::header::AUTHORIZATION, basic(login).expose());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unresolvable(name, Unresolved::Unreachable, without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(denied(&format!("token service answered {}", resp.status())));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|_| denied("token service answered no JSON"))?;
        let token = t
            .token
            .or(t.access_token)
            .ok_or_else(|| denied("token service answered no token"))?;
        Ok(Some(Secret::new(format!("Bearer {token}"))))
    }
}

fn unresolvable(image: &str, why: Unresolved, detail: String) -> RegistryError {
    RegistryError::Unresolvable {
        image: image.to_owned(),
        why,
        detail,
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

/// For the log: what went wrong, with the causes reqwest wraps (the resolver's refusal).
fn without_url(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
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
