//! `cardcash demo`: the seed's story on localhost with no configuration.
//!
//! It writes a configuration into a data directory, starts the bank, the card processor and
//! C2EC (SQLite, one file each), registers a terminal, then plays the C2EC sequence diagram:
//! the terminal sets up a withdrawal and shows the QR code, a wallet registers a fresh reserve
//! key through the Bank Integration API, a test card pays at the terminal, C2EC attests the
//! payment with the card processor, and the exchange finds the reserve in C2EC's Wire Gateway
//! incoming history. Every service is started through the same `App::build` as `serve`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cardcash_api::bank_integration::{
    BankWithdrawalOperationPostRequest, BankWithdrawalOperationPostResponse,
    BankWithdrawalOperationStatus,
};
use cardcash_api::wire_gateway::{IncomingBankTransaction, IncomingHistory};
use cardcash_bank::admin::{AccountName, NewAccount, Password};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_terminal::qr::TerminalStyle;
use cardcash_terminal::{CardData, ConsoleObserver, FlowEvent, FlowObserver, FlowOptions, Outcome};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, PaytoUri, TalerConfig, TalerUri, base32};
use clap::Args;
use tokio::sync::mpsc;

use crate::terminal_cmd::TerminalSettings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the configuration and the SQLite databases go (default: a fresh temporary
    /// directory, removed at the end unless --serve or --keep).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the services running after the story, for a person to explore (Ctrl-C stops them).
    #[arg(long)]
    pub serve: bool,
    /// Keep the temporary data directory.
    #[arg(long)]
    pub keep: bool,
    /// The amount of e-cash the customer buys.
    #[arg(long, default_value = "CHF:20")]
    pub amount: Amount,
    /// The card the customer pays with (4000000000000010 shows the declined-card branch).
    #[arg(long, default_value = cardcash_terminal::flow::APPROVE_TEST_CARD)]
    pub card: String,
    /// Print the QR code without colour escapes.
    #[arg(long)]
    pub plain: bool,
}

/// Waits for Ctrl-C (or SIGTERM on Unix); used by every `serve` command.
pub async fn wait_for_ctrl_c() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Numbered, timed progress lines on stdout.
struct Progress {
    started: Instant,
    step: usize,
    total: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.step += 1;
        println!(
            "\n[{}/{}] {what}  (+{:.1} s)",
            self.step,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn info(&self, what: impl std::fmt::Display) {
        println!("      {what}");
    }
}

const DEMO_EXCHANGE_ACCOUNT: &str =
    "payto://x-taler-bank/c2ec.localhost/exchange?receiver-name=Demo%20Exchange";
const CURRENCY: &str = "CHF";

/// Random base32 text of 32 bytes, for passwords and tokens.
fn secret_text() -> anyhow::Result<String> {
    Ok(base32::encode(&cardcash_crypto::random_bytes::<32>()?))
}

/// A random 32-byte card-processor MAC secret, base64 (the form Wallee hands out).
fn mac_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.encode(cardcash_crypto::random_bytes::<32>()?))
}

fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite:{}", dir.join(format!("{name}.db")).display())
}

/// The demo's configuration before any service runs; every listener on a free port.
fn initial_config(dir: &Path) -> anyhow::Result<TalerConfig> {
    let mut cfg = TalerConfig::new();
    cfg.set("paths", "CARDCASH_DATA_HOME", dir.display().to_string());
    cfg.set("taler", "CURRENCY", CURRENCY);

    cfg.set("bank", "CURRENCY", CURRENCY);
    cfg.set("bank", "BIND", "127.0.0.1:0");
    cfg.set("bank", "DATABASE", sqlite_url(dir, "bank"));
    cfg.set(
        "bank",
        "ADMIN_TOKEN",
        format!("secret-token:{}", secret_text()?),
    );

    cfg.set("cardproc", "CURRENCY", CURRENCY);
    cfg.set("cardproc", "BIND", "127.0.0.1:0");
    cfg.set("cardproc", "DATABASE", sqlite_url(dir, "cardproc"));
    cfg.set("cardproc", "SPACE_ID", "1");
    cfg.set("cardproc", "DELAY_FINALITY", "3 s");
    cfg.set(
        "cardproc",
        "ADMIN_TOKEN",
        format!("secret-token:{}", secret_text()?),
    );
    cfg.set("cardproc-user-terminal", "ID", "1");
    cfg.set("cardproc-user-terminal", "SECRET", mac_secret()?);
    cfg.set("cardproc-user-terminal", "ROLE", "terminal");
    cfg.set("cardproc-user-c2ec", "ID", "2");
    cfg.set("cardproc-user-c2ec", "SECRET", mac_secret()?);
    cfg.set("cardproc-user-c2ec", "ROLE", "reader");

    cfg.set("c2ec", "CURRENCY", CURRENCY);
    cfg.set("c2ec", "BIND", "127.0.0.1:0");
    cfg.set("c2ec", "DATABASE", sqlite_url(dir, "c2ec"));
    cfg.set("c2ec", "EXCHANGE_ACCOUNT", DEMO_EXCHANGE_ACCOUNT);
    cfg.set("c2ec", "WIRE_GATEWAY_USERNAME", "exchange");
    cfg.set("c2ec", "WIRE_GATEWAY_PASSWORD", secret_text()?);
    cfg.set("c2ec", "REGISTRATION_WINDOW", "5 minutes");
    cfg.set("c2ec", "ATTESTATION_RETRY_DELAY", "250 ms");
    cfg.set("c2ec-provider-cardproc", "NAME", "cardcash card processor");
    cfg.set("c2ec-provider-cardproc", "USER_ID", "2");
    let reader_secret = cfg.string("cardproc-user-c2ec", "SECRET")?;
    cfg.set("c2ec-provider-cardproc", "SECRET", reader_secret);
    cfg.set("c2ec-provider-cardproc", "SPACE_ID", "1");

    cfg.set("terminal", "CARDPROC_USER_ID", "1");
    let terminal_secret = cfg.string("cardproc-user-terminal", "SECRET")?;
    cfg.set("terminal", "CARDPROC_SECRET", terminal_secret);
    cfg.set("terminal", "CARDPROC_SPACE_ID", "1");
    Ok(cfg)
}

/// The running services of the demo.
struct Services {
    bank: cardcash_bank::App,
    cardproc: cardcash_cardproc::App,
    c2ec: cardcash_c2ec::App,
}

impl Services {
    async fn shutdown(self) {
        self.c2ec.shutdown().await;
        self.cardproc.shutdown().await;
        if let Err(e) = self.bank.shutdown().await {
            tracing::warn!(error = %e, "bank shutdown");
        }
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut progress = Progress {
        started: Instant::now(),
        step: 0,
        total: 7,
    };
    let mut temp = None;
    let dir = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.canonicalize()?
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("cardcash-demo-")
                .tempdir()?;
            let path = t.path().to_path_buf();
            temp = Some(t);
            path
        }
    };
    ensure!(
        args.amount.currency().as_str() == CURRENCY,
        "the demo runs in {CURRENCY}"
    );

    progress.step("configuration");
    let mut cfg = initial_config(&dir)?;
    let config_path = dir.join("cardcash.conf");
    progress.info(format!("data directory {}", dir.display()));

    progress.step("starting the bank, the card processor and C2EC (SQLite)");
    let services = start_services(&mut cfg).await?;
    std::fs::write(&config_path, cfg.to_ini_string())
        .with_context(|| format!("writing {}", config_path.display()))?;
    print_services(&progress, &services, &cfg, &config_path)?;

    let story = play_story(&mut progress, &args, &cfg, &services).await;
    match &story {
        Ok(()) => println!(
            "\nDone in {:.1} s: the card payment became a confirmed withdrawal in the exchange's history.",
            progress.started.elapsed().as_secs_f64()
        ),
        Err(e) => println!("\nThe story stopped: {e:#}"),
    }
    if args.serve {
        println!(
            "\nServices keep running (configuration in {}). Ctrl-C stops them.",
            config_path.display()
        );
        wait_for_ctrl_c().await;
    }
    services.shutdown().await;
    if let Some(temp) = temp
        && (args.keep || args.serve)
    {
        // Keep the temporary directory: the person asked to explore it.
        let kept = temp.keep();
        println!("data directory kept: {}", kept.display());
    }
    story
}

async fn start_services(cfg: &mut TalerConfig) -> anyhow::Result<Services> {
    let bank_config = cardcash_bank::BankConfig::from_taler_config(cfg)?;
    let bank = cardcash_bank::App::build(bank_config.clone())
        .await
        .context("starting the bank")?;
    let exchange_password = secret_text()?;
    let ledger = bank.ledger();
    for (name, is_exchange, legal) in [
        ("exchange", true, "Demo Exchange"),
        ("shop", false, "Pretty Pianos"),
        ("alice", false, "Alice"),
    ] {
        let mut new = NewAccount::new(name.parse::<AccountName>()?);
        new.is_exchange = is_exchange;
        new.legal_name = Some(legal.to_owned());
        if is_exchange {
            new.password = Some(Password::new(exchange_password.clone())?);
        }
        cardcash_bank::admin::create_account(ledger, new).await?;
    }
    cfg.set("bank", "BIND", bank.addr().to_string());
    cfg.set("demo", "BANK_EXCHANGE_PASSWORD", exchange_password);

    let cardproc_config = cardcash_cardproc::CardprocConfig::from_taler_config(cfg)?;
    let cardproc = cardcash_cardproc::App::build(cardproc_config)
        .await
        .context("starting the card processor")?;
    cfg.set("cardproc", "BIND", cardproc.addr().to_string());
    cfg.set(
        "c2ec-provider-cardproc",
        "BASE_URL",
        cardproc.base_url().to_string(),
    );
    cfg.set("terminal", "CARDPROC_URL", cardproc.base_url().to_string());

    let c2ec_config = cardcash_c2ec::C2ecConfig::from_taler_config(cfg)?;
    let terminal = {
        let db = cardcash_c2ec::admin::open_db(&c2ec_config.database).await?;
        cardcash_c2ec::admin::add_terminal(&db, "demo shop, counter 1").await?
    };
    let c2ec = cardcash_c2ec::App::build(c2ec_config)
        .await
        .context("starting C2EC")?;
    cfg.set("c2ec", "BIND", c2ec.addr().to_string());
    cfg.set(
        "terminal",
        "C2EC_TERMINAL_URL",
        c2ec.base_url().join_base("terminal/")?.to_string(),
    );
    cfg.set("terminal", "TERMINAL_USER", terminal.user.clone());
    cfg.set("terminal", "TERMINAL_SECRET", terminal.secret.clone());
    Ok(Services {
        bank,
        cardproc,
        c2ec,
    })
}

fn print_services(
    progress: &Progress,
    services: &Services,
    cfg: &TalerConfig,
    config_path: &Path,
) -> anyhow::Result<()> {
    let c2ec = services.c2ec.base_url();
    progress.info(format!("bank            {}", services.bank.base_url()));
    progress.info(format!(
        "                exchange account: user exchange, password {}",
        cfg.string("demo", "BANK_EXCHANGE_PASSWORD")?
    ));
    progress.info(format!("card processor  {}", services.cardproc.base_url()));
    progress.info(format!("C2EC            {c2ec}"));
    progress.info(format!(
        "  terminal API          {c2ec}terminal/  (user {})",
        cfg.string("terminal", "TERMINAL_USER")?
    ));
    progress.info(format!("  bank integration API  {c2ec}taler-integration/"));
    progress.info(format!(
        "  wire gateway API      {c2ec}taler-wire-gateway/  (user exchange, password {})",
        cfg.string("c2ec", "WIRE_GATEWAY_PASSWORD")?
    ));
    progress.info(format!("  metrics               {c2ec}metrics"));
    progress.info(format!("configuration   {}", config_path.display()));
    Ok(())
}

/// Prints the terminal's progress under the story's step headers and hands every event to
/// the wallet task.
struct DemoObserver<'a> {
    progress: &'a mut Progress,
    console: ConsoleObserver<std::io::Stdout>,
    events: mpsc::UnboundedSender<FlowEvent>,
    card_step_shown: bool,
}

impl FlowObserver for DemoObserver<'_> {
    fn on_event(&mut self, event: &FlowEvent) {
        match event {
            FlowEvent::WalletRegistered { .. } => self
                .progress
                .step("wallet: scanned the QR code and registered a fresh reserve key (Bank Integration API)"),
            FlowEvent::CardPayment { .. } if !self.card_step_shown => {
                self.card_step_shown = true;
                self.progress.step("customer: pays by card at the terminal (card processor)");
            }
            FlowEvent::CheckSent { .. } => self
                .progress
                .step("C2EC: attests the card payment with the card processor"),
            _ => {}
        }
        self.console.on_event(event);
        let _ = self.events.send(event.clone());
    }
}

async fn play_story(
    progress: &mut Progress,
    args: &DemoArgs,
    cfg: &TalerConfig,
    services: &Services,
) -> anyhow::Result<()> {
    let settings = TerminalSettings::from_taler_config(cfg)?;
    let flow = settings.flow()?;
    let mut options = FlowOptions::new(args.amount);
    options.card = CardData::test_card(&args.card);
    options.wallet_timeout = Duration::from_secs(30);
    options.outcome_timeout = Duration::from_secs(30);

    progress.step(&format!(
        "terminal: a customer wants {} of e-cash; the terminal sets up a withdrawal at C2EC",
        args.amount
    ));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let style = if args.plain {
        TerminalStyle::LightBackground
    } else {
        TerminalStyle::Ansi
    };

    // The wallet: waits for the QR code, then registers a fresh reserve key.
    let exchange_account: PaytoUri = cfg.string("c2ec", "EXCHANGE_ACCOUNT")?.parse()?;
    let wallet = tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            if let FlowEvent::WithdrawalCreated {
                taler_withdraw_uri, ..
            } = event
            {
                return wallet_registers(&taler_withdraw_uri, &exchange_account).await;
            }
        }
        bail!("the terminal never showed a QR code")
    });

    let report = {
        let mut observer = DemoObserver {
            progress: &mut *progress,
            console: ConsoleObserver::stdout(style),
            events: events_tx,
            card_step_shown: false,
        };
        flow.run(&options, &mut observer).await
    };
    // The wallet's error explains a failed flow best (e.g. a refused registration).
    let reserve = wallet.await.context("wallet task")??;
    let report = report?;
    match &report.outcome {
        Outcome::Confirmed => {}
        other => bail!("withdrawal {} was not confirmed: {other:?}", report.wopid),
    }

    progress.step("exchange: reads C2EC's Wire Gateway incoming history");
    let credited = exchange_finds_reserve(cfg, services.c2ec.base_url(), &reserve.public()).await?;
    ensure!(
        credited == args.amount,
        "the history credits {credited}, but the customer paid for {}",
        args.amount
    );
    progress.info(format!("reserve {}", reserve.public()));
    progress.info(format!(
        "credited with {credited} exactly once: the exchange can create the reserve and the wallet withdraw its coins"
    ));
    Ok(())
}

/// The wallet's side: parse the QR code's URI, read the operation, register a new reserve key.
async fn wallet_registers(
    uri: &str,
    exchange_account: &PaytoUri,
) -> anyhow::Result<EddsaPrivateKey> {
    let Ok(TalerUri::Withdraw {
        bank_integration_base,
        wopid,
        ..
    }) = uri.parse::<TalerUri>()
    else {
        bail!("the QR code is not a taler://withdraw URI: {uri}");
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = bank_integration_base.join(&format!("withdrawal-operation/{wopid}"))?;
    let status: BankWithdrawalOperationStatus = http
        .get(url.clone())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    ensure!(
        !status.selection_done,
        "somebody else already registered this withdrawal"
    );
    let reserve = EddsaPrivateKey::generate()?;
    let body = BankWithdrawalOperationPostRequest {
        reserve_pub: reserve.public(),
        selected_exchange: exchange_account.clone(),
        amount: None,
    };
    let response = http.post(url).json(&body).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "registration refused ({status}): {}",
            response.text().await.unwrap_or_default()
        );
    }
    let _: BankWithdrawalOperationPostResponse = response.json().await?;
    Ok(reserve)
}

/// The exchange's side: its wire-gateway view of C2EC must list the reserve exactly once.
async fn exchange_finds_reserve(
    cfg: &TalerConfig,
    c2ec: &BaseUrl,
    reserve_pub: &EddsaPublicKey,
) -> anyhow::Result<Amount> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = c2ec.join("taler-wire-gateway/history/incoming?limit=-20")?;
    let response = http
        .get(url)
        .basic_auth(
            cfg.string("c2ec", "WIRE_GATEWAY_USERNAME")?,
            Some(cfg.string("c2ec", "WIRE_GATEWAY_PASSWORD")?),
        )
        .send()
        .await?
        .error_for_status()?;
    ensure!(
        response.status() != reqwest::StatusCode::NO_CONTENT,
        "the incoming history is empty"
    );
    let history: IncomingHistory = response.json().await?;
    let credits: Vec<Amount> = history
        .incoming_transactions
        .iter()
        .filter_map(|tx| match tx {
            IncomingBankTransaction::Reserve {
                reserve_pub: r,
                amount,
                ..
            } if r == reserve_pub => Some(*amount),
            _ => None,
        })
        .collect();
    match credits.as_slice() {
        [one] => Ok(*one),
        [] => bail!("reserve {reserve_pub} is not in the incoming history"),
        many => bail!("reserve {reserve_pub} is credited {} times", many.len()),
    }
}
