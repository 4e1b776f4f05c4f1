-- Per-org rate limits of deploys and app creation, shared by every loco-api replica.
--
-- One token bucket per (org, action): `tokens` as of `updated_at`; the refill up to the
-- burst is computed when the bucket is next used, so an idle org costs no writes. The
-- limits themselves (rate, burst) are loco-api flags, not rows: a changed flag applies
-- to every bucket at once.
CREATE TABLE rate_limit_buckets (
    org_id      bigint           NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    action      text             NOT NULL CHECK (action IN ('deploy', 'create_app')),
    tokens      double precision NOT NULL,
    updated_at  timestamptz      NOT NULL,
    PRIMARY KEY (org_id, action)
);
