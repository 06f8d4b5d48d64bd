//! The public order page a browser gets from `GET /orders/$ID` (`Accept: text/html`): what is
//! bought, the price, the `taler://pay` URI as a QR code (inline SVG, dark on light with its
//! quiet zone, large enough to scan from a screen) and as a link for a wallet on the same
//! device. No JavaScript: while unpaid the page reloads itself every few seconds (meta
//! refresh), and once paid the reload is redirected to the fulfillment page.
//!
//! Everything the merchant or the order brings (summary, names, URIs) is HTML-escaped.

use cardcash_util::Amount;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Seconds between reloads of an unpaid order's page.
pub const REFRESH_SECS: u32 = 5;

/// Pixels per QR module: a pay URI of ~120 characters is a 41×41 (version 6) code, so with the
/// quiet zone the image is (41 + 8) × 7 = 343 px wide.
const MODULE_PX: u32 = 7;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:34rem;margin:2rem auto;background:#fff;border-radius:12px;padding:2rem;\
box-shadow:0 2px 12px rgba(0,0,0,.08);text-align:center}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}.merchant{color:#5b6475;margin:0}\
.amount{font-size:2rem;font-weight:700;margin:.5rem 0 1.2rem}\
.qr svg{width:100%;max-width:360px;height:auto;image-rendering:pixelated}\
a.pay{display:inline-block;margin:1rem 0;padding:.7rem 1.4rem;border-radius:8px;\
background:#0042b3;color:#fff;text-decoration:none;font-weight:600}\
.uri{font-family:monospace;font-size:.75rem;word-break:break-all;color:#5b6475}\
.hint{color:#5b6475;font-size:.9rem}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The QR code of `data` as an inline `<svg>` element (black on white, quiet zone included);
/// `None` if it does not fit into a QR code.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let document = code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    Some(match document.find("<svg") {
        Some(start) => document.get(start..).unwrap_or_default().to_owned(),
        None => document,
    })
}

fn document(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        title = escape(title),
    )
}

/// What the payment page shows.
#[derive(Clone, Debug)]
pub struct PayPage<'a> {
    pub merchant_name: &'a str,
    pub summary: &'a str,
    pub amount: &'a Amount,
    pub taler_pay_uri: &'a str,
}

/// The page of an order not paid (in this session): QR code and wallet link; reloads itself.
pub fn pay_page(page: &PayPage<'_>) -> String {
    let uri = escape(page.taler_pay_uri);
    let qr = qr_svg(page.taler_pay_uri).unwrap_or_default();
    let body = format!(
        "<p class=\"merchant\">{merchant}</p><h1>{summary}</h1>\
         <p class=\"amount\">{amount}</p>\
         <div class=\"qr\" title=\"Scan with your Taler wallet\">{qr}</div>\
         <p class=\"hint\">Scan this code with your GNU Taler wallet to pay,<br>\
         or open the wallet on this device:</p>\
         <a class=\"pay\" href=\"{uri}\">Pay with GNU Taler</a>\
         <p class=\"uri\">{uri}</p>\
         <p class=\"hint\">This page reloads by itself once the payment arrived.</p>",
        merchant = escape(page.merchant_name),
        summary = escape(page.summary),
        amount = escape(&page.amount.to_string()),
    );
    document(
        &format!("Pay {} – {}", page.amount, page.summary),
        Some(REFRESH_SECS),
        &body,
    )
}

/// The page of a paid order that has no fulfillment URL to redirect to.
pub fn paid_page(merchant_name: &str, summary: &str, message: Option<&str>) -> String {
    let body = format!(
        "<p class=\"merchant\">{merchant}</p><h1>{summary}</h1>\
         <p class=\"amount\">Paid</p><p>{message}</p>",
        merchant = escape(merchant_name),
        summary = escape(summary),
        message = escape(message.unwrap_or("Thank you for your purchase.")),
    );
    document(&format!("Paid – {summary}"), None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pay_page_has_the_qr_code_and_the_link() {
        let amount: Amount = "KUDOS:5".parse().unwrap();
        let uri = "taler://pay/shop.example/o-1/s1?c=ABC";
        let html = pay_page(&PayPage {
            merchant_name: "Pretty Pianos",
            summary: "Beethoven <Sonatas> & more",
            amount: &amount,
            taler_pay_uri: uri,
        });
        assert!(html.contains("<svg"), "{html}");
        assert!(html.contains(&format!("href=\"{uri}\"")));
        assert!(html.contains("Beethoven &lt;Sonatas&gt; &amp; more"));
        assert!(!html.contains("<Sonatas>"));
        assert!(html.contains("KUDOS:5"));
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_qr_code_is_large_enough_to_scan() {
        let uri = format!(
            "taler://pay/shop.example/instances/pianos/{}/{}?c={}",
            "o".repeat(20),
            "s".repeat(26),
            "C".repeat(26)
        );
        let svg = qr_svg(&uri).unwrap();
        // width="…" of the rendered image, in pixels
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(width >= 300, "{width}");
        assert!(svg.contains("#ffffff") && svg.contains("#000000"));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
