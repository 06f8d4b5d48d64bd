//! GNUnet's own test vectors (0.14 and 0.19.3): every record of both files is checked.

use cardcash_crypto::ecdh::{EcdhePrivateKey, ecdh, ecdh_ecdhe_eddsa, ecdh_eddsa_ecdhe};
use cardcash_crypto::eddsa::{EddsaPrivateKey, verify_raw};
use cardcash_crypto::rsa::{self, BlindingKeySecret, RsaPrivateKey, RsaPublicKey};
use cardcash_crypto::{CryptoError, kdf, sha512};
use cardcash_util::{EcdhePublicKey, EddsaPublicKey, EddsaSignature};
use serde_json::Value;

use crate::support::*;

/// Operations we do not implement. None: an unknown operation fails the test.
const NOT_IMPLEMENTED: &[&str] = &[];

fn check_file(text: &str) -> Vec<String> {
    let file = json(text);
    assert_eq!(s(&file, "encoding"), "base32crockford");
    let vectors = file["vectors"].as_array().expect("vectors array");
    assert!(!vectors.is_empty());
    let mut seen = Vec::new();
    for v in vectors {
        let op = s(v, "operation");
        match op {
            "hash" => hash(v),
            "ecc_ecdh" => ecc_ecdh(v),
            "eddsa_key_derivation" => eddsa_key_derivation(v),
            "eddsa_signing" => eddsa_signing(v),
            "kdf" => kdf_vector(v),
            "eddsa_ecdh" => eddsa_ecdh(v),
            "rsa_blind_signing" => rsa_blind_signing(v),
            "edx25519_derive" => edx25519_derive(v),
            "cs_blind_signing" => cs_blind_signing(v),
            other if NOT_IMPLEMENTED.contains(&other) => continue,
            other => panic!("unknown operation {other}"),
        }
        seen.push(op.to_owned());
    }
    seen
}

const CORE_OPS: [&str; 7] = [
    "hash",
    "ecc_ecdh",
    "eddsa_key_derivation",
    "eddsa_signing",
    "kdf",
    "eddsa_ecdh",
    "rsa_blind_signing",
];

#[test]
fn gnunet_0_14_vectors() {
    let seen = check_file(GNUNET_014);
    for op in CORE_OPS {
        assert!(seen.iter().any(|s| s == op), "0.14 file lacks {op}");
    }
}

#[test]
fn gnunet_0_19_3_vectors() {
    let seen = check_file(GNUNET_0193);
    assert!(seen.iter().any(|s| s == "edx25519_derive"));
    assert!(seen.iter().any(|s| s == "cs_blind_signing"));
    for op in CORE_OPS {
        assert!(seen.iter().any(|s| s == op), "0.19.3 file lacks {op}");
    }
}

fn hash(v: &Value) {
    let input = bytes(v, "input");
    let expected = field::<64>(v, "output");
    assert_eq!(sha512(&input).as_bytes(), &expected);
    assert_ne!(sha512(&flip(&input, 0)).as_bytes(), &expected);
}

fn ecc_ecdh(v: &Value) {
    let priv1 = EcdhePrivateKey::from_bytes(field(v, "priv1"));
    let pub1 = EcdhePublicKey::from_bytes(field(v, "pub1"));
    let priv2 = EcdhePrivateKey::from_bytes(field(v, "priv2"));
    let skm = field::<64>(v, "skm");
    assert_eq!(priv1.public(), pub1);
    assert_eq!(ecdh(&priv2, &pub1).expect("ecdh").as_bytes(), &skm);
    assert_eq!(
        ecdh(&priv1, &priv2.public()).expect("ecdh").as_bytes(),
        &skm
    );
    let wrong = EcdhePrivateKey::from_bytes(flip_n(&priv2.to_bytes(), 5));
    assert_ne!(ecdh(&wrong, &pub1).expect("ecdh").as_bytes(), &skm);
}

fn eddsa_key_derivation(v: &Value) {
    let key = EddsaPrivateKey::from_bytes(&field(v, "priv"));
    let public: [u8; 32] = field(v, "pub");
    assert_eq!(key.public().as_bytes(), &public);
    let other = EddsaPrivateKey::from_bytes(&flip_n(&key.to_bytes(), 31));
    assert_ne!(other.public().as_bytes(), &public);
}

fn eddsa_signing(v: &Value) {
    let key = EddsaPrivateKey::from_bytes(&field(v, "priv"));
    let public = EddsaPublicKey::from_bytes(field(v, "pub"));
    let data = bytes(v, "data");
    let sig = EddsaSignature::from_bytes(field(v, "sig"));
    assert_eq!(key.public(), public);
    assert_eq!(key.sign_raw(&data), sig);
    verify_raw(&public, &sig, &data).expect("vector signature verifies");
    assert_eq!(
        verify_raw(&public, &sig, &flip(&data, 0)),
        Err(CryptoError::InvalidSignature)
    );
    let bad_sig = EddsaSignature::from_bytes(flip_n(sig.as_bytes(), 40));
    assert!(verify_raw(&public, &bad_sig, &data).is_err());
}

fn kdf_vector(v: &Value) {
    let out_len = v
        .get("out_len")
        .or_else(|| v.get("out_len %u\n"))
        .and_then(Value::as_u64)
        .expect("out_len") as usize;
    let salt = bytes(v, "salt");
    let ikm = bytes(v, "ikm");
    let ctx = bytes(v, "ctx");
    let expected = bytes(v, "out");
    assert_eq!(expected.len(), out_len);
    assert_eq!(kdf(out_len, &salt, &ikm, &[&ctx]).expect("kdf"), expected);
    // Context chunks are concatenated: splitting `ctx` gives the same output.
    let (a, b) = ctx.split_at(ctx.len() / 2);
    assert_eq!(kdf(out_len, &salt, &ikm, &[a, b]).expect("kdf"), expected);
    assert_ne!(
        kdf(out_len, &flip(&salt, 0), &ikm, &[&ctx]).expect("kdf"),
        expected
    );
    assert_ne!(
        kdf(out_len, &salt, &flip(&ikm, 0), &[&ctx]).expect("kdf"),
        expected
    );
    assert_ne!(
        kdf(out_len, &salt, &ikm, &[&flip(&ctx, 0)]).expect("kdf"),
        expected
    );
}

fn eddsa_ecdh(v: &Value) {
    let priv_ecdhe = EcdhePrivateKey::from_bytes(field(v, "priv_ecdhe"));
    let pub_ecdhe = EcdhePublicKey::from_bytes(field(v, "pub_ecdhe"));
    let priv_eddsa = EddsaPrivateKey::from_bytes(&field(v, "priv_eddsa"));
    let pub_eddsa = EddsaPublicKey::from_bytes(field(v, "pub_eddsa"));
    let km = field::<64>(v, "key_material");
    assert_eq!(priv_ecdhe.public(), pub_ecdhe);
    assert_eq!(priv_eddsa.public(), pub_eddsa);
    assert_eq!(
        ecdh_ecdhe_eddsa(&priv_ecdhe, &pub_eddsa)
            .expect("ecdh")
            .as_bytes(),
        &km
    );
    assert_eq!(
        ecdh_eddsa_ecdhe(&priv_eddsa, &pub_ecdhe)
            .expect("ecdh")
            .as_bytes(),
        &km
    );
    let other = EddsaPrivateKey::from_bytes(&flip_n(&priv_eddsa.to_bytes(), 0));
    assert_ne!(
        ecdh_eddsa_ecdhe(&other, &pub_ecdhe)
            .expect("ecdh")
            .as_bytes(),
        &km
    );
}

fn rsa_blind_signing(v: &Value) {
    let encoded = bytes(v, "rsa_public_key");
    let public = RsaPublicKey::decode(&encoded).expect("public key decodes");
    assert_eq!(public.encode(), encoded);
    let private =
        RsaPrivateKey::from_gcrypt_sexp(&bytes(v, "rsa_private_key")).expect("private key");
    assert_eq!(private.public(), &public);
    let msg = bytes(v, "message_hash");
    let bks = BlindingKeySecret::from_bytes(field(v, "blinding_key_secret"));
    let blinded = bytes(v, "blinded_message");
    let blind_sig = bytes(v, "blinded_sig");
    let sig = bytes(v, "sig");

    assert_eq!(rsa::blind(&public, &msg, &bks).expect("blind"), blinded);
    assert_eq!(
        rsa::blind_own_key(&public, &msg, &bks).expect("blind"),
        blinded
    );
    assert_eq!(
        rsa::sign_blinded(&private, &blinded).expect("sign"),
        blind_sig
    );
    assert_eq!(
        rsa::unblind(&public, &blind_sig, &bks).expect("unblind"),
        sig
    );
    rsa::verify(&public, &msg, &sig).expect("signature verifies");
    rsa::verify_own_key(&public, &msg, &sig).expect("signature verifies");
    assert!(rsa::verify_own_key(&public, &flip(&msg, 1), &sig).is_err());

    assert_eq!(
        rsa::verify(&public, &flip(&msg, 0), &sig),
        Err(CryptoError::InvalidSignature)
    );
    assert_eq!(
        rsa::verify(&public, &msg, &flip(&sig, 10)),
        Err(CryptoError::InvalidSignature)
    );
    let other_bks = BlindingKeySecret::from_bytes(flip_n(bks.as_bytes(), 0));
    assert_ne!(
        rsa::blind(&public, &msg, &other_bks).expect("blind"),
        blinded
    );
    assert_ne!(
        rsa::sign_blinded(&private, &flip(&blinded, 3)).expect("sign"),
        blind_sig
    );
}

fn edx25519_derive(v: &Value) {
    use cardcash_crypto::edx25519::{Edx25519PrivateKey, derive_public};
    let priv1 = Edx25519PrivateKey::from_bytes(&field(v, "priv1_edx"));
    let pub1: [u8; 32] = field(v, "pub1_edx");
    let seed = bytes(v, "seed");
    let priv2: [u8; 64] = field(v, "priv2_edx");
    let pub2: [u8; 32] = field(v, "pub2_edx");
    assert_eq!(priv1.public(), pub1);
    let derived = priv1.derive(&seed);
    assert_eq!(derived.to_bytes(), priv2);
    assert_eq!(derived.public(), pub2);
    assert_eq!(derive_public(&pub1, &seed).expect("derive"), pub2);
    assert_ne!(derive_public(&pub1, &flip(&seed, 0)).expect("derive"), pub2);
    assert_ne!(priv1.derive(&flip(&seed, 63)).to_bytes(), priv2);
}

fn cs_blind_signing(v: &Value) {
    use cardcash_crypto::cs;
    let msg = bytes(v, "message_hash");
    let private: [u8; 32] = field(v, "cs_private_key");
    let public: [u8; 32] = field(v, "cs_public_key");
    let nonce: [u8; 32] = field(v, "cs_nonce");
    assert_eq!(cs::public(&private), public);

    let r = [field::<32>(v, "cs_r_priv_0"), field::<32>(v, "cs_r_priv_1")];
    // The generator derives the nonces with the withdraw seed "rw".
    assert_eq!(cs::r_derive(&nonce, "rw", &private), r);
    assert_ne!(cs::r_derive(&nonce, "rm", &private), r);
    let r_pub = [field::<32>(v, "cs_r_pub_0"), field::<32>(v, "cs_r_pub_1")];
    assert_eq!([cs::public(&r[0]), cs::public(&r[1])], r_pub);

    let secrets = cs::blinding_secrets(&nonce);
    assert_eq!(
        secrets[0],
        (field(v, "cs_bs_alpha_0"), field(v, "cs_bs_beta_0"))
    );
    assert_eq!(
        secrets[1],
        (field(v, "cs_bs_alpha_1"), field(v, "cs_bs_beta_1"))
    );

    let (c, r_blind) = cs::blind(&secrets, &r_pub, &public, &msg).expect("blind");
    assert_eq!(
        r_blind,
        [
            field::<32>(v, "cs_r_pub_blind_0"),
            field::<32>(v, "cs_r_pub_blind_1")
        ]
    );
    assert_eq!(c, [field::<32>(v, "cs_c_0"), field::<32>(v, "cs_c_1")]);

    let (b, blind_s) = cs::sign(&private, &r, &nonce, &c);
    assert_eq!(b.to_le_bytes().to_vec(), bytes(v, "cs_b"));
    assert_eq!(blind_s, field::<32>(v, "cs_blind_s"));
    let s = cs::unblind(&blind_s, &secrets[b as usize].0);
    assert_eq!(s, field::<32>(v, "cs_sig_s"));
    let sig_r: [u8; 32] = field(v, "cs_sig_R");
    assert_eq!(sig_r, r_blind[b as usize]);
    cs::verify(&public, &sig_r, &s, &msg).expect("CS signature verifies");

    // The v23 server helpers give the same values: `/csr-withdraw`'s R pair, the
    // batch-withdraw answer (b, s), and the wallet's unblinding of it.
    assert_eq!(cs::R_SEED_WITHDRAW, "rw");
    assert_eq!(cs::r_public(&nonce, cs::R_SEED_WITHDRAW, &private), r_pub);
    assert_ne!(cs::r_public(&nonce, cs::R_SEED_MELT, &private), r_pub);
    assert_eq!(
        cs::sign_blinded(&private, cs::R_SEED_WITHDRAW, &nonce, &c),
        (b, blind_s)
    );
    assert_eq!(
        cs::unblind_signature(&secrets, &r_blind, b, &blind_s).expect("b is 0 or 1"),
        (sig_r, s)
    );
    assert!(cs::unblind_signature(&secrets, &r_blind, 2, &blind_s).is_err());
    assert!(cs::verify(&public, &sig_r, &s, &flip(&msg, 0)).is_err());
    assert!(cs::verify(&public, &sig_r, &flip_n(&s, 0), &msg).is_err());
}
