//! The OpenAPI document stays in step with the router: every route in the source is documented,
//! every documented operation exists (answers something other than "no such endpoint" or
//! "method not allowed"), and `/api/v1/openapi.json` serves the document.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use infoledger_server::api::{self, ApiConfig, AppState, ServerKey};
use infoledger_server::store::Store;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt as _;

fn document() -> Value {
    serde_json::from_str(api::OPENAPI).unwrap()
}

/// Every API `.route("…"` literal under server/src (the router is assembled from those).
fn routes_in_source() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut rest = text.as_str();
                while let Some(at) = rest.find(".route(") {
                    rest = &rest[at + 7..];
                    let literal = rest.trim_start();
                    if let Some(body) = literal.strip_prefix('"') {
                        let end = body.find('"').unwrap();
                        let route = &body[..end];
                        // The API and the operational endpoints; the dashboard's HTML pages are
                        // not part of the API.
                        if route.starts_with("/api/") || route == "/healthz" || route == "/metrics"
                        {
                            found.insert(route.to_owned());
                        }
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

#[test]
fn every_route_in_the_source_is_documented() {
    let doc = document();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routes = routes_in_source();
    assert!(
        routes.len() >= 20,
        "route scan found too little: {routes:?}"
    );
    let missing: Vec<&String> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_exists_and_the_document_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("o.db")).unwrap());
    let app = api::router(AppState::new(
        store,
        ServerKey::from_bytes(&[7; 32]).unwrap(),
        ApiConfig::default(),
    ));
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let uri = path.replace("{id}", "x");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 26, "{checked}");

    let response = app
        .oneshot(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), doc);
}
