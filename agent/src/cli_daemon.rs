//! The daemon's commands: `run` (foreground or `--daemon`), `validate --config`, `status` and
//! `warnings`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use infoledger_policies::wire::bundle::SignedBundle;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

use crate::cli::{print_config_error, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::daemon::bundle::load_local;
use crate::daemon::clock::Clock;
use crate::daemon::config::{Config, ConfigError, TokenSource, DEFAULT_SOCKET, DEFAULT_STATE_DIR};
use crate::daemon::identity::{read_optional, Identity, BUNDLE_FILE};
use crate::daemon::socket::{self, QueryError};
use crate::daemon::state::StateDb;
use crate::daemon::watching::FsWatcher;
use crate::daemon::Daemon;
use crate::warnings::{Audience, WarningsArgs};

/// `run`'s options.
#[derive(Debug)]
pub(crate) struct RunOptions {
    pub(crate) config: PathBuf,
    pub(crate) daemon: bool,
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) user: Option<String>,
    pub(crate) group: Option<String>,
}

/// The filter for a `log_level`: that level for infoledger's own targets, warnings for the
/// libraries (whose debug output would drown the agent's).
fn filter_for(level: &str) -> EnvFilter {
    EnvFilter::new(format!("warn,infoledger={level}"))
}

/// `run`: returns the exit status.
pub(crate) fn run(opts: &RunOptions, verbose: u8) -> u8 {
    let config = match Config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            print_config_error(&e);
            return EXIT_USAGE;
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    // Everything the agent creates (state, identity, cache, logs) is private to it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if opts.daemon {
        if let Err(e) = detach(opts, &config) {
            eprintln!("error: {e:#}");
            return EXIT_FAILURE;
        }
    }
    // INFOLEDGER_LOG and -v win over the configuration, also after a reload.
    let env_filter = EnvFilter::try_from_env("INFOLEDGER_LOG").ok();
    let fixed = env_filter.is_some() || verbose > 0;
    let filter = env_filter.unwrap_or_else(|| match verbose {
        0 => filter_for(&config.log_level),
        1 => filter_for("debug"),
        _ => filter_for("trace"),
    });
    let (layer, handle) = reload::Layer::new(filter);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colours only for a person at a terminal: not in the journal or a log file.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init();
    let clock = Clock::from_env();
    let mut daemon = match Daemon::new(config, clock) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    daemon.set_change_source(Box::new(FsWatcher::new()));
    if !fixed {
        daemon.set_log_level_hook(Box::new(move |level| {
            if let Err(e) = handle.reload(filter_for(level)) {
                tracing::warn!(error = %e, "cannot change the log level");
            }
        }));
    }
    match daemon.run() {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("stopped: {e}");
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}

/// Detaches with `daemonize`: working folder `/`, the pid file, logs to a file, and the user
/// and group switch.
fn detach(opts: &RunOptions, config: &Config) -> anyhow::Result<()> {
    crate::daemon::identity::prepare_state_dir(&config.state_dir)?;
    let log_path = opts
        .log_file
        .clone()
        .unwrap_or_else(|| config.state_dir.join("agent.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the log file {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("cannot open the log file {}", log_path.display()))?;
    let mut d = daemonize::Daemonize::new()
        .working_directory("/")
        .umask(0o077)
        .stdout(log)
        .stderr(log_err);
    if let Some(p) = &opts.pid_file {
        d = d.pid_file(p).chown_pid_file(true);
    }
    if let Some(u) = &opts.user {
        d = d.user(u.as_str());
    }
    if let Some(g) = &opts.group {
        d = d.group(g.as_str());
    }
    d.start().context("cannot detach")?;
    Ok(())
}

/// `validate --config`: the configuration, its token file, CA file and local bundle.
pub(crate) fn validate_config(path: &Path) -> anyhow::Result<u8> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            print_config_error(&e);
            return Ok(EXIT_USAGE);
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    let mut problems = 0;
    for root in &config.watch {
        if !root.is_dir() {
            eprintln!(
                "warning: watch root {} is not a folder here (yet); the agent looks for it again at every rescan",
                root.display()
            );
        }
    }
    let state_parent = config.state_dir.parent().unwrap_or(Path::new("/"));
    if !config.state_dir.is_dir() && !state_parent.is_dir() {
        eprintln!(
            "error: state_dir {}: its parent folder does not exist",
            config.state_dir.display()
        );
        problems += 1;
    }
    let mut mode = String::from("local only");
    if let Some(server) = &config.server {
        mode = format!("collector {}", server.url);
        if let Some(TokenSource::File(_)) = &server.token {
            if let Err(e) = config.enroll_token() {
                // Only needed for the first start: an enrolled agent can do without.
                let enrolled = Identity::load(&config.state_dir).ok().flatten().is_some();
                if enrolled {
                    eprintln!("warning: {e} (the agent is enrolled already)");
                } else {
                    eprintln!("error: {e}");
                    problems += 1;
                }
            }
        }
        if server.token.is_none() && Identity::load(&config.state_dir).ok().flatten().is_none() {
            eprintln!(
                "warning: no enroll_token or enroll_token_file: the agent cannot enroll on its first start"
            );
        }
        if let Err(e) = crate::daemon::client::Client::new(server) {
            eprintln!("error: {e}");
            problems += 1;
        }
    }
    if config.local_only() || config.policy.is_some() {
        match load_local(&config) {
            Ok(b) => mode.push_str(&format!(", {}", b.origin)),
            Err(crate::daemon::bundle::BundleRefusal::Local(
                crate::bundle::BundleError::Invalid(e),
            )) => {
                eprintln!("{e}");
                problems += e.errors().count();
            }
            Err(e) => {
                eprintln!("error: {e}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        eprintln!(
            "error: {problems} problem{} found",
            if problems == 1 { "" } else { "s" }
        );
        return Ok(EXIT_USAGE);
    }
    println!(
        "ok: {} ({mode}; {} watch root{}, state in {})",
        config.path.display(),
        config.watch.len(),
        if config.watch.len() == 1 { "" } else { "s" },
        config.state_dir.display()
    );
    Ok(EXIT_OK)
}

/// `status`: what the agent's state folder says.
pub(crate) fn status(path: &Path) -> anyhow::Result<u8> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            print_config_error(&e);
            return Ok(EXIT_USAGE);
        }
    };
    let dir = &config.state_dir;
    let identity = Identity::load(dir)?;
    let agent = match (&identity, config.local_only()) {
        (_, true) => "local only (no collector)".to_owned(),
        (Some(id), false) => format!("{} (enrolled with {})", id.agent_id, id.server),
        (None, false) => "not enrolled yet".to_owned(),
    };
    let bundle = match read_optional(&dir.join(BUNDLE_FILE))? {
        Some(bytes) => match serde_json::from_slice::<SignedBundle>(&bytes) {
            Ok(b) => format!("collector bundle {} (cached)", b.version),
            Err(_) => "cached bundle unreadable".to_owned(),
        },
        None if config.local_only() || config.policy.is_some() => {
            "local policy and ledger".to_owned()
        }
        None => "none yet".to_owned(),
    };
    println!("agent:      {agent}");
    println!("bundle:     {bundle}");
    if !dir.join(crate::daemon::state::STATE_FILE).exists() {
        println!("state:      none yet (the agent has not run)");
        return Ok(EXIT_OK);
    }
    let db = StateDb::open_read_only(dir)?;
    let open = db.open_violation_count()?;
    println!("files:      {}", db.file_count()?);
    println!("violations: {open} open");
    if config.local_only() {
        println!("outbox:     not used (local only)");
    } else {
        println!(
            "outbox:     {} events waiting, {} violation changes deferred",
            db.outbox_depth()?,
            db.deferred()?
        );
    }
    Ok(EXIT_OK)
}

/// `warnings`: asks the running agent through its socket, else reads the state database where
/// this user can.
pub(crate) fn warnings(args: &WarningsArgs, verbose: u8) -> anyhow::Result<u8> {
    let audience = crate::warnings::invoking_audience(args)?;
    // A plain user usually cannot read the agent's configuration (it may hold a token): the
    // packaged defaults say where to ask then.
    let (socket_path, state_dir) = match Config::load(&args.config) {
        Ok(c) => (c.socket, c.state_dir),
        Err(ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            if verbose > 0 {
                eprintln!(
                    "note: cannot read {} ({source}); asking the agent at the default socket {DEFAULT_SOCKET}",
                    args.config.display()
                );
            }
            (
                Some(PathBuf::from(DEFAULT_SOCKET)),
                PathBuf::from(DEFAULT_STATE_DIR),
            )
        }
        Err(e) => {
            print_config_error(&e);
            return Ok(EXIT_USAGE);
        }
    };
    let asked = match audience {
        Audience::Everyone => None,
        Audience::User(uid) => Some(uid),
    };
    let mut not_running = None;
    if let Some(path) = &socket_path {
        match socket::query(path, asked) {
            Ok(list) => {
                if verbose > 0 {
                    eprintln!("note: answered by the running agent at {}", path.display());
                }
                return crate::warnings::print(args, audience, &list);
            }
            Err(e @ QueryError::NotRunning { .. }) => not_running = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    let db = match StateDb::open_read_only(&state_dir) {
        Ok(db) if db.file_count().is_ok() => db,
        Ok(_) | Err(_) => {
            let why = not_running.map_or_else(
                || "the agent serves no socket (`socket = \"\"`)".to_owned(),
                |e| e.to_string(),
            );
            anyhow::bail!(
                "cannot reach the agent's state: {why}, and {} is not readable by you (the agent may not be running; ask an administrator)",
                state_dir.join(crate::daemon::state::STATE_FILE).display()
            );
        }
    };
    if verbose > 0 {
        eprintln!(
            "note: read from the state database {} ({})",
            state_dir.join(crate::daemon::state::STATE_FILE).display(),
            not_running.map_or_else(|| "no socket configured".to_owned(), |e| e.to_string())
        );
    }
    crate::warnings::print(args, audience, &db)
}
