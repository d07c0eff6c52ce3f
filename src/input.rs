//! What every reader of an input file shares: where a needle is (file:line:column of an
//! error), what an account id looks like, one rule for a UTF-8 byte order mark (accepted
//! and dropped, in every format) and one for duplicated JSON object keys (refused, with the
//! position, in every JSON input — serde_json would otherwise keep the last one silently, so a
//! failing resource or a `Deny` could be shadowed by a later key of the same name).

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// 1-based (line, column) of the first occurrence of `needle` in `text`, or (1, 1).
pub fn locate(text: &str, needle: &str) -> (usize, usize) {
    match text.find(needle) {
        Some(offset) => {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        }
        None => (1, 1),
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The text without a leading UTF-8 byte order mark (editors on Windows write one).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A JSON syntax or duplicate-key problem with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Checks that `text` is JSON in which no object repeats a key. Nesting is bounded by
/// serde_json's recursion limit (128), so hostile input cannot overflow the stack.
pub fn check_json(text: &str) -> Result<(), JsonProblem> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let outcome = UniqueKeys
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    outcome.map_err(problem)
}

/// serde_json's error without the ` at line L column C` it appends (the position is kept
/// apart, for the caller's `file:line:column`).
fn problem(e: serde_json::Error) -> JsonProblem {
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    };
    JsonProblem {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// [`check_json`] over a reader (a file read without holding its text). An error reading it is
/// returned as serde_json gives it (`is_io`), for the caller to tell from a problem.
pub fn check_json_reader<R: std::io::Read>(reader: R) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    UniqueKeys
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
}

impl From<serde_json::Error> for JsonProblem {
    fn from(e: serde_json::Error) -> Self {
        problem(e)
    }
}

/// A file's bytes as they are read: their sha256, checked as UTF-8 (as reading the file into a
/// `String` checks them), with a leading byte order mark passed over for the reader (but
/// hashed: the digest is the file's).
pub struct HashedText<R> {
    inner: R,
    hasher: sha2::Sha256,
    /// Bytes of a character cut by the end of the last read.
    pending: Vec<u8>,
    /// Whether the first bytes were read (a byte order mark is looked for there).
    begun: bool,
    /// The first bytes, when they are not a byte order mark, until they are given.
    held: Vec<u8>,
}

impl<R: std::io::Read> HashedText<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: sha2::Digest::new(),
            pending: Vec::new(),
            begun: false,
            held: Vec::new(),
        }
    }

    /// Reads what is left, and gives the hex sha256 of every byte read.
    pub fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        if !self.pending.is_empty() {
            return Err(not_utf8());
        }
        Ok(hex::encode(sha2::Digest::finalize(self.hasher)))
    }
}

fn not_utf8() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "stream did not contain valid UTF-8",
    )
}

impl<R: std::io::Read> HashedText<R> {
    /// Reads from the file, hashing and checking what is read.
    fn read_checked(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        let bytes = &buf[..read];
        sha2::Digest::update(&mut self.hasher, bytes);
        // UTF-8 is checked across reads: a character cut by a read's end is kept until the
        // next completes it.
        let joined;
        let text = if self.pending.is_empty() {
            bytes
        } else {
            joined = [std::mem::take(&mut self.pending).as_slice(), bytes].concat();
            &joined
        };
        if let Err(e) = std::str::from_utf8(text) {
            if e.error_len().is_some() || read == 0 {
                return Err(not_utf8());
            }
            self.pending = text[e.valid_up_to()..].to_vec();
        }
        Ok(read)
    }
}

impl<R: std::io::Read> std::io::Read for HashedText<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.begun {
            // The first three bytes, to pass over a byte order mark however reads cut it.
            self.begun = true;
            let mut head = [0u8; 3];
            let mut got = 0;
            while got < head.len() {
                match self.read_checked(&mut head[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            if &head[..got] != "\u{feff}".as_bytes() {
                self.held = head[..got].to_vec();
            }
        }
        if !self.held.is_empty() {
            let n = buf.len().min(self.held.len());
            buf[..n].copy_from_slice(&self.held[..n]);
            self.held.drain(..n);
            return Ok(n);
        }
        self.read_checked(buf)
    }
}

/// Parses JSON into a value, refusing duplicated keys (see [`check_json`]).
pub fn parse_json(text: &str) -> Result<serde_json::Value, JsonProblem> {
    check_json(text)?;
    serde_json::from_str(text).map_err(problem)
}

/// Walks a JSON document, remembering the keys of each object.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}`: JSON readers disagree on which value counts, so xscan refuses the document"
                )));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives `step` bytes at a time, so that characters and the byte order mark
    /// are cut between reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A file read without holding its text gives what reading it whole gives: the same text
    /// (a byte order mark passed over), the sha256 of all its bytes, and the same refusal of
    /// bytes that are not UTF-8 — however the reads cut it.
    #[test]
    fn hashed_text_reads_as_the_whole_text_does() {
        use std::io::Read;
        let text = "\u{feff}{\"name\": \"caf\u{e9} \u{1f600} \u{feff}\"}";
        for step in [1, 2, 3, 4, 5, 7, 64] {
            let mut read = HashedText::new(Trickle(text.as_bytes(), step));
            let mut out = String::new();
            read.read_to_string(&mut out).unwrap();
            assert_eq!(out, strip_bom(text), "step {step}");
            assert_eq!(
                read.finish().unwrap(),
                crate::findings::sha256_hex(text.as_bytes()),
                "step {step}"
            );
        }
        let mut cut = text.as_bytes().to_vec();
        // A character's last byte missing at the end, then a stray continuation byte inside.
        cut.truncate(cut.len() - 3);
        let mut stray = text.as_bytes().to_vec();
        stray[5] = 0x80;
        for bytes in [cut, stray] {
            for step in [1, 3, 64] {
                let mut read = HashedText::new(Trickle(&bytes, step));
                let error = std::io::copy(&mut read, &mut std::io::sink())
                    .err()
                    .or_else(|| read.finish().err())
                    .expect("refused");
                assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
                assert!(std::str::from_utf8(&bytes).is_err());
            }
        }
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_position() {
        let problem =
            check_json("{\n  \"a\": 1,\n  \"b\": {\"Effect\": \"Deny\", \"Effect\": \"Allow\"}\n}")
                .unwrap_err();
        assert_eq!(problem.line, 3, "{problem}");
        assert!(
            problem.message.contains("duplicate key `Effect`"),
            "{problem}"
        );
        assert!(
            check_json(r#"[{"a": 1}, {"a": 2}]"#).is_ok(),
            "same key in two objects"
        );
        assert!(
            check_json(r#"{"a\u0062": 1, "ab": 2}"#).is_err(),
            "escapes are decoded first"
        );
        assert!(check_json("{} x").is_err(), "trailing text");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(check_json(&deep).is_err());
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        assert_eq!(strip_bom("\u{feff}{}"), "{}");
        assert_eq!(strip_bom("{}"), "{}");
    }
}
