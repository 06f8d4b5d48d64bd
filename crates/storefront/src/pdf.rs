//! The digital good: a small one-page PDF (the Beethoven Sonatas' table of contents, with a
//! staff drawn under the title), generated from text, with a correct cross-reference table so
//! any PDF reader opens it. No dependency: PDF 1.4, the standard Helvetica font, ASCII text.

/// The Sonatas as sold.
pub fn sonatas_pdf() -> Vec<u8> {
    let mut lines = vec![
        "Ludwig van Beethoven: the 32 piano sonatas".to_owned(),
        String::new(),
    ];
    let named = [
        (8, "Op. 13 \"Pathetique\""),
        (14, "Op. 27 No. 2 \"Moonlight\""),
        (17, "Op. 31 No. 2 \"Tempest\""),
        (21, "Op. 53 \"Waldstein\""),
        (23, "Op. 57 \"Appassionata\""),
        (26, "Op. 81a \"Les Adieux\""),
        (29, "Op. 106 \"Hammerklavier\""),
        (32, "Op. 111"),
    ];
    for (number, title) in named {
        lines.push(format!("Sonata No. {number}, {title}"));
    }
    lines.push(String::new());
    lines
        .push("Licensed to the holder of this file. Thank you for buying at Pretty Pianos,".into());
    lines.push("paid with GNU Taler.".into());
    text_pdf("Beethoven Sonatas", &lines)
}

/// Escapes text for a PDF literal string (`(`, `)`, `\`); anything outside printable ASCII
/// becomes `?` (Helvetica's standard encoding is not Unicode).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// A one-page A4 PDF with `title` large at the top and `lines` below.
pub fn text_pdf(title: &str, lines: &[String]) -> Vec<u8> {
    let mut content = String::new();
    content.push_str(&format!(
        "BT /F1 26 Tf 56 770 Td ({}) Tj ET\n",
        escape(title)
    ));
    // A five-line staff under the title.
    content.push_str("0.3 w\n");
    for i in 0..5 {
        let y = 740 - i * 6;
        content.push_str(&format!("56 {y} m 539 {y} l S\n"));
    }
    content.push_str("BT /F1 12 Tf 56 690 Td 16 TL\n");
    for line in lines {
        content.push_str(&format!("({}) '\n", escape(line)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        table.push_str(&format!("{offset:010} 00000 n \n"));
    }
    table.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.extend_from_slice(table.as_bytes());
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_reference_table_points_at_the_objects() {
        let pdf = sonatas_pdf();
        let text = String::from_utf8(pdf.clone()).expect("ASCII");
        assert!(text.starts_with("%PDF-1.4\n"));
        assert!(text.ends_with("%%EOF\n"));
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[startxref..].starts_with("xref\n0 6\n"));
        let entries: Vec<usize> = text[startxref..]
            .lines()
            .skip(3)
            .take(5)
            .map(|l| l[..10].parse().unwrap())
            .collect();
        for (i, offset) in entries.into_iter().enumerate() {
            assert!(
                text[offset..].starts_with(&format!("{} 0 obj\n", i + 1)),
                "object {}",
                i + 1
            );
        }
        assert!(text.contains("Hammerklavier"));
    }

    #[test]
    fn the_stream_length_is_exact_and_text_is_escaped() {
        let pdf = String::from_utf8(text_pdf("T (1)", &["a\\b é".to_owned()])).unwrap();
        assert!(pdf.contains("(T \\(1\\)) Tj"));
        assert!(pdf.contains("(a\\\\b ?) '"));
        let (head, rest) = pdf.split_once("stream\n").unwrap();
        let length: usize = head
            .rsplit("/Length ")
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rest[length..].starts_with("endstream"));
    }
}
