//! Checks of a request that need no database: field errors and whether a loco.toml
//! describes the app it is deployed to.

use super::RequestError;
use loco_db::apps;
use loco_spec::ResolvedSpec;

pub(super) fn invalid(
    field: &'static str,
    message: impl Into<String>,
    next: impl Into<String>,
) -> RequestError {
    RequestError::Invalid {
        field,
        message: message.into(),
        next_step: next.into(),
    }
}

/// A loco.toml deployed to an app must describe that app: same name and route.
pub(super) fn check_matches_app(spec: &ResolvedSpec, app: &apps::App) -> Result<(), RequestError> {
    if spec.app.name != app.name {
        return Err(invalid(
            "spec",
            format!(
                "the loco.toml names app {:?}, but this is app {:?}",
                spec.app.name, app.name
            ),
            "deploy the loco.toml to the app it names, or change [Metadata] Name",
        ));
    }
    if spec.routing.host != app.host || spec.routing.path_prefix != app.path_prefix {
        return Err(invalid(
            "spec",
            format!(
                "the loco.toml routes {}{}, but the app is registered for {}{}",
                spec.routing.host, spec.routing.path_prefix, app.host, app.path_prefix
            ),
            "make [DomainConfig] Hostname and [Routing] PathPrefix match the app, or create an app for the new route",
        ));
    }
    Ok(())
}
