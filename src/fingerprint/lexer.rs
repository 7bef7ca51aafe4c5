//! A PostgreSQL lexer over raw bytes: one token at a time, no allocation, never fails.
//!
//! It follows PostgreSQL's `scan.l` closely enough to find token boundaries in any input: every
//! string form (`'…'` with `''`, `E'…'` with backslash escapes, `B'…'`, `X'…'`, `N'…'`, `U&'…'`,
//! `$tag$…$tag$`), string continuation across a newline, quoted identifiers, nested block
//! comments, numbers (with `_`, exponents, `0x`/`0o`/`0b`), `$n` parameters and multi-character
//! operators with the rule that strips a trailing `+`/`-`. Anything unterminated runs to the end
//! of the input. Each call does work proportional to the token's length (dollar-quote ends are
//! found with `memmem`, which is linear), so lexing a whole statement is linear.

use memchr::{memchr, memchr2, memmem};

thread_local! {
    /// See [`with_backslash_quotes`].
    static BACKSLASH_QUOTES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with plain `'…'` (and `N'…'`) strings lexed the way PostgreSQL reads them when
/// `on`, that is with `standard_conforming_strings = off`: a backslash escapes the next
/// character, so `'it\'s'` is one string. Read the other way, the text after `\'` would come
/// out as words and leak literal values into the normalized text. The setting is a session's
/// (the server reports it in ParameterStatus); the lexing functions take it from here, for the
/// current thread, so that their signatures need not carry it everywhere.
pub fn with_backslash_quotes<T>(on: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BACKSLASH_QUOTES.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(BACKSLASH_QUOTES.with(|c| c.replace(on)));
    f()
}

#[inline]
pub(crate) fn backslash_quotes() -> bool {
    BACKSLASH_QUOTES.with(|c| c.get())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A run of white space.
    Space,
    /// `-- …` to the end of the line.
    LineComment,
    /// `/* … */`, nested, possibly unterminated.
    BlockComment,
    /// An unquoted identifier or keyword.
    Word,
    /// `"…"` or `U&"…"`.
    QuotedIdent,
    /// Any quoted string constant, including `$tag$…$tag$`.
    Str,
    /// A numeric constant.
    Number,
    /// `$n`.
    Param,
    /// An operator (`=`, `<>`, `||`, `->>`, `-`, `*`, …).
    Op,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semicolon,
    Dot,
    /// `::`
    Cast,
    /// `:` alone (array slices, `:=`).
    Colon,
    /// Any other byte (`\`, `{`, a NUL, a lone `$`, …).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

impl Tok {
    /// White space and comments: no meaning, skipped by the normalizer.
    #[inline]
    pub fn is_trivia(self) -> bool {
        matches!(self, Tok::Space | Tok::LineComment | Tok::BlockComment)
    }
}

// Byte classes.
const C_OTHER: u8 = 0;
const C_SPACE: u8 = 1;
const C_IDENT_START: u8 = 2;
const C_DIGIT: u8 = 3;
const C_OP: u8 = 4;
const C_PUNCT: u8 = 5;
const C_QUOTE: u8 = 6;
const C_DQUOTE: u8 = 7;
const C_DOLLAR: u8 = 8;
const C_DOT: u8 = 9;
const C_COLON: u8 = 10;

static CLASS: [u8; 256] = {
    let mut t = [C_OTHER; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            C_IDENT_START
        } else if c.is_ascii_digit() {
            C_DIGIT
        } else {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => C_SPACE,
                b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'@' | b'#'
                | b'%' | b'^' | b'&' | b'|' | b'`' | b'?' => C_OP,
                b'(' | b')' | b'[' | b']' | b',' | b';' => C_PUNCT,
                b'\'' => C_QUOTE,
                b'"' => C_DQUOTE,
                b'$' => C_DOLLAR,
                b'.' => C_DOT,
                b':' => C_COLON,
                _ => C_OTHER,
            }
        };
        b += 1;
    }
    t
};

static IDENT_CONT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    t
};

/// Characters that may continue an unquoted identifier.
#[inline]
pub(crate) fn is_ident_cont(c: u8) -> bool {
    IDENT_CONT[c as usize]
}

#[inline]
fn is_ident_start(c: u8) -> bool {
    CLASS[c as usize] == C_IDENT_START
}

#[inline]
pub(crate) fn is_space(c: u8) -> bool {
    CLASS[c as usize] == C_SPACE
}

/// The token that starts at `i` (`i < s.len()`).
#[inline(always)]
pub(crate) fn next_token(s: &[u8], i: usize) -> Token {
    debug_assert!(i < s.len());
    let c = s[i];
    let (kind, end) = match CLASS[c as usize] {
        C_SPACE => {
            let mut j = i + 1;
            while j < s.len() && is_space(s[j]) {
                j += 1;
            }
            (Tok::Space, j)
        }
        C_IDENT_START => lex_word_or_prefixed(s, i),
        C_DIGIT => (Tok::Number, lex_number(s, i)),
        C_OP => {
            let next = s.get(i + 1).copied();
            if c == b'-' && next == Some(b'-') {
                // As in PostgreSQL's scanner, a carriage return ends the comment too.
                let end = memchr2(b'\n', b'\r', &s[i..]).map_or(s.len(), |p| i + p + 1);
                (Tok::LineComment, end)
            } else if c == b'/' && next == Some(b'*') {
                (Tok::BlockComment, lex_block_comment(s, i))
            } else {
                (Tok::Op, lex_operator(s, i))
            }
        }
        C_PUNCT => {
            let kind = match c {
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b'[' => Tok::LBracket,
                b']' => Tok::RBracket,
                b',' => Tok::Comma,
                _ => Tok::Semicolon,
            };
            (kind, i + 1)
        }
        C_QUOTE => (Tok::Str, lex_quoted_string(s, i, backslash_quotes())),
        C_DQUOTE => (Tok::QuotedIdent, lex_quoted_ident(s, i + 1)),
        C_DOLLAR => lex_dollar(s, i),
        C_DOT => {
            if s.get(i + 1).is_some_and(u8::is_ascii_digit) {
                (Tok::Number, lex_number_slow(s, i))
            } else {
                (Tok::Dot, i + 1)
            }
        }
        C_COLON => {
            if s.get(i + 1) == Some(&b':') {
                (Tok::Cast, i + 2)
            } else {
                (Tok::Colon, i + 1)
            }
        }
        _ => (Tok::Other, i + 1),
    };
    #[cfg(test)]
    work::add(end - i);
    Token {
        kind,
        start: i,
        end,
    }
}

/// Test-only accounting of the bytes lexed, to check that nothing is lexed over and over.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static BYTES: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn add(n: usize) {
        BYTES.with(|b| b.set(b.get() + n + 1));
    }

    /// Bytes lexed by this thread since the last call.
    pub(crate) fn take() -> usize {
        BYTES.with(|b| b.replace(0))
    }
}

/// A word, or a string/quoted identifier with a one-letter prefix (`E'`, `B'`, `X'`, `N'`,
/// `U&'`, `U&"`).
#[inline(always)]
fn lex_word_or_prefixed(s: &[u8], i: usize) -> (Tok, usize) {
    let c = s[i];
    match (c | 0x20, s.get(i + 1).copied()) {
        (b'e', Some(b'\'')) => return (Tok::Str, lex_quoted_string(s, i + 1, true)),
        (b'n', Some(b'\'')) => {
            return (Tok::Str, lex_quoted_string(s, i + 1, backslash_quotes()));
        }
        (b'b' | b'x', Some(b'\'')) => return (Tok::Str, lex_quoted_string(s, i + 1, false)),
        (b'u', Some(b'&')) => match s.get(i + 2) {
            Some(b'\'') => return (Tok::Str, lex_quoted_string(s, i + 2, false)),
            Some(b'"') => return (Tok::QuotedIdent, lex_quoted_ident(s, i + 3)),
            _ => {}
        },
        _ => {}
    }
    let mut j = i + 1;
    while j < s.len() && is_ident_cont(s[j]) {
        j += 1;
    }
    (Tok::Word, j)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 set in each byte of the result where `word` has a zero byte (exact for the lowest such
/// byte, which is all that is used).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(LO) & !word & HI
}

/// The first of `a` or `b` in `hay`. Most quoted names and strings are short, where `memchr`'s
/// setup costs more than the search: the first 32 bytes are searched eight at a time in a
/// register, the rest with `memchr`.
#[inline]
fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    let mut i = 0;
    while i + 8 <= hay.len().min(SHORT) {
        let w = u64::from_le_bytes(hay[i..i + 8].try_into().unwrap_or([0; 8]));
        let hit = zero_bytes(w ^ pa) | zero_bytes(w ^ pb);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if hay.len() <= SHORT {
        return hay[i..]
            .iter()
            .position(|&c| c == a || c == b)
            .map(|p| p + i);
    }
    memchr2(a, b, &hay[i..]).map(|p| p + i)
}

/// The first `needle` in `hay` (see [`find2`]).
#[inline]
fn find1(needle: u8, hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let p = LO * u64::from(needle);
    let mut i = 0;
    while i + 8 <= hay.len().min(SHORT) {
        let w = u64::from_le_bytes(hay[i..i + 8].try_into().unwrap_or([0; 8]));
        let hit = zero_bytes(w ^ p);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if hay.len() <= SHORT {
        return hay[i..].iter().position(|&c| c == needle).map(|p| p + i);
    }
    memchr(needle, &hay[i..]).map(|p| p + i)
}

/// A `'…'` string starting at the quote `q`; with `escapes`, backslash escapes the next byte.
/// Follows PostgreSQL's continuation rule: `'a'` + white space holding a newline + `'b'` is one
/// constant.
pub(crate) fn lex_quoted_string(s: &[u8], q: usize, escapes: bool) -> usize {
    let mut j = q + 1;
    loop {
        // Find the closing quote.
        loop {
            let found = if escapes {
                find2(b'\'', b'\\', &s[j..])
            } else {
                find1(b'\'', &s[j..])
            };
            let Some(p) = found else {
                return s.len();
            };
            let at = j + p;
            if s[at] == b'\\' {
                j = (at + 2).min(s.len());
                continue;
            }
            if s.get(at + 1) == Some(&b'\'') {
                j = at + 2;
                continue;
            }
            j = at + 1;
            break;
        }
        // Continuation: only white space with a newline in it, then another quote.
        let mut k = j;
        let mut newline = false;
        while k < s.len() && is_space(s[k]) {
            newline |= s[k] == b'\n' || s[k] == b'\r';
            k += 1;
        }
        if newline && s.get(k) == Some(&b'\'') {
            j = k + 1;
            continue;
        }
        return j;
    }
}

/// A quoted identifier whose body starts at `j` (after the opening `"`).
fn lex_quoted_ident(s: &[u8], mut j: usize) -> usize {
    loop {
        let Some(p) = find1(b'"', &s[j.min(s.len())..]) else {
            return s.len();
        };
        let at = j + p;
        if s.get(at + 1) == Some(&b'"') {
            j = at + 2;
        } else {
            return at + 1;
        }
    }
}

/// `/* … */` with nesting, as PostgreSQL allows.
fn lex_block_comment(s: &[u8], i: usize) -> usize {
    let mut depth = 1usize;
    let mut j = i + 2;
    while let Some(p) = memchr2(b'*', b'/', &s[j..]) {
        let at = j + p;
        match (s[at], s.get(at + 1)) {
            (b'*', Some(b'/')) => {
                depth -= 1;
                j = at + 2;
                if depth == 0 {
                    return j;
                }
            }
            (b'/', Some(b'*')) => {
                depth += 1;
                j = at + 2;
            }
            _ => j = at + 1,
        }
        if j >= s.len() {
            break;
        }
    }
    s.len()
}

/// An operator run, cut where a comment starts and trimmed of a trailing `+`/`-` unless it
/// holds one of `~ ! @ # % ^ & | \` ?` (scan.l's rule), so `=-5` is `=` then `-5`.
fn lex_operator(s: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() && CLASS[s[j] as usize] == C_OP {
        let c = s[j];
        let next = s.get(j + 1).copied();
        if (c == b'-' && next == Some(b'-')) || (c == b'/' && next == Some(b'*')) {
            break;
        }
        j += 1;
    }
    let op = &s[i..j];
    if op.len() > 1 && matches!(op[op.len() - 1], b'+' | b'-') {
        let special = op.iter().any(|c| {
            matches!(
                c,
                b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|' | b'`' | b'?'
            )
        });
        if !special {
            while j > i + 1 && matches!(s[j - 1], b'+' | b'-') {
                j -= 1;
            }
        }
    }
    j
}

/// Digits with optional `_` separators between them.
#[inline]
fn digits(s: &[u8], mut j: usize, radix_ok: impl Fn(u8) -> bool) -> usize {
    while j < s.len() {
        if radix_ok(s[j]) {
            j += 1;
        } else if s[j] == b'_' && s.get(j + 1).is_some_and(|&c| radix_ok(c)) {
            j += 2;
        } else {
            break;
        }
    }
    j
}

#[inline]
pub(crate) fn lex_number(s: &[u8], i: usize) -> usize {
    // The common case first: plain digits not followed by `.`, `e`, `_` or a radix letter.
    let mut j = i;
    while j < s.len() && s[j].is_ascii_digit() {
        j += 1;
    }
    match s.get(j) {
        Some(b'.' | b'e' | b'E' | b'_' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B') => {
            lex_number_slow(s, i)
        }
        _ if j > i => j,
        _ => lex_number_slow(s, i),
    }
}

fn lex_number_slow(s: &[u8], i: usize) -> usize {
    let dec = |c: u8| c.is_ascii_digit();
    if s[i] == b'0' {
        let start = if s.get(i + 2) == Some(&b'_') {
            i + 3
        } else {
            i + 2
        };
        let first = s.get(start).copied();
        match s.get(i + 1).map(|c| c | 0x20) {
            Some(b'x') if first.is_some_and(|c| c.is_ascii_hexdigit()) => {
                return digits(s, start, |c: u8| c.is_ascii_hexdigit())
            }
            Some(b'o') if first.is_some_and(|c| (b'0'..=b'7').contains(&c)) => {
                return digits(s, start, |c: u8| (b'0'..=b'7').contains(&c))
            }
            Some(b'b') if first.is_some_and(|c| c == b'0' || c == b'1') => {
                return digits(s, start, |c: u8| c == b'0' || c == b'1')
            }
            _ => {}
        }
    }
    let mut j = if s[i] == b'.' { i } else { digits(s, i, dec) };
    // Fraction, but not `1..5` (a range in PL/pgSQL).
    if s.get(j) == Some(&b'.') && s.get(j + 1) != Some(&b'.') {
        j += 1;
        if s.get(j).is_some_and(u8::is_ascii_digit) {
            j = digits(s, j, dec);
        }
    }
    // Exponent.
    if s.get(j).is_some_and(|c| c | 0x20 == b'e') {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if s.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(s, k, dec);
        }
    }
    j
}

/// `$n`, `$tag$…$tag$`, `$$…$$`, or a lone `$`.
fn lex_dollar(s: &[u8], i: usize) -> (Tok, usize) {
    let mut j = i + 1;
    if s.get(j).is_some_and(u8::is_ascii_digit) {
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        return (Tok::Param, j);
    }
    // A tag: an identifier without `$`, possibly empty.
    if j < s.len() && is_ident_start(s[j]) {
        j += 1;
        while j < s.len() && is_ident_cont(s[j]) && s[j] != b'$' {
            j += 1;
        }
    }
    if s.get(j) != Some(&b'$') {
        return (Tok::Other, i + 1);
    }
    let delim = &s[i..=j];
    let body = j + 1;
    let end = memmem::find(&s[body..], delim).map_or(s.len(), |p| body + p + delim.len());
    (Tok::Str, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<(Tok, &str)> {
        let s = sql.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        while i < s.len() {
            let t = next_token(s, i);
            assert!(t.end > i);
            if !t.kind.is_trivia() {
                out.push((t.kind, &sql[t.start..t.end]));
            }
            i = t.end;
        }
        out
    }

    #[test]
    fn find_matches_a_plain_search() {
        let mut hay = Vec::new();
        for len in 0..80 {
            for at in 0..=len {
                hay.clear();
                hay.resize(len, b'a');
                hay.iter_mut().skip(at + 1).for_each(|c| *c = 0xa2);
                if at < len {
                    hay[at] = b'"';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find1(b'"', &hay), want, "{len} {at}");
                assert_eq!(find2(b'\\', b'"', &hay), want, "{len} {at}");
            }
        }
    }

    #[test]
    fn strings() {
        use Tok::*;
        assert_eq!(tokens("'it''s'"), [(Str, "'it''s'")]);
        assert_eq!(tokens(r"E'a\'b' x"), [(Str, r"E'a\'b'"), (Word, "x")]);
        assert_eq!(
            tokens("B'101' X'1F' N'x' U&'d\\0061t'"),
            [
                (Str, "B'101'"),
                (Str, "X'1F'"),
                (Str, "N'x'"),
                (Str, "U&'d\\0061t'")
            ]
        );
        assert_eq!(
            tokens("'a'\n  'b' 'c'"),
            [(Str, "'a'\n  'b'"), (Str, "'c'")]
        );
        assert_eq!(
            tokens("$$a$b$$ $t$ $$ $t$"),
            [(Str, "$$a$b$$"), (Str, "$t$ $$ $t$")]
        );
        assert_eq!(tokens("'open"), [(Str, "'open")]);
        assert_eq!(tokens("ex'1'"), [(Word, "ex"), (Str, "'1'")]);
    }

    #[test]
    fn numbers_params_operators() {
        use Tok::*;
        assert_eq!(
            tokens("1 1.5 .5 1e10 1.5E-3 0x1F 1_000 1..5"),
            [
                (Number, "1"),
                (Number, "1.5"),
                (Number, ".5"),
                (Number, "1e10"),
                (Number, "1.5E-3"),
                (Number, "0x1F"),
                (Number, "1_000"),
                (Number, "1"),
                (Dot, "."),
                (Number, ".5")
            ]
        );
        assert_eq!(tokens("$1 $12"), [(Param, "$1"), (Param, "$12")]);
        assert_eq!(
            tokens("a=-5"),
            [(Word, "a"), (Op, "="), (Op, "-"), (Number, "5")]
        );
        assert_eq!(tokens("a@-5"), [(Word, "a"), (Op, "@-"), (Number, "5")]);
        assert_eq!(tokens("a->>'k'"), [(Word, "a"), (Op, "->>"), (Str, "'k'")]);
        assert_eq!(tokens("a=--c\n1"), [(Word, "a"), (Op, "="), (Number, "1")]);
        assert_eq!(tokens("x::int"), [(Word, "x"), (Cast, "::"), (Word, "int")]);
    }

    #[test]
    fn comments_and_quoted_identifiers() {
        use Tok::*;
        assert_eq!(tokens("/* a /* b */ c */ x"), [(Word, "x")]);
        assert_eq!(
            tokens("\"a\"\"b\".\"c\""),
            [
                (QuotedIdent, "\"a\"\"b\""),
                (Dot, "."),
                (QuotedIdent, "\"c\"")
            ]
        );
        assert_eq!(tokens("U&\"x\" /* open"), [(QuotedIdent, "U&\"x\"")]);
    }
}
