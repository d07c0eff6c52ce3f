//! Who a resource policy grants: public by S3's definition, and grants to expected principals only.

use super::*;

/// Condition keys that make a wildcard grant non-public when pinned to fixed values (S3 User
/// Guide, "Blocking public access: the meaning of public").
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:sourceip",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

/// Does a clause restrict a wildcard principal by S3's definition? In an access point policy
/// S3 does not count `s3:DataAccessPoint*` as restricting.
fn restricts_by_s3_definition(clause: &ConditionClause, kind: PolicyKind) -> bool {
    let key = clause.key_lower.as_str();
    if !RESTRICTING_KEYS.contains(&key) || !pins_key(clause, key) {
        return false;
    }
    if kind == PolicyKind::AccessPoint && key.starts_with("s3:dataaccesspoint") {
        return false;
    }
    clause.values.iter().all(|v| {
        is_fixed(clause, v)
            && (key != "aws:sourceip"
                || v.parse::<ipnet::IpNet>()
                    .map_or(v.parse::<std::net::IpAddr>().is_ok(), |net| match net {
                        // Very wide ranges are public in all but name.
                        ipnet::IpNet::V4(n) => n.prefix_len() >= 8,
                        ipnet::IpNet::V6(n) => n.prefix_len() >= 32,
                    }))
    })
}
/// Is the policy public by S3's definition? Passes when it is not. Only Allow statements grant;
/// `Principal: "*"` inside a Deny is not a grant.
pub fn not_public(policy: &Policy, kind: PolicyKind) -> Verdict {
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    for statement in allows(policy) {
        let label = statement.label();
        let Some(block) = &statement.principal else {
            continue;
        };
        let restricting: Vec<String> = statement
            .conditions
            .iter()
            .filter(|c| restricts_by_s3_definition(c, kind))
            .map(describe_clause)
            .collect();
        let wildcard = block.negated || block.entries.iter().any(is_wildcard_principal);
        if !wildcard {
            passes.push(format!("{label}: grants only named principals"));
        } else if !restricting.is_empty() {
            passes.push(format!(
                "{label}: wildcard principal restricted by {}",
                restricting.join(", ")
            ));
        } else if block.negated {
            failures.push(format!(
                "{label}: Allow with NotPrincipal grants everyone not listed"
            ));
        } else {
            let unrestricting: Vec<String> =
                statement.conditions.iter().map(describe_clause).collect();
            failures.push(if unrestricting.is_empty() {
                format!("{label}: grants Principal \"*\" with no condition")
            } else {
                format!(
                    "{label}: grants Principal \"*\"; its conditions do not restrict it to fixed values ({})",
                    unrestricting.join(", ")
                )
            });
        }
    }
    if passes.is_empty() && failures.is_empty() {
        passes.push("no Allow statement grants any principal".into());
    }
    Verdict::new(failures, passes)
}

/// Does the policy grant only `expected` principals (role ARNs)? A wildcard principal counts
/// only when pinned by `aws:PrincipalArn` to expected ARNs. With `require_all`, every expected
/// principal must also be granted.
pub fn grants_only_principals(policy: &Policy, expected: &[String], require_all: bool) -> Verdict {
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    let mut granted: Vec<String> = Vec::new();
    for statement in allows(policy) {
        let label = statement.label();
        let Some(block) = &statement.principal else {
            failures.push(format!("{label}: Allow without a Principal"));
            continue;
        };
        if block.negated {
            failures.push(format!(
                "{label}: Allow with NotPrincipal grants everyone not listed"
            ));
            continue;
        }
        for entry in &block.entries {
            match entry {
                PrincipalEntry::Aws(arn) if expected.contains(arn) => {
                    granted.push(arn.clone());
                    passes.push(format!("{label}: grants expected principal {arn}"));
                }
                wildcard if is_wildcard_principal(wildcard) => {
                    let pinned: Vec<&ConditionClause> = statement
                        .conditions
                        .iter()
                        .filter(|c| {
                            pins_key(c, "aws:principalarn")
                                && c.values
                                    .iter()
                                    .all(|v| is_fixed(c, v) && expected.contains(v))
                        })
                        .collect();
                    if pinned.is_empty() {
                        failures.push(format!("{label}: grants Principal \"*\" (everyone)"));
                    } else {
                        for clause in pinned {
                            granted.extend(clause.values.iter().cloned());
                            passes.push(format!(
                                "{label}: Principal \"*\" pinned by {}",
                                describe_clause(clause)
                            ));
                        }
                    }
                }
                PrincipalEntry::Aws(value) => {
                    let what = if let Some(account) = account_of_entry(value) {
                        format!("the whole account {account}")
                    } else if !value.starts_with("arn:") {
                        format!(
                            "`{value}`, a unique id (a deleted principal) or an unexpected value"
                        )
                    } else {
                        format!("{value}, which is not an expected principal")
                    };
                    failures.push(format!("{label}: grants {what}"));
                }
                PrincipalEntry::Service(s)
                | PrincipalEntry::Federated(s)
                | PrincipalEntry::CanonicalUser(s) => {
                    failures.push(format!(
                        "{label}: grants {s}, which is not an expected principal"
                    ));
                }
                PrincipalEntry::Everyone => {
                    failures.push(format!("{label}: grants Principal \"*\" (everyone)"))
                }
            }
        }
    }
    if require_all {
        for principal in expected {
            if !granted.contains(principal) {
                failures.push(format!("expected principal {principal} is not granted"));
            }
        }
    }
    if passes.is_empty() && failures.is_empty() {
        passes.push("the policy grants nothing".into());
    }
    Verdict::new(failures, passes)
}
