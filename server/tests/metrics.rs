//! `GET /metrics` through the real router: exact counter values after a known sequence of
//! requests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::store::{Event, EventBody, Store};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Option<String>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn opened(seq: u64) -> Event {
    Event {
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
    }
}

fn signed_events(agent: &str, secret: &str, events: &[Event]) -> Request<Body> {
    let body = json!({ "events": events }).to_string();
    let parts = RequestParts::new("POST", "/api/v1/events", agent, body.as_bytes()).unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let mut request = Request::post("/api/v1/events").header("content-type", "application/json");
    for (name, value) in sign(secret.as_bytes(), &parts, &stamp).pairs() {
        request = request.header(name, value);
    }
    request.body(Body::from(body)).unwrap()
}

/// The value of the sample line `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

#[tokio::test]
async fn a_scrape_counts_requests_events_batches_transactions_and_violations_exactly() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(&dir.join("collector.db")).unwrap());
    let app = router(AppState::new(
        Arc::clone(&store),
        ServerKey::from_bytes(&[9; 32]).unwrap(),
        ApiConfig::default(),
    ));

    let token = store.create_enroll_token(Some(1), None).unwrap();
    let enroll = json!({"token": token, "hostname": "dev-17.example", "version": "0.1.0"});
    let (status, _, body) = call(
        &app,
        Request::post("/api/v1/enroll")
            .header("content-type", "application/json")
            .body(Body::from(enroll.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let identity: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (agent, secret) = (
        identity["agent_id"].as_str().unwrap(),
        identity["secret"].as_str().unwrap(),
    );

    let first: Vec<Event> = (1..=3).map(opened).collect();
    let resolve = Event {
        seq: 4,
        at: Utc::now(),
        body: EventBody::ViolationResolved {
            path: "/home/a/Downloads/1.docx".into(),
            kind: Kind::Misplaced,
        },
    };
    let requests = [
        (signed_events(agent, secret, &first), StatusCode::OK),
        // A replay: answered, stores nothing new.
        (signed_events(agent, secret, &first), StatusCode::OK),
        (signed_events(agent, secret, &[resolve]), StatusCode::OK),
        // A forged signature never reaches the store.
        (
            signed_events(agent, &"x".repeat(43), &[opened(5)]),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Request::get("/no/such/thing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (request, expected) in requests {
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, expected, "{body}");
    }

    let scrape = || Request::get("/metrics").body(Body::empty()).unwrap();
    let (status, content_type, text) = call(&app, scrape()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let expected = [
        (
            r#"infoledger_http_requests_total{route="/api/v1/enroll",status="2xx"}"#,
            "1",
        ),
        (
            r#"infoledger_http_requests_total{route="/api/v1/events",status="2xx"}"#,
            "3",
        ),
        (
            r#"infoledger_http_requests_total{route="/api/v1/events",status="4xx"}"#,
            "1",
        ),
        (
            r#"infoledger_http_requests_total{route="unmatched",status="4xx"}"#,
            "1",
        ),
        ("infoledger_ingest_request_duration_seconds_count", "4"),
        (
            r#"infoledger_ingest_request_duration_seconds_bucket{le="+Inf"}"#,
            "4",
        ),
        ("infoledger_events_stored_total", "4"),
        (
            r#"infoledger_ingest_batches_total{outcome="committed"}"#,
            "3",
        ),
        (r#"infoledger_ingest_batches_total{outcome="failed"}"#, "0"),
        // Requests one after another: nothing to group, one transaction each.
        ("infoledger_store_transactions_total", "3"),
        ("infoledger_ingest_queue_pushed_total", "3"),
        ("infoledger_ingest_queue_popped_total", "3"),
        (r#"infoledger_violations{status="open"}"#, "2"),
        (r#"infoledger_violations{status="acknowledged"}"#, "0"),
        (r#"infoledger_violations{status="excepted"}"#, "0"),
        (r#"infoledger_violations{status="resolved"}"#, "1"),
    ];
    for (series, value) in expected {
        assert_eq!(
            sample(&text, series).as_deref(),
            Some(value),
            "{series}\n{text}"
        );
    }
    // Classes that never occurred are not rendered; a scrape is counted after it is answered.
    assert_eq!(
        sample(
            &text,
            r#"infoledger_http_requests_total{route="/api/v1/events",status="5xx"}"#
        ),
        None
    );
    assert_eq!(
        sample(
            &text,
            r#"infoledger_http_requests_total{route="/metrics",status="2xx"}"#
        ),
        None
    );
    assert!(text.contains("# TYPE infoledger_ingest_request_duration_seconds histogram\n"));

    let (_, _, again) = call(&app, scrape()).await;
    assert_eq!(
        sample(
            &again,
            r#"infoledger_http_requests_total{route="/metrics",status="2xx"}"#
        )
        .as_deref(),
        Some("1")
    );
}
