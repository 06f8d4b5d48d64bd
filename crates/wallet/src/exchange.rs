//! Exchanges in the wallet: adding one (its `/config` and `/keys`, verified before anything is
//! stored), listing them, and their terms of service by version (docs.taler.net
//! core/api-exchange "Terms of service"; wallet-core's `exchanges.ts` behaviour).

use cardcash_api::common::CurrencySpecification;
use cardcash_api::exchange::EXCHANGE_PROTOCOL_VERSION;
use cardcash_client::{ExchangeClient, KeysError, verify_keys};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, LibtoolVersion, Timestamp};
use serde::Serialize;

use crate::db::ExchangeRow;
use crate::denom;
use crate::error::{WalletError, WalletResult};
use crate::{Notification, Wallet};

/// An exchange as the wallet shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeSummary {
    pub exchange_base_url: String,
    pub currency: String,
    pub master_pub: String,
    /// `accepted`, `pending` (never accepted), `proposed` (a newer version than the accepted
    /// one) or `unknown` (the exchange has no terms).
    pub tos_status: &'static str,
    pub tos_current_version: Option<String>,
    pub tos_accepted_version: Option<String>,
    /// How many denominations the wallet knows.
    pub denominations: usize,
    /// How amounts of the currency are shown (from `/keys`).
    pub currency_specification: CurrencySpecification,
    /// The fees of the coins one can get now, by value (largest first).
    pub coin_fees: Vec<CoinFees>,
}

/// The fees of the coins of one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoinFees {
    pub value: Amount,
    pub cipher: &'static str,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub fee_refund: Amount,
}

/// An exchange's terms of service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TermsOfService {
    pub current_etag: Option<String>,
    pub accepted_etag: Option<String>,
    pub content_type: Option<String>,
    pub content: String,
    pub tos_status: &'static str,
}

fn tos_status(current: Option<&str>, accepted: Option<&str>) -> &'static str {
    match (current, accepted) {
        (None, _) => "unknown",
        (Some(_), None) => "pending",
        (Some(c), Some(a)) if c == a => "accepted",
        (Some(_), Some(_)) => "proposed",
    }
}

impl Wallet {
    pub(crate) fn exchange_client(&self, base: &BaseUrl) -> ExchangeClient {
        ExchangeClient::with_http(self.inner.http.clone(), base.clone())
    }

    /// Adds the exchange at `base` (or updates what the wallet knows of it): reads `/config`
    /// and `/keys`, checks the protocol version and every signature of `/keys`, then stores
    /// the keys and denominations. An exchange already known must keep its master key.
    pub async fn add_exchange(&self, base: &BaseUrl) -> WalletResult<ExchangeSummary> {
        self.add_exchange_pinned(base, None).await
    }

    /// [`Self::add_exchange`], refusing (before anything is stored) an exchange whose master
    /// key is not `pinned` (a `taler://withdraw-exchange` URI names it).
    pub async fn add_exchange_pinned(
        &self,
        base: &BaseUrl,
        pinned: Option<&EddsaPublicKey>,
    ) -> WalletResult<ExchangeSummary> {
        let client = self.exchange_client(base);
        let config = client.config().await?;
        let ours: LibtoolVersion = EXCHANGE_PROTOCOL_VERSION
            .parse()
            .map_err(|_| WalletError::ExchangeVersion(EXCHANGE_PROTOCOL_VERSION.into()))?;
        if !ours.is_compatible(&config.version) {
            return Err(WalletError::ExchangeVersion(format!(
                "the exchange speaks {}, this wallet {EXCHANGE_PROTOCOL_VERSION}",
                config.version
            )));
        }
        let keys = client.keys().await?;
        let known = self.store().exchange(base)?;
        // Every signature is checked before anything of /keys is used; a known exchange
        // must not change its master key.
        if let (Some(pinned), Some(known)) = (pinned, &known)
            && *pinned != known.master_pub
        {
            return Err(WalletError::KeysInvalid(KeysError::WrongMaster {
                expected: *pinned,
                found: known.master_pub,
            }));
        }
        verify_keys(&keys, pinned.or(known.as_ref().map(|k| &k.master_pub)))?;
        if keys.currency != config.currency {
            return Err(WalletError::MalformedResponse(format!(
                "/config says {}, /keys {}",
                config.currency, keys.currency
            )));
        }
        let denoms = denom::denominations(&keys)?;
        let terms = client.terms("text/plain").await?;
        self.store()
            .put_exchange(base, &keys, denoms, terms.etag)
            .await?;
        self.notify(Notification::ExchangeUpdated {
            exchange_base_url: base.to_string(),
        });
        self.exchange_summary(base)
    }

    /// An exchange the wallet knows (refused when it does not).
    pub(crate) fn known_exchange(&self, base: &BaseUrl) -> WalletResult<ExchangeRow> {
        self.store()
            .exchange(base)?
            .ok_or_else(|| WalletError::UnknownExchange(base.to_string()))
    }

    fn exchange_summary(&self, base: &BaseUrl) -> WalletResult<ExchangeSummary> {
        let row = self.known_exchange(base)?;
        self.summarize(&row)
    }

    fn summarize(&self, row: &ExchangeRow) -> WalletResult<ExchangeSummary> {
        Ok(ExchangeSummary {
            exchange_base_url: row.base_url.to_string(),
            currency: row.currency.to_string(),
            master_pub: row.master_pub.to_string(),
            tos_status: tos_status(row.tos_etag.as_deref(), row.tos_accepted_etag.as_deref()),
            tos_current_version: row.tos_etag.clone(),
            tos_accepted_version: row.tos_accepted_etag.clone(),
            denominations: self.store().denominations(&row.base_url)?.len(),
            currency_specification: row.keys.currency_specification.clone(),
            coin_fees: {
                let now = Timestamp::now();
                let mut lasting = self.lasting_denominations(&row.base_url)?;
                lasting.retain(|d| d.withdrawable_at(now));
                lasting.sort_by_key(|d| std::cmp::Reverse(d.value.to_units()));
                let mut fees: Vec<CoinFees> = Vec::new();
                for d in lasting {
                    let entry = CoinFees {
                        value: d.value,
                        cipher: d.key.cipher(),
                        fee_withdraw: d.fee_withdraw,
                        fee_deposit: d.fee_deposit,
                        fee_refresh: d.fee_refresh,
                        fee_refund: d.fee_refund,
                    };
                    // Keys of one value and cipher rotate with the same fees: list them once.
                    if !fees.contains(&entry) {
                        fees.push(entry);
                    }
                }
                fees
            },
        })
    }

    /// Every exchange the wallet knows.
    pub fn list_exchanges(&self) -> WalletResult<Vec<ExchangeSummary>> {
        self.store()
            .exchanges()?
            .iter()
            .map(|row| self.summarize(row))
            .collect()
    }

    /// The exchange's current terms in the first of `accept`'s media types it has (fetched
    /// now; the version is remembered).
    pub async fn get_exchange_tos(
        &self,
        base: &BaseUrl,
        accept: &str,
    ) -> WalletResult<TermsOfService> {
        let row = self.known_exchange(base)?;
        let terms = self.exchange_client(base).terms(accept).await?;
        Ok(TermsOfService {
            tos_status: tos_status(terms.etag.as_deref(), row.tos_accepted_etag.as_deref()),
            current_etag: terms.etag,
            accepted_etag: row.tos_accepted_etag,
            content_type: terms.content_type,
            content: terms.text,
        })
    }

    /// Accepts version `etag` of the exchange's terms (by default the current one).
    pub async fn accept_exchange_tos(
        &self,
        base: &BaseUrl,
        etag: Option<String>,
    ) -> WalletResult<ExchangeSummary> {
        let row = self.known_exchange(base)?;
        let etag = match etag.or(row.tos_etag) {
            Some(e) => e,
            None => {
                return Err(WalletError::BadRequest(format!(
                    "{base} has no terms of service to accept"
                )));
            }
        };
        self.store().accept_tos(base, etag).await?;
        self.exchange_summary(base)
    }
}

#[cfg(test)]
mod tests {
    use super::tos_status;

    #[test]
    fn terms_status_by_version() {
        assert_eq!(tos_status(None, Some("v1")), "unknown");
        assert_eq!(tos_status(Some("v1"), None), "pending");
        assert_eq!(tos_status(Some("v1"), Some("v1")), "accepted");
        assert_eq!(tos_status(Some("v2"), Some("v1")), "proposed");
    }
}
