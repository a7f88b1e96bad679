//! `infoledger-demo`: the quick start behind `./demo.sh`. Builds a demo folder from the example
//! policy and ledger, starts a collector (embedded SQLite, the demo policy and ledger imported)
//! and an agent watching the folder, and prints where to look: violations of every kind arrive
//! at the collector, and moving a file resolves its violation.
//!
//! `--check` runs the same and exits 0 once every expected violation arrived and a moved file's
//! violation resolved (the test suite runs it), 1 otherwise.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use infoledger_tests::formats::{labeled_pdf, office_document, MipLabel, OfficeKind};
use infoledger_tests::{
    chmod, current_user_and_group, date_from_today, set_xattr, ASSET_XATTR, LABEL_XATTR,
};

const EXAMPLE_POLICY: &str = include_str!("../../../policies/examples/policy.toml");
const EXAMPLE_LEDGER: &str = include_str!("../../../policies/examples/ledger.toml");

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The example ledger with its absolute locations moved under the demo folder, and the
/// members adjusted so the files the demo creates are owned by a member.
fn demo_ledger(root: &Path) -> String {
    let (user, group) = current_user_and_group();
    let r = root.display().to_string();
    EXAMPLE_LEDGER
        .replace("\"/srv/", &format!("\"{r}/srv/"))
        .replace("\"/home/", &format!("\"{r}/home/"))
        .replace("\"user:alice\"", &format!("\"user:{user}\""))
        .replace("\"group:acme\"", &format!("\"group:{group}\""))
        .replace("\"group:staff\"", &format!("\"group:{group}\""))
        .replace(
            "hosts = [\"build-*\", \"ws-alice\"]",
            "hosts = [\"build-*\", \"ws-*\"]",
        )
        // Deadlines relative to today, so the demo shows the same kinds whatever the date: the
        // running projects end in a year or more, the ended one ended months ago.
        .replace("\"2026-12-31\"", &format!("\"{}\"", date_from_today(365)))
        .replace("\"2027-06-30\"", &format!("\"{}\"", date_from_today(540)))
        .replace("\"2026-03-31\"", &format!("\"{}\"", date_from_today(-120)))
}

fn write(root: &Path, rel: &str, contents: &str, mode: u32) -> Result<PathBuf> {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().context("path has a parent")?)?;
    std::fs::write(&p, contents)?;
    chmod(&p, mode)?;
    Ok(p)
}

fn write_bytes(root: &Path, rel: &str, contents: &[u8]) -> Result<()> {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().context("path has a parent")?)?;
    std::fs::write(&p, contents)?;
    chmod(&p, 0o600)
}

fn build_tree(root: &Path) -> Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let tree = root.join("tree");
    // Compliant: the roadmap asset is internal and needs no encryption.
    write(
        &tree,
        "srv/projects/roadmap/2027-plan.md",
        "# Roadmap 2027\n",
        0o640,
    )?;
    // Misplaced: a confidential export in Downloads.
    let p = write(
        &tree,
        "home/dev/Downloads/acme-customers.csv",
        "id,name\n1,ACME\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "Confidential")?;
    // Unencrypted: ACME requires encryption; this CSV is plain text.
    let p = write(
        &tree,
        "srv/projects/acme/customers.csv",
        "id,name\n1,ACME\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "confidential")?;
    // Expired: the Globex contract ended; also unencrypted, since confidential requires it.
    write(
        &tree,
        "srv/projects/globex/payroll-2025.txt",
        "CONFIDENTIAL\npayroll\n",
        0o600,
    )?;
    // Overexposed: world-readable roadmap notes.
    write(
        &tree,
        "srv/projects/roadmap/notes.md",
        "INTERNAL USE ONLY\nnotes\n",
        0o644,
    )?;
    // Unregistered: a marked confidential file no asset covers.
    write(
        &tree,
        "home/dev/notes/board-minutes.txt",
        "CONFIDENTIAL\nBoard minutes\n",
        0o600,
    )?;
    // Mislabeled: an internal label inside the confidential sales asset.
    let p = write(
        &tree,
        "srv/projects/sales/crm/forecast.txt",
        "forecast\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "internal")?;
    // Real Office and PDF files carrying Purview labels (mapped by label id, as exports carry no
    // label name): a confidential workbook in Downloads, an unencrypted contract in ACME.
    let confidential = MipLabel {
        id: "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
        tenant: "0b1c2d3e-0000-4000-8000-000000000001",
    };
    let bytes = office_document(OfficeKind::Excel, Some(confidential), true)?;
    write_bytes(&tree, "home/dev/Downloads/q3-forecast.xlsx", &bytes)?;
    write_bytes(
        &tree,
        "srv/projects/acme/contract.pdf",
        &labeled_pdf(Some(confidential)),
    )?;
    // Misplaced by its own asset attribute: an HR file outside the vault.
    let p = write(&tree, "home/dev/notes/review.txt", "SECRET\n", 0o600)?;
    set_xattr(&p, ASSET_XATTR, "HR-PERSONNEL")?;
    Ok(())
}

/// The violations the demo folder holds: (path under the tree, kind).
const EXPECTED: &[(&str, &str)] = &[
    ("home/dev/Downloads/acme-customers.csv", "misplaced"),
    ("srv/projects/acme/customers.csv", "unencrypted"),
    ("srv/projects/globex/payroll-2025.txt", "expired"),
    ("srv/projects/roadmap/notes.md", "overexposed"),
    ("home/dev/notes/board-minutes.txt", "unregistered"),
    ("srv/projects/sales/crm/forecast.txt", "mislabeled"),
    ("home/dev/Downloads/q3-forecast.xlsx", "misplaced"),
    ("srv/projects/acme/contract.pdf", "unencrypted"),
];
/// The file `--check` moves to show a violation resolving, and where to.
const MOVE_FROM: &str = "home/dev/Downloads/acme-customers.csv";
const MOVE_TO: &str = "srv/projects/acme/acme-customers.csv";
/// How long `--check` waits for each step.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process stopped (SIGTERM, then a bounded wait, then SIGKILL) when dropped.
struct Running {
    name: &'static str,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop in 10 s; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a binary whose stderr is forwarded, line by line, to `lines`.
fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[&str],
    lines: mpsc::Sender<String>,
) -> Result<Running> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stderr = child.stderr.take().context("stderr is piped")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(format!("[{name}] {line}")).is_err() {
                break;
            }
        }
    });
    Ok(Running { name, child })
}

fn cli(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output()?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            bin.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A violation as the demo looks at it: (path, kind, status).
type Seen = (String, String, String);

/// The collector's open and resolved violations.
fn violations(api: &str, token: &str) -> Result<Vec<Seen>> {
    let body: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{api}/api/v1/violations?limit=500"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()?
        .error_for_status()?
        .json()?;
    Ok(body["violations"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|v| {
                    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                    (field("path"), field("kind"), field("status"))
                })
                .collect()
        })
        .unwrap_or_default())
}

fn run() -> Result<ExitCode> {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let here = std::env::current_exe().context("cannot find the demo binary")?;
    let bin_dir = here.parent().context("binary has a folder")?;
    let agent = bin_dir.join("infoledger-agent");
    let server = bin_dir.join("infoledger-server");
    for bin in [&agent, &server] {
        if !bin.exists() {
            bail!(
                "{} not found; build it first (`cargo build --bins`, which ./demo.sh does)",
                bin.display()
            );
        }
    }
    let target = bin_dir.parent().context("target folder")?;
    let root = std::path::absolute(target.join(if check { "demo-check" } else { "demo" }))?;
    build_tree(&root)?;
    let tree = root.join("tree");
    write(&root, "policy.toml", EXAMPLE_POLICY, 0o644)?;
    write(&root, "ledger.toml", &demo_ledger(&tree), 0o644)?;
    let server_config = write(
        &root,
        "server.toml",
        "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\npolicy_file = \"policy.toml\"\nledger_file = \"ledger.toml\"\n",
        0o600,
    )?;
    let server_config = server_config.to_string_lossy().into_owned();

    let (lines, output) = mpsc::channel();
    let collector = spawn(
        "collector",
        &server,
        &["serve", "--config", &server_config],
        lines.clone(),
    )?;
    let deadline = Instant::now() + PATIENCE;
    let addr: SocketAddr = loop {
        let line = output
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .context("the collector did not start listening")?;
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().parse()?;
        }
        eprintln!("{line}");
    };
    let api = format!("http://{addr}");
    let enroll = cli(
        &server,
        &["enroll-token", "create", "--config", &server_config],
    )?;
    let admin = cli(
        &server,
        &[
            "token",
            "create",
            "--config",
            &server_config,
            "--name",
            "demo-admin",
            "--role",
            "admin",
        ],
    )?;
    let agent_config = write(
        &root,
        "agent.toml",
        &format!(
            "server = \"{api}\"\nenroll_token = \"{enroll}\"\nwatch = [\"{}\"]\nstate_dir = \"agent-state\"\nhostname = \"ws-demo\"\nrescan_interval = \"5m\"\nbundle_interval = \"30s\"\nhealth_interval = \"1m\"\n",
            tree.display()
        ),
        0o600,
    )?;
    let agent_config = agent_config.to_string_lossy().into_owned();
    let _agent = spawn("agent", &agent, &["run", "--config", &agent_config], lines)?;
    let _collector = collector;

    println!(
        "\ninfoledger demo\n  demo folder:   {tree}\n  dashboard:     {api}/  (sign in with the admin token)\n  collector API: {api}/api/v1/violations  (OpenAPI: {api}/api/v1/openapi.json)\n  admin token:   {admin}\n\n  curl -s -H 'Authorization: Bearer {admin}' '{api}/api/v1/violations?status=open' | python3 -m json.tool\n  curl -s -H 'Authorization: Bearer {admin}' {api}/api/v1/stats/heatmap\n\nNow move the customer export out of Downloads into its project folder:\n  mv {tree}/{MOVE_FROM} {tree}/{MOVE_TO}\nIts `misplaced` violation resolves; as the file is not encrypted, an `unencrypted` one opens\nin its new place. Ctrl-C stops the demo.\n",
        tree = tree.display()
    );

    if !check {
        // Forward both processes' logs until they stop (Ctrl-C reaches them too).
        for line in output {
            eprintln!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let logs = std::thread::spawn(move || output.into_iter().collect::<Vec<_>>());
    let wait_for = |what: &str, done: &dyn Fn(&[Seen]) -> bool| -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = violations(&api, &admin).unwrap_or_default();
            if done(&seen) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; the collector holds {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let tree_text = tree.display().to_string();
    let has = |seen: &[Seen], rel: &str, kind: &str, status: &str| {
        seen.iter()
            .any(|(p, k, s)| p == &format!("{tree_text}/{rel}") && k == kind && s == status)
    };
    let outcome = wait_for("every expected violation", &|seen| {
        EXPECTED
            .iter()
            .all(|(rel, kind)| has(seen, rel, kind, "open"))
    })
    .and_then(|()| {
        let to = tree.join(MOVE_TO);
        std::fs::rename(tree.join(MOVE_FROM), &to)?;
        wait_for("the moved file's violation to resolve", &|seen| {
            has(seen, MOVE_FROM, "misplaced", "resolved")
        })
    });
    drop(_agent);
    drop(_collector);
    match outcome {
        Ok(()) => {
            println!(
                "demo check: {} violations arrived; the moved file's resolved",
                EXPECTED.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for line in logs.join().unwrap_or_default() {
                eprintln!("{line}");
            }
            eprintln!("demo check failed: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}
