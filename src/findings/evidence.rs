//! What a piece of evidence holds. Most evidence is a JSON value read from the snapshot (a
//! field, a policy document). The perimeter paths' evidence is held typed instead, as shared
//! hops: across a fleet most hops of every notebook's paths are the same (the route table,
//! the endpoint, the role, the access point, the organization's policies), and as JSON each
//! hop was an object of its own per notebook and rule, most of a large scan's memory. Both
//! are written as the same JSON; a report read back holds JSON only.

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::paths::{Answer, Hop};

/// The value of one piece of evidence.
#[derive(Debug, Clone)]
pub enum EvidenceValue {
    /// A value read from the snapshot or the parameters; shared where it repeats.
    Json(Arc<Value>),
    /// A notebook's answers to the path questions of one rule, with the hops behind them.
    Paths(Arc<PathsEvidence>),
}

/// One answer of a path rule's evidence: the question, the answer and the hop that decided it
/// (the first that does not let the request through, else the last).
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PathAnswer {
    pub question: Arc<str>,
    pub answer: Answer,
    pub decided_by: Option<Arc<Hop>>,
}

/// A path rule's evidence on one notebook: its answers, and for the intended path the chain
/// of hops the diagram draws. Written as `{"answers": [...], "chain": [...]}`, where a chain
/// hop names its layer, resource and decision, and its detail only at the notebook (which
/// subnet it is in).
#[derive(Debug, PartialEq, Eq)]
pub struct PathsEvidence {
    pub answers: Vec<Arc<PathAnswer>>,
    pub chain: Option<Arc<[Arc<Hop>]>>,
}

impl EvidenceValue {
    /// The value as JSON: borrowed when it is held as JSON, made when it is held typed.
    pub fn to_json(&self) -> Cow<'_, Value> {
        match self {
            EvidenceValue::Json(value) => Cow::Borrowed(value),
            // Cannot fail: every part serializes to JSON (string keys, no maps of other keys).
            EvidenceValue::Paths(_) => Cow::Owned(serde_json::to_value(self).unwrap_or_default()),
        }
    }

    /// The value when it is held as JSON.
    pub fn as_json(&self) -> Option<&Arc<Value>> {
        match self {
            EvidenceValue::Json(value) => Some(value),
            EvidenceValue::Paths(_) => None,
        }
    }
}

impl From<Arc<Value>> for EvidenceValue {
    fn from(value: Arc<Value>) -> Self {
        EvidenceValue::Json(value)
    }
}

impl From<Value> for EvidenceValue {
    fn from(value: Value) -> Self {
        EvidenceValue::Json(Arc::new(value))
    }
}

impl From<PathsEvidence> for EvidenceValue {
    fn from(value: PathsEvidence) -> Self {
        EvidenceValue::Paths(Arc::new(value))
    }
}

/// Equal when written alike: a report read back (JSON) equals the scan that wrote it (typed
/// paths), which is what drift compares.
impl PartialEq for EvidenceValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EvidenceValue::Json(a), EvidenceValue::Json(b)) => a == b,
            (EvidenceValue::Paths(a), EvidenceValue::Paths(b)) => a == b,
            _ => self.to_json() == other.to_json(),
        }
    }
}

impl Serialize for EvidenceValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EvidenceValue::Json(value) => value.serialize(serializer),
            EvidenceValue::Paths(paths) => paths.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EvidenceValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(EvidenceValue::from)
    }
}

/// Compact JSON, as `Value` displays.
impl std::fmt::Display for EvidenceValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvidenceValue::Json(value) => value.fmt(f),
            EvidenceValue::Paths(_) => {
                f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
            }
        }
    }
}

impl Serialize for PathsEvidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("answers", &self.answers)?;
        if let Some(chain) = &self.chain {
            let hops: Vec<ChainHop<'_>> = chain.iter().map(|hop| ChainHop(hop)).collect();
            map.serialize_entry("chain", &hops)?;
        }
        map.end()
    }
}

/// A hop of the intended path's chain as written: its detail only at the notebook.
struct ChainHop<'a>(&'a Hop);

impl Serialize for ChainHop<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hop = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("layer", hop.layer)?;
        map.serialize_entry("resource", &hop.resource)?;
        map.serialize_entry("decision", &hop.decision)?;
        if hop.layer == "notebook" {
            map.serialize_entry("detail", &hop.detail)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::HopDecision;

    fn hop(layer: &'static str, resource: &str, decision: HopDecision, detail: &str) -> Arc<Hop> {
        Arc::new(Hop {
            layer,
            resource: resource.into(),
            decision,
            detail: detail.into(),
        })
    }

    fn intended() -> PathsEvidence {
        let notebook = hop(
            "notebook",
            "nb-1",
            HopDecision::Passes,
            "in subnet subnet-1",
        );
        let refusing = hop(
            "access_point",
            "ap",
            HopDecision::Refuses,
            "no statement allows",
        );
        PathsEvidence {
            answers: vec![Arc::new(PathAnswer {
                question: "s3:GetObject through ap".into(),
                answer: Answer::Refused,
                decided_by: Some(refusing.clone()),
            })],
            chain: Some(vec![notebook, refusing].into()),
        }
    }

    /// The typed evidence is written as the JSON it replaced: a chain hop shows its detail at
    /// the notebook only, a deciding hop always; and a report read back (JSON) is equal to the
    /// scan that wrote it, as drift compares them.
    #[test]
    fn path_evidence_is_written_as_its_json_and_equals_it_read_back() {
        let typed = EvidenceValue::from(intended());
        let expected = serde_json::json!({
            "answers": [{
                "question": "s3:GetObject through ap",
                "answer": "refused",
                "decided_by": {"layer": "access_point", "resource": "ap",
                               "decision": "refuses", "detail": "no statement allows"},
            }],
            "chain": [
                {"layer": "notebook", "resource": "nb-1", "decision": "passes",
                 "detail": "in subnet subnet-1"},
                {"layer": "access_point", "resource": "ap", "decision": "refuses"},
            ],
        });
        assert_eq!(*typed.to_json(), expected);
        assert_eq!(typed.to_string(), expected.to_string());
        let read_back: EvidenceValue =
            serde_json::from_str(&serde_json::to_string(&typed).unwrap()).unwrap();
        assert!(read_back.as_json().is_some());
        assert_eq!(read_back, typed);
        assert_eq!(typed, read_back);

        let mut other = intended();
        other.chain = None;
        let other = EvidenceValue::from(other);
        assert_ne!(other, typed);
        assert_ne!(read_back, other);
        assert_eq!(
            *other.to_json(),
            serde_json::json!({"answers": expected["answers"]})
        );
    }
}
