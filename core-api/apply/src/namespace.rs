//! Removing an app: its namespace (and with it everything inside), plus the objects loco
//! put elsewhere for it (the reviver's ReferenceGrant while it sleeps).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;

use super::Applier;
use super::error::ApplyError;
use super::resource::{api_resource, dynamic_api};
use super::write::Deleted;
use loco_render::{LABEL_APP, LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGED_BY, ObjectRef};

const POLL: Duration = Duration::from_millis(500);

/// Kinds loco renders outside an app's namespace, found by the app's labels.
const OUTSIDE_KINDS: &[(&str, &str)] = &[("gateway.networking.k8s.io/v1beta1", "ReferenceGrant")];

pub(crate) fn namespace_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        namespace: None,
        name: name.to_owned(),
    }
}

impl Applier {
    /// Removes an app from the cluster: deletes its namespace (only if it carries loco's
    /// managed-by label) and the app's objects in other namespaces, then waits until the
    /// namespace is gone or the deadline passes. An absent namespace is already removed.
    pub async fn delete_app(&self, namespace: &str) -> Result<(), ApplyError> {
        let r = namespace_ref(namespace);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let live = api
            .get_metadata_opt(namespace)
            .await
            .map_err(|e| ApplyError::from_kube(e, "read", &r))?;
        let Some(live) = live else {
            return Ok(());
        };
        if !super::resource::is_managed(live.metadata.labels.as_ref()) {
            return Err(ApplyError::NotManagedByLoco {
                object: Box::new(r),
            });
        }
        let labels = live.metadata.labels.clone().unwrap_or_default();
        if let (Some(w), Some(a)) = (labels.get(LABEL_WORKSPACE), labels.get(LABEL_APP)) {
            let outside = self.outside_objects(namespace, w, a).await?;
            self.delete_refs(&outside).await?;
        }
        match self.delete_if_managed(&r).await? {
            Deleted::NotManaged => {
                return Err(ApplyError::NotManagedByLoco {
                    object: Box::new(r),
                });
            }
            Deleted::Yes | Deleted::Absent => {}
        }
        self.wait_namespace_gone(namespace).await
    }

    /// Polls until the namespace is gone, up to the delete deadline.
    pub(crate) async fn wait_namespace_gone(&self, namespace: &str) -> Result<(), ApplyError> {
        let r = namespace_ref(namespace);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let deadline = Instant::now() + self.config.delete_deadline;
        loop {
            let live = api
                .get_metadata_opt(namespace)
                .await
                .map_err(|e| ApplyError::from_kube(e, "read", &r))?;
            if live.is_none() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ApplyError::NamespaceDeleteTimeout {
                    namespace: namespace.to_owned(),
                    deadline: self.config.delete_deadline,
                });
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }

    /// The app's loco-labelled objects outside its namespace.
    async fn outside_objects(
        &self,
        namespace: &str,
        workspace: &str,
        app: &str,
    ) -> Result<Vec<ObjectRef>, ApplyError> {
        let selector = format!(
            "{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_WORKSPACE}={workspace},{LABEL_APP}={app}"
        );
        let mut out = Vec::new();
        for (api_version, kind) in OUTSIDE_KINDS {
            let kind_ref = ObjectRef {
                api_version: (*api_version).to_owned(),
                kind: (*kind).to_owned(),
                namespace: None,
                name: "(all)".to_owned(),
            };
            let api = dynamic_api(&self.client, &api_resource(&kind_ref), None);
            let list = match api
                .list_metadata(&ListParams::default().labels(&selector))
                .await
            {
                Ok(l) => l,
                // The kind is not served here: nothing of it to delete.
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => return Err(ApplyError::from_kube(e, "list", &kind_ref)),
            };
            out.extend(list.items.into_iter().filter_map(|o| {
                let ns = o.metadata.namespace?;
                (ns != namespace).then(|| ObjectRef {
                    namespace: Some(ns),
                    name: o.metadata.name.unwrap_or_default(),
                    ..kind_ref.clone()
                })
            }));
        }
        Ok(out)
    }
}
