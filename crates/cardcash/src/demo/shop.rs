//! The shop part of `cardcash demo`: the customer spends her e-cash at Pretty Pianos, the
//! storefront of design document 007, on the merchant backend.
//!
//! The demo plays the customer's browser (cookies kept as a browser keeps them, redirects
//! followed by hand so that each one can be shown) and her phone (the same wallet that
//! withdrew the coins scans the shop's QR code). The shop's owner grants a partial refund with
//! the merchant's private API, and the exchange wires the shop's money to its bank account
//! once the order's wire deadline has passed. At the end every party's money is read from
//! the party itself and must add up to what the cards paid, to the cent.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cardcash_api::corebank::Direction;
use cardcash_client::MerchantClient;
use cardcash_util::Amount;
use cardcash_wallet::Wallet;
use cardcash_world::World;
use tokio::time::Instant;

use super::Progress;

/// The paywalled resource of the storefront.
const SONATAS_PATH: &str = "sonatas";
/// The PDF, behind the same paywall.
const PDF_PATH: &str = "sonatas/sonatas.pdf";
/// What the shop refunds of the Sonatas (of CHF 9.87).
const REFUND: &str = "CHF:2";
/// How long the demo waits for the wallet and for the exchange's wire transfer.
const DEADLINE: Duration = Duration::from_secs(60);

/// A browser as far as the story needs one: cookies per name, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// One answer as the browser saw it.
struct Page {
    status: u16,
    location: Option<String>,
    content_type: String,
    body: Vec<u8>,
}

impl Page {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Browser {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?,
            cookies: BTreeMap::new(),
        })
    }

    async fn get(&mut self, url: &str) -> anyhow::Result<Page> {
        let mut request = self.http.get(url).header("Accept", "text/html");
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("Cookie", header.join("; "));
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        for set in response.headers().get_all("set-cookie") {
            let Ok(text) = set.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let status = response.status().as_u16();
        let body = response.bytes().await?.to_vec();
        Ok(Page {
            status,
            location,
            content_type,
            body,
        })
    }

    /// Opens `url` and follows redirects (at most a few) to the page at the end.
    async fn open(&mut self, url: &str) -> anyhow::Result<(String, Page)> {
        let mut url = url.to_owned();
        for _ in 0..5 {
            let page = self.get(&url).await?;
            match (&page.status, &page.location) {
                (301..=303 | 307 | 308, Some(next)) => {
                    url = reqwest::Url::parse(&url)?.join(next)?.to_string();
                }
                _ => return Ok((url, page)),
            }
        }
        bail!("too many redirects from {url}")
    }
}

/// The `taler://pay` URI of a payment page (its QR code and link), HTML entities undone.
fn pay_uri(page: &str) -> Option<String> {
    let start = page
        .find("taler://pay/")
        .or_else(|| page.find("taler+http://pay/"))?;
    let rest = &page[start..];
    let end = rest
        .find(|c: char| c == '"' || c == '\'' || c == '<' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(rest[..end].replace("&amp;", "&"))
}

/// The wallet's spendable balance.
fn balance(wallet: &Wallet, like: &Amount) -> anyhow::Result<Amount> {
    let balances = wallet.get_balances()?;
    Ok(balances
        .iter()
        .find(|b| b.currency == like.currency().as_str())
        .map_or(Amount::zero(like.currency()), |b| b.available))
}

/// The shop's balance at the bank.
async fn shop_balance(world: &World) -> anyhow::Result<Amount> {
    let account = world
        .bank()
        .admin()
        .account(cardcash_world::SHOP_ACCOUNT)
        .await
        .context("reading the shop's bank account")?;
    ensure!(
        account.balance.credit_debit_indicator == Direction::Credit
            || account.balance.amount.is_zero(),
        "the shop's bank account is in debit"
    );
    Ok(account.balance.amount)
}

/// The customer's browser asks for the Sonatas and ends on the merchant's payment page;
/// returns that page's `taler://pay` URI.
async fn payment_page(
    progress: &Progress,
    browser: &mut Browser,
    sonatas: &str,
) -> anyhow::Result<String> {
    let first = browser.get(sonatas).await?;
    let to = first.location.clone().with_context(|| {
        format!(
            "the shop answered {} for {sonatas}, not a redirect to the payment page",
            first.status
        )
    })?;
    progress.info(format!(
        "{} → {} (the shop created an order; cookies: {})",
        first.status,
        to,
        browser
            .cookies
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let (url, page) = browser.open(&to).await?;
    let uri = pay_uri(&page.text()).with_context(|| {
        format!(
            "the payment page {url} (status {}) shows no taler://pay URI",
            page.status
        )
    })?;
    progress.info(format!(
        "payment page {} ({}): QR code of {uri}",
        page.status, page.content_type
    ));
    Ok(uri)
}

/// Asks for the Sonatas: the shop's page of the paid resource, then the PDF it links to;
/// returns the PDF's size.
async fn sonatas_served(browser: &mut Browser, sonatas: &str) -> anyhow::Result<usize> {
    let (url, page) = browser.open(sonatas).await?;
    let text = page.text();
    ensure!(
        page.status == 200 && text.contains(PDF_PATH),
        "{url} answered {} {} instead of the Sonatas' page:\n{}",
        page.status,
        page.content_type,
        text.chars().take(400).collect::<String>()
    );
    let pdf_url = reqwest::Url::parse(&url)?.join(PDF_PATH)?.to_string();
    let (url, pdf) = browser.open(&pdf_url).await?;
    ensure!(
        pdf.status == 200
            && pdf.content_type.starts_with("application/pdf")
            && pdf.body.starts_with(b"%PDF"),
        "{url} answered {} {} instead of the PDF",
        pdf.status,
        pdf.content_type
    );
    Ok(pdf.body.len())
}

/// The shop story after the withdrawal: buy, reload, a new session, a refund, the settlement,
/// and everybody's money.
pub async fn shop(progress: &Progress, world: &World, wallet: &Wallet) -> anyhow::Result<()> {
    progress.step(
        "card processor: pays the captured card payments out to the exchange's bank account \
         (the money the exchange will pay shops with)",
    );
    let received = cardcash_exchange::audit::audit(world.exchange().app().exchange().store())
        .await
        .context("the exchange's books")?
        .sums
        .reserves_in;
    let payouts = world
        .wait_for_payouts(&received, DEADLINE)
        .await
        .context("waiting for the card processor's payout")?;
    for p in payouts.iter().take(1) {
        progress.info(format!(
            "payout {}: {} to {} (bank transaction {}, {:?})",
            p.id,
            p.amount(),
            cardcash_world::EXCHANGE_USER,
            p.bank_transaction_id
                .map_or_else(|| "?".to_owned(), |id| id.to_string()),
            p.subject
        ));
    }

    let storefront = world.storefront().base_url();
    let sonatas = storefront.join(SONATAS_PATH)?.to_string();
    let refund: Amount = REFUND.parse()?;
    let before = balance(wallet, &refund)?;

    progress.step(
        "customer: opens Pretty Pianos and asks for the Beethoven Sonatas; the shop creates an \
         order and sends her to its payment page (design document 007)",
    );
    let mut browser = Browser::new()?;
    let uri = payment_page(progress, &mut browser, &sonatas).await?;

    progress.step("wallet: scans the QR code, checks the contract and pays with its coins");
    let proposal = wallet.prepare_pay_for_uri(&uri).await?;
    // A resumed demo's wallet bought the Sonatas in an earlier run: it owns them.
    let bought = match proposal.status {
        "payment-possible" => true,
        "already-confirmed" => false,
        other => bail!("the wallet cannot pay {}: {other}", proposal.order_id),
    };
    if !bought {
        progress.info(format!(
            "the customer bought the Sonatas in an earlier run (order {}): the wallet proves it \
             for this session (/paid) and pays nothing",
            proposal.already_paid_order_id.as_deref().unwrap_or("?")
        ));
    }
    let after_purchase = if bought {
        progress.info(format!(
            "order {}: {} for {:?}, the customer pays {} (fees beyond what the shop covers: {})",
            proposal.order_id,
            proposal.amount_raw,
            proposal.summary,
            proposal
                .amount_effective
                .map_or_else(|| "?".to_owned(), |a| a.to_string()),
            proposal
                .customer_fees
                .map_or_else(|| "?".to_owned(), |a| a.to_string()),
        ));
        let paid = wallet.confirm_pay(&proposal.transaction_id, None).await?;
        wallet
            .run_until_done(Some(Instant::now() + DEADLINE))
            .await
            .context("the wallet refreshing its change")?;
        let after = balance(wallet, &before)?;
        progress.info(format!(
            "paid {}; the merchant's confirmation verifies; change refreshed: balance {before} \
             → {after}",
            paid.amount_effective
        ));
        after
    } else {
        before
    };

    progress.step("customer: reloads the page twice: the shop serves the Sonatas, paid once");
    for _ in 0..2 {
        let size = sonatas_served(&mut browser, &sonatas).await?;
        progress.info(format!("the Sonatas' page and its PDF ({size} bytes)"));
    }
    ensure!(
        balance(wallet, &refund)? == after_purchase,
        "reloading the page cost the customer money"
    );

    progress.step(
        "customer: opens the shop in a new browser session (cookies cleared): a new order, but \
         the wallet recognises the Sonatas as paid (repurchase detection)",
    );
    let mut second = Browser::new()?;
    let uri = payment_page(progress, &mut second, &sonatas).await?;
    let again = wallet.prepare_pay_for_uri(&uri).await?;
    ensure!(
        again.status == "already-confirmed",
        "the wallet would pay order {} again ({})",
        again.order_id,
        again.status
    );
    progress.info(format!(
        "order {}: the wallet proves its payment of order {} for this session (/paid) and pays \
         nothing",
        again.order_id,
        again.already_paid_order_id.as_deref().unwrap_or("?")
    ));
    let size = sonatas_served(&mut second, &sonatas).await?;
    progress.info(format!("the new session gets the Sonatas: {size} bytes"));
    ensure!(
        balance(wallet, &refund)? == after_purchase,
        "the repurchase cost the customer money"
    );

    progress.step(&format!(
        "shop: refunds {refund} of the Sonatas; the wallet picks up the refund"
    ));
    if !bought {
        progress.info("nothing was bought in this run: no refund");
        progress.step("exchange: nothing was sold in this run, so nothing new to wire");
        let shop = shop_balance(world).await?;
        progress.info(format!("the shop's bank account: {shop}"));
        progress.step("everybody's money adds up, to the cent");
        return adds_up(progress, world, wallet, &shop).await;
    }
    let merchant = world.merchant();
    let client = MerchantClient::with_http(
        merchant.http().clone(),
        merchant.base_url().clone(),
        cardcash_merchant::config::DEFAULT_INSTANCE,
        merchant.admin_token().to_owned(),
    )?;
    let granted = client
        .refund(
            &proposal.order_id,
            refund,
            "the sheet music had a torn page",
        )
        .await
        .context("granting the refund")?;
    progress.info(format!("refund URI {}", granted.taler_refund_uri));
    let picked = wallet
        .start_refund_query_for_uri(&granted.taler_refund_uri)
        .await?;
    wallet
        .run_until_done(Some(Instant::now() + DEADLINE))
        .await
        .context("the wallet refreshing its refunded coins")?;
    let after_refund = balance(wallet, &refund)?;
    progress.info(format!(
        "granted {}, credited to the coins {}: balance {after_purchase} → {after_refund}",
        picked.amount_refund_granted, picked.amount_effective_credited
    ));
    // The order's session is the second browser's now (the wallet re-bound it there).
    let (url, page) = second.open(&sonatas).await?;
    ensure!(
        page.status == 200 && page.text().to_lowercase().contains("refunded"),
        "after the refund, {url} answered {} without saying the purchase was refunded",
        page.status
    );
    progress.info(format!(
        "the shop's page now says the purchase was refunded ({url})"
    ));

    progress.step(
        "exchange: after the order's wire deadline, the aggregator wires the shop's money to its \
         bank account",
    );
    let shop_before = shop_balance(world).await?;
    let started = Instant::now();
    let shop_after = loop {
        let now = shop_balance(world).await?;
        if now != shop_before {
            break now;
        }
        ensure!(
            started.elapsed() < DEADLINE,
            "the shop's bank account still holds {now} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    progress.info(format!(
        "the shop's bank account: {shop_before} → {shop_after} (after {:.1} s)",
        started.elapsed().as_secs_f64()
    ));

    progress.step("everybody's money adds up, to the cent");
    adds_up(progress, world, wallet, &shop_after).await
}

/// `a + b + …`.
fn add(amounts: &[&Amount]) -> anyhow::Result<Amount> {
    let (first, rest) = amounts.split_first().context("nothing to add")?;
    rest.iter().try_fold(**first, |sum, a| {
        sum.checked_add(a).context("amount overflow")
    })
}

/// `a − b`.
fn sub(a: &Amount, b: &Amount) -> anyhow::Result<Amount> {
    a.checked_sub(b)
        .with_context(|| format!("{a} − {b} is negative"))
}

/// What the cards paid into the exchange's reserves is where it is now: in the customer's
/// coins, in the shop's bank account, in the exchange's fees, in reserves not withdrawn yet,
/// or owed to the shop until the exchange's next transfer. Each part is read from the party
/// that holds it (the wallet, the bank, the exchange's books), and the exchange's own audit
/// equations must hold.
async fn adds_up(
    progress: &Progress,
    world: &World,
    wallet: &Wallet,
    shop: &Amount,
) -> anyhow::Result<()> {
    let exchange = world.exchange().app().exchange();
    let report = cardcash_exchange::audit::audit(exchange.store())
        .await
        .context("the exchange's audit")?;
    ensure!(
        report.is_clean(),
        "the exchange's books do not balance: {}",
        report.differences.join("; ")
    );
    let sums = &report.sums;
    let currency = *shop.currency();
    let balances = wallet.get_balances()?;
    let mine = balances
        .iter()
        .find(|b| b.currency == currency.as_str())
        .context("the wallet has no balance")?;
    let coins = add(&[&mine.available, &mine.pending_incoming])?;
    ensure!(
        mine.pending_outgoing.is_zero(),
        "a payment is still under way"
    );
    ensure!(
        *shop == sums.wired,
        "the shop's bank account holds {shop}, the exchange wired {}",
        sums.wired
    );
    // What refreshes kept: melted, less the fresh coins' values (their price less their
    // withdraw fees).
    let fresh = sub(&sums.refresh.refreshed, &sums.refresh.fresh_withdraw_fees)?;
    let refresh_kept = sub(&sums.refresh.melted, &fresh)?;
    let fees = add(&[
        &sums.withdraw_fees,
        &sums.deposit_fees,
        &sums.refund_fees,
        &sums.wire_fees,
        &refresh_kept,
    ])?;
    let owed = sub(
        &sub(
            &sub(&sums.deposits_with_fee, &sums.deposit_fees)?,
            &sums.refunds,
        )?,
        &sums.aggregated_shares,
    )?;
    let parts = add(&[&coins, shop, &fees, &sums.reserve_balances, &owed])?;
    progress.info(format!(
        "cards paid (every reserve credit)  {}",
        sums.reserves_in
    ));
    progress.info(format!("customer's coins (wallet)         {coins}"));
    progress.info(format!("shop's bank account               {shop}"));
    progress.info(format!(
        "exchange's fees                   {fees}  (withdraw {}, deposit {}, refund {}, wire {}, \
         refresh {refresh_kept})",
        sums.withdraw_fees, sums.deposit_fees, sums.refund_fees, sums.wire_fees
    ));
    progress.info(format!(
        "reserves not withdrawn            {}",
        sums.reserve_balances
    ));
    progress.info(format!("owed to the shop, not wired yet   {owed}"));
    ensure!(
        parts == sums.reserves_in,
        "the parts add up to {parts}, but the cards paid {}",
        sums.reserves_in
    );
    progress.info(format!(
        "{} = {parts}: every cent is accounted for",
        sums.reserves_in
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pay_uri_is_read_from_the_page() {
        let page = r#"<a href="taler://pay/shop.example/2026.340-X/s1?c=TOKEN&amp;x=1">Pay</a>"#;
        assert_eq!(
            pay_uri(page).as_deref(),
            Some("taler://pay/shop.example/2026.340-X/s1?c=TOKEN&x=1")
        );
        let http = "<code>taler+http://pay/127.0.0.1:9/o/ </code>";
        assert_eq!(
            pay_uri(http).as_deref(),
            Some("taler+http://pay/127.0.0.1:9/o/")
        );
        assert_eq!(pay_uri("<p>nothing to pay</p>"), None);
    }
}
