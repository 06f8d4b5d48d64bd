//! The embeddable request interface: an operation name and JSON arguments in, JSON out, errors
//! as Taler error bodies (wallet-core's `handleRequest` shape, camelCase names). The typed API
//! on [`Wallet`] does the work; this is only decoding and encoding.
//!
//! | operation | arguments | result |
//! |---|---|---|
//! | `addExchange` | `exchangeBaseUrl` | the exchange |
//! | `listExchanges` | | `{exchanges}` |
//! | `getExchangeTos` | `exchangeBaseUrl`, `acceptedFormat?` (media types) | the terms |
//! | `acceptExchangeTos` | `exchangeBaseUrl`, `etag?` | the exchange |
//! | `prepareBankIntegratedWithdrawal` | `talerWithdrawUri` | the bank's details |
//! | `acceptBankIntegratedWithdrawal` | `talerWithdrawUri`, `exchangeBaseUrl?`, `amount?` | `{transactionId}` |
//! | `prepareWithdrawExchange` | `talerUri` (`taler://withdraw-exchange/…`) | `{exchangeBaseUrl, amount?}` |
//! | `getWithdrawalDetailsForAmount` | `exchangeBaseUrl`, `amount` | coins, fees, effective amount |
//! | `acceptManualWithdrawal` | `exchangeBaseUrl`, `amount` | `{transactionId, reservePub, exchangePaytoUris}` |
//! | `getBalances` | | `{balances}` |
//! | `getTransactions` | | `{transactions}` |
//! | `listCoins` | | `{coins}` |
//! | `forceRefresh` | `coinPubList` | `{transactionIds}` |
//! | `runUntilDone` | `timeoutMs?` | `{}` |
//! | `preparePayForUri` | `talerPayUri` | status (`payment-possible`, `insufficient-balance`, `already-confirmed`), contract, amounts, fees |
//! | `confirmPay` | `transactionId`, `sessionId?` | `{type: "done", transactionId, contractTermsHash, fulfillmentUrl, amountEffective}` |
//! | `abortTransaction` | `transactionId` (a payment under way) | `{}` |
//! | `startRefundQuery` | `transactionId` (a paid payment) | refunds picked up now, pending ones |
//! | `startRefundQueryForUri` (alias `applyRefund`) | `talerRefundUri` | as `startRefundQuery` |

use std::time::Duration;

use cardcash_util::{Amount, BaseUrl, EddsaPublicKey};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Wallet;
use crate::error::{WalletError, WalletResult};

fn arg<T: DeserializeOwned>(args: &Value, name: &str) -> WalletResult<T> {
    let v = args
        .get(name)
        .ok_or_else(|| WalletError::BadRequest(format!("argument {name} is missing")))?;
    serde_json::from_value(v.clone())
        .map_err(|e| WalletError::BadRequest(format!("argument {name}: {e}")))
}

fn opt_arg<T: DeserializeOwned>(args: &Value, name: &str) -> WalletResult<Option<T>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => arg(args, name).map(Some),
    }
}

fn to_json(v: impl serde::Serialize) -> WalletResult<Value> {
    serde_json::to_value(v).map_err(|e| WalletError::BadRequest(format!("encoding: {e}")))
}

impl Wallet {
    /// Runs one request (see the module documentation for the operations).
    pub async fn handle(&self, op: &str, args: Value) -> WalletResult<Value> {
        match op {
            "addExchange" => {
                let url: BaseUrl = arg(&args, "exchangeBaseUrl")?;
                to_json(self.add_exchange(&url).await?)
            }
            "listExchanges" => Ok(json!({ "exchanges": self.list_exchanges()? })),
            "getExchangeTos" => {
                let url: BaseUrl = arg(&args, "exchangeBaseUrl")?;
                let accept: Option<String> = opt_arg(&args, "acceptedFormat")?;
                let accept = accept.unwrap_or_else(|| "text/plain".into());
                to_json(self.get_exchange_tos(&url, &accept).await?)
            }
            "acceptExchangeTos" => {
                let url: BaseUrl = arg(&args, "exchangeBaseUrl")?;
                to_json(
                    self.accept_exchange_tos(&url, opt_arg(&args, "etag")?)
                        .await?,
                )
            }
            "prepareBankIntegratedWithdrawal" => {
                let uri: String = arg(&args, "talerWithdrawUri")?;
                to_json(self.prepare_bank_integrated_withdrawal(&uri).await?)
            }
            "acceptBankIntegratedWithdrawal" => {
                let uri: String = arg(&args, "talerWithdrawUri")?;
                let exchange: Option<BaseUrl> = opt_arg(&args, "exchangeBaseUrl")?;
                let amount: Option<Amount> = opt_arg(&args, "amount")?;
                let id = self
                    .accept_bank_integrated_withdrawal(&uri, exchange, amount)
                    .await?;
                Ok(json!({ "transactionId": id }))
            }
            "prepareWithdrawExchange" => {
                let uri: String = arg(&args, "talerUri")?;
                let (exchange, amount) = self.prepare_withdraw_exchange(&uri).await?;
                Ok(json!({ "exchangeBaseUrl": exchange, "amount": amount }))
            }
            "getWithdrawalDetailsForAmount" => {
                let url: BaseUrl = arg(&args, "exchangeBaseUrl")?;
                let amount: Amount = arg(&args, "amount")?;
                to_json(self.get_withdrawal_plan(&url, amount).await?)
            }
            "acceptManualWithdrawal" => {
                let url: BaseUrl = arg(&args, "exchangeBaseUrl")?;
                let amount: Amount = arg(&args, "amount")?;
                to_json(self.accept_manual_withdrawal(&url, amount).await?)
            }
            "getBalances" => Ok(json!({ "balances": self.get_balances()? })),
            "getTransactions" => Ok(json!({ "transactions": self.get_transactions()? })),
            "listCoins" => Ok(json!({ "coins": self.list_coins()? })),
            "forceRefresh" => {
                let coins: Vec<EddsaPublicKey> = arg(&args, "coinPubList")?;
                let ids = self.force_refresh(&coins).await?;
                Ok(json!({ "transactionIds": ids }))
            }
            "runUntilDone" => {
                let timeout: Option<u64> = opt_arg(&args, "timeoutMs")?;
                let deadline = timeout.map(|ms| Instant::now() + Duration::from_millis(ms));
                self.run_until_done(deadline).await?;
                Ok(json!({}))
            }
            "preparePayForUri" => {
                let uri: String = arg(&args, "talerPayUri")?;
                to_json(self.prepare_pay_for_uri(&uri).await?)
            }
            "confirmPay" => {
                let id: String = arg(&args, "transactionId")?;
                let session: Option<String> = opt_arg(&args, "sessionId")?;
                to_json(self.confirm_pay(&id, session).await?)
            }
            "abortTransaction" => {
                let id: String = arg(&args, "transactionId")?;
                self.abort_pay(&id).await?;
                Ok(json!({}))
            }
            "startRefundQuery" => {
                let id: String = arg(&args, "transactionId")?;
                to_json(self.start_refund_query(&id).await?)
            }
            "startRefundQueryForUri" | "applyRefund" => {
                let uri: String = arg(&args, "talerRefundUri")?;
                to_json(self.start_refund_query_for_uri(&uri).await?)
            }
            other => Err(WalletError::UnknownOperation(other.to_owned())),
        }
    }
}
