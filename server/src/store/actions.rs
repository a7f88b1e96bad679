//! Manager actions on violations (acknowledge, except until a date, reopen, comment) and the
//! expiry of exceptions whose date has passed.
//!
//! Each action is one writer transaction that reads the violation's status, checks the
//! transition, updates the row, appends one `violation_history` row and one audit entry
//! (`violation.acknowledged`, `violation.excepted`, `violation.reopened`, `violation.commented`),
//! so an action is recorded completely or not at all, and a refused action writes nothing. The department restriction is
//! part of the lookup: a violation outside the caller's departments is "not found", exactly like
//! one that does not exist, so a scoped manager cannot probe other departments' ids.
//!
//! Managers and agents share the status: a manager's `acknowledged` or `excepted` survives the
//! agent re-reporting the problem (see `ingest`), and a fix observed by the agent resolves the
//! violation whatever a manager decided, keeping both in the history.

use super::audit::{append, AuditRecord};
use super::model::{HistoryEntry, Violation, ViolationStatus};
use super::query::read_violation;
use super::{timestamp, Store, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

/// The longest reason or comment the store accepts, in characters.
const MAX_TEXT_CHARS: usize = 4000;
/// The longest actor name the store accepts, in characters.
const MAX_ACTOR_CHARS: usize = 200;
/// Who is recorded for changes the server makes by itself.
const SYSTEM_ACTOR: &str = "system";
/// The prefix of the actor recorded for agents' observations (see `ingest`).
const AGENT_ACTOR_PREFIX: &str = "agent:";

/// What a manager does to a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// "I have seen it."
    Acknowledge,
    /// "It may stay until this date."
    Except { until: DateTime<Utc> },
    /// Withdraw an acknowledgement or exception.
    Reopen,
    /// A note; the status stays.
    Comment,
}

impl Action {
    /// The name recorded in the history's `action` column.
    fn recorded_as(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledged",
            Action::Except { .. } => "excepted",
            Action::Reopen => "reopened",
            Action::Comment => "commented",
        }
    }

    /// The action recorded in the audit trail.
    fn audited_as(self) -> &'static str {
        match self {
            Action::Acknowledge => "violation.acknowledged",
            Action::Except { .. } => "violation.excepted",
            Action::Reopen => "violation.reopened",
            Action::Comment => "violation.commented",
        }
    }

    /// The verb used in [`StoreError::InvalidTransition`].
    fn verb(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Except { .. } => "except",
            Action::Reopen => "reopen",
            Action::Comment => "comment on",
        }
    }

    /// The status after this action on a violation in `from`; `None` when it does not apply.
    ///
    /// A resolved violation takes no status change from a manager: the agent observed the fix,
    /// and the agent alone reopens it by observing the problem again. A manager reopening it
    /// would leave it open for good, since the agent has nothing left to resolve. Excepting an
    /// excepted violation renews the exception with a new date and reason.
    fn target(self, from: ViolationStatus) -> Option<ViolationStatus> {
        use ViolationStatus::{Acknowledged, Excepted, Open};
        match (self, from) {
            (Action::Acknowledge, Open) => Some(Acknowledged),
            (Action::Except { .. }, Open | Acknowledged | Excepted) => Some(Excepted),
            (Action::Reopen, Acknowledged | Excepted) => Some(Open),
            (Action::Comment, status) => Some(status),
            _ => None,
        }
    }

    /// The `excepted_until` the row carries afterwards.
    fn excepted_until(self) -> Option<DateTime<Utc>> {
        match self {
            Action::Except { until } => Some(until),
            _ => None,
        }
    }
}

/// A manager's decision on a violation, as the API receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerAction<'a> {
    /// "I have seen it", optionally saying why or what happens next.
    Acknowledge {
        /// Optional note.
        reason: Option<&'a str>,
    },
    /// "It may stay until this time", for a reason.
    Except {
        /// When the exception ends (must be after `now`).
        until: DateTime<Utc>,
        /// Why.
        reason: &'a str,
    },
    /// Withdraw an acknowledgement or exception, for a reason.
    Reopen {
        /// Why.
        reason: &'a str,
    },
    /// A note in the history; the status stays.
    Comment {
        /// The note.
        text: &'a str,
    },
}

/// What an applied action left behind: the violation as it is now and the history row added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decided {
    /// The violation after the action.
    pub violation: Violation,
    /// The history entry the action appended.
    pub entry: HistoryEntry,
}

/// One checked manager action, ready to apply.
struct Decision<'a> {
    id: &'a str,
    actor: &'a str,
    action: Action,
    reason: Option<&'a str>,
    now: DateTime<Utc>,
}

impl Store {
    /// Applies one manager action to violation `id` as `actor`, within `departments`, and
    /// records it in the violation's history and the audit trail, in one transaction.
    ///
    /// Refused, writing nothing, with [`StoreError::ViolationNotFound`] (also for a violation
    /// outside `departments`), [`StoreError::InvalidTransition`] when the action does not apply
    /// to the current status (see the module doc), and [`StoreError::InvalidInput`] for a blank
    /// or oversized text, a reserved actor name, or an exception that does not end after `now`.
    pub fn act(
        &self,
        id: &str,
        actor: &str,
        action: &ManagerAction<'_>,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<Decided, StoreError> {
        let decision = Decision::check(id, actor, action, now)?;
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let decided = decide(&tx, &decision, departments)?;
        tx.commit()?;
        Ok(decided)
    }

    /// Acknowledges several violations in one transaction, answering one outcome per id in the
    /// order given. An id that is not found or not `open` gets its error and changes nothing;
    /// the others are acknowledged regardless (a repeated id finds itself acknowledged already).
    /// Only a failure of the database itself fails the whole call, and then nothing is written.
    pub fn acknowledge_many(
        &self,
        ids: &[String],
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<Vec<Result<Decided, StoreError>>, StoreError> {
        let action = ManagerAction::Acknowledge { reason };
        // Input errors are the same for every id: refuse the call before touching anything.
        Decision::check("", actor, &action, now)?;
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let decision = Decision::check(id, actor, &action, now)?;
            match decide(&tx, &decision, departments) {
                Ok(decided) => outcomes.push(Ok(decided)),
                Err(
                    e @ (StoreError::ViolationNotFound(_) | StoreError::InvalidTransition { .. }),
                ) => {
                    outcomes.push(Err(e));
                }
                Err(other) => return Err(other),
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }

    /// Acknowledges an open violation: a manager has seen it.
    ///
    /// Refused with [`StoreError::InvalidTransition`] unless the violation is `open`.
    pub fn acknowledge(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<HistoryEntry, StoreError> {
        let action = ManagerAction::Acknowledge { reason };
        Ok(self.act(id, actor, &action, now, departments)?.entry)
    }

    /// Accepts an unresolved violation until `until`, for a reason; [`Store::expire_exceptions`]
    /// reopens it once that time has passed. Excepting an excepted violation renews it.
    ///
    /// Refused with [`StoreError::InvalidInput`] for a blank reason or an `until` not after
    /// `now`, and with [`StoreError::InvalidTransition`] for a resolved violation.
    pub fn except(
        &self,
        id: &str,
        actor: &str,
        until: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<HistoryEntry, StoreError> {
        let action = ManagerAction::Except { until, reason };
        Ok(self.act(id, actor, &action, now, departments)?.entry)
    }

    /// Withdraws an acknowledgement or exception: the violation is `open` again.
    ///
    /// The reason is required because this undoes another manager's recorded decision. Refused
    /// with [`StoreError::InvalidTransition`] for an open or resolved violation.
    pub fn reopen(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<HistoryEntry, StoreError> {
        let action = ManagerAction::Reopen { reason };
        Ok(self.act(id, actor, &action, now, departments)?.entry)
    }

    /// Adds a comment to a violation's history, in any status; the status stays.
    pub fn comment(
        &self,
        id: &str,
        actor: &str,
        text: &str,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<HistoryEntry, StoreError> {
        let action = ManagerAction::Comment { text };
        Ok(self.act(id, actor, &action, now, departments)?.entry)
    }

    /// Reopens every exception whose `excepted_until` is at or before `now`, recording each as
    /// `exception-expired` by `system`. Returns how many expired.
    pub fn expire_exceptions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = timestamp(now);
        // Both statements select the same rows: the IMMEDIATE transaction holds the write lock,
        // so nothing changes in between. The history keeps the date that ran out, which the
        // row itself forgets.
        let recorded = tx.execute(
            "INSERT INTO violation_history
                 (violation_id, at, actor, action, from_status, to_status, reason)
             SELECT id, ?1, ?2, 'exception-expired', 'excepted', 'open',
                    'exception until ' || excepted_until || ' expired'
             FROM violations
             WHERE status = 'excepted' AND excepted_until <= ?1
             ORDER BY id",
            (&now, SYSTEM_ACTOR),
        )?;
        let expired = tx.execute(
            "UPDATE violations SET status = 'open', excepted_until = NULL, updated_at = ?1
             WHERE status = 'excepted' AND excepted_until <= ?1",
            [&now],
        )?;
        if recorded != expired {
            // Unreachable under the write lock; refuse rather than commit a history that
            // disagrees with the rows.
            return Err(StoreError::Corrupt(format!(
                "exception expiry recorded {recorded} history rows for {expired} violations"
            )));
        }
        tx.commit()?;
        Ok(expired)
    }
}

impl<'a> Decision<'a> {
    /// Checks the inputs of `action` on `id`; nothing is read or written yet.
    fn check(
        id: &'a str,
        actor: &'a str,
        action: &ManagerAction<'a>,
        now: DateTime<Utc>,
    ) -> Result<Decision<'a>, StoreError> {
        // The database keeps microseconds: the entry handed back must say what a later read
        // will say.
        let now = now.trunc_subsecs(6);
        let actor = check_actor(actor)?;
        let (action, reason) = match *action {
            ManagerAction::Acknowledge { reason } => (
                Action::Acknowledge,
                reason.map(|r| check_text("reason", r)).transpose()?,
            ),
            ManagerAction::Except { until, reason } => {
                if until <= now {
                    return Err(StoreError::InvalidInput {
                        field: "until",
                        problem: format!("an exception must end after now ({now}), not at {until}"),
                    });
                }
                (
                    Action::Except { until },
                    Some(check_text("reason", reason)?),
                )
            }
            ManagerAction::Reopen { reason } => {
                (Action::Reopen, Some(check_text("reason", reason)?))
            }
            ManagerAction::Comment { text } => {
                (Action::Comment, Some(check_text("comment", text)?))
            }
        };
        Ok(Decision {
            id,
            actor,
            action,
            reason,
            now,
        })
    }
}

/// Applies one checked action inside `tx`: status, history row and audit entry. A refused action
/// (not found, wrong status) returns before writing anything.
fn decide(
    tx: &Transaction<'_>,
    decision: &Decision<'_>,
    departments: Option<&[String]>,
) -> Result<Decided, StoreError> {
    let from = scoped_status(tx, decision.id, departments)?
        .ok_or_else(|| StoreError::ViolationNotFound(decision.id.to_owned()))?;
    let action = decision.action;
    let to = action
        .target(from)
        .ok_or_else(|| StoreError::InvalidTransition {
            id: decision.id.to_owned(),
            action: action.verb(),
            status: from,
        })?;
    let now = timestamp(decision.now);
    // A comment leaves the row as it is; `updated_at` tracks the violation, not its notes.
    if action != Action::Comment {
        tx.prepare_cached(
            "UPDATE violations SET status = ?2, excepted_until = ?3, updated_at = ?4
             WHERE id = ?1",
        )?
        .execute((
            decision.id,
            to.as_str(),
            action.excepted_until().map(timestamp),
            &now,
        ))?;
    }
    tx.prepare_cached(
        "INSERT INTO violation_history
             (violation_id, at, actor, action, from_status, to_status, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        decision.id,
        &now,
        decision.actor,
        action.recorded_as(),
        from.as_str(),
        to.as_str(),
        decision.reason,
    ))?;
    let details = match action {
        Action::Comment => serde_json::json!({ "text": decision.reason }),
        Action::Except { until } => serde_json::json!({
            "from": from,
            "to": to,
            "until": until,
            "reason": decision.reason,
        }),
        Action::Acknowledge | Action::Reopen => serde_json::json!({
            "from": from,
            "to": to,
            "reason": decision.reason,
        }),
    };
    append(
        tx,
        &AuditRecord {
            at: decision.now,
            actor: decision.actor,
            action: action.audited_as(),
            subject: decision.id,
            details,
        },
    )?;
    let violation = read_violation(tx, decision.id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "violation {} vanished while it was changed",
            decision.id
        ))
    })?;
    Ok(Decided {
        violation,
        entry: HistoryEntry {
            at: decision.now,
            actor: decision.actor.to_owned(),
            action: action.recorded_as().to_owned(),
            from_status: Some(from),
            to_status: to,
            reason: decision.reason.map(str::to_owned),
        },
    })
}

/// The violation's status, if it exists and lies within `departments` (`None`: all; `Some`:
/// only those departments, which excludes violations without one), as in the reads.
fn scoped_status(
    tx: &Transaction<'_>,
    id: &str,
    departments: Option<&[String]>,
) -> Result<Option<ViolationStatus>, StoreError> {
    let scope = departments.map(serde_json::to_string).transpose()?;
    let status: Option<String> = tx
        .prepare_cached(
            "SELECT status FROM violations
             WHERE id = ?1 AND (?2 IS NULL OR department IN (SELECT value FROM json_each(?2)))",
        )?
        .query_row((id, scope), |row| row.get(0))
        .optional()?;
    status
        .map(|s| s.parse().map_err(StoreError::Corrupt))
        .transpose()
}

/// A manager's name as recorded. Names the store uses itself are refused, so that a history row
/// always says truthfully whether an agent, the server or a person made the change.
fn check_actor(actor: &str) -> Result<&str, StoreError> {
    let problem = if actor.trim().is_empty() {
        "must not be blank".to_owned()
    } else if actor.chars().count() > MAX_ACTOR_CHARS {
        format!("must be at most {MAX_ACTOR_CHARS} characters")
    } else if actor == SYSTEM_ACTOR || actor.starts_with(AGENT_ACTOR_PREFIX) {
        format!("`{actor}` is reserved for changes the server records itself")
    } else {
        return Ok(actor);
    };
    Err(StoreError::InvalidInput {
        field: "actor",
        problem,
    })
}

/// A reason or comment: not blank, and bounded so one request cannot bloat the history.
fn check_text<'a>(field: &'static str, text: &'a str) -> Result<&'a str, StoreError> {
    let problem = if text.trim().is_empty() {
        "must not be blank".to_owned()
    } else if text.chars().count() > MAX_TEXT_CHARS {
        format!("must be at most {MAX_TEXT_CHARS} characters")
    } else {
        return Ok(text);
    };
    Err(StoreError::InvalidInput { field, problem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ViolationStatus::{Acknowledged, Excepted, Open, Resolved};

    #[test]
    fn transitions_follow_the_life_cycle() {
        let until = DateTime::<Utc>::UNIX_EPOCH;
        let except = Action::Except { until };
        let table = [
            (Action::Acknowledge, Open, Some(Acknowledged)),
            (Action::Acknowledge, Acknowledged, None),
            (Action::Acknowledge, Excepted, None),
            (Action::Acknowledge, Resolved, None),
            (except, Open, Some(Excepted)),
            (except, Acknowledged, Some(Excepted)),
            (except, Excepted, Some(Excepted)),
            (except, Resolved, None),
            (Action::Reopen, Open, None),
            (Action::Reopen, Acknowledged, Some(Open)),
            (Action::Reopen, Excepted, Some(Open)),
            (Action::Reopen, Resolved, None),
            (Action::Comment, Open, Some(Open)),
            (Action::Comment, Acknowledged, Some(Acknowledged)),
            (Action::Comment, Excepted, Some(Excepted)),
            (Action::Comment, Resolved, Some(Resolved)),
        ];
        for (action, from, to) in table {
            assert_eq!(action.target(from), to, "{action:?} from {from}");
        }
    }

    #[test]
    fn actors_and_texts_are_checked() {
        assert_eq!(check_actor("alice").ok(), Some("alice"));
        for bad in [
            "",
            "  ",
            "system",
            "agent:a1",
            &"x".repeat(MAX_ACTOR_CHARS + 1),
        ] {
            assert!(
                matches!(
                    check_actor(bad),
                    Err(StoreError::InvalidInput { field: "actor", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(check_text("reason", "because").is_ok());
        assert!(check_text("reason", &"é".repeat(MAX_TEXT_CHARS)).is_ok());
        for bad in ["", " \n\t", &"x".repeat(MAX_TEXT_CHARS + 1)] {
            assert!(
                matches!(
                    check_text("comment", bad),
                    Err(StoreError::InvalidInput {
                        field: "comment",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }
}
