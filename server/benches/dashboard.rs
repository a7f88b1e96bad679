//! Dashboard pages against a large store: the median time of each page through the router, for
//! an admin (every department) and a department manager.
//!
//! ```sh
//! cargo bench -p infoledger-server --bench dashboard                # 1,000,000 violations
//! cargo bench -p infoledger-server --bench dashboard -- --violations 200000 --runs 7
//! cargo bench -p infoledger-server --bench dashboard -- --dir /dev/shm/infoledger-bench
//! ```
//!
//! A million violations take about 1 GB of database (`--dir` puts it elsewhere than
//! `target/bench-dashboard/`).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it uses 2,000 violations and one run,
//! as a smoke test of the bench itself: every page must answer.
//!
//! The store is generated once under `target/bench-dashboard/` and kept between runs: 200 agents,
//! 12 departments with 5 assets each, violations opened over the last year, about two thirds
//! of them resolved, the rest open, acknowledged or excepted, the overdue ones escalated.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly by design.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use http_body_util::BodyExt;
use infoledger_policies::{Kind, Severity, EXAMPLE_POLICY};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::store::{violation_id, NewApiToken, Role, SessionLimits, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

const AGENTS: u64 = 200;
const DEPARTMENTS: u64 = 12;
const ASSETS_PER_DEPARTMENT: u64 = 5;

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn department(d: u64) -> String {
    format!("Department {d:02}")
}

fn ledger_toml() -> String {
    let mut text = String::new();
    for d in 0..DEPARTMENTS {
        for k in 0..ASSETS_PER_DEPARTMENT {
            text.push_str(&format!(
                "[[asset]]\nid = \"ASSET-{d:02}-{k}\"\nname = \"Asset {k} of department {d}\"\n\
                 department = \"{}\"\nadministrator = \"admin{d}@example.com\"\n\
                 label = \"confidential\"\nlocations = [\"/srv/dept-{d:02}/asset-{k}/**\"]\n\
                 access_until = \"2027-0{}-15\"\n\n",
                department(d),
                1 + k
            ));
        }
    }
    text
}

/// Fills `path` with `count` violations unless it already holds them.
fn generate(path: &Path, count: u64, now: DateTime<Utc>) -> Store {
    let store = Store::open(path).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    let held: u64 = conn
        .query_row("SELECT count(*) FROM violations", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        .unsigned_abs();
    if held == count {
        return store;
    }
    assert_eq!(
        held,
        0,
        "{} holds {held} violations, not {count}: delete it",
        path.display()
    );
    eprintln!("generating {count} violations in {} …", path.display());
    let started = Instant::now();
    store
        .import_policy("policy.toml", EXAMPLE_POLICY, "bench", now)
        .unwrap();
    store
        .import_ledger("ledger.toml", &ledger_toml(), "bench", now)
        .unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; BEGIN;")
        .unwrap();
    for a in 0..AGENTS {
        let health = format!(
            r#"{{"version":"0.1.0","queue_depth":{},"watch_limit_reached":{},"files":{}}}"#,
            a % 7,
            a % 50 == 0,
            10_000 + a
        );
        let seen = now - Duration::minutes(i64::try_from(a % 90).unwrap());
        conn.execute(
            "INSERT INTO agents (id, hostname, secret_hash, enrolled_at, last_seen, version, health)
             VALUES (?1, ?2, 'x', ?3, ?4, '0.1.0', ?5)",
            (
                format!("agent-{a:03}"),
                format!("host-{a:03}"),
                stamp(now - Duration::days(400)),
                stamp(seen),
                health,
            ),
        )
        .unwrap();
        let assets: String = (0..10)
            .map(|k| {
                let d = (a + k) % DEPARTMENTS;
                format!(
                    "\"ASSET-{d:02}-{}\":{}",
                    k % ASSETS_PER_DEPARTMENT,
                    10 + a * k
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        conn.execute(
            "INSERT INTO footprints (agent_id, seq, at, host, roots, assets)
             VALUES (?1, 1, ?2, ?3, '[\"/srv\"]', ?4)",
            (
                format!("agent-{a:03}"),
                stamp(now),
                format!("host-{a:03}"),
                format!("{{{assets}}}"),
            ),
        )
        .unwrap();
    }
    let mut insert = conn
        .prepare(
            "INSERT INTO violations (id, agent_id, host, path, kind, severity, label, asset,
                 department, rule, message, fix, status, excepted_until, opened_at, resolved_at,
                 updated_at, escalated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'confidential', ?7, ?8, 'rules.forbidden', ?9,
                 'move it', ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .unwrap();
    let mut rng = Lcg(42);
    let words = [
        "report", "export", "payroll", "roadmap", "contract", "budget", "minutes", "plan", "draft",
        "scan",
    ];
    for i in 0..count {
        // Commit in steps, so the write-ahead log is checkpointed instead of growing to the
        // size of the whole database.
        if i > 0 && i % 50_000 == 0 {
            conn.execute_batch("COMMIT; BEGIN;").unwrap();
        }
        let agent = rng.next(AGENTS);
        let d = rng.next(DEPARTMENTS);
        let unregistered = rng.next(20) == 0;
        let kind = if unregistered {
            Kind::Unregistered
        } else {
            Kind::ALL[usize::try_from(rng.next(5)).unwrap()]
        };
        let severity = match rng.next(100) {
            0..=4 => Severity::Critical,
            5..=24 => Severity::High,
            25..=59 => Severity::Medium,
            60..=89 => Severity::Low,
            _ => Severity::Info,
        };
        let k = rng.next(ASSETS_PER_DEPARTMENT);
        let word = words[usize::try_from(rng.next(10)).unwrap()];
        let path = format!("/srv/dept-{d:02}/asset-{k}/{word}-{i}.docx");
        let opened = now - Duration::seconds(i64::try_from(rng.next(365 * 86_400)).unwrap());
        let resolved = (rng.next(3) != 0).then(|| {
            (opened + Duration::seconds(i64::try_from(rng.next(30 * 86_400)).unwrap())).min(now)
        });
        let status = match (resolved, rng.next(10)) {
            (Some(_), _) => "resolved",
            (None, 0..=6) => "open",
            (None, 7..=8) => "acknowledged",
            (None, _) => "excepted",
        };
        let escalated = (matches!(status, "open" | "acknowledged")
            && now - opened > Duration::days(3))
        .then(|| stamp(opened + Duration::days(3)));
        let (asset, dept) = if unregistered {
            (None, None)
        } else {
            (Some(format!("ASSET-{d:02}-{k}")), Some(department(d)))
        };
        let agent_id = format!("agent-{agent:03}");
        insert
            .execute(rusqlite::params![
                violation_id(&agent_id, &path, kind),
                agent_id,
                format!("host-{agent:03}"),
                path,
                kind.as_str(),
                severity.as_str(),
                asset,
                dept,
                format!("{path} is {kind}"),
                status,
                (status == "excepted").then(|| stamp(now + Duration::days(30))),
                stamp(opened),
                resolved.map(stamp),
                stamp(resolved.unwrap_or(opened)),
                escalated,
            ])
            .unwrap();
    }
    drop(insert);
    conn.execute_batch("COMMIT;").unwrap();
    eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    store
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; without it the binary runs as a quick smoke test.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (mut count, mut runs): (u64, usize) = if measuring { (1_000_000, 5) } else { (2000, 1) };
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-dashboard");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--violations" => count = args.next().and_then(|v| v.parse().ok()).unwrap_or(count),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            "--dir" => dir = args.next().map(PathBuf::from).unwrap_or(dir),
            // `--bench`, and whatever libtest flags `cargo test` passes: nothing to do.
            _ => {}
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    let now = Utc::now();
    let db = dir.join(format!("collector-{count}.db"));
    if !measuring {
        // The smoke test's small store is made anew, so it always has the current schema.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    let store = Arc::new(generate(&db, count, now));
    let state = AppState::new(
        Arc::clone(&store),
        ServerKey::from_bytes(&[3; 32]).unwrap(),
        ApiConfig::default(),
    );
    let app = router(state);
    let session = |role: Role, departments: &[String]| {
        let token = store
            .create_api_token(
                &NewApiToken {
                    name: "bench",
                    role,
                    departments,
                    expires_at: None,
                },
                "bench",
                Utc::now(),
            )
            .unwrap()
            .token;
        let session = store
            .create_session(&token, Utc::now(), SessionLimits::default())
            .unwrap()
            .unwrap();
        format!("infoledger_session={}", session.secret)
    };
    let admin = session(Role::Admin, &[]);
    let manager = session(Role::Manager, &[department(3)]);
    let sample: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT id FROM violations WHERE department = ?1 LIMIT 1",
            [department(3)],
            |r| r.get(0),
        )
        .unwrap();
    let pages = [
        "/".to_owned(),
        "/?days=90".to_owned(),
        "/violations".to_owned(),
        "/violations?sort=severity".to_owned(),
        "/violations?filtered=1&severity=critical&kind=expired&status=open".to_owned(),
        "/violations?filtered=1&host=host-007".to_owned(),
        "/violations?q=payroll".to_owned(),
        format!("/violations/{sample}"),
        "/ledger".to_owned(),
        "/ledger/ASSET-03-2".to_owned(),
        "/agents".to_owned(),
        "/maturity".to_owned(),
        "/audit".to_owned(),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{count} violations, median of {runs} runs after one warm-up (ms)\n");
    println!("{:<70} {:>10} {:>10}", "page", "admin", "manager");
    let mut failed = false;
    for page in &pages {
        let mut row = Vec::new();
        for cookie in [&admin, &manager] {
            let mut times = Vec::new();
            for run in 0..=runs {
                let request = Request::get(page.as_str())
                    .header("cookie", cookie.as_str())
                    .body(Body::empty())
                    .unwrap();
                let started = Instant::now();
                let (status, bytes) = runtime.block_on(async {
                    let response = app.clone().oneshot(request).await.unwrap();
                    let status = response.status();
                    (
                        status,
                        response
                            .into_body()
                            .collect()
                            .await
                            .unwrap()
                            .to_bytes()
                            .len(),
                    )
                });
                let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                // The audit log is for admins; every other page answers both.
                let expected = if page == "/audit" && cookie == &manager {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::OK
                };
                if status != expected || bytes == 0 {
                    eprintln!("{page}: {status}, {bytes} bytes");
                    failed = true;
                }
                if run > 0 {
                    times.push(elapsed);
                }
            }
            row.push(median(times));
        }
        println!("{page:<70} {:>10.1} {:>10.1}", row[0], row[1]);
    }
    // The store calls behind the heaviest pages, unscoped.
    println!("\n{:<70} {:>10}", "store call (every department)", "ms");
    let slas = infoledger_server::sla::Slas::default();
    let year_ago = now - Duration::days(365);
    type Call<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let calls: [Call<'_>; 5] = [
        (
            "unresolved (heatmap, assets, overdue)",
            Box::new(|| drop(store.unresolved(None).unwrap())),
        ),
        (
            "heatmap (the API's)",
            Box::new(|| drop(store.heatmap(None).unwrap())),
        ),
        (
            "remediation over 90 days (the API's)",
            Box::new(|| {
                drop(
                    store
                        .remediation(now - Duration::days(90), now, &slas, None)
                        .unwrap(),
                )
            }),
        ),
        (
            "monthly remediation over a year",
            Box::new(|| {
                drop(
                    store
                        .monthly_remediation(year_ago, now, &slas, None)
                        .unwrap(),
                )
            }),
        ),
        (
            "trend over 90 days",
            Box::new(|| {
                let first = (now - Duration::days(89)).date_naive();
                drop(
                    store
                        .unresolved_trend(first, now, Default::default(), None)
                        .unwrap(),
                )
            }),
        ),
    ];
    for (name, call) in &calls {
        let mut times = Vec::new();
        for run in 0..=runs {
            let started = Instant::now();
            call();
            if run > 0 {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        println!("{name:<70} {:>10.1}", median(times));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
