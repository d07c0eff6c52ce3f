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
