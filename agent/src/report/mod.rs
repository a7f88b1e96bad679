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

/// Runs a text renderer into memory and writes its output with control characters (other than
/// newlines) escaped: file names and label values come from untrusted files and must not be able
/// to move the cursor or recolour a developer's terminal.
pub fn write_escaped(
    out: &mut dyn Write,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    out.write_all(escape_controls(&String::from_utf8_lossy(&buf)).as_bytes())
}

/// `text` with every control character except `\n` written as a Rust-style escape.
pub fn escape_controls(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    s
}

/// Writes a report in the chosen format.
pub fn write(report: &ScanReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => write_escaped(out, |o| text::write(report, o)),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_newlines_and_text_kept() {
        assert_eq!(
            escape_controls("a\u{1b}[31mred\tb\nç\u{9b}"),
            "a\\u{1b}[31mred\\tb\nç\\u{9b}"
        );
    }
}
