//! Reads for managers: one violation with its history, the filtered review queue, the heatmap.
//!
//! Every read takes the caller's department restriction (`None`: all departments; `Some(list)`:
//! only violations whose department is in the list, which excludes violations without one) and
//! applies it in the SQL, so no code path can hand out rows it forgot to filter.

use super::model::{
    Cursor, HeatmapCell, HistoryEntry, Page, PageRequest, Violation, ViolationDetail,
    ViolationFilter,
};
use super::{parse_timestamp, Store, StoreError};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row};
use std::str::FromStr;

const VIOLATION_COLUMNS: &str = "id, agent_id, host, path, kind, severity, status, label, asset,
    department, rule, message, fix, excepted_until, opened_at, resolved_at, updated_at";

/// The SQL condition and its parameter for a department restriction.
fn restriction(departments: Option<&[String]>) -> Result<Option<Value>, StoreError> {
    departments
        .map(|list| Ok(Value::Text(serde_json::to_string(list)?)))
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

    /// A page of violations matching `filter` within `departments`, ordered by (opened_at, id).
    ///
    /// Keyset pagination: a page starts strictly after the cursor, so pages never overlap or skip
    /// rows that existed when the first page was read, whatever is inserted meanwhile.
    pub fn list_violations(
        &self,
        filter: &ViolationFilter,
        page: &PageRequest,
        departments: Option<&[String]>,
    ) -> Result<Page, StoreError> {
        let mut conditions: Vec<&str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let mut equal = |condition: &'static str, value: Option<&str>| {
            if let Some(value) = value {
                conditions.push(condition);
                params.push(Value::Text(value.to_owned()));
            }
        };
        equal("status = ?", filter.status.map(|s| s.as_str()));
        equal("department = ?", filter.department.as_deref());
        equal("severity = ?", filter.severity.map(|s| s.as_str()));
        equal("kind = ?", filter.kind.map(|k| k.as_str()));
        equal("asset = ?", filter.asset.as_deref());
        equal("host = ?", filter.host.as_deref());
        equal("label = ?", filter.label.as_deref());
        // instr, not LIKE: `%` and `_` in a path are literal, and paths are case-sensitive.
        equal("instr(path, ?) > 0", filter.path_contains.as_deref());
        if let Some(scope) = restriction(departments)? {
            conditions.push("department IN (SELECT value FROM json_each(?))");
            params.push(scope);
        }
        if let Some(after) = &page.after {
            conditions.push("(opened_at, id) > (?, ?)");
            params.push(Value::Text(after.opened_at.clone()));
            params.push(Value::Text(after.id.clone()));
        }
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT);
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One row more than asked tells whether another page follows.
        params.push(Value::Integer(i64::from(limit) + 1));
        let sql = format!(
            "SELECT {VIOLATION_COLUMNS} FROM violations {where_clause}
             ORDER BY opened_at, id LIMIT ?"
        );

        let reader = self.reader();
        let mut stmt = reader.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), RawViolation::read)?;
        let mut raws = Vec::new();
        for row in rows {
            raws.push(row?);
        }
        let more = raws.len() > limit as usize;
        raws.truncate(limit as usize);
        let next = match raws.last() {
            Some(last) if more => Some(Cursor {
                opened_at: last.opened_at.clone(),
                id: last.id.clone(),
            }),
            _ => None,
        };
        let violations = raws
            .into_iter()
            .map(RawViolation::check)
            .collect::<Result<_, _>>()?;
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
        })
    }

    fn check(self) -> Result<Violation, StoreError> {
        let time = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
        Ok(Violation {
            kind: parse(&self.kind)?,
            severity: parse(&self.severity)?,
            status: parse(&self.status)?,
            excepted_until: time(self.excepted_until)?,
            opened_at: parse_timestamp(&self.opened_at)?,
            resolved_at: time(self.resolved_at)?,
            updated_at: parse_timestamp(&self.updated_at)?,
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
