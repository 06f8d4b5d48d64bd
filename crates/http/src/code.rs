//! Temporary stand-in for `cardcash_util::ErrorCode` until the util crate's GANA table lands.
//!
//! Only the generic codes this crate emits are listed; numbers and statuses are the official ones
//! from GANA's `gnu-taler-error-codes/registry.rec`. Services must use `cardcash_util::ErrorCode`.

/// Official Taler error codes (subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    GenericMethodInvalid,
    GenericEndpointUnknown,
    GenericJsonInvalid,
    GenericHttpHeadersMalformed,
    GenericParameterMissing,
    GenericParameterMalformed,
    GenericUploadExceedsLimit,
    GenericUnauthorized,
    GenericInternalInvariantFailure,
}

impl ErrorCode {
    /// The number sent on the wire as `"code"`.
    pub fn code(self) -> u32 {
        match self {
            Self::GenericMethodInvalid => 20,
            Self::GenericEndpointUnknown => 21,
            Self::GenericJsonInvalid => 22,
            Self::GenericHttpHeadersMalformed => 23,
            Self::GenericParameterMissing => 25,
            Self::GenericParameterMalformed => 26,
            Self::GenericUploadExceedsLimit => 32,
            Self::GenericUnauthorized => 40,
            Self::GenericInternalInvariantFailure => 60,
        }
    }

    /// The GANA name without the `TALER_EC_` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::GenericMethodInvalid => "GENERIC_METHOD_INVALID",
            Self::GenericEndpointUnknown => "GENERIC_ENDPOINT_UNKNOWN",
            Self::GenericJsonInvalid => "GENERIC_JSON_INVALID",
            Self::GenericHttpHeadersMalformed => "GENERIC_HTTP_HEADERS_MALFORMED",
            Self::GenericParameterMissing => "GENERIC_PARAMETER_MISSING",
            Self::GenericParameterMalformed => "GENERIC_PARAMETER_MALFORMED",
            Self::GenericUploadExceedsLimit => "GENERIC_UPLOAD_EXCEEDS_LIMIT",
            Self::GenericUnauthorized => "GENERIC_UNAUTHORIZED",
            Self::GenericInternalInvariantFailure => "GENERIC_INTERNAL_INVARIANT_FAILURE",
        }
    }

    /// The HTTP status GANA registers for the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::GenericMethodInvalid => 405,
            Self::GenericEndpointUnknown => 404,
            Self::GenericJsonInvalid
            | Self::GenericHttpHeadersMalformed
            | Self::GenericParameterMissing
            | Self::GenericParameterMalformed => 400,
            Self::GenericUploadExceedsLimit => 413,
            Self::GenericUnauthorized => 401,
            Self::GenericInternalInvariantFailure => 500,
        }
    }
}
