-- The deploy core's data model (DESIGN.md "Data model"): placement (regions, clusters,
-- workspaces), apps and their revisions and deployments, registry records, snapshots,
-- traffic activity, credentials (API tokens, sessions) and the audit trail.
--
-- Conventions: bigint identity ids; ON DELETE CASCADE wherever a row means nothing
-- without its parent (deleting an app removes its revisions, deployments, env
-- ciphertexts and its wrapped data key: crypto-shredding); audit events keep plain ids
-- so they outlive what they describe. Secrets are stored only as ciphertext + nonce
-- under a data key (DEK) that is itself stored wrapped by the key-encryption key (KEK);
-- `*_kek_id` names the KEK so a rotation can tell old wraps from new ones.

-- Org setting for the seeds' abuse gate: when non-empty, only GitHub collaborators of
-- one of these repositories ("owner/name") may deploy in the org.
ALTER TABLE orgs
    ADD COLUMN deploy_gate_repos text[] NOT NULL DEFAULT '{}';

-- A user's orgs are listed newest first.
CREATE INDEX memberships_org_created_idx ON memberships (org_id, created_at DESC);

CREATE TABLE regions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text        NOT NULL CHECK (provider ~ '^[a-z][a-z0-9-]{0,31}$'),
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, name)
);

CREATE TABLE clusters (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region_id               bigint      NOT NULL REFERENCES regions (id),
    name                    text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    endpoint                text        NOT NULL CHECK (endpoint ~ '^https://'),
    -- The kubeconfig (or token), sealed with this cluster's own DEK; AD = cluster id.
    credentials_ciphertext  bytea       NOT NULL,
    credentials_nonce       bytea       NOT NULL CHECK (length(credentials_nonce) = 24),
    dek_wrapped             bytea       NOT NULL,
    dek_nonce               bytea       NOT NULL CHECK (length(dek_nonce) = 24),
    dek_kek_id              text        NOT NULL,
    -- Written by the resurrector's probes.
    status                  text        NOT NULL DEFAULT 'unknown'
                                        CHECK (status IN ('unknown', 'healthy', 'degraded', 'unreachable', 'rebuilding')),
    status_reason           text        CHECK (status_reason ~ '^[a-z][a-z0-9_]*$'),
    checked_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clusters_region_idx ON clusters (region_id);
-- /status lists clusters whose health rows say degraded.
CREATE INDEX clusters_unhealthy_idx ON clusters (status) WHERE status <> 'healthy';

CREATE TABLE workspaces (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- Pinned: moving a workspace is a rebuild elsewhere, not an update of this column.
    cluster_id  bigint      NOT NULL REFERENCES clusters (id),
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    -- Target of apps' composite key, so an app's org can never drift from its workspace's.
    UNIQUE (id, org_id)
);
CREATE INDEX workspaces_org_id_idx ON workspaces (org_id, id);
CREATE INDEX workspaces_cluster_idx ON workspaces (cluster_id);

CREATE TABLE apps (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id                     bigint      NOT NULL,
    workspace_id               bigint      NOT NULL,
    name                       text        NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    kind                       text        NOT NULL DEFAULT 'service' CHECK (kind IN ('service')),
    -- The route: hostname under the platform's base domain (the "domain" that routes are
    -- unique in) and a path prefix.
    host                       text        NOT NULL CHECK (host ~ '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$'),
    path_prefix                text        NOT NULL DEFAULT '/' CHECK (path_prefix ~ '^/' AND length(path_prefix) <= 1024),
    -- [{"name": "http", "port": 8080, "protocol": "http", "routed": true}, ...]
    ports                      jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(ports) = 'array'),
    sleep_enabled              boolean     NOT NULL DEFAULT false,
    sleep_idle_window_seconds  integer     NOT NULL DEFAULT 1800 CHECK (sleep_idle_window_seconds > 0),
    -- This app's data key, wrapped by the KEK. Deleted with the row (crypto-shredding).
    dek_wrapped                bytea       NOT NULL,
    dek_nonce                  bytea       NOT NULL CHECK (length(dek_nonce) = 24),
    dek_kek_id                 text        NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, org_id) REFERENCES workspaces (id, org_id) ON DELETE CASCADE,
    UNIQUE (workspace_id, name),
    -- Target of grpc services' composite key (the host is copied there, kept in step).
    UNIQUE (id, host)
);
-- One app per host + path prefix on the platform domain.
CREATE UNIQUE INDEX apps_route_uniq ON apps (host, path_prefix);
CREATE INDEX apps_org_idx ON apps (org_id, id);
CREATE INDEX apps_workspace_idx ON apps (workspace_id, id);

-- gRPC services an app serves on its host; a service name is unique per domain (host).
CREATE TABLE app_grpc_services (
    app_id      bigint NOT NULL,
    host        text   NOT NULL,
    service     text   NOT NULL CHECK (service ~ '^[A-Za-z_][A-Za-z0-9_.]{0,254}$'),
    PRIMARY KEY (app_id, service),
    FOREIGN KEY (app_id, host) REFERENCES apps (id, host) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX app_grpc_services_domain_uniq ON app_grpc_services (host, service);

-- Every change of spec, image, env, scale or sleep state is a new row. The newest row
-- (highest id) of an app is its intended state; the revision the active deployment
-- points at is what the cluster should run. Neither is copied into `apps`.
CREATE TABLE app_revisions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id        bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    -- The resolved spec (spec::ResolvedSpec as JSON); env values are never in here.
    spec          jsonb       NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    image_digest  text        NOT NULL CHECK (image_digest ~ '^sha256:[0-9a-f]{64}$'),
    replicas      integer     NOT NULL CHECK (replicas >= 0),
    asleep        boolean     NOT NULL DEFAULT false,
    -- What changed: deploy, env, scale, sleep, wake, rollback, ...
    cause         text        NOT NULL CHECK (cause ~ '^[a-z][a-z0-9_]*$'),
    created_by    bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, app_id)
);
CREATE INDEX app_revisions_app_idx ON app_revisions (app_id, id DESC);
-- The registry janitor protects digests that revisions use.
CREATE INDEX app_revisions_digest_idx ON app_revisions (image_digest);

-- Env values of a revision, each sealed with the app's DEK; AD = app id + name.
CREATE TABLE app_revision_env (
    revision_id  bigint NOT NULL REFERENCES app_revisions (id) ON DELETE CASCADE,
    name         text   NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,254}$'),
    nonce        bytea  NOT NULL CHECK (length(nonce) = 24),
    ciphertext   bytea  NOT NULL,
    PRIMARY KEY (revision_id, name)
);

CREATE TABLE deployments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id        bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    revision_id   bigint      NOT NULL,
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'applying', 'ready', 'failed', 'superseded')),
    reason        text        CHECK (reason ~ '^[a-z][a-z0-9_]*$'),
    message       text,
    -- The objects this deployment applied ([{apiVersion, kind, namespace, name}, ...]),
    -- what the next deployment prunes against.
    inventory     jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(inventory) = 'array'),
    active        boolean     NOT NULL DEFAULT false,
    created_by    bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    -- The revision must be one of this app's.
    FOREIGN KEY (revision_id, app_id) REFERENCES app_revisions (id, app_id),
    CHECK (NOT active OR status = 'ready')
);
-- Exactly one active deployment per app.
CREATE UNIQUE INDEX deployments_one_active_per_app ON deployments (app_id) WHERE active;
CREATE INDEX deployments_app_idx ON deployments (app_id, id DESC);
CREATE INDEX deployments_revision_idx ON deployments (revision_id);
-- Work queue and stuck-deploy checks.
CREATE INDEX deployments_unfinished_idx ON deployments (created_at) WHERE status IN ('pending', 'applying');
-- /status: average deploy duration over a recent window.
CREATE INDEX deployments_finished_idx ON deployments (finished_at) WHERE finished_at IS NOT NULL;

-- loco's own push records: the janitor orders by these, not by registry timestamps.
CREATE TABLE images (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id            bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- Kept when the app goes, so the janitor can still collect its images.
    app_id            bigint      REFERENCES apps (id) ON DELETE SET NULL,
    repository        text        NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
    tag               text        NOT NULL CHECK (tag ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'),
    digest            text        NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    size_bytes        bigint      NOT NULL CHECK (size_bytes >= 0),
    pushed_at         timestamptz NOT NULL,
    last_deployed_at  timestamptz,
    UNIQUE (repository, tag)
);
CREATE INDEX images_org_pushed_idx ON images (org_id, pushed_at DESC);
CREATE INDEX images_app_pushed_idx ON images (app_id, pushed_at DESC) WHERE app_id IS NOT NULL;
CREATE INDEX images_repository_pushed_idx ON images (repository, pushed_at DESC);
CREATE INDEX images_digest_idx ON images (digest);

CREATE TABLE snapshots (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id      bigint      NOT NULL REFERENCES clusters (id),
    s3_key          text        NOT NULL UNIQUE,
    -- pg_current_wal_lsn() when the database dump was taken.
    postgres_lsn    pg_lsn,
    -- {"namespace/kind/name": "resourceVersion", ...} of the objects captured.
    manifest        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(manifest) = 'object'),
    status          text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed')),
    reason          text        CHECK (reason ~ '^[a-z][a-z0-9_]*$'),
    size_bytes      bigint      CHECK (size_bytes >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX snapshots_cluster_created_idx ON snapshots (cluster_id, created_at DESC);

-- Last traffic seen per route, for the sleeper. Missing means unknown, never idle.
CREATE TABLE activity (
    app_id        bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    host          text        NOT NULL,
    path_prefix   text        NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    -- Where the observation came from: prometheus, reviver, ...
    source        text        NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]*$'),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, host, path_prefix)
);
CREATE INDEX activity_last_seen_idx ON activity (last_seen_at);

-- Tokens for non-interactive use (`loco deploy --non-interactive --token`): only the
-- SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Narrows the token to one workspace when set.
    workspace_id  bigint      REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_sha256  bytea       NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    scopes        text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    expires_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_tokens_org_idx ON api_tokens (org_id, id DESC);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
CREATE INDEX api_tokens_expires_idx ON api_tokens (expires_at);

-- loco sessions: short-lived access, refreshed with a token stored only as its SHA-256.
-- The identity provider's token is never stored.
CREATE TABLE sessions (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id               bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_sha256  bytea       NOT NULL UNIQUE CHECK (length(refresh_token_sha256) = 32),
    expires_at            timestamptz NOT NULL,
    last_refreshed_at     timestamptz,
    revoked_at            timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_idx ON sessions (user_id, id DESC);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- The audit trail. workspace/app/deployment are plain ids, not foreign keys: the event
-- that records a deletion must outlive the deleted rows. Deleting an org removes its trail.
CREATE TABLE events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    workspace_id   bigint,
    app_id         bigint,
    deployment_id  bigint,
    -- Who: "user:<id>", "token:<id>" or "system:<component>".
    actor          text        NOT NULL CHECK (actor ~ '^(user|token|system):[a-z0-9_-]{1,64}$'),
    reason         text        NOT NULL CHECK (reason ~ '^[a-z][a-z0-9_]*$'),
    message        text        NOT NULL CHECK (length(message) <= 4000),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_org_idx ON events (org_id, id DESC);
CREATE INDEX events_org_created_idx ON events (org_id, created_at DESC);
CREATE INDEX events_workspace_idx ON events (workspace_id, id DESC) WHERE workspace_id IS NOT NULL;
CREATE INDEX events_app_idx ON events (app_id, id DESC) WHERE app_id IS NOT NULL;
CREATE INDEX events_deployment_idx ON events (deployment_id, id DESC) WHERE deployment_id IS NOT NULL;
-- Retention (gc) drops by age across all orgs.
CREATE INDEX events_created_idx ON events (created_at);
