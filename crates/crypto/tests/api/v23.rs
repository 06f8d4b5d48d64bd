//! Protocol v23 (C exchange `23:0:6`, `src/util/{offline,exchange,wallet,merchant,secmod}_signatures.c`
//! of December 2024): every message the exchange signs or checks, its bytes pinned field by field
//! in the order of the C struct, and a sign → verify → tamper round trip per purpose.

use cardcash_crypto::coin::{coin_envelope_hash, coin_envelope_hash_cs, h_coin_pub, h_coin_sigs};
use cardcash_crypto::eddsa::{EddsaPrivateKey, verify_raw};
use cardcash_crypto::purpose::*;
use cardcash_crypto::rsa::{self, BlindingKeySecret, RsaPrivateKey};
use cardcash_crypto::wire::{h_conversion_url, h_payto, h_restrictions, h_wire, hash_c_string};
use cardcash_crypto::{CryptoError, cs, sha512, verify};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, Timestamp, WireSalt,
};
use serde_json::json;

use crate::support::flip;

fn h(b: u8) -> HashCode {
    HashCode::from_bytes([b; 64])
}
fn k(b: u8) -> EddsaPublicKey {
    EddsaPublicKey::from_bytes([b; 32])
}
fn sig(b: u8) -> EddsaSignature {
    EddsaSignature::from_bytes([b; 64])
}
fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}
fn d(s: u64) -> RelativeTime {
    RelativeTime::from_secs(s)
}
fn a(text: &str) -> Amount {
    text.parse().expect("amount")
}
fn ts(s: u64) -> [u8; 8] {
    (s * 1_000_000).to_be_bytes()
}

/// Asserts that `msg` is exactly `u32be(size) ‖ u32be(purpose) ‖ fields…` and that its
/// declared size agrees.
fn pinned(msg: &impl SignedMessage, purpose: u32, declared: usize, fields: &[&[u8]]) {
    let body = fields.concat();
    assert_eq!(msg.purpose(), purpose);
    assert_eq!(
        msg.to_bytes(),
        envelope(purpose, &body),
        "layout of {purpose}"
    );
    assert_eq!(declared, body.len() + 8, "declared size of {purpose}");
}

/// Signs `msg`, verifies it, and checks that tampering anywhere (message, signature, key) fails.
fn round_trip(msg: &impl SignedMessage) {
    let key = EddsaPrivateKey::from_bytes(&[0x42; 32]);
    let other = EddsaPrivateKey::from_bytes(&[0x43; 32]);
    let sig = key.sign(msg);
    verify(&key.public(), &sig, msg).expect("own signature verifies");
    let bytes = msg.to_bytes();
    verify_raw(&key.public(), &sig, &bytes).expect("same as the raw bytes");
    for i in (0..bytes.len()).step_by(5).chain([bytes.len() - 1]) {
        assert_eq!(
            verify_raw(&key.public(), &sig, &flip(&bytes, i)),
            Err(CryptoError::InvalidSignature),
            "byte {i} of purpose {}",
            msg.purpose()
        );
    }
    let mut bad_sig = *sig.as_bytes();
    bad_sig[10] ^= 1;
    assert!(verify(&key.public(), &EddsaSignature::from_bytes(bad_sig), msg).is_err());
    assert!(verify(&other.public(), &sig, msg).is_err());
}

// ------------------------------------------------------------------ master (offline) key

#[test]
fn master_signing_key_revoked_1020() {
    let m = SigningKeyRevocation { exchange_pub: k(1) };
    pinned(&m, 1020, SigningKeyRevocation::SIGNED_SIZE, &[&[1; 32]]);
    round_trip(&m);
}

#[test]
fn master_add_wire_1021() {
    let payto = "payto://iban/DE89370400440532013000?receiver-name=Exchange%20AG";
    let debit = json!([]);
    let credit = json!([{"type": "deny"}]);
    let m = WireAdd::new(
        payto,
        Some("https://conversion.example/"),
        &debit,
        &credit,
        t(1_700_000_000),
    )
    .expect("hashable");
    pinned(
        &m,
        1021,
        WireAdd::SIGNED_SIZE,
        &[
            &ts(1_700_000_000),
            h_payto(payto).as_bytes(),
            sha512(b"https://conversion.example/\0").as_bytes(),
            sha512(b"[]\0").as_bytes(),
            sha512(b"[{\"type\":\"deny\"}]\0").as_bytes(),
        ],
    );
    assert_eq!(WireAdd::SIGNED_SIZE, 240);
    let no_url = WireAdd::new(payto, None, &debit, &credit, t(1)).expect("hashable");
    assert_eq!(no_url.h_conversion_url, HashCode::from_bytes([0; 64]));
    round_trip(&m);
}

#[test]
fn master_global_fees_1022() {
    let m = GlobalFees {
        start: t(1),
        end: t(2),
        purse_timeout: d(3),
        history_expiration: d(4),
        history_fee: a("KUDOS:0.1"),
        account_fee: a("KUDOS:0.2"),
        purse_fee: a("KUDOS:0.3"),
        purse_account_limit: 5,
    };
    pinned(
        &m,
        1022,
        GlobalFees::SIGNED_SIZE,
        &[
            &ts(1),
            &ts(2),
            &ts(3),
            &ts(4),
            &a("KUDOS:0.1").to_nbo(),
            &a("KUDOS:0.2").to_nbo(),
            &a("KUDOS:0.3").to_nbo(),
            &5u32.to_be_bytes(),
        ],
    );
    round_trip(&m);
}

#[test]
fn master_del_wire_1023() {
    let payto = "payto://x-taler-bank/bank.example/exchange?receiver-name=Ex";
    let m = WireDel::new(payto, t(9));
    pinned(
        &m,
        1023,
        WireDel::SIGNED_SIZE,
        &[&ts(9), h_payto(payto).as_bytes()],
    );
    round_trip(&m);
}

#[test]
fn master_signing_key_validity_1024() {
    let m = SigningKeyValidity {
        start: t(1),
        expire: t(2),
        end: t(3),
        signkey_pub: k(4),
    };
    pinned(
        &m,
        1024,
        SigningKeyValidity::SIGNED_SIZE,
        &[&ts(1), &ts(2), &ts(3), &[4; 32]],
    );
    round_trip(&m);
}

#[test]
fn master_denomination_validity_1025() {
    let m = DenominationValidity {
        master_pub: k(1),
        start: t(2),
        expire_withdraw: t(3),
        expire_deposit: t(4),
        expire_legal: t(5),
        value: a("KUDOS:5"),
        fee_withdraw: a("KUDOS:0.01"),
        fee_deposit: a("KUDOS:0.02"),
        fee_refresh: a("KUDOS:0.03"),
        fee_refund: a("KUDOS:0.04"),
        h_denom_pub: h(6),
    };
    pinned(
        &m,
        1025,
        DenominationValidity::SIGNED_SIZE,
        &[
            &[1; 32],
            &ts(2),
            &ts(3),
            &ts(4),
            &ts(5),
            &a("KUDOS:5").to_nbo(),
            &a("KUDOS:0.01").to_nbo(),
            &a("KUDOS:0.02").to_nbo(),
            &a("KUDOS:0.03").to_nbo(),
            &a("KUDOS:0.04").to_nbo(),
            &[6; 64],
        ],
    );
    round_trip(&m);
}

#[test]
fn master_auditors_1026_1027() {
    let add = AuditorAdd::new(k(1), "https://auditor.example/", t(2));
    pinned(
        &add,
        1026,
        AuditorAdd::SIGNED_SIZE,
        &[
            &ts(2),
            &[1; 32],
            sha512(b"https://auditor.example/\0").as_bytes(),
        ],
    );
    round_trip(&add);
    let del = AuditorDel {
        end_date: t(3),
        auditor_pub: k(1),
    };
    pinned(&del, 1027, AuditorDel::SIGNED_SIZE, &[&ts(3), &[1; 32]]);
    round_trip(&del);
}

#[test]
fn master_wire_fees_1028() {
    let m = WireFee::new("iban", t(1), t(2), a("KUDOS:0.1"), a("KUDOS:0.2"));
    pinned(
        &m,
        1028,
        WireFee::SIGNED_SIZE,
        &[
            sha512(b"iban\0").as_bytes(),
            &ts(1),
            &ts(2),
            &a("KUDOS:0.1").to_nbo(),
            &a("KUDOS:0.2").to_nbo(),
        ],
    );
    round_trip(&m);
}

#[test]
fn master_denomination_revoked_1029() {
    let m = DenominationRevocation { h_denom_pub: h(7) };
    pinned(&m, 1029, DenominationRevocation::SIGNED_SIZE, &[&[7; 64]]);
    round_trip(&m);
}

#[test]
fn master_wire_details_1030_v23() {
    let payto = "payto://iban/CH9300762011623852957?receiver-name=Exchange";
    let debit = json!([{"type": "regex", "payto_regex": ".*", "human_hint": "any",
        "human_hint_i18n": {"de-CH": "alle"}}]);
    let m = WireAccountV23::new(payto, None, &debit, &json!([])).expect("hashable");
    pinned(
        &m,
        1030,
        WireAccountV23::SIGNED_SIZE,
        &[
            h_payto(payto).as_bytes(),
            &[0; 64],
            h_restrictions(&debit).expect("hash").as_bytes(),
            sha512(b"[]\0").as_bytes(),
        ],
    );
    // The restriction hash is the C dump: compact, keys sorted by bytes, NUL-terminated.
    assert_eq!(
        h_restrictions(&debit).expect("hash"),
        sha512(
            concat!(
                r#"[{"human_hint":"any","human_hint_i18n":{"de-CH":"alle"},"payto_regex":".*","#,
                r#""type":"regex"}]"#,
                "\0"
            )
            .as_bytes()
        )
    );
    // The 1021 message of the same account carries the same four hashes after its date.
    let add = WireAdd::new(payto, None, &debit, &json!([]), t(1)).expect("hashable");
    assert_eq!(add.to_bytes()[16..], m.to_bytes()[8..]);
    round_trip(&m);
}

// ------------------------------------------------------------------ exchange (online) key

#[test]
fn exchange_deposit_confirmation_1033_v23() {
    let coin_sigs = [sig(0xa1), sig(0xa2), sig(0xa3)];
    let mut all = Vec::new();
    for s in &coin_sigs {
        all.extend_from_slice(s.as_bytes());
    }
    assert_eq!(h_coin_sigs(&coin_sigs), sha512(&all));
    assert_eq!(
        DepositConfirmationV23::hash_coin_sigs(&coin_sigs),
        sha512(&all)
    );
    // Order matters.
    assert_ne!(
        h_coin_sigs(&[sig(0xa2), sig(0xa1), sig(0xa3)]),
        h_coin_sigs(&coin_sigs)
    );
    let m = DepositConfirmationV23 {
        h_contract_terms: h(1),
        h_wire: h(2),
        h_policy: h(0),
        exchange_timestamp: t(4),
        wire_deadline: t(5),
        refund_deadline: t(6),
        total_without_fee: a("KUDOS:2.5"),
        h_coin_sigs: h_coin_sigs(&coin_sigs),
        merchant_pub: k(8),
    };
    pinned(
        &m,
        1033,
        DepositConfirmationV23::SIGNED_SIZE,
        &[
            &[1; 64],
            &[2; 64],
            &[0; 64],
            &ts(4),
            &ts(5),
            &ts(6),
            &a("KUDOS:2.5").to_nbo(),
            sha512(&all).as_bytes(),
            &[8; 32],
        ],
    );
    assert_eq!(DepositConfirmationV23::SIGNED_SIZE, 344);
    round_trip(&m);
}

#[test]
fn exchange_key_set_1035_and_its_hash() {
    // Two groups as `/keys` lists them: [[s1, s2], [s3]].
    let groups = [vec![sig(1), sig(2)], vec![sig(3)]];
    let hc = KeySet::denominations_hash(groups.iter().flatten());
    let mut all = Vec::new();
    for s in groups.iter().flatten() {
        all.extend_from_slice(s.as_bytes());
    }
    assert_eq!(hc, sha512(&all));
    assert_ne!(
        KeySet::denominations_hash([sig(3), sig(1), sig(2)].iter()),
        hc
    );
    assert_eq!(KeySet::denominations_hash(std::iter::empty()), sha512(b""));
    let m = KeySet {
        list_issue_date: t(1_700_000_000),
        hc,
    };
    pinned(
        &m,
        1035,
        KeySet::SIGNED_SIZE,
        &[&ts(1_700_000_000), sha512(&all).as_bytes()],
    );
    round_trip(&m);
}

#[test]
fn exchange_confirm_wire_1036() {
    let m = ConfirmWire {
        h_wire: h(1),
        h_contract_terms: h(2),
        wtid: [3; 32],
        coin_pub: k(4),
        execution_time: t(5),
        coin_contribution: a("KUDOS:0.5"),
    };
    pinned(
        &m,
        1036,
        ConfirmWire::SIGNED_SIZE,
        &[
            &[1; 64],
            &[2; 64],
            &[3; 32],
            &[4; 32],
            &ts(5),
            &a("KUDOS:0.5").to_nbo(),
        ],
    );
    round_trip(&m);
}

#[test]
fn exchange_wire_deposit_1037_and_details() {
    let details = [
        WireDepositDetail {
            h_contract_terms: h(1),
            execution_time: t(2),
            coin_pub: k(3),
            deposit_value: a("KUDOS:1"),
            deposit_fee: a("KUDOS:0.01"),
        },
        WireDepositDetail {
            h_contract_terms: h(4),
            execution_time: t(5),
            coin_pub: k(6),
            deposit_value: a("KUDOS:2"),
            deposit_fee: a("KUDOS:0.02"),
        },
    ];
    assert_eq!(
        details[0].to_bytes(),
        [
            &[1; 64][..],
            &ts(2),
            &[3; 32],
            &a("KUDOS:1").to_nbo(),
            &a("KUDOS:0.01").to_nbo()
        ]
        .concat()
    );
    let h_details = WireDepositConfirmation::hash_details(&details);
    assert_eq!(
        h_details,
        sha512(&[details[0].to_bytes(), details[1].to_bytes()].concat())
    );
    let payto = "payto://x-taler-bank/bank.example/merchant?receiver-name=Shop";
    let m = WireDepositConfirmation {
        total: a("KUDOS:2.97"),
        wire_fee: a("KUDOS:0.1"),
        merchant_pub: k(7),
        h_payto: h_payto(payto),
        h_details,
    };
    pinned(
        &m,
        1037,
        WireDepositConfirmation::SIGNED_SIZE,
        &[
            &a("KUDOS:2.97").to_nbo(),
            &a("KUDOS:0.1").to_nbo(),
            &[7; 32],
            h_payto(payto).as_bytes(),
            h_details.as_bytes(),
        ],
    );
    round_trip(&m);
}

#[test]
fn exchange_refund_confirmation_1038() {
    let m = RefundConfirmation {
        h_contract_terms: h(1),
        coin_pub: k(2),
        merchant_pub: k(3),
        rtransaction_id: 0x0102_0304_0506_0708,
        refund_amount: a("KUDOS:0.25"),
    };
    pinned(
        &m,
        1038,
        RefundConfirmation::SIGNED_SIZE,
        &[
            &[1; 64],
            &[2; 32],
            &[3; 32],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &a("KUDOS:0.25").to_nbo(),
        ],
    );
    round_trip(&m);
}

#[test]
fn exchange_denomination_unknown_and_expired_1042_1043() {
    let unknown = DenominationUnknown {
        timestamp: t(1),
        h_denom_pub: h(2),
    };
    pinned(
        &unknown,
        1042,
        DenominationUnknown::SIGNED_SIZE,
        &[&ts(1), &[2; 64]],
    );
    round_trip(&unknown);
    let expired = DenominationExpired {
        timestamp: t(1),
        operation: operation_name("csr-withdraw"),
        h_denom_pub: h(2),
    };
    pinned(
        &expired,
        1043,
        DenominationExpired::SIGNED_SIZE,
        &[&ts(1), b"csr-with", &[2; 64]],
    );
    assert_eq!(operation_name("DEPOSIT"), *b"DEPOSIT\0");
    round_trip(&expired);
}

// ------------------------------------------------------------------ wallet (reserve, coin) keys

#[test]
fn wallet_withdraw_1200_v23() {
    let m: WithdrawRequestV23 = WithdrawRequestV12 {
        amount_with_fee: a("KUDOS:1.01"),
        h_denom_pub: h(2),
        h_coin_envelope: h(3),
    };
    pinned(
        &m,
        1200,
        WithdrawRequestV23::SIGNED_SIZE,
        &[&a("KUDOS:1.01").to_nbo(), &[2; 64], &[3; 64]],
    );
    round_trip(&m);
}

#[test]
fn wallet_deposit_1201_v23() {
    let m = DepositRequestV23 {
        h_contract_terms: h(1),
        h_age_commitment: [0; 32],
        h_policy: h(0),
        h_wire: h(2),
        h_denom_pub: h(3),
        wallet_timestamp: t(4),
        refund_deadline: t(5),
        amount_with_fee: a("KUDOS:1"),
        deposit_fee: a("KUDOS:0.01"),
        merchant_pub: k(6),
        wallet_data_hash: h(7),
    };
    pinned(
        &m,
        1201,
        DepositRequestV23::SIGNED_SIZE,
        &[
            &[1; 64],
            &[0; 32],
            &[0; 64],
            &[2; 64],
            &[3; 64],
            &ts(4),
            &ts(5),
            &a("KUDOS:1").to_nbo(),
            &a("KUDOS:0.01").to_nbo(),
            &[6; 32],
            &[7; 64],
        ],
    );
    round_trip(&m);
}

#[test]
fn wallet_reserve_history_request_1208() {
    let m = ReserveHistoryRequest { start_off: 0x1122 };
    pinned(
        &m,
        1208,
        ReserveHistoryRequest::SIGNED_SIZE,
        &[&0x1122u64.to_be_bytes()],
    );
    assert_eq!(
        m.to_bytes(),
        [0, 0, 0, 16, 0, 0, 4, 0xb8, 0, 0, 0, 0, 0, 0, 0x11, 0x22]
    );
    round_trip(&m);
    round_trip(&ReserveHistoryRequest { start_off: 0 });
}

// ------------------------------------------------------------------ merchant key

#[test]
fn merchant_refund_1102() {
    let m = MerchantRefund {
        h_contract_terms: h(1),
        coin_pub: k(2),
        rtransaction_id: 3,
        refund_amount: a("KUDOS:0.5"),
    };
    pinned(
        &m,
        1102,
        MerchantRefund::SIGNED_SIZE,
        &[
            &[1; 64],
            &[2; 32],
            &3u64.to_be_bytes(),
            &a("KUDOS:0.5").to_nbo(),
        ],
    );
    round_trip(&m);
}

#[test]
fn merchant_track_transaction_1103_v23() {
    let m = TrackTransaction {
        h_contract_terms: h(1),
        h_wire: h(2),
        coin_pub: k(3),
    };
    pinned(
        &m,
        1103,
        TrackTransaction::SIGNED_SIZE,
        &[&[1; 64], &[2; 64], &[3; 32]],
    );
    round_trip(&m);
}

// ------------------------------------------------------------------ security modules

#[test]
fn secmod_signing_key_announcement_1251() {
    let m = SigningKeyAnnouncement {
        exchange_pub: k(1),
        anchor_time: t(2),
        duration: d(3600),
    };
    pinned(
        &m,
        1251,
        SigningKeyAnnouncement::SIGNED_SIZE,
        &[&[1; 32], &ts(2), &3_600_000_000u64.to_be_bytes()],
    );
    round_trip(&m);
}

#[test]
fn secmod_denomination_announcements_1250_1252() {
    let rsa_key = RsaPrivateKey::generate(1024).expect("key");
    let m = RsaDenominationKeyAnnouncement::new(rsa_key.public(), "coin_kudos_1", t(2), d(60));
    pinned(
        &m,
        1250,
        RsaDenominationKeyAnnouncement::SIGNED_SIZE,
        &[
            sha512(&rsa_key.public().encode()).as_bytes(),
            sha512(b"coin_kudos_1\0").as_bytes(),
            &ts(2),
            &60_000_000u64.to_be_bytes(),
        ],
    );
    assert_ne!(m.h_rsa_pub, rsa_key.public().h_denom_pub(0));
    round_trip(&m);

    let cs_priv = cs::generate_private().expect("key");
    let cs_pub = cs::public(&cs_priv);
    let c = CsDenominationKeyAnnouncement::new(&cs_pub, "coin_kudos_cs_1", t(2), d(60));
    pinned(
        &c,
        1252,
        CsDenominationKeyAnnouncement::SIGNED_SIZE,
        &[
            sha512(&cs_pub).as_bytes(),
            sha512(b"coin_kudos_cs_1\0").as_bytes(),
            &ts(2),
            &60_000_000u64.to_be_bytes(),
        ],
    );
    assert_ne!(c.h_cs_pub, cs::h_denom_pub(&cs_pub, 0));
    round_trip(&c);
    // Same fields, different purpose: an RSA announcement never passes as a CS one.
    let key = EddsaPrivateKey::from_bytes(&[5; 32]);
    let as_rsa = RsaDenominationKeyAnnouncement {
        h_rsa_pub: c.h_cs_pub,
        h_section_name: c.h_section_name,
        anchor_time: c.anchor_time,
        duration_withdraw: c.duration_withdraw,
    };
    assert!(verify(&key.public(), &key.sign(&as_rsa), &c).is_err());
}

// ------------------------------------------------------------------ hashes and blind signatures

#[test]
fn wire_hashes() {
    let payto = "payto://x-taler-bank/bank.example/shop?receiver-name=Shop";
    let salt = WireSalt::from_bytes([9; 16]);
    assert_eq!(
        h_payto(payto).as_bytes()[..],
        sha512(format!("{payto}\0").as_bytes()).as_bytes()[..32]
    );
    assert_ne!(
        h_wire(payto, &salt),
        h_wire(payto, &WireSalt::from_bytes([8; 16]))
    );
    assert_eq!(hash_c_string("iban"), sha512(b"iban\0"));
    assert_eq!(
        h_conversion_url(Some("https://c.example/")),
        sha512(b"https://c.example/\0")
    );
}

#[test]
fn cs_envelope_hash_is_denomination_cipher_c0_c1_nonce() {
    let h_denom = h(1);
    let nonce = [2u8; 32];
    let c = [[3u8; 32], [4u8; 32]];
    let expected = sha512(&[&[1u8; 64][..], &[0, 0, 0, 2], &[3; 32], &[4; 32], &[2; 32]].concat());
    assert_eq!(coin_envelope_hash_cs(&h_denom, &nonce, &c), expected);
    assert_ne!(
        coin_envelope_hash_cs(&h_denom, &nonce, &[c[1], c[0]]),
        expected
    );
    // The RSA form for comparison: cipher 1 and the blinded planchet bytes.
    assert_eq!(
        coin_envelope_hash(&h_denom, &[5, 6]),
        sha512(&[&[1u8; 64][..], &[0, 0, 0, 1], &[5, 6]].concat())
    );
}

/// The whole CS withdrawal: the exchange's R pair, the wallet's blinding, the exchange's
/// signature under the withdraw seed, the wallet's unblinding, and the deposit-time check.
#[test]
fn cs_withdraw_chain() {
    let private = cs::generate_private().expect("key");
    let public = cs::public(&private);
    let h_denom = cs::h_denom_pub(&public, 0);
    let coin = EddsaPrivateKey::from_bytes(&[7; 32]);
    let msg = h_coin_pub(&coin.public());
    let nonce = [0x11u8; 32];
    let blind_seed = [0x22u8; 32];

    // POST /csr-withdraw {nonce, denom_pub_hash} → {r_pub_0, r_pub_1}
    let r_pub = cs::r_public(&nonce, cs::R_SEED_WITHDRAW, &private);
    // The wallet blinds h_coin_pub.
    let secrets = cs::blinding_secrets(&blind_seed);
    let (c, r_blind) = cs::blind(&secrets, &r_pub, &public, msg.as_bytes()).expect("blind");
    let h_env = coin_envelope_hash_cs(&h_denom, &nonce, &c);
    let reserve = EddsaPrivateKey::from_bytes(&[8; 32]);
    let withdraw = WithdrawRequestV23 {
        amount_with_fee: a("KUDOS:1.01"),
        h_denom_pub: h_denom,
        h_coin_envelope: h_env,
    };
    let reserve_sig = reserve.sign(&withdraw);
    // The exchange checks the reserve signature and signs the envelope.
    verify(&reserve.public(), &reserve_sig, &withdraw).expect("reserve signature");
    let (b, blind_s) = cs::sign_blinded(&private, cs::R_SEED_WITHDRAW, &nonce, &c);
    assert!(b < 2);
    // A replay gets the same answer.
    assert_eq!(
        cs::sign_blinded(&private, cs::R_SEED_WITHDRAW, &nonce, &c),
        (b, blind_s)
    );
    // The wallet unblinds; the signature verifies on h_coin_pub (as at deposit).
    let (r, s) = cs::unblind_signature(&secrets, &r_blind, b, &blind_s).expect("unblind");
    cs::verify(&public, &r, &s, msg.as_bytes()).expect("coin signature");
    assert!(cs::verify(&public, &r, &s, h_coin_pub(&k(9)).as_bytes()).is_err());
    // Signed under the melt seed, the R values differ from the ones the wallet blinded with.
    let (b_melt, s_melt) = cs::sign_blinded(&private, cs::R_SEED_MELT, &nonce, &c);
    assert_eq!(b_melt, b, "b depends on key and nonce only");
    let (r2, s2) = cs::unblind_signature(&secrets, &r_blind, b_melt, &s_melt).expect("unblind");
    assert!(cs::verify(&public, &r2, &s2, msg.as_bytes()).is_err());
    // Another key does not verify.
    let other = cs::public(&cs::generate_private().expect("key"));
    assert!(cs::verify(&other, &r, &s, msg.as_bytes()).is_err());
}

#[test]
fn rsa_withdraw_chain_and_pub_hash() {
    let key = RsaPrivateKey::generate(1024).expect("key");
    assert_eq!(key.public().pub_hash(), sha512(&key.public().encode()));
    let coin = EddsaPrivateKey::from_bytes(&[7; 32]);
    let msg = h_coin_pub(&coin.public());
    let bks = BlindingKeySecret::from_bytes([3; 32]);
    let blinded = rsa::blind(key.public(), msg.as_bytes(), &bks).expect("blind");
    let blind_sig = rsa::sign_blinded(&key, &blinded).expect("sign");
    assert_eq!(rsa::sign_blinded(&key, &blinded).expect("sign"), blind_sig);
    let sig = rsa::unblind(key.public(), &blind_sig, &bks).expect("unblind");
    rsa::verify(key.public(), msg.as_bytes(), &sig).expect("verify");
    rsa::verify_own_key(key.public(), msg.as_bytes(), &sig).expect("verify");
    assert!(rsa::verify(key.public(), h_coin_pub(&k(1)).as_bytes(), &sig).is_err());
}
