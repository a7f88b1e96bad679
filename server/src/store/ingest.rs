//! Ingest: storing an agent's batch of events and applying them to violations and the agent row.
//!
//! Events are stored idempotently by (agent, seq) and *applied* strictly in sequence order, as the
//! agent's contiguous high-water mark passes them. An event that arrives after a gap is stored at
//! once but takes effect only when the gap is filled, so the violations' state never depends on
//! the order in which batches happen to arrive, and a replayed event never takes effect twice.

use super::model::{violation_id, Event, EventBody, Health, ViolationStatus};
use super::{timestamp, Store, StoreError};
use infoledger_policies::{Kind, Severity};
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;

/// Why a violation closed when the agent saw the fix.
const RESOLVED_BY_OBSERVATION: &str = "resolved by observation";
/// Why a resolved violation opened again.
const REOPENED_BY_OBSERVATION: &str = "observed again";

impl Store {
    /// Stores a batch of an agent's events and applies those that are now contiguous.
    ///
    /// Returns the highest sequence number `n` such that every event `1..=n` of this agent is
    /// durably stored: the agent may delete exactly those from its outbox. Re-sent events are
    /// ignored, so replaying a batch stores nothing new and returns the same number. An event
    /// that refers to nothing (a resolution of an unknown violation) is stored and has no effect.
    ///
    /// The batch goes through the ingest writer (see the module doc of `store`): it may share
    /// its transaction with other agents' batches, but it succeeds or fails on its own, and the
    /// answer comes only after the transaction has been committed.
    pub fn ingest(&self, agent_id: &str, events: &[Event]) -> Result<u64, StoreError> {
        self.ingest_owned(agent_id.to_owned(), events.to_vec())
    }

    /// [`Store::ingest`] taking the batch by value, which saves a copy of every event.
    pub fn ingest_owned(&self, agent_id: String, events: Vec<Event>) -> Result<u64, StoreError> {
        let batch = PreparedBatch::new(agent_id, events)?;
        self.ingest_queue.submit(batch)
    }
}

/// A batch checked and serialised by the caller, so the one writer thread spends its time on
/// SQLite alone.
#[derive(Debug)]
pub(crate) struct PreparedBatch {
    pub(crate) agent: String,
    events: Vec<PreparedEvent>,
}

#[derive(Debug)]
struct PreparedEvent {
    seq: i64,
    payload: String,
    event: Event,
}

impl PreparedBatch {
    /// Checks every sequence number (a bad one refuses the whole batch before anything is
    /// queued) and serialises each event as it will be stored.
    pub(crate) fn new(agent: String, events: Vec<Event>) -> Result<PreparedBatch, StoreError> {
        let events = events
            .into_iter()
            .map(|event| {
                Ok(PreparedEvent {
                    seq: sequence(event.seq)?,
                    payload: serde_json::to_string(&event)?,
                    event,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(PreparedBatch { agent, events })
    }

    /// How many events the batch carries.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }
}

/// What storing one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The agent's contiguous mark afterwards.
    pub(crate) stored_through: u64,
    /// How many of the batch's events were new.
    pub(crate) fresh: u64,
}

/// Stores `batch` and applies what its agent's contiguous mark now passes, inside the caller's
/// transaction (the writer's group transaction); `now` is the time recorded as
/// received.
pub(crate) fn store_batch(
    conn: &Connection,
    batch: &PreparedBatch,
    now: &str,
) -> Result<Stored, StoreError> {
    let agent_id = batch.agent.as_str();
    let contiguous = agent_mark(conn, agent_id)?;

    // Store; remember the events this batch newly stored so applying them needs no re-read.
    let mut fresh: BTreeMap<i64, &Event> = BTreeMap::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO events (agent_id, seq, received_at, kind, payload)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for prepared in &batch.events {
            let stored = insert.execute((
                agent_id,
                prepared.seq,
                now,
                prepared.event.body.type_name(),
                &prepared.payload,
            ))?;
            if stored == 1 {
                fresh.insert(prepared.seq, &prepared.event);
            }
        }
    }

    // Apply every event the contiguous mark now passes, in order.
    let mut mark = contiguous;
    {
        let mut load =
            conn.prepare_cached("SELECT payload FROM events WHERE agent_id = ?1 AND seq = ?2")?;
        while let Some(next) = mark.checked_add(1) {
            match fresh.get(&next) {
                Some(event) => apply(conn, agent_id, event, now)?,
                None => {
                    // Stored by an earlier batch while it waited behind a gap.
                    let payload: Option<String> = load
                        .query_row((agent_id, next), |row| row.get(0))
                        .optional()?;
                    match payload {
                        Some(payload) => {
                            let event: Event = serde_json::from_str(&payload)?;
                            apply(conn, agent_id, &event, now)?;
                        }
                        None => break,
                    }
                }
            }
            mark = next;
        }
    }

    conn.prepare_cached("UPDATE agents SET contiguous_seq = ?2, last_seen = ?3 WHERE id = ?1")?
        .execute((agent_id, mark, now))?;
    Ok(Stored {
        stored_through: mark.unsigned_abs(),
        fresh: fresh.len() as u64,
    })
}

/// The agent's contiguous mark; refuses unknown and revoked agents.
fn agent_mark(tx: &Connection, agent_id: &str) -> Result<i64, StoreError> {
    let row: Option<(i64, Option<String>)> = tx
        .query_row(
            "SELECT contiguous_seq, revoked_at FROM agents WHERE id = ?1",
            [agent_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(StoreError::UnknownAgent(agent_id.to_owned())),
        Some((_, Some(_))) => Err(StoreError::RevokedAgent(agent_id.to_owned())),
        Some((mark, None)) => Ok(mark),
    }
}

/// A sequence number as SQLite stores it.
fn sequence(seq: u64) -> Result<i64, StoreError> {
    match i64::try_from(seq) {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(StoreError::InvalidSequence { seq }),
    }
}

fn apply(tx: &Connection, agent: &str, event: &Event, now: &str) -> Result<(), StoreError> {
    let at = timestamp(event.at);
    match &event.body {
        EventBody::ViolationOpened {
            path,
            kind,
            severity,
            label,
            asset,
            department,
            rule,
            message,
            fix,
            host,
        } => {
            let opened = Opened {
                path,
                kind: *kind,
                severity: *severity,
                label: label.as_deref(),
                asset: asset.as_deref(),
                department: department.as_deref(),
                rule: rule.as_deref(),
                message,
                fix,
                host,
            };
            apply_opened(tx, agent, &opened, &at, now)
        }
        EventBody::ViolationResolved { path, kind } => {
            apply_resolved(tx, agent, path, *kind, &at, now)
        }
        EventBody::Health(health) => apply_health(tx, agent, health),
        // Kept in the event log, and as the agent's latest footprint for ledger drift.
        EventBody::Footprint(footprint) => {
            super::drift::apply_footprint(tx, agent, event.seq, &at, footprint)
        }
    }
}

/// The details of a `violation_opened` event, borrowed.
struct Opened<'a> {
    path: &'a str,
    kind: Kind,
    severity: Severity,
    label: Option<&'a str>,
    asset: Option<&'a str>,
    department: Option<&'a str>,
    rule: Option<&'a str>,
    message: &'a str,
    fix: &'a str,
    host: &'a str,
}

fn current_status(tx: &Connection, id: &str) -> Result<Option<ViolationStatus>, StoreError> {
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM violations WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    status
        .map(|s| s.parse().map_err(StoreError::Corrupt))
        .transpose()
}

fn apply_opened(
    tx: &Connection,
    agent: &str,
    o: &Opened<'_>,
    at: &str,
    now: &str,
) -> Result<(), StoreError> {
    let id = violation_id(agent, o.path, o.kind);
    // What the agent says about the problem; its columns are ?1..=?10 in every statement below.
    let details = (
        &id,
        o.host,
        o.severity.as_str(),
        o.label,
        o.asset,
        o.department,
        o.rule,
        o.message,
        o.fix,
        now,
    );
    const DETAILS: &str = "host = ?2, severity = ?3, label = ?4, asset = ?5, department = ?6,
         rule = ?7, message = ?8, fix = ?9, updated_at = ?10";
    match current_status(tx, &id)? {
        None => {
            tx.prepare_cached(
                "INSERT INTO violations (id, host, severity, label, asset, department, rule,
                     message, fix, updated_at, agent_id, path, kind, status, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'open', ?14)",
            )?
            .execute((
                details.0,
                details.1,
                details.2,
                details.3,
                details.4,
                details.5,
                details.6,
                details.7,
                details.8,
                details.9,
                agent,
                o.path,
                o.kind.as_str(),
                at,
            ))?;
            record(
                tx,
                &id,
                at,
                agent,
                "opened",
                None,
                ViolationStatus::Open,
                None,
            )
        }
        Some(ViolationStatus::Resolved) => {
            // A new open period starts; the old resolution and any exception no longer hold.
            tx.prepare_cached(&format!(
                "UPDATE violations SET {DETAILS}, status = 'open', opened_at = ?11,
                     resolved_at = NULL, excepted_until = NULL
                 WHERE id = ?1"
            ))?
            .execute((
                details.0, details.1, details.2, details.3, details.4, details.5, details.6,
                details.7, details.8, details.9, at,
            ))?;
            record(
                tx,
                &id,
                at,
                agent,
                "reopened",
                Some(ViolationStatus::Resolved),
                ViolationStatus::Open,
                Some(REOPENED_BY_OBSERVATION),
            )
        }
        Some(_) => {
            // Still there: refresh what the agent now says about it (severity, message, asset);
            // a manager's status (acknowledged, excepted) stays.
            tx.prepare_cached(&format!("UPDATE violations SET {DETAILS} WHERE id = ?1"))?
                .execute(details)?;
            Ok(())
        }
    }
}

fn apply_resolved(
    tx: &Connection,
    agent: &str,
    path: &str,
    kind: Kind,
    at: &str,
    now: &str,
) -> Result<(), StoreError> {
    let id = violation_id(agent, path, kind);
    let from = match current_status(tx, &id)? {
        // Nothing to resolve (never reported, or already resolved): the event stays stored.
        None | Some(ViolationStatus::Resolved) => return Ok(()),
        Some(status) => status,
    };
    tx.prepare_cached(
        "UPDATE violations SET status = 'resolved', resolved_at = ?2, excepted_until = NULL,
             updated_at = ?3
         WHERE id = ?1",
    )?
    .execute((&id, at, now))?;
    record(
        tx,
        &id,
        at,
        agent,
        "resolved",
        Some(from),
        ViolationStatus::Resolved,
        Some(RESOLVED_BY_OBSERVATION),
    )
}

fn apply_health(tx: &Connection, agent: &str, health: &Health) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE agents SET health = ?2, version = ?3 WHERE id = ?1")?
        .execute((agent, serde_json::to_string(health)?, &health.version))?;
    Ok(())
}

/// Appends one status change to a violation's history.
#[allow(clippy::too_many_arguments)] // One row's columns; a struct would only rename them.
fn record(
    tx: &Connection,
    violation: &str,
    at: &str,
    agent: &str,
    action: &str,
    from: Option<ViolationStatus>,
    to: ViolationStatus,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO violation_history
             (violation_id, at, actor, action, from_status, to_status, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        violation,
        at,
        format!("agent:{agent}"),
        action,
        from.map(ViolationStatus::as_str),
        to.as_str(),
        reason,
    ))?;
    Ok(())
}
