//! The policy: sensitivity labels (lowest first), how foreign labels map to them, global rules and
//! severities; parsed from TOML with every problem located.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, LoadError, Reporter};
use crate::facts::DetectedLabel;
use crate::finding::{Kind, Severity};
use crate::glob::{self, PathGlobs};
use crate::tomlread::{self, Located, TableReader};

/// A label's rank: 0 is the lowest label of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(pub usize);

/// Whether files at a label or of an asset must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionRequirement {
    /// Encryption is not demanded.
    #[default]
    Optional,
    /// Files must be encrypted.
    Required,
}

impl EncryptionRequirement {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "required" => Ok(EncryptionRequirement::Required),
            "optional" => Ok(EncryptionRequirement::Optional),
            other => Err(format!(
                "unknown encryption requirement `{other}`; expected \"required\" or \"optional\""
            )),
        }
    }
}

/// What to do when inspection cannot tell whether a file that must be encrypted is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownEncryption {
    /// Report `unencrypted`: encryption that cannot be shown does not count (the default).
    #[default]
    Violation,
    /// Say nothing.
    Ignore,
}

/// One sensitivity label of the policy.
#[derive(Debug, Clone)]
pub struct Label {
    /// The policy's own name (`confidential`).
    pub name: String,
    /// Its rank.
    pub level: Level,
    /// Whether files with this label must be encrypted.
    pub encryption: EncryptionRequirement,
    /// Foreign names and `mip:<guid>` ids that mean this label.
    pub aliases: Vec<String>,
    /// Marking banners (whole words, case-sensitive) that mean this label in text files.
    pub markings: Vec<String>,
    /// Severity of `misplaced`, `unencrypted` and `overexposed` findings for files at this label.
    pub severity: Severity,
    /// Where files with this label may live at all (empty: anywhere not forbidden).
    pub locations: PathGlobs,
}

/// Global rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Locations where files labeled at or above `misplaced_from` must never be.
    pub forbidden: PathGlobs,
    /// Labeled at or above this and covered by no asset: `unregistered`.
    pub unregistered_from: Level,
    /// The level given to a foreign label that no alias maps.
    pub unknown_label: Level,
    /// Whether an unlabeled file inside an asset location takes the asset's label.
    pub inherit_asset_label: bool,
    /// Whether an unlabeled file inside an asset location is `mislabeled`.
    pub require_labels_in_assets: bool,
    /// Files at or above this level are subject to the forbidden locations.
    pub misplaced_from: Level,
    /// What an `unknown` encryption verdict counts as where encryption is required.
    pub unknown_encryption: UnknownEncryption,
}

/// Severities of the kinds that do not take their severity from the label.
#[derive(Debug, Clone, Copy)]
pub struct KindSeverities {
    /// `expired` (default high).
    pub expired: Severity,
    /// `unregistered` (default medium).
    pub unregistered: Severity,
    /// `mislabeled` for a label below the asset's (default medium).
    pub mislabeled: Severity,
    /// `mislabeled` for a missing label (default low).
    pub unlabeled: Severity,
}

impl Default for KindSeverities {
    fn default() -> Self {
        KindSeverities {
            expired: Severity::High,
            unregistered: Severity::Medium,
            mislabeled: Severity::Medium,
            unlabeled: Severity::Low,
        }
    }
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    labels: Vec<Label>,
    /// Global rules.
    pub rules: Rules,
    /// Fixed severities.
    pub severities: KindSeverities,
    by_name: HashMap<String, Level>,
    by_id: HashMap<String, Level>,
    source: PathBuf,
}

/// How a detected label maps onto the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// The level it maps to.
    pub level: Level,
    /// False when no alias matched and `rules.unknown_label` was assumed.
    pub mapped: bool,
}

const TOP_KEYS: &[&str] = &["label", "rules", "severity"];
const LABEL_KEYS: &[&str] = &[
    "name",
    "aliases",
    "encryption",
    "markings",
    "severity",
    "locations",
    "description",
];
const RULE_KEYS: &[&str] = &[
    "forbidden",
    "unregistered_from",
    "unknown_label",
    "inherit_asset_label",
    "require_labels_in_assets",
    "misplaced_from",
    "unknown_encryption",
];
const SEVERITY_KEYS: &[&str] = &["expired", "unregistered", "mislabeled", "unlabeled"];

/// Normalises a label id for comparison: braces and case are ignored.
pub fn normalize_label_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Default label severities: the top label is critical, then high, medium, and low for the rest.
fn default_label_severity(level: usize, count: usize) -> Severity {
    match count - 1 - level {
        0 => Severity::Critical,
        1 => Severity::High,
        2 => Severity::Medium,
        _ => Severity::Low,
    }
}

impl Policy {
    /// Parses and validates a policy; `origin` names the file in diagnostics.
    ///
    /// On success also returns warnings (diagnostics that do not reject the file).
    pub fn from_toml(text: &str, origin: &Path) -> Result<(Policy, Vec<Diagnostic>), LoadError> {
        let mut rep = Reporter::new(origin, text);
        let policy = Self::read(text, origin, &mut rep);
        let warnings = rep.finish()?;
        match policy {
            Some(p) => Ok((p, warnings)),
            None => Err(LoadError {
                diagnostics: warnings,
            }),
        }
    }

    fn read(text: &str, origin: &Path, rep: &mut Reporter<'_>) -> Option<Policy> {
        let doc = tomlread::parse(text, rep)?;
        let top = TableReader::new(&doc.value, doc.span.clone(), "the policy", TOP_KEYS, rep);

        let mut labels: Vec<Label> = Vec::new();
        let mut by_name: HashMap<String, Level> = HashMap::new();
        let mut by_id: HashMap<String, Level> = HashMap::new();
        let raw_labels = top.table_array("label", rep);
        if raw_labels.is_empty() {
            rep.error(
                0..0,
                "the policy defines no labels; add [[label]] tables, lowest level first",
            );
        }
        let count = raw_labels.len().max(1);
        for (table, span) in &raw_labels {
            let t = TableReader::new(table, span.clone(), "[[label]]", LABEL_KEYS, rep);
            let level = Level(labels.len());
            let Some(name) = t.required_str("name", rep) else {
                continue;
            };
            let key = name.value.to_lowercase();
            if name.value.trim().is_empty() {
                rep.error(name.span.clone(), "label name is empty");
            } else if let Some(prev) = by_name.get(&key) {
                rep.error(
                    name.span.clone(),
                    format!(
                        "label name `{}` is already used by label #{}",
                        name.value,
                        prev.0 + 1
                    ),
                );
            } else {
                by_name.insert(key, level);
            }
            let encryption = t
                .optional_str("encryption", rep)
                .and_then(|e| {
                    EncryptionRequirement::parse(&e.value)
                        .map_err(|m| rep.error(e.span.clone(), m))
                        .ok()
                })
                .unwrap_or_default();
            let severity = match t.optional_str("severity", rep) {
                Some(s) => s
                    .value
                    .parse()
                    .map_err(|m: String| rep.error(s.span.clone(), m))
                    .unwrap_or_default(),
                None => default_label_severity(labels.len(), count),
            };
            let mut aliases = Vec::new();
            for alias in t
                .optional_str_list("aliases", rep)
                .map(|l| l.value)
                .unwrap_or_default()
            {
                let (map, key, what) = match alias.value.strip_prefix("mip:") {
                    Some(id) => {
                        let id = normalize_label_id(id);
                        if !is_guid(&id) {
                            rep.error(
                                alias.span.clone(),
                                format!(
                                    "`{}` is not a MIP label id; expected mip:<guid> such as mip:3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
                                    alias.value
                                ),
                            );
                            continue;
                        }
                        (&mut by_id, id, "label id")
                    }
                    None => (&mut by_name, alias.value.to_lowercase(), "alias"),
                };
                match map.get(&key) {
                    Some(prev) if *prev != level => rep.error(
                        alias.span.clone(),
                        format!(
                            "{what} `{}` already maps to label `{}`",
                            alias.value,
                            labels
                                .get(prev.0)
                                .map_or("(this label)", |l: &Label| l.name.as_str())
                        ),
                    ),
                    _ => {
                        map.insert(key, level);
                    }
                }
                aliases.push(alias.value);
            }
            let markings = t
                .optional_str_list("markings", rep)
                .map(|l| {
                    l.value
                        .into_iter()
                        .filter_map(|m| {
                            if m.value.trim().is_empty() || m.value.len() > 128 {
                                rep.error(m.span, "a marking must be 1 to 128 bytes of text");
                                None
                            } else {
                                Some(m.value)
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let locations = read_globs(&t, "locations", rep);
            let _ = t.optional_str("description", rep);
            labels.push(Label {
                name: name.value,
                level,
                encryption,
                aliases,
                markings,
                severity,
                locations,
            });
        }

        let find = |rep: &mut Reporter<'_>, l: Option<Located<String>>| -> Option<Level> {
            let l = l?;
            match by_name.get(&l.value.to_lowercase()) {
                Some(level)
                    if labels
                        .get(level.0)
                        .is_some_and(|x| x.name.eq_ignore_ascii_case(&l.value)) =>
                {
                    Some(*level)
                }
                _ => {
                    let names: Vec<&str> = labels.iter().map(|x| x.name.as_str()).collect();
                    rep.error(
                        l.span,
                        format!(
                            "unknown label `{}`; the policy defines: {}",
                            l.value,
                            names.join(", ")
                        ),
                    );
                    None
                }
            }
        };

        let top_level = Level(labels.len().saturating_sub(1));
        let second = Level(1.min(labels.len().saturating_sub(1)));
        let mut rules = Rules {
            forbidden: PathGlobs::default(),
            unregistered_from: top_level,
            unknown_label: top_level,
            inherit_asset_label: true,
            require_labels_in_assets: false,
            misplaced_from: second,
            unknown_encryption: UnknownEncryption::Violation,
        };
        if let Some((table, span)) = top.optional_table("rules", rep) {
            let t = TableReader::new(table, span, "[rules]", RULE_KEYS, rep);
            rules.forbidden = read_globs(&t, "forbidden", rep);
            let raw = t.optional_str("unregistered_from", rep);
            if let Some(l) = find(rep, raw) {
                rules.unregistered_from = l;
            }
            let raw = t.optional_str("unknown_label", rep);
            if let Some(l) = find(rep, raw) {
                rules.unknown_label = l;
            }
            let raw = t.optional_str("misplaced_from", rep);
            if let Some(l) = find(rep, raw) {
                rules.misplaced_from = l;
            }
            if let Some(b) = t.optional_bool("inherit_asset_label", rep) {
                rules.inherit_asset_label = b;
            }
            if let Some(b) = t.optional_bool("require_labels_in_assets", rep) {
                rules.require_labels_in_assets = b;
            }
            if let Some(u) = t.optional_str("unknown_encryption", rep) {
                match u.value.as_str() {
                    "violation" => rules.unknown_encryption = UnknownEncryption::Violation,
                    "ignore" => rules.unknown_encryption = UnknownEncryption::Ignore,
                    other => rep.error(
                        u.span,
                        format!("unknown value `{other}`; expected \"violation\" or \"ignore\""),
                    ),
                }
            }
        }

        let mut severities = KindSeverities::default();
        if let Some((table, span)) = top.optional_table("severity", rep) {
            let t = TableReader::new(table, span, "[severity]", SEVERITY_KEYS, rep);
            for (key, slot) in [
                ("expired", &mut severities.expired),
                ("unregistered", &mut severities.unregistered),
                ("mislabeled", &mut severities.mislabeled),
                ("unlabeled", &mut severities.unlabeled),
            ] {
                if let Some(s) = t.optional_str(key, rep) {
                    match s.value.parse() {
                        Ok(v) => *slot = v,
                        Err(m) => rep.error(s.span, m),
                    }
                }
            }
        }

        if rep.has_errors() {
            return None;
        }
        Some(Policy {
            labels,
            rules,
            severities,
            by_name,
            by_id,
            source: origin.to_path_buf(),
        })
    }

    /// The labels, lowest first.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The label at a level.
    pub fn label(&self, level: Level) -> &Label {
        // Levels are only created by this policy, so they are always in range.
        &self.labels[level.0.min(self.labels.len() - 1)]
    }

    /// The policy label with this exact name (case-insensitive), not considering aliases.
    pub fn label_named(&self, name: &str) -> Option<&Label> {
        self.labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// The file the policy was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Maps a label found in a file onto the policy.
    ///
    /// A label id (`mip:` aliases) decides first; then the name, matched case-insensitively
    /// against label names and other aliases; otherwise `rules.unknown_label` is assumed.
    pub fn resolve(&self, label: &DetectedLabel) -> Resolution {
        let by_id = label
            .id
            .as_deref()
            .and_then(|id| self.by_id.get(&normalize_label_id(id)));
        let by_name = label
            .name
            .as_deref()
            .and_then(|n| self.by_name.get(&n.trim().to_lowercase()));
        match by_id.or(by_name) {
            Some(level) => Resolution {
                level: *level,
                mapped: true,
            },
            None => Resolution {
                level: self.rules.unknown_label,
                mapped: false,
            },
        }
    }

    /// Every marking string with the level it stands for, for marking detection.
    pub fn markings(&self) -> Vec<(String, Level)> {
        self.labels
            .iter()
            .flat_map(|l| l.markings.iter().map(move |m| (m.clone(), l.level)))
            .collect()
    }

    /// The fixed severity of a kind that does not depend on the label.
    pub fn fixed_severity(&self, kind: Kind) -> Option<Severity> {
        match kind {
            Kind::Expired => Some(self.severities.expired),
            Kind::Unregistered => Some(self.severities.unregistered),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.0)
    }
}

/// Reads a list of path globs, checking each compiles and is anchored.
pub(crate) fn read_globs(
    t: &TableReader<'_, '_>,
    key: &'static str,
    rep: &mut Reporter<'_>,
) -> PathGlobs {
    let mut ok = Vec::new();
    for g in t
        .optional_str_list(key, rep)
        .map(|l| l.value)
        .unwrap_or_default()
    {
        if check_path_glob(&g, key, rep) {
            ok.push(g.value);
        }
    }
    PathGlobs::new(ok).unwrap_or_default()
}

/// Checks one path glob; reports and returns false when it is unusable.
pub(crate) fn check_path_glob(g: &Located<String>, key: &str, rep: &mut Reporter<'_>) -> bool {
    if let Err(e) = glob::compile(&g.value) {
        rep.error(
            g.span.clone(),
            format!("invalid glob `{}` in `{key}`: {e}", g.value),
        );
        return false;
    }
    if !(g.value.starts_with('/') || g.value.starts_with("**")) {
        rep.error(
            g.span.clone(),
            format!(
                "glob `{}` in `{key}` must be an absolute path (start with `/`) or start with `**`",
                g.value
            ),
        );
        return false;
    }
    true
}
