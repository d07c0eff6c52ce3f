//! Every resource collected in the accounts, in one place: its type, where it is, its id and
//! ARN, what of it could not be collected, and the resource itself. [`Snapshot::resources`] is
//! the one walk over them that the rule index, the configuration diff and the resource counts
//! make; a new resource type is added here (and to [`ResourceType`]) once. The organization's
//! `account` resources are not here: they are derived from the organization part.

use serde_json::Value;

use super::{
    CollectionErrors, IamRole, NotebookInstance, PrefixList, ResourceType, RouteTable,
    S3AccessPoint, S3AccountSettings, S3Bucket, SecurityGroup, Snapshot, Subnet, Vpc, VpcEndpoint,
    field_of,
};

/// `$body` with `$r` bound to the typed resource inside `$resource`, whatever its type.
macro_rules! with_resource {
    ($resource:expr, $r:ident => $body:expr) => {
        match $resource {
            Resource::SagemakerNotebook($r) => $body,
            Resource::Vpc($r) => $body,
            Resource::Subnet($r) => $body,
            Resource::RouteTable($r) => $body,
            Resource::SecurityGroup($r) => $body,
            Resource::VpcEndpoint($r) => $body,
            Resource::PrefixList($r) => $body,
            Resource::IamRole($r) => $body,
            Resource::S3Bucket($r) => $body,
            Resource::S3AccessPoint($r) => $body,
            Resource::S3AccountSettings($r) => $body,
        }
    };
}

/// A collected resource, borrowed from the snapshot.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    SagemakerNotebook(&'a NotebookInstance),
    Vpc(&'a Vpc),
    Subnet(&'a Subnet),
    RouteTable(&'a RouteTable),
    SecurityGroup(&'a SecurityGroup),
    VpcEndpoint(&'a VpcEndpoint),
    PrefixList(&'a PrefixList),
    IamRole(&'a IamRole),
    S3Bucket(&'a S3Bucket),
    S3AccessPoint(&'a S3AccessPoint),
    S3AccountSettings(&'a S3AccountSettings),
}

/// One resource and where it is.
#[derive(Debug, Clone, Copy)]
pub struct ResourceItem<'a> {
    pub account: &'a str,
    /// The region of a regional resource; a bucket's own region; `None` for IAM and account
    /// settings.
    pub region: Option<&'a str>,
    /// Its key in the snapshot (the name of notebooks, roles, buckets and access points; the
    /// account id for account settings).
    pub id: &'a str,
    pub resource: Resource<'a>,
}

impl<'a> ResourceItem<'a> {
    pub fn resource_type(&self) -> ResourceType {
        match self.resource {
            Resource::SagemakerNotebook(_) => ResourceType::SagemakerNotebook,
            Resource::Vpc(_) => ResourceType::Vpc,
            Resource::Subnet(_) => ResourceType::Subnet,
            Resource::RouteTable(_) => ResourceType::RouteTable,
            Resource::SecurityGroup(_) => ResourceType::SecurityGroup,
            Resource::VpcEndpoint(_) => ResourceType::VpcEndpoint,
            Resource::PrefixList(_) => ResourceType::PrefixList,
            Resource::IamRole(_) => ResourceType::IamRole,
            Resource::S3Bucket(_) => ResourceType::S3Bucket,
            Resource::S3AccessPoint(_) => ResourceType::S3AccessPoint,
            Resource::S3AccountSettings(_) => ResourceType::S3AccountSettings,
        }
    }

    /// Its ARN, or an ARN-like identity for what has none (account settings).
    pub fn arn(&self) -> String {
        let (account, id) = (self.account, self.id);
        let ec2 = |kind: &str| {
            format!(
                "arn:aws:ec2:{}:{account}:{kind}/{id}",
                self.region.unwrap_or_default()
            )
        };
        match self.resource {
            Resource::SagemakerNotebook(n) => n.arn.clone(),
            Resource::IamRole(r) => r.arn.clone(),
            Resource::S3Bucket(b) => b.arn.clone(),
            Resource::S3AccessPoint(ap) => ap.arn.clone(),
            Resource::S3AccountSettings(_) => format!("arn:aws:s3:::account/{account}"),
            Resource::Vpc(_) => ec2("vpc"),
            Resource::Subnet(_) => ec2("subnet"),
            Resource::RouteTable(_) => ec2("route-table"),
            Resource::SecurityGroup(_) => ec2("security-group"),
            Resource::VpcEndpoint(_) => ec2("vpc-endpoint"),
            Resource::PrefixList(_) => ec2("prefix-list"),
        }
    }

    /// The fields that could not be collected, for the types that record them.
    pub fn collection_errors(&self) -> Option<&'a CollectionErrors> {
        match self.resource {
            Resource::SagemakerNotebook(n) => Some(&n.collection_errors),
            Resource::IamRole(r) => Some(&r.collection_errors),
            Resource::S3Bucket(b) => Some(&b.collection_errors),
            Resource::S3AccessPoint(ap) => Some(&ap.collection_errors),
            Resource::S3AccountSettings(s) => Some(&s.collection_errors),
            Resource::VpcEndpoint(e) => Some(&e.collection_errors),
            Resource::Vpc(_)
            | Resource::Subnet(_)
            | Resource::RouteTable(_)
            | Resource::SecurityGroup(_)
            | Resource::PrefixList(_) => None,
        }
    }

    /// The resource as JSON, as the snapshot stores it.
    pub fn to_json(&self) -> Value {
        self.resource.to_json()
    }
}

impl Resource<'_> {
    /// The resource as JSON, as the snapshot stores it.
    pub fn to_json(&self) -> Value {
        with_resource!(self, r => serde_json::to_value(r).unwrap_or(Value::Null))
    }

    /// One field of the resource as JSON, as the snapshot stores it (`None`: no such field, or
    /// an absent optional one).
    pub fn field(&self, name: &str) -> Option<Value> {
        with_resource!(self, r => field_of(*r, name))
    }
}

impl Snapshot {
    /// Every resource collected in the accounts: per account its IAM roles, buckets and
    /// account settings, then per region notebooks, VPCs, subnets, route tables, security
    /// groups, endpoints, prefix lists and access points, each map in key order.
    pub fn resources<'a>(&'a self) -> impl Iterator<Item = ResourceItem<'a>> + 'a {
        self.accounts.iter().flat_map(|(account, a)| {
            let account = account.as_str();
            let global = a
                .iam_roles
                .iter()
                .map(move |(id, r)| ResourceItem {
                    account,
                    region: None,
                    id: id.as_str(),
                    resource: Resource::IamRole(r),
                })
                .chain(a.s3_buckets.iter().map(move |(id, b)| ResourceItem {
                    account,
                    region: b.region.as_deref(),
                    id: id.as_str(),
                    resource: Resource::S3Bucket(b),
                }))
                .chain(a.s3_account_settings.iter().map(move |s| ResourceItem {
                    account,
                    region: None,
                    id: account,
                    resource: Resource::S3AccountSettings(s),
                }));
            let regional = a.regions.iter().flat_map(move |(region, r)| {
                let item = move |id: &'a str, resource: Resource<'a>| ResourceItem {
                    account,
                    region: Some(region.as_str()),
                    id,
                    resource,
                };
                r.sagemaker_notebooks
                    .iter()
                    .map(move |(id, x)| item(id, Resource::SagemakerNotebook(x)))
                    .chain(r.vpcs.iter().map(move |(id, x)| item(id, Resource::Vpc(x))))
                    .chain(
                        r.subnets
                            .iter()
                            .map(move |(id, x)| item(id, Resource::Subnet(x))),
                    )
                    .chain(
                        r.route_tables
                            .iter()
                            .map(move |(id, x)| item(id, Resource::RouteTable(x))),
                    )
                    .chain(
                        r.security_groups
                            .iter()
                            .map(move |(id, x)| item(id, Resource::SecurityGroup(x))),
                    )
                    .chain(
                        r.vpc_endpoints
                            .iter()
                            .map(move |(id, x)| item(id, Resource::VpcEndpoint(x))),
                    )
                    .chain(
                        r.prefix_lists
                            .iter()
                            .map(move |(id, x)| item(id, Resource::PrefixList(x))),
                    )
                    .chain(
                        r.s3_access_points
                            .iter()
                            .map(move |(id, x)| item(id, Resource::S3AccessPoint(x))),
                    )
            });
            global.chain(regional)
        })
    }
}
