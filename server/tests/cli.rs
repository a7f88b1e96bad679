//! The real `infoledger-server` binary in temp folders: `validate`, the server key file, and
//! `serve` end to end on port 0 (enroll, signed ingest, restart without loss or duplication,
//! graceful shutdown on SIGTERM, the manager API with a token from `token create` and the
//! configured service levels).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::Utc;
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{Event, EventBody, Store};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infoledger-server");
/// How long a server may take to start listening or to stop; generous for loaded CI machines.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh, empty folder for one test.
fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a configuration listening on a free loopback port, with relative paths.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("INFOLEDGER_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `serve`; killed (and reaped) when dropped, whatever the test did.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `serve` and waits (bounded) for its `listening on ADDR` line.
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
        // A thread keeps draining stderr so the server never blocks on a full pipe.
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
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: rx,
        };
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
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
                // Dropping `server` kills the child.
                Err(_) => panic!("no `listening on` line within {PATIENCE:?}; stderr: {seen:#?}"),
            }
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running {PATIENCE:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        http_post(self.addr, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 POST over loopback (`Connection: close`, so the answer ends at EOF).
fn http_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    http(addr, "POST", path, headers, body)
}

/// A minimal HTTP/1.1 request over loopback, answered with a length-delimited JSON body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = text(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads only length-delimited bodies: {head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    (status, json)
}

#[test]
fn validate_accepts_a_good_config() {
    let dir = workdir("validate_good");
    let config = write_config(&dir, "[limits]\nbody_bytes = 65536\n");
    let out = run(&["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("server key"), "{stdout}");
    assert!(stdout.contains("absent"), "{stdout}");
    // Validation writes nothing: no key, no database.
    assert!(!dir.join("server.key").exists());
    assert!(!dir.join("collector.db").exists());
}

#[test]
fn validate_points_at_the_bad_line_and_column_and_exits_2() {
    let dir = workdir("validate_bad");
    let cases = [
        ("[limits]\nbody_bytes = 12\n", ":5:14: ", "must be between"),
        ("colour = \"blue\"\n", ":4:1: ", "unknown field `colour`"),
        ("[limits]\nbody = 1\n", ":5:1: ", "unknown field `body`"),
        ("[limits\n", ":4:8: ", "unclosed table"),
        ("listen = \"127.0.0.1:1\"\n", ":4:1: ", "duplicate key"),
    ];
    for (extra, at, message) in cases {
        let config = write_config(&dir, extra);
        let out = run(&["validate", "--config", config.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        let expected = format!("error: {}{at}", config.display());
        assert!(stderr.starts_with(&expected), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    std::fs::write(
        dir.join("elsewhere.toml"),
        "database = \"no/such/folder/c.db\"\nserver_key_file = \"k\"\n",
    )
    .unwrap();
    let out = run(&[
        "validate",
        "--config",
        dir.join("elsewhere.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the folder of `database`") && stderr.contains("no/such/folder"),
        "{stderr}"
    );
    let out = run(&[
        "validate",
        "--config",
        dir.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config"));
}

#[test]
fn serve_creates_a_private_server_key_and_refuses_a_readable_one() {
    let dir = workdir("server_key");
    let config = write_config(&dir, "");
    let key = dir.join("server.key");
    let mut server = Server::start(&config);
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(meta.len() >= 32);
    assert!(server.terminate().success());
    let created = std::fs::read(&key).unwrap();

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["serve"][..], &["validate"][..]] {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("mode 0644"), "{args:?}: {stderr}");
        assert!(stderr.contains("chmod 600"), "{args:?}: {stderr}");
    }
    // The refused key was left alone.
    assert_eq!(std::fs::read(&key).unwrap(), created);
}

/// An enrolled agent's identity.
struct Agent {
    id: String,
    secret: String,
}

/// A batch body with "violation opened" events `seqs`.
fn batch(seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let events: Vec<Event> = seqs
        .map(|seq| Event {
            seq,
            at: Utc::now(),
            body: EventBody::ViolationOpened {
                path: format!("/home/a/Downloads/{seq}.docx"),
                kind: Kind::Misplaced,
                severity: Severity::High,
                label: Some("confidential".into()),
                asset: Some("ACME".into()),
                department: Some("sales".into()),
                rule: None,
                message: "misplaced".into(),
                fix: "move it".into(),
                host: "dev-17.example".into(),
            },
        })
        .collect();
    json!({ "events": events }).to_string().into_bytes()
}

/// Posts `body` to /api/v1/events signed now as `agent`, with a fresh nonce.
fn send_events(server: &Server, agent: &Agent, body: &[u8]) -> (u16, Value) {
    let parts = RequestParts::new("POST", "/api/v1/events", &agent.id, body).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let headers = sign(agent.secret.as_bytes(), &parts, &stamp);
    server.post("/api/v1/events", &headers.pairs(), body)
}

#[test]
fn serve_end_to_end_enrolls_ingests_survives_a_restart_and_stops_on_sigterm() {
    let dir = workdir("end_to_end");
    let config = write_config(&dir, "");
    let config_arg = config.to_str().unwrap();
    let mut server = Server::start(&config);

    // The token is issued while the server runs (the database is shared through WAL).
    let out = run(&[
        "enroll-token",
        "create",
        "--config",
        config_arg,
        "--uses",
        "2",
        "--expires-in",
        "1d",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(token.len() >= 43, "{token:?}");
    assert!(text(&out.stderr).contains("good for 2 enrollments until"));

    let enroll = json!({"token": token, "hostname": "dev-17.example", "version": "0.1.0"});
    let (status, body) = server.post("/api/v1/enroll", &[], enroll.to_string().as_bytes());
    assert_eq!(status, 201, "{body}");
    let agent = Agent {
        id: body["agent_id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    };

    let first = batch(1..=3);
    let (status, body) = send_events(&server, &agent, &first);
    assert_eq!((status, body), (200, json!({"stored_through": 3})));
    // A wrong secret is refused, so the success above means the signature was checked.
    let forger = Agent {
        id: agent.id.clone(),
        secret: "x".repeat(43),
    };
    let (status, body) = send_events(&server, &forger, &batch(4..=4));
    assert_eq!(status, 401, "{body}");

    assert!(server.terminate().success());
    drop(server);

    // After a restart the same key file is read, so the agent's secret still signs; the same
    // batch, signed again, stores nothing new, and the next one continues the sequence.
    let server = Server::start(&config);
    let (status, body) = send_events(&server, &agent, &first);
    assert_eq!((status, body), (200, json!({"stored_through": 3})));
    let (status, body) = send_events(&server, &agent, &batch(3..=5));
    assert_eq!((status, body), (200, json!({"stored_through": 5})));
    drop(server);

    let store = Store::open(&dir.join("collector.db")).unwrap();
    assert_eq!(store.stored_events(&agent.id).unwrap(), 5);
    assert_eq!(store.agent(&agent.id).unwrap().unwrap().contiguous_seq, 5);
}

#[test]
fn sigterm_stops_the_server_promptly_with_status_0() {
    let dir = workdir("sigterm");
    let config = write_config(&dir, "");
    let mut server = Server::start(&config);
    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = TcpStream::connect(server.addr).unwrap();
    let started = Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[test]
fn enroll_token_create_refuses_bad_arguments_with_exit_2() {
    let dir = workdir("token_args");
    let config = write_config(&dir, "");
    let config_arg = config.to_str().unwrap();
    for bad in [
        &["--uses", "0"][..],
        &["--expires-in", "7"][..],
        &["--expires-in", "0d"][..],
    ] {
        let mut args = vec!["enroll-token", "create", "--config", config_arg];
        args.extend_from_slice(bad);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
}

#[test]
fn serve_answers_the_manager_api_within_a_tokens_department_and_with_configured_slas() {
    let dir = workdir("manager_api");
    let config = write_config(
        &dir,
        "[sla]\ncritical = \"2h\"\ninfo = \"30d\"\n[agents]\nstale_after = \"5m\"\n",
    );
    let config_arg = config.to_str().unwrap();
    let server = Server::start(&config);
    let out = run(&["enroll-token", "create", "--config", config_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let enroll = json!({"token": token, "hostname": "dev-3.example", "version": "0.1.0"});
    let (status, body) = server.post("/api/v1/enroll", &[], enroll.to_string().as_bytes());
    assert_eq!(status, 201, "{body}");
    let agent = Agent {
        id: body["agent_id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    };
    // Three sales violations from `batch`, then one of hr.
    let (status, _) = send_events(&server, &agent, &batch(1..=3));
    assert_eq!(status, 200);
    let mut hr: Value = serde_json::from_slice(&batch(4..=4)).unwrap();
    hr["events"][0]["body"]["department"] = json!("hr");
    let (status, _) = send_events(&server, &agent, hr.to_string().as_bytes());
    assert_eq!(status, 200);

    let out = run(&[
        "token",
        "create",
        "--config",
        config_arg,
        "--name",
        "sam",
        "--role",
        "manager",
        "--department",
        "sales",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bearer = format!("Bearer {}", text(&out.stdout).trim());
    let auth = [("Authorization", bearer.as_str())];
    let get = |path: &str| http(server.addr, "GET", path, &auth, b"");

    let (status, list) = get("/api/v1/violations?limit=2");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["violations"].as_array().unwrap().len(), 2);
    let next = list["next"].as_str().unwrap();
    let (_, rest) = get(&format!("/api/v1/violations?limit=2&cursor={next}"));
    assert_eq!(rest["violations"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], Value::Null);
    let all: Vec<&Value> = list["violations"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["violations"].as_array().unwrap())
        .map(|v| &v["department"])
        .collect();
    assert_eq!(all, [&json!("sales"); 3]);

    let (status, remediation) = get("/api/v1/stats/remediation?days=90");
    assert_eq!(status, 200, "{remediation}");
    assert_eq!(remediation["sla_seconds"]["critical"], 7200);
    assert_eq!(remediation["sla_seconds"]["info"], 2_592_000);
    assert_eq!(remediation["departments"][0]["open"]["high"], 3);
    let (_, agents) = get("/api/v1/agents");
    assert_eq!(agents["stale_after_seconds"], 300);
    assert_eq!(agents["agents"][0]["stale"], false);
    let (status, denied) = http(server.addr, "GET", "/api/v1/violations", &[], b"");
    assert_eq!(
        (status, &denied["error"]["code"]),
        (401, &json!("unauthenticated"))
    );
}
