//! Evaluation rules, table-driven: one row per situation a developer or an information manager
//! can meet, each with the exact findings (kind, severity, rule) it must produce.
//!
//! The bundles are small inline policies and ledgers so that every expectation can be read next
//! to the rule that causes it; `now` is always a fixed instant.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use infoledger_policies::{
    assess, evaluate, Bundle, DetectedLabel, EncryptionStatus, EncryptionVerdict, FileFacts, Kind,
    LabelSource, Level, Principal, Severity,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Four labels, lowest first. Default severities: public low, internal medium, confidential high,
/// secret critical.
const LABELS: &str = r#"
[[label]]
name = "public"
aliases = ["Unrestricted"]

[[label]]
name = "internal"
aliases = ["General", "mip:9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"]

[[label]]
name = "confidential"
encryption = "required"
aliases = ["Highly Sensitive Customer Data", "mip:{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}"]

[[label]]
name = "secret"
encryption = "required"
aliases = ["Highly Confidential", "mip:5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"]
locations = ["/srv/vault/**"]
"#;

/// Rules every test policy shares; rows append their own lines (the toggles are left at their
/// defaults here so that a row can set them without repeating a key).
const BASE_RULES: &str = r#"
forbidden = ["**/Downloads/**", "/tmp/**"]
misplaced_from = "internal"
unregistered_from = "confidential"
unknown_label = "confidential"
"#;

const LEDGER: &str = r#"
[[asset]]
id = "ACME-2026"
name = "ACME migration"
department = "Finance"
administrator = "alice@example.com"
label = "confidential"
locations = ["/srv/projects/acme/**"]
hosts = ["build-*", "ws-alice"]
members = ["user:alice", "group:acme"]
access_until = "2026-12-31"

[[asset]]
id = "ACME-PUBLIC"
name = "ACME brochures"
department = "Marketing"
administrator = "erin@example.com"
label = "internal"
locations = ["/srv/projects/acme/public/**"]
members = ["group:acme", "group:staff"]

[[asset]]
id = "GLOBEX"
name = "Globex payroll"
department = "Finance"
administrator = "alice@example.com"
label = "confidential"
locations = ["/srv/projects/globex/**"]
members = ["group:globex"]
encryption = "optional"
access_until = 2026-03-31

[[asset]]
id = "HR"
name = "Personnel files"
department = "Human Resources"
administrator = "hr@example.com"
label = "secret"
locations = ["/srv/vault/hr/**"]
members = ["group:hr"]

[[asset]]
id = "ROADMAP"
name = "Roadmap"
department = "R&D"
administrator = "carol@example.com"
label = "internal"
locations = ["/srv/projects/roadmap/**"]
members = ["group:staff"]
encryption = "optional"
"#;

fn policy_text(rules: &str, severity: &str) -> String {
    format!("{LABELS}\n[rules]\n{BASE_RULES}{rules}\n\n[severity]\n{severity}\n")
}

fn bundle_with(rules: &str, severity: &str) -> Bundle {
    let policy = policy_text(rules, severity);
    match Bundle::from_texts(
        &policy,
        Path::new("policy.toml"),
        LEDGER,
        Path::new("ledger.toml"),
    ) {
        Ok((bundle, _warnings)) => bundle,
        Err(e) => panic!("test bundle does not load:\n{e}\npolicy:\n{policy}"),
    }
}

fn bundle() -> Bundle {
    bundle_with("", "")
}

type Ymdhms = (i32, u32, u32, u32, u32, u32);

fn at((y, m, d, h, min, s): Ymdhms) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s)
        .single()
        .expect("valid test timestamp")
}

const MID_2026: Ymdhms = (2026, 6, 1, 12, 0, 0);

fn user(name: &str, id: u32) -> Principal {
    Principal {
        id,
        name: Some(name.to_string()),
    }
}

/// A file that satisfies ACME-2026 in every respect except where a row changes it.
fn file(path: &str) -> FileFacts {
    FileFacts {
        path: PathBuf::from(path),
        owner: user("alice", 1000),
        group: user("acme", 2000),
        mode: 0o600,
        size: 4096,
        mtime: 1_780_000_000,
        labels: Vec::new(),
        asset_hint: None,
        encryption: EncryptionVerdict::new(EncryptionStatus::Encrypted, "ooxml-agile"),
    }
}

fn named(name: &str) -> DetectedLabel {
    DetectedLabel {
        name: Some(name.to_string()),
        ..DetectedLabel::new(LabelSource::Xattr)
    }
}

fn with_id(id: &str) -> DetectedLabel {
    DetectedLabel {
        id: Some(id.to_string()),
        tenant: Some("0b1c2d3e-0000-4000-8000-000000000000".to_string()),
        ..DetectedLabel::new(LabelSource::LabelInfo)
    }
}

fn plaintext(f: &mut FileFacts) {
    f.encryption = EncryptionVerdict::new(EncryptionStatus::Plaintext, "text");
}

fn keep(_: &mut FileFacts) {}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// One situation and the exact findings it must produce.
struct Case {
    name: &'static str,
    /// Extra lines for the policy's `[rules]` table.
    rules: &'static str,
    /// Lines for the policy's `[severity]` table.
    severity: &'static str,
    path: &'static str,
    host: &'static str,
    now: Ymdhms,
    /// Changes to the compliant ACME file of [`file`].
    edit: fn(&mut FileFacts),
    /// Kind, severity and a piece of the rule that must fire, in [`Kind::ALL`] order.
    expect: &'static [(Kind, Severity, &'static str)],
}

const BASE: Case = Case {
    name: "",
    rules: "",
    severity: "",
    path: "/srv/projects/acme/report.xlsx",
    host: "build-01",
    now: MID_2026,
    edit: keep,
    expect: &[],
};

use Kind::{Expired, Mislabeled, Misplaced, Overexposed, Unencrypted, Unregistered};
use Severity::{Critical, High, Info, Low, Medium};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "compliant acme file",
            ..BASE
        },
        Case {
            name: "labeled compliant acme file",
            edit: |f| f.labels = vec![named("confidential")],
            ..BASE
        },
        // misplaced: forbidden locations
        Case {
            name: "confidential file in Downloads, no asset",
            path: "/home/alice/Downloads/acme.xlsx",
            edit: |f| f.labels = vec![named("confidential")],
            // Unregistered is suppressed: the file is already misplaced by a forbidden location.
            expect: &[(Misplaced, High, "rules.forbidden: **/Downloads/**")],
            ..BASE
        },
        Case {
            name: "secret file in /tmp, no asset",
            path: "/tmp/payroll.pdf",
            edit: |f| f.labels = vec![named("secret")],
            expect: &[(Misplaced, Critical, "rules.forbidden: /tmp/**")],
            ..BASE
        },
        Case {
            name: "internal file in Downloads (at misplaced_from)",
            path: "/home/bob/Downloads/plan.docx",
            edit: |f| f.labels = vec![named("internal")],
            expect: &[(Misplaced, Medium, "rules.forbidden")],
            ..BASE
        },
        Case {
            name: "public file in Downloads (below misplaced_from)",
            path: "/home/bob/Downloads/brochure.pdf",
            edit: |f| f.labels = vec![named("public")],
            ..BASE
        },
        Case {
            name: "unlabeled file in Downloads",
            path: "/home/bob/Downloads/notes.txt",
            ..BASE
        },
        Case {
            name: "Downloads is matched as a whole component",
            path: "/home/bob/Downloadsx/acme.xlsx",
            edit: |f| f.labels = vec![named("internal")],
            ..BASE
        },
        Case {
            name: "acme file in Downloads, named by asset_hint: forbidden wins",
            path: "/home/alice/Downloads/acme.xlsx",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "rules.forbidden: **/Downloads/**")],
            ..BASE
        },
        // misplaced: asset locations through asset_hint
        Case {
            name: "file naming its asset lies outside the asset's locations",
            path: "/home/alice/projects/acme.xlsx",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "asset ACME-2026: locations")],
            ..BASE
        },
        Case {
            name: "file naming its asset, inside the location",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            ..BASE
        },
        Case {
            name: "hint naming an unknown asset falls back to the location",
            edit: |f| f.asset_hint = Some("NO-SUCH-ASSET".into()),
            ..BASE
        },
        Case {
            name: "hint wins over the location that holds the file",
            path: "/srv/projects/roadmap/acme.xlsx",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "asset ACME-2026: locations")],
            ..BASE
        },
        // misplaced: label locations
        Case {
            name: "secret file inside a confidential asset, outside the secret locations",
            edit: |f| f.labels = vec![named("secret")],
            expect: &[(Misplaced, Critical, "label secret: locations")],
            ..BASE
        },
        Case {
            name: "secret file outside every asset and outside the secret locations",
            path: "/home/alice/docs/salaries.xlsx",
            edit: |f| f.labels = vec![named("secret")],
            expect: &[
                (Misplaced, Critical, "label secret: locations"),
                (
                    Unregistered,
                    Medium,
                    "rules.unregistered_from: confidential",
                ),
            ],
            ..BASE
        },
        Case {
            name: "secret file in the secret locations but in no asset",
            path: "/srv/vault/other/salaries.xlsx",
            edit: |f| f.labels = vec![named("secret")],
            expect: &[(Unregistered, Medium, "rules.unregistered_from")],
            ..BASE
        },
        Case {
            name: "unlabeled file of a secret asset inherits secret, inside /srv/vault",
            path: "/srv/vault/hr/contract.pdf",
            edit: |f| {
                f.group = user("hr", 3000);
                f.mode = 0o640;
            },
            host: "anything",
            ..BASE
        },
        // misplaced: asset hosts
        Case {
            name: "acme file on a host the asset does not list",
            host: "ws-bob",
            expect: &[(Misplaced, High, "asset ACME-2026: hosts")],
            ..BASE
        },
        Case {
            name: "acme file on a build host (glob build-*)",
            host: "build-eu-17",
            ..BASE
        },
        Case {
            name: "acme file on a listed literal host",
            host: "ws-alice",
            ..BASE
        },
        Case {
            name: "hostnames match case-insensitively",
            host: "Build-EU-17",
            ..BASE
        },
        Case {
            name: "literal hostnames match case-insensitively",
            host: "WS-Alice",
            ..BASE
        },
        Case {
            name: "host glob build-* needs the dash",
            host: "build",
            expect: &[(Misplaced, High, "asset ACME-2026: hosts")],
            ..BASE
        },
        Case {
            name: "literal host does not match a longer name",
            host: "ws-alice2",
            expect: &[(Misplaced, High, "asset ACME-2026: hosts")],
            ..BASE
        },
        Case {
            name: "asset without hosts may live on any host",
            path: "/srv/projects/roadmap/q3.pptx",
            host: "some-laptop",
            edit: |f| f.group = user("staff", 100),
            ..BASE
        },
        // nested assets
        Case {
            name: "nested asset wins: internal brochure needs no encryption, any host",
            path: "/srv/projects/acme/public/brochure.pdf",
            host: "ws-bob",
            edit: plaintext,
            ..BASE
        },
        Case {
            name: "outer asset still applies next to the nested one",
            path: "/srv/projects/acme/publicity.pdf",
            edit: plaintext,
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "nested asset: acme-only owner list does not apply",
            path: "/srv/projects/acme/public/brochure.pdf",
            edit: |f| {
                f.owner = user("bob", 1001);
                f.group = user("staff", 100);
                f.mode = 0o640;
            },
            ..BASE
        },
        // unencrypted
        Case {
            name: "plaintext acme file",
            edit: plaintext,
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "partly encrypted acme file",
            edit: |f| f.encryption = EncryptionVerdict::new(EncryptionStatus::Partial, "zip"),
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "unknown encryption counts as a violation by default",
            edit: |f| f.encryption = EncryptionVerdict::default(),
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "unknown encryption with unknown_encryption = ignore",
            rules: r#"unknown_encryption = "ignore""#,
            edit: |f| f.encryption = EncryptionVerdict::new(EncryptionStatus::Unknown, "ole"),
            ..BASE
        },
        Case {
            name: "plaintext is still a violation with unknown_encryption = ignore",
            rules: r#"unknown_encryption = "ignore""#,
            edit: plaintext,
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "partial is still a violation with unknown_encryption = ignore",
            rules: r#"unknown_encryption = "ignore""#,
            edit: |f| f.encryption = EncryptionVerdict::new(EncryptionStatus::Partial, "zip"),
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        Case {
            name: "plaintext file of an internal asset that does not require encryption",
            path: "/srv/projects/roadmap/q3.pptx",
            edit: |f| {
                plaintext(f);
                f.group = user("staff", 100);
            },
            ..BASE
        },
        Case {
            name: "confidential-labeled plaintext file in an optional asset: its label requires",
            path: "/srv/projects/roadmap/customer.xlsx",
            edit: |f| {
                plaintext(f);
                f.group = user("staff", 100);
                f.labels = vec![named("confidential")];
            },
            expect: &[(Unencrypted, High, "label confidential: encryption")],
            ..BASE
        },
        Case {
            name: "unlabeled plaintext file of a confidential asset that waives encryption",
            path: "/srv/projects/globex/payroll.csv",
            now: (2026, 1, 15, 12, 0, 0),
            edit: |f| {
                plaintext(f);
                f.group = user("globex", 4000);
            },
            ..BASE
        },
        Case {
            name: "confidential plaintext file outside every asset",
            path: "/home/alice/notes/customer.docx",
            edit: |f| {
                plaintext(f);
                f.labels = vec![named("confidential")];
            },
            expect: &[
                (Unencrypted, High, "label confidential: encryption"),
                (Unregistered, Medium, "rules.unregistered_from"),
            ],
            ..BASE
        },
        Case {
            name: "internal plaintext file outside every asset",
            path: "/home/alice/notes/plan.docx",
            edit: |f| {
                plaintext(f);
                f.labels = vec![named("internal")];
            },
            ..BASE
        },
        // expired
        Case {
            name: "the deadline day itself is not expired (last second)",
            now: (2026, 12, 31, 23, 59, 59),
            ..BASE
        },
        Case {
            name: "the deadline day itself is not expired (first second)",
            now: (2026, 12, 31, 0, 0, 0),
            ..BASE
        },
        Case {
            name: "the day after the deadline is expired (first second)",
            now: (2027, 1, 1, 0, 0, 0),
            expect: &[(Expired, High, "asset ACME-2026: access_until")],
            ..BASE
        },
        Case {
            name: "months after the deadline",
            now: (2027, 3, 1, 8, 0, 0),
            expect: &[(Expired, High, "asset ACME-2026: access_until")],
            ..BASE
        },
        Case {
            name: "deadline written as a bare TOML date",
            path: "/srv/projects/globex/payroll.csv",
            now: (2026, 4, 1, 0, 0, 0),
            edit: |f| f.group = user("globex", 4000),
            expect: &[(Expired, High, "asset GLOBEX: access_until")],
            ..BASE
        },
        Case {
            name: "asset without a deadline never expires",
            path: "/srv/projects/roadmap/q3.pptx",
            now: (2099, 1, 1, 0, 0, 0),
            edit: |f| f.group = user("staff", 100),
            ..BASE
        },
        Case {
            name: "expired file outside its asset's location (named by hint)",
            path: "/home/alice/acme.xlsx",
            now: (2027, 1, 2, 0, 0, 0),
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[
                (Misplaced, High, "asset ACME-2026: locations"),
                (Expired, High, "asset ACME-2026: access_until"),
            ],
            ..BASE
        },
        Case {
            name: "expired severity comes from [severity]",
            severity: r#"expired = "critical""#,
            now: (2027, 1, 1, 0, 0, 0),
            expect: &[(Expired, Critical, "access_until")],
            ..BASE
        },
        // overexposed
        Case {
            name: "world-readable acme file",
            edit: |f| f.mode = 0o644,
            expect: &[(Overexposed, High, "asset ACME-2026: members (world-access)")],
            ..BASE
        },
        Case {
            name: "world-executable only is still world access",
            edit: |f| f.mode = 0o701,
            expect: &[(Overexposed, High, "(world-access)")],
            ..BASE
        },
        Case {
            name: "member group with group bits",
            edit: |f| f.mode = 0o660,
            ..BASE
        },
        Case {
            name: "foreign group with group bits",
            edit: |f| {
                f.group = user("staff", 100);
                f.mode = 0o640;
            },
            expect: &[(Overexposed, High, "(foreign-group)")],
            ..BASE
        },
        Case {
            name: "foreign group without group bits",
            edit: |f| f.group = user("staff", 100),
            ..BASE
        },
        Case {
            name: "foreign group known only by gid",
            edit: |f| {
                f.group = Principal {
                    id: 2000,
                    name: None,
                };
                f.mode = 0o640;
            },
            expect: &[(Overexposed, High, "(foreign-group)")],
            ..BASE
        },
        Case {
            name: "foreign owner",
            edit: |f| f.owner = user("bob", 1001),
            expect: &[(Overexposed, High, "(foreign-owner)")],
            ..BASE
        },
        Case {
            name: "root owner is not reported",
            edit: |f| f.owner = user("root", 0),
            ..BASE
        },
        Case {
            name: "root owner without a name is not reported either",
            edit: |f| f.owner = Principal { id: 0, name: None },
            ..BASE
        },
        Case {
            name: "group-only members list says nothing about owners",
            path: "/srv/vault/hr/contract.pdf",
            host: "hr-fs-1",
            edit: |f| {
                f.owner = user("bob", 1001);
                f.group = user("hr", 3000);
                f.mode = 0o640;
            },
            ..BASE
        },
        Case {
            name: "group-only members list: foreign group is reported at the secret severity",
            path: "/srv/vault/hr/contract.pdf",
            edit: |f| {
                f.group = user("staff", 100);
                f.mode = 0o660;
            },
            expect: &[(Overexposed, Critical, "asset HR: members (foreign-group)")],
            ..BASE
        },
        Case {
            name: "world access is reported once even with a foreign group and owner",
            edit: |f| {
                f.owner = user("bob", 1001);
                f.group = user("staff", 100);
                f.mode = 0o666;
            },
            expect: &[(Overexposed, High, "(world-access)")],
            ..BASE
        },
        Case {
            name: "overexposed severity follows the asset when the file's label is lower",
            edit: |f| {
                f.labels = vec![named("internal")];
                f.mode = 0o604;
            },
            expect: &[
                (Overexposed, High, "(world-access)"),
                (Mislabeled, Medium, "asset ACME-2026: label"),
            ],
            ..BASE
        },
        Case {
            name: "world-readable file outside every asset is not overexposed",
            path: "/home/alice/notes/plan.docx",
            edit: |f| {
                f.labels = vec![named("internal")];
                f.mode = 0o666;
            },
            ..BASE
        },
        // unregistered
        Case {
            name: "confidential file covered by no asset",
            path: "/home/alice/docs/customer.docx",
            edit: |f| f.labels = vec![named("confidential")],
            expect: &[(
                Unregistered,
                Medium,
                "rules.unregistered_from: confidential",
            )],
            ..BASE
        },
        Case {
            name: "internal file covered by no asset (below unregistered_from)",
            path: "/home/alice/docs/plan.docx",
            edit: |f| f.labels = vec![named("internal")],
            ..BASE
        },
        Case {
            name: "unlabeled file covered by no asset",
            path: "/home/alice/docs/plan.docx",
            ..BASE
        },
        Case {
            name: "unmapped foreign label takes unknown_label (confidential) and is unregistered",
            path: "/home/alice/docs/vendor.docx",
            edit: |f| f.labels = vec![named("Vendor Restricted Plus")],
            expect: &[(Unregistered, Medium, "rules.unregistered_from")],
            ..BASE
        },
        Case {
            name: "unregistered severity comes from [severity]",
            severity: r#"unregistered = "low""#,
            path: "/home/alice/docs/customer.docx",
            edit: |f| f.labels = vec![named("confidential")],
            expect: &[(Unregistered, Low, "rules.unregistered_from")],
            ..BASE
        },
        // mislabeled
        Case {
            name: "internal label inside a confidential asset",
            edit: |f| f.labels = vec![named("internal")],
            expect: &[(Mislabeled, Medium, "asset ACME-2026: label")],
            ..BASE
        },
        Case {
            name: "public label inside a confidential asset",
            edit: |f| f.labels = vec![named("public")],
            expect: &[(Mislabeled, Medium, "asset ACME-2026: label")],
            ..BASE
        },
        Case {
            name: "higher label inside an internal asset is not mislabeled",
            path: "/srv/projects/roadmap/q3.pptx",
            edit: |f| {
                f.group = user("staff", 100);
                f.labels = vec![named("confidential")];
            },
            ..BASE
        },
        Case {
            name: "unlabeled file with require_labels_in_assets",
            rules: "require_labels_in_assets = true",
            expect: &[(Mislabeled, Low, "rules.require_labels_in_assets")],
            ..BASE
        },
        Case {
            name: "unlabeled file with require_labels_in_assets and no inheritance",
            rules: "require_labels_in_assets = true\ninherit_asset_label = false",
            expect: &[(Mislabeled, Low, "rules.require_labels_in_assets")],
            ..BASE
        },
        Case {
            name: "unlabeled file without require_labels_in_assets",
            rules: "require_labels_in_assets = false",
            ..BASE
        },
        Case {
            name: "labeled file with require_labels_in_assets",
            rules: "require_labels_in_assets = true",
            edit: |f| f.labels = vec![named("confidential")],
            ..BASE
        },
        Case {
            name: "mislabeled severities come from [severity]",
            severity: "mislabeled = \"high\"\nunlabeled = \"info\"",
            edit: |f| f.labels = vec![named("internal")],
            expect: &[(Mislabeled, High, "asset ACME-2026: label")],
            ..BASE
        },
        Case {
            name: "unlabeled severity comes from [severity]",
            rules: "require_labels_in_assets = true",
            severity: "mislabeled = \"high\"\nunlabeled = \"info\"",
            expect: &[(Mislabeled, Info, "rules.require_labels_in_assets")],
            ..BASE
        },
        Case {
            name: "lower-labeled file outside its asset's location is misplaced, not mislabeled",
            path: "/home/alice/work/acme.xlsx",
            edit: |f| {
                f.asset_hint = Some("ACME-2026".into());
                f.labels = vec![named("internal")];
            },
            expect: &[(Misplaced, High, "asset ACME-2026: locations")],
            ..BASE
        },
        // label inheritance
        Case {
            name: "inherited label makes forbidden locations apply to an unlabeled hinted file",
            path: "/tmp/acme.xlsx",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "rules.forbidden: /tmp/**")],
            ..BASE
        },
        Case {
            name: "without inheritance the same file is misplaced by its asset's locations",
            rules: "inherit_asset_label = false",
            path: "/tmp/acme.xlsx",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "asset ACME-2026: locations")],
            ..BASE
        },
        Case {
            name: "without inheritance an asset's encryption requirement still holds",
            rules: "inherit_asset_label = false",
            edit: plaintext,
            expect: &[(Unencrypted, High, "asset ACME-2026: encryption")],
            ..BASE
        },
        // several findings at once, one per kind
        Case {
            name: "everything wrong at once: one finding per kind",
            path: "/home/alice/acme-copy.xlsx",
            host: "ws-bob",
            now: (2027, 2, 1, 0, 0, 0),
            edit: |f| {
                f.asset_hint = Some("ACME-2026".into());
                f.labels = vec![
                    named("internal"),
                    with_id("9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"),
                ];
                f.mode = 0o666;
                f.owner = user("bob", 1001);
                plaintext(f);
            },
            expect: &[
                (Misplaced, High, "asset ACME-2026: locations"),
                (Unencrypted, High, "asset ACME-2026: encryption"),
                (Expired, High, "asset ACME-2026: access_until"),
                (Overexposed, High, "(world-access)"),
            ],
            ..BASE
        },
        Case {
            name: "misplaced by location and host: the location is reported",
            path: "/home/alice/acme.xlsx",
            host: "ws-bob",
            edit: |f| f.asset_hint = Some("ACME-2026".into()),
            expect: &[(Misplaced, High, "asset ACME-2026: locations")],
            ..BASE
        },
    ]
}

/// Problems with a finding that do not depend on the row: house style of messages, identity.
fn style_problems(f: &infoledger_policies::Finding) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, text) in [("message", &f.message), ("fix", &f.fix), ("rule", &f.rule)] {
        if text.trim().is_empty() {
            problems.push(format!("{what} is empty"));
        }
        if text.ends_with('.') {
            problems.push(format!("{what} ends with a period: {text}"));
        }
    }
    if f.message.chars().next().is_some_and(char::is_uppercase) {
        problems.push(format!("message is not lowercase: {}", f.message));
    }
    if f.fix.chars().next().is_some_and(char::is_uppercase) {
        problems.push(format!("fix is not lowercase: {}", f.fix));
    }
    problems
}

#[test]
fn every_case_yields_exactly_its_findings() {
    let mut failures = Vec::new();
    for case in cases() {
        let bundle = bundle_with(case.rules, case.severity);
        let mut facts = file(case.path);
        (case.edit)(&mut facts);
        let assessment = assess(&bundle, &facts, at(case.now), case.host);
        let got: Vec<(Kind, Severity, &str)> = assessment
            .findings
            .iter()
            .map(|f| (f.kind, f.severity, f.rule.as_str()))
            .collect();
        let matches = got.len() == case.expect.len()
            && got
                .iter()
                .zip(case.expect)
                .all(|(g, e)| g.0 == e.0 && g.1 == e.1 && g.2.contains(e.2));
        if !matches {
            failures.push(format!(
                "case `{}`:\n  expected {:?}\n  got      {:?}",
                case.name, case.expect, got
            ));
        }
        for f in &assessment.findings {
            for p in style_problems(f) {
                failures.push(format!("case `{}`: {:?}: {p}", case.name, f.kind));
            }
            let asset = assessment.asset.map(|a| a.id.clone());
            if f.asset != asset {
                failures.push(format!(
                    "case `{}`: {:?} names asset {:?}, the assessment {:?}",
                    case.name, f.kind, f.asset, asset
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn case_names_are_unique() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two table rows share a name");
}

#[test]
fn the_table_covers_every_kind() {
    let cases = cases();
    for kind in Kind::ALL {
        assert!(
            cases.iter().any(|c| c.expect.iter().any(|e| e.0 == kind)),
            "no row expects {kind}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Assessment: the asset and the label decisions were made with
// ---------------------------------------------------------------------------------------------

fn level_of(bundle: &Bundle, name: &str) -> Level {
    bundle
        .policy
        .label_named(name)
        .unwrap_or_else(|| panic!("no label {name}"))
        .level
}

#[test]
fn most_specific_location_wins_for_nested_assets() {
    let b = bundle();
    let now = at(MID_2026);
    let cases = [
        ("/srv/projects/acme/public/a.pdf", Some("ACME-PUBLIC")),
        (
            "/srv/projects/acme/public/deep/er/a.pdf",
            Some("ACME-PUBLIC"),
        ),
        ("/srv/projects/acme/public.pdf", Some("ACME-2026")),
        ("/srv/projects/acme/a/public/a.pdf", Some("ACME-2026")),
        ("/srv/projects/acme2/a.pdf", None),
        ("/srv/projects/a.pdf", None),
    ];
    for (path, want) in cases {
        let a = assess(&b, &file(path), now, "build-1");
        assert_eq!(a.asset.map(|a| a.id.as_str()), want, "path {path}");
    }
}

#[test]
fn nesting_does_not_depend_on_ledger_order() {
    // The same two assets with the nested one listed first.
    let ledger = r#"
[[asset]]
id = "INNER"
name = "inner"
department = "d"
administrator = "a@example.com"
label = "internal"
locations = ["/srv/p/x/y/**"]

[[asset]]
id = "OUTER"
name = "outer"
department = "d"
administrator = "a@example.com"
label = "confidential"
locations = ["/srv/p/**"]
"#;
    let (b, warnings) = Bundle::from_texts(
        &policy_text("", ""),
        Path::new("p.toml"),
        ledger,
        Path::new("l.toml"),
    )
    .expect("loads");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let now = at(MID_2026);
    let inner = assess(&b, &file("/srv/p/x/y/z.txt"), now, "h");
    assert_eq!(inner.asset.map(|a| a.id.as_str()), Some("INNER"));
    let outer = assess(&b, &file("/srv/p/x/z.txt"), now, "h");
    assert_eq!(outer.asset.map(|a| a.id.as_str()), Some("OUTER"));
}

#[test]
fn unlabeled_file_inherits_its_asset_label_only_when_the_policy_says_so() {
    let now = at(MID_2026);
    let facts = file("/srv/projects/acme/a.xlsx");

    let on = bundle_with("inherit_asset_label = true", "");
    let label = assess(&on, &facts, now, "build-1")
        .label
        .expect("inherited label");
    assert_eq!(label.level, level_of(&on, "confidential"));
    assert_eq!(label.source, LabelSource::Asset);
    assert!(label.mapped);

    let off = bundle_with("inherit_asset_label = false", "");
    assert_eq!(assess(&off, &facts, now, "build-1").label, None);

    // A detected label is never replaced by the asset's, even a lower one.
    let mut labeled = facts.clone();
    labeled.labels = vec![named("public")];
    let label = assess(&on, &labeled, now, "build-1")
        .label
        .expect("detected label");
    assert_eq!(label.level, level_of(&on, "public"));
    assert_eq!(label.source, LabelSource::Xattr);
}

#[test]
fn inherited_label_is_named_in_findings() {
    let b = bundle();
    let mut facts = file("/srv/projects/acme/a.xlsx");
    plaintext(&mut facts);
    let findings = evaluate(&b, &facts, at(MID_2026), "build-1");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].label.as_deref(), Some("confidential"));
    assert!(
        findings[0].message.contains("inherited from its asset"),
        "{}",
        findings[0].message
    );

    let off = bundle_with("inherit_asset_label = false", "");
    let findings = evaluate(&off, &facts, at(MID_2026), "build-1");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].label, None);
    assert!(
        findings[0].message.starts_with("unlabeled"),
        "{}",
        findings[0].message
    );
}

/// One detected label and what the policy must make of it.
struct AliasCase {
    name: &'static str,
    label: DetectedLabel,
    level: &'static str,
    mapped: bool,
}

fn alias_cases() -> Vec<AliasCase> {
    let both = |id: &str, name: &str| DetectedLabel {
        name: Some(name.to_string()),
        ..with_id(id)
    };
    vec![
        AliasCase {
            name: "policy name",
            label: named("confidential"),
            level: "confidential",
            mapped: true,
        },
        AliasCase {
            name: "policy name in another case, with spaces around",
            label: named("  CONFIDENTIAL "),
            level: "confidential",
            mapped: true,
        },
        AliasCase {
            name: "alias",
            label: named("Highly Sensitive Customer Data"),
            level: "confidential",
            mapped: true,
        },
        AliasCase {
            name: "alias in another case",
            label: named("highly CONFIDENTIAL"),
            level: "secret",
            mapped: true,
        },
        AliasCase {
            name: "guid written with braces and upper case in the policy, plain in the file",
            label: with_id("3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d"),
            level: "confidential",
            mapped: true,
        },
        AliasCase {
            name: "guid with braces and upper case in the file",
            label: with_id("{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}"),
            level: "confidential",
            mapped: true,
        },
        AliasCase {
            name: "guid with braces in the file, plain in the policy",
            label: with_id("{9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112}"),
            level: "internal",
            mapped: true,
        },
        AliasCase {
            name: "guid in upper case in the file, lower case in the policy",
            label: with_id("5F1D2C3B-4A59-4E6F-8A7B-9C0D1E2F3A4B"),
            level: "secret",
            mapped: true,
        },
        AliasCase {
            name: "the id decides over a conflicting name",
            label: both(
                "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112",
                "Highly Confidential",
            ),
            level: "internal",
            mapped: true,
        },
        AliasCase {
            name: "an unknown id falls back to the name",
            label: both("00000000-0000-0000-0000-000000000000", "General"),
            level: "internal",
            mapped: true,
        },
        AliasCase {
            name: "an unknown name takes unknown_label",
            label: named("Acme Corp Top Secret"),
            level: "confidential",
            mapped: false,
        },
        AliasCase {
            name: "an unknown id alone takes unknown_label",
            label: with_id("11111111-2222-3333-4444-555555555555"),
            level: "confidential",
            mapped: false,
        },
        AliasCase {
            name: "a label with neither id nor name takes unknown_label",
            label: DetectedLabel {
                id: None,
                ..with_id("")
            },
            level: "confidential",
            mapped: false,
        },
        AliasCase {
            name: "a mip: alias is not a name",
            label: named("mip:9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"),
            level: "confidential",
            mapped: false,
        },
    ]
}

#[test]
fn foreign_labels_map_through_aliases() {
    let b = bundle();
    let mut failures = Vec::new();
    for case in alias_cases() {
        let mut facts = file("/home/alice/docs/x.docx");
        facts.labels = vec![case.label.clone()];
        let Some(label) = assess(&b, &facts, at(MID_2026), "h").label else {
            failures.push(format!("case `{}`: no label", case.name));
            continue;
        };
        let got = &b.policy.label(label.level).name;
        if got != case.level || label.mapped != case.mapped {
            failures.push(format!(
                "case `{}`: expected {} (mapped {}), got {got} (mapped {})",
                case.name, case.level, case.mapped, label.mapped
            ));
        }
        // resolve() is what evaluation uses; both must agree.
        let r = b.policy.resolve(&case.label);
        if r.level != label.level || r.mapped != label.mapped {
            failures.push(format!("case `{}`: resolve disagrees: {r:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_label_level_is_configurable() {
    let policy = format!(
        "{LABELS}\n[rules]\nforbidden = [\"/tmp/**\"]\nunknown_label = \"public\"\nunregistered_from = \"confidential\"\n"
    );
    let (b, _) = Bundle::from_texts(&policy, Path::new("p.toml"), LEDGER, Path::new("l.toml"))
        .expect("loads");
    let mut facts = file("/home/alice/docs/x.docx");
    facts.labels = vec![named("Acme Corp Top Secret")];
    let a = assess(&b, &facts, at(MID_2026), "h");
    let label = a.label.expect("label");
    assert_eq!(label.level, level_of(&b, "public"));
    assert!(!label.mapped);
    // Public is below unregistered_from: nothing to report.
    assert_eq!(a.findings, vec![]);
    // The message says when a label was not mapped, so managers can extend the aliases.
    facts.path = PathBuf::from("/home/alice/docs/y.docx");
    facts.labels = vec![named("Acme Corp Top Secret")];
    let b2 = bundle();
    let findings = evaluate(&b2, &facts, at(MID_2026), "h");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0].message.contains("unmapped foreign label"),
        "{}",
        findings[0].message
    );
}

#[test]
fn the_strongest_of_several_labels_wins() {
    let b = bundle();
    let marking = DetectedLabel {
        source: LabelSource::Marking,
        ..named("internal")
    };
    let mut facts = file("/home/alice/docs/x.docx");
    facts.labels = vec![
        marking,
        with_id("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"),
        named("public"),
    ];
    let label = assess(&b, &facts, at(MID_2026), "h").label.expect("label");
    assert_eq!(label.level, level_of(&b, "secret"));
    assert_eq!(label.source, LabelSource::LabelInfo);

    // An unmapped label counts at unknown_label (confidential), above a mapped internal one.
    facts.labels = vec![named("internal"), named("Vendor Thing")];
    let label = assess(&b, &facts, at(MID_2026), "h").label.expect("label");
    assert_eq!(label.level, level_of(&b, "confidential"));
    assert!(!label.mapped);

    // Order in the file does not matter.
    facts.labels = vec![named("secret"), named("public")];
    let a = assess(&b, &facts, at(MID_2026), "h").label;
    facts.labels.reverse();
    assert_eq!(assess(&b, &facts, at(MID_2026), "h").label, a);
}

#[test]
fn disabled_labels_are_ignored() {
    let b = bundle();
    let mut facts = file("/home/alice/docs/x.docx");
    let mut secret = with_id("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b");
    secret.enabled = Some(false);
    facts.labels = vec![secret.clone(), named("internal")];
    let label = assess(&b, &facts, at(MID_2026), "h").label.expect("label");
    assert_eq!(label.level, level_of(&b, "internal"));
    facts.labels = vec![secret.clone()];
    assert_eq!(assess(&b, &facts, at(MID_2026), "h").label, None);
    secret.enabled = Some(true);
    facts.labels = vec![secret];
    let label = assess(&b, &facts, at(MID_2026), "h").label.expect("label");
    assert_eq!(label.level, level_of(&b, "secret"));
}

#[test]
fn a_lower_label_next_to_the_asset_label_is_not_mislabeled() {
    // Strongest wins: a file carrying both internal and confidential inside ACME is fine.
    let b = bundle();
    let mut facts = file("/srv/projects/acme/a.xlsx");
    facts.labels = vec![named("internal"), named("confidential")];
    assert_eq!(evaluate(&b, &facts, at(MID_2026), "build-1"), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Severities
// ---------------------------------------------------------------------------------------------

#[test]
fn label_severities_default_by_rank_and_can_be_set() {
    let b = bundle();
    let sev: Vec<Severity> = b.policy.labels().iter().map(|l| l.severity).collect();
    assert_eq!(sev, vec![Low, Medium, High, Critical]);

    let policy = r#"
[[label]]
name = "internal"

[[label]]
name = "confidential"
severity = "medium"

[rules]
forbidden = ["**/Downloads/**"]
misplaced_from = "internal"
"#;
    let (b, _) =
        Bundle::from_texts(policy, Path::new("p.toml"), "", Path::new("l.toml")).expect("loads");
    let mut facts = file("/home/bob/Downloads/a.xlsx");
    facts.labels = vec![named("confidential")];
    let findings = evaluate(&b, &facts, at(MID_2026), "h");
    let got: Vec<(Kind, Severity)> = findings.iter().map(|f| (f.kind, f.severity)).collect();
    // Two labels: confidential would default to critical; the policy says medium. It is the top
    // label, so it is also unregistered_from and unknown_label by default, but the forbidden
    // location suppresses unregistered.
    assert_eq!(got, vec![(Misplaced, Medium)]);

    facts.labels = vec![named("internal")];
    let findings = evaluate(&b, &facts, at(MID_2026), "h");
    let got: Vec<(Kind, Severity)> = findings.iter().map(|f| (f.kind, f.severity)).collect();
    assert_eq!(
        got,
        vec![(Misplaced, High)],
        "second-highest label defaults to high"
    );
}

#[test]
fn fixed_severities_default_and_override() {
    let b = bundle();
    assert_eq!(b.policy.fixed_severity(Expired), Some(High));
    assert_eq!(b.policy.fixed_severity(Unregistered), Some(Medium));
    assert_eq!(b.policy.fixed_severity(Misplaced), None);
    assert_eq!(b.policy.severities.mislabeled, Medium);
    assert_eq!(b.policy.severities.unlabeled, Low);

    let b = bundle_with(
        "",
        "expired = \"low\"\nunregistered = \"critical\"\nmislabeled = \"info\"\nunlabeled = \"high\"",
    );
    assert_eq!(b.policy.fixed_severity(Expired), Some(Low));
    assert_eq!(b.policy.fixed_severity(Unregistered), Some(Critical));
    assert_eq!(b.policy.severities.mislabeled, Info);
    assert_eq!(b.policy.severities.unlabeled, High);
}

// ---------------------------------------------------------------------------------------------
// Messages and fixes: which file, why, how to fix
// ---------------------------------------------------------------------------------------------

fn only(findings: Vec<infoledger_policies::Finding>, kind: Kind) -> infoledger_policies::Finding {
    let mut of_kind: Vec<_> = findings.into_iter().filter(|f| f.kind == kind).collect();
    assert_eq!(
        of_kind.len(),
        1,
        "expected one {kind} finding: {of_kind:#?}"
    );
    of_kind.remove(0)
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{text}` does not mention `{p}`");
    }
}

#[test]
fn forbidden_location_names_the_glob_and_where_the_file_belongs() {
    let b = bundle();
    let mut facts = file("/home/alice/Downloads/acme.xlsx");
    facts.asset_hint = Some("ACME-2026".into());
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Misplaced);
    assert_eq!(f.rule, "rules.forbidden: **/Downloads/**");
    assert_eq!(f.asset.as_deref(), Some("ACME-2026"));
    assert_eq!(f.label.as_deref(), Some("confidential"));
    assert_contains(&f.message, &["forbidden location", "`**/Downloads/**`"]);
    assert_contains(
        &f.fix,
        &[
            "move it under /srv/projects/acme/",
            "ACME-2026",
            "/srv/projects/acme/**",
        ],
    );
}

#[test]
fn forbidden_location_without_asset_suggests_registering_or_moving() {
    let b = bundle();
    let mut facts = file("/home/alice/Downloads/x.docx");
    facts.labels = vec![named("confidential")];
    let f = only(evaluate(&b, &facts, at(MID_2026), "h"), Misplaced);
    assert_contains(
        &f.message,
        &["confidential (from xattr)", "`**/Downloads/**`"],
    );
    assert_contains(&f.fix, &["move it", "ledger asset", "remove it"]);
}

#[test]
fn outside_asset_location_names_asset_and_target_directory() {
    let b = bundle();
    let mut facts = file("/home/alice/acme.xlsx");
    facts.asset_hint = Some("ACME-2026".into());
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Misplaced);
    assert_contains(&f.message, &["ACME-2026", "ACME migration", "outside"]);
    assert_contains(
        &f.fix,
        &["move it under /srv/projects/acme/", "/srv/projects/acme/**"],
    );
}

#[test]
fn label_location_names_the_allowed_globs() {
    let b = bundle();
    let mut facts = file("/home/alice/s.pdf");
    facts.labels = vec![named("secret")];
    let f = only(evaluate(&b, &facts, at(MID_2026), "h"), Misplaced);
    assert_eq!(f.rule, "label secret: locations");
    assert_contains(&f.fix, &["secret", "/srv/vault/**"]);

    // Inside its asset the advice is about the label's locations, not the asset's folder.
    let mut facts = file("/srv/projects/acme/s.pdf");
    facts.labels = vec![named("secret")];
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Misplaced);
    assert_eq!(f.rule, "label secret: locations");
    assert_contains(&f.fix, &["/srv/vault/**", "relabel it"]);
    assert!(
        !f.fix.contains("move it under /srv/projects/acme/"),
        "{}",
        f.fix
    );
}

#[test]
fn wrong_host_names_host_patterns_and_administrator() {
    let b = bundle();
    let f = only(
        evaluate(
            &b,
            &file("/srv/projects/acme/a.xlsx"),
            at(MID_2026),
            "ws-bob",
        ),
        Misplaced,
    );
    assert_contains(&f.message, &["ACME-2026", "`ws-bob`", "build-*, ws-alice"]);
    assert_contains(
        &f.fix,
        &["remove it from this host", "alice@example.com", "ACME-2026"],
    );
}

#[test]
fn unencrypted_names_requirement_verdict_and_path() {
    let b = bundle();
    let mut facts = file("/srv/projects/acme/Q3 forecast.xlsx");
    plaintext(&mut facts);
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Unencrypted);
    assert_contains(
        &f.message,
        &[
            "asset ACME-2026 requires encryption",
            "is not encrypted",
            "plaintext (text)",
        ],
    );
    // The path is quoted for the shell because it contains a space.
    assert_contains(
        &f.fix,
        &["encrypt it", "'/srv/projects/acme/Q3 forecast.xlsx'"],
    );

    facts.encryption = EncryptionVerdict::new(EncryptionStatus::Partial, "zip");
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Unencrypted);
    assert_contains(&f.message, &["only partly encrypted", "partial (zip)"]);

    facts.encryption = EncryptionVerdict::default();
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Unencrypted);
    assert_contains(
        &f.message,
        &["could not be shown to be encrypted", "unknown"],
    );
}

#[test]
fn expired_names_the_deadline_days_and_administrator() {
    let b = bundle();
    let facts = file("/srv/projects/acme/a.xlsx");
    let f = only(
        evaluate(&b, &facts, at((2027, 1, 1, 0, 0, 0)), "build-1"),
        Expired,
    );
    assert_contains(
        &f.message,
        &["ACME-2026", "ended on 2026-12-31", "1 day ago"],
    );
    assert!(!f.message.contains("1 days"), "{}", f.message);
    assert_contains(
        &f.fix,
        &["delete or archive", "alice@example.com", "access_until"],
    );

    let f = only(
        evaluate(&b, &facts, at((2027, 3, 1, 0, 0, 0)), "build-1"),
        Expired,
    );
    assert_contains(&f.message, &["60 days ago"]);
}

#[test]
fn overexposed_fixes_are_commands_for_the_file() {
    let b = bundle();
    let now = at(MID_2026);
    let mut facts = file("/srv/projects/acme/a.xlsx");
    facts.mode = 0o644;
    let f = only(evaluate(&b, &facts, now, "build-1"), Overexposed);
    assert_contains(
        &f.message,
        &["every user", "0644", "ACME-2026", "user:alice, group:acme"],
    );
    assert_eq!(f.fix, "chmod o-rwx /srv/projects/acme/a.xlsx");

    facts.mode = 0o640;
    facts.group = user("staff", 100);
    let f = only(evaluate(&b, &facts, now, "build-1"), Overexposed);
    assert_contains(&f.message, &["group `staff`", "0640", "ACME-2026"]);
    assert_contains(
        &f.fix,
        &[
            "chgrp acme /srv/projects/acme/a.xlsx",
            "chmod g-rwx /srv/projects/acme/a.xlsx",
        ],
    );

    facts.mode = 0o600;
    facts.owner = user("bob", 1001);
    let f = only(evaluate(&b, &facts, now, "build-1"), Overexposed);
    assert_contains(&f.message, &["owner `bob`", "ACME-2026"]);
    assert_contains(
        &f.fix,
        &["chown", "alice@example.com", "user:bob", "ACME-2026"],
    );
}

#[test]
fn unregistered_and_mislabeled_fixes_say_what_to_do() {
    let b = bundle();
    let now = at(MID_2026);
    let mut facts = file("/home/alice/docs/customer.docx");
    facts.labels = vec![named("confidential")];
    let f = only(evaluate(&b, &facts, now, "h"), Unregistered);
    assert_eq!(f.asset, None);
    assert_contains(&f.message, &["confidential", "no ledger asset"]);
    assert_contains(&f.fix, &["register"]);

    let mut facts = file("/srv/projects/acme/a.xlsx");
    facts.labels = vec![named("internal")];
    let f = only(evaluate(&b, &facts, now, "build-1"), Mislabeled);
    assert_contains(&f.message, &["internal", "ACME-2026", "confidential"]);
    assert_eq!(f.fix, "relabel it as confidential");

    let b = bundle_with("require_labels_in_assets = true", "");
    let facts = file("/srv/projects/acme/a.xlsx");
    let f = only(evaluate(&b, &facts, now, "build-1"), Mislabeled);
    assert_contains(&f.message, &["unlabeled", "ACME-2026"]);
    assert_contains(
        &f.fix,
        &["setfattr -n user.infoledger.label -v confidential /srv/projects/acme/a.xlsx"],
    );
}

#[test]
fn paths_with_quotes_are_quoted_safely_in_fixes() {
    let b = bundle();
    let mut facts = file("/srv/projects/acme/bob's $HOME.xlsx");
    facts.mode = 0o644;
    let f = only(evaluate(&b, &facts, at(MID_2026), "build-1"), Overexposed);
    assert_eq!(
        f.fix,
        r"chmod o-rwx '/srv/projects/acme/bob'\''s $HOME.xlsx'"
    );
}

// ---------------------------------------------------------------------------------------------
// Example bundle: the README's quick start relies on these
// ---------------------------------------------------------------------------------------------

#[test]
fn example_bundle_flags_the_readme_scenarios() {
    let b = Bundle::example().expect("example bundle loads");
    let now = at((2026, 6, 1, 9, 0, 0));
    let kinds = |facts: &FileFacts, host: &str| -> Vec<Kind> {
        evaluate(&b, facts, now, host)
            .iter()
            .map(|f| f.kind)
            .collect()
    };

    let mut downloads = file("/home/alice/Downloads/acme-customers.xlsx");
    downloads.labels = vec![with_id("{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}")];
    assert_eq!(kinds(&downloads, "ws-alice"), vec![Misplaced]);

    let mut globex = file("/srv/projects/globex/payroll.csv");
    globex.group = user("globex", 4000);
    assert_eq!(kinds(&globex, "build-1"), vec![Expired]);

    let mut open = file("/srv/projects/acme/export.csv");
    open.mode = 0o644;
    plaintext(&mut open);
    assert_eq!(kinds(&open, "build-1"), vec![Unencrypted, Overexposed]);

    let mut shadow = file("/srv/shared/customers.xlsx");
    shadow.labels = vec![named("Confidential")];
    assert_eq!(kinds(&shadow, "build-1"), vec![Unregistered]);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_segment() -> impl Strategy<Value = String> {
    // Never `.` or `..` (paths come canonical from the agent) and never a forbidden component.
    "[A-Za-z0-9_][A-Za-z0-9_ .,+@-]{0,11}".prop_filter("forbidden component", |s| s != "Downloads")
}

fn arb_rel_path() -> impl Strategy<Value = String> {
    prop::collection::vec(arb_segment(), 1..5).prop_map(|v| v.join("/"))
}

fn arb_label() -> impl Strategy<Value = DetectedLabel> {
    let names = prop::sample::select(vec![
        "public",
        "INTERNAL",
        "Confidential",
        "secret",
        "General",
        "Highly Confidential",
        "Vendor Restricted",
        "",
    ]);
    let ids = prop::sample::select(vec![
        "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
        "{5F1D2C3B-4A59-4E6F-8A7B-9C0D1E2F3A4B}",
        "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112",
        "00000000-0000-0000-0000-000000000000",
        "not a guid",
    ]);
    let sources = prop::sample::select(vec![
        LabelSource::Xattr,
        LabelSource::Marking,
        LabelSource::LabelInfo,
        LabelSource::CustomProperties,
        LabelSource::PdfInfo,
        LabelSource::PdfXmp,
    ]);
    (sources, prop::option::of(ids), prop::option::of(names)).prop_map(|(source, id, name)| {
        DetectedLabel {
            id: id.map(String::from),
            name: name.map(String::from),
            ..DetectedLabel::new(source)
        }
    })
}

fn arb_principal() -> impl Strategy<Value = Principal> {
    (
        0u32..3000,
        prop::option::of(prop::sample::select(vec![
            "alice", "bob", "root", "acme", "staff", "hr", "globex", "dave",
        ])),
    )
        .prop_map(|(id, name)| Principal {
            id,
            name: name.map(String::from),
        })
}

fn arb_status() -> impl Strategy<Value = EncryptionStatus> {
    prop::sample::select(vec![
        EncryptionStatus::Encrypted,
        EncryptionStatus::Partial,
        EncryptionStatus::Plaintext,
        EncryptionStatus::Unknown,
    ])
}

/// Any facts, placed in and around the example bundle's assets and forbidden locations.
fn arb_facts() -> impl Strategy<Value = FileFacts> {
    let roots = prop::sample::select(vec![
        "/srv/projects/acme",
        "/srv/projects/globex",
        "/srv/vault/hr",
        "/srv/vault",
        "/srv/projects/roadmap",
        "/home/carol/roadmap",
        "/home/alice/Downloads",
        "/tmp",
        "/media/usb",
        "/srv/shared",
    ]);
    let hints = prop::option::of(prop::sample::select(vec![
        "ACME-2026",
        "GLOBEX-2025",
        "HR-PERSONNEL",
        "NOPE",
    ]));
    (
        roots,
        arb_rel_path(),
        arb_principal(),
        arb_principal(),
        0u32..0o10000,
        prop::collection::vec(arb_label(), 0..4),
        hints,
        arb_status(),
    )
        .prop_map(
            |(root, rel, owner, group, mode, labels, hint, status)| FileFacts {
                path: PathBuf::from(format!("{root}/{rel}")),
                owner,
                group,
                mode,
                size: 1,
                mtime: 0,
                labels,
                asset_hint: hint.map(String::from),
                encryption: EncryptionVerdict::new(status, "test"),
            },
        )
}

fn arb_now() -> impl Strategy<Value = DateTime<Utc>> {
    // 2020-01-01 .. 2030-01-01
    (1_577_836_800i64..1_893_456_000)
        .prop_map(|s| DateTime::from_timestamp(s, 0).expect("timestamp in range"))
}

proptest! {
    #[test]
    fn evaluation_is_deterministic(
        facts in arb_facts(),
        now in arb_now(),
        host in prop::sample::select(vec!["build-1", "ws-alice", "hr-fs-2", "laptop"]),
    ) {
        let bundle = Bundle::example().expect("example bundle loads");
        let first = evaluate(&bundle, &facts, now, host);
        let second = evaluate(&bundle, &facts, now, host);
        prop_assert_eq!(&first, &second);
        // A second bundle loaded from the same text decides the same.
        let again = Bundle::example().expect("example bundle loads");
        prop_assert_eq!(&first, &evaluate(&again, &facts, now, host));
        // assess and evaluate agree.
        prop_assert_eq!(&first, &assess(&bundle, &facts, now, host).findings);
        // At most one finding per kind, in Kind::ALL order.
        prop_assert!(first.windows(2).all(|w| w[0].kind < w[1].kind), "{:?}", first);
        // Facts survive the trip to the collector: the server re-evaluates what it stored.
        let json = serde_json::to_string(&facts).expect("facts serialize");
        let stored: FileFacts = serde_json::from_str(&json).expect("facts deserialize");
        prop_assert_eq!(&first, &evaluate(&bundle, &stored, now, host));
    }
}

/// An asset and a file that satisfies it, generated together.
#[derive(Debug, Clone)]
struct Compliant {
    ledger: String,
    rules: String,
    facts: FileFacts,
    now: DateTime<Utc>,
    host: String,
}

/// An asset next to the generated one, which the generated file must not be attributed to.
const OTHER_ASSET: &str = r#"
[[asset]]
id = "OTHER-ASSET"
name = "other"
department = "d"
administrator = "a@example.com"
label = "secret"
locations = ["/srv/vault/OTHER/**"]
members = ["group:nobody"]
"#;

/// Label names of the property policy, lowest first, with the MIP label id each one maps.
const PROP_LABELS: [(&str, &str); 4] = [
    ("public", "aaaaaaaa-0000-4000-8000-000000000001"),
    ("internal", "bbbbbbbb-0000-4000-8000-000000000002"),
    ("confidential", "cccccccc-0000-4000-8000-000000000003"),
    ("secret", "dddddddd-0000-4000-8000-000000000004"),
];

fn prop_policy(rules: &str) -> String {
    let mut text = String::new();
    for (i, (name, id)) in PROP_LABELS.iter().enumerate() {
        text.push_str(&format!(
            "[[label]]\nname = \"{name}\"\naliases = [\"mip:{{{id}}}\"]\n"
        ));
        if i >= 2 {
            text.push_str("encryption = \"required\"\n");
        }
        if *name == "secret" {
            text.push_str("locations = [\"/srv/vault/**\"]\n");
        }
    }
    text.push_str(&format!(
        r#"[rules]
forbidden = ["**/Downloads/**", "/tmp/**", "/media/**"]
misplaced_from = "public"
unregistered_from = "internal"
{rules}
"#
    ));
    text
}

/// Varies the case of ASCII letters: label names and ids are matched case-insensitively.
fn recase(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 64)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn arb_compliant() -> impl Strategy<Value = Compliant> {
    let ident = "[a-z_][a-z0-9_]{0,11}";
    (
        (
            "[A-Z][A-Z0-9_-]{0,15}", // asset id
            0usize..4,               // asset label
            prop::sample::select(vec!["/srv/projects", "/data", "/home/u/work", "/srv/vault"]),
            "[a-z][a-z0-9_-]{0,10}", // asset directory
            arb_rel_path(),          // file below it
            prop::option::of(prop::sample::select(vec!["required", "optional"])),
        ),
        (
            ident,         // member user
            ident,         // member group
            any::<bool>(), // file group is the member group
            0u32..8,       // owner bits
            0u32..8,       // group bits (if member group)
            any::<bool>(), // owner is root
        ),
        (
            prop::option::of(("[a-z][a-z0-9]{0,8}", "[a-z0-9]{1,6}")), // host prefix and suffix
            prop::option::of(0i64..20_000),                            // deadline, days after 2000
            prop_oneof![Just(0i64), Just(1), 0i64..3650],              // days before the deadline
            prop_oneof![Just(0i64), Just(86_399), 0i64..86_400],       // second of the day
        ),
        (
            any::<bool>(),               // label by id or by name
            any::<u64>(),                // case mask
            prop::option::of(0usize..4), // an extra, lower label
            any::<bool>(),               // require_labels_in_assets
            any::<bool>(),               // inherit_asset_label
        ),
    )
        .prop_map(
            |(
                (id, level, root, dir, rel, encryption),
                (member, group, member_group, owner_bits, group_bits, root_owner),
                (host, deadline, before, second),
                (by_id, mask, extra, require, inherit),
            )| {
                // Secret files may only live under /srv/vault.
                let root = if level == 3 { "/srv/vault" } else { root };
                let location = format!("{root}/{dir}/**");
                let mut ledger = format!(
                    r#"[[asset]]
id = "{id}"
name = "generated"
department = "d"
administrator = "a@example.com"
label = "{label}"
locations = ["{location}"]
members = ["user:{member}", "group:{group}"]
"#,
                    label = PROP_LABELS[level].0
                );
                if let Some(e) = encryption {
                    ledger.push_str(&format!("encryption = \"{e}\"\n"));
                }
                let host = match host {
                    Some((prefix, suffix)) => {
                        ledger.push_str(&format!("hosts = [\"{prefix}-*\"]\n"));
                        recase(&format!("{prefix}-{suffix}"), mask)
                    }
                    None => "any-host".to_string(),
                };
                let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
                let now_date = match deadline {
                    Some(days) => {
                        let until = epoch + chrono::Days::new(days as u64);
                        ledger.push_str(&format!("access_until = \"{until}\"\n"));
                        until - chrono::Days::new(before as u64)
                    }
                    None => epoch + chrono::Days::new(before as u64 * 3),
                };
                let now = now_date.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
                    + chrono::Duration::seconds(second);
                // A second asset elsewhere, so the file must find the right one.
                ledger.push_str(OTHER_ASSET);

                let (name, guid) = PROP_LABELS[level];
                let own = if by_id {
                    DetectedLabel {
                        id: Some(recase(&format!("{{{guid}}}"), mask)),
                        ..DetectedLabel::new(LabelSource::LabelInfo)
                    }
                } else {
                    named(&recase(name, mask))
                };
                let mut labels = vec![own];
                if let Some(lower) = extra.filter(|l| *l < level) {
                    labels.insert(0, named(PROP_LABELS[lower].0));
                }
                let (group_principal, mode_group) = if member_group {
                    (user(&group, 2000), group_bits << 3)
                } else {
                    (user(&format!("{group}x"), 2001), 0)
                };
                let owner = if root_owner {
                    user("root", 0)
                } else {
                    user(&member, 1000)
                };
                let facts = FileFacts {
                    path: PathBuf::from(format!("{root}/{dir}/{rel}")),
                    owner,
                    group: group_principal,
                    mode: (owner_bits << 6) | mode_group,
                    size: 10,
                    mtime: 0,
                    labels,
                    asset_hint: None,
                    encryption: EncryptionVerdict::new(EncryptionStatus::Encrypted, "test"),
                };
                let rules = format!(
                    "require_labels_in_assets = {require}\ninherit_asset_label = {inherit}\n"
                );
                Compliant {
                    ledger,
                    rules,
                    facts,
                    now,
                    host,
                }
            },
        )
}

proptest! {
    #[test]
    fn a_compliant_file_yields_no_finding(c in arb_compliant()) {
        let policy = prop_policy(&c.rules);
        let (bundle, _) = Bundle::from_texts(
            &policy,
            Path::new("p.toml"),
            &c.ledger,
            Path::new("l.toml"),
        )
        .map_err(|e| TestCaseError::fail(format!("generated bundle does not load:\n{e}\n{}", c.ledger)))?;
        let a = assess(&bundle, &c.facts, c.now, &c.host);
        prop_assert!(
            a.asset.is_some_and(|x| x.id != "OTHER-ASSET"),
            "file not attributed to its asset: {:?}", a.asset.map(|x| &x.id)
        );
        prop_assert_eq!(a.findings, vec![]);
        // The same file, now named by its asset explicitly, is still compliant.
        let mut hinted = c.facts.clone();
        hinted.asset_hint = a.asset.map(|x| x.id.clone());
        prop_assert_eq!(evaluate(&bundle, &hinted, c.now, &c.host), vec![]);
    }
}
