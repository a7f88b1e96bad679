//! The agent fleet: every agent with its health and a stale flag; revoking an agent.

use super::params::{Params, RawQuery};
use super::{blocking, path_id};
use crate::api::auth::require_admin;
use crate::api::{body_bytes, parse_json, AppError, AppState};
use crate::store::{Agent, Caller, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One agent as listed.
#[derive(Debug, Serialize)]
pub(super) struct AgentEntry {
    #[serde(flatten)]
    agent: Agent,
    /// Not revoked, and silent for longer than `stale_after_seconds`.
    stale: bool,
}

/// The fleet.
#[derive(Debug, Serialize)]
pub(super) struct AgentList {
    /// The configured silence after which an agent is stale.
    stale_after_seconds: i64,
    /// Every agent, revoked ones included, by host name.
    agents: Vec<AgentEntry>,
}

fn entry(agent: Agent, stale_after: TimeDelta) -> AgentEntry {
    let stale = agent.is_stale(Utc::now(), stale_after);
    AgentEntry { agent, stale }
}

/// `GET /api/v1/agents`: every agent with its version, host name, enrollment, last delivery,
/// revocation, last health report (queue depth, dropped events, watch limit, last error) and
/// whether it is stale.
pub(super) async fn list(
    _caller: Caller,
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<AgentList>, AppError> {
    Params::new(query, &[])?;
    let stale_after = state.manager.agent_stale_after;
    let store = state.store();
    let agents = blocking(move || Ok(store.agents()?)).await?;
    Ok(Json(AgentList {
        stale_after_seconds: stale_after.num_seconds(),
        agents: agents
            .into_iter()
            .map(|agent| entry(agent, stale_after))
            .collect(),
    }))
}

/// The body of `POST /api/v1/agents/{id}/revoke` (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    /// Why, for the audit trail.
    #[serde(default)]
    reason: Option<String>,
}

/// The longest revocation reason accepted, in characters.
const MAX_REASON_CHARS: usize = 4000;

/// `POST /api/v1/agents/{id}/revoke` `{"reason"?}` (admins): the agent's requests are refused
/// from now on; its violations stay. Audited as `agent.revoked`. Revoking a revoked agent
/// changes nothing and answers the agent as it is.
pub(super) async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AgentEntry>, AppError> {
    require_admin(&caller, "revoke agents")?;
    Params::new(query, &[])?;
    let id = path_id(path)?;
    let body = body_bytes(body, state.inner.config.max_body_bytes)?;
    let body: RevokeBody = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeBody::default()
    } else {
        parse_json(&body)?
    };
    if let Some(reason) = &body.reason {
        if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(AppError::InvalidField(format!(
                "reason: give 1 to {MAX_REASON_CHARS} characters, or leave it out"
            )));
        }
    }
    let stale_after = state.manager.agent_stale_after;
    let store = state.store();
    let agent = blocking(move || {
        store
            .revoke_agent_as(&id, &caller.name, body.reason.as_deref(), Utc::now())
            .map_err(|e| match e {
                // For the agent API an unknown agent is an authentication failure; here it is
                // simply not there.
                StoreError::UnknownAgent(id) => AppError::ResourceNotFound { what: "agent", id },
                other => AppError::from(other),
            })
    })
    .await?;
    tracing::info!(agent = %agent.id, "agent revoked");
    Ok(Json(entry(agent, stale_after)))
}
