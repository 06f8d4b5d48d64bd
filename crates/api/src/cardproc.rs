//! Wire types of the card processor API (docs/CARDPROC-API.md), shared by the processor
//! (`cardcash-cardproc`) and its client (`cardcash_client::cardproc`).
//!
//! Modelled on Wallee's transaction and refund objects (field names from the Wallee SDKs,
//! c2ec.md §2.4), with two deliberate changes: amounts are exact decimal **strings**
//! ([`DecimalAmount`], never JSON numbers) and `failureReason` is a code string rather than
//! Wallee's nested object. JSON is camelCase; enums use Wallee's SCREAMING_CASE names.
//! No IO and no business rules here: this module only says what the bytes look like.
//! [`mac`] is the request authentication both sides compute, [`iso_time`] Wallee's date form.
//! Error answers carry the common Taler body ([`crate::ErrorDetail`]).

pub mod iso_time;
pub mod mac;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use cardcash_util::{Amount, AmountError, Currency};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use iso_time::IsoTime;

/// Fraction digits always written for amounts (`"20.00"`, `"0.50"`); card currencies have two.
pub const MIN_FRACTION_DIGITS: usize = 2;

/// A non-negative exact decimal without currency (`"20.00"`), in Taler's range (value ≤ 2^52, at
/// most 8 fraction digits). The currency travels in a separate field, as in Wallee's API.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DecimalAmount {
    value: u64,
    fraction: u32,
}

/// ISO 4217's code for "no currency", used only to borrow `Amount`'s decimal parser.
fn placeholder_currency() -> Result<Currency, AmountError> {
    Currency::new("XXX")
}

impl DecimalAmount {
    /// Zero.
    pub const ZERO: Self = Self {
        value: 0,
        fraction: 0,
    };

    /// The amount in `currency`.
    pub fn to_amount(&self, currency: Currency) -> Amount {
        Amount::new(currency, self.value, self.fraction)
            .unwrap_or_else(|_| unreachable!("DecimalAmount is range-checked when constructed"))
    }

    /// Whether this is zero.
    pub const fn is_zero(&self) -> bool {
        self.value == 0 && self.fraction == 0
    }
}

impl From<Amount> for DecimalAmount {
    fn from(a: Amount) -> Self {
        Self {
            value: a.value(),
            fraction: a.fraction(),
        }
    }
}

impl From<&Amount> for DecimalAmount {
    fn from(a: &Amount) -> Self {
        Self::from(*a)
    }
}

impl FromStr for DecimalAmount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::from_decimal(&placeholder_currency()?, s).map(Self::from)
    }
}

impl fmt::Display for DecimalAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match placeholder_currency() {
            Ok(c) => f.write_str(&self.to_amount(c).to_decimal_padded(MIN_FRACTION_DIGITS)),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for DecimalAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for DecimalAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DecimalAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Wallee's transaction states (`TransactionState` in the SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionState {
    /// Created but not yet pending (Wallee internal; we never emit it).
    Create,
    /// Created, waiting for card data.
    Pending,
    /// Confirmed by the merchant (Wallee; we never emit it).
    Confirmed,
    /// Being processed (Wallee; we never emit it).
    Processing,
    /// A processing error; final failure.
    Failed,
    /// The issuer authorized the payment; not yet final.
    Authorized,
    /// An authorization was cancelled; final failure.
    Voided,
    /// Captured, not yet final.
    Completed,
    /// Captured and final: the only state in which C2EC may hand out money.
    Fulfill,
    /// The issuer declined; final failure.
    Decline,
}

impl TransactionState {
    /// All states, in Wallee's order.
    pub const ALL: [Self; 10] = [
        Self::Create,
        Self::Pending,
        Self::Confirmed,
        Self::Processing,
        Self::Failed,
        Self::Authorized,
        Self::Voided,
        Self::Completed,
        Self::Fulfill,
        Self::Decline,
    ];

    /// The wire name (`"FULFILL"`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Processing => "PROCESSING",
            Self::Failed => "FAILED",
            Self::Authorized => "AUTHORIZED",
            Self::Voided => "VOIDED",
            Self::Completed => "COMPLETED",
            Self::Fulfill => "FULFILL",
            Self::Decline => "DECLINE",
        }
    }

    /// `FULFILL`: the money is captured and final.
    pub const fn is_final_success(&self) -> bool {
        matches!(self, Self::Fulfill)
    }

    /// `FAILED`, `DECLINE`, `VOIDED`: the payment will never succeed.
    pub const fn is_final_failure(&self) -> bool {
        matches!(self, Self::Failed | Self::Decline | Self::Voided)
    }

    /// Whether the state will never change again.
    pub const fn is_final(&self) -> bool {
        self.is_final_success() || self.is_final_failure()
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransactionState {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// A stored enum name was not recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown enum name")]
pub struct UnknownName;

/// Why a transaction did not succeed (our code string in place of Wallee's `FailureReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    /// The issuer declined the card.
    Declined,
    /// The issuer declined for lack of funds.
    InsufficientFunds,
    /// The processor or the network failed while processing.
    ProcessingError,
    /// A reason this client does not know (another processor's vocabulary).
    #[serde(other)]
    Other,
}

impl FailureReason {
    /// The wire name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Declined => "DECLINED",
            Self::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Self::ProcessingError => "PROCESSING_ERROR",
            Self::Other => "OTHER",
        }
    }
}

impl FromStr for FailureReason {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Declined,
            Self::InsufficientFunds,
            Self::ProcessingError,
            Self::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or(UnknownName)
    }
}

/// A card transaction as `GET /api/transaction/read` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The processor's id (Wallee: a positive 64-bit number).
    pub id: u64,
    /// The space the transaction belongs to (Wallee's `linkedSpaceId`).
    pub linked_space_id: u64,
    /// Current state, already advanced for delayed finality.
    pub state: TransactionState,
    /// Currency of every amount of this transaction.
    pub currency: Currency,
    /// The amount requested at creation.
    pub authorization_amount: DecimalAmount,
    /// Captured so far (zero until `COMPLETED`).
    pub completed_amount: DecimalAmount,
    /// Refunded so far.
    pub refunded_amount: DecimalAmount,
    /// The merchant's reference; C2EC puts the WOPID here to bind payment and withdrawal.
    pub merchant_reference: String,
    /// The terminal that ran the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    /// Masked PAN (first six and last four digits) once a card was presented.
    pub card_masked: Option<String>,
    /// Why the transaction failed (`DECLINE`/`FAILED` only).
    pub failure_reason: Option<FailureReason>,
    /// When the transaction was created.
    pub created_on: IsoTime,
    /// When the issuer authorized it.
    pub authorized_on: Option<IsoTime>,
    /// When it was captured.
    pub completed_on: Option<IsoTime>,
    /// When it failed or was declined.
    pub failed_on: Option<IsoTime>,
    /// Free-form string pairs from the creator.
    #[serde(default)]
    pub meta_data: BTreeMap<String, String>,
}

impl Transaction {
    /// The authorization amount with its currency.
    pub fn authorization_amount(&self) -> Amount {
        self.authorization_amount.to_amount(self.currency)
    }

    /// The captured amount with its currency.
    pub fn completed_amount(&self) -> Amount {
        self.completed_amount.to_amount(self.currency)
    }

    /// The refunded amount with its currency.
    pub fn refunded_amount(&self) -> Amount {
        self.refunded_amount.to_amount(self.currency)
    }
}

/// `POST /api/transaction/create` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTransactionRequest {
    /// Currency; must be one the processor accepts.
    pub currency: Currency,
    /// Amount to authorize; must be positive.
    pub amount: DecimalAmount,
    /// Merchant reference (C2EC: the WOPID), at most 100 characters.
    pub merchant_reference: String,
    /// The terminal's id, at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    /// Free-form string pairs.
    #[serde(default)]
    pub meta_data: BTreeMap<String, String>,
}

/// A card number as typed or read from the chip. Never printed in full.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardNumber(pub String);

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardNumber(<redacted>)")
    }
}

/// `POST /api/transaction/process-card` body: the card data the terminal read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessCardRequest {
    /// The primary account number (12–19 digits, Luhn-valid).
    pub pan: CardNumber,
    /// Expiry month 1–12.
    pub expiry_month: u8,
    /// Expiry year, four digits.
    pub expiry_year: u16,
    /// Card verification code (3–4 digits), optional as for chip payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvc: Option<String>,
}

impl fmt::Debug for ProcessCardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCardRequest")
            .field("pan", &self.pan)
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .field("cvc", &self.cvc.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Wallee's refund types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundType {
    /// Started by the customer, processed automatically.
    CustomerInitiatedAutomatic,
    /// Started by the customer, processed by hand.
    CustomerInitiatedManual,
    /// Started by the merchant through the API (what C2EC sends).
    MerchantInitiatedOnline,
    /// Started by the merchant outside the processor.
    MerchantInitiatedOffline,
}

impl RefundType {
    /// The wire name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::CustomerInitiatedAutomatic => "CUSTOMER_INITIATED_AUTOMATIC",
            Self::CustomerInitiatedManual => "CUSTOMER_INITIATED_MANUAL",
            Self::MerchantInitiatedOnline => "MERCHANT_INITIATED_ONLINE",
            Self::MerchantInitiatedOffline => "MERCHANT_INITIATED_OFFLINE",
        }
    }
}

impl FromStr for RefundType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::CustomerInitiatedAutomatic,
            Self::CustomerInitiatedManual,
            Self::MerchantInitiatedOnline,
            Self::MerchantInitiatedOffline,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or(UnknownName)
    }
}

/// Wallee's refund states; our refunds succeed synchronously, so only `SUCCESSFUL` is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Being created.
    Create,
    /// Scheduled for processing.
    Scheduled,
    /// Processing.
    Pending,
    /// Needs a human.
    ManualCheck,
    /// Failed.
    Failed,
    /// The money went back to the card.
    Successful,
}

/// `POST /api/refund/refund` body (Wallee's `RefundCreate`, with `amount` as a decimal string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// The caller's idempotency key, unique per transaction (1–100 characters).
    pub external_id: String,
    /// Id of the transaction to refund.
    pub transaction: u64,
    /// Amount to give back, positive, in the transaction's currency.
    pub amount: DecimalAmount,
    /// Refund type; C2EC uses `MERCHANT_INITIATED_ONLINE`.
    #[serde(rename = "type")]
    pub refund_type: RefundType,
    /// Optional merchant reference (at most 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference: Option<String>,
}

/// A refund as `POST /api/refund/refund` and `GET /api/refund/read` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// The processor's refund id.
    pub id: u64,
    /// The caller's idempotency key.
    pub external_id: String,
    /// The space (Wallee's `linkedSpaceId`).
    pub linked_space_id: u64,
    /// Id of the refunded transaction (Wallee embeds the whole transaction object here).
    pub transaction: u64,
    /// Refunded amount.
    pub amount: DecimalAmount,
    /// Currency of `amount` (our addition; Wallee leaves it to the transaction).
    pub currency: Currency,
    /// Always `SUCCESSFUL` here.
    pub state: RefundState,
    /// As requested.
    #[serde(rename = "type")]
    pub refund_type: RefundType,
    /// As requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference: Option<String>,
    /// When the refund was created.
    pub created_on: IsoTime,
    /// When it succeeded.
    pub succeeded_on: Option<IsoTime>,
}

impl Refund {
    /// The refunded amount with its currency.
    pub fn amount(&self) -> Amount {
        self.amount.to_amount(self.currency)
    }
}

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResponse {
    /// `"cardcash-cardproc"`.
    pub name: String,
    /// libtool-style `current:revision:age`.
    pub version: String,
    /// Accepted currencies.
    pub currencies: Vec<Currency>,
    /// The single space this processor serves.
    pub space_id: u64,
}

/// The state of a payout (our addition: Wallee settles outside its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutState {
    /// Due to the merchant's bank account, not yet booked by the bank.
    Pending,
    /// Booked by the bank.
    Paid,
    /// Nothing to wire: refunds, fees and the carried balance ate the captures (the rest is
    /// carried to the next payout as `debt`).
    Netted,
}

impl PayoutState {
    /// The state's name, as in JSON and in the database.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Paid => "PAID",
            Self::Netted => "NETTED",
        }
    }
}

impl fmt::Display for PayoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PayoutState {
    type Err = UnknownPayoutState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "PAID" => Ok(Self::Paid),
            "NETTED" => Ok(Self::Netted),
            _ => Err(UnknownPayoutState(s.to_owned())),
        }
    }
}

/// A payout state name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payout state {0:?}")]
pub struct UnknownPayoutState(pub String);

/// One payout (settlement batch) as `GET /api/payout/list` returns it: the captured card
/// payments it covers, net of refunds, fees and the balance carried from the previous payout.
/// `amount - debt = captured - refunded - fees - carried`, and one of `amount`, `debt` is zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payout {
    /// The processor's payout id (increasing).
    pub id: u64,
    /// The space (Wallee's `linkedSpaceId`).
    pub linked_space_id: u64,
    /// See [`PayoutState`].
    pub state: PayoutState,
    /// Currency of every amount.
    pub currency: Currency,
    /// What is (to be) wired to the merchant's account.
    pub amount: DecimalAmount,
    /// Captured amounts of the transactions covered.
    pub captured_amount: DecimalAmount,
    /// Refunds covered (of these or of earlier paid-out transactions).
    pub refunded_amount: DecimalAmount,
    /// The processor's fees.
    pub fee_amount: DecimalAmount,
    /// The negative balance carried in from the previous payout.
    pub carried_amount: DecimalAmount,
    /// The negative balance carried out to the next payout.
    pub debt_amount: DecimalAmount,
    /// How many transactions it covers.
    pub transaction_count: u64,
    /// How many refunds it covers.
    pub refund_count: u64,
    /// When the payout was made up.
    pub created_on: IsoTime,
    /// When the bank booked it (`PAID` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_on: Option<IsoTime>,
    /// The bank's transaction row id (`PAID` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_transaction_id: Option<u64>,
    /// The transfer subject at the bank.
    pub subject: String,
}

impl Payout {
    /// The wired amount with its currency.
    pub fn amount(&self) -> Amount {
        self.amount.to_amount(self.currency)
    }
}

/// `GET /api/payout/list`: the space's payouts, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutListResponse {
    /// The payouts.
    pub payouts: Vec<Payout>,
}

/// `POST /admin/outage` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageRequest {
    /// `true` makes every `/api/…` call answer 503.
    pub down: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chf() -> Currency {
        Currency::new("CHF").unwrap()
    }

    #[test]
    fn decimal_amount_text() {
        for (input, output) in [
            ("20", "20.00"),
            ("20.5", "20.50"),
            ("0.01", "0.01"),
            ("1.00000001", "1.00000001"),
        ] {
            assert_eq!(input.parse::<DecimalAmount>().unwrap().to_string(), output);
        }
        for bad in [
            "",
            ".5",
            "1.",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1.000000001",
            "4503599627370497",
            "1,5",
        ] {
            assert!(bad.parse::<DecimalAmount>().is_err(), "{bad}");
        }
        let a = "20.50".parse::<DecimalAmount>().unwrap().to_amount(chf());
        assert_eq!(a.to_string(), "CHF:20.5");
        assert_eq!(DecimalAmount::from(a), "20.5".parse().unwrap());
    }

    #[test]
    fn decimal_amount_rejects_json_numbers() {
        assert!(serde_json::from_value::<DecimalAmount>(json!(20.5)).is_err());
        assert_eq!(
            serde_json::to_value("7".parse::<DecimalAmount>().unwrap()).unwrap(),
            json!("7.00")
        );
    }

    #[test]
    fn states_use_wallee_names() {
        for s in TransactionState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(s.as_str().parse::<TransactionState>().unwrap(), s);
        }
        assert!(TransactionState::Fulfill.is_final_success());
        assert!(!TransactionState::Completed.is_final());
        assert!(!TransactionState::Authorized.is_final());
        assert!(TransactionState::Decline.is_final_failure());
        assert!(TransactionState::Voided.is_final_failure());
        assert!(TransactionState::Failed.is_final_failure());
    }

    #[test]
    fn transaction_json_shape() {
        let tx: Transaction = serde_json::from_value(json!({
            "id": 42, "linkedSpaceId": 1, "state": "FULFILL", "currency": "CHF",
            "authorizationAmount": "20.00", "completedAmount": "20.00", "refundedAmount": "0.00",
            "merchantReference": "W", "terminalId": "T-1", "cardMasked": "400000******0002",
            "failureReason": null, "createdOn": "2026-11-22T07:00:00Z",
            "authorizedOn": "2026-11-22T07:00:01Z", "completedOn": "2026-11-22T07:00:01Z",
            "failedOn": null, "metaData": {"a": "b"}
        }))
        .unwrap();
        assert_eq!(tx.completed_amount().to_string(), "CHF:20");
        assert_eq!(tx.state, TransactionState::Fulfill);
        let back = serde_json::to_value(&tx).unwrap();
        assert_eq!(back["authorizationAmount"], json!("20.00"));
        assert_eq!(back["createdOn"], json!("2026-11-22T07:00:00Z"));
        assert_eq!(back["linkedSpaceId"], json!(1));
    }

    #[test]
    fn unknown_failure_reason_is_other() {
        assert_eq!(
            serde_json::from_value::<FailureReason>(json!("FRAUD")).unwrap(),
            FailureReason::Other
        );
        assert_eq!(
            serde_json::to_value(FailureReason::InsufficientFunds).unwrap(),
            json!("INSUFFICIENT_FUNDS")
        );
    }

    #[test]
    fn refund_request_shape() {
        let r: RefundRequest = serde_json::from_value(json!({
            "externalId": "x", "transaction": 42, "amount": "5.00", "type": "MERCHANT_INITIATED_ONLINE"
        }))
        .unwrap();
        assert_eq!(r.refund_type, RefundType::MerchantInitiatedOnline);
        assert_eq!(r.merchant_reference, None);
    }

    #[test]
    fn card_data_never_printed() {
        let req = ProcessCardRequest {
            pan: CardNumber("4000000000000002".into()),
            expiry_month: 12,
            expiry_year: 2030,
            cvc: Some("123".into()),
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("4000000000000002") && !shown.contains("123"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decimal_round_trip(value in 0u64..=(1u64 << 52), fraction in 0u32..100_000_000) {
            let d = DecimalAmount { value, fraction };
            prop_assert_eq!(d.to_string().parse::<DecimalAmount>(), Ok(d));
        }

        #[test]
        fn decimal_parse_never_panics(text in "\\PC{0,30}") {
            let _ = text.parse::<DecimalAmount>();
        }
    }
}
