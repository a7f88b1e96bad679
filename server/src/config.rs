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
//! [limits]
//! # The largest request body accepted, in bytes.
//! body_bytes = 4194304
//! ```

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
    fn check(self, path: &Path, text: &str) -> Result<Config, (Range<usize>, String)> {
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
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            database,
            server_key_file,
            tls,
            limits: Limits { body_bytes },
        })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// Line and column (1-based, the column in characters) of a byte offset into `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
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
        ];
        for (extra, at, message) in cases {
            let err = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(err.starts_with(at), "{extra:?}: {err}");
            assert!(err.contains(message), "{extra:?}: {err}");
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
    fn positions_are_one_based_in_characters() {
        assert_eq!(position("ab\ncé d", 0), (1, 1));
        assert_eq!(position("ab\ncé d", 3), (2, 1));
        assert_eq!(position("ab\ncé d", 7), (2, 4));
        assert_eq!(position("ab", 99), (1, 3));
    }
}
