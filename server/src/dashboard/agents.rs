//! The fleet (`/agents`, `/agents.csv`): every agent with its version, last contact and last
//! health report (watch limits, outbox depth, dropped and deferred events, last error), stale
//! agents highlighted. Agents are not departmental: every role sees the fleet, as in the API.

use super::blocking;
use super::error::PageError;
use super::ledger::csv_download;
use super::session::SignedIn;
use super::view::{ago, human_duration, render, when, Chrome};
use crate::api::AppState;
use crate::store::Agent;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};

/// One agent as a row.
#[derive(Debug, Clone)]
pub(crate) struct AgentRow {
    pub(crate) id: String,
    pub(crate) hostname: String,
    pub(crate) version: String,
    pub(crate) last_seen: String,
    pub(crate) last_seen_at: String,
    pub(crate) enrolled: String,
    /// `stale`, `revoked`, `ok`, or `attention` (a health problem).
    pub(crate) state: &'static str,
    pub(crate) queue_depth: String,
    pub(crate) dropped: String,
    pub(crate) deferred: String,
    pub(crate) watches: String,
    pub(crate) watch_limit: bool,
    pub(crate) last_scan: String,
    pub(crate) bundle: String,
    pub(crate) last_error: String,
}

fn row(agent: &Agent, now: DateTime<Utc>, stale_after: TimeDelta) -> AgentRow {
    let health = agent.health.as_ref();
    let number =
        |f: fn(&crate::store::Health) -> u64| health.map(|h| f(h).to_string()).unwrap_or_default();
    let troubled = health.is_some_and(|h| {
        h.watch_limit_reached
            || h.dropped_events > 0
            || h.deferred_events > 0
            || h.last_error.is_some()
    });
    let state = if agent.revoked_at.is_some() {
        "revoked"
    } else if agent.is_stale(now, stale_after) {
        "stale"
    } else if troubled {
        "attention"
    } else {
        "ok"
    };
    AgentRow {
        id: agent.id.clone(),
        hostname: agent.hostname.clone(),
        version: agent.version.clone().unwrap_or_default(),
        last_seen: agent
            .last_seen
            .map_or_else(|| "never".to_owned(), |at| ago(at, now)),
        last_seen_at: agent.last_seen.map(when).unwrap_or_default(),
        enrolled: when(agent.enrolled_at),
        state,
        queue_depth: number(|h| h.queue_depth),
        dropped: number(|h| h.dropped_events),
        deferred: number(|h| h.deferred_events),
        watches: number(|h| h.watches),
        watch_limit: health.is_some_and(|h| h.watch_limit_reached),
        last_scan: health
            .and_then(|h| h.last_scan_at.map(|at| (at, h.last_scan_ms)))
            .map(|(at, ms)| match ms {
                Some(ms) => format!(
                    "{} ({})",
                    ago(at, now),
                    human_duration(TimeDelta::milliseconds(
                        i64::try_from(ms).unwrap_or(i64::MAX)
                    ))
                ),
                None => ago(at, now),
            })
            .unwrap_or_default(),
        bundle: health
            .and_then(|h| h.bundle_version)
            .map(|v| v.to_string())
            .unwrap_or_default(),
        last_error: health
            .and_then(|h| h.last_error.clone())
            .unwrap_or_default(),
    }
}

async fn rows(state: &AppState) -> Result<Vec<AgentRow>, PageError> {
    let store = state.store();
    let stale_after = state.agent_stale_after();
    let agents = blocking(move || Ok(store.agents()?)).await?;
    let now = Utc::now();
    Ok(agents.iter().map(|a| row(a, now, stale_after)).collect())
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    stale_after: String,
    stale: usize,
    rows: Vec<AgentRow>,
}

/// `GET /agents`.
pub(crate) async fn list(
    signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let rows = rows(&state).await?;
    render(&AgentsPage {
        chrome: Chrome::new(&signed_in, "agents"),
        stale_after: human_duration(state.agent_stale_after()),
        stale: rows.iter().filter(|r| r.state == "stale").count(),
        rows,
    })
}

/// `GET /agents.csv`.
pub(crate) async fn export(
    _signed_in: SignedIn,
    State(state): State<AppState>,
) -> Result<Response, PageError> {
    let rows = rows(&state).await?;
    csv_download(
        "agents.csv",
        &[
            "id",
            "hostname",
            "version",
            "state",
            "last_seen",
            "enrolled",
            "queue_depth",
            "dropped_events",
            "deferred_events",
            "watches",
            "watch_limit_reached",
            "bundle_version",
            "last_error",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.id,
                r.hostname,
                r.version,
                r.state.to_owned(),
                r.last_seen_at,
                r.enrolled,
                r.queue_depth,
                r.dropped,
                r.deferred,
                r.watches,
                r.watch_limit.to_string(),
                r.bundle,
                r.last_error,
            ]
        }),
    )
}
