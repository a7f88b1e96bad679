//! Figures for the dashboard: the open-violation heatmap and remediation speed per department.

use super::blocking;
use super::params::{Params, RawQuery};
use crate::api::{AppError, AppState};
use crate::store::{Caller, DepartmentRemediation, HeatmapCell, ViolationStatus};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use infoledger_policies::Severity;
use serde::Serialize;
use std::collections::BTreeMap;

/// The remediation window when `days` is not given.
const DEFAULT_DAYS: u64 = 30;
/// The longest remediation window.
const MAX_DAYS: u64 = 366;

/// The heatmap answer.
#[derive(Debug, Serialize)]
pub(super) struct Heatmap {
    /// The statuses counted.
    statuses: [ViolationStatus; 2],
    /// Non-empty cells, by department (none first), then severity lowest first.
    cells: Vec<HeatmapCell>,
}

/// `GET /api/v1/stats/heatmap`: unresolved violations (`open` or `acknowledged`; excepted ones
/// were accepted for now) counted by department × severity, within the caller's departments.
pub(super) async fn heatmap(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<Heatmap>, AppError> {
    Params::new(query, &[])?;
    let store = state.store();
    let cells = blocking(move || Ok(store.heatmap(caller.scope())?)).await?;
    Ok(Json(Heatmap {
        statuses: [ViolationStatus::Open, ViolationStatus::Acknowledged],
        cells,
    }))
}

/// The remediation answer.
#[derive(Debug, Serialize)]
pub(super) struct Remediation {
    /// The window's length.
    days: u64,
    /// The window: violations resolved after `since` and at or before `until`.
    since: DateTime<Utc>,
    /// The end of the window (now).
    until: DateTime<Utc>,
    /// The service levels measured against, in seconds per severity (`null`: none).
    sla_seconds: BTreeMap<Severity, Option<i64>>,
    /// Per department (none first).
    departments: Vec<DepartmentRemediation>,
}

/// `GET /api/v1/stats/remediation?days=N` (1–366, default 30): per department, open violations
/// by severity now, and over violations resolved in the last N days the median and 90th
/// percentile time to resolve and the share resolved within the severity's SLA (see
/// `store::stats` for the exact definitions).
pub(super) async fn remediation(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<Remediation>, AppError> {
    let params = Params::new(query, &["days"])?;
    let days = params.number("days", 1..=MAX_DAYS, DEFAULT_DAYS)?;
    let until = Utc::now();
    // At most MAX_DAYS, which fits.
    let since = until - TimeDelta::days(i64::try_from(days).unwrap_or(i64::MAX));
    let slas = state.slas().clone();
    let sla_seconds = Severity::ALL
        .into_iter()
        .map(|s| (s, slas.get(s).map(|d| d.num_seconds())))
        .collect();
    let store = state.store();
    let departments =
        blocking(move || Ok(store.remediation(since, until, &slas, caller.scope())?)).await?;
    Ok(Json(Remediation {
        days,
        since,
        until,
        sla_seconds,
        departments,
    }))
}
