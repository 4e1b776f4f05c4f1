-- Correctness of the deploy queue under concurrency and failure (issue 14), and what a
-- rebuild needs from the database.
--
-- The intended state of an app is its newest revision that did not fail (queued or
-- applied): every change builds on it (db/src/revisions.rs `intended`). A failed
-- deployment's revision is not intent: its deploy put the cluster back on the previous one.

-- Fencing: every claim of a deployment increments its epoch; status writes and the
-- worker's cluster writes carry the epoch they were claimed with, so a worker whose lease
-- was taken over can neither finish the deployment nor keep applying it. `attempts`
-- counts claims; after the configured cap the deployment fails `attempts_exhausted`.
ALTER TABLE deployments
    ADD COLUMN lease_epoch bigint  NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- Set when an app's deletion starts: from then on none of its deployments is claimed or
-- resumed (the deletion fences the app's queue), so nothing re-creates its namespace.
ALTER TABLE apps ADD COLUMN deleting_since timestamptz;

-- The render settings (gateway, reviver, LOCO_VERSION, ...) an installation renders a
-- cluster's apps with, one row per change; the newest row of a cluster is in force.
-- `loco-api serve` flags only seed the first row, so a rebuild renders byte for byte what
-- was last applied, whatever flags the rebuilding process started with.
CREATE TABLE cluster_render_settings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id  bigint      NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    settings    jsonb       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    -- Who wrote it: serve_flags (seeded at start-up), operator, ...
    source      text        NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]*$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cluster_render_settings_cluster_idx ON cluster_render_settings (cluster_id, id DESC);

-- The resurrector lists every app of one cluster with its active deployment.
CREATE INDEX deployments_active_idx ON deployments (app_id) INCLUDE (revision_id) WHERE active;
