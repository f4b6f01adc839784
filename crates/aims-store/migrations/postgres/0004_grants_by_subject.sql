-- AIMS store schema 0004, PostgreSQL flavour (the other flavour is the same statement).
-- Deleting a user revokes the grants issued for them (by subject) in the transaction that
-- deletes the user; without this index that revocation scans every grant while it holds
-- the write lock.

CREATE INDEX oauth_grants_by_subject ON oauth_grants (subject);
