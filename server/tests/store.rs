//! Behaviour of the collector's store on real database files: idempotent ingest, ordering,
//! life cycle, filters, pagination, department restriction and persistence.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, Duration, TimeZone, Utc};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{
    violation_id, Event, EventBody, Health, HeatmapCell, NewAgent, PageRequest, Store, StoreError,
    ViolationFilter, ViolationStatus,
};
use std::collections::HashSet;
use std::path::PathBuf;

/// A fresh directory for one test under Cargo's per-target temp dir.
fn db_path(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("store")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("collector.db")
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn store_with_agents(test: &str, agents: &[&str]) -> (Store, PathBuf) {
    let path = db_path(test);
    let store = Store::open(&path).unwrap();
    for id in agents {
        store
            .add_agent(&NewAgent {
                id: (*id).into(),
                hostname: format!("{id}.example"),
                secret_hash: "hash".into(),
                enrolled_at: t(0),
            })
            .unwrap();
    }
    (store, path)
}

/// A violation_opened event with sensible details.
fn opened(seq: u64, path: &str, kind: Kind, severity: Severity, department: &str) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind,
            severity,
            label: Some("confidential".into()),
            asset: Some(format!("{department}-asset")),
            department: Some(department.into()),
            rule: Some("rules.forbidden: **/Downloads/**".into()),
            message: format!("{path} is {kind}"),
            fix: "move it".into(),
            host: "h1".into(),
        },
    }
}

fn resolved(seq: u64, path: &str, kind: Kind) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationResolved {
            path: path.into(),
            kind,
        },
    }
}

fn schema_rows(path: &PathBuf) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, applied_at FROM schema_version ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn migrations_run_once_and_reopening_is_a_no_op() {
    let path = db_path("migrations");
    let version = Store::open(&path).unwrap().schema_version();
    assert!(version >= 1);
    let first = schema_rows(&path);
    assert_eq!(first.len(), version as usize);
    let again = Store::open(&path).unwrap();
    assert_eq!(again.schema_version(), version);
    assert_eq!(schema_rows(&path), first);
}

#[test]
fn replaying_a_batch_stores_nothing_new_and_returns_the_same_seq() {
    let (store, _) = store_with_agents("replay", &["a1"]);
    let batch = vec![
        opened(1, "/x/1.docx", Kind::Misplaced, Severity::High, "sales"),
        opened(2, "/x/2.docx", Kind::Unencrypted, Severity::Medium, "sales"),
        resolved(3, "/x/1.docx", Kind::Misplaced),
    ];
    assert_eq!(store.ingest("a1", &batch).unwrap(), 3);
    let id = violation_id("a1", "/x/1.docx", Kind::Misplaced);
    let before = store.violation(&id, None).unwrap().unwrap();

    assert_eq!(store.ingest("a1", &batch).unwrap(), 3);
    assert_eq!(store.ingest("a1", &batch[..1]).unwrap(), 3);
    assert_eq!(store.stored_events("a1").unwrap(), 3);
    let after = store.violation(&id, None).unwrap().unwrap();
    // Replaying the `opened` must not reopen the resolved violation nor add history.
    assert_eq!(after.violation.status, ViolationStatus::Resolved);
    assert_eq!(after.history, before.history);
    let all = store
        .list_violations(&ViolationFilter::default(), &PageRequest::first(100), None)
        .unwrap();
    assert_eq!(all.violations.len(), 2);
}

#[test]
fn a_gap_returns_the_highest_contiguous_seq_and_filling_it_applies_in_order() {
    let (store, _) = store_with_agents("gap", &["a1"]);
    let path = "/x/report.pdf";
    assert_eq!(
        store
            .ingest(
                "a1",
                &[opened(1, path, Kind::Expired, Severity::High, "hr")]
            )
            .unwrap(),
        1
    );
    // 3 and 4 arrive before 2: stored, acknowledged only up to 1, not applied yet.
    let late = [
        resolved(3, path, Kind::Expired),
        opened(4, "/x/other.pdf", Kind::Expired, Severity::High, "hr"),
    ];
    assert_eq!(store.ingest("a1", &late).unwrap(), 1);
    assert_eq!(store.stored_events("a1").unwrap(), 3);
    let id = violation_id("a1", path, Kind::Expired);
    assert_eq!(
        store
            .violation(&id, None)
            .unwrap()
            .unwrap()
            .violation
            .status,
        ViolationStatus::Open
    );
    assert!(store
        .violation(&violation_id("a1", "/x/other.pdf", Kind::Expired), None)
        .unwrap()
        .is_none());

    // Filling the gap applies 2, 3 and 4 in order and acknowledges all of them.
    let fill = [Event {
        seq: 2,
        at: t(2),
        body: EventBody::Health(Health {
            version: "0.1.0".into(),
            ..Health::default()
        }),
    }];
    assert_eq!(store.ingest("a1", &fill).unwrap(), 4);
    let detail = store.violation(&id, None).unwrap().unwrap();
    assert_eq!(detail.violation.status, ViolationStatus::Resolved);
    assert_eq!(detail.violation.resolved_at, Some(t(3)));
    assert!(store
        .violation(&violation_id("a1", "/x/other.pdf", Kind::Expired), None)
        .unwrap()
        .is_some());
    assert_eq!(store.agent("a1").unwrap().unwrap().contiguous_seq, 4);
}

#[test]
fn opened_resolved_opened_keeps_the_history_in_order() {
    let (store, _) = store_with_agents("lifecycle", &["a1"]);
    let path = "/home/d/Downloads/plan.xlsx";
    let events = [
        opened(1, path, Kind::Misplaced, Severity::High, "sales"),
        resolved(2, path, Kind::Misplaced),
    ];
    store.ingest("a1", &events).unwrap();
    store
        .ingest(
            "a1",
            &[opened(
                3,
                path,
                Kind::Misplaced,
                Severity::Critical,
                "sales",
            )],
        )
        .unwrap();

    let detail = store
        .violation(&violation_id("a1", path, Kind::Misplaced), None)
        .unwrap()
        .unwrap();
    let v = &detail.violation;
    assert_eq!(
        (v.status, v.severity, v.opened_at, v.resolved_at),
        (ViolationStatus::Open, Severity::Critical, t(3), None)
    );
    let steps: Vec<_> = detail
        .history
        .iter()
        .map(|h| {
            (
                h.action.as_str(),
                h.from_status,
                h.to_status,
                h.at,
                h.reason.as_deref(),
            )
        })
        .collect();
    use ViolationStatus::{Open, Resolved};
    assert_eq!(
        steps,
        [
            ("opened", None, Open, t(1), None),
            (
                "resolved",
                Some(Open),
                Resolved,
                t(2),
                Some("resolved by observation")
            ),
            (
                "reopened",
                Some(Resolved),
                Open,
                t(3),
                Some("observed again")
            ),
        ]
    );
    assert!(detail.history.iter().all(|h| h.actor == "agent:a1"));
}

#[test]
fn a_resolution_of_an_unknown_violation_is_stored_and_the_batch_succeeds() {
    let (store, _) = store_with_agents("unknown-resolution", &["a1"]);
    let batch = [
        resolved(1, "/never/seen.docx", Kind::Unencrypted),
        opened(2, "/x/a.docx", Kind::Unencrypted, Severity::Low, "it"),
    ];
    assert_eq!(store.ingest("a1", &batch).unwrap(), 2);
    assert_eq!(store.stored_events("a1").unwrap(), 2);
    assert!(store
        .violation(
            &violation_id("a1", "/never/seen.docx", Kind::Unencrypted),
            None
        )
        .unwrap()
        .is_none());
    assert!(store
        .violation(&violation_id("a1", "/x/a.docx", Kind::Unencrypted), None)
        .unwrap()
        .is_some());
}

#[test]
fn health_events_update_the_agent() {
    let (store, _) = store_with_agents("health", &["a1"]);
    let health = Health {
        version: "0.2.0".into(),
        queue_depth: 12,
        dropped_events: 0,
        watch_limit_reached: true,
        last_error: Some("inotify watch limit reached".into()),
        ..Health::default()
    };
    store
        .ingest(
            "a1",
            &[Event {
                seq: 1,
                at: t(1),
                body: EventBody::Health(health.clone()),
            }],
        )
        .unwrap();
    let agent = store.agent("a1").unwrap().unwrap();
    assert_eq!(agent.health, Some(health));
    assert_eq!(agent.version.as_deref(), Some("0.2.0"));
    assert!(agent.last_seen.is_some());
}

#[test]
fn unknown_and_revoked_agents_and_bad_sequences_are_refused() {
    let (store, _) = store_with_agents("refusals", &["a1", "a2"]);
    let event = opened(1, "/x", Kind::Misplaced, Severity::Low, "it");
    assert!(matches!(
        store.ingest("ghost", std::slice::from_ref(&event)),
        Err(StoreError::UnknownAgent(_))
    ));
    store.revoke_agent("a2", t(5)).unwrap();
    assert!(matches!(
        store.ingest("a2", std::slice::from_ref(&event)),
        Err(StoreError::RevokedAgent(_))
    ));
    for seq in [0, u64::MAX] {
        let bad = Event {
            seq,
            ..event.clone()
        };
        assert!(matches!(
            store.ingest("a1", &[event.clone(), bad]),
            Err(StoreError::InvalidSequence { .. })
        ));
    }
    // The refused batches left nothing behind.
    assert_eq!(store.stored_events("a1").unwrap(), 0);
    assert_eq!(store.agent("a1").unwrap().unwrap().contiguous_seq, 0);
}

/// 3 departments × 2 kinds × 2 severities × 5 files, opened in one batch; some resolved.
fn seeded(test: &str) -> Store {
    let (store, _) = store_with_agents(test, &["a1"]);
    let mut events = Vec::new();
    let mut seq = 0;
    for department in ["sales", "hr", "it"] {
        for (kind, severity) in [
            (Kind::Misplaced, Severity::High),
            (Kind::Unencrypted, Severity::Low),
        ] {
            for n in 0..5 {
                seq += 1;
                let path = format!("/srv/{department}/file-{n}.docx");
                events.push(opened(seq, &path, kind, severity, department));
            }
        }
    }
    // Resolve two of sales' misplaced files.
    for n in 0..2 {
        seq += 1;
        events.push(resolved(
            seq,
            &format!("/srv/sales/file-{n}.docx"),
            Kind::Misplaced,
        ));
    }
    store.ingest("a1", &events).unwrap();
    store
}

fn all_pages(
    store: &Store,
    filter: &ViolationFilter,
    limit: u32,
    departments: Option<&[String]>,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = store.list_violations(filter, &page, departments).unwrap();
        assert!(got.violations.len() <= limit as usize);
        ids.extend(got.violations.into_iter().map(|v| v.id));
        match got.next {
            // Round-trip through the token as an API client would.
            Some(next) => page.after = Some(next.to_string().parse().unwrap()),
            None => return ids,
        }
    }
}

#[test]
fn filters_select_exactly_the_matching_violations() {
    let store = seeded("filters");
    let count = |filter: ViolationFilter| all_pages(&store, &filter, 1000, None).len();
    assert_eq!(count(ViolationFilter::default()), 30);
    let by_department = ViolationFilter {
        department: Some("hr".into()),
        ..Default::default()
    };
    assert_eq!(count(by_department), 10);
    let open_sales_high = ViolationFilter {
        statuses: vec![ViolationStatus::Open],
        department: Some("sales".into()),
        severities: vec![Severity::High],
        ..Default::default()
    };
    assert_eq!(count(open_sales_high), 3);
    let resolved = ViolationFilter {
        statuses: vec![ViolationStatus::Resolved],
        ..Default::default()
    };
    assert_eq!(count(resolved), 2);
    let kind_and_asset = ViolationFilter {
        kinds: vec![Kind::Unencrypted],
        asset: Some("it-asset".into()),
        ..Default::default()
    };
    assert_eq!(count(kind_and_asset), 5);
    let host_label = ViolationFilter {
        host: Some("h1".into()),
        label: Some("confidential".into()),
        ..Default::default()
    };
    assert_eq!(count(host_label), 30);
    let nobody = ViolationFilter {
        host: Some("h2".into()),
        ..Default::default()
    };
    assert_eq!(count(nobody), 0);
    let path = ViolationFilter {
        path_contains: Some("file-3".into()),
        ..Default::default()
    };
    assert_eq!(count(path), 6);
    // `%` and `_` are literal in a path search, not wildcards.
    let wildcard = ViolationFilter {
        path_contains: Some("file_%".into()),
        ..Default::default()
    };
    assert_eq!(count(wildcard), 0);
}

#[test]
fn pages_visit_every_violation_exactly_once_in_order() {
    let store = seeded("pagination");
    let everything = all_pages(&store, &ViolationFilter::default(), 1000, None);
    assert_eq!(everything.len(), 30);
    for limit in [1, 4, 7, 29, 30, 31] {
        let paged = all_pages(&store, &ViolationFilter::default(), limit, None);
        assert_eq!(paged, everything, "page size {limit}");
    }
    let unique: HashSet<_> = everything.iter().collect();
    assert_eq!(unique.len(), 30);

    // Rows opened in the same instant are ordered by id (newest first: descending) and still
    // paged without loss.
    let (same, _) = store_with_agents("pagination-same-instant", &["a1"]);
    let batch: Vec<Event> = (1..=9)
        .map(|seq| Event {
            at: t(0),
            ..opened(
                seq,
                &format!("/p/{seq}"),
                Kind::Misplaced,
                Severity::Low,
                "it",
            )
        })
        .collect();
    same.ingest("a1", &batch).unwrap();
    let paged = all_pages(&same, &ViolationFilter::default(), 2, None);
    let mut sorted = paged.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(paged, sorted);
    assert_eq!(paged.len(), 9);

    // Filtered and paged together.
    let filter = ViolationFilter {
        department: Some("sales".into()),
        ..Default::default()
    };
    assert_eq!(all_pages(&store, &filter, 3, None).len(), 10);
}

#[test]
fn a_department_restriction_never_leaks_another_departments_rows() {
    let store = seeded("departments");
    // A violation without department (unregistered file) is visible only unrestricted.
    let mut unregistered = opened(
        100,
        "/tmp/shadow.docx",
        Kind::Unregistered,
        Severity::Medium,
        "x",
    );
    if let EventBody::ViolationOpened {
        department, asset, ..
    } = &mut unregistered.body
    {
        *department = None;
        *asset = None;
    }
    // Sequence 100 sits behind a gap; send it as the next one instead.
    unregistered.seq = 33;
    assert_eq!(store.ingest("a1", &[unregistered]).unwrap(), 33);

    let sales = ["sales".to_owned()];
    let sales_hr = ["sales".to_owned(), "hr".to_owned()];
    let none: [String; 0] = [];
    let scoped = |scope: &[String]| {
        let page = store
            .list_violations(
                &ViolationFilter::default(),
                &PageRequest::first(1000),
                Some(scope),
            )
            .unwrap();
        page.violations
            .into_iter()
            .map(|v| v.department)
            .collect::<Vec<_>>()
    };
    let seen = scoped(&sales);
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|d| d.as_deref() == Some("sales")));
    assert_eq!(scoped(&sales_hr).len(), 20);
    assert!(scoped(&none).is_empty());
    assert_eq!(
        all_pages(&store, &ViolationFilter::default(), 1000, None).len(),
        31
    );

    // Asking for another department through the filter does not widen the restriction.
    let other = ViolationFilter {
        department: Some("hr".into()),
        ..Default::default()
    };
    assert!(all_pages(&store, &other, 5, Some(&sales)).is_empty());

    // Single violations: found within the restriction, invisible outside it.
    let hr_id = violation_id("a1", "/srv/hr/file-0.docx", Kind::Misplaced);
    assert!(store.violation(&hr_id, Some(&sales)).unwrap().is_none());
    assert!(store.violation(&hr_id, Some(&sales_hr)).unwrap().is_some());
    let shadow = violation_id("a1", "/tmp/shadow.docx", Kind::Unregistered);
    assert!(store.violation(&shadow, Some(&sales_hr)).unwrap().is_none());
    assert!(store.violation(&shadow, None).unwrap().is_some());

    // The heatmap.
    let cell = |department: &str, severity, count| HeatmapCell {
        department: Some(department.into()),
        severity,
        count,
    };
    assert_eq!(
        store.heatmap(Some(&sales)).unwrap(),
        [
            cell("sales", Severity::Low, 5),
            cell("sales", Severity::High, 3)
        ]
    );
    assert!(store.heatmap(Some(&none)).unwrap().is_empty());
    let everything = store.heatmap(None).unwrap();
    assert_eq!(everything.len(), 7);
    assert_eq!(
        everything[0],
        HeatmapCell {
            department: None,
            severity: Severity::Medium,
            count: 1
        }
    );
    assert_eq!(everything.iter().map(|c| c.count).sum::<u64>(), 29);
}

#[test]
fn data_survives_closing_and_reopening() {
    let (store, path) = store_with_agents("reopen", &["a1"]);
    let batch = [
        opened(1, "/x/a.docx", Kind::Misplaced, Severity::High, "sales"),
        resolved(2, "/x/a.docx", Kind::Misplaced),
        opened(3, "/x/b.docx", Kind::Overexposed, Severity::Medium, "hr"),
        // Waits behind a gap at 4; must be remembered as stored-but-unapplied.
        resolved(5, "/x/b.docx", Kind::Overexposed),
    ];
    assert_eq!(store.ingest("a1", &batch).unwrap(), 3);
    let before = store
        .list_violations(&ViolationFilter::default(), &PageRequest::first(10), None)
        .unwrap();
    let history = store
        .violation(&violation_id("a1", "/x/a.docx", Kind::Misplaced), None)
        .unwrap()
        .unwrap()
        .history;
    drop(store);

    let store = Store::open(&path).unwrap();
    let after = store
        .list_violations(&ViolationFilter::default(), &PageRequest::first(10), None)
        .unwrap();
    assert_eq!(after, before);
    let reread = store
        .violation(&violation_id("a1", "/x/a.docx", Kind::Misplaced), None)
        .unwrap()
        .unwrap()
        .history;
    assert_eq!(reread, history);
    assert_eq!(store.stored_events("a1").unwrap(), 4);
    // Filling the gap after the restart applies the remembered event 5.
    let fill = [opened(4, "/x/c.docx", Kind::Expired, Severity::High, "it")];
    assert_eq!(store.ingest("a1", &fill).unwrap(), 5);
    let b = store
        .violation(&violation_id("a1", "/x/b.docx", Kind::Overexposed), None)
        .unwrap()
        .unwrap();
    assert_eq!(b.violation.status, ViolationStatus::Resolved);
}
