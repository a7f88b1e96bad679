//! The web dashboard for information managers: server-rendered HTML pages next to the API.
//!
//! | page | what it is for |
//! |---|---|
//! | `/` risk monitor | heatmap department × severity, trend of unresolved violations, escalations, assets with the most open violations |
//! | `/violations` review queue | filters, sorting, cursor pages, bulk acknowledge; `/violations.csv` |
//! | `/violations/{id}` | one violation, its asset, its timeline, and the decisions on it |
//! | `/ledger`, `/ledger/{asset}` | assets with their deadlines and footprint; `/ledger.csv` |
//! | `/agents` | the fleet's health, stale agents; `/agents.csv` |
//! | `/maturity` | remediation per department and a score against a target; `/maturity.csv` |
//! | `/audit` | the hash-chained audit trail and its verification; `/audit.csv` |
//!
//! People sign in with an API token (`/login`) and get a server-side session (`store::sessions`)
//! held in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over HTTPS). The session acts as the
//! token: its role and departments are read on every request, so every page, link and export is
//! scoped by passing the caller's departments into the store's queries, exactly as the API does;
//! another department's violation or asset is a 404 page. Every form carries the session's
//! anti-forgery token and every POST is refused (403) without it ([`session::Posted`]).
//!
//! Templates (askama, under `server/templates/`) are compiled into the binary and escape every
//! value by default; the stylesheet is embedded too, so the dashboard needs nothing from outside
//! the collector. Pages use no JavaScript: forms and links only, and the content security policy
//! allows no script at all. Every query behind a page is a page of rows or a grouped count over
//! an index (`store::overview`), never a read of the whole table.

mod agents;
mod audit;
mod chart;
mod error;
mod home;
mod ledger;
mod maturity;
mod queue;
mod session;
mod view;
mod violation;

pub use view::human_duration;

use crate::api::{AppError, AppState};
use crate::store::{SessionLimits, Store, StoreError};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::PageError;
use infoledger_policies::Bundle;
use std::sync::{Arc, Mutex, PoisonError};

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieSecurity {
    /// When the request came over HTTPS: the collector listens with TLS, or a proxy in front of
    /// it says so with `X-Forwarded-Proto: https`.
    #[default]
    Auto,
    /// Always (HTTPS is terminated somewhere the collector cannot tell).
    Always,
    /// Never (plain HTTP on a trusted network).
    Never,
}

/// The dashboard's settings (`[dashboard]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSettings {
    /// How long sessions last.
    pub sessions: SessionLimits,
    /// The session cookie's `Secure` attribute.
    pub secure_cookie: CookieSecurity,
    /// Whether the collector itself serves HTTPS (then `Auto` cookies are `Secure`).
    pub tls: bool,
    /// The maturity score departments are compared against (0–100).
    pub maturity_target: u8,
}

impl Default for DashboardSettings {
    fn default() -> DashboardSettings {
        DashboardSettings {
            sessions: SessionLimits::default(),
            secure_cookie: CookieSecurity::Auto,
            tls: false,
            maturity_target: 80,
        }
    }
}

/// The dashboard's share of the application state: its settings and the parsed current ledger.
#[derive(Debug, Default)]
pub struct Dashboard {
    settings: DashboardSettings,
    // The current bundle, parsed once per version: pages need its assets (names, administrators,
    // deadlines), and parsing compiles every location glob.
    ledger: Mutex<Option<Arc<CurrentLedger>>>,
    // The maturity page's figures for every department, kept for a few minutes.
    maturity: Mutex<Option<Arc<maturity::Figures>>>,
}

/// The current bundle's ledger and policy, parsed.
#[derive(Debug)]
pub(crate) struct CurrentLedger {
    /// The bundle version.
    pub(crate) version: u64,
    /// Policy and ledger.
    pub(crate) bundle: Bundle,
}

impl Dashboard {
    /// A dashboard with these settings.
    pub fn new(settings: DashboardSettings) -> Dashboard {
        Dashboard {
            settings,
            ledger: Mutex::new(None),
            maturity: Mutex::new(None),
        }
    }

    /// The settings.
    pub(crate) fn settings(&self) -> &DashboardSettings {
        &self.settings
    }

    /// Whether cookies set in answer to a request with these headers are `Secure`.
    pub(crate) fn secure_cookies(&self, headers: &HeaderMap) -> bool {
        match self.settings.secure_cookie {
            CookieSecurity::Always => true,
            CookieSecurity::Never => false,
            CookieSecurity::Auto => {
                self.settings.tls
                    || headers
                        .get("x-forwarded-proto")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
            }
        }
    }

    /// The current ledger, parsed (from the cache when its version is still current); `None`
    /// before the first policy import. Blocking: call it on the blocking pool.
    pub(crate) fn ledger(&self, store: &Store) -> Result<Option<Arc<CurrentLedger>>, StoreError> {
        let Some(version) = store.bundle_version()? else {
            return Ok(None);
        };
        if let Some(cached) = self.cached_ledger().filter(|l| l.version == version) {
            return Ok(Some(cached));
        }
        let Some(document) = store.bundle(Some(version))? else {
            return Ok(None);
        };
        let (bundle, _) = document.load().map_err(|e| {
            StoreError::Corrupt(format!(
                "the current bundle (version {version}) does not load: {e}"
            ))
        })?;
        let current = Arc::new(CurrentLedger { version, bundle });
        *self.ledger.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&current));
        Ok(Some(current))
    }

    /// The maturity figures last computed, if any.
    fn maturity_figures(&self) -> Option<Arc<maturity::Figures>> {
        self.maturity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps freshly computed maturity figures.
    fn keep_maturity_figures(&self, figures: Arc<maturity::Figures>) {
        *self.maturity.lock().unwrap_or_else(PoisonError::into_inner) = Some(figures);
    }

    fn cached_ledger(&self) -> Option<Arc<CurrentLedger>> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The dashboard's routes, merged into the API's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/violations", get(queue::show))
        .route("/violations.csv", get(queue::export))
        .route("/violations/acknowledge", post(queue::acknowledge))
        .route("/violations/{id}", get(violation::show))
        .route("/violations/{id}/{action}", post(violation::act))
        .route("/ledger", get(ledger::list))
        .route("/ledger.csv", get(ledger::export))
        .route("/ledger/{asset}", get(ledger::asset))
        .route("/agents", get(agents::list))
        .route("/agents.csv", get(agents::export))
        .route("/maturity", get(maturity::show))
        .route("/maturity.csv", get(maturity::export))
        .route("/audit", get(audit::show))
        .route("/audit.csv", get(audit::export))
        .route(view::STYLESHEET_PATH, get(stylesheet))
        .layer(axum::middleware::map_response(security_headers))
}

/// What answers paths no route knows: an HTML page for browsers outside the API, the API's JSON
/// error otherwise.
pub(crate) async fn fallback(uri: Uri, headers: HeaderMap) -> Response {
    let browser = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser && !uri.path().starts_with("/api/") {
        security_headers(PageError::NotFound.into_response()).await
    } else {
        AppError::NotFound.into_response()
    }
}

/// The embedded stylesheet; its URL carries a hash of its content, so it can be cached for long.
async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        view::STYLESHEET,
    )
        .into_response()
}

/// Headers on every dashboard answer: no script may run (templates escape, this is the second
/// line), no framing, no sniffing, and pages (they name people's files) are not cached.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Runs blocking store work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PageError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

#[cfg(test)]
mod tests {
    /// Escaping is the templates' default; a `safe` filter would switch it off for a value, and
    /// every value shown comes from agents, the ledger or people.
    #[test]
    fn no_template_switches_escaping_off() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            for off in ["|safe", "(\"none\")"] {
                assert!(!compact.contains(off), "{}: {off}", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 10, "{checked} templates");
    }
}
