//! The dashboard in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against the real `infoledger-server` binary seeded through the real, signed agent API.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them); without
//! them the test fails and says so. Screenshots of every page are written under
//! `target/tmp/dashboard-browser/screenshots/`; with `INFOLEDGER_UPDATE_SCREENSHOTS=1` they are
//! also copied to `docs/screenshots/`, which README shows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, Duration, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use infoledger_policies::wire::events::{AssetFootprint, Footprint};
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{violation_id, Event, EventBody, Health};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_infoledger-server");
/// How long a process may take to say it is listening.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
/// The whole scenario's bound.
const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(85);
const XSS_PATH: &str = "/home/alice/Downloads/<script>alert(1)</script>.docx";
const FINANCE: &str = "Finance Systems";
const HR: &str = "Human Resources";
const RD: &str = "Research & Development";
const SALES: &str = "Sales";

/// Where a program is on `PATH`.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A child process killed when dropped, with its output lines on a channel.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` and waits (bounded) for a line starting with `prefix`; returns the rest.
    fn start(mut command: Command, from_stdout: bool, prefix: &str) -> (Process, String) {
        command.stdin(Stdio::null());
        if from_stdout {
            command.stdout(Stdio::piped()).stderr(Stdio::null());
        } else {
            command.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let output: Box<dyn std::io::Read + Send> = if from_stdout {
            Box::new(child.stdout.take().unwrap())
        } else {
            Box::new(child.stderr.take().unwrap())
        };
        // Keep draining, so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let process = Process { child, lines };
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match process.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.find(prefix).map(|i| &line[i + prefix.len()..]) {
                        let rest = rest.trim_end_matches('.').to_owned();
                        return (process, rest);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    panic!("{command:?} did not print `{prefix}` within {PATIENCE:?}: {seen:#?}")
                }
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `infoledger-server` command and returns its stdout.
fn server_command(args: &[&str], config: &Path) -> String {
    let output = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An enrolled agent sending signed events.
struct Agent {
    id: String,
    secret: String,
    seq: u64,
}

/// One seeded violation: on which agent, where, what, and when it opened (days ago) and
/// resolved.
struct Seed {
    agent: usize,
    path: &'static str,
    kind: Kind,
    severity: Severity,
    label: &'static str,
    asset: Option<(&'static str, &'static str)>,
    opened_days_ago: i64,
    resolved_days_ago: Option<i64>,
}

/// A [`Seed`]; `days` is when it opened and when it was resolved, in days before now.
const fn seed(
    agent: usize,
    path: &'static str,
    kind: Kind,
    severity: Severity,
    label: &'static str,
    asset: Option<(&'static str, &'static str)>,
    days: (i64, Option<i64>),
) -> Seed {
    Seed {
        agent,
        path,
        kind,
        severity,
        label,
        asset,
        opened_days_ago: days.0,
        resolved_days_ago: days.1,
    }
}

const HOSTS: [&str; 2] = ["ws-alice", "build-2.example"];

/// Twelve violations in four departments and none, two of them resolved.
const SEEDS: [Seed; 12] = [
    seed(
        0,
        XSS_PATH,
        Kind::Misplaced,
        Severity::Critical,
        "confidential",
        Some(("ACME-2026", FINANCE)),
        (3, None),
    ),
    seed(
        0,
        "/srv/projects/acme/export/customers.xlsx",
        Kind::Unencrypted,
        Severity::High,
        "confidential",
        Some(("ACME-2026", FINANCE)),
        (20, None),
    ),
    seed(
        0,
        "/srv/projects/acme/export/orders.csv",
        Kind::Unencrypted,
        Severity::High,
        "confidential",
        Some(("ACME-2026", FINANCE)),
        (12, None),
    ),
    seed(
        0,
        "/home/alice/roadmap/2027.pptx",
        Kind::Overexposed,
        Severity::Low,
        "internal",
        Some(("RD-ROADMAP", RD)),
        (8, None),
    ),
    seed(
        0,
        "/tmp/q3-board-pack.pdf",
        Kind::Unregistered,
        Severity::Medium,
        "secret",
        None,
        (2, None),
    ),
    seed(
        0,
        "/srv/projects/acme/old/contacts.xlsx",
        Kind::Unencrypted,
        Severity::High,
        "confidential",
        Some(("ACME-2026", FINANCE)),
        (25, Some(10)),
    ),
    seed(
        1,
        "/srv/projects/globex/payroll-2025.xlsx",
        Kind::Expired,
        Severity::High,
        "confidential",
        Some(("GLOBEX-2025", FINANCE)),
        (15, None),
    ),
    seed(
        1,
        "/srv/vault/hr/reviews/2026-h1.docx",
        Kind::Overexposed,
        Severity::Critical,
        "secret",
        Some(("HR-PERSONNEL", HR)),
        (6, None),
    ),
    seed(
        1,
        "/srv/vault/hr/salaries.xlsx",
        Kind::Unencrypted,
        Severity::Critical,
        "secret",
        Some(("HR-PERSONNEL", HR)),
        (1, None),
    ),
    seed(
        1,
        "/srv/projects/roadmap/draft.docx",
        Kind::Mislabeled,
        Severity::Low,
        "internal",
        Some(("RD-ROADMAP", RD)),
        (4, None),
    ),
    seed(
        1,
        "/srv/projects/sales/crm/export-2026-03.csv",
        Kind::Overexposed,
        Severity::Medium,
        "confidential",
        Some(("SALES-CRM-EXPORT", SALES)),
        (9, None),
    ),
    seed(
        1,
        "/srv/projects/sales/crm/leads.xlsx",
        Kind::Overexposed,
        Severity::Medium,
        "confidential",
        Some(("SALES-CRM-EXPORT", SALES)),
        (5, Some(2)),
    ),
];

/// The collector under test, seeded, with the tokens people sign in with.
struct Collector {
    base: String,
    admin_token: String,
    manager_token: String,
    agents: Vec<Agent>,
}

impl Collector {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn id(&self, seed: &Seed) -> String {
        violation_id(&self.agents[seed.agent].id, seed.path, seed.kind)
    }
}

async fn post_events(
    http: &reqwest::Client,
    base: &str,
    agent: &mut Agent,
    bodies: Vec<(DateTime<Utc>, EventBody)>,
) {
    let events: Vec<Event> = bodies
        .into_iter()
        .map(|(at, body)| {
            agent.seq += 1;
            Event {
                seq: agent.seq,
                at,
                body,
            }
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let parts = RequestParts::new("POST", "/api/v1/events", &agent.id, &body).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let mut request = http
        .post(format!("{base}/api/v1/events"))
        .header("content-type", "application/json");
    for (name, value) in sign(agent.secret.as_bytes(), &parts, &stamp).pairs() {
        request = request.header(name, value);
    }
    let answer = request.body(body).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let stored: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(stored["stored_through"], agent.seq);
}

/// Starts the collector, imports the example policy and ledger, issues tokens, enrolls two
/// agents and sends their violations, health and footprints through the signed API.
async fn start_collector(dir: &Path) -> (Process, Collector) {
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n\
         [rules]\ninterval = \"1s\"\n",
    )
    .unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples");
    let policy = examples.join("policy.toml");
    let ledger = examples.join("ledger.toml");
    server_command(&["policy", "import", policy.to_str().unwrap()], &config);
    server_command(&["ledger", "import", ledger.to_str().unwrap()], &config);
    let admin_token = server_command(
        &["token", "create", "--name", "alice", "--role", "admin"],
        &config,
    );
    let manager_token = server_command(
        &[
            "token",
            "create",
            "--name",
            "hana",
            "--role",
            "manager",
            "--department",
            HR,
        ],
        &config,
    );
    let enroll = server_command(&["enroll-token", "create", "--uses", "2"], &config);

    let mut command = Command::new(BIN);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("INFOLEDGER_LOG");
    let (process, addr) = Process::start(command, false, "listening on ");
    let addr: SocketAddr = addr.parse().unwrap();
    let base = format!("http://{addr}");

    let http = reqwest::Client::new();
    let mut agents = Vec::new();
    for host in HOSTS {
        let request = json!({"token": enroll, "hostname": host, "version": "0.1.0"});
        let answer = http
            .post(format!("{base}/api/v1/enroll"))
            .header("content-type", "application/json")
            .body(request.to_string())
            .send()
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        agents.push(Agent {
            id: answer["agent_id"].as_str().unwrap().to_owned(),
            secret: answer["secret"].as_str().unwrap().to_owned(),
            seq: 0,
        });
    }
    let now = Utc::now();
    for (index, agent) in agents.iter_mut().enumerate() {
        let mut bodies = Vec::new();
        for s in SEEDS.iter().filter(|s| s.agent == index) {
            bodies.push((
                now - Duration::days(s.opened_days_ago),
                EventBody::ViolationOpened {
                    path: s.path.into(),
                    kind: s.kind,
                    severity: s.severity,
                    label: Some(s.label.into()),
                    asset: s.asset.map(|(a, _)| a.to_owned()),
                    department: s.asset.map(|(_, d)| d.to_owned()),
                    rule: Some(match s.kind {
                        Kind::Misplaced => "rules.forbidden: **/Downloads/**".to_owned(),
                        other => format!("asset.{other}"),
                    }),
                    message: format!("{} is {} for its label", s.path, s.kind),
                    fix: "move it into its asset's locations or encrypt it".into(),
                    host: HOSTS[index].into(),
                },
            ));
        }
        // Events go in sequence order, and a resolution must follow its opening.
        let mut resolutions: Vec<(DateTime<Utc>, EventBody)> = SEEDS
            .iter()
            .filter(|s| s.agent == index)
            .filter_map(|s| {
                s.resolved_days_ago.map(|days| {
                    (
                        now - Duration::days(days),
                        EventBody::ViolationResolved {
                            path: s.path.into(),
                            kind: s.kind,
                        },
                    )
                })
            })
            .collect();
        bodies.append(&mut resolutions);
        bodies.push((
            now,
            EventBody::Health(Health {
                version: "0.1.0".into(),
                queue_depth: [0, 37][index],
                watch_limit_reached: index == 1,
                last_error: (index == 1).then(|| "inotify watch limit reached: 8192".into()),
                last_scan_at: Some(now - Duration::minutes(12)),
                last_scan_ms: Some([5400, 81_000][index]),
                bundle_version: Some(2),
                files: [48_211, 230_877][index],
                watches: [1204, 8192][index],
                ..Health::default()
            }),
        ));
        let assets: &[(&str, u64)] = if index == 0 {
            &[("ACME-2026", 42), ("RD-ROADMAP", 7)]
        } else {
            &[
                ("ACME-2026", 12),
                ("GLOBEX-2025", 5),
                ("HR-PERSONNEL", 2),
                ("SALES-CRM-EXPORT", 3),
                ("RD-ROADMAP", 9),
            ]
        };
        bodies.push((
            now,
            EventBody::Footprint(Footprint {
                host: HOSTS[index].into(),
                roots: vec!["/srv".into(), "/home".into()],
                assets: assets
                    .iter()
                    .map(|(asset, files)| AssetFootprint {
                        asset: (*asset).into(),
                        files: *files,
                    })
                    .collect(),
            }),
        ));
        post_events(&http, &base, agent, bodies).await;
    }
    let collector = Collector {
        base,
        admin_token,
        manager_token,
        agents,
    };
    // The rules pass (every second here) escalates the critical violations older than a day.
    let escalated = collector.id(&SEEDS[0]);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = http
            .get(collector.url(&format!("/api/v1/violations/{escalated}")))
            .bearer_auth(&collector.admin_token)
            .send()
            .await
            .unwrap();
        let detail: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        if !detail["escalated_at"].is_null() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no escalation: {detail}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (process, collector)
}

/// chromedriver with a headless Chromium session.
async fn start_browser(dir: &Path) -> (Process, Client) {
    let missing = || {
        panic!(
            "the dashboard's browser tests need headless Chromium and chromedriver: install \
             Debian's `chromium` and `chromium-driver` packages \
             (apt-get install chromium chromium-driver); .ci/run does"
        )
    };
    let chromium = find_program(&["chromium", "chromium-browser"]).unwrap_or_else(missing);
    let driver = find_program(&["chromedriver"]).unwrap_or_else(missing);
    let mut command = Command::new(driver);
    command.arg("--port=0");
    let (process, port) = Process::start(command, true, "started successfully on port ");
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    // A script that ran would leave an alert open, and the test would see it.
    capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
    (process, client)
}

/// Saves a screenshot of the whole current page as `name.png`.
async fn screenshot(client: &Client, dir: &Path, name: &str) {
    // The window's height is the page's plus the browser's own frame around the viewport.
    let height = client
        .execute(
            "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(900)
        .clamp(600, 2400);
    client
        .set_window_size(1280, u32::try_from(height).unwrap())
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    client.set_window_size(1280, 900).await.unwrap();
    let file = dir.join(format!("{name}.png"));
    std::fs::write(&file, &png).unwrap();
    if std::env::var_os("INFOLEDGER_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
    }
}

async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => {
            let url = client.current_url().await;
            panic!("no `{css}` on {url:?}: {e}")
        }
    }
}

/// Clicks the element matching `css` and waits (bounded) until the browser has left the page:
/// a click that submits a form returns before the next page has replaced the current one.
async fn click_through(client: &Client, css: &str) {
    let page = client.find(Locator::Css("html")).await.unwrap();
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.click().await.unwrap(),
        Err(e) => {
            let url = client.current_url().await;
            panic!("no `{css}` to click on {url:?}: {e}")
        }
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    // The old page's root goes stale once the new page replaced it.
    while page.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "clicking `{css}` did not lead to another page within {PATIENCE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The texts of every element matching `css`.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut all = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap() {
        all.push(element.text().await.unwrap());
    }
    all
}

async fn sign_in(client: &Client, collector: &Collector, token: &str) {
    client.goto(&collector.url("/")).await.unwrap();
    // Without a session the dashboard sends the browser to the sign-in form.
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click_through(client, "#sign-in").await;
    let url = client.current_url().await.unwrap();
    if url.path() != "/" {
        panic!("sign-in ended on {url}: {}", client.source().await.unwrap());
    }
}

async fn sign_out(client: &Client) {
    click_through(client, "form[action='/logout'] button").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
}

/// No dialog is open and the page holds no script element.
async fn assert_no_script_ran(client: &Client) {
    assert!(
        client.get_alert_text().await.is_err(),
        "an alert is open: a script ran on {:?}",
        client.current_url().await
    );
    let scripts = client
        .execute(
            "return document.getElementsByTagName('script').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scripts, json!(0));
}

async fn scenario(client: Client, collector: Collector, shots: PathBuf) {
    let c = &client;
    // Sign-in.
    client.goto(&collector.url("/login")).await.unwrap();
    screenshot(c, &shots, "login").await;
    sign_in(c, &collector, &collector.admin_token).await;
    assert_eq!(text(c, "#who").await, "alice · admin · all departments");

    // The heatmap counts what was seeded: open and acknowledged violations.
    for (department, severity, count) in [
        (FINANCE, "critical", "1"),
        (FINANCE, "high", "3"),
        (FINANCE, "medium", "0"),
        (HR, "critical", "2"),
        (RD, "low", "2"),
        (SALES, "medium", "1"),
        ("(no asset)", "medium", "1"),
    ] {
        let css = format!("td[data-department='{department}'][data-severity='{severity}']");
        assert_eq!(text(c, &css).await, count, "{department} × {severity}");
    }
    assert_eq!(text(c, "#heatmap tfoot td.total").await, "10");
    // Escalation happened in the collector's rules pass: the XSS-named critical file is listed.
    let escalated = texts(c, "#escalated td.path").await;
    assert!(escalated.contains(&XSS_PATH.to_owned()), "{escalated:?}");
    assert_eq!(
        text(c, ".legend .key[data-severity='critical']").await,
        "critical 3"
    );
    screenshot(c, &shots, "risk-monitor").await;

    // A heatmap cell opens the queue filtered to it.
    click_through(
        c,
        &format!("td[data-department='{FINANCE}'][data-severity='high'] a"),
    )
    .await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/violations");
    let mut paths = texts(c, "#queue td.path").await;
    paths.sort();
    assert_eq!(
        paths,
        [
            "/srv/projects/acme/export/customers.xlsx",
            "/srv/projects/acme/export/orders.csv",
            "/srv/projects/globex/payroll-2025.xlsx",
        ]
    );

    // Filtering the queue with its form: critical violations on build-2.
    client.goto(&collector.url("/violations")).await.unwrap();
    screenshot(c, &shots, "review-queue").await;
    client
        .find(Locator::Id("f-host"))
        .await
        .unwrap()
        .send_keys("build-2.example")
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name='severity'][value='critical']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_through(c, "#apply-filters").await;
    let mut paths = texts(c, "#queue td.path").await;
    paths.sort();
    assert_eq!(
        paths,
        [
            "/srv/vault/hr/reviews/2026-h1.docx",
            "/srv/vault/hr/salaries.xlsx"
        ]
    );
    assert!(client
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap()
        .contains("host=build-2.example"));

    // Acknowledging a violation takes it out of the open queue and into its timeline.
    let customers = &SEEDS[1];
    client.goto(&collector.url("/violations")).await.unwrap();
    click_through(
        c,
        &format!("tr[data-id='{}'] td.path a", collector.id(customers)),
    )
    .await;
    assert_eq!(text(c, "#status").await, "open");
    client
        .find(Locator::Id("ack-reason"))
        .await
        .unwrap()
        .send_keys("owner asked to encrypt")
        .await
        .unwrap();
    click_through(c, "#acknowledge").await;
    assert_eq!(text(c, "#status").await, "acknowledged");
    let timeline = text(c, "#timeline").await;
    assert!(timeline.contains("acknowledged by alice"), "{timeline}");
    assert!(timeline.contains("owner asked to encrypt"), "{timeline}");
    client.goto(&collector.url("/violations")).await.unwrap();
    let open = texts(c, "#queue td.path").await;
    assert!(!open.contains(&customers.path.to_owned()), "{open:?}");
    assert_eq!(open.len(), 9, "{open:?}");
    client
        .goto(&collector.url("/violations?status=acknowledged"))
        .await
        .unwrap();
    assert_eq!(texts(c, "#queue td.path").await, [customers.path]);

    // An exception until a date.
    let orders = &SEEDS[2];
    client
        .goto(&collector.url(&format!("/violations/{}", collector.id(orders))))
        .await
        .unwrap();
    // Typing into a date field depends on the browser's locale; set the ISO value directly.
    client
        .execute(
            "document.getElementById('until').value = '2099-06-30'",
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Id("exception-reason"))
        .await
        .unwrap()
        .send_keys("archive migration in Q3")
        .await
        .unwrap();
    click_through(c, "#except").await;
    assert_eq!(text(c, "#status").await, "excepted");
    assert_eq!(text(c, "#excepted-until").await, "2099-07-01 00:00 UTC");
    assert!(text(c, "#timeline")
        .await
        .contains("archive migration in Q3"));

    // The file named like a script shows as text, and nothing ran.
    let xss = &SEEDS[0];
    client
        .goto(&collector.url(&format!("/violations/{}", collector.id(xss))))
        .await
        .unwrap();
    assert_eq!(text(c, "#violation-path").await, XSS_PATH);
    assert_eq!(text(c, "#administrator").await, "alice@example.com");
    assert_no_script_ran(c).await;
    screenshot(c, &shots, "violation").await;
    client
        .goto(&collector.url("/violations?q=%3Cscript%3E"))
        .await
        .unwrap();
    assert_eq!(texts(c, "#queue td.path").await, [XSS_PATH]);
    assert_eq!(
        client
            .find(Locator::Id("f-q"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("<script>")
    );
    assert_no_script_ran(c).await;

    // The other pages, each with what was seeded.
    client.goto(&collector.url("/ledger")).await.unwrap();
    assert_eq!(
        text(c, "tr[data-asset='GLOBEX-2025'] td.deadline").await,
        "2026-03-31 passed"
    );
    screenshot(c, &shots, "ledger").await;
    client
        .goto(&collector.url("/ledger/ACME-2026"))
        .await
        .unwrap();
    let footprint = texts(c, "#footprint tbody tr").await;
    assert_eq!(footprint.len(), 2, "{footprint:?}");
    screenshot(c, &shots, "asset").await;
    client.goto(&collector.url("/agents")).await.unwrap();
    let hosts = texts(c, "#agents tbody tr td:first-child").await;
    assert_eq!(hosts, ["build-2.example", "ws-alice"]);
    assert!(text(c, "#agents")
        .await
        .contains("inotify watch limit reached: 8192"));
    screenshot(c, &shots, "agents").await;
    client.goto(&collector.url("/maturity")).await.unwrap();
    // Sales resolved its one violation within the SLA (100 %), but its other one is past the
    // medium SLA of 7 days (backlog 0 %): (100 + 0) / 2.
    assert_eq!(
        text(c, &format!("tr[data-department='{SALES}'] td.score")).await,
        "50"
    );
    screenshot(c, &shots, "maturity").await;
    client
        .goto(&collector.url("/audit?verify=1"))
        .await
        .unwrap();
    assert!(text(c, "#verification")
        .await
        .starts_with("The audit trail is intact"));
    assert!(text(c, "#audit").await.contains("violation.excepted"));
    screenshot(c, &shots, "audit").await;
    sign_out(c).await;

    // A department manager sees the department's row only, and another department's violation
    // is a plain "not found" page.
    sign_in(c, &collector, &collector.manager_token).await;
    let rows = texts(c, "#heatmap tbody th").await;
    assert_eq!(rows, [HR]);
    assert_eq!(
        text(
            c,
            &format!("td[data-department='{HR}'][data-severity='critical']")
        )
        .await,
        "2"
    );
    let finance = collector.id(customers);
    client
        .goto(&collector.url(&format!("/violations/{finance}")))
        .await
        .unwrap();
    assert_eq!(text(c, "#error-code").await, "not_found");
    let source = client.source().await.unwrap();
    assert!(!source.contains("customers.xlsx"), "{source}");
    assert!(client.find(Locator::Css("a[href='/audit']")).await.is_err());

    // Forms posted without the anti-forgery token are refused (a plain HTTP client with the
    // manager's session cookie).
    let session = client.get_named_cookie("infoledger_session").await.unwrap();
    let hr = collector.id(&SEEDS[7]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (action, form) in [
        ("comment", vec![("text", "forged")]),
        (
            "acknowledge",
            vec![("csrf", "forged-token"), ("reason", "forged")],
        ),
    ] {
        let answer = http
            .post(collector.url(&format!("/violations/{hr}/{action}")))
            .header("cookie", format!("infoledger_session={}", session.value()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{action}");
    }
    let anonymous = http
        .post(collector.url(&format!("/violations/{hr}/comment")))
        .form(&[("text", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    client
        .goto(&collector.url(&format!("/violations/{hr}")))
        .await
        .unwrap();
    assert_eq!(text(c, "#status").await, "open");
    assert!(!text(c, "#timeline").await.contains("forged"));
    sign_out(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-browser");
    let _ = std::fs::remove_dir_all(&dir);
    let shots = dir.join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (driver, client) = start_browser(&dir).await;
    let (server, collector) = start_collector(&dir).await;
    // The scenario runs as its own task so that the browser is closed even when it fails.
    let run = tokio::spawn(tokio::time::timeout(
        SCENARIO_LIMIT,
        scenario(client.clone(), collector, shots),
    ));
    let outcome = run.await;
    let _ = client.close().await;
    drop(driver);
    drop(server);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the browser scenario took longer than {SCENARIO_LIMIT:?}"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the browser scenario failed: {e}"),
    }
}
