-- Tenant boundaries the database enforces (issue 13): a host belongs to one workspace,
-- and an image record belongs to one org and app for good.

-- Hosts. The first app on a host claims it for its workspace (and so its org); apps of
-- other workspaces cannot add a path prefix on it, so no tenant takes another's traffic
-- through the gateway's longest-prefix match (gRPC service names are per host already,
-- so they follow the claim). The claim goes with the host's last app.
CREATE TABLE host_claims (
    host          text        PRIMARY KEY,
    org_id        bigint      NOT NULL,
    workspace_id  bigint      NOT NULL,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, org_id) REFERENCES workspaces (id, org_id) ON DELETE CASCADE,
    UNIQUE (host, workspace_id, org_id)
);
CREATE INDEX host_claims_workspace_idx ON host_claims (workspace_id);

-- Existing rows: the oldest app's workspace holds each host.
INSERT INTO host_claims (host, org_id, workspace_id)
SELECT DISTINCT ON (host) host, org_id, workspace_id FROM apps ORDER BY host, id;

CREATE FUNCTION apps_claim_host() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO host_claims (host, org_id, workspace_id)
    VALUES (NEW.host, NEW.org_id, NEW.workspace_id)
    ON CONFLICT (host) DO NOTHING;
    RETURN NEW;
END $$;

CREATE FUNCTION apps_release_host() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM host_claims c
     WHERE c.host = OLD.host
       AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.host = OLD.host);
    RETURN NULL;
END $$;

CREATE TRIGGER apps_claim_host BEFORE INSERT OR UPDATE OF host, workspace_id, org_id ON apps
    FOR EACH ROW EXECUTE FUNCTION apps_claim_host();
CREATE TRIGGER apps_release_host AFTER DELETE OR UPDATE OF host ON apps
    FOR EACH ROW EXECUTE FUNCTION apps_release_host();

-- The constraint itself: an app's host is claimed by the app's own workspace. NOT VALID
-- keeps rows written before this rule (two workspaces on one host) readable; every new
-- or changed row is checked.
ALTER TABLE apps ADD CONSTRAINT apps_host_claim_fkey
    FOREIGN KEY (host, workspace_id, org_id) REFERENCES host_claims (host, workspace_id, org_id)
    DEFERRABLE INITIALLY IMMEDIATE NOT VALID;

-- Images. One record per org, repository and tag: another org deploying the same
-- public image gets its own row and cannot rewrite this one. org_id never changes, and
-- app_id only goes from an app to NULL (the app was deleted), so gc and the janitor
-- read ownership from rows no tenant can rewrite.
ALTER TABLE images DROP CONSTRAINT images_repository_tag_key;
ALTER TABLE images ADD CONSTRAINT images_org_repository_tag_key UNIQUE (org_id, repository, tag);

CREATE FUNCTION images_owner_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.org_id <> OLD.org_id
       OR (NEW.app_id IS NOT NULL AND NEW.app_id IS DISTINCT FROM OLD.app_id) THEN
        RAISE EXCEPTION 'an image record never changes org or app (image %)', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'images_owner_fixed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER images_owner_is_fixed BEFORE UPDATE OF org_id, app_id ON images
    FOR EACH ROW EXECUTE FUNCTION images_owner_is_fixed();
