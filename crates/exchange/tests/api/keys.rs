//! `/config`, `/keys` and the offline key's management uploads.

use cardcash_api::exchange::ExchangeKeysResponse;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::ErrorCode;

use crate::helpers::TestExchange;

fn verify_keys(keys: &ExchangeKeysResponse) {
    cardcash_client::verify_keys(keys, None).expect("every signature of /keys verifies");
}

engine_test!(
    /// Before the offline key signed anything `/keys` is refused with the official code; after
    /// the offline routine every signature in `/keys` verifies with the master key.
    async fn offline_signing_makes_keys_verifiable(engine: Engine) {
        let ex = TestExchange::start(engine).await;
        let config = ex.client.config().await.unwrap();
        assert_eq!(config.name, "taler-exchange");
        assert_eq!(config.currency.as_str(), "KUDOS");

        let err = ex.client.keys().await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericKeysMissing)
        );

        let future = ex.client.management().future_keys().await.unwrap();
        assert_eq!(future.future_denoms.len(), 2, "one RSA and one CS key");
        assert_eq!(future.future_signkeys.len(), 1);
        ex.sign_keys().await;
        // Signed keys are no longer offered.
        let future = ex.client.management().future_keys().await.unwrap();
        assert!(future.future_denoms.is_empty() && future.future_signkeys.is_empty());

        let keys = ex.client.keys().await.unwrap();
        assert_eq!(keys.denominations.len(), 2);
        assert_eq!(keys.accounts.len(), 1);
        assert_eq!(keys.wire_fees["x-taler-bank"].len(), 1);
        assert_eq!(keys.global_fees.len(), 1);
        assert_eq!(keys.base_url, *ex.client.base_url());
        verify_keys(&keys);
        // The verifier a wallet uses notices any change.
        let mut tampered = keys.clone();
        tampered.denominations[0].fee_deposit = tampered.denominations[0].fee_withdraw;
        tampered.denominations[0].fee_withdraw = crate::helpers::kudos("0.5");
        assert!(matches!(
            cardcash_client::verify_keys(&tampered, None),
            Err(cardcash_client::KeysError::Denomination(_))
        ));
        let mut tampered = keys.clone();
        tampered.list_issue_date = cardcash_util::Timestamp::from_secs(1);
        assert_eq!(
            cardcash_client::verify_keys(&tampered, None),
            Err(cardcash_client::KeysError::KeySet)
        );
        let stranger = cardcash_exchange::offline::MasterKey::generate().unwrap();
        assert!(matches!(
            cardcash_client::verify_keys(&keys, Some(&stranger.public())),
            Err(cardcash_client::KeysError::WrongMaster { .. })
        ));
        ex.stop().await;
    }
);

engine_test!(
    /// Uploads with a wrong signature are refused with the official code and change nothing;
    /// replays of good uploads are accepted again.
    async fn management_refuses_bad_signatures(engine: Engine) {
        let ex = TestExchange::start(engine).await;
        let management = ex.client.management();
        let future = management.future_keys().await.unwrap();
        let mut signatures = ex.master.sign_future_keys(&future).unwrap();
        let good = signatures.clone();
        signatures.denom_sigs[0].master_sig = signatures.denom_sigs[1].master_sig;
        let err = management.upload_keys(&signatures).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementKeysDenomkeyAddSignatureInvalid)
        );
        assert_eq!(err.status(), Some(403));
        // Nothing was stored: all keys are still offered.
        assert_eq!(
            management.future_keys().await.unwrap().future_denoms.len(),
            2
        );

        // A key signed by another master key.
        let other = cardcash_exchange::offline::MasterKey::generate().unwrap();
        let mut foreign = future.clone();
        foreign.master_pub = other.public();
        let forged = other.sign_future_keys(&foreign).unwrap();
        let err = management.upload_keys(&forged).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementKeysDenomkeyAddSignatureInvalid)
        );

        management.upload_keys(&good).await.unwrap();
        management.upload_keys(&good).await.unwrap();

        // Wire fee: a bad signature, then a conflicting second period.
        let now = cardcash_util::Timestamp::now();
        let end = cardcash_util::Timestamp::from_secs(now.as_secs() + 3600);
        let mut fee = ex.master.wire_fee(
            "x-taler-bank",
            now,
            end,
            crate::helpers::kudos("0.05"),
            crate::helpers::kudos("0.01"),
        );
        let good_fee = fee.clone();
        fee.wire_fee = crate::helpers::kudos("0.04");
        let err = management.set_wire_fee(&fee).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementWireFeeSignatureInvalid)
        );
        management.set_wire_fee(&good_fee).await.unwrap();
        management.set_wire_fee(&good_fee).await.unwrap();
        let other_fee = ex.master.wire_fee(
            "x-taler-bank",
            now,
            end,
            crate::helpers::kudos("0.06"),
            crate::helpers::kudos("0.01"),
        );
        let err = management.set_wire_fee(&other_fee).await.unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeManagementWireFeeMismatch)
        );
        ex.stop().await;
    }
);

engine_test!(
    /// A revoked signing key or denomination gets a successor at once: the key store creates
    /// it, the offline key signs it, and `/keys` is served again with the new keys.
    async fn revoked_keys_are_replaced(engine: Engine) {
        let ex = TestExchange::start(engine).await;
        ex.sign_keys().await;
        let management = ex.client.management();
        let keys = ex.client.keys().await.unwrap();
        let old_signkey = keys.exchange_pub;
        management
            .revoke_signkey(
                &old_signkey,
                &cardcash_api::exchange::SignKeyRevocationRequest {
                    master_sig: ex.master.revoke_signkey(old_signkey),
                },
            )
            .await
            .unwrap();
        let future = cardcash_testkit::wait_for(std::time::Duration::from_secs(30), || async {
            let f = management.future_keys().await.unwrap();
            (!f.future_signkeys.is_empty()).then_some(f)
        })
        .await;
        assert_ne!(future.future_signkeys[0].key, old_signkey);
        management
            .upload_keys(&ex.master.sign_future_keys(&future).unwrap())
            .await
            .unwrap();
        // The snapshot is rebuilt on the upload's notification.
        let keys = cardcash_testkit::wait_for(std::time::Duration::from_secs(30), || async {
            ex.client.keys().await.ok()
        })
        .await;
        assert_ne!(keys.exchange_pub, old_signkey, "served with the successor");
        assert!(keys.signkeys.iter().all(|k| k.key != old_signkey));
        verify_keys(&keys);
        ex.stop().await;
    }
);
