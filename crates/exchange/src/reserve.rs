//! Reserves as wallets see them (docs.taler.net core/api-exchange `GET /reserves/$RESERVE_PUB`
//! and `…/history`): the balance with long polling on the store's notifier (a wallet waits for
//! its wire transfer to arrive), and the history behind the reserve's signature.

use std::time::Duration;

use cardcash_api::exchange::{ReserveHistoryEntry, ReserveHistoryResponse, ReserveSummaryResponse};
use cardcash_crypto::purpose::ReserveHistoryRequest;
use cardcash_util::{EddsaPublicKey, EddsaSignature, ErrorCode};

use crate::db::{self, ReserveRow, TOPIC_RESERVE, reserve_key};
use crate::error::ExchangeError;
use crate::service::Exchange;

fn unknown() -> ExchangeError {
    ExchangeError::refused(
        ErrorCode::ExchangeGenericReserveUnknown,
        "no such reserve (yet): its wire transfer has not arrived",
    )
}

/// `GET /reserves/$RESERVE_PUB?timeout_ms=N`: answers as soon as the reserve exists (waiting
/// up to `timeout` for its first credit), 404 after that.
pub async fn summary(
    exchange: &Exchange,
    reserve_pub: EddsaPublicKey,
    timeout: Duration,
) -> Result<ReserveSummaryResponse, ExchangeError> {
    let store = exchange.store();
    let mut subscription = store
        .notifier()
        .subscribe(TOPIC_RESERVE, &reserve_key(&reserve_pub));
    let found: Option<ReserveRow> = cardcash_http::wait_for_change(
        timeout,
        &mut subscription,
        || store.reserve(reserve_pub),
        Option::is_some,
        |s, d| Box::pin(s.wait(d)),
    )
    .await?;
    let reserve = found.ok_or_else(unknown)?;
    Ok(ReserveSummaryResponse {
        balance: reserve.balance,
        last_origin: None,
    })
}

/// `GET /reserves/$RESERVE_PUB/history?start=N` with the reserve's signature over `start`.
/// Returns the entries after offset `start` (empty: the caller answers 204) and the offset of
/// the last entry.
pub async fn history(
    exchange: &Exchange,
    reserve_pub: EddsaPublicKey,
    start: u64,
    signature: EddsaSignature,
) -> Result<(ReserveHistoryResponse, u64), ExchangeError> {
    cardcash_crypto::verify(
        &reserve_pub,
        &signature,
        &ReserveHistoryRequest { start_off: start },
    )
    .map_err(|_| {
        ExchangeError::refused(
            ErrorCode::ExchangeReservesHistoryBadSignature,
            "the reserve's signature over the history request is invalid",
        )
    })?;
    let store = exchange.store();
    let reserve = store.reserve(reserve_pub).await?.ok_or_else(unknown)?;
    let entries = store.reserve_history(reserve_pub).await?;
    let total = u64::try_from(entries.len()).unwrap_or(u64::MAX);
    let skip = usize::try_from(start).unwrap_or(usize::MAX);
    let mut history = Vec::new();
    for entry in entries.into_iter().skip(skip) {
        history.push(match entry {
            db::ReserveHistoryEntry::Credit {
                amount,
                debit_payto,
                wire_reference,
                execution_date,
            } => ReserveHistoryEntry::Credit {
                amount,
                timestamp: execution_date,
                sender_account_url: debit_payto.parse().map_err(|e| {
                    ExchangeError::Internal(format!("stored payto {debit_payto:?}: {e}"))
                })?,
                wire_reference,
            },
            db::ReserveHistoryEntry::Withdraw {
                amount_with_fee,
                withdraw_fee,
                h_denom_pub,
                h_blind_ev,
                reserve_sig,
            } => ReserveHistoryEntry::Withdraw {
                amount: amount_with_fee,
                reserve_sig,
                h_coin_envelope: h_blind_ev,
                h_denom_pub,
                withdraw_fee,
            },
            db::ReserveHistoryEntry::Closing {
                amount,
                closing_fee,
                execution_date,
                receiver_payto,
                wtid,
            } => closing_entry(
                exchange,
                reserve_pub,
                amount,
                closing_fee,
                execution_date,
                &receiver_payto,
                wtid,
            )?,
            db::ReserveHistoryEntry::Recoup {
                amount,
                timestamp,
                coin_pub,
            } => {
                let (exchange_pub, exchange_sig) = crate::recoup::confirm_recoup(
                    exchange,
                    timestamp,
                    amount,
                    coin_pub,
                    reserve_pub,
                )?;
                ReserveHistoryEntry::Recoup {
                    amount,
                    exchange_pub,
                    exchange_sig,
                    timestamp,
                    coin_pub,
                }
            }
        });
    }
    Ok((
        ReserveHistoryResponse {
            balance: reserve.balance,
            history,
        },
        total,
    ))
}

/// A CLOSING entry as the C exchange v23 shows it: signed (purpose 1040) by the current online
/// signing key over its date, the amount taken from the reserve, the closing fee, the reserve,
/// the hash of the receiver's payto URI exactly as sent, and the WTID.
fn closing_entry(
    exchange: &Exchange,
    reserve_pub: EddsaPublicKey,
    amount: cardcash_util::Amount,
    closing_fee: cardcash_util::Amount,
    timestamp: cardcash_util::Timestamp,
    receiver_payto: &str,
    wtid: cardcash_util::ShortHashCode,
) -> Result<ReserveHistoryEntry, ExchangeError> {
    let receiver: cardcash_util::PaytoUri = receiver_payto
        .parse()
        .map_err(|e| ExchangeError::Internal(format!("stored payto {receiver_payto:?}: {e}")))?;
    let message = cardcash_crypto::purpose::ReserveClosed {
        timestamp,
        closing_amount: amount,
        closing_fee,
        reserve_pub,
        h_payto: cardcash_crypto::wire::h_payto(&receiver.to_string()),
        wtid: *wtid.as_bytes(),
    };
    let exchange_pub = exchange
        .keys()
        .signing_key
        .as_ref()
        .map(|k| k.exchange_pub)
        .ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeGenericKeysMissing,
                "no online signing key is signed by the master key",
            )
        })?;
    let exchange_sig = exchange
        .keystore()
        .sign_with(&exchange_pub, &message)
        .ok_or_else(|| {
            ExchangeError::Internal("the signing key's private key is missing".into())
        })?;
    Ok(ReserveHistoryEntry::Closing {
        amount,
        receiver_account_details: receiver,
        wtid,
        exchange_pub,
        exchange_sig,
        timestamp,
        closing_fee,
    })
}
