//! A snapshot read packed, for estates of hundreds of thousands of resources:
//! - Maps of resources: a `BTreeMap` filled one key at a time in ascending order (as a
//!   snapshot lists its resources) splits each full leaf in two and never fills the left half
//!   again; a large region's notebooks and security groups held about half their room empty,
//!   values inline. Built from a sorted sequence, the map fills every node.
//! - Values a fleet repeats (a notebook's subnet, role, key, settings; a security group's VPC
//!   and rule targets) are shared: one string for every resource that holds it, while a
//!   snapshot is read ([`sharing`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

thread_local! {
    /// The strings shared so far by the snapshot this thread is reading, if it is reading one.
    static SHARED: RefCell<Option<HashSet<Arc<str>>>> = const { RefCell::new(None) };
}

/// Runs `read` with repeated values shared (see [`shared`]); the strings stay with the values
/// read, the table of them goes when `read` returns.
pub fn sharing<T>(read: impl FnOnce() -> T) -> T {
    let outer = SHARED.with(|s| s.borrow_mut().replace(HashSet::new()));
    let value = read();
    SHARED.with(|s| *s.borrow_mut() = outer);
    value
}

/// A string value, the same `Arc` as an equal one read before it within [`sharing`] (a new
/// one outside). The text is looked up as read, so a value already shared costs no allocation.
pub fn shared<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    struct SharedText;

    impl Visitor<'_> for SharedText {
        type Value = Arc<str>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Arc<str>, E> {
            Ok(SHARED.with(|s| match s.borrow_mut().as_mut() {
                Some(known) => match known.get(text) {
                    Some(value) => value.clone(),
                    None => {
                        let value: Arc<str> = text.into();
                        known.insert(value.clone());
                        value
                    }
                },
                None => text.into(),
            }))
        }
    }

    deserializer.deserialize_str(SharedText)
}

/// [`shared`], for a value that may be `null` or missing (with `#[serde(default)]`).
pub fn shared_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<str>>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Shared(#[serde(deserialize_with = "shared")] Arc<str>);
    Ok(Option::<Shared>::deserialize(deserializer)?.map(|Shared(value)| value))
}

/// Reads a map of resources as its entries, then builds the map from them at once.
/// Repeated keys never get here: every JSON input is checked for them first
/// (`crate::input::check_json`); were one to, the last would win, as with a plain map.
pub fn map<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
        type Value = Vec<(String, V)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    // `FromIterator` sorts the entries (one pass when already sorted) and builds full nodes.
    Ok(deserializer
        .deserialize_map(Entries(PhantomData))?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "map")]
        items: BTreeMap<String, u32>,
    }

    /// The packed map is the map: every entry, in key order, whatever the input's order.
    #[test]
    fn a_packed_map_holds_what_a_plain_map_holds() {
        let text = r#"{"items": {"b": 2, "a": 1, "c": 3}}"#;
        let packed: Holder = serde_json::from_str(text).unwrap();
        let plain: BTreeMap<String, BTreeMap<String, u32>> = serde_json::from_str(text).unwrap();
        assert_eq!(packed.items, plain["items"]);
        assert_eq!(packed.items.keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        let error = serde_json::from_str::<Holder>(r#"{"items": [1]}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("expected a map"), "{error}");
    }

    #[derive(serde::Deserialize)]
    struct Settings {
        #[serde(deserialize_with = "shared")]
        one: Arc<str>,
        #[serde(default, deserialize_with = "shared_option")]
        two: Option<Arc<str>>,
        #[serde(default, deserialize_with = "shared_option")]
        three: Option<Arc<str>>,
    }

    /// Within `sharing`, equal values are one string; outside, each is its own; `null` and a
    /// missing field are `None` either way.
    #[test]
    fn repeated_values_are_one_string_while_a_snapshot_is_read() {
        let text = r#"[{"one": "Disabled", "two": "Disabled", "three": null},
                       {"one": "Disabled", "two": "Enabled"}]"#;
        let read: Vec<Settings> = sharing(|| serde_json::from_str(text)).unwrap();
        let [first, second] = &read[..] else {
            panic!("two settings");
        };
        assert_eq!(&*first.one, "Disabled");
        assert!(Arc::ptr_eq(&first.one, &second.one));
        assert!(Arc::ptr_eq(&first.one, first.two.as_ref().unwrap()));
        assert_eq!(second.two.as_deref(), Some("Enabled"));
        assert_eq!(
            (first.three.as_deref(), second.three.as_deref()),
            (None, None)
        );
        let apart: Vec<Settings> = serde_json::from_str(text).unwrap();
        assert!(!Arc::ptr_eq(&apart[0].one, &apart[1].one));
        assert_eq!(apart[0].one, read[0].one);
        // The table is gone once the snapshot is read.
        assert!(SHARED.with(|s| s.borrow().is_none()));
    }
}
