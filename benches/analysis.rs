//! The per-statement cost of tracking and analysis, the work pgscope does that pgbouncer does
//! not: the tracker on the relay thread (pairing a pgbench `-S` exchange and building its
//! `Execution`), and the observer's `Analyzer` (fingerprint, statistics, N+1 detector).
//!
//! Run with `cargo bench --bench analysis`. bench/relay.sh measures what these cost in TPS; this
//! one tells which part of it moved when the code changes.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use pgscope::observe::{Analyzer, Burst, Registry};
use pgscope::proxy::tracker::{Clock, ClockSource, Tracker};
use pgscope::proxy::{CommandTag, Execution, ExecutionSink, Protocol, SqlText};

/// A sink that hands each execution to a channel, as the observer's queue does, and a receiver
/// the benchmark drains so that the cost of dropping the execution (and its text) is counted.
struct ChannelSink(mpsc::SyncSender<Execution>);

impl ExecutionSink for ChannelSink {
    fn record(&mut self, e: Execution) {
        let _ = self.0.try_send(e);
    }
}

fn frame(tag: u8, body: &[u8]) -> (u8, Vec<u8>) {
    (tag, body.to_vec())
}

/// The server's answer to pgbench's select: RowDescription, one DataRow, CommandComplete,
/// ReadyForQuery (the tracker sees only the bodies it needs).
fn select_answer() -> Vec<(u8, Vec<u8>)> {
    vec![
        frame(b'T', b""),
        frame(b'D', b""),
        frame(b'C', b"SELECT 1\0"),
        frame(b'Z', b"I"),
    ]
}

/// One request (`request` feeds the i-th one's frames to the tracker) and its `answer` per
/// iteration, the clock read once per chunk as the relay does; the executions are drained.
fn exchange(
    b: &mut Bencher,
    answer: &[(u8, Vec<u8>)],
    mut request: impl FnMut(&mut Tracker, usize, Clock),
) {
    let (tx, rx) = mpsc::sync_channel(1 << 16);
    let mut t = Tracker::new(1, Box::new(ChannelSink(tx)));
    let mut clock = ClockSource::new();
    let mut i = 0;
    b.iter(|| {
        request(&mut t, i, clock.now());
        let now = clock.now();
        for (tag, body) in answer {
            t.backend(*tag, body, now);
        }
        i += 1;
        while let Ok(e) = rx.try_recv() {
            black_box(e);
        }
    });
}

fn tracker(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracker");
    let answer = select_answer();
    let queries: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            format!(
                "SELECT abalance FROM pgbench_accounts WHERE aid = {};\0",
                i * 977
            )
            .into_bytes()
        })
        .collect();

    g.bench_function("simple_select", |b| {
        exchange(b, &answer, |t, i, now| {
            t.frontend(b'Q', &queries[i & 1023], now)
        })
    });

    // `-M extended`: Parse (unnamed), Bind, Describe portal, Execute, Sync.
    let parse = b"\0SELECT abalance FROM pgbench_accounts WHERE aid = $1;\0\0\0".to_vec();
    let binds: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            let v = (i * 977).to_string();
            let mut b = b"\0\0\0\0\0\x01".to_vec();
            b.extend_from_slice(&(v.len() as i32).to_be_bytes());
            b.extend_from_slice(v.as_bytes());
            b.extend_from_slice(b"\0\0");
            b
        })
        .collect();
    let ext_answer = vec![
        frame(b'1', b""),
        frame(b'2', b""),
        frame(b'T', b""),
        frame(b'D', b""),
        frame(b'C', b"SELECT 1\0"),
        frame(b'Z', b"I"),
    ];
    g.bench_function("extended_select", |b| {
        exchange(b, &ext_answer, |t, i, now| {
            t.frontend(b'P', &parse, now);
            t.frontend(b'B', &binds[i & 1023], now);
            t.frontend(b'D', b"P\0", now);
            t.frontend(b'E', b"\0\0\0\0\0", now);
            t.frontend(b'S', b"", now);
        })
    });
    g.finish();
}

/// An execution as the relay hands it over, `i` statements (of 150 µs each) after `base`.
fn execution(
    sql: &SqlText,
    protocol: Protocol,
    connection_id: u64,
    base: (Instant, SystemTime),
    i: u64,
) -> Execution {
    let since = Duration::from_micros(150 * i);
    Execution {
        connection_id,
        sql: sql.clone(),
        backslash_quotes: false,
        protocol,
        named_statement: false,
        started: base.0 + since,
        started_at: base.1 + since,
        duration: Duration::from_micros(120),
        rows: 1,
        tag: CommandTag::from_bytes(b"SELECT 1"),
        error: None,
        params_digest: 0,
    }
}

/// Iteration `i` of `step` per benchmark iteration, with one analyzer and registry throughout
/// (the findings are dropped).
fn analyze(
    b: &mut Bencher,
    mut step: impl FnMut(&mut Analyzer, &mut Registry, u64, &mut Vec<Burst>),
) {
    let mut registry = Registry::new(5000);
    let mut analyzer = Analyzer::new(5);
    let mut out = Vec::new();
    let mut i = 0u64;
    b.iter(|| {
        step(&mut analyzer, &mut registry, i, &mut out);
        out.clear();
        i += 1;
    });
}

fn analyzer(c: &mut Criterion) {
    let mut g = c.benchmark_group("analyzer");
    let base = (Instant::now(), SystemTime::now());
    let texts: Vec<SqlText> = (0..1024)
        .map(|i| {
            SqlText::new(&format!(
                "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                i * 977
            ))
        })
        .collect();
    g.bench_function("simple_select", |b| {
        analyze(b, |a, registry, i, out| {
            let e = execution(
                &texts[(i & 1023) as usize],
                Protocol::Simple,
                i & 7,
                base,
                i,
            );
            a.execution(registry, e, out);
        })
    });
    let prepared = SqlText::new("SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
    g.bench_function("extended_select", |b| {
        analyze(b, |a, registry, i, out| {
            let mut e = execution(&prepared, Protocol::Extended, i & 7, base, i);
            e.params_digest = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            a.execution(registry, e, out);
        })
    });

    // pgbench's TPC-B-like transaction: seven simple statements, the transaction status going
    // to `T` and back to `I` (which ends the connection's request).
    let transactions: Vec<Vec<SqlText>> = (0..256u64)
        .map(|i| {
            let (aid, tid, bid, delta) = (i * 977 % 100_000 + 1, i % 10 + 1, 1, i as i64 - 128);
            [
                "BEGIN;".to_string(),
                format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
                format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"),
                format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
                format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid};"),
                format!("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"),
                "END;".to_string(),
            ]
            .into_iter()
            .map(|t| SqlText::new(&t))
            .collect()
        })
        .collect();
    g.bench_function("tpcb_transaction", |b| {
        analyze(b, |a, registry, i, out| {
            let conn = i & 7;
            for (k, sql) in transactions[(i & 255) as usize].iter().enumerate() {
                let e = execution(sql, Protocol::Simple, conn, base, i * 8 + k as u64);
                a.execution(registry, e, out);
                if k == 0 {
                    a.ready_for_query(conn, b'T', out);
                }
            }
            a.ready_for_query(conn, b'I', out);
        })
    });
    g.finish();
}

criterion_group!(benches, tracker, analyzer);
criterion_main!(benches);
