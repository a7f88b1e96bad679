//! Heatmap benchmark: the time of `Store::heatmap` over 1,000,000 stored violations.
//!
//! `cargo bench -p infoledger-server --bench heatmap` fills a database (one transaction,
//! prepared statements) with violations spread over 20 departments (and some without one), five
//! severities and the four statuses (60 % open, 10 % acknowledged, 5 % excepted, 25 % resolved),
//! then prints the median of repeated calls, for all departments and for a manager scoped to two.
//! For comparison it also times the same aggregation computed from the violations themselves
//! (what `heatmap` did before the counts table). Figures only; nothing is asserted.
//! `HEATMAP_VIOLATIONS` and `HEATMAP_RUNS` change the size and the number of runs. Without
//! `--bench` (as `cargo test --all-targets` runs it) it fills 10,000 violations and runs three
//! times, as a smoke test of the bench itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly.

use infoledger_server::store::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEPARTMENTS: usize = 20;
const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status(i: usize) -> &'static str {
    match i % 20 {
        0..=11 => "open",
        12..=13 => "acknowledged",
        14 => "excepted",
        _ => "resolved",
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(f());
        samples.push(started.elapsed());
    }
    (median(samples), last.expect("at least one run"))
}

fn main() {
    // `cargo bench` passes `--bench`; without it this is a quick smoke test.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (total, runs) = if measuring {
        (
            env_number("HEATMAP_VIOLATIONS", 1_000_000),
            env_number("HEATMAP_RUNS", 21).max(1),
        )
    } else {
        (10_000, 3)
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-heatmap");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("collector.db");

    // Schema first (migrations), then a bulk fill outside the store.
    drop(Store::open(&db).unwrap());
    let filled = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO agents (id, hostname, secret_hash, enrolled_at)
             VALUES ('bench', 'bench.example', 'x', '2026-01-01T00:00:00.000000Z')",
            [],
        )
        .unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO violations (id, agent_id, host, path, kind, severity, department,
                         message, fix, status, opened_at, updated_at)
                     VALUES (?1, 'bench', 'bench.example', ?2, 'misplaced', ?3, ?4, 'm', 'f', ?5,
                         ?6, ?6)",
                )
                .unwrap();
            for i in 0..total {
                // One in 50 has no department (a shadow-data finding outside the ledger).
                let department = (i % 50 != 0).then(|| format!("dept-{:02}", i % DEPARTMENTS));
                let opened = format!("2026-01-01T00:00:00.{:06}Z", i % 1_000_000);
                insert
                    .execute((
                        format!("{i:064x}"),
                        format!("/srv/share/{i}.docx"),
                        SEVERITIES[(i / 7) % SEVERITIES.len()],
                        department,
                        status(i),
                        opened,
                    ))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
            .unwrap();
    }
    let fill = filled.elapsed();

    let store = Store::open(&db).unwrap();
    let scoped = vec!["dept-03".to_owned(), "dept-11".to_owned()];
    // One untimed call warms the page cache, as on a server that has been running.
    store.heatmap(None).unwrap();
    let (all, cells) = time(runs, || store.heatmap(None).unwrap());
    let (two, scoped_cells) = time(runs, || store.heatmap(Some(&scoped)).unwrap());
    let open: u64 = cells.iter().map(|c| c.count).sum();

    // The same figures aggregated from the violations rows (a scan of `violations_by_status`).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut scan = conn
        .prepare(
            "SELECT department, severity, count(*) FROM violations
             WHERE status IN ('open', 'acknowledged') GROUP BY department, severity",
        )
        .unwrap();
    let (from_rows, rows_open) = time(runs.min(7), || {
        scan.query_map([], |r| r.get::<_, i64>(2))
            .unwrap()
            .map(|n| n.unwrap())
            .sum::<i64>()
    });
    assert_eq!(rows_open as u64, open, "the two ways disagree");

    println!(
        "heatmap over {total} violations ({open} open or acknowledged, {} cells; filled in {:.1} s)",
        cells.len(),
        fill.as_secs_f64()
    );
    println!(
        "  Store::heatmap, all departments: median {:.3} ms of {runs} runs",
        all.as_secs_f64() * 1e3
    );
    println!(
        "  Store::heatmap, 2 departments ({} cells): median {:.3} ms",
        scoped_cells.len(),
        two.as_secs_f64() * 1e3
    );
    println!(
        "  aggregated from the violation rows instead: median {:.1} ms",
        from_rows.as_secs_f64() * 1e3
    );
    println!("  target: <= 25 ms");
    if !measuring {
        println!("(test mode: 10,000 violations; `cargo bench` measures)");
    }
}
