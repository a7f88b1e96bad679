//! The README's quick start works: `infoledger-demo --check` starts the real collector and the
//! real agent on the demo folder, waits until every expected violation arrived through the
//! collector's API and a moved file's violation resolved, and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;

#[test]
fn the_quick_start_demo_works_end_to_end() {
    // `cargo test --workspace` builds every package's binaries before running tests, so the
    // collector and the agent sit next to the demo binary.
    let out = Command::new(env!("CARGO_BIN_EXE_infoledger-demo"))
        .arg("--check")
        .env_remove("INFOLEDGER_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo --check failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("demo check: 8 violations arrived; the moved file's resolved"),
        "{stdout}"
    );
    assert!(stdout.contains("admin token:   ilt_"), "{stdout}");
}
