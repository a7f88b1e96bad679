//! Group commit: concurrent batches share one transaction, yet each succeeds or fails on its own
//! and gets its own answer; closing the store stores what is queued before refusing more.
//!
//! To make batches meet in one group deterministically, the tests hold the database's write lock
//! from a second connection while the batches queue up behind the writer, then release it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, Duration, TimeZone, Utc};
use infoledger_policies::{Kind, Severity};
use infoledger_server::store::{Event, EventBody, NewAgent, Store, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// How long a test waits for a condition before failing; generous for loaded machines.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

fn db_path(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("writer")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("collector.db")
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn store_with_agents(path: &Path, agents: &[String]) -> Arc<Store> {
    let store = Store::open(path).unwrap();
    for id in agents {
        store
            .add_agent(&NewAgent {
                id: id.clone(),
                hostname: format!("{id}.example"),
                secret_hash: "hash".into(),
                enrolled_at: t(0),
            })
            .unwrap();
    }
    Arc::new(store)
}

fn opened(seq: u64, path: &str) -> Event {
    Event {
        seq,
        at: t(seq as i64),
        body: EventBody::ViolationOpened {
            path: path.into(),
            kind: Kind::Misplaced,
            severity: Severity::High,
            label: Some("confidential".into()),
            asset: Some("acme".into()),
            department: Some("sales".into()),
            rule: None,
            message: format!("{path} is misplaced"),
            fix: "move it".into(),
            host: "h1".into(),
        },
    }
}

fn batch(agent: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Event> {
    seqs.map(|seq| opened(seq, &format!("/{agent}/{seq}.docx")))
        .collect()
}

/// Holds the database's write lock from another connection until released or dropped.
struct WriteLock(Connection);

impl WriteLock {
    fn take(path: &Path) -> WriteLock {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(conn)
    }

    fn release(self) {
        self.0.execute_batch("COMMIT").unwrap();
    }
}

/// Waits (bounded) until `n` batches have been queued for the writer.
fn wait_queued(store: &Store, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    while store.ingest_counters().queue_pushed < n {
        assert!(
            Instant::now() < deadline,
            "only {:?} after {PATIENCE:?}",
            store.ingest_counters()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn send(
    store: &Arc<Store>,
    agent: &str,
    events: Vec<Event>,
) -> JoinHandle<Result<u64, StoreError>> {
    let store = Arc::clone(store);
    let agent = agent.to_owned();
    std::thread::spawn(move || store.ingest_owned(agent, events))
}

#[test]
fn concurrent_batches_share_one_transaction_and_each_gets_its_own_answer() {
    let path = db_path("share");
    let agents: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    let store = store_with_agents(&path, &agents);
    // A batch stored earlier behind a gap, so a later batch of a1 applies it too.
    assert_eq!(store.ingest("a1", &batch("a1", 4..=6)).unwrap(), 0);
    let before = store.ingest_counters();

    let lock = WriteLock::take(&path);
    let mut senders = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        // Agent i sends i + 1 events; a1 fills its gap.
        let events = batch(agent, 1..=(i as u64 + 1).max(3));
        senders.push((agent.clone(), send(&store, agent, events)));
    }
    wait_queued(&store, before.queue_pushed + agents.len() as u64);
    lock.release();

    for (agent, sender) in senders {
        let i: u64 = agent[1..].parse().unwrap();
        let expected = if agent == "a1" { 6 } else { (i + 1).max(3) };
        assert_eq!(sender.join().unwrap().unwrap(), expected, "{agent}");
        assert_eq!(store.stored_events(&agent).unwrap(), expected, "{agent}");
    }
    let after = store.ingest_counters();
    assert_eq!(after.batches_committed - before.batches_committed, 12);
    assert_eq!(after.batches_failed, before.batches_failed);
    // The writer took one batch before it met the lock, and then every other one at once.
    let transactions = after.transactions - before.transactions;
    assert!(
        (1..=2).contains(&transactions),
        "{transactions} transactions"
    );
    let fresh: u64 = (0..12u64).map(|i| (i + 1).max(3)).sum();
    assert_eq!(after.events_stored - before.events_stored, fresh);
    assert_eq!(after.queue_popped, after.queue_pushed);
}

#[test]
fn a_failing_batch_is_rolled_back_alone_and_the_others_in_its_group_are_stored() {
    let path = db_path("one_fails");
    let agents: Vec<String> = ["good1", "good2", "broken", "revoked"]
        .map(String::from)
        .into();
    let store = store_with_agents(&path, &agents);
    store.revoke_agent("revoked", t(1)).unwrap();
    // `broken` has events 2..=3 waiting behind a gap, and event 3 is unreadable: filling the gap
    // stores event 1 and applies 1 and 2 before it fails on 3.
    assert_eq!(store.ingest("broken", &batch("broken", 2..=3)).unwrap(), 0);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE events SET payload = 'not json' WHERE agent_id = 'broken' AND seq = 3",
            [],
        )
        .unwrap();
    let before = store.ingest_counters();

    let lock = WriteLock::take(&path);
    let good1 = send(&store, "good1", batch("good1", 1..=3));
    let broken = send(&store, "broken", batch("broken", 1..=1));
    let revoked = send(&store, "revoked", batch("revoked", 1..=2));
    let ghost = send(&store, "ghost", batch("ghost", 1..=2));
    let good2 = send(&store, "good2", batch("good2", 1..=2));
    wait_queued(&store, before.queue_pushed + 5);
    lock.release();

    assert_eq!(good1.join().unwrap().unwrap(), 3);
    assert_eq!(good2.join().unwrap().unwrap(), 2);
    assert!(matches!(broken.join().unwrap(), Err(StoreError::Json(_))));
    assert!(matches!(
        revoked.join().unwrap(),
        Err(StoreError::RevokedAgent(a)) if a == "revoked"
    ));
    assert!(matches!(
        ghost.join().unwrap(),
        Err(StoreError::UnknownAgent(a)) if a == "ghost"
    ));

    // The broken batch left nothing: event 1 not stored, no violation applied, mark unchanged.
    assert_eq!(store.stored_events("broken").unwrap(), 2);
    assert_eq!(store.agent("broken").unwrap().unwrap().contiguous_seq, 0);
    let violations: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM violations WHERE agent_id = 'broken'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(violations, 0);
    assert_eq!(store.stored_events("good1").unwrap(), 3);
    assert_eq!(store.stored_events("good2").unwrap(), 2);
    assert_eq!(store.stored_events("revoked").unwrap(), 0);

    let after = store.ingest_counters();
    assert_eq!(after.batches_committed - before.batches_committed, 2);
    assert_eq!(after.batches_failed - before.batches_failed, 3);
    assert_eq!(after.events_stored - before.events_stored, 5);
}

#[test]
fn closing_stores_every_queued_batch_then_refuses_new_ones() {
    let path = db_path("close");
    let agents: Vec<String> = (0..6).map(|i| format!("a{i}")).collect();
    let store = store_with_agents(&path, &agents);

    let lock = WriteLock::take(&path);
    let senders: Vec<_> = agents
        .iter()
        .map(|a| (a.clone(), send(&store, a, batch(a, 1..=4))))
        .collect();
    wait_queued(&store, 6);
    let closer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.close_ingest())
    };
    lock.release();
    closer.join().unwrap();

    for (agent, sender) in senders {
        assert_eq!(sender.join().unwrap().unwrap(), 4, "{agent}");
    }
    assert!(matches!(
        store.ingest("a0", &batch("a0", 5..=5)),
        Err(StoreError::Closed)
    ));
    // Reads still work after closing, and see everything that was answered.
    assert_eq!(store.agent("a0").unwrap().unwrap().contiguous_seq, 4);
    store.close_ingest();
}
