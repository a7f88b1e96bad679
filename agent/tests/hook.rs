//! `infoledger-agent hook pre-commit` and `scan --git-staged` with real git repositories: what
//! blocks a commit, what passes, and that the staged version is what counts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infoledger_tests::formats::{office_document, MipLabel, OfficeKind};
use infoledger_tests::{date_from_today, set_xattr, Tree, ASSET_XATTR, LABEL_XATTR};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");

const POLICY: &str = r#"
[[label]]
name = "public"
[[label]]
name = "internal"
markings = ["INTERNAL USE ONLY"]
[[label]]
name = "confidential"
aliases = ["mip:{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}"]
markings = ["CONFIDENTIAL"]

[rules]
forbidden = ["**/Downloads/**"]
unregistered_from = "confidential"
"#;

const CONFIDENTIAL: MipLabel<'static> = MipLabel {
    id: "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
    tenant: "0b1c2d3e-0000-4000-8000-000000000001",
};

struct Fixture {
    tree: Tree,
    policy: PathBuf,
    ledger: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let tree = Tree::new(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")), name).unwrap();
    let r = tree.root().display();
    let ledger = format!(
        r#"
[[asset]]
id = "ACME"
name = "ACME migration"
department = "Finance"
administrator = "alice@example.com"
label = "confidential"
locations = ["{r}/srv/acme/**"]
access_until = "{future}"

[[asset]]
id = "GLOBEX"
name = "Globex payroll (contract ended)"
department = "Finance"
administrator = "alice@example.com"
label = "internal"
locations = ["{r}/srv/globex/**"]
access_until = "{past}"
"#,
        future = date_from_today(90),
        past = date_from_today(-10),
    );
    let policy = tree.file("etc/policy.toml", POLICY.as_bytes()).unwrap();
    let ledger = tree.file("etc/ledger.toml", ledger.as_bytes()).unwrap();
    Fixture {
        tree,
        policy,
        ledger,
    }
}

/// git, with no user or system configuration and a fixed identity.
fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com");
    c
}

fn git(dir: &Path, args: &[&str]) -> Output {
    let out = git_cmd(dir).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run git ({e}); install the Debian package `git` (.ci/run does)")
    });
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh repository at `rel` inside the fixture.
fn repo(f: &Fixture, rel: &str) -> PathBuf {
    let dir = f.tree.path(rel);
    fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    dir
}

fn hook(f: &Fixture, repo: &Path) -> Output {
    Command::new(AGENT)
        .current_dir(repo)
        .args(["hook", "pre-commit", "--policy"])
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&f.ledger)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_labeled_document_staged_where_no_asset_allows_it_blocks_with_the_explanation() {
    let f = fixture("hook-block");
    let app = repo(&f, "code/app");
    let doc = office_document(OfficeKind::Word, Some(CONFIDENTIAL), false).unwrap();
    fs::write(app.join("customers.docx"), &doc).unwrap();
    fs::write(app.join("main.rs"), b"fn main() {}\n").unwrap();
    git(&app, &["add", "."]);

    let out = hook(&f, &app);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let path = app.join("customers.docx");
    assert!(
        stdout.contains(&format!(
            "{}\n  medium[unregistered] confidential (from label-info) file that no ledger asset covers\n    rule: rules.unregistered_from: confidential\n    fix:  ask your information manager to register the asset",
            path.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("main.rs"), "{stdout}");
    assert!(
        stdout.contains("commit blocked: 1 staged file must not be committed to this repository")
            && stdout.contains("git reset -q -- customers.docx"),
        "{stdout}"
    );
}

#[test]
fn a_file_naming_its_asset_staged_outside_the_asset_is_misplaced() {
    let f = fixture("hook-asset");
    let app = repo(&f, "code/app");
    let p = app.join("export.csv");
    fs::write(&p, b"id,name\n1,ACME Corp\n").unwrap();
    set_xattr(&p, ASSET_XATTR, "ACME").unwrap();
    git(&app, &["add", "."]);

    let out = hook(&f, &app);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "[misplaced] file of asset ACME (ACME migration) lies outside the asset's locations"
        ) && stdout.contains("rule: asset ACME: locations")
            && stdout.contains(&format!(
                "move it under {}/srv/acme/",
                f.tree.root().display()
            )),
        "{stdout}"
    );
}

#[test]
fn compliant_and_unlabeled_files_pass() {
    let f = fixture("hook-pass");
    // A labeled document inside its asset's location: allowed there.
    let acme = repo(&f, "srv/acme/reports");
    let doc = office_document(OfficeKind::Excel, Some(CONFIDENTIAL), false).unwrap();
    fs::write(acme.join("q3.xlsx"), &doc).unwrap();
    git(&acme, &["add", "."]);
    let out = hook(&f, &acme);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("scanned 1 file: no findings"),
        "{}",
        text(&out.stdout)
    );

    // Unlabeled files and a file labeled below the unregistered threshold anywhere.
    let app = repo(&f, "code/app");
    fs::write(app.join("README.md"), b"# app\n").unwrap();
    fs::write(app.join("notes.txt"), b"INTERNAL USE ONLY\nplans\n").unwrap();
    let plain = office_document(OfficeKind::Word, None, false).unwrap();
    fs::write(app.join("letter.docx"), &plain).unwrap();
    git(&app, &["add", "."]);
    let out = hook(&f, &app);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("scanned 3 files: no findings"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_file_of_an_expired_asset_blocks() {
    let f = fixture("hook-expired");
    let globex = repo(&f, "srv/globex/payroll");
    fs::write(globex.join("salaries.csv"), b"name,salary\n").unwrap();
    git(&globex, &["add", "."]);
    let out = hook(&f, &globex);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "high[expired] access to asset GLOBEX (Globex payroll (contract ended)) ended on"
        ) && stdout.contains("rule: asset GLOBEX: access_until"),
        "{stdout}"
    );
}

#[test]
fn the_staged_version_counts_not_the_working_tree() {
    let f = fixture("hook-index");
    let app = repo(&f, "code/app");
    let memo = app.join("memo.txt");

    // Labeled in the index, label removed in the working tree: blocks.
    fs::write(&memo, b"CONFIDENTIAL\nmerger plans\n").unwrap();
    git(&app, &["add", "memo.txt"]);
    fs::write(&memo, b"merger plans, cleaned\n").unwrap();
    let out = hook(&f, &app);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("confidential (from marking) file that no ledger asset covers"),
        "{}",
        text(&out.stdout)
    );

    // Unlabeled in the index, label present in the working tree only: passes.
    fs::write(&memo, b"merger plans, cleaned\n").unwrap();
    git(&app, &["add", "memo.txt"]);
    fs::write(&memo, b"CONFIDENTIAL\nmerger plans\n").unwrap();
    let out = hook(&f, &app);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Modified files count as well as added ones: commit the clean version, then stage a
    // labeled modification.
    git(&app, &["commit", "-q", "-m", "memo"]);
    git(&app, &["add", "memo.txt"]);
    let out = hook(&f, &app);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[test]
fn an_attribute_label_on_the_working_file_counts_for_the_staged_version() {
    let f = fixture("hook-xattr");
    let app = repo(&f, "code/app");
    let p = app.join("dump.bin");
    fs::write(&p, [0u8, 1, 2, 3]).unwrap();
    set_xattr(&p, LABEL_XATTR, "confidential").unwrap();
    git(&app, &["add", "."]);
    let out = hook(&f, &app);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("confidential (from xattr) file that no ledger asset covers"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn git_commit_runs_the_hook_and_is_refused_until_the_file_is_unstaged() {
    let f = fixture("hook-commit");
    let app = repo(&f, "code/app");
    let hook_file = app.join(".git/hooks/pre-commit");
    fs::write(
        &hook_file,
        format!(
            "#!/bin/sh\nexec '{AGENT}' hook pre-commit --policy '{}' --ledger '{}'\n",
            f.policy.display(),
            f.ledger.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook_file, fs::Permissions::from_mode(0o755)).unwrap();
    let doc = office_document(OfficeKind::Word, Some(CONFIDENTIAL), true).unwrap();
    fs::write(app.join("customers.docx"), &doc).unwrap();
    fs::write(app.join("main.rs"), b"fn main() {}\n").unwrap();
    git(&app, &["add", "."]);

    let refused = git_cmd(&app)
        .args(["commit", "-q", "-m", "first"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = format!("{}{}", text(&refused.stdout), text(&refused.stderr));
    assert!(
        said.contains("customers.docx") && said.contains("commit blocked"),
        "{said}"
    );
    let head = git_cmd(&app)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .output()
        .unwrap();
    assert!(!head.status.success(), "a commit was made");

    git(&app, &["reset", "-q", "--", "customers.docx"]);
    git(&app, &["commit", "-q", "-m", "first"]);
    let files = git(&app, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(text(&files.stdout), "main.rs\n");
}

#[test]
fn scan_git_staged_reports_the_same_findings_as_json() {
    let f = fixture("hook-scan");
    let app = repo(&f, "code/app");
    let doc = office_document(OfficeKind::Word, Some(CONFIDENTIAL), false).unwrap();
    fs::create_dir_all(app.join("docs")).unwrap();
    fs::write(app.join("docs/customers.docx"), &doc).unwrap();
    fs::write(app.join("docs/skip.docx"), &doc).unwrap();
    git(&app, &["add", "."]);
    let out = Command::new(AGENT)
        .args(["scan", "--format", "json", "--policy"])
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&f.ledger)
        .args(["--exclude", "skip.docx", "--git-staged"])
        .arg(app.join("docs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v}");
    assert_eq!(
        findings[0]["path"],
        app.join("docs/customers.docx").display().to_string()
    );
    assert_eq!(findings[0]["kind"], "unregistered");
    assert_eq!(v["summary"]["files"], 1);
    assert_eq!(v["summary"]["skipped"], 1);

    // Outside a repository: a usage error naming the folder.
    let out = Command::new(AGENT)
        .args(["scan", "--policy"])
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&f.ledger)
        .arg("--git-staged")
        .arg(f.tree.path("etc"))
        // The fixture tree may itself lie inside a repository (the project's target folder):
        // git must not look above the tree.
        .env(
            "GIT_CEILING_DIRECTORIES",
            f.tree.path("etc").parent().unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not inside a git working tree"),
        "{}",
        text(&out.stderr)
    );
}
