//! Operating the real `infoledger-server` binary: a batch in flight survives a graceful
//! shutdown, `kill -9` in the middle of ingest loses no acknowledged event, HTTPS with a
//! configured certificate (and its configuration errors), and `backup` while agents send.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infoledger-server");
/// How long a server may take to start, answer or stop; generous for loaded CI machines.
const PATIENCE: Duration = Duration::from_secs(30);

fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ops")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

/// A running `serve` with DEBUG logs; killed (and reaped) when dropped.
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
            .env("INFOLEDGER_LOG", "infoledger_server=debug")
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
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: rx,
        };
        let line = server.wait_for_line(|l| l.starts_with("listening on "));
        server.addr = line["listening on ".len()..].parse().unwrap();
        server
    }

    /// Waits (bounded) for a stderr line matching `wanted` and returns it.
    fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no such line within {PATIENCE:?}; stderr: {seen:#?}"),
            }
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Waits (bounded) for the process to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server still running");
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

/// The head of an HTTP/1.1 POST (`Connection: close`).
fn post_head(addr: SocketAddr, path: &str, headers: &[(&str, &str)], length: usize) -> String {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads a whole `Connection: close` answer and returns its status and JSON body.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<(u16, Value)> {
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = text(&response);
    let bad = |what: &str| std::io::Error::other(format!("{what}: {response:?}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let json = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
    Ok((status, json))
}

/// A POST over loopback; any network failure is an error, not a panic (servers get killed).
fn try_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    stream.write_all(post_head(addr, path, headers, body.len()).as_bytes())?;
    stream.write_all(body)?;
    read_answer(&mut stream)
}

#[derive(Debug, Clone)]
struct Agent {
    id: String,
    secret: String,
}

/// Issues an enrollment token with the CLI (while the server runs) and enrolls `n` agents.
fn enroll(server: &Server, config: &Path, n: u32) -> Vec<Agent> {
    let uses = n.to_string();
    let out = run(&[
        "enroll-token",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--uses",
        &uses,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    (0..n)
        .map(|i| {
            let body =
                json!({"token": token, "hostname": format!("host{i}.example"), "version": "0.1.0"});
            let (status, body) = try_post(
                server.addr,
                "/api/v1/enroll",
                &[],
                body.to_string().as_bytes(),
            )
            .unwrap();
            assert_eq!(status, 201, "{body}");
            Agent {
                id: body["agent_id"].as_str().unwrap().to_owned(),
                secret: body["secret"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

/// A batch body of "violation opened" events `seqs`, one file per sequence number.
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

/// Signature headers for `body` posted to /api/v1/events by `agent`, now, with a fresh nonce.
fn signature(agent: &Agent, body: &[u8]) -> Vec<(String, String)> {
    let parts = RequestParts::new("POST", "/api/v1/events", &agent.id, body).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    sign(agent.secret.as_bytes(), &parts, &stamp)
        .pairs()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn send_events(addr: SocketAddr, agent: &Agent, body: &[u8]) -> std::io::Result<(u16, Value)> {
    let headers = signature(agent, body);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    try_post(addr, "/api/v1/events", &headers, body)
}

/// Counts an agent's stored events with sequence numbers in `1..=through`, and its violations.
fn stored(db: &Path, agent: &str, through: u64) -> (u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let events: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE agent_id = ?1 AND seq <= ?2",
            (agent, through as i64),
            |r| r.get(0),
        )
        .unwrap();
    let violations: i64 = conn
        .query_row(
            "SELECT count(*) FROM violations WHERE agent_id = ?1",
            [agent],
            |r| r.get(0),
        )
        .unwrap();
    (events as u64, violations as u64)
}

#[test]
fn sigterm_lets_a_batch_in_flight_finish_and_stores_it_before_exiting_0() {
    let dir = workdir("drain");
    let config = write_config(&dir, "");
    let mut server = Server::start(&config);
    let agent = enroll(&server, &config, 1).remove(0);

    // The request head and half the body go out; the server has started on the request when it
    // logs so. Only then comes SIGTERM, and only after the server announced the shutdown does
    // the rest of the body follow: the batch is in flight across the whole shutdown.
    let body = batch(1..=200);
    let headers = signature(&agent, &body);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream
        .write_all(post_head(server.addr, "/api/v1/events", &headers, body.len()).as_bytes())
        .unwrap();
    stream.write_all(first).unwrap();
    server.wait_for_line(|l| l.contains("request started") && l.contains("route=/api/v1/events"));
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server.wait_for_line(|l| l.contains("shutting down"));

    // New connections are refused from now on (bounded wait for the listener to close).
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(server.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }

    stream.write_all(rest).unwrap();
    let (status, answer) = read_answer(&mut stream).unwrap();
    assert_eq!((status, answer), (200, json!({"stored_through": 200})));
    let exit = server.wait();
    assert_eq!(exit.code(), Some(0), "{exit}");

    let store = Store::open(&dir.join("collector.db")).unwrap();
    assert_eq!(store.stored_events(&agent.id).unwrap(), 200);
    assert_eq!(store.agent(&agent.id).unwrap().unwrap().contiguous_seq, 200);
}

#[test]
fn kill_9_in_the_middle_of_ingest_loses_no_acknowledged_event_and_resending_duplicates_nothing() {
    const AGENTS: u32 = 3;
    const BATCH: u64 = 50;
    const ACKED_BEFORE_KILL: u64 = 400;
    let dir = workdir("kill9");
    let db = dir.join("collector.db");
    let config = write_config(&dir, "");
    let server = Server::start(&config);
    let agents = enroll(&server, &config, AGENTS);

    // One sender per agent, batch after batch, until the server is gone. Each remembers the
    // highest `stored_through` it was told and the highest sequence it ever sent.
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = agents
        .iter()
        .map(|agent| {
            let (agent, addr, stop) = (agent.clone(), server.addr, Arc::clone(&stop));
            let acked = Arc::new(AtomicU64::new(0));
            let seen = Arc::clone(&acked);
            let thread = std::thread::spawn(move || {
                let mut next = 1;
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let last = next + BATCH - 1;
                    sent = last;
                    match send_events(addr, &agent, &batch(next..=last)) {
                        Ok((200, answer)) => {
                            let through = answer["stored_through"].as_u64().unwrap();
                            assert_eq!(through, last, "{answer}");
                            seen.store(through, Ordering::SeqCst);
                            next = last + 1;
                        }
                        Ok((status, answer)) => panic!("{status}: {answer}"),
                        Err(_) => break, // the server was killed
                    }
                }
                sent
            });
            (acked, thread)
        })
        .collect();

    let deadline = Instant::now() + PATIENCE;
    while senders
        .iter()
        .any(|(acked, _)| acked.load(Ordering::SeqCst) < ACKED_BEFORE_KILL)
    {
        assert!(
            Instant::now() < deadline,
            "ingest too slow to reach the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(server); // SIGKILL, while the senders keep sending
    stop.store(true, Ordering::Relaxed);
    let outcome: Vec<(u64, u64)> = senders
        .into_iter()
        .map(|(acked, thread)| {
            let sent = thread.join().unwrap();
            (acked.load(Ordering::SeqCst), sent)
        })
        .collect();

    // Before anything is re-sent: every acknowledged event is there, exactly once, and applied.
    // (A batch committed but not yet answered when the kill came may be there too.)
    let mut marks = Vec::new();
    for (agent, (acked, sent)) in agents.iter().zip(&outcome) {
        assert!(*acked >= ACKED_BEFORE_KILL);
        let (events, _) = stored(&db, &agent.id, *acked);
        assert_eq!(events, *acked, "agent {}", agent.id);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mark: i64 = conn
            .query_row(
                "SELECT contiguous_seq FROM agents WHERE id = ?1",
                [&agent.id],
                |r| r.get(0),
            )
            .unwrap();
        let mark = mark as u64;
        assert!(
            mark >= *acked && mark <= *sent,
            "{mark} outside {acked}..={sent}"
        );
        assert_eq!(
            stored(&db, &agent.id, *sent),
            (mark, mark),
            "agent {}",
            agent.id
        );
        marks.push(mark);
    }

    // After a restart, re-sending everything ever sent leaves exactly one copy of each event.
    let mut server = Server::start(&config);
    for ((agent, (_, sent)), mark) in agents.iter().zip(&outcome).zip(&marks) {
        let mut from = 1;
        while from <= *sent {
            let last = (from + BATCH - 1).min(*sent);
            let (status, answer) = send_events(server.addr, agent, &batch(from..=last)).unwrap();
            let expected = last.max(*mark);
            assert_eq!((status, answer), (200, json!({"stored_through": expected})));
            from = last + 1;
        }
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait().code(), Some(0));
    let store = Store::open(&db).unwrap();
    for (agent, (_, sent)) in agents.iter().zip(&outcome) {
        assert_eq!(store.stored_events(&agent.id).unwrap(), *sent);
        assert_eq!(stored(&db, &agent.id, *sent), (*sent, *sent));
        assert_eq!(
            store.agent(&agent.id).unwrap().unwrap().contiguous_seq,
            *sent
        );
    }
}

/// A self-signed certificate for `localhost` and its key, as PEM.
fn self_signed() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (generated.cert.pem(), generated.signing_key.serialize_pem())
}

fn tls_config(dir: &Path, cert: &str, key: &str) -> PathBuf {
    for (name, pem) in [("cert.pem", cert), ("key.pem", key)] {
        std::fs::write(dir.join(name), pem).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    write_config(
        dir,
        "tls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_with_the_configured_certificate_and_plain_http_gets_no_answer() {
    let dir = workdir("tls");
    let (cert, key) = self_signed();
    let config = tls_config(&dir, &cert, &key);
    let mut server = Server::start(&config);
    let port = server.addr.port();

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .resolve("localhost", server.addr)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let response = trusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap(),
        json!({"status": "ok"})
    );

    // A client that does not trust this certificate is refused during the handshake, so the
    // answer above came over TLS with the configured certificate.
    let (other, _) = self_signed();
    let distrusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(other.as_bytes()).unwrap())
        .resolve("localhost", server.addr)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let err = distrusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let addr = server.addr;
    let plain = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(!plain.starts_with(b"HTTP/"), "{:?}", text(&plain));

    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait().code(), Some(0));
}

#[test]
fn tls_problems_are_reported_at_the_configuration_line_with_exit_2() {
    let dir = workdir("tls_errors");
    let (cert, key) = self_signed();
    let (_, other_key) = self_signed();
    // (cert file content, key file content, expected position and message)
    let cases: [(Option<&str>, &str, &str, &str); 5] = [
        (None, &key, ":4:17: ", "cannot read `tls_cert_file`"),
        (Some("hello\n"), &key, ":4:17: ", "holds no PEM certificate"),
        (Some(&cert), &cert, ":5:16: ", "holds no PEM private key"),
        (
            Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            &key,
            ":4:17: ",
            "is not valid PEM",
        ),
        (
            Some(&cert),
            &other_key,
            ":5:16: ",
            "does not match the certificate",
        ),
    ];
    for (cert_pem, key_pem, at, message) in cases {
        let config = tls_config(&dir, cert_pem.unwrap_or(""), key_pem);
        if cert_pem.is_none() {
            std::fs::remove_file(dir.join("cert.pem")).unwrap();
        }
        for command in ["validate", "serve"] {
            let out = run(&[command, "--config", config.to_str().unwrap()]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {message}: {stderr}");
            let expected = format!("error: {}{at}", config.display());
            assert!(
                stderr.starts_with(&expected),
                "{command} {message}: {stderr}"
            );
            assert!(stderr.contains(message), "{command} {message}: {stderr}");
        }
    }
    // A folder where a file belongs cannot be read either.
    std::fs::remove_file(dir.join("cert.pem")).unwrap();
    std::fs::create_dir(dir.join("cert.pem")).unwrap();
    let out = run(&[
        "validate",
        "--config",
        dir.join("server.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(":4:17: cannot read `tls_cert_file`"));
    std::fs::remove_dir(dir.join("cert.pem")).unwrap();

    let config = tls_config(&dir, &cert, &key);
    let out = run(&["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("listen https://127.0.0.1:0"));
}

#[test]
fn backup_while_agents_send_writes_a_consistent_copy_and_never_overwrites() {
    let dir = workdir("backup");
    let config = write_config(&dir, "");
    let config_arg = config.to_str().unwrap();
    let mut server = Server::start(&config);
    let agent = enroll(&server, &config, 1).remove(0);

    // A sender keeps ingesting while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let sender = {
        let (agent, addr) = (agent.clone(), server.addr);
        let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
        std::thread::spawn(move || {
            let mut next = 1;
            while !stop.load(Ordering::Relaxed) {
                let last = next + 24;
                let (status, answer) = send_events(addr, &agent, &batch(next..=last)).unwrap();
                assert_eq!((status, answer), (200, json!({"stored_through": last})));
                acked.store(last, Ordering::SeqCst);
                next = last + 1;
            }
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while acked.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "ingest too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    let copy = dir.join("copy.db");
    let out = run(&[
        "backup",
        "--config",
        config_arg,
        "--to",
        copy.to_str().unwrap(),
    ]);
    let acked_after_backup = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("backup written to {}", copy.display())),
        "{stdout}"
    );

    // Self-contained: no WAL beside it, nothing left of the temporary file.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("copy") || n.contains("partial"))
        .collect();
    names.sort();
    assert_eq!(names, ["copy.db"]);

    // The copy is a snapshot taken during ingest: a whole number of batches, applied in full,
    // and the database it came from holds every row it holds.
    let backup = Store::open(&copy).unwrap();
    let mark = backup.agent(&agent.id).unwrap().unwrap().contiguous_seq;
    assert!(mark >= 100 && mark <= acked_after_backup, "{mark}");
    assert_eq!(mark % 25, 0);
    assert_eq!(stored(&copy, &agent.id, mark + 1000), (mark, mark));
    assert!(
        stdout.contains(&format!("{mark} violations, {mark} events")),
        "{stdout}"
    );
    let original = rusqlite::Connection::open(dir.join("collector.db")).unwrap();
    original
        .execute("ATTACH DATABASE ?1 AS copy", [copy.to_str().unwrap()])
        .unwrap();
    let missing: i64 = original
        .query_row(
            "SELECT count(*) FROM (SELECT * FROM copy.violations EXCEPT SELECT * FROM main.violations)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);
    drop(original);
    drop(backup);

    // An existing file is never overwritten.
    let before = std::fs::read(&copy).unwrap();
    let out = run(&[
        "backup",
        "--config",
        config_arg,
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait().code(), Some(0));
}
