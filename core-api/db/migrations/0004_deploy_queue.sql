-- The deploy queue and the cluster's image pull credential.
--
-- Deployments are the queue: a worker claims a pending one (or an applying one whose
-- lease ran out because its worker died) and holds a lease it renews while it applies.
-- At most `max_concurrent_app_deployments` hold a live lease per cluster; the rest wait.
ALTER TABLE deployments ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX deployments_claimable_idx ON deployments (id)
    WHERE status IN ('pending', 'applying');

-- The registry login every app namespace of the cluster gets as its imagePullSecret:
-- long-lived, read-only, sealed with the cluster's data key (AD = cluster id + purpose).
ALTER TABLE clusters
    ADD COLUMN pull_registry              text CHECK (length(pull_registry) BETWEEN 1 AND 255),
    ADD COLUMN pull_credential_ciphertext bytea,
    ADD COLUMN pull_credential_nonce      bytea CHECK (length(pull_credential_nonce) = 24),
    ADD CONSTRAINT clusters_pull_credential_complete CHECK (
        (pull_registry IS NULL) = (pull_credential_ciphertext IS NULL)
        AND (pull_credential_ciphertext IS NULL) = (pull_credential_nonce IS NULL));

-- The image a revision runs, pinned: `registry/repository[:tag]@sha256:...`. image_digest
-- stays the column the janitor and indexes use; this one is what render writes into the
-- Deployment. Rows from before this migration have none and must be deployed again.
ALTER TABLE app_revisions
    ADD COLUMN image text CHECK (length(image) <= 600 AND image LIKE ('%@' || image_digest));
