//! The public host and path prefix of an app.

use super::*;

pub(super) fn resolve_host(
    cx: &mut Ctx<'_>,
    domain: Option<&raw::DomainConfig>,
    app_name: &str,
    profile: Option<&raw::Profile>,
    profile_path: &str,
) -> Option<String> {
    let mut hostname: Option<&Sp<String>> = None;
    let mut refused_custom = false;
    if let Some(d) = domain {
        if let Some(t) = &d.kind {
            if t.value == "custom" {
                refused_custom = true;
                let label = d
                    .hostname
                    .as_ref()
                    .and_then(|h| h.value.split('.').next().filter(|l| !l.is_empty()))
                    .unwrap_or(app_name);
                let base = profile
                    .and_then(|p| p.base_domain.as_ref())
                    .map_or(cx.opts.base_domain.as_str(), |b| b.value.as_str());
                cx.issues.push(
                    t.span.clone(),
                    "DomainConfig.Type",
                    E::CustomDomainWithdrawn,
                    "custom domains were withdrawn from loco's roadmap and are not served",
                    format!(
                        "remove Type (or set Type = \"platform\") and use the platform hostname \"{label}.{base}\"; with --profile the app is served under that profile's BaseDomain"
                    ),
                );
            } else {
                cx.enum_value(t, "DomainConfig.Type", &["platform", "custom"]);
            }
        }
        if let Some(h) = &d.hostname
            && cx.hostname(
                h,
                "DomainConfig.Hostname",
                &format!("{}.{}", example_label(app_name), cx.opts.base_domain),
            )
        {
            hostname = Some(h);
        }
    }
    if refused_custom {
        return None;
    }
    let base_override = profile.and_then(|p| p.base_domain.as_ref());
    let (label, rest) = match hostname {
        Some(h) => match h.value.split_once('.') {
            Some((l, r)) => (l.to_owned(), r.to_owned()),
            None => return None,
        },
        None => (app_name.to_owned(), cx.opts.base_domain.clone()),
    };
    let base = base_override.map_or(rest, |b| b.value.clone());
    let host = format!("{label}.{base}");
    if label.is_empty() || !syntax::is_hostname(&host) {
        // The parts were reported where they were written; only flag a combination that is
        // invalid although its parts are fine (e.g. too long).
        if syntax::is_dns1123_label(&label) && syntax::is_hostname(&base) {
            let (span, path) = match base_override {
                Some(b) => (b.span.clone(), join(profile_path, "BaseDomain")),
                None => (
                    hostname.map_or(0..0, |h| h.span.clone()),
                    "DomainConfig.Hostname".to_owned(),
                ),
            };
            cx.issues.push(
                span,
                path,
                E::InvalidHostname,
                format!(
                    "the resulting hostname {host:?} is not valid (longer than 253 characters?)"
                ),
                "shorten the app name or the base domain",
            );
        }
        return None;
    }
    // A platform hostname lives under the platform's domain; anything else would be a
    // custom domain by another name, and those were withdrawn.
    let platform = cx.opts.base_domain.as_str();
    if base != platform && !base.ends_with(&format!(".{platform}")) {
        let (span, path) = match base_override {
            Some(b) => (b.span.clone(), join(profile_path, "BaseDomain")),
            None => (
                hostname.map_or(0..0, |h| h.span.clone()),
                "DomainConfig.Hostname".to_owned(),
            ),
        };
        cx.issues.push(
            span,
            path,
            E::InvalidHostname,
            format!("{host:?} is not under this platform's domain {platform:?}"),
            format!(
                "use the platform hostname \"{label}.{platform}\" (or a BaseDomain under {platform}); custom domains were withdrawn"
            ),
        );
        return None;
    }
    Some(host)
}
