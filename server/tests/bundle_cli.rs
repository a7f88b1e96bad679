//! The real `infoledger-server` binary in temp folders: `policy|ledger import|export` and
//! `bundle show` (diagnostics printed as the agent prints them, exit 2, nothing stored), and
//! `serve` importing `policy_file`/`ledger_file` at start and serving the signed bundle to an
//! enrolled agent on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::Utc;
use infoledger_policies::wire::bundle::{decode_public_key, SignedBundle};
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Bundle, EXAMPLE_LEDGER, EXAMPLE_POLICY};
use infoledger_server::store::bundle::EMPTY_LEDGER;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infoledger-server");
/// How long a server may take to start or stop; generous for loaded CI machines.
const PATIENCE: Duration = Duration::from_secs(20);
/// A ledger with two problems: an unknown label (line 6, column 9) and an unknown key (line 8).
const BAD_LEDGER: &str = "[[asset]]\nid = \"A\"\nname = \"a\"\ndepartment = \"d\"\nadministrator = \"x\"\nlabel = \"topsecret\"\nlocations = [\"/a/**\"]\ncolour = 1\n";
const CSV_LEDGER: &str = "id,name,department,administrator,label,locations\nC-1,From CSV,Sales,dave@example.com,internal,/srv/csv/**\n";

fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("bundle_cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    write(
        dir,
        "server.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n{extra}"
        ),
    )
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("INFOLEDGER_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The diagnostics the agent would print for this policy and ledger (`{LoadError}`).
fn agent_diagnostics(policy: &Path, ledger: &Path) -> String {
    Bundle::from_texts(
        &std::fs::read_to_string(policy).unwrap(),
        policy,
        &std::fs::read_to_string(ledger).unwrap(),
        ledger,
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn imports_validate_like_the_agent_and_exports_round_trip() {
    let dir = workdir("import_export");
    let config = write_config(&dir, "");
    let policy = write(&dir, "policy.toml", EXAMPLE_POLICY);
    let bad = write(&dir, "bad.toml", BAD_LEDGER);
    let csv = write(&dir, "assets.csv", CSV_LEDGER);
    let arg = |p: &Path| p.to_str().unwrap().to_owned();

    let out = run(&config, &["ledger", "import", &arg(&csv)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("import a policy first"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&config, &["policy", "import", &arg(&policy)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "policy imported from {}: bundle version 1\n",
            policy.display()
        )
    );

    // Every problem, located in the file as named, exactly as the agent prints them.
    let out = run(&config, &["ledger", "import", &arg(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}\nerror: 2 problems found; nothing was stored\n",
            agent_diagnostics(&policy, &bad)
        )
    );
    let first = text(&out.stderr).lines().next().unwrap().to_owned();
    assert!(
        first.starts_with(&format!("{}:6:9: error: ", bad.display())),
        "{first}"
    );

    let out = run(&config, &["ledger", "import", &arg(&csv)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("bundle version 2\n"));
    let out = run(&config, &["ledger", "import", &arg(&csv)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!(
            "unchanged: {} is already the ledger of bundle version 2\n",
            csv.display()
        )
    );

    let out = run(&config, &["ledger", "export"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), CSV_LEDGER.to_owned())
    );
    let out = run(&config, &["ledger", "export", "--version", "1"]);
    assert_eq!(text(&out.stdout), EMPTY_LEDGER);
    let out = run(&config, &["policy", "export"]);
    assert_eq!(text(&out.stdout), EXAMPLE_POLICY);
    let out = run(&config, &["policy", "export", "--version", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no bundle version 7"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&config, &["bundle", "show"]);
    assert_eq!(out.status.code(), Some(0));
    let rows: Vec<Vec<String>> = text(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(4).map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{}", text(&out.stdout));
    assert_eq!(
        (
            rows[0][0].as_str(),
            rows[0][2].as_str(),
            rows[0][3].as_str()
        ),
        ("2", "cli", "ledger")
    );
    assert_eq!(
        (
            rows[1][0].as_str(),
            rows[1][2].as_str(),
            rows[1][3].as_str()
        ),
        ("1", "cli", "policy")
    );
    assert!(
        text(&out.stdout).contains("assets.csv ("),
        "{}",
        text(&out.stdout)
    );

    let out = run(&config, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("audit trail intact: 2 entries"),
        "{}",
        text(&out.stdout)
    );
}

/// A running `serve`; killed (and reaped) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(config: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("INFOLEDGER_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: rx,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        server.addr = addr.parse().unwrap();
                        return server;
                    }
                    seen.push(line);
                }
                Err(_) => panic!("no `listening on` line within {PATIENCE:?}; stderr: {seen:#?}"),
            }
        }
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let rest: Vec<String> = self.stderr.try_iter().collect();
                assert_eq!(status.code(), Some(0), "stderr: {rest:#?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server still running after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (version, actor, change) of every bundle version, newest first, from `bundle show`.
fn versions(config: &Path) -> Vec<(u64, String, String)> {
    let out = run(config, &["bundle", "show"]);
    assert_eq!(out.status.code(), Some(0));
    text(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[2].to_owned(), f[3].to_owned())
        })
        .collect()
}

/// Enrolls with a fresh token and fetches the bundle with a signed GET; returns it verified.
async fn enroll_and_fetch(config: &Path, addr: SocketAddr) -> (u64, String) {
    let out = run(config, &["enroll-token", "create"]);
    let token = text(&out.stdout).trim().to_owned();
    let client = reqwest::Client::new();
    let enrolled: Value = client
        .post(format!("http://{addr}/api/v1/enroll"))
        .header("content-type", "application/json")
        .body(json!({"token": token, "hostname": "build-01", "version": "0.1.0"}).to_string())
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let agent = enrolled["agent_id"].as_str().unwrap();
    let secret = enrolled["secret"].as_str().unwrap();
    let public_key = decode_public_key(enrolled["bundle_public_key"].as_str().unwrap()).unwrap();
    let parts = RequestParts::new("GET", "/api/v1/bundle", agent, b"").unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let mut request = client
        .get(format!("http://{addr}/api/v1/bundle"))
        .timeout(PATIENCE);
    for (name, value) in sign(secret.as_bytes(), &parts, &stamp).pairs() {
        request = request.header(name, value.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let signed: SignedBundle = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let document = signed.verify(&public_key).unwrap();
    document.load().unwrap();
    assert_eq!(etag, format!("\"{}\"", document.version));
    (document.version, document.ledger.text)
}

#[tokio::test]
async fn serve_imports_the_configured_files_when_they_change_and_keeps_later_imports() {
    let dir = workdir("config_files");
    let config = write_config(
        &dir,
        "policy_file = \"policy.toml\"\nledger_file = \"ledger.toml\"\n",
    );
    write(&dir, "policy.toml", EXAMPLE_POLICY);
    let ledger = write(&dir, "ledger.toml", EXAMPLE_LEDGER);

    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let server = Server::start(&config);
    assert_eq!(
        enroll_and_fetch(&config, server.addr).await,
        (1, EXAMPLE_LEDGER.to_owned())
    );
    server.stop();
    assert_eq!(
        versions(&config),
        [(1, "config".to_owned(), "both".to_owned())]
    );

    // An administrator's later import survives restarts while the file stays as it was.
    let edited = write(
        &dir,
        "edited.toml",
        &format!("{EXAMPLE_LEDGER}\n# edited\n"),
    );
    let out = run(&config, &["ledger", "import", edited.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Server::start(&config).stop();
    assert_eq!(versions(&config).len(), 2);
    assert_eq!(versions(&config)[0].1, "cli");

    // The file changes: it is imported at the next start.
    let changed = format!("{EXAMPLE_LEDGER}\n# new in the package\n");
    write(&dir, "ledger.toml", &changed);
    let server = Server::start(&config);
    assert_eq!(enroll_and_fetch(&config, server.addr).await, (3, changed));
    server.stop();
    assert_eq!(
        versions(&config)[0],
        (3, "config".to_owned(), "ledger".to_owned())
    );

    // A broken file stops `validate` and `serve` with its problems; nothing is stored.
    std::fs::write(&ledger, BAD_LEDGER).unwrap();
    let want_first = format!("{}:6:9: error: ", ledger.display());
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&want_first),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("INFOLEDGER_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&want_first), "{stderr}");
    assert!(
        stderr.contains("error: 2 problems found; nothing was stored"),
        "{stderr}"
    );
    assert_eq!(versions(&config).len(), 3);
}

#[test]
fn config_errors_in_the_new_keys_point_at_line_and_column() {
    let dir = workdir("config_errors");
    let cases = [
        ("[rules]\ninterval = \"soon\"\n", ":5:12: ", "invalid duration"),
        ("[drift]\nempty_after = \"0d\"\n", ":5:15: ", "between 1s and 10 years"),
        ("[webhook]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n", ":5:7: ", "http:// or https://"),
        ("[webhook]\nurl = \"https://x.example\"\nsecret = \"short\"\n", ":6:10: ", "at least 16 bytes"),
        ("[webhook]\nurl = \"https://x.example\"\n", ":5:7: ", "needs `secret_file`"),
        ("[webhook]\nurl = \"https://x.example\"\nsecret = \"0123456789abcdef\"\nevents = [\"resolved\"]\n", ":7:11: ", "unknown webhook event"),
        ("[webhook]\nurl = \"https://x.example\"\nsecret = \"0123456789abcdef\"\nretries = -1\n", ":7:11: ", "between 0 and 1000"),
    ];
    for (extra, at, message) in cases {
        let config = write_config(&dir, extra);
        let out = run(&config, &["validate"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(&format!("server.toml{at}")),
            "{extra:?}: {stderr}"
        );
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
    let config = write_config(
        &dir,
        "[webhook]\nurl = \"https://x.example\"\nsecret_file = \"missing.secret\"\n",
    );
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read webhook secret file"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_announces_a_critical_violation_to_the_webhook_and_retries_a_failed_attempt() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    // A receiver that fails its first request.
    let seen: Arc<Mutex<Vec<(HeaderMap, axum::body::Bytes)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = Arc::clone(&seen);
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body));
                if seen.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = workdir("webhook");
    write(&dir, "webhook.secret", "0123456789abcdef0123\n");
    let config = write_config(
        &dir,
        &format!(
            "[rules]\ninterval = \"1s\"\n[webhook]\nurl = \"http://{hook}/hook\"\nsecret_file = \"webhook.secret\"\nevents = [\"critical_opened\"]\nretry_delay = \"1s\"\n"
        ),
    );
    let server = Server::start(&config);
    let token = text(&run(&config, &["enroll-token", "create"]).stdout)
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    let enrolled: Value = serde_json::from_slice(
        &client
            .post(format!("http://{}/api/v1/enroll", server.addr))
            .header("content-type", "application/json")
            .body(json!({"token": token, "hostname": "ws-1", "version": "0.1.0"}).to_string())
            .timeout(PATIENCE)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let agent = enrolled["agent_id"].as_str().unwrap();
    let secret = enrolled["secret"].as_str().unwrap();
    let body = json!({"events": [{"seq": 1, "at": "2026-03-01T09:00:00Z", "body": {
        "type": "violation_opened", "path": "/tmp/payroll.xlsx", "kind": "misplaced",
        "severity": "critical", "label": "secret", "asset": "HR-PERSONNEL",
        "department": "Human Resources", "message": "secret file in /tmp", "fix": "move it",
        "host": "ws-1"}}]})
    .to_string();
    let deadline = Instant::now() + PATIENCE;
    let parts = RequestParts::new("POST", "/api/v1/events", agent, body.as_bytes()).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let mut request = client
        .post(format!("http://{}/api/v1/events", server.addr))
        .header("content-type", "application/json")
        .body(body.clone())
        .timeout(PATIENCE);
    for (name, value) in sign(secret.as_bytes(), &parts, &stamp).pairs() {
        request = request.header(name, value.to_string());
    }
    assert_eq!(request.send().await.unwrap().status(), 200);

    while seen.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the webhook got {} requests within {PATIENCE:?}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
    receiver.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "exactly one retry, then delivered");
    for (attempt, (headers, body)) in seen.iter().enumerate() {
        let signature = headers["x-infoledger-webhook-signature"].to_str().unwrap();
        assert!(infoledger_server::webhook::verify_signature(
            b"0123456789abcdef0123",
            body,
            signature
        ));
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["event"], "critical_opened");
        assert_eq!(json["attempt"], attempt + 1);
        assert_eq!(json["violation"]["path"], "/tmp/payroll.xlsx");
        assert_eq!(json["violation"]["agent"], agent);
    }
    assert_eq!(
        seen[0].0["x-infoledger-webhook-delivery"],
        seen[1].0["x-infoledger-webhook-delivery"]
    );
}
