//! The collector's configuration file (TOML): the raw form as written, checked into [`Config`].
//!
//! Every error names the file and, when it comes from the text, the line and column
//! (`server.toml:3:10: …`), so `infoledger-server validate` can point an operator at the fix.
//! Relative paths in the file are taken relative to the file's own folder, so a configuration
//! means the same thing whatever the working directory of the process reading it.
//!
//! ```toml
//! # Address and port to listen on (an IP address, not a host name).
//! listen = "127.0.0.1:8610"
//! # The SQLite database; created with its schema on first start.
//! database = "/var/lib/infoledger/collector.db"
//! # At least 32 random bytes from which agents' secrets are derived; created (mode 0600) by
//! # `serve` when absent; refused when readable by group or others.
//! server_key_file = "/var/lib/infoledger/server.key"
//! # Serve HTTPS (rustls) with this PEM certificate chain and PEM private key (PKCS#8, PKCS#1 or
//! # SEC1); both or neither. Without them the collector speaks plain HTTP.
//! tls_cert_file = "/etc/infoledger/tls/collector.crt"
//! tls_key_file = "/etc/infoledger/tls/collector.key"
//!
//! # Optional: a policy and a ledger imported at `serve` start whenever the file's text differs
//! # from what was last imported from it (changes made since through the CLI or the API stay
//! # until the file itself changes). Relative to this file's folder.
//! policy_file = "/etc/infoledger/policy.toml"
//! ledger_file = "/etc/infoledger/ledger.toml"     # `.csv` selects the CSV reader
//!
//! [limits]
//! # The largest request body accepted, in bytes.
//! body_bytes = 4194304
//!
//! # How long a violation of each severity may stay unresolved: the service level that
//! # remediation figures measure against. A number and a unit (s, m, h, d, w), or "none".
//! [sla]
//! critical = "24h"
//! high = "72h"
//! medium = "7d"
//! low = "30d"
//! info = "none"
//!
//! [agents]
//! # An agent that has delivered nothing for this long is flagged stale in the agent list.
//! stale_after = "1h"
//!
//! [rules]
//! # How often escalation and ledger drift are evaluated.
//! interval = "60s"
//!
//! [drift]
//! # An asset whose locations held no file on any reporting agent for this long is drift.
//! empty_after = "30d"
//!
//! [dashboard]
//! # A dashboard session ends after this long unused, and this long after sign-in in any case.
//! session_idle = "12h"
//! session_lifetime = "7d"
//! # The session cookie's `Secure` flag: "auto" (when the request came over HTTPS, as a TLS
//! # listener or a proxy's `X-Forwarded-Proto: https` says), "always" or "never".
//! secure_cookie = "auto"
//! # The maturity score (0-100) each department is compared against.
//! maturity_target = 80
//!
//! [webhook]                                       # optional: no section, no webhook
//! url = "https://alerts.example.com/infoledger"
//! secret_file = "/etc/infoledger/webhook.secret"  # or `secret = "…"` (at least 16 bytes)
//! events = ["critical_opened", "escalated"]
//! timeout = "10s"                                 # per attempt
//! retries = 16                                    # after the first attempt
//! retry_delay = "10s"                             # doubles per retry, at most 1h
//! ```

use crate::sla::Slas;
use crate::store::notify::WebhookEvent;
use chrono::TimeDelta;
use infoledger_policies::diag::line_column as position;
use infoledger_policies::Severity;
use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where a configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/infoledger/server.toml";
/// The listen address when the file names none.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8610";
/// The body limit when the file names none: 4 MiB.
pub const DEFAULT_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The smallest body limit accepted: an enrollment request must fit.
pub const MIN_BODY_BYTES: u64 = 1024;
/// The largest body limit accepted: a batch is held in memory while it is verified.
pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;
/// How long an agent may stay silent before it is flagged stale, when the file does not say.
pub const DEFAULT_STALE_AFTER: TimeDelta = TimeDelta::hours(1);
/// How often server-side rules run when the file says nothing.
pub const DEFAULT_RULES_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long an asset may stay empty before it is drift, when the file says nothing.
pub const DEFAULT_DRIFT_EMPTY_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// A webhook attempt's time limit when the file says nothing.
pub const DEFAULT_WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Webhook retries after the first attempt when the file says nothing: with the default delay
/// (10 s, doubling, at most an hour) they span about ten hours of receiver outage.
pub const DEFAULT_WEBHOOK_RETRIES: u32 = 16;
/// The first retry's delay when the file says nothing.
pub const DEFAULT_WEBHOOK_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
/// The shortest webhook secret accepted, in bytes.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// A configuration that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has unknown or missing keys, or a value is out of range.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A file the configuration names (webhook secret, policy or ledger) cannot be used.
    #[error("{0}")]
    ReferencedFile(String),
    /// A file the configuration names would have to be created in a folder that does not exist.
    #[error("{}: the folder of `{key}` ({}) does not exist", config.display(), folder.display())]
    MissingFolder {
        /// The configuration file.
        config: PathBuf,
        /// The key naming the file.
        key: &'static str,
        /// The missing folder.
        folder: PathBuf,
    },
}

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Address and port to listen on, e.g. `0.0.0.0:8610` [default: 127.0.0.1:8610].
    listen: Option<Spanned<String>>,
    /// The SQLite database file (its folder must exist).
    database: Spanned<PathBuf>,
    /// The server key file: at least 32 random bytes, readable by the service only.
    server_key_file: Spanned<PathBuf>,
    /// PEM certificate chain for HTTPS (the server's certificate first).
    tls_cert_file: Option<Spanned<PathBuf>>,
    /// PEM private key of the certificate.
    tls_key_file: Option<Spanned<PathBuf>>,
    /// Resource limits.
    #[serde(default)]
    limits: RawLimits,
    /// Service levels per severity.
    #[serde(default)]
    sla: RawSla,
    /// The agent fleet.
    #[serde(default)]
    agents: RawAgents,
    /// A policy file imported at `serve` start when it changed.
    policy_file: Option<Spanned<PathBuf>>,
    /// A ledger file imported at `serve` start when it changed.
    ledger_file: Option<Spanned<PathBuf>>,
    /// Server-side rules.
    #[serde(default)]
    rules: RawRules,
    /// Ledger drift.
    #[serde(default)]
    drift: RawDrift,
    /// The webhook; absent means none.
    webhook: Option<RawWebhook>,
    /// The web dashboard.
    #[serde(default)]
    dashboard: RawDashboard,
}

/// `[dashboard]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    /// A session unused this long ends [default: 12h].
    session_idle: Option<Spanned<String>>,
    /// A session ends this long after sign-in [default: 7d].
    session_lifetime: Option<Spanned<String>>,
    /// `auto`, `always` or `never` [default: auto].
    secure_cookie: Option<Spanned<String>>,
    /// The maturity target, 0-100 [default: 80].
    maturity_target: Option<Spanned<i64>>,
}

/// `[sla]` as written: a duration (`24h`, `7d`) or `none` per severity.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    /// [default: 24h]
    critical: Option<Spanned<String>>,
    /// [default: 72h]
    high: Option<Spanned<String>>,
    /// [default: 7d]
    medium: Option<Spanned<String>>,
    /// [default: 30d]
    low: Option<Spanned<String>>,
    /// [default: none]
    info: Option<Spanned<String>>,
}

/// `[agents]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgents {
    /// Silence after which an agent is stale [default: 1h].
    stale_after: Option<Spanned<String>>,
}

/// `[rules]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    /// How often escalation and drift run [default: 60s].
    interval: Option<Spanned<String>>,
}

/// `[drift]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    /// How long an asset may hold no file before it is drift [default: 30d].
    empty_after: Option<Spanned<String>>,
}

/// `[webhook]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    /// Where notifications are POSTed (http or https).
    url: Spanned<String>,
    /// The HMAC key, inline.
    secret: Option<Spanned<String>>,
    /// A file holding the HMAC key.
    secret_file: Option<Spanned<PathBuf>>,
    /// What to announce [default: both].
    events: Option<Spanned<Vec<Spanned<String>>>>,
    /// Per-attempt time limit [default: 10s].
    timeout: Option<Spanned<String>>,
    /// Retries after the first attempt [default: 16].
    retries: Option<Spanned<i64>>,
    /// The first retry's delay, doubling per retry up to an hour [default: 10s].
    retry_delay: Option<Spanned<String>>,
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    /// The largest request body accepted, in bytes [default: 4194304].
    body_bytes: Option<Spanned<i64>>,
}

/// A checked configuration, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// The socket address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The SQLite database file.
    pub database: PathBuf,
    /// The server key file.
    pub server_key_file: PathBuf,
    /// HTTPS certificate and key, when configured (see [`crate::tls`]).
    pub tls: Option<TlsFiles>,
    /// Resource limits.
    pub limits: Limits,
    /// Service levels per severity (`[sla]`).
    pub slas: Slas,
    /// The agent fleet (`[agents]`).
    pub agents: AgentSettings,
    /// A policy file to import at `serve` start when it changed.
    pub policy_file: Option<PathBuf>,
    /// A ledger file to import at `serve` start when it changed.
    pub ledger_file: Option<PathBuf>,
    /// Server-side rules.
    pub rules: Rules,
    /// The webhook, if configured.
    pub webhook: Option<Webhook>,
    /// The web dashboard (`[dashboard]`).
    pub dashboard: crate::dashboard::DashboardSettings,
}

/// Checked `[agents]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// An agent silent for longer than this is flagged stale.
    pub stale_after: TimeDelta,
}

impl Default for AgentSettings {
    fn default() -> AgentSettings {
        AgentSettings {
            stale_after: DEFAULT_STALE_AFTER,
        }
    }
}

/// Checked `[rules]` and `[drift]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// How often escalation and ledger drift run.
    pub interval: std::time::Duration,
    /// How long an asset may hold no file before it is drift.
    pub drift_empty_after: chrono::TimeDelta,
}

/// Where the webhook's HMAC key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookSecret {
    /// Written in the configuration.
    Inline(String),
    /// Read from this file when the server starts.
    File(PathBuf),
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookSecret::Inline(_) => f.write_str("Inline(..)"),
            WebhookSecret::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Checked `[webhook]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where notifications are POSTed.
    pub url: reqwest::Url,
    /// The HMAC key's source.
    pub secret: WebhookSecret,
    /// What to announce.
    pub events: Vec<WebhookEvent>,
    /// Per-attempt time limit.
    pub timeout: std::time::Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first retry's delay.
    pub retry_delay: std::time::Duration,
}

/// The TLS certificate and key files named by the configuration, with where the file names them
/// so that a problem found when they are read still points at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain.
    pub cert_file: PathBuf,
    /// The PEM private key.
    pub key_file: PathBuf,
    /// Line and column of the `tls_cert_file` value.
    pub cert_at: (usize, usize),
    /// Line and column of the `tls_key_file` value.
    pub key_at: (usize, usize),
}

/// Checked `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub body_bytes: usize,
}

impl Config {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Whether the configuration writes a secret inline (then the file should be private).
    pub fn holds_secret(&self) -> bool {
        matches!(
            self.webhook.as_ref().map(|w| &w.secret),
            Some(WebhookSecret::Inline(_))
        )
    }

    /// Checks that the folders of the database and the server key file exist, so that `serve`
    /// can create them; `validate` and `serve` call this, `parse` does not touch the filesystem.
    pub fn check_folders(&self) -> Result<(), ConfigError> {
        for (key, file) in [
            ("database", &self.database),
            ("server_key_file", &self.server_key_file),
        ] {
            let folder = file.parent().unwrap_or(Path::new("."));
            let folder = if folder.as_os_str().is_empty() {
                Path::new(".")
            } else {
                folder
            };
            if !folder.is_dir() {
                return Err(ConfigError::MissingFolder {
                    config: self.path.clone(),
                    key,
                    folder: folder.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// Parses and checks `text`, read from `path` (used in messages and to resolve relative
    /// paths).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |span: Range<usize>, message: String| {
            let (line, column) = position(text, span.start);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| invalid(e.span().unwrap_or(0..0), first_line(e.message()).to_owned()))?;
        raw.check(path, text)
            .map_err(|(span, message)| invalid(span, message))
    }

    /// An error located at `at` (line, column) in this configuration file, for problems found
    /// after parsing (e.g. in a file a key names).
    pub fn error_at(&self, at: (usize, usize), message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: at.0,
            column: at.1,
            message,
        }
    }
}

impl RawConfig {
    /// Turns the file's values into a [`Config`]; an error carries the span of the bad value.
    fn check(self, path: &Path, text: &str) -> Result<Config, Located> {
        let listen = match &self.listen {
            None => DEFAULT_LISTEN
                .parse()
                .expect("the default listen address is a socket address"),
            Some(l) => l.get_ref().parse().map_err(|_| {
                (
                    l.span(),
                    format!(
                        "invalid `listen` address `{}`: expected IP:PORT, e.g. 127.0.0.1:8610 or [::]:8610",
                        l.get_ref()
                    ),
                )
            })?,
        };
        let folder = path.parent().unwrap_or(Path::new(""));
        let file_path = |key: &str, p: &Spanned<PathBuf>| {
            if p.get_ref().as_os_str().is_empty() {
                return Err((p.span(), format!("`{key}` must not be empty")));
            }
            Ok(folder.join(p.get_ref()))
        };
        let database = file_path("database", &self.database)?;
        let server_key_file = file_path("server_key_file", &self.server_key_file)?;
        if database == server_key_file {
            return Err((
                self.server_key_file.span(),
                "`server_key_file` must not be the database: the key must live outside it"
                    .to_owned(),
            ));
        }
        let tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert_file: file_path("tls_cert_file", cert)?,
                key_file: file_path("tls_key_file", key)?,
                cert_at: position(text, cert.span().start),
                key_at: position(text, key.span().start),
            }),
            (Some(given), None) | (None, Some(given)) => {
                return Err((
                    given.span(),
                    "`tls_cert_file` and `tls_key_file` go together: set both for HTTPS, or neither for plain HTTP".to_owned(),
                ))
            }
        };
        let body_bytes = match &self.limits.body_bytes {
            None => DEFAULT_BODY_BYTES,
            Some(b) => u64::try_from(*b.get_ref())
                .ok()
                .filter(|n| (MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(n))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    (
                        b.span(),
                        format!(
                            "`limits.body_bytes` is {}, it must be between {MIN_BODY_BYTES} and {MAX_BODY_BYTES}",
                            b.get_ref()
                        ),
                    )
                })?,
        };
        let mut slas = Slas::default();
        for (severity, value) in [
            (Severity::Critical, &self.sla.critical),
            (Severity::High, &self.sla.high),
            (Severity::Medium, &self.sla.medium),
            (Severity::Low, &self.sla.low),
            (Severity::Info, &self.sla.info),
        ] {
            let Some(value) = value else { continue };
            let allowed = match value.get_ref().as_str() {
                "none" => None,
                text => Some(parse_duration(text).map_err(|problem| {
                    (
                        value.span(),
                        format!("`sla.{severity}`: {problem}, or \"none\""),
                    )
                })?),
            };
            slas.set(severity, allowed);
        }
        let stale_after = match &self.agents.stale_after {
            None => DEFAULT_STALE_AFTER,
            Some(value) => parse_duration(value.get_ref())
                .map_err(|problem| (value.span(), format!("`agents.stale_after`: {problem}")))?,
        };
        let optional_file = |key: &str, p: &Option<Spanned<PathBuf>>| {
            p.as_ref().map(|p| file_path(key, p)).transpose()
        };
        let policy_file = optional_file("policy_file", &self.policy_file)?;
        let ledger_file = optional_file("ledger_file", &self.ledger_file)?;
        let interval = match &self.rules.interval {
            None => DEFAULT_RULES_INTERVAL,
            Some(text) => std_duration("rules.interval", text)?,
        };
        let drift_empty_after = match &self.drift.empty_after {
            None => DEFAULT_DRIFT_EMPTY_AFTER,
            Some(text) => duration("drift.empty_after", text)?,
        };
        let webhook = self
            .webhook
            .as_ref()
            .map(|w| w.check(&file_path))
            .transpose()?;
        let dashboard = self.dashboard.check()?;
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            database,
            server_key_file,
            tls,
            limits: Limits { body_bytes },
            slas,
            agents: AgentSettings { stale_after },
            policy_file,
            ledger_file,
            rules: Rules {
                interval,
                drift_empty_after,
            },
            webhook,
            dashboard,
        })
    }
}

impl RawDashboard {
    fn check(&self) -> Result<crate::dashboard::DashboardSettings, Located> {
        use crate::dashboard::{CookieSecurity, DashboardSettings};
        let mut settings = DashboardSettings::default();
        if let Some(text) = &self.session_idle {
            settings.sessions.idle = duration("dashboard.session_idle", text)?;
        }
        if let Some(text) = &self.session_lifetime {
            settings.sessions.lifetime = duration("dashboard.session_lifetime", text)?;
        }
        if settings.sessions.lifetime < settings.sessions.idle {
            let span = self
                .session_lifetime
                .as_ref()
                .or(self.session_idle.as_ref())
                .map_or(0..0, |text| text.span());
            return Err((
                span,
                format!(
                    "`dashboard.session_lifetime` ({}) must not be shorter than `session_idle` ({})",
                    crate::dashboard::human_duration(settings.sessions.lifetime),
                    crate::dashboard::human_duration(settings.sessions.idle)
                ),
            ));
        }
        if let Some(text) = &self.secure_cookie {
            settings.secure_cookie = match text.get_ref().as_str() {
                "auto" => CookieSecurity::Auto,
                "always" => CookieSecurity::Always,
                "never" => CookieSecurity::Never,
                other => {
                    return Err((
                        text.span(),
                        format!(
                            "invalid `dashboard.secure_cookie` `{other}`: expected auto, always or never"
                        ),
                    ))
                }
            };
        }
        if let Some(target) = &self.maturity_target {
            settings.maturity_target = u8::try_from(*target.get_ref())
                .ok()
                .filter(|t| *t <= 100)
                .ok_or_else(|| {
                (
                    target.span(),
                    format!(
                        "`dashboard.maturity_target` is {}, it must be between 0 and 100",
                        target.get_ref()
                    ),
                )
            })?;
        }
        Ok(settings)
    }
}

/// An error located at a value's span.
type Located = (Range<usize>, String);
/// Resolves a path value relative to the configuration's folder.
type FilePath<'a> = dyn Fn(&str, &Spanned<PathBuf>) -> Result<PathBuf, Located> + 'a;

/// A duration value such as `90s`, `12h` or `30d`.
fn duration(key: &str, text: &Spanned<String>) -> Result<chrono::TimeDelta, Located> {
    parse_duration(text.get_ref()).map_err(|message| (text.span(), format!("`{key}`: {message}")))
}

fn std_duration(key: &str, text: &Spanned<String>) -> Result<std::time::Duration, Located> {
    duration(key, text)?
        .to_std()
        .map_err(|_| (text.span(), format!("`{key}` must be positive")))
}

impl RawWebhook {
    fn check(&self, file_path: &FilePath<'_>) -> Result<Webhook, Located> {
        let url = reqwest::Url::parse(self.url.get_ref())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                (
                    self.url.span(),
                    format!(
                        "invalid `webhook.url` `{}`: expected an http:// or https:// URL",
                        self.url.get_ref()
                    ),
                )
            })?;
        let secret = match (&self.secret, &self.secret_file) {
            (Some(secret), None) => {
                if secret.get_ref().len() < MIN_WEBHOOK_SECRET_BYTES {
                    return Err((
                        secret.span(),
                        format!(
                            "`webhook.secret` must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes"
                        ),
                    ));
                }
                WebhookSecret::Inline(secret.get_ref().clone())
            }
            (None, Some(file)) => WebhookSecret::File(file_path("webhook.secret_file", file)?),
            (Some(secret), Some(_)) => {
                return Err((
                    secret.span(),
                    "give either `webhook.secret` or `webhook.secret_file`, not both".to_owned(),
                ))
            }
            (None, None) => {
                return Err((
                    self.url.span(),
                    "`[webhook]` needs `secret_file` (or `secret`): receivers verify the signature with it"
                        .to_owned(),
                ))
            }
        };
        let events = match &self.events {
            None => WebhookEvent::ALL.to_vec(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err((
                        list.span(),
                        "`webhook.events` is empty: remove `[webhook]` to turn notifications off"
                            .to_owned(),
                    ));
                }
                let mut events = Vec::new();
                for name in list.get_ref() {
                    let event: WebhookEvent =
                        name.get_ref().parse().map_err(|e| (name.span(), e))?;
                    if !events.contains(&event) {
                        events.push(event);
                    }
                }
                events
            }
        };
        let timeout = self
            .timeout
            .as_ref()
            .map(|t| std_duration("webhook.timeout", t))
            .transpose()?
            .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT);
        let retry_delay = self
            .retry_delay
            .as_ref()
            .map(|t| std_duration("webhook.retry_delay", t))
            .transpose()?
            .unwrap_or(DEFAULT_WEBHOOK_RETRY_DELAY);
        let retries = match &self.retries {
            None => DEFAULT_WEBHOOK_RETRIES,
            Some(n) => u32::try_from(*n.get_ref())
                .ok()
                .filter(|n| *n <= 1000)
                .ok_or_else(|| {
                    (
                        n.span(),
                        format!(
                            "`webhook.retries` is {}, it must be between 0 and 1000",
                            n.get_ref()
                        ),
                    )
                })?,
        };
        Ok(Webhook {
            url,
            secret,
            events,
            timeout,
            retries,
            retry_delay,
        })
    }
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `2w` (one number, one unit), between
/// one second and ten years.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
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
    // Ten years is far beyond any sensible token life or service level and keeps the arithmetic
    // in range.
    const MAX_SECONDS: i64 = 10 * 366 * 86_400;
    match n.checked_mul(seconds_per_unit) {
        Some(s) if (1..=MAX_SECONDS).contains(&s) => Ok(TimeDelta::seconds(s)),
        _ => Err(format!(
            "invalid duration `{text}`: it must be between 1s and 10 years"
        )),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "database = \"collector.db\"\nserver_key_file = \"/srv/key\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/il/server.toml"), text)
    }

    #[test]
    fn defaults_fill_in_and_relative_paths_follow_the_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8610".parse().unwrap());
        assert_eq!(c.database, Path::new("/etc/il/collector.db"));
        assert_eq!(c.server_key_file, Path::new("/srv/key"));
        assert_eq!(c.limits.body_bytes, DEFAULT_BODY_BYTES);
        assert_eq!(c.slas, Slas::default());
        assert_eq!(c.agents.stale_after, TimeDelta::hours(1));
    }

    #[test]
    fn slas_and_staleness_are_read() {
        let c = parse(&format!(
            "{GOOD}[sla]\ncritical = \"4h\"\nlow = \"none\"\ninfo = \"2w\"\n[agents]\nstale_after = \"90m\"\n"
        ))
        .unwrap();
        assert_eq!(c.slas.get(Severity::Critical), Some(TimeDelta::hours(4)));
        assert_eq!(c.slas.get(Severity::High), Some(TimeDelta::hours(72)));
        assert_eq!(c.slas.get(Severity::Low), None);
        assert_eq!(c.slas.get(Severity::Info), Some(TimeDelta::weeks(2)));
        assert_eq!(c.agents.stale_after, TimeDelta::minutes(90));
        assert_eq!(c.tls, None);
    }

    #[test]
    fn tls_files_are_read_with_their_positions_and_go_together() {
        let c = parse(&format!(
            "{GOOD}tls_cert_file = \"tls/c.pem\"\ntls_key_file = \"/k.pem\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert_file: PathBuf::from("/etc/il/tls/c.pem"),
                key_file: PathBuf::from("/k.pem"),
                cert_at: (3, 17),
                key_at: (4, 16),
            })
        );
        for alone in ["tls_cert_file = \"c\"\n", "tls_key_file = \"k\"\n"] {
            let err = parse(&format!("{GOOD}{alone}")).unwrap_err().to_string();
            assert!(err.starts_with("/etc/il/server.toml:3:"), "{err}");
            assert!(err.contains("go together"), "{err}");
        }
        let err = parse(&format!(
            "{GOOD}tls_cert_file = \"\"\ntls_key_file = \"k\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("/etc/il/server.toml:3:17:"), "{err}");
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(&format!(
            "listen = \"[::1]:0\"\n{GOOD}[limits]\nbody_bytes = 2048\n"
        ))
        .unwrap();
        assert_eq!(c.listen, "[::1]:0".parse().unwrap());
        assert_eq!(c.limits.body_bytes, 2048);
    }

    #[test]
    fn rules_drift_and_webhook_keys_are_read_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            (c.policy_file, c.ledger_file, c.webhook),
            (None, None, None)
        );
        assert_eq!(c.rules.interval, DEFAULT_RULES_INTERVAL);
        assert_eq!(c.rules.drift_empty_after, chrono::TimeDelta::days(30));

        let c = parse(&format!(
            "{GOOD}policy_file = \"p.toml\"\nledger_file = \"/srv/l.csv\"\n[rules]\ninterval = \"5m\"\n[drift]\nempty_after = \"2w\"\n[webhook]\nurl = \"https://hooks.example/x?k=1\"\nsecret_file = \"hook.secret\"\nevents = [\"escalated\", \"escalated\"]\ntimeout = \"3s\"\nretries = 0\nretry_delay = \"1m\"\n"
        ))
        .unwrap();
        assert_eq!(c.policy_file.as_deref(), Some(Path::new("/etc/il/p.toml")));
        assert_eq!(c.ledger_file.as_deref(), Some(Path::new("/srv/l.csv")));
        assert_eq!(c.rules.interval, std::time::Duration::from_secs(300));
        assert_eq!(c.rules.drift_empty_after, chrono::TimeDelta::days(14));
        assert!(!c.holds_secret());
        let w = c.webhook.unwrap();
        assert_eq!(w.url.as_str(), "https://hooks.example/x?k=1");
        assert_eq!(
            w.secret,
            WebhookSecret::File(PathBuf::from("/etc/il/hook.secret"))
        );
        assert_eq!(w.events, [WebhookEvent::Escalated]);
        assert_eq!(w.timeout, std::time::Duration::from_secs(3));
        assert_eq!(
            (w.retries, w.retry_delay),
            (0, std::time::Duration::from_secs(60))
        );

        let c = parse(&format!(
            "{GOOD}[webhook]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\n"
        ))
        .unwrap();
        let w = c.webhook.as_ref().unwrap();
        assert_eq!(w.events, WebhookEvent::ALL);
        assert_eq!(
            (w.timeout, w.retries, w.retry_delay),
            (
                DEFAULT_WEBHOOK_TIMEOUT,
                DEFAULT_WEBHOOK_RETRIES,
                DEFAULT_WEBHOOK_RETRY_DELAY
            )
        );
        assert!(c.holds_secret());
        assert_eq!(format!("{:?}", w.secret), "Inline(..)");
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "listen = \"localhost\"\n",
                "/etc/il/server.toml:3:10:",
                "invalid `listen` address",
            ),
            ("colour = 1\n", "/etc/il/server.toml:3:1:", "unknown field"),
            (
                "[limits]\nbody_bytes = 10\n",
                "/etc/il/server.toml:4:14:",
                "must be between",
            ),
            (
                "[limits]\nbody_bytes = -1\n",
                "/etc/il/server.toml:4:14:",
                "must be between",
            ),
            (
                "[limits]\nbodybytes = 1\n",
                "/etc/il/server.toml:4:1:",
                "unknown field",
            ),
            ("listen = \n", "/etc/il/server.toml:3:", "string"),
            (
                "[sla]\nhigh = \"3 days\"\n",
                "/etc/il/server.toml:4:8:",
                "`sla.high`: invalid duration `3 days`",
            ),
            (
                "[sla]\nurgent = \"1h\"\n",
                "/etc/il/server.toml:4:1:",
                "unknown field",
            ),
            (
                "[sla]\ncritical = 24\n",
                "/etc/il/server.toml:4:12:",
                "string",
            ),
            (
                "[agents]\nstale_after = \"none\"\n",
                "/etc/il/server.toml:4:15:",
                "`agents.stale_after`: invalid duration",
            ),
        ];
        for (extra, at, message) in cases {
            let err = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(err.starts_with(at), "{extra:?}: {err}");
            assert!(err.contains(message), "{extra:?}: {err}");
        }
    }

    #[test]
    fn dashboard_settings_are_read_and_checked() {
        use crate::dashboard::{CookieSecurity, DashboardSettings};
        assert_eq!(parse(GOOD).unwrap().dashboard, DashboardSettings::default());
        let config = parse(&format!(
            "{GOOD}[dashboard]\nsession_idle = \"30m\"\nsession_lifetime = \"1d\"\n\
             secure_cookie = \"always\"\nmaturity_target = 65\n"
        ))
        .unwrap();
        let d = config.dashboard;
        assert_eq!(d.sessions.idle, TimeDelta::minutes(30));
        assert_eq!(d.sessions.lifetime, TimeDelta::days(1));
        assert_eq!(
            (d.secure_cookie, d.maturity_target),
            (CookieSecurity::Always, 65)
        );
        for (extra, at, message) in [
            (
                "secure_cookie = \"yes\"\n",
                ":4:17:",
                "expected auto, always or never",
            ),
            ("maturity_target = 101\n", ":4:19:", "between 0 and 100"),
            (
                "session_idle = \"8d\"\n",
                ":4:16:",
                "`dashboard.session_lifetime` (7 d) must not be shorter than `session_idle` (8 d)",
            ),
            ("session_idle = \"soon\"\n", ":4:16:", "invalid duration"),
        ] {
            let err = parse(&format!("{GOOD}[dashboard]\n{extra}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(at) && err.contains(message),
                "{extra:?}: {err}"
            );
        }
    }

    #[test]
    fn missing_and_empty_paths_are_refused() {
        let err = parse("server_key_file = \"k\"\n").unwrap_err().to_string();
        assert!(err.contains("missing field `database`"), "{err}");
        let err = parse("database = \"\"\nserver_key_file = \"k\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/il/server.toml:1:12:"), "{err}");
        let err = parse("database = \"k\"\nserver_key_file = \"k\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be the database"), "{err}");
    }

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
    fn positions_are_one_based_in_characters() {
        assert_eq!(position("ab\ncé d", 0), (1, 1));
        assert_eq!(position("ab\ncé d", 3), (2, 1));
        assert_eq!(position("ab\ncé d", 7), (2, 4));
        assert_eq!(position("ab", 99), (1, 3));
    }
}
