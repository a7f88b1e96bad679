//! One-shot scan: walk folders, gather each regular file's facts, evaluate them, collect results.
//!
//! A scan never follows symbolic links (so it cannot leave the tree or loop), and no single file
//! stops it: unreadable entries and files vanishing mid-scan are counted and listed.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use infoledger_policies::{assess, Bundle, FileFacts, Finding};
use serde::Serialize;
use walkdir::WalkDir;

use crate::facts::{FactsError, Inspector, NameCache};

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
    /// Worker threads; `None` means one per CPU.
    pub threads: Option<usize>,
}

/// One file with findings.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The facts the findings were decided on.
    pub facts: FileFacts,
    /// The detected format, when the body was read.
    pub format: Option<String>,
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
    /// Files inspected only in part: their format was malformed or too large to judge, so their
    /// labels may be missing and their encryption verdict is `unknown`.
    pub incomplete: Vec<ScanProblem>,
    /// Counters.
    pub summary: Summary,
}

/// Why a scan could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScanSetupError {
    /// A path given to scan does not exist or cannot be reached.
    #[error("cannot scan {}", path.display())]
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

/// Compiled `--exclude` globs: a pattern with a `/` matches whole paths, one without matches a
/// file or folder name anywhere. The watcher leaves out the same paths.
#[derive(Debug)]
pub struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
}

impl Excludes {
    /// Compiles the patterns.
    pub fn new(patterns: &[String]) -> Result<Self, ScanSetupError> {
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

    /// Whether `path` is left out.
    pub fn excluded(&self, path: &Path) -> bool {
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

/// How many paths a worker takes at once: large enough to keep channel traffic low, small
/// enough to spread a small tree over the workers.
const BATCH: usize = 128;

/// What one worker collected.
#[derive(Default)]
struct Partial {
    results: Vec<FileResult>,
    problems: Vec<ScanProblem>,
    incomplete: Vec<ScanProblem>,
    files: u64,
    skipped: u64,
    unreadable: u64,
}

/// Runs a scan: this thread walks, `opts.threads` workers gather facts and evaluate.
pub fn scan(bundle: &Bundle, opts: &ScanOptions) -> Result<ScanReport, ScanSetupError> {
    let started = Instant::now();
    let roots = resolve_roots(&opts.roots)?;
    let excludes = Excludes::new(&opts.exclude)?;
    let inspector = Inspector::new(bundle);
    let workers = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let mut report = ScanReport::default();
    let (tx, rx) = mpsc::sync_channel::<Vec<PathBuf>>(workers * 4);
    let rx = Mutex::new(rx);
    let partials = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| work(&inspector, bundle, opts, &rx)))
            .collect();
        walk(&roots, &excludes, &tx, &mut report);
        drop(tx);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Vec<_>>()
    });
    for p in partials {
        report.results.extend(p.results);
        report.problems.extend(p.problems);
        report.incomplete.extend(p.incomplete);
        report.summary.files += p.files;
        report.summary.skipped += p.skipped;
        report.summary.unreadable += p.unreadable;
    }
    // Workers finish in any order; output is by path so runs compare.
    report
        .results
        .sort_by(|a, b| a.facts.path.cmp(&b.facts.path));
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    report.incomplete.sort_by(|a, b| a.path.cmp(&b.path));
    report.summary.findings = report.results.iter().map(|r| r.findings.len() as u64).sum();
    report.summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Walks the roots, counting what is not a regular file and sending regular files in batches.
fn walk(
    roots: &[PathBuf],
    excludes: &Excludes,
    tx: &mpsc::SyncSender<Vec<PathBuf>>,
    report: &mut ScanReport,
) {
    let mut batch = Vec::with_capacity(BATCH);
    for root in roots {
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
            batch.push(entry.into_path());
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
}

fn work(
    inspector: &Inspector<'_>,
    bundle: &Bundle,
    opts: &ScanOptions,
    rx: &Mutex<mpsc::Receiver<Vec<PathBuf>>>,
) -> Partial {
    let mut names = NameCache::default();
    let mut partial = Partial::default();
    loop {
        // A poisoned lock means another worker panicked; that panic is re-raised on join.
        let batch = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return partial,
        };
        let Ok(batch) = batch else {
            return partial;
        };
        for path in batch {
            inspect_entry(inspector, bundle, opts, path, &mut names, &mut partial);
        }
    }
}

fn inspect_entry(
    inspector: &Inspector<'_>,
    bundle: &Bundle,
    opts: &ScanOptions,
    path: PathBuf,
    names: &mut NameCache,
    partial: &mut Partial,
) {
    match inspector.gather(&path, names) {
        Ok(gathered) => {
            partial.files += 1;
            if !gathered.errors.is_empty() {
                partial.incomplete.push(ScanProblem {
                    path: path.clone(),
                    error: gathered.errors.join("; "),
                });
            }
            let findings = assess(bundle, &gathered.facts, opts.now, &opts.host).findings;
            if !findings.is_empty() {
                partial.results.push(FileResult {
                    facts: gathered.facts,
                    format: gathered.format,
                    findings,
                });
            }
        }
        Err(FactsError::Vanished | FactsError::NotRegular) => partial.skipped += 1,
        Err(FactsError::Unreadable(e)) => {
            partial.unreadable += 1;
            partial.problems.push(ScanProblem {
                path,
                error: e.to_string(),
            });
        }
    }
}
