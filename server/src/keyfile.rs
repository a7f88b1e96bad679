//! The server key file: read it (refusing one that group or others can read), or create it.
//!
//! The file's bytes, all of them, are the key (at least [`MIN_SERVER_KEY_LEN`]); `serve` writes
//! 32 random bytes when the file is absent. A new key is written to a temporary file with mode
//! 0600, fsynced, and hard-linked into place, so a crash never leaves a half-written key and two
//! servers starting at once cannot overwrite each other's key (the second link fails and that
//! server reads the first one's key).

use crate::api::keys::MIN_SERVER_KEY_LEN;
use crate::api::ServerKey;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A server key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading, creating or inspecting the file failed.
    #[error("server key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may access the file: anyone who reads it can sign as any agent.
    #[error(
        "server key file {} has mode {mode:04o}: it must not be accessible to group or others (chmod 600 it)",
        path.display()
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a regular file.
    #[error("server key file {} is not a regular file", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The file holds fewer than [`MIN_SERVER_KEY_LEN`] bytes.
    #[error(
        "server key file {} holds {len} bytes, at least {MIN_SERVER_KEY_LEN} random bytes are required",
        path.display()
    )]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The system's secure random source failed.
    #[error("secure random source failed while creating {}", path.display())]
    Random {
        /// The key file.
        path: PathBuf,
    },
}

/// The largest key file read: a key is a few dozen bytes, anything far larger is a mistake.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// What [`load_or_create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The file existed and was read.
    Read,
    /// The file was absent and a new key was written.
    Created,
}

/// Reads the key at `path`; `Ok(None)` when there is no such file.
pub fn load(path: &Path) -> Result<Option<ServerKey>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    // Checked on the open file, so the file judged is the file read.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_LEN)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    ServerKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| KeyFileError::TooShort {
            path: path.to_path_buf(),
            len: e.len,
        })
}

/// Reads the key at `path`, creating a new random one (mode 0600) when the file is absent.
pub fn load_or_create(path: &Path) -> Result<(ServerKey, KeyOrigin), KeyFileError> {
    if let Some(key) = load(path)? {
        return Ok((key, KeyOrigin::Read));
    }
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (_, bytes) = ServerKey::generate(&ring::rand::SystemRandom::new()).map_err(|_| {
        KeyFileError::Random {
            path: path.to_path_buf(),
        }
    })?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = write_new(&tmp, &bytes).and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        // Another process created the key in the meantime: use that one.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    match load(path)? {
        Some(key) => Ok((key, KeyOrigin::Created)),
        None => Err(io(std::io::Error::new(
            ErrorKind::NotFound,
            "vanished right after it was created",
        ))),
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only remove bits, but make the mode exact regardless.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_is_created_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        assert!(load(&path).unwrap().is_none());
        let (key, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), MIN_SERVER_KEY_LEN as u64);
        let (again, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Read);
        assert_eq!(key.agent_secret("a"), again.agent_secret("a"));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn open_short_and_odd_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, [9u8; 32]).unwrap();
        for mode in [0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create(&path).unwrap_err();
            assert!(matches!(err, KeyFileError::TooOpen { .. }), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load(&path).unwrap().is_some());

        let short = dir.path().join("short.key");
        write_new(&short, &[1; 31]).unwrap();
        let err = load(&short).unwrap_err();
        assert!(
            matches!(err, KeyFileError::TooShort { len: 31, .. }),
            "{err}"
        );

        let err = load(dir.path()).unwrap_err();
        assert!(matches!(
            err,
            KeyFileError::TooOpen { .. } | KeyFileError::NotAFile { .. }
        ));
    }
}
