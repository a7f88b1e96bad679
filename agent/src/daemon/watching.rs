//! The file-system watcher as the daemon's [`ChangeSource`]: [`crate::watch::Watcher`] behind
//! the run loop's seam.
//!
//! Each [`ChangeBatch`] is forwarded by a thread of its own that blocks on the watcher's channel
//! (so an idle agent does not wake up): changed paths and new subtrees go to the feed to be
//! looked at now; subtrees the watcher could not watch (`newly_unwatched`) are walked now too,
//! since nothing will report their changes until a rescan; a lost event queue asks for a rescan
//! of every root.
//!
//! The [`WatchFilter`] is fixed for a watcher's life, so [`FsWatcher`] starts a new watcher when
//! the roots, the excludes, the scope or (in the `interesting` scope) the bundle's locations
//! change, and keeps the running one otherwise. The new one is in place before the old one
//! stops, so no change in a folder both watch falls between them.

use std::path::PathBuf;

use crate::watch::{ChangeBatch, WatchFilter, WatchOptions, WatchScope, Watcher};

use super::{ChangeFeed, ChangeSource, FeedClosed, WatchRequest, WatchStatus};

/// What decides which folders a watcher watches; a watcher is replaced when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilterKey {
    roots: Vec<PathBuf>,
    exclude: Vec<String>,
    scope: WatchScope,
    /// The interesting locations (empty in the `complete` scope, where they do not matter).
    patterns: Vec<String>,
}

#[derive(Debug)]
struct Running {
    watcher: Watcher,
    key: FilterKey,
}

/// The inotify watcher as a change source.
#[derive(Debug, Default)]
pub struct FsWatcher {
    options: WatchOptions,
    running: Option<Running>,
    /// Not watching because the `interesting` scope has no bundle to take locations from yet.
    waiting_for_bundle: bool,
    /// Watchers started so far.
    started: u64,
}

impl FsWatcher {
    /// A watcher with the default settling times.
    pub fn new() -> FsWatcher {
        FsWatcher::default()
    }

    /// A watcher with these options (tests lower the watch cap to exercise the limit).
    pub fn with_options(options: WatchOptions) -> FsWatcher {
        FsWatcher {
            options,
            ..FsWatcher::default()
        }
    }
}

impl ChangeSource for FsWatcher {
    fn watch(&mut self, request: &WatchRequest<'_>, feed: ChangeFeed) -> Result<(), String> {
        let mut exclude = request.exclude.to_vec();
        // The state folder changes with every commit; watching it would only wake the agent.
        let state = globset::escape(&request.state_dir.to_string_lossy());
        exclude.push(format!("{state}/**"));
        exclude.push(state);
        let filter = match (request.bundle, request.scope) {
            (Some(bundle), scope) => WatchFilter::new(bundle, scope, &exclude),
            (None, WatchScope::Complete) => WatchFilter::complete(&exclude),
            (None, WatchScope::Interesting) => {
                // Which folders are interesting is the bundle's to say; nothing is evaluated
                // before it arrives anyway.
                self.running = None;
                if !self.waiting_for_bundle {
                    tracing::info!("watch scope `interesting`: watching starts with the bundle");
                }
                self.waiting_for_bundle = true;
                return Ok(());
            }
        }
        .map_err(|e| e.to_string())?;
        self.waiting_for_bundle = false;
        let key = FilterKey {
            roots: request.roots.to_vec(),
            exclude: request.exclude.to_vec(),
            scope: filter.scope(),
            patterns: match filter.scope() {
                WatchScope::Complete => Vec::new(),
                WatchScope::Interesting => filter.interesting_patterns().to_vec(),
            },
        };
        if self.running.as_ref().is_some_and(|r| r.key == key) {
            return Ok(());
        }
        if filter.scope() == WatchScope::Interesting && !filter.everywhere_rules().is_empty() {
            tracing::info!(
                rules = %filter.everywhere_rules().join("; "),
                "watch scope `interesting`: violations of these rules outside the ledger's and policy's locations are found by rescans, not at once"
            );
        }
        let (watcher, batches) =
            Watcher::start_with(&key.roots, filter, self.options).map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("infoledger-watch-feed".into())
            .spawn(move || {
                // Ends when the watcher stops (its channel closes) or the run loop is gone.
                for batch in batches {
                    if forward(&feed, batch).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the watcher's feed thread: {e}"))?;
        let status = watcher.status();
        tracing::info!(
            scope = ?key.scope,
            watches = status.watched_dirs,
            unwatched = status.unwatched.len(),
            "watching for changes"
        );
        // The old watcher (if any) stops only now, with the new one in place.
        self.running = Some(Running { watcher, key });
        self.started += 1;
        Ok(())
    }

    fn rescanned(&mut self) {
        if let Some(r) = &self.running {
            r.watcher.retry_unwatched();
        }
    }

    fn status(&self) -> Option<WatchStatus> {
        let r = self.running.as_ref()?;
        let s = r.watcher.status();
        Some(WatchStatus {
            watches: u64::try_from(s.watched_dirs).unwrap_or(u64::MAX),
            limit_reached: s.limit_reached,
        })
    }
}

/// Hands one batch to the run loop.
fn forward(feed: &ChangeFeed, batch: ChangeBatch) -> Result<(), FeedClosed> {
    let ChangeBatch {
        paths,
        subtrees,
        overflow,
        newly_unwatched,
    } = batch;
    // Folders are walked, so a subtree and an unwatched folder are both just paths here.
    let mut all: Vec<PathBuf> = paths.into_iter().chain(subtrees).collect();
    all.extend(newly_unwatched);
    if !all.is_empty() {
        feed.changed(all)?;
    }
    if overflow {
        feed.rescan()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::mpsc;

    use super::super::Input;
    use infoledger_policies::Bundle;

    fn bundle(locations: &[&Path]) -> Bundle {
        let policy = "[[label]]\nname = \"internal\"\n[[label]]\nname = \"confidential\"\n[rules]\nunregistered_from = \"confidential\"\n";
        let mut ledger = String::new();
        for (i, l) in locations.iter().enumerate() {
            ledger.push_str(&format!(
                "[[asset]]\nid = \"A{i}\"\nname = \"a\"\ndepartment = \"d\"\nadministrator = \"x@example.com\"\nlabel = \"confidential\"\nlocations = [\"{}/**\"]\n",
                l.display()
            ));
        }
        Bundle::from_texts(policy, Path::new("p.toml"), &ledger, Path::new("l.toml"))
            .unwrap()
            .0
    }

    #[test]
    fn a_watcher_restarts_only_when_what_it_watches_would_change() {
        // Under the build folder, not /tmp: nothing there may look interesting by accident.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/unit-tmp")
            .join(format!("watching-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["acme/a", "acme/b", "globex/c", "other/d", "state"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let root = std::fs::canonicalize(&root).unwrap();
        let (tx, _rx) = mpsc::channel();
        let feed = ChangeFeed { tx };
        let one = bundle(&[&root.join("acme")]);
        let two = bundle(&[&root.join("acme"), &root.join("globex")]);
        let roots = [root.clone()];
        let state = root.join("state");
        let request = |bundle, scope| WatchRequest {
            roots: &roots,
            exclude: &[],
            state_dir: &state,
            bundle,
            scope,
        };
        let (one, two) = (Some(&one), Some(&two));

        let mut w = FsWatcher::new();
        // Interesting scope: nothing until a bundle says what is interesting.
        w.watch(&request(None, WatchScope::Interesting), feed.clone())
            .unwrap();
        assert_eq!((w.started, w.status()), (0, None));
        w.watch(&request(one, WatchScope::Interesting), feed.clone())
            .unwrap();
        // The root, acme and its two folders.
        assert_eq!(w.status().unwrap().watches, 4);
        w.watch(&request(one, WatchScope::Interesting), feed.clone())
            .unwrap();
        assert_eq!(w.started, 1, "the same locations keep the watcher");
        w.watch(&request(two, WatchScope::Interesting), feed.clone())
            .unwrap();
        assert_eq!((w.started, w.status().unwrap().watches), (2, 6));

        // Complete scope: every folder but the state folder, whatever the bundle says.
        let mut w = FsWatcher::new();
        w.watch(&request(None, WatchScope::Complete), feed.clone())
            .unwrap();
        assert_eq!(w.status().unwrap().watches, 8);
        w.watch(&request(one, WatchScope::Complete), feed.clone())
            .unwrap();
        w.watch(&request(two, WatchScope::Complete), feed).unwrap();
        assert_eq!(w.started, 1);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn batches_become_paths_to_look_at_and_an_overflow_a_rescan() {
        let (tx, rx) = mpsc::channel();
        let feed = ChangeFeed { tx };
        let batch = ChangeBatch {
            paths: BTreeSet::from([PathBuf::from("/r/a.txt"), PathBuf::from("/r/b.txt")]),
            subtrees: BTreeSet::from([PathBuf::from("/r/new")]),
            overflow: true,
            newly_unwatched: vec![PathBuf::from("/r/deep")],
        };
        forward(&feed, batch).unwrap();
        match rx.try_recv().unwrap() {
            Input::Changed(paths) => assert_eq!(
                paths,
                ["/r/a.txt", "/r/b.txt", "/r/new", "/r/deep"].map(PathBuf::from)
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(rx.try_recv().unwrap(), Input::Rescan));
        assert!(rx.try_recv().is_err());
        // An empty batch sends nothing.
        forward(&feed, ChangeBatch::default()).unwrap();
        assert!(rx.try_recv().is_err());
    }
}
