//! Where the daemon's bundle comes from: the collector's signed bundle (verified with the key
//! given at enrollment, cached in `state_dir/bundle.json`), or local policy and ledger files
//! (`local_only`, or a bootstrap until the collector has a bundle).
//!
//! A cached bundle is verified again on every start, so a tampered cache is refused like a
//! tampered download. A bundle older than the one held is refused: a replayed old bundle cannot
//! loosen the rules.

use std::path::Path;

use infoledger_policies::wire::bundle::{decode_public_key, BundleDocument, SignedBundle};
use infoledger_policies::Bundle;

use super::config::Config;
use super::identity::{read_optional, write_private, Identity, BUNDLE_FILE};
use crate::bundle::{BundleError, BundleSource};

/// The bundle the daemon evaluates with.
#[derive(Debug, Clone)]
pub struct ActiveBundle {
    /// Policy and ledger.
    pub bundle: Bundle,
    /// The collector's version; `None` for local files.
    pub version: Option<u64>,
    /// For logs: `collector bundle 7`, `local files policy.toml + ledger.toml`.
    pub origin: String,
}

/// Why a bundle was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BundleRefusal {
    /// The signature, envelope or public key is wrong.
    #[error("{0}")]
    Signature(#[from] infoledger_policies::wire::bundle::BundleError),
    /// The policy or ledger inside does not validate.
    #[error("bundle {version} is invalid:\n{errors}")]
    Invalid {
        /// Its version.
        version: u64,
        /// The diagnostics.
        errors: String,
    },
    /// Older than (or as old as, with other content) the bundle held.
    #[error("bundle {offered} is not newer than the bundle held ({held}); refused")]
    NotNewer {
        /// The version offered.
        offered: u64,
        /// The version held.
        held: u64,
    },
    /// Local files could not be loaded.
    #[error("{0}")]
    Local(#[from] BundleError),
    /// Neither local files nor the system files exist.
    #[error("no policy and ledger: set `policy` and `ledger`, or install /etc/infoledger/policy.toml and ledger.toml")]
    NoLocalFiles,
    /// The cache could not be written or read.
    #[error("{0}")]
    Cache(#[from] super::identity::IdentityError),
}

/// Loads the configured local policy and ledger (the system files when none are configured);
/// never the built-in examples.
pub fn load_local(config: &Config) -> Result<ActiveBundle, BundleRefusal> {
    let source = BundleSource {
        policy: config.policy.clone(),
        ledger: config.ledger.clone(),
    };
    let loaded = source.load()?;
    if !loaded.notes.is_empty() {
        // The only note is "using the built-in examples": never right for a daemon.
        return Err(BundleRefusal::NoLocalFiles);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let origin = format!(
        "local files {} + {}",
        loaded.bundle.policy.source().display(),
        loaded.bundle.ledger.source().display()
    );
    Ok(ActiveBundle {
        bundle: loaded.bundle,
        version: None,
        origin,
    })
}

/// Verifies a signed bundle with the collector's key, refuses one not newer than `held`, and
/// validates its policy and ledger.
pub fn accept(
    signed: &SignedBundle,
    identity: &Identity,
    held: Option<u64>,
) -> Result<(BundleDocument, ActiveBundle), BundleRefusal> {
    let key = decode_public_key(&identity.bundle_public_key)?;
    let document = signed.verify(&key)?;
    if let Some(held) = held {
        if document.version <= held {
            return Err(BundleRefusal::NotNewer {
                offered: document.version,
                held,
            });
        }
    }
    let (bundle, warnings) = document.load().map_err(|e| BundleRefusal::Invalid {
        version: document.version,
        errors: e.to_string(),
    })?;
    for w in &warnings {
        tracing::warn!(bundle = document.version, "{w}");
    }
    let active = ActiveBundle {
        bundle,
        version: Some(document.version),
        origin: format!("collector bundle {}", document.version),
    };
    Ok((document, active))
}

/// The cached signed bundle, verified; `None` when there is none (or it is refused, which is
/// logged: the collector will send a good one).
pub fn load_cached(state_dir: &Path, identity: &Identity) -> Option<ActiveBundle> {
    let path = state_dir.join(BUNDLE_FILE);
    let bytes = match read_optional(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cached bundle");
            return None;
        }
    };
    let signed: SignedBundle = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cached bundle is malformed; ignored");
            return None;
        }
    };
    match accept(&signed, identity, None) {
        Ok((_, active)) => Some(active),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cached bundle refused; ignored");
            None
        }
    }
}

/// Caches a verified signed bundle.
pub fn store_cached(state_dir: &Path, signed: &SignedBundle) -> Result<(), BundleRefusal> {
    let bytes = serde_json::to_vec(signed).map_err(|e| {
        BundleRefusal::Signature(infoledger_policies::wire::bundle::BundleError::Malformed(
            e.to_string(),
        ))
    })?;
    write_private(&state_dir.join(BUNDLE_FILE), &bytes)?;
    Ok(())
}

/// The bundle to start with: the cached collector bundle, else the configured local files
/// (bootstrap), else none yet. In `local_only` mode, the local files or an error.
pub fn initial(
    config: &Config,
    identity: Option<&Identity>,
) -> Result<Option<ActiveBundle>, BundleRefusal> {
    if config.local_only() {
        return load_local(config).map(Some);
    }
    if let Some(active) = identity.and_then(|id| load_cached(&config.state_dir, id)) {
        return Ok(Some(active));
    }
    if config.policy.is_some() {
        return load_local(config).map(Some);
    }
    Ok(None)
}
