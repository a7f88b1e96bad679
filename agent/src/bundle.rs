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

fn resolve(
    given: Option<&Path>,
    system_names: &[&str],
    builtin_name: &'static str,
    builtin: &'static str,
    notes: &mut Vec<String>,
) -> Result<Text, BundleError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| BundleError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    if let Some(p) = given {
        return Ok(Text::File(p.to_path_buf(), read(p)?));
    }
    for name in system_names {
        let p = Path::new(SYSTEM_DIR).join(name);
        if p.exists() {
            return Ok(Text::File(p.clone(), read(&p)?));
        }
    }
    notes.push(format!(
        "using the built-in example {builtin_name} (no {}/{} found); pass --{} to use your own",
        SYSTEM_DIR, system_names[0], builtin_name
    ));
    Ok(Text::Builtin(builtin_name, builtin))
}

impl BundleSource {
    /// Reads and validates both files.
    pub fn load(&self) -> Result<LoadedBundle, BundleError> {
        let mut notes = Vec::new();
        let policy = resolve(
            self.policy.as_deref(),
            &["policy.toml"],
            "policy",
            EXAMPLE_POLICY,
            &mut notes,
        )?;
        let ledger = resolve(
            self.ledger.as_deref(),
            &["ledger.toml", "ledger.csv"],
            "ledger",
            EXAMPLE_LEDGER,
            &mut notes,
        )?;
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
