//! The SQL keywords the normalizer upper-cases, looked up in a hash table built at compile time.
//!
//! The list is PostgreSQL's reserved keywords, its type and function-like keywords, and the
//! unreserved keywords that shape statements (transaction control, cursors, locking clauses,
//! DDL). Unreserved keywords that are common column names (`name`, `value`, `type`, `data`,
//! `year`, …) are left out on purpose: they stay lower-case like any identifier. Case is never
//! significant for an unquoted word in PostgreSQL, so the list only decides how normalized text
//! reads, never whether two statements share a fingerprint.

/// Every keyword, upper case. Order is free; ids are indexes into this array.
pub(crate) const KEYWORDS: &[&str] = &[
    // Reserved.
    "ALL",
    "ANALYSE",
    "ANALYZE",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "ASYMMETRIC",
    "BOTH",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "CONSTRAINT",
    "CREATE",
    "CURRENT_CATALOG",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "DEFAULT",
    "DEFERRABLE",
    "DESC",
    "DISTINCT",
    "DO",
    "ELSE",
    "END",
    "EXCEPT",
    "FALSE",
    "FETCH",
    "FOR",
    "FOREIGN",
    "FROM",
    "GRANT",
    "GROUP",
    "HAVING",
    "IN",
    "INITIALLY",
    "INTERSECT",
    "INTO",
    "LATERAL",
    "LEADING",
    "LIMIT",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "NOT",
    "NULL",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "PLACING",
    "PRIMARY",
    "REFERENCES",
    "RETURNING",
    "SELECT",
    "SESSION_USER",
    "SOME",
    "SYMMETRIC",
    "SYSTEM_USER",
    "TABLE",
    "THEN",
    "TO",
    "TRAILING",
    "TRUE",
    "UNION",
    "UNIQUE",
    "USER",
    "USING",
    "VARIADIC",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    // Reserved, but allowed as function or type names.
    "AUTHORIZATION",
    "BINARY",
    "COLLATION",
    "CONCURRENTLY",
    "CROSS",
    "CURRENT_SCHEMA",
    "FREEZE",
    "FULL",
    "ILIKE",
    "INNER",
    "IS",
    "ISNULL",
    "JOIN",
    "LEFT",
    "LIKE",
    "NATURAL",
    "NOTNULL",
    "OUTER",
    "OVERLAPS",
    "RIGHT",
    "SIMILAR",
    "TABLESAMPLE",
    "VERBOSE",
    // Types and function-like keywords.
    "BETWEEN",
    "BIGINT",
    "BIT",
    "BOOLEAN",
    "CHAR",
    "CHARACTER",
    "COALESCE",
    "DEC",
    "DECIMAL",
    "EXISTS",
    "EXTRACT",
    "FLOAT",
    "GREATEST",
    "GROUPING",
    "INOUT",
    "INT",
    "INTEGER",
    "INTERVAL",
    "LEAST",
    "NATIONAL",
    "NCHAR",
    "NONE",
    "NORMALIZE",
    "NULLIF",
    "NUMERIC",
    "OUT",
    "OVERLAY",
    "POSITION",
    "PRECISION",
    "REAL",
    "ROW",
    "SETOF",
    "SMALLINT",
    "SUBSTRING",
    "TIME",
    "TIMESTAMP",
    "TREAT",
    "TRIM",
    "VALUES",
    "VARCHAR",
    "JSON_AGG",
    "JSON_ARRAY",
    "JSON_ARRAYAGG",
    "JSON_EXISTS",
    "JSON_OBJECT",
    "JSON_OBJECTAGG",
    "JSON_QUERY",
    "JSON_SCALAR",
    "JSON_VALUE",
    // Unreserved keywords that shape statements.
    "ABORT",
    "ABSOLUTE",
    "ACCESS",
    "ADD",
    "AFTER",
    "AGGREGATE",
    "ALSO",
    "ALTER",
    "ALWAYS",
    "AT",
    "ATTACH",
    "BACKWARD",
    "BEFORE",
    "BEGIN",
    "BY",
    "CACHE",
    "CALL",
    "CASCADE",
    "CASCADED",
    "CHAIN",
    "CHARACTERISTICS",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTER",
    "COLUMNS",
    "COMMIT",
    "COMMITTED",
    "CONFLICT",
    "CONSTRAINTS",
    "CONTINUE",
    "COPY",
    "CSV",
    "CUBE",
    "CURRENT",
    "CURSOR",
    "CYCLE",
    "DATABASE",
    "DEALLOCATE",
    "DECLARE",
    "DEFERRED",
    "DELETE",
    "DELIMITER",
    "DETACH",
    "DISABLE",
    "DISCARD",
    "DOMAIN",
    "DOUBLE",
    "DROP",
    "EACH",
    "ENABLE",
    "ESCAPE",
    "EXCLUDE",
    "EXCLUDING",
    "EXCLUSIVE",
    "EXECUTE",
    "EXPLAIN",
    "EXTENSION",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FORCE",
    "FORWARD",
    "FUNCTION",
    "GENERATED",
    "GLOBAL",
    "GROUPS",
    "HEADER",
    "HOLD",
    "IDENTITY",
    "IF",
    "IMMEDIATE",
    "INCLUDE",
    "INCLUDING",
    "INCREMENT",
    "INDEX",
    "INHERIT",
    "INSENSITIVE",
    "INSERT",
    "INSTEAD",
    "ISOLATION",
    "KEY",
    "LAST",
    "LISTEN",
    "LOCAL",
    "LOCK",
    "LOCKED",
    "LOGGED",
    "MATCHED",
    "MATERIALIZED",
    "MAXVALUE",
    "MERGE",
    "MINVALUE",
    "MOVE",
    "NEXT",
    "NO",
    "NOTHING",
    "NOTIFY",
    "NOWAIT",
    "NULLS",
    "OF",
    "OFF",
    "ORDINALITY",
    "OTHERS",
    "OVER",
    "OVERRIDING",
    "OWNED",
    "PARTITION",
    "PRECEDING",
    "PREPARE",
    "PREPARED",
    "PRESERVE",
    "PRIOR",
    "PRIVILEGES",
    "PROCEDURE",
    "PUBLICATION",
    "RANGE",
    "READ",
    "RECURSIVE",
    "REFRESH",
    "REINDEX",
    "RELATIVE",
    "RELEASE",
    "RENAME",
    "REPEATABLE",
    "REPLACE",
    "RESET",
    "RESTART",
    "RESTRICT",
    "RETURNS",
    "REVOKE",
    "ROLE",
    "ROLLBACK",
    "ROLLUP",
    "ROWS",
    "RULE",
    "SAVEPOINT",
    "SCHEMA",
    "SCROLL",
    "SEQUENCE",
    "SERIALIZABLE",
    "SESSION",
    "SET",
    "SETS",
    "SHARE",
    "SHOW",
    "SKIP",
    "SNAPSHOT",
    "START",
    "STDIN",
    "STDOUT",
    "STORED",
    "TABLESPACE",
    "TEMP",
    "TEMPORARY",
    "TIES",
    "TRANSACTION",
    "TRIGGER",
    "TRUNCATE",
    "UNBOUNDED",
    "UNCOMMITTED",
    "UNLISTEN",
    "UNLOGGED",
    "UNTIL",
    "UPDATE",
    "VACUUM",
    "VALID",
    "VALIDATE",
    "VARYING",
    "VIEW",
    "WITHIN",
    "WITHOUT",
    "WORK",
    "WRITE",
    "ZONE",
];

/// Keywords after which `(` is a call or a type modifier, written without a space:
/// `COALESCE(`, `EXISTS(`, `= ANY(`, `VARCHAR(`.
const GLUE_PAREN: &[&str] = &[
    "ANY",
    "ARRAY",
    "BIT",
    "CAST",
    "CHAR",
    "CHARACTER",
    "COALESCE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DEC",
    "DECIMAL",
    "EXISTS",
    "EXTRACT",
    "FLOAT",
    "GREATEST",
    "GROUPING",
    "INTERVAL",
    "LEAST",
    "LEFT",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "NCHAR",
    "NORMALIZE",
    "NULLIF",
    "NUMERIC",
    "OVERLAY",
    "POSITION",
    "REPLACE",
    "RIGHT",
    "ROW",
    "SOME",
    "SUBSTRING",
    "TIME",
    "TIMESTAMP",
    "TREAT",
    "TRIM",
    "VARCHAR",
    "VARYING",
    "JSON_AGG",
    "JSON_ARRAY",
    "JSON_ARRAYAGG",
    "JSON_EXISTS",
    "JSON_OBJECT",
    "JSON_OBJECTAGG",
    "JSON_QUERY",
    "JSON_SCALAR",
    "JSON_VALUE",
];

/// Type keywords whose `(…)` holds a type modifier (`VARCHAR(100)`, `NUMERIC(10, 2)`), whose
/// numbers are part of the type and are kept.
const TYPMOD: &[&str] = &[
    "BIT",
    "CHAR",
    "CHARACTER",
    "DEC",
    "DECIMAL",
    "FLOAT",
    "INTERVAL",
    "NCHAR",
    "NUMERIC",
    "TIME",
    "TIMESTAMP",
    "VARCHAR",
    "VARYING",
];

/// Keywords that end an operand, so a `-` after them is binary: `CURRENT_DATE - 1`.
const VALUE_LIKE: &[&str] = &[
    "NULL",
    "TRUE",
    "FALSE",
    "END",
    "CURRENT_CATALOG",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_SCHEMA",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "SESSION_USER",
    "SYSTEM_USER",
    "USER",
];

pub(crate) const FLAG_GLUE_PAREN: u8 = 1;
pub(crate) const FLAG_VALUE_LIKE: u8 = 2;
pub(crate) const FLAG_TYPMOD: u8 = 4;

const MAX_LEN: usize = max_len();
/// Keywords padded with zeros to three little-endian words, so a comparison is three word
/// compares.
const WORDS: usize = 3;
const _: () = assert!(MAX_LEN <= WORDS * 8);
const TABLE_BITS: u32 = 11;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
/// Open addressing: slot holds keyword id + 1, 0 is empty.
static TABLE: [u16; TABLE_SIZE] = build_table();
static PADDED: [[u64; WORDS]; KEYWORDS.len()] = build_padded();
static FLAGS: [u8; KEYWORDS.len()] = build_flags();
/// Clears bit 5 of every byte: upper-cases ASCII letters.
const UPPER: u64 = 0xdfdf_dfdf_dfdf_dfdf;

/// A keyword's id: its index in [`KEYWORDS`].
pub(crate) type Kw = u16;

const fn max_len() -> usize {
    let mut i = 0;
    let mut m = 0;
    while i < KEYWORDS.len() {
        if KEYWORDS[i].len() > m {
            m = KEYWORDS[i].len();
        }
        i += 1;
    }
    m
}

/// The table slot of a padded, upper-case key: a multiply-shift hash of its words.
#[inline]
const fn slot_of(key: &[u64; WORDS]) -> usize {
    let h = (key[0] ^ key[1].rotate_left(21) ^ key[2].rotate_left(42))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - TABLE_BITS)) as usize
}

const fn const_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn build_table() -> [u16; TABLE_SIZE] {
    let padded = build_padded();
    let mut table = [0u16; TABLE_SIZE];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let word = KEYWORDS[k].as_bytes();
        // Duplicates in the list are a mistake: fail the build.
        let mut j = 0;
        while j < k {
            assert!(!const_eq(KEYWORDS[j].as_bytes(), word), "duplicate keyword");
            j += 1;
        }
        let mut slot = slot_of(&padded[k]);
        while table[slot] != 0 {
            slot = (slot + 1) & (TABLE_SIZE - 1);
        }
        table[slot] = (k + 1) as u16;
        k += 1;
    }
    table
}

const fn build_padded() -> [[u64; WORDS]; KEYWORDS.len()] {
    let mut out = [[0u64; WORDS]; KEYWORDS.len()];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let word = KEYWORDS[k].as_bytes();
        let mut i = 0;
        while i < word.len() {
            out[k][i / 8] |= (word[i] as u64) << (8 * (i % 8));
            i += 1;
        }
        k += 1;
    }
    out
}

/// The id of `name`, which must be in [`KEYWORDS`] (checked at compile time).
pub(crate) const fn id(name: &str) -> Kw {
    let mut k = 0;
    while k < KEYWORDS.len() {
        if const_eq(KEYWORDS[k].as_bytes(), name.as_bytes()) {
            return k as Kw;
        }
        k += 1;
    }
    panic!("not a keyword")
}

const fn build_flags() -> [u8; KEYWORDS.len()] {
    let mut flags = [0u8; KEYWORDS.len()];
    let mut i = 0;
    while i < GLUE_PAREN.len() {
        flags[id(GLUE_PAREN[i]) as usize] |= FLAG_GLUE_PAREN;
        i += 1;
    }
    let mut i = 0;
    while i < VALUE_LIKE.len() {
        flags[id(VALUE_LIKE[i]) as usize] |= FLAG_VALUE_LIKE;
        i += 1;
    }
    let mut i = 0;
    while i < TYPMOD.len() {
        flags[id(TYPMOD[i]) as usize] |= FLAG_TYPMOD;
        i += 1;
    }
    flags
}

/// Append keyword `k`, upper-case, to `out`. Its padded words are stored as one fixed-size
/// write and the excess cut off, which is cheaper than a `memcpy` call of a few bytes.
#[inline]
pub(crate) fn write_keyword(k: Kw, out: &mut Vec<u8>) {
    let p = &PADDED[k as usize];
    let mut buf = [0u8; WORDS * 8];
    for (chunk, word) in buf.chunks_exact_mut(8).zip(p) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let len = out.len() + KEYWORDS[k as usize].len();
    out.extend_from_slice(&buf);
    out.truncate(len);
}

/// The keyword `word` is (any case), if it is one.
#[inline]
pub(crate) fn lookup(word: &[u8]) -> Option<Kw> {
    lookup_in(word, 0, word.len())
}

/// The `len` (≤ 8) bytes of `s` at `at` as a little-endian word, zero-padded.
#[inline(always)]
fn load(s: &[u8], at: usize, len: usize) -> u64 {
    if let Some(eight) = s.get(at..at + 8) {
        let v = u64::from_le_bytes(eight.try_into().unwrap_or([0; 8]));
        if len >= 8 {
            v
        } else {
            v & ((1u64 << (8 * len)) - 1)
        }
    } else {
        s[at..at + len]
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b))
    }
}

/// The keyword that `s[start..end]` is (any case), if it is one.
///
/// The bytes are an unquoted identifier (letters, digits, `_`, `$`, bytes ≥ 0x80). Clearing bit
/// 5 upper-cases the letters and maps no other identifier byte onto a letter or `_`, so the
/// padded key equals a keyword's exactly when the word is that keyword in some case. The words
/// are loaded straight from the input, eight bytes at a time.
#[inline(always)]
pub(crate) fn lookup_in(s: &[u8], start: usize, end: usize) -> Option<Kw> {
    let len = end - start;
    if !(2..=MAX_LEN).contains(&len) {
        return None;
    }
    let k0 = load(s, start, len.min(8)) & UPPER;
    let k1 = if len > 8 {
        load(s, start + 8, (len - 8).min(8)) & UPPER
    } else {
        0
    };
    let k2 = if len > 16 {
        load(s, start + 16, len - 16) & UPPER
    } else {
        0
    };
    let mut slot = slot_of(&[k0, k1, k2]);
    loop {
        let entry = TABLE[slot];
        if entry == 0 {
            return None;
        }
        let k = entry - 1;
        // Word by word: comparing whole arrays would go through memory.
        let p = &PADDED[k as usize];
        if p[0] == k0 && p[1] == k1 && p[2] == k2 {
            return Some(k);
        }
        slot = (slot + 1) & (TABLE_SIZE - 1);
    }
}

#[inline]
pub(crate) fn flags(k: Kw) -> u8 {
    FLAGS[k as usize]
}

/// Ids of the keywords the normalizer and the analyzer look for.
pub(crate) mod kw {
    use super::{id, Kw};
    pub const ARRAY: Kw = id("ARRAY");
    pub const AS: Kw = id("AS");
    pub const AUTHORIZATION: Kw = id("AUTHORIZATION");
    pub const CLOSE: Kw = id("CLOSE");
    pub const CREATE: Kw = id("CREATE");
    pub const DEALLOCATE: Kw = id("DEALLOCATE");
    pub const DECLARE: Kw = id("DECLARE");
    pub const DEFAULT: Kw = id("DEFAULT");
    pub const EXECUTE: Kw = id("EXECUTE");
    pub const EXISTS: Kw = id("EXISTS");
    pub const FALSE: Kw = id("FALSE");
    pub const FETCH: Kw = id("FETCH");
    pub const IN: Kw = id("IN");
    pub const INDEX: Kw = id("INDEX");
    pub const INTERVAL: Kw = id("INTERVAL");
    pub const INTO: Kw = id("INTO");
    pub const IS: Kw = id("IS");
    pub const LOCAL: Kw = id("LOCAL");
    pub const MOVE: Kw = id("MOVE");
    pub const NOT: Kw = id("NOT");
    pub const NULL: Kw = id("NULL");
    pub const ON: Kw = id("ON");
    pub const ONLY: Kw = id("ONLY");
    pub const PREPARE: Kw = id("PREPARE");
    pub const RECURSIVE: Kw = id("RECURSIVE");
    pub const REFERENCES: Kw = id("REFERENCES");
    pub const RELEASE: Kw = id("RELEASE");
    pub const ROLE: Kw = id("ROLE");
    pub const ROLLBACK: Kw = id("ROLLBACK");
    pub const SAVEPOINT: Kw = id("SAVEPOINT");
    pub const SET: Kw = id("SET");
    pub const TABLE: Kw = id("TABLE");
    pub const TO: Kw = id("TO");
    pub const TRUE: Kw = id("TRUE");
    pub const VALUES: Kw = id("VALUES");
    pub const VIEW: Kw = id("VIEW");
    pub const WITH: Kw = id("WITH");
    pub const WITHOUT: Kw = id("WITHOUT");
    pub const TIME: Kw = id("TIME");
    pub const ZONE: Kw = id("ZONE");
    pub const VARYING: Kw = id("VARYING");
    pub const PRECISION: Kw = id("PRECISION");
    pub const USING: Kw = id("USING");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_keyword_appends_exactly_the_keyword() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            let mut out = b"x ".to_vec();
            write_keyword(i as Kw, &mut out);
            assert_eq!(out, format!("x {k}").as_bytes());
        }
    }

    #[test]
    fn every_keyword_is_found_in_any_case() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            assert_eq!(lookup(k.as_bytes()), Some(i as Kw), "{k}");
            assert_eq!(
                lookup(k.to_ascii_lowercase().as_bytes()),
                Some(i as Kw),
                "{k}"
            );
            assert!(
                k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{k}"
            );
        }
    }

    #[test]
    fn probes_are_short() {
        let mut longest = 0;
        for (i, k) in PADDED.iter().enumerate() {
            let mut slot = slot_of(k);
            let mut probes = 1;
            while TABLE[slot] != i as u16 + 1 {
                slot = (slot + 1) & (TABLE_SIZE - 1);
                probes += 1;
            }
            longest = longest.max(probes);
        }
        assert!(longest <= 4, "{longest}");
    }

    #[test]
    fn lookup_inside_a_longer_input() {
        let s = b"select FROM x";
        assert_eq!(lookup_in(s, 0, 6), Some(id("SELECT")));
        assert_eq!(lookup_in(s, 7, 11), Some(id("FROM")));
        assert_eq!(lookup_in(s, 7, 9), None);
        let s = b"xx current_timestamp";
        assert_eq!(lookup_in(s, 3, s.len()), Some(id("CURRENT_TIMESTAMP")));
        assert_eq!(lookup_in(b"CURRENT_TIMESTAMPS", 0, 18), None);
    }

    #[test]
    fn identifiers_are_not_keywords() {
        for w in [
            "shop_book",
            "id",
            "name",
            "value",
            "count",
            "x",
            "",
            "selectx",
            "SELEC",
            "_",
            "a$b",
            "date",
            "text",
            "data",
            "type",
        ] {
            assert_eq!(lookup(w.as_bytes()), None, "{w}");
        }
        assert_eq!(lookup(b"selec\x7f"), None);
        // Bytes that clearing bit 5 could confuse with letters or `_` are not identifier
        // bytes, except digits, which map below `A`.
        assert_eq!(lookup(b"AS1"), None);
        assert_eq!(lookup(b"in\xe9"), None);
        assert_eq!(lookup("sélect".as_bytes()), None);
    }
}
