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
//! The tracker is pure: it is fed frames and a clock, and is tested without sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::response::ErrorResponse;
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};

use super::execution::{CommandTag, Execution, ExecutionSink, Protocol, SqlState, SqlText};
use super::wire;
use crate::fingerprint::split;

/// A reading of both clocks, taken once per chunk of bytes the relay handles.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub instant: Instant,
    pub system: SystemTime,
}

impl Clock {
    pub fn now() -> Self {
        Clock {
            instant: Instant::now(),
            system: SystemTime::now(),
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
        b'1' | b'2' | b'3' | b'n' | b'T' | b'D' | b'C' | b'I' | b's' | b'E' | b'V' | b'Z'
    )
}

/// Does the tracker need the whole body of this backend message?
#[inline]
pub fn backend_needs_body(tag: u8) -> bool {
    matches!(tag, b'C' | b'E' | b'Z')
}

const FUNCTION_CALL_SQL: &str = "fastpath function call";

/// A statement on its way: everything an [`Execution`] needs but the completion.
struct Running {
    sql: SqlText,
    protocol: Protocol,
    named_statement: bool,
    started: Clock,
    rows: u64,
    params_digest: u64,
}

impl Running {
    fn finish(
        &self,
        connection_id: u64,
        now: Clock,
        tag: CommandTag,
        error: Option<SqlState>,
    ) -> Execution {
        Execution {
            connection_id,
            sql: self.sql.clone(),
            protocol: self.protocol,
            named_statement: self.named_statement,
            started: self.started.instant,
            started_at: self.started.system,
            duration: now.instant.saturating_duration_since(self.started.instant),
            rows: tag.rows().unwrap_or(self.rows),
            tag,
            error,
            params_digest: self.params_digest,
        }
    }
}

/// A simple Query: its text, and how far through its statements the server has got.
struct SimpleQuery {
    text: Arc<str>,
    /// Where the next statement's search starts.
    next: usize,
    current: Running,
    failed: bool,
}

/// A prepared statement (or the unnamed one): its text.
#[derive(Clone)]
struct Statement {
    sql: Arc<str>,
    named: bool,
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
    desyncs: u64,
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
            desyncs: 0,
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
        self.sink.closed();
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
                sql: SqlText::new(Arc::from(FUNCTION_CALL_SQL)),
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
        let raw = wire::read_cstr(body);
        let text: Arc<str> = match std::str::from_utf8(raw) {
            Ok(s) => Arc::from(s),
            Err(_) => Arc::from(String::from_utf8_lossy(raw).as_ref()),
        };
        self.note_deallocate(&text);
        let current = Running {
            sql: SqlText::new(text.clone()),
            protocol: Protocol::Simple,
            named_statement: false,
            started: now,
            rows: 0,
            params_digest: 0,
        };
        let mut q = SimpleQuery {
            text,
            next: 0,
            current,
            failed: false,
        };
        advance_statement(&mut q);
        self.push(Pending::Query(q));
    }

    /// SQL-level `DEALLOCATE` and `DISCARD ALL` drop prepared statements too.
    fn note_deallocate(&mut self, text: &str) {
        let t = text.trim_start();
        let starts = |p: &str| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
        if starts("DISCARD ALL") || starts("DEALLOCATE ALL") || starts("DEALLOCATE PREPARE ALL") {
            self.statements.clear();
        } else if starts("DEALLOCATE") {
            let rest = t["DEALLOCATE".len()..].trim_start();
            let rest = if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case("PREPARE") {
                rest[7..].trim_start()
            } else {
                rest
            };
            let name = rest
                .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
                .trim_matches('"');
            self.statements.remove(name.as_bytes());
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
        let previous = if name.is_empty() {
            self.unnamed_statement.clone()
        } else {
            self.statements.get(name).cloned()
        };
        // Drivers that use the unnamed statement send the same Parse for every execution:
        // reuse the text we have instead of decoding it again.
        let sql = match &previous {
            Some(p) if p.sql.as_bytes() == query => Some(p.clone()),
            _ => self.decode_parse(body).map(|text| Statement {
                sql: Arc::from(text),
                named: !name.is_empty(),
            }),
        };
        match (&sql, name.is_empty()) {
            (Some(s), true) => self.unnamed_statement = Some(s.clone()),
            (Some(s), false) => {
                self.statements.insert(Box::from(name), s.clone());
            }
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
            let statement = if b.statement.is_empty() {
                self.unnamed_statement.clone()
            } else {
                self.statements.get(b.statement).cloned()
            }?;
            let p = Portal {
                statement,
                params_digest: params_digest(b.params),
            };
            if b.portal.is_empty() {
                self.unnamed_portal = Some(p.clone());
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
                sql: SqlText::new(portal.statement.sql.clone()),
                protocol: Protocol::Extended,
                named_statement: portal.statement.named,
                started: now,
                rows: 0,
                params_digest: portal.params_digest,
            })
        });
        self.push(Pending::Execute(running));
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

    /// A backend message was forwarded. `body` is its whole body when
    /// [`backend_needs_body`] says so, otherwise empty.
    pub fn backend(&mut self, tag: u8, body: &[u8], now: Clock) {
        match tag {
            b'D' => match self.queue.front_mut() {
                Some(Pending::Execute(Some(r))) => r.rows += 1,
                Some(Pending::Query(q)) => q.current.rows += 1,
                _ => {}
            },
            b'C' => self.complete(CommandTag::from_bytes(wire::read_cstr(body)), now),
            b'I' => self.complete(CommandTag::from_bytes(b"EMPTY"), now),
            b's' => self.complete(CommandTag::from_bytes(b"SUSPENDED"), now),
            b'1' => {
                self.pop_expected(|p| matches!(p, Pending::Parse { .. }));
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
                    let e = r.finish(
                        self.connection_id,
                        now,
                        CommandTag::from_bytes(b"FUNCTION CALL"),
                        None,
                    );
                    self.sink.record(e);
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
                if tag.as_str() != "EMPTY" {
                    let e = q.current.finish(id, now, tag, None);
                    self.sink.record(e);
                }
                q.current.started = now;
                q.current.rows = 0;
                advance_statement(q);
            }
            Some(Pending::Execute(_)) => {
                if let Some(Pending::Execute(Some(r))) = self.queue.pop_front() {
                    if tag.as_str() != "EMPTY" {
                        self.sink.record(r.finish(id, now, tag, None));
                    }
                }
            }
            _ => {
                if let Some(Pending::Execute(Some(r))) =
                    self.pop_expected(|p| matches!(p, Pending::Execute(_)))
                {
                    self.sink.record(r.finish(id, now, tag, None));
                }
            }
        }
    }

    fn on_error(&mut self, body: &[u8], now: Clock) {
        let code = match self.decode::<ErrorResponse>(b'E', body) {
            Some(e) => e
                .fields
                .iter()
                .find(|(f, _)| *f == b'C')
                .map(|(_, v)| SqlState::from_bytes(v.as_bytes())),
            None => wire::error_code(body).map(SqlState::from_bytes),
        }
        .unwrap_or(SqlState(*b"XX000"));
        let id = self.connection_id;
        let extended = match self.queue.front_mut() {
            None | Some(Pending::Sync) => return, // e.g. a failed COMMIT at Sync, or FATAL
            Some(Pending::Query(q)) => {
                if !q.failed {
                    q.failed = true;
                    let e = q.current.finish(id, now, CommandTag::default(), Some(code));
                    self.sink.record(e);
                }
                return; // ReadyForQuery ends it
            }
            Some(Pending::FunctionCall(r)) => {
                let e = r.finish(id, now, CommandTag::default(), Some(code));
                self.sink.record(e);
                return;
            }
            Some(_) => self.queue.pop_front(),
        };
        match extended {
            Some(Pending::Execute(Some(r))) => {
                self.sink
                    .record(r.finish(id, now, CommandTag::default(), Some(code)));
            }
            Some(Pending::Parse {
                name,
                sql,
                previous,
            }) => {
                if let Some(s) = &sql {
                    self.sink
                        .record(self::failed_before_execution(id, s, now, code));
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
            Some(Pending::Bind(Some(p))) => {
                let mut e = failed_before_execution(id, &p.statement, now, code);
                e.params_digest = p.params_digest;
                self.sink.record(e);
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

/// A Parse or Bind that failed: the statement never ran, but the failure is the statement's.
fn failed_before_execution(id: u64, s: &Statement, now: Clock, code: SqlState) -> Execution {
    Running {
        sql: SqlText::new(s.sql.clone()),
        protocol: Protocol::Extended,
        named_statement: s.named,
        started: now,
        rows: 0,
        params_digest: 0,
    }
    .finish(id, now, CommandTag::default(), Some(code))
}

/// Point `q.current.sql` at the next statement of a simple Query. When the splitter finds no
/// more statements but the server reports more, the whole text is used.
fn advance_statement(q: &mut SimpleQuery) {
    match split::next_statement(q.text.as_bytes(), q.next) {
        Some((range, next)) => {
            q.current.sql = SqlText::slice(q.text.clone(), range);
            q.next = next;
        }
        None => q.current.sql = SqlText::new(q.text.clone()),
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
