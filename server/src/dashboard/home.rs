//! The risk monitor (`/`): the heatmap of unresolved violations by department and severity, the
//! trend of unresolved violations over 30 or 90 days, escalated violations, and the assets with
//! the most open violations.

use super::blocking;
use super::chart::{trend, TrendChart};
use super::error::PageError;
use super::session::SignedIn;
use super::view::{link, render, segment, Chrome, Fields, ViolationRow, SEVERITIES};
use crate::api::AppState;
use crate::store::overview::AssetCount;
use crate::store::HeatmapCell;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{Days, Utc};
use std::collections::BTreeMap;

/// Escalated violations listed.
const ESCALATED_SHOWN: u32 = 10;
/// Assets listed.
const ASSETS_SHOWN: usize = 10;

/// One heatmap cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) count: u64,
    /// `heat-0` (none) … `heat-5` (the largest cell).
    pub(crate) heat: String,
    /// The queue filtered to this cell; empty for violations without a department.
    pub(crate) href: String,
    pub(crate) severity: &'static str,
}

/// One heatmap row.
#[derive(Debug, Clone)]
pub(crate) struct HeatRow {
    pub(crate) department: String,
    pub(crate) cells: Vec<Cell>,
    pub(crate) total: u64,
}

/// One asset of the "most open violations" list.
#[derive(Debug, Clone)]
pub(crate) struct AssetRow {
    pub(crate) asset: String,
    pub(crate) department: String,
    pub(crate) count: u64,
    pub(crate) queue: String,
    pub(crate) ledger: String,
    /// The bar's width, 0–100.
    pub(crate) bar: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    severities: Vec<&'static str>,
    heatmap: Vec<HeatRow>,
    column_totals: Vec<u64>,
    total: u64,
    days: u64,
    chart: TrendChart,
    escalated_total: u64,
    escalated: Vec<ViolationRow>,
    assets: Vec<AssetRow>,
    export: String,
}

/// The heat class of `count` when the largest cell holds `max`: 0 for none, else 1–5 in equal
/// steps of the largest.
fn heat(count: u64, max: u64) -> u64 {
    if count == 0 || max == 0 {
        0
    } else {
        (count * 5).div_ceil(max).clamp(1, 5)
    }
}

/// The heatmap's rows: every department with violations, and every department of a scoped caller
/// (a manager sees their own row even when it is empty).
fn heat_rows(cells: &[HeatmapCell], scope: Option<&[String]>) -> (Vec<HeatRow>, Vec<u64>) {
    let mut by_department: BTreeMap<Option<String>, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for department in scope.unwrap_or_default() {
        by_department.entry(Some(department.clone())).or_default();
    }
    for cell in cells {
        *by_department
            .entry(cell.department.clone())
            .or_default()
            .entry(cell.severity.as_str())
            .or_default() += cell.count;
    }
    let max = cells.iter().map(|c| c.count).max().unwrap_or(0);
    let mut totals = vec![0; SEVERITIES.len()];
    let rows = by_department
        .into_iter()
        .map(|(department, counts)| {
            let cells: Vec<Cell> = SEVERITIES
                .iter()
                .enumerate()
                .map(|(i, severity)| {
                    let count = counts.get(severity.as_str()).copied().unwrap_or(0);
                    totals[i] += count;
                    let href = match &department {
                        Some(d) => link(
                            "/violations",
                            [
                                ("status", "open"),
                                ("status", "acknowledged"),
                                ("department", d.as_str()),
                                ("severity", severity.as_str()),
                            ],
                        ),
                        None => String::new(),
                    };
                    Cell {
                        count,
                        heat: format!("heat-{}", heat(count, max)),
                        href,
                        severity: severity.as_str(),
                    }
                })
                .collect();
            HeatRow {
                department: department.unwrap_or_else(|| "(no asset)".to_owned()),
                total: cells.iter().map(|c| c.count).sum(),
                cells,
            }
        })
        .collect();
    (rows, totals)
}

fn asset_rows(assets: &[AssetCount]) -> Vec<AssetRow> {
    let max = assets
        .iter()
        .map(|a| a.unresolved)
        .max()
        .unwrap_or(0)
        .max(1);
    assets
        .iter()
        .map(|a| AssetRow {
            asset: a.asset.clone(),
            department: a.department.clone().unwrap_or_default(),
            count: a.unresolved,
            queue: link(
                "/violations",
                [
                    ("status", "open"),
                    ("status", "acknowledged"),
                    ("asset", a.asset.as_str()),
                ],
            ),
            ledger: format!("/ledger/{}", segment(&a.asset)),
            bar: format!("{:.1}", a.unresolved as f64 * 100.0 / max as f64),
        })
        .collect()
}

/// `GET /?days=30|90`: the risk monitor.
pub(crate) async fn show(
    signed_in: SignedIn,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_query(query.as_deref());
    let days: u64 = match fields.one("days") {
        None | Some("30") => 30,
        Some("90") => 90,
        Some(other) => {
            return Err(PageError::BadRequest(format!(
                "invalid `days` `{other}`: expected 30 or 90"
            )))
        }
    };
    let store = state.store();
    let scope = signed_in.caller.departments.clone();
    let (cells, points, escalated_total, escalated, assets, now) = blocking(move || {
        let scope = scope.as_deref();
        let now = Utc::now();
        let first = now
            .date_naive()
            .checked_sub_days(Days::new(days - 1))
            .unwrap_or(now.date_naive());
        // One pass over the unresolved violations gives the heatmap, the trend's last point,
        // the assets and the overdue count.
        let unresolved = store.unresolved(scope)?;
        let points = store.unresolved_trend(first, now, unresolved.by_severity(), scope)?;
        let escalated = store.escalated(ESCALATED_SHOWN, scope)?;
        Ok((
            unresolved.heatmap(),
            points,
            unresolved.overdue(),
            escalated,
            unresolved.by_asset(Some(ASSETS_SHOWN)),
            now,
        ))
    })
    .await?;
    let (heatmap, column_totals) = heat_rows(&cells, signed_in.caller.scope());
    let may_act = signed_in.caller.may_act();
    let page = HomePage {
        chrome: Chrome::new(&signed_in, "home"),
        severities: SEVERITIES.iter().map(|s| s.as_str()).collect(),
        total: column_totals.iter().sum(),
        heatmap,
        column_totals,
        days,
        chart: trend(&points),
        escalated_total,
        escalated: escalated
            .iter()
            .map(|v| ViolationRow::new(v, now, may_act))
            .collect(),
        assets: asset_rows(&assets),
        export: link(
            "/violations.csv",
            [("status", "open"), ("status", "acknowledged")],
        ),
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoledger_policies::Severity;

    #[test]
    fn heat_scales_in_five_steps_of_the_largest_cell() {
        let classes: Vec<u64> = [0, 1, 20, 21, 50, 99, 100].map(|c| heat(c, 100)).to_vec();
        assert_eq!(classes, [0, 1, 1, 2, 3, 5, 5]);
        assert_eq!(heat(3, 0), 0);
    }

    #[test]
    fn rows_cover_the_scope_and_link_to_the_filtered_queue() {
        let cells = [
            HeatmapCell {
                department: None,
                severity: Severity::Low,
                count: 2,
            },
            HeatmapCell {
                department: Some("R&D".into()),
                severity: Severity::High,
                count: 4,
            },
        ];
        let scope = ["HR".to_owned(), "R&D".to_owned()];
        let (rows, totals) = heat_rows(&cells, Some(&scope));
        let names: Vec<&str> = rows.iter().map(|r| r.department.as_str()).collect();
        assert_eq!(names, ["(no asset)", "HR", "R&D"]);
        assert_eq!(totals, [0, 4, 0, 2, 0]);
        let high = &rows[2].cells[1];
        assert_eq!(
            (high.count, high.heat.as_str(), high.severity),
            (4, "heat-5", "high")
        );
        assert_eq!(
            high.href,
            "/violations?status=open&status=acknowledged&department=R%26D&severity=high"
        );
        assert_eq!(rows[0].cells[3].href, "");
        assert_eq!(rows[1].total, 0);
    }
}
