//! The real `infoledger-agent run` against the real `infoledger-server serve` (loopback, port 0,
//! temp folders): violations arriving through the watcher and resolving at the collector, an
//! outage, `kill -9`, a deadline passing on the test clock, new local and collector bundles
//! applied from cached facts, footprints, `warnings` through the agent's socket for root and a
//! plain user, and the signed bundle served by a hand-rolled collector stand-in (signature
//! refusal, cache fallback).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use infoledger_agent::daemon::bundle::{accept, load_cached, store_cached, BundleRefusal};
use infoledger_agent::daemon::client::{BundleAnswer, Client, ClientError};
use infoledger_agent::daemon::config::Config;
use infoledger_agent::daemon::identity::{Identity, IDENTITY_FILE};
use infoledger_agent::daemon::state::StateDb;
use infoledger_policies::wire::bundle::{
    encode_public_key, BundleDocument, SignedBundle, SourceText,
};
use infoledger_policies::{Kind, EXAMPLE_LEDGER, EXAMPLE_POLICY};
use infoledger_server::store::{PageRequest, Store, Violation, ViolationFilter, ViolationStatus};
use infoledger_tests::{current_user_and_group, date_from_today, Tree};
use ring::signature::Ed25519KeyPair;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");
/// How long anything may take to happen; generous for loaded machines. Waits poll and return
/// as soon as the condition holds, so this bounds a failing test, not a passing one.
const PATIENCE: Duration = Duration::from_secs(30);

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("daemon")
}

/// The collector binary: another package's, so it is built on first use into this target
/// folder (a no-op when it is up to date).
fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/daemon-<hash>
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let target = profile_dir.parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "infoledger-server",
                "--bin",
                "infoledger-server",
            ])
            .arg("--target-dir")
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let out = cargo.output().unwrap();
        assert!(
            out.status.success(),
            "cannot build infoledger-server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("infoledger-server");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
}

/// Polls `check` until it returns `Some`, panicking with `what` after [`PATIENCE`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Collects a child's stderr lines on a thread so it never blocks on a full pipe.
fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A running collector; killed when dropped.
struct Collector {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Collector {
    /// Starts `serve` in `dir` on `listen` (port 0 the first time).
    fn start(dir: &Path, listen: &str) -> Collector {
        std::fs::write(
            dir.join("server.toml"),
            format!("listen = \"{listen}\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n"),
        )
        .unwrap();
        let mut child = Command::new(server_bin())
            .args(["serve", "--config"])
            .arg(dir.join("server.toml"))
            .env_remove("INFOLEDGER_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = collect_lines(&mut child);
        let addr = wait_for("the collector to listen", || {
            lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix("listening on ").map(|a| a.parse().unwrap()))
        });
        Collector {
            child,
            dir: dir.to_path_buf(),
            addr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs an admin command of the collector (`policy import FILE`, …) against its config.
    fn admin(&self, args: &[&str], file: &Path) {
        let out = Command::new(server_bin())
            .args(args)
            .arg("--config")
            .arg(self.dir.join("server.toml"))
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An enrollment token good for a few agents.
    fn token(&self) -> String {
        let out = Command::new(server_bin())
            .args(["enroll-token", "create", "--uses", "5", "--config"])
            .arg(self.dir.join("server.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every violation the collector holds, read from its database (the manager API is separate).
fn violations(collector_dir: &Path) -> Vec<Violation> {
    let store = Store::open(&collector_dir.join("collector.db")).unwrap();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut all = Vec::new();
    loop {
        let got = store
            .list_violations(&ViolationFilter::default(), &page, None)
            .unwrap();
        all.extend(got.violations);
        match got.next {
            Some(next) => page.after = Some(next),
            None => return all,
        }
    }
}

/// How many `violation_opened` events the collector stored (duplicates would show here).
fn opened_events(collector_dir: &Path) -> u64 {
    let db = rusqlite::Connection::open_with_flags(
        collector_dir.join("collector.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT count(*) FROM events WHERE kind = 'violation_opened'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn open_count(collector_dir: &Path) -> usize {
    violations(collector_dir)
        .iter()
        .filter(|v| v.status == ViolationStatus::Open)
        .count()
}

const POLICY: &str = r#"
[[label]]
name = "public"
[[label]]
name = "internal"
[[label]]
name = "confidential"
encryption = "optional"
aliases = ["Confidential"]
[[label]]
name = "secret"
encryption = "required"

[rules]
forbidden = ["**/Downloads/**"]
unregistered_from = "confidential"
"#;

/// A ledger with one asset over `location`, ending on `until` when given.
fn ledger(location: &Path, until: Option<&str>) -> String {
    let (user, group) = current_user_and_group();
    let until = until.map_or(String::new(), |d| format!("access_until = \"{d}\"\n"));
    format!(
        "[[asset]]\nid = \"ACME\"\nname = \"ACME data\"\ndepartment = \"Sales\"\nadministrator = \"a@example.com\"\nlabel = \"confidential\"\nlocations = [\"{}/**\"]\nmembers = [\"user:{user}\", \"group:{group}\"]\n{until}",
        location.display()
    )
}

/// A test world: a tree to watch, and a config folder with policy, ledger and agent config.
struct World {
    tree: Tree,
    etc: Tree,
}

impl World {
    fn new(name: &str, ledger_text: impl FnOnce(&Path) -> String) -> World {
        std::fs::create_dir_all(base()).unwrap();
        let tree = Tree::new(&base(), name).unwrap();
        let etc = Tree::new(&base(), &format!("{name}-etc")).unwrap();
        etc.file("policy.toml", POLICY.as_bytes()).unwrap();
        etc.file("ledger.toml", ledger_text(tree.root()).as_bytes())
            .unwrap();
        World { tree, etc }
    }

    fn state_dir(&self) -> PathBuf {
        self.etc.path("state")
    }

    /// Writes `agent.toml` (mode 0600) with the watch root, state, policy and ledger, a socket
    /// of its own, and `extra`.
    fn config(&self, extra: &str) -> PathBuf {
        self.config_without_local_bundle(&format!(
            "policy = \"policy.toml\"\nledger = \"ledger.toml\"\n{extra}"
        ))
    }

    /// Like [`World::config`], with no local policy and ledger: the collector's bundle only.
    fn config_without_local_bundle(&self, extra: &str) -> PathBuf {
        let text = format!(
            "watch = [\"{}\"]\nstate_dir = \"state\"\nsocket = \"agent.sock\"\nhostname = \"ws-test\"\nretry_max = \"1s\"\n{extra}",
            self.tree.root().display()
        );
        self.etc.file("agent.toml", text.as_bytes()).unwrap()
    }

    fn open_violations(&self) -> Vec<(PathBuf, Kind)> {
        let Ok(db) = StateDb::open_read_only(&self.state_dir()) else {
            return Vec::new();
        };
        db.open_violations()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.path, v.violation.kind))
            .collect()
    }

    fn outbox_depth(&self) -> u64 {
        StateDb::open_read_only(&self.state_dir())
            .and_then(|db| db.outbox_depth())
            .unwrap_or(0)
    }
}

/// A running agent; killed when dropped.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(config: &Path, env: &[(&str, &Path)]) -> Agent {
        let mut cmd = Command::new(AGENT);
        cmd.args(["run", "--config"])
            .arg(config)
            .env_remove("INFOLEDGER_LOG")
            .env_remove("INFOLEDGER_TEST_CLOCK_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = collect_lines(&mut child);
        Agent { child, lines }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// How many log lines contain `text`.
    fn count_log(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Waits for a log line containing `text` after the first line containing `after`.
    fn wait_for_log_after(&self, after: &str, text: &str) -> String {
        wait_for(&format!("agent log line `{text}` after `{after}`"), || {
            let lines = self.lines.lock().unwrap();
            let start = lines.iter().position(|l| l.contains(after))?;
            lines[start..].iter().find(|l| l.contains(text)).cloned()
        })
    }

    /// Waits for a log line containing `text`.
    fn wait_for_log(&self, text: &str) -> String {
        wait_for(&format!("agent log line `{text}`"), || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(text))
                .cloned()
        })
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        wait_for("the agent to exit after SIGTERM", || {
            self.child.try_wait().unwrap()
        })
    }

    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log());
        }
    }
}

/// A collector (in a folder of `world`) and an agent enrolled with it.
fn collector_world(
    name: &str,
    world_ledger: impl FnOnce(&Path) -> String,
) -> (World, Collector, PathBuf) {
    let world = World::new(name, world_ledger);
    let dir = world.etc.path("collector");
    std::fs::create_dir_all(&dir).unwrap();
    let collector = Collector::start(&dir, "127.0.0.1:0");
    let config = world.config(&format!(
        "server = \"{}\"\nenroll_token = \"{}\"\nrescan_interval = \"1s\"\n",
        collector.url(),
        collector.token()
    ));
    (world, collector, config)
}

#[test]
fn a_misplaced_labeled_file_opens_at_the_collector_and_moving_it_into_its_asset_resolves_it() {
    let (world, collector, config) =
        collector_world("move", |root| ledger(&root.join("srv/acme"), None));
    let t = &world.tree;
    std::fs::create_dir_all(t.path("srv/acme")).unwrap();
    let mut agent = Agent::start(&config, &[]);
    let misplaced = t
        .labeled("home/dev/Downloads/q3.txt", "confidential", b"forecast\n")
        .unwrap();

    let opened = wait_for("the violation at the collector", || {
        let v = violations(&collector.dir);
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(opened.len(), 1, "{opened:#?}");
    let v = &opened[0];
    assert_eq!(
        (
            v.path.as_str(),
            v.kind,
            v.status,
            v.host.as_str(),
            v.label.as_deref()
        ),
        (
            misplaced.to_str().unwrap(),
            Kind::Misplaced,
            ViolationStatus::Open,
            "ws-test",
            Some("confidential")
        )
    );
    // The developer log line says what, why and how to fix.
    let line = agent.wait_for_log("violation opened:");
    assert!(line.contains("q3.txt: high[misplaced]"), "{line}");
    assert!(
        line.contains("rule: rules.forbidden: **/Downloads/**"),
        "{line}"
    );
    assert!(line.contains("fix: "), "{line}");

    // Credentials are private.
    let state = world.state_dir();
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let identity = std::fs::metadata(state.join(IDENTITY_FILE)).unwrap();
    assert_eq!(identity.permissions().mode() & 0o777, 0o600);

    std::fs::rename(&misplaced, t.path("srv/acme/q3.txt")).unwrap();
    wait_for("the violation to resolve at the collector", || {
        let v = violations(&collector.dir);
        (v.len() == 1 && v[0].status == ViolationStatus::Resolved).then_some(())
    });
    assert!(
        world.open_violations().is_empty(),
        "{:?}",
        world.open_violations()
    );
    assert_eq!(agent.terminate().code(), Some(0));
}

/// Writes `n` misplaced labeled files.
fn misplace_files(t: &Tree, n: usize) {
    for i in 0..n {
        t.labeled(&format!("Downloads/f{i:04}.txt"), "confidential", b"x\n")
            .unwrap();
    }
}

#[test]
fn a_thousand_violations_made_during_an_outage_arrive_exactly_once() {
    let (world, mut collector, config) =
        collector_world("outage", |root| ledger(&root.join("srv"), None));
    let agent = Agent::start(&config, &[]);
    wait_for("enrollment", || {
        world.state_dir().join(IDENTITY_FILE).exists().then_some(())
    });
    agent.wait_for_log("scan finished");
    let addr = collector.addr;
    collector.stop();

    misplace_files(&world.tree, 1000);
    wait_for("1000 events in the outbox", || {
        (world.outbox_depth() >= 1000 && world.open_violations().len() == 1000).then_some(())
    });
    assert_eq!(open_count(&collector.dir), 0);

    let collector = Collector::start(&collector.dir, &addr.to_string());
    wait_for("1000 open violations at the collector", || {
        (open_count(&collector.dir) == 1000).then_some(())
    });
    wait_for("an empty outbox", || {
        (world.outbox_depth() == 0).then_some(())
    });
    assert_eq!(opened_events(&collector.dir), 1000);
    assert_eq!(violations(&collector.dir).len(), 1000);
}

#[test]
fn outbox_survives_kill_during_send_without_loss_or_duplicates() {
    let (world, mut collector, config) =
        collector_world("kill9", |root| ledger(&root.join("srv"), None));
    let mut agent = Agent::start(&config, &[]);
    wait_for("enrollment", || {
        world.state_dir().join(IDENTITY_FILE).exists().then_some(())
    });
    agent.wait_for_log("scan finished");
    let addr = collector.addr;
    collector.stop();
    misplace_files(&world.tree, 1000);
    wait_for("1000 events in the outbox", || {
        (world.outbox_depth() >= 1000).then_some(())
    });

    // The collector comes back; the agent is killed as soon as the first batch has landed.
    let collector = Collector::start(&collector.dir, &addr.to_string());
    wait_for("a first delivered batch", || {
        (opened_events(&collector.dir) > 0).then_some(())
    });
    agent.kill_9();
    let before_restart = opened_events(&collector.dir);
    assert!(before_restart <= 1000);
    eprintln!("{before_restart} of 1000 delivered before kill -9");

    let _agent = Agent::start(&config, &[]);
    wait_for("1000 open violations at the collector", || {
        (open_count(&collector.dir) == 1000).then_some(())
    });
    wait_for("an empty outbox", || {
        (world.outbox_depth() == 0).then_some(())
    });
    assert_eq!(opened_events(&collector.dir), 1000);
}

#[test]
fn a_deadline_passing_opens_expired_without_any_file_change() {
    // The deadline is tomorrow, so the real clock cannot pass it during the test.
    let tomorrow = date_from_today(1);
    let (world, collector, config) = collector_world("deadline", |root| {
        ledger(&root.join("srv"), Some(&tomorrow))
    });
    // Rescans only hourly: what opens the violation must be the clock, not a rescan.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("rescan_interval = \"1s\"", "rescan_interval = \"1h\"");
    std::fs::write(&config, text).unwrap();
    let file = world
        .tree
        .labeled("srv/contract.txt", "confidential", b"terms\n")
        .unwrap();
    let clock = world.etc.file("clock", b"0").unwrap();
    let agent = Agent::start(&config, &[("INFOLEDGER_TEST_CLOCK_FILE", &clock)]);
    agent.wait_for_log("scan finished");
    wait_for("the first health event at the collector", || {
        Store::open(&collector.dir.join("collector.db"))
            .unwrap()
            .agent(
                &std::fs::read_to_string(world.state_dir().join(IDENTITY_FILE))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Identity>(&t).ok())?
                    .agent_id,
            )
            .unwrap()?
            .health
    });
    assert!(violations(&collector.dir).is_empty());
    let stamp_before = std::fs::metadata(&file).unwrap().modified().unwrap();

    std::fs::write(&clock, (3 * 86_400).to_string()).unwrap();
    let expired = wait_for("an expired violation at the collector", || {
        let v = violations(&collector.dir);
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(expired.len(), 1, "{expired:#?}");
    assert_eq!(
        (
            expired[0].path.as_str(),
            expired[0].kind,
            expired[0].asset.as_deref(),
            expired[0].department.as_deref()
        ),
        (
            file.to_str().unwrap(),
            Kind::Expired,
            Some("ACME"),
            Some("Sales")
        )
    );
    agent.wait_for_log("new day: evaluating deadlines again from cached facts");
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        stamp_before
    );
}

#[test]
fn a_new_local_bundle_resolves_now_allowed_files_from_cached_facts() {
    let world = World::new("rebundle", |root| ledger(&root.join("srv"), None));
    let config = world.config("local_only = true\nrescan_interval = \"1h\"\n");
    let shadow = world
        .tree
        .labeled("shared/report.txt", "confidential", b"numbers\n")
        .unwrap();
    let agent = Agent::start(&config, &[]);
    wait_for("the unregistered violation", || {
        (world.open_violations() == [(shadow.clone(), Kind::Unregistered)]).then_some(())
    });
    let line = agent.wait_for_log("violation opened:");
    assert!(line.contains("report.txt: medium[unregistered]"), "{line}");
    assert_eq!(world.outbox_depth(), 0, "local_only queues nothing");

    // The ledger gains a location covering the file; SIGHUP reloads it.
    let more = format!(
        "{}\n[[asset]]\nid = \"SHARED\"\nname = \"Shared reports\"\ndepartment = \"Finance\"\nadministrator = \"b@example.com\"\nlabel = \"confidential\"\nlocations = [\"{}/shared/**\"]\n",
        ledger(&world.tree.path("srv"), None),
        world.tree.root().display()
    );
    std::fs::write(world.etc.path("ledger.toml"), more).unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for("the violation to resolve", || {
        world.open_violations().is_empty().then_some(())
    });
    let applied = agent.wait_for_log("bundle applied (new bundle):");
    assert!(applied.contains("re-inspected 0"), "{applied}");
    assert!(
        agent.log().contains("violation resolved:"),
        "{}",
        agent.log()
    );
}

#[test]
fn validate_checks_the_daemon_config_with_positions_and_warns_about_a_readable_token() {
    let world = World::new("validate", |root| ledger(&root.join("srv"), None));
    let good = world.config("server = \"http://127.0.0.1:9\"\nenroll_token = \"t0k3n\"\n");
    let run = |config: &Path| {
        Command::new(AGENT)
            .args(["validate", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let out = run(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("collector http://127.0.0.1:9/"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&good);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    let bad = world.config("server = \"http://127.0.0.1:9\"\nrescan_interval = \"often\"\n");
    let out = run(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{}:9:19: error: `rescan_interval`", bad.display())),
        "{stderr}"
    );
}

// The bundle endpoint, served by a stand-in that speaks the collector's contract.

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn signed_bundle(key: &Ed25519KeyPair, version: u64) -> SignedBundle {
    BundleDocument {
        version,
        issued_at: chrono::Utc::now(),
        policy: SourceText {
            name: "policy.toml".into(),
            text: EXAMPLE_POLICY.into(),
        },
        ledger: SourceText {
            name: "ledger.toml".into(),
            text: EXAMPLE_LEDGER.into(),
        },
    }
    .sign(key)
    .unwrap()
}

/// What the stand-in answers to `GET /api/v1/bundle`.
#[derive(Clone)]
enum Serve {
    Bundle(SignedBundle),
    NoBundle,
}

/// A one-endpoint HTTP server on loopback; records the requests' headers.
struct BundleServer {
    addr: SocketAddr,
    serve: Arc<Mutex<Serve>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl BundleServer {
    fn start(serve: Serve) -> BundleServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = Arc::new(Mutex::new(serve));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&serve), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                answer(stream, &s.lock().unwrap().clone(), &r);
            }
        });
        BundleServer { addr, serve, seen }
    }
}

fn answer(mut stream: TcpStream, serve: &Serve, seen: &Mutex<Vec<String>>) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    seen.lock().unwrap().push(head.clone());
    let (status, extra, body) = match serve {
        Serve::NoBundle => (
            "404 Not Found",
            String::new(),
            r#"{"error":{"code":"no_bundle","message":"no bundle yet"}}"#.to_owned(),
        ),
        Serve::Bundle(b) if head.contains(&format!("if-none-match: \"{}\"", b.version)) => (
            "304 Not Modified",
            format!("ETag: \"{}\"\r\n", b.version),
            String::new(),
        ),
        Serve::Bundle(b) => (
            "200 OK",
            format!(
                "ETag: \"{}\"\r\nContent-Type: application/json\r\n",
                b.version
            ),
            serde_json::to_string(b).unwrap(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn client_for(url: &str) -> Client {
    let text = format!("server = \"{url}\"\nwatch = [\"/\"]\n");
    let config = Config::parse(Path::new("/etc/infoledger/agent.toml"), &text).unwrap();
    Client::new(config.server.as_ref().unwrap()).unwrap()
}

#[test]
fn the_signed_bundle_is_verified_cached_refused_when_forged_and_used_when_the_collector_is_down() {
    let collector_key = key();
    let identity = Identity::new(
        "http://collector/",
        "agent-0123".into(),
        "s".repeat(43),
        encode_public_key(&collector_key),
    );
    let state = tempfile::tempdir().unwrap();
    let server = BundleServer::start(Serve::NoBundle);
    let client = client_for(&format!("http://{}", server.addr));

    assert_eq!(
        client.fetch_bundle(&identity, None).unwrap(),
        BundleAnswer::NoBundle
    );
    // Requests are signed like every agent request.
    let head = server.seen.lock().unwrap()[0].clone();
    assert!(head.starts_with("get /api/v1/bundle http/1.1"), "{head}");
    for h in [
        "x-infoledger-agent: agent-0123",
        "x-infoledger-signature: ",
        "x-infoledger-nonce: ",
    ] {
        assert!(head.contains(h), "{h} missing in {head}");
    }

    let v3 = signed_bundle(&collector_key, 3);
    *server.serve.lock().unwrap() = Serve::Bundle(v3.clone());
    let BundleAnswer::Bundle(got) = client.fetch_bundle(&identity, None).unwrap() else {
        panic!("expected a bundle");
    };
    let (doc, active) = accept(&got, &identity, None).unwrap();
    assert_eq!((doc.version, active.version), (3, Some(3)));
    store_cached(state.path(), &got).unwrap();
    // Unchanged: 304 through If-None-Match.
    assert_eq!(
        client.fetch_bundle(&identity, Some(3)).unwrap(),
        BundleAnswer::NotModified
    );
    // The same version again, or an older one, is refused even when well signed.
    assert!(matches!(
        accept(&got, &identity, Some(3)),
        Err(BundleRefusal::NotNewer {
            offered: 3,
            held: 3
        })
    ));

    // A bundle signed by another key (a forged collector) is refused; the cache stays.
    let forged = signed_bundle(&key(), 4);
    *server.serve.lock().unwrap() = Serve::Bundle(forged);
    let BundleAnswer::Bundle(got) = client.fetch_bundle(&identity, Some(3)).unwrap() else {
        panic!("expected a bundle");
    };
    let refused = accept(&got, &identity, Some(3)).unwrap_err();
    assert!(refused.to_string().contains("signature"), "{refused}");
    assert_eq!(
        load_cached(state.path(), &identity).unwrap().version,
        Some(3)
    );

    // A tampered cache is refused on load, like a tampered download.
    let mut tampered = v3;
    tampered.payload = signed_bundle(&key(), 3).payload;
    std::fs::write(
        state.path().join("bundle.json"),
        serde_json::to_vec(&tampered).unwrap(),
    )
    .unwrap();
    assert!(load_cached(state.path(), &identity).is_none());

    // Down: the client says so, and a start falls back to the cache.
    store_cached(state.path(), &signed_bundle(&collector_key, 5)).unwrap();
    let down = client_for("http://127.0.0.1:9");
    assert!(matches!(
        down.fetch_bundle(&identity, Some(5)),
        Err(ClientError::Unreachable(_))
    ));
    assert_eq!(
        load_cached(state.path(), &identity).unwrap().version,
        Some(5)
    );
}

#[test]
fn the_agent_starts_from_its_cached_bundle_when_the_collector_is_unreachable() {
    let world = World::new("cached", |root| ledger(&root.join("srv"), None));
    // Enrolled earlier with a collector that is now down; its bundle is the example ledger,
    // under which a secret file in Downloads is misplaced.
    let collector_key = key();
    std::fs::create_dir_all(world.state_dir()).unwrap();
    Identity::new(
        "http://127.0.0.1:9/",
        "agent-1".into(),
        "s".repeat(43),
        encode_public_key(&collector_key),
    )
    .save(&world.state_dir())
    .unwrap();
    store_cached(&world.state_dir(), &signed_bundle(&collector_key, 9)).unwrap();
    let config = world.etc.path("agent.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"http://127.0.0.1:9\"\nwatch = [\"{}\"]\nstate_dir = \"state\"\nrescan_interval = \"1s\"\nretry_max = \"1s\"\n",
            world.tree.root().display()
        ),
    )
    .unwrap();
    let file = world
        .tree
        .labeled("Downloads/payroll.txt", "Highly Confidential", b"x")
        .unwrap();
    let mut agent = Agent::start(&config, &[]);
    agent.wait_for_log("collector bundle 9");
    wait_for("the violation under the cached bundle", || {
        world
            .open_violations()
            .contains(&(file.clone(), Kind::Misplaced))
            .then_some(())
    });
    assert!(world.outbox_depth() >= 1, "events wait for the collector");
    // SIGTERM with the collector away: one bounded attempt, then exit 0 with the outbox kept.
    assert_eq!(agent.terminate().code(), Some(0));
    assert!(world.outbox_depth() >= 1);
}

// The watcher, collector bundles, footprints and `warnings`.

/// The footprints the collector stored: (host, roots, assets) per agent.
fn footprints(collector_dir: &Path) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    let db = rusqlite::Connection::open_with_flags(
        collector_dir.join("collector.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT host, roots, assets FROM footprints ORDER BY agent_id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .unwrap()
    .map(|row| {
        let (host, roots, assets) = row.unwrap();
        (
            host,
            serde_json::from_str(&roots).unwrap(),
            serde_json::from_str(&assets).unwrap(),
        )
    })
    .collect()
}

#[test]
fn the_watcher_reports_a_misplaced_file_without_a_rescan_and_a_footprint_follows_the_scan() {
    let (world, collector, config) =
        collector_world("watcher", |root| ledger(&root.join("srv/acme"), None));
    // Rescans hourly: what reports the file must be the watcher.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("rescan_interval = \"1s\"", "rescan_interval = \"1h\"");
    std::fs::write(&config, text).unwrap();
    let t = &world.tree;
    t.labeled("srv/acme/plan.txt", "confidential", b"plan\n")
        .unwrap();
    t.labeled("srv/acme/deep/budget.txt", "confidential", b"budget\n")
        .unwrap();
    let mut agent = Agent::start(&config, &[]);
    agent.wait_for_log("watching for changes");
    agent.wait_for_log("scan finished");

    // The start-up scan's footprint: the asset's two files under the one root.
    let footprint = wait_for("the footprint at the collector", || {
        footprints(&collector.dir).pop()
    });
    assert_eq!(
        footprint,
        (
            "ws-test".to_owned(),
            serde_json::json!([t.root().to_str().unwrap()]),
            serde_json::json!({"ACME": 2})
        )
    );

    // A folder and a labeled file in it, both new: the watcher walks the new folder.
    let misplaced = t
        .labeled("home/dev/Downloads/q3.txt", "confidential", b"forecast\n")
        .unwrap();
    let opened = wait_for("the violation at the collector", || {
        let v = violations(&collector.dir);
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(
        opened
            .iter()
            .map(|v| (v.path.as_str(), v.kind, v.status))
            .collect::<Vec<_>>(),
        [(
            misplaced.to_str().unwrap(),
            Kind::Misplaced,
            ViolationStatus::Open
        )]
    );

    std::fs::rename(&misplaced, t.path("srv/acme/q3.txt")).unwrap();
    wait_for("the violation to resolve at the collector", || {
        let v = violations(&collector.dir);
        (v.len() == 1 && v[0].status == ViolationStatus::Resolved).then_some(())
    });
    assert!(world.open_violations().is_empty());
    // No rescan ran: the start-up scan is the only one.
    assert_eq!(agent.count_log("scan finished"), 1, "{}", agent.log());
    assert_eq!(agent.terminate().code(), Some(0));
}

#[test]
fn a_new_collector_bundle_resolves_now_allowed_files_without_reading_them() {
    let world = World::new("collector-bundle", |root| ledger(&root.join("srv"), None));
    let dir = world.etc.path("collector");
    std::fs::create_dir_all(&dir).unwrap();
    let collector = Collector::start(&dir, "127.0.0.1:0");
    collector.admin(&["policy", "import"], &world.etc.path("policy.toml"));
    collector.admin(&["ledger", "import"], &world.etc.path("ledger.toml"));
    let shadow = world
        .tree
        .labeled("shared/report.txt", "confidential", b"numbers\n")
        .unwrap();
    let config = world.config_without_local_bundle(&format!(
        "server = \"{}\"\nenroll_token = \"{}\"\nrescan_interval = \"1h\"\nbundle_interval = \"1s\"\n",
        collector.url(),
        collector.token()
    ));
    let agent = Agent::start(&config, &[]);
    agent.wait_for_log("new bundle from the collector version=Some(2)");
    wait_for("the unregistered violation at the collector", || {
        let v = violations(&collector.dir);
        (v.len() == 1 && v[0].status == ViolationStatus::Open).then_some(())
    });
    assert_eq!(
        world.open_violations(),
        [(shadow.clone(), Kind::Unregistered)]
    );

    // The ledger gains an asset whose location covers the file.
    let more = format!(
        "{}\n[[asset]]\nid = \"SHARED\"\nname = \"Shared reports\"\ndepartment = \"Finance\"\nadministrator = \"b@example.com\"\nlabel = \"confidential\"\nlocations = [\"{}/shared/**\"]\n",
        ledger(&world.tree.path("srv"), None),
        world.tree.root().display()
    );
    let v3 = world.etc.file("ledger-v3.toml", more.as_bytes()).unwrap();
    collector.admin(&["ledger", "import"], &v3);
    let applied = agent.wait_for_log_after(
        "new bundle from the collector version=Some(3)",
        "bundle applied (new bundle):",
    );
    assert!(
        applied.contains("re-evaluated 1 files from cached facts, re-inspected 0"),
        "{applied}"
    );
    wait_for("the violation to resolve at the collector", || {
        let v = violations(&collector.dir);
        (v.len() == 1 && v[0].status == ViolationStatus::Resolved).then_some(())
    });
    assert!(world.open_violations().is_empty());
    assert_eq!(agent.count_log("scan finished"), 1, "{}", agent.log());
}

/// Runs `warnings --format json -v` with `config`, as a plain user (uid/gid 65534, no groups)
/// when `nobody` is set; returns (exit code, parsed stdout, stderr).
fn warnings_as(config: &Path, nobody: bool, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut cmd = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(AGENT);
        c
    } else {
        Command::new(AGENT)
    };
    let out = cmd
        .args(["warnings", "--format", "json", "-v", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("INFOLEDGER_LOG")
        .output()
        .expect("cannot run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = if stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listed_paths(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn warnings_through_the_socket_show_a_plain_user_only_their_files_and_root_everything() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test switches to uid 65534 with setpriv and needs root"
    );
    let world = World::new("warnings", |root| ledger(&root.join("srv"), None));
    let config = world.config("local_only = true\nrescan_interval = \"1h\"\n");
    // Only the agent's configuration is readable to the plain user, as a packaged one without
    // a token may be; the state folder stays private (0700).
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let theirs = world
        .tree
        .labeled("Downloads/theirs.txt", "confidential", b"x\n")
        .unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let mine = world
        .tree
        .labeled("Downloads/mine.txt", "confidential", b"x\n")
        .unwrap();
    let mut agent = Agent::start(&config, &[]);
    wait_for("both violations", || {
        (world.open_violations().len() == 2).then_some(())
    });
    wait_for("the socket", || {
        world.etc.path("agent.sock").exists().then_some(())
    });

    let (code, list, stderr) = warnings_as(&config, true, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(listed_paths(&list), [theirs.to_str().unwrap()], "{stderr}");
    assert_eq!(list[0]["owner_uid"], 65534);
    assert_eq!(list[0]["kind"], "misplaced");
    assert!(stderr.contains("answered by the running agent"), "{stderr}");
    // Asking about someone else is refused, by the command and by the agent alike.
    let (code, _, stderr) = warnings_as(&config, true, &["--user", "root"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("only root can list another user's warnings"),
        "{stderr}"
    );

    let (code, list, stderr) = warnings_as(&config, false, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        listed_paths(&list),
        [mine.to_str().unwrap(), theirs.to_str().unwrap()]
    );
    assert!(stderr.contains("answered by the running agent"), "{stderr}");
    let (_, list, _) = warnings_as(&config, false, &["--user", "nobody"]);
    assert_eq!(listed_paths(&list), [theirs.to_str().unwrap()]);

    // With the agent stopped, root reads the state database; the plain user cannot.
    assert_eq!(agent.terminate().code(), Some(0));
    assert!(!world.etc.path("agent.sock").exists());
    let (code, list, stderr) = warnings_as(&config, false, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(listed_paths(&list).len(), 2);
    assert!(stderr.contains("read from the state database"), "{stderr}");
    let (code, _, stderr) = warnings_as(&config, true, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not readable by you"), "{stderr}");
}

#[test]
fn systemd_hears_ready_once_watching_and_reloading_around_sighup() {
    use std::os::unix::net::UnixDatagram;
    let world = World::new("sd-notify", |root| ledger(&root.join("srv"), None));
    let config = world.config("local_only = true\nrescan_interval = \"1h\"\n");
    let notify_path = world.etc.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(PATIENCE)).unwrap();
    let next = || {
        let mut buf = [0u8; 4096];
        let n = notify
            .recv(&mut buf)
            .expect("a notification from the agent");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut agent = Agent::start(&config, &[("NOTIFY_SOCKET", &notify_path)]);
    let ready = next();
    assert!(
        ready.starts_with("READY=1\nSTATUS=start-up scan"),
        "{ready:?}"
    );
    // Ready means watching: the watcher is in place before the start-up scan.
    assert!(
        agent.log().contains("watching for changes"),
        "{}",
        agent.log()
    );
    let status = next();
    assert!(
        status.starts_with("STATUS=last scan 0 files in "),
        "{status:?}"
    );

    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(next(), "READY=1\n");
    // A reload rescans at once (roots or excludes may have changed).
    let status = next();
    assert!(status.starts_with("STATUS=last scan "), "{status:?}");
    assert_eq!(agent.terminate().code(), Some(0));
    assert_eq!(next(), "STOPPING=1\n");
}
