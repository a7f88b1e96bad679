//! Desktop notifications: telling a file's owner about a new violation in their graphical
//! session, when they have one.
//!
//! A user's session bus lives at `/run/user/<uid>/bus` (systemd-logind creates the runtime
//! folder at login and removes it at the last logout), so its presence is the test for "has a
//! session". The notification is sent by `notify-send` running *as that user* with
//! `DBUS_SESSION_BUS_ADDRESS` pointing at the socket: the session bus accepts only its own
//! user. The agent runs as root, so it starts
//! `runuser -u <user> -- env DBUS_SESSION_BUS_ADDRESS=unix:path=… notify-send …`; running as the
//! user already (a per-user agent), it starts `env … notify-send …` directly; as anyone else
//! it cannot reach the session and says so.
//!
//! [`DesktopNotifier`] never blocks its caller: requests go into a bounded queue served by one
//! thread, a full queue drops the request (logged), and each `notify-send` (with `runuser`) runs
//! in its own process group that is killed after a timeout. A missing session or a failing
//! `notify-send` is logged, never an error for the daemon: the journal line the daemon writes
//! for every violation is the notification of record.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use infoledger_policies::Severity;

/// How urgent a notification is (the desktop decides how to show it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Shown and then put away.
    Normal,
    /// Stays until dismissed.
    Critical,
}

impl Urgency {
    fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Critical => "critical",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The title line.
    pub summary: String,
    /// The text: what, why, how to fix.
    pub body: String,
    /// How urgent.
    pub urgency: Urgency,
}

impl Notification {
    /// The notification for a violation that opened on `path`, with the same texts as `scan`.
    pub fn for_violation(
        path: &Path,
        kind: infoledger_policies::Kind,
        severity: Severity,
        message: &str,
        fix: &str,
    ) -> Notification {
        let name = path
            .file_name()
            .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
        Notification {
            summary: format!("infoledger: {kind} file {name}"),
            body: format!(
                "{}\n{severity}: {message}\nFix: {fix}",
                path.to_string_lossy()
            ),
            urgency: if severity >= Severity::High {
                Urgency::Critical
            } else {
                Urgency::Normal
            },
        }
    }
}

/// Where and how notifications are sent.
#[derive(Debug, Clone)]
pub struct DesktopOptions {
    /// The folder holding users' runtime folders (`/run/user`).
    pub runtime_base: PathBuf,
    /// The program that sends a notification (`notify-send`, from libnotify-bin).
    pub program: PathBuf,
    /// How long one notification may take before it is given up and killed.
    pub timeout: Duration,
    /// Requests waiting at most; more are dropped.
    pub queue: usize,
}

impl Default for DesktopOptions {
    fn default() -> Self {
        DesktopOptions {
            runtime_base: PathBuf::from("/run/user"),
            program: PathBuf::from("notify-send"),
            timeout: Duration::from_secs(5),
            queue: 64,
        }
    }
}

/// Why a notification was not shown.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The user has no graphical session (no session bus).
    #[error("user {uid} has no desktop session (no {})", bus.display())]
    NoSession {
        /// The user.
        uid: u32,
        /// Where the session bus would be.
        bus: PathBuf,
    },
    /// The uid has no user name (needed to run as the user).
    #[error("uid {0} has no user name")]
    UnknownUser(u32),
    /// Only root or the user can reach the user's session.
    #[error("cannot reach the session of uid {uid} as uid {me}")]
    NotPermitted {
        /// The user.
        uid: u32,
        /// Who we are.
        me: u32,
    },
    /// The program could not be started.
    #[error("cannot run {}: {source}", program.display())]
    Spawn {
        /// What was started.
        program: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// It did not finish in time and was killed.
    #[error("notification timed out after {0:?}")]
    TimedOut(Duration),
    /// It finished with an error.
    #[error("notification failed ({status}): {stderr}")]
    Failed {
        /// Exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
}

/// The session bus socket of `uid`, if the user has a session.
pub fn session_bus(runtime_base: &Path, uid: u32) -> Result<PathBuf, NotifyError> {
    let bus = runtime_base.join(uid.to_string()).join("bus");
    match std::fs::metadata(&bus) {
        Ok(m) if m.file_type().is_socket() => Ok(bus),
        _ => Err(NotifyError::NoSession { uid, bus }),
    }
}

/// A D-Bus address for a socket path: bytes outside `[-0-9A-Za-z_/.\*]` are %-escaped, as the
/// D-Bus specification requires of address values.
pub fn bus_address(socket: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("unix:path=");
    for &b in socket.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.*".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02x}"));
        }
    }
    s
}

/// Markup-escapes the body: notification servers interpret a subset of HTML there, and file
/// names or label values may hold `<` or `&`.
fn escape_markup(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The command line that shows `n` in the session of `uid` (`user` by name, bus at `bus`)
/// when run by `me`: program first, then its arguments.
pub fn command_line(
    program: &Path,
    uid: u32,
    user: &str,
    bus: &Path,
    me: u32,
    n: &Notification,
) -> Result<Vec<OsString>, NotifyError> {
    let runtime_dir = bus.parent().unwrap_or(bus);
    let mut argv: Vec<OsString> = Vec::new();
    if me == uid {
        // Already the user.
    } else if me == 0 {
        argv.extend(["runuser", "-u", user, "--"].map(OsString::from));
    } else {
        return Err(NotifyError::NotPermitted { uid, me });
    }
    argv.push("env".into());
    argv.push(format!("DBUS_SESSION_BUS_ADDRESS={}", bus_address(bus)).into());
    let mut xdg = OsString::from("XDG_RUNTIME_DIR=");
    xdg.push(runtime_dir);
    argv.push(xdg);
    argv.push(program.into());
    argv.push("--app-name=infoledger".into());
    argv.push("--icon=dialog-warning".into());
    argv.push(format!("--urgency={}", n.urgency.as_str()).into());
    // `--` so a file name starting with `-` is never taken for an option.
    argv.push("--".into());
    argv.push(n.summary.clone().into());
    argv.push(escape_markup(&n.body).into());
    Ok(argv)
}

/// Shows `n` in the session of `uid` now, waiting at most `options.timeout`.
pub fn send(uid: u32, n: &Notification, options: &DesktopOptions) -> Result<(), NotifyError> {
    let bus = session_bus(&options.runtime_base, uid)?;
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or(NotifyError::UnknownUser(uid))?;
    let me = nix::unistd::geteuid().as_raw();
    let argv = command_line(&options.program, uid, &user, &bus, me, n)?;
    run_bounded(&argv, options.timeout)
}

/// Runs a command line in its own process group, killing the group after `timeout`.
fn run_bounded(argv: &[OsString], timeout: Duration) -> Result<(), NotifyError> {
    let program = PathBuf::from(argv.first().cloned().unwrap_or_default());
    let mut child = Command::new(&program)
        .args(argv.iter().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| NotifyError::Spawn {
            program: program.clone(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut stderr = String::new();
                if let Some(e) = child.stderr.take() {
                    let _ = e.take(4096).read_to_string(&mut stderr);
                }
                return Err(NotifyError::Failed {
                    status,
                    stderr: stderr.trim().to_string(),
                });
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                // The whole group: runuser's child (notify-send) too.
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotifyError::TimedOut(timeout));
            }
        }
    }
}

/// Sends notifications from a thread of its own, so the daemon never waits for a desktop.
#[derive(Debug)]
pub struct DesktopNotifier {
    queue: SyncSender<(u32, Notification)>,
}

impl DesktopNotifier {
    /// Starts the sending thread.
    pub fn start(options: DesktopOptions) -> std::io::Result<DesktopNotifier> {
        let (queue, requests) = mpsc::sync_channel::<(u32, Notification)>(options.queue.max(1));
        std::thread::Builder::new()
            .name("infoledger-desktop".to_string())
            .spawn(move || {
                // Ends when the notifier is dropped and the queue drained.
                for (uid, n) in requests {
                    match send(uid, &n, &options) {
                        Ok(()) => {
                            tracing::debug!(uid, summary = %n.summary, "desktop notification sent")
                        }
                        Err(e @ NotifyError::NoSession { .. }) => {
                            tracing::debug!(uid, error = %e, "no desktop notification");
                        }
                        Err(e) => tracing::info!(uid, error = %e, "desktop notification failed"),
                    }
                }
            })?;
        Ok(DesktopNotifier { queue })
    }

    /// Queues a notification for the user `uid`; returns false (and logs) when the queue is
    /// full or the sender has stopped. Never blocks.
    pub fn notify(&self, uid: u32, n: Notification) -> bool {
        match self.queue.try_send((uid, n)) {
            Ok(()) => true,
            Err(TrySendError::Full((_, n))) => {
                tracing::info!(uid, summary = %n.summary, "desktop notifications queue full; dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use infoledger_policies::Kind;
    use std::os::unix::fs::PermissionsExt;

    fn note() -> Notification {
        Notification::for_violation(
            Path::new("/home/bob/Downloads/-q3 <draft>.xlsx"),
            Kind::Misplaced,
            Severity::High,
            "confidential (from xattr) file in a forbidden location (matches `**/Downloads/**`)",
            "move it to a location that a ledger asset covers, or remove it",
        )
    }

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_violation_becomes_summary_body_and_urgency() {
        let n = note();
        assert_eq!(n.summary, "infoledger: misplaced file -q3 <draft>.xlsx");
        assert_eq!(
            n.body,
            "/home/bob/Downloads/-q3 <draft>.xlsx\nhigh: confidential (from xattr) file in a forbidden location (matches `**/Downloads/**`)\nFix: move it to a location that a ledger asset covers, or remove it"
        );
        assert_eq!(n.urgency, Urgency::Critical);
        let low = Notification::for_violation(
            Path::new("/a"),
            Kind::Mislabeled,
            Severity::Medium,
            "m",
            "f",
        );
        assert_eq!(low.urgency, Urgency::Normal);
    }

    #[test]
    fn root_runs_notify_send_as_the_user_with_the_session_bus() {
        let argv = command_line(
            Path::new("notify-send"),
            1000,
            "bob",
            Path::new("/run/user/1000/bus"),
            0,
            &note(),
        )
        .unwrap();
        assert_eq!(
            strings(&argv),
            [
                "runuser",
                "-u",
                "bob",
                "--",
                "env",
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
                "XDG_RUNTIME_DIR=/run/user/1000",
                "notify-send",
                "--app-name=infoledger",
                "--icon=dialog-warning",
                "--urgency=critical",
                "--",
                "infoledger: misplaced file -q3 <draft>.xlsx",
                "/home/bob/Downloads/-q3 &lt;draft&gt;.xlsx\nhigh: confidential (from xattr) file in a forbidden location (matches `**/Downloads/**`)\nFix: move it to a location that a ledger asset covers, or remove it",
            ]
        );
    }

    #[test]
    fn the_user_itself_needs_no_runuser_and_others_cannot_reach_the_session() {
        let bus = Path::new("/run/user/1000/bus");
        let argv = command_line(Path::new("notify-send"), 1000, "bob", bus, 1000, &note()).unwrap();
        assert_eq!(
            strings(&argv)[..2],
            [
                "env",
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"
            ]
        );
        assert!(matches!(
            command_line(Path::new("notify-send"), 1000, "bob", bus, 1001, &note()),
            Err(NotifyError::NotPermitted {
                uid: 1000,
                me: 1001
            })
        ));
    }

    #[test]
    fn bus_addresses_escape_unusual_bytes() {
        assert_eq!(
            bus_address(Path::new("/run/user/1000/bus")),
            "unix:path=/run/user/1000/bus"
        );
        assert_eq!(
            bus_address(Path::new("/tmp/a b,c=d/bus")),
            "unix:path=/tmp/a%20b%2cc%3dd/bus"
        );
    }

    #[test]
    fn no_session_bus_means_no_session_and_nothing_is_run() {
        let base = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let options = DesktopOptions {
            runtime_base: base.path().to_path_buf(),
            // Would fail loudly if it were run.
            program: PathBuf::from("/nonexistent/notify-send"),
            ..DesktopOptions::default()
        };
        match send(uid, &note(), &options) {
            Err(NotifyError::NoSession { uid: u, bus }) => {
                assert_eq!(u, uid);
                assert_eq!(bus, base.path().join(uid.to_string()).join("bus"));
            }
            other => panic!("{other:?}"),
        }
        // A plain file where the socket should be is no session either.
        std::fs::create_dir(base.path().join(uid.to_string())).unwrap();
        std::fs::write(base.path().join(uid.to_string()).join("bus"), b"").unwrap();
        assert!(matches!(
            send(uid, &note(), &options),
            Err(NotifyError::NoSession { .. })
        ));
    }

    /// A session of our own user: a listening socket and a stand-in for notify-send.
    fn fake_session(
        script: &str,
    ) -> (
        tempfile::TempDir,
        DesktopOptions,
        std::os::unix::net::UnixListener,
    ) {
        let base = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let dir = base.path().join(uid.to_string());
        std::fs::create_dir(&dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.join("bus")).unwrap();
        let program = base.path().join("notify-send");
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let options = DesktopOptions {
            runtime_base: base.path().to_path_buf(),
            program,
            timeout: Duration::from_secs(20),
            queue: 4,
        };
        (base, options, listener)
    }

    #[test]
    fn a_session_gets_the_notification_with_its_bus_address() {
        let (base, options, _listener) = fake_session(
            "#!/bin/sh\nout=\"$(dirname \"$0\")/called\"\nprintf '%s\\n' \"$DBUS_SESSION_BUS_ADDRESS\" \"$@\" > \"$out\"\n",
        );
        let uid = nix::unistd::geteuid().as_raw();
        if nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .is_none()
        {
            panic!("the test user (uid {uid}) needs a name in the user database");
        }
        send(uid, &note(), &options).unwrap();
        let called = std::fs::read_to_string(base.path().join("called")).unwrap();
        let bus = base.path().join(uid.to_string()).join("bus");
        let lines: Vec<&str> = called.lines().collect();
        assert_eq!(lines[0], bus_address(&bus));
        assert_eq!(
            lines[1..6],
            [
                "--app-name=infoledger",
                "--icon=dialog-warning",
                "--urgency=critical",
                "--",
                "infoledger: misplaced file -q3 <draft>.xlsx"
            ]
        );
    }

    #[test]
    fn a_hanging_notifier_is_killed_after_the_timeout_and_a_failing_one_reported() {
        let (_base, mut options, _listener) = fake_session("#!/bin/sh\nexec sleep 600\n");
        options.timeout = Duration::from_millis(200);
        let uid = nix::unistd::geteuid().as_raw();
        assert!(matches!(
            send(uid, &note(), &options),
            Err(NotifyError::TimedOut(_))
        ));
        let (_base, options, _listener) = fake_session("#!/bin/sh\necho 'no server' >&2\nexit 3\n");
        match send(uid, &note(), &options) {
            Err(NotifyError::Failed { status, stderr }) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "no server");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_notifier_returns_at_once_and_delivers_from_its_thread() {
        let (base, options, _listener) =
            fake_session("#!/bin/sh\ntouch \"$(dirname \"$0\")/called\"\n");
        let uid = nix::unistd::geteuid().as_raw();
        let notifier = DesktopNotifier::start(options).unwrap();
        assert!(notifier.notify(uid, note()));
        let called = base.path().join("called");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !called.exists() {
            assert!(Instant::now() < deadline, "the notification never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
