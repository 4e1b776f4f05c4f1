-- The deployment whose pod template a deployment runs, rendered as the pods'
-- LOCO_DEPLOYMENT_ID. NULL means the deployment's own id: a deploy, an env change or a
-- rollback starts a new template (and so a rollout). A change that keeps the pod template
-- of the deployment it starts from (a replica-only scale, sleep, wake) copies that one's
-- template id, so re-rendering it leaves the template as it was and no pod is replaced.
--
-- A copied value, not a foreign key: gc drops old deployments, and the template id must
-- outlive the row it names so that a rebuild from these rows renders the same pods.
ALTER TABLE deployments
    ADD COLUMN template_deployment_id bigint,
    ADD CONSTRAINT deployments_template_is_older
        CHECK (template_deployment_id > 0 AND template_deployment_id < id);
