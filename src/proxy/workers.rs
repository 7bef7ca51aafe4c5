//! Connection threads.
//!
//! Each worker is an OS thread running a current-thread tokio runtime. The accept loop hands
//! every new socket to the next worker in turn, and the connection lives there until it ends:
//! its two pumps, its tracker and every wakeup stay on one thread. That avoids the cross-thread
//! wakeups of a work-stealing runtime, which on a small machine cost more CPU per statement
//! than everything else the relay does (measured with `bench/relay.sh`: about 15 µs of proxy
//! CPU per pgbench transaction with a 2-worker multi-threaded runtime against about 10 µs with
//! one thread per connection).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{handle_client, Shared};

/// A connection handed to a worker.
struct Job {
    socket: std::net::TcpStream,
    peer: SocketAddr,
    /// Dropped when the connection ends (the accept loop counts open connections by it).
    done: mpsc::Sender<()>,
    stop: watch::Receiver<bool>,
}

/// The worker threads; dropping this ends them once their queues are drained (connections
/// still open are closed with their runtime).
pub(crate) struct Workers {
    queues: Vec<mpsc::Sender<Job>>,
    next: usize,
}

/// Sockets waiting for a worker to pick them up (per worker): accepting pauses beyond it.
const QUEUE: usize = 256;

impl Workers {
    pub fn start(count: usize, shared: Arc<Shared>) -> std::io::Result<Workers> {
        let mut queues = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("pgscope-conn-{i}"))
                .spawn(move || runtime.block_on(run(rx, shared)))?;
            queues.push(tx);
        }
        Ok(Workers { queues, next: 0 })
    }

    /// Hand `socket` to the next worker.
    pub async fn dispatch(
        &mut self,
        socket: TcpStream,
        peer: SocketAddr,
        done: mpsc::Sender<()>,
        stop: watch::Receiver<bool>,
    ) {
        // Deregister from this runtime's reactor; the worker registers it with its own.
        let socket = match socket.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection to a worker");
                return;
            }
        };
        let i = self.next % self.queues.len();
        self.next = self.next.wrapping_add(1);
        let job = Job {
            socket,
            peer,
            done,
            stop,
        };
        if self.queues[i].send(job).await.is_err() {
            tracing::warn!(worker = i, "connection worker is gone");
        }
    }
}

async fn run(mut jobs: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    while let Some(job) = jobs.recv().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            match TcpStream::from_std(job.socket) {
                Ok(socket) => handle_client(shared, socket, job.peer, job.stop).await,
                Err(e) => tracing::warn!(error = %e, "cannot register a connection"),
            }
            drop(job.done);
        });
    }
}
