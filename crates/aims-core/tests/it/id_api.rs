//! Public API of `aims_core::id`: accessors, builders, patterns, serde.

use std::collections::HashSet;

use aims_core::id::{IdError, IdScheme, SpiffeId, SpiffeIdPattern, TrustDomain, WorkloadId};

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

#[test]
fn spiffe_id_accessors() {
    let x = id("spiffe://example.org/agents/billing");
    assert_eq!(x.as_str(), "spiffe://example.org/agents/billing");
    assert_eq!(x.trust_domain().as_str(), "example.org");
    assert_eq!(x.path(), "/agents/billing");
    assert_eq!(x.segments().collect::<Vec<_>>(), ["agents", "billing"]);
    assert!(!x.is_root());
    assert!(x.is_member_of(&td("example.org")));
    assert!(!x.is_member_of(&td("example.com")));
    assert_eq!(x.to_string(), x.as_str());
    assert_eq!(
        format!("{x:?}"),
        "SpiffeId(\"spiffe://example.org/agents/billing\")"
    );
    assert_eq!(x, "spiffe://example.org/agents/billing");
}

#[test]
fn root_id() {
    let root = id("spiffe://example.org");
    assert!(root.is_root());
    assert_eq!(root.path(), "");
    assert_eq!(root.segments().count(), 0);
    assert_eq!(td("example.org").id(), root);
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &[]).unwrap(),
        root
    );
    assert_eq!(SpiffeId::from_path(&td("example.org"), "").unwrap(), root);
}

#[test]
fn ipv4_trust_domain_is_accepted() {
    assert_eq!(
        id("spiffe://1.2.3.4/svc").trust_domain().as_str(),
        "1.2.3.4"
    );
}

#[test]
fn builders_agree_with_parse() {
    let t = td("example.org");
    let want = id("spiffe://example.org/a/B/c-1._");
    assert_eq!(
        SpiffeId::from_segments(&t, &["a", "B", "c-1._"]).unwrap(),
        want
    );
    assert_eq!(SpiffeId::from_path(&t, "/a/B/c-1._").unwrap(), want);
    assert_eq!(
        SpiffeId::from_path(&t, "/a/../b").unwrap_err(),
        IdError::DotSegment
    );
}

#[test]
fn from_str_and_try_from() {
    let a: SpiffeId = "spiffe://example.org/a".parse().unwrap();
    let b = SpiffeId::try_from(String::from("spiffe://example.org/a")).unwrap();
    let c = SpiffeId::try_from("spiffe://example.org/a").unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(
        "SPIFFE://example.org".parse::<SpiffeId>().unwrap_err(),
        IdError::BadScheme
    );

    let t: TrustDomain = "example.org".parse().unwrap();
    assert_eq!(
        t,
        TrustDomain::try_from(String::from("example.org")).unwrap()
    );
    let w: WorkloadId = "wimse://example.org/a".parse().unwrap();
    assert_eq!(
        w,
        WorkloadId::try_from(String::from("wimse://example.org/a")).unwrap()
    );
}

#[test]
fn workload_id_spiffe() {
    let w = WorkloadId::parse("spiffe://prod.example.org/ns/web").unwrap();
    assert_eq!(w.scheme(), IdScheme::Spiffe);
    assert_eq!(w.trust_domain().as_str(), "prod.example.org");
    assert_eq!(w.path(), "/ns/web");
    assert_eq!(w.origin(), "spiffe://prod.example.org");
    assert_eq!(w.as_spiffe(), Some(&id("spiffe://prod.example.org/ns/web")));
    assert_eq!(WorkloadId::from(id("spiffe://prod.example.org/ns/web")), w);
}

#[test]
fn workload_id_wimse() {
    let w = WorkloadId::parse("wimse://example.com/specific-workload").unwrap();
    assert_eq!(w.scheme(), IdScheme::Wimse);
    assert_eq!(w.scheme().to_string(), "wimse");
    assert_eq!(w.trust_domain().as_str(), "example.com");
    assert_eq!(w.path(), "/specific-workload");
    assert_eq!(w.origin(), "wimse://example.com");
    assert!(w.as_spiffe().is_none());
    assert!(!w.is_root());
    assert_eq!(String::from(w), "wimse://example.com/specific-workload");

    let root = WorkloadId::parse("wimse://example.com").unwrap();
    assert!(root.is_root());
    assert_eq!(root.origin(), root.as_str());
}

#[test]
fn workload_id_rejects_what_the_draft_forbids() {
    for (s, err) in [
        ("wimse://example.com:443/a", IdError::BadTrustDomainChar),
        ("wimse://user@example.com/a", IdError::BadTrustDomainChar),
        ("wimse://example.com/a?x=1", IdError::BadPathSegmentChar),
        ("wimse://example.com/a#f", IdError::BadPathSegmentChar),
        ("wimse://", IdError::MissingTrustDomain),
        ("wimse:/example.com/a", IdError::BadScheme),
        ("Wimse://example.com/a", IdError::BadScheme),
        ("urn:wimse:example.com", IdError::BadScheme),
        ("https://example.com/a", IdError::BadScheme),
    ] {
        assert_eq!(WorkloadId::parse(s).unwrap_err(), err, "{s:?}");
    }
}

#[test]
fn comparison_is_on_the_complete_uri() {
    let s = WorkloadId::parse("spiffe://example.org/a").unwrap();
    let w = WorkloadId::parse("wimse://example.org/a").unwrap();
    assert_ne!(s, w);
    assert_eq!(s.trust_domain(), w.trust_domain());
    assert_eq!(s.path(), w.path());
    let set: HashSet<WorkloadId> = [s.clone(), w, s].into_iter().collect();
    assert_eq!(set.len(), 2);

    // Path case is significant.
    assert_ne!(id("spiffe://example.org/A"), id("spiffe://example.org/a"));
}

#[test]
fn trust_domain_allow_list_lookup() {
    let allowed: HashSet<TrustDomain> = [td("example.org"), td("partner.example")].into();
    assert!(allowed.contains(id("spiffe://example.org/x").trust_domain()));
    assert!(!allowed.contains(id("spiffe://evil.example/x").trust_domain()));
}

#[test]
fn prefix_pattern() {
    let p = SpiffeIdPattern::parse("spiffe://td/agents/*").unwrap();
    assert!(p.is_prefix());
    assert_eq!(p.base(), &id("spiffe://td/agents"));
    assert_eq!(p.to_string(), "spiffe://td/agents/*");
    assert!(p.matches(&id("spiffe://td/agents/x")));
    assert!(p.matches(&id("spiffe://td/agents/x/y/z")));
    assert!(!p.matches(&id("spiffe://td/agents")));
    assert!(!p.matches(&id("spiffe://td/agentsX")));
    assert!(!p.matches(&id("spiffe://td/agentsX/y")));
    assert!(!p.matches(&id("spiffe://td/other/agents/x")));
    assert!(!p.matches(&id("spiffe://td2/agents/x")));
    assert!(!p.matches(&id("spiffe://t/agents/x")));
}

#[test]
fn trust_domain_wide_pattern() {
    let p = SpiffeIdPattern::parse("spiffe://td/*").unwrap();
    assert!(p.matches(&id("spiffe://td/a")));
    assert!(p.matches(&id("spiffe://td/a/b")));
    assert!(!p.matches(&id("spiffe://td")));
    assert!(!p.matches(&id("spiffe://td2/a")));
    assert!(!p.matches(&id("spiffe://t/a")));
}

#[test]
fn exact_pattern() {
    let p = SpiffeIdPattern::parse("spiffe://td/agents").unwrap();
    assert!(!p.is_prefix());
    assert!(p.matches(&id("spiffe://td/agents")));
    assert!(!p.matches(&id("spiffe://td/agents/x")));
    assert!(!p.matches(&id("spiffe://td/agent")));
    assert_eq!(p, SpiffeIdPattern::exact(id("spiffe://td/agents")));
}

#[test]
fn bad_patterns() {
    for (s, err) in [
        ("spiffe://td/agents/*/x", IdError::BadPathSegmentChar),
        ("spiffe://td/agents*", IdError::BadPathSegmentChar),
        ("spiffe://td/agents/**", IdError::BadPathSegmentChar),
        ("spiffe://*/agents", IdError::BadTrustDomainChar),
        ("spiffe://td//*", IdError::TrailingSlash),
        ("spiffe:///*", IdError::MissingTrustDomain),
        ("*", IdError::BadScheme),
        ("/*", IdError::Empty),
    ] {
        assert_eq!(SpiffeIdPattern::parse(s).unwrap_err(), err, "{s:?}");
        assert_eq!(
            SpiffeIdPattern::try_from(s.to_owned()).unwrap_err(),
            err,
            "{s:?}"
        );
    }
}

#[test]
fn serde_round_trips_as_strings() {
    let x = id("spiffe://example.org/a");
    assert_eq!(
        serde_json::to_string(&x).unwrap(),
        "\"spiffe://example.org/a\""
    );
    assert_eq!(
        serde_json::from_str::<SpiffeId>("\"spiffe://example.org/a\"").unwrap(),
        x
    );

    let t = td("example.org");
    assert_eq!(serde_json::to_string(&t).unwrap(), "\"example.org\"");
    assert_eq!(
        serde_json::from_str::<TrustDomain>("\"example.org\"").unwrap(),
        t
    );
    // An embedded trust domain serialises as the name only.
    assert_eq!(
        serde_json::to_string(x.trust_domain()).unwrap(),
        "\"example.org\""
    );

    let w = WorkloadId::parse("wimse://example.org/a").unwrap();
    assert_eq!(
        serde_json::to_string(&w).unwrap(),
        "\"wimse://example.org/a\""
    );
    assert_eq!(
        serde_json::from_str::<WorkloadId>("\"wimse://example.org/a\"").unwrap(),
        w
    );

    let p = SpiffeIdPattern::parse("spiffe://example.org/a/*").unwrap();
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        "\"spiffe://example.org/a/*\""
    );
    assert_eq!(
        serde_json::from_str::<SpiffeIdPattern>("\"spiffe://example.org/a/*\"").unwrap(),
        p
    );
}

#[test]
fn serde_validates_on_deserialize() {
    let err = serde_json::from_str::<SpiffeId>("\"spiffe://example.org/../a\"").unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid SPIFFE ID: path cannot contain dot segments"),
        "{err}"
    );
    assert!(serde_json::from_str::<TrustDomain>("\"Example.org\"").is_err());
    assert!(serde_json::from_str::<WorkloadId>("\"https://example.org/a\"").is_err());
    assert!(serde_json::from_str::<SpiffeIdPattern>("\"spiffe://td/*/a\"").is_err());
    assert!(serde_json::from_str::<SpiffeId>("42").is_err());
}
