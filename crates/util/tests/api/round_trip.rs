//! Round trips and arithmetic laws.

use cardcash_util::amount::{FRAC_BASE, MAX_VALUE};
use cardcash_util::{
    Amount, AmountError, Currency, EddsaPublicKey, LibtoolVersion, PaytoUri, RelativeTime,
    TalerConfig, TalerUri, Timestamp, base32,
};
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = Currency> {
    "[A-Z]{1,11}".prop_map(|c| Currency::new(&c).expect("generated currency is valid"))
}

fn amount_in(cur: Currency) -> impl Strategy<Value = Amount> {
    (0..=MAX_VALUE, 0..FRAC_BASE).prop_map(move |(v, f)| Amount::new(cur, v, f).expect("in range"))
}

fn amount() -> impl Strategy<Value = Amount> {
    currency().prop_flat_map(amount_in)
}

fn small_amount_pair() -> impl Strategy<Value = (Amount, Amount)> {
    currency().prop_flat_map(|c| (amount_in(c), amount_in(c)))
}

proptest! {
    #[test]
    fn amount_text_round_trip(a in amount()) {
        let text = a.to_string();
        prop_assert_eq!(text.parse::<Amount>().unwrap(), a);
        // Canonical: no trailing zeros, no bare dot.
        prop_assert!(!text.ends_with('.'));
        if text.contains('.') {
            prop_assert!(!text.ends_with('0'));
        }
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
    }

    #[test]
    fn amount_padded_text_parses_equal(a in amount(), zeros in 0usize..4) {
        let frac = format!("{:08}", a.fraction());
        let trimmed = frac.trim_end_matches('0');
        let padded = format!("{}{}", trimmed, "0".repeat(zeros));
        if !padded.is_empty() && padded.len() <= 8 {
            let text = format!("{}:{}.{}", a.currency(), a.value(), padded);
            prop_assert_eq!(text.parse::<Amount>().unwrap(), a);
        }
    }

    #[test]
    fn amount_nbo_round_trip(a in amount()) {
        let nbo = a.to_nbo();
        prop_assert_eq!(&nbo[..8], &a.value().to_be_bytes()[..]);
        prop_assert_eq!(Amount::from_nbo(&nbo).unwrap(), a);
    }

    #[test]
    fn add_sub_inverse((a, b) in small_amount_pair()) {
        let max_units = u128::from(MAX_VALUE) * u128::from(FRAC_BASE) + u128::from(FRAC_BASE - 1);
        match a.checked_add(&b) {
            Ok(sum) => {
                prop_assert_eq!(sum.to_units(), a.to_units() + b.to_units());
                prop_assert_eq!(sum.checked_sub(&b).unwrap(), a);
                prop_assert_eq!(sum.checked_sub(&a).unwrap(), b);
                prop_assert!(sum >= a && sum >= b);
            }
            Err(e) => {
                prop_assert_eq!(e, AmountError::OutOfRange);
                prop_assert!(a.to_units() + b.to_units() > max_units);
            }
        }
        match a.checked_sub(&b) {
            Ok(diff) => prop_assert_eq!(diff.checked_add(&b).unwrap(), a),
            Err(e) => {
                prop_assert_eq!(e, AmountError::Negative);
                prop_assert!(a < b);
            }
        }
    }

    #[test]
    fn mul_matches_units(a in amount(), k in 0u64..1_000_000) {
        match a.checked_mul(k) {
            Ok(p) => prop_assert_eq!(p.to_units(), a.to_units() * u128::from(k)),
            Err(e) => prop_assert_eq!(e, AmountError::OutOfRange),
        }
    }

    #[test]
    fn currencies_never_compare((a, b) in (amount(), amount())) {
        if a.currency() != b.currency() {
            prop_assert_eq!(a.partial_cmp(&b), None);
            prop_assert!(a.checked_add(&b).is_err());
        }
    }

    #[test]
    fn base32_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = base32::encode(&bytes);
        prop_assert_eq!(text.len(), (bytes.len() * 8).div_ceil(5));
        prop_assert_eq!(base32::decode(&text).unwrap(), bytes.clone());
        prop_assert_eq!(base32::decode(&text.to_lowercase()).unwrap(), bytes.clone());
        // Taler's lenient letters: 0 may be written O, 1 as I or L, V as U.
        let lenient: String = text
            .chars()
            .map(|c| match c { '0' => 'o', '1' => 'L', 'V' => 'u', other => other })
            .collect();
        prop_assert_eq!(base32::decode(&lenient).unwrap(), bytes);
    }

    #[test]
    fn base32_fixed_round_trip(bytes in any::<[u8; 32]>()) {
        let key = EddsaPublicKey::from_bytes(bytes);
        prop_assert_eq!(key.to_string().parse::<EddsaPublicKey>().unwrap(), key);
        prop_assert_eq!(base32::decode_fixed::<32>(&key.to_string()).unwrap(), bytes);
        prop_assert!(base32::decode_fixed::<64>(&key.to_string()).is_err());
    }

    #[test]
    fn timestamp_json_round_trip(secs in 0u64..=u64::MAX / 1_000_000 - 1) {
        let t = Timestamp::from_secs(secs);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        prop_assert_eq!(Timestamp::from_nbo(t.to_nbo()), t);
    }

    #[test]
    fn relative_time_round_trips(us in 0u64..u64::MAX) {
        let d = RelativeTime::from_micros(us);
        let json = serde_json::to_string(&d).unwrap();
        prop_assert_eq!(serde_json::from_str::<RelativeTime>(&json).unwrap(), d);
        prop_assert_eq!(RelativeTime::parse_duration(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn version_round_trip(c in any::<u32>(), r in any::<u32>(), a in any::<u32>()) {
        let v = LibtoolVersion::new(c, r, a);
        prop_assert_eq!(v.to_string().parse::<LibtoolVersion>().unwrap(), v);
        prop_assert!(v.is_compatible(&v));
    }

    #[test]
    fn pay_uri_round_trip(
        host in "[a-z][a-z0-9]{0,10}(\\.[a-z]{2,5})?(:[1-9][0-9]{0,3})?",
        path in proptest::collection::vec("[a-z0-9_-]{1,8}", 0..3),
        order in "[A-Za-z0-9 ._~/?#%-]{1,20}",
        session in "[A-Za-z0-9._-]{0,10}",
        claim in proptest::option::of("[A-Z0-9]{1,16}"),
        http in any::<bool>(),
    ) {
        let scheme = if http { "http" } else { "https" };
        let base = format!("{scheme}://{host}/{}", path.iter().map(|p| format!("{p}/")).collect::<String>());
        let uri = TalerUri::Pay {
            merchant_base: base.parse().unwrap(),
            order_id: order,
            session_id: session,
            claim_token: claim,
            nonce: None,
        };
        let text = uri.to_string();
        let expected_prefix = if http { "taler+http://pay/" } else { "taler://pay/" };
        prop_assert!(text.starts_with(expected_prefix));
        prop_assert_eq!(text.parse::<TalerUri>().unwrap(), uri);
    }

    #[test]
    fn withdraw_uri_round_trip(
        host in "[a-z][a-z0-9]{0,10}(:[1-9][0-9]{0,3})?",
        path in proptest::collection::vec("[a-z0-9_-]{1,8}", 0..3),
        wopid in "[A-Za-z0-9 ._~%/-]{1,36}",
        ext in any::<bool>(),
    ) {
        let base = format!("https://{host}/{}", path.iter().map(|p| format!("{p}/")).collect::<String>());
        let uri = TalerUri::Withdraw { bank_integration_base: base.parse().unwrap(), wopid, external_confirmation: ext };
        let text = uri.to_string();
        prop_assert!(!text.split('?').next().unwrap_or_default().ends_with('/'));
        prop_assert_eq!(text.parse::<TalerUri>().unwrap(), uri);
    }

    #[test]
    fn payto_round_trip(
        host in "[a-z][a-z0-9.]{0,12}",
        account in "[A-Za-z0-9 ._~%/?&=+-]{1,20}",
        name in proptest::option::of("[A-Za-z0-9 ._~%/?&=+äé-]{0,20}"),
    ) {
        let x = PaytoUri::x_taler_bank(&host, "acct", name.as_deref()).unwrap();
        prop_assert_eq!(x.to_string().parse::<PaytoUri>().unwrap(), x.clone());
        let c = PaytoUri::card_transaction(&host, &account).unwrap();
        prop_assert_eq!(c.to_string().parse::<PaytoUri>().unwrap(), c);
        if let Some(n) = name {
            prop_assert_eq!(x.receiver_name(), Some(n.as_str()));
        }
    }

    #[test]
    fn config_ini_round_trip(
        entries in proptest::collection::vec(("[a-z][a-z0-9-]{0,8}", "[A-Z][A-Z0-9_]{0,8}", "[ -~]{0,20}"), 0..12),
    ) {
        let mut cfg = TalerConfig::new();
        for (s, o, v) in &entries {
            cfg.set(s, o, v.as_str());
        }
        let back = TalerConfig::parse_str(&cfg.to_ini_string()).unwrap();
        prop_assert_eq!(back.sections(), cfg.sections());
        for s in cfg.sections() {
            for o in cfg.options(&s) {
                prop_assert_eq!(back.raw(&s, &o), cfg.raw(&s, &o), "[{}]/{}", s, o);
            }
        }
    }
}
