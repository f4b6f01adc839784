//! The key manager: the trust domain's CA, its JWT-SVID and WIT-SVID signing keys and the
//! OAuth authorization server's token-signing keys, persisted in the store and rotated on
//! a schedule with overlap.
//!
//! OAuth token keys (ES256) follow the JWT/WIT schedule but are published only in the
//! authorization server's JWKS (`/oauth/jwks`), never in the SPIFFE bundle: an access
//! token must not verify as an SVID, nor an SVID as an access token.
//!
//! # Life of a key
//!
//! Every key is a [`KeyRecord`] with a state. A key is *published* (in the trust bundle)
//! from the moment it is stored until its `not_after`, and *signs* only while it is
//! `Current`:
//!
//! ```text
//!   stored as Next ──(≥ refresh hint later, at the activation time)──► Current
//!   Current ──(successor promoted)──► Previous ──(not_after passed)──► deleted
//! ```
//!
//! * **Next before current.** A successor is stored as `Next` (and so published) at the
//!   *staging* time and promoted only when, in addition, at least one bundle refresh hint
//!   plus one storage poll interval (`H` below) has passed since it was stored: every node
//!   serves it within a poll, so relying parties that refresh at the hint, from any node,
//!   already trust it when it starts signing.
//! * **Previous until expiry.** Everything a key signed expires by the key's own
//!   `not_after` (SVID and token lifetimes are clamped to it), so a `Previous` key stays
//!   published exactly until then.
//! * **Schedules.** A CA valid for `ttl` stages its successor at `ttl/2` and hands over
//!   at `5·ttl/6`. A JWT/WIT key with rotation period `P` and prepublication `H` is valid
//!   for `H + 2P`: it stages its successor `P` after it was stored, hands over at `P + H`,
//!   and stays published for `P` after that.
//! * **Crash safety.** Every step is one store call (one transaction): a new key is stored
//!   before it is used, a promotion swaps states all or nothing. After `kill -9` the
//!   server reloads the same keys; a step that did not commit is redone by the next tick.
//!   The database allows one `Current` and one `Next` per kind, so two nodes racing for
//!   the same step cannot both win; the loser reloads.
//!
//! [`KeyManager::tick`] runs the schedule once at the manager's [`Clock`]; the server
//! calls it periodically, tests call it after moving a `ManualClock`.
//!
//! # Sealed keys
//!
//! With a key-encryption key (`[keys] encryption_key_file`), every key is stored sealed:
//! [`SEALED_PREFIX`] followed by AES-256-GCM `nonce || ciphertext || tag` of the PKCS#8,
//! with the kind and kid as associated data (a sealed key moved to another row does not
//! open). Keys stored in plain PKCS#8 before the KEK was configured are still read, and
//! are sealed in place at the next tick. A sealed key is never read as plain PKCS#8:
//! without the KEK, or with another one, loading fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, TrustDomain};
use aims_crypto::{Algorithm, Kek, Signer as _, SigningKey};
use aims_pki::{CaOptions, CertificateAuthority, SpiffeBundle};
use aims_store::{KeyKind, KeyRecord, KeyState, Store, StoreError};
use zeroize::Zeroizing;

use crate::ServerError;
use crate::config::Config;
use crate::notify::Changes;

/// What a sealed `signing_keys.pkcs8` value starts with (a PKCS#8 DER starts with 0x30).
pub const SEALED_PREFIX: &[u8] = b"aims-kek1:";

/// Rotation parameters, all in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Validity of each CA certificate.
    pub ca_ttl: i64,
    /// CA key algorithm.
    pub ca_alg: Algorithm,
    /// JWT-SVID / WIT-SVID key algorithm.
    pub jws_alg: Algorithm,
    /// How long a JWT/WIT key signs.
    pub jws_period: i64,
    /// How long a key is published before it signs: the bundle refresh hint, plus the
    /// storage poll interval, so that relying parties fetching from a node that has not
    /// seen the new key yet still get it one refresh hint before it signs.
    pub prepublish: i64,
    /// The bundle's `spiffe_refresh_hint`.
    pub refresh_hint: i64,
}

impl KeyPolicy {
    /// The policy of a configuration.
    pub fn from_config(c: &Config) -> Self {
        Self {
            ca_ttl: c.ca.ttl.get_ref().as_i64(),
            ca_alg: c.ca.key_type.algorithm(),
            jws_alg: c.jwt.key_type.get_ref().algorithm(),
            jws_period: c.jwt.rotation_period.get_ref().as_i64(),
            prepublish: c
                .bundle
                .refresh_hint
                .as_i64()
                .saturating_add(c.storage.poll_interval.as_i64()),
            refresh_hint: c.bundle.refresh_hint.as_i64(),
        }
    }

    /// (stage successor, promote successor) offsets from a key's `not_before`.
    fn schedule(&self, kind: KeyKind) -> (i64, i64) {
        match kind {
            KeyKind::X509Ca => {
                let stage = self.ca_ttl / 2;
                (stage, (self.ca_ttl / 6 * 5).max(stage + self.prepublish))
            }
            KeyKind::JwtSvid | KeyKind::WitSvid | KeyKind::OAuthToken => {
                (self.jws_period, self.jws_period + self.prepublish)
            }
        }
    }

    /// Validity of a JWT/WIT key stored at `now`.
    fn jws_not_after(&self, now: i64) -> i64 {
        now.saturating_add(self.prepublish)
            .saturating_add(self.jws_period.saturating_mul(2))
    }
}

/// The kinds [`KeyManager::tick`] rotates.
const SCHEDULED_KINDS: [KeyKind; 4] = [
    KeyKind::X509Ca,
    KeyKind::JwtSvid,
    KeyKind::WitSvid,
    KeyKind::OAuthToken,
];

/// The algorithm of OAuth token-signing keys (RFC 9068 access tokens, RFC 9701
/// introspection responses).
pub const OAUTH_TOKEN_ALG: Algorithm = Algorithm::ES256;

/// A key's place in the schedule, without its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id (the CA certificate's `x5t#S256`, or the JWK thumbprint).
    pub kid: String,
    /// State.
    pub state: KeyState,
    /// Start of validity.
    pub not_before: i64,
    /// End of validity (and of publication).
    pub not_after: i64,
    /// When it was stored.
    pub created_at: i64,
}

impl KeyInfo {
    /// Whether the key may sign at `now`: before its `not_after`. A key set that could
    /// not be refreshed (the database unreachable when the schedule ran) may still hold
    /// a `Current` key past its end; nothing is signed with it then.
    pub fn signs_at(&self, now: i64) -> bool {
        now < self.not_after
    }
}

impl KeyInfo {
    fn of(r: &KeyRecord) -> Self {
        Self {
            kid: r.kid.clone(),
            state: r.state,
            not_before: r.not_before,
            not_after: r.not_after,
            created_at: r.created_at,
        }
    }
}

/// One step of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// No usable current key: store a fresh one as `Current` (replacing `expired`).
    Bootstrap { expired: Option<String> },
    /// Store a fresh successor as `Next`.
    Stage,
    /// `next` becomes `Current`, `current` (if any) `Previous`.
    Promote {
        current: Option<String>,
        next: String,
    },
    /// Delete a key whose validity ended.
    Drop(String),
}

/// Decides the steps for one kind at `now`. Pure, so the schedule is unit-tested.
fn plan(policy: &KeyPolicy, kind: KeyKind, keys: &[KeyInfo], now: i64) -> Vec<Step> {
    let (stage_at, promote_at) = policy.schedule(kind);
    let current = keys.iter().find(|k| k.state == KeyState::Current);
    let next = keys.iter().find(|k| k.state == KeyState::Next);
    let mut steps = Vec::new();
    for k in keys {
        let stale = match k.state {
            KeyState::Previous | KeyState::Retired => now >= k.not_after,
            KeyState::Next => now >= k.not_after,
            KeyState::Current => false,
        };
        if stale {
            steps.push(Step::Drop(k.kid.clone()));
        }
    }
    let next_usable = next.filter(|n| now < n.not_after);
    match current {
        Some(c) if now < c.not_after => {
            let age = now.saturating_sub(c.not_before);
            match next_usable {
                None if age >= stage_at => steps.push(Step::Stage),
                Some(n)
                    if age >= promote_at
                        && now >= n.created_at.saturating_add(policy.prepublish) =>
                {
                    steps.push(Step::Promote {
                        current: Some(c.kid.clone()),
                        next: n.kid.clone(),
                    });
                }
                _ => {}
            }
        }
        // No current key, or it expired (the server was down past the whole schedule):
        // promote a staged successor at once, or start afresh.
        Some(c) => match next_usable {
            Some(n) => steps.push(Step::Promote {
                current: Some(c.kid.clone()),
                next: n.kid.clone(),
            }),
            None => steps.push(Step::Bootstrap {
                expired: Some(c.kid.clone()),
            }),
        },
        None => match next_usable {
            Some(n) => steps.push(Step::Promote {
                current: None,
                next: n.kid.clone(),
            }),
            None => steps.push(Step::Bootstrap { expired: None }),
        },
    }
    steps
}

/// A CA with its schedule data.
#[derive(Debug, Clone)]
pub struct HeldCa {
    /// Schedule data.
    pub info: KeyInfo,
    /// The CA.
    pub ca: Arc<CertificateAuthority>,
}

/// A JWT/WIT signing key with its schedule data.
#[derive(Debug, Clone)]
pub struct HeldKey {
    /// Schedule data.
    pub info: KeyInfo,
    /// The key.
    pub key: Arc<SigningKey>,
}

/// A consistent view of every usable key, swapped whole on every change.
#[derive(Debug)]
pub struct KeySet {
    cas: Vec<HeldCa>,
    jwt: Vec<HeldKey>,
    wit: Vec<HeldKey>,
    oauth: Vec<HeldKey>,
    bundle: Arc<SpiffeBundle>,
}

impl KeySet {
    /// The CA that issues X509-SVIDs now.
    pub fn ca(&self) -> Option<&HeldCa> {
        self.cas.iter().find(|c| c.info.state == KeyState::Current)
    }
    /// The JWT-SVID signing key.
    pub fn jwt(&self) -> Option<&HeldKey> {
        self.jwt.iter().find(|k| k.info.state == KeyState::Current)
    }
    /// The WIT-SVID signing key.
    pub fn wit(&self) -> Option<&HeldKey> {
        self.wit.iter().find(|k| k.info.state == KeyState::Current)
    }
    /// The OAuth token-signing key.
    pub fn oauth(&self) -> Option<&HeldKey> {
        self.oauth
            .iter()
            .find(|k| k.info.state == KeyState::Current)
    }
    /// Every published CA (next, current, previous).
    pub fn cas(&self) -> &[HeldCa] {
        &self.cas
    }
    /// Every published key of a JWS kind.
    pub fn keys(&self, kind: KeyKind) -> &[HeldKey] {
        match kind {
            KeyKind::JwtSvid => &self.jwt,
            KeyKind::WitSvid => &self.wit,
            KeyKind::OAuthToken => &self.oauth,
            KeyKind::X509Ca => &[],
        }
    }
    /// The trust domain's bundle: every published CA and key.
    pub fn bundle(&self) -> &Arc<SpiffeBundle> {
        &self.bundle
    }
}

/// Loads, rotates and serves the trust domain's keys.
pub struct KeyManager {
    trust_domain: TrustDomain,
    store: Store,
    clock: Arc<dyn Clock>,
    policy: KeyPolicy,
    set: RwLock<Option<Arc<KeySet>>>,
    last_sequence: std::sync::Mutex<u64>,
    changes: Changes,
    /// Serialises ticks within the process.
    tick_lock: tokio::sync::Mutex<()>,
    /// Seals the keys stored, opens sealed ones (`[keys] encryption_key_file`).
    kek: Option<Arc<Kek>>,
    /// Whether a plain key was read although a KEK is configured (logged once).
    plain_key_logged: AtomicBool,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("trust_domain", &self.trust_domain)
            .field("policy", &self.policy)
            .field("sealed", &self.kek.is_some())
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A manager over `store`; call [`KeyManager::tick`] once before use (it creates the
    /// first keys, or loads the stored ones).
    pub fn new(
        trust_domain: TrustDomain,
        store: Store,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
        changes: Changes,
    ) -> Self {
        Self {
            trust_domain,
            store,
            clock,
            policy,
            set: RwLock::new(None),
            last_sequence: std::sync::Mutex::new(0),
            changes,
            tick_lock: tokio::sync::Mutex::new(()),
            kek: None,
            plain_key_logged: AtomicBool::new(false),
        }
    }

    /// Seals every key stored from now on with `kek`, and opens sealed keys with it.
    pub fn with_kek(mut self, kek: Option<Arc<Kek>>) -> Self {
        self.kek = kek;
        self
    }

    /// The stored form of a key's PKCS#8: sealed with the KEK, if there is one.
    fn seal(
        &self,
        kind: KeyKind,
        kid: &str,
        pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, ServerError> {
        let Some(kek) = &self.kek else {
            return Ok(pkcs8);
        };
        let sealed = kek.seal(&pkcs8, &sealing_aad(kind, kid))?;
        let mut out = Zeroizing::new(Vec::with_capacity(SEALED_PREFIX.len() + sealed.len()));
        out.extend_from_slice(SEALED_PREFIX);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// A stored key's PKCS#8: opened with the KEK if sealed. A sealed key never passes
    /// as plain PKCS#8.
    fn unseal(&self, rec: &KeyRecord) -> Result<Zeroizing<Vec<u8>>, ServerError> {
        let bad = |reason: String| ServerError::BadStoredKey {
            kind: rec.kind,
            kid: rec.kid.clone(),
            reason,
        };
        match (rec.pkcs8.strip_prefix(SEALED_PREFIX), &self.kek) {
            (Some(sealed), Some(kek)) => kek
                .open(sealed, &sealing_aad(rec.kind, &rec.kid))
                .map_err(|_| {
                    bad("it is sealed, and [keys] encryption_key_file does not open it (another key-encryption key, or the record was altered or moved)".into())
                }),
            (Some(_), None) => Err(bad(
                "it is sealed with a key-encryption key, and no [keys] encryption_key_file is configured; set it to the file the keys were sealed with".into(),
            )),
            (None, Some(_)) => {
                if !self.plain_key_logged.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        kind = %rec.kind,
                        kid = %rec.kid,
                        "a stored key is not sealed (stored before [keys] encryption_key_file was set); it is still used, and sealed in place at the next key schedule tick"
                    );
                }
                Ok(rec.pkcs8.clone())
            }
            (None, None) => Ok(rec.pkcs8.clone()),
        }
    }

    /// The current key set, if keys were loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The rotation policy.
    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// The manager's clock, now.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Runs the schedule at the clock's time for every kind, then reloads the keys from
    /// the store. Returns whether the published key set changed.
    pub async fn tick(&self) -> Result<bool, ServerError> {
        let _guard = self.tick_lock.lock().await;
        for kind in SCHEDULED_KINDS {
            let records = self.store.list_keys(kind).await?;
            let infos: Vec<KeyInfo> = records.iter().map(KeyInfo::of).collect();
            let now = self.clock.now();
            for step in plan(&self.policy, kind, &infos, now) {
                match self.apply(kind, &step, now).await {
                    Ok(()) => {
                        tracing::info!(kind = %kind, step = ?step, "key schedule");
                        if matches!(step, Step::Promote { .. } | Step::Bootstrap { .. }) {
                            metrics::counter!("aims_key_rotations_total", "kind" => kind.as_str())
                                .increment(1);
                        }
                    }
                    // Another node took the same step first: its result is reloaded below.
                    Err(ServerError::Store(
                        StoreError::Conflict(reason) | StoreError::NotFound(reason),
                    )) => {
                        tracing::info!(kind = %kind, %reason, "key schedule step already taken elsewhere");
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.seal_plain_keys(kind, &records).await?;
        }
        self.reload().await
    }

    /// With a key-encryption key, seals in place the keys of `kind` that were stored in
    /// plain before it was configured (once: a node that sealed it first wins, and the key
    /// itself does not change).
    async fn seal_plain_keys(
        &self,
        kind: KeyKind,
        records: &[KeyRecord],
    ) -> Result<(), ServerError> {
        if self.kek.is_none() {
            return Ok(());
        }
        for rec in records {
            if rec.pkcs8.starts_with(SEALED_PREFIX) {
                continue;
            }
            let sealed = self.seal(kind, &rec.kid, rec.pkcs8.clone())?;
            if self
                .store
                .seal_key_material(kind, &rec.kid, SEALED_PREFIX, &sealed)
                .await?
            {
                tracing::info!(kind = %kind, kid = %rec.kid, "a plain stored key is now sealed");
            }
        }
        Ok(())
    }

    async fn apply(&self, kind: KeyKind, step: &Step, now: i64) -> Result<(), ServerError> {
        match step {
            Step::Drop(kid) => Ok(self.store.delete_key(kind, kid).await?),
            Step::Stage => {
                let rec = self.fresh(kind, KeyState::Next, now)?;
                Ok(self.store.put_key(&rec).await?)
            }
            Step::Bootstrap { expired: None } => {
                let rec = self.fresh(kind, KeyState::Current, now)?;
                Ok(self.store.put_key(&rec).await?)
            }
            Step::Bootstrap { expired: Some(old) } => {
                let rec = self.fresh(kind, KeyState::Current, now)?;
                Ok(self
                    .store
                    .rotate_keys(kind, Some(&rec), &[(old.as_str(), KeyState::Previous)])
                    .await?)
            }
            Step::Promote { current, next } => {
                let mut states = vec![(next.as_str(), KeyState::Current)];
                if let Some(c) = current {
                    states.push((c.as_str(), KeyState::Previous));
                }
                Ok(self.store.set_key_states(kind, &states).await?)
            }
        }
    }

    /// A new key of `kind` in `state`, as a record ready to store.
    fn fresh(&self, kind: KeyKind, state: KeyState, now: i64) -> Result<KeyRecord, ServerError> {
        match kind {
            KeyKind::X509Ca => {
                let opts = CaOptions {
                    validity: Duration::from_secs(u64::try_from(self.policy.ca_ttl).unwrap_or(1)),
                    algorithm: self.policy.ca_alg,
                    path_len: None,
                };
                let ca = CertificateAuthority::new_root_with(
                    &self.trust_domain,
                    &opts,
                    Arc::clone(&self.clock),
                )?;
                let kid = aims_pki::x5t_s256(ca.x509_authority());
                let pkcs8 = self.seal(kind, &kid, ca.to_pkcs8()?)?;
                let chain: Vec<Vec<u8>> = ca.chain().iter().map(|c| c.to_vec()).collect();
                Ok(KeyRecord {
                    kind,
                    kid,
                    alg: self.policy.ca_alg.name().to_owned(),
                    pkcs8,
                    cert_chain_der: chain,
                    state,
                    not_before: ca.not_before(),
                    not_after: ca.not_after(),
                    created_at: now,
                })
            }
            KeyKind::JwtSvid | KeyKind::WitSvid | KeyKind::OAuthToken => {
                let alg = if kind == KeyKind::OAuthToken {
                    OAUTH_TOKEN_ALG
                } else {
                    self.policy.jws_alg
                };
                let key = SigningKey::generate(alg)?;
                let kid = key.kid().to_owned();
                let pkcs8 = self.seal(kind, &kid, key.to_pkcs8()?)?;
                Ok(KeyRecord {
                    kind,
                    kid,
                    alg: alg.name().to_owned(),
                    pkcs8,
                    cert_chain_der: Vec::new(),
                    state,
                    not_before: now,
                    not_after: self.policy.jws_not_after(now),
                    created_at: now,
                })
            }
        }
    }

    /// Reloads every key from the store and rebuilds the bundle. Returns whether the
    /// published keys changed (subscribers are then notified). Keys already held are
    /// reused, so only new keys are parsed.
    pub async fn reload(&self) -> Result<bool, ServerError> {
        let now = self.clock.now();
        let old = self.current();
        let mut cas = Vec::new();
        for rec in self.store.list_keys(KeyKind::X509Ca).await? {
            if !published(&rec, now) {
                continue;
            }
            let held = old
                .as_deref()
                .and_then(|o| o.cas.iter().find(|c| c.info.kid == rec.kid))
                .map(|c| Arc::clone(&c.ca));
            let ca = match held {
                Some(ca) => ca,
                None => {
                    let pkcs8 = self.unseal(&rec)?;
                    let ca = import_ca(&rec, &pkcs8, Arc::clone(&self.clock))?;
                    if ca.trust_domain() != &self.trust_domain {
                        return Err(ServerError::BadStoredKey {
                            kind: rec.kind,
                            kid: rec.kid,
                            reason: format!(
                                "the CA is for trust domain `{}`, but this server is `{}`",
                                ca.trust_domain(),
                                self.trust_domain
                            ),
                        });
                    }
                    Arc::new(ca)
                }
            };
            cas.push(HeldCa {
                info: KeyInfo::of(&rec),
                ca,
            });
        }
        let jwt = self
            .load_jws(
                KeyKind::JwtSvid,
                now,
                old.as_deref().map(|o| o.jwt.as_slice()),
            )
            .await?;
        let wit = self
            .load_jws(
                KeyKind::WitSvid,
                now,
                old.as_deref().map(|o| o.wit.as_slice()),
            )
            .await?;
        let oauth = self
            .load_jws(
                KeyKind::OAuthToken,
                now,
                old.as_deref().map(|o| o.oauth.as_slice()),
            )
            .await?;

        // The bundle's keys, and the OAuth keys (published apart, in the JWKS).
        let bundle_keys = |s: &KeySet| -> Vec<(String, KeyState)> {
            s.cas
                .iter()
                .map(|c| &c.info)
                .chain(s.jwt.iter().map(|k| &k.info))
                .chain(s.wit.iter().map(|k| &k.info))
                .map(|i| (i.kid.clone(), i.state))
                .collect()
        };
        let oauth_keys = |s: &KeySet| -> Vec<(String, KeyState)> {
            s.oauth
                .iter()
                .map(|k| (k.info.kid.clone(), k.info.state))
                .collect()
        };
        let mut set = KeySet {
            cas,
            jwt,
            wit,
            oauth,
            bundle: Arc::new(SpiffeBundle::new(self.trust_domain.clone())),
        };
        let bundle_changed = old
            .as_deref()
            .is_none_or(|o| bundle_keys(o) != bundle_keys(&set));
        let oauth_changed = old
            .as_deref()
            .is_none_or(|o| oauth_keys(o) != oauth_keys(&set));
        if !bundle_changed && !oauth_changed {
            return Ok(false);
        }
        set.bundle = match old.as_deref() {
            Some(o) if !bundle_changed => Arc::clone(&o.bundle),
            _ => Arc::new(self.build_bundle(&set, now)?),
        };
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
        // Only a bundle change concerns the Workload API streams.
        if bundle_changed {
            self.changes.bump();
        }
        Ok(true)
    }

    async fn load_jws(
        &self,
        kind: KeyKind,
        now: i64,
        held: Option<&[HeldKey]>,
    ) -> Result<Vec<HeldKey>, ServerError> {
        let mut out = Vec::new();
        for rec in self.store.list_keys(kind).await? {
            if !published(&rec, now) {
                continue;
            }
            if let Some(k) = held.and_then(|h| h.iter().find(|k| k.info.kid == rec.kid)) {
                out.push(HeldKey {
                    info: KeyInfo::of(&rec),
                    key: Arc::clone(&k.key),
                });
                continue;
            }
            let bad = |reason: String| ServerError::BadStoredKey {
                kind,
                kid: rec.kid.clone(),
                reason,
            };
            let alg = Algorithm::from_name(&rec.alg).map_err(|e| bad(e.to_string()))?;
            let pkcs8 = self.unseal(&rec)?;
            let key = SigningKey::from_pkcs8(alg, &pkcs8)
                .map_err(|e| bad(e.to_string()))?
                .with_kid(rec.kid.clone());
            out.push(HeldKey {
                info: KeyInfo::of(&rec),
                key: Arc::new(key),
            });
        }
        Ok(out)
    }

    fn build_bundle(&self, set: &KeySet, now: i64) -> Result<SpiffeBundle, ServerError> {
        let mut b = SpiffeBundle::new(self.trust_domain.clone());
        // Current first, then next, then previous: the order relying parties see.
        let rank = |s: KeyState| match s {
            KeyState::Current => 0,
            KeyState::Next => 1,
            KeyState::Previous => 2,
            KeyState::Retired => 3,
        };
        let mut cas: Vec<&HeldCa> = set.cas.iter().collect();
        cas.sort_by_key(|c| rank(c.info.state));
        for c in cas {
            b.add_x509_authority(c.ca.x509_authority().clone())?;
        }
        let mut jwt: Vec<&HeldKey> = set.jwt.iter().collect();
        jwt.sort_by_key(|k| rank(k.info.state));
        for k in jwt {
            b.add_jwt_authority(k.key.public_jwk().clone())?;
        }
        let mut wit: Vec<&HeldKey> = set.wit.iter().collect();
        wit.sort_by_key(|k| rank(k.info.state));
        for k in wit {
            b.add_wit_authority(k.key.public_jwk().clone())?;
        }
        b.set_refresh_hint(u64::try_from(self.policy.refresh_hint).ok());
        // spiffe_sequence must grow with every change, across restarts too: the time of
        // the change, or one more than the last value if the clock did not move.
        let mut last = self
            .last_sequence
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seq = u64::try_from(now).unwrap_or(0).max(last.saturating_add(1));
        *last = seq;
        b.set_sequence(Some(seq));
        Ok(b)
    }
}

/// The associated data a key is sealed under: its kind and kid, so that a sealed key
/// does not open in another row.
fn sealing_aad(kind: KeyKind, kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(kind.as_str().len() + 1 + kid.len());
    aad.extend_from_slice(kind.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

/// Whether a stored key belongs in the key set (published and not expired).
fn published(rec: &KeyRecord, now: i64) -> bool {
    rec.state != KeyState::Retired && now < rec.not_after
}

/// A CA from its stored record and its (unsealed) PKCS#8, every CA rule checked again.
fn import_ca(
    rec: &KeyRecord,
    pkcs8: &[u8],
    clock: Arc<dyn Clock>,
) -> Result<CertificateAuthority, ServerError> {
    let chain = rec
        .cert_chain_der
        .iter()
        .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
        .collect();
    CertificateAuthority::from_der(chain, pkcs8, clock).map_err(|e| ServerError::BadStoredKey {
        kind: rec.kind,
        kid: rec.kid.clone(),
        reason: e.to_string(),
    })
}

/// Key infos per kind, for the admin API and tests.
pub fn describe(set: &KeySet) -> BTreeMap<&'static str, Vec<KeyInfo>> {
    let mut m = BTreeMap::new();
    m.insert(
        KeyKind::X509Ca.as_str(),
        set.cas.iter().map(|c| c.info.clone()).collect(),
    );
    m.insert(
        KeyKind::JwtSvid.as_str(),
        set.jwt.iter().map(|k| k.info.clone()).collect(),
    );
    m.insert(
        KeyKind::WitSvid.as_str(),
        set.wit.iter().map(|k| k.info.clone()).collect(),
    );
    m.insert(
        KeyKind::OAuthToken.as_str(),
        set.oauth.iter().map(|k| k.info.clone()).collect(),
    );
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy() -> KeyPolicy {
        KeyPolicy {
            ca_ttl: 6000,
            ca_alg: Algorithm::ES256,
            jws_alg: Algorithm::ES256,
            jws_period: 1000,
            prepublish: 100,
            refresh_hint: 100,
        }
    }

    fn key(kid: &str, state: KeyState, nb: i64, na: i64, created: i64) -> KeyInfo {
        KeyInfo {
            kid: kid.into(),
            state,
            not_before: nb,
            not_after: na,
            created_at: created,
        }
    }

    #[test]
    fn empty_store_bootstraps() {
        assert_eq!(
            plan(&policy(), KeyKind::JwtSvid, &[], 0),
            [Step::Bootstrap { expired: None }]
        );
    }

    #[test]
    fn jws_schedule_stages_then_promotes_after_the_refresh_hint() {
        let p = policy();
        let a = key("a", KeyState::Current, 0, 2100, 0);
        let k = KeyKind::JwtSvid;
        assert!(plan(&p, k, std::slice::from_ref(&a), 999).is_empty());
        assert_eq!(plan(&p, k, std::slice::from_ref(&a), 1000), [Step::Stage]);
        // Staged late (at 1090): due at 1100, but must be published for 100 s first.
        let b = key("b", KeyState::Next, 1090, 3290, 1090);
        assert!(plan(&p, k, &[a.clone(), b.clone()], 1100).is_empty());
        assert_eq!(
            plan(&p, k, &[a.clone(), b.clone()], 1190),
            [Step::Promote {
                current: Some("a".into()),
                next: "b".into()
            }]
        );
        // The previous key is dropped when its validity ends, not before.
        let a_prev = key("a", KeyState::Previous, 0, 2100, 0);
        let b_cur = key("b", KeyState::Current, 1090, 3290, 1090);
        assert!(plan(&p, k, &[a_prev.clone(), b_cur.clone()], 2089).is_empty());
        assert_eq!(
            plan(&p, k, &[a_prev, b_cur], 2100),
            [Step::Drop("a".into()), Step::Stage]
        );
    }

    #[test]
    fn ca_schedule_half_and_five_sixths() {
        let p = policy();
        let a = key("a", KeyState::Current, 0, 6000, 0);
        let k = KeyKind::X509Ca;
        assert!(plan(&p, k, std::slice::from_ref(&a), 2999).is_empty());
        assert_eq!(plan(&p, k, std::slice::from_ref(&a), 3000), [Step::Stage]);
        let b = key("b", KeyState::Next, 3000, 9000, 3000);
        assert!(plan(&p, k, &[a.clone(), b.clone()], 4999).is_empty());
        assert_eq!(
            plan(&p, k, &[a, b], 5000),
            [Step::Promote {
                current: Some("a".into()),
                next: "b".into()
            }]
        );
    }

    #[test]
    fn expired_current_is_replaced() {
        let p = policy();
        let a = key("a", KeyState::Current, 0, 2100, 0);
        assert_eq!(
            plan(&p, KeyKind::WitSvid, std::slice::from_ref(&a), 5000),
            [Step::Bootstrap {
                expired: Some("a".into())
            }]
        );
        let b = key("b", KeyState::Next, 1000, 6000, 1000);
        assert_eq!(
            plan(&p, KeyKind::WitSvid, &[a, b], 5000),
            [Step::Promote {
                current: Some("a".into()),
                next: "b".into()
            }]
        );
    }
}
