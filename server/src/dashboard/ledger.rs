//! The ledger (`/ledger`, `/ledger/{asset}`, `/ledger.csv`): the current ledger's assets within
//! the caller's departments, with their deadlines (past or within 30 days highlighted) and their
//! footprint: on which hosts the agents' latest complete scans found how many of their files,
//! and how many violations are open.

use super::error::PageError;
use super::session::SignedIn;
use super::view::{ago, link, render, segment, Chrome, ViolationRow};
use super::{blocking, CurrentLedger};
use crate::api::AppState;
use crate::store::drift::Drift;
use crate::store::overview::AgentFootprint;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use infoledger_policies::Asset;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A deadline this close (in days) is highlighted as near.
const NEAR_DAYS: i64 = 30;
/// Open violations listed on an asset's page.
const VIOLATIONS_SHOWN: u32 = 20;

/// An asset as a row of the ledger.
#[derive(Debug, Clone)]
pub(crate) struct AssetRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) name: String,
    pub(crate) department: String,
    pub(crate) administrator: String,
    pub(crate) label: String,
    pub(crate) deadline: String,
    /// `past`, `near` or empty.
    pub(crate) deadline_class: &'static str,
    pub(crate) hosts: usize,
    pub(crate) files: u64,
    pub(crate) open: u64,
    pub(crate) queue: String,
}

/// `past` when the deadline has passed (the day itself is still allowed), `near` within
/// [`NEAR_DAYS`], else nothing.
fn deadline_class(deadline: Option<NaiveDate>, today: NaiveDate) -> &'static str {
    match deadline {
        Some(day) if day < today => "past",
        Some(day) if (day - today).num_days() <= NEAR_DAYS => "near",
        _ => "",
    }
}

/// The footprint of one asset: host → (files, agent, when).
fn footprint_of<'a>(
    footprints: &'a [AgentFootprint],
    asset: &str,
) -> Vec<(&'a AgentFootprint, u64)> {
    footprints
        .iter()
        .filter_map(|f| f.assets.get(asset).map(|n| (f, *n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn queue_link(asset: &str) -> String {
    link(
        "/violations",
        [
            ("status", "open"),
            ("status", "acknowledged"),
            ("asset", asset),
        ],
    )
}

fn row(
    ledger: &CurrentLedger,
    asset: &Asset,
    footprints: &[AgentFootprint],
    open: &BTreeMap<String, u64>,
    today: NaiveDate,
) -> AssetRow {
    let seen = footprint_of(footprints, &asset.id);
    let mut hosts: Vec<&str> = seen.iter().map(|(f, _)| f.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    AssetRow {
        id: asset.id.clone(),
        href: format!("/ledger/{}", segment(&asset.id)),
        name: asset.name.clone(),
        department: asset.department.clone(),
        administrator: asset.administrator.clone(),
        label: ledger.bundle.policy.label(asset.label).name.clone(),
        deadline: asset
            .access_until
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        deadline_class: deadline_class(asset.access_until, today),
        hosts: hosts.len(),
        files: seen.iter().map(|(_, n)| n).sum(),
        open: open.get(&asset.id).copied().unwrap_or(0),
        queue: queue_link(&asset.id),
    }
}

/// The assets of the current ledger within the caller's departments, as rows.
async fn rows(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<(Option<u64>, Vec<AssetRow>), PageError> {
    let store = state.store();
    let app = state.clone();
    let scope = signed_in.caller.departments.clone();
    blocking(move || {
        let Some(ledger) = app.dashboard().ledger(&store)? else {
            return Ok((None, Vec::new()));
        };
        let footprints = store.footprints()?;
        let open: BTreeMap<String, u64> = store
            .unresolved(scope.as_deref())?
            .by_asset(None)
            .into_iter()
            .map(|a| (a.asset, a.unresolved))
            .collect();
        let today = Utc::now().date_naive();
        let mut rows: Vec<AssetRow> = ledger
            .bundle
            .ledger
            .assets()
            .iter()
            .filter(|a| in_scope(scope.as_deref(), &a.department))
            .map(|a| row(&ledger, a, &footprints, &open, today))
            .collect();
        rows.sort_by(|a, b| (&a.department, &a.id).cmp(&(&b.department, &b.id)));
        Ok((Some(ledger.version), rows))
    })
    .await
}

fn in_scope(scope: Option<&[String]>, department: &str) -> bool {
    scope.is_none_or(|list| list.iter().any(|d| d == department))
}

#[derive(Template)]
#[template(path = "ledger.html")]
struct LedgerPage {
    chrome: Chrome,
    version: String,
    rows: Vec<AssetRow>,
}

/// `GET /ledger`.
pub(crate) async fn list(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let (version, rows) = rows(&state, &signed_in).await?;
    render(&LedgerPage {
        chrome: Chrome::new(&signed_in, "ledger"),
        version: version.map(|v| v.to_string()).unwrap_or_default(),
        rows,
    })
}

/// `GET /ledger.csv`.
pub(crate) async fn export(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let (_, rows) = rows(&state, &signed_in).await?;
    let records = rows.iter().map(|r| {
        vec![
            r.id.clone(),
            r.name.clone(),
            r.department.clone(),
            r.administrator.clone(),
            r.label.clone(),
            r.deadline.clone(),
            r.hosts.to_string(),
            r.files.to_string(),
            r.open.to_string(),
        ]
    });
    csv_download(
        "ledger.csv",
        &[
            "asset",
            "name",
            "department",
            "administrator",
            "label",
            "access_until",
            "hosts",
            "files",
            "open_violations",
        ],
        records,
    )
}

/// A small CSV table as a download; cells that a spreadsheet would run as formulas are
/// neutralised as in the API's export.
pub(crate) fn csv_download(
    name: &str,
    header: &[&str],
    records: impl Iterator<Item = Vec<String>>,
) -> Result<Response, PageError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| PageError::Internal(format!("csv: {e}"));
    writer.write_record(header).map_err(csv_error)?;
    for record in records {
        writer
            .write_record(
                record
                    .iter()
                    .map(|cell| crate::api::manager::neutralise(cell).into_owned()),
            )
            .map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| PageError::Internal(format!("csv: {e}")))?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, format!("attachment; filename={name}")),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// One host of an asset's footprint.
#[derive(Debug, Clone)]
pub(crate) struct HostRow {
    pub(crate) host: String,
    pub(crate) agent: String,
    pub(crate) files: u64,
    pub(crate) scanned: String,
    /// Whether the asset's `hosts` allow it.
    pub(crate) allowed: bool,
}

/// One drift finding of an asset.
#[derive(Debug, Clone)]
pub(crate) struct DriftRow {
    pub(crate) condition: &'static str,
    pub(crate) status: &'static str,
    pub(crate) message: String,
    pub(crate) opened: String,
}

#[derive(Template)]
#[template(path = "asset.html")]
struct AssetPage {
    chrome: Chrome,
    asset: AssetRow,
    encryption: &'static str,
    locations: Vec<String>,
    hosts: Vec<String>,
    members: Vec<String>,
    disclosure: String,
    footprint: Vec<HostRow>,
    violations: Vec<ViolationRow>,
    drift: Vec<DriftRow>,
}

/// `GET /ledger/{asset}`: one asset; another department's asset is not found.
pub(crate) async fn asset(
    signed_in: SignedIn,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let store = state.store();
    let app = state.clone();
    let scope = signed_in.caller.departments.clone();
    let may_act = signed_in.caller.may_act();
    let chrome = Chrome::new(&signed_in, "ledger");
    let page = blocking(move || {
        let ledger: Arc<CurrentLedger> =
            app.dashboard().ledger(&store)?.ok_or(PageError::NotFound)?;
        let asset = ledger
            .bundle
            .ledger
            .get(&id)
            .filter(|a| in_scope(scope.as_deref(), &a.department))
            .ok_or(PageError::NotFound)?;
        let footprints = store.footprints()?;
        let (open_count, newest) =
            store.asset_violations(&asset.id, VIOLATIONS_SHOWN, scope.as_deref())?;
        let open = BTreeMap::from([(asset.id.clone(), open_count)]);
        let now = Utc::now();
        let row = row(&ledger, asset, &footprints, &open, now.date_naive());
        let footprint = footprint_of(&footprints, &asset.id)
            .into_iter()
            .map(|(f, files)| HostRow {
                host: f.host.clone(),
                agent: f.agent.clone(),
                files,
                scanned: ago(f.at, now),
                allowed: asset.allows_host(&f.host),
            })
            .collect();
        let violations = newest
            .iter()
            .map(|v| ViolationRow::new(v, now, may_act))
            .collect();
        let drift = store
            .drift(scope.as_deref(), None)?
            .into_iter()
            .filter(|d: &Drift| d.asset == asset.id)
            .map(|d| DriftRow {
                condition: d.condition.as_str(),
                status: d.status.as_str(),
                message: d.message,
                opened: ago(d.opened_at, now),
            })
            .collect();
        Ok(AssetPage {
            chrome,
            encryption: if asset.requires_encryption(&ledger.bundle.policy) {
                "required"
            } else {
                "optional"
            },
            locations: asset.locations.patterns().to_vec(),
            hosts: asset
                .hosts
                .as_ref()
                .map(|h| h.patterns().to_vec())
                .unwrap_or_default(),
            members: asset.members.iter().map(|m| m.to_string()).collect(),
            disclosure: asset.disclosure.clone().unwrap_or_default(),
            asset: row,
            footprint,
            violations,
            drift,
        })
    })
    .await?;
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_past_near_or_fine() {
        let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        assert_eq!(deadline_class(day("2026-04-30"), today), "past");
        assert_eq!(deadline_class(day("2026-05-01"), today), "near");
        assert_eq!(deadline_class(day("2026-05-31"), today), "near");
        assert_eq!(deadline_class(day("2026-06-01"), today), "");
        assert_eq!(deadline_class(None, today), "");
    }
}
