//! One-shot scan: walk folders, gather each regular file's facts, evaluate them, collect results.
//!
//! A scan never follows symbolic links (so it cannot leave the tree or loop), and no single file
//! stops it: unreadable entries and files vanishing mid-scan are counted and listed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use infoledger_policies::{assess, Bundle, FileFacts, Finding};
use serde::Serialize;
use walkdir::WalkDir;

use crate::facts::{self, FactsError, NameCache};

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files or folders to scan.
    pub roots: Vec<PathBuf>,
    /// Globs of paths to leave out; a pattern without `/` matches a file or folder name anywhere.
    pub exclude: Vec<String>,
    /// The hostname assets' host globs are matched against.
    pub host: String,
    /// The time deadlines are judged at.
    pub now: DateTime<Utc>,
}

/// One file with findings.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The facts the findings were decided on.
    pub facts: FileFacts,
    /// Its findings.
    pub findings: Vec<Finding>,
}

/// An entry the scan could not inspect.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScanProblem {
    /// The file or folder.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// Counters of a scan.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Regular files inspected.
    pub files: u64,
    /// Entries not inspected on purpose: symbolic links, devices, FIFOs, sockets, files that
    /// vanished or changed type during the scan.
    pub skipped: u64,
    /// Files and folders that could not be read.
    pub unreadable: u64,
    /// Findings in all.
    pub findings: u64,
    /// Wall-clock duration.
    pub elapsed_ms: u64,
}

/// Everything a scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Files with at least one finding, by path.
    pub results: Vec<FileResult>,
    /// Entries that could not be read.
    pub problems: Vec<ScanProblem>,
    /// Counters.
    pub summary: Summary,
}

/// Why a scan could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScanSetupError {
    /// A path given to scan does not exist or cannot be reached.
    #[error("cannot scan {}: {source}", path.display())]
    Root {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An `--exclude` glob is invalid.
    #[error("invalid exclude glob `{pattern}`: {reason}")]
    Exclude {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
}

struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
}

impl Excludes {
    fn new(patterns: &[String]) -> Result<Self, ScanSetupError> {
        let mut by_path = GlobSetBuilder::new();
        let mut by_name = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| ScanSetupError::Exclude {
                    pattern: p.clone(),
                    reason: e.kind().to_string(),
                })?;
            if p.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder, p: &str| {
            b.build().map_err(|e| ScanSetupError::Exclude {
                pattern: p.to_string(),
                reason: e.to_string(),
            })
        };
        Ok(Excludes {
            by_path: build(by_path, "")?,
            by_name: build(by_name, "")?,
        })
    }

    fn excluded(&self, path: &Path) -> bool {
        self.by_path.is_match(path) || path.file_name().is_some_and(|n| self.by_name.is_match(n))
    }
}

/// Resolves the roots to absolute, symlink-free paths, failing on the first that is missing.
pub fn resolve_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>, ScanSetupError> {
    roots
        .iter()
        .map(|r| {
            std::fs::canonicalize(r).map_err(|source| ScanSetupError::Root {
                path: r.clone(),
                source,
            })
        })
        .collect()
}

/// Runs a scan.
pub fn scan(bundle: &Bundle, opts: &ScanOptions) -> Result<ScanReport, ScanSetupError> {
    let started = Instant::now();
    let roots = resolve_roots(&opts.roots)?;
    let excludes = Excludes::new(&opts.exclude)?;
    let markings: Vec<String> = bundle
        .policy
        .markings()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let mut names = NameCache::default();
    let mut report = ScanReport::default();
    for root in &roots {
        let walk = WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !excludes.excluded(e.path()));
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    match e.io_error().map(std::io::Error::kind) {
                        Some(std::io::ErrorKind::NotFound) => report.summary.skipped += 1,
                        _ => {
                            report.summary.unreadable += 1;
                            let error = e
                                .io_error()
                                .map_or_else(|| e.to_string(), ToString::to_string);
                            tracing::debug!(path = %path.display(), %error, "cannot read");
                            report.problems.push(ScanProblem { path, error });
                        }
                    }
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            if !ft.is_file() {
                report.summary.skipped += 1;
                continue;
            }
            inspect_entry(
                bundle,
                opts,
                entry.path(),
                &markings,
                &mut names,
                &mut report,
            );
        }
    }
    report.summary.findings = report.results.iter().map(|r| r.findings.len() as u64).sum();
    report.summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

fn inspect_entry(
    bundle: &Bundle,
    opts: &ScanOptions,
    path: &Path,
    markings: &[String],
    names: &mut NameCache,
    report: &mut ScanReport,
) {
    let listed = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => {
            report.summary.skipped += 1;
            return;
        }
    };
    match facts::gather(path, &listed, &bundle.policy, markings, names) {
        Ok(facts) => {
            report.summary.files += 1;
            let findings = assess(bundle, &facts, opts.now, &opts.host).findings;
            if !findings.is_empty() {
                report.results.push(FileResult { facts, findings });
            }
        }
        Err(FactsError::Vanished | FactsError::NotRegular) => report.summary.skipped += 1,
        Err(FactsError::Unreadable(e)) => {
            report.summary.unreadable += 1;
            report.problems.push(ScanProblem {
                path: path.to_path_buf(),
                error: e.to_string(),
            });
        }
    }
}
