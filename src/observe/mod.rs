//! What pgscope learns from executions: statistics per fingerprint, and N+1 and duplicate
//! findings per request.
//!
//! This module owns analysis state and must not touch sockets or the wire protocol. It plugs
//! into the relay as a [`SinkFactory`]: each connection's sink hands its [`Execution`]s (and
//! transaction-status changes and its end) to a bounded queue with `try_send` and never waits;
//! when the queue is full the event is dropped and counted
//! (`pgscope_analysis_events_dropped_total`). One observer thread drains the queue. For each
//! execution it finds the fingerprint (once per prepared statement: extended-protocol
//! executions that share their text are recognized by it and not normalized again), records it
//! in the [`Registry`] and feeds the connection's [`ConnDetector`], which is owned by this one
//! thread and so needs no lock. The exporters read the registry and the findings under short
//! locks that the observer takes once per batch.

pub mod django;
pub mod nplusone;
pub mod registry;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::fingerprint::{self, Context};
use crate::proxy::{Execution, ExecutionSink, Protocol, SinkFactory, SqlText};
pub use nplusone::{Burst, ConnDetector, Finding, Findings, Shape};
pub use registry::{Description, Kind, Registry, Sample, Stats};

/// The hash maps of the analysis side. Their keys are fingerprint ids, digests and
/// connection ids; foldhash (seeded per process) hashes a u64 in a few instructions where
/// SipHash took a tenth of the observer's time per statement.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How many events may wait for the observer before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 16 * 1024;
/// Simple-Query texts at least this long are remembered as [`Analyzer`]'s `last_simple`.
const REPEATED_TEXT_MIN: usize = 1024;
/// The observer thread's stack. Analysing a statement walks (and drops) sqlparser's tree, one
/// call per level, and `fingerprint::MAX_OPERATORS` lets a tree be 2000 levels deep: about
/// 0.3 MiB in a release build, several MiB in a debug one. Only the pages it touches use memory.
pub const OBSERVER_STACK: usize = 32 << 20;
/// Events handled per lock of the registry.
const BATCH: usize = 256;
/// The longest the observer sleeps when it has emptied the queue. Each wake-up costs about as
/// much as analysing a hundred statements, so it sleeps long while the queue fills slowly…
const POLL_MAX: Duration = Duration::from_millis(50);
/// …and shorter, down to this, when the queue fills fast (see [`next_sleep`]).
const POLL_MIN: Duration = Duration::from_millis(1);
/// Prepared-statement texts remembered by the observer (then forgotten all at once).
const TEXT_CACHE: usize = 4096;
/// Fingerprint shapes remembered by the observer (then forgotten all at once).
const SHAPE_CACHE: usize = 16 * 1024;
/// Connections whose requests are followed at once; beyond it the oldest is finished.
const MAX_CONNECTIONS: usize = 10_000;
/// Findings kept.
const MAX_FINDINGS: usize = 1000;

/// Settings of the analysis side.
#[derive(Clone, Debug)]
pub struct ObserveConfig {
    pub max_fingerprints: usize,
    /// Repetitions of one fingerprint in one request before it is an N+1.
    pub n1_threshold: u64,
    pub queue_capacity: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            max_fingerprints: 5000,
            n1_threshold: 5,
            queue_capacity: QUEUE_CAPACITY,
        }
    }
}

/// What the observer needs of an [`Execution`]: everything but the command tag and the
/// SQLSTATE's code, in 70% of its size (112 bytes instead of 160), so that less is copied into
/// and out of the queue and fewer cache lines move from the relay's CPU to the observer's.
pub struct Observed {
    pub connection_id: u64,
    pub sql: SqlText,
    pub started: Instant,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub rows: u64,
    pub params_digest: u64,
    pub protocol: Protocol,
    pub failed: bool,
    pub backslash_quotes: bool,
}

impl From<Execution> for Observed {
    fn from(e: Execution) -> Self {
        Observed {
            connection_id: e.connection_id,
            sql: e.sql,
            started: e.started,
            started_at: e.started_at,
            duration: e.duration,
            rows: e.rows,
            params_digest: e.params_digest,
            protocol: e.protocol,
            failed: e.error.is_some(),
            backslash_quotes: e.backslash_quotes,
        }
    }
}

/// What travels from the connections to the observer.
enum Event {
    Execution(Observed),
    Ready { connection: u64, status: u8 },
    Closed { connection: u64 },
}

/// The analysis side of pgscope: a queue, a thread draining it, the registry and findings.
pub struct Observer {
    registry: Arc<Mutex<Registry>>,
    findings: Arc<Mutex<Findings>>,
    dropped: Arc<AtomicU64>,
    tx: SyncSender<Event>,
}

impl Observer {
    /// Start the observer thread.
    pub fn start(config: ObserveConfig) -> Arc<Observer> {
        let registry = Arc::new(Mutex::new(Registry::new(config.max_fingerprints)));
        let findings = Arc::new(Mutex::new(Findings::new(MAX_FINDINGS)));
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity);
        let worker = Worker {
            capacity: config.queue_capacity,
            registry: registry.clone(),
            findings: findings.clone(),
            analyzer: Analyzer::new(config.n1_threshold),
            bursts: Vec::new(),
        };
        std::thread::Builder::new()
            .name("pgscope-observe".into())
            .stack_size(OBSERVER_STACK)
            .spawn(move || worker.run(rx))
            .expect("spawning the observer thread");
        Arc::new(Observer {
            registry,
            findings,
            dropped: Arc::new(AtomicU64::new(0)),
            tx,
        })
    }

    /// The registry, locked. Hold it briefly: the observer thread waits for it.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The N+1 and duplicate findings, locked. Hold it briefly.
    pub fn findings(&self) -> MutexGuard<'_, Findings> {
        self.findings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events dropped because the observer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl SinkFactory for Observer {
    fn sink(&self, connection_id: u64) -> Box<dyn ExecutionSink> {
        Box::new(QueueSink {
            connection: connection_id,
            status: b'I',
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
        })
    }
}

/// A connection's sink: hands events to the observer without ever waiting.
struct QueueSink {
    connection: u64,
    /// The last transaction status sent: only changes are worth an event.
    status: u8,
    tx: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
}

impl QueueSink {
    fn send(&self, event: Event) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl ExecutionSink for QueueSink {
    fn record(&mut self, execution: Execution) {
        self.send(Event::Execution(execution.into()));
    }

    fn ready_for_query(&mut self, status: u8) {
        if status != self.status {
            self.status = status;
            self.send(Event::Ready {
                connection: self.connection,
                status,
            });
        }
    }

    fn closed(&mut self) {
        self.send(Event::Closed {
            connection: self.connection,
        });
    }
}

/// What the observer remembers of a statement text.
#[derive(Clone)]
struct Fingerprinted {
    id: u64,
    literal_digest: u64,
    request: Option<u64>,
    route: Option<Arc<str>>,
}

/// The observer thread's state.
struct Worker {
    /// The queue's capacity.
    capacity: usize,
    registry: Arc<Mutex<Registry>>,
    findings: Arc<Mutex<Findings>>,
    analyzer: Analyzer,
    /// Findings of the current batch, published under one lock.
    bursts: Vec<Burst>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Event>) {
        run_as_batch();
        // The thread polls instead of blocking in `recv`: a blocked receiver would make every
        // `try_send` on the relay's side wake it with a futex call, which costs the relay more
        // than all its other per-statement work together.
        let shared = self.registry.clone();
        let mut slept = POLL_MAX;
        let mut since_sleep = 0;
        loop {
            let mut registry = shared.lock().unwrap_or_else(|p| p.into_inner());
            let mut handled = 0;
            let mut disconnected = false;
            while handled < BATCH {
                match rx.try_recv() {
                    Ok(event) => {
                        // A panic in analysis (a bug, on some statement) loses that event,
                        // not the analysis of everything after it.
                        let handled =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                self.handle(&mut registry, event)
                            }));
                        if handled.is_err() {
                            tracing::error!(
                                "internal error in analysis; one statement was not counted"
                            );
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
                handled += 1;
            }
            drop(registry);
            if !self.bursts.is_empty() {
                let mut findings = self.findings.lock().unwrap_or_else(|p| p.into_inner());
                for b in self.bursts.drain(..) {
                    findings.add(b);
                }
            }
            if disconnected {
                return;
            }
            since_sleep += handled;
            if handled < BATCH {
                slept = next_sleep(since_sleep, slept, self.capacity);
                std::thread::sleep(slept);
                since_sleep = 0;
            }
        }
    }

    fn handle(&mut self, registry: &mut Registry, event: Event) {
        #[cfg(test)]
        if let Event::Execution(e) = &event {
            assert_ne!(
                e.sql.as_str(),
                tests::PANICS_IN_ANALYSIS,
                "injected by a test"
            );
        }
        let out = &mut self.bursts;
        match event {
            Event::Execution(e) => self.analyzer.execution(registry, e, out),
            Event::Ready { connection, status } => {
                self.analyzer.ready_for_query(connection, status, out)
            }
            Event::Closed { connection } => self.analyzer.closed(connection, out),
        }
    }
}

/// The analysis of executions, without threads or queues: fingerprints them, records them in
/// a registry and runs each connection's N+1 detector. The observer thread drives one; tests
/// replay recorded traffic through another.
pub struct Analyzer {
    threshold: u64,
    /// Prepared-statement text (by its place in memory) → what it fingerprinted to. Each entry
    /// keeps its text alive, so the place cannot be taken by another text while cached.
    texts: Map<(usize, usize), (SqlText, Fingerprinted)>,
    /// The last long simple-Query text ([`REPEATED_TEXT_MIN`]) and its fingerprint, kept the
    /// same way. The tracker gives a text that the server and the splitter split differently
    /// to each of its remaining statements: this keeps that from normalizing the whole text
    /// once per statement.
    last_simple: Option<(SqlText, Fingerprinted)>,
    shapes: Map<u64, Arc<Shape>>,
    detectors: Map<u64, ConnDetector>,
    scratch: String,
}

impl Analyzer {
    pub fn new(n1_threshold: u64) -> Self {
        Analyzer {
            threshold: n1_threshold,
            texts: Map::default(),
            last_simple: None,
            shapes: Map::default(),
            detectors: Map::default(),
            scratch: String::new(),
        }
    }

    /// A connection's transaction status changed.
    pub fn ready_for_query(&mut self, connection: u64, status: u8, out: &mut Vec<Burst>) {
        if let Some(d) = self.detectors.get_mut(&connection) {
            d.ready_for_query(status, out);
        }
    }

    /// A connection ended.
    pub fn closed(&mut self, connection: u64, out: &mut Vec<Burst>) {
        if let Some(mut d) = self.detectors.remove(&connection) {
            d.close(out);
        }
    }

    /// One execution: into `registry`, and through its connection's detector (findings of
    /// requests it ends go to `out`).
    pub fn execution(
        &mut self,
        registry: &mut Registry,
        e: impl Into<Observed>,
        out: &mut Vec<Burst>,
    ) {
        let e = e.into();
        let fp = self.fingerprint(&e);
        let shape = match self.shapes.get(&fp.id) {
            Some(s) => s.clone(),
            None => {
                let shape = Arc::new(self.shape(e.sql.as_str(), e.backslash_quotes));
                if self.shapes.len() >= SHAPE_CACHE {
                    self.shapes.clear();
                }
                self.shapes.insert(fp.id, shape.clone());
                shape
            }
        };
        let sample = Sample {
            duration: e.duration,
            rows: e.rows,
            failed: e.failed,
            at: e.started_at,
        };
        registry.record(fp.id, &sample, || Description {
            query: shape.query.clone(),
            kind: shape.kind,
            tables: Arc::from(shape.tables.clone()),
        });
        if e.failed {
            return; // a failed statement is not part of a loop over rows
        }
        let threshold = self.threshold;
        let detectors_len = self.detectors.len();
        let detector = match self.detectors.entry(e.connection_id) {
            Entry::Occupied(d) => d.into_mut(),
            Entry::Vacant(slot) if detectors_len < MAX_CONNECTIONS => {
                slot.insert(ConnDetector::new(threshold))
            }
            Entry::Vacant(_) => {
                // Lost Closed events (queue full) must not leak detectors: finish an
                // arbitrary one to make room.
                if let Some(&old) = self.detectors.keys().next() {
                    if let Some(mut d) = self.detectors.remove(&old) {
                        d.close(out);
                    }
                }
                self.detectors
                    .entry(e.connection_id)
                    .or_insert_with(|| ConnDetector::new(threshold))
            }
        };
        detector.statement(
            nplusone::Statement {
                fingerprint: fp.id,
                shape,
                digest: xxh3_64_with_seed(&e.params_digest.to_le_bytes(), fp.literal_digest),
                rows: e.rows,
                duration: e.duration,
                started: e.started,
                at: e.started_at,
                request: fp.request,
                route: fp.route,
            },
            out,
        );
    }

    /// The fingerprint of an execution's text, from the cache for prepared statements.
    fn fingerprint(&mut self, e: &Observed) -> Fingerprinted {
        let sql = e.sql.as_str();
        if e.protocol != Protocol::Extended {
            if let Some((text, fp)) = &self.last_simple {
                if text.place() == e.sql.place() {
                    return fp.clone();
                }
            }
            let fp = self.normalize(sql, e.backslash_quotes);
            // Only long texts are kept: repeating a short one costs little, and keeping a
            // text keeps its connection's buffer of Query texts from being reused.
            if sql.len() >= REPEATED_TEXT_MIN {
                self.last_simple = Some((e.sql.clone(), fp.clone()));
            }
            return fp;
        }
        let key = e.sql.place();
        if let Some((_, fp)) = self.texts.get(&key) {
            return fp.clone();
        }
        let fp = self.normalize(sql, e.backslash_quotes);
        if self.texts.len() >= TEXT_CACHE {
            self.texts.clear();
        }
        self.texts.insert(key, (e.sql.clone(), fp.clone()));
        fp
    }

    fn normalize(&mut self, sql: &str, backslash_quotes: bool) -> Fingerprinted {
        let n = fingerprint::with_backslash_quotes(backslash_quotes, || {
            fingerprint::normalize(sql.as_bytes(), &mut self.scratch)
        });
        Fingerprinted {
            id: n.id,
            literal_digest: n.literal_digest,
            request: request_key(&n.context),
            route: n
                .context
                .route
                .as_deref()
                .or(n.context.controller.as_deref())
                .map(Arc::from),
        }
    }

    /// Normalize and analyze a statement's text (once per new fingerprint).
    fn shape(&mut self, sql: &str, backslash_quotes: bool) -> Shape {
        fingerprint::with_backslash_quotes(backslash_quotes, || {
            fingerprint::normalize(sql.as_bytes(), &mut self.scratch)
        });
        let analysis = fingerprint::analyze(&self.scratch);
        Shape::new(&self.scratch, &analysis)
    }
}

/// Make the calling thread a batch thread (`SCHED_BATCH`, nice unchanged): it keeps its fair
/// share of the CPU, but its waking up no longer preempts what is running. The observer wakes
/// every few milliseconds and analyses what came in since, a millisecond or two of work; as a
/// normal thread it preempted whatever ran on its CPU when it woke, often a backend holding a
/// row lock that the other backends then waited for. In pgbench's TPC-B-like workload at 8
/// clients on 2 cores analysis cost 4% of the TPS (`bench/relay.sh`, pgscope against
/// `--analysis off`). As a batch thread it waits for the running task's turn to end instead:
/// 1.027 of the TPS of the same code as a normal thread (24 alternated rounds), and the same
/// at `-S` (1.001). A lower nice value as well was no better within the noise, and would let a
/// saturated machine starve the observer into dropping events. If the policy cannot be set (a
/// seccomp profile), the thread stays a normal one.
fn run_as_batch() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 names the calling thread; `param` is a valid, initialized sched_param
        // that the call only reads.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the observer thread stays a normal thread (SCHED_BATCH refused)"
            );
        }
    }
}

/// How long the observer sleeps after `drained` events came in during a sleep of `slept` (and
/// the work after it): long enough to amortize the wake-up, short enough that at the same rate
/// the queue of `capacity` would be at most a quarter full when it wakes, so a burst of twice
/// that rate still finds room.
fn next_sleep(drained: usize, slept: Duration, capacity: usize) -> Duration {
    let quarter = u32::try_from(capacity / 4).unwrap_or(u32::MAX).max(1);
    match u32::try_from(drained) {
        Ok(0) => POLL_MAX,
        Ok(n) => (slept * quarter / n).clamp(POLL_MIN, POLL_MAX),
        Err(_) => POLL_MIN,
    }
}

/// A request's identity from sqlcommenter context: its trace id, else its route and view.
fn request_key(c: &Context) -> Option<u64> {
    if let Some(tp) = &c.traceparent {
        // `00-<trace id>-<span id>-<flags>`: the trace id names the request.
        let trace = tp.split('-').nth(1).unwrap_or(tp);
        return Some(xxh3_64(trace.as_bytes()));
    }
    match (&c.route, &c.controller) {
        (None, None) => None,
        (r, v) => Some(xxh3_64_with_seed(
            r.as_deref().unwrap_or("").as_bytes(),
            xxh3_64(v.as_deref().unwrap_or("").as_bytes()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{CommandTag, Execution, Protocol, SqlText};

    /// A statement text that makes the observer thread panic in analysis (test builds only).
    pub(super) const PANICS_IN_ANALYSIS: &str = "SELECT 'a bug in analysis'";

    fn execution(sql: &SqlText) -> Execution {
        Execution {
            connection_id: 1,
            sql: sql.clone(),
            backslash_quotes: false,
            protocol: Protocol::Simple,
            named_statement: false,
            started: std::time::Instant::now(),
            started_at: std::time::SystemTime::now(),
            duration: Duration::from_micros(10),
            rows: 0,
            tag: CommandTag::from_bytes(b"SELECT 0"),
            error: None,
            params_digest: 0,
        }
    }

    /// A panic in analysis loses its event only: the observer thread goes on with the events
    /// after it (and before it in the same batch), and the registry's lock is not poisoned.
    #[test]
    fn a_panic_in_analysis_loses_one_event_only() {
        let observer = Observer::start(ObserveConfig::default());
        let mut sink = observer.sink(1);
        let select = SqlText::new("SELECT 1");
        sink.record(execution(&select));
        sink.record(execution(&SqlText::new(PANICS_IN_ANALYSIS)));
        sink.record(execution(&select));
        // Wait until the one fingerprint has `n` calls.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let counted = |n: u64| loop {
            let calls: Vec<u64> = observer
                .registry()
                .by_total_time()
                .iter()
                .map(|s| s.calls)
                .collect();
            if calls == [n] {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "counted: {calls:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        counted(2);
        // In a later batch too.
        sink.record(execution(&select));
        counted(3);
        assert!(!observer.registry.is_poisoned());
        assert_eq!(observer.dropped(), 0);
    }

    #[test]
    fn an_event_is_at_most_70_percent_of_an_execution() {
        let (event, execution) = (
            std::mem::size_of::<Event>(),
            std::mem::size_of::<Execution>(),
        );
        assert!(event * 10 <= execution * 7, "{event} bytes for {execution}");
    }

    /// A simple-Query text given to several executions in a row (the tracker does that when
    /// the server runs more statements than the splitter found) is normalized once.
    #[test]
    fn a_repeated_simple_text_is_normalized_once() {
        let e = execution;
        let mut a = Analyzer::new(5);
        let text = SqlText::new(&format!("SELECT 1; /* SELECT 2; {}", "x".repeat(1024)));
        let first = a.fingerprint(&Observed::from(e(&text)));
        a.scratch.clear();
        let again = a.fingerprint(&Observed::from(e(&text)));
        assert_eq!(
            (again.id, a.scratch.as_str()),
            (first.id, ""),
            "normalized again"
        );
        // The same bytes at another place are another text: normalized, to the same id.
        let copy = SqlText::new(text.as_str());
        assert_eq!(a.fingerprint(&Observed::from(e(&copy))).id, first.id);
        assert!(!a.scratch.is_empty());
    }

    #[test]
    fn the_observer_sleeps_long_unless_the_queue_fills_fast() {
        let ms = Duration::from_millis;
        // Nothing came: the longest sleep.
        assert_eq!(next_sleep(0, ms(50), 16384), POLL_MAX);
        // pgbench on two cores: 330 events in 10 ms would fill a quarter of the queue in
        // 124 ms.
        assert_eq!(next_sleep(330, ms(10), 16384), POLL_MAX);
        // 8192 events in 50 ms: a quarter of the queue comes in 25 ms.
        assert_eq!(next_sleep(8192, ms(50), 16384), ms(25));
        // Faster than a quarter of the queue per millisecond: the shortest sleep.
        assert_eq!(next_sleep(100_000, ms(1), 16384), POLL_MIN);
        assert_eq!(next_sleep(usize::MAX, ms(1), 16384), POLL_MIN);
        // A tiny queue still gets a positive share.
        assert_eq!(next_sleep(1, ms(1), 1), ms(1));
    }
}
