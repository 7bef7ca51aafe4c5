//! Relay threads: the byte pumps of established connections.
//!
//! Once the startup phase has connected a client to its upstream (on the tokio runtime), both
//! sockets are handed to one relay thread, where they stay until the connection ends. A relay
//! thread is a hand-driven `mio` event loop rather than a tokio runtime: this is the hot path,
//! and on a small machine the task machinery (a wakeup that re-polls both pumps and the
//! shutdown signal, waker clones, the run queue) was the largest user-space cost per statement
//! (measured with `bench/relay.sh` and perf: about 6% of the proxy's CPU samples, more than the
//! tracker). Here an event names its socket, and a socket is read or written only when the
//! kernel said it can be.
//!
//! Each direction owns one persistent buffer. A pump reads whatever the socket has, walks every
//! complete frame header in it, shows the tracker the frames it pairs on, and writes all the
//! walked bytes to the other side in one write. Frames the tracker does not read (DataRow,
//! CopyData, …) stream through as they arrive: only their 5-byte header is looked at, so a
//! 100 MB row never sits whole in memory. Only the frames the tracker reads wait until they are
//! complete. Nothing is decoded and re-encoded; nothing is allocated per message.
//!
//! A pump does not read again until the last chunk is fully written, so a slow reader on one
//! side slows the other (TCP back-pressure) instead of filling a queue. The tracker belongs to
//! the connection, and the connection to one thread: no lock anywhere on the way.
//!
//! The system-call interface is chosen at start (`--relay-io`): on Linux with io_uring (6.1 or
//! later, and not blocked by a seccomp profile or `kernel.io_uring_disabled`) the threads run
//! [`uring`]'s loop, which submits every receive and send of a turn in one `io_uring_enter`
//! instead of one `recv`/`send` call each plus `epoll_wait`; elsewhere they run the `mio` loop
//! in this file. Both share the framing, the buffers and the tracker: only how bytes get in and
//! out differs.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tokio::sync::mpsc;

use super::tracker::{self, ClockSource, Tracker};
use super::wire::{self, Header};
use super::{Lease, RelayIo};

#[cfg(target_os = "linux")]
mod uring;

const FRONTEND_BUFFER: usize = 16 * 1024;
const BACKEND_BUFFER: usize = 64 * 1024;
/// Reads one pump may do per turn before the other connections of its thread get theirs.
const READS_PER_TURN: u32 = 32;
/// Connections handed over but not yet picked up, per relay thread: handing over waits beyond.
const QUEUE: usize = 256;
const WAKER: Token = Token(usize::MAX);

/// An established connection, handed from the startup phase to a relay thread.
pub(crate) struct Job {
    pub id: u64,
    pub client: std::net::TcpStream,
    pub upstream: std::net::TcpStream,
    pub tracker: Tracker,
    /// The largest frontend message accepted.
    pub max_message: usize,
    /// Released when the connection ends.
    pub lease: Lease,
}

#[derive(Default)]
struct Flags {
    /// Cut every connection (the shutdown grace period is over).
    cut: AtomicBool,
    /// End the thread.
    exit: AtomicBool,
}

struct Thread {
    jobs: mpsc::Sender<Job>,
    waker: Wake,
}

/// How a relay thread is woken for a new job or a flag.
enum Wake {
    Mio(Arc<Waker>),
    #[cfg(target_os = "linux")]
    Event(Arc<uring::EventFd>),
}

impl Wake {
    fn wake(&self) -> io::Result<()> {
        match self {
            Wake::Mio(waker) => waker.wake(),
            #[cfg(target_os = "linux")]
            Wake::Event(fd) => fd.wake(),
        }
    }
}

/// The relay threads of one proxy.
pub(crate) struct Relays {
    threads: Vec<Thread>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
    flags: Arc<Flags>,
}

impl Relays {
    /// Start `count` relay threads (at least one) on the interface `io` asks for.
    pub fn start(count: usize, io: RelayIo) -> io::Result<Relays> {
        let uring = match io {
            RelayIo::Epoll => false,
            #[cfg(target_os = "linux")]
            RelayIo::Auto | RelayIo::IoUring => match uring::supported() {
                Ok(()) => true,
                Err(e) if io == RelayIo::Auto => {
                    tracing::info!(error = %e, "io_uring is not available; the relay uses epoll");
                    false
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("--relay-io io_uring: io_uring is not available: {e}"),
                    ))
                }
            },
            #[cfg(not(target_os = "linux"))]
            RelayIo::Auto => false,
            #[cfg(not(target_os = "linux"))]
            RelayIo::IoUring => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "--relay-io io_uring: io_uring exists only on Linux",
                ))
            }
        };
        let flags = Arc::new(Flags::default());
        let mut threads = Vec::new();
        let mut handles = Vec::new();
        for i in 0..count.max(1) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let flags = flags.clone();
            let name = format!("pgscope-conn-{i}");
            let (waker, handle) = if uring {
                #[cfg(target_os = "linux")]
                {
                    let (ring, event) = uring::prepare()?;
                    let event = Arc::new(event);
                    let wake = event.clone();
                    let handle = std::thread::Builder::new()
                        .name(name)
                        .spawn(move || uring::run(ring, &event, rx, &flags))?;
                    (Wake::Event(wake), handle)
                }
                #[cfg(not(target_os = "linux"))]
                unreachable!("io_uring is only chosen on Linux")
            } else {
                let poll = Poll::new()?;
                let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
                let handle = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || run(poll, rx, &flags))?;
                (Wake::Mio(waker), handle)
            };
            handles.push(handle);
            threads.push(Thread { jobs: tx, waker });
        }
        tracing::info!(
            threads = threads.len(),
            io = if uring { "io_uring" } else { "epoll" },
            "relay threads started"
        );
        Ok(Relays {
            threads,
            handles: Mutex::new(handles),
            next: AtomicUsize::new(0),
            flags,
        })
    }

    /// Give an established connection to the next relay thread.
    pub async fn hand_off(&self, job: Job) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let thread = &self.threads[i];
        // A refused job is dropped here: its sockets close and its lease is released.
        if thread.jobs.send(job).await.is_err() {
            tracing::warn!(thread = i, "relay thread is gone; closing the connection");
            return;
        }
        if let Err(e) = thread.waker.wake() {
            tracing::warn!(thread = i, error = %e, "cannot wake a relay thread");
        }
    }

    /// Close every open connection (and any handed over later).
    pub fn cut(&self) {
        self.flags.cut.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Close every connection and end the threads.
    pub fn shutdown(&self) {
        self.flags.exit.store(true, Ordering::Release);
        self.wake_all();
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }

    fn wake_all(&self) {
        for t in &self.threads {
            let _ = t.waker.wake();
        }
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One relay thread's loop.
fn run(mut poll: Poll, mut jobs: mpsc::Receiver<Job>, flags: &Flags) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Slots<Conn> = Slots::default();
    let mut clock = ClockSource::new();
    // Connections whose pump used up its turn with bytes still to move: no new event will
    // come for them, so they are driven again after the next (non-blocking) poll.
    let mut again: Vec<usize> = Vec::new();
    let mut turn: Vec<usize> = Vec::new();
    loop {
        let timeout = if again.is_empty() {
            None
        } else {
            Some(Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %e, "relay thread cannot poll; closing its connections");
            break;
        }
        let mut woken = false;
        for ev in events.iter() {
            let token = ev.token();
            if token == WAKER {
                woken = true;
                continue;
            }
            let slot = token.0 >> 1;
            let Some(conn) = conns.get(slot) else {
                continue;
            };
            let side = if token.0 & 1 == 0 {
                &mut conn.client
            } else {
                &mut conn.upstream
            };
            if ev.is_readable() {
                side.readable = true;
            }
            if ev.is_read_closed() || ev.is_error() {
                side.closed = true;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                side.writable = true;
            }
            drive(&mut conns, slot, &mut clock, &mut again, poll.registry());
        }
        std::mem::swap(&mut again, &mut turn);
        for slot in turn.drain(..) {
            if conns.get(slot).is_some() {
                drive(&mut conns, slot, &mut clock, &mut again, poll.registry());
            }
        }
        if woken {
            let cut = flags.cut.load(Ordering::Acquire);
            if cut {
                conns.close_all(poll.registry());
            }
            let mut gone = false;
            loop {
                match jobs.try_recv() {
                    Ok(job) if !cut => {
                        if let Some(slot) = conns.start(job, poll.registry()) {
                            drive(&mut conns, slot, &mut clock, &mut again, poll.registry());
                        }
                    }
                    Ok(job) => drop(job),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone || flags.exit.load(Ordering::Acquire) {
                break;
            }
        }
    }
    conns.close_all(poll.registry());
}

/// Move what can be moved on connection `slot`; close it if it ended.
fn drive(
    conns: &mut Slots<Conn>,
    slot: usize,
    clock: &mut ClockSource,
    again: &mut Vec<usize>,
    registry: &Registry,
) {
    let Some(conn) = conns.get(slot) else {
        return;
    };
    match conn.drive(clock) {
        Ok(false) => {}
        Ok(true) => again.push(slot),
        Err(end) => {
            if let Some(conn) = conns.remove(slot) {
                conn.finish(end, registry);
            }
        }
    }
}

/// Open connections by slot. Under mio a slot's tokens are `2 * slot` (client) and
/// `2 * slot + 1` (upstream); under io_uring the slot is in every operation's `user_data`.
struct Slots<C> {
    conns: Vec<Option<Box<C>>>,
    free: Vec<usize>,
}

impl<C> Default for Slots<C> {
    fn default() -> Self {
        Slots {
            conns: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<C> Slots<C> {
    fn get(&mut self, slot: usize) -> Option<&mut C> {
        self.conns.get_mut(slot).and_then(|c| c.as_deref_mut())
    }

    fn remove(&mut self, slot: usize) -> Option<Box<C>> {
        let conn = self.conns.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(conn)
    }

    /// A free slot, to be filled with [`Self::fill`] or given back with [`Self::release`].
    fn vacant(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        })
    }

    fn fill(&mut self, slot: usize, conn: C) {
        self.conns[slot] = Some(Box::new(conn));
    }

    fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    fn is_empty(&self) -> bool {
        self.free.len() == self.conns.len()
    }

    fn len(&self) -> usize {
        self.conns.len()
    }
}

impl Slots<Conn> {
    /// Register a handed-over connection; `None` if it could not be (it is then closed).
    fn start(&mut self, job: Job, registry: &Registry) -> Option<usize> {
        let slot = self.vacant();
        match Conn::register(job, slot, registry) {
            Ok(conn) => {
                self.fill(slot, conn);
                Some(slot)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot register a connection with its relay thread");
                self.release(slot);
                None
            }
        }
    }

    fn close_all(&mut self, registry: &Registry) {
        for slot in 0..self.len() {
            if let Some(conn) = self.remove(slot) {
                tracing::debug!(id = conn.id, "connection cut at shutdown");
                conn.finish(End::Eof, registry);
            }
        }
    }
}

/// How a pump stopped.
enum End {
    /// The peer closed its side.
    Eof,
    /// The client sent a frame that is not a PostgreSQL message.
    Malformed(Direction, &'static str),
    Io(Direction, io::Error),
}

/// Which way bytes flow: decides which frames the tracker sees.
#[derive(Clone, Copy, Debug)]
enum Direction {
    Frontend,
    Backend,
}

/// One socket of a connection, with what the kernel last said about it.
struct Side {
    sock: TcpStream,
    readable: bool,
    writable: bool,
    /// The peer closed (or the socket failed): reading goes on until it says so, even after a
    /// short read (the end may have come with the last data, in the same event).
    closed: bool,
}

struct Conn {
    id: u64,
    client: Side,
    upstream: Side,
    front: Pump,
    back: Pump,
    tracker: Tracker,
    max_message: usize,
    lease: Lease,
}

impl Conn {
    fn register(job: Job, slot: usize, registry: &Registry) -> io::Result<Conn> {
        let mut client = side(job.client)?;
        let mut upstream = side(job.upstream)?;
        let both = Interest::READABLE | Interest::WRITABLE;
        registry.register(&mut client.sock, Token(2 * slot), both)?;
        if let Err(e) = registry.register(&mut upstream.sock, Token(2 * slot + 1), both) {
            let _ = registry.deregister(&mut client.sock);
            return Err(e);
        }
        Ok(Conn {
            id: job.id,
            client,
            upstream,
            front: Pump::new(Direction::Frontend, FRONTEND_BUFFER),
            back: Pump::new(Direction::Backend, BACKEND_BUFFER),
            tracker: job.tracker,
            max_message: job.max_message,
            lease: job.lease,
        })
    }

    /// Move bytes both ways until nothing more can move without waiting. `Ok(true)` when a
    /// pump used up its turn and should be driven again soon.
    fn drive(&mut self, clock: &mut ClockSource) -> Result<bool, End> {
        let front = self.front.drive(
            &mut self.client,
            &mut self.upstream,
            &mut self.tracker,
            clock,
            self.max_message,
        )?;
        let back = self.back.drive(
            &mut self.upstream,
            &mut self.client,
            &mut self.tracker,
            clock,
            usize::MAX,
        )?;
        Ok(front || back)
    }

    /// Close both sockets and tell the tracker; `end` says why.
    fn finish(mut self, end: End, registry: &Registry) {
        report_end(
            self.id,
            end,
            &self.lease,
            self.back.at_boundary(),
            &mut self.client.sock,
        );
        let _ = registry.deregister(&mut self.client.sock);
        let _ = registry.deregister(&mut self.upstream.sock);
        let _ = self.client.sock.shutdown(Shutdown::Write);
        let _ = self.upstream.sock.shutdown(Shutdown::Write);
        close_tracker(self.id, &mut self.tracker);
    }
}

/// Log why connection `id` ends and count it; a malformed client gets SQLSTATE 08P01 on
/// `client` if the server's messages to it stopped between two (`at_boundary`).
fn report_end(id: u64, end: End, lease: &Lease, at_boundary: bool, client: &mut impl Write) {
    match end {
        End::Malformed(Direction::Frontend, why) => {
            lease.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                id,
                reason = why,
                "malformed client message; closing the connection"
            );
            // Only speak to the client between two server messages, or it would read the
            // error as part of a half-sent one. The error is small: a socket that cannot
            // take it now has a client that is not reading anyway.
            if at_boundary {
                let mut err = BytesMut::new();
                wire::put_error(
                    &mut err,
                    "FATAL",
                    "08P01",
                    &format!("invalid frontend message: {why}"),
                );
                let _ = client.write(&err);
            }
        }
        End::Malformed(Direction::Backend, why) => {
            tracing::warn!(
                id,
                reason = why,
                "malformed message from the server; closing"
            );
        }
        End::Io(dir, e) => {
            let side = match dir {
                Direction::Frontend => "client",
                Direction::Backend => "server",
            };
            tracing::debug!(id, side, error = %e, "connection error");
        }
        End::Eof => {}
    }
}

/// Tell the tracker its connection is gone.
fn close_tracker(id: u64, tracker: &mut Tracker) {
    if tracker.desyncs() > 0 {
        tracing::debug!(
            id,
            desyncs = tracker.desyncs(),
            "tracker lost pairing on this connection"
        );
    }
    tracker.close();
}

fn side(sock: std::net::TcpStream) -> io::Result<Side> {
    sock.set_nonblocking(true)?;
    Ok(Side {
        sock: TcpStream::from_std(sock),
        // Until the kernel says otherwise: costs one read that finds nothing.
        readable: true,
        writable: true,
        closed: false,
    })
}

/// One direction's buffer and where it is in the byte stream.
///
/// `buf[start..end]` holds bytes read and not yet forwarded; the first `ready` of them are
/// walked and wait only for the destination to take them.
struct Pump {
    dir: Direction,
    buf: Vec<u8>,
    chunk: usize,
    start: usize,
    end: usize,
    ready: usize,
    walk: Walk,
    malformed: Option<&'static str>,
    /// The size of the frame at `start` that the tracker waits to see whole (0: none).
    need: usize,
}

impl Pump {
    fn new(dir: Direction, chunk: usize) -> Pump {
        Pump {
            dir,
            buf: vec![0; chunk],
            chunk,
            start: 0,
            end: 0,
            ready: 0,
            walk: Walk::default(),
            malformed: None,
            need: 0,
        }
    }

    /// Has everything forwarded so far ended between two frames?
    fn at_boundary(&self) -> bool {
        self.ready == 0 && self.walk.streaming == 0
    }

    /// Forward from `src` to `dst` until one of them would block, the turn is used up
    /// (`Ok(true)`), or the stream ends.
    fn drive(
        &mut self,
        src: &mut Side,
        dst: &mut Side,
        tracker: &mut Tracker,
        clock: &mut ClockSource,
        max_frame: usize,
    ) -> Result<bool, End> {
        let mut reads = 0;
        loop {
            while self.ready > 0 {
                if !dst.writable {
                    return Ok(false);
                }
                match dst.sock.write(self.unsent()) {
                    Ok(0) => return Err(End::Io(self.dir, io::ErrorKind::WriteZero.into())),
                    Ok(n) => self.sent(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.writable = false;
                        return Ok(false);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(End::Io(self.dir, e)),
                }
            }
            if let Some(why) = self.malformed {
                return Err(End::Malformed(self.dir, why));
            }
            if !src.readable && !src.closed {
                return Ok(false);
            }
            if reads == READS_PER_TURN {
                return Ok(true);
            }
            reads += 1;
            self.make_room();
            match src.sock.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => {
                    // A short read emptied the socket: the kernel will say when more comes.
                    if n < self.buf.len() - self.end {
                        src.readable = false;
                    }
                    self.received(n, tracker, clock, max_frame);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    src.readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Io(self.dir, e)),
            }
        }
    }

    /// `n` more bytes were read into `buf[end..]`: walk them.
    fn received(
        &mut self,
        n: usize,
        tracker: &mut Tracker,
        clock: &mut ClockSource,
        max_frame: usize,
    ) {
        self.end += n;
        let now = clock.now();
        let walked = self.walk.walk(
            self.dir,
            &self.buf[self.start..self.end],
            tracker,
            now,
            max_frame,
        );
        self.ready = walked.ready;
        self.malformed = walked.malformed;
        self.need = walked.need;
    }

    /// The walked bytes the destination has not taken yet.
    fn unsent(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.ready]
    }

    /// The destination took `n` of [`Self::unsent`].
    fn sent(&mut self, n: usize) {
        self.start += n;
        self.ready -= n;
    }

    /// Before a read (everything walked has been forwarded): leave room at the end, and room
    /// towards the whole of a frame the tracker waits for. The buffer grows towards that
    /// frame's size at most twofold per read, as its bytes come, not to the size its header
    /// announces: a header alone (5 bytes saying 1 GiB, from a client that need not have
    /// logged in) must not make the proxy allocate and zero the whole of it.
    fn make_room(&mut self) {
        if self.need > self.buf.len() - self.start {
            self.compact();
            if self.buf.len() < self.need {
                let grown = (self.buf.len() * 2).max(self.end + self.chunk);
                self.buf.resize(grown.min(self.need), 0);
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A frame that needed a large buffer once does not keep it.
            if self.buf.len() > 4 * self.chunk {
                self.buf.truncate(self.chunk);
                self.buf.shrink_to_fit();
            }
        }
        if self.buf.len() - self.end < self.chunk / 4 {
            self.compact();
            if self.buf.len() - self.end < self.chunk / 4 {
                self.buf.resize(self.buf.len() + self.chunk, 0);
            }
        }
    }

    /// Move the unforwarded bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// What one walk over a buffer found.
struct Walked {
    /// Bytes at the start that may be forwarded now.
    ready: usize,
    /// Why the stream is broken after them, if it is.
    malformed: Option<&'static str>,
    /// The whole size of the frame the tracker waits for, if one starts right after them.
    need: usize,
}

/// Where a pump is in the byte stream between reads.
#[derive(Default)]
struct Walk {
    /// Bytes of the current frame still to forward without looking at them.
    streaming: usize,
}

impl Walk {
    /// Walk the frames at the start of `buf`, showing the tracker those it pairs on.
    fn walk(
        &mut self,
        dir: Direction,
        buf: &[u8],
        tracker: &mut Tracker,
        now: tracker::Clock,
        max_frame: usize,
    ) -> Walked {
        let mut pos = 0;
        let len = buf.len();
        while pos < len {
            if self.streaming > 0 {
                let take = self.streaming.min(len - pos);
                self.streaming -= take;
                pos += take;
                continue;
            }
            let Some(h) = Header::peek(&buf[pos..]) else {
                break;
            };
            if h.len < 4 {
                return Walked {
                    ready: pos,
                    malformed: Some("invalid message length"),
                    need: 0,
                };
            }
            if h.frame_len() > max_frame {
                return Walked {
                    ready: pos,
                    malformed: Some("message too large"),
                    need: 0,
                };
            }
            let (tracked, needs_body) = match dir {
                Direction::Frontend => (
                    tracker::frontend_tracked(h.tag),
                    tracker::frontend_needs_body(h.tag),
                ),
                Direction::Backend => (
                    tracker::backend_tracked(h.tag),
                    tracker::backend_needs_body(h.tag),
                ),
            };
            if needs_body {
                let frame = h.frame_len();
                if len - pos < frame {
                    return Walked {
                        ready: pos,
                        malformed: None,
                        need: frame,
                    };
                }
                let body = &buf[pos + 5..pos + frame];
                match dir {
                    Direction::Frontend => tracker.frontend(h.tag, body, now),
                    Direction::Backend => tracker.backend(h.tag, body, now),
                }
                pos += frame;
            } else {
                if tracked {
                    match dir {
                        Direction::Frontend => tracker.frontend(h.tag, &[], now),
                        Direction::Backend => tracker.backend(h.tag, &[], now),
                    }
                }
                pos += 5;
                self.streaming = h.body_len();
            }
        }
        Walked {
            ready: pos,
            malformed: None,
            need: 0,
        }
    }
}
