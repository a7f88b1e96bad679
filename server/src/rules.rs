//! Server-side rules, run periodically by `serve`: expired exceptions reopen, violations past
//! their SLA escalate, and ledger drift is brought up to date.

use crate::sla::Slas;
use crate::store::drift::DriftRefresh;
use crate::store::{Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the rules need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSettings {
    /// How often they run.
    pub interval: Duration,
    /// The time allowed per severity.
    pub slas: Slas,
    /// How long an asset may hold no file before it is drift.
    pub drift_empty_after: TimeDelta,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesPass {
    /// Exceptions that ran out and reopened.
    pub exceptions_expired: usize,
    /// Violations escalated by this pass.
    pub escalated: Vec<String>,
    /// The drift refresh.
    pub drift: DriftRefresh,
}

/// One pass at `now`. Exceptions expire first, so that a violation whose exception ran out can
/// escalate in the same pass.
pub fn run_once(
    store: &Store,
    settings: &RuleSettings,
    now: DateTime<Utc>,
) -> Result<RulesPass, StoreError> {
    let exceptions_expired = store.expire_exceptions(now)?;
    let escalated = store.escalate(now, &settings.slas)?;
    let drift = store.refresh_drift(now, settings.drift_empty_after)?;
    Ok(RulesPass {
        exceptions_expired,
        escalated,
        drift,
    })
}

/// Runs a pass at once and then every `settings.interval` until `stop` turns true. A failed pass
/// is logged and retried at the next interval.
pub async fn run(store: Arc<Store>, settings: RuleSettings, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let settings = Arc::new(settings);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let store = Arc::clone(&store);
        let settings = Arc::clone(&settings);
        match tokio::task::spawn_blocking(move || run_once(&store, &settings, Utc::now())).await {
            Ok(Ok(pass)) => {
                if pass.exceptions_expired
                    + pass.escalated.len()
                    + pass.drift.opened
                    + pass.drift.resolved
                    > 0
                {
                    tracing::info!(
                        exceptions_expired = pass.exceptions_expired,
                        escalated = pass.escalated.len(),
                        drift_open = pass.drift.open,
                        drift_opened = pass.drift.opened,
                        drift_resolved = pass.drift.resolved,
                        "server-side rules applied"
                    );
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "server-side rules failed"),
            Err(error) => tracing::error!(%error, "server-side rules task failed"),
        }
    }
}
