//! The bundle for agents (`GET /api/v1/bundle`, signed), the policy and ledger for people
//! (`GET`/`PUT /api/v1/policy`, `/api/v1/ledger`, `GET /api/v1/bundle/versions`), and ledger
//! drift (`GET /api/v1/drift`).
//!
//! Agents ask with a signed request exactly like `POST /api/v1/events` (empty body) and get the
//! current `SignedBundle` as JSON with `ETag: "<version>"`; `If-None-Match` naming the current
//! version answers 304 without a body. The signed JSON is kept in memory per version, so serving
//! an unchanged bundle costs one small query and no signing.
//!
//! People read the policy and ledger as the text they were imported as (`application/toml` or
//! `text/csv`, with `ETag` and `X-Infoledger-Bundle-Version`), so `curl -o ledger.toml` and
//! `curl -T ledger.toml -X PUT` round-trip. Changing them takes an admin token; a refused file
//! answers 422 `invalid_document` with every diagnostic located.

use super::agent::authenticate;
use super::auth::require_admin;
use super::{body_bytes, AppError, AppState};
use crate::store::bundle::{Document, ImportError, Imported};
use crate::store::drift::DriftStatus;
use crate::store::{Caller, Store};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{OriginalUri, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, PoisonError};

/// The header that carries the bundle version of a policy or ledger text.
pub const HEADER_BUNDLE_VERSION: &str = "x-infoledger-bundle-version";
/// The most versions one listing returns.
const MAX_VERSIONS: u32 = 1000;

/// The newest signed bundle, serialised, so that unchanged bundles are not signed again.
#[derive(Debug, Default)]
pub(super) struct BundleCache {
    newest: Mutex<Option<Arc<CachedBundle>>>,
}

#[derive(Debug)]
struct CachedBundle {
    version: u64,
    json: Bytes,
}

impl BundleCache {
    /// The signed JSON of `version`, from memory or signed now.
    fn get_or_sign(&self, state: &AppState, version: u64) -> Result<Bytes, AppError> {
        if let Some(cached) = self.lock().as_ref().filter(|c| c.version == version) {
            return Ok(cached.json.clone());
        }
        // Signing happens outside the lock: a large ledger takes a moment to serialise.
        let document = state
            .inner
            .store
            .bundle(Some(version))?
            .ok_or(AppError::NoBundle)?;
        let signed = document
            .sign(state.inner.key.bundle_key())
            .map_err(|e| AppError::Internal(format!("cannot sign bundle {version}: {e}")))?;
        let json = Bytes::from(
            serde_json::to_vec(&signed)
                .map_err(|e| AppError::Internal(format!("cannot encode bundle: {e}")))?,
        );
        let mut newest = self.lock();
        // Two requests racing across a change: keep the newer version.
        if newest.as_ref().is_none_or(|c| c.version < version) {
            *newest = Some(Arc::new(CachedBundle {
                version,
                json: json.clone(),
            }));
        }
        Ok(json)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<CachedBundle>>> {
        // The slot is replaced whole; a panic elsewhere cannot leave it half-written.
        self.newest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The entity tag of a bundle version.
fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Whether `If-None-Match` names `version` (weak comparison, lists, several headers, `*`).
fn not_modified(headers: &HeaderMap, version: u64) -> bool {
    let tag = etag(version);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
        })
}

enum AgentAnswer {
    NotModified(u64),
    Bundle(u64, Bytes),
}

/// `GET /api/v1/bundle`: the current signed bundle for an agent's signed request.
pub(super) async fn agent_bundle(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let answer = tokio::task::spawn_blocking(move || {
        let agent = authenticate(&state, method.as_str(), &path, &headers, b"")?;
        // The signature proves the caller holds the agent's secret; the store says whether the
        // agent is (still) enrolled.
        match state.inner.store.agent(&agent)? {
            None => return Err(AppError::UnknownAgent),
            Some(a) if a.revoked_at.is_some() => return Err(AppError::AgentRevoked),
            Some(_) => {}
        }
        let version = state
            .inner
            .store
            .bundle_version()?
            .ok_or(AppError::NoBundle)?;
        if not_modified(&headers, version) {
            return Ok(AgentAnswer::NotModified(version));
        }
        let json = state.inner.bundles.get_or_sign(&state, version)?;
        tracing::debug!(agent = %agent, version, "bundle served");
        Ok(AgentAnswer::Bundle(version, json))
    })
    .await??;
    let (status, version, body) = match answer {
        AgentAnswer::NotModified(version) => (StatusCode::NOT_MODIFIED, version, Body::empty()),
        AgentAnswer::Bundle(version, json) => (StatusCode::OK, version, Body::from(json)),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(ETAG, header_value(&etag(version))?);
    // Agents must ask again every time; the ETag makes asking cheap.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::OK {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(response)
}

fn header_value(text: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(text).map_err(|e| AppError::Internal(format!("header value: {e}")))
}

/// A query string, or a JSON `invalid_field` error saying what is wrong with it.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| AppError::InvalidField(rejection.body_text()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionQuery {
    version: Option<u64>,
}

/// `GET /api/v1/policy`.
pub(super) async fn get_policy(
    State(state): State<AppState>,
    _caller: Caller,
    q: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    export(state, Document::Policy, query(q)?.version).await
}

/// `GET /api/v1/ledger`.
pub(super) async fn get_ledger(
    State(state): State<AppState>,
    _caller: Caller,
    q: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    export(state, Document::Ledger, query(q)?.version).await
}

async fn export(
    state: AppState,
    document: Document,
    version: Option<u64>,
) -> Result<Response, AppError> {
    let store = state.store();
    let bundle = tokio::task::spawn_blocking(move || store.bundle(version)).await??;
    let bundle = match (bundle, version) {
        (Some(bundle), _) => bundle,
        (None, None) => return Err(AppError::NoBundle),
        (None, Some(v)) => {
            return Err(AppError::ResourceNotFound {
                what: "bundle version",
                id: v.to_string(),
            })
        }
    };
    let source = match document {
        Document::Policy => bundle.policy,
        Document::Ledger => bundle.ledger,
    };
    let content_type = if is_csv(&source.name) {
        "text/csv; charset=utf-8"
    } else {
        "application/toml; charset=utf-8"
    };
    let mut response = source.text.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(ETAG, header_value(&etag(bundle.version))?);
    headers.insert(
        HEADER_BUNDLE_VERSION,
        header_value(&bundle.version.to_string())?,
    );
    // Names are plain file names (checked at import); one with a quote is simply not offered.
    if source.name.is_ascii() && !source.name.contains('"') {
        if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", source.name)) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

fn is_csv(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NameQuery {
    name: Option<String>,
}

/// The answer to an accepted `PUT`.
#[derive(Debug, Serialize)]
pub(super) struct ImportAnswer {
    /// The current version after the import.
    version: u64,
    /// Whether a new version was made (`false`: the text was already current).
    changed: bool,
    /// Warnings of the new bundle.
    warnings: Vec<super::error::DiagnosticBody>,
}

/// `PUT /api/v1/policy`: the body is the policy's TOML.
pub(super) async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<NameQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportAnswer>, AppError> {
    require_admin(&caller, "change the policy")?;
    let name = query(q)?.name.unwrap_or_else(|| "policy.toml".to_owned());
    import(state, caller, Document::Policy, name, body).await
}

/// `PUT /api/v1/ledger`: the body is the ledger, CSV when `?name=` ends in `.csv` or the
/// content type is `text/csv`, else TOML.
pub(super) async fn put_ledger(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    q: Result<Query<NameQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportAnswer>, AppError> {
    require_admin(&caller, "change the ledger")?;
    let csv = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"));
    let name = query(q)?
        .name
        .unwrap_or_else(|| if csv { "ledger.csv" } else { "ledger.toml" }.to_owned());
    import(state, caller, Document::Ledger, name, body).await
}

async fn import(
    state: AppState,
    caller: Caller,
    document: Document,
    name: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportAnswer>, AppError> {
    let body = body_bytes(body, state.inner.config.max_body_bytes)?;
    let text = String::from_utf8(body.to_vec()).map_err(|e| {
        AppError::InvalidField(format!(
            "the {document} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let store = state.store();
    let outcome = tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        match document {
            Document::Policy => store.import_policy(&name, &text, &caller.name, now),
            Document::Ledger => store.import_ledger(&name, &text, &caller.name, now),
        }
    })
    .await?
    .map_err(AppError::from)?;
    let answer = match outcome {
        Imported::Changed { version, warnings } => {
            tracing::info!(version, %document, "bundle changed through the API");
            ImportAnswer {
                version,
                changed: true,
                warnings: warnings.iter().map(Into::into).collect(),
            }
        }
        Imported::Unchanged { version } => ImportAnswer {
            version,
            changed: false,
            warnings: Vec::new(),
        },
    };
    Ok(Json(answer))
}

impl From<ImportError> for AppError {
    fn from(e: ImportError) -> AppError {
        match e {
            ImportError::Invalid { ref error, .. } => AppError::InvalidDocument {
                message: e.to_string(),
                diagnostics: error.diagnostics.iter().map(Into::into).collect(),
            },
            ImportError::NoPolicy => AppError::NoPolicy,
            ImportError::InvalidName { .. } | ImportError::TooLarge { .. } => {
                AppError::InvalidField(e.to_string())
            }
            ImportError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionsQuery {
    limit: Option<u32>,
}

/// One version as listed.
#[derive(Debug, Serialize)]
pub(super) struct VersionsAnswer {
    versions: Vec<crate::store::bundle::BundleVersion>,
}

/// `GET /api/v1/bundle/versions`: newest first (`?limit=`, default 100).
pub(super) async fn versions(
    State(state): State<AppState>,
    _caller: Caller,
    q: Result<Query<VersionsQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let limit = query(q)?.limit.unwrap_or(100).clamp(1, MAX_VERSIONS);
    let store: Arc<Store> = state.store();
    let versions = tokio::task::spawn_blocking(move || store.bundle_versions(limit)).await??;
    Ok(Json(VersionsAnswer { versions }).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DriftQuery {
    status: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct DriftAnswer {
    drift: Vec<crate::store::drift::Drift>,
}

/// `GET /api/v1/drift`: ledger drift within the caller's departments (`?status=open` by
/// default, `resolved` or `all`).
pub(super) async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<DriftQuery>, QueryRejection>,
) -> Result<Json<DriftAnswer>, AppError> {
    let status = match query(q)?.status.as_deref() {
        None | Some("open") => Some(DriftStatus::Open),
        Some("resolved") => Some(DriftStatus::Resolved),
        Some("all") => None,
        Some(other) => {
            return Err(AppError::InvalidField(format!(
                "unknown drift status `{other}` (expected open, resolved or all)"
            )))
        }
    };
    let store = state.store();
    let drift = tokio::task::spawn_blocking(move || store.drift(caller.scope(), status)).await??;
    Ok(Json(DriftAnswer { drift }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_follows_weak_comparison_and_lists() {
        let table: &[(&[&str], bool)] = &[
            (&["\"7\""], true),
            (&["W/\"7\""], true),
            (&["\"6\", \"7\""], true),
            (&["\"6\"", "\"7\""], true),
            (&["*"], true),
            (&["\"6\""], false),
            (&["7"], false),
            (&["\"77\""], false),
            (&[], false),
        ];
        for (values, want) in table {
            let mut headers = HeaderMap::new();
            for v in *values {
                headers.append(IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(not_modified(&headers, 7), *want, "{values:?}");
        }
    }
}
