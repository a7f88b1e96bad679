//! The store's vocabulary: the events agents send (shared with the agent through
//! `infoledger_policies::wire::events`) and the violations, history and figures read back.

use chrono::{DateTime, Utc};
pub use infoledger_policies::wire::events::{violation_id, Event, EventBody, Health};
use infoledger_policies::{Kind, Severity};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a violation is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViolationStatus {
    /// Reported by the agent and not handled yet.
    Open,
    /// A manager has seen it.
    Acknowledged,
    /// A manager accepted it until a date.
    Excepted,
    /// The agent observed the fix.
    Resolved,
}

impl ViolationStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [ViolationStatus; 4] = [
        ViolationStatus::Open,
        ViolationStatus::Acknowledged,
        ViolationStatus::Excepted,
        ViolationStatus::Resolved,
    ];

    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationStatus::Open => "open",
            ViolationStatus::Acknowledged => "acknowledged",
            ViolationStatus::Excepted => "excepted",
            ViolationStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for ViolationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ViolationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ViolationStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown violation status `{s}`"))
    }
}

/// A violation's current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// See [`violation_id`].
    pub id: String,
    /// The agent that reported it.
    pub agent: String,
    /// The agent's host name.
    pub host: String,
    /// The file's path on that host.
    pub path: String,
    /// What kind of problem.
    pub kind: Kind,
    /// How urgent (as last reported).
    pub severity: Severity,
    /// Where it is in its life cycle.
    pub status: ViolationStatus,
    /// The policy label the decision was made with.
    pub label: Option<String>,
    /// The ledger asset the file belongs to.
    pub asset: Option<String>,
    /// The asset's department.
    pub department: Option<String>,
    /// The rule that fired.
    pub rule: Option<String>,
    /// One sentence: what is wrong.
    pub message: String,
    /// What a developer can do about it.
    pub fix: String,
    /// Until when an exception holds (status `excepted`).
    pub excepted_until: Option<DateTime<Utc>>,
    /// When the agent observed it (the start of the current open period).
    pub opened_at: DateTime<Utc>,
    /// When the agent observed the fix.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the row last changed on the server.
    pub updated_at: DateTime<Utc>,
    /// When the current open period outlived its severity's SLA, if it did (see `escalation`).
    pub escalated_at: Option<DateTime<Utc>>,
}

/// One status change of a violation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When it happened (the agent's observation time for agent events).
    pub at: DateTime<Utc>,
    /// Who did it: `agent:<id>` for observations, the user for manager actions.
    pub actor: String,
    /// What was done: `opened`, `resolved`, `reopened`, later also manager actions.
    pub action: String,
    /// The status before (none when the violation was first opened).
    pub from_status: Option<ViolationStatus>,
    /// The status after.
    pub to_status: ViolationStatus,
    /// Why, e.g. "resolved by observation" or a manager's reason.
    pub reason: Option<String>,
}

/// A violation with its full history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationDetail {
    /// The current state.
    #[serde(flatten)]
    pub violation: Violation,
    /// Every status change, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Which violations to list; every set field must match. A list matches any of its values; an
/// empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViolationFilter {
    /// Any of these statuses.
    pub statuses: Vec<ViolationStatus>,
    /// Exactly this department.
    pub department: Option<String>,
    /// Any of these severities.
    pub severities: Vec<Severity>,
    /// Any of these kinds.
    pub kinds: Vec<Kind>,
    /// Exactly this asset.
    pub asset: Option<String>,
    /// Exactly this host.
    pub host: Option<String>,
    /// Exactly this label.
    pub label: Option<String>,
    /// The path contains this text, ignoring the case of ASCII letters; `%`, `_` and `\\` are
    /// literal characters, not wildcards.
    pub path_contains: Option<String>,
}

/// What a list of violations is ordered by. Every order ends with the id, so it is total and a
/// cursor names one position exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortKey {
    /// When the current open period started; ties by id.
    #[default]
    OpenedAt,
    /// Severity, then when the open period started, then id.
    Severity,
    /// When the row last changed on the server; ties by id.
    UpdatedAt,
}

impl SortKey {
    /// Every key, as the API lists them.
    pub const ALL: [SortKey; 3] = [SortKey::OpenedAt, SortKey::Severity, SortKey::UpdatedAt];

    /// The name used in the API (`sort=`) and in cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::OpenedAt => "opened_at",
            SortKey::Severity => "severity",
            SortKey::UpdatedAt => "updated_at",
        }
    }
}

impl FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown sort `{s}`; expected one of: opened_at, severity, updated_at")
            })
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Lowest (oldest) first.
    Asc,
    /// Highest (newest) first.
    #[default]
    Desc,
}

impl SortOrder {
    /// The name used in the API (`order=`) and in cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }
}

impl FromStr for SortOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "asc" => Ok(SortOrder::Asc),
            "desc" => Ok(SortOrder::Desc),
            _ => Err(format!("unknown order `{s}`; expected asc or desc")),
        }
    }
}

/// The order of a list of violations. The default is newest first (`opened_at`, descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sort {
    /// What to order by.
    pub key: SortKey,
    /// In which direction; the id that breaks ties goes the same way.
    pub order: SortOrder,
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sort={}&order={}",
            self.key.as_str(),
            self.order.as_str()
        )
    }
}

/// Where a page of violations starts: just after the row with these sort values.
///
/// A cursor belongs to one [`Sort`]: it carries the sort values of the last row of the page it
/// ends (the opening or update time, for severity the severity's rank and the opening time) and
/// that row's id. Rows are compared by those values, never by position, so a page neither
/// repeats nor skips rows that existed throughout, whatever is inserted meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) sort: Sort,
    /// The severity's rank (0 = info … 4 = critical) for [`SortKey::Severity`].
    pub(crate) rank: Option<u8>,
    /// `opened_at`, or `updated_at` for [`SortKey::UpdatedAt`], as stored.
    pub(crate) at: String,
    pub(crate) id: String,
}

impl Cursor {
    /// The order this cursor continues.
    pub fn sort(&self) -> Sort {
        self.sort
    }
}

impl fmt::Display for Cursor {
    /// The opaque token an API hands out as `next`: `ORDER~KEY[~RANK]~TIME~ID`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}~{}~",
            self.sort.order.as_str(),
            self.sort.key.as_str()
        )?;
        if let Some(rank) = self.rank {
            write!(f, "{rank}~")?;
        }
        write!(f, "{}~{}", self.at, self.id)
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid page cursor `{s}`");
        let parts: Vec<&str> = s.split('~').collect();
        let (order, key, rest) = match parts.as_slice() {
            [order, key, rest @ ..] => (*order, *key, rest),
            _ => return Err(bad()),
        };
        let sort = Sort {
            key: key.parse().map_err(|_| bad())?,
            order: order.parse().map_err(|_| bad())?,
        };
        let (rank, at, id) = match (sort.key, rest) {
            (SortKey::Severity, [rank, at, id]) => {
                let rank: u8 = rank.parse().map_err(|_| bad())?;
                if usize::from(rank) >= Severity::ALL.len() {
                    return Err(bad());
                }
                (Some(rank), *at, *id)
            }
            (SortKey::OpenedAt | SortKey::UpdatedAt, [at, id]) => (None, *at, *id),
            _ => return Err(bad()),
        };
        let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Cursor {
            sort,
            rank,
            at: super::timestamp(at.with_timezone(&Utc)),
            id: id.to_ascii_lowercase(),
        })
    }
}

/// How many violations a page holds, in which order, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this cursor; `None` for the first page. It must belong to `sort`.
    pub after: Option<Cursor>,
    /// At most this many rows (clamped to 1..=[`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// The order.
    pub sort: Sort,
}

impl PageRequest {
    /// The largest page the store hands out.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first page of `limit` rows, newest first.
    pub fn first(limit: u32) -> PageRequest {
        PageRequest {
            after: None,
            limit,
            sort: Sort::default(),
        }
    }
}

/// One page of violations, in the requested order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The rows.
    pub violations: Vec<Violation>,
    /// Where the next page starts; `None` when this is the last.
    pub next: Option<Cursor>,
}

/// One cell of the risk heatmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeatmapCell {
    /// The department (`None`: files that no asset covers).
    pub department: Option<String>,
    /// The severity.
    pub severity: Severity,
    /// Unresolved violations (`open` or `acknowledged`) in that cell.
    pub count: u64,
}

/// What the store knows about an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// The id given at enrollment.
    pub id: String,
    /// Its host name.
    pub hostname: String,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// When it was revoked; a revoked agent's events are refused.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last delivered a batch.
    pub last_seen: Option<DateTime<Utc>>,
    /// Its version, from its last health report.
    pub version: Option<String>,
    /// Its last health report.
    pub health: Option<Health>,
    /// The highest sequence number up to which every event is stored.
    pub contiguous_seq: u64,
}

/// A new agent row, as enrollment creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// The agent's id.
    pub id: String,
    /// Its host name.
    pub hostname: String,
    /// The hash of its secret (the store never sees the secret).
    pub secret_hash: String,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened_json() -> &'static str {
        r#"{"seq":7,"at":"2026-03-01T10:00:00Z","body":{"type":"violation_opened",
            "path":"/home/a/Downloads/x.docx","kind":"misplaced","severity":"high",
            "label":"confidential","asset":"ACME","department":"sales",
            "message":"m","fix":"f","host":"h1"}}"#
    }

    #[test]
    fn events_read_the_documented_json() {
        let event: Event = serde_json::from_str(opened_json()).unwrap();
        assert_eq!(event.seq, 7);
        assert!(matches!(
            event.body,
            EventBody::ViolationOpened {
                kind: Kind::Misplaced,
                severity: Severity::High,
                ..
            }
        ));
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);

        let health: Event = serde_json::from_str(
            r#"{"seq":1,"at":"2026-03-01T10:00:00Z","body":{"type":"health","version":"0.1.0"}}"#,
        )
        .unwrap();
        assert_eq!(health.body.type_name(), "health");
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let top = opened_json().replace(r#""seq":7"#, r#""seq":7,"extra":1"#);
        let body = opened_json().replace(r#""host":"h1""#, r#""host":"h1","extra":1"#);
        let health = r#"{"seq":1,"at":"2026-03-01T10:00:00Z",
            "body":{"type":"health","version":"0.1.0","extra":true}}"#;
        let tag = opened_json().replace("violation_opened", "violation_exploded");
        for text in [top.as_str(), body.as_str(), health, tag.as_str()] {
            assert!(serde_json::from_str::<Event>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn violation_ids_are_stable_and_distinct() {
        let id = violation_id("agent-1", "/srv/a.pdf", Kind::Misplaced);
        assert_eq!(id.len(), 64);
        assert_eq!(id, violation_id("agent-1", "/srv/a.pdf", Kind::Misplaced));
        assert_ne!(id, violation_id("agent-2", "/srv/a.pdf", Kind::Misplaced));
        assert_ne!(id, violation_id("agent-1", "/srv/a.pdf", Kind::Unencrypted));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            violation_id("ab", "c", Kind::Expired),
            violation_id("a", "bc", Kind::Expired)
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let time = "2026-03-01T10:00:00.000000Z".to_owned();
        let id = "a".repeat(64);
        let cursors = [
            Cursor {
                sort: Sort::default(),
                rank: None,
                at: time.clone(),
                id: id.clone(),
            },
            Cursor {
                sort: Sort {
                    key: SortKey::Severity,
                    order: SortOrder::Asc,
                },
                rank: Some(4),
                at: time.clone(),
                id: id.clone(),
            },
            Cursor {
                sort: Sort {
                    key: SortKey::UpdatedAt,
                    order: SortOrder::Desc,
                },
                rank: None,
                at: time.clone(),
                id: id.clone(),
            },
        ];
        for cursor in cursors {
            assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        }
        assert_eq!(
            Cursor {
                sort: Sort::default(),
                rank: None,
                at: time.clone(),
                id: id.clone()
            }
            .to_string(),
            format!("desc~opened_at~{time}~{id}")
        );
        let bad = [
            String::new(),
            "x~y".into(),
            "desc~opened_at~2026-03-01T10:00:00Z~abc".into(),
            "nonsense~".into(),
            format!("up~opened_at~{time}~{id}"),
            format!("desc~size~{time}~{id}"),
            format!("desc~severity~{time}~{id}"),
            format!("desc~severity~5~{time}~{id}"),
            format!("desc~opened_at~3~{time}~{id}"),
            format!("desc~opened_at~yesterday~{id}"),
        ];
        for bad in bad {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
