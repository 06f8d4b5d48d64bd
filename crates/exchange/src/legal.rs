//! Terms of service and privacy policy (`GET /terms`, `GET /privacy`), the way the C exchange
//! serves them: the documents are files `{DIR}/{language}/{ETAG}.{ext}` loaded at start; a
//! request gets the best match for its `Accept` type (default `text/html`) and, among those,
//! its `Accept-Language` (default `en`); `If-None-Match` with the ETag gets 304; without
//! documents the answer is the text `not configured`. Wallets show the document and remember
//! the ETag as the version the user accepted.

use std::path::Path;

use crate::config::LegalConfig;

/// The largest document loaded (bigger files are skipped with a warning).
pub const MAX_DOCUMENT_BYTES: u64 = 8 << 20;

/// One document: a language and a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub language: String,
    pub mime: &'static str,
    priority: u32,
    pub body: Vec<u8>,
}

/// The loaded versions of one legal text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegalDocuments {
    pub etag: Option<String>,
    /// Highest priority (format preference) first.
    pub documents: Vec<Document>,
}

const TYPES: &[(&str, &str, u32)] = &[
    ("html", "text/html", 100),
    ("htm", "text/html", 99),
    ("txt", "text/plain", 50),
    ("md", "text/markdown", 50),
    ("pdf", "application/pdf", 25),
    ("epub", "application/epub+zip", 10),
    ("xml", "text/xml", 10),
];

impl LegalDocuments {
    /// Loads the documents of `config` (none configured: empty).
    pub fn load(config: Option<&LegalConfig>) -> Self {
        let Some(config) = config else {
            return Self::default();
        };
        let mut documents = Vec::new();
        let Ok(languages) = std::fs::read_dir(&config.dir) else {
            tracing::warn!(dir = %config.dir.display(), "legal documents directory cannot be read");
            return Self {
                etag: Some(config.etag.clone()),
                documents,
            };
        };
        for language in languages.flatten() {
            let name = language.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !language.path().is_dir() {
                continue;
            }
            for (ext, mime, priority) in TYPES {
                let path = language.path().join(format!("{}.{ext}", config.etag));
                if let Some(body) = read_bounded(&path) {
                    documents.push(Document {
                        language: name.clone(),
                        mime,
                        priority: *priority,
                        body,
                    });
                }
            }
        }
        documents.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.language.cmp(&b.language))
        });
        Self {
            etag: Some(config.etag.clone()),
            documents,
        }
    }

    /// The languages available (`Acceptable-Languages` header), space-separated.
    pub fn languages(&self) -> String {
        let mut langs: Vec<&str> = self.documents.iter().map(|d| d.language.as_str()).collect();
        langs.sort_unstable();
        langs.dedup();
        langs.join(" ")
    }

    /// The best document for `accept` and `accept_language`.
    pub fn select(&self, accept: Option<&str>, accept_language: Option<&str>) -> Option<&Document> {
        let accept = accept.unwrap_or("text/html");
        let accept_language = accept_language.unwrap_or("en");
        let mut best: Option<(&Document, bool, u32)> = None;
        for d in &self.documents {
            let type_ok = mime_accepted(accept, d.mime);
            let lang = language_score(accept_language, &d.language);
            let better = match best {
                None => true,
                Some((_, best_type, best_lang)) => {
                    (type_ok && !best_type) || (type_ok == best_type && lang > best_lang)
                }
            };
            if better {
                best = Some((d, type_ok, lang));
            }
        }
        best.map(|(d, _, _)| d)
    }
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_DOCUMENT_BYTES {
        tracing::warn!(path = %path.display(), "legal document too large, skipped");
        return None;
    }
    std::fs::read(path).ok()
}

/// Whether `mime` matches one of the comma- or semicolon-separated patterns of `accept`.
fn mime_accepted(accept: &str, mime: &str) -> bool {
    accept
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.starts_with("q="))
        .any(|pattern| {
            let (pt, ps) = pattern.split_once('/').unwrap_or((pattern, ""));
            let (mt, ms) = mime.split_once('/').unwrap_or((mime, ""));
            (pt == "*" || pt.eq_ignore_ascii_case(mt))
                && (ps == "*" || ps.is_empty() && pt == "*" || ps.eq_ignore_ascii_case(ms))
        })
}

/// How well `language` matches `Accept-Language` (0 = not at all; earlier and exact is better).
fn language_score(accept_language: &str, language: &str) -> u32 {
    let mut score = 0;
    for (i, entry) in accept_language.split(',').enumerate() {
        let tag = entry.split(';').next().unwrap_or("").trim();
        let rank = 1000u32.saturating_sub(u32::try_from(i).unwrap_or(999) * 10);
        let s = if tag.eq_ignore_ascii_case(language) {
            rank + 2
        } else if tag == "*"
            || tag
                .split('-')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(language.split('-').next().unwrap_or("")))
        {
            rank + 1
        } else {
            0
        };
        score = score.max(s);
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> LegalDocuments {
        let d = |language: &str, mime: &'static str, priority, body: &str| Document {
            language: language.into(),
            mime,
            priority,
            body: body.as_bytes().to_vec(),
        };
        LegalDocuments {
            etag: Some("tos-v1".into()),
            documents: vec![
                d("de", "text/html", 100, "<p>AGB</p>"),
                d("en", "text/html", 100, "<p>Terms</p>"),
                d("de", "text/plain", 50, "AGB"),
                d("en", "text/plain", 50, "Terms"),
            ],
        }
    }

    #[test]
    fn picks_type_then_language() {
        let docs = docs();
        let pick = |a, l| String::from_utf8(docs.select(a, l).unwrap().body.clone()).unwrap();
        assert_eq!(pick(None, None), "<p>Terms</p>");
        assert_eq!(pick(Some("text/plain"), Some("de-CH, en;q=0.5")), "AGB");
        assert_eq!(pick(Some("text/plain"), Some("fr, en;q=0.8")), "Terms");
        assert_eq!(
            pick(Some("application/pdf"), Some("de")),
            "<p>AGB</p>",
            "no pdf: any type"
        );
        assert_eq!(pick(Some("*/*"), Some("de")), "<p>AGB</p>");
        assert_eq!(docs.languages(), "de en");
    }

    #[test]
    fn loads_files_named_by_etag() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(dir.path().join("en/tos-v1.txt"), "Terms").unwrap();
        std::fs::write(dir.path().join("en/tos-v0.txt"), "old").unwrap();
        std::fs::write(dir.path().join("en/tos-v1.exe"), "no").unwrap();
        let docs = LegalDocuments::load(Some(&LegalConfig {
            dir: dir.path().to_owned(),
            etag: "tos-v1".into(),
        }));
        assert_eq!(docs.documents.len(), 1);
        assert_eq!(docs.documents[0].body, b"Terms");
        assert!(LegalDocuments::load(None).select(None, None).is_none());
    }
}
