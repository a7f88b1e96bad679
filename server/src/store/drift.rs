//! Ledger drift: where the ledger and the fleet's footprints disagree.
//!
//! Agents send a footprint after every complete scan (per asset, how many of its files they
//! saw); ingest keeps each agent's latest one in `footprints` and, per asset, when any footprint
//! last saw files of it (`asset_presence.last_seen_at`, next to `first_listed_at`, written when
//! a bundle version first lists the asset). [`Store::refresh_drift`] compares the current ledger
//! with the latest footprints of enrolled, non-revoked agents and finds two conditions, each with
//! kind `ledger-drift` and severity `info`:
//!
//! - `empty`: no reporting agent has files of the asset, although at least one reporting agent
//!   watches a folder its locations can lie in (on a host the asset allows), and that has been
//!   so for `empty_after`, counted from the later of the asset's first appearance in a bundle and
//!   the last footprint that saw files of it. An asset whose locations no agent watches is not
//!   reported: no footprint can say anything about it.
//! - `foreign-host`: an agent's latest footprint has files of the asset on a host that the
//!   asset's `hosts` globs do not allow (one finding per asset and host).
//!
//! Findings are kept in the `drift` table with a stable id (SHA-256 of asset, condition, host) and
//! a life cycle: `open` while the condition holds, `resolved` when a refresh no longer finds it,
//! `open` again (with a new `opened_at`) when it returns. They are not rows of `violations`: a
//! violation is a file on an agent, identified by (agent, path, kind) and closed by that agent's
//! observation, while drift is a property of a ledger entry across the fleet with no file, no
//! single agent and nothing an agent could observe as fixed.

use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use infoledger_policies::glob::suggested_dir;
use infoledger_policies::wire::events::Footprint;
use infoledger_policies::{Asset, Severity};
use ring::digest;
use rusqlite::TransactionBehavior;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// The kind name drift findings carry, next to the agents' violation kinds.
pub const DRIFT_KIND: &str = "ledger-drift";

/// Which disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftCondition {
    /// The asset's locations have held no file on any reporting agent for a while.
    Empty,
    /// Files of the asset were seen on a host the asset does not list.
    ForeignHost,
}

impl DriftCondition {
    /// The name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftCondition::Empty => "empty",
            DriftCondition::ForeignHost => "foreign-host",
        }
    }

    fn parse(text: &str) -> Result<DriftCondition, StoreError> {
        match text {
            "empty" => Ok(DriftCondition::Empty),
            "foreign-host" => Ok(DriftCondition::ForeignHost),
            other => Err(StoreError::Corrupt(format!("drift condition `{other}`"))),
        }
    }
}

/// Where a drift finding is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftStatus {
    /// The condition holds.
    Open,
    /// The condition no longer holds.
    Resolved,
}

impl DriftStatus {
    /// The name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftStatus::Open => "open",
            DriftStatus::Resolved => "resolved",
        }
    }

    /// Parses `open` or `resolved`.
    pub fn parse(text: &str) -> Option<DriftStatus> {
        match text {
            "open" => Some(DriftStatus::Open),
            "resolved" => Some(DriftStatus::Resolved),
            _ => None,
        }
    }
}

/// One drift finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Stable id: hex SHA-256 of (asset, condition, host).
    pub id: String,
    /// Always `ledger-drift`.
    pub kind: &'static str,
    /// Always `info`.
    pub severity: Severity,
    /// Which disagreement.
    pub condition: DriftCondition,
    /// The asset's id.
    pub asset: String,
    /// The asset's department (what department-scoped callers see).
    pub department: String,
    /// `foreign-host`: the host holding the files.
    pub host: Option<String>,
    /// `foreign-host`: how many files that host's latest footprint counted; `empty`: 0.
    pub files: u64,
    /// One sentence for people.
    pub message: String,
    /// Open or resolved.
    pub status: DriftStatus,
    /// When the condition was (last) found.
    pub opened_at: DateTime<Utc>,
    /// When it cleared.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// What one refresh changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriftRefresh {
    /// Findings open after the refresh.
    pub open: usize,
    /// Newly opened (or opened again).
    pub opened: usize,
    /// Resolved by this refresh.
    pub resolved: usize,
}

/// Keeps an agent's newest footprint and when each of its assets was last seen with files.
/// Called by ingest while applying events in sequence order, inside its transaction.
pub(crate) fn apply_footprint(
    tx: &rusqlite::Connection,
    agent: &str,
    seq: u64,
    at: &str,
    footprint: &Footprint,
) -> Result<(), StoreError> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for asset in &footprint.assets {
        let count = counts.entry(asset.asset.as_str()).or_default();
        *count = count.saturating_add(asset.files);
    }
    tx.prepare_cached(
        "INSERT INTO footprints (agent_id, seq, at, host, roots, assets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (agent_id) DO UPDATE SET seq = excluded.seq, at = excluded.at,
             host = excluded.host, roots = excluded.roots, assets = excluded.assets",
    )?
    .execute((
        agent,
        i64::try_from(seq).unwrap_or(i64::MAX),
        at,
        &footprint.host,
        serde_json::to_string(&footprint.roots)?,
        serde_json::to_string(&counts)?,
    ))?;
    let mut seen = tx.prepare_cached(
        "INSERT INTO asset_presence (asset, last_seen_at) VALUES (?1, ?2)
         ON CONFLICT (asset) DO UPDATE
             SET last_seen_at = max(coalesce(last_seen_at, ''), excluded.last_seen_at)",
    )?;
    for (asset, files) in counts {
        if files > 0 {
            seen.execute((asset, at))?;
        }
    }
    Ok(())
}

/// One agent's latest footprint as stored.
#[derive(Debug)]
struct StoredFootprint {
    host: String,
    roots: Vec<String>,
    assets: HashMap<String, u64>,
}

/// A finding before it is stored.
#[derive(Debug)]
struct Found {
    condition: DriftCondition,
    asset: String,
    department: String,
    host: Option<String>,
    files: u64,
    message: String,
}

impl Found {
    fn id(&self) -> String {
        drift_id(&self.asset, self.condition, self.host.as_deref())
    }
}

/// The stable id of a drift finding.
pub fn drift_id(asset: &str, condition: DriftCondition, host: Option<&str>) -> String {
    let mut hash = digest::Context::new(&digest::SHA256);
    for part in [
        DRIFT_KIND,
        asset,
        condition.as_str(),
        host.unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update(&[0u8]);
    }
    let mut hex = String::with_capacity(64);
    for b in hash.finish().as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Whether an agent watching `roots` can see files in one of the asset's locations: a root lies
/// inside a location's fixed folder, or that folder inside a root.
fn covers(roots: &[String], asset: &Asset) -> bool {
    asset.locations.patterns().iter().any(|pattern| {
        let folder = suggested_dir(pattern);
        let folder = Path::new(&folder);
        // A location that does not start with a fixed folder (`**/x`) can lie under any root.
        folder.as_os_str().is_empty()
            || !folder.has_root()
            || roots.iter().any(|root| {
                let root = Path::new(root);
                root.starts_with(folder) || folder.starts_with(root)
            })
    })
}

impl Store {
    /// Compares the current ledger with the latest footprints at `now` and brings the `drift`
    /// table up to date: new findings open, findings whose condition cleared resolve.
    pub fn refresh_drift(
        &self,
        now: DateTime<Utc>,
        empty_after: TimeDelta,
    ) -> Result<DriftRefresh, StoreError> {
        let found = self.find_drift(now, empty_after)?;
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = timestamp(now);
        let mut existing: HashMap<String, String> = {
            let mut stmt = tx.prepare_cached("SELECT id, status FROM drift")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut refresh = DriftRefresh {
            open: found.len(),
            ..DriftRefresh::default()
        };
        for finding in &found {
            let id = finding.id();
            let files = i64::try_from(finding.files).unwrap_or(i64::MAX);
            match existing.remove(&id).as_deref() {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO drift (id, asset, department, condition, host, files,
                             message, status, opened_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?8)",
                    )?
                    .execute((
                        &id,
                        &finding.asset,
                        &finding.department,
                        finding.condition.as_str(),
                        &finding.host,
                        files,
                        &finding.message,
                        &at,
                    ))?;
                    refresh.opened += 1;
                }
                Some(status) => {
                    let reopen = status != DriftStatus::Open.as_str();
                    tx.prepare_cached(
                        "UPDATE drift SET department = ?2, files = ?3, message = ?4,
                             updated_at = ?5,
                             opened_at = CASE WHEN status = 'open' THEN opened_at ELSE ?5 END,
                             resolved_at = NULL, status = 'open'
                         WHERE id = ?1",
                    )?
                    .execute((
                        &id,
                        &finding.department,
                        files,
                        &finding.message,
                        &at,
                    ))?;
                    if reopen {
                        refresh.opened += 1;
                    }
                }
            }
        }
        for (id, status) in existing {
            if status == DriftStatus::Open.as_str() {
                tx.prepare_cached(
                    "UPDATE drift SET status = 'resolved', resolved_at = ?2, updated_at = ?2
                     WHERE id = ?1",
                )?
                .execute((&id, &at))?;
                refresh.resolved += 1;
            }
        }
        tx.commit()?;
        Ok(refresh)
    }

    /// Drift findings within `departments` (`None`: all), with `status` (`None`: both), ordered
    /// by department, asset, condition and host.
    pub fn drift(
        &self,
        departments: Option<&[String]>,
        status: Option<DriftStatus>,
    ) -> Result<Vec<Drift>, StoreError> {
        let scope = departments.map(serde_json::to_string).transpose()?;
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(
            "SELECT id, condition, asset, department, host, files, message, status, opened_at,
                    resolved_at, updated_at
             FROM drift
             WHERE (?1 IS NULL OR department IN (SELECT value FROM json_each(?1)))
               AND (?2 IS NULL OR status = ?2)
             ORDER BY department, asset, condition, host",
        )?;
        let rows = stmt.query_map((scope, status.map(DriftStatus::as_str)), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, String>(7)?,
                row.get::<_, String>(8)?,
                row.get::<_, Option<String>>(9)?,
                row.get::<_, String>(10)?,
            ))
        })?;
        let mut drift = Vec::new();
        for row in rows {
            let (
                id,
                condition,
                asset,
                department,
                host,
                files,
                message,
                status,
                opened,
                resolved,
                updated,
            ) = row?;
            drift.push(Drift {
                id,
                kind: DRIFT_KIND,
                severity: Severity::Info,
                condition: DriftCondition::parse(&condition)?,
                asset,
                department,
                host,
                files: files.unsigned_abs(),
                message,
                status: DriftStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("drift status `{status}`")))?,
                opened_at: parse_timestamp(&opened)?,
                resolved_at: resolved.as_deref().map(parse_timestamp).transpose()?,
                updated_at: parse_timestamp(&updated)?,
            });
        }
        Ok(drift)
    }

    /// The drift findings that hold now (pure computation over the current bundle, footprints
    /// and presence; nothing is written).
    fn find_drift(
        &self,
        now: DateTime<Utc>,
        empty_after: TimeDelta,
    ) -> Result<Vec<Found>, StoreError> {
        let Some(document) = self.bundle(None)? else {
            return Ok(Vec::new());
        };
        let (bundle, _) = document.load().map_err(|e| {
            StoreError::Corrupt(format!(
                "the current bundle (version {}) does not load: {e}",
                document.version
            ))
        })?;
        let (footprints, presence) = {
            let reader = self.reader();
            let tx = reader.unchecked_transaction()?;
            let footprints = {
                let mut stmt = tx.prepare_cached(
                    "SELECT f.host, f.roots, f.assets FROM footprints f
                     JOIN agents a ON a.id = f.agent_id
                     WHERE a.revoked_at IS NULL ORDER BY f.agent_id",
                )?;
                let rows = stmt.query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                let mut footprints = Vec::new();
                for row in rows {
                    let (host, roots, assets) = row?;
                    footprints.push(StoredFootprint {
                        host,
                        roots: serde_json::from_str(&roots)?,
                        assets: serde_json::from_str(&assets)?,
                    });
                }
                footprints
            };
            let presence: HashMap<String, (Option<String>, Option<String>)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT asset, first_listed_at, last_seen_at FROM asset_presence",
                )?;
                let rows =
                    stmt.query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
                rows.collect::<Result<_, _>>()?
            };
            (footprints, presence)
        };

        let mut found = Vec::new();
        for asset in bundle.ledger.assets() {
            let holding: Vec<(&StoredFootprint, u64)> = footprints
                .iter()
                .filter_map(|f| {
                    f.assets
                        .get(&asset.id)
                        .copied()
                        .filter(|n| *n > 0)
                        .map(|n| (f, n))
                })
                .collect();
            for (footprint, files) in &holding {
                if asset.allows_host(&footprint.host) {
                    continue;
                }
                let allowed = asset
                    .hosts
                    .as_ref()
                    .map(|h| h.patterns().join(", "))
                    .unwrap_or_default();
                found.push(Found {
                    condition: DriftCondition::ForeignHost,
                    asset: asset.id.clone(),
                    department: asset.department.clone(),
                    host: Some(footprint.host.clone()),
                    files: *files,
                    message: format!(
                        "{files} file{} of asset {} ({}) seen on host {}, which the asset does not list (hosts: {allowed})",
                        if *files == 1 { "" } else { "s" },
                        asset.id,
                        asset.name,
                        footprint.host
                    ),
                });
            }
            if !holding.is_empty() {
                continue;
            }
            let watching = footprints
                .iter()
                .filter(|f| asset.allows_host(&f.host) && covers(&f.roots, asset))
                .count();
            if watching == 0 {
                continue;
            }
            let (first_listed, last_seen) = presence.get(&asset.id).cloned().unwrap_or_default();
            // The later of the two; with neither known, the current bundle's issue date.
            let since = match (first_listed, last_seen) {
                (Some(a), Some(b)) => parse_timestamp(a.max(b).as_str())?,
                (Some(t), None) | (None, Some(t)) => parse_timestamp(&t)?,
                (None, None) => document.issued_at,
            };
            if now.signed_duration_since(since) < empty_after {
                continue;
            }
            found.push(Found {
                condition: DriftCondition::Empty,
                asset: asset.id.clone(),
                department: asset.department.clone(),
                host: None,
                files: 0,
                message: format!(
                    "no file of asset {} ({}) in its locations on any of the {watching} reporting agent{} watching them since {}",
                    asset.id,
                    asset.name,
                    if watching == 1 { "" } else { "s" },
                    since.format("%Y-%m-%d")
                ),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_ids_are_stable_and_distinct() {
        let a = drift_id("ACME", DriftCondition::Empty, None);
        assert_eq!(a, drift_id("ACME", DriftCondition::Empty, None));
        assert_eq!(a.len(), 64);
        assert_ne!(a, drift_id("ACME", DriftCondition::ForeignHost, None));
        assert_ne!(
            drift_id("ACME", DriftCondition::ForeignHost, Some("h1")),
            drift_id("ACME", DriftCondition::ForeignHost, Some("h2"))
        );
    }
}
