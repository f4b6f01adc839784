//! [`ClientDirectory`] over the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aims_store::{Store, StoreError};

use crate::OAuthError;
use crate::authn::ClientDirectory;
use crate::client::Client;

/// How long a client read from the store is reused ([`Store::get_client_cached`]): a
/// change made through this server is seen at once, one made by another node sharing the
/// database within this time.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(1);

/// The most parsed clients kept (the map starts over when full).
const PARSED_ENTRIES: usize = 10_000;

/// Parsed clients by id, with the stored document each was parsed from.
type Parsed = HashMap<String, (String, Arc<Client>)>;

/// Clients read from the shared store, through its short-lived client cache, each parsed
/// once per stored document (the token endpoint looks its client up on every request).
#[derive(Debug, Clone)]
pub struct StoreClients {
    store: Arc<Store>,
    parsed: Arc<Mutex<Parsed>>,
}

impl StoreClients {
    /// Clients of `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            parsed: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

impl ClientDirectory for StoreClients {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        let record = match self
            .store
            .get_client_cached(client_id, CLIENT_CACHE_TTL)
            .await
        {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(OAuthError::server_error("client lookup", &e)),
        };
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((document, client)) = parsed.get(client_id)
            && *document == record.document
        {
            return Ok(Some(Arc::clone(client)));
        }
        let client = Arc::new(
            Client::from_json(&record.document)
                .map_err(|e| OAuthError::server_error("stored client", &e))?,
        );
        if parsed.len() >= PARSED_ENTRIES {
            parsed.clear();
        }
        parsed.insert(client_id.to_owned(), (record.document, Arc::clone(&client)));
        Ok(Some(client))
    }
}
