//! Checking what a commit would add: the staged versions of added and modified files, read from
//! git's index (not the working tree), evaluated as if they lay in the repository's folder.
//!
//! A staged file blocks the commit when it would be `misplaced` there (a labeled file outside
//! its asset's or label's locations, or in a forbidden location), `unregistered` (labeled at or
//! above `rules.unregistered_from` and no asset covers the repository), or belongs to an asset
//! whose access deadline has passed (`expired`). Other kinds (encryption, permissions,
//! labeling inside an asset) are left to `scan` and the agent: they are about how a file is
//! kept, not where it goes.
//!
//! Git stores no extended attributes, so a `user.infoledger.label` on the working file counts
//! for the staged version too (see [`Inspector::gather_content`]). Blobs are read with one
//! `git cat-file --batch`; one larger than [`MAX_BLOB_BYTES`] is not held in memory and is
//! judged by its attributes only (reported under `incomplete`).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Utc};
use infoledger_policies::{assess, Bundle, Kind};

use crate::facts::{Inspector, NameCache};
use crate::scan::{Excludes, FileResult, ScanProblem, ScanReport, ScanSetupError};

/// Largest staged version read into memory.
pub const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

/// The kinds that block a commit.
pub const BLOCKING: [Kind; 3] = [Kind::Misplaced, Kind::Expired, Kind::Unregistered];

/// What to check.
#[derive(Debug, Clone)]
pub struct StagedOptions {
    /// A folder inside the repository's working tree.
    pub repo: PathBuf,
    /// Globs of paths to leave out (as `scan --exclude`).
    pub exclude: Vec<String>,
    /// The hostname assets' host globs are matched against.
    pub host: String,
    /// The time deadlines are judged at.
    pub now: DateTime<Utc>,
}

/// Why the staged files could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum StagedError {
    /// `git` could not be started.
    #[error("cannot run git: {0} (install the `git` package)")]
    Spawn(#[source] std::io::Error),
    /// The folder is not inside a git working tree.
    #[error("{} is not inside a git working tree: {message}", path.display())]
    NotARepository {
        /// The folder given.
        path: PathBuf,
        /// What git said.
        message: String,
    },
    /// A git command failed.
    #[error("`git {command}` failed: {message}")]
    Git {
        /// The command, without `git`.
        command: String,
        /// What git said, or the exit status.
        message: String,
    },
    /// `git cat-file` answered something unexpected.
    #[error("unexpected answer from `git cat-file`: {0}")]
    Protocol(String),
    /// An exclude glob is invalid.
    #[error(transparent)]
    Exclude(#[from] ScanSetupError),
}

/// One added or modified file in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Path relative to the top of the working tree.
    pub path: PathBuf,
    /// Git's mode (`0o100644`, `0o100755`, `0o120000` for a link, `0o160000` for a submodule).
    pub mode: u32,
    /// The staged blob's object id.
    pub blob: String,
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    // The hook runs inside a commit: git's own environment points at the right index; only
    // make sure no pager or prompt gets in the way.
    c.env("GIT_PAGER", "cat").env("GIT_TERMINAL_PROMPT", "0");
    c
}

fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, StagedError> {
    let out = git(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(StagedError::Spawn)?;
    if !out.status.success() {
        return Err(StagedError::Git {
            command: args.join(" "),
            message: git_message(&out.stderr, out.status),
        });
    }
    Ok(out.stdout)
}

fn git_message(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    if text.is_empty() {
        status.to_string()
    } else {
        text
    }
}

/// The top of the working tree holding `dir`, canonical.
pub fn toplevel(dir: &Path) -> Result<PathBuf, StagedError> {
    let out = git(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(Stdio::null())
        .output()
        .map_err(StagedError::Spawn)?;
    if !out.status.success() {
        return Err(StagedError::NotARepository {
            path: dir.to_path_buf(),
            message: git_message(&out.stderr, out.status),
        });
    }
    let text = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
    if text.is_empty() {
        // A bare repository or the inside of `.git`: there is no working tree to commit from.
        return Err(StagedError::NotARepository {
            path: dir.to_path_buf(),
            message: "no working tree".to_string(),
        });
    }
    let top = PathBuf::from(OsStr::from_bytes(text));
    Ok(std::fs::canonicalize(&top).unwrap_or(top))
}

/// Added, modified and type-changed files in the index, compared with `HEAD` (or with nothing,
/// before the first commit). Renames count as additions: their new place is what matters.
pub fn staged_files(top: &Path) -> Result<Vec<StagedFile>, StagedError> {
    let out = run(
        top,
        &[
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--diff-filter=AMT",
        ],
    )?;
    parse_raw_diff(&out)
}

/// Parses `git diff --raw -z` output: `:old-mode new-mode old-id new-id status NUL path NUL`.
fn parse_raw_diff(out: &[u8]) -> Result<Vec<StagedFile>, StagedError> {
    let mut files = Vec::new();
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    while let Some(meta) = fields.next() {
        let path = fields
            .next()
            .ok_or_else(|| StagedError::Protocol("a change without a path".to_string()))?;
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let (Some(mode), Some(blob)) = (parts.get(1), parts.get(3)) else {
            return Err(StagedError::Protocol(format!(
                "unexpected diff line `{meta}`"
            )));
        };
        let mode = u32::from_str_radix(mode, 8)
            .map_err(|_| StagedError::Protocol(format!("unexpected mode in `{meta}`")))?;
        files.push(StagedFile {
            path: PathBuf::from(OsStr::from_bytes(path)),
            mode,
            blob: (*blob).to_string(),
        });
    }
    Ok(files)
}

/// A running `git cat-file --batch`, asked one object at a time.
struct BlobReader {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl BlobReader {
    fn start(top: &Path) -> Result<BlobReader, StagedError> {
        let mut child = git(top)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(StagedError::Spawn)?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(StagedError::Protocol(
                "no pipes to git cat-file".to_string(),
            ));
        };
        Ok(BlobReader {
            child,
            input,
            output: BufReader::new(output),
        })
    }

    /// The blob's bytes, or `None` when it is larger than `cap` (its bytes are skipped).
    fn read(&mut self, blob: &str, cap: u64) -> Result<Option<Vec<u8>>, StagedError> {
        let io = |e: std::io::Error| StagedError::Protocol(e.to_string());
        writeln!(self.input, "{blob}").map_err(io)?;
        self.input.flush().map_err(io)?;
        let mut header = Vec::new();
        self.output.read_until(b'\n', &mut header).map_err(io)?;
        let header = String::from_utf8_lossy(&header);
        let parts: Vec<&str> = header.trim_end().split(' ').collect();
        let size = match parts.as_slice() {
            [_, "blob", size] => size
                .parse::<u64>()
                .map_err(|_| StagedError::Protocol(format!("bad size in `{}`", header.trim())))?,
            _ => return Err(StagedError::Protocol(format!("`{}`", header.trim()))),
        };
        let content = if size > cap {
            std::io::copy(&mut (&mut self.output).take(size), &mut std::io::sink()).map_err(io)?;
            None
        } else {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut self.output)
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() as u64 != size {
                return Err(StagedError::Protocol(format!("blob {blob} cut short")));
            }
            Some(bytes)
        };
        let mut newline = [0u8; 1];
        self.output.read_exact(&mut newline).map_err(io)?;
        Ok(content)
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        // Closing its input ends `git cat-file`; reap it so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the staged versions of added and modified files in the repository holding
/// `opts.repo`. The report lists files with blocking findings (and only those findings).
pub fn check(bundle: &Bundle, opts: &StagedOptions) -> Result<ScanReport, StagedError> {
    let started = Instant::now();
    let excludes = Excludes::new(&opts.exclude)?;
    let top = toplevel(&opts.repo)?;
    let files = staged_files(&top)?;
    let inspector = Inspector::new(bundle);
    let mut names = NameCache::default();
    let mut report = ScanReport::default();
    let mut reader: Option<BlobReader> = None;
    for file in files {
        let path = top.join(&file.path);
        // Links and submodules are not files: their blob is a target path or a commit id.
        if file.mode & 0o170000 != 0o100000 || excludes.excluded(&path) {
            report.summary.skipped += 1;
            continue;
        }
        let reader = match &mut reader {
            Some(r) => r,
            None => reader.insert(BlobReader::start(&top)?),
        };
        let content = reader.read(&file.blob, MAX_BLOB_BYTES)?;
        let gathered = inspector.gather_content(&path, content.as_deref(), file.mode, &mut names);
        report.summary.files += 1;
        if !gathered.errors.is_empty() {
            report.incomplete.push(ScanProblem {
                path: path.clone(),
                error: gathered.errors.join("; "),
            });
        }
        let findings: Vec<_> = assess(bundle, &gathered.facts, opts.now, &opts.host)
            .findings
            .into_iter()
            .filter(|f| BLOCKING.contains(&f.kind))
            .collect();
        if !findings.is_empty() {
            report.results.push(FileResult {
                facts: gathered.facts,
                format: gathered.format,
                findings,
            });
        }
    }
    report
        .results
        .sort_by(|a, b| a.facts.path.cmp(&b.facts.path));
    report.summary.findings = report.results.iter().map(|r| r.findings.len() as u64).sum();
    report.summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// What a blocked commit's author reads after the findings: how to get out of it.
pub fn blocked_advice(report: &ScanReport, top: &Path) -> String {
    let paths: Vec<String> = report
        .results
        .iter()
        .map(|r| {
            let rel = r.facts.path.strip_prefix(top).unwrap_or(&r.facts.path);
            crate::report::escape_controls(&shell_word(&rel.to_string_lossy()))
        })
        .collect();
    let n = paths.len();
    format!(
        "commit blocked: {n} staged file{} must not be committed to this repository ({}).\n\
         to keep {} out of the commit: git reset -q -- {}\n\
         then follow the fix above (move it where it belongs, or remove it), or ask the asset's administrator.\n",
        if n == 1 { "" } else { "s" },
        top.display(),
        if n == 1 { "it" } else { "them" },
        paths.join(" ")
    )
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ',' | '@' | ':')
        })
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn raw_diff_lines_give_path_mode_and_blob() {
        let out = b":000000 100644 0000000000000000000000000000000000000000 8baef1b4abc478178b004d62031cf7fe6db6f903 A\0docs/a b.txt\0:100644 100755 1111111111111111111111111111111111111111 2222222222222222222222222222222222222222 M\0run.sh\0";
        assert_eq!(
            parse_raw_diff(out).unwrap(),
            vec![
                StagedFile {
                    path: PathBuf::from("docs/a b.txt"),
                    mode: 0o100644,
                    blob: "8baef1b4abc478178b004d62031cf7fe6db6f903".to_string()
                },
                StagedFile {
                    path: PathBuf::from("run.sh"),
                    mode: 0o100755,
                    blob: "2222222222222222222222222222222222222222".to_string()
                },
            ]
        );
        assert!(parse_raw_diff(b":000000 100644 0 1 A\0").is_err());
        assert!(parse_raw_diff(b":garbage\0x\0").is_err());
        assert_eq!(parse_raw_diff(b"").unwrap(), vec![]);
    }

    #[test]
    fn advice_names_the_unstage_command_with_quoted_paths() {
        let top = Path::new("/repo");
        let mut report = ScanReport::default();
        for p in ["/repo/a.docx", "/repo/my notes.txt"] {
            report.results.push(FileResult {
                facts: infoledger_policies::FileFacts {
                    path: PathBuf::from(p),
                    owner: infoledger_policies::Principal { id: 0, name: None },
                    group: infoledger_policies::Principal { id: 0, name: None },
                    mode: 0o644,
                    size: 0,
                    mtime: 0,
                    labels: Vec::new(),
                    asset_hint: None,
                    encryption: Default::default(),
                },
                format: None,
                findings: Vec::new(),
            });
        }
        assert_eq!(
            blocked_advice(&report, top),
            "commit blocked: 2 staged files must not be committed to this repository (/repo).\n\
             to keep them out of the commit: git reset -q -- a.docx 'my notes.txt'\n\
             then follow the fix above (move it where it belongs, or remove it), or ask the asset's administrator.\n"
        );
    }
}
