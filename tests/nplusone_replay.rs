//! The N+1 and duplicate detector on recorded Django traffic, without a server.
//!
//! `tests/fixtures/django_sequences.json` holds, for every view of the Django project in
//! `tests/django/`, the statements it sent (as each driver puts them on the wire), their row
//! counts and transaction state, and the findings the view must (or must not) produce. Each
//! view is replayed through the same [`Analyzer`] the observer thread runs, for each driver,
//! with and without sqlcommenter comments, so the rules can be changed with confidence: every
//! view's expected findings must come out exactly, and nothing else.

use std::time::{Duration, Instant, SystemTime};

use pgscope::observe::{Analyzer, Burst, Registry};
use pgscope::proxy::{CommandTag, Execution, Protocol, SqlText};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/django_sequences.json");

/// (kind, child table, parent table, orm, model, field, burst size)
type Expected = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    u64,
);

fn expected(view: &Value) -> Vec<Expected> {
    let mut out: Vec<Expected> = view["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(str::to_owned);
            (
                s("kind").unwrap(),
                s("child_table").unwrap(),
                s("parent_table"),
                s("orm"),
                s("model"),
                s("field"),
                e["burst"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn found(bursts: &[Burst]) -> Vec<Expected> {
    let mut out: Vec<Expected> = bursts
        .iter()
        .map(|b| {
            (
                if b.duplicate {
                    "duplicate"
                } else {
                    "n_plus_one"
                }
                .to_owned(),
                b.shape.table.clone().unwrap_or_default(),
                b.parent.as_ref().and_then(|p| p.1.table.clone()),
                b.suggestion.orm.map(|o| o.as_str().to_owned()),
                b.suggestion.model.clone(),
                b.suggestion.field.clone(),
                b.size,
            )
        })
        .collect();
    out.sort();
    out
}

/// The SQL text and parameters a driver put on the wire for one statement.
fn wire(statement: &Value, driver: &str, comments: bool) -> (String, Option<Vec<String>>) {
    let w = &statement["wire"][driver];
    let (sql, params) = match w {
        Value::String(s) => (s.clone(), None),
        // Without parameters the driver sends the text by the simple protocol.
        obj => (
            obj["sql"].as_str().unwrap().to_owned(),
            obj["params"]
                .as_array()
                .map(|ps| ps.iter().map(|p| p.to_string()).collect()),
        ),
    };
    let sql = match (comments, statement["comment"].as_str()) {
        (false, Some(c)) => sql
            .strip_suffix(c)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or(sql),
        _ => sql,
    };
    (sql, params)
}

/// Replay one view for one driver; the findings it produced.
fn replay(view: &Value, driver: &str, comments: bool) -> Vec<Burst> {
    let mut analyzer = Analyzer::new(5);
    let mut registry = Registry::new(1000);
    let mut out = Vec::new();
    let persistent = view["persistent_connection"].as_bool().unwrap();
    let mut clock = Instant::now();
    let mut connection = 1u64;
    let mut status = b'I';
    for request in view["requests"].as_array().unwrap() {
        for s in request["statements"].as_array().unwrap() {
            let (sql, params) = wire(s, driver, comments);
            let rows = s["rows"].as_u64().unwrap();
            let duration = Duration::from_micros(150);
            let (protocol, params_digest) = match &params {
                Some(p) => (
                    Protocol::Extended,
                    xxhash_rust::xxh3::xxh3_64(p.join("\0").as_bytes()),
                ),
                None => (Protocol::Simple, 0),
            };
            let e = Execution {
                connection_id: connection,
                sql: SqlText::new(&sql),
                backslash_quotes: false,
                protocol,
                named_statement: false,
                started: clock,
                started_at: SystemTime::now(),
                duration,
                rows,
                tag: CommandTag::default(),
                error: None,
                params_digest,
            };
            analyzer.execution(&mut registry, e, &mut out);
            // Django's loop overhead between two statements.
            clock += duration + Duration::from_micros(200);
            let now = if s["in_transaction"].as_bool().unwrap() {
                b'T'
            } else {
                b'I'
            };
            if now != status {
                status = now;
                analyzer.ready_for_query(connection, status, &mut out);
            }
        }
        if !persistent {
            analyzer.closed(connection, &mut out);
            connection += 1;
        }
        // Requests on a kept connection follow each other back to back.
        clock += Duration::from_millis(1);
    }
    analyzer.closed(connection, &mut out);
    out
}

#[test]
fn recorded_django_views_give_exactly_their_findings() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    assert_eq!(fixture["n1_threshold"], 5);
    let views = fixture["views"].as_array().unwrap();
    assert!(views.len() >= 15, "the fixture holds every view");
    let mut failures = Vec::new();
    let mut checked = 0;
    for view in views {
        let name = view["name"].as_str().unwrap();
        let want = expected(view);
        for driver in ["psycopg2", "psycopg3", "psycopg3-server-binding"] {
            for comments in [true, false] {
                let bursts = replay(view, driver, comments);
                let got = found(&bursts);
                checked += 1;
                if got != want {
                    failures.push(format!(
                        "{name} ({driver}, comments {comments}):\n  want {want:?}\n  got  {got:?}"
                    ));
                }
                for b in &bursts {
                    // With comments, the finding carries the request's route.
                    let route = b.route.as_deref();
                    if comments && !want.is_empty() {
                        let expected_route = view["route"].as_str();
                        if route != expected_route {
                            failures.push(format!(
                                "{name} ({driver}): route {route:?}, want {expected_route:?}"
                            ));
                        }
                    }
                    if !b
                        .suggestion
                        .text
                        .contains(b.suggestion.field.as_deref().unwrap_or(""))
                    {
                        failures.push(format!("{name}: advice does not name the field"));
                    }
                }
            }
        }
    }
    assert_eq!(checked, views.len() * 6);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_fixture_has_findings_of_every_kind_and_innocent_views() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let all: Vec<Expected> = fixture["views"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(expected)
        .collect();
    for orm in ["select_related", "prefetch_related", "cache"] {
        assert!(
            all.iter().any(|e| e.3.as_deref() == Some(orm)),
            "no view expects {orm}"
        );
    }
    assert!(all.iter().any(|e| e.5.as_deref() == Some("member__branch")));
    let innocent = fixture["views"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["expected"].as_array().unwrap().is_empty())
        .count();
    assert!(innocent >= 10, "{innocent} views expect nothing");
}
