//! Typed handles of a world's running services: the `App`, where it listens, its credentials,
//! and ready-made clients (`cardcash-client`) on the world's shared HTTP pool.

use cardcash_api::cardproc::mac::MacKey;
use cardcash_c2ec::WireGatewayAuth;
use cardcash_client::{
    Auth, BankClient, BankIntegrationClient, C2ecTerminalClient, CardprocClient, HttpClient,
    WireGatewayClient,
};
use cardcash_util::{BaseUrl, PaytoUri};

use crate::WorldError;

/// A user name and password (Basic authentication).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"…redacted…")
            .finish()
    }
}

impl Credentials {
    pub fn auth(&self) -> Auth {
        Auth::basic(self.username.clone(), self.password.clone())
    }
}

/// The running bank.
pub struct Bank {
    app: cardcash_bank::App,
    admin_token: Option<String>,
    exchange: Option<Credentials>,
    database_url: String,
    http: HttpClient,
}

impl Bank {
    pub(crate) fn new(
        app: cardcash_bank::App,
        admin_token: Option<String>,
        exchange: Option<Credentials>,
        database_url: String,
        http: HttpClient,
    ) -> Self {
        Self {
            app,
            admin_token,
            exchange,
            database_url,
            http,
        }
    }

    pub fn app(&self) -> &cardcash_bank::App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    /// The database URL (`sqlite:…` or `postgres://…`).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The admin's bearer token, if the bank has one.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The exchange's account (name and password), if the world created one.
    pub fn exchange(&self) -> Option<&Credentials> {
        self.exchange.as_ref()
    }

    /// A Core Bank API client acting as the admin (without credentials if there is no token).
    pub fn admin(&self) -> BankClient {
        let auth = match &self.admin_token {
            Some(token) => Auth::bearer(token.clone()),
            None => Auth::None,
        };
        self.client(auth)
    }

    /// A Core Bank API client with `auth`.
    pub fn client(&self, auth: Auth) -> BankClient {
        BankClient::with_http(self.http.clone(), self.base_url().clone(), auth)
    }

    /// The Wire Gateway client of `account` with Basic credentials.
    pub fn wire_gateway(
        &self,
        account: &str,
        password: &str,
    ) -> Result<WireGatewayClient, WorldError> {
        let base = self
            .app
            .wire_gateway_url(account)
            .map_err(|e| WorldError::Setup(e.to_string()))?;
        Ok(WireGatewayClient::with_http(
            self.http.clone(),
            base,
            Auth::basic(account, password),
        ))
    }

    /// The exchange's Wire Gateway client. Panics if the world created no exchange account.
    pub fn exchange_wire_gateway(&self) -> WireGatewayClient {
        let exchange = self
            .exchange
            .as_ref()
            .unwrap_or_else(|| panic!("this world's bank has no exchange account"));
        self.wire_gateway(&exchange.username, &exchange.password)
            .unwrap_or_else(|e| panic!("the exchange's Wire Gateway URL: {e}"))
    }

    /// Stops the bank (in-flight requests finish; waiting long polls answer at once).
    pub async fn shutdown(self) -> Result<(), WorldError> {
        self.app.shutdown().await.map_err(WorldError::BankShutdown)
    }
}

/// One API user of the card processor.
#[derive(Clone, PartialEq, Eq)]
pub struct CardprocUser {
    pub id: u64,
    /// The base64 MAC secret.
    pub secret: String,
}

impl std::fmt::Debug for CardprocUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardprocUser")
            .field("id", &self.id)
            .field("secret", &"…redacted…")
            .finish()
    }
}

pub(crate) struct CardprocSetup {
    pub admin_token: Option<String>,
    pub space_id: u64,
    pub terminal: Option<CardprocUser>,
    pub reader: Option<CardprocUser>,
    pub database_url: String,
}

/// The running card processor.
pub struct Cardproc {
    app: cardcash_cardproc::App,
    setup: CardprocSetup,
    http: HttpClient,
}

impl Cardproc {
    pub(crate) fn new(app: cardcash_cardproc::App, setup: CardprocSetup, http: HttpClient) -> Self {
        Self { app, setup, http }
    }

    pub fn app(&self) -> &cardcash_cardproc::App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    pub fn database_url(&self) -> &str {
        &self.setup.database_url
    }

    /// The one space the processor serves.
    pub fn space_id(&self) -> u64 {
        self.setup.space_id
    }

    /// The bearer token of `/admin/…`, if configured.
    pub fn admin_token(&self) -> Option<&str> {
        self.setup.admin_token.as_deref()
    }

    /// The point of sale's user (role `terminal`).
    pub fn terminal_user(&self) -> Option<&CardprocUser> {
        self.setup.terminal.as_ref()
    }

    /// C2EC's user (role `reader`).
    pub fn reader_user(&self) -> Option<&CardprocUser> {
        self.setup.reader.as_ref()
    }

    /// A client signing as `user_id` with the base64 `secret`.
    pub fn client(&self, user_id: u64, secret: &str) -> Result<CardprocClient, WorldError> {
        let key = MacKey::from_base64(secret)
            .map_err(|e| WorldError::Setup(format!("MAC secret of user {user_id}: {e}")))?;
        Ok(CardprocClient::with_http(
            self.http.clone(),
            self.base_url().clone(),
            user_id,
            key,
            self.setup.space_id,
        ))
    }

    fn client_of(&self, user: Option<&CardprocUser>, role: &str) -> CardprocClient {
        let user = user.unwrap_or_else(|| panic!("the card processor has no {role} user"));
        self.client(user.id, &user.secret)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The point of sale's client (creates transactions, processes cards). Panics if there is
    /// no `terminal` user.
    pub fn pos(&self) -> CardprocClient {
        self.client_of(self.terminal_user(), "terminal")
    }

    /// C2EC's view of the processor (reads, refunds). Panics if there is no `reader` user.
    pub fn reader(&self) -> CardprocClient {
        self.client_of(self.reader_user(), "reader")
    }

    /// Stops the processor and its worker.
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }
}

/// A terminal registered at C2EC.
#[derive(Clone, PartialEq, Eq)]
pub struct TerminalCredentials {
    /// The Basic user name (`T-<id>`).
    pub user: String,
    pub secret: String,
    /// Its description (shop and counter).
    pub name: String,
}

impl std::fmt::Debug for TerminalCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalCredentials")
            .field("user", &self.user)
            .field("secret", &"…redacted…")
            .field("name", &self.name)
            .finish()
    }
}

pub(crate) struct C2ecSetup {
    pub exchange_account: PaytoUri,
    pub wire_gateway: WireGatewayAuth,
    pub admin_token: Option<String>,
    pub database_url: String,
    /// The card processor C2EC attests with, unless it uses a custom provider.
    pub provider_url: Option<BaseUrl>,
}

/// The running C2EC.
pub struct C2ec {
    app: cardcash_c2ec::App,
    setup: C2ecSetup,
    terminal: Option<TerminalCredentials>,
    http: HttpClient,
}

impl C2ec {
    pub(crate) fn new(
        app: cardcash_c2ec::App,
        setup: C2ecSetup,
        terminal: Option<TerminalCredentials>,
        http: HttpClient,
    ) -> Self {
        Self {
            app,
            setup,
            terminal,
            http,
        }
    }

    pub fn app(&self) -> &cardcash_c2ec::App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    pub fn database_url(&self) -> &str {
        &self.setup.database_url
    }

    /// `{base}{path}` as a base URL (`terminal/`, `taler-integration/`, …).
    fn below(&self, path: &str) -> BaseUrl {
        self.base_url()
            .join_base(path)
            .unwrap_or_else(|e| panic!("{path} below C2EC's base URL: {e}"))
    }

    /// The Terminal API's base URL (`{base}terminal/`).
    pub fn terminal_url(&self) -> BaseUrl {
        self.below("terminal/")
    }

    /// The Bank Integration API's base URL (`{base}taler-integration/`).
    pub fn integration_url(&self) -> BaseUrl {
        self.below("taler-integration/")
    }

    /// The Wire Gateway API's base URL (`{base}taler-wire-gateway/`).
    pub fn wire_gateway_url(&self) -> BaseUrl {
        self.below("taler-wire-gateway/")
    }

    /// The exchange's account wallets must select.
    pub fn exchange_account(&self) -> &PaytoUri {
        &self.setup.exchange_account
    }

    /// The exchange's Wire Gateway credentials as configured.
    pub fn wire_gateway_auth(&self) -> &WireGatewayAuth {
        &self.setup.wire_gateway
    }

    /// The exchange's Basic credentials on the Wire Gateway, if configured.
    pub fn exchange(&self) -> Option<Credentials> {
        let auth = &self.setup.wire_gateway;
        Some(Credentials {
            username: auth.username.clone()?,
            password: auth.password.clone()?,
        })
    }

    /// The bearer token of `admin/add-incoming`, if configured.
    pub fn admin_token(&self) -> Option<&str> {
        self.setup.admin_token.as_deref()
    }

    /// The card processor C2EC attests with (`None` with a custom provider).
    pub fn provider_url(&self) -> Option<&BaseUrl> {
        self.setup.provider_url.as_ref()
    }

    /// The registered terminal, if any.
    pub fn terminal(&self) -> Option<&TerminalCredentials> {
        self.terminal.as_ref()
    }

    /// The terminal's client. Panics if the world registered no terminal.
    pub fn terminal_client(&self) -> C2ecTerminalClient {
        let terminal = self
            .terminal
            .as_ref()
            .unwrap_or_else(|| panic!("this world's C2EC has no terminal"));
        C2ecTerminalClient::with_http(
            self.http.clone(),
            self.terminal_url(),
            terminal.user.clone(),
            terminal.secret.clone(),
        )
    }

    /// The wallet's client (Bank Integration API, no credentials), named `C2EC` in errors.
    pub fn integration(&self) -> BankIntegrationClient {
        BankIntegrationClient::with_http(self.http.clone(), self.integration_url()).named("C2EC")
    }

    /// The exchange's Wire Gateway client: Basic credentials if configured, else the bearer
    /// token.
    pub fn wire_gateway(&self) -> WireGatewayClient {
        let auth = match (self.exchange(), &self.setup.wire_gateway.token) {
            (Some(credentials), _) => credentials.auth(),
            (None, Some(token)) => Auth::bearer(token.clone()),
            (None, None) => Auth::None,
        };
        WireGatewayClient::with_http(self.http.clone(), self.wire_gateway_url(), auth)
            .named("C2EC's Wire Gateway")
    }

    /// Stops C2EC: the listener, then the workers, then the database.
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }
}
