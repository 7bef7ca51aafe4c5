//! Statistics end to end: a real workload through the real binary, checked against
//! `/api/queries` and `/metrics` (and by `promtool`), literals kept out, the fingerprint bound
//! held with evictions counted.

mod common;

use std::time::{Duration, Instant};

use common::{get, get_ok, metric, run, ConnInfo, PgServer, ProxyProcess, TIMEOUT};
use serde_json::Value;

/// Literal values sent in the workload that must never appear in the exports.
const SECRETS: [&str; 4] = ["s3cr3t-literal", "987654321", "4111111111111111", "_zq7"];

fn psql(conn: &ConnInfo, sql: &str) -> common::CmdOutput {
    run(
        conn.command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-c", sql]),
        TIMEOUT,
    )
}

/// `/api/queries`, parsed.
fn queries(http: u16) -> Vec<Value> {
    let body = get_ok(http, "/api/queries");
    let v: Value = serde_json::from_str(&body).expect("/api/queries is JSON");
    v["queries"]
        .as_array()
        .expect("queries is an array")
        .clone()
}

/// The one fingerprint whose normalized text contains every one of `parts`.
fn find<'a>(qs: &'a [Value], parts: &[&str]) -> Option<&'a Value> {
    let matches: Vec<&Value> = qs
        .iter()
        .filter(|q| {
            let text = q["query"].as_str().unwrap_or("");
            parts.iter().all(|p| text.contains(p))
        })
        .collect();
    assert!(
        matches.len() <= 1,
        "{parts:?} matches several: {matches:#?}"
    );
    matches.first().copied()
}

/// Poll `/api/queries` until `done` holds (analysis is asynchronous), or fail.
fn wait_for(http: u16, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let qs = queries(http);
        if done(&qs) {
            return qs;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {qs:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn calls(q: Option<&Value>) -> u64 {
    q.and_then(|q| q["calls"].as_u64()).unwrap_or(0)
}

#[test]
fn workload_statistics_match_what_was_sent() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let http = proxy.http_port().unwrap();
    let conn = proxy.conn();

    psql(
        &conn,
        "CREATE TABLE stats_items (id int PRIMARY KEY, label text)",
    )
    .assert_success();
    psql(
        &conn,
        "INSERT INTO stats_items SELECT g, 's3cr3t-literal' || g FROM generate_series(1, 100) g",
    )
    .assert_success();
    // 30 lookups with different literals: one fingerprint, 30 calls, 30 rows (psql).
    let lookups: String = (1..=30)
        .map(|i| format!("SELECT label FROM stats_items WHERE id = {i};"))
        .collect();
    psql(&conn, &lookups).assert_success();
    // The same lookup from psycopg 3 (server-side binding, prepared) and psycopg2 (literals
    // interpolated): 15 more calls of the same fingerprint.
    let out = run(
        std::process::Command::new(common::python())
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/clients")
                    .join("stats_workload.py"),
            )
            .arg(conn.dsn()),
        TIMEOUT,
    )
    .assert_success();
    assert!(out.stdout.contains("\"ran\": 15"), "{out}");
    // A range that returns 10 rows, 3 times.
    for lo in [1, 11, 21] {
        psql(
            &conn,
            &format!(
                "SELECT * FROM stats_items WHERE id BETWEEN {lo} AND {}",
                lo + 9
            ),
        )
        .assert_success();
    }
    // Errors: 4 failing executions of one fingerprint (literal included in the text).
    for _ in 0..4 {
        let out = psql(
            &conn,
            "SELECT * FROM stats_missing WHERE card = '4111111111111111'",
        );
        assert!(out.stderr.contains("stats_missing"), "{out}");
    }
    // An update touching 5 rows with a literal that must not leak.
    psql(
        &conn,
        "UPDATE stats_items SET label = 'x' WHERE id <= 5 OR id = 987654321",
    )
    .assert_success();
    // SET's values are literals even as bare words (a tenant's schema, an application name).
    psql(
        &conn,
        "SET search_path TO tenant_zq7, public; SET application_name = billing_zq7",
    )
    .assert_success();
    // Latency: 19 short sleeps and one long one, through the extended protocol (pgbench).
    let script = std::env::temp_dir().join(format!(
        "pgscope-stats-sleep-{}-{}.sql",
        std::process::id(),
        pg.port()
    ));
    std::fs::write(&script, "SELECT pg_sleep(0.01);\n").unwrap();
    run(
        conn.command("pgbench")
            .args(["-n", "-M", "prepared", "-t", "19", "-f"])
            .arg(&script),
        TIMEOUT,
    )
    .assert_success();
    std::fs::remove_file(&script).ok();
    psql(&conn, "SELECT pg_sleep(0.25)").assert_success();

    let qs = wait_for(http, "the workload's fingerprints", |qs| {
        calls(find(qs, &["SELECT label FROM stats_items"])) >= 45
            && calls(find(qs, &["stats_missing"])) >= 4
            && calls(find(qs, &["pg_sleep"])) >= 20
            && calls(find(qs, &["BETWEEN"])) >= 3
            && calls(find(qs, &["application_name"])) >= 1
    });
    assert_eq!(
        find(&qs, &["search_path"]).unwrap()["query"],
        "SET search_path TO $1, $2"
    );
    assert_eq!(
        find(&qs, &["application_name"]).unwrap()["query"],
        "SET application_name = $1"
    );

    let lookup = find(&qs, &["SELECT label FROM stats_items"]).unwrap();
    assert_eq!(lookup["calls"], 45, "{lookup}");
    assert_eq!(lookup["rows"], 45, "{lookup}");
    assert_eq!(lookup["errors"], 0, "{lookup}");
    assert_eq!(lookup["kind"], "select", "{lookup}");
    assert!(
        lookup["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "stats_items"),
        "{lookup}"
    );

    let range = find(&qs, &["BETWEEN"]).unwrap();
    assert_eq!(
        (range["calls"].as_u64(), range["rows"].as_u64()),
        (Some(3), Some(30))
    );

    let missing = find(&qs, &["stats_missing"]).unwrap();
    assert_eq!(missing["calls"], 4, "{missing}");
    assert_eq!(missing["errors"], 4, "{missing}");

    let update = find(&qs, &["UPDATE", "stats_items"]).unwrap();
    assert_eq!(update["rows"], 5, "{update}");
    assert_eq!(update["kind"], "update", "{update}");

    // pg_sleep(0.01) × 19 by pgbench and pg_sleep(0.25) × 1 by psql: one fingerprint.
    let sleep = find(&qs, &["pg_sleep"]).unwrap();
    assert_eq!(sleep["calls"], 20, "{sleep}");
    let f = |k: &str| sleep[k].as_f64().unwrap();
    assert!(
        f("p50_seconds") >= 0.0099 && f("p50_seconds") < 0.1,
        "{sleep}"
    );
    assert!(
        f("p95_seconds") >= 0.0099 && f("p95_seconds") < 0.2,
        "{sleep}"
    );
    assert!(f("p99_seconds") >= 0.245, "{sleep}");
    assert!(
        f("max_seconds") >= 0.25 && f("max_seconds") < 1.0,
        "{sleep}"
    );
    assert!(f("total_seconds") >= 0.19 + 0.25, "{sleep}");
    assert!(f("p99_seconds") <= f("max_seconds"), "{sleep}");
    assert!(
        (f("mean_seconds") - f("total_seconds") / 20.0).abs() < 1e-6,
        "{sleep}"
    );

    // Most total time first.
    let totals: Vec<f64> = qs
        .iter()
        .map(|q| q["total_seconds"].as_f64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");

    // The same numbers in /metrics.
    let metrics = get_ok(http, "/metrics");
    let id = lookup["fingerprint"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert_eq!(
        metric(
            &metrics,
            &format!("pgscope_queries_total{{fingerprint=\"{id}\"}}")
        ),
        Some(45.0)
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("pgscope_query_rows_total{{fingerprint=\"{id}\"}}")
        ),
        Some(45.0)
    );
    let mid = missing["fingerprint"].as_str().unwrap();
    assert_eq!(
        metric(
            &metrics,
            &format!("pgscope_query_errors_total{{fingerprint=\"{mid}\"}}")
        ),
        Some(4.0)
    );
    let sid = sleep["fingerprint"].as_str().unwrap();
    let bucket = |le: &str| {
        metric(
            &metrics,
            &format!("pgscope_query_duration_seconds_bucket{{fingerprint=\"{sid}\",le=\"{le}\"}}"),
        )
        .unwrap()
    };
    assert_eq!(bucket("0.005"), 0.0);
    assert_eq!(bucket("0.1"), 19.0);
    assert_eq!(bucket("+Inf"), 20.0);
    assert_eq!(
        metric(
            &metrics,
            &format!("pgscope_query_duration_seconds_count{{fingerprint=\"{sid}\"}}")
        ),
        Some(20.0)
    );
    assert!(metrics.contains(&format!(
        "pgscope_query_info{{fingerprint=\"{sid}\",kind=\"select\""
    )));
    assert_eq!(
        metric(&metrics, "pgscope_latency_target_seconds"),
        Some(0.2)
    );
    assert!(metric(&metrics, "pgscope_client_connections_total").unwrap() >= 10.0);

    // No literal leaves the process.
    let api = get_ok(http, "/api/queries");
    for secret in SECRETS {
        assert!(!api.contains(secret), "/api/queries leaks {secret}");
        assert!(!metrics.contains(secret), "/metrics leaks {secret}");
        assert!(
            !proxy.stderr_so_far().contains(secret),
            "the log leaks {secret}"
        );
    }
    drop(proxy);
}

#[test]
fn metrics_pass_promtool_and_other_sums_the_rest() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--export-top", "3"]);
    let http = proxy.http_port().unwrap();
    let conn = proxy.conn();
    // 8 distinct fingerprints with a "query" that needs escaping in a label.
    let sql: String = (0..8)
        .map(|i| format!("SELECT 'a\"b' AS \"col\\{i}\";"))
        .collect();
    psql(&conn, &sql).assert_success();
    wait_for(http, "8 fingerprints", |qs| qs.len() >= 8);

    let metrics = get_ok(http, "/metrics");
    let exported: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("pgscope_queries_total{"))
        .collect();
    assert_eq!(exported.len(), 4, "3 fingerprints and other: {exported:?}");
    assert!(exported.iter().any(|l| l.contains("fingerprint=\"other\"")));
    let sum: f64 = exported
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let calls: u64 = queries(http)
        .iter()
        .map(|q| q["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(sum as u64, calls, "other + top = every call");

    let promtool = which("promtool");
    let out = common::run_with_stdin(
        std::process::Command::new(promtool).args(["check", "metrics"]),
        Some(metrics.as_bytes()),
        TIMEOUT,
    );
    assert!(out.success(), "promtool check metrics: {out}\n{metrics}");
}

/// The counter and histogram series of fingerprints in an exposition: name and labels → value.
fn fingerprint_series(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter(|l| l.starts_with("pgscope_quer") && !l.starts_with("pgscope_query_info"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k, v.parse().ok()?))
        })
        .collect()
}

#[test]
fn other_does_not_go_down_when_a_fingerprint_enters_the_top() {
    // The audit's case: one slow statement is the top, 100 fast ones are `other`; then the
    // fast one runs until its total time takes the top, and `other` keeps its 100 (it used to
    // drop to the slow statement's 1, a counter reset to Prometheus).
    let pg = PgServer::start();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--export-top", "1"]);
    let http = proxy.http_port().unwrap();
    let conn = proxy.conn();
    psql(&conn, "SELECT pg_sleep(0.2)").assert_success();
    let fast = |n: usize| -> String { (0..n).map(|_| "SELECT 1 AS b;").collect() };
    psql(&conn, &fast(100)).assert_success();
    let mut sent = 100;
    wait_for(http, "101 calls", |qs| {
        calls(find(qs, &["pg_sleep"])) == 1 && calls(find(qs, &["AS b"])) == 100
    });
    let first = get_ok(http, "/metrics");
    let other = "pgscope_queries_total{fingerprint=\"other\"}";
    if metric(&first, other) != Some(100.0) {
        // 100 fast statements took more than 200 ms: nothing to check on this machine.
        eprintln!("skipped: the fast statement is already the top\n{first}");
        return;
    }
    let deadline = Instant::now() + TIMEOUT;
    let fast_is_top = loop {
        psql(&conn, &fast(1000)).assert_success();
        sent += 1000;
        let qs = wait_for(http, "the fast statements", |qs| {
            calls(find(qs, &["AS b"])) == sent
        });
        if qs[0]["query"].as_str().unwrap().contains("AS b") {
            break qs[0]["fingerprint"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "never the top: {qs:#?}");
    };
    let second = get_ok(http, "/metrics");
    assert!(
        second.contains(&format!(
            "pgscope_queries_total{{fingerprint=\"{fast_is_top}\"}}"
        )),
        "{second}"
    );
    let before = fingerprint_series(&first);
    for (series, now) in fingerprint_series(&second) {
        if let Some((_, was)) = before.iter().find(|(s, _)| *s == series) {
            assert!(
                now >= *was,
                "{series} went down from {was} to {now}\n{second}"
            );
        }
    }
    assert_eq!(metric(&second, other), Some(101.0), "{second}");
    let sum: f64 = fingerprint_series(&second)
        .iter()
        .filter(|(s, _)| s.starts_with("pgscope_queries_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sum as u64, 1 + sent, "every call once");
}

#[test]
fn distinct_statements_are_bounded_and_evictions_counted() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--max-fingerprints", "100"]);
    let http = proxy.http_port().unwrap();
    const TOTAL: usize = 100_000;
    const PER_QUERY: usize = 1000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = proxy.conn().connect().await.unwrap();
        for batch in 0..TOTAL / PER_QUERY {
            // Distinct column names make distinct fingerprints.
            let sql: String = (0..PER_QUERY)
                .map(|i| format!("SELECT 1 AS c{};", batch * PER_QUERY + i))
                .collect();
            client.batch_execute(&sql).await.unwrap();
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let metrics = loop {
        let m = get_ok(http, "/metrics");
        let evicted = metric(&m, "pgscope_fingerprints_evicted_total").unwrap();
        let dropped = metric(&m, "pgscope_analysis_events_dropped_total").unwrap();
        if evicted + dropped >= (TOTAL - 100) as f64 {
            break m;
        }
        assert!(Instant::now() < deadline, "evictions not counted: {m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric(&metrics, "pgscope_fingerprints_tracked"),
        Some(100.0)
    );
    let evicted = metric(&metrics, "pgscope_fingerprints_evicted_total").unwrap();
    let dropped = metric(&metrics, "pgscope_analysis_events_dropped_total").unwrap();
    // Each distinct statement beyond the first 100 analyzed evicted one (setup statements of
    // the connection itself, if any, add a few).
    assert!(
        evicted >= (TOTAL - 100) as f64 - dropped,
        "{evicted} {dropped}"
    );
    assert!(evicted <= (TOTAL + 10) as f64, "{evicted}");
    assert_eq!(queries(http).len(), 100);
}

#[test]
fn healthz_follows_the_upstream() {
    let mut pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let http = proxy.http_port().unwrap();
    assert_eq!(get(http, "/healthz").0, 200);
    pg.stop();
    let (status, body) = get(http, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(get(http, "/nowhere").0, 404);
}

fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{program} not found on PATH: run tests/setup.sh"))
}

#[test]
fn clients_beyond_the_limit_get_53300_and_are_counted() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start_with_args(pg.port(), &["--max-client-connections", "2"]);
    let http = proxy.http_port().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = proxy.conn().connect().await.unwrap();
        let b = proxy.conn().connect().await.unwrap();
        let Err(refused) = proxy.conn().connect().await else {
            panic!("a third client was admitted");
        };
        assert_eq!(
            refused.code(),
            Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS),
            "{refused}"
        );
        // The two admitted clients are not disturbed.
        for c in [&a, &b] {
            c.simple_query("SELECT 1").await.unwrap();
        }
        drop(a);
        // Once one leaves (asynchronously), a new client gets in.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match proxy.conn().connect().await {
                Ok(c) => {
                    c.simple_query("SELECT 1").await.unwrap();
                    break;
                }
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no room after a client left: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        drop(b);
    });
    let metrics = get_ok(http, "/metrics");
    let refused = metric(&metrics, "pgscope_client_errors_total{reason=\"too_many\"}").unwrap();
    assert!(refused >= 1.0, "{metrics}");
    assert_eq!(
        metric(&metrics, "pgscope_client_errors_total{reason=\"protocol\"}"),
        Some(0.0)
    );
}

/// With `standard_conforming_strings` off (by SET, or by a database default the server reports
/// at login), `\'` does not end a string: the tracker follows the server's ParameterStatus so
/// that the rest of the literal is not read as words and exported.
#[test]
fn literals_stay_out_with_standard_conforming_strings_off() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let http = proxy.http_port().unwrap();
    let conn = proxy.conn();
    let out = run(
        conn.command("psql").args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "SET standard_conforming_strings = off",
            "-c",
            r"SELECT 'it\'s zqscs-one and zqscs-two' AS set_by_set",
        ]),
        TIMEOUT,
    );
    out.assert_success();
    psql(&pg.conn(), "CREATE DATABASE scs_off").assert_success();
    psql(
        &pg.conn(),
        "ALTER DATABASE scs_off SET standard_conforming_strings = off",
    )
    .assert_success();
    psql(
        &conn.clone().with_dbname("scs_off"),
        r"SELECT 'it\'s zqscs-three', E'zqscs-four\'' AS set_at_login",
    )
    .assert_success();
    let qs = wait_for(http, "both statements", |qs| {
        find(qs, &["set_by_set"]).is_some() && find(qs, &["set_at_login"]).is_some()
    });
    assert_eq!(
        find(&qs, &["set_by_set"]).unwrap()["query"],
        "SELECT $1 AS set_by_set"
    );
    assert_eq!(
        find(&qs, &["set_at_login"]).unwrap()["query"],
        "SELECT $1, $2 AS set_at_login"
    );
    let api = get_ok(http, "/api/queries");
    let metrics = get_ok(http, "/metrics");
    for export in [&api, &metrics, &proxy.stderr_so_far()] {
        assert!(!export.contains("zqscs"), "a literal leaked: {export}");
    }
}

/// Only GET and HEAD are served; anything else gets 405 with the `Allow` header RFC 9110 asks
/// of it.
#[test]
fn other_methods_get_405_with_allow() {
    let pg = PgServer::start();
    let proxy = ProxyProcess::start(pg.port());
    let http = proxy.http_port().unwrap();
    for method in ["POST", "PUT", "DELETE"] {
        let (status, head, _) = common::request(http, method, "/metrics");
        assert_eq!(status, 405, "{method}: {head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("\r\nallow: get, head"), "{method}: {head}");
    }
}

/// The observer thread runs as `SCHED_BATCH`, so that its waking up never preempts a backend or
/// the relay (on 2 cores that cost 4% of TPC-B's TPS, `bench/relay.sh`); the relay threads
/// stay normal threads, which must preempt to keep the latency low.
#[test]
fn the_observer_is_a_batch_thread_and_the_relay_is_not() {
    const SCHED_OTHER: &str = "0";
    const SCHED_BATCH: &str = "3";
    let proxy = ProxyProcess::start(common::free_port());
    // name → scheduling policy of every thread (field 41 of /proc/PID/task/TID/stat)
    let threads = || -> Vec<(String, String)> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", proxy.pid())).unwrap();
        tasks
            .filter_map(|t| {
                let t = t.ok()?.path();
                let name = std::fs::read_to_string(t.join("comm")).ok()?;
                let stat = std::fs::read_to_string(t.join("stat")).ok()?;
                // After "pid (comm) " the words start at field 3.
                let rest = &stat[stat.rfind(") ")? + 2..];
                let policy = rest.split_whitespace().nth(41 - 3)?;
                Some((name.trim().to_string(), policy.to_string()))
            })
            .collect()
    };
    let policy_of = |prefix: &str| -> Vec<String> {
        threads()
            .into_iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, policy)| policy)
            .collect()
    };
    // The observer sets its policy as it starts running, and a new thread takes its name from
    // inside (until then it shows its parent's): both may come just after the listen.
    let deadline = Instant::now() + TIMEOUT;
    while policy_of("pgscope-observe") != [SCHED_BATCH] || policy_of("pgscope-conn").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the observer thread's policy: {:?}; relay threads' {:?} (threads: {:?})",
            policy_of("pgscope-observe"),
            policy_of("pgscope-conn"),
            threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let relay = policy_of("pgscope-conn");
    assert!(
        relay.iter().all(|p| p == SCHED_OTHER),
        "relay threads' policies: {relay:?}"
    );
}
