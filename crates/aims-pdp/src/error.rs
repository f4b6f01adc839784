//! The crate's one error enum.

use std::path::PathBuf;

/// Where in a source file something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The source name (a file path, or the name given with a string source).
    pub source: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}", self.source),
            (Some(l), None) => write!(f, "{}:{l}", self.source),
            _ => f.write_str(&self.source),
        }
    }
}

/// Everything that can go wrong in the PDP: loading a policy set, or turning a request
/// into a Cedar request. (A deny is not an error.)
#[derive(Debug, thiserror::Error)]
pub enum PdpError {
    /// A file or directory could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The policy directory has no `*.cedarschema` file, or more than one.
    #[error("{0}")]
    SchemaFile(String),
    /// The schema does not parse.
    #[error("{location}: invalid schema: {message}")]
    Schema {
        /// Where.
        location: Location,
        /// What.
        message: String,
    },
    /// A policy file does not parse.
    #[error("{location}: policy syntax error: {message}")]
    PolicySyntax {
        /// Where.
        location: Location,
        /// What.
        message: String,
    },
    /// Policy templates are not supported (link them into static policies first).
    #[error("{location}: policy templates are not supported")]
    Template {
        /// Where.
        location: Location,
    },
    /// Two policies share an id.
    #[error("{location}: duplicate policy id `{id}`")]
    DuplicatePolicyId {
        /// Where the second one is.
        location: Location,
        /// The id.
        id: String,
    },
    /// A policy does not validate against the schema.
    #[error("{location}: policy `{policy}` does not validate against the schema: {message}")]
    Validation {
        /// Where.
        location: Location,
        /// The policy id.
        policy: String,
        /// What.
        message: String,
    },
    /// The entity data does not parse or does not conform to the schema.
    #[error("{source_name}: invalid entity data: {message}")]
    Entities {
        /// The source name.
        source_name: String,
        /// What.
        message: String,
    },
    /// A request field is absent (wire requests only).
    #[error("missing `{0}`")]
    MissingField(&'static str),
    /// A subject or resource type is not a valid Cedar entity type name.
    #[error("invalid entity type `{0}`")]
    InvalidEntityType(String),
    /// A property's value does not fit the type the schema declares for the attribute.
    #[error("invalid properties for `{entity}`: {message}")]
    InvalidProperty {
        /// The entity (`type::"id"`).
        entity: String,
        /// What.
        message: String,
    },
    /// The context cannot be turned into a Cedar context.
    #[error("invalid context: {0}")]
    InvalidContext(String),
    /// A malformed request (wrong JSON shape, unknown option value, bad page token).
    #[error("{0}")]
    InvalidRequest(String),
}

impl PdpError {
    /// Whether the error comes from the request (400) rather than from loading policies.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Self::MissingField(_)
                | Self::InvalidEntityType(_)
                | Self::InvalidProperty { .. }
                | Self::InvalidContext(_)
                | Self::InvalidRequest(_)
        )
    }
}
