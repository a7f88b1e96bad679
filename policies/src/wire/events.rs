//! The messages agents and the collector exchange: enrollment, event batches and their answers.
//!
//! Both sides use these types, so a field added on one side is a compile error, not a silent
//! mismatch, on the other. Every request type refuses unknown fields.

use crate::{Kind, Severity};
use chrono::{DateTime, Utc};
use ring::digest;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/enroll` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token an admin issued.
    pub token: String,
    /// The agent's host name.
    pub hostname: String,
    /// The agent's version.
    pub version: String,
}

/// `POST /api/v1/enroll` answer: the new identity. The secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent's id, sent in every signed request.
    pub agent_id: String,
    /// The agent's signing secret.
    pub secret: String,
    /// The collector's bundle-signing public key (Ed25519, base64): see [`super::bundle`].
    pub bundle_public_key: String,
}

/// `POST /api/v1/events` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// The agent the batch is from; optional, but when present it must be the signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The events, in any order; sequence numbers make them idempotent.
    pub events: Vec<Event>,
}

/// `POST /api/v1/events` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsResponse {
    /// Every event `1..=stored_through` of this agent is durably stored: the agent may drop
    /// exactly those from its outbox.
    pub stored_through: u64,
}

/// One numbered event from an agent. Sequence numbers start at 1 and have no gaps on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The agent's sequence number: the store is idempotent by (agent, seq).
    pub seq: u64,
    /// When the agent observed what the event reports.
    pub at: DateTime<Utc>,
    /// What happened.
    pub body: EventBody,
}

/// What an event reports, tagged by `type` in JSON (`violation_opened`, `violation_resolved`,
/// `health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventBody {
    /// The agent found a problem with a file (or still finds it, with possibly new details).
    ViolationOpened {
        /// The file's absolute path on the agent's host.
        path: String,
        /// What kind of problem.
        kind: Kind,
        /// How urgent.
        severity: Severity,
        /// The policy label the decision was made with.
        #[serde(default)]
        label: Option<String>,
        /// The ledger asset the file belongs to.
        #[serde(default)]
        asset: Option<String>,
        /// The asset's department: what department-scoped managers see.
        #[serde(default)]
        department: Option<String>,
        /// The rule that fired, e.g. `rules.forbidden: **/Downloads/**`.
        #[serde(default)]
        rule: Option<String>,
        /// One sentence: what is wrong.
        message: String,
        /// What a developer can do about it.
        fix: String,
        /// The agent's host name.
        host: String,
    },
    /// The agent observed that the problem is gone (moved, encrypted, relabeled, deleted).
    ViolationResolved {
        /// The file's absolute path on the agent's host.
        path: String,
        /// The kind of problem that is gone.
        kind: Kind,
    },
    /// The agent's own state.
    Health(Health),
    /// Where the ledger's assets were seen on this host: sent after each complete scan, so the
    /// collector can tell assets whose locations hold no file anywhere (ledger drift) and files
    /// of an asset on hosts the asset does not list.
    Footprint(Footprint),
}

/// Per-asset file counts from one complete scan of an agent's watch roots.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Footprint {
    /// The agent's host name.
    pub host: String,
    /// The watch roots the scan covered.
    pub roots: Vec<String>,
    /// Every asset with at least one file under the roots, with how many files.
    pub assets: Vec<AssetFootprint>,
}

/// One asset's files on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetFootprint {
    /// The asset's id.
    pub asset: String,
    /// How many of its files the scan saw.
    pub files: u64,
}

/// An agent's health report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The agent's version.
    pub version: String,
    /// Events waiting in the agent's outbox.
    #[serde(default)]
    pub queue_depth: u64,
    /// Events the outbox had to drop by its overflow policy since the agent started.
    #[serde(default)]
    pub dropped_events: u64,
    /// Whether the agent ran out of file-system watches (rescans still cover those folders).
    #[serde(default)]
    pub watch_limit_reached: bool,
    /// The last error the agent met, for the operator.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the agent's last full scan of its watch roots started.
    #[serde(default)]
    pub last_scan_at: Option<DateTime<Utc>>,
    /// How long that scan took, in milliseconds.
    #[serde(default)]
    pub last_scan_ms: Option<u64>,
    /// Violation changes waiting for room in a full outbox (deferred, never dropped).
    #[serde(default)]
    pub deferred_events: u64,
    /// The collector bundle version the agent evaluates with; `None` while it runs on local
    /// files or has none yet.
    #[serde(default)]
    pub bundle_version: Option<u64>,
    /// Files the agent keeps track of.
    #[serde(default)]
    pub files: u64,
    /// File-system watches in place.
    #[serde(default)]
    pub watches: u64,
}

impl EventBody {
    /// The name stored in the events table's `kind` column (the JSON tag).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::ViolationOpened { .. } => "violation_opened",
            EventBody::ViolationResolved { .. } => "violation_resolved",
            EventBody::Health(_) => "health",
            EventBody::Footprint(_) => "footprint",
        }
    }
}

/// The stable identity of a violation: lowercase hex SHA-256 over (agent, path, kind).
///
/// Re-scans, restarts and re-sends of the same problem therefore land on the same row.
pub fn violation_id(agent_id: &str, path: &str, kind: Kind) -> String {
    let mut hash = digest::Context::new(&digest::SHA256);
    // NUL separators: no agent id or path contains NUL, so distinct triples never collide.
    for part in [agent_id, path, kind.as_str()] {
        hash.update(part.as_bytes());
        hash.update(&[0u8]);
    }
    hash.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_refuse_unknown_fields_and_round_trip() {
        let json = r#"{"seq":1,"at":"2026-01-01T00:00:00Z","body":{"type":"violation_resolved","path":"/a","kind":"misplaced"}}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(
            serde_json::from_str::<Event>(&serde_json::to_string(&event).unwrap()).unwrap(),
            event
        );
        let extra = json.replace(r#""seq":1"#, r#""seq":1,"x":2"#);
        assert!(serde_json::from_str::<Event>(&extra).is_err());
    }
}
