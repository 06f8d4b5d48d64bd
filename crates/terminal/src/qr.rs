//! QR codes for the `taler://withdraw/…` URI: Unicode half blocks for a text terminal and SVG
//! for the web page.
//!
//! A QR code must be dark modules on a light background with a quiet zone of four light
//! modules around it (ISO/IEC 18004 §9.1): many phone scanners fail on inverted codes or codes
//! that touch other dark pixels. A text terminal's colours are unknown, so [`TerminalStyle`]
//! says how to get "dark on light" out of it: force black on white with ANSI colours (works on
//! any colour terminal), or rely on the terminal's own background (light or dark) and choose
//! which of the two kinds of modules is drawn with block characters.
//!
//! Rendering never fails on content: anything too long for a QR code is a [`QrError`].

use qrcode::render::{svg, unicode::Dense1x2};
use qrcode::{EcLevel, QrCode};

/// Quiet zone of a (non-micro) QR code in modules; the `qrcode` renderer adds exactly this.
pub const QUIET_ZONE_MODULES: usize = 4;

/// Size of one QR module in SVG user units (pixels when shown unscaled).
const SVG_MODULE_PX: u32 = 6;

/// ANSI SGR: black foreground (30) on white background (47), and reset.
const ANSI_BLACK_ON_WHITE: &str = "\x1b[30;47m";
const ANSI_RESET: &str = "\x1b[0m";

/// How to draw dark and light modules on a text terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminalStyle {
    /// Explicit black-on-white ANSI colours: correct on dark and light terminals alike.
    #[default]
    Ansi,
    /// No escape codes; the terminal draws dark text on a light background, so blocks are the
    /// dark modules.
    LightBackground,
    /// No escape codes; the terminal draws light text on a dark background, so blocks are the
    /// *light* modules and the background shows through as the dark ones.
    DarkBackground,
}

/// A `--qr-style` value that is none of `ansi`, `light`, `dark`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown QR style {0:?} (expected ansi, light or dark)")]
pub struct UnknownStyle(String);

impl std::str::FromStr for TerminalStyle {
    type Err = UnknownStyle;

    /// `ansi`, `light` (light terminal background) or `dark` (dark background), as a CLI takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ansi" => Ok(Self::Ansi),
            "light" => Ok(Self::LightBackground),
            "dark" => Ok(Self::DarkBackground),
            _ => Err(UnknownStyle(s.to_owned())),
        }
    }
}

/// The content does not fit into a QR code.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {len} bytes as a QR code: {source}")]
pub struct QrError {
    len: usize,
    #[source]
    source: qrcode::types::QrError,
}

/// Encodes `data` with error correction level M, which withstands the smudges and glare of a
/// terminal screen while keeping a withdraw URI at a scannable size.
fn encode(data: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|source| QrError {
        len: data.len(),
        source,
    })
}

/// Renders `data` as lines of Unicode half blocks (two modules per character cell vertically),
/// quiet zone included, lines separated by `\n` without a trailing newline.
pub fn render_terminal(data: &str, style: TerminalStyle) -> Result<String, QrError> {
    let code = encode(data)?;
    let mut renderer = code.render::<Dense1x2>();
    renderer.quiet_zone(true).module_dimensions(1, 1);
    match style {
        TerminalStyle::Ansi | TerminalStyle::LightBackground => {
            renderer
                .dark_color(Dense1x2::Dark)
                .light_color(Dense1x2::Light);
        }
        TerminalStyle::DarkBackground => {
            renderer
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark);
        }
    }
    let image = renderer.build();
    Ok(match style {
        // Colour every line separately and reset before the newline so a terminal that
        // scrolls or wraps never paints the rest of the screen white.
        TerminalStyle::Ansi => image
            .lines()
            .map(|line| format!("{ANSI_BLACK_ON_WHITE}{line}{ANSI_RESET}"))
            .collect::<Vec<_>>()
            .join("\n"),
        TerminalStyle::LightBackground | TerminalStyle::DarkBackground => image,
    })
}

/// Renders `data` as a standalone SVG document (black on white, quiet zone included).
pub fn render_svg(data: &str) -> Result<String, QrError> {
    let code = encode(data)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(SVG_MODULE_PX, SVG_MODULE_PX)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// The `<svg …>…</svg>` element of [`render_svg`] without the XML declaration, for inlining
/// into HTML.
pub fn render_svg_inline(data: &str) -> Result<String, QrError> {
    let document = render_svg(data)?;
    Ok(match document.find("<svg") {
        Some(start) => document.get(start..).unwrap_or_default().to_owned(),
        None => document,
    })
}

/// Number of modules per side of the QR code for `data`, without the quiet zone.
pub fn modules_per_side(data: &str) -> Result<usize, QrError> {
    Ok(encode(data)?.width())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "taler+http://withdraw/127.0.0.1:8081/taler-integration/\
                       Z8WDRS0V2MGXHTZNCKK8SPM0W2TMG6CV2M4MEA5DGC3PC3B3Q7S0";

    /// Turns half-block output back into a module matrix (`true` = block pixel), one row per
    /// module row; the last character row of an odd-height image yields only its top half.
    fn unblock(image: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in image.lines() {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    ' ' => (false, false),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    '\u{2588}' => (true, true),
                    other => panic!("unexpected character {other:?}"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// The modules of the code itself (`true` = dark), row-major.
    fn modules(data: &str) -> (usize, Vec<bool>) {
        let code = encode(data).unwrap();
        let colors = code.to_colors();
        let dark = colors.iter().map(|c| *c == qrcode::Color::Dark).collect();
        (code.width(), dark)
    }

    fn check_half_blocks(image: &str, blocks_are_dark: bool) {
        let (width, dark) = modules(URI);
        let side = width + 2 * QUIET_ZONE_MODULES;
        let lines: Vec<&str> = image.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2), "two module rows per line");
        for line in &lines {
            assert_eq!(line.chars().count(), side, "one module per column");
        }
        let pixels = unblock(image);
        for y in 0..side {
            for x in 0..side {
                let in_code = (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + width).contains(&x)
                    && (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + width).contains(&y);
                let want_dark =
                    in_code && dark[(y - QUIET_ZONE_MODULES) * width + (x - QUIET_ZONE_MODULES)];
                let is_block = pixels[y][x];
                assert_eq!(is_block == blocks_are_dark, want_dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn light_background_draws_dark_modules_as_blocks_with_quiet_zone() {
        let image = render_terminal(URI, TerminalStyle::LightBackground).unwrap();
        check_half_blocks(&image, true);
        // Quiet zone: the first two lines (four module rows) are blank.
        assert!(image.lines().take(2).all(|l| l.chars().all(|c| c == ' ')));
    }

    #[test]
    fn dark_background_inverts_so_the_code_still_reads_dark_on_light() {
        let image = render_terminal(URI, TerminalStyle::DarkBackground).unwrap();
        check_half_blocks(&image, false);
        assert!(
            image
                .lines()
                .take(2)
                .all(|l| l.chars().all(|c| c == '\u{2588}'))
        );
    }

    #[test]
    fn ansi_wraps_every_line_in_black_on_white() {
        let plain = render_terminal(URI, TerminalStyle::LightBackground).unwrap();
        let ansi = render_terminal(URI, TerminalStyle::Ansi).unwrap();
        assert_eq!(ansi.lines().count(), plain.lines().count());
        for (a, p) in ansi.lines().zip(plain.lines()) {
            assert_eq!(a, format!("\x1b[30;47m{p}\x1b[0m"));
        }
    }

    #[test]
    fn svg_has_the_quiet_zone_in_its_size_and_one_path() {
        let (width, dark) = modules(URI);
        let svg = render_svg(URI).unwrap();
        let px = (width + 2 * QUIET_ZONE_MODULES) as u32 * SVG_MODULE_PX;
        assert!(svg.starts_with("<?xml"));
        assert!(
            svg.contains(&format!(r#"width="{px}" height="{px}""#)),
            "{svg}"
        );
        assert!(svg.contains(r##"fill="#ffffff""##) && svg.contains(r##"fill="#000000""##));
        // The first dark module drawn sits inside the quiet zone offset.
        let first_dark = dark.iter().position(|d| *d).unwrap();
        let (x, y) = (first_dark % width, first_dark / width);
        let offset = QUIET_ZONE_MODULES as u32 * SVG_MODULE_PX;
        let start = format!(
            "M{} {}",
            offset + x as u32 * SVG_MODULE_PX,
            offset + y as u32 * SVG_MODULE_PX
        );
        assert!(svg.contains(&start), "{start} missing");
        let inline = render_svg_inline(URI).unwrap();
        assert!(inline.starts_with("<svg ") && inline.ends_with("</svg>"));
    }

    #[test]
    fn styles_parse_from_cli_words() {
        assert_eq!("ansi".parse(), Ok(TerminalStyle::Ansi));
        assert_eq!("Light".parse(), Ok(TerminalStyle::LightBackground));
        assert_eq!("dark".parse(), Ok(TerminalStyle::DarkBackground));
        assert!("inverse".parse::<TerminalStyle>().is_err());
    }

    #[test]
    fn content_too_long_is_an_error_not_a_panic() {
        let huge = "x".repeat(5000);
        assert!(render_terminal(&huge, TerminalStyle::Ansi).is_err());
        assert!(render_svg(&huge).is_err());
    }

    #[test]
    fn a_withdraw_uri_stays_a_small_code() {
        // Version 7 (45 modules) or below keeps the code scannable from a phone at arm's length.
        assert!(modules_per_side(URI).unwrap() <= 45);
    }
}
