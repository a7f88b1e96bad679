//! End-to-end tests of `infoledger-agent scan` and `validate`: the real binary on trees built here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infoledger_tests::{
    chmod, current_user_and_group, date_from_today, set_xattr, unprivileged, Tree, ASSET_XATTR,
};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// A policy where only assets demand encryption, so each fixture file shows exactly one kind.
const POLICY: &str = r#"
[[label]]
name = "public"
[[label]]
name = "internal"
aliases = ["General", "Internal", "mip:9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"]
[[label]]
name = "confidential"
encryption = "optional"
aliases = ["Confidential", "mip:{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}"]
markings = ["CONFIDENTIAL"]
[[label]]
name = "secret"
encryption = "required"

[rules]
forbidden = ["**/Downloads/**", "/tmp/**", "/media/**", "/run/media/**"]
unregistered_from = "confidential"
unknown_label = "confidential"
inherit_asset_label = true
require_labels_in_assets = false
"#;

fn ledger(root: &Path) -> String {
    let (user, group) = current_user_and_group();
    let r = root.display();
    format!(
        r#"
[[asset]]
id = "ACME-2026"
name = "ACME migration: customer data"
department = "Finance Systems"
administrator = "alice@example.com"
label = "confidential"
locations = ["{r}/srv/projects/acme/**"]
hosts = ["build-*", "ws-*"]
members = ["user:{user}", "group:{group}"]
encryption = "required"
access_until = "{future}"
disclosure = "ACME project members only"

[[asset]]
id = "GLOBEX-2025"
name = "Globex payroll (contract ended)"
department = "Finance Systems"
administrator = "alice@example.com"
label = "confidential"
locations = ["{r}/srv/projects/globex/**"]
members = ["user:{user}", "group:{group}"]
encryption = "optional"
access_until = "{past}"

[[asset]]
id = "RD-ROADMAP"
name = "Roadmap"
department = "Research & Development"
administrator = "carol@example.com"
label = "internal"
locations = ["{r}/srv/projects/roadmap/**"]
members = ["user:{user}", "group:{group}"]
"#,
        future = date_from_today(90),
        past = date_from_today(-30),
    )
}

struct Fixture {
    tree: Tree,
    policy: PathBuf,
    ledger: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let tree = Tree::new(&base(), name).unwrap();
    let config = Tree::new(&base(), &format!("{name}-config")).unwrap();
    let policy = config.file("policy.toml", POLICY.as_bytes()).unwrap();
    let ledger = config
        .file("ledger.toml", ledger(tree.root()).as_bytes())
        .unwrap();
    // Keep the config tree alive as long as the fixture by leaking its guard into the paths'
    // lifetime: it is under the target dir and cleaned with it.
    std::mem::forget(config);
    Fixture {
        tree,
        policy,
        ledger,
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run infoledger-agent")
}

fn scan_cmd(f: &Fixture, program: Command) -> Command {
    let mut c = program;
    c.arg("scan")
        .arg("--policy")
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&f.ledger)
        .arg("--host")
        .arg("ws-test");
    c
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn kinds_by_path(doc: &Value, root: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = f["path"].as_str().unwrap();
            let rel = Path::new(p).strip_prefix(root).unwrap();
            (
                rel.to_string_lossy().into_owned(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn scan_reports_exactly_the_expected_violation_of_each_file() {
    let f = fixture("each-kind");
    let t = &f.tree;
    t.labeled(
        "home/dev/Downloads/q3-forecast.xlsx",
        "confidential",
        b"numbers",
    )
    .unwrap();
    t.labeled(
        "srv/projects/acme/customers.csv",
        "Confidential",
        b"id,name\n1,x\n",
    )
    .unwrap();
    t.file("srv/projects/globex/payroll.txt", b"salaries\n")
        .unwrap();
    let plan = t
        .file("srv/projects/roadmap/plan.txt", b"roadmap\n")
        .unwrap();
    chmod(&plan, 0o644).unwrap();
    t.file(
        "home/dev/notes/board-minutes.txt",
        b"CONFIDENTIAL\nBoard minutes, 3 March\n",
    )
    .unwrap();
    // Compliant: internal file in the internal asset, private permissions.
    t.labeled("srv/projects/roadmap/ok.txt", "internal", b"fine\n")
        .unwrap();
    t.file("home/dev/notes/shopping.txt", b"milk\n").unwrap();
    // Not inspectable: an unreadable file and a symlink loop (plus a link back up the tree).
    let locked = t
        .labeled("srv/projects/roadmap/locked.txt", "internal", b"x")
        .unwrap();
    chmod(&locked, 0o000).unwrap();
    t.symlink("loop/a", "b").unwrap();
    t.symlink("loop/b", "a").unwrap();
    t.symlink("loop/up", "..").unwrap();

    let out = run(scan_cmd(&f, unprivileged(Path::new(AGENT)))
        .args(["--format", "json"])
        .arg(t.root()));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    let expected: Vec<(String, String)> = vec![
        ("home/dev/Downloads/q3-forecast.xlsx", "misplaced"),
        ("home/dev/notes/board-minutes.txt", "unregistered"),
        ("srv/projects/acme/customers.csv", "unencrypted"),
        ("srv/projects/globex/payroll.txt", "expired"),
        ("srv/projects/roadmap/plan.txt", "overexposed"),
    ]
    .into_iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    assert_eq!(kinds_by_path(&doc, t.root()), expected, "{doc:#}");

    let s = &doc["summary"];
    assert_eq!(s["files"], 7, "{s}");
    assert_eq!(s["unreadable"], 1, "{s}");
    assert_eq!(s["skipped"], 3, "{s}");
    assert_eq!(s["findings"], 5, "{s}");
    assert!(s["elapsed_ms"].is_u64());
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["path"].as_str().unwrap().ends_with("locked.txt"));

    // Every finding carries the documented fields, with an actionable fix.
    for finding in doc["findings"].as_array().unwrap() {
        for key in [
            "path", "kind", "severity", "label", "asset", "rule", "message", "fix",
        ] {
            assert!(finding.get(key).is_some(), "{key} missing in {finding}");
        }
        assert!(!finding["fix"].as_str().unwrap().is_empty());
    }
    let misplaced = &doc["findings"][0];
    assert_eq!(misplaced["label"], "confidential");
    assert!(misplaced["rule"]
        .as_str()
        .unwrap()
        .contains("**/Downloads/**"));
    let expired = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "expired")
        .unwrap();
    assert_eq!(expired["asset"], "GLOBEX-2025");
    assert_eq!(expired["severity"], "high");
}

#[test]
fn a_file_can_break_several_rules_at_once() {
    let f = fixture("several");
    let t = &f.tree;
    // In ACME (encryption required), world-readable, labeled below the asset, and named as
    // belonging to GLOBEX (expired) by its asset attribute: the attribute wins over location.
    let p = t
        .labeled("srv/projects/acme/mixed.txt", "internal", b"x\n")
        .unwrap();
    chmod(&p, 0o666).unwrap();
    let q = t
        .labeled("srv/projects/acme/wrong-asset.txt", "confidential", b"y\n")
        .unwrap();
    set_xattr(&q, ASSET_XATTR, "GLOBEX-2025").unwrap();
    let out = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--format", "json"])
        .arg(t.root()));
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(
        kinds_by_path(&doc, t.root()),
        vec![
            (
                "srv/projects/acme/mixed.txt".to_string(),
                "unencrypted".to_string()
            ),
            (
                "srv/projects/acme/mixed.txt".to_string(),
                "overexposed".to_string()
            ),
            (
                "srv/projects/acme/mixed.txt".to_string(),
                "mislabeled".to_string()
            ),
            (
                "srv/projects/acme/wrong-asset.txt".to_string(),
                "misplaced".to_string()
            ),
            (
                "srv/projects/acme/wrong-asset.txt".to_string(),
                "expired".to_string()
            ),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

#[test]
fn fail_on_ignores_findings_below_the_threshold() {
    let f = fixture("fail-on");
    f.tree
        .file("home/dev/notes/minutes.txt", b"CONFIDENTIAL\n")
        .unwrap();
    // `unregistered` is medium.
    let high = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--fail-on", "high"])
        .arg(f.tree.root()));
    assert_eq!(high.status.code(), Some(0));
    let medium = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--fail-on", "medium"])
        .arg(f.tree.root()));
    assert_eq!(medium.status.code(), Some(1));
    let never = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--fail-on", "never"])
        .arg(f.tree.root()));
    assert_eq!(never.status.code(), Some(0));
}

#[test]
fn clean_tree_exits_zero_with_a_summary() {
    let f = fixture("clean");
    f.tree.file("readme.txt", b"hello\n").unwrap();
    let out = run(scan_cmd(&f, Command::new(AGENT)).arg(f.tree.root()));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("scanned 1 file: no findings"), "{text}");
}

#[test]
fn text_output_says_what_why_and_how_to_fix_per_file() {
    let f = fixture("text");
    f.tree
        .labeled("home/dev/Downloads/export.csv", "confidential", b"a,b\n")
        .unwrap();
    let out = run(scan_cmd(&f, Command::new(AGENT)).arg(f.tree.root()));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("home/dev/Downloads/export.csv\n"), "{text}");
    assert!(
        text.contains("[misplaced] confidential (from xattr) file in a forbidden location"),
        "{text}"
    );
    assert!(
        text.contains("rule: rules.forbidden: **/Downloads/**"),
        "{text}"
    );
    assert!(
        text.contains("fix:  move it to a location that a ledger asset covers"),
        "{text}"
    );
    assert!(
        text.contains("scanned 1 file: 1 finding in 1 file"),
        "{text}"
    );
}

#[test]
fn sarif_output_has_one_rule_per_kind_and_a_result_per_finding() {
    let f = fixture("sarif");
    f.tree
        .labeled("home/dev/Downloads/export.csv", "confidential", b"a,b\n")
        .unwrap();
    f.tree.file("notes/m.txt", b"CONFIDENTIAL\n").unwrap();
    let out = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--format", "sarif"])
        .arg(f.tree.root()));
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "misplaced",
            "unencrypted",
            "expired",
            "overexposed",
            "unregistered",
            "mislabeled"
        ]
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_ne!(
        results[0]["partialFingerprints"], results[1]["partialFingerprints"],
        "each violation has its own fingerprint"
    );
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(
            uri.starts_with("file:///") || !uri.starts_with('/'),
            "{uri}"
        );
        assert!(r["message"]["text"].as_str().unwrap().contains("Fix:"));
        let physical = &r["locations"][0]["physicalLocation"];
        assert_eq!(physical["region"]["startLine"], 1);
        let fp = r["partialFingerprints"]["infoledgerViolation/v1"]
            .as_str()
            .unwrap();
        assert_eq!(fp.len(), 32);
    }
}

#[test]
fn exclude_leaves_folders_out() {
    let f = fixture("exclude");
    f.tree
        .labeled("home/dev/Downloads/export.csv", "confidential", b"a\n")
        .unwrap();
    f.tree.file(".git/objects/x", b"CONFIDENTIAL\n").unwrap();
    let out = run(scan_cmd(&f, Command::new(AGENT))
        .args([
            "--format",
            "json",
            "--exclude",
            ".git",
            "--exclude",
            "**/Downloads",
        ])
        .arg(f.tree.root()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["summary"]["files"], 0);
}

#[test]
fn missing_path_exits_2_with_a_clear_message() {
    let f = fixture("missing");
    let missing = f.tree.path("no/such/folder");
    let out = run(scan_cmd(&f, Command::new(AGENT)).arg(&missing));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot scan {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_policy_reports_every_error_with_position_and_exits_2() {
    let f = fixture("bad-policy");
    let bad = f
        .tree
        .file(
            "policy.toml",
            br#"[[label]]
name = "public"
[[label]]
nme = "internal"
[[label]]
name = "confidential"
encryption = "mandatory"
[rules]
forbidden = ["Downloads/**", "/a/[b"]
unknown_label = "topsecret"
"#,
        )
        .unwrap();
    let out = run(Command::new(AGENT)
        .arg("scan")
        .arg("--policy")
        .arg(&bad)
        .arg("--ledger")
        .arg(&f.ledger)
        .arg(f.tree.root()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let b = bad.display();
    for expected in [
        format!("{b}:4:1: error: unknown key `nme` in [[label]] (did you mean `name`?)"),
        format!("{b}:7:14: error: unknown encryption requirement `mandatory`"),
        format!("{b}:9:14: error: glob `Downloads/**` in `forbidden` must be an absolute path"),
        format!("{b}:9:30: error: invalid glob `/a/[b`"),
        format!("{b}:10:17: error: unknown label `topsecret`"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("nothing was scanned"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_ledger_reports_positions_and_validate_exits_2() {
    let f = fixture("bad-ledger");
    let bad = f
        .tree
        .file(
            "ledger.toml",
            br#"[[asset]]
id = "A"
name = "a"
department = "d"
administrator = "x@example.com"
label = "confidential"
locations = ["/srv/a/**"]
members = ["alice"]
access_until = "2026-02-30"

[[asset]]
id = "A"
name = "b"
department = "d"
administrator = "x@example.com"
label = "restricted"
locations = ["/srv/b/**"]

[[asset]]
id = "B"
name = "c"
department = "d"
administrator = "x@example.com"
label = "internal"
locations = ["/srv/a/**"]
"#,
        )
        .unwrap();
    let out = run(Command::new(AGENT)
        .arg("validate")
        .arg("--policy")
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let b = bad.display();
    for expected in [
        format!("{b}:8:12: error: member `alice` must be written `user:<name>` or `group:<name>`"),
        format!("{b}:9:16: error: invalid date `2026-02-30`"),
        format!("{b}:12:6: error: duplicate asset id `A`"),
        format!("{b}:16:9: error: unknown label `restricted`"),
        format!("{b}:25:14: error: location `/srv/a/**` is also claimed by asset `A`"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("error: 5 problems found\n"), "{err}");
}

#[test]
fn validate_accepts_good_files_and_the_csv_ledger() {
    let f = fixture("validate-ok");
    let out = run(Command::new(AGENT)
        .arg("validate")
        .arg("--policy")
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&f.ledger));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(4 labels)"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(3 assets)"));

    let csv = f
        .tree
        .file(
            "ledger.csv",
            b"id,name,department,administrator,label,locations,members,access_until\n\
              ACME,ACME data,Finance,alice@example.com,confidential,/srv/acme/**;/srv/acme2/**,user:alice;group:acme,2027-01-31\n",
        )
        .unwrap();
    let out = run(Command::new(AGENT)
        .arg("validate")
        .arg("--policy")
        .arg(&f.policy)
        .arg("--ledger")
        .arg(&csv));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(1 assets)"));
}

#[test]
fn unreadable_policy_file_is_a_clear_error() {
    let f = fixture("no-policy");
    let out = run(Command::new(AGENT)
        .arg("validate")
        .arg("--policy")
        .arg(f.tree.path("absent.toml"))
        .arg("--ledger")
        .arg(&f.ledger));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read") && err.contains("absent.toml"),
        "{err}"
    );
}

#[test]
fn help_documents_exit_codes_and_formats() {
    let out = run(Command::new(AGENT).args(["scan", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--format",
        "sarif",
        "--fail-on",
        "user.infoledger.label",
        "--exclude",
    ] {
        assert!(help.contains(needle), "{needle} not in help:\n{help}");
    }
    let out = run(Command::new(AGENT).arg("--help"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit status"));
    let out = run(Command::new(AGENT).arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_reports_real_labeled_office_and_pdf_files() {
    use infoledger_tests::formats::{labeled_pdf, office_document, MipLabel, OfficeKind};
    let confidential = MipLabel {
        id: "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
        tenant: "0b1c2d3e-0000-4000-8000-000000000001",
    };
    let f = fixture("office-pdf");
    let t = &f.tree;
    let docx = office_document(OfficeKind::Word, Some(confidential), true).unwrap();
    let xlsx = office_document(OfficeKind::Excel, Some(confidential), false).unwrap();
    let pdf = labeled_pdf(Some(confidential));
    t.file("home/dev/Downloads/forecast.docx", &docx).unwrap();
    t.file("home/dev/Downloads/export.pdf", &pdf).unwrap();
    t.file("srv/projects/acme/customers.xlsx", &xlsx).unwrap();
    t.file("srv/projects/acme/contract.pdf", &pdf).unwrap();
    // The same documents, encrypted by real tools, are compliant inside ACME.
    let plain_pdf = t.file("work/plain.pdf", &pdf).unwrap();
    let protected_pdf = t.path("srv/projects/acme/protected.pdf");
    infoledger_tests::fixture_tool(
        t.root(),
        "qpdf",
        &[
            "--encrypt".as_ref(),
            "".as_ref(),
            "owner-secret".as_ref(),
            "256".as_ref(),
            "--".as_ref(),
            plain_pdf.as_os_str(),
            protected_pdf.as_os_str(),
        ],
        "qpdf",
    );
    let plain_docx = t.file("work/plain.docx", &docx).unwrap();
    let protected_docx = t.path("srv/projects/acme/protected.docx");
    infoledger_tests::fixture_tool(
        t.root(),
        "msoffcrypto-tool",
        &[
            "-e".as_ref(),
            "-p".as_ref(),
            "secret".as_ref(),
            plain_docx.as_os_str(),
            protected_docx.as_os_str(),
        ],
        "the PyPI package msoffcrypto-tool",
    );
    for p in [&protected_pdf, &protected_docx] {
        chmod(p, 0o600).unwrap();
    }
    std::fs::remove_dir_all(t.path("work")).unwrap();

    let out = run(scan_cmd(&f, Command::new(AGENT))
        .args(["--format", "json"])
        .arg(t.root()));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    assert_eq!(
        kinds_by_path(&doc, t.root()),
        [
            ("home/dev/Downloads/export.pdf", "misplaced"),
            ("home/dev/Downloads/forecast.docx", "misplaced"),
            ("srv/projects/acme/contract.pdf", "unencrypted"),
            ("srv/projects/acme/customers.xlsx", "unencrypted"),
        ]
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .to_vec(),
        "{doc:#}"
    );
    for finding in doc["findings"].as_array().unwrap() {
        // The label came from the documents' Purview metadata, mapped by label id.
        assert_eq!(finding["label"], "confidential", "{finding}");
    }
    let unencrypted = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("customers.xlsx"))
        .unwrap();
    assert!(
        unencrypted["message"]
            .as_str()
            .unwrap()
            .contains("label-info"),
        "{unencrypted}"
    );
    assert_eq!(doc["summary"]["files"], 6);
}

#[test]
fn half_a_configuration_and_absurd_files_are_refused() {
    let f = fixture("half-config");
    let out = run(Command::new(AGENT)
        .arg("validate")
        .arg("--policy")
        .arg(&f.policy));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no ledger was found; pass --ledger"), "{err}");

    let out = run(Command::new(AGENT)
        .args(["validate", "--policy", "/dev/zero", "--ledger"])
        .arg(&f.ledger));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /dev/zero") && err.contains("larger than 16 MiB"),
        "{err}"
    );
    // The OS reason appears once, not twice.
    let out = run(Command::new(AGENT)
        .args(["validate", "--ledger"])
        .arg(&f.ledger)
        .arg("--policy")
        .arg(f.tree.path("absent.toml")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
