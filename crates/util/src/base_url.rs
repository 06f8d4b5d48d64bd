//! `BaseUrl`: the base URL of a Taler service, always `http(s)://host[:port]/path/` with a
//! trailing slash so that relative endpoint paths join below it.
//!
//! Spec: taler-protocol.md §7 ("Base URLs are rebuilt as `https://host/path…/`"). WC's
//! `canonicalizeBaseUrl` adds the missing slash and drops query and fragment; we reject a query
//! or fragment instead, because a base URL carrying them is a configuration mistake. No IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Why a base URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// Not a URL at all.
    #[error("invalid URL: {0}")]
    Invalid(String),
    /// Scheme other than http or https.
    #[error("base URL must use http or https")]
    Scheme,
    /// No host, or user info, query or fragment present.
    #[error("base URL must have a host and no credentials, query or fragment")]
    Shape,
    /// `join` was given a path that does not stay below the base.
    #[error("cannot join {0:?} to a base URL")]
    Join(String),
}

/// An http(s) base URL ending in `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Parses and canonicalises (adds the trailing `/`, lower-cases the host).
    pub fn parse(s: &str) -> Result<Self, BaseUrlError> {
        let url = Url::parse(s).map_err(|e| BaseUrlError::Invalid(e.to_string()))?;
        Self::from_url(url)
    }

    /// Checks and canonicalises an already parsed URL.
    pub fn from_url(mut url: Url) -> Result<Self, BaseUrlError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BaseUrlError::Scheme);
        }
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(BaseUrlError::Shape);
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    /// The URL text, e.g. `https://bank.example/taler-integration/`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// Whether this is plain HTTP (then `taler://` URIs become `taler+http://`).
    pub fn is_http(&self) -> bool {
        self.0.scheme() == "http"
    }

    /// The URL without its scheme: `host[:port]/path/` (always ending in `/`).
    pub fn host_and_path(&self) -> &str {
        let s = self.0.as_str();
        s.split_once("://").map_or(s, |(_, rest)| rest)
    }

    /// An endpoint below this base: `join("config")`, `join("withdrawal-operation/ID")`.
    /// Absolute paths and URLs are rejected so that a join never escapes the base.
    pub fn join(&self, path: &str) -> Result<Url, BaseUrlError> {
        if path.starts_with('/') || path.contains("://") || path.split('/').any(|seg| seg == "..") {
            return Err(BaseUrlError::Join(path.to_owned()));
        }
        self.0
            .join(path)
            .map_err(|_| BaseUrlError::Join(path.to_owned()))
    }

    /// Like [`Self::join`] but keeps a trailing `/`, for nesting one base inside another.
    pub fn join_base(&self, path: &str) -> Result<BaseUrl, BaseUrlError> {
        Self::from_url(self.join(path)?)
    }
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.as_str())
    }
}

impl From<BaseUrl> for Url {
    fn from(b: BaseUrl) -> Url {
        b.0
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_trailing_slash() {
        let b = BaseUrl::parse("https://Bank.Example/taler-integration").unwrap();
        assert_eq!(b.as_str(), "https://bank.example/taler-integration/");
        assert_eq!(
            BaseUrl::parse("http://localhost:8080").unwrap().as_str(),
            "http://localhost:8080/"
        );
        assert_eq!(b.host_and_path(), "bank.example/taler-integration/");
        assert!(!b.is_http());
    }

    #[test]
    fn join_stays_below() {
        let b = BaseUrl::parse("https://ex.example/api/").unwrap();
        assert_eq!(
            b.join("config").unwrap().as_str(),
            "https://ex.example/api/config"
        );
        assert_eq!(
            b.join("withdrawal-operation/abc?long_poll_ms=5")
                .unwrap()
                .as_str(),
            "https://ex.example/api/withdrawal-operation/abc?long_poll_ms=5"
        );
        assert!(b.join("/config").is_err());
        assert!(b.join("../x").is_err());
        assert!(b.join("https://evil.example/").is_err());
        assert_eq!(
            b.join_base("accounts/x/taler-wire-gateway")
                .unwrap()
                .as_str(),
            "https://ex.example/api/accounts/x/taler-wire-gateway/"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "ftp://x/",
            "https://x/?q=1",
            "https://x/#f",
            "https://u:p@x/",
            "x",
            "",
            "https://",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<BaseUrl>("\"https://x\"").is_ok());
    }
}
