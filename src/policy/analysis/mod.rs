//! The analyses the rule pack calls by name. Each returns a [`Verdict`]: passed or not, with
//! the statements and values that explain it. They rest on the parsed document and, where a
//! question is about what a request would get, on [`super::eval`].

use super::condition::RequestContext;
use super::document::{
    BaseOperator, ConditionClause, Effect, Policy, PolicyKind, PrincipalEntry, SetQualifier,
    Statement,
};
use super::eval::{Decision, PolicySet, Request, evaluate};
use super::principal::{RequestPrincipal, account_of_entry, is_account_id};
use super::wildcard::Pattern;

mod bucket;
mod endpoint;
mod identity;
mod public;

pub use bucket::{delegates_to_access_points, denies_insecure_transport};
pub use endpoint::{not_full_access, restricted_to_account, restricted_to_account_or_organization};
pub use identity::{
    actions_within, no_admin_wildcards, resources_within, s3_only_via_access_points,
    trusts_only_service,
};
pub use public::{grants_only_principals, not_public};

/// The outcome of an analysis and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub passed: bool,
    /// One line per statement or value that decided it.
    pub reasons: Vec<String>,
}

impl Verdict {
    fn new(failures: Vec<String>, passes: Vec<String>) -> Self {
        if failures.is_empty() {
            Self {
                passed: true,
                reasons: passes,
            }
        } else {
            Self {
                passed: false,
                reasons: failures,
            }
        }
    }
}

fn allows(policy: &Policy) -> impl Iterator<Item = &Statement> {
    policy
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
}

/// A positive, non-IfExists comparison that pins `key` to the clause's values (a negated
/// operator, `...IfExists` or `ForAllValues` is true when the key is missing, so it restricts
/// nothing).
fn pins_key(clause: &ConditionClause, key_lower: &str) -> bool {
    clause.key_lower == key_lower
        && !clause.operator.if_exists
        && clause.operator.set != Some(SetQualifier::ForAllValues)
        && matches!(
            clause.operator.base,
            BaseOperator::StringEquals
                | BaseOperator::StringEqualsIgnoreCase
                | BaseOperator::StringLike
                | BaseOperator::ArnEquals
                | BaseOperator::ArnLike
                | BaseOperator::IpAddress
        )
}

/// True when a value is fixed: no wildcard (for operators that glob) and no policy variable.
fn is_fixed(clause: &ConditionClause, value: &str) -> bool {
    let globs = matches!(
        clause.operator.base,
        BaseOperator::StringLike | BaseOperator::ArnEquals | BaseOperator::ArnLike
    );
    !value.contains("${") && !(globs && (value.contains('*') || value.contains('?')))
}

fn describe_clause(clause: &ConditionClause) -> String {
    format!(
        "{} {} = {:?}",
        clause.operator.name, clause.key, clause.values
    )
}

fn is_wildcard_principal(entry: &PrincipalEntry) -> bool {
    match entry {
        PrincipalEntry::Everyone => true,
        PrincipalEntry::Aws(v) | PrincipalEntry::Service(v) | PrincipalEntry::Federated(v) => {
            v.contains('*') || v.contains('?')
        }
        PrincipalEntry::CanonicalUser(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn p(v: Value) -> Policy {
        Policy::from_value("test", &v).unwrap()
    }

    const B: &str = "222222222222";
    const ROLE: &str = "arn:aws:iam::111111111111:role/Exec";
    const AP: &str = "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1";

    fn delegation() -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Delegate", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*",
             "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"],
             "Condition": {"StringEquals": {"s3:DataAccessPointAccount": B}}},
            {"Sid": "TLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    }

    // S3 User Guide, "Configuring IAM policies for using access points": the delegation policy
    // is not public by S3's own definition.
    #[test]
    fn delegation_bucket_policy_is_not_public_and_delegates() {
        let policy = p(delegation());
        assert!(not_public(&policy, PolicyKind::Resource).passed);
        assert!(delegates_to_access_points(&policy, B).passed);
        assert!(!delegates_to_access_points(&policy, "333333333333").passed);
        assert!(denies_insecure_transport(&policy, "test-bucket-1", B).passed);
    }

    #[test]
    fn principal_star_in_deny_is_not_a_grant() {
        let policy = p(
            json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}),
        );
        assert!(not_public(&policy, PolicyKind::Resource).passed);
    }

    // Peers accept StringLike "*" as a restriction; it restricts nothing.
    #[test]
    fn string_like_star_does_not_restrict() {
        let policy = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringLike": {"aws:SourceVpce": "*"}}}]}),
        );
        assert!(!not_public(&policy, PolicyKind::Resource).passed);
        let endpoint = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringLike": {"aws:ResourceAccount": "*"}}}]}),
        );
        assert!(!restricted_to_account(&endpoint, B, &[], &[]).passed);
    }

    #[test]
    fn if_exists_does_not_restrict() {
        let policy = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}}]}),
        );
        assert!(!not_public(&policy, PolicyKind::Resource).passed);
        let endpoint = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"aws:ResourceAccount": B}}}]}),
        );
        assert!(!restricted_to_account(&endpoint, B, &[], &[]).passed);
    }

    #[test]
    fn not_principal_with_allow_is_public() {
        let policy = p(
            json!({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "*"}]}),
        );
        assert!(!not_public(&policy, PolicyKind::Resource).passed);
        assert!(!grants_only_principals(&policy, &[ROLE.into()], false).passed);
    }

    // S3: an access point policy restricted by s3:DataAccessPointArn is still public.
    #[test]
    fn data_access_point_arn_restricts_bucket_not_access_point() {
        let v = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringEquals": {"s3:DataAccessPointArn": AP}}}]});
        assert!(not_public(&p(v.clone()), PolicyKind::Resource).passed);
        assert!(!not_public(&p(v), PolicyKind::AccessPoint).passed);
    }

    // AWS PrivateLink guide and aws-samples/data-perimeter-policy-examples: both perimeter shapes.
    #[test]
    fn endpoint_perimeter_shapes() {
        let positive = p(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceAccount": [B]}}}]}),
        );
        assert!(restricted_to_account(&positive, B, &[], &[]).passed);
        assert!(!restricted_to_account(&positive, "333333333333", &[], &[]).passed);
        let fence = p(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"s3:ResourceAccount": B}}}]}));
        assert!(restricted_to_account(&fence, B, &[], &[]).passed);
        // The same fence is not full access either: the two analyses agree.
        let verdict = not_full_access(&fence);
        assert!(verdict.passed, "{:?}", verdict.reasons);
        let by_resource = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [AP, format!("{AP}/object/*"), "arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"]}]}),
        );
        assert!(restricted_to_account(&by_resource, B, &["test-bucket-1".into()], &[]).passed);
        assert!(!restricted_to_account(&by_resource, B, &[], &[]).passed);
        let with_exception = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": ["arn:aws:s3:::jumpstart-cache-prod-us-east-1/*"]}]}),
        );
        assert!(
            restricted_to_account(
                &with_exception,
                B,
                &[],
                &["arn:aws:s3:::jumpstart-cache-prod-*/*".into()]
            )
            .passed
        );
        let wide = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}),
        );
        assert!(!restricted_to_account(&wide, B, &[], &[]).passed);
        // AWS's data perimeter endpoint policy: resources of the organization. A perimeter when
        // it names the scanned organization, not another one, and not without the organization.
        let by_org = p(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}}}]}),
        );
        assert!(
            restricted_to_account_or_organization(&by_org, B, &[], &[], Some("o-a1b2c3d4e5"))
                .passed
        );
        assert!(
            !restricted_to_account_or_organization(&by_org, B, &[], &[], Some("o-zzzzzzzzzz"))
                .passed
        );
        assert!(!restricted_to_account(&by_org, B, &[], &[]).passed);
        let org_fence = p(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}}}]}));
        assert!(
            restricted_to_account_or_organization(&org_fence, B, &[], &[], Some("o-a1b2c3d4e5"))
                .passed
        );
        assert!(!restricted_to_account_or_organization(&org_fence, B, &[], &[], None).passed);
        assert!(!not_full_access(&wide).passed);
        assert!(not_full_access(&positive).passed);
    }

    #[test]
    fn access_point_grants_only_expected_roles() {
        let good = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": [ROLE]}, "Action": ["s3:GetObject"], "Resource": format!("{AP}/object/*")}]}),
        );
        let expected = vec![ROLE.to_string()];
        assert!(grants_only_principals(&good, &expected, true).passed);
        assert!(
            !grants_only_principals(
                &good,
                &[ROLE.into(), "arn:aws:iam::333333333333:role/Other".into()],
                true
            )
            .passed
        );
        for bad in [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": "111111111111"}),
            json!({"AWS": "arn:aws:iam::111111111111:root"}),
            json!({"AWS": "arn:aws:iam::999999999999:role/Exec"}),
            json!({"AWS": "AROAEXAMPLE123"}),
        ] {
            let policy = p(
                json!({"Statement": [{"Effect": "Allow", "Principal": bad, "Action": "s3:GetObject", "Resource": "*"}]}),
            );
            assert!(
                !grants_only_principals(&policy, &expected, false).passed,
                "{bad}"
            );
        }
        let pinned = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}}]}),
        );
        assert!(grants_only_principals(&pinned, &expected, true).passed);
        assert!(actions_within(&good, &["s3:GetObject".into(), "s3:ListBucket".into()]).passed);
        let mixed_case = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "S3:getobject", "Resource": format!("{AP}/object/*")}]}),
        );
        assert!(actions_within(&mixed_case, &["s3:GetObject".into()]).passed);
        let wider = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:Get*", "Resource": format!("{AP}/object/*")}]}),
        );
        assert!(!actions_within(&wider, &["s3:GetObject".into()]).passed);
        assert!(resources_within(&good, &[AP.into(), format!("{AP}/object/*")]).passed);
    }

    #[test]
    fn role_policies() {
        let inline = p(
            json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [AP, format!("{AP}/object/*")]},
                                            {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}),
        );
        assert!(s3_only_via_access_points(&[&inline], &[AP.into()]).passed);
        assert!(no_admin_wildcards(&[&inline]).passed);
        let direct = p(
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::test-bucket-1/*"}]}),
        );
        assert!(!s3_only_via_access_points(&[&direct], &[AP.into()]).passed);
        let star = p(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        assert!(!s3_only_via_access_points(&[&star], &[AP.into()]).passed);
        assert!(!no_admin_wildcards(&[&star]).passed);
        let service_wide =
            p(json!({"Statement": {"Effect": "Allow", "Action": "S3:*", "Resource": AP}}));
        assert!(!no_admin_wildcards(&[&service_wide]).passed);
        let not_action =
            p(json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}));
        assert!(!s3_only_via_access_points(&[&not_action], &[AP.into()]).passed);
    }

    #[test]
    fn trust_policy() {
        let good = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        );
        assert!(trusts_only_service(&good, "sagemaker.amazonaws.com").passed);
        let extra = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"], "AWS": "arn:aws:iam::333333333333:root"}, "Action": "sts:AssumeRole"}]}),
        );
        assert!(!trusts_only_service(&extra, "sagemaker.amazonaws.com").passed);
        let other = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        );
        assert!(!trusts_only_service(&other, "sagemaker.amazonaws.com").passed);
    }
}
