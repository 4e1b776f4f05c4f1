-- The installer credential of a cluster (issues 16 and 17): the identity that installs
-- the platform layer (CRDs, RBAC, the Gateway, the chart) and that the resurrector
-- rebuilds an emptied cluster with. loco-api's own credential (credentials_*) is a
-- least-privilege ServiceAccount token that cannot create CRDs and dies with the
-- cluster's etcd; this one is an identity the cluster's authentication knows without
-- etcd (a client certificate, a cloud IAM mapping). Sealed with the cluster's data key
-- under its own purpose tag; NULL until an operator sets one.
ALTER TABLE clusters
    ADD COLUMN installer_credentials_ciphertext bytea,
    ADD COLUMN installer_credentials_nonce      bytea,
    ADD CONSTRAINT clusters_installer_credentials_whole
        CHECK ((installer_credentials_ciphertext IS NULL) = (installer_credentials_nonce IS NULL));
