//! The proxy under test, two ways:
//!
//! - [`ProxyHandle`]: `pgscope::proxy::serve` in this process, on a multi-threaded tokio
//!   runtime of its own (so plain `#[test]`s and `#[tokio::test]`s can both use it), with a
//!   sink that records every `Execution`, ReadyForQuery status and closed connection for the
//!   test to wait on and inspect.
//! - [`ProxyProcess`]: the real `pgscope` binary as a child process, for command-line,
//!   signal and exit-code tests.

use std::io;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pgscope::proxy::{serve, Execution, ExecutionSink, ProxyConfig, ProxyStats, SinkFactory};
use tokio::sync::oneshot;

use super::client::ConnInfo;
use super::process::{
    free_port, is_listening, remove_env_prefix, signal, stop_child, wait_timeout, CmdOutput,
    LiveOutput, SIGKILL, SIGTERM,
};
use super::scratch::ScratchDir;
use super::TIMEOUT;

/// `PGSCOPE_TEST_RELAY_IO`: the relay I/O every proxy of the tests uses (`--relay-io`);
/// unset, the default (`auto`). `tests/run.sh` runs the relay tests once more with `epoll`, so
/// that both relay loops are tested on a machine where `auto` picks io_uring.
pub fn relay_io() -> Option<String> {
    std::env::var("PGSCOPE_TEST_RELAY_IO").ok()
}

// --- what the sinks report ---

/// Everything the proxy's sinks reported, in order of arrival.
#[derive(Default)]
struct Recorded {
    executions: Vec<Execution>,
    /// (connection id, transaction status) per ReadyForQuery.
    ready: Vec<(u64, u8)>,
    /// Connection ids, as their `closed` was called.
    closed: Vec<u64>,
}

#[derive(Default)]
struct Recorder {
    state: Mutex<Recorded>,
    changed: Condvar,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut Recorded)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    /// Wait until `done` returns `Some`, for at most `timeout`; panics (showing what was
    /// recorded) when it does not.
    #[track_caller]
    fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Recorded) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(value) = done(&state) {
                return value;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}; recorded:\n{}",
                describe(&state)
            );
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn describe(state: &Recorded) -> String {
    let mut text = String::new();
    for e in &state.executions {
        text += &format!(
            "  conn {} {:?} {:?} tag={:?} rows={} error={:?}\n",
            e.connection_id,
            e.protocol,
            e.sql.as_str(),
            e.tag.as_str(),
            e.rows,
            e.error.map(|s| s.as_str().to_owned()),
        );
    }
    let statuses: Vec<String> = state
        .ready
        .iter()
        .map(|(id, status)| format!("{id}:{}", *status as char))
        .collect();
    text + &format!(
        "  ready for query: [{}]\n  closed: {:?}",
        statuses.join(" "),
        state.closed
    )
}

struct CaptureSink {
    connection_id: u64,
    recorder: Arc<Recorder>,
}

impl ExecutionSink for CaptureSink {
    fn record(&mut self, execution: Execution) {
        self.recorder.update(|r| r.executions.push(execution));
    }

    fn ready_for_query(&mut self, status: u8) {
        let id = self.connection_id;
        self.recorder.update(|r| r.ready.push((id, status)));
    }

    fn closed(&mut self) {
        let id = self.connection_id;
        self.recorder.update(|r| r.closed.push(id));
    }
}

struct CaptureFactory(Arc<Recorder>);

impl SinkFactory for CaptureFactory {
    fn sink(&self, connection_id: u64) -> Box<dyn ExecutionSink> {
        Box::new(CaptureSink {
            connection_id,
            recorder: self.0.clone(),
        })
    }
}

// --- in-process proxy ---

/// `pgscope::proxy::serve` on 127.0.0.1 in a background thread. Dropping it stops the proxy
/// at once (its runtime is shut down, cutting open connections); [`ProxyHandle::shutdown`]
/// stops it gracefully instead. Drop panics if a proxy thread panicked.
///
/// The `wait_for_*` methods block the calling thread. In a `#[tokio::test]` (one thread),
/// nothing else of the test's runtime runs meanwhile: to wait for something that needs it
/// (a dropped tokio-postgres client closing its socket), use
/// `#[tokio::test(flavor = "multi_thread")]`.
pub struct ProxyHandle {
    port: u16,
    id: usize,
    recorder: Arc<Recorder>,
    stats: Arc<ProxyStats>,
    graceful: Option<oneshot::Sender<()>>,
    abort: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ProxyHandle {
    /// A proxy in front of the server on 127.0.0.1:`upstream_port`, with [`Self::config`].
    pub fn start(upstream_port: u16) -> ProxyHandle {
        ProxyHandle::start_with(ProxyHandle::config(upstream_port))
    }

    /// The default test configuration: the crate's defaults, a short shutdown grace, and the
    /// relay I/O of [`relay_io`].
    pub fn config(upstream_port: u16) -> ProxyConfig {
        ProxyConfig {
            upstream: format!("127.0.0.1:{upstream_port}"),
            shutdown_grace: Duration::from_secs(2),
            relay_io: relay_io()
                .map(|io| {
                    io.parse()
                        .expect("PGSCOPE_TEST_RELAY_IO: auto, io_uring or epoll")
                })
                .unwrap_or_default(),
            ..ProxyConfig::default()
        }
    }

    pub fn start_with(config: ProxyConfig) -> ProxyHandle {
        count_proxy_panics();
        let id = next_proxy_id();
        let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let recorder = Arc::new(Recorder::default());
        let stats = Arc::new(ProxyStats::default());
        let (graceful, graceful_rx) = oneshot::channel();
        let (abort, abort_rx) = oneshot::channel();
        let sinks = Arc::new(CaptureFactory(recorder.clone()));
        let serve_stats = stats.clone();
        let name = format!("{PROXY_THREAD}{id}");
        let thread = thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build()?;
                let result = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let shutdown = async move {
                        let _ = graceful_rx.await;
                    };
                    tokio::select! {
                        result = serve(listener, config, sinks, serve_stats, shutdown) => result,
                        _ = abort_rx => Ok(()),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
                result
            })
            .expect("start the proxy thread");
        ProxyHandle {
            port,
            id,
            recorder,
            stats,
            graceful: Some(graceful),
            abort: Some(abort),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where a client connects through the proxy: `postgres` on `app`, without a password.
    pub fn conn(&self) -> ConnInfo {
        ConnInfo::new(self.port)
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// The executions recorded so far, in order of completion.
    pub fn executions(&self) -> Vec<Execution> {
        self.recorder.lock().executions.clone()
    }

    /// Wait until at least `n` executions have been recorded; returns all of them. Panics
    /// after `timeout`, listing what was recorded.
    #[track_caller]
    pub fn wait_for_executions(&self, n: usize, timeout: Duration) -> Vec<Execution> {
        let what = format!("{n} executions");
        self.recorder.wait_for(&what, timeout, |r| {
            (r.executions.len() >= n).then(|| r.executions.clone())
        })
    }

    /// (connection id, transaction status `I`/`T`/`E`) of every ReadyForQuery so far.
    pub fn ready_statuses(&self) -> Vec<(u64, u8)> {
        self.recorder.lock().ready.clone()
    }

    /// Wait until at least `n` ReadyForQuery have been recorded; returns all of them.
    #[track_caller]
    pub fn wait_for_ready(&self, n: usize, timeout: Duration) -> Vec<(u64, u8)> {
        let what = format!("{n} ReadyForQuery");
        self.recorder.wait_for(&what, timeout, |r| {
            (r.ready.len() >= n).then(|| r.ready.clone())
        })
    }

    /// Ids of the connections whose sink was told `closed`, in that order.
    pub fn closed_connections(&self) -> Vec<u64> {
        self.recorder.lock().closed.clone()
    }

    /// Wait until at least `n` connections have closed; returns their ids.
    #[track_caller]
    pub fn wait_for_closed(&self, n: usize, timeout: Duration) -> Vec<u64> {
        let what = format!("{n} closed connections");
        self.recorder.wait_for(&what, timeout, |r| {
            (r.closed.len() >= n).then(|| r.closed.clone())
        })
    }

    /// Forget everything recorded so far.
    pub fn clear(&self) {
        self.recorder.update(|r| *r = Recorded::default());
    }

    /// How many times a thread of this proxy panicked (connection tasks included).
    pub fn panics(&self) -> usize {
        panicked_proxies()
            .iter()
            .filter(|&&id| id == self.id)
            .count()
    }

    /// Stop gracefully (as on SIGTERM: stop accepting, let open connections finish within
    /// the configured grace) and return what `serve` returned.
    pub fn shutdown(mut self) -> io::Result<()> {
        drop(self.graceful.take());
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the proxy thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        drop(self.abort.take());
        let result = self.join();
        if thread::panicking() {
            return;
        }
        if let Err(e) = result {
            panic!("proxy on port {} failed: {e}", self.port);
        }
        let panics = self.panics();
        assert_eq!(panics, 0, "the proxy panicked {panics} time(s): see above");
    }
}

/// The runtime threads of proxy number N are named `pgscope-proxy-N`.
const PROXY_THREAD: &str = "pgscope-proxy-";

fn next_proxy_id() -> usize {
    static NEXT: Mutex<usize> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap();
    *next += 1;
    *next
}

fn panicked_proxies() -> MutexGuard<'static, Vec<usize>> {
    static PANICKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    PANICKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Install (once) a panic hook that notes panics on proxy threads: tokio catches a panic in a
/// connection task, and the test would only see a dropped connection.
fn count_proxy_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let current = thread::current();
            let proxy = current.name().and_then(|n| n.strip_prefix(PROXY_THREAD));
            if let Some(id) = proxy.and_then(|id| id.parse().ok()) {
                panicked_proxies().push(id);
            }
            previous(info);
        }));
    });
}

// --- the real binary ---

/// The `pgscope` binary, listening on a free port of 127.0.0.1 (and `--http-listen` on
/// another, unless the extra arguments set it). Killed when dropped; if the test process
/// dies, a watchdog kills it.
pub struct ProxyProcess {
    child: Child,
    port: u16,
    http_port: Option<u16>,
    command: String,
    stdout: Option<LiveOutput>,
    stderr: Option<LiveOutput>,
    dir: ScratchDir,
}

impl ProxyProcess {
    /// `pgscope --listen 127.0.0.1:<free> --upstream 127.0.0.1:<upstream_port>
    /// --http-listen 127.0.0.1:<free>`, once it listens.
    pub fn start(upstream_port: u16) -> ProxyProcess {
        ProxyProcess::start_with_args(upstream_port, &[])
    }

    /// As [`Self::start`], with more arguments after ours.
    pub fn start_with_args(upstream_port: u16, extra: &[&str]) -> ProxyProcess {
        ProxyProcess::try_start_with_args(upstream_port, extra)
            .unwrap_or_else(|output| panic!("pgscope did not start: {output}"))
    }

    /// As [`Self::start_with_args`], for a start that may fail: what it printed if it exited.
    pub fn try_start_with_args(
        upstream_port: u16,
        extra: &[&str],
    ) -> Result<ProxyProcess, CmdOutput> {
        for _ in 0..5 {
            let mut proxy = ProxyProcess::spawn(upstream_port, extra);
            match proxy.wait_until_listening() {
                Ok(()) => return Ok(proxy),
                Err(output) if output.stderr.contains("in use") => continue,
                Err(output) => return Err(output),
            }
        }
        panic!("pgscope found no free port in 5 tries");
    }

    fn spawn(upstream_port: u16, extra: &[&str]) -> ProxyProcess {
        let dir = ScratchDir::new("proxy", None);
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgscope"));
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
        cmd.arg("--upstream")
            .arg(format!("127.0.0.1:{upstream_port}"));
        let sets_http = extra.iter().any(|a| a.starts_with("--http-listen"));
        let http_port = (!sets_http).then(free_port);
        if let Some(http_port) = http_port {
            cmd.arg("--http-listen")
                .arg(format!("127.0.0.1:{http_port}"));
        }
        if let Some(io) = relay_io().filter(|_| !extra.iter().any(|a| a.starts_with("--relay-io")))
        {
            cmd.arg("--relay-io").arg(io);
        }
        cmd.args(extra).current_dir(dir.path());
        remove_env_prefix(&mut cmd, "PG"); // PGSCOPE_* too: the test decides every setting
        let command = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        dir.watch("KILL", child.id());
        let stdout = Some(LiveOutput::start(child.stdout.take().unwrap()));
        let stderr = Some(LiveOutput::start(child.stderr.take().unwrap()));
        ProxyProcess {
            child,
            port,
            http_port,
            command,
            stdout,
            stderr,
            dir,
        }
    }

    fn wait_until_listening(&mut self) -> Result<(), CmdOutput> {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("waitpid").is_some() {
                return Err(self.collect());
            }
            if is_listening(self.port) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(5));
        }
        stop_child(&mut self.child, SIGKILL, TIMEOUT);
        Err(self.collect())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `--http-listen` port we chose (None when the extra arguments set it).
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A folder for the test's files (config files, …), deleted on drop.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Where a client connects through the proxy: `postgres` on `app`, without a password.
    pub fn conn(&self) -> ConnInfo {
        ConnInfo::new(self.port)
    }

    /// What the process has written to stderr so far (its log).
    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .as_ref()
            .map(LiveOutput::snapshot)
            .unwrap_or_default()
    }

    /// Send a signal (`SIGTERM`, `SIGINT`, … from the harness's constants or libc numbers).
    pub fn signal(&self, sig: i32) {
        signal(self.child.id(), sig);
    }

    /// Wait for the process to exit by itself; panics after `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> CmdOutput {
        let exited = wait_timeout(&mut self.child, timeout).is_some();
        let output = self.collect();
        assert!(exited, "pgscope did not exit within {timeout:?}: {output}");
        output
    }

    /// SIGTERM, then wait (up to [`TIMEOUT`]) for the exit status and output.
    #[track_caller]
    pub fn terminate(self) -> CmdOutput {
        self.signal(SIGTERM);
        self.wait(TIMEOUT)
    }

    /// Kill if needed and gather the exit status and everything printed.
    fn collect(&mut self) -> CmdOutput {
        let status = stop_child(&mut self.child, SIGKILL, Duration::ZERO);
        CmdOutput {
            command: self.command.clone(),
            status,
            stdout: self
                .stdout
                .take()
                .map(LiveOutput::finish)
                .unwrap_or_default(),
            stderr: self
                .stderr
                .take()
                .map(LiveOutput::finish)
                .unwrap_or_default(),
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let output = self.collect();
        if thread::panicking() {
            eprintln!("--- pgscope output ---\n{output}");
        }
    }
}
