//! Gathering a file's facts: metadata, owner and group names, labels from extended attributes and
//! markings, and the encryption verdict, reading at most a bounded prefix of the file.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use infoledger_policies::{DetectedLabel, FileFacts, LabelSource, Policy, Principal};
use xattr::FileExt;

use crate::inspect::{self, marking, HEAD_BYTES};

/// Extended attribute holding a file's label, set by people or tools (`setfattr`).
pub const LABEL_XATTR: &str = "user.infoledger.label";
/// Extended attribute naming the ledger asset a file belongs to.
pub const ASSET_XATTR: &str = "user.infoledger.asset";
/// Longest extended-attribute value taken into account.
const MAX_XATTR: usize = 256;

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

fn read_head(file: &mut File, limit: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(limit.min(HEAD_BYTES));
    file.take(limit as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn xattr_text(file: &File, name: &str) -> Option<String> {
    // Unsupported filesystems and absent attributes both mean: no value.
    let raw = file.get_xattr(name).ok().flatten()?;
    if raw.is_empty() || raw.len() > MAX_XATTR {
        return None;
    }
    let text = std::str::from_utf8(&raw).ok()?.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_string())
}

/// Gathers the facts of the regular file at `path`, whose `lstat` metadata the walk already has.
pub fn gather(
    path: &Path,
    listed: &Metadata,
    policy: &Policy,
    markings: &[String],
    names: &mut NameCache,
) -> Result<FileFacts, FactsError> {
    let mut file = open_for_inspection(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FactsError::NotRegular);
    }
    if meta.dev() != listed.dev() || meta.ino() != listed.ino() {
        // Replaced between listing and opening: inspect what is there now.
        tracing::debug!(path = %path.display(), "file replaced during scan");
    }
    let head = read_head(&mut file, HEAD_BYTES)?;
    let mut labels = Vec::new();
    if let Some(value) = xattr_text(&file, LABEL_XATTR) {
        labels.push(DetectedLabel {
            name: Some(value),
            detail: Some(LABEL_XATTR.to_string()),
            ..DetectedLabel::new(LabelSource::Xattr)
        });
    }
    let hits = marking::find_markings(&head, markings);
    // The strongest marking speaks for the file; weaker ones on the same page add nothing.
    let levels = policy.markings();
    if let Some(hit) = hits
        .iter()
        .max_by_key(|h| levels.get(h.index).map(|(_, l)| *l))
    {
        if let Some((_, level)) = levels.get(hit.index) {
            labels.push(DetectedLabel {
                name: Some(policy.label(*level).name.clone()),
                detail: Some(format!("marking \"{}\" on line {}", hit.marking, hit.line)),
                ..DetectedLabel::new(LabelSource::Marking)
            });
        }
    }
    Ok(FileFacts {
        path: path.to_path_buf(),
        owner: names.user(meta.uid()),
        group: names.group(meta.gid()),
        mode: meta.mode() & 0o7777,
        size: meta.size(),
        mtime: meta.mtime(),
        labels,
        asset_hint: xattr_text(&file, ASSET_XATTR),
        encryption: inspect::encryption_from_head(&head, meta.size()),
    })
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
        let markings: Vec<String> = bundle
            .policy
            .markings()
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        gather(
            p,
            listed,
            &bundle.policy,
            &markings,
            &mut NameCache::default(),
        )
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
