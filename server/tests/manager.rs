//! Behaviour of the manager API through the real router (`tower::ServiceExt::oneshot`): bearer
//! authentication and roles, department scope on every read and action, filters, orders and
//! cursor pages, actions with their history and audit entries, exports, figures, agents and the
//! audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Duration, DurationRound, TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::sla::Slas;
use infoledger_server::store::{
    violation_id, DepartmentRemediation, Event, EventBody, Health, NewAgent, NewApiToken, Role,
    SeverityCounts, Store, ViolationStatus,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

const KEY: [u8; 32] = [9; 32];
/// More rows than any test stores: a walk past it is a cursor going round in circles.
const MAX_WALK: usize = 5000;

struct Harness {
    app: Router,
    store: Arc<Store>,
}

impl Harness {
    fn new(test: &str) -> Harness {
        Harness::with(test, |state| state)
    }

    fn with(test: &str, configure: impl FnOnce(AppState) -> AppState) -> Harness {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("manager")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(Store::open(&dir.join("collector.db")).unwrap());
        let state = AppState::new(
            Arc::clone(&store),
            ServerKey::from_bytes(&KEY).unwrap(),
            ApiConfig::default(),
        );
        Harness {
            app: router(configure(state)),
            store,
        }
    }

    /// A bearer token with this role and departments, valid for a day.
    fn token(&self, name: &str, role: Role, departments: &[&str]) -> String {
        let departments: Vec<String> = departments.iter().map(|d| (*d).to_owned()).collect();
        let now = Utc::now();
        self.store
            .create_api_token(
                &NewApiToken {
                    name,
                    role,
                    departments: &departments,
                    expires_at: Some(now + Duration::days(1)),
                },
                "cli",
                now,
            )
            .unwrap()
            .token
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.raw(request).await;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(
            authorized(Request::get(path), token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
        let request = authorized(Request::post(path), token)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    /// Every id of a list, walking `next` pages of `limit` rows; asserts that each page holds
    /// at most `limit` rows and that `next` is null exactly on the last page.
    async fn walk(&self, query: &str, limit: u32, token: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/violations?{query}&limit={limit}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.get(&path, token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let rows = body["violations"].as_array().unwrap();
            assert!(rows.len() <= limit as usize, "{path}");
            ids.extend(rows.iter().map(|v| v["id"].as_str().unwrap().to_owned()));
            // A cursor that does not advance would page forever.
            assert!(ids.len() <= MAX_WALK, "more than {MAX_WALK} rows: {path}");
            match &body["next"] {
                Value::Null => return ids,
                Value::String(next) => {
                    assert_eq!(
                        rows.len(),
                        limit as usize,
                        "a short page with a next: {path}"
                    );
                    cursor = Some(next.clone());
                }
                other => panic!("next is {other}"),
            }
        }
    }

    async fn ids(&self, query: &str, token: &str) -> BTreeSet<String> {
        self.walk(query, 500, token).await.into_iter().collect()
    }
}

fn authorized(builder: axum::http::request::Builder, token: &str) -> axum::http::request::Builder {
    builder.header("authorization", format!("Bearer {token}"))
}

#[track_caller]
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

#[track_caller]
fn assert_message_names(got: &(StatusCode, Value), code: &str, needle: &str) {
    assert_error(got, StatusCode::BAD_REQUEST, code);
    let message = got.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn add_agent(store: &Store, id: &str, host: &str, enrolled_at: DateTime<Utc>) {
    store
        .add_agent(&NewAgent {
            id: id.into(),
            hostname: host.into(),
            secret_hash: "hash".into(),
            enrolled_at,
        })
        .unwrap();
}

/// One seeded violation.
struct Seed {
    agent: &'static str,
    path: &'static str,
    kind: Kind,
    severity: Severity,
    department: Option<&'static str>,
    label: &'static str,
    asset: Option<&'static str>,
    minute: i64,
}

impl Seed {
    fn id(&self) -> String {
        violation_id(self.agent, self.path, self.kind)
    }

    fn host(&self) -> String {
        format!("{}.example", self.agent)
    }

    fn event(&self, seq: u64, at: DateTime<Utc>) -> Event {
        Event {
            seq,
            at,
            body: EventBody::ViolationOpened {
                path: self.path.into(),
                kind: self.kind,
                severity: self.severity,
                label: Some(self.label.into()),
                asset: self.asset.map(str::to_owned),
                department: self.department.map(str::to_owned),
                rule: Some(format!("rules.{}", self.kind)),
                message: format!("{} is {}", self.path, self.kind),
                fix: "move it to its asset's location".into(),
                host: self.host(),
            },
        }
    }
}

/// The review-queue data set: ten violations on two agents, with ties in opening time and
/// severity so that orders must fall back to their next keys.
///
/// Statuses afterwards: 0 acknowledged, 4 excepted, 5 and 7 resolved, the rest open.
const SEEDS: [Seed; 10] = [
    Seed {
        agent: "a1",
        path: "/srv/sales/plan.xlsx",
        kind: Kind::Misplaced,
        severity: Severity::High,
        department: Some("sales"),
        label: "confidential",
        asset: Some("SALES-PLANS"),
        minute: 1,
    },
    Seed {
        agent: "a1",
        path: "/srv/sales/Q3 100%.docx",
        kind: Kind::Unencrypted,
        severity: Severity::Critical,
        department: Some("sales"),
        label: "secret",
        asset: Some("SALES-PLANS"),
        minute: 2,
    },
    Seed {
        agent: "a1",
        path: "/home/ann/Downloads/payroll.csv",
        kind: Kind::Misplaced,
        severity: Severity::Critical,
        department: Some("hr"),
        label: "secret",
        asset: Some("HR-PAY"),
        minute: 3,
    },
    Seed {
        agent: "a2",
        path: "/home/bob/DOWNLOADS/offer_letter.pdf",
        kind: Kind::Overexposed,
        severity: Severity::Medium,
        department: Some("hr"),
        label: "confidential",
        asset: Some("HR-OFFERS"),
        minute: 3,
    },
    Seed {
        agent: "a2",
        path: "/srv/it/keys.txt",
        kind: Kind::Unencrypted,
        severity: Severity::High,
        department: Some("it"),
        label: "secret",
        asset: Some("IT-KEYS"),
        minute: 4,
    },
    Seed {
        agent: "a2",
        path: "/srv/it/inventory.xlsx",
        kind: Kind::Expired,
        severity: Severity::Low,
        department: Some("it"),
        label: "internal",
        asset: Some("IT-INV"),
        minute: 5,
    },
    Seed {
        agent: "a1",
        path: "/tmp/shadow.docx",
        kind: Kind::Unregistered,
        severity: Severity::Medium,
        department: None,
        label: "confidential",
        asset: None,
        minute: 6,
    },
    Seed {
        agent: "a2",
        path: "/srv/sales/old.pptx",
        kind: Kind::Expired,
        severity: Severity::Low,
        department: Some("sales"),
        label: "internal",
        asset: Some("SALES-ARCHIVE"),
        minute: 7,
    },
    Seed {
        agent: "a1",
        path: "/srv/hr/review.docx",
        kind: Kind::Mislabeled,
        severity: Severity::Info,
        department: Some("hr"),
        label: "internal",
        asset: Some("HR-REVIEWS"),
        minute: 7,
    },
    Seed {
        agent: "a2",
        path: "/srv/sales/deck.pptx",
        kind: Kind::Misplaced,
        severity: Severity::High,
        department: Some("sales"),
        label: "confidential",
        asset: Some("SALES-PLANS"),
        minute: 8,
    },
];

/// Ingests [`SEEDS`] and brings them into their documented statuses.
fn seed(store: &Store) {
    add_agent(store, "a1", "a1.example", t(0));
    add_agent(store, "a2", "a2.example", t(0));
    for agent in ["a1", "a2"] {
        let mut events: Vec<Event> = SEEDS
            .iter()
            .filter(|s| s.agent == agent)
            .enumerate()
            .map(|(i, s)| s.event(i as u64 + 1, t(s.minute)))
            .collect();
        for resolved in [&SEEDS[5], &SEEDS[7]]
            .into_iter()
            .filter(|s| s.agent == agent)
        {
            events.push(Event {
                seq: events.len() as u64 + 1,
                at: t(30),
                body: EventBody::ViolationResolved {
                    path: resolved.path.into(),
                    kind: resolved.kind,
                },
            });
        }
        store.ingest(agent, &events).unwrap();
    }
    store
        .acknowledge(&SEEDS[0].id(), "seed", None, t(40), None)
        .unwrap();
    store
        .except(
            &SEEDS[4].id(),
            "seed",
            Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
            "rotating the keys",
            t(41),
            None,
        )
        .unwrap();
}

/// The ids of the seeds at these positions.
fn ids(positions: &[usize]) -> BTreeSet<String> {
    positions.iter().map(|&i| SEEDS[i].id()).collect()
}

#[tokio::test]
async fn list_filters_each_narrow_to_the_expected_violations() {
    let h = Harness::new("filters");
    seed(&h.store);
    let admin = h.token("ada", Role::Admin, &[]);
    let cases: &[(&str, &[usize])] = &[
        ("", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ("status=open", &[1, 2, 3, 6, 8, 9]),
        ("status=acknowledged,excepted", &[0, 4]),
        ("status=resolved&status=excepted", &[4, 5, 7]),
        ("department=hr", &[2, 3, 8]),
        ("severity=critical,high", &[0, 1, 2, 4, 9]),
        ("severity=CRITICAL", &[1, 2]),
        ("kind=expired", &[5, 7]),
        ("asset=SALES-PLANS", &[0, 1, 9]),
        ("host=a2.example", &[3, 4, 5, 7, 9]),
        ("label=secret", &[1, 2, 4]),
        // Free text: case-insensitive, and `%` and `_` are literal characters.
        ("q=downloads", &[2, 3]),
        ("q=%25", &[1]),
        ("q=_", &[3]),
        ("q=Q3%20100", &[1]),
        ("department=sales&status=open&severity=high", &[9]),
        ("department=sales&kind=misplaced,expired", &[0, 7, 9]),
        ("host=nowhere", &[]),
        ("department=finance", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(h.ids(query, &admin).await, ids(expected), "?{query}");
    }

    // The documented shape, at least.
    let (status, body) = h
        .get(
            "/api/v1/violations?status=resolved&sort=opened_at&order=asc",
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["next"], Value::Null);
    let first = &body["violations"][0];
    for field in [
        "id",
        "agent",
        "host",
        "path",
        "kind",
        "severity",
        "status",
        "label",
        "asset",
        "department",
        "message",
        "opened_at",
        "resolved_at",
    ] {
        assert!(first.get(field).is_some(), "no `{field}` in {first}");
    }
    let seed = &SEEDS[5];
    assert_eq!(first["id"], seed.id());
    assert_eq!(first["agent"], "a2");
    assert_eq!(first["host"], "a2.example");
    assert_eq!(first["path"], seed.path);
    assert_eq!(first["kind"], "expired");
    assert_eq!(first["severity"], "low");
    assert_eq!(first["status"], "resolved");
    assert_eq!(first["label"], "internal");
    assert_eq!(first["asset"], "IT-INV");
    assert_eq!(first["department"], "it");
    assert_eq!(first["opened_at"], "2026-03-01T09:05:00Z");
    assert_eq!(first["resolved_at"], "2026-03-01T09:30:00Z");
}

#[tokio::test]
async fn pages_walk_every_row_exactly_once_in_each_order() {
    let h = Harness::new("pagination");
    seed(&h.store);
    let admin = h.token("ada", Role::Admin, &[]);
    let (_, all) = h.get("/api/v1/violations?limit=500", &admin).await;
    let rows = all["violations"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 10);
    let rank = |s: &str| s.parse::<Severity>().unwrap();
    let text = |v: &Value, f: &str| v[f].as_str().unwrap().to_owned();

    for (sort, order) in [
        ("opened_at", "asc"),
        ("opened_at", "desc"),
        ("severity", "asc"),
        ("severity", "desc"),
        ("updated_at", "asc"),
        ("updated_at", "desc"),
    ] {
        // The order as the documentation defines it, computed here independently.
        let mut expected = rows.clone();
        expected.sort_by(|a, b| {
            let key = |v: &Value| match sort {
                "opened_at" => (
                    Severity::Info,
                    parse_time(&text(v, "opened_at")),
                    text(v, "id"),
                ),
                "updated_at" => (
                    Severity::Info,
                    parse_time(&text(v, "updated_at")),
                    text(v, "id"),
                ),
                _ => (
                    rank(&text(v, "severity")),
                    parse_time(&text(v, "opened_at")),
                    text(v, "id"),
                ),
            };
            key(a).cmp(&key(b))
        });
        if order == "desc" {
            expected.reverse();
        }
        let expected: Vec<String> = expected.iter().map(|v| text(v, "id")).collect();
        for limit in [1, 2, 3, 7, 9, 10, 11] {
            let walked = h
                .walk(&format!("sort={sort}&order={order}"), limit, &admin)
                .await;
            assert_eq!(walked, expected, "sort={sort} order={order} limit={limit}");
        }
    }

    // Newest first by default.
    let default = h.walk("", 4, &admin).await;
    assert_eq!(
        default,
        h.walk("sort=opened_at&order=desc", 4, &admin).await
    );
    assert_eq!(default[0], SEEDS[9].id());

    // A cursor continues only the order it came from.
    let (_, page) = h
        .get("/api/v1/violations?sort=severity&order=asc&limit=2", &admin)
        .await;
    let next = page["next"].as_str().unwrap();
    let got = h
        .get(
            &format!("/api/v1/violations?sort=opened_at&order=asc&cursor={next}"),
            &admin,
        )
        .await;
    assert_message_names(&got, "invalid_query", "`cursor`");
    let got = h
        .get(
            &format!("/api/v1/violations?sort=severity&order=asc&cursor={next}"),
            &admin,
        )
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let got = h.get("/api/v1/violations?cursor=garbage", &admin).await;
    assert_message_names(&got, "invalid_query", "`cursor`");
}

fn parse_time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn unknown_parameters_and_bad_values_are_refused_by_name() {
    let h = Harness::new("bad_queries");
    seed(&h.store);
    let admin = h.token("ada", Role::Admin, &[]);
    let cases = [
        ("/api/v1/violations?stauts=open", "`stauts`"),
        ("/api/v1/violations?status=closed", "`status`"),
        ("/api/v1/violations?severity=urgent", "`severity`"),
        ("/api/v1/violations?kind=lost", "`kind`"),
        ("/api/v1/violations?limit=0", "`limit`"),
        ("/api/v1/violations?limit=501", "`limit`"),
        ("/api/v1/violations?limit=ten", "`limit`"),
        ("/api/v1/violations?sort=size", "`sort`"),
        ("/api/v1/violations?order=up", "`order`"),
        (
            "/api/v1/violations?department=hr&department=it",
            "`department`",
        ),
        ("/api/v1/violations?q=", "`q`"),
        ("/api/v1/violations/export?format=xlsx", "`format`"),
        ("/api/v1/violations/export?limit=5", "`limit`"),
        ("/api/v1/stats/heatmap?department=hr", "`department`"),
        ("/api/v1/stats/remediation?days=0", "`days`"),
        ("/api/v1/stats/remediation?days=367", "`days`"),
        ("/api/v1/audit?limit=0", "`limit`"),
        ("/api/v1/audit?after=-1", "`after`"),
        ("/api/v1/agents?stale=true", "`stale`"),
    ];
    for (path, name) in cases {
        let got = h.get(path, &admin).await;
        assert_message_names(&got, "invalid_query", name);
    }
    let got = h
        .get(
            &format!("/api/v1/violations/{}?verbose=1", SEEDS[0].id()),
            &admin,
        )
        .await;
    assert_message_names(&got, "invalid_query", "`verbose`");
}

#[tokio::test]
async fn a_department_manager_sees_and_acts_only_within_their_department() {
    let h = Harness::new("scope");
    seed(&h.store);
    let sales = h.token("sam", Role::Manager, &["sales"]);
    let sales_ids = ids(&[0, 1, 7, 9]);

    // Lists, also when asking for another department by filter.
    assert_eq!(h.ids("", &sales).await, sales_ids);
    assert_eq!(h.ids("department=hr", &sales).await, BTreeSet::new());
    assert_eq!(h.ids("q=Downloads", &sales).await, BTreeSet::new());

    // Single violations: another department's is not found, exactly like a missing one.
    let hr = SEEDS[2].id();
    let missing = "0".repeat(64);
    let (status, own) = h
        .get(&format!("/api/v1/violations/{}", SEEDS[1].id()), &sales)
        .await;
    assert_eq!(
        (status, &own["department"]),
        (StatusCode::OK, &json!("sales"))
    );
    let other = h.get(&format!("/api/v1/violations/{hr}"), &sales).await;
    let absent = h
        .get(&format!("/api/v1/violations/{missing}"), &sales)
        .await;
    assert_error(&other, StatusCode::NOT_FOUND, "not_found");
    assert_error(&absent, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        other.1["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&hr, "ID"),
        absent.1["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&missing, "ID")
    );
    // The unregistered file (no department) is no department's.
    let shadow = h
        .get(&format!("/api/v1/violations/{}", SEEDS[6].id()), &sales)
        .await;
    assert_error(&shadow, StatusCode::NOT_FOUND, "not_found");

    // Actions on it are not found either, and change nothing.
    for (action, body) in [
        ("acknowledge", json!({})),
        ("exception", json!({"until": "2099-01-01", "reason": "r"})),
        ("reopen", json!({"reason": "r"})),
        ("comments", json!({"text": "peek"})),
    ] {
        let got = h
            .post(
                &format!("/api/v1/violations/{hr}/{action}"),
                &sales,
                &body.to_string(),
            )
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    }
    let detail = h.store.violation(&hr, None).unwrap().unwrap();
    assert_eq!(detail.history.len(), 1);
    let bulk = h
        .post(
            "/api/v1/violations/acknowledge",
            &sales,
            &json!({"ids": [hr, SEEDS[9].id()]}).to_string(),
        )
        .await;
    assert_eq!(bulk.0, StatusCode::OK, "{}", bulk.1);
    assert_eq!(bulk.1["results"][0]["error"]["code"], "not_found");
    assert_eq!(bulk.1["results"][1]["ok"], true);

    // Exports.
    let (status, _, csv) = h
        .raw(
            authorized(Request::get("/api/v1/violations/export?format=csv"), &sales)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let exported: BTreeSet<String> = csv_rows(&csv)
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(exported, sales_ids);
    let (_, _, ndjson) = h
        .raw(
            authorized(
                Request::get("/api/v1/violations/export?format=ndjson"),
                &sales,
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    let exported: BTreeSet<String> = ndjson_rows(&ndjson)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, sales_ids);

    // Figures.
    let (_, heatmap) = h.get("/api/v1/stats/heatmap", &sales).await;
    assert_eq!(
        heatmap["cells"],
        json!([
            {"department": "sales", "severity": "high", "count": 2},
            {"department": "sales", "severity": "critical", "count": 1},
        ])
    );
    let (_, remediation) = h.get("/api/v1/stats/remediation", &sales).await;
    let departments: Vec<&Value> = remediation["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["department"])
        .collect();
    assert_eq!(departments, [&json!("sales")]);
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_act_and_only_auditors_read_the_trail() {
    let h = Harness::new("viewer");
    seed(&h.store);
    let viewer = h.token("vic", Role::Viewer, &[]);
    let scoped_viewer = h.token("val", Role::Viewer, &["hr"]);
    let manager = h.token("sam", Role::Manager, &["sales"]);
    let admin = h.token("ada", Role::Admin, &[]);
    let id = SEEDS[1].id();

    for path in [
        "/api/v1/violations".to_owned(),
        format!("/api/v1/violations/{id}"),
        "/api/v1/stats/heatmap".to_owned(),
        "/api/v1/stats/remediation?days=90".to_owned(),
        "/api/v1/agents".to_owned(),
        "/api/v1/audit".to_owned(),
        "/api/v1/audit/verify".to_owned(),
    ] {
        let (status, body) = h.get(&path, &viewer).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, _, _) = h
        .raw(
            authorized(Request::get("/api/v1/violations/export"), &viewer)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A scoped viewer reads its departments only.
    assert_eq!(h.ids("", &scoped_viewer).await, ids(&[2, 3, 8]));

    for (action, body) in [
        (format!("{id}/acknowledge"), json!({})),
        (
            format!("{id}/exception"),
            json!({"until": "2099-01-01", "reason": "r"}),
        ),
        (format!("{id}/reopen"), json!({"reason": "r"})),
        (format!("{id}/comments"), json!({"text": "hello"})),
        ("acknowledge".to_owned(), json!({"ids": [id]})),
    ] {
        let got = h
            .post(
                &format!("/api/v1/violations/{action}"),
                &viewer,
                &body.to_string(),
            )
            .await;
        assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    // Refused before the body is looked at.
    let got = h
        .post(
            &format!("/api/v1/violations/{id}/comments"),
            &viewer,
            "{not json",
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        h.store.violation(&id, None).unwrap().unwrap().history.len(),
        1
    );

    // Revoking agents is for admins.
    for token in [&viewer, &manager] {
        let got = h.post("/api/v1/agents/a1/revoke", token, "").await;
        assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    // The audit trail is for admins and unscoped viewers.
    for token in [&scoped_viewer, &manager] {
        for path in ["/api/v1/audit", "/api/v1/audit/verify"] {
            assert_error(
                &h.get(path, token).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            );
        }
    }
    assert_eq!(h.get("/api/v1/audit", &admin).await.0, StatusCode::OK);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let h = Harness::new("unauthenticated");
    seed(&h.store);
    let valid = h.token("ada", Role::Admin, &[]);
    let revoked_issue = h
        .store
        .create_api_token(
            &NewApiToken {
                name: "gone",
                role: Role::Admin,
                departments: &[],
                expires_at: None,
            },
            "cli",
            Utc::now(),
        )
        .unwrap();
    h.store
        .revoke_api_token(&revoked_issue.id, "cli", Utc::now())
        .unwrap();
    // Issued two hours ago for one hour.
    let then = Utc::now() - Duration::hours(2);
    let expired = h
        .store
        .create_api_token(
            &NewApiToken {
                name: "late",
                role: Role::Admin,
                departments: &[],
                expires_at: Some(then + Duration::hours(1)),
            },
            "cli",
            then,
        )
        .unwrap()
        .token;
    let id = SEEDS[0].id();
    let endpoints: Vec<(&str, String)> = vec![
        ("GET", "/api/v1/violations".into()),
        ("GET", format!("/api/v1/violations/{id}")),
        ("GET", "/api/v1/violations/export".into()),
        ("POST", format!("/api/v1/violations/{id}/acknowledge")),
        ("POST", format!("/api/v1/violations/{id}/exception")),
        ("POST", format!("/api/v1/violations/{id}/reopen")),
        ("POST", format!("/api/v1/violations/{id}/comments")),
        ("POST", "/api/v1/violations/acknowledge".into()),
        ("GET", "/api/v1/stats/heatmap".into()),
        ("GET", "/api/v1/stats/remediation".into()),
        ("GET", "/api/v1/agents".into()),
        ("POST", "/api/v1/agents/a1/revoke".into()),
        ("GET", "/api/v1/audit".into()),
        ("GET", "/api/v1/audit/verify".into()),
    ];
    let headers: Vec<Option<String>> = vec![
        None,
        Some("Bearer".into()),
        Some("Bearer ilt_not-a-token".into()),
        Some(format!("Basic {valid}")),
        Some(format!("Bearer {}", revoked_issue.token)),
        Some(format!("Bearer {expired}")),
    ];
    for (method, path) in &endpoints {
        for header in &headers {
            let mut request = Request::builder().method(*method).uri(path);
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let got = h.send(request.body(Body::from("{}")).unwrap()).await;
            assert_error(&got, StatusCode::UNAUTHORIZED, "unauthenticated");
        }
    }
    // The same requests with the valid token get past authentication.
    let (status, _) = h.get("/api/v1/violations", &valid).await;
    assert_eq!(status, StatusCode::OK);
    // Two Authorization headers are refused rather than guessed at.
    let request = Request::get("/api/v1/violations")
        .header("authorization", format!("Bearer {valid}"))
        .header("authorization", "Bearer ilt_other")
        .body(Body::empty())
        .unwrap();
    assert_error(
        &h.send(request).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn actions_record_history_and_audit_entries_in_one_chain() {
    let h = Harness::new("actions");
    seed(&h.store);
    let manager = h.token("mia", Role::Manager, &["sales", "hr"]);
    let admin = h.token("ada", Role::Admin, &[]);
    let id = SEEDS[9].id();
    let url = |action: &str| format!("/api/v1/violations/{id}/{action}");
    let audit_before = h.store.audit_entries(0, 1000).unwrap().len();
    let before = Utc::now();

    let (status, ack) = h
        .post(
            &url("acknowledge"),
            &manager,
            &json!({"reason": "looking into it"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["violation"]["id"], id);
    assert_eq!(ack["violation"]["status"], "acknowledged");
    assert_eq!(ack["entry"]["actor"], "mia");
    assert_eq!(ack["entry"]["action"], "acknowledged");
    assert_eq!(ack["entry"]["from_status"], "open");
    assert_eq!(ack["entry"]["to_status"], "acknowledged");
    assert_eq!(ack["entry"]["reason"], "looking into it");
    let at = parse_time(ack["entry"]["at"].as_str().unwrap());
    assert!(before <= at && at <= Utc::now(), "{at}");
    assert_eq!(ack["violation"]["updated_at"], ack["entry"]["at"]);

    // Twice is a conflict, and writes nothing.
    let again = h.post(&url("acknowledge"), &manager, "").await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");

    // An exception until a date covers that whole day (UTC).
    let (status, except) = h
        .post(
            &url("exception"),
            &manager,
            &json!({"until": "2099-12-31", "reason": "migration next quarter"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{except}");
    assert_eq!(except["violation"]["status"], "excepted");
    assert_eq!(
        except["violation"]["excepted_until"],
        "2100-01-01T00:00:00Z"
    );
    assert_eq!(except["entry"]["from_status"], "acknowledged");
    for (body, code) in [
        (
            json!({"until": "2001-01-01", "reason": "past"}),
            "invalid_field",
        ),
        (json!({"until": "soon", "reason": "r"}), "invalid_field"),
        (
            json!({"until": "2099-01-01", "reason": "  "}),
            "invalid_field",
        ),
        (json!({"until": "2099-01-01"}), "invalid_json"),
    ] {
        let got = h.post(&url("exception"), &manager, &body.to_string()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, code);
    }

    let (status, comment) = h
        .post(
            &url("comments"),
            &admin,
            &json!({"text": "owner on leave"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{comment}");
    assert_eq!(comment["violation"]["status"], "excepted");
    assert_eq!(
        (
            comment["entry"]["action"].as_str(),
            comment["entry"]["reason"].as_str()
        ),
        (Some("commented"), Some("owner on leave"))
    );

    let (status, reopen) = h
        .post(
            &url("reopen"),
            &manager,
            &json!({"reason": "migration cancelled"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reopen}");
    assert_eq!(reopen["violation"]["status"], "open");
    assert_eq!(reopen["violation"]["excepted_until"], Value::Null);
    let again = h
        .post(
            &url("reopen"),
            &manager,
            &json!({"reason": "again"}).to_string(),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");

    // The detail has the whole history, oldest first.
    let (_, detail) = h.get(&format!("/api/v1/violations/{id}"), &admin).await;
    let steps: Vec<(String, String, String)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["to_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let step = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        steps,
        [
            step("agent:a2", "opened", "open"),
            step("mia", "acknowledged", "acknowledged"),
            step("mia", "excepted", "excepted"),
            step("ada", "commented", "excepted"),
            step("mia", "reopened", "open"),
        ]
    );
    assert_eq!(detail["rule"], "rules.misplaced");
    assert_eq!(detail["fix"], "move it to its asset's location");

    // Each action is in the audit trail, through the API, and the chain holds.
    let (_, audit) = h
        .get(&format!("/api/v1/audit?after={audit_before}"), &admin)
        .await;
    let entries: Vec<(&str, &str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("mia", "violation.acknowledged", id.as_str()),
            ("mia", "violation.excepted", id.as_str()),
            ("ada", "violation.commented", id.as_str()),
            ("mia", "violation.reopened", id.as_str()),
        ]
    );
    let details: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["details"])
        .collect();
    assert_eq!(
        details,
        [
            &json!({"from": "open", "to": "acknowledged", "reason": "looking into it"}),
            &json!({"from": "acknowledged", "to": "excepted", "until": "2100-01-01T00:00:00Z",
                    "reason": "migration next quarter"}),
            &json!({"text": "owner on leave"}),
            &json!({"from": "excepted", "to": "open", "reason": "migration cancelled"}),
        ]
    );
    let verification = h.store.verify_audit().unwrap();
    assert_eq!(verification.problem, None);
    let (_, verify) = h.get("/api/v1/audit/verify", &admin).await;
    let last = h.store.audit_entries(0, 1000).unwrap().pop().unwrap();
    assert_eq!(
        verify,
        json!({
            "intact": true,
            "entries": verification.entries,
            "problem": null,
            "head": {"id": last.id, "hash": last.hash},
        })
    );
}

#[tokio::test]
async fn actions_take_strict_json_only() {
    let h = Harness::new("strict_json");
    seed(&h.store);
    let admin = h.token("ada", Role::Admin, &[]);
    let id = SEEDS[1].id();
    let url = |action: &str| format!("/api/v1/violations/{id}/{action}");
    let cases = [
        (
            url("acknowledge"),
            r#"{"reason":"x","urgent":true}"#,
            "unknown field `urgent`",
        ),
        (
            url("exception"),
            r#"{"until":"2099-01-01","reason":"r","by":"me"}"#,
            "unknown field `by`",
        ),
        (url("reopen"), r#"{"why":"r"}"#, "unknown field `why`"),
        (
            url("comments"),
            r#"{"text":"t","author":"x"}"#,
            "unknown field `author`",
        ),
        (url("comments"), r#"{"text":"#, "EOF"),
        (url("acknowledge"), r#""just a string""#, "expected struct"),
        (
            "/api/v1/violations/acknowledge".into(),
            r#"{"ids":[],"all":true}"#,
            "unknown field `all`",
        ),
        (
            "/api/v1/agents/a1/revoke".into(),
            r#"{"force":true}"#,
            "unknown field `force`",
        ),
    ];
    for (path, body, needle) in cases {
        let got = h.post(&path, &admin, body).await;
        assert_message_names(&got, "invalid_json", needle);
    }
    // Nothing happened.
    assert_eq!(
        h.store.violation(&id, None).unwrap().unwrap().history.len(),
        1
    );
    assert_eq!(h.store.agent("a1").unwrap().unwrap().revoked_at, None);
    // An empty body acknowledges without a reason.
    let (status, ack) = h.post(&url("acknowledge"), &admin, "").await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["entry"]["reason"], Value::Null);
}

#[tokio::test]
async fn bulk_acknowledgement_answers_per_id() {
    let h = Harness::new("bulk");
    seed(&h.store);
    let manager = h.token("mia", Role::Manager, &["sales", "hr"]);
    let open_sales = SEEDS[1].id();
    let open_hr = SEEDS[3].id();
    let resolved = SEEDS[7].id();
    let it = SEEDS[4].id();
    let missing = "f".repeat(64);
    let body = json!({
        "ids": [open_sales, open_hr, open_sales, resolved, it, missing],
        "reason": "triaged in the weekly review",
    });
    let (status, answer) = h
        .post(
            "/api/v1/violations/acknowledge",
            &manager,
            &body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["acknowledged"], 2);
    let outcomes: Vec<(&str, bool, &str)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["ok"].as_bool().unwrap(),
                r["error"]["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (open_sales.as_str(), true, ""),
            (open_hr.as_str(), true, ""),
            (open_sales.as_str(), false, "conflict"),
            (resolved.as_str(), false, "conflict"),
            (it.as_str(), false, "not_found"),
            (missing.as_str(), false, "not_found"),
        ]
    );
    assert_eq!(answer["results"][0]["violation"]["status"], "acknowledged");
    assert_eq!(
        answer["results"][1]["entry"]["reason"],
        "triaged in the weekly review"
    );
    let acknowledged: Vec<String> = h
        .store
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "violation.acknowledged" && e.actor == "mia")
        .map(|e| e.subject)
        .collect();
    assert_eq!(acknowledged, [open_sales.clone(), open_hr]);
    assert_eq!(h.store.verify_audit().unwrap().problem, None);

    let too_many: Vec<String> = (0..501).map(|_| open_sales.clone()).collect();
    for ids in [json!([]), json!(too_many)] {
        let got = h
            .post(
                "/api/v1/violations/acknowledge",
                &manager,
                &json!({"ids": ids}).to_string(),
            )
            .await;
        assert_message_names(&got, "invalid_field", "ids");
    }
    // A blank reason is refused for all, before anything is written.
    let got = h
        .post(
            "/api/v1/violations/acknowledge",
            &manager,
            &json!({"ids": [SEEDS[9].id()], "reason": " "}).to_string(),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(
        h.store
            .violation(&SEEDS[9].id(), None)
            .unwrap()
            .unwrap()
            .history
            .len(),
        1
    );
}

/// CSV rows as maps from column name to cell.
fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn ndjson_rows(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn exports_stream_every_page_and_parse_back_to_the_listed_rows() {
    let h = Harness::new("export");
    seed(&h.store);
    // Enough rows for three store pages, on a host whose name would be a formula.
    add_agent(&h.store, "bulk", "=HYPERLINK(\"x\")", t(0));
    let many: Vec<Event> = (1..=1203u64)
        .map(|seq| Event {
            seq,
            at: t(100 + (seq % 17) as i64),
            body: EventBody::ViolationOpened {
                path: format!("/srv/share/report \"{seq}\", final.docx"),
                kind: Kind::Misplaced,
                severity: Severity::Medium,
                label: Some("confidential".into()),
                asset: Some("SHARE".into()),
                department: Some("ops".into()),
                rule: None,
                message: format!("line one\nline two of {seq}"),
                fix: "move it".into(),
                host: "=HYPERLINK(\"x\")".into(),
            },
        })
        .collect();
    h.store.ingest("bulk", &many).unwrap();
    let admin = h.token("ada", Role::Admin, &[]);

    let export = |query: &str| {
        authorized(
            Request::get(format!("/api/v1/violations/export?{query}")),
            &admin,
        )
        .body(Body::empty())
        .unwrap()
    };
    let (status, headers, csv) = h.raw(export("format=csv&sort=severity&order=asc")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=violations.csv"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let (status, headers, ndjson) = h.raw(export("format=ndjson&sort=severity&order=asc")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=violations.ndjson"
    );

    let csv = csv_rows(&csv);
    let ndjson = ndjson_rows(&ndjson);
    assert_eq!(csv.len(), 1213);
    assert_eq!(ndjson.len(), 1213);
    // The same rows in the same order as the list, field for field.
    let listed = h.walk("sort=severity&order=asc", 500, &admin).await;
    let exported: Vec<String> = ndjson
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, listed);
    let unique: BTreeSet<&String> = exported.iter().collect();
    assert_eq!(unique.len(), 1213);
    for (row, object) in csv.iter().zip(&ndjson) {
        let object = object.as_object().unwrap();
        let mut keys: Vec<&String> = object.keys().collect();
        keys.sort();
        let mut columns: Vec<&String> = row.keys().collect();
        columns.sort();
        assert_eq!(columns, keys);
        for (field, value) in object {
            let want = match value {
                Value::Null => String::new(),
                Value::String(s) if field == "host" && s.starts_with('=') => format!("'{s}"),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(row[field], want, "{field} of {}", object["id"]);
        }
    }
    // The NDJSON objects are the list's objects.
    let (_, first_page) = h
        .get("/api/v1/violations?sort=severity&order=asc&limit=3", &admin)
        .await;
    assert_eq!(&first_page["violations"][0], &ndjson[0]);
    assert_eq!(&first_page["violations"][2], &ndjson[2]);

    // Filters apply; CSV is the default format; an empty export still has its header.
    let (_, _, hr) = h.raw(export("department=hr&status=open")).await;
    let hr: BTreeSet<String> = csv_rows(&hr).into_iter().map(|r| r["id"].clone()).collect();
    assert_eq!(hr, ids(&[2, 3, 8]));
    let (status, _, empty) = h.raw(export("department=nobody")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(empty).unwrap();
    assert!(
        text.starts_with("id,agent,host,path,kind,severity,status,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    let (_, _, none) = h.raw(export("department=nobody&format=ndjson")).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn the_heatmap_counts_open_and_acknowledged_by_department_and_severity() {
    let h = Harness::new("heatmap");
    seed(&h.store);
    let admin = h.token("ada", Role::Admin, &[]);
    let (status, body) = h.get("/api/v1/stats/heatmap", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "statuses": ["open", "acknowledged"],
            "cells": [
                {"department": null, "severity": "medium", "count": 1},
                {"department": "hr", "severity": "info", "count": 1},
                {"department": "hr", "severity": "medium", "count": 1},
                {"department": "hr", "severity": "critical", "count": 1},
                {"department": "sales", "severity": "high", "count": 2},
                {"department": "sales", "severity": "critical", "count": 1},
            ],
        })
    );
}

/// A remediation data set relative to `base` ("now"), on agent `r1`:
///
/// - sales: high resolved after 1, 2, 3 and 4 hours and critical after 30 hours within the last
///   30 days; high resolved after 240 hours 50 days ago; open: one critical, one low
///   (acknowledged), one medium excepted (not counted).
/// - hr: info resolved after 10 hours 3 days ago (info has no SLA); one medium open.
/// - no department: medium resolved after 5 hours a day ago.
fn seed_remediation(store: &Store, base: DateTime<Utc>) {
    add_agent(store, "r1", "r1.example", base - Duration::days(100));
    let h = Duration::hours;
    let d = Duration::days;
    let opened =
        |path: &str, severity: Severity, department: Option<&str>, at: DateTime<Utc>| Event {
            seq: 0,
            at,
            body: EventBody::ViolationOpened {
                path: path.into(),
                kind: Kind::Misplaced,
                severity,
                label: None,
                asset: None,
                department: department.map(str::to_owned),
                rule: None,
                message: "m".into(),
                fix: "f".into(),
                host: "r1.example".into(),
            },
        };
    let resolved = |path: &str, at: DateTime<Utc>| Event {
        seq: 0,
        at,
        body: EventBody::ViolationResolved {
            path: path.into(),
            kind: Kind::Misplaced,
        },
    };
    let sales = Some("sales");
    let mut events = Vec::new();
    for (n, hours) in [1, 2, 3, 4].into_iter().enumerate() {
        let path = format!("/s/{n}");
        let at = base - d(10 - n as i64);
        events.push(opened(&path, Severity::High, sales, at));
        events.push(resolved(&path, at + h(hours)));
    }
    events.push(opened("/s/crit", Severity::Critical, sales, base - d(6)));
    events.push(resolved("/s/crit", base - d(6) + h(30)));
    events.push(opened("/s/old", Severity::High, sales, base - d(60)));
    events.push(resolved("/s/old", base - d(50)));
    events.push(opened(
        "/s/open-crit",
        Severity::Critical,
        sales,
        base - d(2),
    ));
    events.push(opened("/s/open-low", Severity::Low, sales, base - d(2)));
    events.push(opened("/s/excepted", Severity::Medium, sales, base - d(2)));
    events.push(opened("/h/info", Severity::Info, Some("hr"), base - d(3)));
    events.push(resolved("/h/info", base - d(3) + h(10)));
    events.push(opened("/h/open", Severity::Medium, Some("hr"), base - d(1)));
    events.push(opened(
        "/u/medium",
        Severity::Medium,
        None,
        base - d(1) - h(5),
    ));
    events.push(resolved("/u/medium", base - d(1)));
    for (i, event) in events.iter_mut().enumerate() {
        event.seq = i as u64 + 1;
    }
    store.ingest("r1", &events).unwrap();
    let id = |path: &str| violation_id("r1", path, Kind::Misplaced);
    store
        .acknowledge(&id("/s/open-low"), "seed", None, base - h(1), None)
        .unwrap();
    store
        .except(
            &id("/s/excepted"),
            "seed",
            base + d(30),
            "accepted",
            base - h(1),
            None,
        )
        .unwrap();
}

fn remediation(
    department: Option<&str>,
    open: SeverityCounts,
    resolved: u64,
    median_seconds: Option<f64>,
    p90_seconds: Option<f64>,
    with_sla: u64,
    within_sla: u64,
) -> DepartmentRemediation {
    DepartmentRemediation {
        department: department.map(str::to_owned),
        open,
        resolved,
        median_seconds,
        p90_seconds,
        resolved_with_sla: with_sla,
        resolved_within_sla: within_sla,
        within_sla_share: (with_sla > 0).then(|| within_sla as f64 / with_sla as f64),
    }
}

#[test]
fn remediation_figures_on_known_timestamps() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("manager")
        .join("remediation-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("collector.db")).unwrap();
    let base = t(60 * 24 * 120);
    seed_remediation(&store, base);
    let slas = Slas::default();
    let counts = |critical, medium, low, info| SeverityCounts {
        critical,
        medium,
        low,
        info,
        ..SeverityCounts::default()
    };

    let month = store
        .remediation(base - Duration::days(30), base, &slas, None)
        .unwrap();
    assert_eq!(
        month,
        [
            remediation(
                None,
                counts(0, 0, 0, 0),
                1,
                Some(18_000.0),
                Some(18_000.0),
                1,
                1
            ),
            remediation(
                Some("hr"),
                counts(0, 1, 0, 0),
                1,
                Some(36_000.0),
                Some(36_000.0),
                0,
                0
            ),
            // [1, 2, 3, 4, 30] hours: median 3; p90 at rank 4.6: 4 + 0.6 × 26 = 19.6 hours. The
            // critical one missed its 24 h.
            remediation(
                Some("sales"),
                counts(1, 0, 1, 0),
                5,
                Some(10_800.0),
                Some(70_560.0),
                5,
                4
            ),
        ]
    );
    // 90 days take in the high one resolved after 240 hours, beyond its 72 h.
    let quarter = store
        .remediation(base - Duration::days(90), base, &slas, None)
        .unwrap();
    assert_eq!(
        quarter[2],
        // [1, 2, 3, 4, 30, 240] hours: median 3.5; p90 at rank 5.5: 30 + 0.5 × 210 = 135 hours.
        remediation(
            Some("sales"),
            counts(1, 0, 1, 0),
            6,
            Some(12_600.0),
            Some(486_000.0),
            6,
            4
        )
    );
    // Other service levels change the share only.
    let mut strict = Slas::default();
    strict.set(Severity::High, Some(TimeDelta::minutes(150)));
    strict.set(Severity::Info, Some(TimeDelta::hours(12)));
    let month = store
        .remediation(base - Duration::days(30), base, &strict, None)
        .unwrap();
    assert_eq!(
        (month[1].resolved_with_sla, month[1].resolved_within_sla),
        (1, 1)
    );
    assert_eq!(
        (month[2].resolved_with_sla, month[2].resolved_within_sla),
        (5, 2)
    );
    assert_eq!(month[2].within_sla_share, Some(0.4));
    // Scoped.
    let hr = ["hr".to_owned()];
    let scoped = store
        .remediation(base - Duration::days(30), base, &slas, Some(&hr))
        .unwrap();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].department.as_deref(), Some("hr"));
    // Before anything was resolved: open counts only, no figures.
    let early = store
        .remediation(
            base - Duration::days(200),
            base - Duration::days(99),
            &slas,
            None,
        )
        .unwrap();
    assert_eq!(
        early,
        [
            remediation(Some("hr"), counts(0, 1, 0, 0), 0, None, None, 0, 0),
            remediation(Some("sales"), counts(1, 0, 1, 0), 0, None, None, 0, 0),
        ]
    );
}

#[tokio::test]
async fn remediation_through_the_api_uses_the_window_and_the_configured_slas() {
    let mut slas = Slas::default();
    slas.set(Severity::Critical, Some(TimeDelta::hours(48)));
    let h = Harness::with("remediation-api", |state| state.with_slas(slas));
    // Whole seconds, so the durations the database computes are exact.
    let base = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    seed_remediation(&h.store, base);
    let admin = h.token("ada", Role::Admin, &[]);

    let (status, body) = h.get("/api/v1/stats/remediation", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["days"], 30);
    let since = parse_time(body["since"].as_str().unwrap());
    let until = parse_time(body["until"].as_str().unwrap());
    assert_eq!(until - since, Duration::days(30));
    assert_eq!(
        body["sla_seconds"],
        json!({"info": null, "low": 2_592_000, "medium": 604_800, "high": 259_200,
               "critical": 172_800})
    );
    let sales = &body["departments"][2];
    assert_eq!(
        sales,
        &json!({
            "department": "sales",
            "open": {"info": 0, "low": 1, "medium": 0, "high": 0, "critical": 1},
            "resolved": 5,
            "median_seconds": 10_800.0,
            "p90_seconds": 70_560.0,
            "resolved_with_sla": 5,
            // The configured 48 h for critical: the 30-hour one now counts as within.
            "resolved_within_sla": 5,
            "within_sla_share": 1.0,
        })
    );
    assert_eq!(body["departments"][0]["department"], Value::Null);
    assert_eq!(body["departments"][1]["within_sla_share"], Value::Null);

    let (_, quarter) = h.get("/api/v1/stats/remediation?days=90", &admin).await;
    assert_eq!(quarter["days"], 90);
    assert_eq!(quarter["departments"][2]["resolved"], 6);
    assert_eq!(quarter["departments"][2]["median_seconds"], 12_600.0);
}

/// An agent enrolled and speaking through the real signed API.
struct Agent {
    id: String,
    secret: String,
}

async fn enroll(h: &Harness) -> Agent {
    let token = h.store.create_enroll_token(Some(1), None).unwrap();
    let request = Request::post("/api/v1/enroll")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"token": token, "hostname": "dev-1.example", "version": "0.3.0"}).to_string(),
        ))
        .unwrap();
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Agent {
        id: body["agent_id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    }
}

async fn send_events(h: &Harness, agent: &Agent, events: &[Event]) -> (StatusCode, Value) {
    let body = json!({ "events": events }).to_string();
    let parts = RequestParts::new("POST", "/api/v1/events", &agent.id, body.as_bytes()).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let headers = sign(agent.secret.as_bytes(), &parts, &stamp);
    let mut request = Request::post("/api/v1/events").header("content-type", "application/json");
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    h.send(request.body(Body::from(body)).unwrap()).await
}

#[tokio::test]
async fn a_violation_resolved_by_observation_keeps_its_history() {
    let h = Harness::new("observation");
    let agent = enroll(&h).await;
    let seed = Seed {
        agent: "unused",
        path: "/home/eve/Desktop/merger.docx",
        kind: Kind::Misplaced,
        severity: Severity::Critical,
        department: Some("legal"),
        label: "secret",
        asset: Some("LEGAL-MA"),
        minute: 0,
    };
    let got = send_events(&h, &agent, &[seed.event(1, t(1))]).await;
    assert_eq!(got, (StatusCode::OK, json!({"stored_through": 1})));
    let id = violation_id(&agent.id, seed.path, seed.kind);
    let manager = h.token("lee", Role::Manager, &["legal"]);
    let (status, _) = h
        .post(
            &format!("/api/v1/violations/{id}/acknowledge"),
            &manager,
            &json!({"reason": "asked eve to move it"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let fixed = Event {
        seq: 2,
        at: t(90),
        body: EventBody::ViolationResolved {
            path: seed.path.into(),
            kind: seed.kind,
        },
    };
    assert_eq!(send_events(&h, &agent, &[fixed]).await.0, StatusCode::OK);

    let (_, detail) = h.get(&format!("/api/v1/violations/{id}"), &manager).await;
    assert_eq!(detail["status"], "resolved");
    assert_eq!(detail["resolved_at"], "2026-03-01T10:30:00Z");
    let history: Vec<(String, String, Value, String, Value)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["from_status"].clone(),
                e["to_status"].as_str().unwrap().to_owned(),
                e["reason"].clone(),
            )
        })
        .collect();
    let agent_actor = format!("agent:{}", agent.id);
    assert_eq!(
        history,
        [
            (
                agent_actor.clone(),
                "opened".into(),
                Value::Null,
                "open".into(),
                Value::Null
            ),
            (
                "lee".into(),
                "acknowledged".into(),
                json!("open"),
                "acknowledged".into(),
                json!("asked eve to move it")
            ),
            (
                agent_actor,
                "resolved".into(),
                json!("acknowledged"),
                "resolved".into(),
                json!("resolved by observation")
            ),
        ]
    );
    // A manager cannot change a resolved violation's status, but may still comment.
    let got = h
        .post(
            &format!("/api/v1/violations/{id}/reopen"),
            &manager,
            &json!({"reason": "no"}).to_string(),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict");
    let got = h
        .post(
            &format!("/api/v1/violations/{id}/comments"),
            &manager,
            &json!({"text": "moved to the deal room"}).to_string(),
        )
        .await;
    assert_eq!(got.0, StatusCode::OK);
    assert_eq!(got.1["violation"]["status"], "resolved");
}

#[tokio::test]
async fn agents_are_listed_with_health_and_staleness_and_admins_revoke_them() {
    let h = Harness::with("agents", |state| {
        state.with_agent_stale_after(TimeDelta::minutes(10))
    });
    let live = enroll(&h).await;
    let health = Event {
        seq: 1,
        at: Utc::now(),
        body: EventBody::Health(Health {
            version: "0.3.1".into(),
            queue_depth: 17,
            dropped_events: 2,
            watch_limit_reached: true,
            last_error: Some("inotify watch limit reached under /home".into()),
            ..Health::default()
        }),
    };
    assert_eq!(send_events(&h, &live, &[health]).await.0, StatusCode::OK);
    // Enrolled an hour ago and never heard from since.
    add_agent(
        &h.store,
        "quiet",
        "quiet.example",
        Utc::now() - Duration::hours(1),
    );
    let viewer = h.token("vic", Role::Viewer, &[]);
    let admin = h.token("ada", Role::Admin, &[]);

    let (status, body) = h.get("/api/v1/agents", &viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stale_after_seconds"], 600);
    let agents = body["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    let (first, second) = (&agents[0], &agents[1]);
    assert_eq!(first["id"], live.id);
    assert_eq!(first["hostname"], "dev-1.example");
    assert_eq!(first["version"], "0.3.1");
    assert_eq!(first["stale"], false);
    assert_eq!(first["revoked_at"], Value::Null);
    assert!(first["last_seen"].is_string());
    assert!(first["enrolled_at"].is_string());
    assert_eq!(
        first["health"],
        json!({"version": "0.3.1", "queue_depth": 17, "dropped_events": 2,
               "watch_limit_reached": true,
               "last_error": "inotify watch limit reached under /home",
               "last_scan_at": null, "last_scan_ms": null, "deferred_events": 0,
               "bundle_version": null, "files": 0, "watches": 0})
    );
    assert_eq!(second["id"], "quiet");
    assert_eq!(second["stale"], true);
    assert_eq!(second["last_seen"], Value::Null);
    assert_eq!(second["health"], Value::Null);

    // Revoking: audited with the admin's name, idempotent, and the agent is refused after.
    let (status, revoked) = h
        .post(
            &format!("/api/v1/agents/{}/revoke", live.id),
            &admin,
            &json!({"reason": "laptop reported stolen"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["stale"], false);
    let (status, again) = h
        .post(&format!("/api/v1/agents/{}/revoke", live.id), &admin, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let revocations: Vec<(String, String, Value)> = h
        .store
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "agent.revoked")
        .map(|e| (e.actor, e.subject, e.details))
        .collect();
    assert_eq!(
        revocations,
        [(
            "ada".to_owned(),
            live.id.clone(),
            json!({"hostname": "dev-1.example", "reason": "laptop reported stolen"})
        )]
    );
    assert_eq!(h.store.verify_audit().unwrap().problem, None);
    let refused = send_events(
        &h,
        &live,
        &[Event {
            seq: 2,
            at: Utc::now(),
            body: EventBody::ViolationResolved {
                path: "/x".into(),
                kind: Kind::Misplaced,
            },
        }],
    )
    .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "agent_revoked");

    let got = h.post("/api/v1/agents/agent-nope/revoke", &admin, "").await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    let got = h
        .post(
            "/api/v1/agents/quiet/revoke",
            &admin,
            &json!({"reason": ""}).to_string(),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_field");
}

#[tokio::test]
async fn the_audit_trail_pages_by_id() {
    let h = Harness::new("audit_pages");
    seed(&h.store);
    let auditor = h.token("aud", Role::Viewer, &[]);
    h.token("one", Role::Viewer, &[]);
    h.token("two", Role::Viewer, &[]);
    // Acknowledgement and exception by the seed, three tokens.
    let total = h.store.audit_entries(0, 1000).unwrap().len() as u64;
    assert_eq!(total, 5);
    let mut seen = Vec::new();
    let mut after = 0u64;
    loop {
        let (status, page) = h
            .get(&format!("/api/v1/audit?after={after}&limit=2"), &auditor)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = page["entries"].as_array().unwrap();
        seen.extend(entries.iter().map(|e| e["id"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => {
                assert_eq!(entries.len(), 2);
                after = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    let (_, page) = h.get("/api/v1/audit?limit=1", &auditor).await;
    let first = &page["entries"][0];
    assert_eq!(first["action"], "violation.acknowledged");
    assert_eq!(first["actor"], "seed");
    assert_eq!(first["subject"], SEEDS[0].id());
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn exceptions_past_their_date_reopen_by_themselves() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("manager")
        .join("expiry");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(&dir.join("collector.db")).unwrap());
    seed(&store);
    // Granted an hour ago until a minute ago.
    let id = SEEDS[1].id();
    let now = Utc::now();
    store
        .except(
            &id,
            "mia",
            now - Duration::minutes(1),
            "short",
            now - Duration::hours(1),
            None,
        )
        .unwrap();
    let expiry = infoledger_server::api::manager::ExceptionExpiry::spawn(
        Arc::clone(&store),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    // The first run happens at once; wait for it (bounded) without assuming how long it takes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let reopened = loop {
        let detail = store.violation(&id, None).unwrap().unwrap();
        if detail.violation.status != ViolationStatus::Excepted {
            break detail;
        }
        assert!(std::time::Instant::now() < deadline, "not reopened");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // Dropping stops the thread, although its next run is an hour away.
    drop(expiry);
    assert_eq!(reopened.violation.status, ViolationStatus::Open);
    let last = reopened.history.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("system", "exception-expired")
    );
    // The exception granted by the seed until 2099 holds.
    let other = store.violation(&SEEDS[4].id(), None).unwrap().unwrap();
    assert_eq!(other.violation.status, ViolationStatus::Excepted);
}
