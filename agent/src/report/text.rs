//! The `text` scan format: for a developer at a terminal, grouped by file.

use std::collections::BTreeMap;
use std::io::{self, Write};

use infoledger_policies::Severity;

use crate::scan::ScanReport;

/// Writes findings grouped by file, then unreadable entries, then one summary line.
pub fn write(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.results {
        writeln!(out, "{}", r.facts.path.display())?;
        for f in &r.findings {
            writeln!(out, "  {}[{}] {}", f.severity, f.kind, f.message)?;
            writeln!(out, "    rule: {}", f.rule)?;
            writeln!(out, "    fix:  {}", f.fix)?;
        }
        writeln!(out)?;
    }
    for p in &report.problems {
        writeln!(out, "{}: not inspected: {}", p.path.display(), p.error)?;
    }
    for p in &report.incomplete {
        writeln!(out, "{}: inspected in part: {}", p.path.display(), p.error)?;
    }
    if !report.problems.is_empty() || !report.incomplete.is_empty() {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(report))
}

/// `scanned 120 files: 5 findings in 4 files (2 high, 3 medium); 1 unreadable, 2 skipped; 35 ms`
pub fn summary_line(report: &ScanReport) -> String {
    let s = &report.summary;
    let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, u64> = BTreeMap::new();
    for f in report.results.iter().flat_map(|r| &r.findings) {
        *by_severity
            .entry(std::cmp::Reverse(f.severity))
            .or_default() += 1;
    }
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!("scanned {}", plural(s.files, "file", "files"));
    if s.findings == 0 {
        line.push_str(": no findings");
    } else {
        let parts: Vec<String> = by_severity
            .iter()
            .map(|(sev, n)| format!("{n} {}", sev.0))
            .collect();
        line.push_str(&format!(
            ": {} in {} ({})",
            plural(s.findings, "finding", "findings"),
            plural(report.results.len() as u64, "file", "files"),
            parts.join(", ")
        ));
    }
    line.push_str(&format!(
        "; {} unreadable, {} skipped; {} ms",
        s.unreadable, s.skipped, s.elapsed_ms
    ));
    line
}
