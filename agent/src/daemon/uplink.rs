//! The uplink: a thread that talks to the collector so the run loop never waits on the network.
//!
//! It enrolls on first start, polls the signed bundle (handing verified new versions to the run
//! loop), and delivers the outbox in batches of [`BATCH_EVENTS`]: a batch's events are numbered
//! and committed before it is sent, and deleted only up to the collector's `stored_through`.
//! Failures back off exponentially (1 s doubling up to `retry_max`) with jitter (each wait is
//! drawn between half and all of the step), so a fleet does not return in lockstep after an
//! outage. On shutdown it makes one last bounded delivery attempt.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::bundle::{accept, store_cached};
use super::client::{BundleAnswer, Client, ClientError};
use super::config::{Config, ServerConfig};
use super::identity::Identity;
use super::state::{StateDb, BATCH_EVENTS};
use super::Input;

/// What the run loop tells the uplink.
#[derive(Debug)]
pub(crate) enum ToUplink {
    /// New events are in the outbox.
    Wake,
    /// The configuration was reloaded.
    Reload(Box<Config>),
    /// Shut down after one last delivery attempt that ends by this time.
    Flush(Instant),
}

/// What the uplink last knew, for health and `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct UplinkStatus {
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// The collector bundle version in use.
    pub bundle_version: Option<u64>,
    /// Events acknowledged since start.
    pub delivered: u64,
}

/// Shared view of the uplink's status.
pub(crate) type SharedStatus = Arc<Mutex<UplinkStatus>>;

/// Exponential backoff with jitter.
#[derive(Debug)]
struct Backoff {
    failures: u32,
    max: Duration,
    seed: u64,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            failures: 0,
            max,
            seed: seed | 1,
        }
    }

    /// The wait after one more failure: between half and all of min(max, 1 s × 2^failures).
    fn next_delay(&mut self) -> Duration {
        let step = Duration::from_secs(1)
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        // xorshift64: jitter needs spread, not secrecy.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        step.mul_f64(fraction)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

pub(crate) struct Uplink {
    server: ServerConfig,
    config: Config,
    hostname: String,
    state_dir: PathBuf,
    db: StateDb,
    client: Option<Client>,
    identity: Option<Identity>,
    status: SharedStatus,
    to_main: Sender<Input>,
    backoff: Backoff,
    retry_at: Instant,
    bundle_due: Instant,
    /// Whether the outbox may hold events (set by wakes, cleared when a batch comes back empty).
    pending: bool,
}

impl Uplink {
    pub(crate) fn new(
        config: &Config,
        server: ServerConfig,
        hostname: String,
        identity: Option<Identity>,
        status: SharedStatus,
        to_main: Sender<Input>,
    ) -> Result<Uplink, super::DaemonError> {
        let db = StateDb::open(&config.state_dir, config.outbox_limit, true)?;
        let now = Instant::now();
        Ok(Uplink {
            backoff: Backoff::new(server.retry_max),
            server,
            config: config.clone(),
            hostname,
            state_dir: config.state_dir.clone(),
            db,
            client: None,
            identity,
            status,
            to_main,
            retry_at: now,
            bundle_due: now,
            pending: true,
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, UplinkStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&mut self, what: &str, e: &dyn std::fmt::Display) {
        let delay = self.backoff.next_delay();
        self.retry_at = Instant::now() + delay;
        let message = format!("{what}: {e}");
        tracing::warn!(retry_in_ms = delay.as_millis() as u64, "{message}");
        self.status().last_error = Some(message);
    }

    fn succeed(&mut self) {
        self.backoff.reset();
        self.status().last_error = None;
    }

    fn client(&mut self) -> Option<&Client> {
        if self.client.is_none() {
            match Client::new(&self.server) {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.fail("collector client", &e);
                    return None;
                }
            }
        }
        self.client.as_ref()
    }

    /// The thread's body.
    pub(crate) fn run(mut self, rx: Receiver<ToUplink>) {
        loop {
            let now = Instant::now();
            if now >= self.retry_at {
                self.work(None);
            }
            let mut wake_at = self.bundle_due.max(self.retry_at);
            if self.pending && self.identity.is_some() {
                wake_at = wake_at.min(self.retry_at.max(Instant::now()));
            }
            if self.identity.is_none() {
                wake_at = self.retry_at;
            }
            let timeout = wake_at.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(ToUplink::Wake) => self.pending = true,
                Ok(ToUplink::Reload(config)) => self.reload(*config),
                Ok(ToUplink::Flush(deadline)) => {
                    self.flush(deadline);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn reload(&mut self, config: Config) {
        if let Some(server) = config.server.clone() {
            if server.url != self.server.url {
                tracing::warn!("a changed `server` takes effect when the agent restarts");
            }
            self.backoff.max = server.retry_max;
            self.server = ServerConfig {
                url: self.server.url.clone(),
                ..server
            };
            // A new CA file or token: build the client again and try at once.
            self.client = None;
            self.retry_at = Instant::now();
            self.bundle_due = Instant::now();
        }
        self.hostname = config
            .hostname
            .clone()
            .unwrap_or_else(|| self.hostname.clone());
        self.db.set_outbox_limit(config.outbox_limit);
        self.config = config;
    }

    /// One round: enroll if needed, poll the bundle when due, deliver the outbox.
    fn work(&mut self, deadline: Option<Instant>) {
        if self.identity.is_none() && !self.enroll() {
            return;
        }
        if deadline.is_none() && Instant::now() >= self.bundle_due {
            if !self.poll_bundle() {
                return;
            }
            self.bundle_due = Instant::now() + self.server.bundle_interval;
        }
        if self.pending {
            self.deliver(deadline);
        }
    }

    fn enroll(&mut self) -> bool {
        let token = match self.config.enroll_token() {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.fail(
                    "not enrolled",
                    &"no enroll_token or enroll_token_file is configured; add one and reload (SIGHUP)",
                );
                return false;
            }
            Err(e) => {
                self.fail("not enrolled", &e);
                return false;
            }
        };
        let hostname = self.hostname.clone();
        let Some(client) = self.client() else {
            return false;
        };
        match client.enroll(&token, &hostname) {
            Ok(answer) => {
                let identity = Identity::new(
                    self.server.url.as_str(),
                    answer.agent_id,
                    answer.secret,
                    answer.bundle_public_key,
                );
                if let Err(e) = identity.save(&self.state_dir) {
                    self.fail("cannot store the identity", &e);
                    return false;
                }
                // A new agent's sequence starts at 1, whatever an earlier identity had sent.
                if let Err(e) = self.db.restart_sequence() {
                    self.fail("state", &e);
                    return false;
                }
                tracing::info!(agent = %identity.agent_id, "enrolled with the collector");
                self.identity = Some(identity);
                self.succeed();
                true
            }
            Err(e) => {
                self.fail("enrollment failed", &e);
                false
            }
        }
    }

    /// Asks for a new bundle; false when the collector could not be asked.
    fn poll_bundle(&mut self) -> bool {
        let held = self.status().bundle_version;
        let Some(identity) = self.identity.clone() else {
            return false;
        };
        let Some(client) = self.client() else {
            return false;
        };
        match client.fetch_bundle(&identity, held) {
            Ok(BundleAnswer::NotModified) => true,
            Ok(BundleAnswer::NoBundle) => {
                if held.is_none() {
                    tracing::debug!("the collector has no bundle yet");
                }
                true
            }
            Ok(BundleAnswer::Bundle(signed)) => {
                match accept(&signed, &identity, held) {
                    Ok((_, active)) => {
                        if let Err(e) = store_cached(&self.state_dir, &signed) {
                            tracing::error!(error = %e, "cannot cache the bundle; it is used, but a restart without the collector falls back to the previous one");
                        }
                        self.status().bundle_version = active.version;
                        tracing::info!(version = ?active.version, "new bundle from the collector");
                        let _ = self.to_main.send(Input::Bundle(Box::new(active)));
                    }
                    Err(e) => {
                        // Refused bundles are an operator's problem, not a network one: keep
                        // the current bundle and ask again at the next interval.
                        tracing::error!(error = %e, "bundle refused");
                        self.status().last_error = Some(format!("bundle refused: {e}"));
                    }
                }
                true
            }
            Err(e) => {
                self.report_refusal(&e);
                self.fail("bundle request failed", &e);
                false
            }
        }
    }

    fn report_refusal(&self, e: &ClientError) {
        if let Some(code @ ("unknown_agent" | "agent_revoked")) = e.code() {
            tracing::error!(
                code,
                "the collector does not accept this agent; if it was revoked or the collector's database was replaced, remove {} to enroll again",
                self.state_dir.join(super::identity::IDENTITY_FILE).display()
            );
        }
    }

    /// Sends batches until the outbox is empty, a request fails, or `deadline` passes.
    fn deliver(&mut self, deadline: Option<Instant>) {
        let Some(identity) = self.identity.clone() else {
            return;
        };
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let events = match self.db.next_batch(BATCH_EVENTS) {
                Ok(e) => e,
                Err(e) => {
                    self.fail("outbox", &e);
                    return;
                }
            };
            let Some(first) = events.first().map(|e| e.seq) else {
                self.pending = false;
                return;
            };
            let last = events.last().map_or(first, |e| e.seq);
            let timeout = deadline.map(|d| {
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100))
            });
            let Some(client) = self.client() else {
                return;
            };
            match client.send_events(&identity, &events, timeout) {
                Ok(stored_through) => {
                    if stored_through + 1 < first {
                        // The collector lacks events this agent already deleted (its database
                        // was restored from an older backup): it will wait for them forever.
                        tracing::error!(stored_through, first, "the collector is missing events this agent already delivered; its database looks restored from an older copy");
                    }
                    match self.db.acknowledge(stored_through) {
                        Ok(n) => {
                            tracing::debug!(
                                first,
                                last,
                                stored_through,
                                deleted = n,
                                "batch delivered"
                            );
                            self.status().delivered += n;
                            self.succeed();
                            let _ = self.to_main.send(Input::Delivered);
                            if stored_through < last {
                                // Stored but not yet contiguous on the collector: try again later.
                                self.fail(
                                    "delivery incomplete",
                                    &format!("collector stored through {stored_through} of {last}"),
                                );
                                return;
                            }
                        }
                        Err(e) => {
                            self.fail("outbox", &e);
                            return;
                        }
                    }
                }
                Err(e) => {
                    self.report_refusal(&e);
                    self.fail("delivery failed", &e);
                    return;
                }
            }
        }
    }

    fn flush(&mut self, deadline: Instant) {
        if self.identity.is_none() {
            return;
        }
        self.pending = true;
        self.deliver(Some(deadline));
        if let Ok(depth) = self.db.outbox_depth() {
            if depth > 0 {
                tracing::info!(
                    events = depth,
                    "events left in the outbox are sent at the next start"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(10));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let caps = [1, 2, 4, 8, 10, 10, 10, 10];
        for (d, cap) in delays.iter().zip(caps) {
            let cap = Duration::from_secs(cap);
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} not within [{:?}, {cap:?}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
