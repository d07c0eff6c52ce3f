//! The network side of the perimeter: endpoint policies restricted to the data account (or the
//! scanned organization), and not the default full-access policy.

use super::*;

/// Keys that name the account owning the resource.
const RESOURCE_ACCOUNT_KEYS: &[&str] = &["aws:resourceaccount", "s3:resourceaccount"];

/// Is an S3 resource pattern within `account`: its access points, buckets known to be its own,
/// or a configured exception (e.g. AWS-owned buckets)?
fn s3_resource_within(
    resource: &str,
    account: &str,
    known_buckets: &[String],
    exceptions: &[String],
) -> bool {
    let pattern = Pattern::glob(resource);
    if exceptions
        .iter()
        .any(|e| Pattern::glob(e).subsumes(&pattern))
    {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "s3", region, acct, rest] if *acct == account && !region.is_empty() => {
            let region_fixed = !region.contains(['*', '?']);
            rest.strip_prefix("accesspoint/").is_some_and(|ap| {
                region_fixed
                    && !ap.is_empty()
                    && !ap.split('/').next().unwrap_or("*").contains(['*', '?'])
            })
        }
        ["arn", _, "s3", "", "", rest] => {
            let bucket = rest.split('/').next().unwrap_or_default();
            known_buckets.iter().any(|b| b == bucket)
        }
        _ => false,
    }
}

/// Does an endpoint policy only allow resources owned by `account`? Passes when every Allow is
/// pinned by a positive `StringEquals` on `aws:ResourceAccount` / `s3:ResourceAccount` within
/// the account, or names only that account's access points, its known buckets or exceptions —
/// or when a Deny with `StringNotEquals` on those keys fences every request.
pub fn restricted_to_account(
    policy: &Policy,
    account: &str,
    known_buckets: &[String],
    exceptions: &[String],
) -> Verdict {
    restricted_to_account_or_organization(policy, account, known_buckets, exceptions, None)
}

/// [`restricted_to_account`], where a condition on `aws:ResourceOrgID` equal to the scanned
/// `organization` also fences (AWS's data perimeter guidance restricts endpoint policies to
/// the organization's resources: "Building a data perimeter on AWS", resource perimeter).
pub fn restricted_to_account_or_organization(
    policy: &Policy,
    account: &str,
    known_buckets: &[String],
    exceptions: &[String],
    organization: Option<&str>,
) -> Verdict {
    // The clause restricts to the account, or to the organization: (key, value) it pins.
    let pins = |c: &ConditionClause| -> Option<String> {
        if RESOURCE_ACCOUNT_KEYS.contains(&c.key_lower.as_str())
            && c.values.iter().all(|v| v == account)
        {
            return Some(account.to_string());
        }
        let org = organization.filter(|o| !o.is_empty())?;
        (c.key_lower == "aws:resourceorgid" && c.values.iter().all(|v| v == org))
            .then(|| format!("the scanned organization {org}"))
    };
    let fence = policy.statements.iter().find(|s| {
        s.effect == Effect::Deny
            && s.principal
                .as_ref()
                .is_some_and(|b| !b.negated && b.entries.iter().any(is_wildcard_principal))
            && !s.action.negated
            && s.action
                .items
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case("s3:*"))
            && s.resource
                .as_ref()
                .is_none_or(|r| !r.negated && r.items.iter().any(|i| i == "*"))
            && s.conditions.len() == 1
            && s.conditions.iter().all(|c| {
                pins(c).is_some()
                    && matches!(c.operator.base, BaseOperator::StringNotEquals)
                    && c.operator.set.is_none()
            })
    });
    if let Some(fence) = fence {
        return Verdict::new(
            Vec::new(),
            vec![format!(
                "{}: Deny unless {} equals {}",
                fence.label(),
                fence.conditions[0].key,
                pins(&fence.conditions[0]).unwrap_or_default()
            )],
        );
    }
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    for statement in allows(policy) {
        let label = statement.label();
        let pinned = statement.conditions.iter().find_map(|c| {
            (c.operator.base == BaseOperator::StringEquals
                && !c.operator.if_exists
                && c.operator.set.is_none())
            .then(|| pins(c).map(|to| (c, to)))
            .flatten()
        });
        if let Some((clause, to)) = pinned {
            passes.push(format!(
                "{label}: restricted to {to} by {}",
                describe_clause(clause)
            ));
            continue;
        }
        match &statement.resource {
            Some(r) if !r.negated => {
                let outside: Vec<&String> = r
                    .items
                    .iter()
                    .filter(|item| !s3_resource_within(item, account, known_buckets, exceptions))
                    .collect();
                if outside.is_empty() {
                    passes.push(format!(
                        "{label}: resources {:?} belong to {account} or are allowed exceptions",
                        r.items
                    ));
                } else {
                    let loose: Vec<String> = statement
                        .conditions
                        .iter()
                        .filter(|c| RESOURCE_ACCOUNT_KEYS.contains(&c.key_lower.as_str()))
                        .map(describe_clause)
                        .collect();
                    let note = if loose.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; its condition {} does not restrict it to {account}",
                            loose.join(", ")
                        )
                    };
                    failures.push(format!(
                        "{label}: allows resources not owned by {account}: {outside:?}{note}"
                    ));
                }
            }
            Some(_) => failures.push(format!(
                "{label}: Allow with NotResource reaches resources of any account"
            )),
            None => failures.push(format!(
                "{label}: Allow without Resource reaches resources of any account"
            )),
        }
    }
    if passes.is_empty() && failures.is_empty() {
        passes.push("the policy allows nothing".into());
    }
    Verdict::new(failures, passes)
}

/// Fails when the policy holds an unconditioned Allow of every action on every resource to
/// everyone — the default full-access endpoint policy — and no Deny of the same policy fences
/// it. Whether a Deny fences it is asked of the evaluator: probe requests (read, write, list,
/// by a role of an unrelated account, on a bucket of yet another account) must all be allowed
/// for the policy to be full access, so this analysis and `restricted_to_account` cannot
/// disagree about an Allow-all fenced by `Deny ... StringNotEquals aws:ResourceAccount`.
pub fn not_full_access(policy: &Policy) -> Verdict {
    // Everything else on the path allows, so that the endpoint policy alone decides.
    let identity = Policy::allow_all("probe identity", false);
    let bucket = Policy::allow_all("probe bucket", true);
    let mut refused = Vec::new();
    for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
        let Ok(principal) = RequestPrincipal::parse("arn:aws:iam::123456789012:role/xscan-probe")
        else {
            continue;
        };
        let mut request = Request::new(principal, action, "arn:aws:s3:::xscan-probe-bucket/key");
        request.resource_account = Some("210987654321".into());
        let set = PolicySet {
            identity: vec![&identity],
            resource: Some((&bucket, PolicyKind::Resource)),
            endpoint: vec![policy],
        };
        let evaluation = evaluate(&request, &set);
        if evaluation.decision != Decision::Allowed {
            refused.push(format!(
                "{action} on another account's bucket: {} ({})",
                evaluation.decision, evaluation.reason
            ));
        }
    }
    if !refused.is_empty() {
        return Verdict::new(
            Vec::new(),
            vec![format!(
                "not every request is allowed: {}",
                refused.join("; ")
            )],
        );
    }
    let full: Vec<String> = allows(policy)
        .filter(|s| {
            s.principal
                .as_ref()
                .is_none_or(|b| !b.negated && b.entries.iter().any(is_wildcard_principal))
                && !s.action.negated
                && s.action.items.iter().any(|a| a == "*")
                && s.resource
                    .as_ref()
                    .is_none_or(|r| !r.negated && r.items.iter().any(|i| i == "*"))
                && s.conditions.is_empty()
        })
        .map(|s| {
            format!(
                "{}: allows every action on every resource to everyone, unconditionally",
                s.label()
            )
        })
        .collect();
    Verdict::new(
        full,
        vec!["no statement allows everything unconditionally".into()],
    )
}
