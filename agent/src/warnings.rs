//! `infoledger-agent warnings`: this host's open violations for the person asking, with the
//! same what / why / how-to-fix texts as `scan`.
//!
//! The violations come from the daemon's local state through [`OpenViolations`]: asked of the
//! running agent over its socket ([`crate::daemon::socket`], where the kernel's peer
//! credentials decide what is answered), or read from the state database directly by those who
//! can (root, the agent's own user). This module decides who sees what and how it reads. A user
//! sees the violations on files they own; root sees everyone's (or one user's with `--user`).
//! The invoking user is the *real* uid, so a set-uid or `sudo -u` wrapper shows the person
//! behind it, and `sudo` (real uid 0) shows all.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use infoledger_policies::{Kind, Severity};
use serde::{Deserialize, Serialize};

use crate::daemon::config::DEFAULT_CONFIG_PATH;
use crate::daemon::state::StateDb;

/// One open violation on this host, as the daemon's state records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenViolation {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: Kind,
    /// How bad.
    pub severity: Severity,
    /// The file's owner when the violation was last evaluated.
    pub owner_uid: u32,
    /// The rule that fired (`rules.forbidden: **/Downloads/**`).
    pub rule: String,
    /// One sentence: what is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// When the agent first saw it.
    pub opened_at: DateTime<Utc>,
}

/// Where open violations come from: the daemon's state database.
pub trait OpenViolations {
    /// Every open violation on this host.
    fn open_violations(&self) -> anyhow::Result<Vec<OpenViolation>>;
}

impl OpenViolations for Vec<OpenViolation> {
    fn open_violations(&self) -> anyhow::Result<Vec<OpenViolation>> {
        Ok(self.clone())
    }
}

impl From<crate::daemon::state::OpenViolation> for OpenViolation {
    fn from(o: crate::daemon::state::OpenViolation) -> Self {
        OpenViolation {
            path: o.path,
            kind: o.violation.kind,
            severity: o.violation.severity,
            owner_uid: o.violation.owner,
            rule: o.violation.rule,
            message: o.violation.message,
            fix: o.violation.fix,
            opened_at: o.opened_at,
        }
    }
}

/// The state database read directly (root, or the agent's own user).
impl OpenViolations for StateDb {
    fn open_violations(&self) -> anyhow::Result<Vec<OpenViolation>> {
        Ok(StateDb::open_violations(self)?
            .into_iter()
            .map(OpenViolation::from)
            .collect())
    }
}

/// Whose violations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Everyone's (root without `--user`).
    Everyone,
    /// The files of one user.
    User(u32),
}

/// Who is asking and whom they ask about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AudienceError {
    /// A user other than root asked about someone else.
    #[error("only root can list another user's warnings")]
    NotRoot,
    /// `--user` names nobody.
    #[error("no user named `{0}`")]
    UnknownUser(String),
}

/// The audience for `invoker` (a real uid) asking about `user` (`--user`, already resolved).
pub fn audience(invoker: u32, user: Option<u32>) -> Result<Audience, AudienceError> {
    match (invoker, user) {
        (0, None) => Ok(Audience::Everyone),
        (0, Some(u)) => Ok(Audience::User(u)),
        (me, Some(u)) if u != me => Err(AudienceError::NotRoot),
        (me, _) => Ok(Audience::User(me)),
    }
}

/// The violations `audience` may see, most severe first, then by path and kind.
pub fn select(all: Vec<OpenViolation>, audience: Audience) -> Vec<OpenViolation> {
    let mut list: Vec<OpenViolation> = all
        .into_iter()
        .filter(|v| match audience {
            Audience::Everyone => true,
            Audience::User(uid) => v.owner_uid == uid,
        })
        .collect();
    list.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    list
}

/// Output formats of `warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum WarningsFormat {
    /// Grouped by file, most severe first: what, why, how to fix.
    #[default]
    Text,
    /// A JSON array, one object per violation.
    Json,
}

/// Arguments of `infoledger-agent warnings`.
#[derive(Debug, Args)]
pub struct WarningsArgs {
    /// The agent's configuration: where its socket and state are. When you cannot read it,
    /// the default socket is asked.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = WarningsFormat::Text)]
    pub format: WarningsFormat,
    /// Only this user's files (root only; others always see their own).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

/// Writes the list for people: grouped by file, each violation with severity, kind, message,
/// rule, fix and since when; the owner too when listing everyone's; then a summary line.
pub fn write_text(
    list: &[OpenViolation],
    audience: Audience,
    user_name: &dyn Fn(u32) -> String,
    out: &mut dyn Write,
) -> io::Result<()> {
    // Keep the severity order of `list` while grouping by file.
    let mut order: Vec<&PathBuf> = Vec::new();
    let mut by_file: BTreeMap<&PathBuf, Vec<&OpenViolation>> = BTreeMap::new();
    for v in list {
        let entry = by_file.entry(&v.path).or_default();
        if entry.is_empty() {
            order.push(&v.path);
        }
        entry.push(v);
    }
    for path in order {
        writeln!(out, "{}", path.display())?;
        for v in by_file.get(path).into_iter().flatten() {
            writeln!(out, "  {}[{}] {}", v.severity, v.kind, v.message)?;
            writeln!(out, "    rule: {}", v.rule)?;
            writeln!(out, "    fix:  {}", v.fix)?;
            let since = v.opened_at.format("%Y-%m-%d %H:%M UTC");
            match audience {
                Audience::Everyone => writeln!(
                    out,
                    "    open since {since}, owner {}",
                    user_name(v.owner_uid)
                )?,
                Audience::User(_) => writeln!(out, "    open since {since}")?,
            }
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(list, audience, user_name))
}

/// `2 open warnings for bob (1 high, 1 medium)`, or `no open warnings for bob`.
pub fn summary_line(
    list: &[OpenViolation],
    audience: Audience,
    user_name: &dyn Fn(u32) -> String,
) -> String {
    let whom = match audience {
        Audience::Everyone => "on this host".to_string(),
        Audience::User(uid) => format!("for {}", user_name(uid)),
    };
    if list.is_empty() {
        return format!("no open warnings {whom}");
    }
    let mut counts: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for v in list {
        *counts.entry(std::cmp::Reverse(v.severity)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", s.0)).collect();
    format!(
        "{} open warning{} {whom} ({})",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// One violation in the JSON output.
#[derive(Debug, Serialize)]
struct JsonViolation<'a> {
    #[serde(flatten)]
    violation: &'a OpenViolation,
    owner: String,
}

/// Writes the list as one JSON array; `owner` is the owner's user name (or uid).
pub fn write_json(
    list: &[OpenViolation],
    user_name: &dyn Fn(u32) -> String,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rows: Vec<JsonViolation<'_>> = list
        .iter()
        .map(|v| JsonViolation {
            violation: v,
            owner: user_name(v.owner_uid),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &rows).map_err(io::Error::other)?;
    writeln!(out)
}

/// The user name of `uid` from the user database, else the number.
pub fn system_user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// The audience of this process's real user asking with `args` (`--user`).
pub fn invoking_audience(args: &WarningsArgs) -> Result<Audience, AudienceError> {
    let invoker = nix::unistd::getuid().as_raw();
    let user = match &args.user {
        None => None,
        Some(name) => Some(
            nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
                .ok_or_else(|| AudienceError::UnknownUser(name.clone()))?,
        ),
    };
    audience(invoker, user)
}

/// Runs `warnings` for the real user of this process against `source`; exit 0 whatever the
/// list holds (it is information, not a check: `scan` and the hook are the checks).
pub fn run(args: &WarningsArgs, source: &dyn OpenViolations) -> anyhow::Result<u8> {
    let audience = invoking_audience(args)?;
    print(args, audience, source)
}

/// Prints what `audience` may see of `source` in the format `args` asks for; exit 0.
pub fn print(
    args: &WarningsArgs,
    audience: Audience,
    source: &dyn OpenViolations,
) -> anyhow::Result<u8> {
    let list = select(source.open_violations()?, audience);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.format {
        WarningsFormat::Text => crate::report::write_escaped(&mut out, |o| {
            write_text(&list, audience, &system_user_name, o)
        }),
        WarningsFormat::Json => write_json(&list, &system_user_name, &mut out),
    }
    .map_err(|e| anyhow::anyhow!("cannot write the list: {e}"))?;
    out.flush()
        .map_err(|e| anyhow::anyhow!("cannot write the list: {e}"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn v(path: &str, kind: Kind, severity: Severity, owner: u32) -> OpenViolation {
        OpenViolation {
            path: PathBuf::from(path),
            kind,
            severity,
            owner_uid: owner,
            rule: format!("rule of {kind}"),
            message: format!("{kind} message"),
            fix: format!("fix {kind}"),
            opened_at: Utc.with_ymd_and_hms(2026, 11, 21, 14, 3, 0).unwrap(),
        }
    }

    fn records() -> Vec<OpenViolation> {
        vec![
            v("/home/bob/b.txt", Kind::Mislabeled, Severity::Medium, 1000),
            v("/home/bob/a.xlsx", Kind::Unencrypted, Severity::High, 1000),
            v("/home/bob/a.xlsx", Kind::Misplaced, Severity::High, 1000),
            v("/home/carol/c.pdf", Kind::Expired, Severity::Critical, 1001),
        ]
    }

    fn name(uid: u32) -> String {
        match uid {
            1000 => "bob".to_string(),
            1001 => "carol".to_string(),
            other => other.to_string(),
        }
    }

    #[test]
    fn users_see_their_own_files_and_root_sees_everyone() {
        assert_eq!(audience(1000, None), Ok(Audience::User(1000)));
        assert_eq!(audience(1000, Some(1000)), Ok(Audience::User(1000)));
        assert_eq!(audience(1000, Some(1001)), Err(AudienceError::NotRoot));
        assert_eq!(audience(0, None), Ok(Audience::Everyone));
        assert_eq!(audience(0, Some(1001)), Ok(Audience::User(1001)));

        let bob: Vec<(String, Kind)> = select(records(), Audience::User(1000))
            .into_iter()
            .map(|v| (v.path.display().to_string(), v.kind))
            .collect();
        assert_eq!(
            bob,
            [
                ("/home/bob/a.xlsx".to_string(), Kind::Misplaced),
                ("/home/bob/a.xlsx".to_string(), Kind::Unencrypted),
                ("/home/bob/b.txt".to_string(), Kind::Mislabeled),
            ]
        );
        assert_eq!(select(records(), Audience::Everyone).len(), 4);
        assert_eq!(select(records(), Audience::User(4242)), vec![]);
    }

    #[test]
    fn text_groups_by_file_with_fix_and_since() {
        let list = select(records(), Audience::User(1000));
        let mut out = Vec::new();
        write_text(&list, Audience::User(1000), &name, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "/home/bob/a.xlsx
  high[misplaced] misplaced message
    rule: rule of misplaced
    fix:  fix misplaced
    open since 2026-11-21 14:03 UTC
  high[unencrypted] unencrypted message
    rule: rule of unencrypted
    fix:  fix unencrypted
    open since 2026-11-21 14:03 UTC

/home/bob/b.txt
  medium[mislabeled] mislabeled message
    rule: rule of mislabeled
    fix:  fix mislabeled
    open since 2026-11-21 14:03 UTC

3 open warnings for bob (2 high, 1 medium)
"
        );
    }

    #[test]
    fn root_sees_owners_and_an_empty_list_says_so() {
        let list = select(records(), Audience::Everyone);
        let mut out = Vec::new();
        write_text(&list, Audience::Everyone, &name, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "/home/carol/c.pdf\n  critical[expired] expired message\n    rule: rule of expired\n    fix:  fix expired\n    open since 2026-11-21 14:03 UTC, owner carol\n\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("4 open warnings on this host (1 critical, 2 high, 1 medium)\n"));
        let mut out = Vec::new();
        write_text(&[], Audience::User(1001), &name, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "no open warnings for carol\n"
        );
    }

    #[test]
    fn json_lists_every_field_and_the_owner_name() {
        let list = select(records(), Audience::User(1001));
        let mut out = Vec::new();
        write_json(&list, &name, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{
                "path": "/home/carol/c.pdf",
                "kind": "expired",
                "severity": "critical",
                "owner_uid": 1001,
                "owner": "carol",
                "rule": "rule of expired",
                "message": "expired message",
                "fix": "fix expired",
                "opened_at": "2026-11-21T14:03:00Z"
            }])
        );
    }
}
