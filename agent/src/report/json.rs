//! The `json` scan format (documented in README): findings flattened with their path, a summary,
//! and the entries that could not be read.

use std::io::{self, Write};

use infoledger_policies::{Kind, Severity};
use serde::Serialize;

use crate::scan::{ScanProblem, ScanReport, Summary};

#[derive(Serialize)]
struct JsonFinding<'a> {
    path: String,
    kind: Kind,
    severity: Severity,
    label: Option<&'a str>,
    asset: Option<&'a str>,
    rule: &'a str,
    message: &'a str,
    fix: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: Vec<JsonFinding<'a>>,
    summary: &'a Summary,
    errors: &'a [ScanProblem],
    incomplete: &'a [ScanProblem],
}

/// Writes the report as one JSON document followed by a newline.
pub fn write(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    let findings = report
        .results
        .iter()
        .flat_map(|r| {
            r.findings.iter().map(|f| JsonFinding {
                path: r.facts.path.to_string_lossy().into_owned(),
                kind: f.kind,
                severity: f.severity,
                label: f.label.as_deref(),
                asset: f.asset.as_deref(),
                rule: &f.rule,
                message: &f.message,
                fix: &f.fix,
            })
        })
        .collect();
    let doc = JsonReport {
        findings,
        summary: &report.summary,
        errors: &report.problems,
        incomplete: &report.incomplete,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
