//! Coalescing bursts of change events into one report per path once the path has settled.
//!
//! Pure bookkeeping over instants the caller passes, so the rules are tested without clocks:
//! a path is reported when it has been quiet for a short while — longer while it is open for
//! writing (data written, no close yet) — or at the latest `max_delay` after its first event,
//! so a file written without pause is still reported.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long paths settle before they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalescing {
    /// Quiet time after a path's last event when no write is in progress (after a close, a
    /// rename, an attribute change, a deletion).
    pub quiet: Duration,
    /// Quiet time after data was written to a file that has not been closed since: a writer
    /// producing a file in chunks pauses between them.
    pub quiet_while_writing: Duration,
    /// Longest delay between a path's first event and its report, however busy it stays.
    pub max_delay: Duration,
}

impl Default for Coalescing {
    /// 30 ms quiet after a close keeps the path from change to report short; 200 ms while a file
    /// is open for writing rides out a writer's pauses; 1 s bounds a file that never settles.
    fn default() -> Self {
        Coalescing {
            quiet: Duration::from_millis(30),
            quiet_while_writing: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        }
    }
}

/// What an event says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touch {
    /// Something changed (created, renamed, deleted, attributes).
    Changed,
    /// Data was written; the file may still be open.
    Written,
    /// A writer closed the file.
    Closed,
    /// A directory appeared (created, moved in, or watched only now): everything below it
    /// may be new.
    Subtree,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    writing: bool,
    subtree: bool,
}

/// Paths and directories whose settle time has come.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) paths: BTreeSet<PathBuf>,
    pub(crate) subtrees: BTreeSet<PathBuf>,
}

/// The paths waiting to settle.
///
/// Deadlines sit in a heap with one entry per event (an entry goes stale when a later event
/// moves the path's deadline; stale entries are skipped when they come up), so a burst of many
/// thousands of paths costs `O(log n)` per event rather than a scan of all pending paths.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    timing: Coalescing,
    pending: HashMap<PathBuf, Pending>,
    deadlines: BinaryHeap<Reverse<(Instant, PathBuf)>>,
}

impl Coalescer {
    pub(crate) fn new(timing: Coalescing) -> Self {
        Coalescer {
            timing,
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
        }
    }

    /// How many paths are waiting.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Records an event for `path` at `now`.
    pub(crate) fn touch(&mut self, path: &Path, touch: Touch, now: Instant) {
        let p = self.pending.entry(path.to_path_buf()).or_insert(Pending {
            first: now,
            last: now,
            writing: false,
            subtree: false,
        });
        p.last = now;
        match touch {
            Touch::Changed => {}
            Touch::Written => p.writing = true,
            Touch::Closed => p.writing = false,
            Touch::Subtree => p.subtree = true,
        }
        let p = *p;
        let deadline = self.deadline(&p);
        self.deadlines.push(Reverse((deadline, path.to_path_buf())));
    }

    fn deadline(&self, p: &Pending) -> Instant {
        let quiet = if p.writing {
            self.timing.quiet_while_writing
        } else {
            self.timing.quiet
        };
        (p.last + quiet).min(p.first + self.timing.max_delay)
    }

    /// When the next path settles, if any is pending.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        // Drop stale entries from the top: an entry is live while its path is pending with
        // exactly that deadline (every event pushes the path's new deadline).
        while let Some(Reverse((at, path))) = self.deadlines.peek() {
            let live = self
                .pending
                .get(path)
                .is_some_and(|p| self.deadline(p) == *at);
            if live {
                return Some(*at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Whether nothing is pending.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes the paths settled at `now`.
    pub(crate) fn take_settled(&mut self, now: Instant) -> Settled {
        let mut settled = Settled::default();
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, path))) = self.deadlines.pop() else {
                break;
            };
            // Stale when the path settled already or a later event moved its deadline.
            let Some(p) = self.pending.get(&path).copied() else {
                continue;
            };
            if self.deadline(&p) > now {
                continue;
            }
            self.pending.remove(&path);
            if p.subtree {
                settled.subtrees.insert(path);
            } else {
                settled.paths.insert(path);
            }
        }
        settled
    }

    /// Takes everything pending, settled or not.
    pub(crate) fn take_all(&mut self) -> Settled {
        self.deadlines.clear();
        let mut settled = Settled::default();
        for (path, p) in self.pending.drain() {
            if p.subtree {
                settled.subtrees.insert(path);
            } else {
                settled.paths.insert(path);
            }
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_closed_file_settles_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Coalescing::default());
        c.touch(Path::new("/a"), Touch::Written, t0);
        c.touch(Path::new("/a"), Touch::Closed, t0 + ms(1));
        assert_eq!(c.next_deadline(), Some(t0 + ms(31)));
        assert!(c.take_settled(t0 + ms(30)).paths.is_empty());
        assert_eq!(c.take_settled(t0 + ms(31)).paths, set(&["/a"]));
        assert!(c.is_empty());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn a_file_written_in_chunks_is_reported_once_after_its_close() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Coalescing::default());
        // 50 chunks 10 ms apart: never quiet for 200 ms while open, so nothing settles early.
        for i in 0..50 {
            c.touch(Path::new("/big"), Touch::Written, t0 + ms(i * 10));
            assert!(
                c.take_settled(t0 + ms(i * 10 + 9)).paths.is_empty(),
                "chunk {i}"
            );
        }
        c.touch(Path::new("/big"), Touch::Closed, t0 + ms(495));
        assert!(c.take_settled(t0 + ms(524)).paths.is_empty());
        assert_eq!(c.take_settled(t0 + ms(525)).paths, set(&["/big"]));
    }

    #[test]
    fn a_file_that_never_settles_is_reported_after_the_max_delay() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Coalescing::default());
        for i in 0..=100 {
            c.touch(Path::new("/log"), Touch::Written, t0 + ms(i * 10));
        }
        assert_eq!(c.next_deadline(), Some(t0 + ms(1000)));
        assert_eq!(c.take_settled(t0 + ms(1000)).paths, set(&["/log"]));
    }

    #[test]
    fn a_close_brings_the_deadline_forward_and_stale_entries_are_skipped() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Coalescing::default());
        c.touch(Path::new("/a"), Touch::Written, t0);
        c.touch(Path::new("/a"), Touch::Closed, t0 + ms(10));
        c.touch(Path::new("/a"), Touch::Changed, t0 + ms(35));
        assert_eq!(c.take_settled(t0 + ms(40)), Settled::default());
        assert_eq!(c.len(), 1);
        assert_eq!(c.take_settled(t0 + ms(65)).paths, set(&["/a"]));
        // Entries left behind by earlier events find nothing to report.
        assert_eq!(c.take_settled(t0 + ms(500)), Settled::default());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn paths_settle_independently_and_subtrees_apart() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Coalescing::default());
        c.touch(Path::new("/a"), Touch::Changed, t0);
        c.touch(Path::new("/d"), Touch::Changed, t0);
        c.touch(Path::new("/d"), Touch::Subtree, t0 + ms(5));
        c.touch(Path::new("/w"), Touch::Written, t0);
        let s = c.take_settled(t0 + ms(40));
        assert_eq!(s.paths, set(&["/a"]));
        assert_eq!(s.subtrees, set(&["/d"]));
        let rest = c.take_all();
        assert_eq!(rest.paths, set(&["/w"]));
        assert!(c.is_empty());
    }
}
