//! Identity and trust policies: allowed actions and resources, S3 only through access points,
//! no administrator wildcards, trust in one service only.

use super::*;

/// Are all allowed actions within `allowed` (patterns, case-insensitive)?
pub fn actions_within(policy: &Policy, allowed: &[String]) -> Verdict {
    let allowed: Vec<Pattern> = allowed
        .iter()
        .map(|a| Pattern::glob(&a.to_lowercase()))
        .collect();
    let mut failures = Vec::new();
    for statement in allows(policy) {
        if statement.action.negated {
            failures.push(format!(
                "{}: Allow with NotAction allows actions outside the allowed list",
                statement.label()
            ));
            continue;
        }
        for action in &statement.action.items {
            let pattern = Pattern::glob(&action.to_lowercase());
            if !allowed.iter().any(|a| a.subsumes(&pattern)) {
                failures.push(format!(
                    "{}: allows `{action}`, which is not an allowed action",
                    statement.label()
                ));
            }
        }
    }
    Verdict::new(
        failures,
        vec!["every allowed action is in the allowed list".into()],
    )
}

/// Are all resources of Allow statements within `allowed` (patterns, case-sensitive)?
pub fn resources_within(policy: &Policy, allowed: &[String]) -> Verdict {
    let patterns: Vec<Pattern> = allowed.iter().map(|a| Pattern::glob(a)).collect();
    let mut failures = Vec::new();
    for statement in allows(policy) {
        match &statement.resource {
            Some(r) if !r.negated => {
                for item in &r.items {
                    let item_pattern = Pattern::glob(item);
                    if !patterns.iter().any(|a| a.subsumes(&item_pattern)) {
                        // A glob is shown as its text (`Pattern`'s Display gives it back).
                        failures.push(format!(
                            "{}: allows resource `{item}` outside {allowed:?}",
                            statement.label(),
                        ));
                    }
                }
            }
            _ => failures.push(format!(
                "{}: Allow with NotResource or no Resource",
                statement.label()
            )),
        }
    }
    Verdict::new(
        failures,
        vec!["every resource is within the allowed resources".into()],
    )
}

/// Can an action pattern (lowercased) match some action of `service`?
fn reaches_service(action: &str, service: &str) -> bool {
    let prefix = format!("{service}:");
    if action.starts_with(&prefix) {
        return true;
    }
    let literal_head: String = action
        .chars()
        .take_while(|c| *c != '*' && *c != '?')
        .collect();
    literal_head.len() < action.len() && prefix.starts_with(&literal_head)
}

fn statement_reaches_service(statement: &Statement, service: &str) -> bool {
    if statement.action.negated {
        // NotAction reaches the service unless it excludes all of it.
        return !statement.action.items.iter().any(|a| {
            Pattern::glob(&a.to_lowercase()).subsumes(&Pattern::glob(&format!("{service}:*")))
        });
    }
    statement
        .action
        .items
        .iter()
        .any(|a| reaches_service(&a.to_lowercase(), service))
}

/// Do the policies reach S3 only through the given access points? Every Allow that can match
/// an S3 action must name only those access points (and their objects), or be pinned to them
/// by `s3:DataAccessPointArn`.
pub fn s3_only_via_access_points(policies: &[&Policy], access_points: &[String]) -> Verdict {
    let allowed: Vec<Pattern> = access_points
        .iter()
        .flat_map(|ap| [Pattern::glob(ap), Pattern::glob(&format!("{ap}/object/*"))])
        .collect();
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    for policy in policies {
        for statement in allows(policy).filter(|s| statement_reaches_service(s, "s3")) {
            let label = format!("{} {}", policy.name, statement.label());
            let pinned = statement.conditions.iter().find(|c| {
                pins_key(c, "s3:dataaccesspointarn")
                    && c.values.iter().all(|v| {
                        is_fixed(c, v) && allowed.iter().any(|a| a.subsumes(&Pattern::literal(v)))
                    })
            });
            if let Some(clause) = pinned {
                passes.push(format!("{label}: pinned by {}", describe_clause(clause)));
                continue;
            }
            match &statement.resource {
                Some(r) if !r.negated => {
                    let outside: Vec<&String> = r
                        .items
                        .iter()
                        .filter(|item| !allowed.iter().any(|a| a.subsumes(&Pattern::glob(item))))
                        .collect();
                    if outside.is_empty() {
                        passes.push(format!("{label}: S3 only through {:?}", r.items));
                    } else {
                        failures.push(format!("{label}: reaches S3 resources other than the access points: {outside:?}"));
                    }
                }
                _ => failures.push(format!(
                    "{label}: reaches S3 with NotResource or no Resource"
                )),
            }
        }
    }
    if passes.is_empty() && failures.is_empty() {
        passes.push("no statement allows S3 actions".into());
    }
    Verdict::new(failures, passes)
}

/// No Allow of `*`, of a whole service (`svc:*`), or with NotAction.
pub fn no_admin_wildcards(policies: &[&Policy]) -> Verdict {
    let mut failures = Vec::new();
    for policy in policies {
        for statement in allows(policy) {
            let label = format!("{} {}", policy.name, statement.label());
            if statement.action.negated {
                failures.push(format!(
                    "{label}: Allow with NotAction grants every action not listed"
                ));
                continue;
            }
            for action in &statement.action.items {
                if action == "*"
                    || action
                        .split_once(':')
                        .is_some_and(|(_, name)| name.chars().all(|c| c == '*'))
                {
                    failures.push(format!(
                        "{label}: allows `{action}`, a service-wide or admin wildcard"
                    ));
                }
            }
        }
    }
    Verdict::new(
        failures,
        vec!["no admin or service-wide wildcard actions".into()],
    )
}

/// Does the trust policy let only `service` assume the role?
pub fn trusts_only_service(policy: &Policy, service: &str) -> Verdict {
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    let assume_actions = [
        "sts:assumerole",
        "sts:assumerolewithwebidentity",
        "sts:assumerolewithsaml",
    ];
    for statement in allows(policy) {
        let label = statement.label();
        let reaches = if statement.action.negated {
            true
        } else {
            statement.action.items.iter().any(|a| {
                let p = Pattern::glob(&a.to_lowercase());
                assume_actions.iter().any(|x| p.matches(x))
            })
        };
        if !reaches {
            continue;
        }
        let Some(block) = &statement.principal else {
            failures.push(format!("{label}: trust statement without Principal"));
            continue;
        };
        if block.negated {
            failures.push(format!(
                "{label}: NotPrincipal in a trust policy admits everyone not listed"
            ));
            continue;
        }
        for entry in &block.entries {
            match entry {
                PrincipalEntry::Service(s) if s.eq_ignore_ascii_case(service) => {
                    passes.push(format!("{label}: trusts {s}"));
                }
                PrincipalEntry::Everyone => {
                    failures.push(format!("{label}: trusts everyone (Principal \"*\")"))
                }
                PrincipalEntry::Aws(v) if is_account_id(v) || account_of_entry(v).is_some() => {
                    failures.push(format!("{label}: trusts the whole account {v}"))
                }
                PrincipalEntry::Aws(v)
                | PrincipalEntry::Service(v)
                | PrincipalEntry::Federated(v)
                | PrincipalEntry::CanonicalUser(v) => {
                    failures.push(format!("{label}: trusts {v}, not only {service}"))
                }
            }
        }
    }
    if failures.is_empty() && passes.is_empty() {
        failures.push(format!("the trust policy does not admit {service}"));
    }
    Verdict::new(failures, passes)
}
