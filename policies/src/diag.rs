//! Diagnostics: problems found in a policy or ledger file, each located by file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is: errors make a file unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiagnosticLevel {
    /// The file is rejected.
    Error,
    /// The file is accepted, but something in it is probably not what its author meant.
    Warning,
}

/// One problem in an input file, pointing at the line and column (both 1-based) where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in, as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// Error or warning.
    pub level: DiagnosticLevel,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            DiagnosticLevel::Error => "error",
            DiagnosticLevel::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {level}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// A file that could not be loaded, with every problem found in it (not just the first).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct LoadError {
    /// All diagnostics, errors first by position, then warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// The diagnostics that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.level == DiagnosticLevel::Error)
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Line and column (1-based, the column in characters) of a byte offset into `text`; offsets past
/// the end clamp, and one inside a character counts as that character. For a single position
/// (configuration files); [`Reporter`] keeps line starts for many.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Turns byte offsets of a text into line/column positions and collects diagnostics for it.
#[derive(Debug)]
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Reporter {
            file,
            text,
            line_starts,
            diagnostics: Vec::new(),
        }
    }

    /// Line and column (1-based, in characters) of a byte offset; offsets past the end clamp.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span, DiagnosticLevel::Error, message.into());
    }

    pub(crate) fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span, DiagnosticLevel::Warning, message.into());
    }

    /// A diagnostic at an explicit line and column (for formats without byte spans, such as CSV).
    pub(crate) fn error_at(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            level: DiagnosticLevel::Error,
            message: message.into(),
        });
    }

    pub(crate) fn warning_at(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            level: DiagnosticLevel::Warning,
            message: message.into(),
        });
    }

    fn push(&mut self, span: Range<usize>, level: DiagnosticLevel, message: String) {
        let (line, col) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            level,
            message,
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.level == DiagnosticLevel::Error)
    }

    /// Ends the report: `Err` with everything when there is an error, else the warnings.
    pub(crate) fn finish(mut self) -> Result<Vec<Diagnostic>, LoadError> {
        self.diagnostics.sort_by_key(|d| (d.level, d.line, d.col));
        if self.has_errors() {
            Err(LoadError {
                diagnostics: self.diagnostics,
            })
        } else {
            Ok(self.diagnostics)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\nçd = 1\n\nx";
        let r = Reporter::new(Path::new("f"), text);
        assert_eq!(r.position(0), (1, 1));
        assert_eq!(r.position(1), (1, 2));
        assert_eq!(r.position(3), (2, 1));
        // 'ç' is two bytes: the 'd' after it is column 2.
        assert_eq!(r.position(5), (2, 2));
        assert_eq!(r.position(11), (3, 1));
        assert_eq!(r.position(12), (4, 1));
        assert_eq!(r.position(999), (4, 2));
    }
}
