//! The always-on agent: `infoledger-agent run`.
//!
//! One run loop owns the state ([`state::StateDb`]) and does all file work: the start-up scan,
//! periodic rescans, paths a watcher reports ([`ChangeFeed`]), evaluating cached facts again when
//! a new bundle arrives or the date changes (deadlines), and queueing health and footprints. A
//! second thread, the uplink ([`uplink`]), talks to the collector: enrollment, the signed
//! bundle, delivering the outbox. A third turns signals into messages: SIGTERM/SIGINT flush and
//! exit 0, SIGHUP reloads the configuration. Beside them: the watcher's threads
//! ([`watching`]), the desktop notifier's sender, and the local socket that answers
//! `infoledger-agent warnings` ([`socket`]); each blocks until it has something to do.
//!
//! The loop sleeps on one channel until the next thing is due (a rescan, a health event, the
//! next UTC midnight), so an idle agent wakes up rarely.
//!
//! # Where the file-system watcher plugs in
//!
//! A watcher implements [`ChangeSource`] and is passed to [`Daemon::set_change_source`]
//! (`infoledger-agent run` installs [`watching::FsWatcher`]). The run loop calls
//! [`ChangeSource::watch`] with a [`WatchRequest`] (the canonical watch roots, the `exclude`
//! globs, the state folder, the bundle and the configured scope) and a [`ChangeFeed`] before
//! the start-up scan, after every reload, when the roots change and when a new bundle arrives;
//! the source restarts only when what it watches would change. The watcher sends batches of
//! changed paths (coalesced as it sees fit) with [`ChangeFeed::changed`], asks for a rescan of
//! every root with [`ChangeFeed::rescan`] when it lost events, and reports its state through
//! [`ChangeSource::status`] (or [`ChangeFeed::watch_status`]) for health. Any path may be sent:
//! files are inspected when their stamp changed, folders are walked, paths that no longer exist
//! are forgotten together with everything cached under them, and paths outside the roots or
//! excluded are ignored. After each complete rescan the loop calls [`ChangeSource::rescanned`]
//! so the watcher can try again what it could not watch. Rescans stay the source of truth.
//!
//! # systemd
//!
//! Under a `Type=notify` unit the agent sends `READY=1` once the watcher is installed and the
//! start-up scan is about to run (not after it: the first scan of a large tree can outlast
//! `TimeoutStartSec`, and changes during it are not lost since the watcher is already in
//! place), then `STATUS=` lines as scans finish, and `RELOADING=1` … `READY=1` around a SIGHUP
//! reload. Elsewhere these are no-ops.

pub mod bundle;
pub mod client;
pub mod clock;
pub mod config;
pub mod identity;
pub mod socket;
pub mod state;
mod sync;
mod uplink;
pub mod watching;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use infoledger_policies::wire::events::{Footprint, Health};
use infoledger_policies::Bundle;

use self::bundle::ActiveBundle;
use self::clock::Clock;
use self::config::Config;
use self::identity::Identity;
use self::state::{Change, StateDb, StateError};
use self::sync::{elapsed_ms, Scope, SyncStats, Syncer};
use self::uplink::{SharedStatus, ToUplink, Uplink};
use crate::facts::Inspector;
use crate::notify_desktop::{DesktopNotifier, DesktopOptions, Notification};
use crate::watch::WatchScope;

/// The state's meta key holding a hash of the markings the cached facts were read for.
const MARKINGS_KEY: &str = "markings";

/// A stable number for a bundle's markings, to notice when they change across restarts.
fn markings_key(markings: &[(String, String)]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (m, l) in markings {
        h.update(m.as_bytes());
        h.update([0]);
        h.update(l.as_bytes());
        h.update([0xff]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

/// How long the last delivery attempt may take on shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database failed.
    #[error("{0}")]
    State(#[from] StateError),
    /// A state file failed.
    #[error("{0}")]
    Identity(#[from] identity::IdentityError),
    /// The local bundle could not be loaded.
    #[error("{0}")]
    Bundle(#[from] bundle::BundleRefusal),
    /// An exclude glob is invalid.
    #[error("{0}")]
    Scope(#[from] crate::scan::ScanSetupError),
    /// Signals could not be set up.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// What reaches the run loop.
#[derive(Debug)]
pub(crate) enum Input {
    /// Paths a watcher saw change.
    Changed(Vec<PathBuf>),
    /// A watcher lost events: rescan every root now.
    Rescan,
    /// The watcher's state.
    WatchStatus(WatchStatus),
    /// A signal.
    Signal(i32),
    /// A new verified bundle from the collector.
    Bundle(Box<ActiveBundle>),
    /// The uplink delivered events (room in the outbox).
    Delivered,
}

/// A file-system watcher's state, for health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStatus {
    /// Watches in place.
    pub watches: u64,
    /// Whether the kernel refused watches (the subtrees concerned rely on rescans).
    pub limit_reached: bool,
}

/// The run loop has stopped; nothing more can be fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the agent's run loop has stopped")]
pub struct FeedClosed;

/// The run loop's inlet for change notifications; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    tx: Sender<Input>,
}

impl ChangeFeed {
    /// Reports paths that changed (created, written, renamed from or to, deleted, permissions,
    /// extended attributes). Folders are walked; vanished paths are forgotten.
    pub fn changed(&self, paths: Vec<PathBuf>) -> Result<(), FeedClosed> {
        self.tx.send(Input::Changed(paths)).map_err(|_| FeedClosed)
    }

    /// Asks for a rescan of every root now: the watcher lost events (the kernel's queue
    /// overflowed, or too much changed at once to list).
    pub fn rescan(&self) -> Result<(), FeedClosed> {
        self.tx.send(Input::Rescan).map_err(|_| FeedClosed)
    }

    /// Reports the watcher's state (watch count, whether the kernel's limit was reached).
    pub fn watch_status(&self, status: WatchStatus) -> Result<(), FeedClosed> {
        self.tx
            .send(Input::WatchStatus(status))
            .map_err(|_| FeedClosed)
    }
}

/// What a [`ChangeSource`] is asked to watch.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest<'a> {
    /// The watch roots: canonical and existing.
    pub roots: &'a [PathBuf],
    /// The configuration's `exclude` globs.
    pub exclude: &'a [String],
    /// The agent's own state folder (canonical): never watched, its writes are no news.
    pub state_dir: &'a Path,
    /// The bundle in force, if any: its locations decide the `interesting` scope.
    pub bundle: Option<&'a Bundle>,
    /// The configured `watch_scope`.
    pub scope: WatchScope,
}

/// A source of change notifications: the file-system watcher.
pub trait ChangeSource: Send {
    /// Starts watching what `request` describes, reporting into `feed`. Called again after a
    /// reload, when the roots change and when a new bundle arrives: the source replaces what it
    /// watched only when that would change. An error is logged and the agent relies on rescans.
    fn watch(&mut self, request: &WatchRequest<'_>, feed: ChangeFeed) -> Result<(), String>;

    /// A complete rescan has finished: what could not be watched may be tried again.
    fn rescanned(&mut self) {}

    /// The source's state for health; `None` when it reports through
    /// [`ChangeFeed::watch_status`] instead.
    fn status(&self) -> Option<WatchStatus> {
        None
    }
}

/// Sets the tracing level (the `log_level` key) on reload; installed by the binary.
pub type LogLevelHook = Box<dyn Fn(&str) + Send>;

/// The daemon.
pub struct Daemon {
    config: Config,
    clock: Clock,
    db: StateDb,
    bundle: Option<ActiveBundle>,
    host: String,
    scope: Scope,
    tx: Sender<Input>,
    rx: Receiver<Input>,
    uplink: Option<(Sender<ToUplink>, Receiver<()>)>,
    uplink_status: SharedStatus,
    stop: Arc<AtomicBool>,
    change_source: Option<Box<dyn ChangeSource>>,
    notifier: Option<DesktopNotifier>,
    socket: Option<socket::SocketServer>,
    log_level: Option<LogLevelHook>,
    watch: WatchStatus,
    dropped: u64,
    deferred: bool,
    last_scan: Option<(DateTime<Utc>, u64)>,
    last_error: Option<String>,
    evaluated_on: NaiveDate,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config.path)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The system's host name.
pub fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The scope of `config`: canonical roots that exist; missing ones are logged and kept apart
/// (their cached files stay until they are back: an unmounted share is not an empty one).
fn scope_of(config: &Config, state_dir: &Path) -> Result<Scope, crate::scan::ScanSetupError> {
    let mut roots = Vec::new();
    let mut unavailable = Vec::new();
    for r in &config.watch {
        match std::fs::canonicalize(r) {
            Ok(p) => roots.push(p),
            Err(e) => {
                tracing::warn!(root = %r.display(), error = %e, "watch root not available; looked for again at the next rescan");
                unavailable.push(r.clone());
            }
        }
    }
    Scope::new(&roots, &unavailable, &config.exclude, state_dir)
}

impl Daemon {
    /// Prepares the state folder, opens the state and loads the bundle to start with; starts no
    /// thread (that is [`Daemon::run`]'s job).
    pub fn new(config: Config, clock: Clock) -> Result<Daemon, DaemonError> {
        identity::prepare_state_dir(&config.state_dir)?;
        let mut db = StateDb::open(&config.state_dir, config.outbox_limit, false)?;
        let host = config.hostname.clone().unwrap_or_else(system_hostname);
        db.set_host(&host);
        db.set_announcing(!config.local_only());
        let identity = Identity::load(&config.state_dir)?;
        let bundle = bundle::initial(&config, identity.as_ref())?;
        let scope = scope_of(&config, &config.state_dir)?;
        let (tx, rx) = mpsc::channel();
        let evaluated_on = clock.now().date_naive();
        // Changes deferred by a full outbox before a restart are still waiting.
        let deferred = !config.local_only() && db.deferred()? > 0;
        Ok(Daemon {
            config,
            clock,
            db,
            bundle,
            host,
            scope,
            tx,
            rx,
            uplink: None,
            uplink_status: SharedStatus::default(),
            stop: Arc::new(AtomicBool::new(false)),
            change_source: None,
            notifier: None,
            socket: None,
            log_level: None,
            watch: WatchStatus::default(),
            dropped: 0,
            deferred,
            last_scan: None,
            last_error: None,
            evaluated_on,
        })
    }

    /// The inlet for change notifications.
    pub fn change_feed(&self) -> ChangeFeed {
        ChangeFeed {
            tx: self.tx.clone(),
        }
    }

    /// Installs the file-system watcher.
    pub fn set_change_source(&mut self, source: Box<dyn ChangeSource>) {
        self.change_source = Some(source);
    }

    /// Installs the hook that applies `log_level` on reload.
    pub fn set_log_level_hook(&mut self, hook: LogLevelHook) {
        self.log_level = Some(hook);
    }

    /// Runs until SIGTERM or SIGINT; returns after the last delivery attempt.
    pub fn run(mut self) -> Result<(), DaemonError> {
        if self.clock.is_test_clock() {
            tracing::warn!(
                "{} is set: rules are judged at a shifted time (for tests only)",
                clock::TEST_CLOCK_ENV
            );
        }
        self.start_signals()?;
        self.start_uplink()?;
        self.start_socket();
        self.start_notifier();
        self.start_watcher();
        match &self.bundle {
            Some(b) => tracing::info!(bundle = %b.origin, host = %self.host, "agent started"),
            None => {
                tracing::info!(host = %self.host, "agent started; waiting for the collector's bundle")
            }
        }
        notify_systemd(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(if self.bundle.is_some() {
                "start-up scan"
            } else {
                "waiting for the collector's bundle"
            }),
        ]);
        if self.bundle.is_some() {
            // What was evaluated before this start may be stale: a day may have passed, the
            // host name, the local files or their markings may have changed. Cached facts answer
            // all of that; the scan then looks at what changed on disk.
            self.apply_bundle("start");
            self.rescan();
        }
        self.queue_health();
        let mut next_rescan = Instant::now() + self.config.rescan_interval;
        let mut next_health = Instant::now() + self.config.health_interval;
        loop {
            let now = Instant::now();
            let mut wake = next_rescan.min(next_health);
            let clock_check = self
                .clock
                .poll_interval()
                .unwrap_or_else(|| clock::until_next_utc_day(self.clock.now()));
            wake = wake.min(now + clock_check);
            match self.rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Input::Signal(sig)) if sig == signal_hook::consts::SIGHUP => {
                    self.reload();
                    next_rescan = Instant::now();
                }
                Ok(Input::Signal(_)) => break,
                Ok(Input::Changed(paths)) => self.changed(paths),
                Ok(Input::Rescan) => next_rescan = Instant::now(),
                Ok(Input::WatchStatus(w)) => self.watch = w,
                Ok(Input::Bundle(b)) => self.new_bundle(*b),
                Ok(Input::Delivered) => self.delivered(),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.clock.now().date_naive() != self.evaluated_on {
                self.new_day();
            }
            if Instant::now() >= next_rescan {
                if self.bundle.is_some() {
                    self.rescan();
                }
                next_rescan = Instant::now() + self.config.rescan_interval;
            }
            if Instant::now() >= next_health {
                self.queue_health();
                next_health = Instant::now() + self.config.health_interval;
            }
        }
        self.shutdown();
        Ok(())
    }

    fn start_signals(&mut self) -> Result<(), DaemonError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
            .map_err(DaemonError::Signals)?;
        let tx = self.tx.clone();
        let stop = Arc::clone(&self.stop);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig != SIGHUP {
                        // Lets a long scan notice at once; the loop then flushes and exits.
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send(Input::Signal(sig)).is_err() {
                        return;
                    }
                }
            })
            .map_err(DaemonError::Thread)?;
        Ok(())
    }

    fn start_uplink(&mut self) -> Result<(), DaemonError> {
        let Some(server) = self.config.server.clone() else {
            return Ok(());
        };
        let identity = Identity::load(&self.config.state_dir)?;
        if let Some(id) = &identity {
            if id.server != server.url.as_str() {
                tracing::warn!(enrolled_with = %id.server, server = %server.url, "this agent enrolled with another collector URL; remove {} to enroll with the configured one", self.config.state_dir.join(identity::IDENTITY_FILE).display());
            }
        }
        if let Some(b) = &self.bundle {
            self.uplink_status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .bundle_version = b.version;
        }
        let uplink = Uplink::new(
            &self.config,
            server,
            self.host.clone(),
            identity,
            Arc::clone(&self.uplink_status),
            self.tx.clone(),
        )?;
        let (to_uplink, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("uplink".into())
            .spawn(move || {
                uplink.run(rx);
                let _ = done_tx.send(());
            })
            .map_err(DaemonError::Thread)?;
        self.uplink = Some((to_uplink, done_rx));
        Ok(())
    }

    /// Starts the watcher, or has it adjust to the current roots, excludes and bundle.
    fn start_watcher(&mut self) {
        let feed = self.change_feed();
        let Some(source) = self.change_source.as_mut() else {
            return;
        };
        let request = WatchRequest {
            roots: &self.scope.roots,
            exclude: &self.config.exclude,
            state_dir: &self.scope.state_dir,
            bundle: self.bundle.as_ref().map(|b| &b.bundle),
            scope: self.config.watch_scope,
        };
        if let Err(e) = source.watch(&request, feed) {
            tracing::warn!(error = %e, "cannot watch for changes; rescans cover everything");
            self.last_error = Some(format!("watcher: {e}"));
        }
    }

    /// Serves `infoledger-agent warnings` on the configured socket; a failure leaves the
    /// command to read the state database itself where it can.
    fn start_socket(&mut self) {
        let Some(path) = self.config.socket.clone() else {
            return;
        };
        match socket::SocketServer::start(&path, &self.config.state_dir) {
            Ok(server) => {
                tracing::debug!(socket = %path.display(), "serving warnings");
                self.socket = Some(server);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot serve `infoledger-agent warnings` on a socket; only users who can read the state database can list warnings"
            ),
        }
    }

    fn start_notifier(&mut self) {
        if !self.config.desktop_notifications {
            return;
        }
        match DesktopNotifier::start(DesktopOptions::default()) {
            Ok(n) => self.notifier = Some(n),
            Err(e) => tracing::warn!(error = %e, "cannot start desktop notifications"),
        }
    }

    fn wake_uplink(&self) {
        if let Some((tx, _)) = &self.uplink {
            let _ = tx.send(ToUplink::Wake);
        }
    }

    fn workers() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }

    /// Runs `f` with a syncer over the current bundle; logs changes; accounts the stats.
    fn sync(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Syncer<'_>, &mut StateDb) -> Result<SyncStats, StateError>,
    ) -> Option<SyncStats> {
        let bundle = self.bundle.as_ref()?;
        let now = self.clock.now();
        let notifier = self.notifier.as_ref();
        let mut on_change = |c: &Change| {
            log_change(c);
            if let (Some(n), Change::Opened { path, violation: v }) = (notifier, c) {
                // Queued, never waited for: a stuck desktop cannot slow the loop.
                n.notify(
                    v.owner,
                    Notification::for_violation(path, v.kind, v.severity, &v.message, &v.fix),
                );
            }
        };
        let mut syncer = Syncer {
            bundle: &bundle.bundle,
            host: &self.host,
            now,
            scope: &self.scope,
            stop: &self.stop,
            workers: Self::workers(),
            on_change: &mut on_change,
        };
        let result = f(&mut syncer, &mut self.db);
        match result {
            Ok(stats) => {
                self.dropped += stats.merged;
                self.deferred |= stats.deferred;
                if stats.deferred {
                    tracing::warn!("outbox full: violation changes are deferred until the collector takes events again");
                }
                if stats.queued > 0 {
                    self.wake_uplink();
                }
                tracing::debug!(what, ?stats, "synced");
                Some(stats)
            }
            Err(e) => {
                tracing::error!(what, error = %e, "state update failed");
                self.last_error = Some(format!("{what}: {e}"));
                None
            }
        }
    }

    fn rescan(&mut self) {
        // Roots that were missing may have appeared (or gone).
        match scope_of(&self.config, &self.config.state_dir) {
            Ok(scope) => {
                if scope.roots != self.scope.roots {
                    self.scope = scope;
                    self.start_watcher();
                }
            }
            Err(e) => tracing::error!(error = %e, "invalid scope"),
        }
        let started = Instant::now();
        let at = Utc::now();
        if let Some(stats) = self.sync("rescan", |s, db| s.full_scan(db)) {
            if self.stop.load(Ordering::Relaxed) {
                // Interrupted by SIGTERM: not a complete scan, nothing to report from it.
                return;
            }
            let ms = elapsed_ms(started);
            self.last_scan = Some((at, ms));
            tracing::info!(
                files = stats.files,
                inspected = stats.inspected,
                forgotten = stats.forgotten,
                unreadable = stats.unreadable,
                events = stats.queued,
                elapsed_ms = ms,
                "scan finished"
            );
            if let Some(source) = self.change_source.as_mut() {
                source.rescanned();
            }
            self.queue_footprint();
            let status = format!(
                "last scan {} files in {ms} ms; {} open violations",
                stats.files,
                self.db.open_violation_count().unwrap_or(0)
            );
            notify_systemd(&[sd_notify::NotifyState::Status(&status)]);
        }
    }

    /// Queues where the ledger's assets are on this host (after a complete scan): per asset,
    /// the files under the roots; the collector's drift report compares it with the ledger.
    fn queue_footprint(&mut self) {
        if self.config.local_only() {
            return;
        }
        let assets = match self.db.asset_counts(&self.scope.roots) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot count the files of assets");
                return;
            }
        };
        let footprint = Footprint {
            host: self.host.clone(),
            roots: self
                .scope
                .roots
                .iter()
                .map(|r| r.to_string_lossy().into_owned())
                .collect(),
            assets,
        };
        tracing::debug!(?footprint, "footprint");
        match self.db.push_footprint(&footprint, Utc::now()) {
            Ok(true) => self.wake_uplink(),
            Ok(false) => {
                self.dropped += 1;
                tracing::warn!("outbox full: footprint dropped");
            }
            Err(e) => tracing::error!(error = %e, "cannot queue the footprint"),
        }
    }

    fn changed(&mut self, paths: Vec<PathBuf>) {
        if self.bundle.is_none() {
            return;
        }
        self.sync("changed paths", |s, db| s.paths(db, paths));
    }

    fn new_day(&mut self) {
        let today = self.clock.now().date_naive();
        tracing::info!(%today, "new day: evaluating deadlines again from cached facts");
        if self
            .sync("new day", |s, db| s.reevaluate(db, None))
            .is_some()
        {
            self.evaluated_on = today;
        }
    }

    fn new_bundle(&mut self, active: ActiveBundle) {
        tracing::info!(bundle = %active.origin, "new bundle: evaluating every known file again from cached facts");
        let first = self.bundle.is_none();
        self.bundle = Some(active);
        // The interesting scope follows the bundle's locations.
        self.start_watcher();
        self.apply_bundle("new bundle");
        if first {
            self.rescan();
        }
    }

    /// Evaluates every cached file under the current bundle, host and date; files whose cached
    /// facts cannot answer the bundle (or were read for markings that changed) are inspected
    /// again.
    fn apply_bundle(&mut self, why: &str) {
        let Some(bundle) = self.bundle.clone() else {
            return;
        };
        let inspector = Inspector::new(&bundle.bundle);
        let markings = markings_key(&inspector.markings());
        let markings_changed = self.db.meta(MARKINGS_KEY).ok().flatten() != Some(markings);
        let today = self.clock.now().date_naive();
        let stats = self.sync(why, |s, db| {
            s.reevaluate(db, Some((&inspector, markings_changed)))
        });
        if let Some(stats) = stats.filter(|_| !self.stop.load(Ordering::Relaxed)) {
            if let Err(e) = self.db.set_meta(MARKINGS_KEY, markings) {
                tracing::error!(error = %e, "cannot record the bundle's markings");
            }
            self.evaluated_on = today;
            tracing::info!(
                reevaluated = stats.reevaluated,
                reinspected = stats.inspected,
                events = stats.queued,
                "bundle applied ({why}): re-evaluated {} files from cached facts, re-inspected {}",
                stats.reevaluated,
                stats.inspected
            );
        }
    }

    fn delivered(&mut self) {
        if !self.deferred {
            return;
        }
        match self.db.reconcile(Utc::now()) {
            Ok(outcome) => {
                self.dropped += outcome.merged;
                if outcome.queued > 0 {
                    self.wake_uplink();
                }
                self.deferred = outcome.deferred;
                if !outcome.deferred {
                    tracing::info!(
                        "outbox has room again: every deferred violation change is queued"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot queue deferred changes"),
        }
    }

    fn health(&self) -> Health {
        let status = self
            .uplink_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let watch = self
            .change_source
            .as_ref()
            .and_then(|s| s.status())
            .unwrap_or(self.watch);
        Health {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            queue_depth: self.db.outbox_depth().unwrap_or(0),
            dropped_events: self.dropped,
            watch_limit_reached: watch.limit_reached,
            last_error: status.last_error.or_else(|| self.last_error.clone()),
            last_scan_at: self.last_scan.map(|(at, _)| at),
            last_scan_ms: self.last_scan.map(|(_, ms)| ms),
            deferred_events: if self.deferred {
                self.db.deferred().unwrap_or(0)
            } else {
                0
            },
            bundle_version: self.bundle.as_ref().and_then(|b| b.version),
            files: self.db.file_count().unwrap_or(0),
            watches: watch.watches,
        }
    }

    fn queue_health(&mut self) {
        let health = self.health();
        tracing::debug!(?health, "health");
        if self.config.local_only() {
            return;
        }
        match self.db.push_health(&health, Utc::now()) {
            Ok(true) => self.wake_uplink(),
            Ok(false) => {
                self.dropped += 1;
                tracing::warn!("outbox full: health event dropped");
            }
            Err(e) => tracing::error!(error = %e, "cannot queue health"),
        }
    }

    fn reload(&mut self) {
        let mut reloading = vec![sd_notify::NotifyState::Reloading];
        // Type=notify-reload units want the time the reload started.
        if let Ok(t) = sd_notify::NotifyState::monotonic_usec_now() {
            reloading.push(t);
        }
        notify_systemd(&reloading);
        self.reload_config();
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }

    fn reload_config(&mut self) {
        let config = match Config::load(&self.config.path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "configuration not reloaded; keeping the running one");
                return;
            }
        };
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        if config.state_dir != self.config.state_dir
            || config.local_only() != self.config.local_only()
            || config.socket != self.config.socket
        {
            tracing::warn!(
                "a changed `state_dir`, `local_only` or `socket` takes effect when the agent restarts"
            );
        }
        if config.desktop_notifications != self.config.desktop_notifications {
            if config.desktop_notifications {
                self.config.desktop_notifications = true;
                self.start_notifier();
            } else {
                self.notifier = None;
            }
        }
        if let Some(hook) = &self.log_level {
            hook(&config.log_level);
        }
        self.db.set_outbox_limit(config.outbox_limit);
        let host = config.hostname.clone().unwrap_or_else(system_hostname);
        let host_changed = host != self.host;
        self.host = host;
        self.db.set_host(&self.host);
        match scope_of(&config, &self.config.state_dir) {
            Ok(scope) => self.scope = scope,
            Err(e) => tracing::error!(error = %e, "invalid scope; keeping the running one"),
        }
        if let Some((tx, _)) = &self.uplink {
            let _ = tx.send(ToUplink::Reload(Box::new(config.clone())));
        }
        let uses_local = self.bundle.as_ref().is_some_and(|b| b.version.is_none());
        let server = if config.local_only() == self.config.local_only() {
            config.server.clone()
        } else {
            self.config.server.clone()
        };
        self.config = Config {
            state_dir: self.config.state_dir.clone(),
            socket: self.config.socket.clone(),
            server,
            ..config
        };
        self.start_watcher();
        if uses_local || (self.bundle.is_none() && self.config.policy.is_some()) {
            match bundle::load_local(&self.config) {
                Ok(b) => {
                    self.new_bundle(b);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy and ledger not reloaded; keeping the running ones")
                }
            }
        }
        if host_changed {
            self.apply_bundle("new host name");
        }
        tracing::info!("configuration reloaded");
    }

    fn shutdown(&mut self) {
        tracing::info!("stopping");
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        // No more warnings served, no more watching: the loop is done with both.
        self.socket = None;
        self.change_source = None;
        if let Some((tx, done)) = self.uplink.take() {
            let _ = tx.send(ToUplink::Flush(Instant::now() + FLUSH_TIMEOUT));
            if done
                .recv_timeout(FLUSH_TIMEOUT + Duration::from_secs(1))
                .is_err()
            {
                tracing::warn!(
                    "the collector did not answer in time; the outbox is kept for the next start"
                );
            }
        }
    }
}

/// Tells systemd about the agent's state when it runs under a `Type=notify` unit (a no-op
/// without `NOTIFY_SOCKET`).
fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The developer log: one line per violation opened (what, why, how to fix: the same texts as
/// `scan`), one per violation resolved.
fn log_change(change: &Change) {
    match change {
        Change::Opened { path, violation: v } => {
            let line = crate::report::escape_controls(&format!(
                "{}: {}[{}] {}; rule: {}; fix: {}",
                path.display(),
                v.severity,
                v.kind,
                v.message,
                v.rule,
                v.fix
            ));
            tracing::warn!(target: "infoledger::violation", "violation opened: {line}");
        }
        Change::Resolved { path, kind } => {
            let line = crate::report::escape_controls(&path.display().to_string());
            tracing::info!(target: "infoledger::violation", "violation resolved: {line} [{kind}]");
        }
    }
}
