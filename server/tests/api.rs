//! Behaviour of the agent-facing HTTP API through the real router (`tower::ServiceExt::oneshot`):
//! enrollment, signed idempotent ingest, and every way a request is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::{Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use infoledger_policies::wire::signing::{sign, RequestParts, SignatureHeaders, Stamp};
use infoledger_policies::{Kind, Severity};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::store::{Event, EventBody, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

const EVENTS: &str = "/api/v1/events";
const KEY: [u8; 32] = [7; 32];

struct Harness {
    app: Router,
    store: Arc<Store>,
}

impl Harness {
    fn new(test: &str) -> Harness {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("api")
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
            app: router(state),
            store,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, body)
    }

    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    async fn enroll(&self, token: &str) -> (StatusCode, Value) {
        self.post_json(
            "/api/v1/enroll",
            json!({"token": token, "hostname": "dev-17.example", "version": "0.1.0"}),
        )
        .await
    }

    /// Enrolls a new agent with a fresh token; returns its id and secret.
    async fn agent(&self) -> Agent {
        let token = self.store.create_enroll_token(Some(1), None).unwrap();
        let (status, body) = self.enroll(&token).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Agent {
            id: body["agent_id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    async fn send_signed(&self, signed: &Signed) -> (StatusCode, Value) {
        let mut request = Request::post(EVENTS).header("content-type", "application/json");
        for (name, value) in signed.headers.pairs() {
            request = request.header(name, value);
        }
        self.send(request.body(Body::from(signed.body.clone())).unwrap())
            .await
    }
}

#[derive(Debug, Clone)]
struct Agent {
    id: String,
    secret: String,
}

/// A signed request: its body and headers.
#[derive(Debug, Clone)]
struct Signed {
    body: Vec<u8>,
    headers: SignatureHeaders,
}

fn sign_as(agent_id: &str, secret: &str, body: &[u8], at: chrono::DateTime<Utc>) -> Signed {
    let parts = RequestParts::new("POST", EVENTS, agent_id, body).unwrap();
    let stamp = Stamp::generate(at, &ring::rand::SystemRandom::new()).unwrap();
    Signed {
        body: body.to_vec(),
        headers: sign(secret.as_bytes(), &parts, &stamp),
    }
}

fn signed(agent: &Agent, body: &Value) -> Signed {
    sign_as(
        &agent.id,
        &agent.secret,
        body.to_string().as_bytes(),
        Utc::now(),
    )
}

fn opened(seq: u64, path: &str) -> Event {
    Event {
        seq,
        at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(seq as i64),
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind: Kind::Misplaced,
            severity: Severity::High,
            label: Some("confidential".into()),
            asset: Some("ACME".into()),
            department: Some("sales".into()),
            rule: Some("rules.forbidden: **/Downloads/**".into()),
            message: format!("{path} is misplaced"),
            fix: "move it".into(),
            host: "dev-17.example".into(),
        },
    }
}

fn batch(seqs: std::ops::RangeInclusive<u64>) -> Value {
    let events: Vec<Event> = seqs
        .map(|seq| opened(seq, &format!("/home/a/Downloads/{seq}.docx")))
        .collect();
    json!({ "events": events })
}

#[track_caller]
fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str) {
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

#[tokio::test]
async fn enrollment_with_a_valid_token_issues_an_identity_that_can_sign() {
    let h = Harness::new("enroll_ok");
    let token = h.store.create_enroll_token(None, None).unwrap();
    let (status, body) = h.enroll(&token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let agent = Agent {
        id: body["agent_id"].as_str().unwrap().into(),
        secret: body["secret"].as_str().unwrap().into(),
    };
    assert_eq!(agent.secret.len(), 43);
    let stored = h.store.agent(&agent.id).unwrap().unwrap();
    assert_eq!(stored.hostname, "dev-17.example");
    assert_eq!(stored.version.as_deref(), Some("0.1.0"));
    // A multi-use token enrolls the next host too, with another identity.
    let (status, second) = h.enroll(&token).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(second["agent_id"], body["agent_id"]);
    assert_ne!(second["secret"], body["secret"]);
    // The secret the server issued is the one it verifies with.
    let (status, body) = h.send_signed(&signed(&agent, &batch(1..=1))).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"stored_through": 1}))
    );
}

#[tokio::test]
async fn enrollment_with_an_expired_token_is_refused() {
    let h = Harness::new("enroll_expired");
    let token = h
        .store
        .create_enroll_token(None, Some(Utc::now() - Duration::minutes(1)))
        .unwrap();
    assert_error(
        h.enroll(&token).await,
        StatusCode::UNAUTHORIZED,
        "enroll_token_invalid",
    );
    assert_error(
        h.enroll("not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "enroll_token_invalid",
    );
}

#[tokio::test]
async fn a_single_use_token_enrolls_exactly_once() {
    let h = Harness::new("enroll_single_use");
    let token = h.store.create_enroll_token(Some(1), None).unwrap();
    assert_eq!(h.enroll(&token).await.0, StatusCode::CREATED);
    assert_error(
        h.enroll(&token).await,
        StatusCode::UNAUTHORIZED,
        "enroll_token_invalid",
    );
}

#[tokio::test]
async fn enrollment_requests_are_strict_json() {
    let h = Harness::new("enroll_strict");
    let token = h.store.create_enroll_token(Some(1), None).unwrap();
    let got = h
        .post_json(
            "/api/v1/enroll",
            json!({"token": token, "hostname": "h", "version": "1", "role": "admin"}),
        )
        .await;
    assert_error(got.clone(), StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `role`"),
        "{}",
        got.1
    );
    let got = h
        .post_json(
            "/api/v1/enroll",
            json!({"token": token, "hostname": "a\nb", "version": "1"}),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_field");
    let request = Request::post("/api/v1/enroll")
        .body(Body::from("{not json"))
        .unwrap();
    assert_error(
        h.send(request).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    // None of these used the token up.
    assert_eq!(h.enroll(&token).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn signed_ingest_stores_and_answers_the_contiguous_sequence() {
    let h = Harness::new("ingest_ok");
    let agent = h.agent().await;
    let got = h.send_signed(&signed(&agent, &batch(1..=3))).await;
    assert_eq!(got, (StatusCode::OK, json!({"stored_through": 3})));
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 3);
    // After a gap the answer stays at the contiguous mark; the event is stored all the same.
    let got = h.send_signed(&signed(&agent, &batch(5..=5))).await;
    assert_eq!(got, (StatusCode::OK, json!({"stored_through": 3})));
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 4);
    // The body may name its agent; the signer's own id is accepted.
    let body = json!({"agent": agent.id, "events": batch(4..=4)["events"]});
    let got = h.send_signed(&signed(&agent, &body)).await;
    assert_eq!(got, (StatusCode::OK, json!({"stored_through": 5})));
}

#[tokio::test]
async fn a_replayed_request_is_refused_and_stores_nothing() {
    let h = Harness::new("ingest_replayed");
    let agent = h.agent().await;
    let request = signed(&agent, &batch(1..=2));
    assert_eq!(h.send_signed(&request).await.0, StatusCode::OK);
    // Someone who captured the request sends the very same bytes and headers again.
    assert_error(
        h.send_signed(&request).await,
        StatusCode::UNAUTHORIZED,
        "replayed",
    );
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 2);
}

#[tokio::test]
async fn a_resigned_batch_is_idempotent() {
    let h = Harness::new("ingest_resigned");
    let agent = h.agent().await;
    let body = batch(1..=3);
    let first = h.send_signed(&signed(&agent, &body)).await;
    assert_eq!(first, (StatusCode::OK, json!({"stored_through": 3})));
    // The agent did not get the answer and sends the batch again with a fresh nonce.
    let again = h.send_signed(&signed(&agent, &body)).await;
    assert_eq!(again, first);
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 3);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let h = Harness::new("ingest_tampered");
    let agent = h.agent().await;
    let mut request = signed(&agent, &batch(1..=1));
    let text = String::from_utf8(request.body.clone()).unwrap();
    request.body = text.replace("misplaced\"", "unencrypted\"").into_bytes();
    assert_ne!(request.body, text.as_bytes());
    assert_error(
        h.send_signed(&request).await,
        StatusCode::UNAUTHORIZED,
        "body_mismatch",
    );
    // Recomputing the content hash does not help without the secret.
    let forged = sign_as(&agent.id, "guess", &request.body, Utc::now());
    request.headers.content_sha256 = forged.headers.content_sha256;
    assert_error(
        h.send_signed(&request).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 0);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let h = Harness::new("ingest_wrong_secret");
    let agent = h.agent().await;
    let mut wrong = agent.clone();
    wrong.secret = ServerKey::from_bytes(&[8; 32])
        .unwrap()
        .agent_secret(&agent.id);
    assert_error(
        h.send_signed(&signed(&wrong, &batch(1..=1))).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 0);
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_refused() {
    let h = Harness::new("ingest_stale");
    let agent = h.agent().await;
    let body = batch(1..=1).to_string();
    for at in [
        Utc::now() - Duration::minutes(10),
        Utc::now() + Duration::minutes(10),
    ] {
        let request = sign_as(&agent.id, &agent.secret, body.as_bytes(), at);
        assert_error(
            h.send_signed(&request).await,
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        );
    }
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 0);
}

#[tokio::test]
async fn an_agent_cannot_speak_for_another() {
    let h = Harness::new("ingest_cross_agent");
    let alice = h.agent().await;
    let mallory = h.agent().await;
    // Mallory signs with her own secret but claims to be Alice.
    let claim = Agent {
        id: alice.id.clone(),
        secret: mallory.secret.clone(),
    };
    assert_error(
        h.send_signed(&signed(&claim, &batch(1..=1))).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    // Mallory signs as herself and names Alice in the body.
    let body = json!({"agent": alice.id, "events": batch(1..=1)["events"]});
    assert_error(
        h.send_signed(&signed(&mallory, &body)).await,
        StatusCode::FORBIDDEN,
        "agent_mismatch",
    );
    assert_eq!(h.store.stored_events(&alice.id).unwrap(), 0);
    assert_eq!(h.store.stored_events(&mallory.id).unwrap(), 0);
}

#[tokio::test]
async fn revoked_and_unknown_agents_are_refused() {
    let h = Harness::new("ingest_revoked");
    let agent = h.agent().await;
    assert_eq!(
        h.send_signed(&signed(&agent, &batch(1..=1))).await.0,
        StatusCode::OK
    );
    h.store.revoke_agent(&agent.id, Utc::now()).unwrap();
    assert_error(
        h.send_signed(&signed(&agent, &batch(2..=2))).await,
        StatusCode::FORBIDDEN,
        "agent_revoked",
    );
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 1);

    // Correctly signed for an id that was never enrolled (only the server key can do that).
    let ghost = Agent {
        id: "agent-ghost".into(),
        secret: ServerKey::from_bytes(&KEY)
            .unwrap()
            .agent_secret("agent-ghost"),
    };
    assert_error(
        h.send_signed(&signed(&ghost, &batch(1..=1))).await,
        StatusCode::UNAUTHORIZED,
        "unknown_agent",
    );
}

#[tokio::test]
async fn unsigned_requests_are_refused() {
    let h = Harness::new("ingest_unsigned");
    let got = h.post_json(EVENTS, batch(1..=1)).await;
    assert_error(got, StatusCode::UNAUTHORIZED, "missing_header");
    // A signing header sent twice is refused rather than one of them picked.
    let agent = h.agent().await;
    let request = signed(&agent, &batch(1..=1));
    let mut builder = Request::post(EVENTS).header("x-infoledger-nonce", "AAAAAAAAAAAAAAAAAAAAAA");
    for (name, value) in request.headers.pairs() {
        builder = builder.header(name, value);
    }
    let got = h
        .send(builder.body(Body::from(request.body)).unwrap())
        .await;
    assert_error(got, StatusCode::UNAUTHORIZED, "malformed_header");
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_json() {
    let h = Harness::new("ingest_oversized");
    let agent = h.agent().await;
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let request = sign_as(&agent.id, &agent.secret, &big, Utc::now());
    assert_error(
        h.send_signed(&request).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    let request = Request::post("/api/v1/enroll")
        .body(Body::from(big))
        .unwrap();
    assert_error(
        h.send(request).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
}

#[tokio::test]
async fn unknown_fields_in_a_signed_batch_are_refused() {
    let h = Harness::new("ingest_unknown_field");
    let agent = h.agent().await;
    let mut body = batch(1..=1);
    body["compress"] = json!(true);
    let got = h.send_signed(&signed(&agent, &body)).await;
    assert_error(got.clone(), StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `compress`"),
        "{}",
        got.1
    );
    // Also inside an event.
    let mut body = batch(1..=1);
    body["events"][0]["body"]["contents"] = json!("secret stuff");
    let got = h.send_signed(&signed(&agent, &body)).await;
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_json");
    // A sequence number the store cannot take.
    let mut body = batch(1..=1);
    body["events"][0]["seq"] = json!(0);
    let got = h.send_signed(&signed(&agent, &body)).await;
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(h.store.stored_events(&agent.id).unwrap(), 0);
}

#[tokio::test]
async fn healthz_answers_ok_after_reading_the_database() {
    let h = Harness::new("healthz");
    let request = Request::get("/healthz").body(Body::empty()).unwrap();
    assert_eq!(
        h.send(request).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::new("routes");
    let request = Request::get("/api/v1/nope").body(Body::empty()).unwrap();
    assert_error(h.send(request).await, StatusCode::NOT_FOUND, "not_found");
    let request = Request::get(EVENTS).body(Body::empty()).unwrap();
    assert_error(
        h.send(request).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}
