//! The one error type of the store.

/// Why a store operation failed.
///
/// The messages name the record and the rule, never key material. [`StoreError::Backend`]
/// carries the database driver's message: log it, do not send it to a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The write clashes with stored state: a unique key is taken, the expected revision
    /// is stale, or a bundle's sequence number went backwards.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input breaks a rule (bad identifier, invalid entry, empty key, bad URL).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A stored row does not decode into its domain type (edited by hand, or a bug).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database failed (connection, I/O, migration, lock timeout).
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(what.to_string())
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => Self::Conflict(db.message().to_owned()),
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                    Self::Invalid(db.message().to_owned())
                }
                _ => Self::Backend(e.to_string()),
            },
            sqlx::Error::RowNotFound => Self::NotFound("row".to_owned()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Backend(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Backend(format!("migration: {e}"))
    }
}
