//! The YAML rule format. One rule per file; unknown fields are rejected. The `check` is a tree
//! of conditions a security auditor can read:
//!
//! - `all: [..]`, `any: [..]`, `not: ..` combine conditions;
//! - `field: {path, equals | not_equals | one_of | not_one_of | matches | present | empty | contains}`
//!   tests a field of the resource (values may be `${perimeter.*}` / `${resource.*}` parameters);
//! - `each: {path, quantifier, check}` tests the elements of a list field (e.g. SG egress rules);
//! - `related: {relation, quantifier, non_empty, check}` follows a relation to other resources,
//!   possibly in another account (notebook -> subnet -> route table -> gateway endpoints);
//! - `analysis: {name, policy, ...}` calls a named IAM policy analysis of `crate::policy`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::findings::Severity;
use crate::model::{AccountRole, ResourceType};

/// A rule as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (`XS-SM-001`), never reused.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource_type: ResourceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<AppliesTo>,
    /// What the rule checks.
    pub description: String,
    /// Why it matters.
    pub rationale: String,
    /// How to fix a failure.
    pub remediation: String,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub frameworks: Frameworks,
    #[serde(with = "serde_norway::with::singleton_map_recursive")]
    pub check: Condition,
    /// Rules of the organization (`resource_type: account`) that, where they hold in a failing
    /// resource's account, keep the failure from being exploited or repeated: the finding says
    /// so in its message and evidence, and stays a finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigated_by: Vec<Mitigation>,
    /// Test cases: patches to the compliant fixture estate and the expected verdicts.
    #[serde(default)]
    pub tests: Vec<RuleTest>,
}

/// A rule whose pass in the same account mitigates a failure, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mitigation {
    pub rule: String,
    pub because: String,
}

/// Mappings to control frameworks, where they exist.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frameworks {
    /// AWS Config managed rule identifiers.
    #[serde(default)]
    pub aws_config: Vec<String>,
    /// AWS Security Hub control ids.
    #[serde(default)]
    pub security_hub: Vec<String>,
    /// CIS AWS Foundations Benchmark recommendations.
    #[serde(default)]
    pub cis: Vec<String>,
    /// NIST SP 800-53 rev. 5 controls.
    #[serde(default)]
    pub nist_800_53: Vec<String>,
}

impl Frameworks {
    /// `framework:control` tags.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        for (prefix, list) in [
            ("aws-config", &self.aws_config),
            ("security-hub", &self.security_hub),
            ("cis", &self.cis),
            ("nist-800-53", &self.nist_800_53),
        ] {
            tags.extend(list.iter().map(|c| format!("{prefix}:{c}")));
        }
        tags
    }
}

/// Which resources of the type the rule applies to; the others are `skipped`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// Only resources in accounts with these roles.
    #[serde(default)]
    pub account_roles: Vec<AccountRole>,
    /// Only resources for which this condition holds.
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub when: Option<Condition>,
}

/// A condition of the rule language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field(Box<FieldTest>),
    Each(EachTest),
    Related(RelatedTest),
    Analysis(Box<AnalysisCall>),
    /// A perimeter path of a notebook (`xscan paths`): holds when the intended access is
    /// allowed, or when no egress path of the kind is open.
    Path(PathTest),
    /// A leaf replaced by a constant outcome: made only by the mutation tester
    /// (`xscan rules test --mutants`), never read from a rule file.
    #[serde(skip)]
    Forced(bool),
}

impl Condition {
    /// Whether a perimeter path test (`path:`) stands anywhere in this condition: only then
    /// does a scan need the paths, which cost memory in a large estate.
    pub fn tests_paths(&self) -> bool {
        match self {
            Condition::All(all) | Condition::Any(all) => all.iter().any(Condition::tests_paths),
            Condition::Not(inner) => inner.tests_paths(),
            Condition::Each(each) => each.check.tests_paths(),
            Condition::Related(related) => related.check.as_ref().is_some_and(|c| c.tests_paths()),
            Condition::Path(_) => true,
            Condition::Field(_) | Condition::Analysis(_) | Condition::Forced(_) => false,
        }
    }
}

/// A test of one field. Exactly one operator is given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTest {
    /// Dotted path from the resource (`public_access_block.block_public_acls`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_one_of: Option<Value>,
    /// Glob with `*` and `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// True: the field is set (not null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// True: null, "", [] or {}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
    /// The list field contains this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
}

impl FieldTest {
    /// How many operators are set (validation wants exactly one).
    pub fn operator_count(&self) -> usize {
        [
            self.equals.is_some(),
            self.not_equals.is_some(),
            self.one_of.is_some(),
            self.not_one_of.is_some(),
            self.matches.is_some(),
            self.present.is_some(),
            self.empty.is_some(),
            self.contains.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

/// How many of a set must satisfy a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    #[default]
    All,
    Any,
    None,
}

/// Which perimeter path a `path` check judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathQuestion {
    /// The notebook reads the dataset through every configured access point.
    Intended,
    /// No direct internet access.
    DirectInternet,
    /// No way out of the VPC around the endpoint (egress beyond S3 and a default route).
    AroundEndpoint,
    /// No request to another account's S3 allowed through the endpoint.
    ThroughEndpoint,
    /// Every perimeter property is held by at least two layers (defence in depth).
    Layers,
}

/// A `path` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathTest {
    pub question: PathQuestion,
}

/// A check over the elements of a list field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EachTest {
    pub path: String,
    #[serde(default)]
    pub quantifier: Quantifier,
    pub check: Box<Condition>,
}

/// A check over related resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedTest {
    pub relation: Relation,
    #[serde(default)]
    pub quantifier: Quantifier,
    /// Fail when there is no related resource (for `all` and `none`, which hold vacuously).
    #[serde(default)]
    pub non_empty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<Condition>>,
}

/// Relations between resources, resolved across accounts where they point there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Notebook -> its subnet.
    Subnet,
    /// Notebook -> its security groups.
    SecurityGroups,
    /// Notebook -> the route table in effect for its subnet (explicit association, else main).
    RouteTable,
    /// Notebook -> its VPC.
    Vpc,
    /// Notebook -> its execution role.
    ExecutionRole,
    /// Notebook -> gateway endpoints attached to its subnet's route table.
    GatewayEndpoints,
    /// Security group, subnet, route table, VPC endpoint (same VPC), role -> notebooks using it.
    Notebooks,
    /// Access point -> its bucket (in the bucket's account).
    Bucket,
    /// Bucket -> its access points.
    AccessPoints,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Subnet => "subnet",
            Relation::SecurityGroups => "security_groups",
            Relation::RouteTable => "route_table",
            Relation::Vpc => "vpc",
            Relation::ExecutionRole => "execution_role",
            Relation::GatewayEndpoints => "gateway_endpoints",
            Relation::Notebooks => "notebooks",
            Relation::Bucket => "bucket",
            Relation::AccessPoints => "access_points",
        }
    }

    /// The target type when the relation starts from `from`; `None` if it does not apply.
    pub fn target(self, from: ResourceType) -> Option<ResourceType> {
        use ResourceType as T;
        match (self, from) {
            (Relation::Subnet, T::SagemakerNotebook) => Some(T::Subnet),
            (Relation::SecurityGroups, T::SagemakerNotebook) => Some(T::SecurityGroup),
            (Relation::RouteTable, T::SagemakerNotebook | T::Subnet) => Some(T::RouteTable),
            (Relation::Vpc, T::SagemakerNotebook) => Some(T::Vpc),
            (Relation::ExecutionRole, T::SagemakerNotebook) => Some(T::IamRole),
            (Relation::GatewayEndpoints, T::SagemakerNotebook) => Some(T::VpcEndpoint),
            (
                Relation::Notebooks,
                T::SecurityGroup | T::Subnet | T::RouteTable | T::VpcEndpoint | T::IamRole,
            ) => Some(T::SagemakerNotebook),
            (Relation::Bucket, T::S3AccessPoint) => Some(T::S3Bucket),
            (Relation::AccessPoints, T::S3Bucket) => Some(T::S3AccessPoint),
            _ => None,
        }
    }
}

/// The named policy analyses rules can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisName {
    /// Not public by S3's definition (args: `kind`: resource | access_point).
    NotPublic,
    /// Grants only `principals` (and, with `require_all`, every one of them).
    GrantsOnlyPrincipals,
    /// Allows only resources owned by `account` (args: `account`, `known_buckets`, `exceptions`).
    RestrictedToAccount,
    /// Is not the default allow-everything policy.
    NotFullAccess,
    /// Bucket policy delegates to `account`'s access points and grants nothing else.
    DelegatesToAccessPoints,
    /// Bucket policy denies requests without TLS (args: `bucket`, `account`).
    DeniesInsecureTransport,
    /// Allows only `actions`.
    ActionsWithin,
    /// Allows only `resources`.
    ResourcesWithin,
    /// Reaches S3 only through `access_points`.
    S3OnlyViaAccessPoints,
    /// No `*`, `service:*` or NotAction allows.
    NoAdminWildcards,
    /// Trust policy admits only `service`.
    TrustsOnlyService,
    /// The SCPs above an account refuse its principals each of `actions` on each of
    /// `resources` with each `context` (on `account` resources; `policy:
    /// service_control_policies`).
    ScpsDeny,
    /// Principals outside the organization are refused `actions` on the objects of each of
    /// the account's `bucket`s, by the bucket policy or the RCPs above the account, even where
    /// a statement grants them (on `account` resources; `policy: resource_control_policies`).
    DeniesOutsidePrincipals,
}

impl AnalysisName {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisName::NotPublic => "not_public",
            AnalysisName::GrantsOnlyPrincipals => "grants_only_principals",
            AnalysisName::RestrictedToAccount => "restricted_to_account",
            AnalysisName::NotFullAccess => "not_full_access",
            AnalysisName::DelegatesToAccessPoints => "delegates_to_access_points",
            AnalysisName::DeniesInsecureTransport => "denies_insecure_transport",
            AnalysisName::ActionsWithin => "actions_within",
            AnalysisName::ResourcesWithin => "resources_within",
            AnalysisName::S3OnlyViaAccessPoints => "s3_only_via_access_points",
            AnalysisName::NoAdminWildcards => "no_admin_wildcards",
            AnalysisName::TrustsOnlyService => "trusts_only_service",
            AnalysisName::ScpsDeny => "scps_deny",
            AnalysisName::DeniesOutsidePrincipals => "denies_outside_principals",
        }
    }

    /// The arguments each analysis requires.
    pub fn required_args(self) -> &'static [&'static str] {
        match self {
            AnalysisName::NotPublic
            | AnalysisName::NotFullAccess
            | AnalysisName::NoAdminWildcards => &[],
            AnalysisName::GrantsOnlyPrincipals => &["principals"],
            AnalysisName::RestrictedToAccount | AnalysisName::DelegatesToAccessPoints => {
                &["account"]
            }
            AnalysisName::DeniesInsecureTransport => &["bucket", "account"],
            AnalysisName::ActionsWithin => &["actions"],
            AnalysisName::ResourcesWithin => &["resources"],
            AnalysisName::S3OnlyViaAccessPoints => &["access_points"],
            AnalysisName::TrustsOnlyService => &["service"],
            AnalysisName::ScpsDeny => &["actions", "resources"],
            AnalysisName::DeniesOutsidePrincipals => &["actions", "bucket"],
        }
    }

    /// The policy field an analysis of the organization reads, on `account` resources (the
    /// others read the field the rule names, on any resource).
    pub fn organization_field(self) -> Option<&'static str> {
        match self {
            AnalysisName::ScpsDeny => Some("service_control_policies"),
            AnalysisName::DeniesOutsidePrincipals => Some("resource_control_policies"),
            _ => None,
        }
    }
}

/// What an analysis concludes when the policy is absent (AWS answered "no policy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenAbsent {
    #[default]
    Fail,
    Pass,
}

/// A call of a named analysis on one policy field (or a list of policy records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisCall {
    pub name: AnalysisName,
    /// Path of the policy record(s) in the resource (`policy`, `trust_policy`, `identity_policies`).
    pub policy: String,
    #[serde(default)]
    pub when_absent: WhenAbsent,
    /// `resource` (default) or `access_point` — how S3 reads "public".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_buckets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principals: Option<Value>,
    #[serde(default)]
    pub require_all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_points: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Value>,
    /// The scanned organization's id (`${organization.id}`), accepted as a perimeter by
    /// `restricted_to_account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Value>,
    /// Context keys of the probe requests: one map, or a list of maps (one request each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

impl AnalysisCall {
    /// Whether an argument was given.
    pub fn has_arg(&self, name: &str) -> bool {
        match name {
            "account" => self.account.is_some(),
            "bucket" => self.bucket.is_some(),
            "principals" => self.principals.is_some(),
            "actions" => self.actions.is_some(),
            "resources" => self.resources.is_some(),
            "access_points" => self.access_points.is_some(),
            "service" => self.service.is_some(),
            _ => false,
        }
    }
}

/// A rule test case: a patched fixture estate and the expected verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    /// JSON Patch (RFC 6902) operations applied to the fixture snapshot.
    #[serde(default)]
    pub patch: Vec<Value>,
    /// `perimeter` values of the fixture configuration replaced for this case (e.g.
    /// `notebook_subnets`), so that branches reading the configuration are tested too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perimeter: Option<serde_json::Map<String, Value>>,
    pub expect: Expectation,
}

/// Expected statuses by resource id; `others` covers every resource not listed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default)]
    pub pass: Vec<String>,
    #[serde(default)]
    pub fail: Vec<String>,
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others: Option<crate::findings::Status>,
}
