//! The agent-facing endpoints: `POST /api/v1/enroll` and `POST /api/v1/events`.

use super::{body_bytes, parse_json, AppError, AppState, SharedReplayGuard};
use crate::store::NewAgent;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::Json;
use chrono::Utc;
use infoledger_policies::wire::events::{
    EnrollRequest, EnrollResponse, EventsRequest, EventsResponse,
};
use infoledger_policies::wire::signing::{
    hash_secret, verify, ReceivedHeaders, RequestParts, SignatureError, HEADER_AGENT,
    HEADER_CONTENT_SHA256, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use ring::rand::SecureRandom as _;
use std::fmt::Write as _;

/// The longest host name accepted (DNS allows 253 characters).
const MAX_HOSTNAME_LEN: usize = 253;
/// The longest agent version string accepted.
const MAX_VERSION_LEN: usize = 64;

/// `POST /api/v1/enroll`: trades an enrollment token for an agent id and signing secret.
pub(super) async fn enroll(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EnrollResponse>), AppError> {
    let body = body_bytes(body, state.inner.config.max_body_bytes)?;
    let request: EnrollRequest = parse_json(&body)?;
    check_text("hostname", &request.hostname, MAX_HOSTNAME_LEN)?;
    check_text("version", &request.version, MAX_VERSION_LEN)?;

    let agent_id = new_agent_id()?;
    let secret = state.inner.key.agent_secret(&agent_id);
    let agent = NewAgent {
        id: agent_id.clone(),
        hostname: request.hostname,
        // A verification value only: the secret itself is derived again from the server key.
        secret_hash: hash_secret(&secret),
        enrolled_at: Utc::now(),
    };
    let store = state.store();
    tokio::task::spawn_blocking(move || {
        store.enroll(&request.token, &agent, &request.version, Utc::now())
    })
    .await??;
    tracing::info!(agent = %agent_id, "agent enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            agent_id,
            secret,
            bundle_public_key: state.inner.key.bundle_public_key(),
        }),
    ))
}

/// `POST /api/v1/events`: a signed batch of the agent's events, stored idempotently.
pub(super) async fn events(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EventsResponse>, AppError> {
    let body = body_bytes(body, state.inner.config.max_body_bytes)?;
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    // Hashing up to the body limit and SQLite are blocking work: both go to the blocking pool.
    let stored_through = tokio::task::spawn_blocking(move || {
        let agent = authenticate(&state, method.as_str(), &path, &headers, &body)?;
        let request: EventsRequest = parse_json(&body)?;
        if let Some(claimed) = request.agent {
            if claimed != agent {
                return Err(AppError::AgentMismatch {
                    signer: agent,
                    claimed,
                });
            }
        }
        let events = request.events.len();
        let stored_through = state
            .inner
            .store
            .ingest_owned(agent.clone(), request.events)?;
        tracing::debug!(agent = %agent, events, stored_through, "batch stored");
        Ok(stored_through)
    })
    .await??;
    Ok(Json(EventsResponse { stored_through }))
}

/// Verifies a signed request and returns the agent that signed it.
///
/// The agent's secret is derived from the header's agent id, so the signature is checked before
/// the database is asked about the agent: an unauthenticated caller learns nothing about which
/// agents exist. The store refuses unknown and revoked agents afterwards.
pub(super) fn authenticate(
    state: &AppState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AppError> {
    let received = ReceivedHeaders {
        agent: single_header(headers, HEADER_AGENT)?,
        timestamp: single_header(headers, HEADER_TIMESTAMP)?,
        nonce: single_header(headers, HEADER_NONCE)?,
        content_sha256: single_header(headers, HEADER_CONTENT_SHA256)?,
        signature: single_header(headers, HEADER_SIGNATURE)?,
    };
    let malformed_agent = |reason| SignatureError::MalformedHeader {
        header: HEADER_AGENT,
        reason,
    };
    let agent = received.agent.ok_or(SignatureError::MissingHeader {
        header: HEADER_AGENT,
    })?;
    let agent = std::str::from_utf8(agent).map_err(|_| malformed_agent("not UTF-8"))?;
    let parts = RequestParts::new(method, path, agent, body).map_err(|e| match e {
        SignatureError::InvalidRequest {
            field: "agent id",
            reason,
        } => malformed_agent(reason),
        other => other,
    })?;
    let secret = state.inner.key.agent_secret(agent);
    verify(
        secret.as_bytes(),
        &parts,
        &received,
        Utc::now(),
        state.inner.config.max_skew,
        &mut SharedReplayGuard(&state.inner.replay),
    )?;
    Ok(agent.to_owned())
}

/// A signing header's value; one that occurs more than once is refused rather than guessed at.
fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a [u8]>, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(SignatureError::MalformedHeader {
            header: name,
            reason: "occurs more than once",
        });
    }
    Ok(first.map(|value| value.as_bytes()))
}

/// A fresh agent id: `agent-` and 128 random bits in hex. Never reused, so it also salts the
/// derived secret.
fn new_agent_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::Internal("secure random source failed".into()))?;
    let mut id = String::from("agent-");
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(id, "{b:02x}");
    }
    Ok(id)
}

/// A short, printable, single-line field.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(AppError::InvalidField(format!(
            "{field} must be 1-{max} bytes without control characters"
        )));
    }
    Ok(())
}
