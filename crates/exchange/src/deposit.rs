//! Deposits, refunds and their tracking (docs.taler.net core/api-exchange `POST /batch-deposit`,
//! `POST /coins/$COIN_PUB/refund`, `GET /deposits/…`, `GET /transfers/$WTID`).
//!
//! A batch deposit checks every coin (denomination window, the unblinded denomination
//! signature, the coin's signature over the contract), then ONE transaction checks and debits
//! every coin's remaining value; the answer is signed over the whole batch (purpose 1033, v23).
//! A replay of the same batch returns the first answer's timestamp, so its signature is the
//! same. A refund is ONE transaction too; it is refused once the merchant was paid.

use cardcash_api::exchange::{
    BatchDepositRequest, BatchDepositResponse, RefundRequest, RefundResponse,
    TrackTransactionAcceptedResponse, TrackTransactionResponse, TrackTransferDetail,
    TrackTransferResponse, UnblindedSignature,
};
use cardcash_crypto::coin::{h_coin_pub, h_coin_sigs};
use cardcash_crypto::purpose::{
    ConfirmWire, ContractSig, DepositConfirmationV12, DepositConfirmationV23, DepositRequestV12,
    DepositRequestV23, MerchantRefund, RefundConfirmation, TrackTransaction,
    WireDepositConfirmation, WireDepositDetail,
};
use cardcash_crypto::{cs, rsa};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, ShortHashCode, Timestamp,
};
use serde_json::json;

use crate::db::{DepositOutcome, NewBatchDeposit, NewCoinDeposit, NewRefund, RefundOutcome};
use crate::denomination::{Use, usable};
use crate::error::ExchangeError;
use crate::keys::store::DenominationPublic;
use crate::service::Exchange;

/// The most coins one batch may carry.
pub const MAX_COINS: usize = 1024;

fn refused(code: ErrorCode, hint: impl Into<String>) -> ExchangeError {
    ExchangeError::refused(code, hint)
}

/// The current signing key or a 500 (the key worker keeps one; missing means misconfigured).
fn signing_key(exchange: &Exchange) -> Result<EddsaPublicKey, ExchangeError> {
    exchange
        .keys()
        .signing_key
        .as_ref()
        .map(|k| k.exchange_pub)
        .ok_or_else(|| {
            refused(
                ErrorCode::ExchangeGenericKeysMissing,
                "no online signing key is signed by the master key",
            )
        })
}

pub(crate) fn sign(
    exchange: &Exchange,
    message: &impl cardcash_crypto::SignedMessage,
) -> Result<(EddsaPublicKey, EddsaSignature), ExchangeError> {
    let key = signing_key(exchange)?;
    let sig = exchange
        .keystore()
        .sign_with(&key, message)
        .ok_or_else(|| {
            ExchangeError::Internal("the signing key's private key is missing".into())
        })?;
    Ok((key, sig))
}

/// The unblinded denomination signature in storage form (RSA bytes, or CS `R ‖ s`).
pub(crate) fn stored_coin_signature(sig: &UnblindedSignature) -> Vec<u8> {
    match sig {
        UnblindedSignature::Rsa { rsa_signature } => rsa_signature.as_bytes().to_vec(),
        UnblindedSignature::Cs {
            cs_signature_r,
            cs_signature_s,
        } => {
            let mut out = cs_signature_r.as_bytes().to_vec();
            out.extend_from_slice(cs_signature_s.as_bytes());
            out
        }
    }
}

/// Whether `sig` is the denomination's signature over the coin.
pub(crate) fn denomination_signature_valid(
    public: &DenominationPublic,
    coin_pub: &EddsaPublicKey,
    sig: &UnblindedSignature,
) -> bool {
    let msg = h_coin_pub(coin_pub);
    match (public, sig) {
        (DenominationPublic::Rsa(k), UnblindedSignature::Rsa { rsa_signature }) => {
            // Our own denomination key: no need for the gcd check a foreign key gets (it costs
            // twice an RSA signature).
            rsa::verify_own_key(k, msg.as_bytes(), rsa_signature.as_bytes()).is_ok()
        }
        (
            DenominationPublic::Cs(k),
            UnblindedSignature::Cs {
                cs_signature_r,
                cs_signature_s,
            },
        ) => cs::verify(
            k,
            cs_signature_r.as_bytes(),
            cs_signature_s.as_bytes(),
            msg.as_bytes(),
        )
        .is_ok(),
        _ => false,
    }
}

/// Which protocol's signatures a deposit carries and gets: v23 (`POST /batch-deposit`: the
/// coins sign the 456-byte 1201 with `wallet_data_hash`, the answer is the batch's 1033 over
/// the coin signatures' hash) or v12–14 (the legacy face's `POST /coins/$COIN_PUB/deposit`:
/// one coin signs the 392-byte 1201, the answer is the 312-byte single-coin 1033 naming the
/// coin and its contribution without the fee).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepositLayout {
    V23,
    V12,
}

/// `POST /batch-deposit`.
pub async fn batch_deposit(
    exchange: &Exchange,
    r: BatchDepositRequest,
) -> Result<BatchDepositResponse, ExchangeError> {
    deposit_with_layout(exchange, r, DepositLayout::V23).await
}

/// A deposit of `r`'s coins whose signatures are in `layout` (the v12 layout takes exactly
/// one coin); everything else is the same for both.
pub async fn deposit_with_layout(
    exchange: &Exchange,
    r: BatchDepositRequest,
    layout: DepositLayout,
) -> Result<BatchDepositResponse, ExchangeError> {
    let n = r.coins.len();
    if layout == DepositLayout::V12 && n != 1 {
        return Err(refused(
            ErrorCode::GenericParameterMalformed,
            "a v12 deposit has exactly one coin",
        ));
    }
    if n == 0 || n > MAX_COINS {
        return Err(refused(
            ErrorCode::GenericParameterMalformed,
            format!("a batch has 1 to {MAX_COINS} coins, not {n}"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !r.coins.iter().all(|c| seen.insert(c.coin_pub)) {
        return Err(refused(
            ErrorCode::GenericParameterMalformed,
            "a coin appears twice in the batch",
        ));
    }
    if r.policy.is_some() {
        return Err(refused(
            ErrorCode::ExchangeDepositsPolicyNotAccepted,
            "deposit policies are not supported by this exchange",
        ));
    }
    let refund_deadline = r.refund_deadline.unwrap_or(Timestamp::ZERO);
    if r.wire_transfer_deadline.is_never() {
        return Err(refused(
            ErrorCode::ExchangeDepositWireDeadlineIsNever,
            "the wire transfer deadline must not be never",
        ));
    }
    if refund_deadline > r.wire_transfer_deadline {
        return Err(refused(
            ErrorCode::ExchangeDepositRefundDeadlineAfterWireDeadline,
            "the refund deadline is after the wire transfer deadline",
        ));
    }
    let payto = r.merchant_payto_uri.to_string();
    let method = r.merchant_payto_uri.target_type().to_owned();
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    if snapshot.wire_fee(&method, now).is_none() {
        return Err(refused(
            ErrorCode::GenericParameterMalformed,
            format!("merchant_payto_uri: this exchange does not wire to {method} accounts"),
        ));
    }
    if let Some(sig) = &r.merchant_sig {
        cardcash_crypto::verify(
            &r.merchant_pub,
            sig,
            &ContractSig {
                h_contract_terms: r.h_contract_terms,
            },
        )
        .map_err(|_| ExchangeError::malformed("merchant_sig"))?;
    }
    let h_wire = cardcash_crypto::h_wire(&payto, &r.wire_salt);
    let currency = *exchange.store().currency();
    let mut coins = Vec::with_capacity(n);
    let mut total: u128 = 0;
    for c in &r.coins {
        let d = usable(exchange, &snapshot, &c.denom_pub_hash, Use::Deposit, now)?;
        let cipher_matches = matches!(
            (&d.public, &c.ub_sig),
            (DenominationPublic::Rsa(_), UnblindedSignature::Rsa { .. })
                | (DenominationPublic::Cs(_), UnblindedSignature::Cs { .. })
        );
        if !cipher_matches {
            return Err(refused(
                ErrorCode::ExchangeGenericCipherMismatch,
                "a coin's signature has another cipher than its denomination",
            ));
        }
        if c.contribution.currency() != &currency {
            return Err(refused(
                ErrorCode::GenericJsonInvalid,
                format!("amounts must be in {currency}"),
            ));
        }
        if c.contribution.to_units() > d.value.to_units() {
            return Err(refused(
                ErrorCode::ExchangeGenericAmountExceedsDenominationValue,
                "a contribution exceeds its coin's value",
            ));
        }
        if c.contribution.to_units() < d.fee_deposit.to_units() {
            return Err(refused(
                ErrorCode::ExchangeDepositNegativeValueAfterFee,
                "a contribution is smaller than the deposit fee",
            ));
        }
        // No denomination here is age-restricted: a coin claiming an age commitment has a
        // coin hash no denomination signed, so its signature cannot verify (C: 403 1006).
        if crate::denomination::claims_age_commitment(c.h_age_commitment.as_ref())
            || !denomination_signature_valid(&d.public, &c.coin_pub, &c.ub_sig)
        {
            return Err(refused(
                ErrorCode::ExchangeDenominationSignatureInvalid,
                "a coin's denomination signature is invalid",
            ));
        }
        let message = DepositRequestV23 {
            h_contract_terms: r.h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire,
            h_denom_pub: d.h_denom_pub,
            wallet_timestamp: r.timestamp,
            refund_deadline,
            amount_with_fee: c.contribution,
            deposit_fee: d.fee_deposit,
            merchant_pub: r.merchant_pub,
            wallet_data_hash: r.wallet_data_hash.unwrap_or(HashCode::from_bytes([0; 64])),
        };
        let verified = match layout {
            DepositLayout::V23 => cardcash_crypto::verify(&c.coin_pub, &c.coin_sig, &message),
            DepositLayout::V12 => cardcash_crypto::verify(
                &c.coin_pub,
                &c.coin_sig,
                &DepositRequestV12 {
                    h_contract_terms: message.h_contract_terms,
                    h_age_commitment: message.h_age_commitment,
                    h_policy: message.h_policy,
                    h_wire: message.h_wire,
                    h_denom_pub: message.h_denom_pub,
                    wallet_timestamp: message.wallet_timestamp,
                    refund_deadline: message.refund_deadline,
                    amount_with_fee: message.amount_with_fee,
                    deposit_fee: message.deposit_fee,
                    merchant_pub: message.merchant_pub,
                },
            ),
        };
        verified.map_err(|_| {
            refused(
                ErrorCode::ExchangeDepositCoinSignatureInvalid,
                "a coin's signature over the deposit is invalid",
            )
        })?;
        total += c.contribution.to_units() - d.fee_deposit.to_units();
        coins.push(NewCoinDeposit {
            coin_pub: c.coin_pub,
            denom_serial: d.serial,
            denom_sig: stored_coin_signature(&c.ub_sig),
            coin_value: d.value,
            coin_sig: c.coin_sig,
            amount_with_fee: c.contribution,
            deposit_fee: d.fee_deposit,
        });
    }
    let total_without_fee = Amount::from_units(&currency, total)
        .map_err(|_| refused(ErrorCode::GenericParameterMalformed, "the total overflows"))?;
    let h_coin_sigs = h_coin_sigs(r.coins.iter().map(|c| &c.coin_sig));
    let deposit = NewBatchDeposit {
        merchant_pub: r.merchant_pub,
        h_contract_terms: r.h_contract_terms,
        merchant_payto: payto.clone(),
        h_payto: cardcash_crypto::h_payto(&payto),
        wire_salt: r.wire_salt,
        wallet_timestamp: r.timestamp,
        exchange_timestamp: now,
        refund_deadline,
        wire_deadline: r.wire_transfer_deadline,
        wallet_data_hash: r.wallet_data_hash,
        h_coin_sigs,
        total_without_fee,
        coins,
    };
    match exchange.store().batch_deposit(deposit).await? {
        DepositOutcome::Done { exchange_timestamp } => {
            if exchange_timestamp == now {
                exchange.metrics().coins_deposited.inc_by(n as u64);
            }
            let (exchange_pub, exchange_sig) = match layout {
                DepositLayout::V23 => sign(
                    exchange,
                    &DepositConfirmationV23 {
                        h_contract_terms: r.h_contract_terms,
                        h_wire,
                        h_policy: HashCode::from_bytes([0; 64]),
                        exchange_timestamp,
                        wire_deadline: r.wire_transfer_deadline,
                        refund_deadline,
                        total_without_fee,
                        h_coin_sigs,
                        merchant_pub: r.merchant_pub,
                    },
                )?,
                DepositLayout::V12 => sign(
                    exchange,
                    &DepositConfirmationV12 {
                        h_contract_terms: r.h_contract_terms,
                        h_wire,
                        h_policy: HashCode::from_bytes([0; 64]),
                        exchange_timestamp,
                        wire_deadline: r.wire_transfer_deadline,
                        refund_deadline,
                        amount_without_fee: total_without_fee,
                        coin_pub: r.coins[0].coin_pub,
                        merchant_pub: r.merchant_pub,
                    },
                )?,
            };
            Ok(BatchDepositResponse {
                exchange_timestamp,
                exchange_pub,
                exchange_sig,
                transaction_base_url: None,
            })
        }
        DepositOutcome::InsufficientFunds { index } => {
            let c = &r.coins[index];
            Err(ExchangeError::refused_with(
                ErrorCode::ExchangeGenericInsufficientFunds,
                "a coin has not enough value left (double spending?)",
                json!({ "coin_pub": c.coin_pub, "h_denom_pub": c.denom_pub_hash }),
            ))
        }
        DepositOutcome::CoinConflict { index } => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeGenericCoinConflictingDenominationKey,
            "the coin is known with another denomination",
            json!({ "coin_pub": r.coins[index].coin_pub }),
        )),
        DepositOutcome::Conflict { .. } => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeDepositConflictingContract,
            "a coin's signature belongs to another deposit",
            json!({ "h_wire": h_wire }),
        )),
    }
}

/// `POST /coins/$COIN_PUB/refund`.
pub async fn refund(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    r: RefundRequest,
) -> Result<RefundResponse, ExchangeError> {
    let currency = *exchange.store().currency();
    // The C exchange stores the id as a signed 64-bit integer and refuses larger ones.
    if i64::try_from(r.rtransaction_id).is_err() {
        return Err(refused(
            ErrorCode::GenericJsonInvalid,
            "rtransaction_id must be below 2^63",
        ));
    }
    if r.refund_amount.currency() != &currency {
        return Err(refused(
            ErrorCode::GenericJsonInvalid,
            format!("amounts must be in {currency}"),
        ));
    }
    cardcash_crypto::verify(
        &r.merchant_pub,
        &r.merchant_sig,
        &MerchantRefund {
            h_contract_terms: r.h_contract_terms,
            coin_pub,
            rtransaction_id: r.rtransaction_id,
            refund_amount: r.refund_amount,
        },
    )
    .map_err(|_| {
        refused(
            ErrorCode::ExchangeRefundMerchantSignatureInvalid,
            "the merchant's signature over the refund is invalid",
        )
    })?;
    let coin = exchange
        .store()
        .coin(coin_pub)
        .await?
        .ok_or_else(|| refused(ErrorCode::ExchangeRefundCoinNotFound, "unknown coin"))?;
    let snapshot = exchange.keys();
    let denom = snapshot
        .denominations
        .get(&coin.h_denom_pub)
        .ok_or_else(|| ExchangeError::Internal("a known coin's denomination is gone".into()))?;
    let outcome = exchange
        .store()
        .refund(
            NewRefund {
                coin_pub,
                merchant_pub: r.merchant_pub,
                h_contract_terms: r.h_contract_terms,
                rtransaction_id: r.rtransaction_id,
                amount: r.refund_amount,
                merchant_sig: r.merchant_sig,
            },
            denom.fee_refund,
        )
        .await?;
    match outcome {
        RefundOutcome::Done => {
            exchange.metrics().refunds.inc();
            let (exchange_pub, exchange_sig) = sign(
                exchange,
                &RefundConfirmation {
                    h_contract_terms: r.h_contract_terms,
                    coin_pub,
                    merchant_pub: r.merchant_pub,
                    rtransaction_id: r.rtransaction_id,
                    refund_amount: r.refund_amount,
                },
            )?;
            Ok(RefundResponse {
                exchange_sig,
                exchange_pub,
            })
        }
        RefundOutcome::DepositNotFound => Err(refused(
            ErrorCode::ExchangeRefundDepositNotFound,
            "no deposit of this coin for this contract and merchant",
        )),
        RefundOutcome::AlreadyWired => Err(refused(
            ErrorCode::ExchangeRefundMerchantAlreadyPaid,
            "the merchant was already paid for this deposit",
        )),
        // As the C exchange answers them: the coin named, for the wallet to fetch its history.
        RefundOutcome::Conflict => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeRefundInconsistentAmount,
            "this refund id was used with another amount",
            json!({ "coin_pub": coin_pub, "h_denom_pub": coin.h_denom_pub }),
        )),
        RefundOutcome::Exceeds { deposited } => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeRefundConflictDepositInsufficient,
            "the refunds would exceed what the coin paid",
            json!({
                "coin_pub": coin_pub,
                "h_denom_pub": coin.h_denom_pub,
                "deposited": deposited,
            }),
        )),
        RefundOutcome::FeeExceedsAmount => Err(refused(
            ErrorCode::ExchangeRefundFeeAboveAmount,
            "the refund is smaller than the refund fee",
        )),
    }
}

/// The answer to `GET /deposits/…`: paid (200) or not yet (202).
#[derive(Debug)]
pub enum Tracking {
    Wired(TrackTransactionResponse),
    Pending(TrackTransactionAcceptedResponse),
}

/// `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB?merchant_sig=…`.
pub async fn track_deposit(
    exchange: &Exchange,
    h_wire: HashCode,
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    coin_pub: EddsaPublicKey,
    merchant_sig: EddsaSignature,
) -> Result<Tracking, ExchangeError> {
    cardcash_crypto::verify(
        &merchant_pub,
        &merchant_sig,
        &TrackTransaction {
            h_contract_terms,
            h_wire,
            coin_pub,
        },
    )
    .map_err(|_| {
        refused(
            ErrorCode::ExchangeDepositsGetMerchantSignatureInvalid,
            "the merchant's signature over the request is invalid",
        )
    })?;
    let not_found = || refused(ErrorCode::ExchangeDepositsGetNotFound, "no such deposit");
    let row = exchange
        .store()
        .deposit_tracking(merchant_pub, h_contract_terms, coin_pub)
        .await?
        .ok_or_else(not_found)?;
    if cardcash_crypto::h_wire(&row.merchant_payto, &row.wire_salt) != h_wire {
        return Err(not_found());
    }
    match row.wire {
        Some((wtid, execution_time)) => {
            // Signed as sent: the JSON carries whole seconds (`t_s`).
            let execution_time = execution_time.round_down_to_secs();
            let coin_contribution = Amount::from_units(
                row.amount_with_fee.currency(),
                row.amount_with_fee
                    .to_units()
                    .saturating_sub(row.refunded.to_units())
                    .saturating_sub(row.deposit_fee.to_units()),
            )
            .map_err(|e| ExchangeError::Internal(e.to_string()))?;
            let (exchange_pub, exchange_sig) = sign(
                exchange,
                &ConfirmWire {
                    h_wire,
                    h_contract_terms,
                    wtid: *wtid.as_bytes(),
                    coin_pub,
                    execution_time,
                    coin_contribution,
                },
            )?;
            Ok(Tracking::Wired(TrackTransactionResponse {
                wtid,
                execution_time,
                coin_contribution,
                exchange_sig,
                exchange_pub,
            }))
        }
        None => Ok(Tracking::Pending(TrackTransactionAcceptedResponse {
            requirement_row: None,
            account_pub: None,
            kyc_ok: true,
            execution_time: row.wire_deadline,
        })),
    }
}

/// `GET /transfers/$WTID`.
pub async fn track_transfer(
    exchange: &Exchange,
    wtid: ShortHashCode,
) -> Result<TrackTransferResponse, ExchangeError> {
    let (wire, deposits) = exchange.store().wire_out(wtid).await?.ok_or_else(|| {
        refused(
            ErrorCode::ExchangeTransfersGetWtidNotFound,
            "no wire transfer with this identifier",
        )
    })?;
    // As the C exchange lists them: each coin's value after refunds, its fee capped at that.
    let listed: Vec<(Amount, Amount)> = deposits
        .iter()
        .map(|d| {
            let currency = *d.amount_with_fee.currency();
            let value = d
                .amount_with_fee
                .to_units()
                .saturating_sub(d.refunded.to_units());
            let fee = d.deposit_fee.to_units().min(value);
            (
                Amount::from_units(&currency, value).unwrap_or(d.amount_with_fee),
                Amount::from_units(&currency, fee).unwrap_or(d.deposit_fee),
            )
        })
        .collect();
    // Signed as sent: `t_s` carries whole seconds (a merchant recomputes the details' hash from
    // the answer).
    let execution_time = wire.execution_date.round_down_to_secs();
    let details: Vec<WireDepositDetail> = deposits
        .iter()
        .zip(&listed)
        .map(|(d, (value, fee))| WireDepositDetail {
            h_contract_terms: d.h_contract_terms,
            execution_time,
            coin_pub: d.coin_pub,
            deposit_value: *value,
            deposit_fee: *fee,
        })
        .collect();
    let (exchange_pub, exchange_sig) = sign(
        exchange,
        &WireDepositConfirmation {
            total: wire.amount,
            wire_fee: wire.wire_fee,
            merchant_pub: wire.merchant_pub,
            h_payto: wire.h_payto,
            h_details: WireDepositConfirmation::hash_details(details.iter()),
        },
    )?;
    Ok(TrackTransferResponse {
        total: wire.amount,
        wire_fee: wire.wire_fee,
        merchant_pub: wire.merchant_pub,
        h_payto: wire.h_payto,
        execution_time,
        deposits: deposits
            .into_iter()
            .zip(listed)
            .map(|(d, (value, fee))| TrackTransferDetail {
                h_contract_terms: d.h_contract_terms,
                coin_pub: d.coin_pub,
                deposit_value: value,
                deposit_fee: fee,
                refund_total: (!d.refunded.is_zero()).then_some(d.refunded),
            })
            .collect(),
        exchange_sig,
        exchange_pub,
    })
}
