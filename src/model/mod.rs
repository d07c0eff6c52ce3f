//! The normalized snapshot: what was collected from which accounts and regions, when, by whom,
//! and what could not be collected. Versioned (`schema_version`), serializable, and the only
//! input evaluation needs — a saved snapshot is evidence that can be re-evaluated offline.
//!
//! Conventions: `None`/`null` means AWS answered "not configured" (e.g.
//! NoSuchBucketPolicy); a field that could not be read is named in the resource's
//! `collection_errors`, and a listing that failed is a [`CollectionGap`] — never a default.

mod account_view;
mod field;
pub mod merge;
mod organization;
mod organization_policy;
pub(crate) mod packed;
mod registry;
mod resources;
mod routing;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use account_view::AccountView;
pub use field::field_of;
pub use organization::*;
pub use organization_policy::OrganizationPolicyView;
pub use registry::{
    DerivedKind, DerivedResource, Place, PolicyField, Resource, ResourceItem, ResourceKind,
    ResourceType, ec2_arn,
};
pub use resources::*;
pub use routing::{AmbiguousRouting, Routing};

/// The snapshot format version this build reads and writes.
pub const SNAPSHOT_SCHEMA_VERSION: &str = "xscan.snapshot/v1";

/// Errors reading a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "cannot read snapshot {path}: {source}\nhelp: check the path; `xscan collect` writes snapshots"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "snapshot {path} is not valid at line {line} column {column}: {message}\nhelp: snapshots are JSON written by `xscan collect`; see README.md#snapshots"
    )]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "snapshot {path} has schema_version `{found}`, this xscan reads `{SNAPSHOT_SCHEMA_VERSION}`\nhelp: re-collect the snapshot with this version of xscan"
    )]
    Version { path: String, found: String },
}

impl ModelError {
    /// A JSON problem at its place in the snapshot `origin`.
    fn parse(origin: &str, problem: crate::input::JsonProblem) -> Self {
        ModelError::Parse {
            path: origin.to_string(),
            line: problem.line,
            column: problem.column,
            message: problem.message,
        }
    }
}

/// A whole scan's collected configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub schema_version: String,
    pub metadata: ScanMetadata,
    /// Keyed by 12-digit account id.
    pub accounts: BTreeMap<String, AccountSnapshot>,
    /// The AWS Organization, when the configuration names one (`organization:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationSnapshot>,
}

/// Who collected what, when, and what is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanMetadata {
    pub tool_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The configured scope name (used to keep SARIF categories apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub regions: Vec<String>,
    /// `sts:GetCallerIdentity` per account, keyed by account id.
    #[serde(default)]
    pub caller_identities: BTreeMap<String, CallerIdentity>,
    /// Everything that could not be collected.
    #[serde(default)]
    pub collection_gaps: Vec<CollectionGap>,
    /// API calls made, by IAM action (`ec2:DescribeVpcs`): what the scanner did, for auditors
    /// and for the least-privilege check.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_calls: BTreeMap<String, u64>,
    /// Attempts beyond the first, and attempts AWS throttled, by account (`*`: the starting
    /// identity's and the organization's calls).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retries: BTreeMap<String, RetryCounts>,
    /// What the collection was made with (shards are merged only when these agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// Retried and throttled attempts of one account's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryCounts {
    pub retried: u64,
    pub throttled: u64,
}

/// The configuration and rule pack a collection was made with, and its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// sha256 of the configuration (and its account list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// sha256 of the rule pack the collection was made for.
    pub rule_pack_sha256: String,
    /// Set for one shard of a sharded collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N` with 0 <= I < N (0-based, like Kubernetes' JOB_COMPLETION_INDEX and AWS Batch's
    /// AWS_BATCH_JOB_ARRAY_INDEX).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && count <= merge::MAX_SHARDS && index < count => {
                Ok(Shard { index, count })
            }
            _ => Err(format!(
                "`{s}` is not a shard I/N with 0 <= I < N <= {} (e.g. 0/4 ... 3/4)",
                merge::MAX_SHARDS
            )),
        }
    }
}

/// The identity xscan used in one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerIdentity {
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A listing or read that failed: rules that need it report `error`, never `pass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionGap {
    pub account: String,
    /// `None` for global services (IAM) and account-wide failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub service: String,
    pub api_call: String,
    /// The resource types whose population is unknown because of this gap (empty: one resource's
    /// field, recorded in its `collection_errors`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<ResourceType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub error: String,
}

/// Whether an account consumes the dataset or holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    Consumer,
    Data,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Consumer => "consumer",
            AccountRole::Data => "data",
        }
    }
}

/// One account's resources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<AccountRole>,
    /// IAM roles, keyed by role name (IAM is global).
    #[serde(default, deserialize_with = "packed::map")]
    pub iam_roles: BTreeMap<String, IamRole>,
    /// S3 buckets, keyed by bucket name.
    #[serde(default, deserialize_with = "packed::map")]
    pub s3_buckets: BTreeMap<String, S3Bucket>,
    /// Account-level S3 settings (public access block), when collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_account_settings: Option<S3AccountSettings>,
    /// Regional resources, keyed by region.
    #[serde(default)]
    pub regions: BTreeMap<String, RegionSnapshot>,
}

/// One account's resources in one region, each map keyed by the resource's id (name for
/// notebooks and access points).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSnapshot {
    #[serde(default, deserialize_with = "packed::map")]
    pub sagemaker_notebooks: BTreeMap<String, NotebookInstance>,
    #[serde(default, deserialize_with = "packed::map")]
    pub vpcs: BTreeMap<String, Vpc>,
    #[serde(default, deserialize_with = "packed::map")]
    pub subnets: BTreeMap<String, Subnet>,
    #[serde(default, deserialize_with = "packed::map")]
    pub route_tables: BTreeMap<String, RouteTable>,
    #[serde(default, deserialize_with = "packed::map")]
    pub security_groups: BTreeMap<String, SecurityGroup>,
    #[serde(default, deserialize_with = "packed::map")]
    pub vpc_endpoints: BTreeMap<String, VpcEndpoint>,
    #[serde(default, deserialize_with = "packed::map")]
    pub prefix_lists: BTreeMap<String, PrefixList>,
    #[serde(default, deserialize_with = "packed::map")]
    pub s3_access_points: BTreeMap<String, S3AccessPoint>,
}

impl ScanMetadata {
    /// Puts the gaps in their canonical order (account, region, service, call, resource), so
    /// that the same collection writes the same snapshot however its tasks finished.
    pub fn sort_gaps(&mut self) {
        self.collection_gaps.sort_by(|a, b| {
            (
                &a.account,
                &a.region,
                &a.service,
                &a.api_call,
                &a.resource_id,
            )
                .cmp(&(
                    &b.account,
                    &b.region,
                    &b.service,
                    &b.api_call,
                    &b.resource_id,
                ))
        });
    }
}

impl Snapshot {
    /// An empty snapshot stamped now.
    pub fn new(regions: Vec<String>) -> Self {
        let now = Utc::now();
        Self {
            schema_version: SNAPSHOT_SCHEMA_VERSION.to_string(),
            metadata: ScanMetadata {
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                started_at: now,
                finished_at: now,
                scope: None,
                regions,
                caller_identities: BTreeMap::new(),
                collection_gaps: Vec::new(),
                api_calls: BTreeMap::new(),
                retries: BTreeMap::new(),
                provenance: None,
            },
            accounts: BTreeMap::new(),
            organization: None,
        }
    }

    /// Parses snapshot JSON; `origin` names it in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Self, ModelError> {
        let text = crate::input::strip_bom(text);
        crate::input::check_json(text).map_err(|p| ModelError::parse(origin, p))?;
        // Read with the values a fleet repeats shared (see `packed`).
        let read = packed::sharing(|| serde_json::from_str::<Snapshot>(text));
        let snapshot = read.map_err(|e| ModelError::Parse {
            path: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        snapshot.of_this_version(origin)
    }

    /// The snapshot, when it is of the schema version this xscan reads.
    fn of_this_version(self, origin: &str) -> Result<Self, ModelError> {
        if self.schema_version != SNAPSHOT_SCHEMA_VERSION {
            return Err(ModelError::Version {
                path: origin.to_string(),
                found: self.schema_version,
            });
        }
        Ok(self)
    }

    /// Reads a snapshot file without holding its text, and gives the hex sha256 of its bytes.
    /// The file is read twice, each time as it is parsed: once to check it (the same checks
    /// as [`Snapshot::from_json`]: UTF-8, a byte order mark passed over, no repeated key), once
    /// to read the snapshot. A large estate's text is then never held beside the estate made
    /// from it (226 MB of text beside an estate of about the same size). A file changed
    /// between the two reads is refused.
    pub fn read_file(path: &Path) -> Result<(Self, String), ModelError> {
        let origin = path.display().to_string();
        let read_error = |source: std::io::Error| ModelError::Read {
            path: origin.clone(),
            source,
        };
        let parse_error = |e: serde_json::Error| {
            if e.is_io() {
                read_error(e.into())
            } else {
                ModelError::parse(&origin, e.into())
            }
        };
        let open = || {
            std::fs::File::open(path)
                .map(|file| crate::input::HashedText::new(std::io::BufReader::new(file)))
                .map_err(read_error)
        };
        let mut checked = open()?;
        crate::input::check_json_reader(std::io::BufReader::new(&mut checked))
            .map_err(parse_error)?;
        let sha256 = checked.finish().map_err(read_error)?;
        let mut parsed = open()?;
        let read = packed::sharing(|| {
            serde_json::from_reader::<_, Snapshot>(std::io::BufReader::new(&mut parsed))
        });
        let snapshot = read.map_err(parse_error)?;
        if parsed.finish().map_err(read_error)? != sha256 {
            return Err(read_error(std::io::Error::other(
                "the file changed while it was read; read it again once it is written",
            )));
        }
        Ok((snapshot.of_this_version(&origin)?, sha256))
    }

    /// Reads a snapshot file (see [`Snapshot::read_file`]).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Ok(Self::read_file(path)?.0)
    }

    /// Pretty JSON, stable key order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The gaps that leave the population of `resource_type` unknown in (account, region).
    pub fn population_gaps(
        &self,
        resource_type: ResourceType,
        account: &str,
        region: Option<&str>,
    ) -> Vec<&CollectionGap> {
        self.metadata
            .collection_gaps
            .iter()
            .filter(|g| {
                g.account == account
                    && g.resource_types.contains(&resource_type)
                    && (g.region.is_none() || region.is_none() || g.region.as_deref() == region)
            })
            .collect()
    }
}
