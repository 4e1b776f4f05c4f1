//! Image references: `[registry/]repository[:tag][@sha256:digest]`, parsed strictly so a
//! deploy names exactly one image, and printed back pinned by digest for render.

use std::fmt;

/// A parsed image reference. The registry is explicit after parsing (the platform's
/// default registry fills it in when the reference names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Host and optional port, e.g. `registry.deploy-app.com` or `127.0.0.1:25000`.
    pub registry: String,
    /// Path in the registry, e.g. `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidImageRef {
    pub message: String,
}

fn invalid(message: impl Into<String>) -> InvalidImageRef {
    InvalidImageRef {
        message: message.into(),
    }
}

pub const MAX_REFERENCE_LEN: usize = 512;

impl ImageRef {
    /// Parses `reference`; a first path component that is not a host (no `.` or `:`, not
    /// `localhost`) means the reference is in `default_registry`.
    pub fn parse(reference: &str, default_registry: &str) -> Result<ImageRef, InvalidImageRef> {
        if reference.is_empty() || reference.len() > MAX_REFERENCE_LEN {
            return Err(invalid(format!(
                "an image reference has 1 to {MAX_REFERENCE_LEN} characters"
            )));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("an image reference has no spaces"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(parse_digest(d)?)),
            None => (reference, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path)
            }
            _ => (default_registry.to_owned(), rest),
        };
        if registry.is_empty() {
            return Err(invalid(
                "the reference names no registry and this platform has no default registry",
            ));
        }
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (
                &path[..last_slash + i],
                Some(path[last_slash + i + 1..].to_owned()),
            ),
            None => (path, None),
        };
        check_repository(repository)?;
        if let Some(t) = &tag {
            check_tag(t)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid(format!(
                "{reference:?} names no tag or digest; loco never guesses `latest`: add :<tag> or @sha256:<digest>"
            )));
        }
        Ok(ImageRef {
            registry,
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// What the registry's manifest endpoint is asked for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository[:tag]@digest`: what render runs (the tag only names the version).
    pub fn pinned(&self, digest: &str) -> String {
        match &self.tag {
            Some(t) => format!("{}/{}:{t}@{digest}", self.registry, self.repository),
            None => format!("{}/{}@{digest}", self.registry, self.repository),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn parse_digest(d: &str) -> Result<String, InvalidImageRef> {
    match d.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(d.to_owned())
        }
        _ => Err(invalid(format!(
            "digest {d:?} is not sha256:<64 lowercase hex characters>"
        ))),
    }
}

fn check_repository(repo: &str) -> Result<(), InvalidImageRef> {
    let ok_component = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if repo.is_empty() || repo.len() > 255 || !repo.split('/').all(ok_component) {
        return Err(invalid(format!(
            "repository {repo:?} must be lowercase letters, digits and . _ - between slashes, e.g. team/app"
        )));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), InvalidImageRef> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(invalid(format!(
            "tag {tag:?} must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn parses_host_port_tag_and_digest() {
        let r = ImageRef::parse(&format!("127.0.0.1:25000/team/app:v1@{D}"), "def").unwrap();
        assert_eq!(r.registry, "127.0.0.1:25000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.pinned(D), format!("127.0.0.1:25000/team/app:v1@{D}"));
    }

    #[test]
    fn a_reference_without_host_uses_the_default_registry() {
        let r = ImageRef::parse("team/app:v2", "registry.deploy-app.com").unwrap();
        assert_eq!(r.registry, "registry.deploy-app.com");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.to_string(), "registry.deploy-app.com/team/app:v2");
    }

    #[test]
    fn refuses_what_could_run_the_wrong_image() {
        for bad in [
            "",
            "team/app",
            "Team/App:v1",
            "team/app:-x",
            "team/app@sha256:abc",
            "team//app:v1",
            "team/app:v1 ",
            "reg.io/:v1",
        ] {
            assert!(ImageRef::parse(bad, "reg.io").is_err(), "{bad:?} accepted");
        }
        let e = ImageRef::parse("team/app", "reg.io").unwrap_err();
        assert!(e.message.contains("add :<tag>"), "{e}");
    }
}
