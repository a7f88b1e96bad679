//! Maturity (`/maturity`, `/maturity.csv`): per department, unresolved violations by severity,
//! the overdue ones, the median time to remediate and the share remediated within the SLA over
//! the last 90 days, the month-by-month trend over a year, and a score against a target.
//!
//! The figures read every violation of the last year, so they are computed for all departments
//! at once, kept for five minutes and shown to each caller for their own departments only.
//!
//! The score (0–100) is the mean of two shares, so a department can reach it by fixing fast and
//! by keeping its backlog within the service levels:
//! - *remediated within SLA*: of the violations resolved in the last 90 days whose severity has
//!   an SLA, the share resolved within it (left out when there are none);
//! - *backlog within SLA*: of the unresolved (`open`, `acknowledged`) violations, the share not
//!   yet escalated for outliving their SLA (100 % when nothing is unresolved).

use super::blocking;
use super::error::PageError;
use super::ledger::csv_download;
use super::session::SignedIn;
use super::view::{human_duration, link, percent, render, when, Chrome, SEVERITIES};
use crate::api::AppState;
use crate::store::overview::MonthlyRemediation;
use crate::store::{DepartmentRemediation, SeverityCounts};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The window of the remediation figures.
const WINDOW_DAYS: i64 = 90;
/// Months in the trend.
const MONTHS: u32 = 12;

/// The score of a department from its two shares (see the module doc).
pub(crate) fn score(within_sla: Option<f64>, unresolved: u64, overdue: u64) -> f64 {
    let backlog = if unresolved == 0 {
        1.0
    } else {
        1.0 - overdue.min(unresolved) as f64 / unresolved as f64
    };
    let mean = match within_sla {
        Some(share) => (share + backlog) / 2.0,
        None => backlog,
    };
    (mean * 100.0).round()
}

fn by_severity(counts: &SeverityCounts) -> Vec<u64> {
    SEVERITIES
        .iter()
        .map(|s| match s {
            infoledger_policies::Severity::Critical => counts.critical,
            infoledger_policies::Severity::High => counts.high,
            infoledger_policies::Severity::Medium => counts.medium,
            infoledger_policies::Severity::Low => counts.low,
            infoledger_policies::Severity::Info => counts.info,
        })
        .collect()
}

/// One month of one department's trend.
#[derive(Debug, Clone)]
pub(crate) struct MonthCell {
    pub(crate) opened: u64,
    pub(crate) resolved: u64,
    pub(crate) share: String,
    /// `good` (≥ 90 %), `fair` (≥ 70 %), `poor`, or empty without SLA-bound resolutions.
    pub(crate) class: &'static str,
}

/// One department.
#[derive(Debug, Clone)]
pub(crate) struct DepartmentRow {
    pub(crate) department: String,
    pub(crate) queue: String,
    pub(crate) open: Vec<u64>,
    pub(crate) overdue: u64,
    pub(crate) resolved: u64,
    pub(crate) median: String,
    pub(crate) within_sla: String,
    pub(crate) backlog: String,
    pub(crate) score: String,
    pub(crate) meets_target: bool,
    pub(crate) months: Vec<MonthCell>,
}

#[derive(Template)]
#[template(path = "maturity.html")]
struct MaturityPage {
    chrome: Chrome,
    severities: Vec<&'static str>,
    target: u8,
    window_days: i64,
    computed_at: String,
    fresh_for: String,
    months: Vec<String>,
    rows: Vec<DepartmentRow>,
}

/// The months of the trend, oldest first, as `YYYY-MM`, and the first one's first day.
fn month_labels(today: NaiveDate) -> (NaiveDate, Vec<String>) {
    let this_month = today.with_day(1).unwrap_or(today);
    let first = this_month
        .checked_sub_months(Months::new(MONTHS - 1))
        .unwrap_or(this_month);
    let labels = (0..MONTHS)
        .filter_map(|k| first.checked_add_months(Months::new(k)))
        .map(|m| m.format("%Y-%m").to_string())
        .collect();
    (first, labels)
}

/// Every department's figures, as computed at one time. They read every violation of the
/// year, so they are computed for all departments at once and kept for [`FRESH_FOR`]; each
/// caller sees the rows of their own departments.
#[derive(Debug)]
pub(crate) struct Figures {
    computed_at: DateTime<Utc>,
    months: Vec<String>,
    remediation: Vec<DepartmentRemediation>,
    overdue: BTreeMap<Option<String>, u64>,
    monthly: Vec<MonthlyRemediation>,
}

/// How long computed figures are shown before they are computed again.
const FRESH_FOR: TimeDelta = TimeDelta::minutes(5);

/// The current figures: kept ones while fresh, else computed now.
async fn figures(state: &AppState) -> Result<Arc<Figures>, PageError> {
    let now = Utc::now();
    if let Some(kept) = state.dashboard().maturity_figures() {
        if now.signed_duration_since(kept.computed_at) < FRESH_FOR {
            return Ok(kept);
        }
    }
    let store = state.store();
    let slas = state.slas().clone();
    let (first_month, months) = month_labels(now.date_naive());
    let since_month = first_month
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc());
    let figures = blocking(move || {
        let remediation =
            store.remediation(now - TimeDelta::days(WINDOW_DAYS), now, &slas, None)?;
        let overdue = store.unresolved(None)?.overdue_by_department();
        let monthly = store.monthly_remediation(since_month, now, &slas, None)?;
        Ok(Figures {
            computed_at: now,
            months,
            remediation,
            overdue,
            monthly,
        })
    })
    .await?;
    let figures = Arc::new(figures);
    state
        .dashboard()
        .keep_maturity_figures(Arc::clone(&figures));
    Ok(figures)
}

async fn rows(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<(Arc<Figures>, Vec<DepartmentRow>), PageError> {
    let target = f64::from(state.dashboard().settings().maturity_target);
    let figures = figures(state).await?;
    let scope = signed_in.caller.scope();
    // Scope applies to the rows: another department's figures are never shown.
    let visible = |department: &Option<String>| match (scope, department) {
        (None, _) => true,
        (Some(list), Some(d)) => list.contains(d),
        (Some(_), None) => false,
    };
    let months = &figures.months;
    let overdue = &figures.overdue;
    let mut by_department: BTreeMap<Option<String>, Option<DepartmentRemediation>> =
        BTreeMap::new();
    for department in scope.unwrap_or_default() {
        by_department.insert(Some(department.clone()), None);
    }
    for f in figures
        .remediation
        .iter()
        .filter(|f| visible(&f.department))
    {
        by_department.insert(f.department.clone(), Some(f.clone()));
    }
    let mut trend: BTreeMap<(Option<String>, String), MonthlyRemediation> = BTreeMap::new();
    for m in figures
        .monthly
        .iter()
        .filter(|m| visible(&m.department))
        .cloned()
    {
        by_department.entry(m.department.clone()).or_insert(None);
        trend.insert((m.department.clone(), m.month.clone()), m);
    }
    let rows = by_department
        .into_iter()
        .map(|(department, figures)| {
            let open = figures.as_ref().map(|f| f.open).unwrap_or_default();
            let unresolved = by_severity(&open).iter().sum();
            let overdue = overdue.get(&department).copied().unwrap_or(0);
            let within_sla = figures.as_ref().and_then(|f| f.within_sla_share);
            let backlog = if unresolved == 0 {
                1.0
            } else {
                1.0 - overdue.min(unresolved) as f64 / unresolved as f64
            };
            let score = score(within_sla, unresolved, overdue);
            let months = months
                .iter()
                .map(|month| {
                    let figures = trend.get(&(department.clone(), month.clone()));
                    let share = figures.and_then(|m| {
                        (m.resolved_with_sla > 0)
                            .then(|| m.resolved_within_sla as f64 / m.resolved_with_sla as f64)
                    });
                    MonthCell {
                        opened: figures.map_or(0, |m| m.opened),
                        resolved: figures.map_or(0, |m| m.resolved),
                        share: percent(share),
                        class: match share {
                            None => "",
                            Some(s) if s >= 0.9 => "good",
                            Some(s) if s >= 0.7 => "fair",
                            Some(_) => "poor",
                        },
                    }
                })
                .collect();
            DepartmentRow {
                queue: match &department {
                    Some(d) => link(
                        "/violations",
                        [
                            ("status", "open"),
                            ("status", "acknowledged"),
                            ("department", d.as_str()),
                        ],
                    ),
                    None => String::new(),
                },
                department: department.unwrap_or_else(|| "(no asset)".to_owned()),
                open: by_severity(&open),
                overdue,
                resolved: figures.as_ref().map_or(0, |f| f.resolved),
                median: figures
                    .as_ref()
                    .and_then(|f| f.median_seconds)
                    .map(|s| human_duration(TimeDelta::seconds(s.round() as i64)))
                    .unwrap_or_else(|| "—".to_owned()),
                within_sla: percent(within_sla),
                backlog: percent(Some(backlog)),
                score: format!("{score:.0}"),
                meets_target: score >= target,
                months,
            }
        })
        .collect();
    Ok((Arc::clone(&figures), rows))
}

/// `GET /maturity`.
pub(crate) async fn show(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let (figures, rows) = rows(&state, &signed_in).await?;
    render(&MaturityPage {
        chrome: Chrome::new(&signed_in, "maturity"),
        severities: SEVERITIES.iter().map(|s| s.as_str()).collect(),
        target: state.dashboard().settings().maturity_target,
        window_days: WINDOW_DAYS,
        computed_at: when(figures.computed_at),
        fresh_for: human_duration(FRESH_FOR),
        months: figures.months.clone(),
        rows,
    })
}

/// `GET /maturity.csv`.
pub(crate) async fn export(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let (_, rows) = rows(&state, &signed_in).await?;
    let target = state.dashboard().settings().maturity_target.to_string();
    let mut header = vec!["department"];
    header.extend(SEVERITIES.iter().map(|s| s.as_str()));
    header.extend([
        "overdue",
        "resolved_90d",
        "median_time_to_remediate",
        "within_sla",
        "backlog_within_sla",
        "score",
        "target",
    ]);
    csv_download(
        "maturity.csv",
        &header,
        rows.into_iter().map(|r| {
            let mut record = vec![r.department];
            record.extend(r.open.iter().map(u64::to_string));
            record.extend([
                r.overdue.to_string(),
                r.resolved.to_string(),
                r.median,
                r.within_sla,
                r.backlog,
                r.score,
                target.clone(),
            ]);
            record
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_mean_of_the_two_shares() {
        assert_eq!(score(Some(0.8), 10, 2), 80.0);
        assert_eq!(score(Some(0.5), 0, 0), 75.0);
        assert_eq!(score(None, 4, 1), 75.0);
        assert_eq!(score(None, 0, 0), 100.0);
        assert_eq!(score(Some(0.0), 3, 3), 0.0);
    }

    #[test]
    fn the_trend_covers_twelve_months_up_to_this_one() {
        let (first, labels) = month_labels(NaiveDate::from_ymd_opt(2026, 3, 15).unwrap());
        assert_eq!(first, NaiveDate::from_ymd_opt(2025, 4, 1).unwrap());
        assert_eq!(labels.len(), 12);
        assert_eq!(labels.first().map(String::as_str), Some("2025-04"));
        assert_eq!(labels.last().map(String::as_str), Some("2026-03"));
    }
}
