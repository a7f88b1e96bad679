//! Ingest benchmark: signed, batched ingest into the real `infoledger-server` over loopback,
//! next to the same load against an unsigned no-op endpoint in the same run.
//!
//! `cargo bench -p infoledger-server --bench ingest` starts the collector binary (a separate
//! process, database under Cargo's target temp folder, i.e. on disk, `synchronous=FULL`), enrolls
//! one agent per connection, and has every connection send its agent's batches one after
//! another (HTTP/1.1 keep-alive). Every request is signed and built before the clock starts, so
//! the figures are the server's, not the load generator's. The baseline is this same program
//! re-started as a minimal axum server (`--noop-server`, a separate process like the collector)
//! whose one route reads the body and answers a constant: what HTTP alone costs on this machine.
//!
//! Each event opens a violation on a new path: the heaviest kind of event for the store (an
//! event row, a violation row and a history row). `INGEST_CONNECTIONS` (8), `INGEST_BATCH`
//! (500 events) and `INGEST_BATCHES` (batches per connection, 40) change the load;
//! `INGEST_KIND=resolved` sends resolutions of files never reported instead (stored in the event
//! log, looked up, no violation written), which separates the event log's cost from the
//! violations'. Without
//! `--bench` (as `cargo test --all-targets` runs it) it sends 2 × 2 batches of 50 events, as a
//! smoke test of the bench itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly.

use axum::body::Bytes;
use axum::routing::post;
use chrono::Utc;
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{Event, EventBody, Store};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOOP_FLAG: &str = "--noop-server";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == NOOP_FLAG) {
        noop_server();
        return;
    }
    // `cargo bench` passes `--bench`; without it this is a quick smoke test.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (connections, batch_size, batches) = if measuring {
        (
            env_number("INGEST_CONNECTIONS", 8).max(1),
            env_number("INGEST_BATCH", 500).max(1),
            env_number("INGEST_BATCHES", 40).max(1),
        )
    } else {
        (2, 50, 2)
    };

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-ingest");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n",
    )
    .unwrap();
    let token = {
        let store = Store::open(&dir.join("collector.db")).unwrap();
        let uses = u32::try_from(connections).unwrap();
        store.create_enroll_token(Some(uses), None).unwrap()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let (mut collector, collector_addr) = spawn(
        Command::new(env!("CARGO_BIN_EXE_infoledger-server"))
            .args(["serve", "--config"])
            .arg(&config),
    );
    let (mut noop, noop_addr) =
        spawn(Command::new(std::env::current_exe().unwrap()).arg(NOOP_FLAG));

    let agents = runtime.block_on(enroll(&client, collector_addr, &token, connections));
    let started = Instant::now();
    let plans: Vec<Vec<Request>> = agents
        .iter()
        .map(|agent| {
            (0..batches)
                .map(|b| {
                    let first = (b * batch_size) as u64 + 1;
                    signed(agent, first..=first + batch_size as u64 - 1)
                })
                .collect()
        })
        .collect();
    let prepared = started.elapsed();
    let total_events = connections * batches * batch_size;
    let body_bytes = plans[0][0].body.len();

    let baseline = runtime.block_on(drive(&client, noop_addr, "/api/v1/noop", &plans));
    let cpu_before = cpu_seconds(collector.id());
    let ingest = runtime.block_on(drive(&client, collector_addr, "/api/v1/events", &plans));
    let cpu_after = cpu_seconds(collector.id());
    let expected = (batches * batch_size) as u64;
    for (agent, last) in agents.iter().zip(&ingest.last_answers) {
        assert_eq!(*last, expected, "agent {} was not fully stored", agent.id);
    }
    let metrics = runtime.block_on(async {
        client
            .get(format!("http://{collector_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let sample = |name: &str| -> String {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or("?")
            .to_owned()
    };
    let transactions = sample("infoledger_store_transactions_total");
    let batches_committed = sample("infoledger_ingest_batches_total{outcome=\"committed\"}");

    println!(
        "ingest over loopback: {connections} connections x {batches} batches x {batch_size} events = {total_events} events ({} KiB per request; {} requests prepared in {:.1} s)",
        body_bytes / 1024,
        connections * batches,
        prepared.as_secs_f64()
    );
    baseline.print("no-op (unsigned, not stored)", total_events);
    ingest.print("ingest (signed, stored)     ", total_events);
    println!(
        "  ratio ingest/no-op: {:.2} of the baseline's events/s",
        (total_events as f64 / ingest.elapsed.as_secs_f64())
            / (total_events as f64 / baseline.elapsed.as_secs_f64())
    );
    println!(
        "  collector: {batches_committed} batches in {transactions} transactions (group commit)"
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per_event = |s: f64| s / total_events as f64 * 1e6;
        println!(
            "  collector CPU per event: {:.1} us in all ({:.1} us in the writer thread), i.e. {:.0} events/s per busy core for the writer",
            per_event(after.0 - before.0),
            per_event(after.1 - before.1),
            total_events as f64 / (after.1 - before.1).max(1e-9)
        );
    }
    println!("  target: >= 150000 events/s on 2 cores");
    if !measuring {
        println!("(test mode: a small load; `cargo bench` measures)");
    }

    for child in [&mut collector, &mut noop] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// CPU time (user + system, seconds) of a process and of its ingest writer thread, from /proc
/// (Linux; `None` elsewhere). CPU time, unlike events/s, does not depend on what else the
/// machine is running.
fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    // Fields 14 and 15 of `stat` (after the parenthesised name) in clock ticks of 1/100 s.
    let ticks = |stat: &str| -> Option<f64> {
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let user: f64 = fields.get(11)?.parse().ok()?;
        let system: f64 = fields.get(12)?.parse().ok()?;
        Some((user + system) / 100.0)
    };
    let process = ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut writer = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim() == "infoledger-inge" {
            writer += ticks(&std::fs::read_to_string(path.join("stat")).ok()?)?;
        }
    }
    Some((process, writer))
}

/// Starts a server process and reads its `listening on ADDR` line.
fn spawn(command: &mut Command) -> (Child, SocketAddr) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("INFOLEDGER_LOG")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// The no-op baseline: the same runtime set-up and body limit as the collector, one route that
/// reads the body and answers a constant JSON.
fn noop_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app =
            axum::Router::new()
                .route(
                    "/api/v1/noop",
                    post(|body: Bytes| async move {
                        axum::Json(json!({ "stored_through": body.len() }))
                    }),
                )
                .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        eprintln!("listening on {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

struct Agent {
    id: String,
    secret: String,
}

async fn enroll(client: &reqwest::Client, addr: SocketAddr, token: &str, n: usize) -> Vec<Agent> {
    let mut agents = Vec::with_capacity(n);
    for i in 0..n {
        let body =
            json!({"token": token, "hostname": format!("bench-{i}.example"), "version": "0.1.0"});
        let answer: Value = serde_json::from_str(
            &client
                .post(format!("http://{addr}/api/v1/enroll"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        agents.push(Agent {
            id: answer["agent_id"].as_str().unwrap().to_owned(),
            secret: answer["secret"].as_str().unwrap().to_owned(),
        });
    }
    agents
}

/// One request, ready to send.
struct Request {
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn signed(agent: &Agent, seqs: std::ops::RangeInclusive<u64>) -> Request {
    let resolutions = std::env::var("INGEST_KIND").is_ok_and(|k| k == "resolved");
    let events: Vec<Event> = seqs
        .map(|seq| Event {
            seq,
            at: Utc::now(),
            body: if resolutions {
                EventBody::ViolationResolved {
                    path: format!("/home/dev/Downloads/project-{seq}/offer-{seq}.docx"),
                    kind: Kind::Misplaced,
                }
            } else {
                EventBody::ViolationOpened {
                    path: format!("/home/dev/Downloads/project-{seq}/offer-{seq}.docx"),
                    kind: Kind::Misplaced,
                    severity: Severity::High,
                    label: Some("confidential".into()),
                    asset: Some("ACME-2026".into()),
                    department: Some(format!("dept-{}", seq % 7)),
                    rule: Some("rules.forbidden: **/Downloads/**".into()),
                    message: "a confidential file lies in a forbidden location (Downloads)".into(),
                    fix: "move it into the asset's project folder or delete it".into(),
                    host: "dev-17.example".into(),
                }
            },
        })
        .collect();
    let body = json!({ "events": events }).to_string().into_bytes();
    let parts = RequestParts::new("POST", "/api/v1/events", &agent.id, &body).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let headers = sign(agent.secret.as_bytes(), &parts, &stamp)
        .pairs()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Request {
        headers,
        body: Bytes::from(body),
    }
}

struct Outcome {
    elapsed: Duration,
    latencies: Vec<Duration>,
    last_answers: Vec<u64>,
}

impl Outcome {
    fn print(&self, what: &str, events: usize) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        println!(
            "  {what}: {:>9.0} events/s, {:>6.0} requests/s, latency p50 {:.1} ms, p99 {:.1} ms ({:.2} s)",
            events as f64 / self.elapsed.as_secs_f64(),
            sorted.len() as f64 / self.elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            self.elapsed.as_secs_f64()
        );
    }
}

/// Sends every plan on its own connection concurrently, each plan's requests in order.
async fn drive(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    plans: &[Vec<Request>],
) -> Outcome {
    let url = format!("http://{addr}{path}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for plan in plans {
        let requests: Vec<(Vec<(String, String)>, Bytes)> = plan
            .iter()
            .map(|r| (r.headers.clone(), r.body.clone()))
            .collect();
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests.len());
            let mut last = 0;
            for (headers, body) in requests {
                let sent = Instant::now();
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                latencies.push(sent.elapsed());
                assert!(status.is_success(), "{status}: {text}");
                last = serde_json::from_str::<Value>(&text).unwrap()["stored_through"]
                    .as_u64()
                    .unwrap();
            }
            (latencies, last)
        }));
    }
    let mut latencies = Vec::new();
    let mut last_answers = Vec::new();
    for task in tasks {
        let (l, last) = task.await.unwrap();
        latencies.extend(l);
        last_answers.push(last);
    }
    Outcome {
        elapsed: started.elapsed(),
        latencies,
        last_answers,
    }
}
