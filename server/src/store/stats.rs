//! Remediation figures per department: what is still open, and how fast violations were
//! resolved in a recent window compared with their severity's service level.
//!
//! Everything is computed by SQLite in two grouped queries (the percentiles with window
//! functions), so the collector never holds more than one row per department, whatever the
//! number of violations.
//!
//! Definitions:
//! - *open* counts `open` and `acknowledged` violations, as the heatmap does: excepted ones were
//!   accepted by a manager for now, resolved ones are done.
//! - A violation is *resolved in the window* when its status is `resolved` and its `resolved_at`
//!   lies in `(since, until]`. Its time to resolve is `resolved_at - opened_at`, the length of
//!   its last open period (a violation the agent saw again starts a new one). One that was
//!   resolved in the window and has since reopened is not counted: it is not resolved.
//! - Median and 90th percentile use linear interpolation between the two nearest ranks (the
//!   median of 1, 2, 3, 4 hours is 2.5 hours).
//! - The SLA share is the fraction of violations resolved in the window, among those whose
//!   severity has an SLA, whose time to resolve was at most that SLA; `None` when no such
//!   violation was resolved.

use super::{timestamp, Store, StoreError};
use crate::sla::Slas;
use chrono::{DateTime, Utc};
use infoledger_policies::Severity;
use rusqlite::types::Value;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts per severity, every severity present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    /// `info`.
    pub info: u64,
    /// `low`.
    pub low: u64,
    /// `medium`.
    pub medium: u64,
    /// `high`.
    pub high: u64,
    /// `critical`.
    pub critical: u64,
}

impl SeverityCounts {
    fn slot(&mut self, severity: Severity) -> &mut u64 {
        match severity {
            Severity::Info => &mut self.info,
            Severity::Low => &mut self.low,
            Severity::Medium => &mut self.medium,
            Severity::High => &mut self.high,
            Severity::Critical => &mut self.critical,
        }
    }
}

/// One department's remediation figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartmentRemediation {
    /// The department (`None`: files that no asset covers).
    pub department: Option<String>,
    /// Unresolved violations (`open` or `acknowledged`) now, by severity.
    pub open: SeverityCounts,
    /// Violations resolved in the window.
    pub resolved: u64,
    /// Median time to resolve in seconds; `None` when nothing was resolved.
    pub median_seconds: Option<f64>,
    /// 90th percentile of the time to resolve in seconds; `None` when nothing was resolved.
    pub p90_seconds: Option<f64>,
    /// Resolved in the window with a severity that has an SLA.
    pub resolved_with_sla: u64,
    /// Of those, resolved within the SLA.
    pub resolved_within_sla: u64,
    /// `resolved_within_sla / resolved_with_sla`; `None` when the latter is 0.
    pub within_sla_share: Option<f64>,
}

impl DepartmentRemediation {
    fn empty(department: Option<String>) -> DepartmentRemediation {
        DepartmentRemediation {
            department,
            open: SeverityCounts::default(),
            resolved: 0,
            median_seconds: None,
            p90_seconds: None,
            resolved_with_sla: 0,
            resolved_within_sla: 0,
            within_sla_share: None,
        }
    }
}

/// The department filter's SQL parameter (as in `query`).
fn restriction(departments: Option<&[String]>) -> Result<Value, StoreError> {
    Ok(match departments {
        None => Value::Null,
        Some(list) => Value::Text(serde_json::to_string(list)?),
    })
}

/// An SLA as the SQL parameter: seconds, or NULL for none.
fn sla_seconds(slas: &Slas, severity: Severity) -> Value {
    slas.get(severity)
        .map_or(Value::Null, |d| Value::Integer(d.num_seconds()))
}

/// Per department: how many violations were resolved in the window, how many of those had an
/// SLA and met it, and the times at the ranks the percentiles interpolate between. Parameters:
/// ?1 since, ?2 until, ?3..=?7 the SLA in seconds of critical, high, medium, low, info, ?8 the
/// department restriction.
///
/// It names the index that covers it (migration 6): without statistics SQLite would take the
/// status index and read the table row of every resolved violation ever, not only the window's.
const RESOLVED_SQL: &str = "
    WITH resolved AS (
        SELECT department,
               unixepoch(resolved_at, 'subsec') - unixepoch(opened_at, 'subsec') AS secs,
               CASE severity WHEN 'critical' THEN ?3 WHEN 'high' THEN ?4 WHEN 'medium' THEN ?5
                             WHEN 'low' THEN ?6 WHEN 'info' THEN ?7 END AS sla
        FROM violations INDEXED BY violations_resolved_trend
        WHERE status = 'resolved' AND resolved_at > ?1 AND resolved_at <= ?2
          AND (?8 IS NULL OR department IN (SELECT value FROM json_each(?8)))
    ),
    ranked AS (
        SELECT department, secs, sla,
               row_number() OVER (PARTITION BY department ORDER BY secs) AS n,
               count(*) OVER (PARTITION BY department) AS total
        FROM resolved
    )
    SELECT department, max(total), count(sla), coalesce(sum(sla IS NOT NULL AND secs <= sla), 0),
           max(CASE WHEN n = (total - 1) * 50 / 100 + 1 THEN secs END),
           max(CASE WHEN n = min((total - 1) * 50 / 100 + 2, total) THEN secs END),
           max(CASE WHEN n = (total - 1) * 90 / 100 + 1 THEN secs END),
           max(CASE WHEN n = min((total - 1) * 90 / 100 + 2, total) THEN secs END)
    FROM ranked
    GROUP BY department";

/// The `percent`-th percentile of `total` sorted values, given the values at the rank
/// `(total - 1) * percent / 100 + 1` (`low`) and the next one (`high`, the same at the end).
fn interpolate(total: u64, percent: u64, low: f64, high: f64) -> f64 {
    let scaled = total.saturating_sub(1) * percent;
    // The fraction is below 1 and exact in f64 (at most 99/100).
    let fraction = (scaled % 100) as f64 / 100.0;
    low + (high - low) * fraction
}

impl Store {
    /// Remediation figures per department within `departments`, for violations resolved in
    /// `(since, until]`, measured against `slas`. Ordered by department, none first. A
    /// department appears when it has open violations or resolved some in the window.
    pub fn remediation(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        slas: &Slas,
        departments: Option<&[String]>,
    ) -> Result<Vec<DepartmentRemediation>, StoreError> {
        let mut by_department: BTreeMap<Option<String>, DepartmentRemediation> = BTreeMap::new();
        for cell in self.heatmap(departments)? {
            let figures = by_department
                .entry(cell.department.clone())
                .or_insert_with(|| DepartmentRemediation::empty(cell.department));
            *figures.open.slot(cell.severity) = cell.count;
        }

        let reader = self.reader();
        let mut stmt = reader.prepare_cached(RESOLVED_SQL)?;
        let params = [
            Value::Text(timestamp(since)),
            Value::Text(timestamp(until)),
            sla_seconds(slas, Severity::Critical),
            sla_seconds(slas, Severity::High),
            sla_seconds(slas, Severity::Medium),
            sla_seconds(slas, Severity::Low),
            sla_seconds(slas, Severity::Info),
            restriction(departments)?,
        ];
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                [
                    row.get::<_, Option<f64>>(4)?,
                    row.get::<_, Option<f64>>(5)?,
                    row.get::<_, Option<f64>>(6)?,
                    row.get::<_, Option<f64>>(7)?,
                ],
            ))
        })?;
        for row in rows {
            let (department, total, with_sla, within_sla, ranks) = row?;
            let total = total.unsigned_abs();
            let figures = by_department
                .entry(department.clone())
                .or_insert_with(|| DepartmentRemediation::empty(department));
            figures.resolved = total;
            figures.resolved_with_sla = with_sla.unsigned_abs();
            figures.resolved_within_sla = within_sla.unsigned_abs();
            figures.within_sla_share = (with_sla > 0).then(|| within_sla as f64 / with_sla as f64);
            let [median_low, median_high, p90_low, p90_high] = ranks;
            figures.median_seconds = median_low
                .zip(median_high)
                .map(|(low, high)| interpolate(total, 50, low, high));
            figures.p90_seconds = p90_low
                .zip(p90_high)
                .map(|(low, high)| interpolate(total, 90, low, high));
        }
        Ok(by_department.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference definition: linear interpolation over sorted values.
    fn percentile(sorted: &[f64], percent: u64) -> f64 {
        let position = (sorted.len() - 1) as f64 * percent as f64 / 100.0;
        let low = position.floor() as usize;
        let high = (low + 1).min(sorted.len() - 1);
        sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
    }

    #[test]
    fn resolved_figures_read_only_their_covering_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let reader = store.reader();
        let mut stmt = reader
            .prepare(&format!("EXPLAIN QUERY PLAN {RESOLVED_SQL}"))
            .unwrap();
        let nulls = vec![Value::Null; stmt.parameter_count()];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let on_violations: Vec<&String> =
            plan.iter().filter(|l| l.contains("violations")).collect();
        assert!(
            !on_violations.is_empty()
                && on_violations
                    .iter()
                    .all(|l| l.contains("COVERING INDEX violations_resolved_trend")),
            "{plan:?}"
        );
    }

    #[test]
    fn interpolation_matches_the_reference_at_the_ranks_sql_picks() {
        for total in 1..=25u64 {
            let sorted: Vec<f64> = (0..total).map(|i| (i * i) as f64 + 0.5).collect();
            for percent in [50, 90] {
                let low_rank = (total - 1) * percent / 100 + 1;
                let high_rank = ((total - 1) * percent / 100 + 2).min(total);
                let low = sorted[(low_rank - 1) as usize];
                let high = sorted[(high_rank - 1) as usize];
                let got = interpolate(total, percent, low, high);
                let want = percentile(&sorted, percent);
                assert!(
                    (got - want).abs() < 1e-9,
                    "{total} p{percent}: {got} {want}"
                );
            }
        }
    }
}
