//! Where a command's configuration comes from: `-c FILE`, `$CARDCASH_CONFIG`, or
//! `./cardcash.conf`. Loaded lazily, because operator commands like `--help` need none.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cardcash_util::TalerConfig;

/// The configuration file a command will read.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    path: PathBuf,
}

impl ConfigSource {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path: path.unwrap_or_else(|| PathBuf::from("cardcash.conf")),
        }
    }

    /// The file's path (for messages that tell which file to edit).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file; a missing file is an error that says how to get one.
    pub fn load(&self) -> anyhow::Result<TalerConfig> {
        if !self.path.exists() {
            anyhow::bail!(
                "configuration file {} not found; pass -c FILE, or run `cardcash demo --data-dir DIR` \
                 to get a working one in DIR/cardcash.conf",
                self.path.display()
            );
        }
        tracing::debug!(path = %self.path.display(), "reading configuration");
        TalerConfig::load(&self.path)
            .with_context(|| format!("reading configuration {}", self.path.display()))
    }
}
