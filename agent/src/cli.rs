//! The command line: `scan`, `inspect`, `validate`, `run` (the daemon), `status`, `warnings`,
//! `hook pre-commit` and the hidden `generate-assets` (man pages, completions), exit codes, and
//! error printing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use infoledger_policies::Severity;

use crate::bundle::{BundleError, BundleSource, LoadedBundle};
use crate::daemon::config::{ConfigError, DEFAULT_CONFIG_PATH};
use crate::report::inspection::InspectedFile;
use crate::report::{self, Format};
use crate::scan::{self, ScanOptions};
use crate::staged::{self, StagedOptions};

/// Exit code: nothing at or above the `--fail-on` severity.
pub const EXIT_OK: u8 = 0;
/// Exit code: findings at or above the `--fail-on` severity.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad usage, a missing path, an invalid policy, ledger or config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `run` when the daemon could not start (state folder, database, signals).
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "infoledger-agent",
    version,
    about = "Finds labeled files where they do not belong: misplaced, unencrypted, expired, overexposed, unregistered or mislabeled.",
    long_about = None,
    after_help = "Exit status: scan: 0 no findings at or above --fail-on, 1 findings; hook pre-commit: 0 the commit may go ahead, 1 it is blocked; warnings: 0 listed; inspect: 0 every file inspected, 1 some file unreadable; validate: 0 valid; run: 0 stopped by SIGTERM, 1 could not start; all: 2 usage or configuration error.\n\nExamples:\n  infoledger-agent scan ~/projects\n  infoledger-agent scan --format json --fail-on high /srv/projects\n  infoledger-agent validate --policy /etc/infoledger/policy.toml --ledger ledger.csv\n  infoledger-agent validate --config /etc/infoledger/agent.toml\n  infoledger-agent run --config /etc/infoledger/agent.toml\n  infoledger-agent warnings\n  infoledger-agent hook pre-commit    (in .git/hooks/pre-commit)"
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
    /// Scan files and folders once and report findings.
    #[command(
        after_help = "Labels come from Microsoft Purview (MIP) metadata embedded in Office, PDF and e-mail files, from the extended attribute user.infoledger.label (and user.infoledger.asset naming an asset id), and from marking banners the policy lists, matched as whole words in the first 4 KiB of text files. A file's content is read only when it can change the result (see `infoledger-agent inspect` to see what a file carries).\n\nSymbolic links are never followed; unreadable entries are counted and listed, and the scan goes on."
    )]
    Scan(ScanArgs),
    /// Show what inspection reads in files: format, embedded labels with their provenance,
    /// encryption verdict, owner and mode.
    #[command(
        after_help = "Exit status: 0 every file was inspected, 1 some file could not be read, 2 usage error or missing path. A malformed file is inspected as far as possible and its problems are listed under `errors`."
    )]
    Inspect(InspectArgs),
    /// Check a policy and a ledger, or the daemon's configuration, and print every problem as
    /// file:line:col.
    #[command(
        after_help = "With --config, checks the daemon's configuration (and, with local_only or a bootstrap policy and ledger, those files too), warns about a token readable by others, and exits 2 on any error. Without it, checks --policy and --ledger (or the system or built-in files)."
    )]
    Validate(ValidateArgs),
    /// Run the agent: watch and rescan the configured folders, report violations to the
    /// collector (or only log them with local_only).
    #[command(
        after_help = "Runs in the foreground (what systemd expects) unless --daemon is given. On first start it enrolls with the collector using the configured token and keeps its identity in state_dir (mode 0700/0600). SIGTERM or SIGINT: a last bounded attempt to deliver queued events, then exit 0. SIGHUP: reload the configuration (watch roots, exclusions, log level, local policy and ledger; a changed server or state_dir needs a restart).\n\nEach violation that opens is logged as one line with what is wrong, the rule, and how to fix it."
    )]
    Run(RunArgs),
    /// Show the running agent's state: identity, bundle, tracked files, open violations, outbox.
    Status(StatusArgs),
    /// List this host's open violations on your files (everyone's for root), with how to fix
    /// each.
    #[command(
        after_help = "Asks the running agent through its socket (`socket` in the agent's configuration, default /run/infoledger-agent/agent.sock); the agent tells who you are from the connection itself, so you see the violations on files you own, and root sees everyone's (or one user's with --user). When no agent answers, the state database is read directly where you can read it (root, or the agent's own user). -v says which of the two answered.\n\nExit status: 0 the list was printed (whatever it holds), 2 usage error or no way to reach the agent's state.\n\nExamples:\n  infoledger-agent warnings\n  infoledger-agent warnings --format json\n  sudo infoledger-agent warnings --user alice"
    )]
    Warnings(crate::warnings::WarningsArgs),
    /// Git hooks: `hook pre-commit` fails a commit that stages labeled files where they do not
    /// belong.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Write the man pages and shell completions (bash, zsh, fish) into a folder; used when
    /// building packages.
    #[command(hide = true)]
    GenerateAssets {
        /// Where to write them (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum HookCommand {
    /// Check the staged versions of added and modified files (run by git before a commit).
    #[command(
        after_help = "Fails (exit 1) when a staged file would be misplaced in this repository (a labeled file outside its asset's or label's locations, or in a forbidden location), unregistered (labeled at or above rules.unregistered_from and no asset covers the repository), or belongs to an asset whose access deadline has passed. The index content counts, not the working tree; extended-attribute labels of the working file count too, since git does not record them.\n\nInstall as a plain git hook:\n  printf '#!/bin/sh\\nexec infoledger-agent hook pre-commit\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit\nor with the pre-commit framework (repo: infoledger, hook id: infoledger). Bypass once with `git commit --no-verify`.\n\nExit status: 0 nothing blocks the commit, 1 the commit is blocked, 2 usage or configuration error."
    )]
    PreCommit(StagedArgs),
}

#[derive(Debug, Args)]
struct StagedArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Leave out staged paths matching this glob (as `scan --exclude`). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Evaluate as if on this host [default: this machine's hostname]
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// The daemon's configuration file to check.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policy", "ledger"])]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Detach from the terminal and run in the background (for hosts without systemd).
    #[arg(long)]
    daemon: bool,
    /// With --daemon: write the process id here (locked while the agent runs).
    #[arg(long, value_name = "FILE", requires = "daemon")]
    pid_file: Option<PathBuf>,
    /// With --daemon: append logs to this file [default: state_dir/agent.log].
    #[arg(long, value_name = "FILE", requires = "daemon")]
    log_file: Option<PathBuf>,
    /// With --daemon: switch to this user after detaching (needs root).
    #[arg(long, value_name = "USER", requires = "daemon")]
    user: Option<String>,
    /// With --daemon: switch to this group after detaching (needs root).
    #[arg(long, value_name = "GROUP", requires = "daemon")]
    group: Option<String>,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InspectFormat {
    /// One block per file.
    Text,
    /// A JSON array, one object per file.
    Json,
}

#[derive(Debug, Args)]
struct InspectArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    format: InspectFormat,
    /// Files to inspect.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BundleArgs {
    /// Policy file (TOML) [default: /etc/infoledger/policy.toml, else the built-in example]
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// Ledger file (TOML, or CSV when it ends in .csv) [default: /etc/infoledger/ledger.toml or ledger.csv, else the built-in example]
    #[arg(long, value_name = "FILE")]
    pub(crate) ledger: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// Always exit 0 when the scan ran.
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Info => Some(Severity::Info),
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

#[derive(Debug, Args)]
struct ScanArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a finding has at least this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Info, value_name = "SEVERITY")]
    fail_on: FailOn,
    /// Leave out paths matching this glob; without a `/` it matches a file or folder name anywhere (e.g. --exclude .git). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Evaluate as if on this host (assets may restrict hosts) [default: this machine's hostname]
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Worker threads that inspect files [default: one per CPU]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
    /// Check the staged versions of added and modified files in the git repository holding
    /// REPO (default: the current folder) instead of PATHs, as `hook pre-commit` does: only
    /// findings that block a commit (misplaced, unregistered, expired) are reported.
    #[arg(long, value_name = "REPO", num_args = 0..=1, default_missing_value = ".", conflicts_with = "paths")]
    git_staged: Option<PathBuf>,
    /// Files or folders to scan.
    #[arg(required_unless_present = "git_staged", value_name = "PATH")]
    paths: Vec<PathBuf>,
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
    if let Command::Run(args) = cli.command {
        return ExitCode::from(crate::cli_daemon::run(&args.into(), cli.verbose));
    }
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Inspect(args) => run_inspect(&args),
        Command::Validate(args) => match &args.config {
            Some(config) => crate::cli_daemon::validate_config(config),
            None => run_validate(&args.bundle),
        },
        Command::Status(args) => crate::cli_daemon::status(&args.config),
        Command::Warnings(args) => crate::cli_daemon::warnings(&args, cli.verbose),
        Command::GenerateAssets { out } => generate_assets(&out),
        Command::Run(_) => Ok(EXIT_USAGE),
        Command::Hook(HookCommand::PreCommit(args)) => run_staged(
            &args.bundle,
            StagedOptions {
                repo: PathBuf::from("."),
                exclude: args.exclude,
                host: args.host.unwrap_or_else(hostname),
                now: chrono::Utc::now(),
            },
            args.format,
            Some(Severity::Info),
        ),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

impl From<RunArgs> for crate::cli_daemon::RunOptions {
    fn from(a: RunArgs) -> Self {
        crate::cli_daemon::RunOptions {
            config: a.config,
            daemon: a.daemon,
            pid_file: a.pid_file,
            log_file: a.log_file,
            user: a.user,
            group: a.group,
        }
    }
}

/// Man pages (one per subcommand, as `infoledger-agent-scan.1` etc.) and completions.
fn generate_assets(out: &std::path::Path) -> anyhow::Result<u8> {
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
            "infoledger-agent",
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

/// Prints a configuration error the way `validate` does.
pub(crate) fn print_config_error(e: &ConfigError) {
    match e {
        ConfigError::Invalid { .. } => eprintln!("{e}"),
        other => eprintln!("error: {other}"),
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
        .try_init();
}

/// Loads the bundle, printing notes and warnings; on invalid files prints every diagnostic.
pub(crate) fn load_bundle(
    args: &BundleArgs,
    consequence: &str,
) -> anyhow::Result<Option<LoadedBundle>> {
    let source = BundleSource {
        policy: args.policy.clone(),
        ledger: args.ledger.clone(),
    };
    match source.load() {
        Ok(loaded) => {
            for n in &loaded.notes {
                eprintln!("note: {n}");
            }
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok(Some(loaded))
        }
        Err(BundleError::Invalid(e)) => {
            eprintln!("{e}");
            let count = e.errors().count();
            eprintln!(
                "error: {count} problem{} found{consequence}",
                if count == 1 { "" } else { "s" }
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn run_validate(args: &BundleArgs) -> anyhow::Result<u8> {
    let Some(loaded) = load_bundle(args, "")? else {
        return Ok(EXIT_USAGE);
    };
    let b = &loaded.bundle;
    println!(
        "ok: {} ({} labels), {} ({} assets){}",
        b.policy.source().display(),
        b.policy.labels().len(),
        b.ledger.source().display(),
        b.ledger.assets().len(),
        match loaded.warnings.len() {
            0 => String::new(),
            1 => "; 1 warning".to_string(),
            n => format!("; {n} warnings"),
        }
    );
    Ok(EXIT_OK)
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

fn run_scan(args: ScanArgs) -> anyhow::Result<u8> {
    if let Some(repo) = args.git_staged {
        let opts = StagedOptions {
            repo,
            exclude: args.exclude,
            host: args.host.unwrap_or_else(hostname),
            now: chrono::Utc::now(),
        };
        return run_staged(&args.bundle, opts, args.format, args.fail_on.threshold());
    }
    let Some(loaded) = load_bundle(&args.bundle, "; nothing was scanned")? else {
        return Ok(EXIT_USAGE);
    };
    let opts = ScanOptions {
        roots: args.paths,
        exclude: args.exclude,
        host: args.host.unwrap_or_else(hostname),
        now: chrono::Utc::now(),
        threads: args.threads.map(usize::from),
    };
    let report = scan::scan(&loaded.bundle, &opts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    report::write(&report, args.format, &mut out).context("cannot write the report")?;
    out.flush().context("cannot write the report")?;
    let failing = args.fail_on.threshold().is_some_and(|t| {
        report
            .results
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.severity >= t)
    });
    Ok(if failing { EXIT_FINDINGS } else { EXIT_OK })
}

/// Checks staged files; exit 1 when a blocking finding reaches `fail_on`.
fn run_staged(
    bundle: &BundleArgs,
    opts: StagedOptions,
    format: Format,
    fail_on: Option<Severity>,
) -> anyhow::Result<u8> {
    let Some(loaded) = load_bundle(bundle, "; nothing was checked")? else {
        return Ok(EXIT_USAGE);
    };
    let top = staged::toplevel(&opts.repo)?;
    let report = staged::check(&loaded.bundle, &opts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    report::write(&report, format, &mut out).context("cannot write the report")?;
    let failing = fail_on.is_some_and(|t| {
        report
            .results
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.severity >= t)
    });
    if failing && format == Format::Text {
        write!(out, "\n{}", staged::blocked_advice(&report, &top))
            .context("cannot write the report")?;
    }
    out.flush().context("cannot write the report")?;
    Ok(if failing { EXIT_FINDINGS } else { EXIT_OK })
}

fn run_inspect(args: &InspectArgs) -> anyhow::Result<u8> {
    // Check every path before printing anything, so a typo does not leave half an output.
    let mut paths = Vec::new();
    for f in &args.files {
        let path =
            std::fs::canonicalize(f).with_context(|| format!("cannot inspect {}", f.display()))?;
        if path.is_dir() {
            anyhow::bail!(
                "cannot inspect {}: it is a folder; use `infoledger-agent scan` for folders",
                f.display()
            );
        }
        paths.push(path);
    }
    let Some(loaded) = load_bundle(&args.bundle, "")? else {
        return Ok(EXIT_USAGE);
    };
    let inspector = crate::facts::Inspector::new(&loaded.bundle);
    let mut names = crate::facts::NameCache::default();
    let mut all_read = true;
    let files: Vec<InspectedFile> = paths
        .into_iter()
        .map(|path| match inspector.inspect_fully(&path, &mut names) {
            Ok(g) => InspectedFile {
                path,
                facts: Some(g.facts),
                format: g.format,
                errors: g.errors,
                notes: g.notes,
            },
            Err(e) => {
                all_read = false;
                InspectedFile {
                    path,
                    facts: None,
                    format: None,
                    errors: vec![e.to_string()],
                    notes: Vec::new(),
                }
            }
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let policy = &loaded.bundle.policy;
    match args.format {
        InspectFormat::Text => report::write_escaped(&mut out, |o| {
            report::inspection::write_text(&files, policy, o)
        }),
        InspectFormat::Json => report::inspection::write_json(&files, policy, &mut out),
    }
    .context("cannot write the report")?;
    out.flush().context("cannot write the report")?;
    Ok(if all_read { EXIT_OK } else { EXIT_FINDINGS })
}
