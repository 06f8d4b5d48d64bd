//! The GNU Taler INI configuration dialect.
//!
//! Spec: rust-stack.md §1.8; WC `taler-util/src/talerconfig.ts` and GNUnet's configuration
//! library. Section and option names are case-insensitive; `#` and `%` start comment lines;
//! `KEY = value` with surrounding double quotes stripped; `@INLINE@ file` includes another file
//! (relative to the including file). `$VAR`, `${VAR}` and `${VAR:-default}` are expanded in
//! paths (and by [`TalerConfig::expand`]), first from `[PATHS]`, then from the environment,
//! with a recursion limit. Typed getters report errors as `[section]/OPTION: why`.
//!
//! The only IO is reading the configuration file(s) on request ([`TalerConfig::load`]) and
//! reading environment variables during expansion.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::amount::{Amount, Currency};
use crate::base_url::BaseUrl;
use crate::time::RelativeTime;

/// How deep `$VAR` expansion and `@INLINE@` may nest before we call it a loop.
const MAX_DEPTH: usize = 16;

/// A configuration problem; option errors print as `[section]/OPTION: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A line that is not a comment, section header, directive or assignment.
    #[error("{origin}:{line}: {why}")]
    Syntax {
        /// File name or `<string>`.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read configuration file {path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
    /// A required option is absent.
    #[error("[{section}]/{option}: required option missing")]
    Missing {
        /// Section name (lower-case).
        section: String,
        /// Option name (upper-case).
        option: String,
    },
    /// An option is present but its value is unusable.
    #[error("[{section}]/{option}: {why}")]
    Invalid {
        /// Section name (lower-case).
        section: String,
        /// Option name (upper-case).
        option: String,
        /// What is wrong.
        why: String,
    },
    /// `$VAR` expansion failed outside an option (see [`TalerConfig::expand`]).
    #[error("cannot expand {text:?}: {why}")]
    Expansion {
        /// The text being expanded.
        text: String,
        /// What is wrong.
        why: String,
    },
}

/// A parsed configuration: sections of options, names normalised (sections lower-case,
/// options upper-case), values as written (quotes stripped, not yet expanded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TalerConfig {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Replaces the process environment for expansion (tests, embedded setups).
    env: Option<BTreeMap<String, String>>,
}

impl TalerConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses configuration text; `@INLINE@` is rejected because there is no file to resolve it
    /// against (use [`Self::load`]).
    pub fn parse_str(text: &str) -> Result<Self, ConfigError> {
        let mut cfg = Self::new();
        cfg.merge_str(text, "<string>", None, 0)?;
        Ok(cfg)
    }

    /// Reads a configuration file, following `@INLINE@` directives.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let mut cfg = Self::new();
        cfg.merge_file(path.as_ref(), 0)?;
        Ok(cfg)
    }

    /// Parses `defaults` first and then the file, so the file overrides the defaults.
    pub fn load_with_defaults(defaults: &str, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let mut cfg = Self::parse_str(defaults)?;
        cfg.merge_file(path.as_ref(), 0)?;
        Ok(cfg)
    }

    /// Merges more configuration text over this one (later values win).
    pub fn merge_text(&mut self, text: &str) -> Result<(), ConfigError> {
        self.merge_str(text, "<string>", None, 0)
    }

    /// Uses `env` instead of the process environment when expanding variables.
    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = Some(env);
        self
    }

    fn merge_file(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::Io {
                path: path.display().to_string(),
                why: "@INLINE@ nested too deeply (loop?)".into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        self.merge_str(&text, &path.display().to_string(), path.parent(), depth)
    }

    fn merge_str(
        &mut self,
        text: &str,
        origin: &str,
        dir: Option<&Path>,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let syntax = |line: usize, why: &str| ConfigError::Syntax {
            origin: origin.to_owned(),
            line,
            why: why.to_owned(),
        };
        let mut section: Option<String> = None;
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('%') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('@') {
                let (directive, arg) = rest
                    .split_once('@')
                    .ok_or_else(|| syntax(lineno, "malformed @directive@"))?;
                if !directive.eq_ignore_ascii_case("INLINE") {
                    return Err(syntax(
                        lineno,
                        &format!("unsupported directive @{directive}@"),
                    ));
                }
                let arg = strip_quotes(arg.trim());
                let dir =
                    dir.ok_or_else(|| syntax(lineno, "@INLINE@ needs a configuration file"))?;
                if arg.is_empty() {
                    return Err(syntax(lineno, "@INLINE@ needs a file name"));
                }
                self.merge_file(&dir.join(arg), depth + 1)?;
                continue;
            }
            if let Some(inner) = line.strip_prefix('[') {
                let name = inner
                    .strip_suffix(']')
                    .ok_or_else(|| syntax(lineno, "unterminated section header"))?;
                let name = name.trim();
                if name.is_empty() {
                    return Err(syntax(lineno, "empty section name"));
                }
                let name = name.to_ascii_lowercase();
                self.sections.entry(name.clone()).or_default();
                section = Some(name);
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| syntax(lineno, "expected [section], OPTION = value or @INLINE@"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(syntax(lineno, "empty option name"));
            }
            let section = section
                .as_ref()
                .ok_or_else(|| syntax(lineno, "option outside of a section"))?;
            self.sections.entry(section.clone()).or_default().insert(
                key.to_ascii_uppercase(),
                strip_quotes(value.trim()).to_owned(),
            );
        }
        Ok(())
    }

    /// Sets an option (creating the section).
    pub fn set(&mut self, section: &str, option: &str, value: impl Into<String>) {
        self.sections
            .entry(section.to_ascii_lowercase())
            .or_default()
            .insert(option.to_ascii_uppercase(), value.into());
    }

    /// Removes an option; returns its old value.
    pub fn remove(&mut self, section: &str, option: &str) -> Option<String> {
        self.sections
            .get_mut(&section.to_ascii_lowercase())?
            .remove(&option.to_ascii_uppercase())
    }

    /// Section names (lower-case, sorted).
    pub fn sections(&self) -> Vec<String> {
        self.sections.keys().cloned().collect()
    }

    /// Whether a section exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(&section.to_ascii_lowercase())
    }

    /// Option names of a section (upper-case, sorted).
    pub fn options(&self, section: &str) -> Vec<String> {
        self.sections
            .get(&section.to_ascii_lowercase())
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The raw value, if present.
    pub fn raw(&self, section: &str, option: &str) -> Option<&str> {
        self.sections
            .get(&section.to_ascii_lowercase())?
            .get(&option.to_ascii_uppercase())
            .map(String::as_str)
    }

    fn invalid(section: &str, option: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            section: section.to_ascii_lowercase(),
            option: option.to_ascii_uppercase(),
            why: why.into(),
        }
    }

    fn required<T>(
        section: &str,
        option: &str,
        v: Result<Option<T>, ConfigError>,
    ) -> Result<T, ConfigError> {
        v?.ok_or_else(|| ConfigError::Missing {
            section: section.to_ascii_lowercase(),
            option: option.to_ascii_uppercase(),
        })
    }

    /// The value with `$VAR`, `${VAR}` and `${VAR:-default}` expanded (every typed getter reads
    /// through this, so expansion works in every value; an undefined variable is an error
    /// naming the option, never an unset value).
    fn value(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        self.raw(section, option)
            .map(|v| {
                self.expand_depth(v, 0)
                    .map_err(|why| Self::invalid(section, option, why))
            })
            .transpose()
    }

    /// An optional string value (`$VAR` expanded).
    pub fn string_opt(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        self.value(section, option)
    }

    /// A required string value (`$VAR` expanded).
    pub fn string(&self, section: &str, option: &str) -> Result<String, ConfigError> {
        Self::required(section, option, self.string_opt(section, option))
    }

    /// An optional non-negative integer.
    pub fn number_opt(&self, section: &str, option: &str) -> Result<Option<u64>, ConfigError> {
        self.value(section, option)?
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    Self::invalid(section, option, format!("expected a number, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A required non-negative integer.
    pub fn number(&self, section: &str, option: &str) -> Result<u64, ConfigError> {
        Self::required(section, option, self.number_opt(section, option))
    }

    /// An optional `YES`/`NO` (case-insensitive).
    pub fn yes_no_opt(&self, section: &str, option: &str) -> Result<Option<bool>, ConfigError> {
        self.value(section, option)?
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "yes" => Ok(true),
                "no" => Ok(false),
                _ => Err(Self::invalid(
                    section,
                    option,
                    format!("expected YES or NO, got {v:?}"),
                )),
            })
            .transpose()
    }

    /// A required `YES`/`NO`.
    pub fn yes_no(&self, section: &str, option: &str) -> Result<bool, ConfigError> {
        Self::required(section, option, self.yes_no_opt(section, option))
    }

    /// An optional amount (`EUR:1.50`).
    pub fn amount_opt(&self, section: &str, option: &str) -> Result<Option<Amount>, ConfigError> {
        self.value(section, option)?
            .map(|v| {
                v.trim().parse().map_err(|e| {
                    Self::invalid(section, option, format!("invalid amount {v:?}: {e}"))
                })
            })
            .transpose()
    }

    /// A required amount.
    pub fn amount(&self, section: &str, option: &str) -> Result<Amount, ConfigError> {
        Self::required(section, option, self.amount_opt(section, option))
    }

    /// An optional currency code.
    pub fn currency_opt(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<Currency>, ConfigError> {
        self.value(section, option)?
            .map(|v| {
                v.trim().parse().map_err(|e| {
                    Self::invalid(section, option, format!("invalid currency {v:?}: {e}"))
                })
            })
            .transpose()
    }

    /// A required currency code.
    pub fn currency(&self, section: &str, option: &str) -> Result<Currency, ConfigError> {
        Self::required(section, option, self.currency_opt(section, option))
    }

    /// An optional duration (`5 s`, `2 minutes`, `forever`).
    pub fn relative_time_opt(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<RelativeTime>, ConfigError> {
        self.value(section, option)?
            .map(|v| {
                RelativeTime::parse_duration(&v)
                    .map_err(|e| Self::invalid(section, option, e.to_string()))
            })
            .transpose()
    }

    /// A required duration.
    pub fn relative_time(&self, section: &str, option: &str) -> Result<RelativeTime, ConfigError> {
        Self::required(section, option, self.relative_time_opt(section, option))
    }

    /// An optional http(s) base URL (a missing trailing `/` is added).
    pub fn base_url_opt(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<BaseUrl>, ConfigError> {
        self.value(section, option)?
            .map(|v| {
                BaseUrl::parse(v.trim()).map_err(|e| {
                    Self::invalid(section, option, format!("invalid base URL {v:?}: {e}"))
                })
            })
            .transpose()
    }

    /// A required base URL.
    pub fn base_url(&self, section: &str, option: &str) -> Result<BaseUrl, ConfigError> {
        Self::required(section, option, self.base_url_opt(section, option))
    }

    /// An optional file name with `$VAR` expansion and a leading `~/` meaning `$HOME/`.
    pub fn path_opt(&self, section: &str, option: &str) -> Result<Option<PathBuf>, ConfigError> {
        self.raw(section, option)
            .map(|v| {
                let expanded = self
                    .expand_depth(v, 0)
                    .map_err(|why| Self::invalid(section, option, why))?;
                let expanded = match expanded.strip_prefix("~/") {
                    Some(rest) => {
                        let home = self.lookup_env("HOME").ok_or_else(|| {
                            Self::invalid(section, option, "~ used but HOME is not set")
                        })?;
                        format!("{home}/{rest}")
                    }
                    None => expanded,
                };
                Ok(PathBuf::from(expanded))
            })
            .transpose()
    }

    /// A required file name.
    pub fn path(&self, section: &str, option: &str) -> Result<PathBuf, ConfigError> {
        Self::required(section, option, self.path_opt(section, option))
    }

    /// Expands `$VAR`, `${VAR}` and `${VAR:-default}` in `text`.
    pub fn expand(&self, text: &str) -> Result<String, ConfigError> {
        self.expand_depth(text, 0)
            .map_err(|why| ConfigError::Expansion {
                text: text.to_owned(),
                why,
            })
    }

    fn lookup_env(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(env) => env.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// `[PATHS]` (expanded recursively) first, then the environment.
    fn lookup(&self, name: &str, depth: usize) -> Result<Option<String>, String> {
        if let Some(v) = self.raw("paths", name) {
            return self.expand_depth(v, depth + 1).map(Some);
        }
        Ok(self.lookup_env(name))
    }

    fn expand_depth(&self, text: &str, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("variable expansion nested too deeply (loop?)".into());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(braced) = after.strip_prefix('{') {
                let end = matching_brace(braced).ok_or("unterminated ${")?;
                let inner = &braced[..end];
                let (name, default) = match inner.find(":-") {
                    Some(i) if !inner[..i].contains('$') => (&inner[..i], Some(&inner[i + 2..])),
                    _ => (inner, None),
                };
                if !is_var_name(name) {
                    return Err(format!("invalid variable name {name:?}"));
                }
                match (self.lookup(name, depth)?, default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(&self.expand_depth(d, depth + 1)?),
                    (None, None) => {
                        return Err(format!(
                            "variable {name} is not defined in [PATHS] or the environment"
                        ));
                    }
                }
                rest = &braced[end + 1..];
            } else {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                let name = &after[..len];
                if name.is_empty() {
                    // A lone `$` is literal.
                    out.push('$');
                } else {
                    let v = self.lookup(name, depth)?.ok_or_else(|| {
                        format!("variable {name} is not defined in [PATHS] or the environment")
                    })?;
                    out.push_str(&v);
                }
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The configuration as INI text that [`Self::parse_str`] reads back to the same options
    /// (values with surrounding spaces or quotes are quoted; line breaks become spaces).
    pub fn to_ini_string(&self) -> String {
        let mut out = String::new();
        for (name, options) in &self.sections {
            let _ = writeln!(out, "[{name}]");
            for (key, value) in options {
                let value = value.replace(['\n', '\r'], " ");
                let needs_quotes = value != value.trim() || value.starts_with('"');
                if needs_quotes {
                    let _ = writeln!(out, "{key} = \"{value}\"");
                } else {
                    let _ = writeln!(out, "{key} = {value}");
                }
            }
            out.push('\n');
        }
        out
    }
}

fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Index of the `}` closing a `${` whose body starts at `s`, honouring nested `${…}`.
fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_value_is_expanded_and_undefined_variables_are_errors() {
        let text = "[paths]\nPORT_BASE = 80\n[s]\nPORT = ${PORT_BASE}81\nON = $ANSWER\nNAME = x-$ANSWER\nCUR = ${MISSING:-CHF}\nBAD = $NOPE\n";
        let mut vars = BTreeMap::new();
        vars.insert("ANSWER".to_owned(), "YES".to_owned());
        let cfg = TalerConfig::parse_str(text).unwrap().with_env(vars);
        assert_eq!(cfg.number("s", "PORT").unwrap(), 8081);
        assert!(cfg.yes_no("s", "ON").unwrap());
        assert_eq!(cfg.string("s", "NAME").unwrap(), "x-YES");
        assert_eq!(cfg.currency("s", "CUR").unwrap().to_string(), "CHF");
        let e = cfg.string_opt("s", "BAD").unwrap_err().to_string();
        assert!(e.contains("NOPE"), "{e}");
    }

    const FIXTURE: &str = r#"
# A comment
% another comment
[PATHS]
TALER_HOME = /srv/taler
TALER_DATA_HOME = ${TALER_HOME}/data
RUNTIME = ${XDG_RUNTIME_DIR:-/run/user/${UID:-1000}}

[c2ec]
Serve = tcp
PORT = 8082
BASE_URL = "http://localhost:8082/c2ec"
CURRENCY = CHF
MAX_AMOUNT = CHF:100.5
ATTEST = yes
TIMEOUT = 5 s
DB_FILE = $TALER_DATA_HOME/c2ec.sqlite3
SOCKET = ${RUNTIME}/c2ec.sock
QUOTED = "  spaced  "
"#;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("HOME".to_owned(), "/home/me".to_owned())])
    }

    #[test]
    fn parses_and_reads_typed_values() {
        let cfg = TalerConfig::parse_str(FIXTURE).unwrap().with_env(env());
        assert_eq!(cfg.sections(), vec!["c2ec", "paths"]);
        assert_eq!(cfg.string("C2EC", "serve").unwrap(), "tcp");
        assert_eq!(cfg.number("c2ec", "port").unwrap(), 8082);
        assert_eq!(
            cfg.base_url("c2ec", "base_url").unwrap().as_str(),
            "http://localhost:8082/c2ec/"
        );
        assert_eq!(cfg.currency("c2ec", "currency").unwrap().as_str(), "CHF");
        assert_eq!(
            cfg.amount("c2ec", "max_amount").unwrap().to_string(),
            "CHF:100.5"
        );
        assert!(cfg.yes_no("c2ec", "attest").unwrap());
        assert_eq!(
            cfg.relative_time("c2ec", "timeout").unwrap(),
            RelativeTime::from_secs(5)
        );
        assert_eq!(
            cfg.path("c2ec", "db_file").unwrap(),
            PathBuf::from("/srv/taler/data/c2ec.sqlite3")
        );
        assert_eq!(
            cfg.path("c2ec", "socket").unwrap(),
            PathBuf::from("/run/user/1000/c2ec.sock")
        );
        assert_eq!(cfg.string("c2ec", "quoted").unwrap(), "  spaced  ");
        assert_eq!(cfg.string_opt("c2ec", "nope").unwrap(), None);
    }

    #[test]
    fn errors_name_section_and_option() {
        let cfg = TalerConfig::parse_str(FIXTURE).unwrap().with_env(env());
        assert_eq!(
            cfg.number("c2ec", "serve").unwrap_err().to_string(),
            "[c2ec]/SERVE: expected a number, got \"tcp\""
        );
        assert_eq!(
            cfg.string("bank", "port").unwrap_err().to_string(),
            "[bank]/PORT: required option missing"
        );
        assert!(
            cfg.yes_no("c2ec", "port")
                .unwrap_err()
                .to_string()
                .starts_with("[c2ec]/PORT: expected YES or NO")
        );
        assert!(cfg.amount("c2ec", "port").is_err());
        assert!(cfg.relative_time("c2ec", "port").is_err());
        let mut cfg = cfg;
        cfg.set("x", "p", "$UNDEFINED_VAR_XYZ/a");
        assert!(
            cfg.path("x", "p")
                .unwrap_err()
                .to_string()
                .starts_with("[x]/P: variable UNDEFINED_VAR_XYZ")
        );
        cfg.set("paths", "LOOP", "${LOOP}");
        cfg.set("x", "loop", "$LOOP");
        assert!(
            cfg.path("x", "loop")
                .unwrap_err()
                .to_string()
                .contains("too deeply")
        );
        cfg.set("x", "tilde", "~/cfg");
        assert_eq!(
            cfg.path("x", "tilde").unwrap(),
            PathBuf::from("/home/me/cfg")
        );
    }

    #[test]
    fn syntax_errors() {
        for (bad, line) in [
            ("KEY = v", 1),
            ("[a]\nnot an option", 2),
            ("[a\nX=1", 1),
            ("[]", 1),
            ("[a]\n= v", 2),
            ("@INLINE@ x.conf", 1),
        ] {
            match TalerConfig::parse_str(bad) {
                Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn expansion_rules() {
        let cfg = TalerConfig::parse_str("[paths]\nA = 1\nB = ${A}-x\n")
            .unwrap()
            .with_env(env());
        assert_eq!(cfg.expand("${B}:$HOME").unwrap(), "1-x:/home/me");
        assert_eq!(cfg.expand("cost $ 5").unwrap(), "cost $ 5");
        assert_eq!(cfg.expand("${NOPE:-${A}}").unwrap(), "1");
        assert!(cfg.expand("${A").is_err());
        assert!(cfg.expand("${}").is_err());
    }

    #[test]
    fn ini_round_trip() {
        let mut cfg = TalerConfig::parse_str(FIXTURE).unwrap();
        cfg.set("New", "Odd", "\"quoted\" value");
        cfg.set("new", "multi", "a\nb");
        let text = cfg.to_ini_string();
        let back = TalerConfig::parse_str(&text).unwrap();
        for s in cfg.sections() {
            for o in cfg.options(&s) {
                let expected = cfg.raw(&s, &o).unwrap().replace('\n', " ");
                assert_eq!(back.raw(&s, &o).unwrap(), expected, "[{s}]/{o}");
            }
        }
    }

    #[test]
    fn inline_files() {
        let dir = std::env::temp_dir().join(format!("cardcash-util-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "[a]\nX = 1\n@INLINE@ extra.conf\n[a]\nZ = 3\n",
        )
        .unwrap();
        std::fs::write(dir.join("extra.conf"), "[b]\nY = 2\n").unwrap();
        std::fs::write(dir.join("loop.conf"), "@INLINE@ loop.conf\n").unwrap();
        let cfg = TalerConfig::load(dir.join("main.conf")).unwrap();
        assert_eq!(cfg.number("a", "x").unwrap(), 1);
        assert_eq!(cfg.number("b", "y").unwrap(), 2);
        assert_eq!(cfg.number("a", "z").unwrap(), 3);
        assert!(matches!(
            TalerConfig::load(dir.join("loop.conf")),
            Err(ConfigError::Io { .. })
        ));
        assert!(matches!(
            TalerConfig::load(dir.join("missing.conf")),
            Err(ConfigError::Io { .. })
        ));
        let with_defaults =
            TalerConfig::load_with_defaults("[a]\nX = 0\nW = 9\n", dir.join("main.conf")).unwrap();
        assert_eq!(with_defaults.number("a", "x").unwrap(), 1);
        assert_eq!(with_defaults.number("a", "w").unwrap(), 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
