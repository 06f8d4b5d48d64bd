//! Purchases (payments to merchants) and their refunds in the wallet's database. Every state
//! change is one write transaction conditional on the state it leaves; the coins of a payment
//! are marked spent in the transaction that records the payment's coin selection and signed
//! deposit permissions, before `/pay` leaves.

use std::str::FromStr;

use cardcash_crypto::EddsaPrivateKey;
use cardcash_store::StoreError;
use cardcash_store::columns::{amount_to_columns, sqlite_timestamp};
use cardcash_store::rusqlite::{self, params};
use cardcash_store::{query_all, query_opt};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode, Timestamp,
};

use super::{WalletStore, amount, blob, corrupt, text};

text_enum! {
    /// Where a purchase is (wallet-core's payment states, simplified).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PurchaseState ("purchase state") {
        /// The nonce is stored; the claim is (re)sent.
        Claiming = "claiming",
        /// The contract is claimed and verified; the user has not confirmed yet.
        Proposed = "proposed",
        /// Confirmed: the coins are marked spent and the signed payment stored; `/pay` is
        /// (re)sent.
        Paying = "paying",
        /// The merchant confirmed the payment (its signature verified).
        Done = "done",
        /// The same fulfillment URL was paid before: the earlier payment was shown instead.
        Repurchase = "repurchase",
        /// The payment was given up; the coins were refunded through `/abort`.
        Aborted = "aborted",
    }
}

/// The claimed contract of a purchase.
#[derive(Debug, Clone)]
pub struct ClaimedContract {
    /// The contract terms exactly as received.
    pub contract_json: String,
    pub h_contract: HashCode,
    pub merchant_sig: EddsaSignature,
    pub merchant_pub: EddsaPublicKey,
    pub amount: Amount,
    pub summary: String,
    pub fulfillment_url: Option<String>,
}

/// One purchase.
#[derive(Debug, Clone)]
pub struct PurchaseRow {
    pub proposal_id: String,
    pub merchant_base_url: BaseUrl,
    pub order_id: String,
    pub claim_token: Option<String>,
    pub session_id: String,
    pub nonce_priv: EddsaPrivateKey,
    pub state: PurchaseState,
    /// Set once claimed.
    pub contract: Option<ClaimedContract>,
    pub pay_sig: Option<EddsaSignature>,
    pub repurchase_of: Option<String>,
    pub created: Timestamp,
    pub paid: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// One coin of a payment.
#[derive(Debug, Clone)]
pub struct PurchaseCoinRow {
    pub index: u32,
    pub coin_pub: EddsaPublicKey,
    /// What the coin pays, deposit fee included.
    pub contribution: Amount,
    pub deposit_fee: Amount,
    /// The coin's signature over the deposit permission (1201).
    pub coin_sig: EddsaSignature,
}

/// A refund of one coin of a purchase, executed by the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRefundRow {
    pub coin_pub: EddsaPublicKey,
    pub rtransaction_id: u64,
    pub amount: Amount,
    /// What the exchange keeps: the coin got `amount - fee` back.
    pub fee: Amount,
    pub execution_time: Timestamp,
    pub created: Timestamp,
}

const PURCHASE_COLUMNS: &str = "proposal_id, merchant_base_url, order_id, claim_token, \
    session_id, nonce_priv, state, contract_json, h_contract, merchant_sig, merchant_pub, \
    currency, amount_val, amount_frac, summary, fulfillment_url, pay_sig, repurchase_of, created, \
    paid, last_error";

fn opt_time(row: &rusqlite::Row<'_>, idx: usize) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = row.get(idx)?;
    t.map(Timestamp::from_sql_micros)
        .transpose()
        .map_err(|_| corrupt("timestamp"))
}

fn purchase_row(row: &rusqlite::Row<'_>) -> Result<PurchaseRow, StoreError> {
    let contract_json: Option<String> = row.get(7)?;
    let contract = match contract_json {
        None => None,
        Some(contract_json) => {
            let currency: Currency = text(row, 11, "currency")?;
            Some(ClaimedContract {
                contract_json,
                h_contract: HashCode::from_bytes(blob(row, 8, "contract hash")?),
                merchant_sig: EddsaSignature::from_bytes(blob(row, 9, "merchant signature")?),
                merchant_pub: EddsaPublicKey::from_bytes(blob(row, 10, "merchant key")?),
                amount: amount(row, 12, &currency)?,
                summary: row.get::<_, Option<String>>(14)?.unwrap_or_default(),
                fulfillment_url: row.get(15)?,
            })
        }
    };
    let pay_sig: Option<Vec<u8>> = row.get(16)?;
    Ok(PurchaseRow {
        proposal_id: row.get(0)?,
        merchant_base_url: text(row, 1, "merchant base URL")?,
        order_id: row.get(2)?,
        claim_token: row.get(3)?,
        session_id: row.get(4)?,
        nonce_priv: EddsaPrivateKey::from_bytes(&blob(row, 5, "nonce")?),
        state: text(row, 6, "purchase state")?,
        contract,
        pay_sig: pay_sig
            .map(|b| {
                <[u8; 64]>::try_from(b.as_slice())
                    .map(EddsaSignature::from_bytes)
                    .map_err(|_| corrupt("payment signature"))
            })
            .transpose()?,
        repurchase_of: row.get(17)?,
        created: sqlite_timestamp(row, 18)?,
        paid: opt_time(row, 19)?,
        last_error: row.get(20)?,
    })
}

impl WalletStore {
    /// Records a new purchase with its claim nonce (before the claim leaves). When the wallet
    /// has the order already, nothing is stored and the existing purchase is returned.
    pub async fn create_purchase(&self, p: PurchaseRow) -> Result<PurchaseRow, StoreError> {
        let (base, order) = (p.merchant_base_url.to_string(), p.order_id.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO purchases (proposal_id, merchant_base_url, order_id, claim_token,
                       session_id, nonce_priv, state, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'claiming', ?7)
                     ON CONFLICT (merchant_base_url, order_id) DO NOTHING",
                    params![
                        p.proposal_id,
                        base,
                        order,
                        p.claim_token,
                        p.session_id,
                        p.nonce_priv.to_bytes().to_vec(),
                        p.created.to_sql_micros(),
                    ],
                )?;
                let row = query_opt(
                    tx,
                    &format!(
                        "SELECT {PURCHASE_COLUMNS} FROM purchases
                         WHERE merchant_base_url = ?1 AND order_id = ?2"
                    ),
                    params![base, order],
                    purchase_row,
                )?;
                row.ok_or_else(|| corrupt("purchase vanished"))
            })
            .await
    }

    /// Claiming → proposed with the verified contract. `false` when it was not claiming.
    pub async fn claimed(&self, proposal_id: &str, c: ClaimedContract) -> Result<bool, StoreError> {
        let sql = "UPDATE purchases SET state = 'proposed', contract_json = ?2, h_contract = ?3,
                     merchant_sig = ?4, merchant_pub = ?5, currency = ?6, amount_val = ?7,
                     amount_frac = ?8, summary = ?9, fulfillment_url = ?10, last_error = NULL
                   WHERE proposal_id = ?1 AND state = 'claiming'";
        let (v, f) = amount_to_columns(&c.amount);
        let params = (
            proposal_id.to_owned(),
            c.contract_json,
            c.h_contract.to_vec(),
            c.merchant_sig.to_vec(),
            c.merchant_pub.to_vec(),
            c.amount.currency().to_string(),
            v,
            f,
            c.summary,
            c.fulfillment_url,
        );
        Ok(self.write_one(sql, params).await? == 1)
    }

    /// Proposed → paying: the coins are marked spent (each must be fresh with all its value
    /// left; what it does not contribute stays as its remainder) and the signed payment is
    /// stored — one transaction, before `/pay` leaves. `false` when a coin is no longer fresh
    /// (the caller chooses again) or the purchase is not proposed.
    pub async fn start_paying(
        &self,
        proposal_id: &str,
        session_id: String,
        coins: Vec<PurchaseCoinRow>,
    ) -> Result<bool, StoreError> {
        let id = proposal_id.to_owned();
        self.db
            .write(move |tx| {
                let moved = tx.execute(
                    "UPDATE purchases SET state = 'paying', session_id = ?2, last_error = NULL
                     WHERE proposal_id = ?1 AND state = 'proposed'",
                    params![id, session_id],
                )?;
                if moved == 0 {
                    return Ok(false);
                }
                for c in &coins {
                    let value = query_opt(
                        tx,
                        "SELECT currency, value_val, value_frac FROM coins
                         WHERE coin_pub = ?1 AND status = 'fresh'
                           AND remaining_val = value_val AND remaining_frac = value_frac",
                        [c.coin_pub.to_vec()],
                        |r| {
                            let currency: Currency = text(r, 0, "currency")?;
                            amount(r, 1, &currency)
                        },
                    )?;
                    let Some(value) = value else {
                        // Another payment or refresh took it: nothing of this is kept.
                        return Err(StoreError::Corrupt(format!("{COIN_TAKEN}{}", c.coin_pub)));
                    };
                    let left = value
                        .checked_sub(&c.contribution)
                        .map_err(|_| corrupt("a contribution above its coin's value"))?;
                    let (lv, lf) = amount_to_columns(&left);
                    tx.execute(
                        "UPDATE coins SET status = 'spent', remaining_val = ?2, remaining_frac = ?3
                         WHERE coin_pub = ?1",
                        params![c.coin_pub.to_vec(), lv, lf],
                    )?;
                    let (cv, cf) = amount_to_columns(&c.contribution);
                    let (fv, ff) = amount_to_columns(&c.deposit_fee);
                    tx.execute(
                        "INSERT INTO purchase_coins (proposal_id, coin_index, coin_pub,
                           contribution_val, contribution_frac, deposit_fee_val, deposit_fee_frac,
                           coin_sig)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            id,
                            c.index,
                            c.coin_pub.to_vec(),
                            cv,
                            cf,
                            fv,
                            ff,
                            c.coin_sig.to_vec()
                        ],
                    )?;
                }
                Ok(true)
            })
            .await
            .or_else(|e| match &e {
                StoreError::Corrupt(why) if why.starts_with(COIN_TAKEN) => Ok(false),
                _ => Err(e),
            })
    }

    /// Paying → done with the merchant's confirmation. `false` when it was not paying.
    pub async fn paid(
        &self,
        proposal_id: &str,
        pay_sig: EddsaSignature,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE purchases SET state = 'done', pay_sig = ?2, paid = ?3, last_error = NULL
                   WHERE proposal_id = ?1 AND state = 'paying'";
        let params = (
            proposal_id.to_owned(),
            pay_sig.to_vec(),
            Timestamp::now().to_sql_micros(),
        );
        Ok(self.write_one(sql, params).await? == 1)
    }

    /// Proposed (or claiming) → repurchase of `earlier`, under `session_id`.
    pub async fn mark_repurchase(
        &self,
        proposal_id: &str,
        earlier: &str,
        session_id: String,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE purchases SET state = 'repurchase', repurchase_of = ?2,
                     session_id = ?3, last_error = NULL
                   WHERE proposal_id = ?1 AND state IN ('claiming', 'proposed')";
        let params = (proposal_id.to_owned(), earlier.to_owned(), session_id);
        Ok(self.write_one(sql, params).await? == 1)
    }

    /// A done purchase now belongs to session `session_id` (after `/paid`).
    pub async fn set_purchase_session(
        &self,
        proposal_id: &str,
        session_id: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE purchases SET session_id = ?2 WHERE proposal_id = ?1";
        self.write_one(sql, (proposal_id.to_owned(), session_id))
            .await?;
        Ok(())
    }

    /// Paying → aborted: every refunded coin gets `credit` back onto its remainder — one
    /// transaction. `false` when it was not paying.
    pub async fn aborted(
        &self,
        proposal_id: &str,
        credits: Vec<(EddsaPublicKey, Amount)>,
    ) -> Result<bool, StoreError> {
        let id = proposal_id.to_owned();
        self.db
            .write(move |tx| {
                let moved = tx.execute(
                    "UPDATE purchases SET state = 'aborted', last_error = NULL
                     WHERE proposal_id = ?1 AND state = 'paying'",
                    [&id],
                )?;
                if moved == 0 {
                    return Ok(false);
                }
                for (coin, credit) in &credits {
                    credit_coin(tx, coin, credit)?;
                }
                Ok(true)
            })
            .await
    }

    /// Records a refund the exchange executed and credits the coin with `amount - fee`, in
    /// one transaction; a refund recorded before is not credited twice. Returns whether it
    /// was new.
    pub async fn record_refund(
        &self,
        proposal_id: &str,
        r: PurchaseRefundRow,
    ) -> Result<bool, StoreError> {
        let id = proposal_id.to_owned();
        self.db
            .write(move |tx| {
                let (av, af) = amount_to_columns(&r.amount);
                let (fv, ff) = amount_to_columns(&r.fee);
                let rtid = i64::try_from(r.rtransaction_id)
                    .map_err(|_| corrupt("refund transaction id above 2^63"))?;
                let inserted = tx.execute(
                    "INSERT INTO purchase_refunds (proposal_id, coin_pub, rtransaction_id,
                       amount_val, amount_frac, fee_val, fee_frac, execution_time, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT DO NOTHING",
                    params![
                        id,
                        r.coin_pub.to_vec(),
                        rtid,
                        av,
                        af,
                        fv,
                        ff,
                        r.execution_time.to_sql_micros(),
                        r.created.to_sql_micros(),
                    ],
                )?;
                if inserted == 0 {
                    return Ok(false);
                }
                let credit = r
                    .amount
                    .checked_sub(&r.fee)
                    .map_err(|_| corrupt("a refund below its fee"))?;
                credit_coin(tx, &r.coin_pub, &credit)?;
                Ok(true)
            })
            .await
    }

    /// Remembers why the last attempt of a purchase failed.
    pub async fn record_purchase_error(
        &self,
        proposal_id: &str,
        error: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE purchases SET last_error = ?2 WHERE proposal_id = ?1";
        self.write_one(sql, (proposal_id.to_owned(), error)).await?;
        Ok(())
    }

    /// One purchase.
    pub fn purchase(&self, proposal_id: &str) -> Result<Option<PurchaseRow>, StoreError> {
        self.db.read(|c| {
            query_opt(
                c,
                &format!("SELECT {PURCHASE_COLUMNS} FROM purchases WHERE proposal_id = ?1"),
                [proposal_id],
                purchase_row,
            )
        })
    }

    /// The purchase of an order, if the wallet has one.
    pub fn purchase_by_order(
        &self,
        merchant_base_url: &BaseUrl,
        order_id: &str,
    ) -> Result<Option<PurchaseRow>, StoreError> {
        let base = merchant_base_url.to_string();
        self.db.read(|c| {
            query_opt(
                c,
                &format!(
                    "SELECT {PURCHASE_COLUMNS} FROM purchases
                     WHERE merchant_base_url = ?1 AND order_id = ?2"
                ),
                params![base, order_id],
                purchase_row,
            )
        })
    }

    /// A paid purchase at the same merchant with the same fulfillment URL, of which no refund
    /// was picked up: a refunded purchase is undone (design document 007 shows the refunded
    /// page, and the merchant counts it as a repurchase only when asked to), so the resource
    /// is paid again. For repurchase detection; the latest first.
    pub fn paid_purchase_by_fulfillment(
        &self,
        merchant_base_url: &BaseUrl,
        fulfillment_url: &str,
    ) -> Result<Option<PurchaseRow>, StoreError> {
        let base = merchant_base_url.to_string();
        self.db.read(|c| {
            query_opt(
                c,
                &format!(
                    "SELECT {PURCHASE_COLUMNS} FROM purchases
                     WHERE merchant_base_url = ?1 AND fulfillment_url = ?2 AND state = 'done'
                       AND NOT EXISTS (SELECT 1 FROM purchase_refunds r
                                       WHERE r.proposal_id = purchases.proposal_id)
                     ORDER BY paid DESC LIMIT 1"
                ),
                params![base, fulfillment_url],
                purchase_row,
            )
        })
    }

    /// Every purchase, oldest first.
    pub fn purchases(&self) -> Result<Vec<PurchaseRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                &format!("SELECT {PURCHASE_COLUMNS} FROM purchases ORDER BY created, proposal_id"),
                [],
                purchase_row,
            )
        })
    }

    /// The coins of a payment, by index.
    pub fn purchase_coins(&self, proposal_id: &str) -> Result<Vec<PurchaseCoinRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT p.coin_index, p.coin_pub, k.currency, p.contribution_val,
                   p.contribution_frac, p.deposit_fee_val, p.deposit_fee_frac, p.coin_sig
                 FROM purchase_coins p JOIN coins k USING (coin_pub)
                 WHERE p.proposal_id = ?1 ORDER BY p.coin_index",
                [proposal_id],
                |r| {
                    let currency: Currency = text(r, 2, "currency")?;
                    Ok(PurchaseCoinRow {
                        index: r.get(0)?,
                        coin_pub: EddsaPublicKey::from_bytes(blob(r, 1, "coin public key")?),
                        contribution: amount(r, 3, &currency)?,
                        deposit_fee: amount(r, 5, &currency)?,
                        coin_sig: EddsaSignature::from_bytes(blob(r, 7, "coin signature")?),
                    })
                },
            )
        })
    }

    /// The refunds of a purchase, oldest first.
    pub fn purchase_refunds(
        &self,
        proposal_id: &str,
        currency: &Currency,
    ) -> Result<Vec<PurchaseRefundRow>, StoreError> {
        let currency = *currency;
        self.db.read(|c| {
            query_all(
                c,
                "SELECT coin_pub, rtransaction_id, amount_val, amount_frac, fee_val, fee_frac,
                   execution_time, created
                 FROM purchase_refunds WHERE proposal_id = ?1
                 ORDER BY created, rtransaction_id, coin_pub",
                [proposal_id],
                |r| {
                    let rtid: i64 = r.get(1)?;
                    Ok(PurchaseRefundRow {
                        coin_pub: EddsaPublicKey::from_bytes(blob(r, 0, "coin public key")?),
                        rtransaction_id: u64::try_from(rtid)
                            .map_err(|_| corrupt("refund transaction id"))?,
                        amount: amount(r, 2, &currency)?,
                        fee: amount(r, 4, &currency)?,
                        execution_time: sqlite_timestamp(r, 6)?,
                        created: sqlite_timestamp(r, 7)?,
                    })
                },
            )
        })
    }
}

/// Marks an error of [`WalletStore::start_paying`] that only means "choose again".
const COIN_TAKEN: &str = "coin taken meanwhile: ";

/// Adds `credit` to what is left of a coin (a refund; the coin is refreshed afterwards).
fn credit_coin(
    tx: &rusqlite::Connection,
    coin: &EddsaPublicKey,
    credit: &Amount,
) -> Result<(), StoreError> {
    let remaining = query_opt(
        tx,
        "SELECT currency, remaining_val, remaining_frac FROM coins WHERE coin_pub = ?1",
        [coin.to_vec()],
        |r| {
            let currency: Currency = text(r, 0, "currency")?;
            amount(r, 1, &currency)
        },
    )?
    .ok_or_else(|| corrupt("a refunded coin the wallet does not have"))?;
    let left = remaining
        .checked_add(credit)
        .map_err(|_| corrupt("a coin's remainder overflows"))?;
    let (v, f) = amount_to_columns(&left);
    tx.execute(
        "UPDATE coins SET remaining_val = ?2, remaining_frac = ?3 WHERE coin_pub = ?1",
        params![coin.to_vec(), v, f],
    )?;
    Ok(())
}
