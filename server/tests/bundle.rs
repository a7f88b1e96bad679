//! The bundle through the real router (`tower::ServiceExt::oneshot`): policy and ledger imports
//! by admins with located diagnostics, exports, the version history with its audit entries, and
//! the signed `GET /api/v1/bundle` that agents verify with the key they got at enrollment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use infoledger_policies::wire::bundle::{decode_public_key, SignedBundle};
use infoledger_policies::wire::signing::{sign, RequestParts, Stamp};
use infoledger_policies::{EXAMPLE_LEDGER, EXAMPLE_POLICY};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::store::{NewApiToken, Role, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

const BUNDLE: &str = "/api/v1/bundle";
const KEY: [u8; 32] = [9; 32];

/// A ledger with two problems: an unknown label (line 6, column 9) and an unknown key (line 8).
const BAD_LEDGER: &str = "[[asset]]\nid = \"A\"\nname = \"a\"\ndepartment = \"d\"\nadministrator = \"x\"\nlabel = \"topsecret\"\nlocations = [\"/a/**\"]\ncolour = 1\n";

struct Harness {
    app: Router,
    store: Arc<Store>,
    admin: String,
    viewer: String,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

struct Agent {
    id: String,
    secret: String,
    public_key: Vec<u8>,
}

impl Harness {
    fn new(test: &str) -> Harness {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("bundle")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(Store::open(&dir.join("collector.db")).unwrap());
        let token = |name: &str, role: Role| {
            store
                .create_api_token(
                    &NewApiToken {
                        name,
                        role,
                        departments: &[],
                        expires_at: None,
                    },
                    "cli",
                    Utc::now(),
                )
                .unwrap()
                .token
        };
        let admin = token("alice", Role::Admin);
        let viewer = token("victor", Role::Viewer);
        let state = AppState::new(
            Arc::clone(&store),
            ServerKey::from_bytes(&KEY).unwrap(),
            ApiConfig::default(),
        );
        Harness {
            app: router(state),
            store,
            admin,
            viewer,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn put(&self, token: &str, path: &str, content_type: &str, text: &str) -> Answer {
        let request = Request::put(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(text.to_owned()))
            .unwrap();
        self.send(request).await
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// Policy then ledger, the example files: bundle version 2.
    async fn import_examples(&self) {
        let a = self
            .put(
                &self.admin,
                "/api/v1/policy",
                "application/toml",
                EXAMPLE_POLICY,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.json()["version"], 1);
        let a = self
            .put(
                &self.admin,
                "/api/v1/ledger",
                "application/toml",
                EXAMPLE_LEDGER,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.json()["version"], 2);
    }

    async fn agent(&self) -> Agent {
        let token = self.store.create_enroll_token(Some(1), None).unwrap();
        let request = Request::post("/api/v1/enroll")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"token": token, "hostname": "build-01", "version": "0.1.0"}).to_string(),
            ))
            .unwrap();
        let answer = self.send(request).await;
        assert_eq!(answer.status, StatusCode::CREATED);
        let body = answer.json();
        Agent {
            id: body["agent_id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
            public_key: decode_public_key(body["bundle_public_key"].as_str().unwrap()).unwrap(),
        }
    }

    /// `GET /api/v1/bundle` signed as `signer_id` with `secret` over `signed_path`.
    async fn fetch_as(
        &self,
        signer_id: &str,
        secret: &str,
        signed_method: &str,
        signed_path: &str,
        if_none_match: Option<&str>,
    ) -> Answer {
        let parts = RequestParts::new(signed_method, signed_path, signer_id, b"").unwrap();
        let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
        let mut request = Request::get(BUNDLE);
        for (name, value) in sign(secret.as_bytes(), &parts, &stamp).pairs() {
            request = request.header(name, value);
        }
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn fetch(&self, agent: &Agent, if_none_match: Option<&str>) -> Answer {
        self.fetch_as(&agent.id, &agent.secret, "GET", BUNDLE, if_none_match)
            .await
    }
}

#[tokio::test]
async fn an_agent_fetches_the_signed_bundle_and_verifies_it_with_its_enrollment_key() {
    let h = Harness::new("fetch_verify");
    let agent = h.agent().await;
    let none = h.fetch(&agent, None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.json()["error"]["code"], "no_bundle");

    h.import_examples().await;
    let answer = h.fetch(&agent, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("etag"), Some("\"2\""));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let signed: SignedBundle = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(signed.version, 2);
    let document = signed.verify(&agent.public_key).unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.policy.text, EXAMPLE_POLICY);
    assert_eq!(document.ledger.text, EXAMPLE_LEDGER);
    assert_eq!(document.ledger.name, "ledger.toml");
    let (bundle, _) = document.load().unwrap();
    let ids: Vec<&str> = bundle
        .ledger
        .assets()
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "ACME-2026",
            "GLOBEX-2025",
            "HR-PERSONNEL",
            "RD-ROADMAP",
            "SALES-CRM-EXPORT"
        ]
    );

    // Served again from memory: the same bytes (Ed25519 is deterministic, but the cache means
    // no signing at all).
    let again = h.fetch(&agent, None).await;
    assert_eq!(again.body, answer.body);

    // A new version is served as soon as it is imported.
    let edited = format!("{EXAMPLE_LEDGER}\n# reviewed\n");
    let put = h
        .put(&h.admin, "/api/v1/ledger", "application/toml", &edited)
        .await;
    assert_eq!(put.json()["version"], 3);
    let newer = h.fetch(&agent, Some("\"2\"")).await;
    assert_eq!(newer.status, StatusCode::OK);
    assert_eq!(newer.header("etag"), Some("\"3\""));
    let signed: SignedBundle = serde_json::from_slice(&newer.body).unwrap();
    assert_eq!(
        signed.verify(&agent.public_key).unwrap().ledger.text,
        edited
    );
}

#[tokio::test]
async fn an_unchanged_bundle_answers_not_modified_without_a_body() {
    let h = Harness::new("etag");
    h.import_examples().await;
    let agent = h.agent().await;
    for tag in ["\"2\"", "W/\"2\"", "\"1\", \"2\"", "*"] {
        let answer = h.fetch(&agent, Some(tag)).await;
        assert_eq!(answer.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(answer.body.is_empty(), "{tag}");
        assert_eq!(answer.header("etag"), Some("\"2\""), "{tag}");
    }
    let stale = h.fetch(&agent, Some("\"1\"")).await;
    assert_eq!(stale.status, StatusCode::OK);
}

#[tokio::test]
async fn bundle_requests_without_a_valid_agent_signature_are_refused() {
    let h = Harness::new("refused");
    h.import_examples().await;
    let alice = h.agent().await;
    let bob = h.agent().await;

    let unsigned = h
        .send(Request::get(BUNDLE).body(Body::empty()).unwrap())
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.json()["error"]["code"], "missing_header");

    // Signed for another request (the events endpoint): the signature does not cover this one.
    let elsewhere = h
        .fetch_as(&alice.id, &alice.secret, "POST", "/api/v1/events", None)
        .await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    assert_eq!(elsewhere.json()["error"]["code"], "bad_signature");

    // Bob's id with Alice's secret: an agent speaking as another.
    let impostor = h
        .fetch_as(&bob.id, &alice.secret, "GET", BUNDLE, None)
        .await;
    assert_eq!(impostor.status, StatusCode::UNAUTHORIZED);
    assert_eq!(impostor.json()["error"]["code"], "bad_signature");

    // A tampered signature header.
    let parts = RequestParts::new("GET", BUNDLE, &alice.id, b"").unwrap();
    let stamp = Stamp::generate(Utc::now(), &ring::rand::SystemRandom::new()).unwrap();
    let mut request = Request::get(BUNDLE);
    for (name, value) in sign(alice.secret.as_bytes(), &parts, &stamp).pairs() {
        let value = if name.eq_ignore_ascii_case("x-infoledger-signature") {
            let mut v = value.to_string();
            let last = v.pop().unwrap();
            v.push(if last == 'A' { 'B' } else { 'A' });
            v
        } else {
            value.to_string()
        };
        request = request.header(name, value);
    }
    let tampered = h.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);

    // A correctly signed request from an agent that is not enrolled (a secret the server would
    // derive, for an id it never issued).
    let key = ServerKey::from_bytes(&KEY).unwrap();
    let ghost = "agent-00000000000000000000000000000000";
    let unknown = h
        .fetch_as(ghost, &key.agent_secret(ghost), "GET", BUNDLE, None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.json()["error"]["code"], "unknown_agent");

    h.store.revoke_agent(&bob.id, Utc::now()).unwrap();
    let revoked = h.fetch(&bob, None).await;
    assert_eq!(revoked.status, StatusCode::FORBIDDEN);
    assert_eq!(revoked.json()["error"]["code"], "agent_revoked");

    // People's tokens do not fetch bundles.
    let person = h.get(&h.admin, BUNDLE).await;
    assert_eq!(person.status, StatusCode::UNAUTHORIZED);

    // Alice, properly signed, still gets it.
    assert_eq!(h.fetch(&alice, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_invalid_ledger_is_422_with_located_diagnostics_and_changes_nothing() {
    let h = Harness::new("invalid_ledger");
    h.import_examples().await;
    let answer = h
        .put(&h.admin, "/api/v1/ledger", "application/toml", BAD_LEDGER)
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "invalid_document");
    assert_eq!(error["message"], "the ledger is invalid");
    let diagnostics = error["diagnostics"].as_array().unwrap();
    let located: Vec<(String, u64, u64, String)> = diagnostics
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            ("ledger.toml".to_owned(), 6, 9, "error".to_owned()),
            ("ledger.toml".to_owned(), 8, 1, "error".to_owned()),
        ]
    );
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .unwrap()
            .contains("topsecret"),
        "{}",
        diagnostics[0]
    );
    assert!(
        diagnostics[1]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{}",
        diagnostics[1]
    );
    assert_eq!(h.store.bundle_version().unwrap(), Some(2));

    // A CSV ledger (chosen by the content type) is located by line and field.
    let csv = "id,name,department,administrator,label,locations\nC-1,c,Sales,d@example.com,nosuchlabel,/c/**\n";
    let answer = h.put(&h.admin, "/api/v1/ledger", "text/csv", csv).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let d = &answer.json()["error"]["diagnostics"][0];
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (Some("ledger.csv"), Some(2), Some(5))
    );
    assert_eq!(h.store.bundle_version().unwrap(), Some(2));
}

#[tokio::test]
async fn a_policy_that_would_break_the_current_ledger_is_refused_with_the_ledgers_problems() {
    let h = Harness::new("policy_breaks_ledger");
    h.import_examples().await;
    let start = EXAMPLE_POLICY.find("[[label]]\nname = \"secret\"").unwrap();
    let end = EXAMPLE_POLICY.find("[rules]").unwrap();
    let policy = format!("{}{}", &EXAMPLE_POLICY[..start], &EXAMPLE_POLICY[end..]);
    let answer = h
        .put(&h.admin, "/api/v1/policy", "application/toml", &policy)
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "invalid_document");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("current ledger (version 2)"),
        "{error}"
    );
    let first = &error["diagnostics"][0];
    assert_eq!(first["file"], "ledger.toml");
    // HR-PERSONNEL's `label = "secret"` in the example ledger.
    let line = EXAMPLE_LEDGER
        .lines()
        .position(|l| l == "label = \"secret\"")
        .unwrap()
        + 1;
    assert_eq!(first["line"], line);
    assert_eq!(first["column"], 9);
    assert_eq!(h.store.bundle_version().unwrap(), Some(2));
}

#[tokio::test]
async fn a_ledger_needs_a_policy_first_and_only_admins_change_the_bundle() {
    let h = Harness::new("order_and_roles");
    let early = h
        .put(
            &h.admin,
            "/api/v1/ledger",
            "application/toml",
            EXAMPLE_LEDGER,
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.json()["error"]["code"], "no_policy");

    let viewer = h
        .put(
            &h.viewer,
            "/api/v1/policy",
            "application/toml",
            EXAMPLE_POLICY,
        )
        .await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    assert_eq!(viewer.json()["error"]["code"], "forbidden");
    let anonymous = h
        .send(
            Request::put("/api/v1/policy")
                .body(Body::from(EXAMPLE_POLICY))
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.store.bundle_version().unwrap(), None);

    let none = h.get(&h.viewer, "/api/v1/policy").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.json()["error"]["code"], "no_bundle");

    h.import_examples().await;
    let again = h
        .put(
            &h.admin,
            "/api/v1/ledger",
            "application/toml",
            EXAMPLE_LEDGER,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.json(),
        json!({"version": 2, "changed": false, "warnings": []})
    );

    let bad_name = h
        .put(
            &h.admin,
            "/api/v1/ledger?name=..%2Fx.toml",
            "application/toml",
            EXAMPLE_LEDGER,
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_name.json()["error"]["code"], "invalid_field");
    let not_text = h
        .send(
            Request::put("/api/v1/ledger")
                .header("authorization", format!("Bearer {}", h.admin))
                .body(Body::from(vec![0xff, 0xfe, 0x00]))
                .unwrap(),
        )
        .await;
    assert_eq!(not_text.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_text.json()["error"]["code"], "invalid_field");
}

#[tokio::test]
async fn exports_return_each_versions_text_with_its_type() {
    let h = Harness::new("export");
    h.import_examples().await;
    let csv = "id,name,department,administrator,label,locations\nC-1,c,Sales,d@example.com,internal,/c/**\n";
    let put = h
        .put(
            &h.admin,
            "/api/v1/ledger?name=assets.csv",
            "text/plain",
            csv,
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(put.json()["version"], 3);

    let ledger = h.get(&h.viewer, "/api/v1/ledger").await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.text(), csv);
    assert_eq!(
        ledger.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(ledger.header("etag"), Some("\"3\""));
    assert_eq!(ledger.header("x-infoledger-bundle-version"), Some("3"));
    assert_eq!(
        ledger.header("content-disposition"),
        Some("inline; filename=\"assets.csv\"")
    );

    let older = h.get(&h.viewer, "/api/v1/ledger?version=2").await;
    assert_eq!(older.text(), EXAMPLE_LEDGER);
    assert_eq!(
        older.header("content-type"),
        Some("application/toml; charset=utf-8")
    );
    let policy = h.get(&h.viewer, "/api/v1/policy?version=1").await;
    assert_eq!(policy.text(), EXAMPLE_POLICY);

    let missing = h.get(&h.viewer, "/api/v1/policy?version=9").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    let bad = h.get(&h.viewer, "/api/v1/policy?version=x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["code"], "invalid_field");
    let unknown = h.get(&h.viewer, "/api/v1/policy?colour=1").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_change_is_listed_and_audited_in_an_intact_chain() {
    let h = Harness::new("versions_audit");
    h.import_examples().await;
    let edited = format!("{EXAMPLE_POLICY}\n# reviewed\n");
    h.put(&h.admin, "/api/v1/policy", "application/toml", &edited)
        .await;

    let answer = h.get(&h.viewer, "/api/v1/bundle/versions").await;
    assert_eq!(answer.status, StatusCode::OK);
    let versions = answer.json()["versions"].as_array().unwrap().clone();
    let listed: Vec<(u64, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["actor"].as_str().unwrap(),
                v["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (3, "alice", "policy"),
            (2, "alice", "ledger"),
            (1, "alice", "policy")
        ]
    );
    let sha = infoledger_server::store::bundle::sha256_hex(&edited);
    assert_eq!(versions[0]["policy"]["sha256"], sha.as_str());
    assert_eq!(versions[0]["policy"]["bytes"], edited.len());
    let limited = h.get(&h.viewer, "/api/v1/bundle/versions?limit=1").await;
    assert_eq!(limited.json()["versions"].as_array().unwrap().len(), 1);

    let audit = h.store.audit_entries(0, 100).unwrap();
    let bundle_entries: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("bundle."))
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        bundle_entries,
        [
            ("alice", "bundle.policy_changed", "bundle:1"),
            ("alice", "bundle.ledger_changed", "bundle:2"),
            ("alice", "bundle.policy_changed", "bundle:3"),
        ]
    );
    let last = audit.last().unwrap();
    assert_eq!(last.details["sha256"], sha.as_str());
    assert_eq!(last.details["version"], 3);
    let verified = h.store.verify_audit().unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!(verified.entries, audit.len() as u64);
}
