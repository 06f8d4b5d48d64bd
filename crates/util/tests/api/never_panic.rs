//! Arbitrary input to every parser yields a value or a typed error, never a panic.

use cardcash_util::{
    Amount, Base32Bytes, BaseUrl, Currency, EddsaSignature, ErrorCode, HashCode, LibtoolVersion,
    PaytoUri, RelativeTime, TalerConfig, TalerUri, Timestamp, base32,
};
use proptest::prelude::*;

/// Feeds one string to every text parser.
fn feed(s: &str) {
    let _ = s.parse::<Amount>();
    let _ = s.parse::<Currency>();
    let _ = base32::decode(s);
    let _ = base32::decode_fixed::<32>(s);
    let _ = s.parse::<HashCode>();
    let _ = s.parse::<EddsaSignature>();
    let _ = s.parse::<Base32Bytes>();
    let _ = s.parse::<PaytoUri>();
    let _ = s.parse::<TalerUri>();
    let _ = s.parse::<BaseUrl>();
    let _ = s.parse::<LibtoolVersion>();
    let _ = RelativeTime::parse_duration(s);
    let _ = TalerConfig::parse_str(s).map(|c| {
        for sec in c.sections() {
            for opt in c.options(&sec) {
                let _ = c.path(&sec, &opt);
                let _ = c.amount(&sec, &opt);
                let _ = c.relative_time(&sec, &opt);
                let _ = c.base_url(&sec, &opt);
            }
        }
        let _ = c.expand(s);
        c.to_ini_string()
    });
    let _ = serde_json::from_str::<Timestamp>(s);
    let _ = serde_json::from_str::<RelativeTime>(s);
    let _ = serde_json::from_str::<ErrorCode>(s);
    if let Ok(a) = Amount::from_decimal(&Currency::new("EUR").expect("valid"), s) {
        assert_eq!(Amount::from_decimal(a.currency(), &a.to_decimal()), Ok(a));
    }
}

/// Parsed values print back to something that parses to the same value.
fn reparse(s: &str) {
    if let Ok(a) = s.parse::<Amount>() {
        assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
    }
    if let Ok(p) = s.parse::<PaytoUri>() {
        assert_eq!(p.to_string().parse::<PaytoUri>().as_ref(), Ok(&p), "{s}");
    }
    if let Ok(u) = s.parse::<TalerUri>() {
        assert_eq!(u.to_string().parse::<TalerUri>().as_ref(), Ok(&u), "{s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_unicode(s in any::<String>()) {
        feed(&s);
        reparse(&s);
    }

    #[test]
    fn amount_like(s in "[A-Za-z]{0,13}:?[0-9]{0,20}(\\.[0-9]{0,10})?") {
        feed(&s);
        reparse(&s);
    }

    #[test]
    fn uri_like(
        prefix in "(taler|TALER|taler\\+http|payto|https?)://",
        action in "(withdraw|pay|refund|withdraw-exchange|pay-template|iban|x-taler-bank|card-transaction|other)?/?",
        rest in "[a-zA-Z0-9:./?&=%@#+ \\-_~\\[\\]]{0,60}",
    ) {
        let s = format!("{prefix}{action}{rest}");
        feed(&s);
        reparse(&s);
    }

    #[test]
    fn config_like(lines in proptest::collection::vec("[\\[\\]a-zA-Z0-9 =$#%@{}:\\-_\"/.~]{0,30}", 0..12)) {
        feed(&lines.join("\n"));
    }

    #[test]
    fn time_json_like(key in "(t_s|t_ms|d_us|d_ms|x)", value in "(-?[0-9]{1,25}(\\.[0-9]+)?|\"never\"|\"forever\"|null|\\[\\]|\\{\\})") {
        feed(&format!("{{\"{key}\":{value}}}"));
    }

    #[test]
    fn base32_like(s in "[0-9A-Za-z=\\- ]{0,120}") {
        feed(&s);
    }
}
