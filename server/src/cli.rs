//! The command line of `infoledger-server`: `serve`, `validate`, `enroll-token create` and
//! `backup`, exit codes, and error printing.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::api::{self, ApiConfig, AppState};
use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::keyfile::{self, KeyFileError, KeyOrigin};
use crate::store::backup::{backup, BackupError};
use crate::store::Store;
use crate::tls;

/// Exit code: success (for `serve`: a clean shutdown).
pub const EXIT_OK: u8 = 0;
/// Exit code: the server or a command failed at run time (database, network).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage, or an invalid configuration or server key file.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "infoledger-server",
    version,
    about = "The infoledger collector: enrolls agents and stores their signed events and violations.",
    long_about = None,
    after_help = "Exit status: 0 success, 1 run-time failure (database, network), 2 usage error or invalid configuration.\n\nExamples:\n  infoledger-server validate --config /etc/infoledger/server.toml\n  infoledger-server serve --config /etc/infoledger/server.toml\n  infoledger-server enroll-token create --uses 500 --expires-in 7d\n  infoledger-server backup --config /etc/infoledger/server.toml --to /var/backups/collector.db"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more (repeat for more detail); the INFOLEDGER_LOG variable takes tracing filter syntax.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector until SIGTERM or Ctrl-C; in-flight requests are finished first.
    #[command(
        after_help = "Prints `listening on ADDR` on stderr once the socket is bound (with `listen = \"127.0.0.1:0\"` ADDR shows the port picked). Serves HTTPS when `tls_cert_file` and `tls_key_file` are set. Creates the server key file (mode 0600) when it is absent and refuses one that group or others can read.\n\nOn SIGTERM or Ctrl-C the collector stops accepting connections, lets requests in flight finish (at most 30 s), stores every batch already queued, and exits 0; a second signal stops it at once."
    )]
    Serve(ConfigArgs),
    /// Check the configuration (and the server key file, if it exists); a problem in the file is
    /// printed as file:line:col.
    Validate(ConfigArgs),
    /// Manage enrollment tokens.
    #[command(subcommand)]
    EnrollToken(EnrollTokenCommand),
    /// Write a consistent copy of the database, also while the collector runs.
    #[command(
        after_help = "The copy is the database as it was when the copy began (SQLite's online backup, one read transaction; the collector keeps writing meanwhile). It is written beside PATH under a temporary name, checked, fsynced and then put in place; an existing PATH is never overwritten. Restore by stopping the collector and putting the copy in place of the database (remove its -wal and -shm files)."
    )]
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
struct BackupArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The file to create; refused if it exists.
    #[arg(long, value_name = "PATH")]
    to: PathBuf,
}

#[derive(Debug, Subcommand)]
enum EnrollTokenCommand {
    /// Issue an enrollment token and print it once on stdout; only its hash is stored.
    Create(CreateTokenArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct CreateTokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// How many agents may enroll with the token (use a large number for mass deployment).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    uses: u32,
    /// How long the token stays valid, e.g. 30m, 12h, 7d, 2w [default: no expiry]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expires_in: Option<chrono::TimeDelta>,
}

/// Runs the CLI and turns the outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    // A daemon reports its life cycle at INFO; one-shot commands stay quiet unless asked.
    let base = if matches!(cli.command, Command::Serve(_)) {
        1
    } else {
        0
    };
    init_logging(cli.verbose.saturating_add(base));
    let outcome = match cli.command {
        Command::Serve(args) => run_serve(&args.config),
        Command::Validate(args) => run_validate(&args.config),
        Command::EnrollToken(EnrollTokenCommand::Create(args)) => run_create_token(&args),
        Command::Backup(args) => run_backup(&args),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            let operator_error = e.chain().any(|c| {
                c.is::<ConfigError>()
                    || c.is::<KeyFileError>()
                    || matches!(c.downcast_ref(), Some(BackupError::TargetExists(_)))
            });
            ExitCode::from(if operator_error {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            })
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFOLEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn run_validate(path: &Path) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    config.check_folders()?;
    let key = match keyfile::load(&config.server_key_file)? {
        Some(_) => "present",
        None => "absent, `serve` will create it",
    };
    let scheme = match tls::server_config(&config)? {
        Some(_) => "https",
        None => "http",
    };
    println!(
        "ok: {} (listen {scheme}://{}, database {}, server key {} {key})",
        path.display(),
        config.listen,
        config.database.display(),
        config.server_key_file.display(),
    );
    Ok(EXIT_OK)
}

fn run_create_token(args: &CreateTokenArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let store = Store::open(&config.database)?;
    let expires = args.expires_in.map(|d| chrono::Utc::now() + d);
    let token = store
        .create_enroll_token(Some(args.uses), expires)
        .context("cannot create the enrollment token")?;
    println!("{token}");
    eprintln!(
        "note: the token is shown only this once; good for {} enrollment{}{}",
        args.uses,
        if args.uses == 1 { "" } else { "s" },
        match expires {
            Some(at) => format!(
                " until {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => ", without expiry".to_owned(),
        }
    );
    Ok(EXIT_OK)
}

fn run_backup(args: &BackupArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let summary = backup(&config.database, &args.to)
        .with_context(|| format!("backup of {} failed", config.database.display()))?;
    println!(
        "backup written to {} ({} bytes, schema version {}, {} violations, {} events)",
        args.to.display(),
        summary.bytes,
        summary.schema_version,
        summary.violations,
        summary.events
    );
    Ok(EXIT_OK)
}

/// How long requests in flight may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

fn run_serve(path: &Path) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    config.check_folders()?;
    let tls = tls::server_config(&config)?;
    let (key, origin) = keyfile::load_or_create(&config.server_key_file)?;
    if origin == KeyOrigin::Created {
        tracing::info!(path = %config.server_key_file.display(), "created a new server key");
    }
    let store = Arc::new(Store::open(&config.database)?);
    tracing::info!(
        database = %config.database.display(),
        schema = store.schema_version(),
        "database ready"
    );
    let api_config = ApiConfig {
        max_body_bytes: config.limits.body_bytes,
        ..ApiConfig::default()
    };
    let app = api::router(AppState::new(Arc::clone(&store), key, api_config));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        // Handlers are installed before the address is announced, so a signal sent as soon as
        // the server is seen listening already means "shut down gracefully".
        let shutdown = ShutdownSignals::install().context("cannot install signal handlers")?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener
            .set_nonblocking(true)
            .context("cannot set up the listening socket")?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let handle = axum_server::Handle::new();
        tokio::spawn(shutdown.run(handle.clone()));
        let app = app.into_make_service();
        eprintln!("listening on {addr}");
        tracing::info!(%addr, tls = tls.is_some(), "collector started");
        match tls {
            Some(tls) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
                axum_server::from_tcp_rustls(listener, tls)
                    .handle(handle)
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)
                    .handle(handle)
                    .serve(app)
                    .await
            }
        }
        .context("server failed")
    });
    // Requests have been answered (or cut off after the grace period); the writer stores what is
    // still queued before the process ends, so no batch that was accepted is lost half-way.
    store.close_ingest();
    drop(runtime);
    served?;
    tracing::info!("collector stopped");
    Ok(EXIT_OK)
}

/// SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C), registered up front.
struct ShutdownSignals {
    term: Signal,
    interrupt: Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    /// The first signal starts a graceful shutdown: no new connections, requests in flight
    /// finish within [`SHUTDOWN_GRACE`]. A second one stops at once.
    async fn run(mut self, handle: axum_server::Handle) {
        let name = self.next().await;
        tracing::info!(signal = name, "shutting down: finishing requests in flight");
        handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        let name = self.next().await;
        tracing::warn!(
            signal = name,
            "second signal: stopping without waiting for requests"
        );
        handle.shutdown();
    }
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `2w` (one number, one unit).
fn parse_duration(text: &str) -> Result<chrono::TimeDelta, String> {
    let usage = || {
        format!("invalid duration `{text}`: expected a number and a unit s, m, h, d or w (e.g. 12h, 7d)")
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| usage())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(usage()),
    };
    // Ten years is far beyond any sensible token life and keeps the arithmetic in range.
    const MAX_SECONDS: i64 = 10 * 366 * 86_400;
    match n.checked_mul(seconds_per_unit) {
        Some(s) if (1..=MAX_SECONDS).contains(&s) => Ok(chrono::TimeDelta::seconds(s)),
        _ => Err(format!(
            "invalid duration `{text}`: it must be between 1s and 10 years"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_one_unit() {
        let table: &[(&str, Option<i64>)] = &[
            ("90s", Some(90)),
            ("30m", Some(1800)),
            ("12h", Some(43_200)),
            ("7d", Some(604_800)),
            ("2w", Some(1_209_600)),
            ("0d", None),
            ("7", None),
            ("d", None),
            ("7 d", None),
            ("1d12h", None),
            ("-1d", None),
            ("99999999999999999999d", None),
            ("20000d", None),
        ];
        for (text, want) in table {
            let got = parse_duration(text).ok().map(|d| d.num_seconds());
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
