-- AIMS store schema 0003, SQLite flavour: the authorization endpoint's browser state.
-- migrations/postgres/0003_browser_state.sql is the same schema in PostgreSQL types; change
-- both together (the conformance suite runs on both). Times are Unix seconds.
--
-- * oauth_browser_state: login sessions and authorization requests waiting for login and
--   consent, so that every node sharing the database serves every step of a login (no
--   sticky sessions), and failed-login counts by user name, so that every node counts
--   every failure. Keyed by a hash of the cookie, request id or user name (the store never
--   sees them); `binding` is the hash of the session a pending request belongs to; `data` a
--   JSON object defined by aims-server, kept exactly as written.

CREATE TABLE oauth_browser_state (
    kind       TEXT NOT NULL CHECK (kind IN ('session', 'pending_request', 'login_failures')),
    handle     TEXT NOT NULL CHECK (length(handle) BETWEEN 16 AND 128),
    binding    TEXT CHECK (binding IS NULL OR length(binding) BETWEEN 16 AND 128),
    expires_at INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (kind, handle)
) STRICT;
CREATE INDEX oauth_browser_state_by_expiry ON oauth_browser_state (expires_at);
