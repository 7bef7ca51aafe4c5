//! Child processes: running a program with a timeout and capturing its output, signals, free
//! ports, and the few libc calls std does not wrap.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn geteuid() -> u32;
}

/// Send `sig` to process `pid`; false if it does not exist (any more).
pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { kill(pid as i32, sig) == 0 }
}

/// Send `sig` to every process of the process group `pgid`.
pub fn signal_group(pgid: u32, sig: i32) -> bool {
    // SAFETY: as above; a negative pid addresses a process group.
    unsafe { kill(-(pgid as i32), sig) == 0 }
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { geteuid() == 0 }
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Whoever binds it next may still lose a
/// race with another process; servers started on it retry with a new port when they do.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// Unset our environment's variables starting with `prefix` for `cmd` (with `PG`: libpq's
/// `PGHOST`, `PGPASSWORD`, `PGDATA`, … and `PGSCOPE_*`), so a developer's environment cannot
/// redirect a test.
pub fn remove_env_prefix(cmd: &mut Command, prefix: &str) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with(prefix) {
            cmd.env_remove(key);
        }
    }
}

/// True when something listens on TCP `port` (any address). Reads /proc/net/tcp{,6}, so it
/// does not connect: a probe would count as a client of the server it probes.
pub fn is_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .any(|f| f.len() > 3 && f[1].ends_with(&suffix) && f[3] == LISTEN)
    })
}

/// Wait for `child` to exit for at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Ask `child` to stop with `sig`; if it is still running after `grace`, kill it. Returns its
/// exit status.
pub fn stop_child(child: &mut Child, sig: i32, grace: Duration) -> ExitStatus {
    if let Some(status) = child.try_wait().expect("waitpid") {
        return status;
    }
    signal(child.id(), sig);
    wait_timeout(child, grace).unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().expect("waitpid")
    })
}

/// What a finished client program printed, and how it ended.
pub struct CmdOutput {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panic (showing everything the program printed) unless it exited 0.
    #[track_caller]
    pub fn assert_success(self) -> Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// The one non-blank line the program wrote to stderr; panics (showing everything it
    /// printed) if it wrote none or several.
    #[track_caller]
    pub fn only_stderr_line(&self) -> &str {
        let mut lines = self.stderr.lines().filter(|l| !l.trim().is_empty());
        match (lines.next(), lines.next()) {
            (Some(line), None) => line,
            _ => panic!("expected exactly one line on stderr: {self}"),
        }
    }

    /// Panic unless the program exited non-zero.
    #[track_caller]
    pub fn assert_failure(self) -> Self {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        self
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl fmt::Debug for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Run `cmd` with no standard input, capturing its output. Panics if it has not finished after
/// `timeout`; it runs in a process group of its own, which is killed first.
#[track_caller]
pub fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    run_with_stdin(cmd, None, timeout)
}

/// Like [`run`], writing `input` to the program's standard input.
#[track_caller]
pub fn run_with_stdin(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let command = format!("{cmd:?}");
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let writer = input.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // A program that exits without reading all of its input is not an error here.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let stdout = LiveOutput::start(child.stdout.take().unwrap());
    let stderr = LiveOutput::start(child.stderr.take().unwrap());
    let finished = wait_timeout(&mut child, timeout);
    if finished.is_none() {
        signal_group(child.id(), SIGKILL);
    }
    let status = child.wait().expect("waitpid");
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let output = CmdOutput {
        command,
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    };
    assert!(finished.is_some(), "timed out after {timeout:?}: {output}");
    output
}

/// A pipe read to its end on a thread of its own (so a full pipe never blocks the child),
/// readable while the child still runs.
pub struct LiveOutput {
    text: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl LiveOutput {
    pub fn start(mut pipe: impl Read + Send + 'static) -> LiveOutput {
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = text.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        LiveOutput { text, reader }
    }

    /// What has arrived so far.
    pub fn snapshot(&self) -> String {
        LiveOutput::text(&self.text)
    }

    fn text(bytes: &Mutex<Vec<u8>>) -> String {
        String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned()
    }

    /// Everything, once the pipe has closed.
    pub fn finish(self) -> String {
        let LiveOutput { text, reader } = self;
        let _ = reader.join();
        LiveOutput::text(&text)
    }
}
