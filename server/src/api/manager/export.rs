//! Violation exports as CSV or NDJSON, streamed page by page from the store.
//!
//! The export takes the list's filters and order (not `limit` or `cursor`: it is every matching
//! row). Pages of [`EXPORT_PAGE`] rows are read one at a time, each in its own short read, only
//! when the client has taken the previous one, so memory stays bounded and the single read
//! connection is never held for the length of a download. The first page is read before the
//! response starts, so a failing database is an error status, not an empty file; a failure
//! later cuts the download off (the log says why). Rows that change while a long export runs
//! may move in the chosen order; an order by `opened_at` (the default) moves a row only when
//! the agent saw its violation again after a resolution.
//!
//! CSV: a header row with the field names of the list's JSON, times as in JSON (RFC 3339, UTC),
//! empty cells for `null`. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a leading `'`: host names, paths and messages come from endpoints, and a
//! spreadsheet would otherwise run them as formulas.

use super::params::{Params, RawQuery, FILTERS};
use crate::api::{AppError, AppState};
use crate::store::{Caller, Cursor, Page, PageRequest, Sort, Store, Violation, ViolationFilter};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

/// Rows read from the store per step of the stream.
const EXPORT_PAGE: u32 = 500;

/// The CSV columns, in the order of the list's JSON fields.
const CSV_COLUMNS: [&str; 18] = [
    "id",
    "agent",
    "host",
    "path",
    "kind",
    "severity",
    "status",
    "label",
    "asset",
    "department",
    "rule",
    "message",
    "fix",
    "excepted_until",
    "opened_at",
    "resolved_at",
    "updated_at",
    "escalated_at",
];

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "ndjson" => Ok(Format::Ndjson),
            _ => Err(format!("unknown format `{s}`; expected csv or ndjson")),
        }
    }
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Format::Csv => "violations.csv",
            Format::Ndjson => "violations.ndjson",
        }
    }

    /// One page's rows as bytes; the CSV header goes before the first page.
    fn encode(self, rows: &[Violation], first: bool) -> Result<Bytes, String> {
        match self {
            Format::Csv => encode_csv(rows, first),
            Format::Ndjson => {
                let mut out = Vec::new();
                for row in rows {
                    serde_json::to_writer(&mut out, row).map_err(|e| e.to_string())?;
                    out.push(b'\n');
                }
                Ok(Bytes::from(out))
            }
        }
    }
}

fn encode_csv(rows: &[Violation], header: bool) -> Result<Bytes, String> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if header {
        writer
            .write_record(CSV_COLUMNS)
            .map_err(|e| e.to_string())?;
    }
    for v in rows {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .unwrap_or_default()
        };
        let text = |t: &Option<String>| t.clone().unwrap_or_default();
        let record: [String; 18] = [
            v.id.clone(),
            v.agent.clone(),
            v.host.clone(),
            v.path.clone(),
            v.kind.as_str().to_owned(),
            v.severity.as_str().to_owned(),
            v.status.as_str().to_owned(),
            text(&v.label),
            text(&v.asset),
            text(&v.department),
            text(&v.rule),
            v.message.clone(),
            v.fix.clone(),
            time(v.excepted_until),
            time(Some(v.opened_at)),
            time(v.resolved_at),
            time(Some(v.updated_at)),
            time(v.escalated_at),
        ];
        writer
            .write_record(record.iter().map(|cell| neutralise(cell).into_owned()))
            .map_err(|e| e.to_string())?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// A cell a spreadsheet would take for a formula, made inert with a leading `'`.
pub(crate) fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// What every page of one export shares.
struct Job {
    store: Arc<Store>,
    filter: ViolationFilter,
    sort: Sort,
    departments: Option<Vec<String>>,
}

impl Job {
    async fn page(self: Arc<Job>, after: Option<Cursor>) -> Result<Page, AppError> {
        tokio::task::spawn_blocking(move || {
            let request = PageRequest {
                after,
                limit: EXPORT_PAGE,
                sort: self.sort,
            };
            Ok(self
                .store
                .list_violations(&self.filter, &request, self.departments.as_deref())?)
        })
        .await?
    }
}

/// Where the stream stands.
enum Step {
    /// The page read before the response started.
    First(Page),
    /// Read the page after this cursor next.
    After(Cursor),
    Done,
}

/// `GET /api/v1/violations/export?format=csv|ndjson` (default csv) with the list's filters,
/// `sort` and `order`: every matching violation within the caller's departments, as a download.
pub(super) async fn export(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Response, AppError> {
    let mut allowed = FILTERS.to_vec();
    allowed.extend(["sort", "order", "format"]);
    let params = Params::new(query, &allowed)?;
    let format: Format = params.parsed("format")?.unwrap_or(Format::Csv);
    let job = Arc::new(Job {
        store: state.store(),
        filter: params.filter()?,
        sort: params.sort()?,
        departments: caller.departments,
    });
    stream(job, format).await
}

/// Every violation matching `filter` within `departments`, in `sort` order, as a streamed CSV
/// download: the dashboard's export links, which authenticate with a session instead of a
/// bearer token.
pub(crate) async fn violations_csv(
    store: Arc<Store>,
    filter: ViolationFilter,
    sort: Sort,
    departments: Option<Vec<String>>,
) -> Result<Response, AppError> {
    let job = Arc::new(Job {
        store,
        filter,
        sort,
        departments,
    });
    stream(job, Format::Csv).await
}

/// The download of `job` in `format`, read page by page as the client takes it.
async fn stream(job: Arc<Job>, format: Format) -> Result<Response, AppError> {
    let first = Arc::clone(&job).page(None).await?;
    let stream = futures_util::stream::unfold(Step::First(first), move |step| {
        let job = Arc::clone(&job);
        async move {
            let (page, first) = match step {
                Step::Done => return None,
                Step::First(page) => (page, true),
                Step::After(cursor) => match job.page(Some(cursor)).await {
                    Ok(page) => (page, false),
                    Err(e) => {
                        tracing::error!(error = %e, "export cut off: cannot read the next page");
                        return Some((Err(std::io::Error::other("export cut off")), Step::Done));
                    }
                },
            };
            let next = page.next.map_or(Step::Done, Step::After);
            match format.encode(&page.violations, first) {
                Ok(bytes) => Some((Ok(bytes), next)),
                Err(e) => {
                    tracing::error!(error = %e, "export cut off: cannot encode a page");
                    Some((Err(std::io::Error::other("export cut off")), Step::Done))
                }
            }
        }
    });
    Ok((
        [
            (CONTENT_TYPE, format.content_type().to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename={}", format.file_name()),
            ),
            // Violations name people's files: no copies in shared caches.
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for (cell, want) in [
            ("=1+2", "'=1+2"),
            ("+cmd", "'+cmd"),
            ("-x", "'-x"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("/home/a=b", "/home/a=b"),
            ("", ""),
            ("plain", "plain"),
        ] {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
    }
}
