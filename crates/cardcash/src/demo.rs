//! `cardcash demo`: the seed's story on localhost with no configuration.
//!
//! It writes a configuration into a data directory, starts the bank, the card processor and
//! C2EC (SQLite, one file each), registers a terminal, then plays the C2EC sequence diagram:
//! the terminal sets up a withdrawal and shows the QR code, a wallet registers a fresh reserve
//! key through the Bank Integration API, a test card pays at the terminal, C2EC attests the
//! payment with the card processor, and the exchange finds the reserve in C2EC's Wire Gateway
//! incoming history. Every service is started through the same `App::build` as `serve`.
//!
//! Run again on the same `--data-dir`, it resumes: the configuration (secrets, accounts'
//! passwords, the terminal's credentials) and the databases are reused, and every set-up step is
//! idempotent. The configuration is written 0600 into a 0700 directory, and the SQLite files are
//! created 0600 (SQLite gives its journal files the database's permissions). With `--serve` it
//! ends with a summary of what runs and what to try next.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cardcash_api::wire_gateway::{IncomingBankTransaction, IncomingHistory};
use cardcash_terminal::qr::TerminalStyle;
use cardcash_terminal::{CardData, ConsoleObserver, FlowEvent, FlowObserver, FlowOptions};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, TalerConfig, base32};
use cardcash_world::{BankAccount, World};
use clap::Args;
use tokio::sync::mpsc;

use crate::Reported;
use crate::terminal_cmd::TerminalSettings;

mod private;
mod shop;
mod wallet;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the configuration and the SQLite databases go; run again with the same DIR to
    /// resume on them (default: a fresh temporary directory, removed at the end unless --serve
    /// or --keep).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the services running after the story, for a person to explore (Ctrl-C stops them).
    #[arg(long)]
    pub serve: bool,
    /// Keep the temporary data directory (a --data-dir is always kept).
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
    /// The exchange C2EC suggests to wallets ([c2ec] EXCHANGE_BASE_URL). Default: the one already
    /// configured in DIR, else http://localhost:8081/, where GNU Taler's exchange listens unless
    /// configured otherwise.
    #[arg(long, value_name = "URL")]
    pub exchange_url: Option<BaseUrl>,
    /// C2EC suggests the legacy face of the demo's own exchange (`<exchange>legacy/`, protocol
    /// 12–14), the one GNU Taler's wallets of late 2022 (wallet-core 0.9) speak. Kept in DIR.
    #[arg(long, conflicts_with = "exchange_url")]
    pub legacy_face: bool,
    /// Run the services on PostgreSQL: a fresh database is created on this server (a URL of a
    /// role that may create databases, e.g. postgres://user@localhost/postgres) and kept in
    /// DIR's configuration, so a run on the same --data-dir resumes on it. The wallet stays an
    /// SQLite file, as on a phone.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
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

/// Numbered, timed progress lines on stdout. Clones share the step counter: the wallet task
/// announces its step while the terminal's flow waits for it.
#[derive(Clone)]
struct Progress {
    started: Instant,
    step: Arc<AtomicUsize>,
    total: usize,
}

impl Progress {
    fn step(&self, what: &str) {
        let step = self.step.fetch_add(1, Ordering::SeqCst) + 1;
        println!(
            "\n[{step}/{}] {what}  (+{:.1} s)",
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn info(&self, what: impl std::fmt::Display) {
        println!("      {what}");
    }
}

/// The exchange's account at C2EC. The receiver name has no character that needs
/// percent-encoding: GNU Taler's exchange of 2022 refuses `%` in `enable-account`. (Accounts are
/// compared without their query part, so wallets may send it with or without the name.)
const DEMO_EXCHANGE_ACCOUNT: &str =
    "payto://x-taler-bank/c2ec.localhost/exchange?receiver-name=Exchange";
/// What demos wrote before [`DEMO_EXCHANGE_ACCOUNT`]; a resumed demo replaces it.
const EARLIER_DEMO_EXCHANGE_ACCOUNT: &str =
    "payto://x-taler-bank/c2ec.localhost/exchange?receiver-name=Demo%20Exchange";
/// What earlier demos suggested to wallets (GNU Taler's default exchange address); today the
/// demo runs its own exchange and suggests that one.
const EARLIER_DEFAULT_EXCHANGE_URL: &str = "http://localhost:8081/";
const CURRENCY: &str = "CHF";
/// The demo bank's accounts: login, is it the exchange's, legal name (no spaces: it becomes the
/// payto URI's `receiver-name`, see [`DEMO_EXCHANGE_ACCOUNT`]).
const DEMO_ACCOUNTS: [(&str, bool, &str); 3] = [
    ("exchange", true, "Exchange"),
    ("shop", false, "Shop"),
    ("alice", false, "Alice"),
];
/// The demo's terminal at C2EC.
const DEMO_TERMINAL: &str = "demo shop, counter 1";
/// The demo exchange's coins: section suffix, value, every fee, cipher.
const DEMO_COINS: [(&str, &str, &str, &str); 10] = [
    ("10", "10", "0.01", "RSA"),
    ("5", "5", "0.01", "RSA"),
    ("2", "2", "0.01", "RSA"),
    ("1", "1", "0.01", "RSA"),
    ("ct50", "0.50", "0", "CS"),
    ("ct20", "0.20", "0", "CS"),
    ("ct10", "0.10", "0", "CS"),
    ("ct5", "0.05", "0", "CS"),
    ("ct2", "0.02", "0", "CS"),
    ("ct1", "0.01", "0", "CS"),
];
/// How long the Sonatas can be refunded after the order: the story refunds within it and then
/// waits for the wire deadline (a second later).
const SHOP_REFUND_DELAY: &str = "8 s";
/// The services that keep a database.
const SERVICES: [&str; 5] = ["bank", "cardproc", "c2ec", "exchange", "merchant"];

/// Random base32 text of 32 bytes, for passwords and tokens.
pub(crate) fn secret_text() -> anyhow::Result<String> {
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
    // The exchange listens on a port chosen now, so C2EC can suggest its URL to wallets.
    let exchange_bind = crate::listen::free_local_port()?;
    cfg.set(
        "c2ec",
        "EXCHANGE_BASE_URL",
        format!("http://{exchange_bind}/"),
    );
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

    cfg.set("exchange", "CURRENCY", CURRENCY);
    cfg.set("exchange", "BIND", exchange_bind.to_string());
    cfg.set("exchange", "DATABASE", sqlite_url(dir, "exchange"));
    cfg.set(
        "exchange",
        "KEY_DIR",
        dir.join("exchange-keys").display().to_string(),
    );
    // One key per denomination at a time: RSA key generation is the slow part of a start.
    cfg.set("exchange", "LOOKAHEAD_SIGN", "1 day");
    cfg.set(
        "exchange-offline",
        "MASTER_PRIV_FILE",
        dir.join("exchange-master.priv").display().to_string(),
    );
    // Francs as RSA coins with a fee; centimes as CS coins without one, so a wallet can take
    // every centime of a reserve (what the card paid = coins + fees, to the cent). The legacy
    // face lists RSA coins only: GNU Taler's 2022 wallets see the francs.
    for (name, value, fee, cipher) in DEMO_COINS {
        let section = format!("coin_{}_{name}", CURRENCY.to_ascii_lowercase());
        cfg.set(&section, "VALUE", format!("{CURRENCY}:{value}"));
        cfg.set(&section, "DURATION_WITHDRAW", "30 days");
        cfg.set(&section, "DURATION_SPEND", "2 years");
        cfg.set(&section, "DURATION_LEGAL", "6 years");
        for option in ["FEE_WITHDRAW", "FEE_DEPOSIT", "FEE_REFRESH", "FEE_REFUND"] {
            cfg.set(&section, option, format!("{CURRENCY}:{fee}"));
        }
        cfg.set(&section, "CIPHER", cipher);
        if cipher == "RSA" {
            cfg.set(&section, "RSA_KEYSIZE", "2048");
        }
    }

    // The shop: the merchant backend and the storefront of design document 007. The Sonatas'
    // orders can be refunded for a few seconds, and the exchange wires the shop's money a
    // second after that, so the story sees the settlement.
    let merchant_token = format!("secret-token:{}", secret_text()?);
    cfg.set("merchant", "CURRENCY", CURRENCY);
    cfg.set("merchant", "BIND", "127.0.0.1:0");
    cfg.set("merchant", "DATABASE", sqlite_url(dir, "merchant"));
    cfg.set("merchant", "ADMIN_TOKEN", merchant_token.clone());
    cfg.set("merchant", "DEFAULT_PAY_DELAY", "1 hour");
    cfg.set("merchant", "DEFAULT_WIRE_TRANSFER_DELAY", "1 s");
    cfg.set("storefront", "CURRENCY", CURRENCY);
    cfg.set("storefront", "BIND", "127.0.0.1:0");
    cfg.set("storefront", "MERCHANT_TOKEN", merchant_token);
    cfg.set("storefront", "COOKIE_SECRET", secret_text()?);
    cfg.set("storefront", "ADMIN_PASSWORD", secret_text()?);
    cfg.set("storefront", "REFUND_DELAY", SHOP_REFUND_DELAY);

    cfg.set("demo", "BANK_EXCHANGE_PASSWORD", secret_text()?);
    Ok(cfg)
}

/// The configuration of a demo that ran in `dir` before, completed with whatever a newer demo
/// configures that it lacks (fresh secrets for missing ones).
fn resumed_config(dir: &Path, path: &Path) -> anyhow::Result<TalerConfig> {
    let mut cfg = TalerConfig::load(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        cfg.has_section("demo"),
        "{} was not written by `cardcash demo` (it has no [demo] section): pass another \
         --data-dir, or serve that configuration with `cardcash -c {} bank|cardproc|c2ec serve`",
        path.display(),
        path.display()
    );
    // Earlier demos' default, which GNU Taler's 2022 exchange refuses (`%`), becomes today's.
    if cfg.raw("c2ec", "EXCHANGE_ACCOUNT") == Some(EARLIER_DEMO_EXCHANGE_ACCOUNT) {
        cfg.set("c2ec", "EXCHANGE_ACCOUNT", DEMO_EXCHANGE_ACCOUNT);
    }
    let fresh = initial_config(dir)?;
    // Earlier demos had no exchange of their own and suggested GNU Taler's default address.
    if cfg.raw("c2ec", "EXCHANGE_BASE_URL") == Some(EARLIER_DEFAULT_EXCHANGE_URL)
        && !cfg.has_section("exchange")
        && let Some(url) = fresh.raw("c2ec", "EXCHANGE_BASE_URL")
    {
        cfg.set("c2ec", "EXCHANGE_BASE_URL", url);
    }
    for section in fresh.sections() {
        for option in fresh.options(&section) {
            if cfg.raw(&section, &option).is_none()
                && let Some(value) = fresh.raw(&section, &option)
            {
                cfg.set(&section, &option, value);
            }
        }
    }
    Ok(cfg)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let progress = Progress {
        started: Instant::now(),
        step: Arc::new(AtomicUsize::new(0)),
        total: 18,
    };
    let (dir, temp, dir_note) = match &args.data_dir {
        Some(dir) => {
            let (dir, note) = private::data_dir(dir)?;
            (dir, None, note)
        }
        None => {
            // tempfile creates the directory 0700.
            let t = tempfile::Builder::new()
                .prefix("cardcash-demo-")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t), None)
        }
    };

    progress.step("configuration");
    let config_path = dir.join("cardcash.conf");
    let resumed = config_path.exists();
    let mut cfg = if resumed {
        resumed_config(&dir, &config_path)?
    } else {
        initial_config(&dir)?
    };
    if let Some(url) = &args.exchange_url {
        cfg.set("c2ec", "EXCHANGE_BASE_URL", url.to_string());
    }
    if args.legacy_face {
        let bind = cfg.string("exchange", "BIND")?;
        cfg.set(
            "c2ec",
            "EXCHANGE_BASE_URL",
            format!("http://{bind}/legacy/"),
        );
    }
    let currency = cfg.string("c2ec", "CURRENCY")?;
    ensure!(
        args.amount.currency().as_str() == currency,
        "this demo runs in {currency}: pass --amount {currency}:<value>"
    );
    let engine = choose_databases(&mut cfg, args.postgres.as_deref(), &progress).await?;
    // Written before any database exists, so an interrupted first run resumes with the same
    // secrets (and the same PostgreSQL database).
    private::write_file(&config_path, cfg.to_ini_string().as_bytes())?;
    for section in SERVICES {
        private::sqlite_file(&cfg.string(section, "DATABASE")?)?;
    }
    if resumed {
        progress.info(format!(
            "resuming the demo in {}: its configuration, accounts and terminal are reused",
            dir.display()
        ));
    } else {
        progress.info(format!("data directory {}", dir.display()));
    }
    if let Some(note) = dir_note {
        progress.info(note);
    }

    progress.step(&format!(
        "starting the bank, the card processor, C2EC, the exchange, the merchant backend and \
         the storefront ({engine}), and the \
         customer's wallet (SQLite)"
    ));
    let world = start_services(&mut cfg, &config_path, &progress).await?;
    private::write_file(&config_path, cfg.to_ini_string().as_bytes())?;
    for line in service_lines(&world, &cfg)? {
        progress.info(line);
    }
    progress.info(format!("configuration   {}", config_path.display()));
    let opened = wallet::open(&dir);
    if let Ok((_, path)) = &opened {
        progress.info(format!("wallet          {}", path.display()));
    }

    let story = match &opened {
        Ok((wallet, _)) => play_story(&progress, &args, &cfg, &world, wallet).await,
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    match &story {
        Ok(()) => println!(
            "\nDone in {:.1} s: the card payment became coins in the customer's wallet, and she \
             bought the Beethoven Sonatas with them.",
            progress.started.elapsed().as_secs_f64()
        ),
        Err(e) => println!("\nThe story stopped: {}", crate::render_error(e)),
    }
    // The wallet leaves its file to whoever uses it next (`cardcash wallet` under --serve).
    let wallet_path = opened.map(|(wallet, path)| {
        wallet.close();
        path
    });
    let keep = temp.is_none() || args.keep || args.serve;
    if args.serve {
        print_summary(
            &world,
            &cfg,
            &config_path,
            &dir,
            wallet_path.ok().as_deref(),
        )?;
        println!(
            "\nServices keep running (configuration in {}). Ctrl-C stops them.",
            config_path.display()
        );
        wait_for_ctrl_c().await;
    }
    if let Err(e) = world.shutdown().await {
        tracing::warn!(error = %e, "demo shutdown");
    }
    match temp {
        Some(temp) if !keep => {
            let path = temp.path().to_path_buf();
            temp.close()
                .with_context(|| format!("removing {}", path.display()))?;
            println!(
                "\nThe temporary data directory {} (configuration and databases) is removed now; \
                 pass --keep to keep it, or --data-dir DIR to choose one.",
                path.display()
            );
        }
        other => {
            // The person asked to explore it: the temporary directory stays.
            let dir = other.map(tempfile::TempDir::keep).unwrap_or(dir);
            println!(
                "\nData directory kept: {} (`cardcash demo --data-dir {}` resumes on it).",
                dir.display(),
                dir.display()
            );
        }
    }
    // The story's failure is explained above, once.
    story.map_err(|_| Reported.into())
}

/// The services' databases: SQLite files in DIR, or with `--postgres` one fresh database on
/// that server (each service in its own schema, as the world's `Storage::Postgres`). A
/// configuration that already names a PostgreSQL database keeps it: the demo resumes on it.
/// Returns the engine's name for the progress line.
async fn choose_databases(
    cfg: &mut TalerConfig,
    server: Option<&str>,
    progress: &Progress,
) -> anyhow::Result<&'static str> {
    let on_postgres = |cfg: &TalerConfig| {
        SERVICES.iter().all(|s| {
            cfg.raw(s, "DATABASE")
                .is_some_and(|url| url.starts_with("postgres"))
        })
    };
    if on_postgres(cfg) {
        if server.is_some() {
            progress.info(format!(
                "resuming on the PostgreSQL database of the last run ({})",
                redact_password(&cfg.string("bank", "DATABASE")?)
            ));
        }
        return Ok("PostgreSQL");
    }
    let Some(server) = server else {
        return Ok("SQLite");
    };
    let url = cardcash_store::create_fresh_pg_database(server, "cardcash_demo")
        .await
        .with_context(|| {
            format!(
                "creating a database on {} (--postgres needs a role that may create databases)",
                redact_password(server)
            )
        })?;
    for section in SERVICES {
        cfg.set(section, "DATABASE", url.clone());
    }
    progress.info(format!(
        "a fresh PostgreSQL database for the services: {}",
        redact_password(&url)
    ));
    Ok("PostgreSQL")
}

/// A database URL without its password, for printing.
fn redact_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Every service's listener: the configured address if it is free, else (a port taken since
/// the last run of this demo) a free port, said aloud.
fn free_bind(
    cfg: &mut TalerConfig,
    service: &str,
    section: &str,
    config_path: &Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    let text = cfg.string(section, "BIND")?;
    let Ok(bind) = text.parse::<SocketAddr>() else {
        return Ok(()); // the service's own configuration check explains it
    };
    if let Some(e) = crate::listen::probe(bind) {
        let any = SocketAddr::new(bind.ip(), 0);
        if crate::listen::probe(any).is_some() {
            bail!(crate::listen::problem(
                service,
                section,
                bind,
                config_path,
                &e
            ));
        }
        progress.info(format!(
            "{bind} from the last run is taken ({e}), so {service} listens on a free port instead"
        ));
        cfg.set(section, "BIND", any.to_string());
    }
    Ok(())
}

/// Adds the legacy face of the world's exchange to the merchant's trusted exchanges.
fn trust_legacy_face(config: &mut cardcash_merchant::MerchantConfig) {
    let Some(world) = config
        .exchanges
        .iter()
        .find(|e| e.section == cardcash_world::WORLD_EXCHANGE_SECTION)
        .cloned()
    else {
        return;
    };
    let Ok(base_url) = world.base_url.join_base("legacy/") else {
        return;
    };
    config.exchanges.retain(|e| e.base_url != base_url);
    config
        .exchanges
        .push(cardcash_merchant::config::TrustedExchange {
            section: format!("{}-legacy", cardcash_world::WORLD_EXCHANGE_SECTION),
            base_url,
            ..world
        });
}

/// Starts the bank, the card processor, C2EC and the exchange of the configuration as one
/// world (the demo's accounts at the bank, its terminal at C2EC, the exchange's accounts at
/// both with its master key signing its keys), and writes back where they run.
async fn start_services(
    cfg: &mut TalerConfig,
    config_path: &Path,
    progress: &Progress,
) -> anyhow::Result<World> {
    free_bind(cfg, "the bank", "bank", config_path, progress)?;
    free_bind(cfg, "the card processor", "cardproc", config_path, progress)?;
    free_bind(cfg, "C2EC", "c2ec", config_path, progress)?;
    free_bind(
        cfg,
        "the merchant backend",
        "merchant",
        config_path,
        progress,
    )?;
    free_bind(cfg, "the storefront", "storefront", config_path, progress)?;
    let exchange_bind = cfg.string("exchange", "BIND")?;
    free_bind(cfg, "the exchange", "exchange", config_path, progress)?;
    if cfg.string("exchange", "BIND")? != exchange_bind {
        // C2EC suggests the exchange's URL to wallets: it needs the port before the exchange
        // starts.
        let bind = crate::listen::free_local_port()?;
        cfg.set("exchange", "BIND", bind.to_string());
        // Either face of the demo's own exchange follows it to its new port.
        for face in ["", "legacy/"] {
            if cfg.raw("c2ec", "EXCHANGE_BASE_URL")
                == Some(&format!("http://{exchange_bind}/{face}"))
            {
                cfg.set("c2ec", "EXCHANGE_BASE_URL", format!("http://{bind}/{face}"));
            }
        }
    }
    let exchange_password = cfg.string("demo", "BANK_EXCHANGE_PASSWORD")?;
    let legacy_face = cfg
        .raw("c2ec", "EXCHANGE_BASE_URL")
        .is_some_and(|u| u.ends_with("/legacy/"));
    let mut builder = World::from_config(cfg)?.c2ec_terminal(Some(DEMO_TERMINAL));
    if legacy_face {
        // The shop takes the coins of the legacy face too (GNU Taler's wallets of 2022 pay
        // with them): the same exchange and master key at <exchange>legacy/.
        builder = builder.configure_merchant(trust_legacy_face);
    }
    for (name, is_exchange, legal) in DEMO_ACCOUNTS {
        builder = builder.bank_account(if is_exchange {
            BankAccount::exchange(name, legal, exchange_password.clone())
        } else {
            BankAccount::new(name, legal)
        });
    }
    let world = builder.start().await?;
    world.write_config(cfg);
    Ok(world)
}

/// Where each service listens and how to log in (step 2, and again in the summary).
fn service_lines(world: &World, cfg: &TalerConfig) -> anyhow::Result<Vec<String>> {
    let c2ec = world.c2ec().base_url();
    Ok(vec![
        format!("bank            {}", world.bank().base_url()),
        format!(
            "                exchange account: user exchange, password {}",
            cfg.string("demo", "BANK_EXCHANGE_PASSWORD")?
        ),
        format!("card processor  {}", world.cardproc().base_url()),
        format!("C2EC            {c2ec}"),
        format!(
            "  terminal API          {c2ec}terminal/  (user {}, secret in [terminal] TERMINAL_SECRET)",
            cfg.string("terminal", "TERMINAL_USER")?
        ),
        format!("  bank integration API  {c2ec}taler-integration/  (the wallet's side, no login)"),
        format!(
            "  wire gateway API      {c2ec}taler-wire-gateway/  (user exchange, password {})",
            cfg.string("c2ec", "WIRE_GATEWAY_PASSWORD")?
        ),
        format!("  metrics               {c2ec}metrics"),
        format!(
            "  suggested exchange    {}",
            cfg.string_opt("c2ec", "EXCHANGE_BASE_URL")?
                .unwrap_or_else(|| "none".to_owned())
        ),
        format!("exchange        {}", world.exchange().base_url()),
        format!(
            "  master public key     {}",
            world.exchange().master().public()
        ),
        format!(
            "  keys                  {}keys",
            world.exchange().base_url()
        ),
        format!(
            "  legacy face           {}legacy/  (protocol 12–14, for GNU Taler's wallets of 2022)",
            world.exchange().base_url()
        ),
        format!(
            "merchant        {}  (admin token in [merchant] ADMIN_TOKEN)",
            world.merchant().base_url()
        ),
        format!(
            "storefront      {}  (Pretty Pianos; /admin: user admin, password in [storefront] ADMIN_PASSWORD)",
            world.storefront().base_url()
        ),
    ])
}

/// The end of `demo --serve`: what runs, and what to try next, after the QR code and the
/// receipt have scrolled the first listing away.
fn print_summary(
    world: &World,
    cfg: &TalerConfig,
    config_path: &Path,
    dir: &Path,
    wallet: Option<&Path>,
) -> anyhow::Result<()> {
    let c2ec = world.c2ec().base_url();
    let conf = config_path.display();
    let currency = cfg.string("c2ec", "CURRENCY")?;
    println!("\n{}", "=".repeat(72));
    println!("What runs now");
    for line in service_lines(world, cfg)? {
        println!("  {line}");
    }
    println!("  configuration   {conf}  (mode 0600: every secret above is in it)");
    if let Some(wallet) = wallet {
        println!("  wallet          {}", wallet.display());
    }
    println!("\nWhat to try next, in another shell");
    println!("  1. Sell e-cash at the terminal; it shows a QR code and waits for a wallet:");
    println!("       cardcash -c {conf} terminal withdraw --amount {currency}:5");
    println!("     (add --display 127.0.0.1:8090 for the customer's screen in a browser)");
    if let Some(wallet) = wallet {
        let w = format!("cardcash wallet --wallet-db {}", wallet.display());
        println!("     and be the customer: the demo's wallet takes the URI the terminal printed");
        println!("       {w} handle-uri 'taler+http://withdraw/…' -y");
        println!("       {w} balance");
        println!("       {w} transactions");
        println!("       {w} coins");
        println!(
            "       {w} exchanges list   (also: exchanges add {}, run-until-done)",
            world.exchange().base_url()
        );
    }
    println!("  2. Or play the wallet by hand: take the WOPID, the last part of the");
    println!("     taler+http://withdraw/… URI the terminal printed, and register a reserve key:");
    println!("       W=<WOPID>");
    println!("       curl -s {c2ec}taler-integration/withdrawal-operation/$W");
    println!("       R=$(head -c32 /dev/urandom | base32 -w0 | tr -d =)   # a reserve public key");
    println!(
        "       curl -s -H 'Content-Type: application/json' -d '{{\"reserve_pub\":\"'$R'\",\"selected_exchange\":\"{}\"}}' {c2ec}taler-integration/withdrawal-operation/$W",
        cfg.string("c2ec", "EXCHANGE_ACCOUNT")?
    );
    println!("     The terminal then charges the test card and C2EC confirms the withdrawal.");
    println!("  3. Look at it as the exchange does (its Wire Gateway view of C2EC):");
    println!(
        "       curl -s -u exchange:{} '{c2ec}taler-wire-gateway/history/incoming?limit=-5'",
        cfg.string("c2ec", "WIRE_GATEWAY_PASSWORD")?
    );
    println!("  4. Operator commands on the same configuration:");
    println!(
        "       cardcash -c {conf} c2ec terminal list   (also: bank account list, c2ec provider check)"
    );
    println!(
        "  5. Shop at Pretty Pianos in a browser: {}",
        world.storefront().base_url()
    );
    println!(
        "     The Sonatas' payment page shows a QR code; pay its taler://pay URI with the wallet:"
    );
    if let Some(wallet) = wallet {
        println!(
            "       cardcash wallet --wallet-db {} handle-uri 'taler+http://pay/…' -y",
            wallet.display()
        );
    }
    println!(
        "     and reload the page. The shop's /admin (user admin, password in [storefront] \
         ADMIN_PASSWORD) refunds orders."
    );
    println!(
        "  Later, `cardcash demo --serve --data-dir {}` resumes on the same configuration and databases.",
        dir.display()
    );
    println!("{}", "=".repeat(72));
    Ok(())
}

/// Prints the terminal's progress under the story's step headers and hands every event to
/// the wallet task.
struct DemoObserver {
    progress: Progress,
    console: ConsoleObserver<std::io::Stdout>,
    events: mpsc::UnboundedSender<FlowEvent>,
    card_step_shown: bool,
}

impl FlowObserver for DemoObserver {
    fn on_event(&mut self, event: &FlowEvent) {
        // The wallet announces its own step when it gets the QR code.
        match event {
            FlowEvent::CardPayment { .. } if !self.card_step_shown => {
                self.card_step_shown = true;
                self.progress
                    .step("customer: pays by card at the terminal (card processor)");
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
    progress: &Progress,
    args: &DemoArgs,
    cfg: &TalerConfig,
    world: &World,
    wallet: &cardcash_wallet::Wallet,
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

    // The customer's phone: waits for the QR code, then the wallet takes it from there.
    let own_exchange = world.exchange().base_url().clone();
    let phone = {
        let (progress, wallet) = (progress.clone(), wallet.clone());
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                if let FlowEvent::WithdrawalCreated {
                    taler_withdraw_uri, ..
                } = event
                {
                    return wallet::scan_and_register(
                        &progress,
                        &wallet,
                        &taler_withdraw_uri,
                        &own_exchange,
                    )
                    .await;
                }
            }
            bail!("the terminal never showed a QR code")
        })
    };

    let report = {
        let mut observer = DemoObserver {
            progress: progress.clone(),
            console: ConsoleObserver::stdout(style),
            events: events_tx,
            card_step_shown: false,
        };
        flow.run(&options, &mut observer).await
    };
    // The wallet's error explains a failed flow best (e.g. a refused registration).
    let accepted = phone.await.context("wallet task")??;
    let report = report?;
    if let Some(problem) = crate::terminal_cmd::outcome_problem(&report.outcome, &report.wopid) {
        bail!("{problem}");
    }

    progress.step("C2EC: lists the confirmed withdrawal in its Wire Gateway incoming history");
    let credited =
        exchange_finds_reserve(cfg, world.c2ec().base_url(), &accepted.reserve_pub).await?;
    ensure!(
        credited == args.amount,
        "the history credits {credited}, but the customer paid for {}",
        args.amount
    );
    progress.info(format!(
        "reserve {} credited {credited}, exactly once",
        accepted.reserve_pub
    ));

    progress.step("exchange: wirewatch imports the transfer and funds the reserve");
    let exchange = world.exchange().client();
    let summary = exchange
        .reserve(&accepted.reserve_pub, Duration::from_secs(30))
        .await
        .context("asking the exchange for the reserve")?;
    ensure!(
        summary.balance == args.amount,
        "the exchange's reserve holds {}, but the customer paid for {}",
        summary.balance,
        args.amount
    );
    let keys = exchange
        .keys()
        .await
        .context("reading the exchange's /keys")?;
    let mut values: Vec<Amount> = keys.denominations.iter().map(|g| g.value).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.to_units()));
    values.dedup();
    let values: Vec<String> = values.iter().map(ToString::to_string).collect();
    progress.info(format!(
        "reserve balance {} at {}: coins of {} to withdraw",
        summary.balance,
        world.exchange().base_url(),
        values.join(", ")
    ));

    wallet::withdraw(progress, wallet, &accepted, &keys, credited, &exchange).await?;
    shop::shop(progress, world, wallet).await
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
