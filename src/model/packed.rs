//! Maps of resources read packed. A `BTreeMap` filled one key at a time in ascending order (as
//! a snapshot lists its resources) splits each full leaf in two and never fills the left half
//! again: a large region's notebooks and security groups held about half their room empty,
//! values inline. Built from a sorted sequence, the map fills every node.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

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
}
