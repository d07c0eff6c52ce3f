//! Bucket policies: delegation to the owner's access points, and TLS-only access.

use super::*;

/// Does a bucket policy delegate access control to the access points of `owner` and grant
/// nothing else? Every Allow must be pinned by `s3:DataAccessPointAccount` = owner (or
/// `s3:DataAccessPointArn` to owner's access points).
pub fn delegates_to_access_points(policy: &Policy, owner: &str) -> Verdict {
    let mut failures = Vec::new();
    let mut passes = Vec::new();
    for statement in allows(policy) {
        let label = statement.label();
        let delegation = statement.conditions.iter().find(|c| {
            (pins_key(c, "s3:dataaccesspointaccount")
                && c.operator.base == BaseOperator::StringEquals
                && c.values.iter().all(|v| v == owner))
                || (pins_key(c, "s3:dataaccesspointarn")
                    && c.values.iter().all(|v| {
                        is_fixed(c, v)
                            && v.split(':').nth(4) == Some(owner)
                            && v.contains(":accesspoint/")
                    }))
        });
        match delegation {
            Some(clause) => passes.push(format!("{label}: delegated to access points by {}", describe_clause(clause))),
            None => failures.push(format!(
                "{label}: grants access that is not delegated to {owner}'s access points (no s3:DataAccessPointAccount = {owner} condition)"
            )),
        }
    }
    if passes.is_empty() && failures.is_empty() {
        failures.push(format!(
            "no statement delegates access control to {owner}'s access points"
        ));
    }
    Verdict::new(failures, passes)
}

/// Does the bucket policy explicitly deny requests that are not over TLS? Checked by evaluating
/// probe requests with `aws:SecureTransport = false` from another account, the owner account
/// and an anonymous caller, for reads, writes and listing.
pub fn denies_insecure_transport(policy: &Policy, bucket: &str, owner: &str) -> Verdict {
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let object_arn = format!("{bucket_arn}/xscan-probe-object");
    let probes = [
        ("s3:GetObject", object_arn.as_str()),
        ("s3:PutObject", object_arn.as_str()),
        ("s3:ListBucket", bucket_arn.as_str()),
    ];
    let principals = [
        format!("arn:aws:iam::{owner}:role/xscan-probe"),
        "arn:aws:iam::000000000000:role/xscan-probe".to_string(),
        "anonymous".to_string(),
    ];
    let mut failures = Vec::new();
    for principal in &principals {
        let Ok(parsed) = RequestPrincipal::parse(principal) else {
            continue;
        };
        for (action, resource) in probes {
            let mut context = RequestContext::default();
            context.add("aws:SecureTransport", "false");
            let request = Request {
                principal: parsed.clone(),
                action: action.into(),
                resource: resource.into(),
                resource_account: Some(owner.into()),
                context,
            };
            let set = PolicySet {
                resource: Some((policy, PolicyKind::Resource)),
                ..Default::default()
            };
            let outcome = evaluate(&request, &set);
            if outcome.decision != Decision::ExplicitlyDenied {
                failures.push(format!(
                    "{action} on {resource} by {principal} over plain HTTP: {} (expected an explicit Deny)",
                    outcome.decision
                ));
            }
        }
    }
    Verdict::new(
        failures,
        vec!["requests with aws:SecureTransport = false are explicitly denied".into()],
    )
}
