//! Every resource type, in one place. The table in [`resource_types!`] names each type once: its
//! variant, the struct that holds it, its name in rules and reports, its AWS service, and where
//! the snapshot stores it. From that line come [`ResourceType`] (with `ALL`, `as_str`,
//! `service`, `is_regional` and `fields`), [`Resource`] (a resource borrowed from the snapshot,
//! with its ARN, gaps, fields and JSON) and [`Snapshot::resources`], the one walk over the
//! resources that the rule index, the configuration diff and the resource counts make. What is
//! particular to a type (its ARN, the fields that could not be collected, fields derived for
//! rules, the policy records the analyses read) is its [`ResourceKind`] implementation,
//! beside its struct.
//!
//! Adding a collected type: its struct and `impl ResourceKind` in its module, one line in the
//! table, its map in [`AccountSnapshot`](super::AccountSnapshot) or
//! [`RegionSnapshot`](super::RegionSnapshot), and its collector. A type derived from the
//! organization part (`account`, `organization_policy`) is its module's [`DerivedKind`] impl
//! and one line in the table.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AccountRole, AccountView, CollectionErrors, IamRole, NotebookInstance, OrganizationPolicyView,
    OrganizationSnapshot, PolicyRecord, PrefixList, RouteTable, S3AccessPoint, S3AccountSettings,
    S3Bucket, SecurityGroup, Snapshot, Subnet, Vpc, VpcEndpoint, field_of,
};

/// Where a resource is: what its ARN is made of.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub account: &'a str,
    /// The region of a regional resource; a bucket's own region; `None` for IAM and account
    /// settings.
    pub region: Option<&'a str>,
    /// Its key in the snapshot.
    pub id: &'a str,
}

/// What is particular to a collected resource type; implemented once, beside its struct.
pub trait ResourceKind: Serialize + for<'de> Deserialize<'de> {
    /// Its ARN, or an ARN-like identity for what has none.
    fn arn(&self, place: &Place<'_>) -> String;

    /// The fields that could not be collected, for types whose reads can fail in part.
    fn collection_errors(&self) -> Option<&CollectionErrors> {
        None
    }

    /// The region of a resource of a global type that has one of its own (a bucket's).
    fn own_region(&self) -> Option<&str> {
        None
    }

    /// Fields rules read besides the stored ones ([`ResourceKind::derived_field`] makes them).
    const DERIVED_FIELDS: &'static [&'static str] = &[];

    /// The derived field `name` as JSON (one of `DERIVED_FIELDS`).
    fn derived_field(&self, _name: &str) -> Option<Value> {
        None
    }

    /// The policy records the field `name` holds, read typed by the policy analyses (instead
    /// of as JSON); `None` for a field that holds none.
    fn policy_field(&self, _name: &str) -> Option<PolicyField<'_>> {
        None
    }
}

/// The policy records of a field.
#[derive(Debug)]
pub enum PolicyField<'a> {
    /// A field of one policy, or none set.
    One(Option<&'a PolicyRecord>),
    /// A list of named policies (a role's identity policies); `None`: not collected.
    Many(Vec<(&'a str, Option<&'a PolicyRecord>)>),
}

/// A resource derived from the organization part, not collected in an account.
#[derive(Debug)]
pub struct DerivedResource<'a> {
    /// The account it belongs to (the organization's management account for what the
    /// organization itself holds).
    pub account: &'a str,
    pub id: &'a str,
    pub arn: String,
    pub account_role: Option<AccountRole>,
    /// What rules read: the fields of the type, plus `account`, `region` and `account_role`.
    pub view: Value,
    /// What of it could not be read, by view field.
    pub collection_errors: CollectionErrors,
}

/// What is particular to a type derived from the organization; implemented once, in its
/// module.
pub trait DerivedKind {
    /// The fields of its view rules may read.
    const FIELDS: &'static [&'static str];

    /// Its resources. `role_of` gives an account's role from the configuration.
    fn derive<'a>(
        snapshot: &'a Snapshot,
        org: &'a OrganizationSnapshot,
        role_of: &dyn Fn(&str) -> Option<AccountRole>,
    ) -> Vec<DerivedResource<'a>>;

    /// Why its population is unknown, when a part it is listed from could not be read.
    fn population_error(_org: &OrganizationSnapshot) -> Option<String> {
        None
    }
}

/// An ARN of EC2's form, `arn:aws:ec2:<region>:<account>:<kind>/<id>`.
pub fn ec2_arn(place: &Place<'_>, kind: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:{kind}/{}",
        place.region.unwrap_or_default(),
        place.account,
        place.id
    )
}

/// The fields a rule may read of `T`: those it is stored with (as serde names them), without
/// `collection_errors`, plus those the index derives.
fn readable_fields<T: ResourceKind>() -> Vec<&'static str> {
    stored_fields::<T>()
        .iter()
        .copied()
        .filter(|f| *f != "collection_errors")
        .chain(T::DERIVED_FIELDS.iter().copied())
        .collect()
}

/// The field names of a struct as its `Deserialize` declares them.
fn stored_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    /// A deserializer that only asks a struct for its field names.
    struct Introspect<'f>(&'f mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Introspect<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only structs are introspected"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("introspected"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

/// A map of resources by key, or an account's single resource (keyed by the account id).
trait Members<T> {
    fn members<'a>(&'a self, account: &'a str) -> impl Iterator<Item = (&'a str, &'a T)> + 'a
    where
        T: 'a;
}

impl<T> Members<T> for BTreeMap<String, T> {
    fn members<'a>(&'a self, _: &'a str) -> impl Iterator<Item = (&'a str, &'a T)> + 'a
    where
        T: 'a,
    {
        self.iter().map(|(id, r)| (id.as_str(), r))
    }
}

impl<T> Members<T> for Option<T> {
    fn members<'a>(&'a self, account: &'a str) -> impl Iterator<Item = (&'a str, &'a T)> + 'a
    where
        T: 'a,
    {
        self.iter().map(move |r| (account, r))
    }
}

/// The resources of one table entry in an account (`account`) or a region (`region`); nothing
/// for an entry stored in the other.
macro_rules! members_in {
    (account, account, $a:expr, $id:expr, $variant:ident . $field:ident) => {
        Some($a.$field.members($id).map(move |(key, r)| ResourceItem {
            account: $id,
            region: r.own_region(),
            id: key,
            resource: Resource::$variant(r),
        }))
        .into_iter()
        .flatten()
    };
    (region, region, $r:expr, ($id:expr, $region:expr), $variant:ident . $field:ident) => {
        Some($r.$field.members($id).map(move |(key, r)| ResourceItem {
            account: $id,
            region: Some($region),
            id: key,
            resource: Resource::$variant(r),
        }))
        .into_iter()
        .flatten()
    };
    ($want:ident, $scope:ident, $a:expr, $id:expr, $variant:ident . $field:ident) => {
        None::<std::iter::Empty<ResourceItem<'_>>>
            .into_iter()
            .flatten()
    };
}

/// The table of resource types; see the module's documentation.
macro_rules! resource_types {
    (
        collected {
            $( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal, $service:literal, $scope:ident . $field:ident; )*
        }
        derived {
            $( $(#[$ddoc:meta])* $dvariant:ident($dty:ty) = $dname:literal, $dservice:literal; )*
        }
    ) => {
        /// The resource types rules can target.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ResourceType {
            $( $(#[$doc])* $variant, )*
            $( $(#[$ddoc])* $dvariant, )*
        }

        impl ResourceType {
            /// Every type, in report order.
            pub const ALL: &'static [ResourceType] =
                &[$(ResourceType::$variant,)* $(ResourceType::$dvariant,)*];

            /// The snake_case name used in rules and reports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ResourceType::$variant => $name, )*
                    $( ResourceType::$dvariant => $dname, )*
                }
            }

            /// The AWS service that owns the type.
            pub fn service(self) -> &'static str {
                match self {
                    $( ResourceType::$variant => $service, )*
                    $( ResourceType::$dvariant => $dservice, )*
                }
            }

            /// Regional types live under `regions.<region>`; the others under the account.
            pub fn is_regional(self) -> bool {
                match self {
                    $( ResourceType::$variant => stringify!($scope) == "region", )*
                    $( ResourceType::$dvariant => false, )*
                }
            }

            /// The fields rules may read (besides `account`, `region`, `account_role`).
            pub fn fields(self) -> &'static [&'static str] {
                match self {
                    $( ResourceType::$variant => {
                        static FIELDS: OnceLock<Vec<&'static str>> = OnceLock::new();
                        FIELDS.get_or_init(readable_fields::<$ty>)
                    } )*
                    $( ResourceType::$dvariant => <$dty as DerivedKind>::FIELDS, )*
                }
            }

            /// Whether its resources are derived from the organization part.
            pub fn is_derived(self) -> bool {
                match self {
                    $( ResourceType::$variant => false, )*
                    $( ResourceType::$dvariant => true, )*
                }
            }

            /// The resources of a derived type (none for a collected one).
            pub fn derive<'a>(
                self,
                snapshot: &'a Snapshot,
                org: &'a OrganizationSnapshot,
                role_of: &dyn Fn(&str) -> Option<AccountRole>,
            ) -> Vec<DerivedResource<'a>> {
                match self {
                    $( ResourceType::$variant => Vec::new(), )*
                    $( ResourceType::$dvariant => <$dty as DerivedKind>::derive(snapshot, org, role_of), )*
                }
            }

            /// Why the population of a derived type is unknown, if it is.
            pub fn population_error(self, org: &OrganizationSnapshot) -> Option<String> {
                match self {
                    $( ResourceType::$variant => None, )*
                    $( ResourceType::$dvariant => <$dty as DerivedKind>::population_error(org), )*
                }
            }
        }

        /// A collected resource, borrowed from the snapshot.
        #[derive(Debug, Clone, Copy)]
        pub enum Resource<'a> {
            $( $variant(&'a $ty), )*
        }

        impl<'a> Resource<'a> {
            pub fn resource_type(&self) -> ResourceType {
                match self {
                    $( Resource::$variant(_) => ResourceType::$variant, )*
                }
            }

            /// Its ARN, or an ARN-like identity for what has none (account settings).
            pub fn arn(&self, place: &Place<'_>) -> String {
                match self {
                    $( Resource::$variant(r) => r.arn(place), )*
                }
            }

            /// The fields that could not be collected, for the types that record them.
            pub fn collection_errors(self) -> Option<&'a CollectionErrors> {
                match self {
                    $( Resource::$variant(r) => r.collection_errors(), )*
                }
            }

            /// The policy records of the field `name`, typed, when it holds them.
            pub fn policy_field(self, name: &str) -> Option<PolicyField<'a>> {
                match self {
                    $( Resource::$variant(r) => r.policy_field(name), )*
                }
            }

            /// A field derived for rules (one of its type's `DERIVED_FIELDS`), as JSON.
            pub fn derived_field(&self, name: &str) -> Option<Value> {
                match self {
                    $( Resource::$variant(r) => r.derived_field(name), )*
                }
            }

            /// The resource as JSON, as the snapshot stores it.
            pub fn to_json(&self) -> Value {
                match self {
                    $( Resource::$variant(r) => serde_json::to_value(r).unwrap_or(Value::Null), )*
                }
            }

            /// One field of the resource as JSON, as the snapshot stores it (`None`: no such
            /// field, or an absent optional one).
            pub fn field(&self, name: &str) -> Option<Value> {
                match self {
                    $( Resource::$variant(r) => field_of(*r, name), )*
                }
            }
        }

        impl Snapshot {
            /// Every resource collected in the accounts: per account the types stored under
            /// it, then per region the regional types, each in the table's order and each map
            /// in key order.
            pub fn resources<'a>(&'a self) -> impl Iterator<Item = ResourceItem<'a>> + 'a {
                self.accounts.iter().flat_map(|(account, a)| {
                    let account = account.as_str();
                    let global = std::iter::empty()
                        $( .chain(members_in!(account, $scope, a, account, $variant . $field)) )*;
                    let regional = a.regions.iter().flat_map(move |(region, r)| {
                        let region = region.as_str();
                        std::iter::empty()
                            $( .chain(members_in!(region, $scope, r, (account, region), $variant . $field)) )*
                    });
                    global.chain(regional)
                })
            }
        }
    };
}

resource_types! {
    collected {
        SagemakerNotebook(NotebookInstance) = "sagemaker_notebook", "sagemaker", region.sagemaker_notebooks;
        Vpc(Vpc) = "vpc", "ec2", region.vpcs;
        Subnet(Subnet) = "subnet", "ec2", region.subnets;
        RouteTable(RouteTable) = "route_table", "ec2", region.route_tables;
        SecurityGroup(SecurityGroup) = "security_group", "ec2", region.security_groups;
        VpcEndpoint(VpcEndpoint) = "vpc_endpoint", "ec2", region.vpc_endpoints;
        PrefixList(PrefixList) = "prefix_list", "ec2", region.prefix_lists;
        IamRole(IamRole) = "iam_role", "iam", account.iam_roles;
        S3Bucket(S3Bucket) = "s3_bucket", "s3", account.s3_buckets;
        S3AccessPoint(S3AccessPoint) = "s3_access_point", "s3control", region.s3_access_points;
        S3AccountSettings(S3AccountSettings) = "s3_account_settings", "s3control", account.s3_account_settings;
    }
    derived {
        /// An account of the organization, with the SCPs and RCPs above it.
        Account(AccountView) = "account", "organizations";
        /// An SCP or RCP of the organization, with its document and targets.
        OrganizationPolicy(OrganizationPolicyView) = "organization_policy", "organizations";
    }
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
        self.resource.resource_type()
    }

    fn place(&self) -> Place<'a> {
        Place {
            account: self.account,
            region: self.region,
            id: self.id,
        }
    }

    /// Its ARN, or an ARN-like identity for what has none (account settings).
    pub fn arn(&self) -> String {
        self.resource.arn(&self.place())
    }

    /// The fields that could not be collected, for the types that record them.
    pub fn collection_errors(&self) -> Option<&'a CollectionErrors> {
        self.resource.collection_errors()
    }

    /// The resource as JSON, as the snapshot stores it.
    pub fn to_json(&self) -> Value {
        self.resource.to_json()
    }
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type's name is the one serde reads in rules (`resource_type:`) and writes in reports.
    #[test]
    fn each_type_is_named_as_serde_names_it() {
        for t in ResourceType::ALL {
            assert_eq!(serde_json::to_value(t).ok(), Some(Value::from(t.as_str())));
        }
    }
}
