//! Statistics per fingerprint, bounded in number.
//!
//! One [`Stats`] per fingerprint: calls, errors, rows, total/min/max time and one
//! hdrhistogram of latency, which is the single source of both the Prometheus buckets and the
//! exact quantiles. At most `max` fingerprints are kept; a new one beyond that evicts the least
//! valuable (least total time, then least recently seen). Eviction is amortized O(1): the
//! lowest tenth is selected in one O(n) pass and then evicted one at a time as new
//! fingerprints arrive, so the tracked count stays exactly at `max`.
//!
//! The registry also keeps what `/metrics` needs for counters that never go down although
//! fingerprints move into and out of the `--export-top` set and get evicted (see
//! [`Registry::export`]): one cumulative `other` accumulator, and per fingerprint the part of
//! its statistics already folded into it (`flushed`, 168 bytes).

use super::Map;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

/// Latency is recorded in microseconds, from 1 µs to one hour, with two significant digits
/// (1% resolution). With `u32` counts that is about 13 KiB per fingerprint.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 3_600_000_000;
const HIST_SIGFIG: u8 = 2;

/// The upper bounds, in seconds, of the buckets of the latency histogram that `/metrics`
/// exports (`+Inf` is added by the exporter: it is the count).
pub const EXPORT_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const NB: usize = EXPORT_BUCKETS.len();

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
    /// What of this fingerprint has been folded into the registry's `other` accumulator: its
    /// [`Counts`] when it was last outside the exported top (zero if it never was).
    flushed: Counts,
}

/// Amounts of one exported series: counters and the latency histogram's buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub errors: u64,
    pub rows: u64,
    pub total: Duration,
    /// Executions that took at most each of [`EXPORT_BUCKETS`] (cumulative, like `le`).
    pub buckets: [u64; NB],
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.calls = self.calls.saturating_add(o.calls);
        self.errors = self.errors.saturating_add(o.errors);
        self.rows = self.rows.saturating_add(o.rows);
        self.total = self.total.saturating_add(o.total);
        for (b, o) in self.buckets.iter_mut().zip(o.buckets) {
            *b = b.saturating_add(o);
        }
    }

    /// `self - o`, every field; `o` is an earlier state of the same (growing) amounts.
    fn minus(&self, o: &Counts) -> Counts {
        let mut buckets = self.buckets;
        for (b, o) in buckets.iter_mut().zip(o.buckets) {
            *b = b.saturating_sub(o);
        }
        Counts {
            calls: self.calls.saturating_sub(o.calls),
            errors: self.errors.saturating_sub(o.errors),
            rows: self.rows.saturating_sub(o.rows),
            total: self.total.saturating_sub(o.total),
            buckets,
        }
    }
}

/// One fingerprint exported with its own label set.
#[derive(Clone, Debug)]
pub struct Exported {
    pub id: u64,
    pub description: Description,
    /// Its statistics less what was folded into `other` while it was outside the top.
    pub counts: Counts,
}

/// What `/metrics` exports of the registry, copied out under its lock (see
/// [`Registry::export`]).
#[derive(Clone, Debug)]
pub struct Export {
    /// The fingerprints with the most total time, most first.
    pub top: Vec<Exported>,
    /// Everything else ever recorded (evicted fingerprints included); `None` until there is
    /// any.
    pub other: Option<Counts>,
    pub tracked: usize,
    pub evicted: u64,
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
            flushed: Counts::default(),
        }
    }

    fn record(&mut self, s: &Sample) {
        // Saturating: the rows come from the server's command tag, which may say anything.
        self.calls = self.calls.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(s.failed));
        self.rows = self.rows.saturating_add(s.rows);
        self.total = self.total.saturating_add(s.duration);
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
        // The histogram keeps whole microseconds at 1% resolution: never report more than the
        // true maximum or less than the true minimum.
        Duration::from_micros(us).max(self.min).min(self.max)
    }

    pub fn mean(&self) -> Duration {
        if self.calls == 0 {
            return Duration::ZERO;
        }
        // In nanoseconds and u128: `Duration / u32` would need the calls cut to 32 bits.
        let nanos = self.total.as_nanos() / u128::from(self.calls);
        // The mean is at most the total, so its seconds fit in u64.
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    }

    /// Everything recorded, as exported amounts over `bounds` (the [`EXPORT_BUCKETS`]).
    fn counts(&self, bounds: &[Duration; NB]) -> Counts {
        let mut buckets = [0; NB];
        self.cumulative_counts(bounds, &mut buckets);
        Counts {
            calls: self.calls,
            errors: self.errors,
            rows: self.rows,
            total: self.total,
            buckets,
        }
    }

    /// Has anything been recorded since the last [`fold`]? (Every record adds a call; at
    /// `u64::MAX` calls the total still moves, unless the statement took no time at all.)
    fn unflushed(&self) -> bool {
        let f = &self.flushed;
        (self.calls, self.errors, self.rows, self.total) != (f.calls, f.errors, f.rows, f.total)
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

/// Fold what of `stats` is not in `other` yet into it. The caller holds the registry (its
/// lock), so no execution is recorded between reading `stats` and marking it flushed: none is
/// lost or counted twice.
fn fold(other: &mut Counts, stats: &mut Stats, bounds: &[Duration; NB]) {
    if !stats.unflushed() {
        return; // nothing new: spare the histogram scan
    }
    let now = stats.counts(bounds);
    other.add(&now.minus(&stats.flushed));
    stats.flushed = now;
}

/// All fingerprints' statistics.
pub struct Registry {
    entries: Map<u64, Stats>,
    max: usize,
    evicted: u64,
    /// Ids chosen for eviction, most valuable last.
    candidates: Vec<u64>,
    /// Ids of the fingerprints in the top of the last [`Registry::export`], sorted.
    exported: Vec<u64>,
    /// Ids of [`Registry::exported`] evicted since that export: if one is tracked again now,
    /// its statistics started again from zero, so its series must be absent once before it
    /// may show them (else it would go down between two exports).
    recreated: Vec<u64>,
    /// Everything folded out of the exported top: fingerprints outside it at some export, and
    /// evicted ones. Only grows.
    other: Counts,
    /// [`EXPORT_BUCKETS`] as durations.
    bounds: [Duration; NB],
}

impl Registry {
    pub fn new(max: usize) -> Self {
        Registry {
            entries: Map::default(),
            max: max.max(1),
            evicted: 0,
            candidates: Vec::new(),
            exported: Vec::new(),
            recreated: Vec::new(),
            other: Counts::default(),
            bounds: EXPORT_BUCKETS.map(Duration::from_secs_f64),
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
                    if let Some(mut stats) = self.entries.remove(&id) {
                        // Its counts stay exported, under `other`.
                        fold(&mut self.other, &mut stats, &self.bounds);
                        if let Ok(i) = self.exported.binary_search(&id) {
                            self.exported.remove(i);
                            self.recreated.push(id);
                        }
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

    /// The counter series of `/metrics`: the `top` fingerprints with the most total time, each
    /// with its own amounts, and `other` for everything else ever recorded.
    ///
    /// Every series only grows while it is exported, and the series together always add up
    /// to everything recorded, although fingerprints move into and out of the top and get
    /// evicted. What a fingerprint outside the top gained since it was last folded goes into
    /// `other` now (an evicted one's at once); one in the top is exported less what was folded
    /// of it before. So when a fingerprint leaves the top, its exported amounts move
    /// into `other`; when it comes back, its series starts again from what it gained since
    /// (Prometheus reads the new series, or a reset, correctly). A fingerprint of the last
    /// export's top that was evicted and is tracked again stays in `other` this once, so that
    /// its series is absent before it starts again.
    ///
    /// `&mut`: call it under the registry's lock, the one the observer records under, and copy
    /// out only what is returned.
    pub fn export(&mut self, top: usize) -> Export {
        let mut recreated = std::mem::take(&mut self.recreated);
        recreated.sort_unstable();
        let mut order: Vec<(Duration, u64)> = self
            .entries
            .values()
            .filter(|s| recreated.binary_search(&s.id).is_err())
            .map(|s| (s.total, s.id))
            .collect();
        let most_first =
            |a: &(Duration, u64), b: &(Duration, u64)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        let n = top.min(order.len());
        if n > 0 && n < order.len() {
            order.select_nth_unstable_by(n, most_first);
        }
        order[..n].sort_unstable_by(most_first);
        for id in order[n..].iter().map(|(_, id)| id).chain(&recreated) {
            if let Some(stats) = self.entries.get_mut(id) {
                fold(&mut self.other, stats, &self.bounds);
            }
        }
        recreated.clear();
        self.recreated = recreated;
        self.exported.clear();
        self.exported.extend(order[..n].iter().map(|(_, id)| *id));
        self.exported.sort_unstable();
        let top = order[..n]
            .iter()
            .filter_map(|(_, id)| self.entries.get(id))
            .map(|s| Exported {
                id: s.id,
                description: s.description.clone(),
                counts: s.counts(&self.bounds).minus(&s.flushed),
            })
            .collect();
        Export {
            top,
            other: (self.other != Counts::default()).then_some(self.other),
            tracked: self.entries.len(),
            evicted: self.evicted,
        }
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

    /// The histogram keeps whole microseconds: one call of 51.423 µs gave a p50 of 51 µs,
    /// below `min_seconds`.
    #[test]
    fn quantiles_stay_between_min_and_max() {
        let mut r = Registry::new(10);
        let mut s = sample(0, 0, false);
        s.duration = Duration::from_nanos(51_423);
        r.record(1, &s, || describe("SELECT $1"));
        let s = r.get(1).unwrap();
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_eq!(s.quantile(q), Duration::from_nanos(51_423), "q {q}");
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
    fn the_mean_is_exact_at_huge_call_counts() {
        let mut r = Registry::new(10);
        r.record(1, &sample(3, 0, false), || describe("SELECT $1"));
        let mut s = r.get(1).unwrap().clone();
        // 2^32 calls: `calls as u32` is 0 (the old code divided by zero).
        s.calls = 1 << 32;
        s.total = Duration::from_millis(3) * (1 << 16) * (1 << 16);
        assert_eq!(s.mean(), Duration::from_millis(3));
        // 2^33 + 2 calls of 7 ms: `calls as u32` is 2.
        s.calls = (1 << 33) + 2;
        s.total = Duration::from_nanos(7_000_000 * s.calls);
        assert_eq!(s.mean(), Duration::from_millis(7));
        // The largest counts and total: exact, no overflow.
        s.calls = u64::MAX;
        s.total = Duration::MAX;
        let nanos = Duration::MAX.as_nanos() / u128::from(u64::MAX);
        assert_eq!(s.mean().as_nanos(), nanos);
        s.calls = 3;
        s.total = Duration::from_nanos(10);
        assert_eq!(s.mean(), Duration::from_nanos(3));
    }

    #[test]
    fn counts_from_the_server_saturate() {
        let mut r = Registry::new(10);
        // A CommandComplete tag may say `SELECT 18446744073709551615`.
        for _ in 0..3 {
            r.record(1, &sample(1, u64::MAX, false), || describe("SELECT $1"));
        }
        let s = r.get(1).unwrap();
        assert_eq!((s.calls, s.rows), (3, u64::MAX));
        // And what is exported of it too, folded into `other` or not.
        r.record(2, &sample(1000, u64::MAX, false), || describe("SELECT $2"));
        let e = r.export(1);
        assert_eq!(e.top[0].counts.rows, u64::MAX);
        assert_eq!(e.other.unwrap().rows, u64::MAX);
        let mut s = r.get(1).unwrap().clone();
        s.calls = u64::MAX;
        s.errors = u64::MAX;
        s.total = Duration::MAX;
        s.record(&sample(1, 1, true));
        assert_eq!(
            (s.calls, s.errors, s.total),
            (u64::MAX, u64::MAX, Duration::MAX)
        );
    }

    /// The series of one export, by fingerprint (`None` for `other`).
    fn series(e: &Export) -> Map<Option<u64>, Counts> {
        let mut m: Map<Option<u64>, Counts> =
            e.top.iter().map(|x| (Some(x.id), x.counts)).collect();
        if let Some(o) = e.other {
            m.insert(None, o);
        }
        m
    }

    /// Every series of `now` that `before` had too is at least what it was, field by field.
    fn assert_none_went_down(before: &Export, now: &Export, at: &str) {
        let before = series(before);
        for (label, n) in series(now) {
            let Some(b) = before.get(&label) else {
                continue;
            };
            let grew = n.calls >= b.calls
                && n.errors >= b.errors
                && n.rows >= b.rows
                && n.total >= b.total
                && n.buckets.iter().zip(b.buckets).all(|(n, b)| *n >= b);
            assert!(grew, "{at}: series {label:?} went down: {b:?} -> {n:?}");
        }
    }

    /// What was recorded, as one exported series would show it.
    #[derive(Default)]
    struct Truth(Counts);

    impl Truth {
        fn record(&mut self, s: &Sample) {
            let t = &mut self.0;
            t.calls += 1;
            t.errors += u64::from(s.failed);
            t.rows += s.rows;
            t.total += s.duration;
            for (b, le) in t.buckets.iter_mut().zip(EXPORT_BUCKETS) {
                *b += u64::from(s.duration.as_secs_f64() <= le);
            }
        }
    }

    /// The series of an export add up to everything recorded.
    fn assert_adds_up(e: &Export, truth: &Truth, at: &str) {
        let mut sum = Counts::default();
        for c in series(e).values() {
            sum.add(c);
        }
        assert_eq!(sum, truth.0, "{at}: the series do not add up");
    }

    /// Latencies well inside export buckets (so that the histogram's 1% resolution cannot move
    /// them across a bound), the last one beyond them all.
    const LATENCIES_US: [u64; 7] = [700, 3_000, 20_000, 40_000, 300_000, 2_000_000, 20_000_000];

    fn timed(us: u64, rows: u64, failed: bool) -> Sample {
        Sample {
            duration: Duration::from_micros(us),
            rows,
            failed,
            at: SystemTime::now(),
        }
    }

    fn run(r: &mut Registry, truth: &mut Truth, id: u64, s: Sample) {
        truth.record(&s);
        r.record(id, &s, || describe("q"));
    }

    #[test]
    fn moving_into_the_top_does_not_take_from_other() {
        // The audit's case with `--export-top 1`: pg_sleep(0.01) once, 300 fast statements,
        // a scrape, 3000 more, a scrape.
        let mut r = Registry::new(100);
        let mut truth = Truth::default();
        run(&mut r, &mut truth, 1, timed(10_000, 1, false));
        for _ in 0..300 {
            run(&mut r, &mut truth, 2, timed(30, 1, false));
        }
        let first = r.export(1);
        assert_eq!(first.top[0].id, 1);
        assert_eq!(first.other.unwrap().calls, 300);
        for _ in 0..3000 {
            run(&mut r, &mut truth, 2, timed(30, 1, false));
        }
        let second = r.export(1);
        assert_eq!(second.top[0].id, 2, "the fast statement took the top");
        assert_none_went_down(&first, &second, "after 3300");
        assert_eq!(second.other.unwrap().calls, 301);
        assert_eq!(second.top[0].counts.calls, 3000);
        assert_adds_up(&second, &truth, "after 3300");
        // /api/queries still sees everything of each.
        assert_eq!(r.get(2).unwrap().calls, 3300);
    }

    #[test]
    fn an_exported_fingerprint_evicted_and_seen_again_is_absent_once() {
        // Every tracked fingerprint is exported (top 2 of at most 2).
        let mut r = Registry::new(2);
        let mut truth = Truth::default();
        for _ in 0..5 {
            run(&mut r, &mut truth, 1, timed(700, 1, false));
        }
        run(&mut r, &mut truth, 2, timed(300_000, 1, false));
        let first = r.export(2);
        assert_eq!(first.top.len(), 2);
        assert!(first.other.is_none());
        run(&mut r, &mut truth, 3, timed(300_000, 1, false)); // evicts 1, the least total time
        assert!(!r.contains(1));
        run(&mut r, &mut truth, 1, timed(2_000_000, 1, false)); // 1 is back, from one call
        assert!(r.contains(1));
        let second = r.export(2);
        assert!(second.top.iter().all(|s| s.id != 1), "{:?}", second.top);
        assert_none_went_down(&first, &second, "second");
        assert_adds_up(&second, &truth, "second");
        // Absent once, then its own series again, from what it showed in none.
        run(&mut r, &mut truth, 1, timed(2_000_000, 1, false));
        let third = r.export(2);
        let one = third.top.iter().find(|s| s.id == 1).expect("1 is back");
        assert_eq!(one.counts.calls, 1);
        assert_none_went_down(&second, &third, "third");
        assert_adds_up(&third, &truth, "third");
    }

    /// Fingerprints move into and out of the top and get evicted (and come back); after every
    /// export no series went down and all of them add up to everything recorded. Returns how
    /// often a fingerprint entered the top again after having left it, and the evictions.
    fn churn(max: usize, top: usize, seed: u64) -> (usize, u64) {
        let mut r = Registry::new(max);
        let mut truth = Truth::default();
        let mut rng = seed;
        let mut next = move || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rng >> 33
        };
        let mut last: Option<Export> = None;
        let mut ever_exported = std::collections::BTreeSet::new();
        let mut reentered = 0;
        for step in 0..6000u64 {
            // The hot fingerprints drift over ids 0..=24 and come back to the first ones (which
            // may have been evicted meanwhile); cold ones come now and then.
            let id = if next() % 8 == 0 {
                100 + next() % 50
            } else {
                (step / 200 + next() % 5) % 25
            };
            let us = LATENCIES_US[(next() % LATENCIES_US.len() as u64) as usize];
            let s = timed(us, next() % 20, next() % 7 == 0);
            run(&mut r, &mut truth, id, s);
            if next() % 20 == 0 {
                let e = r.export(top);
                assert!(e.top.len() <= top);
                let at = format!("max {max} top {top} step {step}");
                assert_adds_up(&e, &truth, &at);
                if let Some(before) = &last {
                    assert_none_went_down(before, &e, &at);
                    for s in &e.top {
                        let was = before.top.iter().any(|b| b.id == s.id);
                        reentered += usize::from(!was && ever_exported.contains(&s.id));
                    }
                }
                ever_exported.extend(e.top.iter().map(|s| s.id));
                last = Some(e);
            }
        }
        (reentered, r.evicted())
    }

    #[test]
    fn exported_series_never_go_down_and_add_up_to_everything() {
        for (max, top) in [(16, 3), (16, 1), (8, 0), (8, 8), (8, 200), (40, 10)] {
            for seed in 1..=3 {
                let (reentered, evicted) = churn(max, top, seed);
                assert!(evicted > 100, "max {max} top {top}: {evicted} evictions");
                if top > 0 {
                    assert!(reentered > 0, "max {max} top {top}: nothing came back");
                }
            }
        }
    }

    #[test]
    fn histogram_is_small() {
        let bytes = histogram_bytes();
        assert!(bytes <= 14 * 1024, "histogram takes {bytes} bytes");
    }

    #[test]
    fn a_fingerprint_takes_less_than_16_kib() {
        // What is kept for `/metrics` (the part folded into `other`) is 168 bytes of it.
        assert_eq!(std::mem::size_of::<Counts>(), 168);
        let bytes = histogram_bytes() + std::mem::size_of::<Stats>();
        assert!(bytes <= 16 * 1024, "a fingerprint takes {bytes} bytes");
    }
}
