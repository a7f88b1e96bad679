//! The ingest writer: one thread that stores concurrent agents' batches together, one transaction
//! and one fsync for all of them (group commit).
//!
//! Callers ([`Store::ingest`](super::Store::ingest)) check and serialise their batch, put it on a
//! bounded queue and wait for the answer. The writer takes the first batch waiting, then every
//! other batch already queued (up to [`MAX_GROUP_BATCHES`] batches or [`MAX_GROUP_EVENTS`]
//! events), and stores them one after another in a single `BEGIN IMMEDIATE` transaction. A
//! batch that fails (an unknown or revoked agent, a database error inside it) is answered with
//! its own error, the transaction is rolled back, and the group is stored again without it, so
//! the others go on as if it had never been there. After the one `COMMIT` (fsynced:
//! `synchronous=FULL`) every caller gets its own answer. If the commit itself fails, nothing of
//! the group is stored and every caller gets an error, so no answer ever acknowledges an event
//! that is not durable.
//!
//! While one group commits, the next one gathers in the queue, so the more agents send at once,
//! the more batches share an fsync. The queue holds at most [`QUEUE_CAPACITY`] batches; a caller
//! that finds it full waits, which slows the HTTP handlers down instead of letting memory grow
//! (back-pressure).
//!
//! The writer locks the store's one writer connection for each group only, so the other writes
//! (enrollment, managers' actions) interleave with groups on the same connection and never meet a
//! `SQLITE_BUSY` from this process.

use super::ingest::{store_batch, PreparedBatch};
use super::{timestamp, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// How many batches may wait for the writer before callers block.
pub(crate) const QUEUE_CAPACITY: usize = 64;
/// At most this many batches share one transaction, which bounds its latency.
pub(crate) const MAX_GROUP_BATCHES: usize = 256;
/// A group stops taking batches once it holds this many events.
pub(crate) const MAX_GROUP_EVENTS: usize = 50_000;

/// Counters of the ingest path since the store was opened, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounters {
    /// Batches put on the writer's queue (counted once queued, so a scrape may briefly see
    /// `queue_popped` one ahead).
    pub queue_pushed: u64,
    /// Batches taken off the queue by the writer.
    pub queue_popped: u64,
    /// Batches stored and committed (each answered with its `stored_through`).
    pub batches_committed: u64,
    /// Batches answered with an error.
    pub batches_failed: u64,
    /// Events newly stored by committed batches (replays are not counted).
    pub events_stored: u64,
    /// Group transactions committed.
    pub transactions: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queue_pushed: AtomicU64,
    queue_popped: AtomicU64,
    batches_committed: AtomicU64,
    batches_failed: AtomicU64,
    events_stored: AtomicU64,
    transactions: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> IngestCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestCounters {
            queue_pushed: get(&self.queue_pushed),
            queue_popped: get(&self.queue_popped),
            batches_committed: get(&self.batches_committed),
            batches_failed: get(&self.batches_failed),
            events_stored: get(&self.events_stored),
            transactions: get(&self.transactions),
        }
    }
}

/// One caller's batch and where its answer goes.
struct Job {
    batch: PreparedBatch,
    reply: SyncSender<Result<u64, StoreError>>,
}

/// The queue in front of the writer thread, and the thread.
#[derive(Debug)]
pub(crate) struct IngestQueue {
    // `None` once closed. Callers clone the sender and send outside the lock, so a full queue
    // blocks only the callers, never `close`.
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl IngestQueue {
    /// Starts the writer thread over `writer`, the store's writer connection.
    pub(crate) fn start(writer: Arc<Mutex<Connection>>) -> Result<IngestQueue, StoreError> {
        let (sender, receiver) = mpsc::sync_channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("infoledger-ingest".into())
            .spawn(move || run(&writer, &receiver, &thread_counters))
            .map_err(StoreError::WriterThread)?;
        Ok(IngestQueue {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Queues `batch` (waiting while the queue is full) and waits for the writer's answer.
    pub(crate) fn submit(&self, batch: PreparedBatch) -> Result<u64, StoreError> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = mpsc::sync_channel(1);
        sender
            .send(Job { batch, reply })
            .map_err(|_| StoreError::Closed)?;
        Counters::add(&self.counters.queue_pushed, 1);
        // The writer answers every job it takes; a closed channel means it is gone.
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn counters(&self) -> IngestCounters {
        self.counters.snapshot()
    }

    /// Stops taking batches, lets the writer store and answer every batch already queued, and
    /// waits for it to finish. Idempotent.
    pub(crate) fn close(&self) {
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The writer ends once every sender (ours and those of callers still sending) is
            // gone and the queue is empty.
            if thread.join().is_err() {
                tracing::error!("the ingest writer panicked; queued batches were not stored");
            }
        }
    }
}

impl Drop for IngestQueue {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: one group per loop, until the queue is closed and empty.
fn run(writer: &Mutex<Connection>, queue: &Receiver<Job>, counters: &Counters) {
    while let Ok(first) = queue.recv() {
        let mut events = first.batch.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_BATCHES && events < MAX_GROUP_EVENTS {
            match queue.try_recv() {
                Ok(job) => {
                    events += job.batch.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        Counters::add(&counters.queue_popped, group.len() as u64);
        let outcomes = {
            // A panic while holding the lock dropped its transaction, which rolled back.
            let mut conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
            commit_group(&mut conn, &group, counters)
        };
        for (job, outcome) in group.into_iter().zip(outcomes) {
            // A caller that gave up waiting no longer needs its answer.
            let _ = job.reply.send(outcome);
        }
    }
}

/// Stores every job's batch in one transaction and commits once; returns one outcome per job,
/// in order.
///
/// A batch that fails is answered with its error, the transaction is rolled back, and the group
/// is stored again without it. Failures are rare (an unknown or revoked agent, a corrupt row);
/// the alternative, a savepoint around every batch, halved throughput, because SQLite then keeps
/// a statement journal for every statement of every batch.
fn commit_group(
    conn: &mut Connection,
    group: &[Job],
    counters: &Counters,
) -> Vec<Result<u64, StoreError>> {
    let now = timestamp(chrono::Utc::now());
    let mut outcomes: Vec<Option<Result<u64, StoreError>>> = group.iter().map(|_| None).collect();
    // Each pass either commits or settles one more batch as failed: at most one pass per batch.
    loop {
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => return settle(outcomes, &e, counters),
        };
        let mut stored = Vec::with_capacity(group.len());
        let mut failure = None;
        for (i, job) in group.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match store_batch(&tx, &job.batch, &now) {
                Ok(s) => stored.push((i, s)),
                Err(e) => {
                    failure = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = failure {
            // Dropping the transaction rolls back everything this pass stored.
            drop(tx);
            outcomes[i] = Some(Err(e));
            Counters::add(&counters.batches_failed, 1);
            continue;
        }
        if stored.is_empty() {
            // Every batch failed; there is nothing to commit.
            return outcomes.into_iter().flatten().collect();
        }
        if let Err(e) = tx.commit() {
            return settle(outcomes, &e, counters);
        }
        Counters::add(&counters.transactions, 1);
        Counters::add(&counters.batches_committed, stored.len() as u64);
        for (i, s) in stored {
            Counters::add(&counters.events_stored, s.fresh);
            outcomes[i] = Some(Ok(s.stored_through));
        }
        return outcomes.into_iter().flatten().collect();
    }
}

/// The answers when the group's transaction could not begin or commit: nothing of it is stored;
/// batches already settled as failed keep their own error.
fn settle(
    outcomes: Vec<Option<Result<u64, StoreError>>>,
    error: &rusqlite::Error,
    counters: &Counters,
) -> Vec<Result<u64, StoreError>> {
    let unsettled = outcomes.iter().filter(|o| o.is_none()).count();
    tracing::error!(error = %error, batches = unsettled, "ingest transaction failed; nothing of it was stored");
    Counters::add(&counters.batches_failed, unsettled as u64);
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(StoreError::GroupFailed(error.to_string()))))
        .collect()
}
