//! The analyses agree with the evaluator: for policies in the shapes rules meet, whenever an
//! analysis passes a policy, the requests it speaks about are not `Allowed` by
//! [`super::evaluate`] (issue "Verdicts that agree with AWS", item 1). Every disagreement
//! found is a bug in one of the two; each is kept below as a unit test.
//!
//! `cargo test` runs a bounded number of cases; the long run is
//! `PROPTEST_CASES=200000 cargo test --lib policy::consistency` (README, "Development").

use proptest::prelude::*;
use serde_json::{Value, json};

use super::analysis;
use super::document::{Policy, PolicyKind};
use super::eval::{Decision, PolicySet, Request, evaluate};
use super::principal::RequestPrincipal;

const A: &str = "111111111111";
const B: &str = "222222222222";
const EXEC: &str = "arn:aws:iam::111111111111:role/Exec";
const AP: &str = "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1";

fn principal() -> impl Strategy<Value = Option<(bool, Value)>> {
    prop::option::of((
        prop::bool::weighted(0.1),
        prop::sample::select(vec![
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": A}),
            json!({"AWS": format!("arn:aws:iam::{A}:root")}),
            json!({"AWS": EXEC}),
            json!({"AWS": [EXEC, "arn:aws:iam::333333333333:role/Other"]}),
            json!({"AWS": "arn:aws:iam::333333333333:role/Other"}),
            json!({"Service": "sagemaker.amazonaws.com"}),
            json!({"Service": "ec2.amazonaws.com"}),
        ]),
    ))
}

fn actions() -> impl Strategy<Value = (bool, Value)> {
    (
        prop::bool::weighted(0.1),
        prop::sample::select(vec![
            json!("*"),
            json!("s3:*"),
            json!("s3:GetObject"),
            json!("s3:Get*"),
            json!(["s3:GetObject", "s3:ListBucket"]),
            json!("s3:PutObject"),
            json!("S3:getobject"),
            json!("sts:AssumeRole"),
            json!("sts:*"),
            json!("iam:*"),
        ]),
    )
}

fn resources() -> impl Strategy<Value = Option<(bool, Value)>> {
    prop::option::weighted(
        0.9,
        (
            prop::bool::weighted(0.1),
            prop::sample::select(vec![
                json!("*"),
                json!("arn:aws:s3:::test-bucket-1"),
                json!("arn:aws:s3:::test-bucket-1/*"),
                json!(["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"]),
                json!(AP),
                json!(format!("{AP}/object/*")),
                json!([AP, format!("{AP}/object/*")]),
                json!("arn:aws:s3:::other-bucket/*"),
                json!("arn:aws:s3:::*"),
                json!("arn:aws:s3:us-east-1:333333333333:accesspoint/x/object/*"),
                json!("arn:aws:iam::111111111111:role/*"),
            ]),
        ),
    )
}

fn condition() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.6,
        prop::sample::select(vec![
            json!({"StringEquals": {"aws:ResourceAccount": B}}),
            json!({"StringNotEquals": {"aws:ResourceAccount": B}}),
            json!({"StringEquals": {"s3:ResourceAccount": [B]}}),
            json!({"StringEqualsIfExists": {"aws:ResourceAccount": B}}),
            json!({"StringNotEqualsIfExists": {"s3:ResourceAccount": B}}),
            json!({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/*"}}),
            json!({"ArnEquals": {"aws:PrincipalArn": EXEC}}),
            json!({"StringEquals": {"aws:PrincipalArn": EXEC}}),
            json!({"StringNotEquals": {"aws:PrincipalArn": EXEC}}),
            json!({"StringEquals": {"aws:PrincipalAccount": A}}),
            json!({"StringNotEquals": {"aws:PrincipalAccount": A}}),
            json!({"StringEquals": {"aws:SourceVpce": "vpce-1"}}),
            json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}),
            json!({"StringEquals": {"s3:DataAccessPointAccount": B}}),
            json!({"StringNotEquals": {"s3:DataAccessPointAccount": B}}),
            json!({"ArnLike": {"s3:DataAccessPointArn": AP}}),
            json!({"Null": {"aws:SourceVpce": "false"}}),
            json!({"Null": {"aws:SourceVpce": "true"}}),
            json!({"Bool": {"aws:SecureTransport": "false"}}),
            json!({"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [A, B]}}),
            json!({"ForAllValues:StringEquals": {"aws:ResourceAccount": [B]}}),
            json!({"StringLike": {"aws:ResourceAccount": "2222*"}}),
        ]),
    )
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop::bool::weighted(0.75),
        principal(),
        actions(),
        resources(),
        condition(),
    )
        .prop_map(
            |(allow, principal, (not_action, action), resource, condition)| {
                let mut s = json!({"Effect": if allow { "Allow" } else { "Deny" }});
                if let Some((negated, p)) = principal {
                    s[if negated { "NotPrincipal" } else { "Principal" }] = p;
                }
                s[if not_action { "NotAction" } else { "Action" }] = action;
                if let Some((negated, r)) = resource {
                    s[if negated { "NotResource" } else { "Resource" }] = r;
                }
                if let Some(c) = condition {
                    s["Condition"] = c;
                }
                s
            },
        )
}

/// Whole statements as real perimeters write them (AWS's data-perimeter examples and the seed
/// pattern), so that combinations of them — a fence with an allow-all, a delegation with a
/// TLS deny — come up often.
fn shaped_statement() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}),
        json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
               "Condition": {"StringNotEquals": {"aws:ResourceAccount": B}}}),
        json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
               "Condition": {"StringNotEquals": {"s3:ResourceAccount": [B]}}}),
        json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
               "Condition": {"StringNotEqualsIfExists": {"aws:ResourceAccount": B}}}),
        json!({"Effect": "Allow", "Principal": "*", "Action": "*",
               "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"],
               "Condition": {"StringEquals": {"s3:DataAccessPointAccount": B}}}),
        json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
               "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
        json!({"Effect": "Allow", "Principal": {"AWS": EXEC}, "Action": ["s3:GetObject", "s3:ListBucket"],
               "Resource": [AP, format!("{AP}/object/*")]}),
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": format!("{AP}/object/*"),
               "Condition": {"ArnEquals": {"aws:PrincipalArn": EXEC}}}),
        json!({"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}),
        json!({"Effect": "Deny", "NotPrincipal": {"AWS": EXEC}, "Action": "*", "Resource": "*"}),
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
               "Condition": {"StringEquals": {"aws:PrincipalAccount": A}}}),
    ])
}

fn policy_doc() -> impl Strategy<Value = Value> {
    prop::collection::vec(prop_oneof![3 => statement(), 2 => shaped_statement()], 1..4)
        .prop_map(|statements| json!({"Version": "2012-10-17", "Statement": statements}))
}

fn request(principal: &str, action: &str, resource: &str, owner: &str) -> Request {
    let mut r = Request::new(
        RequestPrincipal::parse(principal).unwrap_or_else(|e| panic!("{e}")),
        action,
        resource,
    );
    r.resource_account = Some(owner.into());
    r
}

/// The requests a passing analysis promises are refused, with what the evaluator said.
fn allowed(requests: &[(Request, PolicySet<'_>)]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|(r, set)| {
            let e = evaluate(r, set);
            (e.decision == Decision::Allowed).then(|| {
                format!(
                    "{} {} on {} is Allowed: {}",
                    r.principal.describe(),
                    r.action,
                    r.resource,
                    e.reason
                )
            })
        })
        .collect()
}

/// Endpoint policy restricted to B: nothing of another account passes the endpoint.
fn restricted_to_account_holds(policy: &Policy) -> Vec<String> {
    if !analysis::restricted_to_account(policy, B, &["test-bucket-1".into()], &[]).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let bucket = Policy::allow_all("open", true);
    let mut probes = Vec::new();
    for who in [
        "arn:aws:sts::111111111111:assumed-role/Exec/nb",
        "arn:aws:iam::111111111111:root",
    ] {
        for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
            for (resource, owner) in [
                ("arn:aws:s3:::other-bucket/k", "333333333333"),
                ("arn:aws:s3:::other-bucket", "333333333333"),
                (
                    "arn:aws:s3:us-east-1:333333333333:accesspoint/x/object/k",
                    "333333333333",
                ),
            ] {
                probes.push((
                    request(who, action, resource, owner),
                    PolicySet {
                        identity: vec![&identity],
                        resource: Some((&bucket, PolicyKind::Resource)),
                        endpoint: vec![policy],
                    },
                ));
            }
        }
    }
    allowed(&probes)
}

/// Not public: an anonymous caller and a stranger get nothing without context.
fn not_public_holds(policy: &Policy, kind: PolicyKind) -> Vec<String> {
    if !analysis::not_public(policy, kind).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in ["anonymous", "arn:aws:iam::999999999999:role/stranger"] {
        for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
            for resource in [
                "arn:aws:s3:::test-bucket-1/k",
                "arn:aws:s3:::test-bucket-1",
                "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1/object/k",
            ] {
                probes.push((
                    request(who, action, resource, B),
                    PolicySet {
                        identity: vec![&identity],
                        resource: Some((policy, kind)),
                        endpoint: Vec::new(),
                    },
                ));
            }
        }
    }
    allowed(&probes)
}

/// Grants only the execution role: nobody else gets anything through the access point.
fn grants_only_principals_holds(policy: &Policy) -> Vec<String> {
    if !analysis::grants_only_principals(policy, &[EXEC.into()], false).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in [
        "anonymous",
        "arn:aws:iam::999999999999:role/stranger",
        "arn:aws:iam::111111111111:role/Other",
        "arn:aws:sts::111111111111:assumed-role/Other/s",
        "arn:aws:iam::111111111111:root",
        "sagemaker.amazonaws.com",
    ] {
        for action in ["s3:GetObject", "s3:PutObject"] {
            probes.push((
                request(who, action, &format!("{AP}/object/k"), B),
                PolicySet {
                    identity: vec![&identity],
                    resource: Some((policy, PolicyKind::AccessPoint)),
                    endpoint: Vec::new(),
                },
            ));
        }
    }
    allowed(&probes)
}

/// Delegates to B's access points: a request straight to the bucket from outside B (no access
/// point in the request) is not granted by the bucket policy.
fn delegates_holds(policy: &Policy) -> Vec<String> {
    if !analysis::delegates_to_access_points(policy, B).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in ["anonymous", "arn:aws:iam::111111111111:role/Exec"] {
        for (action, resource) in [
            ("s3:GetObject", "arn:aws:s3:::test-bucket-1/k"),
            ("s3:ListBucket", "arn:aws:s3:::test-bucket-1"),
            ("s3:PutObject", "arn:aws:s3:::test-bucket-1/k"),
        ] {
            probes.push((
                request(who, action, resource, B),
                PolicySet {
                    identity: vec![&identity],
                    resource: Some((policy, PolicyKind::Resource)),
                    endpoint: Vec::new(),
                },
            ));
        }
    }
    allowed(&probes)
}

/// Trusts only SageMaker: no IAM identity (nor another service) may assume the role.
fn trusts_only_service_holds(policy: &Policy) -> Vec<String> {
    if !analysis::trusts_only_service(policy, "sagemaker.amazonaws.com").passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in [
        "anonymous",
        "arn:aws:iam::999999999999:role/stranger",
        "arn:aws:iam::111111111111:role/Other",
        "arn:aws:iam::111111111111:root",
        "ec2.amazonaws.com",
    ] {
        probes.push((
            request(who, "sts:AssumeRole", EXEC, A),
            PolicySet {
                identity: vec![&identity],
                resource: Some((policy, PolicyKind::Resource)),
                endpoint: Vec::new(),
            },
        ));
    }
    allowed(&probes)
}

/// Actions within GetObject/ListBucket: the access point policy allows no write or delete.
fn actions_within_holds(policy: &Policy) -> Vec<String> {
    if !analysis::actions_within(policy, &["s3:GetObject".into(), "s3:ListBucket".into()]).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in [EXEC, "anonymous"] {
        for action in ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl"] {
            probes.push((
                request(who, action, &format!("{AP}/object/k"), B),
                PolicySet {
                    identity: vec![&identity],
                    resource: Some((policy, PolicyKind::AccessPoint)),
                    endpoint: Vec::new(),
                },
            ));
        }
    }
    allowed(&probes)
}

/// Resources within the access point: the policy allows nothing on another access point or a
/// bucket.
fn resources_within_holds(policy: &Policy) -> Vec<String> {
    let within = [AP.to_string(), format!("{AP}/object/*")];
    if !analysis::resources_within(policy, &within).passed {
        return Vec::new();
    }
    let identity = Policy::allow_all("open", false);
    let mut probes = Vec::new();
    for who in [EXEC, "anonymous"] {
        for resource in [
            "arn:aws:s3:us-east-1:222222222222:accesspoint/other/object/k",
            "arn:aws:s3:::test-bucket-1/k",
        ] {
            probes.push((
                request(who, "s3:GetObject", resource, B),
                PolicySet {
                    identity: vec![&identity],
                    resource: Some((policy, PolicyKind::AccessPoint)),
                    endpoint: Vec::new(),
                },
            ));
        }
    }
    allowed(&probes)
}

/// No admin wildcards: no service is allowed whole (an action nobody names is refused).
fn no_admin_wildcards_holds(policy: &Policy) -> Vec<String> {
    if !analysis::no_admin_wildcards(&[policy]).passed {
        return Vec::new();
    }
    let mut probes = Vec::new();
    for service in ["s3", "iam", "sts", "ec2", "kms"] {
        probes.push((
            request(EXEC, &format!("{service}:XscanProbeAction"), "*", A),
            PolicySet {
                identity: vec![policy],
                resource: None,
                endpoint: Vec::new(),
            },
        ));
    }
    allowed(&probes)
}

/// S3 only through the access point: the role's own policies allow no request straight to a
/// bucket of its account.
fn s3_only_via_access_points_holds(policy: &Policy) -> Vec<String> {
    if !analysis::s3_only_via_access_points(&[policy], &[AP.into()]).passed {
        return Vec::new();
    }
    let mut probes = Vec::new();
    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::own-bucket/k"),
        ("s3:PutObject", "arn:aws:s3:::own-bucket/k"),
        ("s3:ListBucket", "arn:aws:s3:::own-bucket"),
    ] {
        probes.push((
            request(EXEC, action, resource, A),
            PolicySet {
                identity: vec![policy],
                resource: None,
                endpoint: Vec::new(),
            },
        ));
    }
    allowed(&probes)
}

/// Every property, for one generated document; the disagreements found.
fn disagreements(document: &Value) -> Vec<String> {
    let Ok(policy) = Policy::from_value("generated", document) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut check = |name: &str, found: Vec<String>| {
        out.extend(found.into_iter().map(|f| format!("{name} passed, but {f}")));
    };
    // Resource-side analyses only read policies that name principals (AWS requires it).
    let named = policy
        .statements
        .iter()
        .filter(|s| s.principal.is_some())
        .count();
    if named == policy.statements.len() {
        check(
            "restricted_to_account",
            restricted_to_account_holds(&policy),
        );
        // One policy, one answer: a perimeter is not full access.
        let both = analysis::restricted_to_account(&policy, B, &["test-bucket-1".into()], &[])
            .passed
            && !analysis::not_full_access(&policy).passed;
        check(
            "restricted_to_account",
            if both {
                vec!["not_full_access failed (one policy, two answers)".into()]
            } else {
                Vec::new()
            },
        );
        check(
            "not_public(resource)",
            not_public_holds(&policy, PolicyKind::Resource),
        );
        check(
            "not_public(access_point)",
            not_public_holds(&policy, PolicyKind::AccessPoint),
        );
        check(
            "grants_only_principals",
            grants_only_principals_holds(&policy),
        );
        check("delegates_to_access_points", delegates_holds(&policy));
        check("trusts_only_service", trusts_only_service_holds(&policy));
        check("actions_within", actions_within_holds(&policy));
        check("resources_within", resources_within_holds(&policy));
    } else if named == 0 {
        check(
            "s3_only_via_access_points",
            s3_only_via_access_points_holds(&policy),
        );
        check("no_admin_wildcards", no_admin_wildcards_holds(&policy));
    }
    out
}

/// The cases the property found (or that were known) disagreeing before they were fixed.
#[test]
fn disagreements_found_stay_fixed() {
    // An Allow-all endpoint policy fenced by a Deny on aws:ResourceAccount is a perimeter:
    // restricted_to_account passed it while not_full_access flagged it.
    let fenced = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:ResourceAccount": B}}}]});
    assert_eq!(disagreements(&fenced), Vec::<String>::new());
    let policy = Policy::from_value("fenced", &fenced).unwrap_or_else(|e| panic!("{e}"));
    assert!(analysis::not_full_access(&policy).passed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn analyses_agree_with_the_evaluator(document in policy_doc()) {
        let found = disagreements(&document);
        prop_assert!(found.is_empty(), "{}\n{}", serde_json::to_string_pretty(&document).unwrap_or_default(), found.join("\n"));
    }
}
