//! Statistics per fingerprint, bounded in number.
//!
//! One [`Stats`] per fingerprint: calls, errors, rows, total/min/max time and one
//! hdrhistogram of latency, which is the single source of both the Prometheus buckets and the
//! exact quantiles. At most `max` fingerprints are kept; a new one beyond that evicts the least
//! valuable (least total time, then least recently seen). Eviction is amortized O(1): the
//! lowest tenth is selected in one O(n) pass and then evicted one at a time as new
//! fingerprints arrive, so the tracked count stays exactly at `max`.

use super::Map;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

/// Latency is recorded in microseconds, from 1 µs to one hour, with two significant digits
/// (1% resolution). With `u32` counts that is about 13 KiB per fingerprint.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 3_600_000_000;
const HIST_SIGFIG: u8 = 2;

pub use crate::fingerprint::Kind;

/// What is known of a fingerprint's text: computed once, when it is first seen.
#[derive(Clone, Debug)]
pub struct Description {
    /// Normalized text (no literals).
    pub query: Arc<str>,
    pub kind: Kind,
    pub tables: Arc<[String]>,
}

/// One execution, as the registry records it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub duration: Duration,
    pub rows: u64,
    pub failed: bool,
    pub at: SystemTime,
}

/// The statistics of one fingerprint.
#[derive(Clone)]
pub struct Stats {
    pub id: u64,
    pub description: Description,
    pub calls: u64,
    pub errors: u64,
    pub rows: u64,
    pub total: Duration,
    pub min: Duration,
    pub max: Duration,
    pub histogram: Histogram<u32>,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
}

impl Stats {
    fn new(id: u64, description: Description, at: SystemTime) -> Self {
        Stats {
            id,
            description,
            calls: 0,
            errors: 0,
            rows: 0,
            total: Duration::ZERO,
            min: Duration::MAX,
            max: Duration::ZERO,
            histogram: new_histogram(),
            first_seen: at,
            last_seen: at,
        }
    }

    fn record(&mut self, s: &Sample) {
        self.calls += 1;
        self.errors += u64::from(s.failed);
        self.rows += s.rows;
        self.total += s.duration;
        self.min = self.min.min(s.duration);
        self.max = self.max.max(s.duration);
        let us = (s.duration.as_micros() as u64).clamp(HIST_LOW_US, HIST_HIGH_US);
        self.histogram.saturating_record(us);
        self.last_seen = self.last_seen.max(s.at);
    }

    /// The latency at quantile `q` (0..=1), from the histogram.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.calls == 0 {
            return Duration::ZERO;
        }
        let us = self.histogram.value_at_quantile(q);
        // The histogram's resolution rounds up; never report more than the true maximum.
        Duration::from_micros(us).min(self.max)
    }

    pub fn mean(&self) -> Duration {
        if self.calls == 0 {
            Duration::ZERO
        } else {
            self.total / self.calls as u32
        }
    }

    /// How many executions took at most each of `bounds` (cumulative, like Prometheus `le`).
    pub fn cumulative_counts(&self, bounds: &[Duration], out: &mut [u64]) {
        out.iter_mut().for_each(|c| *c = 0);
        for v in self.histogram.iter_recorded() {
            // A bucket of the histogram spans 1% of its value: place it by its lowest value,
            // so that a recorded 10 ms counts as `le="0.01"`.
            let value =
                Duration::from_micros(self.histogram.lowest_equivalent(v.value_iterated_to()));
            if let Some(i) = bounds.iter().position(|b| value <= *b) {
                out[i] += u64::from(v.count_at_value());
            }
        }
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
    }

    /// Value for eviction: fingerprints with less total time (then older) go first.
    fn value(&self) -> (Duration, SystemTime) {
        (self.total, self.last_seen)
    }
}

fn new_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("static histogram bounds are valid")
}

/// Bytes of memory one tracked fingerprint's histogram takes.
pub fn histogram_bytes() -> usize {
    new_histogram().distinct_values() * std::mem::size_of::<u32>()
}

/// All fingerprints' statistics.
pub struct Registry {
    entries: Map<u64, Stats>,
    max: usize,
    evicted: u64,
    /// Ids chosen for eviction, most valuable last.
    candidates: Vec<u64>,
}

impl Registry {
    pub fn new(max: usize) -> Self {
        Registry {
            entries: Map::default(),
            max: max.max(1),
            evicted: 0,
            candidates: Vec::new(),
        }
    }

    /// Record one execution of fingerprint `id`; `describe` is called only for a fingerprint
    /// not tracked yet.
    pub fn record(&mut self, id: u64, sample: &Sample, describe: impl FnOnce() -> Description) {
        if let Some(stats) = self.entries.get_mut(&id) {
            stats.record(sample);
            return;
        }
        if self.entries.len() >= self.max {
            self.evict_one();
        }
        let mut stats = Stats::new(id, describe(), sample.at);
        stats.record(sample);
        self.entries.insert(id, stats);
    }

    /// Is this fingerprint tracked now?
    pub fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    fn evict_one(&mut self) {
        loop {
            match self.candidates.pop() {
                Some(id) => {
                    if self.entries.remove(&id).is_some() {
                        self.evicted += 1;
                        return;
                    }
                }
                None => {
                    self.choose_candidates();
                    if self.candidates.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Select the least valuable tenth (at least one) of the entries.
    fn choose_candidates(&mut self) {
        let mut all: Vec<(Duration, SystemTime, u64)> = self
            .entries
            .values()
            .map(|s| {
                let (t, seen) = s.value();
                (t, seen, s.id)
            })
            .collect();
        let n = (all.len() / 10).max(1).min(all.len());
        if n == 0 {
            return;
        }
        if n < all.len() {
            all.select_nth_unstable(n - 1);
            all.truncate(n);
        }
        // Most valuable first, so that `pop` takes the least valuable.
        all.sort_unstable_by(|a, b| b.cmp(a));
        self.candidates = all.into_iter().map(|(_, _, id)| id).collect();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn get(&self, id: u64) -> Option<&Stats> {
        self.entries.get(&id)
    }

    /// Every fingerprint, most total time first.
    pub fn by_total_time(&self) -> Vec<&Stats> {
        let mut all: Vec<&Stats> = self.entries.values().collect();
        all.sort_unstable_by(|a, b| b.total.cmp(&a.total).then(a.id.cmp(&b.id)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(q: &str) -> Description {
        Description {
            query: Arc::from(q),
            kind: Kind::Select,
            tables: Arc::from(Vec::new()),
        }
    }

    fn sample(ms: u64, rows: u64, failed: bool) -> Sample {
        Sample {
            duration: Duration::from_millis(ms),
            rows,
            failed,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn counts_and_quantiles() {
        let mut r = Registry::new(10);
        for ms in 1..=100 {
            r.record(1, &sample(ms, 2, ms % 10 == 0), || describe("SELECT $1"));
        }
        let s = r.get(1).unwrap();
        assert_eq!((s.calls, s.errors, s.rows), (100, 10, 200));
        assert_eq!(s.total, Duration::from_millis(5050));
        assert_eq!(s.min, Duration::from_millis(1));
        assert_eq!(s.max, Duration::from_millis(100));
        let p50 = s.quantile(0.5).as_secs_f64();
        let p99 = s.quantile(0.99).as_secs_f64();
        assert!((0.0495..=0.0505).contains(&p50), "p50 {p50}");
        assert!((0.098..=0.100).contains(&p99), "p99 {p99}");
        let bounds = [
            Duration::from_millis(10),
            Duration::from_millis(50),
            Duration::MAX,
        ];
        let mut counts = [0; 3];
        s.cumulative_counts(&bounds, &mut counts);
        assert_eq!(counts, [10, 50, 100]);
    }

    #[test]
    fn bounded_with_evictions_counted() {
        let mut r = Registry::new(100);
        // A valuable fingerprint survives a flood of cheap ones.
        r.record(0, &sample(1000, 0, false), || describe("SELECT big"));
        for id in 1..10_000u64 {
            r.record(id, &sample(1, 0, false), || describe("SELECT x"));
            assert!(r.len() <= 100);
        }
        assert_eq!(r.len(), 100);
        assert_eq!(r.evicted(), 10_000 - 100);
        assert!(r.contains(0));
    }

    #[test]
    fn histogram_is_small() {
        let bytes = histogram_bytes();
        assert!(bytes <= 14 * 1024, "histogram takes {bytes} bytes");
    }
}
