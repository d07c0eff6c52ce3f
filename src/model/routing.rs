//! Which route table routes a subnet, as AWS decides it: the table explicitly associated with
//! the subnet, else its VPC's main table. AWS allows one of each: a subnet has at most one
//! association, a VPC one main table
//! (<https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#subnet-route-tables>).
//! A snapshot that names more (edited by hand, or read while an association was replaced
//! between two pages of `DescribeRouteTables`) has no answer, and [`Routing`] says so instead
//! of picking one: the rule index and the perimeter paths both ask it, so they cannot disagree.

use std::collections::HashMap;

use super::{RegionSnapshot, RouteTable};

/// A region's route tables by the subnets they are associated with and by the VPCs they are
/// the main table of, each list in snapshot order.
#[derive(Debug, Default)]
pub struct Routing<'a> {
    subnets: HashMap<&'a str, &'a str>,
    subnet_tables: HashMap<&'a str, Vec<&'a RouteTable>>,
    main_tables: HashMap<&'a str, Vec<&'a RouteTable>>,
}

/// Why the route table of a subnet is not known: the tables it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousRouting<'a> {
    pub tables: Vec<&'a str>,
    pub why: String,
}

impl<'a> Routing<'a> {
    pub fn new(region: &'a RegionSnapshot) -> Self {
        let mut routing = Self::default();
        for (id, subnet) in &region.subnets {
            routing.subnets.insert(id, &subnet.vpc_id);
        }
        for table in region.route_tables.values() {
            for subnet in &table.subnet_ids {
                routing.subnet_tables.entry(subnet).or_default().push(table);
            }
            if table.main {
                routing
                    .main_tables
                    .entry(&table.vpc_id)
                    .or_default()
                    .push(table);
            }
        }
        routing
    }

    /// The route table that routes `subnet`: `Ok(None)` when none was collected (nor the
    /// subnet, for its VPC's main table).
    pub fn table_of_subnet(
        &self,
        subnet: &str,
    ) -> Result<Option<&'a RouteTable>, AmbiguousRouting<'a>> {
        let ids = |tables: &[&'a RouteTable]| tables.iter().map(|t| t.id.as_str()).collect();
        match self.subnet_tables.get(subnet).map(Vec::as_slice) {
            Some([table]) => return Ok(Some(table)),
            Some(tables @ [_, _, ..]) => {
                let tables: Vec<&str> = ids(tables);
                return Err(AmbiguousRouting {
                    why: format!(
                        "subnet {subnet} is associated with route tables {}; AWS allows a subnet one association, so which one routes it is not known",
                        tables.join(", ")
                    ),
                    tables,
                });
            }
            _ => {}
        }
        let Some(vpc) = self.subnets.get(subnet) else {
            return Ok(None);
        };
        match self.main_tables.get(vpc).map(Vec::as_slice) {
            Some([table]) => Ok(Some(table)),
            Some(tables @ [_, _, ..]) => {
                let tables: Vec<&str> = ids(tables);
                Err(AmbiguousRouting {
                    why: format!(
                        "VPC {vpc} of subnet {subnet} has main route tables {}; AWS allows a VPC one, so which one routes the subnet is not known",
                        tables.join(", ")
                    ),
                    tables,
                })
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(tables: serde_json::Value) -> RegionSnapshot {
        serde_json::from_value(serde_json::json!({
            "subnets": {"subnet-1": {"id": "subnet-1", "vpc_id": "vpc-1"}},
            "route_tables": tables,
        }))
        .unwrap()
    }

    fn table(id: &str, subnets: &[&str], main: bool) -> serde_json::Value {
        serde_json::json!({"id": id, "vpc_id": "vpc-1", "subnet_ids": subnets, "main": main, "routes": []})
    }

    /// An explicit association wins over the main table; without one, the main table routes
    /// the subnet (<https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html>).
    #[test]
    fn a_subnet_is_routed_by_its_association_else_by_the_main_table() {
        let both = region(serde_json::json!({
            "rtb-main": table("rtb-main", &[], true),
            "rtb-own": table("rtb-own", &["subnet-1"], false),
        }));
        let routing = Routing::new(&both);
        assert_eq!(
            routing.table_of_subnet("subnet-1").unwrap().unwrap().id,
            "rtb-own"
        );
        let main_only = region(serde_json::json!({"rtb-main": table("rtb-main", &[], true)}));
        let routing = Routing::new(&main_only);
        assert_eq!(
            routing.table_of_subnet("subnet-1").unwrap().unwrap().id,
            "rtb-main"
        );
        assert_eq!(routing.table_of_subnet("subnet-unknown"), Ok(None));
    }

    /// Two associations of one subnet, or two main tables of one VPC, leave the subnet's
    /// routing unknown, with both tables named.
    #[test]
    fn two_tables_for_one_subnet_are_not_an_answer() {
        let twice = region(serde_json::json!({
            "rtb-a": table("rtb-a", &["subnet-1"], false),
            "rtb-b": table("rtb-b", &["subnet-1"], false),
        }));
        let routing = Routing::new(&twice);
        let ambiguous = routing.table_of_subnet("subnet-1").unwrap_err();
        assert_eq!(ambiguous.tables, ["rtb-a", "rtb-b"]);
        assert!(
            ambiguous.why.contains("subnet subnet-1"),
            "{}",
            ambiguous.why
        );
        let two_mains = region(serde_json::json!({
            "rtb-a": table("rtb-a", &[], true),
            "rtb-b": table("rtb-b", &[], true),
        }));
        let routing = Routing::new(&two_mains);
        let ambiguous = routing.table_of_subnet("subnet-1").unwrap_err();
        assert_eq!(ambiguous.tables, ["rtb-a", "rtb-b"]);
        assert!(ambiguous.why.contains("VPC vpc-1"), "{}", ambiguous.why);
    }
}
