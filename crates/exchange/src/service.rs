//! The exchange as its handlers and workers see it: configuration, storage, key store and the
//! current key snapshot, behind one cheap handle.

use std::sync::Arc;

use cardcash_util::{BaseUrl, Timestamp};

use crate::config::ExchangeConfig;
use crate::db::ExchangeStore;
use crate::error::ExchangeError;
use crate::keys::state::{self, KeySnapshot, KeyState};
use crate::keys::store::KeyStore;
use crate::metrics::ExchangeMetrics;

/// A handle on the running exchange; cheap to clone.
#[derive(Clone, Debug)]
pub struct Exchange(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: ExchangeConfig,
    base_url: BaseUrl,
    store: ExchangeStore,
    keystore: Arc<KeyStore>,
    keys: KeyState,
    metrics: ExchangeMetrics,
}

impl Exchange {
    /// Builds the first key snapshot and returns the handle.
    pub async fn new(
        config: ExchangeConfig,
        base_url: BaseUrl,
        store: ExchangeStore,
        keystore: Arc<KeyStore>,
        metrics: ExchangeMetrics,
    ) -> Result<Self, ExchangeError> {
        let material = store.key_material().await?;
        let snapshot = state::build(&config, &base_url, material, &keystore, Timestamp::now());
        Ok(Self(Arc::new(Inner {
            config,
            base_url,
            store,
            keystore,
            keys: KeyState::new(snapshot),
            metrics,
        })))
    }

    pub fn config(&self) -> &ExchangeConfig {
        &self.0.config
    }

    pub fn base_url(&self) -> &BaseUrl {
        &self.0.base_url
    }

    pub fn store(&self) -> &ExchangeStore {
        &self.0.store
    }

    pub fn keystore(&self) -> &Arc<KeyStore> {
        &self.0.keystore
    }

    /// The exchange's counters.
    pub fn metrics(&self) -> &ExchangeMetrics {
        &self.0.metrics
    }

    /// The current key snapshot.
    pub fn keys(&self) -> Arc<KeySnapshot> {
        self.0.keys.snapshot()
    }

    /// Rebuilds the key snapshot from the database now.
    pub async fn refresh_keys(&self) -> Result<Arc<KeySnapshot>, ExchangeError> {
        let material = self.0.store.key_material().await?;
        let snapshot = state::build(
            &self.0.config,
            &self.0.base_url,
            material,
            &self.0.keystore,
            Timestamp::now(),
        );
        self.0.keys.replace(snapshot);
        Ok(self.keys())
    }
}
