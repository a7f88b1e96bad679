//! What every page shares: the header (who is signed in, the navigation), form fields and query
//! strings, the formatting of times, ages and shares, and rendering a template.

use super::error::PageError;
use super::session::SignedIn;
use crate::store::{Caller, Role, Violation};
use askama::Template;
use chrono::{DateTime, TimeDelta, Utc};
use infoledger_policies::Severity;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// The dashboard's stylesheet, embedded: the dashboard loads nothing from outside the collector.
pub(crate) const STYLESHEET: &str = include_str!("../../static/dashboard.css");
/// Where the stylesheet is served.
pub(crate) const STYLESHEET_PATH: &str = "/static/dashboard.css";

/// The stylesheet's URL with a hash of its content, so browsers may cache it for good.
fn stylesheet_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, STYLESHEET.as_bytes());
        let mut url = format!("{STYLESHEET_PATH}?v=");
        for b in &digest.as_ref()[..6] {
            // Writing to a String cannot fail.
            let _ = write!(url, "{b:02x}");
        }
        url
    })
}

/// Severities as pages list them: most urgent first.
pub(crate) const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// The page header: who is signed in, what they may see, the navigation and the sign-out form.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    /// The token's name.
    pub(crate) user: String,
    /// `admin`, `manager`, `viewer`.
    pub(crate) role: &'static str,
    /// "all departments" or the list.
    pub(crate) scope: String,
    /// The forms' anti-forgery token.
    pub(crate) csrf: String,
    /// Which navigation entry is the current page.
    pub(crate) active: &'static str,
    /// Whether the audit log is in the navigation.
    pub(crate) audit: bool,
    /// The stylesheet's URL.
    pub(crate) css: &'static str,
}

impl Chrome {
    /// The header for `signed_in` on the page `active`.
    pub(crate) fn new(signed_in: &SignedIn, active: &'static str) -> Chrome {
        let caller = &signed_in.caller;
        Chrome {
            user: caller.name.clone(),
            role: caller.role.as_str(),
            scope: match caller.scope() {
                None => "all departments".to_owned(),
                Some(list) => list.join(", "),
            },
            csrf: signed_in.csrf.clone(),
            active,
            audit: may_audit(caller),
            css: stylesheet_url(),
        }
    }

    /// The header of pages shown before sign-in.
    pub(crate) fn css() -> &'static str {
        stylesheet_url()
    }
}

/// Admins and viewers without departments (auditors) read the audit trail, as in the API: it
/// names every violation decided on, whatever its department.
pub(crate) fn may_audit(caller: &Caller) -> bool {
    matches!(
        (caller.role, caller.scope()),
        (Role::Admin, _) | (Role::Viewer, None)
    )
}

/// Renders a page.
pub(crate) fn render<T: Template>(page: &T) -> Result<axum::response::Response, PageError> {
    use axum::response::IntoResponse;
    Ok(axum::response::Html(page.render()?).into_response())
}

/// The fields of a query string or a form body, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The pairs of a query string (`None`: no query).
    pub(crate) fn from_query(query: Option<&str>) -> Fields {
        Fields::from_bytes(query.unwrap_or_default().as_bytes())
    }

    /// The pairs of an `application/x-www-form-urlencoded` body or query.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; an empty field is no value (forms send every field,
    /// filled or not).
    pub(crate) fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// The first value of `name` exactly as sent, even empty.
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, repeated or comma-separated, trimmed, empty ones dropped.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The same fields without those named.
    pub(crate) fn without(&self, names: &[&str]) -> Fields {
        Fields(
            self.0
                .iter()
                .filter(|(n, _)| !names.contains(&n.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Whether `name` was sent at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// A query string (without `?`) of these pairs, each encoded.
pub(crate) fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// `path` with the query `pairs` (no `?` when there are none).
pub(crate) fn link<'a>(path: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query = query(pairs);
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// A path segment, encoded (ids are hex, but asset ids may hold `:` and `.`).
pub(crate) fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    encoded
}

/// A time as pages show it: `2026-03-01 09:00 UTC`.
pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago `at` was, at `now` (`in 2 h` for a time in the future).
pub(crate) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let elapsed = now.signed_duration_since(at);
    if elapsed < TimeDelta::zero() {
        format!("in {}", human_duration(-elapsed))
    } else if elapsed < TimeDelta::minutes(1) {
        "just now".to_owned()
    } else {
        format!("{} ago", human_duration(elapsed))
    }
}

/// A length of time in the two largest units that matter: `45 s`, `12 min`, `5 h 3 min`,
/// `3 d 4 h`.
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds().max(0);
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A share as a whole percentage, `—` when undefined.
pub(crate) fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |s| format!("{:.0} %", s * 100.0))
}

/// One violation as a row of a table.
#[derive(Debug, Clone)]
pub(crate) struct ViolationRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) path: String,
    pub(crate) host: String,
    pub(crate) label: String,
    pub(crate) kind: &'static str,
    pub(crate) severity: &'static str,
    pub(crate) age: String,
    pub(crate) opened: String,
    pub(crate) status: &'static str,
    pub(crate) escalated: String,
    /// Whether the bulk acknowledgement may select it (open, and the caller may act).
    pub(crate) selectable: bool,
}

impl ViolationRow {
    pub(crate) fn new(v: &Violation, now: DateTime<Utc>, may_act: bool) -> ViolationRow {
        ViolationRow {
            href: format!("/violations/{}", segment(&v.id)),
            id: v.id.clone(),
            path: v.path.clone(),
            host: v.host.clone(),
            label: v.label.clone().unwrap_or_default(),
            kind: v.kind.as_str(),
            severity: v.severity.as_str(),
            age: human_duration(now.signed_duration_since(v.opened_at)),
            opened: when(v.opened_at),
            status: v.status.as_str(),
            escalated: v.escalated_at.map(|at| ago(at, now)).unwrap_or_default(),
            selectable: may_act && v.status == crate::store::ViolationStatus::Open,
        }
    }
}

/// A `<select>` option.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

impl Choice {
    pub(crate) fn new(value: &str, label: &str, selected: bool) -> Choice {
        Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            selected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_two_largest_units() {
        for (seconds, want) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3599, "59 min"),
            (3600, "1 h"),
            (3600 + 180, "1 h 3 min"),
            (86_400, "1 d"),
            (3 * 86_400 + 4 * 3600 + 59, "3 d 4 h"),
        ] {
            assert_eq!(human_duration(TimeDelta::seconds(seconds)), want);
        }
        let now: DateTime<Utc> = "2026-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(ago(now - TimeDelta::seconds(20), now), "just now");
        assert_eq!(ago(now - TimeDelta::hours(5), now), "5 h ago");
        assert_eq!(ago(now + TimeDelta::hours(2), now), "in 2 h");
    }

    #[test]
    fn fields_treat_empty_values_as_absent_and_split_lists() {
        let f = Fields::from_query(Some("status=open,acknowledged&status=&host=+&q=a%26b&x"));
        assert_eq!(f.all("status"), ["open", "acknowledged"]);
        assert_eq!(f.one("host"), None);
        assert!(f.has("host") && f.has("x") && !f.has("y"));
        assert_eq!(f.one("q"), Some("a&b"));
        assert_eq!(f.raw("host"), Some(" "));
    }

    #[test]
    fn links_and_segments_are_encoded() {
        assert_eq!(
            link("/violations", [("q", "<a b&c>"), ("department", "R&D")]),
            "/violations?q=%3Ca+b%26c%3E&department=R%26D"
        );
        assert_eq!(link("/violations", []), "/violations");
        assert_eq!(segment("ACME:2026/x y"), "ACME%3A2026%2Fx%20y");
        assert!(stylesheet_url().starts_with("/static/dashboard.css?v="));
    }
}
