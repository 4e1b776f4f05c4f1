//! The only requests that change a cluster: a server-side apply of one object, and a
//! delete that re-checks ownership first. Both count in [`Applier::writes`].

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};

use super::error::{ApplyError, refused_as_not_loco};
use super::plan::{LiveMeta, Prepared};
use super::resource::{api_resource, dynamic_api};
use super::{Applier, FIELD_MANAGER};
use loco_render::ObjectRef;

/// The field manager that keeps a Deployment's `replicas` when loco hands it to an HPA.
pub const REPLICAS_HANDOVER_MANAGER: &str = "loco-replicas-handover";

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
        if p.reference.kind == "Deployment" && p.body.data.pointer("/spec/replicas").is_none() {
            self.hand_over_replicas(&api, &p.reference).await?;
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.before_write(&p.reference)?;
        api.patch(&p.reference.name, &params, &Patch::Apply(&p.body))
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::from_kube(e, "apply", &p.reference))
    }

    /// Before loco stops applying a Deployment's `replicas` (its HPA takes over), another
    /// field manager takes the field at its live value: under server-side apply a field
    /// no manager owns any more is reset to its default (1), and the app would drop to
    /// one pod until the HPA reacts (the handover the HPA documentation describes). Not
    /// forced: when someone else (the HPA) owns the field already, nothing is done.
    async fn hand_over_replicas(
        &self,
        api: &kube::Api<kube::api::DynamicObject>,
        r: &ObjectRef,
    ) -> Result<(), ApplyError> {
        let live = match api.get_opt(&r.name).await {
            Ok(Some(live)) => live,
            Ok(None) => return Ok(()),
            Err(e) => return Err(ApplyError::from_kube(e, "read", r)),
        };
        let Some(replicas) = live.data.pointer("/spec/replicas").and_then(|v| v.as_i64()) else {
            return Ok(());
        };
        let owned_by_loco = live.metadata.managed_fields.iter().flatten().any(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER)
                && m.fields_v1
                    .as_ref()
                    .and_then(|f| f.0.pointer("/f:spec/f:replicas"))
                    .is_some()
        });
        if !owned_by_loco {
            return Ok(());
        }
        let body = serde_json::json!({
            "apiVersion": r.api_version,
            "kind": r.kind,
            "metadata": {"name": r.name, "namespace": r.namespace},
            "spec": {"replicas": replicas},
        });
        self.before_write(r)?;
        match api
            .patch(
                &r.name,
                &PatchParams::apply(REPLICAS_HANDOVER_MANAGER),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(ApplyError::from_kube(e, "apply", r)),
        }
    }

    /// Deletes `r` only if the live object carries loco's label. The delete is bound to
    /// the uid and resourceVersion that were checked, so an object relabelled or replaced
    /// in between is never deleted; on such a conflict the check runs once more.
    ///
    /// Secrets cannot be read by loco-api, so they are deleted without that check: the
    /// API server's admission policy for loco-api refuses the delete of a Secret without
    /// loco's label or loco's field manager, and that refusal means "not loco's".
    pub(crate) async fn delete_if_managed(&self, r: &ObjectRef) -> Result<Deleted, ApplyError> {
        let api = dynamic_api(&self.client, &api_resource(r), r.namespace.as_deref());
        if r.kind == "Secret" {
            self.before_write(r)?;
            return match api.delete(&r.name, &DeleteParams::background()).await {
                Ok(_) => Ok(Deleted::Yes),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Deleted::Absent),
                Err(kube::Error::Api(s)) if s.code == 403 && refused_as_not_loco(&s.message) => {
                    tracing::warn!(namespace = ?r.namespace, name = %r.name,
                        "not deleting a Secret loco did not write (refused by loco-api's admission policy)");
                    Ok(Deleted::NotManaged)
                }
                Err(e) => Err(ApplyError::from_kube(e, "delete", r)),
            };
        }
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
            self.before_write(r)?;
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
