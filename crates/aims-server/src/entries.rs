//! The in-memory entry cache: a snapshot of every registration entry, kept in step with
//! the store's change sequence.
//!
//! Reads (attestation matching, admin checks) never touch the database: they take the
//! current [`Snapshot`] (an `Arc`, swapped whole). [`EntryCache::refresh`] asks the store
//! for the changes after the snapshot's position and applies them; the server calls it
//! after each of its own writes and on a timer, so writes made by other nodes sharing the
//! database arrive within one poll interval. Subscribers are notified when the snapshot
//! changes.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use aims_core::{RegistrationEntry, SelectorSet, SpiffeId};
use aims_store::{EntryChange, Store, StoreError};

use crate::notify::Changes;

/// Every entry at one position of the change sequence.
#[derive(Debug, Default)]
pub struct Snapshot {
    seq: u64,
    entries: BTreeMap<String, RegistrationEntry>,
}

impl Snapshot {
    /// The change-sequence position this snapshot reflects.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&RegistrationEntry> {
        self.entries.get(id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, by id.
    pub fn iter(&self) -> impl Iterator<Item = &RegistrationEntry> {
        self.entries.values()
    }

    /// The entries whose selectors are all in `selectors`.
    pub fn matching(&self, selectors: &SelectorSet) -> Vec<RegistrationEntry> {
        self.entries
            .values()
            .filter(|e| e.matches(selectors))
            .cloned()
            .collect()
    }

    /// Whether some entry for `id` has `admin = true`.
    pub fn is_admin(&self, id: &SpiffeId) -> bool {
        self.entries.values().any(|e| e.admin && &e.spiffe_id == id)
    }
}

/// The cache.
pub struct EntryCache {
    store: Store,
    snapshot: RwLock<Arc<Snapshot>>,
    refresh_lock: tokio::sync::Mutex<()>,
    changes: Changes,
}

impl std::fmt::Debug for EntryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("EntryCache")
            .field("seq", &s.seq)
            .field("entries", &s.entries.len())
            .finish()
    }
}

impl EntryCache {
    /// An empty cache over `store`; call [`EntryCache::refresh`] to load it.
    pub fn new(store: Store, changes: Changes) -> Self {
        Self {
            store,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refresh_lock: tokio::sync::Mutex::new(()),
            changes,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies the store's changes since the snapshot; returns whether anything changed.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let _guard = self.refresh_lock.lock().await;
        let old = self.snapshot();
        let delta = self.store.entry_changes_since(old.seq).await?;
        if delta.seq < old.seq {
            // The database was replaced: start over.
            tracing::warn!(
                cached = old.seq,
                stored = delta.seq,
                "entry change sequence went backwards; reloading every entry"
            );
            let all = self.store.entry_changes_since(0).await?;
            return Ok(self.install(BTreeMap::new(), all.changes, all.seq));
        }
        if delta.changes.is_empty() && delta.seq == old.seq {
            return Ok(false);
        }
        Ok(self.install(old.entries.clone(), delta.changes, delta.seq))
    }

    fn install(
        &self,
        mut entries: BTreeMap<String, RegistrationEntry>,
        changes: Vec<EntryChange>,
        seq: u64,
    ) -> bool {
        let changed = !changes.is_empty();
        for change in changes {
            match change {
                EntryChange::Put { entry, .. } => {
                    entries.insert(entry.id.clone(), entry);
                }
                EntryChange::Delete { id, .. } => {
                    entries.remove(&id);
                }
            }
        }
        metrics::gauge!("aims_entries").set(entries.len() as f64);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot { seq, entries });
        if changed {
            self.changes.bump();
        }
        changed
    }
}
