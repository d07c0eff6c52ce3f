//! The resource types of the seed architecture, with the fields the rules read.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::registry::{Place, PolicyField, ResourceKind, ec2_arn};
use crate::policy::{Policy, PolicyError};

/// A policy document as collected: the raw text AWS returned (evidence) and the document as
/// JSON. Parsed once, on first use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRecord {
    /// The text as AWS returned it (possibly URL-encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The document as JSON (decoded). Shared, so that evidence of it holds this one copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Arc<Value>>,
    #[serde(skip)]
    parsed: OnceLock<Result<Arc<Policy>, PolicyError>>,
}

impl PartialEq for PolicyRecord {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.document == other.document
    }
}

impl PolicyRecord {
    /// A record from the text AWS returned; `document` is filled when it parses.
    pub fn from_raw(name: &str, raw: &str) -> Self {
        // The document is kept as AWS wrote it (decoded), so evidence shows the author's form.
        let document = Policy::parse_text(name, raw).ok().and_then(|_| {
            let text = raw.trim();
            let decoded = if text.starts_with('{') {
                text.to_string()
            } else {
                percent_encoding::percent_decode_str(text)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            serde_json::from_str(&decoded).ok().map(Arc::new)
        });
        Self {
            raw: Some(raw.to_string()),
            document,
            parsed: OnceLock::new(),
        }
    }

    /// A record from a JSON document (tests, fixtures).
    pub fn from_document(document: Value) -> Self {
        Self {
            raw: None,
            document: Some(Arc::new(document)),
            parsed: OnceLock::new(),
        }
    }

    /// The parsed policy; `name` labels it in messages (the first caller's name is kept).
    pub fn policy(&self, name: &str) -> Result<Arc<Policy>, PolicyError> {
        self.parsed
            .get_or_init(|| parse_record(name, self.document.as_deref(), self.raw.as_deref()))
            .clone()
    }
}

/// Parses a policy record's JSON form (`{raw, document}`) as found in a snapshot view.
pub fn parse_record(
    name: &str,
    document: Option<&Value>,
    raw: Option<&str>,
) -> Result<Arc<Policy>, PolicyError> {
    match (document, raw) {
        (Some(doc), _) if !doc.is_null() => Policy::from_value(name, doc).map(Arc::new),
        (_, Some(raw)) => Policy::parse_text(name, raw).map(Arc::new),
        _ => Err(PolicyError::new(
            name,
            None,
            "the record holds neither a document nor raw text",
        )),
    }
}

/// Field name -> why it could not be read (AccessDenied, timeout...).
pub type CollectionErrors = BTreeMap<String, String>;

/// A SageMaker notebook instance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotebookInstance {
    pub name: String,
    pub arn: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::packed::shared_option"
    )]
    pub status: Option<Arc<str>>,
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub subnet_id: Option<Arc<str>>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// `Enabled` or `Disabled`.
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub direct_internet_access: Option<Arc<str>>,
    /// `Enabled` or `Disabled`.
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub root_access: Option<Arc<str>>,
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub kms_key_id: Option<Arc<str>>,
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub role_arn: Option<Arc<str>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::packed::shared_option"
    )]
    pub platform_identifier: Option<Arc<str>>,
    /// Minimum IMDS version (`1` or `2`) when known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::packed::shared_option"
    )]
    pub imds_version: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    #[serde(default)]
    pub cidr_block: Option<String>,
    #[serde(default)]
    pub is_default: bool,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    #[serde(default)]
    pub cidr_block: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
}

/// A route table with its associations and routes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    /// The VPC's main route table (used by subnets without an explicit association).
    #[serde(default)]
    pub main: bool,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One route; exactly one destination and one target are set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ipv6_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_prefix_list_id: Option<String>,
    /// The target's id (igw-, nat-, vpce-, tgw-, pcx-, eni-, local...).
    pub target: String,
    /// `internet_gateway`, `egress_only_internet_gateway`, `nat_gateway`, `vpc_endpoint`,
    /// `transit_gateway`, `peering_connection`, `network_interface`, `instance`, `local`, `other`.
    pub target_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A security group; its rules are flattened to one target each.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default, deserialize_with = "super::packed::shared_option")]
    pub name: Option<Arc<str>>,
    #[serde(deserialize_with = "super::packed::shared")]
    pub vpc_id: Arc<str>,
    #[serde(default)]
    pub ingress: Vec<SecurityGroupRule>,
    #[serde(default)]
    pub egress: Vec<SecurityGroupRule>,
}

/// One permission to one target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupRule {
    /// `-1` for all protocols, else `tcp`, `udp`, `icmp` or a number.
    #[serde(deserialize_with = "super::packed::shared")]
    pub protocol: Arc<str>,
    #[serde(default)]
    pub from_port: Option<i32>,
    #[serde(default)]
    pub to_port: Option<i32>,
    /// `cidr_ipv4`, `cidr_ipv6`, `prefix_list` or `security_group`.
    #[serde(deserialize_with = "super::packed::shared")]
    pub target_type: Arc<str>,
    #[serde(deserialize_with = "super::packed::shared")]
    pub target: Arc<str>,
}

/// A VPC endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    /// `Gateway`, `Interface`, `GatewayLoadBalancer`.
    pub endpoint_type: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub route_table_ids: Vec<String>,
    #[serde(default)]
    pub policy: Option<PolicyRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

/// A managed prefix list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixList {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub owner_id: Option<String>,
}

/// An IAM role with its policies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    #[serde(default)]
    pub trust_policy: Option<PolicyRecord>,
    /// Inline policies by name.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, PolicyRecord>,
    #[serde(default)]
    pub attached_policies: Vec<AttachedPolicy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

/// A managed policy attached to a role, with its default version's document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedPolicy {
    pub arn: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version_id: Option<String>,
    #[serde(default)]
    pub document: Option<PolicyRecord>,
}

/// The four S3 Block Public Access flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// Default encryption of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketEncryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub bucket_key_enabled: bool,
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Bucket {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub region: Option<String>,
    pub owner_account: String,
    #[serde(default)]
    pub policy: Option<PolicyRecord>,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default)]
    pub encryption: Option<BucketEncryption>,
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    #[serde(default)]
    pub object_ownership: Option<String>,
    /// `Enabled`, `Suspended`, or null (never enabled).
    #[serde(default)]
    pub versioning: Option<String>,
    /// S3's own GetBucketPolicyStatus answer (informational; xscan decides on the document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_status_is_public: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

/// An S3 access point.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3AccessPoint {
    pub name: String,
    pub arn: String,
    pub bucket: String,
    #[serde(default)]
    pub bucket_account: Option<String>,
    /// `VPC` or `Internet`.
    pub network_origin: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default)]
    pub policy: Option<PolicyRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_status_is_public: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

/// Account-level S3 settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3AccountSettings {
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: CollectionErrors,
}

impl ResourceKind for NotebookInstance {
    fn arn(&self, _: &Place<'_>) -> String {
        self.arn.clone()
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
}

impl ResourceKind for Vpc {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "vpc")
    }
}

impl ResourceKind for Subnet {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "subnet")
    }
}

impl ResourceKind for RouteTable {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "route-table")
    }
}

impl ResourceKind for SecurityGroup {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "security-group")
    }
}

impl ResourceKind for VpcEndpoint {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "vpc-endpoint")
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
    fn policy_field(&self, name: &str) -> Option<PolicyField<'_>> {
        (name == "policy").then_some(PolicyField::One(self.policy.as_ref()))
    }
}

impl ResourceKind for PrefixList {
    fn arn(&self, place: &Place<'_>) -> String {
        ec2_arn(place, "prefix-list")
    }
}

impl ResourceKind for IamRole {
    fn arn(&self, _: &Place<'_>) -> String {
        self.arn.clone()
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
    /// All of the role's identity policies, inline and attached, in one list.
    const DERIVED_FIELDS: &'static [&'static str] = &["identity_policies"];
    fn derived_field(&self, name: &str) -> Option<Value> {
        let Some(PolicyField::Many(records)) = self.policy_field(name) else {
            return None;
        };
        let record = |(name, p): (&str, Option<&PolicyRecord>)| json!({"name": name, "raw": p.map(|p| &p.raw), "document": p.map(|p| &p.document)});
        Some(records.into_iter().map(record).collect())
    }
    fn policy_field(&self, name: &str) -> Option<PolicyField<'_>> {
        match name {
            "trust_policy" => Some(PolicyField::One(self.trust_policy.as_ref())),
            // Inline, then attached: as the rule index lists them.
            "identity_policies" => Some(PolicyField::Many(
                self.inline_policies
                    .iter()
                    .map(|(name, p)| (name.as_str(), Some(p)))
                    .chain(
                        self.attached_policies
                            .iter()
                            .map(|a| (a.name.as_str(), a.document.as_ref())),
                    )
                    .collect(),
            )),
            _ => None,
        }
    }
}

impl ResourceKind for S3Bucket {
    fn arn(&self, _: &Place<'_>) -> String {
        self.arn.clone()
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
    fn own_region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    fn policy_field(&self, name: &str) -> Option<PolicyField<'_>> {
        (name == "policy").then_some(PolicyField::One(self.policy.as_ref()))
    }
}

impl ResourceKind for S3AccessPoint {
    fn arn(&self, _: &Place<'_>) -> String {
        self.arn.clone()
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
    fn policy_field(&self, name: &str) -> Option<PolicyField<'_>> {
        (name == "policy").then_some(PolicyField::One(self.policy.as_ref()))
    }
}

impl ResourceKind for S3AccountSettings {
    fn arn(&self, place: &Place<'_>) -> String {
        format!("arn:aws:s3:::account/{}", place.account)
    }
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        Some(&self.collection_errors)
    }
}
