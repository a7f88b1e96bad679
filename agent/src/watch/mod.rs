//! Seeing changes: a file-system watcher over the watch roots (inotify, through `notify`) that
//! reports settled, de-duplicated batches of paths whose state may have changed.
//!
//! Watching is an accelerator and scanning is the truth: a batch tells the daemon where to look
//! *now*, and the periodic rescan catches anything a watcher cannot see (subtrees left unwatched
//! at the kernel's limit, events lost to a queue overflow, directories outside the
//! [`WatchScope::Interesting`] scope).
//!
//! # How it works
//!
//! Every directory the [`WatchFilter`] accepts gets its own non-recursive inotify watch; the
//! watcher keeps the set itself so it can decide per directory, count watches, and know which
//! subtrees are not covered. Creation, writes and closes after writing, renames (both ends),
//! deletion, and attribute changes (mode, owner, extended attributes: all `IN_ATTRIB`) are
//! reported. Opening and reading a file — which the agent itself does when it inspects one —
//! are not.
//!
//! A directory that appears (created or moved in) gets watches down its whole tree at once, and
//! is reported as a *subtree*: files may have been written into it before its watch existed,
//! so the consumer walks it. A directory that disappears loses its watches.
//!
//! Events are coalesced per path (see [`Coalescing`]): a file written in many chunks is
//! reported once, shortly after its writer closes it, and a file written without pause at the
//! latest after `max_delay`.
//!
//! When the kernel refuses a watch (`ENOSPC`: `fs.inotify.max_user_watches` reached), the
//! directory's subtree is recorded as unwatched and the walk goes on; [`WatchStatus`] reports
//! it for health, the batch that follows names it in `newly_unwatched`, and
//! [`Watcher::retry_unwatched`] tries again (after a rescan, say).
//!
//! # What the daemon does with it
//!
//! 1. Start the watcher *before* the start-up scan, so nothing changed during the scan is lost.
//! 2. For each [`ChangeBatch`]: look at every path in `paths` now — a regular file is
//!    inspected, a path that no longer exists is forgotten together with everything recorded
//!    below it (it may have been a directory); walk every directory in `subtrees`; when
//!    [`ChangeBatch::rescan_needed`] is true, rescan (`overflow`: all roots; `newly_unwatched`:
//!    those subtrees).
//! 3. Cover [`WatchStatus::unwatched`] by the periodic rescans, call
//!    [`Watcher::retry_unwatched`] after each, and report [`Watcher::status`] in health.
//! 4. When the watch scope is `interesting` and a new bundle changes its locations (or the
//!    scope, roots or excludes change), start a new watcher and drop the old one: the filter
//!    is fixed for a watcher's life. In the `complete` scope a new bundle changes nothing here.
//!    With the `interesting` scope, log [`WatchFilter::everywhere_rules`] at start: those rules
//!    are left to rescans outside the interesting paths.

mod coalesce;
mod filter;

pub use coalesce::Coalescing;
pub use filter::{FilterError, WatchFilter, WatchScope};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use coalesce::{Coalescer, Touch};

/// Paths that may have changed, settled and de-duplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Entries whose state may have changed: look at each now. A regular file is to be
    /// inspected; a path that is gone is to be forgotten with everything recorded below it (it
    /// may have been a directory). Both ends of a rename are here.
    pub paths: BTreeSet<PathBuf>,
    /// Directories that appeared (created, moved in) or were watched only late: files in them
    /// may never have produced an event, so walk each. No path in `paths` lies in one.
    pub subtrees: BTreeSet<PathBuf>,
    /// Events were lost (the kernel's queue overflowed) or too many paths changed at once to
    /// list (more than [`WatchOptions::max_pending`]): rescan every root.
    pub overflow: bool,
    /// Directories that could not be watched since the previous batch (watch limit or error):
    /// their subtrees are left to rescans.
    pub newly_unwatched: Vec<PathBuf>,
}

impl ChangeBatch {
    /// Whether the batch asks for a rescan beyond its paths and subtrees.
    pub fn rescan_needed(&self) -> bool {
        self.overflow || !self.newly_unwatched.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.subtrees.is_empty() && !self.rescan_needed()
    }
}

/// The watcher's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WatchStatus {
    /// Directories with a watch.
    pub watched_dirs: usize,
    /// Whether some subtree is unwatched right now because the watch limit was reached.
    pub limit_reached: bool,
    /// How many times a watch was refused for the limit since the start.
    pub limit_hits: u64,
    /// Subtrees without watches (limit, permission, missing root), sorted: rescans cover them.
    pub unwatched: Vec<PathBuf>,
    /// How many times the kernel's event queue overflowed since the start.
    pub queue_overflows: u64,
}

/// Tuning of a watcher.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// How long paths settle before they are reported.
    pub coalescing: Coalescing,
    /// A cap on watches below the kernel's own limit; reaching it behaves exactly like the
    /// kernel refusing a watch (tests use it to exercise the limit path).
    pub max_watches: Option<usize>,
    /// Most paths waiting to settle; beyond it (an archive unpacked, a tree copied) the list is
    /// dropped and the batch asks for a rescan instead, which keeps memory bounded.
    pub max_pending: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            coalescing: Coalescing::default(),
            max_watches: None,
            max_pending: 65_536,
        }
    }
}

/// Why a watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inotify instance could not be created (`fs.inotify.max_user_instances`).
    #[error("cannot start watching for changes: {0}")]
    Init(#[source] notify::Error),
    /// The watcher thread could not be started.
    #[error("cannot start the watcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why a subtree has no watch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unwatched {
    /// The watch limit was reached.
    Limit,
    /// Anything else (permission denied, a root that does not exist).
    Error(String),
}

enum Msg {
    Event(notify::Result<notify::Event>),
    Retry,
    Stop,
}

/// A running watcher; dropping it stops watching and closes the batch channel.
#[derive(Debug)]
pub struct Watcher {
    control: Sender<Msg>,
    status: Arc<Mutex<WatchStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Event(_) => "Event",
            Msg::Retry => "Retry",
            Msg::Stop => "Stop",
        })
    }
}

impl Watcher {
    /// Starts watching `roots` with the default options. Watches are in place when this
    /// returns; batches arrive on the receiver.
    pub fn start(
        roots: &[PathBuf],
        filter: WatchFilter,
    ) -> Result<(Watcher, Receiver<ChangeBatch>), WatchError> {
        Watcher::start_with(roots, filter, WatchOptions::default())
    }

    /// Starts watching `roots` with `options`.
    ///
    /// Roots are canonicalised; one that cannot be resolved is reported in
    /// [`WatchStatus::unwatched`] rather than failing the start.
    pub fn start_with(
        roots: &[PathBuf],
        filter: WatchFilter,
        options: WatchOptions,
    ) -> Result<(Watcher, Receiver<ChangeBatch>), WatchError> {
        let (control, inbox) = mpsc::channel();
        let events = control.clone();
        let notify = RecommendedWatcher::new(
            move |event| {
                // The receiver is gone only when the watcher stops; nothing to do then.
                let _ = events.send(Msg::Event(event));
            },
            notify::Config::default(),
        )
        .map_err(WatchError::Init)?;
        let (out, batches) = mpsc::channel();
        let status = Arc::new(Mutex::new(WatchStatus::default()));
        let (roots, missing) = filter::canonical_roots(roots);
        let mut engine = Engine {
            notify,
            filter,
            roots,
            max_watches: options.max_watches,
            max_pending: options.max_pending.max(1),
            dirty: true,
            watched: BTreeSet::new(),
            unwatched: BTreeMap::new(),
            newly_unwatched: Vec::new(),
            coalescer: Coalescer::new(options.coalescing),
            overflow: false,
            limit_hits: 0,
            queue_overflows: 0,
            limit_logged: false,
            status: Arc::clone(&status),
            out,
        };
        for (root, error) in missing {
            tracing::warn!(root = %root.display(), %error, "cannot watch a root; rescans cover it");
            engine.unwatched.insert(root, Unwatched::Error(error));
        }
        for root in engine.roots.clone() {
            if engine.filter.watches_root(&root) {
                engine.watch_tree(&root);
            }
        }
        // What start-up could not watch is in the status; the first batch need not repeat it.
        engine.newly_unwatched.clear();
        engine.publish_status();
        let thread = std::thread::Builder::new()
            .name("infoledger-watch".to_string())
            .spawn(move || engine.run(&inbox))
            .map_err(WatchError::Thread)?;
        Ok((
            Watcher {
                control,
                status,
                thread: Some(thread),
            },
            batches,
        ))
    }

    /// The current watch count, limit state and unwatched subtrees.
    pub fn status(&self) -> WatchStatus {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Tries again to watch the subtrees left unwatched (the limit may have been raised, or
    /// watches freed). Those watched now are reported as subtrees in the next batch.
    pub fn retry_unwatched(&self) {
        let _ = self.control.send(Msg::Retry);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.control.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watcher thread's state.
struct Engine {
    notify: RecommendedWatcher,
    filter: WatchFilter,
    roots: Vec<PathBuf>,
    max_watches: Option<usize>,
    max_pending: usize,
    /// Whether the published status is out of date.
    dirty: bool,
    watched: BTreeSet<PathBuf>,
    unwatched: BTreeMap<PathBuf, Unwatched>,
    newly_unwatched: Vec<PathBuf>,
    coalescer: Coalescer,
    overflow: bool,
    limit_hits: u64,
    queue_overflows: u64,
    limit_logged: bool,
    status: Arc<Mutex<WatchStatus>>,
    out: Sender<ChangeBatch>,
}

/// What adding one watch came to.
enum Added {
    Watched,
    Refused(Unwatched),
    Vanished,
}

impl Engine {
    fn run(mut self, inbox: &Receiver<Msg>) {
        loop {
            // Block without a timeout when nothing is pending: an idle watcher never wakes up.
            let msg = match self.coalescer.next_deadline() {
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => {
                    inbox.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
            };
            match msg {
                Ok(Msg::Event(Ok(event))) => self.on_event(event),
                Ok(Msg::Event(Err(error))) => {
                    tracing::warn!(%error, paths = ?error.paths, "watch error");
                }
                Ok(Msg::Retry) => self.retry(),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if !self.flush() {
                return;
            }
        }
    }

    /// Sends what has settled; false when nobody listens any more.
    fn flush(&mut self) -> bool {
        let settled = if self.overflow {
            self.coalescer.take_all()
        } else {
            self.coalescer.take_settled(Instant::now())
        };
        let mut batch = ChangeBatch {
            paths: settled.paths,
            subtrees: settled.subtrees,
            overflow: std::mem::take(&mut self.overflow),
            newly_unwatched: std::mem::take(&mut self.newly_unwatched),
        };
        // A path inside a subtree is covered by walking the subtree.
        if !batch.subtrees.is_empty() {
            let subtrees = &batch.subtrees;
            batch
                .paths
                .retain(|p| !subtrees.iter().any(|s| p.starts_with(s)));
        }
        if self.dirty {
            self.publish_status();
        }
        if batch.is_empty() {
            return true;
        }
        self.out.send(batch).is_ok()
    }

    fn on_event(&mut self, event: notify::Event) {
        let now = Instant::now();
        if event.need_rescan() {
            self.dirty = true;
            self.queue_overflows += 1;
            self.overflow = true;
            tracing::warn!("the kernel's change queue overflowed; rescanning every root");
            return;
        }
        let touch = match event.kind {
            // Reads (the agent's own inspection among them) change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Touch::Closed,
            EventKind::Access(_) => return,
            EventKind::Modify(ModifyKind::Data(_)) => Touch::Written,
            _ => Touch::Changed,
        };
        for path in &event.paths {
            if self.filter.excluded(path) {
                continue;
            }
            match event.kind {
                EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any)) => {
                    self.forget(path);
                }
                _ => {}
            }
            let appeared = matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To))
            );
            self.coalescer.touch(path, touch, now);
            if appeared && is_real_dir(path) {
                self.appeared(path, now);
            }
        }
        if self.coalescer.len() > self.max_pending {
            tracing::info!(
                paths = self.coalescer.len(),
                "too many changes at once to list; rescanning every root"
            );
            self.coalescer.take_all();
            self.overflow = true;
        }
    }

    /// A directory appeared: watch its tree (when the filter wants it) and have it walked.
    fn appeared(&mut self, dir: &Path, now: Instant) {
        if self.filter.watches_dir(dir) {
            self.watch_tree(dir);
        }
        self.coalescer.touch(dir, Touch::Subtree, now);
    }

    /// A path disappeared or moved away: drop the watches and unwatched records below it.
    fn forget(&mut self, path: &Path) {
        let below: Vec<PathBuf> = self
            .watched
            .range(path.to_path_buf()..)
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in below {
            // notify drops the watches of a deleted or moved directory itself; this is for the
            // cases it does not (a watched root moved away), and harmless otherwise.
            let _ = self.notify.unwatch(&p);
            self.watched.remove(&p);
            self.dirty = true;
        }
        let unwatched_below: Vec<PathBuf> = self
            .unwatched
            .range(path.to_path_buf()..)
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in unwatched_below {
            self.unwatched.remove(&p);
            self.dirty = true;
        }
        for r in self.roots.iter().filter(|r| r.starts_with(path)) {
            tracing::warn!(root = %r.display(), "a watched root was removed or moved away");
            self.unwatched.insert(
                r.clone(),
                Unwatched::Error("removed or moved away".to_string()),
            );
            self.dirty = true;
        }
    }

    /// Watches `top` and every directory below it that the filter accepts, recording what could
    /// not be watched; returns nothing, the state says it all.
    fn watch_tree(&mut self, top: &Path) {
        // Each directory gets its watch *before* it is listed: a subdirectory created in
        // between then either shows up in the listing or produces an event, never neither.
        // (walkdir lists a directory before yielding it, so it cannot be used here.)
        let mut stack = vec![top.to_path_buf()];
        let mut refused = Vec::new();
        let mut added = Vec::new();
        while let Some(dir) = stack.pop() {
            if !self.watched.contains(&dir) {
                match add_watch(
                    &mut self.notify,
                    &dir,
                    self.watched.len() + added.len(),
                    self.max_watches,
                ) {
                    Added::Watched => added.push(dir.clone()),
                    Added::Refused(why) => {
                        refused.push((dir, why));
                        continue;
                    }
                    Added::Vanished => continue,
                }
            }
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    // Watched, but its subdirectories cannot be found: left to rescans.
                    refused.push((dir, Unwatched::Error(e.to_string())));
                    continue;
                }
            };
            let mut subdirs: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                // `file_type` does not follow symbolic links.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .filter(|p| self.filter.watches_dir(p))
                .collect();
            // Depth first in name order, so what a limit leaves out is predictable.
            subdirs.sort_unstable_by(|a, b| b.cmp(a));
            stack.extend(subdirs);
        }
        self.dirty |= !added.is_empty() || !refused.is_empty();
        self.watched.extend(added);
        for (path, why) in refused {
            if why == Unwatched::Limit {
                self.limit_hits += 1;
                if !self.limit_logged {
                    self.limit_logged = true;
                    tracing::warn!(
                        dir = %path.display(),
                        watched = self.watched.len(),
                        max_user_watches = %read_max_user_watches(),
                        "watch limit reached: the rest is covered by rescans; raise fs.inotify.max_user_watches to watch it"
                    );
                }
            } else if let Unwatched::Error(e) = &why {
                tracing::warn!(dir = %path.display(), error = %e, "cannot watch a directory; rescans cover it");
            }
            self.newly_unwatched.push(path.clone());
            self.unwatched.insert(path, why);
        }
    }

    fn retry(&mut self) {
        let now = Instant::now();
        let pending: Vec<PathBuf> = self.unwatched.keys().cloned().collect();
        for path in pending {
            if !is_real_dir(&path) {
                continue;
            }
            self.unwatched.remove(&path);
            let before = self.watched.len();
            let root = self.roots.contains(&path);
            if root && !self.filter.watches_root(&path) || !root && !self.filter.watches_dir(&path)
            {
                continue;
            }
            self.watch_tree(&path);
            if self.watched.len() > before {
                self.coalescer.touch(&path, Touch::Subtree, now);
            }
        }
        // Retrying what stays refused is not news.
        self.newly_unwatched.clear();
        self.dirty = true;
    }

    fn publish_status(&mut self) {
        self.dirty = false;
        let status = WatchStatus {
            watched_dirs: self.watched.len(),
            limit_reached: self.unwatched.values().any(|u| *u == Unwatched::Limit),
            limit_hits: self.limit_hits,
            unwatched: self.unwatched.keys().cloned().collect(),
            queue_overflows: self.queue_overflows,
        };
        match self.status.lock() {
            Ok(mut s) => *s = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
    }
}

/// Adds one non-recursive watch, honouring the test cap as if it were the kernel's limit.
fn add_watch(
    notify: &mut RecommendedWatcher,
    dir: &Path,
    count: usize,
    cap: Option<usize>,
) -> Added {
    if cap.is_some_and(|max| count >= max) {
        return Added::Refused(Unwatched::Limit);
    }
    match notify.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => Added::Watched,
        Err(e) => match e.kind {
            notify::ErrorKind::MaxFilesWatch => Added::Refused(Unwatched::Limit),
            notify::ErrorKind::PathNotFound => Added::Vanished,
            notify::ErrorKind::Io(ref io) if io.kind() == std::io::ErrorKind::NotFound => {
                Added::Vanished
            }
            _ => Added::Refused(Unwatched::Error(e.to_string())),
        },
    }
}

/// A directory, not a symbolic link to one.
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn read_max_user_watches() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
