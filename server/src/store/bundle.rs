//! The bundle agents receive: policy and ledger texts, versioned, validated exactly as the agent
//! validates them, and every change audited.
//!
//! Each accepted change is a new row of `bundle_versions` (version + 1) holding both full texts,
//! so any version can be exported again and the newest row is the current bundle. A change is
//! validated with [`BundleDocument::load`] on the very document agents will receive: a ledger is
//! checked against the current policy, and a policy change re-checks the current ledger, so a
//! policy that would invalidate the ledger is refused with the ledger's diagnostics. Importing
//! the text that is already current changes nothing ([`Imported::Unchanged`]).
//!
//! The first import must be a policy: it creates version 1 with an empty ledger. A ledger cannot
//! come first, because a ledger means nothing without the labels of a policy.
//!
//! Validation (globs compiled for every asset) runs before the writer lock is taken, so a large
//! ledger never stalls ingest; the write then checks that the version it validated against is
//! still current and validates again if another change got in between.

use super::audit::{append, AuditRecord};
use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, Utc};
use infoledger_policies::wire::bundle::{BundleDocument, SourceText, MAX_PAYLOAD_BYTES};
use infoledger_policies::{Bundle, Diagnostic, LoadError, Policy};
use ring::digest;
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::fmt;
use std::fmt::Write as _;
use std::path::Path;

/// The ledger of version 1, when a policy is imported before any ledger.
pub const EMPTY_LEDGER: &str =
    "# No assets yet: import a ledger (`infoledger-server ledger import FILE` or PUT /api/v1/ledger).\n";
/// The name the empty ledger of version 1 carries.
pub const EMPTY_LEDGER_NAME: &str = "ledger.toml";
/// The longest file name a policy or ledger may carry.
const MAX_NAME_CHARS: usize = 255;
/// How often an import validates again when other imports keep getting in between.
const IMPORT_ATTEMPTS: usize = 5;

/// One of the two files of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Document {
    /// The policy (labels, rules, severities).
    Policy,
    /// The ledger (assets).
    Ledger,
}

impl Document {
    /// `policy` or `ledger`.
    pub fn as_str(self) -> &'static str {
        match self {
            Document::Policy => "policy",
            Document::Ledger => "ledger",
        }
    }

    /// The audit action recorded when it changes.
    fn audit_action(self) -> &'static str {
        match self {
            Document::Policy => "bundle.policy_changed",
            Document::Ledger => "bundle.ledger_changed",
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A new version was stored.
    Changed {
        /// The new version.
        version: u64,
        /// Warnings of the new bundle (both files), as the agent would print them.
        warnings: Vec<Diagnostic>,
    },
    /// The text is the current one; no version was made.
    Unchanged {
        /// The current version.
        version: u64,
    },
}

impl Imported {
    /// The version current after the import.
    pub fn version(&self) -> u64 {
        match self {
            Imported::Changed { version, .. } | Imported::Unchanged { version } => *version,
        }
    }
}

/// Why an import was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The new file has errors, or (a policy) it would make the current ledger invalid.
    #[error("{}", invalid_message(*document, *invalidates_ledger))]
    Invalid {
        /// The file being imported.
        document: Document,
        /// For a policy: the version whose ledger it would invalidate (the diagnostics are then
        /// the ledger's).
        invalidates_ledger: Option<u64>,
        /// Every diagnostic, errors first.
        error: LoadError,
    },
    /// A ledger was imported before any policy.
    #[error("no policy yet: import a policy first, the ledger is validated against it")]
    NoPolicy,
    /// The file name is empty, too long, or not a plain file name.
    #[error(
        "invalid {document} name `{name}`: expected a plain file name such as {document}.toml"
    )]
    InvalidName {
        /// Which file.
        document: Document,
        /// The name given.
        name: String,
    },
    /// The signed bundle would exceed what agents accept.
    #[error("the bundle would be {bytes} bytes, agents accept at most {MAX_PAYLOAD_BYTES}")]
    TooLarge {
        /// The document's size as JSON.
        bytes: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid_message(document: Document, invalidates_ledger: Option<u64>) -> String {
    match invalidates_ledger {
        Some(version) => format!(
            "the policy would make the current ledger (version {version}) invalid; fix the ledger first or import both"
        ),
        None => format!("the {document} is invalid"),
    }
}

/// One file of a stored version, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    /// The file name it was imported as.
    pub name: String,
    /// Lowercase hex SHA-256 of the text.
    pub sha256: String,
    /// The text's length in bytes.
    pub bytes: usize,
}

/// One stored version of the bundle, without its texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleVersion {
    /// The version.
    pub version: u64,
    /// When it was made.
    pub issued_at: DateTime<Utc>,
    /// Who made it: a token's name, `cli`, or `config` (the files named in server.toml).
    pub actor: String,
    /// What changed: `policy`, `ledger` or `both`.
    pub change: String,
    /// The policy of this version.
    pub policy: SourceSummary,
    /// The ledger of this version.
    pub ledger: SourceSummary,
}

/// A change to import: either file or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleChange {
    /// A new policy.
    pub policy: Option<SourceText>,
    /// A new ledger (TOML, or CSV when its name ends in `.csv`).
    pub ledger: Option<SourceText>,
}

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = digest::digest(&digest::SHA256, text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A plain file name: what agents see and what selects the CSV reader.
fn check_name(document: Document, name: &str) -> Result<(), ImportError> {
    let plain = !name.trim().is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name != "."
        && name != "..";
    if plain {
        Ok(())
    } else {
        Err(ImportError::InvalidName {
            document,
            name: name.to_owned(),
        })
    }
}

type VersionRow = (i64, String, String, String, String, String, String, String);

fn read_version_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

const VERSION_COLUMNS: &str =
    "version, issued_at, actor, change, policy_name, policy_text, ledger_name, ledger_text";

impl Store {
    /// The current bundle's version, `None` before the first import.
    pub fn bundle_version(&self) -> Result<Option<u64>, StoreError> {
        let version: Option<i64> =
            self.reader()
                .query_row("SELECT max(version) FROM bundle_versions", [], |row| {
                    row.get(0)
                })?;
        Ok(version.map(i64::unsigned_abs))
    }

    /// The bundle of `version`, or the current one for `None`; `None` when there is no such
    /// version (or no bundle at all).
    pub fn bundle(&self, version: Option<u64>) -> Result<Option<BundleDocument>, StoreError> {
        let reader = self.reader();
        let row = match version {
            None => reader
                .query_row(
                    &format!(
                        "SELECT {VERSION_COLUMNS} FROM bundle_versions
                         ORDER BY version DESC LIMIT 1"
                    ),
                    [],
                    read_version_row,
                )
                .optional()?,
            Some(v) => {
                let Ok(v) = i64::try_from(v) else {
                    return Ok(None);
                };
                reader
                    .query_row(
                        &format!(
                            "SELECT {VERSION_COLUMNS} FROM bundle_versions WHERE version = ?1"
                        ),
                        [v],
                        read_version_row,
                    )
                    .optional()?
            }
        };
        row.map(
            |(version, issued, _, _, policy_name, policy, ledger_name, ledger)| {
                Ok(BundleDocument {
                    version: version.unsigned_abs(),
                    issued_at: parse_timestamp(&issued)?,
                    policy: SourceText {
                        name: policy_name,
                        text: policy,
                    },
                    ledger: SourceText {
                        name: ledger_name,
                        text: ledger,
                    },
                })
            },
        )
        .transpose()
    }

    /// The stored versions, newest first, at most `limit`.
    pub fn bundle_versions(&self, limit: u32) -> Result<Vec<BundleVersion>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM bundle_versions ORDER BY version DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], read_version_row)?;
        let summary = |name: String, text: &str| SourceSummary {
            name,
            sha256: sha256_hex(text),
            bytes: text.len(),
        };
        let mut versions = Vec::new();
        for row in rows {
            let (version, issued, actor, change, policy_name, policy, ledger_name, ledger) = row?;
            versions.push(BundleVersion {
                version: version.unsigned_abs(),
                issued_at: parse_timestamp(&issued)?,
                actor,
                change,
                policy: summary(policy_name, &policy),
                ledger: summary(ledger_name, &ledger),
            });
        }
        Ok(versions)
    }

    /// Imports a policy (TOML) named `name`: see [`Store::import`].
    pub fn import_policy(
        &self,
        name: &str,
        text: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Imported, ImportError> {
        let change = BundleChange {
            policy: Some(SourceText {
                name: name.to_owned(),
                text: text.to_owned(),
            }),
            ledger: None,
        };
        self.import(&change, actor, now)
    }

    /// Imports a ledger named `name` (CSV when it ends in `.csv`, else TOML): see
    /// [`Store::import`].
    pub fn import_ledger(
        &self,
        name: &str,
        text: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Imported, ImportError> {
        let change = BundleChange {
            policy: None,
            ledger: Some(SourceText {
                name: name.to_owned(),
                text: text.to_owned(),
            }),
        };
        self.import(&change, actor, now)
    }

    /// Validates `change` against the current bundle and, when it changes anything, stores it as
    /// the next version with one audit entry per changed file (`bundle.policy_changed`,
    /// `bundle.ledger_changed`: actor, version, name, SHA-256 of the text), all in one
    /// transaction. Nothing is stored when anything is refused.
    pub fn import(
        &self,
        change: &BundleChange,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Imported, ImportError> {
        if actor.trim().is_empty() {
            return Err(StoreError::InvalidInput {
                field: "actor",
                problem: "must not be blank".into(),
            }
            .into());
        }
        if let Some(policy) = &change.policy {
            check_name(Document::Policy, &policy.name)?;
        }
        if let Some(ledger) = &change.ledger {
            check_name(Document::Ledger, &ledger.name)?;
        }
        for _ in 0..IMPORT_ATTEMPTS {
            let current = self.bundle(None)?;
            let Some(candidate) = candidate(current.as_ref(), change, now)? else {
                let version = current.map_or(0, |c| c.version);
                return Ok(Imported::Unchanged { version });
            };
            let (bundle, warnings) = validate(&candidate, current.as_ref())?;
            let bytes = serde_json::to_vec(&candidate.document)
                .map_err(StoreError::from)?
                .len();
            if bytes > MAX_PAYLOAD_BYTES {
                return Err(ImportError::TooLarge { bytes });
            }
            let assets: Vec<String> = bundle
                .ledger
                .assets()
                .iter()
                .map(|a| a.id.clone())
                .collect();
            if self.store_version(&candidate, current.as_ref(), &assets, actor, now)? {
                return Ok(Imported::Changed {
                    version: candidate.document.version,
                    warnings,
                });
            }
            // Another import got in between: validate against the new current bundle.
        }
        Err(StoreError::Corrupt(format!(
            "the bundle kept changing during {IMPORT_ATTEMPTS} import attempts"
        ))
        .into())
    }

    /// Writes `candidate` as the next version if the current version is still `current`'s.
    /// Returns `false` (nothing written) when another version got in first.
    fn store_version(
        &self,
        candidate: &Candidate,
        current: Option<&BundleDocument>,
        assets: &[String],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let latest: Option<i64> =
            tx.query_row("SELECT max(version) FROM bundle_versions", [], |row| {
                row.get(0)
            })?;
        if latest.map(i64::unsigned_abs) != current.map(|c| c.version) {
            return Ok(false);
        }
        let doc = &candidate.document;
        let version = i64::try_from(doc.version)
            .map_err(|_| StoreError::Corrupt(format!("bundle version {}", doc.version)))?;
        let issued = timestamp(doc.issued_at);
        tx.execute(
            "INSERT INTO bundle_versions
                 (version, issued_at, actor, change, policy_name, policy_text, ledger_name,
                  ledger_text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            (
                version,
                &issued,
                actor,
                candidate.change_name(),
                &doc.policy.name,
                &doc.policy.text,
                &doc.ledger.name,
                &doc.ledger.text,
            ),
        )?;
        let subject = format!("bundle:{}", doc.version);
        for (document, source) in [
            (Document::Policy, &doc.policy),
            (Document::Ledger, &doc.ledger),
        ] {
            if !candidate.changes(document) {
                continue;
            }
            append(
                &tx,
                &AuditRecord {
                    at: now,
                    actor,
                    action: document.audit_action(),
                    subject: &subject,
                    details: serde_json::json!({
                        "version": doc.version,
                        "name": source.name,
                        "sha256": sha256_hex(&source.text),
                        "bytes": source.text.len(),
                    }),
                },
            )?;
        }
        // Ledger drift measures an asset's emptiness from its first appearance in a bundle.
        let mut listed = tx.prepare_cached(
            "INSERT INTO asset_presence (asset, first_listed_at) VALUES (?1, ?2)
             ON CONFLICT (asset) DO UPDATE
                 SET first_listed_at = coalesce(first_listed_at, excluded.first_listed_at)",
        )?;
        for asset in assets {
            listed.execute((asset, &issued))?;
        }
        drop(listed);
        tx.commit()?;
        Ok(true)
    }
}

/// The document an import would store, and which files it changes.
#[derive(Debug)]
struct Candidate {
    document: BundleDocument,
    policy_changed: bool,
    ledger_changed: bool,
}

impl Candidate {
    fn changes(&self, document: Document) -> bool {
        match document {
            Document::Policy => self.policy_changed,
            Document::Ledger => self.ledger_changed,
        }
    }

    fn change_name(&self) -> &'static str {
        match (self.policy_changed, self.ledger_changed) {
            (true, true) => "both",
            (true, false) => "policy",
            _ => "ledger",
        }
    }
}

/// The next version's document, or `None` when `change` changes nothing.
fn candidate(
    current: Option<&BundleDocument>,
    change: &BundleChange,
    now: DateTime<Utc>,
) -> Result<Option<Candidate>, ImportError> {
    let (policy, ledger) = match current {
        Some(current) => (
            change.policy.as_ref().unwrap_or(&current.policy),
            change.ledger.as_ref().unwrap_or(&current.ledger),
        ),
        None => {
            let Some(policy) = &change.policy else {
                return Err(ImportError::NoPolicy);
            };
            (policy, change.ledger.as_ref().unwrap_or(&EMPTY_SOURCE))
        }
    };
    let policy_changed = current.is_none_or(|c| &c.policy != policy);
    // Version 1's placeholder ledger is not a change of the ledger: nobody imported it.
    let ledger_changed = match current {
        Some(c) => &c.ledger != ledger,
        None => change.ledger.is_some(),
    };
    if !policy_changed && !ledger_changed {
        return Ok(None);
    }
    let version = current.map_or(1, |c| c.version + 1);
    Ok(Some(Candidate {
        document: BundleDocument {
            version,
            issued_at: now,
            policy: policy.clone(),
            ledger: ledger.clone(),
        },
        policy_changed,
        ledger_changed,
    }))
}

static EMPTY_SOURCE: std::sync::LazyLock<SourceText> = std::sync::LazyLock::new(|| SourceText {
    name: EMPTY_LEDGER_NAME.to_owned(),
    text: EMPTY_LEDGER.to_owned(),
});

/// Validates the candidate exactly as an agent loads it; on failure, says whose fault it is.
fn validate(
    candidate: &Candidate,
    current: Option<&BundleDocument>,
) -> Result<(Bundle, Vec<Diagnostic>), ImportError> {
    let doc = &candidate.document;
    if candidate.policy_changed {
        // The policy on its own first: its errors are the policy's, whatever the ledger says.
        if let Err(error) = Policy::from_toml(&doc.policy.text, Path::new(&doc.policy.name)) {
            return Err(ImportError::Invalid {
                document: Document::Policy,
                invalidates_ledger: None,
                error,
            });
        }
    }
    doc.load()
        .map_err(|error| match (candidate.ledger_changed, current) {
            // The policy is fine on its own, so the errors are the ledger's: either the new one,
            // or the current one that the new policy no longer accepts.
            (false, Some(current)) => ImportError::Invalid {
                document: Document::Policy,
                invalidates_ledger: Some(current.version),
                error,
            },
            _ => ImportError::Invalid {
                document: Document::Ledger,
                invalidates_ledger: None,
                error,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoledger_policies::{DiagnosticLevel, EXAMPLE_LEDGER, EXAMPLE_POLICY};

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("b.db")).unwrap();
        (dir, store)
    }

    fn changed(outcome: Imported) -> u64 {
        match outcome {
            Imported::Changed { version, .. } => version,
            other => panic!("expected a new version, got {other:?}"),
        }
    }

    #[test]
    fn a_policy_comes_first_and_makes_version_one_with_an_empty_ledger() {
        let (_dir, store) = store();
        assert_eq!(store.bundle_version().unwrap(), None);
        assert!(store.bundle(None).unwrap().is_none());
        let err = store
            .import_ledger("ledger.toml", EXAMPLE_LEDGER, "cli", at(0))
            .unwrap_err();
        assert!(matches!(err, ImportError::NoPolicy), "{err}");
        assert_eq!(store.bundle_version().unwrap(), None);

        let v = changed(
            store
                .import_policy("policy.toml", EXAMPLE_POLICY, "cli", at(1))
                .unwrap(),
        );
        assert_eq!(v, 1);
        let doc = store.bundle(None).unwrap().unwrap();
        assert_eq!(doc.version, 1);
        assert_eq!(doc.issued_at, at(1));
        assert_eq!(doc.ledger.text, EMPTY_LEDGER);
        let (bundle, _) = doc.load().unwrap();
        assert!(bundle.ledger.assets().is_empty());
    }

    #[test]
    fn each_change_is_a_version_and_unchanged_text_is_not() {
        let (_dir, store) = store();
        store
            .import_policy("policy.toml", EXAMPLE_POLICY, "cli", at(0))
            .unwrap();
        assert_eq!(
            changed(
                store
                    .import_ledger("ledger.toml", EXAMPLE_LEDGER, "alice", at(1))
                    .unwrap()
            ),
            2
        );
        assert_eq!(
            store
                .import_ledger("ledger.toml", EXAMPLE_LEDGER, "alice", at(2))
                .unwrap(),
            Imported::Unchanged { version: 2 }
        );
        assert_eq!(
            store
                .import_policy("policy.toml", EXAMPLE_POLICY, "bob", at(3))
                .unwrap(),
            Imported::Unchanged { version: 2 }
        );
        let edited = format!("{EXAMPLE_POLICY}\n# reviewed\n");
        assert_eq!(
            changed(
                store
                    .import_policy("policy.toml", &edited, "bob", at(4))
                    .unwrap()
            ),
            3
        );

        let versions = store.bundle_versions(10).unwrap();
        let summary: Vec<(u64, &str, &str)> = versions
            .iter()
            .map(|v| (v.version, v.actor.as_str(), v.change.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (3, "bob", "policy"),
                (2, "alice", "ledger"),
                (1, "cli", "policy")
            ]
        );
        assert_eq!(versions[0].policy.sha256, sha256_hex(&edited));
        assert_eq!(versions[0].ledger.sha256, sha256_hex(EXAMPLE_LEDGER));
        assert_eq!(versions[0].issued_at, at(4));
        // Older versions stay exportable.
        assert_eq!(
            store.bundle(Some(2)).unwrap().unwrap().policy.text,
            EXAMPLE_POLICY
        );
        assert!(store.bundle(Some(4)).unwrap().is_none());

        let audit = store.audit_entries(0, 10).unwrap();
        let actions: Vec<(&str, &str, &str)> = audit
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("cli", "bundle.policy_changed", "bundle:1"),
                ("alice", "bundle.ledger_changed", "bundle:2"),
                ("bob", "bundle.policy_changed", "bundle:3"),
            ]
        );
        assert_eq!(audit[2].details["sha256"], sha256_hex(&edited));
        assert_eq!(audit[2].details["version"], 3);
        assert_eq!(store.verify_audit().unwrap().problem, None);
    }

    #[test]
    fn an_invalid_ledger_is_refused_with_every_diagnostic_and_nothing_stored() {
        let (_dir, store) = store();
        store
            .import_policy("policy.toml", EXAMPLE_POLICY, "cli", at(0))
            .unwrap();
        let bad = "[[asset]]\nid = \"A\"\nname = \"a\"\ndepartment = \"d\"\nadministrator = \"x\"\nlabel = \"topsecret\"\nlocations = [\"/a/**\"]\ncolour = 1\n";
        let err = store
            .import_ledger("ledger.toml", bad, "cli", at(1))
            .unwrap_err();
        let ImportError::Invalid {
            document,
            invalidates_ledger,
            error,
        } = err
        else {
            panic!("expected invalid, got {err}");
        };
        assert_eq!((document, invalidates_ledger), (Document::Ledger, None));
        let errors: Vec<String> = error.errors().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("ledger.toml:6:9: error: "),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("ledger.toml:8:1: error: "),
            "{errors:?}"
        );
        assert_eq!(store.bundle_version().unwrap(), Some(1));
        assert_eq!(store.audit_entries(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_policy_that_breaks_the_current_ledger_is_refused_with_the_ledgers_diagnostics() {
        let (_dir, store) = store();
        store
            .import_policy("policy.toml", EXAMPLE_POLICY, "cli", at(0))
            .unwrap();
        store
            .import_ledger("ledger.toml", EXAMPLE_LEDGER, "cli", at(1))
            .unwrap();
        // Drop the `secret` label, which HR-PERSONNEL uses.
        let start = EXAMPLE_POLICY.find("[[label]]\nname = \"secret\"").unwrap();
        let end = EXAMPLE_POLICY.find("[rules]").unwrap();
        let policy = format!("{}{}", &EXAMPLE_POLICY[..start], &EXAMPLE_POLICY[end..]);
        let err = store
            .import_policy("policy.toml", &policy, "cli", at(2))
            .unwrap_err();
        let ImportError::Invalid {
            document,
            invalidates_ledger,
            error,
        } = &err
        else {
            panic!("expected invalid, got {err}");
        };
        assert_eq!(
            (*document, *invalidates_ledger),
            (Document::Policy, Some(2))
        );
        let first = error.errors().next().unwrap();
        assert_eq!(first.file, Path::new("ledger.toml"));
        assert_eq!(first.level, DiagnosticLevel::Error);
        assert!(first.message.contains("secret"), "{first}");
        assert!(err.to_string().contains("version 2"), "{err}");
        assert_eq!(store.bundle_version().unwrap(), Some(2));
    }

    #[test]
    fn an_invalid_policy_reports_the_policy() {
        let (_dir, store) = store();
        let err = store
            .import_policy("policy.toml", "[[label]]\nname = 3\n", "cli", at(0))
            .unwrap_err();
        let ImportError::Invalid {
            document, error, ..
        } = err
        else {
            panic!("expected invalid");
        };
        assert_eq!(document, Document::Policy);
        assert!(error.errors().all(|d| d.file == Path::new("policy.toml")));
        assert_eq!(store.bundle_version().unwrap(), None);
    }

    #[test]
    fn csv_ledgers_and_names_are_checked() {
        let (_dir, store) = store();
        store
            .import_policy("policy.toml", EXAMPLE_POLICY, "cli", at(0))
            .unwrap();
        let csv = "id,name,department,administrator,label,locations\nCSV-1,From CSV,Sales,dave@example.com,internal,/srv/csv/**\n";
        assert_eq!(
            changed(
                store
                    .import_ledger("assets.csv", csv, "cli", at(1))
                    .unwrap()
            ),
            2
        );
        let doc = store.bundle(None).unwrap().unwrap();
        assert_eq!(doc.load().unwrap().0.ledger.assets()[0].id, "CSV-1");
        // The same text as TOML is a different (and invalid) ledger.
        assert!(matches!(
            store.import_ledger("assets.toml", csv, "cli", at(2)),
            Err(ImportError::Invalid { .. })
        ));
        for bad in ["", "../ledger.toml", "a/b.toml", "x\ny.toml"] {
            assert!(
                matches!(
                    store.import_ledger(bad, csv, "cli", at(3)),
                    Err(ImportError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            store.import_ledger("l.csv", csv, " ", at(3)),
            Err(ImportError::Store(StoreError::InvalidInput {
                field: "actor",
                ..
            }))
        ));
    }

    #[test]
    fn importing_both_files_at_once_is_one_version() {
        let (_dir, store) = store();
        let change = BundleChange {
            policy: Some(SourceText {
                name: "policy.toml".into(),
                text: EXAMPLE_POLICY.into(),
            }),
            ledger: Some(SourceText {
                name: "ledger.toml".into(),
                text: EXAMPLE_LEDGER.into(),
            }),
        };
        assert_eq!(changed(store.import(&change, "config", at(0)).unwrap()), 1);
        assert_eq!(store.bundle_versions(5).unwrap()[0].change, "both");
        assert_eq!(
            store.import(&change, "config", at(1)).unwrap(),
            Imported::Unchanged { version: 1 }
        );
        let audit = store.audit_entries(0, 10).unwrap();
        assert_eq!(
            audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["bundle.policy_changed", "bundle.ledger_changed"]
        );
    }
}
