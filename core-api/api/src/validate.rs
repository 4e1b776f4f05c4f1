//! Input rules of the API, as plain functions. Each refusal names the field and says
//! what to send instead. The database enforces the same rules with CHECK constraints;
//! checking here first turns them into a 422 with a next step instead of an internal error.

use super::error::ApiError;

/// DNS-1123 label: org, workspace and app names (they end up in Kubernetes names).
pub fn dns_label(field: &str, v: &str) -> Result<(), ApiError> {
    if is_dns_label(v) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (got {} characters)",
                v.chars().count()
            ),
            format!("choose a {field} like \"my-app-1\""),
        ))
    }
}

/// The rule of [`dns_label`], for callers that word their own refusal (the CLI).
pub fn is_dns_label(v: &str) -> bool {
    let b = v.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 subdomain: a route's host.
pub fn hostname(field: &str, v: &str) -> Result<(), ApiError> {
    if (1..=253).contains(&v.len()) && v.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must be a lowercase DNS name of at most 253 characters, dot-separated labels of a-z, 0-9 and '-'",
            format!("send a {field} like \"shop.apps.example.com\""),
        ))
    }
}

/// A route's path prefix: absolute, at most 1024 characters, no query, fragment,
/// whitespace or `..` segment.
pub fn path_prefix(field: &str, v: &str) -> Result<(), ApiError> {
    let ok = v.starts_with('/')
        && v.len() <= 1024
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
        && !v.split('/').any(|seg| seg == "..");
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must start with '/', be at most 1024 characters and hold no whitespace, '?', '#' or '..' segment",
            format!("send a {field} like \"/\" or \"/api\""),
        ))
    }
}

/// Env variable names as Kubernetes and shells accept them.
pub fn env_name(v: &str) -> Result<(), ApiError> {
    let b = v.as_bytes();
    let ok = (1..=255).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        // The name is echoed (names are not secret); the value never is.
        Err(ApiError::invalid(
            "env",
            format!(
                "variable name {v:?} must be 1 to 255 characters of A-Z, a-z, 0-9 and '_', not starting with a digit"
            ),
            "rename the variable, e.g. DATABASE_URL",
        ))
    }
}

pub const MAX_ENV_VARS: usize = 256;
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;

/// An env value's size (its content is never echoed).
pub fn env_value(name: &str, v: &str) -> Result<(), ApiError> {
    if v.len() <= MAX_ENV_VALUE_BYTES {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "env",
            format!(
                "the value of {name} is {} bytes; the limit is {MAX_ENV_VALUE_BYTES}",
                v.len()
            ),
            "keep large configuration out of env (e.g. in the image) and send a shorter value",
        ))
    }
}

/// A page size (`limit`).
pub fn limit(v: Option<i64>) -> Result<i64, ApiError> {
    match v {
        None => Ok(50),
        Some(n) if (1..=loco_db::Page::MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {}", loco_db::Page::MAX_LIMIT),
            "send a smaller limit and follow `next_after` for more",
        )),
    }
}

/// An integer within `range`.
pub fn range(
    field: &str,
    v: i64,
    range: std::ops::RangeInclusive<i64>,
    next_step: &str,
) -> Result<(), ApiError> {
    if range.contains(&v) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
            next_step,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "web", "my-app-1", &"a".repeat(63)] {
            assert!(dns_label("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Web", "a_b", "a.b", &"a".repeat(64), "ünï"] {
            assert!(dns_label("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        assert!(hostname("host", "shop.apps.example.com").is_ok());
        for bad in [
            "",
            "Shop.example.com",
            "a..b",
            ".a",
            "a.",
            &"a.".repeat(130),
        ] {
            assert!(hostname("host", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_prefixes() {
        assert!(path_prefix("p", "/").is_ok());
        assert!(path_prefix("p", "/api/v1").is_ok());
        for bad in [
            "",
            "api",
            "/a b",
            "/a?b",
            "/a/../b",
            &format!("/{}", "a".repeat(1024)),
        ] {
            assert!(path_prefix("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_and_values() {
        assert!(env_name("DATABASE_URL").is_ok());
        assert!(env_name("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", &"A".repeat(256)] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
        assert!(env_value("A", &"x".repeat(MAX_ENV_VALUE_BYTES)).is_ok());
        let err = env_value("A", &"x".repeat(MAX_ENV_VALUE_BYTES + 1)).unwrap_err();
        assert!(!err.to_string().contains("xxx"), "never echoes the value");
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
    }
}
