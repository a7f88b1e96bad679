//! The command line of `infoledger-server`: `serve`, `validate`, `enroll-token create`,
//! `token create|list|revoke`, `audit verify`, `policy|ledger import|export`, `bundle show` and
//! `backup`, exit codes, and error printing.

mod bundle;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::api::{self, ApiConfig, AppState};
use crate::config::{parse_duration, Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::keyfile::{self, KeyFileError, KeyOrigin};
use crate::store::backup::{backup, BackupError};
use crate::store::bundle::Document;
use crate::store::{NewApiToken, Role, Store, StoreError};
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
    /// Manage API tokens for people and scripts (roles admin, manager, viewer).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write the man pages and shell completions (bash, zsh, fish) into a folder; used when
    /// building packages.
    #[command(hide = true)]
    GenerateAssets {
        /// Where to write them (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Import or export the policy that agents receive in the bundle.
    #[command(
        subcommand,
        after_help = "The first import must be a policy: it makes bundle version 1 with an empty ledger. A policy that would make the current ledger invalid is refused with the ledger's problems.\n\nExamples:\n  infoledger-server policy import /etc/infoledger/policy.toml\n  infoledger-server policy export --version 3 > policy-v3.toml"
    )]
    Policy(bundle::DocumentCommand),
    /// Import or export the ledger (TOML, or CSV by the .csv extension).
    #[command(
        subcommand,
        after_help = "A ledger is validated against the current policy, exactly as agents validate it.\n\nExamples:\n  infoledger-server ledger import ledger.csv\n  infoledger-server ledger export > ledger.toml"
    )]
    Ledger(bundle::DocumentCommand),
    /// Show the bundle's versions.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Write a consistent copy of the database, also while the collector runs.
    #[command(
        after_help = "The copy is the database as it was when the copy began (SQLite's online backup, one read transaction; the collector keeps writing meanwhile). It is written beside PATH under a temporary name, checked, fsynced and then put in place; an existing PATH is never overwritten. Restore by stopping the collector and putting the copy in place of the database (remove its -wal and -shm files)."
    )]
    Backup(BackupArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue an API token and print it once on stdout; only its hash is stored.
    #[command(
        after_help = "Roles: admin (everything), manager (read and act on the violations of its --department(s) only), viewer (read only; every department unless --department is given).\n\nExamples:\n  infoledger-server token create --name alice --role manager --department Finance\n  infoledger-server token create --name grafana --role viewer --expires-in 52w"
    )]
    Create(CreateApiTokenArgs),
    /// List API tokens (never their secrets).
    List(ConfigArgs),
    /// Revoke an API token by its id (`tok-…`, see `token list`); it stops working at once.
    Revoke(RevokeApiTokenArgs),
}

#[derive(Debug, Args)]
struct CreateApiTokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Who will use the token; recorded as the actor of every decision taken with it.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// admin, manager or viewer.
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    role: Role,
    /// A department the token is limited to (repeat for several); required for managers.
    #[arg(long = "department", value_name = "DEPARTMENT")]
    departments: Vec<String>,
    /// How long the token stays valid, e.g. 12h, 30d, 52w [default: no expiry]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expires_in: Option<chrono::TimeDelta>,
}

#[derive(Debug, Args)]
struct RevokeApiTokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The token's id (`tok-…`).
    id: String,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of the audit trail; exit 1 if any entry was edited, deleted or cut off.
    #[command(
        after_help = "Prints the chain's head (last entry id and hash). Keep that line somewhere the database's administrators cannot write (a ticket, a log server) and pass it back with --expect-head: that also detects a trail that was cut back or rewritten from scratch."
    )]
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
struct AuditVerifyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// A head printed by an earlier `audit verify` (ID:HASH): the chain must still contain it.
    #[arg(long, value_name = "ID:HASH")]
    expect_head: Option<String>,
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
        Command::Token(TokenCommand::Create(args)) => run_create_api_token(&args),
        Command::Token(TokenCommand::List(args)) => run_list_api_tokens(&args.config),
        Command::Token(TokenCommand::Revoke(args)) => run_revoke_api_token(&args),
        Command::Audit(AuditCommand::Verify(args)) => run_audit_verify(&args),
        Command::GenerateAssets { out } => generate_assets(&out),
        Command::Policy(command) => bundle::run_document(Document::Policy, &command),
        Command::Ledger(command) => bundle::run_document(Document::Ledger, &command),
        Command::Bundle(bundle::BundleCommand::Show(args)) => bundle::run_bundle_show(&args),
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
    if !bundle::validate_config_files(&config)? {
        return Ok(EXIT_USAGE);
    }
    if let Some(webhook) = &config.webhook {
        crate::webhook::NotifierSettings::from_config(webhook).map_err(|e| {
            ConfigError::ReferencedFile(format!("{}: [webhook]: {e}", path.display()))
        })?;
    }
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

/// How often `serve` reopens exceptions whose date has passed.
const EXCEPTION_EXPIRY_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// The actor recorded for decisions taken on the command line.
const CLI_ACTOR: &str = "cli";

fn run_create_api_token(args: &CreateApiTokenArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let store = Store::open(&config.database)?;
    let now = chrono::Utc::now();
    let new = NewApiToken {
        name: &args.name,
        role: args.role,
        departments: &args.departments,
        expires_at: args.expires_in.map(|d| now + d),
    };
    let issued = match store.create_api_token(&new, CLI_ACTOR, now) {
        Ok(issued) => issued,
        Err(e @ StoreError::InvalidInput { .. }) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
        Err(e) => return Err(e).context("cannot create the API token"),
    };
    println!("{}", issued.token);
    eprintln!(
        "note: token {} ({} {}) is shown only this once; send it as `Authorization: Bearer <token>`",
        issued.id,
        args.role,
        args.name.trim()
    );
    Ok(EXIT_OK)
}

fn run_list_api_tokens(path: &Path) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    let store = Store::open(&config.database)?;
    let now = chrono::Utc::now();
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    println!(
        "{:<20}  {:<8}  {:<20}  {:<24}  {:<20}  STATE",
        "ID", "ROLE", "NAME", "DEPARTMENTS", "CREATED"
    );
    for token in store.api_tokens()? {
        let state = match (token.revoked_at, token.expires_at) {
            (Some(at), _) => format!("revoked {}", time(at)),
            (None, Some(at)) if at <= now => format!("expired {}", time(at)),
            (None, Some(at)) => format!("valid until {}", time(at)),
            (None, None) => "valid".to_owned(),
        };
        let departments = if token.departments.is_empty() {
            "(all)".to_owned()
        } else {
            token.departments.join(",")
        };
        println!(
            "{:<20}  {:<8}  {:<20}  {:<24}  {:<20}  {state}",
            token.id,
            token.role,
            token.name,
            departments,
            time(token.created_at)
        );
    }
    Ok(EXIT_OK)
}

fn run_revoke_api_token(args: &RevokeApiTokenArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let store = Store::open(&config.database)?;
    match store.revoke_api_token(&args.id, CLI_ACTOR, chrono::Utc::now()) {
        Ok(()) => {
            eprintln!("revoked {}", args.id);
            Ok(EXIT_OK)
        }
        Err(e @ StoreError::TokenNotFound(_)) => {
            eprintln!("error: {e} (see `infoledger-server token list`)");
            Ok(EXIT_FAILURE)
        }
        Err(e) => Err(e).context("cannot revoke the token"),
    }
}

fn run_audit_verify(args: &AuditVerifyArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let store = Store::open(&config.database)?;
    let expected = args
        .expect_head
        .as_deref()
        .map(|text| {
            text.split_once(':')
                .and_then(|(id, hash)| Some((id.parse::<u64>().ok()?, hash.to_owned())))
                .ok_or_else(|| {
                    format!("--expect-head `{text}`: expected ID:HASH as printed by `audit verify`")
                })
        })
        .transpose();
    let expected = match expected {
        Ok(e) => e,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_USAGE);
        }
    };
    let verification = store.verify_audit()?;
    if let Some(problem) = &verification.problem {
        println!(
            "audit trail BROKEN at entry {}: {} ({} entries verified before it)",
            problem.entry, problem.reason, verification.entries
        );
        return Ok(EXIT_FAILURE);
    }
    let head = match verification.entries {
        0 => None,
        n => store.audit_entries(n - 1, 1)?.into_iter().next(),
    };
    if let Some((id, hash)) = expected {
        let held = store
            .audit_entries(id.saturating_sub(1), 1)?
            .into_iter()
            .next()
            .filter(|entry| entry.id == id);
        if held.as_ref().map(|e| e.hash.as_str()) != Some(hash.as_str()) {
            println!(
                "audit trail BROKEN: it no longer contains the expected head {id}:{hash} (the trail was cut back or rewritten)"
            );
            return Ok(EXIT_FAILURE);
        }
    }
    match head {
        Some(entry) => println!(
            "audit trail intact: {} entries; head {}:{}",
            verification.entries, entry.id, entry.hash
        ),
        None => println!("audit trail intact: no entries yet"),
    }
    Ok(EXIT_OK)
}

/// Man pages (one per subcommand, as `infoledger-server-token.1` etc.) and completions.
fn generate_assets(out: &Path) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let command = Cli::command();
    clap_mangen::generate_to(command.clone(), &man)
        .with_context(|| format!("cannot write man pages into {}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(
            shell,
            &mut command.clone(),
            "infoledger-server",
            &completions,
        )
        .with_context(|| format!("cannot write {shell} completions"))?;
    }
    println!(
        "wrote man pages to {} and completions to {}",
        man.display(),
        completions.display()
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

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
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
    if let Some(code) = bundle::import_config_files(&config, &store)? {
        return Ok(code);
    }
    let background = bundle::Background::prepare(&config, &store)?;
    let api_config = ApiConfig {
        max_body_bytes: config.limits.body_bytes,
        ..ApiConfig::default()
    };
    let state = AppState::new(Arc::clone(&store), key, api_config)
        .with_slas(config.slas.clone())
        .with_agent_stale_after(config.agents.stale_after)
        .with_dashboard(crate::dashboard::DashboardSettings {
            tls: tls.is_some(),
            ..config.dashboard.clone()
        });
    let app = api::router(state);
    // Runs until `serve` returns, after the last request.
    let _expiry = api::manager::ExceptionExpiry::spawn(Arc::clone(&store), EXCEPTION_EXPIRY_PERIOD)
        .context("cannot start the exception expiry")?;

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
        // Under a Type=notify unit, tell systemd the collector is ready; elsewhere a no-op.
        if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
            tracing::warn!(error = %e, "cannot notify systemd of readiness");
        }
        tracing::info!(%addr, tls = tls.is_some(), "collector started");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = background.spawn(Arc::clone(&store), &stopped);
        let served = match tls {
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
        .context("server failed");
        // Background tasks stop after the last request: a rules pass in progress completes, a
        // webhook attempt in flight is abandoned and sent again after the restart.
        let _ = stop.send(true);
        for task in tasks {
            let _ = task.await;
        }
        served
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
