//! `cardcash exchange offline …`: the commands of the exchange's offline master key, modelled
//! on GNU Taler's `taler-exchange-offline` (same subcommand names, same workflow). The master
//! private key never meets the online exchange's database: `download` fetches what the online
//! exchange proposes (`GET /management/keys`), `sign` checks and signs it on the offline
//! machine, `upload` posts the signatures through `/management/…`. `sync` does the three in one
//! go for an operator whose offline key lives on a machine that can reach the exchange.
//!
//! The documents passed between the steps are JSON arrays of operations
//! `{"operation": NAME, "arguments": {…}}`, with the C tool's operation names
//! (`exchange-input-keys-0`, `exchange-upload-sigs-0`, `exchange-enable-wire-0`, …); each
//! `arguments` is the body of the `/management` request it becomes (docs/OPERATIONS.md lists
//! them). Human-readable text goes to whichever of stdout and stderr does not carry JSON.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cardcash_api::exchange::{
    DenominationPublicKey, DenominationRevocationRequest, FutureKeysResponse, GlobalFeesRequest,
    MasterSignaturesRequest, SignKeyRevocationRequest, WireFeeSetupRequest, WireSetupRequest,
    WireTeardownRequest,
};
use cardcash_client::{ExchangeClient, ManagementClient};
use cardcash_exchange::offline::{MasterKey, check_future_keys};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri, RelativeTime,
    TalerConfig, Timestamp,
};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config_file::ConfigSource;

/// Section of the offline key's options (as in the C exchange).
const SECTION: &str = "exchange-offline";
/// File name of the master key next to the configuration when `MASTER_PRIV_FILE` is not set.
const DEFAULT_MASTER_FILE: &str = "exchange-master.priv";
/// File name of the remembered security-module keys next to the master key.
const DEFAULT_TOFU_FILE: &str = "exchange-secmod-keys.json";

/// Operation names of the documents (those of `taler-exchange-offline`).
mod op {
    pub const INPUT_KEYS: &str = "exchange-input-keys-0";
    pub const UPLOAD_SIGS: &str = "exchange-upload-sigs-0";
    pub const ENABLE_WIRE: &str = "exchange-enable-wire-0";
    pub const DISABLE_WIRE: &str = "exchange-disable-wire-0";
    pub const SET_WIRE_FEE: &str = "exchange-set-wire-fee-0";
    pub const SET_GLOBAL_FEE: &str = "exchange-set-global-fee-0";
    pub const REVOKE_DENOMINATION: &str = "exchange-revoke-denomination-0";
    pub const REVOKE_SIGNKEY: &str = "exchange-revoke-signkey-0";
}

#[derive(Debug, Subcommand)]
pub enum OfflineCommand {
    /// Create the master private key (offline machine) and print its public key.
    ///
    /// Writes a fresh EdDSA key to [exchange-offline] MASTER_PRIV_FILE (default:
    /// exchange-master.priv next to the configuration file), readable by its owner only, and
    /// prints the public key to put into [exchange] MASTER_PUBLIC_KEY of the online exchange.
    /// Never overwrites an existing key file.
    Setup(SetupArgs),
    /// Fetch the keys the online exchange wants signed (online machine).
    ///
    /// GET /management/keys at [exchange] BASE_URL (or --exchange); writes the proposal as an
    /// `exchange-input-keys-0` document for `sign`.
    Download(DownloadArgs),
    /// Show what a downloaded proposal holds, without signing it.
    Show(ShowArgs),
    /// Check and sign a downloaded proposal (offline machine).
    ///
    /// Checks that the proposal is for our master key, that every key carries a valid
    /// signature of the exchange's security module, and that the security modules are the
    /// ones seen at the first signing (their keys are remembered next to the master key);
    /// prints what is signed (denominations with value, fees and validity; signing keys) and
    /// writes an `exchange-upload-sigs-0` document for `upload`.
    Sign(SignArgs),
    /// Upload signed documents to the exchange (online machine).
    ///
    /// Reads the output of `sign`, `enable-account`, `disable-account`, `wire-fee`,
    /// `global-fee` and the revocations (one or several documents, concatenated) and posts each
    /// operation to the exchange's /management endpoints. Uploading the same document twice
    /// is harmless.
    Upload(UploadArgs),
    /// Sign that a bank account of the exchange is in use from a date on.
    ///
    /// Wallets and merchants learn the account from /keys; the exchange wires and receives
    /// money only through accounts that are both configured ([exchange-account-*]) and enabled.
    EnableAccount(EnableAccountArgs),
    /// Sign that a bank account of the exchange is no longer used from a date on.
    DisableAccount(DisableAccountArgs),
    /// Sign the wire fee and closing fee of a wire method for a year or a period.
    ///
    /// The wire fee is charged per transfer to a merchant; the closing fee when a reserve is
    /// closed back to its origin. Fees of one method must not overlap with other values.
    #[command(
        override_usage = "cardcash exchange offline wire-fee [OPTIONS] YEAR METHOD WIRE_FEE CLOSING_FEE\n       \
                          cardcash exchange offline wire-fee [OPTIONS] --start DATE --end DATE METHOD WIRE_FEE CLOSING_FEE"
    )]
    WireFee(WireFeeArgs),
    /// Sign the global fees for a year or a period.
    ///
    /// Wallets require a global fee entry for the current time. This exchange offers no
    /// purses or accounts (GNU Taler's P2P payments), so the purse values matter little;
    /// their defaults: PURSE_TIMEOUT 1 h, HISTORY_EXPIRATION 1 year, PURSE_ACCOUNT_LIMIT 0.
    #[command(
        override_usage = "cardcash exchange offline global-fee [OPTIONS] [YEAR] HISTORY_FEE ACCOUNT_FEE PURSE_FEE \
                          [PURSE_TIMEOUT HISTORY_EXPIRATION PURSE_ACCOUNT_LIMIT]\n       \
                          (without YEAR: --start DATE --end DATE)"
    )]
    GlobalFee(GlobalFeeArgs),
    /// Sign the revocation of a denomination key (its hash, as in /keys).
    ///
    /// The exchange stops issuing and accepting coins of the denomination at once. Cannot be
    /// undone.
    RevokeDenomination(RevokeDenominationArgs),
    /// Sign the revocation of an online signing key (its public key, as in /keys).
    ///
    /// The exchange stops using the key at once; signatures it made become void. Cannot be
    /// undone.
    RevokeSignkey(RevokeSignkeyArgs),
    /// Download, check, sign (showing what) and upload in one go.
    ///
    /// For an operator whose offline key lives on a machine that can reach the exchange (a
    /// test or small deployment); the same checks as `sign`. Then notes what is still missing:
    /// an enabled account, wire and closing fees of every account's wire method (those /keys
    /// lists and the configured [exchange-account-*] sections, debit-only ones included), and
    /// global fees, for now and the next 30 days.
    Sync(SyncArgs),
}

/// Where the master key is.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The master private key file (default: [exchange-offline] MASTER_PRIV_FILE, else
    /// exchange-master.priv next to the configuration file).
    #[arg(long, value_name = "FILE")]
    master_key: Option<PathBuf>,
}

/// Where the exchange is.
#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// The exchange's base URL (default: [exchange] BASE_URL).
    #[arg(long, value_name = "URL")]
    exchange: Option<String>,
}

/// Where a signed document goes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the document to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    /// Upload the signed document to the exchange right away instead of writing it (for an
    /// offline key on a machine that can reach the exchange).
    #[arg(long, conflicts_with = "out")]
    upload: bool,
    #[command(flatten)]
    exchange: ExchangeArgs,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Write the proposal to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    exchange: ExchangeArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The output of `download` (default: stdin).
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The output of `download` (default: stdin).
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the signatures to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Signed documents (default: stdin).
    #[arg(value_name = "FILE")]
    input: Vec<PathBuf>,
    #[command(flatten)]
    exchange: ExchangeArgs,
}

#[derive(Debug, Args)]
pub struct EnableAccountArgs {
    /// The account's full payto URI, as in [exchange-account-*] PAYTO_URI (with
    /// receiver-name).
    #[arg(value_name = "PAYTO")]
    payto: String,
    /// From when the account is valid: `now`, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC) or
    /// `@SECONDS` since the epoch. A later enable or disable of the same account wins.
    #[arg(long, value_name = "DATE", default_value = "now")]
    start: String,
    /// The bank's name as wallets show it.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// Order among the exchange's accounts in wallets (higher first).
    #[arg(long, default_value_t = 0)]
    priority: i64,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DisableAccountArgs {
    /// The account's full payto URI, as it was enabled.
    #[arg(value_name = "PAYTO")]
    payto: String,
    /// From when the account is no longer valid (same forms as `enable-account --start`).
    #[arg(long, value_name = "DATE", default_value = "now")]
    end: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

/// A fee period: a calendar year (UTC) or `--start`/`--end`.
#[derive(Debug, Args)]
pub struct PeriodArgs {
    /// First moment of the period (instead of YEAR; same forms as `enable-account --start`).
    #[arg(long, value_name = "DATE", requires = "end")]
    start: Option<String>,
    /// End of the period, exclusive.
    #[arg(long, value_name = "DATE", requires = "start")]
    end: Option<String>,
}

#[derive(Debug, Args)]
pub struct WireFeeArgs {
    /// [YEAR] METHOD WIRE_FEE CLOSING_FEE: YEAR is `2025` or `now` (the current year, UTC),
    /// METHOD a payto type (`iban`, `x-taler-bank`), the fees amounts (`KUDOS:0.01`).
    #[arg(value_name = "ARG", num_args = 3..=4, required = true)]
    args: Vec<String>,
    #[command(flatten)]
    period: PeriodArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct GlobalFeeArgs {
    /// [YEAR] HISTORY_FEE ACCOUNT_FEE PURSE_FEE [PURSE_TIMEOUT HISTORY_EXPIRATION
    /// PURSE_ACCOUNT_LIMIT]: amounts, durations (`1h`, `1 year`) and a count.
    #[arg(value_name = "ARG", num_args = 3..=7, required = true)]
    args: Vec<String>,
    #[command(flatten)]
    period: PeriodArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct RevokeDenominationArgs {
    /// The denomination's public key hash (`h_denom_pub`, base32).
    #[arg(value_name = "H_DENOM_PUB")]
    h_denom_pub: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct RevokeSignkeyArgs {
    /// The online signing key (`exchange_pub`, base32).
    #[arg(value_name = "EXCHANGE_PUB")]
    exchange_pub: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    exchange: ExchangeArgs,
    #[command(flatten)]
    key: KeyArgs,
}

/// One step of a document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Operation {
    operation: String,
    arguments: Value,
}

impl Operation {
    fn new(name: &str, arguments: &impl Serialize) -> anyhow::Result<Self> {
        Ok(Self {
            operation: name.to_owned(),
            arguments: serde_json::to_value(arguments).context("encoding the document")?,
        })
    }
}

/// `arguments` of `exchange-revoke-denomination-0`.
#[derive(Debug, Serialize, Deserialize)]
struct DenominationRevocation {
    h_denom_pub: HashCode,
    master_sig: EddsaSignature,
}

/// `arguments` of `exchange-revoke-signkey-0`.
#[derive(Debug, Serialize, Deserialize)]
struct SigningKeyRevocation {
    exchange_pub: EddsaPublicKey,
    master_sig: EddsaSignature,
}

/// The configuration, when there is a file, and where it is.
struct Settings {
    path: PathBuf,
    config: Option<TalerConfig>,
}

impl Settings {
    fn load(source: &ConfigSource) -> anyhow::Result<Self> {
        let path = source.path().to_owned();
        // The offline machine may have no configuration at all (`--master-key` says where the
        // key is); a file that exists must parse.
        let config = if path.exists() {
            Some(source.load()?)
        } else {
            None
        };
        Ok(Self { path, config })
    }

    fn require_config(&self, what: &str, flag: &str) -> anyhow::Result<&TalerConfig> {
        self.config.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{what} is needed: configuration file {} not found and no {flag} given; pass \
                 -c FILE or {flag}",
                self.path.display()
            )
        })
    }

    /// The master key file: `--master-key`, `[exchange-offline] MASTER_PRIV_FILE`, or
    /// `exchange-master.priv` next to the configuration.
    fn master_path(&self, key: &KeyArgs) -> anyhow::Result<PathBuf> {
        if let Some(path) = &key.master_key {
            return Ok(path.clone());
        }
        let config = self.require_config("the master key file", "--master-key FILE")?;
        if let Some(path) = config.path_opt(SECTION, "MASTER_PRIV_FILE")? {
            return Ok(path);
        }
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(dir.join(DEFAULT_MASTER_FILE))
    }

    /// Where the security modules' keys are remembered: `[exchange-offline] SECM_TOFU_FILE`,
    /// else next to the master key.
    fn tofu_path(&self, master: &Path) -> anyhow::Result<PathBuf> {
        if let Some(config) = &self.config
            && let Some(path) = config.path_opt(SECTION, "SECM_TOFU_FILE")?
        {
            return Ok(path);
        }
        let dir = master
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(dir.join(DEFAULT_TOFU_FILE))
    }

    /// The exchange's URL: `--exchange`, `[exchange] BASE_URL`, else `http://{BIND}/`.
    fn exchange_url(&self, args: &ExchangeArgs) -> anyhow::Result<BaseUrl> {
        if let Some(url) = &args.exchange {
            return BaseUrl::parse(url).with_context(|| format!("--exchange {url}"));
        }
        let config = self.require_config("the exchange's URL", "--exchange URL")?;
        if let Some(url) = config.base_url_opt("exchange", "BASE_URL")? {
            return Ok(url);
        }
        if let Some(bind) = config.string_opt("exchange", "BIND")?
            && let Ok(addr) = bind.parse::<std::net::SocketAddr>()
            && addr.port() != 0
        {
            let host = if addr.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                addr.ip()
            };
            let url = format!("http://{}/", std::net::SocketAddr::new(host, addr.port()));
            return BaseUrl::parse(&url)
                .with_context(|| format!("URL from [exchange] BIND: {url}"));
        }
        bail!(
            "no exchange URL: set BASE_URL in section [exchange] of {}, or pass --exchange URL",
            self.path.display()
        )
    }

    /// The exchange's currency, when the configuration names one (amounts are checked
    /// against it before anything is signed).
    fn currency(&self) -> Option<Currency> {
        let config = self.config.as_ref()?;
        match config.currency_opt("exchange", "CURRENCY") {
            Ok(Some(c)) => Some(c),
            _ => config.currency_opt("taler", "CURRENCY").ok().flatten(),
        }
    }

    /// The configured master public key, if any.
    fn configured_master_pub(&self) -> anyhow::Result<Option<EddsaPublicKey>> {
        let Some(config) = &self.config else {
            return Ok(None);
        };
        match config
            .string_opt("exchange", "MASTER_PUBLIC_KEY")?
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| anyhow::anyhow!("[exchange] MASTER_PUBLIC_KEY {text}: {e}")),
        }
    }

    /// Loads the master key with errors that say what to do.
    fn master_key(&self, key: &KeyArgs) -> anyhow::Result<MasterKey> {
        let path = self.master_path(key)?;
        if !path.exists() {
            bail!(
                "no master key at {}: create it with `cardcash exchange offline setup` on the \
                 offline machine, or point [exchange-offline] MASTER_PRIV_FILE or --master-key \
                 at the existing key file",
                path.display()
            );
        }
        warn_if_readable_by_others(&path);
        let master = MasterKey::load(&path)?;
        if let Some(configured) = self.configured_master_pub()?
            && configured != master.public()
        {
            bail!(
                "the master key at {} is {}, but [exchange] MASTER_PUBLIC_KEY of {} is \
                 {configured}: the wrong key file, or the configuration of another exchange",
                path.display(),
                master.public(),
                self.path.display()
            );
        }
        Ok(master)
    }

    /// The `[exchange-account-*]` sections the exchange uses (`ENABLE_DEBIT` or
    /// `ENABLE_CREDIT`; as the C exchange, an account enabled for neither is not loaded), and
    /// what could not be read of them. None without a configuration file.
    fn configured_accounts(&self) -> (Vec<ConfiguredAccount>, Vec<String>) {
        let (mut accounts, mut unreadable) = (Vec::new(), Vec::new());
        let Some(config) = &self.config else {
            return (accounts, unreadable);
        };
        for section in config.sections() {
            if !section
                .to_ascii_lowercase()
                .starts_with("exchange-account-")
            {
                continue;
            }
            let flag = |option: &str| config.yes_no_opt(&section, option);
            let read = || -> anyhow::Result<Option<ConfiguredAccount>> {
                let (debit, credit) = (
                    flag("ENABLE_DEBIT")?.unwrap_or(false),
                    flag("ENABLE_CREDIT")?.unwrap_or(false),
                );
                if !debit && !credit {
                    return Ok(None);
                }
                let text = config.string(&section, "PAYTO_URI")?;
                let payto: PaytoUri = text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("PAYTO_URI {text}: not a payto URI: {e}"))?;
                Ok(Some(ConfiguredAccount {
                    section: section.clone(),
                    method: payto.target_type().to_owned(),
                    credit,
                }))
            };
            match read() {
                Ok(Some(account)) => accounts.push(account),
                Ok(None) => {}
                Err(e) => unreadable.push(format!(
                    "[{section}] of {} cannot be read, so its fees are not checked: {e:#}",
                    self.path.display()
                )),
            }
        }
        (accounts, unreadable)
    }

    fn client(&self, args: &ExchangeArgs) -> anyhow::Result<ManagementClient> {
        let url = self.exchange_url(args)?;
        Ok(ExchangeClient::new(url)?.management())
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} can be read by other users (mode {:o}); `chmod 600` it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Where human-readable text goes: the stream that does not carry the JSON document.
struct Human {
    to_stderr: bool,
}

impl Human {
    fn beside(json_to_stdout: bool) -> Self {
        Self {
            to_stderr: json_to_stdout,
        }
    }

    fn say(&self, text: &str) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

pub async fn run(cmd: OfflineCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let settings = Settings::load(source)?;
    match cmd {
        OfflineCommand::Setup(args) => setup(&settings, &args),
        OfflineCommand::Download(args) => {
            let client = settings.client(&args.exchange)?;
            let future = client.future_keys().await?;
            let human = Human::beside(args.out.is_none());
            write_document(
                args.out.as_deref(),
                &[Operation::new(op::INPUT_KEYS, &future)?],
            )?;
            human.say(&format!(
                "downloaded {} denomination and {} signing keys to sign from {}",
                future.future_denoms.len(),
                future.future_signkeys.len(),
                client.base_url()
            ));
            Ok(())
        }
        OfflineCommand::Show(args) => {
            let future = read_future_keys(args.input.as_deref())?;
            let hashes = check_future_keys(&future)?;
            println!("{}", summary(&future, &hashes));
            Ok(())
        }
        OfflineCommand::Sign(args) => {
            let future = read_future_keys(args.input.as_deref())?;
            let human = Human::beside(args.out.is_none());
            let signatures = sign(&settings, &args.key, &future, &human)?;
            write_document(
                args.out.as_deref(),
                &[Operation::new(op::UPLOAD_SIGS, &signatures)?],
            )
        }
        OfflineCommand::Upload(args) => {
            let operations = read_documents(&args.input)?;
            let client = settings.client(&args.exchange)?;
            upload(&client, &operations).await
        }
        OfflineCommand::EnableAccount(args) => {
            let payto: PaytoUri = args
                .payto
                .parse()
                .with_context(|| format!("payto URI {}", args.payto))?;
            let start = parse_date(&args.start).context("--start")?;
            let master = settings.master_key(&args.key)?;
            let request = master.enable_account(&payto, start, args.label, args.priority)?;
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!("enables account {payto} from {}", utc(start)));
            emit(
                &settings,
                &args.output,
                Operation::new(op::ENABLE_WIRE, &request)?,
            )
            .await
        }
        OfflineCommand::DisableAccount(args) => {
            let payto: PaytoUri = args
                .payto
                .parse()
                .with_context(|| format!("payto URI {}", args.payto))?;
            let end = parse_date(&args.end).context("--end")?;
            let master = settings.master_key(&args.key)?;
            let request = master.disable_account(&payto, end);
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!("disables account {payto} from {}", utc(end)));
            emit(
                &settings,
                &args.output,
                Operation::new(op::DISABLE_WIRE, &request)?,
            )
            .await
        }
        OfflineCommand::WireFee(args) => {
            let (period, rest) = period(&args.args, &args.period, 3)?;
            let [method, wire_fee, closing_fee] = rest.as_slice() else {
                bail!("wire-fee takes [YEAR] METHOD WIRE_FEE CLOSING_FEE (see --help)");
            };
            let wire_fee = amount(&settings, "WIRE_FEE", wire_fee)?;
            let closing_fee = amount(&settings, "CLOSING_FEE", closing_fee)?;
            same_currency(&[wire_fee, closing_fee])?;
            let master = settings.master_key(&args.key)?;
            let request = master.wire_fee(method, period.0, period.1, wire_fee, closing_fee);
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!(
                "wire fees of {method} from {} to {}: wire fee {wire_fee}, closing fee {closing_fee}",
                utc(period.0),
                utc(period.1)
            ));
            emit(
                &settings,
                &args.output,
                Operation::new(op::SET_WIRE_FEE, &request)?,
            )
            .await
        }
        OfflineCommand::GlobalFee(args) => {
            let (period, rest) = period(&args.args, &args.period, 3)?;
            let (fees, purse) = match rest.as_slice() {
                [h, a, p] => ([*h, *a, *p], None),
                [h, a, p, t, e, l] => ([*h, *a, *p], Some((*t, *e, *l))),
                _ => bail!(
                    "global-fee takes [YEAR] HISTORY_FEE ACCOUNT_FEE PURSE_FEE \
                     [PURSE_TIMEOUT HISTORY_EXPIRATION PURSE_ACCOUNT_LIMIT] (see --help)"
                ),
            };
            let history_fee = amount(&settings, "HISTORY_FEE", fees[0])?;
            let account_fee = amount(&settings, "ACCOUNT_FEE", fees[1])?;
            let purse_fee = amount(&settings, "PURSE_FEE", fees[2])?;
            same_currency(&[history_fee, account_fee, purse_fee])?;
            let (purse_timeout, history_expiration, purse_account_limit) = match purse {
                None => (
                    RelativeTime::from_secs(3600),
                    RelativeTime::from_secs(365 * 86_400),
                    0,
                ),
                Some((t, e, l)) => (
                    t.parse::<RelativeTime>()
                        .with_context(|| format!("PURSE_TIMEOUT {t}"))?,
                    e.parse::<RelativeTime>()
                        .with_context(|| format!("HISTORY_EXPIRATION {e}"))?,
                    l.parse::<u32>()
                        .with_context(|| format!("PURSE_ACCOUNT_LIMIT {l}"))?,
                ),
            };
            let master = settings.master_key(&args.key)?;
            let request = master.global_fees(
                period.0,
                period.1,
                history_fee,
                account_fee,
                purse_fee,
                purse_timeout,
                history_expiration,
                purse_account_limit,
            );
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!(
                "global fees from {} to {}: history {history_fee}, account {account_fee}, \
                 purse {purse_fee} (purse timeout {purse_timeout}, histories kept \
                 {history_expiration}, {purse_account_limit} free purses per account)",
                utc(period.0),
                utc(period.1)
            ));
            emit(
                &settings,
                &args.output,
                Operation::new(op::SET_GLOBAL_FEE, &request)?,
            )
            .await
        }
        OfflineCommand::RevokeDenomination(args) => {
            let h_denom_pub: HashCode = args
                .h_denom_pub
                .parse()
                .map_err(|e| anyhow::anyhow!("H_DENOM_PUB {}: {e}", args.h_denom_pub))?;
            let master = settings.master_key(&args.key)?;
            let revocation = DenominationRevocation {
                h_denom_pub,
                master_sig: master.revoke_denomination(h_denom_pub),
            };
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!(
                "revokes denomination {h_denom_pub}: no coin of it is issued or accepted \
                 once this is uploaded"
            ));
            emit(
                &settings,
                &args.output,
                Operation::new(op::REVOKE_DENOMINATION, &revocation)?,
            )
            .await
        }
        OfflineCommand::RevokeSignkey(args) => {
            let exchange_pub: EddsaPublicKey = args
                .exchange_pub
                .parse()
                .map_err(|e| anyhow::anyhow!("EXCHANGE_PUB {}: {e}", args.exchange_pub))?;
            let master = settings.master_key(&args.key)?;
            let revocation = SigningKeyRevocation {
                exchange_pub,
                master_sig: master.revoke_signkey(exchange_pub),
            };
            let human = Human::beside(args.output.out.is_none() && !args.output.upload);
            human.say(&format!(
                "revokes signing key {exchange_pub}: the exchange stops signing with it once \
                 this is uploaded"
            ));
            emit(
                &settings,
                &args.output,
                Operation::new(op::REVOKE_SIGNKEY, &revocation)?,
            )
            .await
        }
        OfflineCommand::Sync(args) => {
            // Load the key first: a missing key is said before any network traffic.
            settings.master_key(&args.key)?;
            let client = settings.client(&args.exchange)?;
            let future = client.future_keys().await?;
            let human = Human::beside(false);
            let signatures = sign(&settings, &args.key, &future, &human)?;
            if !signatures.denom_sigs.is_empty() || !signatures.signkey_sigs.is_empty() {
                upload(&client, &[Operation::new(op::UPLOAD_SIGS, &signatures)?]).await?;
            }
            // What else the offline key owes the exchange, judged from /keys (skipped when
            // /keys is not served yet) and the configured accounts: /keys lists only those
            // that take money, not the debit-only ones (a card-transaction account that sends
            // closed reserves back to cards), whose fees the exchange needs as well.
            if let Ok(keys) = ExchangeClient::new(client.base_url().clone())?.keys().await {
                let accounts: Vec<PaytoUri> =
                    keys.accounts.iter().map(|a| a.payto_uri.clone()).collect();
                let (configured, unreadable) = settings.configured_accounts();
                for line in unreadable {
                    println!("note: {line}");
                }
                let wire_fees: BTreeMap<String, Vec<(Timestamp, Timestamp)>> = keys
                    .wire_fees
                    .iter()
                    .map(|(m, fees)| {
                        (
                            m.clone(),
                            fees.iter().map(|f| (f.start_date, f.end_date)).collect(),
                        )
                    })
                    .collect();
                let global: Vec<(Timestamp, Timestamp)> = keys
                    .global_fees
                    .iter()
                    .map(|f| (f.start_date, f.end_date))
                    .collect();
                for line in advice(
                    &accounts,
                    &configured,
                    &wire_fees,
                    &global,
                    Timestamp::now(),
                ) {
                    println!("note: {line}");
                }
            }
            Ok(())
        }
    }
}

fn setup(settings: &Settings, args: &SetupArgs) -> anyhow::Result<()> {
    let path = settings.master_path(&args.key)?;
    if path.exists() {
        let existing = MasterKey::load(&path)
            .map(|k| format!(" (its public key is {})", k.public()))
            .unwrap_or_default();
        bail!(
            "{} exists already{existing}: setup never overwrites a master key. To start a new \
             exchange, choose another MASTER_PRIV_FILE",
            path.display()
        );
    }
    let master = MasterKey::create(&path)?;
    println!("{}", master.public());
    eprintln!(
        "created the master key {} (keep it offline, back it up); put its public key into the \
         online exchange's configuration:\n\n[exchange]\nMASTER_PUBLIC_KEY = {}",
        path.display(),
        master.public()
    );
    Ok(())
}

/// `sign`'s checks and signatures: our master key, the remembered security modules, every
/// announcement valid; the summary before signing.
fn sign(
    settings: &Settings,
    key: &KeyArgs,
    future: &FutureKeysResponse,
    human: &Human,
) -> anyhow::Result<MasterSignaturesRequest> {
    let master = settings.master_key(key)?;
    if future.master_pub != master.public() {
        bail!(
            "the exchange proposes keys for master key {}, but ours is {}: the proposal comes \
             from another exchange, or its MASTER_PUBLIC_KEY is wrong; nothing signed",
            future.master_pub,
            master.public()
        );
    }
    let master_path = settings.master_path(key)?;
    let tofu = settings.tofu_path(&master_path)?;
    let hashes = check_future_keys(future)?;
    check_security_modules(&tofu, future)?;
    if future.future_denoms.is_empty() && future.future_signkeys.is_empty() {
        human.say("nothing to sign: the exchange proposes no new keys");
    } else {
        human.say(&summary(future, &hashes));
    }
    Ok(master.sign_future_keys(future)?)
}

/// The security modules' keys remembered at the first signing (trust on first use, as the C
/// tool's `SECM_TOFU_FILE`): a proposal signed by other modules is refused. All-zero keys are
/// modules that hold no keys yet.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SecurityModules {
    denom_secmod_public_key: Option<EddsaPublicKey>,
    denom_secmod_cs_public_key: Option<EddsaPublicKey>,
    signkey_secmod_public_key: Option<EddsaPublicKey>,
}

fn check_security_modules(path: &Path, future: &FutureKeysResponse) -> anyhow::Result<()> {
    let mut known: SecurityModules = if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?
    } else {
        SecurityModules::default()
    };
    let zero = EddsaPublicKey::from_bytes([0; 32]);
    let mut learned = false;
    for (name, slot, proposed) in [
        (
            "RSA denominations",
            &mut known.denom_secmod_public_key,
            future.denom_secmod_public_key,
        ),
        (
            "CS denominations",
            &mut known.denom_secmod_cs_public_key,
            future.denom_secmod_cs_public_key,
        ),
        (
            "signing keys",
            &mut known.signkey_secmod_public_key,
            future.signkey_secmod_public_key,
        ),
    ] {
        if proposed == zero {
            continue;
        }
        match slot {
            Some(k) if *k == proposed => {}
            Some(k) => bail!(
                "the exchange's security module for {name} changed from {k} to {proposed} since \
                 the first signing (remembered in {}): refusing to sign. If the exchange's \
                 KEY_DIR was replaced on purpose, delete that file; otherwise the online \
                 machine may be compromised",
                path.display()
            ),
            None => {
                *slot = Some(proposed);
                learned = true;
            }
        }
    }
    if learned {
        let text = serde_json::to_string_pretty(&known).context("encoding security modules")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// What a proposal holds, for a person to read before signing.
fn summary(future: &FutureKeysResponse, hashes: &[HashCode]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "The exchange (master key {}) proposes {} denomination key(s) and {} signing key(s):",
        future.master_pub,
        future.future_denoms.len(),
        future.future_signkeys.len()
    );
    for (d, h) in future.future_denoms.iter().zip(hashes) {
        let cipher = match &d.denom_pub {
            DenominationPublicKey::Rsa { rsa_pub, .. } => {
                cardcash_crypto::rsa::RsaPublicKey::decode(rsa_pub.as_bytes())
                    .map_or_else(|_| "RSA".to_owned(), |k| format!("RSA-{}", k.bits()))
            }
            DenominationPublicKey::Cs { .. } => "CS".to_owned(),
        };
        let _ = writeln!(
            s,
            "  denomination {} ({cipher}) value {}\n    fees: withdraw {}, deposit {}, refresh {}, refund {}\n    \
             withdraw from {} until {}, deposit until {}, legal until {}\n    h_denom_pub {h}",
            d.section_name,
            d.value,
            d.fee_withdraw,
            d.fee_deposit,
            d.fee_refresh,
            d.fee_refund,
            utc(d.stamp_start),
            utc(d.stamp_expire_withdraw),
            utc(d.stamp_expire_deposit),
            utc(d.stamp_expire_legal),
        );
    }
    for k in &future.future_signkeys {
        let _ = writeln!(
            s,
            "  signing key {}\n    signs from {} until {}, legal until {}",
            k.key,
            utc(k.stamp_start),
            utc(k.stamp_expire),
            utc(k.stamp_end)
        );
    }
    let _ = write!(
        s,
        "Every key carries a valid signature of the exchange's security module."
    );
    s
}

/// How long ahead fees should be signed.
const FEE_NOTICE_S: u64 = 30 * 86_400;

/// An `[exchange-account-*]` section the exchange uses, as `sync` judges its fees.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConfiguredAccount {
    section: String,
    /// The wire method of its `PAYTO_URI`.
    method: String,
    /// `ENABLE_CREDIT` (otherwise the account only pays out: debit-only).
    credit: bool,
}

/// What the offline key still owes the exchange at `now`, judged from `/keys` (`enabled`: its
/// accounts; the fees) and the configured accounts: an enabled account, wire and closing fees of
/// the wire method of every account (listed in `/keys` or configured, the debit-only ones
/// included) and global fees, for now and the next 30 days.
fn advice(
    enabled: &[PaytoUri],
    configured: &[ConfiguredAccount],
    wire_fees: &BTreeMap<String, Vec<(Timestamp, Timestamp)>>,
    global_fees: &[(Timestamp, Timestamp)],
    now: Timestamp,
) -> Vec<String> {
    let mut notes = Vec::new();
    if enabled.is_empty() {
        notes.push(
            "no bank account is enabled, so wallets cannot pay in: sign one with \
             `cardcash exchange offline enable-account PAYTO`"
                .to_owned(),
        );
    }
    // The end of the fee periods that follow each other from `now` on, if one covers `now`.
    let covered_until = |periods: &[(Timestamp, Timestamp)]| {
        let mut until: Option<Timestamp> = None;
        loop {
            let at = until.unwrap_or(now);
            match periods
                .iter()
                .filter(|(start, end)| *start <= at && at < *end)
                .map(|(_, end)| *end)
                .max()
            {
                Some(end) if until != Some(end) => until = Some(end),
                _ => return until,
            }
        }
    };
    let soon = Timestamp::from_secs(now.as_secs().saturating_add(FEE_NOTICE_S));
    // Each method with the accounts that need its fees.
    let mut methods: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for payto in enabled {
        methods.entry(payto.target_type()).or_default();
    }
    for account in configured {
        methods
            .entry(account.method.as_str())
            .or_default()
            .push(if account.credit {
                format!("[{}]", account.section)
            } else {
                format!("the debit-only [{}]", account.section)
            });
    }
    for (method, sections) in methods {
        let who = if sections.is_empty() {
            "an account /keys lists".to_owned()
        } else {
            sections.join(", ")
        };
        match covered_until(wire_fees.get(method).map(Vec::as_slice).unwrap_or_default()) {
            None => notes.push(format!(
                "no wire fee of {method} covers now ({who}), so merchants' {method} accounts \
                 are not paid and reserves funded from {method} accounts are not closed (their \
                 closing fee): sign one with \
                 `cardcash exchange offline wire-fee now {method} WIRE_FEE CLOSING_FEE`"
            )),
            Some(end) if end < soon => notes.push(format!(
                "the wire fees of {method} end on {} ({who}): sign the next period \
                 (`cardcash exchange offline wire-fee YEAR {method} WIRE_FEE CLOSING_FEE`)",
                utc(end)
            )),
            Some(_) => {}
        }
    }
    match covered_until(global_fees) {
        None => notes.push(
            "no global fee covers now, and wallets need one: sign it with \
             `cardcash exchange offline global-fee now HISTORY_FEE ACCOUNT_FEE PURSE_FEE`"
                .to_owned(),
        ),
        Some(end) if end < soon => notes.push(format!(
            "the global fees end on {}: sign the next period \
             (`cardcash exchange offline global-fee YEAR …`)",
            utc(end)
        )),
        Some(_) => {}
    }
    notes
}

/// Writes a document to `out` or stdout.
fn write_document(out: Option<&Path>, operations: &[Operation]) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(operations).context("encoding the document")? + "\n";
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(())
}

/// A signing command's result: written (file or stdout) or uploaded at once.
async fn emit(
    settings: &Settings,
    output: &OutputArgs,
    operation: Operation,
) -> anyhow::Result<()> {
    if output.upload {
        let client = settings.client(&output.exchange)?;
        upload(&client, &[operation]).await
    } else {
        write_document(output.out.as_deref(), &[operation])
    }
}

/// Reads `files` (or stdin): any number of concatenated documents, each an array of
/// operations or a single one.
fn read_documents(files: &[PathBuf]) -> anyhow::Result<Vec<Operation>> {
    let mut texts = Vec::new();
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        texts.push(("stdin".to_owned(), read_stdin()?));
    }
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        texts.push((f.display().to_string(), text));
    }
    let mut operations = Vec::new();
    for (name, text) in texts {
        for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            let value = value.with_context(|| format!("{name}: not JSON"))?;
            let list = match value {
                Value::Array(items) => items,
                single => vec![single],
            };
            for item in list {
                operations.push(serde_json::from_value::<Operation>(item).with_context(|| {
                    format!("{name}: not an operation {{\"operation\", \"arguments\"}}")
                })?);
            }
        }
    }
    if operations.is_empty() {
        bail!("nothing to upload: the input holds no operation");
    }
    Ok(operations)
}

fn read_stdin() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprintln!("(reading the document from stdin; end with Ctrl-D)");
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading stdin")?;
    Ok(text)
}

/// The proposal in `download`'s output (or the bare `GET /management/keys` answer).
fn read_future_keys(input: Option<&Path>) -> anyhow::Result<FutureKeysResponse> {
    let (name, text) = match input {
        Some(path) if path.as_os_str() != "-" => (
            path.display().to_string(),
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        _ => ("stdin".to_owned(), read_stdin()?),
    };
    if let Ok(future) = serde_json::from_str::<FutureKeysResponse>(&text) {
        return Ok(future);
    }
    let mut found = None;
    for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let value = value.with_context(|| format!("{name}: not JSON"))?;
        let list = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        for item in list {
            let Ok(operation) = serde_json::from_value::<Operation>(item) else {
                continue;
            };
            if operation.operation == op::INPUT_KEYS {
                if found.is_some() {
                    bail!("{name} holds two proposals: sign one at a time");
                }
                found = Some(
                    serde_json::from_value::<FutureKeysResponse>(operation.arguments)
                        .with_context(|| format!("{name}: the proposal is malformed"))?,
                );
            }
        }
    }
    found.ok_or_else(|| {
        anyhow::anyhow!(
            "{name} holds no proposal ({}): make one with `cardcash exchange offline download`",
            op::INPUT_KEYS
        )
    })
}

/// Posts each operation; reports each outcome; fails if one failed.
async fn upload(client: &ManagementClient, operations: &[Operation]) -> anyhow::Result<()> {
    let mut failed = 0;
    for operation in operations {
        let (what, result) = upload_one(client, operation).await;
        match result {
            Ok(()) => println!("uploaded: {what}"),
            Err(e) => {
                failed += 1;
                eprintln!("FAILED: {what}: {}", crate::render_error(&e));
            }
        }
    }
    if failed > 0 {
        if failed < operations.len() {
            eprintln!(
                "{failed} of {} operations failed; the others were stored (uploading them again \
                 is harmless)",
                operations.len()
            );
        }
        return Err(crate::Reported.into());
    }
    Ok(())
}

fn arguments<T: serde::de::DeserializeOwned>(operation: &Operation) -> anyhow::Result<T> {
    serde_json::from_value(operation.arguments.clone())
        .with_context(|| format!("the arguments of {} are malformed", operation.operation))
}

async fn upload_one(
    client: &ManagementClient,
    operation: &Operation,
) -> (String, anyhow::Result<()>) {
    let name = operation.operation.as_str();
    let mut what = name.to_owned();
    let result = async {
        match name {
            op::UPLOAD_SIGS => {
                let r: MasterSignaturesRequest = arguments(operation)?;
                what = format!(
                    "signatures of {} denomination and {} signing keys",
                    r.denom_sigs.len(),
                    r.signkey_sigs.len()
                );
                client.upload_keys(&r).await?;
            }
            op::ENABLE_WIRE => {
                let r: WireSetupRequest = arguments(operation)?;
                what = format!("enable account {}", r.payto_uri);
                client.enable_wire(&r).await?;
            }
            op::DISABLE_WIRE => {
                let r: WireTeardownRequest = arguments(operation)?;
                what = format!("disable account {}", r.payto_uri);
                client.disable_wire(&r).await?;
            }
            op::SET_WIRE_FEE => {
                let r: WireFeeSetupRequest = arguments(operation)?;
                what = format!(
                    "wire fees of {} from {} to {}",
                    r.wire_method,
                    utc(r.fee_start),
                    utc(r.fee_end)
                );
                client.set_wire_fee(&r).await?;
            }
            op::SET_GLOBAL_FEE => {
                let r: GlobalFeesRequest = arguments(operation)?;
                what = format!(
                    "global fees from {} to {}",
                    utc(r.fee_start),
                    utc(r.fee_end)
                );
                client.set_global_fees(&r).await?;
            }
            op::REVOKE_DENOMINATION => {
                let r: DenominationRevocation = arguments(operation)?;
                what = format!("revocation of denomination {}", r.h_denom_pub);
                client
                    .revoke_denomination(
                        &r.h_denom_pub,
                        &DenominationRevocationRequest {
                            master_sig: r.master_sig,
                        },
                    )
                    .await?;
            }
            op::REVOKE_SIGNKEY => {
                let r: SigningKeyRevocation = arguments(operation)?;
                what = format!("revocation of signing key {}", r.exchange_pub);
                client
                    .revoke_signkey(
                        &r.exchange_pub,
                        &SignKeyRevocationRequest {
                            master_sig: r.master_sig,
                        },
                    )
                    .await?;
            }
            op::INPUT_KEYS => bail!(
                "this is the exchange's proposal, not signatures: sign it first \
                 (`cardcash exchange offline sign`)"
            ),
            other => bail!("unknown operation {other:?}"),
        }
        Ok(())
    }
    .await;
    (what, result)
}

fn amount(settings: &Settings, name: &str, text: &str) -> anyhow::Result<Amount> {
    let amount: Amount = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{name} {text}: {e} (write amounts as CURRENCY:VALUE)"))?;
    if let Some(currency) = settings.currency()
        && amount.currency() != &currency
    {
        bail!("{name} {text}: the exchange's currency is {currency}");
    }
    Ok(amount)
}

fn same_currency(amounts: &[Amount]) -> anyhow::Result<()> {
    if let Some(first) = amounts.first()
        && let Some(other) = amounts.iter().find(|a| a.currency() != first.currency())
    {
        bail!("fees in two currencies: {first} and {other}");
    }
    Ok(())
}

/// Is `text` a YEAR argument (`2025` or `now`)?
fn is_year(text: &str) -> bool {
    text.eq_ignore_ascii_case("now")
        || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
}

/// The fee period of a fee command: a leading YEAR argument, or `--start`/`--end`; returns the
/// remaining arguments. `min_rest` arguments must follow.
fn period<'a>(
    args: &'a [String],
    flags: &PeriodArgs,
    min_rest: usize,
) -> anyhow::Result<((Timestamp, Timestamp), Vec<&'a str>)> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let year_given = args.len() > min_rest && args.first().is_some_and(|a| is_year(a));
    let (period, rest) = match (&flags.start, &flags.end, year_given) {
        (Some(_), _, true) => bail!("give either YEAR or --start/--end, not both"),
        (Some(start), Some(end), false) => {
            let start = parse_date(start).context("--start")?;
            let end = parse_date(end).context("--end")?;
            ((start, end), args)
        }
        (None, None, true) => (year_period(args[0])?, args[1..].to_vec()),
        _ => bail!("the period is missing: give a YEAR (`2025`, `now`) or --start DATE --end DATE"),
    };
    if period.1 <= period.0 {
        bail!(
            "the period ends ({}) before it starts ({})",
            utc(period.1),
            utc(period.0)
        );
    }
    Ok((period, rest))
}

/// `[1 January YEAR, 1 January YEAR+1)` in UTC; `now` is the current year.
fn year_period(text: &str) -> anyhow::Result<(Timestamp, Timestamp)> {
    let year: i64 = if text.eq_ignore_ascii_case("now") {
        let days = (Timestamp::now().as_secs() / 86_400) as i64;
        civil_from_days(days).0
    } else {
        text.parse()
            .ok()
            .filter(|y| (1970..=9999).contains(y))
            .ok_or_else(|| anyhow::anyhow!("YEAR {text}: a year from 1970 to 9999, or `now`"))?
    };
    let start = days_from_civil(year, 1, 1) * 86_400;
    let end = days_from_civil(year + 1, 1, 1) * 86_400;
    Ok((
        Timestamp::from_secs(start as u64),
        Timestamp::from_secs(end as u64),
    ))
}

/// `now`, `@SECONDS`, `YYYY-MM-DD` or `YYYY-MM-DD[T ]HH:MM[:SS][Z]`, in UTC.
fn parse_date(text: &str) -> anyhow::Result<Timestamp> {
    let bad = || {
        anyhow::anyhow!(
            "{text:?} is not a date: use `now`, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC) or \
             `@SECONDS`"
        )
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(Timestamp::now());
    }
    if let Some(secs) = text.strip_prefix('@') {
        return secs.parse().map(Timestamp::from_secs).map_err(|_| bad());
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let year: i64 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    let day: u32 = d.parse().map_err(|_| bad())?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 || day > 31 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return Err(bad());
    }
    let mut secs = days * 86_400;
    if let Some(time) = time {
        let fields: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(bad());
        }
        let limits = [24, 60, 60];
        let mut value = 0i64;
        for (i, field) in fields.iter().enumerate() {
            let n: i64 = field.parse().map_err(|_| bad())?;
            if !(0..limits[i]).contains(&n) {
                return Err(bad());
            }
            value += n * [3600, 60, 1][i];
        }
        secs += value;
    }
    Ok(Timestamp::from_secs(secs as u64))
}

/// `YYYY-MM-DD HH:MM:SS UTC` (or `never`).
fn utc(t: Timestamp) -> String {
    if t.is_never() {
        return "never".to_owned();
    }
    let secs = t.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_utc() {
        assert_eq!(parse_date("1970-01-01").unwrap(), Timestamp::from_secs(0));
        assert_eq!(
            parse_date("2025-03-01T12:30:05Z").unwrap(),
            Timestamp::from_secs(1_740_832_205)
        );
        assert_eq!(
            parse_date("2025-03-01 12:30").unwrap(),
            Timestamp::from_secs(1_740_832_200)
        );
        assert_eq!(parse_date("@42").unwrap(), Timestamp::from_secs(42));
        for bad in [
            "2025-02-30",
            "2025-13-01",
            "tomorrow",
            "2025-01-01T25:00",
            "1969-12-31",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(
            utc(Timestamp::from_secs(1_740_832_205)),
            "2025-03-01 12:30:05 UTC"
        );
    }

    #[test]
    fn a_year_is_its_utc_calendar_year() {
        let (start, end) = year_period("2024").unwrap();
        assert_eq!(utc(start), "2024-01-01 00:00:00 UTC");
        assert_eq!(utc(end), "2025-01-01 00:00:00 UTC");
        assert_eq!(end.as_secs() - start.as_secs(), 366 * 86_400, "a leap year");
        assert!(year_period("1800").is_err());
        let (now_start, now_end) = year_period("now").unwrap();
        assert!(now_start <= Timestamp::now() && Timestamp::now() < now_end);
    }

    #[test]
    fn sync_says_what_the_exchange_still_lacks() {
        let t = |s: u64| Timestamp::from_secs(s);
        let now = t(1_000_000_000);
        let day = 86_400;
        let account: PaytoUri = "payto://x-taler-bank/bank.example/ex?receiver-name=Ex"
            .parse()
            .unwrap();
        let nothing = advice(&[], &[], &BTreeMap::new(), &[], now);
        assert_eq!(nothing.len(), 2, "{nothing:?}");
        assert!(nothing[0].contains("enable-account") && nothing[1].contains("global-fee now"));
        let no_fee = advice(
            std::slice::from_ref(&account),
            &[],
            &BTreeMap::new(),
            &[],
            now,
        );
        assert!(
            no_fee[0].contains("wire-fee now x-taler-bank"),
            "{no_fee:?}"
        );
        // Two periods back to back cover 40 days: nothing to say; one of 10 days: a notice.
        let chained = BTreeMap::from([(
            "x-taler-bank".to_owned(),
            vec![
                (t(now.as_secs() - day), t(now.as_secs() + 10 * day)),
                (t(now.as_secs() + 10 * day), t(now.as_secs() + 40 * day)),
            ],
        )]);
        let global = [(t(0), t(now.as_secs() + 400 * day))];
        assert!(advice(std::slice::from_ref(&account), &[], &chained, &global, now).is_empty());
        let short = BTreeMap::from([(
            "x-taler-bank".to_owned(),
            vec![(t(now.as_secs() - day), t(now.as_secs() + 10 * day))],
        )]);
        let notes = advice(std::slice::from_ref(&account), &[], &short, &global, now);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("the wire fees of x-taler-bank end on"));

        // A configured debit-only card-transaction account, which /keys does not list: its
        // method's fees are owed too, the account named.
        let configured = [
            ConfiguredAccount {
                section: "exchange-account-1".into(),
                method: "x-taler-bank".into(),
                credit: true,
            },
            ConfiguredAccount {
                section: "exchange-account-card".into(),
                method: "card-transaction".into(),
                credit: false,
            },
        ];
        let notes = advice(
            std::slice::from_ref(&account),
            &configured,
            &chained,
            &global,
            now,
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        for part in [
            "no wire fee of card-transaction covers now",
            "the debit-only [exchange-account-card]",
            "closing fee",
            "wire-fee now card-transaction WIRE_FEE CLOSING_FEE",
        ] {
            assert!(notes[0].contains(part), "{part:?} missing in {notes:?}");
        }
        let mut both = chained.clone();
        both.insert(
            "card-transaction".into(),
            vec![(t(now.as_secs() - day), t(now.as_secs() + 10 * day))],
        );
        let notes = advice(
            std::slice::from_ref(&account),
            &configured,
            &both,
            &global,
            now,
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("the wire fees of card-transaction end on")
                && notes[0].contains("(the debit-only [exchange-account-card])"),
            "{notes:?}"
        );
        both.insert("card-transaction".into(), chained["x-taler-bank"].clone());
        assert!(advice(&[account], &configured, &both, &global, now).is_empty());
    }

    #[test]
    fn fee_periods_come_from_a_year_or_the_flags() {
        let none = PeriodArgs {
            start: None,
            end: None,
        };
        let args: Vec<String> = ["2025", "iban", "EUR:0.1", "EUR:0.2"]
            .map(String::from)
            .to_vec();
        let (p, rest) = period(&args, &none, 3).unwrap();
        assert_eq!(utc(p.0), "2025-01-01 00:00:00 UTC");
        assert_eq!(rest, ["iban", "EUR:0.1", "EUR:0.2"]);
        assert!(period(&args[1..], &none, 3).is_err(), "no period at all");
        let flags = PeriodArgs {
            start: Some("2025-06-01".into()),
            end: Some("2025-07-01".into()),
        };
        let (p, rest) = period(&args[1..], &flags, 3).unwrap();
        assert_eq!(utc(p.1), "2025-07-01 00:00:00 UTC");
        assert_eq!(rest.len(), 3);
        assert!(period(&args, &flags, 3).is_err(), "both a year and flags");
        let backwards = PeriodArgs {
            start: Some("2025-07-01".into()),
            end: Some("2025-06-01".into()),
        };
        assert!(period(&args[1..], &backwards, 3).is_err());
    }
}
