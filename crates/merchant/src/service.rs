//! The merchant backend as its handlers and workers see it: configuration, storage, the HTTP
//! client it talks to exchanges with and the credential verifier, behind one cheap handle.

use std::sync::Arc;

use cardcash_client::HttpClient;
use cardcash_http::CredentialVerifier;
use cardcash_util::BaseUrl;

use crate::config::MerchantConfig;
use crate::db::MerchantStore;
use crate::exchanges::Exchanges;

/// A handle on the running merchant backend; cheap to clone.
#[derive(Clone, Debug)]
pub struct Merchant(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: MerchantConfig,
    base_url: BaseUrl,
    store: MerchantStore,
    http: HttpClient,
    credentials: CredentialVerifier,
    exchanges: Exchanges,
}

impl Merchant {
    pub fn new(
        config: MerchantConfig,
        base_url: BaseUrl,
        store: MerchantStore,
        http: HttpClient,
    ) -> Self {
        let exchanges = Exchanges::new(&config.exchanges, &http);
        Self(Arc::new(Inner {
            exchanges,
            config,
            base_url,
            store,
            http,
            credentials: CredentialVerifier::new(),
        }))
    }

    pub fn config(&self) -> &MerchantConfig {
        &self.0.config
    }

    /// The public base URL of the backend (the default instance's; instance `I` is served at
    /// `{base}instances/I/`).
    pub fn base_url(&self) -> &BaseUrl {
        &self.0.base_url
    }

    /// The public base URL of instance `id` (what contracts carry as `merchant_base_url`).
    pub fn instance_base_url(&self, id: &str) -> BaseUrl {
        if id == crate::config::DEFAULT_INSTANCE {
            return self.0.base_url.clone();
        }
        BaseUrl::parse(&format!("{}instances/{id}/", self.0.base_url))
            .unwrap_or_else(|_| self.0.base_url.clone())
    }

    pub fn store(&self) -> &MerchantStore {
        &self.0.store
    }

    /// The shared HTTP client (one connection pool) for talking to exchanges.
    pub fn http(&self) -> &HttpClient {
        &self.0.http
    }

    /// The trusted exchanges and their verified keys (`crate::exchanges`).
    pub fn exchanges(&self) -> &Exchanges {
        &self.0.exchanges
    }

    /// Verifies instance passwords (argon2id, bounded and cached).
    pub fn credentials(&self) -> &CredentialVerifier {
        &self.0.credentials
    }
}
