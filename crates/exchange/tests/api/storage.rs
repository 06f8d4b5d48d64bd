//! The storage's money rules, below HTTP, on both engines (`ExchangeStore` on a fresh database
//! per test): every incoming transfer credited once, reserves never overdrawn, withdrawals and
//! deposits idempotent, coins never spent twice (also by requests racing each other), the refund
//! rules, the aggregation, the key material's management outcomes, and after every scenario
//! an audit that balances. Keys and signatures are made-up bytes: nothing is verified at this
//! layer.

use std::sync::Arc;

use cardcash_exchange::db::{
    self, AuditSums, BounceRow, CoinHistoryEntry, DenominationRow, DepositOutcome, DueAggregate,
    ExchangeStore, GlobalFeeRow, IncomingTransfer, NewBatchDeposit, NewCoinDeposit, NewRefund,
    NewWireOut, NewWithdrawal, RefundOutcome, ReserveHistoryEntry, SignkeyRow, Stored,
    WireAccountRow, WireFeeRow, WithdrawOutcome,
};
use cardcash_exchange::keys::store::DenominationPublic;
use cardcash_testkit::{Engine, WAIT, engine_test};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp, WireSalt,
};

// ---------------------------------------------------------------- fixtures

const CUR: &str = "CHF";
const ACCOUNT: &str = "exchange-account-1";
const LIFETIME: RelativeTime = RelativeTime::from_secs(3600);

fn chf(text: &str) -> Amount {
    format!("{CUR}:{text}").parse().unwrap()
}

fn bytes<const N: usize>(tag: u8, n: u64) -> [u8; N] {
    let mut b = [tag; N];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b
}

fn key(tag: u8, n: u64) -> EddsaPublicKey {
    EddsaPublicKey::from_bytes(bytes(tag, n))
}

fn sig(tag: u8, n: u64) -> EddsaSignature {
    EddsaSignature::from_bytes(bytes(tag, n))
}

fn hash(tag: u8, n: u64) -> HashCode {
    HashCode::from_bytes(bytes(tag, n))
}

fn reserve(n: u64) -> EddsaPublicKey {
    key(b'r', n)
}

fn coin_pub(n: u64) -> EddsaPublicKey {
    key(b'c', n)
}

fn merchant(n: u64) -> EddsaPublicKey {
    key(b'm', n)
}

fn merchant_payto(n: u64) -> String {
    format!("payto://iban/CH93000000000000000{n:02}?receiver-name=Shop{n}")
}

/// A long time ago: deposits with this wire deadline are due.
const PAST: Timestamp = Timestamp::from_secs(1_000);

/// The store on a fresh database of `engine`, and one denomination of each value.
struct Fx {
    store: ExchangeStore,
    /// value 5, fees: withdraw 0.1, deposit 0.2, refund 0.05.
    five: DenominationRow,
    /// value 1, fees 0.
    one: DenominationRow,
}

impl Fx {
    async fn new(engine: Engine) -> Fx {
        let database = cardcash_testkit::database(engine, db::SERVICE, &db::SCHEMA).await;
        let store = ExchangeStore::new(database, Currency::new(CUR).unwrap());
        let five = insert_denom(&store, 5, "5", "0.1", "0.2", "0.05").await;
        let one = insert_denom(&store, 1, "1", "0", "0", "0").await;
        Fx { store, five, one }
    }

    /// Credits `amount` to reserve `n` (one transfer with gateway row `row`).
    async fn fund(&self, n: u64, row: u64, amount: &str) {
        let report = self
            .store
            .credit_reserves(
                ACCOUNT.into(),
                vec![transfer(row, amount, Ok(reserve(n)))],
                row,
                LIFETIME,
            )
            .await
            .unwrap();
        assert_eq!(report.credited, vec![reserve(n)]);
    }

    async fn balance(&self, n: u64) -> Amount {
        self.store
            .reserve(reserve(n))
            .await
            .unwrap()
            .unwrap()
            .balance
    }

    async fn remaining(&self, coin: u64) -> Amount {
        self.store
            .coin(coin_pub(coin))
            .await
            .unwrap()
            .unwrap()
            .remaining
    }

    /// The audit balances: no reserve and no coin off its history, and the sums' equations.
    async fn assert_balanced(&self) -> AuditSums {
        let sums = self.store.audit_sums().await.unwrap();
        assert!(sums.reserves_off_balance.is_empty(), "{sums:#?}");
        assert!(sums.coins_off_balance.is_empty(), "{sums:#?}");
        let u = |a: &Amount| a.to_units();
        assert_eq!(
            u(&sums.reserves_in),
            u(&sums.reserve_totals_in),
            "{sums:#?}"
        );
        assert_eq!(
            u(&sums.reserves_in),
            u(&sums.reserve_balances) + u(&sums.withdrawn_with_fee),
            "{sums:#?}"
        );
        assert_eq!(
            u(&sums.coin_remaining) + u(&sums.deposits_with_fee) + u(&sums.refresh.melted),
            u(&sums.coin_values) + u(&sums.refunds) - u(&sums.refund_fees),
            "{sums:#?}"
        );
        assert_eq!(
            u(&sums.wired) + u(&sums.wire_fees),
            u(&sums.aggregated_shares),
            "{sums:#?}"
        );
        assert!(sums.bounces_off_balance.is_empty(), "{sums:#?}");
        assert_eq!(
            u(&sums.bounced_in),
            u(&sums.bounced_returned) + u(&sums.bounce_fees) + u(&sums.bounces_pending),
            "{sums:#?}"
        );
        let report = cardcash_exchange::audit::check(sums.clone());
        assert!(report.is_clean(), "{:#?}", report.differences);
        sums
    }
}

async fn insert_denom(
    store: &ExchangeStore,
    n: u64,
    value: &str,
    fee_withdraw: &str,
    fee_deposit: &str,
    fee_refund: &str,
) -> DenominationRow {
    let row = denom_row(n, value, fee_withdraw, fee_deposit, fee_refund);
    assert_eq!(
        store.insert_denomination(row.clone()).await.unwrap(),
        Stored::Inserted
    );
    stored_denom(store, &row.h_denom_pub).await
}

async fn stored_denom(store: &ExchangeStore, h: &HashCode) -> DenominationRow {
    store
        .key_material()
        .await
        .unwrap()
        .denominations
        .into_iter()
        .find(|d| d.h_denom_pub == *h)
        .unwrap()
}

fn denom_row(
    n: u64,
    value: &str,
    fee_withdraw: &str,
    fee_deposit: &str,
    fee_refund: &str,
) -> DenominationRow {
    DenominationRow {
        serial: 0,
        h_denom_pub: hash(b'd', n),
        public: DenominationPublic::Cs(bytes(b'k', n)),
        section: format!("coin_chf_{n}"),
        value: chf(value),
        fee_withdraw: chf(fee_withdraw),
        fee_deposit: chf(fee_deposit),
        fee_refresh: chf("0.01"),
        fee_refund: chf(fee_refund),
        stamp_start: Timestamp::from_secs(100),
        stamp_expire_withdraw: Timestamp::from_secs(2_000_000_000),
        stamp_expire_deposit: Timestamp::from_secs(3_000_000_000),
        stamp_expire_legal: Timestamp::from_secs(4_000_000_000),
        master_sig: sig(b'M', n),
        revocation: None,
    }
}

fn transfer(row: u64, amount: &str, to: Result<EddsaPublicKey, String>) -> IncomingTransfer {
    IncomingTransfer {
        wire_reference: row,
        amount: chf(amount),
        debit_payto: format!("payto://iban/CH0{row}?receiver-name=Payer"),
        execution_date: Timestamp::from_secs(1_000 + row),
        reserve_pub: to,
    }
}

/// Planchet `n` of denomination `d` (its signature in storage form is made up from `n`).
fn planchet(d: &DenominationRow, n: u64) -> NewWithdrawal {
    NewWithdrawal {
        h_blind_ev: hash(b'p', n),
        denom_serial: d.serial,
        reserve_sig: sig(b'R', n),
        amount_with_fee: d.value.checked_add(&d.fee_withdraw).unwrap(),
        denom_sig: bytes::<40>(b's', n).to_vec(),
        cs_nonce: None,
    }
}

/// Coin `n` of denomination `d` contributing `amount` (its deposit signature made up from `sig_n`).
fn coin(d: &DenominationRow, n: u64, amount: &str, sig_n: u64) -> NewCoinDeposit {
    NewCoinDeposit {
        coin_pub: coin_pub(n),
        denom_serial: d.serial,
        denom_sig: bytes::<48>(b'u', n).to_vec(),
        coin_value: d.value,
        coin_sig: sig(b'C', sig_n),
        amount_with_fee: chf(amount),
        deposit_fee: d.fee_deposit,
    }
}

/// A batch deposit of `coins` by merchant `m` for contract `contract`, due at `wire_deadline`.
fn batch(
    m: u64,
    contract: u64,
    coins: Vec<NewCoinDeposit>,
    wire_deadline: Timestamp,
) -> NewBatchDeposit {
    let total: u128 = coins
        .iter()
        .map(|c| c.amount_with_fee.to_units() - c.deposit_fee.to_units())
        .sum();
    // The hash of the coin signatures: any value that differs with the signatures does here.
    let first = coins.first().map_or(0, |c| {
        u64::from_be_bytes(c.coin_sig.as_bytes()[..8].try_into().unwrap())
    });
    NewBatchDeposit {
        merchant_pub: merchant(m),
        h_contract_terms: hash(b'h', contract),
        merchant_payto: merchant_payto(m),
        h_payto: ShortHashCode::from_bytes(bytes(b'w', m)),
        wire_salt: WireSalt::from_bytes(bytes(b'S', m)),
        wallet_timestamp: Timestamp::from_secs(500),
        exchange_timestamp: db::now(),
        refund_deadline: wire_deadline,
        wire_deadline,
        wallet_data_hash: None,
        h_coin_sigs: hash(b'H', first * 1000 + coins.len() as u64),
        total_without_fee: Amount::from_units(&Currency::new(CUR).unwrap(), total).unwrap(),
        coins,
    }
}

fn refund(coin: u64, m: u64, contract: u64, rtid: u64, amount: &str) -> NewRefund {
    NewRefund {
        coin_pub: coin_pub(coin),
        merchant_pub: merchant(m),
        h_contract_terms: hash(b'h', contract),
        rtransaction_id: rtid,
        amount: chf(amount),
        merchant_sig: sig(b'F', rtid),
    }
}

fn wire_out(aggregate: DueAggregate, n: u64, fee: &str) -> NewWireOut {
    NewWireOut {
        aggregate,
        wtid: ShortHashCode::from_bytes(bytes(b't', n)),
        request_uid: hash(b'q', n),
        account_section: ACCOUNT.into(),
        wire_fee: chf(fee),
        now: db::now(),
    }
}

// ---------------------------------------------------------------- reserves

engine_test!(
    /// A page of transfers credits each once: the same page again and an overlapping page
    /// change nothing for the rows seen, bounced subjects are counted once, progress never
    /// goes back, and the credited reserve's waiters are woken.
    async fn each_transfer_is_credited_exactly_once(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let mut woken = s
            .notifier()
            .subscribe(db::TOPIC_RESERVE, &db::reserve_key(&reserve(1)));
        let page = vec![
            transfer(1, "10", Ok(reserve(1))),
            transfer(2, "2.5", Ok(reserve(2))),
            transfer(3, "7", Err("not a reserve key".into())),
            transfer(4, "0.5", Ok(reserve(1))),
        ];
        let report = s
            .credit_reserves(ACCOUNT.into(), page.clone(), 4, LIFETIME)
            .await
            .unwrap();
        assert_eq!(report.credited, vec![reserve(1), reserve(2), reserve(1)]);
        assert_eq!((report.bounced, report.duplicates), (1, 0));
        assert!(
            woken.wait(WAIT).await,
            "the credited reserve's waiters are woken"
        );
        assert_eq!(fx.balance(1).await, chf("10.5"));
        assert_eq!(fx.balance(2).await, chf("2.5"));

        // The same page again (a crash after the commit, before the gateway saw the progress).
        let again = s
            .credit_reserves(ACCOUNT.into(), page, 4, LIFETIME)
            .await
            .unwrap();
        assert!(again.credited.is_empty());
        assert_eq!((again.bounced, again.duplicates), (0, 4));
        // An overlapping page: rows 3 and 4 were seen, 5 (bounced) and 6 are new; a progress
        // behind the stored one does not move it back.
        let overlap = vec![
            transfer(3, "7", Err("not a reserve key".into())),
            transfer(4, "0.5", Ok(reserve(1))),
            transfer(5, "1", Err("hello".into())),
            transfer(6, "0.25", Ok(reserve(2))),
            transfer(6, "0.25", Ok(reserve(2))),
        ];
        let report = s
            .credit_reserves(ACCOUNT.into(), overlap, 2, LIFETIME)
            .await
            .unwrap();
        assert_eq!(report.credited, vec![reserve(2)]);
        assert_eq!((report.bounced, report.duplicates), (1, 3));
        assert_eq!(s.wirewatch_progress(ACCOUNT.into()).await.unwrap(), Some(4));
        assert_eq!(s.wirewatch_progress("other".into()).await.unwrap(), None);
        // The same gateway row of another account is another transfer.
        let other = s
            .credit_reserves(
                "other".into(),
                vec![transfer(1, "1", Ok(reserve(1)))],
                1,
                LIFETIME,
            )
            .await
            .unwrap();
        assert_eq!(other.credited, vec![reserve(1)]);

        let r1 = s.reserve(reserve(1)).await.unwrap().unwrap();
        assert_eq!((r1.balance, r1.total_in), (chf("11.5"), chf("11.5")));
        assert!(r1.expiration > r1.created);
        assert_eq!(fx.balance(2).await, chf("2.75"));
        assert_eq!(s.reserve(reserve(3)).await.unwrap(), None);
        let history = s.reserve_history(reserve(1)).await.unwrap();
        assert_eq!(
            history,
            vec![
                ReserveHistoryEntry::Credit {
                    amount: chf("10"),
                    debit_payto: transfer(1, "10", Ok(reserve(1))).debit_payto,
                    wire_reference: 1,
                    execution_date: Timestamp::from_secs(1_001),
                },
                ReserveHistoryEntry::Credit {
                    amount: chf("0.5"),
                    debit_payto: transfer(4, "0.5", Ok(reserve(1))).debit_payto,
                    wire_reference: 4,
                    execution_date: Timestamp::from_secs(1_004),
                },
                ReserveHistoryEntry::Credit {
                    amount: chf("1"),
                    debit_payto: transfer(1, "1", Ok(reserve(1))).debit_payto,
                    wire_reference: 1,
                    execution_date: Timestamp::from_secs(1_001),
                },
            ]
        );
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.reserves_in, chf("14.25"));
        assert_eq!(sums.bounced_in, chf("8"));
        assert_eq!(sums.bounces_pending, chf("8"));
    }
);

// ---------------------------------------------------------------- bounces

/// The bounce of gateway row `row` of [`ACCOUNT`].
async fn bounce_of(s: &ExchangeStore, row: u64) -> BounceRow {
    s.bounce(ACCOUNT.into(), row).await.unwrap().unwrap()
}

engine_test!(
    /// A transfer that funds no reserve is recorded with the request of its transfer back
    /// fixed (request_uid and WTID from account and gateway row), and the bounce worker is
    /// woken; what is kept and sent back is decided once (a second decision, e.g. with another
    /// fee or base URL, changes nothing); it stays pending until the gateway accepted it, with
    /// a backoff per failed attempt; a tiny one is kept whole as the closing fee. The audit
    /// balances at every step: bounced in = sent back + fees kept + pending.
    async fn a_bounce_is_decided_once_and_sent_back_once(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let mut woken = s.notifier().subscribe_topic(db::TOPIC_BOUNCE);
        let page = vec![
            transfer(1, "7", Err("KYC key".into())),
            transfer(2, "1", Ok(reserve(1))),
            transfer(3, "0.004", Err("WAD from somewhere".into())),
        ];
        let report = s
            .credit_reserves(ACCOUNT.into(), page.clone(), 3, LIFETIME)
            .await
            .unwrap();
        assert_eq!(report.bounced, 2);
        assert!(woken.wait(WAIT).await, "the bounce worker is woken");
        // A replayed page records nothing again.
        let again = s
            .credit_reserves(ACCOUNT.into(), page, 3, LIFETIME)
            .await
            .unwrap();
        assert_eq!((again.bounced, again.duplicates), (0, 3));

        let big = bounce_of(s, 1).await;
        let uid = db::bounce_request_uid(ACCOUNT, 1);
        assert_eq!(big.request_uid, uid);
        assert_eq!(big.wtid, db::bounce_wtid(&uid));
        assert_ne!(uid, db::bounce_request_uid("other", 1));
        assert_ne!(uid, db::bounce_request_uid(ACCOUNT, 3));
        assert_eq!(
            (big.amount, big.subject.as_str(), big.debit_payto.as_str()),
            (chf("7"), "KYC key", "payto://iban/CH01?receiver-name=Payer")
        );
        assert_eq!(
            (big.decision.clone(), big.done, big.failures),
            (None, false, 0)
        );
        let tiny = bounce_of(s, 3).await;
        assert_eq!(s.bounce(ACCOUNT.into(), 2).await.unwrap(), None);
        let pending = s.pending_bounces(db::now(), 10).await.unwrap();
        assert_eq!(pending, vec![big.clone(), tiny.clone()]);
        let sums = fx.assert_balanced().await;
        assert_eq!(
            (sums.bounced_in, sums.bounces_pending),
            (chf("7.004"), chf("7.004"))
        );

        // Decided once: 7 − 0.01 goes back; a second decision changes nothing.
        let url = "https://exchange.example/".to_owned();
        let decided = s
            .decide_bounce(big.serial, chf("0.01"), url.clone())
            .await
            .unwrap()
            .unwrap();
        let decision = db::BounceDecision {
            closing_fee: chf("0.01"),
            returned: chf("6.99"),
            exchange_base_url: url.clone(),
        };
        assert_eq!(decided.decision, Some(decision.clone()));
        assert!(!decided.done);
        assert_eq!(
            s.decide_bounce(big.serial, chf("0.5"), "https://other.example/".into())
                .await
                .unwrap(),
            None
        );
        assert_eq!(bounce_of(s, 1).await, decided);
        // The tiny one: less than the fee is left, so it is kept whole and done.
        let kept = s
            .decide_bounce(tiny.serial, chf("0.01"), url.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(kept.done);
        assert_eq!(
            kept.decision.as_ref().map(|d| (d.closing_fee, d.returned)),
            Some((chf("0.004"), chf("0")))
        );
        assert_eq!(kept.gateway_row_id, None);
        let sums = fx.assert_balanced().await;
        assert_eq!(
            (
                sums.bounce_fees,
                sums.bounces_pending,
                sums.bounced_returned
            ),
            (chf("0.014"), chf("6.99"), chf("0"))
        );

        // A failed attempt: not due until its next attempt.
        let later = db::now().saturating_add(RelativeTime::from_secs(60));
        s.bounce_failed(big.serial, later).await.unwrap();
        assert!(s.pending_bounces(db::now(), 10).await.unwrap().is_empty());
        let due = s.pending_bounces(later, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].failures, due[0].decision.clone()),
            (1, Some(decision))
        );

        // Accepted by the gateway: done, never pending again; a late second answer (another
        // worker's) does not change the recorded row.
        s.bounce_done(big.serial, 42).await.unwrap();
        s.bounce_done(big.serial, 43).await.unwrap();
        let sent = bounce_of(s, 1).await;
        assert_eq!((sent.gateway_row_id, sent.done), (Some(42), true));
        assert!(s.pending_bounces(later, 10).await.unwrap().is_empty());
        s.bounce_failed(big.serial, later).await.unwrap();
        assert_eq!(bounce_of(s, 1).await.failures, 1);
        let sums = fx.assert_balanced().await;
        assert_eq!(
            (
                sums.bounced_in,
                sums.bounced_returned,
                sums.bounce_fees,
                sums.bounces_pending
            ),
            (chf("7.004"), chf("6.99"), chf("0.014"), chf("0"))
        );
        fx.store.close().await;
    }
);

engine_test!(
    /// Two workers deciding the same bounce at once (two exchange processes on one database):
    /// exactly one decision is recorded, and both see the same request afterwards.
    async fn concurrent_decisions_record_one(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let page: Vec<_> = (1..=8)
            .map(|row| transfer(row, "3", Err(format!("KYC {row}"))))
            .collect();
        s.credit_reserves(ACCOUNT.into(), page, 8, LIFETIME)
            .await
            .unwrap();
        let rows = s.pending_bounces(db::now(), 10).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for row in &rows {
            for (fee, url) in [
                ("0.01", "https://a.example/"),
                ("0.02", "https://b.example/"),
            ] {
                let (s, serial) = (s.clone(), row.serial);
                tasks.spawn(async move {
                    s.decide_bounce(serial, chf(fee), url.into())
                        .await
                        .unwrap()
                        .map(|r| (serial, r.decision))
                });
            }
        }
        let mut decided = Vec::new();
        while let Some(r) = tasks.join_next().await {
            decided.extend(r.unwrap());
        }
        decided.sort_by_key(|(serial, _)| *serial);
        assert_eq!(
            decided.len(),
            rows.len(),
            "one decision per bounce: {decided:?}"
        );
        for (serial, decision) in decided {
            let row = rows.iter().find(|r| r.serial == serial).unwrap();
            assert_eq!(bounce_of(s, row.wire_reference).await.decision, decision);
        }
        fx.assert_balanced().await;
        fx.store.close().await;
    }
);

// ---------------------------------------------------------------- withdraw

engine_test!(
    /// A replayed planchet gets its stored signature and costs nothing; a planchet repeated in
    /// one request is charged once; the history lists each withdrawal once.
    async fn a_withdraw_replay_returns_the_stored_signature_and_charges_nothing(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        fx.fund(1, 1, "20").await;
        let p1 = planchet(&fx.five, 1);
        let p2 = planchet(&fx.one, 2);
        let mut woken = s
            .notifier()
            .subscribe(db::TOPIC_RESERVE, &db::reserve_key(&reserve(1)));
        let done = s
            .batch_withdraw(
                reserve(1),
                vec![p1.clone(), p2.clone(), p2.clone()],
                db::now(),
            )
            .await
            .unwrap();
        assert_eq!(
            done,
            WithdrawOutcome::Done(vec![
                p1.denom_sig.clone(),
                p2.denom_sig.clone(),
                p2.denom_sig.clone()
            ])
        );
        assert!(woken.wait(WAIT).await);
        assert_eq!(
            fx.balance(1).await,
            chf("13.9"),
            "20 - 5.1 - 1, the repeated planchet once"
        );

        // The replay, with other signatures in the request (a restart re-signed them): the
        // stored ones come back, nothing is charged; a new planchet alongside is charged.
        let mut p1_again = p1.clone();
        p1_again.denom_sig = b"another signature".to_vec();
        let p3 = planchet(&fx.one, 3);
        let again = s
            .batch_withdraw(reserve(1), vec![p3.clone(), p1_again], db::now())
            .await
            .unwrap();
        assert_eq!(
            again,
            WithdrawOutcome::Done(vec![p3.denom_sig.clone(), p1.denom_sig.clone()])
        );
        assert_eq!(fx.balance(1).await, chf("12.9"));

        let stored = s
            .stored_withdrawals(vec![hash(b'p', 9), p3.h_blind_ev, p1.h_blind_ev])
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(
            (stored[0].h_blind_ev, stored[1].h_blind_ev),
            (p3.h_blind_ev, p1.h_blind_ev)
        );
        assert_eq!(stored[1].reserve_pub, reserve(1));
        assert_eq!(stored[1].denom_sig, p1.denom_sig);

        let history = s.reserve_history(reserve(1)).await.unwrap();
        let withdrawals: Vec<_> = history
            .iter()
            .filter_map(|e| match e {
                ReserveHistoryEntry::Withdraw {
                    h_blind_ev,
                    withdraw_fee,
                    amount_with_fee,
                    h_denom_pub,
                    ..
                } => Some((*h_blind_ev, *withdraw_fee, *amount_with_fee, *h_denom_pub)),
                _ => None,
            })
            .collect();
        assert_eq!(
            withdrawals,
            vec![
                (p1.h_blind_ev, chf("0.1"), chf("5.1"), fx.five.h_denom_pub),
                (p2.h_blind_ev, chf("0"), chf("1"), fx.one.h_denom_pub),
                (p3.h_blind_ev, chf("0"), chf("1"), fx.one.h_denom_pub),
            ]
        );
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.withdraw_fees, chf("0.1"));
        assert_eq!(sums.withdrawn_with_fee, chf("7.1"));
    }
);

engine_test!(
    /// A batch the reserve cannot pay changes nothing: no planchet is stored, the balance stays.
    async fn insufficient_funds_change_nothing(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        fx.fund(1, 1, "6").await;
        let batch = vec![planchet(&fx.five, 1), planchet(&fx.one, 2)];
        assert_eq!(
            s.batch_withdraw(reserve(1), batch.clone(), db::now())
                .await
                .unwrap(),
            WithdrawOutcome::InsufficientFunds {
                balance: chf("6"),
                requested: chf("6.1")
            }
        );
        assert_eq!(fx.balance(1).await, chf("6"));
        assert!(
            s.stored_withdrawals(vec![hash(b'p', 1), hash(b'p', 2)])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.batch_withdraw(reserve(9), batch, db::now())
                .await
                .unwrap(),
            WithdrawOutcome::UnknownReserve
        );
        // Exactly the balance is fine.
        let exact = vec![planchet(&fx.five, 3), planchet(&fx.one, 4)];
        let mut exact = exact;
        exact[0].amount_with_fee = chf("5");
        assert!(matches!(
            s.batch_withdraw(reserve(1), exact, db::now())
                .await
                .unwrap(),
            WithdrawOutcome::Done(_)
        ));
        assert_eq!(fx.balance(1).await, chf("0"));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// A Clause-Schnorr nonce signs one planchet per denomination: reusing it for another
    /// planchet is refused (stored before, or earlier in the same request), and nothing of the
    /// refused request is stored; the same planchet again is a replay.
    async fn a_cs_nonce_is_never_used_for_two_planchets(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        fx.fund(1, 1, "10").await;
        let nonce = bytes::<32>(b'n', 1);
        let mut p1 = planchet(&fx.one, 1);
        p1.cs_nonce = Some(nonce);
        assert!(matches!(
            s.batch_withdraw(reserve(1), vec![p1.clone()], db::now())
                .await
                .unwrap(),
            WithdrawOutcome::Done(_)
        ));
        // Another planchet with the locked nonce (after a fresh one).
        let mut p2 = planchet(&fx.one, 2);
        p2.cs_nonce = Some(nonce);
        let fresh = planchet(&fx.one, 3);
        assert_eq!(
            s.batch_withdraw(reserve(1), vec![fresh.clone(), p2.clone()], db::now())
                .await
                .unwrap(),
            WithdrawOutcome::NonceReuse { index: 1 }
        );
        // The same nonce with another denomination is another lock.
        let mut other_denom = planchet(&fx.five, 4);
        other_denom.cs_nonce = Some(nonce);
        // Two planchets of one request sharing a new nonce.
        let shared = bytes::<32>(b'n', 2);
        let mut p5 = planchet(&fx.one, 5);
        p5.cs_nonce = Some(shared);
        let mut p6 = planchet(&fx.one, 6);
        p6.cs_nonce = Some(shared);
        assert_eq!(
            s.batch_withdraw(reserve(1), vec![p5.clone(), p6], db::now())
                .await
                .unwrap(),
            WithdrawOutcome::NonceReuse { index: 1 },
            "the second signature under one nonce would reveal the denomination key"
        );
        assert_eq!(
            fx.balance(1).await,
            chf("9"),
            "refused requests change nothing"
        );
        assert!(
            s.stored_withdrawals(vec![fresh.h_blind_ev, p5.h_blind_ev])
                .await
                .unwrap()
                .is_empty()
        );
        // The replay of the locked planchet, and the other denomination, are fine.
        assert!(matches!(
            s.batch_withdraw(reserve(1), vec![p1, other_denom], db::now())
                .await
                .unwrap(),
            WithdrawOutcome::Done(_)
        ));
        assert_eq!(fx.balance(1).await, chf("3.9"));
        // The request refused before (p5 alone now) goes through, and locks its nonce.
        assert!(matches!(
            s.batch_withdraw(reserve(1), vec![p5], db::now())
                .await
                .unwrap(),
            WithdrawOutcome::Done(_)
        ));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// Many withdrawals from one reserve at once: exactly as many succeed as the balance pays,
    /// the others are refused, and the balance never goes below zero.
    async fn concurrent_withdrawals_never_overdraw_a_reserve(engine: Engine) {
        const REQUESTS: u64 = 32;
        const AFFORDABLE: u64 = 10;
        let fx = Arc::new(Fx::new(engine).await);
        fx.fund(1, 1, &AFFORDABLE.to_string()).await;
        let mut tasks = Vec::new();
        for n in 0..REQUESTS {
            let fx = fx.clone();
            tasks.push(tokio::spawn(async move {
                fx.store
                    .batch_withdraw(reserve(1), vec![planchet(&fx.one, 100 + n)], db::now())
                    .await
                    .unwrap()
            }));
        }
        let mut done = 0;
        for task in tasks {
            match task.await.unwrap() {
                WithdrawOutcome::Done(_) => done += 1,
                WithdrawOutcome::InsufficientFunds { requested, .. } => {
                    assert_eq!(requested, chf("1"))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(done, AFFORDABLE);
        assert_eq!(fx.balance(1).await, chf("0"));
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.withdrawn_with_fee, chf("10"));
    }
);

engine_test!(
    /// The same planchet withdrawn by several requests at once (from two reserves): it is
    /// signed and charged once; every request gets the one stored signature.
    async fn a_planchet_withdrawn_concurrently_is_charged_once(engine: Engine) {
        let fx = Arc::new(Fx::new(engine).await);
        fx.fund(1, 1, "5").await;
        fx.fund(2, 2, "5").await;
        let mut tasks = Vec::new();
        for n in 0..16u64 {
            let fx = fx.clone();
            tasks.push(tokio::spawn(async move {
                let mut p = planchet(&fx.one, 7);
                p.denom_sig = format!("signature {n}").into_bytes();
                fx.store
                    .batch_withdraw(reserve(1 + n % 2), vec![p], db::now())
                    .await
                    .unwrap()
            }));
        }
        let mut sigs = Vec::new();
        for task in tasks {
            let WithdrawOutcome::Done(s) = task.await.unwrap() else {
                panic!("every request is answered with the signature");
            };
            sigs.extend(s);
        }
        sigs.dedup();
        assert_eq!(sigs.len(), 1, "one stored signature for all: {sigs:?}");
        let total = fx.balance(1).await.to_units() + fx.balance(2).await.to_units();
        assert_eq!(total, chf("9").to_units(), "charged once");
        fx.assert_balanced().await;
    }
);

// ---------------------------------------------------------------- deposits

engine_test!(
    /// A deposit replayed later answers with the original exchange timestamp and changes
    /// nothing; the deposit is visible in the coin's history and to the merchant's tracking.
    async fn a_deposit_replay_returns_the_original_timestamp(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let mut woken = s.notifier().subscribe(db::TOPIC_DEPOSIT, "");
        let first = batch(
            1,
            1,
            vec![coin(&fx.five, 1, "3", 1), coin(&fx.one, 2, "1", 2)],
            PAST,
        );
        let stamp = first.exchange_timestamp;
        assert_eq!(
            s.batch_deposit(first.clone()).await.unwrap(),
            DepositOutcome::Done {
                exchange_timestamp: stamp
            }
        );
        assert!(woken.wait(WAIT).await);
        let mut replay = first.clone();
        replay.exchange_timestamp = Timestamp::from_micros(stamp.as_micros() + 5_000_000);
        assert_eq!(
            s.batch_deposit(replay).await.unwrap(),
            DepositOutcome::Done {
                exchange_timestamp: stamp
            }
        );
        assert_eq!(fx.remaining(1).await, chf("2"));
        assert_eq!(fx.remaining(2).await, chf("0"));

        let coin1 = s.coin(coin_pub(1)).await.unwrap().unwrap();
        assert_eq!(coin1.h_denom_pub, fx.five.h_denom_pub);
        assert_eq!(coin1.history.len(), 1, "{:?}", coin1.history);
        let CoinHistoryEntry::Deposit {
            amount_with_fee,
            deposit_fee,
            merchant_pub,
            coin_sig,
            wire_deadline,
            h_payto,
            ..
        } = &coin1.history[0]
        else {
            panic!("a deposit");
        };
        assert_eq!((*amount_with_fee, *deposit_fee), (chf("3"), chf("0.2")));
        assert_eq!(
            (*merchant_pub, *coin_sig, *wire_deadline),
            (merchant(1), sig(b'C', 1), PAST)
        );
        assert_eq!(*h_payto, first.h_payto);
        assert_eq!(s.coin(coin_pub(9)).await.unwrap(), None);

        let tracked = s
            .deposit_tracking(merchant(1), hash(b'h', 1), coin_pub(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tracked.exchange_timestamp, stamp);
        assert_eq!(
            (
                tracked.amount_with_fee,
                tracked.deposit_fee,
                tracked.refunded
            ),
            (chf("3"), chf("0.2"), chf("0"))
        );
        assert_eq!(tracked.merchant_payto, merchant_payto(1));
        assert_eq!(tracked.wire, None);
        assert_eq!(
            s.deposit_tracking(merchant(2), hash(b'h', 1), coin_pub(1))
                .await
                .unwrap(),
            None
        );
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.deposits_with_fee, chf("4"));
        assert_eq!(sums.deposit_fees, chf("0.2"));
    }
);

engine_test!(
    /// A coin cannot pay more than its value: a second deposit beyond what is left is refused
    /// and changes nothing, even split over several entries of one batch; a coin signature of
    /// another batch is a conflict, not a replay.
    async fn a_coin_is_never_spent_twice(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        assert!(matches!(
            s.batch_deposit(batch(1, 1, vec![coin(&fx.five, 1, "3", 1)], PAST))
                .await
                .unwrap(),
            DepositOutcome::Done { .. }
        ));
        // 2 are left: 3 more are refused (as the second coin of a batch).
        let over = batch(
            2,
            2,
            vec![coin(&fx.one, 2, "1", 2), coin(&fx.five, 1, "3", 3)],
            PAST,
        );
        assert_eq!(
            s.batch_deposit(over).await.unwrap(),
            DepositOutcome::InsufficientFunds { index: 1 }
        );
        // Two entries of one coin in a batch add up.
        let split = batch(
            2,
            3,
            vec![coin(&fx.five, 1, "1.5", 4), coin(&fx.five, 1, "1", 5)],
            PAST,
        );
        assert_eq!(
            s.batch_deposit(split).await.unwrap(),
            DepositOutcome::InsufficientFunds { index: 1 }
        );
        // Nothing of the refused batches was stored: coin 2 is unknown, coin 1 has 2 left.
        assert_eq!(s.coin(coin_pub(2)).await.unwrap(), None);
        assert_eq!(fx.remaining(1).await, chf("2"));
        // The first batch's coin signature in another batch.
        let stolen = batch(3, 4, vec![coin(&fx.five, 1, "3", 1)], PAST);
        assert_eq!(
            s.batch_deposit(stolen).await.unwrap(),
            DepositOutcome::Conflict { index: 0 }
        );
        // Spending exactly what is left works.
        let rest = batch(
            2,
            5,
            vec![coin(&fx.five, 1, "1.5", 6), coin(&fx.five, 1, "0.5", 7)],
            PAST,
        );
        assert!(matches!(
            s.batch_deposit(rest).await.unwrap(),
            DepositOutcome::Done { .. }
        ));
        assert_eq!(fx.remaining(1).await, chf("0"));
        assert_eq!(s.coin(coin_pub(1)).await.unwrap().unwrap().history.len(), 3);
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// A coin known with one denomination cannot be deposited as another (stored before, or
    /// earlier in the same batch); one coin signature twice in a batch is a conflict. Nothing
    /// of a refused batch is stored.
    async fn a_coin_of_another_denomination_or_a_repeated_signature_is_refused(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        assert!(matches!(
            s.batch_deposit(batch(1, 1, vec![coin(&fx.five, 1, "1", 1)], PAST))
                .await
                .unwrap(),
            DepositOutcome::Done { .. }
        ));
        let as_one = batch(
            1,
            2,
            vec![coin(&fx.one, 2, "1", 2), coin(&fx.one, 1, "1", 3)],
            PAST,
        );
        assert_eq!(
            s.batch_deposit(as_one).await.unwrap(),
            DepositOutcome::CoinConflict { index: 1 }
        );
        // A fresh coin presented with two denominations in one batch.
        let twice = batch(
            1,
            3,
            vec![coin(&fx.five, 3, "1", 4), coin(&fx.one, 3, "0.5", 5)],
            PAST,
        );
        assert_eq!(
            s.batch_deposit(twice).await.unwrap(),
            DepositOutcome::CoinConflict { index: 1 }
        );
        // One coin signature twice in a batch.
        let repeated = batch(
            1,
            4,
            vec![coin(&fx.five, 4, "1", 6), coin(&fx.five, 4, "1", 6)],
            PAST,
        );
        assert_eq!(
            s.batch_deposit(repeated).await.unwrap(),
            DepositOutcome::Conflict { index: 1 }
        );
        for n in [2, 3, 4] {
            assert_eq!(s.coin(coin_pub(n)).await.unwrap(), None, "coin {n}");
        }
        assert_eq!(fx.remaining(1).await, chf("4"));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// Batches racing for the same coins (first seen by all of them at once, listed in opposite
    /// orders): exactly one is paid; the coins' totals never exceed their values; no request
    /// fails with an error.
    async fn racing_batches_never_spend_a_coin_twice(engine: Engine) {
        const BATCHES: u64 = 12;
        let fx = Arc::new(Fx::new(engine).await);
        let mut tasks = Vec::new();
        for n in 0..BATCHES {
            let fx = fx.clone();
            tasks.push(tokio::spawn(async move {
                let mut coins = vec![
                    coin(&fx.five, 1, "3", 100 + 2 * n),
                    coin(&fx.five, 2, "4", 101 + 2 * n),
                ];
                if n % 2 == 1 {
                    coins.reverse();
                }
                fx.store
                    .batch_deposit(batch(n, n, coins, PAST))
                    .await
                    .unwrap()
            }));
        }
        let mut done = 0;
        for task in tasks {
            match task.await.unwrap() {
                DepositOutcome::Done { .. } => done += 1,
                DepositOutcome::InsufficientFunds { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(done, 1);
        assert_eq!(fx.remaining(1).await, chf("2"));
        assert_eq!(fx.remaining(2).await, chf("1"));
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.deposits_with_fee, chf("7"));
        // The same batch replayed by many requests at once (its coin new to all of them): one
        // deposit, all answered alike.
        for round in 0..4u64 {
            let replay = batch(
                50 + round,
                50,
                vec![coin(&fx.one, 3 + round, "1", 500 + round)],
                PAST,
            );
            let mut tasks = Vec::new();
            for _ in 0..12 {
                let fx = fx.clone();
                let replay = replay.clone();
                tasks.push(tokio::spawn(async move {
                    fx.store.batch_deposit(replay).await.unwrap()
                }));
            }
            for task in tasks {
                assert_eq!(
                    task.await.unwrap(),
                    DepositOutcome::Done {
                        exchange_timestamp: replay.exchange_timestamp
                    }
                );
            }
            let coin = fx.store.coin(coin_pub(3 + round)).await.unwrap().unwrap();
            assert_eq!(coin.history.len(), 1);
        }
        fx.assert_balanced().await;
    }
);

// ---------------------------------------------------------------- refunds

engine_test!(
    /// The refund rules: a replay is fine, the same id with another amount conflicts, refunds
    /// never exceed the coin's contribution, the refund fee is charged (the completing refund
    /// is charged less, never given more), and after the wire transfer nothing can be
    /// refunded.
    async fn the_refund_rules(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let fee = fx.five.fee_refund;
        let deposit = batch(
            1,
            1,
            vec![coin(&fx.five, 1, "4", 1), coin(&fx.five, 2, "2", 2)],
            PAST,
        );
        assert!(matches!(
            s.batch_deposit(deposit).await.unwrap(),
            DepositOutcome::Done { .. }
        ));
        assert_eq!(fx.remaining(1).await, chf("1"));

        assert_eq!(
            s.refund(refund(1, 2, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::DepositNotFound
        );
        assert_eq!(
            s.refund(refund(1, 1, 9, 1, "1"), fee).await.unwrap(),
            RefundOutcome::DepositNotFound
        );
        assert_eq!(
            s.refund(refund(9, 1, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::DepositNotFound
        );

        let mut woken = s.notifier().subscribe(db::TOPIC_DEPOSIT, "");
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        assert!(woken.wait(WAIT).await);
        assert_eq!(
            fx.remaining(1).await,
            chf("1.95"),
            "1 back minus the refund fee"
        );
        // Replay, conflict.
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "2"), fee).await.unwrap(),
            RefundOutcome::Conflict
        );
        assert_eq!(fx.remaining(1).await, chf("1.95"));
        // 1 of 4 refunded: 3.5 more exceeds, the fee cannot exceed the amount.
        assert_eq!(
            s.refund(refund(1, 1, 1, 2, "3.5"), fee).await.unwrap(),
            RefundOutcome::Exceeds {
                deposited: chf("4")
            }
        );
        assert_eq!(
            s.refund(refund(1, 1, 1, 3, "0.01"), fee).await.unwrap(),
            RefundOutcome::FeeExceedsAmount
        );
        // The rest: the coin's contribution is fully refunded; this refund's fee is waived (up
        // to the deposit fee, 0.2 here), nothing more comes back.
        assert_eq!(
            s.refund(refund(1, 1, 1, 4, "3"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        assert_eq!(
            fx.remaining(1).await,
            chf("4.95"),
            "1 + (1 - 0.05) + (3 - 0), not 5.1 (the C exchange's + 0.2 deposit fee)"
        );
        assert_eq!(
            s.refund(refund(1, 1, 1, 5, "0.1"), fee).await.unwrap(),
            RefundOutcome::Exceeds {
                deposited: chf("4")
            }
        );
        let history = s.coin(coin_pub(1)).await.unwrap().unwrap().history;
        let refunds: Vec<_> = history
            .iter()
            .filter_map(|e| match e {
                CoinHistoryEntry::Refund {
                    amount,
                    refund_fee,
                    rtransaction_id,
                    merchant_sig,
                    ..
                } => Some((*amount, *refund_fee, *rtransaction_id, *merchant_sig)),
                _ => None,
            })
            .collect();
        assert_eq!(
            refunds,
            vec![
                (chf("1"), fee, 1, sig(b'F', 1)),
                (chf("3"), fee, 4, sig(b'F', 4))
            ]
        );
        let tracked = s
            .deposit_tracking(merchant(1), hash(b'h', 1), coin_pub(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tracked.refunded, chf("4"));
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.refunds, chf("4"));
        assert_eq!(sums.refund_fees, chf("0.05"), "the fees charged");

        // The merchant is paid (coin 2's share: 2 - 0.2); then no refund of it is possible,
        // but a replay of an earlier refund is still answered.
        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].total, chf("1.8"));
        let paid = s
            .record_wire_out(wire_out(due[0].clone(), 1, "0.3"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(paid.amount, chf("1.5"));
        assert_eq!(
            s.refund(refund(2, 1, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::AlreadyWired
        );
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "1"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        assert_eq!(fx.remaining(2).await, chf("3"));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// Refunds never create money: whatever the denomination's deposit fee is next to its
    /// refund fee (larger, equal, smaller), partial refunds are charged the refund fee and the
    /// completing one `refund fee − min(refund fee, deposit fee)`, so a coin never gets back
    /// more than it paid (on the old rule — the C exchange's — a coin whose deposit fee exceeds
    /// its refund fee ended at 5.15 of 5 after a full refund, and grew with each round). The
    /// coin history still shows the denomination's refund fee; the audit balances throughout.
    async fn refunds_never_give_a_coin_more_than_it_paid(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        // (denomination, partial refund, expected value after it, after the completing one,
        //  fees charged in all); fees: deposit > refund, deposit = refund, deposit < refund.
        let equal = insert_denom(s, 2, "2", "0", "0.1", "0.1").await;
        let smaller = insert_denom(s, 3, "3", "0", "0.05", "0.2").await;
        let cases = [
            (&fx.five, "1", "0.95", "4.95", "0.05"),
            (&equal, "1", "0.9", "1.9", "0.1"),
            (&smaller, "1", "0.8", "2.65", "0.35"),
        ];
        let mut fees_charged = 0u128;
        for (n, (d, partial, after_partial, after_all, charged)) in cases.into_iter().enumerate() {
            let n = n as u64 + 1;
            let whole = NewCoinDeposit {
                amount_with_fee: d.value,
                ..coin(d, n, "0", n)
            };
            let deposit = batch(1, n, vec![whole], PAST);
            assert!(matches!(
                s.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
            assert_eq!(fx.remaining(n).await, chf("0"));
            assert_eq!(
                s.refund(refund(n, 1, n, 1, partial), d.fee_refund)
                    .await
                    .unwrap(),
                RefundOutcome::Done
            );
            assert_eq!(fx.remaining(n).await, chf(after_partial), "{}", d.section);
            let rest = d.value.checked_sub(&chf(partial)).unwrap();
            let completing = NewRefund {
                amount: rest,
                ..refund(n, 1, n, 2, "0")
            };
            assert_eq!(
                s.refund(completing, d.fee_refund).await.unwrap(),
                RefundOutcome::Done
            );
            let left = fx.remaining(n).await;
            assert_eq!(left, chf(after_all), "{}", d.section);
            assert!(left <= d.value, "{}: {left} above {}", d.section, d.value);
            fees_charged += chf(charged).to_units();
            let sums = fx.assert_balanced().await;
            assert_eq!(sums.refund_fees.to_units(), fees_charged, "{}", d.section);
            // The protocol's history: the denomination's refund fee with each refund.
            let shown: Vec<_> = s
                .coin(coin_pub(n))
                .await
                .unwrap()
                .unwrap()
                .history
                .into_iter()
                .filter_map(|e| match e {
                    CoinHistoryEntry::Refund { refund_fee, .. } => Some(refund_fee),
                    _ => None,
                })
                .collect();
            assert_eq!(shown, vec![d.fee_refund, d.fee_refund]);
        }

        // One refund of the whole contribution, round after round (a merchant and a wallet
        // together): the coin comes back to its value, never above (was 5.15, 5.30, …).
        for round in 0..3u64 {
            let contract = 10 + round;
            let deposit = batch(2, contract, vec![coin(&fx.five, 9, "5", 100 + round)], PAST);
            assert!(matches!(
                s.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
            assert_eq!(
                s.refund(refund(9, 2, contract, 1, "5"), fx.five.fee_refund)
                    .await
                    .unwrap(),
                RefundOutcome::Done
            );
            assert_eq!(fx.remaining(9).await, chf("5"), "round {round}");
        }
        // A coin in two contracts, both refunded in full: back to its value.
        for (contract, amount) in [(20, "2"), (21, "3")] {
            let deposit = batch(
                3,
                contract,
                vec![coin(&fx.five, 10, amount, contract)],
                PAST,
            );
            assert!(matches!(
                s.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        }
        assert_eq!(fx.remaining(10).await, chf("0"));
        for (contract, amount) in [(20, "2"), (21, "3")] {
            assert_eq!(
                s.refund(refund(10, 3, contract, 1, amount), fx.five.fee_refund)
                    .await
                    .unwrap(),
                RefundOutcome::Done
            );
        }
        assert_eq!(fx.remaining(10).await, chf("5"));
        let sums = fx.assert_balanced().await;
        assert_eq!(
            sums.refund_fees.to_units(),
            fees_charged,
            "nothing charged since"
        );
    }
);

// ---------------------------------------------------------------- settlement

engine_test!(
    /// The aggregator's view: only deposits past their wire deadline are due, one aggregate per
    /// merchant account with the shares after refunds and fees; recording the transfer marks
    /// the batches (a refund in between is counted: the batch it leaves owed nothing is settled
    /// without the transfer), and what cannot pay the wire fee waits without holding the next
    /// deadline in the past.
    async fn aggregation_pays_each_batch_once(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let future = Timestamp::from_secs(4_000_000_000);
        let d = |m, contract, coins| batch(m, contract, coins, PAST);
        for deposit in [
            d(1, 1, vec![coin(&fx.five, 1, "5", 1)]),
            d(
                2,
                2,
                vec![coin(&fx.five, 2, "2", 2), coin(&fx.one, 3, "1", 3)],
            ),
            d(1, 3, vec![coin(&fx.five, 4, "1", 4)]),
            batch(1, 4, vec![coin(&fx.five, 5, "5", 5)], future),
            d(3, 5, vec![coin(&fx.one, 6, "0.1", 6)]),
        ] {
            assert!(matches!(
                s.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        }
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(PAST));
        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        let view: Vec<_> = due
            .iter()
            .map(|a| (a.merchant_pub, a.batch_serials.len(), a.total))
            .collect();
        assert_eq!(
            view,
            vec![
                (merchant(1), 2, chf("5.6")),
                (merchant(2), 1, chf("2.8")),
                (merchant(3), 1, chf("0.1")),
            ],
            "4.8 + 0.8; 1.8 + 1; 0.1"
        );
        assert_eq!(due[0].merchant_payto, merchant_payto(1));
        // A limit keeps the merchant accounts whose deposits came first.
        let first_two = s.due_aggregates(db::now(), 2).await.unwrap();
        assert_eq!(first_two, due[..2].to_vec());
        assert!(
            s.due_aggregates(Timestamp::from_secs(10), 10)
                .await
                .unwrap()
                .is_empty()
        );

        // A refund after the aggregate was read: the transfer counts it.
        assert_eq!(
            s.refund(refund(4, 1, 3, 1, "1"), fx.five.fee_refund)
                .await
                .unwrap(),
            RefundOutcome::Done
        );
        let mut woken = s.notifier().subscribe(db::TOPIC_WIRE_OUT, "");
        let paid = s
            .record_wire_out(wire_out(due[0].clone(), 1, "0.5"))
            .await
            .unwrap()
            .unwrap();
        assert!(woken.wait(WAIT).await);
        assert_eq!(
            paid.amount,
            chf("4.3"),
            "4.8 - 0.5 (the refunded batch owes nothing)"
        );
        assert_eq!(
            (
                paid.wire_fee,
                paid.merchant_pub,
                paid.gateway_row_id,
                paid.failures
            ),
            (chf("0.5"), merchant(1), None, 0)
        );
        // Recording the same aggregate again finds nothing left to pay.
        assert_eq!(
            s.record_wire_out(wire_out(due[0].clone(), 2, "0.5"))
                .await
                .unwrap(),
            None
        );
        // Merchant 3's 0.1 cannot pay a wire fee of 0.1: it waits, nothing is recorded, and
        // it is no longer due by itself.
        assert_eq!(
            s.record_wire_out(wire_out(due[2].clone(), 3, "0.1"))
                .await
                .unwrap(),
            None
        );
        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        let merchants: Vec<_> = due.iter().map(|a| a.merchant_pub).collect();
        assert_eq!(merchants, vec![merchant(2)]);
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(PAST));

        // Tracking and the transfer's details: the refunded batch is settled, not wired.
        let tracked = s
            .deposit_tracking(merchant(1), hash(b'h', 1), coin_pub(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tracked.wire, Some((paid.wtid, paid.execution_date)));
        assert!(!tracked.settled_without_transfer);
        let refunded = s
            .deposit_tracking(merchant(1), hash(b'h', 3), coin_pub(4))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (refunded.wire, refunded.settled_without_transfer),
            (None, true)
        );
        let waiting = s
            .deposit_tracking(merchant(3), hash(b'h', 5), coin_pub(6))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (waiting.wire, waiting.settled_without_transfer),
            (None, false)
        );
        let (row, deposits) = s.wire_out(paid.wtid).await.unwrap().unwrap();
        assert_eq!(row, paid);
        let coins: Vec<_> = deposits
            .iter()
            .map(|d| (d.coin_pub, d.amount_with_fee, d.deposit_fee, d.refunded))
            .collect();
        assert_eq!(coins, vec![(coin_pub(1), chf("5"), chf("0.2"), chf("0"))]);
        assert_eq!(deposits[0].h_contract_terms, hash(b'h', 1));
        assert_eq!(
            s.wire_out(ShortHashCode::from_bytes(bytes(b't', 9)))
                .await
                .unwrap(),
            None
        );
        let sums = fx.assert_balanced().await;
        assert_eq!((sums.wired, sums.wire_fees), (chf("4.3"), chf("0.5")));
        assert_eq!(sums.aggregated_shares, chf("4.8"));

        // Once merchant 2 is paid, only merchant 1's future deposit is ahead: merchant 3's
        // waiting one does not keep the next deadline in the past.
        assert!(
            s.record_wire_out(wire_out(due[0].clone(), 4, "0.5"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(s.due_aggregates(db::now(), 10).await.unwrap().is_empty());
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(future));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// A batch owed nothing — fully refunded, or contributions no larger than their deposit
    /// fees — is settled without a transfer when its account is aggregated: it is due no more
    /// (before, it stayed due forever and held the aggregator's next deadline in the past),
    /// tracking says so, it is not in any transfer, and refunds of it are refused.
    async fn deposits_owed_nothing_are_settled_without_a_transfer(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let fee = fx.five.fee_refund;
        let deposit = async |d: NewBatchDeposit| {
            assert!(matches!(
                s.batch_deposit(d).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        };
        // Merchant 1: refunded in full. Merchant 2: exactly the deposit fee (0.2). Merchant 3:
        // one batch refunded in full, one owed 4.8.
        deposit(batch(1, 1, vec![coin(&fx.five, 1, "2", 1)], PAST)).await;
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "2"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        deposit(batch(2, 2, vec![coin(&fx.five, 2, "0.2", 2)], PAST)).await;
        deposit(batch(3, 3, vec![coin(&fx.five, 3, "1", 3)], PAST)).await;
        assert_eq!(
            s.refund(refund(3, 3, 3, 1, "1"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        deposit(batch(3, 4, vec![coin(&fx.five, 4, "5", 4)], PAST)).await;
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(PAST));

        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        let view: Vec<_> = due
            .iter()
            .map(|a| (a.merchant_pub, a.batch_serials.len(), a.total))
            .collect();
        assert_eq!(
            view,
            vec![
                (merchant(1), 1, chf("0")),
                (merchant(2), 1, chf("0")),
                (merchant(3), 2, chf("4.8")),
            ]
        );
        let mut woken = s.notifier().subscribe(db::TOPIC_WIRE_OUT, "");
        for (n, aggregate) in due[..2].iter().enumerate() {
            assert_eq!(
                s.record_wire_out(wire_out(aggregate.clone(), n as u64, "0.1"))
                    .await
                    .unwrap(),
                None
            );
        }
        assert!(woken.wait(WAIT).await, "tracking long polls are woken");
        let paid = s
            .record_wire_out(wire_out(due[2].clone(), 2, "0.1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(paid.amount, chf("4.7"));
        assert!(s.due_aggregates(db::now(), 10).await.unwrap().is_empty());
        assert_eq!(s.next_wire_deadline().await.unwrap(), None);

        for (m, contract, settled) in [(1, 1, true), (2, 2, true), (3, 3, true), (3, 4, false)] {
            let tracked = s
                .deposit_tracking(merchant(m), hash(b'h', contract), coin_pub(contract))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                tracked.settled_without_transfer, settled,
                "contract {contract}"
            );
            assert_eq!(tracked.wire.is_some(), !settled, "contract {contract}");
        }
        let (_, deposits) = s.wire_out(paid.wtid).await.unwrap().unwrap();
        let coins: Vec<_> = deposits.iter().map(|d| d.coin_pub).collect();
        assert_eq!(coins, vec![coin_pub(4)]);
        // Settled: no refund any more (merchant 2's 0.1 would have been fine before), but a
        // replay of an earlier refund is still answered.
        assert_eq!(
            s.refund(refund(2, 2, 2, 1, "0.1"), fee).await.unwrap(),
            RefundOutcome::AlreadyWired
        );
        assert_eq!(
            s.refund(refund(1, 1, 1, 1, "2"), fee).await.unwrap(),
            RefundOutcome::Done
        );
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.settled_unwired_shares, chf("0"));
        assert_eq!(
            (sums.wired, sums.aggregated_shares),
            (chf("4.7"), chf("4.8"))
        );
    }
);

engine_test!(
    /// Merchant accounts whose due total does not exceed the wire fee wait — but they are tried
    /// once, then neither fill the aggregator's page (before, a page of 2 returned the first two
    /// stuck accounts forever and the others were never paid) nor hold the next deadline in the
    /// past. A new due deposit of such an account brings its waiting batches back into its
    /// aggregate; a refund of a waiting batch makes it due again.
    async fn accounts_below_the_wire_fee_do_not_starve_others(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let future = Timestamp::from_secs(4_000_000_000);
        let deposit = async |d: NewBatchDeposit| {
            assert!(matches!(
                s.batch_deposit(d).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        };
        // Merchants 1–3 are owed 0.05 each (coins without fees), below a wire fee of 0.1;
        // merchants 4 and 5 are owed 1 each, deposited after them; merchant 6 is due later.
        for m in 1..=3 {
            deposit(batch(m, m, vec![coin(&fx.one, m, "0.05", m)], PAST)).await;
        }
        for m in 4..=5 {
            deposit(batch(m, m, vec![coin(&fx.one, m, "1", m)], PAST)).await;
        }
        deposit(batch(6, 6, vec![coin(&fx.one, 6, "1", 6)], future)).await;

        let mut tried = Vec::new();
        let mut paid = Vec::new();
        for round in 0.. {
            let page = s.due_aggregates(db::now(), 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(round < 3, "every account is settled or waits after one try");
            for aggregate in page {
                assert!(
                    !tried.contains(&aggregate.merchant_pub),
                    "an account comes back only after a change: {tried:?}"
                );
                tried.push(aggregate.merchant_pub);
                let n = tried.len() as u64;
                if let Some(row) = s
                    .record_wire_out(wire_out(aggregate, n, "0.1"))
                    .await
                    .unwrap()
                {
                    paid.push((row.merchant_pub, row.amount));
                }
            }
        }
        assert_eq!(tried, (1..=5).map(merchant).collect::<Vec<_>>());
        assert_eq!(
            paid,
            vec![(merchant(4), chf("0.9")), (merchant(5), chf("0.9"))]
        );
        assert_eq!(
            s.next_wire_deadline().await.unwrap(),
            Some(future),
            "waiting accounts hold no deadline in the past"
        );
        let waiting = s
            .deposit_tracking(merchant(1), hash(b'h', 1), coin_pub(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (waiting.wire, waiting.settled_without_transfer),
            (None, false)
        );

        // Merchant 1 is owed 0.1 more: its account is due again, with both batches.
        deposit(batch(1, 7, vec![coin(&fx.one, 7, "0.1", 7)], PAST)).await;
        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        let view: Vec<_> = due
            .iter()
            .map(|a| (a.merchant_pub, a.batch_serials.len(), a.total))
            .collect();
        assert_eq!(view, vec![(merchant(1), 2, chf("0.15"))]);
        let row = s
            .record_wire_out(wire_out(due[0].clone(), 10, "0.1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.amount, chf("0.05"));
        let (_, deposits) = s.wire_out(row.wtid).await.unwrap().unwrap();
        let coins: Vec<_> = deposits.iter().map(|d| d.coin_pub).collect();
        assert_eq!(coins, vec![coin_pub(1), coin_pub(7)]);

        // Merchant 2's waiting batch is refunded in full: due again, and settled as owed
        // nothing; merchant 3 keeps waiting.
        assert_eq!(
            s.refund(refund(2, 2, 2, 1, "0.05"), fx.one.fee_refund)
                .await
                .unwrap(),
            RefundOutcome::Done
        );
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(PAST));
        let due = s.due_aggregates(db::now(), 10).await.unwrap();
        let view: Vec<_> = due.iter().map(|a| (a.merchant_pub, a.total)).collect();
        assert_eq!(view, vec![(merchant(2), chf("0"))]);
        assert_eq!(
            s.record_wire_out(wire_out(due[0].clone(), 11, "0.1"))
                .await
                .unwrap(),
            None
        );
        let settled = s
            .deposit_tracking(merchant(2), hash(b'h', 2), coin_pub(2))
            .await
            .unwrap()
            .unwrap();
        assert!(settled.settled_without_transfer);
        assert!(s.due_aggregates(db::now(), 10).await.unwrap().is_empty());
        assert_eq!(s.next_wire_deadline().await.unwrap(), Some(future));
        let sums = fx.assert_balanced().await;
        assert_eq!(sums.wired, chf("1.85"));
    }
);

engine_test!(
    /// The transfer worker's bookkeeping: a recorded transfer is pending until the gateway
    /// accepts it; a failed attempt waits for its next attempt.
    async fn wire_transfers_are_pending_until_done(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        for m in [1, 2] {
            let deposit = batch(m, m, vec![coin(&fx.five, m, "5", m)], PAST);
            assert!(matches!(
                s.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        }
        let mut paid = Vec::new();
        for (n, aggregate) in s
            .due_aggregates(db::now(), 10)
            .await
            .unwrap()
            .into_iter()
            .enumerate()
        {
            paid.push(
                s.record_wire_out(wire_out(aggregate, n as u64, "0"))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let now = db::now();
        assert_eq!(s.pending_wire_outs(now, 10).await.unwrap(), paid);
        assert_eq!(
            s.pending_wire_outs(now, 1).await.unwrap(),
            paid[..1].to_vec()
        );
        assert!(
            s.pending_wire_outs(Timestamp::from_secs(1), 10)
                .await
                .unwrap()
                .is_empty()
        );

        let later = Timestamp::from_micros(now.as_micros() + 60_000_000);
        assert!(s.next_wire_out_attempt().await.unwrap().unwrap() <= now);
        s.wire_out_failed(paid[0].serial, later).await.unwrap();
        s.wire_out_done(paid[1].serial, 77).await.unwrap();
        assert!(s.pending_wire_outs(now, 10).await.unwrap().is_empty());
        // What the transfer worker sleeps until when nothing is due (also after a restart).
        assert_eq!(s.next_wire_out_attempt().await.unwrap(), Some(later));
        let retry = s.pending_wire_outs(later, 10).await.unwrap();
        assert_eq!(retry.len(), 1);
        assert_eq!((retry[0].serial, retry[0].failures), (paid[0].serial, 1));
        let (done, _) = s.wire_out(paid[1].wtid).await.unwrap().unwrap();
        assert_eq!(done.gateway_row_id, Some(77));
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// A refund and the aggregator racing for one deposit: either the refund lands first and
    /// the transfer pays less, or the transfer first and the refund is refused; the sums
    /// balance either way.
    async fn a_refund_racing_the_aggregator_is_counted_once(engine: Engine) {
        let fx = Arc::new(Fx::new(engine).await);
        for n in 0..6u64 {
            let deposit = batch(n, n, vec![coin(&fx.five, n, "5", n)], PAST);
            assert!(matches!(
                fx.store.batch_deposit(deposit).await.unwrap(),
                DepositOutcome::Done { .. }
            ));
        }
        let due = fx.store.due_aggregates(db::now(), 10).await.unwrap();
        assert_eq!(due.len(), 6);
        let mut tasks = Vec::new();
        for (n, aggregate) in due.into_iter().enumerate() {
            let n = n as u64;
            let m = aggregate.merchant_pub;
            let m = (0..6u64).find(|k| merchant(*k) == m).unwrap();
            let fx1 = fx.clone();
            let refund_task = tokio::spawn(async move {
                fx1.store
                    .refund(refund(m, m, m, 1, "2"), fx1.five.fee_refund)
                    .await
                    .unwrap()
            });
            let fx2 = fx.clone();
            let wire_task = tokio::spawn(async move {
                fx2.store
                    .record_wire_out(wire_out(aggregate, n, "0.1"))
                    .await
                    .unwrap()
            });
            tasks.push((refund_task, wire_task));
        }
        for (refund_task, wire_task) in tasks {
            let refunded = refund_task.await.unwrap();
            let paid = wire_task.await.unwrap().unwrap();
            match refunded {
                RefundOutcome::Done => assert_eq!(paid.amount, chf("2.7"), "5 - 2 - 0.2 - 0.1"),
                RefundOutcome::AlreadyWired => assert_eq!(paid.amount, chf("4.7")),
                other => panic!("unexpected {other:?}"),
            }
        }
        fx.assert_balanced().await;
    }
);

engine_test!(
    /// The audit reads one snapshot: while withdrawals commit, every audit's reserve
    /// equation holds.
    async fn the_audit_reads_one_snapshot(engine: Engine) {
        let fx = Arc::new(Fx::new(engine).await);
        fx.fund(1, 1, "1000").await;
        let writer = {
            let fx = fx.clone();
            tokio::spawn(async move {
                for n in 0..200u64 {
                    let outcome = fx
                        .store
                        .batch_withdraw(reserve(1), vec![planchet(&fx.one, n)], db::now())
                        .await
                        .unwrap();
                    assert!(matches!(outcome, WithdrawOutcome::Done(_)));
                }
            })
        };
        while !writer.is_finished() {
            fx.assert_balanced().await;
            tokio::task::yield_now().await;
        }
        writer.await.unwrap();
        fx.assert_balanced().await;
    }
);

// ---------------------------------------------------------------- key material

engine_test!(
    /// What the offline key uploads: the same upload again is known, something different under
    /// the same key (or an overlapping period, or an older account change) conflicts; every
    /// change wakes `/keys`.
    async fn management_uploads_are_idempotent_and_conflicts_refused(engine: Engine) {
        let fx = Fx::new(engine).await;
        let s = &fx.store;
        let mut keys_changed = s.notifier().subscribe(db::TOPIC_KEYS, "");

        // Denominations.
        let five = denom_row(5, "5", "0.1", "0.2", "0.05");
        assert_eq!(
            s.insert_denomination(five.clone()).await.unwrap(),
            Stored::AlreadyKnown
        );
        let mut changed = five.clone();
        changed.fee_deposit = chf("0.3");
        assert_eq!(
            s.insert_denomination(changed).await.unwrap(),
            Stored::Conflict
        );
        assert!(
            s.revoke_denomination(five.h_denom_pub, sig(b'X', 1))
                .await
                .unwrap()
        );
        assert!(
            s.revoke_denomination(five.h_denom_pub, sig(b'X', 2))
                .await
                .unwrap()
        );
        assert!(
            !s.revoke_denomination(hash(b'd', 99), sig(b'X', 1))
                .await
                .unwrap()
        );
        let revoked = stored_denom(s, &five.h_denom_pub).await;
        assert_eq!(
            revoked.revocation,
            Some(sig(b'X', 1)),
            "the first revocation stays"
        );
        assert_eq!(
            s.insert_denomination(five).await.unwrap(),
            Stored::AlreadyKnown
        );
        assert_eq!(revoked.serial, fx.five.serial);
        assert_eq!(revoked.public, DenominationPublic::Cs(bytes(b'k', 5)));

        // Signing keys.
        let signkey = SignkeyRow {
            exchange_pub: key(b'e', 1),
            stamp_start: Timestamp::from_secs(100),
            stamp_expire: Timestamp::from_secs(200),
            stamp_end: Timestamp::from_secs(300),
            master_sig: sig(b'G', 1),
            revocation: None,
        };
        assert_eq!(
            s.insert_signkey(signkey.clone()).await.unwrap(),
            Stored::Inserted
        );
        assert_eq!(
            s.insert_signkey(signkey.clone()).await.unwrap(),
            Stored::AlreadyKnown
        );
        let mut other = signkey.clone();
        other.stamp_end = Timestamp::from_secs(301);
        assert_eq!(s.insert_signkey(other).await.unwrap(), Stored::Conflict);
        assert!(
            s.revoke_signkey(signkey.exchange_pub, sig(b'Y', 1))
                .await
                .unwrap()
        );
        assert!(!s.revoke_signkey(key(b'e', 2), sig(b'Y', 1)).await.unwrap());

        // Wire accounts: enable, replay, disable, replay, re-enable only later.
        let payto = "payto://iban/CH9300762011623852957?receiver-name=Exchange".to_owned();
        let account = WireAccountRow {
            payto_uri: payto.clone(),
            conversion_url: None,
            debit_restrictions: "[]".into(),
            credit_restrictions: "[]".into(),
            bank_label: Some("Bank".into()),
            priority: 3,
            master_sig_wire: sig(b'W', 1),
            master_sig_wire_v12: None,
            master_sig_add: sig(b'A', 1),
            validity_start: Timestamp::from_secs(1_000),
            master_sig_del: None,
            validity_end: None,
            is_active: true,
        };
        assert_eq!(
            s.enable_wire_account(account.clone()).await.unwrap(),
            Stored::Inserted
        );
        assert_eq!(
            s.enable_wire_account(account.clone()).await.unwrap(),
            Stored::AlreadyKnown
        );
        let mut older = account.clone();
        older.master_sig_add = sig(b'A', 2);
        older.validity_start = Timestamp::from_secs(900);
        assert_eq!(
            s.enable_wire_account(older).await.unwrap(),
            Stored::Conflict
        );
        assert_eq!(
            s.disable_wire_account(
                "payto://unknown".into(),
                sig(b'D', 1),
                Timestamp::from_secs(2_000)
            )
            .await
            .unwrap(),
            None
        );
        assert_eq!(
            s.disable_wire_account(payto.clone(), sig(b'D', 1), Timestamp::from_secs(999))
                .await
                .unwrap(),
            Some(Stored::Conflict),
            "a disable older than the enable"
        );
        assert_eq!(
            s.disable_wire_account(payto.clone(), sig(b'D', 1), Timestamp::from_secs(2_000))
                .await
                .unwrap(),
            Some(Stored::Inserted)
        );
        assert_eq!(
            s.disable_wire_account(payto.clone(), sig(b'D', 1), Timestamp::from_secs(2_000))
                .await
                .unwrap(),
            Some(Stored::AlreadyKnown)
        );
        assert_eq!(
            s.disable_wire_account(payto.clone(), sig(b'D', 2), Timestamp::from_secs(2_500))
                .await
                .unwrap(),
            Some(Stored::Conflict)
        );
        let mut stale = account.clone();
        stale.master_sig_add = sig(b'A', 3);
        stale.validity_start = Timestamp::from_secs(1_500);
        assert_eq!(
            s.enable_wire_account(stale).await.unwrap(),
            Stored::Conflict,
            "before the disable"
        );
        let mut again = account.clone();
        again.master_sig_add = sig(b'A', 4);
        again.validity_start = Timestamp::from_secs(3_000);
        assert_eq!(
            s.enable_wire_account(again.clone()).await.unwrap(),
            Stored::Inserted
        );

        // Wire fees and global fees: overlaps conflict unless they are the same.
        let fee = WireFeeRow {
            wire_method: "iban".into(),
            start: Timestamp::from_secs(0),
            end: Timestamp::from_secs(1_000),
            wire_fee: chf("0.1"),
            closing_fee: chf("0.2"),
            master_sig: sig(b'f', 1),
        };
        assert_eq!(
            s.insert_wire_fee(fee.clone()).await.unwrap(),
            Stored::Inserted
        );
        assert_eq!(
            s.insert_wire_fee(fee.clone()).await.unwrap(),
            Stored::AlreadyKnown
        );
        let mut overlapping = fee.clone();
        overlapping.start = Timestamp::from_secs(500);
        overlapping.end = Timestamp::from_secs(1_500);
        assert_eq!(
            s.insert_wire_fee(overlapping).await.unwrap(),
            Stored::Conflict
        );
        let mut next = fee.clone();
        next.start = Timestamp::from_secs(1_000);
        next.end = Timestamp::from_secs(2_000);
        assert_eq!(
            s.insert_wire_fee(next.clone()).await.unwrap(),
            Stored::Inserted
        );
        let mut other_method = fee.clone();
        other_method.wire_method = "x-taler-bank".into();
        assert_eq!(
            s.insert_wire_fee(other_method.clone()).await.unwrap(),
            Stored::Inserted
        );
        let global = GlobalFeeRow {
            start: Timestamp::from_secs(0),
            end: Timestamp::from_secs(1_000),
            history_fee: chf("0.01"),
            account_fee: chf("0.02"),
            purse_fee: chf("0.03"),
            purse_timeout: RelativeTime::from_secs(3600),
            history_expiration: RelativeTime::from_secs(7200),
            purse_account_limit: 5,
            master_sig: sig(b'g', 1),
        };
        assert_eq!(
            s.insert_global_fee(global.clone()).await.unwrap(),
            Stored::Inserted
        );
        assert_eq!(
            s.insert_global_fee(global.clone()).await.unwrap(),
            Stored::AlreadyKnown
        );
        let mut other_global = global.clone();
        other_global.purse_account_limit = 6;
        assert_eq!(
            s.insert_global_fee(other_global).await.unwrap(),
            Stored::Conflict
        );

        assert!(keys_changed.wait(WAIT).await);
        let material = s.key_material().await.unwrap();
        assert_eq!(material.denominations.len(), 2);
        assert_eq!(material.signkeys.len(), 1);
        assert_eq!(material.signkeys[0].revocation, Some(sig(b'Y', 1)));
        assert_eq!(material.accounts, vec![again]);
        assert_eq!(material.wire_fees, vec![fee, next, other_method]);
        assert_eq!(material.global_fees, vec![global]);
    }
);

// ---------------------------------------------------------------- round trips

/// The PostgreSQL statements run on this thread, seen through sqlx's `sqlx::query` events (a
/// tracing layer as the thread's default: with a current-thread runtime it sees every
/// statement of the store, and nothing of other tests).
#[derive(Clone, Default)]
struct Statements(Arc<std::sync::Mutex<Vec<String>>>);

impl Statements {
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Sql(Option<String>);
        impl tracing::field::Visit for Sql {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "db.statement" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "db.statement" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        if event.metadata().target() == "sqlx::query" {
            let mut sql = Sql(None);
            event.record(&mut sql);
            // An event without a statement (sqlx's pool checking a connection it hands out,
            // under load) is no statement of the operation.
            let Some(sql) = sql.0.filter(|s| !s.trim().is_empty()) else {
                return;
            };
            let short: String = sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            self.0.lock().unwrap().push(short);
        }
    }
}

/// Each money movement on PostgreSQL is one statement (a `CALL` that also notifies), and so is
/// each read of a request, as the table in `db/mod.rs` counts.
#[tokio::test]
async fn each_money_movement_is_one_statement_on_postgres() {
    use tracing_subscriber::layer::SubscriberExt as _;
    if cardcash_testkit::pg_url().is_none() {
        eprintln!("{}", cardcash_testkit::SKIP_MESSAGE);
        return;
    }
    let statements = Statements::default();
    let _counting =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(statements.clone()));
    // tracing caches whether a call site interests anybody; while a single dispatcher exists it
    // asks the registering thread's default only, so sqlx's statement event first reached on
    // another test's thread (no subscriber there) would be cached as of no interest. With a
    // second live dispatcher it asks all of them, this thread's included.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let fx = Fx::new(Engine::Postgres).await;
    let s = &fx.store;
    let one = async |what: &str| {
        let seen = statements.taken();
        assert_eq!(seen.len(), 1, "{what}: {seen:#?}");
        seen.into_iter().next().unwrap()
    };
    statements.taken();

    fx.fund(1, 1, "20").await;
    assert!(
        one("wirewatch page")
            .await
            .starts_with("CALL exchange_credit_reserves(")
    );
    s.reserve(reserve(1)).await.unwrap();
    one("reserve status").await;
    s.stored_withdrawals(vec![hash(b'p', 1)]).await.unwrap();
    one("stored withdrawals").await;
    let done = s
        .batch_withdraw(reserve(1), vec![planchet(&fx.one, 1)], db::now())
        .await
        .unwrap();
    assert!(matches!(done, WithdrawOutcome::Done(_)));
    assert!(
        one("batch withdraw")
            .await
            .starts_with("CALL exchange_batch_withdraw(")
    );
    s.reserve_history(reserve(1)).await.unwrap();
    one("reserve history").await;

    let deposit = batch(
        1,
        1,
        vec![coin(&fx.five, 1, "5", 1), coin(&fx.five, 2, "5", 2)],
        PAST,
    );
    assert!(matches!(
        s.batch_deposit(deposit).await.unwrap(),
        DepositOutcome::Done { .. }
    ));
    assert!(
        one("batch deposit")
            .await
            .starts_with("CALL exchange_batch_deposit(")
    );
    let refunded = s
        .refund(refund(1, 1, 1, 1, "1"), fx.five.fee_refund)
        .await
        .unwrap();
    assert_eq!(refunded, RefundOutcome::Done);
    assert!(one("refund").await.starts_with("CALL exchange_refund("));
    s.coin(coin_pub(1)).await.unwrap();
    one("coin history").await;

    // A refresh of a coin first seen by its melt: melt, the session, reveal, link.
    let melted = s
        .melt(db::NewMelt {
            rc: hash(b'r', 1),
            coin_pub: coin_pub(3),
            denom_serial: fx.five.serial,
            denom_sig: bytes::<48>(b'u', 3).to_vec(),
            coin_value: fx.five.value,
            coin_sig: sig(b'M', 1),
            amount_with_fee: chf("2"),
            melt_fee: chf("0.01"),
            noreveal_index: 1,
            rms: None,
            zombie_required: false,
            now: db::now(),
        })
        .await
        .unwrap();
    assert_eq!(melted, db::MeltOutcome::Done { noreveal_index: 1 });
    assert!(one("melt").await.starts_with("CALL exchange_melt("));
    let session = s.melt_session(hash(b'r', 1)).await.unwrap().unwrap();
    one("melt session").await;
    let revealed = s
        .reveal(db::NewReveal {
            melt_serial: session.melt_serial,
            transfer_pub: cardcash_util::EcdhePublicKey::from_bytes([7; 32]),
            transfer_privs: vec![[8; 32], [9; 32]],
            now: db::now(),
            coins: vec![db::NewFreshCoin {
                denom_serial: fx.one.serial,
                coin_ev: bytes::<48>(b'e', 1).to_vec(),
                h_coin_ev: hash(b'E', 1),
                link_sig: sig(b'L', 1),
                ev_sig: bytes::<48>(b's', 1).to_vec(),
                ewv: None,
                cs_nonce: None,
                amount_with_fee: fx.one.value,
            }],
        })
        .await
        .unwrap();
    assert!(
        matches!(revealed, db::RevealOutcome::Done(_)),
        "{revealed:?}"
    );
    assert!(
        one("reveal")
            .await
            .starts_with("CALL exchange_refresh_reveal(")
    );
    assert_eq!(s.link(coin_pub(3)).await.unwrap().len(), 1);
    one("link").await;

    let due = s.due_aggregates(db::now(), 10).await.unwrap();
    one("due aggregates").await;
    let paid = s
        .record_wire_out(wire_out(due[0].clone(), 1, "0"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        one("record wire out")
            .await
            .starts_with("CALL exchange_record_wire_out(")
    );
    s.pending_wire_outs(db::now(), 10).await.unwrap();
    one("pending wire outs").await;
    s.wire_out_done(paid.serial, 1).await.unwrap();
    one("wire out done").await;
    s.next_wire_out_attempt().await.unwrap();
    one("next wire out attempt").await;
    s.wire_out(paid.wtid).await.unwrap();
    one("/transfers").await;
    s.deposit_tracking(merchant(1), hash(b'h', 1), coin_pub(1))
        .await
        .unwrap();
    one("deposit tracking").await;
    let report = s
        .credit_reserves(
            ACCOUNT.into(),
            vec![transfer(2, "3", Err("KYC".into()))],
            2,
            LIFETIME,
        )
        .await
        .unwrap();
    assert_eq!(report.bounced, 1);
    assert!(
        one("wirewatch page with a bounce")
            .await
            .starts_with("CALL exchange_credit_reserves(")
    );
    let bounce = s.pending_bounces(db::now(), 10).await.unwrap().remove(0);
    one("pending bounces").await;
    s.decide_bounce(bounce.serial, chf("0.01"), "https://x.example/".into())
        .await
        .unwrap()
        .unwrap();
    one("decide bounce").await;
    s.next_bounce_attempt().await.unwrap();
    one("next bounce attempt").await;
    s.bounce_failed(bounce.serial, db::now()).await.unwrap();
    one("bounce failed").await;
    s.bounce_done(bounce.serial, 7).await.unwrap();
    one("bounce done").await;
    s.audit_sums().await.unwrap();
    one("audit").await;
    fx.assert_balanced().await;
    fx.store.close().await;
}
