//! The Django project of `tests/django/` end to end: N+1 queries and duplicates found on the
//! wire, with the Django fix, for every driver Django supports on PostgreSQL.
//!
//! Each test starts a PostgreSQL server, migrates and seeds the demo database through a
//! direct connection, starts the real `pgscope` binary in front of it and runs
//! `tests/django/drive.py` through it: every view of `tests/django/scenarios.py` (the N+1s,
//! their fixed versions and the look-alikes that must not be reported), then the checks
//! against `/api/queries`, `/api/nplusone` and `/metrics`. The driver prints a table of
//! expected against actual findings; its exit code is the verdict, and its output is shown
//! when it fails.
//!
//! The variants: psycopg2, psycopg 3 with client-side binding (Django's default) and with
//! `server_side_binding`, each with and without opentelemetry's sqlcommenter comments, with
//! Django's default CONN_MAX_AGE=0 (a connection per request); and CONN_MAX_AGE=None (one
//! connection for every request), where only the traceparent or the idle time between
//! requests separates them.
//!
//! `record_django_sequences` (ignored: run it on purpose) rewrites
//! `tests/fixtures/django_sequences.json`, the recorded statement sequences the detector's
//! unit tests replay; `django_sequences_fixture_is_current` checks that it is up to date.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{python, run, CmdOutput, ConnInfo, PgServer, ProxyProcess};

/// migrate + seed, or the driver's whole run: a Python start, a few dozen requests, and the
/// driver's waits for pgscope's asynchronous analysis (at most 15 s per endpoint).
const PYTHON_TIMEOUT: Duration = Duration::from_secs(100);

/// The server's time zone, fixed so that the recorded sequences do not depend on the
/// machine's: Django's is UTC, so every new connection sends `SELECT set_config('TimeZone',
/// 'UTC', false)` first, as it does against most servers.
const SERVER_SETTINGS: &[(&str, &str)] = &[("timezone", "Etc/UTC")];

/// pgscope's `--n1-threshold` (its default), told to the driver too: scenarios.py's bursts
/// reach it and its below-threshold look-alikes stay under it.
const N1_THRESHOLD: &str = "5";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/django")
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django_sequences.json")
}

/// How one run configures the Django project (its settings read these variables).
#[derive(Clone, Copy)]
struct Settings {
    /// `psycopg2`, `psycopg3` or `psycopg3-server-binding`.
    driver: &'static str,
    sqlcommenter: bool,
    /// `0` or `None`.
    conn_max_age: &'static str,
    /// psycopg 3's prepare_threshold (Django disables server-side prepared statements
    /// unless it is set).
    prepare_threshold: Option<&'static str>,
}

const DEFAULT: Settings = Settings {
    driver: "psycopg3",
    sqlcommenter: false,
    conn_max_age: "0",
    prepare_threshold: None,
};

/// `python <script> <args>` in the project folder, connecting to `conn`, with exactly the
/// settings of `settings` (nothing inherited from the developer's environment).
fn django(conn: &ConnInfo, settings: Settings, script: &str, args: &[&str]) -> Command {
    let mut cmd = conn.command(python());
    cmd.current_dir(project())
        .arg(project().join(script))
        .args(args)
        .env("DRIVER", settings.driver)
        .env(
            "SQLCOMMENTER",
            if settings.sqlcommenter { "on" } else { "off" },
        )
        .env("CONN_MAX_AGE", settings.conn_max_age)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("SQLCOMMENTER_DETERMINISTIC_IDS")
        .env_remove("DJANGO_SETTINGS_MODULE");
    match settings.prepare_threshold {
        Some(n) => cmd.env("PREPARE_THRESHOLD", n),
        None => cmd.env_remove("PREPARE_THRESHOLD"),
    };
    cmd
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> CmdOutput {
    let output = run(cmd, PYTHON_TIMEOUT);
    assert!(output.success(), "{output}");
    output
}

/// A server with the demo schema and data, made through a direct connection.
fn seeded_server() -> PgServer {
    let pg = PgServer::start_with(SERVER_SETTINGS);
    run_ok(&mut django(
        &pg.conn(),
        DEFAULT,
        "manage.py",
        &["migrate", "--verbosity", "0"],
    ));
    run_ok(&mut django(&pg.conn(), DEFAULT, "manage.py", &["seed"]));
    pg
}

/// Seed a server, put pgscope in front of it and run every view through it with `settings`;
/// panics with the driver's report unless every finding is as expected.
fn drive(settings: Settings) {
    let pg = seeded_server();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--n1-threshold", N1_THRESHOLD]);
    let http = proxy.http_port().expect("the harness chose the HTTP port");
    let out = proxy.dir().join("run.json");
    let (port, http, out_arg) = (proxy.port().to_string(), http.to_string(), path_arg(&out));
    let args = [
        "--port",
        &port,
        "--http-port",
        &http,
        "--n1-threshold",
        N1_THRESHOLD,
        "--out",
        &out_arg,
    ];
    let output = run(
        &mut django(&proxy.conn(), settings, "drive.py", &args),
        PYTHON_TIMEOUT,
    );
    assert!(
        output.success(),
        "the Django views through pgscope did not give the expected findings\n{output}\n\
         --- pgscope log ---\n{}",
        proxy.stderr_so_far()
    );
    println!("{}", output.stdout);
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

// --- Django's default: a connection per request ---

#[test]
fn django_psycopg2() {
    drive(Settings {
        driver: "psycopg2",
        ..DEFAULT
    });
}

#[test]
fn django_psycopg2_sqlcommenter() {
    drive(Settings {
        driver: "psycopg2",
        sqlcommenter: true,
        ..DEFAULT
    });
}

#[test]
fn django_psycopg3_client_binding() {
    drive(DEFAULT);
}

#[test]
fn django_psycopg3_client_binding_sqlcommenter() {
    drive(Settings {
        sqlcommenter: true,
        ..DEFAULT
    });
}

#[test]
fn django_psycopg3_server_binding() {
    drive(Settings {
        driver: "psycopg3-server-binding",
        ..DEFAULT
    });
}

#[test]
fn django_psycopg3_server_binding_sqlcommenter() {
    drive(Settings {
        driver: "psycopg3-server-binding",
        sqlcommenter: true,
        ..DEFAULT
    });
}

// --- CONN_MAX_AGE=None: one connection for all the requests ---

/// No comments: requests on the connection are told apart by the idle time between them
/// (the driver waits 0.6 s after each request; pgscope's idle gap is 500 ms).
#[test]
fn django_persistent_connection_psycopg2() {
    drive(Settings {
        driver: "psycopg2",
        conn_max_age: "None",
        ..DEFAULT
    });
}

/// A new traceparent per request; and named prepared statements, which psycopg 3 makes of a
/// statement after its 5th execution on the connection (Parse once, then Bind/Execute).
#[test]
fn django_persistent_connection_psycopg3_server_binding_prepared_sqlcommenter() {
    drive(Settings {
        driver: "psycopg3-server-binding",
        sqlcommenter: true,
        conn_max_age: "None",
        prepare_threshold: Some("5"),
    });
}

// --- the recorded sequences for the detector's unit tests ---

/// Record every view's statements with every driver, directly against a fresh server.
fn record(out: &Path) -> CmdOutput {
    let pg = PgServer::start_with(SERVER_SETTINGS);
    run_ok(&mut django(
        &pg.conn(),
        DEFAULT,
        "record.py",
        &["--out", &path_arg(out)],
    ))
}

/// Regenerate tests/fixtures/django_sequences.json:
/// `cargo nextest run --test django --run-ignored only record_django_sequences`.
#[test]
#[ignore = "rewrites tests/fixtures/django_sequences.json; run it on purpose"]
fn record_django_sequences() {
    let output = record(&fixture());
    println!("{}", output.stderr);
}

/// The committed recording is what Django and the drivers send today: a new Django,
/// psycopg or opentelemetry version, or a changed view, must come with a new recording.
#[test]
fn django_sequences_fixture_is_current() {
    let dir = std::env::temp_dir().join(format!("pgscope-django-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = dir.join("django_sequences.json");
    record(&fresh);
    let now = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let committed = std::fs::read_to_string(fixture()).unwrap_or_default();
    if now != committed {
        let first = now
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| now.lines().count().min(committed.lines().count()));
        let line = |text: &str| {
            text.lines()
                .nth(first)
                .unwrap_or("<end of file>")
                .to_owned()
        };
        panic!(
            "{} is out of date: regenerate it with \
             `cargo nextest run --test django --run-ignored only record_django_sequences`.\n\
             first difference, line {}:\n  committed: {}\n  now:       {}",
            fixture().display(),
            first + 1,
            line(&committed),
            line(&now),
        );
    }
}
