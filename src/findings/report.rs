//! The finished report of a scan: the frozen `xscan.report/v1` JSON format (schema in
//! `schemas/report-v1.schema.json`), and the input of every renderer.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{BaselineState, Finding, ResourceRef, Results, Severity, Status};

/// The report format version.
pub const REPORT_SCHEMA_VERSION: &str = "xscan.report/v1";

/// A whole scan report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema_version: String,
    /// sha256 prefix over the snapshot, rule pack and config digests: the same inputs give the
    /// same id.
    pub report_id: String,
    pub tool: ToolInfo,
    pub scan: ScanInfo,
    pub method: MethodInfo,
    pub rules: Vec<RuleInfo>,
    pub summary: Summary,
    /// The comparison with a baseline scan, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// The waivers applied, when a waiver file was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waivers: Option<WaiverReport>,
    pub results: Results,
}

/// The program that produced the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub information_uri: String,
}

/// What was scanned, when and as whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanInfo {
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub regions: Vec<String>,
    pub accounts: Vec<AccountInfo>,
    /// Resources evaluated, by type (the completeness of the population).
    pub resource_counts: BTreeMap<String, usize>,
    /// What could not be collected.
    pub collection_gaps: Vec<crate::model::CollectionGap>,
}

/// One account in scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The identity xscan used there (sts:GetCallerIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
    pub collected: bool,
    /// Its place in the organization (`Root/ML/Consumers`), when the organization was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    /// Its tags in the organization.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// How the results were obtained: enough to reproduce them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodInfo {
    pub rule_pack_source: String,
    pub rule_pack_sha256: String,
    pub rule_files: Vec<RuleFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    pub snapshot_sha256: String,
    pub min_severity: Severity,
}

/// One rule file and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub rule_id: String,
    pub path: String,
    pub sha256: String,
}

/// A rule's documentation, as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource_type: String,
    pub description: String,
    pub rationale: String,
    pub remediation: String,
    pub references: Vec<String>,
    /// `framework:control` tags.
    pub frameworks: Vec<String>,
}

/// Counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub total: usize,
    pub by_status: BTreeMap<Status, usize>,
    /// severity -> status -> count.
    pub by_severity: BTreeMap<Severity, BTreeMap<Status, usize>>,
    /// rule id -> status -> count.
    pub by_rule: BTreeMap<String, BTreeMap<Status, usize>>,
    /// True when part of the scope was not evaluated: a result is `error`, or the collection
    /// has gaps (even one no rule read: the evidence is not whole).
    pub incomplete: bool,
}

impl Summary {
    /// Counts the results (a spilled list was counted as it was written).
    pub fn of(results: &Results) -> Self {
        if let Some(counted) = results.counted() {
            return counted.clone();
        }
        let mut summary = Self::empty();
        results.iter().for_each(|f| summary.add(&f));
        summary
    }

    /// The summary of no result.
    pub(crate) fn empty() -> Self {
        let mut summary = Summary::default();
        for status in [
            Status::Pass,
            Status::Fail,
            Status::Error,
            Status::Skipped,
            Status::Waived,
        ] {
            summary.by_status.insert(status, 0);
        }
        summary
    }

    /// Counts one more result.
    pub(crate) fn add(&mut self, f: &Finding) {
        self.add_parts(f.rule_id(), f.severity(), f.status);
    }

    /// Counts one more result of `rule_id`, of `severity`, with `status`.
    pub(crate) fn add_parts(&mut self, rule_id: &str, severity: Severity, status: Status) {
        self.total += 1;
        *self.by_status.entry(status).or_default() += 1;
        *self
            .by_severity
            .entry(severity)
            .or_default()
            .entry(status)
            .or_default() += 1;
        match self.by_rule.get_mut(rule_id) {
            Some(counts) => *counts.entry(status).or_default() += 1,
            None => {
                self.by_rule
                    .insert(rule_id.to_string(), BTreeMap::from([(status, 1)]));
            }
        }
        self.incomplete = self.count(Status::Error) > 0;
    }

    /// The summary of a report's results; `collection_gaps` says whether the collection had
    /// gaps.
    pub fn of_scan(results: &Results, collection_gaps: bool) -> Self {
        let mut summary = Self::of(results);
        summary.incomplete |= collection_gaps;
        summary
    }

    pub fn count(&self, status: Status) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

impl Report {
    /// The rule documentation by id.
    pub fn rule(&self, id: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// An account's place in the organization, when it was read.
    pub fn ou_path(&self, account: &str) -> Option<&str> {
        self.scan
            .accounts
            .iter()
            .find(|a| a.id == account)
            .and_then(|a| a.ou_path.as_deref())
    }
}

/// A result of the baseline that no longer fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedResult {
    pub rule_id: String,
    pub resource: ResourceRef,
    pub fingerprint: super::Fingerprint,
    pub previous_status: Status,
    /// `None` when the resource or rule is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<Status>,
}

/// The comparison with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    pub baseline_report_id: String,
    pub baseline_finished_at: DateTime<Utc>,
    /// sha256 of the baseline file as read.
    pub baseline_sha256: String,
    pub counts: BTreeMap<BaselineState, usize>,
    /// Baseline failures that no longer fail.
    pub resolved: Vec<ResolvedResult>,
    /// Configuration changes since the baseline snapshot (only when the baseline was a
    /// snapshot or a history run, which keep one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_changes: Vec<ResourceChange>,
}

/// How a resource changed between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

/// One changed field of a modified resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    /// Dotted path of the field (`policy`, `inline_policies.s3-access`).
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    /// For policy documents: a unified diff of the normalized documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_diff: Option<String>,
}

/// A resource that was added, removed or modified between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceChange {
    pub resource_type: crate::model::ResourceType,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub id: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

impl ResourceChange {
    /// Sort and lookup key.
    pub fn key(&self) -> (crate::model::ResourceType, &str, Option<&str>, &str) {
        (
            self.resource_type,
            &self.account,
            self.region.as_deref(),
            &self.id,
        )
    }

    /// `account/region/id` (account/id for global resources).
    pub fn label(&self) -> String {
        match &self.region {
            Some(region) => format!("{}/{region}/{}", self.account, self.id),
            None => format!("{}/{}", self.account, self.id),
        }
    }

    /// Whether this change is about the resource of a finding.
    pub fn is_about(&self, resource: &ResourceRef) -> bool {
        self.resource_type == resource.resource_type
            && self.account == resource.account
            && self.region == resource.region
            && self.id == resource.id
    }

    /// An HTML anchor id, stable for the resource.
    pub fn anchor(&self) -> String {
        let digest = crate::findings::sha256_hex(
            format!("{}\0{}", self.resource_type.as_str(), self.label()).as_bytes(),
        );
        format!("change-{}", &digest[..16])
    }
}

/// The waiver that turned a failure into `waived`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedWaiver {
    /// Position of the waiver in the waiver file (0-based).
    pub index: usize,
    pub ticket: String,
    pub approver: String,
    pub justification: String,
    pub expires: NaiveDate,
}

/// What became of a waiver in this scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverState {
    /// Unexpired and accepting at least one failure.
    Active,
    /// Past its expiry date: no longer applies; what it matched fails again.
    Expired,
    /// Unexpired but matching no failure: the exception is no longer needed.
    Stale,
}

impl WaiverState {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverState::Active => "active",
            WaiverState::Expired => "expired",
            WaiverState::Stale => "stale",
        }
    }
}

/// One waiver of the file and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverOutcome {
    pub index: usize,
    /// Line of the waiver in its file.
    pub line: usize,
    pub rule: String,
    pub resource: String,
    pub justification: String,
    pub approver: String,
    pub ticket: String,
    pub expires: NaiveDate,
    pub state: WaiverState,
    /// Fingerprints of the failing results it matched (waived when active; failing when expired).
    pub matched: Vec<super::Fingerprint>,
}

/// The waiver file applied to a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverReport {
    pub path: String,
    pub sha256: String,
    /// The date expiry was judged on: the day the snapshot was collected.
    pub as_of: NaiveDate,
    pub waivers: Vec<WaiverOutcome>,
}
