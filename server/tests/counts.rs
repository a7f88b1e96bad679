//! The per-(department, severity, status) counts that the heatmap and `/metrics` read stay equal
//! to counting the violations themselves, through every way a violation changes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, Duration, TimeZone, Utc};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{violation_id, Event, EventBody, NewAgent, Store, ViolationStatus};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn opened(seq: u64, path: &str, severity: Severity, department: Option<&str>) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind: Kind::Misplaced,
            severity,
            label: None,
            asset: None,
            department: department.map(Into::into),
            rule: None,
            message: "m".into(),
            fix: "f".into(),
            host: "h".into(),
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

type Counts = Vec<(Option<String>, String, String, i64)>;

/// (maintained counts, counts from the rows), both without empty cells, in the same order.
fn both_counts(db: &Path) -> (Counts, Counts) {
    let conn = Connection::open(db).unwrap();
    let read = |sql: &str| -> Counts {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    (
        read(
            "SELECT department, severity, status, n FROM violation_counts WHERE n > 0
             ORDER BY department, severity, status",
        ),
        read(
            "SELECT department, severity, status, count(*) FROM violations
             GROUP BY department, severity, status ORDER BY department, severity, status",
        ),
    )
}

#[track_caller]
fn assert_consistent(db: &Path) -> Counts {
    let (kept, counted) = both_counts(db);
    assert_eq!(kept, counted);
    kept
}

#[test]
fn counts_follow_ingest_manager_actions_and_expiry() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("counts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("collector.db");
    let store = Store::open(&db).unwrap();
    store
        .add_agent(&NewAgent {
            id: "a1".into(),
            hostname: "h".into(),
            secret_hash: "x".into(),
            enrolled_at: t(0),
        })
        .unwrap();
    let id = |path: &str| violation_id("a1", path, Kind::Misplaced);

    store
        .ingest(
            "a1",
            &[
                opened(1, "/a", Severity::High, Some("sales")),
                opened(2, "/b", Severity::High, Some("sales")),
                opened(3, "/c", Severity::Low, None),
                opened(4, "/d", Severity::Low, Some("hr")),
            ],
        )
        .unwrap();
    assert_eq!(
        assert_consistent(&db),
        vec![
            (None, "low".into(), "open".into(), 1),
            (Some("hr".into()), "low".into(), "open".into(), 1),
            (Some("sales".into()), "high".into(), "open".into(), 2),
        ]
    );

    // Re-reported with another severity and department: the cell moves.
    store
        .ingest("a1", &[opened(5, "/a", Severity::Critical, Some("hr"))])
        .unwrap();
    assert_consistent(&db);
    // Resolved, then observed again.
    store.ingest("a1", &[resolved(6, "/b")]).unwrap();
    assert_consistent(&db);
    store
        .ingest("a1", &[opened(7, "/b", Severity::High, Some("sales"))])
        .unwrap();
    assert_consistent(&db);

    store
        .acknowledge(&id("/c"), "alice", None, t(10), None)
        .unwrap();
    store
        .except(&id("/d"), "alice", t(20), "vendor audit", t(10), None)
        .unwrap();
    assert_consistent(&db);
    store
        .reopen(&id("/c"), "bob", "not handled", t(11), None)
        .unwrap();
    store
        .comment(&id("/c"), "bob", "looking", t(12), None)
        .unwrap();
    assert_eq!(store.expire_exceptions(t(30)).unwrap(), 1);
    store.ingest("a1", &[resolved(8, "/a")]).unwrap();
    assert_eq!(
        assert_consistent(&db),
        vec![
            (None, "low".into(), "open".into(), 1),
            (Some("hr".into()), "critical".into(), "resolved".into(), 1),
            (Some("hr".into()), "low".into(), "open".into(), 1),
            (Some("sales".into()), "high".into(), "open".into(), 1),
        ]
    );
    assert_eq!(
        store.violations_by_status().unwrap(),
        vec![
            (ViolationStatus::Open, 3),
            (ViolationStatus::Acknowledged, 0),
            (ViolationStatus::Excepted, 0),
            (ViolationStatus::Resolved, 1),
        ]
    );

    // Rows deleted by hand (e.g. a retention job) leave the counts right too.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "DELETE FROM violation_history; DELETE FROM violations WHERE department = 'hr'",
        )
        .unwrap();
    assert_consistent(&db);
    let cells = store.heatmap(None).unwrap();
    assert_eq!(
        cells
            .iter()
            .map(|c| (c.department.clone(), c.severity, c.count))
            .collect::<Vec<_>>(),
        vec![
            (None, Severity::Low, 1),
            (Some("sales".into()), Severity::High, 1)
        ]
    );
}
