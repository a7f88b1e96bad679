//! The audit trail: every decision taken on the server, hash-chained so that an edited, deleted
//! or cut-off entry is detected by [`Store::verify_audit`].
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} ‖ canonical(n, at, actor, action, subject,
//! details))`, with `hash_0` the empty string, where `canonical` is the JSON array of those six
//! values (serde_json writes it the same way every time). The newest id and hash are also kept in
//! `audit_head`, written in the same transaction, which catches entries removed from the end.
//!
//! Entries are appended inside the transaction of the change they record ([`append`]), so a
//! decision and its audit entry commit together or not at all.

use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, Utc};
use ring::digest;
use rusqlite::{OptionalExtension, Transaction};
use serde::Serialize;
use std::fmt::Write as _;

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a token's name, `cli` for the admin command line, `agent:<id>` or `system`.
    pub actor: &'a str,
    /// What, as a dotted verb: `token.created`, `agent.enrolled`, `violation.acknowledged`, …
    pub action: &'a str,
    /// What it was done to: a token id, agent id, violation id, `bundle:<version>`, …
    pub subject: &'a str,
    /// Anything else worth keeping (a reason, a role, an expiry), as a JSON object.
    pub details: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub id: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Details (JSON object).
    pub details: serde_json::Value,
    /// This entry's chain hash (hex).
    pub hash: String,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: u64,
    /// The first problem found, if any; `None` means the chain is intact.
    pub problem: Option<AuditProblem>,
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The entry at which the chain stops holding (for a cut-off end: the first missing id).
    pub entry: u64,
    /// What is wrong, for a person.
    pub reason: String,
}

/// Appends `record` inside `tx` and returns its id. Call it in the transaction of the change it
/// records.
pub(crate) fn append(tx: &Transaction<'_>, record: &AuditRecord<'_>) -> Result<u64, StoreError> {
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT last_id, hash FROM audit_head WHERE one = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (last_id, prev_hash) = head.unwrap_or((0, String::new()));
    let id = last_id + 1;
    let at = timestamp(record.at);
    let details = serde_json::to_string(&record.details)?;
    let hash = chain_hash(
        &prev_hash,
        id,
        &at,
        record.actor,
        record.action,
        record.subject,
        &details,
    )?;
    tx.prepare_cached(
        "INSERT INTO audit_log (id, at, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute((
        id,
        &at,
        record.actor,
        record.action,
        record.subject,
        &details,
        &prev_hash,
        &hash,
    ))?;
    tx.prepare_cached(
        "INSERT INTO audit_head (one, last_id, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, hash = excluded.hash",
    )?
    .execute((id, &hash))?;
    Ok(id.unsigned_abs())
}

fn chain_hash(
    prev_hash: &str,
    id: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> Result<String, StoreError> {
    let canonical = serde_json::to_vec(&(id, at, actor, action, subject, details))?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(&canonical);
    let mut hex = String::with_capacity(64);
    for b in ctx.finish().as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

impl Store {
    /// Records a decision on its own (for changes that have no transaction of their own in the
    /// store, e.g. a token issued by the CLI).
    pub fn audit(&self, record: &AuditRecord<'_>) -> Result<u64, StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id = append(&tx, record)?;
        tx.commit()?;
        Ok(id)
    }

    /// Entries after `after` (0 for the start), oldest first, at most `limit`.
    pub fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(
            "SELECT id, at, actor, action, subject, details, hash FROM audit_log
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map((i64::try_from(after).unwrap_or(i64::MAX), limit), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, at, actor, action, subject, details, hash) = row?;
            entries.push(AuditEntry {
                id: id.unsigned_abs(),
                at: parse_timestamp(&at)?,
                actor,
                action,
                subject,
                details: serde_json::from_str(&details)?,
                hash,
            });
        }
        Ok(entries)
    }

    /// Walks the whole chain and reports the first entry that does not hold: an edited field, a
    /// deleted or inserted entry, or entries cut off the end.
    pub fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare(
            "SELECT id, at, actor, action, subject, details, prev_hash, hash
             FROM audit_log ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_id: i64 = 1;
        let mut prev = String::new();
        let mut checked = 0u64;
        let broken = |entry: i64, reason: String| AuditProblem {
            entry: entry.unsigned_abs(),
            reason,
        };
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if id != expected_id {
                return Ok(AuditVerification {
                    entries: checked,
                    problem: Some(broken(
                        expected_id,
                        format!("entry {expected_id} is missing (next stored entry is {id})"),
                    )),
                });
            }
            let stored_prev: String = row.get(6)?;
            let stored_hash: String = row.get(7)?;
            if stored_prev != prev {
                return Ok(AuditVerification {
                    entries: checked,
                    problem: Some(broken(
                        id,
                        "its link to the previous entry does not match that entry's hash".into(),
                    )),
                });
            }
            let computed = chain_hash(
                &prev,
                id,
                &row.get::<_, String>(1)?,
                &row.get::<_, String>(2)?,
                &row.get::<_, String>(3)?,
                &row.get::<_, String>(4)?,
                &row.get::<_, String>(5)?,
            )?;
            if computed != stored_hash {
                return Ok(AuditVerification {
                    entries: checked,
                    problem: Some(broken(
                        id,
                        "its contents were changed after it was written".into(),
                    )),
                });
            }
            prev = stored_hash;
            checked += 1;
            expected_id += 1;
        }
        let head: Option<(i64, String)> = reader
            .query_row(
                "SELECT last_id, hash FROM audit_head WHERE one = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let last = expected_id - 1;
        let problem = match head {
            None if last == 0 => None,
            None => Some(broken(last, "the chain's head record is missing".into())),
            Some((head_id, _)) if head_id > last => Some(broken(
                last + 1,
                format!(
                    "entries {} to {head_id} were removed from the end",
                    last + 1
                ),
            )),
            Some((head_id, head_hash)) if head_id != last || head_hash != prev => Some(broken(
                last,
                "the chain's head record does not match the last entry".into(),
            )),
            Some(_) => None,
        };
        Ok(AuditVerification {
            entries: checked,
            problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn record(n: u32) -> AuditRecord<'static> {
        AuditRecord {
            at: "2026-05-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
                + chrono::Duration::seconds(n.into()),
            actor: "alice",
            action: "violation.acknowledged",
            subject: "v1",
            details: serde_json::json!({"reason": format!("seen {n}")}),
        }
    }

    fn store_with(n: u32) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        for i in 1..=n {
            assert_eq!(store.audit(&record(i)).unwrap(), u64::from(i));
        }
        (dir, store)
    }

    /// Tampering as someone with the database file would: the triggers dropped first.
    fn tamper(dir: &tempfile::TempDir, sql: &str) {
        let conn = Connection::open(dir.path().join("a.db")).unwrap();
        conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        conn.execute_batch(sql).unwrap();
    }

    #[test]
    fn an_intact_chain_verifies_and_reads_back() {
        let (_dir, store) = store_with(5);
        let v = store.verify_audit().unwrap();
        assert_eq!((v.entries, v.problem), (5, None));
        let entries = store.audit_entries(2, 10).unwrap();
        assert_eq!(entries.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(entries[0].details["reason"], "seen 3");
        let (_d, empty) = store_with(0);
        assert_eq!(empty.verify_audit().unwrap().problem, None);
    }

    #[test]
    fn the_server_cannot_edit_or_delete_entries() {
        let (_dir, store) = store_with(2);
        let writer = store.writer();
        for sql in [
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log WHERE id = 1",
        ] {
            let err = writer.execute(sql, []).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
    }

    #[test]
    fn edits_deletions_and_truncation_are_detected() {
        let cases = [
            ("UPDATE audit_log SET actor = 'mallory' WHERE id = 3", 3),
            (
                "UPDATE audit_log SET details = '{\"reason\":\"other\"}' WHERE id = 2",
                2,
            ),
            ("DELETE FROM audit_log WHERE id = 2", 2),
            ("DELETE FROM audit_log WHERE id >= 4", 4),
            ("DELETE FROM audit_log; DELETE FROM audit_head;", 0),
        ];
        for (sql, at) in cases {
            let (dir, store) = store_with(5);
            tamper(&dir, sql);
            let v = store.verify_audit().unwrap();
            if at == 0 {
                // Everything gone, head included: nothing left to contradict. The collector's
                // other tables (tokens, agents, bundle versions) still show that decisions were
                // taken; an external anchor (see `audit verify --expect-head`) closes this gap.
                assert_eq!(v.problem, None);
                continue;
            }
            let problem = v.problem.unwrap_or_else(|| panic!("undetected: {sql}"));
            assert_eq!(problem.entry, at, "{sql}: {}", problem.reason);
        }
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_its_head() {
        // Rewriting an entry and recomputing the hash of that entry only still breaks the link
        // of the next one.
        let (dir, store) = store_with(3);
        let prev: String = store
            .reader()
            .query_row("SELECT prev_hash FROM audit_log WHERE id = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        let forged = chain_hash(
            &prev,
            2,
            "2026-05-01T12:00:02.000000Z",
            "mallory",
            "violation.acknowledged",
            "v1",
            "{\"reason\":\"seen 2\"}",
        )
        .unwrap();
        tamper(
            &dir,
            &format!("UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE id = 2"),
        );
        let problem = store.verify_audit().unwrap().problem.unwrap();
        assert_eq!(problem.entry, 3, "{}", problem.reason);
    }
}
