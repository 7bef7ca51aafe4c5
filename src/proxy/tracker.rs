//! Pairs what the client sent with what the server answered, and yields one [`Execution`] per
//! statement.
//!
//! The extended protocol pipelines: a client may send many Parse/Bind/Describe/Execute/Close
//! messages before one Sync, and the server answers them strictly in order. The tracker keeps a
//! FIFO of the requests still waiting for an answer and pops it as answers arrive:
//!
//! | request  | answered by                                                  |
//! |----------|--------------------------------------------------------------|
//! | Query    | per statement: rows, then CommandComplete / EmptyQueryResponse / ErrorResponse; finally ReadyForQuery |
//! | Parse    | ParseComplete                                                |
//! | Bind     | BindComplete                                                 |
//! | Describe | (ParameterDescription,) RowDescription or NoData             |
//! | Execute  | rows, then CommandComplete / EmptyQueryResponse / PortalSuspended |
//! | Close    | CloseComplete                                                |
//! | Sync     | ReadyForQuery                                                |
//! | FunctionCall | FunctionCallResponse, then ReadyForQuery                 |
//!
//! An ErrorResponse answers the request at the head of the FIFO. After an error in an extended
//! request the server skips every message until the next Sync, so the tracker drops the queued
//! requests up to that Sync (and, if the Sync has not been sent yet, drops new requests until it
//! is). Notices, notifications, parameter status and COPY data may arrive at any time and are
//! not answers.
//!
//! Timing: a statement is timed from the moment its request was forwarded to the moment its
//! completion arrived. The statements of one multi-statement Query are timed one after the
//! other (each from the previous one's completion), as far as the wire shows it: the server
//! sends their results in one flush, so all but the first usually show almost no time.
//!
//! The tracker is pure: it is fed frames and a clock, and is tested without sockets.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};

use super::execution::{CommandTag, Execution, ExecutionSink, Protocol, SqlState, SqlText};
use super::wire;
use crate::fingerprint::{self, split};

/// A reading of both clocks, taken once per chunk of bytes the relay handles (from a
/// [`ClockSource`]).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub instant: Instant,
    pub system: SystemTime,
}

/// Reads the clocks for a relay thread: the monotonic clock at every call, the wall clock
/// derived from it and read again once a second (one clock read per chunk instead of two).
pub struct ClockSource {
    instant: Instant,
    system: SystemTime,
}

/// How long the derived wall clock may run before it is read again.
const WALL_CLOCK_RESYNC: Duration = Duration::from_secs(1);

impl Default for ClockSource {
    fn default() -> Self {
        Self::new()
    }
}

impl ClockSource {
    pub fn new() -> Self {
        ClockSource {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    pub fn now(&mut self) -> Clock {
        let instant = Instant::now();
        let since = instant.saturating_duration_since(self.instant);
        if since >= WALL_CLOCK_RESYNC {
            self.instant = instant;
            self.system = SystemTime::now();
            return Clock {
                instant,
                system: self.system,
            };
        }
        Clock {
            instant,
            system: self.system + since,
        }
    }
}

/// Does the tracker look at this frontend message at all?
#[inline]
pub fn frontend_tracked(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'D' | b'C' | b'S' | b'F')
}

/// Does the tracker need the whole body of this frontend message?
#[inline]
pub fn frontend_needs_body(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'D' | b'C')
}

/// Does the tracker look at this backend message at all?
#[inline]
pub fn backend_tracked(tag: u8) -> bool {
    matches!(
        tag,
        b'1' | b'2' | b'3' | b'n' | b'T' | b'D' | b'C' | b'I' | b's' | b'E' | b'V' | b'Z' | b'S'
    )
}

/// Does the tracker need the whole body of this backend message?
#[inline]
pub fn backend_needs_body(tag: u8) -> bool {
    matches!(tag, b'C' | b'E' | b'Z' | b'S')
}

const FUNCTION_CALL_SQL: &str = "fastpath function call";

/// The size of the buffers a connection's simple-Query texts are written into, one after
/// another ([`SqlText::append`]): a new one is allocated only when one is full and some of its
/// texts are still with the observer. Most Django and pgbench statements take 50–1000 bytes.
const QUERY_TEXTS_CHUNK: usize = 4096;

/// A statement on its way: everything an [`Execution`] needs but the completion.
#[derive(Clone)]
struct Running {
    sql: SqlText,
    /// `sql` came while `standard_conforming_strings` was off.
    backslash_quotes: bool,
    protocol: Protocol,
    named_statement: bool,
    started: Clock,
    rows: u64,
    params_digest: u64,
}

impl Running {
    /// The execution, failed at `now` with `code`: no tag; its rows are those the client
    /// received before the error.
    fn fail(
        self,
        connection_id: u64,
        now: Clock,
        code: SqlState,
        last_done: &mut Option<Instant>,
    ) -> Execution {
        self.finish(
            connection_id,
            now,
            CommandTag::default(),
            Some(code),
            last_done,
        )
    }

    /// The execution, completed at `now`. The server runs pipelined statements one after the
    /// other, so a statement cannot have started before the previous one completed
    /// (`last_done`), however early its request was forwarded; it starts at the later of the two.
    fn finish(
        self,
        connection_id: u64,
        now: Clock,
        tag: CommandTag,
        error: Option<SqlState>,
        last_done: &mut Option<Instant>,
    ) -> Execution {
        let started = match *last_done {
            Some(done) if done > self.started.instant => Clock {
                instant: done,
                system: self.started.system + (done - self.started.instant),
            },
            _ => self.started,
        };
        *last_done = Some(now.instant);
        Execution {
            connection_id,
            sql: self.sql,
            backslash_quotes: self.backslash_quotes,
            protocol: self.protocol,
            named_statement: self.named_statement,
            started: started.instant,
            started_at: started.system,
            duration: now.instant.saturating_duration_since(started.instant),
            rows: tag.rows().unwrap_or(self.rows),
            tag,
            error,
            params_digest: self.params_digest,
        }
    }
}

/// A simple Query: how far through its statements the server has got. The current statement's
/// text is part of the whole Query's shared text.
struct SimpleQuery {
    /// The whole Query's text.
    text: SqlText,
    /// Where the next statement's search starts.
    next: usize,
    current: Running,
    failed: bool,
    /// What its first statement does to SQL-level prepared statements, done when the server
    /// completes it (a PREPARE the server rejects names nothing).
    prepared: Option<SqlPrepared>,
}

/// What a Query's `PREPARE`, `DEALLOCATE` or `DISCARD ALL` does to the statements a Bind may
/// name.
enum SqlPrepared {
    Prepare(Box<[u8]>, Statement),
    Deallocate(Box<[u8]>),
    DeallocateAll,
}

impl SqlPrepared {
    /// Did the server's tag confirm it?
    fn done_by(&self, tag: &CommandTag) -> bool {
        match self {
            SqlPrepared::Prepare(..) => tag.is(b"PREPARE"),
            SqlPrepared::Deallocate(_) => tag.is(b"DEALLOCATE"),
            SqlPrepared::DeallocateAll => tag.is(b"DEALLOCATE ALL") || tag.is(b"DISCARD ALL"),
        }
    }
}

/// A prepared statement (or the unnamed one): its text.
#[derive(Clone)]
struct Statement {
    sql: SqlText,
    named: bool,
    /// Parsed while `standard_conforming_strings` was off.
    backslash_quotes: bool,
}

/// A bound portal.
#[derive(Clone)]
struct Portal {
    statement: Statement,
    params_digest: u64,
}

enum Pending {
    Query(SimpleQuery),
    /// `previous`: what the name meant before this Parse, restored if the Parse fails.
    Parse {
        name: Box<[u8]>,
        sql: Option<Statement>,
        previous: Option<Statement>,
    },
    /// A Parse of the text the name already has.
    Reparse {
        name: Box<[u8]>,
    },
    Bind(Option<Portal>),
    Describe,
    Execute(Option<Running>),
    Close,
    Sync,
    FunctionCall(Running),
}

/// Per-connection request/answer pairing. See the module documentation.
pub struct Tracker {
    connection_id: u64,
    sink: Box<dyn ExecutionSink>,
    statements: HashMap<Box<[u8]>, Statement>,
    unnamed_statement: Option<Statement>,
    portals: HashMap<Box<[u8]>, Portal>,
    unnamed_portal: Option<Portal>,
    queue: VecDeque<Pending>,
    /// An extended request failed and its Sync has not been sent yet: the server ignores
    /// everything until then.
    skipping: bool,
    /// Scratch buffer for the messages decoded with pgwire.
    scratch: BytesMut,
    /// Where the texts of simple Queries are written (see [`QUERY_TEXTS_CHUNK`]).
    query_texts: BytesMut,
    desyncs: u64,
    /// When the server last completed a statement (or became idle).
    last_done: Option<Instant>,
    /// Tracking stopped after a panic (see [`Tracker::guarded`]).
    stopped: bool,
    /// The last extended-protocol execution, held until its Sync is answered: in an implicit
    /// transaction the COMMIT happens at Sync, and if it fails (a deferred constraint) the
    /// failure is that statement's.
    held: Option<Execution>,
    /// The server's `standard_conforming_strings` is off (it says so in ParameterStatus, at
    /// login and after a SET): `'…'` strings take backslash escapes.
    backslash_quotes: bool,
}

impl Tracker {
    pub fn new(connection_id: u64, sink: Box<dyn ExecutionSink>) -> Self {
        Tracker {
            connection_id,
            sink,
            statements: HashMap::new(),
            unnamed_statement: None,
            portals: HashMap::new(),
            unnamed_portal: None,
            queue: VecDeque::new(),
            skipping: false,
            scratch: BytesMut::new(),
            query_texts: BytesMut::new(),
            desyncs: 0,
            last_done: None,
            stopped: false,
            held: None,
            backslash_quotes: false,
        }
    }

    /// Requests still waiting for an answer.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Answers that did not match the request they should have answered (0 unless the
    /// tracker's model of the protocol is wrong).
    pub fn desyncs(&self) -> u64 {
        self.desyncs
    }

    /// The connection ended.
    pub fn close(&mut self) {
        self.guarded(|t| {
            if let Some(h) = t.held.take() {
                t.sink.record(h);
            }
        });
        // The observer forgets the connection even when tracking stopped.
        let sink = &mut self.sink;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.closed()));
    }

    fn push(&mut self, p: Pending) {
        if self.skipping {
            if matches!(p, Pending::Sync) {
                self.skipping = false;
            } else {
                return; // the server ignores it
            }
        }
        self.queue.push_back(p);
    }

    /// A frontend message was forwarded. `body` is its whole body when
    /// [`frontend_needs_body`] says so, otherwise empty.
    pub fn frontend(&mut self, tag: u8, body: &[u8], now: Clock) {
        self.guarded(|t| t.on_frontend(tag, body, now));
    }

    /// A backend message was forwarded. `body` is its whole body when
    /// [`backend_needs_body`] says so, otherwise empty.
    pub fn backend(&mut self, tag: u8, body: &[u8], now: Clock) {
        self.guarded(|t| t.on_backend(tag, body, now));
    }

    /// Has tracking stopped on this connection after an internal error?
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Run `f` unless tracking has stopped. A panic in it (a bug in the tracker or the sink)
    /// must not take down the relay thread and every connection on it: the connection goes on
    /// being relayed, untracked.
    fn guarded(&mut self, f: impl FnOnce(&mut Self)) {
        if self.stopped {
            return;
        }
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *self)));
        if caught.is_err() {
            self.stopped = true;
            self.queue.clear();
            self.held = None;
            tracing::error!(
                connection = self.connection_id,
                "internal error in the statement tracker; this connection is still relayed \
                 but no longer tracked"
            );
        }
    }

    fn on_frontend(&mut self, tag: u8, body: &[u8], now: Clock) {
        match tag {
            b'Q' => self.on_query(body, now),
            b'P' => self.on_parse(body),
            b'B' => self.on_bind(body),
            b'E' => self.on_execute(body, now),
            b'D' => self.push(Pending::Describe),
            b'C' => {
                if let Some((kind, name)) = wire::read_target(body) {
                    self.forget(kind, name);
                }
                self.push(Pending::Close);
            }
            b'S' => self.push(Pending::Sync),
            b'F' => self.push(Pending::FunctionCall(Running {
                sql: SqlText::from_static(FUNCTION_CALL_SQL),
                backslash_quotes: false,
                protocol: Protocol::FunctionCall,
                named_statement: false,
                started: now,
                rows: 0,
                params_digest: 0,
            })),
            _ => {}
        }
    }

    fn on_query(&mut self, body: &[u8], now: Clock) {
        if self.skipping {
            return;
        }
        // Borrowed, not copied, unless the bytes are not UTF-8.
        let raw: Cow<str> = String::from_utf8_lossy(wire::read_cstr(body));
        let prepared = self.sql_prepared(&raw);
        let text = SqlText::append(&mut self.query_texts, &raw, QUERY_TEXTS_CHUNK);
        let mut next = 0;
        // The server lexes the whole Query before it runs any of it, so a SET in it changes
        // nothing for the rest of the text.
        let backslash_quotes = self.backslash_quotes;
        let sql = statement_from(&text, &mut next, backslash_quotes);
        self.push(Pending::Query(SimpleQuery {
            text,
            next,
            current: Running {
                sql,
                backslash_quotes,
                protocol: Protocol::Simple,
                named_statement: false,
                started: now,
                rows: 0,
                params_digest: 0,
            },
            failed: false,
            prepared,
        }));
    }

    /// SQL-level `PREPARE` creates prepared statements that a Bind may name, and
    /// `DEALLOCATE` and `DISCARD ALL` drop them: what the Query `text` would do.
    fn sql_prepared(&self, text: &str) -> Option<SqlPrepared> {
        let t = text.trim_start();
        let starts = |p: &str| starts_with_ignore_case(t, p);
        if starts("PREPARE ") {
            // PREPARE name [ ( types ) ] AS statement
            let rest = t[8..].trim_start();
            let name_end = rest
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(rest.len());
            let name = rest[..name_end].trim_matches('"');
            let upper = rest.to_ascii_uppercase();
            if let Some(at) = upper.find(" AS ") {
                let body = rest[at + 4..].trim().trim_end_matches(';').trim_end();
                if !name.is_empty() && !body.is_empty() {
                    let sql = Statement {
                        sql: SqlText::new(body),
                        named: true,
                        backslash_quotes: self.backslash_quotes,
                    };
                    return Some(SqlPrepared::Prepare(Box::from(name.as_bytes()), sql));
                }
            }
            None
        } else if starts("DISCARD ALL")
            || starts("DEALLOCATE ALL")
            || starts("DEALLOCATE PREPARE ALL")
        {
            Some(SqlPrepared::DeallocateAll)
        } else if starts("DEALLOCATE") {
            let rest = t["DEALLOCATE".len()..].trim_start();
            let rest = if starts_with_ignore_case(rest, "PREPARE") {
                rest[7..].trim_start()
            } else {
                rest
            };
            let name = rest
                .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
                .trim_matches('"');
            Some(SqlPrepared::Deallocate(Box::from(name.as_bytes())))
        } else {
            None
        }
    }

    fn apply(&mut self, prepared: SqlPrepared) {
        match prepared {
            SqlPrepared::Prepare(name, statement) => {
                self.statements.insert(name, statement);
            }
            SqlPrepared::Deallocate(name) => {
                self.statements.remove(&name);
            }
            SqlPrepared::DeallocateAll => self.statements.clear(),
        }
    }

    fn on_parse(&mut self, body: &[u8]) {
        let mut r = wire::Reader::new(body);
        let (Some(name), Some(query)) = (r.cstr(), r.cstr()) else {
            self.push(Pending::Parse {
                name: Box::default(),
                sql: None,
                previous: None,
            });
            return;
        };
        let current = self.statement(name);
        // Drivers that use the unnamed statement send the same Parse for every execution:
        // the statement stays what it is, with nothing to decode, copy or restore.
        if current.is_some_and(|c| c.sql.as_str().as_bytes() == query) {
            self.push(Pending::Reparse {
                name: Box::from(name),
            });
            return;
        }
        let previous = current.cloned();
        let backslash_quotes = self.backslash_quotes;
        let sql = self.decode_parse(body).map(|text| Statement {
            sql: SqlText::new(&text),
            named: !name.is_empty(),
            backslash_quotes,
        });
        match (&sql, name.is_empty()) {
            (Some(s), true) => self.unnamed_statement = Some(s.clone()),
            (Some(s), false) => match self.statements.get_mut(name) {
                Some(slot) => *slot = s.clone(),
                None => {
                    self.statements.insert(Box::from(name), s.clone());
                }
            },
            (None, _) => {}
        }
        self.push(Pending::Parse {
            name: Box::from(name),
            sql,
            previous,
        });
    }

    /// Decode a Parse message with pgwire (once per new statement text).
    fn decode_parse(&mut self, body: &[u8]) -> Option<String> {
        if !wire::whole_parse(body) {
            return None;
        }
        let parse: Parse = self.decode(b'P', body)?;
        Some(parse.query)
    }

    fn decode<M: Message>(&mut self, tag: u8, body: &[u8]) -> Option<M> {
        self.scratch.clear();
        self.scratch.reserve(5 + body.len());
        self.scratch.extend_from_slice(&[tag]);
        self.scratch
            .extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        self.scratch.extend_from_slice(body);
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        match M::decode(&mut self.scratch, &ctx) {
            Ok(Some(m)) => Some(m),
            _ => {
                tracing::debug!(tag = %char::from(tag), "message not decodable; tracked as unknown");
                None
            }
        }
    }

    fn on_bind(&mut self, body: &[u8]) {
        let portal = wire::read_bind(body).and_then(|b| {
            let statement = self.statement(b.statement).cloned()?;
            let p = Portal {
                statement,
                params_digest: params_digest(b.params),
            };
            if b.portal.is_empty() {
                self.unnamed_portal = Some(p.clone());
            } else if let Some(slot) = self.portals.get_mut(b.portal) {
                // A driver that reuses its portal names allocates no key per Bind.
                *slot = p.clone();
            } else {
                self.portals.insert(Box::from(b.portal), p.clone());
            }
            Some(p)
        });
        self.push(Pending::Bind(portal));
    }

    fn on_execute(&mut self, body: &[u8], now: Clock) {
        let running = wire::read_execute(body).and_then(|(name, _max_rows)| {
            let portal = if name.is_empty() {
                self.unnamed_portal.as_ref()
            } else {
                self.portals.get(name)
            }?;
            Some(Running {
                sql: portal.statement.sql.clone(),
                backslash_quotes: portal.statement.backslash_quotes,
                protocol: Protocol::Extended,
                named_statement: portal.statement.named,
                started: now,
                rows: 0,
                params_digest: portal.params_digest,
            })
        });
        self.push(Pending::Execute(running));
    }

    /// The prepared statement `name` stands for (the unnamed one when `name` is empty).
    fn statement(&self, name: &[u8]) -> Option<&Statement> {
        if name.is_empty() {
            self.unnamed_statement.as_ref()
        } else {
            self.statements.get(name)
        }
    }

    fn forget(&mut self, kind: u8, name: &[u8]) {
        match (kind, name.is_empty()) {
            (b'S', true) => self.unnamed_statement = None,
            (b'S', false) => {
                self.statements.remove(name);
            }
            (b'P', true) => self.unnamed_portal = None,
            (b'P', false) => {
                self.portals.remove(name);
            }
            _ => {}
        }
    }

    fn on_backend(&mut self, tag: u8, body: &[u8], now: Clock) {
        match tag {
            b'D' => match self.queue.front_mut() {
                Some(Pending::Execute(Some(r))) => r.rows += 1,
                Some(Pending::Query(q)) => q.current.rows += 1,
                _ => {}
            },
            b'C' => self.complete(CommandTag::from_bytes(wire::read_cstr(body)), now),
            b'S' => {
                let mut r = wire::Reader::new(body);
                if let (Some(b"standard_conforming_strings"), Some(value)) = (r.cstr(), r.cstr()) {
                    self.backslash_quotes = value == b"off";
                }
            }
            b'I' => self.complete(CommandTag::from_bytes(b"EMPTY"), now),
            b's' => self.complete(CommandTag::from_bytes(b"SUSPENDED"), now),
            b'1' => {
                self.pop_expected(|p| matches!(p, Pending::Parse { .. } | Pending::Reparse { .. }));
            }
            b'2' => {
                self.pop_expected(|p| matches!(p, Pending::Bind(_)));
            }
            b'3' => {
                self.pop_expected(|p| matches!(p, Pending::Close));
            }
            b'n' => {
                self.pop_expected(|p| matches!(p, Pending::Describe));
            }
            b'T' => {
                // A RowDescription answers a Describe; within a Query or Execute it only
                // announces the rows that follow.
                if matches!(self.queue.front(), Some(Pending::Describe)) {
                    self.queue.pop_front();
                }
            }
            b'V' => {
                if let Some(Pending::FunctionCall(r)) = self.queue.front() {
                    let e = r.clone().finish(
                        self.connection_id,
                        now,
                        CommandTag::from_bytes(b"FUNCTION CALL"),
                        None,
                        &mut self.last_done,
                    );
                    record(&mut self.sink, &mut self.held, e, false);
                }
            }
            b'E' => self.on_error(body, now),
            b'Z' => {
                // ReadyForQuery ends a Query, a FunctionCall or a Sync, and with it anything
                // queued before it that never got an answer.
                while let Some(p) = self.queue.pop_front() {
                    match p {
                        Pending::Sync | Pending::Query(_) | Pending::FunctionCall(_) => break,
                        _ => self.desyncs += 1,
                    }
                }
                if let Some(h) = self.held.take() {
                    self.sink.record(h);
                }
                // The server is idle: what is sent next starts when it is sent.
                self.last_done = None;
                let status = body.first().copied().unwrap_or(b'I');
                if status == b'I' {
                    // Outside a transaction no protocol-level portal survives.
                    self.portals.clear();
                    self.unnamed_portal = None;
                }
                self.sink.ready_for_query(status);
            }
            _ => {}
        }
    }

    /// Pop the head if `expected` matches it; otherwise count a desync and resynchronize by
    /// dropping requests until one matches, never past a Sync, Query or FunctionCall.
    fn pop_expected(&mut self, expected: impl Fn(&Pending) -> bool) -> Option<Pending> {
        loop {
            let front = self.queue.front()?;
            if expected(front) {
                return self.queue.pop_front();
            }
            if matches!(
                front,
                Pending::Sync | Pending::Query(_) | Pending::FunctionCall(_)
            ) {
                self.desyncs += 1;
                return None;
            }
            self.desyncs += 1;
            self.queue.pop_front();
        }
    }

    /// CommandComplete, EmptyQueryResponse or PortalSuspended.
    fn complete(&mut self, tag: CommandTag, now: Clock) {
        let id = self.connection_id;
        match self.queue.front_mut() {
            Some(Pending::Query(q)) => {
                // The next statement starts now; the finished one's text moves into its
                // execution.
                let next = Running {
                    sql: statement_from(&q.text, &mut q.next, q.current.backslash_quotes),
                    started: now,
                    rows: 0,
                    ..q.current
                };
                let done = std::mem::replace(&mut q.current, next);
                let prepared = q.prepared.take().filter(|p| p.done_by(&tag));
                let e = done.finish(id, now, tag, None, &mut self.last_done);
                if !tag.is(b"EMPTY") {
                    record(&mut self.sink, &mut self.held, e, false);
                }
                if let Some(p) = prepared {
                    self.apply(p);
                }
            }
            Some(Pending::Execute(_)) => {
                if let Some(Pending::Execute(Some(r))) = self.queue.pop_front() {
                    let e = r.finish(id, now, tag, None, &mut self.last_done);
                    if !tag.is(b"EMPTY") {
                        record(&mut self.sink, &mut self.held, e, true);
                    }
                }
            }
            _ => {
                if let Some(Pending::Execute(Some(r))) =
                    self.pop_expected(|p| matches!(p, Pending::Execute(_)))
                {
                    let e = r.finish(id, now, tag, None, &mut self.last_done);
                    record(&mut self.sink, &mut self.held, e, true);
                }
            }
        }
    }

    fn on_error(&mut self, body: &[u8], now: Clock) {
        // Only the SQLSTATE is needed: read in place. pgwire's decoder would copy the message
        // and allocate a string per field to find it, and it panics on one cut short.
        let code = wire::error_code(body)
            .map(SqlState::from_bytes)
            .unwrap_or(SqlState(*b"XX000"));
        let id = self.connection_id;
        let extended = match self.queue.front_mut() {
            Some(Pending::Sync) => {
                // The implicit COMMIT at Sync failed (a deferred constraint): the statement
                // the client ran last fails with it.
                if let Some(mut h) = self.held.take() {
                    h.error = Some(code);
                    h.tag = CommandTag::default();
                    h.rows = 0;
                    self.sink.record(h);
                }
                return;
            }
            None => return, // e.g. FATAL at shutdown
            Some(Pending::Query(q)) => {
                if !q.failed {
                    q.failed = true;
                    let e = q.current.clone().fail(id, now, code, &mut self.last_done);
                    record(&mut self.sink, &mut self.held, e, false);
                }
                return; // ReadyForQuery ends it
            }
            Some(Pending::FunctionCall(r)) => {
                let e = r.clone().fail(id, now, code, &mut self.last_done);
                record(&mut self.sink, &mut self.held, e, false);
                return;
            }
            Some(_) => self.queue.pop_front(),
        };
        match extended {
            Some(Pending::Execute(Some(r))) => {
                let e = r.fail(id, now, code, &mut self.last_done);
                record(&mut self.sink, &mut self.held, e, false);
            }
            Some(Pending::Parse {
                name,
                sql,
                previous,
            }) => {
                if let Some(s) = &sql {
                    let e = failed_before_execution(id, s, now, code);
                    record(&mut self.sink, &mut self.held, e, false);
                }
                // The statement was not created: the name keeps its old meaning.
                match (name.is_empty(), previous) {
                    (true, prev) => self.unnamed_statement = prev,
                    (false, Some(prev)) => {
                        self.statements.insert(name, prev);
                    }
                    (false, None) => {
                        self.statements.remove(&name);
                    }
                }
            }
            Some(Pending::Reparse { name }) => {
                // (A named statement cannot be parsed again while it exists: 42P05.)
                if let Some(s) = self.statement(&name) {
                    let e = failed_before_execution(id, s, now, code);
                    record(&mut self.sink, &mut self.held, e, false);
                }
            }
            Some(Pending::Bind(Some(p))) => {
                let mut e = failed_before_execution(id, &p.statement, now, code);
                e.params_digest = p.params_digest;
                record(&mut self.sink, &mut self.held, e, false);
            }
            _ => {}
        }
        // The server now skips to the next Sync.
        while let Some(front) = self.queue.front() {
            if matches!(front, Pending::Sync) {
                return;
            }
            self.queue.pop_front();
        }
        self.skipping = true;
    }
}

/// Hand `e` to the sink in order. With `hold`, keep it back (in `held`) until the next
/// execution or ReadyForQuery, so that a failure at Sync can still be charged to it.
fn record(
    sink: &mut Box<dyn ExecutionSink>,
    held: &mut Option<Execution>,
    e: Execution,
    hold: bool,
) {
    if let Some(h) = held.take() {
        sink.record(h);
    }
    if hold {
        *held = Some(e);
    } else {
        sink.record(e);
    }
}

/// A Parse or Bind that failed: the statement never ran, but the failure is the statement's.
fn failed_before_execution(id: u64, s: &Statement, now: Clock, code: SqlState) -> Execution {
    Running {
        sql: s.sql.clone(),
        backslash_quotes: s.backslash_quotes,
        protocol: Protocol::Extended,
        named_statement: s.named,
        started: now,
        rows: 0,
        params_digest: 0,
    }
    .fail(id, now, code, &mut None)
}

/// Does `s` start with the ASCII `prefix`, in any case? On bytes: a character of several bytes
/// may straddle `prefix.len()`, where slicing the `str` would panic.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The statement of a simple Query's `text` found from `next` on, which moves past it. When
/// the splitter finds no more statements but the server reports more, the whole text is used,
/// and `next` moves to the end: the server and the splitter disagree on this text (a form the
/// lexer does not know), and scanning the rest again for every later completion would take
/// time quadratic in the text's length, on the relay thread.
fn statement_from(text: &SqlText, next: &mut usize, backslash_quotes: bool) -> SqlText {
    let found = fingerprint::with_backslash_quotes(backslash_quotes, || {
        split::next_statement(text.as_str().as_bytes(), *next)
    });
    match found {
        Some((range, after)) => {
            *next = after;
            text.slice(range)
        }
        None => {
            *next = text.as_str().len();
            text.clone()
        }
    }
}

/// The digest of a Bind message's parameter formats, values and result formats.
pub fn params_digest(params: &[u8]) -> u64 {
    // Bind with no parameters and default formats: `0 0 0 0 0 0` (three zero counts).
    if params.iter().all(|&b| b == 0) {
        return 0;
    }
    xxhash_rust::xxh3::xxh3_64(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Execution>>>);

    impl ExecutionSink for Recorder {
        fn record(&mut self, e: Execution) {
            self.0.lock().unwrap().push(e);
        }
    }

    /// A tracker with a recording sink and a clock that advances 1 ms per message.
    struct Harness {
        tracker: Tracker,
        seen: Recorder,
        clock: Clock,
    }

    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    impl Harness {
        fn new() -> Self {
            let seen = Recorder::default();
            Harness {
                tracker: Tracker::new(7, Box::new(seen.clone())),
                seen,
                clock: ClockSource::new().now(),
            }
        }

        fn tick(&mut self) -> Clock {
            self.clock.instant += Duration::from_millis(1);
            self.clock
        }

        fn fe(&mut self, tag: u8, body: &[u8]) -> &mut Self {
            let now = self.tick();
            let body = if frontend_needs_body(tag) { body } else { &[] };
            self.tracker.frontend(tag, body, now);
            self
        }

        fn be(&mut self, tag: u8, body: &[u8]) -> &mut Self {
            let now = self.tick();
            let body = if backend_needs_body(tag) { body } else { &[] };
            if backend_tracked(tag) {
                self.tracker.backend(tag, body, now);
            }
            self
        }

        fn query(&mut self, sql: &str) -> &mut Self {
            self.fe(b'Q', &cstr(sql))
        }

        fn parse(&mut self, name: &str, sql: &str) -> &mut Self {
            let mut b = cstr(name);
            b.extend(cstr(sql));
            b.extend([0, 0]);
            self.fe(b'P', &b)
        }

        fn bind(&mut self, portal: &str, stmt: &str, params: &[&str]) -> &mut Self {
            let mut b = cstr(portal);
            b.extend(cstr(stmt));
            b.extend([0, 0]);
            b.extend((params.len() as i16).to_be_bytes());
            for p in params {
                b.extend((p.len() as i32).to_be_bytes());
                b.extend(p.as_bytes());
            }
            b.extend([0, 0]);
            self.fe(b'B', &b)
        }

        fn execute(&mut self, portal: &str, max_rows: i32) -> &mut Self {
            let mut b = cstr(portal);
            b.extend(max_rows.to_be_bytes());
            self.fe(b'E', &b)
        }

        fn sync(&mut self) -> &mut Self {
            self.fe(b'S', &[])
        }

        fn rows(&mut self, n: usize) -> &mut Self {
            self.be(b'T', &[]);
            for _ in 0..n {
                self.be(b'D', &[]);
            }
            self
        }

        fn complete(&mut self, tag: &str) -> &mut Self {
            self.be(b'C', &cstr(tag))
        }

        fn error(&mut self, code: &str) -> &mut Self {
            let mut b = vec![b'S'];
            b.extend(cstr("ERROR"));
            b.push(b'C');
            b.extend(cstr(code));
            b.push(b'M');
            b.extend(cstr("boom"));
            b.push(0);
            self.be(b'E', &b)
        }

        /// `sql` as the unnamed statement and portal, answered with one row.
        fn one_row_unnamed(&mut self, sql: &str) -> &mut Self {
            self.parse("", sql).bind("", "", &[]).execute("", 0).sync();
            self.be(b'1', &[])
                .be(b'2', &[])
                .rows(1)
                .complete("SELECT 1")
                .ready(b'I')
        }

        fn ready(&mut self, status: u8) -> &mut Self {
            self.be(b'Z', &[status])
        }

        /// (sql, rows, tag, error) of every execution so far.
        fn seen(&self) -> Vec<(String, u64, String, Option<String>)> {
            self.seen
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e.sql.as_str().to_owned(),
                        e.rows,
                        e.tag.as_str().to_owned(),
                        e.error.map(|c| c.as_str().to_owned()),
                    )
                })
                .collect()
        }

        fn executions(&self) -> Vec<Execution> {
            self.seen.0.lock().unwrap().clone()
        }

        fn assert_settled(&self) {
            assert_eq!(self.tracker.pending(), 0, "requests left unanswered");
            assert_eq!(
                self.tracker.desyncs(),
                0,
                "answers paired with the wrong request"
            );
        }
    }

    fn ok(sql: &str, rows: u64, tag: &str) -> (String, u64, String, Option<String>) {
        (sql.to_owned(), rows, tag.to_owned(), None)
    }

    fn failed(sql: &str, code: &str) -> (String, u64, String, Option<String>) {
        (sql.to_owned(), 0, String::new(), Some(code.to_owned()))
    }

    #[test]
    fn simple_query_with_several_statements() {
        let mut h = Harness::new();
        h.query("BEGIN; SELECT a FROM t; SHOW work_mem ;COMMIT")
            .complete("BEGIN")
            .rows(3)
            .complete("SELECT 3")
            .rows(1)
            .complete("SHOW")
            .complete("COMMIT")
            .ready(b'I');
        assert_eq!(
            h.seen(),
            [
                ok("BEGIN", 0, "BEGIN"),
                ok("SELECT a FROM t", 3, "SELECT 3"),
                ok("SHOW work_mem", 1, "SHOW"),
                ok("COMMIT", 0, "COMMIT"),
            ]
        );
        h.assert_settled();
        // Each statement is timed from the previous one's completion.
        let e = h.executions();
        assert_eq!(e[1].started, e[0].started + e[0].duration);
        assert!(e.iter().all(|e| e.protocol == Protocol::Simple));
    }

    /// When the server reports more statements than the splitter found, the later ones get
    /// the whole text, and the text is not scanned again for each of them (that was quadratic
    /// in the text's length, on the relay thread).
    #[test]
    fn more_completions_than_statements_do_not_rescan_the_text() {
        // What the splitter sees after `SELECT 1;` is one unterminated comment.
        let text = SqlText::new("SELECT 1; /* SELECT 2; SELECT 3");
        let mut next = 0;
        assert_eq!(statement_from(&text, &mut next, false).as_str(), "SELECT 1");
        assert_eq!(
            statement_from(&text, &mut next, false).as_str(),
            text.as_str()
        );
        assert_eq!(next, text.as_str().len(), "the rest was consumed");
        assert_eq!(
            statement_from(&text, &mut next, false).as_str(),
            text.as_str()
        );

        let mut h = Harness::new();
        h.query(text.as_str())
            .complete("SELECT 0")
            .complete("SELECT 0")
            .complete("SELECT 0")
            .ready(b'I');
        let sql: Vec<String> = h.seen().into_iter().map(|e| e.0).collect();
        assert_eq!(sql[0], "SELECT 1");
        assert_eq!(sql[1..], [text.as_str(), text.as_str()]);
        h.assert_settled();
    }

    /// The server reports `standard_conforming_strings` in ParameterStatus (at login and
    /// after a SET); while it is off, Query texts are split with backslash escapes, and every
    /// execution says how its text is to be read.
    #[test]
    fn standard_conforming_strings_off_is_followed() {
        let scs = |value: &str| {
            let mut b = cstr("standard_conforming_strings");
            b.extend(cstr(value));
            b
        };
        let sql = r"SELECT 'a\'; b'; SELECT 2";
        let mut h = Harness::new();
        h.be(b'S', &scs("off")).be(b'Z', b"I");
        h.query(sql)
            .rows(1)
            .complete("SELECT 1")
            .rows(1)
            .complete("SELECT 1")
            .ready(b'I');
        // A Parse while it is off, executed after it is on again, keeps the reading it had.
        h.parse("p", r"SELECT 'x\'y'").sync();
        h.be(b'1', &[]).ready(b'I');
        h.be(b'S', &scs("on"));
        h.query(sql).rows(1).complete("SELECT 1").ready(b'I');
        h.bind("", "p", &[]).execute("", 0).sync();
        h.be(b'2', &[]).rows(1).complete("SELECT 1").ready(b'I');
        let e = h.executions();
        let got: Vec<(&str, bool)> = e
            .iter()
            .map(|e| (e.sql.as_str(), e.backslash_quotes))
            .collect();
        assert_eq!(
            got,
            [
                (r"SELECT 'a\'; b'", true),
                ("SELECT 2", true),
                (r"SELECT 'a\'", false),
                (r"SELECT 'x\'y'", true),
            ]
        );
        h.assert_settled();
    }

    /// pgwire's decoders panic on a Parse or an ErrorResponse cut short. A client may send
    /// such a Parse (the server answers it with an error), and tracking must go on; an
    /// ErrorResponse's SQLSTATE is read without pgwire.
    #[test]
    fn cut_short_messages_are_not_decoded() {
        let mut h = Harness::new();
        // A Parse without its parameter count, then one whose count promises a type id.
        for body in [&b"\0SELECT 1\0"[..], b"\0SELECT $1\0\0\x01\0\0"] {
            h.fe(b'P', body).sync();
            h.error("08P01").ready(b'I');
        }
        // An ErrorResponse without its final NUL, and an empty one.
        for body in [&b"SERROR\0C42601\0"[..], b""] {
            h.query("SELECT x");
            h.be(b'E', body).ready(b'I');
        }
        h.query("SELECT 1").rows(1).complete("SELECT 1").ready(b'I');
        assert!(!h.tracker.stopped(), "tracking stopped");
        let seen = h.seen();
        assert_eq!(
            seen[seen.len() - 3..],
            [
                failed("SELECT x", "42601"),
                failed("SELECT x", "XX000"),
                ok("SELECT 1", 1, "SELECT 1"),
            ]
        );
        h.assert_settled();
        assert!(wire::whole_parse(b"\0SELECT $1\0\0\x01\0\0\0\x17"));
        assert_eq!(wire::error_code(b"SERROR\0C42601\0\0"), Some(&b"42601"[..]));
    }

    #[test]
    fn query_texts_share_the_connections_buffer() {
        let mut h = Harness::new();
        h.query("SELECT 1").rows(1).complete("SELECT 1").ready(b'I');
        h.query("SELECT 2; SELECT 3")
            .rows(1)
            .complete("SELECT 1")
            .rows(1)
            .complete("SELECT 1")
            .ready(b'I');
        // Not UTF-8: tracked with the replacement character, in the same buffer.
        h.fe(b'Q', b"SELECT '\xff'\0")
            .rows(1)
            .complete("SELECT 1")
            .ready(b'I');
        let e = h.executions();
        let texts: Vec<&str> = e.iter().map(|e| e.sql.as_str()).collect();
        assert_eq!(
            texts,
            ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT '\u{fffd}'"]
        );
        // Written one after another: the second Query starts where the first ended, and
        // its statements point into it.
        let (first, len) = e[0].sql.place();
        assert_eq!(e[1].sql.place().0, first + len);
        assert_eq!(e[2].sql.place().0, first + len + "SELECT 2; ".len());
        assert_eq!(e[3].sql.place().0, first + len + "SELECT 2; SELECT 3".len());
    }

    #[test]
    fn simple_query_error_stops_the_rest() {
        let mut h = Harness::new();
        h.query("SELECT 1; SELECT nope; SELECT 3")
            .rows(1)
            .complete("SELECT 1")
            .error("42703")
            .ready(b'I');
        assert_eq!(
            h.seen(),
            [
                ok("SELECT 1", 1, "SELECT 1"),
                failed("SELECT nope", "42703")
            ]
        );
        h.assert_settled();
    }

    #[test]
    fn rows_sent_before_an_error_are_counted() {
        let mut h = Harness::new();
        h.query("SELECT 1/(g-3) FROM generate_series(1,5) g")
            .rows(2)
            .error("22012")
            .ready(b'I');
        let e = h.executions();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].rows, e[0].error.map(|c| c.0)), (2, Some(*b"22012")));
        h.assert_settled();
    }

    #[test]
    fn empty_query_yields_nothing() {
        let mut h = Harness::new();
        h.query("").be(b'I', &[]).ready(b'I');
        h.query(" ; -- nothing").be(b'I', &[]).ready(b'I');
        assert!(h.seen().is_empty());
        h.assert_settled();
    }

    #[test]
    fn duration_spans_request_to_completion() {
        let mut h = Harness::new();
        h.query("SELECT pg_sleep(0.2)");
        h.clock.instant += Duration::from_millis(200);
        h.rows(1).complete("SELECT 1").ready(b'I');
        let e = &h.executions()[0];
        // 200 ms of sleep plus the harness's 1 ms per message.
        assert!(e.duration >= Duration::from_millis(200));
        assert!(e.duration < Duration::from_millis(210));
    }

    #[test]
    fn pipelined_extended_protocol() {
        let mut h = Harness::new();
        h.parse("s1", "SELECT * FROM t WHERE id = $1")
            .bind("", "s1", &["1"])
            .fe(b'D', b"P\0")
            .execute("", 0)
            .parse("", "INSERT INTO t VALUES ($1)")
            .bind("", "", &["5"])
            .execute("", 0)
            .bind("", "s1", &["2"])
            .execute("", 0)
            .sync();
        h.be(b'1', &[]).be(b'2', &[]).rows(2).complete("SELECT 2");
        h.be(b'1', &[]).be(b'2', &[]).complete("INSERT 0 1");
        h.be(b'2', &[])
            .be(b'D', &[])
            .complete("SELECT 1")
            .ready(b'I');
        assert_eq!(
            h.seen(),
            [
                ok("SELECT * FROM t WHERE id = $1", 2, "SELECT 2"),
                ok("INSERT INTO t VALUES ($1)", 1, "INSERT 0 1"),
                ok("SELECT * FROM t WHERE id = $1", 1, "SELECT 1"),
            ]
        );
        let e = h.executions();
        assert!(e[0].named_statement && !e[1].named_statement);
        assert_ne!(e[0].params_digest, e[2].params_digest);
        assert_ne!(e[0].params_digest, 0);
        h.assert_settled();
    }

    #[test]
    fn prepared_statement_runs_many_times_with_its_text() {
        let mut h = Harness::new();
        h.parse("stmt", "SELECT $1::int").sync();
        h.be(b'1', &[]).ready(b'I');
        for i in 0..3 {
            h.bind("", "stmt", &["7"]).execute("", 0).sync();
            h.be(b'2', &[])
                .be(b'D', &[])
                .complete("SELECT 1")
                .ready(b'I');
            assert_eq!(h.seen().len(), i + 1);
        }
        let e = h.executions();
        assert!(e.iter().all(|e| e.sql == "SELECT $1::int"));
        // Same parameters, same digest: what duplicate detection relies on.
        assert_eq!(e[0].params_digest, e[2].params_digest);
        h.assert_settled();
    }

    #[test]
    fn error_mid_pipeline_skips_to_sync() {
        let mut h = Harness::new();
        h.parse("", "SELECT 1/0")
            .bind("", "", &[])
            .execute("", 0)
            .parse("", "SELECT 2")
            .bind("", "", &[])
            .execute("", 0)
            .sync();
        h.be(b'1', &[]).be(b'2', &[]).error("22012").ready(b'I');
        assert_eq!(h.seen(), [failed("SELECT 1/0", "22012")]);
        h.assert_settled();
        // The connection carries on.
        h.one_row_unnamed("SELECT 3");
        assert_eq!(h.seen()[1], ok("SELECT 3", 1, "SELECT 1"));
        h.assert_settled();
    }

    #[test]
    fn requests_sent_after_an_error_but_before_sync_are_ignored() {
        let mut h = Harness::new();
        h.parse("", "SELECT nope").bind("", "", &[]).execute("", 0);
        h.error("42703");
        // The client had not seen the error yet and pipelines more, then syncs.
        h.parse("", "SELECT 2")
            .bind("", "", &[])
            .execute("", 0)
            .sync();
        h.ready(b'I');
        assert_eq!(h.seen(), [failed("SELECT nope", "42703")]);
        h.assert_settled();
    }

    #[test]
    fn failed_reparse_keeps_the_old_statement() {
        let mut h = Harness::new();
        h.parse("s", "SELECT 1").sync();
        h.be(b'1', &[]).ready(b'I');
        h.parse("s", "SELECT 2").sync();
        h.error("42P05").ready(b'I'); // prepared statement "s" already exists
        h.bind("", "s", &[]).execute("", 0).sync();
        h.be(b'2', &[]).rows(1).complete("SELECT 1").ready(b'I');
        assert_eq!(
            h.seen(),
            [failed("SELECT 2", "42P05"), ok("SELECT 1", 1, "SELECT 1")]
        );
        h.assert_settled();
    }

    #[test]
    fn parse_of_the_same_text_again() {
        let mut h = Harness::new();
        // The unnamed statement parsed again with its own text (what drivers do per query),
        // then a named one that already exists: the server refuses it, the name keeps its
        // statement.
        h.parse("", "SELECT 1").sync();
        h.be(b'1', &[]).ready(b'I');
        h.one_row_unnamed("SELECT 1");
        h.parse("s", "SELECT 2").sync();
        h.be(b'1', &[]).ready(b'I');
        h.parse("s", "SELECT 2").sync();
        h.error("42P05").ready(b'I');
        h.bind("", "s", &[]).execute("", 0).sync();
        h.be(b'2', &[]).rows(1).complete("SELECT 1").ready(b'I');
        assert_eq!(
            h.seen(),
            [
                ok("SELECT 1", 1, "SELECT 1"),
                failed("SELECT 2", "42P05"),
                ok("SELECT 2", 1, "SELECT 1")
            ]
        );
        h.assert_settled();
    }

    #[test]
    fn portal_suspended_and_resumed() {
        let mut h = Harness::new();
        h.parse("", "SELECT g FROM generate_series(1,5) g")
            .bind("c", "", &[])
            .execute("c", 2)
            .execute("c", 2)
            .execute("c", 2)
            .sync();
        h.be(b'1', &[]).be(b'2', &[]);
        h.be(b'D', &[]).be(b'D', &[]).be(b's', &[]);
        h.be(b'D', &[]).be(b'D', &[]).be(b's', &[]);
        h.be(b'D', &[]).complete("SELECT 1").ready(b'I');
        let sql = "SELECT g FROM generate_series(1,5) g";
        assert_eq!(
            h.seen(),
            [
                ok(sql, 2, "SUSPENDED"),
                ok(sql, 2, "SUSPENDED"),
                ok(sql, 1, "SELECT 1")
            ]
        );
        h.assert_settled();
    }

    #[test]
    fn describe_and_close_are_answered_without_executions() {
        let mut h = Harness::new();
        h.parse("s", "SELECT $1")
            .fe(b'D', b"Ss\0")
            .fe(b'C', b"Ss\0")
            .fe(b'D', b"Pnone\0")
            .sync();
        h.be(b'1', &[]).be(b't', &[]).be(b'T', &[]).be(b'3', &[]);
        h.error("34000").ready(b'I'); // portal "none" does not exist
        assert!(h.seen().is_empty());
        h.assert_settled();
        // Closed: binding it again finds no text (and the server says 26000).
        h.bind("", "s", &[]).sync();
        h.error("26000").ready(b'I');
        assert!(h.seen().is_empty());
        h.assert_settled();
    }

    #[test]
    fn copy_in_and_out_count_rows_from_the_tag() {
        let mut h = Harness::new();
        h.query("COPY t FROM STDIN");
        h.be(b'G', &[]);
        h.fe(b'd', &[]).fe(b'd', &[]).fe(b'c', &[]);
        h.complete("COPY 2").ready(b'I');
        h.query("COPY t TO STDOUT");
        h.be(b'H', &[]).be(b'd', &[]).be(b'd', &[]).be(b'c', &[]);
        h.complete("COPY 2").ready(b'I');
        assert_eq!(
            h.seen(),
            [
                ok("COPY t FROM STDIN", 2, "COPY 2"),
                ok("COPY t TO STDOUT", 2, "COPY 2")
            ]
        );
        h.assert_settled();
    }

    #[test]
    fn function_call() {
        let mut h = Harness::new();
        h.fe(b'F', &[]);
        h.be(b'V', &[]).ready(b'I');
        assert_eq!(h.seen(), [ok(FUNCTION_CALL_SQL, 0, "FUNCTION CALL")]);
        assert_eq!(h.executions()[0].protocol, Protocol::FunctionCall);
        h.assert_settled();
    }

    #[test]
    fn asynchronous_messages_do_not_disturb_pairing() {
        let mut h = Harness::new();
        h.query("SELECT 1");
        h.be(b'N', &[]).be(b'A', &[]).be(b'S', &[]);
        h.rows(1)
            .be(b'N', &[])
            .complete("SELECT 1")
            .be(b'A', &[])
            .ready(b'I');
        assert_eq!(h.seen(), [ok("SELECT 1", 1, "SELECT 1")]);
        h.assert_settled();
    }

    #[test]
    fn sql_level_deallocate_forgets_statements() {
        let mut h = Harness::new();
        h.parse("a", "SELECT 1").parse("b", "SELECT 2").sync();
        h.be(b'1', &[]).be(b'1', &[]).ready(b'I');
        h.query("DEALLOCATE a").complete("DEALLOCATE").ready(b'I');
        assert!(!h.tracker.statements.contains_key(&b"a"[..]));
        assert!(h.tracker.statements.contains_key(&b"b"[..]));
        h.query("DISCARD ALL").complete("DISCARD ALL").ready(b'I');
        assert!(h.tracker.statements.is_empty());
    }

    #[test]
    fn queries_with_characters_of_several_bytes_anywhere_are_tracked() {
        // The PREPARE / DEALLOCATE / DISCARD checks look at the first 7, 8, 10, 11, 14 and 22
        // bytes: a character of two, three or four bytes straddling any of them must not
        // panic the relay thread.
        for ch in ["é", "日", "😀"] {
            for pad in 0..24 {
                let sql = format!("{}{ch}{ch}", "x".repeat(pad));
                let deallocate = format!("DEALLOCATE {}{ch}", "x".repeat(pad));
                let mut h = Harness::new();
                h.query(&sql).complete("SELECT 0").ready(b'I');
                h.query(&deallocate).complete("DEALLOCATE").ready(b'I');
                let seen: Vec<String> = h
                    .executions()
                    .iter()
                    .map(|e| e.sql.as_str().to_owned())
                    .collect();
                assert_eq!(seen, [sql, deallocate]);
            }
        }
    }

    /// A sink that fails on every execution and counts `closed` calls.
    struct Failing(Arc<Mutex<u32>>);

    impl ExecutionSink for Failing {
        fn record(&mut self, _: Execution) {
            panic!("the sink failed");
        }

        fn closed(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }

    #[test]
    fn a_panic_while_tracking_stops_tracking_on_that_connection_only() {
        let closed = Arc::new(Mutex::new(0));
        let mut t = Tracker::new(1, Box::new(Failing(closed.clone())));
        let now = ClockSource::new().now();
        t.frontend(b'Q', b"SELECT 1\0", now);
        assert!(!t.stopped());
        t.backend(b'C', b"SELECT 1\0", now); // the sink panics: caught here
        assert!(t.stopped());
        assert_eq!(t.pending(), 0);
        // What follows is relayed untracked, without another panic.
        t.frontend(b'Q', b"SELECT 2\0", now);
        t.backend(b'C', b"SELECT 1\0", now);
        t.backend(b'Z', b"I", now);
        assert_eq!(t.pending(), 0);
        // The observer still hears that the connection ended.
        t.close();
        assert_eq!(*closed.lock().unwrap(), 1);
    }

    #[test]
    fn pipelined_statements_do_not_overlap() {
        let mut h = Harness::new();
        let start = h.clock.instant;
        h.parse("", "SELECT pg_sleep(0.3)")
            .bind("", "", &[])
            .execute("", 0);
        for _ in 0..5 {
            h.parse("", "SELECT 1").bind("", "", &[]).execute("", 0);
        }
        h.sync();
        // The server runs them in turn and flushes all the answers at Sync.
        h.clock.instant += Duration::from_millis(300);
        let now = h.clock;
        for _ in 0..6 {
            for tag in [b'1', b'2'] {
                h.tracker.backend(tag, &[], now);
            }
            h.tracker.backend(b'D', &[], now);
            h.tracker.backend(b'C', b"SELECT 1\0", now);
        }
        h.tracker.backend(b'Z', b"I", now);
        let e = h.executions();
        assert_eq!(e.len(), 6);
        let total: Duration = e.iter().map(|e| e.duration).sum();
        assert!(total <= now.instant - start, "{total:?}");
        assert!(e[0].duration >= Duration::from_millis(300));
        assert!(e.iter().all(|e| e.started + e.duration <= now.instant));
        h.assert_settled();
    }

    #[test]
    fn sql_prepare_names_a_statement_for_bind() {
        let mut h = Harness::new();
        h.query("PREPARE q (int) AS SELECT $1 + 1")
            .complete("PREPARE")
            .ready(b'I');
        h.bind("", "q", &["1"]).execute("", 0).sync();
        h.be(b'2', &[]).rows(1).complete("SELECT 1").ready(b'I');
        assert_eq!(h.seen()[1], ok("SELECT $1 + 1", 1, "SELECT 1"));
    }

    /// A PREPARE, DEALLOCATE or DISCARD counts once the server has done it: a rejected
    /// PREPARE (say a syntax error in 1 MB of text) names nothing and keeps nothing, and a
    /// failed DEALLOCATE forgets nothing.
    #[test]
    fn sql_prepare_counts_once_the_server_has_done_it() {
        let mut h = Harness::new();
        h.query("PREPARE bad AS SELEC 1").error("42601").ready(b'I');
        assert!(
            h.tracker.statements.is_empty(),
            "a rejected PREPARE was kept"
        );
        h.query("PREPARE q AS SELECT 1")
            .complete("PREPARE")
            .ready(b'I');
        h.query("DEALLOCATE q").error("25P02").ready(b'E');
        h.query("DISCARD ALL").error("25001").ready(b'E');
        assert!(h.tracker.statements.contains_key(&b"q"[..]));
        h.query("DEALLOCATE q").complete("DEALLOCATE").ready(b'I');
        assert!(h.tracker.statements.is_empty());
        h.assert_settled();
    }

    #[test]
    fn commit_failure_at_sync_fails_the_last_statement() {
        let mut h = Harness::new();
        h.parse("", "INSERT INTO t VALUES (1)")
            .bind("", "", &[])
            .execute("", 0)
            .sync();
        h.be(b'1', &[]).be(b'2', &[]).complete("INSERT 0 1");
        h.error("23503").ready(b'I'); // deferred constraint checked at the implicit COMMIT
        assert_eq!(h.seen(), [failed("INSERT INTO t VALUES (1)", "23503")]);
        h.assert_settled();
    }
}
