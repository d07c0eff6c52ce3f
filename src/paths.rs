//! Perimeter paths: for every notebook of the consumer accounts, the network model and the
//! policy engine together answer the two questions users bring — *can the notebook still read
//! the dataset* (intended access, through the access point) and *can anything leave* (egress:
//! a path around the endpoint, or through it to another account's S3). Each answer names the
//! hops it passed and the first one that refuses, with the statement or setting behind it;
//! what was not collected makes the answer "not evaluated", never a guess. Pure: snapshot and
//! configuration in, results out.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::model::{
    AccountRole, NotebookInstance, PolicyRecord, RegionSnapshot, RouteTable, Routing,
    S3AccessPoint, Snapshot, VpcEndpoint,
};
use crate::policy::{
    AccessPointLayers, Decision, Evaluation, Policy, PolicySet, Request, RequestPrincipal,
    evaluate, evaluate_via_access_point,
};

/// What one hop did to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopDecision {
    Passes,
    Refuses,
    NotEvaluated,
}

/// One hop of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Hop {
    /// `security_group`, `route_table`, `vpc_endpoint`, `identity_policy`, `access_point`, ...
    pub layer: &'static str,
    /// The resource (id or ARN) at this hop.
    pub resource: String,
    pub decision: HopDecision,
    /// Why: the rule, route or statement.
    pub detail: String,
}

/// The answer for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The request gets through every hop.
    Allowed,
    /// A hop refuses it (the first refusing hop is marked).
    Refused,
    /// Something on the path was not collected.
    NotEvaluated,
}

/// One path of one notebook.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    /// Shared by all the paths of one notebook.
    pub notebook: Arc<str>,
    pub account: Arc<str>,
    pub region: Arc<str>,
    /// `intended` (the notebook reading the dataset) or `egress` (leaving the perimeter).
    pub kind: &'static str,
    /// The question, e.g. `s3:GetObject through arn:...:accesspoint/test-ap-1`.
    pub question: String,
    pub answer: Answer,
    pub hops: Vec<Hop>,
}

fn hop(layer: &'static str, resource: &str, decision: HopDecision, detail: String) -> Hop {
    Hop {
        layer,
        resource: resource.to_string(),
        decision,
        detail,
    }
}

/// The answer a list of hops gives: the first hop that does not pass decides.
fn answer_of(hops: &[Hop]) -> Answer {
    match hops.iter().find(|h| h.decision != HopDecision::Passes) {
        None => Answer::Allowed,
        Some(h) if h.decision == HopDecision::Refuses => Answer::Refused,
        Some(_) => Answer::NotEvaluated,
    }
}

/// A region's route tables and S3 gateway endpoints by what a path looks them up with, made
/// once per region: walking them for every notebook was quadratic in a large region.
struct RegionLookups<'a> {
    /// Which route table routes each subnet (shared with the rule index).
    routing: Routing<'a>,
    /// Route table -> the S3 gateway endpoint that names it, the first in snapshot order.
    s3_gateways: HashMap<&'a str, &'a VpcEndpoint>,
}

impl<'a> RegionLookups<'a> {
    fn new(region_name: &str, region: &'a RegionSnapshot) -> Self {
        let mut lookups = Self {
            routing: Routing::new(region),
            s3_gateways: HashMap::new(),
        };
        let s3 = format!("com.amazonaws.{region_name}.s3");
        for endpoint in region.vpc_endpoints.values() {
            if endpoint.endpoint_type == "Gateway" && endpoint.service_name == s3 {
                for table in &endpoint.route_table_ids {
                    lookups.s3_gateways.entry(table).or_insert(endpoint);
                }
            }
        }
        lookups
    }

    /// The route table in effect for a subnet: its explicit association, else the VPC's main
    /// one; `Err(why)` when none was collected or the snapshot names more than one.
    fn route_table(&self, subnet: &str) -> Result<&'a RouteTable, String> {
        match self.routing.table_of_subnet(subnet) {
            Ok(Some(table)) => Ok(table),
            Ok(None) => Err("the subnet's route table was not collected".into()),
            Err(ambiguous) => Err(ambiguous.why),
        }
    }
}

/// Does an egress rule let TCP 443 out?
fn allows_https(protocol: &str, from: Option<i32>, to: Option<i32>) -> bool {
    let proto = matches!(protocol, "-1" | "tcp" | "6" | "all");
    let ports = match (from, to) {
        (Some(f), Some(t)) => (f <= 443 && 443 <= t) || (f == -1 && t == -1),
        _ => true,
    };
    proto && ports
}

fn is_default_route(destination: Option<&str>) -> bool {
    matches!(destination, Some("0.0.0.0/0") | Some("::/0"))
}

/// The reasons that are there, in one line.
fn reasons<const N: usize>(why: [Option<String>; N]) -> String {
    why.into_iter().flatten().collect::<Vec<_>>().join("; ")
}

/// A policy record parsed, or why it cannot be used.
fn parsed(record: &PolicyRecord, name: &str) -> Result<Arc<Policy>, String> {
    record
        .policy(name)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
}

fn describe(e: &Evaluation) -> String {
    // The stand-ins for the layers not under test are not worth naming.
    let mut statements: Vec<String> = Vec::new();
    for s in e.statements.iter().filter(|s| !s.policy.starts_with('(')) {
        let named = match &s.sid {
            Some(sid) => format!("{} statement {} (Sid \"{sid}\")", s.policy, s.index),
            None => format!("{} statement {}", s.policy, s.index),
        };
        // One statement may decide at several levels or for two resources: name it once.
        if !statements.contains(&named) {
            statements.push(named);
        }
    }
    // An allowing hop is named by the statements that allow; a refusing one by the reason.
    match (e.decision, statements.is_empty()) {
        (Decision::Allowed, false) => format!("allowed by {}", statements.join(", ")),
        (Decision::Allowed, true) => "allowed".into(),
        (_, true) => format!("{}: {}", e.decision, e.reason),
        (_, false) => format!("{}: {} [{}]", e.decision, e.reason, statements.join(", ")),
    }
}

fn decision_hop(layer: &'static str, resource: &str, e: &Evaluation) -> Hop {
    let decision = match e.decision {
        Decision::Allowed => HopDecision::Passes,
        Decision::ExplicitlyDenied | Decision::ImplicitlyDenied => HopDecision::Refuses,
        Decision::Indeterminate => HopDecision::NotEvaluated,
    };
    hop(layer, resource, decision, describe(e))
}

/// Everything a notebook's paths depend on, gathered once.
struct Notebook<'a> {
    account: &'a str,
    region_name: &'a str,
    region: &'a RegionSnapshot,
    notebook: &'a NotebookInstance,
    snapshot: &'a Snapshot,
    /// The notebook, account and region as its results name them (made once, shared).
    names: [Arc<str>; 3],
    lookups: &'a RegionLookups<'a>,
}

impl Notebook<'_> {
    /// The ids of the region's S3 managed prefix lists (`com.amazonaws.<region>.s3`).
    fn s3_prefix_lists(&self) -> Vec<&str> {
        let name = format!("com.amazonaws.{}.s3", self.region_name);
        self.region
            .prefix_lists
            .values()
            .filter(|p| p.name == name)
            .map(|p| p.id.as_str())
            .collect()
    }

    /// Listings on the path that failed: what they would have shown is unknown, so the path is
    /// not evaluated rather than refused or allowed for want of a resource.
    fn population_gaps(&self, types: &[crate::model::ResourceType]) -> Option<Hop> {
        for t in types {
            let region = (t.is_regional()).then_some(self.region_name);
            if let Some(g) = self
                .snapshot
                .population_gaps(*t, self.account, region)
                .first()
            {
                return Some(hop(
                    "collection",
                    self.account,
                    HopDecision::NotEvaluated,
                    format!(
                        "the {t} resources of {} could not be listed ({}:{}: {})",
                        self.account, g.service, g.api_call, g.error
                    ),
                ));
            }
        }
        None
    }

    /// The hops up to the endpoint: the notebook's own configuration, its security groups, its
    /// route table and the S3 gateway endpoint on it. Returns the hops and the endpoint.
    fn network_hops(&self) -> (Vec<Hop>, Option<&crate::model::VpcEndpoint>) {
        use crate::model::ResourceType as T;
        let mut hops = Vec::new();
        let nb = self.notebook;
        if let Some(gap) = self.population_gaps(&[
            T::Subnet,
            T::SecurityGroup,
            T::RouteTable,
            T::VpcEndpoint,
            T::PrefixList,
        ]) {
            hops.push(gap);
            return (hops, None);
        }
        for field in ["subnet_id", "security_groups", "role_arn"] {
            if let Some(error) = nb.collection_errors.get(field) {
                hops.push(hop(
                    "notebook",
                    &nb.name,
                    HopDecision::NotEvaluated,
                    format!("{field} could not be collected: {error}"),
                ));
                return (hops, None);
            }
        }
        let Some(subnet) = nb.subnet_id.as_deref() else {
            hops.push(hop(
                "notebook",
                &nb.name,
                HopDecision::Refuses,
                "no subnet: the notebook runs in SageMaker's VPC, outside the consumer VPC and its endpoint".into(),
            ));
            return (hops, None);
        };
        hops.push(hop(
            "notebook",
            &nb.name,
            HopDecision::Passes,
            format!("in subnet {subnet}"),
        ));
        // Security groups: TCP 443 to the region's S3 prefix list (or everywhere).
        let s3_lists = self.s3_prefix_lists();
        let mut sg_passes = None;
        let mut sg_unknown = None;
        for id in &nb.security_groups {
            let Some(group) = self.region.security_groups.get(id) else {
                sg_unknown = Some(format!("security group {id} was not collected"));
                continue;
            };
            for rule in group
                .egress
                .iter()
                .filter(|r| allows_https(&r.protocol, r.from_port, r.to_port))
            {
                let covers = match &*rule.target_type {
                    "prefix_list" => s3_lists.contains(&&*rule.target),
                    "cidr_ipv4" | "cidr_ipv6" => is_default_route(Some(&rule.target)),
                    _ => false,
                };
                if covers {
                    sg_passes = Some(format!(
                        "{id} egress {} {} allows TCP 443",
                        rule.target_type, rule.target
                    ));
                }
            }
        }
        let sg_resource = nb.security_groups.join(",");
        match (sg_passes, sg_unknown, s3_lists.is_empty()) {
            (Some(why), _, _) => hops.push(hop(
                "security_group",
                &sg_resource,
                HopDecision::Passes,
                why,
            )),
            (None, _, true) => {
                hops.push(hop(
                    "security_group",
                    &sg_resource,
                    HopDecision::NotEvaluated,
                    "the region's S3 prefix list was not collected".into(),
                ));
                return (hops, None);
            }
            (None, Some(why), _) => {
                hops.push(hop(
                    "security_group",
                    &sg_resource,
                    HopDecision::NotEvaluated,
                    why,
                ));
                return (hops, None);
            }
            (None, None, false) => {
                hops.push(hop(
                    "security_group",
                    &sg_resource,
                    HopDecision::Refuses,
                    "no egress rule allows TCP 443 to the S3 prefix list".into(),
                ));
                return (hops, None);
            }
        }
        let table = match self.lookups.route_table(subnet) {
            Ok(table) => table,
            Err(why) => {
                hops.push(hop("route_table", subnet, HopDecision::NotEvaluated, why));
                return (hops, None);
            }
        };
        let endpoint = self.lookups.s3_gateways.get(table.id.as_str()).copied();
        match endpoint {
            Some(e) if e.state.as_deref() == Some("available") => {
                hops.push(hop(
                    "route_table",
                    &table.id,
                    HopDecision::Passes,
                    format!("routes the S3 prefix list to {}", e.id),
                ));
                (hops, Some(e))
            }
            Some(e) => {
                hops.push(hop(
                    "vpc_endpoint",
                    &e.id,
                    HopDecision::Refuses,
                    format!(
                        "the endpoint is {}",
                        e.state.as_deref().unwrap_or("in an unknown state")
                    ),
                ));
                (hops, None)
            }
            None => {
                hops.push(hop("route_table", &table.id, HopDecision::Refuses, "no S3 gateway endpoint on the route table: S3 traffic does not go through the perimeter's endpoint".into()));
                (hops, None)
            }
        }
    }

    /// The execution role's identity policies, or why they cannot be read.
    fn identity_policies(&self) -> Result<(String, Vec<Arc<Policy>>), String> {
        let arn = self
            .notebook
            .role_arn
            .as_deref()
            .ok_or("the notebook has no execution role")?;
        let account = arn.split(':').nth(4).unwrap_or_default();
        let name = arn.rsplit('/').next().unwrap_or_default();
        let role = self
            .snapshot
            .accounts
            .get(account)
            .and_then(|a| a.iam_roles.get(name))
            .ok_or(format!("role {arn} was not collected"))?;
        for field in ["inline_policies", "attached_policies"] {
            if let Some(e) = role.collection_errors.get(field) {
                return Err(format!("{field} of {name} could not be collected: {e}"));
            }
        }
        let mut out = Vec::new();
        for (policy_name, record) in &role.inline_policies {
            out.push(parsed(
                record,
                &format!("{name} inline policy {policy_name}"),
            )?);
        }
        for attached in &role.attached_policies {
            let record = attached.document.as_ref().ok_or(format!(
                "the document of {} was not collected",
                attached.arn
            ))?;
            out.push(parsed(record, &attached.arn)?);
        }
        Ok((arn.to_string(), out))
    }
}

/// Why the organization's keys of a request are not known, for want of the organization.
const NO_ORGANIZATION: &str =
    "the organization was not collected (no `organization:` in the configuration)";

impl Notebook<'_> {
    /// The organization keys AWS adds to `request`: the principal's (`aws:PrincipalOrgID`,
    /// `aws:PrincipalOrgPaths`) and, for a resource of `resource_account`, the resource's
    /// (`aws:ResourceOrgID`, `aws:ResourceOrgPaths`), from the collected organization; a key
    /// xscan cannot know is marked unknown, so that a condition on it is not decided.
    fn organization_context(&self, request: &mut Request, resource_account: Option<&str>) {
        match &self.snapshot.organization {
            Some(org) => org.add_org_keys(request, resource_account),
            None => crate::model::unknown_org_keys(request, NO_ORGANIZATION),
        }
    }

    /// The organization's hops on `request`: the SCPs above the principal's account and, when
    /// `resource_account` is given, the RCPs above it — each alone, every other layer open.
    /// None when the organization is not in scope (nothing is claimed about it).
    fn organization_hops(&self, request: &Request, resource_account: Option<&str>) -> Vec<Hop> {
        use crate::model::OrganizationPolicyType as Kind;
        let Some(org) = &self.snapshot.organization else {
            return Vec::new();
        };
        let open_identity = Policy::allow_all("(any other layer)", false);
        let open_resource = Policy::allow_all("(any other layer)", true);
        let policies = PolicySet {
            identity: vec![&open_identity],
            resource: Some((&open_resource, crate::policy::PolicyKind::Resource)),
            endpoint: Vec::new(),
        };
        let principal_account = request.principal.account().unwrap_or_default().to_string();
        let mut hops = Vec::new();
        for (layer, kind, account) in [
            (
                "scp",
                Kind::ServiceControlPolicy,
                Some(principal_account.as_str()),
            ),
            ("rcp", Kind::ResourceControlPolicy, resource_account),
        ] {
            let Some(account) = account else {
                continue;
            };
            let levels = match org.parsed_levels(account, kind) {
                Ok(levels) => levels,
                Err(reason) => {
                    hops.push(hop(layer, account, HopDecision::NotEvaluated, reason));
                    continue;
                }
            };
            let refs: Vec<Vec<&Policy>> = levels
                .iter()
                .map(|l| l.iter().map(Arc::as_ref).collect())
                .collect();
            let (scp_levels, rcp_levels) = match kind {
                Kind::ServiceControlPolicy => (refs, Vec::new()),
                Kind::ResourceControlPolicy => (Vec::new(), refs),
            };
            let organization = crate::policy::Organization {
                scp_levels,
                rcp_levels,
                management_account: org.management_account_id.clone(),
            };
            let evaluation = crate::policy::evaluate_in(request, &policies, &organization);
            hops.push(decision_hop(layer, account, &evaluation));
        }
        hops
    }
}

/// The request context AWS builds for a request from the notebook through `endpoint`.
fn through_endpoint(request: &mut Request, endpoint: &crate::model::VpcEndpoint) {
    request.context.add("aws:SourceVpce", &endpoint.id);
    request.context.add("aws:SourceVpc", &endpoint.vpc_id);
    request.context.add("aws:SecureTransport", "true");
}

/// A perimeter property and the layers that hold it: each hop `Refuses` (holds) or `Passes`
/// (lets the request through). Held by two layers or more: `Allowed` (defence in depth); by
/// one or none: `Refused`; a layer unknown: `NotEvaluated`.
fn layer_result(nb: &Notebook<'_>, property: &str, layers: Vec<Hop>) -> PathResult {
    let holding = layers
        .iter()
        .filter(|h| h.decision == HopDecision::Refuses)
        .count();
    let answer = if layers
        .iter()
        .any(|h| h.decision == HopDecision::NotEvaluated)
    {
        Answer::NotEvaluated
    } else if holding >= 2 {
        Answer::Allowed
    } else {
        Answer::Refused
    };
    PathResult {
        notebook: nb.names[0].clone(),
        account: nb.names[1].clone(),
        region: nb.names[2].clone(),
        kind: "layers",
        question: property.to_string(),
        answer,
        hops: layers,
    }
}

fn intended(nb: &Notebook<'_>, access_point: &S3AccessPoint) -> Vec<PathResult> {
    let mut out = Vec::new();
    let mut layered = Vec::new();
    for (action, resource) in [
        (
            "s3:GetObject",
            format!("{}/object/xscan-path-probe", access_point.arn),
        ),
        ("s3:ListBucket", access_point.arn.clone()),
    ] {
        let (mut hops, endpoint) = nb.network_hops();
        let result = |hops: Vec<Hop>| PathResult {
            notebook: nb.names[0].clone(),
            account: nb.names[1].clone(),
            region: nb.names[2].clone(),
            kind: "intended",
            question: format!("{action} through {}", access_point.arn),
            answer: answer_of(&hops),
            hops,
        };
        let Some(endpoint) = endpoint else {
            out.push(result(hops));
            continue;
        };
        // The data side: the access point's and the bucket's listings, the role's account.
        let ap_account = access_point.arn.split(':').nth(4).unwrap_or_default();
        let ap_region = access_point.arn.split(':').nth(3).unwrap_or_default();
        let role_account = nb
            .notebook
            .role_arn
            .as_deref()
            .and_then(|a| a.split(':').nth(4))
            .unwrap_or(nb.account);
        let data_gap = [
            (
                crate::model::ResourceType::S3AccessPoint,
                ap_account,
                Some(ap_region),
            ),
            (crate::model::ResourceType::S3Bucket, ap_account, None),
            (crate::model::ResourceType::IamRole, role_account, None),
        ]
        .into_iter()
        .find_map(|(t, account, region)| {
            nb.snapshot
                .population_gaps(t, account, region)
                .first()
                .map(|g| {
                    format!(
                        "the {t} resources of {account} could not be listed ({}:{}: {})",
                        g.service, g.api_call, g.error
                    )
                })
        });
        if let Some(why) = data_gap {
            hops.push(hop(
                "collection",
                ap_account,
                HopDecision::NotEvaluated,
                why,
            ));
            out.push(result(hops));
            continue;
        }
        // The access point's network origin.
        let vpc = nb
            .notebook
            .subnet_id
            .as_deref()
            .and_then(|s| nb.region.subnets.get(s))
            .map(|s| s.vpc_id.clone());
        if access_point.network_origin == "VPC" && access_point.vpc_id != vpc {
            hops.push(hop(
                "access_point",
                &access_point.arn,
                HopDecision::Refuses,
                format!(
                    "network origin VPC {} accepts no request from {}",
                    access_point.vpc_id.as_deref().unwrap_or("?"),
                    vpc.as_deref().unwrap_or("the notebook's VPC")
                ),
            ));
            out.push(result(hops));
            continue;
        }
        // The policies, each read or the reason it cannot be.
        let identity = nb.identity_policies();
        let endpoint_policy = match &endpoint.policy {
            Some(r) => parsed(r, &format!("{} endpoint policy", endpoint.id)).map(Some),
            None if endpoint.collection_errors.contains_key("policy") => {
                Err("the endpoint policy was not collected".to_string())
            }
            None => Ok(None),
        };
        let ap_policy = match (
            &access_point.policy,
            access_point.collection_errors.get("policy"),
        ) {
            (_, Some(e)) => Err(format!("the access point policy was not collected: {e}")),
            (Some(r), None) => {
                parsed(r, &format!("{} access point policy", access_point.name)).map(Some)
            }
            (None, None) => Ok(None),
        };
        let bucket_account = access_point.bucket_account.clone().unwrap_or_else(|| {
            access_point
                .arn
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_string()
        });
        let bucket = nb
            .snapshot
            .accounts
            .get(&bucket_account)
            .and_then(|a| a.s3_buckets.get(&access_point.bucket));
        let bucket_policy = match bucket {
            None => Err(format!(
                "bucket {} of {bucket_account} was not collected",
                access_point.bucket
            )),
            Some(b) => match (&b.policy, b.collection_errors.get("policy")) {
                (_, Some(e)) => Err(format!("the bucket policy was not collected: {e}")),
                (Some(r), None) => parsed(r, &format!("{} bucket policy", b.name)).map(Some),
                (None, None) => Ok(None),
            },
        };
        let (identity, endpoint_policy, ap_policy, bucket_policy) =
            match (identity, endpoint_policy, ap_policy, bucket_policy) {
                (Ok(i), Ok(e), Ok(a), Ok(b)) => (i, e, a, b),
                (i, e, a, b) => {
                    let why = reasons([i.err(), e.err(), a.err(), b.err()]);
                    hops.push(hop(
                        "policies",
                        &access_point.arn,
                        HopDecision::NotEvaluated,
                        why,
                    ));
                    out.push(result(hops));
                    continue;
                }
            };
        let (role_arn, identity) = identity;
        let role_name = role_arn.rsplit('/').next().unwrap_or("role");
        let principal_text = format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/SageMaker",
            role_arn.split(':').nth(4).unwrap_or_default()
        );
        let Ok(principal) = RequestPrincipal::parse(&principal_text) else {
            hops.push(hop(
                "identity_policy",
                &role_arn,
                HopDecision::NotEvaluated,
                format!("{role_arn} is not a role ARN"),
            ));
            out.push(result(hops));
            continue;
        };
        let mut request = Request::new(principal, action, &resource);
        through_endpoint(&mut request, endpoint);
        nb.organization_context(&mut request, Some(ap_account));
        request
            .context
            .add("s3:AccessPointNetworkOrigin", &access_point.network_origin);
        let open_identity = Policy::allow_all("(any other layer)", false);
        let open_resource = Policy::allow_all("(any other layer)", true);
        let identity_refs: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
        let endpoint_refs: Vec<&Policy> = endpoint_policy.iter().map(Arc::as_ref).collect();
        let layers = |identity: Vec<&Policy>,
                      endpoint: Vec<&Policy>,
                      ap: Option<&Policy>,
                      bucket_policy: Option<&Policy>| {
            evaluate_via_access_point(
                &request,
                &AccessPointLayers {
                    identity,
                    endpoint,
                    access_point: ap,
                    bucket_policy,
                    bucket: access_point.bucket.clone(),
                    bucket_account: bucket_account.clone(),
                },
            )
        };
        // Each layer alone (the others open), in path order: the first that refuses is named.
        let endpoint_alone = layers(
            vec![&open_identity],
            endpoint_refs.clone(),
            Some(&open_resource),
            Some(&open_resource),
        );
        let identity_alone = layers(
            identity_refs.clone(),
            Vec::new(),
            Some(&open_resource),
            Some(&open_resource),
        );
        let ap_alone = layers(
            vec![&open_identity],
            Vec::new(),
            ap_policy.as_deref(),
            Some(&open_resource),
        );
        let bucket_alone = layers(
            vec![&open_identity],
            Vec::new(),
            Some(&open_resource),
            bucket_policy.as_deref(),
        );
        let all = layers(
            identity_refs.clone(),
            endpoint_refs,
            ap_policy.as_deref(),
            bucket_policy.as_deref(),
        );
        // Defence in depth of "only through the access point": a request straight to the
        // bucket (no access point in it) must be refused by the role's policies and by the
        // bucket policy, each on its own.
        if action == "s3:GetObject" {
            let mut direct = Request::new(
                request.principal.clone(),
                "s3:GetObject",
                &format!("arn:aws:s3:::{}/xscan-path-probe", access_point.bucket),
            );
            direct.resource_account = Some(bucket_account.clone());
            through_endpoint(&mut direct, endpoint);
            nb.organization_context(&mut direct, Some(&bucket_account));
            let by_identity = evaluate(
                &direct,
                &PolicySet {
                    identity: identity_refs.clone(),
                    resource: Some((&open_resource, crate::policy::PolicyKind::Resource)),
                    endpoint: Vec::new(),
                },
            );
            let by_bucket = evaluate(
                &direct,
                &PolicySet {
                    identity: vec![&open_identity],
                    resource: bucket_policy
                        .as_deref()
                        .map(|p| (p, crate::policy::PolicyKind::Resource)),
                    endpoint: Vec::new(),
                },
            );
            layered.push(layer_result(
                nb,
                "only through the access point (a request straight to the bucket is refused)",
                vec![
                    decision_hop("identity_policy", &role_arn, &by_identity),
                    decision_hop(
                        "bucket",
                        &format!("arn:aws:s3:::{}", access_point.bucket),
                        &by_bucket,
                    ),
                ],
            ));
        }
        hops.push(decision_hop("vpc_endpoint", &endpoint.id, &endpoint_alone));
        hops.push(decision_hop("identity_policy", &role_arn, &identity_alone));
        hops.push(decision_hop("access_point", &access_point.arn, &ap_alone));
        let bucket_arn = format!("arn:aws:s3:::{}", access_point.bucket);
        hops.push(decision_hop("bucket", &bucket_arn, &bucket_alone));
        hops.extend(nb.organization_hops(&request, Some(ap_account)));
        if answer_of(&hops) == Answer::Allowed && all.decision != Decision::Allowed {
            // Layers that allow alone but not together (an explicit Deny that only a
            // combination triggers, or a grant that needs two sides).
            hops.push(decision_hop("all_layers", &access_point.arn, &all));
        }
        // S3 User Guide, "Blocking public access": with RestrictPublicBuckets on, a resource
        // whose policy is public is reachable only by AWS service principals and principals of
        // the owner's account — a consumer account's role is refused, whatever grants it.
        let cross_account = role_arn.split(':').nth(4) != Some(ap_account);
        let restricted =
            |block: Option<&crate::model::PublicAccessBlock>, policy: Option<&Policy>, kind| {
                block.is_some_and(|b| b.restrict_public_buckets)
                    && policy.is_some_and(|p| !crate::policy::analysis::not_public(p, kind).passed)
            };
        if cross_account && answer_of(&hops) == Answer::Allowed {
            if restricted(
                access_point.public_access_block.as_ref(),
                ap_policy.as_deref(),
                crate::policy::PolicyKind::AccessPoint,
            ) {
                hops.push(hop("access_point", &access_point.arn, HopDecision::Refuses,
                    "the access point policy is public and its Block Public Access has RestrictPublicBuckets on: only the owner account's principals and AWS services get in".into()));
            } else if restricted(
                bucket.and_then(|b| b.public_access_block.as_ref()),
                bucket_policy.as_deref(),
                crate::policy::PolicyKind::Resource,
            ) {
                hops.push(hop("bucket", &bucket_arn, HopDecision::Refuses,
                    "the bucket policy is public and the bucket's Block Public Access has RestrictPublicBuckets on: only the owner account's principals and AWS services get in".into()));
            }
        }
        out.push(result(hops));
    }
    out.extend(layered);
    out
}

fn egress(nb: &Notebook<'_>) -> Vec<PathResult> {
    let mut out = Vec::new();
    let result = |question: String, hops: Vec<Hop>| PathResult {
        notebook: nb.names[0].clone(),
        account: nb.names[1].clone(),
        region: nb.names[2].clone(),
        kind: "egress",
        question,
        answer: answer_of(&hops),
        hops,
    };
    // 1. SageMaker's own internet access bypasses the VPC altogether.
    let direct = match (
        nb.notebook.collection_errors.get("direct_internet_access"),
        nb.notebook.direct_internet_access.as_deref(),
    ) {
        (Some(e), _) => hop(
            "notebook",
            &nb.notebook.name,
            HopDecision::NotEvaluated,
            format!("direct_internet_access could not be collected: {e}"),
        ),
        (None, Some("Disabled")) => hop(
            "notebook",
            &nb.notebook.name,
            HopDecision::Refuses,
            "direct internet access is disabled".into(),
        ),
        (None, other) => hop(
            "notebook",
            &nb.notebook.name,
            HopDecision::Passes,
            format!(
                "direct internet access is {} (SageMaker's network, around the VPC)",
                other.unwrap_or("not set (SageMaker's default: Enabled)")
            ),
        ),
    };
    out.push(result("direct internet access".into(), vec![direct]));
    // 2. Out of the VPC: security group egress beyond S3, and a default route.
    if let Some(gap) = nb.population_gaps(&[
        crate::model::ResourceType::Subnet,
        crate::model::ResourceType::SecurityGroup,
        crate::model::ResourceType::RouteTable,
        crate::model::ResourceType::PrefixList,
    ]) {
        out.push(result(
            "out of the VPC, around the S3 endpoint".into(),
            vec![gap],
        ));
    } else if let Some(error) = ["subnet_id", "security_groups"]
        .iter()
        .find_map(|f| nb.notebook.collection_errors.get(*f).map(|e| (f, e)))
    {
        out.push(result(
            "out of the VPC, around the S3 endpoint".into(),
            vec![hop(
                "notebook",
                &nb.notebook.name,
                HopDecision::NotEvaluated,
                format!("{} could not be collected: {}", error.0, error.1),
            )],
        ));
    } else if let Some(subnet) = nb.notebook.subnet_id.as_deref() {
        let s3_lists = nb.s3_prefix_lists();
        let mut sg_hop = hop(
            "security_group",
            &nb.notebook.security_groups.join(","),
            HopDecision::Refuses,
            "every egress rule goes to the S3 prefix list".into(),
        );
        for id in &nb.notebook.security_groups {
            match nb.region.security_groups.get(id) {
                None => {
                    sg_hop = hop(
                        "security_group",
                        id,
                        HopDecision::NotEvaluated,
                        format!("security group {id} was not collected"),
                    )
                }
                Some(g) => {
                    if let Some(rule) = g.egress.iter().find(|r| {
                        !(&*r.target_type == "prefix_list" && s3_lists.contains(&&*r.target))
                    }) {
                        sg_hop = hop(
                            "security_group",
                            id,
                            HopDecision::Passes,
                            format!(
                                "egress to {} {} (protocol {}, ports {:?}-{:?})",
                                rule.target_type,
                                rule.target,
                                rule.protocol,
                                rule.from_port,
                                rule.to_port
                            ),
                        );
                        break;
                    }
                }
            }
        }
        let route_hop = match nb.lookups.route_table(subnet) {
            Err(why) => hop("route_table", subnet, HopDecision::NotEvaluated, why),
            Ok(t) => match t.routes.iter().find(|r| {
                is_default_route(r.destination_cidr.as_deref())
                    && r.state.as_deref() != Some("blackhole")
            }) {
                Some(r) => hop(
                    "route_table",
                    &t.id,
                    HopDecision::Passes,
                    format!(
                        "default route {} to {} {}",
                        r.destination_cidr.as_deref().unwrap_or(""),
                        r.target_type,
                        r.target
                    ),
                ),
                None => hop(
                    "route_table",
                    &t.id,
                    HopDecision::Refuses,
                    "no default route out of the VPC".into(),
                ),
            },
        };
        // Both must let traffic through; the refusing ones are the layers that hold.
        let mut hops = vec![sg_hop, route_hop];
        hops.sort_by_key(|h| match h.decision {
            HopDecision::Refuses => 0,
            HopDecision::NotEvaluated => 1,
            HopDecision::Passes => 2,
        });
        out.push(result(
            "out of the VPC, around the S3 endpoint".into(),
            hops,
        ));
    }
    // 3. Through the endpoint to S3 of another account: the role's policies and the endpoint
    //    policy decide (the other account's bucket policy is its owner's, assumed open).
    let (mut hops, endpoint) = nb.network_hops();
    if endpoint.is_none() && answer_of(&hops) == Answer::NotEvaluated {
        out.push(result(
            "s3:PutObject to a bucket of another account, through the endpoint".into(),
            hops.clone(),
        ));
    }
    if let Some(endpoint) = endpoint {
        match (
            nb.identity_policies(),
            endpoint
                .policy
                .as_ref()
                .map(|r| parsed(r, &format!("{} endpoint policy", endpoint.id)))
                .transpose(),
        ) {
            (Ok((role_arn, identity)), Ok(endpoint_policy)) => {
                let role_name = role_arn.rsplit('/').next().unwrap_or("role");
                let account = role_arn.split(':').nth(4).unwrap_or_default();
                let open_resource = Policy::allow_all("(any other layer)", true);
                let identity_refs: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
                let endpoint_refs: Vec<&Policy> = endpoint_policy.iter().map(Arc::as_ref).collect();
                let mut worst: Option<(Evaluation, Evaluation, Vec<Hop>, String)> = None;
                for action in ["s3:PutObject", "s3:GetObject"] {
                    let resource = "arn:aws:s3:::xscan-outside-bucket/xscan-probe";
                    let Ok(principal) = RequestPrincipal::parse(&format!(
                        "arn:aws:sts::{account}:assumed-role/{role_name}/SageMaker"
                    )) else {
                        continue;
                    };
                    let mut request = Request::new(principal, action, resource);
                    request.resource_account = Some("999999999999".into());
                    through_endpoint(&mut request, endpoint);
                    // A bucket of another organization.
                    request.context.add(
                        "aws:ResourceOrgID",
                        crate::policy::organization::OUTSIDE_ORG_ID,
                    );
                    request.context.add(
                        "aws:ResourceOrgPaths",
                        &format!("{}/r-0000/", crate::policy::organization::OUTSIDE_ORG_ID),
                    );
                    nb.organization_context(&mut request, None);
                    let via_endpoint = evaluate(
                        &request,
                        &PolicySet {
                            identity: vec![&Policy::allow_all("(any other layer)", false)],
                            resource: Some((&open_resource, crate::policy::PolicyKind::Resource)),
                            endpoint: endpoint_refs.clone(),
                        },
                    );
                    let via_identity = evaluate(
                        &request,
                        &PolicySet {
                            identity: identity_refs.clone(),
                            resource: Some((&open_resource, crate::policy::PolicyKind::Resource)),
                            endpoint: Vec::new(),
                        },
                    );
                    let organization = nb.organization_hops(&request, None);
                    let allowed = via_endpoint.decision == Decision::Allowed
                        && via_identity.decision == Decision::Allowed
                        && organization
                            .iter()
                            .all(|h| h.decision == HopDecision::Passes);
                    if worst.is_none() || allowed {
                        worst =
                            Some((via_identity, via_endpoint, organization, action.to_string()));
                        if allowed {
                            break;
                        }
                    }
                }
                if let Some((identity_e, endpoint_e, organization, action)) = worst {
                    let mut pair = vec![
                        decision_hop("identity_policy", &role_arn, &identity_e),
                        decision_hop("vpc_endpoint", &endpoint.id, &endpoint_e),
                    ];
                    pair.extend(organization);
                    pair.sort_by_key(|h| match h.decision {
                        HopDecision::Refuses => 0,
                        HopDecision::NotEvaluated => 1,
                        HopDecision::Passes => 2,
                    });
                    hops.extend(pair);
                    out.push(result(
                        format!("{action} to a bucket of another account, through the endpoint"),
                        hops,
                    ));
                }
            }
            (identity, endpoint_policy) => {
                let why = reasons([identity.err(), endpoint_policy.err()]);
                hops.push(hop(
                    "policies",
                    &endpoint.id,
                    HopDecision::NotEvaluated,
                    why,
                ));
                out.push(result(
                    "s3:PutObject to a bucket of another account, through the endpoint".into(),
                    hops,
                ));
            }
        }
    }
    out
}

/// The paths as rules keep them: the detail of hops that let the request through is dropped
/// (`xscan paths` shows it); what decided, and every hop's layer, resource and decision stay.
/// A large estate's scan then holds a few hundred bytes per notebook, not kilobytes.
pub fn compact(mut results: Vec<PathResult>) -> Vec<PathResult> {
    for result in &mut results {
        for hop in &mut result.hops {
            if hop.decision == HopDecision::Passes && hop.layer != "notebook" {
                hop.detail = String::new();
            }
        }
        result.hops.shrink_to_fit();
    }
    results
}

/// What every notebook's paths are checked against: the configured access points found in
/// the snapshot, and those that are not. Made once; a notebook's paths are then found alone
/// ([`Perimeter::paths_of`]), so an evaluation can hold them for one notebook at a time.
pub struct Perimeter<'a> {
    snapshot: &'a Snapshot,
    config: &'a Config,
    access_points: Vec<&'a S3AccessPoint>,
    missing: Vec<&'a String>,
    /// The regions of the consumer accounts, the only ones whose notebooks have paths:
    /// (account, region) -> the region and its lookups.
    regions: HashMap<(&'a str, &'a str), (&'a RegionSnapshot, RegionLookups<'a>)>,
}

impl<'a> Perimeter<'a> {
    pub fn new(snapshot: &'a Snapshot, config: &'a Config) -> Self {
        let access_points: Vec<&S3AccessPoint> = config
            .perimeter
            .access_points
            .iter()
            .filter_map(|arn| {
                let account = arn.split(':').nth(4)?;
                let region = arn.split(':').nth(3)?;
                snapshot
                    .accounts
                    .get(account)?
                    .regions
                    .get(region)?
                    .s3_access_points
                    .values()
                    .find(|ap| &ap.arn == arn)
            })
            .collect();
        let missing: Vec<&String> = config
            .perimeter
            .access_points
            .iter()
            .filter(|arn| !access_points.iter().any(|ap| &&ap.arn == arn))
            .collect();
        let mut perimeter = Self {
            snapshot,
            config,
            access_points,
            missing,
            regions: HashMap::new(),
        };
        for (account, a) in &snapshot.accounts {
            if perimeter.is_consumer(account) {
                for (region_name, region) in &a.regions {
                    perimeter.regions.insert(
                        (account, region_name),
                        (region, RegionLookups::new(region_name, region)),
                    );
                }
            }
        }
        perimeter
    }

    /// Is `account` a consumer account (by the snapshot's role, else the configuration's)?
    fn is_consumer(&self, account: &str) -> bool {
        let role = self.snapshot.accounts.get(account).and_then(|a| a.role);
        role.or(self.config.account_role(account)) == Some(AccountRole::Consumer)
    }

    /// The paths of one notebook (the snapshot's key `name` in `account` and `region`); none
    /// for a notebook outside the consumer accounts or the snapshot.
    pub fn paths_of(&self, account: &str, region: &str, name: &str) -> Vec<PathResult> {
        let Some((&(account, region_name), (region, lookups))) =
            self.regions.get_key_value(&(account, region))
        else {
            return Vec::new();
        };
        match region.sagemaker_notebooks.get(name) {
            Some(notebook) => notebook_paths(
                &self.notebook(account, region_name, region, lookups, notebook),
                self,
            ),
            None => Vec::new(),
        }
    }

    fn notebook<'s>(
        &'s self,
        account: &'a str,
        region_name: &'a str,
        region: &'a RegionSnapshot,
        lookups: &'s RegionLookups<'a>,
        notebook: &'a NotebookInstance,
    ) -> Notebook<'s> {
        Notebook {
            lookups,
            account,
            region_name,
            region,
            notebook,
            snapshot: self.snapshot,
            names: [
                notebook.name.as_str().into(),
                account.into(),
                region_name.into(),
            ],
        }
    }
}

/// Every path of every notebook of the consumer accounts (or of the one named).
pub fn analyze(snapshot: &Snapshot, config: &Config, only: Option<&str>) -> Vec<PathResult> {
    let perimeter = Perimeter::new(snapshot, config);
    // The notebooks, in snapshot order, shared out to one worker per core.
    let mut notebooks = Vec::new();
    for (account, a) in &snapshot.accounts {
        for region_name in a.regions.keys() {
            // Only the consumer accounts' regions are the perimeter's.
            let Some((region, lookups)) = perimeter.regions.get(&(account, region_name)) else {
                continue;
            };
            for notebook in region.sagemaker_notebooks.values() {
                if only.is_none_or(|n| n == notebook.name) {
                    notebooks.push(perimeter.notebook(
                        account,
                        region_name,
                        region,
                        lookups,
                        notebook,
                    ));
                }
            }
        }
    }
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = notebooks.len().div_ceil(workers).max(1);
    let perimeter = &perimeter;
    std::thread::scope(|scope| {
        let handles: Vec<_> = notebooks
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .flat_map(|nb| notebook_paths(nb, perimeter))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Every path of one notebook.
fn notebook_paths(nb: &Notebook<'_>, perimeter: &Perimeter<'_>) -> Vec<PathResult> {
    let (access_points, missing) = (&perimeter.access_points, &perimeter.missing);
    let mut out = Vec::new();
    let snapshot = nb.snapshot;
    for ap in access_points {
        out.extend(intended(nb, ap));
    }
    // A configured access point that is not in the snapshot: gone (the pattern is
    // broken) when its region's listing succeeded, unknown when it failed.
    for arn in missing {
        let mut parts = arn.split(':');
        let (ap_region, ap_account) = (parts.nth(3), parts.next());
        let gap = ap_account.and_then(|a| {
            snapshot
                .population_gaps(crate::model::ResourceType::S3AccessPoint, a, ap_region)
                .first()
                .map(|g| {
                    format!(
                        "the access points of {a} could not be listed ({}:{}: {})",
                        g.service, g.api_call, g.error
                    )
                })
        });
        let collected = ap_account.is_some_and(|a| snapshot.accounts.contains_key(a));
        let (decision, detail) = match (gap, collected) {
            (Some(why), _) => (HopDecision::NotEvaluated, why),
            (None, false) => (
                HopDecision::NotEvaluated,
                "its account was not collected".to_string(),
            ),
            (None, true) => (
                HopDecision::Refuses,
                "the access point does not exist".to_string(),
            ),
        };
        let hops = vec![hop("access_point", arn, decision, detail)];
        out.push(PathResult {
            notebook: nb.names[0].clone(),
            account: nb.names[1].clone(),
            region: nb.names[2].clone(),
            kind: "intended",
            question: format!("s3:GetObject through {arn}"),
            answer: answer_of(&hops),
            hops,
        });
    }
    let egress_paths = egress(nb);
    // Defence in depth, from the egress answers: which layers hold each property.
    for (property, question, layers) in [
        (
            "only the data account's resources (through the endpoint)",
            "s3:PutObject to a bucket of another account",
            ["identity_policy", "vpc_endpoint"],
        ),
        (
            "no way out of the VPC around the endpoint",
            "out of the VPC",
            ["security_group", "route_table"],
        ),
    ] {
        if let Some(path) = egress_paths
            .iter()
            .find(|p| p.question.starts_with(question))
        {
            let hops: Vec<Hop> = path
                .hops
                .iter()
                .filter(|h| layers.contains(&h.layer))
                .cloned()
                .collect();
            let hops = if hops.is_empty() {
                path.hops.clone()
            } else {
                hops
            };
            out.push(layer_result(nb, property, hops));
        }
    }
    out.extend(egress_paths);
    out
}
