//! Scan throughput against baselines measured in the same run: a large generated tree (text,
//! source code, binaries, labeled OOXML documents and PDFs) is walked by a bare `walkdir` + `lstat`
//! loop (the floor any scan must pay), listed by `find` and `rg --files` when they are installed,
//! read in full and checksummed (what a content scanner or file-integrity monitor pays), and
//! scanned by `infoledger_agent::scan::scan`; the table reports each median and its ratios.
//!
//! No absolute time is asserted anywhere: machines differ, ratios measured side by side on a warm
//! cache do not (much). What the bench does check is that every contender saw the same files, so a
//! fast number can never come from doing less work; `--max-ratio` turns the scan/walk ratio into a
//! pass/fail check.
//!
//! Run: `cargo bench -p infoledger-agent --bench scan_tree [-- --files 100000 --runs 3]`.
//! Without `--bench` (as `cargo test --benches` runs it) it builds a small tree and runs once, as a
//! smoke test of the bench itself.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use infoledger_agent::facts::LABEL_XATTR;
use infoledger_agent::scan::{self, ScanOptions, Summary};
use infoledger_policies::Bundle;
use walkdir::WalkDir;
use xattr::FileExt;

/// Bumped whenever the generated tree changes, so that a tree left by an older bench is rebuilt.
const LAYOUT_VERSION: u32 = 3;

const USAGE: &str = "\
usage: cargo bench -p infoledger-agent --bench scan_tree [-- OPTIONS]

options:
  --files N        files in the generated tree (default 100000)
  --per-dir N      files per leaf folder (default 40)
  --runs N         timed runs of each measurement; the median is reported (default 3)
  --regenerate     rebuild the tree even if one of the same shape exists
  --max-ratio R    exit 1 when the scan's median exceeds R times the walk floor's
  --help           print this help

The tree is kept in target/bench-tree/ and reused by later runs of the same --files and --per-dir.";

/// What to run, from the command line.
#[derive(Debug, Clone)]
struct Settings {
    files: usize,
    per_dir: usize,
    runs: usize,
    regenerate: bool,
    max_ratio: Option<f64>,
    /// `cargo bench` passes `--bench`; without it the binary runs as a quick smoke test.
    measuring: bool,
}

/// Limits that keep a mistyped argument from filling the disk or running for hours.
const MAX_FILES: usize = 5_000_000;
const MAX_RUNS: usize = 99;

impl Settings {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Settings>> {
        let args: Vec<String> = args.into_iter().collect();
        let measuring = args.iter().any(|a| a == "--bench");
        let mut s = Settings {
            files: if measuring { 100_000 } else { 2_000 },
            per_dir: 40,
            runs: if measuring { 3 } else { 1 },
            regenerate: false,
            max_ratio: None,
            measuring,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .with_context(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--bench" => {}
                "--help" | "-h" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                "--regenerate" => s.regenerate = true,
                "--files" => s.files = parse_count("--files", &value("--files")?, MAX_FILES)?,
                "--per-dir" => s.per_dir = parse_count("--per-dir", &value("--per-dir")?, 10_000)?,
                "--runs" => s.runs = parse_count("--runs", &value("--runs")?, MAX_RUNS)?,
                "--max-ratio" => {
                    let v = value("--max-ratio")?;
                    let r: f64 = v
                        .parse()
                        .ok()
                        .filter(|r: &f64| r.is_finite() && *r > 0.0)
                        .with_context(|| format!("--max-ratio: `{v}` is not a positive number"))?;
                    s.max_ratio = Some(r);
                }
                // `cargo test --benches` may pass libtest's flags and filters; they mean nothing
                // here, and failing on them would break the workspace's test command.
                _ if !measuring => eprintln!("note: ignoring argument `{arg}` in test mode"),
                _ => bail!("unknown argument `{arg}`\n\n{USAGE}"),
            }
        }
        Ok(Some(s))
    }
}

fn parse_count(name: &str, v: &str, max: usize) -> Result<usize> {
    match v.replace('_', "").parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => bail!("{name}: `{v}` is not a number between 1 and {max}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The tree

/// Top-level areas of the tree, cycled through by leaf folder. Repeats weight an area; the names
/// line up with the assets of [`bundle_texts`] and the policy's forbidden `**/Downloads/**`.
const AREAS: &[&str] = &[
    "projects/acme",
    "projects/acme",
    "projects/globex",
    "projects/roadmap",
    "projects/sales",
    "shared/eng",
    "shared/eng",
    "home/bob/Downloads",
    "home/bob/docs/roadmap",
    "home/carol/docs",
    "vault/hr",
    "scratch",
];

/// Labels written to `user.infoledger.label`: mapped names, an alias, and one no alias maps.
const XATTR_LABELS: &[&str] = &[
    "Confidential",
    "General",
    "Highly Confidential",
    "confidential",
    "Vendor-X Restricted",
];

/// Lower-case prose, so that it can never contain a marking by accident.
const PROSE: &str = "the quarterly figures were reconciled against the ledger and the \
remaining differences were traced to rounding in the export. next steps: review the open \
items with the team, update the forecast, and archive the working copies once the numbers \
are signed off.\n";

/// The shape of the generated tree; the same shape always yields the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    files: usize,
    per_dir: usize,
}

/// What one generated file holds.
#[derive(Debug, Clone, Copy)]
enum Body {
    Empty,
    /// Binary bytes behind a format's magic number; some are longer than the inspected head.
    Binary {
        magic: &'static [u8],
        ext: &'static str,
    },
    /// A Word document carrying a Purview label (label-information part), some padding inside.
    Docx {
        label_id: &'static str,
    },
    /// A PDF whose Info dictionary carries Purview label keys (Enabled, Method, SiteId only).
    Pdf {
        label_id: &'static str,
    },
    /// Text, optionally with a marking banner on line 1 or 3.
    Text {
        banner: Option<&'static str>,
        banner_line: usize,
        ext: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
struct FileSpec {
    body: Body,
    size: usize,
    mode: u32,
    xattr_label: Option<&'static str>,
}

/// Purview label ids of the bench policy's aliases: confidential, internal, and one no alias maps.
const MIP_IDS: &[&str] = &[
    "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
    "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112",
    "0d0d0d0d-1111-4222-8333-444455556666",
];
const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";

/// A minimal Word document with a label-information part naming `label_id`.
fn docx_bytes(label_id: &str, padding: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts: [(&str, String); 4] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_string(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels" Target="docMetadata/LabelInfo.xml"/></Relationships>"#.to_string(),
        ),
        (
            "docMetadata/LabelInfo.xml",
            format!(r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata"><clbl:label id="{{{label_id}}}" enabled="1" method="Standard" siteId="{{{TENANT}}}" removed="0" /></clbl:labelList>"#),
        ),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:body></w:document>"#,
                PROSE.repeat(padding / PROSE.len() + 1)
            ),
        ),
    ];
    for (name, text) in parts {
        // Writing to memory cannot fail; a failure here would be a bug in the bench.
        z.start_file(name, opts).expect("zip entry");
        z.write_all(text.as_bytes()).expect("zip write");
    }
    z.finish().expect("zip finish").into_inner()
}

/// A one-page PDF with a correct cross-reference table and Purview keys in its Info dictionary.
fn pdf_bytes(label_id: &str, padding: usize) -> Vec<u8> {
    let content = format!(
        "BT /F1 12 Tf 72 720 Td ({}) Tj ET\n",
        "x".repeat(padding.min(60_000))
    );
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        format!(
            "<< /Title (Forecast) /MSIP_Label_{label_id}_Enabled (true) /MSIP_Label_{label_id}_Method (Standard) /MSIP_Label_{label_id}_SiteId ({TENANT}) >>"
        ),
    ];
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// SplitMix64: a fixed, dependency-free hash that spreads file kinds over the tree.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(items: &[T], h: u64) -> T {
    items[(h % items.len() as u64) as usize]
}

impl FileSpec {
    /// Mostly small text and source code; about 10% carry a marking, 5% a label attribute, 10%
    /// are binary, 3% are labeled Word documents and 2% labeled PDFs.
    fn of(index: usize) -> FileSpec {
        let h = mix(index as u64);
        let text_size = 64 + (h >> 40) as usize % 2_000;
        let (body, size) = match h % 1000 {
            0..20 => (Body::Empty, 0),
            20..120 => {
                let (magic, ext): (&'static [u8], _) = pick(
                    &[
                        (b"\x89PNG\r\n\x1a\n".as_slice(), "png"),
                        (b"PK\x03\x04".as_slice(), "zip"),
                        (b"\x7fELF".as_slice(), "bin"),
                    ],
                    h >> 12,
                );
                (
                    Body::Binary { magic, ext },
                    256 + (h >> 40) as usize % 8_000,
                )
            }
            120..150 => (
                Body::Docx {
                    label_id: pick(MIP_IDS, h >> 12),
                },
                2_000 + (h >> 40) as usize % 30_000,
            ),
            150..170 => (
                Body::Pdf {
                    label_id: pick(MIP_IDS, h >> 12),
                },
                500 + (h >> 40) as usize % 30_000,
            ),
            r => {
                let banner = match r {
                    170..240 => Some(pick(&["CONFIDENTIAL", "-- CONFIDENTIAL --"], h >> 12)),
                    240..260 => Some("INTERNAL USE ONLY"),
                    260..270 => Some(pick(&["SECRET", "STRICTLY CONFIDENTIAL"], h >> 12)),
                    _ => None,
                };
                // Half the unmarked text is source code, which scans need not open.
                let ext = if banner.is_none() && (h >> 20) & 1 == 0 {
                    pick(&["rs", "py", "js", "go", "c", "java"], h >> 16)
                } else {
                    pick(&["txt", "md", "csv", "log"], h >> 16)
                };
                let body = Body::Text {
                    banner,
                    banner_line: if (h >> 14) & 1 == 0 { 1 } else { 3 },
                    ext,
                };
                (body, text_size)
            }
        };
        let mode = match (h >> 32) % 10 {
            0 => 0o644,
            1..=3 => 0o640,
            _ => 0o600,
        };
        let xattr_label = ((h >> 24) % 100 < 5).then(|| pick(XATTR_LABELS, h >> 48));
        FileSpec {
            body,
            size,
            mode,
            xattr_label,
        }
    }

    fn ext(&self) -> &'static str {
        match self.body {
            Body::Empty => "txt",
            Body::Docx { .. } => "docx",
            Body::Pdf { .. } => "pdf",
            Body::Binary { ext, .. } | Body::Text { ext, .. } => ext,
        }
    }

    fn write_body(&self, index: usize, buf: &mut Vec<u8>) {
        buf.clear();
        match self.body {
            Body::Empty => {}
            Body::Binary { magic, .. } => {
                buf.extend_from_slice(magic);
                let mut x = index as u64;
                while buf.len() < self.size {
                    x = mix(x);
                    // Zero bytes make it binary for text detection, as real formats are.
                    buf.extend_from_slice(&(x & 0xFF00_FFFF_00FF_FFFF).to_le_bytes());
                }
            }
            Body::Docx { label_id } => {
                buf.extend_from_slice(&docx_bytes(label_id, self.size));
                return;
            }
            Body::Pdf { label_id } => {
                buf.extend_from_slice(&pdf_bytes(label_id, self.size));
                return;
            }
            Body::Text {
                banner,
                banner_line,
                ..
            } => {
                if let Some(b) = banner {
                    if banner_line == 3 {
                        buf.extend_from_slice(b"quarterly review\n\n");
                    }
                    buf.extend_from_slice(b.as_bytes());
                    buf.push(b'\n');
                }
                while buf.len() < self.size {
                    buf.extend_from_slice(PROSE.as_bytes());
                }
            }
        }
        // Prose and banners are ASCII, so cutting anywhere leaves valid text.
        buf.truncate(self.size);
    }
}

impl Layout {
    fn leaves(&self) -> usize {
        self.files.div_ceil(self.per_dir)
    }

    /// Leaf folder `k`: `<area>/<nnn>/<kkkkk>`, two levels of nested folders in every area.
    fn leaf_dir(&self, root: &Path, k: usize) -> PathBuf {
        let area = AREAS[k % AREAS.len()];
        root.join(area)
            .join(format!("{:03}", k / AREAS.len() / 16))
            .join(format!("{k:05}"))
    }

    fn marker_text(&self) -> String {
        format!(
            "infoledger scan_tree layout {LAYOUT_VERSION}\nfiles {}\nper_dir {}\n",
            self.files, self.per_dir
        )
    }

    /// Writes the tree into `root`, which must be empty.
    fn generate(&self, root: &Path) -> Result<()> {
        let started = Instant::now();
        let mut buf = Vec::with_capacity(16 * 1024);
        // A progress line only on a terminal; piped output gets the summary line alone.
        let progress = io::stderr().is_terminal();
        let mut next_report = 0;
        for k in 0..self.leaves() {
            let dir = self.leaf_dir(root, k);
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let first = k * self.per_dir;
            for index in first..(first + self.per_dir).min(self.files) {
                let spec = FileSpec::of(index);
                let path = dir.join(format!("f{index:07}.{}", spec.ext()));
                write_file(&path, index, &spec, &mut buf)?;
            }
            let done = ((k + 1) * self.per_dir).min(self.files);
            if progress && done >= next_report {
                eprint!("\r  generated {done} of {} files", self.files);
                next_report = done + self.files / 20;
            }
        }
        eprintln!(
            "{}  generated {} files in {:.1} s",
            if progress { "\r" } else { "" },
            self.files,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

fn write_file(path: &Path, index: usize, spec: &FileSpec, buf: &mut Vec<u8>) -> Result<()> {
    spec.write_body(index, buf);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(spec.mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(buf)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Set the mode explicitly: the umask must not change which files are overexposed.
    file.set_permissions(fs::Permissions::from_mode(spec.mode))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    if let Some(label) = spec.xattr_label {
        file.set_xattr(LABEL_XATTR, label.as_bytes()).with_context(|| {
            format!(
                "cannot set {LABEL_XATTR} on {} (does this filesystem support user extended attributes?)",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// The generated tree, reused across runs while its marker matches the requested layout.
fn prepare_tree(layout: Layout, regenerate: bool) -> Result<PathBuf> {
    // Under the workspace's target folder, not /tmp: the policy forbids /tmp, which would turn
    // every labeled file into a finding and measure a different workload.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tree");
    fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let base = fs::canonicalize(&base)?;
    let tree = base.join(format!("tree-{}", layout.files));
    let marker = base.join(format!("tree-{}.done", layout.files));
    let expected = layout.marker_text();
    let reusable =
        !regenerate && tree.is_dir() && fs::read_to_string(&marker).is_ok_and(|m| m == expected);
    if reusable {
        eprintln!("reusing {} (--regenerate rebuilds it)", tree.display());
        return Ok(tree);
    }
    // The marker goes first and comes back last, so an interrupted generation is never reused.
    match fs::remove_file(&marker) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", marker.display()))
        }
        _ => {}
    }
    if tree.exists() {
        eprintln!("removing {}", tree.display());
        fs::remove_dir_all(&tree).with_context(|| format!("cannot remove {}", tree.display()))?;
    }
    eprintln!(
        "generating {} files ({} per folder) in {}",
        layout.files,
        layout.per_dir,
        tree.display()
    );
    fs::create_dir(&tree).with_context(|| format!("cannot create {}", tree.display()))?;
    layout.generate(&tree)?;
    let partial = marker.with_extension("partial");
    fs::write(&partial, &expected)
        .and_then(|()| fs::rename(&partial, &marker))
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(tree)
}

// ---------------------------------------------------------------------------------------------
// The bundle

/// Assets outside the tree: they never match, but every lookup has to rule them out, as it
/// would in a real ledger.
const UNRELATED_ASSETS: usize = 25;

/// A glob matching exactly `path`, as a TOML string.
fn toml_glob(path: &Path, suffix: &str) -> String {
    let mut glob = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob.push_str(suffix);
    let mut toml = String::from("\"");
    for c in glob.chars() {
        match c {
            '"' => toml.push_str("\\\""),
            '\\' => toml.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(toml, "\\u{:04X}", c as u32);
            }
            c => toml.push(c),
        }
    }
    toml.push('"');
    toml
}

/// A policy like the shipped example and a ledger whose assets live in the tree.
fn bundle_texts(tree: &Path) -> (String, String) {
    let g = |suffix: &str| toml_glob(tree, suffix);
    let (user, group) = infoledger_tests::current_user_and_group();
    let policy = format!(
        r#"
[[label]]
name = "public"
aliases = ["Public"]

[[label]]
name = "internal"
aliases = ["General", "Internal", "mip:9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112"]
markings = ["INTERNAL USE ONLY"]

[[label]]
name = "confidential"
encryption = "required"
aliases = ["Confidential", "Highly Sensitive Customer Data", "mip:{{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}}"]
markings = ["CONFIDENTIAL"]

[[label]]
name = "secret"
encryption = "required"
aliases = ["Highly Confidential", "Secret"]
markings = ["SECRET", "STRICTLY CONFIDENTIAL"]
locations = [{vault}]

[rules]
forbidden = ["**/Downloads/**", "/tmp/**", "/var/tmp/**", "/media/**", "/run/media/**"]
misplaced_from = "internal"
unregistered_from = "confidential"
unknown_label = "confidential"
inherit_asset_label = true
require_labels_in_assets = false
unknown_encryption = "violation"
"#,
        vault = g("/vault/**"),
    );
    let mut ledger = format!(
        r#"
[[asset]]
id = "BENCH-ACME"
name = "ACME migration: customer data"
department = "Finance Systems"
administrator = "alice@example.com"
label = "confidential"
locations = [{acme}]
members = ["user:{user}", "group:{group}"]
access_until = "2027-12-31"

[[asset]]
id = "BENCH-GLOBEX"
name = "Globex payroll integration (contract ended)"
department = "Finance Systems"
administrator = "alice@example.com"
label = "confidential"
locations = [{globex}]
members = ["group:globex"]
access_until = "2026-03-31"

[[asset]]
id = "BENCH-ROADMAP"
name = "Product roadmap"
department = "Research & Development"
administrator = "carol@example.com"
label = "internal"
locations = [{roadmap}, {home_roadmap}]
members = ["group:{group}"]
encryption = "optional"

[[asset]]
id = "BENCH-HR"
name = "Personnel files"
department = "Human Resources"
administrator = "hr-records@example.com"
label = "secret"
locations = [{hr}]
hosts = ["hr-fs-*"]
members = ["group:hr"]
"#,
        acme = g("/projects/acme/**"),
        globex = g("/projects/globex/**"),
        roadmap = g("/projects/roadmap/**"),
        home_roadmap = g("/home/*/docs/roadmap/**"),
        hr = g("/vault/hr/**"),
    );
    for i in 0..UNRELATED_ASSETS {
        let _ = write!(
            ledger,
            r#"
[[asset]]
id = "OTHER-{i:03}"
name = "Unrelated project {i}"
department = "Elsewhere"
administrator = "someone@example.com"
label = "{label}"
locations = ["/srv/other/{i:03}/**", "/home/*/other-{i:03}/**"]
members = ["group:other{i}"]
"#,
            label = if i % 2 == 0 {
                "internal"
            } else {
                "confidential"
            },
        );
    }
    (policy, ledger)
}

fn bench_bundle(tree: &Path) -> Result<Bundle> {
    let (policy, ledger) = bundle_texts(tree);
    let (bundle, _warnings) = Bundle::from_texts(
        &policy,
        Path::new("bench-policy.toml"),
        &ledger,
        Path::new("bench-ledger.toml"),
    )
    .context("the bench's own policy or ledger is invalid")?;
    Ok(bundle)
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// What the floor walk saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WalkCounts {
    files: u64,
    dirs: u64,
    bytes: u64,
}

/// The floor: read every folder and `lstat` every entry, nothing else.
fn walk_floor(root: &Path) -> Result<WalkCounts> {
    let mut counts = WalkCounts {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry?;
        // With follow_links(false) this is an lstat.
        let meta = entry.metadata()?;
        if meta.is_file() {
            counts.files += 1;
            counts.bytes += meta.len();
        } else if meta.is_dir() {
            counts.dirs += 1;
        }
    }
    Ok(counts)
}

/// Reads every byte of every file and checksums it (CRC-32), one thread: the least a content
/// scanner or a file-integrity monitor hashing files must pay.
fn read_all(root: &Path) -> Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let mut crc = flate2::Crc::new();
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let mut f = File::open(entry.path())?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            bytes += n as u64;
        }
        files += 1;
    }
    // Keep the checksum observable so the reads cannot be optimised away.
    std::hint::black_box(crc.sum());
    Ok((files, bytes))
}

/// An external tool listing every file, one per line.
#[derive(Debug, Clone)]
struct Lister {
    name: &'static str,
    program: &'static str,
    args: Vec<String>,
}

impl Lister {
    fn for_tree(tree: &Path) -> Vec<Lister> {
        let tree = tree.to_string_lossy().into_owned();
        vec![
            Lister {
                name: "find -type f",
                program: "find",
                args: vec![tree.clone(), "-type".into(), "f".into()],
            },
            Lister {
                // Ignore rules and hidden-file skipping off, so it lists what the others see.
                name: "rg --files",
                program: "rg",
                args: vec![
                    "--files".into(),
                    "--no-ignore".into(),
                    "--hidden".into(),
                    tree,
                ],
            },
        ]
    }

    /// Runs it and counts the lines it prints; `None` when the program is not installed.
    fn run(&self) -> Result<Option<u64>> {
        let mut child = match Command::new(self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot run {}", self.program)),
        };
        let mut lines = 0;
        if let Some(mut out) = child.stdout.take() {
            let mut buf = vec![0; 64 * 1024];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("cannot read its output"),
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "`{} {}` failed: {status}",
                self.program,
                self.args.join(" ")
            );
        }
        Ok(Some(lines))
    }
}

/// One row of the table.
#[derive(Debug)]
enum Contender {
    Walk,
    External(Lister),
    ReadAll,
    Scan,
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Walk => "walk floor (lstat)",
            Contender::External(l) => l.name,
            Contender::ReadAll => "read+crc32 all bytes",
            Contender::Scan => "infoledger scan",
        }
    }
}

/// Everything a timed run needs, and what the warm-up established.
#[derive(Debug)]
struct Workload {
    tree: PathBuf,
    bundle: Bundle,
    options: ScanOptions,
    walk: WalkCounts,
    scan: Summary,
    files_with_findings: usize,
}

impl Workload {
    /// Runs a contender once; checks it saw every file, so no number comes from doing less.
    fn run(&self, contender: &Contender) -> Result<Duration> {
        let started = Instant::now();
        match contender {
            Contender::Walk => {
                let counts = walk_floor(&self.tree)?;
                let elapsed = started.elapsed();
                ensure_same(contender, counts.files, self.walk.files)?;
                Ok(elapsed)
            }
            Contender::External(lister) => {
                let files = lister
                    .run()?
                    .with_context(|| format!("{} disappeared during the run", lister.program))?;
                let elapsed = started.elapsed();
                ensure_same(contender, files, self.walk.files)?;
                Ok(elapsed)
            }
            Contender::ReadAll => {
                let (files, bytes) = read_all(&self.tree)?;
                let elapsed = started.elapsed();
                ensure_same(contender, files, self.walk.files)?;
                if bytes != self.walk.bytes {
                    bail!(
                        "read {bytes} bytes where the walk counted {}",
                        self.walk.bytes
                    );
                }
                Ok(elapsed)
            }
            Contender::Scan => {
                let report = scan::scan(&self.bundle, &self.options)?;
                let elapsed = started.elapsed();
                let summary = Summary {
                    elapsed_ms: 0,
                    ..report.summary
                };
                if summary != self.scan {
                    bail!(
                        "the scan's counters changed between runs: {summary:?} after {:?}",
                        self.scan
                    );
                }
                Ok(elapsed)
            }
        }
    }
}

fn ensure_same(contender: &Contender, saw: u64, expected: u64) -> Result<()> {
    if saw != expected {
        bail!(
            "{} saw {saw} files where the walk saw {expected}; the comparison would be unfair",
            contender.name()
        );
    }
    Ok(())
}

/// The untimed warm-up: fills the caches and fixes the counts every timed run must reproduce.
fn warm_up(
    tree: PathBuf,
    bundle: Bundle,
    expected_files: u64,
) -> Result<(Workload, Vec<Contender>)> {
    let walk = walk_floor(&tree)?;
    if walk.files != expected_files {
        bail!(
            "{} holds {} files, {expected_files} expected; rerun with --regenerate",
            tree.display(),
            walk.files
        );
    }
    let options = ScanOptions {
        roots: vec![tree.clone()],
        exclude: Vec::new(),
        // Fixed, so findings (hosts, deadlines) are the same on every machine and every day.
        host: "bench-host".to_string(),
        threads: None,
        now: Utc
            .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
            .single()
            .context("fixed bench date")?,
    };
    let report = scan::scan(&bundle, &options)?;
    let scan = Summary {
        elapsed_ms: 0,
        ..report.summary
    };
    if scan.files != walk.files || scan.unreadable != 0 || scan.skipped != 0 {
        bail!(
            "the scan inspected {} files ({} skipped, {} unreadable) where the walk saw {}",
            scan.files,
            scan.skipped,
            scan.unreadable,
            walk.files
        );
    }
    if scan.findings == 0 {
        bail!("the scan found nothing: the bundle does not exercise evaluation");
    }
    let mut contenders = vec![Contender::Walk];
    let workload = Workload {
        tree,
        bundle,
        options,
        walk,
        scan,
        files_with_findings: report.results.len(),
    };
    for lister in Lister::for_tree(&workload.tree) {
        match lister.run()? {
            Some(files) => {
                let c = Contender::External(lister);
                ensure_same(&c, files, walk.files)?;
                contenders.push(c);
            }
            None => eprintln!("note: `{}` is not on PATH; skipped", lister.program),
        }
    }
    contenders.push(Contender::ReadAll);
    contenders.push(Contender::Scan);
    Ok((workload, contenders))
}

/// Median and range of a contender's timed runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Timing {
    fn of(samples: &mut [Duration]) -> Timing {
        samples.sort();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2
        };
        Timing {
            median,
            min: samples[0],
            max: samples[n - 1],
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn run(settings: &Settings) -> Result<ExitCode> {
    let layout = Layout {
        files: settings.files,
        per_dir: settings.per_dir,
    };
    let tree = prepare_tree(layout, settings.regenerate)?;
    let bundle = bench_bundle(&tree)?;
    if let Some(pattern) = bundle.policy.rules.forbidden.first_match(&tree.join("x")) {
        eprintln!(
            "warning: {} matches the forbidden location `{pattern}`; every labeled file becomes a finding",
            tree.display()
        );
    }
    eprintln!("warming up (one untimed pass of each)");
    let (workload, contenders) = warm_up(tree, bundle, settings.files as u64)?;

    // Interleaved, so that drift (another process, CPU frequency) spreads over all contenders.
    let mut samples: Vec<Vec<Duration>> = contenders.iter().map(|_| Vec::new()).collect();
    for r in 0..settings.runs {
        eprintln!("run {} of {}", r + 1, settings.runs);
        for (c, s) in contenders.iter().zip(&mut samples) {
            s.push(workload.run(c)?);
        }
    }
    let timings: Vec<Timing> = samples.iter_mut().map(|s| Timing::of(s)).collect();
    let floor = timings[0].median.as_secs_f64();

    let w = &workload;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scan_tree: {} files in {} folders, {:.1} MB; {} assets ({} in the tree); \
         {} findings in {} files",
        grouped(w.walk.files),
        grouped(w.walk.dirs),
        w.walk.bytes as f64 / 1e6,
        w.bundle.ledger.assets().len(),
        w.bundle.ledger.assets().len() - UNRELATED_ASSETS,
        grouped(w.scan.findings),
        grouped(w.files_with_findings as u64),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        out,
        "warm cache, one untimed warm-up, median of {} run{}, {cpus} CPU{}",
        settings.runs,
        if settings.runs == 1 { "" } else { "s" },
        if cpus == 1 { "" } else { "s" },
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| {:<20} | {:>10} | {:>19} | {:>11} | {:>8} |",
        "measurement", "median ms", "min..max ms", "files/s", "vs walk"
    );
    let _ = writeln!(
        out,
        "|{:-<22}|{:->12}|{:->21}|{:->13}|{:->10}|",
        ":", ":", ":", ":", ":"
    );
    for (c, t) in contenders.iter().zip(&timings) {
        let secs = t.median.as_secs_f64();
        let _ = writeln!(
            out,
            "| {:<20} | {:>10.1} | {:>19} | {:>11} | {:>7.2}x |",
            c.name(),
            ms(t.median),
            format!("{:.1}..{:.1}", ms(t.min), ms(t.max)),
            grouped((w.walk.files as f64 / secs) as u64),
            secs / floor,
        );
    }
    let _ = writeln!(
        out,
        "\nwalk floor: walkdir reading every folder and lstat-ing every entry, one thread. \
         find and rg only list names (file types come from readdir, no lstat), so they can beat it."
    );
    print!("{out}");
    if !settings.measuring {
        println!("\n(test mode: small tree, one run; `cargo bench` measures)");
    }

    let scan_secs = timings[timings.len() - 1].median.as_secs_f64();
    let median_of = |name: &str| {
        contenders
            .iter()
            .zip(&timings)
            .find(|(c, _)| c.name() == name)
            .map(|(_, t)| t.median.as_secs_f64())
    };
    println!();
    match median_of("rg --files") {
        Some(rg) => println!("scan / rg --files:          {:>6.2}x", scan_secs / rg),
        None => println!("scan / rg --files:          (rg not installed: apt-get install ripgrep)"),
    }
    println!("scan / walk floor:          {:>6.2}x", scan_secs / floor);
    if let Some(all) = median_of("read+crc32 all bytes") {
        println!(
            "read+crc32 all / scan:      {:>6.2}x faster than reading everything",
            all / scan_secs
        );
    }
    let ratio = scan_secs / floor;
    if let Some(max) = settings.max_ratio {
        if ratio > max {
            println!("\nFAIL: the scan took {ratio:.2}x the walk floor; at most {max:.2}x allowed");
            return Ok(ExitCode::FAILURE);
        }
        println!("\nok: the scan took {ratio:.2}x the walk floor (at most {max:.2}x allowed)");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
