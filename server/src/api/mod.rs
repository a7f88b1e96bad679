//! The collector's HTTP API, as an axum [`Router`] over shared [`AppState`]: the agent-facing
//! endpoints (enrollment, signed event ingest, the signed bundle), the manager API for people and
//! scripts with bearer tokens ([`manager`]: violations and actions on them, exports, statistics,
//! agents, the audit trail), the health check and the Prometheus metrics.
//!
//! Every error is JSON `{"error":{"code":"…","message":"…"}}` ([`AppError`]). Bodies are read as
//! bytes under a size limit and parsed strictly (unknown fields refused) by the handlers
//! themselves, so that signed requests are verified over the exact bytes received and a body is
//! parsed only after its signature checked out. Blocking work (SQLite, hashing a large body) runs
//! on tokio's blocking pool.

mod agent;
pub mod auth;
mod bundle;
mod error;
pub mod keys;
pub mod manager;
mod metrics;

pub use bundle::HEADER_BUNDLE_VERSION;
pub use error::{AppError, DiagnosticBody};
pub use keys::ServerKey;

use crate::sla::Slas;
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

/// What every handler shares: the store, the server key, the replay guard, and the manager
/// API's settings.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
    manager: Arc<ManagerSettings>,
    dashboard: Arc<crate::dashboard::Dashboard>,
}

/// Settings of the manager API that come from the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerSettings {
    /// Service levels per severity (`[sla]`), for remediation figures.
    pub slas: Slas,
    /// Silence after which an agent is listed as stale (`[agents] stale_after`).
    pub agent_stale_after: chrono::TimeDelta,
}

impl Default for ManagerSettings {
    fn default() -> ManagerSettings {
        ManagerSettings {
            slas: Slas::default(),
            agent_stale_after: crate::config::DEFAULT_STALE_AFTER,
        }
    }
}

#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    key: ServerKey,
    config: ApiConfig,
    // One guard per process: with several collectors this becomes a guard over the shared
    // database (the `ReplayGuard` trait is the seam).
    replay: Mutex<InMemoryReplayGuard>,
    // The newest signed bundle, so unchanged bundles are not signed again per request.
    bundles: bundle::BundleCache,
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
                bundles: bundle::BundleCache::default(),
                metrics: metrics::HttpMetrics::default(),
            }),
            manager: Arc::new(ManagerSettings::default()),
            dashboard: Arc::new(crate::dashboard::Dashboard::default()),
        }
    }

    /// The same state with these dashboard settings (default: [`DashboardSettings::default`]).
    ///
    /// [`DashboardSettings::default`]: crate::dashboard::DashboardSettings
    pub fn with_dashboard(mut self, settings: crate::dashboard::DashboardSettings) -> AppState {
        self.dashboard = Arc::new(crate::dashboard::Dashboard::new(settings));
        self
    }

    /// The dashboard's settings and caches.
    pub(crate) fn dashboard(&self) -> &crate::dashboard::Dashboard {
        &self.dashboard
    }

    /// How long an agent may stay silent before it is listed as stale.
    pub fn agent_stale_after(&self) -> chrono::TimeDelta {
        self.manager.agent_stale_after
    }

    /// The same state with these service levels (default: [`Slas::default`]).
    pub fn with_slas(mut self, slas: Slas) -> AppState {
        Arc::make_mut(&mut self.manager).slas = slas;
        self
    }

    /// The same state flagging agents stale after this much silence (default: 1 hour).
    pub fn with_agent_stale_after(mut self, stale_after: chrono::TimeDelta) -> AppState {
        Arc::make_mut(&mut self.manager).agent_stale_after = stale_after;
        self
    }

    /// The service levels remediation figures are measured against.
    pub fn slas(&self) -> &Slas {
        &self.manager.slas
    }

    pub(crate) fn store(&self) -> Arc<Store> {
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
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/enroll", post(agent::enroll))
        .route("/api/v1/events", post(agent::events))
        .merge(manager::routes())
        .route("/api/v1/bundle", get(bundle::agent_bundle))
        .route("/api/v1/bundle/versions", get(bundle::versions))
        .route(
            "/api/v1/policy",
            get(bundle::get_policy).put(bundle::put_policy),
        )
        .route(
            "/api/v1/ledger",
            get(bundle::get_ledger).put(bundle::put_ledger),
        )
        .route("/api/v1/drift", get(bundle::drift))
        .merge(crate::dashboard::routes())
        .fallback(crate::dashboard::fallback)
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

/// The OpenAPI 3.1 document of the whole API (`server/api/openapi.json`, kept in step with the
/// routes by `tests/openapi.rs`).
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// `GET /api/v1/openapi.json`.
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
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
