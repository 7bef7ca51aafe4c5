//! The relay is transparent: real clients (psql, pgbench, tokio-postgres and a raw socket)
//! against a real PostgreSQL 15, through the proxy, and where it matters compared with the
//! same client talking to a server directly.
//!
//! - psql scripts (`tests/fixtures/psql/*.sql`) run once directly and once through the proxy,
//!   each against a fresh server made from the same template, so that both start from the
//!   same state (same OIDs, same sequences). Their stdout, stderr, exit code and the files
//!   they write must be identical; the only normalization is of `\timing` lines (and, in the
//!   NOTIFY script, of the script's own backend pid, which the script prints).
//! - pgbench initializes and runs through the proxy in the three query modes; the number of
//!   transactions it reports must match the executions the proxy recorded.
//! - tokio-postgres exercises the extended protocol (pipelining, binary formats, prepared
//!   statements, portals, errors), LISTEN/NOTIFY, cancel requests, large values and many
//!   connections; the recorded executions are checked along with the results.
//! - Connection lifetimes: either side going away closes the other; an unreachable upstream
//!   and malformed input give the documented SQLSTATEs.
//! - The `pgscope` binary: graceful shutdown on SIGTERM, and its exit codes.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{free_port, run, CmdOutput, ConnInfo, PgServer, ProxyHandle, ProxyProcess, TIMEOUT};
use common::{MD5, PASSWORD, SCRAM};
use pgscope::proxy::{Execution, Protocol, ProxyConfig};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

const SIGTERM: i32 = 15;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A folder under the system temporary folder, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "pgscope-relay-cli-{what}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/psql")
        .join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    path.display().to_string()
}

/// Deterministic pseudo-random bytes (xorshift64*), so no test depends on a random source.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// psql (no psqlrc) connecting to `conn`, working in `cwd`.
fn psql_command(conn: &ConnInfo, cwd: &Path) -> Command {
    let mut cmd = conn.command(PgServer::bin("psql"));
    cmd.current_dir(cwd)
        .env("LC_ALL", "C")
        .env("PGCLIENTENCODING", "UTF8")
        .env_remove("PSQLRC")
        .env_remove("PSQL_PAGER")
        .env_remove("PAGER")
        .arg("--no-psqlrc");
    cmd
}

/// `\timing` lines are the only output that may differ between two runs.
fn normalize_timing(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("Time: ") && line.contains(" ms") {
                "Time: <elapsed>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Panic with the first differing line (and both texts) unless `direct == proxied`.
#[track_caller]
fn assert_same_text(what: &str, direct: &str, proxied: &str) {
    if direct == proxied {
        return;
    }
    let d: Vec<&str> = direct.lines().collect();
    let p: Vec<&str> = proxied.lines().collect();
    let first = d
        .iter()
        .zip(&p)
        .position(|(a, b)| a != b)
        .unwrap_or(d.len().min(p.len()));
    let cut = |s: &str| -> String { s.chars().take(20_000).collect() };
    panic!(
        "{what} differs at line {} (direct has {} lines, proxied {}):\n  direct:  {:?}\n  proxied: {:?}\n\
         --- direct ---\n{}\n--- proxied ---\n{}",
        first + 1,
        d.len(),
        p.len(),
        d.get(first),
        p.get(first),
        cut(direct),
        cut(proxied)
    );
}

/// Two fresh servers from the same template: one for the direct run, one behind the proxy.
struct Compared {
    direct: PgServer,
    /// Behind `proxy`; only kept alive.
    _proxied: PgServer,
    proxy: ProxyHandle,
    direct_dir: TempDir,
    proxied_dir: TempDir,
}

/// The two runs (their output is the same, but for timing lines).
struct PsqlRuns {
    direct: CmdOutput,
    #[allow(dead_code)]
    proxied: CmdOutput,
}

impl Compared {
    fn start() -> Compared {
        let (direct, proxied) = thread::scope(|s| {
            let a = s.spawn(PgServer::start);
            let b = s.spawn(PgServer::start);
            (a.join().unwrap(), b.join().unwrap())
        });
        let proxy = ProxyHandle::start(proxied.port());
        Compared {
            direct,
            _proxied: proxied,
            proxy,
            direct_dir: TempDir::new("direct"),
            proxied_dir: TempDir::new("proxied"),
        }
    }

    /// Write the same file into both working directories.
    fn write_file(&self, name: &str, bytes: &[u8]) {
        fs::write(self.direct_dir.path().join(name), bytes).unwrap();
        fs::write(self.proxied_dir.path().join(name), bytes).unwrap();
    }

    /// A file psql wrote in each working directory: (direct, proxied).
    fn read_files(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        let read = |dir: &TempDir| {
            fs::read(dir.path().join(name))
                .unwrap_or_else(|e| panic!("{name} in {}: {e}", dir.path().display()))
        };
        (read(&self.direct_dir), read(&self.proxied_dir))
    }

    /// Run psql with `args` directly and through the proxy; the exit codes, stdout (timing
    /// lines aside) and stderr must be identical.
    #[track_caller]
    fn psql(&self, args: &[&str]) -> PsqlRuns {
        let direct = run(
            psql_command(&self.direct.conn(), self.direct_dir.path()).args(args),
            TIMEOUT,
        );
        let proxied = run(
            psql_command(&self.proxy.conn(), self.proxied_dir.path()).args(args),
            TIMEOUT,
        );
        assert_eq!(
            direct.status.code(),
            proxied.status.code(),
            "exit codes differ\n{direct}\n{proxied}"
        );
        assert_same_text(
            "stdout",
            &normalize_timing(&direct.stdout),
            &normalize_timing(&proxied.stdout),
        );
        assert_same_text("stderr", &direct.stderr, &proxied.stderr);
        PsqlRuns { direct, proxied }
    }

    /// Run a fixture script with `-f` and extra variables.
    #[track_caller]
    fn psql_script(&self, name: &str, vars: &[&str]) -> PsqlRuns {
        let file = fixture(name);
        let mut args: Vec<&str> = Vec::new();
        for var in vars {
            args.extend(["-v", var]);
        }
        args.extend(["-f", &file]);
        self.psql(&args)
    }
}

/// (SQL text, tag, rows, SQLSTATE) of each execution: what most assertions compare.
fn summary(executions: &[Execution]) -> Vec<(String, String, u64, Option<String>)> {
    executions
        .iter()
        .map(|e| {
            (
                e.sql.as_str().to_owned(),
                e.tag.as_str().to_owned(),
                e.rows,
                e.error.map(|c| c.as_str().to_owned()),
            )
        })
        .collect()
}

fn error_codes(executions: &[Execution]) -> Vec<String> {
    executions
        .iter()
        .filter_map(|e| e.error.map(|c| c.as_str().to_owned()))
        .collect()
}

/// `TTTIIT` → `TIT`: the sequence of states, without repeats.
fn collapse_runs(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Poll `check` every 20 ms until it returns true; panics with `what` after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Is a backend with this pid still in pg_stat_activity (asked directly)?
async fn backend_alive(direct: &Client, pid: i32) -> bool {
    direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
}

/// Wait until the backend `pid` has left pg_stat_activity.
async fn wait_backend_gone(direct: &Client, pid: i32, what: &str) {
    eventually(what, TIMEOUT, || async move {
        !backend_alive(direct, pid).await
    })
    .await;
}

/// Client backends other than the asking one.
async fn other_client_backends(direct: &Client) -> i64 {
    direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Any value's bytes exactly as they came over the wire (binary format).
#[derive(Debug, PartialEq, Eq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

// --- a raw protocol client on a blocking socket ---

/// One backend message: (tag, body).
type Message = (u8, Vec<u8>);

struct RawConn {
    stream: TcpStream,
}

impl RawConn {
    fn connect(port: u16) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the proxy");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RawConn { stream }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// StartupMessage (protocol 3.0) as `user` on `database`; returns every message up to
    /// and including ReadyForQuery. Panics on an ErrorResponse.
    fn startup(&mut self, user: &str, database: &str) -> Vec<Message> {
        let mut body = Vec::new();
        body.extend(196_608u32.to_be_bytes());
        for (k, v) in [("user", user), ("database", database)] {
            body.extend(k.as_bytes());
            body.push(0);
            body.extend(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend(body);
        self.send(&packet);
        let mut seen = Vec::new();
        loop {
            let (tag, body) = self
                .read_message()
                .expect("read during startup")
                .expect("EOF during startup");
            assert_ne!(tag, b'E', "startup failed: {:?}", error_fields(&body));
            seen.push((tag, body));
            if tag == b'Z' {
                return seen;
            }
        }
    }

    /// The next message, or None at a clean EOF between messages.
    fn read_message(&mut self) -> io::Result<Option<Message>> {
        let mut header = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            match self.stream.read(&mut header[got..])? {
                0 if got == 0 => return Ok(None),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        assert!(
            (4..1 << 30).contains(&len),
            "bad length {len} from the proxy"
        );
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body)?;
        Ok(Some((header[0], body)))
    }

    /// Every message until EOF; the error if the stream ended otherwise.
    fn read_to_end(&mut self) -> (Vec<Message>, Option<io::Error>) {
        let mut seen = Vec::new();
        loop {
            match self.read_message() {
                Ok(Some(m)) => seen.push(m),
                Ok(None) => return (seen, None),
                Err(e) => return (seen, Some(e)),
            }
        }
    }
}

/// A frontend message: tag, length, body.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(((body.len() + 4) as u32).to_be_bytes());
    out.extend(body);
    out
}

fn error_fields(body: &[u8]) -> BTreeMap<char, String> {
    let mut fields = BTreeMap::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .expect("NUL-terminated field");
        fields.insert(
            code as char,
            String::from_utf8_lossy(&tail[..end]).into_owned(),
        );
        rest = &tail[end + 1..];
    }
    fields
}

/// The backend pid from the BackendKeyData of a startup.
fn backend_pid(startup: &[Message]) -> i32 {
    let (_, body) = startup
        .iter()
        .find(|(tag, _)| *tag == b'K')
        .expect("BackendKeyData");
    i32::from_be_bytes([body[0], body[1], body[2], body[3]])
}

/// The proxy answers with exactly one FATAL ErrorResponse 08P01 and then closes.
#[track_caller]
fn assert_protocol_violation(conn: &mut RawConn, what: &str) -> String {
    let (messages, error) = conn.read_to_end();
    assert!(
        error.is_none(),
        "{what}: the stream ended with {error:?} instead of EOF (after {messages:?})"
    );
    assert_eq!(
        messages.len(),
        1,
        "{what}: expected one ErrorResponse, got {:?}",
        messages
            .iter()
            .map(|(t, b)| (*t as char, String::from_utf8_lossy(b).into_owned()))
            .collect::<Vec<_>>()
    );
    let (tag, body) = &messages[0];
    assert_eq!(*tag, b'E', "{what}: not an ErrorResponse");
    let fields = error_fields(body);
    assert_eq!(
        fields.get(&'C').map(String::as_str),
        Some("08P01"),
        "{what}: {fields:?}"
    );
    assert_eq!(
        fields.get(&'S').map(String::as_str),
        Some("FATAL"),
        "{what}: {fields:?}"
    );
    fields.get(&'M').cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// psql, compared with a direct connection
// ---------------------------------------------------------------------------------------------

#[test]
fn psql_multi_statement_command_strings() {
    let c = Compared::start();
    let runs = c.psql(&["-c", "select 1; select 2"]);
    assert!(runs.direct.status.success());
    // psql 15 shows every result of a multi-statement string.
    assert!(
        runs.direct
            .stdout
            .contains("?column? \n----------\n        1\n")
            && runs.direct.stdout.contains("        2\n"),
        "{}",
        runs.direct
    );
    let execs = c.proxy.wait_for_executions(2, TIMEOUT);
    assert_eq!(
        summary(&execs),
        [
            ("select 1".into(), "SELECT 1".into(), 1, None),
            ("select 2".into(), "SELECT 1".into(), 1, None),
        ]
    );
    assert!(execs.iter().all(|e| e.protocol == Protocol::Simple));
    assert_eq!(execs[0].connection_id, execs[1].connection_id);

    // An error in the middle of one string: the statements after it are not run.
    c.proxy.clear();
    let runs = c.psql(&["-c", "select 'a' as x, 1 as y; select 1/0; select 3"]);
    assert_eq!(runs.direct.status.code(), Some(1));
    assert!(runs.direct.stderr.contains("ERROR:  division by zero"));
    let execs = c.proxy.wait_for_executions(2, TIMEOUT);
    assert_eq!(
        summary(&execs),
        [
            ("select 'a' as x, 1 as y".into(), "SELECT 1".into(), 1, None),
            ("select 1/0".into(), "".into(), 0, Some("22012".into())),
        ]
    );

    // Several -c options, meta-commands, aligned and unaligned output, \timing.
    c.psql(&[
        "-c",
        "\\timing on",
        "-c",
        "select g, repeat('ab', g) from generate_series(1, 5) g; select now() is not null as t",
        "-c",
        "\\pset format unaligned",
        "-c",
        "select 'x' as a, null as b; create temp table t (a int); insert into t values (1), (2); \
         update t set a = a + 1; delete from t; drop table t",
        "-c",
        "\\timing off",
        "-c",
        "select ''; ;; select 'end'",
    ]);
}

#[test]
fn psql_errors_mid_script_without_on_error_stop() {
    let c = Compared::start();
    let runs = c.psql_script("errors.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0), "{}", runs.direct);
    let errors = runs.direct.stderr.matches("ERROR:").count();
    assert_eq!(errors, 7, "{}", runs.direct);
    assert!(runs.direct.stderr.contains("NOTICE:  notice with detail"));
    assert!(runs
        .direct
        .stdout
        .contains(" rows_left \n-----------\n         2\n"));
    // The proxy saw every failure, in order, with the server's SQLSTATE.
    let execs = c.proxy.executions();
    assert_eq!(
        error_codes(&execs),
        ["22012", "42703", "23505", "42P01", "22P02", "23502", "P0001"]
    );
    let last = execs.last().unwrap();
    assert_eq!(last.sql.as_str(), "SELECT count(*) AS rows_left FROM items");
    assert_eq!((last.rows, last.error), (1, None));
}

#[test]
fn psql_errors_mid_script_with_on_error_stop() {
    let c = Compared::start();
    let runs = c.psql_script("errors.sql", &["ON_ERROR_STOP=1"]);
    assert_eq!(runs.direct.status.code(), Some(3), "{}", runs.direct);
    assert_eq!(runs.direct.stderr.matches("ERROR:").count(), 1);
    assert!(runs.direct.stderr.contains("ERROR:  division by zero"));
    let execs = c.proxy.executions();
    assert_eq!(
        summary(&execs),
        [
            (
                "CREATE TEMP TABLE items (id int PRIMARY KEY, name text NOT NULL)".into(),
                "CREATE TABLE".into(),
                0,
                None
            ),
            (
                "INSERT INTO items VALUES (1, 'one'), (2, 'two')".into(),
                "INSERT 0 2".into(),
                2,
                None
            ),
            (
                "SELECT 1 / 0 AS boom".into(),
                "".into(),
                0,
                Some("22012".into())
            ),
        ]
    );
}

#[test]
fn psql_copy_from_stdin_and_to_stdout() {
    let c = Compared::start();
    let runs = c.psql_script("copy.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0));
    let out = &runs.direct.stdout;
    assert!(out.contains("COPY 4\nCOPY 3\n"), "{}", runs.direct);
    assert!(out.contains("\"6\",\"a \"\"double\"\" quote\""), "{out}");
    let last_row = format!(
        "\n20000\td9798cdf31c02d86b8b81cc119d94836\t{}\n",
        "x".repeat(200)
    );
    assert!(out.contains(&last_row), "{out}");
    assert!(out.contains("\n5000,12502500,"), "{out}");
    assert!(runs
        .direct
        .stderr
        .contains("invalid input syntax for type integer: \"nine\""));
    let execs = c.proxy.executions();
    let copies: Vec<(String, u64, Option<String>)> = execs
        .iter()
        .filter(|e| e.sql.as_str().starts_with("COPY"))
        .map(|e| {
            (
                e.tag.as_str().to_owned(),
                e.rows,
                e.error.map(|s| s.to_string()),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [
            ("COPY 4".into(), 4, None),
            ("COPY 3".into(), 3, None),
            ("COPY 7".into(), 7, None),
            ("COPY 7".into(), 7, None),
            ("".into(), 0, Some("22P02".into())),
            ("COPY 20000".into(), 20000, None),
            ("COPY 3".into(), 3, None),
            ("COPY 1".into(), 1, None),
        ]
    );
}

#[test]
fn psql_backslash_copy_both_ways() {
    let c = Compared::start();
    c.write_file(
        "input.txt",
        "1\tone\n2\t\\N\n3\tthree, with ünïcödé\n".as_bytes(),
    );
    let runs = c.psql_script("backslash_copy.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0));
    let out = &runs.direct.stdout;
    assert!(out.contains("       501 |      501 |      501\n"), "{out}");
    assert!(
        out.contains(" differences \n-------------\n           0\n"),
        "{out}"
    );
    assert!(out.contains(" 3 | three, with ünïcödé\n"), "{out}");
    assert!(runs.direct.stderr.contains("no_such_file.txt"));
    assert!(out.contains("still connected"));
    for name in ["out.txt", "out.csv", "out.bin"] {
        let (direct, proxied) = c.read_files(name);
        assert!(
            direct.len() > 10_000,
            "{name} is only {} bytes",
            direct.len()
        );
        assert!(
            direct == proxied,
            "{name} differs between direct and proxied runs"
        );
    }
    let execs = c.proxy.executions();
    let copy_rows: Vec<u64> = execs
        .iter()
        .filter(|e| e.tag.command() == "COPY")
        .map(|e| e.rows)
        .collect();
    assert_eq!(copy_rows, [501, 501, 501, 501, 501, 501, 3]);
}

#[test]
fn psql_transaction_with_savepoints() {
    let c = Compared::start();
    let runs = c.psql_script("savepoints.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0));
    let err = &runs.direct.stderr;
    assert!(
        err.contains("duplicate key value violates unique constraint"),
        "{err}"
    );
    assert!(err.contains("current transaction is aborted"), "{err}");
    assert!(
        err.contains("RELEASE SAVEPOINT can only be used in transaction blocks"),
        "{err}"
    );
    assert!(
        runs.direct.stdout.contains("  1 |    101\n"),
        "{}",
        runs.direct.stdout
    );
    // Transaction states as the server reported them, in order (I idle, T in a transaction,
    // E failed), for the proxied session.
    let statuses: String = c
        .proxy
        .ready_statuses()
        .iter()
        .map(|(_, s)| *s as char)
        .collect();
    // One after logging in, then one per statement of the script (psql sends each as its
    // own Query).
    let expected = [
        "I",
        "I",
        &"T".repeat(8),
        "EE",
        &"T".repeat(9),
        "II",
        "TT",
        "IIII",
    ]
    .concat();
    assert_eq!(statuses, expected);
}

#[test]
fn psql_large_objects_use_the_function_call_protocol() {
    let c = Compared::start();
    let blob = pseudo_random_bytes(300_000, 42);
    c.write_file("blob.bin", &blob);
    let runs = c.psql_script("large_objects.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0));
    let out = &runs.direct.stdout;
    assert!(out.contains("lo_import "), "{out}");
    assert!(out.contains("imported by the pgscope tests"), "{out}");
    assert!(out
        .contains(" objects_after_rollback \n------------------------\n                      1\n"));
    assert!(out.contains(" objects_after_unlink \n----------------------\n                    0\n"));
    assert!(
        runs.direct.stderr.contains("does not exist"),
        "{}",
        runs.direct.stderr
    );
    let (direct, proxied) = c.read_files("blob.out");
    assert!(direct == blob, "the direct export differs from the import");
    assert!(
        proxied == blob,
        "the proxied export differs from the import"
    );
    // libpq's lo_* calls are FunctionCall messages: each one was recorded.
    let execs = c.proxy.executions();
    let calls: Vec<&Execution> = execs
        .iter()
        .filter(|e| e.protocol == Protocol::FunctionCall)
        .collect();
    // Per import at least lo_creat, lo_open, one lo_write per 8 KB and lo_close.
    assert!(
        calls.len() > 2 * (300_000 / 8192),
        "{} function calls",
        calls.len()
    );
    assert!(calls
        .iter()
        .all(|e| e.sql.as_str() == "fastpath function call"));
    // The only failing call is lo_open on the unlinked object.
    assert_eq!(
        error_codes(&calls.into_iter().cloned().collect::<Vec<_>>()),
        ["42704"]
    );
}

#[test]
fn psql_server_side_cursor() {
    let c = Compared::start();
    let runs = c.psql_script("cursor.sql", &["ON_ERROR_STOP=0"]);
    assert_eq!(runs.direct.status.code(), Some(0));
    let out = &runs.direct.stdout;
    assert!(out.contains(" 18 |    324\n"), "{out}");
    assert!(out.contains(" row 5\n(3 rows)"), "{out}");
    assert!(runs
        .direct
        .stderr
        .contains("cursor \"held\" does not exist"));
    let execs = c.proxy.executions();
    let fetches: Vec<(String, u64)> = execs
        .iter()
        .filter(|e| e.tag.command() == "FETCH" || e.tag.command() == "MOVE")
        .map(|e| (e.sql.as_str().to_owned(), e.rows))
        .collect();
    assert_eq!(
        fetches,
        [
            ("FETCH 3 FROM c".into(), 3),
            ("FETCH NEXT FROM c".into(), 1),
            ("MOVE FORWARD 5 IN c".into(), 5),
            ("FETCH 2 FROM c".into(), 2),
            ("FETCH PRIOR FROM c".into(), 1),
            ("FETCH ABSOLUTE 18 FROM c".into(), 1),
            ("FETCH ALL FROM c".into(), 2),
            ("FETCH NEXT FROM c".into(), 0),
            ("FETCH 2 FROM held".into(), 2),
            ("FETCH ALL FROM held".into(), 3),
        ]
    );
}

#[test]
fn psql_notify_inside_a_transaction() {
    let c = Compared::start();
    let file = fixture("notify.sql");
    let args = ["-v", "ON_ERROR_STOP=1", "-f", file.as_str()];
    let direct = run(
        psql_command(&c.direct.conn(), c.direct_dir.path()).args(args),
        TIMEOUT,
    );
    let proxied = run(
        psql_command(&c.proxy.conn(), c.proxied_dir.path()).args(args),
        TIMEOUT,
    );
    // Each run's own backend pid (it differs by necessity) is replaced in its own output
    // only where the notification names it.
    let own_pid = |out: &CmdOutput| -> String {
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("backend "))
            .unwrap_or_else(|| panic!("no backend line: {out}"));
        let pid: u32 = line.trim().parse().unwrap();
        out.stdout.replace(line, "<pid>").replace(
            &format!("server process with PID {pid}."),
            "server process with PID <pid>.",
        )
    };
    assert!(direct.status.success(), "{direct}");
    assert_eq!(direct.status.code(), proxied.status.code(), "{proxied}");
    assert_same_text("stdout", &own_pid(&direct), &own_pid(&proxied));
    assert_same_text("stderr", &direct.stderr, &proxied.stderr);
    let out = own_pid(&direct);
    let notes: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Asynchronous notification"))
        .collect();
    assert_eq!(
        notes,
        [
            "Asynchronous notification \"pgscope_channel\" with payload \"first payload\" received from server process with PID <pid>.",
            "Asynchronous notification \"Other Channel\" with payload \"ünïcödé payload, with 'quotes'\" received from server process with PID <pid>.",
            "Asynchronous notification \"pgscope_channel\" received from server process with PID <pid>.",
            "Asynchronous notification \"pgscope_channel\" with payload \"twice\" received from server process with PID <pid>.",
            "Asynchronous notification \"pgscope_channel\" with payload \"twice\" received from server process with PID <pid>.",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// pgbench
// ---------------------------------------------------------------------------------------------

fn pgbench(conn: &ConnInfo, args: &[&str]) -> CmdOutput {
    let mut cmd = conn.command(PgServer::bin("pgbench"));
    cmd.env("LC_ALL", "C").args(args);
    run(&mut cmd, TIMEOUT * 4)
}

/// `name: value` from pgbench's report.
fn report_value<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no `{name}` in pgbench's report:\n{out}"))
        .trim()
}

#[test]
fn pgbench_through_the_proxy() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());

    let init = pgbench(&proxy.conn(), &["-i", "-s", "1"]).assert_success();
    assert!(init.stderr.contains("done in"), "{init}");
    assert_eq!(
        pg.psql(
            "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || \
             (SELECT count(*) FROM pgbench_tellers) || ' ' || (SELECT count(*) FROM pgbench_branches)"
        )
        .trim(),
        "100000 10 1"
    );
    let copy: Vec<Execution> = proxy
        .executions()
        .into_iter()
        .filter(|e| e.tag.command() == "COPY")
        .collect();
    assert_eq!(copy.len(), 1, "{:?}", summary(&copy));
    assert_eq!(
        (copy[0].tag.as_str(), copy[0].rows),
        ("COPY 100000", 100_000)
    );
    assert!(error_codes(&proxy.executions()).is_empty());

    const TXNS: u64 = 200;
    const CLIENTS: u64 = 4;
    for mode in ["simple", "extended", "prepared"] {
        proxy.clear();
        let out = pgbench(
            &proxy.conn(),
            &[
                "-n",
                "-M",
                mode,
                "-c",
                &CLIENTS.to_string(),
                "-j",
                "2",
                "-t",
                &TXNS.to_string(),
            ],
        )
        .assert_success();
        let total = TXNS * CLIENTS;
        assert_eq!(
            report_value(&out.stdout, "number of transactions actually processed"),
            format!("{total}/{total}"),
            "{out}"
        );
        assert!(
            report_value(&out.stdout, "number of failed transactions").starts_with("0 "),
            "{out}"
        );
        assert_eq!(report_value(&out.stdout, "query mode"), mode);

        // pgbench has exited: every statement's completion reached it, so the proxy recorded
        // it before (it records a completion before forwarding it).
        let execs = proxy.executions();
        assert!(
            error_codes(&execs).is_empty(),
            "{mode}: {:?}",
            error_codes(&execs)
        );
        let kinds: [(&str, &str, u64); 7] = [
            ("BEGIN", "BEGIN", 0),
            ("UPDATE pgbench_accounts ", "UPDATE 1", 1),
            ("SELECT abalance FROM pgbench_accounts ", "SELECT 1", 1),
            ("UPDATE pgbench_tellers ", "UPDATE 1", 1),
            ("UPDATE pgbench_branches ", "UPDATE 1", 1),
            ("INSERT INTO pgbench_history ", "INSERT 0 1", 1),
            ("END", "COMMIT", 0),
        ];
        let mut script = Vec::new();
        for (prefix, tag, rows) in kinds {
            let matching: Vec<&Execution> = execs
                .iter()
                .filter(|e| e.sql.as_str().starts_with(prefix))
                .collect();
            assert_eq!(
                matching.len() as u64,
                total,
                "{mode}: `{prefix}…` executions"
            );
            for e in &matching {
                assert_eq!(
                    (e.tag.as_str(), e.rows),
                    (tag, rows),
                    "{mode}: {:?}",
                    e.sql.as_str()
                );
                let expected = match mode {
                    "simple" => (Protocol::Simple, false),
                    "extended" => (Protocol::Extended, false),
                    _ => (Protocol::Extended, true),
                };
                assert_eq!((e.protocol, e.named_statement), expected, "{mode}");
            }
            script.extend(matching);
        }
        assert!(execs.len() as u64 >= 7 * total);
        let connections: HashSet<u64> = script.iter().map(|e| e.connection_id).collect();
        assert_eq!(connections.len() as u64, CLIENTS, "{mode}");
        // Each client ran its transactions in order: per connection, the statements cycle
        // through the script.
        for id in connections {
            let order: Vec<String> = execs
                .iter()
                .filter(|e| e.connection_id == id)
                .map(|e| {
                    let word = e.sql.as_str().split_whitespace().next().unwrap();
                    word.trim_end_matches(';').to_owned()
                })
                .collect();
            let expected: Vec<&str> = [
                "BEGIN", "UPDATE", "SELECT", "UPDATE", "UPDATE", "INSERT", "END",
            ]
            .into_iter()
            .cycle()
            .take(7 * TXNS as usize)
            .collect();
            assert_eq!(order, expected, "{mode}: connection {id}");
        }
    }
    let history = pg.psql("SELECT count(*) FROM pgbench_history");
    assert_eq!(history.trim(), (3 * TXNS * CLIENTS).to_string());
}

// ---------------------------------------------------------------------------------------------
// tokio-postgres through the in-process proxy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pipelined_queries_on_one_connection() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let client = proxy.conn().connect().await.unwrap();
    let slow = client
        .prepare("SELECT pg_sleep(0.3)::text AS slept, $1::int AS n")
        .await
        .unwrap();
    let series = client
        .prepare("SELECT g, md5(g::text) FROM generate_series(1, $1::int) g")
        .await
        .unwrap();
    let echo = client.prepare("SELECT $1::text || '!' AS t").await.unwrap();
    assert!(proxy.executions().is_empty(), "preparing executes nothing");

    // Polled together, the four requests are all sent before the first one is answered.
    let (a, b, c, d) = tokio::join!(
        client.query(&slow, &[&7i32]),
        client.query(&series, &[&1000i32]),
        client.query(&echo, &[&"pipelined"]),
        client.query(&series, &[&3i32]),
    );
    let (a, b, c, d) = (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap());
    assert_eq!(
        (a.len(), a[0].get::<_, String>(0), a[0].get::<_, i32>(1)),
        (1, String::new(), 7)
    );
    assert_eq!(b.len(), 1000);
    assert_eq!(b[999].get::<_, i32>(0), 1000);
    assert_eq!(
        b[999].get::<_, String>(1),
        "a9b7ba70783b617e9998dc4dd82eb3c5"
    );
    assert_eq!(c[0].get::<_, String>(0), "pipelined!");
    assert_eq!(
        d.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    let execs = proxy.wait_for_executions(4, TIMEOUT);
    let series_sql = "SELECT g, md5(g::text) FROM generate_series(1, $1::int) g";
    assert_eq!(
        summary(&execs),
        [
            (
                "SELECT pg_sleep(0.3)::text AS slept, $1::int AS n".into(),
                "SELECT 1".into(),
                1,
                None
            ),
            (series_sql.into(), "SELECT 1000".into(), 1000, None),
            (
                "SELECT $1::text || '!' AS t".into(),
                "SELECT 1".into(),
                1,
                None
            ),
            (series_sql.into(), "SELECT 3".into(), 3, None),
        ]
    );
    assert!(execs
        .iter()
        .all(|e| e.connection_id == execs[0].connection_id));
    assert!(execs
        .iter()
        .all(|e| e.protocol == Protocol::Extended && e.named_statement));
    // Pipelined: the later requests reached the proxy while the first was still running.
    let first_done = execs[0].started + execs[0].duration;
    assert!(execs[0].duration >= Duration::from_millis(300));
    for e in &execs[1..] {
        assert!(
            e.started < first_done,
            "request sent only after the first completed"
        );
    }
    assert_ne!(execs[1].params_digest, execs[3].params_digest);
}

#[tokio::test]
async fn binary_results_of_several_types() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let proxied = proxy.conn().connect().await.unwrap();

    let sql = "SELECT $1::int8 AS i, $2::float8 AS f, $3::bytea AS b, $4::text[] AS arr, \
               $5::timestamptz AS ts, \
               '-12345678901234567890.000000000123456789'::numeric AS n, \
               '-12345678901234567890.000000000123456789'::numeric::text AS n_text, \
               '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid AS u, \
               '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid::text AS u_text, \
               'NaN'::float8 AS nan, '-infinity'::timestamptz AS minus_infinity, \
               ARRAY[[1, 2], [3, NULL]]::int4[] AS matrix, \
               '{\"k\": [1, 2.5, null]}'::jsonb AS j, \
               '2024-02-29'::date AS d, '1 year 2 mons 3 days 04:05:06.789'::interval AS iv, \
               NULL::text AS nothing";
    let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let array: Vec<Option<String>> = vec![
        Some("plain".into()),
        None,
        Some(String::new()),
        Some("with \"quotes\", commas and {braces}".into()),
        Some("ünïcödé ✓".into()),
    ];
    let ts = UNIX_EPOCH + Duration::from_micros(1_709_208_000_123_456);
    let i = i64::MIN + 1;
    let f = -1.25e-300_f64;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&i, &f, &all_bytes, &array, &ts];

    let d = direct.query_one(sql, &params).await.unwrap();
    let p = proxied.query_one(sql, &params).await.unwrap();
    // Values round-trip.
    assert_eq!(p.get::<_, i64>("i"), i);
    assert_eq!(p.get::<_, f64>("f"), f);
    assert_eq!(p.get::<_, Vec<u8>>("b"), all_bytes);
    assert_eq!(p.get::<_, Vec<Option<String>>>("arr"), array);
    assert_eq!(p.get::<_, SystemTime>("ts"), ts);
    assert_eq!(
        p.get::<_, String>("n_text"),
        "-12345678901234567890.000000000123456789"
    );
    assert_eq!(
        p.get::<_, String>("u_text"),
        "6ecd8c99-4036-403d-bf84-cf8400f67836"
    );
    assert!(p.get::<_, f64>("nan").is_nan());
    assert_eq!(p.get::<_, Option<String>>("nothing"), None);
    // Every column's binary representation is byte for byte the server's.
    assert_eq!(d.columns().len(), p.columns().len());
    for (k, (dc, pc)) in d.columns().iter().zip(p.columns()).enumerate() {
        assert_eq!((dc.name(), dc.type_()), (pc.name(), pc.type_()));
        assert_eq!(
            d.get::<_, Option<Raw>>(k),
            p.get::<_, Option<Raw>>(k),
            "column {}",
            dc.name()
        );
    }
    let numeric: Raw = p.get("n");
    assert!(numeric.0.len() > 8, "numeric sent in binary");
    assert_eq!(
        p.get::<_, Raw>("u").0,
        [
            0x6e, 0xcd, 0x8c, 0x99, 0x40, 0x36, 0x40, 0x3d, 0xbf, 0x84, 0xcf, 0x84, 0x00, 0xf6,
            0x78, 0x36
        ]
    );
    let execs = proxy.wait_for_executions(1, TIMEOUT);
    assert_eq!(
        summary(&execs),
        [(sql.to_owned(), "SELECT 1".to_owned(), 1, None)]
    );
    assert_ne!(execs[0].params_digest, 0);
}

#[tokio::test]
async fn prepared_statements_reused() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let client = proxy.conn().connect().await.unwrap();
    let add = client
        .prepare("SELECT $1::int8 + 1 AS next, $2::text AS label")
        .await
        .unwrap();
    let other = client
        .prepare_typed("SELECT $1 * 2", &[Type::INT4])
        .await
        .unwrap();
    let mut results = Vec::new();
    for (n, label) in [(1i64, "a"), (2, "b"), (1, "a"), (41, "c")] {
        let row = client.query_one(&add, &[&n, &label]).await.unwrap();
        results.push((row.get::<_, i64>(0), row.get::<_, String>(1)));
        let row = client.query_one(&other, &[&(n as i32)]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 2 * n as i32);
    }
    assert_eq!(
        results,
        [
            (2, "a".into()),
            (3, "b".into()),
            (2, "a".into()),
            (42, "c".into())
        ]
    );
    let execs = proxy.wait_for_executions(8, TIMEOUT);
    assert_eq!(execs.len(), 8);
    let adds: Vec<&Execution> = execs.iter().step_by(2).collect();
    let others: Vec<&Execution> = execs.iter().skip(1).step_by(2).collect();
    for e in &adds {
        assert_eq!(
            e.sql.as_str(),
            "SELECT $1::int8 + 1 AS next, $2::text AS label"
        );
        assert_eq!((e.tag.as_str(), e.rows, e.error), ("SELECT 1", 1, None));
        assert!(e.named_statement && e.protocol == Protocol::Extended);
    }
    assert!(others.iter().all(|e| e.sql.as_str() == "SELECT $1 * 2"));
    // Same parameters, same digest; different parameters, different digests.
    assert_eq!(adds[0].params_digest, adds[2].params_digest);
    assert_ne!(adds[0].params_digest, adds[1].params_digest);
    assert_ne!(adds[1].params_digest, adds[3].params_digest);

    // Dropped statements are closed; a new one under the same text still works and is seen.
    drop(add);
    drop(other);
    let again = client
        .prepare("SELECT $1::int8 + 1 AS next, $2::text AS label")
        .await
        .unwrap();
    let row = client.query_one(&again, &[&9i64, &"z"]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 10);
    let execs = proxy.wait_for_executions(9, TIMEOUT);
    assert_eq!(
        execs[8].sql.as_str(),
        "SELECT $1::int8 + 1 AS next, $2::text AS label"
    );
}

#[tokio::test]
async fn transaction_rolled_back() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let mut client = proxy.conn().connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
        .await
        .unwrap();
    client
        .execute("INSERT INTO accounts VALUES (1, 100)", &[])
        .await
        .unwrap();
    // tokio-postgres closes the statement it prepared for the INSERT when it is dropped
    // (Close, Sync): this round trip comes after it, so the clear() below comes after both.
    client.simple_query("SELECT 'flush'").await.unwrap();
    proxy.clear();

    let tx = client.transaction().await.unwrap();
    tx.execute(
        "UPDATE accounts SET balance = balance - $1 WHERE id = 1",
        &[&30i32],
    )
    .await
    .unwrap();
    tx.execute("INSERT INTO accounts VALUES ($1, $2)", &[&2i32, &30i32])
        .await
        .unwrap();
    let inside: i64 = tx
        .query_one("SELECT sum(balance)::int8 FROM accounts WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside, 30);
    tx.rollback().await.unwrap();

    // A failed transaction: the error, then everything refused until the rollback.
    let tx = client.transaction().await.unwrap();
    let dup = tx
        .execute("INSERT INTO accounts VALUES (1, 0)", &[])
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let aborted = tx.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    tx.rollback().await.unwrap();

    let rows = direct
        .query("SELECT id, balance FROM accounts ORDER BY id", &[])
        .await
        .unwrap();
    let rows: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows, [(1, 100)]);

    let execs = proxy.wait_for_executions(9, TIMEOUT);
    let tags: Vec<(String, Option<String>)> = execs
        .iter()
        .map(|e| (e.tag.as_str().to_owned(), e.error.map(|c| c.to_string())))
        .collect();
    let ok = |t: &str| (t.to_owned(), None);
    let failed = |c: &str| (String::new(), Some(c.to_owned()));
    assert_eq!(
        tags,
        [
            ok("START TRANSACTION"),
            ok("UPDATE 1"),
            ok("INSERT 0 1"),
            ok("SELECT 1"),
            ok("ROLLBACK"),
            ok("START TRANSACTION"),
            failed("23505"),
            failed("25P02"),
            ok("ROLLBACK"),
        ]
    );
    // The transaction status of every ReadyForQuery, as the server reported it: tokio-postgres
    // prepares each statement first (one more ReadyForQuery each).
    let statuses: String = proxy
        .ready_statuses()
        .iter()
        .map(|(_, s)| *s as char)
        .collect();
    assert_eq!(collapse_runs(&statuses), "TITEI", "{statuses}");
}

#[tokio::test]
async fn query_portal_with_a_row_limit() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let mut client = proxy.conn().connect().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT g, repeat('x', g) FROM generate_series(1, 10) g")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut chunks = Vec::new();
    let mut values = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 3).await.unwrap();
        chunks.push(rows.len() as u64);
        values.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
        if rows.len() < 3 {
            break;
        }
    }
    assert_eq!(chunks, [3, 3, 3, 1]);
    assert_eq!(values, (1..=10).collect::<Vec<_>>());
    tx.commit().await.unwrap();

    let execs = proxy.wait_for_executions(6, TIMEOUT);
    let sql = "SELECT g, repeat('x', g) FROM generate_series(1, 10) g";
    let portal_execs: Vec<(String, String, u64)> = execs
        .iter()
        .filter(|e| e.sql.as_str() == sql)
        .map(|e| (e.sql.as_str().to_owned(), e.tag.as_str().to_owned(), e.rows))
        .collect();
    assert_eq!(
        portal_execs,
        [
            (sql.to_owned(), "SUSPENDED".to_owned(), 3),
            (sql.to_owned(), "SUSPENDED".to_owned(), 3),
            (sql.to_owned(), "SUSPENDED".to_owned(), 3),
            (sql.to_owned(), "SELECT 1".to_owned(), 1),
        ]
    );
    assert_eq!(execs.first().unwrap().tag.as_str(), "START TRANSACTION");
    assert_eq!(execs.last().unwrap().tag.as_str(), "COMMIT");
    assert_eq!(execs.len(), 6);
}

#[tokio::test]
async fn queries_in_any_script_are_relayed_and_tracked() {
    // Characters of two, three and four bytes where the tracker checks for PREPARE and
    // DEALLOCATE (the first 7 to 22 bytes); once, one of them at byte 10 panicked the relay
    // thread and dropped every connection on it.
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let other = proxy.conn().connect().await.unwrap();
    let client = proxy.conn().connect().await.unwrap();
    let texts = ["日本語のテキスト", "€uro", "😀 smile", "ÿ"];
    for t in texts {
        let rows = client.simple_query(&format!("SELECT '{t}'")).await.unwrap();
        assert_eq!(simple_rows(&rows), [[Some(t.to_owned())]]);
    }
    let rows = other.simple_query("SELECT 'other'").await.unwrap();
    assert_eq!(simple_rows(&rows), [[Some("other".to_owned())]]);
    let execs = proxy.wait_for_executions(texts.len() + 1, TIMEOUT);
    let mut seen: Vec<String> = execs.iter().map(|e| e.sql.as_str().to_owned()).collect();
    seen.sort();
    let mut expected: Vec<String> = texts.iter().map(|t| format!("SELECT '{t}'")).collect();
    expected.push("SELECT 'other'".to_owned());
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn error_mid_pipeline_then_successful_queries() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let client = proxy.conn().connect().await.unwrap();
    let double = client.prepare("SELECT $1::int * 2").await.unwrap();
    let divide = client.prepare("SELECT 10 / $1::int").await.unwrap();
    let (a, b, c, d, e) = tokio::join!(
        client.query(&double, &[&21i32]),
        client.query(&divide, &[&0i32]),
        client.query(&double, &[&5i32]),
        client.simple_query("SELECT 'after' AS a; SELECT 1/0; SELECT 'never'"),
        client.query(&divide, &[&5i32]),
    );
    assert_eq!(a.unwrap()[0].get::<_, i32>(0), 42);
    assert_eq!(b.unwrap_err().code(), Some(&SqlState::DIVISION_BY_ZERO));
    assert_eq!(c.unwrap()[0].get::<_, i32>(0), 10);
    assert_eq!(d.unwrap_err().code(), Some(&SqlState::DIVISION_BY_ZERO));
    assert_eq!(e.unwrap()[0].get::<_, i32>(0), 2);
    // The connection carries on.
    let after = client.simple_query("SELECT 'still here'").await.unwrap();
    assert_eq!(simple_rows(&after), [[Some("still here".to_owned())]]);

    let execs = proxy.wait_for_executions(7, TIMEOUT);
    assert_eq!(
        summary(&execs),
        [
            ("SELECT $1::int * 2".into(), "SELECT 1".into(), 1, None),
            (
                "SELECT 10 / $1::int".into(),
                "".into(),
                0,
                Some("22012".into())
            ),
            ("SELECT $1::int * 2".into(), "SELECT 1".into(), 1, None),
            ("SELECT 'after' AS a".into(), "SELECT 1".into(), 1, None),
            ("SELECT 1/0".into(), "".into(), 0, Some("22012".into())),
            ("SELECT 10 / $1::int".into(), "SELECT 1".into(), 1, None),
            ("SELECT 'still here'".into(), "SELECT 1".into(), 1, None),
        ]
    );
    assert!(execs
        .iter()
        .all(|x| x.connection_id == execs[0].connection_id));
}

/// An extended-protocol batch with one Sync: after the error the server skips the rest up to
/// the Sync, and the proxy neither forwards anything extra nor records the skipped statements.
#[test]
fn error_inside_one_sync_batch_on_a_raw_socket() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let run_batch = |port: u16| -> Vec<(char, Vec<u8>)> {
        let mut conn = RawConn::connect(port);
        conn.startup("postgres", "app");
        let mut batch = Vec::new();
        // SELECT 1/0 fails at Bind (constants are folded when it is planned); the random()
        // one fails at Execute. After each error the server skips to the Sync.
        for group in [
            ["SELECT 1", "SELECT 1/0", "SELECT 3"],
            ["SELECT 4", "SELECT 1/(random() * 0)::int", "SELECT 6"],
        ] {
            for sql in group {
                let mut parse = vec![0]; // the unnamed statement
                parse.extend(sql.as_bytes());
                parse.extend([0, 0, 0]);
                batch.extend(frame(b'P', &parse));
                batch.extend(frame(b'B', b"\0\0\0\0\0\0\0\0"));
                batch.extend(frame(b'E', b"\0\0\0\0\0"));
            }
            batch.extend(frame(b'S', b""));
        }
        batch.extend(frame(b'Q', b"SELECT 'next'\0"));
        conn.send(&batch);
        let mut seen = Vec::new();
        let mut ready = 0;
        while ready < 3 {
            let (tag, body) = conn.read_message().unwrap().expect("EOF");
            ready += (tag == b'Z') as usize;
            // Error fields that differ between connections: none but the source position.
            let body = if tag == b'E' {
                let f = error_fields(&body);
                format!("{}|{}|{}", f[&'S'], f[&'C'], f[&'M']).into_bytes()
            } else {
                body
            };
            seen.push((tag as char, body));
        }
        conn.send(&frame(b'X', b""));
        seen
    };
    let direct = run_batch(pg.port());
    let proxied = run_batch(proxy.port());
    assert_eq!(direct, proxied);
    let tags: String = proxied.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        tags,
        ["12DC", "1E", "Z", "12DC", "12E", "Z", "TDCZ"].concat()
    );
    let execs = proxy.wait_for_executions(5, TIMEOUT);
    assert_eq!(
        summary(&execs),
        [
            ("SELECT 1".into(), "SELECT 1".into(), 1, None),
            ("SELECT 1/0".into(), "".into(), 0, Some("22012".into())),
            ("SELECT 4".into(), "SELECT 1".into(), 1, None),
            (
                "SELECT 1/(random() * 0)::int".into(),
                "".into(),
                0,
                Some("22012".into())
            ),
            ("SELECT 'next'".into(), "SELECT 1".into(), 1, None),
        ]
    );
}

#[tokio::test]
async fn pg_sleep_is_one_execution_timed_by_the_proxy() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let client = proxy.conn().connect().await.unwrap();
    let started = Instant::now();
    client.simple_query("SELECT pg_sleep(0.2)").await.unwrap();
    let elapsed = started.elapsed();
    let execs = proxy.executions();
    assert_eq!(execs.len(), 1, "{:?}", summary(&execs));
    let e = &execs[0];
    assert_eq!(
        (e.sql.as_str(), e.tag.as_str(), e.rows, e.error),
        ("SELECT pg_sleep(0.2)", "SELECT 1", 1, None)
    );
    assert!(
        e.duration >= Duration::from_millis(200) && e.duration < Duration::from_millis(300),
        "duration {:?}",
        e.duration
    );
    assert!(
        e.duration <= elapsed,
        "the proxy's time is inside the client's"
    );
}

#[tokio::test]
async fn listen_notify_across_two_connections() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let (listener, mut connection) = tokio_postgres::connect(&proxy.conn().dsn(), NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send((
                        n.process_id(),
                        n.channel().to_owned(),
                        n.payload().to_owned(),
                    ));
                }
                Ok(_) => {}
                Err(e) => panic!("listener connection failed: {e}"),
            }
        }
    });
    listener
        .batch_execute("LISTEN pgscope_a; LISTEN \"Channel B\"")
        .await
        .unwrap();
    let mut notifier = proxy.conn().connect().await.unwrap();
    let notifier_pid: i32 = notifier
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let long_payload: String = "ünïcödé ✓ ".repeat(450); // 7200 bytes: under the 8000 limit
    notifier
        .batch_execute("NOTIFY pgscope_a, 'hello'")
        .await
        .unwrap();
    let tx = notifier.transaction().await.unwrap();
    tx.execute("SELECT pg_notify('Channel B', $1)", &[&long_payload])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tx = notifier.transaction().await.unwrap();
    tx.batch_execute("NOTIFY pgscope_a, 'rolled back'")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    notifier
        .batch_execute("NOTIFY pgscope_a, 'last'")
        .await
        .unwrap();

    let mut received = Vec::new();
    while received.len() < 3 {
        let n = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .expect("timed out waiting for a notification")
            .expect("listener connection ended");
        received.push(n);
    }
    assert_eq!(
        received,
        [
            (notifier_pid, "pgscope_a".to_owned(), "hello".to_owned()),
            (notifier_pid, "Channel B".to_owned(), long_payload),
            (notifier_pid, "pgscope_a".to_owned(), "last".to_owned()),
        ]
    );
    // The listener was idle all along: the notifications came on their own.
    assert!(rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_through_the_proxy() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let client = Arc::new(proxy.conn().connect().await.unwrap());
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let token = client.cancel_token();
    let started = Instant::now();
    let sleeper = {
        let client = client.clone();
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(10)").await })
    };
    // Cancel only once the query runs: a cancel that arrives while the backend is idle is
    // (rightly) a no-op, and the sleep would then run its 10 s.
    let direct = &direct;
    eventually("the sleep to start", TIMEOUT, || async move {
        direct
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pid = $1 AND state = 'active' AND query = 'SELECT pg_sleep(10)'",
                &[&pid],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    })
    .await;
    let cancelled_at = Instant::now();
    token.cancel_query(NoTls).await.unwrap();
    let result = tokio::time::timeout(TIMEOUT, sleeper)
        .await
        .expect("the query was not cancelled")
        .unwrap();
    let err = result.expect_err("pg_sleep(10) completed");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(8));
    // The connection itself carries on.
    let row = client.query_one("SELECT 1::int", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    let execs = proxy.wait_for_executions(3, TIMEOUT);
    let sleep = execs
        .iter()
        .find(|e| e.sql.as_str() == "SELECT pg_sleep(10)")
        .unwrap();
    assert_eq!(sleep.error.map(|c| c.to_string()), Some("57014".to_owned()));
    assert!(sleep.duration < Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_bytea_round_trip() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let client = proxy.conn().connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)")
        .await
        .unwrap();
    let data = pseudo_random_bytes(10 * 1024 * 1024, 7);
    let inserted = client
        .execute("INSERT INTO blobs VALUES (1, $1)", &[&data])
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let back: Vec<u8> = client
        .query_one("SELECT data FROM blobs WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes read back through the proxy differ");
    // The server has exactly the bytes sent.
    let stored: Vec<u8> = direct
        .query_one("SELECT data FROM blobs WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stored == data, "the bytes stored differ");
    // The same through the simple protocol (text format).
    let hex = client
        .simple_query("SELECT md5(data), length(data) FROM blobs")
        .await
        .unwrap();
    let direct_hex = direct
        .simple_query("SELECT md5(data), length(data) FROM blobs")
        .await
        .unwrap();
    assert_eq!(simple_rows(&hex), simple_rows(&direct_hex));
    // A 10 MB simple Query: a frame the proxy reads whole before forwarding it.
    let literal: String = data[..5 * 1024 * 1024]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let big_query = format!("SELECT md5(decode('{literal}', 'hex')), length('{literal}')");
    assert!(big_query.len() > 20 * 1024 * 1024);
    let through = client.simple_query(&big_query).await.unwrap();
    let without = direct.simple_query(&big_query).await.unwrap();
    assert_eq!(simple_rows(&through), simple_rows(&without));
    assert_eq!(simple_rows(&through)[0][1].as_deref(), Some("10485760"));
    let execs = proxy.wait_for_executions(5, TIMEOUT);
    assert!(
        execs[4].sql.as_str() == big_query,
        "the recorded text differs"
    );
    assert_eq!(
        summary(&execs[1..3]),
        [
            (
                "INSERT INTO blobs VALUES (1, $1)".into(),
                "INSERT 0 1".into(),
                1,
                None
            ),
            (
                "SELECT data FROM blobs WHERE id = 1".into(),
                "SELECT 1".into(),
                1,
                None
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections() {
    const N: usize = 200;
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let all_connected = Arc::new(tokio::sync::Barrier::new(N + 1));
    let release = Arc::new(tokio::sync::Notify::new());
    let released = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..N {
        let conn = proxy.conn();
        let all_connected = all_connected.clone();
        let release = release.clone();
        let released = released.clone();
        tasks.push(tokio::spawn(async move {
            let client = conn.connect().await.unwrap();
            let n = i as i32;
            let row = client.query_one("SELECT $1::int + 1", &[&n]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), n + 1);
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get(0);
            all_connected.wait().await;
            // Hold the connection open until every other one is open too.
            while !released.load(Ordering::SeqCst) {
                let notified = release.notified();
                if released.load(Ordering::SeqCst) {
                    break;
                }
                notified.await;
            }
            let rows = client
                .simple_query(&format!("SELECT {n} AS i, repeat('x', {n})"))
                .await
                .unwrap();
            assert_eq!(
                simple_rows(&rows)[0][0].as_deref(),
                Some(n.to_string().as_str())
            );
            pid
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), all_connected.wait())
        .await
        .expect("200 clients did not all connect");
    assert_eq!(other_client_backends(&direct).await, N as i64);
    released.store(true, Ordering::SeqCst);
    release.notify_waiters();
    let mut pids = HashSet::new();
    for task in tasks {
        pids.insert(task.await.unwrap());
    }
    assert_eq!(pids.len(), N, "each client had its own backend");
    let execs = proxy.wait_for_executions(3 * N, TIMEOUT);
    assert_eq!(execs.len(), 3 * N);
    assert!(execs.iter().all(|e| e.error.is_none()));
    let per_connection = execs.iter().fold(HashMap::<u64, usize>::new(), |mut m, e| {
        *m.entry(e.connection_id).or_default() += 1;
        m
    });
    assert_eq!(per_connection.len(), N);
    assert!(per_connection.values().all(|&n| n == 3));
    // Every client is dropped (its task ended): the backends go away.
    let direct = &direct;
    eventually("no client backends left", TIMEOUT, || async move {
        other_client_backends(direct).await == 0
    })
    .await;
    proxy.wait_for_closed(N, TIMEOUT);
    // The gauge is lowered just after the sink hears `closed`.
    let stats = proxy.stats();
    eventually(
        "the connection gauge to fall to 0",
        TIMEOUT,
        || async move { stats.client_connections.load(Ordering::Relaxed) == 0 },
    )
    .await;
}

#[tokio::test]
async fn logins_pass_through_end_to_end() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    for role in [SCRAM, MD5, PASSWORD] {
        let client = proxy
            .conn()
            .with_role(role)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{} through the proxy: {e}", role.user));
        let user: String = client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(user, role.user);

        let wrong = |port: u16| {
            ConnInfo::new(port)
                .with_user(role.user, Some("wrong_password"))
                .dsn()
        };
        let via_proxy = common::connect(&wrong(proxy.port())).await.err().unwrap();
        let direct = common::connect(&wrong(pg.port())).await.err().unwrap();
        assert_eq!(
            via_proxy.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{via_proxy}"
        );
        let (p, d) = (
            via_proxy.as_db_error().unwrap(),
            direct.as_db_error().unwrap(),
        );
        assert_eq!(
            (p.severity(), p.message()),
            (d.severity(), d.message()),
            "{}",
            role.user
        );
        assert!(p.message().contains(role.user));
    }
    // Logging in (and failing to) runs no statement: only the three queries were recorded.
    let expected = (
        "SELECT current_user::text".to_owned(),
        "SELECT 1".to_owned(),
        1,
        None,
    );
    assert_eq!(summary(&proxy.executions()), vec![expected; 3]);
}

// ---------------------------------------------------------------------------------------------
// Connection lifetimes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_closes_the_upstream_connection() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let port = proxy.port();
    let (conn, pid) = tokio::task::spawn_blocking(move || {
        let mut conn = RawConn::connect(port);
        let startup = conn.startup("postgres", "app");
        let pid = backend_pid(&startup);
        (conn, pid)
    })
    .await
    .unwrap();
    assert!(backend_alive(&direct, pid).await);
    // Gone without a Terminate message.
    drop(conn);
    wait_backend_gone(&direct, pid, "the backend of the dropped client to exit").await;
    proxy.wait_for_closed(1, TIMEOUT);
    assert!(proxy.executions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_psql_closes_the_upstream_connection() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let dir = TempDir::new("psql-kill");
    let mut psql = psql_command(&proxy.conn(), dir.path())
        .env("PGAPPNAME", "pgscope_killed_psql")
        .args(["-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // psql is connected and waits for its script on stdin.
    let find = || async {
        direct
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgscope_killed_psql'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, i32>(0))
    };
    eventually("psql to connect", TIMEOUT, || async {
        find().await.is_some()
    })
    .await;
    let pid = find().await.unwrap();
    psql.kill().unwrap();
    psql.wait().unwrap();
    wait_backend_gone(&direct, pid, "the killed psql's backend to exit").await;
    proxy.wait_for_closed(1, TIMEOUT);
}

/// Terminate the backend of a raw connection made on `port`: every message the client then
/// reads, and how the stream ended.
async fn terminated_backend_as_seen_from(
    port: u16,
    direct: &Client,
) -> (Vec<String>, Option<io::ErrorKind>) {
    let (mut conn, pid) = tokio::task::spawn_blocking(move || {
        let mut conn = RawConn::connect(port);
        let pid = backend_pid(&conn.startup("postgres", "app"));
        (conn, pid)
    })
    .await
    .unwrap();
    let terminated: bool = direct
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    let (messages, error) = tokio::task::spawn_blocking(move || conn.read_to_end())
        .await
        .unwrap();
    let messages = messages
        .iter()
        .map(|(tag, body)| {
            let fields = error_fields(body);
            format!(
                "{} {:?} {:?} {:?}",
                *tag as char,
                fields.get(&'S'),
                fields.get(&'C'),
                fields.get(&'M')
            )
        })
        .collect();
    (messages, error.map(|e| e.kind()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_gone_closes_the_client_connection() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();

    // On the wire: the server's FATAL message, passed through, then EOF (not a hang).
    let (direct_view, direct_end) = terminated_backend_as_seen_from(pg.port(), &direct).await;
    let (proxied_view, proxied_end) = terminated_backend_as_seen_from(proxy.port(), &direct).await;
    assert_eq!(
        direct_view,
        [
            r#"E Some("FATAL") Some("57P01") Some("terminating connection due to administrator command")"#
        ]
    );
    assert_eq!(direct_end, None);
    assert_eq!(proxied_view, direct_view);
    assert_eq!(proxied_end, None, "the proxied stream did not end with EOF");
    proxy.wait_for_closed(1, TIMEOUT);

    // A tokio-postgres client sees its connection closed. (Whether its connection task
    // reports the FATAL message or just the close is racy inside tokio-postgres, directly
    // as well, so only the close is checked here; the raw check above covers the message.)
    let (client, connection) = tokio_postgres::connect(&proxy.conn().dsn(), NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(connection);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    direct
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let end = tokio::time::timeout(TIMEOUT, ended)
        .await
        .expect("the client connection was not closed")
        .unwrap();
    assert!(end.is_err(), "the connection ended without an error");
    let next = tokio::time::timeout(TIMEOUT, client.simple_query("SELECT 1"))
        .await
        .expect("a query on the closed connection hung");
    assert!(next.is_err());
    assert!(client.is_closed());
    proxy.wait_for_closed(2, TIMEOUT);
}

#[tokio::test]
async fn unreachable_upstream_gives_08006() {
    // Port 1 (tcpmux): nothing listens there, and nothing unprivileged can.
    let proxy = ProxyHandle::start(1);
    let started = Instant::now();
    let connected = tokio::time::timeout(TIMEOUT, proxy.conn().connect())
        .await
        .expect("connecting through the proxy hung");
    let Err(err) = connected else {
        panic!("connected to nothing");
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.code(), Some(&SqlState::CONNECTION_FAILURE), "{err}");
    let db = err.as_db_error().unwrap();
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("127.0.0.1:1"), "{}", db.message());
    assert!(
        db.message().to_lowercase().contains("connection refused"),
        "the reason is missing: {}",
        db.message()
    );
    assert_eq!(
        proxy
            .stats()
            .upstream_connect_errors
            .load(Ordering::Relaxed),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_08p01_and_others_carry_on() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = pg.conn().connect().await.unwrap();
    let port = proxy.port();

    // Another client keeps querying through the same proxy the whole time.
    let bystander = proxy.conn().connect().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let background = {
        let (stop, done) = (stop.clone(), done.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = done.load(Ordering::Relaxed) as i64;
                let row = bystander
                    .query_one("SELECT $1::int8 * 2", &[&n])
                    .await
                    .unwrap();
                assert_eq!(row.get::<_, i64>(0), 2 * n);
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let (messages, pids) = tokio::task::spawn_blocking(move || {
        let mut messages = Vec::new();
        // Startup phase: an 8-byte packet with an unknown request code.
        let mut conn = RawConn::connect(port);
        conn.send(&[0, 0, 0, 8, 0x12, 0x34, 0x56, 0x78]);
        messages.push(assert_protocol_violation(&mut conn, "unknown code"));
        // A length below 8.
        let mut conn = RawConn::connect(port);
        conn.send(&[0, 0, 0, 4]);
        messages.push(assert_protocol_violation(&mut conn, "length 4"));
        // A length over the 10000-byte startup limit.
        let mut conn = RawConn::connect(port);
        conn.send(&20_000u32.to_be_bytes());
        messages.push(assert_protocol_violation(&mut conn, "length 20000"));

        // After a successful startup: a frame whose length (2) cannot hold its own length word,
        // and one longer than any message the server accepts.
        let mut pids = Vec::new();
        for bad in [&b"Q\0\0\0\x02"[..], &b"Q\x7f\xff\xff\xff"[..]] {
            let mut conn = RawConn::connect(port);
            let startup = conn.startup("postgres", "app");
            pids.push(backend_pid(&startup));
            conn.send(&frame(b'Q', b"SELECT 1\0"));
            let tags: Vec<u8> = (0..4)
                .map(|_| conn.read_message().unwrap().unwrap().0)
                .collect();
            assert_eq!(tags, b"TDCZ");
            conn.send(bad);
            messages.push(assert_protocol_violation(&mut conn, "frame after startup"));
        }
        (messages, pids)
    })
    .await
    .unwrap();
    assert!(messages[0].contains("305419896"), "{messages:?}"); // 0x12345678
    assert!(
        messages[1].contains('4') && messages[2].contains("20000"),
        "{messages:?}"
    );
    assert!(messages[3].contains("length"), "{messages:?}");
    assert!(messages[4].contains("too large"), "{messages:?}");
    // The upstream connections of the malformed clients are closed too.
    for pid in pids {
        wait_backend_gone(&direct, pid, "the malformed client's backend to exit").await;
    }
    stop.store(true, Ordering::Relaxed);
    background.await.unwrap();
    assert!(done.load(Ordering::Relaxed) > 0);
    // New clients still get in.
    let fresh = proxy.conn().connect().await.unwrap();
    let row = fresh.query_one("SELECT 'fine'::text", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "fine");
    assert_eq!(proxy.panics(), 0);
}

/// A client that skips the startup packet and sends a Query straight away: the proxy reads
/// only the length word (`Q\0\0\0` is far over the limit) and rejects it. The client must
/// still read the ErrorResponse and then a clean EOF: closing a socket with unread input makes
/// the kernel send a reset, which a client may see instead of the error (on some systems the
/// reset discards the error it has not read yet).
#[test]
fn malformed_startup_with_more_bytes_behind_it_gets_08p01_then_eof() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    for _ in 0..3 {
        let mut conn = RawConn::connect(proxy.port());
        conn.send(&frame(b'Q', b"SELECT 1\0"));
        let message = assert_protocol_violation(&mut conn, "a Query instead of a startup packet");
        assert!(message.contains("length"), "{message}");

        let mut conn = RawConn::connect(proxy.port());
        let mut packet = 20_000u32.to_be_bytes().to_vec();
        packet.resize(20_000, b'x');
        conn.send(&packet);
        assert_protocol_violation(&mut conn, "a 20000-byte startup packet");
    }
}

/// A frame the tracker reads is buffered whole, but the buffer grows as the frame's bytes come,
/// not to the size its header announces: four connections that send a Query header saying
/// 1 GiB and then a few bytes (before logging in, or after) made the proxy allocate and zero
/// 1 GiB each.
#[test]
fn an_announced_message_size_is_not_allocated_up_front() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let rss_mib = || rss_kib(proxy.pid()) / 1024;
    let before = rss_mib();
    let mut conns = Vec::new();
    for logged_in in [false, false, true, true] {
        let mut conn = RawConn::connect(proxy.port());
        if logged_in {
            conn.startup("postgres", "app");
        } else {
            let mut body = 196_608u32.to_be_bytes().to_vec();
            body.extend(b"user\0postgres\0database\0app\0\0");
            let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            packet.extend(body);
            conn.send(&packet);
        }
        let mut header = vec![b'Q'];
        header.extend(0x3fff_fff0u32.to_be_bytes());
        header.extend(b"SELECT 1");
        conn.send(&header);
        conns.push(conn);
    }
    // The old code had grown its buffers well within this time.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let now = rss_mib();
        assert!(
            now < before + 64,
            "resident memory grew from {before} to {now} MiB"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The proxy still serves others.
    let mut other = RawConn::connect(proxy.port());
    other.startup("postgres", "app");
    drop(conns);
}

/// A process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// How many file descriptors a process has open.
fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Django's default (`CONN_MAX_AGE = 0`) opens a connection per request, so a production
/// proxy sees connections come and go by the million: each must give back its sockets, its
/// buffers and the observer's state for it. 3 × 150 connections through the real binary, each
/// running statements with parameters (so the N+1 detector keeps state for it), one in three
/// ending with Terminate, one in three next to a raw connection dropped without a word, one in
/// three leaving while its query still runs. After each round the proxy counts no open client
/// and holds no socket of them; at the end it is back to the descriptors it held before, and
/// its resident memory has stopped growing after the first round (a connection's buffers
/// alone are 80 KiB, so a leak of them would add 12 MiB a round).
#[test]
fn connection_churn_leaves_no_descriptor_or_memory_behind() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let conn = proxy.conn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let round = |n: usize| {
        rt.block_on(async {
            for i in 0..n {
                let (client, connection) = tokio_postgres::connect(&conn.dsn(), NoTls)
                    .await
                    .expect("connect through the proxy");
                // Driven here, so that the round ends only when this side has closed.
                let driver = tokio::spawn(connection);
                for k in 0..4i32 {
                    let row = client
                        .query_one("SELECT $1::int + 1", &[&(k + i as i32)])
                        .await
                        .unwrap();
                    assert_eq!(row.get::<_, i32>(0), k + i as i32 + 1);
                }
                match i % 3 {
                    0 => drop(client), // Terminate
                    1 => {
                        // The socket closed with no Terminate: the client process died.
                        let mut raw = RawConn::connect(proxy.port());
                        raw.startup("postgres", "app");
                        raw.send(&frame(b'Q', b"SELECT 1\0"));
                        drop(raw);
                        drop(client);
                    }
                    _ => {
                        // Leaving while the server still works on its query.
                        let pending = tokio::spawn(async move {
                            let _ = client.simple_query("SELECT pg_sleep(0.02)").await;
                        });
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        pending.abort();
                        let _ = pending.await;
                    }
                }
                let _ = driver.await.expect("the connection's task");
            }
        })
    };
    let settled = || all_connections_closed(&proxy, pg.port());
    // Descriptors close asynchronously (an HTTP connection just served may still be open), so
    // the count must come back down to where it was, not be equal at one instant.
    let fds_back_to = |before: usize| {
        let deadline = Instant::now() + TIMEOUT;
        while open_fds(proxy.pid()) > before {
            assert!(
                Instant::now() < deadline,
                "descriptors leaked: {} open, {before} before",
                open_fds(proxy.pid())
            );
            thread::sleep(Duration::from_millis(20));
        }
    };
    round(20);
    settled();
    let fds = open_fds(proxy.pid());
    round(150);
    settled();
    let after_first = rss_kib(proxy.pid());
    for _ in 0..2 {
        round(150);
        settled();
    }
    let after_third = rss_kib(proxy.pid());
    fds_back_to(fds);
    assert!(
        after_third < after_first + 8 * 1024,
        "resident memory grew from {after_first} to {after_third} KiB over 300 connections"
    );
}

/// Wait until every relayed connection has ended: the proxy counts no client open and holds
/// no socket of one. Panics after [`TIMEOUT`] with what is left.
fn all_connections_closed(proxy: &ProxyProcess, upstream: u16) {
    let http = proxy.http_port().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let metrics = common::get_ok(http, "/metrics");
        let open = common::metric(&metrics, "pgscope_client_connections");
        let sockets = relay_sockets(proxy.pid(), proxy.port(), upstream);
        if open == Some(0.0) && sockets.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clients still open: {open:?}, sockets of relayed connections: {sockets:?}\n{}",
            proxy.stderr_so_far()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Clients that send a query and vanish at once, many at a time: the server's answer and the
/// client's end reach the relay together. Each connection must still close, with its upstream
/// (on io_uring, a recv linked behind the answer's send was issued after the connection's
/// cancel had run, and waited for the idle server forever, holding the backend).
#[test]
fn clients_that_vanish_after_a_query_leave_nothing_open() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let port = proxy.port();
    let until = Instant::now() + Duration::from_secs(3);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < until {
                    let mut raw = RawConn::connect(port);
                    raw.startup("postgres", "app");
                    raw.send(&frame(b'Q', b"SELECT 1\0"));
                    drop(raw);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 0);
    all_connections_closed(&proxy, pg.port());
}

/// The server restarts (fast shutdown) under 30 clients, 10 of them in the middle of a query:
/// each gets the server's own FATAL (57P01, `admin_shutdown`) and then its end, the proxy
/// holds nothing of them afterwards, and once the server is back new clients get in.
#[test]
fn a_server_restart_ends_every_client_and_new_ones_get_in() {
    let mut pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let conn = proxy.conn();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (clients, drivers, queries) = rt.block_on(async {
        let mut clients = Vec::new();
        let mut drivers = Vec::new();
        for _ in 0..30 {
            let (client, connection) = tokio_postgres::connect(&conn.dsn(), NoTls)
                .await
                .expect("connect through the proxy");
            drivers.push(tokio::spawn(connection));
            client.simple_query("SELECT 1").await.unwrap();
            clients.push(Arc::new(client));
        }
        let queries: Vec<_> = clients[..10]
            .iter()
            .map(|c| {
                let c = c.clone();
                tokio::spawn(async move { c.simple_query("SELECT pg_sleep(60)").await })
            })
            .collect();
        // Every query has reached its backend before the server goes down.
        let direct = common::connect(&ConnInfo::new(pg.port()).dsn())
            .await
            .unwrap();
        eventually("the 10 queries to run", TIMEOUT, || async {
            let row = direct
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'",
                    &[],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 10
        })
        .await;
        (clients, drivers, queries)
    });
    pg.restart();
    rt.block_on(async {
        for query in queries {
            let err = tokio::time::timeout(TIMEOUT, query)
                .await
                .expect("a query still waits after the restart")
                .unwrap()
                .expect_err("a query survived the restart");
            assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{err}");
        }
        for (i, driver) in drivers.into_iter().enumerate() {
            let end = tokio::time::timeout(TIMEOUT, driver)
                .await
                .expect("a connection is still open after the restart")
                .unwrap()
                .expect_err("a connection ended without an error");
            if i >= 10 {
                // An idle client reads the FATAL as its connection's end; the busy ones got
                // it as their query's error (above), then the end of the stream.
                assert_eq!(end.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{end}");
            }
        }
        assert!(clients.iter().all(|c| c.is_closed()));
    });
    all_connections_closed(&proxy, pg.port());
    rt.block_on(async {
        let client = conn
            .connect()
            .await
            .expect("a new client after the restart");
        let row = client.query_one("SELECT 41 + 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
    });
}

/// The TCP sockets process `pid` holds for relayed connections, as `state local->remote`
/// (ports): those accepted on port `listen` (not the listening socket) and those connected to
/// port `upstream`. A socket its peer has reset is no longer in the kernel's table and is not
/// listed; the proxy's count of open clients still tells of its connection.
fn relay_sockets(pid: u32, listen: u16, upstream: u16) -> Vec<String> {
    let inodes: HashSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|link| {
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let table = fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote) = (port(fields.get(1)?)?, port(fields.get(2)?)?);
            let (state, inode) = (*fields.get(3)?, *fields.get(9)?);
            const LISTEN: &str = "0A";
            let relayed = (local == listen && state != LISTEN) || remote == upstream;
            (relayed && inodes.contains(inode)).then(|| format!("{state} {local}->{remote}"))
        })
        .collect()
}

/// What a client read from a connection the proxy closed: whole messages only, the last one
/// possibly cut short by the close; an ErrorResponse only as the last message.
fn check_framing(bytes: &[u8], allowed: &[u8]) -> Result<String, String> {
    let mut pos = 0;
    let mut count = 0;
    while pos < bytes.len() {
        if bytes.len() - pos < 5 {
            return Ok(format!("{count} messages, then a header cut by the close"));
        }
        let tag = bytes[pos];
        let len = u32::from_be_bytes([
            bytes[pos + 1],
            bytes[pos + 2],
            bytes[pos + 3],
            bytes[pos + 4],
        ]);
        if (!allowed.contains(&tag) && tag != b'E') || !(4..1_000_000).contains(&len) {
            let around = &bytes[pos.saturating_sub(20)..(pos + 60).min(bytes.len())];
            return Err(format!(
                "garbage at byte {pos} of {} after {count} messages: {:?}",
                bytes.len(),
                String::from_utf8_lossy(around)
            ));
        }
        let end = pos + 1 + len as usize;
        if end > bytes.len() {
            return Ok(format!("{count} messages, then one cut by the close"));
        }
        if tag == b'E' {
            let fields = error_fields(&bytes[pos + 5..end]);
            if end != bytes.len() {
                return Err(format!(
                    "an ErrorResponse {fields:?} was not the last message"
                ));
            }
            if fields.get(&'C').map(String::as_str) != Some("08P01") {
                return Err(format!("unexpected error {fields:?}"));
            }
            return Ok(format!("{count} messages, then 08P01"));
        }
        pos = end;
        count += 1;
    }
    Ok(format!("{count} messages, then EOF"))
}

/// What backend `pid` waits for (`pg_stat_activity.wait_event`), empty if nothing.
fn wait_event(pg: &PgServer, pid: i32) -> String {
    pg.psql(&format!(
        "SELECT wait_event FROM pg_stat_activity WHERE pid = {pid}"
    ))
    .trim()
    .to_owned()
}

/// Poll `done` every 10 ms until it holds; panics with `what` after [`TIMEOUT`].
fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until backend `pid` is blocked writing to its client (the proxy).
fn wait_until_blocked_writing(pg: &PgServer, pid: i32) {
    poll_until("the server never blocked writing to the proxy", || {
        wait_event(pg, pid) == "ClientWrite"
    });
}

/// Rows of about 100 bytes each in the stalled-client tests: 400 000 of them, about 40 MB,
/// are more than the kernel's socket buffers on both sides of the proxy.
const STALLED_ROWS: usize = 400_000;

/// A connection through `proxy` that asked for a large result and reads none of it, once the
/// server is blocked writing to the proxy (which is blocked writing to this client); with its
/// backend's pid.
fn stalled_on_a_large_result(pg: &PgServer, proxy: &ProxyHandle) -> (RawConn, i32) {
    let mut stalled = RawConn::connect(proxy.port());
    let pid = backend_pid(&stalled.startup("postgres", "app"));
    stalled.send(&frame(
        b'Q',
        format!("SELECT i, repeat('x', 90) FROM generate_series(1, {STALLED_ROWS}) i\0").as_bytes(),
    ));
    wait_until_blocked_writing(pg, pid);
    (stalled, pid)
}

/// A malformed frame arrives while the proxy is busy writing a large result to a client that
/// does not read. The proxy may tell the client about it only between two server messages:
/// an ErrorResponse spliced into the middle of a DataRow corrupts the stream. Several tries,
/// since where the proxy's write is cut differs from one to the next.
#[test]
fn malformed_frame_during_a_large_result_never_splices_into_a_message() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let mut conn = RawConn::connect(proxy.port());
        let pid = backend_pid(&conn.startup("postgres", "app"));
        // Rows of no columns (7 bytes each), streamed as they are made.
        conn.send(&frame(
            b'Q',
            b"SELECT FROM (SELECT generate_series(1, 100000000)) s\0",
        ));
        // Wait until the server is blocked writing to the proxy: the proxy is then stuck
        // writing to this client, which reads nothing.
        wait_until_blocked_writing(&pg, pid);
        conn.send(b"Q\0\0\0\x02");
        let mut received = Vec::new();
        conn.stream
            .read_to_end(&mut received)
            .expect("the proxy closed the connection uncleanly");
        match check_framing(&received, b"TD") {
            Ok(outcome) => outcomes.push(outcome),
            Err(corruption) => panic!(
                "the client's stream is corrupt: {corruption}\n(earlier tries: {outcomes:?})"
            ),
        }
    }
}

/// A client that stops reading in the middle of a large result holds up its own connection
/// only: the proxy stops reading that server connection (back-pressure, no queue), another
/// client on the same relay thread keeps getting answers, and when the first client reads again
/// it gets every byte of its result, in order.
#[test]
fn a_client_that_stops_reading_stalls_only_its_own_connection() {
    let pg = PgServer::start();
    let proxy = one_relay_thread(pg.port());
    let (mut stalled, pid) = stalled_on_a_large_result(&pg, &proxy);

    let mut other = RawConn::connect(proxy.port());
    other.startup("postgres", "app");
    for i in 0..50 {
        other.send(&frame(b'Q', format!("SELECT {i}\0").as_bytes()));
        let mut rows = Vec::new();
        loop {
            let (tag, body) = other
                .read_message()
                .expect("the other client's query stalled or failed")
                .expect("EOF on the other client");
            match tag {
                b'D' => rows.push(body),
                b'Z' => break,
                b'E' => panic!("error: {:?}", error_fields(&body)),
                _ => {}
            }
        }
        assert_eq!(rows.len(), 1);
        assert!(rows[0].ends_with(i.to_string().as_bytes()), "{:?}", rows[0]);
    }
    // Still stalled: the server is still waiting for the proxy to take more.
    assert_eq!(wait_event(&pg, pid), "ClientWrite");

    stalled.send(&frame(b'X', b""));
    let (messages, err) = stalled.read_to_end();
    assert!(err.is_none(), "the stream ended uncleanly: {err:?}");
    let mut next = 1;
    for (tag, body) in &messages {
        if *tag == b'D' {
            // Two text columns: the row number, then 90 x's.
            let n = u32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
            let i: usize = std::str::from_utf8(&body[6..6 + n])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(i, next, "rows out of order or lost");
            next += 1;
        }
    }
    assert_eq!(next - 1, STALLED_ROWS);
    let tags: Vec<u8> = messages
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t != b'D')
        .collect();
    assert_eq!(tags, b"TCZ", "{:?}", String::from_utf8_lossy(&tags));
    let complete = &messages[messages.len() - 2].1;
    assert_eq!(
        complete.as_slice(),
        format!("SELECT {STALLED_ROWS}\0").as_bytes()
    );
}

/// Wait until backend `pid` has exited.
fn wait_until_gone(pg: &PgServer, pid: i32, what: &str) {
    poll_until(&format!("{what}: backend {pid} is still there"), || {
        pg.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        ))
        .trim()
            == "0"
    });
}

/// A client that vanishes while the proxy is blocked sending it a large result (its socket
/// closed with unread data, so the proxy's send fails): the connection ends on both sides,
/// and the other connection of the same relay thread goes on.
#[test]
fn a_client_gone_in_the_middle_of_a_stalled_result_ends_its_connection() {
    let pg = PgServer::start();
    let proxy = one_relay_thread(pg.port());
    let mut other = RawConn::connect(proxy.port());
    other.startup("postgres", "app");
    let (stalled, pid) = stalled_on_a_large_result(&pg, &proxy);
    drop(stalled);
    wait_until_gone(&pg, pid, "the vanished client's connection");
    proxy.wait_for_closed(1, TIMEOUT);
    the_other_connection_goes_on(&mut other, &proxy);
}

/// A proxy with one relay thread (the default is one per CPU), so that every connection of a
/// test shares it: what stalls or fails on one connection must not hold up the others.
fn one_relay_thread(upstream_port: u16) -> ProxyHandle {
    ProxyHandle::start_with(ProxyConfig {
        workers: 1,
        ..ProxyHandle::config(upstream_port)
    })
}

/// `other`, logged in through `proxy`, still gets an answer, and is the only client left.
fn the_other_connection_goes_on(other: &mut RawConn, proxy: &ProxyHandle) {
    other.send(&frame(b'Q', b"SELECT 42\0"));
    let mut tags = Vec::new();
    while let Some((tag, body)) = other.read_message().expect("the other client failed") {
        tags.push(tag);
        if tag == b'D' {
            assert!(body.ends_with(b"42"), "{body:?}");
        }
        if tag == b'Z' {
            break;
        }
    }
    assert_eq!(tags, b"TDCZ");
    assert_eq!(proxy.stats().client_connections.load(Ordering::Relaxed), 1);
}

/// The server stops reading a client's messages (a `pg_sleep` is under way) while the client
/// goes on sending queries, one at a time, until the proxy is stuck sending to the server
/// (the client's own writes then block). The backend is terminated, so that send fails. On
/// io_uring most such sends have the client's next read linked behind them and post a
/// completion only when they fail, in place of the read's (a send of a read that reached past
/// the first 4 KiB of the buffer has nothing linked: a fifth of them with these queries, so
/// three connections are stuck one after the other). Each connection must end on both sides,
/// and another connection of the same relay thread go on.
#[test]
fn a_send_stuck_on_a_server_that_is_then_terminated_ends_its_connection() {
    let pg = PgServer::start();
    let proxy = one_relay_thread(pg.port());
    let mut other = RawConn::connect(proxy.port());
    other.startup("postgres", "app");
    // About 1 KB, and paced, so that the proxy reads each query on its own.
    let query = frame(
        b'Q',
        format!("SELECT 1 /* {} */\0", "x".repeat(1000)).as_bytes(),
    );
    for round in 1..=3 {
        let mut stuck = RawConn::connect(proxy.port());
        let pid = backend_pid(&stuck.startup("postgres", "app"));
        stuck.send(&frame(b'Q', b"SELECT pg_sleep(60)\0"));
        poll_until("the backend never slept", || {
            wait_event(&pg, pid) == "PgSleep"
        });
        stuck.stream.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let (mut written, mut blocked_since) = (0, None);
        loop {
            assert!(Instant::now() < deadline, "the proxy never stopped reading");
            match stuck.stream.write(&query[written..]) {
                Ok(n) => {
                    blocked_since = None;
                    written = (written + n) % query.len();
                    if written == 0 {
                        thread::sleep(Duration::from_micros(50));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(300) {
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("writing to the proxy failed: {e}"),
            }
        }
        let terminated = pg.psql(&format!("SELECT pg_terminate_backend({pid})"));
        assert_eq!(terminated.trim(), "t");
        stuck.stream.set_nonblocking(false).unwrap();
        let mut rest = Vec::new();
        if let Err(e) = stuck.stream.read_to_end(&mut rest) {
            // The proxy closes with the client's queries unread: a reset, not a timeout.
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        }
        proxy.wait_for_closed(round, TIMEOUT);
    }
    the_other_connection_goes_on(&mut other, &proxy);
}

/// Shutdown cuts a connection whose result is stalled on a client that does not read (the
/// proxy is blocked sending to it) once the grace period is over: `serve` returns, and the
/// backend ends.
#[test]
fn shutdown_cuts_a_connection_stalled_on_a_large_result() {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let (stalled, pid) = stalled_on_a_large_result(&pg, &proxy);
    let started = Instant::now();
    proxy.shutdown().expect("serve failed");
    let took = started.elapsed();
    // The test configuration's grace is 2 s.
    assert!(
        took >= Duration::from_millis(1900),
        "cut after {took:?}, before the grace"
    );
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    wait_until_gone(&pg, pid, "the cut connection");
    drop(stalled);
}

/// Send 8-byte encryption requests (`codes`) and read the one-byte answer to each, then log
/// in unencrypted.
fn encryption_answers(port: u16, codes: &[u32]) -> Vec<u8> {
    let mut conn = RawConn::connect(port);
    let mut answers = Vec::new();
    for code in codes {
        let mut packet = 8u32.to_be_bytes().to_vec();
        packet.extend(code.to_be_bytes());
        conn.send(&packet);
        let mut answer = [0u8; 1];
        conn.stream.read_exact(&mut answer).unwrap();
        answers.push(answer[0]);
    }
    let startup = conn.startup("postgres", "app");
    assert_eq!(startup.last().unwrap().0, b'Z');
    conn.send(&frame(b'X', b""));
    answers
}

/// An SSLRequest is declined with `N`, as this server (which has no TLS) does, and the client
/// carries on unencrypted. A GSSENCRequest is declined too: the server here would accept it
/// (`G`), but the proxy must see the traffic, so it never lets a client encrypt with GSSAPI.
#[test]
fn encryption_requests_are_declined() {
    const SSL: u32 = 80_877_103;
    const GSSENC: u32 = 80_877_104;
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let direct = encryption_answers(pg.port(), &[SSL]);
    assert_eq!(direct, b"N");
    assert_eq!(encryption_answers(proxy.port(), &[SSL]), direct);
    // libpq's order when it tries both: GSSAPI first, then TLS.
    assert_eq!(encryption_answers(proxy.port(), &[GSSENC, SSL]), b"NN");
    // libpq with sslmode=prefer asks for TLS first, then goes on without it.
    let dir = TempDir::new("sslmode");
    let out = run(
        psql_command(&proxy.conn(), dir.path())
            .env("PGSSLMODE", "prefer")
            .args([
                "-A",
                "-t",
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ]),
        TIMEOUT,
    )
    .assert_success();
    assert_eq!(out.stdout.trim(), "f");
}

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

/// Has the process exited (a zombie not yet reaped counts as exited)?
fn process_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesized command name, is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn pgscope_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgscope"));
    common::remove_env_prefix(&mut cmd, "PGSCOPE_");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_exits_when_the_last_connection_closes() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let client = proxy.conn().connect().await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    assert!(common::is_listening(proxy.port()));
    proxy.signal(SIGTERM);
    let port = proxy.port();
    eventually(
        "pgscope to close its listening socket",
        TIMEOUT,
        || async move { !common::is_listening(port) },
    )
    .await;
    // No new connections…
    let refused = TcpStream::connect(("127.0.0.1", proxy.port()));
    assert!(
        refused.is_err(),
        "pgscope still accepts connections after SIGTERM"
    );
    assert!(proxy.conn().connect().await.is_err());
    // …but the open one carries on, and the process waits for it (the grace is 30 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = client
        .query_one("SELECT 'still served'::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "still served");
    assert!(
        process_running(proxy.pid()),
        "pgscope exited with a connection open"
    );
    let closed_at = Instant::now();
    drop(client);
    let output = tokio::task::spawn_blocking(move || proxy.wait(TIMEOUT))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output}");
    assert!(closed_at.elapsed() < Duration::from_secs(10), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cuts_idle_connections_after_the_grace_period() {
    let pg = PgServer::start();
    let direct = pg.conn().connect().await.unwrap();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--shutdown-grace", "1s"]);
    let client = proxy.conn().connect().await.unwrap();
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let signalled = Instant::now();
    proxy.signal(SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Within the grace period the connection still works.
    client.simple_query("SELECT 'in grace'").await.unwrap();
    let output = tokio::task::spawn_blocking(move || proxy.wait(TIMEOUT))
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert_eq!(output.status.code(), Some(0), "{output}");
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the grace"
    );
    assert!(took < Duration::from_secs(8), "exited after {took:?}");
    let next = tokio::time::timeout(TIMEOUT, client.simple_query("SELECT 1"))
        .await
        .expect("a query on the cut connection hung");
    assert!(next.is_err(), "the connection outlived pgscope");
    wait_backend_gone(&direct, pid, "the cut connection's backend to exit").await;
}

/// `--relay-io`: each loop relays, and the log says which one runs. `io_uring` on a kernel
/// (or under a seccomp profile) without it must fail to start with exit code 1, naming it.
/// Without `--workers` there is one relay thread per CPU, and the same line says how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_relay_io_relays_and_says_which_it_uses() {
    let pg = PgServer::start();
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (flag, expect) in [
        ("epoll", &["io=\"epoll\""][..]),
        ("io_uring", &["io=\"io_uring\""][..]),
        ("auto", &["io=\"io_uring\"", "io=\"epoll\""][..]),
    ] {
        let proxy = match ProxyProcess::try_start_with_args(pg.port(), &["--relay-io", flag]) {
            Ok(proxy) => proxy,
            Err(out) => {
                assert_eq!(flag, "io_uring", "--relay-io {flag} did not start: {out}");
                assert_eq!(out.status.code(), Some(1), "{out}");
                assert!(
                    out.stderr
                        .contains("--relay-io io_uring: io_uring is not available"),
                    "{out}"
                );
                continue;
            }
        };
        let client = proxy.conn().connect().await.unwrap();
        let rows = client
            .query(
                "SELECT g, repeat('x', g) FROM generate_series(1, 2000) g",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2000, "--relay-io {flag}");
        assert_eq!(rows[1999].get::<_, String>(1).len(), 2000);
        drop(client);
        let out = tokio::task::spawn_blocking(move || proxy.terminate())
            .await
            .unwrap();
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("relay threads started"))
            .unwrap_or_else(|| panic!("--relay-io {flag}: no start line: {out}"));
        assert!(
            expect.iter().any(|e| line.contains(e)),
            "--relay-io {flag}: {line}"
        );
        assert!(
            line.contains(&format!("threads={cpus} ")),
            "--relay-io {flag}: not one relay thread per CPU ({cpus}): {line}"
        );
    }
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = run(pgscope_command().arg("--bogus-flag"), TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.only_stderr_line().contains("--bogus-flag"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

/// A runtime failure exits 1 with one line naming it; under `--log-format json` that line is
/// a JSON log record like every other.
#[test]
fn listen_address_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for format in ["text", "json"] {
        let http = free_port();
        let out = run(
            pgscope_command().args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                "127.0.0.1:1",
                "--http-listen",
                &format!("127.0.0.1:{http}"),
                "--log-format",
                format,
            ]),
            TIMEOUT,
        );
        assert_eq!(out.status.code(), Some(1), "{out}");
        let line = out.only_stderr_line();
        if format == "json" {
            let record: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
            assert_eq!(record["level"], "ERROR", "{out}");
            let error = record["fields"]["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("--listen") && error.contains(&port.to_string()),
                "{out}"
            );
        } else {
            assert!(line.starts_with("pgscope: cannot listen"), "{out}");
            assert!(line.contains(&port.to_string()), "{out}");
        }
    }
    drop(taken);
}

/// A malformed `--upstream` (from the flag or its variable) is a bad flag: exit 2 with one line
/// naming it, before listening; a URL's password is never shown.
#[test]
fn malformed_upstream_exits_2_with_one_line() {
    let cases = [
        ("postgres://u:pw-secret@[::1/db", "']'"),
        ("postgres://u:pw-secret@h1:5432,h2:5433/db", "one server"),
        ("a b:5432", "white space"),
        ("postgres://u:pw-secret@host:5432:99/db", "':'"),
        ("postgres://u:pw-secret@%2Ftmp%2Fsock/db", "TCP only"),
    ];
    for (value, why) in cases {
        for from_env in [false, true] {
            let mut cmd = pgscope_command();
            cmd.args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]);
            if from_env {
                cmd.env("PGSCOPE_UPSTREAM", value);
            } else {
                cmd.args(["--upstream", value]);
            }
            let out = run(&mut cmd, Duration::from_secs(10));
            assert_eq!(out.status.code(), Some(2), "{value}: {out}");
            let line = out.only_stderr_line();
            assert!(line.contains("--upstream"), "{value}: {out}");
            assert!(line.contains(why), "{value}: {out}");
            assert_eq!(
                line.contains("PGSCOPE_UPSTREAM"),
                from_env,
                "{value}: {out}"
            );
            assert!(!line.contains("secret"), "{value}: {out}");
            assert!(out.stdout.is_empty(), "{value}: {out}");
        }
    }
}
