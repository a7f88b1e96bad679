//! Findings: what evaluating one file against the bundle produces, and their severities and kinds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How urgent a finding is, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix urgently.
    #[default]
    Info,
    /// Fix when convenient.
    Low,
    /// Fix soon.
    Medium,
    /// Fix today.
    High,
    /// Fix now.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown severity `{s}`; expected one of: info, low, medium, high, critical"
                )
            })
    }
}

/// The kinds of violation an agent can see in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Outside every location allowed for its label or asset, or inside a forbidden location.
    Misplaced,
    /// Encryption is required and the file is not (or not provably) encrypted.
    Unencrypted,
    /// Its asset's access deadline has passed.
    Expired,
    /// Its permissions grant access beyond the asset's members.
    Overexposed,
    /// Labeled at or above the threshold, and no ledger asset covers it.
    Unregistered,
    /// Inside an asset with a lower label than the asset's, or unlabeled where labels are required.
    Mislabeled,
}

impl Kind {
    /// Every kind, in the order output lists them.
    pub const ALL: [Kind; 6] = [
        Kind::Misplaced,
        Kind::Unencrypted,
        Kind::Expired,
        Kind::Overexposed,
        Kind::Unregistered,
        Kind::Mislabeled,
    ];

    /// The name used in output, APIs and the policy's `[severity]` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Misplaced => "misplaced",
            Kind::Unencrypted => "unencrypted",
            Kind::Expired => "expired",
            Kind::Overexposed => "overexposed",
            Kind::Unregistered => "unregistered",
            Kind::Mislabeled => "mislabeled",
        }
    }

    /// One sentence on what the kind means, for rule catalogues (SARIF, `--help`).
    pub fn description(self) -> &'static str {
        match self {
            Kind::Misplaced => "a labeled file sits outside every location allowed for its label or asset, on a host its asset does not list, or inside a forbidden location",
            Kind::Unencrypted => "the file's label or asset requires encryption and the file is not encrypted",
            Kind::Expired => "the file belongs to an asset whose access deadline has passed",
            Kind::Overexposed => "the file's permissions grant access beyond its asset's members",
            Kind::Unregistered => "the file is labeled at or above the registration threshold but no ledger asset covers it",
            Kind::Mislabeled => "the file sits in an asset's location with a lower label than the asset's, or with none where labels are required",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown violation kind `{s}`"))
    }
}

/// The result of evaluating one file: one problem, why it is one, and how to fix it.
///
/// Evaluation yields at most one finding per kind for a file, so (agent, path, kind) identifies a
/// violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: Kind,
    /// How urgent.
    pub severity: Severity,
    /// The policy label the decision was made with, if the file has one.
    pub label: Option<String>,
    /// The ledger asset the file belongs to, if any.
    pub asset: Option<String>,
    /// The rule that fired, e.g. `rules.forbidden: **/Downloads/**` or `asset ACME-2026: access_until`.
    pub rule: String,
    /// One sentence: what is wrong.
    pub message: String,
    /// What a developer can do about it.
    pub fix: String,
}
