//! The manager API: what people and their scripts use, authenticated with bearer API tokens
//! (`Authorization: Bearer ilt_…`, see [`crate::store::tokens`]).
//!
//! | endpoint | who |
//! |---|---|
//! | `GET /api/v1/violations` — filters, sort, cursor pages | any role |
//! | `GET /api/v1/violations/{id}` — one violation with its history | any role |
//! | `POST /api/v1/violations/{id}/acknowledge`, `/exception`, `/reopen`, `/comments` | admin, manager |
//! | `POST /api/v1/violations/acknowledge` — many at once | admin, manager |
//! | `GET /api/v1/violations/export?format=csv\|ndjson` | any role |
//! | `GET /api/v1/stats/heatmap`, `GET /api/v1/stats/remediation?days=N` | any role |
//! | `GET /api/v1/agents` | any role |
//! | `POST /api/v1/agents/{id}/revoke` | admin |
//! | `GET /api/v1/audit?after=N&limit=M`, `GET /api/v1/audit/verify` | admin, viewer without departments |
//!
//! Department scope: a token limited to departments (every manager, optionally a viewer) sees
//! and acts on violations of those departments only. The scope goes into the store's SQL, so
//! lists, exports and figures never contain other rows, and another department's violation is
//! `404 not_found` exactly like an id that does not exist. Agents are not departmental: every
//! role sees the fleet. The audit trail is not departmental either (it names every violation
//! decided on and every reason given), so it is for admins and unscoped viewers (auditors).
//!
//! Requests are checked in this order: token (`401 unauthenticated`), role (`403 forbidden`),
//! query string (`400 invalid_query`, naming the parameter; unknown parameters are refused so
//! that a misspelt filter does not silently return everything), body (`400 invalid_json`:
//! strict, unknown fields refused; `400 invalid_field` for a bad value), then the store
//! (`404 not_found`, `409 conflict` for an action the violation's status does not allow).

mod audit;
mod export;
mod fleet;
mod params;
mod stats;
mod violations;

pub(crate) use export::{neutralise, violations_csv};

use super::{AppError, AppState};
use crate::store::Store;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The manager API's routes (merged into [`super::router`]).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/violations", get(violations::list))
        .route("/api/v1/violations/export", get(export::export))
        .route(
            "/api/v1/violations/acknowledge",
            post(violations::acknowledge_many),
        )
        .route("/api/v1/violations/{id}", get(violations::detail))
        .route(
            "/api/v1/violations/{id}/acknowledge",
            post(violations::acknowledge),
        )
        .route(
            "/api/v1/violations/{id}/exception",
            post(violations::except),
        )
        .route("/api/v1/violations/{id}/reopen", post(violations::reopen))
        .route(
            "/api/v1/violations/{id}/comments",
            post(violations::comment),
        )
        .route("/api/v1/stats/heatmap", get(stats::heatmap))
        .route("/api/v1/stats/remediation", get(stats::remediation))
        .route("/api/v1/agents", get(fleet::list))
        .route("/api/v1/agents/{id}/revoke", post(fleet::revoke))
        .route("/api/v1/audit", get(audit::entries))
        .route("/api/v1/audit/verify", get(audit::verify))
}

/// Runs blocking store work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

/// The id in the path; a path that does not decode names nothing that exists.
fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    path.map(|Path(id)| id).map_err(|_| AppError::NotFound)
}

/// Reopens exceptions whose date has passed, once at start and then every `period`, on a thread
/// of its own, until dropped. An exception therefore ends at most one period late; a failure is
/// logged and retried at the next tick.
#[derive(Debug)]
pub struct ExceptionExpiry {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExceptionExpiry {
    /// Starts the thread.
    pub fn spawn(
        store: Arc<Store>,
        period: std::time::Duration,
    ) -> std::io::Result<ExceptionExpiry> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("exception-expiry".into())
            .spawn(move || loop {
                match store.expire_exceptions(chrono::Utc::now()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "exceptions past their date reopened"),
                    Err(e) => tracing::error!(error = %e, "cannot expire exceptions"),
                }
                // Waiting on the channel doubles as the sleep: dropping the sender ends it.
                match stopped.recv_timeout(period) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            })?;
        Ok(ExceptionExpiry {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for ExceptionExpiry {
    /// Stops the thread and waits for a run in progress to finish.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
