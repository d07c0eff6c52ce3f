//! An index over a snapshot, built once per evaluation: every resource with its view (what
//! rules read: the resource's fields, plus `account`, `region`, `account_role`) and the lookups
//! relations need. A collected resource's view borrows it from the snapshot and serializes a
//! field only when a rule reads it: there is no second copy of the estate.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::{HashTable, hash_table};
use serde_json::{Value, json};

use crate::findings::ResourceRef;
use crate::model::{
    AccountRole, AmbiguousRouting, CollectionErrors, OrganizationSnapshot, Resource, ResourceType,
    Routing, Snapshot,
};

use super::spec::Relation;

/// One resource of the snapshot.
#[derive(Debug)]
pub struct Entry<'a> {
    pub resource_type: ResourceType,
    pub account: &'a str,
    pub region: Option<&'a str>,
    pub id: &'a str,
    pub account_role: Option<AccountRole>,
    /// What rules read of it.
    pub view: View<'a>,
    /// What of it could not be collected, by view field (owned where derived, as for accounts).
    pub collection_errors: Option<Cow<'a, CollectionErrors>>,
}

/// What rules read of an entry.
#[derive(Debug)]
pub enum View<'a> {
    /// A collected resource, borrowed from the snapshot.
    Collected(Resource<'a>),
    /// A view derived from the organization part (accounts: few, made once), with its ARN,
    /// boxed so that the many collected entries do not carry their room.
    Derived(Box<(Value, String)>),
}

impl Entry<'_> {
    /// Its ARN (or ARN-like identity): made from the resource and where it is, not held, since
    /// a large estate has hundreds of thousands and a result needs it only while it is made.
    pub fn arn(&self) -> Cow<'_, str> {
        match &self.view {
            View::Collected(resource) => Cow::Owned(resource.arn(&crate::model::Place {
                account: self.account,
                region: self.region,
                id: self.id,
            })),
            View::Derived(view) => Cow::Borrowed(&view.1),
        }
    }

    /// Its identity in results.
    pub fn resource_ref(&self) -> ResourceRef {
        ResourceRef {
            resource_type: self.resource_type,
            id: self.id.to_string(),
            arn: self.arn().into_owned(),
            account: self.account.to_string(),
            region: self.region.map(str::to_string),
        }
    }

    /// The top-level field `name` of the entry's view: the resource's fields as the snapshot
    /// stores them, plus `account`, `region` and `account_role`, and the fields its type
    /// derives (a role's `identity_policies`); `None` for a field it lacks.
    pub fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        let resource = match &self.view {
            View::Derived(view) => return view.0.get(name).map(Cow::Borrowed),
            View::Collected(resource) => resource,
        };
        let value = match (name, resource) {
            ("account", _) => json!(self.account),
            ("region", _) => json!(self.region),
            ("account_role", _) => json!(self.account_role.map(AccountRole::as_str)),
            _ => resource
                .derived_field(name)
                .or_else(|| resource.field(name))?,
        };
        Some(Cow::Owned(value))
    }

    /// A top-level string field of the view.
    fn text(&self, name: &str) -> Option<String> {
        self.field(name)
            .and_then(|v| v.as_str().map(str::to_string))
    }
}

type Key<'a> = (&'a str, &'a str, &'a str);

/// The index's lookups: asked once or more for every resource a rule relates, so hashed with
/// foldhash (SipHash's resistance to chosen keys buys nothing for keys read from a snapshot).
type Lookup<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The index.
#[derive(Default)]
pub struct SnapshotIndex<'a> {
    pub entries: Vec<Entry<'a>>,
    by_type: Lookup<ResourceType, Vec<usize>>,
    /// (type, account, region or "" for a global type, id) -> entry. The table holds only each
    /// entry's position and reads its key back from the entry: 9 bytes a resource where a map
    /// holding the keys took 65.
    by_id: HashTable<usize>,
    /// Hashes `by_id`'s keys.
    hasher: foldhash::fast::RandomState,
    /// Role ARN -> entry.
    roles_by_arn: Lookup<&'a str, usize>,
    /// (account, region) -> which route table routes each subnet there.
    routing: Lookup<(&'a str, &'a str), Routing<'a>>,
    /// (account, region, route table) -> the notebooks that may use it, with why it is not
    /// known (their subnet is routed by more than one table in the snapshot).
    notebooks_that_may_use: Lookup<Key<'a>, Vec<(usize, String)>>,
    /// (account, region, route table) -> endpoints naming it (gateway endpoints, in AWS).
    route_table_endpoints: Lookup<Key<'a>, Vec<usize>>,
    /// Reverse relations, by the related entry: the notebooks that refer to entry `e` are
    /// `notebooks[notebooks_from[e]..notebooks_from[e + 1]]` (in the order they refer to it),
    /// two flat lists where a map of lists held a key and a list per resource.
    notebooks_from: Vec<usize>,
    notebooks: Vec<usize>,
    /// (bucket account, bucket) -> access points.
    bucket_access_points: Lookup<(&'a str, &'a str), Vec<usize>>,
    /// (account, region) -> ids of the region's S3 managed prefix lists.
    s3_prefix_lists: Lookup<(&'a str, &'a str), Vec<String>>,
    /// Notebooks with a field that could not be collected: the few a reverse relation must
    /// name as unknowns (walking every notebook for every resource was quadratic).
    notebooks_with_errors: Vec<usize>,
}

/// The key `by_id` finds an entry by: (type, account, region or "" for a global type, id).
fn id_key<'e>(entry: &Entry<'e>) -> (ResourceType, &'e str, &'e str, &'e str) {
    let region = if entry.resource_type.is_regional() {
        entry.region.unwrap_or("")
    } else {
        ""
    };
    (entry.resource_type, entry.account, region, entry.id)
}

impl<'a> SnapshotIndex<'a> {
    /// Indexes `snapshot`; `roles` gives each account's role when the snapshot has none.
    pub fn build(snapshot: &'a Snapshot, role_of: &dyn Fn(&str) -> Option<AccountRole>) -> Self {
        // Made first so that the entries are allocated once, at their size: a vector grown by
        // doubling past the collected resources held twice their room for the whole scan.
        let derived = match &snapshot.organization {
            Some(org) => Self::derived_entries(snapshot, org, role_of),
            None => Vec::new(),
        };
        let mut index = Self {
            entries: Vec::with_capacity(snapshot.resources().count() + derived.len()),
            ..Self::default()
        };
        // Each account's role: the snapshot's, else the configuration's.
        let roles: HashMap<&str, Option<AccountRole>> = snapshot
            .accounts
            .iter()
            .map(|(id, a)| (id.as_str(), a.role.or_else(|| role_of(id))))
            .collect();
        for item in snapshot.resources() {
            let (account, region) = (item.account, item.region);
            let role = roles.get(account).copied().flatten();
            let i = index.push(Entry {
                resource_type: item.resource_type(),
                account,
                region,
                id: item.id,
                account_role: role,
                view: View::Collected(item.resource),
                collection_errors: item.collection_errors().map(Cow::Borrowed),
            });
            // The lookups the relations need.
            let here = region.unwrap_or("");
            match item.resource {
                Resource::SagemakerNotebook(_)
                    if item.collection_errors().is_some_and(|e| !e.is_empty()) =>
                {
                    index.notebooks_with_errors.push(i);
                }
                Resource::IamRole(r) => {
                    index.roles_by_arn.insert(&r.arn, i);
                }
                // Every endpoint that names the route table: whether it is a gateway endpoint
                // is for the rules to check (XS-NET-005 does), not for the index to decide out
                // of their sight.
                Resource::VpcEndpoint(e) => {
                    for rt in &e.route_table_ids {
                        index
                            .route_table_endpoints
                            .entry((account, here, rt))
                            .or_default()
                            .push(i);
                    }
                }
                Resource::PrefixList(p) if p.name == format!("com.amazonaws.{here}.s3") => {
                    index
                        .s3_prefix_lists
                        .entry((account, here))
                        .or_default()
                        .push(item.id.to_string());
                }
                Resource::S3AccessPoint(ap) => {
                    let bucket_account = ap.bucket_account.as_deref().unwrap_or(account);
                    index
                        .bucket_access_points
                        .entry((bucket_account, &ap.bucket))
                        .or_default()
                        .push(i);
                }
                _ => {}
            }
        }
        for entry in derived {
            index.push(entry);
        }
        // Reverse relations from notebooks: (related entry, notebook) in the order met, then
        // grouped by related entry, each group in that order.
        let mut refers: Vec<(usize, usize)> = Vec::new();
        for (account, a) in &snapshot.accounts {
            for (region, r) in &a.regions {
                index
                    .routing
                    .insert((account.as_str(), region.as_str()), Routing::new(r));
                // The region's endpoints by VPC, in the snapshot's order.
                let mut endpoints_in_vpc: HashMap<&str, Vec<&str>> = HashMap::new();
                for (endpoint_id, e) in &r.vpc_endpoints {
                    endpoints_in_vpc
                        .entry(e.vpc_id.as_str())
                        .or_default()
                        .push(endpoint_id);
                }
                let (account, region) = (account.as_str(), region.as_str());
                for (id, n) in &r.sagemaker_notebooks {
                    let Some(i) =
                        index.lookup(ResourceType::SagemakerNotebook, account, region, id)
                    else {
                        continue;
                    };
                    // What it refers to (each list is grouped by what is referred to, so the
                    // order of the kinds here does not matter).
                    let role = n
                        .role_arn
                        .as_deref()
                        .and_then(|arn| index.roles_by_arn.get(arn));
                    refers.extend(role.map(|&role| (role, i)));
                    let in_region =
                        |t: ResourceType, id: &str| index.lookup(t, account, region, id);
                    for sg in &n.security_groups {
                        refers.extend(in_region(ResourceType::SecurityGroup, sg).map(|g| (g, i)));
                    }
                    let Some(subnet) = n.subnet_id.as_deref() else {
                        continue;
                    };
                    refers.extend(in_region(ResourceType::Subnet, subnet).map(|s| (s, i)));
                    match index.route_table_of_subnet(account, region, subnet) {
                        Ok(Some(rt)) => refers.push((rt, i)),
                        Ok(None) => {}
                        // Any of the tables may carry its traffic: none is known to.
                        Err(ambiguous) => {
                            for table in ambiguous.tables {
                                index
                                    .notebooks_that_may_use
                                    .entry((account, region, table))
                                    .or_default()
                                    .push((i, ambiguous.why.clone()));
                            }
                        }
                    }
                    let vpc = r.subnets.get(subnet).map(|s| &*s.vpc_id);
                    for endpoint_id in vpc
                        .and_then(|v| endpoints_in_vpc.get(v))
                        .into_iter()
                        .flatten()
                    {
                        refers.extend(
                            index
                                .lookup(ResourceType::VpcEndpoint, account, region, endpoint_id)
                                .map(|e| (e, i)),
                        );
                    }
                }
            }
        }
        index.group_notebooks(refers);
        // Each type's entries in ARN order (ties in snapshot order), the order results are
        // reported in: a rule's results then come out sorted, and sorting them is one pass.
        for list in index.by_type.values_mut() {
            // Each ARN made once (a stable sort, as `sort_by` was).
            list.sort_by_cached_key(|&i| index.entries[i].arn().into_owned());
        }
        index
    }

    /// The entries of the types derived from the organization (`account`,
    /// `organization_policy`), each made by its type's module.
    fn derived_entries(
        snapshot: &'a Snapshot,
        org: &'a OrganizationSnapshot,
        role_of: &dyn Fn(&str) -> Option<AccountRole>,
    ) -> Vec<Entry<'a>> {
        let mut entries = Vec::new();
        for &t in ResourceType::ALL.iter().filter(|t| t.is_derived()) {
            for d in t.derive(snapshot, org, role_of) {
                entries.push(Entry {
                    resource_type: t,
                    account: d.account,
                    region: None,
                    id: d.id,
                    account_role: d.account_role,
                    view: View::Derived(Box::new((d.view, d.arn))),
                    collection_errors: Some(Cow::Owned(d.collection_errors)),
                });
            }
        }
        entries
    }

    fn push(&mut self, entry: Entry<'a>) -> usize {
        let i = self.entries.len();
        self.by_type.entry(entry.resource_type).or_default().push(i);
        let key = id_key(&entry);
        let (entries, hasher) = (&self.entries, &self.hasher);
        // A repeated key names the last entry, as a map's insert would.
        match self.by_id.entry(
            hasher.hash_one(key),
            |&known| id_key(&entries[known]) == key,
            |&known| hasher.hash_one(id_key(&entries[known])),
        ) {
            hash_table::Entry::Occupied(mut known) => *known.get_mut() = i,
            hash_table::Entry::Vacant(place) => {
                place.insert(i);
            }
        }
        self.entries.push(entry);
        i
    }

    /// Groups `refers` (related entry, notebook) by related entry, each group in the order
    /// given, as `notebooks_from` and `notebooks`.
    fn group_notebooks(&mut self, refers: Vec<(usize, usize)>) {
        let mut from = vec![0; self.entries.len() + 1];
        for &(target, _) in &refers {
            from[target + 1] += 1;
        }
        for e in 0..self.entries.len() {
            from[e + 1] += from[e];
        }
        let mut next = from.clone();
        let mut notebooks = vec![0; refers.len()];
        for (target, notebook) in refers {
            notebooks[next[target]] = notebook;
            next[target] += 1;
        }
        self.notebooks_from = from;
        self.notebooks = notebooks;
    }

    /// Notebooks with a field that could not be collected, in snapshot order.
    pub fn notebooks_with_errors(&self) -> &[usize] {
        &self.notebooks_with_errors
    }

    /// Entries of one type, in ARN order (ties in snapshot order).
    pub fn of_type(&self, t: ResourceType) -> &[usize] {
        self.by_type.get(&t).map_or(&[], Vec::as_slice)
    }

    /// The entry of (type, account, region or "" for a global type, id).
    fn lookup(&self, t: ResourceType, account: &str, region: &str, id: &str) -> Option<usize> {
        let key = (t, account, region, id);
        self.by_id
            .find(self.hasher.hash_one(key), |&known| {
                id_key(&self.entries[known]) == key
            })
            .copied()
    }

    /// The notebooks that refer to entry `e` (see [`Relation::Notebooks`]).
    fn notebooks_of(&self, e: usize) -> &[usize] {
        match (self.notebooks_from.get(e), self.notebooks_from.get(e + 1)) {
            (Some(&start), Some(&end)) => &self.notebooks[start..end],
            _ => &[],
        }
    }

    fn route_table_of_subnet(
        &self,
        account: &str,
        region: &str,
        subnet: &str,
    ) -> Result<Option<usize>, AmbiguousRouting<'a>> {
        let Some(routing) = self.routing.get(&(account, region)) else {
            return Ok(None);
        };
        Ok(routing
            .table_of_subnet(subnet)?
            .and_then(|t| self.lookup(ResourceType::RouteTable, account, region, &t.id)))
    }

    /// The S3 managed prefix list ids of (account, region).
    pub fn s3_prefix_lists(&self, account: &str, region: &str) -> Vec<String> {
        self.s3_prefix_lists
            .get(&(account, region))
            .cloned()
            .unwrap_or_default()
    }

    /// Follows `relation` from entry `from`. Returns the related entries and, for each target
    /// (account, region) consulted, so callers can check for collection gaps.
    pub fn related(&self, from: usize, relation: Relation) -> Related {
        let e = &self.entries[from];
        let region = e.region.unwrap_or("");
        let field = |name: &str| e.text(name);
        let mut out = Related {
            entries: Vec::new(),
            consulted: vec![(e.account.to_string(), e.region.map(str::to_string))],
            unknown: Vec::new(),
        };
        // The table that routes a subnet; none, with why, when the snapshot names more than one.
        let route_table = |out: &mut Related, subnet: &str| {
            self.route_table_of_subnet(e.account, region, subnet)
                .unwrap_or_else(|ambiguous| {
                    out.unknown.push(ambiguous.why);
                    None
                })
        };
        match relation {
            Relation::Subnet => {
                out.entries.extend(
                    field("subnet_id")
                        .and_then(|s| self.lookup(ResourceType::Subnet, e.account, region, &s)),
                );
            }
            Relation::SecurityGroups => {
                if let Some(Value::Array(groups)) = e.field("security_groups").as_deref() {
                    out.entries
                        .extend(groups.iter().filter_map(Value::as_str).filter_map(|g| {
                            self.lookup(ResourceType::SecurityGroup, e.account, region, g)
                        }));
                }
            }
            Relation::RouteTable => {
                let subnet = if e.resource_type == ResourceType::Subnet {
                    Some(e.id.to_string())
                } else {
                    field("subnet_id")
                };
                if let Some(rt) = subnet.and_then(|s| route_table(&mut out, &s)) {
                    out.entries.push(rt);
                }
            }
            Relation::Vpc => {
                let vpc = field("subnet_id")
                    .and_then(|s| self.lookup(ResourceType::Subnet, e.account, region, &s))
                    .and_then(|s| self.entries[s].text("vpc_id"))
                    .and_then(|v| self.lookup(ResourceType::Vpc, e.account, region, &v));
                out.entries.extend(vpc);
            }
            Relation::ExecutionRole => {
                if let Some(arn) = field("role_arn") {
                    // The role may live in another account: consult that account's IAM.
                    if let Some(account) = arn.split(':').nth(4) {
                        out.consulted = vec![(account.to_string(), None)];
                    }
                    out.entries
                        .extend(self.roles_by_arn.get(arn.as_str()).copied());
                }
            }
            Relation::GatewayEndpoints => {
                if let Some(rt) = field("subnet_id").and_then(|s| route_table(&mut out, &s)) {
                    let rt_id = self.entries[rt].id;
                    out.entries.extend(
                        self.route_table_endpoints
                            .get(&(e.account, region, rt_id))
                            .into_iter()
                            .flatten()
                            .copied(),
                    );
                }
            }
            Relation::Notebooks => {
                let region = if e.resource_type.is_regional() {
                    region
                } else {
                    ""
                };
                out.entries.extend_from_slice(self.notebooks_of(from));
                // Notebooks whose subnet the snapshot routes through this table and another.
                out.unknown.extend(
                    self.notebooks_that_may_use
                        .get(&(e.account, region, e.id))
                        .into_iter()
                        .flatten()
                        .map(|(n, why)| {
                            format!("notebook {} may use it: {why}", self.entries[*n].id)
                        }),
                );
                if e.resource_type == ResourceType::IamRole {
                    // Notebooks of any account may use the role.
                    out.consulted = Vec::new();
                }
            }
            Relation::Bucket => {
                let account = field("bucket_account").unwrap_or_else(|| e.account.to_string());
                if let Some(bucket) = field("bucket") {
                    out.entries
                        .extend(self.lookup(ResourceType::S3Bucket, &account, "", &bucket));
                }
                out.consulted = vec![(account, None)];
            }
            Relation::AccessPoints => {
                out.entries.extend(
                    self.bucket_access_points
                        .get(&(e.account, e.id))
                        .into_iter()
                        .flatten()
                        .copied(),
                );
                out.consulted = vec![(e.account.to_string(), None)];
            }
        }
        out
    }
}

/// The result of following a relation.
#[derive(Debug, Clone)]
pub struct Related {
    pub entries: Vec<usize>,
    /// (account, region) whose population of the target type the answer depends on.
    pub consulted: Vec<(String, Option<String>)>,
    /// Why the snapshot cannot tell some of what is related (a subnet routed by more than one
    /// table), each the reason for one possible member.
    pub unknown: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PolicyField, PolicyRecord};

    /// An entry's notebooks are those that name it, in snapshot order, once per mention;
    /// an entry no notebook names has none, and a notebook naming a group that was not
    /// collected adds nothing. Counted here from the notebooks' own fields.
    #[test]
    fn the_notebooks_of_an_entry_are_those_that_name_it() {
        let mut estate: Value =
            serde_json::from_str(include_str!("../../rules/fixtures/compliant.snapshot.json"))
                .unwrap();
        let region = &mut estate["accounts"]["111111111111"]["regions"]["us-east-1"];
        let first = region["sagemaker_notebooks"]["ml-notebook-1"].clone();
        let group = first["security_groups"][0].clone();
        let mut second = first.clone();
        second["name"] = json!("ml-notebook-0");
        second["arn"] =
            json!("arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-0");
        second["security_groups"] = json!([group, "sg-not-collected", group]);
        region["sagemaker_notebooks"]["ml-notebook-0"] = second;
        let mut third = first.clone();
        third["name"] = json!("ml-notebook-2");
        third["arn"] =
            json!("arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-2");
        third["security_groups"] = json!([]);
        third["role_arn"] = json!("arn:aws:iam::111111111111:role/no-such-role");
        region["sagemaker_notebooks"]["ml-notebook-2"] = third;
        let snapshot = Snapshot::from_json("three notebooks", &estate.to_string()).unwrap();
        let index = SnapshotIndex::build(&snapshot, &|_| Some(AccountRole::Consumer));
        let notebooks: Vec<(usize, &crate::model::NotebookInstance)> =
            snapshot.accounts["111111111111"].regions["us-east-1"]
                .sagemaker_notebooks
                .values()
                .map(|n| {
                    let i = index.lookup(
                        ResourceType::SagemakerNotebook,
                        "111111111111",
                        "us-east-1",
                        &n.name,
                    );
                    (i.expect("every notebook is indexed"), n)
                })
                .collect();
        let mut checked = 0;
        for (e, entry) in index.entries.iter().enumerate() {
            let named = |n: &crate::model::NotebookInstance| -> usize {
                match entry.resource_type {
                    ResourceType::SecurityGroup => n
                        .security_groups
                        .iter()
                        .filter(|g| g.as_str() == entry.id)
                        .count(),
                    ResourceType::Subnet => usize::from(n.subnet_id.as_deref() == Some(entry.id)),
                    ResourceType::IamRole => {
                        usize::from(n.role_arn.as_deref() == Some(&*entry.arn()))
                    }
                    _ => 0,
                }
            };
            let expected: Vec<usize> = notebooks
                .iter()
                .flat_map(|&(i, n)| std::iter::repeat_n(i, named(n)))
                .collect();
            if matches!(
                entry.resource_type,
                ResourceType::SecurityGroup | ResourceType::Subnet | ResourceType::IamRole
            ) {
                assert_eq!(
                    index.related(e, Relation::Notebooks).entries,
                    expected,
                    "{}",
                    entry.id
                );
                checked += 1;
            }
        }
        assert!(checked >= 3, "only {checked} entries checked");
        let sg = first["security_groups"][0].as_str().unwrap();
        let sg = index
            .lookup(ResourceType::SecurityGroup, "111111111111", "us-east-1", sg)
            .unwrap();
        // ml-notebook-0 twice, ml-notebook-1 once: the mentions, in snapshot order.
        assert_eq!(index.related(sg, Relation::Notebooks).entries.len(), 3);
        assert_eq!(
            index.lookup(
                ResourceType::SecurityGroup,
                "111111111111",
                "us-east-1",
                "sg-not-collected"
            ),
            None
        );
    }

    /// The view a rule reads of a collected resource is the resource as the snapshot file
    /// stores it, plus where it is: field by field, for every resource of the fixture estate
    /// and of the example estate (roles with attached policies, buckets, access points).
    #[test]
    fn a_view_reads_every_field_as_the_snapshot_stores_it() {
        for (name, text) in [
            (
                "compliant",
                include_str!("../../rules/fixtures/compliant.snapshot.json"),
            ),
            (
                "example",
                include_str!("../../examples/estate.snapshot.json"),
            ),
        ] {
            let snapshot = Snapshot::from_json(name, text).expect("fixture parses");
            let index = SnapshotIndex::build(&snapshot, &|_| Some(AccountRole::Consumer));
            let mut compared = 0;
            for (entry, item) in index.entries.iter().zip(snapshot.resources()) {
                assert_eq!((entry.id, entry.account), (item.id, item.account));
                let Value::Object(stored) = item.to_json() else {
                    panic!("{} is not a JSON object", item.id);
                };
                for (field, value) in &stored {
                    let read = entry.field(field).map(Cow::into_owned);
                    if field == "region" {
                        assert_eq!(read, Some(json!(item.region)), "{}", item.id);
                    } else {
                        assert_eq!(read.as_ref(), Some(value), "{}.{field}", item.id);
                    }
                    compared += 1;
                }
                assert_eq!(
                    entry.field("account"),
                    Some(Cow::Owned(json!(item.account)))
                );
                let role = snapshot.accounts[item.account]
                    .role
                    .map(AccountRole::as_str);
                assert_eq!(entry.field("account_role"), Some(Cow::Owned(json!(role))));
                assert_eq!(entry.field("no_such_field"), None);
                if let Resource::IamRole(role) = item.resource {
                    let listed = entry.field("identity_policies").map(Cow::into_owned);
                    let count = role.inline_policies.len() + role.attached_policies.len();
                    assert_eq!(
                        listed.as_ref().and_then(Value::as_array).map(Vec::len),
                        Some(count)
                    );
                }
            }
            assert!(compared > 50, "{name}: only {compared} fields compared");
            // The policy analyses read policy fields typed: the same records as the view.
            let mut policies = 0;
            for entry in &index.entries {
                let View::Collected(resource) = entry.view else {
                    continue;
                };
                for field in ["policy", "trust_policy", "identity_policies"] {
                    let Some(typed) = resource.policy_field(field) else {
                        continue;
                    };
                    let json = entry.field(field).map(Cow::into_owned);
                    let parts = |r: Option<&PolicyRecord>| {
                        r.map_or((None, None), |r| {
                            (r.document.as_deref().cloned(), r.raw.clone())
                        })
                    };
                    let of = |r: &Value| {
                        (
                            r.get("document").cloned().filter(|d| !d.is_null()),
                            r.get("raw").and_then(Value::as_str).map(str::to_string),
                        )
                    };
                    match typed {
                        PolicyField::One(None) => assert_eq!(json, None, "{}.{field}", entry.id),
                        PolicyField::One(Some(r)) => {
                            assert_eq!(Some(parts(Some(r))), json.as_ref().map(of));
                            policies += 1;
                        }
                        PolicyField::Many(records) => {
                            let items = json.as_ref().and_then(Value::as_array).cloned();
                            let items = items.unwrap_or_default();
                            assert_eq!(records.len(), items.len(), "{}.{field}", entry.id);
                            for ((name, r), item) in records.into_iter().zip(&items) {
                                assert_eq!(Some(name), item.get("name").and_then(Value::as_str));
                                assert_eq!(parts(r), of(item), "{}.{field} {name}", entry.id);
                                policies += 1;
                            }
                        }
                    }
                }
            }
            assert!(
                policies >= 4,
                "{name}: only {policies} policy records compared"
            );
        }
    }
}
