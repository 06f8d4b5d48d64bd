//! Instances, their authentication, login tokens and bank accounts: the rules, without HTTP or
//! SQL. Handlers (`http/instances.rs`) call [`Merchant`]'s methods here; the store
//! (`db/instances.rs`) keeps the rows.
//!
//! Spec: docs.taler.net core/merchant post-management-instances, patch-…, post-private-auth,
//! post-private-token, post-private-accounts; the merchant guide (seed 003) for the shape of
//! its Pretty Pianos request, which differs from today's protocol (see
//! `cardcash_api::merchant::instances`).
//!
//! - An instance id matches `^[A-Za-z0-9][A-Za-z0-9_.@-]+$`.
//! - A new instance gets a fresh EdDSA key; each account a fresh wire salt, `h_wire` =
//!   `cardcash_crypto::wire::h_wire(payto, salt)` (what contracts and deposits carry).
//! - Creating an instance again with the same request is a no-op (204); with a different one
//!   409 `…_ALREADY_EXISTS`; an id whose instance was deleted but not purged 409
//!   `…_PURGE_REQUIRED`.
//! - Passwords are stored as argon2id PHC strings; login tokens as their SHA-512 only.

use cardcash_api::merchant::instances::{
    AccountAddDetails, InstanceAuthConfig, InstanceConfigurationMessage,
    InstanceReconfigurationMessage,
};
use cardcash_crypto::eddsa::EddsaPrivateKey;
use cardcash_util::{ErrorCode, HashCode, PaytoUri, RelativeTime, Timestamp, WireSalt};
use serde_json::{Value, json};

use crate::auth::{Permission, Scope};
use crate::db::instances::{
    AccountRow, AddAccount, CreateInstance, InstanceAuth, InstanceRow, LoginTokenRow, NewInstance,
    NewLoginToken,
};
use crate::error::MerchantError;
use crate::service::Merchant;

/// How long a login token lives when the request names no duration.
pub const DEFAULT_TOKEN_DURATION: RelativeTime = RelativeTime::from_secs(24 * 3600);

/// Whether `id` is a valid instance id (`^[A-Za-z0-9][A-Za-z0-9_.@-]+$`).
pub fn valid_instance_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    let rest: Vec<u8> = bytes.collect();
    !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'-'))
}

/// The authentication an `auth` block asks for: `None` = external, `Some(password)` = token.
/// The password may come as `password` or as the deprecated (and the guide's) `token`,
/// `secret-token:<password>`. With method `external` a token is ignored, as the guide's request
/// sends one.
pub fn requested_password(
    auth: &InstanceAuthConfig,
    bad: ErrorCode,
) -> Result<Option<String>, MerchantError> {
    match auth.method.as_str() {
        "external" => Ok(None),
        "token" => {
            let password = match (&auth.password, &auth.token) {
                (Some(p), _) => p.clone(),
                (None, Some(t)) => t
                    .strip_prefix("secret-token:")
                    .ok_or_else(|| {
                        MerchantError::refused(
                            bad,
                            "auth.token must start with secret-token: (RFC 8959)",
                        )
                    })?
                    .to_owned(),
                (None, None) => {
                    return Err(MerchantError::refused(
                        bad,
                        "auth method token needs a password",
                    ));
                }
            };
            if password.is_empty() {
                return Err(MerchantError::refused(bad, "the password is empty"));
            }
            Ok(Some(password))
        }
        other => Err(MerchantError::refused(
            bad,
            format!("unknown auth method {other:?} (external or token)"),
        )),
    }
}

/// A payto URI an instance may be paid to (parsed to check it; kept as written, since `h_wire`
/// hashes the text).
pub fn checked_payto(payto: &str) -> Result<String, MerchantError> {
    payto.parse::<PaytoUri>().map_err(|e| {
        MerchantError::refused(
            ErrorCode::GenericPaytoUriMalformed,
            format!("payto URI {payto:?}: {e}"),
        )
    })?;
    Ok(payto.to_owned())
}

/// The wire method of a payto URI (`iban`, `x-taler-bank`, …).
pub fn wire_method(payto: &str) -> String {
    payto
        .parse::<PaytoUri>()
        .map(|p| p.target_type().to_owned())
        .unwrap_or_default()
}

/// A new instance row `id` named `name`: a fresh EdDSA key, `auth`, no contact details, the
/// backend's default delays (`config`), created now. Callers change what they need.
pub fn new_instance_row(
    id: &str,
    name: &str,
    auth: InstanceAuth,
    config: &crate::config::MerchantConfig,
) -> Result<InstanceRow, MerchantError> {
    let key = EddsaPrivateKey::generate()
        .map_err(|e| MerchantError::Internal(format!("instance key: {e}")))?;
    Ok(InstanceRow {
        serial: 0,
        id: id.to_owned(),
        merchant_pub: key.public(),
        merchant_priv: key.to_bytes(),
        name: name.to_owned(),
        email: None,
        phone_number: None,
        website: None,
        logo: None,
        address: json!({}),
        jurisdiction: json!({}),
        use_stefan: false,
        auth,
        default_max_deposit_fee: None,
        default_max_wire_fee: None,
        default_wire_fee_amortization: 1,
        default_pay_delay: config.default_pay_delay,
        default_refund_delay: config.default_refund_delay,
        default_wire_transfer_delay: config.default_wire_transfer_delay,
        created_at: Timestamp::now(),
        deleted: false,
    })
}

/// A fresh account row for `payto` (random salt).
pub fn new_account(
    payto_uri: String,
    credit_facade_url: Option<String>,
    credit_facade_credentials: Option<&Value>,
) -> Result<AccountRow, MerchantError> {
    let salt = WireSalt::from(
        cardcash_crypto::random_bytes::<16>()
            .map_err(|e| MerchantError::Internal(format!("random salt: {e}")))?,
    );
    Ok(AccountRow {
        serial: 0,
        h_wire: cardcash_crypto::wire::h_wire(&payto_uri, &salt),
        salt,
        payto_uri,
        active: true,
        credit_facade_url,
        credit_facade_credentials: credit_facade_credentials.map(Value::to_string),
    })
}

/// The payto URIs of a creation request (the guide's `accounts`, the 2022 `payto_uris`), checked,
/// without repetitions, in order.
fn requested_paytos(req: &InstanceConfigurationMessage) -> Result<Vec<String>, MerchantError> {
    let mut out: Vec<String> = Vec::new();
    for payto in req
        .accounts
        .iter()
        .map(|a| a.payto_uri.as_str())
        .chain(req.payto_uris.iter().map(String::as_str))
    {
        let payto = checked_payto(payto)?;
        if !out.contains(&payto) {
            out.push(payto);
        }
    }
    Ok(out)
}

fn location(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or_else(|| json!({}))
}

/// The instance a creation request describes (without key, auth and serial: see
/// [`Merchant::create_instance`]), with the backend's defaults for what it leaves out.
fn settings_of(
    merchant: &Merchant,
    req: &InstanceConfigurationMessage,
    base: InstanceRow,
) -> Result<InstanceRow, MerchantError> {
    let config = merchant.config();
    let currency = merchant.store().currency();
    for fee in [&req.default_max_wire_fee, &req.default_max_deposit_fee]
        .into_iter()
        .flatten()
    {
        if fee.currency() != currency {
            return Err(MerchantError::refused(
                ErrorCode::GenericCurrencyMismatch,
                format!("{fee} is not in {currency}"),
            ));
        }
    }
    if req.default_wire_fee_amortization == Some(0) {
        return Err(MerchantError::malformed(
            "default_wire_fee_amortization (≥ 1)",
        ));
    }
    Ok(InstanceRow {
        id: req.id.clone(),
        name: req.name.clone(),
        email: req.email.clone(),
        phone_number: req.phone_number.clone(),
        website: req.website.clone(),
        logo: req.logo.clone(),
        address: location(req.address.as_ref()),
        jurisdiction: location(req.jurisdiction.as_ref()),
        use_stefan: req.use_stefan.unwrap_or(false),
        default_max_deposit_fee: req.default_max_deposit_fee,
        default_max_wire_fee: req.default_max_wire_fee,
        default_wire_fee_amortization: req.default_wire_fee_amortization.unwrap_or(1),
        default_pay_delay: req
            .default_pay_delay
            .map_or(config.default_pay_delay, |d| d.0),
        default_refund_delay: req
            .default_refund_delay
            .map_or(config.default_refund_delay, |d| d.0),
        default_wire_transfer_delay: req
            .default_wire_transfer_delay
            .map_or(config.default_wire_transfer_delay, |d| d.0),
        ..base
    })
}

/// Whether two rows describe the same settings (everything a request sets, not key, serial,
/// auth or dates).
fn same_settings(a: &InstanceRow, b: &InstanceRow) -> bool {
    a.name == b.name
        && a.email == b.email
        && a.phone_number == b.phone_number
        && a.website == b.website
        && a.logo == b.logo
        && a.address == b.address
        && a.jurisdiction == b.jurisdiction
        && a.use_stefan == b.use_stefan
        && a.default_max_deposit_fee == b.default_max_deposit_fee
        && a.default_max_wire_fee == b.default_max_wire_fee
        && a.default_wire_fee_amortization == b.default_wire_fee_amortization
        && a.default_pay_delay == b.default_pay_delay
        && a.default_refund_delay == b.default_refund_delay
        && a.default_wire_transfer_delay == b.default_wire_transfer_delay
}

/// Applies a PATCH to an instance row (fields left out stay).
pub fn patched(
    row: &InstanceRow,
    patch: &InstanceReconfigurationMessage,
    currency: cardcash_util::Currency,
) -> Result<InstanceRow, MerchantError> {
    for fee in [&patch.default_max_wire_fee, &patch.default_max_deposit_fee]
        .into_iter()
        .flatten()
    {
        if *fee.currency() != currency {
            return Err(MerchantError::refused(
                ErrorCode::GenericCurrencyMismatch,
                format!("{fee} is not in {currency}"),
            ));
        }
    }
    if patch.default_wire_fee_amortization == Some(0) {
        return Err(MerchantError::malformed(
            "default_wire_fee_amortization (≥ 1)",
        ));
    }
    let mut r = row.clone();
    if let Some(v) = &patch.name {
        r.name.clone_from(v);
    }
    if let Some(v) = &patch.email {
        r.email = Some(v.clone());
    }
    if let Some(v) = &patch.phone_number {
        r.phone_number = Some(v.clone());
    }
    if let Some(v) = &patch.website {
        r.website = Some(v.clone());
    }
    if let Some(v) = &patch.logo {
        r.logo = Some(v.clone());
    }
    if let Some(v) = &patch.address {
        r.address = v.clone();
    }
    if let Some(v) = &patch.jurisdiction {
        r.jurisdiction = v.clone();
    }
    if let Some(v) = patch.use_stefan {
        r.use_stefan = v;
    }
    if let Some(v) = patch.default_max_wire_fee {
        r.default_max_wire_fee = Some(v);
    }
    if let Some(v) = patch.default_max_deposit_fee {
        r.default_max_deposit_fee = Some(v);
    }
    if let Some(v) = patch.default_wire_fee_amortization {
        r.default_wire_fee_amortization = v;
    }
    if let Some(v) = patch.default_pay_delay {
        r.default_pay_delay = v.0;
    }
    if let Some(v) = patch.default_refund_delay {
        r.default_refund_delay = v.0;
    }
    if let Some(v) = patch.default_wire_transfer_delay {
        r.default_wire_transfer_delay = v.0;
    }
    Ok(r)
}

/// A fresh login token: the `secret-token:…` text handed out, and the SHA-512 stored.
pub fn fresh_token() -> Result<(String, HashCode), MerchantError> {
    let bytes = cardcash_crypto::random_bytes::<32>()
        .map_err(|e| MerchantError::Internal(format!("random token: {e}")))?;
    let secret = cardcash_util::base32::encode(&bytes);
    let hash = token_hash(&secret);
    Ok((format!("secret-token:{secret}"), hash))
}

/// What is stored of a login token: the SHA-512 of its secret (the text after
/// `secret-token:`).
pub fn token_hash(secret: &str) -> HashCode {
    cardcash_crypto::sha512(secret.as_bytes())
}

/// A token scope as requested: `<scope>[:refreshable]`, plus the deprecated `refreshable` flag.
pub fn requested_scope(text: &str, refreshable_flag: bool) -> Result<(Scope, bool), MerchantError> {
    let (name, refreshable) = match text.strip_suffix(":refreshable") {
        Some(name) => (name, true),
        None => (text, refreshable_flag),
    };
    let scope = name.parse::<Scope>().map_err(|()| {
        MerchantError::refused(
            ErrorCode::GenericParameterMalformed,
            format!("unknown token scope {text:?}"),
        )
    })?;
    Ok((scope, refreshable))
}

impl Merchant {
    /// `POST /management/instances`: creates the instance, or accepts an identical replay.
    pub async fn create_instance(
        &self,
        req: &InstanceConfigurationMessage,
    ) -> Result<(), MerchantError> {
        if !valid_instance_id(&req.id) {
            return Err(MerchantError::malformed(
                "instance id (^[A-Za-z0-9][A-Za-z0-9_.@-]+$)",
            ));
        }
        let password =
            requested_password(&req.auth, ErrorCode::MerchantPrivatePostInstancesBadAuth)?;
        let paytos = requested_paytos(req)?;
        if let Some(existing) = self.store().instance(&req.id).await? {
            return self.replay(req, existing, password, &paytos).await;
        }
        let auth = match &password {
            None => InstanceAuth::External,
            Some(p) => InstanceAuth::Token {
                password_hash: self
                    .credentials()
                    .hash(p)
                    .await
                    .map_err(|e| MerchantError::Internal(format!("password hash: {e}")))?,
            },
        };
        let base = new_instance_row(&req.id, "", auth, self.config())?;
        let row = settings_of(self, req, base)?;
        let mut accounts = Vec::new();
        for a in &paytos {
            let given = req.accounts.iter().find(|x| &x.payto_uri == a);
            accounts.push(new_account(
                a.clone(),
                given.and_then(|g| g.credit_facade_url.clone()),
                given.and_then(|g| g.credit_facade_credentials.as_ref()),
            )?);
        }
        match self
            .store()
            .create_instance(NewInstance { row, accounts })
            .await?
        {
            CreateInstance::Created { .. } => Ok(()),
            // Lost a race with another creation of the same id: judge it as a replay.
            CreateInstance::Exists { .. } => match self.store().instance(&req.id).await? {
                Some(existing) => self.replay(req, existing, password, &paytos).await,
                None => Err(MerchantError::Internal("instance vanished".into())),
            },
        }
    }

    /// A creation request for an id that exists: fine if it asks for what is there.
    async fn replay(
        &self,
        req: &InstanceConfigurationMessage,
        existing: InstanceRow,
        password: Option<String>,
        paytos: &[String],
    ) -> Result<(), MerchantError> {
        if existing.deleted {
            return Err(MerchantError::refused(
                ErrorCode::MerchantPrivatePostInstancesPurgeRequired,
                format!("instance {:?} was deleted; purge it first", existing.id),
            ));
        }
        let conflict = || {
            MerchantError::refused(
                ErrorCode::MerchantPrivatePostInstancesAlreadyExists,
                format!("instance {:?} exists with other settings", existing.id),
            )
        };
        let wanted = settings_of(self, req, existing.clone())?;
        if !same_settings(&wanted, &existing) {
            return Err(conflict());
        }
        let active: Vec<String> = self
            .store()
            .accounts(existing.serial)
            .await?
            .into_iter()
            .filter(|a| a.active)
            .map(|a| a.payto_uri)
            .collect();
        let mut a = active.clone();
        let mut b = paytos.to_vec();
        a.sort();
        b.sort();
        if a != b {
            return Err(conflict());
        }
        let same_auth = match (&existing.auth, password) {
            (InstanceAuth::External, None) => true,
            (InstanceAuth::Token { password_hash }, Some(p)) => {
                self.credentials()
                    .verify(
                        &format!("instance:{}", existing.id),
                        &p,
                        Some(password_hash),
                    )
                    .await
            }
            _ => false,
        };
        if same_auth { Ok(()) } else { Err(conflict()) }
    }

    /// `PATCH /management/instances/$I`, `PATCH /private`.
    pub async fn patch_instance(
        &self,
        instance: &InstanceRow,
        patch: &InstanceReconfigurationMessage,
    ) -> Result<(), MerchantError> {
        let row = patched(instance, patch, *self.store().currency())?;
        if self.store().update_instance(&row).await? {
            Ok(())
        } else {
            Err(MerchantError::unknown_instance(&instance.id))
        }
    }

    /// `DELETE /management/instances/$I[?purge=YES]`, `DELETE /private`: a soft delete keeps
    /// the data (the id stays taken); a purge removes the instance and everything it owns.
    pub async fn delete_instance(&self, id: &str, purge: bool) -> Result<(), MerchantError> {
        let done = if purge {
            self.store().purge_instance(id).await?
        } else {
            self.store().soft_delete_instance(id).await?
        };
        if done {
            Ok(())
        } else {
            Err(MerchantError::unknown_instance(id))
        }
    }

    /// `POST /private/auth`, `POST /management/instances/$I/auth`: a new method or password.
    /// Every login token of the instance is revoked with the old credentials.
    pub async fn change_auth(
        &self,
        instance: &InstanceRow,
        auth: &InstanceAuthConfig,
    ) -> Result<(), MerchantError> {
        let password = requested_password(auth, ErrorCode::MerchantPrivatePostInstanceAuthBadAuth)?;
        let auth = match password {
            None => InstanceAuth::External,
            Some(p) => InstanceAuth::Token {
                password_hash: self
                    .credentials()
                    .hash(&p)
                    .await
                    .map_err(|e| MerchantError::Internal(format!("password hash: {e}")))?,
            },
        };
        self.credentials()
            .invalidate(&format!("instance:{}", instance.id));
        if self
            .store()
            .set_instance_auth(instance.serial, &auth)
            .await?
        {
            Ok(())
        } else {
            Err(MerchantError::unknown_instance(&instance.id))
        }
    }

    /// `POST /private/token`: a login token of `scope` for the instance. `current` is the scope
    /// of the login token the request presented, if it came with one: then that token must be
    /// refreshable and the new one may not allow more.
    pub async fn issue_token(
        &self,
        instance: &InstanceRow,
        scope_text: &str,
        refreshable_flag: bool,
        duration: Option<RelativeTime>,
        description: Option<String>,
        current: Option<&LoginTokenRow>,
    ) -> Result<(String, LoginTokenRow), MerchantError> {
        let (scope, refreshable) = requested_scope(scope_text, refreshable_flag)?;
        if let Some(current) = current {
            if !current.refreshable {
                return Err(MerchantError::refused(
                    ErrorCode::GenericTokenPermissionInsufficient,
                    "this login token is not refreshable",
                ));
            }
            if !scope.within(current.scope) || (refreshable && !current.refreshable) {
                return Err(MerchantError::refused(
                    ErrorCode::GenericTokenPermissionInsufficient,
                    format!("a {} token cannot make a {} token", current.scope, scope),
                ));
            }
        }
        let now = Timestamp::now();
        let expiration = now.saturating_add(duration.unwrap_or(DEFAULT_TOKEN_DURATION));
        let (token, hash) = fresh_token()?;
        let row = self
            .store()
            .insert_login_token(NewLoginToken {
                instance_serial: instance.serial,
                token_hash: hash,
                scope,
                refreshable,
                description,
                created_at: now,
                expires_at: expiration,
            })
            .await?;
        Ok((token, row))
    }

    /// `POST /private/accounts`: adds an account, or answers an identical one again.
    pub async fn add_account(
        &self,
        instance: &InstanceRow,
        req: &AccountAddDetails,
    ) -> Result<AccountRow, MerchantError> {
        let payto = checked_payto(&req.payto_uri)?;
        let row = new_account(
            payto,
            req.credit_facade_url.clone(),
            req.credit_facade_credentials.as_ref(),
        )?;
        match self.store().add_account(instance.serial, row).await? {
            AddAccount::Added(row) | AddAccount::Same(row) => Ok(row),
            AddAccount::Conflict => Err(MerchantError::refused(
                ErrorCode::MerchantPrivateAccountExists,
                format!(
                    "account {} exists with another credit facade",
                    req.payto_uri
                ),
            )),
        }
    }
}

/// Whether `permission` is a read (`GET`) permission: a `readonly` token allows exactly those.
pub fn is_read(permission: Permission) -> bool {
    matches!(
        permission,
        Permission::InstancesRead
            | Permission::ProductsRead
            | Permission::OrdersRead
            | Permission::TransfersRead
            | Permission::WebhooksRead
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_follow_the_c_merchants_pattern() {
        for ok in ["default", "pretty-pianos", "a1", "shop.example@x_y"] {
            assert!(valid_instance_id(ok), "{ok}");
        }
        for bad in ["", "a", "-shop", "_x", "shop/1", "shop 1", "ümlaut"] {
            assert!(!valid_instance_id(bad), "{bad}");
        }
    }

    fn auth(method: &str, token: Option<&str>, password: Option<&str>) -> InstanceAuthConfig {
        InstanceAuthConfig {
            method: method.into(),
            token: token.map(Into::into),
            password: password.map(Into::into),
        }
    }

    #[test]
    fn auth_blocks_yield_the_password_to_keep() {
        let bad = ErrorCode::MerchantPrivatePostInstancesBadAuth;
        // The guide: external, with a token that is ignored.
        assert_eq!(
            requested_password(
                &auth("external", Some("secret-token:eighty-eight-keys"), None),
                bad
            )
            .unwrap(),
            None
        );
        assert_eq!(
            requested_password(&auth("token", Some("secret-token:pw"), None), bad).unwrap(),
            Some("pw".into())
        );
        assert_eq!(
            requested_password(&auth("token", None, Some("pw2")), bad).unwrap(),
            Some("pw2".into())
        );
        for wrong in [
            auth("token", None, None),
            auth("token", Some("pw"), None),
            auth("token", None, Some("")),
            auth("oauth", None, None),
        ] {
            let e = requested_password(&wrong, bad).unwrap_err();
            assert!(matches!(e, MerchantError::Refused(r) if r.code == bad));
        }
    }

    #[test]
    fn scopes_are_read_with_their_refreshable_suffix() {
        assert_eq!(
            requested_scope("order-pos:refreshable", false).unwrap(),
            (Scope::OrderPos, true)
        );
        assert_eq!(
            requested_scope("readonly", false).unwrap(),
            (Scope::ReadOnly, false)
        );
        assert_eq!(requested_scope("all", true).unwrap(), (Scope::All, true));
        assert_eq!(
            requested_scope("write", false).unwrap(),
            (Scope::Write, false)
        );
        assert!(requested_scope("admin", false).is_err());
        assert!(requested_scope("readonly:forever", false).is_err());
    }

    #[test]
    fn tokens_are_kept_only_as_their_hash() {
        let (token, hash) = fresh_token().unwrap();
        let secret = token.strip_prefix("secret-token:").unwrap();
        assert_eq!(token_hash(secret), hash);
        assert_ne!(fresh_token().unwrap().0, token);
    }

    #[test]
    fn accounts_hash_their_payto_with_a_fresh_salt() {
        let a = new_account("payto://iban/CH9300762011623852957".into(), None, None).unwrap();
        let b = new_account("payto://iban/CH9300762011623852957".into(), None, None).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_eq!(
            a.h_wire,
            cardcash_crypto::wire::h_wire(&a.payto_uri, &a.salt)
        );
        assert!(checked_payto("payto://iban/CH9300762011623852958").is_err());
        assert_eq!(wire_method("payto://iban/CH9300762011623852957"), "iban");
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let currency: cardcash_util::Currency = "KUDOS".parse().unwrap();
        let key = EddsaPrivateKey::generate().unwrap();
        let row = InstanceRow {
            serial: 1,
            id: "shop".into(),
            merchant_pub: key.public(),
            merchant_priv: key.to_bytes(),
            name: "Shop".into(),
            email: Some("a@b".into()),
            phone_number: None,
            website: None,
            logo: None,
            address: json!({}),
            jurisdiction: json!({}),
            use_stefan: false,
            auth: InstanceAuth::External,
            default_max_deposit_fee: None,
            default_max_wire_fee: None,
            default_wire_fee_amortization: 1,
            default_pay_delay: RelativeTime::from_secs(60),
            default_refund_delay: RelativeTime::ZERO,
            default_wire_transfer_delay: RelativeTime::from_secs(120),
            created_at: Timestamp::from_secs(1),
            deleted: false,
        };
        let patch: InstanceReconfigurationMessage = serde_json::from_value(
            json!({"name": "Pretty Pianos", "default_pay_delay": "5 hours"}),
        )
        .unwrap();
        let p = patched(&row, &patch, currency).unwrap();
        assert_eq!(p.name, "Pretty Pianos");
        assert_eq!(p.default_pay_delay, RelativeTime::from_secs(5 * 3600));
        assert_eq!(p.email, row.email);
        assert_eq!(
            p.default_wire_transfer_delay,
            row.default_wire_transfer_delay
        );
        let foreign: InstanceReconfigurationMessage =
            serde_json::from_value(json!({"default_max_wire_fee": "EUR:1"})).unwrap();
        assert!(patched(&row, &foreign, currency).is_err());
    }
}
