-- The platform layer of a cluster (issue 16): the chart version and values (never
-- secrets: those are references to existing Secrets) that `loco-api platform apply`
-- installs, one row per change like app revisions; the newest row of a cluster is in
-- force, so a rebuild reinstalls exactly what was last recorded.
CREATE TABLE platform_releases (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id     bigint      NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    chart_version  text        NOT NULL CHECK (chart_version ~ '^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$'),
    "values"       jsonb       NOT NULL CHECK (jsonb_typeof("values") = 'object'),
    -- Who recorded it: an operator's login or name, or a system actor (resurrector, ...).
    set_by         text        NOT NULL CHECK (length(set_by) BETWEEN 1 AND 200),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_releases_cluster_idx ON platform_releases (cluster_id, id DESC);
