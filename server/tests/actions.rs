//! Manager actions on real database files: each action's history row, refused transitions and
//! inputs that write nothing, department scope, exception expiry, and how actions and the
//! agent's observations combine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, Duration, TimeZone, Utc};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{
    violation_id, Event, EventBody, HistoryEntry, NewAgent, Store, StoreError, Violation,
    ViolationStatus,
};
use std::path::PathBuf;
use ViolationStatus::{Acknowledged, Excepted, Open, Resolved};

const PATH: &str = "/home/d/Downloads/plan.xlsx";

/// A fresh database for one test under Cargo's per-target temp dir.
fn db_path(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("actions")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("collector.db")
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn opened(seq: u64, path: &str, department: &str) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind: Kind::Misplaced,
            severity: Severity::High,
            label: Some("confidential".into()),
            asset: Some(format!("{department}-asset")),
            department: Some(department.into()),
            rule: Some("rules.forbidden: **/Downloads/**".into()),
            message: format!("{path} is misplaced"),
            fix: "move it".into(),
            host: "h1".into(),
        },
    }
}

fn resolved(seq: u64, path: &str) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationResolved {
            path: path.into(),
            kind: Kind::Misplaced,
        },
    }
}

/// A store with agent `a1` that has reported one open `sales` violation at [`PATH`] (seq 1).
fn store_with_violation(test: &str) -> (Store, String) {
    let store = Store::open(&db_path(test)).unwrap();
    store
        .add_agent(&NewAgent {
            id: "a1".into(),
            hostname: "h1".into(),
            secret_hash: "hash".into(),
            enrolled_at: t(0),
        })
        .unwrap();
    assert_eq!(store.ingest("a1", &[opened(1, PATH, "sales")]).unwrap(), 1);
    (store, violation_id("a1", PATH, Kind::Misplaced))
}

fn current(store: &Store, id: &str) -> Violation {
    store.violation(id, None).unwrap().unwrap().violation
}

fn history(store: &Store, id: &str) -> Vec<HistoryEntry> {
    store.violation(id, None).unwrap().unwrap().history
}

/// One history row as (actor, action, from, to, reason).
type Step = (
    String,
    String,
    Option<ViolationStatus>,
    ViolationStatus,
    Option<String>,
);

/// Each history row as a [`Step`], oldest first.
fn steps(store: &Store, id: &str) -> Vec<Step> {
    history(store, id)
        .into_iter()
        .map(|h| (h.actor, h.action, h.from_status, h.to_status, h.reason))
        .collect()
}

fn step(
    actor: &str,
    action: &str,
    from: Option<ViolationStatus>,
    to: ViolationStatus,
    reason: Option<&str>,
) -> Step {
    (
        actor.into(),
        action.into(),
        from,
        to,
        reason.map(str::to_owned),
    )
}

#[test]
fn each_action_records_who_what_and_why() {
    let (store, id) = store_with_violation("each-action");

    let ack = store
        .acknowledge(&id, "alice", Some("looking into it"), t(10), None)
        .unwrap();
    assert_eq!(
        ack,
        HistoryEntry {
            at: t(10),
            actor: "alice".into(),
            action: "acknowledged".into(),
            from_status: Some(Open),
            to_status: Acknowledged,
            reason: Some("looking into it".into()),
        }
    );
    let v = current(&store, &id);
    assert_eq!((v.status, v.updated_at), (Acknowledged, t(10)));

    store
        .except(&id, "bob", t(60 * 24), "migration next week", t(20), None)
        .unwrap();
    let v = current(&store, &id);
    assert_eq!((v.status, v.excepted_until), (Excepted, Some(t(60 * 24))));

    store
        .comment(&id, "carol", "owner is on leave", t(30), None)
        .unwrap();
    assert_eq!(current(&store, &id).status, Excepted);

    store
        .reopen(&id, "alice", "migration cancelled", t(40), None)
        .unwrap();
    let v = current(&store, &id);
    assert_eq!((v.status, v.excepted_until), (Open, None));

    store.acknowledge(&id, "dave", None, t(50), None).unwrap();

    assert_eq!(
        steps(&store, &id),
        [
            step("agent:a1", "opened", None, Open, None),
            step(
                "alice",
                "acknowledged",
                Some(Open),
                Acknowledged,
                Some("looking into it")
            ),
            step(
                "bob",
                "excepted",
                Some(Acknowledged),
                Excepted,
                Some("migration next week")
            ),
            step(
                "carol",
                "commented",
                Some(Excepted),
                Excepted,
                Some("owner is on leave")
            ),
            step(
                "alice",
                "reopened",
                Some(Excepted),
                Open,
                Some("migration cancelled")
            ),
            step("dave", "acknowledged", Some(Open), Acknowledged, None),
        ]
    );
    let times: Vec<_> = history(&store, &id).iter().map(|h| h.at).collect();
    assert_eq!(times, [t(1), t(10), t(20), t(30), t(40), t(50)]);
}

#[test]
fn an_exception_can_be_renewed_with_a_new_date() {
    let (store, id) = store_with_violation("renew");
    store
        .except(&id, "bob", t(100), "first", t(10), None)
        .unwrap();
    store
        .except(&id, "bob", t(200), "longer", t(20), None)
        .unwrap();
    let v = current(&store, &id);
    assert_eq!((v.status, v.excepted_until), (Excepted, Some(t(200))));
    assert_eq!(
        steps(&store, &id).last().unwrap(),
        &step("bob", "excepted", Some(Excepted), Excepted, Some("longer"))
    );
}

/// Runs `refused`, checks its error and that neither the row nor the history changed.
fn assert_refused_writes_nothing(
    store: &Store,
    id: &str,
    refused: impl FnOnce() -> Result<HistoryEntry, StoreError>,
    expected: impl FnOnce(&StoreError) -> bool,
) {
    let before = (current(store, id), history(store, id));
    let err = refused().unwrap_err();
    assert!(expected(&err), "unexpected error: {err}");
    assert_eq!((current(store, id), history(store, id)), before);
}

#[test]
fn invalid_transitions_are_refused_and_write_nothing() {
    let (store, id) = store_with_violation("invalid-transitions");
    let transition = |action: &'static str, status: ViolationStatus| {
        move |e: &StoreError| {
            matches!(e, StoreError::InvalidTransition { action: a, status: s, .. }
                if *a == action && *s == status)
        }
    };

    // Open: nothing to reopen.
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.reopen(&id, "alice", "why not", t(10), None),
        transition("reopen", Open),
    );

    // Acknowledged twice.
    store.acknowledge(&id, "alice", None, t(11), None).unwrap();
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.acknowledge(&id, "bob", None, t(12), None),
        transition("acknowledge", Acknowledged),
    );

    // Excepted: acknowledging would weaken the decision silently.
    store
        .except(&id, "alice", t(500), "ok", t(13), None)
        .unwrap();
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.acknowledge(&id, "bob", None, t(14), None),
        transition("acknowledge", Excepted),
    );

    // Resolved by the agent: only the agent reopens it.
    store.ingest("a1", &[resolved(2, PATH)]).unwrap();
    assert_eq!(current(&store, &id).status, Resolved);
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.acknowledge(&id, "bob", None, t(15), None),
        transition("acknowledge", Resolved),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.except(&id, "bob", t(500), "later", t(15), None),
        transition("except", Resolved),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.reopen(&id, "bob", "not fixed", t(15), None),
        transition("reopen", Resolved),
    );
    // A comment on a resolved violation is fine and keeps it resolved.
    store
        .comment(&id, "bob", "fixed by moving it to the vault", t(16), None)
        .unwrap();
    assert_eq!(current(&store, &id).status, Resolved);
}

#[test]
fn invalid_input_is_refused_and_writes_nothing() {
    let (store, id) = store_with_violation("invalid-input");
    let input = |field: &'static str| move |e: &StoreError| matches!(e, StoreError::InvalidInput { field: f, .. } if *f == field);
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.except(&id, "bob", t(100), "  ", t(10), None),
        input("reason"),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.except(&id, "bob", t(10), "now is not later", t(10), None),
        input("until"),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.except(&id, "bob", t(5), "in the past", t(10), None),
        input("until"),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.acknowledge(&id, "bob", Some(""), t(10), None),
        input("reason"),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.comment(&id, "bob", "\n", t(10), None),
        input("comment"),
    );
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.comment(&id, "bob", &"x".repeat(10_000), t(10), None),
        input("comment"),
    );
    for actor in ["", "system", "agent:a1"] {
        assert_refused_writes_nothing(
            &store,
            &id,
            || store.acknowledge(&id, actor, None, t(10), None),
            input("actor"),
        );
    }
}

#[test]
fn a_violation_outside_the_callers_departments_is_not_found() {
    let (store, id) = store_with_violation("scope");
    let hr = ["hr".to_owned()];
    let none: [String; 0] = [];
    let not_found = |e: &StoreError| matches!(e, StoreError::ViolationNotFound(v) if *v == id);
    for scope in [&hr[..], &none[..]] {
        assert_refused_writes_nothing(
            &store,
            &id,
            || store.acknowledge(&id, "hr-boss", None, t(10), Some(scope)),
            not_found,
        );
        assert_refused_writes_nothing(
            &store,
            &id,
            || store.except(&id, "hr-boss", t(100), "r", t(10), Some(scope)),
            not_found,
        );
        assert_refused_writes_nothing(
            &store,
            &id,
            || store.comment(&id, "hr-boss", "peek", t(10), Some(scope)),
            not_found,
        );
    }
    // The same error as for an id that does not exist at all.
    let missing = "0".repeat(64);
    let err = store
        .acknowledge(&missing, "alice", None, t(10), None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ViolationNotFound(ref v) if *v == missing),
        "{err}"
    );

    // Within scope, the manager acts; then reopening out of scope is refused likewise.
    let sales_hr = ["hr".to_owned(), "sales".to_owned()];
    store
        .acknowledge(&id, "sales-boss", None, t(11), Some(&sales_hr))
        .unwrap();
    assert_refused_writes_nothing(
        &store,
        &id,
        || store.reopen(&id, "hr-boss", "mine now", t(12), Some(&hr)),
        not_found,
    );
    assert_eq!(current(&store, &id).status, Acknowledged);
}

#[test]
fn exceptions_past_their_date_reopen_with_a_system_history_row() {
    let (store, first) = store_with_violation("expiry");
    let other = "/home/d/Downloads/later.xlsx";
    let unexcepted = "/home/d/Downloads/plain.xlsx";
    store
        .ingest(
            "a1",
            &[opened(2, other, "sales"), opened(3, unexcepted, "hr")],
        )
        .unwrap();
    let second = violation_id("a1", other, Kind::Misplaced);
    let third = violation_id("a1", unexcepted, Kind::Misplaced);
    store
        .except(&first, "bob", t(100), "short", t(10), None)
        .unwrap();
    store
        .except(&second, "bob", t(200), "long", t(10), None)
        .unwrap();

    // Before either date: nothing expires.
    assert_eq!(store.expire_exceptions(t(99)).unwrap(), 0);
    assert_eq!(current(&store, &first).status, Excepted);

    // At the first date exactly, only the first exception ends.
    assert_eq!(store.expire_exceptions(t(100)).unwrap(), 1);
    let v = current(&store, &first);
    assert_eq!(
        (v.status, v.excepted_until, v.updated_at),
        (Open, None, t(100))
    );
    let last = history(&store, &first).pop().unwrap();
    assert_eq!(
        last,
        HistoryEntry {
            at: t(100),
            actor: "system".into(),
            action: "exception-expired".into(),
            from_status: Some(Excepted),
            to_status: Open,
            reason: Some("exception until 2026-03-01T10:40:00.000000Z expired".into()),
        }
    );
    assert_eq!(current(&store, &second).status, Excepted);

    // Running again changes nothing; later the second one ends too.
    assert_eq!(store.expire_exceptions(t(150)).unwrap(), 0);
    assert_eq!(store.expire_exceptions(t(1000)).unwrap(), 1);
    assert_eq!(current(&store, &second).status, Open);
    assert_eq!(history(&store, &first).len(), 3);
    assert_eq!(history(&store, &second).len(), 3);
    // A violation never excepted is untouched.
    assert_eq!(history(&store, &third).len(), 1);
}

#[test]
fn an_agent_re_reporting_an_acknowledged_violation_keeps_it_acknowledged() {
    let (store, id) = store_with_violation("re-report");
    store.acknowledge(&id, "alice", None, t(10), None).unwrap();
    let mut again = opened(2, PATH, "sales");
    if let EventBody::ViolationOpened { severity, .. } = &mut again.body {
        *severity = Severity::Critical;
    }
    store.ingest("a1", &[again]).unwrap();
    let v = current(&store, &id);
    // The agent's details are refreshed; the manager's status and the open period stay.
    assert_eq!(
        (v.status, v.severity, v.opened_at),
        (Acknowledged, Severity::Critical, t(1))
    );
    assert_eq!(history(&store, &id).len(), 2);

    // The same holds for an exception.
    store
        .except(&id, "bob", t(500), "accepted", t(20), None)
        .unwrap();
    store.ingest("a1", &[opened(3, PATH, "sales")]).unwrap();
    let v = current(&store, &id);
    assert_eq!((v.status, v.excepted_until), (Excepted, Some(t(500))));
    assert_eq!(history(&store, &id).len(), 3);
}

#[test]
fn a_fix_observed_after_acknowledgement_resolves_and_keeps_both_in_history() {
    let (store, id) = store_with_violation("resolved-after-ack");
    store
        .acknowledge(&id, "alice", Some("will move it"), t(10), None)
        .unwrap();
    assert_eq!(store.ingest("a1", &[resolved(20, PATH)]).unwrap(), 1);
    // Sequence 20 waits behind a gap; the agent's re-reports in between keep the acknowledgement,
    // and the resolution applies once the gap is filled.
    let filler: Vec<Event> = (2..20).map(|seq| opened(seq, PATH, "sales")).collect();
    assert_eq!(store.ingest("a1", &filler).unwrap(), 20);

    let v = current(&store, &id);
    assert_eq!((v.status, v.resolved_at), (Resolved, Some(t(20))));
    assert_eq!(
        steps(&store, &id),
        [
            step("agent:a1", "opened", None, Open, None),
            step(
                "alice",
                "acknowledged",
                Some(Open),
                Acknowledged,
                Some("will move it")
            ),
            step(
                "agent:a1",
                "resolved",
                Some(Acknowledged),
                Resolved,
                Some("resolved by observation")
            ),
        ]
    );
}
