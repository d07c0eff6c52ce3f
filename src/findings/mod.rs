//! Results of evaluation: one [`Finding`] per (rule, resource), built only through
//! [`Finding::new`], which demands a severity, one primary resource, a message and the evidence.
//! Fingerprints are sha256 of rule id + resource identity, stable across runs.

pub mod evidence;
pub mod report;
pub mod results;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::ResourceType;

pub use evidence::{EvidenceValue, PathAnswer, PathsEvidence};
pub use report::{Report, Summary};
pub use results::{Results, ResultsError};

/// The verdict for one (rule, resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not evaluated: the input was missing because collection failed, or a policy could not
    /// be parsed or decided.
    Error,
    /// Not applicable to this resource.
    Skipped,
    /// A failure accepted by an unexpired waiver.
    Waived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Waived => "waived",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (critical, high, medium, low, info)"
            )),
        }
    }
}

/// How a result relates to the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    New,
    Unchanged,
    Changed,
    Resolved,
}

impl BaselineState {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Changed => "changed",
            BaselineState::Resolved => "resolved",
        }
    }

    /// SARIF's `baselineState` vocabulary.
    pub fn sarif(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Changed => "updated",
            BaselineState::Resolved => "absent",
        }
    }
}

/// The resource a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// The resource's id (name for notebooks, buckets, roles and access points).
    pub id: String,
    /// The ARN, or an ARN-like identity for resources without one.
    pub arn: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// One observed value a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Where the value was read (`direct_internet_access`, `subnet -> route_table.routes`).
    pub path: Arc<str>,
    /// Shared: the same policy document is evidence for several rules and results.
    pub value: EvidenceValue,
}

/// The verdict of one rule on one resource.
///
/// Its fingerprint is not held but derived ([`Finding::fingerprint`]): 32 bytes a result is
/// 8 MB in a scan of 22,700 notebooks. It is written with the result all the same, and a result
/// read back whose fingerprint is not its own is refused (see [`FindingAsWritten`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "FindingAsWritten")]
pub struct Finding {
    /// Its rule's id, title and severity: one for all the rule's results.
    pub rule: Arc<RuleHead>,
    pub status: Status,
    /// Shared by all the results on one resource.
    pub resource: Arc<ResourceRef>,
    /// Shared by the results of a rule that say the same.
    pub message: Arc<str>,
    /// Shared by the results of a rule whose evidence is the same values.
    pub evidence: Arc<[Evidence]>,
    /// How the result relates to the baseline, when one was given (`--baseline`).
    pub baseline_state: Option<BaselineState>,
    /// The waiver that accepted this failure (status `waived`).
    pub waiver: Option<Box<report::AppliedWaiver>>,
}

/// What a result says of its rule, shared by all the rule's results (3 fields a result
/// were 33 bytes; this is 8).
#[derive(Debug, PartialEq)]
pub struct RuleHead {
    pub id: Arc<str>,
    pub title: Arc<str>,
    pub severity: Severity,
}

thread_local! {
    /// The rule of the result read last: a report lists its results rule by rule, so the next
    /// result's rule is this one unless the rule changes (see [`Finding`]'s reading).
    static LAST_RULE_READ: std::cell::RefCell<Option<Arc<RuleHead>>> =
        const { std::cell::RefCell::new(None) };
}

/// `head`, or the equal one of the result read before it.
fn rule_read(head: RuleHead) -> Arc<RuleHead> {
    LAST_RULE_READ.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_ref() {
            Some(known) if **known == head => known.clone(),
            _ => last.insert(Arc::new(head)).clone(),
        }
    })
}

/// A result as reports write it: [`Finding`]'s fields, with its fingerprint after the
/// evidence. Reading one back checks that fingerprint.
#[derive(Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "R: Deserialize<'de>, W: Deserialize<'de>")
)]
pub struct FindingAsWritten<R = Arc<ResourceRef>, W = Box<report::AppliedWaiver>> {
    rule_id: Arc<str>,
    title: Arc<str>,
    severity: Severity,
    status: Status,
    resource: R,
    message: Arc<str>,
    evidence: Arc<[Evidence]>,
    /// sha256(rule id + resource identity): stable across runs, distinct per resource.
    fingerprint: Fingerprint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baseline_state: Option<BaselineState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waiver: Option<W>,
}

impl TryFrom<FindingAsWritten> for Finding {
    type Error = String;

    fn try_from(written: FindingAsWritten) -> Result<Self, Self::Error> {
        let FindingAsWritten {
            rule_id,
            title,
            severity,
            status,
            resource,
            message,
            evidence,
            fingerprint: read,
            baseline_state,
            waiver,
        } = written;
        let own = fingerprint(&rule_id, &resource);
        if read != own {
            return Err(format!(
                "the result of {rule_id} on {} has fingerprint {read}, but its rule and resource give {own}: the report was changed after it was written",
                resource.arn
            ));
        }
        Ok(Self {
            rule: rule_read(RuleHead {
                id: rule_id,
                title,
                severity,
            }),
            status,
            resource,
            message,
            evidence,
            baseline_state,
            waiver,
        })
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FindingAsWritten {
            rule_id: self.rule.id.clone(),
            title: self.rule.title.clone(),
            severity: self.rule.severity,
            status: self.status,
            resource: &*self.resource,
            message: self.message.clone(),
            evidence: self.evidence.clone(),
            fingerprint: self.fingerprint(),
            baseline_state: self.baseline_state,
            waiver: self.waiver.as_deref(),
        }
        .serialize(serializer)
    }
}

impl Finding {
    /// A finding of a rule given by its parts (the evaluator shares one [`RuleHead`] between
    /// a rule's results with [`Finding::of_rule`]): every field that reports rely on is
    /// required.
    pub fn new(
        rule_id: impl Into<Arc<str>>,
        title: impl Into<Arc<str>>,
        severity: Severity,
        status: Status,
        resource: impl Into<Arc<ResourceRef>>,
        message: impl Into<Arc<str>>,
        evidence: Vec<Evidence>,
    ) -> Self {
        let rule = RuleHead {
            id: rule_id.into(),
            title: title.into(),
            severity,
        };
        Self::of_rule(Arc::new(rule), status, resource, message, evidence)
    }

    /// A result of the rule `rule` (shared with its other results).
    pub fn of_rule(
        rule: Arc<RuleHead>,
        status: Status,
        resource: impl Into<Arc<ResourceRef>>,
        message: impl Into<Arc<str>>,
        evidence: Vec<Evidence>,
    ) -> Self {
        Self {
            rule,
            status,
            resource: resource.into(),
            message: message.into(),
            evidence: evidence.into(),
            baseline_state: None,
            waiver: None,
        }
    }

    /// Its rule's id.
    pub fn rule_id(&self) -> &str {
        &self.rule.id
    }

    /// Its rule's title.
    pub fn title(&self) -> &str {
        &self.rule.title
    }

    /// Its rule's severity.
    pub fn severity(&self) -> Severity {
        self.rule.severity
    }

    /// sha256(rule id + resource identity): stable across runs, distinct per resource.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.rule.id, &self.resource)
    }
}

/// sha256 over a rule id and a resource's identity (type, account, region, ARN), written as
/// 64 lowercase hex digits. Held as its 32 bytes: a large scan has hundreds of thousands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the bytes.
        hex::encode_to_slice(self.0, &mut text).map_err(|_| std::fmt::Error)?;
        f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(text, &mut bytes) {
            Ok(()) if !text.bytes().any(|b| b.is_ascii_uppercase()) => Ok(Self(bytes)),
            _ => Err(format!(
                "`{text}` is not a fingerprint (64 lowercase hex digits, a sha256)"
            )),
        }
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The fingerprint of `rule_id` on `resource`.
pub fn fingerprint(rule_id: &str, resource: &ResourceRef) -> Fingerprint {
    let mut hasher = Sha256::new();
    for part in [
        rule_id,
        resource.resource_type.as_str(),
        &resource.account,
        resource.region.as_deref().unwrap_or(""),
        &resource.arn,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    Fingerprint(hasher.finalize().into())
}

/// Hex sha256 of bytes (evidence hashes in reports).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(arn: &str) -> ResourceRef {
        ResourceRef {
            resource_type: ResourceType::SecurityGroup,
            id: "sg-1".into(),
            arn: arn.into(),
            account: "111111111111".into(),
            region: Some("us-east-1".into()),
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint("XS001", &resource("arn:a"));
        assert_eq!(a, fingerprint("XS001", &resource("arn:a")));
        assert_ne!(a, fingerprint("XS001", &resource("arn:b")));
        assert_ne!(a, fingerprint("XS002", &resource("arn:a")));
    }

    #[test]
    fn fingerprints_read_back_as_they_are_written() {
        let a = fingerprint("XS001", &resource("arn:a"));
        // The same digest as before it was held as bytes: sha256 of the parts, each ended by 0.
        let parts = [
            "XS001",
            "security_group",
            "111111111111",
            "us-east-1",
            "arn:a",
            "",
        ]
        .join("\x00");
        assert_eq!(a.to_string(), sha256_hex(parts.as_bytes()));
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, format!("\"{}\"", sha256_hex(parts.as_bytes())));
        assert_eq!(serde_json::from_str::<Fingerprint>(&text).unwrap(), a);
        let digits = a.to_string();
        for bad in [
            digits[1..].to_string(),
            format!("{digits}0"),
            format!("g{}", &digits[1..]),
            digits.to_uppercase(),
            String::new(),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad} was accepted");
            let quoted = serde_json::to_string(&bad).unwrap();
            assert!(serde_json::from_str::<Fingerprint>(&quoted).is_err());
        }
    }

    /// A result is written with its fingerprint (derived, not held) in its place, reads back
    /// equal, and is refused when the written fingerprint is not its rule's and resource's.
    #[test]
    fn a_result_is_written_with_its_fingerprint_and_refused_with_another() {
        let finding = Finding::new(
            "XS001",
            "title",
            Severity::High,
            Status::Fail,
            resource("arn:a"),
            "message",
            Vec::new(),
        );
        let written = serde_json::to_value(&finding).unwrap();
        let keys: Vec<&str> = written
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "rule_id",
                "title",
                "severity",
                "status",
                "resource",
                "message",
                "evidence",
                "fingerprint"
            ]
        );
        let own = fingerprint("XS001", &resource("arn:a")).to_string();
        assert_eq!(written["fingerprint"], own.as_str());
        let read: Finding = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(read, finding);
        let mut changed = written.clone();
        changed["fingerprint"] = fingerprint("XS002", &resource("arn:a")).to_string().into();
        let error = serde_json::from_value::<Finding>(changed)
            .unwrap_err()
            .to_string();
        assert!(error.contains("changed after it was written"), "{error}");
        // Results read one after another share their rule when it is the same rule (all
        // three of its fields), and only then.
        let other = Finding::new(
            "XS001",
            "another title",
            Severity::High,
            Status::Pass,
            resource("arn:b"),
            "message",
            Vec::new(),
        );
        let list = serde_json::to_value([&finding, &finding, &other, &finding]).unwrap();
        let read: Vec<Finding> = serde_json::from_value(list).unwrap();
        assert!(Arc::ptr_eq(&read[0].rule, &read[1].rule));
        assert!(!Arc::ptr_eq(&read[1].rule, &read[2].rule));
        assert_eq!(read[2].title(), "another title");
        assert_eq!(read[3].rule, finding.rule);
        // The fingerprint follows the resource: another ARN under the same fingerprint is refused.
        let mut moved = written;
        moved["resource"]["arn"] = "arn:b".into();
        assert!(serde_json::from_value::<Finding>(moved).is_err());
    }
}
