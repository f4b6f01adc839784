//! Replay detection across guard instances sharing one store, and audit events.

use std::sync::Arc;

use aims_guard::{Decision, Guard, ReplayCache};
use aims_store::Store;

use crate::common::{AGENT, AUTHORITY, Env, app, client, problem_code, serve};

/// Two guards serving [`app`], each with its own connection to one SQLite database (kept
/// in the returned directory) as its replay cache.
async fn two_guards_sharing_a_store(env: &Env) -> (Vec<std::net::SocketAddr>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("aims.db").display());
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(Store::connect(&url).await.unwrap());
        let cfg = env
            .config()
            .replay_cache(ReplayCache::store(store))
            .build()
            .unwrap();
        addrs.push(serve(app(&Guard::new(cfg).unwrap())).await);
    }
    (addrs, dir)
}

#[tokio::test]
async fn replay_across_two_guards_sharing_a_sqlite_store_is_rejected() {
    let env = Env::new();
    let (addrs, _dir) = two_guards_sharing_a_store(&env).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let wpt = env.wpt(&key, &wit, &format!("{AUTHORITY}/whoami"), None);
    let send = |addr| {
        client()
            .get(format!("http://{addr}/whoami"))
            .header("workload-identity-token", &wit)
            .header("workload-proof-token", &wpt)
            .send()
    };
    assert_eq!(send(addrs[0]).await.unwrap().status(), 200);
    let r = send(addrs[1]).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wpt-replayed");

    // Signature nonces too.
    let req = crate::wimse::signed(
        &env,
        addrs[0],
        &key,
        &wit,
        ("POST", "/whoami", b"x"),
        ("POST", "/whoami", b"x"),
        false,
    )
    .build()
    .unwrap();
    let mut again = client()
        .post(format!("http://{}/whoami", addrs[1]))
        .body("x");
    for (k, v) in req.headers() {
        again = again.header(k, v);
    }
    assert_eq!(client().execute(req).await.unwrap().status(), 200);
    let r = again.send().await.unwrap();
    assert_eq!(problem_code(r).await, "httpsig-replayed");
}

/// RFC 9449 §8 nonces across replicas sharing a store: a nonce one guard handed out is
/// accepted by the other; an invented one is refused; with memory replay caches each
/// replica knows only its own.
#[tokio::test]
async fn dpop_nonces_are_shared_by_guards_sharing_a_store() {
    use aims_crypto::{Algorithm, SigningKey};
    use aims_jose::dpop::create_proof;

    let env = Env::new();
    let (shared, _dir) = two_guards_sharing_a_store(&env).await;
    let separate = [
        serve(app(&env.guard())).await,
        serve(app(&env.guard())).await,
    ];
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let htu = format!("{AUTHORITY}/whoami");
    let send = |addr: std::net::SocketAddr, nonce: Option<&str>| {
        let proof = create_proof(&key, "GET", &htu, Some(&at), nonce, env.now()).unwrap();
        client()
            .get(format!("http://{addr}/whoami"))
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof)
            .send()
    };
    for (pair, accepted) in [(shared, 200), (separate.to_vec(), 401)] {
        let r = send(pair[0], None).await.unwrap();
        assert_eq!(r.status(), 401);
        let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        assert_eq!(
            send(pair[1], Some(&nonce)).await.unwrap().status(),
            accepted
        );
        let r = send(pair[1], Some("an-invented-nonce")).await.unwrap();
        assert_eq!(problem_code(r).await, "dpop-use-nonce");
    }
}

#[tokio::test]
async fn memory_replay_cache_fails_closed_when_full() {
    let env = Env::new();
    let cfg = env
        .config()
        .replay_cache(ReplayCache::memory(0))
        .build()
        .unwrap();
    let addr = serve(app(&Guard::new(cfg).unwrap())).await;
    let (key, wit) = env.wit_for(AGENT, 3600);
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .header("workload-identity-token", &wit)
        .header(
            "workload-proof-token",
            env.wpt(&key, &wit, &format!("{AUTHORITY}/whoami"), None),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

/// A DPoP proof takes a replay slot only once its access token is valid and bound to
/// the proof's key: proofs for a made-up token (any key will do, the nonce is public)
/// must not fill the cache and lock out real callers.
#[tokio::test]
async fn dpop_proofs_for_invalid_tokens_take_no_replay_slot() {
    let env = Env::new();
    let cfg = env
        .config()
        .replay_cache(ReplayCache::memory(1))
        .build()
        .unwrap();
    let guard = Guard::new(cfg).unwrap();
    let addr = serve(app(&guard)).await;
    let htu = format!("{AUTHORITY}/whoami");
    let send = |token: String, proof: String| {
        client()
            .get(format!("http://{addr}/whoami"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let attacker = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    for _ in 0..3 {
        let proof = aims_jose::dpop::create_proof(
            &attacker,
            "GET",
            &htu,
            Some("made-up"),
            Some(&guard.dpop_nonce()),
            env.now(),
        )
        .unwrap();
        let r = send("made-up".into(), proof).await.unwrap();
        assert_eq!(r.status(), 401);
        let www = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(www.contains("error=\"invalid_token\""), "{www}");
    }
    // A token bound to another key: the proof is valid, the binding is not.
    let other = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    let foreign = env.access_token("user:alice", AGENT, &other);
    let proof = aims_jose::dpop::create_proof(
        &attacker,
        "GET",
        &htu,
        Some(&foreign),
        Some(&guard.dpop_nonce()),
        env.now(),
    )
    .unwrap();
    assert_eq!(send(foreign, proof).await.unwrap().status(), 401);

    // The one slot is still free for a real caller; its proof is then recorded.
    let key = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let proof = |at: &str| {
        aims_jose::dpop::create_proof(
            &key,
            "GET",
            &htu,
            Some(at),
            Some(&guard.dpop_nonce()),
            env.now(),
        )
        .unwrap()
    };
    let first = proof(&at);
    assert_eq!(send(at.clone(), first.clone()).await.unwrap().status(), 200);
    let r = send(at.clone(), first).await.unwrap();
    assert_eq!(r.status(), 401, "replayed proof");
    assert_eq!(problem_code(r).await, "dpop-replayed");
    // The cache (one entry) is now full: a new valid proof fails closed.
    assert_eq!(send(at.clone(), proof(&at)).await.unwrap().status(), 503);
}

#[tokio::test]
async fn audit_events_carry_the_seven_fields() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    let key = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let htu = format!("{AUTHORITY}/whoami");
    let proof = aims_jose::dpop::create_proof(
        &key,
        "GET",
        &htu,
        Some(&at),
        Some(&guard.dpop_nonce()),
        env.now(),
    )
    .unwrap();
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", proof)
        .header("x-request-id", "req-allow-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-allow-1");
    let r = client()
        .post(format!("http://{addr}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();

    let events = env.audit.events();
    assert_eq!(events.len(), 2);
    let allow = &events[0];
    assert_eq!(allow.agent, AGENT);
    assert_eq!(allow.delegated_subject.as_deref(), Some("user:alice"));
    assert_eq!(allow.resource, "/whoami");
    assert_eq!(allow.action, "GET");
    assert_eq!(allow.decision, Decision::Allow);
    assert_eq!(allow.time, env.now());
    assert_eq!(allow.correlation_id, "req-allow-1");
    assert_eq!(allow.risk_state, "unknown");
    assert_eq!(allow.remediation, "none");
    let deny = &events[1];
    assert_eq!(deny.agent, "unauthenticated");
    assert_eq!(deny.delegated_subject, None);
    assert_eq!(deny.resource, "/whoami");
    assert_eq!(deny.action, "POST");
    assert_eq!(
        deny.decision,
        Decision::Deny {
            reason: "missing-credentials".into()
        }
    );
    assert_eq!(deny.correlation_id, generated);
    assert_eq!(deny.risk_state, "unknown");
    assert_eq!(deny.remediation, "reject; authentication challenge sent");
}

/// A store-backed guard with its own SQLite database (kept in the returned directory).
async fn guard_with_a_store(env: &Env) -> (Guard, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("aims.db").display());
    let store = Arc::new(Store::connect(&url).await.unwrap());
    let cfg = env
        .config()
        .replay_cache(ReplayCache::store(store))
        // One nonce for the whole test: only the proof's own window matters.
        .dpop_nonce_interval(3600)
        .build()
        .unwrap();
    (Guard::new(cfg).unwrap(), dir)
}

/// A DPoP proof is accepted until `iat + max_age + leeway` inclusive (L); the shared
/// store must still hold its `jti` at L, although the store lets a record whose
/// `expires_at <= now` be taken over.
#[tokio::test]
async fn dpop_replay_at_the_last_accepted_second_is_refused_with_a_store() {
    use aims_jose::dpop::{DEFAULT_MAX_AGE, create_proof};
    use aims_jose::time::DEFAULT_LEEWAY;

    let env = Env::new();
    let (guard, _dir) = guard_with_a_store(&env).await;
    let addr = serve(app(&guard)).await;
    let key = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let htu = format!("{AUTHORITY}/whoami");
    let iat = env.now();
    let proof = create_proof(&key, "GET", &htu, Some(&at), Some(&guard.dpop_nonce()), iat).unwrap();
    let send = || {
        client()
            .get(format!("http://{addr}/whoami"))
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", &proof)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    env.clock.set(iat + DEFAULT_MAX_AGE + DEFAULT_LEEWAY);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "dpop-replayed");
    // One second later the proof itself has expired.
    env.clock.advance(1);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_ne!(problem_code(r).await, "dpop-replayed");
}

/// A key is committed as of the validation that accepted it: a replay accepted at the
/// last second L of its window and committed at L + 1 (the commit re-reading a later
/// clock) is still a replay, with the store and with the memory cache.
#[tokio::test]
async fn a_replay_accepted_at_the_last_second_and_committed_later_is_refused() {
    use aims_guard::replay::ReplayFailure;

    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("aims.db").display());
    let store = Arc::new(Store::connect(&url).await.unwrap());
    let t = env.now();
    let last = t + 60;
    let shared = ReplayCache::store(store);
    for cache in [shared.clone(), ReplayCache::memory(10)] {
        // First use, well inside the window.
        let (guard, pending) = cache.begin_deferred();
        guard.check_and_record("proof-1", last, t).unwrap();
        pending.commit(t).await.unwrap();
        // The replay: accepted by validation at L (the deferring guard accepts all),
        // committed at L + 1.
        let (guard, pending) = cache.begin_deferred();
        guard.check_and_record("proof-1", last, last).unwrap();
        assert_eq!(
            pending.commit(last + 1).await,
            Err(ReplayFailure::Replayed),
            "{cache:?}"
        );
        // And at L itself.
        let (guard, pending) = cache.begin_deferred();
        guard.check_and_record("proof-1", last, last).unwrap();
        assert_eq!(
            pending.commit(last).await,
            Err(ReplayFailure::Replayed),
            "{cache:?}"
        );
    }
    // Written in one batch with a key validated a second later (both queued before the
    // writing task runs): the batch is checked as of its earliest validation.
    let (replay, replayed) = shared.begin_deferred();
    replay.check_and_record("proof-1", last, last).unwrap();
    let (fresh, new) = shared.begin_deferred();
    fresh
        .check_and_record("proof-2", last + 60, last + 1)
        .unwrap();
    let (replayed, new) = tokio::join!(replayed.commit(last + 1), new.commit(last + 1));
    assert_eq!(replayed, Err(ReplayFailure::Replayed));
    assert_eq!(new, Ok(()));
}
