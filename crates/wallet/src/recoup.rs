//! Recoup (docs.taler.net core/api-exchange "Recoup"): when the exchange revokes a denomination
//! (it lists it under `recoup` in `/keys`), a withdrawn coin of it pays its value back into the
//! reserve it came from, and the wallet withdraws that money again with other coins.
//!
//! The coin is set aside (dormant) and the recoup recorded before the request leaves; the
//! request reveals the coin's blinding secret, derived again from the withdrawal's seed (for CS
//! with the `R` values kept with the coin). The exchange's answer marks the coin spent and
//! reopens the withdrawal (`done → waiting-funds`) in one transaction; its new planchets get
//! indices after the withdrawn ones. Coins from refreshes (recoup-refresh) are not handled yet.

use cardcash_api::exchange::{
    BlindingKeySecret as WireBks, CsNonce, CsPoint, CsrWithdrawRequest, ExchangeWithdrawValues,
    RecoupRequest,
};
use cardcash_crypto::planchet;
use cardcash_crypto::purpose::Recoup;
use cardcash_util::EddsaPublicKey;

use crate::db::CoinStatus;
use crate::denom::DenomKey;
use crate::error::{WalletError, WalletResult};
use crate::planchet::cs_nonce;
use crate::withdraw::transaction_id;
use crate::{Notification, Wallet};

impl Wallet {
    /// Recoups every fresh withdrawn coin of a revoked denomination, and sends the recoups a
    /// crash left unanswered. The reopened withdrawals are then run like any other.
    pub async fn recoup_revoked_coins(&self) -> WalletResult<usize> {
        for coin in self.store().coins()? {
            if coin.status != CoinStatus::Fresh {
                continue;
            }
            let Some(group) = coin.origin.strip_prefix("txn:withdrawal:") else {
                continue;
            };
            let revoked = self.store().revoked_denominations(&coin.exchange)?;
            if revoked.contains(&coin.h_denom_pub) {
                self.store().start_recoup(&coin.coin_pub, group).await?;
            }
        }
        let pending = self.store().pending_recoups()?;
        for (coin_pub, group) in &pending {
            if let Err(e) = self.recoup(coin_pub, group).await {
                if !matches!(e, WalletError::Halted(_)) {
                    self.store()
                        .record_recoup_error(coin_pub, e.to_string())
                        .await?;
                }
                return Err(e);
            }
            self.notify(Notification::TransactionStateTransition {
                transaction_id: transaction_id(group),
                old_state: "done".into(),
                new_state: "waiting-funds".into(),
            });
            self.notify(Notification::BalanceChange);
        }
        Ok(pending.len())
    }

    async fn recoup(&self, coin_pub: &EddsaPublicKey, group_id: &str) -> WalletResult<()> {
        let coin = self
            .store()
            .coin(coin_pub)?
            .ok_or_else(|| WalletError::BadRequest(format!("unknown coin {coin_pub}")))?;
        let group = self
            .store()
            .withdrawal(group_id)?
            .ok_or_else(|| WalletError::UnknownTransaction(transaction_id(group_id)))?;
        let denom = self
            .store()
            .denominations(&coin.exchange)?
            .into_iter()
            .find(|d| d.h_denom_pub == coin.h_denom_pub)
            .ok_or_else(|| {
                WalletError::Incomplete(format!(
                    "denomination {} is no longer known",
                    coin.h_denom_pub
                ))
            })?;
        let (_, bks) = planchet::derive(&group.seed, coin.index);
        let client = self.exchange_client(&coin.exchange);
        let (ewv, nonce) = match &denom.key {
            DenomKey::Rsa(_) => (ExchangeWithdrawValues::Rsa, None),
            DenomKey::Cs(_) => {
                let nonce = cs_nonce(&group.seed, coin.index);
                let [r0, r1] = match coin.cs_r {
                    Some(r) => r,
                    None => match client
                        .csr_withdraw(&CsrWithdrawRequest {
                            nonce: CsNonce::from_bytes(nonce),
                            denom_pub_hash: denom.h_denom_pub,
                        })
                        .await?
                        .ewv
                    {
                        ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } => {
                            [*r_pub_0.as_bytes(), *r_pub_1.as_bytes()]
                        }
                        ExchangeWithdrawValues::Rsa => {
                            return Err(WalletError::MalformedResponse(
                                "/csr-withdraw answered RSA values for a CS denomination".into(),
                            ));
                        }
                    },
                };
                (
                    ExchangeWithdrawValues::Cs {
                        r_pub_0: CsPoint::from_bytes(r0),
                        r_pub_1: CsPoint::from_bytes(r1),
                    },
                    Some(CsNonce::from_bytes(nonce)),
                )
            }
        };
        let request = RecoupRequest {
            denom_pub_hash: coin.h_denom_pub,
            denom_sig: coin.denom_sig.clone(),
            ewv,
            coin_blind_key_secret: WireBks::from_bytes(*bks.as_bytes()),
            coin_sig: coin.coin_priv.sign(&Recoup {
                h_denom_pub: coin.h_denom_pub,
                coin_bks: *bks.as_bytes(),
            }),
            h_age_commitment: None,
            nonce,
        };
        let answer = client.recoup(&coin.coin_pub, &request).await?;
        self.at_step(crate::Step::AfterRecoup)?;
        if answer.reserve_pub != group.reserve_pub {
            return Err(WalletError::MalformedResponse(format!(
                "the exchange credited reserve {}, not the coin's {}",
                answer.reserve_pub, group.reserve_pub
            )));
        }
        self.store().finish_recoup(&coin.coin_pub, group_id).await?;
        Ok(())
    }
}
