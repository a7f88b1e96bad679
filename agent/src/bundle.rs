//! Finding and loading the policy and ledger files a command runs with.

use std::path::{Path, PathBuf};

use infoledger_policies::{Bundle, Diagnostic, LoadError, EXAMPLE_LEDGER, EXAMPLE_POLICY};

/// Where the system-wide policy and ledger live.
pub const SYSTEM_DIR: &str = "/etc/infoledger";

/// Which files to load; `None` means: the system file if present, else the built-in example.
#[derive(Debug, Clone, Default)]
pub struct BundleSource {
    /// Policy file.
    pub policy: Option<PathBuf>,
    /// Ledger file (TOML, or CSV by extension).
    pub ledger: Option<PathBuf>,
}

/// Why a bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file was read but is invalid.
    #[error("{0}")]
    Invalid(#[from] LoadError),
    /// Only one of the two files was found: mixing it with a built-in example would evaluate
    /// real files against a made-up ledger or policy.
    #[error("{found} is set but no {missing} was found; pass --{missing} (the built-in examples are used only when neither file is configured)")]
    HalfConfigured {
        /// The file that was found.
        found: String,
        /// `policy` or `ledger`.
        missing: &'static str,
    },
}

/// Largest policy or ledger file read; far beyond any real one, small enough to never exhaust
/// memory when pointed at the wrong file (`/dev/zero`).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

fn read_capped(path: &Path) -> Result<String, BundleError> {
    use std::io::Read;
    let err = |source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(std::io::Error::other(format!(
            "larger than {} MiB; this is not a policy or ledger",
            MAX_FILE_BYTES / 1024 / 1024
        ))));
    }
    String::from_utf8(bytes).map_err(|e| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ))
    })
}

/// A loaded bundle, with the warnings its files produced and notes on where it came from.
#[derive(Debug)]
pub struct LoadedBundle {
    /// The bundle.
    pub bundle: Bundle,
    /// Warnings from validation.
    pub warnings: Vec<Diagnostic>,
    /// Notes for the user (e.g. that a built-in example was used).
    pub notes: Vec<String>,
}

enum Text {
    File(PathBuf, String),
    Builtin(&'static str, &'static str),
}

/// The configured file: the one given, else the first system file present.
fn configured(given: Option<&Path>, system_names: &[&str]) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        system_names
            .iter()
            .map(|n| Path::new(SYSTEM_DIR).join(n))
            .find(|p| p.exists())
    })
}

impl BundleSource {
    /// Reads and validates both files.
    pub fn load(&self) -> Result<LoadedBundle, BundleError> {
        let mut notes = Vec::new();
        let policy_path = configured(self.policy.as_deref(), &["policy.toml"]);
        let ledger_path = configured(self.ledger.as_deref(), &["ledger.toml", "ledger.csv"]);
        let (policy, ledger) = match (policy_path, ledger_path) {
            (Some(p), Some(l)) => (
                Text::File(p.clone(), read_capped(&p)?),
                Text::File(l.clone(), read_capped(&l)?),
            ),
            (None, None) => {
                notes.push(format!(
                    "using the built-in example policy and ledger (none given, none in {SYSTEM_DIR}); pass --policy and --ledger to use your own"
                ));
                (
                    Text::Builtin("policy", EXAMPLE_POLICY),
                    Text::Builtin("ledger", EXAMPLE_LEDGER),
                )
            }
            (Some(p), None) => {
                return Err(BundleError::HalfConfigured {
                    found: format!("policy {}", p.display()),
                    missing: "ledger",
                })
            }
            (None, Some(l)) => {
                return Err(BundleError::HalfConfigured {
                    found: format!("ledger {}", l.display()),
                    missing: "policy",
                })
            }
        };
        let (policy_origin, policy_text) = parts(&policy);
        let (ledger_origin, ledger_text) = parts(&ledger);
        let (bundle, warnings) =
            Bundle::from_texts(policy_text, &policy_origin, ledger_text, &ledger_origin)?;
        Ok(LoadedBundle {
            bundle,
            warnings,
            notes,
        })
    }
}

fn parts(t: &Text) -> (PathBuf, &str) {
    match t {
        Text::File(p, s) => (p.clone(), s.as_str()),
        Text::Builtin(name, s) => (PathBuf::from(format!("<built-in example {name}>")), s),
    }
}
