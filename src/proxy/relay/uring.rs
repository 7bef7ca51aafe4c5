//! The relay loop on io_uring.
//!
//! The same pumps as the epoll loop (one persistent buffer per direction, frames walked and
//! shown to the tracker before they are forwarded, no read before the last chunk is fully
//! written), with the system calls batched: every `recv` and `send` of a loop turn is queued
//! in the submission ring and handed to the kernel, together with the wait for the next
//! completions, in one `io_uring_enter`. The epoll loop makes one `recv` or `send` call per
//! operation plus an `epoll_wait` per turn; at pgbench's rates on two cores those calls were
//! most of the relay thread's time (`bench/io_uring_probe`).
//!
//! Each direction has at most one operation chain in flight: a `recv` into the free end of its
//! buffer, or a `send` of the walked bytes, sent with `MSG_WAITALL` (the kernel finishes it,
//! waiting for room as a blocking send would) and, when the buffer needs no moving before the
//! next read, linked to that `recv` so that it is armed in the same kernel pass. A buffer is
//! only compacted or resized while its direction has nothing in flight, so every pointer handed
//! to the kernel stays valid until its completion arrives.
//!
//! A linked send is also marked `IOSQE_CQE_SKIP_SUCCESS`: a send that takes all its bytes
//! (nearly every one: loopback sockets have room) posts no completion, and the recv's
//! completion says that both are done. Otherwise a send that completed at once satisfied the
//! very `io_uring_enter` that submitted it, and the thread went round once more only to note
//! it: two system calls per message instead of one, and at that return the thread was often
//! preempted by the backend its send had just woken, to be scheduled again for that nothing.
//! A send that fails (or comes short) does post its completion, and the kernel then skips the
//! cancelled recv's, so a chain always ends in exactly one completion. (Kernels since 5.17 can
//! skip completions; [`supported`] checks, and the relay runs on epoll where they cannot.)
//!
//! A connection that ends shuts its sockets for reading (so that a recv still to start returns
//! at once), cancels what it still has in flight, and is closed when the last of its
//! completions arrives; only then are its buffers freed.
//!
//! The ring is set up `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1): completions are processed
//! in this thread when it asks for them, not in interrupts of whatever runs when data arrives.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};
use tokio::sync::mpsc;

use super::{
    close_tracker, report_end, Direction, End, Flags, Job, Pump, Slots, BACKEND_BUFFER,
    FRONTEND_BUFFER,
};
use crate::proxy::tracker::{ClockSource, Tracker};
use crate::proxy::Lease;

/// Submission ring entries. A loop turn queues at most 3 entries per completion it handles
/// (a send, its linked recv, or two cancels) and 2 per new connection; with the caps below
/// the ring cannot fill within a turn, and every turn submits all it queued.
const SQ_ENTRIES: u32 = 4096;
/// Completion ring entries: a connection has at most 6 operations in flight (per direction a
/// send and its linked recv, and two cancels once it ends), so this holds the completions of
/// 2730 connections at once. Beyond that the kernel keeps the rest aside until there is room
/// (`IORING_FEAT_NODROP`); nothing is lost.
const CQ_ENTRIES: u32 = 16384;
/// Completions handled per turn (see `SQ_ENTRIES`).
const COMPLETIONS_PER_TURN: usize = 1024;
/// New connections taken per turn (see `SQ_ENTRIES`).
const JOBS_PER_TURN: usize = 256;
/// At shutdown, how long cancelled operations may take to complete before the thread gives up
/// on them (leaking their buffers rather than freeing memory the kernel may still write).
const EXIT_WAIT: Duration = Duration::from_secs(5);

// `user_data` of an operation: `slot << 3 | OP`. A direction's send is its recv's OP + 1:
// 1 sends to the server, 3 to the client.
const FRONT_RECV: u64 = 0; // from the client
const BACK_RECV: u64 = 2; // from the server
const CANCEL: u64 = 4;
const WAKE: u64 = u64::MAX;

fn builder() -> io_uring::Builder {
    let mut builder = IoUring::builder();
    builder
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .setup_cqsize(CQ_ENTRIES);
    builder
}

/// Can this process use io_uring as the relay does? Fails on kernels before 6.1, where a
/// seccomp profile blocks it (Docker's default), or with `kernel.io_uring_disabled`.
pub(super) fn supported() -> io::Result<()> {
    let ring = builder().build(8)?;
    if !ring.params().is_feature_skip_cqe_on_success() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring cannot skip the completions of successful sends",
        ));
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [
        (opcode::Recv::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::AsyncCancel2::CODE, "cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring has no {name} operation"),
            ));
        }
    }
    Ok(())
}

/// A ring for one relay thread (enabled by that thread, which becomes its only submitter) and
/// the eventfd that wakes it.
pub(super) fn prepare() -> io::Result<(IoUring, EventFd)> {
    let ring = builder().setup_r_disabled().build(SQ_ENTRIES)?;
    Ok((ring, EventFd::new()?))
}

/// A counter another thread bumps to wake a relay thread.
pub(crate) struct EventFd(File);

impl EventFd {
    fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor that
        // nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: see above.
        Ok(EventFd(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match (&self.0).write(&1u64.to_ne_bytes()) {
            // The counter is full: the thread has a wakeup pending anyway.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other.map(drop),
        }
    }

    fn reset(&self) {
        let mut count = [0u8; 8];
        let _ = (&self.0).read(&mut count);
    }
}

/// One relay thread's loop.
pub(super) fn run(ring: IoUring, event: &EventFd, mut jobs: mpsc::Receiver<Job>, flags: &Flags) {
    if let Err(e) = ring.submitter().register_enable_rings() {
        tracing::error!(error = %e, "relay thread cannot enable its io_uring; it takes no connections");
        return;
    }
    let mut lp = Loop {
        ring: Ring(ring),
        conns: Slots::default(),
        clock: ClockSource::new(),
    };
    lp.ring.arm_wake(event);
    let mut done: Vec<(u64, i32)> = Vec::with_capacity(COMPLETIONS_PER_TURN);
    let mut exiting: Option<Instant> = None;
    let mut cut = false;
    loop {
        if let Some(since) = exiting {
            if lp.conns.is_empty() {
                break;
            }
            if since.elapsed() > EXIT_WAIT {
                tracing::error!(
                    "cancelled relay operations did not complete; leaving their buffers behind"
                );
                std::mem::forget(lp.conns);
                return;
            }
        }
        let wait = if exiting.is_some() {
            // Completions of cancelled operations come promptly; the timeout bounds the wait.
            lp.ring.submit_and_wait_for(Duration::from_millis(100))
        } else {
            lp.ring.0.submit_and_wait(1).map(drop)
        };
        match wait {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::EINTR)
                    || e.raw_os_error() == Some(libc::ETIME)
                    || e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => {
                tracing::error!(error = %e, "relay thread cannot wait on its io_uring");
                std::mem::forget(lp.conns);
                return;
            }
        }
        done.extend(
            lp.ring
                .0
                .completion()
                .take(COMPLETIONS_PER_TURN)
                .map(|c| (c.user_data(), c.result())),
        );
        let mut woken = false;
        for (user_data, result) in done.drain(..) {
            match user_data {
                WAKE => woken = true,
                _ if user_data & 7 == CANCEL => {}
                _ => lp.complete((user_data >> 3) as usize, user_data & 7, result),
            }
        }
        if woken {
            event.reset();
            if flags.cut.load(Ordering::Acquire) && !cut {
                cut = true;
                lp.end_all();
            }
            let mut gone = false;
            for _ in 0..JOBS_PER_TURN {
                match jobs.try_recv() {
                    Ok(job) if !cut && exiting.is_none() => lp.start(job),
                    Ok(job) => drop(job),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            if (gone || flags.exit.load(Ordering::Acquire)) && exiting.is_none() {
                exiting = Some(Instant::now());
                lp.end_all();
            }
            if !jobs.is_empty() {
                // More than a turn's worth of connections wait: come back for them next turn.
                let _ = event.wake();
            }
            lp.ring.arm_wake(event);
        }
    }
}

/// The ring, and the one place entries are queued.
struct Ring(IoUring);

impl Ring {
    /// Queue `entries`, one after the other with nothing between them (a linked chain must
    /// be whole), or none of them: `false` (logged) if the submission ring has no room for
    /// them even after handing what it holds to the kernel, which the per-turn caps rule out.
    ///
    /// # Safety
    /// Every buffer an entry points to must stay valid, and must not be moved, read (for a
    /// `recv`) or written (for a `send`) by anyone else, until its completion arrives.
    unsafe fn push_all(&mut self, entries: &[squeue::Entry]) -> bool {
        for _ in 0..2 {
            // SAFETY: the caller's promise.
            if unsafe { self.0.submission().push_multiple(entries) }.is_ok() {
                return true;
            }
            if let Err(e) = self.0.submit() {
                tracing::error!(error = %e, "relay thread cannot submit to its io_uring");
                break;
            }
        }
        tracing::error!("relay io_uring submission queue full; an operation was dropped");
        false
    }

    fn arm_wake(&mut self, event: &EventFd) {
        let poll = opcode::PollAdd::new(types::Fd(event.0.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(WAKE);
        // SAFETY: a poll has no buffer; the eventfd lives as long as the thread.
        unsafe { self.push_all(&[poll]) };
    }

    /// Cancel every operation on `fd`; their completions say `ECANCELED`.
    fn cancel(&mut self, fd: i32, slot: usize) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .user_data(op(slot, CANCEL));
        // SAFETY: a cancel has no buffer.
        unsafe { self.push_all(&[cancel]) };
    }

    /// Submit what is queued and wait at most `timeout` for one completion.
    fn submit_and_wait_for(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        self.0.submitter().submit_with_args(1, &args).map(drop)
    }
}

fn op(slot: usize, op: u64) -> u64 {
    ((slot as u64) << 3) | op
}

/// An established connection on this thread.
struct Conn {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
    /// Client to server.
    front: Pump,
    /// Server to client.
    back: Pump,
    /// The length of the send in flight in that direction if the next recv is linked behind
    /// it (a quiet send: it posts a completion only if it fails).
    front_quiet: Option<usize>,
    back_quiet: Option<usize>,
    tracker: Tracker,
    max_message: usize,
    lease: Lease,
    /// Operations submitted whose completion has not arrived.
    inflight: u32,
    /// Why the connection ends, once it does: then it only waits for `inflight` to drain.
    ending: Option<End>,
}

impl Conn {
    fn finish(mut self) {
        let end = self.ending.take().unwrap_or(End::Eof);
        // Nothing is in flight any more; the 08P01 error (if any) must not block.
        let _ = self.client.set_nonblocking(true);
        report_end(
            self.id,
            end,
            &self.lease,
            self.back.at_boundary(),
            &mut self.client,
        );
        let _ = self.client.shutdown(Shutdown::Write);
        let _ = self.upstream.shutdown(Shutdown::Write);
        close_tracker(self.id, &mut self.tracker);
    }
}

struct Loop {
    ring: Ring,
    conns: Slots<Conn>,
    clock: ClockSource,
}

/// One direction of a connection, as the loop drives it.
struct Way<'a> {
    pump: &'a mut Pump,
    quiet: &'a mut Option<usize>,
    /// The connection's operations in flight.
    inflight: &'a mut u32,
    src: i32,
    dst: i32,
    /// The op of its recv (`FRONT_RECV` or `BACK_RECV`); its send's is the next one.
    recv: u64,
    max_frame: usize,
}

impl Way<'_> {
    fn send(&self) -> u64 {
        self.recv + 1
    }
}

impl Loop {
    fn start(&mut self, job: Job) {
        // Blocking sockets: io_uring then waits for readiness itself (a non-blocking one may
        // hand EAGAIN back instead, depending on the kernel).
        if let Err(e) = job
            .client
            .set_nonblocking(false)
            .and_then(|()| job.upstream.set_nonblocking(false))
        {
            tracing::warn!(error = %e, "cannot hand a connection to its relay thread");
            return;
        }
        let slot = self.conns.vacant();
        self.conns.fill(
            slot,
            Conn {
                id: job.id,
                client: job.client,
                upstream: job.upstream,
                front: Pump::new(Direction::Frontend, FRONTEND_BUFFER),
                back: Pump::new(Direction::Backend, BACKEND_BUFFER),
                front_quiet: None,
                back_quiet: None,
                tracker: job.tracker,
                max_message: job.max_message,
                lease: job.lease,
                inflight: 0,
                ending: None,
            },
        );
        for recv in [FRONT_RECV, BACK_RECV] {
            self.advance(slot, recv);
        }
    }

    /// End every connection (shutdown).
    fn end_all(&mut self) {
        for slot in 0..self.conns.len() {
            if let Some(id) = self
                .conns
                .get(slot)
                .filter(|c| c.ending.is_none())
                .map(|c| c.id)
            {
                tracing::debug!(id, "connection cut at shutdown");
                self.end(slot, End::Eof);
            }
        }
    }

    /// The completion of operation `kind` on connection `slot`.
    fn complete(&mut self, slot: usize, kind: u64, result: i32) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let ending = conn.ending.is_some();
        let (mut way, tracker) = way(conn, kind);
        // One completion ends a quiet chain: the recv's, or (when the send failed or came
        // short, and the recv was cancelled without a completion) the send's.
        *way.inflight -= 1;
        if let Some(len) = way.quiet.take() {
            if kind == way.recv {
                // The send posted nothing, so it sent all its bytes.
                way.pump.sent(len);
            }
        }
        let outcome = if ending {
            // Only the bytes a cancelled send still delivered are counted (they decide
            // whether the client may be sent an error at a message boundary).
            if kind == way.send() && result > 0 {
                way.pump.sent(result as usize);
            }
            Ok(false)
        } else if kind == way.recv {
            received(&mut way, tracker, &mut self.clock, result)
        } else {
            sent(&mut way, result)
        };
        match outcome {
            Ok(true) => self.advance(slot, kind),
            Ok(false) => {}
            Err(end) => return self.end(slot, end),
        }
        self.finish_if_idle(slot);
    }

    /// Close connection `slot` if nothing of it is in flight any more (it ended, or its next
    /// operation could not be queued).
    fn finish_if_idle(&mut self, slot: usize) {
        if self.conns.get(slot).is_some_and(|c| c.inflight == 0) {
            if let Some(conn) = self.conns.remove(slot) {
                conn.finish();
            }
        }
    }

    /// Queue the next operation of the direction `kind` belongs to (nothing of it is in
    /// flight).
    fn advance(&mut self, slot: usize, kind: u64) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let (mut way, _) = way(conn, kind);
        match next(&mut way, op(slot, 0), &mut self.ring) {
            Ok(completions) => *way.inflight += completions,
            Err(end) => self.end(slot, end),
        }
    }

    /// Connection `slot` ends: cancel what it has in flight, and close it when nothing is.
    fn end(&mut self, slot: usize, end: End) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        conn.ending = Some(end);
        if conn.inflight > 0 {
            // A cancel finds only the operations the kernel has started. A recv linked behind
            // a send starts when the send completes, and that can be after the cancel has run
            // (seen when a client left while the server's answer to it was being sent): the
            // recv would then wait on a silent server or client forever, and the connection,
            // with its backend, would never close. Shut both sockets for
            // reading first: a recv then returns at once, whenever it starts. (Writing stays
            // open, for the error `report_end` may still send.)
            let _ = conn.client.shutdown(Shutdown::Read);
            let _ = conn.upstream.shutdown(Shutdown::Read);
            let (client, upstream) = (conn.client.as_raw_fd(), conn.upstream.as_raw_fd());
            self.ring.cancel(client, slot);
            self.ring.cancel(upstream, slot);
        }
        self.finish_if_idle(slot);
    }
}

/// The direction operation `kind` of `conn` belongs to, and the connection's tracker.
fn way(conn: &mut Conn, kind: u64) -> (Way<'_>, &mut Tracker) {
    let (client, upstream) = (conn.client.as_raw_fd(), conn.upstream.as_raw_fd());
    let (pump, quiet, src, dst, recv, max_frame) = if kind < BACK_RECV {
        (
            &mut conn.front,
            &mut conn.front_quiet,
            client,
            upstream,
            FRONT_RECV,
            conn.max_message,
        )
    } else {
        (
            &mut conn.back,
            &mut conn.back_quiet,
            upstream,
            client,
            BACK_RECV,
            usize::MAX,
        )
    };
    let way = Way {
        pump,
        quiet,
        inflight: &mut conn.inflight,
        src,
        dst,
        recv,
        max_frame,
    };
    (way, &mut conn.tracker)
}

/// A recv completed: `Ok(true)` if the direction should go on.
fn received(
    way: &mut Way<'_>,
    tracker: &mut Tracker,
    clock: &mut ClockSource,
    result: i32,
) -> Result<bool, End> {
    let dir = way.pump.dir;
    match result {
        0 => Err(End::Eof),
        n if n > 0 => {
            way.pump.received(n as usize, tracker, clock, way.max_frame);
            Ok(true)
        }
        n if -n == libc::EINTR => Ok(true),
        n => Err(End::Io(dir, io::Error::from_raw_os_error(-n))),
    }
}

/// A send completed: `Ok(true)` (the direction goes on) unless it failed. (A quiet send, with
/// the next recv linked, completes only when it fails or comes short.)
fn sent(way: &mut Way<'_>, result: i32) -> Result<bool, End> {
    let dir = way.pump.dir;
    if result < 0 {
        return Err(End::Io(dir, io::Error::from_raw_os_error(-result)));
    }
    way.pump.sent(result as usize);
    if way.pump.ready > 0 {
        // `MSG_WAITALL` returns short only when the socket failed (the linked recv, if any,
        // is cancelled).
        return Err(End::Io(
            dir,
            io::Error::new(io::ErrorKind::WriteZero, "short send"),
        ));
    }
    Ok(true)
}

/// Queue what moves direction `way` on: its send, with the next recv linked when the buffer
/// allows, or its recv; `base` is the slot's `user_data`. Returns how many completions the
/// queued operations will post.
fn next(way: &mut Way<'_>, base: u64, ring: &mut Ring) -> Result<u32, End> {
    let send_op = way.send();
    let pump = &mut *way.pump;
    if pump.ready > 0 {
        let unsent = pump.unsent();
        let len = unsent.len();
        let send = opcode::Send::new(types::Fd(way.dst), unsent.as_ptr(), len as u32)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(base | send_op);
        if pump.malformed.is_none() && room_stays(pump) {
            let pair = [
                send.clone()
                    .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS),
                recv_entry(pump, way.src, base | way.recv),
            ];
            // SAFETY: as below.
            if unsafe { ring.push_all(&pair) } {
                *way.quiet = Some(len);
                return Ok(1);
            }
        }
        // SAFETY: as below.
        return Ok(u32::from(unsafe { ring.push_all(&[send]) }));
    }
    if let Some(why) = pump.malformed {
        return Err(End::Malformed(pump.dir, why));
    }
    pump.make_room();
    let recv = recv_entry(pump, way.src, base | way.recv);
    // SAFETY (here and above): the entries point into this direction's buffer, which is boxed
    // with the connection, and is neither moved (`make_room` runs only with nothing in flight)
    // nor touched by this thread until their completions arrive; a connection is freed only
    // when nothing of it is in flight.
    Ok(u32::from(unsafe { ring.push_all(&[recv]) }))
}

fn recv_entry(pump: &mut Pump, fd: i32, user_data: u64) -> squeue::Entry {
    let room = &mut pump.buf[pump.end..];
    let len = room.len().min(u32::MAX as usize) as u32;
    opcode::Recv::new(types::Fd(fd), room.as_mut_ptr(), len)
        .build()
        .user_data(user_data)
}

/// Can the next recv go to `buf[end..]` while the walked bytes are still being sent, the
/// buffer staying where it is? That is when `make_room` would find, after the send, enough
/// room at the end and room for the frame the tracker waits for without compacting.
fn room_stays(pump: &Pump) -> bool {
    let after_send = pump.start + pump.ready;
    pump.end <= LINK_WINDOW
        && pump.need <= pump.buf.len() - after_send
        && pump.buf.len() - pump.end >= pump.chunk / 4
}

/// A linked recv lands after the bytes being sent, so the data moves up the buffer round
/// trip by round trip; past this offset the next recv waits for the send instead and starts
/// again at the front. It keeps the part of each buffer that traffic touches small (32
/// connections' whole 80 KiB pairs of buffers would not stay in cache).
const LINK_WINDOW: usize = 4096;
