//! Dashboard sign-in sessions: a browser that signed in with an API token holds a random session
//! secret in a cookie; the database keeps only the secret's hash, the token the session acts as,
//! and the anti-forgery token its forms carry.
//!
//! A session is valid while it has been used within the idle limit, is younger than its
//! lifetime, and its API token is still valid (not revoked, not expired): revoking a token ends
//! its sessions at once, and the caller's role and departments are read from the token on every
//! request, never copied into the session. Signing in and out is recorded in the audit trail
//! (`session.signed_in`, `session.signed_out`).

use super::audit::{append, AuditRecord};
use super::tokens::caller_from_row;
use super::{parse_timestamp, timestamp, Caller, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use infoledger_policies::wire::signing::{generate_secret, hash_secret};
use rusqlite::{OptionalExtension, TransactionBehavior};

/// How long a session stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Unused for this long, a session ends.
    pub idle: TimeDelta,
    /// A session ends this long after sign-in, however busy.
    pub lifetime: TimeDelta,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            idle: TimeDelta::hours(12),
            lifetime: TimeDelta::days(7),
        }
    }
}

/// A session just created: its secret goes into the cookie and is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie value.
    pub secret: String,
    /// The anti-forgery token of its forms.
    pub csrf: String,
    /// Who signed in.
    pub caller: Caller,
}

/// A valid session, as a request finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who it acts as: the API token's role and departments as they are now.
    pub caller: Caller,
    /// The anti-forgery token its forms must carry.
    pub csrf: String,
    /// When it signed in.
    pub created_at: DateTime<Utc>,
}

/// A session's last use is written at most this often, so reading pages does not turn every
/// request into a write.
const TOUCH_AFTER: TimeDelta = TimeDelta::minutes(1);

/// The longest secret looked up; anything longer is not one of ours.
const MAX_SECRET_CHARS: usize = 100;

impl Store {
    /// Signs in with API token `token` at `now`: a new session acting as that token, or `None`
    /// when the token is not valid (one answer for unknown, revoked and expired tokens). Sessions
    /// past `limits` are purged on the way.
    pub fn create_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
        limits: SessionLimits,
    ) -> Result<Option<NewSession>, StoreError> {
        let Some(caller) = self.authenticate_token(token, now)? else {
            return Ok(None);
        };
        let rng = ring::rand::SystemRandom::new();
        let secret = generate_secret(&rng).map_err(|_| StoreError::Random)?;
        let csrf = generate_secret(&rng).map_err(|_| StoreError::Random)?;
        let at = timestamp(now);
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (idle_cutoff, lifetime_cutoff) = cutoffs(now, limits);
        tx.execute(
            "DELETE FROM dashboard_sessions WHERE last_seen_at <= ?1 OR created_at <= ?2",
            (&idle_cutoff, &lifetime_cutoff),
        )?;
        tx.execute(
            "INSERT INTO dashboard_sessions (secret_hash, token_id, csrf, created_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            (hash_secret(&secret), &caller.token_id, &csrf, &at),
        )?;
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor: &caller.name,
                action: "session.signed_in",
                subject: &caller.token_id,
                details: serde_json::json!({ "via": "dashboard" }),
            },
        )?;
        tx.commit()?;
        Ok(Some(NewSession {
            secret,
            csrf,
            caller,
        }))
    }

    /// The session whose cookie holds `secret`, if it is valid at `now` under `limits` and its
    /// token still is; marks it used.
    pub fn session(
        &self,
        secret: &str,
        now: DateTime<Utc>,
        limits: SessionLimits,
    ) -> Result<Option<Session>, StoreError> {
        if secret.is_empty() || secret.len() > MAX_SECRET_CHARS {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let (idle_cutoff, lifetime_cutoff) = cutoffs(now, limits);
        let row = self
            .reader()
            .prepare_cached(
                "SELECT t.id, t.name, t.role, t.departments, s.csrf, s.created_at, s.last_seen_at
                 FROM dashboard_sessions s JOIN api_tokens t ON t.id = s.token_id
                 WHERE s.secret_hash = ?1 AND s.last_seen_at > ?2 AND s.created_at > ?3
                   AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?4)",
            )?
            .query_row(
                (&hash, &idle_cutoff, &lifetime_cutoff, timestamp(now)),
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((token_id, name, role, departments, csrf, created, seen)) = row else {
            return Ok(None);
        };
        if parse_timestamp(&seen)? + TOUCH_AFTER <= now {
            self.writer().execute(
                "UPDATE dashboard_sessions SET last_seen_at = ?2
                 WHERE secret_hash = ?1 AND last_seen_at < ?2",
                (&hash, timestamp(now)),
            )?;
        }
        Ok(Some(Session {
            caller: caller_from_row(token_id, name, &role, &departments)?,
            csrf,
            created_at: parse_timestamp(&created)?,
        }))
    }

    /// Signs the session with this secret out; `false` when there was none.
    pub fn end_session(&self, secret: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if secret.is_empty() || secret.len() > MAX_SECRET_CHARS {
            return Ok(false);
        }
        let hash = hash_secret(secret);
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let owner: Option<(String, String)> = tx
            .query_row(
                "SELECT t.id, t.name FROM dashboard_sessions s JOIN api_tokens t
                 ON t.id = s.token_id WHERE s.secret_hash = ?1",
                [&hash],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((token_id, name)) = owner else {
            return Ok(false);
        };
        tx.execute(
            "DELETE FROM dashboard_sessions WHERE secret_hash = ?1",
            [&hash],
        )?;
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor: &name,
                action: "session.signed_out",
                subject: &token_id,
                details: serde_json::json!({ "via": "dashboard" }),
            },
        )?;
        tx.commit()?;
        Ok(true)
    }
}

/// The stored times at or before which a session has been idle too long, or lived too long.
fn cutoffs(now: DateTime<Utc>, limits: SessionLimits) -> (String, String) {
    (
        timestamp(now - limits.idle),
        timestamp(now - limits.lifetime),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewApiToken, Role};

    fn now() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    fn setup(role: Role, departments: &[&str]) -> (tempfile::TempDir, Store, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let departments: Vec<String> = departments.iter().map(|d| (*d).to_owned()).collect();
        let issued = store
            .create_api_token(
                &NewApiToken {
                    name: "alice",
                    role,
                    departments: &departments,
                    expires_at: Some(now() + TimeDelta::days(30)),
                },
                "cli",
                now(),
            )
            .unwrap();
        (dir, store, issued.token, issued.id)
    }

    #[test]
    fn a_session_acts_as_its_token_until_it_idles_out() {
        let (_dir, store, token, token_id) = setup(Role::Manager, &["HR"]);
        let limits = SessionLimits::default();
        assert_eq!(
            store.create_session("ilt_nope", now(), limits).unwrap(),
            None
        );
        let new = store
            .create_session(&token, now(), limits)
            .unwrap()
            .unwrap();
        assert_eq!(new.caller.token_id, token_id);
        assert_ne!(new.secret, new.csrf);

        let later = now() + TimeDelta::hours(11);
        let found = store.session(&new.secret, later, limits).unwrap().unwrap();
        assert_eq!(found.caller.scope(), Some(&["HR".to_owned()][..]));
        assert_eq!(found.csrf, new.csrf);
        assert_eq!(found.created_at, now());
        // Used at +11 h, so still valid at +22 h; unused since, gone at +23 h 1 s.
        let busy = now() + TimeDelta::hours(22);
        assert!(store.session(&new.secret, busy, limits).unwrap().is_some());
        let idle = busy + TimeDelta::hours(12) + TimeDelta::seconds(1);
        assert_eq!(store.session(&new.secret, idle, limits).unwrap(), None);
        assert_eq!(store.session("", now(), limits).unwrap(), None);
        assert_eq!(store.session("other", now(), limits).unwrap(), None);
    }

    #[test]
    fn a_session_ends_with_its_lifetime_its_token_or_sign_out() {
        let (_dir, store, token, token_id) = setup(Role::Admin, &[]);
        let limits = SessionLimits {
            idle: TimeDelta::hours(1),
            lifetime: TimeDelta::hours(2),
        };
        let new = store
            .create_session(&token, now(), limits)
            .unwrap()
            .unwrap();
        for minutes in [50, 100] {
            let at = now() + TimeDelta::minutes(minutes);
            assert!(store.session(&new.secret, at, limits).unwrap().is_some());
        }
        let at = now() + TimeDelta::minutes(121);
        assert_eq!(store.session(&new.secret, at, limits).unwrap(), None);

        let second = store
            .create_session(&token, now(), limits)
            .unwrap()
            .unwrap();
        store.revoke_api_token(&token_id, "cli", now()).unwrap();
        assert_eq!(store.session(&second.secret, now(), limits).unwrap(), None);

        let (_dir, store, token, _) = setup(Role::Viewer, &[]);
        let third = store
            .create_session(&token, now(), limits)
            .unwrap()
            .unwrap();
        assert!(store.end_session(&third.secret, now()).unwrap());
        assert!(!store.end_session(&third.secret, now()).unwrap());
        assert_eq!(store.session(&third.secret, now(), limits).unwrap(), None);
        let actions: Vec<String> = store
            .audit_entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["token.created", "session.signed_in", "session.signed_out"]
        );
    }

    #[test]
    fn signing_in_purges_expired_sessions() {
        let (_dir, store, token, _) = setup(Role::Admin, &[]);
        let limits = SessionLimits::default();
        store
            .create_session(&token, now(), limits)
            .unwrap()
            .unwrap();
        let later = now() + TimeDelta::days(1);
        store
            .create_session(&token, later, limits)
            .unwrap()
            .unwrap();
        let count: i64 = store
            .reader()
            .query_row("SELECT count(*) FROM dashboard_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }
}
