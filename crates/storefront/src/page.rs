//! The shop's HTML, rendered on the server (no JavaScript): one layout, a small stylesheet that
//! works on phones, and one function per page. Every value from outside (amounts, order ids,
//! URLs from the backend) goes through [`escape`].

use std::fmt::Write as _;

use cardcash_api::merchant::orders::OrderHistoryEntry;
use cardcash_util::Amount;

/// The stylesheet (`/style.css`).
pub const STYLE: &str = r#":root{--ink:#1d1b19;--paper:#fbf8f3;--accent:#7a2e2e;--muted:#6b625a;--line:#e3dcd2}
*{box-sizing:border-box}
body{margin:0;font:17px/1.5 Georgia,"Times New Roman",serif;color:var(--ink);background:var(--paper)}
header{background:var(--ink);color:var(--paper);padding:.8rem 1rem;display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.5rem}
header a{color:var(--paper);text-decoration:none}
header .brand{font-size:1.4rem;letter-spacing:.04em}
main{max-width:56rem;margin:0 auto;padding:1rem}
.products{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}
.card{background:#fff;border:1px solid var(--line);border-radius:.6rem;padding:1rem 1.2rem}
.card h2{margin:.2rem 0 .4rem}
.price{font-size:1.3rem;font-weight:bold}
.muted{color:var(--muted)}
.notice{background:#fff3cd;border:1px solid #e6cf7a;border-radius:.4rem;padding:.6rem .9rem;margin:0 0 1rem}
.ok{background:#e7f4e4;border-color:#9cc894}
button,.button{display:inline-block;font:inherit;background:var(--accent);color:#fff;border:0;border-radius:.4rem;padding:.5rem 1rem;cursor:pointer;text-decoration:none}
button.secondary{background:var(--muted)}
button:disabled{background:#bbb;cursor:not-allowed}
form.inline{display:inline}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:.4rem;text-align:left;vertical-align:top}
input{font:inherit;padding:.3rem;max-width:9rem}
td code,.nowrap{white-space:nowrap}
form.refund{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center}
footer{color:var(--muted);text-align:center;font-size:.85rem;padding:2rem 1rem}
@media (max-width:30rem){body{font-size:16px}td,th{display:block;border:0}tr{display:block;border-bottom:1px solid var(--line)}}
"#;

/// HTML-escapes `text` (element content and quoted attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An amount as people read it: `9.87 KUDOS`.
pub fn money(amount: &Amount) -> String {
    format!("{} {}", amount.to_decimal_padded(2), amount.currency())
}

/// The page around `body`; `cart` is the number of pianos in the cart (shown in the header).
pub fn layout(title: &str, cart: u64, body: &str) -> String {
    let cart_label = if cart == 0 {
        "Cart".to_owned()
    } else {
        format!("Cart ({cart})")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Pretty Pianos</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">Pretty Pianos</a>\
         <nav><a href=\"/cart\">{cart_label}</a></nav></header><main>{body}</main>\
         <footer>Pretty Pianos accepts GNU Taler. No JavaScript, no tracking.</footer>\
         </body></html>\n",
        escape(title)
    )
}

/// A message shown above a page's content (chosen by the shop, never taken from a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Added,
    Removed,
    SoldOut,
    CartFull,
    CartEmpty,
    Refunded,
    RefundRefused,
}

impl Notice {
    /// From the `notice` query parameter of a redirect.
    pub fn from_query(name: &str) -> Option<Self> {
        Some(match name {
            "added" => Self::Added,
            "removed" => Self::Removed,
            "sold-out" => Self::SoldOut,
            "cart-full" => Self::CartFull,
            "cart-empty" => Self::CartEmpty,
            "refunded" => Self::Refunded,
            "refund-refused" => Self::RefundRefused,
            _ => return None,
        })
    }

    /// The query parameter value.
    pub fn as_query(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::SoldOut => "sold-out",
            Self::CartFull => "cart-full",
            Self::CartEmpty => "cart-empty",
            Self::Refunded => "refunded",
            Self::RefundRefused => "refund-refused",
        }
    }

    fn html(self) -> &'static str {
        match self {
            Self::Added => {
                "<p class=\"notice ok\">A piano is now reserved for you in your cart.</p>"
            }
            Self::Removed => "<p class=\"notice ok\">The piano is back in the showroom.</p>",
            Self::SoldOut => {
                "<p class=\"notice\">Sorry: every piano we have is sold or in someone's \
                 cart right now. Reservations run out after a few minutes, so do look again \
                 soon.</p>"
            }
            Self::CartFull => "<p class=\"notice\">Your cart holds as many pianos as it can.</p>",
            Self::CartEmpty => "<p class=\"notice\">Your cart is empty.</p>",
            Self::Refunded => "<p class=\"notice ok\">The refund was granted.</p>",
            Self::RefundRefused => {
                "<p class=\"notice\">The merchant backend refused that refund.</p>"
            }
        }
    }
}

fn notice_html(notice: Option<Notice>) -> &'static str {
    notice.map_or("", Notice::html)
}

/// What the catalogue shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueView {
    pub piano_price: Amount,
    /// Pianos to be had: `Some(None)` unlimited, `None` unknown (backend not answering).
    pub piano_available: Option<Option<u64>>,
    pub sonatas_price: Amount,
    pub cart: u64,
    pub notice: Option<Notice>,
}

fn stock_line(available: Option<Option<u64>>) -> String {
    match available {
        None => "<p class=\"muted\">Stock unknown right now.</p>".to_owned(),
        Some(None) => "<p class=\"muted\">In stock.</p>".to_owned(),
        Some(Some(0)) => "<p><strong>Sold out</strong> (or reserved in carts).</p>".to_owned(),
        Some(Some(1)) => "<p>Only <strong>1</strong> left.</p>".to_owned(),
        Some(Some(n)) => format!("<p><strong>{n}</strong> in stock.</p>"),
    }
}

/// `/`: the two products.
pub fn catalogue(view: &CatalogueView) -> String {
    let sold_out = view.piano_available == Some(Some(0));
    let disabled = if sold_out { " disabled" } else { "" };
    let body = format!(
        "{notice}<h1>Pianos and the music to play on them</h1>\
         <div class=\"products\">\
         <section class=\"card\" id=\"p001\"><h2>Grand piano</h2>\
         <p>A concert grand, delivered and tuned in your living room.</p>\
         <p class=\"price\">{piano}</p>{stock}\
         <form method=\"post\" action=\"/cart/add\"><button{disabled}>Add to cart</button></form>\
         </section>\
         <section class=\"card\" id=\"f001\"><h2>Beethoven Sonatas</h2>\
         <p>All 32 piano sonatas as a PDF, yours to download again whenever you come back.</p>\
         <p class=\"price\">{sonatas}</p>\
         <p><a class=\"button\" href=\"/sonatas\">Buy and read</a></p>\
         </section></div>",
        notice = notice_html(view.notice),
        piano = escape(&money(&view.piano_price)),
        stock = stock_line(view.piano_available),
        sonatas = escape(&money(&view.sonatas_price)),
    );
    layout("Catalogue", view.cart, &body)
}

/// What the cart page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartView {
    pub quantity: u64,
    pub price: Amount,
    pub total: Amount,
    pub lock_minutes: u64,
    pub piano_available: Option<Option<u64>>,
    pub notice: Option<Notice>,
}

/// `/cart`.
pub fn cart(view: &CartView) -> String {
    let notice = notice_html(view.notice);
    let body = if view.quantity == 0 {
        format!(
            "{notice}<h1>Your cart</h1><p>Nothing in it yet.</p>{stock}\
             <form method=\"post\" action=\"/cart/add\"><button>Add a piano</button></form> \
             <a href=\"/\">Back to the catalogue</a>",
            stock = stock_line(view.piano_available),
        )
    } else {
        format!(
            "{notice}<h1>Your cart</h1><table><tr><th>Item</th><th>Quantity</th>\
             <th>Price</th></tr><tr><td>Grand piano</td><td>{quantity} \
             <form class=\"inline\" method=\"post\" action=\"/cart/remove\">\
             <button class=\"secondary\" aria-label=\"remove one\">−</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/cart/add\">\
             <button class=\"secondary\" aria-label=\"add one\">+</button></form></td>\
             <td>{price} each</td></tr><tr><th colspan=\"2\">Total</th><th>{total}</th></tr>\
             </table><p class=\"muted\">We hold your pianos for {minutes} minutes; after that \
             they go back on sale.</p>\
             <form method=\"post\" action=\"/cart/checkout\"><button>Pay with Taler</button>\
             </form>",
            quantity = view.quantity,
            price = escape(&money(&view.price)),
            total = escape(&money(&view.total)),
            minutes = view.lock_minutes,
        )
    };
    layout("Cart", view.quantity, &body)
}

/// Step 9 of design document 007: the purchased Sonatas.
pub fn sonatas_served(cart: u64) -> String {
    layout(
        "Beethoven Sonatas",
        cart,
        "<h1>Beethoven Sonatas</h1><p class=\"notice ok\">Thank you: this copy is yours.</p>\
         <p>All 32 sonatas, from Op. 2 No. 1 to Op. 111.</p>\
         <p><a class=\"button\" href=\"/sonatas/sonatas.pdf\">Download the PDF</a></p>\
         <p class=\"muted\">Come back to this page any time with the same wallet: you will \
         not pay again.</p>",
    )
}

/// Step 7: the purchase was refunded.
pub fn refunded(title: &str, amount: &Amount, cart: u64) -> String {
    let body = format!(
        "<h1>{title}</h1><p class=\"notice\">This purchase was refunded ({amount} went back to \
         your wallet), so the file is no longer available here.</p>\
         <p><a href=\"/\">Back to the catalogue</a></p>",
        title = escape(title),
        amount = escape(&money(amount)),
    );
    layout(title, cart, &body)
}

/// Step 8: a refund waits to be collected by the wallet.
pub fn collect_refund(title: &str, amount: &Amount, url: &str, cart: u64) -> String {
    let body = format!(
        "<h1>{title}</h1><p class=\"notice\">We refunded this purchase: {amount} are waiting \
         for your wallet.</p><p><a class=\"button\" href=\"{url}\">Collect the refund</a></p>",
        title = escape(title),
        amount = escape(&money(amount)),
        url = escape(url),
    );
    layout(title, cart, &body)
}

/// The piano's fulfillment page.
pub fn delivery(order_id: &str, paid: bool, status_url: Option<&str>) -> String {
    let body = if paid {
        format!(
            "<h1>Thank you!</h1><p class=\"notice ok\">Order <code>{id}</code> is paid. \
             Our movers will call you to agree on a delivery date.</p>",
            id = escape(order_id)
        )
    } else {
        let link = status_url.map_or(String::new(), |u| {
            format!(
                "<p><a class=\"button\" href=\"{}\">Pay now</a></p>",
                escape(u)
            )
        });
        format!(
            "<h1>Order {id}</h1><p>This order is not paid yet.</p>{link}",
            id = escape(order_id)
        )
    };
    layout("Delivery", 0, &body)
}

/// `/admin`: recent orders with a refund form each.
pub fn admin(orders: &[OrderHistoryEntry], notice: Option<Notice>, csrf: &str) -> String {
    let mut rows = String::new();
    for o in orders {
        let refund = if o.paid && o.refundable {
            format!(
                "<form class=\"refund\" method=\"post\" action=\"/admin/refund\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"order_id\" value=\"{id}\">\
                 <input name=\"amount\" value=\"{amount}\" aria-label=\"refund total\"> \
                 <input name=\"reason\" value=\"goodwill\" aria-label=\"reason\"> \
                 <button>Refund</button></form>",
                csrf = escape(csrf),
                id = escape(&o.order_id),
                amount = escape(&o.amount.to_string()),
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr><td><code>{id}</code></td><td>{summary}</td><td class=\"nowrap\">{amount}</td>\
             <td>{state}</td><td>{refund}</td></tr>",
            id = escape(&o.order_id),
            summary = escape(&o.summary),
            amount = escape(&money(&o.amount)),
            state = if o.paid { "paid" } else { "unpaid" },
        );
    }
    if orders.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No orders yet.</td></tr>");
    }
    let body = format!(
        "{notice}<h1>Orders</h1><table><tr><th>Order</th><th>Summary</th><th>Amount</th>\
         <th>State</th><th>Refund</th></tr>{rows}</table>\
         <p class=\"muted\">The amount is the order's refund <em>total</em>: granting 2 \
         after 1 refunds 1 more.</p>",
        notice = notice_html(notice)
    );
    layout("Admin", 0, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::Timestamp;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_catalogue_shows_both_products_and_the_stock() {
        let mut view = CatalogueView {
            piano_price: amount("KUDOS:20000"),
            piano_available: Some(Some(2)),
            sonatas_price: amount("KUDOS:9.87"),
            cart: 1,
            notice: None,
        };
        let html = catalogue(&view);
        assert!(html.contains("20000.00 KUDOS"), "{html}");
        assert!(html.contains("9.87 KUDOS"));
        assert!(html.contains("<strong>2</strong> in stock"));
        assert!(html.contains("href=\"/sonatas\""));
        assert!(html.contains("Cart (1)"));
        assert!(html.contains("name=\"viewport\""), "mobile friendly");
        assert!(!html.contains("<script"), "no JavaScript");
        assert!(!html.contains("disabled"));
        view.piano_available = Some(Some(0));
        view.notice = Some(Notice::SoldOut);
        let html = catalogue(&view);
        assert!(html.contains("Sold out"));
        assert!(html.contains("<button disabled>"));
        assert!(html.contains("class=\"notice\""));
    }

    #[test]
    fn the_cart_shows_total_and_checkout() {
        let html = cart(&CartView {
            quantity: 2,
            price: amount("KUDOS:20000"),
            total: amount("KUDOS:40000"),
            lock_minutes: 10,
            piano_available: Some(Some(1)),
            notice: Some(Notice::Added),
        });
        assert!(html.contains("40000.00 KUDOS"));
        assert!(html.contains("action=\"/cart/checkout\""));
        assert!(html.contains("action=\"/cart/remove\""));
        assert!(html.contains("10 minutes"));
        let empty = cart(&CartView {
            quantity: 0,
            price: amount("KUDOS:20000"),
            total: amount("KUDOS:0"),
            lock_minutes: 10,
            piano_available: Some(Some(3)),
            notice: None,
        });
        assert!(!empty.contains("checkout"));
    }

    #[test]
    fn refund_pages_link_to_the_backend_escaped() {
        let html = collect_refund(
            "Beethoven Sonatas",
            &amount("KUDOS:2"),
            "https://m.example/orders/A?h_contract=H&session_id=S",
            0,
        );
        assert!(html.contains("href=\"https://m.example/orders/A?h_contract=H&amp;session_id=S\""));
        assert!(html.contains("2.00 KUDOS"));
        let html = refunded("Beethoven Sonatas", &amount("KUDOS:9.87"), 0);
        assert!(html.contains("was refunded"));
        assert!(!html.contains("sonatas.pdf"));
        assert!(sonatas_served(0).contains("href=\"/sonatas/sonatas.pdf\""));
    }

    #[test]
    fn admin_lists_orders_with_refund_forms_for_paid_ones() {
        let order = |id: &str, paid| OrderHistoryEntry {
            order_id: id.into(),
            row_id: 1,
            timestamp: Timestamp::now(),
            amount: amount("KUDOS:9.87"),
            summary: "<Sonatas>".into(),
            refundable: paid,
            paid,
        };
        let html = admin(&[order("A", true), order("B", false)], None, "TOKEN");
        assert!(html.contains("&lt;Sonatas&gt;"));
        assert_eq!(html.matches("action=\"/admin/refund\"").count(), 1);
        assert!(html.contains("value=\"A\""));
        assert!(html.contains("name=\"csrf\" value=\"TOKEN\""));
    }

    #[test]
    fn notices_round_trip_through_the_query() {
        for n in [
            Notice::Added,
            Notice::Removed,
            Notice::SoldOut,
            Notice::CartFull,
            Notice::CartEmpty,
            Notice::Refunded,
            Notice::RefundRefused,
        ] {
            assert_eq!(Notice::from_query(n.as_query()), Some(n));
        }
        assert_eq!(Notice::from_query("<script>"), None);
    }
}
