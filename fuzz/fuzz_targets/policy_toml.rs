//! Fuzzes `Policy::from_toml`: any UTF-8 text must yield a policy or diagnostics, never a panic.
#![no_main]

use std::path::Path;

use infoledger_policies::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Policy::from_toml(text, Path::new("fuzz/policy.toml"));
});
