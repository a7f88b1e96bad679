//! Aggregates for the dashboard: unresolved violations by asset, department, severity and status
//! (with the overdue ones), the trend of unresolved violations per day, escalated violations,
//! remediation month by month, and the fleet's latest footprints.
//!
//! Every query is a grouped count over an index that covers it (migration 6), within the caller's
//! departments (applied in the SQL, as in `query`), so the collector holds one row per group,
//! never the table: the pages stay fast with a million violations stored.
//!
//! The trend is reconstructed from the violations as they are now: a violation counts as
//! unresolved from its `opened_at` until its `resolved_at`. A violation that the agent saw again
//! after a fix starts a new open period, and its earlier period no longer shows in the trend.

use super::model::{HeatmapCell, Violation, ViolationStatus};
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

/// Unresolved violations of one asset, department, severity and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnresolvedGroup {
    /// The asset (`None`: files no asset covers).
    pub asset: Option<String>,
    /// The department.
    pub department: Option<String>,
    /// The severity.
    pub severity: Severity,
    /// `open`, `acknowledged` or `excepted`.
    pub status: ViolationStatus,
    /// How many.
    pub count: u64,
    /// How many of them outlived their SLA in the current open period (escalated; never
    /// excepted ones).
    pub overdue: u64,
}

/// Every unresolved violation within a scope, grouped: what the heatmap, the counts per asset
/// and the overdue counts are computed from, read in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The groups, in no particular order.
    pub groups: Vec<UnresolvedGroup>,
}

impl Unresolved {
    /// Groups of open or acknowledged violations (excepted ones were accepted for now).
    fn active(&self) -> impl Iterator<Item = &UnresolvedGroup> {
        self.groups.iter().filter(|g| {
            matches!(
                g.status,
                ViolationStatus::Open | ViolationStatus::Acknowledged
            )
        })
    }

    /// Open and acknowledged violations by department and severity, as [`Store::heatmap`]
    /// answers them: by department (none first), then severity lowest first.
    pub fn heatmap(&self) -> Vec<HeatmapCell> {
        let mut cells: BTreeMap<(Option<String>, Severity), u64> = BTreeMap::new();
        for g in self.active() {
            *cells.entry((g.department.clone(), g.severity)).or_default() += g.count;
        }
        cells
            .into_iter()
            .map(|((department, severity), count)| HeatmapCell {
                department,
                severity,
                count,
            })
            .collect()
    }

    /// Every unresolved violation (excepted ones too) by severity: the trend's last point.
    pub fn by_severity(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for g in &self.groups {
            add(
                &mut counts,
                g.severity,
                i64::try_from(g.count).unwrap_or(i64::MAX),
            );
        }
        counts
    }

    /// Open and acknowledged violations per asset, most first (ties by asset id), at most
    /// `limit` assets (`None`: all).
    pub fn by_asset(&self, limit: Option<usize>) -> Vec<AssetCount> {
        let mut assets: BTreeMap<&str, AssetCount> = BTreeMap::new();
        for g in self.active() {
            let Some(asset) = &g.asset else { continue };
            let entry = assets.entry(asset).or_insert_with(|| AssetCount {
                asset: asset.clone(),
                department: g.department.clone(),
                unresolved: 0,
            });
            entry.unresolved += g.count;
        }
        let mut list: Vec<AssetCount> = assets.into_values().collect();
        list.sort_by(|a, b| b.unresolved.cmp(&a.unresolved).then(a.asset.cmp(&b.asset)));
        list.truncate(limit.unwrap_or(usize::MAX));
        list
    }

    /// Overdue (escalated) open and acknowledged violations per department.
    pub fn overdue_by_department(&self) -> BTreeMap<Option<String>, u64> {
        let mut counts = BTreeMap::new();
        for g in self.groups.iter().filter(|g| g.overdue > 0) {
            *counts.entry(g.department.clone()).or_default() += g.overdue;
        }
        counts
    }

    /// Overdue (escalated) open and acknowledged violations.
    pub fn overdue(&self) -> u64 {
        self.groups.iter().map(|g| g.overdue).sum()
    }
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

/// The statements, one function each so that tests can check every query plan. Each names its
/// index (`INDEXED BY`): without statistics the planner may prefer a narrower index that is not
/// covering, and reading a million table rows is what these indexes exist to avoid; a statement
/// whose index cannot serve it fails instead of scanning.
mod sql {
    use super::in_scope;

    /// Unresolved violations in their current open period past its SLA (an escalation older
    /// than `opened_at` belongs to an earlier period); the escalation index's condition.
    const ESCALATED: &str = "status IN ('open', 'acknowledged') AND escalated_at IS NOT NULL
         AND escalated_at >= opened_at";
    /// The current open period outlived its SLA.
    const OVERDUE: &str = "(escalated_at IS NOT NULL AND escalated_at >= opened_at)";

    /// ?1 scope.
    pub(super) fn unresolved() -> String {
        format!(
            "SELECT asset, department, severity, status,
                    count(*), sum(status IN ('open', 'acknowledged') AND {OVERDUE})
             FROM violations INDEXED BY violations_unresolved
             WHERE status IN ('open', 'acknowledged', 'excepted') AND {}
             GROUP BY 1, 2, 3, 4",
            in_scope(1)
        )
    }

    /// `column` is `opened_at` or `resolved_at`. ?1 since, ?2 scope.
    pub(super) fn per_day(column: &str) -> String {
        let index = if column == "opened_at" {
            "violations_opened_trend"
        } else {
            "violations_resolved_trend"
        };
        format!(
            "SELECT substr({column}, 1, 10), severity, count(*) FROM violations INDEXED BY {index}
             WHERE {column} >= ?1 AND {}
             GROUP BY 1, 2",
            in_scope(2)
        )
    }

    /// ?1 scope, ?2 limit.
    pub(super) fn escalated_newest() -> String {
        format!(
            "SELECT id FROM violations INDEXED BY violations_escalated WHERE {ESCALATED} AND {}
             ORDER BY escalated_at DESC LIMIT ?2",
            in_scope(1)
        )
    }

    /// ?1 asset, ?2 scope.
    pub(super) fn asset_unresolved_count() -> String {
        format!(
            "SELECT count(*) FROM violations INDEXED BY violations_unresolved
             WHERE status IN ('open', 'acknowledged', 'excepted')
               AND status IN ('open', 'acknowledged') AND asset = ?1 AND {}",
            in_scope(2)
        )
    }

    /// ?1 asset, ?2 scope, ?3 limit.
    pub(super) fn asset_unresolved_newest() -> String {
        format!(
            "SELECT id FROM violations INDEXED BY violations_unresolved
             WHERE status IN ('open', 'acknowledged', 'excepted')
               AND status IN ('open', 'acknowledged') AND asset = ?1 AND {}
             ORDER BY opened_at DESC, id DESC LIMIT ?3",
            in_scope(2)
        )
    }

    /// Every department that violations carry, by seeking from one to the next in the
    /// department index rather than reading every entry.
    pub(super) fn departments() -> String {
        "WITH RECURSIVE seen(name) AS (
             SELECT (SELECT min(department) FROM violations INDEXED BY violations_by_department)
             UNION ALL
             SELECT (SELECT min(department) FROM violations INDEXED BY violations_by_department
                     WHERE department > name)
             FROM seen WHERE name IS NOT NULL
         )
         SELECT name FROM seen WHERE name IS NOT NULL"
            .to_owned()
    }

    /// ?1 department (NULL: none), ?2 from, ?3 before. A range of the department index, counted
    /// without grouping.
    pub(super) fn opened_in_range() -> String {
        "SELECT count(*) FROM violations INDEXED BY violations_by_department
         WHERE department IS ?1 AND opened_at >= ?2 AND opened_at < ?3"
            .to_owned()
    }

    /// ?1 since, ?2 scope, ?3..=?7 the SLA in seconds of critical, high, medium, low, info.
    pub(super) fn resolved_per_month() -> String {
        format!(
            "SELECT department, month, count(*), count(sla),
                    coalesce(sum(sla IS NOT NULL AND secs <= sla), 0)
             FROM (
                 SELECT department, substr(resolved_at, 1, 7) AS month,
                        unixepoch(resolved_at, 'subsec') - unixepoch(opened_at, 'subsec')
                            AS secs,
                        CASE severity WHEN 'critical' THEN ?3 WHEN 'high' THEN ?4
                                      WHEN 'medium' THEN ?5 WHEN 'low' THEN ?6
                                      WHEN 'info' THEN ?7 END AS sla
                 FROM violations INDEXED BY violations_resolved_trend
                 WHERE resolved_at >= ?1 AND {}
             )
             GROUP BY 1, 2",
            in_scope(2)
        )
    }

    /// Every statement, for the query-plan test.
    #[cfg(test)]
    pub(super) fn all() -> Vec<(&'static str, String)> {
        vec![
            ("unresolved", unresolved()),
            ("opened_per_day", per_day("opened_at")),
            ("resolved_per_day", per_day("resolved_at")),
            ("escalated_newest", escalated_newest()),
            ("asset_unresolved_count", asset_unresolved_count()),
            ("asset_unresolved_newest", asset_unresolved_newest()),
            ("departments", departments()),
            ("opened_in_range", opened_in_range()),
            ("resolved_per_month", resolved_per_month()),
        ]
    }
}

impl Store {
    /// Every unresolved violation (`open`, `acknowledged`, `excepted`) within `departments`,
    /// grouped by asset, department, severity and status, with the overdue ones counted (grouped
    /// in the index's order, so the pass needs no sort).
    pub fn unresolved(&self, departments: Option<&[String]>) -> Result<Unresolved, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&sql::unresolved())?;
        let rows = stmt.query_map([scope(departments)?], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?;
        let mut groups = Vec::new();
        for row in rows {
            let (asset, department, severity_name, status, n, overdue) = row?;
            groups.push(UnresolvedGroup {
                asset,
                department,
                severity: severity(&severity_name)?,
                status: status.parse().map_err(StoreError::Corrupt)?,
                count: count(n),
                overdue: count(overdue),
            });
        }
        Ok(Unresolved { groups })
    }

    /// Unresolved violations (any status but `resolved`) at the end of each day from `first` to
    /// the day of `now`, whose point is `now` itself with the counts `current` (from
    /// [`Unresolved::by_severity`] of the same scope); within `departments`.
    pub fn unresolved_trend(
        &self,
        first: NaiveDate,
        now: DateTime<Utc>,
        current: SeverityCounts,
        departments: Option<&[String]>,
    ) -> Result<Vec<TrendPoint>, StoreError> {
        let scope = scope(departments)?;
        let start = timestamp(first.and_hms_opt(0, 0, 0).map_or(now, |t| t.and_utc()));
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        // Per day: violations opened on it (+) and resolved on it (-), from `first` on.
        let mut changes: BTreeMap<NaiveDate, Vec<(Severity, i64)>> = BTreeMap::new();
        for (column, sign) in [("opened_at", 1), ("resolved_at", -1)] {
            let mut stmt = tx.prepare_cached(&sql::per_day(column))?;
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

    /// The `limit` most recently escalated unresolved (`open`, `acknowledged`) violations whose
    /// current open period outlived its SLA, within `departments`.
    pub fn escalated(
        &self,
        limit: u32,
        departments: Option<&[String]>,
    ) -> Result<Vec<Violation>, StoreError> {
        let scope = scope(departments)?;
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        let ids: Vec<String> = tx
            .prepare_cached(&sql::escalated_newest())?
            .query_map((&scope, limit), |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        read_all(&tx, ids)
    }

    /// The open and acknowledged violations of `asset` within `departments`: how many, and the
    /// `limit` most recently opened.
    pub fn asset_violations(
        &self,
        asset: &str,
        limit: u32,
        departments: Option<&[String]>,
    ) -> Result<(u64, Vec<Violation>), StoreError> {
        let scope = scope(departments)?;
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        let total: i64 = tx
            .prepare_cached(&sql::asset_unresolved_count())?
            .query_row((asset, &scope), |row| row.get(0))?;
        let ids: Vec<String> = tx
            .prepare_cached(&sql::asset_unresolved_newest())?
            .query_map((asset, &scope, limit), |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok((count(total), read_all(&tx, ids)?))
    }

    /// Per department and month (UTC) from the month of `since` to that of `until`: violations
    /// opened, resolved, and resolved within their severity's SLA; ordered by department (none
    /// first), then month. Months without any are left out.
    pub fn monthly_remediation(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        slas: &Slas,
        departments: Option<&[String]>,
    ) -> Result<Vec<MonthlyRemediation>, StoreError> {
        let months = month_ranges(since, until);
        let since = months
            .first()
            .map_or_else(|| timestamp(since), |(_, start, _)| start.clone());
        let department_list: Option<Vec<String>> = departments.map(<[String]>::to_vec);
        let scope = scope(departments)?;
        let sla = |severity| {
            slas.get(severity)
                .map_or(Value::Null, |d| Value::Integer(d.num_seconds()))
        };
        let reader = self.reader();
        let tx = reader.unchecked_transaction()?;
        // Openings per department and month: one counted range each, which reads far less than
        // grouping every opening of the year.
        let mut opened: Vec<(Option<String>, String, i64)> = Vec::new();
        {
            let mut names: Vec<Option<String>> = match department_list {
                Some(list) => list.into_iter().map(Some).collect(),
                None => {
                    let mut stmt = tx.prepare_cached(&sql::departments())?;
                    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
                    let mut names = vec![None];
                    for row in rows {
                        names.push(Some(row?));
                    }
                    names
                }
            };
            names.dedup();
            let mut stmt = tx.prepare_cached(&sql::opened_in_range())?;
            for name in &names {
                for (month, start, end) in &months {
                    let n: i64 = stmt.query_row((name, start, end), |row| row.get(0))?;
                    if n > 0 {
                        opened.push((name.clone(), month.clone(), n));
                    }
                }
            }
        }
        let mut resolved: Vec<(Option<String>, String, i64, i64, i64)> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&sql::resolved_per_month())?;
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

/// The months (UTC) from that of `since` to that of `until`: label `YYYY-MM`, first instant,
/// and the next month's first instant, as stored times.
fn month_ranges(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(String, String, String)> {
    use chrono::{Datelike, Months};
    let Some(mut month) = since.date_naive().with_day(1) else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    while month <= until.date_naive() {
        let Some(next) = month.checked_add_months(Months::new(1)) else {
            break;
        };
        let instant = |day: NaiveDate| {
            day.and_hms_opt(0, 0, 0)
                .map_or_else(String::new, |t| timestamp(t.and_utc()))
        };
        ranges.push((
            month.format("%Y-%m").to_string(),
            instant(month),
            instant(next),
        ));
        month = next;
    }
    ranges
}

/// The violations with these ids, in that order, as `conn` sees them.
fn read_all(conn: &rusqlite::Connection, ids: Vec<String>) -> Result<Vec<Violation>, StoreError> {
    let mut violations = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(violation) = read_violation(conn, &id)? {
            violations.push(violation);
        }
    }
    Ok(violations)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Event, EventBody, NewAgent};
    use chrono::TimeDelta;
    use infoledger_policies::Kind;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A store with one agent whose events are numbered as they are sent.
    struct Seeded {
        _dir: tempfile::TempDir,
        store: Store,
        seq: u64,
    }

    impl Seeded {
        fn new() -> Seeded {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("o.db")).unwrap();
            store
                .add_agent(&NewAgent {
                    id: "a1".into(),
                    hostname: "h1".into(),
                    secret_hash: "x".into(),
                    enrolled_at: at("2026-01-01T00:00:00Z"),
                })
                .unwrap();
            Seeded {
                _dir: dir,
                store,
                seq: 0,
            }
        }

        fn send(&mut self, when: &str, body: EventBody) {
            self.seq += 1;
            let event = Event {
                seq: self.seq,
                at: at(when),
                body,
            };
            assert_eq!(self.store.ingest("a1", &[event]).unwrap(), self.seq);
        }

        fn open(&mut self, when: &str, path: &str, severity: Severity, department: &str) {
            self.send(
                when,
                EventBody::ViolationOpened {
                    path: path.into(),
                    kind: Kind::Misplaced,
                    severity,
                    label: Some("confidential".into()),
                    asset: Some(format!("{department}-ASSET")),
                    department: Some(department.into()),
                    rule: None,
                    message: "m".into(),
                    fix: "f".into(),
                    host: "h1".into(),
                },
            );
        }

        fn resolve(&mut self, when: &str, path: &str) {
            self.send(
                when,
                EventBody::ViolationResolved {
                    path: path.into(),
                    kind: Kind::Misplaced,
                },
            );
        }
    }

    fn counts(point: &TrendPoint) -> [u64; 5] {
        let u = point.unresolved;
        [u.critical, u.high, u.medium, u.low, u.info]
    }

    #[test]
    fn the_trend_counts_what_was_unresolved_at_the_end_of_each_day() {
        let mut s = Seeded::new();
        s.open(
            "2026-02-20T10:00:00Z",
            "/old-medium",
            Severity::Medium,
            "HR",
        );
        s.open(
            "2026-02-20T11:00:00Z",
            "/old-critical",
            Severity::Critical,
            "HR",
        );
        s.open("2026-03-01T09:00:00Z", "/a", Severity::High, "HR");
        s.open("2026-03-01T10:00:00Z", "/b", Severity::Low, "IT");
        s.resolve("2026-03-02T08:00:00Z", "/a");
        s.resolve("2026-03-02T09:00:00Z", "/old-critical");
        s.open("2026-03-02T12:00:00Z", "/c", Severity::High, "HR");
        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let now = at("2026-03-03T12:00:00Z");
        let current = s.store.unresolved(None).unwrap().by_severity();
        let points = s.store.unresolved_trend(first, now, current, None).unwrap();
        let days: Vec<String> = points.iter().map(|p| p.day.to_string()).collect();
        assert_eq!(days, ["2026-03-01", "2026-03-02", "2026-03-03"]);
        let values: Vec<[u64; 5]> = points.iter().map(counts).collect();
        assert_eq!(values, [[1, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0]]);
        let it = ["IT".to_owned()];
        let current = s.store.unresolved(Some(&it)).unwrap().by_severity();
        let scoped = s
            .store
            .unresolved_trend(first, now, current, Some(&it))
            .unwrap();
        let values: Vec<[u64; 5]> = scoped.iter().map(counts).collect();
        assert_eq!(values, [[0, 0, 0, 1, 0]; 3]);
    }

    #[test]
    fn escalations_assets_and_months_are_counted_within_scope() {
        let mut s = Seeded::new();
        s.open("2026-01-10T00:00:00Z", "/hr1", Severity::High, "HR");
        s.open("2026-01-11T00:00:00Z", "/hr2", Severity::High, "HR");
        s.open("2026-02-01T00:00:00Z", "/it1", Severity::Critical, "IT");
        s.open("2026-02-27T00:00:00Z", "/hr3", Severity::Low, "HR");
        // /it1 resolved after 12 h (within critical's 24 h), /hr1 after 20 days (outside 72 h).
        s.resolve("2026-02-01T12:00:00Z", "/it1");
        s.resolve("2026-01-30T00:00:00Z", "/hr1");
        let now = at("2026-03-01T00:00:00Z");
        let slas = Slas::default();
        s.store.escalate(now, &slas).unwrap();

        let newest = s.store.escalated(10, None).unwrap();
        assert_eq!(
            newest.iter().map(|v| v.path.as_str()).collect::<Vec<_>>(),
            ["/hr2"]
        );
        assert!(s
            .store
            .escalated(10, Some(&["IT".to_owned()]))
            .unwrap()
            .is_empty());
        let unresolved = s.store.unresolved(None).unwrap();
        assert_eq!(unresolved.overdue(), 1);
        assert_eq!(
            unresolved.overdue_by_department(),
            BTreeMap::from([(Some("HR".to_owned()), 1)])
        );
        assert_eq!(unresolved.heatmap(), s.store.heatmap(None).unwrap());
        let by_severity = unresolved.by_severity();
        assert_eq!((by_severity.high, by_severity.low), (1, 1));
        assert_eq!(
            unresolved.by_asset(None),
            [AssetCount {
                asset: "HR-ASSET".into(),
                department: Some("HR".into()),
                unresolved: 2
            }]
        );
        let it_only = s.store.unresolved(Some(&["IT".to_owned()])).unwrap();
        assert!(it_only.groups.is_empty());
        let (total, newest) = s.store.asset_violations("HR-ASSET", 1, None).unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            newest.iter().map(|v| v.path.as_str()).collect::<Vec<_>>(),
            ["/hr3"]
        );
        assert_eq!(
            s.store
                .asset_violations("HR-ASSET", 5, Some(&["IT".to_owned()]))
                .unwrap()
                .0,
            0
        );

        let months = s
            .store
            .monthly_remediation(now - TimeDelta::days(365), now, &slas, None)
            .unwrap();
        // Department, month, opened, resolved, resolved with an SLA, within it.
        type Row<'a> = (Option<&'a str>, &'a str, u64, u64, u64, u64);
        let rows: Vec<Row<'_>> = months
            .iter()
            .map(|m| {
                (
                    m.department.as_deref(),
                    m.month.as_str(),
                    m.opened,
                    m.resolved,
                    m.resolved_with_sla,
                    m.resolved_within_sla,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (Some("HR"), "2026-01", 2, 1, 1, 0),
                (Some("HR"), "2026-02", 1, 0, 0, 0),
                (Some("IT"), "2026-02", 1, 1, 1, 1),
            ]
        );
    }

    #[test]
    fn footprints_and_the_audit_head_are_read_back() {
        let mut s = Seeded::new();
        assert_eq!(s.store.audit_head_id().unwrap(), None);
        s.send(
            "2026-03-01T00:00:00Z",
            EventBody::Footprint(infoledger_policies::wire::events::Footprint {
                host: "h1".into(),
                roots: vec!["/srv".into()],
                assets: vec![infoledger_policies::wire::events::AssetFootprint {
                    asset: "HR-ASSET".into(),
                    files: 3,
                }],
            }),
        );
        let footprints = s.store.footprints().unwrap();
        assert_eq!(footprints.len(), 1);
        assert_eq!(footprints[0].assets.get("HR-ASSET"), Some(&3));
        s.store
            .revoke_agent("a1", at("2026-03-02T00:00:00Z"))
            .unwrap();
        assert!(s.store.footprints().unwrap().is_empty());
        assert_eq!(s.store.audit_head_id().unwrap(), Some(1));
    }

    /// Every aggregate reads an index that covers it (the escalation list reads rows only for
    /// the ones it shows), never the table, whatever the scope.
    #[test]
    fn every_query_reads_its_index() {
        let s = Seeded::new();
        let reader = s.store.reader();
        let expected = [
            ("unresolved", "COVERING INDEX violations_unresolved"),
            ("opened_per_day", "COVERING INDEX violations_opened_trend"),
            (
                "resolved_per_day",
                "COVERING INDEX violations_resolved_trend",
            ),
            ("escalated_newest", "INDEX violations_escalated"),
            (
                "asset_unresolved_count",
                "COVERING INDEX violations_unresolved",
            ),
            ("asset_unresolved_newest", "INDEX violations_unresolved"),
            ("departments", "COVERING INDEX violations_by_department"),
            ("opened_in_range", "COVERING INDEX violations_by_department"),
            (
                "resolved_per_month",
                "COVERING INDEX violations_resolved_trend",
            ),
        ];
        for ((name, sql), (expected_name, index)) in sql::all().into_iter().zip(expected) {
            assert_eq!(name, expected_name);
            let mut stmt = reader
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let nulls = vec![Value::Null; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let on_violations: Vec<&String> = plan
                .iter()
                .filter(|line| line.contains("violations"))
                .collect();
            assert!(!on_violations.is_empty(), "{name}: {plan:?}");
            for line in on_violations {
                assert!(
                    line.contains(index),
                    "{name} does not use {index}: {plan:?}"
                );
            }
            // The unresolved pass groups in the index's order.
            if name == "unresolved" {
                assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:?}");
            }
        }
    }

    /// The review queue's first page within one status reads its index in order: no sort of
    /// every violation of that status.
    #[test]
    fn the_queue_within_one_status_reads_in_order() {
        use crate::store::model::{PageRequest, Sort, SortKey, SortOrder, ViolationFilter};
        let s = Seeded::new();
        let reader = s.store.reader();
        let filter = ViolationFilter {
            statuses: vec![ViolationStatus::Open],
            path_contains: Some("payroll".into()),
            ..ViolationFilter::default()
        };
        for (key, index) in [
            (SortKey::OpenedAt, "violations_by_status_opened"),
            (SortKey::Severity, "violations_by_status_severity"),
        ] {
            for order in [SortOrder::Desc, SortOrder::Asc] {
                let page = PageRequest {
                    after: None,
                    limit: 50,
                    sort: Sort { key, order },
                };
                let (sql, params) = super::super::query::list_sql(&filter, &page, None).unwrap();
                let mut stmt = reader
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap();
                let plan: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(params), |row| row.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(plan.iter().any(|l| l.contains(index)), "{key:?}: {plan:?}");
                assert!(
                    !plan.iter().any(|l| l.contains("TEMP B-TREE")),
                    "{key:?}: {plan:?}"
                );
            }
        }
    }
}
