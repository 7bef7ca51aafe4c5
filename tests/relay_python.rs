//! Real Python drivers through the proxy, against a real PostgreSQL 15.
//!
//! Each test runs one script of `tests/clients/` twice on a fresh server: once connected to
//! the server directly and once through an in-process proxy, the database reset to the same
//! state before each run. The script prints a JSON document of everything it saw (rows in a
//! type-tagged canonical form, errors as SQLSTATEs); the two documents must be equal, which is
//! the proxy's first promise: results, errors, notifications, COPY and cancellation behave
//! exactly as without it. Then the test checks what the proxy recorded for the proxied run:
//! one `Execution` per statement, in order, with its SQL text, command tag, row count,
//! SQLSTATE, protocol, named-statement flag and parameter digest.
//!
//! The drivers: psycopg 3 (pipeline mode, server-side binding and named prepared statements,
//! client-side binding, binary formats, executemany, server-side cursors, COPY, LISTEN/NOTIFY,
//! a 10 MB parameter), psycopg2 (simple protocol throughout, large objects over the
//! function-call protocol) and asyncpg (prepared statements, binary formats, executemany,
//! portal cursors, COPY); and for all three: query cancellation, password authentication,
//! startup parameters and SSL negotiation, a non-UTF-8 client encoding, a commit that fails
//! after its statement completed, and the durations of pipelined statements.
//!
//! Scripts print their document as the last line of stdout. Top-level keys starting with `_`
//! (the client's own timings) are left out of the comparison.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{python, run, ConnInfo, PgServer, ProxyHandle, Role, MD5, PASSWORD, SCRAM, TIMEOUT};
use pgscope::proxy::{Execution, Protocol};
use serde_json::{json, Value};

// --- schemas the scenarios start from ---

const ITEMS: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty int);";

/// `items` with ('a', 1) … ('j', 10).
const TEN_ITEMS: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty int);
INSERT INTO items (name, qty) SELECT chr(96 + g), g FROM generate_series(1, 10) g;";

/// One column per type the drivers decode, three rows: ordinary values, edge values, NULLs.
const TYPED: &str = r#"CREATE TABLE typed (id int PRIMARY KEY, i2 int2, i8 int8, n numeric,
    f float8, t text, b bytea, ok bool, d date, ts timestamptz, u uuid, j jsonb, arr int[],
    tarr text[], iv interval, ip inet);
INSERT INTO typed VALUES
 (1, 1, 10000000000, 3.14159, 1.5e300, 'hello', '\x00ff', true, '2024-02-29',
  '2024-02-29 12:34:56.789+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2.5, null, "x"]}', '{1,2,3}', '{"with space",NULL,"q\"uote"}',
  '1 day 02:03:04.5', '10.0.0.1'),
 (2, -1, -1, 'NaN', 'Infinity', '', '\x', false, '0001-01-01',
  '9999-12-31 23:59:59.999999+00', '00000000-0000-0000-0000-000000000000', 'null', '{}',
  '{}', '-1 mon', '::1'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL);"#;

/// A foreign key checked at commit.
const DEFERRED: &str = "CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);";

const BLOBS: &str = "CREATE TABLE blobs (id int PRIMARY KEY, data bytea);";

// --- running a scenario ---

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Drop everything the previous run made and create the scenario's tables.
fn reset(pg: &PgServer, setup: &str) {
    pg.psql(&format!(
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public; {setup}"
    ));
}

/// Run `script` against `conn` and parse the JSON document it prints last.
fn run_script(conn: &ConnInfo, script: &str, args: &[&str]) -> (Value, Duration) {
    let mut cmd = conn.command(python());
    cmd.arg(clients_dir().join(script))
        .arg(conn.dsn())
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONHASHSEED", "0");
    let started = Instant::now();
    let out = run(&mut cmd, TIMEOUT).assert_success();
    let took = started.elapsed();
    let last = out.stdout.lines().last().unwrap_or_default();
    let doc = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} did not print a JSON document ({e}):\n{out}"));
    (doc, took)
}

/// A scenario's outcome through the proxy.
struct Outcome {
    /// The document the script printed (equal for both runs).
    doc: Value,
    /// The document of the run through the proxy (differs only in `_` keys).
    proxied: Value,
    /// What the proxy recorded for the proxied run.
    execs: Vec<Execution>,
    // Kept to the end of the test: dropping the proxy checks that it never panicked.
    proxy: ProxyHandle,
    _pg: PgServer,
}

/// Run `script` directly and through a proxy, each time from `setup`; the documents must be
/// equal. Returns the document and what the proxy recorded.
#[track_caller]
fn scenario(script: &str, args: &[&str], setup: &str) -> Outcome {
    scenario_as(script, args, setup, None)
}

/// [`scenario`], the script logging in as `role` (with its password) instead of `postgres`.
#[track_caller]
fn scenario_as(script: &str, args: &[&str], setup: &str, role: Option<Role>) -> Outcome {
    let pg = PgServer::start();
    let proxy = ProxyHandle::start(pg.port());
    let as_role = |conn: ConnInfo| match role {
        Some(role) => conn.with_role(role),
        None => conn,
    };

    reset(&pg, setup);
    let (direct, direct_took) = run_script(&as_role(pg.conn()), script, args);
    assert!(
        proxy.executions().is_empty(),
        "the direct run went through the proxy"
    );
    reset(&pg, setup);
    let (proxied, proxied_took) = run_script(&as_role(proxy.conn()), script, args);
    eprintln!("{script}: direct {direct_took:?}, through the proxy {proxied_took:?}");

    assert_same_document(script, &comparable(&direct), &comparable(&proxied));
    let execs = proxy.executions();
    assert!(!execs.is_empty(), "the proxy recorded nothing for {script}");
    check_invariants(&execs);
    assert_eq!(proxy.panics(), 0, "the proxy panicked");
    Outcome {
        doc: direct,
        proxied,
        execs,
        proxy,
        _pg: pg,
    }
}

/// A document without its top-level keys that start with `_` (measurements that differ from
/// run to run, such as the client's own timings).
fn comparable(doc: &Value) -> Value {
    match doc {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The direct and the proxied documents must be equal; on failure show where they differ.
#[track_caller]
fn assert_same_document(script: &str, direct: &Value, proxied: &Value) {
    if direct == proxied {
        return;
    }
    let mut diff = String::new();
    match (direct.as_object(), proxied.as_object()) {
        (Some(d), Some(p)) => {
            let keys: std::collections::BTreeSet<&String> = d.keys().chain(p.keys()).collect();
            for key in keys {
                if d.get(key) != p.get(key) {
                    diff += &format!(
                        "  {key}:\n    direct:  {}\n    proxied: {}\n",
                        short(d.get(key)),
                        short(p.get(key))
                    );
                }
            }
        }
        _ => diff = format!("  direct:  {direct}\n  proxied: {proxied}\n"),
    }
    panic!("{script}: results through the proxy differ from a direct connection:\n{diff}");
}

fn short(v: Option<&Value>) -> String {
    let s = v
        .map(Value::to_string)
        .unwrap_or_else(|| "(missing)".into());
    match s.char_indices().nth(600) {
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
        None => s,
    }
}

/// What every recorded execution must satisfy, whatever the scenario.
#[track_caller]
fn check_invariants(execs: &[Execution]) {
    let mut last_end: HashMap<u64, Instant> = HashMap::new();
    for e in execs {
        let what = || format!("{}\nin:\n{}", line(e), table(execs));
        assert!(!e.sql.as_str().trim().is_empty(), "empty SQL: {}", what());
        match e.error {
            Some(_) => assert!(e.tag.is_empty(), "a failed execution has a tag: {}", what()),
            None => assert!(
                !e.tag.is_empty(),
                "a completed execution has no tag: {}",
                what()
            ),
        }
        if let Some(n) = e.tag.rows() {
            assert_eq!(e.rows, n, "rows differ from the tag's count: {}", what());
        }
        if e.protocol == Protocol::Simple {
            assert!(!e.named_statement, "a simple query is named: {}", what());
            assert_eq!(
                e.params_digest,
                0,
                "a simple query has parameters: {}",
                what()
            );
        }
        assert!(
            e.duration < TIMEOUT,
            "duration {:?}: {}",
            e.duration,
            what()
        );
        // Executions are recorded as they complete: per connection, in completion order.
        let end = e.started + e.duration;
        if let Some(prev) = last_end.insert(e.connection_id, end) {
            assert!(prev <= end, "recorded out of completion order: {}", what());
        }
    }
}

// --- looking at executions ---

fn line(e: &Execution) -> String {
    format!(
        "conn {} {:?}{} tag={:?} rows={} error={:?} digest={:016x} {:?}",
        e.connection_id,
        e.protocol,
        if e.named_statement { " named" } else { "" },
        e.tag.as_str(),
        e.rows,
        e.error.map(|s| s.as_str().to_owned()),
        e.params_digest,
        e.sql.as_str(),
    )
}

fn table(execs: &[Execution]) -> String {
    execs.iter().map(|e| format!("  {}\n", line(e))).collect()
}

/// What a scenario expects of one execution: its SQL, and its tag or its SQLSTATE.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Seen {
    sql: String,
    outcome: String,
}

/// A statement that completed with `tag`.
fn ok(sql: &str, tag: &str) -> Seen {
    Seen {
        sql: sql.to_owned(),
        outcome: tag.to_owned(),
    }
}

/// A statement that failed with SQLSTATE `code`.
fn failed(sql: &str, code: &str) -> Seen {
    Seen {
        sql: sql.to_owned(),
        outcome: format!("error {code}"),
    }
}

fn seen(e: &Execution) -> Seen {
    Seen {
        sql: e.sql.as_str().to_owned(),
        outcome: match e.error {
            Some(code) => format!("error {code}"),
            None => e.tag.as_str().to_owned(),
        },
    }
}

/// The executions must be exactly `expected`, in order.
#[track_caller]
fn assert_statements(execs: &[&Execution], expected: &[Seen]) {
    let got: Vec<Seen> = execs.iter().map(|e| seen(e)).collect();
    if got == expected {
        return;
    }
    let mut text = String::new();
    for i in 0..got.len().max(expected.len()) {
        let g = got.get(i);
        let x = expected.get(i);
        let mark = if g == x { " " } else { "!" };
        text += &format!(
            "{mark} #{i}\n    expected: {}\n    recorded: {}\n",
            x.map(|s| format!("{:?} → {}", s.sql, s.outcome))
                .unwrap_or_else(|| "(nothing)".into()),
            g.map(|s| format!("{:?} → {}", s.sql, s.outcome))
                .unwrap_or_else(|| "(nothing)".into()),
        );
    }
    let all: Vec<Execution> = execs.iter().map(|e| (*e).clone()).collect();
    panic!(
        "recorded executions differ from the statements the client ran:\n{text}all recorded:\n{}",
        table(&all)
    );
}

/// The executions of each client connection, in the order the connections first appear.
fn by_connection(execs: &[Execution]) -> Vec<Vec<&Execution>> {
    let mut order: Vec<u64> = Vec::new();
    let mut groups: HashMap<u64, Vec<&Execution>> = HashMap::new();
    for e in execs {
        if !groups.contains_key(&e.connection_id) {
            order.push(e.connection_id);
        }
        groups.entry(e.connection_id).or_default().push(e);
    }
    order
        .into_iter()
        .map(|id| groups.remove(&id).unwrap())
        .collect()
}

/// The one connection a scenario used.
#[track_caller]
fn single_connection(execs: &[Execution]) -> Vec<&Execution> {
    let mut groups = by_connection(execs);
    assert_eq!(
        groups.len(),
        1,
        "expected one connection:\n{}",
        table(execs)
    );
    groups.remove(0)
}

/// The digests of `execs` at `indexes`.
fn digests(execs: &[&Execution], indexes: &[usize]) -> Vec<u64> {
    indexes.iter().map(|&i| execs[i].params_digest).collect()
}

/// Each group of executions (indexes into `execs`) was run with equal parameters: its members
/// share one digest, which is not 0 and differs from every other group's.
#[track_caller]
fn assert_digest_groups(execs: &[&Execution], groups: &[&[usize]]) {
    let mut seen_digests = Vec::new();
    for group in groups {
        let ds = digests(execs, group);
        let all: Vec<Execution> = execs.iter().map(|e| (*e).clone()).collect();
        assert!(
            ds.iter().all(|&d| d == ds[0]),
            "executions {group:?} had equal parameters but different digests:\n{}",
            table(&all)
        );
        assert_ne!(
            ds[0],
            0,
            "executions {group:?} have parameters:\n{}",
            table(&all)
        );
        assert!(
            !seen_digests.contains(&ds[0]),
            "executions {group:?} had other parameters than an earlier group, same digest:\n{}",
            table(&all)
        );
        seen_digests.push(ds[0]);
    }
}

#[track_caller]
fn assert_protocol(execs: &[&Execution], protocol: Protocol, named: bool) {
    for e in execs {
        assert!(
            e.protocol == protocol && e.named_statement == named,
            "expected {protocol:?}{}: {}",
            if named { " named" } else { "" },
            line(e)
        );
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

// --- psycopg 3 ---

#[test]
fn psycopg3_pipeline() {
    let o = scenario("psycopg3_pipeline.py", &[], ITEMS);
    assert_eq!(o.doc["failure"], "22012");
    assert_eq!(o.doc["parse_failure"], "42601");
    assert_eq!(o.doc["second_failure"], "23505");
    assert_eq!(o.doc["updated"], 2);
    assert_eq!(
        o.doc["final"],
        json!([
            ["str:alpha", "int:10"],
            ["str:beta", "int:21"],
            ["str:gamma", "int:31"],
            ["str:zeta", "int:6"],
            ["str:eta", "int:7"]
        ])
    );

    let execs = single_connection(&o.execs);
    let insert_returning = "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id, name, qty";
    let insert = "INSERT INTO items (name, qty) VALUES ($1, $2)";
    assert_statements(
        &execs,
        &[
            // One pipeline, one Sync.
            ok(insert_returning, "INSERT 0 1"),
            ok(insert_returning, "INSERT 0 1"),
            ok(insert_returning, "INSERT 0 1"),
            ok(
                "UPDATE items SET qty = qty + $1 WHERE qty >= $2",
                "UPDATE 2",
            ),
            ok("SELECT id, name, qty FROM items ORDER BY id", "SELECT 3"),
            // The failure mid-pipeline: the insert after it was skipped by the server.
            ok(
                "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id",
                "INSERT 0 1",
            ),
            failed("SELECT 1 / (qty - qty) FROM items WHERE name = $1", "22012"),
            // A Parse that fails mid-pipeline.
            ok("SELECT qty FROM items WHERE name = $1", "SELECT 1"),
            failed("SELEC broken", "42601"),
            // Recovery, with a sync point in the pipeline.
            ok(insert, "INSERT 0 1"),
            ok("SELECT count(*), sum(qty) FROM items", "SELECT 1"),
            ok(insert, "INSERT 0 1"),
            failed(insert, "23505"),
            // Outside a pipeline, without parameters: the simple protocol.
            ok("SELECT name, qty FROM items ORDER BY id", "SELECT 5"),
        ],
    );
    assert_protocol(&execs[..13], Protocol::Extended, false);
    assert_protocol(&execs[13..], Protocol::Simple, false);
    let rows: Vec<u64> = execs.iter().map(|e| e.rows).collect();
    assert_eq!(rows, [1, 1, 1, 2, 3, 1, 0, 1, 0, 1, 1, 1, 0, 5]);
    // Different parameters, different digests.
    assert_digest_groups(
        &execs,
        &[&[0], &[1], &[2], &[3], &[5], &[6], &[9], &[11], &[12]],
    );
    // The failed Parse never got parameters.
    assert_eq!(execs[8].params_digest, 0);
}

#[test]
fn psycopg3_prepared_statements() {
    let o = scenario("psycopg3_prepared.py", &[], TEN_ITEMS);
    assert_eq!(o.doc["division"], "22012");
    assert_eq!(o.doc["threshold0_updates"], json!([1, 1, 1]));
    assert_eq!(
        o.doc["threshold0_selects"][1],
        json!([["str:f", "int:6"], ["str:g", "int:7"], ["str:h", "int:8"]])
    );
    assert_eq!(o.doc["prepare_flag"].as_array().unwrap().len(), 8);
    // The server prepared each statement once, under psycopg's names.
    assert_eq!(
        o.doc["server_prepared"],
        json!([
            [
                "str:_pg3_0",
                "str:SELECT name, qty FROM items WHERE qty > $1 ORDER BY id LIMIT 3"
            ],
            [
                "str:_pg3_1",
                "str:UPDATE items SET qty = qty + $1 WHERE name = $2"
            ],
            [
                "str:_pg3_2",
                "str:SELECT 10 / qty FROM items WHERE name = $1"
            ],
            ["str:_pg3_3", "str:UPDATE items SET qty = 0 WHERE name = $1"]
        ])
    );

    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    let (first, second) = (&conns[0], &conns[1]);
    let select = "SELECT name, qty FROM items WHERE qty > $1 ORDER BY id LIMIT 3";
    let update = "UPDATE items SET qty = qty + $1 WHERE name = $2";
    let divide = "SELECT 10 / qty FROM items WHERE name = $1";
    assert_statements(
        first,
        &[
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok("BEGIN", "BEGIN"),
            ok(update, "UPDATE 1"),
            ok(update, "UPDATE 1"),
            ok(update, "UPDATE 1"),
            ok("COMMIT", "COMMIT"),
            ok(divide, "SELECT 1"),
            ok("UPDATE items SET qty = 0 WHERE name = $1", "UPDATE 1"),
            failed(divide, "22012"),
            ok(divide, "SELECT 1"),
            ok(
                "SELECT name, statement FROM pg_prepared_statements ORDER BY name",
                "SELECT 4",
            ),
        ],
    );
    // Every execution of a prepared statement is named and carries the statement's text,
    // though after the first the client sends only Bind/Execute with the name.
    let prepared: Vec<&Execution> = first
        .iter()
        .copied()
        .filter(|e| e.protocol == Protocol::Extended)
        .collect();
    assert_eq!(prepared.len(), 12);
    assert_protocol(&prepared, Protocol::Extended, true);
    assert_protocol(&[first[5], first[9], first[14]], Protocol::Simple, false);
    // Thresholds 0, 5, 0, 7, 5; updates (100, a), (100, b), (100, a); division by a, c, a
    // ("c" also in the UPDATE … = 0 in between).
    assert_digest_groups(
        first,
        &[&[0, 2], &[1, 4], &[3], &[6, 8], &[7], &[10, 13], &[11, 12]],
    );

    let cast_int = "SELECT $1::int + 1";
    let concat = "SELECT $1::text || 'x'";
    assert_statements(
        second,
        &[
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(cast_int, "SELECT 1"),
            ok(concat, "SELECT 1"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
        ],
    );
    // prepare=False runs the unnamed statement; the others are named, including the SELECT
    // prepared again after psycopg closed it to keep its cache at prepared_max.
    assert_protocol(&[second[3]], Protocol::Extended, false);
    let named: Vec<&Execution> = (0..8).filter(|&i| i != 3).map(|i| second[i]).collect();
    assert_protocol(&named, Protocol::Extended, true);
    // Parameters 0, 1, 2, 1 (unnamed), 41, "y", 2, 2.
    assert_digest_groups(second, &[&[0], &[1, 3], &[2, 6, 7], &[4], &[5]]);
    // The digest is of the parameters, not of the connection or the statement's name.
    assert_eq!(first[0].params_digest, second[0].params_digest);
}

#[test]
fn psycopg3_client_side_binding() {
    let o = scenario("psycopg3_client_cursor.py", &[], ITEMS);
    assert_eq!(o.doc["empty"], json!([null, true]));
    assert_eq!(
        o.doc["notices"],
        json!([["NOTICE", "first; 1"], ["WARNING", "second"]])
    );
    assert_eq!(o.doc["failure"], "22012");
    assert_eq!(o.doc["after_failure"], json!(["int:0"]));
    assert_eq!(o.doc["tricky"].as_array().unwrap().len(), 6);
    assert_eq!(
        o.doc["multi"][2]["rows"],
        json!([["str:;", "str:';", "str:x"]])
    );

    let execs = single_connection(&o.execs);
    assert_protocol(&execs, Protocol::Simple, false);
    let insert = |literal: &str, qty: u32| {
        ok(
            &format!("INSERT INTO items (name, qty) VALUES ({literal}, {qty})"),
            "INSERT 0 1",
        )
    };
    assert_statements(
        &execs,
        &[
            insert("'it''s; a test'", 0),
            insert("'semi;colon -- not a comment'", 1),
            insert("'$$dollar; quoted$$'", 2),
            insert(r" E'back\\slash;'", 3),
            insert("'/* not; a comment */'", 4),
            insert("'\"quoted; ident\"'", 5),
            ok(
                concat!(
                    r#"SELECT name, qty FROM items WHERE name = ANY( E'{"it''s; a test","#,
                    r#""semi;colon -- not a comment","$$dollar; quoted$$","back\\\\slash;","#,
                    r#""/* not; a comment */","\\"quoted; ident\\""}') ORDER BY qty"#
                ),
                "SELECT 6",
            ),
            // One Query message, three statements.
            ok(
                "UPDATE items SET qty = qty * 10 WHERE name = 'it''s; a test'",
                "UPDATE 1",
            ),
            ok(
                "SELECT name, qty FROM items WHERE name LIKE '%;%' ORDER BY id",
                "SELECT 6",
            ),
            ok(
                r#"SELECT $q$;$q$ AS dollar, E'\';' AS escaped, 'x' AS ";""#,
                "SELECT 1",
            ),
            // Comments and empty statements.
            ok(
                "/* leading; comment */ SELECT 1 AS one -- trailing; comment",
                "SELECT 1",
            ),
            ok(
                "SELECT 2 AS two /* nested /* ; */ still; comment */",
                "SELECT 1",
            ),
            // A function body in dollar quotes, then a call.
            ok(
                "CREATE FUNCTION bump(x int) RETURNS int LANGUAGE plpgsql AS $fn$ \
                 BEGIN x := x + 1; RETURN x; END $fn$",
                "CREATE FUNCTION",
            ),
            ok("SELECT bump(41)", "SELECT 1"),
            // The failing statement of a multi-statement Query; the one after never ran.
            ok(
                "INSERT INTO items (name, qty) VALUES ('before', 1)",
                "INSERT 0 1",
            ),
            failed("SELECT qty / 0 FROM items", "22012"),
            ok(
                "SELECT count(*) FROM items WHERE name IN ('before', 'after')",
                "SELECT 1",
            ),
            // The comment-only Query ran no statement (EmptyQueryResponse): nothing recorded.
            // Notices arrived between the DO's messages.
            ok(
                "DO $$ BEGIN RAISE NOTICE 'first; %', 1; RAISE WARNING 'second'; END $$",
                "DO",
            ),
            ok(
                "SELECT '\\x0001273b'::bytea::bytea, 1.50::numeric, 2.5::float8, \
                 true::bool, '{1,NULL,3}'::int2[]::int[], '2024-02-29'::date::date",
                "SELECT 1",
            ),
        ],
    );
}

/// An SQL-standard function body (`BEGIN ATOMIC … END`, PostgreSQL 14+) holds semicolons
/// that do not end the statement: the server runs two statements here, not four.
#[test]
fn psycopg3_client_side_binding_sql_function_body() {
    let o = scenario("psycopg3_client_cursor.py", &["function_body"], ITEMS);
    assert_eq!(
        o.doc["function_body"],
        json!([{"rows": null, "status": "CREATE FUNCTION"},
               {"rows": [["int:2"]], "status": "SELECT 1"}])
    );
    let execs = single_connection(&o.execs);
    assert_statements(
        &execs,
        &[
            ok(
                "CREATE FUNCTION two_steps() RETURNS int LANGUAGE sql \
                 BEGIN ATOMIC SELECT 1; SELECT 2; END",
                "CREATE FUNCTION",
            ),
            ok("SELECT two_steps() AS result", "SELECT 1"),
        ],
    );
}

#[test]
fn psycopg3_binary_formats() {
    let o = scenario("psycopg3_binary.py", &[], TYPED);
    assert_eq!(o.doc["binary_same_as_text"], true);
    assert_eq!(o.doc["error"], "22012");
    assert_eq!(o.doc["count"], json!(["int:4"]));
    assert_eq!(o.doc["binary"].as_array().unwrap().len(), 3);
    assert_eq!(o.doc["inserted"], o.doc["reread_binary"]);
    assert_eq!(o.doc["reread_binary"], o.doc["reread_text"]);
    // jsonb, int[], text[] and inet were decoded from binary, not left as text.
    assert_eq!(o.doc["binary_formats"][11], 3802);
    assert_eq!(o.doc["binary"][0][12], json!(["int:1", "int:2", "int:3"]));

    let execs = single_connection(&o.execs);
    let select = "SELECT id, i2, i8, n, f, t, b, ok, d, ts, u, j, arr, tarr, iv, ip \
                  FROM typed WHERE id >= $1 ORDER BY id";
    assert_statements(
        &execs,
        &[
            ok("SET TimeZone TO 'UTC'", "SET"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(
                "INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $15, $16::inet) RETURNING *",
                "INSERT 0 1",
            ),
            ok(select, "SELECT 1"),
            ok(select, "SELECT 1"),
            ok(select, "SELECT 1"),
            failed("SELECT $1::int / 0", "22012"),
            ok("SELECT count(*) FROM typed", "SELECT 1"),
        ],
    );
    assert_protocol(&execs[1..], Protocol::Extended, false);
    // The digest covers values and formats: 0 with binary results, 0 with text results,
    // 7 with binary results twice, 7 with text results.
    assert_digest_groups(&execs, &[&[1], &[2], &[3], &[4, 6], &[5], &[7], &[8]]);
}

#[test]
fn psycopg3_executemany() {
    let o = scenario("psycopg3_executemany.py", &[], ITEMS);
    assert_eq!(o.doc["rowcount"], 8);
    assert_eq!(o.doc["failure"], "23505");
    assert_eq!(
        o.doc["returning"],
        json!([
            [["str:n2", "int:4"]],
            [["str:n4", "int:8"], ["str:n2", "int:8"]],
            [],
            []
        ])
    );
    assert_eq!(o.doc["items"].as_array().unwrap().len(), 8);
    assert_eq!(o.doc["bulk"], json!(["int:20000", "int:199990000"]));

    let execs = single_connection(&o.execs);
    let insert = "INSERT INTO items (name, qty) VALUES ($1, $2)";
    let update = "UPDATE items SET qty = qty * 2 WHERE qty = $1 RETURNING name, qty";
    let mut expected = vec![ok("BEGIN", "BEGIN")];
    expected.extend((0..8).map(|_| ok(insert, "INSERT 0 1")));
    expected.extend([
        ok(update, "UPDATE 1"),
        ok(update, "UPDATE 2"),
        ok(update, "UPDATE 0"),
        ok(update, "UPDATE 0"),
        ok("COMMIT", "COMMIT"),
        ok("BEGIN", "BEGIN"),
        ok(insert, "INSERT 0 1"),
        ok(insert, "INSERT 0 1"),
        ok(insert, "INSERT 0 1"),
        failed(insert, "23505"),
        ok("ROLLBACK", "ROLLBACK"),
        ok("DEALLOCATE ALL", "DEALLOCATE ALL"),
        ok("BEGIN", "BEGIN"),
        ok("SELECT name, qty FROM items ORDER BY id", "SELECT 8"),
        ok("COMMIT", "COMMIT"),
        ok("BEGIN", "BEGIN"),
    ]);
    // The large batch: one execution per row, none lost or merged.
    expected.extend((0..20000).map(|_| ok(insert, "INSERT 0 1")));
    expected.extend([
        ok("COMMIT", "COMMIT"),
        ok("BEGIN", "BEGIN"),
        ok(
            "SELECT count(*), sum(qty) FROM items WHERE name LIKE $1",
            "SELECT 1",
        ),
        ok("COMMIT", "COMMIT"),
    ]);
    assert_statements(&execs, &expected);
    let bulk = &execs[25..25 + 20000];
    assert_protocol(bulk, Protocol::Extended, true);
    let distinct: std::collections::HashSet<u64> = bulk.iter().map(|e| e.params_digest).collect();
    assert_eq!(distinct.len(), 20000, "every row had other parameters");
    // executemany prepares its statement: every row's execution is named.
    assert_protocol(&execs[1..13], Protocol::Extended, true);
    assert_protocol(&execs[15..19], Protocol::Extended, true);
    // Eight different rows, then updates with 2, 4, 99, 2; then four more rows, "n1" being
    // a duplicate name with another quantity.
    let mut groups: Vec<Vec<usize>> = (1..9).map(|i| vec![i]).collect();
    groups.extend([vec![9, 12], vec![10], vec![11]]);
    groups.extend((15..19).map(|i| vec![i]));
    let groups: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
    assert_digest_groups(&execs, &groups);
}

#[test]
fn psycopg3_server_side_cursors() {
    let o = scenario("psycopg3_server_cursor.py", &[], "");
    let chunks = o.doc["chunks"].as_array().unwrap();
    let sizes: Vec<usize> = chunks.iter().map(|c| c.as_array().unwrap().len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(
        chunks[0][6],
        json!(["int:7", "str:8f14e45fceea167a5a36dedd4bea2543", true])
    );
    assert_eq!(o.doc["iterated"].as_array().unwrap().len(), 9);
    assert_eq!(o.doc["after_scroll"][0][0], "int:4");
    assert_eq!(o.doc["held_after_commit"].as_array().unwrap().len(), 5);
    assert_eq!(o.doc["failure"], "22012");

    let execs = single_connection(&o.execs);
    let query = "SELECT g, md5(g::text), g % $1 = 0 FROM generate_series(1, $2) g";
    let fetch =
        |n: &str, cursor: &str, tag: &str| ok(&format!("FETCH FORWARD {n} FROM \"{cursor}\""), tag);
    assert_statements(
        &execs,
        &[
            ok("BEGIN", "BEGIN"),
            ok(
                &format!("DECLARE \"chunked\" CURSOR FOR {query}"),
                "DECLARE CURSOR",
            ),
            fetch("10", "chunked", "FETCH 10"),
            fetch("10", "chunked", "FETCH 10"),
            fetch("10", "chunked", "FETCH 5"),
            fetch("10", "chunked", "FETCH 0"),
            ok("CLOSE \"chunked\"", "CLOSE CURSOR"),
            ok(
                &format!("DECLARE \"itersize\" CURSOR FOR {query}"),
                "DECLARE CURSOR",
            ),
            fetch("4", "itersize", "FETCH 4"),
            fetch("4", "itersize", "FETCH 4"),
            fetch("4", "itersize", "FETCH 1"),
            ok("CLOSE \"itersize\"", "CLOSE CURSOR"),
            ok(
                &format!("DECLARE \"scrolled\" SCROLL CURSOR FOR {query}"),
                "DECLARE CURSOR",
            ),
            fetch("2", "scrolled", "FETCH 2"),
            ok("MOVE ABSOLUTE 3 FROM \"scrolled\"", "MOVE 1"),
            fetch("ALL", "scrolled", "FETCH 3"),
            ok("CLOSE \"scrolled\"", "CLOSE CURSOR"),
            ok("COMMIT", "COMMIT"),
            ok("BEGIN", "BEGIN"),
            ok(
                "DECLARE \"held\" CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, $1) g",
                "DECLARE CURSOR",
            ),
            ok("COMMIT", "COMMIT"),
            fetch("ALL", "held", "FETCH 5"),
            ok("CLOSE \"held\"", "CLOSE CURSOR"),
            ok("BEGIN", "BEGIN"),
            ok(
                "DECLARE \"failing\" CURSOR FOR SELECT 10 / (5 - g) FROM generate_series(1, $1) g",
                "DECLARE CURSOR",
            ),
            fetch("2", "failing", "FETCH 2"),
            failed("FETCH FORWARD ALL FROM \"failing\"", "22012"),
            ok("ROLLBACK", "ROLLBACK"),
        ],
    );
    let declares: Vec<&Execution> = [1, 7, 12, 19, 24].iter().map(|&i| execs[i]).collect();
    assert_protocol(&declares, Protocol::Extended, false);
    // The chunks' rows add up to the cursor's rows.
    let fetched: u64 = execs[2..6].iter().map(|e| e.rows).sum();
    assert_eq!(fetched, 25);
}

#[test]
fn psycopg3_copy_both_ways() {
    let o = scenario("psycopg3_copy.py", &[], ITEMS);
    assert_eq!(o.doc["copy_in_text"], 500);
    assert_eq!(o.doc["copy_in_binary"], 300);
    assert_eq!(o.doc["copy_in_raw"], 3);
    assert_eq!(o.doc["copy_out_text_count"], 16);
    assert_eq!(
        o.doc["copy_out_text"][0],
        json!(["str:text50\t;'\\", "str:50"])
    );
    assert_eq!(o.doc["copy_out_binary"][0], 803);
    assert_eq!(o.doc["aborted"], "client gives up");
    assert_eq!(o.doc["bad_data"], "22P02");
    assert_eq!(o.doc["copy_out_error"], "22012");
    assert_eq!(o.doc["count"], json!(["int:803", "int:80106"]));

    let execs = single_connection(&o.execs);
    assert_protocol(&execs, Protocol::Simple, false);
    let copy_in = "COPY items (name, qty) FROM STDIN";
    assert_statements(
        &execs,
        &[
            ok(copy_in, "COPY 500"),
            ok(
                "COPY items (name, qty) FROM STDIN (FORMAT BINARY)",
                "COPY 300",
            ),
            ok("COPY items (name, qty) FROM STDIN (FORMAT csv)", "COPY 3"),
            ok(
                "COPY (SELECT name, qty FROM items WHERE qty % 50 = 0 ORDER BY id) TO STDOUT",
                "COPY 16",
            ),
            ok(
                "COPY (SELECT name, qty FROM items ORDER BY id) TO STDOUT (FORMAT BINARY)",
                "COPY 803",
            ),
            ok("COPY items TO STDOUT", "COPY 803"),
            // CopyFail from the client, then data the server rejects.
            failed(copy_in, "57014"),
            failed(copy_in, "22P02"),
            // The server fails part-way through a COPY TO.
            failed(
                "COPY (SELECT 10 / (5 - g) FROM generate_series(1, 10) g) TO STDOUT",
                "22012",
            ),
            ok("SELECT count(*), sum(qty) FROM items", "SELECT 1"),
        ],
    );
    let rows: Vec<u64> = execs.iter().map(|e| e.rows).collect();
    assert_eq!(rows, [500, 300, 3, 16, 803, 803, 0, 0, 0, 1]);
}

#[test]
fn psycopg3_listen_notify() {
    let o = scenario("psycopg3_notify.py", &[], "");
    assert_eq!(
        o.doc["waited"],
        json!([
            ["pgscope_test", "first; payload", true],
            ["Other Channel", "second", true],
            ["pgscope_test", "third", true],
            ["pgscope_test", "fourth", true]
        ])
    );
    assert_eq!(o.doc["then"], json!([]));
    assert_eq!(o.doc["handler"], json!([["pgscope_test", "during"]]));
    assert_eq!(o.doc["busy_query"], "int:42");
    assert_eq!(o.doc["after_unlisten"], json!([]));

    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    let sleep = "SELECT pg_sleep(0.05), 42";
    assert_statements(
        &conns[0],
        &[
            ok("LISTEN pgscope_test", "LISTEN"),
            ok("LISTEN \"Other Channel\"", "LISTEN"),
            ok(sleep, "SELECT 1"),
            ok("UNLISTEN *", "UNLISTEN"),
        ],
    );
    assert_statements(
        &conns[1],
        &[
            ok("NOTIFY pgscope_test, 'first; payload'", "NOTIFY"),
            ok("SELECT pg_notify($1, $2)", "SELECT 1"),
            ok("BEGIN", "BEGIN"),
            ok("NOTIFY pgscope_test, 'third'", "NOTIFY"),
            ok("NOTIFY pgscope_test, 'third'", "NOTIFY"),
            ok("NOTIFY pgscope_test, 'fourth'", "NOTIFY"),
            ok("COMMIT", "COMMIT"),
            ok("NOTIFY pgscope_test, 'during'", "NOTIFY"),
            ok("NOTIFY pgscope_test, 'unheard'", "NOTIFY"),
        ],
    );
    // The statement's duration is the server's time, not the time the listener idled.
    let sleep_exec = conns[0][2];
    assert!(
        sleep_exec.duration >= Duration::from_millis(50)
            && sleep_exec.duration < Duration::from_secs(5),
        "{}",
        line(sleep_exec)
    );
    assert!(conns[0][0].duration < Duration::from_secs(5));
}

#[test]
fn psycopg3_ten_megabyte_bytea() {
    let o = scenario("psycopg3_big_bytea.py", &[], BLOBS);
    let sent = o.doc["sent"].as_str().unwrap();
    assert!(sent.starts_with("bytes[10485760]:sha256:"), "{sent}");
    assert_eq!(o.doc["server_length"], "int:10485760");
    assert_eq!(o.doc["server_md5_matches"], true);
    assert_eq!(o.doc["binary_back"], sent);
    assert_eq!(o.doc["text_back"], sent);
    assert_eq!(o.doc["echo"], sent);

    let execs = single_connection(&o.execs);
    let select = "SELECT data FROM blobs WHERE id = $1";
    assert_statements(
        &execs,
        &[
            ok(
                "INSERT INTO blobs (id, data) VALUES ($1, $2) RETURNING length(data), md5(data)",
                "INSERT 0 1",
            ),
            ok(select, "SELECT 1"),
            ok(select, "SELECT 1"),
            ok("SELECT $1::bytea", "SELECT 1"),
        ],
    );
    assert_protocol(&execs, Protocol::Extended, false);
    // Four different sets of parameters (the two selects differ in result format).
    assert_digest_groups(&execs, &[&[0], &[1], &[2], &[3]]);
}

#[test]
fn query_cancellation() {
    let o = scenario("cancel.py", &[], "");
    assert_eq!(o.doc["psycopg"], "57014");
    assert_eq!(o.doc["psycopg_quick"], true);
    assert_eq!(o.doc["psycopg_after"], json!(["int:2"]));
    assert_eq!(o.doc["asyncpg"], "timeout");
    assert_eq!(o.doc["asyncpg_quick"], true);
    assert_eq!(o.doc["asyncpg_after"], "int:4");

    // The cancel requests came on connections of their own, which ran no statement.
    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    assert_statements(
        &conns[0],
        &[
            failed("SELECT pg_sleep($1)", "57014"),
            ok("SELECT 1 + $1", "SELECT 1"),
        ],
    );
    assert_statements(
        &conns[1],
        &[
            failed("SELECT pg_sleep($1)", "57014"),
            ok("SELECT 2 + $1::int", "SUSPENDED"),
        ],
    );
    // The statement ended when it was cancelled, not when its 20 s sleep would have.
    for conn in &conns {
        let cancelled = conn[0];
        assert!(
            cancelled.duration < Duration::from_secs(10),
            "{}",
            line(cancelled)
        );
    }
}

// --- psycopg2 ---

#[test]
fn psycopg2_transactions_cursors_copy() {
    let o = scenario("psycopg2_basic.py", &[], ITEMS);
    // The statement the script builds from 3000 rows, as psycopg2 quotes them.
    let big_values: Vec<String> = (0..3000)
        .map(|i| format!("('big{i};''x''', {i})"))
        .collect();
    let big_values = big_values.join(",");
    let big_insert = format!("INSERT INTO items (name, qty) VALUES {big_values}");
    assert_eq!(o.doc["violation"], "23505");
    assert_eq!(o.doc["in_failed_transaction"], "25P02");
    assert_eq!(o.doc["copy_error"], "22P02");
    assert_eq!(o.doc["copy_in"], 100);
    assert_eq!(o.doc["copy_out_rowcount"], 111);
    assert_eq!(o.doc["named"].as_array().unwrap().len(), 10);
    assert_eq!(o.doc["totals"], json!(["int:111", "int:5344"]));
    assert_eq!(
        o.doc["execute_values_fetch"],
        json!([["str:v1", "int:11"], ["str:v2", "int:22"]])
    );

    assert_eq!(
        o.doc["big_query"],
        json!([big_values.len(), ["int:3000", "str:big9;'x'"]])
    );

    let execs = single_connection(&o.execs);
    assert_protocol(&execs, Protocol::Simple, false);
    let fetch = ok("FETCH FORWARD 4 FROM \"named_cur\"", "FETCH 4");
    let copy_in = "COPY items (name, qty) FROM STDIN";
    assert_statements(
        &execs,
        &[
            ok("BEGIN", "BEGIN"),
            ok(
                "INSERT INTO items (name, qty) VALUES ('one', 1) RETURNING id",
                "INSERT 0 1",
            ),
            ok(
                "INSERT INTO items (name, qty) VALUES ('two', 2), ('it''s', 3)",
                "INSERT 0 2",
            ),
            ok(
                "SELECT id, name, qty FROM items WHERE qty >= 2 ORDER BY id",
                "SELECT 2",
            ),
            ok("COMMIT", "COMMIT"),
            // execute_values, three rows a page.
            ok("BEGIN", "BEGIN"),
            ok(
                "INSERT INTO items (name, qty) VALUES ('v1',10),('v2',20),('v3',30)",
                "INSERT 0 3",
            ),
            ok(
                "INSERT INTO items (name, qty) VALUES ('v4',40),('v5',50),('v6',60)",
                "INSERT 0 3",
            ),
            ok(
                "INSERT INTO items (name, qty) VALUES ('v7',70)",
                "INSERT 0 1",
            ),
            ok(
                "UPDATE items SET qty = data.q FROM (VALUES ('v1',11),('v2',22)) AS data (n, q) \
                 WHERE items.name = data.n RETURNING items.name, items.qty",
                "UPDATE 2",
            ),
            ok("COMMIT", "COMMIT"),
            // The named cursor.
            ok("BEGIN", "BEGIN"),
            ok(
                "DECLARE \"named_cur\" CURSOR WITHOUT HOLD FOR \
                 SELECT name, qty FROM items ORDER BY id",
                "DECLARE CURSOR",
            ),
            fetch.clone(),
            fetch.clone(),
            ok("FETCH FORWARD 4 FROM \"named_cur\"", "FETCH 2"),
            ok("FETCH FORWARD 4 FROM \"named_cur\"", "FETCH 0"),
            ok("CLOSE \"named_cur\"", "CLOSE CURSOR"),
            ok("COMMIT", "COMMIT"),
            // The unique violation, the aborted transaction, rollback, carry on.
            ok("BEGIN", "BEGIN"),
            failed("INSERT INTO items (name, qty) VALUES ('one', 100)", "23505"),
            failed("SELECT 1", "25P02"),
            ok("ROLLBACK", "ROLLBACK"),
            ok("BEGIN", "BEGIN"),
            ok(
                "INSERT INTO items (name, qty) VALUES ('after rollback', 5)",
                "INSERT 0 1",
            ),
            ok("COMMIT", "COMMIT"),
            // COPY both ways, then one the server rejects.
            ok("BEGIN", "BEGIN"),
            ok(copy_in, "COPY 100"),
            ok(
                "COPY (SELECT name, qty FROM items ORDER BY id) TO STDOUT WITH CSV HEADER",
                "COPY 111",
            ),
            ok("COMMIT", "COMMIT"),
            ok("BEGIN", "BEGIN"),
            failed(copy_in, "22P02"),
            ok("ROLLBACK", "ROLLBACK"),
            ok("BEGIN", "BEGIN"),
            ok("SELECT count(*), sum(qty) FROM items", "SELECT 1"),
            ok("COMMIT", "COMMIT"),
            // The 100 KB Query: its two statements.
            ok("BEGIN", "BEGIN"),
            ok(&big_insert, "INSERT 0 3000"),
            ok(
                "SELECT count(*), max(name) FROM items WHERE name LIKE 'big%'",
                "SELECT 1",
            ),
            ok("COMMIT", "COMMIT"),
        ],
    );
    let fetched: u64 = execs[13..17].iter().map(|e| e.rows).sum();
    assert_eq!(fetched, 10);
    // The transaction statuses the server reported include the failed transaction.
    let statuses: Vec<u8> = o.proxy.ready_statuses().iter().map(|&(_, s)| s).collect();
    assert!(
        statuses.contains(&b'E'),
        "{:?}",
        String::from_utf8_lossy(&statuses)
    );
}

/// The startup phase through the proxy: SSL negotiation, startup parameters, startup errors.
#[test]
fn startup_parameters_and_ssl_negotiation() {
    let o = scenario("startup.py", &[], "");
    assert_eq!(
        o.doc["psycopg_prefer"],
        json!([false, ["pg3_app", "1234ms", "pg_catalog,public", "UTF8"]])
    );
    assert_eq!(o.doc["psycopg_require"], true);
    assert_eq!(
        o.doc["psycopg2_prefer"],
        json!(["pg2_app", "0", "\"$user\", public", "LATIN1"])
    );
    assert_eq!(o.doc["no_database"], json!(["does not exist"]));
    assert_eq!(
        o.doc["bad_option"],
        json!(["unrecognized configuration parameter"])
    );
    assert_eq!(o.doc["bad_value"], json!(["invalid value for parameter"]));
    assert_eq!(
        o.doc["asyncpg_prefer"],
        json!(["apg_app", "0", "public", "UTF8"])
    );
    assert_eq!(o.doc["asyncpg_no_database"], "3D000");
    // Only the three sessions that started ran a statement.
    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 3, "{}", table(&o.execs));
    assert!(conns.iter().all(|c| c.len() == 1
        && c[0]
            .sql
            .as_str()
            .starts_with("SELECT current_setting('application_name')")));
}

/// The server runs one connection's statements one after another, so however a statement's
/// duration is measured, the durations of the statements of one pipeline cannot add up to
/// more than the time the client waited for the whole pipeline. Pipelined statements
/// (psycopg 3 pipeline mode, asyncpg executemany) are where a measure taken from the moment
/// the request was forwarded counts the same wait many times over: each statement would be
/// charged the time of every statement queued before it.
#[test]
fn pipelined_statement_durations_do_not_overlap() {
    let o = scenario("pipeline_timing.py", &[], "");
    assert_eq!(
        o.doc["pipeline"],
        json!(["str:slow", "int:0", "int:2", "int:4", "int:6", "int:8"])
    );
    assert_eq!(o.doc["executemany"], "int:2000");
    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    assert_eq!(conns[0].len(), 6);
    assert_eq!(conns[1].len(), 1 + 2000 + 1);
    // The client's own measure of each batch, through the proxy.
    let waited = |key: &str| {
        let seconds = o.proxied["_seconds"][key].as_f64();
        Duration::from_secs_f64(seconds.unwrap_or_else(|| panic!("no _seconds.{key}")))
    };
    let batches = [
        ("the pipeline", &conns[0][..], waited("pipeline")),
        ("executemany", &conns[1][1..2001], waited("executemany")),
    ];
    let mut report = String::new();
    for (what, execs, waited) in batches {
        let sum: Duration = execs.iter().map(|e| e.duration).sum();
        if sum > waited {
            let last = execs.last().unwrap();
            report += &format!(
                "  {what}: {} statements took {sum:?} in total; the client waited {waited:?} \
                 for all of them (the last, {:?}, took {:?})\n",
                execs.len(),
                last.sql.as_str(),
                last.duration,
            );
        }
    }
    assert!(
        report.is_empty(),
        "statement durations overlap:\n{report}first connection:\n{}",
        table(&conns[0].iter().map(|e| (*e).clone()).collect::<Vec<_>>())
    );
}

/// A statement whose implicit commit fails (a deferred foreign key in autocommit): the
/// client's execute() raises 23503, so the proxy must record that failure too, whether the
/// server reports it before the statement's CommandComplete (simple protocol) or after it,
/// at the Sync (extended protocol: psycopg 3 with parameters, asyncpg).
#[test]
fn implicit_commit_failure_is_recorded() {
    let o = scenario("deferred_constraint.py", &[], DEFERRED);
    for case in [
        "psycopg_extended",
        "psycopg_simple",
        "psycopg_explicit",
        "asyncpg",
    ] {
        assert_eq!(o.doc[case], "23503", "{case}");
    }
    assert_eq!(o.doc["children"], json!(["int:0"]));

    // One connection per case, in the script's order.
    let conns = by_connection(&o.execs);
    let cases = [
        (
            "psycopg 3, extended protocol, commit at Sync",
            "INSERT INTO child VALUES ($1)",
        ),
        (
            "psycopg 3, simple protocol",
            "INSERT INTO child VALUES (998)",
        ),
        ("psycopg 3, explicit COMMIT", "COMMIT"),
        ("asyncpg, commit at Sync", "INSERT INTO child VALUES ($1)"),
    ];
    assert_eq!(conns.len(), cases.len(), "{}", table(&o.execs));
    let mut missing = Vec::new();
    for ((case, statement), execs) in cases.iter().zip(&conns) {
        assert!(
            execs.iter().any(|e| e.sql.as_str() == *statement),
            "{case}: {statement:?} not recorded:\n{}",
            table(&o.execs)
        );
        // The failure is best recorded on the statement; an execution of its own for the
        // implicit commit would do too: either way the connection's failure is counted.
        if !execs
            .iter()
            .any(|e| e.error.map(|c| c.as_str() == "23503") == Some(true))
        {
            missing.push(*case);
        }
    }
    assert!(
        missing.is_empty(),
        "the client got 23503 but the proxy recorded no failure for: {missing:?}\nrecorded:\n{}",
        table(&o.execs)
    );
}

/// A LATIN1 client: the server converts, the proxy relays the bytes as they are and still
/// records every statement, extended (psycopg 3) and simple (psycopg2) alike.
#[test]
fn client_encoding_latin1() {
    let o = scenario("encoding.py", &[], ITEMS);
    assert_eq!(o.doc["psycopg_encoding"], "LATIN1");
    let cafe = json!([["str:se\u{f1}or caf\u{e9}"]]);
    assert_eq!(o.doc["psycopg_insert"], cafe);
    assert_eq!(o.doc["psycopg2_select"], cafe);
    assert_eq!(
        o.doc["psycopg_select"][1],
        json!([["str:se\u{f1}or caf\u{e9}", "int:10", "int:12"]])
    );

    // The SQL is not UTF-8: how its non-ASCII bytes are shown is the proxy's business, but
    // every statement is there, with the rest of its text.
    let ascii = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect()
    };
    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    let got: Vec<(String, String)> = o
        .execs
        .iter()
        .map(|e| (ascii(e.sql.as_str()), seen(e).outcome))
        .collect();
    let select = "SELECT name, length(name), octet_length(convert_to(name, 'UTF8')) \
                  FROM items WHERE name LIKE 'se?or%' AND qty = $1";
    let expected: Vec<(String, String)> = [
        ("SHOW client_encoding", "SHOW"),
        (
            "INSERT INTO items (name, qty) VALUES ('se?or ' || $1, 1) RETURNING name",
            "INSERT 0 1",
        ),
        (select, "SELECT 1"),
        (select, "SELECT 1"),
        ("SET client_encoding TO 'LATIN1'", "SET"),
        (
            "INSERT INTO items (name, qty) VALUES ('ni?o ?', 2)",
            "INSERT 0 1",
        ),
        (
            "SELECT name FROM items WHERE name LIKE 'se?or%' ORDER BY qty",
            "SELECT 1",
        ),
    ]
    .iter()
    .map(|(s, t)| (s.to_string(), t.to_string()))
    .collect();
    assert_eq!(got, expected, "recorded:\n{}", table(&o.execs));
    assert_protocol(&conns[0][1..], Protocol::Extended, false);
    assert_digest_groups(&conns[0], &[&[1], &[2, 3]]);
}

/// libpq's large-object calls use the function-call protocol: each is one execution.
#[test]
fn psycopg2_large_objects() {
    let o = scenario("psycopg2_large_objects.py", &[], "");
    assert_eq!(o.doc["written"], 102400);
    assert_eq!(o.doc["size"], 102400);
    assert_eq!(o.doc["whole_matches"], true);
    assert_eq!(o.doc["middle"], "bytes:50515253545556575859");
    assert_eq!(o.doc["server"], json!(["int:102400", true]));
    assert_eq!(o.doc["missing"], true);
    assert_eq!(o.doc["left"], json!(["int:0"]));

    let execs = single_connection(&o.execs);
    // (protocol, outcome) of each execution, the SQL of the queries.
    let shape: Vec<String> = execs
        .iter()
        .map(|e| match e.protocol {
            Protocol::FunctionCall => {
                assert_eq!(e.sql.as_str(), "fastpath function call");
                assert_eq!(e.params_digest, 0);
                format!("F {}", seen(e).outcome)
            }
            _ => {
                let sql = e.sql.as_str();
                let head = sql.split(" WHERE ").next().unwrap_or(sql);
                let head = head.split('(').next().unwrap_or(head).trim();
                format!("Q {head} → {}", seen(e).outcome)
            }
        })
        .collect();
    let f = "F FUNCTION CALL".to_owned();
    let mut expected = vec![
        "Q BEGIN → BEGIN".to_owned(),
        // libpq looks up the large-object functions' OIDs once.
        "Q select proname, oid from pg_catalog.pg_proc where proname in → SELECT 13".to_owned(),
    ];
    // lo_creat, lo_open, two lo_write, lo_close.
    expected.extend(std::iter::repeat_n(f.clone(), 5));
    expected.extend(["Q COMMIT → COMMIT".to_owned(), "Q BEGIN → BEGIN".to_owned()]);
    // lo_open, loread, lo_lseek64, loread, lo_lseek64, the whole read, lo_lseek64, lo_close.
    expected.extend(std::iter::repeat_n(f.clone(), 11));
    expected.extend([
        "Q SELECT length → SELECT 1".to_owned(),
        "Q COMMIT → COMMIT".to_owned(),
        "Q BEGIN → BEGIN".to_owned(),
        // lo_open of a large object that does not exist.
        "F error 42704".to_owned(),
        "Q ROLLBACK → ROLLBACK".to_owned(),
        "Q BEGIN → BEGIN".to_owned(),
    ]);
    expected.extend(std::iter::repeat_n(f.clone(), 3));
    expected.extend([
        "Q COMMIT → COMMIT".to_owned(),
        "Q BEGIN → BEGIN".to_owned(),
        "Q SELECT count → SELECT 1".to_owned(),
        "Q COMMIT → COMMIT".to_owned(),
    ]);
    assert_eq!(shape, expected, "recorded:\n{}", table(&o.execs));
}

/// Authentication passes through untouched: libpq and asyncpg (its own SCRAM and md5 code)
/// log in with a password through the proxy, and a wrong one fails there as it does directly.
#[test]
fn password_authentication() {
    for role in [SCRAM, MD5, PASSWORD] {
        let o = scenario_as("auth.py", &[], "", Some(role));
        let who = json!([role.user, role.user, "ok"]);
        assert_eq!(o.doc["psycopg"], who, "{role:?}");
        assert_eq!(o.doc["psycopg2"], who, "{role:?}");
        assert_eq!(o.doc["asyncpg"], who, "{role:?}");
        assert_eq!(o.doc["asyncpg_wrong"], "28P01", "{role:?}");
        assert_eq!(o.doc["psycopg_wrong"], true, "{role:?}");
        assert_eq!(o.doc["psycopg2_wrong"], true, "{role:?}");
        // Three sessions ran the query; the failed logins ran nothing.
        let conns = by_connection(&o.execs);
        assert_eq!(conns.len(), 3, "{role:?}: {}", table(&o.execs));
        for conn in &conns {
            let who = "SELECT current_user::text, session_user::text, 'ok'";
            assert_eq!(conn.len(), 1, "{}", table(&o.execs));
            assert_eq!(seen(conn[0]).sql, who);
            assert_eq!(conn[0].rows, 1);
        }
    }
}

// --- asyncpg ---

#[test]
fn asyncpg_prepared_statements() {
    let o = scenario("asyncpg_prepared.py", &[], TEN_ITEMS);
    assert_eq!(o.doc["params"], json!(["int4"]));
    assert_eq!(o.doc["columns"], json!(["name", "qty"]));
    assert_eq!(o.doc["fetchval"], "str:j");
    assert_eq!(o.doc["execute_status"], "UPDATE 2");
    assert_eq!(o.doc["syntax"], "42601");
    assert_eq!(o.doc["undefined_table"], "42P01");
    assert_eq!(o.doc["unique"], "23505");
    assert_eq!(o.doc["division"], "22012");
    assert_eq!(
        o.doc["prepared_after_errors"],
        json!([
            ["str:a", "int:101"],
            ["str:b", "int:102"],
            ["str:j", "int:10"]
        ])
    );
    assert_eq!(
        o.doc["schema_change"],
        json!([
            [["int:5", "str:e", "int:5"]],
            [["int:5", "str:e", "int:5", "str:new"]]
        ])
    );

    let conns = by_connection(&o.execs);
    assert_eq!(conns.len(), 2, "{}", table(&o.execs));
    let select = "SELECT name, qty FROM items WHERE qty > $1 ORDER BY id LIMIT 3";
    let by_name = "SELECT id, qty FROM items WHERE name = $1";
    let star = "SELECT * FROM items WHERE name = $1";
    assert_statements(
        &conns[0],
        &[
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 2"),
            ok(select, "SELECT 3"),
            // fetchrow and fetchval ask for one row: the portal is suspended after it.
            ok(select, "SUSPENDED"),
            ok(select, "SUSPENDED"),
            ok(by_name, "SELECT 1"),
            ok(by_name, "SELECT 1"),
            ok(by_name, "SELECT 1"),
            ok(
                "UPDATE items SET qty = qty + $1 WHERE name = ANY($2::text[])",
                "UPDATE 2",
            ),
            // Failures at Parse (statement prepared by name, so named), then at Execute.
            failed("SELEC name FROM items", "42601"),
            failed("SELECT * FROM no_such_table", "42P01"),
            failed("INSERT INTO items (name, qty) VALUES ($1, $2)", "23505"),
            failed(
                "SELECT 100 / (qty - $1) FROM items WHERE name = $2",
                "22012",
            ),
            ok(select, "SELECT 3"),
            // The cached statement's plan is refused after ALTER TABLE; asyncpg prepares it
            // again (under a new name) and retries.
            ok(star, "SELECT 1"),
            ok(
                "ALTER TABLE items ADD COLUMN note text DEFAULT 'new'",
                "ALTER TABLE",
            ),
            failed(star, "0A000"),
            ok(star, "SELECT 1"),
        ],
    );
    let extended: Vec<&Execution> = conns[0]
        .iter()
        .copied()
        .filter(|e| !e.sql.as_str().starts_with("ALTER"))
        .collect();
    assert_eq!(extended.len(), 19);
    assert_protocol(&extended, Protocol::Extended, true);
    assert_protocol(&[conns[0][17]], Protocol::Simple, false);
    let rows: Vec<u64> = conns[0].iter().map(|e| e.rows).collect();
    assert_eq!(rows[..11], [3, 3, 3, 2, 3, 1, 1, 1, 1, 1, 2]);
    // Parameters 0, 5, 0, 8, 5, 2, 9; "a", "b", "a"; …; 9 again at the end.
    assert_digest_groups(
        &conns[0],
        &[
            &[0, 2],
            &[1, 4],
            &[3],
            &[5],
            &[6, 15],
            &[7, 9],
            &[8],
            &[10],
            &[13],
            &[14],
            &[16, 18, 19],
        ],
    );
    assert_eq!(
        conns[0][11].params_digest, 0,
        "a failed Parse has no parameters"
    );

    // Without the statement cache: the unnamed statement, parameters 1, 1, 2.
    assert_statements(
        &conns[1],
        &[
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
            ok(select, "SELECT 3"),
        ],
    );
    assert_protocol(&conns[1], Protocol::Extended, false);
    assert_digest_groups(&conns[1], &[&[0, 1], &[2]]);
    // fetchrow(2) above and fetch(2) here: the digest covers parameters and formats only.
    assert_eq!(conns[0][5].params_digest, conns[1][2].params_digest);
}

#[test]
fn asyncpg_binary_types() {
    let o = scenario("asyncpg_types.py", &[], TYPED);
    assert_eq!(o.doc["stored"].as_array().unwrap().len(), 3);
    assert_eq!(o.doc["inserted"], o.doc["reread"]);
    assert_eq!(
        o.doc["server_equal"],
        json!([true, true, true, true, true, true, true])
    );
    assert_eq!(o.doc["stored"][0][12], json!(["int:1", "int:2", "int:3"]));
    assert_eq!(o.doc["stored"][1][4], "float:inf");
    assert_eq!(o.doc["many"], "int:1600000");
    assert_eq!(o.doc["many_rows"][0], 5000);

    // asyncpg may run its own introspection queries first; ours come in order.
    let execs = single_connection(&o.execs);
    assert_protocol(&execs[1..], Protocol::Extended, true);
    let ours: Vec<&Execution> = execs
        .iter()
        .copied()
        .filter(|e| {
            !e.sql
                .as_str()
                .trim_start()
                .starts_with("WITH RECURSIVE typeinfo_tree")
        })
        .filter(|e| !e.sql.as_str().contains("set_config('jit'"))
        .collect();
    let columns = "id, i2, i8, n, f, t, b, ok, d, ts, u, j, arr, tarr, iv, ip";
    let placeholders: Vec<String> = (1..=16).map(|i| format!("${i}")).collect();
    assert_statements(
        &ours,
        &[
            ok("SET TimeZone TO 'UTC'", "SET"),
            ok(
                &format!("SELECT {columns} FROM typed ORDER BY id"),
                "SELECT 3",
            ),
            ok(
                &format!(
                    "INSERT INTO typed ({columns}) VALUES ({}) RETURNING {columns}",
                    placeholders.join(", ")
                ),
                "INSERT 0 1",
            ),
            ok(
                "SELECT i8 = $1, n = $2, b = $3, ts = $4, u = $5, j = $6::jsonb, arr = $7 \
                 FROM typed WHERE id = 7",
                "SUSPENDED",
            ),
            ok(
                &format!("SELECT {columns} FROM typed WHERE id = $1"),
                "SELECT 1",
            ),
            ok(
                "SELECT $1::int[][], ROW(1, 'x', NULL)::record, 2::numeric ^ 200, \
                 '{\"deep\": {\"list\": [1, 2, 3]}}'::jsonb",
                "SUSPENDED",
            ),
            ok(
                "SELECT sum(length(x)) FROM (SELECT repeat(md5(g::text), 10) AS x \
                 FROM generate_series(1, $1) g) s",
                "SUSPENDED",
            ),
            ok(
                "SELECT g, repeat('x', g % 100) FROM generate_series(1, $1) g",
                "SELECT 5000",
            ),
        ],
    );
    assert_eq!(ours[7].rows, 5000);
    // Both 5000s: equal parameters, equal digests.
    assert_digest_groups(&ours, &[&[2], &[3], &[4], &[5], &[6, 7]]);
}

#[test]
fn asyncpg_executemany() {
    let o = scenario("asyncpg_executemany.py", &[], ITEMS);
    assert_eq!(o.doc["after_first"], json!(["int:20", "int:210"]));
    assert_eq!(o.doc["failure"], "23505");
    let items = o.doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 22, "the failed batch left nothing behind");
    assert_eq!(items[0], json!(["str:r1", "int:10000"]));
    assert_eq!(o.doc["bulk"], json!(["int:20000", "int:199990000"]));

    let execs = single_connection(&o.execs);
    let insert = "INSERT INTO items (name, qty) VALUES ($1, $2)";
    let update = "UPDATE items SET qty = qty * $2 WHERE name = $1";
    let mut expected: Vec<Seen> = (0..20).map(|_| ok(insert, "INSERT 0 1")).collect();
    expected.extend([
        ok("SELECT count(*), sum(qty) FROM items", "SUSPENDED"),
        ok(update, "UPDATE 1"),
        ok(update, "UPDATE 1"),
        ok(update, "UPDATE 1"),
        // The batch with a duplicate third row: the fourth row was never executed.
        ok(insert, "INSERT 0 1"),
        ok(insert, "INSERT 0 1"),
        failed(insert, "23505"),
        ok("BEGIN", "BEGIN"),
        ok(insert, "INSERT 0 1"),
        ok(insert, "INSERT 0 1"),
        ok("COMMIT", "COMMIT"),
        ok("SELECT name, qty FROM items ORDER BY id", "SELECT 22"),
    ]);
    // The large batch: one execution per row, none lost or merged.
    expected.extend((0..20000).map(|_| ok(insert, "INSERT 0 1")));
    expected.push(ok(
        "SELECT count(*), sum(qty) FROM items WHERE name LIKE 'bulk%'",
        "SUSPENDED",
    ));
    assert_statements(&execs, &expected);
    let extended: Vec<&Execution> = execs
        .iter()
        .copied()
        .filter(|e| e.protocol == Protocol::Extended)
        .collect();
    assert_eq!(extended.len(), 30 + 20000 + 1);
    assert_protocol(&extended, Protocol::Extended, true);
    // Twenty different rows; updates (r1, 100), (r2, 100), (r1, 100).
    let mut groups: Vec<Vec<usize>> = (0..20).map(|i| vec![i]).collect();
    groups.extend([vec![21, 23], vec![22]]);
    let groups: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
    assert_digest_groups(&execs, &groups);
    let bulk = &execs[32..32 + 20000];
    let distinct: std::collections::HashSet<u64> = bulk.iter().map(|e| e.params_digest).collect();
    assert_eq!(distinct.len(), 20000, "every row had other parameters");
}

#[test]
fn asyncpg_cursor_with_prefetch() {
    let o = scenario("asyncpg_cursor.py", &[], "");
    let iterated = strs(&o.doc["iterated"]);
    assert_eq!(iterated.len(), 25);
    assert_eq!(iterated[24], "int:25");
    assert_eq!(o.doc["fetch7"].as_array().unwrap().len(), 7);
    assert_eq!(o.doc["forward"], 5);
    assert_eq!(o.doc["fetchrow"][0], "int:13");
    assert_eq!(o.doc["fetch_rest"], 17);
    assert_eq!(o.doc["failure"], "22012");
    assert_eq!(o.doc["failed_after"].as_array().unwrap().len(), 10);
    assert_eq!(o.doc["still_works"], "int:3");

    let execs = single_connection(&o.execs);
    let query = "SELECT g, md5(g::text) FROM generate_series(1, $1) g";
    let failing = "SELECT 10 / (12 - g) FROM generate_series(1, $1) g";
    let suspended = ok(query, "SUSPENDED");
    let move_sql = execs
        .iter()
        .map(|e| e.sql.as_str())
        .find(|s| s.starts_with("MOVE FORWARD 5 "))
        .unwrap_or("MOVE FORWARD 5 (missing)")
        .to_owned();
    assert_statements(
        &execs,
        &[
            ok("BEGIN", "BEGIN"),
            // prefetch=10 over 25 rows: Execute with a row limit, twice suspended.
            suspended.clone(),
            suspended.clone(),
            ok(query, "SELECT 5"),
            ok("COMMIT", "COMMIT"),
            ok("BEGIN", "BEGIN"),
            suspended.clone(),
            ok(&move_sql, "MOVE 5"),
            suspended.clone(),
            ok(query, "SELECT 17"),
            ok("COMMIT", "COMMIT"),
            ok("BEGIN", "BEGIN"),
            ok(failing, "SUSPENDED"),
            ok(failing, "SUSPENDED"),
            failed(failing, "22012"),
            ok("ROLLBACK", "ROLLBACK"),
            ok("SELECT count(*) FROM generate_series(1, $1)", "SUSPENDED"),
        ],
    );
    assert!(move_sql.contains("__asyncpg_portal_"), "{move_sql}");
    // Each row-limited Execute counts its own rows; together they are the cursor's rows.
    let rows: Vec<u64> = execs.iter().map(|e| e.rows).collect();
    assert_eq!(rows[1..4], [10, 10, 5]);
    assert_eq!(rows[6..10], [7, 5, 1, 17]);
    assert_eq!(rows[12..14], [5, 5]);
    // The portal's executions share the Bind's parameters.
    assert_digest_groups(&execs, &[&[1, 2, 3], &[6, 8, 9], &[12, 13, 14]]);
    let portal: Vec<&Execution> = [1, 2, 3, 6, 8, 9, 12, 13, 14]
        .iter()
        .map(|&i| execs[i])
        .collect();
    assert_protocol(&portal, Protocol::Extended, true);
}

#[test]
fn asyncpg_copy() {
    let o = scenario("asyncpg_copy.py", &[], ITEMS);
    assert_eq!(o.doc["records"], "COPY 1000");
    assert_eq!(o.doc["file"], "COPY 3");
    assert_eq!(o.doc["query_out"], "COPY 2");
    assert_eq!(o.doc["query_out_data"], "rec999\t999\nrec1000\t1000\n");
    assert_eq!(o.doc["table_out"], "COPY 1003");
    assert_eq!(o.doc["failure"], "23505");
    assert_eq!(o.doc["totals"], json!(["int:1003", "int:500506"]));

    let execs = single_connection(&o.execs);
    let copy_records = r#"COPY "items"("name", "qty") FROM STDIN (FORMAT binary)"#;
    assert_statements(
        &execs,
        &[
            ok(copy_records, "COPY 1000"),
            ok(
                r#"COPY "items"("name", "qty") FROM STDIN (FORMAT 'csv')"#,
                "COPY 3",
            ),
            // copy_from_query quotes its arguments with a query of its own first.
            ok(
                r#"SELECT quote_literal($1::"pg_catalog"."int4"::text)"#,
                "SUSPENDED",
            ),
            ok(
                "COPY (SELECT name, qty FROM items WHERE qty > '998' ORDER BY id) TO STDOUT",
                "COPY 2",
            ),
            ok(r#"COPY "items" TO STDOUT (FORMAT 'binary')"#, "COPY 1003"),
            failed(copy_records, "23505"),
            ok("SELECT count(*), sum(qty) FROM items", "SUSPENDED"),
        ],
    );
    let copies: Vec<&Execution> = [0, 1, 3, 4, 5].iter().map(|&i| execs[i]).collect();
    assert_protocol(&copies, Protocol::Simple, false);
    let rows: Vec<u64> = execs.iter().map(|e| e.rows).collect();
    assert_eq!(rows, [1000, 3, 1, 2, 1003, 0, 1]);
}

/// Every scenario script of tests/clients has a test here (or in another test file).
#[test]
fn every_client_script_is_used() {
    let source = [include_str!("relay_python.rs"), include_str!("stats.rs")].concat();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(clients_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".py")
            && !name.starts_with('_')
            && !source.contains(&format!("\"{name}\""))
        {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "scripts without a test: {missing:?}");
}
