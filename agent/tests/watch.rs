//! The watcher on real inotify in temporary trees: what each kind of change reports, coalescing,
//! new directories, the watch limit, and the interesting-path filter.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use infoledger_agent::watch::{
    ChangeBatch, Coalescing, WatchFilter, WatchOptions, WatchScope, Watcher,
};
use infoledger_policies::Bundle;
use infoledger_tests::{chmod, set_xattr, Tree, LABEL_XATTR};

/// Generous: the tests wait for events, they never measure how fast they come.
const PATIENCE: Duration = Duration::from_secs(20);

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn complete() -> WatchFilter {
    WatchFilter::complete(&[]).unwrap()
}

/// Everything reported until every path of `want` has shown up in `paths` or `subtrees`.
#[derive(Debug, Default)]
struct Seen {
    paths: BTreeSet<PathBuf>,
    subtrees: BTreeSet<PathBuf>,
    batches: Vec<ChangeBatch>,
}

impl Seen {
    fn all(&self) -> BTreeSet<PathBuf> {
        self.paths.union(&self.subtrees).cloned().collect()
    }
}

fn wait_for(rx: &Receiver<ChangeBatch>, want: &[&Path]) -> Seen {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Seen::default();
    while !want.iter().all(|w| seen.all().contains(*w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{e}: waited for {want:?}, saw {:?}", seen.batches));
        seen.paths.extend(batch.paths.iter().cloned());
        seen.subtrees.extend(batch.subtrees.iter().cloned());
        seen.batches.push(batch);
    }
    seen
}

fn set(paths: &[&Path]) -> BTreeSet<PathBuf> {
    paths.iter().map(|p| p.to_path_buf()).collect()
}

#[test]
fn each_kind_of_change_reports_the_paths_it_touches() {
    let tree = Tree::new(&base(), "watch-kinds").unwrap();
    fs::create_dir(tree.path("sub")).unwrap();
    let (watcher, rx) = Watcher::start(&[tree.root().to_path_buf()], complete()).unwrap();
    assert_eq!(watcher.status().watched_dirs, 2);

    let a = tree.path("a.txt");
    fs::write(&a, b"created").unwrap();
    assert_eq!(wait_for(&rx, &[&a]).all(), set(&[&a]), "create");

    fs::OpenOptions::new()
        .append(true)
        .open(&a)
        .unwrap()
        .write_all(b" and modified")
        .unwrap();
    assert_eq!(wait_for(&rx, &[&a]).all(), set(&[&a]), "modify");

    let b = tree.path("b.txt");
    fs::rename(&a, &b).unwrap();
    assert_eq!(wait_for(&rx, &[&a, &b]).all(), set(&[&a, &b]), "rename");

    let moved = tree.path("sub/b.txt");
    fs::rename(&b, &moved).unwrap();
    assert_eq!(
        wait_for(&rx, &[&b, &moved]).all(),
        set(&[&b, &moved]),
        "move into another directory"
    );

    chmod(&moved, 0o644).unwrap();
    assert_eq!(wait_for(&rx, &[&moved]).all(), set(&[&moved]), "chmod");

    set_xattr(&moved, LABEL_XATTR, "confidential").unwrap();
    assert_eq!(wait_for(&rx, &[&moved]).all(), set(&[&moved]), "xattr");

    fs::remove_file(&moved).unwrap();
    assert_eq!(wait_for(&rx, &[&moved]).all(), set(&[&moved]), "delete");

    // Reading a file, as inspection does, is not a change: the next report is the sentinel's.
    let sentinel = tree.path("sentinel");
    fs::write(tree.path("read-me"), b"x").unwrap();
    wait_for(&rx, &[&tree.path("read-me")]);
    let _ = fs::read(tree.path("read-me")).unwrap();
    fs::write(&sentinel, b"x").unwrap();
    assert_eq!(wait_for(&rx, &[&sentinel]).all(), set(&[&sentinel]), "read");
}

#[test]
fn a_file_written_in_fifty_chunks_is_reported_once() {
    let tree = Tree::new(&base(), "watch-chunks").unwrap();
    // Long pauses allowed while the file is open, so a busy test machine cannot split the
    // report; the default timing is covered by the coalescer's unit tests.
    let options = WatchOptions {
        coalescing: Coalescing {
            quiet: Duration::from_millis(30),
            quiet_while_writing: Duration::from_secs(5),
            max_delay: Duration::from_secs(30),
        },
        ..WatchOptions::default()
    };
    let (_watcher, rx) =
        Watcher::start_with(&[tree.root().to_path_buf()], complete(), options).unwrap();
    let big = tree.path("big.csv");
    let mut file = fs::File::create(&big).unwrap();
    for i in 0..50 {
        file.write_all(format!("row {i}\n").as_bytes()).unwrap();
        file.flush().unwrap();
    }
    drop(file);
    let sentinel = tree.path("after");
    let first = wait_for(&rx, &[&big]);
    assert_eq!(first.batches.len(), 1, "{:?}", first.batches);
    // Anything still queued about big.csv would arrive before the sentinel's report.
    fs::write(&sentinel, b"x").unwrap();
    let rest = wait_for(&rx, &[&sentinel]);
    assert_eq!(rest.all(), set(&[&sentinel]));
}

#[test]
fn a_new_directory_is_watched_and_its_early_files_are_covered() {
    let tree = Tree::new(&base(), "watch-newdir").unwrap();
    let (watcher, rx) = Watcher::start(&[tree.root().to_path_buf()], complete()).unwrap();
    assert_eq!(watcher.status().watched_dirs, 1);

    // Files written straight after mkdir may predate the new watch: the directory is reported
    // as a subtree to walk.
    let deep = tree.path("new/deep");
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("early.txt"), b"x").unwrap();
    let seen = wait_for(&rx, &[&tree.path("new")]);
    assert!(seen.subtrees.contains(&tree.path("new")), "{seen:?}");
    assert_eq!(watcher.status().watched_dirs, 3);

    // Later files in it produce events of their own.
    let late = deep.join("late.txt");
    fs::write(&late, b"x").unwrap();
    let mut seen = wait_for(&rx, &[&late]).paths;
    // early.txt may come on its own when its events followed the new watch.
    seen.remove(&deep.join("early.txt"));
    assert_eq!(seen, set(&[&late]));

    // A directory moved in from outside the roots is watched too, both ends of its own moves.
    let outside = Tree::new(&base(), "watch-outside").unwrap();
    outside.file("project/docs/plan.md", b"x").unwrap();
    let moved_in = tree.path("project");
    fs::rename(outside.path("project"), &moved_in).unwrap();
    let seen = wait_for(&rx, &[&moved_in]);
    assert!(seen.subtrees.contains(&moved_in), "{seen:?}");
    assert_eq!(watcher.status().watched_dirs, 5);
    let note = moved_in.join("docs/note.md");
    fs::write(&note, b"x").unwrap();
    assert_eq!(wait_for(&rx, &[&note]).paths, set(&[&note]));

    // Moving it away drops its watches.
    fs::rename(&moved_in, outside.path("project")).unwrap();
    wait_for(&rx, &[&moved_in]);
    assert_eq!(watcher.status().watched_dirs, 3);
}

#[test]
fn the_watch_limit_leaves_subtrees_to_rescans_and_says_which() {
    let tree = Tree::new(&base(), "watch-limit").unwrap();
    for d in ["a", "b/inner", "c", "d"] {
        fs::create_dir_all(tree.path(d)).unwrap();
    }
    let options = WatchOptions {
        max_watches: Some(3),
        ..WatchOptions::default()
    };
    let (watcher, rx) =
        Watcher::start_with(&[tree.root().to_path_buf()], complete(), options).unwrap();
    // Sorted walk: root, a, b get watches; b/inner, c and d are refused (b/inner alone, since
    // its parent is watched).
    let status = watcher.status();
    assert_eq!(status.watched_dirs, 3);
    assert!(status.limit_reached);
    assert_eq!(status.limit_hits, 3);
    assert_eq!(
        status.unwatched,
        vec![tree.path("b/inner"), tree.path("c"), tree.path("d")]
    );

    // A directory created later is refused as well, and the batch asks for a rescan of it.
    let e = tree.path("e");
    fs::create_dir(&e).unwrap();
    let seen = wait_for(&rx, &[&e]);
    assert!(seen.subtrees.contains(&e), "{seen:?}");
    let unwatched: Vec<&ChangeBatch> = seen.batches.iter().filter(|b| b.rescan_needed()).collect();
    assert_eq!(unwatched.len(), 1, "{seen:?}");
    assert_eq!(unwatched[0].newly_unwatched, vec![e.clone()]);
    assert!(!unwatched[0].overflow);
    assert_eq!(watcher.status().unwatched.len(), 4);

    // Freeing a watch and retrying covers the first unwatched subtree again.
    fs::remove_dir(tree.path("a")).unwrap();
    wait_for(&rx, &[&tree.path("a")]);
    assert_eq!(watcher.status().watched_dirs, 2);
    watcher.retry_unwatched();
    let seen = wait_for(&rx, &[&tree.path("b/inner")]);
    assert!(seen.subtrees.contains(&tree.path("b/inner")), "{seen:?}");
    let status = watcher.status();
    assert_eq!(status.watched_dirs, 3);
    assert!(status.limit_reached);
    assert_eq!(status.unwatched, vec![tree.path("c"), tree.path("d"), e]);
}

fn bundle_for(root: &Path) -> Bundle {
    let r = root.display();
    let policy = format!(
        r#"
[[label]]
name = "public"
[[label]]
name = "confidential"
[rules]
forbidden = ["{r}/home/*/Downloads/**"]
"#
    );
    let ledger = format!(
        r#"
[[asset]]
id = "ACME"
name = "ACME"
department = "Finance"
administrator = "alice@example.com"
label = "confidential"
locations = ["{r}/srv/projects/acme/**"]
"#
    );
    Bundle::from_texts(
        &policy,
        Path::new("policy.toml"),
        &ledger,
        Path::new("ledger.toml"),
    )
    .unwrap()
    .0
}

#[test]
fn the_interesting_scope_watches_only_directories_that_can_matter() {
    let tree = Tree::new(&base(), "watch-filter").unwrap();
    for d in [
        "srv/projects/acme/x",
        "srv/projects/acme/y/.git/objects",
        "srv/projects/globex/z",
        "home/bob/Downloads",
        "home/bob/src/deep",
        "var/log",
    ] {
        fs::create_dir_all(tree.path(d)).unwrap();
    }
    let bundle = bundle_for(tree.root());
    let exclude = vec![".git".to_string()];

    let all = WatchFilter::new(&bundle, WatchScope::Complete, &exclude).unwrap();
    let (watcher, _rx) = Watcher::start(&[tree.root().to_path_buf()], all).unwrap();
    // Every directory but .git and what lies below it: 15 of 17.
    assert_eq!(watcher.status().watched_dirs, 15);
    drop(watcher);

    let narrow = WatchFilter::new(&bundle, WatchScope::Interesting, &exclude).unwrap();
    let (watcher, rx) = Watcher::start(&[tree.root().to_path_buf()], narrow).unwrap();
    // root, srv, srv/projects, acme, acme/x, acme/y, home, home/bob, home/bob/Downloads.
    assert_eq!(watcher.status().watched_dirs, 9);
    assert_eq!(watcher.status().unwatched, Vec::<PathBuf>::new());

    // A change in an unwatched directory is not seen; one in a forbidden location is.
    let unseen = tree.path("home/bob/src/deep/notes.txt");
    let in_downloads = tree.path("home/bob/Downloads/q3.xlsx");
    fs::write(&unseen, b"x").unwrap();
    fs::write(&in_downloads, b"x").unwrap();
    assert_eq!(wait_for(&rx, &[&in_downloads]).all(), set(&[&in_downloads]));

    // A new user's home gets its Downloads watched when it appears.
    fs::create_dir_all(tree.path("home/carol/Downloads")).unwrap();
    let carol = tree.path("home/carol");
    let seen = wait_for(&rx, &[&carol]);
    assert!(seen.subtrees.contains(&carol), "{seen:?}");
    assert_eq!(watcher.status().watched_dirs, 11);
}

#[test]
fn too_many_changes_at_once_ask_for_a_rescan_instead_of_a_list() {
    let tree = Tree::new(&base(), "watch-flood").unwrap();
    let options = WatchOptions {
        max_pending: 10,
        ..WatchOptions::default()
    };
    let (_watcher, rx) =
        Watcher::start_with(&[tree.root().to_path_buf()], complete(), options).unwrap();
    for i in 0..50 {
        fs::write(tree.path(&format!("f{i}")), b"x").unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let batch = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no rescan asked for");
        assert!(batch.paths.len() <= 10, "{batch:?}");
        if batch.overflow {
            assert!(batch.rescan_needed());
            break;
        }
    }
}

#[test]
fn a_missing_root_is_reported_unwatched_and_others_still_watched() {
    let tree = Tree::new(&base(), "watch-missing").unwrap();
    let missing = tree.path("not-there");
    let (watcher, _rx) =
        Watcher::start(&[tree.root().to_path_buf(), missing.clone()], complete()).unwrap();
    let status = watcher.status();
    assert_eq!(status.watched_dirs, 1);
    assert!(!status.limit_reached);
    assert_eq!(status.unwatched, vec![missing]);
}

#[test]
fn dropping_the_watcher_closes_the_batch_channel() {
    let tree = Tree::new(&base(), "watch-drop").unwrap();
    let (watcher, rx) = Watcher::start(&[tree.root().to_path_buf()], complete()).unwrap();
    drop(watcher);
    assert!(rx.recv_timeout(PATIENCE).is_err());
}
