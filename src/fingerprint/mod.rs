//! SQL text → fingerprint: normalized text, a stable 64-bit id, the sqlcommenter context, and
//! (once per new fingerprint) the statement's kind, tables and filtered columns.
//!
//! This module owns the normalization rules of SPEC's "Fingerprints" section. It is pure: no
//! I/O, no global state, no statistics, nothing about sockets or the wire protocol (that is
//! `proxy`); `split` cuts a simple Query's text into statements before they come here.
//!
//! # The hot path
//!
//! [`normalize()`] is one pass over the bytes that writes into a buffer the caller reuses and
//! allocates nothing per token; the [`Context`] strings are allocated only when a sqlcommenter
//! comment is there. (A statement with more than 16 literals before a higher `$n` takes a second
//! pass, see `normalize.rs`.) Folded lists are read ahead once, so no byte is lexed more than a
//! few times.
//! Any byte string is accepted — invalid UTF-8, unterminated strings or comments, megabytes of
//! text — in time linear in its length, and never panics.
//!
//! # Normalization rules
//!
//! - **Comments** are removed. A trailing block comment (only white space and `;` after it) is
//!   first read as sqlcommenter (`/*key='value',…*/`, URL-encoded, `%%` read as `%`); `route`,
//!   `controller`, `action`, `framework` and `traceparent` become the [`Context`].
//! - **Literals** become `$n`: integers, decimals, exponents, `0x…`/`0o…`/`0b…`, `'…'` (with
//!   `''` and continuation lines), `E'…'`, `$tag$…$tag$`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`
//!   (with its `UESCAPE`), `TRUE` and `FALSE` (except in `IS [NOT] TRUE`), and `NULL` where it
//!   is a value (after `=`, in a VALUES row, an IN list or an ARRAY; not in `IS NULL`,
//!   `NOT NULL` or `DEFAULT NULL`). A `-` is part of the number where it is a sign (`= -5`,
//!   `(-5`, `THEN -1`) and stays an operator where it subtracts (`a - 5`,
//!   `CURRENT_DATE - 1`). In a typed literal the type stays: `DATE '2024-01-01'` →
//!   `date $1`, `INTERVAL '1 day'` → `INTERVAL $1`. Numbers in a type modifier stay:
//!   `VARCHAR(100)`, `NUMERIC(10, 2)`.
//! - **Numbering** is in order of appearance, starting after the highest `$n` the statement
//!   already has, as pg_stat_statements does: `WHERE "a" = $1 LIMIT 21` →
//!   `WHERE "a" = $1 LIMIT $2`. Existing `$n` are kept, except after a folded list that
//!   swallowed some of them (next rule), where they are renumbered as if the list had held one
//!   element — so a driver that numbers its placeholders in order (psycopg 3 server-side
//!   binding) gives the same text as one that interpolates literals (psycopg2).
//! - **Lists fold** to one form whatever their length, keeping the first element (or row) and
//!   marking the rest with ` /*, ... */`, the form of PostgreSQL 18's pg_stat_statements:
//!   `IN (1, 2, 3)`, `IN (4)` and `IN ($1, $2)` all give `IN ($1 /*, ... */)`;
//!   `ARRAY[1, 2]` gives `ARRAY[$1 /*, ... */]`; `VALUES (1, 'a'), (2, 'b')` gives
//!   `VALUES ($1, $2) /*, ... */`. A list folds when every element is a literal, a `$n`,
//!   `NULL`, `TRUE`, `FALSE` or `DEFAULT`, each optionally cast (`'…'::uuid`); a list with any
//!   other expression, or a subquery, is normalized element by element. The text stays valid
//!   SQL (the marker is a comment), so it can be parsed or `EXPLAIN (GENERIC_PLAN)`ed.
//! - **Words**: keywords (the list in `keywords.rs`) are upper-cased, other unquoted
//!   identifiers lower-cased as PostgreSQL folds them (a word after `.` is always a name:
//!   `t.key`); quoted identifiers are kept verbatim.
//! - **Spacing** is canonical, not copied: one space between tokens, none inside brackets,
//!   before `,`, around `.` and `::`, or between a function name and its `(`. So `a=1` and
//!   `a = 1`, `IN (1,2)` and `IN ( 1, 2 )` agree. A trailing `;` is dropped.
//! - **Per-call names** are folded, so that they cannot multiply fingerprints: the name after
//!   `SAVEPOINT`, `RELEASE [SAVEPOINT]`, `ROLLBACK TO [SAVEPOINT]`, `DECLARE`, `CLOSE`,
//!   `PREPARE`, `EXECUTE`, `DEALLOCATE [PREPARE]` and in `FETCH`/`MOVE` has its generated
//!   parts replaced by `N`: Django's `"s140355385_x2"` → `"sN_xN"`,
//!   `"_django_curs_140355385_sync_3"` → `"_django_curs_N_sync_N"`, psycopg's `_pg3_12` →
//!   `_pg3_N`, asyncpg's `__asyncpg_stmt_1a__` → `__asyncpg_stmt_N__`, and in general every
//!   `_`-separated part that is all digits, or a hex id of 8 characters or more.
//!
//! # Limits
//!
//! - Only lists of constants fold: a VALUES row with an expression (`now()`), row-value lists
//!   (`(a, b) IN ((1, 2), …)`) and `bulk_update`'s `CASE WHEN … THEN …` chains keep one
//!   fingerprint per length.
//! - What drivers write around values stays in the text: psycopg2's `'2024-01-01'::date` is
//!   `$1::date` where psycopg 3's server-side binding sends `$1`; and with server-side binding
//!   Django's `SELECT 1 AS "a" … = $1` numbers the literal after `$1` (`SELECT $2 AS "a"`), so
//!   such statements do not share a fingerprint across drivers (they do within an app).
//! - Renumbering after a folded list assumes placeholders numbered in order, as drivers do;
//!   hand-numbered `$n` in any order stay deterministic but may read oddly.
//! - The body of a dollar-quoted `DO` block or function is a literal like any other.
//! - A keyword written as a bare column name (`SELECT key - 1`) reads as a keyword, so the
//!   `-` after it is taken as a sign; only readability suffers, never the id's stability.
//!
//! # The id
//!
//! A fingerprint's id is **XXH3-64 (seed 0) of the normalized text's UTF-8 bytes**, shown as 16
//! lower-case hex digits ([`id_hex`]). It depends on nothing else, so it is the same in every
//! process, on every machine and after restarts, and Prometheus can sum it across instances.
//! Changing any rule above changes ids: the golden test pins a few so that such a change is
//! deliberate.
//!
//! # The literal digest
//!
//! [`Normalized::literal_digest`] tells two executions of one fingerprint with the same literals
//! apart from those with different ones, without keeping the values: every replaced literal
//! token, as written (quotes, prefix and sign included), is chained through XXH3-64 in order
//! (`digest = xxh3_64_with_seed(token, digest)`, starting at 0; 0 when there was none). The
//! part of a folded list after its first element is chained in as one piece, as written. It is
//! for in-memory comparison only, never exported.

mod analyze;
mod comment;
mod keywords;
mod lexer;
mod normalize;
pub mod split;

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

pub use analyze::{
    analyze, Analysis, Clause, ColumnUse, Kind, MAX_ITEMS, MAX_OPERATORS, MAX_PARSE_LEN,
};
pub use comment::Context;
pub use lexer::with_backslash_quotes;

/// What [`normalize()`] learned about one statement besides its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The fingerprint id: XXH3-64 of the normalized text (see [`id_of`]).
    pub id: u64,
    /// The sqlcommenter context; empty (no allocation) when there was no such comment.
    pub context: Context,
    /// Order-sensitive digest of the literal tokens replaced (0 when there were none).
    pub literal_digest: u64,
    /// The highest `$n` in the normalized text: existing parameters plus the new ones.
    pub param_count: u32,
    /// Literals replaced, including those inside folded lists.
    pub literal_count: u32,
}

impl fmt::Debug for Normalized {
    // The digest identifies literal values; keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Normalized")
            .field("id", &format_args!("{}", id_hex(self.id)))
            .field("context", &self.context)
            .field("param_count", &self.param_count)
            .field("literal_count", &self.literal_count)
            .finish_non_exhaustive()
    }
}

/// Normalize `sql` into `out` (its old content is replaced, its capacity reused) and return the
/// id and the rest of what was learned. Never fails: any byte string gets a fingerprint.
pub fn normalize(sql: &[u8], out: &mut String) -> Normalized {
    let mut buf = std::mem::take(out).into_bytes();
    let mut pass = normalize::run(sql, None, &mut buf);
    if pass.needs_rerun() {
        let first = pass;
        pass = normalize::run(sql, Some(first.max_existing), &mut buf);
        pass.trailing_comment = first.trailing_comment;
    }
    // Tokens are cut only at ASCII bytes, so the text is valid UTF-8 whenever the input was;
    // otherwise invalid sequences (inside identifiers) become U+FFFD.
    *out = match String::from_utf8(buf) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let context = match pass.trailing_comment {
        Some((start, end)) if end - start >= 4 && sql[..end].ends_with(b"*/") => {
            comment::parse(&sql[start + 2..end - 2])
        }
        _ => Context::default(),
    };
    Normalized {
        id: id_of(out),
        context,
        literal_digest: pass.digest,
        param_count: pass
            .max_existing
            .max(pass.base.saturating_add(pass.new_count)),
        literal_count: pass.literals,
    }
}

/// The id of a normalized text: XXH3-64, seed 0, of its UTF-8 bytes.
pub fn id_of(normalized: &str) -> u64 {
    xxh3_64(normalized.as_bytes())
}

/// An id as SPEC shows it: 16 lower-case hex digits.
pub fn id_hex(id: u64) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests;
