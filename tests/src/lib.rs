//! Fixture builders shared by infoledger's tests, demo and benchmark: directory trees with
//! labeled files (extended attributes, marking banners), permissions and symlinks, built on
//! the fly so no fixture is ever downloaded or checked in.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

pub mod formats;

/// The extended attribute that carries a file's label.
pub const LABEL_XATTR: &str = "user.infoledger.label";
/// The extended attribute that names a file's asset.
pub const ASSET_XATTR: &str = "user.infoledger.asset";

/// A scratch directory tree, removed when dropped unless `INFOLEDGER_KEEP_FIXTURES` is set.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Tree {
    /// A fresh, empty tree under `base` (which must not be under `/tmp` when the policy forbids
    /// `/tmp`; tests pass their `CARGO_TARGET_TMPDIR`).
    pub fn new(base: &Path, name: &str) -> Result<Tree> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = base.join(format!("{name}-{}-{n}", std::process::id()));
        if root.exists() {
            make_removable(&root);
            fs::remove_dir_all(&root)
                .with_context(|| format!("cannot clear {}", root.display()))?;
        }
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        // Canonical, so that paths the agent reports compare equal to ours.
        let root = fs::canonicalize(&root)?;
        Ok(Tree { root })
    }

    /// The tree's absolute root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel` inside the tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file (creating parent folders) with mode 0600, and returns its path.
    pub fn file(&self, rel: &str, contents: &[u8]) -> Result<PathBuf> {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, contents).with_context(|| format!("cannot write {}", p.display()))?;
        chmod(&p, 0o600)?;
        Ok(p)
    }

    /// Writes a file labeled through the `user.infoledger.label` extended attribute.
    pub fn labeled(&self, rel: &str, label: &str, contents: &[u8]) -> Result<PathBuf> {
        let p = self.file(rel, contents)?;
        set_xattr(&p, LABEL_XATTR, label)?;
        Ok(p)
    }

    /// Creates a symbolic link `rel` pointing at `target` (which may not exist).
    pub fn symlink(&self, rel: &str, target: &str) -> Result<PathBuf> {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        symlink(target, &p).with_context(|| format!("cannot link {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if std::env::var_os("INFOLEDGER_KEEP_FIXTURES").is_none() {
            make_removable(&self.root);
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

fn make_removable(root: &Path) {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = chmod(entry.path(), 0o700);
        }
    }
}

/// Sets permission bits.
pub fn chmod(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Sets an extended attribute; fails clearly where the filesystem has no user xattrs.
pub fn set_xattr(path: &Path, name: &str, value: &str) -> Result<()> {
    xattr::set(path, name, value.as_bytes()).with_context(|| {
        format!(
            "cannot set {name} on {} (does this filesystem support user extended attributes?)",
            path.display()
        )
    })
}

/// The user and primary group names the tests run as.
pub fn current_user_and_group() -> (String, String) {
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let group = nix::unistd::Group::from_gid(gid)
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name);
    (user, group)
}

/// A command that cannot bypass file permissions: as root, it runs under `setpriv` with the
/// capabilities that override read permissions removed, so a mode-000 file is really unreadable.
pub fn unprivileged(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.arg("--bounding-set=-dac_override,-dac_read_search")
            .arg("--")
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Today's date (UTC) shifted by `days`, as `YYYY-MM-DD`, for ledgers with live deadlines.
pub fn date_from_today(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// Runs a tool that makes a fixture (in `dir`), panicking with the package to install when it
/// is missing and with its stderr when it fails: tests never skip for want of a tool.
pub fn fixture_tool<S: AsRef<std::ffi::OsStr>>(
    dir: &Path,
    program: &str,
    args: &[S],
    package: &str,
) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}); install {package} (.ci/run does)")
        });
    assert!(
        out.status.success(),
        "`{program}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
