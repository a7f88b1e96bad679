//! Bringing the state in line with the file system: walking trees (start-up scan, periodic
//! rescans, folders a watcher reports), looking at single changed paths, and evaluating cached
//! facts again (a new bundle, a new day) without reading files.
//!
//! A file whose stamp `(dev, inode, size, mtime, ctime)` is unchanged since its inspection is not
//! inspected again; changed and new files are inspected by a few worker threads in chunks, each
//! chunk recorded in one transaction. A file that is no longer there (or no longer under a watch
//! root, or newly excluded) is forgotten, which resolves its violations. Files under a folder
//! that could not be read are left as they were: unreadable is not gone.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use infoledger_policies::{assess, Bundle, FileFacts};
use walkdir::WalkDir;

use super::state::{BatchOutcome, Change, Evaluated, Stamp, StateDb, StateError, ViolationRecord};
use crate::facts::{FactsError, Gathered, Inspector, NameCache, ReadDepth};
use crate::scan::Excludes;

/// Files inspected and recorded per transaction.
const CHUNK: usize = 256;

/// What is watched: roots, exclusions, and the state folder (never watched).
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) roots: Vec<PathBuf>,
    /// Configured roots that do not exist right now.
    unavailable: Vec<PathBuf>,
    excludes: Excludes,
    pub(crate) state_dir: PathBuf,
}

impl Scope {
    pub(crate) fn new(
        roots: &[PathBuf],
        unavailable: &[PathBuf],
        exclude: &[String],
        state_dir: &Path,
    ) -> Result<Scope, crate::scan::ScanSetupError> {
        Ok(Scope {
            roots: roots.to_vec(),
            unavailable: unavailable.to_vec(),
            excludes: Excludes::new(exclude)?,
            state_dir: std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf()),
        })
    }

    /// The root a path lies under, if any.
    fn root_of(&self, path: &Path) -> Option<&Path> {
        self.roots
            .iter()
            .filter(|r| path.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
            .map(PathBuf::as_path)
    }

    /// Whether a path is watched: under a root, outside the state folder, and neither it nor a
    /// folder between it and its root excluded.
    pub(crate) fn covers(&self, path: &Path) -> bool {
        let Some(root) = self.root_of(path) else {
            return false;
        };
        if path.starts_with(&self.state_dir) {
            return false;
        }
        path.ancestors()
            .take_while(|a| *a != root)
            .all(|a| !self.excludes.excluded(a))
    }

    fn walk_filter(&self, path: &Path, depth: usize) -> bool {
        depth == 0 || (!self.excludes.excluded(path) && !path.starts_with(&self.state_dir))
    }
}

/// Counters of one sync, for logs and health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SyncStats {
    /// Regular files seen.
    pub files: u64,
    /// Files inspected (new or changed).
    pub inspected: u64,
    /// Files evaluated again from cached facts.
    pub reevaluated: u64,
    /// Files forgotten (gone).
    pub forgotten: u64,
    /// Entries that could not be read.
    pub unreadable: u64,
    /// Outbox effects.
    pub queued: u64,
    /// Events merged away by the overflow policy.
    pub merged: u64,
    /// Whether some violation change had to be deferred.
    pub deferred: bool,
}

impl SyncStats {
    fn add(&mut self, o: BatchOutcome) {
        self.queued += o.queued;
        self.merged += o.merged;
        self.deferred |= o.deferred;
    }
}

/// Everything a sync needs besides the state.
pub(crate) struct Syncer<'a> {
    pub(crate) bundle: &'a Bundle,
    pub(crate) host: &'a str,
    /// Rules are judged at this time.
    pub(crate) now: DateTime<Utc>,
    pub(crate) scope: &'a Scope,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) workers: usize,
    /// Receives every change of findings (the developer log).
    pub(crate) on_change: &'a mut dyn FnMut(&Change),
}

/// The asset and violations evaluation finds for a file.
pub(crate) fn evaluate(
    bundle: &Bundle,
    facts: &FileFacts,
    now: DateTime<Utc>,
    host: &str,
) -> Evaluated {
    let assessment = assess(bundle, facts, now, host);
    let asset = assessment.asset.map(|a| a.id.clone());
    let violations = assessment
        .findings
        .into_iter()
        .map(|f| {
            let department = f
                .asset
                .as_deref()
                .and_then(|id| bundle.ledger.get(id))
                .map(|a| a.department.clone());
            ViolationRecord {
                kind: f.kind,
                severity: f.severity,
                label: f.label,
                asset: f.asset,
                department,
                rule: f.rule,
                message: f.message,
                fix: f.fix,
                owner: facts.owner.id,
            }
        })
        .collect();
    Evaluated { asset, violations }
}

fn path_hash(p: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

impl Syncer<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Walks every root, inspects new and changed files, and forgets files that are gone or no
    /// longer covered.
    pub(crate) fn full_scan(&mut self, db: &mut StateDb) -> Result<SyncStats, StateError> {
        let mut stats = SyncStats::default();
        let mut seen: HashSet<u64> = HashSet::new();
        // Folders whose content is unknown this time: their cached files stay.
        let mut unknown: Vec<PathBuf> = Vec::new();
        let roots = self.scope.roots.clone();
        for root in &roots {
            if !self.walk(db, root, &mut seen, &mut unknown, &mut stats)? {
                return Ok(stats);
            }
        }
        let mut gone = Vec::new();
        unknown.extend(self.scope.unavailable.iter().cloned());
        db.for_each_path(|p| {
            let kept = unknown.iter().any(|u| p.starts_with(u));
            if !kept && (!self.scope.covers(&p) || !seen.contains(&path_hash(&p))) {
                gone.push(p);
            }
        })?;
        self.forget(db, &gone, &mut stats)?;
        Ok(stats)
    }

    /// Brings the paths a watcher reported up to date: files are looked at, folders walked,
    /// vanished paths (and anything cached under them) forgotten.
    pub(crate) fn paths(
        &mut self,
        db: &mut StateDb,
        paths: Vec<PathBuf>,
    ) -> Result<SyncStats, StateError> {
        let mut stats = SyncStats::default();
        let mut files: Vec<(PathBuf, Stamp)> = Vec::new();
        let mut gone: Vec<PathBuf> = Vec::new();
        let mut unique: Vec<PathBuf> = paths;
        unique.sort();
        unique.dedup();
        for path in unique {
            if !self.scope.covers(&path) {
                continue;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    let mut seen = HashSet::new();
                    let mut unknown = Vec::new();
                    if !self.walk(db, &path, &mut seen, &mut unknown, &mut stats)? {
                        return Ok(stats);
                    }
                    for p in db.paths_under(&path)? {
                        if !seen.contains(&path_hash(&p))
                            && !unknown.iter().any(|u| p.starts_with(u))
                        {
                            gone.push(p);
                        }
                    }
                    // A folder where a file used to be.
                    gone.push(path);
                }
                Ok(meta) if meta.is_file() => {
                    stats.files += 1;
                    let stamp = Stamp::of(&meta);
                    if db.cached_stamp(&path)?.map(|(s, _)| s) != Some(stamp) {
                        files.push((path, stamp));
                    }
                }
                Ok(_) => gone.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    for p in db.paths_under(&path)? {
                        gone.push(p);
                    }
                    gone.push(path);
                }
                Err(e) => {
                    stats.unreadable += 1;
                    tracing::debug!(path = %path.display(), error = %e, "cannot look at a changed path");
                }
            }
        }
        self.inspect_and_record(db, files, &mut stats)?;
        self.forget(db, &gone, &mut stats)?;
        Ok(stats)
    }

    /// Evaluates every cached file again. With `inspector`, files whose cached facts do not
    /// answer what that inspector's bundle asks (and every read file when `markings_changed`)
    /// are inspected again instead.
    pub(crate) fn reevaluate(
        &mut self,
        db: &mut StateDb,
        inspector: Option<(&Inspector<'_>, bool)>,
    ) -> Result<SyncStats, StateError> {
        let mut stats = SyncStats::default();
        let mut after: Option<PathBuf> = None;
        let mut reinspect: Vec<PathBuf> = Vec::new();
        loop {
            if self.stopped() {
                return Ok(stats);
            }
            let page = db.files_after(after.as_deref(), CHUNK)?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.facts.path.clone());
            let mut batch = db.batch(Utc::now())?;
            for file in page {
                let sufficient = match inspector {
                    None => true,
                    Some((inspector, markings_changed)) => {
                        !(markings_changed && file.depth != ReadDepth::Unread)
                            && inspector.cached_facts_suffice(&file.facts, file.depth)
                    }
                };
                if !sufficient {
                    reinspect.push(file.facts.path);
                    continue;
                }
                stats.reevaluated += 1;
                let evaluated = evaluate(self.bundle, &file.facts, self.now, self.host);
                for change in batch.reevaluated(&file.facts.path, &evaluated)? {
                    (self.on_change)(&change);
                }
            }
            stats.add(batch.commit()?);
        }
        if !reinspect.is_empty() {
            tracing::info!(
                files = reinspect.len(),
                "the new bundle needs more of some files than was read: inspecting them again"
            );
            let sub = self.paths_forced(db, reinspect)?;
            stats.inspected += sub.inspected;
            stats.forgotten += sub.forgotten;
            stats.queued += sub.queued;
            stats.merged += sub.merged;
            stats.deferred |= sub.deferred;
        }
        Ok(stats)
    }

    /// Inspects these files whatever their stamps say.
    fn paths_forced(
        &mut self,
        db: &mut StateDb,
        paths: Vec<PathBuf>,
    ) -> Result<SyncStats, StateError> {
        let mut stats = SyncStats::default();
        let mut files = Vec::new();
        let mut gone = Vec::new();
        for path in paths {
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => files.push((path, Stamp::of(&meta))),
                _ => gone.push(path),
            }
        }
        self.inspect_and_record(db, files, &mut stats)?;
        self.forget(db, &gone, &mut stats)?;
        Ok(stats)
    }

    /// Walks one tree; returns false when stopped.
    fn walk(
        &mut self,
        db: &mut StateDb,
        top: &Path,
        seen: &mut HashSet<u64>,
        unknown: &mut Vec<PathBuf>,
        stats: &mut SyncStats,
    ) -> Result<bool, StateError> {
        let mut pending: Vec<(PathBuf, Stamp)> = Vec::new();
        let scope = self.scope;
        let walk = WalkDir::new(top)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| scope.walk_filter(e.path(), e.depth()));
        for entry in walk {
            if self.stopped() {
                return Ok(false);
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e
                        .path()
                        .map_or_else(|| top.to_path_buf(), Path::to_path_buf);
                    if e.io_error().map(std::io::Error::kind) != Some(std::io::ErrorKind::NotFound)
                    {
                        stats.unreadable += 1;
                        tracing::debug!(path = %path.display(), error = %e, "cannot read");
                        unknown.push(path);
                    }
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            stats.files += 1;
            let path = entry.into_path();
            seen.insert(path_hash(&path));
            let stamp = Stamp::of(&meta);
            if db.cached_stamp(&path)?.map(|(s, _)| s) == Some(stamp) {
                continue;
            }
            pending.push((path, stamp));
            if pending.len() >= CHUNK {
                self.inspect_and_record(db, std::mem::take(&mut pending), stats)?;
            }
        }
        self.inspect_and_record(db, pending, stats)?;
        Ok(true)
    }

    /// Inspects files (in parallel when there are several) and records them in one transaction.
    fn inspect_and_record(
        &mut self,
        db: &mut StateDb,
        files: Vec<(PathBuf, Stamp)>,
        stats: &mut SyncStats,
    ) -> Result<(), StateError> {
        if files.is_empty() {
            return Ok(());
        }
        let inspector = Inspector::new(self.bundle);
        let results = inspect_parallel(&inspector, files, self.workers);
        let mut batch = db.batch(Utc::now())?;
        let mut vanished = Vec::new();
        for (path, stamp, result) in results {
            match result {
                Ok(gathered) => {
                    stats.inspected += 1;
                    let evaluated = evaluate(self.bundle, &gathered.facts, self.now, self.host);
                    for change in
                        batch.record(stamp, gathered.depth, &gathered.facts, &evaluated)?
                    {
                        (self.on_change)(&change);
                    }
                }
                Err(FactsError::Vanished | FactsError::NotRegular) => vanished.push(path),
                Err(FactsError::Unreadable(e)) => {
                    // Keep what was known; the next rescan tries again.
                    stats.unreadable += 1;
                    tracing::debug!(path = %path.display(), error = %e, "cannot inspect");
                }
            }
        }
        for path in vanished {
            stats.forgotten += 1;
            for change in batch.forget(&path)? {
                (self.on_change)(&change);
            }
        }
        stats.add(batch.commit()?);
        Ok(())
    }

    fn forget(
        &mut self,
        db: &mut StateDb,
        paths: &[PathBuf],
        stats: &mut SyncStats,
    ) -> Result<(), StateError> {
        for chunk in paths.chunks(CHUNK) {
            let mut batch = db.batch(Utc::now())?;
            for path in chunk {
                let changes = batch.forget(path)?;
                stats.forgotten += 1;
                for change in &changes {
                    (self.on_change)(change);
                }
            }
            stats.add(batch.commit()?);
        }
        Ok(())
    }
}

type Inspected = (PathBuf, Stamp, Result<Gathered, FactsError>);

/// Gathers facts of `files` on up to `workers` threads; results in input order.
fn inspect_parallel(
    inspector: &Inspector<'_>,
    files: Vec<(PathBuf, Stamp)>,
    workers: usize,
) -> Vec<Inspected> {
    let workers = workers.clamp(1, files.len().max(1));
    if workers == 1 {
        let mut names = NameCache::default();
        return files
            .into_iter()
            .map(|(p, s)| {
                let r = inspector.gather(&p, &mut names);
                (p, s, r)
            })
            .collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Gathered, FactsError>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut names = NameCache::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, _)) = files.get(i) else {
                        return;
                    };
                    let result = inspector.gather(path, &mut names);
                    if let Some(slot) = slots.get(i) {
                        *slot
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                    }
                }
            });
        }
    });
    files
        .into_iter()
        .zip(slots)
        .map(|((p, s), slot)| {
            let result = slot
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or(Err(FactsError::Vanished));
            (p, s, result)
        })
        .collect()
}

/// How long something took, in whole milliseconds.
pub(crate) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoledger_policies::Kind;

    fn dir(name: &str) -> PathBuf {
        // Under the build folder, not /tmp: the example policy forbids /tmp.
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/unit-tmp")
            .join(format!("sync-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::canonicalize(&d).unwrap()
    }

    struct Run {
        changes: Vec<Change>,
        stats: SyncStats,
    }

    fn scan(db: &mut StateDb, bundle: &Bundle, scope: &Scope, paths: Option<Vec<PathBuf>>) -> Run {
        let stop = AtomicBool::new(false);
        let mut changes = Vec::new();
        let mut on_change = |c: &Change| changes.push(c.clone());
        let mut syncer = Syncer {
            bundle,
            host: "ws-1",
            now: Utc::now(),
            scope,
            stop: &stop,
            workers: 2,
            on_change: &mut on_change,
        };
        let stats = match paths {
            None => syncer.full_scan(db).unwrap(),
            Some(p) => syncer.paths(db, p).unwrap(),
        };
        Run { changes, stats }
    }

    #[test]
    fn rescans_inspect_only_changed_files_and_forget_vanished_ones() {
        let root = dir("rescan");
        let state = dir("rescan-state");
        let bundle = Bundle::example().unwrap();
        let mut db = StateDb::open(&state, 1000, false).unwrap();
        std::fs::create_dir_all(root.join("Downloads")).unwrap();
        std::fs::create_dir_all(root.join("cache")).unwrap();
        let secret = root.join("Downloads/minutes.txt");
        std::fs::write(&secret, "INTERNAL USE ONLY\nminutes\n").unwrap();
        std::fs::write(root.join("Downloads/shopping.txt"), "milk\n").unwrap();
        std::fs::write(root.join("cache/ignored.txt"), "INTERNAL USE ONLY\n").unwrap();
        let scope =
            Scope::new(std::slice::from_ref(&root), &[], &["cache".into()], &state).unwrap();

        let first = scan(&mut db, &bundle, &scope, None);
        assert_eq!((first.stats.files, first.stats.inspected), (2, 2));
        assert!(
            matches!(
                first.changes.as_slice(),
                [Change::Opened { path, violation }] if *path == secret && violation.kind == Kind::Misplaced
            ),
            "{:?}",
            first.changes
        );

        let again = scan(&mut db, &bundle, &scope, None);
        assert_eq!((again.stats.files, again.stats.inspected), (2, 0));
        assert!(again.changes.is_empty());

        // A changed file is inspected again; its marking is gone, so is the violation.
        std::fs::write(&secret, "minutes, declassified\n").unwrap();
        let changed = scan(&mut db, &bundle, &scope, None);
        assert_eq!(changed.stats.inspected, 1);
        assert!(matches!(
            changed.changes.as_slice(),
            [Change::Resolved { .. }]
        ));

        // A deleted file is forgotten; a watcher's report of it does the same at once.
        std::fs::write(&secret, "INTERNAL USE ONLY\n").unwrap();
        assert_eq!(scan(&mut db, &bundle, &scope, None).changes.len(), 1);
        std::fs::remove_file(&secret).unwrap();
        let gone = scan(
            &mut db,
            &bundle,
            &scope,
            Some(vec![secret.clone(), root.join("cache/ignored.txt")]),
        );
        assert!(
            matches!(gone.changes.as_slice(), [Change::Resolved { path, .. }] if *path == secret)
        );
        assert_eq!(db.file_count().unwrap(), 1);

        // A removed folder reported by a watcher takes its files with it.
        std::fs::write(&secret, "INTERNAL USE ONLY\n").unwrap();
        scan(&mut db, &bundle, &scope, Some(vec![root.join("Downloads")]));
        assert_eq!(db.open_violations().unwrap().len(), 1);
        std::fs::remove_dir_all(root.join("Downloads")).unwrap();
        scan(&mut db, &bundle, &scope, Some(vec![root.join("Downloads")]));
        assert_eq!(db.file_count().unwrap(), 0);
        assert!(db.open_violations().unwrap().is_empty());
    }

    #[test]
    fn files_of_an_unavailable_root_are_kept_and_others_outside_the_roots_forgotten() {
        let root = dir("roots");
        let other = dir("roots-other");
        let state = dir("roots-state");
        let bundle = Bundle::example().unwrap();
        let mut db = StateDb::open(&state, 1000, false).unwrap();
        std::fs::create_dir_all(root.join("Downloads")).unwrap();
        std::fs::write(root.join("Downloads/a.txt"), "INTERNAL USE ONLY\n").unwrap();
        std::fs::create_dir_all(other.join("Downloads")).unwrap();
        std::fs::write(other.join("Downloads/b.txt"), "INTERNAL USE ONLY\n").unwrap();
        let both = Scope::new(&[root.clone(), other.clone()], &[], &[], &state).unwrap();
        scan(&mut db, &bundle, &both, None);
        assert_eq!(db.open_violations().unwrap().len(), 2);
        // `root` is configured but not there (unmounted): its file stays; `other` is no
        // longer configured: its file is forgotten.
        let scope = Scope::new(&[], std::slice::from_ref(&root), &[], &state).unwrap();
        scan(&mut db, &bundle, &scope, None);
        let left: Vec<PathBuf> = db
            .open_violations()
            .unwrap()
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(left, [root.join("Downloads/a.txt")]);
        assert!(!scope.covers(&other.join("Downloads/b.txt")));
    }
}
