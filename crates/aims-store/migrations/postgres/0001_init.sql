-- AIMS store schema, PostgreSQL flavour. migrations/sqlite/0001_init.sql is the same schema
-- in SQLite types; change both together (the conformance suite runs on both).
-- Times are Unix seconds. JSONB columns hold arrays of strings.

-- Global change counters. `entries` orders every write to registration entries; writers
-- increment it inside their transaction and hold its row lock until commit, so its order
-- is the commit order across all nodes.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('entries', 0);

-- Registration entries. The whole entry, selectors included, is one row, so it is written
-- and read atomically. identity_key is SHA-256 over (spiffe_id, sorted selectors): at most
-- one entry per pair (a hash keeps the unique index within PostgreSQL's B-tree row limit).
CREATE TABLE entries (
    id             TEXT PRIMARY KEY CHECK (length(id) = 32),
    spiffe_id      TEXT NOT NULL,
    selectors      JSONB NOT NULL,
    identity_key   TEXT NOT NULL UNIQUE,
    x509_ttl       BIGINT NOT NULL,
    jwt_ttl        BIGINT NOT NULL,
    wit_ttl        BIGINT NOT NULL,
    dns_names      JSONB NOT NULL,
    hint           TEXT,
    federates_with JSONB NOT NULL,
    parent_id      TEXT,
    admin          BOOLEAN NOT NULL,
    revision       BIGINT NOT NULL CHECK (revision >= 1),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    change_seq     BIGINT NOT NULL
);
CREATE INDEX entries_by_change_seq ON entries (change_seq);
CREATE INDEX entries_by_spiffe_id ON entries (spiffe_id);

-- Deleted entries, so caches on other nodes learn about deletions.
CREATE TABLE entry_tombstones (
    id         TEXT PRIMARY KEY,
    change_seq BIGINT NOT NULL
);
CREATE INDEX entry_tombstones_by_change_seq ON entry_tombstones (change_seq);

-- Signing keys (X.509 CA, JWT-SVID, WIT-SVID) with their rotation state. At most one
-- `current` and one `next` key per kind.
CREATE TABLE signing_keys (
    kind       TEXT NOT NULL CHECK (kind IN ('x509_ca', 'jwt_svid', 'wit_svid')),
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    pkcs8      BYTEA NOT NULL,
    cert_chain JSONB NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),
    not_before BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, kid)
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (kind) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (kind) WHERE state = 'next';

-- Bundles of federated trust domains, the document kept exactly as received (TEXT, not
-- JSONB, which would normalise it).
CREATE TABLE bundles (
    trust_domain    TEXT PRIMARY KEY,
    bundle          TEXT NOT NULL,
    sequence_number BIGINT NOT NULL CHECK (sequence_number >= 0),
    refresh_hint    BIGINT,
    endpoint_url    TEXT,
    updated_at      BIGINT NOT NULL
);

-- Single-use values (jti, nonces, authorization codes) until they expire.
CREATE TABLE used_once (
    scope      TEXT NOT NULL,
    item       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, item)
);
CREATE INDEX used_once_by_expiry ON used_once (expires_at);
