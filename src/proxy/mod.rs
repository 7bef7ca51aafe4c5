//! The relay: accepts PostgreSQL clients, connects each to the upstream server, and forwards
//! bytes both ways unchanged while a tracker pairs each request with its completion.
//!
//! This module owns sockets and the wire protocol. It knows nothing of fingerprints or
//! statistics: completed statements leave it as [`Execution`]s through an [`ExecutionSink`],
//! one per connection, created by the [`SinkFactory`] the caller plugs in.
//!
//! - [`startup`]: the untagged first packets (SSLRequest, GSSENCRequest, CancelRequest,
//!   StartupMessage) and connecting to the upstream.
//! - [`relay`]: the relay threads, which pump the bytes of established connections.
//! - [`tracker`]: pairs frontend requests with backend completions.
//! - [`wire`]: frame headers and the few message bodies the tracker reads.

mod execution;
mod relay;
mod startup;
pub mod tracker;
pub mod wire;

pub use execution::{
    CommandTag, Execution, ExecutionSink, NullSink, Protocol, SinkFactory, SqlState, SqlText,
};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use relay::Relays;

/// What the relay needs to know; built from [`crate::config::Config`].
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `host:port` of the real server.
    pub upstream: String,
    /// Clients beyond this many at once get SQLSTATE 53300.
    pub max_client_connections: usize,
    /// How long a connection attempt to the upstream may take.
    pub connect_timeout: Duration,
    /// On shutdown, how long open connections may go on before they are cut.
    pub shutdown_grace: Duration,
    /// The largest frontend message accepted (bytes, including the length word).
    pub max_message_size: usize,
    /// Relay threads (established connections are spread over them).
    pub workers: usize,
    /// The system-call interface of the relay threads.
    pub relay_io: RelayIo,
}

/// How relay threads move bytes (`--relay-io`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RelayIo {
    /// io_uring where the kernel offers it (Linux 6.1+, not blocked by seccomp or
    /// `kernel.io_uring_disabled`), epoll elsewhere.
    #[default]
    Auto,
    /// io_uring, or fail to start.
    IoUring,
    /// epoll (`mio`).
    Epoll,
}

impl std::str::FromStr for RelayIo {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(RelayIo::Auto),
            "io_uring" => Ok(RelayIo::IoUring),
            "epoll" => Ok(RelayIo::Epoll),
            _ => Err("expected auto, io_uring or epoll"),
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            upstream: "127.0.0.1:5432".to_owned(),
            max_client_connections: 1000,
            connect_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            max_message_size: wire::MAX_MESSAGE_SIZE,
            workers: default_workers(),
            relay_io: RelayIo::Auto,
        }
    }
}

/// One relay thread per CPU. A single relay thread is a point every round trip passes through
/// twice: while it waits for a CPU, every connection waits, and under load the CPUs go idle
/// for lack of anything else to run. Alternated on 2 cores (`pgbench -S`, 8 rounds of 6 s,
/// 2026-11-27, the io_uring loop), two relay threads made 1.04× the TPS of one at 8 clients,
/// 1.05× at 32, 1.25× with `-M prepared` and 1.05× with `-M extended` at 32, and the host's
/// idle time fell from about 6% to 1–3%; with `-M extended` at 8 clients (0.98×) and TPC-B
/// (0.98× and 1.10× in two sets) they were level. An idle relay thread takes no CPU and only
/// wakes for its own connections; on io_uring each one holds its ring (4096 submission and
/// 16 384 completion entries, about 0.5 MiB of kernel memory).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Counters the relay keeps about itself (read by exporters).
#[derive(Default, Debug)]
pub struct ProxyStats {
    pub client_connections: AtomicU64,
    pub client_connections_total: AtomicU64,
    pub upstream_connect_errors: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub rejected_connections: AtomicU64,
}

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub config: ProxyConfig,
    pub sinks: Arc<dyn SinkFactory>,
    pub stats: Arc<ProxyStats>,
    pub limit: Arc<Semaphore>,
    pub relays: Relays,
    next_id: AtomicU64,
}

/// What an established connection holds until it ends: its place under
/// `--max-client-connections`, its place in the shutdown drain, and its count in the stats.
pub(crate) struct Lease {
    pub stats: Arc<ProxyStats>,
    _permit: OwnedSemaphorePermit,
    _done: mpsc::Sender<()>,
}

impl Lease {
    fn new(stats: Arc<ProxyStats>, permit: OwnedSemaphorePermit, done: mpsc::Sender<()>) -> Self {
        stats.client_connections.fetch_add(1, Ordering::Relaxed);
        stats
            .client_connections_total
            .fetch_add(1, Ordering::Relaxed);
        Lease {
            stats,
            _permit: permit,
            _done: done,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stats
            .client_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve clients accepted on `listener` until `shutdown` completes; then stop accepting and
/// wait up to `shutdown_grace` for open connections to finish (cutting those still open).
pub async fn serve(
    listener: TcpListener,
    config: ProxyConfig,
    sinks: Arc<dyn SinkFactory>,
    stats: Arc<ProxyStats>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let grace = config.shutdown_grace;
    let workers = config.workers;
    let shared = Arc::new(Shared {
        limit: Arc::new(Semaphore::new(config.max_client_connections)),
        relays: Relays::start(workers, config.relay_io)?,
        config,
        sinks,
        stats,
        next_id: AtomicU64::new(1),
    });
    // Every connection holds a clone of `done_tx` (in its startup task, then in its lease);
    // when all are dropped, `done_rx` yields None. `stop_tx` tells the startup tasks, and
    // `Relays::cut` the relay threads, to cut their connections after the grace period.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let (stop_tx, stop_rx) = watch::channel(false);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    tokio::spawn(handle_client(
                        shared.clone(),
                        socket,
                        peer,
                        stop_rx.clone(),
                        done_tx.clone(),
                    ));
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    drop(done_tx);
    let open = shared.stats.client_connections.load(Ordering::Relaxed);
    if open > 0 {
        tracing::info!(open, grace = ?grace, "stopped accepting; waiting for open connections");
    }
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        let open = shared.stats.client_connections.load(Ordering::Relaxed);
        tracing::warn!(open, "grace period over; closing the remaining connections");
        let _ = stop_tx.send(true);
        shared.relays.cut();
        let _ = tokio::time::timeout(Duration::from_secs(5), done_rx.recv()).await;
    }
    shared.relays.shutdown();
    Ok(())
}

async fn handle_client(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let _ = socket.set_nodelay(true);
    tracing::debug!(id, %peer, "client connected");
    let work = async {
        let permit = shared.limit.clone().try_acquire_owned().ok();
        startup::run(&shared, id, socket, permit, done).await;
    };
    tokio::select! {
        _ = work => {}
        _ = stop.wait_for(|s| *s) => {
            tracing::debug!(id, "connection cut at shutdown");
        }
    }
}
