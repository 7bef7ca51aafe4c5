//! The single pass that turns SQL bytes into normalized text (see the module docs for the
//! rules). It writes into the caller's buffer and allocates nothing per token.
//!
//! Numbering of new parameters follows pg_stat_statements: they start after the highest `$n`
//! the statement already has. That number is only known at the end, so when a literal comes
//! before a higher `$n` (`SELECT 1 AS "a" … WHERE "x" = $1`) the numbers already written are
//! patched in place at the end (their positions are remembered for up to
//! [`PATCHABLE`] of them); beyond that the statement is normalized a second time with the right
//! base. Either way it stays linear.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::keywords::{self, flags, kw, Kw, FLAG_GLUE_PAREN, FLAG_TYPMOD, FLAG_VALUE_LIKE};
use super::lexer::{
    backslash_quotes, is_space, lex_number, lex_quoted_string, next_token, Tok, Token,
};

/// New parameters whose positions are remembered for patching their numbers.
pub(crate) const PATCHABLE: usize = 16;

/// The marker written after the one element or row kept from a folded list.
pub(crate) const FOLD_MARKER: &[u8] = b" /*, ... */";

/// What one pass found besides the text.
pub(crate) struct PassResult {
    /// Highest existing `$n` as written in the output.
    pub max_existing: u32,
    /// The base new parameters were numbered from.
    pub base: u32,
    /// New parameters written (`$base+1 ..= $base+new_count`).
    pub new_count: u32,
    /// Literal constants replaced, including those inside folded lists.
    pub literals: u32,
    pub digest: u64,
    /// Byte range of the statement's trailing block comment, `/*` and `*/` included.
    pub trailing_comment: Option<(usize, usize)>,
}

impl PassResult {
    /// The pass numbered new parameters from a base that a later `$n` overtook.
    pub fn needs_rerun(&self) -> bool {
        self.new_count > 0 && self.max_existing > self.base
    }
}

/// Where a `SET` statement is: its values are literals to PostgreSQL even when written as bare
/// words (`SET application_name = billing`, `SET search_path TO tenant_42, public`, `SET ROLE
/// alice`, `SET TIME ZONE UTC`: PostgreSQL's grammar turns each into a string constant, and a
/// tenant's schema or a role is data), so they become parameters like any literal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SetPart {
    /// Not in a `SET` statement's variable assignment.
    Off,
    /// After `SET`: the variable's name, up to `=` or `TO`.
    Name,
    /// The value list.
    Value,
}

/// The class of the last token written, which decides spacing and the meaning of the next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cls {
    Start,
    Keyword,
    Ident,
    QIdent,
    Value,
    Op,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Dot,
    Cast,
    Colon,
    Other,
}

#[derive(Clone, Copy)]
struct Fold {
    /// Where the kept first element (or row) ends.
    resume_at: usize,
    /// Where the rest ends: the closing bracket of an IN list or ARRAY, or the end of the last
    /// VALUES row.
    close: usize,
    /// What the rest held, found while scanning it, applied when the pass reaches `resume_at`.
    rest: ListScan,
}

/// What a list scan found in the part of a list that is folded away.
#[derive(Clone, Copy, Default)]
struct ListScan {
    /// The element being scanned is written out (the first one, or the first row), so its
    /// literals are left to the main pass.
    shown: bool,
    literals: u32,
    /// `$n` of the rest that are higher than any seen before: later ones are renumbered down.
    shift_add: u32,
    swallow_max: u32,
    seen_max: u32,
}

struct Pass<'a> {
    s: &'a [u8],
    out: &'a mut Vec<u8>,
    prev: Cls,
    /// The keyword of the last token, if it was one.
    prev_kw: Option<Kw>,
    /// The keyword of the token before that, if it was one.
    prev2_kw: Option<Kw>,
    /// The last token was exactly `=`.
    prev_eq: bool,
    /// The keyword before the current (possibly dotted) name.
    name_prev_kw: Option<Kw>,
    /// The statement's first keyword.
    stmt_first: Option<Kw>,
    stmt_started: bool,
    set_part: SetPart,
    depth: u32,
    /// Bit d: the bracket at depth d holds values (an IN list, VALUES row or ARRAY), where a
    /// NULL is a value like any literal.
    value_depths: u64,
    /// The depth of a VALUES keyword whose rows are still being read.
    values_level: Option<u32>,
    /// Depth of an open type modifier, `VARCHAR(…)`, whose numbers are kept.
    typmod_depth: Option<u32>,
    base: Option<u32>,
    new_count: u32,
    max_existing: u32,
    /// Existing parameters swallowed by folded lists, to renumber the later ones.
    shift: u32,
    swallow_max: u32,
    seen_max_raw: u32,
    literals: u32,
    digest: u64,
    fold: Option<Fold>,
    trailing_comment: Option<(usize, usize)>,
    /// Where the first new parameters' `$` were written.
    new_at: [u32; PATCHABLE],
}

/// Normalize `s` into `out` (cleared first). `base` fixes the number new parameters start
/// after; `None` takes the highest `$n` seen before the first literal.
pub(crate) fn run(s: &[u8], base: Option<u32>, out: &mut Vec<u8>) -> PassResult {
    out.clear();
    let mut p = Pass {
        s,
        out,
        prev: Cls::Start,
        prev_kw: None,
        prev2_kw: None,
        prev_eq: false,
        name_prev_kw: None,
        stmt_first: None,
        stmt_started: false,
        set_part: SetPart::Off,
        depth: 0,
        value_depths: 0,
        values_level: None,
        typmod_depth: None,
        base,
        new_count: 0,
        max_existing: 0,
        shift: 0,
        swallow_max: 0,
        seen_max_raw: 0,
        literals: 0,
        digest: 0,
        fold: None,
        trailing_comment: None,
        new_at: [0; PATCHABLE],
    };
    p.run();
    p.patch_numbers();
    while matches!(p.out.last(), Some(b';' | b' ')) {
        p.out.pop();
    }
    PassResult {
        max_existing: p.max_existing,
        base: p.base.unwrap_or(0),
        new_count: p.new_count,
        literals: p.literals,
        digest: p.digest,
        trailing_comment: p.trailing_comment,
    }
}

/// The next token at or after `i` that is not white space or a comment.
#[inline]
pub(crate) fn next_significant(s: &[u8], mut i: usize) -> Option<Token> {
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return None;
        }
        let t = next_token(s, i);
        if !t.kind.is_trivia() {
            return Some(t);
        }
        i = t.end;
    }
}

impl Pass<'_> {
    fn run(&mut self) {
        let s = self.s;
        let mut i = 0;
        while i < s.len() {
            if s[i] == b' ' {
                i += 1;
                continue;
            }
            if let Some(f) = self.fold {
                if i >= f.resume_at {
                    self.end_fold(f);
                    i = f.close;
                    continue;
                }
            }
            let t = next_token(s, i);
            i = t.end;
            match t.kind {
                Tok::Space | Tok::LineComment => {}
                Tok::BlockComment => self.trailing_comment = Some((t.start, t.end)),
                Tok::Semicolon => self.semicolon(),
                _ => {
                    self.trailing_comment = None;
                    i = self.token(t);
                }
            }
        }
        // A VALUES list that ends the statement: its rows end with the input.
        if let Some(f) = self.fold {
            self.end_fold(f);
        }
    }

    /// The pass reached the end of a folded list's first element: account for the rest, write
    /// the marker, and go on after the rest.
    fn end_fold(&mut self, f: Fold) {
        let rest = f.rest;
        if f.close > f.resume_at {
            // The rest is hashed as written, in one go: it is made only of constants.
            self.digest = xxh3_64_with_seed(&self.s[f.resume_at..f.close], self.digest);
        }
        self.literals += rest.literals;
        if rest.shift_add > 0 {
            self.shift += rest.shift_add;
            self.swallow_max = rest.swallow_max;
        }
        self.seen_max_raw = self.seen_max_raw.max(rest.seen_max);
        self.out.extend_from_slice(FOLD_MARKER);
        self.fold = None;
    }

    // ---- writing -------------------------------------------------------------------------

    /// Write the space that goes before a token of class `cur`, if any.
    #[inline]
    fn space(&mut self, cur: Cls) {
        if self.out.is_empty() {
            return;
        }
        if matches!(
            self.prev,
            Cls::Start | Cls::LParen | Cls::LBracket | Cls::Dot | Cls::Cast | Cls::Colon
        ) {
            return;
        }
        let space = match cur {
            Cls::RParen | Cls::RBracket | Cls::Comma | Cls::Semi | Cls::Dot | Cls::Cast => false,
            Cls::Colon => false,
            Cls::LParen => !self.glue_paren(),
            // Subscripts and array types: `a[1]`, `f(x)[1]`, `INTEGER[]`, `ARRAY[`.
            Cls::LBracket => !matches!(
                self.prev,
                Cls::Ident | Cls::QIdent | Cls::RParen | Cls::RBracket | Cls::Keyword
            ),
            _ => true,
        };
        if space {
            self.out.push(b' ');
        }
    }

    /// `(` right after a function name or type: `count(`, `COALESCE(`, `VARCHAR(`; but
    /// `INSERT INTO "t" (`, `CREATE TABLE t (`, `WITH x (` keep their space.
    fn glue_paren(&self) -> bool {
        match self.prev {
            Cls::Ident | Cls::QIdent => match self.name_prev_kw {
                Some(k) if k == kw::ON => self.stmt_first != Some(kw::CREATE),
                Some(k) => !matches!(
                    k,
                    kw::INTO
                        | kw::TABLE
                        | kw::REFERENCES
                        | kw::EXISTS
                        | kw::WITH
                        | kw::RECURSIVE
                        | kw::VIEW
                        | kw::INDEX
                        | kw::USING
                        | kw::ONLY
                        | kw::AS
                ),
                None => true,
            },
            Cls::Keyword => self
                .prev_kw
                .is_some_and(|k| flags(k) & FLAG_GLUE_PAREN != 0),
            _ => false,
        }
    }

    /// Record that a token of class `cls` (keyword `k`) was written.
    #[inline]
    fn wrote(&mut self, cls: Cls, k: Option<Kw>) {
        self.prev2_kw = self.prev_kw;
        self.prev_kw = k;
        self.prev = cls;
        self.prev_eq = false;
        if !self.stmt_started {
            self.stmt_started = true;
            self.stmt_first = k;
        }
    }

    #[inline]
    fn put(&mut self, cls: Cls, bytes: &[u8]) {
        self.space(cls);
        self.out.extend_from_slice(bytes);
        self.wrote(cls, None);
    }

    fn hash(&mut self, bytes: &[u8]) {
        self.digest = xxh3_64_with_seed(bytes, self.digest);
    }

    /// Write `$n` for a new parameter replacing a literal.
    fn new_param(&mut self) {
        let base = *self.base.get_or_insert(self.max_existing);
        self.new_count += 1;
        self.literals += 1;
        self.space(Cls::Value);
        if let Some(at) = self.new_at.get_mut(self.new_count as usize - 1) {
            *at = self.out.len() as u32;
        }
        self.out.push(b'$');
        push_u32(self.out, base.saturating_add(self.new_count));
        self.wrote(Cls::Value, None);
    }

    /// A `$n` higher than the base came after new parameters were numbered: renumber them
    /// from the highest `$n`, in place, if their positions are all known (and the text fits
    /// the positions' width).
    fn patch_numbers(&mut self) {
        let Some(old_base) = self.base else {
            return;
        };
        let n = self.new_count as usize;
        if n == 0
            || self.max_existing <= old_base
            || n > PATCHABLE
            || self.out.len() > u32::MAX as usize
        {
            return;
        }
        let new_base = self.max_existing;
        let number = |base: u32, i: usize| base.saturating_add(i as u32 + 1);
        let grow: usize = (0..n)
            .map(|i| decimal_len(number(new_base, i)) - decimal_len(number(old_base, i)))
            .sum();
        let old_len = self.out.len();
        self.out.resize(old_len + grow, 0);
        // Move the text after each number right, from the last number back to the first.
        let mut src_end = old_len;
        let mut dst = old_len + grow;
        for i in (0..n).rev() {
            let digits_at = self.new_at[i] as usize + 1;
            let old_end = digits_at + decimal_len(number(old_base, i));
            let tail = src_end - old_end;
            self.out.copy_within(old_end..src_end, dst - tail);
            dst -= tail;
            let new = number(new_base, i);
            let width = decimal_len(new);
            write_u32(&mut self.out[dst - width..dst], new);
            dst -= width;
            src_end = digits_at;
        }
        debug_assert_eq!(dst, src_end);
        self.base = Some(new_base);
    }

    // ---- tokens --------------------------------------------------------------------------

    /// Handle one significant token; returns where lexing goes on.
    fn token(&mut self, t: Token) -> usize {
        let s = self.s;
        let bytes = &s[t.start..t.end];
        match t.kind {
            Tok::Word => self.word(t),
            Tok::QuotedIdent if self.set_value() => {
                self.hash(bytes);
                self.new_param();
            }
            Tok::QuotedIdent => {
                let name_prev = self.name_prev();
                self.space(Cls::QIdent);
                let terminated = bytes.len() >= 2 && bytes[0] == b'"' && bytes.ends_with(b"\"");
                if terminated && self.name_context() {
                    self.out.push(b'"');
                    fold_name(&bytes[1..bytes.len() - 1], self.out, false);
                    self.out.push(b'"');
                } else {
                    push_from(self.out, s, t.start, t.end);
                }
                self.wrote(Cls::QIdent, None);
                self.name_prev_kw = name_prev;
            }
            Tok::Str => {
                self.hash(bytes);
                self.new_param();
                if matches!(bytes[0], b'u' | b'U') {
                    return self.uescape(t.end);
                }
            }
            Tok::Number => {
                if self.typmod_depth == Some(self.depth)
                    && matches!(self.prev, Cls::LParen | Cls::Comma)
                {
                    self.put(Cls::Value, bytes);
                } else {
                    self.hash(bytes);
                    self.new_param();
                }
            }
            Tok::Param => self.param(bytes),
            Tok::Op => {
                if bytes == b"-" && self.unary_context() {
                    if let Some(n) = next_significant(s, t.end).filter(|n| n.kind == Tok::Number) {
                        self.hash(bytes);
                        self.hash(&s[n.start..n.end]);
                        self.new_param();
                        return n.end;
                    }
                }
                self.put(Cls::Op, bytes);
                self.prev_eq = bytes == b"=";
                if self.prev_eq && self.set_part == SetPart::Name && self.depth == 0 {
                    self.set_part = SetPart::Value;
                }
            }
            Tok::LParen => self.open(t, Cls::LParen),
            Tok::LBracket => self.open(t, Cls::LBracket),
            Tok::RParen => self.close(Cls::RParen, b")"),
            Tok::RBracket => self.close(Cls::RBracket, b"]"),
            Tok::Comma => self.put(Cls::Comma, b","),
            Tok::Dot => self.put(Cls::Dot, b"."),
            Tok::Cast => self.put(Cls::Cast, b"::"),
            Tok::Colon => self.put(Cls::Colon, b":"),
            Tok::Other => self.put(Cls::Other, bytes),
            Tok::Space | Tok::LineComment | Tok::BlockComment | Tok::Semicolon => {
                unreachable!("handled by run")
            }
        }
        t.end
    }

    fn name_prev(&self) -> Option<Kw> {
        if self.prev == Cls::Dot {
            self.name_prev_kw
        } else {
            self.prev_kw
        }
    }

    fn word(&mut self, t: Token) {
        let bytes = &self.s[t.start..t.end];
        // After `.` a word is a field or column name, whatever it spells (`t.key`, `s.user`).
        let keyword = if self.prev == Cls::Dot {
            None
        } else {
            keywords::lookup_in(self.s, t.start, t.end)
        };
        if self.set_value() {
            match keyword {
                // `TO DEFAULT`, `TIME ZONE LOCAL`, and `TIME ZONE INTERVAL '…' HOUR TO MINUTE`,
                // whose string is a literal anyway.
                Some(k)
                    if k == kw::DEFAULT || (k == kw::LOCAL && self.prev_kw == Some(kw::ZONE)) => {}
                Some(k) if k == kw::INTERVAL => self.set_part = SetPart::Off,
                _ => {
                    self.hash(bytes);
                    self.new_param();
                    return;
                }
            }
        }
        match keyword {
            Some(k) if (k == kw::TRUE || k == kw::FALSE) && !self.after_is() => {
                self.hash(bytes);
                self.new_param();
            }
            Some(k) if k == kw::NULL && self.null_is_value() => {
                self.hash(bytes);
                self.new_param();
            }
            Some(k) => {
                let first = !self.stmt_started;
                let prev_kw = self.prev_kw;
                self.space(Cls::Keyword);
                keywords::write_keyword(k, self.out);
                self.wrote(Cls::Keyword, Some(k));
                if first && k == kw::SET {
                    self.set_part = SetPart::Name;
                } else if self.set_part == SetPart::Name
                    && self.depth == 0
                    && (k == kw::TO
                        || k == kw::ROLE
                        || k == kw::AUTHORIZATION
                        || (k == kw::ZONE && prev_kw == Some(kw::TIME)))
                {
                    self.set_part = SetPart::Value;
                }
                if k == kw::VALUES {
                    self.values_level = Some(self.depth);
                } else if self.values_level == Some(self.depth) {
                    self.values_level = None;
                }
            }
            None => {
                let name_prev = self.name_prev();
                self.space(Cls::Ident);
                if self.name_context() {
                    fold_name(bytes, self.out, true);
                } else {
                    let start = self.out.len();
                    push_from(self.out, self.s, t.start, t.end);
                    self.out[start..].make_ascii_lowercase();
                }
                self.wrote(Cls::Ident, None);
                self.name_prev_kw = name_prev;
            }
        }
    }

    /// `$n` as written, renumbered only when a folded list before it swallowed parameters.
    fn param(&mut self, bytes: &[u8]) {
        let n = parse_u32(&bytes[1..]);
        let mapped = if n > self.swallow_max {
            n.saturating_sub(self.shift)
        } else {
            n
        };
        self.seen_max_raw = self.seen_max_raw.max(n);
        self.max_existing = self.max_existing.max(mapped);
        self.space(Cls::Value);
        self.out.push(b'$');
        push_u32(self.out, mapped);
        self.wrote(Cls::Value, None);
    }

    /// `U&'…' UESCAPE '!'`: the escape clause belongs to the literal.
    fn uescape(&mut self, end: usize) -> usize {
        let s = self.s;
        if let Some(w) = next_significant(s, end) {
            if w.kind == Tok::Word && s[w.start..w.end].eq_ignore_ascii_case(b"UESCAPE") {
                if let Some(e) = next_significant(s, w.end).filter(|e| e.kind == Tok::Str) {
                    self.hash(&s[e.start..e.end]);
                    return e.end;
                }
            }
        }
        end
    }

    fn open(&mut self, t: Token, cls: Cls) {
        let s = self.s;
        let mut values = false;
        if self.fold.is_none() {
            let mut scan = ListScan {
                shown: true,
                seen_max: self.seen_max_raw,
                ..ListScan::default()
            };
            let found = match (cls, self.prev_kw) {
                (Cls::LParen, Some(k)) if k == kw::IN => {
                    scan_list(s, t.end, Tok::RParen, &mut scan, false)
                }
                (Cls::LParen, Some(k)) if k == kw::VALUES => scan_rows(s, t.start, &mut scan),
                (Cls::LBracket, Some(k)) if k == kw::ARRAY => {
                    scan_list(s, t.end, Tok::RBracket, &mut scan, false)
                }
                _ => None,
            };
            if let Some((resume_at, close)) = found {
                self.fold = Some(Fold {
                    resume_at,
                    close,
                    rest: scan,
                });
                values = true;
            }
        }
        let row = cls == Cls::LParen
            && self.values_level == Some(self.depth)
            && (self.prev_kw == Some(kw::VALUES) || self.prev == Cls::Comma);
        let typmod = cls == Cls::LParen
            && self.prev == Cls::Keyword
            && self.prev_kw.is_some_and(|k| flags(k) & FLAG_TYPMOD != 0);
        self.put(cls, if cls == Cls::LParen { b"(" } else { b"[" });
        self.depth = self.depth.saturating_add(1);
        if (values || row) && self.depth < 64 {
            self.value_depths |= 1 << self.depth;
        }
        if typmod {
            self.typmod_depth = Some(self.depth);
        }
    }

    fn close(&mut self, cls: Cls, bytes: &[u8]) {
        self.put(cls, bytes);
        if self.depth < 64 {
            self.value_depths &= !(1 << self.depth);
        }
        if self.typmod_depth == Some(self.depth) {
            self.typmod_depth = None;
        }
        self.depth = self.depth.saturating_sub(1);
        if self.values_level.is_some_and(|l| l > self.depth) {
            self.values_level = None;
        }
    }

    fn semicolon(&mut self) {
        if !matches!(self.out.last(), None | Some(b';')) {
            self.out.push(b';');
        }
        self.prev = Cls::Semi;
        self.prev_kw = None;
        self.prev2_kw = None;
        self.prev_eq = false;
        self.stmt_first = None;
        self.stmt_started = false;
        self.set_part = SetPart::Off;
        self.depth = 0;
        self.value_depths = 0;
        self.values_level = None;
        self.typmod_depth = None;
    }

    // ---- context -------------------------------------------------------------------------

    /// The token about to be written is one of a `SET` statement's values.
    #[inline]
    fn set_value(&self) -> bool {
        self.set_part == SetPart::Value && self.depth == 0
    }

    /// A `-` here is a sign, not a subtraction.
    fn unary_context(&self) -> bool {
        match self.prev {
            Cls::Start
            | Cls::Semi
            | Cls::Op
            | Cls::LParen
            | Cls::LBracket
            | Cls::Comma
            | Cls::Colon => true,
            Cls::Keyword => self
                .prev_kw
                .is_some_and(|k| flags(k) & FLAG_VALUE_LIKE == 0),
            _ => false,
        }
    }

    /// `IS [NOT] TRUE` keeps its keyword.
    fn after_is(&self) -> bool {
        self.prev_kw == Some(kw::IS)
            || (self.prev_kw == Some(kw::NOT) && self.prev2_kw == Some(kw::IS))
    }

    /// NULL as a value (`SET "x" = NULL`, a VALUES row, an IN list) rather than in
    /// `IS NULL`, `NOT NULL` or `DEFAULT NULL`.
    fn null_is_value(&self) -> bool {
        if self.prev_eq {
            return true;
        }
        matches!(self.prev, Cls::LParen | Cls::LBracket | Cls::Comma)
            && self.depth < 64
            && self.value_depths & (1 << self.depth) != 0
    }

    /// The identifier about to be written names a savepoint, cursor or prepared statement.
    fn name_context(&self) -> bool {
        match self.prev_kw {
            Some(
                kw::SAVEPOINT
                | kw::DECLARE
                | kw::PREPARE
                | kw::EXECUTE
                | kw::DEALLOCATE
                | kw::CLOSE
                | kw::RELEASE,
            ) => true,
            Some(kw::TO) if self.stmt_first == Some(kw::ROLLBACK) => true,
            _ => matches!(self.stmt_first, Some(kw::FETCH | kw::MOVE)),
        }
    }
}

// ---- list folding --------------------------------------------------------------------------

/// One simple element: an optionally signed literal, `$n`, NULL, TRUE, FALSE or DEFAULT, with
/// optional casts. Returns where its last token ends and the significant token after it.
fn scan_elem(s: &[u8], i: usize, scan: &mut ListScan) -> Option<(usize, Option<Token>)> {
    let mut t = next_significant(s, i)?;
    if t.kind == Tok::Op && matches!(&s[t.start..t.end], b"-" | b"+") {
        t = next_significant(s, t.end).filter(|n| n.kind == Tok::Number)?;
    }
    let bytes = &s[t.start..t.end];
    match t.kind {
        Tok::Str | Tok::Number => scan.literal(),
        Tok::Param => scan.param(parse_u32(&bytes[1..])),
        Tok::Word => match keywords::lookup_in(s, t.start, t.end) {
            Some(kw::NULL | kw::TRUE | kw::FALSE) => scan.literal(),
            Some(kw::DEFAULT) => {}
            _ => return None,
        },
        _ => return None,
    }
    let mut end = t.end;
    loop {
        let next = next_significant(s, end);
        match next {
            Some(c) if c.kind == Tok::Cast => end = scan_type(s, c.end)?,
            _ => return Some((end, next)),
        }
    }
}

/// The common element, read without building tokens: an unsigned number, a plain `'…'` string
/// or `$n`, directly followed by `,` or `close`. Returns the separator's position and whether
/// the element is a parameter (with its number).
#[inline]
fn fast_elem(s: &[u8], mut j: usize, close: u8) -> Option<(usize, Option<u32>)> {
    while s.get(j) == Some(&b' ') {
        j += 1;
    }
    let (end, param) = match *s.get(j)? {
        b'0'..=b'9' => (lex_number(s, j), None),
        b'\'' => (lex_quoted_string(s, j, backslash_quotes()), None),
        b'$' if s.get(j + 1).is_some_and(u8::is_ascii_digit) => {
            let mut e = j + 1;
            while e < s.len() && s[e].is_ascii_digit() {
                e += 1;
            }
            (e, Some(parse_u32(&s[j + 1..e])))
        }
        _ => return None,
    };
    matches!(s.get(end), Some(&c) if c == b',' || c == close).then_some((end, param))
}

impl ListScan {
    fn literal(&mut self) {
        if !self.shown {
            self.literals += 1;
        }
    }

    fn param(&mut self, m: u32) {
        if !self.shown && m > self.seen_max {
            self.shift_add += 1;
            self.swallow_max = m;
        }
        self.seen_max = self.seen_max.max(m);
    }
}

/// A type name after `::`: `int`, `"char"`, `pg_catalog.text`, `timestamp with time zone`,
/// `character varying(20)`, `numeric(10, 2)[]`.
fn scan_type(s: &[u8], i: usize) -> Option<usize> {
    let t = next_significant(s, i)?;
    if !matches!(t.kind, Tok::Word | Tok::QuotedIdent) {
        return None;
    }
    let mut end = t.end;
    while let Some(n) = next_significant(s, end) {
        match n.kind {
            Tok::Dot => {
                let part = next_significant(s, n.end)?;
                if !matches!(part.kind, Tok::Word | Tok::QuotedIdent) {
                    return None;
                }
                end = part.end;
            }
            Tok::Word => match keywords::lookup(&s[n.start..n.end]) {
                Some(
                    kw::WITH | kw::WITHOUT | kw::TIME | kw::ZONE | kw::VARYING | kw::PRECISION,
                ) => end = n.end,
                _ => break,
            },
            Tok::LParen => {
                let mut j = n.end;
                loop {
                    let m = next_significant(s, j)?;
                    match m.kind {
                        Tok::Number | Tok::Comma => j = m.end,
                        Tok::RParen => {
                            end = m.end;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            Tok::LBracket => {
                let mut m = next_significant(s, n.end)?;
                if m.kind == Tok::Number {
                    m = next_significant(s, m.end)?;
                }
                if m.kind != Tok::RBracket {
                    return None;
                }
                end = m.end;
            }
            _ => break,
        }
    }
    Some(end)
}

/// `elem (, elem)* close` from `i`, just after the opening bracket. Returns (end of the first
/// element, start of the closing bracket). Elements after the first count as folded away
/// unless `rest_shown`.
fn scan_list(
    s: &[u8],
    i: usize,
    close: Tok,
    scan: &mut ListScan,
    rest_shown: bool,
) -> Option<(usize, usize)> {
    let close_byte = if close == Tok::RParen { b')' } else { b']' };
    let (first_end, mut next) = scan_elem(s, i, scan)?;
    scan.shown = rest_shown;
    loop {
        let t = next?;
        if t.kind == close {
            return Some((first_end, t.start));
        }
        if t.kind != Tok::Comma {
            return None;
        }
        if let Some((sep, param)) = fast_elem(s, t.end, close_byte) {
            match param {
                Some(m) => scan.param(m),
                None => scan.literal(),
            }
            let kind = if s[sep] == b',' { Tok::Comma } else { close };
            next = Some(Token {
                kind,
                start: sep,
                end: sep + 1,
            });
            continue;
        }
        next = scan_elem(s, t.end, scan)?.1;
    }
}

/// VALUES rows `(…) (, (…))*` from the first `(` at `open`. Returns (end of the first row,
/// end of the last row).
fn scan_rows(s: &[u8], open: usize, scan: &mut ListScan) -> Option<(usize, usize)> {
    let (_, close) = scan_list(s, open + 1, Tok::RParen, scan, true)?;
    scan.shown = false;
    let first_end = close + 1;
    let mut end = first_end;
    while let Some(c) = next_significant(s, end).filter(|c| c.kind == Tok::Comma) {
        match next_significant(s, c.end) {
            Some(p) if p.kind == Tok::LParen => {
                let (_, close) = scan_list(s, p.end, Tok::RParen, scan, false)?;
                end = close + 1;
            }
            _ => break,
        }
    }
    Some((first_end, end))
}

// ---- names ---------------------------------------------------------------------------------

/// Write a savepoint, cursor or prepared-statement name with its per-call parts folded to `N`:
/// Django's savepoint `s140355385_x2` → `sN_xN`; otherwise each `_`-separated part that is all
/// digits (`_django_curs_140355385_sync_3`, `_pg3_12`, `sa_savepoint_1`), a hex id of 8 or more
/// characters (pgx `stmtcache_…`), or any hex id of asyncpg (`__asyncpg_stmt_1a__`). An `N`
/// stays `N` (not `n`), so that normalized text normalizes to itself.
fn fold_name(name: &[u8], out: &mut Vec<u8>, lower: bool) {
    if is_django_savepoint(name) {
        out.extend_from_slice(b"sN_xN");
        return;
    }
    let asyncpg = name.starts_with(b"__asyncpg_");
    for (n, seg) in name.split(|&b| b == b'_').enumerate() {
        if n > 0 {
            out.push(b'_');
        }
        let digits = seg.iter().filter(|c| c.is_ascii_digit()).count();
        let all_hex = seg.iter().all(u8::is_ascii_hexdigit);
        let fold = !seg.is_empty()
            && all_hex
            && (digits == seg.len() || asyncpg || (digits > 0 && seg.len() >= 8));
        if fold || seg == b"N" {
            out.push(b'N');
        } else if lower {
            out.extend(seg.iter().map(u8::to_ascii_lowercase));
        } else {
            out.extend_from_slice(seg);
        }
    }
}

/// `s<digits>_x<digits>`, the name Django gives a savepoint.
fn is_django_savepoint(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"s") else {
        return false;
    };
    let Some(sep) = rest.iter().position(|&c| c == b'_') else {
        return false;
    };
    let (thread, counter) = (&rest[..sep], &rest[sep + 1..]);
    let Some(counter) = counter.strip_prefix(b"x") else {
        return false;
    };
    !thread.is_empty()
        && thread.iter().all(u8::is_ascii_digit)
        && !counter.is_empty()
        && counter.iter().all(u8::is_ascii_digit)
}

/// `out.extend_from_slice(&s[start..end])`, with the common short case done as one
/// fixed-size copy and the excess cut off: most names are a few bytes, where a `memcpy` call
/// costs more than the copy.
#[inline(always)]
fn push_from(out: &mut Vec<u8>, s: &[u8], start: usize, end: usize) {
    const CHUNK: usize = 16;
    if end - start <= CHUNK {
        if let Some(chunk) = s
            .get(start..start + CHUNK)
            .and_then(|c| <&[u8; CHUNK]>::try_from(c).ok())
        {
            let len = out.len() + (end - start);
            out.extend_from_slice(chunk);
            out.truncate(len);
            return;
        }
    }
    out.extend_from_slice(&s[start..end]);
}

// ---- numbers -------------------------------------------------------------------------------

/// Decimal digits as a number, saturating at `u32::MAX`.
fn parse_u32(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |n, &d| {
        n.saturating_mul(10)
            .saturating_add(u32::from(d.wrapping_sub(b'0')))
    })
}

fn decimal_len(n: u32) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

/// Write `n` in decimal into `out`, which is exactly its width.
fn write_u32(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn push_u32(out: &mut Vec<u8>, mut n: u32) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_from_copies_exactly_the_range() {
        let s: Vec<u8> = (0..40u8).map(|b| b'a' + b % 26).collect();
        for start in 0..=s.len() {
            for end in start..=s.len() {
                let mut out = b"pre".to_vec();
                push_from(&mut out, &s, start, end);
                assert_eq!(&out[..3], b"pre");
                assert_eq!(&out[3..], &s[start..end], "{start}..{end}");
            }
        }
    }

    #[test]
    fn push_u32_writes_decimal() {
        for n in [0, 1, 9, 10, 11, 99, 100, 12345, u32::MAX] {
            let mut out = b"$".to_vec();
            push_u32(&mut out, n);
            assert_eq!(out, format!("${n}").as_bytes());
        }
    }

    fn folded(name: &str, lower: bool) -> String {
        let mut out = Vec::new();
        fold_name(name.as_bytes(), &mut out, lower);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn generated_names() {
        assert_eq!(folded("s140355385_x2", false), "sN_xN");
        assert_eq!(
            folded("_django_curs_140355385_sync_3", false),
            "_django_curs_N_sync_N"
        );
        assert_eq!(folded("_pg3_12", true), "_pg3_N");
        assert_eq!(folded("__asyncpg_stmt_1a__", false), "__asyncpg_stmt_N__");
        assert_eq!(folded("stmtcache_5f0e1bd4a2c3", true), "stmtcache_N");
        assert_eq!(folded("sa_savepoint_1", true), "sa_savepoint_N");
        assert_eq!(folded("My_Plan", true), "my_plan");
        assert_eq!(folded("plan2", true), "plan2");
        assert_eq!(folded("cafe", false), "cafe");
        assert_eq!(folded("__asyncpg_stmt_ff__", false), "__asyncpg_stmt_N__");
        assert_eq!(folded("_pg3_N", true), "_pg3_N");
        assert_eq!(folded("", false), "");
        assert!(!is_django_savepoint(b"s_x"));
        assert!(!is_django_savepoint(b"s1_y2"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"0"), 0);
        assert_eq!(parse_u32(b"4294967295"), u32::MAX);
        assert_eq!(parse_u32(b"99999999999999"), u32::MAX);
        let mut v = Vec::new();
        push_u32(&mut v, 0);
        push_u32(&mut v, 4_294_967_295);
        assert_eq!(v, b"04294967295");
        for n in [0, 9, 10, 99, 100, 12345, u32::MAX] {
            let mut w = vec![0u8; decimal_len(n)];
            write_u32(&mut w, n);
            assert_eq!(w, n.to_string().as_bytes());
        }
    }
}
