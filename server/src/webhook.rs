//! Webhook notifications: new critical violations and escalations, POSTed as signed JSON.
//!
//! What to announce comes from the store's durable queue ([`crate::store::notify`]); this module
//! sends it. Deliveries run in their own task, never inside a database transaction and never on
//! the ingest path, and are retried with exponential backoff (the configured first delay,
//! doubling, at most an hour, ±20 % jitter) until the receiver answers 2xx or the retries are
//! used up (then the delivery is kept as failed and logged at ERROR). Delivery is *at least
//! once*: a receiver that answers too late, or a server stopped between the answer and its
//! record, sees the same delivery id again.
//!
//! # The request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Infoledger-Webhook-Event: critical_opened | escalated
//! X-Infoledger-Webhook-Delivery: 42
//! X-Infoledger-Webhook-Timestamp: 1767225600
//! X-Infoledger-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>
//!
//! {"event":"escalated","delivery":42,"attempt":1,"sent_at":"2026-01-01T00:00:00Z",
//!  "violation":{"id":…,"agent":…,"host":…,"path":…,"kind":…,"severity":…,"status":…,
//!               "label":…,"asset":…,"department":…,"rule":…,"message":…,"fix":…,
//!               "opened_at":…,"escalated_at":…,"resolved_at":…}}
//! ```
//!
//! To verify: compute HMAC-SHA256 over the raw body bytes with the shared secret, compare it in
//! constant time with the hex after `sha256=`, and only then parse the body. The timestamp header
//! repeats the body's `sent_at` (which the signature covers) in Unix seconds: refuse requests
//! more than a few minutes old, and drop repeated `delivery` ids.

use crate::config::{self, WebhookSecret};
use crate::store::notify::{Delivery, WebhookEvent};
use crate::store::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use ring::hmac;
use ring::rand::SecureRandom as _;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `sha256=<hex>`: HMAC-SHA256 of the body under the shared secret.
pub const HEADER_SIGNATURE: &str = "x-infoledger-webhook-signature";
/// Unix seconds of the body's `sent_at`.
pub const HEADER_TIMESTAMP: &str = "x-infoledger-webhook-timestamp";
/// `critical_opened` or `escalated`.
pub const HEADER_EVENT: &str = "x-infoledger-webhook-event";
/// The delivery id (the same on every attempt).
pub const HEADER_DELIVERY: &str = "x-infoledger-webhook-delivery";
/// How often the delivery task looks for new notifications and due retries.
pub const POLL: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// How many deliveries one round sends at most.
const ROUND_LIMIT: u32 = 100;

/// Why the webhook could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret file could not be read.
    #[error("cannot read webhook secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is too short to be a key.
    #[error("webhook secret in {} is shorter than {} bytes", path.display(), config::MIN_WEBHOOK_SECRET_BYTES)]
    ShortSecret {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot set up the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Everything a [`Notifier`] needs, resolved (the secret read).
#[derive(Clone)]
pub struct NotifierSettings {
    /// Where to POST.
    pub url: reqwest::Url,
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// What to announce.
    pub events: Vec<WebhookEvent>,
    /// Per-attempt time limit.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first retry's delay.
    pub retry_delay: Duration,
}

impl std::fmt::Debug for NotifierSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierSettings")
            .field("url", &self.url.as_str())
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
    }
}

impl NotifierSettings {
    /// Resolves the configuration's `[webhook]`, reading the secret file.
    pub fn from_config(webhook: &config::Webhook) -> Result<NotifierSettings, WebhookError> {
        let secret = match &webhook.secret {
            WebhookSecret::Inline(secret) => secret.as_bytes().to_vec(),
            WebhookSecret::File(path) => {
                let err = |source| WebhookError::SecretFile {
                    path: path.clone(),
                    source,
                };
                let text = std::fs::read(path).map_err(err)?;
                warn_if_readable_by_others(path);
                let trimmed = text.trim_ascii().to_vec();
                if trimmed.len() < config::MIN_WEBHOOK_SECRET_BYTES {
                    return Err(WebhookError::ShortSecret { path: path.clone() });
                }
                trimmed
            }
        };
        Ok(NotifierSettings {
            url: webhook.url.clone(),
            secret,
            events: webhook.events.clone(),
            timeout: webhook.timeout,
            retries: webhook.retries,
            retry_delay: webhook.retry_delay,
        })
    }
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the webhook secret file is readable by group or others; chmod 600 it");
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Answered 2xx.
    pub delivered: usize,
    /// Failed and scheduled again.
    pub retrying: usize,
    /// Failed for the last time.
    pub given_up: usize,
}

/// Sends the store's queued notifications to the webhook.
pub struct Notifier {
    store: Arc<Store>,
    settings: NotifierSettings,
    key: hmac::Key,
    client: reqwest::Client,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier over `store`; one HTTP client, reused for every delivery.
    pub fn new(store: Arc<Store>, settings: NotifierSettings) -> Result<Notifier, WebhookError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("infoledger-server/", env!("CARGO_PKG_VERSION")))
            // A redirect would send the signed notification somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookError::Client)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &settings.secret);
        Ok(Notifier {
            store,
            settings,
            key,
            client,
        })
    }

    /// Enqueues notifications for the history written since the last call; returns how many.
    pub async fn enqueue(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let store = Arc::clone(&self.store);
        let events = self.settings.events.clone();
        blocking(move || {
            let mut total = 0;
            loop {
                let (enqueued, more) = store.enqueue_notifications(&events, now)?;
                total += enqueued;
                if !more {
                    return Ok(total);
                }
            }
        })
        .await
    }

    /// Sends every delivery due at `now` (one attempt each) and records the outcomes; a failed
    /// attempt is scheduled again after the backoff, counted from `now`.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryRound, StoreError> {
        let store = Arc::clone(&self.store);
        let due = blocking(move || store.due_deliveries(now, ROUND_LIMIT)).await?;
        let mut round = DeliveryRound::default();
        for delivery in due {
            let attempt = delivery.attempts.saturating_add(1);
            let outcome = self.send(&delivery, attempt, Utc::now()).await;
            let store = Arc::clone(&self.store);
            match outcome {
                Ok(()) => {
                    tracing::debug!(delivery = delivery.id, event = %delivery.event, attempt, "webhook delivered");
                    blocking(move || store.delivery_succeeded(delivery.id, Utc::now())).await?;
                    round.delivered += 1;
                }
                Err(error) => {
                    let retry_at = (attempt <= self.settings.retries).then(|| {
                        let delay = backoff(self.settings.retry_delay, attempt, jitter());
                        now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX)
                    });
                    match retry_at {
                        Some(at) => {
                            tracing::warn!(delivery = delivery.id, event = %delivery.event, attempt, %error, retry_at = %at, "webhook delivery failed; will retry");
                            round.retrying += 1;
                        }
                        None => {
                            tracing::error!(delivery = delivery.id, event = %delivery.event, violation = %delivery.violation_id, attempt, %error, "webhook delivery failed for the last time; the notification is lost");
                            round.given_up += 1;
                        }
                    }
                    blocking(move || store.delivery_failed(delivery.id, &error, retry_at, now))
                        .await?;
                }
            }
        }
        Ok(round)
    }

    /// One attempt; the error is for the log and the queue (never the secret, never the URL's
    /// query, which may carry a receiver's token).
    async fn send(
        &self,
        delivery: &Delivery,
        attempt: u32,
        sent_at: DateTime<Utc>,
    ) -> Result<(), String> {
        let body = payload(delivery, attempt, sent_at);
        let response = self
            .client
            .post(self.settings.url.clone())
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_EVENT, delivery.event.as_str())
            .header(HEADER_DELIVERY, delivery.id.to_string())
            .header(HEADER_TIMESTAMP, sent_at.timestamp().to_string())
            .header(HEADER_SIGNATURE, sign_with(&self.key, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("receiver answered {status}"))
        }
    }
}

/// Runs a blocking store call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Corrupt(format!("blocking task failed: {e}")))?
}

/// The JSON body of one attempt.
pub fn payload(delivery: &Delivery, attempt: u32, sent_at: DateTime<Utc>) -> Vec<u8> {
    let body = serde_json::json!({
        "event": delivery.event.as_str(),
        "delivery": delivery.id,
        "attempt": attempt,
        "sent_at": sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "violation": delivery.violation,
    });
    // Serialising a `Value` cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The signature header's value for `body`: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    sign_with(&hmac::Key::new(hmac::HMAC_SHA256, secret), body)
}

fn sign_with(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let mut header = String::with_capacity(7 + 64);
    header.push_str("sha256=");
    for b in tag.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(header, "{b:02x}");
    }
    header
}

/// What a receiver does: checks a signature header against the body, in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return false;
    }
    let tag: Option<Vec<u8>> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    tag.is_some_and(|tag| {
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body, &tag).is_ok()
    })
}

/// The delay before retry number `attempt` (1 for the first retry): `first` doubled per
/// earlier retry, at most an hour, scaled by `jitter` (0.8..=1.2) so that many failed
/// deliveries do not retry in lockstep.
pub fn backoff(first: Duration, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let delay = first.saturating_mul(1u32 << doublings).min(MAX_RETRY_DELAY);
    delay.mul_f64(jitter.clamp(0.8, 1.2))
}

/// A random factor in 0.8..=1.2; 1.0 if the random source fails (no jitter beats no retry).
fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    match ring::rand::SystemRandom::new().fill(&mut byte) {
        Ok(()) => 0.8 + 0.4 * f64::from(byte[0]) / 255.0,
        Err(_) => 1.0,
    }
}

/// Runs the delivery loop until `stop` turns true: every [`POLL`], enqueue what the history
/// announces and send what is due. Store errors are logged and the loop goes on.
pub async fn run(notifier: Notifier, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let now = Utc::now();
        if let Err(error) = notifier.enqueue(now).await {
            tracing::error!(%error, "cannot enqueue webhook notifications");
            continue;
        }
        // Stopping abandons an attempt in flight without recording it: the delivery stays
        // pending and is sent again after the restart (at least once), and a receiver that
        // hangs cannot hold up the shutdown.
        tokio::select! {
            outcome = notifier.deliver_due(now) => {
                if let Err(error) = outcome {
                    tracing::error!(%error, "cannot record webhook deliveries");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let first = Duration::from_secs(10);
        let table = [
            (1, 1.0, 10),
            (2, 1.0, 20),
            (3, 1.0, 40),
            (9, 1.0, 2560),
            (10, 1.0, 3600),
            (1000, 1.0, 3600),
            (1, 0.8, 8),
            (1, 1.2, 12),
            (1, 5.0, 12),
        ];
        for (attempt, jitter, want) in table {
            assert_eq!(
                backoff(first, attempt, jitter),
                Duration::from_secs(want),
                "{attempt} {jitter}"
            );
        }
    }

    #[test]
    fn signatures_verify_and_refuse_changes() {
        let secret = b"0123456789abcdef";
        let body = br#"{"event":"escalated"}"#;
        let header = signature(secret, body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert!(verify_signature(secret, body, &header));
        assert!(!verify_signature(secret, b"{}", &header));
        assert!(!verify_signature(b"another secret!!", body, &header));
        assert!(!verify_signature(
            secret,
            body,
            &header.replace("sha256=", "")
        ));
        assert!(!verify_signature(secret, body, "sha256=zz"));
        // The known HMAC-SHA256 test vector (RFC 4231, case 2).
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
