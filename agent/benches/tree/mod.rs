//! The large benchmark tree and its bundle, shared by the benches: a generated tree of text,
//! source code, binaries, labeled OOXML documents and PDFs (the same shape always yields the
//! same bytes, kept in `target/bench-tree/` between runs), and a policy and ledger whose assets
//! live in it.
// Each bench uses part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use infoledger_agent::facts::LABEL_XATTR;
use infoledger_policies::Bundle;
use xattr::FileExt;

/// Bumped whenever the generated tree changes, so that a tree left by an older bench is rebuilt.
pub(crate) const LAYOUT_VERSION: u32 = 3;

// ---------------------------------------------------------------------------------------------
// The tree

/// Top-level areas of the tree, cycled through by leaf folder. Repeats weight an area; the names
/// line up with the assets of [`bundle_texts`] and the policy's forbidden `**/Downloads/**`.
pub(crate) const AREAS: &[&str] = &[
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
pub(crate) const XATTR_LABELS: &[&str] = &[
    "Confidential",
    "General",
    "Highly Confidential",
    "confidential",
    "Vendor-X Restricted",
];

/// Lower-case prose, so that it can never contain a marking by accident.
pub(crate) const PROSE: &str = "the quarterly figures were reconciled against the ledger and the \
remaining differences were traced to rounding in the export. next steps: review the open \
items with the team, update the forecast, and archive the working copies once the numbers \
are signed off.\n";

/// The shape of the generated tree; the same shape always yields the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) files: usize,
    pub(crate) per_dir: usize,
}

/// What one generated file holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
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
pub(crate) struct FileSpec {
    body: Body,
    size: usize,
    mode: u32,
    xattr_label: Option<&'static str>,
}

/// Purview label ids of the bench policy's aliases: confidential, internal, and one no alias maps.
pub(crate) const MIP_IDS: &[&str] = &[
    "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d",
    "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112",
    "0d0d0d0d-1111-4222-8333-444455556666",
];
pub(crate) const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";

/// A minimal Word document with a label-information part naming `label_id`.
pub(crate) fn docx_bytes(label_id: &str, padding: usize) -> Vec<u8> {
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
pub(crate) fn pdf_bytes(label_id: &str, padding: usize) -> Vec<u8> {
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
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn pick<T: Copy>(items: &[T], h: u64) -> T {
    items[(h % items.len() as u64) as usize]
}

impl FileSpec {
    /// Mostly small text and source code; about 10% carry a marking, 5% a label attribute, 10%
    /// are binary, 3% are labeled Word documents and 2% labeled PDFs.
    pub(crate) fn of(index: usize) -> FileSpec {
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

    pub(crate) fn ext(&self) -> &'static str {
        match self.body {
            Body::Empty => "txt",
            Body::Docx { .. } => "docx",
            Body::Pdf { .. } => "pdf",
            Body::Binary { ext, .. } | Body::Text { ext, .. } => ext,
        }
    }

    pub(crate) fn write_body(&self, index: usize, buf: &mut Vec<u8>) {
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
    pub(crate) fn leaves(&self) -> usize {
        self.files.div_ceil(self.per_dir)
    }

    /// Leaf folder `k`: `<area>/<nnn>/<kkkkk>`, two levels of nested folders in every area.
    pub(crate) fn leaf_dir(&self, root: &Path, k: usize) -> PathBuf {
        let area = AREAS[k % AREAS.len()];
        root.join(area)
            .join(format!("{:03}", k / AREAS.len() / 16))
            .join(format!("{k:05}"))
    }

    pub(crate) fn marker_text(&self) -> String {
        format!(
            "infoledger scan_tree layout {LAYOUT_VERSION}\nfiles {}\nper_dir {}\n",
            self.files, self.per_dir
        )
    }

    /// Writes the tree into `root`, which must be empty.
    pub(crate) fn generate(&self, root: &Path) -> Result<()> {
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

pub(crate) fn write_file(
    path: &Path,
    index: usize,
    spec: &FileSpec,
    buf: &mut Vec<u8>,
) -> Result<()> {
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
pub(crate) fn prepare_tree(layout: Layout, regenerate: bool) -> Result<PathBuf> {
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
pub(crate) const UNRELATED_ASSETS: usize = 25;

/// A glob matching exactly `path`, as a TOML string.
pub(crate) fn toml_glob(path: &Path, suffix: &str) -> String {
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
pub(crate) fn bundle_texts(tree: &Path) -> (String, String) {
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

pub(crate) fn bench_bundle(tree: &Path) -> Result<Bundle> {
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
