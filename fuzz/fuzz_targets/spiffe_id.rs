//! Parses arbitrary UTF-8 as every identifier type. Accepted strings must display as
//! themselves (the parsers never rewrite input), re-parse to an equal value, and agree with
//! each other.
#![no_main]

use aims_core::id::{IdScheme, SpiffeId, SpiffeIdPattern, TrustDomain, WorkloadId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    let spiffe = SpiffeId::parse(s);
    if let Ok(id) = &spiffe {
        assert_eq!(id.to_string(), s);
        assert_eq!(&SpiffeId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(format!("spiffe://{}{}", id.trust_domain(), id.path()), s);
        assert_eq!(
            TrustDomain::new(id.trust_domain().as_str()).as_ref(),
            Ok(id.trust_domain())
        );
        let segments: Vec<&str> = id.segments().collect();
        assert_eq!(
            SpiffeId::from_segments(id.trust_domain(), &segments).as_ref(),
            Ok(id)
        );
    }

    let workload = WorkloadId::parse(s);
    if let Ok(w) = &workload {
        assert_eq!(w.to_string(), s);
        assert_eq!(&WorkloadId::parse(&w.to_string()).unwrap(), w);
        assert_eq!(format!("{}{}", w.origin(), w.path()), s);
        assert_eq!(w.as_spiffe().is_some(), w.scheme() == IdScheme::Spiffe);
    }
    // A SPIFFE ID is exactly a workload identifier with the spiffe scheme.
    assert_eq!(
        spiffe.as_ref().ok().map(SpiffeId::as_str),
        workload
            .as_ref()
            .ok()
            .and_then(WorkloadId::as_spiffe)
            .map(SpiffeId::as_str)
    );
    if let (Err(a), Err(b)) = (&spiffe, &workload) {
        if !s.starts_with("wimse://") {
            assert_eq!(a, b);
        }
    }

    if let Ok(td) = TrustDomain::new(s) {
        assert_eq!(td.to_string(), s);
        assert_eq!(td.id().trust_domain(), &td);
    }

    if let Ok(p) = SpiffeIdPattern::parse(s) {
        assert_eq!(p.to_string(), s);
        assert!(p.is_prefix() || p.matches(p.base()));
        assert!(!p.is_prefix() || !p.matches(p.base()));
    }
});
