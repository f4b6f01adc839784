-- AIMS store schema 0002, SQLite flavour: storage for the OAuth 2.0 authorization server.
-- migrations/postgres/0002_oauth.sql is the same schema in PostgreSQL types; change both
-- together (the conformance suite runs on both). Times are Unix seconds.
--
-- * oauth_clients: one JSON document per client (defined by aims-oauth), with a revision.
-- * oauth_grants: authorization codes, refresh and opaque access tokens, pushed request
--   URIs and device codes, keyed by a hash of the secret (the store never sees secrets);
--   consumed at most once, revoked by handle, family or client.
-- * users: the built-in user store (PHC password hash, JSON attributes).
-- * signing_keys: the kind `oauth_token` is allowed. SQLite cannot alter a CHECK
--   constraint, so the table is rebuilt (same columns, rows and partial unique indexes).
-- Document columns are TEXT holding a JSON object, kept exactly as written. Identifiers
-- compare and sort bytewise (SQLite's BINARY collation; "C" on PostgreSQL).

CREATE TABLE oauth_clients (
    client_id  TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_grants (
    handle     TEXT PRIMARY KEY NOT NULL CHECK (length(handle) BETWEEN 16 AND 128),
    kind       TEXT NOT NULL CHECK (kind IN ('authorization_code', 'refresh_token',
                   'access_token', 'pushed_request', 'device_code')),
    client_id  TEXT NOT NULL,
    subject    TEXT,
    family     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'consumed', 'revoked')),
    data       TEXT NOT NULL
) STRICT;
CREATE INDEX oauth_grants_by_family ON oauth_grants (family);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id);
CREATE INDEX oauth_grants_by_expiry ON oauth_grants (expires_at);

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    attributes    TEXT NOT NULL,
    disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Rebuild signing_keys with the wider kind CHECK. The migration runs in one transaction:
-- a failure leaves the 0001 table as it was.
CREATE TABLE signing_keys_0002 (
    kind       TEXT NOT NULL CHECK (kind IN ('x509_ca', 'jwt_svid', 'wit_svid', 'oauth_token')),
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    pkcs8      BLOB NOT NULL,
    cert_chain TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, kid)
) STRICT;
INSERT INTO signing_keys_0002
    (kind, kid, alg, pkcs8, cert_chain, state, not_before, not_after, created_at)
    SELECT kind, kid, alg, pkcs8, cert_chain, state, not_before, not_after, created_at
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_0002 RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (kind) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (kind) WHERE state = 'next';
