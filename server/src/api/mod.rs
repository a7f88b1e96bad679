//! The collector's HTTP API: the agent-facing endpoints (enrollment, signed event ingest), the
//! health check and the Prometheus metrics, as an axum [`Router`] over shared [`AppState`].
//!
//! Every error is JSON `{"error":{"code":"…","message":"…"}}` ([`AppError`]). Bodies are read as
//! bytes under a size limit and parsed strictly (unknown fields refused) by the handlers
//! themselves, so that signed requests are verified over the exact bytes received and a body is
//! parsed only after its signature checked out. Blocking work (SQLite, hashing a large body) runs
//! on tokio's blocking pool.

mod agent;
mod error;
pub mod keys;
mod metrics;

pub use error::AppError;
pub use keys::ServerKey;

use crate::store::Store;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use infoledger_policies::wire::signing::{
    InMemoryReplayGuard, ReplayGuard, ReplayRejection, DEFAULT_MAX_SKEW,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How far a signed request's timestamp may be from the server's clock.
    pub max_skew: Duration,
    /// How many `(agent, nonce)` pairs the replay guard holds; size it for peak signed requests
    /// per second × 2 × `max_skew` (see `InMemoryReplayGuard`).
    pub replay_capacity: usize,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            max_body_bytes: 4 * 1024 * 1024,
            max_skew: DEFAULT_MAX_SKEW,
            // 100 signed requests per second across the fleet for 2 × 300 s.
            replay_capacity: 60_000,
        }
    }
}

/// What every handler shares: the store, the server key and the replay guard.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    key: ServerKey,
    config: ApiConfig,
    // One guard per process: with several collectors this becomes a guard over the shared
    // database (the `ReplayGuard` trait is the seam).
    replay: Mutex<InMemoryReplayGuard>,
    metrics: metrics::HttpMetrics,
}

impl AppState {
    /// State over `store`, deriving agent secrets from `key`.
    pub fn new(store: Arc<Store>, key: ServerKey, config: ApiConfig) -> AppState {
        let replay = Mutex::new(InMemoryReplayGuard::new(config.replay_capacity));
        AppState {
            inner: Arc::new(Shared {
                store,
                key,
                config,
                replay,
                metrics: metrics::HttpMetrics::default(),
            }),
        }
    }

    fn store(&self) -> Arc<Store> {
        Arc::clone(&self.inner.store)
    }
}

/// The shared replay guard, locked only for the check itself (not while a body is hashed).
struct SharedReplayGuard<'a>(&'a Mutex<InMemoryReplayGuard>);

impl ReplayGuard for SharedReplayGuard<'_> {
    fn check_and_record(
        &mut self,
        agent_id: &str,
        nonce: &str,
        timestamp: i64,
        now: i64,
        max_skew_secs: i64,
    ) -> Result<(), ReplayRejection> {
        // The guard's state stays consistent even if a holder panicked: each call either
        // completes its insert or changes nothing that matters for correctness.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_and_record(agent_id, nonce, timestamp, now, max_skew_secs)
    }
}

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.inner.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/enroll", post(agent::enroll))
        .route("/api/v1/events", post(agent::events))
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct HealthResponse {
    status: &'static str,
}

/// `GET /healthz`: ok once the database answers a trivial read.
async fn healthz(State(state): State<AppState>) -> Result<Json<HealthResponse>, AppError> {
    let store = state.store();
    tokio::task::spawn_blocking(move || store.ping())
        .await?
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(HealthResponse { status: "ok" }))
}

/// The body's bytes, or the JSON error for a body over the limit or cut off.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, AppError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::BodyTooLarge { limit }
        } else {
            AppError::BodyUnreadable
        }
    })
}

/// Parses a JSON body; serde's message (with line and column) becomes an `invalid_json` error.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::InvalidJson(e.to_string()))
}
