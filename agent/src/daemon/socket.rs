//! The local socket that answers `infoledger-agent warnings` for people who cannot read the
//! agent's state (`state_dir` is private to the agent's user).
//!
//! A Unix-domain stream socket (`socket` in the configuration, by default
//! `/run/infoledger-agent/agent.sock`, mode 0666 in a 0755 folder) takes one request per
//! connection. The kernel tells who is asking (`SO_PEERCRED`), so nothing the client says about
//! itself is trusted: a user gets the open violations on files they own, root everyone's (or
//! one user's on request).
//!
//! # Protocol
//!
//! The client writes one JSON line of at most [`MAX_REQUEST`] bytes:
//! `{"request":"open_violations"}`, or `{"request":"open_violations","uid":1000}` to ask about
//! one user (root only; another user asking about anyone but themselves is refused). The agent
//! answers with JSON lines, then closes:
//!
//! ```text
//! {"type":"violation","violation":{"path":…,"kind":…,"severity":…,"owner_uid":…,…}}
//! {"type":"end","count":1}
//! ```
//!
//! or with one `{"type":"error","code":…,"message":…}` line (codes: `bad_request`,
//! `forbidden`, `busy`, `unavailable`). The `end` line tells a complete answer from a cut one.
//!
//! # Bounds
//!
//! At most [`MAX_CONNECTIONS`] requests are served at once, each on a thread of its own; more
//! get `busy`. A client has [`READ_TIMEOUT`] to send its request, and each write may take
//! [`WRITE_TIMEOUT`]. The answer is read from the state database through a read-only
//! connection of its own, so the run loop is never involved.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::StateDb;
use crate::warnings::OpenViolation;

/// The longest request line accepted, newline included.
pub const MAX_REQUEST: usize = 1024;
/// Requests served at the same time.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one write to a client may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes read and dropped after answering, before closing.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// The longest answer line a client reads.
const MAX_REPLY_LINE: u64 = 1 << 20;
/// The most violations a client accepts in one answer.
const MAX_REPLY_ITEMS: usize = 1_000_000;

/// A request, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// What is asked: `open_violations`.
    pub request: String,
    /// Whose violations (root only); none means the asker's own (everyone's for root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// One line of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// One open violation.
    Violation {
        /// The violation.
        violation: OpenViolation,
    },
    /// The answer is complete.
    End {
        /// How many violations it held.
        count: u64,
    },
    /// The request was refused or failed.
    Error {
        /// A stable code.
        code: String,
        /// For people.
        message: String,
    },
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Its folder could not be made.
    #[error("cannot create the socket folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process answers there.
    #[error("{} is in use by another running agent", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{} exists and is not a socket; remove it or choose another `socket`", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Binding or setting it up failed.
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Serving the socket; dropping it stops serving and removes the socket file.
#[derive(Debug)]
pub struct SocketServer {
    path: PathBuf,
    /// The socket file's identity, so only our own file is removed.
    inode: (u64, u64),
    stop: Arc<AtomicBool>,
}

impl SocketServer {
    /// Listens on `path` and answers from the state database in `state_dir`.
    pub fn start(path: &Path, state_dir: &Path) -> Result<SocketServer, SocketError> {
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            if !folder.is_dir() {
                std::fs::create_dir_all(folder)
                    .and_then(|()| {
                        // Anyone must reach the socket; the agent's umask would say otherwise.
                        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755))
                    })
                    .map_err(|source| SocketError::Folder {
                        path: folder.to_path_buf(),
                        source,
                    })?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(SocketError::InUse {
                        path: path.to_path_buf(),
                    });
                }
                // Left behind by an agent that did not stop cleanly.
                let _ = std::fs::remove_file(path);
            }
            Ok(_) => {
                return Err(SocketError::NotASocket {
                    path: path.to_path_buf(),
                })
            }
            Err(_) => {}
        }
        let bind_err = |source| SocketError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        // Connecting needs write permission on the socket; who may see what is decided per
        // connection from the peer's credentials.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(bind_err)?;
        let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let server = SocketServer {
            path: path.to_path_buf(),
            inode: (meta.dev(), meta.ino()),
            stop: Arc::clone(&stop),
        };
        let state_dir = state_dir.to_path_buf();
        std::thread::Builder::new()
            .name("infoledger-warnings".into())
            .spawn(move || accept_loop(&listener, &state_dir, &stop))
            .map_err(bind_err)?;
        Ok(server)
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Decrements the count of active connections when a handler ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &UnixListener, state_dir: &Path, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else {
            continue;
        };
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = write_reply(
                &mut stream,
                &error("busy", "too many requests at once; try again"),
            );
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let state_dir = state_dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("infoledger-warnings-request".into())
            .spawn(move || {
                let _slot = slot;
                serve(stream, &state_dir);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot answer a warnings request");
        }
    }
}

fn error(code: &str, message: &str) -> Reply {
    Reply::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

fn write_reply(stream: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Answers one connection.
fn serve(stream: UnixStream, state_dir: &Path) {
    let peer =
        match nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials) {
            Ok(c) => c.uid(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot identify a warnings client");
                return;
            }
        };
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut out = std::io::BufWriter::new(&stream);
    let reply = match read_request(&stream) {
        Ok(request) => answer(&request, peer, state_dir),
        Err(message) => Err(error("bad_request", &message)),
    };
    let written = match reply {
        Ok(list) => {
            let count = list.len() as u64;
            list.into_iter()
                .try_for_each(|violation| write_reply(&mut out, &Reply::Violation { violation }))
                .and_then(|()| write_reply(&mut out, &Reply::End { count }))
        }
        Err(e) => write_reply(&mut out, &e),
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        tracing::debug!(error = %e, uid = peer, "a warnings client went away");
        return;
    }
    drop(out);
    // Closing with unread input would reset the connection and could destroy the answer
    // before the client reads it (an oversized request): say we are done, then drain what
    // the client still sends, boundedly, until it closes too.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = std::io::copy(&mut (&stream).take(DRAIN_LIMIT), &mut std::io::sink());
}

/// Reads the request line, at most [`MAX_REQUEST`] bytes.
fn read_request(stream: &UnixStream) -> Result<Request, String> {
    let mut line = Vec::new();
    BufReader::new(stream.take(MAX_REQUEST as u64))
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if !line.ends_with(b"\n") {
        return Err(format!(
            "the request must be one JSON line of at most {MAX_REQUEST} bytes"
        ));
    }
    serde_json::from_slice(&line).map_err(|e| format!("invalid request: {e}"))
}

/// What `peer` may see of what it asked for.
fn answer(request: &Request, peer: u32, state_dir: &Path) -> Result<Vec<OpenViolation>, Reply> {
    if request.request != "open_violations" {
        return Err(error(
            "bad_request",
            &format!("unknown request `{}`", request.request),
        ));
    }
    let only = match (peer, request.uid) {
        (0, uid) => uid,
        (me, Some(other)) if other != me => {
            return Err(error(
                "forbidden",
                "only root can list another user's warnings",
            ))
        }
        (me, _) => Some(me),
    };
    let list = StateDb::open_read_only(state_dir)
        .and_then(|db| db.open_violations_of(only))
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read open violations for a warnings request");
            error("unavailable", "the agent cannot read its state right now")
        })?;
    Ok(list.into_iter().map(OpenViolation::from).collect())
}

/// Why asking the running agent did not work.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nothing listens there: the agent is not running (or serves no socket).
    #[error("no agent answers at {}: {source}", path.display())]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange failed halfway.
    #[error("talking to the agent at {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The agent answered something this client does not understand.
    #[error("unexpected answer from the agent at {}: {message}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The agent refused or failed.
    #[error("the agent refused: {message} ({code})")]
    Refused {
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Asks the agent listening at `path` for the open violations it lets this process see
/// (`uid`: one user's, for root).
pub fn query(path: &Path, uid: Option<u32>) -> Result<Vec<OpenViolation>, QueryError> {
    let stream = UnixStream::connect(path).map_err(|source| QueryError::NotRunning {
        path: path.to_path_buf(),
        source,
    })?;
    let io = |source| QueryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let protocol = |message: String| QueryError::Protocol {
        path: path.to_path_buf(),
        message,
    };
    stream.set_read_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
    let request = Request {
        request: "open_violations".into(),
        uid,
    };
    write_request(&stream, &request).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    let mut list = Vec::new();
    loop {
        let mut line = Vec::new();
        (&mut reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if line.is_empty() {
            return Err(protocol("the answer ended early".into()));
        }
        match serde_json::from_slice::<Reply>(&line).map_err(|e| protocol(e.to_string()))? {
            Reply::Violation { violation } => {
                if list.len() >= MAX_REPLY_ITEMS {
                    return Err(protocol("too many violations in one answer".into()));
                }
                list.push(violation);
            }
            Reply::End { count } if count == list.len() as u64 => return Ok(list),
            Reply::End { count } => {
                return Err(protocol(format!(
                    "announced {count} violations, sent {}",
                    list.len()
                )))
            }
            Reply::Error { code, message } => return Err(QueryError::Refused { code, message }),
        }
    }
}

fn write_request(mut stream: &UnixStream, request: &Request) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::{Evaluated, Stamp, ViolationRecord};
    use crate::facts::ReadDepth;
    use infoledger_policies::{FileFacts, Kind, Severity};

    fn state_with(dir: &Path, owners: &[(&str, u32)]) {
        let mut db = StateDb::open(dir, 1000, false).unwrap();
        let mut batch = db.batch(chrono::Utc::now()).unwrap();
        for (path, owner) in owners {
            let evaluated = Evaluated {
                asset: None,
                violations: vec![ViolationRecord {
                    kind: Kind::Misplaced,
                    severity: Severity::High,
                    label: Some("confidential".into()),
                    asset: None,
                    department: None,
                    rule: "rules.forbidden: **/Downloads/**".into(),
                    message: "in a forbidden location".into(),
                    fix: "move it".into(),
                    owner: *owner,
                }],
            };
            let facts = FileFacts {
                path: PathBuf::from(path),
                ..FileFacts::default()
            };
            let stamp = Stamp {
                dev: 1,
                ino: 1,
                size: 1,
                mtime_ns: 1,
                ctime_ns: 1,
            };
            batch
                .record(stamp, ReadDepth::Full, &facts, &evaluated)
                .unwrap();
        }
        batch.commit().unwrap();
    }

    fn paths(list: &[OpenViolation]) -> Vec<String> {
        list.iter().map(|v| v.path.display().to_string()).collect()
    }

    #[test]
    fn the_peer_uid_decides_what_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        state_with(dir.path(), &[("/h/a", 1000), ("/h/b", 1001)]);
        let ask = |uid| Request {
            request: "open_violations".into(),
            uid,
        };
        assert_eq!(
            paths(&answer(&ask(None), 1000, dir.path()).unwrap()),
            ["/h/a"]
        );
        assert_eq!(
            paths(&answer(&ask(Some(1000)), 1000, dir.path()).unwrap()),
            ["/h/a"]
        );
        assert_eq!(
            answer(&ask(Some(1001)), 1000, dir.path()).unwrap_err(),
            error("forbidden", "only root can list another user's warnings")
        );
        assert_eq!(
            paths(&answer(&ask(None), 0, dir.path()).unwrap()),
            ["/h/a", "/h/b"]
        );
        assert_eq!(
            paths(&answer(&ask(Some(1001)), 0, dir.path()).unwrap()),
            ["/h/b"]
        );
        let unknown = Request {
            request: "delete_everything".into(),
            uid: None,
        };
        assert!(matches!(
            answer(&unknown, 0, dir.path()),
            Err(Reply::Error { code, .. }) if code == "bad_request"
        ));
    }

    #[test]
    fn a_client_gets_its_list_and_a_broken_request_an_error_line() {
        let dir = tempfile::tempdir().unwrap();
        state_with(dir.path(), &[("/h/a", 0), ("/h/b", 1001)]);
        let sock = dir.path().join("run/agent.sock");
        let server = SocketServer::start(&sock, dir.path()).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        let folder = std::fs::metadata(dir.path().join("run")).unwrap();
        assert_eq!(folder.permissions().mode() & 0o777, 0o755);
        // The tests run as one user: root sees both, anyone else their own (none here).
        let me = nix::unistd::geteuid().as_raw();
        let list = query(&sock, None).unwrap();
        if me == 0 {
            assert_eq!(paths(&list), ["/h/a", "/h/b"]);
        } else {
            assert!(list.is_empty(), "{list:?}");
        }
        // A second server on the same path is refused while the first runs.
        assert!(matches!(
            SocketServer::start(&sock, dir.path()),
            Err(SocketError::InUse { .. })
        ));

        // Garbage and an oversized request get an error line, not a hang.
        for request in [b"not json\n".to_vec(), vec![b'x'; MAX_REQUEST * 2]] {
            let mut s = UnixStream::connect(&sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(&request).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            let reply: Reply = serde_json::from_str(answer.trim()).unwrap();
            assert!(
                matches!(&reply, Reply::Error { code, .. } if code == "bad_request"),
                "{reply:?}"
            );
        }
        drop(server);
        assert!(!sock.exists(), "the socket file is removed on stop");
        assert!(matches!(
            query(&sock, None),
            Err(QueryError::NotRunning { .. })
        ));
    }
}
