//! Criterion benchmarks of the operations that bound exchange throughput: the RSA blind-signing
//! private operation (OpenSSL, which we ship, against the pure-Rust `rsa` crate's hazmat raw
//! operation, kept only for this comparison), RSA verification, Ed25519 sign/verify/batch verify
//! and the canonical-JSON contract hash. Figures go to ARCHITECTURE.md ("Crypto choices and
//! figures").
//!
//! Run: `cargo bench -p cardcash-crypto --bench crypto`
//!
//! The machine is shared by many processes, so wall-clock time says little. Every figure here is
//! the benchmark thread's own CPU time (Linux `/proc/thread-self/schedstat`, nanoseconds, updated
//! at scheduler ticks; samples last long enough for that to average out), i.e. the cost on one
//! core.

use std::hint::black_box;
use std::time::Duration;

use ::rsa::BoxedUint;
use ::rsa::traits::PublicKeyParts;
use cardcash_crypto::contract::h_contract_terms;
use cardcash_crypto::eddsa::{EddsaPrivateKey, verify_raw};
use cardcash_crypto::purpose::{ContractSig, SignedMessage};
use cardcash_crypto::rsa::{self, BlindingKeySecret, RsaPrivateKey};
use cardcash_util::{EddsaPublicKey, EddsaSignature, HashCode};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

const CONTRACT: &str = r#"{"order_id":"2024.001-ABC","summary":"Test order","amount":"KUDOS:0.5",
"max_fee":"KUDOS:0.1","nonce":"NONCE0000000000000000000000000000000000000000000000000",
"extra":{"note":"hello é ✓","n":42},"products":[{"description":"Thing","quantity":1,
"price":"KUDOS:0.5"}],"$forgettable":{"extra":"SALT"}}"#;

/// The same key as a pure-Rust `rsa` crate key (from the PKCS#1 DER we store).
fn rustcrypto_key(key: &RsaPrivateKey) -> ::rsa::RsaPrivateKey {
    let der = key.to_storage_bytes().expect("der");
    let k = openssl::rsa::Rsa::private_key_from_der(&der).expect("der parses");
    let uint = |b: &openssl::bn::BigNumRef| BoxedUint::from_be_slice_vartime(&b.to_vec());
    ::rsa::RsaPrivateKey::from_components(
        uint(k.n()),
        uint(k.e()),
        uint(k.d()),
        vec![uint(k.p().expect("p")), uint(k.q().expect("q"))],
    )
    .expect("rsa crate accepts the key")
}

/// CPU time of the current thread in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("Linux /proc/thread-self/schedstat")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e3, "µs cpu")
        } else {
            (1e6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "ops/s/core"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

type Cpu = Criterion<ThreadCpuTime>;

fn ops_per_second(group: &mut BenchmarkGroup<'_, ThreadCpuTime>) {
    group.throughput(Throughput::Elements(1));
}

fn bench_rsa(c: &mut Cpu, bits: u32) {
    let key = RsaPrivateKey::generate(bits).expect("keygen");
    let public = key.public().clone();
    let bks = BlindingKeySecret::from_bytes([7; 32]);
    let msg = [42u8; 64];
    let blinded = rsa::blind(&public, &msg, &bks).expect("blind");
    let signature = rsa::unblind(
        &public,
        &rsa::sign_blinded(&key, &blinded).expect("sign"),
        &bks,
    )
    .expect("unblind");

    let rc_key = rustcrypto_key(&key);
    let precision = rc_key.n().as_ref().bits_precision();
    let c_uint = BoxedUint::from_be_slice(&blinded, precision).expect("fits");
    let mut rng = rand::rng();
    // Both implementations must compute the same signature.
    let rc_sig =
        ::rsa::hazmat::rsa_decrypt_and_check(&rc_key, Some(&mut rng), &c_uint).expect("rsa crate");
    let rc_bytes = rc_sig.to_be_bytes();
    let first = rc_bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(rc_bytes.len());
    assert_eq!(
        rc_bytes[first..],
        rsa::sign_blinded(&key, &blinded).expect("sign")[..]
    );

    let mut group = c.benchmark_group(format!("rsa{bits}"));
    ops_per_second(&mut group);
    group.bench_function("blind_sign_openssl", |b| {
        b.iter(|| rsa::sign_blinded(&key, black_box(&blinded)).expect("sign"))
    });
    group.bench_function("blind_sign_rsa_crate_hazmat", |b| {
        b.iter(|| {
            ::rsa::hazmat::rsa_decrypt_and_check(&rc_key, Some(&mut rng), black_box(&c_uint))
                .expect("sign")
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| rsa::verify(&public, black_box(&msg), black_box(&signature)).expect("verify"))
    });
    group.bench_function("verify_own_key", |b| {
        b.iter(|| {
            rsa::verify_own_key(&public, black_box(&msg), black_box(&signature)).expect("verify")
        })
    });
    group.bench_function("blind_client", |b| {
        b.iter(|| rsa::blind(&public, black_box(&msg), &bks).expect("blind"))
    });
    group.finish();
}

fn rsa_benches(c: &mut Cpu) {
    bench_rsa(c, 2048);
    bench_rsa(c, 3072);
}

fn ed25519_benches(c: &mut Cpu) {
    let keys: Vec<EddsaPrivateKey> = (0..64u8)
        .map(|i| EddsaPrivateKey::from_bytes(&[i; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            ContractSig {
                h_contract_terms: HashCode::from_bytes([i; 64]),
            }
            .to_bytes()
        })
        .collect();
    let pubs: Vec<EddsaPublicKey> = keys.iter().map(EddsaPrivateKey::public).collect();
    let sigs: Vec<EddsaSignature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign_raw(m)).collect();

    let mut group = c.benchmark_group("ed25519");
    ops_per_second(&mut group);
    group.bench_function("sign", |b| b.iter(|| keys[0].sign_raw(black_box(&msgs[0]))));
    group.bench_function("verify", |b| {
        b.iter(|| verify_raw(&pubs[0], &sigs[0], black_box(&msgs[0])).expect("verify"))
    });
    let items: Vec<_> = (0..64)
        .map(|i| (&pubs[i], &sigs[i], msgs[i].as_slice()))
        .collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("verify_batch_64", |b| {
        b.iter(|| cardcash_crypto::verify_batch(black_box(&items)).expect("batch"))
    });
    group.finish();
}

fn contract_benches(c: &mut Cpu) {
    let contract: serde_json::Value = serde_json::from_str(CONTRACT).expect("json");
    let mut group = c.benchmark_group("contract");
    ops_per_second(&mut group);
    group.bench_function("h_contract_terms", |b| {
        b.iter(|| h_contract_terms(black_box(&contract)).expect("hash"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    targets = rsa_benches, ed25519_benches, contract_benches
}
criterion_main!(benches);
