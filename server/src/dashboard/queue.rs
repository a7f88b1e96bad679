//! The review queue (`/violations`): filters, sorting, cursor pages and bulk acknowledgement, and
//! its CSV export (`/violations.csv`, the API's export with the session's scope).
//!
//! Parameters are the API's (`status`, `severity`, `kind` as lists; `department`, `asset`,
//! `host`, `label`, `q`; `sort`, `order`, `limit`, `cursor`), read leniently as forms send them:
//! an empty field is no filter. Without any `status` the queue shows open violations; a
//! submitted filter form (`filtered=1`) without a status shows every status.

use super::blocking;
use super::error::PageError;
use super::session::{see_other, Posted, SignedIn};
use super::view::{link, query, render, Choice, Chrome, Fields, ViolationRow, SEVERITIES};
use crate::api::AppState;
use crate::store::{
    Cursor, PageRequest, Sort, SortKey, SortOrder, ViolationFilter, ViolationStatus,
};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::Utc;
use infoledger_policies::Kind;
use std::collections::BTreeSet;
use std::str::FromStr;

/// Rows per page by default, and the bounds of `limit`.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// The most violations one bulk acknowledgement takes (as the API).
const MAX_BULK: usize = 500;
/// The longest text filter accepted, in characters.
const MAX_TEXT_CHARS: usize = 1000;

/// A checkbox.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) value: &'static str,
    pub(crate) checked: bool,
}

/// The queue's parameters, checked.
#[derive(Debug, Clone)]
pub(crate) struct QueueQuery {
    pub(crate) filter: ViolationFilter,
    pub(crate) sort: Sort,
    pub(crate) limit: u32,
    pub(crate) cursor: Option<Cursor>,
    /// The parameters that select and order rows, canonical, for links.
    pairs: Vec<(&'static str, String)>,
}

fn parsed_list<T: FromStr<Err = String> + PartialEq>(
    fields: &Fields,
    name: &str,
) -> Result<Vec<T>, PageError> {
    let mut values = Vec::new();
    for text in fields.all(name) {
        let value = text
            .parse::<T>()
            .map_err(|e| PageError::BadRequest(format!("invalid `{name}`: {e}")))?;
        if !values.contains(&value) {
            values.push(value);
        }
    }
    Ok(values)
}

fn text(fields: &Fields, name: &str) -> Result<Option<String>, PageError> {
    match fields.one(name) {
        Some(v) if v.chars().count() > MAX_TEXT_CHARS => Err(PageError::BadRequest(format!(
            "invalid `{name}`: at most {MAX_TEXT_CHARS} characters"
        ))),
        other => Ok(other.map(str::to_owned)),
    }
}

impl QueueQuery {
    /// Reads the queue's parameters; a value that does not parse names its parameter.
    pub(crate) fn parse(fields: &Fields) -> Result<QueueQuery, PageError> {
        let mut statuses: Vec<ViolationStatus> = parsed_list(fields, "status")?;
        if statuses.is_empty() && !fields.has("filtered") {
            statuses.push(ViolationStatus::Open);
        }
        let filter = ViolationFilter {
            statuses,
            department: text(fields, "department")?,
            severities: parsed_list(fields, "severity")?,
            kinds: parsed_list(fields, "kind")?,
            asset: text(fields, "asset")?,
            host: text(fields, "host")?,
            label: text(fields, "label")?,
            path_contains: text(fields, "q")?,
        };
        let default = Sort::default();
        let sort = Sort {
            key: fields
                .one("sort")
                .map(SortKey::from_str)
                .transpose()
                .map_err(|e| PageError::BadRequest(format!("invalid `sort`: {e}")))?
                .unwrap_or(default.key),
            order: fields
                .one("order")
                .map(SortOrder::from_str)
                .transpose()
                .map_err(|e| PageError::BadRequest(format!("invalid `order`: {e}")))?
                .unwrap_or(default.order),
        };
        let limit = match fields.one("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "invalid `limit` `{text}`: expected a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let cursor: Option<Cursor> = fields
            .one("cursor")
            .map(Cursor::from_str)
            .transpose()
            .map_err(|e| PageError::BadRequest(format!("invalid `cursor`: {e}")))?;
        if cursor.as_ref().is_some_and(|c| c.sort() != sort) {
            return Err(PageError::BadRequest(
                "invalid `cursor`: it belongs to another order; start again from the first page"
                    .to_owned(),
            ));
        }
        let mut pairs: Vec<(&'static str, String)> = vec![("filtered", "1".to_owned())];
        pairs.extend(
            filter
                .statuses
                .iter()
                .map(|s| ("status", s.as_str().to_owned())),
        );
        pairs.extend(
            filter
                .severities
                .iter()
                .map(|s| ("severity", s.as_str().to_owned())),
        );
        pairs.extend(filter.kinds.iter().map(|k| ("kind", k.as_str().to_owned())));
        for (name, value) in [
            ("department", &filter.department),
            ("asset", &filter.asset),
            ("host", &filter.host),
            ("label", &filter.label),
            ("q", &filter.path_contains),
        ] {
            if let Some(value) = value {
                pairs.push((name, value.clone()));
            }
        }
        pairs.push(("sort", sort.key.as_str().to_owned()));
        pairs.push(("order", sort.order.as_str().to_owned()));
        if limit != DEFAULT_LIMIT {
            pairs.push(("limit", limit.to_string()));
        }
        Ok(QueueQuery {
            filter,
            sort,
            limit,
            cursor,
            pairs,
        })
    }

    /// The query string of this selection and order, without a cursor.
    pub(crate) fn query(&self) -> String {
        query(self.pairs.iter().map(|(n, v)| (*n, v.as_str())))
    }

    /// The same selection continuing after `cursor`.
    fn after(&self, cursor: &Cursor) -> String {
        let cursor = cursor.to_string();
        link(
            "/violations",
            self.pairs
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .chain([("cursor", cursor.as_str())]),
        )
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    statuses: Vec<Check>,
    severities: Vec<Check>,
    kinds: Vec<Choice>,
    departments: Vec<Choice>,
    labels: Vec<Choice>,
    sorts: Vec<Choice>,
    orders: Vec<Choice>,
    host: String,
    asset: String,
    q: String,
    rows: Vec<ViolationRow>,
    may_act: bool,
    /// The first page, when this is a later one.
    first: String,
    next: String,
    export: String,
    back: String,
    notice: String,
}

/// The options of a select: "any", the known values, and the current one even if unknown.
fn choices(known: BTreeSet<String>, current: Option<&str>) -> Vec<Choice> {
    let mut values = known;
    if let Some(current) = current {
        values.insert(current.to_owned());
    }
    let mut choices = vec![Choice::new("", "any", current.is_none())];
    choices.extend(
        values
            .iter()
            .map(|v| Choice::new(v, v, current == Some(v.as_str()))),
    );
    choices
}

/// `GET /violations`: the review queue.
pub(crate) async fn show(
    signed_in: SignedIn,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_query(raw.as_deref());
    let selection = QueueQuery::parse(&fields)?;
    let store = state.store();
    let dashboard_state = state.clone();
    let scope = signed_in.caller.departments.clone();
    let request = PageRequest {
        after: selection.cursor.clone(),
        limit: selection.limit,
        sort: selection.sort,
    };
    let filter = selection.filter.clone();
    let (page, ledger) = blocking(move || {
        let page = store.list_violations(&filter, &request, scope.as_deref())?;
        let ledger = dashboard_state.dashboard().ledger(&store)?;
        Ok((page, ledger))
    })
    .await?;
    let now = Utc::now();
    let caller = &signed_in.caller;
    let mut departments: BTreeSet<String> =
        caller.scope().unwrap_or_default().iter().cloned().collect();
    let mut labels = BTreeSet::new();
    if let Some(ledger) = &ledger {
        for asset in ledger.bundle.ledger.assets() {
            if caller.scope().is_none_or(|s| s.contains(&asset.department)) {
                departments.insert(asset.department.clone());
            }
        }
        labels.extend(ledger.bundle.policy.labels().iter().map(|l| l.name.clone()));
    }
    if let Some(scope) = caller.scope() {
        departments.retain(|d| scope.contains(d));
    }
    let filter = &selection.filter;
    let kinds: BTreeSet<String> = Kind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
    let current_kind = filter.kinds.first().map(|k| k.as_str());
    let notice = match (fields.one("acknowledged"), fields.one("skipped")) {
        (Some(done), Some(skipped)) if skipped != "0" => format!(
            "{done} acknowledged; {skipped} skipped (no longer open, or not yours to decide)."
        ),
        (Some(done), _) => format!("{done} acknowledged."),
        _ => String::new(),
    };
    let page_view = QueuePage {
        chrome: Chrome::new(&signed_in, "queue"),
        statuses: ViolationStatus::ALL
            .iter()
            .map(|s| Check {
                value: s.as_str(),
                checked: filter.statuses.contains(s),
            })
            .collect(),
        severities: SEVERITIES
            .iter()
            .map(|s| Check {
                value: s.as_str(),
                checked: filter.severities.contains(s),
            })
            .collect(),
        kinds: choices(kinds, current_kind),
        departments: choices(departments, filter.department.as_deref()),
        labels: choices(labels, filter.label.as_deref()),
        sorts: SortKey::ALL
            .iter()
            .map(|k| {
                let label = match k {
                    SortKey::OpenedAt => "opened",
                    SortKey::Severity => "severity",
                    SortKey::UpdatedAt => "last change",
                };
                Choice::new(k.as_str(), label, *k == selection.sort.key)
            })
            .collect(),
        orders: [
            (SortOrder::Desc, "newest / highest first"),
            (SortOrder::Asc, "oldest / lowest first"),
        ]
        .iter()
        .map(|(o, label)| Choice::new(o.as_str(), label, *o == selection.sort.order))
        .collect(),
        host: filter.host.clone().unwrap_or_default(),
        asset: filter.asset.clone().unwrap_or_default(),
        q: filter.path_contains.clone().unwrap_or_default(),
        rows: page
            .violations
            .iter()
            .map(|v| ViolationRow::new(v, now, caller.may_act()))
            .collect(),
        may_act: caller.may_act(),
        first: if selection.cursor.is_some() {
            format!("/violations?{}", selection.query())
        } else {
            String::new()
        },
        next: page
            .next
            .as_ref()
            .map(|c| selection.after(c))
            .unwrap_or_default(),
        export: format!("/violations.csv?{}", selection.query()),
        back: selection.query(),
        notice,
    };
    render(&page_view)
}

/// `GET /violations.csv`: every violation of the selection within the caller's departments.
pub(crate) async fn export(
    signed_in: SignedIn,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_query(raw.as_deref());
    let selection = QueueQuery::parse(&fields)?;
    Ok(crate::api::manager::violations_csv(
        state.store(),
        selection.filter,
        selection.sort,
        signed_in.caller.departments,
    )
    .await?)
}

/// `POST /violations/acknowledge` (`id` repeated, `reason`, `back`): acknowledges the selected
/// open violations, then shows the queue again with how many were.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    posted: Posted,
) -> Result<Response, PageError> {
    let caller = posted.signed_in.caller.clone();
    if !caller.may_act() {
        return Err(PageError::Forbidden(format!(
            "your role ({}) may not change violations",
            caller.role
        )));
    }
    let fields = &posted.fields;
    // The queue to go back to, from its first page: the selection re-read, so nothing but
    // queue parameters survive, and a selection that does not read is the default queue.
    let back = Fields::from_query(fields.raw("back")).without(&["cursor"]);
    let back = QueueQuery::parse(&back)
        .or_else(|_| QueueQuery::parse(&Fields::default()))?
        .query();
    let ids: Vec<String> = fields.all("id").into_iter().map(str::to_owned).collect();
    if ids.len() > MAX_BULK {
        return Err(PageError::BadRequest(format!(
            "select at most {MAX_BULK} violations at once, not {}",
            ids.len()
        )));
    }
    let reason = fields.one("reason").map(str::to_owned);
    let store = state.store();
    let count = ids.len();
    let done = if ids.is_empty() {
        0
    } else {
        blocking(move || {
            let outcomes = store.acknowledge_many(
                &ids,
                &caller.name,
                reason.as_deref(),
                Utc::now(),
                caller.scope(),
            )?;
            Ok(outcomes.iter().filter(|o| o.is_ok()).count())
        })
        .await?
    };
    let done_text = done.to_string();
    let skipped = (count - done).to_string();
    let location = format!(
        "/violations?{back}&{}",
        query([
            ("acknowledged", done_text.as_str()),
            ("skipped", skipped.as_str())
        ])
    );
    Ok(see_other(&location, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoledger_policies::Severity;

    fn parse(text: &str) -> Result<QueueQuery, PageError> {
        QueueQuery::parse(&Fields::from_query(Some(text)))
    }

    #[test]
    fn the_queue_shows_open_violations_unless_told_otherwise() {
        let q = parse("").unwrap();
        assert_eq!(q.filter.statuses, [ViolationStatus::Open]);
        assert_eq!(q.limit, DEFAULT_LIMIT);
        let q = parse("filtered=1&status=&host=&severity=").unwrap();
        assert!(q.filter.statuses.is_empty() && q.filter.host.is_none());
        let q = parse("status=open,acknowledged&severity=high&severity=critical&q=%3Cscript%3E")
            .unwrap();
        assert_eq!(
            q.filter.statuses,
            [ViolationStatus::Open, ViolationStatus::Acknowledged]
        );
        assert_eq!(q.filter.severities, [Severity::High, Severity::Critical]);
        assert_eq!(q.filter.path_contains.as_deref(), Some("<script>"));
        assert_eq!(
            q.query(),
            "filtered=1&status=open&status=acknowledged&severity=high&severity=critical\
             &q=%3Cscript%3E&sort=opened_at&order=desc"
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (text, name) in [
            ("status=closed", "`status`"),
            ("kind=lost", "`kind`"),
            ("sort=size", "`sort`"),
            ("order=up", "`order`"),
            ("limit=0", "`limit`"),
            ("limit=501", "`limit`"),
            ("cursor=nonsense", "`cursor`"),
        ] {
            match parse(text) {
                Err(PageError::BadRequest(message)) => {
                    assert!(message.contains(name), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let cursor = format!("desc~opened_at~2026-03-01T10:00:00Z~{}", "a".repeat(64));
        assert!(parse(&format!("sort=severity&cursor={cursor}")).is_err());
        assert!(parse(&format!("cursor={cursor}")).is_ok());
    }
}
