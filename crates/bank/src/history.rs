//! Paging and long-polling parameters of the history endpoints.
//!
//! Wire Gateway `history/incoming` and `history/outgoing` and the Core Bank API's transaction list
//! share them (docs.taler.net api-bank-wire; libeufin `common/.../params.kt`):
//! - `limit` (legacy `delta`), default −20: how many rows; negative = newest first.
//! - `offset` (legacy `start`): an exclusive row id; default "before everything" for positive
//!   limits and "after everything" for negative ones.
//! - `timeout_ms` (legacy `long_poll_ms`): how long to wait for a first row. Only meaningful with a
//!   positive limit (new rows only ever appear at the end).
//!
//! New names win over legacy names when both are present. Pure parsing, no IO.

use std::time::Duration;

use serde::Deserialize;

/// Default page size and direction.
pub const DEFAULT_LIMIT: i64 = -20;
/// Largest page we serve; larger requests are clamped (the client pages on).
pub const MAX_PAGE: i64 = 1024;
/// Longest long poll we hold a connection for; larger requests are clamped.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The raw query string; every field is optional and numeric.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct HistoryQuery {
    pub limit: Option<i64>,
    pub delta: Option<i64>,
    pub offset: Option<i64>,
    pub start: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub long_poll_ms: Option<i64>,
}

/// Why history parameters were rejected (always a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryParamError {
    #[error("'limit' must not be zero")]
    ZeroLimit,
    #[error("'offset' must not be negative")]
    NegativeOffset,
    #[error("'timeout_ms' must not be negative")]
    NegativeTimeout,
}

impl HistoryParamError {
    /// The offending query parameter.
    pub fn parameter(&self) -> &'static str {
        match self {
            Self::ZeroLimit => "limit",
            Self::NegativeOffset => "offset",
            Self::NegativeTimeout => "timeout_ms",
        }
    }
}

/// Checked history parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryParams {
    /// Rows to return, at most [`MAX_PAGE`] in absolute value; negative = descending.
    pub limit: i64,
    /// Exclusive start row; `None` = from the beginning (ascending) or the end (descending).
    pub offset: Option<i64>,
    /// How long to wait when nothing matches (zero = answer at once).
    pub timeout: Duration,
}

impl HistoryParams {
    /// Checks and normalises the raw query.
    pub fn parse(query: &HistoryQuery) -> Result<Self, HistoryParamError> {
        let limit = query.limit.or(query.delta).unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Err(HistoryParamError::ZeroLimit);
        }
        let limit = limit.clamp(-MAX_PAGE, MAX_PAGE);
        let offset = query.offset.or(query.start);
        if offset.is_some_and(|o| o < 0) {
            return Err(HistoryParamError::NegativeOffset);
        }
        let timeout_ms = query.timeout_ms.or(query.long_poll_ms).unwrap_or(0);
        let timeout_ms =
            u64::try_from(timeout_ms).map_err(|_| HistoryParamError::NegativeTimeout)?;
        let timeout = Duration::from_millis(timeout_ms).min(MAX_TIMEOUT);
        Ok(Self {
            limit,
            offset,
            timeout,
        })
    }

    /// Whether rows come oldest first.
    pub fn ascending(&self) -> bool {
        self.limit > 0
    }

    /// Number of rows to fetch.
    pub fn count(&self) -> i64 {
        self.limit.abs()
    }

    /// The exclusive bound for the SQL query: rows `> start` (ascending) or `< start` (descending).
    pub fn start(&self) -> i64 {
        match (self.offset, self.ascending()) {
            (Some(offset), _) => offset,
            (None, true) => 0,
            (None, false) => i64::MAX,
        }
    }

    /// Whether an empty answer should wait for new rows: only for positive limits.
    pub fn long_polls(&self) -> bool {
        self.ascending() && !self.timeout.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: HistoryQuery) -> Result<HistoryParams, HistoryParamError> {
        HistoryParams::parse(&q)
    }

    #[test]
    fn defaults_are_newest_twenty() {
        let p = parse(HistoryQuery::default()).unwrap();
        assert_eq!(p.limit, -20);
        assert!(!p.ascending());
        assert_eq!(p.start(), i64::MAX);
        assert_eq!(p.count(), 20);
        assert!(!p.long_polls());
    }

    #[test]
    fn new_names_win_over_legacy_names() {
        let p = parse(HistoryQuery {
            limit: Some(5),
            delta: Some(-7),
            offset: Some(10),
            start: Some(99),
            timeout_ms: Some(1500),
            long_poll_ms: Some(3),
        })
        .unwrap();
        assert_eq!((p.limit, p.start()), (5, 10));
        assert_eq!(p.timeout, Duration::from_millis(1500));
        assert!(p.long_polls());
    }

    #[test]
    fn legacy_names_alone_work() {
        let p = parse(HistoryQuery {
            delta: Some(3),
            start: Some(4),
            long_poll_ms: Some(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((p.limit, p.start()), (3, 4));
        assert_eq!(p.timeout, Duration::from_millis(20));
    }

    #[test]
    fn rejects_bad_values() {
        let zero = HistoryQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(parse(zero), Err(HistoryParamError::ZeroLimit));
        let neg = HistoryQuery {
            offset: Some(-1),
            ..Default::default()
        };
        assert_eq!(parse(neg), Err(HistoryParamError::NegativeOffset));
        let neg = HistoryQuery {
            timeout_ms: Some(-1),
            ..Default::default()
        };
        assert_eq!(parse(neg), Err(HistoryParamError::NegativeTimeout));
    }

    #[test]
    fn clamps_huge_values() {
        let p = parse(HistoryQuery {
            limit: Some(-1_000_000),
            timeout_ms: Some(i64::MAX),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.limit, -MAX_PAGE);
        assert_eq!(p.timeout, MAX_TIMEOUT);
        // Descending never long polls: old rows cannot appear later.
        assert!(!p.long_polls());
    }
}
