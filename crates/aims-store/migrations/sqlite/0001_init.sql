-- AIMS store schema, SQLite flavour. migrations/postgres/0001_init.sql is the same schema
-- in PostgreSQL types; change both together (the conformance suite runs on both).
-- Times are Unix seconds. JSON columns hold arrays of strings.

-- Global change counters. `entries` orders every write to registration entries; writers
-- increment it inside their transaction, so its order is the commit order.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;
INSERT INTO counters (name, value) VALUES ('entries', 0);

-- Registration entries. The whole entry, selectors included, is one row, so it is written
-- and read atomically. identity_key is SHA-256 over (spiffe_id, sorted selectors): at most
-- one entry per pair.
CREATE TABLE entries (
    id             TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 32),
    spiffe_id      TEXT NOT NULL,
    selectors      TEXT NOT NULL,
    identity_key   TEXT NOT NULL UNIQUE,
    x509_ttl       INTEGER NOT NULL,
    jwt_ttl        INTEGER NOT NULL,
    wit_ttl        INTEGER NOT NULL,
    dns_names      TEXT NOT NULL,
    hint           TEXT,
    federates_with TEXT NOT NULL,
    parent_id      TEXT,
    admin          INTEGER NOT NULL CHECK (admin IN (0, 1)),
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    change_seq     INTEGER NOT NULL
) STRICT;
CREATE INDEX entries_by_change_seq ON entries (change_seq);
CREATE INDEX entries_by_spiffe_id ON entries (spiffe_id);

-- Deleted entries, so caches on other nodes learn about deletions.
CREATE TABLE entry_tombstones (
    id         TEXT PRIMARY KEY NOT NULL,
    change_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX entry_tombstones_by_change_seq ON entry_tombstones (change_seq);

-- Signing keys (X.509 CA, JWT-SVID, WIT-SVID) with their rotation state. At most one
-- `current` and one `next` key per kind.
CREATE TABLE signing_keys (
    kind       TEXT NOT NULL CHECK (kind IN ('x509_ca', 'jwt_svid', 'wit_svid')),
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
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (kind) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (kind) WHERE state = 'next';

-- Bundles of federated trust domains, the document kept exactly as received.
CREATE TABLE bundles (
    trust_domain    TEXT PRIMARY KEY NOT NULL,
    bundle          TEXT NOT NULL,
    sequence_number INTEGER NOT NULL CHECK (sequence_number >= 0),
    refresh_hint    INTEGER,
    endpoint_url    TEXT,
    updated_at      INTEGER NOT NULL
) STRICT;

-- Single-use values (jti, nonces, authorization codes) until they expire.
CREATE TABLE used_once (
    scope      TEXT NOT NULL,
    item       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, item)
) STRICT;
CREATE INDEX used_once_by_expiry ON used_once (expires_at);
