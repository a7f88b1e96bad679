//! The durable queue of webhook notifications: what to announce, and which deliveries are due.
//!
//! Notifications are found by reading `violation_history` past a high-water mark: an `opened` or
//! `reopened` row of a critical violation is a `critical_opened` notification, an `escalated`
//! row an `escalated` one. Ingest therefore does nothing extra (no query, no network) for them,
//! and the mark advances in the same transaction that enqueues, so each history row is announced
//! at most once and, once enqueued, survives a restart until it is delivered or given up.
//!
//! The first read (no mark yet) starts at the end of the history: turning a webhook on announces
//! what happens from then on, not the past. While no webhook is configured the mark is forgotten
//! ([`Store::forget_notification_mark`]), so turning it on again does not replay the gap either.

use super::{parse_timestamp, timestamp, Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The name of the history mark in `webhook_marks`.
const HISTORY_MARK: &str = "violation_history";
/// How many history rows one call reads at most.
const HISTORY_BATCH: u32 = 10_000;

/// What a webhook announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A critical violation was opened (or observed again after its resolution).
    CriticalOpened,
    /// A violation outlived its severity's SLA.
    Escalated,
}

impl WebhookEvent {
    /// Every event, as configured in `[webhook] events`.
    pub const ALL: [WebhookEvent; 2] = [WebhookEvent::CriticalOpened, WebhookEvent::Escalated];

    /// The name in the configuration, the payload and the `X-Infoledger-Webhook-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::CriticalOpened => "critical_opened",
            WebhookEvent::Escalated => "escalated",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEvent {
    type Err = String;
    fn from_str(s: &str) -> Result<WebhookEvent, String> {
        WebhookEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                format!("unknown webhook event `{s}` (expected critical_opened or escalated)")
            })
    }
}

/// A notification waiting for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The delivery's id: receivers use it to drop duplicates (delivery is at least once).
    pub id: u64,
    /// What it announces.
    pub event: WebhookEvent,
    /// The violation's id.
    pub violation_id: String,
    /// The violation as it was when the notification was enqueued.
    pub violation: serde_json::Value,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
}

/// Counts of the queue, for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Waiting for a (first or further) attempt.
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up after the last retry.
    pub failed: u64,
}

impl Store {
    /// Enqueues a notification for every new history row that announces one of `events`, and
    /// moves the mark past every row read. Returns how many were enqueued; call again while it
    /// returns [`HISTORY_BATCH`] rows' worth (the second value is `true` when rows are left).
    pub fn enqueue_notifications(
        &self,
        events: &[WebhookEvent],
        now: DateTime<Utc>,
    ) -> Result<(usize, bool), StoreError> {
        // The common case, nothing new since the last call, costs one read and no write lock.
        let nothing_new: bool = self.reader().query_row(
            "SELECT (SELECT coalesce(max(id), 0) FROM violation_history)
                 <= (SELECT value FROM webhook_marks WHERE name = ?1)",
            [HISTORY_MARK],
            |row| Ok(row.get::<_, Option<bool>>(0)?.unwrap_or(false)),
        )?;
        if nothing_new {
            return Ok((0, false));
        }
        let mut writer = self.writer();
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mark: Option<i64> = tx
            .query_row(
                "SELECT value FROM webhook_marks WHERE name = ?1",
                [HISTORY_MARK],
                |row| row.get(0),
            )
            .optional()?;
        let Some(mark) = mark else {
            // First read: start at the end of the history.
            tx.execute(
                "INSERT INTO webhook_marks (name, value)
                 SELECT ?1, coalesce(max(id), 0) FROM violation_history",
                [HISTORY_MARK],
            )?;
            tx.commit()?;
            return Ok((0, false));
        };
        let critical = events.contains(&WebhookEvent::CriticalOpened);
        let escalated = events.contains(&WebhookEvent::Escalated);
        let rows: Vec<(i64, String, serde_json::Value, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT h.id, h.action, v.id, v.agent_id, v.host, v.path, v.kind, v.severity,
                        v.status, v.label, v.asset, v.department, v.rule, v.message, v.fix,
                        v.opened_at, v.escalated_at, v.resolved_at
                 FROM violation_history h JOIN violations v ON v.id = h.violation_id
                 WHERE h.id > ?1 ORDER BY h.id LIMIT ?2",
            )?;
            let rows = stmt.query_map((mark, HISTORY_BATCH), |row| {
                let violation = serde_json::json!({
                    "id": row.get::<_, String>(2)?,
                    "agent": row.get::<_, String>(3)?,
                    "host": row.get::<_, String>(4)?,
                    "path": row.get::<_, String>(5)?,
                    "kind": row.get::<_, String>(6)?,
                    "severity": row.get::<_, String>(7)?,
                    "status": row.get::<_, String>(8)?,
                    "label": row.get::<_, Option<String>>(9)?,
                    "asset": row.get::<_, Option<String>>(10)?,
                    "department": row.get::<_, Option<String>>(11)?,
                    "rule": row.get::<_, Option<String>>(12)?,
                    "message": row.get::<_, String>(13)?,
                    "fix": row.get::<_, String>(14)?,
                    "opened_at": row.get::<_, String>(15)?,
                    "escalated_at": row.get::<_, Option<String>>(16)?,
                    "resolved_at": row.get::<_, Option<String>>(17)?,
                });
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    violation,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let more = rows.len() == HISTORY_BATCH as usize;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok((0, false));
        };
        let at = timestamp(now);
        let mut enqueued = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_deliveries
                     (dedup, event, violation_id, payload, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?;
            for (history_id, action, violation, violation_id) in &rows {
                let event = match action.as_str() {
                    "opened" | "reopened" if critical && violation["severity"] == "critical" => {
                        WebhookEvent::CriticalOpened
                    }
                    "escalated" if escalated => WebhookEvent::Escalated,
                    _ => continue,
                };
                enqueued += insert.execute((
                    format!("history:{history_id}"),
                    event.as_str(),
                    violation_id,
                    serde_json::to_string(violation)?,
                    &at,
                ))?;
            }
        }
        tx.execute(
            "UPDATE webhook_marks SET value = ?2 WHERE name = ?1",
            (HISTORY_MARK, last),
        )?;
        tx.commit()?;
        Ok((enqueued, more))
    }

    /// Forgets the history mark, so that the next [`Store::enqueue_notifications`] starts at the
    /// end of the history (used while no webhook is configured).
    pub fn forget_notification_mark(&self) -> Result<(), StoreError> {
        self.writer()
            .execute("DELETE FROM webhook_marks WHERE name = ?1", [HISTORY_MARK])?;
        Ok(())
    }

    /// Deliveries whose next attempt is due at `now`, oldest due first, at most `limit`.
    pub fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare_cached(
            "SELECT id, event, violation_id, payload, attempts, created_at
             FROM webhook_deliveries
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map((timestamp(now), limit), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (id, event, violation_id, payload, attempts, created) = row?;
            due.push(Delivery {
                id: id.unsigned_abs(),
                event: event.parse().map_err(StoreError::Corrupt)?,
                violation_id,
                violation: serde_json::from_str(&payload)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                created_at: parse_timestamp(&created)?,
            });
        }
        Ok(due)
    }

    /// Records a successful attempt.
    pub fn delivery_succeeded(&self, id: u64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.writer().execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = ?2,
                 last_error = NULL
             WHERE id = ?1",
            (delivery_key(id)?, timestamp(now)),
        )?;
        Ok(())
    }

    /// Records a failed attempt: the next one at `retry_at`, or none (given up) for `None`.
    pub fn delivery_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = timestamp(now);
        let (next, failed) = match retry_at {
            Some(at) => (timestamp(at), None),
            None => (now.clone(), Some(now)),
        };
        self.writer().execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?2,
                 next_attempt_at = ?3, failed_at = ?4
             WHERE id = ?1",
            (delivery_key(id)?, error, next, failed),
        )?;
        Ok(())
    }

    /// How many deliveries are pending, delivered and given up.
    pub fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let (pending, delivered, failed): (i64, i64, i64) = self.reader().query_row(
            "SELECT
                 count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL),
                 count(*) FILTER (WHERE delivered_at IS NOT NULL),
                 count(*) FILTER (WHERE failed_at IS NOT NULL)
             FROM webhook_deliveries",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        Ok(DeliveryCounts {
            pending: pending.unsigned_abs(),
            delivered: delivered.unsigned_abs(),
            failed: failed.unsigned_abs(),
        })
    }
}

fn delivery_key(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Corrupt(format!("delivery id {id}")))
}
