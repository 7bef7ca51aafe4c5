//! sqlcommenter: the `/*key='value',…*/` comment that Django (google-cloud-sqlcommenter,
//! OpenTelemetry) appends to a statement, read into a [`Context`].
//!
//! Keys and values are URL-encoded; a `'` inside a value is written `\'`. Python drivers that use
//! `%s` placeholders double every `%` of the SQL text, so a comment that went through such a
//! driver without being interpolated reads `%%2F` for `%2F`: `%%` decodes to `%` first. Only the
//! keys in [`Context`] are kept; the rest (`db_driver`, `tracestate`, …) are ignored.

use std::fmt;

/// What a sqlcommenter comment said about where a statement came from.
///
/// Strings are allocated only when the statement carried such a comment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The URL route (Django: the URL pattern, e.g. `^books/<int:pk>/$`).
    pub route: Option<String>,
    /// The view (Django: the view function or class name).
    pub controller: Option<String>,
    /// The action inside the controller (Rails, Flask); Django leaves it out.
    pub action: Option<String>,
    /// The framework and its version, e.g. `django:4.2.7`.
    pub framework: Option<String>,
    /// The W3C trace context of the request, e.g. `00-<trace id>-<span id>-01`.
    pub traceparent: Option<String>,
}

impl Context {
    /// No key was found.
    pub fn is_empty(&self) -> bool {
        self.route.is_none()
            && self.controller.is_none()
            && self.action.is_none()
            && self.framework.is_none()
            && self.traceparent.is_none()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Context");
        for (name, value) in [
            ("route", &self.route),
            ("controller", &self.controller),
            ("action", &self.action),
            ("framework", &self.framework),
            ("traceparent", &self.traceparent),
        ] {
            if let Some(v) = value {
                d.field(name, v);
            }
        }
        d.finish()
    }
}

/// Read the body of a block comment (the bytes between `/*` and `*/`) as sqlcommenter
/// key-value pairs. A body that is not in that form gives whatever pairs could be read before
/// the first malformed part (often none).
pub(crate) fn parse(body: &[u8]) -> Context {
    let mut ctx = Context::default();
    let mut i = 0;
    loop {
        // key
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < body.len() && body[i] != b'=' && body[i] != b',' {
            i += 1;
        }
        if i >= body.len() || body[i] != b'=' {
            return ctx;
        }
        let key = trim(&body[key_start..i]);
        i += 1;
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        // 'value' with \' escapes
        if body.get(i) != Some(&b'\'') {
            return ctx;
        }
        i += 1;
        let value_start = i;
        let mut escaped = false;
        while i < body.len() {
            match body[i] {
                b'\\' => {
                    escaped = true;
                    i += 2;
                    continue;
                }
                b'\'' => break,
                _ => i += 1,
            }
        }
        if i >= body.len() {
            return ctx;
        }
        let raw = &body[value_start..i];
        i += 1;
        let decoded_key;
        let key = if key.contains(&b'%') {
            decoded_key = url_decode(key);
            &decoded_key[..]
        } else {
            key
        };
        let slot = match key {
            b"route" => Some(&mut ctx.route),
            b"controller" => Some(&mut ctx.controller),
            b"action" => Some(&mut ctx.action),
            b"framework" => Some(&mut ctx.framework),
            b"traceparent" => Some(&mut ctx.traceparent),
            _ => None,
        };
        if let Some(slot) = slot {
            let unescaped;
            let raw = if escaped {
                unescaped = unescape_meta(raw);
                &unescaped[..]
            } else {
                raw
            };
            let decoded = url_decode(raw);
            *slot = Some(
                String::from_utf8(decoded)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            );
        }
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        match body.get(i) {
            Some(b',') => i += 1,
            _ => return ctx,
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// `\'` → `'` and `\\` → `\`.
fn unescape_meta(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Percent-decoding, with `%%` read as `%` first (the doubling of `%s`-style drivers).
fn url_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        // Skip the doubling: `%%` is one `%`.
        let j = if raw.get(i + 1) == Some(&b'%') {
            i + 1
        } else {
            i
        };
        match (hex(raw.get(j + 1)), hex(raw.get(j + 2))) {
            (Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i = j + 3;
            }
            _ => {
                out.push(b'%');
                i = j + 1;
            }
        }
    }
    out
}

fn hex(c: Option<&u8>) -> Option<u8> {
    let c = *c?;
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_sqlcommenter() {
        let ctx = parse(
            b"controller='book_detail',db_driver='django.db.backends.postgresql',\
              framework='django%3A4.2.7',route='%5Ebooks/%3Cint%3Apk%3E/%24',\
              traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'",
        );
        assert_eq!(ctx.controller.as_deref(), Some("book_detail"));
        assert_eq!(ctx.framework.as_deref(), Some("django:4.2.7"));
        assert_eq!(ctx.route.as_deref(), Some("^books/<int:pk>/$"));
        assert_eq!(
            ctx.traceparent.as_deref(),
            Some("00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01")
        );
        assert_eq!(ctx.action, None);
    }

    #[test]
    fn doubled_percent_and_escaped_quotes() {
        let ctx = parse(b"route='%%5Eapi/%%24',action='it\\'s',framework='django%%%%'");
        assert_eq!(ctx.route.as_deref(), Some("^api/$"));
        assert_eq!(ctx.action.as_deref(), Some("it's"));
        assert_eq!(ctx.framework.as_deref(), Some("django%%"));
    }

    #[test]
    fn not_sqlcommenter() {
        assert!(parse(b" just a comment ").is_empty());
        assert!(parse(b"route=unquoted").is_empty());
        assert!(parse(b"route='open").is_empty());
        assert!(parse(b"").is_empty());
        // Pairs before a malformed part are kept.
        let ctx = parse(b"route='%2Fa' junk");
        assert_eq!(ctx.route.as_deref(), Some("/a"));
    }

    #[test]
    fn bad_escapes_are_kept_verbatim() {
        let ctx = parse(b"route='100%',controller='%zz%4',action='\xff'");
        assert_eq!(ctx.route.as_deref(), Some("100%"));
        assert_eq!(ctx.controller.as_deref(), Some("%zz%4"));
        assert_eq!(ctx.action.as_deref(), Some("\u{fffd}"));
    }
}
