//! The agent's local state in SQLite (`state.db` in `state_dir`): the file facts cache, the
//! current findings per file, what the collector has been told, and the outbox.
//!
//! Tables:
//!
//! - `files`: one row per regular file under the watch roots, keyed by its path (raw bytes),
//!   with the stamp `(dev, inode, size, mtime, ctime)` it was inspected at, how much of it was
//!   read, its [`FileFacts`] as JSON, and the ledger asset it belongs to under the current
//!   bundle (for the footprint). A file whose stamp is unchanged is not inspected again; a new
//!   bundle or a new day is evaluated from these facts alone.
//! - `findings`: the file's current violations (one row per path and kind), with owner and
//!   texts: the local truth, and what `warnings` lists.
//! - `announced`: per (path, kind), the fingerprint of the last `violation_opened` event put in
//!   the outbox, i.e. what the collector will know once the outbox is delivered. Events are the
//!   difference between `findings` and `announced`, written in the same transaction that changes
//!   either, so a crash can neither lose nor repeat one, and a restart or rescan that finds the
//!   same problem finds nothing to announce.
//! - `outbox`: events waiting for the collector. A row gets its sequence number only when it is
//!   first put into a batch (in a committed transaction, before the batch is sent), so numbers
//!   are contiguous even though unsent rows can be merged away; a row leaves only when the
//!   collector acknowledged its number (`stored_through`).
//!
//! # A full outbox
//!
//! `outbox_limit` bounds the rows. When an event does not fit:
//!
//! 1. health events and footprints are snapshots: a new one always replaces every unsent older
//!    one of its type (whether the outbox is full or not: an older snapshot says nothing the
//!    newer does not), and when it still does not fit it is dropped (counted in
//!    `dropped_events`);
//! 2. unsent violation events are merged: of the unsent events of one (path, kind) only the
//!    first and the last stay, so the collector still learns that the violation was there and
//!    how it ended, and only intermediate flips are lost (counted in `dropped_events`);
//! 3. a violation change that still does not fit is **deferred**, never dropped: `findings`
//!    holds it, `announced` does not, and it is put into the outbox as soon as deliveries make
//!    room ([`StateDb::reconcile`]). Health reports how many are deferred.
//!
//! Numbered events (sent, not yet acknowledged) are never merged or dropped.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use infoledger_policies::wire::events::{AssetFootprint, Event, EventBody, Footprint, Health};
use infoledger_policies::{FileFacts, Kind, Severity};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use sha2::{Digest, Sha256};

use crate::facts::ReadDepth;

/// The database file in `state_dir`.
pub const STATE_FILE: &str = "state.db";
/// Events per batch sent to the collector: far under its 4 MiB body limit with long paths.
pub const BATCH_EVENTS: usize = 500;

const SCHEMA: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('next_seq', 1);

CREATE TABLE files (
    path     BLOB PRIMARY KEY,
    dev      INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    depth    INTEGER NOT NULL,   -- ReadDepth: 0 unread, 1 head, 2 full
    facts    TEXT NOT NULL       -- FileFacts as JSON
) STRICT;

CREATE TABLE findings (
    path        BLOB NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    label       TEXT,
    asset       TEXT,
    department  TEXT,
    rule        TEXT NOT NULL,
    message     TEXT NOT NULL,
    fix         TEXT NOT NULL,
    owner       INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    PRIMARY KEY (path, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE announced (
    path        BLOB NOT NULL,
    kind        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (path, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    seq  INTEGER UNIQUE,          -- NULL until first batched
    at   TEXT NOT NULL,
    type TEXT NOT NULL,           -- the event's type tag
    path BLOB,                    -- violation events: their (path, kind), for merging
    kind TEXT,
    body TEXT NOT NULL            -- EventBody as JSON
) STRICT;
CREATE INDEX outbox_by_violation ON outbox (path, kind) WHERE seq IS NULL AND path IS NOT NULL;
"#;

/// Version 2: the asset each file belongs to under the current bundle, for footprints. Rows
/// of version 1 start without one; the start-up evaluation of cached facts fills it in.
const MIGRATION_2: &str = r#"
ALTER TABLE files ADD COLUMN asset TEXT;
CREATE INDEX files_by_asset ON files (asset) WHERE asset IS NOT NULL;
"#;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// What can go wrong with the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database could not be opened.
    #[error("cannot open state database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// Written by a newer agent.
    #[error("state database {} has schema version {found}, newer than this agent knows ({SCHEMA_VERSION})", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A stored value this build cannot read.
    #[error("corrupt value in the state database: {0}")]
    Corrupt(String),
}

impl From<serde_json::Error> for StateError {
    fn from(e: serde_json::Error) -> StateError {
        StateError::Corrupt(e.to_string())
    }
}

/// What identifies a file's content version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time (permissions, owner, extended attributes), nanoseconds.
    pub ctime_ns: i64,
}

impl Stamp {
    /// The stamp of `lstat` metadata.
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One violation of one file as the agent holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationRecord {
    /// What kind of problem.
    pub kind: Kind,
    /// How urgent.
    pub severity: Severity,
    /// The policy label the decision was made with.
    pub label: Option<String>,
    /// The file's asset.
    pub asset: Option<String>,
    /// The asset's department.
    pub department: Option<String>,
    /// The rule that fired.
    pub rule: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The file owner's uid (who is told).
    pub owner: u32,
}

impl ViolationRecord {
    /// What a `violation_opened` event must be re-sent for when it changes. The message is
    /// left out on purpose: an expired asset's message counts days, and re-sending every
    /// expired file daily would flood the collector for no decision anybody takes.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.severity.as_str(),
            self.label.as_deref().unwrap_or("\0"),
            self.asset.as_deref().unwrap_or("\0"),
            self.department.as_deref().unwrap_or("\0"),
            &self.rule,
            &self.fix,
        ] {
            h.update(part.as_bytes());
            h.update([0xff]);
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What evaluating a file under the current bundle came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// The ledger asset the file belongs to, if any.
    pub asset: Option<String>,
    /// Its violations.
    pub violations: Vec<ViolationRecord>,
}

/// A change of a file's local findings, for the developer log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A violation appeared on the file.
    Opened {
        /// The file.
        path: PathBuf,
        /// Its details.
        violation: ViolationRecord,
    },
    /// A violation is gone.
    Resolved {
        /// The file.
        path: PathBuf,
        /// The kind that is gone.
        kind: Kind,
    },
}

/// An open violation on this host, as `warnings` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenViolation {
    /// The file.
    pub path: PathBuf,
    /// Its details.
    pub violation: ViolationRecord,
    /// When the agent first saw it.
    pub opened_at: DateTime<Utc>,
}

/// A file's cached inspection.
#[derive(Debug, Clone)]
pub struct CachedFile {
    /// The stamp it was inspected at.
    pub stamp: Stamp,
    /// How much was read.
    pub depth: ReadDepth,
    /// The facts.
    pub facts: FileFacts,
}

/// Counters of one batch of changes, for health and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events put into the outbox.
    pub queued: u64,
    /// Unsent events merged away by the overflow policy.
    pub merged: u64,
    /// Violation changes that did not fit (they wait in `findings`).
    pub deferred: bool,
}

/// The state database. The daemon's run loop and its uplink each hold one (SQLite serialises
/// their writes; WAL lets reads proceed).
#[derive(Debug)]
pub struct StateDb {
    conn: Connection,
    outbox_limit: u64,
    host: String,
    announcing: bool,
}

fn path_key(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn key_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
}

/// The key range of paths under a folder: `dir/` up to (excluding) `dir0`, `0` being the byte
/// after `/`.
fn prefix_range(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut lower = path_key(dir).to_vec();
    if lower.last() != Some(&b'/') {
        lower.push(b'/');
    }
    let mut upper = lower.clone();
    if let Some(last) = upper.last_mut() {
        *last = b'/' + 1;
    }
    (lower, upper)
}

fn wire_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StateError::Corrupt(format!("time `{text}`: {e}")))
}

fn parse_kind(text: &str) -> Result<Kind, StateError> {
    text.parse().map_err(StateError::Corrupt)
}

impl StateDb {
    /// Opens (creating) `state.db` in `dir` for the daemon. `durable_commits` makes every
    /// commit reach the disk before it returns (the uplink's connection, whose commits number
    /// events about to leave); otherwise a commit survives a crash of the process but may be
    /// lost with a power cut, and the next rescan finds again what it held.
    pub fn open(
        dir: &Path,
        outbox_limit: u64,
        durable_commits: bool,
    ) -> Result<StateDb, StateError> {
        let path = dir.join(STATE_FILE);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        conn.execute_batch(if durable_commits {
            "PRAGMA synchronous = FULL;"
        } else {
            "PRAGMA synchronous = NORMAL;"
        })
        .map_err(open_err)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path,
                found: version,
            });
        }
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
        }
        if version < 2 {
            tx.execute_batch(MIGRATION_2)?;
        }
        if version < SCHEMA_VERSION {
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
        }
        tx.commit()?;
        Ok(StateDb {
            conn,
            outbox_limit,
            host: String::new(),
            announcing: true,
        })
    }

    /// Opens an existing state database read-only (`status`, `warnings`).
    pub fn open_read_only(dir: &Path) -> Result<StateDb, StateError> {
        let path = dir.join(STATE_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StateError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(StateDb {
            conn,
            outbox_limit: u64::MAX,
            host: String::new(),
            announcing: false,
        })
    }

    /// Changes the outbox capacity (after a configuration reload).
    pub fn set_outbox_limit(&mut self, limit: u64) {
        self.outbox_limit = limit;
    }

    /// Whether changes of findings are announced to a collector (false in `local_only` mode,
    /// where nothing would ever empty the outbox).
    pub fn set_announcing(&mut self, on: bool) {
        self.announcing = on;
    }

    /// Sets the host name that `violation_opened` events carry.
    pub fn set_host(&mut self, host: &str) {
        host.clone_into(&mut self.host);
    }

    /// A number kept in the state's `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<i64>, StateError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Keeps a number in the state's `meta` table.
    pub fn set_meta(&mut self, key: &str, value: i64) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// The cached stamp and read depth of a file, without parsing its facts.
    pub fn cached_stamp(&self, path: &Path) -> Result<Option<(Stamp, ReadDepth)>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dev, ino, size, mtime_ns, ctime_ns, depth FROM files WHERE path = ?1",
        )?;
        Ok(stmt
            .query_row([path_key(path)], |r| {
                Ok((
                    Stamp {
                        dev: r.get::<_, i64>(0)? as u64,
                        ino: r.get::<_, i64>(1)? as u64,
                        size: r.get::<_, i64>(2)? as u64,
                        mtime_ns: r.get(3)?,
                        ctime_ns: r.get(4)?,
                    },
                    ReadDepth::from_u8(r.get::<_, u8>(5)?),
                ))
            })
            .optional()?)
    }

    /// Up to `limit` cached files whose paths sort after `after` (keyset pagination, so the
    /// caller can write between pages).
    pub fn files_after(
        &self,
        after: Option<&Path>,
        limit: usize,
    ) -> Result<Vec<CachedFile>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dev, ino, size, mtime_ns, ctime_ns, depth, facts FROM files
             WHERE ?1 IS NULL OR path > ?1 ORDER BY path LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after.map(path_key), limit as i64], |r| {
            Ok((
                Stamp {
                    dev: r.get::<_, i64>(0)? as u64,
                    ino: r.get::<_, i64>(1)? as u64,
                    size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    ctime_ns: r.get(4)?,
                },
                r.get::<_, u8>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut files = Vec::new();
        for row in rows {
            let (stamp, depth, facts) = row?;
            files.push(CachedFile {
                stamp,
                depth: ReadDepth::from_u8(depth),
                facts: serde_json::from_str(&facts)?,
            });
        }
        Ok(files)
    }

    /// Calls `f` with the path of every cached file (path order).
    pub fn for_each_path(&self, mut f: impl FnMut(PathBuf)) -> Result<(), StateError> {
        let mut stmt = self.conn.prepare("SELECT path FROM files ORDER BY path")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(key_path(r.get(0)?));
        }
        Ok(())
    }

    /// The cached files under the folder `dir` (not `dir` itself).
    pub fn paths_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StateError> {
        let (lower, upper) = prefix_range(dir);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM files WHERE path >= ?1 AND path < ?2")?;
        let rows = stmt.query_map([&lower, &upper], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(key_path(row?));
        }
        Ok(out)
    }

    /// How many files are cached.
    pub fn file_count(&self) -> Result<u64, StateError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM files", [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// Starts a batch of changes, committed together.
    pub fn batch(&mut self, at: DateTime<Utc>) -> Result<Batch<'_>, StateError> {
        let limit = self.outbox_limit;
        let host = self.host.clone();
        let announcing = self.announcing;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let depth: i64 = tx.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(Batch {
            tx,
            limit,
            depth: depth.unsigned_abs(),
            at,
            host,
            announcing,
            outcome: BatchOutcome::default(),
            merged_once: false,
        })
    }

    /// Events in the outbox.
    pub fn outbox_depth(&self) -> Result<u64, StateError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// Violation changes waiting for room in the outbox (the difference between `findings`
    /// and `announced`).
    pub fn deferred(&self) -> Result<u64, StateError> {
        let n: i64 = self.conn.query_row(
            "SELECT (SELECT count(*) FROM findings f LEFT JOIN announced a USING (path, kind)
                     WHERE a.fingerprint IS NOT f.fingerprint)
                  + (SELECT count(*) FROM announced a LEFT JOIN findings f USING (path, kind)
                     WHERE f.path IS NULL)",
            [],
            |r| r.get(0),
        )?;
        Ok(n.unsigned_abs())
    }

    /// Queues every deferred violation change that fits now, after deliveries made room.
    pub fn reconcile(&mut self, at: DateTime<Utc>) -> Result<BatchOutcome, StateError> {
        let mut batch = self.batch(at)?;
        let mut paths: Vec<Vec<u8>> = Vec::new();
        {
            let mut stmt = batch.tx.prepare(
                "SELECT f.path FROM findings f LEFT JOIN announced a USING (path, kind)
                   WHERE a.fingerprint IS NOT f.fingerprint
                 UNION
                 SELECT a.path FROM announced a LEFT JOIN findings f USING (path, kind)
                   WHERE f.path IS NULL
                 ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            for row in rows {
                paths.push(row?);
            }
        }
        for p in paths {
            batch.announce(&p)?;
            if batch.outcome.deferred {
                break;
            }
        }
        batch.commit()
    }

    /// Queues a health event. A newer health event replaces every unsent older one; when even
    /// it does not fit, it is dropped and `false` returned.
    pub fn push_health(&mut self, health: &Health, at: DateTime<Utc>) -> Result<bool, StateError> {
        self.push_snapshot(EventBody::Health(health.clone()), at)
    }

    /// Per-asset counts of the cached files under `roots` (roots below another root count
    /// once), for a footprint: only assets with at least one file, by asset id.
    pub fn asset_counts(&self, roots: &[PathBuf]) -> Result<Vec<AssetFootprint>, StateError> {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT asset, count(*) FROM files
             WHERE asset IS NOT NULL AND path >= ?1 AND path < ?2 GROUP BY asset",
        )?;
        for root in roots {
            if roots.iter().any(|r| r != root && root.starts_with(r)) {
                continue;
            }
            let (lower, upper) = prefix_range(root);
            let rows = stmt.query_map([&lower, &upper], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (asset, n) = row?;
                *counts.entry(asset).or_default() += n.unsigned_abs();
            }
        }
        Ok(counts
            .into_iter()
            .filter(|(_, files)| *files > 0)
            .map(|(asset, files)| AssetFootprint { asset, files })
            .collect())
    }

    /// Queues a footprint. Like health, a newer footprint replaces every unsent older one;
    /// when even it does not fit, it is dropped and `false` returned.
    pub fn push_footprint(
        &mut self,
        footprint: &Footprint,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        self.push_snapshot(EventBody::Footprint(footprint.clone()), at)
    }

    /// Puts a snapshot event (health, footprint) into the outbox in place of unsent older ones
    /// of its type.
    fn push_snapshot(&mut self, body: EventBody, at: DateTime<Utc>) -> Result<bool, StateError> {
        let mut batch = self.batch(at)?;
        let replaced = batch.tx.execute(
            "DELETE FROM outbox WHERE type = ?1 AND seq IS NULL",
            [body.type_name()],
        )?;
        batch.depth = batch.depth.saturating_sub(replaced as u64);
        let queued = batch.push(&body, None)?;
        batch.commit()?;
        Ok(queued)
    }

    /// The next batch to send: the oldest events, numbering those that have no sequence number
    /// yet (durably, before they leave). Returns them in sequence order.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Event>, StateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows: Vec<(i64, Option<i64>, String, String)> = Vec::new();
        {
            let mut stmt =
                tx.prepare_cached("SELECT id, seq, at, body FROM outbox ORDER BY id LIMIT ?1")?;
            let found = stmt.query_map([max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            for row in found {
                rows.push(row?);
            }
        }
        let mut next: i64 =
            tx.query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
                r.get(0)
            })?;
        let mut events = Vec::with_capacity(rows.len());
        for (id, seq, at, body) in rows {
            let seq = match seq {
                Some(s) => s,
                None => {
                    tx.prepare_cached("UPDATE outbox SET seq = ?2 WHERE id = ?1")?
                        .execute((id, next))?;
                    next += 1;
                    next - 1
                }
            };
            events.push(Event {
                seq: u64::try_from(seq)
                    .map_err(|_| StateError::Corrupt(format!("sequence {seq}")))?,
                at: parse_time(&at)?,
                body: serde_json::from_str(&body)?,
            });
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'next_seq'", [next])?;
        tx.commit()?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// Deletes every event the collector acknowledged (`seq <= stored_through`); returns how
    /// many left the outbox.
    pub fn acknowledge(&mut self, stored_through: u64) -> Result<u64, StateError> {
        let through = i64::try_from(stored_through).unwrap_or(i64::MAX);
        let n = self.conn.execute(
            "DELETE FROM outbox WHERE seq IS NOT NULL AND seq <= ?1",
            [through],
        )?;
        Ok(n as u64)
    }

    /// The lowest sequence number still in the outbox, if any is numbered.
    pub fn lowest_pending_seq(&self) -> Result<Option<u64>, StateError> {
        let s: Option<i64> = self
            .conn
            .query_row("SELECT min(seq) FROM outbox", [], |r| r.get(0))?;
        Ok(s.map(i64::unsigned_abs))
    }

    /// Forgets every sequence number: for a new agent identity, whose numbers start at 1.
    pub fn restart_sequence(&mut self) -> Result<(), StateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("UPDATE outbox SET seq = NULL", [])?;
        tx.execute("UPDATE meta SET value = 1 WHERE key = 'next_seq'", [])?;
        tx.commit()?;
        Ok(())
    }

    /// How many violations are open on this host.
    pub fn open_violation_count(&self) -> Result<u64, StateError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// The open violations on this host, by path and kind.
    pub fn open_violations(&self) -> Result<Vec<OpenViolation>, StateError> {
        self.open_violations_of(None)
    }

    /// The open violations on the files of `owner` (every one's with `None`), by path and kind.
    pub fn open_violations_of(&self, owner: Option<u32>) -> Result<Vec<OpenViolation>, StateError> {
        let mut stmt = self.conn.prepare(
            "SELECT path, kind, severity, label, asset, department, rule, message, fix, owner,
                    opened_at
             FROM findings WHERE ?1 IS NULL OR owner = ?1 ORDER BY path, kind",
        )?;
        let rows = stmt.query_map([owner.map(i64::from)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, String>(10)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, kind, severity, label, asset, department, rule, message, fix, owner, at) =
                row?;
            out.push(OpenViolation {
                path: key_path(path),
                violation: ViolationRecord {
                    kind: parse_kind(&kind)?,
                    severity: severity.parse().map_err(StateError::Corrupt)?,
                    label,
                    asset,
                    department,
                    rule,
                    message,
                    fix,
                    owner: u32::try_from(owner)
                        .map_err(|_| StateError::Corrupt(format!("owner {owner}")))?,
                },
                opened_at: parse_time(&at)?,
            });
        }
        Ok(out)
    }
}

/// Changes committed together: file facts, findings and the events they cause.
#[derive(Debug)]
pub struct Batch<'c> {
    tx: Transaction<'c>,
    limit: u64,
    /// Rows in the outbox as far as this transaction knows (an upper bound: the uplink only
    /// deletes).
    depth: u64,
    at: DateTime<Utc>,
    host: String,
    announcing: bool,
    outcome: BatchOutcome,
    merged_once: bool,
}

impl Batch<'_> {
    /// Records a file's inspection, the asset it belongs to and its current violations;
    /// returns how its findings changed.
    pub fn record(
        &mut self,
        stamp: Stamp,
        depth: ReadDepth,
        facts: &FileFacts,
        evaluated: &Evaluated,
    ) -> Result<Vec<Change>, StateError> {
        let key = path_key(&facts.path);
        self.tx
            .prepare_cached(
                "INSERT INTO files (path, dev, ino, size, mtime_ns, ctime_ns, depth, facts, asset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (path) DO UPDATE SET dev = ?2, ino = ?3, size = ?4, mtime_ns = ?5,
                     ctime_ns = ?6, depth = ?7, facts = ?8, asset = ?9",
            )?
            .execute(params![
                key,
                stamp.dev as i64,
                stamp.ino as i64,
                stamp.size as i64,
                stamp.mtime_ns,
                stamp.ctime_ns,
                depth.as_u8(),
                serde_json::to_string(facts)?,
                evaluated.asset,
            ])?;
        self.set_findings(&facts.path, &evaluated.violations)
    }

    /// Records a cached file's evaluation under a new bundle or date: its asset and violations;
    /// returns how its findings changed.
    pub fn reevaluated(
        &mut self,
        path: &Path,
        evaluated: &Evaluated,
    ) -> Result<Vec<Change>, StateError> {
        self.tx
            .prepare_cached("UPDATE files SET asset = ?2 WHERE path = ?1 AND asset IS NOT ?2")?
            .execute(params![path_key(path), evaluated.asset])?;
        self.set_findings(path, &evaluated.violations)
    }

    /// Replaces a file's violations (after evaluating cached facts again); returns the changes.
    pub fn set_findings(
        &mut self,
        path: &Path,
        violations: &[ViolationRecord],
    ) -> Result<Vec<Change>, StateError> {
        let key = path_key(path);
        let old = self.findings_of(key)?;
        let mut changes = Vec::new();
        let mut changed = false;
        for (kind, ..) in &old {
            if !violations.iter().any(|v| v.kind == *kind) {
                self.tx
                    .prepare_cached("DELETE FROM findings WHERE path = ?1 AND kind = ?2")?
                    .execute(params![key, kind.as_str()])?;
                changes.push(Change::Resolved {
                    path: path.to_path_buf(),
                    kind: *kind,
                });
                changed = true;
            }
        }
        for v in violations {
            let fingerprint = v.fingerprint();
            let before = old.iter().find(|(k, ..)| *k == v.kind);
            if before
                .is_some_and(|(_, f, m, o)| *f == fingerprint && *m == v.message && *o == v.owner)
            {
                // Nothing to write: re-evaluating an unchanged file costs one read.
                continue;
            }
            if before.is_none() {
                changes.push(Change::Opened {
                    path: path.to_path_buf(),
                    violation: v.clone(),
                });
            }
            // Texts are refreshed whatever the fingerprint says: `warnings` shows the newest.
            self.tx
                .prepare_cached(
                    "INSERT INTO findings (path, kind, severity, label, asset, department, rule,
                         message, fix, owner, fingerprint, opened_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (path, kind) DO UPDATE SET severity = ?3, label = ?4, asset = ?5,
                         department = ?6, rule = ?7, message = ?8, fix = ?9, owner = ?10,
                         fingerprint = ?11",
                )?
                .execute(params![
                    key,
                    v.kind.as_str(),
                    v.severity.as_str(),
                    v.label,
                    v.asset,
                    v.department,
                    v.rule,
                    v.message,
                    v.fix,
                    i64::from(v.owner),
                    fingerprint,
                    time_text(self.at),
                ])?;
            if before.is_none_or(|(_, f, ..)| *f != fingerprint) {
                changed = true;
            }
        }
        if changed && self.announcing {
            self.announce(key)?;
        }
        Ok(changes)
    }

    /// Forgets a file that is gone (deleted, moved away, no longer watched): its violations
    /// resolve.
    pub fn forget(&mut self, path: &Path) -> Result<Vec<Change>, StateError> {
        let key = path_key(path);
        self.tx
            .prepare_cached("DELETE FROM files WHERE path = ?1")?
            .execute([key])?;
        self.set_findings(path, &[])
    }

    /// Forgets every file under the folder `dir` (not `dir` itself).
    pub fn forget_under(&mut self, dir: &Path) -> Result<Vec<Change>, StateError> {
        let (lower, upper) = prefix_range(dir);
        let mut paths = Vec::new();
        {
            let mut stmt = self.tx.prepare_cached(
                "SELECT path FROM files WHERE path >= ?1 AND path < ?2
                 UNION SELECT path FROM findings WHERE path >= ?1 AND path < ?2",
            )?;
            let rows = stmt.query_map([&lower, &upper], |r| r.get::<_, Vec<u8>>(0))?;
            for row in rows {
                paths.push(key_path(row?));
            }
        }
        let mut changes = Vec::new();
        for p in paths {
            changes.extend(self.forget(&p)?);
        }
        Ok(changes)
    }

    /// Commits everything.
    pub fn commit(self) -> Result<BatchOutcome, StateError> {
        self.tx.commit()?;
        Ok(self.outcome)
    }

    /// A file's findings as (kind, fingerprint, message, owner).
    fn findings_of(&self, key: &[u8]) -> Result<Vec<(Kind, String, String, u32)>, StateError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT kind, fingerprint, message, owner FROM findings WHERE path = ?1",
        )?;
        let rows = stmt.query_map([key], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, fingerprint, message, owner) = row?;
            out.push((
                parse_kind(&kind)?,
                fingerprint,
                message,
                u32::try_from(owner).unwrap_or(u32::MAX),
            ));
        }
        Ok(out)
    }

    /// Queues the events that bring `announced` for one path in line with `findings`, as far as
    /// the outbox has room; what does not fit stays deferred.
    fn announce(&mut self, key: &[u8]) -> Result<(), StateError> {
        let path = key_path(key.to_vec());
        let mut announced: Vec<(String, String)> = Vec::new();
        {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT kind, fingerprint FROM announced WHERE path = ?1")?;
            let rows = stmt.query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                announced.push(row?);
            }
        }
        let mut current: Vec<(ViolationRecord, String)> = Vec::new();
        {
            let mut stmt = self.tx.prepare_cached(
                "SELECT kind, severity, label, asset, department, rule, message, fix, owner,
                        fingerprint
                 FROM findings WHERE path = ?1",
            )?;
            let rows = stmt.query_map([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })?;
            for row in rows {
                let (kind, severity, label, asset, department, rule, message, fix, owner, fp) =
                    row?;
                current.push((
                    ViolationRecord {
                        kind: parse_kind(&kind)?,
                        severity: severity.parse().map_err(StateError::Corrupt)?,
                        label,
                        asset,
                        department,
                        rule,
                        message,
                        fix,
                        owner: u32::try_from(owner).unwrap_or(u32::MAX),
                    },
                    fp,
                ));
            }
        }
        for (kind, _) in &announced {
            let kind = parse_kind(kind)?;
            if current.iter().any(|(v, _)| v.kind == kind) {
                continue;
            }
            let body = EventBody::ViolationResolved {
                path: wire_path(&path),
                kind,
            };
            if !self.push(&body, Some((key, kind)))? {
                return Ok(());
            }
            self.tx
                .prepare_cached("DELETE FROM announced WHERE path = ?1 AND kind = ?2")?
                .execute(params![key, kind.as_str()])?;
        }
        for (v, fingerprint) in current {
            let same = announced
                .iter()
                .any(|(k, f)| k == v.kind.as_str() && *f == fingerprint);
            if same {
                continue;
            }
            let body = EventBody::ViolationOpened {
                path: wire_path(&path),
                kind: v.kind,
                severity: v.severity,
                label: v.label,
                asset: v.asset,
                department: v.department,
                rule: Some(v.rule),
                message: v.message,
                fix: v.fix,
                host: self.host.clone(),
            };
            if !self.push(&body, Some((key, v.kind)))? {
                return Ok(());
            }
            self.tx
                .prepare_cached(
                    "INSERT INTO announced (path, kind, fingerprint) VALUES (?1, ?2, ?3)
                     ON CONFLICT (path, kind) DO UPDATE SET fingerprint = ?3",
                )?
                .execute(params![key, v.kind.as_str(), fingerprint])?;
        }
        Ok(())
    }

    /// Puts an event into the outbox if it fits (merging unsent events once when it does not);
    /// returns whether it was queued.
    fn push(
        &mut self,
        body: &EventBody,
        violation: Option<(&[u8], Kind)>,
    ) -> Result<bool, StateError> {
        if self.depth >= self.limit && !self.merged_once {
            self.merged_once = true;
            let merged = self.merge_unsent()?;
            self.outcome.merged += merged;
            self.depth = self.depth.saturating_sub(merged);
        }
        if self.depth >= self.limit {
            if violation.is_some() {
                self.outcome.deferred = true;
            }
            return Ok(false);
        }
        let (path, kind) = match violation {
            Some((p, k)) => (Some(p), Some(k.as_str())),
            None => (None, None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO outbox (at, type, path, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                time_text(self.at),
                body.type_name(),
                path,
                kind,
                serde_json::to_string(body)?,
            ])?;
        self.depth += 1;
        self.outcome.queued += 1;
        Ok(true)
    }

    /// The overflow policy's merge: of each (path, kind)'s unsent events only the first and the
    /// last stay. Returns how many were removed.
    fn merge_unsent(&mut self) -> Result<u64, StateError> {
        let n = self.tx.execute(
            "DELETE FROM outbox WHERE seq IS NULL AND path IS NOT NULL AND id NOT IN (
                 SELECT min(id) FROM outbox WHERE seq IS NULL AND path IS NOT NULL
                   GROUP BY path, kind
                 UNION ALL
                 SELECT max(id) FROM outbox WHERE seq IS NULL AND path IS NOT NULL
                   GROUP BY path, kind)",
            [],
        )?;
        if n > 0 {
            tracing::warn!(
                merged = n,
                "outbox full: merged unsent events of the same violations"
            );
        }
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(n: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: n,
            ctime_ns: n,
        }
    }

    fn facts(path: &str) -> FileFacts {
        FileFacts {
            path: PathBuf::from(path),
            ..FileFacts::default()
        }
    }

    fn violation(kind: Kind, severity: Severity) -> ViolationRecord {
        ViolationRecord {
            kind,
            severity,
            label: Some("confidential".into()),
            asset: None,
            department: None,
            rule: "rules.forbidden: **/Downloads/**".into(),
            message: "in a forbidden location".into(),
            fix: "move it".into(),
            owner: 1000,
        }
    }

    fn open(dir: &Path, limit: u64) -> StateDb {
        let mut db = StateDb::open(dir, limit, false).unwrap();
        db.set_host("ws-1");
        db
    }

    fn record(
        db: &mut StateDb,
        path: &str,
        n: i64,
        found: &[ViolationRecord],
    ) -> (Vec<Change>, BatchOutcome) {
        let mut batch = db.batch(Utc::now()).unwrap();
        let evaluated = Evaluated {
            asset: None,
            violations: found.to_vec(),
        };
        let changes = batch
            .record(stamp(n), ReadDepth::Full, &facts(path), &evaluated)
            .unwrap();
        (changes, batch.commit().unwrap())
    }

    /// The outbox's events as (type, path, kind), oldest first, without numbering them.
    fn outbox(db: &StateDb) -> Vec<(String, Option<String>, Option<String>)> {
        let mut stmt = db
            .conn
            .prepare("SELECT type, CAST(path AS TEXT), kind FROM outbox ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn ev(t: &str, path: &str, kind: &str) -> (String, Option<String>, Option<String>) {
        (t.into(), Some(path.into()), Some(kind.into()))
    }

    #[test]
    fn findings_turn_into_events_once_across_rescans_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        let v = violation(Kind::Misplaced, Severity::High);
        let (changes, outcome) = record(&mut db, "/d/a.docx", 1, std::slice::from_ref(&v));
        assert_eq!(
            changes,
            vec![Change::Opened {
                path: "/d/a.docx".into(),
                violation: v.clone()
            }]
        );
        assert_eq!(outcome.queued, 1);
        // The same finding on a rescan (new stamp, same facts) and after a restart: nothing new.
        record(&mut db, "/d/a.docx", 2, std::slice::from_ref(&v));
        drop(db);
        let mut db = open(dir.path(), 1000);
        let (changes, outcome) = record(&mut db, "/d/a.docx", 3, std::slice::from_ref(&v));
        assert!(changes.is_empty());
        assert_eq!(outcome.queued, 0);
        assert_eq!(
            outbox(&db),
            vec![ev("violation_opened", "/d/a.docx", "misplaced")]
        );
        assert_eq!(
            db.cached_stamp(Path::new("/d/a.docx")).unwrap(),
            Some((stamp(3), ReadDepth::Full))
        );

        // A changed severity is announced again (details refresh), without a local change.
        let worse = violation(Kind::Misplaced, Severity::Critical);
        let (changes, outcome) = record(&mut db, "/d/a.docx", 4, &[worse]);
        assert!(changes.is_empty());
        assert_eq!(outcome.queued, 1);
        // A changed message alone is not (an expired asset's day count).
        let mut reworded = violation(Kind::Misplaced, Severity::Critical);
        reworded.message = "reworded".into();
        assert_eq!(record(&mut db, "/d/a.docx", 5, &[reworded]).1.queued, 0);
        assert_eq!(
            db.open_violations().unwrap()[0].violation.message,
            "reworded"
        );

        // Deleting the file resolves it.
        let mut batch = db.batch(Utc::now()).unwrap();
        let changes = batch.forget(Path::new("/d/a.docx")).unwrap();
        batch.commit().unwrap();
        assert_eq!(
            changes,
            vec![Change::Resolved {
                path: "/d/a.docx".into(),
                kind: Kind::Misplaced
            }]
        );
        assert_eq!(
            outbox(&db),
            vec![
                ev("violation_opened", "/d/a.docx", "misplaced"),
                ev("violation_opened", "/d/a.docx", "misplaced"),
                ev("violation_resolved", "/d/a.docx", "misplaced"),
            ]
        );
        assert!(db.open_violations().unwrap().is_empty());
        assert_eq!(db.file_count().unwrap(), 0);
        assert_eq!(db.deferred().unwrap(), 0);
    }

    #[test]
    fn an_opened_event_carries_everything_the_collector_shows() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        let mut v = violation(Kind::Expired, Severity::High);
        v.asset = Some("ACME".into());
        v.department = Some("Sales".into());
        record(&mut db, "/d/x.pdf", 1, &[v]);
        let events = db.next_batch(10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].body,
            EventBody::ViolationOpened {
                path: "/d/x.pdf".into(),
                kind: Kind::Expired,
                severity: Severity::High,
                label: Some("confidential".into()),
                asset: Some("ACME".into()),
                department: Some("Sales".into()),
                rule: Some("rules.forbidden: **/Downloads/**".into()),
                message: "in a forbidden location".into(),
                fix: "move it".into(),
                host: "ws-1".into(),
            }
        );
    }

    #[test]
    fn sequence_numbers_are_contiguous_durable_and_only_acknowledged_events_leave() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        for i in 0..5 {
            record(
                &mut db,
                &format!("/d/{i}"),
                1,
                &[violation(Kind::Misplaced, Severity::High)],
            );
        }
        let first = db.next_batch(3).unwrap();
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        // Sent again after a crash before the answer: the same numbers, the same events.
        drop(db);
        let mut db = open(dir.path(), 1000);
        let again = db.next_batch(3).unwrap();
        assert_eq!(again, first);
        // The collector stored 1..=2 only: 3 stays, 4 and 5 get numbered next.
        assert_eq!(db.acknowledge(2).unwrap(), 2);
        let next = db.next_batch(10).unwrap();
        assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(next[0], first[2]);
        assert_eq!(db.acknowledge(5).unwrap(), 3);
        assert_eq!(db.outbox_depth().unwrap(), 0);
        record(
            &mut db,
            "/d/new",
            1,
            &[violation(Kind::Misplaced, Severity::High)],
        );
        assert_eq!(db.next_batch(10).unwrap()[0].seq, 6);
        // A new identity numbers from 1 again.
        db.restart_sequence().unwrap();
        assert_eq!(db.next_batch(10).unwrap()[0].seq, 1);
    }

    #[test]
    fn health_events_replace_unsent_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        let health = |q| Health {
            version: "0.1.0".into(),
            queue_depth: q,
            ..Health::default()
        };
        assert!(db.push_health(&health(1), Utc::now()).unwrap());
        // Numbered (sent, unacknowledged) health is never touched.
        assert_eq!(db.next_batch(10).unwrap().len(), 1);
        assert!(db.push_health(&health(2), Utc::now()).unwrap());
        assert!(db.push_health(&health(3), Utc::now()).unwrap());
        let events = db.next_batch(10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].body, EventBody::Health(health(3)));
    }

    fn footprint(assets: &[(&str, u64)]) -> Footprint {
        Footprint {
            host: "ws-1".into(),
            roots: vec!["/d".into()],
            assets: assets
                .iter()
                .map(|(a, n)| AssetFootprint {
                    asset: (*a).into(),
                    files: *n,
                })
                .collect(),
        }
    }

    #[test]
    fn a_newer_footprint_replaces_an_unsent_older_one_and_a_full_outbox_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 3);
        assert!(db
            .push_footprint(&footprint(&[("A", 1)]), Utc::now())
            .unwrap());
        // Numbered (in flight) footprints stay; unsent ones are replaced, health is not.
        assert_eq!(db.next_batch(10).unwrap().len(), 1);
        assert!(db.push_health(&Health::default(), Utc::now()).unwrap());
        assert!(db
            .push_footprint(&footprint(&[("A", 2)]), Utc::now())
            .unwrap());
        assert!(db
            .push_footprint(&footprint(&[("A", 3)]), Utc::now())
            .unwrap());
        let events = db.next_batch(10).unwrap();
        let bodies: Vec<&EventBody> = events.iter().map(|e| &e.body).collect();
        assert_eq!(
            bodies,
            [
                &EventBody::Footprint(footprint(&[("A", 1)])),
                &EventBody::Health(Health::default()),
                &EventBody::Footprint(footprint(&[("A", 3)])),
            ]
        );
        // Full of numbered events: a footprint cannot replace any of them and is dropped.
        assert!(!db
            .push_footprint(&footprint(&[("A", 4)]), Utc::now())
            .unwrap());
        assert_eq!(db.outbox_depth().unwrap(), 3);
    }

    #[test]
    fn assets_are_counted_per_root_from_the_files_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        let mut batch = db.batch(Utc::now()).unwrap();
        for (path, asset) in [
            ("/srv/acme/a", Some("ACME")),
            ("/srv/acme/b", Some("ACME")),
            ("/srv/acme/sub/c", Some("ACME")),
            ("/srv/hr/d", Some("HR")),
            ("/srv/misc/e", None),
            ("/elsewhere/f", Some("ACME")),
        ] {
            let evaluated = Evaluated {
                asset: asset.map(str::to_owned),
                violations: Vec::new(),
            };
            batch
                .record(stamp(1), ReadDepth::Full, &facts(path), &evaluated)
                .unwrap();
        }
        batch.commit().unwrap();
        let counts = |db: &StateDb, roots: &[&str]| -> Vec<(String, u64)> {
            let roots: Vec<PathBuf> = roots.iter().map(PathBuf::from).collect();
            db.asset_counts(&roots)
                .unwrap()
                .into_iter()
                .map(|a| (a.asset, a.files))
                .collect()
        };
        assert_eq!(
            counts(&db, &["/srv"]),
            [("ACME".to_owned(), 3), ("HR".to_owned(), 1)]
        );
        // A root inside another counts once; `/srv/acme` is no prefix of `/srv/acmeX`.
        assert_eq!(
            counts(&db, &["/srv", "/srv/acme", "/elsewhere"]),
            [("ACME".to_owned(), 4), ("HR".to_owned(), 1)]
        );
        assert_eq!(counts(&db, &["/srv/acm"]), []);
        // A new bundle moves a file to another asset without reading it.
        let mut batch = db.batch(Utc::now()).unwrap();
        let moved = Evaluated {
            asset: Some("HR".into()),
            violations: Vec::new(),
        };
        batch.reevaluated(Path::new("/srv/acme/a"), &moved).unwrap();
        batch.commit().unwrap();
        assert_eq!(
            counts(&db, &["/srv"]),
            [("ACME".to_owned(), 2), ("HR".to_owned(), 2)]
        );
    }

    #[test]
    fn a_version_1_state_gains_the_asset_column_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(STATE_FILE)).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("PRAGMA user_version = 1;").unwrap();
            conn.execute(
                "INSERT INTO files (path, dev, ino, size, mtime_ns, ctime_ns, depth, facts)
                 VALUES (?1, 1, 2, 3, 4, 4, 2, ?2)",
                params![
                    b"/d/old".as_slice(),
                    serde_json::to_string(&facts("/d/old")).unwrap()
                ],
            )
            .unwrap();
        }
        let db = open(dir.path(), 1000);
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(db.file_count().unwrap(), 1);
        assert_eq!(db.asset_counts(&[PathBuf::from("/d")]).unwrap(), []);
    }

    #[test]
    fn a_full_outbox_merges_flapping_violations_then_defers_and_never_loses_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 6);
        let v = violation(Kind::Misplaced, Severity::High);
        // One event numbered (in flight) and never merged.
        record(&mut db, "/d/flap", 1, std::slice::from_ref(&v));
        assert_eq!(db.next_batch(1).unwrap().len(), 1);
        // The file flaps: resolved, opened, resolved, opened, resolved (5 unsent events).
        for n in 2..7 {
            let found = if n % 2 == 0 { vec![] } else { vec![v.clone()] };
            record(&mut db, "/d/flap", n, &found);
        }
        assert_eq!(db.outbox_depth().unwrap(), 6);
        // A new violation does not fit: the flapping file's unsent events merge to first and
        // last, which makes room.
        let (_, outcome) = record(&mut db, "/d/b", 1, std::slice::from_ref(&v));
        assert_eq!(
            (outcome.queued, outcome.merged, outcome.deferred),
            (1, 3, false)
        );
        assert_eq!(
            outbox(&db),
            vec![
                ev("violation_opened", "/d/flap", "misplaced"),
                ev("violation_resolved", "/d/flap", "misplaced"),
                ev("violation_resolved", "/d/flap", "misplaced"),
                ev("violation_opened", "/d/b", "misplaced"),
            ]
        );
        // Distinct violations cannot merge: once full, they are deferred, not dropped.
        for name in ["c", "d", "e", "f"] {
            record(&mut db, &format!("/d/{name}"), 1, std::slice::from_ref(&v));
        }
        assert_eq!(db.outbox_depth().unwrap(), 6);
        assert_eq!(db.deferred().unwrap(), 2);
        assert_eq!(db.open_violations().unwrap().len(), 5);
        // A health event that does not fit is dropped.
        assert!(!db.push_health(&Health::default(), Utc::now()).unwrap());
        // Deliveries make room; reconciling queues what was deferred, and nothing is missing.
        let sent = db.next_batch(6).unwrap();
        db.acknowledge(sent.last().unwrap().seq).unwrap();
        let outcome = db.reconcile(Utc::now()).unwrap();
        assert_eq!((outcome.queued, outcome.deferred), (2, false));
        assert_eq!(db.deferred().unwrap(), 0);
        let rest = db.next_batch(10).unwrap();
        let mut delivered: Vec<String> = sent
            .iter()
            .chain(&rest)
            .filter_map(|e| match &e.body {
                EventBody::ViolationOpened { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        delivered.sort();
        delivered.dedup();
        assert_eq!(
            delivered,
            ["/d/b", "/d/c", "/d/d", "/d/e", "/d/f", "/d/flap"]
        );
    }

    #[test]
    fn forgetting_a_folder_resolves_everything_under_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        let v = violation(Kind::Misplaced, Severity::High);
        for p in ["/d/sub/a", "/d/sub/deeper/b", "/d/sub.txt", "/d/subway/c"] {
            record(&mut db, p, 1, std::slice::from_ref(&v));
        }
        assert_eq!(
            db.paths_under(Path::new("/d/sub")).unwrap(),
            [PathBuf::from("/d/sub/a"), PathBuf::from("/d/sub/deeper/b")]
        );
        let mut batch = db.batch(Utc::now()).unwrap();
        let changes = batch.forget_under(Path::new("/d/sub")).unwrap();
        batch.commit().unwrap();
        assert_eq!(changes.len(), 2);
        let left: Vec<PathBuf> = db
            .open_violations()
            .unwrap()
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(
            left,
            [PathBuf::from("/d/sub.txt"), PathBuf::from("/d/subway/c")]
        );
    }

    #[test]
    fn local_only_state_announces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), 1000);
        db.set_announcing(false);
        let (changes, outcome) = record(
            &mut db,
            "/d/a",
            1,
            &[violation(Kind::Misplaced, Severity::High)],
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(outcome.queued, 0);
        assert_eq!(db.outbox_depth().unwrap(), 0);
    }
}
