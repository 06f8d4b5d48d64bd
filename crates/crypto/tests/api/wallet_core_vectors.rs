//! Values produced by the GNU Taler wallet's own crypto code (wallet-core, Dec 2022): every record
//! of `wallet-core-derived-vectors.json` is rebuilt from typed inputs and compared byte for byte.

use std::sync::OnceLock;

use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::contract::{canonical_json, h_contract_terms, json_hash, scrub};
use cardcash_crypto::eddsa::EddsaPrivateKey;
use cardcash_crypto::purpose::{
    ContractSig, DenominationValidity, DepositRequestV12, DepositRequestV23, GlobalFees, PaymentOk,
    SignedMessage, WireAccountV12, WireAccountV23, WireFee, WithdrawRequestV12, WithdrawRequestV23,
};
use cardcash_crypto::refresh::{
    fresh_coin, transfer_keypair, transfer_secret_from_coin_key, transfer_secret_from_transfer_key,
};
use cardcash_crypto::rsa::{self, RsaPrivateKey, RsaPublicKey};
use cardcash_crypto::wire::{h_payto, h_wire, h_wire_method};
use cardcash_crypto::{CryptoError, planchet, verify};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, Timestamp, WireSalt,
};
use serde_json::Value;

use crate::support::*;

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| json(WALLET_CORE))
}

fn inputs() -> &'static Value {
    &vectors()["inputs"]
}

fn outputs() -> &'static Value {
    &vectors()["outputs"]
}

fn key(name: &str) -> EddsaPrivateKey {
    EddsaPrivateKey::from_bytes(&field(inputs(), name))
}

fn amount(text: &str) -> Amount {
    text.parse().expect("amount")
}

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn sig(v: &Value, name: &str) -> EddsaSignature {
    EddsaSignature::from_bytes(field(v, name))
}

fn denom_pub() -> RsaPublicKey {
    RsaPublicKey::decode(&bytes(inputs(), "rsa_public_key")).expect("denomination key")
}

fn denom_priv() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        let public = denom_pub();
        let d = decimal_to_be(s(inputs(), "rsa_private_exponent_dec"));
        RsaPrivateKey::from_n_e_d(public.modulus(), public.exponent(), &d)
            .expect("key from n, e, d")
    })
}

fn h_denom() -> HashCode {
    denom_pub().h_denom_pub(0)
}

/// Checks the message bytes, the wallet's signature on them, and that we re-sign identically.
fn check_signed(
    message: &impl SignedMessage,
    record: &Value,
    msg_key: &str,
    sig_key: &str,
    signer: &EddsaPrivateKey,
) {
    check_signed_in(message, record, record, msg_key, sig_key, signer);
}

/// As [`check_signed`], with the message and the signature in different records.
fn check_signed_in(
    message: &impl SignedMessage,
    msg_record: &Value,
    sig_record: &Value,
    msg_key: &str,
    sig_key: &str,
    signer: &EddsaPrivateKey,
) {
    let (record, expected) = (sig_record, unhex(s(msg_record, msg_key)));
    assert_eq!(hex::encode(message.to_bytes()), hex::encode(&expected));
    let signature = sig(record, sig_key);
    verify(&signer.public(), &signature, message).expect("wallet-core signature verifies");
    assert_eq!(signer.sign(message), signature, "Ed25519 is deterministic");
    let tampered = cardcash_crypto::purpose::RawMessage {
        purpose: message.purpose(),
        body: flip(&message.body(), 0),
    };
    assert_eq!(
        verify(&signer.public(), &signature, &tampered),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn crockford() {
    let c = &outputs()["crockford"];
    let hello = b"Hello, GNU Taler";
    assert_eq!(cardcash_util::base32::encode(hello), s(c, "encode_hello"));
    assert_eq!(crock(s(c, "encode_hello")), hello);
    let expected = unhex(s(c, "decode_strict_hex"));
    assert_eq!(expected, unhex(s(c, "decode_lenient_hex")));
    assert_eq!(crock("001111VV"), expected);
    assert_eq!(crock("oOiIlLuU"), expected);
}

#[test]
fn public_keys() {
    for (priv_name, pub_name) in [
        ("reserve_priv", "reserve_pub"),
        ("master_priv", "master_pub"),
        ("merchant_priv", "merchant_pub"),
    ] {
        let expected = EddsaPublicKey::from_bytes(field(outputs(), pub_name));
        assert_eq!(key(priv_name).public(), expected, "{pub_name}");
    }
}

#[test]
fn denomination_key_hash_and_private_key_import() {
    assert_eq!(h_denom().as_bytes(), &field::<64>(outputs(), "h_denom_pub"));
    assert_ne!(denom_pub().h_denom_pub(1), h_denom());
    assert_eq!(denom_priv().public(), &denom_pub());
    // The same key survives the storage format.
    let stored = denom_priv().to_storage_bytes().expect("DER");
    let reloaded = RsaPrivateKey::from_storage_bytes(&stored).expect("reload");
    assert_eq!(reloaded.public(), &denom_pub());
}

#[test]
fn denomination_validity_1025() {
    let master = key("master_priv");
    let msg = DenominationValidity {
        master_pub: master.public(),
        start: ts(1_700_000_000),
        expire_withdraw: ts(1_800_000_000),
        expire_deposit: ts(1_900_000_000),
        expire_legal: ts(2_000_000_000),
        value: amount("KUDOS:1"),
        fee_withdraw: amount("KUDOS:0.01"),
        fee_deposit: amount("KUDOS:0.02"),
        fee_refresh: amount("KUDOS:0.03"),
        fee_refund: amount("KUDOS:0.04"),
        h_denom_pub: h_denom(),
    };
    assert_eq!(msg.to_bytes().len(), DenominationValidity::SIGNED_SIZE);
    let record = &outputs()["denom_validity"];
    check_signed(&msg, record, "msg_hex", "master_sig", &master);
    let cheaper = DenominationValidity {
        fee_withdraw: amount("KUDOS:0"),
        ..msg
    };
    assert!(verify(&master.public(), &sig(record, "master_sig"), &cheaper).is_err());
}

#[test]
fn wire_account_1030_v12() {
    let record = &outputs()["wire_account"];
    let msg = WireAccountV12 {
        h_payto: h_payto(s(record, "payto")),
    };
    check_signed(&msg, record, "msg_hex", "master_sig", &key("master_priv"));
    // v23 kept the account hash: its 1030 body starts with the same 32 bytes.
    let v23 = WireAccountV23::new(
        s(record, "payto"),
        None,
        &serde_json::json!([]),
        &serde_json::json!([]),
    )
    .expect("hashable");
    assert_eq!(v23.to_bytes()[8..40], unhex(s(record, "msg_hex"))[8..]);
}

#[test]
fn wire_fee_1028() {
    let record = &outputs()["wire_fee"];
    let msg = WireFee {
        h_wire_method: h_wire_method(s(record, "method")),
        start: ts(1_700_000_000),
        end: ts(1_800_000_000),
        wire_fee: amount("KUDOS:0.05"),
        closing_fee: amount("KUDOS:0.06"),
    };
    check_signed(&msg, record, "msg_hex", "master_sig", &key("master_priv"));
    let built = WireFee::new(
        s(record, "method"),
        ts(1_700_000_000),
        ts(1_800_000_000),
        amount("KUDOS:0.05"),
        amount("KUDOS:0.06"),
    );
    check_signed(&built, record, "msg_hex", "master_sig", &key("master_priv"));
}

#[test]
fn global_fees_1022() {
    let record = &outputs()["global_fees"];
    let msg = GlobalFees {
        start: ts(1_700_000_000),
        end: ts(1_800_000_000),
        purse_timeout: RelativeTime::from_secs(3600),
        history_expiration: RelativeTime::from_secs(365 * 24 * 3600),
        history_fee: amount("KUDOS:0.1"),
        account_fee: amount("KUDOS:0.2"),
        purse_fee: amount("KUDOS:0.3"),
        purse_account_limit: 5,
    };
    check_signed(&msg, record, "msg_hex", "master_sig", &key("master_priv"));
}

#[test]
fn withdraw_planchets_end_to_end() {
    let seed: [u8; 32] = field(inputs(), "withdraw_secret_seed");
    let planchets = outputs()["planchets"].as_array().expect("planchets");
    assert_eq!(planchets.len(), 2);
    let public = denom_pub();
    let reserve = key("reserve_priv");
    for p in planchets {
        let index = p["coin_index"].as_u64().expect("index") as u32;
        let (coin_priv, bks) = planchet::derive(&seed, index);
        assert_eq!(coin_priv.to_bytes(), field::<32>(p, "coin_priv"));
        assert_eq!(coin_priv.public().as_bytes(), &field::<32>(p, "coin_pub"));
        assert_eq!(bks.as_bytes(), &field::<32>(p, "blinding_key_secret"));

        let h_coin = h_coin_pub(&coin_priv.public());
        assert_eq!(h_coin.as_bytes(), &field::<64>(p, "h_coin_pub"));

        let envelope = rsa::blind(&public, h_coin.as_bytes(), &bks).expect("blind");
        assert_eq!(envelope, bytes(p, "coin_ev_rsa_blinded_planchet"));
        let ev_hash = coin_envelope_hash(&h_denom(), &envelope);
        assert_eq!(ev_hash.as_bytes(), &field::<64>(p, "coin_ev_hash"));
        assert_ne!(coin_envelope_hash(&h_denom(), &flip(&envelope, 0)), ev_hash);

        let msg = WithdrawRequestV12 {
            amount_with_fee: amount("KUDOS:1.01"),
            h_denom_pub: h_denom(),
            h_coin_envelope: ev_hash,
        };
        check_signed(&msg, p, "withdraw_msg_hex", "reserve_sig", &reserve);
        // The v23 exchange checks the same bytes (its layout did not change).
        let v23: WithdrawRequestV23 = msg.clone();
        check_signed(&v23, p, "withdraw_msg_hex", "reserve_sig", &reserve);

        let blind_sig = rsa::sign_blinded(denom_priv(), &envelope).expect("sign");
        assert_eq!(blind_sig, bytes(p, "blinded_rsa_signature"));
        let signature = rsa::unblind(&public, &blind_sig, &bks).expect("unblind");
        assert_eq!(signature, bytes(p, "rsa_signature"));
        rsa::verify(&public, h_coin.as_bytes(), &signature).expect("verify");
        assert!(rsa::verify(&public, &flip(h_coin.as_bytes(), 63), &signature).is_err());
    }
    // Different indices give different coins.
    assert_ne!(
        planchet::derive(&seed, 0).0.to_bytes(),
        planchet::derive(&seed, 1).0.to_bytes()
    );
}

#[test]
fn contract_scrub_and_hash() {
    let c = &outputs()["contract"];
    let input = &c["input_json"];
    let scrubbed = scrub(input).expect("scrub");
    assert_eq!(
        canonical_json(&scrubbed).expect("canonical"),
        s(c, "scrubbed_canonical")
    );
    assert_eq!(
        h_contract_terms(input).expect("hash").as_bytes(),
        &field::<64>(c, "h_contract_terms")
    );
    // A contract without forgettable fields hashes as plain canonical JSON plus NUL.
    let simple: Value = serde_json::from_str(s(c, "simple_json")).expect("json");
    assert_eq!(
        canonical_json(&simple).expect("canonical"),
        s(c, "simple_json")
    );
    assert_eq!(
        h_contract_terms(&simple).expect("hash").as_bytes(),
        &field::<64>(c, "h_contract_terms_without_forgettable_feature")
    );
    assert_eq!(
        json_hash(&simple).expect("hash"),
        h_contract_terms(&simple).expect("hash")
    );
    let reordered: Value =
        serde_json::from_str(r#"{"c":{"z":null,"y":true},"b":1,"a":[1,"x"]}"#).expect("json");
    assert_eq!(
        h_contract_terms(&reordered).expect("hash"),
        h_contract_terms(&simple).expect("hash")
    );
    let changed: Value =
        serde_json::from_str(r#"{"a":[1,"y"],"b":1,"c":{"y":true,"z":null}}"#).expect("json");
    assert_ne!(
        h_contract_terms(&changed).expect("hash"),
        h_contract_terms(&simple).expect("hash")
    );

    // Scrubbing is idempotent and the forgotten hash depends on the salt.
    assert_eq!(scrub(&scrubbed).expect("scrub"), scrubbed);
    let mut resalted = input.clone();
    resalted["$forgettable"]["extra"] = Value::String("SALU".into());
    assert_ne!(
        h_contract_terms(&resalted).expect("hash"),
        h_contract_terms(input).expect("hash")
    );
}

#[test]
fn merchant_wire_hash() {
    let w = &outputs()["h_wire"];
    let salt = WireSalt::from_bytes(field(w, "wire_salt"));
    let expected = field::<64>(w, "h_wire");
    assert_eq!(h_wire(s(w, "payto"), &salt).as_bytes(), &expected);
    let other_salt = WireSalt::from_bytes(flip_n(salt.as_bytes(), 0));
    assert_ne!(h_wire(s(w, "payto"), &other_salt).as_bytes(), &expected);
}

fn contract_hash() -> HashCode {
    HashCode::from_bytes(field(&outputs()["contract"], "h_contract_terms"))
}

#[test]
fn merchant_contract_1101_and_payment_ok_1104() {
    let m = &outputs()["merchant"];
    let merchant = key("merchant_priv");
    let contract = ContractSig {
        h_contract_terms: contract_hash(),
    };
    check_signed(&contract, m, "contract_msg_hex", "contract_sig", &merchant);
    let paid = PaymentOk {
        h_contract_terms: contract_hash(),
    };
    check_signed(&paid, m, "pay_ok_msg_hex", "pay_ok_sig", &merchant);
    // Same body, different purpose: the signatures are not interchangeable.
    assert!(verify(&merchant.public(), &sig(m, "contract_sig"), &paid).is_err());
}

#[test]
fn deposit_permission_1201_v12() {
    let d = &outputs()["deposit"];
    let perm = &d["permission"];
    let seed: [u8; 32] = field(inputs(), "withdraw_secret_seed");
    let (coin_priv, _) = planchet::derive(&seed, 0);
    assert_eq!(
        coin_priv.public().as_bytes(),
        &field::<32>(perm, "coin_pub")
    );
    assert_eq!(field::<64>(perm, "h_denom"), *h_denom().as_bytes());
    let ub_sig = bytes(&perm["ub_sig"], "rsa_signature");
    rsa::verify(
        &denom_pub(),
        h_coin_pub(&coin_priv.public()).as_bytes(),
        &ub_sig,
    )
    .expect("ub_sig");

    let wire = &outputs()["h_wire"];
    let msg = DepositRequestV12 {
        h_contract_terms: contract_hash(),
        h_age_commitment: [0; 32],
        h_policy: HashCode::from_bytes([0; 64]),
        h_wire: h_wire(
            s(wire, "payto"),
            &WireSalt::from_bytes(field(wire, "wire_salt")),
        ),
        h_denom_pub: h_denom(),
        wallet_timestamp: ts(d["timestamp"]["t_s"].as_u64().expect("t_s")),
        refund_deadline: ts(d["refund_deadline"]["t_s"].as_u64().expect("t_s")),
        amount_with_fee: amount(s(perm, "contribution")),
        deposit_fee: amount("KUDOS:0.02"),
        merchant_pub: key("merchant_priv").public(),
    };
    assert_eq!(msg.to_bytes().len(), 392);
    check_signed_in(&msg, d, perm, "msg_hex", "coin_sig", &coin_priv);

    // v23 appends wallet_data_hash (zero when absent) to the same fields; the v12 signature
    // does not verify for it.
    let v23 = DepositRequestV23 {
        h_contract_terms: msg.h_contract_terms,
        h_age_commitment: msg.h_age_commitment,
        h_policy: msg.h_policy,
        h_wire: msg.h_wire,
        h_denom_pub: msg.h_denom_pub,
        wallet_timestamp: msg.wallet_timestamp,
        refund_deadline: msg.refund_deadline,
        amount_with_fee: msg.amount_with_fee,
        deposit_fee: msg.deposit_fee,
        merchant_pub: msg.merchant_pub,
        wallet_data_hash: HashCode::from_bytes([0; 64]),
    };
    let v12_bytes = unhex(s(d, "msg_hex"));
    let v23_bytes = v23.to_bytes();
    assert_eq!(v23_bytes[..4], 456u32.to_be_bytes());
    assert_eq!(v23_bytes[4..392], v12_bytes[4..]);
    assert_eq!(v23_bytes[392..], [0; 64]);
    assert!(verify(&coin_priv.public(), &sig(perm, "coin_sig"), &v23).is_err());
}

#[test]
fn refresh_transfer_keys_secret_and_new_coin() {
    let r = &outputs()["refresh"];
    let session_seed: [u8; 32] = field(r, "session_secret_seed");
    let (transfer_priv, transfer_pub) = transfer_keypair(&session_seed, 0);
    assert_eq!(transfer_priv.to_bytes(), field::<32>(r, "transfer_priv_0"));
    assert_eq!(transfer_pub.as_bytes(), &field::<32>(r, "transfer_pub_0"));
    assert_ne!(transfer_keypair(&session_seed, 1).1, transfer_pub);

    // The melted coin is withdraw planchet 0.
    let seed: [u8; 32] = field(inputs(), "withdraw_secret_seed");
    let (old_coin, _) = planchet::derive(&seed, 0);
    let expected = field::<64>(r, "transfer_secret");
    let wallet_side =
        transfer_secret_from_transfer_key(&transfer_priv, &old_coin.public()).expect("ecdh");
    assert_eq!(wallet_side.as_bytes(), &expected);
    let link_side = transfer_secret_from_coin_key(&old_coin, &transfer_pub).expect("ecdh");
    assert_eq!(link_side.as_bytes(), &expected);

    let nc = &r["new_coin_0"];
    let (coin, bks) = fresh_coin(&wallet_side, 0);
    assert_eq!(coin.to_bytes(), field::<32>(nc, "coinPriv"));
    assert_eq!(coin.public().as_bytes(), &field::<32>(nc, "coinPub"));
    assert_eq!(bks.as_bytes(), &field::<32>(nc, "bks"));
    assert_ne!(fresh_coin(&wallet_side, 1).0.to_bytes(), coin.to_bytes());
}
