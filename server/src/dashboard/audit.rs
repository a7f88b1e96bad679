//! The audit log (`/audit`, `/audit.csv`): the hash-chained trail of decisions, newest first, a
//! page at a time, and on request (`?verify=1`) the verification of the whole chain. For admins
//! and viewers without departments only, as in the API: the trail is not departmental.

use super::blocking;
use super::error::PageError;
use super::session::SignedIn;
use super::view::{link, may_audit, render, segment, when, Chrome, Fields};
use crate::api::AppState;
use crate::store::{AuditEntry, Store};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Entries per page.
const PAGE: u64 = 50;
/// Entries per step of the CSV download.
const EXPORT_PAGE: u32 = 1000;

fn require_auditor(signed_in: &SignedIn) -> Result<(), PageError> {
    if may_audit(&signed_in.caller) {
        Ok(())
    } else {
        Err(PageError::Forbidden(format!(
            "your role ({}{}) may not read the audit trail: admins and viewers without \
             departments may",
            signed_in.caller.role,
            if signed_in.caller.scope().is_some() {
                ", limited to departments"
            } else {
                ""
            }
        )))
    }
}

/// One entry as a row.
#[derive(Debug, Clone)]
pub(crate) struct EntryRow {
    pub(crate) id: u64,
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) subject: String,
    /// A link to the subject when it is a violation.
    pub(crate) subject_href: String,
    pub(crate) details: String,
    pub(crate) hash: String,
}

fn row(entry: &AuditEntry) -> EntryRow {
    EntryRow {
        id: entry.id,
        at: when(entry.at),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        subject: entry.subject.clone(),
        subject_href: if entry.action.starts_with("violation.") {
            format!("/violations/{}", segment(&entry.subject))
        } else {
            String::new()
        },
        details: entry.details.to_string(),
        hash: entry.hash.chars().take(12).collect(),
    }
}

/// The chain's verification, as shown.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) intact: bool,
    pub(crate) text: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<EntryRow>,
    total: u64,
    newer: String,
    older: String,
    verified: Option<Verified>,
}

fn verify(store: &Store) -> Result<Verified, PageError> {
    let verification = store.verify_audit()?;
    Ok(match verification.problem {
        Some(problem) => Verified {
            intact: false,
            text: format!(
                "The audit trail is BROKEN at entry {}: {} ({} entries verified before it).",
                problem.entry, problem.reason, verification.entries
            ),
        },
        None => {
            let head = match verification.entries {
                0 => None,
                n => store.audit_entries(n - 1, 1)?.into_iter().next(),
            };
            Verified {
                intact: true,
                text: match head {
                    Some(head) => format!(
                        "The audit trail is intact: {} entries; head {}:{}.",
                        verification.entries, head.id, head.hash
                    ),
                    None => "The audit trail is intact: no entries yet.".to_owned(),
                },
            }
        }
    })
}

/// `GET /audit?before=N&verify=1`.
pub(crate) async fn show(
    signed_in: SignedIn,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    require_auditor(&signed_in)?;
    let fields = Fields::from_query(raw.as_deref());
    let before: Option<u64> = fields
        .one("before")
        .map(|t| {
            t.parse::<u64>().map_err(|_| {
                PageError::BadRequest(format!("invalid `before` `{t}`: expected an entry id"))
            })
        })
        .transpose()?;
    let check = fields.one("verify") == Some("1");
    let store = state.store();
    let (total, entries, verified) = blocking(move || {
        let total = store.audit_head_id()?.unwrap_or(0);
        // Entries with ids below `end`, newest first: ids run 1..=total without gaps.
        let end = before.unwrap_or(total + 1).min(total + 1);
        let start = end.saturating_sub(PAGE).max(1);
        let count = u32::try_from(end.saturating_sub(start)).unwrap_or(0);
        let mut entries = if count == 0 {
            Vec::new()
        } else {
            store.audit_entries(start - 1, count)?
        };
        entries.reverse();
        let verified = if check { Some(verify(&store)?) } else { None };
        Ok((total, entries, verified))
    })
    .await?;
    let oldest = entries.last().map(|e| e.id);
    let page = AuditPage {
        chrome: Chrome::new(&signed_in, "audit"),
        rows: entries.iter().map(row).collect(),
        total,
        newer: if before.is_some() {
            "/audit".to_owned()
        } else {
            String::new()
        },
        older: match oldest {
            Some(id) if id > 1 => link("/audit", [("before", id.to_string().as_str())]),
            _ => String::new(),
        },
        verified,
    };
    render(&page)
}

/// `GET /audit.csv`: the whole trail, oldest first, read a page at a time as the client takes it.
pub(crate) async fn export(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    require_auditor(&signed_in)?;
    let store = state.store();
    let stream = futures_util::stream::unfold(Some(0u64), move |after| {
        let store: Arc<Store> = Arc::clone(&store);
        async move {
            let after = after?;
            let page =
                tokio::task::spawn_blocking(move || store.audit_entries(after, EXPORT_PAGE)).await;
            let entries = match page {
                Ok(Ok(entries)) => entries,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "audit export cut off");
                    return Some((Err(std::io::Error::other("export cut off")), None));
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export cut off");
                    return Some((Err(std::io::Error::other("export cut off")), None));
                }
            };
            let next = (entries.len() == EXPORT_PAGE as usize)
                .then(|| entries.last().map(|e| e.id))
                .flatten();
            if entries.is_empty() && after > 0 {
                return None;
            }
            match encode(&entries, after == 0) {
                Ok(bytes) => Some((Ok(bytes), next)),
                Err(e) => {
                    tracing::error!(error = %e, "audit export cut off");
                    Some((Err(std::io::Error::other("export cut off")), None))
                }
            }
        }
    });
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=audit.csv"),
            (CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn encode(entries: &[AuditEntry], header: bool) -> Result<Bytes, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if header {
        writer.write_record(["id", "at", "actor", "action", "subject", "details", "hash"])?;
    }
    for e in entries {
        let cells = [
            e.id.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            e.details.to_string(),
            e.hash.clone(),
        ];
        writer.write_record(
            cells
                .iter()
                .map(|c| crate::api::manager::neutralise(c).into_owned()),
        )?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}
