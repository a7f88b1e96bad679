//! The real `infoledger-server` binary's administration commands: API tokens (create, list,
//! revoke) and `audit verify` catching an edited, deleted or cut-off audit entry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::Utc;
use infoledger_server::store::{Role, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_infoledger-server");

fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("admin_cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndatabase = \"collector.db\"\nserver_key_file = \"server.key\"\n",
    )
    .unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("server.toml"))
        .env_remove("INFOLEDGER_LOG")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn token_create_list_revoke_round_trip() {
    let dir = workdir("tokens");
    let created = run(
        &dir,
        &[
            "token",
            "create",
            "--name",
            "alice",
            "--role",
            "manager",
            "--department",
            "Finance",
            "--expires-in",
            "30d",
        ],
    );
    assert_eq!(created.status.code(), Some(0), "{}", err(&created));
    let token = out(&created).trim().to_owned();
    assert!(token.starts_with("ilt_") && token.len() > 40, "{token}");

    let store = Store::open(&dir.join("collector.db")).unwrap();
    let caller = store
        .authenticate_token(&token, Utc::now())
        .unwrap()
        .unwrap();
    assert_eq!(caller.role, Role::Manager);
    assert_eq!(caller.scope(), Some(&["Finance".to_owned()][..]));

    let listed = run(&dir, &["token", "list"]);
    assert_eq!(listed.status.code(), Some(0));
    let listing = out(&listed);
    assert!(
        listing.contains(&caller.token_id)
            && listing.contains("Finance")
            && listing.contains("valid until"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "the secret must never be listed");

    let revoked = run(&dir, &["token", "revoke", &caller.token_id]);
    assert_eq!(revoked.status.code(), Some(0), "{}", err(&revoked));
    assert_eq!(store.authenticate_token(&token, Utc::now()).unwrap(), None);
    assert!(out(&run(&dir, &["token", "list"])).contains("revoked"));
    let missing = run(&dir, &["token", "revoke", "tok-0000"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(err(&missing).contains("not found"), "{}", err(&missing));
}

#[test]
fn token_create_explains_bad_roles_and_scopes_with_exit_2() {
    let dir = workdir("bad_tokens");
    for (args, expect) in [
        (vec!["--role", "manager"], "at least one department"),
        (
            vec!["--role", "admin", "--department", "HR"],
            "every department",
        ),
        (vec!["--role", "root"], "unknown role"),
    ] {
        let mut all = vec!["token", "create", "--name", "x"];
        all.extend(args);
        let o = run(&dir, &all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(err(&o).contains(expect), "{all:?}: {}", err(&o));
        assert!(out(&o).is_empty());
    }
}

#[test]
fn audit_verify_catches_an_edited_a_deleted_and_a_cut_off_entry() {
    let dir = workdir("audit");
    for name in ["a", "b", "c"] {
        let o = run(
            &dir,
            &["token", "create", "--name", name, "--role", "viewer"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    }
    let o = run(&dir, &["enroll-token", "create", "--uses", "3"]);
    assert_eq!(o.status.code(), Some(0));

    let ok = run(&dir, &["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", out(&ok));
    let line = out(&ok);
    assert!(line.contains("intact: 4 entries"), "{line}");
    let head = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(head.starts_with("4:"), "{head}");
    assert_eq!(
        run(&dir, &["audit", "verify", "--expect-head", &head])
            .status
            .code(),
        Some(0)
    );

    let tamper = |sql: &str| {
        let conn = rusqlite::Connection::open(dir.join("collector.db")).unwrap();
        conn.execute_batch(
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;",
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
    };
    let snapshot = std::fs::read(dir.join("collector.db")).unwrap();

    tamper("UPDATE audit_log SET actor = 'mallory' WHERE id = 2");
    let broken = run(&dir, &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        out(&broken).contains("BROKEN at entry 2"),
        "{}",
        out(&broken)
    );

    std::fs::write(dir.join("collector.db"), &snapshot).unwrap();
    tamper("DELETE FROM audit_log WHERE id = 3");
    assert!(out(&run(&dir, &["audit", "verify"])).contains("BROKEN at entry 3"));

    // Cut off the end, head record included: only the remembered head shows it.
    std::fs::write(dir.join("collector.db"), &snapshot).unwrap();
    tamper(
        "DELETE FROM audit_log WHERE id = 4;
         UPDATE audit_head SET last_id = 3, hash = (SELECT hash FROM audit_log WHERE id = 3);",
    );
    assert_eq!(run(&dir, &["audit", "verify"]).status.code(), Some(0));
    let cut = run(&dir, &["audit", "verify", "--expect-head", &head]);
    assert_eq!(cut.status.code(), Some(1));
    assert!(
        out(&cut).contains("no longer contains the expected head"),
        "{}",
        out(&cut)
    );
    assert_eq!(
        run(&dir, &["audit", "verify", "--expect-head", "nonsense"])
            .status
            .code(),
        Some(2)
    );
}
