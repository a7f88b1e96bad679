//! Escalation: unresolved violations that outlived their severity's SLA are flagged once.
//!
//! A violation is *unresolved* while it is `open` or `acknowledged` (acknowledging says "seen",
//! not "fixed"; an exception is a manager's acceptance and is not escalated). Its SLA runs from
//! `opened_at`, the start of its current open period. [`Store::escalate`] sets `escalated_at` and
//! appends an `escalated` history row by `system` in one transaction, so a violation is
//! escalated exactly once per open period: a violation that is resolved and observed again starts
//! a new period (a newer `opened_at`), and may be escalated again after its SLA.

use super::{timestamp, Store, StoreError};
use crate::sla::Slas;
use chrono::{DateTime, TimeDelta, Utc};
use infoledger_policies::Severity;
use rusqlite::{OptionalExtension, TransactionBehavior};

/// Who is recorded for escalations.
const SYSTEM_ACTOR: &str = "system";

/// Unresolved violations of this severity whose SLA ran out at or before `?2`, not yet escalated
/// in their current open period. (`?1` is the severity.)
const DUE: &str = "status IN ('open', 'acknowledged') AND severity = ?1 AND opened_at <= ?2
     AND (escalated_at IS NULL OR escalated_at < opened_at)";

impl Store {
    /// Escalates every unresolved violation that has been open at least as long as its
    /// severity's SLA at `now`; severities without an SLA are never escalated. Returns the ids
    /// escalated by this call, ordered by severity (most urgent first), then id.
    pub fn escalate(&self, now: DateTime<Utc>, slas: &Slas) -> Result<Vec<String>, StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        let mut escalated = Vec::new();
        for severity in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ] {
            let Some(allowed) = slas.get(severity) else {
                continue;
            };
            let Some(deadline) = now.checked_sub_signed(allowed) else {
                continue;
            };
            let deadline = timestamp(deadline);
            let reason = format!(
                "unresolved longer than the {} SLA ({})",
                severity.as_str(),
                human(allowed)
            );
            // Both statements select the same rows: the IMMEDIATE transaction holds the write
            // lock, so nothing changes in between.
            let recorded = tx
                .prepare_cached(&format!(
                    "INSERT INTO violation_history
                         (violation_id, at, actor, action, from_status, to_status, reason)
                     SELECT id, ?3, ?4, 'escalated', status, status, ?5
                     FROM violations WHERE {DUE} ORDER BY id"
                ))?
                .execute((severity.as_str(), &deadline, &at, SYSTEM_ACTOR, &reason))?;
            let mut ids: Vec<String> = tx
                .prepare_cached(&format!(
                    "UPDATE violations SET escalated_at = ?3, updated_at = ?3 WHERE {DUE}
                     RETURNING id"
                ))?
                .query_map((severity.as_str(), &deadline, &at), |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            if ids.len() != recorded {
                return Err(StoreError::Corrupt(format!(
                    "escalation recorded {recorded} history rows for {} violations",
                    ids.len()
                )));
            }
            ids.sort();
            escalated.extend(ids);
        }
        tx.commit()?;
        Ok(escalated)
    }

    /// When the violation's current open period was escalated, if it was.
    pub fn escalated_at(&self, id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<String> = self
            .reader()
            .query_row(
                "SELECT escalated_at FROM violations
                 WHERE id = ?1 AND escalated_at IS NOT NULL AND escalated_at >= opened_at",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        at.as_deref().map(super::parse_timestamp).transpose()
    }
}

/// A duration as people write it in the configuration: `24h`, `7d`, `90m`.
pub(crate) fn human(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        s if s % 604_800 == 0 && s >= 604_800 => format!("{}w", s / 604_800),
        s if s % 86_400 == 0 && s >= 86_400 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s >= 3600 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        let table = [
            (TimeDelta::hours(24), "1d"),
            (TimeDelta::hours(72), "3d"),
            (TimeDelta::hours(30), "30h"),
            (TimeDelta::days(14), "2w"),
            (TimeDelta::minutes(90), "90m"),
            (TimeDelta::seconds(59), "59s"),
        ];
        for (d, want) in table {
            assert_eq!(human(d), want);
        }
    }
}
