//! People's API tokens: who may read and decide what.
//!
//! A token is a 256-bit random string (prefixed `ilt_` so that secret scanners recognise it)
//! shown once at creation; the database keeps only its hash, which is also the lookup key. Each
//! token has a role — `admin` (everything), `manager` (read and act, only within its
//! departments), `viewer` (read only, optionally within departments) — and a name recorded as
//! the actor of every decision taken with it. Creating and revoking tokens is audited.

use super::audit::{append, AuditRecord};
use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, Utc};
use infoledger_policies::wire::signing::{generate_secret, hash_secret};
use ring::rand::SecureRandom as _;
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: tokens, agents, ledger and policy, every department.
    Admin,
    /// Reads and acts on violations of its departments only.
    Manager,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The name used in the database, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role `{other}` (expected admin, manager or viewer)"
            )),
        }
    }
}

/// An authenticated person (or script) making a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The token's public id (`tok-…`).
    pub token_id: String,
    /// The token's name: the actor recorded for this caller's decisions.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
    /// The departments the caller is limited to; `None` means every department.
    pub departments: Option<Vec<String>>,
}

impl Caller {
    /// The department scope to pass to the store's queries and actions.
    pub fn scope(&self) -> Option<&[String]> {
        self.departments.as_deref()
    }

    /// Whether the caller may change violations (acknowledge, except, reopen, comment).
    pub fn may_act(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Manager)
    }

    /// Whether the caller may administer the collector (tokens, agents, ledger, policy).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Public id.
    pub id: String,
    /// Name (the actor).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Departments (managers; optional for viewers; empty for everyone else).
    pub departments: Vec<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken<'a> {
    /// Who will use it; recorded as the actor of their decisions.
    pub name: &'a str,
    /// Role.
    pub role: Role,
    /// Departments; required (at least one) for managers, optional for viewers, refused for
    /// admins (an admin sees everything, and a scope that does not restrict would mislead).
    pub departments: &'a [String],
    /// When it stops working; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A freshly issued token: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// Public id.
    pub id: String,
    /// The bearer secret.
    pub token: String,
}

/// The longest token name accepted.
const MAX_NAME_CHARS: usize = 100;
/// The prefix of every API token.
pub const TOKEN_PREFIX: &str = "ilt_";

/// The caller a stored token row stands for: its role, and its departments as a scope (`None`
/// for admins and for viewers without departments).
pub(super) fn caller_from_row(
    token_id: String,
    name: String,
    role: &str,
    departments: &str,
) -> Result<Caller, StoreError> {
    let role: Role = role.parse().map_err(StoreError::Corrupt)?;
    let departments: Vec<String> = serde_json::from_str(departments)?;
    let departments = match role {
        Role::Admin => None,
        Role::Manager => Some(departments),
        Role::Viewer if departments.is_empty() => None,
        Role::Viewer => Some(departments),
    };
    Ok(Caller {
        token_id,
        name,
        role,
        departments,
    })
}

impl Store {
    /// Issues an API token and records it in the audit trail as done by `actor`.
    pub fn create_api_token(
        &self,
        new: &NewApiToken<'_>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, StoreError> {
        let name = new.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.contains(char::is_control)
        {
            return Err(StoreError::InvalidInput {
                field: "name",
                problem: format!(
                    "must be 1-{MAX_NAME_CHARS} characters without control characters"
                ),
            });
        }
        let mut departments: Vec<String> = new
            .departments
            .iter()
            .map(|d| d.trim().to_owned())
            .collect();
        departments.sort();
        departments.dedup();
        if departments.iter().any(String::is_empty) {
            return Err(StoreError::InvalidInput {
                field: "department",
                problem: "must not be blank".into(),
            });
        }
        match (new.role, departments.is_empty()) {
            (Role::Manager, true) => {
                return Err(StoreError::InvalidInput {
                    field: "department",
                    problem: "a manager token needs at least one department".into(),
                })
            }
            (Role::Admin, false) => {
                return Err(StoreError::InvalidInput {
                    field: "department",
                    problem: "an admin token covers every department; give none".into(),
                })
            }
            _ => {}
        }
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(StoreError::InvalidInput {
                field: "expires",
                problem: "must be in the future".into(),
            });
        }
        let rng = ring::rand::SystemRandom::new();
        let secret = generate_secret(&rng).map_err(|_| StoreError::Random)?;
        let token = format!("{TOKEN_PREFIX}{secret}");
        let mut raw_id = [0u8; 8];
        rng.fill(&mut raw_id).map_err(|_| StoreError::Random)?;
        let mut id = String::from("tok-");
        for b in raw_id {
            // Writing to a String cannot fail.
            let _ = write!(id, "{b:02x}");
        }

        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO api_tokens (id, token_hash, name, role, departments, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                &id,
                hash_secret(&token),
                name,
                new.role.as_str(),
                serde_json::to_string(&departments)?,
                timestamp(now),
                new.expires_at.map(timestamp),
            ),
        )?;
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor,
                action: "token.created",
                subject: &id,
                details: serde_json::json!({
                    "name": name,
                    "role": new.role.as_str(),
                    "departments": departments,
                    "expires_at": new.expires_at,
                }),
            },
        )?;
        tx.commit()?;
        Ok(IssuedToken { id, token })
    }

    /// The caller a bearer token stands for, if the token exists, is not revoked and has not
    /// expired at `now`. One answer (`None`) for all failures, so a caller learns nothing about
    /// which tokens exist.
    pub fn authenticate_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Caller>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let reader = self.reader();
        let row: Option<(String, String, String, String)> = reader
            .prepare_cached(
                "SELECT id, name, role, departments FROM api_tokens
                 WHERE token_hash = ?1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row((hash_secret(token), timestamp(now)), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        let Some((token_id, name, role, departments)) = row else {
            return Ok(None);
        };
        caller_from_row(token_id, name, &role, &departments).map(Some)
    }

    /// Every token, newest first.
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(
            "SELECT id, name, role, departments, created_at, expires_at, revoked_at
             FROM api_tokens ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (id, name, role, departments, created, expires, revoked) = row?;
            tokens.push(ApiToken {
                id,
                name,
                role: role.parse().map_err(StoreError::Corrupt)?,
                departments: serde_json::from_str(&departments)?,
                created_at: parse_timestamp(&created)?,
                expires_at: expires.as_deref().map(parse_timestamp).transpose()?,
                revoked_at: revoked.as_deref().map(parse_timestamp).transpose()?,
            });
        }
        Ok(tokens)
    }

    /// Revokes a token (it stops working at once) and audits it. Revoking a revoked token
    /// changes nothing and is not an error.
    pub fn revoke_api_token(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let revoked: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked_at FROM api_tokens WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        match revoked {
            None => return Err(StoreError::TokenNotFound(id.to_owned())),
            Some(Some(_)) => return Ok(()),
            Some(None) => {}
        }
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1",
            (id, timestamp(now)),
        )?;
        append(
            &tx,
            &AuditRecord {
                at: now,
                actor,
                action: "token.revoked",
                subject: id,
                details: serde_json::json!({}),
            },
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    fn now() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    fn issue(store: &Store, role: Role, departments: &[&str]) -> Result<IssuedToken, StoreError> {
        let departments: Vec<String> = departments.iter().map(|d| (*d).to_owned()).collect();
        store.create_api_token(
            &NewApiToken {
                name: "alice",
                role,
                departments: &departments,
                expires_at: Some(now() + chrono::Duration::days(1)),
            },
            "cli",
            now(),
        )
    }

    #[test]
    fn a_token_authenticates_as_its_role_and_scope_until_it_expires_or_is_revoked() {
        let (_dir, store) = store();
        let issued = issue(&store, Role::Manager, &["Sales", "HR", "Sales"]).unwrap();
        assert!(issued.token.starts_with("ilt_"));
        let caller = store
            .authenticate_token(&issued.token, now())
            .unwrap()
            .unwrap();
        assert_eq!(caller.role, Role::Manager);
        assert_eq!(caller.name, "alice");
        assert_eq!(
            caller.scope(),
            Some(&["HR".to_owned(), "Sales".to_owned()][..])
        );
        assert!(caller.may_act() && !caller.is_admin());

        let later = now() + chrono::Duration::days(2);
        assert_eq!(
            store.authenticate_token(&issued.token, later).unwrap(),
            None
        );
        assert_eq!(store.authenticate_token("ilt_nope", now()).unwrap(), None);
        assert_eq!(store.authenticate_token("nope", now()).unwrap(), None);

        store.revoke_api_token(&issued.id, "cli", now()).unwrap();
        store.revoke_api_token(&issued.id, "cli", now()).unwrap();
        assert_eq!(
            store.authenticate_token(&issued.token, now()).unwrap(),
            None
        );
        assert!(matches!(
            store.revoke_api_token("tok-missing", "cli", now()),
            Err(StoreError::TokenNotFound(_))
        ));

        let listed = store.api_tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
        let audit = store.audit_entries(0, 10).unwrap();
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["token.created", "token.revoked"]);
        assert_eq!(audit[0].subject, issued.id);
        assert_eq!(audit[0].details["role"], "manager");
    }

    #[test]
    fn roles_and_scopes_are_checked_at_issue() {
        let (_dir, store) = store();
        assert!(issue(&store, Role::Manager, &[]).is_err());
        assert!(issue(&store, Role::Admin, &["HR"]).is_err());
        assert!(issue(&store, Role::Manager, &[" "]).is_err());
        let admin = issue(&store, Role::Admin, &[]).unwrap();
        let viewer = issue(&store, Role::Viewer, &[]).unwrap();
        let scoped = issue(&store, Role::Viewer, &["HR"]).unwrap();
        let get = |t: &IssuedToken| store.authenticate_token(&t.token, now()).unwrap().unwrap();
        assert_eq!(get(&admin).scope(), None);
        assert!(get(&admin).is_admin());
        assert_eq!(get(&viewer).scope(), None);
        assert!(!get(&viewer).may_act());
        assert_eq!(get(&scoped).scope(), Some(&["HR".to_owned()][..]));
        let past = NewApiToken {
            name: "x",
            role: Role::Viewer,
            departments: &[],
            expires_at: Some(now()),
        };
        assert!(store.create_api_token(&past, "cli", now()).is_err());
        assert_eq!("manager".parse::<Role>(), Ok(Role::Manager));
        assert!("root".parse::<Role>().is_err());
    }
}
