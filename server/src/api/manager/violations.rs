//! Violations: the review queue, one violation with its history, and managers' decisions on them.

use super::params::{Params, RawQuery, FILTERS};
use super::{blocking, path_id};
use crate::api::auth::require_act;
use crate::api::{body_bytes, parse_json, AppError, AppState};
use crate::store::{
    Caller, Cursor, Decided, ManagerAction, PageRequest, Violation, ViolationDetail,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Rows per page when `limit` is not given.
pub(super) const DEFAULT_LIMIT: u64 = 50;
/// The largest `limit` accepted.
pub(super) const MAX_LIMIT: u64 = 500;
/// The most ids one bulk acknowledgement takes.
pub(super) const MAX_BULK_IDS: usize = 500;

/// One page of the review queue.
#[derive(Debug, Serialize)]
pub(super) struct ViolationList {
    violations: Vec<Violation>,
    /// The `cursor` for the next page; `null` on the last.
    next: Option<String>,
}

/// `GET /api/v1/violations`: filters (`status`, `severity` and `kind` take lists; `department`,
/// `asset`, `host`, `label` exact; `q` a case-insensitive substring of the path), `sort`
/// (`opened_at`, `severity`, `updated_at`) and `order` (`asc`, `desc`; default newest first),
/// `limit` (1–500, default 50) and `cursor` (the previous page's `next`, with the same sort and
/// order).
pub(super) async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<ViolationList>, AppError> {
    let mut allowed = FILTERS.to_vec();
    allowed.extend(["sort", "order", "limit", "cursor"]);
    let params = Params::new(query, &allowed)?;
    let filter = params.filter()?;
    let sort = params.sort()?;
    let limit = params.number("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT)?;
    let after: Option<Cursor> = params.parsed("cursor")?;
    if let Some(cursor) = &after {
        if cursor.sort() != sort {
            return Err(AppError::InvalidQuery(format!(
                "invalid `cursor`: it continues a list in {}, not {sort}; repeat the first \
                 page's sort and order, or start again without a cursor",
                cursor.sort()
            )));
        }
    }
    let page = PageRequest {
        after,
        // At most MAX_LIMIT, which fits.
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        sort,
    };
    let store = state.store();
    let page = blocking(move || Ok(store.list_violations(&filter, &page, caller.scope())?)).await?;
    Ok(Json(ViolationList {
        violations: page.violations,
        next: page.next.map(|c| c.to_string()),
    }))
}

/// `GET /api/v1/violations/{id}`: every stored field and the full history, oldest first.
pub(super) async fn detail(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<ViolationDetail>, AppError> {
    Params::new(query, &[])?;
    let id = path_id(path)?;
    let store = state.store();
    let lookup = id.clone();
    let detail = blocking(move || Ok(store.violation(&lookup, caller.scope())?)).await?;
    detail.map(Json).ok_or(AppError::ResourceNotFound {
        what: "violation",
        id,
    })
}

/// The body of `POST …/acknowledge` (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcknowledgeBody {
    /// An optional note.
    #[serde(default)]
    reason: Option<String>,
}

/// The body of `POST …/exception`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExceptionBody {
    /// RFC 3339 date-time, or a date `YYYY-MM-DD` meaning the end of that day (UTC).
    until: String,
    /// Why the violation may stay.
    reason: String,
}

/// The body of `POST …/reopen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReopenBody {
    /// Why the earlier decision no longer holds.
    reason: String,
}

/// The body of `POST …/comments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommentBody {
    /// The note.
    text: String,
}

/// The body of `POST /api/v1/violations/acknowledge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkAcknowledgeBody {
    /// 1 to 500 violation ids.
    ids: Vec<String>,
    /// An optional note, recorded for each.
    #[serde(default)]
    reason: Option<String>,
}

/// What a manager's action changes, owned so it can move to the blocking pool.
enum Request {
    Acknowledge(Option<String>),
    Except(DateTime<Utc>, String),
    Reopen(String),
    Comment(String),
}

/// Checks the caller, applies the action, answers the violation and the new history entry.
async fn act(
    caller: Caller,
    state: AppState,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    request: impl FnOnce() -> Result<Request, AppError>,
) -> Result<Json<Decided>, AppError> {
    require_act(&caller)?;
    Params::new(query, &[])?;
    let id = path_id(path)?;
    let request = request()?;
    let store = state.store();
    let decided = blocking(move || {
        let action = match &request {
            Request::Acknowledge(reason) => ManagerAction::Acknowledge {
                reason: reason.as_deref(),
            },
            Request::Except(until, reason) => ManagerAction::Except {
                until: *until,
                reason,
            },
            Request::Reopen(reason) => ManagerAction::Reopen { reason },
            Request::Comment(text) => ManagerAction::Comment { text },
        };
        Ok(store.act(&id, &caller.name, &action, Utc::now(), caller.scope())?)
    })
    .await?;
    Ok(Json(decided))
}

/// `POST /api/v1/violations/{id}/acknowledge` `{"reason"?}`: open → acknowledged.
pub(super) async fn acknowledge(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Decided>, AppError> {
    let limit = state.inner.config.max_body_bytes;
    act(caller, state, path, query, move || {
        let body = body_bytes(body, limit)?;
        // An empty body acknowledges without a note.
        let body: AcknowledgeBody = if body.iter().all(u8::is_ascii_whitespace) {
            AcknowledgeBody::default()
        } else {
            parse_json(&body)?
        };
        Ok(Request::Acknowledge(body.reason))
    })
    .await
}

/// `POST /api/v1/violations/{id}/exception` `{"until","reason"}`: open, acknowledged or excepted
/// → excepted until that time; it reopens by itself afterwards.
pub(super) async fn except(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Decided>, AppError> {
    let limit = state.inner.config.max_body_bytes;
    act(caller, state, path, query, move || {
        let body: ExceptionBody = parse_json(&body_bytes(body, limit)?)?;
        Ok(Request::Except(parse_until(&body.until)?, body.reason))
    })
    .await
}

/// `POST /api/v1/violations/{id}/reopen` `{"reason"}`: acknowledged or excepted → open.
pub(super) async fn reopen(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Decided>, AppError> {
    let limit = state.inner.config.max_body_bytes;
    act(caller, state, path, query, move || {
        let body: ReopenBody = parse_json(&body_bytes(body, limit)?)?;
        Ok(Request::Reopen(body.reason))
    })
    .await
}

/// `POST /api/v1/violations/{id}/comments` `{"text"}`: a note in the history, in any status.
pub(super) async fn comment(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Decided>, AppError> {
    let limit = state.inner.config.max_body_bytes;
    act(caller, state, path, query, move || {
        let body: CommentBody = parse_json(&body_bytes(body, limit)?)?;
        Ok(Request::Comment(body.text))
    })
    .await
}

/// The outcome for one id of a bulk acknowledgement.
#[derive(Debug, Serialize)]
pub(super) struct BulkOutcome {
    id: String,
    ok: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    decided: Option<Decided>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<BulkError>,
}

/// Why one id of a bulk acknowledgement was not acknowledged (the codes of single actions).
#[derive(Debug, Serialize)]
pub(super) struct BulkError {
    code: &'static str,
    message: String,
}

/// The answer to a bulk acknowledgement.
#[derive(Debug, Serialize)]
pub(super) struct BulkAnswer {
    /// How many were acknowledged.
    acknowledged: usize,
    /// One outcome per id, in the order given.
    results: Vec<BulkOutcome>,
}

/// `POST /api/v1/violations/acknowledge` `{"ids":[…],"reason"?}`: acknowledges each open
/// violation among `ids` in one transaction and answers per id: `{"id","ok":true,"violation",
/// "entry"}` or `{"id","ok":false,"error":{"code","message"}}` (`not_found`, `conflict`).
pub(super) async fn acknowledge_many(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BulkAnswer>, AppError> {
    require_act(&caller)?;
    Params::new(query, &[])?;
    let body: BulkAcknowledgeBody =
        parse_json(&body_bytes(body, state.inner.config.max_body_bytes)?)?;
    if body.ids.is_empty() || body.ids.len() > MAX_BULK_IDS {
        return Err(AppError::InvalidField(format!(
            "ids: give 1 to {MAX_BULK_IDS} violation ids, not {}",
            body.ids.len()
        )));
    }
    let store = state.store();
    let ids = body.ids.clone();
    let outcomes = blocking(move || {
        Ok(store.acknowledge_many(
            &ids,
            &caller.name,
            body.reason.as_deref(),
            Utc::now(),
            caller.scope(),
        )?)
    })
    .await?;
    let mut acknowledged = 0;
    let results = body
        .ids
        .into_iter()
        .zip(outcomes)
        .map(|(id, outcome)| match outcome {
            Ok(decided) => {
                acknowledged += 1;
                BulkOutcome {
                    id,
                    ok: true,
                    decided: Some(decided),
                    error: None,
                }
            }
            Err(e) => {
                let e = AppError::from(e);
                BulkOutcome {
                    id,
                    ok: false,
                    decided: None,
                    error: Some(BulkError {
                        code: e.code(),
                        message: e.to_string(),
                    }),
                }
            }
        })
        .collect();
    Ok(Json(BulkAnswer {
        acknowledged,
        results,
    }))
}

/// An exception's end: an RFC 3339 date-time, or a date meaning the end of that day in UTC (the
/// day itself is still covered, as with the ledger's `access_until`).
fn parse_until(text: &str) -> Result<DateTime<Utc>, AppError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let day_after = (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .and_then(|date| date.succ_opt())
        .and_then(|next| next.and_hms_opt(0, 0, 0));
    day_after.map(|at| at.and_utc()).ok_or_else(|| {
        AppError::InvalidField(format!(
            "until: `{text}` is neither an RFC 3339 date-time (2026-06-30T17:00:00Z) nor a date \
             (2026-06-30)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_time_or_the_end_of_a_day() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            parse_until("2026-06-30T17:00:00+02:00").unwrap(),
            at("2026-06-30T15:00:00Z")
        );
        assert_eq!(
            parse_until("2026-06-30").unwrap(),
            at("2026-07-01T00:00:00Z")
        );
        assert_eq!(
            parse_until("2026-12-31").unwrap(),
            at("2027-01-01T00:00:00Z")
        );
        for bad in [
            "",
            "tomorrow",
            "2026-6-30",
            "2026-02-30",
            "30.06.2026",
            "2026-06-30T",
        ] {
            assert!(
                matches!(parse_until(bad), Err(AppError::InvalidField(_))),
                "{bad}"
            );
        }
    }
}
