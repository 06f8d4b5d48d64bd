//! The official GNU Taler error codes (the GANA registry) as a Rust enum.
//!
//! Every Taler error body carries `"code": <number>` from this table. The table itself lives in
//! `error_code_table.rs`, generated from `data/gana-error-codes.txt` (value, name, HTTP status)
//! by `scripts/gen_error_code.py`, so that adding a code is a one-line change. The HTTP status
//! is the registry's suggestion; `0` means "not an HTTP status" (client-side errors). No IO.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $status:literal, $name:literal; )+) => {
        /// An official Taler error code. Serialises as its number.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), ")")]
                $variant = $code,
            )+
        }

        impl ErrorCode {
            /// Every code, in ascending numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The registry's name, e.g. `GENERIC_JSON_INVALID`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status the registry suggests (`0` when the code is not sent over HTTP).
            pub const fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// Looks up a code by number.
            pub const fn from_code(code: u32) -> Option<Self> {
                match code {
                    $($code => Some(ErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

include!("error_code_table.rs");

impl ErrorCode {
    /// The numeric code sent as `"code"` in error bodies.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Looks up a code by its registry name (e.g. `"BANK_UNKNOWN_ACCOUNT"`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ErrorCode {
    /// `NAME (number)`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorCode::{}({})", self.name(), self.code())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u32::deserialize(d)?;
        Self::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format_args!("unknown Taler error code {code}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pairs() {
        let cases = [
            (ErrorCode::None, 0, "NONE", 0),
            (
                ErrorCode::GenericJsonInvalid,
                22,
                "GENERIC_JSON_INVALID",
                400,
            ),
            (
                ErrorCode::GenericParameterMissing,
                25,
                "GENERIC_PARAMETER_MISSING",
                400,
            ),
            (
                ErrorCode::GenericParameterMalformed,
                26,
                "GENERIC_PARAMETER_MALFORMED",
                400,
            ),
            (
                ErrorCode::GenericEndpointUnknown,
                21,
                "GENERIC_ENDPOINT_UNKNOWN",
                404,
            ),
            (
                ErrorCode::GenericUnauthorized,
                40,
                "GENERIC_UNAUTHORIZED",
                401,
            ),
            (
                ErrorCode::GenericDbFetchFailed,
                53,
                "GENERIC_DB_FETCH_FAILED",
                500,
            ),
            (
                ErrorCode::ExchangeReservesStatusUnknown,
                1250,
                "EXCHANGE_RESERVES_STATUS_UNKNOWN",
                404,
            ),
            (
                ErrorCode::ExchangeGenericInsufficientFunds,
                1012,
                "EXCHANGE_GENERIC_INSUFFICIENT_FUNDS",
                409,
            ),
            (
                ErrorCode::BankUnknownAccount,
                5106,
                "BANK_UNKNOWN_ACCOUNT",
                0,
            ),
            (
                ErrorCode::BankTransferRequestUidReused,
                5112,
                "BANK_TRANSFER_REQUEST_UID_REUSED",
                409,
            ),
            (
                ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
                5113,
                "BANK_WITHDRAWAL_OPERATION_RESERVE_SELECTION_CONFLICT",
                409,
            ),
            (
                ErrorCode::BankDuplicateReservePubSubject,
                5114,
                "BANK_DUPLICATE_RESERVE_PUB_SUBJECT",
                409,
            ),
            (
                ErrorCode::BankAbortConfirmConflict,
                5116,
                "BANK_ABORT_CONFIRM_CONFLICT",
                409,
            ),
            (
                ErrorCode::BankUpdateAbortConflict,
                5153,
                "BANK_UPDATE_ABORT_CONFLICT",
                409,
            ),
            (ErrorCode::End, 9999, "END", 0),
        ];
        for (code, number, name, status) in cases {
            assert_eq!(code.code(), number, "{name}");
            assert_eq!(code.name(), name);
            assert_eq!(code.http_status(), status, "{name}");
            assert_eq!(ErrorCode::from_code(number), Some(code));
            assert_eq!(ErrorCode::from_name(name), Some(code));
        }
        assert_eq!(ErrorCode::from_code(100), None);
    }

    #[test]
    fn codes_and_names_unique_and_sorted() {
        let all = ErrorCode::ALL;
        assert!(all.len() > 450);
        assert!(all.windows(2).all(|w| w[0].code() < w[1].code()));
        let mut names: Vec<_> = all.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for c in all {
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
            assert!(c.http_status() == 0 || (200..600).contains(&c.http_status()));
        }
    }

    #[test]
    fn serde_as_number() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::GenericJsonInvalid).unwrap(),
            "22"
        );
        assert_eq!(
            serde_json::from_str::<ErrorCode>("5114").unwrap(),
            ErrorCode::BankDuplicateReservePubSubject
        );
        assert!(serde_json::from_str::<ErrorCode>("123456").is_err());
        assert!(serde_json::from_str::<ErrorCode>("\"NONE\"").is_err());
    }
}
