//! The legacy face (`<base URL>legacy/`, protocol v12–14 for wallets of late 2022) on both
//! engines: its `/keys` and `/wire` verify as wallet-core 0.9 verifies them, the offline key's
//! v12 account signature is checked and stored by the management API, and a wallet speaking v12
//! withdraws (single and batch), deposits, gets refunds and is paid out through the same
//! domain and database as the v23 face.

use std::time::Duration;

use cardcash_api::exchange::RefundRequest;
use cardcash_api::exchange::v12::BatchWithdrawRequest;
use cardcash_client::{LegacyExchangeClient, LegacyKeysError, verify_keys_v12};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{MerchantRefund, RefundConfirmation, WireAccountV12};
use cardcash_exchange::audit;
use cardcash_exchange::keys::legacy::{LEGACY_PROTOCOL_VERSION, legacy_base_url};
use cardcash_testkit::{BankAccount, Engine, World, engine_test};
use cardcash_util::{ErrorCode, RelativeTime, Timestamp};

use crate::conformance::Raw;
use crate::helpers::{ACCOUNT, TestExchange, kudos};
use crate::wallet::{self, Coin, Contract, Denom};
use crate::wallet_v12;
use crate::withdraw::{bank_and_exchange, funded_reserve};

/// The legacy face of the world's exchange.
pub fn legacy(world: &World) -> LegacyExchangeClient {
    LegacyExchangeClient::new(legacy_base_url(world.exchange().base_url())).unwrap()
}

fn pick<'a>(denoms: &'a [Denom], value: &str) -> &'a Denom {
    denoms
        .iter()
        .find(|d| d.value == kudos(value))
        .unwrap_or_else(|| panic!("no {value} denomination on the legacy face"))
}

engine_test!(
    /// `/legacy/keys` and `/legacy/wire` verify as wallet-core 0.9 verifies them (version
    /// accepted by 12:0:0, every `denoms` entry's 1025 with the hash computed from its key, the
    /// global fees' 1022, every account's 1030 in the v12 layout, every wire fee's 1028) and as
    /// the 2022 C clients do (signing keys, both 1035 key-set signatures); the CS denomination
    /// is not listed; tampered values and the v23 account signature do not verify; the caching
    /// headers include the `expiry` that wallet-core reads.
    async fn legacy_keys_and_wire_verify_as_the_2022_wallet(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let legacy = legacy(&world);
        let master = world.exchange().master().public();
        let keys = legacy.keys().await.unwrap();
        let wire = legacy.wire().await.unwrap();
        let hashes = verify_keys_v12(&keys, &wire, Some(&master)).expect("the legacy keys verify");

        assert_eq!(keys.version, LEGACY_PROTOCOL_VERSION);
        assert_eq!(keys.currency.as_deref(), Some("KUDOS"));
        assert!(
            keys.base_url.as_deref().unwrap().ends_with("/legacy/"),
            "{:?}",
            keys.base_url
        );
        // The same RSA denominations as the v23 face, and no CS one (wallet-core 0.9 cannot
        // withdraw CS coins).
        let v23 = wallet::denominations(&world.exchange().client().keys().await.unwrap());
        let mut rsa: Vec<_> = v23
            .iter()
            .filter(|d| matches!(d.key, wallet::DenomKey::Rsa(_)))
            .map(|d| d.h)
            .collect();
        let mut listed = hashes.clone();
        rsa.sort();
        listed.sort();
        assert_eq!(listed, rsa);
        assert_eq!(keys.denoms.len(), 2, "1 and 5; the CS 2 is not listed");
        assert!(!keys.global_fees.is_empty() && !keys.signkeys.is_empty());
        assert_eq!(keys.auditors, vec![]);

        // /wire: the exchange's bank account, signed in the v12 layout, with its fees.
        let account = world.exchange().accounts()[0].payto.to_string();
        assert!(
            wire.accounts
                .iter()
                .any(|a| a.payto_uri.to_string() == account),
            "{account} in {:?}",
            wire.accounts
        );
        assert!(wire.fees.contains_key("x-taler-bank"));
        assert_eq!(wire.master_public_key, Some(master));

        // Tampering is caught: a fee, a wire fee, and the v23 account signature in place of
        // the v12 one (the same purpose 1030 over another message).
        let mut bad = keys.clone();
        bad.denoms[0].fee_withdraw = kudos("0.001");
        assert!(matches!(
            verify_keys_v12(&bad, &wire, Some(&master)),
            Err(LegacyKeysError::Denomination(_))
        ));
        let mut bad_wire = wire.clone();
        let v23_keys = world.exchange().client().keys().await.unwrap();
        bad_wire.accounts[0].master_sig = v23_keys.accounts[0].master_sig;
        assert!(matches!(
            verify_keys_v12(&keys, &bad_wire, Some(&master)),
            Err(LegacyKeysError::Account(_))
        ));
        let mut bad_fee = wire.clone();
        bad_fee.fees.get_mut("x-taler-bank").unwrap()[0].closing_fee = kudos("0");
        assert!(matches!(
            verify_keys_v12(&keys, &bad_fee, Some(&master)),
            Err(LegacyKeysError::WireFee(..))
        ));
        let mut bad_global = keys.clone();
        bad_global.global_fees[0].purse_account_limit += 1;
        assert!(matches!(
            verify_keys_v12(&bad_global, &wire, Some(&master)),
            Err(LegacyKeysError::GlobalFees(_))
        ));
        let mut bad_order = keys.clone();
        bad_order.denoms.reverse();
        assert!(
            matches!(
                verify_keys_v12(&bad_order, &wire, Some(&master)),
                Err(LegacyKeysError::KeySet("eddsa_sig"))
            ),
            "eddsa_sig covers the denoms in list order"
        );
        let stranger = EddsaPrivateKey::generate().unwrap().public();
        assert!(matches!(
            verify_keys_v12(&keys, &wire, Some(&stranger)),
            Err(LegacyKeysError::WrongMaster { .. })
        ));

        // Headers: ETag and 304, Cache-Control, Expires and wallet-core's `expiry`.
        let raw = Raw::new(&legacy_base_url(world.exchange().base_url()));
        let answer = raw.get("keys").await;
        answer.expect_ok(200, "GET /legacy/keys");
        let expires = answer.header("expires").expect("Expires").to_owned();
        assert!(
            expires.ends_with(" GMT") && expires.len() == 29,
            "{expires}"
        );
        assert_eq!(answer.header("expiry"), Some(expires.as_str()));
        assert!(answer.header("cache-control").unwrap().contains("max-age="));
        let etag = answer.header("etag").expect("ETag").to_owned();
        let again = raw.get_with("keys", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304);
        let wire_answer = raw.get("wire").await;
        wire_answer.expect_ok(200, "GET /legacy/wire");
        let wire_etag = wire_answer.header("etag").expect("ETag").to_owned();
        assert_eq!(
            raw.get_with("wire", &[("if-none-match", &wire_etag)])
                .await
                .status,
            304
        );
        // The terms of service are the v23 face's.
        let terms = raw.get_with("terms", &[("accept", "text/plain")]).await;
        assert_eq!(terms.status, 200);
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// `POST /management/wire` checks and stores the v12 account signature beside the v23
    /// ones: an upload without it leaves `/legacy/wire` without accounts (500
    /// `EXCHANGE_WIRE_NO_ACCOUNTS_CONFIGURED`, as the 2022 exchange answers) while the v23
    /// `/keys` lists the account; a wrong one is 403
    /// `EXCHANGE_MANAGEMENT_WIRE_DETAILS_SIGNATURE_INVALID` and stores nothing; the replay
    /// with the right one is accepted (204) and completes the account for the legacy face; a
    /// re-enable without it keeps it; a debit-only account is not listed on the legacy face.
    async fn management_stores_the_v12_account_signature(engine: Engine) {
        let ex = TestExchange::start(engine).await;
        let management = ex.client.management();
        let future = management.future_keys().await.unwrap();
        management
            .upload_keys(&ex.master.sign_future_keys(&future).unwrap())
            .await
            .unwrap();
        let now = Timestamp::now();
        let start = Timestamp::from_secs(now.as_secs() - 3600);
        let end = Timestamp::from_secs(now.as_secs() + 365 * 24 * 3600);
        management
            .set_wire_fee(&ex.master.wire_fee(
                "x-taler-bank",
                start,
                end,
                kudos("0.05"),
                kudos("0.01"),
            ))
            .await
            .unwrap();
        let full = ex
            .master
            .enable_account(&ACCOUNT.parse().unwrap(), start, None, 0)
            .unwrap();
        let v12 = full
            .master_sig_wire_v12
            .expect("the offline key signs v12 too");
        let mut v23_only = full.clone();
        v23_only.master_sig_wire_v12 = None;
        management.enable_wire(&v23_only).await.unwrap();

        let raw = Raw::new(&legacy_base_url(ex.client.base_url()));
        raw.get("wire").await.expect(
            500,
            ErrorCode::ExchangeWireNoAccountsConfigured,
            "no v12 signature",
        );
        let keys = ex.client.keys().await.unwrap();
        assert_eq!(keys.accounts.len(), 1, "the v23 face lists it");

        let mut wrong = full.clone();
        wrong.master_sig_wire_v12 = Some(full.master_sig_wire);
        let err = management.enable_wire(&wrong).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementWireDetailsSignatureInvalid)
        );
        raw.get("wire").await.expect(
            500,
            ErrorCode::ExchangeWireNoAccountsConfigured,
            "still none",
        );

        management.enable_wire(&full).await.unwrap();
        let wire = LegacyExchangeClient::new(legacy_base_url(ex.client.base_url()))
            .unwrap()
            .wire()
            .await
            .unwrap();
        assert_eq!(wire.accounts.len(), 1);
        assert_eq!(wire.accounts[0].master_sig, v12);
        cardcash_crypto::verify(
            &ex.master.public(),
            &wire.accounts[0].master_sig,
            &WireAccountV12 {
                h_payto: cardcash_crypto::h_payto(ACCOUNT),
            },
        )
        .expect("the stored v12 signature verifies");
        // The same upload again is a replay (204) and changes nothing.
        management.enable_wire(&full).await.unwrap();
        // A later re-enable without the v12 signature keeps the stored one (it covers only
        // the payto URI).
        management
            .disable_wire(&ex.master.disable_account(&ACCOUNT.parse().unwrap(), now))
            .await
            .unwrap();
        let mut later = ex
            .master
            .enable_account(
                &ACCOUNT.parse().unwrap(),
                Timestamp::from_secs(now.as_secs() + 1),
                None,
                0,
            )
            .unwrap();
        later.master_sig_wire_v12 = None;
        management.enable_wire(&later).await.unwrap();
        let wire = LegacyExchangeClient::new(legacy_base_url(ex.client.base_url()))
            .unwrap()
            .wire()
            .await
            .unwrap();
        assert_eq!(wire.accounts[0].master_sig, v12);

        // A debit-only account (credit restriction `deny`) is in the v23 /keys with its
        // restriction, but not in the legacy /wire, which cannot say "do not pay here".
        let debit_only: cardcash_util::PaytoUri =
            "payto://x-taler-bank/bank.example/payouts?receiver-name=Exchange"
                .parse()
                .unwrap();
        management
            .enable_wire(
                &ex.master
                    .enable_account_restricted(
                        &debit_only,
                        start,
                        None,
                        0,
                        Vec::new(),
                        vec![cardcash_api::exchange::AccountRestriction::Deny],
                    )
                    .unwrap(),
            )
            .await
            .unwrap();
        let keys = ex.client.keys().await.unwrap();
        assert_eq!(keys.accounts.len(), 2, "the v23 face lists both");
        let wire = LegacyExchangeClient::new(legacy_base_url(ex.client.base_url()))
            .unwrap()
            .wire()
            .await
            .unwrap();
        assert_eq!(
            wire.accounts
                .iter()
                .map(|a| a.payto_uri.to_string())
                .collect::<Vec<_>>(),
            vec![ACCOUNT.to_owned()],
            "the legacy face lists only the account that takes money"
        );
        ex.stop().await;
    }
);

/// A world with the bank, a merchant account and the exchange of `bank_and_exchange`'s
/// denominations.
async fn world_with_merchant(engine: Engine) -> World {
    cardcash_testkit::world(engine)
        .currency("KUDOS".parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("merchant", "Merchant"))
        .configure_exchange(|c| {
            c.denominations = vec![
                crate::helpers::coin(
                    "coin_kudos_1",
                    cardcash_exchange::config::CipherConfig::Rsa { bits: 1024 },
                    "1",
                    "0.01",
                ),
                crate::helpers::coin(
                    "coin_kudos_5",
                    cardcash_exchange::config::CipherConfig::Rsa { bits: 1024 },
                    "5",
                    "0.01",
                ),
                crate::helpers::coin(
                    "coin_kudos_cs_2",
                    cardcash_exchange::config::CipherConfig::Cs,
                    "2",
                    "0.02",
                ),
            ];
        })
        .start()
        .await
        .unwrap()
}

fn refund(contract: &Contract, coin: &Coin, rtid: u64, amount: &str) -> RefundRequest {
    let refund_amount = kudos(amount);
    RefundRequest {
        refund_amount,
        h_contract_terms: contract.h_contract_terms,
        merchant_pub: contract.merchant.public(),
        rtransaction_id: rtid,
        merchant_sig: contract.merchant.sign(&MerchantRefund {
            h_contract_terms: contract.h_contract_terms,
            coin_pub: coin.coin_pub,
            rtransaction_id: rtid,
            refund_amount,
        }),
    }
}

engine_test!(
    /// A wallet speaking v12 on the legacy face: the reserve is "unknown" (404 1250) until the
    /// bank transfer arrives, then single withdraw (5) and batch withdraw (1 + 1); replays are
    /// free; deposits of a 5 and a 1 coin with v12 signatures get v12 confirmations (a replay
    /// the same answer, a second spend of the coin 409); a refund of 1 of the 5 coin (the coin
    /// gets 0.99 back and spends it on the v23 face); after the wire deadline the merchant is
    /// paid 4.99 − 1 + 0.99 − 0.01 (wire fee) = 4.97 and refunds are over; the audit is clean.
    async fn withdraw_deposit_refund_on_the_legacy_face(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let legacy = legacy(&world);
        let v23 = world.exchange().client();
        let denoms = wallet_v12::denominations(&legacy.keys().await.unwrap());
        let signer = legacy.keys().await.unwrap().eddsa_pub.unwrap();

        // The 2022 wallet polls a reserve the exchange does not know yet: 404 1250.
        let reserve = EddsaPrivateKey::generate().unwrap();
        let err = legacy
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.error_code()),
            (Some(404), Some(ErrorCode::ExchangeReservesStatusUnknown))
        );
        let reserve = funded_reserve(&world, "8").await;
        assert_eq!(
            legacy
                .reserve(&reserve.public(), Duration::from_secs(5))
                .await
                .unwrap()
                .balance,
            kudos("8")
        );

        // Single withdraw of a 5, then a batch of two 1s.
        let five = wallet::planchet(&v23, &reserve, pick(&denoms, "5")).await;
        let answer = legacy
            .withdraw(&reserve.public(), &wallet_v12::withdraw_request(&five))
            .await
            .unwrap();
        let coin5 = five.unblind(&answer.ev_sig);
        let replay = legacy
            .withdraw(&reserve.public(), &wallet_v12::withdraw_request(&five))
            .await
            .unwrap();
        assert_eq!(replay, answer, "a replay gets the same signature");
        let ones = [
            wallet::planchet(&v23, &reserve, pick(&denoms, "1")).await,
            wallet::planchet(&v23, &reserve, pick(&denoms, "1")).await,
        ];
        let batch = BatchWithdrawRequest {
            planchets: ones.iter().map(wallet_v12::withdraw_request).collect(),
        };
        let answer = legacy
            .batch_withdraw(&reserve.public(), &batch)
            .await
            .unwrap();
        let coins1: Vec<Coin> = ones
            .iter()
            .zip(&answer.ev_sigs)
            .map(|(p, s)| p.unblind(&s.ev_sig))
            .collect();
        assert_eq!(
            legacy
                .batch_withdraw(&reserve.public(), &batch)
                .await
                .unwrap(),
            answer
        );
        // 8 − 5.01 − 2 × 1.01 = 0.97: each replay was free.
        assert_eq!(
            legacy
                .reserve(&reserve.public(), Duration::ZERO)
                .await
                .unwrap()
                .balance,
            kudos("0.97")
        );
        let err = legacy
            .withdraw(
                &reserve.public(),
                &wallet_v12::withdraw_request(
                    &wallet::planchet(&v23, &reserve, pick(&denoms, "1")).await,
                ),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeWithdrawInsufficientFunds)
        );

        // Deposits with v12 signatures (one coin per request, as wallet-core and the 2022
        // merchant send them).
        let merchant_payto = world
            .bank()
            .app()
            .ledger()
            .payto()
            .account_uri("merchant", "Merchant")
            .unwrap();
        // Deposits are settled after the wire deadline; the refund below comes before it.
        let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs())
            .saturating_add(RelativeTime::from_secs(4));
        let contract = Contract::new(merchant_payto.clone(), wire_deadline);
        let d5 = wallet_v12::deposit(&contract, &coin5, kudos("5"));
        let confirmation = legacy.deposit(&coin5.coin_pub, &d5).await.unwrap();
        wallet_v12::assert_deposit_confirmed(&contract, &coin5, kudos("5"), &confirmation, &signer);
        assert_eq!(
            legacy.deposit(&coin5.coin_pub, &d5).await.unwrap(),
            confirmation,
            "a replay gets the same answer"
        );
        let d1 = wallet_v12::deposit(&contract, &coins1[0], kudos("1"));
        let confirmation1 = legacy.deposit(&coins1[0].coin_pub, &d1).await.unwrap();
        wallet_v12::assert_deposit_confirmed(
            &contract,
            &coins1[0],
            kudos("1"),
            &confirmation1,
            &signer,
        );
        let other = Contract::new(merchant_payto.clone(), wire_deadline);
        let err = legacy
            .deposit(
                &coin5.coin_pub,
                &wallet_v12::deposit(&other, &coin5, kudos("1")),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericInsufficientFunds)
        );

        // A refund of 1 of the 5 coin on the legacy face (the 2022 shapes are v23's).
        let r = refund(&contract, &coin5, 7, "1");
        let answer = legacy.refund(&coin5.coin_pub, &r).await.unwrap();
        cardcash_crypto::verify(
            &answer.exchange_pub,
            &answer.exchange_sig,
            &RefundConfirmation {
                h_contract_terms: contract.h_contract_terms,
                coin_pub: coin5.coin_pub,
                merchant_pub: contract.merchant.public(),
                rtransaction_id: 7,
                refund_amount: kudos("1"),
            },
        )
        .expect("the refund confirmation verifies");
        assert_eq!(legacy.refund(&coin5.coin_pub, &r).await.unwrap(), answer);

        // The refunded 0.99 of the 5 coin spends on the v23 face: one coin, two faces.
        let v23_contract = Contract::new(
            merchant_payto.clone(),
            Timestamp::now().saturating_add(RelativeTime::from_secs(3600)),
        );
        v23.batch_deposit(&v23_contract.deposit(&[(&coin5, kudos("0.99"))]))
            .await
            .unwrap();

        // Settlement: the merchant receives 4.99 − 1 + 0.99 − 0.01 (wire fee) = 4.97 for the
        // legacy contract (the v23 one is not due yet).
        let bank = world.bank().admin();
        cardcash_testkit::wait_until(Duration::from_secs(30), || async {
            bank.account("merchant").await.unwrap().balance.amount == kudos("4.97")
        })
        .await;
        let err = legacy
            .refund(
                &coins1[0].coin_pub,
                &refund(&contract, &coins1[0], 8, "0.5"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeRefundMerchantAlreadyPaid)
        );
        let report = audit::audit(world.exchange().app().exchange().store())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Refresh on the legacy face as wallet-core 0.9 does it (`RefreshV12`: transfer keys from a
    /// session seed, fresh coins by the v12 derivation, the v12 commitment): a 5 coin, partly
    /// deposited (1), melts 3 × 1.01 + 0.01 into three 1 coins (the melt confirmation 1034
    /// verifies; a replay gets the same index), a reveal that does not match the commitment is
    /// 409 1353 with `rc_expected` and signs nothing, the right reveal signs coins that verify
    /// (a replay the same signatures), link gives back the v12 denomination keys from which the
    /// old coin's owner re-derives the same coins, a fresh coin deposits on the legacy face, a
    /// melt of more than is left is 409 1012, and the audit is clean.
    async fn refresh_and_link_on_the_legacy_face(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let legacy = legacy(&world);
        let v23 = world.exchange().client();
        let keys = legacy.keys().await.unwrap();
        let signer = keys.eddsa_pub.unwrap();
        let denoms = wallet_v12::denominations(&keys);
        let reserve = funded_reserve(&world, "5.01").await;
        let p = wallet::planchet(&v23, &reserve, pick(&denoms, "5")).await;
        let old = p.unblind(
            &legacy
                .withdraw(&reserve.public(), &wallet_v12::withdraw_request(&p))
                .await
                .unwrap()
                .ev_sig,
        );
        let contract = Contract::new(
            world
                .bank()
                .app()
                .ledger()
                .payto()
                .account_uri("merchant", "Merchant")
                .unwrap(),
            Timestamp::now().saturating_add(RelativeTime::from_secs(3600)),
        );
        legacy
            .deposit(
                &old.coin_pub,
                &wallet_v12::deposit(&contract, &old, kudos("1")),
            )
            .await
            .unwrap();

        // Melt the 4 left into three 1 coins.
        let one = pick(&denoms, "1").clone();
        let refresh = wallet_v12::RefreshV12::prepare(&old, &[one.clone(), one.clone(), one]);
        assert_eq!(refresh.amount_with_fee, kudos("3.04"));
        let melted = legacy
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        assert!(melted.noreveal_index < 3);
        assert_eq!(melted.exchange_pub, signer);
        cardcash_crypto::verify(
            &melted.exchange_pub,
            &melted.exchange_sig,
            &cardcash_crypto::purpose::MeltConfirmation {
                rc: refresh.rc,
                noreveal_index: melted.noreveal_index,
            },
        )
        .expect("the melt confirmation (1034) verifies");
        assert_eq!(
            legacy
                .melt(&old.coin_pub, &refresh.melt_request())
                .await
                .unwrap(),
            melted,
            "a replayed melt gets the same index"
        );

        // A reveal with another set's key in place of a revealed one: the commitment does not
        // hold, nothing is signed.
        let mut wrong = refresh.reveal_request(melted.noreveal_index);
        wrong.transfer_privs.swap(0, 1);
        let err = legacy.reveal(&refresh.rc, &wrong).await.unwrap_err();
        assert_eq!(
            (err.status(), err.error_code()),
            (
                Some(409),
                Some(ErrorCode::ExchangeRefreshesRevealCommitmentViolation)
            )
        );
        assert!(err.body().unwrap().get("rc_expected").is_some());
        let err = legacy
            .link(&old.coin_pub)
            .await
            .expect_err("nothing revealed yet");
        assert_eq!(err.status(), Some(404));

        let revealed = legacy
            .reveal(&refresh.rc, &refresh.reveal_request(melted.noreveal_index))
            .await
            .unwrap();
        let sigs: Vec<_> = revealed.ev_sigs.iter().map(|s| s.ev_sig.clone()).collect();
        let fresh = refresh.coins(melted.noreveal_index, &sigs);
        assert_eq!(fresh.len(), 3);
        assert_eq!(
            legacy
                .reveal(&refresh.rc, &refresh.reveal_request(melted.noreveal_index))
                .await
                .unwrap(),
            revealed,
            "a replayed reveal gets the same signatures"
        );

        // Link: the v12 keys, and the same coins re-derived from the old coin's key.
        let link = legacy.link(&old.coin_pub).await.unwrap();
        let linked = wallet_v12::coins_from_link(&old, &link, &denoms);
        assert_eq!(linked.len(), 1);
        let mut a: Vec<_> = linked[0].iter().map(|c| c.coin_pub).collect();
        let mut b: Vec<_> = fresh.iter().map(|c| c.coin_pub).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "link gives back the fresh coins");

        // A fresh coin spends; the old coin has 0.96 left: not enough for another 1 coin.
        legacy
            .deposit(
                &fresh[0].coin_pub,
                &wallet_v12::deposit(&contract, &fresh[0], kudos("1")),
            )
            .await
            .unwrap();
        let again = wallet_v12::RefreshV12::prepare(&old, &[pick(&denoms, "1").clone()]);
        let err = legacy
            .melt(&old.coin_pub, &again.melt_request())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.error_code()),
            (Some(409), Some(ErrorCode::ExchangeGenericInsufficientFunds))
        );
        let report = audit::audit(world.exchange().app().exchange().store())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        world.shutdown().await.unwrap();
    }
);
