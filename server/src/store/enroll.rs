//! Enrollment: admin-issued tokens that agents trade for an identity.
//!
//! A token is a 256-bit random string shown once; the database keeps only its hash
//! (`wire::signing::hash_secret`), so a copy of the database cannot enroll anyone. Consuming a use
//! and adding the agent happen in one writer transaction: two agents racing for the last use of a
//! single-use token cannot both get in, and a failed insert gives the use back.

use super::audit::{append, AuditRecord};
use super::model::NewAgent;
use super::{timestamp, Store, StoreError};
use chrono::{DateTime, Utc};
use infoledger_policies::wire::signing::{generate_secret, hash_secret};
use rusqlite::TransactionBehavior;

impl Store {
    /// Issues an enrollment token good for `uses` enrollments (unlimited when `None`) until
    /// `expires` (forever when `None`). Returns the token; only its hash is stored. Audited as
    /// done by `cli`, the only place tokens are issued from.
    pub fn create_enroll_token(
        &self,
        uses: Option<u32>,
        expires: Option<DateTime<Utc>>,
    ) -> Result<String, StoreError> {
        if uses == Some(0) {
            return Err(StoreError::ZeroUses);
        }
        let token =
            generate_secret(&ring::rand::SystemRandom::new()).map_err(|_| StoreError::Random)?;
        let now = Utc::now();
        let hash = hash_secret(&token);
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO enroll_tokens (token_hash, uses_left, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            (&hash, uses, expires.map(timestamp), timestamp(now)),
        )?;
        // The audit names the token by a prefix of its hash: enough to tell tokens apart,
        // useless for enrolling.
        let subject = format!("enroll-token:{}", hash.get(3..15).unwrap_or(&hash));
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor: "cli",
                action: "enroll_token.created",
                subject: &subject,
                details: serde_json::json!({ "uses": uses, "expires_at": expires }),
            },
        )?;
        tx.commit()?;
        Ok(token)
    }

    /// Enrolls `agent` with `token` at `now`: consumes one use of the token and adds the agent
    /// (with its reported `version`) in one transaction.
    ///
    /// The caller chooses the agent's id and computes its `secret_hash`, because the signing
    /// secret is derived outside the store (see `api::keys`). Refused with
    /// [`StoreError::EnrollTokenInvalid`] when the token is unknown, expired at `now` or used up;
    /// nothing changes then.
    pub fn enroll(
        &self,
        token: &str,
        agent: &NewAgent,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Timestamps have a fixed width, so comparing their text compares the times.
        let consumed = tx.execute(
            "UPDATE enroll_tokens SET uses_left = uses_left - 1
             WHERE token_hash = ?1
               AND (uses_left IS NULL OR uses_left > 0)
               AND (expires_at IS NULL OR expires_at > ?2)",
            (hash_secret(token), timestamp(now)),
        )?;
        if consumed == 0 {
            return Err(StoreError::EnrollTokenInvalid);
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO agents (id, hostname, secret_hash, enrolled_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                &agent.id,
                &agent.hostname,
                &agent.secret_hash,
                timestamp(agent.enrolled_at),
                version,
            ),
        )?;
        if inserted == 0 {
            // Dropping the transaction rolls the consumed use back.
            return Err(StoreError::DuplicateAgent(agent.id.clone()));
        }
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor: &format!("agent:{}", agent.id),
                action: "agent.enrolled",
                subject: &agent.id,
                details: serde_json::json!({ "hostname": agent.hostname, "version": version }),
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A trivial read that proves the database answers (for health checks).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.reader()
            .query_row("SELECT count(*) FROM schema_version", [], |row| {
                row.get::<_, i64>(0)
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn agent(id: &str) -> NewAgent {
        NewAgent {
            id: id.into(),
            hostname: "h".into(),
            secret_hash: "v1:x".into(),
            enrolled_at: Utc::now(),
        }
    }

    #[test]
    fn tokens_are_stored_hashed_and_uses_run_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let token = store.create_enroll_token(Some(2), None).unwrap();
        let stored: String = store
            .reader()
            .query_row("SELECT token_hash FROM enroll_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash_secret(&token));
        assert!(!stored.contains(&token));

        let now = Utc::now();
        store.enroll(&token, &agent("a1"), "1.0", now).unwrap();
        // A duplicate id fails and gives the use back.
        assert!(matches!(
            store.enroll(&token, &agent("a1"), "1.0", now),
            Err(StoreError::DuplicateAgent(_))
        ));
        store.enroll(&token, &agent("a2"), "1.0", now).unwrap();
        assert!(matches!(
            store.enroll(&token, &agent("a3"), "1.0", now),
            Err(StoreError::EnrollTokenInvalid)
        ));
        assert_eq!(
            store.agent("a2").unwrap().unwrap().version.as_deref(),
            Some("1.0")
        );
        assert!(store.agent("a3").unwrap().is_none());
    }

    #[test]
    fn expiry_is_exclusive_and_zero_uses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let until = Utc::now() + Duration::hours(1);
        let token = store.create_enroll_token(None, Some(until)).unwrap();
        assert!(matches!(
            store.enroll(&token, &agent("late"), "1", until),
            Err(StoreError::EnrollTokenInvalid)
        ));
        let just_before = until - Duration::microseconds(1);
        store
            .enroll(&token, &agent("ok"), "1", just_before)
            .unwrap();
        assert!(matches!(
            store.create_enroll_token(Some(0), None),
            Err(StoreError::ZeroUses)
        ));
        assert!(matches!(
            store.enroll("no-such-token", &agent("x"), "1", just_before),
            Err(StoreError::EnrollTokenInvalid)
        ));
    }
}
