//! Aggregates for the dashboard: the trend of unresolved violations per day, escalated
//! violations, unresolved violations per asset, remediation month by month, and the fleet's
//! latest footprints.
//!
//! Every query is a grouped count over an index that covers it (migration 6), within the caller's
//! departments (applied in the SQL, as in `query`), so the collector holds one row per group,
//! never the table: the pages stay fast with a million violations stored.
//!
//! The trend is reconstructed from the violations as they are now: a violation counts as
//! unresolved from its `opened_at` until its `resolved_at`. A violation that the agent saw again
//! after a fix starts a new open period, and its earlier period no longer shows in the trend.

use super::model::Violation;
use super::query::read_violation;
use super::stats::SeverityCounts;
use super::{parse_timestamp, timestamp, Store, StoreError};
use crate::sla::Slas;
use chrono::{DateTime, NaiveDate, Utc};
use infoledger_policies::Severity;
use rusqlite::types::Value;
use rusqlite::OptionalExtension;
use serde::Serialize;
use std::collections::BTreeMap;

/// Unresolved violations at the end of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// The day (UTC); the last point is "now".
    pub day: NaiveDate,
    /// Violations opened and not resolved by the end of that day, by severity.
    pub unresolved: SeverityCounts,
}

/// Unresolved violations of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetCount {
    /// The asset's id.
    pub asset: String,
    /// Its department, as the violations carry it.
    pub department: Option<String>,
    /// `open` or `acknowledged` violations.
    pub unresolved: u64,
}

/// One department's remediation in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthlyRemediation {
    /// The department (`None`: files that no asset covers).
    pub department: Option<String>,
    /// The month, `YYYY-MM` (UTC).
    pub month: String,
    /// Violations whose current open period started that month.
    pub opened: u64,
    /// Violations resolved that month.
    pub resolved: u64,
    /// Of those, with a severity that has an SLA.
    pub resolved_with_sla: u64,
    /// Of those, resolved within it.
    pub resolved_within_sla: u64,
}

/// An agent's latest footprint: what its last complete scan saw per asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFootprint {
    /// The agent.
    pub agent: String,
    /// Its host.
    pub host: String,
    /// When the scan reported it.
    pub at: DateTime<Utc>,
    /// Files per asset id.
    pub assets: BTreeMap<String, u64>,
}

/// The department restriction as an SQL parameter (NULL: every department).
fn scope(departments: Option<&[String]>) -> Result<Value, StoreError> {
    Ok(match departments {
        None => Value::Null,
        Some(list) => Value::Text(serde_json::to_string(list)?),
    })
}

/// The SQL condition for a department restriction given as parameter `?n`.
fn in_scope(n: u8) -> String {
    format!("(?{n} IS NULL OR department IN (SELECT value FROM json_each(?{n})))")
}

fn count(n: i64) -> u64 {
    n.unsigned_abs()
}

fn severity(text: &str) -> Result<Severity, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

fn add(counts: &mut SeverityCounts, severity: Severity, n: i64) {
    let slot = match severity {
        Severity::Info => &mut counts.info,
        Severity::Low => &mut counts.low,
        Severity::Medium => &mut counts.medium,
        Severity::High => &mut counts.high,
        Severity::Critical => &mut counts.critical,
    };
    *slot = slot.saturating_add_signed(n);
}

/// The status condition of violations that count as unresolved in the escalation index.
const ESCALATED: &str = "status IN ('open', 'acknowledged') AND escalated_at IS NOT NULL
     AND escalated_at >= opened_at";

impl Store {
    /// Unresolved violations (any status but `resolved`) at the end of each day from `first` to
    /// the day of `now`, whose point is `now` itself; within `departments`.
    pub fn unresolved_trend(
        &self,
        first: NaiveDate,
        now: DateTime<Utc>,
        departments: Option<&[String]>,
    ) -> Result<Vec<TrendPoint>, StoreError> {
        let scope = scope(departments)?;
        let start = timestamp(first.and_hms_opt(0, 0, 0).map_or(now, |t| t.and_utc()));
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        let mut current = SeverityCounts::default();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT severity, count(*) FROM violations
                 WHERE status IN ('open', 'acknowledged', 'excepted') AND {}
                 GROUP BY severity",
                in_scope(1)
            ))?;
            let rows = stmt.query_map([&scope], |row| Ok((row.get(0)?, row.get(1)?)))?;
            for row in rows {
                let (name, n): (String, i64) = row?;
                add(&mut current, severity(&name)?, n);
            }
        }
        // Per day: violations opened on it (+) and resolved on it (-), from `first` on.
        let mut changes: BTreeMap<NaiveDate, Vec<(Severity, i64)>> = BTreeMap::new();
        for (column, sign) in [("opened_at", 1), ("resolved_at", -1)] {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT substr({column}, 1, 10), severity, count(*) FROM violations
                 WHERE {column} >= ?1 AND {}
                 GROUP BY 1, 2",
                in_scope(2)
            ))?;
            let rows = stmt.query_map((&start, &scope), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            for row in rows {
                let (day, name, n): (String, String, i64) = row?;
                let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|e| StoreError::Corrupt(format!("day `{day}`: {e}")))?;
                changes
                    .entry(day)
                    .or_default()
                    .push((severity(&name)?, sign * n));
            }
        }
        drop(tx);
        // Walk back from now: the end of day d is now, less what opened after d, plus what was
        // resolved after d.
        let today = now.date_naive();
        let mut points = Vec::new();
        let mut level = current;
        let mut after = changes.split_off(&today.succ_opt().unwrap_or(today));
        for (_, day_changes) in after.iter_mut() {
            for &(severity, n) in day_changes.iter() {
                add(&mut level, severity, -n);
            }
        }
        let mut day = today;
        while day >= first {
            points.push(TrendPoint {
                day,
                unresolved: level,
            });
            if let Some(day_changes) = changes.get(&day) {
                for &(severity, n) in day_changes {
                    add(&mut level, severity, -n);
                }
            }
            match day.pred_opt() {
                Some(previous) => day = previous,
                None => break,
            }
        }
        points.reverse();
        Ok(points)
    }

    /// Unresolved (`open`, `acknowledged`) violations whose current open period outlived its
    /// SLA, within `departments`: how many, and the `limit` most recently escalated.
    pub fn escalated(
        &self,
        limit: u32,
        departments: Option<&[String]>,
    ) -> Result<(u64, Vec<Violation>), StoreError> {
        let scope = scope(departments)?;
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        let total: i64 = tx
            .prepare_cached(&format!(
                "SELECT count(*) FROM violations WHERE {ESCALATED} AND {}",
                in_scope(1)
            ))?
            .query_row([&scope], |row| row.get(0))?;
        let ids: Vec<String> = tx
            .prepare_cached(&format!(
                "SELECT id FROM violations WHERE {ESCALATED} AND {}
                 ORDER BY escalated_at DESC LIMIT ?2",
                in_scope(1)
            ))?
            .query_map((&scope, limit), |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut violations = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(violation) = read_violation(&tx, &id)? {
                violations.push(violation);
            }
        }
        Ok((count(total), violations))
    }

    /// Unresolved escalated violations per department, within `departments`.
    pub fn escalated_by_department(
        &self,
        departments: Option<&[String]>,
    ) -> Result<BTreeMap<Option<String>, u64>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&format!(
            "SELECT department, count(*) FROM violations WHERE {ESCALATED} AND {}
             GROUP BY department",
            in_scope(1)
        ))?;
        let rows = stmt.query_map([scope(departments)?], |row| {
            Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts = BTreeMap::new();
        for row in rows {
            let (department, n) = row?;
            counts.insert(department, count(n));
        }
        Ok(counts)
    }

    /// Unresolved (`open`, `acknowledged`) violations per asset within `departments`, most first
    /// (ties by asset id), at most `limit` assets (`None`: all).
    pub fn unresolved_by_asset(
        &self,
        limit: Option<u32>,
        departments: Option<&[String]>,
    ) -> Result<Vec<AssetCount>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&format!(
            "SELECT asset, max(department), count(*) AS n FROM violations
             WHERE status IN ('open', 'acknowledged') AND asset IS NOT NULL AND {}
             GROUP BY asset ORDER BY n DESC, asset LIMIT ?2",
            in_scope(1)
        ))?;
        let limit = limit.map_or(-1, i64::from);
        let rows = stmt.query_map((scope(departments)?, limit), |row| {
            Ok(AssetCount {
                asset: row.get(0)?,
                department: row.get(1)?,
                unresolved: count(row.get(2)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per department and month from `since` on: violations opened, resolved, and resolved
    /// within their severity's SLA; ordered by department (none first), then month.
    pub fn monthly_remediation(
        &self,
        since: DateTime<Utc>,
        slas: &Slas,
        departments: Option<&[String]>,
    ) -> Result<Vec<MonthlyRemediation>, StoreError> {
        let scope = scope(departments)?;
        let since = timestamp(since);
        let sla = |severity| {
            slas.get(severity)
                .map_or(Value::Null, |d| Value::Integer(d.num_seconds()))
        };
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        let mut opened: Vec<(Option<String>, String, i64)> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT department, substr(opened_at, 1, 7), count(*) FROM violations
                 WHERE opened_at >= ?1 AND {} GROUP BY 1, 2",
                in_scope(2)
            ))?;
            let rows = stmt.query_map((&since, &scope), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            for row in rows {
                opened.push(row?);
            }
        }
        let mut resolved: Vec<(Option<String>, String, i64, i64, i64)> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT department, month, count(*), count(sla),
                        coalesce(sum(sla IS NOT NULL AND secs <= sla), 0)
                 FROM (
                     SELECT department, substr(resolved_at, 1, 7) AS month,
                            unixepoch(resolved_at, 'subsec') - unixepoch(opened_at, 'subsec')
                                AS secs,
                            CASE severity WHEN 'critical' THEN ?3 WHEN 'high' THEN ?4
                                          WHEN 'medium' THEN ?5 WHEN 'low' THEN ?6
                                          WHEN 'info' THEN ?7 END AS sla
                     FROM violations WHERE resolved_at >= ?1 AND {}
                 )
                 GROUP BY 1, 2",
                in_scope(2)
            ))?;
            let params = [
                Value::Text(since.clone()),
                scope.clone(),
                sla(Severity::Critical),
                sla(Severity::High),
                sla(Severity::Medium),
                sla(Severity::Low),
                sla(Severity::Info),
            ];
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?;
            for row in rows {
                resolved.push(row?);
            }
        }
        drop(tx);
        let mut months: BTreeMap<(Option<String>, String), MonthlyRemediation> = BTreeMap::new();
        for (department, month, n) in opened {
            month_entry(&mut months, department, month).opened = count(n);
        }
        for (department, month, n, with_sla, within_sla) in resolved {
            let figures = month_entry(&mut months, department, month);
            figures.resolved = count(n);
            figures.resolved_with_sla = count(with_sla);
            figures.resolved_within_sla = count(within_sla);
        }
        Ok(months.into_values().collect())
    }

    /// The latest footprint of every agent that is not revoked, by host.
    pub fn footprints(&self) -> Result<Vec<AgentFootprint>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(
            "SELECT f.agent_id, f.host, f.at, f.assets FROM footprints f
             JOIN agents a ON a.id = f.agent_id
             WHERE a.revoked_at IS NULL ORDER BY f.host, f.agent_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        let mut footprints = Vec::new();
        for row in rows {
            let (agent, host, at, assets) = row?;
            footprints.push(AgentFootprint {
                agent,
                host,
                at: parse_timestamp(&at)?,
                assets: serde_json::from_str(&assets)?,
            });
        }
        Ok(footprints)
    }

    /// The audit trail's newest entry id, `None` while it is empty.
    pub fn audit_head_id(&self) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> = self
            .reader()
            .query_row("SELECT last_id FROM audit_head WHERE one = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(id.map(i64::unsigned_abs))
    }
}

fn month_entry(
    months: &mut BTreeMap<(Option<String>, String), MonthlyRemediation>,
    department: Option<String>,
    month: String,
) -> &mut MonthlyRemediation {
    months
        .entry((department.clone(), month.clone()))
        .or_insert_with(|| MonthlyRemediation {
            department,
            month,
            opened: 0,
            resolved: 0,
            resolved_with_sla: 0,
            resolved_within_sla: 0,
        })
}
