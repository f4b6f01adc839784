//! [`ClientDirectory`] over the store.

use std::sync::Arc;

use aims_store::{Store, StoreError};

use crate::OAuthError;
use crate::authn::ClientDirectory;
use crate::client::Client;

/// Clients read from the shared store (every node sees a change at once).
#[derive(Debug, Clone)]
pub struct StoreClients(pub Arc<Store>);

impl ClientDirectory for StoreClients {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        match self.0.get_client(client_id).await {
            Ok(record) => Client::from_json(&record.document)
                .map(|c| Some(Arc::new(c)))
                .map_err(|e| OAuthError::server_error("stored client", &e)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(OAuthError::server_error("client lookup", &e)),
        }
    }
}
