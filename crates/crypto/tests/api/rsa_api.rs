//! RSA: bad input gives typed errors, keys survive storage, and blind → sign → unblind → verify
//! holds for arbitrary messages (property test with one cached key).

use std::sync::OnceLock;

use cardcash_crypto::CryptoError;
use cardcash_crypto::rsa::{self, BlindingKeySecret, RsaPrivateKey, RsaPublicKey};
use proptest::prelude::*;

fn key() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| RsaPrivateKey::generate(1024).expect("keygen"))
}

#[test]
fn public_key_decoding_rejects_malformed_input() {
    let good = key().public().encode();
    assert_eq!(RsaPublicKey::decode(&good).expect("good"), *key().public());
    assert_eq!(&good[..4], &[0, 128, 0, 3], "1024-bit modulus, e = 65537");
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0, 1],
        vec![0, 1, 0, 1, 3],
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
    ];
    // Leading zero in the modulus (non-minimal encoding).
    let mut padded = vec![0, 129, 0, 3, 0];
    padded.extend_from_slice(&good[4..]);
    cases.push(padded);
    // Even modulus.
    let mut even = good.clone();
    even[4 + 127] &= 0xfe;
    cases.push(even);
    // Exponent 1.
    cases.push(vec![0, 1, 0, 1, 15, 1]);
    for bad in cases {
        assert!(
            matches!(
                RsaPublicKey::decode(&bad),
                Err(CryptoError::InvalidPublicKey(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn private_operations_reject_inputs_not_below_the_modulus() {
    let n = key().public().modulus().to_vec();
    assert_eq!(
        rsa::sign_blinded(key(), &n),
        Err(CryptoError::RsaInputTooLarge)
    );
    let longer = [&[1u8][..], &n].concat();
    assert_eq!(
        rsa::sign_blinded(key(), &longer),
        Err(CryptoError::RsaInputTooLarge)
    );
    let bks = BlindingKeySecret::from_bytes([1; 32]);
    assert_eq!(
        rsa::unblind(key().public(), &n, &bks),
        Err(CryptoError::RsaInputTooLarge)
    );
    assert_eq!(
        rsa::verify(key().public(), b"m", &n),
        Err(CryptoError::InvalidSignature)
    );
    assert_eq!(
        rsa::verify(key().public(), b"m", &[]),
        Err(CryptoError::InvalidSignature)
    );
    let padded_n = [&[0u8, 0][..], &n].concat();
    assert_eq!(
        rsa::sign_blinded(key(), &padded_n),
        Err(CryptoError::RsaInputTooLarge)
    );
    // n − 1 is the largest input; (n − 1)^d = n − 1 for odd d.
    let mut n_minus_1 = n.clone();
    *n_minus_1.last_mut().expect("non-empty") -= 1; // n is odd
    assert_eq!(
        rsa::sign_blinded(key(), &n_minus_1).expect("below n"),
        n_minus_1
    );
    // Leading zeros are accepted on input; output is minimal.
    let bm = rsa::blind(key().public(), b"msg", &bks).expect("blind");
    let padded = [&[0u8, 0][..], &bm].concat();
    assert_eq!(
        rsa::sign_blinded(key(), &padded).expect("sign"),
        rsa::sign_blinded(key(), &bm).expect("sign")
    );
}

/// `sign_blinded` spreads threads over independent OpenSSL copies of the key: every thread, more
/// threads than copies included, gets the same deterministic signature, and it unblinds.
#[test]
fn signing_from_many_threads_gives_the_same_signatures() {
    let bks = BlindingKeySecret::from_bytes([4; 32]);
    let msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 64]).collect();
    let blinded: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| rsa::blind(key().public(), m, &bks).expect("blind"))
        .collect();
    let expected: Vec<Vec<u8>> = blinded
        .iter()
        .map(|b| rsa::sign_blinded(key(), b).expect("sign"))
        .collect();
    let threads = 2 * std::thread::available_parallelism().map_or(2, usize::from) + 3;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    blinded
                        .iter()
                        .map(|b| rsa::sign_blinded(key(), b).expect("sign"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), expected);
        }
    });
    for (m, s) in msgs.iter().zip(&expected) {
        let sig = rsa::unblind(key().public(), s, &bks).expect("unblind");
        rsa::verify(key().public(), m, &sig).expect("verify");
    }
}

#[test]
fn private_key_storage_round_trip_and_garbage() {
    let der = key().to_storage_bytes().expect("der");
    let back = RsaPrivateKey::from_storage_bytes(&der).expect("reload");
    assert_eq!(back.public(), key().public());
    let bm = rsa::blind(
        key().public(),
        b"x",
        &BlindingKeySecret::from_bytes([7; 32]),
    )
    .expect("blind");
    assert_eq!(rsa::sign_blinded(&back, &bm), rsa::sign_blinded(key(), &bm));
    for garbage in [&b""[..], b"\x30\x03\x02\x01\x00", &der[..der.len() / 2]] {
        assert!(matches!(
            RsaPrivateKey::from_storage_bytes(garbage),
            Err(CryptoError::InvalidPrivateKey(_))
        ));
    }
    assert!(matches!(
        RsaPrivateKey::from_gcrypt_sexp(b"(private-key)"),
        Err(CryptoError::InvalidPrivateKey(_))
    ));
    assert!(matches!(
        RsaPrivateKey::from_gcrypt_sexp(b"\xff\xfe"),
        Err(CryptoError::InvalidPrivateKey(_))
    ));
    assert!(matches!(
        RsaPrivateKey::generate(512),
        Err(CryptoError::InvalidPrivateKey(_))
    ));
    assert!(format!("{:?}", key()).contains("redacted"));
}

#[test]
fn n_e_d_import_recovers_the_primes() {
    // Re-import our own key from n, e, d only; the recovered key signs identically.
    let der = key().to_storage_bytes().expect("der");
    let pem_free = openssl::rsa::Rsa::private_key_from_der(&der).expect("openssl parses our DER");
    let d = pem_free.d().to_vec();
    let public = key().public();
    let again = RsaPrivateKey::from_n_e_d(public.modulus(), public.exponent(), &d).expect("factor");
    let bm = rsa::blind(public, b"y", &BlindingKeySecret::from_bytes([3; 32])).expect("blind");
    assert_eq!(
        rsa::sign_blinded(&again, &bm),
        rsa::sign_blinded(key(), &bm)
    );
    let wrong_d = [d.as_slice(), &[1]].concat();
    assert!(RsaPrivateKey::from_n_e_d(public.modulus(), public.exponent(), &wrong_d).is_err());
}

#[test]
fn malicious_modulus_is_detected() {
    // FDH values of a tiny composite modulus often share a factor with it.
    let evil = RsaPublicKey::from_components(&[15], &[3]).expect("syntactically fine");
    let hits = (0u8..64)
        .filter(|i| rsa::fdh(&evil, &[*i]) == Err(CryptoError::MaliciousRsaKey))
        .count();
    assert!(hits > 0, "gcd check never fired");
    // Exactly the values sharing a factor with n are refused (the check is an inversion).
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    for i in 0u8..64 {
        let m = cardcash_crypto::kdf_mod(&[15], &evil.encode(), &[i], b"RSA-FDA FTpsW!")
            .expect("kdf_mod");
        let m = m.iter().fold(0u64, |acc, b| acc * 256 + u64::from(*b));
        assert_eq!(
            rsa::fdh(&evil, &[i]).is_err(),
            gcd(m, 15) != 1,
            "FDH value {m} for input {i}"
        );
    }
}

#[test]
fn kdf_mod_output_is_below_the_modulus_and_rejects_zero() {
    let n = key().public().modulus();
    for i in 0..32u8 {
        let r = cardcash_crypto::kdf_mod(n, b"salt", &[i], b"info").expect("kdf_mod");
        assert_eq!(r.len(), n.len());
        assert!(r.as_slice() < n);
    }
    assert!(cardcash_crypto::kdf_mod(&[0, 0], b"s", b"i", b"x").is_err());
    assert!(cardcash_crypto::kdf(8161, b"", b"", &[]).is_err());
    assert_eq!(
        cardcash_crypto::kdf(8160, b"", b"", &[])
            .expect("max")
            .len(),
        8160
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn blind_sign_unblind_verify_round_trip(msg in proptest::collection::vec(any::<u8>(), 0..100), bks in any::<[u8; 32]>()) {
        let public = key().public();
        let bks = BlindingKeySecret::from_bytes(bks);
        let blinded = rsa::blind(public, &msg, &bks).expect("blind");
        prop_assert!(blinded.first() != Some(&0), "minimal encoding");
        prop_assert_eq!(&rsa::blind_own_key(public, &msg, &bks).expect("blind"), &blinded);
        let blind_sig = rsa::sign_blinded(key(), &blinded).expect("sign");
        let sig = rsa::unblind(public, &blind_sig, &bks).expect("unblind");
        prop_assert!(rsa::verify(public, &msg, &sig).is_ok());
        prop_assert!(rsa::verify_own_key(public, &msg, &sig).is_ok());
        let mut other = msg.clone();
        other.push(0);
        prop_assert_eq!(rsa::verify(public, &other, &sig), Err(CryptoError::InvalidSignature));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Untrusted key bytes never panic: they parse or give a typed error.
    #[test]
    fn key_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(public) = RsaPublicKey::decode(&bytes) {
            prop_assert_eq!(public.encode(), bytes.clone());
        }
        prop_assert!(RsaPrivateKey::from_storage_bytes(&bytes).is_err());
        let _ = RsaPrivateKey::from_gcrypt_sexp(&bytes);
    }

    #[test]
    fn sexp_like_text_never_panics(text in "[()0-9:#a-f npqedu-]{0,80}") {
        let _ = RsaPrivateKey::from_gcrypt_sexp(text.as_bytes());
    }
}
