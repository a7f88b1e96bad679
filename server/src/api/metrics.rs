//! `GET /metrics`: the collector's figures in the Prometheus text exposition format (0.0.4).
//!
//! A small registry of atomics per [`AppState`] rather than the `metrics` facade: the facade keeps
//! one global recorder per process, while a process here may run several routers (tests, a
//! benchmark with a baseline server), each of which must count exactly its own requests; and the
//! set of series is small and fixed. Counters follow `infoledger_<thing>_<unit>_total`; the
//! writer's queue depth is exposed as pushed/popped counters (depth = pushed − popped).
//!
//! Series:
//! - `infoledger_http_requests_total{route,status}`: answered requests by matched route (or
//!   `unmatched`) and status class (`2xx` … `5xx`);
//! - `infoledger_ingest_request_duration_seconds`: histogram of `POST /api/v1/events` from the
//!   request head to the answer (verification, parsing, queueing, the commit);
//! - `infoledger_events_stored_total`, `infoledger_ingest_batches_total{outcome}`,
//!   `infoledger_store_transactions_total`, `infoledger_ingest_queue_{pushed,popped}_total`: the
//!   store's ingest counters since start;
//! - `infoledger_violations{status}`: violations by status, read from the database at scrape time.

use super::{AppError, AppState};
use crate::store::ViolationStatus;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The route whose latency the ingest histogram records.
const INGEST_ROUTE: &str = "/api/v1/events";
/// The label of requests that matched no route (kept apart so unknown paths cannot create
/// series).
const UNMATCHED: &str = "unmatched";
/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The HTTP side's counters; the store keeps its own.
#[derive(Debug, Default)]
pub(super) struct HttpMetrics {
    // Route → answers per status class. A handful of routes: a lock held for one increment.
    requests: Mutex<BTreeMap<String, [u64; 5]>>,
    ingest_latency: Histogram,
}

impl HttpMetrics {
    fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        {
            let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            match requests.get_mut(route) {
                Some(counts) => counts[class] += 1,
                None => {
                    let mut counts = [0; 5];
                    counts[class] = 1;
                    requests.insert(route.to_owned(), counts);
                }
            }
        }
        if route == INGEST_ROUTE {
            self.ingest_latency.observe(elapsed);
        }
    }
}

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    // Non-cumulative counts per bucket, then one for +Inf; rendered cumulatively.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// Middleware: counts every answer by route and status class, times ingest requests, and logs
/// the start of each request at DEBUG (the moment the request head has been read).
pub(super) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    tracing::debug!(method = %request.method(), route = %route, "request started");
    let response = next.run(request).await;
    state
        .inner
        .metrics
        .record(&route, response.status().as_u16(), started.elapsed());
    response
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let store = state.store();
    let violations = tokio::task::spawn_blocking(move || store.violations_by_status())
        .await?
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let mut out = String::with_capacity(4096);
    render(&state, &violations, &mut out);
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render(state: &AppState, violations: &[(ViolationStatus, u64)], out: &mut String) {
    let metrics = &state.inner.metrics;
    let name = "infoledger_http_requests_total";
    header(
        out,
        name,
        "counter",
        "HTTP requests answered, by route and status class.",
    );
    {
        let requests = metrics
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (route, counts) in requests.iter() {
            for (class, count) in STATUS_CLASSES.iter().zip(counts) {
                if *count > 0 {
                    let route = escape(route);
                    let _ = writeln!(
                        out,
                        "{name}{{route=\"{route}\",status=\"{class}\"}} {count}"
                    );
                }
            }
        }
    }

    let name = "infoledger_ingest_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Time to answer POST /api/v1/events, from the request head to the answer after the commit.",
    );
    metrics.ingest_latency.render(out, name);

    let ingest = state.inner.store.ingest_counters();
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    };
    counter(
        out,
        "infoledger_events_stored_total",
        "Events newly stored (replayed events are not counted).",
        ingest.events_stored,
    );
    let name = "infoledger_ingest_batches_total";
    header(
        out,
        name,
        "counter",
        "Event batches answered by the store, by outcome.",
    );
    let _ = writeln!(
        out,
        "{name}{{outcome=\"committed\"}} {}",
        ingest.batches_committed
    );
    let _ = writeln!(
        out,
        "{name}{{outcome=\"failed\"}} {}",
        ingest.batches_failed
    );
    counter(
        out,
        "infoledger_store_transactions_total",
        "Ingest transactions committed (each may hold many batches).",
        ingest.transactions,
    );
    counter(
        out,
        "infoledger_ingest_queue_pushed_total",
        "Batches queued for the store's writer.",
        ingest.queue_pushed,
    );
    counter(
        out,
        "infoledger_ingest_queue_popped_total",
        "Batches taken off the queue by the store's writer.",
        ingest.queue_popped,
    );

    let name = "infoledger_violations";
    header(out, name, "gauge", "Violations by status.");
    for (status, count) in violations {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {count}");
    }
}

/// A label value with `\`, `"` and newlines escaped as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_in_seconds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x");
        assert!(out.contains("x_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.01\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 60.0205\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
