//! Fuzzes `Ledger::from_toml` and `Ledger::from_csv` against the example policy.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use infoledger_policies::{Ledger, Policy, EXAMPLE_POLICY};
use libfuzzer_sys::fuzz_target;

/// The example policy, parsed once: the ledger is what is under test, not the policy.
fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::from_toml(EXAMPLE_POLICY, Path::new("policies/examples/policy.toml"))
            .map(|(policy, _warnings)| policy)
            .expect("the example policy is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = policy();
    let _ = Ledger::from_toml(text, Path::new("fuzz/ledger.toml"), policy);
    let _ = Ledger::from_csv(text, Path::new("fuzz/ledger.csv"), policy);
});
