//! WIT, WPT and DPoP vectors.
