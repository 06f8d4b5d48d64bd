//! Known-answer tests with the shared vectors (issue 7: "a coin withdrawn and deposited with the
//! shared vectors' keys verifies byte for byte; `/keys` signatures verify with the vectors'
//! master key").
//!
//! The vectors are `wallet-core-derived-vectors.json` (values computed by GNU Taler's wallet,
//! wallet-core Dec 2022, from fixed inputs; the repository's copy in
//! `crates/crypto/tests/vectors/`, identical to `/work/shared/vectors/`). The exchange runs with
//! the vectors' keys: its master key is loaded from the vector's 32-byte seed (the format of
//! `MasterKey::load`, no constructor needed), and its denomination key is the vector's RSA key,
//! written as a PKCS#1 DER key file (`{KEY_DIR}/denominations/{section}/{start}.rsa`) before the
//! exchange starts. RSA-FDH signing is deterministic, so the exchange's blind signatures must
//! equal the wallet's bytes.
//!
//! What the vectors cover, and what not:
//! - withdrawal: coin keys and blinding secrets (from the withdraw seed), the blinded planchet,
//!   its envelope hash, the reserve signature (the v12 withdraw message is the v23 one), the
//!   blind signature and the unblinded signature — all compared byte for byte;
//! - Clause-Schnorr: GNUnet 0.19.3's `cs_blind_signing` key is the exchange's CS denomination
//!   key (`{start}.cs`); `/csr-withdraw` for the vector's nonce answers the vector's `R` pair
//!   and batch-withdraw of the vector's blinded challenges answers the vector's clause and
//!   blind `s`, which unblind to the vector's signature. GNUnet's message is not a coin's
//!   public-key hash (no vector has a Taler CS coin), so that "coin" is not deposited;
//! - deposit: the vector's deposit permission is protocol v12 (392-byte message). v23 appends
//!   `wallet_data_hash`, so the vector's coin signature cannot verify at a v23 exchange (it is
//!   refused, as the C exchange refuses it); the test checks that the v23 message is the
//!   vector's message plus 64 zero bytes, signs it with the vector's coin key, and deposits
//!   with the vector's merchant key, contract hash, wire salt, account, timestamps and the
//!   merchant's contract signature (1101, accepted byte for byte). No vector has the exchange's
//!   deposit confirmation (1033): it is verified, not compared;
//! - `/keys`: the denomination validity (1025), wire fee (1028) and global fee (1022) signatures
//!   of the vectors are uploaded verbatim and accepted (so the exchange's messages are the
//!   vector's bytes), stored as given, and `/keys` verifies with the vector's master key. The
//!   vector's account signature is v12 (1030 over the payto hash only); no vector covers the v23
//!   account signature, the signing keys (1024) or the key set signature (1035): these are
//!   signed by the vector's master key and exchange keys of the test and verified.
//!
//! The vector's denomination and fees are valid from 1 700 000 000 s to 1 800 000 000 s
//! (2027-01-15) for withdrawal and fees, 1 900 000 000 s (2030-03-17) for deposits; the test
//! that needs those exact times ([`keys_carry_the_vectors_master_signatures`]) only looks for
//! them in `/keys` while they are listed. The withdrawal and deposit test starts the vector's key
//! now, so it does not expire.

use std::sync::OnceLock;
use std::time::Duration;

use cardcash_api::exchange::{
    BatchDepositCoin, BatchDepositRequest, BatchWithdrawRequest, BlindedDenominationSignature,
    CoinEnvelope, CsNonce, CsScalar, CsrWithdrawRequest, DenominationGroupKeys,
    ExchangeKeysResponse, ExchangeWithdrawValues, MasterSignaturesRequest, UnblindedSignature,
    WithdrawPlanchet,
};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::ExchangeClient;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{
    ContractSig, DenominationValidity, DepositConfirmationV23, DepositRequestV12,
    DepositRequestV23, GlobalFees, KeySet, ReserveHistoryRequest, SignedMessage,
    SigningKeyValidity, WireAccountV23, WireFee, WithdrawRequestV23,
};
use cardcash_crypto::rsa::{self, RsaPrivateKey, RsaPublicKey};
use cardcash_exchange::config::{
    AccountConfig, CipherConfig, DenominationConfig, ExchangeConfig, GatewayAuth, GatewayConfig,
};
use cardcash_exchange::offline::MasterKey;
use cardcash_exchange::{App, audit, db};
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{
    Amount, Base32Bytes, EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, PaytoUri,
    RelativeTime, Timestamp, WireSalt,
};
use serde_json::Value;

use crate::helpers::{coin, kudos};

const WALLET_CORE: &str =
    include_str!("../../../crypto/tests/vectors/wallet-core-derived-vectors.json");

const GNUNET_0193: &str =
    include_str!("../../../crypto/tests/vectors/gnunet-0.19.3-crypto-tvg.json");

/// GNUnet 0.19.3's Clause-Schnorr record (its nonces are derived with the withdraw seed "rw",
/// as the exchange's `/csr-withdraw` derives them).
fn cs_vector() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let all: Value = serde_json::from_str(GNUNET_0193).expect("vector file is JSON");
        all["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .find(|v| v["operation"] == "cs_blind_signing")
            .expect("a cs_blind_signing vector")
            .clone()
    })
}

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| serde_json::from_str(WALLET_CORE).expect("vector file is JSON"))
}

fn inputs() -> &'static Value {
    &vectors()["inputs"]
}

fn outputs() -> &'static Value {
    &vectors()["outputs"]
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    cardcash_util::base32::decode(s(v, key)).expect("base32 in the vector")
}

fn field<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    cardcash_util::base32::decode_fixed::<N>(s(v, key)).expect("fixed-size base32 in the vector")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex in the vector"))
        .collect()
}

/// A decimal natural number as big-endian bytes (the vector's private exponent).
fn decimal_to_be(dec: &str) -> Vec<u8> {
    let mut out: Vec<u8> = vec![0];
    for digit in dec.bytes() {
        let mut carry = u32::from(digit - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    out
}

fn key(name: &str) -> EddsaPrivateKey {
    EddsaPrivateKey::from_bytes(&field(inputs(), name))
}

fn sig(v: &Value, name: &str) -> EddsaSignature {
    EddsaSignature::from_bytes(field(v, name))
}

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn denom_pub() -> RsaPublicKey {
    RsaPublicKey::decode(&bytes(inputs(), "rsa_public_key")).expect("the vector's RSA key")
}

fn denom_priv() -> RsaPrivateKey {
    let public = denom_pub();
    let d = decimal_to_be(s(inputs(), "rsa_private_exponent_dec"));
    RsaPrivateKey::from_n_e_d(public.modulus(), public.exponent(), &d).expect("key from n, e, d")
}

fn h_denom() -> HashCode {
    HashCode::from_bytes(field(outputs(), "h_denom_pub"))
}

/// The vector's denomination: value 1, fees 0.01 / 0.02 / 0.03 / 0.04 (its 1025 record).
fn vector_denomination(start_to_end: [RelativeTime; 3]) -> DenominationConfig {
    DenominationConfig {
        section: "coin_kudos_1".into(),
        cipher: CipherConfig::Rsa { bits: 2048 },
        value: kudos("1"),
        fee_withdraw: kudos("0.01"),
        fee_deposit: kudos("0.02"),
        fee_refresh: kudos("0.03"),
        fee_refund: kudos("0.04"),
        duration_withdraw: start_to_end[0],
        duration_spend: start_to_end[1],
        duration_legal: start_to_end[2],
    }
}

/// An exchange on the vectors' master key and RSA key (starting at `key_start`), with the
/// world's bank as its account; the offline routine signed the keys and the bank account and
/// set the `x-taler-bank` wire fee.
struct VectorExchange {
    world: World,
    app: Option<App>,
    client: ExchangeClient,
    master: MasterKey,
    _dir: tempfile::TempDir,
}

impl VectorExchange {
    async fn start(engine: Engine, key_start: u64, denomination: DenominationConfig) -> Self {
        let world = cardcash_testkit::world(engine)
            .currency("KUDOS".parse().unwrap())
            .bank()
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_dir = dir.path().join("keys");
        let section_dir = key_dir.join("denominations").join(&denomination.section);
        std::fs::create_dir_all(&section_dir).unwrap();
        std::fs::write(
            section_dir.join(format!("{key_start}.rsa")),
            denom_priv().to_storage_bytes().unwrap(),
        )
        .unwrap();
        // The Clause-Schnorr denomination's key is GNUnet's vector key, valid from now on.
        let cs_dir = key_dir.join("denominations").join("coin_kudos_cs_2");
        std::fs::create_dir_all(&cs_dir).unwrap();
        std::fs::write(
            cs_dir.join(format!("{}.cs", Timestamp::now().as_secs() - 60)),
            field::<32>(cs_vector(), "cs_private_key"),
        )
        .unwrap();
        let master_file = dir.path().join("master.priv");
        std::fs::write(&master_file, field::<32>(inputs(), "master_priv")).unwrap();
        let master = MasterKey::load(&master_file).unwrap();
        assert_eq!(
            master.public(),
            EddsaPublicKey::from_bytes(field(outputs(), "master_pub")),
            "the vector's master key"
        );

        let mut config = ExchangeConfig::new("KUDOS".parse().unwrap(), "unused", key_dir);
        config.master_public_key = Some(master.public());
        config.lookahead_sign = RelativeTime::from_secs(3600);
        // A second, fresh denomination keeps /keys served whatever the vector's key's age.
        config.denominations = vec![
            denomination,
            coin("coin_kudos_cs_2", CipherConfig::Cs, "2", "0.02"),
        ];
        let bank = world.bank();
        let credentials = bank
            .exchange()
            .expect("the bank's exchange account")
            .clone();
        let payto = bank
            .app()
            .ledger()
            .payto()
            .account_uri(&credentials.username, "Exchange")
            .unwrap();
        config.accounts = vec![AccountConfig {
            section: "exchange-account-1".into(),
            payto: payto.clone(),
            enable_debit: true,
            enable_credit: true,
            gateway: Some(GatewayConfig {
                url: bank.app().wire_gateway_url(&credentials.username).unwrap(),
                auth: GatewayAuth::Basic {
                    username: credentials.username.clone(),
                    password: credentials.password.clone(),
                },
            }),
        }];
        let database = cardcash_testkit::database(engine, db::SERVICE, &db::SCHEMA).await;
        let app = App::build_with_db(config, database).await.unwrap();
        let client = ExchangeClient::new(app.base_url().clone()).unwrap();

        // The offline routine, with the vector's master key.
        let management = client.management();
        let future = management.future_keys().await.unwrap();
        assert_eq!(future.master_pub, master.public());
        management
            .upload_keys(&master.sign_future_keys(&future).unwrap())
            .await
            .unwrap();
        let (start, end) = this_year();
        management
            .enable_wire(&master.enable_account(&payto, start, None, 0).unwrap())
            .await
            .unwrap();
        management
            .set_wire_fee(&master.wire_fee(
                "x-taler-bank",
                start,
                end,
                kudos("0.01"),
                kudos("0.01"),
            ))
            .await
            .unwrap();
        Self {
            world,
            app: Some(app),
            client,
            master,
            _dir: dir,
        }
    }

    fn store(&self) -> &db::ExchangeStore {
        self.app.as_ref().unwrap().exchange().store()
    }

    async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.unwrap();
        }
        self.world.shutdown().await.unwrap();
    }
}

/// From an hour ago for a year.
fn this_year() -> (Timestamp, Timestamp) {
    let now = Timestamp::now().as_secs();
    (ts(now - 3600), ts(now + 365 * 24 * 3600))
}

/// Every signature of `/keys` verifies with `master`: denominations (1025), signing keys
/// (1024), accounts (1030, v23), wire fees (1028), global fees (1022), and the key set (1035)
/// with the exchange's signing key.
fn verify_keys_with(keys: &ExchangeKeysResponse, master: &EddsaPublicKey) {
    assert_eq!(&keys.master_public_key, master);
    let mut denom_sigs = Vec::new();
    for group in &keys.denominations {
        let members: Vec<_> = match &group.keys {
            DenominationGroupKeys::Rsa { denoms } => denoms
                .iter()
                .map(|d| {
                    let public = RsaPublicKey::decode(d.rsa_pub.as_bytes()).unwrap();
                    (
                        public.h_denom_pub(0),
                        d.master_sig,
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                            d.stamp_expire_legal,
                        ],
                    )
                })
                .collect(),
            DenominationGroupKeys::Cs { denoms } => denoms
                .iter()
                .map(|d| {
                    (
                        cardcash_crypto::cs::h_denom_pub(d.cs_pub.as_bytes(), 0),
                        d.master_sig,
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                            d.stamp_expire_legal,
                        ],
                    )
                })
                .collect(),
            other => panic!("unexpected group {other:?}"),
        };
        for (h_denom_pub, master_sig, [start, ew, ed, el]) in members {
            let validity = DenominationValidity {
                master_pub: *master,
                start,
                expire_withdraw: ew,
                expire_deposit: ed,
                expire_legal: el,
                value: group.value,
                fee_withdraw: group.fee_withdraw,
                fee_deposit: group.fee_deposit,
                fee_refresh: group.fee_refresh,
                fee_refund: group.fee_refund,
                h_denom_pub,
            };
            cardcash_crypto::verify(master, &master_sig, &validity)
                .expect("denomination signature (1025)");
            denom_sigs.push(master_sig);
        }
    }
    for k in &keys.signkeys {
        let validity = SigningKeyValidity {
            start: k.stamp_start,
            expire: k.stamp_expire,
            end: k.stamp_end,
            signkey_pub: k.key,
        };
        cardcash_crypto::verify(master, &k.master_sig, &validity)
            .expect("signing key signature (1024)");
    }
    for a in &keys.accounts {
        let empty = serde_json::json!([]);
        let message = WireAccountV23::new(&a.payto_uri.to_string(), None, &empty, &empty).unwrap();
        cardcash_crypto::verify(master, &a.master_sig, &message).expect("account signature (1030)");
    }
    for (method, fees) in &keys.wire_fees {
        for f in fees {
            let message = WireFee::new(method, f.start_date, f.end_date, f.wire_fee, f.closing_fee);
            cardcash_crypto::verify(master, &f.sig, &message).expect("wire fee signature (1028)");
        }
    }
    for f in &keys.global_fees {
        let message = GlobalFees {
            start: f.start_date,
            end: f.end_date,
            purse_timeout: f.purse_timeout,
            history_expiration: f.history_expiration,
            history_fee: f.history_fee,
            account_fee: f.account_fee,
            purse_fee: f.purse_fee,
            purse_account_limit: f.purse_account_limit,
        };
        cardcash_crypto::verify(master, &f.master_sig, &message)
            .expect("global fee signature (1022)");
    }
    assert!(keys.signkeys.iter().any(|k| k.key == keys.exchange_pub));
    let key_set = KeySet {
        list_issue_date: keys.list_issue_date,
        hc: KeySet::denominations_hash(denom_sigs.iter()),
    };
    cardcash_crypto::verify(&keys.exchange_pub, &keys.exchange_sig, &key_set)
        .expect("key set signature (1035)");
}

/// The vector's planchet `p` as the exchange receives it: every byte from the vector, after
/// checking that the wallet's derivations reproduce them.
fn vector_planchet(p: &Value) -> (WithdrawPlanchet, rsa::BlindingKeySecret) {
    let seed: [u8; 32] = field(inputs(), "withdraw_secret_seed");
    let index = u32::try_from(p["coin_index"].as_u64().unwrap()).unwrap();
    let (coin_priv, bks) = cardcash_crypto::planchet::derive(&seed, index);
    assert_eq!(
        coin_priv.to_bytes(),
        field::<32>(p, "coin_priv"),
        "coin key"
    );
    assert_eq!(bks.as_bytes(), &field::<32>(p, "blinding_key_secret"));
    let coin_pub = coin_priv.public();
    assert_eq!(coin_pub.as_bytes(), &field::<32>(p, "coin_pub"));
    let envelope = bytes(p, "coin_ev_rsa_blinded_planchet");
    assert_eq!(
        rsa::blind(&denom_pub(), h_coin_pub(&coin_pub).as_bytes(), &bks).unwrap(),
        envelope,
        "blinded planchet"
    );
    let h_ev = coin_envelope_hash(&h_denom(), &envelope);
    assert_eq!(
        h_ev.as_bytes(),
        &field::<64>(p, "coin_ev_hash"),
        "envelope hash"
    );
    let reserve_sig = sig(p, "reserve_sig");
    let message = WithdrawRequestV23 {
        amount_with_fee: kudos("1.01"),
        h_denom_pub: h_denom(),
        h_coin_envelope: h_ev,
    };
    assert_eq!(
        message.to_bytes(),
        unhex(s(p, "withdraw_msg_hex")),
        "withdraw message"
    );
    assert_eq!(
        key("reserve_priv").sign(&message),
        reserve_sig,
        "reserve signature"
    );
    (
        WithdrawPlanchet {
            denom_pub_hash: h_denom(),
            reserve_sig,
            coin_ev: CoinEnvelope::Rsa {
                rsa_blinded_planchet: Base32Bytes::from_bytes(envelope),
            },
        },
        bks,
    )
}

engine_test!(
    /// The vectors' reserve withdraws the vectors' two planchets from the vectors' RSA key and
    /// GNUnet's Clause-Schnorr vector from its CS key:
    /// envelopes, envelope hashes, reserve signatures, blind signatures and unblinded
    /// signatures are the wallet's bytes; the reserve history shows the vector's signatures;
    /// coin 0 deposits with the vector's merchant, contract, account, salt and timestamps (and
    /// the vector's merchant signature); its v12 coin signature is refused by the v23 exchange.
    async fn withdraw_and_deposit_with_the_vectors_keys(engine: Engine) {
        let now = Timestamp::now().as_secs();
        let ex = VectorExchange::start(
            engine,
            now - 60,
            vector_denomination([
                RelativeTime::from_secs(7 * 24 * 3600),
                RelativeTime::from_secs(365 * 24 * 3600),
                RelativeTime::from_secs(3 * 365 * 24 * 3600),
            ]),
        )
        .await;
        let client = &ex.client;
        let management = client.management();
        let (start, end) = this_year();
        management
            .set_wire_fee(
                &ex.master
                    .wire_fee("iban", start, end, kudos("0.05"), kudos("0.06")),
            )
            .await
            .unwrap();
        let zero = kudos("0");
        management
            .set_global_fees(&ex.master.global_fees(
                start,
                end,
                zero,
                zero,
                zero,
                RelativeTime::from_secs(3600),
                RelativeTime::from_secs(365 * 24 * 3600),
                0,
            ))
            .await
            .unwrap();

        // /keys: the vector's denomination key, every signature by the vector's master key.
        let keys = client.keys().await.unwrap();
        verify_keys_with(
            &keys,
            &EddsaPublicKey::from_bytes(field(outputs(), "master_pub")),
        );
        let group = keys
            .denominations
            .iter()
            .find(|g| g.value == kudos("1"))
            .expect("the vector's denomination");
        let DenominationGroupKeys::Rsa { denoms } = &group.keys else {
            panic!("RSA")
        };
        assert_eq!(
            denoms[0].rsa_pub.as_bytes(),
            bytes(inputs(), "rsa_public_key")
        );
        assert_eq!(
            RsaPublicKey::decode(denoms[0].rsa_pub.as_bytes())
                .unwrap()
                .h_denom_pub(0),
            h_denom()
        );
        assert_eq!(
            (
                group.fee_withdraw,
                group.fee_deposit,
                group.fee_refresh,
                group.fee_refund
            ),
            (kudos("0.01"), kudos("0.02"), kudos("0.03"), kudos("0.04"))
        );

        // The vector's reserve, funded with exactly two coins and their fees.
        let reserve = key("reserve_priv");
        assert_eq!(
            reserve.public().as_bytes(),
            &field::<32>(outputs(), "reserve_pub")
        );
        let bank = ex.world.bank();
        bank.exchange_wire_gateway()
            .add_incoming(&AddIncomingRequest {
                amount: kudos("4.04"),
                reserve_pub: reserve.public(),
                debit_account: bank
                    .app()
                    .ledger()
                    .payto()
                    .account_uri("admin", "Admin")
                    .unwrap(),
            })
            .await
            .unwrap();
        let summary = client
            .reserve(&reserve.public(), Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(summary.balance, kudos("4.04"));

        let records = outputs()["planchets"].as_array().unwrap();
        let (planchets, secrets): (Vec<_>, Vec<_>) = records.iter().map(vector_planchet).unzip();
        let request = BatchWithdrawRequest {
            planchets: planchets.clone(),
        };
        let response = client
            .batch_withdraw(&reserve.public(), &request)
            .await
            .unwrap();
        let mut coins = Vec::new();
        for ((record, answer), bks) in records.iter().zip(&response.ev_sigs).zip(&secrets) {
            let BlindedDenominationSignature::Rsa {
                blinded_rsa_signature,
            } = &answer.ev_sig
            else {
                panic!("an RSA signature")
            };
            assert_eq!(
                blinded_rsa_signature.as_bytes(),
                bytes(record, "blinded_rsa_signature"),
                "the exchange's blind signature is the vector's"
            );
            let unblinded =
                rsa::unblind(&denom_pub(), blinded_rsa_signature.as_bytes(), bks).unwrap();
            assert_eq!(
                unblinded,
                bytes(record, "rsa_signature"),
                "unblinded signature"
            );
            let coin_pub = EddsaPublicKey::from_bytes(field(record, "coin_pub"));
            rsa::verify(&denom_pub(), h_coin_pub(&coin_pub).as_bytes(), &unblinded).unwrap();
            coins.push((coin_pub, unblinded));
        }
        assert_eq!(
            client
                .reserve(&reserve.public(), Duration::ZERO)
                .await
                .unwrap()
                .balance,
            kudos("2.02")
        );
        assert_eq!(
            client
                .batch_withdraw(&reserve.public(), &request)
                .await
                .unwrap(),
            response,
            "a replay"
        );
        let history = client
            .reserve_history(
                &reserve.public(),
                0,
                &reserve.sign(&ReserveHistoryRequest { start_off: 0 }),
            )
            .await
            .unwrap()
            .expect("a history");
        let withdrawals: Vec<_> = history
            .history
            .iter()
            .filter_map(|e| match e {
                cardcash_api::exchange::ReserveHistoryEntry::Withdraw {
                    reserve_sig,
                    h_coin_envelope,
                    ..
                } => Some((*reserve_sig, *h_coin_envelope)),
                _ => None,
            })
            .collect();
        let expected: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    sig(r, "reserve_sig"),
                    HashCode::from_bytes(field(r, "coin_ev_hash")),
                )
            })
            .collect();
        assert_eq!(
            withdrawals, expected,
            "the history has the vector's signatures"
        );

        // Clause-Schnorr with GNUnet's vector key: the exchange's R values for the vector's
        // nonce, and its blind signature over the vector's blinded challenges, are the
        // vector's; they unblind to the vector's signature over the vector's message. (The
        // message is GNUnet's, not a coin's public-key hash: no vector has a Taler CS coin, so
        // this one is not deposited.)
        let cs = cs_vector();
        let cs_pub: [u8; 32] = field(cs, "cs_public_key");
        let cs_group = keys
            .denominations
            .iter()
            .find(|g| g.value == kudos("2"))
            .expect("the CS denomination");
        let DenominationGroupKeys::Cs { denoms } = &cs_group.keys else {
            panic!("CS")
        };
        assert_eq!(denoms[0].cs_pub.as_bytes(), &cs_pub);
        let h_cs = cardcash_crypto::cs::h_denom_pub(&cs_pub, 0);
        let nonce: [u8; 32] = field(cs, "cs_nonce");
        let ewv = client
            .csr_withdraw(&CsrWithdrawRequest {
                nonce: CsNonce::from_bytes(nonce),
                denom_pub_hash: h_cs,
            })
            .await
            .unwrap()
            .ewv;
        let ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } = ewv else {
            panic!("CS values")
        };
        assert_eq!(
            [*r_pub_0.as_bytes(), *r_pub_1.as_bytes()],
            [field::<32>(cs, "cs_r_pub_0"), field::<32>(cs, "cs_r_pub_1")],
            "the exchange's R values are the vector's"
        );
        let c = [field::<32>(cs, "cs_c_0"), field::<32>(cs, "cs_c_1")];
        let planchet = WithdrawPlanchet {
            denom_pub_hash: h_cs,
            reserve_sig: reserve.sign(&WithdrawRequestV23 {
                amount_with_fee: kudos("2.02"),
                h_denom_pub: h_cs,
                h_coin_envelope: cardcash_crypto::coin::coin_envelope_hash_cs(&h_cs, &nonce, &c),
            }),
            coin_ev: CoinEnvelope::Cs {
                cs_nonce: CsNonce::from_bytes(nonce),
                cs_blinded_c0: CsScalar::from_bytes(c[0]),
                cs_blinded_c1: CsScalar::from_bytes(c[1]),
            },
        };
        let answer = client
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: vec![planchet],
                },
            )
            .await
            .unwrap();
        let BlindedDenominationSignature::Cs { b, s: blind_s } = &answer.ev_sigs[0].ev_sig else {
            panic!("a CS signature")
        };
        assert_eq!(
            b.to_le_bytes().to_vec(),
            bytes(cs, "cs_b"),
            "the chosen clause"
        );
        assert_eq!(
            blind_s.as_bytes(),
            &field::<32>(cs, "cs_blind_s"),
            "the blind s"
        );
        let r_blind = [
            field::<32>(cs, "cs_r_pub_blind_0"),
            field::<32>(cs, "cs_r_pub_blind_1"),
        ];
        let (sig_r, sig_s) = cardcash_crypto::cs::unblind_signature(
            &cardcash_crypto::cs::blinding_secrets(&nonce),
            &r_blind,
            *b,
            blind_s.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            (sig_r, sig_s),
            (field::<32>(cs, "cs_sig_R"), field::<32>(cs, "cs_sig_s")),
            "the unblinded CS signature"
        );
        cardcash_crypto::cs::verify(&cs_pub, &sig_r, &sig_s, &bytes(cs, "message_hash")).unwrap();
        assert_eq!(
            client
                .reserve(&reserve.public(), Duration::ZERO)
                .await
                .unwrap()
                .balance,
            kudos("0")
        );

        // Deposit of coin 0 as in the vector's deposit permission.
        let d = &outputs()["deposit"];
        let permission = &d["permission"];
        let wire = &outputs()["h_wire"];
        let (coin_priv, _) =
            cardcash_crypto::planchet::derive(&field(inputs(), "withdraw_secret_seed"), 0);
        assert_eq!(coin_priv.public(), coins[0].0);
        assert_eq!(bytes(&permission["ub_sig"], "rsa_signature"), coins[0].1);
        let merchant = key("merchant_priv");
        let payto: PaytoUri = s(wire, "payto").parse().unwrap();
        let salt = WireSalt::from_bytes(field(wire, "wire_salt"));
        let h_wire = HashCode::from_bytes(field(wire, "h_wire"));
        assert_eq!(cardcash_crypto::h_wire(&payto.to_string(), &salt), h_wire);
        let h_contract_terms =
            HashCode::from_bytes(field(&outputs()["contract"], "h_contract_terms"));
        let timestamp = ts(d["timestamp"]["t_s"].as_u64().unwrap());
        let refund_deadline = ts(d["refund_deadline"]["t_s"].as_u64().unwrap());
        let contribution: Amount = s(permission, "contribution").parse().unwrap();
        let v12 = DepositRequestV12 {
            h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire,
            h_denom_pub: h_denom(),
            wallet_timestamp: timestamp,
            refund_deadline,
            amount_with_fee: contribution,
            deposit_fee: kudos("0.02"),
            merchant_pub: merchant.public(),
        };
        let v12_bytes = unhex(s(d, "msg_hex"));
        assert_eq!(
            v12.to_bytes(),
            v12_bytes,
            "the vector's v12 deposit message"
        );
        let v12_sig = sig(permission, "coin_sig");
        cardcash_crypto::verify(&coin_priv.public(), &v12_sig, &v12).unwrap();
        let v23 = DepositRequestV23 {
            h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire,
            h_denom_pub: h_denom(),
            wallet_timestamp: timestamp,
            refund_deadline,
            amount_with_fee: contribution,
            deposit_fee: kudos("0.02"),
            merchant_pub: merchant.public(),
            wallet_data_hash: HashCode::from_bytes([0; 64]),
        };
        let v23_bytes = v23.to_bytes();
        assert_eq!(v23_bytes.len(), v12_bytes.len() + 64);
        assert_eq!(&v23_bytes[..4], &456u32.to_be_bytes(), "size");
        assert_eq!(&v23_bytes[4..8], &v12_bytes[4..8], "purpose 1201");
        assert_eq!(&v23_bytes[8..392], &v12_bytes[8..], "the v12 fields");
        assert!(v23_bytes[392..].iter().all(|b| *b == 0), "no wallet data");
        let merchant_sig = sig(&outputs()["merchant"], "contract_sig");
        cardcash_crypto::verify(
            &merchant.public(),
            &merchant_sig,
            &ContractSig { h_contract_terms },
        )
        .unwrap();
        let wire_deadline = ts(now + 30 * 24 * 3600);
        let deposit = |coin_sig: EddsaSignature| BatchDepositRequest {
            merchant_payto_uri: payto.clone(),
            wire_salt: salt,
            merchant_pub: merchant.public(),
            merchant_sig: Some(merchant_sig),
            h_contract_terms,
            wallet_data_hash: None,
            coins: vec![BatchDepositCoin {
                contribution,
                denom_pub_hash: h_denom(),
                ub_sig: UnblindedSignature::Rsa {
                    rsa_signature: Base32Bytes::from_bytes(coins[0].1.clone()),
                },
                coin_pub: coins[0].0,
                h_age_commitment: None,
                coin_sig,
            }],
            policy: None,
            timestamp,
            refund_deadline: Some(refund_deadline),
            wire_transfer_deadline: wire_deadline,
        };
        let err = client.batch_deposit(&deposit(v12_sig)).await.unwrap_err();
        assert_eq!(
            (err.status(), err.error_code()),
            (
                Some(403),
                Some(ErrorCode::ExchangeDepositCoinSignatureInvalid)
            ),
            "the v12 coin signature at a v23 exchange"
        );
        let coin_sig = coin_priv.sign(&v23);
        let request = deposit(coin_sig);
        let confirmation = client.batch_deposit(&request).await.unwrap();
        cardcash_crypto::verify(
            &confirmation.exchange_pub,
            &confirmation.exchange_sig,
            &DepositConfirmationV23 {
                h_contract_terms,
                h_wire,
                h_policy: HashCode::from_bytes([0; 64]),
                exchange_timestamp: confirmation.exchange_timestamp,
                wire_deadline,
                refund_deadline,
                total_without_fee: kudos("0.50"),
                h_coin_sigs: cardcash_crypto::coin::h_coin_sigs([coin_sig].iter()),
                merchant_pub: merchant.public(),
            },
        )
        .expect("the deposit confirmation (1033)");
        assert!(
            keys.signkeys
                .iter()
                .any(|k| k.key == confirmation.exchange_pub),
            "signed by a signing key of /keys"
        );

        let report = audit::audit(ex.store()).await.unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        assert_eq!(report.sums.withdrawn_with_fee, kudos("4.04"));
        assert_eq!(report.sums.deposits_with_fee, kudos("0.52"));
        // Coins are known from their first deposit on: coin 0 has 0.48 left.
        assert_eq!(report.sums.coin_remaining, kudos("0.48"));
        ex.stop().await;
    }
);

engine_test!(
    /// The vector's denomination key with the vector's validity times and fees, signed with the
    /// vector's master signature: the exchange accepts that signature (its 1025 message is the
    /// vector's bytes) and rejects a wrong one; the vector's wire fee (1028) and global fee
    /// (1022) uploads are accepted verbatim; the stored signatures are the vector's, and `/keys`
    /// lists them (while they are valid) and verifies with the vector's master key.
    async fn keys_carry_the_vectors_master_signatures(engine: Engine) {
        let span = RelativeTime::from_secs(100_000_000);
        let ex = VectorExchange::start(engine, 1_700_000_000, vector_denomination([span; 3])).await;
        let management = ex.client.management();
        let master_pub = EddsaPublicKey::from_bytes(field(outputs(), "master_pub"));
        let validity = &outputs()["denom_validity"];
        let master_sig = sig(validity, "master_sig");

        // The 1025 message the exchange builds from the key file and the configuration is the
        // vector's: the vector's signature verifies; nothing else does.
        let message = DenominationValidity {
            master_pub,
            start: ts(1_700_000_000),
            expire_withdraw: ts(1_800_000_000),
            expire_deposit: ts(1_900_000_000),
            expire_legal: ts(2_000_000_000),
            value: kudos("1"),
            fee_withdraw: kudos("0.01"),
            fee_deposit: kudos("0.02"),
            fee_refresh: kudos("0.03"),
            fee_refund: kudos("0.04"),
            h_denom_pub: h_denom(),
        };
        assert_eq!(message.to_bytes(), unhex(s(validity, "msg_hex")));
        let upload = |sig: EddsaSignature| MasterSignaturesRequest {
            denom_sigs: vec![cardcash_api::exchange::DenominationSignature {
                h_denom_pub: h_denom(),
                master_sig: sig,
            }],
            signkey_sigs: Vec::new(),
        };
        let err = management
            .upload_keys(&upload(sig(&outputs()["wire_fee"], "master_sig")))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementKeysDenomkeyAddSignatureInvalid)
        );
        management.upload_keys(&upload(master_sig)).await.unwrap();

        // The vector's fees, verbatim.
        let fee = &outputs()["wire_fee"];
        let wire_fee = cardcash_api::exchange::WireFeeSetupRequest {
            wire_method: s(fee, "method").to_owned(),
            master_sig: sig(fee, "master_sig"),
            fee_start: ts(1_700_000_000),
            fee_end: ts(1_800_000_000),
            wire_fee: kudos("0.05"),
            closing_fee: kudos("0.06"),
        };
        management.set_wire_fee(&wire_fee).await.unwrap();
        let global = cardcash_api::exchange::GlobalFeesRequest {
            master_sig: sig(&outputs()["global_fees"], "master_sig"),
            fee_start: ts(1_700_000_000),
            fee_end: ts(1_800_000_000),
            history_fee: kudos("0.1"),
            account_fee: kudos("0.2"),
            purse_fee: kudos("0.3"),
            purse_timeout: RelativeTime::from_secs(3600),
            history_expiration: RelativeTime::from_secs(365 * 24 * 3600),
            purse_account_limit: 5,
        };
        management.set_global_fees(&global).await.unwrap();
        let mut cheaper = wire_fee.clone();
        cheaper.closing_fee = kudos("0.05");
        let err = management.set_wire_fee(&cheaper).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementWireFeeSignatureInvalid)
        );

        // Stored as the vector has them.
        let material = ex.store().key_material().await.unwrap();
        let row = material
            .denominations
            .iter()
            .find(|d| d.h_denom_pub == h_denom())
            .expect("the vector's denomination is stored");
        assert_eq!(row.master_sig, master_sig);
        assert_eq!(
            (
                row.stamp_start,
                row.stamp_expire_withdraw,
                row.stamp_expire_deposit,
                row.stamp_expire_legal
            ),
            (
                ts(1_700_000_000),
                ts(1_800_000_000),
                ts(1_900_000_000),
                ts(2_000_000_000)
            )
        );
        assert!(
            material
                .wire_fees
                .iter()
                .any(|f| f.wire_method == "iban" && f.master_sig == wire_fee.master_sig)
        );
        assert!(
            material
                .global_fees
                .iter()
                .any(|f| f.master_sig == global.master_sig)
        );

        // /keys verifies with the vector's master key and lists the vector's signatures while
        // they are valid (the denomination until its deposit period ends, the fees until theirs).
        let keys = ex.client.keys().await.unwrap();
        verify_keys_with(&keys, &master_pub);
        let now = Timestamp::now();
        let listed: Vec<EddsaSignature> = keys
            .denominations
            .iter()
            .flat_map(|g| match &g.keys {
                DenominationGroupKeys::Rsa { denoms } => {
                    denoms.iter().map(|d| d.master_sig).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            listed.contains(&master_sig),
            now < ts(1_900_000_000),
            "the vector's denomination is listed exactly while it can be deposited"
        );
        let fees_listed = keys
            .wire_fees
            .get("iban")
            .is_some_and(|fees| fees.iter().any(|f| f.sig == wire_fee.master_sig));
        assert_eq!(
            fees_listed,
            now < ts(1_800_000_000),
            "the vector's wire fee"
        );
        let global_listed = keys
            .global_fees
            .iter()
            .any(|f| f.master_sig == global.master_sig);
        assert_eq!(
            global_listed,
            now < ts(1_800_000_000),
            "the vector's global fee"
        );
        ex.stop().await;
    }
);
