//! End-to-end tests of `infoledger-agent inspect`: output shape, exit codes, provenance.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::PathBuf;
use std::process::{Command, Output};

use infoledger_tests::{chmod, set_xattr, unprivileged, Tree, ASSET_XATTR};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_infoledger-agent");

fn tree(name: &str) -> Tree {
    Tree::new(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")), name).unwrap()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run infoledger-agent")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn json_lists_labels_with_provenance_and_the_mapped_policy_label() {
    let t = tree("inspect-json");
    let a = t
        .labeled(
            "notes/plan.txt",
            "Highly Sensitive Customer Data",
            b"SECRET\nplan\n",
        )
        .unwrap();
    set_xattr(&a, ASSET_XATTR, "ACME-2026").unwrap();
    let b = t
        .labeled("notes/vendor.txt", "Vendor Special", b"hello\n")
        .unwrap();
    let out = run(Command::new(AGENT)
        .args(["inspect", "--format", "json"])
        .arg(&a)
        .arg(&b));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let files = doc.as_array().unwrap();
    assert_eq!(files.len(), 2);
    let first = &files[0];
    assert_eq!(first["path"], a.to_str().unwrap());
    assert_eq!(first["format"], "text");
    assert_eq!(first["asset"], "ACME-2026");
    assert_eq!(first["encryption"]["verdict"], "plaintext");
    assert_eq!(first["encryption"]["scheme"], "text");
    assert_eq!(first["mode"], "0600");
    assert!(first["owner"].is_string() && first["group"].is_string());
    assert_eq!(first["errors"].as_array().unwrap().len(), 0);
    let labels = first["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "{labels:#?}");
    assert_eq!(labels[0]["source"], "xattr");
    assert_eq!(labels[0]["name"], "Highly Sensitive Customer Data");
    assert_eq!(labels[0]["mapped"], "confidential");
    assert_eq!(labels[0]["assumed"], false);
    assert_eq!(labels[1]["source"], "marking");
    assert_eq!(labels[1]["mapped"], "secret");
    for key in ["id", "tenant", "name", "method", "mapped"] {
        assert!(labels[1].get(key).is_some(), "{key} missing");
    }
    // A label no alias maps takes rules.unknown_label (confidential in the example policy).
    let vendor = &files[1]["labels"][0];
    assert_eq!(vendor["mapped"], "confidential");
    assert_eq!(vendor["assumed"], true);
}

#[test]
fn text_output_names_format_label_and_encryption() {
    let t = tree("inspect-text");
    let a = t
        .file("minutes.md", b"# Minutes\n\nCONFIDENTIAL\n")
        .unwrap();
    let out = run(Command::new(AGENT).arg("inspect").arg(&a));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("format:     text"), "{text}");
    assert!(
        text.contains("label:      confidential from marking"),
        "{text}"
    );
    assert!(
        text.contains("marking \"CONFIDENTIAL\" on line 3"),
        "{text}"
    );
    assert!(text.contains("encryption: plaintext (text)"), "{text}");
}

#[test]
fn an_unreadable_file_is_listed_with_its_error_and_exits_1() {
    let t = tree("inspect-unreadable");
    let ok = t.file("ok.txt", b"x\n").unwrap();
    let locked = t.file("locked.txt", b"x\n").unwrap();
    chmod(&locked, 0o000).unwrap();
    let out = run(unprivileged(std::path::Path::new(AGENT))
        .args(["inspect", "--format", "json"])
        .arg(&ok)
        .arg(&locked));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc[0]["errors"].as_array().unwrap().len(), 0);
    assert!(doc[1]["errors"][0]
        .as_str()
        .unwrap()
        .contains("Permission denied"));
    assert!(doc[1]["encryption"].is_null());
}

#[test]
fn missing_files_and_folders_are_usage_errors() {
    let t = tree("inspect-usage");
    let out = run(Command::new(AGENT).arg("inspect").arg(t.path("nope.docx")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot inspect"));
    assert!(out.stdout.is_empty());
    let out = run(Command::new(AGENT).arg("inspect").arg(t.root()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `infoledger-agent scan`"));
    let out = run(Command::new(AGENT).arg("inspect"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_lists_files_it_could_inspect_only_in_part() {
    let t = tree("scan-incomplete");
    t.file("broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
        .unwrap();
    t.file("fine.txt", b"hello\n").unwrap();
    let out = run(Command::new(AGENT)
        .args(["scan", "--format", "json", "--host", "ws-test"])
        .arg(t.root()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let incomplete = doc["incomplete"].as_array().unwrap();
    assert_eq!(incomplete.len(), 1, "{doc:#}");
    assert!(incomplete[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("broken.pdf"));
    assert!(!incomplete[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(doc["summary"]["files"], 2);
}

#[test]
fn a_malformed_file_is_reported_not_a_crash() {
    let t = tree("inspect-malformed");
    // Looks like a ZIP, a PDF and an OLE file, but each is cut short.
    let zip = t
        .file("broken.docx", b"PK\x03\x04\x14\x00\x00\x00")
        .unwrap();
    let pdf = t
        .file("broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
        .unwrap();
    let ole = t
        .file("broken.doc", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00")
        .unwrap();
    let out = run(Command::new(AGENT)
        .args(["inspect", "--format", "json"])
        .arg(&zip)
        .arg(&pdf)
        .arg(&ole));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    for f in doc.as_array().unwrap() {
        assert_eq!(f["encryption"]["verdict"], "unknown", "{f:#}");
        assert!(!f["errors"].as_array().unwrap().is_empty(), "{f:#}");
    }
}

#[test]
fn json_reports_labels_and_verdicts_of_real_formats() {
    use infoledger_tests::formats::{labeled_pdf, office_document, MipLabel, OfficeKind};
    const ID: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
    const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";
    let label = MipLabel {
        id: ID,
        tenant: TENANT,
    };
    let t = tree("inspect-formats");
    t.file(
        "report.docx",
        &office_document(OfficeKind::Word, Some(label), true).unwrap(),
    )
    .unwrap();
    t.file("export.pdf", &labeled_pdf(Some(label))).unwrap();
    t.file(
        "mail.eml",
        format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: figures\r\nmsip_labels: MSIP_Label_{ID}_Enabled=True;\r\n MSIP_Label_{ID}_SiteId={TENANT}; MSIP_Label_{ID}_Method=Privileged\r\n\r\nbody\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    t.file("notes.txt", b"plain notes\n").unwrap();
    infoledger_tests::fixture_tool(
        t.root(),
        "zip",
        &["-q", "-e", "-P", "secret", "enc.zip", "notes.txt"],
        "zip",
    );
    infoledger_tests::fixture_tool(
        t.root(),
        "7z",
        &["a", "-bd", "-psecret", "-mhe=on", "enc.7z", "notes.txt"],
        "p7zip-full",
    );

    struct Expect {
        file: &'static str,
        format: &'static str,
        verdict: &'static str,
        scheme: &'static str,
        label_source: Option<&'static str>,
    }
    let table = [
        Expect {
            file: "report.docx",
            format: "docx",
            verdict: "plaintext",
            scheme: "ooxml",
            label_source: Some("label-info"),
        },
        Expect {
            file: "export.pdf",
            format: "pdf",
            verdict: "plaintext",
            scheme: "pdf",
            label_source: Some("pdf-info"),
        },
        Expect {
            file: "mail.eml",
            format: "eml",
            verdict: "plaintext",
            scheme: "email",
            label_source: Some("email-header"),
        },
        Expect {
            file: "enc.zip",
            format: "zip",
            verdict: "encrypted",
            scheme: "zip-traditional",
            label_source: None,
        },
        Expect {
            file: "enc.7z",
            format: "7z",
            verdict: "encrypted",
            scheme: "7z-aes",
            label_source: None,
        },
    ];
    let mut cmd = Command::new(AGENT);
    cmd.args(["inspect", "--format", "json"]);
    for e in &table {
        cmd.arg(t.path(e.file));
    }
    let out = run(&mut cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    for (e, got) in table.iter().zip(doc.as_array().unwrap()) {
        assert_eq!(got["format"], e.format, "{}: {got:#}", e.file);
        assert_eq!(
            got["encryption"]["verdict"], e.verdict,
            "{}: {got:#}",
            e.file
        );
        assert_eq!(got["encryption"]["scheme"], e.scheme, "{}: {got:#}", e.file);
        let labels = got["labels"].as_array().unwrap();
        match e.label_source {
            Some(source) => {
                assert_eq!(labels.len(), 1, "{}: {got:#}", e.file);
                assert_eq!(labels[0]["source"], source, "{}", e.file);
                assert_eq!(labels[0]["id"], ID, "{}", e.file);
                assert_eq!(labels[0]["tenant"], TENANT, "{}", e.file);
                assert_eq!(labels[0]["mapped"], "confidential", "{}", e.file);
                assert_eq!(labels[0]["assumed"], false, "{}", e.file);
            }
            None => assert!(labels.is_empty(), "{}: {got:#}", e.file),
        }
    }
    assert_eq!(doc[2]["labels"][0]["method"], "Privileged");
}

#[test]
fn text_output_escapes_control_characters_from_files() {
    let t = tree("inspect-escape");
    let evil = t.file("evil\u{1b}[2J.txt", b"CONFIDENTIAL\n").unwrap();
    let out = run(Command::new(AGENT).arg("inspect").arg(&evil));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "raw escape in: {text:?}");
    assert!(text.contains("evil\\u{1b}[2J.txt"), "{text}");
}
