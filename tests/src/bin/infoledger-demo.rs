//! `infoledger-demo`: builds a demo folder from the example policy and ledger and runs the agent
//! on it, so a newcomer sees every kind of violation in one command (`./demo.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use infoledger_tests::formats::{labeled_pdf, office_document, MipLabel, OfficeKind};
use infoledger_tests::{chmod, current_user_and_group, set_xattr, ASSET_XATTR, LABEL_XATTR};

const EXAMPLE_POLICY: &str = include_str!("../../../policies/examples/policy.toml");
const EXAMPLE_LEDGER: &str = include_str!("../../../policies/examples/ledger.toml");

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The example ledger with its absolute locations moved under the demo folder, and the
/// members adjusted so the files the demo creates are owned by a member.
fn demo_ledger(root: &Path) -> String {
    let (user, group) = current_user_and_group();
    let r = root.display().to_string();
    EXAMPLE_LEDGER
        .replace("\"/srv/", &format!("\"{r}/srv/"))
        .replace("\"/home/", &format!("\"{r}/home/"))
        .replace("\"user:alice\"", &format!("\"user:{user}\""))
        .replace("\"group:acme\"", &format!("\"group:{group}\""))
        .replace("\"group:staff\"", &format!("\"group:{group}\""))
        .replace(
            "hosts = [\"build-*\", \"ws-alice\"]",
            "hosts = [\"build-*\", \"ws-*\"]",
        )
}

fn write(root: &Path, rel: &str, contents: &str, mode: u32) -> Result<PathBuf> {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().context("path has a parent")?)?;
    std::fs::write(&p, contents)?;
    chmod(&p, mode)?;
    Ok(p)
}

fn write_bytes(root: &Path, rel: &str, contents: &[u8]) -> Result<()> {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().context("path has a parent")?)?;
    std::fs::write(&p, contents)?;
    chmod(&p, 0o600)
}

fn build_tree(root: &Path) -> Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let tree = root.join("tree");
    // Compliant: the roadmap asset is internal and needs no encryption.
    write(
        &tree,
        "srv/projects/roadmap/2027-plan.md",
        "# Roadmap 2027\n",
        0o640,
    )?;
    // Misplaced: a confidential export in Downloads.
    let p = write(
        &tree,
        "home/dev/Downloads/acme-customers.csv",
        "id,name\n1,ACME\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "Confidential")?;
    // Unencrypted: ACME requires encryption; this CSV is plain text.
    let p = write(
        &tree,
        "srv/projects/acme/customers.csv",
        "id,name\n1,ACME\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "confidential")?;
    // Expired: the Globex contract ended; also unencrypted, since confidential requires it.
    write(
        &tree,
        "srv/projects/globex/payroll-2025.txt",
        "CONFIDENTIAL\npayroll\n",
        0o600,
    )?;
    // Overexposed: world-readable roadmap notes.
    write(
        &tree,
        "srv/projects/roadmap/notes.md",
        "INTERNAL USE ONLY\nnotes\n",
        0o644,
    )?;
    // Unregistered: a marked confidential file no asset covers.
    write(
        &tree,
        "home/dev/notes/board-minutes.txt",
        "CONFIDENTIAL\nBoard minutes\n",
        0o600,
    )?;
    // Mislabeled: an internal label inside the confidential sales asset.
    let p = write(
        &tree,
        "srv/projects/sales/crm/forecast.txt",
        "forecast\n",
        0o600,
    )?;
    set_xattr(&p, LABEL_XATTR, "internal")?;
    // Real Office and PDF files carrying Purview labels (mapped by label id, as exports carry no
    // label name): a confidential workbook in Downloads, an unencrypted contract in ACME.
    let confidential = MipLabel {
        id: "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
        tenant: "0b1c2d3e-0000-4000-8000-000000000001",
    };
    let bytes = office_document(OfficeKind::Excel, Some(confidential), true)?;
    write_bytes(&tree, "home/dev/Downloads/q3-forecast.xlsx", &bytes)?;
    write_bytes(
        &tree,
        "srv/projects/acme/contract.pdf",
        &labeled_pdf(Some(confidential)),
    )?;
    // Misplaced by its own asset attribute: an HR file outside the vault.
    let p = write(&tree, "home/dev/notes/review.txt", "SECRET\n", 0o600)?;
    set_xattr(&p, ASSET_XATTR, "HR-PERSONNEL")?;
    Ok(())
}

fn run() -> Result<ExitCode> {
    let here = std::env::current_exe().context("cannot find the demo binary")?;
    let bin_dir = here.parent().context("binary has a folder")?;
    let agent = bin_dir.join("infoledger-agent");
    if !agent.exists() {
        bail!(
            "{} not found; build it first (`cargo build --bins`, which ./demo.sh does)",
            agent.display()
        );
    }
    let target = bin_dir.parent().context("target folder")?;
    let root = std::path::absolute(target.join("demo"))?;
    build_tree(&root)?;
    let policy = write(&root, "policy.toml", EXAMPLE_POLICY, 0o644)?;
    let ledger = write(
        &root,
        "ledger.toml",
        &demo_ledger(&root.join("tree")),
        0o644,
    )?;
    let args = [
        "scan".into(),
        "--policy".into(),
        policy.into_os_string(),
        "--ledger".into(),
        ledger.into_os_string(),
        "--host".into(),
        "ws-demo".into(),
        root.join("tree").into_os_string(),
    ];
    eprintln!(
        "demo folder: {}\nrunning: {} {}\n",
        root.display(),
        agent.display(),
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new(&agent).args(&args).status()?;
    eprintln!(
        "\nexit status {} (1 = findings). Try `--format json` or `--format sarif`, `infoledger-agent inspect FILE` to see what a file carries, or edit {} and run again.",
        status.code().unwrap_or(-1),
        root.join("tree").display()
    );
    Ok(ExitCode::SUCCESS)
}
