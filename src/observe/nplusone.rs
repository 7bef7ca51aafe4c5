//! N+1 and duplicate-query detection, per connection and per request.
//!
//! # Requests
//!
//! A request is the run of statements one application request made. Its boundaries, in order
//! of trust:
//! 1. sqlcommenter context: a statement whose `traceparent` trace id (or, without one, whose
//!    `route`/`controller`) differs from the previous statement's starts a new request;
//! 2. the end of an explicit transaction (ReadyForQuery back to idle after `T`/`E`): Django's
//!    `ATOMIC_REQUESTS` makes a request one transaction;
//! 3. the connection's life: Django's default `CONN_MAX_AGE=0` opens one connection per request;
//! 4. an idle gap of more than [`IDLE_GAP`] between two statements.
//!
//! # Findings
//!
//! - **N+1**: within one request, one SELECT fingerprint executed at least `threshold` times
//!   with at least two different parameter values, after a parent query that returned at
//!   least `threshold` rows and does not already join the child's table. The parent is chosen by shape (the child looks up a primary key
//!   the parent selected as `<field>_id`, or a foreign key pointing back at the parent's table,
//!   or joins through the parent's many-to-many table); failing that, it is the nearest
//!   preceding query with enough rows. A parent that is itself the child of an N+1 (nested
//!   loops, `loan.member.branch`) extends the relation path (`member__branch`) back to the
//!   query that started it.
//! - **Duplicate**: one fingerprint with the same parameter values executed at least three
//!   times in a request (two repeats over the first), and not part of an N+1.
//!
//! Server-side cursor traffic (`DECLARE`, `FETCH`, `CLOSE`), writes and bulk inserts are not
//! SELECT statements here and are never findings.
//!
//! Work per statement is O(1) amortized (hash map updates); memory per connection is bounded
//! by [`MAX_RUNS`] fingerprints and [`MAX_PARENTS`] parent candidates per request: a request
//! that outgrows them is evaluated and a new one started.

use super::Map;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::django::{self, Orm, Relation, Suggestion};
use crate::fingerprint::{Analysis, Clause, Kind};

/// Statements further apart than this on one connection belong to different requests.
pub const IDLE_GAP: Duration = Duration::from_millis(500);
/// Distinct fingerprints tracked per request.
pub const MAX_RUNS: usize = 512;
/// Parent candidates kept per request.
pub const MAX_PARENTS: usize = 64;
/// Distinct parameter digests counted per fingerprint per request.
const MAX_DIGESTS: usize = 256;
/// How far a nested relation path is followed.
const MAX_DEPTH: usize = 4;

/// What the detector needs to know about a fingerprint (computed once per fingerprint).
#[derive(Debug)]
pub struct Shape {
    /// Normalized text.
    pub query: Arc<str>,
    pub kind: Kind,
    /// A plain SELECT (not a cursor declaration or a FETCH).
    pub select: bool,
    /// The first table read.
    pub table: Option<String>,
    pub tables: Vec<String>,
    /// `(table, column)` of the qualified columns in the select list.
    pub selected: Vec<(String, String)>,
    /// `(table, column, operator)` compared in WHERE.
    pub filters: Vec<(Option<String>, String, String)>,
}

impl Shape {
    pub fn new(query: &str, analysis: &Analysis) -> Shape {
        let select = analysis.kind == Kind::Select
            && query
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("SELECT"));
        let filters = analysis
            .predicates
            .iter()
            .filter(|p| p.clause == Clause::Where)
            .map(|p| (p.table.clone(), p.column.clone(), p.op.clone()))
            .collect();
        Shape {
            query: Arc::from(query),
            kind: analysis.kind,
            select,
            table: analysis.tables.first().cloned(),
            tables: analysis.tables.clone(),
            selected: if select {
                selected_columns(query)
            } else {
                Vec::new()
            },
            filters,
        }
    }

    /// Columns compared with `=` or `IN` on `table` (or unqualified).
    fn equality_filters<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.filters.iter().filter_map(move |(t, c, op)| {
            let on_table = t.as_deref().is_none_or(|t| t == table);
            (on_table && (op == "=" || op == "IN" || op == "= ANY")).then_some(c.as_str())
        })
    }
}

/// The qualified columns (`"t"."c"` or `t.c`) between SELECT and the first top-level FROM.
fn selected_columns(query: &str) -> Vec<(String, String)> {
    let b = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 6;
    let mut depth = 0usize;
    let mut prev: Option<String> = None; // the identifier just before a `.`
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'\'' => {
                i = b[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |p| i + 2 + p);
                prev = None;
                continue;
            }
            b'"' | b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let (ident, end) = identifier(b, i);
                if depth == 0 && ident.eq_ignore_ascii_case("FROM") && b[i] != b'"' {
                    break;
                }
                if let Some(table) = prev.take() {
                    out.push((table, ident.clone()));
                } else if b.get(end) == Some(&b'.') {
                    prev = Some(ident);
                    i = end + 1;
                    continue;
                }
                i = end;
                continue;
            }
            _ => prev = None,
        }
        i += 1;
    }
    out
}

/// The identifier at `b[i]` (quoted or bare) and where it ends.
fn identifier(b: &[u8], i: usize) -> (String, usize) {
    if b[i] == b'"' {
        let end = b[i + 1..]
            .iter()
            .position(|&c| c == b'"')
            .map_or(b.len(), |p| i + 1 + p);
        let name = String::from_utf8_lossy(&b[i + 1..end]).into_owned();
        (name, (end + 1).min(b.len()))
    } else {
        let end = b[i..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
            .map_or(b.len(), |p| i + p);
        (String::from_utf8_lossy(&b[i..end]).into_owned(), end)
    }
}

/// One execution, as the detector sees it.
#[derive(Clone, Debug)]
pub struct Statement {
    pub fingerprint: u64,
    pub shape: Arc<Shape>,
    /// Digest of the parameter values and literals: equal digests mean equal values.
    pub digest: u64,
    pub rows: u64,
    pub duration: Duration,
    pub started: Instant,
    pub at: SystemTime,
    /// Identifies the request from sqlcommenter context (trace id, or route/controller).
    pub request: Option<u64>,
    pub route: Option<Arc<str>>,
}

/// A finding from one request.
#[derive(Clone, Debug)]
pub struct Burst {
    pub duplicate: bool,
    pub fingerprint: u64,
    pub shape: Arc<Shape>,
    /// The query that caused the burst (the root of a nested path), for N+1s.
    pub parent: Option<(u64, Arc<Shape>)>,
    /// Executions in the burst (for duplicates: of the repeated parameters).
    pub size: u64,
    /// Time spent in the burst beyond one query.
    pub wasted: Duration,
    pub route: Option<Arc<str>>,
    pub suggestion: Suggestion,
    pub at: SystemTime,
}

/// One fingerprint's executions in the current request.
struct Run {
    fingerprint: u64,
    shape: Arc<Shape>,
    first_seq: u64,
    count: u64,
    rows: u64,
    total: Duration,
    digests: Digests,
    /// Most executions with one digest.
    max_same: u32,
    last_at: SystemTime,
}

/// How often each parameter digest ran, for up to [`MAX_DIGESTS`] distinct digests. Most
/// fingerprints run once per request: the first digest is kept inline, and a map is allocated
/// only when a second one shows up.
#[derive(Default)]
struct Digests {
    first: Option<(u64, u32)>,
    more: Map<u64, u32>,
    /// Once the map is full: which [`FILTER_BITS`] buckets its digests fall in. A connection
    /// whose request never ends (pgbench, or a busy persistent connection without
    /// sqlcommenter) sends mostly new values to a full map, and each lookup there is a cache
    /// miss (the observer's data goes cold while it sleeps); a clear bit turns such a value
    /// away from one line of this filter instead, with the same answer.
    full: Option<Box<[u64; FILTER_BITS / 64]>>,
}

/// Bits of a full [`Digests`]' filter: 256 bytes, with 256 digests a bit in 8 set.
const FILTER_BITS: usize = 2048;

/// The filter bit of `digest`. Digests are hashes already, so their top bits are uniform (the
/// map's own hash of them is independent of these).
#[inline]
fn filter_bit(digest: u64) -> (usize, u64) {
    let bit = (digest >> (64 - FILTER_BITS.trailing_zeros())) as usize;
    (bit / 64, 1 << (bit % 64))
}

impl Digests {
    /// Count one run of `digest`; how often it has run so far (0 once the table is full and
    /// `digest` is not in it).
    fn count(&mut self, digest: u64) -> u32 {
        let (first, n) = self.first.get_or_insert((digest, 0));
        if *first == digest {
            *n += 1;
            return *n;
        }
        if let Some(filter) = &self.full {
            let (word, mask) = filter_bit(digest);
            if filter[word] & mask == 0 {
                return 0;
            }
        }
        let room = self.distinct() < MAX_DIGESTS;
        match self.more.get_mut(&digest) {
            Some(n) => {
                *n += 1;
                *n
            }
            None if room => {
                self.more.insert(digest, 1);
                if self.distinct() == MAX_DIGESTS {
                    let mut filter = Box::new([0u64; FILTER_BITS / 64]);
                    for &d in self.more.keys() {
                        let (word, mask) = filter_bit(d);
                        filter[word] |= mask;
                    }
                    self.full = Some(filter);
                }
                1
            }
            None => 0,
        }
    }

    /// Distinct digests counted.
    fn distinct(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
}

struct ParentCandidate {
    fingerprint: u64,
    shape: Arc<Shape>,
    seq: u64,
}

/// The statements of one connection's current request.
pub struct ConnDetector {
    threshold: u64,
    seq: u64,
    runs: Map<u64, Run>,
    parents: Vec<ParentCandidate>,
    request: Option<u64>,
    route: Option<Arc<str>>,
    last_end: Option<Instant>,
    in_transaction: bool,
}

impl ConnDetector {
    pub fn new(threshold: u64) -> Self {
        ConnDetector {
            threshold: threshold.max(2),
            seq: 0,
            runs: Map::default(),
            parents: Vec::new(),
            request: None,
            route: None,
            last_end: None,
            in_transaction: false,
        }
    }

    /// Take one execution; findings of a request that it ends go to `out`.
    pub fn statement(&mut self, s: Statement, out: &mut Vec<Burst>) {
        // Statements without context (a driver's own BEGIN, connection setup) neither start
        // nor end a request.
        let new_request = matches!((s.request, self.request), (Some(a), Some(b)) if a != b);
        let idle = self
            .last_end
            .is_some_and(|end| s.started.saturating_duration_since(end) > IDLE_GAP);
        let full = self.runs.len() >= MAX_RUNS && !self.runs.contains_key(&s.fingerprint);
        if new_request || idle || full {
            self.finish(out);
        }
        if s.request.is_some() {
            self.request = s.request;
        }
        if s.route.is_some() {
            self.route = s.route.clone();
        }
        self.last_end = Some(s.started + s.duration);
        if !s.shape.select {
            self.seq += 1;
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        let run = self.runs.entry(s.fingerprint).or_insert_with(|| Run {
            fingerprint: s.fingerprint,
            shape: s.shape.clone(),
            first_seq: seq,
            count: 0,
            rows: 0,
            total: Duration::ZERO,
            digests: Digests::default(),
            max_same: 0,
            last_at: s.at,
        });
        run.count += 1;
        run.rows = run.rows.saturating_add(s.rows);
        run.total += s.duration;
        run.last_at = s.at;
        run.max_same = run.max_same.max(run.digests.count(s.digest));
        if s.rows >= self.threshold {
            if self.parents.len() >= MAX_PARENTS {
                self.parents.remove(0);
            }
            self.parents.push(ParentCandidate {
                fingerprint: s.fingerprint,
                shape: s.shape,
                seq,
            });
        }
    }

    /// ReadyForQuery: the end of an explicit transaction ends the request.
    pub fn ready_for_query(&mut self, status: u8, out: &mut Vec<Burst>) {
        if self.in_transaction && status == b'I' {
            self.finish(out);
        }
        self.in_transaction = status != b'I';
    }

    /// The connection closed: its last request ends.
    pub fn close(&mut self, out: &mut Vec<Burst>) {
        self.finish(out);
    }

    /// Evaluate the current request and start a new one.
    pub fn finish(&mut self, out: &mut Vec<Burst>) {
        // Most requests hold neither a loop nor a repeat: nothing to evaluate.
        let threshold = self.threshold;
        let candidate =
            |r: &Run| (r.count >= threshold && r.digests.distinct() >= 2) || r.max_same >= 3;
        if !self.runs.values().any(candidate) {
            self.reset();
            return;
        }
        let mut children: Map<u64, (Option<u64>, Option<Relation>)> = Map::default();
        let mut order: Vec<&Run> = self.runs.values().collect();
        order.sort_unstable_by_key(|r| r.first_seq);
        // First pass: each N+1 child's immediate parent and relation.
        for run in &order {
            if run.count >= self.threshold && run.digests.distinct() >= 2 {
                if let Some(found) = self.parent_of(run) {
                    children.insert(run.fingerprint, found);
                }
            }
        }
        for run in &order {
            let at = run.last_at;
            if let Some((parent, relation)) = children.get(&run.fingerprint) {
                // Follow nested parents back to the root query.
                let mut path = relation.clone();
                let mut root = *parent;
                for _ in 0..MAX_DEPTH {
                    let Some((Some(up), up_rel)) = root.and_then(|p| children.get(&p)) else {
                        break;
                    };
                    path = match (up_rel, path) {
                        (Some(a), Some(b)) => Some(Relation {
                            orm: if a.orm == Orm::SelectRelated && b.orm == Orm::SelectRelated {
                                Orm::SelectRelated
                            } else {
                                Orm::PrefetchRelated
                            },
                            path: format!("{}__{}", a.path, b.path),
                            guessed: a.guessed || b.guessed,
                        }),
                        _ => None,
                    };
                    root = Some(*up);
                }
                let parent_shape = root
                    .and_then(|p| self.runs.get(&p))
                    .map(|r| r.shape.clone());
                let suggestion = match (&path, &parent_shape) {
                    (Some(rel), Some(p)) => django::n_plus_one_advice(
                        p.table.as_deref().unwrap_or("?"),
                        run.shape.table.as_deref().unwrap_or("?"),
                        rel,
                        run.count,
                    ),
                    _ => Suggestion {
                        orm: None,
                        model: None,
                        field: None,
                        text: format!(
                            "One query runs {} times in a loop over the rows of an earlier \
                             query. Load the related rows together with the parent rows \
                             (select_related / prefetch_related) or in one query with IN (…).",
                            run.count
                        ),
                    },
                };
                out.push(Burst {
                    duplicate: false,
                    fingerprint: run.fingerprint,
                    shape: run.shape.clone(),
                    parent: root.zip(parent_shape),
                    size: run.count,
                    wasted: run.total - mean(run.total, run.count),
                    route: self.route.clone(),
                    suggestion,
                    at,
                });
            } else if run.max_same >= 3 {
                let repeats = u64::from(run.max_same);
                let mean = mean(run.total, run.count);
                out.push(Burst {
                    duplicate: true,
                    fingerprint: run.fingerprint,
                    shape: run.shape.clone(),
                    parent: None,
                    size: repeats,
                    wasted: mean * (run.max_same - 1),
                    route: self.route.clone(),
                    suggestion: django::duplicate_advice(run.shape.table.as_deref(), repeats),
                    at,
                });
            }
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.runs.clear();
        self.parents.clear();
        self.seq = 0;
        self.route = None;
    }

    /// The parent of an N+1 child run: (parent fingerprint, how the child relates to it).
    fn parent_of(&self, child: &Run) -> Option<(Option<u64>, Option<Relation>)> {
        let before = |seq: u64| seq < child.first_seq;
        // Candidates: single queries with enough rows, and earlier bursts whose rows add up.
        // A query that already joins the child's table has those rows (a select_related
        // queryset): it is no parent of lookups in that table.
        let joins_child = |p: &Shape| match &child.shape.table {
            Some(t) => p.tables.iter().skip(1).any(|pt| pt == t),
            None => false,
        };
        let mut candidates: Vec<(u64, u64, &Arc<Shape>)> = self
            .parents
            .iter()
            .filter(|p| {
                before(p.seq) && p.fingerprint != child.fingerprint && !joins_child(&p.shape)
            })
            .map(|p| (p.seq, p.fingerprint, &p.shape))
            .collect();
        for r in self.runs.values() {
            if r.fingerprint != child.fingerprint
                && !joins_child(&r.shape)
                && before(r.first_seq)
                && r.count >= self.threshold
                && r.rows >= self.threshold
            {
                candidates.push((r.first_seq, r.fingerprint, &r.shape));
            }
        }
        // Nearest first.
        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        for (_, fp, shape) in &candidates {
            if let Some(rel) = relation(shape, &child.shape) {
                return Some((Some(*fp), Some(rel)));
            }
        }
        candidates
            .first()
            .map(|(_, fp, shape)| (Some(*fp), guess_relation(shape, &child.shape)))
    }
}

/// How `child` relates to `parent` by Django's naming, if it clearly does.
fn relation(parent: &Shape, child: &Shape) -> Option<Relation> {
    let ptable = parent.table.as_deref()?;
    let ctable = child.table.as_deref()?;
    let child_filters: Vec<&str> = child.equality_filters(ctable).collect();
    // Forward foreign key: the child is looked up by primary key and the parent selected a
    // `<field>_id` column named after the child's model.
    if child_filters.contains(&"id") {
        for (t, col) in &parent.selected {
            if t != ptable {
                continue;
            }
            if let Some(field) = col.strip_suffix("_id") {
                if django::table_is_model(ctable, field) {
                    return Some(Relation {
                        orm: Orm::SelectRelated,
                        path: field.to_owned(),
                        guessed: false,
                    });
                }
            }
        }
    }
    // Many-to-many: the child joins through `<parent table>_<field>` and filters on it.
    for t in &child.tables {
        if let Some(field) = t
            .strip_prefix(ptable)
            .and_then(|rest| rest.strip_prefix('_'))
        {
            if t != ctable && child.equality_filters(t).next().is_some() {
                return Some(Relation {
                    orm: Orm::PrefetchRelated,
                    path: field.to_owned(),
                    guessed: false,
                });
            }
        }
    }
    // Reverse foreign key: the child is filtered on `<parent model>_id`.
    for col in &child_filters {
        if let Some(model) = col.strip_suffix("_id") {
            if django::table_is_model(ptable, model) {
                let child_model = django::model_of(ctable, Some(ptable)).name.to_lowercase();
                return Some(Relation {
                    orm: Orm::PrefetchRelated,
                    path: format!("{child_model}_set"),
                    guessed: false,
                });
            }
        }
    }
    None
}

/// A relation by shape alone when names do not match (custom field names): a primary-key
/// lookup under a parent that selected foreign keys, or a filter on some `_id` column.
fn guess_relation(parent: &Shape, child: &Shape) -> Option<Relation> {
    let ptable = parent.table.as_deref()?;
    let ctable = child.table.as_deref()?;
    let child_filters: Vec<&str> = child.equality_filters(ctable).collect();
    if child_filters.contains(&"id") {
        let fk = parent
            .selected
            .iter()
            .find(|(t, c)| t == ptable && c.ends_with("_id"))?;
        return Some(Relation {
            orm: Orm::SelectRelated,
            path: fk.1.trim_end_matches("_id").to_owned(),
            guessed: true,
        });
    }
    if child_filters.iter().any(|c| c.ends_with("_id")) {
        let child_model = django::model_of(ctable, Some(ptable)).name.to_lowercase();
        return Some(Relation {
            orm: Orm::PrefetchRelated,
            path: format!("{child_model}_set"),
            guessed: true,
        });
    }
    None
}

/// One aggregated finding (SPEC's `/api/nplusone` entry).
#[derive(Clone, Debug)]
pub struct Finding {
    pub duplicate: bool,
    pub fingerprint: u64,
    pub query: Arc<str>,
    pub parent: Option<(u64, Arc<str>)>,
    pub bursts: u64,
    pub max_burst: u64,
    pub queries: u64,
    pub wasted: Duration,
    pub route: Option<Arc<str>>,
    pub suggestion: Suggestion,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    /// The part of `bursts` and of `queries` already summed into the exported `other` series.
    flushed: (u64, u64),
}

type FindingKey = (bool, u64, u64);

/// All findings, aggregated by (kind, fingerprint, parent), bounded in number.
pub struct Findings {
    entries: Map<FindingKey, Finding>,
    max: usize,
    /// The cumulative `other` series of the metrics (see [`Findings::export`]): N+1 bursts,
    /// and queries of N+1 findings and of duplicates (`[n_plus_one, duplicate]`); `None` until
    /// something was first summed into them.
    other_bursts: Option<u64>,
    other_queries: [Option<u64>; 2],
    /// The findings the last export gave series of their own, sorted; their (duplicate,
    /// fingerprint) pairs had query series of their own (queries are counted per fingerprint).
    exported: Vec<FindingKey>,
    /// Findings, and fingerprints, exported and then evicted, which may come back from zero:
    /// they stay in `other` for the next export, so that their series is absent once rather
    /// than lower.
    recreated: Vec<FindingKey>,
    recreated_fps: Vec<(bool, u64)>,
}

/// The metrics export of the findings: series of their own for the top findings, what each
/// gained since it was last summed into `other`, and the cumulative `other` series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingsExport {
    /// N+1 bursts per (child fingerprint, parent fingerprint).
    pub bursts: Vec<(u64, Option<u64>, u64)>,
    /// Queries per fingerprint: `[n_plus_one, duplicate]`.
    pub queries: [Vec<(u64, u64)>; 2],
    pub other_bursts: Option<u64>,
    pub other_queries: [Option<u64>; 2],
}

fn add_to(total: &mut Option<u64>, n: u64) {
    let t = total.get_or_insert(0);
    *t = t.saturating_add(n);
}

impl Findings {
    pub fn new(max: usize) -> Self {
        Findings {
            entries: Map::default(),
            max: max.max(1),
            other_bursts: None,
            other_queries: [None; 2],
            exported: Vec::new(),
            recreated: Vec::new(),
            recreated_fps: Vec::new(),
        }
    }

    /// Sum what finding `key` gained since it was last summed into `other` into it: its
    /// bursts (an N+1 finding's) when `bursts`, its queries when `queries`.
    fn fold(&mut self, key: FindingKey, bursts: bool, queries: bool) {
        let Some(f) = self.entries.get_mut(&key) else {
            return;
        };
        if bursts && !f.duplicate && f.bursts > f.flushed.0 {
            add_to(&mut self.other_bursts, f.bursts - f.flushed.0);
            f.flushed.0 = f.bursts;
        }
        if queries && f.queries > f.flushed.1 {
            add_to(
                &mut self.other_queries[usize::from(f.duplicate)],
                f.queries - f.flushed.1,
            );
            f.flushed.1 = f.queries;
        }
    }

    /// The counters of the metrics: the `top` findings with most wasted time get series of
    /// their own (their fingerprints, for the per-fingerprint query counts), the rest are
    /// summed under `other`. Every series only grows while it is exported, and all of them
    /// together count every burst and query ever found, as the registry's
    /// [`crate::observe::Registry::export`] does for the statement counters: `other` is
    /// cumulative, what leaves the top moves what it showed into it, what enters the top shows
    /// only what it gained since, and an evicted finding is summed into it at once.
    pub fn export(&mut self, top: usize) -> FindingsExport {
        let mut recreated = std::mem::take(&mut self.recreated);
        let mut recreated_fps = std::mem::take(&mut self.recreated_fps);
        recreated.sort_unstable();
        recreated_fps.sort_unstable();
        let mut order: Vec<(Duration, FindingKey)> = self
            .entries
            .iter()
            .filter(|(k, _)| {
                recreated.binary_search(k).is_err()
                    && recreated_fps.binary_search(&(k.0, k.1)).is_err()
            })
            .map(|(k, f)| (f.wasted, *k))
            .collect();
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        order.truncate(top);
        self.exported.clear();
        self.exported.extend(order.iter().map(|(_, k)| *k));
        self.exported.sort_unstable();
        // The fingerprints with query series of their own, and their queries not in `other`.
        let mut fps: Vec<((bool, u64), u64)> =
            self.exported.iter().map(|k| ((k.0, k.1), 0)).collect();
        fps.dedup_by_key(|(fp, _)| *fp);
        let keys: Vec<FindingKey> = self.entries.keys().copied().collect();
        for key in keys {
            let bursts = self.exported.binary_search(&key).is_err();
            match fps.binary_search_by_key(&(key.0, key.1), |(fp, _)| *fp) {
                Ok(i) => {
                    self.fold(key, bursts, false);
                    let f = &self.entries[&key];
                    fps[i].1 += f.queries - f.flushed.1;
                }
                Err(_) => self.fold(key, bursts, true),
            }
        }
        let mut export = FindingsExport {
            other_bursts: self.other_bursts,
            other_queries: self.other_queries,
            ..FindingsExport::default()
        };
        for (_, key) in &order {
            let f = &self.entries[key];
            if !f.duplicate {
                let parent = f.parent.as_ref().map(|p| p.0);
                export
                    .bursts
                    .push((f.fingerprint, parent, f.bursts - f.flushed.0));
            }
        }
        for ((duplicate, fp), n) in fps {
            export.queries[usize::from(duplicate)].push((fp, n));
        }
        export
    }

    pub fn add(&mut self, b: Burst) {
        let parent_fp = b.parent.as_ref().map_or(0, |p| p.0);
        let key = (b.duplicate, b.fingerprint, parent_fp);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            // Forget the finding seen least recently.
            if let Some(old) = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.last_seen)
                .map(|(k, _)| *k)
            {
                self.fold(old, true, true);
                self.entries.remove(&old);
                if self.exported.iter().any(|k| (k.0, k.1) == (old.0, old.1)) {
                    self.recreated_fps.push((old.0, old.1));
                }
                if let Ok(i) = self.exported.binary_search(&old) {
                    self.exported.remove(i);
                    self.recreated.push(old);
                }
            }
        }
        let f = self.entries.entry(key).or_insert_with(|| Finding {
            duplicate: b.duplicate,
            fingerprint: b.fingerprint,
            query: b.shape.query.clone(),
            parent: b.parent.as_ref().map(|(fp, s)| (*fp, s.query.clone())),
            bursts: 0,
            max_burst: 0,
            queries: 0,
            wasted: Duration::ZERO,
            route: None,
            suggestion: b.suggestion.clone(),
            first_seen: b.at,
            last_seen: b.at,
            flushed: (0, 0),
        });
        f.bursts += 1;
        f.max_burst = f.max_burst.max(b.size);
        f.queries += b.size;
        f.wasted += b.wasted;
        if b.route.is_some() {
            f.route = b.route;
        }
        f.suggestion = b.suggestion;
        f.last_seen = f.last_seen.max(b.at);
    }

    /// Every finding, most wasted time first.
    pub fn by_wasted_time(&self) -> Vec<&Finding> {
        let mut all: Vec<&Finding> = self.entries.values().collect();
        all.sort_unstable_by(|a, b| {
            b.wasted
                .cmp(&a.wasted)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        all
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `total / count`, for any count (`Duration` divides by a `u32` only).
fn mean(total: Duration, count: u64) -> Duration {
    match count {
        0 => Duration::ZERO,
        n => Duration::from_nanos(
            u64::try_from(total.as_nanos() / u128::from(n)).unwrap_or(u64::MAX),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint;

    /// The metrics' N+1 and duplicate counters never go down while findings move into and out
    /// of the top and are evicted, and all series together count everything found. (They were
    /// re-summed from the current findings at every scrape: `other` went down when a finding
    /// entered the top, and a fingerprint's query series when one of its findings left it.)
    #[test]
    fn exported_finding_series_never_go_down_and_add_up() {
        use std::collections::HashMap;
        let shape = |sql: &str| Arc::new(Shape::new(sql, &fingerprint::analyze(sql)));
        let (child, parents) = (
            shape("SELECT * FROM b WHERE a_id = $1"),
            [shape("SELECT * FROM a"), shape("SELECT * FROM c")],
        );
        for (max, top, seed) in [(4, 2, 1u64), (3, 3, 2), (6, 1, 3), (2, 5, 4), (5, 2, 5)] {
            let mut findings = Findings::new(max);
            let mut rng = seed;
            let mut next = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let (mut bursts, mut queries) = (0u64, [0u64; 2]);
            let mut last: HashMap<String, u64> = HashMap::new();
            for step in 0..400 {
                let duplicate = next(3) == 0;
                let size = 1 + next(9);
                findings.add(Burst {
                    duplicate,
                    fingerprint: 1 + next(4),
                    shape: child.clone(),
                    parent: (!duplicate)
                        .then(|| (100 + next(2), parents[next(2) as usize].clone())),
                    size,
                    wasted: Duration::from_millis(next(50)),
                    route: None,
                    suggestion: Suggestion {
                        orm: None,
                        model: None,
                        field: None,
                        text: String::new(),
                    },
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(step),
                });
                bursts += u64::from(!duplicate);
                queries[usize::from(duplicate)] += size;
                if next(4) != 0 {
                    continue;
                }
                let e = findings.export(top);
                let mut series: Vec<(String, u64)> = Vec::new();
                for &(fp, parent, n) in &e.bursts {
                    series.push((format!("bursts {fp} {parent:?}"), n));
                }
                series.extend(e.other_bursts.map(|n| ("bursts other".to_owned(), n)));
                for kind in 0..2 {
                    for &(fp, n) in &e.queries[kind] {
                        series.push((format!("queries{kind} {fp}"), n));
                    }
                    series
                        .extend(e.other_queries[kind].map(|n| (format!("queries{kind} other"), n)));
                }
                for (name, n) in &series {
                    if let Some(before) = last.get(name) {
                        assert!(
                            n >= before,
                            "{name} went down from {before} to {n} ({max} {top} {seed})"
                        );
                    }
                }
                let sum = |prefix: &str| -> u64 {
                    series
                        .iter()
                        .filter(|(k, _)| k.starts_with(prefix))
                        .map(|(_, n)| n)
                        .sum()
                };
                assert_eq!(sum("bursts "), bursts, "bursts ({max} {top} {seed})");
                assert_eq!(
                    sum("queries0 "),
                    queries[0],
                    "N+1 queries ({max} {top} {seed})"
                );
                assert_eq!(
                    sum("queries1 "),
                    queries[1],
                    "duplicates ({max} {top} {seed})"
                );
                last = series.into_iter().collect();
            }
        }
    }

    /// Counts past `u32::MAX` (a long-lived autocommit connection's run) divide correctly;
    /// `Duration / (count as u32)` divided by zero at 2^32 and wrongly above it.
    #[test]
    fn means_of_counts_beyond_u32() {
        let count = (1u64 << 32) + 2;
        assert_eq!(
            mean(Duration::from_secs(count), count),
            Duration::from_secs(1)
        );
        assert_eq!(
            mean(Duration::from_secs(3), 1 << 32),
            Duration::from_nanos(0)
        );
        assert_eq!(mean(Duration::from_secs(3), 0), Duration::ZERO);
        assert_eq!(mean(Duration::from_secs(3), 2), Duration::from_millis(1500));
    }

    /// Feeds SQL as psycopg2 sends it (literals inline) to a detector, as the observer does.
    struct Replay {
        detector: ConnDetector,
        clock: Instant,
        out: Vec<Burst>,
        shapes: Map<u64, Arc<Shape>>,
        trace: Option<u64>,
    }

    impl Replay {
        fn new() -> Self {
            Replay {
                detector: ConnDetector::new(5),
                clock: Instant::now(),
                out: Vec::new(),
                shapes: Map::default(),
                trace: None,
            }
        }

        fn run(&mut self, sql: &str, rows: u64) -> &mut Self {
            let mut text = String::new();
            let n = fingerprint::normalize(sql.as_bytes(), &mut text);
            let shape = self
                .shapes
                .entry(n.id)
                .or_insert_with(|| Arc::new(Shape::new(&text, &fingerprint::analyze(&text))))
                .clone();
            self.clock += Duration::from_micros(300);
            let s = Statement {
                fingerprint: n.id,
                shape,
                digest: n.literal_digest,
                rows,
                duration: Duration::from_micros(200),
                started: self.clock,
                at: SystemTime::now(),
                request: self.trace,
                route: None,
            };
            self.detector.statement(s, &mut self.out);
            self
        }

        fn findings(&mut self) -> Vec<Row> {
            self.detector.close(&mut self.out);
            self.out
                .iter()
                .map(|b| {
                    (
                        b.duplicate,
                        b.shape.table.clone().unwrap_or_default(),
                        b.parent.as_ref().and_then(|p| p.1.table.clone()),
                        b.suggestion.orm.map(Orm::as_str),
                        b.suggestion.field.clone(),
                        b.size,
                    )
                })
                .collect()
        }
    }

    const LOANS: &str = "SELECT \"library_loan\".\"id\", \"library_loan\".\"book_id\", \"library_loan\".\"member_id\", \"library_loan\".\"due\" FROM \"library_loan\" ORDER BY \"library_loan\".\"id\" ASC";

    fn book(id: u64) -> String {
        format!("SELECT \"library_book\".\"id\", \"library_book\".\"title\", \"library_book\".\"author_id\" FROM \"library_book\" WHERE \"library_book\".\"id\" = {id} LIMIT 21")
    }

    fn member(id: u64) -> String {
        format!("SELECT \"library_member\".\"id\", \"library_member\".\"name\", \"library_member\".\"branch_id\" FROM \"library_member\" WHERE \"library_member\".\"id\" = {id} LIMIT 21")
    }

    fn branch(id: u64) -> String {
        format!("SELECT \"library_branch\".\"id\", \"library_branch\".\"name\" FROM \"library_branch\" WHERE \"library_branch\".\"id\" = {id} LIMIT 21")
    }

    type Row = (
        bool,
        String,
        Option<String>,
        Option<&'static str>,
        Option<String>,
        u64,
    );

    fn n1(child: &str, parent: &str, orm: &'static str, field: &str, size: u64) -> Row {
        (
            false,
            child.into(),
            Some(parent.into()),
            Some(orm),
            Some(field.into()),
            size,
        )
    }

    #[test]
    fn digests_count_each_value_up_to_the_bound() {
        let mut d = Digests::default();
        assert_eq!(d.distinct(), 0);
        assert_eq!(
            (d.count(7), d.count(7), d.count(8), d.count(7)),
            (1, 2, 1, 3)
        );
        assert_eq!((d.distinct(), d.count(8)), (2, 2));
        for v in 100..100 + MAX_DIGESTS as u64 {
            d.count(v);
        }
        assert_eq!(d.distinct(), MAX_DIGESTS);
        // Full: a new value is not counted, known ones still are.
        assert_eq!((d.count(1), d.count(7), d.count(8)), (0, 4, 3));
        assert_eq!(d.distinct(), MAX_DIGESTS);
    }

    /// The filter of a full table changes no answer: against a plain count of the first
    /// [`MAX_DIGESTS`] distinct values, over random values and repeats of known ones, some of
    /// them sharing a filter bit with an untracked value.
    #[test]
    fn a_full_tables_filter_gives_the_same_counts() {
        let mut d = Digests::default();
        let mut reference: Vec<(u64, u32)> = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            // xorshift64*: digests are uniform 64-bit hashes.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut turned_away = 0;
        for i in 0..20_000 {
            let v = if i % 3 == 0 && !reference.is_empty() {
                // A known value again, or a new one in the same filter bit as a known one.
                let known = reference[(next() % reference.len() as u64) as usize].0;
                if i % 2 == 0 {
                    known
                } else {
                    known ^ (next() & 0xFFFF)
                }
            } else {
                next()
            };
            let room = reference.len() < MAX_DIGESTS;
            let want = match reference.iter_mut().find(|(k, _)| *k == v) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None if room => {
                    reference.push((v, 1));
                    1
                }
                None => 0,
            };
            if d.full.is_some() && want == 0 {
                turned_away += 1;
            }
            assert_eq!(d.count(v), want, "value {i}");
        }
        assert!(d.full.is_some());
        assert!(turned_away > 10_000, "{turned_away}");
    }

    #[test]
    fn forward_foreign_key_loop_wants_select_related() {
        let mut r = Replay::new();
        r.run(LOANS, 10);
        for i in 0..10 {
            r.run(&book(i + 1), 1);
        }
        assert_eq!(
            r.findings(),
            [n1(
                "library_book",
                "library_loan",
                "select_related",
                "book",
                10
            )]
        );
        let s = &r.out[0].suggestion;
        assert_eq!(s.model.as_deref(), Some("Loan"));
        assert!(s.text.contains("select_related(\"book\")"), "{}", s.text);
        // Wasted: the burst minus one query.
        assert_eq!(r.out[0].wasted, Duration::from_micros(200 * 9));
    }

    #[test]
    fn interleaved_loops_report_each_child() {
        let mut r = Replay::new();
        r.run(LOANS, 10);
        for i in 0..10 {
            r.run(&book(i + 1), 1).run(&member(i % 7 + 1), 1);
        }
        let mut f = r.findings();
        f.sort();
        assert_eq!(
            f,
            [
                n1("library_book", "library_loan", "select_related", "book", 10),
                n1(
                    "library_member",
                    "library_loan",
                    "select_related",
                    "member",
                    10
                ),
            ]
        );
    }

    #[test]
    fn nested_loops_report_the_relation_path() {
        let mut r = Replay::new();
        r.run(LOANS, 10);
        for i in 0..10 {
            r.run(&member(i + 1), 1).run(&branch(i % 3 + 1), 1);
        }
        let mut f = r.findings();
        f.sort();
        assert_eq!(
            f,
            [
                n1(
                    "library_branch",
                    "library_loan",
                    "select_related",
                    "member__branch",
                    10
                ),
                n1(
                    "library_member",
                    "library_loan",
                    "select_related",
                    "member",
                    10
                ),
            ]
        );
    }

    #[test]
    fn reverse_foreign_key_and_many_to_many_want_prefetch_related() {
        let mut r = Replay::new();
        r.run(
            "SELECT \"library_author\".\"id\", \"library_author\".\"name\" FROM \"library_author\"",
            6,
        );
        for i in 0..6 {
            r.run(&format!("SELECT \"library_book\".\"id\", \"library_book\".\"title\", \"library_book\".\"author_id\" FROM \"library_book\" WHERE \"library_book\".\"author_id\" = {i}"), 2);
        }
        assert_eq!(
            r.findings(),
            [n1(
                "library_book",
                "library_author",
                "prefetch_related",
                "book_set",
                6
            )]
        );
        let mut r = Replay::new();
        r.run("SELECT \"library_book\".\"id\", \"library_book\".\"title\", \"library_book\".\"author_id\" FROM \"library_book\"", 8);
        for i in 0..8 {
            r.run(&format!("SELECT \"library_tag\".\"id\", \"library_tag\".\"name\" FROM \"library_tag\" INNER JOIN \"library_book_tags\" ON (\"library_tag\".\"id\" = \"library_book_tags\".\"tag_id\") WHERE \"library_book_tags\".\"book_id\" = {i}"), 3);
        }
        assert_eq!(
            r.findings(),
            [n1(
                "library_tag",
                "library_book",
                "prefetch_related",
                "tags",
                8
            )]
        );
    }

    #[test]
    fn duplicates_want_a_cache() {
        let mut r = Replay::new();
        for _ in 0..3 {
            r.run(&branch(1), 1);
        }
        assert_eq!(
            r.findings(),
            [(true, "library_branch".into(), None, Some("cache"), None, 3)]
        );
        // Twice is not yet a duplicate finding.
        let mut r = Replay::new();
        r.run(&branch(1), 1).run(&branch(1), 1);
        assert!(r.findings().is_empty());
    }

    #[test]
    fn no_findings_for_the_innocent() {
        // The fixed view: one query with a JOIN.
        let mut r = Replay::new();
        r.run("SELECT \"library_loan\".\"id\", \"library_book\".\"title\" FROM \"library_loan\" INNER JOIN \"library_book\" ON (\"library_loan\".\"book_id\" = \"library_book\".\"id\")", 10);
        assert!(r.findings().is_empty());
        // Many different queries once each.
        let mut r = Replay::new();
        r.run(LOANS, 10)
            .run(&book(1), 1)
            .run(&member(1), 1)
            .run(&branch(1), 1);
        assert!(r.findings().is_empty());
        // Back-to-back primary-key lookups (persistent connection, no parent query).
        let mut r = Replay::new();
        for i in 0..20 {
            r.run(&book(i), 1);
        }
        assert!(r.findings().is_empty());
        // A server-side cursor fetched in chunks, and a bulk insert.
        let mut r = Replay::new();
        r.run("DECLARE \"_django_curs_1_sync_1\" NO SCROLL CURSOR WITH HOLD FOR SELECT \"library_book\".\"id\" FROM \"library_book\"", 0);
        for _ in 0..6 {
            r.run("FETCH FORWARD 2000 FROM \"_django_curs_1_sync_1\"", 2000);
        }
        r.run("CLOSE \"_django_curs_1_sync_1\"", 0);
        r.run("INSERT INTO \"library_tag\" (\"name\") VALUES ('a'), ('b'), ('c') RETURNING \"library_tag\".\"id\"", 3);
        assert!(r.findings().is_empty());
        // A small pagination loop.
        let mut r = Replay::new();
        r.run(LOANS, 10);
        for page in 0..3 {
            r.run(&format!("SELECT \"library_book\".\"id\" FROM \"library_book\" ORDER BY \"library_book\".\"id\" LIMIT 10 OFFSET {}", page * 10), 10);
        }
        assert!(r.findings().is_empty());
    }

    #[test]
    fn requests_are_told_apart_by_trace_and_transactions() {
        // Parent in one request, lookups in the next: no N+1.
        let mut r = Replay::new();
        r.trace = Some(1);
        r.run(LOANS, 10);
        r.trace = Some(2);
        for i in 0..10 {
            r.run(&book(i), 1);
        }
        assert!(r.findings().is_empty());
        // The end of a transaction ends the request.
        let mut r = Replay::new();
        r.detector.ready_for_query(b'T', &mut r.out);
        r.run(LOANS, 10);
        r.detector.ready_for_query(b'I', &mut r.out);
        for i in 0..10 {
            r.run(&book(i), 1);
        }
        assert!(r.findings().is_empty());
        // Statements without context (a driver's BEGIN) do not split a traced request.
        let mut r = Replay::new();
        r.run("BEGIN", 0);
        r.trace = Some(7);
        r.run(LOANS, 10);
        for i in 0..10 {
            r.run(&book(i), 1);
        }
        assert_eq!(r.findings().len(), 1);
    }

    #[test]
    fn memory_per_connection_is_bounded() {
        let mut r = Replay::new();
        for i in 0..(MAX_RUNS * 3) {
            r.run(&format!("SELECT {i} AS c{i}"), 1);
            assert!(r.detector.runs.len() <= MAX_RUNS);
        }
        for _ in 0..(MAX_PARENTS * 3) {
            r.run(LOANS, 10);
            assert!(r.detector.parents.len() <= MAX_PARENTS);
        }
    }

    #[test]
    fn selected_columns_of_django_sql() {
        assert_eq!(
            selected_columns(
                "SELECT \"a\".\"id\", \"a\".\"b_id\", COUNT(\"c\".\"x\") AS n FROM \"a\""
            ),
            [
                ("a".to_owned(), "id".to_owned()),
                ("a".to_owned(), "b_id".to_owned()),
                ("c".to_owned(), "x".to_owned())
            ]
        );
    }
}
