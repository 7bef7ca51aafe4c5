//! What the relay reports: one [`Execution`] per statement the server ran (or refused), and the
//! [`ExecutionSink`] trait through which it reports them.
//!
//! An `Execution` is built on the relay's hot path, so it holds no per-statement heap
//! allocation of its own: the SQL text is shared ([`SqlText`]) with the prepared statement or
//! the simple Query it came from, and the command tag and SQLSTATE are stored inline.

use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};

/// The text of one statement: valid UTF-8 in a shared, immutable buffer.
///
/// Cloning or slicing shares the buffer (one atomic increment, no copy). A simple Query may
/// hold several statements; each of its executions points at its own part of the Query's text.
/// The tracker writes a connection's Query texts one after another into one buffer
/// ([`SqlText::append`]), so that a Query costs no allocation of its own.
#[derive(Clone)]
pub struct SqlText(Bytes);

impl SqlText {
    /// A copy of `text` in a buffer of its own.
    pub fn new(text: &str) -> Self {
        SqlText(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A text that lives as long as the program (nothing is allocated).
    pub const fn from_static(text: &'static str) -> Self {
        SqlText(Bytes::from_static(text.as_bytes()))
    }

    /// A copy of `text` written at the end of `arena`, which shares its buffer of `chunk`
    /// bytes with the texts written into it before. A new buffer is allocated only when the
    /// buffer is full and some of its texts are still alive; a full buffer whose texts have all
    /// been dropped is reused. A text larger than `chunk` gets a buffer of its own, so that the
    /// arena never keeps more than `chunk` bytes.
    pub fn append(arena: &mut BytesMut, text: &str, chunk: usize) -> Self {
        if text.len() > chunk {
            return SqlText::new(text);
        }
        if arena.capacity() < text.len() {
            arena.reserve(chunk);
        }
        arena.extend_from_slice(text.as_bytes());
        SqlText(arena.split().freeze())
    }

    /// The part `range` (byte offsets, on char boundaries) of the text.
    pub fn slice(&self, range: Range<usize>) -> Self {
        let s = self.as_str();
        assert!(s.is_char_boundary(range.start) && s.is_char_boundary(range.end));
        SqlText(self.0.slice(range))
    }

    /// The statement's text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor takes the bytes of a `&str`, and `slice` cuts at char
        // boundaries only, so the bytes are valid UTF-8. (Validating again here would scan
        // the text on every use, on the relay and the observer threads.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// Where the text is in memory: its address and length. While a clone is kept, no other
    /// text can have the same place (shared buffers are never written again), so the place
    /// identifies the text without comparing bytes.
    pub fn place(&self) -> (usize, usize) {
        (self.0.as_ptr() as usize, self.0.len())
    }
}

impl fmt::Debug for SqlText {
    // Never print literals in Debug output by accident: this is the raw, un-normalized text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlText({} bytes)", self.0.len())
    }
}

impl PartialEq<&str> for SqlText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A command tag (`SELECT 3`, `INSERT 0 1`, `COPY 10`, …) stored inline, cut to 47 bytes (the
/// longest tag PostgreSQL writes, `CREATE TEXT SEARCH CONFIGURATION`, has 32).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommandTag {
    len: u8,
    bytes: [u8; 47],
}

impl Default for CommandTag {
    fn default() -> Self {
        CommandTag {
            len: 0,
            bytes: [0; 47],
        }
    }
}

impl CommandTag {
    /// A tag from the bytes of a CommandComplete body (without the terminating NUL).
    pub fn from_bytes(raw: &[u8]) -> Self {
        let mut tag = CommandTag::default();
        // Cut at a char boundary so `as_str` never fails. Tags are ASCII: only a foreign
        // byte sends the cut through UTF-8 validation.
        let mut n = raw.len().min(tag.bytes.len());
        if !raw[..n].is_ascii() {
            while n > 0 && std::str::from_utf8(&raw[..n]).is_err() {
                n -= 1;
            }
        }
        tag.bytes[..n].copy_from_slice(&raw[..n]);
        tag.len = n as u8;
        tag
    }

    /// The tag as the server wrote it (empty when there was none, e.g. after an error).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The command word(s) without the counts: `SELECT`, `INSERT`, `CREATE TABLE`.
    pub fn command(&self) -> &str {
        self.as_str()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ')
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Is the tag exactly `tag`?
    pub fn is(&self, tag: &[u8]) -> bool {
        self.as_bytes() == tag
    }

    /// The row count the tag carries (its last number), if it has one.
    pub fn rows(&self) -> Option<u64> {
        // On the bytes: this runs once per statement on the relay thread.
        let s = self.as_bytes();
        let space = memchr::memrchr(b' ', s)?; // a tag of one word has no count
        let digits = &s[space + 1..];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for CommandTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A five-character SQLSTATE code (`42P01`, `57014`, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState(pub [u8; 5]);

impl SqlState {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }

    /// Parse a code; anything not exactly five ASCII characters becomes `XX000`.
    pub fn from_bytes(raw: &[u8]) -> Self {
        match <[u8; 5]>::try_from(raw) {
            Ok(code) if code.is_ascii() => SqlState(code),
            _ => SqlState(*b"XX000"),
        }
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which protocol path a statement came by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A simple Query message (possibly one of several statements in it).
    Simple,
    /// Parse/Bind/Execute.
    Extended,
    /// The function-call message (`F`), used by large-object calls in libpq.
    FunctionCall,
}

/// One statement the server ran, paired with its completion.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The proxy's id for the client connection (unique in this process).
    pub connection_id: u64,
    /// The statement's text as the client sent it (with literals: never log or export it).
    /// For a function call it is `fastpath function call`.
    pub sql: SqlText,
    /// `sql` was sent while the server's `standard_conforming_strings` was off, so its `'…'`
    /// strings take backslash escapes ([`crate::fingerprint::with_backslash_quotes`]).
    pub backslash_quotes: bool,
    pub protocol: Protocol,
    /// For the extended protocol: the prepared statement's name was not empty.
    pub named_statement: bool,
    /// When the client's request was forwarded to the server.
    pub started: Instant,
    /// Wall-clock time of `started`, for reports.
    pub started_at: SystemTime,
    /// From forwarding the request to receiving its completion.
    pub duration: Duration,
    /// Rows returned or affected: the command tag's count where it has one, otherwise the
    /// number of DataRow messages.
    pub rows: u64,
    /// The CommandComplete tag; empty after an error, `SUSPENDED` when a row-limited Execute
    /// stopped with PortalSuspended, `EMPTY` for an empty query string.
    pub tag: CommandTag,
    /// The SQLSTATE when the statement failed.
    pub error: Option<SqlState>,
    /// A 64-bit digest of the Bind parameter values and formats (0 when there were none), so
    /// that two executions with the same parameters can be told apart from different ones
    /// without keeping the values.
    pub params_digest: u64,
}

/// Where a connection's executions go. One sink is created per client connection and is
/// owned by that connection's task, so it needs no lock; it must not block.
pub trait ExecutionSink: Send + 'static {
    /// A statement completed (successfully or not).
    fn record(&mut self, execution: Execution);

    /// The server sent ReadyForQuery with this transaction status (`I`, `T` or `E`).
    fn ready_for_query(&mut self, _status: u8) {}

    /// The client connection ended.
    fn closed(&mut self) {}
}

/// Makes the sink for each new client connection.
pub trait SinkFactory: Send + Sync + 'static {
    fn sink(&self, connection_id: u64) -> Box<dyn ExecutionSink>;
}

/// A sink that drops everything (analysis switched off).
pub struct NullSink;

impl ExecutionSink for NullSink {
    fn record(&mut self, _execution: Execution) {}
}

impl SinkFactory for NullSink {
    fn sink(&self, _connection_id: u64) -> Box<dyn ExecutionSink> {
        Box::new(NullSink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tag_rows_and_command() {
        let t = CommandTag::from_bytes(b"INSERT 0 25");
        assert_eq!(t.rows(), Some(25));
        assert_eq!(t.command(), "INSERT");
        let t = CommandTag::from_bytes(b"CREATE TABLE");
        assert_eq!(t.rows(), None);
        assert_eq!(t.command(), "CREATE TABLE");
        assert_eq!(CommandTag::from_bytes(b"SELECT 3").rows(), Some(3));
        assert_eq!(CommandTag::from_bytes(b"BEGIN").rows(), None);
        assert_eq!(
            CommandTag::from_bytes(b"COPY 18446744073709551615").rows(),
            Some(u64::MAX)
        );
        assert_eq!(
            CommandTag::from_bytes(b"COPY 18446744073709551616").rows(),
            None
        );
        assert_eq!(CommandTag::from_bytes(b"FETCH 1x").rows(), None);
        assert_eq!(CommandTag::from_bytes(b"SELECT ").rows(), None);
        let long = CommandTag::from_bytes(&[b'a'; 100]);
        assert_eq!(long.as_str().len(), 47);
        assert!(CommandTag::from_bytes(b"EMPTY").is(b"EMPTY"));
        assert!(!CommandTag::from_bytes(b"EMPTY 1").is(b"EMPTY"));
        // A multi-byte character is never cut in half.
        let mut raw = vec![b'a'; 46];
        raw.extend_from_slice("é".as_bytes());
        assert_eq!(CommandTag::from_bytes(&raw).as_str(), "a".repeat(46));
    }

    #[test]
    fn sqlstate_parsing() {
        assert_eq!(SqlState::from_bytes(b"42P01").as_str(), "42P01");
        assert_eq!(SqlState::from_bytes(b"42").as_str(), "XX000");
    }

    #[test]
    fn sql_text_slices() {
        let whole = SqlText::new("SELECT 1; SELECT 2");
        let s = whole.slice(10..18);
        assert_eq!(s.as_str(), "SELECT 2");
        assert_eq!(s.place().0, whole.place().0 + 10);
        assert_eq!(format!("{s:?}"), "SqlText(8 bytes)");
        assert_eq!(SqlText::from_static("SELECT 3").as_str(), "SELECT 3");
    }

    #[test]
    #[should_panic]
    fn sql_text_is_never_cut_inside_a_character() {
        SqlText::new("SELECT 'é'").slice(0..9);
    }

    #[test]
    fn appended_texts_share_a_buffer_until_it_is_full() {
        let mut arena = BytesMut::new();
        let a = SqlText::append(&mut arena, "SELECT 1", 64);
        let b = SqlText::append(&mut arena, "SELECT 'é'", 64);
        assert_eq!((a.as_str(), b.as_str()), ("SELECT 1", "SELECT 'é'"));
        // One after the other in one buffer.
        assert_eq!(b.place().0, a.place().0 + a.place().1);
        // A text larger than the chunk gets a buffer of its own; the arena's stays.
        let long = "x".repeat(100);
        let c = SqlText::append(&mut arena, &long, 64);
        assert_eq!(c.as_str(), long);
        let d = SqlText::append(&mut arena, "SELECT 4", 64);
        assert_eq!(d.place().0, b.place().0 + b.place().1);
        // A text larger than the rest of the buffer goes to a new one.
        let e = SqlText::append(&mut arena, &"y".repeat(40), 64);
        assert_ne!(e.place().0, d.place().0 + d.place().1);
        assert_eq!(
            (d.as_str(), e.as_str()),
            ("SELECT 4", "y".repeat(40).as_str())
        );
        // The earlier texts were not touched.
        assert_eq!((a.as_str(), b.as_str()), ("SELECT 1", "SELECT 'é'"));
    }

    #[test]
    fn a_full_buffer_whose_texts_are_gone_is_reused() {
        let mut arena = BytesMut::new();
        let first = SqlText::append(&mut arena, &"a".repeat(40), 64);
        let start = first.place().0;
        let second = SqlText::append(&mut arena, &"b".repeat(20), 64);
        drop((first, second));
        // The buffer is full; with no text left in it, it is taken back instead of replaced.
        let third = SqlText::append(&mut arena, &"c".repeat(30), 64);
        assert_eq!(third.place().0, start);
        assert_eq!(third.as_str(), "c".repeat(30));
        // While a text is alive its buffer is never written again.
        let fourth = SqlText::append(&mut arena, &"d".repeat(40), 64);
        assert_ne!(fourth.place().0, start);
        assert_eq!(third.as_str(), "c".repeat(30));
    }
}
