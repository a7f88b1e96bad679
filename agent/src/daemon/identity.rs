//! The agent's identity and the other small files in `state_dir`: enrollment credentials
//! (`identity.json`) and the cached signed bundle (`bundle.json`).
//!
//! The folder is kept at mode 0700 and the files at 0600: the identity holds the secret that
//! signs the agent's requests. Files are written whole to a temporary file, fsynced and renamed
//! into place, so a crash leaves the old or the new version, never half of one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The identity file in `state_dir`.
pub const IDENTITY_FILE: &str = "identity.json";
/// The cached signed bundle in `state_dir`.
pub const BUNDLE_FILE: &str = "bundle.json";
/// The format version of `identity.json`.
const IDENTITY_VERSION: u32 = 1;

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or creating failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what this agent writes.
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What enrollment gave the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The file format version.
    pub version: u32,
    /// The collector this identity belongs to (its base URL at enrollment).
    pub server: String,
    /// The agent id.
    pub agent_id: String,
    /// The signing secret.
    pub secret: String,
    /// The collector's bundle-signing public key (base64).
    pub bundle_public_key: String,
}

impl Identity {
    /// A new identity from an enrollment answer.
    pub fn new(server: &str, agent_id: String, secret: String, bundle_public_key: String) -> Self {
        Identity {
            version: IDENTITY_VERSION,
            server: server.to_owned(),
            agent_id,
            secret,
            bundle_public_key,
        }
    }

    /// Reads `identity.json` from `dir`; `None` when the agent has not enrolled yet.
    pub fn load(dir: &Path) -> Result<Option<Identity>, IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let identity: Identity =
            serde_json::from_slice(&text).map_err(|e| IdentityError::Malformed {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if identity.version != IDENTITY_VERSION {
            return Err(IdentityError::Malformed {
                path,
                reason: format!("unknown version {}", identity.version),
            });
        }
        Ok(Some(identity))
    }

    /// Writes `identity.json` into `dir` (mode 0600).
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| IdentityError::Malformed {
            path: dir.join(IDENTITY_FILE),
            reason: e.to_string(),
        })?;
        write_private(&dir.join(IDENTITY_FILE), &bytes)
    }
}

/// Creates `dir` (mode 0700) or tightens an existing one to 0700.
pub fn prepare_state_dir(dir: &Path) -> Result<(), IdentityError> {
    let err = |source| IdentityError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let mode = fs::metadata(dir).map_err(err)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:03o}", mode & 0o777), "state_dir was accessible to others; setting mode 0700");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// A file's bytes, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` with mode 0600: temporary file, fsync, rename, fsync of the folder.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| IdentityError::Io { path: p, source }
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err(&tmp))?;
    file.write_all(bytes).map_err(err(&tmp))?;
    file.sync_all().map_err(err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(err(path))?;
    if let Some(folder) = path.parent() {
        fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(err(folder))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_privately_and_the_folder_is_tightened() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare_state_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(Identity::load(&dir).unwrap(), None);
        let id = Identity::new("http://c/", "agent-1".into(), "s".into(), "k".into());
        id.save(&dir).unwrap();
        let meta = fs::metadata(dir.join(IDENTITY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(Identity::load(&dir).unwrap(), Some(id));
        assert!(!dir.join("identity.tmp").exists());
        fs::write(dir.join(IDENTITY_FILE), "{").unwrap();
        assert!(matches!(
            Identity::load(&dir),
            Err(IdentityError::Malformed { .. })
        ));
    }
}
