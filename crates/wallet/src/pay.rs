//! Paying merchants (docs.taler.net core/api-merchant, the wallet's endpoints; wallet-core's
//! `pay-merchant.ts` behaviour, not its code) and picking up their refunds.
//!
//! A purchase is a state machine over the wallet database: `claiming → proposed → paying →
//! done` (or `repurchase`, `aborted`).
//!
//! - **Claim** (`taler://pay/…`): a fresh nonce is stored with the purchase *before* the claim
//!   leaves, so a retry after a crash is the same claim (the merchant answers the same nonce
//!   with the same contract). The answer is checked: the contract hash recomputed from the raw
//!   JSON (`cardcash_crypto::contract::h_contract_terms`, forgettable fields included), the
//!   merchant's signature (1101), our nonce, the order id, `merchant_base_url` equal to the
//!   URI's base, an exchange the wallet trusts (known, same master key), the pay deadline.
//! - **Repurchase detection**: when this wallet already paid an order with the same
//!   fulfillment URL at the same merchant, it does not pay again: it shows the earlier payment
//!   to the merchant under the URI's session (`POST /orders/$OLD/paid`) and answers "already
//!   paid" with the earlier order.
//! - **Confirm**: coins chosen ([`select_pay_coins`]), deposit permissions signed (1201, the
//!   exchange's v23 layout), and in ONE transaction the coins marked spent (what a coin does
//!   not contribute stays as its remainder) with the selection and signatures stored — before
//!   `/pay` leaves. Resuming resends the identical request; the merchant answers it the same.
//!   The merchant's confirmation (1104) is verified before the purchase is done; then the
//!   change (coins with a remainder) is refreshed.
//! - **Refunds** (`taler://refund/…` or `startRefundQueryForUri`/`startRefundQuery`):
//!   `POST /orders/$ID/refund`; each refund the exchange executed is checked (the exchange's
//!   signature 1038 with one of its signing keys, a coin of this payment) and credited once to
//!   its coin (refund − refund fee, the fee waived up to the deposit fee for the refund that
//!   gives a coin's whole contribution back, as the exchange does), and the coin is refreshed.
//!   While a paid contract's `auto_refund` period lasts, `runUntilDone` asks on its own.

use std::collections::HashMap;

use cardcash_api::merchant::payments::{
    AbortRefundStatus, AbortRequest, AbortingCoin, CoinRefundStatus, WalletRefundRequest,
};
use cardcash_api::merchant::{ClaimRequest, ContractTerms, PaidRequest, PayCoin, PayRequest};
use cardcash_client::{ClientError, MerchantWalletClient};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ContractSig, DepositRequestV23, PaymentOk, RefundConfirmation};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, ErrorCode, HashCode, TalerUri, Timestamp,
};
use serde::Serialize;
use serde_json::Value;

use crate::db::purchase::ClaimedContract;
use crate::db::{CoinStatus, PurchaseCoinRow, PurchaseRefundRow, PurchaseRow, PurchaseState};
use crate::error::{WalletError, WalletResult};
use crate::{Notification, Step, Wallet};

/// `txn:payment:<proposal id>`.
pub fn payment_transaction_id(proposal_id: &str) -> String {
    format!("txn:payment:{proposal_id}")
}

/// `txn:refund:<proposal id>:<rtransaction id>`.
pub fn refund_transaction_id(proposal_id: &str, rtransaction_id: u64) -> String {
    format!("txn:refund:{proposal_id}:{rtransaction_id}")
}

fn proposal_of(transaction_id: &str) -> WalletResult<&str> {
    transaction_id
        .strip_prefix("txn:payment:")
        .ok_or_else(|| WalletError::UnknownTransaction(transaction_id.to_owned()))
}

/// What a `taler://pay` URI offers, before the user confirms (wallet-core's
/// `PreparePayResult`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparePayResult {
    /// `payment-possible`, `insufficient-balance` or `already-confirmed` (paid before; also a
    /// repurchase of an earlier order).
    pub status: &'static str,
    pub transaction_id: String,
    pub order_id: String,
    pub merchant_base_url: String,
    pub summary: String,
    /// The contract terms as the merchant signed them.
    pub contract_terms: Value,
    pub contract_terms_hash: String,
    /// The price.
    pub amount_raw: Amount,
    /// What leaves the wallet (price plus the deposit fees beyond what the merchant pays);
    /// absent when the wallet cannot pay.
    pub amount_effective: Option<Amount>,
    /// The deposit fees the customer pays (beyond the contract's `max_fee`).
    pub customer_fees: Option<Amount>,
    /// What the wallet can spend at the contract's exchanges.
    pub balance_available: Amount,
    pub fulfillment_url: Option<String>,
    pub paid: bool,
    /// A repurchase: the earlier order of the same fulfillment URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_paid_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_paid_fulfillment_url: Option<String>,
}

/// The answer of a confirmed payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmPayResult {
    /// `done`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub transaction_id: String,
    pub contract_terms_hash: String,
    pub fulfillment_url: Option<String>,
    /// What left the wallet.
    pub amount_effective: Amount,
}

/// The answer of a refund query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundQueryResult {
    pub transaction_id: String,
    /// Refunds picked up now (gross), and what the coins got back.
    pub amount_refund_granted: Amount,
    pub amount_refund_gone: Amount,
    pub amount_effective_credited: Amount,
    /// Refunds the merchant granted but the exchange has not executed yet.
    pub pending: u32,
    /// The refund transactions recorded now.
    pub refund_transaction_ids: Vec<String>,
}

/// The order of a payment or refund transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    pub merchant_base_url: String,
    pub order_id: String,
    pub summary: String,
    pub fulfillment_url: Option<String>,
    /// A payment's refunds so far (gross).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Amount>,
    /// A repurchase: the earlier order of the same fulfillment URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_paid_order_id: Option<String>,
}

/// A coin the wallet can pay with.
#[derive(Debug, Clone)]
pub struct PayCandidate {
    pub coin_pub: EddsaPublicKey,
    pub exchange: BaseUrl,
    pub h_denom_pub: HashCode,
    pub value: Amount,
    pub deposit_fee: Amount,
    /// What melting the coin costs (its change is refreshed).
    pub refresh_fee: Amount,
}

/// The coins chosen for a payment: `(candidate index, contribution)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaySelection {
    pub coins: Vec<(usize, Amount)>,
    /// What the coins pay, deposit fees included.
    pub total: Amount,
    /// The coins' deposit fees.
    pub deposit_fees: Amount,
    /// The part of the deposit fees the customer pays (beyond `max_fee`).
    pub customer_fees: Amount,
}

/// Chooses coins for a payment of `amount` whose merchant pays deposit fees up to `max_fee`:
/// the contributions must cover `amount` plus the deposit fees beyond `max_fee`. Two plans are
/// made and the cheaper for the customer is taken (the deposit fees she pays plus the melt
/// fee of a coin with change; then fewer coins): (a) while no single coin covers what is
/// left, the largest coin is spent whole, then the smallest coin that covers the rest pays it
/// in part (few coins); (b) whole coins that do not overshoot, largest first, then the
/// smallest coin that covers the rest (an exact fit leaves no change to refresh). `None` when
/// the coins do not suffice.
pub fn select_pay_coins(
    amount: &Amount,
    max_fee: &Amount,
    candidates: &[PayCandidate],
) -> Option<PaySelection> {
    let currency = *amount.currency();
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|i| {
            let c = &candidates[*i];
            c.value.currency() == &currency && c.value.to_units() > c.deposit_fee.to_units()
        })
        .collect();
    // Largest value first; of equal value the cheaper to deposit.
    order.sort_by_key(|i| {
        let c = &candidates[*i];
        (
            std::cmp::Reverse(c.value.to_units()),
            c.deposit_fee.to_units(),
        )
    });
    let plans = [
        plan_pay(amount, max_fee, candidates, &order, false),
        plan_pay(amount, max_fee, candidates, &order, true),
    ];
    let cost = |p: &Vec<(usize, u128)>| -> (u128, usize) {
        let fees: u128 = p
            .iter()
            .map(|(i, _)| candidates[*i].deposit_fee.to_units())
            .sum();
        let melts: u128 = p
            .iter()
            .filter(|(i, n)| *n < candidates[*i].value.to_units())
            .map(|(i, _)| candidates[*i].refresh_fee.to_units())
            .sum();
        (fees.saturating_sub(max_fee.to_units()) + melts, p.len())
    };
    let chosen = plans.into_iter().flatten().min_by_key(cost)?;
    let paid: u128 = chosen.iter().map(|(_, n)| n).sum();
    let fees: u128 = chosen
        .iter()
        .map(|(i, _)| candidates[*i].deposit_fee.to_units())
        .sum();
    let a = |u| Amount::from_units(&currency, u).ok();
    Some(PaySelection {
        coins: chosen
            .into_iter()
            .map(|(i, u)| Some((i, a(u)?)))
            .collect::<Option<_>>()?,
        total: a(paid)?,
        deposit_fees: a(fees)?,
        customer_fees: a(fees.saturating_sub(max_fee.to_units()))?,
    })
}

/// One plan of [`select_pay_coins`] over `order` (largest first): `(candidate, units paid)`.
/// `fill`: whole coins that do not overshoot first (plan b), else the largest whole while none
/// covers (plan a).
fn plan_pay(
    amount: &Amount,
    max_fee: &Amount,
    candidates: &[PayCandidate],
    order: &[usize],
    fill: bool,
) -> Option<Vec<(usize, u128)>> {
    let (target, free) = (amount.to_units(), max_fee.to_units());
    let mut left: Vec<usize> = order.to_vec();
    let (mut paid, mut fees) = (0u128, 0u128);
    let mut chosen: Vec<(usize, u128)> = Vec::new();
    // What is left to pay if coin `i` joins (its fee may move the customer's share).
    let need = |i: usize, paid: u128, fees: u128| -> u128 {
        let fee = candidates[i].deposit_fee.to_units();
        (target + (fees + fee).saturating_sub(free))
            .saturating_sub(paid)
            .max(fee)
    };
    if fill {
        let mut k = 0;
        while k < left.len() {
            let i = left[k];
            let n = need(i, paid, fees);
            let value = candidates[i].value.to_units();
            if value <= n {
                paid += value;
                fees += candidates[i].deposit_fee.to_units();
                chosen.push((i, value));
                left.remove(k);
                if value == n {
                    return Some(chosen);
                }
            } else {
                k += 1;
            }
        }
    }
    loop {
        let covering = left
            .iter()
            .copied()
            .filter(|i| candidates[*i].value.to_units() >= need(*i, paid, fees))
            .min_by_key(|i| {
                (
                    candidates[*i].value.to_units(),
                    candidates[*i].deposit_fee.to_units(),
                )
            });
        if let Some(i) = covering {
            chosen.push((i, need(i, paid, fees)));
            return Some(chosen);
        }
        let largest = *left.first()?;
        left.remove(0);
        paid += candidates[largest].value.to_units();
        fees += candidates[largest].deposit_fee.to_units();
        chosen.push((largest, candidates[largest].value.to_units()));
    }
}

/// The fee the exchange keeps of a refund: the denomination's refund fee, less up to the
/// deposit fee for the refund that gives the coin's whole contribution back (the exchange's
/// rule, so the wallet knows what the coin is worth afterwards).
pub fn refund_fee(
    refund_fee: &Amount,
    deposit_fee: &Amount,
    refunded_before: &Amount,
    refund: &Amount,
    contribution: &Amount,
) -> Amount {
    let completes = refunded_before.to_units() + refund.to_units() == contribution.to_units();
    let fee = if completes {
        refund_fee.to_units().saturating_sub(deposit_fee.to_units())
    } else {
        refund_fee.to_units()
    };
    Amount::from_units(refund_fee.currency(), fee).unwrap_or(*refund_fee)
}

fn merchant_error(e: ClientError) -> WalletError {
    match e.error_code() {
        Some(ErrorCode::MerchantPostOrdersIdClaimAlreadyClaimed) => {
            WalletError::OrderAlreadyClaimed
        }
        Some(ErrorCode::MerchantPostOrdersIdPayOfferExpired) => WalletError::OfferExpired,
        _ if e.status() == Some(409) && e.url().ends_with("/claim") => {
            WalletError::OrderAlreadyClaimed
        }
        _ => WalletError::Client(e),
    }
}

fn parse_pay_uri(uri: &str) -> WalletResult<(BaseUrl, String, String, Option<String>)> {
    match uri.parse::<TalerUri>() {
        Ok(TalerUri::Pay {
            merchant_base,
            order_id,
            session_id,
            claim_token,
            ..
        }) => Ok((merchant_base, order_id, session_id, claim_token)),
        Ok(other) => Err(WalletError::PayUriInvalid(format!(
            "a taler://{} URI is not a payment",
            other.action()
        ))),
        Err(e) => Err(WalletError::PayUriInvalid(format!("{uri:?}: {e}"))),
    }
}

fn new_id() -> WalletResult<String> {
    Ok(cardcash_util::base32::encode(
        &cardcash_crypto::random_bytes::<16>()?,
    ))
}

fn sum(currency: &Currency, amounts: impl IntoIterator<Item = Amount>) -> Amount {
    amounts
        .into_iter()
        .try_fold(Amount::zero(currency), |acc, a| acc.checked_add(&a))
        .unwrap_or(Amount::max(currency))
}

impl Wallet {
    fn merchant_client(&self, base: &BaseUrl) -> MerchantWalletClient {
        MerchantWalletClient::with_http(self.inner.http.clone(), base.clone())
    }

    fn purchase_row(&self, proposal_id: &str) -> WalletResult<PurchaseRow> {
        self.store()
            .purchase(proposal_id)?
            .ok_or_else(|| WalletError::UnknownTransaction(payment_transaction_id(proposal_id)))
    }

    /// Reads a `taler://pay` URI: claims the order (once; the nonce is stored before the
    /// claim leaves), verifies the contract, detects a repurchase, and says what paying would
    /// cost. Nothing is paid.
    pub async fn prepare_pay_for_uri(&self, uri: &str) -> WalletResult<PreparePayResult> {
        let (base, order_id, session_id, claim_token) = parse_pay_uri(uri)?;
        let nonce = EddsaPrivateKey::generate()?;
        let p = self
            .store()
            .create_purchase(PurchaseRow {
                proposal_id: new_id()?,
                merchant_base_url: base.clone(),
                order_id,
                claim_token,
                session_id: session_id.clone(),
                nonce_priv: nonce,
                state: PurchaseState::Claiming,
                contract: None,
                pay_sig: None,
                repurchase_of: None,
                created: Timestamp::now(),
                paid: None,
                last_error: None,
            })
            .await?;
        if p.state == PurchaseState::Claiming {
            if let Err(e) = self.claim(&p).await {
                self.store()
                    .record_purchase_error(&p.proposal_id, e.to_string())
                    .await?;
                return Err(e);
            }
            self.notify(Notification::TransactionStateTransition {
                transaction_id: payment_transaction_id(&p.proposal_id),
                old_state: PurchaseState::Claiming.as_str().into(),
                new_state: PurchaseState::Proposed.as_str().into(),
            });
        }
        let mut p = self.purchase_row(&p.proposal_id)?;
        // An offer scanned again in another session is paid in that one.
        if p.state == PurchaseState::Proposed && session_id != p.session_id {
            self.store()
                .set_purchase_session(&p.proposal_id, session_id.clone())
                .await?;
            p.session_id.clone_from(&session_id);
        }
        // A paid order scanned again in a new session: show the payment there.
        if p.state == PurchaseState::Done && !session_id.is_empty() && session_id != p.session_id {
            self.show_earlier_payment(&p, &session_id).await?;
        }
        if p.state == PurchaseState::Proposed
            && let Some(url) = p.contract.as_ref().and_then(|c| c.fulfillment_url.clone())
            && !url.is_empty()
            && let Some(earlier) = self
                .store()
                .paid_purchase_by_fulfillment(&p.merchant_base_url, &url)?
        {
            self.show_earlier_payment(&earlier, &session_id).await?;
            self.store()
                .mark_repurchase(&p.proposal_id, &earlier.proposal_id, session_id)
                .await?;
            self.notify(Notification::TransactionStateTransition {
                transaction_id: payment_transaction_id(&p.proposal_id),
                old_state: PurchaseState::Proposed.as_str().into(),
                new_state: PurchaseState::Repurchase.as_str().into(),
            });
        }
        self.describe_purchase(&self.purchase_row(&p.proposal_id)?)
    }

    /// `POST /orders/$EARLIER/paid` under `session_id`: the earlier payment's proof.
    async fn show_earlier_payment(
        &self,
        earlier: &PurchaseRow,
        session_id: &str,
    ) -> WalletResult<()> {
        let (Some(c), Some(sig)) = (&earlier.contract, earlier.pay_sig) else {
            return Err(WalletError::Incomplete(format!(
                "{} is not paid",
                payment_transaction_id(&earlier.proposal_id)
            )));
        };
        self.merchant_client(&earlier.merchant_base_url)
            .paid(
                &earlier.order_id,
                &PaidRequest {
                    sig,
                    h_contract: c.h_contract,
                    session_id: session_id.to_owned(),
                },
            )
            .await
            .map_err(merchant_error)?;
        self.store()
            .set_purchase_session(&earlier.proposal_id, session_id.to_owned())
            .await?;
        Ok(())
    }

    /// Claims the order with the stored nonce and stores the verified contract.
    async fn claim(&self, p: &PurchaseRow) -> WalletResult<()> {
        let answer = self
            .merchant_client(&p.merchant_base_url)
            .claim(
                &p.order_id,
                &ClaimRequest {
                    nonce: p.nonce_priv.public(),
                    token: p.claim_token.clone(),
                },
            )
            .await
            .map_err(merchant_error)?;
        self.at_step(Step::AfterClaim)?;
        let contract = self.verify_contract(p, &answer.contract_terms, &answer.sig)?;
        self.store().claimed(&p.proposal_id, contract).await?;
        Ok(())
    }

    /// Checks a claimed contract (see the module documentation).
    fn verify_contract(
        &self,
        p: &PurchaseRow,
        raw: &Value,
        sig: &cardcash_util::EddsaSignature,
    ) -> WalletResult<ClaimedContract> {
        let h = cardcash_crypto::contract::h_contract_terms(raw)
            .map_err(|e| WalletError::ContractMalformed(e.to_string()))?;
        let terms: ContractTerms = serde_json::from_value(raw.clone())
            .map_err(|e| WalletError::ContractMalformed(e.to_string()))?;
        cardcash_crypto::verify(
            &terms.merchant_pub,
            sig,
            &ContractSig {
                h_contract_terms: h,
            },
        )
        .map_err(|_| WalletError::ContractSignatureInvalid)?;
        if terms.merchant_base_url != p.merchant_base_url {
            return Err(WalletError::ContractBaseUrlMismatch {
                uri: p.merchant_base_url.to_string(),
                contract: terms.merchant_base_url.to_string(),
            });
        }
        if terms.nonce != p.nonce_priv.public() {
            return Err(WalletError::ContractMalformed(
                "the contract carries another nonce than this wallet's".into(),
            ));
        }
        if terms.order_id != p.order_id {
            return Err(WalletError::ContractMalformed(format!(
                "the contract is for order {}, not {}",
                terms.order_id, p.order_id
            )));
        }
        if terms.max_fee.currency() != terms.amount.currency() {
            return Err(WalletError::ContractMalformed(
                "max_fee and amount differ in currency".into(),
            ));
        }
        if self.trusted_exchanges(&terms)?.is_empty() {
            return Err(WalletError::NoTrustedExchange(
                terms
                    .exchanges
                    .iter()
                    .map(|e| e.url.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        let contract_json = serde_json::to_string(raw)
            .map_err(|e| WalletError::ContractMalformed(e.to_string()))?;
        Ok(ClaimedContract {
            contract_json,
            h_contract: h,
            merchant_sig: *sig,
            merchant_pub: terms.merchant_pub,
            amount: terms.amount,
            summary: terms.summary,
            fulfillment_url: terms.fulfillment_url,
        })
    }

    /// The contract's exchanges the wallet knows with the same master key.
    fn trusted_exchanges(&self, terms: &ContractTerms) -> WalletResult<Vec<BaseUrl>> {
        let mut out = Vec::new();
        for e in &terms.exchanges {
            if let Some(known) = self.store().exchange(&e.url)?
                && known.master_pub == e.master_pub
                && known.currency == *terms.amount.currency()
            {
                out.push(e.url.clone());
            }
        }
        Ok(out)
    }

    fn terms_of(&self, p: &PurchaseRow) -> WalletResult<(ClaimedContract, ContractTerms, Value)> {
        let c = p.contract.clone().ok_or_else(|| {
            WalletError::Incomplete(format!(
                "{} is not claimed yet",
                payment_transaction_id(&p.proposal_id)
            ))
        })?;
        let raw: Value = serde_json::from_str(&c.contract_json)
            .map_err(|e| WalletError::ContractMalformed(e.to_string()))?;
        let terms: ContractTerms = serde_json::from_value(raw.clone())
            .map_err(|e| WalletError::ContractMalformed(e.to_string()))?;
        Ok((c, terms, raw))
    }

    /// The coins the wallet could pay this contract with (fresh, of a trusted exchange, of a
    /// denomination neither revoked nor past its deposit expiry).
    fn pay_candidates(&self, terms: &ContractTerms) -> WalletResult<Vec<PayCandidate>> {
        let exchanges = self.trusted_exchanges(terms)?;
        let now = Timestamp::now();
        let mut denoms = HashMap::new();
        for e in &exchanges {
            let revoked = self.store().revoked_denominations(e)?;
            for d in self.store().denominations(e)? {
                if !revoked.contains(&d.h_denom_pub) && d.stamp_expire_deposit > now {
                    denoms.insert((e.clone(), d.h_denom_pub), d);
                }
            }
        }
        Ok(self
            .store()
            .coins()?
            .into_iter()
            .filter(|c| c.status == CoinStatus::Fresh && c.remaining == c.value)
            .filter_map(|c| {
                let d = denoms.get(&(c.exchange.clone(), c.h_denom_pub))?;
                Some(PayCandidate {
                    coin_pub: c.coin_pub,
                    exchange: c.exchange,
                    h_denom_pub: c.h_denom_pub,
                    value: c.value,
                    deposit_fee: d.fee_deposit,
                    refresh_fee: d.fee_refresh,
                })
            })
            .collect())
    }

    fn describe_purchase(&self, p: &PurchaseRow) -> WalletResult<PreparePayResult> {
        let (c, terms, raw) = self.terms_of(p)?;
        let currency = *terms.amount.currency();
        let (already_paid_order_id, already_paid_fulfillment_url) = match &p.repurchase_of {
            Some(earlier) => {
                let e = self.purchase_row(earlier)?;
                (
                    Some(e.order_id.clone()),
                    e.contract.and_then(|c| c.fulfillment_url),
                )
            }
            None => (None, None),
        };
        let candidates = self.pay_candidates(&terms)?;
        let available = sum(&currency, candidates.iter().map(|c| c.value));
        let (status, effective, fees) = match p.state {
            PurchaseState::Proposed => {
                match select_pay_coins(&terms.amount, &terms.max_fee, &candidates) {
                    Some(s) => ("payment-possible", Some(s.total), Some(s.customer_fees)),
                    None => ("insufficient-balance", None, None),
                }
            }
            _ => {
                let coins = self.store().purchase_coins(&p.proposal_id)?;
                let total = sum(&currency, coins.iter().map(|c| c.contribution));
                let deposit = sum(&currency, coins.iter().map(|c| c.deposit_fee));
                let customer = deposit.checked_sub(&terms.max_fee).ok();
                (
                    "already-confirmed",
                    (!coins.is_empty()).then_some(total),
                    (!coins.is_empty()).then(|| customer.unwrap_or(Amount::zero(&currency))),
                )
            }
        };
        Ok(PreparePayResult {
            status,
            transaction_id: payment_transaction_id(&p.proposal_id),
            order_id: p.order_id.clone(),
            merchant_base_url: p.merchant_base_url.to_string(),
            summary: c.summary.clone(),
            contract_terms: raw,
            contract_terms_hash: c.h_contract.to_string(),
            amount_raw: terms.amount,
            amount_effective: effective,
            customer_fees: fees,
            balance_available: available,
            fulfillment_url: c.fulfillment_url.clone(),
            paid: matches!(p.state, PurchaseState::Done | PurchaseState::Repurchase),
            already_paid_order_id,
            already_paid_fulfillment_url,
        })
    }

    /// Pays a proposed purchase (`confirmPay`): chooses and signs the coins, marks them spent
    /// with the payment in one transaction, sends `/pay`, verifies the merchant's confirmation,
    /// and refreshes the change. A purchase already being paid is resumed with the same
    /// request; a paid one is answered at once.
    pub async fn confirm_pay(
        &self,
        transaction_id: &str,
        session_id: Option<String>,
    ) -> WalletResult<ConfirmPayResult> {
        let proposal = proposal_of(transaction_id)?.to_owned();
        let p = self.purchase_row(&proposal)?;
        match p.state {
            PurchaseState::Proposed => {
                let (c, terms, _) = self.terms_of(&p)?;
                if terms.pay_deadline <= Timestamp::now() {
                    return Err(WalletError::OfferExpired);
                }
                let session = session_id.unwrap_or_else(|| p.session_id.clone());
                // A coin taken by another payment between choosing and marking: choose again.
                let mut marked = false;
                for _ in 0..3 {
                    let candidates = self.pay_candidates(&terms)?;
                    let Some(selection) =
                        select_pay_coins(&terms.amount, &terms.max_fee, &candidates)
                    else {
                        let available =
                            sum(terms.amount.currency(), candidates.iter().map(|c| c.value));
                        return Err(WalletError::InsufficientBalance {
                            needed: terms.amount.to_string(),
                            available: available.to_string(),
                        });
                    };
                    let coins = self.sign_deposits(&c, &terms, &candidates, &selection)?;
                    if self
                        .store()
                        .start_paying(&proposal, session.clone(), coins)
                        .await?
                    {
                        marked = true;
                        break;
                    }
                    if self.purchase_row(&proposal)?.state != PurchaseState::Proposed {
                        // Another worker confirmed it meanwhile.
                        marked = true;
                        break;
                    }
                }
                if !marked {
                    return Err(WalletError::Incomplete(
                        "the coins kept changing while choosing them".into(),
                    ));
                }
                self.notify(Notification::TransactionStateTransition {
                    transaction_id: payment_transaction_id(&proposal),
                    old_state: PurchaseState::Proposed.as_str().into(),
                    new_state: PurchaseState::Paying.as_str().into(),
                });
                self.notify(Notification::BalanceChange);
                self.process_purchase(&proposal).await?;
            }
            PurchaseState::Paying => self.process_purchase(&proposal).await?,
            PurchaseState::Done => {}
            PurchaseState::Repurchase => {
                return Err(WalletError::BadRequest(format!(
                    "{transaction_id} was paid before as another order (a repurchase)"
                )));
            }
            PurchaseState::Claiming | PurchaseState::Aborted => {
                return Err(WalletError::BadRequest(format!(
                    "{transaction_id} is {}",
                    p.state.as_str()
                )));
            }
        }
        let p = self.purchase_row(&proposal)?;
        let (c, terms, _) = self.terms_of(&p)?;
        let coins = self.store().purchase_coins(&proposal)?;
        Ok(ConfirmPayResult {
            kind: "done",
            transaction_id: payment_transaction_id(&proposal),
            contract_terms_hash: c.h_contract.to_string(),
            fulfillment_url: c.fulfillment_url,
            amount_effective: sum(
                terms.amount.currency(),
                coins.iter().map(|c| c.contribution),
            ),
        })
    }

    /// The coins' deposit permissions (1201, v23 layout as the exchange checks it).
    fn sign_deposits(
        &self,
        c: &ClaimedContract,
        terms: &ContractTerms,
        candidates: &[PayCandidate],
        selection: &PaySelection,
    ) -> WalletResult<Vec<PurchaseCoinRow>> {
        let mut out = Vec::with_capacity(selection.coins.len());
        for (index, (i, contribution)) in (0u32..).zip(&selection.coins) {
            let cand = &candidates[*i];
            let coin = self.store().coin(&cand.coin_pub)?.ok_or_else(|| {
                WalletError::Incomplete(format!("coin {} vanished", cand.coin_pub))
            })?;
            let coin_sig = coin.coin_priv.sign(&DepositRequestV23 {
                h_contract_terms: c.h_contract,
                h_age_commitment: [0; 32],
                h_policy: HashCode::from_bytes([0; 64]),
                h_wire: terms.h_wire,
                h_denom_pub: cand.h_denom_pub,
                wallet_timestamp: terms.timestamp,
                refund_deadline: terms.refund_deadline,
                amount_with_fee: *contribution,
                deposit_fee: cand.deposit_fee,
                merchant_pub: terms.merchant_pub,
                wallet_data_hash: HashCode::from_bytes([0; 64]),
            });
            out.push(PurchaseCoinRow {
                index,
                coin_pub: cand.coin_pub,
                contribution: *contribution,
                deposit_fee: cand.deposit_fee,
                coin_sig,
            });
        }
        Ok(out)
    }

    /// Sends `/pay` for a purchase being paid (the stored request, identical on every try),
    /// verifies the confirmation, records the purchase done, and refreshes the change.
    pub(crate) async fn process_purchase(&self, proposal_id: &str) -> WalletResult<()> {
        let p = self.purchase_row(proposal_id)?;
        if p.state != PurchaseState::Paying {
            return Ok(());
        }
        let result = self.send_pay(&p).await;
        if let Err(e) = result {
            if !matches!(e, WalletError::Halted(_)) {
                self.store()
                    .record_purchase_error(proposal_id, e.to_string())
                    .await?;
                self.notify(Notification::Error {
                    transaction_id: payment_transaction_id(proposal_id),
                    error: e.to_json(),
                });
            }
            return Err(e);
        }
        self.notify(Notification::TransactionStateTransition {
            transaction_id: payment_transaction_id(proposal_id),
            old_state: PurchaseState::Paying.as_str().into(),
            new_state: PurchaseState::Done.as_str().into(),
        });
        // The change: a failure here leaves the payment done; run_until_done retries.
        if let Err(e) = self.refresh_remainders().await {
            if matches!(e, WalletError::Halted(_)) {
                return Err(e);
            }
            tracing::info!(error = %e, "refreshing the change failed; run_until_done retries");
        }
        Ok(())
    }

    async fn send_pay(&self, p: &PurchaseRow) -> WalletResult<()> {
        let (c, _, _) = self.terms_of(p)?;
        let coins = self.store().purchase_coins(&p.proposal_id)?;
        let mut pay_coins = Vec::with_capacity(coins.len());
        for pc in &coins {
            let coin = self
                .store()
                .coin(&pc.coin_pub)?
                .ok_or_else(|| WalletError::Incomplete(format!("coin {} vanished", pc.coin_pub)))?;
            pay_coins.push(PayCoin {
                coin_pub: pc.coin_pub,
                coin_sig: pc.coin_sig,
                contribution: pc.contribution,
                h_denom: coin.h_denom_pub,
                exchange_url: coin.exchange.clone(),
                ub_sig: coin.denom_sig.clone(),
            });
        }
        let request = PayRequest {
            coins: pay_coins,
            session_id: (!p.session_id.is_empty()).then(|| p.session_id.clone()),
        };
        let answer = self
            .merchant_client(&p.merchant_base_url)
            .pay(&p.order_id, &request)
            .await
            .map_err(merchant_error)?;
        self.at_step(Step::AfterPay)?;
        cardcash_crypto::verify(
            &c.merchant_pub,
            &answer.sig,
            &PaymentOk {
                h_contract_terms: c.h_contract,
            },
        )
        .map_err(|_| {
            WalletError::MalformedResponse(
                "the merchant's payment confirmation (1104) does not verify".into(),
            )
        })?;
        self.store().paid(&p.proposal_id, answer.sig).await?;
        Ok(())
    }

    /// Refreshes every spent coin with something left (change of a payment, a refund): each
    /// into fresh coins. A remainder too small for any fresh coin is left.
    pub(crate) async fn refresh_remainders(&self) -> WalletResult<Vec<String>> {
        let mut ids = Vec::new();
        for coin in self.store().coins()? {
            if coin.status != CoinStatus::Spent || coin.remaining.is_zero() {
                continue;
            }
            match self.start_refresh(&coin).await {
                Ok(id) => ids.push(id),
                Err(WalletError::DenominationsInsufficient(why)) => {
                    tracing::debug!(coin = %coin.coin_pub, why, "remainder too small to refresh");
                }
                Err(e) => return Err(e),
            }
        }
        for id in &ids {
            self.process_refresh(id).await?;
        }
        Ok(ids)
    }

    /// Resumes every payment a crash (or an unreachable merchant) left unanswered.
    pub(crate) async fn resume_purchases(&self) -> WalletResult<()> {
        let mut first = None;
        for p in self.store().purchases()? {
            if p.state == PurchaseState::Paying
                && let Err(e) = self.process_purchase(&p.proposal_id).await
            {
                if matches!(e, WalletError::Halted(_)) {
                    return Err(e);
                }
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Picks up refunds of paid purchases whose contract asks for it (`auto_refund`: the
    /// merchant may refund within that period after the payment without telling the wallet
    /// otherwise). Failures are logged; the next run asks again.
    pub(crate) async fn pick_up_auto_refunds(&self) -> WalletResult<()> {
        let now = Timestamp::now();
        for p in self.store().purchases()? {
            if p.state != PurchaseState::Done {
                continue;
            }
            let Ok((_, terms, _)) = self.terms_of(&p) else {
                continue;
            };
            let Some(period) = terms.auto_refund else {
                continue;
            };
            if now > p.paid.unwrap_or(p.created).saturating_add(period) {
                continue;
            }
            if let Err(e) = self
                .start_refund_query(&payment_transaction_id(&p.proposal_id))
                .await
            {
                tracing::info!(error = %e, order = p.order_id, "auto-refund pickup failed");
            }
        }
        Ok(())
    }

    /// What payments under way take, per currency.
    pub(crate) fn payments_under_way(&self) -> WalletResult<HashMap<String, Amount>> {
        let mut out: HashMap<String, Amount> = HashMap::new();
        for p in self.store().purchases()? {
            if p.state != PurchaseState::Paying {
                continue;
            }
            let Some(c) = &p.contract else { continue };
            let currency = *c.amount.currency();
            let coins = self.store().purchase_coins(&p.proposal_id)?;
            let taken = sum(&currency, coins.iter().map(|c| c.contribution));
            let entry = out
                .entry(currency.to_string())
                .or_insert(Amount::zero(&currency));
            *entry = sum(&currency, [*entry, taken]);
        }
        Ok(out)
    }

    /// Payments (claimed ones) and the refunds picked up for them, as transactions.
    pub(crate) fn purchase_transactions(&self) -> WalletResult<Vec<crate::Transaction>> {
        let mut out = Vec::new();
        for p in self.store().purchases()? {
            let Some(c) = &p.contract else { continue };
            let currency = *c.amount.currency();
            let coins = self.store().purchase_coins(&p.proposal_id)?;
            let exchange = match coins.first() {
                Some(pc) => self
                    .store()
                    .coin(&pc.coin_pub)?
                    .map(|coin| coin.exchange.to_string())
                    .unwrap_or_default(),
                None => self
                    .terms_of(&p)
                    .ok()
                    .and_then(|(_, t, _)| t.exchanges.first().map(|e| e.url.to_string()))
                    .unwrap_or_default(),
            };
            let refunds = self.store().purchase_refunds(&p.proposal_id, &currency)?;
            let already_paid_order_id = match &p.repurchase_of {
                Some(earlier) => Some(self.purchase_row(earlier)?.order_id),
                None => None,
            };
            let order = |refunded: Option<Amount>| crate::pay::OrderInfo {
                merchant_base_url: p.merchant_base_url.to_string(),
                order_id: p.order_id.clone(),
                summary: c.summary.clone(),
                fulfillment_url: c.fulfillment_url.clone(),
                refunded,
                already_paid_order_id: already_paid_order_id.clone(),
            };
            out.push(crate::Transaction {
                transaction_id: payment_transaction_id(&p.proposal_id),
                kind: "payment",
                withdrawal_type: None,
                state: p.state.as_str(),
                exchange_base_url: exchange.clone(),
                amount_raw: c.amount,
                amount_effective: sum(&currency, coins.iter().map(|c| c.contribution)),
                reserve_pub: String::new(),
                order: Some(order(
                    (!refunds.is_empty()).then(|| sum(&currency, refunds.iter().map(|r| r.amount))),
                )),
                exchange_payto_uris: Vec::new(),
                timestamp: p.created,
                error: p.last_error.clone(),
            });
            let mut by_id: std::collections::BTreeMap<u64, Vec<&PurchaseRefundRow>> =
                std::collections::BTreeMap::new();
            for r in &refunds {
                by_id.entry(r.rtransaction_id).or_default().push(r);
            }
            for (rtid, rs) in by_id {
                let raw = sum(&currency, rs.iter().map(|r| r.amount));
                let fees = sum(&currency, rs.iter().map(|r| r.fee));
                out.push(crate::Transaction {
                    transaction_id: refund_transaction_id(&p.proposal_id, rtid),
                    kind: "refund",
                    withdrawal_type: None,
                    state: "done",
                    exchange_base_url: exchange.clone(),
                    amount_raw: raw,
                    amount_effective: raw.checked_sub(&fees).unwrap_or(Amount::zero(&currency)),
                    reserve_pub: String::new(),
                    order: Some(order(None)),
                    exchange_payto_uris: Vec::new(),
                    timestamp: rs.iter().map(|r| r.created).min().unwrap_or(p.created),
                    error: None,
                });
            }
        }
        Ok(out)
    }

    /// Gives up a payment that is not done (`POST /orders/$ID/abort`): the merchant has the
    /// exchange refund every deposited coin; each verified refund is credited to its coin,
    /// which is then refreshed.
    pub async fn abort_pay(&self, transaction_id: &str) -> WalletResult<()> {
        let proposal = proposal_of(transaction_id)?.to_owned();
        let p = self.purchase_row(&proposal)?;
        if p.state != PurchaseState::Paying {
            return Err(WalletError::BadRequest(format!(
                "{transaction_id} is {}, only a payment under way can be aborted",
                p.state.as_str()
            )));
        }
        let (c, _, _) = self.terms_of(&p)?;
        let coins = self.store().purchase_coins(&proposal)?;
        let mut rows = Vec::new();
        for pc in &coins {
            let coin = self
                .store()
                .coin(&pc.coin_pub)?
                .ok_or_else(|| WalletError::Incomplete(format!("coin {} vanished", pc.coin_pub)))?;
            rows.push((pc.clone(), coin));
        }
        let answer = self
            .merchant_client(&p.merchant_base_url)
            .abort(
                &p.order_id,
                &AbortRequest {
                    h_contract: c.h_contract,
                    coins: rows
                        .iter()
                        .map(|(pc, coin)| AbortingCoin {
                            coin_pub: pc.coin_pub,
                            contribution: pc.contribution,
                            exchange_url: coin.exchange.clone(),
                        })
                        .collect(),
                },
            )
            .await
            .map_err(merchant_error)?;
        if answer.refunds.len() != rows.len() {
            return Err(WalletError::MalformedResponse(format!(
                "{} abort refunds for {} coins",
                answer.refunds.len(),
                rows.len()
            )));
        }
        let mut credits = Vec::new();
        for ((pc, coin), r) in rows.iter().zip(&answer.refunds) {
            match r {
                AbortRefundStatus::Success {
                    exchange_sig,
                    exchange_pub,
                    ..
                } => {
                    self.verify_exchange_refund(
                        &coin.exchange,
                        exchange_pub,
                        exchange_sig,
                        &RefundConfirmation {
                            h_contract_terms: c.h_contract,
                            coin_pub: pc.coin_pub,
                            merchant_pub: c.merchant_pub,
                            rtransaction_id: 0,
                            refund_amount: pc.contribution,
                        },
                    )
                    .await?;
                    let fee = self.denom_refund_fee(coin)?;
                    let zero = Amount::zero(pc.contribution.currency());
                    let fee = refund_fee(
                        &fee,
                        &pc.deposit_fee,
                        &zero,
                        &pc.contribution,
                        &pc.contribution,
                    );
                    credits.push((
                        pc.coin_pub,
                        pc.contribution.checked_sub(&fee).unwrap_or(zero),
                    ));
                }
                // Not deposited (nothing to refund) or refused: nothing comes back.
                AbortRefundStatus::Failure { .. } => {}
            }
        }
        self.store().aborted(&proposal, credits).await?;
        self.notify(Notification::TransactionStateTransition {
            transaction_id: payment_transaction_id(&proposal),
            old_state: PurchaseState::Paying.as_str().into(),
            new_state: PurchaseState::Aborted.as_str().into(),
        });
        self.refresh_remainders().await?;
        self.notify(Notification::BalanceChange);
        Ok(())
    }

    fn denom_refund_fee(&self, coin: &crate::db::CoinRow) -> WalletResult<Amount> {
        self.store()
            .denominations(&coin.exchange)?
            .into_iter()
            .find(|d| d.h_denom_pub == coin.h_denom_pub)
            .map(|d| d.fee_refund)
            .ok_or_else(|| {
                WalletError::Incomplete(format!(
                    "denomination {} is no longer known",
                    coin.h_denom_pub
                ))
            })
    }

    /// Checks an exchange's refund signature (1038) with one of its signing keys (the keys
    /// are fetched again once when the key is not among those the wallet has).
    async fn verify_exchange_refund(
        &self,
        exchange: &BaseUrl,
        exchange_pub: &EddsaPublicKey,
        exchange_sig: &cardcash_util::EddsaSignature,
        message: &RefundConfirmation,
    ) -> WalletResult<()> {
        let known = |w: &Wallet| -> WalletResult<bool> {
            Ok(w.known_exchange(exchange)?
                .keys
                .signkeys
                .iter()
                .any(|k| k.key == *exchange_pub))
        };
        if !known(self)? {
            self.add_exchange(exchange).await?;
            if !known(self)? {
                return Err(WalletError::MalformedResponse(format!(
                    "{exchange_pub} is not a signing key of {exchange}"
                )));
            }
        }
        cardcash_crypto::verify(exchange_pub, exchange_sig, message).map_err(|_| {
            WalletError::MalformedResponse(format!(
                "the exchange's refund signature of coin {} does not verify",
                message.coin_pub
            ))
        })
    }

    /// Asks the merchant for the refunds of a `taler://refund` URI's order (which this
    /// wallet paid) and picks them up.
    pub async fn start_refund_query_for_uri(&self, uri: &str) -> WalletResult<RefundQueryResult> {
        let (base, order_id) = match uri.parse::<TalerUri>() {
            Ok(TalerUri::Refund {
                merchant_base,
                order_id,
            }) => (merchant_base, order_id),
            Ok(other) => {
                return Err(WalletError::BadRequest(format!(
                    "a taler://{} URI is not a refund",
                    other.action()
                )));
            }
            Err(e) => return Err(WalletError::BadRequest(format!("{uri:?}: {e}"))),
        };
        let p = self
            .store()
            .purchase_by_order(&base, &order_id)?
            .ok_or_else(|| {
                WalletError::BadRequest(format!(
                    "this wallet did not pay order {order_id} at {base}"
                ))
            })?;
        self.start_refund_query(&payment_transaction_id(&p.proposal_id))
            .await
    }

    /// Picks up the refunds of a paid purchase (`POST /orders/$ID/refund`): every refund the
    /// exchange executed is verified and credited once, then the coins are refreshed.
    pub async fn start_refund_query(
        &self,
        transaction_id: &str,
    ) -> WalletResult<RefundQueryResult> {
        let proposal = proposal_of(transaction_id)?.to_owned();
        let p = self.purchase_row(&proposal)?;
        if p.state != PurchaseState::Done {
            return Err(WalletError::BadRequest(format!(
                "{transaction_id} is {}, not paid",
                p.state.as_str()
            )));
        }
        let (c, terms, _) = self.terms_of(&p)?;
        let currency = *terms.amount.currency();
        let zero = Amount::zero(&currency);
        let answer = self
            .merchant_client(&p.merchant_base_url)
            .refund(
                &p.order_id,
                &WalletRefundRequest {
                    h_contract: c.h_contract,
                },
            )
            .await
            .map_err(merchant_error)?;
        let mut result = RefundQueryResult {
            transaction_id: payment_transaction_id(&proposal),
            amount_refund_granted: zero,
            amount_refund_gone: zero,
            amount_effective_credited: zero,
            pending: 0,
            refund_transaction_ids: Vec::new(),
        };
        let Some(answer) = answer else {
            return Ok(result);
        };
        if answer.merchant_pub != c.merchant_pub {
            return Err(WalletError::MalformedResponse(
                "the refunds name another merchant key than the contract".into(),
            ));
        }
        let coins: HashMap<EddsaPublicKey, PurchaseCoinRow> = self
            .store()
            .purchase_coins(&proposal)?
            .into_iter()
            .map(|c| (c.coin_pub, c))
            .collect();
        for r in &answer.refunds {
            let CoinRefundStatus::Success {
                exchange_sig,
                exchange_pub,
                rtransaction_id,
                coin_pub,
                refund_amount,
                execution_time,
                ..
            } = r
            else {
                result.pending += 1;
                continue;
            };
            let pc = coins.get(coin_pub).ok_or_else(|| {
                WalletError::MalformedResponse(format!(
                    "a refund of coin {coin_pub}, which did not pay this order"
                ))
            })?;
            let coin = self
                .store()
                .coin(coin_pub)?
                .ok_or_else(|| WalletError::Incomplete(format!("coin {coin_pub} vanished")))?;
            self.verify_exchange_refund(
                &coin.exchange,
                exchange_pub,
                exchange_sig,
                &RefundConfirmation {
                    h_contract_terms: c.h_contract,
                    coin_pub: *coin_pub,
                    merchant_pub: c.merchant_pub,
                    rtransaction_id: *rtransaction_id,
                    refund_amount: *refund_amount,
                },
            )
            .await?;
            let before = self
                .store()
                .purchase_refunds(&proposal, &currency)?
                .into_iter()
                .filter(|x| x.coin_pub == *coin_pub && x.rtransaction_id != *rtransaction_id)
                .map(|x| x.amount);
            let before = sum(&currency, before);
            let fee = refund_fee(
                &self.denom_refund_fee(&coin)?,
                &pc.deposit_fee,
                &before,
                refund_amount,
                &pc.contribution,
            );
            let fee = if fee.to_units() > refund_amount.to_units() {
                *refund_amount
            } else {
                fee
            };
            let new = self
                .store()
                .record_refund(
                    &proposal,
                    PurchaseRefundRow {
                        coin_pub: *coin_pub,
                        rtransaction_id: *rtransaction_id,
                        amount: *refund_amount,
                        fee,
                        execution_time: *execution_time,
                        created: Timestamp::now(),
                    },
                )
                .await?;
            if new {
                result.amount_refund_granted =
                    sum(&currency, [result.amount_refund_granted, *refund_amount]);
                result.amount_refund_gone = sum(&currency, [result.amount_refund_gone, fee]);
                result.amount_effective_credited = sum(
                    &currency,
                    [
                        result.amount_effective_credited,
                        refund_amount.checked_sub(&fee).unwrap_or(zero),
                    ],
                );
                let id = refund_transaction_id(&proposal, *rtransaction_id);
                if !result.refund_transaction_ids.contains(&id) {
                    result.refund_transaction_ids.push(id.clone());
                    self.notify(Notification::TransactionStateTransition {
                        transaction_id: id,
                        old_state: "none".into(),
                        new_state: "done".into(),
                    });
                }
            }
        }
        if !result.amount_refund_granted.is_zero() {
            self.notify(Notification::BalanceChange);
            self.refresh_remainders().await?;
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chf(s: &str) -> Amount {
        format!("CHF:{s}").parse().unwrap()
    }

    fn coin(seed: u8, value: &str, fee: &str) -> PayCandidate {
        PayCandidate {
            coin_pub: EddsaPublicKey::from_bytes([seed; 32]),
            exchange: BaseUrl::parse("http://ex.example/").unwrap(),
            h_denom_pub: HashCode::from_bytes([seed; 64]),
            value: chf(value),
            deposit_fee: chf(fee),
            refresh_fee: chf("0.01"),
        }
    }

    fn picked(s: &PaySelection, c: &[PayCandidate]) -> Vec<(String, String)> {
        s.coins
            .iter()
            .map(|(i, a)| (c[*i].value.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn the_smallest_coin_that_covers_pays_alone() {
        let c = [
            coin(1, "10", "0.01"),
            coin(2, "5", "0.01"),
            coin(3, "1", "0.01"),
        ];
        // 3.5 with the merchant paying up to 0.05 of fees: the 5 covers it alone.
        let s = select_pay_coins(&chf("3.5"), &chf("0.05"), &c).unwrap();
        assert_eq!(picked(&s, &c), [("CHF:5".into(), "CHF:3.5".into())]);
        assert_eq!(s.customer_fees, chf("0"));
        assert_eq!(s.deposit_fees, chf("0.01"));
        assert_eq!(s.total, chf("3.5"));
    }

    #[test]
    fn large_coins_whole_then_the_rest_from_the_smallest_covering() {
        let c = [
            coin(1, "5", "0.01"),
            coin(2, "5", "0.01"),
            coin(3, "2", "0.01"),
            coin(4, "1", "0.01"),
        ];
        // 11.5, max_fee 0: 5 + 5 whole (fees 0.02), then 1.5 + 0.03 fees = 1.53 from the 2.
        let s = select_pay_coins(&chf("11.5"), &chf("0"), &c).unwrap();
        assert_eq!(
            picked(&s, &c),
            [
                ("CHF:5".into(), "CHF:5".into()),
                ("CHF:5".into(), "CHF:5".into()),
                ("CHF:2".into(), "CHF:1.53".into())
            ]
        );
        assert_eq!(s.customer_fees, chf("0.03"));
        assert_eq!(s.total, chf("11.53"));
        // What the merchant gets after fees is the price.
        assert_eq!(s.total.checked_sub(&s.deposit_fees).unwrap(), chf("11.5"));
    }

    #[test]
    fn an_exact_fit_of_whole_coins_beats_change_to_refresh() {
        // 2 from [5, 1, 1] with the fees the merchant's: two whole 1s (no change) rather
        // than 2 of the 5 (3 of change to melt).
        let c = [
            coin(1, "5", "0.01"),
            coin(2, "1", "0.01"),
            coin(3, "1", "0.01"),
        ];
        let s = select_pay_coins(&chf("2"), &chf("0.02"), &c).unwrap();
        assert_eq!(
            picked(&s, &c),
            [
                ("CHF:1".into(), "CHF:1".into()),
                ("CHF:1".into(), "CHF:1".into())
            ]
        );
        // When the merchant covers only one deposit fee, the second 1 would cost her 0.01
        // beyond max_fee and still not cover it: the 5 pays alone.
        let s = select_pay_coins(&chf("2"), &chf("0.01"), &c).unwrap();
        assert_eq!(picked(&s, &c), [("CHF:5".into(), "CHF:2".into())]);
    }

    #[test]
    fn fees_within_max_fee_are_the_merchants() {
        let c = [coin(1, "2", "0.1"), coin(2, "2", "0.1")];
        // 3 with max_fee 0.2: 2 whole, 1 from the other; fees 0.2 are the merchant's.
        let s = select_pay_coins(&chf("3"), &chf("0.2"), &c).unwrap();
        assert_eq!(s.total, chf("3"));
        assert_eq!(s.customer_fees, chf("0"));
        // With max_fee 0.1, the customer pays the other 0.1.
        let s = select_pay_coins(&chf("3"), &chf("0.1"), &c).unwrap();
        assert_eq!(s.total, chf("3.1"));
        assert_eq!(s.customer_fees, chf("0.1"));
    }

    #[test]
    fn not_enough_coins_or_another_currency() {
        let c = [coin(1, "1", "0"), coin(2, "1", "0")];
        assert!(select_pay_coins(&chf("2.01"), &chf("0"), &c).is_none());
        assert!(select_pay_coins(&chf("2"), &chf("0"), &c).is_some());
        let eur: Amount = "EUR:1".parse().unwrap();
        assert!(select_pay_coins(&eur, &"EUR:0".parse().unwrap(), &c).is_none());
        // A coin worth no more than its deposit fee is useless.
        let dust = [coin(1, "0.01", "0.01")];
        assert!(select_pay_coins(&chf("0.001"), &chf("1"), &dust).is_none());
    }

    #[test]
    fn a_contribution_never_falls_below_its_deposit_fee() {
        let c = [coin(1, "1", "0.05")];
        let s = select_pay_coins(&chf("0.01"), &chf("0"), &c).unwrap();
        assert_eq!(s.coins[0].1, chf("0.06"));
        let s = select_pay_coins(&chf("0.01"), &chf("1"), &c).unwrap();
        assert_eq!(s.coins[0].1, chf("0.05"), "the fee is the floor");
    }

    #[test]
    fn the_last_refund_of_a_coin_waives_the_fee_up_to_the_deposit_fee() {
        let (rf, df) = (chf("0.03"), chf("0.01"));
        assert_eq!(
            refund_fee(&rf, &df, &chf("0"), &chf("1"), &chf("3")),
            chf("0.03")
        );
        assert_eq!(
            refund_fee(&rf, &df, &chf("1"), &chf("2"), &chf("3")),
            chf("0.02")
        );
        assert_eq!(
            refund_fee(&chf("0.01"), &chf("0.05"), &chf("0"), &chf("3"), &chf("3")),
            chf("0")
        );
    }

    #[test]
    fn pay_uris() {
        let (base, order, session, token) =
            parse_pay_uri("taler+http://pay/localhost:9966/instances/shop/O-1/S1?c=TOK").unwrap();
        assert_eq!(base.as_str(), "http://localhost:9966/instances/shop/");
        assert_eq!((order.as_str(), session.as_str()), ("O-1", "S1"));
        assert_eq!(token.as_deref(), Some("TOK"));
        assert!(matches!(
            parse_pay_uri("taler://withdraw/bank.example/taler-integration/W"),
            Err(WalletError::PayUriInvalid(_))
        ));
        assert_eq!(proposal_of(&payment_transaction_id("P1")).unwrap(), "P1");
        assert!(proposal_of("txn:withdrawal:P1").is_err());
    }
}
