//! Rendering scan results: `text` for people, `json` for scripts, `sarif` for code-scanning UIs.

pub mod inspection;
pub mod json;
pub mod sarif;
pub mod text;

use std::io::{self, Write};

use clap::ValueEnum;

use crate::scan::ScanReport;

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Grouped by file: what is wrong, why, how to fix; then a summary line.
    #[default]
    Text,
    /// One JSON document with every finding and the summary.
    Json,
    /// SARIF 2.1.0, one rule per violation kind.
    Sarif,
}

/// Writes a report in the chosen format.
pub fn write(report: &ScanReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, out),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
    }
}
