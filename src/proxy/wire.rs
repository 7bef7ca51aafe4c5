//! Frame headers and the few message bodies the tracker reads.
//!
//! The relay forwards every frame as raw bytes. For the frames it pairs on the hot path (one of
//! each per statement: Query, Bind, Execute, Close, Describe, CommandComplete, ReadyForQuery)
//! it reads fields straight out of the forwarding buffer with the borrowed readers below:
//! decoding them with pgwire's message types would allocate a `String` or `Vec` per field per
//! statement, which is exactly the cost the relay must not add. The rarer, richer messages
//! (Parse, once per prepared statement; ErrorResponse) are decoded with pgwire in the tracker.

use bytes::{BufMut, BytesMut};

/// Largest message PostgreSQL accepts from a client (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1).
pub const MAX_MESSAGE_SIZE: usize = 0x3fff_ffff;
/// Largest startup-phase packet (`MAX_STARTUP_PACKET_LENGTH` in the server).
pub const MAX_STARTUP_PACKET: usize = 10_000;

pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Protocol 3.0 (`3 << 16`); minor versions up to 3.x are accepted (3.2 has longer cancel keys).
pub const PROTOCOL_3_MAJOR: u32 = 3;

/// The 5-byte header of a tagged message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    /// The length word: includes itself (4 bytes) but not the tag.
    pub len: u32,
}

impl Header {
    /// Read a header from the first 5 bytes of `buf`, if there are 5.
    #[inline]
    pub fn peek(buf: &[u8]) -> Option<Header> {
        if buf.len() < 5 {
            return None;
        }
        Some(Header {
            tag: buf[0],
            len: u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]),
        })
    }

    /// The whole frame's size in bytes, tag included.
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.len as usize + 1
    }

    /// The body's size in bytes.
    #[inline]
    pub fn body_len(&self) -> usize {
        (self.len as usize).saturating_sub(4)
    }
}

/// A cursor over a message body that never panics: reading past the end yields `None`.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// A NUL-terminated string, without the NUL.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = memchr::memchr(0, self.buf)?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let b = self.bytes(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        let b = self.bytes(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

/// The fields of a Bind message the tracker needs.
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    /// Parameter format codes, values (with their length words) and result formats: the
    /// bytes the parameter digest is computed over.
    pub params: &'a [u8],
}

pub fn read_bind(body: &[u8]) -> Option<Bind<'_>> {
    let mut r = Reader::new(body);
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    Some(Bind {
        portal,
        statement,
        params: r.rest(),
    })
}

/// Execute: (portal name, max rows; 0 = no limit).
pub fn read_execute(body: &[u8]) -> Option<(&[u8], i32)> {
    let mut r = Reader::new(body);
    let portal = r.cstr()?;
    Some((portal, r.i32()?))
}

/// Close and Describe: (`S` statement or `P` portal, name).
pub fn read_target(body: &[u8]) -> Option<(u8, &[u8])> {
    let mut r = Reader::new(body);
    let kind = r.u8()?;
    Some((kind, r.cstr()?))
}

/// The text of a Query message, or of a CommandComplete tag: a string up to its NUL.
pub fn read_cstr(body: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, body).unwrap_or(body.len());
    &body[..end]
}

/// The SQLSTATE (`C` field) of an ErrorResponse body, read without allocating.
pub fn error_code(body: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(body);
    loop {
        let field = r.u8()?;
        if field == 0 {
            return None;
        }
        let value = r.cstr()?;
        if field == b'C' {
            return Some(value);
        }
    }
}

/// Is `body` a whole Parse (name, query, parameter type count and that many type ids)?
/// pgwire's decoder panics on one cut short, which a client can send (the server answers it
/// with an error and goes on).
pub fn whole_parse(body: &[u8]) -> bool {
    let mut r = Reader::new(body);
    r.cstr().is_some()
        && r.cstr().is_some()
        && r.i16()
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| r.bytes(n * 4).is_some())
}

/// Append an ErrorResponse (severity, SQLSTATE, message) to `out`, as the server writes one.
pub fn put_error(out: &mut BytesMut, severity: &str, code: &str, message: &str) {
    let body_len =
        4 + (1 + severity.len() + 1) * 2 + (1 + code.len() + 1) + (1 + message.len() + 1) + 1;
    out.reserve(1 + body_len);
    out.put_u8(b'E');
    out.put_u32(body_len as u32);
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        out.put_u8(field);
        out.put_slice(value.as_bytes());
        out.put_u8(0);
    }
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_peek() {
        assert_eq!(Header::peek(b"Z\0\0\0"), None);
        let h = Header::peek(b"Z\0\0\0\x05I").unwrap();
        assert_eq!((h.tag, h.len, h.frame_len(), h.body_len()), (b'Z', 5, 6, 1));
    }

    #[test]
    fn readers_never_panic_on_short_bodies() {
        assert!(read_bind(b"portal").is_none());
        assert!(read_execute(b"p\0\0\0").is_none());
        assert!(read_target(b"").is_none());
        assert_eq!(read_cstr(b"abc"), b"abc");
        assert!(error_code(b"Sx").is_none());
    }

    #[test]
    fn bind_fields() {
        let b = read_bind(b"p1\0s1\0\0\0\0\x01\0\0\0\x011\0\0").unwrap();
        assert_eq!((b.portal, b.statement), (&b"p1"[..], &b"s1"[..]));
        assert_eq!(b.params.len(), 11);
    }

    #[test]
    fn error_round_trip() {
        let mut out = BytesMut::new();
        put_error(&mut out, "FATAL", "08P01", "bad");
        let h = Header::peek(&out).unwrap();
        assert_eq!(h.frame_len(), out.len());
        assert_eq!(error_code(&out[5..]), Some(&b"08P01"[..]));
    }
}
