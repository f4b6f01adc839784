//! The token-key resolver over a live trust store lives in aims-pki; re-exported here,
//! where the guard's users have always found it.

pub use aims_pki::keys::{KeyUse, TrustStoreKeys};
