//! Loading the policy and the ledger: valid files load, every kind of mistake is reported with
//! its file, line and column and a message a person can act on, all mistakes of a file are
//! reported at once, CSV ledgers behave like TOML ones, and no input makes the loaders panic.

use std::path::Path;

use chrono::NaiveDate;
use infoledger_policies::{
    evaluate, Bundle, Diagnostic, DiagnosticLevel, EncryptionRequirement, EncryptionStatus,
    EncryptionVerdict, FileFacts, Ledger, LoadError, Member, Policy, Principal, EXAMPLE_LEDGER,
    EXAMPLE_POLICY,
};
use proptest::prelude::*;

fn lines(l: &[&str]) -> String {
    let mut text = l.join("\n");
    text.push('\n');
    text
}

/// The policy ledgers in these tests are validated against.
const POLICY: &str = r#"[[label]]
name = "public"
aliases = ["Pub"]

[[label]]
name = "internal"

[[label]]
name = "confidential"
encryption = "required"
"#;

fn policy() -> Policy {
    Policy::from_toml(POLICY, Path::new("policy.toml"))
        .expect("test policy loads")
        .0
}

fn example_policy() -> Policy {
    Policy::from_toml(EXAMPLE_POLICY, Path::new("policy.toml"))
        .expect("example policy loads")
        .0
}

/// What a case loads.
#[derive(Clone, Copy)]
enum Input {
    Policy,
    Ledger,
    Csv,
}

impl Input {
    fn file(self) -> &'static str {
        match self {
            Input::Policy => "policy.toml",
            Input::Ledger => "ledger.toml",
            Input::Csv => "ledger.csv",
        }
    }

    fn load(self, text: &str) -> Result<Vec<Diagnostic>, LoadError> {
        let origin = Path::new(self.file());
        match self {
            Input::Policy => Policy::from_toml(text, origin).map(|(_, w)| w),
            Input::Ledger => Ledger::from_toml(text, origin, &policy()).map(|(_, w)| w),
            Input::Csv => Ledger::from_csv(text, origin, &policy()).map(|(_, w)| w),
        }
    }
}

/// A file with mistakes and every error it must produce: line, column, part of the message.
struct ErrorCase {
    name: &'static str,
    input: Input,
    text: &'static [&'static str],
    errors: &'static [(usize, usize, &'static str)],
}

const ASSET_ID_LINE: &str = r#"id = "A""#;

fn error_cases() -> Vec<ErrorCase> {
    use Input::{Csv, Ledger, Policy};
    vec![
        // policy: unknown keys
        ErrorCase {
            name: "unknown key in a label, with a suggestion",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"aliasses = ["Public"]"#],
            errors: &[(
                3,
                1,
                "unknown key `aliasses` in [[label]] (did you mean `aliases`?); expected one of: name, aliases,",
            )],
        },
        ErrorCase {
            name: "unknown table at the top, with a suggestion",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "", "[rule]", "forbidden = []"],
            errors: &[(4, 2, "unknown key `rule` in the policy (did you mean `rules`?)")],
        },
        ErrorCase {
            name: "unknown key in rules, too far from any known key for a suggestion",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[rules]", "frobnicate = 1"],
            errors: &[(4, 1, "unknown key `frobnicate` in [rules]; expected one of: forbidden,")],
        },
        ErrorCase {
            name: "unknown key in severity",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[severity]", r#"expird = "low""#],
            errors: &[(4, 1, "unknown key `expird` in [severity] (did you mean `expired`?)")],
        },
        // policy: wrong types
        ErrorCase {
            name: "encryption is a boolean",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "encryption = true"],
            errors: &[(3, 14, "`encryption` must be a string, found a boolean")],
        },
        ErrorCase {
            name: "rule flag is a string",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[rules]", r#"inherit_asset_label = "yes""#],
            errors: &[(4, 23, "`inherit_asset_label` must be true or false, found a string")],
        },
        ErrorCase {
            name: "alias list holds a number",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"aliases = ["Public", 7]"#],
            errors: &[(3, 22, "`aliases` must be a list of strings, found an integer in it")],
        },
        ErrorCase {
            name: "severity is a number",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[severity]", "expired = 3"],
            errors: &[(4, 11, "`expired` must be a string, found an integer")],
        },
        ErrorCase {
            name: "rules is not a table",
            input: Policy,
            text: &["rules = 1", "[[label]]", r#"name = "public""#],
            errors: &[(1, 9, "`rules` must be a table, found an integer")],
        },
        ErrorCase {
            name: "label name is missing",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "", "[[label]]", r#"aliases = ["x"]"#],
            errors: &[(4, 1, "[[label]] is missing the required key `name`")],
        },
        // policy: values
        ErrorCase {
            name: "no labels at all",
            input: Policy,
            text: &["[rules]", "forbidden = []"],
            errors: &[(1, 1, "the policy defines no labels; add [[label]] tables")],
        },
        ErrorCase {
            name: "duplicate label name, case-insensitively",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[[label]]", r#"name = "Public""#],
            errors: &[(4, 8, "label name `Public` is already used by label #1")],
        },
        ErrorCase {
            name: "alias claimed by two labels",
            input: Policy,
            text: &[
                "[[label]]",
                r#"name = "public""#,
                r#"aliases = ["General"]"#,
                "[[label]]",
                r#"name = "internal""#,
                r#"aliases = ["general"]"#,
            ],
            errors: &[(6, 12, "alias `general` already maps to label `public`")],
        },
        ErrorCase {
            name: "malformed mip id",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"aliases = ["mip:1234"]"#],
            errors: &[(3, 12, "`mip:1234` is not a MIP label id; expected mip:<guid>")],
        },
        ErrorCase {
            name: "mip id claimed by two labels, written differently",
            input: Policy,
            text: &[
                "[[label]]",
                r#"name = "public""#,
                r#"aliases = ["mip:9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"]"#,
                "[[label]]",
                r#"name = "internal""#,
                r#"aliases = ["mip:{9A7C1F30-2B4D-4E8F-A1C2-5D6E7F809112}"]"#,
            ],
            errors: &[(6, 12, "label id `mip:{9A7C1F30-2B4D-4E8F-A1C2-5D6E7F809112}` already maps to label `public`")],
        },
        ErrorCase {
            name: "unknown label in rules",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[rules]", r#"unregistered_from = "secrett""#],
            errors: &[(4, 21, "unknown label `secrett`; the policy defines: public")],
        },
        ErrorCase {
            name: "an alias is not a label name in rules",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"aliases = ["Pub"]"#, "[rules]", r#"unknown_label = "Pub""#],
            errors: &[(5, 17, "unknown label `Pub`")],
        },
        ErrorCase {
            name: "invalid forbidden glob",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[rules]", r#"forbidden = ["/tmp/**", "/media/[usb"]"#],
            errors: &[(4, 25, "invalid glob `/media/[usb` in `forbidden`: unclosed character class")],
        },
        ErrorCase {
            name: "relative forbidden glob",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, "[rules]", r#"forbidden = ["Downloads/**"]"#],
            errors: &[(4, 14, "glob `Downloads/**` in `forbidden` must be an absolute path (start with `/`) or start with `**`")],
        },
        ErrorCase {
            name: "relative label location",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"locations = "srv/**""#],
            errors: &[(3, 13, "glob `srv/**` in `locations` must be an absolute path")],
        },
        ErrorCase {
            name: "unknown severity, encryption and unknown_encryption values",
            input: Policy,
            text: &[
                "[[label]]",
                r#"name = "public""#,
                r#"severity = "urgent""#,
                r#"encryption = "always""#,
                "[rules]",
                r#"unknown_encryption = "warn""#,
            ],
            errors: &[
                (3, 12, "unknown severity `urgent`; expected one of: info, low, medium, high, critical"),
                (4, 14, "unknown encryption requirement `always`; expected \"required\" or \"optional\""),
                (6, 22, "unknown value `warn`; expected \"violation\" or \"ignore\""),
            ],
        },
        ErrorCase {
            name: "empty marking",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"markings = ["PUBLIC", " "]"#],
            errors: &[(3, 23, "a marking must be 1 to 128 bytes of text")],
        },
        ErrorCase {
            name: "policy TOML syntax error",
            input: Policy,
            text: &["[[label]]", r#"name = "public"#, "[rules]"],
            errors: &[(2, 15, "invalid TOML")],
        },
        ErrorCase {
            name: "policy TOML duplicate key",
            input: Policy,
            text: &["[[label]]", r#"name = "public""#, r#"name = "internal""#],
            errors: &[(3, 1, "invalid TOML")],
        },
        // ledger: keys and types
        ErrorCase {
            name: "unknown asset key, with a suggestion",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"membrs = ["user:alice"]"#,
            ],
            errors: &[(8, 1, "unknown key `membrs` in [[asset]] (did you mean `members`?)")],
        },
        ErrorCase {
            name: "unknown top-level ledger key, with a suggestion",
            input: Ledger,
            text: &["[[assets]]", ASSET_ID_LINE],
            errors: &[(1, 3, "unknown key `assets` in the ledger (did you mean `asset`?)")],
        },
        ErrorCase {
            name: "locations is a number: one error, not also 'missing'",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                "locations = 3",
            ],
            errors: &[(7, 13, "`locations` must be a list of strings, found an integer")],
        },
        ErrorCase {
            name: "wrong types for id, hosts and access_until",
            input: Ledger,
            text: &[
                "[[asset]]",
                "id = 17",
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"hosts = ["ws-1", 2]"#,
                "access_until = 20261231",
            ],
            errors: &[
                (2, 6, "`id` must be a string, found an integer"),
                (8, 18, "`hosts` must be a list of strings, found an integer in it"),
                (9, 16, "`access_until` must be a string, found an integer"),
            ],
        },
        ErrorCase {
            name: "missing required keys are reported at the asset",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                "",
                "[[asset]]",
                r#"id = "B""#,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
            ],
            errors: &[
                (1, 1, "[[asset]] is missing the required key `administrator`"),
                (8, 1, "[[asset]] is missing the required key `locations`"),
            ],
        },
        ErrorCase {
            name: "empty locations list",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                "locations = []",
            ],
            errors: &[(1, 1, "asset has no locations; list the globs where its files may live")],
        },
        // ledger: values
        ErrorCase {
            name: "duplicate asset id",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/b/**"]"#,
            ],
            errors: &[(9, 6, "duplicate asset id `A` (first used by asset #1)")],
        },
        ErrorCase {
            name: "invalid asset id",
            input: Ledger,
            text: &[
                "[[asset]]",
                r#"id = "ACME 2026""#,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
            ],
            errors: &[(2, 6, "asset id `ACME 2026` must be 1 to 128 characters")],
        },
        ErrorCase {
            name: "unknown label; aliases are not label names",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "Pub""#,
                r#"locations = ["/srv/a/**"]"#,
            ],
            errors: &[(6, 9, "unknown label `Pub`; the policy defines: public, internal, confidential")],
        },
        ErrorCase {
            name: "invalid and relative location globs",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/{a,b/**", "srv/c/**"]"#,
            ],
            errors: &[
                (7, 14, "invalid glob `/srv/{a,b/**` in `locations`: unclosed alternate group"),
                (7, 30, "glob `srv/c/**` in `locations` must be an absolute path"),
            ],
        },
        ErrorCase {
            name: "invalid dates",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"access_until = "2026-02-30""#,
                "[[asset]]",
                r#"id = "B""#,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/b/**"]"#,
                r#"access_until = "31.12.2026""#,
                "[[asset]]",
                r#"id = "C""#,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/c/**"]"#,
                "access_until = 2026-12-31T12:00:00Z",
            ],
            errors: &[
                (8, 16, "invalid date `2026-02-30` for `access_until`"),
                (16, 16, "invalid date `31.12.2026` for `access_until`"),
                (24, 16, "invalid date `2026-12-31T12:00:00Z` for `access_until`: trailing input; expected YYYY-MM-DD"),
            ],
        },
        ErrorCase {
            name: "bad member syntax",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"members = ["alice", "role:admins", "user:", "group:-rf", "user:bob smith", "group:ok"]"#,
            ],
            errors: &[
                (8, 12, "member `alice` must be written `user:<name>` or `group:<name>`"),
                (8, 21, "member `role:admins`: unknown kind `role`; expected `user:` or `group:`"),
                (8, 36, "member `user:`: `` is not a valid user or group name"),
                (8, 45, "member `group:-rf`: `-rf` is not a valid user or group name"),
                (8, 58, "member `user:bob smith`: `bob smith` is not a valid user or group name"),
            ],
        },
        ErrorCase {
            name: "bad host patterns",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"hosts = ["build/01", "build-[", ""]"#,
            ],
            errors: &[
                (8, 10, "`build/01` is not a hostname pattern"),
                (8, 22, "invalid host glob `build-[`: unclosed character class"),
                (8, 33, "`` is not a hostname pattern"),
            ],
        },
        ErrorCase {
            name: "unknown encryption requirement",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                r#"encryption = "yes""#,
            ],
            errors: &[(8, 14, "unknown encryption requirement `yes`")],
        },
        ErrorCase {
            name: "the same location claimed by two assets",
            input: Ledger,
            text: &[
                "[[asset]]",
                ASSET_ID_LINE,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/a/**"]"#,
                "[[asset]]",
                r#"id = "B""#,
                r#"name = "n""#,
                r#"department = "d""#,
                r#"administrator = "a""#,
                r#"label = "public""#,
                r#"locations = ["/srv/b/**", "/srv/a/**"]"#,
            ],
            errors: &[(
                14,
                27,
                "location `/srv/a/**` is also claimed by asset `A`; a file there would belong to both",
            )],
        },
        ErrorCase {
            name: "ledger TOML syntax error",
            input: Ledger,
            text: &["[[asset]]", r#"id = "A""#, "name = n"],
            errors: &[(3, 8, "invalid TOML")],
        },
        ErrorCase {
            name: "ledger: asset is not an array of tables",
            input: Ledger,
            text: &[r#"asset = "ACME""#],
            errors: &[(1, 9, "`asset` must be an array of tables ([[asset]]), found a string")],
        },
        // CSV ledger
        ErrorCase {
            name: "csv: unknown columns are errors, by field number",
            input: Csv,
            text: &[
                "id,name,department,administrator,label,locations,owner,acess_until",
                "A,n,d,a,public,/srv/a/**,bob,2026-01-01",
            ],
            errors: &[
                (1, 7, "unknown column `owner`; expected: id, name,"),
                (1, 8, "unknown column `acess_until`"),
            ],
        },
        ErrorCase {
            name: "csv: missing and duplicate columns",
            input: Csv,
            text: &["id,name,department,label,locations,name", "A,n,d,public,/srv/a/**,m"],
            errors: &[
                (1, 1, "missing required column `administrator`"),
                (1, 6, "column `name` appears twice"),
            ],
        },
        ErrorCase {
            name: "csv: value errors name the line and the field",
            input: Csv,
            text: &[
                "id,name,department,administrator,label,locations,hosts,members,encryption,access_until,disclosure",
                "A,n,d,a,public,/srv/a/**,,user:alice;group:x,,2026-12-31,",
                "B,n,d,a,secret,/srv/b/**,ws/1,alice,maybe,2026-13-01,",
                "A,n,d,a,public,srv/c/**;/srv/a/**,,,,,",
            ],
            errors: &[
                (3, 5, "unknown label `secret`"),
                (3, 7, "`ws/1` is not a hostname pattern"),
                (3, 8, "member `alice` must be written `user:<name>` or `group:<name>`"),
                (3, 9, "unknown encryption requirement `maybe`"),
                (3, 10, "invalid date `2026-13-01` for `access_until`"),
                (4, 1, "duplicate asset id `A` (first used by asset #1)"),
                (4, 6, "glob `srv/c/**` in `locations` must be an absolute path"),
            ],
        },
        ErrorCase {
            name: "csv: missing values in a short row",
            input: Csv,
            text: &["id,name,department,administrator,label,locations", "A,n,d", "B,n,d,a,public,;"],
            errors: &[
                (2, 4, "asset is missing a value for `administrator`"),
                (2, 5, "asset is missing a value for `label`"),
                (2, 6, "asset is missing a value for `locations`"),
                (3, 1, "asset has no locations"),
            ],
        },
        ErrorCase {
            name: "csv: lines are counted across quoted line breaks",
            input: Csv,
            text: &[
                "id,name,department,administrator,label,locations,disclosure",
                "A,n,d,a,public,/srv/a/**,\"first line",
                "second line, with a comma\"",
                "B,n,d,a,publik,/srv/b/**,",
            ],
            errors: &[(4, 5, "unknown label `publik`")],
        },
        ErrorCase {
            name: "csv: the same location claimed by two assets",
            input: Csv,
            text: &[
                "id,name,department,administrator,label,locations",
                "A,n,d,a,public,/srv/a/**",
                "B,n,d,a,public,/srv/b/**; /srv/a/**",
            ],
            errors: &[(3, 6, "location `/srv/a/**` is also claimed by asset `A`")],
        },
    ]
}

#[test]
fn every_mistake_is_reported_where_it_is() {
    let mut failures = Vec::new();
    for case in error_cases() {
        let text = lines(case.text);
        let err = match case.input.load(&text) {
            Ok(warnings) => {
                failures.push(format!(
                    "case `{}`: loaded (warnings: {warnings:?})",
                    case.name
                ));
                continue;
            }
            Err(e) => e,
        };
        let got: Vec<&Diagnostic> = err.errors().collect();
        let matches = got.len() == case.errors.len()
            && got.iter().zip(case.errors).all(|(d, (line, col, part))| {
                d.line == *line && d.col == *col && d.message.contains(part)
            });
        if !matches {
            failures.push(format!(
                "case `{}`:\n  expected {:?}\n  got      {:#?}",
                case.name, case.errors, got
            ));
        }
        for d in &err.diagnostics {
            if Path::new(case.input.file()) != d.file {
                failures.push(format!("case `{}`: wrong file in {d}", case.name));
            }
            if d.message.ends_with('.') || d.message.chars().next().is_some_and(char::is_uppercase)
            {
                failures.push(format!("case `{}`: message style: {d}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_case_names_are_unique() {
    let cases = error_cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

#[test]
fn diagnostics_render_as_file_line_col() {
    let text = lines(&["[[label]]", r#"name = "public""#, "colour = 1"]);
    let err = Policy::from_toml(&text, Path::new("/etc/infoledger/policy.toml"))
        .expect_err("unknown key");
    let rendered = err.to_string();
    assert!(
        rendered.starts_with(
            "/etc/infoledger/policy.toml:3:1: error: unknown key `colour` in [[label]]"
        ),
        "{rendered}"
    );
    assert_eq!(rendered.lines().count(), 1);
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = lines(&[
        "[[label]]",
        r#"name = "öffentlich""#,
        r#"aliases = ["Öffentlich", 1]"#,
    ]);
    let err = Policy::from_toml(&text, Path::new("p.toml")).expect_err("integer alias");
    let d = err.errors().next().expect("one error");
    // `aliases = ["Öffentlich", ` is 25 characters but 26 bytes.
    assert_eq!((d.line, d.col), (3, 26), "{d}");
}

// ---------------------------------------------------------------------------------------------
// All problems at once
// ---------------------------------------------------------------------------------------------

#[test]
fn a_ledger_with_several_mistakes_reports_all_of_them() {
    let text = lines(&[
        "[[asset]]",                      // 1
        r#"id = "ACME-2026""#,            // 2
        r#"name = "ACME""#,               // 3
        r#"department = "Finance""#,      // 4
        r#"administrator = "alice""#,     // 5
        r#"label = "confidental""#,       // 6  unknown label
        r#"locations = ["srv/acme/**"]"#, // 7  relative glob
        "",                               // 8
        "[[asset]]",                      // 9
        r#"id = "ACME-2026""#,            // 10 duplicate id
        r#"name = "ACME again""#,         // 11
        r#"department = "Finance""#,      // 12
        r#"administrator = "alice""#,     // 13
        r#"label = "internal""#,          // 14
        r#"locations = ["/srv/b/**"]"#,   // 15
        r#"members = ["alice"]"#,         // 16 bad member
        r#"access_until = "2026-31-12""#, // 17 invalid date
        r#"colour = "red""#,              // 18 unknown key
        "",                               // 19
        "[[asset]]",                      // 20 missing name and department
        r#"id = "C""#,                    // 21
        r#"administrator = "x""#,         // 22
        r#"label = "public""#,            // 23
        r#"locations = ["/srv/c/[**"]"#,  // 24 invalid glob
    ]);
    let err = Ledger::from_toml(&text, Path::new("ledger.toml"), &policy()).expect_err("errors");
    let got: Vec<usize> = err.errors().map(|d| d.line).collect();
    assert_eq!(got, vec![6, 7, 10, 16, 17, 18, 20, 20, 24], "{err}");
    assert_eq!(err.diagnostics.len(), 9, "{err}");
}

#[test]
fn a_policy_with_several_mistakes_reports_all_of_them() {
    let text = lines(&[
        "[[label]]",                              // 1
        r#"name = "public""#,                     // 2
        r#"encryption = "sometimes""#,            // 3
        "[[label]]",                              // 4
        r#"name = "secret""#,                     // 5
        r#"aliases = ["mip:not-a-guid"]"#,        // 6
        r#"locations = ["vault/**"]"#,            // 7
        r#"severty = "high""#,                    // 8
        "[rules]",                                // 9
        r#"forbidden = ["/tmp/[", "/media/**"]"#, // 10
        r#"unregistered_from = "topsecret""#,     // 11
        "require_labels_in_assets = 1",           // 12
        "[severity]",                             // 13
        r#"expired = "soon""#,                    // 14
    ]);
    let err = Policy::from_toml(&text, Path::new("policy.toml")).expect_err("errors");
    let got: Vec<(usize, usize)> = err.errors().map(|d| (d.line, d.col)).collect();
    assert_eq!(
        got,
        vec![
            (3, 14),
            (6, 12),
            (7, 14),
            (8, 1),
            (10, 14),
            (11, 21),
            (12, 28),
            (14, 11)
        ],
        "{err}"
    );
}

#[test]
fn errors_come_sorted_by_position() {
    let text = lines(&[
        "[[asset]]",
        r#"id = "A""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "nope""#,
        r#"locations = ["/srv/a/**"]"#,
        r#"members = ["bad", "worse"]"#,
        "[[asset]]",
        r#"id = "A""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "public""#,
        r#"locations = ["/srv/a/b/**"]"#,
    ]);
    let err = Ledger::from_toml(&text, Path::new("l.toml"), &policy()).expect_err("errors");
    let positions: Vec<(usize, usize)> = err.diagnostics.iter().map(|d| (d.line, d.col)).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted);
}

// ---------------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_locations_are_a_warning_not_an_error() {
    let text = lines(&[
        "[[asset]]",
        r#"id = "OUTER""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "internal""#,
        r#"locations = ["/srv/projects/**"]"#,
        "",
        "[[asset]]",
        r#"id = "INNER""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "confidential""#,
        r#"locations = ["/srv/other/**", "/srv/projects/acme/**"]"#,
    ]);
    let (ledger, warnings) =
        Ledger::from_toml(&text, Path::new("l.toml"), &policy()).expect("nesting is allowed");
    assert_eq!(ledger.assets().len(), 2);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(w.level, DiagnosticLevel::Warning);
    assert_eq!((w.line, w.col), (15, 31), "{w}");
    assert!(
        w.message.contains(
            "`/srv/projects/acme/**` of asset `INNER` overlaps `/srv/projects/**` of asset `OUTER`"
        ),
        "{w}"
    );
    assert!(w.to_string().contains(": warning: "), "{w}");

    // Warnings of the ledger come back from the bundle too.
    let (_, warnings) = Bundle::from_texts(POLICY, Path::new("p.toml"), &text, Path::new("l.toml"))
        .expect("bundle loads");
    assert_eq!(warnings.len(), 1);
}

#[test]
fn overlaps_through_wildcards_are_warned_about_and_disjoint_locations_are_not() {
    let ledger = |a: &str, b: &str| {
        lines(&[
            "[[asset]]",
            r#"id = "A""#,
            r#"name = "n""#,
            r#"department = "d""#,
            r#"administrator = "a""#,
            r#"label = "internal""#,
            &format!("locations = [\"{a}\"]"),
            "",
            "[[asset]]",
            r#"id = "B""#,
            r#"name = "n""#,
            r#"department = "d""#,
            r#"administrator = "a""#,
            r#"label = "internal""#,
            &format!("locations = [\"{b}\"]"),
        ])
    };
    let warnings = |a: &str, b: &str| {
        Ledger::from_toml(&ledger(a, b), Path::new("l.toml"), &policy())
            .expect("overlap is allowed")
            .1
    };
    // A wildcard in the middle: /srv/projects/acme/ is in both.
    let w = warnings("/srv/*/acme/**", "/srv/projects/**");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message
            .contains("of asset `B` overlaps `/srv/*/acme/**` of asset `A`"),
        "{}",
        w[0]
    );
    assert!(w[0].message.contains("/srv/projects/acme/"), "{}", w[0]);
    // A file-name pattern inside another asset's folder.
    assert_eq!(warnings("/srv/a/*.xlsx", "/srv/a/**").len(), 1);
    // Same specificity: the earlier asset wins, and the message says so.
    let w = warnings("/home/*/x/**", "/home/alice/**");
    assert_eq!(w.len(), 1, "{w:?}");
    // Disjoint locations stay quiet.
    assert!(warnings("/srv/a/**", "/srv/b/**").is_empty());
    assert!(warnings("/srv/*/acme/**", "/srv/projects/globex/**").is_empty());
    assert!(warnings("/srv/a/*.xlsx", "/srv/a/*.docx").is_empty());
}

#[test]
fn warnings_travel_with_errors() {
    // A nested location next to an unrelated error: the error rejects the file, the warning is
    // still shown, after the errors.
    let text = lines(&[
        "[[asset]]",
        r#"id = "OUTER""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "internal""#,
        r#"locations = ["/srv/projects/**"]"#,
        r#"members = ["nobody"]"#,
        "[[asset]]",
        r#"id = "INNER""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "confidential""#,
        r#"locations = ["/srv/projects/acme/**"]"#,
    ]);
    let err = Ledger::from_toml(&text, Path::new("l.toml"), &policy()).expect_err("bad member");
    let got: Vec<(DiagnosticLevel, usize)> =
        err.diagnostics.iter().map(|d| (d.level, d.line)).collect();
    assert_eq!(
        got,
        vec![(DiagnosticLevel::Error, 8), (DiagnosticLevel::Warning, 15)],
        "{err}"
    );
}

#[test]
fn a_bad_policy_is_reported_without_the_ledger() {
    let bad = lines(&["[[label]]", "name = 1"]);
    let err = Bundle::from_texts(
        &bad,
        Path::new("p.toml"),
        EXAMPLE_LEDGER,
        Path::new("l.toml"),
    )
    .expect_err("bad policy");
    assert!(
        err.diagnostics
            .iter()
            .all(|d| d.file == Path::new("p.toml")),
        "{err}"
    );

    let bad_ledger = lines(&["[[asset]]", r#"id = "A""#]);
    let err = Bundle::from_texts(
        EXAMPLE_POLICY,
        Path::new("p.toml"),
        &bad_ledger,
        Path::new("l.toml"),
    )
    .expect_err("bad ledger");
    assert!(
        err.diagnostics
            .iter()
            .all(|d| d.file == Path::new("l.toml")),
        "{err}"
    );
    assert_eq!(err.errors().count(), 5, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------------------------

#[test]
fn the_example_files_load_without_warnings() {
    let (policy, warnings) =
        Policy::from_toml(EXAMPLE_POLICY, Path::new("policy.toml")).expect("example policy");
    assert_eq!(warnings, vec![]);
    let names: Vec<&str> = policy.labels().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["public", "internal", "confidential", "secret"]);
    assert_eq!(policy.source(), Path::new("policy.toml"));

    let (ledger, warnings) =
        Ledger::from_toml(EXAMPLE_LEDGER, Path::new("ledger.toml"), &policy).expect("ledger");
    assert_eq!(warnings, vec![]);
    let ids: Vec<&str> = ledger.assets().iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "ACME-2026",
            "GLOBEX-2025",
            "HR-PERSONNEL",
            "RD-ROADMAP",
            "SALES-CRM-EXPORT"
        ]
    );

    let bundle = Bundle::example().expect("example bundle");
    assert_eq!(bundle.ledger.assets().len(), 5);
    assert_eq!(bundle.policy.labels().len(), 4);
}

#[test]
fn the_example_policy_reads_every_field() {
    let p = example_policy();
    let secret = p.label_named("SECRET").expect("case-insensitive lookup");
    assert_eq!(secret.encryption, EncryptionRequirement::Required);
    assert_eq!(secret.locations.patterns(), ["/srv/vault/**"]);
    assert_eq!(secret.markings, vec!["SECRET", "STRICTLY CONFIDENTIAL"]);
    let internal = p.label_named("internal").expect("internal");
    assert_eq!(internal.encryption, EncryptionRequirement::Optional);
    assert!(internal.locations.is_empty());

    let level = |n: &str| p.label_named(n).expect("label").level;
    assert_eq!(p.rules.misplaced_from, level("internal"));
    assert_eq!(p.rules.unregistered_from, level("confidential"));
    assert_eq!(p.rules.unknown_label, level("confidential"));
    assert!(p.rules.inherit_asset_label);
    assert!(!p.rules.require_labels_in_assets);
    assert_eq!(
        p.rules.forbidden.patterns(),
        [
            "**/Downloads/**",
            "/tmp/**",
            "/var/tmp/**",
            "/media/**",
            "/run/media/**"
        ]
    );
    let markings = p.markings();
    assert!(markings.contains(&("INTERNAL USE ONLY".to_string(), level("internal"))));
    assert!(markings.contains(&("STRICTLY CONFIDENTIAL".to_string(), level("secret"))));
}

#[test]
fn policy_defaults_apply_when_rules_are_left_out() {
    let text = lines(&[
        "[[label]]",
        r#"name = "low""#,
        "[[label]]",
        r#"name = "mid""#,
        "[[label]]",
        r#"name = "high""#,
        r#"description = "the top""#,
    ]);
    let (p, _) = Policy::from_toml(&text, Path::new("p.toml")).expect("loads");
    let level = |n: &str| p.label_named(n).expect("label").level;
    assert_eq!(p.rules.unregistered_from, level("high"));
    assert_eq!(p.rules.unknown_label, level("high"));
    assert_eq!(p.rules.misplaced_from, level("mid"));
    assert!(p.rules.inherit_asset_label);
    assert!(!p.rules.require_labels_in_assets);
    assert!(p.rules.forbidden.is_empty());

    // A policy of one label: every threshold is that label.
    let (p, _) =
        Policy::from_toml("[[label]]\nname = \"only\"\n", Path::new("p.toml")).expect("loads");
    let only = p.label_named("only").expect("label").level;
    assert_eq!(p.rules.misplaced_from, only);
    assert_eq!(p.rules.unregistered_from, only);
}

#[test]
fn the_example_ledger_reads_every_field() {
    let p = example_policy();
    let (ledger, _) =
        Ledger::from_toml(EXAMPLE_LEDGER, Path::new("ledger.toml"), &p).expect("ledger");
    let acme = ledger.get("ACME-2026").expect("acme");
    assert_eq!(acme.name, "ACME migration: customer data");
    assert_eq!(acme.department, "Finance Systems");
    assert_eq!(acme.administrator, "alice@example.com");
    assert_eq!(
        acme.label,
        p.label_named("confidential").expect("label").level
    );
    assert_eq!(acme.locations.patterns(), ["/srv/projects/acme/**"]);
    assert_eq!(
        acme.hosts.as_ref().map(|h| h.patterns().to_vec()),
        Some(vec!["build-*".to_string(), "ws-alice".to_string()])
    );
    assert_eq!(
        acme.members,
        vec![Member::User("alice".into()), Member::Group("acme".into())]
    );
    assert_eq!(acme.encryption, Some(EncryptionRequirement::Required));
    assert_eq!(acme.access_until, NaiveDate::from_ymd_opt(2026, 12, 31));
    assert_eq!(
        acme.disclosure.as_deref(),
        Some("ACME project members only")
    );

    let globex = ledger.get("GLOBEX-2025").expect("globex");
    assert_eq!(globex.hosts.as_ref().map(|h| h.patterns().len()), None);
    assert_eq!(globex.encryption, None);
    assert!(
        globex.requires_encryption(&p),
        "confidential requires encryption by default"
    );

    let roadmap = ledger.get("RD-ROADMAP").expect("roadmap");
    assert!(!roadmap.requires_encryption(&p));
    assert!(roadmap.contains(Path::new("/home/carol/roadmap/q3/plan.pptx")));
    assert!(!roadmap.contains(Path::new("/home/carol/work/roadmap/plan.pptx")));
    assert!(ledger.get("NOPE").is_none());
}

#[test]
fn a_bare_toml_date_is_accepted_for_access_until() {
    let text = lines(&[
        "[[asset]]",
        r#"id = "A""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "public""#,
        r#"locations = "/srv/a/**""#,
        r#"members = "group:staff""#,
        "access_until = 2027-01-31",
    ]);
    let (ledger, _) = Ledger::from_toml(&text, Path::new("l.toml"), &policy()).expect("loads");
    let a = ledger.get("A").expect("asset");
    assert_eq!(a.access_until, NaiveDate::from_ymd_opt(2027, 1, 31));
    // A single string is accepted where a list is expected.
    assert_eq!(a.locations.patterns(), ["/srv/a/**"]);
    assert_eq!(a.members, vec![Member::Group("staff".into())]);
}

#[test]
fn an_empty_ledger_is_valid() {
    let (ledger, warnings) = Ledger::from_toml("", Path::new("l.toml"), &policy()).expect("empty");
    assert!(ledger.assets().is_empty());
    assert!(warnings.is_empty());
    let header = "id,name,department,administrator,label,locations\n";
    let (ledger, _) = Ledger::from_csv(header, Path::new("l.csv"), &policy()).expect("empty csv");
    assert!(ledger.assets().is_empty());
}

#[test]
fn an_empty_hosts_list_is_an_error_and_an_empty_csv_cell_allows_any_host() {
    // `hosts = []` would allow no host at all, which is never what a ledger means.
    let text = lines(&[
        "[[asset]]",
        r#"id = "A""#,
        r#"name = "n""#,
        r#"department = "d""#,
        r#"administrator = "a""#,
        r#"label = "public""#,
        r#"locations = ["/srv/a/**"]"#,
        "hosts = []",
    ]);
    let err = Ledger::from_toml(&text, Path::new("l.toml"), &policy()).expect_err("rejected");
    let d: Vec<String> = err.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        d,
        ["l.toml:1:1: error: `hosts` is empty, so no host could hold the asset; omit `hosts` to allow any host"]
    );

    let csv = "id,name,department,administrator,label,locations,hosts\nA,n,d,a,public,/srv/a/**,\n";
    let (ledger, _) = Ledger::from_csv(csv, Path::new("l.csv"), &policy()).expect("loads");
    assert!(ledger.get("A").expect("asset").allows_host("ws-1"));
}

// ---------------------------------------------------------------------------------------------
// CSV ledger
// ---------------------------------------------------------------------------------------------

/// The example ledger, as an information manager would export it from a spreadsheet.
const EXAMPLE_CSV: &str = "\
id,name,department,administrator,label,locations,hosts,members,encryption,access_until,disclosure
ACME-2026,ACME migration: customer data,Finance Systems,alice@example.com,confidential,/srv/projects/acme/**,build-*; ws-alice,user:alice;group:acme,required,2026-12-31,ACME project members only
GLOBEX-2025,Globex payroll integration (contract ended),Finance Systems,alice@example.com,confidential,/srv/projects/globex/**,,group:globex,,2026-03-31,Globex project members; to be deleted after the contract ends
HR-PERSONNEL,Personnel files,Human Resources,hr-records@example.com,secret,/srv/vault/hr/**,hr-fs-*,group:hr,,,HR staff only; works council on request
RD-ROADMAP,Product roadmap and design documents,Research & Development,carol@example.com,internal,/srv/projects/roadmap/**;/home/*/roadmap/**,,group:staff,optional,,All employees
SALES-CRM-EXPORT,CRM exports for the sales forecast,Sales,dave@example.com,confidential,/srv/projects/sales/crm/**,,user:dave;group:sales,,2027-06-30,Sales leadership
";

#[test]
fn the_csv_ledger_loads_like_the_toml_ledger() {
    let p = example_policy();
    let (toml, _) =
        Ledger::from_toml(EXAMPLE_LEDGER, Path::new("ledger.toml"), &p).expect("toml ledger");
    let (csv, warnings) =
        Ledger::from_csv(EXAMPLE_CSV, Path::new("ledger.csv"), &p).expect("csv ledger");
    assert_eq!(warnings, vec![]);
    assert_eq!(toml.assets().len(), csv.assets().len());
    for (t, c) in toml.assets().iter().zip(csv.assets()) {
        assert_eq!(t.id, c.id);
        assert_eq!(t.name, c.name, "{}", t.id);
        assert_eq!(t.department, c.department, "{}", t.id);
        assert_eq!(t.administrator, c.administrator, "{}", t.id);
        assert_eq!(t.label, c.label, "{}", t.id);
        assert_eq!(t.locations.patterns(), c.locations.patterns(), "{}", t.id);
        assert_eq!(
            t.hosts.as_ref().map(|h| h.patterns().to_vec()),
            c.hosts.as_ref().map(|h| h.patterns().to_vec()),
            "{}",
            t.id
        );
        assert_eq!(t.members, c.members, "{}", t.id);
        assert_eq!(t.encryption, c.encryption, "{}", t.id);
        assert_eq!(t.access_until, c.access_until, "{}", t.id);
        assert_eq!(t.disclosure, c.disclosure, "{}", t.id);
    }
    assert_eq!(csv.source(), Path::new("ledger.csv"));
}

#[test]
fn bundles_pick_the_csv_reader_by_extension() {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).expect("timestamp");
    let toml = Bundle::example().expect("example");
    for name in ["ledger.csv", "LEDGER.CSV"] {
        let (csv, _) = Bundle::from_texts(
            EXAMPLE_POLICY,
            Path::new("policy.toml"),
            EXAMPLE_CSV,
            Path::new(name),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Same decisions for files in and around every asset.
        for path in [
            "/srv/projects/acme/a.xlsx",
            "/srv/projects/globex/b.csv",
            "/srv/vault/hr/c.pdf",
            "/home/bob/roadmap/d.pptx",
            "/srv/projects/sales/crm/e.csv",
            "/home/bob/Downloads/f.xlsx",
        ] {
            let facts = FileFacts {
                path: path.into(),
                owner: Principal {
                    id: 1001,
                    name: Some("bob".into()),
                },
                group: Principal {
                    id: 100,
                    name: Some("staff".into()),
                },
                mode: 0o644,
                encryption: EncryptionVerdict::new(EncryptionStatus::Plaintext, "text"),
                ..FileFacts::default()
            };
            assert_eq!(
                evaluate(&toml, &facts, now, "ws-bob"),
                evaluate(&csv, &facts, now, "ws-bob"),
                "{name}: {path}"
            );
        }
    }
    // The TOML reader is used for anything else, so CSV text there is a TOML error.
    let err = Bundle::from_texts(
        EXAMPLE_POLICY,
        Path::new("p.toml"),
        EXAMPLE_CSV,
        Path::new("ledger.txt"),
    )
    .expect_err("csv read as toml");
    assert!(
        err.diagnostics[0].message.starts_with("invalid TOML"),
        "{err}"
    );
}

#[test]
fn csv_cells_and_list_items_are_trimmed() {
    let csv = "\
id , name , department , administrator , label , locations , members
 A , Asset A , d , a , public , /srv/a/** ;; /srv/b/** ; , user:alice ; group:staff
";
    let (ledger, _) = Ledger::from_csv(csv, Path::new("l.csv"), &policy()).expect("loads");
    let a = ledger.get("A").expect("asset");
    assert_eq!(a.name, "Asset A");
    assert_eq!(a.locations.patterns(), ["/srv/a/**", "/srv/b/**"]);
    assert_eq!(
        a.members,
        vec![Member::User("alice".into()), Member::Group("staff".into())]
    );
}

#[test]
fn csv_with_windows_line_endings_and_quotes_loads() {
    let csv = "id,name,department,administrator,label,locations,disclosure\r\n\
               A,\"Asset, with comma\",d,a,public,/srv/a/**,\"said \"\"no\"\"\"\r\n\
               B,b,d,a,internal,/srv/b/**,\r\n";
    let (ledger, _) = Ledger::from_csv(csv, Path::new("l.csv"), &policy()).expect("loads");
    assert_eq!(ledger.get("A").expect("a").name, "Asset, with comma");
    assert_eq!(
        ledger.get("A").expect("a").disclosure.as_deref(),
        Some("said \"no\"")
    );
    assert_eq!(ledger.get("B").expect("b").disclosure, None);

    let bad = "id,name,department,administrator,label,locations\r\nA,n,d,a,public,/srv/a/**\r\nB,n,d,a,nope,/srv/b/**\r\n";
    let err = Ledger::from_csv(bad, Path::new("l.csv"), &policy()).expect_err("unknown label");
    let d = err.errors().next().expect("error");
    assert_eq!((d.line, d.col), (3, 5), "{d}");
}

#[test]
fn unknown_csv_columns_stop_before_the_rows() {
    // With a wrong header the rows cannot be read reliably: only the header is reported.
    let csv = "id,name,dept,administrator,label,locations\nA,n,d,a,nope,relative\n";
    let err = Ledger::from_csv(csv, Path::new("l.csv"), &policy()).expect_err("bad header");
    let got: Vec<(usize, usize, &str)> = err
        .errors()
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{err}");
    assert_eq!((got[0].0, got[0].1), (1, 1));
    assert!(
        got[0].2.contains("missing required column `department`"),
        "{err}"
    );
    assert_eq!((got[1].0, got[1].1), (1, 3));
    assert!(got[1].2.contains("unknown column `dept`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Robustness: no input makes a loader panic, and every diagnostic points into the file
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Format {
    Toml,
    Csv,
}

fn char_boundaries(s: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=s.len()).filter(|i| s.is_char_boundary(*i))
}

/// Checks that every diagnostic points at a real position of `text`.
fn check_positions(text: &str, format: Format, diagnostics: &[Diagnostic], what: &str) {
    let line_count = text.split('\n').count();
    // TOML columns are characters; CSV columns are field numbers, which may name a field that a
    // short row lacks, but never one beyond every row.
    let widest_csv_row = text.split('\n').map(|l| l.matches(',').count() + 1).max();
    for d in diagnostics {
        assert!(
            d.line >= 1 && d.line <= line_count,
            "{what}: line {} out of 1..={line_count}: {d}",
            d.line
        );
        let max_col = match format {
            Format::Toml => {
                text.split('\n')
                    .nth(d.line - 1)
                    .map_or(0, |l| l.chars().count())
                    + 1
            }
            Format::Csv => widest_csv_row.unwrap_or(1),
        };
        assert!(
            d.col >= 1 && d.col <= max_col,
            "{what}: column {} out of 1..={max_col}: {d}",
            d.col
        );
    }
}

fn diagnostics_of<T>(r: &Result<(T, Vec<Diagnostic>), LoadError>, what: &str) -> Vec<Diagnostic> {
    match r {
        Ok((_, warnings)) => {
            assert!(
                warnings.iter().all(|w| w.level == DiagnosticLevel::Warning),
                "{what}: an error among the warnings"
            );
            warnings.clone()
        }
        Err(e) => {
            assert!(
                e.errors().next().is_some(),
                "{what}: rejected without an error"
            );
            e.diagnostics.clone()
        }
    }
}

/// Evaluates a few files against a bundle loaded from mangled input.
fn exercise(policy: &Policy, ledger: Ledger) {
    let bundle = Bundle {
        policy: policy.clone(),
        ledger,
    };
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).expect("timestamp");
    for path in [
        "/srv/projects/acme/a",
        "/home/x/Downloads/b",
        "/tmp/c",
        "/srv/vault/hr/d",
    ] {
        let facts = FileFacts {
            path: path.into(),
            mode: 0o666,
            labels: vec![infoledger_policies::DetectedLabel {
                name: Some("Confidential".into()),
                ..infoledger_policies::DetectedLabel::new(infoledger_policies::LabelSource::Xattr)
            }],
            ..FileFacts::default()
        };
        let _ = evaluate(&bundle, &facts, now, "build-1");
    }
}

/// Loads a (mangled) policy; returns it when it loads.
fn try_policy(text: &str, what: &str) -> Option<Policy> {
    let r = Policy::from_toml(text, Path::new("p.toml"));
    check_positions(text, Format::Toml, &diagnostics_of(&r, what), what);
    r.ok().map(|(p, _)| p)
}

/// Loads a (mangled) ledger against `policy` and evaluates against it when it loads.
fn try_ledger(text: &str, format: Format, policy: &Policy, what: &str) {
    let r = match format {
        Format::Toml => Ledger::from_toml(text, Path::new("l.toml"), policy),
        Format::Csv => Ledger::from_csv(text, Path::new("l.csv"), policy),
    };
    check_positions(text, format, &diagnostics_of(&r, what), what);
    if let Ok((ledger, _)) = r {
        exercise(policy, ledger);
    }
}

#[test]
fn truncated_policy_never_panics() {
    for (n, i) in char_boundaries(EXAMPLE_POLICY).enumerate() {
        let what = format!("policy cut at {i}");
        let cut = &EXAMPLE_POLICY[..i];
        // A cut policy often still loads, with fewer labels: now and then check the example
        // ledger against it (every label it names may be gone).
        if let Some(p) = try_policy(cut, &what) {
            if n % 8 == 0 {
                try_ledger(EXAMPLE_LEDGER, Format::Toml, &p, &what);
            }
        }
    }
}

#[test]
fn truncated_ledger_never_panics() {
    let policy = example_policy();
    for i in char_boundaries(EXAMPLE_LEDGER) {
        try_ledger(
            &EXAMPLE_LEDGER[..i],
            Format::Toml,
            &policy,
            &format!("ledger cut at {i}"),
        );
    }
}

#[test]
fn truncated_csv_ledger_never_panics() {
    let policy = example_policy();
    for i in char_boundaries(EXAMPLE_CSV) {
        try_ledger(
            &EXAMPLE_CSV[..i],
            Format::Csv,
            &policy,
            &format!("csv cut at {i}"),
        );
    }
}

/// Fragments that break TOML, CSV and glob syntax in interesting ways.
const INSERTS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "=",
    ",",
    ";",
    "#",
    "\\",
    "*",
    "**",
    "\n",
    "\r",
    "\t",
    "\0",
    "é",
    "\u{feff}",
    "mip:",
    "[[asset]]\n",
    "[[label]]\n",
    "0",
    "-",
    ":",
    "\r\n",
];

/// Byte changes: single bits and whole bytes (the result is read back as lossy UTF-8).
const FLIPS: &[u8] = &[0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff];

/// One mangled copy of `text` per byte position: odd positions get a flipped byte, even ones an
/// inserted fragment; which flip or fragment cycles with the position, so every kind of change
/// meets every kind of spot across the file.
fn mangled(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    (0..text.len()).map(move |i| {
        if i % 2 == 1 || !text.is_char_boundary(i) {
            let mask = FLIPS[(i / 2) % FLIPS.len()];
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] ^= mask;
            (
                format!("byte {i} ^ {mask:#04x}"),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        } else {
            let frag = INSERTS[(i / 2) % INSERTS.len()];
            (
                format!("{frag:?} inserted at {i}"),
                format!("{}{frag}{}", &text[..i], &text[i..]),
            )
        }
    })
}

#[test]
fn mangled_policy_never_panics() {
    for (n, (what, text)) in mangled(EXAMPLE_POLICY).enumerate() {
        if let Some(p) = try_policy(&text, &what) {
            if n % 8 == 0 {
                try_ledger(EXAMPLE_LEDGER, Format::Toml, &p, &what);
            }
        }
    }
}

#[test]
fn mangled_ledger_never_panics() {
    let policy = example_policy();
    for (what, text) in mangled(EXAMPLE_LEDGER) {
        try_ledger(&text, Format::Toml, &policy, &what);
    }
}

#[test]
fn mangled_csv_ledger_never_panics() {
    let policy = example_policy();
    for (what, text) in mangled(EXAMPLE_CSV) {
        try_ledger(&text, Format::Csv, &policy, &what);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_edits_never_panic(
        file in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let original = [EXAMPLE_POLICY, EXAMPLE_LEDGER, EXAMPLE_CSV][file];
        let mut bytes = original.as_bytes().to_vec();
        for (at, byte, op) in &edits {
            if bytes.is_empty() {
                bytes.push(*byte);
                continue;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = *byte,
                1 => bytes.insert(i, *byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let policy = example_policy();
        match file {
            0 => {
                if let Some(p) = try_policy(&text, "policy") {
                    try_ledger(EXAMPLE_LEDGER, Format::Toml, &p, "ledger with edited policy");
                }
            }
            1 => try_ledger(&text, Format::Toml, &policy, "ledger"),
            _ => try_ledger(&text, Format::Csv, &policy, "csv"),
        }
    }
}
