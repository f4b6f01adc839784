//! Change notification: one counter that moves whenever entries, bundles or keys change.

use std::sync::Arc;

use tokio::sync::watch;

/// A cheap-to-clone change signal (a `tokio::sync::watch` of a counter).
#[derive(Debug, Clone)]
pub struct Changes(Arc<watch::Sender<u64>>);

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    /// A new signal at 0.
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    /// Announces a change to every subscriber.
    pub fn bump(&self) {
        self.0.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// The current counter value.
    pub fn value(&self) -> u64 {
        *self.0.borrow()
    }
}
