//! The running agent, measured end to end against the real collector on loopback:
//!
//! 1. **Change → violation latency**: with the agent watching a small tree (rescans hourly, so
//!    only the watcher can be fast), labeled files are created one at a time in a forbidden
//!    folder, and each is timed from just before its creation until `GET /api/v1/violations`
//!    (an admin token, polled every millisecond) lists it: coalescing, inspection, the state
//!    commit, the outbox, the signed request, the collector's durable ingest and its query, all
//!    included. p50, p90, p99 and the maximum over `--changes` files.
//! 2. **Idle cost** over the large benchmark tree (100,000 files, the `scan_tree` generator):
//!    once the start-up scan is done and its events delivered, the agent's resident memory
//!    (`VmRSS`, and the peak `VmHWM`) and its wake-ups per second, counted as the growth of
//!    every thread's voluntary and involuntary context switches (`/proc/PID/task/*/status`)
//!    over `--idle` seconds.
//!
//! Targets: p50 ≤ 50 ms, p99 ≤ 250 ms, idle RSS ≤ 30 MB, ≤ 1 wake-up/s. The bench reports
//! figures and whether each target is met; it fails only when something does not work.
//!
//! Run: `cargo bench -p infoledger-agent --bench daemon [-- --changes 1000 --idle 20]`.
//! Without `--bench` (as `cargo test --benches` runs it) it makes 20 changes and watches a
//! 2,000-file tree for 2 s, as a smoke test of the bench itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use infoledger_agent::daemon::state::StateDb;
use xattr::FileExt;

mod tree;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");
/// The longest wait for anything (a start, a scan, a delivery): a bound, not an expectation.
const PATIENCE: Duration = Duration::from_secs(600);

const USAGE: &str = "\
usage: cargo bench -p infoledger-agent --bench daemon [-- OPTIONS]

options:
  --changes N   files created one at a time for the latency measurement (default 1000)
  --files N     files in the large tree for the idle measurement (default 100000)
  --idle S      seconds over which idle wake-ups are counted (default 20)
  --help        print this help";

#[derive(Debug, Clone, Copy)]
struct Settings {
    changes: usize,
    files: usize,
    idle: u64,
    measuring: bool,
}

impl Settings {
    fn from_args(args: Vec<String>) -> Result<Option<Settings>> {
        let measuring = args.iter().any(|a| a == "--bench");
        let mut s = Settings {
            changes: if measuring { 1000 } else { 20 },
            files: if measuring { 100_000 } else { 2_000 },
            idle: if measuring { 20 } else { 2 },
            measuring,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str, max: u64| -> Result<u64> {
                let v = it.next().with_context(|| format!("{name} needs a value"))?;
                match v.replace('_', "").parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => bail!("{name}: `{v}` is not a number between 1 and {max}"),
                }
            };
            match arg.as_str() {
                "--changes" => s.changes = value("--changes", 100_000)? as usize,
                "--files" => s.files = value("--files", 5_000_000)? as usize,
                "--idle" => s.idle = value("--idle", 3_600)?,
                "--help" | "-h" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                // cargo's own flags (`--bench`, a filter) are not ours.
                _ => {}
            }
        }
        Ok(Some(s))
    }
}

/// The collector binary, built into this target folder like the agent's tests do.
fn server_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("unexpected bench location")?;
    let target = profile_dir.parent().context("unexpected bench location")?;
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "-p", "infoledger-server", "--bin"])
        .arg("infoledger-server")
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let out = cargo.output().context("cannot run cargo")?;
    if !out.status.success() {
        bail!(
            "cannot build infoledger-server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(profile_dir.join("infoledger-server"))
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("gave up waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stderr lines are collected; killed when dropped.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(cmd: &mut Command) -> Result<Process> {
        let mut child = cmd
            .env_remove("INFOLEDGER_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a process")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().context("no stderr")?;
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Ok(Process { child, lines })
    }

    fn line_with(&self, text: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find(|l| l.contains(text)).cloned()
    }

    fn wait_for_line(&mut self, text: &str) -> Result<String> {
        wait_for(&format!("a log line `{text}`"), || {
            if let Some(status) = self.child.try_wait()? {
                bail!("the process exited ({status}) before logging `{text}`");
            }
            Ok(self.line_with(text))
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A collector in `dir`, listening on a loopback port of its own.
struct Collector {
    bin: PathBuf,
    config: PathBuf,
    url: String,
    _process: Process,
}

impl Collector {
    fn start(bin: &Path, dir: &Path) -> Result<Collector> {
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n",
        )?;
        let mut process =
            Process::spawn(Command::new(bin).args(["serve", "--config"]).arg(&config))?;
        let line = process.wait_for_line("listening on ")?;
        let addr = line.trim_start_matches("listening on ").trim().to_owned();
        Ok(Collector {
            bin: bin.to_path_buf(),
            config,
            url: format!("http://{addr}"),
            _process: process,
        })
    }

    /// Runs an admin command; returns its stdout.
    fn admin(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()?;
        if !out.status.success() {
            bail!(
                "infoledger-server {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// A fresh folder under the target folder (not /tmp, which policies forbid).
fn fresh_dir(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-daemon")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(std::fs::canonicalize(&dir)?)
}

fn start_agent(config: &Path) -> Result<Process> {
    Process::spawn(Command::new(AGENT).args(["run", "--config"]).arg(config))
}

const POLICY: &str = r#"
[[label]]
name = "public"
[[label]]
name = "internal"
[[label]]
name = "confidential"
aliases = ["Confidential"]
[[label]]
name = "secret"
encryption = "required"

[rules]
forbidden = ["**/Downloads/**"]
unregistered_from = "confidential"
"#;

/// Latencies of `changes` files, each from just before it is created until the collector's
/// API lists it.
fn measure_latency(settings: &Settings, server: &Path) -> Result<Vec<Duration>> {
    let dir = fresh_dir("latency")?;
    let root = dir.join("watched");
    std::fs::create_dir_all(root.join("srv"))?;
    std::fs::create_dir_all(root.join("home/dev/Downloads"))?;
    std::fs::write(dir.join("policy.toml"), POLICY)?;
    std::fs::write(
        dir.join("ledger.toml"),
        format!(
            "[[asset]]\nid = \"ACME\"\nname = \"ACME\"\ndepartment = \"Sales\"\nadministrator = \"a@example.com\"\nlabel = \"confidential\"\nlocations = [\"{}/srv/**\"]\n",
            root.display()
        ),
    )?;
    let collector = Collector::start(server, &dir)?;
    collector.admin(&[
        "policy",
        "import",
        &dir.join("policy.toml").to_string_lossy(),
    ])?;
    collector.admin(&[
        "ledger",
        "import",
        &dir.join("ledger.toml").to_string_lossy(),
    ])?;
    let admin = collector.admin(&["token", "create", "--name", "bench", "--role", "admin"])?;
    let enroll = collector.admin(&["enroll-token", "create"])?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\nenroll_token = \"{enroll}\"\nwatch = [\"{}\"]\nstate_dir = \"state\"\nsocket = \"agent.sock\"\nrescan_interval = \"1h\"\nhealth_interval = \"1h\"\ndesktop_notifications = false\nhostname = \"bench\"\nretry_max = \"1s\"\n",
            collector.url,
            root.display()
        ),
    )?;
    let mut agent = start_agent(&config)?;
    agent.wait_for_line("scan finished")?;

    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let listed = |name: &str| -> Result<bool> {
        let body = http
            .get(format!("{}/api/v1/violations", collector.url))
            .query(&[("q", name), ("limit", "1")])
            .bearer_auth(&admin)
            .send()?
            .error_for_status()?
            .text()?;
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        Ok(answer["violations"]
            .as_array()
            .is_some_and(|v| !v.is_empty()))
    };
    let downloads = root.join("home/dev/Downloads");
    let warm_up = 10;
    let mut latencies = Vec::with_capacity(settings.changes);
    for i in 0..warm_up + settings.changes {
        let name = format!("report-{i:06}.txt");
        let started = Instant::now();
        {
            let mut f = std::fs::File::create(downloads.join(&name))?;
            f.write_all(b"quarterly figures\n")?;
            // Labeled before it is closed: one settled change, as an editor's save would be.
            f.set_xattr(infoledger_agent::facts::LABEL_XATTR, b"confidential")?;
        }
        let deadline = started + Duration::from_secs(60);
        while !listed(&name)? {
            if Instant::now() >= deadline {
                bail!("{name} did not reach the collector within 60 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if i >= warm_up {
            latencies.push(started.elapsed());
        }
    }
    if count_lines(&agent, "scan finished") != 1 {
        bail!("a rescan ran during the latency measurement; it must measure the watcher");
    }
    Ok(latencies)
}

fn count_lines(p: &Process, text: &str) -> usize {
    p.lines
        .lock()
        .map(|l| l.iter().filter(|l| l.contains(text)).count())
        .unwrap_or(0)
}

/// Context switches per thread of `pid`.
fn context_switches(pid: u32) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended in between
        };
        let switches: u64 = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert(task.file_name().to_string_lossy().into_owned(), switches);
    }
    Ok(out)
}

/// A `kB` field of `/proc/PID/status`, in MB.
fn status_mb(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

struct Idle {
    files: u64,
    watches: String,
    scan: String,
    rss_mb: f64,
    peak_mb: f64,
    threads: usize,
    wakeups_per_s: f64,
}

/// The agent's idle cost over the large tree.
fn measure_idle(settings: &Settings, server: &Path) -> Result<Idle> {
    let tree = tree::prepare_tree(
        tree::Layout {
            files: settings.files,
            per_dir: 40,
        },
        false,
    )?;
    let dir = fresh_dir("idle")?;
    let (policy, ledger) = tree::bundle_texts(&tree);
    std::fs::write(dir.join("policy.toml"), policy)?;
    std::fs::write(dir.join("ledger.toml"), ledger)?;
    // A collector without a bundle: the agent evaluates with its bootstrap files and reports
    // to it, as a newly installed fleet would.
    let collector = Collector::start(server, &dir)?;
    let enroll = collector.admin(&["enroll-token", "create"])?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\nenroll_token = \"{enroll}\"\nwatch = [\"{}\"]\nstate_dir = \"state\"\nsocket = \"agent.sock\"\npolicy = \"policy.toml\"\nledger = \"ledger.toml\"\ndesktop_notifications = false\nhostname = \"bench\"\n",
            collector.url,
            tree.display()
        ),
    )?;
    let mut agent = start_agent(&config)?;
    let watching = agent.wait_for_line("watching for changes")?;
    let scan = agent.wait_for_line("scan finished")?;
    let state = dir.join("state");
    wait_for("the start-up scan's events to reach the collector", || {
        Ok(StateDb::open_read_only(&state)
            .and_then(|db| db.outbox_depth())
            .ok()
            .filter(|depth| *depth == 0))
    })?;
    let files = StateDb::open_read_only(&state)?.file_count()?;
    // Let the last delivery and anything it set off finish.
    std::thread::sleep(Duration::from_secs(3));
    let pid = agent.pid();
    let before = context_switches(pid)?;
    let window = Duration::from_secs(settings.idle);
    std::thread::sleep(window);
    let after = context_switches(pid)?;
    let woke: u64 = after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let field = |line: &str, key: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or("?")
            .to_owned()
    };
    Ok(Idle {
        files,
        watches: field(&watching, "watches="),
        scan: format!(
            "{} files, {} inspected, {} ms",
            field(&scan, "files="),
            field(&scan, "inspected="),
            field(&scan, "elapsed_ms=")
        ),
        rss_mb: status_mb(pid, "VmRSS:")?,
        peak_mb: status_mb(pid, "VmHWM:")?,
        threads: after.len(),
        wakeups_per_s: woke as f64 / window.as_secs_f64(),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

fn run(settings: &Settings) -> Result<()> {
    let server = server_bin()?;
    eprintln!("latency: {} changes, one at a time", settings.changes);
    let mut latencies = measure_latency(settings, &server)?;
    latencies.sort();
    let (p50, p90, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
    );
    let max = latencies.last().copied().unwrap_or_default();
    eprintln!("idle: {} files", settings.files);
    let idle = measure_idle(settings, &server)?;
    println!(
        "change → violation visible through the collector API ({} changes, loopback)",
        latencies.len()
    );
    println!(
        "  p50 {:7.1} ms   (target ≤ 50 ms: {})",
        ms(p50),
        verdict(p50 <= Duration::from_millis(50))
    );
    println!("  p90 {:7.1} ms", ms(p90));
    println!(
        "  p99 {:7.1} ms   (target ≤ 250 ms: {})",
        ms(p99),
        verdict(p99 <= Duration::from_millis(250))
    );
    println!("  max {:7.1} ms", ms(max));
    println!(
        "idle agent over the benchmark tree ({} files tracked, {} watches; start-up scan: {})",
        idle.files, idle.watches, idle.scan
    );
    println!(
        "  RSS {:6.1} MB   (target ≤ 30 MB: {}); peak {:.1} MB",
        idle.rss_mb,
        verdict(idle.rss_mb <= 30.0),
        idle.peak_mb
    );
    println!(
        "  wake-ups {:5.2}/s over {} s, {} threads   (target ≤ 1/s: {})",
        idle.wakeups_per_s,
        settings.idle,
        idle.threads,
        verdict(idle.wakeups_per_s <= 1.0)
    );
    if !settings.measuring {
        println!("(smoke run: pass --bench, as `cargo bench` does, for the real measurement)");
    }
    Ok(())
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args().skip(1).collect()) {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
