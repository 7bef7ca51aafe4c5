//! Splitting a simple Query string into its statements.
//!
//! A simple Query message may carry several statements separated by semicolons; the server
//! runs them in order and answers each with its own CommandComplete. The relay splits the text
//! the same way so that each answer is paired with its own statement. The split is lexical (it
//! walks the tokens of the normalizer's lexer):
//! semicolons inside string literals (all forms), quoted identifiers, dollar-quoted bodies,
//! comments, parentheses (`CREATE RULE … DO ALSO (a; b)`) and the `BEGIN ATOMIC … END` body of
//! a SQL-standard function or procedure do not split (the last with psql's heuristic: inside
//! `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, `BEGIN` and, within it, `CASE` open a block that
//! `END` closes). Pieces that hold nothing but white space and comments are not statements
//! (the server skips them too).

use std::ops::Range;

use super::lexer::{next_token, Tok};

/// The byte ranges of the statements in `sql`, white space trimmed, semicolons excluded.
pub fn statements(sql: &[u8]) -> Statements<'_> {
    Statements { sql, pos: 0 }
}

/// The first statement at or after byte `from`: its range, and where to look for the next one.
pub fn next_statement(sql: &[u8], from: usize) -> Option<(Range<usize>, usize)> {
    // Most queries hold one statement, with no semicolon or only a trailing one: no need to
    // lex them. (A semicolon followed by nothing but white space and semicolons ends the last
    // statement wherever it stands: inside a literal or comment the text would be unterminated.)
    let from = from.min(sql.len());
    let single_end = match memchr::memchr(b';', &sql[from..]) {
        None => Some(sql.len()),
        Some(p)
            if sql[from + p..]
                .iter()
                .all(|&b| b == b';' || b.is_ascii_whitespace()) =>
        {
            Some(from + p)
        }
        Some(_) => None,
    };
    if let Some(end) = single_end {
        let rest = trim(sql, from..end);
        let head = &sql[rest.clone()];
        let comment_first = head.starts_with(b"--") || head.starts_with(b"/*");
        let has_content = !rest.is_empty() && (!comment_first || scan_statement(sql, rest.start).1);
        return has_content.then_some((rest, sql.len()));
    }
    let mut it = Statements { sql, pos: from };
    let range = it.next()?;
    Some((range, it.pos))
}

/// Iterator returned by [`statements`].
pub struct Statements<'a> {
    sql: &'a [u8],
    pos: usize,
}

impl Iterator for Statements<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        while self.pos < self.sql.len() {
            let start = self.pos;
            let (end, has_content) = scan_statement(self.sql, start);
            // Skip the terminating semicolon, if any.
            self.pos = if end < self.sql.len() { end + 1 } else { end };
            if has_content {
                return Some(trim(self.sql, start..end));
            }
        }
        None
    }
}

/// Scan from `start` to the next top-level semicolon (or the end), token by token with the
/// normalizer's lexer. Returns its position and whether anything other than white space and
/// comments was seen.
fn scan_statement(sql: &[u8], start: usize) -> (usize, bool) {
    let mut i = start;
    let mut depth = 0usize;
    let mut content = false;
    let mut routine = Routine::default();
    while i < sql.len() {
        let t = next_token(sql, i);
        match t.kind {
            Tok::Semicolon if depth == 0 && routine.begin_depth == 0 => return (t.start, content),
            kind if kind.is_trivia() => {}
            kind => {
                content = true;
                match kind {
                    Tok::LParen => depth += 1,
                    Tok::RParen => depth = depth.saturating_sub(1),
                    Tok::Word => routine.word(&sql[t.start..t.end], depth),
                    _ => {}
                }
            }
        }
        i = t.end;
    }
    (sql.len(), content)
}

/// Tracks `BEGIN … END` blocks in the body of `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
#[derive(Default)]
struct Routine {
    /// The statement's first words, while they can still make it a routine definition.
    words: u8,
    is_routine: bool,
    begin_depth: usize,
}

impl Routine {
    fn word(&mut self, w: &[u8], paren_depth: usize) {
        let is = |k: &str| w.eq_ignore_ascii_case(k.as_bytes());
        match self.words {
            0 if is("create") => self.words = 1,
            1 if is("or") => self.words = 2,
            2 if is("replace") => self.words = 3,
            1 | 3 if is("function") || is("procedure") => {
                self.is_routine = true;
                self.words = 4;
            }
            4 => {}
            _ => self.words = 4, // not a routine definition
        }
        if !self.is_routine || paren_depth > 0 {
            return;
        }
        // CASE also ends with END: it only matters inside a BEGIN.
        if is("begin") || (is("case") && self.begin_depth > 0) {
            self.begin_depth += 1;
        } else if is("end") && self.begin_depth > 0 {
            self.begin_depth -= 1;
        }
    }
}

fn trim(sql: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && sql[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && sql[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<&str> {
        statements(sql.as_bytes()).map(|r| &sql[r]).collect()
    }

    #[test]
    fn one_statement() {
        assert_eq!(split("SELECT 1"), ["SELECT 1"]);
        assert_eq!(split("  SELECT 1 ;  "), ["SELECT 1"]);
    }

    #[test]
    fn several_statements() {
        assert_eq!(
            split("BEGIN; SELECT 1;COMMIT"),
            ["BEGIN", "SELECT 1", "COMMIT"]
        );
        assert_eq!(split("SELECT 1;; ;SELECT 2;"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn semicolons_that_do_not_split() {
        assert_eq!(
            split("SELECT 'a;b', \"c;d\", E'\\';' ; SELECT 2"),
            ["SELECT 'a;b', \"c;d\", E'\\';'", "SELECT 2"]
        );
        assert_eq!(
            split("SELECT 'it''s;'; SELECT $$x;y$$; SELECT $f$ $$; $f$"),
            ["SELECT 'it''s;'", "SELECT $$x;y$$", "SELECT $f$ $$; $f$"]
        );
        assert_eq!(
            split("SELECT 1 -- a;b\n; /* c; /* d; */ e; */ SELECT 2"),
            ["SELECT 1 -- a;b", "/* c; /* d; */ e; */ SELECT 2"]
        );
        assert_eq!(
            split("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2); SELECT 3"),
            [
                "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2)",
                "SELECT 3"
            ]
        );
    }

    #[test]
    fn sql_standard_function_bodies_do_not_split() {
        assert_eq!(
            split("CREATE FUNCTION two() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT two()"),
            [
                "CREATE FUNCTION two() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
                "SELECT two()"
            ]
        );
        assert_eq!(
            split("create or replace procedure p() begin atomic insert into t values (1); end; call p()"),
            [
                "create or replace procedure p() begin atomic insert into t values (1); end",
                "call p()"
            ]
        );
        // A transaction's BEGIN and a CASE … END elsewhere are ordinary.
        assert_eq!(
            split("BEGIN; SELECT CASE WHEN a THEN 1 END FROM t; COMMIT"),
            ["BEGIN", "SELECT CASE WHEN a THEN 1 END FROM t", "COMMIT"]
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        assert_eq!(split("SELECT $1; SELECT $2"), ["SELECT $1", "SELECT $2"]);
        // A backslash outside E'' strings is an ordinary character.
        assert_eq!(
            split("SELECT 'a\\'; SELECT 2"),
            ["SELECT 'a\\'", "SELECT 2"]
        );
    }

    #[test]
    fn next_statement_walks_the_text() {
        let sql = b"  SELECT 1 ";
        assert_eq!(next_statement(sql, 0), Some((2..10, sql.len())));
        assert_eq!(next_statement(sql, sql.len()), None);
        let sql = b"SELECT 1; SELECT 2";
        let (first, next) = next_statement(sql, 0).unwrap();
        assert_eq!(&sql[first], b"SELECT 1");
        let (second, end) = next_statement(sql, next).unwrap();
        assert_eq!(&sql[second], b"SELECT 2");
        assert_eq!(next_statement(sql, end), None);
        assert_eq!(next_statement(b"-- only a comment", 0), None);
        // A trailing semicolon (pgbench's) takes the fast path; one inside a literal does not.
        let sql = b"SELECT a FROM t WHERE id = 5; \n";
        assert_eq!(next_statement(sql, 0), Some((0..28, sql.len())));
        let sql = b"SELECT 'a;' ;";
        assert_eq!(next_statement(sql, 0).map(|(r, _)| r), Some(0..11));
        assert_eq!(next_statement(b" ; ; ", 0), None);
    }

    #[test]
    fn comments_alone_are_not_statements() {
        assert_eq!(split("-- nothing\n; /* x */"), Vec::<&str>::new());
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in [
            "SELECT 'abc",
            "SELECT \"x",
            "/* open",
            "SELECT $a$ x",
            "E'\\",
            "$",
        ] {
            let _ = split(s);
        }
    }
}
