//! The daemon's configuration file (TOML): the raw form as written, checked into [`Config`].
//!
//! Unknown keys are refused and every error names the file, line and column
//! (`agent.toml:3:10: error: …`), so `infoledger-agent validate --config F` can point an admin at
//! the fix. Relative paths are taken relative to the file's own folder, so a configuration means
//! the same thing whatever the working directory (and `--daemon` changes it to `/`).
//!
//! Every key, with its default:
//!
//! ```toml
//! # The collector's base URL (http or https). Required unless `local_only = true`.
//! server = "https://collector.example.com:8610"
//! # The enrollment token an admin issued (`infoledger-server enroll-token create`), used once on
//! # first start; inline, or read from a file (trailing whitespace ignored). Give one of the two.
//! # A config holding an inline token should be readable by the agent only (chmod 600).
//! enroll_token_file = "/etc/infoledger/enroll-token"
//! # enroll_token = "…"
//! # Folders watched and rescanned (absolute). Required, at least one.
//! watch = ["/home", "/srv/projects"]
//! # Globs left out; without a `/` a glob matches a file or folder name anywhere (".git"), with
//! # one it matches the whole path ("/home/*/.cache/**"). Default: none.
//! exclude = [".git", "node_modules"]
//! # Where the agent keeps its identity, the cached bundle and its SQLite state (mode 0700).
//! state_dir = "/var/lib/infoledger/agent"
//! # How often every watch root is walked again (`30s`, `15m`, `1h`, `1d`). Default 1h.
//! rescan_interval = "1h"
//! # How many events the outbox holds while the collector cannot be reached; at least 1000.
//! # A full outbox merges and defers, it never drops a violation (see `daemon::state`).
//! outbox_limit = 100000
//! # An extra CA certificate (PEM) to trust for the collector, e.g. a private CA.
//! tls_ca_file = "/etc/infoledger/collector-ca.pem"
//! # Whether the system's trust store is used too; false pins the collector to `tls_ca_file`.
//! tls_system_roots = true
//! # No collector: evaluate against the local `policy` and `ledger` files and only log.
//! local_only = false
//! # Policy and ledger files. With `local_only` they are the bundle (default: the files in
//! # /etc/infoledger); otherwise, when given, they are used until the collector serves a signed
//! # bundle (a new installation whose collector has none yet).
//! policy = "/etc/infoledger/policy.toml"
//! ledger = "/etc/infoledger/ledger.toml"
//! # error, warn, info, debug or trace; INFOLEDGER_LOG (tracing filter syntax) overrides it.
//! log_level = "info"
//! # The host name reported and matched against assets' `hosts`. Default: the system's.
//! hostname = "ws-17"
//! # How often a health event is queued. Default 5m.
//! health_interval = "5m"
//! # How often the collector is asked for a new bundle. Default 5m.
//! bundle_interval = "5m"
//! # The longest wait between two attempts to reach the collector (backoff cap). Default 5m.
//! retry_max = "5m"
//! # Which folders under the roots get change notifications: "complete" (every folder not
//! # excluded: every rule answers within a second) or "interesting" (only folders where an
//! # asset, label or forbidden location can match: fewer watches, and violations of the rules
//! # that apply everywhere are found by the rescans there). Default "complete".
//! watch_scope = "complete"
//! # Show a desktop notification to a file's owner when a violation opens on it (when the owner
//! # has a graphical session; the journal line is always written). Default true.
//! desktop_notifications = true
//! # The Unix socket where `infoledger-agent warnings` asks the running agent for the invoking
//! # user's open violations (the peer's uid decides what it sees). Its folder is created when
//! # missing (systemd: `RuntimeDirectory=infoledger-agent`); "" serves none.
//! socket = "/run/infoledger-agent/agent.sock"
//! ```

use infoledger_policies::diag::line_column as position;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::watch::WatchScope;

/// Where `run` and `validate` look for the configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/infoledger/agent.toml";
/// The state folder when the file names none.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/infoledger/agent";
/// The smallest `outbox_limit` accepted: two full batches.
pub const MIN_OUTBOX_LIMIT: u64 = 1000;
/// `outbox_limit` when the file names none.
pub const DEFAULT_OUTBOX_LIMIT: u64 = 100_000;
/// Where the agent serves `warnings` when the file names no `socket`.
pub const DEFAULT_SOCKET: &str = "/run/infoledger-agent/agent.sock";
/// The longest path a Unix socket address holds (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The largest enrollment token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

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
    /// The file is not valid TOML, has unknown or missing keys, or a value is unusable.
    #[error("{}:{line}:{column}: error: {message}", path.display())]
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
    /// The enrollment token file could not be read.
    #[error("cannot read enroll_token_file {}: {source}", path.display())]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<Spanned<String>>,
    enroll_token: Option<Spanned<String>>,
    enroll_token_file: Option<Spanned<PathBuf>>,
    watch: Spanned<Vec<Spanned<PathBuf>>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    state_dir: Option<Spanned<PathBuf>>,
    rescan_interval: Option<Spanned<String>>,
    outbox_limit: Option<Spanned<i64>>,
    tls_ca_file: Option<Spanned<PathBuf>>,
    tls_system_roots: Option<bool>,
    #[serde(default)]
    local_only: bool,
    policy: Option<Spanned<PathBuf>>,
    ledger: Option<Spanned<PathBuf>>,
    log_level: Option<Spanned<String>>,
    hostname: Option<Spanned<String>>,
    health_interval: Option<Spanned<String>>,
    bundle_interval: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    watch_scope: Option<Spanned<String>>,
    desktop_notifications: Option<bool>,
    socket: Option<Spanned<PathBuf>>,
}

/// Where the enrollment token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Written in the configuration.
    Inline(String),
    /// Read from this file when needed.
    File(PathBuf),
}

/// How the agent reaches its collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The collector's base URL.
    pub url: reqwest::Url,
    /// The enrollment token, needed only until the agent is enrolled.
    pub token: Option<TokenSource>,
    /// An extra CA certificate file (PEM).
    pub tls_ca_file: Option<PathBuf>,
    /// Whether the system's trust store is used.
    pub tls_system_roots: bool,
    /// How often the bundle is polled.
    pub bundle_interval: Duration,
    /// The backoff cap.
    pub retry_max: Duration,
}

/// A checked configuration, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// The collector; `None` in `local_only` mode.
    pub server: Option<ServerConfig>,
    /// The watch roots, absolute.
    pub watch: Vec<PathBuf>,
    /// Exclusion globs (checked to compile).
    pub exclude: Vec<String>,
    /// The state folder.
    pub state_dir: PathBuf,
    /// How often the roots are walked again.
    pub rescan_interval: Duration,
    /// The outbox's capacity in events.
    pub outbox_limit: u64,
    /// Policy file: the bundle in `local_only` mode, else the bootstrap bundle when given.
    pub policy: Option<PathBuf>,
    /// Ledger file, like `policy`.
    pub ledger: Option<PathBuf>,
    /// The tracing level.
    pub log_level: String,
    /// A host name overriding the system's.
    pub hostname: Option<String>,
    /// How often health is queued.
    pub health_interval: Duration,
    /// Which folders get change notifications.
    pub watch_scope: WatchScope,
    /// Whether file owners get desktop notifications.
    pub desktop_notifications: bool,
    /// Where `warnings` reaches the running agent; `None` serves no socket.
    pub socket: Option<PathBuf>,
    /// Warnings for the admin (e.g. a readable inline token).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and checks the configuration file at `path`, including the permission warnings.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(path, &text)?;
        config.warnings.extend(permission_warnings(&config));
        Ok(config)
    }

    /// Parses and checks `text`, read from `path` (used in messages and to resolve relative
    /// paths). Touches no file.
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
        raw.check(path)
            .map_err(|(span, message)| invalid(span, message))
    }

    /// Whether the agent runs without a collector.
    pub fn local_only(&self) -> bool {
        self.server.is_none()
    }

    /// The enrollment token, read from its file when configured so.
    pub fn enroll_token(&self) -> Result<Option<String>, ConfigError> {
        match self.server.as_ref().and_then(|s| s.token.as_ref()) {
            None => Ok(None),
            Some(TokenSource::Inline(t)) => Ok(Some(t.clone())),
            Some(TokenSource::File(p)) => read_token(p).map(Some),
        }
    }
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let err = |source| ConfigError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    fs::File::open(path)
        .map_err(err)?
        .take(MAX_TOKEN_BYTES)
        .read_to_string(&mut text)
        .map_err(err)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        )));
    }
    Ok(token.to_owned())
}

/// Warnings about files holding secrets that others can read.
fn permission_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let readable_by_others = |p: &Path| {
        fs::metadata(p)
            .ok()
            .map(|m| m.permissions().mode() & 0o077)
            .filter(|bits| *bits != 0)
    };
    match config.server.as_ref().and_then(|s| s.token.as_ref()) {
        Some(TokenSource::Inline(_)) => {
            if let Some(bits) = readable_by_others(&config.path) {
                warnings.push(format!(
                    "{} holds an enrollment token and is accessible to group or others (mode bits {bits:03o}); chmod 600 it, or move the token to enroll_token_file",
                    config.path.display()
                ));
            }
        }
        Some(TokenSource::File(p)) => {
            if let Some(bits) = readable_by_others(p) {
                warnings.push(format!(
                    "enroll_token_file {} is accessible to group or others (mode bits {bits:03o}); chmod 600 it",
                    p.display()
                ));
            }
        }
        None => {}
    }
    warnings
}

/// A span and a message: what `check` reports.
type Problem = (Range<usize>, String);

impl RawConfig {
    /// Turns the file's values into a [`Config`]; an error carries the span of the bad value.
    fn check(self, path: &Path) -> Result<Config, Problem> {
        let folder = path.parent().unwrap_or(Path::new(""));
        let resolve = |key: &str, p: &Spanned<PathBuf>| -> Result<PathBuf, Problem> {
            if p.get_ref().as_os_str().is_empty() {
                return Err((p.span(), format!("`{key}` must not be empty")));
            }
            Ok(folder.join(p.get_ref()))
        };

        let server = if self.local_only {
            if let Some(s) = &self.server {
                return Err((
                    s.span(),
                    "`server` is set but `local_only = true`: remove one of them".to_owned(),
                ));
            }
            None
        } else {
            let Some(s) = &self.server else {
                return Err((
                    0..0,
                    "missing `server` (the collector's URL); set `local_only = true` to run without one".to_owned(),
                ));
            };
            let url = reqwest::Url::parse(s.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    (
                        s.span(),
                        format!(
                            "invalid `server` URL `{}`: expected http(s)://HOST[:PORT][/PATH]",
                            s.get_ref()
                        ),
                    )
                })?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err((
                    s.span(),
                    "the `server` URL must not have a query or fragment".to_owned(),
                ));
            }
            let token = match (&self.enroll_token, &self.enroll_token_file) {
                (Some(_), Some(f)) => {
                    return Err((
                        f.span(),
                        "give `enroll_token` or `enroll_token_file`, not both".to_owned(),
                    ))
                }
                (Some(t), None) => {
                    let token = t.get_ref().trim();
                    if token.is_empty() {
                        return Err((t.span(), "`enroll_token` must not be empty".to_owned()));
                    }
                    Some(TokenSource::Inline(token.to_owned()))
                }
                (None, Some(f)) => Some(TokenSource::File(resolve("enroll_token_file", f)?)),
                (None, None) => None,
            };
            let tls_ca_file = self
                .tls_ca_file
                .as_ref()
                .map(|f| resolve("tls_ca_file", f))
                .transpose()?;
            let tls_system_roots = self.tls_system_roots.unwrap_or(true);
            if !tls_system_roots && tls_ca_file.is_none() {
                return Err((
                    0..0,
                    "`tls_system_roots = false` needs `tls_ca_file`: nothing would be trusted"
                        .to_owned(),
                ));
            }
            Some(ServerConfig {
                url,
                token,
                tls_ca_file,
                tls_system_roots,
                bundle_interval: duration(&self.bundle_interval, "bundle_interval", "5m")?,
                retry_max: duration(&self.retry_max, "retry_max", "5m")?,
            })
        };
        if self.local_only {
            for (key, set) in [
                (
                    "enroll_token",
                    self.enroll_token.as_ref().map(Spanned::span),
                ),
                (
                    "enroll_token_file",
                    self.enroll_token_file.as_ref().map(Spanned::span),
                ),
                ("tls_ca_file", self.tls_ca_file.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = set {
                    return Err((span, format!("`{key}` has no use with `local_only = true`")));
                }
            }
        }

        if self.watch.get_ref().is_empty() {
            return Err((
                self.watch.span(),
                "`watch` needs at least one folder".to_owned(),
            ));
        }
        let mut watch = Vec::new();
        for w in self.watch.get_ref() {
            if !w.get_ref().is_absolute() {
                return Err((
                    w.span(),
                    format!(
                        "watch root `{}` must be an absolute path",
                        w.get_ref().display()
                    ),
                ));
            }
            watch.push(w.get_ref().clone());
        }
        let mut exclude = Vec::new();
        for e in &self.exclude {
            if let Err(err) = globset::GlobBuilder::new(e.get_ref())
                .literal_separator(true)
                .build()
            {
                return Err((
                    e.span(),
                    format!("invalid exclude glob `{}`: {}", e.get_ref(), err.kind()),
                ));
            }
            exclude.push(e.get_ref().clone());
        }
        let state_dir = match &self.state_dir {
            Some(d) => resolve("state_dir", d)?,
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let outbox_limit = match &self.outbox_limit {
            None => DEFAULT_OUTBOX_LIMIT,
            Some(n) => u64::try_from(*n.get_ref())
                .ok()
                .filter(|n| *n >= MIN_OUTBOX_LIMIT)
                .ok_or_else(|| {
                    (
                        n.span(),
                        format!(
                            "`outbox_limit` is {}, it must be at least {MIN_OUTBOX_LIMIT}",
                            n.get_ref()
                        ),
                    )
                })?,
        };
        let policy = self
            .policy
            .as_ref()
            .map(|p| resolve("policy", p))
            .transpose()?;
        let ledger = self
            .ledger
            .as_ref()
            .map(|p| resolve("ledger", p))
            .transpose()?;
        if let (Some(p), None) | (None, Some(p)) = (&self.policy, &self.ledger) {
            return Err((
                p.span(),
                "give both `policy` and `ledger`, or neither".to_owned(),
            ));
        }
        let log_level = match &self.log_level {
            None => "info".to_owned(),
            Some(l) => {
                let level = l.get_ref().to_ascii_lowercase();
                if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                    return Err((
                        l.span(),
                        format!(
                            "unknown `log_level` `{}`: expected error, warn, info, debug or trace",
                            l.get_ref()
                        ),
                    ));
                }
                level
            }
        };
        let hostname = match &self.hostname {
            None => None,
            Some(h) => {
                let name = h.get_ref().trim();
                if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
                    return Err((
                        h.span(),
                        "`hostname` must be 1-253 characters without control characters".to_owned(),
                    ));
                }
                Some(name.to_owned())
            }
        };
        let watch_scope = match &self.watch_scope {
            None => WatchScope::Complete,
            Some(s) => match s.get_ref().as_str() {
                "complete" => WatchScope::Complete,
                "interesting" => WatchScope::Interesting,
                other => {
                    return Err((
                        s.span(),
                        format!(
                        "unknown `watch_scope` `{other}`: expected \"complete\" or \"interesting\""
                    ),
                    ))
                }
            },
        };
        let socket = match &self.socket {
            None => Some(PathBuf::from(DEFAULT_SOCKET)),
            Some(s) if s.get_ref().as_os_str().is_empty() => None,
            Some(s) => {
                let p = folder.join(s.get_ref());
                if p.as_os_str().len() > MAX_SOCKET_PATH {
                    return Err((
                        s.span(),
                        format!(
                            "`socket` path is {} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                            p.as_os_str().len()
                        ),
                    ));
                }
                Some(p)
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            server,
            watch,
            exclude,
            state_dir,
            rescan_interval: duration(&self.rescan_interval, "rescan_interval", "1h")?,
            outbox_limit,
            policy,
            ledger,
            log_level,
            hostname,
            health_interval: duration(&self.health_interval, "health_interval", "5m")?,
            watch_scope,
            desktop_notifications: self.desktop_notifications.unwrap_or(true),
            socket,
            warnings: Vec::new(),
        })
    }
}

/// A duration key: `<n><unit>` with unit `s`, `m`, `h` or `d`, at least one second.
fn duration(
    value: &Option<Spanned<String>>,
    key: &str,
    default: &str,
) -> Result<Duration, Problem> {
    match value {
        None => parse_duration(default).map_err(|e| (0..0, e)),
        Some(v) => parse_duration(v.get_ref()).map_err(|e| (v.span(), format!("`{key}`: {e}"))),
    }
}

/// Parses `30s`, `15m`, `1h`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. 30s, 15m, 1h or 1d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: the unit must be s, m, h or d"
            ))
        }
    };
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| (1..=366 * 86_400).contains(s))
        .ok_or_else(|| format!("duration `{text}` must be between 1s and 366d"))?;
    Ok(Duration::from_secs(secs))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "server = \"https://c.example:8610\"\nenroll_token = \"tok\"\nwatch = [\"/srv\"]\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/il/agent.toml"), text)
    }

    #[test]
    fn defaults_fill_in_and_relative_paths_follow_the_file() {
        let c = parse(&format!("{GOOD}state_dir = \"state\"\n")).unwrap();
        let server = c.server.as_ref().unwrap();
        assert_eq!(server.url.as_str(), "https://c.example:8610/");
        assert_eq!(server.token, Some(TokenSource::Inline("tok".into())));
        assert!(server.tls_system_roots);
        assert_eq!(server.bundle_interval, Duration::from_secs(300));
        assert_eq!(c.watch, vec![PathBuf::from("/srv")]);
        assert_eq!(c.state_dir, Path::new("/etc/il/state"));
        assert_eq!(c.rescan_interval, Duration::from_secs(3600));
        assert_eq!(c.outbox_limit, DEFAULT_OUTBOX_LIMIT);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.health_interval, Duration::from_secs(300));
        assert_eq!(c.watch_scope, WatchScope::Complete);
        assert!(c.desktop_notifications);
        assert_eq!(c.socket, Some(PathBuf::from(DEFAULT_SOCKET)));
        assert!(!c.local_only());
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "server = \"http://127.0.0.1:9/prefix\"\nenroll_token_file = \"tok\"\nwatch = [\"/a\", \"/b\"]\nexclude = [\".git\", \"/a/*/cache/**\"]\nstate_dir = \"/var/s\"\nrescan_interval = \"30s\"\noutbox_limit = 2000\ntls_ca_file = \"ca.pem\"\ntls_system_roots = false\npolicy = \"p.toml\"\nledger = \"l.csv\"\nlog_level = \"DEBUG\"\nhostname = \"ws-1\"\nhealth_interval = \"1m\"\nbundle_interval = \"2m\"\nretry_max = \"3s\"\nwatch_scope = \"interesting\"\ndesktop_notifications = false\nsocket = \"run/agent.sock\"\n",
        )
        .unwrap();
        let s = c.server.unwrap();
        assert_eq!(s.token, Some(TokenSource::File("/etc/il/tok".into())));
        assert_eq!(s.tls_ca_file, Some(PathBuf::from("/etc/il/ca.pem")));
        assert!(!s.tls_system_roots);
        assert_eq!(s.bundle_interval, Duration::from_secs(120));
        assert_eq!(s.retry_max, Duration::from_secs(3));
        assert_eq!(c.exclude, vec![".git", "/a/*/cache/**"]);
        assert_eq!(c.rescan_interval, Duration::from_secs(30));
        assert_eq!(c.outbox_limit, 2000);
        assert_eq!(c.policy, Some(PathBuf::from("/etc/il/p.toml")));
        assert_eq!(c.ledger, Some(PathBuf::from("/etc/il/l.csv")));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.hostname.as_deref(), Some("ws-1"));
        assert_eq!(c.health_interval, Duration::from_secs(60));
        assert_eq!(c.watch_scope, WatchScope::Interesting);
        assert!(!c.desktop_notifications);
        assert_eq!(c.socket, Some(PathBuf::from("/etc/il/run/agent.sock")));
        assert_eq!(
            parse(&format!("{GOOD}socket = \"\"\n")).unwrap().socket,
            None
        );
    }

    #[test]
    fn local_only_needs_no_server_and_refuses_server_keys() {
        let c = parse("local_only = true\nwatch = [\"/srv\"]\n").unwrap();
        assert!(c.local_only());
        let err = parse("local_only = true\nwatch = [\"/srv\"]\nenroll_token = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/il/agent.toml:3:16: error: "), "{err}");
        assert!(err.contains("no use with `local_only"), "{err}");
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let cases: &[(&str, &str, &str)] = &[
            ("colour = 1\n", ":4:1: error: ", "unknown field `colour`"),
            (
                "rescan_interval = \"5\"\n",
                ":4:19: error: ",
                "unit must be",
            ),
            ("rescan_interval = \"0s\"\n", ":4:19: error: ", "between 1s"),
            ("outbox_limit = 10\n", ":4:16: error: ", "at least 1000"),
            (
                "exclude = [\"a[\"]\n",
                ":4:12: error: ",
                "invalid exclude glob",
            ),
            (
                "log_level = \"loud\"\n",
                ":4:13: error: ",
                "unknown `log_level`",
            ),
            (
                "policy = \"p.toml\"\n",
                ":4:10: error: ",
                "both `policy` and `ledger`",
            ),
            ("enroll_token_file = \"t\"\n", ":4:21: error: ", "not both"),
            (
                "watch_scope = \"some\"\n",
                ":4:15: error: ",
                "expected \"complete\" or \"interesting\"",
            ),
            (
                "socket = \"/run/a-folder-name-long-enough-to-overflow-the-socket-address-of-unix-domain-sockets-by-quite-a-margin/agent.sock\"\n",
                ":4:10: error: ",
                "at most 107",
            ),
        ];
        for (extra, at, message) in cases {
            let err = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("/etc/il/agent.toml{at}")),
                "{extra:?}: {err}"
            );
            assert!(err.contains(message), "{extra:?}: {err}");
        }
        let err = parse("server = \"ftp://x\"\nwatch = [\"/a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/il/agent.toml:1:10: error: invalid `server` URL"),
            "{err}"
        );
        let err = parse("server = \"http://x\"\nwatch = [\"rel\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/il/agent.toml:2:10: error: "), "{err}");
        assert!(err.contains("absolute"), "{err}");
        let err = parse("watch = [\"/a\"]\n").unwrap_err().to_string();
        assert!(err.contains("missing `server`"), "{err}");
        let err = parse("server = \"http://x\"\n").unwrap_err().to_string();
        assert!(err.contains("missing field `watch`"), "{err}");
    }

    #[test]
    fn a_readable_config_with_an_inline_token_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        fs::write(&path, GOOD).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("mode bits 044"), "{:?}", c.warnings);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load(&path).unwrap().warnings.is_empty());
        // A token in a file moves the check to that file.
        fs::write(dir.path().join("tok"), "  secret-token \n").unwrap();
        fs::set_permissions(dir.path().join("tok"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(
            &path,
            "server = \"http://x\"\nenroll_token_file = \"tok\"\nwatch = [\"/a\"]\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].starts_with("enroll_token_file"),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.enroll_token().unwrap().as_deref(), Some("secret-token"));
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
