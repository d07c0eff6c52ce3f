//! EC2: VPCs, subnets, route tables, security groups, VPC endpoints and managed prefix lists of
//! one region, the six listings concurrently.

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use crate::model::{
    CollectionGap, PolicyRecord, PrefixList, RegionSnapshot, ResourceType, Route, RouteTable,
    SecurityGroup, SecurityGroupRule, Subnet, Vpc, VpcEndpoint,
};

use super::{Calls, error_text, listing_gap};

/// One listing's outcome: resources, or the gap that replaces them.
type Listing<T> = Result<BTreeMap<String, T>, CollectionGap>;

/// The network of one region.
pub(crate) struct Network {
    vpcs: Listing<Vpc>,
    subnets: Listing<Subnet>,
    route_tables: Listing<RouteTable>,
    security_groups: Listing<SecurityGroup>,
    vpc_endpoints: Listing<VpcEndpoint>,
    prefix_lists: Listing<PrefixList>,
}

impl Network {
    /// Moves the listings into the region snapshot; returns the gaps.
    pub(crate) fn apply(self, region: &mut RegionSnapshot) -> Vec<CollectionGap> {
        fn take<T>(listing: Listing<T>, gaps: &mut Vec<CollectionGap>) -> BTreeMap<String, T> {
            listing.unwrap_or_else(|gap| {
                gaps.push(gap);
                BTreeMap::new()
            })
        }
        let mut gaps = Vec::new();
        region.vpcs = take(self.vpcs, &mut gaps);
        region.subnets = take(self.subnets, &mut gaps);
        region.route_tables = take(self.route_tables, &mut gaps);
        region.security_groups = take(self.security_groups, &mut gaps);
        region.vpc_endpoints = take(self.vpc_endpoints, &mut gaps);
        region.prefix_lists = take(self.prefix_lists, &mut gaps);
        gaps
    }
}

/// Pages through a paginator, one counted call per page.
macro_rules! pages {
    ($calls:expr, $action:literal, $paginator:expr, $page:ident => $body:block, $gap:expr) => {{
        let mut stream = $paginator.send();
        loop {
            match $calls.run($action, stream.next()).await {
                None => break Ok(()),
                Some(Ok($page)) => $body,
                Some(Err(e)) => break Err($gap(error_text(&e))),
            }
        }
    }};
}

pub(crate) async fn collect(
    sdk: &SdkConfig,
    calls: &Calls,
    account: &str,
    region: &str,
) -> Network {
    let client = aws_sdk_ec2::Client::from_conf(
        super::client_config!(aws_sdk_ec2, sdk, calls, "ec2").build(),
    );
    let gap = |api: &'static str, t: ResourceType| {
        move |error: String| listing_gap(account, Some(region), "ec2", api, &[t], error)
    };
    let vpcs = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeVpcs", client.describe_vpcs().into_paginator(), page => {
            for v in page.vpcs() {
                let id = v.vpc_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a VPC without an id")); }
                out.insert(id.clone(), Vpc { id, cidr_block: v.cidr_block().map(str::to_string), is_default: v.is_default().unwrap_or(false) });
            }
        }, gap("DescribeVpcs", ResourceType::Vpc));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeVpcs", ResourceType::Vpc)(p)),
            (Ok(()), None) => Ok(out),
        }
    };
    let subnets = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeSubnets", client.describe_subnets().into_paginator(), page => {
            for s in page.subnets() {
                let id = s.subnet_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a subnet without an id")); }
                out.insert(id.clone(), Subnet {
                    id,
                    vpc_id: s.vpc_id().unwrap_or_default().to_string(),
                    cidr_block: s.cidr_block().map(str::to_string),
                    availability_zone: s.availability_zone().map(str::to_string),
                    map_public_ip_on_launch: match s.map_public_ip_on_launch() {
                        Some(flag) => flag,
                        None => {
                            problem = Some(super::incomplete("a subnet without MapPublicIpOnLaunch"));
                            false
                        }
                    },
                });
            }
        }, gap("DescribeSubnets", ResourceType::Subnet));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeSubnets", ResourceType::Subnet)(p)),
            (Ok(()), None) => Ok(out),
        }
    };
    let route_tables = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeRouteTables", client.describe_route_tables().into_paginator(), page => {
            for t in page.route_tables() {
                let id = t.route_table_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a route table without an id")); }
                out.insert(id.clone(), RouteTable {
                    id,
                    vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                    main: t.associations().iter().any(|a| a.main().unwrap_or(false)),
                    subnet_ids: t.associations().iter().filter_map(|a| a.subnet_id().map(str::to_string)).collect(),
                    routes: t.routes().iter().map(route).collect(),
                });
            }
        }, gap("DescribeRouteTables", ResourceType::RouteTable));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeRouteTables", ResourceType::RouteTable)(p)),
            (Ok(()), None) => Ok(out),
        }
    };
    let security_groups = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeSecurityGroups", client.describe_security_groups().into_paginator(), page => {
            for g in page.security_groups() {
                let id = g.group_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a security group without an id")); }
                out.insert(id.clone(), SecurityGroup {
                    id,
                    name: g.group_name().map(Into::into),
                    vpc_id: g.vpc_id().unwrap_or_default().into(),
                    ingress: g.ip_permissions().iter().flat_map(rules).collect(),
                    egress: g.ip_permissions_egress().iter().flat_map(rules).collect(),
                });
            }
        }, gap("DescribeSecurityGroups", ResourceType::SecurityGroup));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeSecurityGroups", ResourceType::SecurityGroup)(
                p,
            )),
            (Ok(()), None) => Ok(out),
        }
    };
    let vpc_endpoints = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeVpcEndpoints", client.describe_vpc_endpoints().into_paginator(), page => {
            for e in page.vpc_endpoints() {
                let id = e.vpc_endpoint_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a VPC endpoint without an id")); }
                let name = format!("{id} endpoint policy");
                out.insert(id.clone(), VpcEndpoint {
                    id,
                    vpc_id: e.vpc_id().unwrap_or_default().to_string(),
                    service_name: e.service_name().unwrap_or_default().to_string(),
                    endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    state: e.state().map(|s| s.as_str().to_string()),
                    route_table_ids: e.route_table_ids().to_vec(),
                    policy: e.policy_document().map(|p| PolicyRecord::from_raw(&name, p)),
                    collection_errors: Default::default(),
                });
            }
        }, gap("DescribeVpcEndpoints", ResourceType::VpcEndpoint));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeVpcEndpoints", ResourceType::VpcEndpoint)(p)),
            (Ok(()), None) => Ok(out),
        }
    };
    let prefix_lists = async {
        let mut out = BTreeMap::new();
        let mut problem: Option<String> = None;
        let listed: Result<(), CollectionGap> = pages!(calls, "ec2:DescribeManagedPrefixLists", client.describe_managed_prefix_lists().into_paginator(), page => {
            for p in page.prefix_lists() {
                let id = p.prefix_list_id().unwrap_or_default().to_string();
                if id.is_empty() { problem = Some(super::incomplete("a prefix list without an id")); }
                out.insert(id.clone(), PrefixList {
                    id,
                    name: p.prefix_list_name().unwrap_or_default().to_string(),
                    owner_id: p.owner_id().map(str::to_string),
                });
            }
        }, gap("DescribeManagedPrefixLists", ResourceType::PrefixList));
        match (listed, problem) {
            (Err(gap), _) => Err(gap),
            (Ok(()), Some(p)) => Err(gap("DescribeManagedPrefixLists", ResourceType::PrefixList)(
                p,
            )),
            (Ok(()), None) => Ok(out),
        }
    };
    let (vpcs, subnets, route_tables, security_groups, vpc_endpoints, prefix_lists) = tokio::join!(
        vpcs,
        subnets,
        route_tables,
        security_groups,
        vpc_endpoints,
        prefix_lists
    );
    Network {
        vpcs,
        subnets,
        route_tables,
        security_groups,
        vpc_endpoints,
        prefix_lists,
    }
}

fn route(r: &aws_sdk_ec2::types::Route) -> Route {
    let (target, target_type) = if let Some(g) = r.gateway_id() {
        let kind = if g == "local" {
            "local"
        } else if g.starts_with("igw-") {
            "internet_gateway"
        } else if g.starts_with("vpce-") {
            "vpc_endpoint"
        } else if g.starts_with("vgw-") {
            "virtual_private_gateway"
        } else {
            "other"
        };
        (g.to_string(), kind)
    } else if let Some(t) = r.nat_gateway_id() {
        (t.to_string(), "nat_gateway")
    } else if let Some(t) = r.egress_only_internet_gateway_id() {
        (t.to_string(), "egress_only_internet_gateway")
    } else if let Some(t) = r.transit_gateway_id() {
        (t.to_string(), "transit_gateway")
    } else if let Some(t) = r.vpc_peering_connection_id() {
        (t.to_string(), "peering_connection")
    } else if let Some(t) = r.network_interface_id() {
        (t.to_string(), "network_interface")
    } else if let Some(t) = r.instance_id() {
        (t.to_string(), "instance")
    } else {
        (String::new(), "other")
    };
    Route {
        destination_cidr: r.destination_cidr_block().map(str::to_string),
        destination_ipv6_cidr: r.destination_ipv6_cidr_block().map(str::to_string),
        destination_prefix_list_id: r.destination_prefix_list_id().map(str::to_string),
        target,
        target_type: target_type.to_string(),
        state: r.state().map(|s| s.as_str().to_string()),
    }
}

/// One rule per target, as the rules read them.
fn rules(p: &aws_sdk_ec2::types::IpPermission) -> Vec<SecurityGroupRule> {
    let rule = |target_type: &str, target: &str| SecurityGroupRule {
        protocol: p.ip_protocol().unwrap_or("-1").into(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        target_type: target_type.into(),
        target: target.into(),
    };
    let mut out = Vec::new();
    out.extend(
        p.ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .map(|c| rule("cidr_ipv4", c)),
    );
    out.extend(
        p.ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6())
            .map(|c| rule("cidr_ipv6", c)),
    );
    out.extend(
        p.prefix_list_ids()
            .iter()
            .filter_map(|r| r.prefix_list_id())
            .map(|c| rule("prefix_list", c)),
    );
    out.extend(
        p.user_id_group_pairs()
            .iter()
            .filter_map(|r| r.group_id())
            .map(|c| rule("security_group", c)),
    );
    out
}
