//! The audit trail, read-only: its entries page by page, and a verification of its hash chain.

use super::blocking;
use super::params::{Params, RawQuery};
use crate::api::{AppError, AppState};
use crate::store::{AuditEntry, AuditProblem, Caller, Role};
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// Entries per page when `limit` is not given.
const DEFAULT_LIMIT: u64 = 100;
/// The largest `limit` accepted.
const MAX_LIMIT: u64 = 1000;

/// Admins and viewers without departments (auditors) read the trail. It is not departmental —
/// it names every violation decided on and every reason given — so scoped callers may not.
fn require_auditor(caller: &Caller) -> Result<(), AppError> {
    match (caller.role, caller.scope()) {
        (Role::Admin, _) | (Role::Viewer, None) => Ok(()),
        _ => Err(AppError::Forbidden {
            role: caller.role.as_str(),
            action: "read the audit trail (admins and viewers without departments may)",
        }),
    }
}

/// A page of the trail.
#[derive(Debug, Serialize)]
pub(super) struct AuditPage {
    /// Oldest first.
    entries: Vec<AuditEntry>,
    /// The `after` for the next page; `null` on the last.
    next: Option<u64>,
}

/// `GET /api/v1/audit?after=N&limit=M`: entries with an id above N (default 0), oldest first, at
/// most M (1–1000, default 100).
pub(super) async fn entries(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<AuditPage>, AppError> {
    require_auditor(&caller)?;
    let params = Params::new(query, &["after", "limit"])?;
    let after = params.number("after", 0..=i64::MAX.unsigned_abs(), 0)?;
    let limit = params.number("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT)?;
    let store = state.store();
    let mut entries = blocking(move || {
        // One more than asked tells whether another page follows.
        let ask = u32::try_from(limit + 1).unwrap_or(u32::MAX);
        Ok(store.audit_entries(after, ask)?)
    })
    .await?;
    let more = entries.len() as u64 > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = entries.last().filter(|_| more).map(|e| e.id);
    Ok(Json(AuditPage { entries, next }))
}

/// The chain's newest entry.
#[derive(Debug, Serialize)]
pub(super) struct Head {
    id: u64,
    hash: String,
}

/// The verification answer.
#[derive(Debug, Serialize)]
pub(super) struct Verification {
    /// No edited, deleted, inserted or cut-off entry was found.
    intact: bool,
    /// Entries verified (before the problem, if any).
    entries: u64,
    /// The first problem, if any.
    problem: Option<AuditProblem>,
    /// The newest entry when intact: keep `id:hash` outside the database's reach and compare it
    /// later (`infoledger-server audit verify --expect-head`) to detect a trail rewritten from
    /// scratch.
    head: Option<Head>,
}

/// `GET /api/v1/audit/verify`: walks the whole hash chain.
pub(super) async fn verify(
    caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<Verification>, AppError> {
    require_auditor(&caller)?;
    Params::new(query, &[])?;
    let store = state.store();
    let answer = blocking(move || {
        let verification = store.verify_audit()?;
        let head = match (&verification.problem, verification.entries) {
            (None, n) if n > 0 => store
                .audit_entries(n - 1, 1)?
                .into_iter()
                .next()
                .map(|e| Head {
                    id: e.id,
                    hash: e.hash,
                }),
            _ => None,
        };
        Ok(Verification {
            intact: verification.problem.is_none(),
            entries: verification.entries,
            problem: verification.problem,
            head,
        })
    })
    .await?;
    Ok(Json(answer))
}
