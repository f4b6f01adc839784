-- AIMS store schema 0002, PostgreSQL flavour: storage for the OAuth 2.0 authorization
-- server. migrations/sqlite/0002_oauth.sql is the same schema in SQLite types; change both
-- together (the conformance suite runs on both). Times are Unix seconds.
--
-- * oauth_clients: one JSON document per client (defined by aims-oauth), with a revision.
-- * oauth_grants: authorization codes, refresh and opaque access tokens, pushed request
--   URIs and device codes, keyed by a hash of the secret (the store never sees secrets);
--   consumed at most once, revoked by handle, family or client.
-- * users: the built-in user store (PHC password hash, JSON attributes).
-- * signing_keys: the kind `oauth_token` is allowed (the column CHECK is replaced).
-- Document columns are TEXT (not JSONB, which would normalise them) holding a JSON object,
-- kept exactly as written. Identifiers use the "C" collation so they compare and sort
-- bytewise, as on SQLite, whatever the database's locale.

CREATE TABLE oauth_clients (
    client_id  TEXT COLLATE "C" PRIMARY KEY,
    document   TEXT NOT NULL,
    revision   BIGINT NOT NULL CHECK (revision >= 1),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE oauth_grants (
    handle     TEXT COLLATE "C" PRIMARY KEY CHECK (length(handle) BETWEEN 16 AND 128),
    kind       TEXT NOT NULL CHECK (kind IN ('authorization_code', 'refresh_token',
                   'access_token', 'pushed_request', 'device_code')),
    client_id  TEXT COLLATE "C" NOT NULL,
    subject    TEXT,
    family     TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'consumed', 'revoked')),
    data       TEXT NOT NULL
);
CREATE INDEX oauth_grants_by_family ON oauth_grants (family);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id);
CREATE INDEX oauth_grants_by_expiry ON oauth_grants (expires_at);

CREATE TABLE users (
    username      TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT NOT NULL,
    attributes    TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- 0001 declared the kind CHECK on the column, so PostgreSQL named it
-- signing_keys_kind_check. Both steps run in the migration's transaction.
ALTER TABLE signing_keys
    DROP CONSTRAINT signing_keys_kind_check,
    ADD CONSTRAINT signing_keys_kind_check
        CHECK (kind IN ('x509_ca', 'jwt_svid', 'wit_svid', 'oauth_token'));
