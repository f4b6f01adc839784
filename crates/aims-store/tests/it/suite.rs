//! The conformance suite: every behaviour the server relies on, written once against
//! [`Store`] and run on every backend by `backends.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aims_core::{RegistrationEntry, Selector, SpiffeId, TrustDomain};
use aims_store::{
    BrowserStateKind, BundleRecord, ConsumeOutcome, EntryChange, GrantKind, GrantRecord,
    GrantState, KeyKind, KeyRecord, KeyState, NewGrant, OAuthClientRecord, Store, StoreError,
};
use zeroize::Zeroizing;

use crate::fixtures::Db;

const T0: i64 = 1_700_000_000;

pub fn entry(path: &str, selectors: &[&str]) -> RegistrationEntry {
    RegistrationEntry {
        id: String::new(),
        spiffe_id: SpiffeId::parse(&format!("spiffe://example.org/{path}")).unwrap(),
        selectors: selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        x509_ttl: 3600,
        jwt_ttl: 300,
        wit_ttl: 600,
        dns_names: vec![],
        hint: None,
        federates_with: BTreeSet::new(),
        parent_id: None,
        admin: false,
        revision: 0,
        created_at: 0,
        updated_at: 0,
    }
}

pub fn key(kind: KeyKind, kid: &str, state: KeyState) -> KeyRecord {
    KeyRecord {
        kind,
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        pkcs8: Zeroizing::new(format!("pkcs8-secret-of-{kid}").into_bytes()),
        cert_chain_der: vec![vec![0x30, 0x82, 1, 2], vec![0x30, 0x03, 0xff]],
        state,
        not_before: T0,
        not_after: T0 + 86_400,
        created_at: T0,
    }
}

fn bundle(td: &str, sequence: u64) -> BundleRecord {
    BundleRecord {
        trust_domain: TrustDomain::new(td).unwrap(),
        bundle_json: format!(r#"{{"keys":[],"spiffe_sequence":{sequence}}}"#),
        sequence,
        refresh_hint: Some(300),
        endpoint_url: Some(format!("https://{td}/bundle")),
        updated_at: T0 + i64::try_from(sequence % 1000).unwrap(),
    }
}

fn states(keys: &[KeyRecord]) -> Vec<(String, KeyState)> {
    keys.iter().map(|k| (k.kid.clone(), k.state)).collect()
}

fn s(kid: &str, state: KeyState) -> (String, KeyState) {
    (kid.to_owned(), state)
}

// ----- health -----

pub async fn ping_and_name(db: &Db) {
    db.store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&db.store.backend_name()));
    assert!(!format!("{:?}", db.store).contains("://"));
}

// ----- registration entries -----

pub async fn entry_crud(db: &Db) {
    let store = &db.store;
    let mut e = entry("agent/a", &["unix:uid:1000", "unix:sha256:ab"]);
    e.dns_names = vec!["a.example.org".into()];
    e.hint = Some("primary".into());
    e.federates_with
        .insert(TrustDomain::new("partner.test").unwrap());
    e.parent_id = Some(SpiffeId::parse("spiffe://example.org/node/n1").unwrap());
    e.admin = true;
    e.revision = 77; // ignored
    let created = store.create_entry(e.clone(), T0).await.unwrap();
    assert_eq!(created.id.len(), 32);
    assert!(
        created
            .id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(
        (created.revision, created.created_at, created.updated_at),
        (1, T0, T0)
    );
    assert_eq!(
        RegistrationEntry {
            id: created.id.clone(),
            revision: 1,
            created_at: T0,
            updated_at: T0,
            ..e
        },
        created
    );

    // Every field comes back as written.
    assert_eq!(store.get_entry(&created.id).await.unwrap(), created);
    assert_eq!(store.list_entries().await.unwrap(), vec![created.clone()]);

    // Update: revision + 1, created_at kept, updated_at moves, fields replaced.
    let mut changed = created.clone();
    changed.selectors = [Selector::parse("unix:uid:1001").unwrap()].into();
    changed.hint = None;
    changed.admin = false;
    changed.created_at = 5; // ignored
    let updated = store
        .update_entry(changed.clone(), 1, T0 + 10)
        .await
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.created_at, T0);
    assert_eq!(updated.updated_at, T0 + 10);
    assert_eq!(updated.selectors, changed.selectors);
    assert_eq!(updated.hint, None);
    assert_eq!(store.get_entry(&created.id).await.unwrap(), updated);

    // A caller-chosen id is kept.
    let mut fixed = entry("agent/b", &["unix:uid:2000"]);
    fixed.id = "0123456789abcdef0123456789abcdef".into();
    let b = store.create_entry(fixed, T0 + 1).await.unwrap();
    assert_eq!(b.id, "0123456789abcdef0123456789abcdef");
    let ids: Vec<String> = store
        .list_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![created.id.clone(), b.id.clone()]);

    // Delete, then everything about it is NotFound.
    store.delete_entry(&created.id).await.unwrap();
    assert!(matches!(
        store.get_entry(&created.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_entry(&created.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_entry(updated.clone(), 2, T0 + 20).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_entries().await.unwrap(), vec![b.clone()]);
    assert!(matches!(
        store.get_entry("no-such-id").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn entry_validation(db: &Db) {
    let store = &db.store;
    let mut bad_id = entry("agent/a", &["unix:uid:1"]);
    bad_id.id = "ABCDEF".into();
    assert!(matches!(
        store.create_entry(bad_id, T0).await,
        Err(StoreError::Invalid(_))
    ));
    let mut upper = entry("agent/a", &["unix:uid:1"]);
    upper.id = "0123456789ABCDEF0123456789ABCDEF".into();
    assert!(matches!(
        store.create_entry(upper, T0).await,
        Err(StoreError::Invalid(_))
    ));
    let no_selectors = entry("agent/a", &[]);
    assert!(matches!(
        store.create_entry(no_selectors, T0).await,
        Err(StoreError::Invalid(_))
    ));
    let mut zero_ttl = entry("agent/a", &["unix:uid:1"]);
    zero_ttl.x509_ttl = 0;
    assert!(matches!(
        store.create_entry(zero_ttl, T0).await,
        Err(StoreError::Invalid(_))
    ));

    // A NUL in the hint: PostgreSQL text cannot hold it, so neither backend takes it.
    let mut nul_hint = entry("agent/a", &["unix:uid:1"]);
    nul_hint.hint = Some("a\0b".into());
    assert!(matches!(
        store.create_entry(nul_hint, T0).await,
        Err(StoreError::Invalid(_))
    ));

    let ok = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), T0)
        .await
        .unwrap();
    let mut invalid_update = ok.clone();
    invalid_update.selectors.clear();
    assert!(matches!(
        store.update_entry(invalid_update, 1, T0).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.get_entry(&ok.id).await.unwrap(), ok);
    assert_eq!(store.entry_changes_since(0).await.unwrap().seq, 1);
}

pub async fn entry_uniqueness(db: &Db) {
    let store = &db.store;
    let a = store
        .create_entry(entry("agent/a", &["unix:uid:1", "unix:gid:2"]), T0)
        .await
        .unwrap();
    // Same SPIFFE ID and the same selector set (other order): conflict.
    let dup = entry("agent/a", &["unix:gid:2", "unix:uid:1"]);
    assert!(matches!(
        store.create_entry(dup, T0).await,
        Err(StoreError::Conflict(_))
    ));
    // Same SPIFFE ID with a different set, or the same set for another ID: fine.
    let subset = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), T0)
        .await
        .unwrap();
    store
        .create_entry(entry("agent/b", &["unix:uid:1", "unix:gid:2"]), T0)
        .await
        .unwrap();
    // The same id twice: conflict.
    let mut same_id = entry("agent/c", &["unix:uid:3"]);
    same_id.id = a.id.clone();
    assert!(matches!(
        store.create_entry(same_id, T0).await,
        Err(StoreError::Conflict(_))
    ));
    // An update into another entry's pair: conflict, and nothing changes.
    let mut clash = subset.clone();
    clash.selectors = a.selectors.clone();
    assert!(matches!(
        store.update_entry(clash, 1, T0 + 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_entry(&subset.id).await.unwrap(), subset);
    assert_eq!(store.list_entries().await.unwrap().len(), 3);
    // Deleting frees the pair.
    store.delete_entry(&a.id).await.unwrap();
    store
        .create_entry(entry("agent/a", &["unix:gid:2", "unix:uid:1"]), T0 + 2)
        .await
        .unwrap();
}

pub async fn entry_revision_conflict(db: &Db) {
    let store = &db.store;
    let e = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), T0)
        .await
        .unwrap();
    // Two writers read revision 1.
    let mut first = e.clone();
    first.jwt_ttl = 100;
    let mut second = e.clone();
    second.jwt_ttl = 200;
    let won = store.update_entry(first, 1, T0 + 1).await.unwrap();
    assert_eq!(won.revision, 2);
    let lost = store.update_entry(second.clone(), 1, T0 + 2).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    // A revision from the future conflicts too.
    assert!(matches!(
        store.update_entry(second.clone(), 3, T0 + 2).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = store.get_entry(&e.id).await.unwrap();
    assert_eq!((stored.jwt_ttl, stored.revision), (100, 2));
    // Retrying from the fresh revision works.
    let retried = store.update_entry(second, 2, T0 + 3).await.unwrap();
    assert_eq!((retried.jwt_ttl, retried.revision), (200, 3));

    // Many concurrent updates from revision 3: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let store = store.clone();
        let mut mine = retried.clone();
        mine.x509_ttl = 1000 + i;
        tasks.push(tokio::spawn(async move {
            store.update_entry(mine, 3, T0 + 4).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(e) => {
                wins += 1;
                assert_eq!(e.revision, 4);
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.get_entry(&e.id).await.unwrap().revision, 4);
}

/// A write that fails half-way leaves nothing: not the entry, not the change-sequence
/// increment that ran before the failing statement, not a tombstone.
pub async fn entry_writes_are_all_or_nothing(db: &Db) {
    let store = &db.store;
    let a = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), T0)
        .await
        .unwrap();
    let before = store.entry_changes_since(0).await.unwrap();
    assert_eq!(before.seq, 1);

    // create: the counter is incremented, then the insert hits the unique index.
    let dup = entry("agent/a", &["unix:uid:1"]);
    assert!(matches!(
        store.create_entry(dup, T0 + 1).await,
        Err(StoreError::Conflict(_))
    ));
    // update: the counter is incremented, then the update hits the unique index.
    let b = store
        .create_entry(entry("agent/b", &["unix:uid:2"]), T0 + 1)
        .await
        .unwrap();
    let mut clash = b.clone();
    clash.spiffe_id = a.spiffe_id.clone();
    clash.selectors = a.selectors.clone();
    assert!(matches!(
        store.update_entry(clash, 1, T0 + 2).await,
        Err(StoreError::Conflict(_))
    ));
    // update: the counter is incremented, then the revision check fails.
    assert!(matches!(
        store.update_entry(b.clone(), 9, T0 + 2).await,
        Err(StoreError::Conflict(_))
    ));
    // delete: the counter is incremented, then there is nothing to delete.
    assert!(matches!(
        store.delete_entry("ffffffffffffffffffffffffffffffff").await,
        Err(StoreError::NotFound(_))
    ));

    let after = store.entry_changes_since(0).await.unwrap();
    assert_eq!(
        after.seq, 2,
        "only the successful create of b moved the sequence"
    );
    assert_eq!(
        after.changes,
        vec![
            EntryChange::Put {
                seq: 1,
                entry: a.clone()
            },
            EntryChange::Put {
                seq: 2,
                entry: b.clone()
            },
        ]
    );
    assert_eq!(store.list_entries().await.unwrap(), vec![a, b]);
    // The next successful write gets the next number: no gap was burnt.
    store.delete_entry(after.changes[0].id()).await.unwrap();
    assert_eq!(store.entry_changes_since(2).await.unwrap().seq, 3);
}

pub async fn entry_change_sequence(db: &Db) {
    let store = &db.store;
    let empty = store.entry_changes_since(0).await.unwrap();
    assert_eq!((empty.changes.len(), empty.seq), (0, 0));

    let a = store
        .create_entry(entry("agent/a", &["unix:uid:1"]), T0)
        .await
        .unwrap();
    let b = store
        .create_entry(entry("agent/b", &["unix:uid:2"]), T0)
        .await
        .unwrap();
    let c1 = store.entry_changes_since(0).await.unwrap();
    assert_eq!(c1.seq, 2);
    assert_eq!(
        c1.changes,
        vec![
            EntryChange::Put {
                seq: 1,
                entry: a.clone()
            },
            EntryChange::Put {
                seq: 2,
                entry: b.clone()
            },
        ]
    );
    // Nothing new: same position, no changes.
    let same = store.entry_changes_since(c1.seq).await.unwrap();
    assert_eq!((same.changes.len(), same.seq), (0, 2));

    let a2 = store.update_entry(a.clone(), 1, T0 + 1).await.unwrap();
    store.delete_entry(&b.id).await.unwrap();
    let c = store
        .create_entry(entry("agent/c", &["unix:uid:3"]), T0 + 2)
        .await
        .unwrap();
    let c2 = store.entry_changes_since(c1.seq).await.unwrap();
    assert_eq!(c2.seq, 5);
    assert_eq!(
        c2.changes,
        vec![
            EntryChange::Put {
                seq: 3,
                entry: a2.clone()
            },
            EntryChange::Delete {
                seq: 4,
                id: b.id.clone()
            },
            EntryChange::Put {
                seq: 5,
                entry: c.clone()
            },
        ]
    );
    // From the start: latest state of each entry, deletions included.
    let all = store.entry_changes_since(0).await.unwrap();
    assert_eq!(
        all.changes.iter().map(EntryChange::seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    // A deleted id that comes back is no longer reported deleted.
    let mut again = entry("agent/b2", &["unix:uid:9"]);
    again.id = b.id.clone();
    let b2 = store.create_entry(again, T0 + 3).await.unwrap();
    let c3 = store.entry_changes_since(c2.seq).await.unwrap();
    assert_eq!(
        c3.changes,
        vec![EntryChange::Put {
            seq: 6,
            entry: b2.clone()
        }]
    );
    let all = store.entry_changes_since(0).await.unwrap();
    assert!(
        all.changes
            .iter()
            .all(|c| matches!(c, EntryChange::Put { .. }))
    );
    assert_eq!(all.changes.len(), 3);
    // A position past the end (the database was replaced): the current position comes
    // back, lower than the one passed.
    assert_eq!(store.entry_changes_since(1_000).await.unwrap().seq, 6);
    assert!(matches!(
        store.entry_changes_since(u64::MAX).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Writers run concurrently while a reader follows the change feed: the reader's cache
/// ends up equal to the table, and every position it saw only grew.
pub async fn entry_change_feed_under_concurrency(db: &Db) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 6;
    let store = &db.store;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = db.another().await.unwrap_or_else(|| store.clone());
        let done = done.clone();
        tokio::spawn(async move {
            let mut cache: HashMap<String, RegistrationEntry> = HashMap::new();
            let mut seq = 0u64;
            loop {
                // Read the flag before polling: a poll that starts after the writers
                // finished sees everything.
                let finished = done.load(Ordering::SeqCst);
                let batch = store.entry_changes_since(seq).await.unwrap();
                assert!(batch.seq >= seq, "the sequence went backwards");
                let mut last = seq;
                for change in batch.changes {
                    assert!(change.seq() > last && change.seq() <= batch.seq);
                    last = change.seq();
                    match change {
                        EntryChange::Put { entry, .. } => {
                            cache.insert(entry.id.clone(), entry);
                        }
                        EntryChange::Delete { id, .. } => {
                            cache.remove(&id);
                        }
                    }
                }
                seq = batch.seq;
                if finished {
                    return (cache, seq);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let e = store
                    .create_entry(
                        entry(&format!("w{w}/e{i}"), &[&format!("unix:uid:{i}")]),
                        T0,
                    )
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    store.update_entry(e.clone(), 1, T0 + 1).await.unwrap();
                }
                if i % 3 == 0 {
                    store.delete_entry(&e.id).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (cache, seq) = reader.await.unwrap();
    let writes = WRITERS * (PER_WRITER + PER_WRITER.div_ceil(2) + PER_WRITER.div_ceil(3));
    assert_eq!(seq, u64::try_from(writes).unwrap());
    let table: HashMap<String, RegistrationEntry> = store
        .list_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    assert_eq!(cache, table);
}

// ----- signing keys -----

pub async fn key_round_trip(db: &Db) {
    let store = &db.store;
    let k = key(KeyKind::X509Ca, "ca-1", KeyState::Current);
    store.put_key(&k).await.unwrap();
    let got = store.get_key(KeyKind::X509Ca, "ca-1").await.unwrap();
    assert_eq!(got, k);
    assert_eq!(&got.pkcs8[..], b"pkcs8-secret-of-ca-1");
    assert_eq!(got.cert_chain_der, k.cert_chain_der);
    let debug = format!("{got:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(!debug.contains("112, 107, 99, 115"), "{debug}"); // "pkcs" as bytes
    assert!(debug.contains("ca-1") && debug.contains("redacted"));

    // A key without certificates (JWT) and the same kid under another kind.
    let mut jwt = key(KeyKind::JwtSvid, "ca-1", KeyState::Current);
    jwt.cert_chain_der.clear();
    store.put_key(&jwt).await.unwrap();
    assert_eq!(store.list_keys(KeyKind::JwtSvid).await.unwrap(), vec![jwt]);
    assert_eq!(store.list_keys(KeyKind::WitSvid).await.unwrap(), vec![]);

    // Duplicates and rule breaks.
    assert!(matches!(
        store.put_key(&k).await,
        Err(StoreError::Conflict(_))
    ));
    let second_current = key(KeyKind::X509Ca, "ca-2", KeyState::Current);
    assert!(matches!(
        store.put_key(&second_current).await,
        Err(StoreError::Conflict(_))
    ));
    let mut empty = key(KeyKind::X509Ca, "ca-3", KeyState::Next);
    empty.pkcs8 = Zeroizing::new(Vec::new());
    assert!(matches!(
        store.put_key(&empty).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad_kid = key(KeyKind::X509Ca, "", KeyState::Next);
    assert!(matches!(
        store.put_key(&bad_kid).await,
        Err(StoreError::Invalid(_))
    ));
    bad_kid.kid = "a b".into();
    assert!(matches!(
        store.put_key(&bad_kid).await,
        Err(StoreError::Invalid(_))
    ));
    let mut backwards = key(KeyKind::X509Ca, "ca-4", KeyState::Next);
    backwards.not_after = backwards.not_before - 1;
    assert!(matches!(
        store.put_key(&backwards).await,
        Err(StoreError::Invalid(_))
    ));

    store.delete_key(KeyKind::X509Ca, "ca-1").await.unwrap();
    assert!(matches!(
        store.get_key(KeyKind::X509Ca, "ca-1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_key(KeyKind::X509Ca, "ca-1").await,
        Err(StoreError::NotFound(_))
    ));
    // The freed `current` slot can be taken.
    store.put_key(&second_current).await.unwrap();
}

/// Key material is sealed in place once: replaced unless it already starts with the
/// seal prefix; the rest of the key stays.
pub async fn key_material_is_sealed_in_place_once(db: &Db) {
    const PREFIX: &[u8] = b"sealed:";
    let store = &db.store;
    let k = key(KeyKind::JwtSvid, "k-seal", KeyState::Current);
    store.put_key(&k).await.unwrap();
    assert!(
        store
            .seal_key_material(KeyKind::JwtSvid, "k-seal", PREFIX, b"sealed:one")
            .await
            .unwrap()
    );
    // A second node sealing the same key loses.
    assert!(
        !store
            .seal_key_material(KeyKind::JwtSvid, "k-seal", PREFIX, b"sealed:two")
            .await
            .unwrap()
    );
    let stored = store.get_key(KeyKind::JwtSvid, "k-seal").await.unwrap();
    assert_eq!(stored.pkcs8.as_slice(), b"sealed:one");
    assert_eq!((stored.state, stored.not_after), (k.state, k.not_after));
    assert!(
        !store
            .seal_key_material(KeyKind::JwtSvid, "no-such-kid", PREFIX, b"sealed:x")
            .await
            .unwrap()
    );
    for (prefix, sealed) in [(PREFIX, &b"plain"[..]), (&b""[..], &b"x"[..])] {
        assert!(matches!(
            store
                .seal_key_material(KeyKind::JwtSvid, "k-seal", prefix, sealed)
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
}

pub async fn key_rotation_is_atomic(db: &Db) {
    use KeyState::{Current, Next, Previous, Retired};
    let store = &db.store;
    let kind = KeyKind::JwtSvid;
    store.put_key(&key(kind, "k1", Current)).await.unwrap();
    store.put_key(&key(kind, "k2", Next)).await.unwrap();
    // A key of another kind is never touched.
    store
        .put_key(&key(KeyKind::WitSvid, "w1", Current))
        .await
        .unwrap();

    // The usual step, listed in an order that would trip the unique indexes if applied
    // one by one: k2 becomes current before k1 leaves, k3 arrives as next before k2 leaves.
    let mut k3 = key(kind, "k3", Next);
    k3.created_at = T0 + 1;
    store
        .rotate_keys(kind, Some(&k3), &[("k2", Current), ("k1", Previous)])
        .await
        .unwrap();
    let after_rotation = vec![s("k1", Previous), s("k2", Current), s("k3", Next)];
    assert_eq!(
        states(&store.list_keys(kind).await.unwrap()),
        after_rotation
    );

    // A swap of current and next.
    store
        .set_key_states(kind, &[("k2", Next), ("k3", Current)])
        .await
        .unwrap();
    assert_eq!(
        states(&store.list_keys(kind).await.unwrap()),
        vec![s("k1", Previous), s("k2", Next), s("k3", Current)]
    );
    store
        .set_key_states(kind, &[("k3", Next), ("k2", Current)])
        .await
        .unwrap();
    assert_eq!(
        states(&store.list_keys(kind).await.unwrap()),
        after_rotation
    );

    // Failures change nothing, whichever step fails.
    // (a) an unknown kid after a valid change;
    let r = store
        .set_key_states(kind, &[("k1", Retired), ("nope", Previous)])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    // (b) a second current with a key that is not listed, after a valid change;
    let r = store
        .set_key_states(kind, &[("k1", Retired), ("k3", Current)])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // (c) two keys set to next in the same call;
    let r = store
        .set_key_states(kind, &[("k1", Next), ("k3", Next)])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // (d) a new key that clashes after the states were parked;
    let r = store
        .rotate_keys(kind, Some(&key(kind, "k1", Next)), &[("k2", Previous)])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // (e) a new next key while the stored next key is not moved.
    let r = store
        .rotate_keys(kind, Some(&key(kind, "k4", Next)), &[("k1", Retired)])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // (f) input errors are caught before anything runs.
    let r = store
        .set_key_states(kind, &[("k1", Retired), ("k1", Previous)])
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store
        .rotate_keys(kind, Some(&key(KeyKind::X509Ca, "k9", Next)), &[])
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(
        states(&store.list_keys(kind).await.unwrap()),
        after_rotation
    );
    assert!(matches!(
        store.get_key(kind, "k4").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        states(&store.list_keys(KeyKind::WitSvid).await.unwrap()),
        vec![s("w1", Current)]
    );

    // Retire everything: no current key is a valid state.
    store
        .set_key_states(kind, &[("k1", Retired), ("k2", Retired), ("k3", Retired)])
        .await
        .unwrap();
    assert!(
        store
            .list_keys(kind)
            .await
            .unwrap()
            .iter()
            .all(|k| k.state == Retired)
    );
}

/// Concurrent rotations that each want a different key current: the database keeps one.
pub async fn key_concurrent_promotions(db: &Db) {
    let store = &db.store;
    let kind = KeyKind::WitSvid;
    for i in 0..6 {
        store
            .put_key(&key(kind, &format!("k{i}"), KeyState::Previous))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .set_key_states(kind, &[(format!("k{i}").as_str(), KeyState::Current)])
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    let current = store
        .list_keys(kind)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == KeyState::Current)
        .count();
    assert_eq!(current, 1);
}

// ----- federated bundles -----

pub async fn bundle_sequence(db: &Db) {
    let store = &db.store;
    let td = TrustDomain::new("partner.test").unwrap();
    assert!(matches!(
        store.get_bundle(&td).await,
        Err(StoreError::NotFound(_))
    ));
    let b5 = bundle("partner.test", 5);
    store.put_bundle(&b5).await.unwrap();
    assert_eq!(store.get_bundle(&td).await.unwrap(), b5);

    // Lower: refused, stored bundle unchanged.
    let b3 = bundle("partner.test", 3);
    assert!(matches!(
        store.put_bundle(&b3).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_bundle(&td).await.unwrap(), b5);
    // Equal: replaces (an idempotent refresh).
    let mut b5_again = bundle("partner.test", 5);
    b5_again.updated_at = T0 + 99;
    b5_again.refresh_hint = None;
    b5_again.endpoint_url = None;
    store.put_bundle(&b5_again).await.unwrap();
    assert_eq!(store.get_bundle(&td).await.unwrap(), b5_again);
    // Higher: replaces.
    let b6 = bundle("partner.test", 6);
    store.put_bundle(&b6).await.unwrap();
    assert_eq!(store.get_bundle(&td).await.unwrap(), b6);
    // The document is kept byte for byte.
    let mut spaced = bundle("other.test", 0);
    spaced.bundle_json = "{ \"keys\" : [ ] ,\n \"spiffe_sequence\": 0 }".into();
    store.put_bundle(&spaced).await.unwrap();
    assert_eq!(
        store
            .get_bundle(&spaced.trust_domain)
            .await
            .unwrap()
            .bundle_json,
        spaced.bundle_json
    );

    assert_eq!(
        store.list_bundles().await.unwrap(),
        vec![spaced.clone(), b6]
    );

    let mut not_json = bundle("third.test", 1);
    not_json.bundle_json = "[1, 2".into();
    assert!(matches!(
        store.put_bundle(&not_json).await,
        Err(StoreError::Invalid(_))
    ));
    not_json.bundle_json = "[]".into();
    assert!(matches!(
        store.put_bundle(&not_json).await,
        Err(StoreError::Invalid(_))
    ));
    let mut huge = bundle("third.test", u64::MAX);
    huge.bundle_json = "{}".into();
    assert!(matches!(
        store.put_bundle(&huge).await,
        Err(StoreError::Invalid(_))
    ));

    store.delete_bundle(&td).await.unwrap();
    assert!(matches!(
        store.delete_bundle(&td).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_bundles().await.unwrap(), vec![spaced]);
    // After a delete, any sequence is accepted again.
    store.put_bundle(&b3).await.unwrap();
}

// ----- single use -----

pub async fn use_once_many_batches(db: &Db) {
    let store = &db.store;
    assert!(store.use_once("jti", "old", T0 + 10, T0).await.unwrap());
    assert!(store.use_once("jti", "live", T0 + 600, T0).await.unwrap());
    // New, a duplicate within the batch, an expired record (taken over), a live one.
    let won = store
        .use_once_many(
            "jti",
            &[
                ("a", T0 + 60),
                ("b", T0 + 60),
                ("a", T0 + 60),
                ("old", T0 + 60),
                ("live", T0 + 60),
            ],
            T0 + 20,
        )
        .await
        .unwrap();
    assert_eq!(won, [true, true, false, true, false]);
    // Recorded exactly as by use_once.
    for item in ["a", "b", "old", "live"] {
        assert!(!store.use_once("jti", item, T0 + 60, T0 + 21).await.unwrap());
    }
    assert!(
        store
            .use_once_many("jti", &[], T0)
            .await
            .unwrap()
            .is_empty()
    );
    // Bad input anywhere refuses the whole batch.
    let r = store
        .use_once_many("jti", &[("fresh", T0 + 60), ("", T0 + 60)], T0)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert!(store.use_once("jti", "fresh", T0 + 60, T0).await.unwrap());
    let many: Vec<String> = (0..=aims_store::USE_ONCE_MAX_BATCH)
        .map(|i| format!("m{i}"))
        .collect();
    let items: Vec<(&str, i64)> = many.iter().map(|m| (m.as_str(), T0 + 60)).collect();
    let r = store.use_once_many("jti", &items, T0).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let won = store.use_once_many("jti", &items[1..], T0).await.unwrap();
    assert!(won.iter().all(|w| *w));
}

pub async fn use_once_and_sweep(db: &Db) {
    let store = &db.store;
    assert!(store.use_once("jti", "abc", T0 + 60, T0).await.unwrap());
    assert!(!store.use_once("jti", "abc", T0 + 60, T0).await.unwrap());
    assert!(
        !store
            .use_once("jti", "abc", T0 + 600, T0 + 59)
            .await
            .unwrap()
    );
    // A read tells whether a value is recorded and live, and records nothing.
    assert!(store.is_used("jti", "abc", T0 + 59).await.unwrap());
    assert!(
        !store.is_used("jti", "abc", T0 + 60).await.unwrap(),
        "expired"
    );
    assert!(!store.is_used("jti", "never", T0).await.unwrap());
    assert!(
        !store.is_used("jti", "never", T0).await.unwrap(),
        "not recorded by a read"
    );
    assert!(!store.is_used("dpop", "abc", T0).await.unwrap());
    // Scopes are separate.
    assert!(store.use_once("dpop", "abc", T0 + 60, T0).await.unwrap());
    // Once expired, the record no longer blocks (even before a sweep) and is renewed.
    assert!(
        store
            .use_once("jti", "abc", T0 + 120, T0 + 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_once("jti", "abc", T0 + 120, T0 + 61)
            .await
            .unwrap()
    );

    assert!(store.use_once("code", "c1", T0 + 10, T0).await.unwrap());
    assert!(store.use_once("code", "c2", T0 + 20, T0).await.unwrap());
    assert!(store.use_once("code", "c3", T0 + 30, T0).await.unwrap());
    assert_eq!(store.sweep_expired(T0 + 20).await.unwrap(), 2);
    assert_eq!(store.sweep_expired(T0 + 20).await.unwrap(), 0);
    assert!(
        !store
            .use_once("code", "c3", T0 + 30, T0 + 21)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_once("code", "c1", T0 + 40, T0 + 21)
            .await
            .unwrap()
    );

    // Long and non-ASCII items are fine; bad input is refused.
    let long = "x".repeat(1024);
    assert!(store.use_once("jti", &long, T0 + 60, T0).await.unwrap());
    assert!(store.use_once("jti", "ünïcödé", T0 + 60, T0).await.unwrap());
    for (scope, item, exp) in [
        ("", "a", T0 + 1),
        ("a b", "a", T0 + 1),
        ("jti", "", T0 + 1),
        ("jti", &"x".repeat(1025), T0 + 1),
        ("jti", "nul\0", T0 + 1),
        ("jti", "a", T0),
    ] {
        let r = store.use_once(scope, item, exp, T0).await;
        assert!(
            matches!(r, Err(StoreError::Invalid(_))),
            "{scope:?} {item:?}: {r:?}"
        );
    }
}

/// Many tasks, and a second connection pool (another node) where the backend has one,
/// race for the same value: exactly one wins.
pub async fn use_once_concurrent(db: &Db) {
    let other = db.another().await;
    for round in 0..3 {
        let item = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = match (&other, i % 2) {
                (Some(o), 1) => o.clone(),
                _ => db.store.clone(),
            };
            let item = item.clone();
            tasks.push(tokio::spawn(async move {
                store.use_once("jti", &item, T0 + 60, T0).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    if let Some(o) = other {
        o.close().await;
    }
}

/// Sweeps delete in chunks (each its own transaction) until nothing expired is left,
/// and report the total; live rows stay.
pub async fn sweeps_run_in_chunks(db: &Db) {
    let store = &db.store;
    let n = 1_234;
    let items: Vec<String> = (0..n).map(|i| format!("old-{i}")).collect();
    for chunk in items.chunks(aims_store::USE_ONCE_MAX_BATCH) {
        let batch: Vec<(&str, i64)> = chunk.iter().map(|i| (i.as_str(), T0 + 10)).collect();
        assert!(
            store
                .use_once_many("jti", &batch, T0)
                .await
                .unwrap()
                .iter()
                .all(|w| *w)
        );
    }
    assert!(store.use_once("jti", "live", T0 + 100, T0).await.unwrap());
    assert_eq!(store.sweep_expired(T0 + 10).await.unwrap(), n as u64);
    assert_eq!(store.sweep_expired(T0 + 10).await.unwrap(), 0);
    assert!(
        !store
            .use_once("jti", "live", T0 + 100, T0 + 11)
            .await
            .unwrap()
    );

    let grants = 1_001;
    for i in 0..grants {
        let mut g = grant(&format!("sweep-{i}"), GrantKind::AccessToken, "app", "fam");
        g.expires_at = T0 + 10;
        store.put_grant(&g).await.unwrap();
    }
    let live = grant("sweep-live", GrantKind::AccessToken, "app", "fam");
    store.put_grant(&live).await.unwrap();
    assert_eq!(store.sweep_grants(T0 + 10).await.unwrap(), grants);
    assert_eq!(store.sweep_grants(T0 + 10).await.unwrap(), 0);
    assert!(store.get_grant(&live.handle).await.is_ok());
}

/// What [`Store`] promises the server about its futures: they can be spawned.
pub async fn futures_are_send(db: &Db) {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let store: Store = db.store.clone();
    assert_send(store.list_entries()).await.unwrap();
    assert_send(store.use_once("s", "i", T0 + 1, T0))
        .await
        .unwrap();
    let k = key(KeyKind::X509Ca, "x", KeyState::Next);
    assert_send(store.rotate_keys(KeyKind::X509Ca, Some(&k), &[]))
        .await
        .unwrap();
    let g = grant("send", GrantKind::AuthorizationCode, "app", "fam");
    assert_send(store.put_grant(&g)).await.unwrap();
    assert_send(store.consume_grant(&g.handle, g.kind, T0))
        .await
        .unwrap();
    assert_send(store.delete_client("app")).await.unwrap_err();
    assert_send(store.set_user_disabled("u", true, T0))
        .await
        .unwrap_err();
}

// ----- OAuth signing keys -----

/// The `oauth_token` kind added by migration 0002: stored, listed apart from the other
/// kinds, rotated with the same one-current / one-next rules.
pub async fn key_oauth_token_kind(db: &Db) {
    use KeyState::{Current, Next, Previous};
    let store = &db.store;
    let kind = KeyKind::OAuthToken;
    assert_eq!(kind.as_str(), "oauth_token");
    assert!(KeyKind::ALL.contains(&kind));
    let mut k1 = key(kind, "at-1", Current);
    k1.cert_chain_der.clear();
    store.put_key(&k1).await.unwrap();
    assert_eq!(store.get_key(kind, "at-1").await.unwrap(), k1);
    // The same kid under a JWT-SVID key is another key.
    store
        .put_key(&key(KeyKind::JwtSvid, "at-1", Current))
        .await
        .unwrap();
    assert!(matches!(
        store.put_key(&key(kind, "at-x", Current)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut k2 = key(kind, "at-2", Next);
    k2.created_at = T0 + 1;
    store.put_key(&k2).await.unwrap();
    let mut k3 = key(kind, "at-3", Next);
    k3.created_at = T0 + 2;
    store
        .rotate_keys(kind, Some(&k3), &[("at-1", Previous), ("at-2", Current)])
        .await
        .unwrap();
    assert_eq!(
        states(&store.list_keys(kind).await.unwrap()),
        vec![s("at-1", Previous), s("at-2", Current), s("at-3", Next)]
    );
    assert_eq!(
        states(&store.list_keys(KeyKind::JwtSvid).await.unwrap()),
        vec![s("at-1", Current)]
    );
    store.delete_key(kind, "at-1").await.unwrap();
    assert_eq!(store.list_keys(kind).await.unwrap().len(), 2);
}

// ----- OAuth clients -----

fn doc(name: &str) -> String {
    format!(r#"{{"client_name":"{name}","redirect_uris":["https://app.test/cb"]}}"#)
}

pub async fn client_crud(db: &Db) {
    let store = &db.store;
    let a = store.create_client("app-a", &doc("A"), T0).await.unwrap();
    assert_eq!(
        a,
        OAuthClientRecord {
            client_id: "app-a".into(),
            document: doc("A"),
            revision: 1,
            created_at: T0,
            updated_at: T0,
        }
    );
    assert_eq!(store.get_client("app-a").await.unwrap(), a);
    assert!(matches!(
        store.create_client("app-a", &doc("again"), T0).await,
        Err(StoreError::Conflict(_))
    ));
    // Ids sort bytewise on both databases (upper case before lower case), and the
    // document comes back byte for byte.
    let spaced = "{ \"b\": 1,\n  \"a\": [ ] }";
    let upper = store.create_client("Zeta", spaced, T0 + 1).await.unwrap();
    let url = store
        .create_client("https://app.test/client metadata", "{}", T0 + 2)
        .await
        .unwrap();
    assert_eq!(store.get_client("Zeta").await.unwrap().document, spaced);
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![upper.clone(), a.clone(), url.clone()]
    );

    // Updates: with the expected revision, stale, unconditional, unknown.
    let a2 = store
        .update_client("app-a", &doc("A2"), Some(1), T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        (
            a2.revision,
            a2.created_at,
            a2.updated_at,
            a2.document.clone()
        ),
        (2, T0, T0 + 10, doc("A2"))
    );
    let r = store
        .update_client("app-a", &doc("lost"), Some(1), T0 + 11)
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let a3 = store
        .update_client("app-a", &doc("A3"), None, T0 + 12)
        .await
        .unwrap();
    assert_eq!(a3.revision, 3);
    assert_eq!(store.get_client("app-a").await.unwrap(), a3);
    assert!(matches!(
        store.update_client("nope", "{}", None, T0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_client("app-a", "[]", None, T0).await,
        Err(StoreError::Invalid(_))
    ));

    // Concurrent updates from one revision: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_client("app-a", &doc(&format!("w{i}")), Some(3), T0 + 20)
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => {
                wins += 1;
                assert_eq!(c.revision, 4);
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);

    assert_eq!(store.delete_client("Zeta").await.unwrap(), 0);
    assert!(matches!(
        store.get_client("Zeta").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_client("Zeta").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_clients().await.unwrap().len(), 2);
}

pub async fn client_validation(db: &Db) {
    let store = &db.store;
    for id in ["", &"x".repeat(256), "tab\there", "nl\n", "ünï"] {
        let r = store.create_client(id, "{}", T0).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{id:?}: {r:?}");
    }
    store
        .create_client(&"x".repeat(255), "{}", T0)
        .await
        .unwrap();
    for document in ["", "[]", "\"s\"", "{", "{} {}", "null"] {
        let r = store.create_client("c", document, T0).await;
        assert!(
            matches!(r, Err(StoreError::Invalid(_))),
            "{document:?}: {r:?}"
        );
    }
    assert!(matches!(
        store.get_client("c").await,
        Err(StoreError::NotFound(_))
    ));
}

// ----- OAuth grants -----

/// A handle as the caller makes it: hex SHA-256 of the secret.
fn handle(name: &str) -> String {
    aims_crypto::sha256(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn grant(name: &str, kind: GrantKind, client_id: &str, family: &str) -> NewGrant {
    NewGrant {
        handle: handle(name),
        kind,
        client_id: client_id.to_owned(),
        subject: Some("alice".to_owned()),
        family: family.to_owned(),
        expires_at: T0 + 60,
        created_at: T0,
        data: format!(r#"{{"scope":"openid","name":"{name}"}}"#),
    }
}

fn stored(g: &NewGrant, state: GrantState) -> GrantRecord {
    GrantRecord {
        handle: g.handle.clone(),
        kind: g.kind,
        client_id: g.client_id.clone(),
        subject: g.subject.clone(),
        family: g.family.clone(),
        expires_at: g.expires_at,
        created_at: g.created_at,
        state,
        data: g.data.clone(),
    }
}

pub async fn grant_put_get_consume(db: &Db) {
    use GrantKind::{AccessToken, AuthorizationCode, DeviceCode, PushedRequest, RefreshToken};
    let store = &db.store;
    let code = grant("code-1", AuthorizationCode, "app", "fam-1");
    store.put_grant(&code).await.unwrap();
    assert_eq!(
        store.get_grant(&code.handle).await.unwrap(),
        stored(&code, GrantState::Active)
    );
    assert!(matches!(
        store.put_grant(&code).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.get_grant(&handle("missing")).await,
        Err(StoreError::NotFound(_))
    ));
    // Every kind is stored; no subject and a large data document round-trip.
    for (i, kind) in [RefreshToken, AccessToken, PushedRequest, DeviceCode]
        .into_iter()
        .enumerate()
    {
        let mut g = grant(&format!("k{i}"), kind, "app", "fam-k");
        g.subject = None;
        g.data = format!(r#"{{ "blob": "{}" }}"#, "é".repeat(10_000));
        store.put_grant(&g).await.unwrap();
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap(),
            stored(&g, GrantState::Active)
        );
    }

    // A wrong kind is NotFound and changes nothing.
    assert_eq!(
        store
            .consume_grant(&code.handle, RefreshToken, T0 + 1)
            .await
            .unwrap(),
        ConsumeOutcome::NotFound
    );
    assert_eq!(
        store
            .consume_grant(&handle("missing"), AuthorizationCode, T0 + 1)
            .await
            .unwrap(),
        ConsumeOutcome::NotFound
    );
    // First use: Consumed, with the record in its new state; then Reused, even later.
    let consumed = stored(&code, GrantState::Consumed);
    assert_eq!(
        store
            .consume_grant(&code.handle, AuthorizationCode, T0 + 1)
            .await
            .unwrap(),
        ConsumeOutcome::Consumed(consumed.clone())
    );
    assert_eq!(store.get_grant(&code.handle).await.unwrap(), consumed);
    assert_eq!(
        store
            .consume_grant(&code.handle, AuthorizationCode, T0 + 2)
            .await
            .unwrap(),
        ConsumeOutcome::Reused(consumed.clone())
    );
    assert_eq!(
        store
            .consume_grant(&code.handle, AuthorizationCode, T0 + 600)
            .await
            .unwrap(),
        ConsumeOutcome::Reused(consumed)
    );
    // Wrong kind on a consumed grant: still NotFound (the caller learns nothing).
    assert_eq!(
        store
            .consume_grant(&code.handle, AccessToken, T0 + 2)
            .await
            .unwrap(),
        ConsumeOutcome::NotFound
    );
}

pub async fn grant_expiry_and_sweep(db: &Db) {
    let store = &db.store;
    let kind = GrantKind::AuthorizationCode;
    let a = grant("a", kind, "app", "fa");
    let b = grant("b", kind, "app", "fb");
    let mut c = grant("c", kind, "app", "fc");
    c.expires_at = T0 + 120;
    for g in [&a, &b, &c] {
        store.put_grant(g).await.unwrap();
    }
    // `expires_at` is the first second the grant is unusable.
    assert_eq!(
        store.consume_grant(&a.handle, kind, T0 + 60).await.unwrap(),
        ConsumeOutcome::Expired
    );
    assert_eq!(
        store.get_grant(&a.handle).await.unwrap().state,
        GrantState::Active
    );
    assert!(matches!(
        store.consume_grant(&b.handle, kind, T0 + 59).await.unwrap(),
        ConsumeOutcome::Consumed(_)
    ));
    // A revoked grant stays Revoked, expired or not.
    assert!(store.revoke_grant(&c.handle).await.unwrap());
    assert!(!store.revoke_grant(&c.handle).await.unwrap());
    assert!(!store.revoke_grant(&handle("missing")).await.unwrap());
    assert_eq!(
        store.consume_grant(&c.handle, kind, T0 + 1).await.unwrap(),
        ConsumeOutcome::Revoked
    );
    assert_eq!(
        store
            .consume_grant(&c.handle, kind, T0 + 500)
            .await
            .unwrap(),
        ConsumeOutcome::Revoked
    );

    // Sweeping at T0 + 60 deletes a and b (whatever their state), keeps c.
    assert_eq!(store.sweep_grants(T0 + 59).await.unwrap(), 0);
    assert_eq!(store.sweep_grants(T0 + 60).await.unwrap(), 2);
    assert_eq!(store.sweep_grants(T0 + 60).await.unwrap(), 0);
    assert!(matches!(
        store.get_grant(&b.handle).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.consume_grant(&a.handle, kind, T0 + 61).await.unwrap(),
        ConsumeOutcome::NotFound
    );
    assert_eq!(
        store.get_grant(&c.handle).await.unwrap().state,
        GrantState::Revoked
    );
    // A swept handle can be stored again.
    store.put_grant(&a).await.unwrap();
}

/// Refresh-token reuse: the replay of a consumed grant is reported, and revoking its
/// family revokes every sibling, consumed or active, and nothing else.
pub async fn grant_reuse_revokes_family(db: &Db) {
    use GrantKind::{AccessToken, AuthorizationCode, RefreshToken};
    let store = &db.store;
    let code = grant("code", AuthorizationCode, "app", "fam-1");
    let rt1 = grant("rt1", RefreshToken, "app", "fam-1");
    let at1 = grant("at1", AccessToken, "app", "fam-1");
    let rt2 = grant("rt2", RefreshToken, "app", "fam-1");
    let other = grant("other", RefreshToken, "app", "fam-2");
    for g in [&code, &rt1, &at1, &rt2, &other] {
        store.put_grant(g).await.unwrap();
    }
    assert!(matches!(
        store
            .consume_grant(&code.handle, AuthorizationCode, T0)
            .await
            .unwrap(),
        ConsumeOutcome::Consumed(_)
    ));
    // rt1 is rotated into rt2, then rt1 is replayed.
    assert!(matches!(
        store
            .consume_grant(&rt1.handle, RefreshToken, T0 + 1)
            .await
            .unwrap(),
        ConsumeOutcome::Consumed(_)
    ));
    let replay = store
        .consume_grant(&rt1.handle, RefreshToken, T0 + 2)
        .await
        .unwrap();
    let ConsumeOutcome::Reused(reused) = replay else {
        panic!("expected Reused, got {replay:?}");
    };
    assert_eq!(reused.family, "fam-1");
    assert_eq!(store.revoke_family(&reused.family).await.unwrap(), 4);
    assert_eq!(store.revoke_family(&reused.family).await.unwrap(), 0);
    for g in [&code, &rt1, &at1, &rt2] {
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap().state,
            GrantState::Revoked
        );
    }
    assert_eq!(
        store
            .consume_grant(&rt2.handle, RefreshToken, T0 + 3)
            .await
            .unwrap(),
        ConsumeOutcome::Revoked
    );
    assert_eq!(
        store
            .consume_grant(&rt1.handle, RefreshToken, T0 + 3)
            .await
            .unwrap(),
        ConsumeOutcome::Revoked
    );
    assert_eq!(
        store.get_grant(&other.handle).await.unwrap().state,
        GrantState::Active
    );
    assert_eq!(store.revoke_family("no-such-family").await.unwrap(), 0);
}

/// A use and what it issues are one transaction: the successors are stored with the use
/// or not at all; a second use stores none of its own; a successor that cannot be
/// stored leaves the grant unused.
pub async fn grant_consume_stores_successors_atomically(db: &Db) {
    use GrantKind::{AccessToken, RefreshToken};
    let store = &db.store;
    let rt1 = grant("s-rt1", RefreshToken, "app", "fam-s");
    let rt0 = grant("s-rt0", RefreshToken, "app", "fam-s");
    store.put_grants(&[rt1.clone(), rt0.clone()]).await.unwrap();

    // A successor whose handle is taken: the whole exchange is undone, rt0 stays usable.
    let clash = [grant("s-at0", AccessToken, "app", "fam-s"), rt1.clone()];
    assert!(matches!(
        store
            .consume_grant_and_put(&rt0.handle, RefreshToken, T0, &clash)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_grant(&rt0.handle).await.unwrap(),
        stored(&rt0, GrantState::Active)
    );
    assert!(matches!(
        store.get_grant(&handle("s-at0")).await,
        Err(StoreError::NotFound(_))
    ));

    let next = [
        grant("s-at1", AccessToken, "app", "fam-s"),
        grant("s-rt2", RefreshToken, "app", "fam-s"),
    ];
    let ConsumeOutcome::Consumed(used) = store
        .consume_grant_and_put(&rt1.handle, RefreshToken, T0, &next)
        .await
        .unwrap()
    else {
        panic!("the first use consumes");
    };
    assert_eq!(used, stored(&rt1, GrantState::Consumed));
    for g in &next {
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap(),
            stored(g, GrantState::Active)
        );
    }
    // A replay stores nothing of what it would have issued.
    let replayed = [grant("s-rt3", RefreshToken, "app", "fam-s")];
    assert!(matches!(
        store
            .consume_grant_and_put(&rt1.handle, RefreshToken, T0 + 1, &replayed)
            .await
            .unwrap(),
        ConsumeOutcome::Reused(_)
    ));
    assert!(matches!(
        store.get_grant(&handle("s-rt3")).await,
        Err(StoreError::NotFound(_))
    ));
    // An invalid successor is refused before anything is used.
    let mut bad = grant("s-bad", RefreshToken, "app", "fam-s");
    bad.family = String::new();
    assert!(matches!(
        store
            .consume_grant_and_put(&next[1].handle, RefreshToken, T0, &[bad])
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.get_grant(&next[1].handle).await.unwrap().state,
        GrantState::Active
    );
}

/// Deleting a user revokes the grants issued for them, in the same transaction: a user
/// created later under the same name inherits none.
pub async fn user_deletion_revokes_their_grants(db: &Db) {
    use GrantKind::{AccessToken, RefreshToken};
    let store = &db.store;
    store.create_user("alice", HASH, "{}", T0).await.unwrap();
    store.create_user("bob", HASH, "{}", T0).await.unwrap();
    let a1 = grant("u-a1", RefreshToken, "app", "fam-a");
    let a2 = grant("u-a2", AccessToken, "other-app", "fam-a2");
    let mut b1 = grant("u-b1", RefreshToken, "app", "fam-b");
    b1.subject = Some("bob".to_owned());
    let mut agent = grant("u-agent", AccessToken, "app", "fam-c");
    agent.subject = None;
    store
        .put_grants(&[a1.clone(), a2.clone(), b1.clone(), agent.clone()])
        .await
        .unwrap();
    assert_eq!(store.delete_user("alice").await.unwrap(), 2);
    for g in [&a1, &a2] {
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap().state,
            GrantState::Revoked
        );
    }
    for g in [&b1, &agent] {
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap().state,
            GrantState::Active
        );
    }
    assert!(matches!(
        store.delete_user("alice").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Many tasks, and a second connection pool (another node) where the backend has one,
/// consume the same grant: exactly one gets `Consumed`, every other `Reused`.
pub async fn grant_consume_concurrent(db: &Db) {
    const N: usize = 16;
    let other = db.another().await;
    for round in 0..3 {
        let g = grant(
            &format!("race-{round}"),
            GrantKind::RefreshToken,
            "app",
            "fam",
        );
        db.store.put_grant(&g).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = match (&other, i % 2) {
                (Some(o), 1) => o.clone(),
                _ => db.store.clone(),
            };
            let h = g.handle.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .consume_grant(&h, GrantKind::RefreshToken, T0 + 1)
                    .await
            }));
        }
        let (mut consumed, mut reused) = (0, 0);
        for t in tasks {
            match t.await.unwrap().unwrap() {
                ConsumeOutcome::Consumed(r) => {
                    consumed += 1;
                    assert_eq!(r, stored(&g, GrantState::Consumed));
                }
                ConsumeOutcome::Reused(r) => {
                    reused += 1;
                    assert_eq!(r, stored(&g, GrantState::Consumed));
                }
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!((consumed, reused), (1, N - 1), "round {round}");
    }
    if let Some(o) = other {
        o.close().await;
    }
}

/// Deleting a client revokes its grants in the same transaction; a failed deletion
/// revokes nothing.
pub async fn grant_client_deletion_revokes(db: &Db) {
    use GrantKind::{AccessToken, AuthorizationCode, RefreshToken};
    let store = &db.store;
    store.create_client("app-a", "{}", T0).await.unwrap();
    store.create_client("app-b", "{}", T0).await.unwrap();
    let a1 = grant("a1", AuthorizationCode, "app-a", "f1");
    let a2 = grant("a2", RefreshToken, "app-a", "f2");
    let a3 = grant("a3", AccessToken, "app-a", "f2");
    let b1 = grant("b1", RefreshToken, "app-b", "f3");
    let ghost = grant("ghost", RefreshToken, "ghost", "f4");
    for g in [&a1, &a2, &a3, &b1, &ghost] {
        store.put_grant(g).await.unwrap();
    }
    // a2 already revoked: not counted again.
    assert!(store.revoke_grant(&a2.handle).await.unwrap());
    assert_eq!(store.delete_client("app-a").await.unwrap(), 2);
    for g in [&a1, &a2, &a3] {
        assert_eq!(
            store.get_grant(&g.handle).await.unwrap().state,
            GrantState::Revoked
        );
    }
    assert_eq!(
        store
            .consume_grant(&a1.handle, AuthorizationCode, T0 + 1)
            .await
            .unwrap(),
        ConsumeOutcome::Revoked
    );
    assert_eq!(
        store.get_grant(&b1.handle).await.unwrap().state,
        GrantState::Active
    );
    // No stored client "ghost": NotFound, and its grant stays active (all or nothing).
    assert!(matches!(
        store.delete_client("ghost").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get_grant(&ghost.handle).await.unwrap().state,
        GrantState::Active
    );
    // Revoking by client works without deleting it.
    assert_eq!(store.revoke_client_grants("app-b").await.unwrap(), 1);
    assert_eq!(store.revoke_client_grants("app-b").await.unwrap(), 0);
    assert!(store.get_client("app-b").await.is_ok());
    assert_eq!(store.revoke_client_grants("ghost").await.unwrap(), 1);
}

pub async fn grant_validation(db: &Db) {
    let store = &db.store;
    let ok = grant("ok", GrantKind::AccessToken, "app", "fam");
    type Change = fn(&mut NewGrant);
    let cases: Vec<(&str, Change)> = vec![
        ("short handle", |g| g.handle = "x".repeat(15)),
        ("long handle", |g| g.handle = "x".repeat(129)),
        ("space in handle", |g| {
            g.handle = format!("{} ", "x".repeat(20))
        }),
        ("non-ASCII handle", |g| g.handle = "é".repeat(10)),
        ("empty client", |g| g.client_id.clear()),
        ("long client", |g| g.client_id = "c".repeat(256)),
        ("empty subject", |g| g.subject = Some(String::new())),
        ("control in subject", |g| g.subject = Some("a\u{7}".into())),
        ("empty family", |g| g.family.clear()),
        ("space in family", |g| g.family = "a b".into()),
        ("expires at creation", |g| g.expires_at = g.created_at),
        ("data not JSON", |g| g.data = "{".into()),
        ("data not an object", |g| g.data = "[1]".into()),
    ];
    for (what, change) in cases {
        let mut g = ok.clone();
        change(&mut g);
        let r = store.put_grant(&g).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{what}: {r:?}");
    }
    let mut edge = ok.clone();
    edge.handle = "h".repeat(128);
    store.put_grant(&edge).await.unwrap();
    edge.handle = "h".repeat(16);
    store.put_grant(&edge).await.unwrap();
    store.put_grant(&ok).await.unwrap();
}

// ----- browser state -----

const SESSION: BrowserStateKind = BrowserStateKind::Session;
const PENDING: BrowserStateKind = BrowserStateKind::PendingRequest;

/// Stored, read while live, moved to another session once, taken once, deleted; kinds
/// are separate name spaces; an expired record is never returned and may be replaced.
pub async fn browser_state_round_trip(db: &Db) {
    let store = &db.store;
    let (s1, s2, p) = ("s".repeat(43), "t".repeat(43), "p".repeat(43));
    store
        .put_browser_state(SESSION, &s1, None, r#"{"csrf":"c1"}"#, T0 + 600, T0)
        .await
        .unwrap();
    store
        .put_browser_state(PENDING, &p, Some(&s1), r#"{"n":1}"#, T0 + 600, T0)
        .await
        .unwrap();
    // The same handle in another kind is another record.
    store
        .put_browser_state(PENDING, &s1, Some(&s1), r#"{"n":2}"#, T0 + 600, T0)
        .await
        .unwrap();
    let got = store
        .get_browser_state(SESSION, &s1, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.binding, got.expires_at, got.data.as_str()),
        (None, T0 + 600, r#"{"csrf":"c1"}"#)
    );
    let got = store.get_browser_state(PENDING, &p, T0 + 1).await.unwrap();
    assert_eq!(got.unwrap().binding.as_deref(), Some(s1.as_str()));
    // A live handle cannot be taken over.
    let r = store
        .put_browser_state(SESSION, &s1, None, "{}", T0 + 900, T0 + 1)
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // Moved only from the session it is bound to, and only once.
    assert!(
        !store
            .rebind_browser_state(PENDING, &p, &s2, &s1, "{}", T0 + 2)
            .await
            .unwrap()
    );
    assert!(
        store
            .rebind_browser_state(PENDING, &p, &s1, &s2, r#"{"n":3}"#, T0 + 2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .rebind_browser_state(PENDING, &p, &s1, &s2, "{}", T0 + 2)
            .await
            .unwrap()
    );
    // Taken only by its session, once.
    assert_eq!(
        store
            .take_browser_state(PENDING, &p, &s1, T0 + 3)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_browser_state(PENDING, &p, &s2, T0 + 3)
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"n":3}"#)
    );
    assert_eq!(
        store
            .take_browser_state(PENDING, &p, &s2, T0 + 3)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .get_browser_state(PENDING, &p, T0 + 3)
            .await
            .unwrap()
            .is_none()
    );
    // Expired: not returned, not movable, not taken; the handle may be stored again.
    assert!(
        store
            .get_browser_state(SESSION, &s1, T0 + 600)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .take_browser_state(PENDING, &s1, &s1, T0 + 600)
            .await
            .unwrap(),
        None
    );
    store
        .put_browser_state(SESSION, &s1, None, r#"{"csrf":"c2"}"#, T0 + 1200, T0 + 600)
        .await
        .unwrap();
    let got = store
        .get_browser_state(SESSION, &s1, T0 + 601)
        .await
        .unwrap();
    assert_eq!(got.unwrap().data, r#"{"csrf":"c2"}"#);
    assert!(store.delete_browser_state(SESSION, &s1).await.unwrap());
    assert!(!store.delete_browser_state(SESSION, &s1).await.unwrap());
    // The sweep deletes what expired (the pending record under `s1`), nothing live.
    store
        .put_browser_state(SESSION, &s2, None, "{}", T0 + 5000, T0)
        .await
        .unwrap();
    assert_eq!(store.sweep_browser_state(T0 + 600).await.unwrap(), 1);
    assert_eq!(store.sweep_browser_state(T0 + 600).await.unwrap(), 0);
    assert!(
        store
            .get_browser_state(SESSION, &s2, T0 + 600)
            .await
            .unwrap()
            .is_some()
    );
}

/// A pending request taken by many callers at once (on two connections pools, when the
/// backend allows) goes to exactly one of them.
pub async fn browser_state_take_concurrent(db: &Db) {
    const N: usize = 16;
    let other = db.another().await;
    let session = "s".repeat(43);
    for round in 0..3 {
        let handle = format!("pending-request-{round:04}");
        db.store
            .put_browser_state(PENDING, &handle, Some(&session), "{}", T0 + 600, T0)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = match (&other, i % 2) {
                (Some(o), 1) => o.clone(),
                _ => db.store.clone(),
            };
            let (h, s) = (handle.clone(), session.clone());
            tasks.push(tokio::spawn(async move {
                store.take_browser_state(PENDING, &h, &s, T0 + 1).await
            }));
        }
        let mut taken = 0;
        for t in tasks {
            if t.await.unwrap().unwrap().is_some() {
                taken += 1;
            }
        }
        assert_eq!(taken, 1, "round {round}");
    }
    if let Some(o) = other {
        o.close().await;
    }
}

/// Compare and swap: of concurrent replacements from the same read (over two pools when
/// the backend allows), exactly one wins; an expired or changed record is not replaced.
pub async fn browser_state_replace_compare_and_swap(db: &Db) {
    const FAILURES: BrowserStateKind = BrowserStateKind::LoginFailures;
    let store = &db.store;
    let h = "f".repeat(43);
    store
        .put_browser_state(FAILURES, &h, None, r#"{"count":1}"#, T0 + 900, T0)
        .await
        .unwrap();
    assert!(
        !store
            .replace_browser_state(
                FAILURES,
                &h,
                r#"{"count":0}"#,
                r#"{"count":2}"#,
                T0 + 900,
                T0 + 1
            )
            .await
            .unwrap(),
        "changed since read"
    );
    let other = db.another().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = match (&other, i % 2) {
            (Some(o), 1) => o.clone(),
            _ => store.clone(),
        };
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            store
                .replace_browser_state(
                    FAILURES,
                    &h,
                    r#"{"count":1}"#,
                    &format!(r#"{{"count":2,"by":{i}}}"#),
                    T0 + 1000,
                    T0 + 1,
                )
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    let got = store
        .get_browser_state(FAILURES, &h, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert!(got.data.starts_with(r#"{"count":2,"by":"#), "{}", got.data);
    assert_eq!(got.expires_at, T0 + 1000);
    // Expired: not replaced.
    assert!(
        !store
            .replace_browser_state(FAILURES, &h, &got.data, "{}", T0 + 2000, T0 + 1000)
            .await
            .unwrap()
    );
    let r = store
        .replace_browser_state(FAILURES, &h, &got.data, "{}", T0 + 2, T0 + 2)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    if let Some(o) = other {
        o.close().await;
    }
}

pub async fn browser_state_validation(db: &Db) {
    let store = &db.store;
    let h = "h".repeat(43);
    let cases: [(&str, &str, Option<&str>, &str, i64); 7] = [
        ("short handle", "x", None, "{}", T0 + 1),
        ("long handle", &"x".repeat(129), None, "{}", T0 + 1),
        ("space in handle", "xxxxxxxx xxxxxxxx", None, "{}", T0 + 1),
        ("short binding", &h, Some("b"), "{}", T0 + 1),
        ("data not JSON", &h, None, "{", T0 + 1),
        ("data not an object", &h, None, "[1]", T0 + 1),
        ("expired when stored", &h, None, "{}", T0),
    ];
    for (what, handle, binding, data, expires_at) in cases {
        let r = store
            .put_browser_state(SESSION, handle, binding, data, expires_at, T0)
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{what}: {r:?}");
    }
    let r = store
        .rebind_browser_state(PENDING, &h, &h, "short", "{}", T0)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store
        .rebind_browser_state(PENDING, &h, &h, &h, "[]", T0)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    store
        .put_browser_state(SESSION, &"h".repeat(16), None, "{}", T0 + 1, T0)
        .await
        .unwrap();
    store
        .put_browser_state(
            SESSION,
            &"h".repeat(128),
            Some(&"b".repeat(128)),
            "{}",
            T0 + 1,
            T0,
        )
        .await
        .unwrap();
}

// ----- users -----

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

pub async fn user_crud(db: &Db) {
    let store = &db.store;
    let alice = store
        .create_user("alice", HASH, r#"{"email":"alice@example.org"}"#, T0)
        .await
        .unwrap();
    assert_eq!(
        (alice.disabled, alice.created_at, alice.updated_at),
        (false, T0, T0)
    );
    assert_eq!(store.get_user("alice").await.unwrap(), alice);
    assert!(matches!(
        store.create_user("alice", HASH, "{}", T0).await,
        Err(StoreError::Conflict(_))
    ));
    // Names are bytewise: case matters, and the order is the same on both databases.
    let bob = store.create_user("Bob", HASH, "{}", T0 + 1).await.unwrap();
    let zoe = store.create_user("zoë", HASH, "{}", T0 + 2).await.unwrap();
    let spaced = store
        .create_user("Alice Smith", HASH, "{}", T0 + 3)
        .await
        .unwrap();
    assert!(matches!(
        store.get_user("ALICE").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![spaced, bob, alice.clone(), zoe]
    );

    let debug = format!("{alice:?}");
    assert!(
        !debug.contains("argon2") && debug.contains("redacted"),
        "{debug}"
    );

    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    store
        .set_user_password("alice", new_hash, T0 + 10)
        .await
        .unwrap();
    store
        .set_user_disabled("alice", true, T0 + 11)
        .await
        .unwrap();
    store
        .set_user_attributes("alice", r#"{"email":"a@example.org"}"#, T0 + 12)
        .await
        .unwrap();
    let got = store.get_user("alice").await.unwrap();
    assert_eq!(got.password_hash, new_hash);
    assert!(got.disabled);
    assert_eq!(got.attributes, r#"{"email":"a@example.org"}"#);
    assert_eq!((got.created_at, got.updated_at), (T0, T0 + 12));
    store
        .set_user_disabled("alice", false, T0 + 13)
        .await
        .unwrap();
    assert!(!store.get_user("alice").await.unwrap().disabled);

    for r in [
        store.set_user_password("nobody", HASH, T0).await,
        store.set_user_disabled("nobody", true, T0).await,
        store.set_user_attributes("nobody", "{}", T0).await,
        store.delete_user("nobody").await.map(drop),
    ] {
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    }
    store.delete_user("alice").await.unwrap();
    assert!(matches!(
        store.get_user("alice").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}

pub async fn user_validation(db: &Db) {
    let store = &db.store;
    for name in ["", &"u".repeat(129), "a\nb", "nul\0", "del\u{7f}"] {
        let r = store.create_user(name, HASH, "{}", T0).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{name:?}: {r:?}");
    }
    store
        .create_user(&"u".repeat(128), HASH, "{}", T0)
        .await
        .unwrap();
    for hash in ["", "has space", "é", &"h".repeat(1025)] {
        let r = store.create_user("carol", hash, "{}", T0).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{hash:?}: {r:?}");
    }
    for attributes in ["", "[]", "{"] {
        let r = store.create_user("carol", HASH, attributes, T0).await;
        assert!(
            matches!(r, Err(StoreError::Invalid(_))),
            "{attributes:?}: {r:?}"
        );
    }
    let carol = store.create_user("carol", HASH, "{}", T0).await.unwrap();
    assert!(matches!(
        store.set_user_password("carol", "", T0 + 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_user_attributes("carol", "1", T0 + 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.get_user("carol").await.unwrap(), carol);
}
