//! The two byte pumps of an established connection.
//!
//! Each direction owns one persistent buffer. A pump reads whatever the socket has, walks every
//! complete frame header in it, shows the tracker the frames it pairs on, and writes all the
//! walked bytes to the other side in one write. Frames the tracker does not read (DataRow,
//! CopyData, …) stream through as they arrive: only their 5-byte header is looked at, so a
//! 100 MB row never sits whole in memory. Only the frames the tracker reads wait until they are
//! complete. Nothing is decoded and re-encoded; nothing is allocated per message.
//!
//! Both pumps run in the connection's one task and share the tracker through a `Mutex` that is
//! never contended (the two pumps are futures of one task, so they never run at once) and is
//! taken and released inside the synchronous walk, never held across an `.await`.
//! Each pump writes a chunk fully before reading the next, so a slow reader on one side slows
//! the other (TCP back-pressure) instead of filling a queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tracker::{self, Clock, Tracker};
use super::wire::{self, Header};
use super::ProxyStats;

const FRONTEND_BUFFER: usize = 16 * 1024;
const BACKEND_BUFFER: usize = 64 * 1024;

/// How a pump stopped.
enum End {
    /// The peer closed its side.
    Eof,
    /// The client sent a frame that is not a PostgreSQL message.
    Malformed(&'static str),
    Io(std::io::Error),
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> Self {
        End::Io(e)
    }
}

/// Which way bytes flow: decides which frames the tracker sees.
#[derive(Clone, Copy)]
enum Direction {
    Frontend,
    Backend,
}

/// Where a pump is in the byte stream between reads.
#[derive(Default)]
struct Walk {
    /// Bytes of the current frame still to forward without looking at them.
    streaming: usize,
}

impl Walk {
    /// Walk the frames at the start of `buf`. Returns how many bytes may be forwarded now (the
    /// rest is an incomplete header or an incomplete frame the tracker has to read whole), and
    /// why the stream is broken if a malformed frame follows them.
    fn walk(
        &mut self,
        dir: Direction,
        buf: &mut BytesMut,
        tracker: &mut Tracker,
        now: Clock,
        max_frame: usize,
    ) -> (usize, Option<&'static str>) {
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
                return (pos, Some("invalid message length"));
            }
            if h.frame_len() > max_frame {
                return (pos, Some("message too large"));
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
                    // Make room for the whole frame so the next read can complete it.
                    buf.reserve(frame - (len - pos));
                    break;
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
        (pos, None)
    }

    /// Between two frames (nothing of a frame forwarded but not finished)?
    fn at_boundary(&self) -> bool {
        self.streaming == 0
    }
}

/// One direction: read from `from`, show the tracker, write to `to`, until EOF or an error.
async fn pump(
    dir: Direction,
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    tracker: &Mutex<Tracker>,
    max_frame: usize,
    // Where to say whether everything written so far ends between two frames (the backend
    // pump's, read before an error is injected towards the client).
    boundary: Option<&AtomicBool>,
) -> End {
    let chunk = match dir {
        Direction::Frontend => FRONTEND_BUFFER,
        Direction::Backend => BACKEND_BUFFER,
    };
    let mut buf = BytesMut::with_capacity(chunk);
    let mut walk = Walk::default();
    loop {
        if buf.capacity() - buf.len() < chunk / 4 {
            buf.reserve(chunk);
        }
        match from.read_buf(&mut buf).await {
            Ok(0) => return End::Eof,
            Ok(_) => {}
            Err(e) => return End::Io(e),
        }
        let now = Clock::now();
        let (ready, malformed) = {
            let mut tracker = tracker.lock().unwrap_or_else(|p| p.into_inner());
            walk.walk(dir, &mut buf, &mut tracker, now, max_frame)
        };
        if ready > 0 {
            // Until the write completes, the peer may hold half a frame.
            if let Some(b) = boundary {
                b.store(false, Ordering::Relaxed);
            }
            if let Err(e) = to.write_all(&buf[..ready]).await {
                return End::Io(e);
            }
            buf.advance(ready);
        }
        if let Some(b) = boundary {
            b.store(walk.at_boundary(), Ordering::Relaxed);
        }
        if let Some(why) = malformed {
            return End::Malformed(why);
        }
    }
}

/// Relay between `client` and `upstream` until either side closes.
pub(crate) async fn run(
    id: u64,
    mut client: TcpStream,
    mut upstream: TcpStream,
    tracker: Tracker,
    max_message: usize,
    stats: &ProxyStats,
) {
    let tracker = Mutex::new(tracker);
    let backend_at_boundary = AtomicBool::new(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let end = {
        let frontend = pump(
            Direction::Frontend,
            &mut client_read,
            &mut upstream_write,
            &tracker,
            max_message,
            None,
        );
        let backend = pump(
            Direction::Backend,
            &mut upstream_read,
            &mut client_write,
            &tracker,
            usize::MAX,
            Some(&backend_at_boundary),
        );
        tokio::select! {
            end = frontend => (Direction::Frontend, end),
            end = backend => (Direction::Backend, end),
        }
    };
    match end {
        (Direction::Frontend, End::Malformed(why)) => {
            stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                id,
                reason = why,
                "malformed client message; closing the connection"
            );
            // Only speak to the client between two server messages, or it would read the
            // error as part of a half-sent one.
            if backend_at_boundary.load(Ordering::Relaxed) {
                let mut err = BytesMut::new();
                wire::put_error(
                    &mut err,
                    "FATAL",
                    "08P01",
                    &format!("invalid frontend message: {why}"),
                );
                let _ = client_write.write_all(&err).await;
            }
        }
        (Direction::Backend, End::Malformed(why)) => {
            tracing::warn!(
                id,
                reason = why,
                "malformed message from the server; closing"
            );
        }
        (dir, End::Io(e)) => {
            let side = match dir {
                Direction::Frontend => "client",
                Direction::Backend => "server",
            };
            tracing::debug!(id, side, error = %e, "connection error");
        }
        (_, End::Eof) => {}
    }
    let _ = client_write.shutdown().await;
    let _ = upstream_write.shutdown().await;
    let mut tracker = tracker.into_inner().unwrap_or_else(|p| p.into_inner());
    if tracker.desyncs() > 0 {
        tracing::debug!(
            id,
            desyncs = tracker.desyncs(),
            "tracker lost pairing on this connection"
        );
    }
    tracker.close();
}
