//! Server-side rules on real database files: escalation past the SLA (once per open period), the
//! webhook announcing critical violations and escalations to a local receiver (signed, retried,
//! surviving a restart), and ledger drift from seeded footprints, also through `GET /api/v1/drift`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use infoledger_policies::wire::events::{AssetFootprint, Footprint};
use infoledger_policies::{Kind, Severity, EXAMPLE_LEDGER, EXAMPLE_POLICY};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::rules::{run_once, RuleSettings};
use infoledger_server::sla::Slas;
use infoledger_server::store::drift::{drift_id, DriftCondition, DriftStatus};
use infoledger_server::store::notify::{DeliveryCounts, WebhookEvent};
use infoledger_server::store::{
    violation_id, Event, EventBody, NewAgent, NewApiToken, Role, Store, ViolationStatus,
};
use infoledger_server::webhook::{
    verify_signature, DeliveryRound, Notifier, NotifierSettings, HEADER_DELIVERY, HEADER_EVENT,
    HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const SECRET: &[u8] = b"webhook secret for tests";

fn db_path(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("rules")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("collector.db")
}

/// 2026-03-01 09:00 UTC plus `hours`.
fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn enroll(store: &Store, id: &str, host: &str) {
    store
        .add_agent(&NewAgent {
            id: id.into(),
            hostname: host.into(),
            secret_hash: "unused".into(),
            enrolled_at: t(-1000),
        })
        .unwrap();
}

fn opened(seq: u64, at: DateTime<Utc>, path: &str, severity: Severity) -> Event {
    Event {
        seq,
        at,
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind: Kind::Misplaced,
            severity,
            label: Some("secret".into()),
            asset: Some("HR-PERSONNEL".into()),
            department: Some("Human Resources".into()),
            rule: Some("rules.forbidden: **/Downloads/**".into()),
            message: format!("{path} is misplaced"),
            fix: "move it".into(),
            host: "ws-1".into(),
        },
    }
}

fn resolved(seq: u64, at: DateTime<Utc>, path: &str) -> Event {
    Event {
        seq,
        at,
        body: EventBody::ViolationResolved {
            path: path.into(),
            kind: Kind::Misplaced,
        },
    }
}

/// The `escalated` rows of a violation's history: (actor, from, to).
fn escalations(store: &Store, id: &str) -> Vec<(String, Option<ViolationStatus>, ViolationStatus)> {
    store
        .violation(id, None)
        .unwrap()
        .unwrap()
        .history
        .into_iter()
        .filter(|h| h.action == "escalated")
        .map(|h| (h.actor, h.from_status, h.to_status))
        .collect()
}

#[test]
fn violations_past_their_sla_escalate_once_per_open_period() {
    let store = Store::open(&db_path("escalation")).unwrap();
    enroll(&store, "a1", "ws-1");
    let id = |path: &str| violation_id("a1", path, Kind::Misplaced);
    store
        .ingest(
            "a1",
            &[
                opened(1, t(0), "/c", Severity::Critical),
                opened(2, t(0), "/h", Severity::High),
                opened(3, t(0), "/i", Severity::Info),
                opened(4, t(0), "/acked", Severity::Critical),
                opened(5, t(0), "/excepted", Severity::Critical),
                opened(6, t(0), "/fixed", Severity::Critical),
                resolved(7, t(1), "/fixed"),
            ],
        )
        .unwrap();
    store
        .acknowledge(&id("/acked"), "alice", None, t(1), None)
        .unwrap();
    store
        .except(&id("/excepted"), "alice", t(1000), "planned", t(1), None)
        .unwrap();
    let slas = Slas::default();

    // Critical's SLA is 24 h: one microsecond short is not yet.
    let early = t(24) - Duration::microseconds(1);
    assert_eq!(store.escalate(early, &slas).unwrap(), Vec::<String>::new());

    let mut want = vec![id("/c"), id("/acked")];
    want.sort();
    assert_eq!(store.escalate(t(24), &slas).unwrap(), want);
    assert_eq!(store.escalated_at(&id("/c")).unwrap(), Some(t(24)));
    assert_eq!(store.escalated_at(&id("/h")).unwrap(), None);
    // Exactly once: later passes find nothing new until the high SLA (72 h) runs out.
    assert_eq!(store.escalate(t(25), &slas).unwrap(), Vec::<String>::new());
    assert_eq!(store.escalate(t(72), &slas).unwrap(), vec![id("/h")]);
    // Info has no SLA; excepted and resolved violations are not escalated.
    assert_eq!(
        store.escalate(t(10_000), &slas).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        escalations(&store, &id("/c")),
        [(
            "system".to_owned(),
            Some(ViolationStatus::Open),
            ViolationStatus::Open
        )]
    );
    assert_eq!(
        escalations(&store, &id("/acked")),
        [(
            "system".to_owned(),
            Some(ViolationStatus::Acknowledged),
            ViolationStatus::Acknowledged
        )]
    );
    for quiet in ["/i", "/excepted", "/fixed"] {
        assert_eq!(escalations(&store, &id(quiet)), [], "{quiet}");
    }

    // Resolved and observed again: a new open period, escalated again after its own SLA.
    store
        .ingest(
            "a1",
            &[
                resolved(8, t(100), "/c"),
                opened(9, t(200), "/c", Severity::Critical),
            ],
        )
        .unwrap();
    assert_eq!(store.escalated_at(&id("/c")).unwrap(), None);
    assert_eq!(store.escalate(t(223), &slas).unwrap(), Vec::<String>::new());
    assert_eq!(store.escalate(t(224), &slas).unwrap(), vec![id("/c")]);
    assert_eq!(escalations(&store, &id("/c")).len(), 2);
}

/// A webhook receiver on 127.0.0.1:0 that answers 500 to its first request and 200 after.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut seen = r.seen.lock().unwrap();
    seen.push((headers, body));
    if seen.len() == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_receiver() -> (Receiver, reqwest::Url, tokio::task::JoinHandle<()>) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let url = reqwest::Url::parse(&format!("http://{addr}/hook")).unwrap();
    (receiver, url, task)
}

fn settings(url: reqwest::Url) -> NotifierSettings {
    NotifierSettings {
        url,
        secret: SECRET.to_vec(),
        events: WebhookEvent::ALL.to_vec(),
        timeout: std::time::Duration::from_secs(20),
        retries: 3,
        retry_delay: std::time::Duration::from_secs(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_announces_critical_violations_and_escalations_signed_and_retried() {
    let (receiver, url, server) = start_receiver().await;
    let path = db_path("webhook");
    let store = Arc::new(Store::open(&path).unwrap());
    enroll(&store, "a1", "ws-1");
    // History from before the webhook existed is not announced.
    store
        .ingest("a1", &[opened(1, t(-50), "/old", Severity::Critical)])
        .unwrap();
    let notifier = Notifier::new(Arc::clone(&store), settings(url.clone())).unwrap();
    assert_eq!(notifier.enqueue(t(0)).await.unwrap(), 0);

    store
        .ingest(
            "a1",
            &[
                opened(2, t(0), "/new", Severity::Critical),
                opened(3, t(0), "/minor", Severity::Low),
            ],
        )
        .unwrap();
    let new_id = violation_id("a1", "/new", Kind::Misplaced);
    let old_id = violation_id("a1", "/old", Kind::Misplaced);
    // The /old one is past its SLA: its escalation is new, so it is announced.
    let escalated = store.escalate(t(1), &Slas::default()).unwrap();
    assert_eq!(escalated, vec![old_id.clone()]);
    assert_eq!(notifier.enqueue(t(1)).await.unwrap(), 2);
    assert_eq!(notifier.enqueue(t(1)).await.unwrap(), 0);

    // First round: the receiver fails the first request, takes the second.
    let round = notifier.deliver_due(t(1)).await.unwrap();
    assert_eq!(
        round,
        DeliveryRound {
            delivered: 1,
            retrying: 1,
            given_up: 0
        }
    );
    assert_eq!(
        store.delivery_counts().unwrap(),
        DeliveryCounts {
            pending: 1,
            delivered: 1,
            failed: 0
        }
    );
    // Not due again before its backoff (at least 8 s with jitter).
    assert_eq!(
        notifier
            .deliver_due(t(1) + Duration::seconds(7))
            .await
            .unwrap(),
        DeliveryRound::default()
    );

    // A restart: a new store and notifier over the same file still hold the pending delivery.
    drop(notifier);
    drop(store);
    let store = Arc::new(Store::open(&path).unwrap());
    let notifier = Notifier::new(Arc::clone(&store), settings(url)).unwrap();
    let round = notifier.deliver_due(t(2)).await.unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(
        store.delivery_counts().unwrap(),
        DeliveryCounts {
            pending: 0,
            delivered: 2,
            failed: 0
        }
    );

    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let mut by_delivery: Vec<(String, u64, String, String)> = Vec::new();
    for (headers, body) in &seen {
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert!(
            verify_signature(SECRET, body, &header(HEADER_SIGNATURE)),
            "signature does not verify"
        );
        assert!(!verify_signature(
            b"some other secret",
            body,
            &header(HEADER_SIGNATURE)
        ));
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["event"], header(HEADER_EVENT));
        assert_eq!(json["delivery"].to_string(), header(HEADER_DELIVERY));
        let sent_at: DateTime<Utc> = json["sent_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(sent_at.timestamp().to_string(), header(HEADER_TIMESTAMP));
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
        by_delivery.push((
            header(HEADER_DELIVERY),
            json["attempt"].as_u64().unwrap(),
            json["event"].as_str().unwrap().to_owned(),
            json["violation"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    // The failed delivery came again with the same id, as attempt 2.
    let first = &by_delivery[0];
    assert_eq!(first.1, 1);
    let retried: Vec<_> = by_delivery.iter().filter(|d| d.0 == first.0).collect();
    assert_eq!(retried.len(), 2);
    assert_eq!(retried[1].1, 2);
    let mut announced: Vec<(String, String)> = by_delivery[1..]
        .iter()
        .map(|d| (d.2.clone(), d.3.clone()))
        .collect();
    announced.sort();
    assert_eq!(
        announced,
        [
            ("critical_opened".to_owned(), new_id.clone()),
            ("escalated".to_owned(), old_id.clone()),
        ]
    );
    let body: Value = serde_json::from_slice(&seen[2].1).unwrap();
    assert_eq!(body["violation"]["severity"], "critical");
    assert_eq!(body["violation"]["department"], "Human Resources");

    // Escalated exactly once, however often the rules run.
    assert_eq!(
        store.escalate(t(3), &Slas::default()).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(escalations(&store, &old_id).len(), 1);
    assert_eq!(notifier.enqueue(t(3)).await.unwrap(), 0);
    server.abort();
}

#[tokio::test]
async fn a_delivery_is_given_up_after_its_retries_and_kept_as_failed() {
    let path = db_path("webhook_gives_up");
    let store = Arc::new(Store::open(&path).unwrap());
    enroll(&store, "a1", "ws-1");
    // A port nothing listens on: bind one, note it, close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut s = settings(reqwest::Url::parse(&format!("http://{addr}/hook")).unwrap());
    s.retries = 1;
    let notifier = Notifier::new(Arc::clone(&store), s).unwrap();
    notifier.enqueue(t(0)).await.unwrap();
    store
        .ingest("a1", &[opened(1, t(0), "/c", Severity::Critical)])
        .unwrap();
    assert_eq!(notifier.enqueue(t(0)).await.unwrap(), 1);
    let first = notifier.deliver_due(t(0)).await.unwrap();
    assert_eq!(first.retrying, 1);
    let last = notifier.deliver_due(t(10)).await.unwrap();
    assert_eq!(last.given_up, 1);
    assert_eq!(
        store.delivery_counts().unwrap(),
        DeliveryCounts {
            pending: 0,
            delivered: 0,
            failed: 1
        }
    );
    assert_eq!(
        notifier.deliver_due(t(100)).await.unwrap(),
        DeliveryRound::default()
    );
}

fn footprint(
    seq: u64,
    at: DateTime<Utc>,
    host: &str,
    roots: &[&str],
    assets: &[(&str, u64)],
) -> Event {
    Event {
        seq,
        at,
        body: EventBody::Footprint(Footprint {
            host: host.into(),
            roots: roots.iter().map(|r| (*r).to_owned()).collect(),
            assets: assets
                .iter()
                .map(|(asset, files)| AssetFootprint {
                    asset: (*asset).to_owned(),
                    files: *files,
                })
                .collect(),
        }),
    }
}

/// (condition, asset, host, files, status) of every drift row.
fn drift_rows(store: &Store) -> Vec<(DriftCondition, String, Option<String>, u64, DriftStatus)> {
    store
        .drift(None, None)
        .unwrap()
        .into_iter()
        .map(|d| (d.condition, d.asset, d.host, d.files, d.status))
        .collect()
}

#[tokio::test]
async fn drift_finds_empty_assets_and_foreign_hosts_and_resolves_when_they_clear() {
    let store = Arc::new(Store::open(&db_path("drift")).unwrap());
    // The ledger is first listed at t(0).
    store
        .import_policy("policy.toml", EXAMPLE_POLICY, "cli", t(0))
        .unwrap();
    store
        .import_ledger("ledger.toml", EXAMPLE_LEDGER, "cli", t(0))
        .unwrap();
    enroll(&store, "build", "build-01");
    enroll(&store, "laptop", "ws-bob");
    enroll(&store, "gone", "ws-old");
    // build-01 watches /srv/projects: ACME's files are there (its hosts allow build-*).
    store
        .ingest(
            "build",
            &[footprint(
                1,
                t(1),
                "build-01",
                &["/srv/projects"],
                &[("ACME-2026", 3)],
            )],
        )
        .unwrap();
    // ws-bob holds ACME files, but ACME lists only build-* and ws-alice.
    store
        .ingest(
            "laptop",
            &[footprint(
                1,
                t(1),
                "ws-bob",
                &["/home/bob"],
                &[("ACME-2026", 2)],
            )],
        )
        .unwrap();
    // A revoked agent's footprint counts for nothing.
    store
        .ingest(
            "gone",
            &[footprint(
                1,
                t(1),
                "ws-old",
                &["/srv"],
                &[("GLOBEX-2025", 9), ("ACME-2026", 1)],
            )],
        )
        .unwrap();
    store.revoke_agent("gone", t(2)).unwrap();

    let settings = RuleSettings {
        interval: std::time::Duration::from_secs(60),
        slas: Slas::default(),
        drift_empty_after: Duration::days(30),
    };
    // Ten days in: nothing is empty for long enough yet; the foreign host is drift at once.
    let pass = run_once(&store, &settings, t(24 * 10)).unwrap();
    assert_eq!(
        (pass.drift.open, pass.drift.opened, pass.drift.resolved),
        (1, 1, 0)
    );
    assert_eq!(
        drift_rows(&store),
        [(
            DriftCondition::ForeignHost,
            "ACME-2026".to_owned(),
            Some("ws-bob".to_owned()),
            2,
            DriftStatus::Open
        )]
    );

    // Thirty-one days in: the assets that hold nothing although an agent allowed to hold them
    // watches their locations. RD-ROADMAP is watched by build-01 (/srv/projects/roadmap/**) and
    // ws-bob (/home/*/roadmap/**); HR-PERSONNEL (hosts hr-fs-*) by no agent, so nobody can tell.
    run_once(&store, &settings, t(24 * 31)).unwrap();
    let open: Vec<(DriftCondition, String, Option<String>)> = drift_rows(&store)
        .into_iter()
        .filter(|r| r.4 == DriftStatus::Open)
        .map(|r| (r.0, r.1, r.2))
        .collect();
    assert_eq!(
        open,
        [
            (
                DriftCondition::ForeignHost,
                "ACME-2026".to_owned(),
                Some("ws-bob".to_owned())
            ),
            (DriftCondition::Empty, "GLOBEX-2025".to_owned(), None),
            (DriftCondition::Empty, "RD-ROADMAP".to_owned(), None),
            (DriftCondition::Empty, "SALES-CRM-EXPORT".to_owned(), None),
        ]
    );
    let roadmap = store
        .drift(None, Some(DriftStatus::Open))
        .unwrap()
        .into_iter()
        .find(|d| d.asset == "RD-ROADMAP")
        .unwrap();
    assert_eq!(
        roadmap.id,
        drift_id("RD-ROADMAP", DriftCondition::Empty, None)
    );
    assert_eq!(
        (roadmap.kind, roadmap.severity),
        ("ledger-drift", Severity::Info)
    );
    assert_eq!(roadmap.opened_at, t(24 * 31));
    assert_eq!(
        roadmap.message,
        "no file of asset RD-ROADMAP (Product roadmap and design documents) in its locations on any of the 2 reporting agents watching them since 2026-03-01"
    );

    // The files leave ws-bob, and roadmap files turn up on build-01.
    store
        .ingest(
            "laptop",
            &[footprint(2, t(24 * 32), "ws-bob", &["/home/bob"], &[])],
        )
        .unwrap();
    store
        .ingest(
            "build",
            &[footprint(
                2,
                t(24 * 32),
                "build-01",
                &["/srv/projects"],
                &[("ACME-2026", 3), ("RD-ROADMAP", 4)],
            )],
        )
        .unwrap();
    let pass = run_once(&store, &settings, t(24 * 33)).unwrap();
    assert_eq!(
        (pass.drift.open, pass.drift.opened, pass.drift.resolved),
        (2, 0, 2)
    );
    let resolved: Vec<(String, DriftCondition)> = store
        .drift(None, Some(DriftStatus::Resolved))
        .unwrap()
        .into_iter()
        .map(|d| (d.asset, d.condition))
        .collect();
    assert_eq!(
        resolved,
        [
            ("ACME-2026".to_owned(), DriftCondition::ForeignHost),
            ("RD-ROADMAP".to_owned(), DriftCondition::Empty),
        ]
    );

    // Roadmap files vanish again: empty counts from the last footprint that saw them (day 32),
    // so it returns, same id, only 30 days later.
    store
        .ingest(
            "build",
            &[footprint(
                3,
                t(24 * 40),
                "build-01",
                &["/srv/projects"],
                &[("ACME-2026", 3)],
            )],
        )
        .unwrap();
    run_once(&store, &settings, t(24 * 61)).unwrap();
    assert!(store
        .drift(None, Some(DriftStatus::Open))
        .unwrap()
        .iter()
        .all(|d| d.asset != "RD-ROADMAP"));
    run_once(&store, &settings, t(24 * 62)).unwrap();
    let back = store
        .drift(None, Some(DriftStatus::Open))
        .unwrap()
        .into_iter()
        .find(|d| d.asset == "RD-ROADMAP")
        .unwrap();
    assert_eq!(back.id, roadmap.id);
    assert_eq!((back.opened_at, back.resolved_at), (t(24 * 62), None));

    // Through the API, a Finance Systems manager sees Finance Systems' drift only.
    let manager = store
        .create_api_token(
            &NewApiToken {
                name: "fiona",
                role: Role::Manager,
                departments: &["Finance Systems".to_owned()],
                expires_at: None,
            },
            "cli",
            Utc::now(),
        )
        .unwrap()
        .token;
    let app = router(AppState::new(
        Arc::clone(&store),
        ServerKey::from_bytes(&[3; 32]).unwrap(),
        ApiConfig::default(),
    ));
    let get = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {manager}"))
            .body(Body::empty())
            .unwrap()
    };
    let response = app.clone().oneshot(get("/api/v1/drift")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let seen: Vec<(&str, &str, &str)> = body["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["asset"].as_str().unwrap(),
                d["condition"].as_str().unwrap(),
                d["department"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("GLOBEX-2025", "empty", "Finance Systems")]);
    assert_eq!(body["drift"][0]["kind"], "ledger-drift");
    assert_eq!(body["drift"][0]["severity"], "info");
    let all = app
        .clone()
        .oneshot(get("/api/v1/drift?status=all"))
        .await
        .unwrap();
    let body: Value =
        serde_json::from_slice(&all.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["drift"].as_array().unwrap().len(), 2);
    let bad = app
        .oneshot(get("/api/v1/drift?status=closed"))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
