//! Gathering a file's facts: metadata, owner and group names, labels from extended attributes,
//! embedded label metadata and markings, and the encryption verdict.
//!
//! Reading a file's body is the expensive part of a scan, so [`Inspector::gather`] decides from
//! the name, the extended attributes and the ledger whether the body can matter at all, and reads
//! it (a bounded amount, through [`inspect`]) only then. [`Inspector::inspect_fully`] always reads.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use infoledger_policies::{
    Bundle, DetectedLabel, EncryptionRequirement, EncryptionVerdict, FileFacts, LabelSource, Level,
    Principal,
};
use xattr::FileExt;

use crate::inspect::{self, marking, source::FileSource, Bounded, FileFormat, HEAD_BYTES};

/// Extended attribute holding a file's label, set by people or tools (`setfattr`).
pub const LABEL_XATTR: &str = "user.infoledger.label";
/// Extended attribute naming the ledger asset a file belongs to.
pub const ASSET_XATTR: &str = "user.infoledger.asset";
/// Longest extended-attribute value taken into account.
const MAX_XATTR: usize = 256;

/// Extensions of formats that can carry embedded labels.
const LABEL_CARRIERS: &[&str] = &[
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlsb", "pptx", "pptm", "potx",
    "potm", "ppsx", "ppsm", "vsdx", "vsdm", "doc", "dot", "xls", "xlt", "ppt", "pot", "pps", "msg",
    "pdf", "eml", "pfile", "ptxt", "ppdf",
];

/// Extensions of text files that may carry a marking banner.
const TEXT_FILES: &[&str] = &[
    "txt",
    "text",
    "md",
    "markdown",
    "csv",
    "tsv",
    "json",
    "yaml",
    "yml",
    "xml",
    "html",
    "htm",
    "log",
    "ini",
    "conf",
    "cfg",
    "toml",
    "sql",
    "rst",
    "tex",
    "adoc",
    "properties",
    "env",
    "rtf",
    "asc",
];

/// Files without an extension are read (they are often text: README, notes) up to this size.
const MAX_EXTENSIONLESS: u64 = 1024 * 1024;

/// Why a file's facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// The file disappeared between listing and reading: not an error for a scan.
    #[error("vanished during the scan")]
    Vanished,
    /// The file was replaced by something that is not a regular file.
    #[error("changed type during the scan")]
    NotRegular,
    /// Permissions or I/O stopped us.
    #[error("{0}")]
    Unreadable(io::Error),
}

impl From<io::Error> for FactsError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            FactsError::Vanished
        } else if e.raw_os_error() == Some(nix::libc::ELOOP) {
            // O_NOFOLLOW met a symbolic link: the file was replaced by one after listing.
            FactsError::NotRegular
        } else {
            FactsError::Unreadable(e)
        }
    }
}

/// Resolves uids and gids to names once per id.
#[derive(Debug, Default)]
pub struct NameCache {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl NameCache {
    fn user(&mut self, uid: u32) -> Principal {
        let name = self
            .users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone();
        Principal { id: uid, name }
    }

    fn group(&mut self, gid: u32) -> Principal {
        let name = self
            .groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone();
        Principal { id: gid, name }
    }
}

/// How much of a file inspection read, which decides what its cached facts can answer later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadDepth {
    /// Metadata and extended attributes only; the encryption verdict is `unknown` (or `empty`).
    Unread,
    /// The head of a text file: its marking, and a verdict from the head alone.
    Head,
    /// The body as far as the format's inspection goes.
    Full,
}

impl ReadDepth {
    /// The number stored in the agent's state.
    pub fn as_u8(self) -> u8 {
        match self {
            ReadDepth::Unread => 0,
            ReadDepth::Head => 1,
            ReadDepth::Full => 2,
        }
    }

    /// Reads a number written by [`Self::as_u8`]; unknown numbers count as unread, which only
    /// makes the file be inspected again.
    pub fn from_u8(n: u8) -> ReadDepth {
        match n {
            2 => ReadDepth::Full,
            1 => ReadDepth::Head,
            _ => ReadDepth::Unread,
        }
    }
}

/// What gathering found besides the facts themselves.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// How much of the file was read.
    pub depth: ReadDepth,
    /// The facts evaluation works on.
    pub facts: FileFacts,
    /// The detected format, when the body was read.
    pub format: Option<String>,
    /// Why inspection could not finish (malformed structures, exhausted budgets).
    pub errors: Vec<String>,
    /// Remarks of inspection that did not stop it.
    pub notes: Vec<String>,
}

/// Opens a file for inspection without changing its access time when the kernel allows that,
/// and without blocking if it was swapped for a FIFO.
fn open_for_inspection(path: &Path) -> io::Result<File> {
    let base = nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW;
    match File::options()
        .read(true)
        .custom_flags(base | nix::libc::O_NOATIME)
        .open(path)
    {
        // O_NOATIME is only allowed to the file's owner (or with CAP_FOWNER).
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => {
            File::options().read(true).custom_flags(base).open(path)
        }
        other => other,
    }
}

/// Validates an extended-attribute value: short UTF-8 text without control characters.
fn xattr_text(raw: Option<Vec<u8>>) -> Option<String> {
    let raw = raw?;
    if raw.is_empty() || raw.len() > MAX_XATTR {
        return None;
    }
    let text = std::str::from_utf8(&raw).ok()?.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_string())
}

/// The infoledger attributes of a file: (label, asset).
#[derive(Debug, Default)]
struct Attributes {
    label: Option<String>,
    asset: Option<String>,
}

/// Reads the attributes by path (without opening the file): one listing, then only the values
/// that exist. Filesystems without extended attributes simply have none.
fn attributes_by_path(path: &Path) -> Result<Attributes, FactsError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FactsError::Vanished),
        Err(_) => return Ok(Attributes::default()),
    };
    let mut attrs = Attributes::default();
    for name in names {
        let slot = if name == OsStr::new(LABEL_XATTR) {
            &mut attrs.label
        } else if name == OsStr::new(ASSET_XATTR) {
            &mut attrs.asset
        } else {
            continue;
        };
        match xattr::get(path, &name) {
            Ok(v) => *slot = xattr_text(v),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(FactsError::Unreadable(e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FactsError::Vanished),
            Err(_) => {}
        }
    }
    Ok(attrs)
}

/// Reads the attributes through an open descriptor: one listing, then only the values that
/// exist (most files have none).
fn attributes_of(file: &File) -> Attributes {
    let mut attrs = Attributes::default();
    let Ok(names) = file.list_xattr() else {
        return attrs;
    };
    for name in names {
        if name == OsStr::new(LABEL_XATTR) {
            attrs.label = xattr_text(file.get_xattr(LABEL_XATTR).ok().flatten());
        } else if name == OsStr::new(ASSET_XATTR) {
            attrs.asset = xattr_text(file.get_xattr(ASSET_XATTR).ok().flatten());
        }
    }
    attrs
}

/// What a file's name says about reading its body.
enum ByName {
    /// A format that can carry a label.
    Read,
    /// No extension: read when small.
    ReadIfSmall,
    /// Read only when the verdict is needed.
    Undecided,
}

/// Gathers facts for files, with what the bundle says about which bodies are worth reading.
#[derive(Debug)]
pub struct Inspector<'b> {
    bundle: &'b Bundle,
    markings: Vec<String>,
    marking_levels: Vec<Level>,
    budget: u64,
}

impl<'b> Inspector<'b> {
    /// An inspector for `bundle` with the default per-file read budget.
    pub fn new(bundle: &'b Bundle) -> Self {
        let (markings, marking_levels) = bundle.policy.markings().into_iter().unzip();
        Inspector {
            bundle,
            markings,
            marking_levels,
            budget: inspect::source::DEFAULT_BUDGET,
        }
    }

    fn label_requires_encryption(&self, name: &str) -> bool {
        let label = DetectedLabel {
            name: Some(name.to_string()),
            ..DetectedLabel::new(LabelSource::Xattr)
        };
        let level = self.bundle.policy.resolve(&label).level;
        self.bundle.policy.label(level).encryption == EncryptionRequirement::Required
    }

    /// What the name alone says about reading a file's body.
    ///
    /// Formats that carry labels (Office, PDF, e-mail, protected files) are read, and text files
    /// when the policy has markings; extension-less files (often text: README, notes) are read
    /// when small. Anything else is read only when its verdict is needed (see
    /// [`Self::needs_verdict`]).
    fn by_name(&self, path: &Path) -> ByName {
        let name = path
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_default();
        match inspect::sniff::extension(&name) {
            Some(ext) if LABEL_CARRIERS.contains(&ext.as_str()) => ByName::Read,
            Some(ext) if !self.markings.is_empty() && TEXT_FILES.contains(&ext.as_str()) => {
                ByName::Read
            }
            None if !self.markings.is_empty() => ByName::ReadIfSmall,
            _ => ByName::Undecided,
        }
    }

    /// Whether a file's encryption verdict matters whatever its format: its asset or its
    /// attribute label requires encryption.
    fn needs_verdict(&self, path: &Path, attrs: &Attributes) -> bool {
        let ledger = &self.bundle.ledger;
        let asset = attrs
            .asset
            .as_deref()
            .and_then(|id| ledger.get(id))
            .or_else(|| ledger.asset_at(path));
        asset.is_some_and(|a| a.requires_encryption(&self.bundle.policy))
            || attrs
                .label
                .as_deref()
                .is_some_and(|l| self.label_requires_encryption(l))
    }

    /// Gathers a file's facts for a scan, reading its body only when it can matter.
    ///
    /// A file whose body will be read is opened straight away and examined through its
    /// descriptor (one path lookup); others cost an `lstat` and an attribute listing.
    pub fn gather(&self, path: &Path, names: &mut NameCache) -> Result<Gathered, FactsError> {
        match self.by_name(path) {
            ByName::Read => return self.read_body(path, Some(u64::MAX), names),
            ByName::ReadIfSmall => return self.read_body(path, Some(MAX_EXTENSIONLESS), names),
            ByName::Undecided => {}
        }
        let listed = std::fs::symlink_metadata(path)?;
        if !listed.is_file() {
            return Err(FactsError::NotRegular);
        }
        let attrs = attributes_by_path(path)?;
        if listed.size() > 0 && self.needs_verdict(path, &attrs) {
            return self.read_body(path, None, names);
        }
        Ok(self.unread(path, &listed, attrs, names))
    }

    /// Whether facts gathered earlier (under another bundle) answer everything this inspector's
    /// bundle asks of the file, so that a new bundle can be evaluated without reading it again.
    ///
    /// They do not when [`Self::gather`] would now read more than it did: a file left unread
    /// whose name or asset now calls for its body, or a text file read only to its head whose
    /// encryption now matters. A change of the policy's markings is not judged here: the caller
    /// compares markings between bundles, since a marking found or missed under the old list
    /// says nothing about the new one.
    pub fn cached_facts_suffice(&self, facts: &FileFacts, depth: ReadDepth) -> bool {
        let attrs = Attributes {
            label: facts
                .labels
                .iter()
                .find(|l| l.source == LabelSource::Xattr)
                .and_then(|l| l.name.clone()),
            asset: facts.asset_hint.clone(),
        };
        let verdict_needed = || self.needs_verdict(&facts.path, &attrs);
        match depth {
            ReadDepth::Full => true,
            ReadDepth::Head => {
                let marking_requires = facts
                    .labels
                    .iter()
                    .filter(|l| l.source == LabelSource::Marking)
                    .filter_map(|l| l.name.as_deref())
                    .any(|n| self.label_requires_encryption(n));
                !marking_requires && !verdict_needed()
            }
            ReadDepth::Unread => {
                if facts.size == 0 {
                    return true;
                }
                let by_name = match self.by_name(&facts.path) {
                    ByName::Read => false,
                    ByName::ReadIfSmall => facts.size > MAX_EXTENSIONLESS,
                    ByName::Undecided => true,
                };
                by_name && !verdict_needed()
            }
        }
    }

    /// The policy's marking strings with the label each stands for, to compare bundles.
    pub fn markings(&self) -> Vec<(String, String)> {
        self.markings
            .iter()
            .zip(&self.marking_levels)
            .map(|(m, l)| (m.clone(), self.bundle.policy.label(*l).name.clone()))
            .collect()
    }

    /// Gathers a file's facts reading its body whatever its name (the `inspect` command).
    pub fn inspect_fully(
        &self,
        path: &Path,
        names: &mut NameCache,
    ) -> Result<Gathered, FactsError> {
        self.read_body(path, None, names)
    }

    /// Gathers the facts of content that is not (yet) the file at `path` — the version staged
    /// in git's index — as if it lay at `path`.
    ///
    /// Embedded labels and markings come from `content`; `None` means it was too large to hold
    /// and only the attributes count. Git records no extended attributes, so the attributes,
    /// owner and group of the working file at `path` (when it exists) stand for the document's;
    /// without one, the caller's own user and group. `mode` is the staged file's.
    pub fn gather_content(
        &self,
        path: &Path,
        content: Option<&[u8]>,
        mode: u32,
        names: &mut NameCache,
    ) -> Gathered {
        let working = std::fs::symlink_metadata(path)
            .ok()
            .filter(Metadata::is_file);
        let attrs = working
            .as_ref()
            .and_then(|_| attributes_by_path(path).ok())
            .unwrap_or_default();
        let (uid, gid, mtime) = match &working {
            Some(m) => (m.uid(), m.gid(), m.mtime()),
            None => (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
                0,
            ),
        };
        let name = path
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_default();
        let (labels, encryption, format, errors, notes) = match content {
            None => (
                Vec::new(),
                EncryptionVerdict::default(),
                None,
                vec!["too large to inspect: only its attributes were checked".to_string()],
                Vec::new(),
            ),
            Some(bytes) => {
                let head = &bytes[..bytes.len().min(HEAD_BYTES)];
                let bounded = Bounded::from_bytes(bytes, self.budget);
                let found = inspect::inspect(&bounded, head, &name);
                let mut labels = found.labels;
                if matches!(found.kind, FileFormat::Text | FileFormat::Email) {
                    labels.extend(self.marking_label(head));
                }
                (
                    labels,
                    found.encryption,
                    Some(found.format),
                    found.errors,
                    found.notes,
                )
            }
        };
        let mut all = Vec::with_capacity(labels.len() + 1);
        if let Some(value) = attrs.label {
            all.push(DetectedLabel {
                name: Some(value),
                detail: Some(LABEL_XATTR.to_string()),
                ..DetectedLabel::new(LabelSource::Xattr)
            });
        }
        all.extend(labels);
        Gathered {
            // A staged blob over the size cap was judged by its attributes only.
            depth: if content.is_some() {
                ReadDepth::Full
            } else {
                ReadDepth::Unread
            },
            facts: FileFacts {
                path: path.to_path_buf(),
                owner: names.user(uid),
                group: names.group(gid),
                mode: mode & 0o7777,
                size: content.map_or(0, |c| c.len() as u64),
                mtime,
                labels: all,
                asset_hint: attrs.asset,
                encryption,
            },
            format,
            errors,
            notes,
        }
    }

    /// Facts of a file whose body is not read.
    fn unread(
        &self,
        path: &Path,
        meta: &Metadata,
        attrs: Attributes,
        names: &mut NameCache,
    ) -> Gathered {
        let encryption = if meta.size() == 0 {
            EncryptionVerdict::new(infoledger_policies::EncryptionStatus::Plaintext, "empty")
        } else {
            EncryptionVerdict::default()
        };
        Gathered {
            depth: ReadDepth::Unread,
            facts: self.facts(path, meta, attrs, Vec::new(), encryption, names),
            format: None,
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Opens the file and inspects its body; with `only_up_to`, a file larger than that whose
    /// verdict is not needed is left unread.
    fn read_body(
        &self,
        path: &Path,
        only_up_to: Option<u64>,
        names: &mut NameCache,
    ) -> Result<Gathered, FactsError> {
        let file = open_for_inspection(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(FactsError::NotRegular);
        }
        let attrs = attributes_of(&file);
        let skip = meta.size() == 0
            || only_up_to.is_some_and(|max| meta.size() > max && !self.needs_verdict(path, &attrs));
        if skip {
            return Ok(self.unread(path, &meta, attrs, names));
        }
        let source = FileSource::new(&file, meta.size());
        let head = Bounded::new(&source, HEAD_BYTES as u64)
            .read_up_to(0, HEAD_BYTES)
            .map_err(|e| match e {
                inspect::InspectError::Io(io) => FactsError::from(io),
                other => FactsError::Unreadable(io::Error::other(other.to_string())),
            })?;
        let bounded = Bounded::with_head(&source, self.budget, &head);
        let name = path
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_default();
        // A scan needs no more than the head of a text file (its marking) unless the file's
        // encryption matters: then SOPS, Ansible Vault and armored blocks further in count.
        // The marking, once looked for (at most once per file).
        let mut marking_seen: Option<Option<DetectedLabel>> = None;
        if only_up_to.is_some() && inspect::sniff(&head, &name) == FileFormat::Text {
            let marking = self.marking_label(&head);
            let marking_requires = marking
                .as_ref()
                .and_then(|m| m.name.as_deref())
                .is_some_and(|n| self.label_requires_encryption(n));
            if !marking_requires && !self.needs_verdict(path, &attrs) {
                let encryption = inspect::encryption_from_head(&head, meta.size());
                return Ok(Gathered {
                    depth: ReadDepth::Head,
                    facts: self.facts(
                        path,
                        &meta,
                        attrs,
                        marking.into_iter().collect(),
                        encryption,
                        names,
                    ),
                    format: Some(FileFormat::Text.as_str().to_string()),
                    errors: Vec::new(),
                    notes: Vec::new(),
                });
            }
            marking_seen = Some(marking);
        }
        let found = inspect::inspect(&bounded, &head, &name);
        let mut labels = found.labels;
        if matches!(found.kind, FileFormat::Text | FileFormat::Email) {
            labels.extend(marking_seen.unwrap_or_else(|| self.marking_label(&head)));
        }
        Ok(Gathered {
            depth: ReadDepth::Full,
            facts: self.facts(path, &meta, attrs, labels, found.encryption, names),
            format: Some(found.format),
            errors: found.errors,
            notes: found.notes,
        })
    }

    /// The label of the strongest marking banner in a text file's head, if any.
    fn marking_label(&self, head: &[u8]) -> Option<DetectedLabel> {
        let hits = marking::find_markings(head, &self.markings);
        let hit = hits
            .iter()
            .max_by_key(|h| self.marking_levels.get(h.index).copied())?;
        let level = *self.marking_levels.get(hit.index)?;
        Some(DetectedLabel {
            name: Some(self.bundle.policy.label(level).name.clone()),
            detail: Some(format!("marking \"{}\" on line {}", hit.marking, hit.line)),
            ..DetectedLabel::new(LabelSource::Marking)
        })
    }

    fn facts(
        &self,
        path: &Path,
        meta: &Metadata,
        attrs: Attributes,
        embedded: Vec<DetectedLabel>,
        encryption: EncryptionVerdict,
        names: &mut NameCache,
    ) -> FileFacts {
        let mut labels = Vec::with_capacity(embedded.len() + 1);
        if let Some(value) = attrs.label {
            labels.push(DetectedLabel {
                name: Some(value),
                detail: Some(LABEL_XATTR.to_string()),
                ..DetectedLabel::new(LabelSource::Xattr)
            });
        }
        labels.extend(embedded);
        FileFacts {
            path: path.to_path_buf(),
            owner: names.user(meta.uid()),
            group: names.group(meta.gid()),
            mode: meta.mode() & 0o7777,
            size: meta.size(),
            mtime: meta.mtime(),
            labels,
            asset_hint: attrs.asset,
            encryption,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoledger_policies::{Bundle, EncryptionStatus};
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        // Under the build folder, not /tmp: it must support user extended attributes.
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/unit-tmp")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn gather_path(p: &Path, listed: &Metadata) -> Result<FileFacts, FactsError> {
        let bundle = Bundle::example().unwrap();
        let _ = listed;
        Inspector::new(&bundle)
            .gather(p, &mut NameCache::default())
            .map(|g| g.facts)
    }

    #[test]
    fn gathers_labels_from_xattr_and_marking_with_provenance() {
        let d = dir("gather");
        let p = d.join("minutes.txt");
        std::fs::write(&p, "Minutes\nSTRICTLY CONFIDENTIAL\n").unwrap();
        xattr::set(&p, LABEL_XATTR, b" Internal ").unwrap();
        xattr::set(&p, ASSET_XATTR, b"ACME-2026").unwrap();
        let facts = gather_path(&p, &std::fs::symlink_metadata(&p).unwrap()).unwrap();
        assert_eq!(facts.labels.len(), 2);
        assert_eq!(facts.labels[0].source, LabelSource::Xattr);
        assert_eq!(facts.labels[0].name.as_deref(), Some("Internal"));
        assert_eq!(facts.labels[1].source, LabelSource::Marking);
        assert_eq!(facts.labels[1].name.as_deref(), Some("secret"));
        assert_eq!(
            facts.labels[1].detail.as_deref(),
            Some("marking \"STRICTLY CONFIDENTIAL\" on line 2")
        );
        assert_eq!(facts.asset_hint.as_deref(), Some("ACME-2026"));
        assert_eq!(facts.encryption.status, EncryptionStatus::Plaintext);
        assert_eq!(facts.size, 30);
    }

    #[test]
    fn a_scan_reads_only_the_head_of_text_whose_encryption_cannot_matter() {
        let d = dir("text-head");
        let p = d.join("secrets.yaml");
        // Past the 4 KiB head: SOPS-encrypted values that only a full inspection sees.
        let mut text = "# notes\n".repeat(600);
        text.push_str("password: ENC[AES256_GCM,data:abc=,iv:abc=,tag:abc=,type:str]\nsops:\n    mac: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n    lastmodified: \"2026-01-01T00:00:00Z\"\n    version: 3.8.1\n");
        std::fs::write(&p, &text).unwrap();
        let bundle = Bundle::example().unwrap();
        let inspector = Inspector::new(&bundle);
        let scanned = inspector.gather(&p, &mut NameCache::default()).unwrap();
        assert_eq!(scanned.facts.encryption.scheme.as_deref(), Some("text"));
        let full = inspector
            .inspect_fully(&p, &mut NameCache::default())
            .unwrap();
        assert_eq!(
            full.facts.encryption.scheme.as_deref(),
            Some("sops"),
            "{full:?}"
        );
        // A marking that requires encryption makes the verdict matter: the whole file is read.
        std::fs::write(&p, format!("CONFIDENTIAL\n{text}")).unwrap();
        let marked = inspector.gather(&p, &mut NameCache::default()).unwrap();
        assert_eq!(
            marked.facts.encryption.scheme.as_deref(),
            Some("sops"),
            "{marked:?}"
        );
    }

    #[test]
    fn oversized_or_binary_xattrs_are_ignored() {
        let d = dir("xattr-bad");
        let p = d.join("f");
        std::fs::write(&p, b"\x00\x01").unwrap();
        xattr::set(&p, LABEL_XATTR, &[b'a'; 300]).unwrap();
        xattr::set(&p, ASSET_XATTR, b"\xff\xfe").unwrap();
        let facts = gather_path(&p, &std::fs::symlink_metadata(&p).unwrap()).unwrap();
        assert!(facts.labels.is_empty());
        assert_eq!(facts.asset_hint, None);
        assert_eq!(facts.encryption.status, EncryptionStatus::Unknown);
    }

    #[test]
    fn a_file_that_vanished_after_listing_is_not_an_error() {
        let d = dir("vanish");
        let p = d.join("gone.txt");
        std::fs::write(&p, "x").unwrap();
        let listed = std::fs::symlink_metadata(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(
            gather_path(&p, &listed),
            Err(FactsError::Vanished)
        ));
    }

    #[test]
    fn a_file_replaced_by_a_symlink_or_fifo_is_not_followed_or_blocked_on() {
        let d = dir("replaced");
        let p = d.join("f");
        std::fs::write(&p, "x").unwrap();
        let listed = std::fs::symlink_metadata(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        assert!(matches!(
            gather_path(&p, &listed),
            Err(FactsError::NotRegular)
        ));
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            gather_path(&p, &listed),
            Err(FactsError::NotRegular)
        ));
    }

    #[test]
    fn reading_does_not_change_the_access_time() {
        let d = dir("atime");
        let p = d.join("f.txt");
        std::fs::write(&p, "CONFIDENTIAL\n").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let f = File::options().write(true).open(&p).unwrap();
        f.set_times(std::fs::FileTimes::new().set_accessed(old))
            .unwrap();
        drop(f);
        let listed = std::fs::symlink_metadata(&p).unwrap();
        gather_path(&p, &listed).unwrap();
        let after = std::fs::metadata(&p).unwrap().accessed().unwrap();
        assert_eq!(after, old);
    }
}
