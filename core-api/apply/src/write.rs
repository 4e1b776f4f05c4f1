//! The only requests that change a cluster: a server-side apply of one object, and a
//! delete that re-checks ownership first. Both count in [`Applier::writes`].

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};

use super::error::ApplyError;
use super::plan::{LiveMeta, Prepared};
use super::resource::{api_resource, dynamic_api};
use super::{Applier, FIELD_MANAGER};
use loco_render::ObjectRef;

/// What a guarded delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Deleted (or already on its way out).
    Yes,
    /// It was not there.
    Absent,
    /// It lacks loco's label: left alone.
    NotManaged,
}

impl Applier {
    /// Server-side apply of one object, field manager `loco`, conflicts forced.
    pub(crate) async fn write(&self, p: &Prepared) -> Result<(), ApplyError> {
        let api = dynamic_api(&self.client, &p.resource, p.reference.namespace.as_deref());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.count_write();
        api.patch(&p.reference.name, &params, &Patch::Apply(&p.body))
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::from_kube(e, "apply", &p.reference))
    }

    /// Deletes `r` only if the live object carries loco's label. The delete is bound to
    /// the uid and resourceVersion that were checked, so an object relabelled or replaced
    /// in between is never deleted; on such a conflict the check runs once more.
    pub(crate) async fn delete_if_managed(&self, r: &ObjectRef) -> Result<Deleted, ApplyError> {
        let api = dynamic_api(&self.client, &api_resource(r), r.namespace.as_deref());
        for _ in 0..2 {
            let live = match api.get_metadata_opt(&r.name).await {
                Ok(Some(m)) => LiveMeta::of(&m.metadata),
                Ok(None) => return Ok(Deleted::Absent),
                // The kind is not served (a CRD was removed): nothing of it can exist.
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Deleted::Absent),
                Err(e) => return Err(ApplyError::from_kube(e, "read", r)),
            };
            if !live.managed {
                tracing::warn!(kind = %r.kind, namespace = ?r.namespace, name = %r.name,
                    "not deleting an object without loco's managed-by label");
                return Ok(Deleted::NotManaged);
            }
            if live.deleting {
                return Ok(Deleted::Yes);
            }
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: live.uid,
                    resource_version: live.resource_version,
                }),
                ..DeleteParams::background()
            };
            self.count_write();
            match api.delete(&r.name, &params).await {
                Ok(_) => return Ok(Deleted::Yes),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Deleted::Absent),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(ApplyError::from_kube(e, "delete", r)),
            }
        }
        Err(ApplyError::Api {
            verb: "delete",
            object: Box::new(r.clone()),
            code: 409,
            reason: "Conflict (it kept changing while loco checked it)".to_owned(),
        })
    }
}
