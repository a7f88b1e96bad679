//! Online backup: a consistent copy of the database, taken while the collector keeps writing.
//!
//! SQLite's online backup API copies every page inside one read transaction. In WAL mode a
//! reader does not block the writer, and the copy is the snapshot of the moment the copy began:
//! batches committed later are simply not in it. (Copying in several steps would restart each
//! time the writer commits, which under steady ingest may never end; one step cannot restart.)
//!
//! The copy is made beside the target under a temporary name, switched to a self-contained
//! rollback-journal file (no `-wal` to carry along), checked with `PRAGMA quick_check`, fsynced,
//! and only then linked to the target name, which fails rather than replaces an existing file.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the copy waits for a lock it cannot take (another process checkpointing) before
/// giving up.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// Why a backup failed; nothing is left at the target path then.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target exists; a backup never replaces a file.
    #[error("{} already exists; a backup never overwrites a file", .0.display())]
    TargetExists(PathBuf),
    /// The database to copy does not exist.
    #[error("database {} does not exist", .0.display())]
    SourceMissing(PathBuf),
    /// SQLite failed while copying.
    #[error("cannot copy {}: {source}", path.display())]
    Sqlite {
        /// The database being copied.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database stayed locked for too long.
    #[error("database {} stayed locked for {LOCK_PATIENCE:?}", .0.display())]
    Locked(PathBuf),
    /// The copy failed its integrity check (and was removed).
    #[error("the copy failed its integrity check: {0}")]
    Check(String),
    /// A file operation on the copy failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The size of the copy in bytes.
    pub bytes: u64,
    /// The copy's schema version.
    pub schema_version: u32,
    /// Violations in the copy.
    pub violations: u64,
    /// Events in the copy.
    pub events: u64,
}

/// Copies the database at `source` to the new file `target` (see the module doc).
pub fn backup(source: &Path, target: &Path) -> Result<BackupSummary, BackupError> {
    if target.symlink_metadata().is_ok() {
        return Err(BackupError::TargetExists(target.to_path_buf()));
    }
    if !source.is_file() {
        return Err(BackupError::SourceMissing(source.to_path_buf()));
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = folder.join(format!(".{name}.partial-{}", std::process::id()));
    let outcome = copy_checked(source, &partial).and_then(|summary| {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BackupError::Io { path, source }
        };
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io(&partial))?;
        // A hard link never replaces an existing file: a target created meanwhile wins.
        std::fs::hard_link(&partial, target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::TargetExists(target.to_path_buf())
            } else {
                BackupError::Io {
                    path: target.to_path_buf(),
                    source: e,
                }
            }
        })?;
        File::open(&folder)
            .and_then(|f| f.sync_all())
            .map_err(io(&folder))?;
        Ok(summary)
    });
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut leftover = partial.clone().into_os_string();
        leftover.push(suffix);
        let _ = std::fs::remove_file(leftover);
    }
    outcome
}

/// Copies `source` into the new file `partial`, makes it a rollback-journal database and checks
/// it.
fn copy_checked(source: &Path, partial: &Path) -> Result<BackupSummary, BackupError> {
    let sqlite = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Sqlite { path, source }
    };
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(source))?;
    from.busy_timeout(LOCK_PATIENCE).map_err(sqlite(source))?;
    let mut to = Connection::open(partial).map_err(sqlite(partial))?;
    {
        let copy = Backup::new(&from, &mut to).map_err(sqlite(source))?;
        let deadline = Instant::now() + LOCK_PATIENCE;
        loop {
            match copy.step(-1).map_err(sqlite(source))? {
                StepResult::Done => break,
                // `More` cannot follow a step of all pages; like a lock, it means "again".
                _ => {
                    if Instant::now() > deadline {
                        return Err(BackupError::Locked(source.to_path_buf()));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    drop(from);
    let mode: String = to
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sqlite(partial))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(BackupError::Check(format!(
            "the copy stays in journal mode `{mode}`"
        )));
    }
    let check: String = to
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sqlite(partial))?;
    if check != "ok" {
        return Err(BackupError::Check(check));
    }
    let count = |sql: &str| -> Result<u64, BackupError> {
        let n: i64 = to
            .query_row(sql, [], |r| r.get(0))
            .map_err(sqlite(partial))?;
        Ok(n.unsigned_abs())
    };
    let schema_version = u32::try_from(count(
        "SELECT coalesce(max(version), 0) FROM schema_version",
    )?)
    .map_err(|_| BackupError::Check("implausible schema version".into()))?;
    let violations = count("SELECT count(*) FROM violations")?;
    let events = count("SELECT count(*) FROM events")?;
    to.close().map_err(|(_, e)| sqlite(partial)(e))?;
    let bytes = std::fs::metadata(partial)
        .map_err(|source| BackupError::Io {
            path: partial.to_path_buf(),
            source,
        })?
        .len();
    Ok(BackupSummary {
        bytes,
        schema_version,
        violations,
        events,
    })
}
