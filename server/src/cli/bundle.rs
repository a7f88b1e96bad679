//! `policy import|export`, `ledger import|export`, `bundle show`, the configuration's
//! `policy_file`/`ledger_file` imported at `serve` start, and the background tasks of `serve`
//! (server-side rules, webhook deliveries).

use super::{ConfigArgs, CLI_ACTOR, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::config::Config;
use crate::rules::{self, RuleSettings};
use crate::store::bundle::{BundleChange, Document, ImportError, Imported};
use crate::store::Store;
use crate::webhook::{self, Notifier, NotifierSettings};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use infoledger_policies::wire::bundle::SourceText;
use infoledger_policies::{Bundle, Diagnostic, Policy};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// The actor recorded for files imported from the configuration at `serve` start.
pub(super) const CONFIG_ACTOR: &str = "config";
/// The largest policy or ledger file read: the same cap as the agent's.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub(super) enum DocumentCommand {
    /// Validate a file exactly as agents do and, if it changes anything, make it the next bundle
    /// version; invalid files print every problem as FILE:LINE:COL and change nothing (exit 2).
    Import(ImportArgs),
    /// Print the current (or an earlier) version's text on stdout, exactly as imported.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The file: TOML, or for a ledger CSV when its name ends in `.csv`.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The bundle version to export (see `bundle show`) [default: the current one].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    version: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(super) enum BundleCommand {
    /// List the bundle's versions, newest first: when, who, what changed.
    Show(ConfigArgs),
}

pub(super) fn run_document(document: Document, command: &DocumentCommand) -> anyhow::Result<u8> {
    match command {
        DocumentCommand::Import(args) => run_import(document, args),
        DocumentCommand::Export(args) => run_export(document, args),
    }
}

fn run_import(document: Document, args: &ImportArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let text = match read_capped(&args.file) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_USAGE);
        }
    };
    let name = file_name(&args.file);
    let store = Store::open(&config.database)?;
    let now = chrono::Utc::now();
    let outcome = match document {
        Document::Policy => store.import_policy(&name, &text, CLI_ACTOR, now),
        Document::Ledger => store.import_ledger(&name, &text, CLI_ACTOR, now),
    };
    let paths = [(name.as_str(), args.file.as_path())];
    match outcome {
        Ok(Imported::Changed { version, warnings }) => {
            print_diagnostics(&warnings, &paths);
            println!(
                "{document} imported from {}: bundle version {version}",
                args.file.display()
            );
            Ok(EXIT_OK)
        }
        Ok(Imported::Unchanged { version }) => {
            println!(
                "unchanged: {} is already the {document} of bundle version {version}",
                args.file.display()
            );
            Ok(EXIT_OK)
        }
        Err(e) => refused(&e, &paths),
    }
}

/// Prints why an import was refused, as the agent prints an invalid bundle; exit 2 for
/// problems with the file, an error (exit 1) for the store.
fn refused(e: &ImportError, paths: &[(&str, &Path)]) -> anyhow::Result<u8> {
    match e {
        ImportError::Invalid {
            error,
            invalidates_ledger,
            ..
        } => {
            print_diagnostics(&error.diagnostics, paths);
            let count = error.errors().count();
            let problems = format!("{count} problem{}", if count == 1 { "" } else { "s" });
            match invalidates_ledger {
                Some(version) => eprintln!(
                    "error: the policy would make the current ledger (bundle version {version}) invalid: {problems} found in it; nothing was stored"
                ),
                None => eprintln!("error: {problems} found; nothing was stored"),
            }
            Ok(EXIT_USAGE)
        }
        ImportError::NoPolicy | ImportError::InvalidName { .. } | ImportError::TooLarge { .. } => {
            eprintln!("error: {e}; nothing was stored");
            Ok(EXIT_USAGE)
        }
        ImportError::Store(_) => Err(anyhow::anyhow!("{e}")).context("cannot store the import"),
    }
}

/// Prints diagnostics one per line, naming files by the path the operator gave where the
/// diagnostic is about that file (the store knows only the file name).
fn print_diagnostics(diagnostics: &[Diagnostic], paths: &[(&str, &Path)]) {
    for d in diagnostics {
        let mut d = d.clone();
        if let Some((_, path)) = paths.iter().find(|(name, _)| d.file == Path::new(name)) {
            d.file = path.to_path_buf();
        }
        eprintln!("{d}");
    }
}

fn run_export(document: Document, args: &ExportArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config.config)?;
    let store = Store::open(&config.database)?;
    let Some(bundle) = store.bundle(args.version)? else {
        match args.version {
            Some(v) => eprintln!("error: no bundle version {v} (see `infoledger-server bundle show`)"),
            None => eprintln!("error: no bundle yet: import a policy first (`infoledger-server policy import FILE`)"),
        }
        return Ok(EXIT_FAILURE);
    };
    let source = match document {
        Document::Policy => bundle.policy,
        Document::Ledger => bundle.ledger,
    };
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(source.text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(EXIT_OK)
}

pub(super) fn run_bundle_show(args: &ConfigArgs) -> anyhow::Result<u8> {
    let config = Config::load(&args.config)?;
    let store = Store::open(&config.database)?;
    let versions = store.bundle_versions(1000)?;
    if versions.is_empty() {
        println!("no bundle yet: import a policy with `infoledger-server policy import FILE`");
        return Ok(EXIT_OK);
    }
    println!(
        "{:<8}  {:<20}  {:<16}  {:<7}  {:<32}  LEDGER",
        "VERSION", "ISSUED", "ACTOR", "CHANGE", "POLICY"
    );
    for v in versions {
        let file =
            |s: &crate::store::bundle::SourceSummary| format!("{} ({})", s.name, &s.sha256[..12]);
        println!(
            "{:<8}  {:<20}  {:<16}  {:<7}  {:<32}  {}",
            v.version,
            v.issued_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            v.actor,
            v.change,
            file(&v.policy),
            file(&v.ledger),
        );
    }
    Ok(EXIT_OK)
}

/// The file's name as the bundle stores it (agents see it; `.csv` selects the CSV reader).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads a policy or ledger file as text, refusing anything over the agent's cap.
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let fail = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(&format_args!(
            "larger than {} MiB; this is not a policy or ledger",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(&format_args!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `validate`: checks `policy_file` and `ledger_file` as agents would (a ledger alone is checked
/// against the collector's policy when `serve` imports it). Returns `false` after printing the
/// problems.
pub(super) fn validate_config_files(config: &Config) -> anyhow::Result<bool> {
    let read = |path: &PathBuf| {
        read_capped(path).map_err(|message| {
            crate::config::ConfigError::ReferencedFile(format!(
                "{}: {message}",
                config.path.display()
            ))
        })
    };
    let outcome = match (&config.policy_file, &config.ledger_file) {
        (None, None) => return Ok(true),
        (Some(policy), Some(ledger)) => {
            Bundle::from_texts(&read(policy)?, policy, &read(ledger)?, ledger).map(|(_, w)| w)
        }
        (Some(policy), None) => Policy::from_toml(&read(policy)?, policy).map(|(_, w)| w),
        (None, Some(ledger)) => {
            read(ledger)?;
            eprintln!(
                "note: ledger_file {} is checked against the collector's policy when `serve` imports it",
                ledger.display()
            );
            Ok(Vec::new())
        }
    };
    match outcome {
        Ok(warnings) => {
            print_diagnostics(&warnings, &[]);
            Ok(true)
        }
        Err(e) => {
            print_diagnostics(&e.diagnostics, &[]);
            let count = e.errors().count();
            eprintln!(
                "error: {count} problem{} found in policy_file/ledger_file",
                if count == 1 { "" } else { "s" }
            );
            Ok(false)
        }
    }
}

/// `serve` start: imports `policy_file`/`ledger_file` when their text changed since they were
/// last imported from the configuration. A text the bundle already holds is not imported again,
/// and a change made since through the CLI or the API is kept until the file itself changes, so
/// a restart never reverts an administrator's import. Returns an exit status when the files are
/// refused (the server does not start).
pub(super) fn import_config_files(config: &Config, store: &Store) -> anyhow::Result<Option<u8>> {
    if config.policy_file.is_none() && config.ledger_file.is_none() {
        return Ok(None);
    }
    let versions = store.bundle_versions(u32::MAX)?;
    // The newest version that the configuration imported each file in.
    let last_from_config = |document: Document| {
        versions
            .iter()
            .find(|v| {
                v.actor == CONFIG_ACTOR && (v.change == "both" || v.change == document.as_str())
            })
            .map(|v| match document {
                Document::Policy => v.policy.sha256.clone(),
                Document::Ledger => v.ledger.sha256.clone(),
            })
    };
    let mut change = BundleChange::default();
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for (document, file) in [
        (Document::Policy, &config.policy_file),
        (Document::Ledger, &config.ledger_file),
    ] {
        let Some(path) = file else { continue };
        let text = match read_capped(path) {
            Ok(text) => text,
            Err(message) => {
                eprintln!(
                    "error: {}: {document}_file: {message}",
                    config.path.display()
                );
                return Ok(Some(EXIT_USAGE));
            }
        };
        let sha = crate::store::bundle::sha256_hex(&text);
        if last_from_config(document).as_deref() == Some(sha.as_str()) {
            tracing::debug!(path = %path.display(), "{document}_file unchanged since it was last imported");
            continue;
        }
        let name = file_name(path);
        paths.push((name.clone(), path.clone()));
        let source = Some(SourceText { name, text });
        match document {
            Document::Policy => change.policy = source,
            Document::Ledger => change.ledger = source,
        }
    }
    if change == BundleChange::default() {
        return Ok(None);
    }
    let paths: Vec<(&str, &Path)> = paths
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_path()))
        .collect();
    match store.import(&change, CONFIG_ACTOR, chrono::Utc::now()) {
        Ok(Imported::Changed { version, warnings }) => {
            print_diagnostics(&warnings, &paths);
            tracing::info!(
                version,
                "imported policy_file/ledger_file from the configuration"
            );
            Ok(None)
        }
        Ok(Imported::Unchanged { .. }) => Ok(None),
        Err(ImportError::NoPolicy) => {
            eprintln!(
                "error: {}: ledger_file needs a policy: set policy_file too, or import one with `infoledger-server policy import FILE`",
                config.path.display()
            );
            Ok(Some(EXIT_USAGE))
        }
        Err(e) => refused(&e, &paths).map(Some),
    }
}

/// The tasks `serve` runs beside the HTTP server.
#[derive(Debug)]
pub(super) struct Background {
    rules: RuleSettings,
    notifier: Option<Notifier>,
}

impl Background {
    /// Reads what the tasks need (the webhook secret file) before the server starts, so that a
    /// problem stops `serve` with exit 2 instead of surfacing later.
    pub(super) fn prepare(config: &Config, store: &Arc<Store>) -> anyhow::Result<Background> {
        let rules = RuleSettings {
            interval: config.rules.interval,
            slas: config.slas.clone(),
            drift_empty_after: config.rules.drift_empty_after,
        };
        if config.holds_secret() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&config.path).map_or(0, |m| m.permissions().mode());
            if mode & 0o077 != 0 {
                tracing::warn!(path = %config.path.display(), "the configuration holds the webhook secret and is readable by group or others; chmod 600 it or use `secret_file`");
            }
        }
        let notifier = match &config.webhook {
            Some(webhook) => {
                let settings = NotifierSettings::from_config(webhook).map_err(|e| {
                    crate::config::ConfigError::ReferencedFile(format!(
                        "{}: [webhook]: {e}",
                        config.path.display()
                    ))
                })?;
                // Reading the history once now sets the notifier's mark (on first use) before
                // the server accepts events, so nothing ingested from here on goes unannounced.
                store.enqueue_notifications(&settings.events, chrono::Utc::now())?;
                Some(Notifier::new(Arc::clone(store), settings)?)
            }
            None => {
                // Turning a webhook on later announces what happens from then on only.
                store.forget_notification_mark()?;
                None
            }
        };
        Ok(Background { rules, notifier })
    }

    /// Spawns the tasks on the current runtime; they stop when `stop` turns true.
    pub(super) fn spawn(
        self,
        store: Arc<Store>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(rules::run(store, self.rules, stop.clone()))];
        if let Some(notifier) = self.notifier {
            tasks.push(tokio::spawn(webhook::run(notifier, stop.clone())));
        }
        tasks
    }
}
