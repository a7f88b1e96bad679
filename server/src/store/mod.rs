//! The collector's storage: agents, their event log, and violations with their history, in SQLite.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so every committed
//! transaction has been fsynced to the WAL before [`Store::ingest`] returns. The agent deletes
//! events from its outbox as soon as the server acknowledges them, so an acknowledgement must
//! survive a power cut, not only a crash of the server process; `NORMAL` would only give the
//! latter. The price (one fsync per commit) is paid per transaction, not per event, and is
//! amortised further once the writer batches several requests into one transaction.
//!
//! Concurrency: all writes go through one writer connection; reads use their own connection and,
//! thanks to WAL, see the last committed state without waiting for the writer.
//!
//! Group commit: agents' batches do not take the writer connection one request at a time. A
//! dedicated writer thread, fed by a bounded queue, takes every batch waiting and stores them in
//! one transaction, commits once, and only then answers each caller with its own
//! `stored_through` or its own error. One bad batch fails alone: the group is rolled back and
//! stored again without it. Under load many requests share one fsync and one write of each
//! B-tree page; a full queue makes callers wait (back-pressure). Details in `writer`.

mod actions;
mod agents;
pub mod audit;
pub mod backup;
pub mod bundle;
mod counts;
pub mod drift;
mod enroll;
mod escalation;
mod ingest;
mod migrations;
pub mod model;
pub mod notify;
pub mod overview;
mod query;
pub mod sessions;
pub mod stats;
pub mod tokens;
mod writer;

pub use actions::{Decided, ManagerAction};
pub use audit::{AuditEntry, AuditProblem, AuditRecord, AuditVerification};
pub use model::{
    violation_id, Agent, Cursor, Event, EventBody, Health, HeatmapCell, HistoryEntry, NewAgent,
    Page, PageRequest, Sort, SortKey, SortOrder, Violation, ViolationDetail, ViolationFilter,
    ViolationStatus,
};
pub use sessions::{NewSession, Session, SessionLimits};
pub use stats::{DepartmentRemediation, SeverityCounts};
pub use tokens::{ApiToken, Caller, IssuedToken, NewApiToken, Role};
pub use writer::IngestCounters;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database could not be opened or set up.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database was written by a newer server (a downgrade); nothing was changed.
    #[error("database schema version {found} is newer than this server knows ({known})")]
    SchemaTooNew {
        /// The database's version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The agent is not enrolled.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// The agent was revoked; its events are refused.
    #[error("agent `{0}` is revoked")]
    RevokedAgent(String),
    /// An agent with this id already exists.
    #[error("agent `{0}` already exists")]
    DuplicateAgent(String),
    /// A sequence number outside 1..=i64::MAX; the whole batch is refused.
    #[error("invalid sequence number {seq}: sequences start at 1 and fit in 63 bits")]
    InvalidSequence {
        /// The offending number.
        seq: u64,
    },
    /// The enrollment token is unknown, expired or used up. Deliberately one error for all
    /// three, so that a caller learns nothing about which tokens exist.
    #[error("enrollment token is unknown, expired or used up")]
    EnrollTokenInvalid,
    /// An enrollment token was asked for with zero uses.
    #[error("an enrollment token needs at least one use")]
    ZeroUses,
    /// The system's secure random source failed.
    #[error("secure random source failed")]
    Random,
    /// A value in the database that this build cannot read.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
    /// JSON (de)serialisation of a stored document failed.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No violation with this id lies within the caller's departments. Deliberately the same
    /// error for a violation of another department, so that scope does not reveal which ids
    /// exist.
    #[error("violation `{0}` not found")]
    ViolationNotFound(String),
    /// No API token with this id.
    #[error("token `{0}` not found")]
    TokenNotFound(String),
    /// A manager's action does not apply to the violation's current status; nothing changed.
    #[error("cannot {action} violation `{id}`: it is {status}")]
    InvalidTransition {
        /// The violation.
        id: String,
        /// The refused action, as a verb (`acknowledge`, `except`, `reopen`).
        action: &'static str,
        /// The violation's status, which the action does not apply to.
        status: ViolationStatus,
    },
    /// A manager's action carried input the store refuses (a blank reason, an exception that
    /// ends in the past); nothing changed.
    #[error("invalid {field}: {problem}")]
    InvalidInput {
        /// Which input: `actor`, `reason`, `comment`, `until`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The ingest writer thread could not be started.
    #[error("cannot start the ingest writer: {0}")]
    WriterThread(std::io::Error),
    /// The store is closed (the server is stopping); the batch was not stored.
    #[error("the store is closed")]
    Closed,
    /// The transaction shared by a group of batches failed to begin or commit: none of them was
    /// stored.
    #[error("ingest transaction failed: {0}")]
    GroupFailed(String),
}

/// The collector's database.
#[derive(Debug)]
pub struct Store {
    // Writes go through this one connection: ingest through the writer thread of
    // `ingest_queue` (group commit), everything else one transaction per call.
    writer: Arc<Mutex<Connection>>,
    ingest_queue: writer::IngestQueue,
    // A read-only (`query_only`) connection: in WAL mode it reads the last committed snapshot
    // without blocking the writer. A pool of these is the step after.
    reader: Mutex<Connection>,
    schema_version: u32,
}

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut writer = Connection::open(path).map_err(open_err)?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "journal mode stays `{mode}`, WAL is required"
            )));
        }
        // A large page cache for the writer: a group transaction's dirty pages stay in memory
        // until the commit instead of spilling to the WAL half-way, and the B-tree pages that
        // random violation ids touch stay cached between groups (the limit is a ceiling, not an
        // allocation). Temporary storage in memory: inside a transaction SQLite keeps a
        // statement journal for each statement that may fail half-way, which in a file costs a
        // `pwrite` per page changed.
        writer
            .execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
                 PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
            )
            .map_err(open_err)?;
        let schema_version = migrations::run(&mut writer)?;

        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        reader
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(open_err)?;

        let writer = Arc::new(Mutex::new(writer));
        Ok(Store {
            ingest_queue: writer::IngestQueue::start(Arc::clone(&writer))?,
            writer,
            reader: Mutex::new(reader),
            schema_version,
        })
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// Adds an enrolled agent.
    pub fn add_agent(&self, agent: &NewAgent) -> Result<(), StoreError> {
        let writer = self.writer();
        let inserted = writer.execute(
            "INSERT OR IGNORE INTO agents (id, hostname, secret_hash, enrolled_at)
             VALUES (?1, ?2, ?3, ?4)",
            (
                &agent.id,
                &agent.hostname,
                &agent.secret_hash,
                timestamp(agent.enrolled_at),
            ),
        )?;
        if inserted == 0 {
            return Err(StoreError::DuplicateAgent(agent.id.clone()));
        }
        Ok(())
    }

    /// Revokes an agent as `cli`: its further events are refused; its data stays. Audited like
    /// [`Store::revoke_agent_as`], which names the actor.
    pub fn revoke_agent(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.revoke_agent_as(id, "cli", None, at).map(drop)
    }

    /// One agent, if enrolled.
    pub fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let reader = self.reader();
        let raw = reader
            .query_row(
                "SELECT id, hostname, enrolled_at, revoked_at, last_seen, version, health,
                        contiguous_seq
                 FROM agents WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, Option<String>>(6)?,
                        row.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, hostname, enrolled, revoked, seen, version, health, seq)) = raw else {
            return Ok(None);
        };
        Ok(Some(Agent {
            id,
            hostname,
            enrolled_at: parse_timestamp(&enrolled)?,
            revoked_at: revoked.as_deref().map(parse_timestamp).transpose()?,
            last_seen: seen.as_deref().map(parse_timestamp).transpose()?,
            version,
            health: health.as_deref().map(serde_json::from_str).transpose()?,
            contiguous_seq: u64::try_from(seq)
                .map_err(|_| StoreError::Corrupt(format!("negative sequence {seq}")))?,
        }))
    }

    /// How many events of this agent are stored (whether applied yet or waiting behind a gap).
    pub fn stored_events(&self, agent_id: &str) -> Result<u64, StoreError> {
        let count: i64 = self.reader().query_row(
            "SELECT count(*) FROM events WHERE agent_id = ?1",
            [agent_id],
            |row| row.get(0),
        )?;
        Ok(count.unsigned_abs())
    }

    /// Counters of the ingest path since the store was opened.
    pub fn ingest_counters(&self) -> IngestCounters {
        self.ingest_queue.counters()
    }

    /// Stops taking batches and waits until every batch already queued has been stored and
    /// answered. Later calls to [`Store::ingest`] fail with [`StoreError::Closed`]; reads and the
    /// other writes keep working. Dropping the store does the same.
    pub fn close_ingest(&self) {
        self.ingest_queue.close();
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock dropped its transaction, which rolled back: the
        // connection is still consistent, so poisoning carries no information here.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stored form of a time: RFC 3339 in UTC with microseconds. The fixed width makes text
/// order equal time order, which the indexes and cursors rely on.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a time written by [`timestamp`].
pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{text}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_sort_as_text_in_time_order() {
        let times = [
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(1),
            Utc.with_ymd_and_hms(2026, 10, 2, 3, 4, 5).unwrap(),
        ];
        let texts: Vec<String> = times.iter().copied().map(timestamp).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        for (text, time) in texts.iter().zip(times) {
            assert_eq!(parse_timestamp(text).unwrap(), time);
        }
    }

    #[test]
    fn open_sets_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let writer = store.writer();
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = writer
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
        drop(writer);
        let err = store
            .reader()
            .execute("DELETE FROM agents", [])
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }
}
