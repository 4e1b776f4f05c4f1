//! Syntax of the small strings inside loco.toml: names, hostnames, Kubernetes quantities,
//! durations. Pure functions; the `resolve` step turns their answers into errors.

use loco_quantity::Quantity;

/// DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or
/// digit, at most 63 characters. Kubernetes object names and labels use it.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// A lowercase DNS hostname with at least two labels (no wildcard, no trailing dot, not an
/// IP address), as Gateway API route hostnames require.
pub fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 || s.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|l| is_dns1123_label(l))
}

/// Environment variable names loco accepts: letters, digits and '_', not starting with a
/// digit. Kubernetes allows more, but shells and most runtimes only read these.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// IANA service name, the syntax of a Kubernetes container port name.
pub fn is_port_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 15
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(|c| c.is_ascii_lowercase())
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
        && !s.contains("--")
}

/// A fully qualified protobuf service name: identifiers joined by dots.
pub fn is_grpc_service(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A container image reference, checked loosely: the registry decides the rest.
pub fn is_image_reference(s: &str) -> bool {
    if s.is_empty() || s.len() > 4096 || s.starts_with(['-', '/', ':', '@']) {
        return false;
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let without_digest = s.split('@').next().unwrap_or(s);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repo_end = without_digest[last_slash..]
        .find(':')
        .map_or(without_digest.len(), |i| last_slash + i);
    let repository = &without_digest[..repo_end];
    // The first path component may be a registry host with a port and capitals are not
    // allowed in repository paths.
    let path = repository.split_once('/').map_or(repository, |(_, p)| p);
    !path.is_empty() && !path.chars().any(|c| c.is_ascii_uppercase())
}

/// Parses "7d", "12h", "30m", "45s" and sums like "1d12h" into seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        if digits.is_empty() || digits.len() > 12 {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    if digits.is_empty() { Some(total) } else { None }
}

/// A Kubernetes quantity ("100m", "1.5", "256Mi", "1e3"), parsed exactly by the same
/// parser the capacity gate uses (loco-preflight), so the spec and preflight agree on
/// every string; None when the API server would refuse it (it does not trim spaces).
pub fn parse_quantity(s: &str) -> Option<Quantity> {
    if s.trim() != s {
        return None;
    }
    Quantity::parse(s).ok()
}

/// What is wrong with a CPU or memory value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityProblem {
    pub message: String,
    pub hint: String,
}

fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// CPU in millicores, at least 1m.
pub fn cpu_millis(s: &str) -> Result<u64, QuantityProblem> {
    let Some(q) = parse_quantity(s) else {
        let (n, suffix) = split_number(s.trim());
        let hint = if !n.is_empty() && suffix.trim().eq_ignore_ascii_case("m") {
            format!("write \"{n}m\" with no space (millicores)")
        } else if !n.is_empty()
            && ["core", "cores", "cpu", "cpus", "vcpu", "vcpus"]
                .contains(&suffix.trim().to_ascii_lowercase().as_str())
        {
            format!("write cores as a plain number: \"{n}\"")
        } else {
            "write cores (\"0.5\", \"2\") or millicores (\"500m\")".to_owned()
        };
        return Err(QuantityProblem {
            message: format!("{s:?} is not a Kubernetes CPU quantity"),
            hint,
        });
    };
    let too_much = || QuantityProblem {
        message: format!("{s:?} is far more CPU than any node has"),
        hint: "write cores (\"2\") or millicores (\"2000m\")".to_owned(),
    };
    match q.millis() {
        _ if q.is_negative() => Err(cpu_not_positive(s)),
        Some(0) => Err(cpu_not_positive(s)),
        Some(millis) if millis <= 1_000_000_000 => Ok(millis),
        _ => Err(too_much()),
    }
}

fn cpu_not_positive(s: &str) -> QuantityProblem {
    QuantityProblem {
        message: format!("CPU must be greater than zero, found {s:?}"),
        hint: "request at least \"1m\"; \"100m\" is a common start".to_owned(),
    }
}

/// How to write a byte size the way Kubernetes reads it, for a string that is not one.
fn byte_unit_hint(s: &str) -> String {
    let (n, suffix) = split_number(s.trim());
    let n = if n.is_empty() { "256" } else { n };
    let unit = suffix.trim().to_ascii_lowercase();
    let letter = unit.chars().next().map(|c| c.to_ascii_uppercase());
    match (unit.as_str(), letter) {
        ("kb" | "mb" | "gb" | "tb" | "pb" | "k" | "g" | "t" | "p", Some(l)) => {
            let bin = if l == 'K' { 'K' } else { l };
            let dec = if l == 'K' { 'k' } else { l };
            format!(
                "Kubernetes writes units without 'B': \"{n}{bin}i\" ({bin}iB, powers of 1024) or \"{n}{dec}\" (powers of 1000)"
            )
        }
        ("kib" | "mib" | "gib" | "tib" | "pib" | "ki" | "mi" | "gi" | "ti" | "pi", Some(l)) => {
            format!("write \"{n}{l}i\": the unit is case-sensitive and has no 'B'")
        }
        _ => "write a Kubernetes quantity such as \"256Mi\" or \"1Gi\"".to_owned(),
    }
}

/// The size limit of /tmp in bytes: at least 1Mi and at most `max` (the platform's cap).
pub fn tmp_size_bytes(s: &str, max: u64) -> Result<u64, QuantityProblem> {
    const MIN: u64 = 1024 * 1024;
    let Some(q) = parse_quantity(s) else {
        return Err(QuantityProblem {
            message: format!("{s:?} is not a Kubernetes size quantity"),
            hint: byte_unit_hint(s),
        });
    };
    let v = if q.is_negative() { Some(0) } else { q.units() };
    match v {
        Some(bytes) if bytes < MIN => Err(QuantityProblem {
            message: format!("a /tmp of {s:?} is too small to write a file to"),
            hint: if s.ends_with('m') {
                let (n, _) = split_number(s);
                format!("'m' means thousandths of a byte; for mebibytes write \"{n}Mi\"")
            } else {
                "use at least \"1Mi\"; leave TmpSize out for the platform's default".to_owned()
            },
        }),
        Some(bytes) if bytes <= max => Ok(bytes),
        _ => {
            let cap = loco_quantity::Mem(max);
            Err(QuantityProblem {
                message: format!("a /tmp of {s:?} is above this platform's maximum of {cap}"),
                hint: format!(
                    "use at most \"{cap}\" (large files belong in object storage), or ask the operator to raise --max-tmp-size"
                ),
            })
        }
    }
}

/// Memory in bytes, at least 6Mi (below that a container runtime cannot start the process).
pub fn memory_bytes(s: &str) -> Result<u64, QuantityProblem> {
    const MIN: u64 = 6 * 1024 * 1024;
    const MAX: u64 = 1_000_000_000_000_000;
    let Some(q) = parse_quantity(s) else {
        return Err(QuantityProblem {
            message: format!("{s:?} is not a Kubernetes memory quantity"),
            hint: byte_unit_hint(s),
        });
    };
    let v = if q.is_negative() { Some(0) } else { q.units() };
    if v.is_some_and(|v| v < MIN) {
        let hint = if s.ends_with('m') {
            let (n, _) = split_number(s);
            format!("'m' means thousandths of a byte; for mebibytes write \"{n}Mi\"")
        } else {
            "request at least \"6Mi\"; \"256Mi\" is a common start".to_owned()
        };
        return Err(QuantityProblem {
            message: format!("memory {s:?} is too small to run a container"),
            hint,
        });
    }
    match v {
        Some(bytes) if bytes <= MAX => Ok(bytes),
        _ => Err(QuantityProblem {
            message: format!("{s:?} is far more memory than any node has"),
            hint: "write a size such as \"512Mi\" or \"4Gi\"".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_hostnames() {
        assert!(is_dns1123_label("my-app-1"));
        assert!(!is_dns1123_label("My-App"));
        assert!(!is_dns1123_label("-app"));
        assert!(!is_dns1123_label("app-"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_hostname("myapp.deploy-app.com"));
        assert!(!is_hostname("myapp"));
        assert!(!is_hostname("*.deploy-app.com"));
        assert!(!is_hostname("MyApp.deploy-app.com"));
        assert!(!is_hostname("myapp.deploy-app.com."));
        assert!(!is_hostname("10.0.0.1"));
    }

    #[test]
    fn env_port_and_grpc_names() {
        assert!(is_env_name("LOG_LEVEL"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("MY-VAR"));
        assert!(is_port_name("http"));
        assert!(is_port_name("grpc-web"));
        assert!(!is_port_name("1234"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("averyveryverylongname"));
        assert!(is_grpc_service("helloworld.Greeter"));
        assert!(is_grpc_service("Greeter"));
        assert!(!is_grpc_service("hello..Greeter"));
        assert!(!is_grpc_service("hello/Greeter"));
    }

    #[test]
    fn images() {
        assert!(is_image_reference("ghcr.io/org/app:1.2"));
        assert!(is_image_reference("localhost:5000/app@sha256:abcd"));
        assert!(is_image_reference("nginx"));
        assert!(!is_image_reference("ghcr.io/Org/App:1"));
        assert!(!is_image_reference("app latest"));
        assert!(!is_image_reference(""));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("1d12h"), Some(129_600));
        assert_eq!(parse_duration("30m"), Some(1_800));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("7 days"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn quantities_follow_kubernetes() {
        let millis = |s: &str| parse_quantity(s).and_then(|q| q.millis());
        let units = |s: &str| parse_quantity(s).and_then(|q| q.units());
        assert_eq!(millis("100m"), Some(100));
        assert_eq!(millis("1"), Some(1000));
        assert_eq!(millis(".5"), Some(500));
        assert_eq!(
            millis("1u"),
            Some(1),
            "micro-cores round up to 1m, as the API server does"
        );
        assert_eq!(units("256Mi"), Some(268_435_456));
        assert_eq!(units("1e3"), Some(1000));
        assert_eq!(units("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(parse_quantity("256MB"), None);
        assert_eq!(
            parse_quantity(" 500m"),
            None,
            "the API server does not trim"
        );
        assert_eq!(parse_quantity("Mi"), None);
        assert_eq!(parse_quantity("1 Gi"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn cpu_values_and_hints() {
        assert_eq!(cpu_millis("100m"), Ok(100));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis("2"), Ok(2000));
        assert!(cpu_millis("0").is_err());
        assert!(cpu_millis("500 m").unwrap_err().hint.contains("\"500m\""));
        assert!(cpu_millis("2 cores").unwrap_err().hint.contains("\"2\""));
    }

    #[test]
    fn memory_values_and_hints() {
        assert_eq!(memory_bytes("256Mi"), Ok(268_435_456));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        let e = memory_bytes("256MB").unwrap_err();
        assert!(
            e.hint.contains("\"256Mi\"") && e.hint.contains("\"256M\""),
            "{e:?}"
        );
        assert!(memory_bytes("1gb").unwrap_err().hint.contains("\"1Gi\""));
        assert!(
            memory_bytes("512mi")
                .unwrap_err()
                .hint
                .contains("\"512Mi\"")
        );
        assert!(memory_bytes("256m").unwrap_err().hint.contains("\"256Mi\""));
        assert!(memory_bytes("1Ki").is_err());
    }
}
