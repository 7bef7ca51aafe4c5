//! The Prometheus text exposition of `/metrics`.
//!
//! Per-fingerprint series are bounded by `--export-top`: the fingerprints with the most total
//! time get their own label set, all others are summed under `fingerprint="other"`. Histogram
//! buckets come from each fingerprint's hdrhistogram, the same source as the API's quantiles.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::State;
use crate::fingerprint::id_hex;
use crate::observe::Stats;

/// Histogram bucket bounds, in seconds (`+Inf` is added).
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const QUERY_LABEL_MAX: usize = 200;

/// Sums of the fingerprints exported as `other`.
#[derive(Default)]
struct Totals {
    calls: u64,
    errors: u64,
    rows: u64,
    seconds: f64,
    buckets: [u64; BUCKETS.len() + 1],
}

/// Render every metric.
pub fn render(state: &State) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let bounds: Vec<Duration> = BUCKETS
        .iter()
        .map(|s| Duration::from_secs_f64(*s))
        .chain(std::iter::once(Duration::MAX))
        .collect();
    let registry = state.observer.registry();
    let all = registry.by_total_time();
    let (top, rest) = all.split_at(all.len().min(state.export_top));
    let mut other = Totals::default();
    let mut counts = [0u64; BUCKETS.len() + 1];
    for s in rest {
        other.calls += s.calls;
        other.errors += s.errors;
        other.rows += s.rows;
        other.seconds += s.total.as_secs_f64();
        s.cumulative_counts(&bounds, &mut counts);
        for (o, c) in other.buckets.iter_mut().zip(counts) {
            *o += c;
        }
    }
    let has_other = !rest.is_empty();

    type Get = fn(&Stats) -> u64;
    type GetTotal = fn(&Totals) -> u64;
    let counters: [(&str, &str, Get, GetTotal); 3] = [
        (
            "pgscope_queries_total",
            "Statements executed, failed ones included, per fingerprint.",
            |s| s.calls,
            |t| t.calls,
        ),
        (
            "pgscope_query_errors_total",
            "Statements that failed, per fingerprint.",
            |s| s.errors,
            |t| t.errors,
        ),
        (
            "pgscope_query_rows_total",
            "Rows returned or affected, per fingerprint.",
            |s| s.rows,
            |t| t.rows,
        ),
    ];
    for (name, help, get, get_other) in counters {
        header(&mut out, name, help, "counter");
        for s in top {
            let _ = writeln!(out, "{name}{{fingerprint=\"{}\"}} {}", id_hex(s.id), get(s));
        }
        if has_other {
            let _ = writeln!(out, "{name}{{fingerprint=\"other\"}} {}", get_other(&other));
        }
    }

    let name = "pgscope_query_duration_seconds";
    header(
        &mut out,
        name,
        "Statement latency from request forwarded to completion received, per fingerprint.",
        "histogram",
    );
    for s in top {
        s.cumulative_counts(&bounds, &mut counts);
        histogram(
            &mut out,
            name,
            &id_hex(s.id),
            &counts,
            s.total.as_secs_f64(),
            s.calls,
        );
    }
    if has_other {
        histogram(
            &mut out,
            name,
            "other",
            &other.buckets,
            other.seconds,
            other.calls,
        );
    }

    header(
        &mut out,
        "pgscope_query_info",
        "The normalized text and kind of each exported fingerprint (always 1).",
        "gauge",
    );
    for s in top {
        let _ = writeln!(
            out,
            "pgscope_query_info{{fingerprint=\"{}\",kind=\"{}\",query=\"{}\"}} 1",
            id_hex(s.id),
            s.description.kind.as_str(),
            escape(cut(&s.description.query, QUERY_LABEL_MAX))
        );
    }

    gauge(
        &mut out,
        "pgscope_fingerprints_tracked",
        "Fingerprints tracked in memory now.",
        "gauge",
        registry.len().to_string(),
    );
    gauge(
        &mut out,
        "pgscope_fingerprints_evicted_total",
        "Fingerprints evicted to stay within --max-fingerprints.",
        "counter",
        registry.evicted().to_string(),
    );
    drop(registry);
    findings(&mut out, state);
    gauge(
        &mut out,
        "pgscope_analysis_events_dropped_total",
        "Executions not analyzed because the observer could not keep up (traffic is never dropped).",
        "counter",
        state.observer.dropped().to_string(),
    );
    gauge(
        &mut out,
        "pgscope_latency_target_seconds",
        "The P99 latency target (--latency-target).",
        "gauge",
        format_float(state.latency_target.as_secs_f64()),
    );
    let p = &state.proxy_stats;
    gauge(
        &mut out,
        "pgscope_client_connections",
        "Client connections open now.",
        "gauge",
        p.client_connections.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "pgscope_client_connections_total",
        "Client connections relayed since start.",
        "counter",
        p.client_connections_total
            .load(Ordering::Relaxed)
            .to_string(),
    );
    header(
        &mut out,
        "pgscope_upstream_errors_total",
        "Failures to reach the upstream server, by reason.",
        "counter",
    );
    let _ = writeln!(
        out,
        "pgscope_upstream_errors_total{{reason=\"connect\"}} {}",
        p.upstream_connect_errors.load(Ordering::Relaxed)
    );
    header(
        &mut out,
        "pgscope_client_errors_total",
        "Client connections refused by pgscope itself, by reason (protocol: SQLSTATE 08P01; too_many: 53300).",
        "counter",
    );
    for (reason, n) in [
        ("protocol", &p.protocol_errors),
        ("too_many", &p.rejected_connections),
    ] {
        let _ = writeln!(
            out,
            "pgscope_client_errors_total{{reason=\"{reason}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    out
}

/// The N+1 and duplicate counters; the `--export-top` findings with most wasted time get their
/// own label sets, the rest are summed under `other`.
fn findings(out: &mut String, state: &State) {
    let findings = state.observer.findings();
    let all = findings.by_wasted_time();
    let (top, rest) = all.split_at(all.len().min(state.export_top));
    header(
        out,
        "pgscope_nplusone_bursts_total",
        "N+1 bursts seen (one per request), per child fingerprint and parent fingerprint.",
        "counter",
    );
    let mut other_bursts = 0;
    for f in top.iter().filter(|f| !f.duplicate) {
        let parent = f.parent.as_ref().map_or("none".to_owned(), |p| id_hex(p.0));
        let _ = writeln!(
            out,
            "pgscope_nplusone_bursts_total{{fingerprint=\"{}\",parent=\"{parent}\"}} {}",
            id_hex(f.fingerprint),
            f.bursts
        );
    }
    for f in rest.iter().filter(|f| !f.duplicate) {
        other_bursts += f.bursts;
    }
    if rest.iter().any(|f| !f.duplicate) {
        let _ = writeln!(
            out,
            "pgscope_nplusone_bursts_total{{fingerprint=\"other\",parent=\"other\"}} {other_bursts}"
        );
    }
    for (name, help, duplicate) in [
        (
            "pgscope_nplusone_queries_total",
            "Queries executed inside N+1 bursts, per child fingerprint.",
            false,
        ),
        (
            "pgscope_duplicate_queries_total",
            "Executions of a query repeated with the same parameters in one request, per fingerprint.",
            true,
        ),
    ] {
        header(out, name, help, "counter");
        // One series per fingerprint: an N+1 child may have several parents.
        let mut per_fp: Vec<(u64, u64)> = Vec::new();
        for f in top.iter().filter(|f| f.duplicate == duplicate) {
            match per_fp.iter_mut().find(|(fp, _)| *fp == f.fingerprint) {
                Some((_, n)) => *n += f.queries,
                None => per_fp.push((f.fingerprint, f.queries)),
            }
        }
        for (fp, n) in per_fp {
            let _ = writeln!(out, "{name}{{fingerprint=\"{}\"}} {n}", id_hex(fp));
        }
        let rest: Vec<_> = rest.iter().filter(|f| f.duplicate == duplicate).collect();
        if !rest.is_empty() {
            let n: u64 = rest.iter().map(|f| f.queries).sum();
            let _ = writeln!(out, "{name}{{fingerprint=\"other\"}} {n}");
        }
    }
}

/// A metric with no labels.
fn gauge(out: &mut String, name: &str, help: &str, kind: &str, value: String) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {value}");
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, fp: &str, cumulative: &[u64], sum: f64, count: u64) {
    for (le, c) in BUCKETS.iter().zip(cumulative) {
        let _ = writeln!(
            out,
            "{name}_bucket{{fingerprint=\"{fp}\",le=\"{}\"}} {c}",
            format_float(*le)
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{fingerprint=\"{fp}\",le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "{name}_sum{{fingerprint=\"{fp}\"}} {}",
        format_float(sum)
    );
    let _ = writeln!(out, "{name}_count{{fingerprint=\"{fp}\"}} {count}");
}

fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// At most `max` characters of `s`.
pub fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Escape a label value: backslash, double quote and newline.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping_and_cutting() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hi", 5), "hi");
    }

    #[test]
    fn floats_look_like_floats() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(0.25), "0.25");
    }
}
