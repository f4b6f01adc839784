//! Helpers: selectors that match this test process, entry specs.

use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;

use aims_core::{Selector, SpiffeId, SystemClock};
use aims_pki::SpiffeBundle;
use aims_server::api::EntrySpec;
use aims_server::testkit::TestServer;

/// `unix:uid:<uid of this process>`.
pub fn uid_selector() -> String {
    format!(
        "unix:uid:{}",
        std::fs::metadata("/proc/self").unwrap().uid()
    )
}

/// `unix:sha256:<digest of this test binary>`.
pub fn exe_selector() -> String {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let digest: String = aims_crypto::sha256(&exe)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("unix:sha256:{digest}")
}

/// An entry spec with default lifetimes.
pub fn spec(id: &str, selectors: &[&str]) -> EntrySpec {
    EntrySpec {
        spiffe_id: SpiffeId::parse(id).unwrap(),
        selectors: selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        x509_ttl: 3600,
        jwt_ttl: 300,
        wit_ttl: 600,
        dns_names: vec![],
        hint: None,
        federates_with: vec![],
        parent_id: None,
        admin: false,
        revision: None,
    }
}

/// The server's own bundle, as the admin API serves it.
pub async fn own_bundle(ts: &TestServer) -> SpiffeBundle {
    let json = ts.admin().bundle().await.unwrap();
    SpiffeBundle::parse(ts.server.endpoints().trust_domain.clone(), json.as_bytes()).unwrap()
}

/// An X509-SVID from the `spiffe` crate, verified against `own` (the server's published
/// bundle) now, in aims-pki's form.
pub fn verified_x509_svid(
    svid: &spiffe::X509Svid,
    own: &SpiffeBundle,
) -> aims_pki::svid::VerifiedSvid {
    let chain: Vec<u8> = svid
        .cert_chain()
        .iter()
        .flat_map(|c| c.as_bytes().to_vec())
        .collect();
    let ours = aims_pki::X509Svid::parse_raw(&chain, svid.private_key().as_bytes()).unwrap();
    aims_pki::svid::verify_with_bundle(
        ours.chain(),
        own,
        now(),
        &aims_pki::svid::VerifyOptions::default(),
    )
    .unwrap()
}

/// Now, on the system clock.
pub fn now() -> i64 {
    use aims_core::Clock as _;
    SystemClock.now()
}

/// A system clock as a trait object.
pub fn system_clock() -> Arc<dyn aims_core::Clock> {
    Arc::new(SystemClock)
}
