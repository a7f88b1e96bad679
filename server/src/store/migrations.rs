//! Embedded, versioned schema migrations, applied in order when the store opens.
//!
//! Migration N (1-based) is `MIGRATIONS[N - 1]`. Each runs in its own transaction together with
//! the `schema_version` row that records it, so a crash leaves the database at N - 1 or N, never
//! in between. Released migrations are never edited; a change is a new migration.

use super::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The schema, one step per entry.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: agents, the event log and violations with their history.
    r#"
    CREATE TABLE agents (
        id             TEXT PRIMARY KEY,
        hostname       TEXT NOT NULL,
        secret_hash    TEXT NOT NULL,
        enrolled_at    TEXT NOT NULL,
        revoked_at     TEXT,
        last_seen      TEXT,
        version        TEXT,
        health         TEXT,               -- JSON: the last health report
        contiguous_seq INTEGER NOT NULL DEFAULT 0  -- every event 1..=this is stored and applied
    ) STRICT;

    CREATE TABLE events (
        agent_id    TEXT NOT NULL REFERENCES agents(id),
        seq         INTEGER NOT NULL CHECK (seq > 0),
        received_at TEXT NOT NULL,
        kind        TEXT NOT NULL,          -- the event's type tag
        payload     TEXT NOT NULL,          -- JSON: the whole event as the agent sent it
        PRIMARY KEY (agent_id, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE violations (
        id             TEXT PRIMARY KEY,    -- hex SHA-256 of (agent, path, kind)
        agent_id       TEXT NOT NULL REFERENCES agents(id),
        host           TEXT NOT NULL,
        path           TEXT NOT NULL,
        kind           TEXT NOT NULL,
        severity       TEXT NOT NULL,
        label          TEXT,
        asset          TEXT,
        department     TEXT,
        rule           TEXT,
        message        TEXT NOT NULL,
        fix            TEXT NOT NULL,
        status         TEXT NOT NULL
            CHECK (status IN ('open', 'acknowledged', 'excepted', 'resolved')),
        excepted_until TEXT,
        opened_at      TEXT NOT NULL,
        resolved_at    TEXT,
        updated_at     TEXT NOT NULL
    ) STRICT;
    -- The review queue's order and cursor.
    CREATE INDEX violations_by_opened ON violations (opened_at, id);
    -- Department-scoped queues and the heatmap.
    CREATE INDEX violations_by_department ON violations (department, opened_at, id);
    CREATE INDEX violations_by_status ON violations (status, department, severity);

    CREATE TABLE violation_history (
        id           INTEGER PRIMARY KEY,   -- insertion order is the history's order
        violation_id TEXT NOT NULL REFERENCES violations(id),
        at           TEXT NOT NULL,
        actor        TEXT NOT NULL,
        action       TEXT NOT NULL,
        from_status  TEXT,
        to_status    TEXT NOT NULL,
        reason       TEXT
    ) STRICT;
    CREATE INDEX violation_history_by_violation ON violation_history (violation_id, id);
    "#,
    // 2: enrollment tokens. Only a hash of each token is kept (`wire::signing::hash_secret`), which
    // is also the lookup key. `uses_left` NULL means unlimited; `expires_at` NULL means never.
    r#"
    CREATE TABLE enroll_tokens (
        token_hash TEXT PRIMARY KEY,
        uses_left  INTEGER CHECK (uses_left IS NULL OR uses_left >= 0),
        expires_at TEXT,
        created_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 3: people's API tokens, the hash-chained audit trail, and the bundle's versions.
    r#"
    CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,       -- public handle (`tok-…`), shown in lists and audit
        token_hash  TEXT NOT NULL UNIQUE,   -- wire::signing::hash_secret of the bearer token
        name        TEXT NOT NULL,          -- who uses it: the actor recorded for its actions
        role        TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
        departments TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings; managers only
        created_at  TEXT NOT NULL,
        expires_at  TEXT,
        revoked_at  TEXT
    ) STRICT;

    -- Append-only: every row carries the SHA-256 of its predecessor's hash and its own fields.
    CREATE TABLE audit_log (
        id        INTEGER PRIMARY KEY,      -- 1, 2, 3, … without gaps
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        details   TEXT NOT NULL,            -- JSON object
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    ) STRICT;
    -- The chain's head, written in the same transaction as each entry, so that cutting entries
    -- off the end is detected as well as editing or deleting them inside the chain.
    CREATE TABLE audit_head (
        one     INTEGER PRIMARY KEY CHECK (one = 1),
        last_id INTEGER NOT NULL,
        hash    TEXT NOT NULL
    ) STRICT;
    -- The server itself never changes or removes an entry; these make an accidental attempt fail
    -- loudly. (Someone with the database file can drop them: `audit verify` is what detects that.)
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

    -- Every version of the bundle agents receive; the newest row is the current bundle.
    CREATE TABLE bundle_versions (
        version     INTEGER PRIMARY KEY CHECK (version > 0),
        issued_at   TEXT NOT NULL,
        actor       TEXT NOT NULL,
        change      TEXT NOT NULL,          -- what changed: `policy`, `ledger` or `both`
        policy_name TEXT NOT NULL,
        policy_text TEXT NOT NULL,
        ledger_name TEXT NOT NULL,
        ledger_text TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: indexes for the manager API's other orders and for remediation figures. The severity
    // index is on the same rank expression the queries order by (`query::SEVERITY_RANK`), which
    // is what lets SQLite use it.
    r#"
    CREATE INDEX violations_by_updated ON violations (updated_at, id);
    CREATE INDEX violations_by_severity ON violations (
        (CASE severity WHEN 'info' THEN 0 WHEN 'low' THEN 1 WHEN 'medium' THEN 2
                       WHEN 'high' THEN 3 WHEN 'critical' THEN 4 END),
        opened_at, id);
    CREATE INDEX violations_by_resolved ON violations (resolved_at) WHERE resolved_at IS NOT NULL;
    "#,
    // 5: server-side rules: escalation, the webhook delivery queue, and ledger drift.
    r#"
    -- When the violation's current open period outlived its severity's SLA; an escalation older
    -- than `opened_at` belongs to an earlier open period.
    ALTER TABLE violations ADD COLUMN escalated_at TEXT;
    CREATE INDEX violations_unescalated ON violations (severity, opened_at)
        WHERE status IN ('open', 'acknowledged');

    -- Notifications waiting to be POSTed to the webhook, kept until delivered or given up, so a
    -- restart loses none. `dedup` makes enqueueing idempotent.
    CREATE TABLE webhook_deliveries (
        id              INTEGER PRIMARY KEY,
        dedup           TEXT NOT NULL UNIQUE,    -- event ':' violation id ':' opened_at
        event           TEXT NOT NULL CHECK (event IN ('critical_opened', 'escalated')),
        violation_id    TEXT NOT NULL,
        payload         TEXT NOT NULL,           -- JSON: the violation as it was when enqueued
        created_at      TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error      TEXT,
        delivered_at    TEXT,
        failed_at       TEXT                     -- retries exhausted
    ) STRICT;
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
        WHERE delivered_at IS NULL AND failed_at IS NULL;
    -- How far the notifier has read `violation_history` (its high-water mark).
    CREATE TABLE webhook_marks (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- Each agent's latest footprint (applied in sequence order by ingest).
    CREATE TABLE footprints (
        agent_id TEXT PRIMARY KEY REFERENCES agents(id),
        seq      INTEGER NOT NULL,
        at       TEXT NOT NULL,
        host     TEXT NOT NULL,
        roots    TEXT NOT NULL,                  -- JSON array of strings
        assets   TEXT NOT NULL                   -- JSON object: asset id -> file count
    ) STRICT, WITHOUT ROWID;
    -- Since when an asset is known, and when any footprint last saw files of it.
    CREATE TABLE asset_presence (
        asset           TEXT PRIMARY KEY,
        first_listed_at TEXT,                    -- first bundle version that listed it
        last_seen_at    TEXT                     -- newest footprint with files of it
    ) STRICT, WITHOUT ROWID;
    -- Ledger drift findings with their life cycle (open -> resolved when the condition clears).
    CREATE TABLE drift (
        id          TEXT PRIMARY KEY,            -- hex SHA-256 of (asset, condition, host)
        asset       TEXT NOT NULL,
        department  TEXT NOT NULL,
        condition   TEXT NOT NULL CHECK (condition IN ('empty', 'foreign-host')),
        host        TEXT,                        -- foreign-host: where the files were seen
        files       INTEGER NOT NULL,
        message     TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
        opened_at   TEXT NOT NULL,
        resolved_at TEXT,
        updated_at  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX drift_by_department ON drift (department, status);
    "#,
    // 6: violation counts per (department, severity, status), kept by triggers in the same
    // transaction as every change of a violation row, so the heatmap and `/metrics` read a few
    // dozen rows instead of counting every violation (a million rows took ~100 ms). Triggers,
    // not application code, so that every writer (ingest, managers' actions, expiry, a manual
    // fix) keeps them right. A cell whose count falls to 0 stays, with n = 0.
    r#"
    CREATE TABLE violation_counts (
        department TEXT,                    -- NULL: violations without a department
        severity   TEXT NOT NULL,
        status     TEXT NOT NULL,
        n          INTEGER NOT NULL CHECK (n >= 0)
    ) STRICT;
    -- One row per cell (the triggers look up with IS, so NULL departments share one row too).
    CREATE UNIQUE INDEX violation_counts_by_cell ON violation_counts (status, severity, department);

    CREATE TRIGGER violation_counts_insert AFTER INSERT ON violations BEGIN
        INSERT INTO violation_counts (department, severity, status, n)
            SELECT new.department, new.severity, new.status, 0
            WHERE NOT EXISTS (SELECT 1 FROM violation_counts WHERE status = new.status
                AND severity = new.severity AND department IS new.department);
        UPDATE violation_counts SET n = n + 1 WHERE status = new.status
            AND severity = new.severity AND department IS new.department;
    END;
    CREATE TRIGGER violation_counts_delete AFTER DELETE ON violations BEGIN
        UPDATE violation_counts SET n = n - 1 WHERE status = old.status
            AND severity = old.severity AND department IS old.department;
    END;
    CREATE TRIGGER violation_counts_update AFTER UPDATE OF department, severity, status
        ON violations
        WHEN old.status IS NOT new.status OR old.severity IS NOT new.severity
            OR old.department IS NOT new.department
    BEGIN
        UPDATE violation_counts SET n = n - 1 WHERE status = old.status
            AND severity = old.severity AND department IS old.department;
        INSERT INTO violation_counts (department, severity, status, n)
            SELECT new.department, new.severity, new.status, 0
            WHERE NOT EXISTS (SELECT 1 FROM violation_counts WHERE status = new.status
                AND severity = new.severity AND department IS new.department);
        UPDATE violation_counts SET n = n + 1 WHERE status = new.status
            AND severity = new.severity AND department IS new.department;
    END;

    INSERT INTO violation_counts (department, severity, status, n)
        SELECT department, severity, status, count(*) FROM violations
        GROUP BY department, severity, status;
    "#,
    // 7: dashboard sign-in sessions, covering indexes for the dashboard's aggregates (trend,
    // remediation by month, unresolved violations by asset, department, severity and status,
    // escalations), so that none of them reads table rows, and the review queue's two orders
    // within one status, so that its first page reads its rows in order instead of sorting every
    // violation of that status.
    r#"
    -- A signed-in browser: the cookie holds a random secret, the row only its hash. The session
    -- acts as its API token, which must still be valid on every request.
    CREATE TABLE dashboard_sessions (
        secret_hash  TEXT PRIMARY KEY,           -- wire::signing::hash_secret of the cookie value
        token_id     TEXT NOT NULL REFERENCES api_tokens(id),
        csrf         TEXT NOT NULL,              -- the forms' anti-forgery token
        created_at   TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX dashboard_sessions_by_last_seen ON dashboard_sessions (last_seen_at);
    CREATE INDEX dashboard_sessions_by_token ON dashboard_sessions (token_id);

    -- Violations opened, and resolved, per day or month, severity and department. `status` is a
    -- column of the second although resolved_at implies it: SQLite reads only an index's columns,
    -- not its condition, when it decides whether the index covers a query.
    CREATE INDEX violations_opened_trend ON violations (opened_at, department, severity);
    CREATE INDEX violations_resolved_trend
        ON violations (resolved_at, department, severity, opened_at, status)
        WHERE resolved_at IS NOT NULL;
    -- Unresolved violations by asset, department, severity and status, and which of them
    -- outlived their SLA: one pass gives the heatmap, the counts per asset and the overdue ones.
    CREATE INDEX violations_unresolved
        ON violations (asset, department, severity, status, escalated_at, opened_at)
        WHERE status IN ('open', 'acknowledged', 'excepted');
    -- Unresolved violations that outlived their SLA, newest escalation first.
    CREATE INDEX violations_escalated ON violations (escalated_at, opened_at, department, status)
        WHERE escalated_at IS NOT NULL AND status IN ('open', 'acknowledged');
    -- The review queue within one status, newest first and by severity (the rank expression of
    -- `query::SEVERITY_RANK`, as in migration 4).
    CREATE INDEX violations_by_status_opened ON violations (status, opened_at, id);
    CREATE INDEX violations_by_status_severity ON violations (
        status,
        (CASE severity WHEN 'info' THEN 0 WHEN 'low' THEN 1 WHEN 'medium' THEN 2
                       WHEN 'high' THEN 3 WHEN 'critical' THEN 4 END),
        opened_at, id);
    "#,
];

/// Brings the database up to the newest schema; a no-op when it already is.
///
/// Returns the schema version afterwards. A database written by a newer server is refused
/// rather than guessed at.
pub(crate) fn run(conn: &mut Connection) -> Result<u32, StoreError> {
    apply(conn, MIGRATIONS)
}

fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<u32, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
        ) STRICT;",
    )?;
    let known = u32::try_from(migrations.len()).expect("fewer than 2^32 migrations");
    let mut current = current_version(conn)?;
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in (1..=known).zip(migrations).skip(current as usize) {
        // IMMEDIATE: a second process opening the same file waits instead of racing us.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-check inside the lock: another opener may have migrated meanwhile.
        if current_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (version, super::timestamp(chrono::Utc::now())),
        )?;
        tx.commit()?;
        current = version;
    }
    Ok(current.max(current_version(conn)?))
}

/// The newest applied migration, 0 for an empty database.
pub(crate) fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: Option<u32> =
        conn.query_row("SELECT max(version) FROM schema_version", [], |row| {
            row.get(0)
        })?;
    Ok(version.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(conn: &Connection) -> Vec<(u32, String)> {
        let mut stmt = conn
            .prepare("SELECT version, applied_at FROM schema_version ORDER BY version")
            .unwrap();
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrations_apply_once_and_rerunning_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(run(&mut conn).unwrap() as usize, MIGRATIONS.len());
        let first = applied(&conn);
        assert_eq!(first.len(), MIGRATIONS.len());
        assert_eq!(run(&mut conn).unwrap() as usize, MIGRATIONS.len());
        assert_eq!(applied(&conn), first);
    }

    #[test]
    fn the_counts_migration_counts_the_violations_already_stored() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut conn, &MIGRATIONS[..5]).unwrap(), 5);
        conn.execute_batch(
            "INSERT INTO agents (id, hostname, secret_hash, enrolled_at) VALUES ('a', 'h', 'x', 't');
             INSERT INTO violations (id, agent_id, host, path, kind, severity, department, message,
                 fix, status, opened_at, updated_at)
             VALUES ('1', 'a', 'h', '/1', 'misplaced', 'high', 'hr', 'm', 'f', 'open', 't', 't'),
                    ('2', 'a', 'h', '/2', 'misplaced', 'high', 'hr', 'm', 'f', 'open', 't', 't'),
                    ('3', 'a', 'h', '/3', 'misplaced', 'low', NULL, 'm', 'f', 'resolved', 't', 't');",
        )
        .unwrap();
        assert_eq!(run(&mut conn).unwrap() as usize, MIGRATIONS.len());
        let mut stmt = conn
            .prepare("SELECT department, severity, status, n FROM violation_counts ORDER BY n")
            .unwrap();
        let rows: Vec<(Option<String>, String, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (None, "low".into(), "resolved".into(), 1),
                (Some("hr".into()), "high".into(), "open".into(), 2)
            ]
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, 'later')",
            [MIGRATIONS.len() + 1],
        )
        .unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn a_failing_migration_leaves_no_trace() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE one (x INTEGER);",
            "CREATE TABLE half (x INTEGER); SELECT * FROM missing;",
        ];
        assert!(apply(&mut conn, &steps).is_err());
        assert_eq!(current_version(&conn).unwrap(), 1);
        let exists = |name: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .unwrap()
        };
        assert_eq!(exists("one"), 1);
        assert_eq!(exists("half"), 0);
    }
}
