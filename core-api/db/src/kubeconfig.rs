//! The one kubeconfig type loco stores and uses: everything inline. A stored kubeconfig
//! is read by loco-api and by the resurrector on other machines, so a file reference
//! would not resolve there, and an `exec` or `auth-provider` plugin would run a program
//! of the kubeconfig's choosing inside loco's process. Every path that stores one
//! ([`crate::clusters::create`], [`crate::clusters::set_credentials`]: the CLI, the
//! resurrector) or builds a client from one (the deploy engine's cluster cache) takes an
//! [`InlineKubeconfig`], so the rule cannot be skipped by writing through another path.

use loco_crypto::Secret;

/// Keys that make a kubeconfig read a file or run a program.
const USER_REFUSED: &[&str] = &[
    "exec",
    "auth-provider",
    "tokenFile",
    "client-certificate",
    "client-key",
    "username",
    "password",
];
const CLUSTER_REFUSED: &[&str] = &["certificate-authority"];

/// A kubeconfig with its token, client certificate and CA data inline, no plugin and
/// no file reference. Holds the text as a secret; never printed.
#[derive(Clone)]
pub struct InlineKubeconfig(Secret);

impl std::fmt::Debug for InlineKubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineKubeconfig(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// Never quotes the text (it holds a token).
    #[error("not kubeconfig YAML (line {line})")]
    NotYaml { line: usize },
    #[error(
        "it refers to files or programs ({0}) that loco cannot use: inline the certificates and use a ServiceAccount token (`kubectl config view --raw --flatten --minify`, `kubectl create token loco-api -n loco-system`)"
    )]
    NotInline(String),
}

impl KubeconfigError {
    pub fn reason(&self) -> &'static str {
        match self {
            KubeconfigError::NotYaml { .. } => "kubeconfig_not_yaml",
            KubeconfigError::NotInline(_) => "kubeconfig_not_inline",
        }
    }
}

impl InlineKubeconfig {
    pub fn parse(text: Secret) -> Result<Self, KubeconfigError> {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text.expose()).map_err(|e| KubeconfigError::NotYaml {
                line: e.location().map_or(0, |l| l.line()),
            })?;
        let mut found = Vec::new();
        let entries = |list: &str, inner: &str| -> Vec<(String, serde_yaml::Mapping)> {
            doc.get(list)
                .and_then(|v| v.as_sequence())
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let name = e.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                    e.get(inner)
                        .and_then(|m| m.as_mapping())
                        .map(|m| (name.to_owned(), m.clone()))
                })
                .collect()
        };
        for (refused, list, inner) in [
            (USER_REFUSED, "users", "user"),
            (CLUSTER_REFUSED, "clusters", "cluster"),
        ] {
            for (name, map) in entries(list, inner) {
                for key in map.keys().filter_map(|k| k.as_str()) {
                    let file_ref = key.ends_with("-file") || key.ends_with("File");
                    if refused.contains(&key) || file_ref {
                        found.push(format!("{key} of {inner} {name:?}"));
                    }
                }
            }
        }
        if !found.is_empty() {
            return Err(KubeconfigError::NotInline(found.join(", ")));
        }
        Ok(InlineKubeconfig(text))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INLINE: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: QUJD\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";

    #[test]
    fn accepts_inline_data() {
        InlineKubeconfig::parse(Secret::new(INLINE)).unwrap();
    }

    #[test]
    fn refuses_plugins_and_file_references() {
        for (from, to) in [
            ("    token: abc\n", "    exec:\n      command: /bin/sh\n"),
            ("    token: abc\n", "    auth-provider:\n      name: gcp\n"),
            ("    token: abc\n", "    tokenFile: /var/run/token\n"),
            ("    token: abc\n", "    client-certificate: /c.pem\n"),
            ("    token: abc\n", "    client-key: /k.pem\n"),
            (
                "    certificate-authority-data: QUJD\n",
                "    certificate-authority: /ca\n",
            ),
        ] {
            let bad = INLINE.replace(from, to);
            let e = InlineKubeconfig::parse(Secret::new(bad)).unwrap_err();
            assert_eq!(e.reason(), "kubeconfig_not_inline", "{to}");
        }
        let e = InlineKubeconfig::parse(Secret::new("token: [abc")).unwrap_err();
        assert!(!e.to_string().contains("abc"), "{e}");
    }
}
