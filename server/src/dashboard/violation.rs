//! One violation (`/violations/{id}`): the file, its label, asset and administrator from the
//! current ledger, the rule with its explanation and fix, the full timeline, and the decisions a
//! manager can take on it (acknowledge, exception until a date, reopen, comment).
//!
//! A violation outside the caller's departments is the same 404 page as one that does not exist,
//! for reading and for every action.

use super::blocking;
use super::error::PageError;
use super::session::{see_other, Posted, SignedIn};
use super::view::{ago, link, render, segment, when, Chrome};
use crate::api::AppState;
use crate::store::{ManagerAction, StoreError, ViolationDetail, ViolationStatus};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};

/// The asset as the current ledger describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct AssetFacts {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) name: String,
    pub(crate) administrator: String,
    pub(crate) department: String,
    pub(crate) label: String,
    pub(crate) deadline: String,
    /// Whether the current ledger still lists it.
    pub(crate) listed: bool,
}

/// One entry of the timeline.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) change: String,
    pub(crate) reason: String,
}

#[derive(Template)]
#[template(path = "violation.html")]
struct ViolationPage {
    chrome: Chrome,
    id: String,
    action_base: String,
    path: String,
    host: String,
    agent: String,
    kind: &'static str,
    severity: &'static str,
    status: &'static str,
    excepted_until: String,
    label: String,
    department: String,
    asset: Option<AssetFacts>,
    rule: String,
    message: String,
    fix: String,
    opened: String,
    opened_ago: String,
    resolved: String,
    escalated: String,
    updated: String,
    timeline: Vec<Step>,
    may_act: bool,
    can_acknowledge: bool,
    can_except: bool,
    can_reopen: bool,
    error: String,
    queue: String,
    /// Tomorrow, the earliest exception date the form offers.
    min_date: String,
}

/// The detail page of `detail` for `signed_in`, with an action's error if one was refused.
fn page(
    signed_in: &SignedIn,
    detail: &ViolationDetail,
    asset: Option<AssetFacts>,
    error: String,
) -> ViolationPage {
    let v = &detail.violation;
    let now = Utc::now();
    let may_act = signed_in.caller.may_act();
    let timeline = detail
        .history
        .iter()
        .map(|h| Step {
            at: when(h.at),
            actor: h.actor.clone(),
            action: h.action.clone(),
            change: match h.from_status {
                Some(from) if from != h.to_status => format!("{from} → {}", h.to_status),
                Some(_) => String::new(),
                None => format!("→ {}", h.to_status),
            },
            reason: h.reason.clone().unwrap_or_default(),
        })
        .collect();
    ViolationPage {
        chrome: Chrome::new(signed_in, "queue"),
        action_base: format!("/violations/{}", segment(&v.id)),
        id: v.id.clone(),
        path: v.path.clone(),
        host: v.host.clone(),
        agent: v.agent.clone(),
        kind: v.kind.as_str(),
        severity: v.severity.as_str(),
        status: v.status.as_str(),
        excepted_until: v.excepted_until.map(when).unwrap_or_default(),
        label: v.label.clone().unwrap_or_default(),
        department: v.department.clone().unwrap_or_default(),
        asset,
        rule: v.rule.clone().unwrap_or_default(),
        message: v.message.clone(),
        fix: v.fix.clone(),
        opened: when(v.opened_at),
        opened_ago: ago(v.opened_at, now),
        resolved: v.resolved_at.map(when).unwrap_or_default(),
        escalated: v.escalated_at.map(when).unwrap_or_default(),
        updated: when(v.updated_at),
        timeline,
        may_act,
        can_acknowledge: may_act && v.status == ViolationStatus::Open,
        can_except: may_act && v.status != ViolationStatus::Resolved,
        can_reopen: may_act
            && matches!(
                v.status,
                ViolationStatus::Acknowledged | ViolationStatus::Excepted
            ),
        error,
        queue: link(
            "/violations",
            [("host", v.host.as_str()), ("filtered", "1")],
        ),
        min_date: (now.date_naive() + chrono::Days::new(1))
            .format("%Y-%m-%d")
            .to_string(),
    }
}

/// Reads the violation (within the caller's departments) and its asset from the current ledger.
async fn load(
    state: &AppState,
    signed_in: &SignedIn,
    id: String,
) -> Result<(ViolationDetail, Option<AssetFacts>), PageError> {
    let store = state.store();
    let app = state.clone();
    let scope = signed_in.caller.departments.clone();
    blocking(move || {
        let detail = store
            .violation(&id, scope.as_deref())?
            .ok_or(PageError::NotFound)?;
        let asset = match &detail.violation.asset {
            None => None,
            Some(asset_id) => {
                let ledger = app.dashboard().ledger(&store)?;
                let listed = ledger.as_ref().and_then(|l| {
                    l.bundle.ledger.get(asset_id).map(|a| AssetFacts {
                        id: a.id.clone(),
                        href: format!("/ledger/{}", segment(&a.id)),
                        name: a.name.clone(),
                        administrator: a.administrator.clone(),
                        department: a.department.clone(),
                        label: l.bundle.policy.label(a.label).name.clone(),
                        deadline: a
                            .access_until
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .unwrap_or_default(),
                        listed: true,
                    })
                });
                Some(listed.unwrap_or_else(|| AssetFacts {
                    id: asset_id.clone(),
                    ..AssetFacts::default()
                }))
            }
        };
        Ok((detail, asset))
    })
    .await
}

/// `GET /violations/{id}`.
pub(crate) async fn show(
    signed_in: SignedIn,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (detail, asset) = load(&state, &signed_in, id).await?;
    render(&page(&signed_in, &detail, asset, String::new()))
}

/// A decision as the form sends it.
enum Decision {
    Acknowledge(Option<String>),
    Except(DateTime<Utc>, String),
    Reopen(String),
    Comment(String),
}

/// An exception's end from the form's date field: the end of that day (UTC), so the day itself
/// is covered, as with the ledger's `access_until`; an RFC 3339 time is taken as it is.
fn parse_until(text: &str) -> Result<DateTime<Utc>, PageError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .and_then(|day| day.succ_opt())
        .and_then(|next| next.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            PageError::BadRequest(format!(
                "invalid `until` `{text}`: expected a date such as 2026-06-30"
            ))
        })
}

/// `POST /violations/{id}/{action}` with `action` one of `acknowledge` (`reason` optional),
/// `exception` (`until`, `reason`), `reopen` (`reason`), `comment` (`text`).
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Result<Response, PageError> {
    let signed_in = posted.signed_in;
    let caller = signed_in.caller.clone();
    if !caller.may_act() {
        return Err(PageError::Forbidden(format!(
            "your role ({}) may not change violations",
            caller.role
        )));
    }
    let field = |name: &str| posted.fields.one(name).map(str::to_owned);
    let required = |name: &'static str, what: &str| {
        field(name).ok_or_else(|| PageError::BadRequest(format!("`{name}`: {what} is required")))
    };
    let decision = match action.as_str() {
        "acknowledge" => Ok(Decision::Acknowledge(field("reason"))),
        "exception" => required("until", "a date")
            .and_then(|until| parse_until(&until))
            .and_then(|until| Ok(Decision::Except(until, required("reason", "a reason")?))),
        "reopen" => required("reason", "a reason").map(Decision::Reopen),
        "comment" => required("text", "a comment").map(Decision::Comment),
        _ => return Err(PageError::NotFound),
    };
    let outcome = match decision {
        Err(e) => Err(e),
        Ok(decision) => {
            let store = state.store();
            let target = id.clone();
            blocking(move || {
                let action = match &decision {
                    Decision::Acknowledge(reason) => ManagerAction::Acknowledge {
                        reason: reason.as_deref(),
                    },
                    Decision::Except(until, reason) => ManagerAction::Except {
                        until: *until,
                        reason,
                    },
                    Decision::Reopen(reason) => ManagerAction::Reopen { reason },
                    Decision::Comment(text) => ManagerAction::Comment { text },
                };
                match store.act(&target, &caller.name, &action, Utc::now(), caller.scope()) {
                    Ok(_) => Ok(Ok(())),
                    Err(StoreError::ViolationNotFound(_)) => Err(PageError::NotFound),
                    Err(
                        e
                        @ (StoreError::InvalidTransition { .. } | StoreError::InvalidInput { .. }),
                    ) => Ok(Err(PageError::from(e))),
                    Err(other) => Err(PageError::from(other)),
                }
            })
            .await?
        }
    };
    match outcome {
        Ok(()) => Ok(see_other(
            &format!("/violations/{}#timeline", segment(&id)),
            &[],
        )),
        Err(refused) => {
            // Show the violation again with why the decision was refused.
            let status = match &refused {
                PageError::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            let (detail, asset) = load(&state, &signed_in, id).await?;
            let mut response = render(&page(&signed_in, &detail, asset, refused.to_string()))?;
            *response.status_mut() = status;
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exception_date_covers_the_whole_day() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            parse_until("2026-06-30").unwrap(),
            at("2026-07-01T00:00:00Z")
        );
        assert_eq!(
            parse_until("2026-06-30T17:00:00+02:00").unwrap(),
            at("2026-06-30T15:00:00Z")
        );
        for bad in ["", "tomorrow", "2026-6-30", "2026-02-30", "30.06.2026"] {
            assert!(
                matches!(parse_until(bad), Err(PageError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
