//! Signed cookies: the session id of design document 007 (step 2: "from a *validated* cookie"),
//! the per-resource order id (`order_id_sonatas`) and the cart.
//!
//! A signed value is `VALUE.MAC` with `MAC = base32(HMAC-SHA512(secret, name ‖ 0 ‖ VALUE))`
//! truncated to 32 bytes; the cookie's name is inside the MAC, so one cookie's value cannot be
//! replayed as another's. A value whose MAC does not verify is treated as absent (the caller
//! starts a new session). Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when
//! the shop is served over HTTPS.

use std::collections::BTreeMap;

use cardcash_crypto::mac::hmac_sha512;
use cardcash_http::constant_time_eq;
use cardcash_util::base32;

/// The session cookie.
pub const SESSION: &str = "session_id";
/// The cart cookie.
pub const CART: &str = "cart";
/// Bytes of the MAC kept in a cookie.
const TAG_LEN: usize = 32;
/// Random bytes of a session id.
const SESSION_BYTES: usize = 32;

/// The name of the order cookie of a paywalled resource (design document 007 step 3).
pub fn order_cookie(resource: &str) -> String {
    format!("order_id_{resource}")
}

/// Signs and checks cookie values with the shop's secret.
#[derive(Clone)]
pub struct CookieSigner {
    key: Vec<u8>,
    secure: bool,
}

impl std::fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSigner")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl CookieSigner {
    /// A signer with `key`; `secure` adds the `Secure` attribute (HTTPS shops).
    pub fn new(key: &[u8], secure: bool) -> Self {
        Self {
            key: key.to_vec(),
            secure,
        }
    }

    fn tag(&self, name: &str, value: &str) -> [u8; TAG_LEN] {
        let mut message = Vec::with_capacity(name.len() + 1 + value.len());
        message.extend_from_slice(name.as_bytes());
        message.push(0);
        message.extend_from_slice(value.as_bytes());
        let full = hmac_sha512(&self.key, &message);
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// `value.MAC` for the cookie `name`.
    pub fn sign(&self, name: &str, value: &str) -> String {
        format!("{value}.{}", base32::encode(&self.tag(name, value)))
    }

    /// The value inside `signed` if its MAC is right for the cookie `name`.
    pub fn verify<'a>(&self, name: &str, signed: &'a str) -> Option<&'a str> {
        let (value, tag) = signed.rsplit_once('.')?;
        let given = base32::decode(tag).ok()?;
        constant_time_eq(&given, &self.tag(name, value)).then_some(value)
    }

    /// The verified value of cookie `name` among the request's `cookies`.
    pub fn read<'a>(&self, cookies: &'a Cookies, name: &str) -> Option<&'a str> {
        cookies
            .get(name)
            .and_then(|signed| self.verify(name, signed))
    }

    /// A `Set-Cookie` header value that stores `value` signed under `name`.
    pub fn set_cookie(&self, name: &str, value: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.sign(name, value)
        )
    }

    /// A `Set-Cookie` header value that deletes cookie `name`.
    pub fn clear_cookie(&self, name: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
    }
}

/// A fresh session id (design document 007 step 4): 256 random bits, base32.
pub fn new_session_id() -> Result<String, cardcash_crypto::error::CryptoError> {
    cardcash_crypto::random::random_bytes::<SESSION_BYTES>().map(|b| base32::encode(&b))
}

/// The cookies a request carried (the first of each name wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies(BTreeMap<String, String>);

impl Cookies {
    /// Parses every `Cookie` header value (`a=1; b=2`).
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut map = BTreeMap::new();
        for header in headers {
            for pair in header.split(';') {
                if let Some((name, value)) = pair.split_once('=') {
                    let value = value.trim().trim_matches('"');
                    map.entry(name.trim().to_owned())
                        .or_insert_with(|| value.to_owned());
                }
            }
        }
        Self(map)
    }

    /// The raw value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> CookieSigner {
        CookieSigner::new(b"0123456789abcdef", false)
    }

    #[test]
    fn a_signed_value_verifies_and_comes_back() {
        let s = signer();
        let signed = s.sign(SESSION, "S1");
        assert!(signed.starts_with("S1."));
        assert_eq!(s.verify(SESSION, &signed), Some("S1"));
        // Values with dots (order ids) keep them.
        let signed = s.sign("order_id_sonatas", "2026.340-01.X");
        assert_eq!(s.verify("order_id_sonatas", &signed), Some("2026.340-01.X"));
    }

    #[test]
    fn tampered_forged_or_moved_values_are_refused() {
        let s = signer();
        let signed = s.sign(SESSION, "S1");
        let tampered = signed.replacen("S1", "S2", 1);
        assert_eq!(s.verify(SESSION, &tampered), None);
        assert_eq!(s.verify(SESSION, "S1"), None);
        assert_eq!(s.verify(SESSION, "S1.AAAA"), None);
        assert_eq!(s.verify(SESSION, "S1.not base32!"), None);
        // The same value signed for another cookie is not a session.
        assert_eq!(s.verify(SESSION, &s.sign(CART, "S1")), None);
        // Another shop's secret.
        let other = CookieSigner::new(b"fedcba9876543210", false);
        assert_eq!(other.verify(SESSION, &signed), None);
    }

    #[test]
    fn cookies_parse_from_headers() {
        let c = Cookies::parse(["a=1; session_id=X.Y", "b=\"2\"; a=3"]);
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("session_id"), Some("X.Y"));
        assert_eq!(c.get("missing"), None);
        let s = signer();
        let c = Cookies::parse([format!("{SESSION}={}", s.sign(SESSION, "S")).as_str()]);
        assert_eq!(s.read(&c, SESSION), Some("S"));
    }

    #[test]
    fn set_cookie_attributes() {
        let plain = signer().set_cookie(SESSION, "S");
        assert!(plain.starts_with("session_id=S."), "{plain}");
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(!plain.contains("Secure"));
        let secure = CookieSigner::new(b"k", true).set_cookie(SESSION, "S");
        assert!(secure.ends_with("; Secure"), "{secure}");
        assert!(signer().clear_cookie(CART).contains("Max-Age=0"));
    }

    #[test]
    fn session_ids_are_fresh() {
        let a = new_session_id().unwrap();
        assert_eq!(a.len(), 52);
        assert_ne!(a, new_session_id().unwrap());
    }
}
