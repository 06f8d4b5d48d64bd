//! The wallet's own CPU work per withdrawn coin, next to the exchange's blind signature of it:
//! deriving a planchet from the group seed (coin key, blinding, the reserve's signature) and
//! unblinding and verifying the exchange's answer, for RSA-2048 and Clause-Schnorr
//! denominations. Wall-clock time on whatever the machine does meanwhile: compare the lines
//! with each other, not with other runs.
//!
//! Run: `cargo bench -p cardcash-wallet --bench withdraw`

use std::hint::black_box;

use cardcash_api::exchange::{BlindedDenominationSignature, CoinEnvelope, CsScalar};
use cardcash_crypto::{EddsaPrivateKey, cs, rsa};
use cardcash_util::{Amount, Base32Bytes, Timestamp};
use cardcash_wallet::denom::{Denom, DenomKey};
use cardcash_wallet::planchet::{Planchet, cs_nonce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn denom(key: DenomKey, h: cardcash_util::HashCode) -> Denom {
    let chf = |s: &str| -> Amount { format!("CHF:{s}").parse().expect("amount") };
    Denom {
        h_denom_pub: h,
        value: chf("1"),
        fee_withdraw: chf("0.01"),
        fee_deposit: chf("0"),
        fee_refresh: chf("0"),
        fee_refund: chf("0"),
        key,
        stamp_start: Timestamp::now(),
        stamp_expire_withdraw: Timestamp::now(),
        stamp_expire_deposit: Timestamp::now(),
    }
}

fn rsa_coins(c: &mut Criterion) {
    let key = rsa::RsaPrivateKey::generate(2048).expect("key");
    let d = denom(
        DenomKey::Rsa(key.public().clone()),
        key.public().h_denom_pub(0),
    );
    let reserve = EddsaPrivateKey::generate().expect("reserve");
    let seed = [3u8; 32];
    let p = Planchet::derive(&seed, 0, &d, &reserve, None).expect("planchet");
    let CoinEnvelope::Rsa {
        rsa_blinded_planchet,
    } = &p.request.coin_ev
    else {
        unreachable!("an RSA denomination gives an RSA envelope")
    };
    let blind_sig = rsa::sign_blinded(&key, rsa_blinded_planchet.as_bytes()).expect("sign");
    let answer = BlindedDenominationSignature::Rsa {
        blinded_rsa_signature: Base32Bytes::from_bytes(blind_sig),
    };
    let mut g = c.benchmark_group("withdraw RSA-2048 coin");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u32;
    g.bench_function("wallet: derive planchet", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(Planchet::derive(&seed, i, &d, &reserve, None).expect("planchet"))
        })
    });
    g.bench_function("wallet: unblind + verify", |b| {
        b.iter(|| black_box(p.unblind(&answer).expect("a valid coin")))
    });
    g.bench_function("exchange: blind signature", |b| {
        b.iter(|| black_box(rsa::sign_blinded(&key, rsa_blinded_planchet.as_bytes())))
    });
    g.finish();
}

fn cs_coins(c: &mut Criterion) {
    let private = cs::generate_private().expect("key");
    let public = cs::public(&private);
    let d = denom(DenomKey::Cs(public), cs::h_denom_pub(&public, 0));
    let reserve = EddsaPrivateKey::generate().expect("reserve");
    let seed = [4u8; 32];
    let nonce = cs_nonce(&seed, 0);
    let r_pub = cs::r_public(&nonce, cs::R_SEED_WITHDRAW, &private);
    let p = Planchet::derive(&seed, 0, &d, &reserve, Some(r_pub)).expect("planchet");
    let CoinEnvelope::Cs {
        cs_blinded_c0,
        cs_blinded_c1,
        ..
    } = &p.request.coin_ev
    else {
        unreachable!("a CS denomination gives a CS envelope")
    };
    let blinded = [*cs_blinded_c0.as_bytes(), *cs_blinded_c1.as_bytes()];
    let (bit, s) = cs::sign_blinded(&private, cs::R_SEED_WITHDRAW, &nonce, &blinded);
    let answer = BlindedDenominationSignature::Cs {
        b: bit,
        s: CsScalar::from_bytes(s),
    };
    let mut g = c.benchmark_group("withdraw CS coin");
    g.throughput(Throughput::Elements(1));
    g.bench_function("wallet: derive planchet", |b| {
        b.iter(|| {
            black_box(Planchet::derive(&seed, 0, &d, &reserve, Some(r_pub)).expect("planchet"))
        })
    });
    g.bench_function("wallet: unblind + verify", |b| {
        b.iter(|| black_box(p.unblind(&answer).expect("a valid coin")))
    });
    g.bench_function("exchange: blind signature", |b| {
        b.iter(|| {
            black_box(cs::sign_blinded(
                &private,
                cs::R_SEED_WITHDRAW,
                &nonce,
                &blinded,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, rsa_coins, cs_coins);
criterion_main!(benches);
