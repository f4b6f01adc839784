//! Helpers: a test server with an entry for this test process.

use std::os::unix::fs::MetadataExt as _;

use aims_agent::{WorkloadEndpoint, WorkloadSource};
use aims_core::{Selector, SpiffeId};
use aims_server::api::EntrySpec;
use aims_server::testkit::{self, TestServer};

/// `unix:uid:<uid of this process>`.
pub fn uid_selector() -> String {
    format!(
        "unix:uid:{}",
        std::fs::metadata("/proc/self").unwrap().uid()
    )
}

pub fn spec(id: &str, selectors: &[&str], x509_ttl: u32, wit_ttl: u32) -> EntrySpec {
    EntrySpec {
        spiffe_id: SpiffeId::parse(id).unwrap(),
        selectors: selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect(),
        x509_ttl,
        jwt_ttl: 300,
        wit_ttl,
        dns_names: vec![],
        hint: None,
        federates_with: vec![],
        parent_id: None,
        admin: false,
        revision: None,
    }
}

/// A server of `td` with one entry `spiffe://<td>/agent/a` for this process.
pub async fn server_with_agent(td: &str, x509_ttl: u32, wit_ttl: u32) -> TestServer {
    let ts = testkit::start_default(td).await.unwrap();
    ts.admin()
        .create_entry(&spec(
            &format!("spiffe://{td}/agent/a"),
            &[&uid_selector()],
            x509_ttl,
            wit_ttl,
        ))
        .await
        .unwrap();
    ts
}

pub async fn source(ts: &TestServer) -> WorkloadSource {
    WorkloadSource::connect(WorkloadEndpoint::unix(ts.workload_socket()))
        .await
        .unwrap()
}
