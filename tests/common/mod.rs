//! The integration-test harness: real PostgreSQL servers, real clients and the proxy, each
//! started by the test that needs it and torn down when the test drops it. No mocks.
//!
//! Every test file starts with `mod common;` and uses what it needs:
//!
//! - [`PgServer`]: a throwaway PostgreSQL cluster on a free port of 127.0.0.1 (about 0.2 s to
//!   start), copied from a template that is built once (initdb + roles + database, about
//!   1.5 s) and cached in cargo's target folder. It has the superuser `postgres` (trust), `scram_user`/`scram_pass`
//!   (SCRAM-SHA-256), `md5_user`/`md5_pass` (md5), `pw_user`/`pw_pass` (cleartext password)
//!   and the database `app`.
//! - [`ConnInfo`]: where a client connects (server or proxy), as a DSN, a URL, a libpq
//!   environment for a client program, or a tokio-postgres [`connect`].
//! - [`ProxyHandle`]: `pgscope::proxy::serve` in-process on its own runtime, recording every
//!   `Execution`; [`ProxyProcess`]: the real `pgscope` binary as a child process.
//! - [`run`] / [`CmdOutput`]: run a client program (psql, pgbench, python) with a timeout.
//! - [`python`]: the test virtualenv's interpreter (made by `tests/setup.sh`).
//!
//! Tests run under cargo-nextest, one process per test, several at once: nothing here relies
//! on state shared between tests other than the cached template, which is created atomically.
//!
//! When a test process dies without running destructors (killed, `process::exit`, a server
//! kept in a static), a watchdog process per server notices that the test process is gone,
//! stops the postmaster (immediate shutdown, then SIGKILL) and deletes its folder.

// Each test file uses only part of the harness.
#![allow(dead_code, unused_imports)]

mod client;
mod http;
mod postgres;
mod process;
mod proxy;
mod scratch;

pub use client::{connect, python, ConnInfo};
pub use http::{get, get_ok, metric, request};
pub use postgres::{PgServer, Role, MD5, PASSWORD, SCRAM};
pub use process::{free_port, is_listening, remove_env_prefix, run, run_with_stdin, CmdOutput};
pub use proxy::{ProxyHandle, ProxyProcess};

use std::time::Duration;

/// A generous bound for anything that should take milliseconds: it only decides how long a
/// broken test hangs before it fails, never whether a slow machine passes.
pub const TIMEOUT: Duration = Duration::from_secs(30);
