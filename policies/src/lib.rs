//! infoledger's pure core: the policy (labels, rules, severities), the ledger (assets), file
//! facts, and the evaluation of facts into findings.
//!
//! Nothing here performs I/O: callers read files and pass their text, and evaluation is a pure
//! function of `(bundle, facts, now, host)`. That keeps rules testable in isolation and lets the
//! collector re-evaluate stored facts when the ledger changes.

pub mod diag;
pub mod eval;
pub mod facts;
pub mod finding;
pub mod glob;
pub mod ledger;
pub mod policy;
mod tomlread;
pub mod wire;

pub use diag::{Diagnostic, DiagnosticLevel, LoadError};
pub use eval::{assess, evaluate, Assessment, EffectiveLabel};
pub use facts::{
    DetectedLabel, EncryptionStatus, EncryptionVerdict, FileFacts, LabelSource, Principal,
};
pub use finding::{Finding, Kind, Severity};
pub use ledger::{Asset, Ledger, Member};
pub use policy::{EncryptionRequirement, Label, Level, Policy};

use std::path::Path;

/// The example policy shipped with infoledger (`policies/examples/policy.toml`).
pub const EXAMPLE_POLICY: &str = include_str!("../examples/policy.toml");
/// The example ledger shipped with infoledger (`policies/examples/ledger.toml`).
pub const EXAMPLE_LEDGER: &str = include_str!("../examples/ledger.toml");

/// Ledger and policy together: what evaluation needs.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The policy.
    pub policy: Policy,
    /// The ledger, validated against the policy.
    pub ledger: Ledger,
}

impl Bundle {
    /// Parses a policy and a ledger (TOML, or CSV when `ledger_origin` ends in `.csv`).
    ///
    /// Returns warnings on success; on failure, every diagnostic of both files.
    pub fn from_texts(
        policy_text: &str,
        policy_origin: &Path,
        ledger_text: &str,
        ledger_origin: &Path,
    ) -> Result<(Bundle, Vec<Diagnostic>), LoadError> {
        let (policy, mut warnings) = Policy::from_toml(policy_text, policy_origin)?;
        let is_csv = ledger_origin
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let parsed = if is_csv {
            Ledger::from_csv(ledger_text, ledger_origin, &policy)
        } else {
            Ledger::from_toml(ledger_text, ledger_origin, &policy)
        };
        match parsed {
            Ok((ledger, more)) => {
                warnings.extend(more);
                Ok((Bundle { policy, ledger }, warnings))
            }
            Err(mut e) => {
                // Keep the policy's warnings next to the ledger's errors.
                e.diagnostics.extend(warnings);
                Err(e)
            }
        }
    }

    /// The example bundle shipped with infoledger.
    pub fn example() -> Result<Bundle, LoadError> {
        Bundle::from_texts(
            EXAMPLE_POLICY,
            Path::new("policies/examples/policy.toml"),
            EXAMPLE_LEDGER,
            Path::new("policies/examples/ledger.toml"),
        )
        .map(|(b, _)| b)
    }
}
