//! The Prometheus text exposition of `/metrics`.
//!
//! Per-fingerprint series are bounded by `--export-top`: the fingerprints with the most total
//! time get their own label set, all others are summed under `fingerprint="other"`. Histogram
//! buckets come from each fingerprint's hdrhistogram, the same source as the API's quantiles.
//!
//! Every counter series only grows while it is exported, `other` included, and the series
//! add up to everything recorded: a fingerprint that leaves the top (or is evicted) moves
//! what it showed into `other`, and one that enters the top starts its own series from what it
//! gained since it was last folded into `other` (see [`crate::observe::Registry::export`]).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::State;
use crate::fingerprint::id_hex;
use crate::observe::registry::{Counts, EXPORT_BUCKETS};

const QUERY_LABEL_MAX: usize = 200;

/// Render every metric.
pub fn render(state: &State) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Under the registry's lock only while the series are folded and copied out: the observer
    // thread records under it.
    let export = state.observer.registry().export(state.export_top);
    let top = &export.top;

    type Get = fn(&Counts) -> u64;
    let counters: [(&str, &str, Get); 3] = [
        (
            "pgscope_queries_total",
            "Statements executed, failed ones included, per fingerprint.",
            |c| c.calls,
        ),
        (
            "pgscope_query_errors_total",
            "Statements that failed, per fingerprint.",
            |c| c.errors,
        ),
        (
            "pgscope_query_rows_total",
            "Rows returned or affected, per fingerprint.",
            |c| c.rows,
        ),
    ];
    for (name, help, get) in counters {
        header(&mut out, name, help, "counter");
        for s in top {
            let _ = writeln!(
                out,
                "{name}{{fingerprint=\"{}\"}} {}",
                id_hex(s.id),
                get(&s.counts)
            );
        }
        if let Some(other) = &export.other {
            let _ = writeln!(out, "{name}{{fingerprint=\"other\"}} {}", get(other));
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
        histogram(&mut out, name, &id_hex(s.id), &s.counts);
    }
    if let Some(other) = &export.other {
        histogram(&mut out, name, "other", other);
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
        export.tracked.to_string(),
    );
    gauge(
        &mut out,
        "pgscope_fingerprints_evicted_total",
        "Fingerprints evicted to stay within --max-fingerprints.",
        "counter",
        export.evicted.to_string(),
    );
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
/// own label sets, the rest are summed under `other` (cumulative: see
/// [`crate::observe::Findings::export`]).
fn findings(out: &mut String, state: &State) {
    let export = state.observer.findings().export(state.export_top);
    header(
        out,
        "pgscope_nplusone_bursts_total",
        "N+1 bursts seen (one per request), per child fingerprint and parent fingerprint.",
        "counter",
    );
    for &(fp, parent, n) in &export.bursts {
        let parent = parent.map_or("none".to_owned(), id_hex);
        let _ = writeln!(
            out,
            "pgscope_nplusone_bursts_total{{fingerprint=\"{}\",parent=\"{parent}\"}} {n}",
            id_hex(fp)
        );
    }
    if let Some(n) = export.other_bursts {
        let _ = writeln!(
            out,
            "pgscope_nplusone_bursts_total{{fingerprint=\"other\",parent=\"other\"}} {n}"
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
        let kind = usize::from(duplicate);
        for &(fp, n) in &export.queries[kind] {
            let _ = writeln!(out, "{name}{{fingerprint=\"{}\"}} {n}", id_hex(fp));
        }
        if let Some(n) = export.other_queries[kind] {
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

fn histogram(out: &mut String, name: &str, fp: &str, counts: &Counts) {
    let count = counts.calls;
    for (le, c) in EXPORT_BUCKETS.iter().zip(counts.buckets) {
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
        format_float(counts.total.as_secs_f64())
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

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::observe::{Description, Kind, ObserveConfig, Observer, Sample};
    use crate::proxy::ProxyStats;

    fn state(export_top: usize, max_fingerprints: usize) -> State {
        State {
            observer: Observer::start(ObserveConfig {
                max_fingerprints,
                ..ObserveConfig::default()
            }),
            proxy_stats: Arc::new(ProxyStats::default()),
            upstream: "127.0.0.1:1".into(),
            export_top,
            latency_target: Duration::from_millis(200),
        }
    }

    /// The per-fingerprint counter and histogram series of an exposition: name and labels →
    /// value.
    fn series(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| {
                let names = [
                    "pgscope_queries_total{",
                    "pgscope_query_errors_total{",
                    "pgscope_query_rows_total{",
                    "pgscope_query_duration_seconds_",
                ];
                names.iter().any(|p| l.starts_with(p))
            })
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    /// The sum of the series of `name` (with `le` for a bucket) over every fingerprint.
    fn total(s: &BTreeMap<String, f64>, name: &str, le: Option<&str>) -> f64 {
        s.iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}{{")))
            .filter(|(k, _)| le.is_none_or(|le| k.ends_with(&format!(",le=\"{le}\"}}"))))
            .map(|(_, v)| v)
            .sum()
    }

    /// Records into the registry the observer uses, and remembers what it recorded.
    #[derive(Default)]
    struct Workload {
        calls: u64,
        errors: u64,
        rows: u64,
        latencies: Vec<Duration>,
    }

    impl Workload {
        fn run(&mut self, state: &State, id: u64, n: u64, us: u64, rows: u64, failed: bool) {
            let mut registry = state.observer.registry();
            for _ in 0..n {
                let sample = Sample {
                    duration: Duration::from_micros(us),
                    rows,
                    failed,
                    at: SystemTime::now(),
                };
                registry.record(id, &sample, || Description {
                    query: Arc::from(format!("SELECT {id}")),
                    kind: Kind::Select,
                    tables: Arc::from(Vec::new()),
                });
                self.calls += 1;
                self.errors += u64::from(failed);
                self.rows += rows;
                self.latencies.push(sample.duration);
            }
        }

        /// Scrape: no series went down since `before`, and they add up to the workload.
        fn check(
            &self,
            state: &State,
            before: &BTreeMap<String, f64>,
            at: &str,
        ) -> BTreeMap<String, f64> {
            let text = render(state);
            let now = series(&text);
            for (k, v) in &now {
                if let Some(b) = before.get(k) {
                    assert!(v >= b, "{at}: {k} went down from {b} to {v}\n{text}");
                }
            }
            let calls = self.calls as f64;
            assert_eq!(
                total(&now, "pgscope_queries_total", None),
                calls,
                "{at}\n{text}"
            );
            assert_eq!(
                total(&now, "pgscope_query_errors_total", None),
                self.errors as f64,
                "{at}"
            );
            assert_eq!(
                total(&now, "pgscope_query_rows_total", None),
                self.rows as f64,
                "{at}"
            );
            let name = "pgscope_query_duration_seconds";
            assert_eq!(total(&now, &format!("{name}_count"), None), calls, "{at}");
            assert_eq!(
                total(&now, &format!("{name}_bucket"), Some("+Inf")),
                calls,
                "{at}"
            );
            for le in EXPORT_BUCKETS {
                let want = self
                    .latencies
                    .iter()
                    .filter(|d| d.as_secs_f64() <= le)
                    .count();
                let got = total(&now, &format!("{name}_bucket"), Some(&format_float(le)));
                assert_eq!(got, want as f64, "{at}: le={le}\n{text}");
            }
            let seconds: f64 = self.latencies.iter().map(Duration::as_secs_f64).sum();
            let sum = total(&now, &format!("{name}_sum"), None);
            assert!(
                (sum - seconds).abs() < 1e-9,
                "{at}: sum {sum}, recorded {seconds}"
            );
            now
        }
    }

    #[test]
    fn counters_never_go_down_as_fingerprints_move_and_are_evicted() {
        // Latencies well inside buckets: 700 µs, 3 ms, 20 ms, 40 ms.
        let state = state(1, 4);
        let mut w = Workload::default();
        w.run(&state, 1, 1, 20_000, 1, false); // A: 20 ms, the top
        w.run(&state, 2, 20, 700, 2, false); // B: 14 ms, other
        let first = w.check(&state, &BTreeMap::new(), "first");
        assert_eq!(first["pgscope_queries_total{fingerprint=\"other\"}"], 20.0);

        // B takes the top: A moves into other, which must not drop to A's one call.
        w.run(&state, 2, 100, 700, 2, false);
        let second = w.check(&state, &first, "B in the top");

        // Cheap fingerprints come and go (the registry keeps 4): evicted ones stay counted.
        for id in 10..20 {
            w.run(&state, id, 2, 3_000, 0, true);
        }
        let third = w.check(&state, &second, "evictions");
        assert!(state.observer.registry().evicted() >= 6);

        // A takes the top back; B moves into other with all it showed.
        w.run(&state, 1, 10, 40_000, 1, false);
        let fourth = w.check(&state, &third, "A back in the top");
        // And once more, with nothing new.
        w.check(&state, &fourth, "again");
    }
}
