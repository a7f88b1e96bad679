//! Reads for managers: one violation with its history, the filtered and sorted review queue, the
//! heatmap.
//!
//! Every read takes the caller's department restriction (`None`: all departments; `Some(list)`:
//! only violations whose department is in the list, which excludes violations without one) and
//! applies it in the SQL, so no code path can hand out rows it forgot to filter.

use super::model::{
    Cursor, HeatmapCell, HistoryEntry, Page, PageRequest, Sort, SortKey, SortOrder, Violation,
    ViolationDetail, ViolationFilter,
};
use super::{parse_timestamp, timestamp, Store, StoreError};
use infoledger_policies::Severity;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row};
use std::str::FromStr;

const VIOLATION_COLUMNS: &str = "id, agent_id, host, path, kind, severity, status, label, asset,
    department, rule, message, fix, excepted_until, opened_at, resolved_at, updated_at,
    escalated_at";

/// The SQL condition and its parameter for a department restriction.
fn restriction(departments: Option<&[String]>) -> Result<Option<Value>, StoreError> {
    departments
        .map(|list| Ok(Value::Text(serde_json::to_string(list)?)))
        .transpose()
}

/// A severity's rank (info 0 … critical 4) in SQL. Migration 4 indexes exactly this expression,
/// so it must not change without a migration that re-creates `violations_by_severity`.
pub(crate) const SEVERITY_RANK: &str = "(CASE severity WHEN 'info' THEN 0 WHEN 'low' THEN 1 \
     WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 END)";

/// The columns an order compares, most significant first; the id makes every order total.
fn order_columns(key: SortKey) -> &'static [&'static str] {
    match key {
        SortKey::OpenedAt => &["opened_at", "id"],
        SortKey::UpdatedAt => &["updated_at", "id"],
        SortKey::Severity => &[SEVERITY_RANK, "opened_at", "id"],
    }
}

/// The cursor that continues after `last` in `sort` order.
fn cursor_after(sort: Sort, last: &Violation) -> Cursor {
    let (rank, at) = match sort.key {
        SortKey::OpenedAt => (None, last.opened_at),
        SortKey::UpdatedAt => (None, last.updated_at),
        SortKey::Severity => (Some(severity_rank(last.severity)), last.opened_at),
    };
    Cursor {
        sort,
        rank,
        at: timestamp(at),
        id: last.id.clone(),
    }
}

/// The rank [`SEVERITY_RANK`] computes in SQL.
fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// Adds `column IN (…)` for a non-empty list of values.
fn any_of<'a>(
    conditions: &mut Vec<String>,
    params: &mut Vec<Value>,
    column: &str,
    values: impl Iterator<Item = &'a str>,
) {
    let before = params.len();
    params.extend(values.map(|v| Value::Text(v.to_owned())));
    let count = params.len() - before;
    if count > 0 {
        conditions.push(format!("{column} IN ({})", vec!["?"; count].join(", ")));
    }
}

/// `text` with LIKE's wildcards and the escape character itself escaped by `\`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The violation `id` as the connection sees it now, without scope (callers check scope first).
pub(super) fn read_violation(
    conn: &rusqlite::Connection,
    id: &str,
) -> Result<Option<Violation>, StoreError> {
    let sql = format!("SELECT {VIOLATION_COLUMNS} FROM violations WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], RawViolation::read)
        .optional()?
        .map(RawViolation::check)
        .transpose()
}

impl Store {
    /// One violation with its history, if it exists and lies within `departments`.
    pub fn violation(
        &self,
        id: &str,
        departments: Option<&[String]>,
    ) -> Result<Option<ViolationDetail>, StoreError> {
        let reader = self.reader();
        // One read transaction: the violation and its history come from the same snapshot.
        let tx = reader.unchecked_transaction()?;
        let scope = restriction(departments)?;
        let sql = format!(
            "SELECT {VIOLATION_COLUMNS} FROM violations
             WHERE id = ?1 AND (?2 IS NULL OR department IN (SELECT value FROM json_each(?2)))"
        );
        let raw = tx
            .query_row(&sql, (id, scope), RawViolation::read)
            .optional()?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let violation = raw.check()?;
        let mut stmt = tx.prepare_cached(
            "SELECT at, actor, action, from_status, to_status, reason FROM violation_history
             WHERE violation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut history = Vec::new();
        for row in rows {
            let (at, actor, action, from, to, reason) = row?;
            history.push(HistoryEntry {
                at: parse_timestamp(&at)?,
                actor,
                action,
                from_status: from.as_deref().map(parse).transpose()?,
                to_status: parse(&to)?,
                reason,
            });
        }
        Ok(Some(ViolationDetail { violation, history }))
    }

    /// A page of violations matching `filter` within `departments`, in `page.sort` order.
    ///
    /// Keyset pagination: a page starts strictly after the cursor's sort values, so pages never
    /// overlap or skip rows that existed (unchanged) when the first page was read, whatever is
    /// inserted meanwhile. A cursor issued for another order is refused
    /// ([`StoreError::InvalidInput`] on `cursor`).
    pub fn list_violations(
        &self,
        filter: &ViolationFilter,
        page: &PageRequest,
        departments: Option<&[String]>,
    ) -> Result<Page, StoreError> {
        let (sql, params) = list_sql(filter, page, departments)?;
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT);
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), RawViolation::read)?;
        let mut raws = Vec::new();
        for row in rows {
            raws.push(row?);
        }
        let more = raws.len() > limit as usize;
        raws.truncate(limit as usize);
        let violations: Vec<Violation> = raws
            .into_iter()
            .map(RawViolation::check)
            .collect::<Result<_, _>>()?;
        let next = match violations.last() {
            Some(last) if more => Some(cursor_after(page.sort, last)),
            _ => None,
        };
        Ok(Page { violations, next })
    }

    /// Unresolved violations (`open` or `acknowledged`) counted by department and severity, within
    /// `departments`; ordered by department (none first), then severity lowest first.
    ///
    /// Excepted violations are left out: a manager accepted them for now.
    pub fn heatmap(&self, departments: Option<&[String]>) -> Result<Vec<HeatmapCell>, StoreError> {
        let reader = self.reader();
        // The counts table (migration 4) holds these figures per cell, kept by triggers.
        let mut stmt = reader.prepare_cached(
            "SELECT department, severity, sum(n) FROM violation_counts
             WHERE status IN ('open', 'acknowledged')
               AND (?1 IS NULL OR department IN (SELECT value FROM json_each(?1)))
             GROUP BY department, severity
             HAVING sum(n) > 0",
        )?;
        let rows = stmt.query_map([restriction(departments)?], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut cells = Vec::new();
        for row in rows {
            let (department, severity, count) = row?;
            cells.push(HeatmapCell {
                department,
                severity: parse(&severity)?,
                count: count.unsigned_abs(),
            });
        }
        cells.sort_by(|a, b| (&a.department, a.severity).cmp(&(&b.department, b.severity)));
        Ok(cells)
    }
}

/// The statement and parameters of one page of [`Store::list_violations`]; it asks for one row
/// more than the page holds, which tells whether another page follows.
pub(super) fn list_sql(
    filter: &ViolationFilter,
    page: &PageRequest,
    departments: Option<&[String]>,
) -> Result<(String, Vec<Value>), StoreError> {
    let sort = page.sort;
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    any_of(
        &mut conditions,
        &mut params,
        "status",
        filter.statuses.iter().map(|s| s.as_str()),
    );
    any_of(
        &mut conditions,
        &mut params,
        "severity",
        filter.severities.iter().map(|s| s.as_str()),
    );
    any_of(
        &mut conditions,
        &mut params,
        "kind",
        filter.kinds.iter().map(|k| k.as_str()),
    );
    for (column, value) in [
        ("department", &filter.department),
        ("asset", &filter.asset),
        ("host", &filter.host),
        ("label", &filter.label),
    ] {
        if let Some(value) = value {
            conditions.push(format!("{column} = ?"));
            params.push(Value::Text(value.clone()));
        }
    }
    if let Some(text) = &filter.path_contains {
        // LIKE ignores the case of ASCII letters; the escape keeps `%` and `_` literal.
        conditions.push("path LIKE ? ESCAPE '\\'".to_owned());
        params.push(Value::Text(format!("%{}%", escape_like(text))));
    }
    if let Some(scope) = restriction(departments)? {
        conditions.push("department IN (SELECT value FROM json_each(?))".to_owned());
        params.push(scope);
    }
    let columns = order_columns(sort.key);
    let direction = match sort.order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    if let Some(after) = &page.after {
        if after.sort != sort {
            return Err(StoreError::InvalidInput {
                field: "cursor",
                problem: format!("it continues {}, not {sort}", after.sort),
            });
        }
        let placeholders = vec!["?"; columns.len()].join(", ");
        let comparison = match sort.order {
            SortOrder::Asc => ">",
            SortOrder::Desc => "<",
        };
        conditions.push(format!(
            "({}) {comparison} ({placeholders})",
            columns.join(", ")
        ));
        if let Some(rank) = after.rank {
            params.push(Value::Integer(i64::from(rank)));
        }
        params.push(Value::Text(after.at.clone()));
        params.push(Value::Text(after.id.clone()));
    }
    let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT);
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let order_by: Vec<String> = columns
        .iter()
        .map(|column| format!("{column} {direction}"))
        .collect();
    // One row more than asked tells whether another page follows.
    params.push(Value::Integer(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {VIOLATION_COLUMNS} FROM violations {where_clause}
         ORDER BY {} LIMIT ?",
        order_by.join(", ")
    );

    Ok((sql, params))
}

fn parse<T: FromStr<Err = String>>(text: &str) -> Result<T, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

/// A violation row as stored, before its enums and times are checked.
struct RawViolation {
    id: String,
    agent: String,
    host: String,
    path: String,
    kind: String,
    severity: String,
    status: String,
    label: Option<String>,
    asset: Option<String>,
    department: Option<String>,
    rule: Option<String>,
    message: String,
    fix: String,
    excepted_until: Option<String>,
    opened_at: String,
    resolved_at: Option<String>,
    updated_at: String,
    escalated_at: Option<String>,
}

impl RawViolation {
    /// Reads the columns in [`VIOLATION_COLUMNS`] order.
    fn read(row: &Row<'_>) -> rusqlite::Result<RawViolation> {
        Ok(RawViolation {
            id: row.get(0)?,
            agent: row.get(1)?,
            host: row.get(2)?,
            path: row.get(3)?,
            kind: row.get(4)?,
            severity: row.get(5)?,
            status: row.get(6)?,
            label: row.get(7)?,
            asset: row.get(8)?,
            department: row.get(9)?,
            rule: row.get(10)?,
            message: row.get(11)?,
            fix: row.get(12)?,
            excepted_until: row.get(13)?,
            opened_at: row.get(14)?,
            resolved_at: row.get(15)?,
            updated_at: row.get(16)?,
            escalated_at: row.get(17)?,
        })
    }

    fn check(self) -> Result<Violation, StoreError> {
        let time = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
        let current_escalation = self
            .escalated_at
            .filter(|at| *at >= self.opened_at && self.resolved_at.is_none());
        Ok(Violation {
            kind: parse(&self.kind)?,
            severity: parse(&self.severity)?,
            status: parse(&self.status)?,
            excepted_until: time(self.excepted_until)?,
            opened_at: parse_timestamp(&self.opened_at)?,
            resolved_at: time(self.resolved_at)?,
            updated_at: parse_timestamp(&self.updated_at)?,
            // An escalation from an earlier open period does not count for the current one
            // (fixed-width timestamps compare as text).
            escalated_at: time(current_escalation)?,
            id: self.id,
            agent: self.agent,
            host: self.host,
            path: self.path,
            label: self.label,
            asset: self.asset,
            department: self.department,
            rule: self.rule,
            message: self.message,
            fix: self.fix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::Cursor;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn the_sql_rank_agrees_with_severity_order() {
        let (_dir, store) = store();
        let reader = store.reader();
        for severity in Severity::ALL {
            let rank: i64 = reader
                .query_row(
                    &format!("SELECT {SEVERITY_RANK} FROM (SELECT ?1 AS severity)"),
                    [severity.as_str()],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(rank, i64::from(severity_rank(severity)), "{severity}");
        }
        let ranks: Vec<u8> = Severity::ALL.into_iter().map(severity_rank).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(escape_like("plain/path"), "plain/path");
    }

    /// Every order is served by an index, first page and later pages alike, so a page costs a
    /// short index range and never a sort of the whole table.
    #[test]
    fn every_order_walks_an_index() {
        let (_dir, store) = store();
        let reader = store.reader();
        let expected = [
            (SortKey::OpenedAt, "violations_by_opened"),
            (SortKey::UpdatedAt, "violations_by_updated"),
            (SortKey::Severity, "violations_by_severity"),
        ];
        for (key, index) in expected {
            for order in [SortOrder::Asc, SortOrder::Desc] {
                let sort = Sort { key, order };
                let cursor = Cursor {
                    sort,
                    rank: (key == SortKey::Severity).then_some(2),
                    at: "2026-03-01T10:00:00.000000Z".into(),
                    id: "a".repeat(64),
                };
                for after in [None, Some(cursor)] {
                    let page = PageRequest {
                        after,
                        limit: 50,
                        sort,
                    };
                    let (sql, params) = list_sql(&ViolationFilter::default(), &page, None).unwrap();
                    let mut stmt = reader
                        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .unwrap();
                    let plan: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(params), |row| row.get(3))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    let plan = plan.join("; ");
                    assert!(plan.contains(index), "{sort}: {plan}");
                    assert!(!plan.contains("TEMP B-TREE"), "{sort}: {plan}");
                }
            }
        }
    }
}
