//! Naming objects: the API resource behind an [`ObjectRef`], how two references name the
//! same object, and how an object is named in messages.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use loco_render::{LABEL_MANAGED_BY, MANAGED_BY, ObjectRef, Phase};

/// The API group of an `apiVersion` (`""` for the core group).
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Whether two references name the same object. The version is ignored: a render that
/// moves a kind to a newer version (ReferenceGrant v1beta1 -> v1) still names the object
/// it applied before, and prune must not delete it.
pub fn same_object(a: &ObjectRef, b: &ObjectRef) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && a.namespace == b.namespace
        && group_of(&a.api_version) == group_of(&b.api_version)
}

/// The API resource (with plural) of a reference, for kube's dynamic API.
pub(crate) fn api_resource(r: &ObjectRef) -> ApiResource {
    let (group, version) = r
        .api_version
        .split_once('/')
        .unwrap_or(("", r.api_version.as_str()));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &r.kind))
}

/// kube's form of the API coordinates render gives an object (render has its own plain
/// type so that it depends on no client crate).
pub fn kube_resource(r: &loco_render::ApiResource) -> ApiResource {
    ApiResource {
        group: r.group.clone(),
        version: r.version.clone(),
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        plural: r.plural.clone(),
    }
}

/// The dynamic API of one object's kind, in its namespace (or cluster-wide).
pub(crate) fn dynamic_api(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// `Deployment wks-1-app-2/app`, `Namespace wks-1-app-2`: how messages name an object.
pub(crate) fn show(r: &ObjectRef) -> String {
    match &r.namespace {
        Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
        None => format!("{} {}", r.kind, r.name),
    }
}

/// Whether live labels say loco owns the object.
pub(crate) fn is_managed(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|v| v == MANAGED_BY)
}

/// The phase a kind is applied in, for references that no longer carry one (inventory
/// entries): prune and revert delete in the reverse of this order, routes first, so
/// nothing points at an object that is already gone.
pub(crate) fn phase_of_kind(kind: &str) -> Phase {
    match kind {
        "Namespace" => Phase::Namespace,
        "NetworkPolicy" => Phase::NetworkPolicy,
        "ServiceAccount" | "Role" | "RoleBinding" => Phase::Identity,
        "Secret" => Phase::Secret,
        "Service" => Phase::Service,
        "Deployment" | "HorizontalPodAutoscaler" => Phase::Workload,
        _ => Phase::Route,
    }
}

/// `refs` grouped for deletion: latest phase first, each group deletable concurrently.
pub(crate) fn deletion_waves(refs: &[ObjectRef]) -> Vec<Vec<ObjectRef>> {
    let mut sorted: Vec<ObjectRef> = refs.to_vec();
    sorted.sort_by_key(|r| std::cmp::Reverse(phase_of_kind(&r.kind)));
    let mut waves: Vec<Vec<ObjectRef>> = Vec::new();
    for r in sorted {
        match waves.last_mut() {
            Some(w)
                if w.first().map(|f| phase_of_kind(&f.kind)) == Some(phase_of_kind(&r.kind)) =>
            {
                w.push(r)
            }
            _ => waves.push(vec![r]),
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn same_object_ignores_the_version_but_not_the_group() {
        let v1b1 = r(
            "gateway.networking.k8s.io/v1beta1",
            "ReferenceGrant",
            Some("loco-system"),
            "g",
        );
        let v1 = r(
            "gateway.networking.k8s.io/v1",
            "ReferenceGrant",
            Some("loco-system"),
            "g",
        );
        let other_group = r("example.com/v1", "ReferenceGrant", Some("loco-system"), "g");
        assert!(same_object(&v1b1, &v1));
        assert!(!same_object(&v1, &other_group));
        assert!(!same_object(
            &v1,
            &r(
                "gateway.networking.k8s.io/v1",
                "ReferenceGrant",
                Some("x"),
                "g"
            )
        ));
        assert!(same_object(
            &r("v1", "Secret", Some("n"), "s"),
            &r("v1", "Secret", Some("n"), "s")
        ));
    }

    #[test]
    fn api_resources_have_the_plural_the_api_server_expects() {
        let cases = [
            ("v1", "Namespace", "namespaces", ""),
            (
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "networkpolicies",
                "networking.k8s.io",
            ),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                "autoscaling",
            ),
            (
                "gateway.envoyproxy.io/v1alpha1",
                "BackendTrafficPolicy",
                "backendtrafficpolicies",
                "gateway.envoyproxy.io",
            ),
            (
                "gateway.networking.k8s.io/v1",
                "GRPCRoute",
                "grpcroutes",
                "gateway.networking.k8s.io",
            ),
        ];
        for (av, kind, plural, group) in cases {
            let ar = api_resource(&r(av, kind, None, "x"));
            assert_eq!(
                (ar.plural.as_str(), ar.group.as_str()),
                (plural, group),
                "{kind}"
            );
        }
    }

    #[test]
    fn deletion_goes_from_routes_back_to_the_namespace() {
        let refs = vec![
            r("v1", "Secret", Some("n"), "s"),
            r(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some("n"),
                "app",
            ),
            r("apps/v1", "Deployment", Some("n"), "app"),
            r(
                "gateway.networking.k8s.io/v1",
                "GRPCRoute",
                Some("n"),
                "app",
            ),
        ];
        let waves = deletion_waves(&refs);
        let kinds: Vec<Vec<&str>> = waves
            .iter()
            .map(|w| w.iter().map(|r| r.kind.as_str()).collect())
            .collect();
        assert_eq!(
            kinds,
            vec![
                vec!["HTTPRoute", "GRPCRoute"],
                vec!["Deployment"],
                vec!["Secret"]
            ]
        );
    }

    #[test]
    fn messages_name_kind_namespace_and_name() {
        assert_eq!(
            show(&r("apps/v1", "Deployment", Some("wks-1-app-2"), "app")),
            "Deployment wks-1-app-2/app"
        );
        assert_eq!(
            show(&r("v1", "Namespace", None, "wks-1-app-2")),
            "Namespace wks-1-app-2"
        );
    }
}
