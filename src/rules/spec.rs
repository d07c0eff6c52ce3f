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

    /// The analyses this condition calls, in order, each once.
    pub fn analyses(&self) -> Vec<AnalysisName> {
        let mut out = Vec::new();
        self.walk_analyses(&mut out);
        out
    }

    fn walk_analyses(&self, out: &mut Vec<AnalysisName>) {
        match self {
            Condition::All(all) | Condition::Any(all) => {
                all.iter().for_each(|c| c.walk_analyses(out))
            }
            Condition::Not(inner) => inner.walk_analyses(out),
            Condition::Each(each) => each.check.walk_analyses(out),
            Condition::Related(related) => {
                if let Some(check) = &related.check {
                    check.walk_analyses(out);
                }
            }
            Condition::Analysis(call) if !out.contains(&call.name) => out.push(call.name),
            _ => {}
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

    /// Every analysis, for docs and checks.
    pub const ALL: [AnalysisName; 13] = [
        AnalysisName::NotPublic,
        AnalysisName::GrantsOnlyPrincipals,
        AnalysisName::RestrictedToAccount,
        AnalysisName::NotFullAccess,
        AnalysisName::DelegatesToAccessPoints,
        AnalysisName::DeniesInsecureTransport,
        AnalysisName::ActionsWithin,
        AnalysisName::ResourcesWithin,
        AnalysisName::S3OnlyViaAccessPoints,
        AnalysisName::NoAdminWildcards,
        AnalysisName::TrustsOnlyService,
        AnalysisName::ScpsDeny,
        AnalysisName::DeniesOutsidePrincipals,
    ];

    /// What the analysis answers and the arguments it takes: the registry rule loading checks
    /// a rule's call against, and the documentation shows.
    pub fn spec(self) -> AnalysisSpec {
        let spec = |summary, required, optional| AnalysisSpec {
            summary,
            required,
            optional,
        };
        match self {
            AnalysisName::NotPublic => spec(
                "The policy is not public by S3's definition (`kind: access_point` reads `s3:DataAccessPointArn` as S3 does for access points).",
                &[],
                &["kind"],
            ),
            AnalysisName::GrantsOnlyPrincipals => spec(
                "Every Allow names only the expected principals (with `require_all`, each of them is granted).",
                &["principals"],
                &["require_all"],
            ),
            AnalysisName::RestrictedToAccount => spec(
                "An endpoint policy allows only resources of `account` (or of the scanned `organization`), its known buckets and the exceptions.",
                &["account"],
                &["known_buckets", "exceptions", "organization"],
            ),
            AnalysisName::NotFullAccess => spec(
                "The policy is not the default allow-everything endpoint policy.",
                &[],
                &[],
            ),
            AnalysisName::DelegatesToAccessPoints => spec(
                "A bucket policy grants only through `account`'s access points.",
                &["account"],
                &[],
            ),
            AnalysisName::DeniesInsecureTransport => spec(
                "A bucket policy refuses requests without TLS to `bucket` of `account`.",
                &["bucket", "account"],
                &[],
            ),
            AnalysisName::ActionsWithin => {
                spec("Every Allow grants only `actions`.", &["actions"], &[])
            }
            AnalysisName::ResourcesWithin => {
                spec("Every Allow reaches only `resources`.", &["resources"], &[])
            }
            AnalysisName::S3OnlyViaAccessPoints => spec(
                "A role's policies reach S3 only through `access_points`.",
                &["access_points"],
                &[],
            ),
            AnalysisName::NoAdminWildcards => {
                spec("No Allow of `*`, `service:*` or NotAction.", &[], &[])
            }
            AnalysisName::TrustsOnlyService => spec(
                "A trust policy admits only the `service` principal.",
                &["service"],
                &[],
            ),
            AnalysisName::ScpsDeny => spec(
                "The SCPs above an account refuse its roles each of `actions` on each of `resources` with each `context` (on `account` resources).",
                &["actions", "resources"],
                &["context"],
            ),
            AnalysisName::DeniesOutsidePrincipals => spec(
                "A principal outside the organization is refused `actions` on each `bucket` of the account by its bucket policy or the RCPs, even with a grant added (on `account` resources).",
                &["actions", "bucket"],
                &["context"],
            ),
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

/// What a policy an analysis reads is attached to, where it changes the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAttachment {
    /// A bucket or other resource.
    Resource,
    /// An S3 access point (S3 reads `s3:DataAccessPointArn` differently there).
    AccessPoint,
}

/// An analysis as the registry describes it.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisSpec {
    pub summary: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
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
    pub kind: Option<PolicyAttachment>,
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
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
        self.given_args().contains(&name)
    }

    /// The arguments the call gives (besides `name`, `policy` and `when_absent`).
    pub fn given_args(&self) -> Vec<&'static str> {
        [
            ("kind", self.kind.is_some()),
            ("account", self.account.is_some()),
            ("bucket", self.bucket.is_some()),
            ("known_buckets", self.known_buckets.is_some()),
            ("exceptions", self.exceptions.is_some()),
            ("principals", self.principals.is_some()),
            ("require_all", self.require_all),
            ("actions", self.actions.is_some()),
            ("resources", self.resources.is_some()),
            ("access_points", self.access_points.is_some()),
            ("service", self.service.is_some()),
            ("organization", self.organization.is_some()),
            ("context", self.context.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| name)
        .collect()
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
