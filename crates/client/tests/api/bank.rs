//! The Core Bank API and Wire Gateway clients against the real bank.

use cardcash_api::corebank::{
    CreateTransactionRequest, Direction, RegisterAccountRequest, TokenRequest,
};
use cardcash_api::wire_gateway::{
    AddIncomingRequest, IncomingBankTransaction, TransferRequest, TransferState,
};
use cardcash_client::{Auth, BankClient, HistoryRequest, WireGatewayClient};
use cardcash_util::{EddsaPublicKey, ErrorCode, HashCode, PaytoUri, ShortHashCode};

use crate::helpers::{Bank, CURRENCY, POLL};

/// Opens `name` (an exchange account when `exchange`) with password `{name}-pw`; returns its
/// payto URI.
async fn open(bank: &BankClient, name: &str, exchange: bool) -> PaytoUri {
    let created = bank
        .register_account(&RegisterAccountRequest {
            username: name.into(),
            password: format!("{name}-pw"),
            name: format!("{name} Example"),
            is_taler_exchange: exchange,
            debit_threshold: Some(format!("{CURRENCY}:100").parse().unwrap()),
        })
        .await
        .unwrap();
    created.internal_payto_uri.parse().unwrap()
}

fn as_user(bank: &BankClient, name: &str) -> BankClient {
    bank.with_auth(Auth::basic(name, format!("{name}-pw")))
}

#[tokio::test]
async fn accounts_tokens_and_transactions() {
    let bank = Bank::start().await;
    let admin = bank.admin();
    assert_eq!(admin.config().await.unwrap().name, "taler-corebank");
    let _alice = open(&admin, "alice", false).await;
    let bob = open(&admin, "bob", false).await;
    let names: Vec<String> = admin
        .accounts()
        .await
        .unwrap()
        .accounts
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert!(
        names.contains(&"alice".into()) && names.contains(&"bob".into()),
        "{names:?}"
    );

    // Alice pays Bob with a bearer token she made herself.
    let token = as_user(&admin, "alice")
        .create_token(
            "alice",
            &TokenRequest {
                scope: "readwrite".into(),
                duration: None,
            },
        )
        .await
        .unwrap();
    let alice = admin.with_auth(Auth::bearer(token.access_token));
    let paid = alice
        .create_transaction(
            "alice",
            &CreateTransactionRequest {
                payto_uri: bob.clone().with_param("message", "lunch"),
                amount: Some(format!("{CURRENCY}:7.5").parse().unwrap()),
                request_uid: Some(ShortHashCode::from_bytes([1; 32])),
            },
        )
        .await
        .unwrap();
    let account = alice.account("alice").await.unwrap();
    assert_eq!(account.balance.credit_debit_indicator, Direction::Debit);
    assert_eq!(
        account.balance.amount.to_string(),
        format!("{CURRENCY}:7.5")
    );
    let one = alice.transaction("alice", paid.row_id).await.unwrap();
    assert_eq!(
        (one.subject.as_str(), one.direction),
        ("lunch", Direction::Debit)
    );
    let page = alice
        .transactions("alice", &HistoryRequest::newest(10))
        .await
        .unwrap();
    assert_eq!(page, vec![one]);
    // Bob's history, long-polled from the start, already has it.
    let bob_page = as_user(&admin, "bob")
        .transactions("bob", &HistoryRequest::after(None, 5, Some(POLL)))
        .await
        .unwrap();
    assert_eq!(bob_page.len(), 1);
    assert_eq!(bob_page[0].direction, Direction::Credit);

    // Another account's data is forbidden to Alice.
    let err = alice.account("bob").await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericForbidden));
    bank.shutdown().await;
}

#[tokio::test]
async fn the_wire_gateway_of_an_exchange_account() {
    let bank = Bank::start().await;
    let admin = bank.admin();
    let exchange_account = open(&admin, "exchange", true).await;
    let alice = open(&admin, "alice", false).await;
    let wg: WireGatewayClient = as_user(&admin, "exchange")
        .wire_gateway("exchange")
        .unwrap();
    assert_eq!(
        wg.base_url().as_str(),
        format!("{}accounts/exchange/taler-wire-gateway/", bank.base_url())
    );
    let config = wg.config().await.unwrap();
    assert_eq!(config.currency.as_str(), CURRENCY);
    // Nothing yet: the 204 is an empty page.
    assert!(
        wg.incoming_history(&HistoryRequest::newest(20))
            .await
            .unwrap()
            .is_empty()
    );

    // A long poll waiting for the first row ends with the credit that arrives.
    let poll = {
        let wg = wg.clone();
        tokio::spawn(async move {
            wg.incoming_history(&HistoryRequest::after(None, 1, Some(POLL)))
                .await
        })
    };
    let reserve_pub = EddsaPublicKey::from_bytes([3; 32]);
    let added = wg
        .add_incoming(&AddIncomingRequest {
            amount: format!("{CURRENCY}:10").parse().unwrap(),
            reserve_pub,
            debit_account: alice.clone(),
        })
        .await
        .unwrap();
    let rows = poll.await.unwrap().unwrap();
    assert_eq!(rows.len(), 1);
    match &rows[0] {
        IncomingBankTransaction::Reserve {
            row_id,
            reserve_pub: r,
            credit_account,
            ..
        } => {
            assert_eq!((*row_id, r), (added.row_id, &reserve_pub));
            // Every row carries the credited account, whichever way the server sent it.
            let credited = credit_account.as_ref().expect("filled in by the client");
            assert!(credited.same_account(&exchange_account), "{credited}");
        }
        other => panic!("expected a reserve credit, got {other:?}"),
    }

    // A transfer out: listed in the outgoing history, the transfer listing and by id.
    let transfer = TransferRequest {
        request_uid: HashCode::from_bytes([4; 64]),
        amount: format!("{CURRENCY}:2").parse().unwrap(),
        exchange_base_url: "https://exchange.example/".parse().unwrap(),
        wtid: ShortHashCode::from_bytes([5; 32]),
        credit_account: alice.clone(),
    };
    let sent = wg.transfer(&transfer).await.unwrap();
    assert_eq!(wg.transfer(&transfer).await.unwrap(), sent, "idempotent");
    let out = wg
        .outgoing_history(&HistoryRequest::newest(5))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].credit_account.same_account(&alice));
    assert!(
        out[0]
            .debit_account
            .as_ref()
            .is_some_and(|d| d.same_account(&exchange_account)),
        "{:?}",
        out[0].debit_account
    );
    let listed = wg
        .transfers(&HistoryRequest::newest(5), None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].row_id, sent.row_id);
    assert_eq!(listed[0].status, TransferState::Success);
    assert!(
        wg.transfers(
            &HistoryRequest::newest(5),
            Some(TransferState::PermanentFailure)
        )
        .await
        .unwrap()
        .is_empty()
    );
    let status = wg.transfer_status(sent.row_id).await.unwrap();
    assert_eq!(status.status, TransferState::Success);
    assert_eq!(status.wtid, transfer.wtid);

    // The same request_uid for another transfer is a conflict.
    let err = wg
        .transfer(&TransferRequest {
            amount: format!("{CURRENCY}:3").parse().unwrap(),
            ..transfer
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    // Alice is not the exchange.
    let err = as_user(&admin, "alice")
        .wire_gateway("exchange")
        .unwrap()
        .incoming_history(&HistoryRequest::newest(1))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    bank.shutdown().await;
}
