//! The in-memory entry cache: a snapshot of every registration entry, kept in step with
//! the store's change sequence.
//!
//! Reads (attestation matching, admin checks) never touch the database: they take the
//! current [`Snapshot`] (an `Arc`, swapped whole). [`EntryCache::refresh`] asks the store
//! for the changes after the snapshot's position and applies them; the server calls it
//! after each of its own writes and on a timer, so writes made by other nodes sharing the
//! database arrive within one poll interval. Subscribers are notified when the snapshot
//! changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use aims_core::{RegistrationEntry, Selector, SelectorSet, SpiffeId};
use aims_store::{EntryChange, Store, StoreError};

use crate::notify::Changes;

/// Entries by id. Ids and entries are shared (`Arc`) between successive snapshots, so a
/// refresh copies pointers, not entries.
type EntryMap = BTreeMap<Arc<str>, Arc<RegistrationEntry>>;

/// Every entry at one position of the change sequence.
#[derive(Debug, Default)]
pub struct Snapshot {
    seq: u64,
    entries: EntryMap,
    /// Built on the first [`Snapshot::matching`] call, so a burst of writes does not
    /// rebuild it once per write.
    index: OnceLock<SelectorIndex>,
}

/// Each entry filed under exactly one of its selectors: the one the fewest entries
/// have. An entry matches a caller only if all its selectors are the caller's, so in
/// particular the one it is filed under: looking up the caller's selectors finds every
/// candidate, each once, and usually only a handful of entries are checked instead of
/// all of them.
#[derive(Debug, Default)]
struct SelectorIndex {
    by_selector: HashMap<Selector, Vec<Arc<RegistrationEntry>>>,
    /// Entries without selectors. They cannot be stored (validated on write), but if one
    /// were, it would match every caller, as [`RegistrationEntry::matches`] says.
    unfiled: Vec<Arc<RegistrationEntry>>,
}

impl SelectorIndex {
    fn build(entries: &EntryMap) -> Self {
        let mut count: HashMap<&Selector, usize> = HashMap::new();
        for e in entries.values() {
            for s in &e.selectors {
                *count.entry(s).or_default() += 1;
            }
        }
        let mut by_selector: HashMap<Selector, Vec<Arc<RegistrationEntry>>> = HashMap::new();
        let mut unfiled = Vec::new();
        for e in entries.values() {
            let rarest = e
                .selectors
                .iter()
                .min_by_key(|s| count.get(*s).copied().unwrap_or(0));
            match rarest {
                Some(s) => by_selector
                    .entry(s.clone())
                    .or_default()
                    .push(Arc::clone(e)),
                None => unfiled.push(Arc::clone(e)),
            }
        }
        Self {
            by_selector,
            unfiled,
        }
    }
}

impl Snapshot {
    /// The change-sequence position this snapshot reflects.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&RegistrationEntry> {
        self.entries.get(id).map(|e| &**e)
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
        self.entries.values().map(|e| &**e)
    }

    /// The entries whose selectors are all in `selectors` (in no particular order).
    pub fn matching(&self, selectors: &SelectorSet) -> Vec<RegistrationEntry> {
        let index = self
            .index
            .get_or_init(|| SelectorIndex::build(&self.entries));
        selectors
            .iter()
            .filter_map(|s| index.by_selector.get(s))
            .flatten()
            .chain(&index.unfiled)
            .filter(|e| e.matches(selectors))
            .map(|e| (**e).clone())
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

    fn install(&self, mut entries: EntryMap, changes: Vec<EntryChange>, seq: u64) -> bool {
        let changed = !changes.is_empty();
        for change in changes {
            match change {
                EntryChange::Put { entry, .. } => {
                    entries.insert(Arc::from(entry.id.as_str()), Arc::new(entry));
                }
                EntryChange::Delete { id, .. } => {
                    entries.remove(id.as_str());
                }
            }
        }
        metrics::gauge!("aims_entries").set(entries.len() as f64);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot {
            seq,
            entries,
            index: OnceLock::new(),
        });
        if changed {
            self.changes.bump();
        }
        changed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(id: &str, selectors: &[&str]) -> RegistrationEntry {
        RegistrationEntry {
            id: id.into(),
            spiffe_id: SpiffeId::parse(&format!("spiffe://example.org/{id}")).unwrap(),
            selectors: selectors
                .iter()
                .map(|s| Selector::parse(s).unwrap())
                .collect(),
            x509_ttl: 3600,
            jwt_ttl: 300,
            wit_ttl: 3600,
            dns_names: vec![],
            hint: None,
            federates_with: Default::default(),
            parent_id: None,
            admin: false,
            revision: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn snapshot(entries: Vec<RegistrationEntry>) -> Snapshot {
        Snapshot {
            seq: 1,
            entries: entries
                .into_iter()
                .map(|e| (Arc::from(e.id.as_str()), Arc::new(e)))
                .collect(),
            index: OnceLock::new(),
        }
    }

    fn caller(selectors: &[&str]) -> SelectorSet {
        selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect()
    }

    fn ids(mut v: Vec<RegistrationEntry>) -> Vec<String> {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter().map(|e| e.id).collect()
    }

    /// The index answers exactly what checking every entry answers.
    #[test]
    fn indexed_matching_equals_a_full_scan() {
        let mut entries = vec![
            entry("shared-uid-a", &["unix:uid:1", "unix:sha256:aa"]),
            entry("shared-uid-b", &["unix:uid:1", "unix:sha256:bb"]),
            entry("uid-only", &["unix:uid:1"]),
            entry("uid-and-gid", &["unix:uid:1", "unix:gid:7"]),
            entry("other-user", &["unix:uid:2", "unix:sha256:aa"]),
            entry("three", &["unix:uid:1", "unix:gid:7", "unix:path:/bin/x"]),
        ];
        for i in 0..50 {
            entries.push(entry(
                &format!("bulk-{i:02}"),
                &["unix:uid:1", &format!("unix:sha256:{i:02x}")],
            ));
        }
        let snap = snapshot(entries.clone());
        let callers = [
            caller(&["unix:uid:1", "unix:gid:7", "unix:sha256:aa"]),
            caller(&["unix:uid:1", "unix:sha256:bb", "unix:path:/bin/x"]),
            caller(&[
                "unix:uid:1",
                "unix:gid:7",
                "unix:path:/bin/x",
                "unix:sha256:2a",
            ]),
            caller(&["unix:uid:2", "unix:sha256:aa"]),
            caller(&["unix:uid:3"]),
            caller(&[]),
        ];
        for c in &callers {
            let scan: Vec<RegistrationEntry> =
                entries.iter().filter(|e| e.matches(c)).cloned().collect();
            assert_eq!(ids(snap.matching(c)), ids(scan), "caller {c:?}");
        }
        assert_eq!(
            ids(snap.matching(&callers[0])),
            ["shared-uid-a", "uid-and-gid", "uid-only"]
        );
    }

    #[test]
    fn empty_snapshot_matches_nothing() {
        let snap = Snapshot::default();
        assert!(snap.matching(&caller(&["unix:uid:1"])).is_empty());
    }
}
