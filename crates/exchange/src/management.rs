//! The online side of the offline key's work (docs.taler.net core/api-exchange "Management
//! operations"): what the exchange proposes for signing (`GET /management/keys`), and the
//! checks of everything the offline key uploads before it is stored. Every upload is verified
//! against the configured master public key; a replayed upload is accepted again (204), a
//! conflicting one refused with the code the C exchange uses.

use cardcash_api::exchange::CsPoint;
use cardcash_api::exchange::{
    DenominationPublicKey, FutureDenomination, FutureKeysResponse, FutureSignKey,
    GlobalFeesRequest, MasterSignaturesRequest, WireFeeSetupRequest, WireSetupRequest,
    WireTeardownRequest,
};
use cardcash_crypto::purpose::{
    DenominationRevocation, DenominationValidity, GlobalFees, SignedMessage, SigningKeyRevocation,
    SigningKeyValidity, WireAccountV12, WireAccountV23, WireAdd, WireDel, WireFee,
};
use cardcash_util::{Base32Bytes, EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, Timestamp};

use crate::config::{DenominationConfig, ExchangeConfig};
use crate::db::{
    DenominationRow, ExchangeStore, GlobalFeeRow, KeyMaterial, SignkeyRow, Stored, WireAccountRow,
    WireFeeRow,
};
use crate::error::ExchangeError;
use crate::keys::store::{DenominationKey, DenominationPublic, KeyStore, OnlineSigningKey, Secmod};

/// The validity times of a denomination key of `config` starting at `start`.
pub fn denomination_stamps(
    config: &DenominationConfig,
    start: Timestamp,
) -> (Timestamp, Timestamp, Timestamp) {
    let expire_withdraw = start.saturating_add(config.duration_withdraw);
    let expire_deposit = expire_withdraw.saturating_add(config.duration_spend);
    let expire_legal = expire_deposit.saturating_add(config.duration_legal);
    (expire_withdraw, expire_deposit, expire_legal)
}

/// What the master key signs for a denomination key of `config`.
pub fn denomination_validity(
    master_pub: &EddsaPublicKey,
    config: &DenominationConfig,
    key: &DenominationKey,
) -> DenominationValidity {
    let (expire_withdraw, expire_deposit, expire_legal) = denomination_stamps(config, key.start);
    DenominationValidity {
        master_pub: *master_pub,
        start: key.start,
        expire_withdraw,
        expire_deposit,
        expire_legal,
        value: config.value,
        fee_withdraw: config.fee_withdraw,
        fee_deposit: config.fee_deposit,
        fee_refresh: config.fee_refresh,
        fee_refund: config.fee_refund,
        h_denom_pub: key.h_denom_pub,
    }
}

/// What the master key signs for an online signing key.
pub fn signkey_validity(config: &ExchangeConfig, key: &OnlineSigningKey) -> SigningKeyValidity {
    let expire = key.start.saturating_add(config.signkey_duration);
    SigningKeyValidity {
        start: key.start,
        expire,
        end: expire.saturating_add(config.signkey_legal_duration),
        signkey_pub: key.public,
    }
}

/// The wire form of a denomination public key.
pub fn denomination_public_key(public: &DenominationPublic) -> DenominationPublicKey {
    match public {
        DenominationPublic::Rsa(k) => DenominationPublicKey::Rsa {
            age_mask: 0,
            rsa_pub: Base32Bytes::from_bytes(k.encode()),
        },
        DenominationPublic::Cs(k) => DenominationPublicKey::Cs {
            age_mask: 0,
            cs_pub: CsPoint::from_bytes(*k),
        },
    }
}

fn master(config: &ExchangeConfig) -> Result<EddsaPublicKey, ExchangeError> {
    config.master_public_key.ok_or_else(|| {
        ExchangeError::refused(
            ErrorCode::ExchangeGenericBadConfiguration,
            "MASTER_PUBLIC_KEY is not configured",
        )
    })
}

/// `GET /management/keys`: the keys of the store that the master key has not signed yet and
/// that are still useful (withdrawal not over), with the security modules' announcements.
pub fn future_keys(
    config: &ExchangeConfig,
    keystore: &KeyStore,
    material: &KeyMaterial,
    now: Timestamp,
) -> Result<FutureKeysResponse, ExchangeError> {
    let master_pub = master(config)?;
    let signed_denoms: std::collections::HashSet<HashCode> = material
        .denominations
        .iter()
        .map(|d| d.h_denom_pub)
        .collect();
    let signed_keys: std::collections::HashSet<EddsaPublicKey> =
        material.signkeys.iter().map(|k| k.exchange_pub).collect();
    let mut future_denoms = Vec::new();
    for key in keystore.denominations() {
        if signed_denoms.contains(&key.h_denom_pub) {
            continue;
        }
        let Some(denom) = config.denomination(&key.section) else {
            continue;
        };
        let v = denomination_validity(&master_pub, denom, &key);
        if v.expire_withdraw <= now {
            continue;
        }
        future_denoms.push(FutureDenomination {
            value: denom.value,
            stamp_start: v.start,
            stamp_expire_withdraw: v.expire_withdraw,
            stamp_expire_deposit: v.expire_deposit,
            stamp_expire_legal: v.expire_legal,
            denom_pub: denomination_public_key(&key.public),
            fee_withdraw: denom.fee_withdraw,
            fee_deposit: denom.fee_deposit,
            fee_refresh: denom.fee_refresh,
            fee_refund: denom.fee_refund,
            denom_secmod_sig: keystore.announce_denomination(&key, denom.duration_withdraw),
            section_name: key.section.clone(),
        });
    }
    let mut future_signkeys = Vec::new();
    for key in keystore.signkeys() {
        if signed_keys.contains(&key.public) {
            continue;
        }
        let v = signkey_validity(config, &key);
        if v.expire <= now {
            continue;
        }
        future_signkeys.push(FutureSignKey {
            key: key.public,
            stamp_start: v.start,
            stamp_expire: v.expire,
            stamp_end: v.end,
            signkey_secmod_sig: keystore.announce_signkey(&key, config.signkey_duration),
        });
    }
    Ok(FutureKeysResponse {
        future_denoms,
        future_signkeys,
        master_pub,
        denom_secmod_public_key: keystore.secmod_public(Secmod::Rsa),
        denom_secmod_cs_public_key: keystore.secmod_public(Secmod::Cs),
        signkey_secmod_public_key: keystore.secmod_public(Secmod::Eddsa),
    })
}

fn verify(
    master_pub: &EddsaPublicKey,
    message: &impl SignedMessage,
    sig: &EddsaSignature,
    code: ErrorCode,
    what: &str,
) -> Result<(), ExchangeError> {
    cardcash_crypto::verify(master_pub, sig, message).map_err(|_| {
        ExchangeError::refused(code, format!("the master signature over {what} is invalid"))
    })
}

/// `POST /management/keys`: checks every signature first, then stores them all; nothing is
/// stored if one is wrong.
pub async fn store_master_signatures(
    config: &ExchangeConfig,
    keystore: &KeyStore,
    store: &ExchangeStore,
    request: MasterSignaturesRequest,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    let mut denominations = Vec::with_capacity(request.denom_sigs.len());
    for s in &request.denom_sigs {
        let key = keystore.denomination(&s.h_denom_pub).ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeGenericDenominationKeyUnknown,
                format!("no denomination key {}", s.h_denom_pub),
            )
        })?;
        let denom = config.denomination(&key.section).ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeGenericDenominationKeyUnknown,
                format!("denomination type {} is no longer configured", key.section),
            )
        })?;
        let v = denomination_validity(&master_pub, denom, &key);
        verify(
            &master_pub,
            &v,
            &s.master_sig,
            ErrorCode::ExchangeManagementKeysDenomkeyAddSignatureInvalid,
            "a denomination",
        )?;
        denominations.push(DenominationRow {
            serial: 0,
            h_denom_pub: key.h_denom_pub,
            public: key.public.clone(),
            section: key.section.clone(),
            value: v.value,
            fee_withdraw: v.fee_withdraw,
            fee_deposit: v.fee_deposit,
            fee_refresh: v.fee_refresh,
            fee_refund: v.fee_refund,
            stamp_start: v.start,
            stamp_expire_withdraw: v.expire_withdraw,
            stamp_expire_deposit: v.expire_deposit,
            stamp_expire_legal: v.expire_legal,
            master_sig: s.master_sig,
            revocation: None,
        });
    }
    let mut signkeys = Vec::with_capacity(request.signkey_sigs.len());
    for s in &request.signkey_sigs {
        let key = keystore.signkey(&s.exchange_pub).ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeManagementKeysSignkeyUnknown,
                format!("no signing key {}", s.exchange_pub),
            )
        })?;
        let v = signkey_validity(config, &key);
        verify(
            &master_pub,
            &v,
            &s.master_sig,
            ErrorCode::ExchangeManagementKeysSignkeyAddSignatureInvalid,
            "a signing key",
        )?;
        signkeys.push(SignkeyRow {
            exchange_pub: key.public,
            stamp_start: v.start,
            stamp_expire: v.expire,
            stamp_end: v.end,
            master_sig: s.master_sig,
            revocation: None,
        });
    }
    for row in denominations {
        // A different row for the same key cannot be: the signature covers the whole row and
        // Ed25519 signatures are deterministic. A conflict means the configuration changed
        // (fees, durations) after the first upload; the first one stays.
        if store.insert_denomination(row).await? == Stored::Conflict {
            tracing::warn!("a denomination was signed again with other values; the first stays");
        }
    }
    for row in signkeys {
        if store.insert_signkey(row).await? == Stored::Conflict {
            tracing::warn!("a signing key was signed again with other values; the first stays");
        }
    }
    Ok(())
}

fn restrictions_json(
    restrictions: &[cardcash_api::exchange::AccountRestriction],
) -> Result<serde_json::Value, ExchangeError> {
    serde_json::to_value(restrictions)
        .map_err(|e| ExchangeError::Internal(format!("restrictions do not serialise: {e}")))
}

/// `POST /management/wire`.
pub async fn enable_account(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    r: WireSetupRequest,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    let payto = r.payto_uri.to_string();
    let debit = restrictions_json(&r.debit_restrictions)?;
    let credit = restrictions_json(&r.credit_restrictions)?;
    let bad_restrictions = |e: cardcash_crypto::CryptoError| {
        ExchangeError::refused(
            ErrorCode::GenericParameterMalformed,
            format!("restrictions cannot be hashed: {e}"),
        )
    };
    let add = WireAdd::new(
        &payto,
        r.conversion_url.as_deref(),
        &debit,
        &credit,
        r.validity_start,
    )
    .map_err(bad_restrictions)?;
    verify(
        &master_pub,
        &add,
        &r.master_sig_add,
        ErrorCode::ExchangeManagementWireAddSignatureInvalid,
        "the account's activation",
    )?;
    let wire = WireAccountV23::new(&payto, r.conversion_url.as_deref(), &debit, &credit)
        .map_err(bad_restrictions)?;
    verify(
        &master_pub,
        &wire,
        &r.master_sig_wire,
        ErrorCode::ExchangeManagementWireDetailsSignatureInvalid,
        "the account",
    )?;
    // Our extension for the legacy face: the same account in the v12–14 layout.
    if let Some(sig_v12) = &r.master_sig_wire_v12 {
        verify(
            &master_pub,
            &WireAccountV12 {
                h_payto: cardcash_crypto::h_payto(&payto),
            },
            sig_v12,
            ErrorCode::ExchangeManagementWireDetailsSignatureInvalid,
            "the account (v12 layout)",
        )?;
    }
    let row = WireAccountRow {
        payto_uri: payto,
        conversion_url: r.conversion_url,
        debit_restrictions: debit.to_string(),
        credit_restrictions: credit.to_string(),
        bank_label: r.bank_label,
        priority: r.priority,
        master_sig_wire: r.master_sig_wire,
        master_sig_wire_v12: r.master_sig_wire_v12,
        master_sig_add: r.master_sig_add,
        validity_start: r.validity_start,
        master_sig_del: None,
        validity_end: None,
        is_active: true,
    };
    match store.enable_wire_account(row).await? {
        Stored::Inserted | Stored::AlreadyKnown => Ok(()),
        Stored::Conflict => Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementWireMoreRecentPresent,
            "a later change of this account is stored",
        )),
    }
}

/// `POST /management/wire/disable`.
pub async fn disable_account(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    r: WireTeardownRequest,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    let payto = r.payto_uri.to_string();
    verify(
        &master_pub,
        &WireDel::new(&payto, r.validity_end),
        &r.master_sig_del,
        ErrorCode::ExchangeManagementWireDelSignatureInvalid,
        "the account's deactivation",
    )?;
    match store
        .disable_wire_account(payto, r.master_sig_del, r.validity_end)
        .await?
    {
        None => Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementWireNotFound,
            "no such account",
        )),
        Some(Stored::Conflict) => Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementWireMoreRecentPresent,
            "a later change of this account is stored",
        )),
        Some(_) => Ok(()),
    }
}

/// `POST /management/wire-fee`.
pub async fn set_wire_fee(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    r: WireFeeSetupRequest,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    for a in [&r.wire_fee, &r.closing_fee] {
        if a.currency() != &config.currency {
            return Err(ExchangeError::refused(
                ErrorCode::GenericJsonInvalid,
                format!("fees must be in {}", config.currency),
            ));
        }
    }
    if r.fee_end <= r.fee_start {
        return Err(ExchangeError::malformed(
            "fee period (it ends before it starts)",
        ));
    }
    verify(
        &master_pub,
        &WireFee::new(
            &r.wire_method,
            r.fee_start,
            r.fee_end,
            r.wire_fee,
            r.closing_fee,
        ),
        &r.master_sig,
        ErrorCode::ExchangeManagementWireFeeSignatureInvalid,
        "the wire fees",
    )?;
    let row = WireFeeRow {
        wire_method: r.wire_method,
        start: r.fee_start,
        end: r.fee_end,
        wire_fee: r.wire_fee,
        closing_fee: r.closing_fee,
        master_sig: r.master_sig,
    };
    match store.insert_wire_fee(row).await? {
        Stored::Conflict => Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementWireFeeMismatch,
            "other wire fees are stored for an overlapping period",
        )),
        _ => Ok(()),
    }
}

/// `POST /management/global-fees`.
pub async fn set_global_fees(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    r: GlobalFeesRequest,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    for a in [&r.history_fee, &r.account_fee, &r.purse_fee] {
        if a.currency() != &config.currency {
            return Err(ExchangeError::refused(
                ErrorCode::GenericJsonInvalid,
                format!("fees must be in {}", config.currency),
            ));
        }
    }
    if r.fee_end <= r.fee_start {
        return Err(ExchangeError::malformed(
            "fee period (it ends before it starts)",
        ));
    }
    let message = GlobalFees {
        start: r.fee_start,
        end: r.fee_end,
        purse_timeout: r.purse_timeout,
        history_expiration: r.history_expiration,
        history_fee: r.history_fee,
        account_fee: r.account_fee,
        purse_fee: r.purse_fee,
        purse_account_limit: r.purse_account_limit,
    };
    verify(
        &master_pub,
        &message,
        &r.master_sig,
        ErrorCode::ExchangeManagementGlobalFeeSignatureInvalid,
        "the global fees",
    )?;
    let row = GlobalFeeRow {
        start: r.fee_start,
        end: r.fee_end,
        history_fee: r.history_fee,
        account_fee: r.account_fee,
        purse_fee: r.purse_fee,
        purse_timeout: r.purse_timeout,
        history_expiration: r.history_expiration,
        purse_account_limit: r.purse_account_limit,
        master_sig: r.master_sig,
    };
    match store.insert_global_fee(row).await? {
        Stored::Conflict => Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementGlobalFeeMismatch,
            "other global fees are stored for an overlapping period",
        )),
        _ => Ok(()),
    }
}

/// `POST /management/denominations/$H_DENOM_PUB/revoke`.
pub async fn revoke_denomination(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    h_denom_pub: HashCode,
    master_sig: EddsaSignature,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    verify(
        &master_pub,
        &DenominationRevocation { h_denom_pub },
        &master_sig,
        ErrorCode::ExchangeManagementDenominationRevokeSignatureInvalid,
        "the revocation",
    )?;
    if store.revoke_denomination(h_denom_pub, master_sig).await? {
        Ok(())
    } else {
        Err(ExchangeError::refused(
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "no such denomination",
        ))
    }
}

/// `POST /management/signkeys/$EXCHANGE_PUB/revoke`.
pub async fn revoke_signkey(
    config: &ExchangeConfig,
    store: &ExchangeStore,
    exchange_pub: EddsaPublicKey,
    master_sig: EddsaSignature,
) -> Result<(), ExchangeError> {
    let master_pub = master(config)?;
    verify(
        &master_pub,
        &SigningKeyRevocation { exchange_pub },
        &master_sig,
        ErrorCode::ExchangeManagementSignkeyRevokeSignatureInvalid,
        "the revocation",
    )?;
    if store.revoke_signkey(exchange_pub, master_sig).await? {
        Ok(())
    } else {
        Err(ExchangeError::refused(
            ErrorCode::ExchangeManagementKeysSignkeyUnknown,
            "no such signing key",
        ))
    }
}
