//! Property tests for the identifier parsers.

use aims_core::id::{
    IdScheme, MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN, SpiffeId, SpiffeIdPattern, TrustDomain, WorkloadId,
};
use proptest::prelude::*;

/// Valid trust domain names.
fn trust_domain() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,40}"
}

/// Valid path segments.
fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,12}".prop_filter("dot segment", |s| s != "." && s != "..")
}

fn segments() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 0..8)
}

/// Strings near the accepted language, where the interesting edges are.
fn near_valid() -> impl Strategy<Value = String> {
    "(spiffe|wimse|SPIFFE|spiffe:)(://)?[a-zA-Z0-9._/%:@?#*\\-]{0,24}"
}

/// An independent, deliberately naive statement of the rules (validity only).
fn model_valid(s: &str, prefix: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix) else {
        return false;
    };
    let (td, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let td_ok = !td.is_empty()
        && td.len() <= MAX_TRUST_DOMAIN_LEN
        && td
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    let path_ok = path.is_empty()
        || path.split('/').skip(1).all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    s.len() <= MAX_ID_LEN && td_ok && path_ok
}

fn join(td: &str, segs: &[String]) -> String {
    let mut s = format!("spiffe://{td}");
    for seg in segs {
        s.push('/');
        s.push_str(seg);
    }
    s
}

proptest! {
    #[test]
    fn generated_ids_round_trip(td in trust_domain(), segs in segments()) {
        let t = TrustDomain::new(&td).unwrap();
        let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let x = SpiffeId::from_segments(&t, &refs).unwrap();
        let shown = x.to_string();
        let again = SpiffeId::parse(&shown).unwrap();
        prop_assert_eq!(&again, &x);
        prop_assert_eq!(again.trust_domain(), &t);
        prop_assert_eq!(again.segments().collect::<Vec<_>>(), refs);
        prop_assert_eq!(again.is_root(), segs.is_empty());
        prop_assert_eq!(SpiffeId::from_path(&t, x.path()).unwrap(), x.clone());

        let w = WorkloadId::parse(x.as_str()).unwrap();
        prop_assert_eq!(w.as_spiffe(), Some(&x));
        let wimse = x.as_str().replacen("spiffe://", "wimse://", 1);
        let w = WorkloadId::parse(&wimse).unwrap();
        prop_assert_eq!(w.scheme(), IdScheme::Wimse);
        prop_assert_eq!(w.trust_domain(), &t);
        prop_assert_eq!(w.path(), x.path());
        let shown = w.to_string();
        prop_assert_eq!(WorkloadId::parse(&shown).unwrap(), w);

        let json = serde_json::to_string(&x).unwrap();
        prop_assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), x);
    }

    #[test]
    fn trust_domains_round_trip(td in trust_domain()) {
        let t = TrustDomain::new(&td).unwrap();
        prop_assert_eq!(t.as_str(), td.as_str());
        let shown = t.to_string();
        prop_assert_eq!(TrustDomain::new(&shown).unwrap(), t.clone());
        let root = t.id();
        prop_assert!(root.is_root());
        prop_assert_eq!(root.trust_domain(), &t);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        // Errors are fine; panics are what this catches. Whatever is accepted must
        // display as the input.
        let accepted = [
            SpiffeId::parse(&s).map(String::from),
            WorkloadId::parse(&s).map(String::from),
            TrustDomain::new(&s).map(|t| t.to_string()),
            SpiffeIdPattern::parse(&s).map(|p| p.to_string()),
        ];
        for out in accepted.into_iter().flatten() {
            prop_assert_eq!(out, s.as_str());
        }
    }

    #[test]
    fn near_valid_strings_match_the_model(s in near_valid()) {
        let spiffe = SpiffeId::parse(&s);
        prop_assert_eq!(spiffe.is_ok(), model_valid(&s, "spiffe://"), "{:?}", spiffe);
        let workload = WorkloadId::parse(&s);
        prop_assert_eq!(
            workload.is_ok(),
            model_valid(&s, "spiffe://") || model_valid(&s, "wimse://"),
            "{:?}", workload
        );
        if let Ok(x) = spiffe {
            prop_assert_eq!(x.as_str(), s.as_str());
            prop_assert_eq!(SpiffeId::parse(x.as_str()).unwrap(), x);
        }
        if let Ok(w) = workload {
            prop_assert_eq!(w.as_str(), s.as_str());
            prop_assert!(s.starts_with(w.origin()));
            prop_assert_eq!(format!("{}{}", w.origin(), w.path()), s);
        }
    }

    /// Segments drawn from a small alphabet with bad characters, dots and empties, but no
    /// `/` (which would let `join` create segment boundaries `from_segments` never sees).
    #[test]
    fn from_segments_agrees_with_parse(
        td in trust_domain(),
        segs in prop::collection::vec("[a.%A_*-]{0,3}", 0..5),
    ) {
        let t = TrustDomain::new(&td).unwrap();
        let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let built = SpiffeId::from_segments(&t, &refs);
        let parsed = SpiffeId::parse(&join(&td, &segs));
        prop_assert_eq!(built.is_ok(), parsed.is_ok(), "{:?} vs {:?}", built, parsed);
        if let (Ok(b), Ok(p)) = (built, parsed) {
            prop_assert_eq!(b, p);
        }
    }

    #[test]
    fn prefix_patterns_match_by_whole_segments(
        td in trust_domain(),
        base in segments(),
        tail in segments(),
    ) {
        let t = TrustDomain::new(&td).unwrap();
        let base_refs: Vec<&str> = base.iter().map(String::as_str).collect();
        let base_id = SpiffeId::from_segments(&t, &base_refs).unwrap();
        let pattern = SpiffeIdPattern::parse(&format!("{base_id}/*")).unwrap();
        prop_assert_eq!(pattern.base(), &base_id);

        let mut all = base.clone();
        all.extend(tail.iter().cloned());
        let candidate = SpiffeId::parse(&join(&td, &all)).unwrap();
        prop_assert_eq!(pattern.matches(&candidate), !tail.is_empty());
        prop_assert!(SpiffeIdPattern::exact(candidate.clone()).matches(&candidate));
    }
}
