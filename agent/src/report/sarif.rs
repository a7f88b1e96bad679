//! The `sarif` scan format: SARIF 2.1.0 as code-scanning services accept it, with one rule per
//! violation kind so results group by kind.

use std::io::{self, Write};
use std::path::Path;

use infoledger_policies::{Kind, Severity};
use serde_json::{json, Value};

use crate::scan::ScanReport;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF's result level for a severity.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium | Severity::Low => "warning",
        Severity::Info => "note",
    }
}

fn default_severity(kind: Kind) -> Severity {
    match kind {
        Kind::Expired => Severity::High,
        Kind::Unregistered | Kind::Mislabeled => Severity::Medium,
        Kind::Misplaced | Kind::Unencrypted | Kind::Overexposed => Severity::High,
    }
}

/// A location as SARIF wants it: relative to the working directory (`%SRCROOT%`) when the file is
/// under it, else an absolute `file://` URI.
fn artifact_location(path: &Path, cwd: Option<&Path>) -> Value {
    if let Some(rel) = cwd.and_then(|c| path.strip_prefix(c).ok()) {
        return json!({ "uri": uri_escape(&rel.to_string_lossy()), "uriBaseId": "%SRCROOT%" });
    }
    json!({ "uri": format!("file://{}", uri_escape(&path.to_string_lossy())) })
}

/// Percent-encodes what is not allowed in a URI path.
fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds the SARIF document.
pub fn document(report: &ScanReport, cwd: Option<&Path>) -> Value {
    let rules: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({
                "id": k.as_str(),
                "name": k.as_str(),
                "shortDescription": { "text": format!("{} file", k.as_str()) },
                "fullDescription": { "text": k.description() },
                "help": { "text": k.description() },
                "defaultConfiguration": { "level": level(default_severity(*k)) },
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in &report.results {
        for f in &r.findings {
            let rule_index = Kind::ALL.iter().position(|k| *k == f.kind).unwrap_or(0);
            results.push(json!({
                "ruleId": f.kind.as_str(),
                "ruleIndex": rule_index,
                "level": level(f.severity),
                "message": { "text": format!("{} Fix: {}.", capitalised(&f.message), f.fix) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact_location(&r.facts.path, cwd),
                        // The finding is about the whole file; code-scanning UIs need a line.
                        "region": { "startLine": 1 }
                    }
                }],
                "partialFingerprints": { "infoledgerViolation/v1": fingerprint(&r.facts.path, f.kind) },
                "properties": {
                    "severity": f.severity.as_str(),
                    "label": f.label,
                    "asset": f.asset,
                    "rule": f.rule,
                    "fix": f.fix,
                },
            }));
        }
    }
    let mut run = json!({
        "tool": {
            "driver": {
                "name": "infoledger",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/infoledger/infoledger",
                "rules": rules,
            }
        },
        "results": results,
    });
    if let Some(c) = cwd {
        run["originalUriBaseIds"] = json!({
            "%SRCROOT%": { "uri": format!("file://{}/", uri_escape(&c.to_string_lossy())) }
        });
    }
    json!({ "$schema": SCHEMA, "version": "2.1.0", "runs": [run] })
}

/// A stable identity of a violation, (path, kind), so code-scanning UIs track it across runs.
fn fingerprint(path: &Path, kind: Kind) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(path.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(kind.as_str().as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => {
            let rest: String = c.collect();
            let end = if rest.ends_with('.') { "" } else { "." };
            format!("{}{rest}{end}", first.to_uppercase())
        }
        None => String::new(),
    }
}

/// Writes the SARIF document for the report.
pub fn write(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    let cwd = std::env::current_dir().ok();
    serde_json::to_writer_pretty(&mut *out, &document(report, cwd.as_deref()))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_spaces_and_keep_slashes() {
        assert_eq!(uri_escape("/a b/c%d.txt"), "/a%20b/c%25d.txt");
    }

    #[test]
    fn relative_locations_use_the_source_root() {
        let v = artifact_location(Path::new("/w/x/y.txt"), Some(Path::new("/w")));
        assert_eq!(v["uri"], "x/y.txt");
        assert_eq!(v["uriBaseId"], "%SRCROOT%");
        let v = artifact_location(Path::new("/elsewhere/y.txt"), Some(Path::new("/w")));
        assert_eq!(v["uri"], "file:///elsewhere/y.txt");
    }
}
