//! Workload identifiers: SPIFFE IDs (SPIFFE-ID section 2) and WIMSE Workload Identifiers
//! (draft-ietf-wimse-identifier).
//!
//! Every type here is a parsed newtype: a value exists only if its string obeyed every rule,
//! so code that receives a [`SpiffeId`] never has to check it again.
//!
//! # Rules
//!
//! The rules are those of SPIFFE-ID section 2 as go-spiffe enforces them, and the error
//! messages ([`IdError`]'s `Display`) are go-spiffe's, word for word:
//!
//! * the scheme is exactly `spiffe` (or `wimse` for a [`WorkloadId`]), followed by `://`;
//! * the trust domain is non-empty, at most [`MAX_TRUST_DOMAIN_LEN`] bytes, and made only of
//!   `a-z 0-9 . - _`, so userinfo (`@`), ports (`:`), percent-encoding (`%`) and IPv6
//!   literals (`[`) are all rejected; IPv4 dotted quads pass;
//! * the path is empty (the trust domain's root ID) or a sequence of `/segment`, each segment
//!   non-empty, not `.` or `..`, and made only of `a-z A-Z 0-9 . - _`; so no trailing slash,
//!   no query (`?`) and no fragment (`#`).
//!
//! # Decisions
//!
//! * **Case.** SPIFFE-ID says the scheme and trust domain are case-insensitive, but go-spiffe
//!   rejects `SPIFFE://` and upper-case trust domain letters. We follow go-spiffe on parse
//!   as well as on generation: an accepted string is therefore already canonical, `as_str()`
//!   returns exactly the input, and equality is plain byte equality on the complete URI, as
//!   the WIMSE identifier draft requires. (rust-spiffe 0.19 instead lower-cases.)
//! * **Length.** Both specifications say implementations MUST accept identifiers of up to
//!   2048 bytes and SHOULD NOT generate longer ones. We accept exactly up to
//!   [`MAX_ID_LEN`] bytes and reject anything longer with [`IdError::TooLong`], on parse as
//!   on generation: a longer identifier already breaks the SHOULD NOT, and the cap bounds the
//!   memory and log space an attacker-supplied identifier can take. The go-spiffe vectors
//!   contain no identifier longer than 44 bytes, so the cap does not change their outcome.
//! * **Trust domain length.** SPIFFE-ID 2.1 caps trust domains at 255 bytes; go-spiffe does
//!   not check it, we do ([`IdError::TrustDomainTooLong`]).
//! * **Error order.** When a string breaks several rules, the error reported is the one
//!   go-spiffe would report (it scans left to right), except that the length limits, which
//!   go-spiffe lacks, are checked first for the whole identifier and last for the trust
//!   domain.
//!
//! # Cost
//!
//! Parsing is a single left-to-right pass over the bytes. Parsing from `&str` allocates
//! exactly one `String` (the value stored); `TryFrom<String>` and deserialisation reuse the
//! given buffer. A [`SpiffeId`] stores its trust domain as offsets into that one buffer.
#![deny(clippy::indexing_slicing, clippy::string_slice)]

mod error;
mod pattern;
mod rules;
mod spiffe;
mod trust_domain;
mod workload;

#[cfg(test)]
mod tests;

pub use error::IdError;
pub use pattern::SpiffeIdPattern;
pub use spiffe::SpiffeId;
pub use trust_domain::TrustDomain;
pub use workload::{IdScheme, WorkloadId};

/// The longest identifier, in bytes, that is accepted or generated (SPIFFE-ID section 2.3,
/// draft-ietf-wimse-identifier): the MUST-support floor, also used as our ceiling.
pub const MAX_ID_LEN: usize = 2048;

/// The longest trust domain name, in bytes (SPIFFE-ID section 2.1).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Implements the traits shared by the string-backed identifier types: `Debug` (the string
/// in a tuple), `Display`, `AsRef<str>`, equality, ordering and hashing on `as_str()`,
/// `FromStr`, `TryFrom<String>`, `TryFrom<&str>` and serde as a plain string. `$what` names
/// the type in deserialisation errors.
///
/// The type must provide `as_str(&self) -> &str`, `from_str_checked(&str)` and
/// `from_string_checked(String)`, both returning `Result<Self, IdError>`.
macro_rules! impl_string_type {
    ($ty:ident, $what:literal) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(&self.as_str())
                    .finish()
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $ty {}

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<::std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> ::std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl ::std::hash::Hash for $ty {
            fn hash<H: ::std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::id::IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_str_checked(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::id::IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::from_string_checked(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::id::IdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::from_str_checked(s)
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::from_string_checked(s).map_err(|e| {
                    <D::Error as ::serde::de::Error>::custom(format_args!(
                        concat!("invalid ", $what, ": {}"),
                        e
                    ))
                })
            }
        }
    };
}
use impl_string_type;
