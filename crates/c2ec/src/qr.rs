//! QR codes of `taler://withdraw` URIs: SVG for the HTTP endpoint, text blocks for a terminal.

use qrcode::QrCode;
use qrcode::render::{svg, unicode};

use crate::error::C2ecError;

fn code(uri: &str) -> Result<QrCode, C2ecError> {
    QrCode::new(uri.as_bytes()).map_err(|e| C2ecError::Internal(format!("QR code: {e}")))
}

/// An SVG image of the QR code.
pub fn svg(uri: &str) -> Result<String, C2ecError> {
    Ok(code(uri)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

/// The QR code as Unicode half blocks, for a text terminal.
pub fn text(uri: &str) -> Result<String, C2ecError> {
    Ok(code(uri)?
        .render::<unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg_and_text() {
        let uri = "taler://withdraw/c2ec.example/taler-integration/ABC";
        let s = super::svg(uri).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        let t = super::text(uri).unwrap();
        assert!(t.lines().count() > 10);
    }
}
