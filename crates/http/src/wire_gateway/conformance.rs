//! Malformed Wire Gateway requests and the exact answers every backend must give (feature
//! `testing`, for the services' test suites only). The bank's and C2EC's tests send each case
//! with valid credentials to their own gateway and compare the whole answer with the one here,
//! so both services provably answer the same: the answers come from the shared router before
//! any backend-specific code runs (apart from authentication, and the backend's "no such
//! transfer" for an unknown id).

/// One malformed request.
#[derive(Debug, Clone, Copy)]
pub struct MalformedCase {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Relative to the gateway's base URL (no leading slash).
    pub path: &'static str,
    /// JSON body of a `POST` (sent as `application/json`).
    pub body: Option<&'static str>,
    /// Send the credentials of `admin/add-incoming` instead of the exchange's.
    pub admin: bool,
    pub status: u16,
    /// The expected JSON body, compared as JSON.
    pub answer: &'static str,
}

const fn get(path: &'static str, status: u16, answer: &'static str) -> MalformedCase {
    MalformedCase {
        method: "GET",
        path,
        body: None,
        admin: false,
        status,
        answer,
    }
}

const fn post(
    path: &'static str,
    body: &'static str,
    admin: bool,
    answer: &'static str,
) -> MalformedCase {
    MalformedCase {
        method: "POST",
        path,
        body: Some(body),
        admin,
        status: 400,
        answer,
    }
}

/// The cases. Request bodies use the currency `XYZ`, which no test gateway uses.
pub const MALFORMED: &[MalformedCase] = &[
    // History parameters, new and legacy names.
    get(
        "history/incoming?limit=0",
        400,
        r#"{"code":26,"hint":"'limit' must not be zero","detail":"limit"}"#,
    ),
    get(
        "history/outgoing?delta=0",
        400,
        r#"{"code":26,"hint":"'limit' must not be zero","detail":"limit"}"#,
    ),
    get(
        "history/incoming?offset=-1",
        400,
        r#"{"code":26,"hint":"'offset' must not be negative","detail":"offset"}"#,
    ),
    get(
        "history/outgoing?start=-7&delta=5",
        400,
        r#"{"code":26,"hint":"'offset' must not be negative","detail":"offset"}"#,
    ),
    get(
        "history/incoming?limit=5&timeout_ms=-1",
        400,
        r#"{"code":26,"hint":"'timeout_ms' must not be negative","detail":"timeout_ms"}"#,
    ),
    get(
        "history/incoming?long_poll_ms=-1&delta=5",
        400,
        r#"{"code":26,"hint":"'timeout_ms' must not be negative","detail":"timeout_ms"}"#,
    ),
    get(
        "history/incoming?limit=ten",
        400,
        r#"{"code":26,"hint":"malformed query parameter","detail":"Failed to deserialize query string: limit: invalid digit found in string"}"#,
    ),
    get(
        "history/outgoing?offset=1.5",
        400,
        r#"{"code":26,"hint":"malformed query parameter","detail":"Failed to deserialize query string: offset: invalid digit found in string"}"#,
    ),
    // Transfer listing.
    get(
        "transfers?limit=0",
        400,
        r#"{"code":26,"hint":"'limit' must not be zero","detail":"limit"}"#,
    ),
    get(
        "transfers?status=refunded",
        400,
        r#"{"code":26,"hint":"malformed query parameter","detail":"Failed to deserialize query string: status: unknown variant `refunded`, expected one of `pending`, `transient_failure`, `permanent_failure`, `success`"}"#,
    ),
    get(
        "transfers/-1",
        400,
        r#"{"code":26,"hint":"the transfer id must be a non-negative integer","detail":"row_id"}"#,
    ),
    get(
        "transfers/1x",
        400,
        r#"{"code":26,"hint":"the transfer id must be a non-negative integer","detail":"row_id"}"#,
    ),
    get(
        "transfers/18446744073709551616",
        400,
        r#"{"code":26,"hint":"the transfer id must be a non-negative integer","detail":"row_id"}"#,
    ),
    get(
        "transfers/9223372036854775808",
        404,
        r#"{"code":5107,"hint":"transfer 9223372036854775808 is unknown"}"#,
    ),
    // Request bodies.
    post(
        "transfer",
        "{",
        false,
        r#"{"code":22,"hint":"malformed JSON body","detail":"Failed to parse the request body as JSON: EOF while parsing an object at line 1 column 1"}"#,
    ),
    post(
        "transfer",
        r#"{"request_uid":"X","amount":"XYZ:1","exchange_base_url":"https://e.example/","wtid":"Y","credit_account":"payto://x-taler-bank/b/merchant"}"#,
        false,
        r#"{"code":22,"hint":"malformed JSON body","detail":"Failed to deserialize the JSON body into the target type: request_uid: expected 64 bytes (103 base32 characters), got 1 characters at line 1 column 18"}"#,
    ),
    post(
        "transfer",
        r#"{"request_uid":"P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R","amount":"XYZ:1","exchange_base_url":"https://e.example/","wtid":"YVZ49476F3D8Y07PPF4K7TYNV2H0F7P18HQA2CC0JHP8PNVAWMM0","credit_account":"payto://x-taler-bank/b/merchant"}"#,
        false,
        r#"{"code":30,"hint":"the amount is not in the currency of this gateway (see /config)","detail":"amount"}"#,
    ),
    post(
        "admin/add-incoming",
        r#"{"amount":"XYZ:1","reserve_pub":"5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G","debit_account":"payto://x-taler-bank/b/alice"}"#,
        true,
        r#"{"code":30,"hint":"the amount is not in the currency of this gateway (see /config)","detail":"amount"}"#,
    ),
];
