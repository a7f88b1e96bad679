//! The hidden `generate-assets` command that packaging uses: man pages for every command and
//! completions for bash, zsh and fish, from the same definitions as `--help`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::PathBuf;
use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");

#[test]
fn generate_assets_writes_man_pages_and_completions_and_stays_out_of_help() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("generate-assets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(AGENT)
        .args(["generate-assets", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut man: Vec<String> = std::fs::read_dir(out.join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    man.sort();
    for page in [
        "infoledger-agent.1",
        "infoledger-agent-run.1",
        "infoledger-agent-scan.1",
        "infoledger-agent-warnings.1",
        "infoledger-agent-hook-pre-commit.1",
    ] {
        assert!(man.iter().any(|m| m == page), "{page} missing in {man:?}");
    }
    let warnings_page =
        std::fs::read_to_string(out.join("man/infoledger-agent-warnings.1")).unwrap();
    assert!(warnings_page.contains("socket"), "{warnings_page}");
    for completion in [
        "infoledger-agent.bash",
        "_infoledger-agent",
        "infoledger-agent.fish",
    ] {
        let text = std::fs::read_to_string(out.join("completions").join(completion)).unwrap();
        assert!(text.contains("warnings"), "{completion} lacks `warnings`");
    }

    let help = Command::new(AGENT).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("warnings"), "{help}");
    assert!(!help.contains("generate-assets"), "{help}");
    std::fs::remove_dir_all(&out).unwrap();
}
