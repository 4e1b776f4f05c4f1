-- Logins (GitHub OAuth, Google OpenID Connect) and loco sessions.
--
-- A session row is one login's "family": its current short-lived access token and its
-- current refresh token, both stored only as SHA-256. Refreshing rotates both; the
-- refresh token it replaced is remembered (as a hash) so that presenting it again, which
-- only a thief or a confused client would do, revokes the whole family.
ALTER TABLE sessions
    ADD COLUMN access_token_sha256 bytea UNIQUE CHECK (length(access_token_sha256) = 32),
    ADD COLUMN access_expires_at   timestamptz;

CREATE TABLE session_rotated_refresh_tokens (
    refresh_token_sha256  bytea       PRIMARY KEY CHECK (length(refresh_token_sha256) = 32),
    session_id            bigint      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    rotated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_rotated_refresh_tokens_session_idx
    ON session_rotated_refresh_tokens (session_id);

-- A login in progress: the OAuth `state` of a browser login or the loco device id of a
-- CLI login, stored as SHA-256. What must stay secret until the login completes (PKCE
-- verifier, OIDC nonce, GitHub's device code) is sealed under a key derived from the
-- handle the client holds, so a database dump alone cannot finish someone's login.
-- `binding_sha256` ties a browser login to the cookie set when it started (login CSRF).
CREATE TABLE login_flows (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle_sha256     bytea       NOT NULL UNIQUE CHECK (length(handle_sha256) = 32),
    provider          text        NOT NULL CHECK (provider IN ('github', 'google')),
    kind              text        NOT NULL CHECK (kind IN ('web', 'device')),
    binding_sha256    bytea       CHECK (length(binding_sha256) = 32),
    sealed            bytea       NOT NULL,
    interval_seconds  integer     NOT NULL DEFAULT 5 CHECK (interval_seconds BETWEEN 1 AND 3600),
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_flows_expires_idx ON login_flows (expires_at);
