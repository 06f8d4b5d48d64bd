//! Purpose envelopes: the header layout and the declared size of every builder, plus field
//! placement checks for builders without a wallet-core vector.

use cardcash_crypto::eddsa::EddsaPrivateKey;
use cardcash_crypto::purpose::*;
use cardcash_crypto::{CryptoError, verify};
use cardcash_util::{
    Amount, EcdhePublicKey, EddsaPublicKey, HashCode, RelativeTime, ShortHashCode, Timestamp,
};

fn h(b: u8) -> HashCode {
    HashCode::from_bytes([b; 64])
}
fn sh(b: u8) -> ShortHashCode {
    ShortHashCode::from_bytes([b; 32])
}
fn k(b: u8) -> EddsaPublicKey {
    EddsaPublicKey::from_bytes([b; 32])
}
fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}
fn a(text: &str) -> Amount {
    text.parse().expect("amount")
}

/// Checks header and size, and returns the body.
fn checked(msg: &impl SignedMessage, size: usize, purpose: u32) -> Vec<u8> {
    let bytes = msg.to_bytes();
    assert_eq!(bytes.len(), size, "size of purpose {purpose}");
    assert_eq!(bytes[..4], (size as u32).to_be_bytes(), "size comes first");
    assert_eq!(bytes[4..8], purpose.to_be_bytes(), "then the purpose");
    assert_eq!(msg.purpose(), purpose);
    let body = msg.body();
    assert_eq!(bytes[8..], body[..]);
    body
}

#[test]
fn every_builder_has_its_declared_size_and_header() {
    use purpose_code as p;
    checked(
        &SigningKeyValidity {
            start: t(1),
            expire: t(2),
            end: t(3),
            signkey_pub: k(4),
        },
        SigningKeyValidity::SIGNED_SIZE,
        p::MASTER_SIGNING_KEY_VALIDITY,
    );
    checked(
        &SigningKeyRevocation { exchange_pub: k(1) },
        40,
        p::MASTER_SIGNING_KEY_REVOKED,
    );
    checked(
        &DenominationRevocation { h_denom_pub: h(1) },
        72,
        p::MASTER_DENOMINATION_KEY_REVOKED,
    );
    let v23 = checked(
        &WireAccountV23 {
            h_payto: sh(1),
            h_conversion_url: h(2),
            h_debit_restrictions: h(3),
            h_credit_restrictions: h(4),
        },
        232,
        p::MASTER_WIRE_DETAILS,
    );
    assert_eq!(&v23[..32], &[1; 32]);
    assert_eq!(&v23[160..], &[4; 64]);
    let dc = checked(
        &DepositConfirmationV12 {
            h_contract_terms: h(1),
            h_wire: h(2),
            h_policy: h(3),
            exchange_timestamp: t(4),
            wire_deadline: t(5),
            refund_deadline: t(6),
            amount_without_fee: a("KUDOS:1.5"),
            coin_pub: k(7),
            merchant_pub: k(8),
        },
        312,
        p::EXCHANGE_CONFIRM_DEPOSIT,
    );
    assert_eq!(&dc[192..200], &4_000_000u64.to_be_bytes());
    assert_eq!(&dc[216..240], &a("KUDOS:1.5").to_nbo());
    assert_eq!(&dc[240..272], &[7; 32]);
    assert_eq!(&dc[272..], &[8; 32]);
    checked(
        &DepositConfirmationV23 {
            h_contract_terms: h(1),
            h_wire: h(2),
            h_policy: h(3),
            exchange_timestamp: t(4),
            wire_deadline: t(5),
            refund_deadline: t(6),
            total_without_fee: a("KUDOS:1"),
            h_coin_sigs: h(7),
            merchant_pub: k(8),
        },
        DepositConfirmationV23::SIGNED_SIZE,
        p::EXCHANGE_CONFIRM_DEPOSIT,
    );
    let mc = checked(
        &MeltConfirmation {
            rc: h(1),
            noreveal_index: 2,
        },
        76,
        p::EXCHANGE_CONFIRM_MELT,
    );
    assert_eq!(&mc[64..], &[0, 0, 0, 2]);
    checked(
        &KeySet {
            list_issue_date: t(1),
            hc: h(2),
        },
        80,
        p::EXCHANGE_KEY_SET,
    );
    checked(
        &ConfirmWire {
            h_wire: h(1),
            h_contract_terms: h(2),
            wtid: [3; 32],
            coin_pub: k(4),
            execution_time: t(5),
            coin_contribution: a("KUDOS:1"),
        },
        232,
        p::EXCHANGE_CONFIRM_WIRE,
    );
    checked(
        &WireDepositConfirmation {
            total: a("KUDOS:1"),
            wire_fee: a("KUDOS:0.1"),
            merchant_pub: k(1),
            h_payto: sh(2),
            h_details: h(3),
        },
        184,
        p::EXCHANGE_CONFIRM_WIRE_DEPOSIT,
    );
    let detail = WireDepositDetail {
        h_contract_terms: h(1),
        execution_time: t(2),
        coin_pub: k(3),
        deposit_value: a("KUDOS:1"),
        deposit_fee: a("KUDOS:0.01"),
    };
    assert_eq!(detail.to_bytes().len(), 152);
    let rc = checked(
        &RefundConfirmation {
            h_contract_terms: h(1),
            coin_pub: k(2),
            merchant_pub: k(3),
            rtransaction_id: 0x0102_0304_0506_0708,
            refund_amount: a("KUDOS:1"),
        },
        168,
        p::EXCHANGE_CONFIRM_REFUND,
    );
    assert_eq!(&rc[128..136], &[1, 2, 3, 4, 5, 6, 7, 8]);
    checked(
        &RecoupConfirmation {
            timestamp: t(1),
            recoup_amount: a("KUDOS:1"),
            coin_pub: k(2),
            reserve_pub: k(3),
        },
        104,
        p::EXCHANGE_CONFIRM_RECOUP,
    );
    checked(
        &RecoupRefreshConfirmation {
            timestamp: t(1),
            recoup_amount: a("KUDOS:1"),
            coin_pub: k(2),
            old_coin_pub: k(3),
        },
        104,
        p::EXCHANGE_CONFIRM_RECOUP_REFRESH,
    );
    checked(
        &ReserveClosed {
            timestamp: t(1),
            closing_amount: a("KUDOS:1"),
            closing_fee: a("KUDOS:0.1"),
            reserve_pub: k(2),
            h_payto: sh(3),
            wtid: [4; 32],
        },
        160,
        p::EXCHANGE_RESERVE_CLOSED,
    );
    checked(
        &DenominationUnknown {
            timestamp: t(1),
            h_denom_pub: h(2),
        },
        80,
        p::EXCHANGE_AFFIRM_DENOM_UNKNOWN,
    );
    let de = checked(
        &DenominationExpired {
            timestamp: t(1),
            operation: operation_name("withdraw-long"),
            h_denom_pub: h(2),
        },
        88,
        p::EXCHANGE_AFFIRM_DENOM_EXPIRED,
    );
    assert_eq!(&de[8..16], b"withdraw");
    assert_eq!(operation_name("melt"), *b"melt\0\0\0\0");
    checked(
        &MerchantRefund {
            h_contract_terms: h(1),
            coin_pub: k(2),
            rtransaction_id: 3,
            refund_amount: a("KUDOS:1"),
        },
        136,
        p::MERCHANT_REFUND,
    );
    checked(
        &TrackTransaction {
            h_contract_terms: h(1),
            h_wire: h(2),
            coin_pub: k(3),
        },
        168,
        p::MERCHANT_TRACK_TRANSACTION,
    );
    checked(
        &TrackTransactionWallet {
            h_contract_terms: h(1),
            h_wire: h(2),
            merchant_pub: k(3),
            coin_pub: k(4),
        },
        200,
        p::MERCHANT_TRACK_TRANSACTION,
    );
    let v23 = checked(
        &DepositRequestV23 {
            h_contract_terms: h(1),
            h_age_commitment: [0; 32],
            h_policy: h(0),
            h_wire: h(2),
            h_denom_pub: h(3),
            wallet_timestamp: t(4),
            refund_deadline: t(5),
            amount_with_fee: a("KUDOS:1"),
            deposit_fee: a("KUDOS:0.1"),
            merchant_pub: k(6),
            wallet_data_hash: h(7),
        },
        456,
        p::WALLET_COIN_DEPOSIT,
    );
    assert_eq!(&v23[384..], &[7; 64]);
    checked(
        &Melt {
            rc: h(1),
            h_denom_pub: h(2),
            h_age_commitment: [0; 32],
            amount_with_fee: a("KUDOS:1"),
            melt_fee: a("KUDOS:0.1"),
        },
        216,
        p::WALLET_COIN_MELT,
    );
    checked(
        &Recoup {
            h_denom_pub: h(1),
            coin_bks: [2; 32],
        },
        104,
        p::WALLET_COIN_RECOUP,
    );
    checked(
        &RecoupRefresh {
            h_denom_pub: h(1),
            coin_bks: [2; 32],
        },
        104,
        p::WALLET_COIN_RECOUP_REFRESH,
    );
    checked(
        &Link {
            h_denom_pub: h(1),
            transfer_pub: EcdhePublicKey::from_bytes([2; 32]),
            h_age_commitment: [0; 32],
            coin_envelope_hash: h(3),
        },
        200,
        p::WALLET_COIN_LINK,
    );
    checked(
        &GlobalFees {
            start: t(1),
            end: t(2),
            purse_timeout: RelativeTime::from_secs(3),
            history_expiration: RelativeTime::from_secs(4),
            history_fee: a("KUDOS:1"),
            account_fee: a("KUDOS:1"),
            purse_fee: a("KUDOS:1"),
            purse_account_limit: 5,
        },
        GlobalFees::SIGNED_SIZE,
        p::MASTER_GLOBAL_FEES,
    );
}

#[test]
fn raw_messages_sign_like_typed_ones() {
    let key = EddsaPrivateKey::from_bytes(&[9; 32]);
    let typed = PaymentOk {
        h_contract_terms: h(5),
    };
    let raw = RawMessage {
        purpose: purpose_code::MERCHANT_PAYMENT_OK,
        body: vec![5; 64],
    };
    assert_eq!(typed.to_bytes(), raw.to_bytes());
    let sig = key.sign(&typed);
    verify(&key.public(), &sig, &raw).expect("same bytes, same signature");
    assert_eq!(envelope(7, &[]), vec![0, 0, 0, 8, 0, 0, 0, 7]);
}

#[test]
fn batch_verification_accepts_good_and_rejects_one_bad() {
    let keys: Vec<EddsaPrivateKey> = (0..8u8)
        .map(|i| EddsaPrivateKey::from_bytes(&[i; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            ContractSig {
                h_contract_terms: h(i),
            }
            .to_bytes()
        })
        .collect();
    let pubs: Vec<EddsaPublicKey> = keys.iter().map(EddsaPrivateKey::public).collect();
    let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign_raw(m)).collect();
    let items: Vec<_> = (0..8)
        .map(|i| (&pubs[i], &sigs[i], msgs[i].as_slice()))
        .collect();
    cardcash_crypto::verify_batch(&items).expect("all good");
    let mut bad = items.clone();
    bad[3].2 = msgs[4].as_slice();
    let err = cardcash_crypto::verify_batch(&bad).expect_err("item 3 is bad");
    assert_eq!((err.index, err.error), (3, CryptoError::InvalidSignature));
    let not_a_point = EddsaPublicKey::from_bytes([0xff; 32]);
    let mut bad_key = items;
    bad_key[0].0 = &not_a_point;
    let err = cardcash_crypto::verify_batch(&bad_key).expect_err("item 0 is bad");
    assert_eq!(err.index, 0);
    assert!(matches!(err.error, CryptoError::InvalidPublicKey(_)));
}

#[test]
fn private_keys_never_print() {
    let key = EddsaPrivateKey::from_bytes(&[0xab; 32]);
    let printed = format!("{key:?}");
    assert!(
        !printed.to_lowercase().contains("ab, ") && !printed.contains("171"),
        "{printed}"
    );
    assert!(printed.contains("redacted"));
}
