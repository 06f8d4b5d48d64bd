//! The demo's files are private to the user who runs it: the data directory is 0700, the
//! configuration (it holds every password and MAC secret) and the SQLite databases 0600.
//! SQLite creates its `-wal`, `-shm` and `-journal` files with the database file's permissions,
//! so creating the database file 0600 before the store opens it covers them too.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

/// Creates `dir` (0700) if needed and returns its canonical path, with a note for the user when
/// an existing directory is open to others and was left so.
pub fn data_dir(dir: &Path) -> anyhow::Result<(PathBuf, Option<String>)> {
    let existed = dir.exists();
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("reading {}", dir.display()))?;
    #[cfg(unix)]
    {
        let mode = fs::metadata(&dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            // A directory the demo owns (new, empty, or an earlier demo's) is made private; any
            // other directory the user named is left alone, with a warning.
            let owned = !existed
                || dir.join("cardcash.conf").exists()
                || fs::read_dir(&dir)?.next().is_none();
            if owned {
                set_mode(&dir, 0o700)?;
            } else {
                return Ok((
                    dir.clone(),
                    Some(format!(
                        "warning: {} is open to other users (mode {mode:o}); `chmod 700 {}` keeps \
                         the demo's databases private",
                        dir.display(),
                        dir.display()
                    )),
                ));
            }
        }
    }
    let _ = existed;
    Ok((dir, None))
}

/// Replaces `path` with `bytes`, readable and writable by the owner only (written beside it and
/// renamed, so a reader never sees half a file and the mode holds from the first byte).
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&tmp)?;
        set_mode(&tmp, 0o600)?; // the mode above applies only to a new file
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Creates the SQLite database file of `url` (`sqlite:PATH`) 0600 if it is missing, and makes an
/// existing one (and its journal files) 0600. Other URLs (PostgreSQL) are left alone.
pub fn sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let secure = || -> std::io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        options.mode(0o600);
        options.open(&path)?;
        set_mode(&path, 0o600)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let side = PathBuf::from(side);
            if side.exists() {
                set_mode(&side, 0o600)?;
            }
        }
        Ok(())
    };
    secure().with_context(|| format!("creating {}", path.display()))
}

/// The file of a `sqlite:` URL (`sqlite:PATH`, `sqlite://PATH`, with or without `?options`).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:/d/bank.db"), Some("/d/bank.db".into()));
        assert_eq!(
            sqlite_path("sqlite:///d/bank.db?mode=rwc"),
            Some("/d/bank.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_even_when_they_existed_before() {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("c.conf");
        fs::write(&conf, "old").expect("write");
        set_mode(&conf, 0o644).expect("chmod");
        write_file(&conf, b"[x]\n").expect("write_file");
        assert_eq!(fs::read_to_string(&conf).expect("read"), "[x]\n");
        assert_eq!(
            fs::metadata(&conf).expect("meta").permissions().mode() & 0o777,
            0o600
        );

        let db = dir.path().join("x.db");
        fs::write(&db, "").expect("write");
        fs::write(dir.path().join("x.db-wal"), "").expect("write");
        set_mode(&db, 0o644).expect("chmod");
        set_mode(&dir.path().join("x.db-wal"), 0o644).expect("chmod");
        sqlite_file(&format!("sqlite:{}", db.display())).expect("sqlite_file");
        for f in ["x.db", "x.db-wal"] {
            let mode = fs::metadata(dir.path().join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }

        let data = dir.path().join("new/data");
        let (made, note) = data_dir(&data).expect("data_dir");
        assert!(note.is_none());
        assert_eq!(
            fs::metadata(made).expect("meta").permissions().mode() & 0o777,
            0o700
        );
    }
}
