//! Normalizer micro-benchmarks: pgscope's single-pass normalizer against a baseline built on
//! sqlparser's tokenizer (tokenize, replace literal tokens with placeholders, join), over the
//! corpus in tests/corpus/django.sql, one typical Django statement and a 1000-value IN list.
//! Also the cost of `analyze`, which runs once per new fingerprint.
//!
//! Run with `cargo bench --bench normalize`. Targets: ≥ 10× faster than the baseline, ≤ 1 µs per
//! typical ~150-byte statement, ≤ 20 µs for the 1000-value IN list.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pgscope::fingerprint::{analyze, normalize};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// A typical Django statement (`Book.objects.filter(author_id=42).order_by("id")[:21]`), 152
/// bytes.
const TYPICAL: &str = "SELECT \"shop_book\".\"id\", \"shop_book\".\"title\", \"shop_book\".\"price\" \
    FROM \"shop_book\" WHERE \"shop_book\".\"author_id\" = 42 ORDER BY \"shop_book\".\"id\" LIMIT 21";

/// The statements of the corpus, as clients send them.
fn corpus() -> Vec<String> {
    let text = include_str!("../tests/corpus/django.sql");
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.starts_with("-- @@ ") {
            current = Some(Vec::new());
        } else if line.starts_with("-- => ") {
            if let Some(lines) = current.take() {
                out.push(lines.join("\n"));
            }
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    assert!(!out.is_empty(), "empty corpus");
    out
}

fn in_list(n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| (i * 7919 % 100_000).to_string()).collect();
    format!(
        "SELECT \"shop_book\".\"id\", \"shop_book\".\"title\" FROM \"shop_book\" WHERE \"shop_book\".\"id\" IN ({})",
        values.join(", ")
    )
}

/// The baseline: sqlparser's tokenizer, literals replaced by `$n`, white space folded,
/// comments dropped, tokens joined back.
fn baseline(sql: &str, out: &mut String) {
    out.clear();
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return;
    };
    let mut n = 0;
    for token in tokens {
        match token {
            Token::Whitespace(
                Whitespace::Space
                | Whitespace::Newline
                | Whitespace::Tab
                | Whitespace::SingleLineComment { .. }
                | Whitespace::MultiLineComment(_),
            ) => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_) => {
                n += 1;
                let _ = write!(out, "${n}");
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let statements = corpus();
    let bytes: usize = statements.iter().map(String::len).sum();

    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("pgscope", |b| {
        let mut out = String::with_capacity(4096);
        b.iter(|| {
            for sql in &statements {
                black_box(normalize(black_box(sql.as_bytes()), &mut out));
            }
        })
    });
    group.bench_function("sqlparser_tokenizer_baseline", |b| {
        let mut out = String::with_capacity(4096);
        b.iter(|| {
            for sql in &statements {
                baseline(black_box(sql), &mut out);
                black_box(&out);
            }
        })
    });
    group.finish();

    let list = in_list(1000);
    let mut group = c.benchmark_group("statement");
    for (name, sql) in [
        ("typical_django_152B", TYPICAL),
        ("in_list_1000", list.as_str()),
    ] {
        group.throughput(Throughput::Bytes(sql.len() as u64));
        group.bench_with_input(BenchmarkId::new("pgscope", name), sql, |b, sql| {
            let mut out = String::with_capacity(4096);
            b.iter(|| black_box(normalize(black_box(sql.as_bytes()), &mut out)))
        });
        group.bench_with_input(
            BenchmarkId::new("sqlparser_tokenizer_baseline", name),
            sql,
            |b, sql| {
                let mut out = String::with_capacity(4096);
                b.iter(|| {
                    baseline(black_box(sql), &mut out);
                    black_box(out.len())
                })
            },
        );
    }
    group.finish();

    // Once per new fingerprint: the deeper analysis with sqlparser.
    let normalized: Vec<String> = statements
        .iter()
        .map(|sql| {
            let mut out = String::new();
            normalize(sql.as_bytes(), &mut out);
            out
        })
        .collect();
    let mut group = c.benchmark_group("analyze");
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for sql in &normalized {
                black_box(analyze(black_box(sql)));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
