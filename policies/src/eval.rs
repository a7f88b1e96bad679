//! Evaluation: `(bundle, file facts, now, host) -> findings`, a pure function with no I/O.

use chrono::{DateTime, NaiveDate, Utc};
use std::path::Path;

use crate::facts::{EncryptionStatus, FileFacts, LabelSource};
use crate::finding::{Finding, Kind, Severity};
use crate::glob;
use crate::ledger::{Asset, Member};
use crate::policy::{EncryptionRequirement, Level, Policy, UnknownEncryption};
use crate::Bundle;

/// The label a decision was made with, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLabel {
    /// Policy level.
    pub level: Level,
    /// Where it was found (`Asset` when inherited).
    pub source: LabelSource,
    /// False when a foreign label matched no alias and `rules.unknown_label` was assumed.
    pub mapped: bool,
}

/// The strongest label detected in the file itself (not inherited), if any.
pub fn detected_label(policy: &Policy, facts: &FileFacts) -> Option<EffectiveLabel> {
    facts
        .labels
        .iter()
        .filter(|l| l.is_active())
        .map(|l| {
            let r = policy.resolve(l);
            EffectiveLabel {
                level: r.level,
                source: l.source,
                mapped: r.mapped,
            }
        })
        .max_by_key(|l| l.level)
}

/// Everything evaluation decided about a file besides its findings; `scan` shows it in verbose
/// output and the server stores it.
#[derive(Debug, Clone)]
pub struct Assessment<'b> {
    /// The asset the file belongs to: named by the file itself, else by location.
    pub asset: Option<&'b Asset>,
    /// The label decisions were made with.
    pub label: Option<EffectiveLabel>,
    /// The findings, at most one per kind, in [`Kind::ALL`] order.
    pub findings: Vec<Finding>,
}

/// Evaluates one file against the bundle.
///
/// `now` decides access deadlines (compared as UTC dates; the deadline day itself is still
/// allowed); `host` is matched against assets' host globs.
pub fn evaluate(
    bundle: &Bundle,
    facts: &FileFacts,
    now: DateTime<Utc>,
    host: &str,
) -> Vec<Finding> {
    assess(bundle, facts, now, host).findings
}

/// Like [`evaluate`], also returning the asset and label the findings were decided with.
pub fn assess<'b>(
    bundle: &'b Bundle,
    facts: &FileFacts,
    now: DateTime<Utc>,
    host: &str,
) -> Assessment<'b> {
    let policy = &bundle.policy;
    let path = facts.path.as_path();
    let detected = detected_label(policy, facts);
    let hinted = facts
        .asset_hint
        .as_deref()
        .and_then(|id| bundle.ledger.get(id));
    let located = bundle.ledger.asset_at(path);
    let asset = hinted.or(located);
    let label = detected.or_else(|| {
        asset
            .filter(|_| policy.rules.inherit_asset_label)
            .map(|a| EffectiveLabel {
                level: a.label,
                source: LabelSource::Asset,
                mapped: true,
            })
    });
    let ctx = Ctx {
        policy,
        facts,
        path,
        asset,
        label,
        detected,
        today: now.date_naive(),
        host,
    };
    let mut findings = Vec::new();
    let forbidden = ctx.forbidden_match();
    findings.extend(ctx.misplaced(forbidden));
    findings.extend(ctx.unencrypted());
    findings.extend(ctx.expired());
    findings.extend(ctx.overexposed());
    if forbidden.is_none() {
        findings.extend(ctx.unregistered());
    }
    findings.extend(ctx.mislabeled());
    Assessment {
        asset,
        label,
        findings,
    }
}

struct Ctx<'a> {
    policy: &'a Policy,
    facts: &'a FileFacts,
    path: &'a Path,
    asset: Option<&'a Asset>,
    label: Option<EffectiveLabel>,
    detected: Option<EffectiveLabel>,
    today: NaiveDate,
    host: &'a str,
}

impl<'a> Ctx<'a> {
    fn label_name(&self) -> Option<String> {
        self.label.map(|l| self.policy.label(l.level).name.clone())
    }

    fn shown_path(&self) -> String {
        shell_quote(&self.path.to_string_lossy())
    }

    /// The level severity is decided by: the stronger of the file's label and its asset's.
    fn severity_level(&self) -> Option<Level> {
        let asset_level = self.asset.map(|a| a.label);
        match (self.label.map(|l| l.level), asset_level) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn label_severity(&self) -> Severity {
        self.severity_level()
            .map_or(Severity::Info, |l| self.policy.label(l).severity)
    }

    fn finding(
        &self,
        kind: Kind,
        severity: Severity,
        rule: String,
        message: String,
        fix: String,
    ) -> Finding {
        Finding {
            kind,
            severity,
            label: self.label_name(),
            asset: self.asset.map(|a| a.id.clone()),
            rule,
            message,
            fix,
        }
    }

    fn describe_label(&self) -> String {
        match self.label {
            Some(l) => {
                let name = &self.policy.label(l.level).name;
                match (l.source, l.mapped) {
                    (LabelSource::Asset, _) => format!("{name} (inherited from its asset)"),
                    (_, false) => format!("{name} (unmapped foreign label, from {})", l.source),
                    (s, true) => format!("{name} (from {s})"),
                }
            }
            None => "unlabeled".to_string(),
        }
    }

    /// The forbidden pattern holding the file, when its label makes forbidden locations apply.
    fn forbidden_match(&self) -> Option<&'a str> {
        let level = self.label?.level;
        if level < self.policy.rules.misplaced_from {
            return None;
        }
        self.policy.rules.forbidden.first_match(self.path)
    }

    fn where_it_belongs(&self) -> String {
        if let Some(a) = self.asset {
            let dirs: Vec<String> = a
                .locations
                .patterns()
                .iter()
                .map(|p| glob::suggested_dir(p))
                .filter(|d| !d.is_empty())
                .collect();
            let target = match dirs.first() {
                Some(d) => format!("move it under {d}"),
                None => "move it to one of its asset's locations".to_string(),
            };
            return format!(
                "{target} or remove it; allowed locations for {}: {}",
                a.id,
                a.locations.patterns().join(", ")
            );
        }
        if let Some(l) = self.label {
            let label = self.policy.label(l.level);
            if !label.locations.is_empty() {
                return format!(
                    "move it to a location allowed for {} files ({}) or remove it",
                    label.name,
                    label.locations.patterns().join(", ")
                );
            }
        }
        "move it to a location that a ledger asset covers, or remove it".to_string()
    }

    fn misplaced(&self, forbidden: Option<&str>) -> Option<Finding> {
        let severity = self.label_severity();
        if let Some(pattern) = forbidden {
            return Some(self.finding(
                Kind::Misplaced,
                severity,
                format!("rules.forbidden: {pattern}"),
                format!(
                    "{} file in a forbidden location (matches `{pattern}`)",
                    self.describe_label()
                ),
                self.where_it_belongs(),
            ));
        }
        if let Some(a) = self.asset {
            if !a.contains(self.path) {
                return Some(self.finding(
                    Kind::Misplaced,
                    severity,
                    format!("asset {}: locations", a.id),
                    format!(
                        "file of asset {} ({}) lies outside the asset's locations",
                        a.id, a.name
                    ),
                    self.where_it_belongs(),
                ));
            }
            if !a.allows_host(self.host) {
                let hosts = a
                    .hosts
                    .as_ref()
                    .map(|h| h.patterns().join(", "))
                    .unwrap_or_default();
                return Some(self.finding(
                    Kind::Misplaced,
                    severity,
                    format!("asset {}: hosts", a.id),
                    format!(
                        "asset {} may not be stored on host `{}` (allowed hosts: {hosts})",
                        a.id, self.host
                    ),
                    format!(
                        "remove it from this host, or ask {} to add the host to asset {}",
                        a.administrator, a.id
                    ),
                ));
            }
        }
        let policy_label = self.policy.label(self.label?.level);
        if !policy_label.locations.is_empty() && !policy_label.locations.is_match(self.path) {
            return Some(self.finding(
                Kind::Misplaced,
                severity,
                format!("label {}: locations", policy_label.name),
                format!(
                    "{} file outside every location allowed for its label",
                    self.describe_label()
                ),
                // Not `where_it_belongs`: the file may well sit in its asset; it is the label
                // that restricts where it may be.
                format!(
                    "move it to a location allowed for {} files ({}), or relabel it if it is not {}",
                    policy_label.name,
                    policy_label.locations.patterns().join(", "),
                    policy_label.name
                ),
            ));
        }
        None
    }

    fn unencrypted(&self) -> Option<Finding> {
        // Only a label carried by the file itself adds a requirement: an inherited label is the
        // asset's own, and the asset's explicit `encryption` overrides its label's default.
        let label_requires = self.detected.and_then(|l| {
            let label = self.policy.label(l.level);
            (label.encryption == EncryptionRequirement::Required).then_some(label)
        });
        let asset_requires = self.asset.filter(|a| a.requires_encryption(self.policy));
        let why = match (asset_requires, label_requires) {
            (Some(a), _) => (
                format!("asset {}: encryption", a.id),
                format!("asset {} requires encryption", a.id),
            ),
            (None, Some(l)) => (
                format!("label {}: encryption", l.name),
                format!("label {} requires encryption", l.name),
            ),
            (None, None) => return None,
        };
        let verdict = &self.facts.encryption;
        let what = match verdict.status {
            EncryptionStatus::Encrypted => return None,
            EncryptionStatus::Partial => "is only partly encrypted",
            EncryptionStatus::Plaintext => "is not encrypted",
            EncryptionStatus::Unknown => match self.policy.rules.unknown_encryption {
                UnknownEncryption::Ignore => return None,
                UnknownEncryption::Violation => "could not be shown to be encrypted",
            },
        };
        Some(self.finding(
            Kind::Unencrypted,
            self.label_severity(),
            why.0,
            format!(
                "{} file {what}; {} (inspection: {verdict})",
                self.describe_label(),
                why.1
            ),
            format!(
                "encrypt it (apply a protecting sensitivity label, or keep it in an encrypted archive or container) or remove {}",
                self.shown_path()
            ),
        ))
    }

    fn expired(&self) -> Option<Finding> {
        let a = self.asset?;
        let until = a.access_until?;
        if self.today <= until {
            return None;
        }
        let days = (self.today - until).num_days();
        Some(self.finding(
            Kind::Expired,
            self.policy.severities.expired,
            format!("asset {}: access_until", a.id),
            format!(
                "access to asset {} ({}) ended on {until}, {days} day{} ago",
                a.id,
                a.name,
                if days == 1 { "" } else { "s" }
            ),
            format!(
                "delete or archive the file as the asset's disposal rules say; if access must continue, ask {} to extend access_until of {}",
                a.administrator, a.id
            ),
        ))
    }

    fn overexposed(&self) -> Option<Finding> {
        let a = self.asset?;
        let mode = self.facts.mode;
        let members: Vec<String> = a.members.iter().map(ToString::to_string).collect();
        let members_text = if members.is_empty() {
            "no one listed".to_string()
        } else {
            members.join(", ")
        };
        let path = self.shown_path();
        let (rule, message, fix) = if mode & 0o007 != 0 {
            (
                "world-access",
                format!(
                    "file is accessible to every user on the host (mode {:04o}); asset {} is limited to {members_text}",
                    mode & 0o7777,
                    a.id
                ),
                format!("chmod o-rwx {path}"),
            )
        } else if let Some(group) = self.foreign_group() {
            (
                "foreign-group",
                format!(
                    "group `{group}` can access the file (mode {:04o}) but is not a member of asset {} ({members_text})",
                    mode & 0o7777,
                    a.id
                ),
                match a.members.iter().find_map(|m| match m {
                    Member::Group(g) => Some(g),
                    Member::User(_) => None,
                }) {
                    Some(g) => format!("chgrp {g} {path}, or chmod g-rwx {path}"),
                    None => format!("chmod g-rwx {path}"),
                },
            )
        } else if let Some(owner) = self.foreign_owner() {
            (
                "foreign-owner",
                format!(
                    "owner `{owner}` is not a member of asset {} ({members_text})",
                    a.id
                ),
                format!(
                    "give the file to a member (chown), or ask {} to add user:{owner} to asset {}",
                    a.administrator, a.id
                ),
            )
        } else {
            return None;
        };
        Some(self.finding(
            Kind::Overexposed,
            self.label_severity(),
            format!("asset {}: members ({rule})", a.id),
            message,
            fix,
        ))
    }

    /// The file's group, when it has access and is not among the asset's member groups.
    fn foreign_group(&self) -> Option<String> {
        let a = self.asset?;
        if self.facts.mode & 0o070 == 0 {
            return None;
        }
        let group = principal_name(&self.facts.group.name, self.facts.group.id);
        let member = a
            .members
            .iter()
            .any(|m| matches!(m, Member::Group(g) if *g == group));
        (!member).then_some(group)
    }

    /// The file's owner, when the asset lists users and the owner is not one of them.
    ///
    /// An asset that lists only groups says nothing about owners; root owning a file is normal
    /// for files deployed by tooling and is not reported.
    fn foreign_owner(&self) -> Option<String> {
        let a = self.asset?;
        let users: Vec<&str> = a
            .members
            .iter()
            .filter_map(|m| match m {
                Member::User(u) => Some(u.as_str()),
                Member::Group(_) => None,
            })
            .collect();
        if users.is_empty() || self.facts.owner.id == 0 {
            return None;
        }
        let owner = principal_name(&self.facts.owner.name, self.facts.owner.id);
        (!users.contains(&owner.as_str())).then_some(owner)
    }

    fn unregistered(&self) -> Option<Finding> {
        if self.asset.is_some() {
            return None;
        }
        let label = self.detected?;
        if label.level < self.policy.rules.unregistered_from {
            return None;
        }
        Some(self.finding(
            Kind::Unregistered,
            self.policy.severities.unregistered,
            format!(
                "rules.unregistered_from: {}",
                self.policy.label(self.policy.rules.unregistered_from).name
            ),
            format!(
                "{} file that no ledger asset covers",
                self.describe_label()
            ),
            "ask your information manager to register the asset it belongs to (a ledger entry whose locations cover this folder), or move it into an existing asset's location".to_string(),
        ))
    }

    fn mislabeled(&self) -> Option<Finding> {
        let a = self.asset?;
        if !a.contains(self.path) {
            return None;
        }
        let asset_label = &self.policy.label(a.label).name;
        match self.detected {
            Some(d) if d.level < a.label => Some(self.finding(
                Kind::Mislabeled,
                self.policy.severities.mislabeled,
                format!("asset {}: label", a.id),
                format!(
                    "file labeled {} inside asset {}, which is {asset_label}",
                    self.describe_label(),
                    a.id
                ),
                format!("relabel it as {asset_label}"),
            )),
            None if self.policy.rules.require_labels_in_assets => Some(self.finding(
                Kind::Mislabeled,
                self.policy.severities.unlabeled,
                "rules.require_labels_in_assets".to_string(),
                format!(
                    "unlabeled file inside asset {}; files in assets must carry a label",
                    a.id
                ),
                format!(
                    "label it {asset_label} (for example: setfattr -n user.infoledger.label -v {asset_label} {})",
                    self.shown_path()
                ),
            )),
            _ => None,
        }
    }
}

fn principal_name(name: &Option<String>, id: u32) -> String {
    name.clone().unwrap_or_else(|| id.to_string())
}

/// Quotes a path for a shell command in a fix hint when it needs quoting.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ',' | '@' | ':')
        })
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
