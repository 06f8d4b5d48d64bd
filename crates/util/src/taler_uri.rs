//! `taler://` and `taler+http://` URIs: what a wallet scans from a QR code.
//!
//! Spec: taler-protocol.md §7; WC `taler-util/src/taleruri.ts`. The prefix is case-insensitive,
//! `taler+http://` means the service speaks plain HTTP, the host is lower-cased and the base URL
//! is `http(s)://host/path…/`, read as wallet-core's URL parser reads it: a default port
//! (`:443` in `taler://`, `:80` in `taler+http://`) is dropped and path characters such as a
//! space are percent-encoded; other rewrites are refused. The trailing-slash rules matter to
//! wallets:
//! - `taler://withdraw/{host}{/path}/{wopid}` has **no** trailing slash (the last segment is the
//!   operation id);
//! - `taler://pay/{host}{/path}/{order_id}/{session_id}` always has the session segment, so
//!   without a session it ends in `/`; `c` (claim token) and `n` (nonce) are query parameters;
//! - `taler://refund/{host}{/path}/{order_id}/` ends in `/`;
//! - `taler://withdraw-exchange/{host}{/path}/[exchange_pub][?a=AMOUNT]`;
//! - `taler://pay-template/{host}{/path}/{template_id}[?amount=…&summary=…]`.
//!
//! No IO.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::amount::Amount;
use crate::base_url::BaseUrl;
use crate::bytes::EddsaPublicKey;

/// Characters escaped in a path segment or query value.
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'=')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Why a taler URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TalerUriError {
    /// Not `taler://` or `taler+http://`.
    #[error("not a taler:// or taler+http:// URI")]
    Scheme,
    /// An action we do not handle.
    #[error("unsupported taler URI action {0:?}")]
    UnknownAction(String),
    /// Too few path segments or an empty required segment.
    #[error("malformed taler://{action} URI: {why}")]
    Malformed {
        /// The URI's action.
        action: &'static str,
        /// What was wrong.
        why: &'static str,
    },
    /// The host/path do not form a valid base URL.
    #[error("invalid base URL in taler URI")]
    BaseUrl,
    /// Percent-encoding that does not decode to UTF-8.
    #[error("invalid percent-encoding in taler URI")]
    Encoding,
    /// A parameter that must be an amount or a key is not.
    #[error("invalid parameter {0:?} in taler URI")]
    Parameter(&'static str),
}

/// A parsed taler URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TalerUri {
    /// Bank-integrated withdrawal.
    Withdraw {
        /// The bank integration API base (`…/taler-integration/`).
        bank_integration_base: BaseUrl,
        /// Withdrawal operation id.
        wopid: String,
        /// `?external-confirmation=1`: the bank confirms the transfer itself (c2ec: the terminal).
        external_confirmation: bool,
    },
    /// Pay for an order.
    Pay {
        /// Merchant backend base URL.
        merchant_base: BaseUrl,
        /// Order id.
        order_id: String,
        /// Session id (empty when none).
        session_id: String,
        /// `c`: claim token.
        claim_token: Option<String>,
        /// `n`: nonce, when the order was pre-claimed.
        nonce: Option<String>,
    },
    /// Obtain a refund.
    Refund {
        /// Merchant backend base URL.
        merchant_base: BaseUrl,
        /// Order id.
        order_id: String,
    },
    /// Manual withdrawal from an exchange.
    WithdrawExchange {
        /// Exchange base URL.
        exchange_base: BaseUrl,
        /// The exchange's master public key, when pinned.
        exchange_pub: Option<EddsaPublicKey>,
        /// `a`: suggested amount.
        amount: Option<Amount>,
    },
    /// Pay using a merchant template.
    PayTemplate {
        /// Merchant backend base URL.
        merchant_base: BaseUrl,
        /// Template id.
        template_id: String,
        /// `amount`: kept as text because wallets also send a bare currency (`KUDOS`) meaning
        /// "editable amount in this currency".
        amount: Option<String>,
        /// `summary`: may be empty (editable).
        summary: Option<String>,
    },
}

fn decode(s: &str) -> Result<String, TalerUriError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| TalerUriError::Encoding)
}

fn enc(s: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(s, COMPONENT)
}

/// Builds the base URL from the host and the leading path segments, as wallet-core's
/// `canonicalizeBaseUrl("https://{host}/{path…}/")` does: the URL parser drops a default port
/// (`host:443` with https, `host:80` with http) and percent-encodes what a path needs (a space
/// becomes `%20`). Any other rewrite (user info, an internationalised or numeric host, `.` or
/// `..` segments, backslashes) means the text does not say what it seems to and is refused.
fn base_from(https: bool, host: &str, path: &[&str]) -> Result<BaseUrl, TalerUriError> {
    if host.is_empty() {
        return Err(TalerUriError::BaseUrl);
    }
    let host = host.to_ascii_lowercase();
    let scheme = if https { "https" } else { "http" };
    let mut text = format!("{scheme}://{host}/");
    for seg in path {
        text.push_str(seg);
        text.push('/');
    }
    let base = BaseUrl::parse(&text).map_err(|_| TalerUriError::BaseUrl)?;
    let url = base.as_url();
    let (name, port) = split_port(&host).ok_or(TalerUriError::BaseUrl)?;
    let port_kept = match port {
        None | Some("") => url.port().is_none(),
        Some(p) => p.parse::<u16>().ok() == url.port_or_known_default(),
    };
    if url.host_str() != Some(name) || !port_kept {
        return Err(TalerUriError::BaseUrl);
    }
    // The parsed path has the same segments, each meaning the same bytes (`/a/b/` gives
    // `a`, `b` and a last empty segment).
    let parsed: Vec<&str> = url.path_segments().map_or_else(Vec::new, Iterator::collect);
    let same_path = parsed.len() == path.len() + 1
        && parsed.iter().zip(path).all(|(p, given)| {
            percent_decode_str(p).collect::<Vec<u8>>()
                == percent_decode_str(given).collect::<Vec<u8>>()
        });
    if !same_path {
        return Err(TalerUriError::BaseUrl);
    }
    Ok(base)
}

/// Splits `host[:port]` (`[v6]:port` for IPv6); `None` if brackets do not match.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (name, rest) = authority.split_at(end);
        return match rest.strip_prefix(':') {
            Some(port) => Some((name, Some(port))),
            None if rest.is_empty() => Some((name, None)),
            None => None,
        };
    }
    Some(match authority.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (authority, None),
    })
}

fn query_params(query: Option<&str>) -> Result<Vec<(String, String)>, TalerUriError> {
    let mut out = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(&k.replace('+', " "))?, decode(&v.replace('+', " "))?));
    }
    Ok(out)
}

fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl FromStr for TalerUri {
    type Err = TalerUriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (https, rest) = if s
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("taler://"))
        {
            (true, s.get(8..).unwrap_or_default())
        } else if s
            .get(..13)
            .is_some_and(|p| p.eq_ignore_ascii_case("taler+http://"))
        {
            (false, s.get(13..).unwrap_or_default())
        } else {
            return Err(TalerUriError::Scheme);
        };
        let (action, rest) = rest.split_once('/').ok_or(TalerUriError::Malformed {
            action: "?",
            why: "missing action",
        })?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let params = query_params(query)?;
        let parts: Vec<&str> = path.split('/').collect();
        let action = action.to_ascii_lowercase();
        match action.as_str() {
            "withdraw" => {
                let [host, middle @ .., wopid] = parts.as_slice() else {
                    return Err(TalerUriError::Malformed {
                        action: "withdraw",
                        why: "need host and operation id",
                    });
                };
                if wopid.is_empty() {
                    return Err(TalerUriError::Malformed {
                        action: "withdraw",
                        why: "empty operation id",
                    });
                }
                Ok(TalerUri::Withdraw {
                    bank_integration_base: base_from(https, host, middle)?,
                    wopid: decode(wopid)?,
                    external_confirmation: get(&params, "external-confirmation") == Some("1"),
                })
            }
            "pay" => {
                let [host, middle @ .., order_id, session_id] = parts.as_slice() else {
                    return Err(TalerUriError::Malformed {
                        action: "pay",
                        why: "need host, order id and session segment",
                    });
                };
                if order_id.is_empty() {
                    return Err(TalerUriError::Malformed {
                        action: "pay",
                        why: "empty order id",
                    });
                }
                Ok(TalerUri::Pay {
                    merchant_base: base_from(https, host, middle)?,
                    order_id: decode(order_id)?,
                    session_id: decode(session_id)?,
                    claim_token: get(&params, "c").map(str::to_owned),
                    nonce: get(&params, "n").map(str::to_owned),
                })
            }
            "refund" => {
                let [host, middle @ .., order_id, _] = parts.as_slice() else {
                    return Err(TalerUriError::Malformed {
                        action: "refund",
                        why: "need host, order id and trailing slash",
                    });
                };
                if order_id.is_empty() {
                    return Err(TalerUriError::Malformed {
                        action: "refund",
                        why: "empty order id",
                    });
                }
                Ok(TalerUri::Refund {
                    merchant_base: base_from(https, host, middle)?,
                    order_id: decode(order_id)?,
                })
            }
            "withdraw-exchange" => {
                let [host, middle @ .., pubkey] = parts.as_slice() else {
                    return Err(TalerUriError::Malformed {
                        action: "withdraw-exchange",
                        why: "need exchange host",
                    });
                };
                let exchange_pub = if pubkey.is_empty() {
                    None
                } else {
                    Some(
                        pubkey
                            .parse()
                            .map_err(|_| TalerUriError::Parameter("exchange_pub"))?,
                    )
                };
                let amount = get(&params, "a")
                    .map(|a| a.parse().map_err(|_| TalerUriError::Parameter("a")))
                    .transpose()?;
                Ok(TalerUri::WithdrawExchange {
                    exchange_base: base_from(https, host, middle)?,
                    exchange_pub,
                    amount,
                })
            }
            "pay-template" => {
                let [host, middle @ .., template_id] = parts.as_slice() else {
                    return Err(TalerUriError::Malformed {
                        action: "pay-template",
                        why: "need host and template id",
                    });
                };
                if template_id.is_empty() {
                    return Err(TalerUriError::Malformed {
                        action: "pay-template",
                        why: "empty template id",
                    });
                }
                Ok(TalerUri::PayTemplate {
                    merchant_base: base_from(https, host, middle)?,
                    template_id: decode(template_id)?,
                    amount: get(&params, "amount").map(str::to_owned),
                    summary: get(&params, "summary").map(str::to_owned),
                })
            }
            _ => Err(TalerUriError::UnknownAction(action)),
        }
    }
}

impl TalerUri {
    /// The action name (`withdraw`, `pay`, …).
    pub fn action(&self) -> &'static str {
        match self {
            TalerUri::Withdraw { .. } => "withdraw",
            TalerUri::Pay { .. } => "pay",
            TalerUri::Refund { .. } => "refund",
            TalerUri::WithdrawExchange { .. } => "withdraw-exchange",
            TalerUri::PayTemplate { .. } => "pay-template",
        }
    }

    fn base(&self) -> &BaseUrl {
        match self {
            TalerUri::Withdraw {
                bank_integration_base: b,
                ..
            }
            | TalerUri::Pay {
                merchant_base: b, ..
            }
            | TalerUri::Refund {
                merchant_base: b, ..
            }
            | TalerUri::WithdrawExchange {
                exchange_base: b, ..
            }
            | TalerUri::PayTemplate {
                merchant_base: b, ..
            } => b,
        }
    }
}

/// Writes `?k=v&k2=v2` for the present parameters.
fn write_query(f: &mut fmt::Formatter<'_>, params: &[(&str, Option<&str>)]) -> fmt::Result {
    let mut first = true;
    for (k, v) in params {
        if let Some(v) = v {
            write!(f, "{}{k}={}", if first { '?' } else { '&' }, enc(v))?;
            first = false;
        }
    }
    Ok(())
}

impl fmt::Display for TalerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.base();
        let scheme = if base.is_http() {
            "taler+http"
        } else {
            "taler"
        };
        // host_and_path always ends in '/', so the next segment follows directly.
        write!(f, "{scheme}://{}/{}", self.action(), base.host_and_path())?;
        match self {
            TalerUri::Withdraw {
                wopid,
                external_confirmation,
                ..
            } => {
                write!(f, "{}", enc(wopid))?;
                write_query(
                    f,
                    &[(
                        "external-confirmation",
                        external_confirmation.then_some("1"),
                    )],
                )
            }
            TalerUri::Pay {
                order_id,
                session_id,
                claim_token,
                nonce,
                ..
            } => {
                write!(f, "{}/{}", enc(order_id), enc(session_id))?;
                write_query(f, &[("c", claim_token.as_deref()), ("n", nonce.as_deref())])
            }
            TalerUri::Refund { order_id, .. } => write!(f, "{}/", enc(order_id)),
            TalerUri::WithdrawExchange {
                exchange_pub,
                amount,
                ..
            } => {
                if let Some(key) = exchange_pub {
                    write!(f, "{key}")?;
                }
                let amount = amount.map(|a| a.to_string());
                write_query(f, &[("a", amount.as_deref())])
            }
            TalerUri::PayTemplate {
                template_id,
                amount,
                summary,
                ..
            } => {
                write!(f, "{}", enc(template_id))?;
                write_query(
                    f,
                    &[
                        ("amount", amount.as_deref()),
                        ("summary", summary.as_deref()),
                    ],
                )
            }
        }
    }
}

impl Serialize for TalerUri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TalerUri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> TalerUri {
        let u: TalerUri = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(u.to_string(), s);
        u
    }

    #[test]
    fn withdraw() {
        let u = round_trip(
            "taler://withdraw/bank.demo.taler.net/taler-integration/5f0a5d59-4b5e-4f0a-9e0e-2f7f3c2f1c11",
        );
        let TalerUri::Withdraw {
            bank_integration_base,
            wopid,
            external_confirmation,
        } = &u
        else {
            panic!()
        };
        assert_eq!(
            bank_integration_base.as_str(),
            "https://bank.demo.taler.net/taler-integration/"
        );
        assert_eq!(wopid, "5f0a5d59-4b5e-4f0a-9e0e-2f7f3c2f1c11");
        assert!(!external_confirmation);
        let local =
            round_trip("taler+http://withdraw/localhost:8082/c2ec/WOPID?external-confirmation=1");
        let TalerUri::Withdraw {
            bank_integration_base,
            external_confirmation,
            ..
        } = &local
        else {
            panic!()
        };
        assert_eq!(
            bank_integration_base.as_str(),
            "http://localhost:8082/c2ec/"
        );
        assert!(external_confirmation);
        // Case-insensitive prefix and host.
        let upper: TalerUri = "TALER://WITHDRAW/Bank.Example/abc".parse().unwrap();
        assert_eq!(upper.to_string(), "taler://withdraw/bank.example/abc");
        // A trailing slash means an empty operation id.
        assert!(
            "taler://withdraw/bank.example/abc/"
                .parse::<TalerUri>()
                .is_err()
        );
        assert!("taler://withdraw/bank.example".parse::<TalerUri>().is_err());
    }

    #[test]
    fn pay_and_refund() {
        let u = round_trip(
            "taler://pay/backend.demo.taler.net/instances/blog/2022.353-03F6SPK0YZ0WE/?c=KJ0N6E5Z6ZF4T",
        );
        let TalerUri::Pay {
            merchant_base,
            order_id,
            session_id,
            claim_token,
            nonce,
        } = &u
        else {
            panic!()
        };
        assert_eq!(
            merchant_base.as_str(),
            "https://backend.demo.taler.net/instances/blog/"
        );
        assert_eq!(order_id, "2022.353-03F6SPK0YZ0WE");
        assert_eq!(session_id, "");
        assert_eq!(claim_token.as_deref(), Some("KJ0N6E5Z6ZF4T"));
        assert_eq!(nonce, &None);
        round_trip("taler+http://pay/localhost:9966/order-1/session-7?c=tok&n=nonce");
        // Without the session segment the order id would be taken as part of the base URL.
        assert!(
            "taler://pay/backend.example/order-1"
                .parse::<TalerUri>()
                .is_err()
        );
        let r = round_trip("taler://refund/backend.example/instances/shop/order-1/");
        let TalerUri::Refund {
            merchant_base,
            order_id,
        } = &r
        else {
            panic!()
        };
        assert_eq!(
            merchant_base.as_str(),
            "https://backend.example/instances/shop/"
        );
        assert_eq!(order_id, "order-1");
        assert!(
            "taler://refund/backend.example/order-1"
                .parse::<TalerUri>()
                .is_err()
        );
        assert!("taler://pay/backend.example".parse::<TalerUri>().is_err());
    }

    #[test]
    fn withdraw_exchange_and_template() {
        let u = round_trip("taler://withdraw-exchange/exchange.taler-ops.ch/");
        assert!(matches!(
            &u,
            TalerUri::WithdrawExchange {
                exchange_pub: None,
                amount: None,
                ..
            }
        ));
        let key = EddsaPublicKey::from_bytes([3; 32]);
        let s = format!("taler+http://withdraw-exchange/localhost:8081/{key}?a=KUDOS:5");
        let u = round_trip(&s);
        assert!(
            matches!(&u, TalerUri::WithdrawExchange { exchange_pub: Some(k), amount: Some(a), .. } if *k == key && a.to_string() == "KUDOS:5")
        );
        assert!(
            "taler://withdraw-exchange/ex.example/NOTAKEY"
                .parse::<TalerUri>()
                .is_err()
        );
        let t = round_trip(
            "taler://pay-template/backend.example/instances/shop/coffee?amount=KUDOS&summary=",
        );
        assert!(
            matches!(&t, TalerUri::PayTemplate { amount: Some(a), summary: Some(s), .. } if a == "KUDOS" && s.is_empty())
        );
        round_trip("taler://pay-template/backend.example/tpl%20x?summary=two%20words");
    }

    /// The base URL a URI names, the text it prints as, and that the printed text parses back.
    fn base_and_display(s: &str) -> (String, String) {
        let u: TalerUri = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        let shown = u.to_string();
        assert_eq!(shown.parse::<TalerUri>().as_ref(), Ok(&u), "{s} → {shown}");
        (u.base().as_str().to_owned(), shown)
    }

    /// Issue 6 §10: wallet-core accepts the default port (its URL parser drops it); we refused
    /// these as "invalid base URL" because ours drops it too and the text then differed.
    #[test]
    fn default_ports_are_accepted_and_dropped() {
        for (uri, base, shown) in [
            (
                "taler://pay/host:443/order-1/",
                "https://host/",
                "taler://pay/host/order-1/",
            ),
            (
                "taler+http://pay/host:80/instances/shop/order-1/session?c=TOK",
                "http://host/instances/shop/",
                "taler+http://pay/host/instances/shop/order-1/session?c=TOK",
            ),
            (
                "taler://withdraw/bank.example:443/taler-integration/WOPID",
                "https://bank.example/taler-integration/",
                "taler://withdraw/bank.example/taler-integration/WOPID",
            ),
            (
                "taler+http://withdraw/localhost:80/c2ec/WOPID?external-confirmation=1",
                "http://localhost/c2ec/",
                "taler+http://withdraw/localhost/c2ec/WOPID?external-confirmation=1",
            ),
            (
                "taler://refund/host:443/order-1/",
                "https://host/",
                "taler://refund/host/order-1/",
            ),
            (
                "taler://withdraw-exchange/ex.example:443/",
                "https://ex.example/",
                "taler://withdraw-exchange/ex.example/",
            ),
            (
                "taler+http://pay-template/Host:80/tpl",
                "http://host/",
                "taler+http://pay-template/host/tpl",
            ),
            // Another scheme's default port, or any other port, is kept.
            (
                "taler://pay/host:80/order-1/",
                "https://host:80/",
                "taler://pay/host:80/order-1/",
            ),
            (
                "taler+http://pay/host:443/order-1/",
                "http://host:443/",
                "taler+http://pay/host:443/order-1/",
            ),
            (
                "taler://pay/[::1]:443/order-1/",
                "https://[::1]/",
                "taler://pay/[::1]/order-1/",
            ),
        ] {
            assert_eq!(base_and_display(uri), (base.to_owned(), shown.to_owned()));
        }
    }

    /// Issue 6 §10: wallet-core reads `taler://pay/t:443/ /x/` with base `https://t/%20/`.
    #[test]
    fn a_space_in_a_base_path_segment_is_percent_encoded() {
        let u: TalerUri = "taler://pay/t:443/ /x/"
            .parse()
            .expect("wallet-core accepts it");
        let TalerUri::Pay {
            merchant_base,
            order_id,
            session_id,
            ..
        } = &u
        else {
            panic!("{u:?}")
        };
        assert_eq!(merchant_base.as_str(), "https://t/%20/");
        assert_eq!((order_id.as_str(), session_id.as_str()), ("x", ""));
        assert_eq!(
            base_and_display("taler://pay/t:443/ /x/"),
            (
                "https://t/%20/".to_owned(),
                "taler://pay/t/%20/x/".to_owned()
            )
        );
        assert_eq!(
            base_and_display("taler://withdraw/t/a b/c2ec/W"),
            (
                "https://t/a%20b/c2ec/".to_owned(),
                "taler://withdraw/t/a%20b/c2ec/W".to_owned()
            )
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "taler:/",
            "taler://",
            "taler://pay",
            "https://pay/x/y/",
            "taler://tip/x/y",
            "taler://withdraw//abc",
            "taler://withdraw/a@b/abc",
            "taler://withdraw/h/%ff",
            "taler://pay-template/h/",
            "taler://withdraw/ho st/x",
            // Rewrites other than a default port or percent-encoding are still refused.
            "taler://pay/t:99999/x/",
            "taler://pay/t:abc/x/",
            "taler://pay/t/../x/",
            "taler://pay/t/%2e%2e/x/",
            "taler://pay/t/./x/",
            "taler://pay/t/a\\b/x/",
            "taler://pay/t/a\tb/x/",
            "taler://pay/0x7f.1/x/",
            "taler://pay/b\u{fc}cher.example/x/",
            "taler://pay/[::1/x/",
            "taler://pay/[::1]x/x/",
        ] {
            assert!(bad.parse::<TalerUri>().is_err(), "{bad}");
        }
    }
}
