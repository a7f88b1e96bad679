//! The fleet as managers see it: every enrolled agent with its last health report, and revoking
//! an agent as a recorded decision.

use super::audit::{append, AuditRecord};
use super::model::{Agent, Health};
use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior};

const AGENT_COLUMNS: &str =
    "id, hostname, enrolled_at, revoked_at, last_seen, version, health, contiguous_seq";

/// An agent row as stored, before its times and health report are checked.
struct RawAgent {
    id: String,
    hostname: String,
    enrolled_at: String,
    revoked_at: Option<String>,
    last_seen: Option<String>,
    version: Option<String>,
    health: Option<String>,
    contiguous_seq: i64,
}

impl RawAgent {
    /// Reads the columns in [`AGENT_COLUMNS`] order.
    fn read(row: &Row<'_>) -> rusqlite::Result<RawAgent> {
        Ok(RawAgent {
            id: row.get(0)?,
            hostname: row.get(1)?,
            enrolled_at: row.get(2)?,
            revoked_at: row.get(3)?,
            last_seen: row.get(4)?,
            version: row.get(5)?,
            health: row.get(6)?,
            contiguous_seq: row.get(7)?,
        })
    }

    fn check(self) -> Result<Agent, StoreError> {
        let time = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
        let health: Option<Health> = self
            .health
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        Ok(Agent {
            enrolled_at: parse_timestamp(&self.enrolled_at)?,
            revoked_at: time(self.revoked_at)?,
            last_seen: time(self.last_seen)?,
            contiguous_seq: u64::try_from(self.contiguous_seq).map_err(|_| {
                StoreError::Corrupt(format!("negative sequence {}", self.contiguous_seq))
            })?,
            id: self.id,
            hostname: self.hostname,
            version: self.version,
            health,
        })
    }
}

impl Agent {
    /// Whether the agent has gone quiet: not revoked, and nothing delivered (or, if it never
    /// delivered anything, no enrollment) for longer than `stale_after` before `now`. A revoked
    /// agent is expected to be silent and is never stale.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: TimeDelta) -> bool {
        if self.revoked_at.is_some() {
            return false;
        }
        let heard_from = self.last_seen.unwrap_or(self.enrolled_at);
        now.signed_duration_since(heard_from) > stale_after
    }
}

impl Store {
    /// Every enrolled agent (revoked ones included), ordered by host name, then id.
    pub fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents ORDER BY hostname, id"
        ))?;
        let rows = stmt.query_map([], RawAgent::read)?;
        let mut agents = Vec::new();
        for row in rows {
            agents.push(row?.check()?);
        }
        Ok(agents)
    }

    /// Revokes agent `id` as `actor` (its further requests are refused; its data stays) and
    /// records `agent.revoked` in the audit trail in the same transaction. Returns the agent
    /// afterwards. Revoking a revoked agent changes nothing, records nothing and is not an error.
    ///
    /// Refused with [`StoreError::UnknownAgent`] when no such agent is enrolled.
    pub fn revoke_agent_as(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Agent, StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let select = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1");
        let before = tx
            .query_row(&select, [id], RawAgent::read)
            .optional()?
            .ok_or_else(|| StoreError::UnknownAgent(id.to_owned()))?;
        if before.revoked_at.is_some() {
            return before.check();
        }
        tx.execute(
            "UPDATE agents SET revoked_at = ?2 WHERE id = ?1",
            (id, timestamp(now)),
        )?;
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor,
                action: "agent.revoked",
                subject: id,
                details: serde_json::json!({
                    "hostname": before.hostname,
                    "reason": reason,
                }),
            },
        )?;
        let after = tx.query_row(&select, [id], RawAgent::read)?;
        tx.commit()?;
        after.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewAgent;

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(minutes)
    }

    #[test]
    fn revoking_is_audited_once_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        for (id, host) in [("a2", "beta"), ("a1", "alpha")] {
            store
                .add_agent(&NewAgent {
                    id: id.into(),
                    hostname: host.into(),
                    secret_hash: "h".into(),
                    enrolled_at: at(0),
                })
                .unwrap();
        }
        let agent = store
            .revoke_agent_as("a2", "alice", Some("laptop lost"), at(5))
            .unwrap();
        assert_eq!(agent.revoked_at, Some(at(5)));
        // Again: unchanged, not audited twice.
        let again = store.revoke_agent_as("a2", "bob", None, at(9)).unwrap();
        assert_eq!(again.revoked_at, Some(at(5)));
        assert!(matches!(
            store.revoke_agent_as("nope", "alice", None, at(5)),
            Err(StoreError::UnknownAgent(id)) if id == "nope"
        ));
        let audit = store.audit_entries(0, 10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (
                audit[0].actor.as_str(),
                audit[0].action.as_str(),
                audit[0].subject.as_str()
            ),
            ("alice", "agent.revoked", "a2")
        );
        assert_eq!(
            audit[0].details,
            serde_json::json!({"hostname": "beta", "reason": "laptop lost"})
        );
        let listed: Vec<(String, bool)> = store
            .agents()
            .unwrap()
            .into_iter()
            .map(|a| (a.hostname, a.revoked_at.is_some()))
            .collect();
        assert_eq!(
            listed,
            [("alpha".to_owned(), false), ("beta".to_owned(), true)]
        );
    }

    #[test]
    fn staleness_counts_from_the_last_delivery_or_enrollment() {
        let agent = Agent {
            id: "a".into(),
            hostname: "h".into(),
            enrolled_at: at(0),
            revoked_at: None,
            last_seen: None,
            version: None,
            health: None,
            contiguous_seq: 0,
        };
        let hour = TimeDelta::hours(1);
        assert!(!agent.is_stale(at(60), hour));
        assert!(agent.is_stale(at(61), hour));
        let seen = Agent {
            last_seen: Some(at(30)),
            ..agent.clone()
        };
        assert!(!seen.is_stale(at(90), hour));
        assert!(seen.is_stale(at(91), hour));
        let revoked = Agent {
            revoked_at: Some(at(1)),
            ..agent
        };
        assert!(!revoked.is_stale(at(1000), hour));
    }
}
