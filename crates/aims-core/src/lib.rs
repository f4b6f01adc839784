//! Domain types shared by every AIMS crate: workload identifiers and the clock.
//!
//! This crate does no I/O and holds no cryptography, so it is cheap to depend on and
//! easy to audit. Identifiers are *parsed* newtypes: holding a [`SpiffeId`] proves the
//! string obeyed every rule of SPIFFE-ID section 2.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod entry;
pub mod gate;
pub mod id;

pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use entry::{EntryError, RegistrationEntry, Selector, SelectorSet};
pub use gate::RateGate;
pub use id::{IdError, IdScheme, SpiffeId, SpiffeIdPattern, TrustDomain, WorkloadId};
