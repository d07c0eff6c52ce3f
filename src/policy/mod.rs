//! IAM policy semantics: parsing and normalization of policy documents, request evaluation as
//! AWS documents it, and the analyses the rule pack calls (public grants, endpoint perimeter,
//! access point delegation, allowed actions, trust).

pub mod analysis;
pub mod condition;
#[cfg(test)]
mod consistency;
pub mod document;
pub mod eval;
pub mod organization;
pub mod principal;
pub mod wildcard;

pub use condition::{RequestContext, Truth};
pub use document::{Effect, Policy, PolicyKind, PolicyVersion, PrincipalEntry, Statement};
pub use eval::{
    AccessPointLayers, Decision, Evaluation, Organization, PolicySet, Request, StatementRef,
    evaluate, evaluate_in, evaluate_via_access_point, evaluate_via_access_point_in,
};
pub use principal::RequestPrincipal;

/// An invalid policy document or evaluation input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    message: String,
}

impl PolicyError {
    /// A problem in document `document`, optionally in one statement.
    pub fn new(document: &str, statement: Option<usize>, problem: impl Into<String>) -> Self {
        let location = match statement {
            Some(index) => format!("policy `{document}`, statement {index}"),
            None => format!("policy `{document}`"),
        };
        Self {
            message: format!(
                "{location}: {}\nhelp: IAM policy grammar is described in the IAM User Guide, \"IAM JSON policy element reference\"",
                problem.into()
            ),
        }
    }

    /// A problem with evaluation input (the message carries its own help line).
    pub fn input(message: String) -> Self {
        Self { message }
    }
}

#[cfg(test)]
mod fuzz {
    //! Nothing panics on any input: arbitrary JSON shaped like policies goes through the parser,
    //! the evaluator and every analysis.
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            prop::sample::select(vec![
                "*",
                "s3:*",
                "s3:GetObject",
                "Allow",
                "Deny",
                "2012-10-17",
                "2008-10-17",
                "aws:SourceVpce",
                "arn:aws:s3:::b/*",
                "111111111111",
                "${aws:username}",
                "${*}",
                "a?b",
                "true",
                "10.0.0.0/8",
                "arn:aws:iam::111111111111:root",
                "StringEquals",
                "ForAllValues:StringLikeIfExists",
                "Null",
            ])
            .prop_map(|s| Value::String(s.to_string())),
            ".{0,12}".prop_map(Value::String),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "Version",
            "Statement",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
            "Sid",
            "AWS",
            "Service",
            "StringEquals",
            "StringNotEquals",
            "ArnLike",
            "IpAddress",
            "Bool",
            "DateLessThan",
            "NumericEquals",
            "aws:ResourceAccount",
            "x",
        ]);
        scalar().prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|pairs| Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_evaluator_and_analyses_never_panic(doc in json(), text in ".{0,40}") {
            let _ = Policy::parse_text("fuzz", &text);
            if let Ok(policy) = Policy::from_value("fuzz", &doc) {
                for principal in ["anonymous", "arn:aws:iam::111111111111:role/r", "111111111111", "sagemaker.amazonaws.com"] {
                    let mut request = Request::new(RequestPrincipal::parse(principal).unwrap(), "s3:GetObject", "arn:aws:s3:::b/k");
                    request.context.add("aws:SourceIp", "10.1.2.3");
                    request.context.add("aws:username", "u");
                    for kind in [PolicyKind::Resource, PolicyKind::Endpoint, PolicyKind::AccessPoint] {
                        let set = PolicySet { identity: vec![&policy], resource: Some((&policy, kind)), endpoint: vec![&policy] };
                        let _ = evaluate(&request, &set);
                    }
                }
                let _ = analysis::not_public(&policy, PolicyKind::Resource);
                let _ = analysis::restricted_to_account(&policy, "222222222222", &["b".into()], &["arn:aws:s3:::x*".into()]);
                let _ = analysis::delegates_to_access_points(&policy, "222222222222");
                let _ = analysis::denies_insecure_transport(&policy, "b", "222222222222");
                let _ = analysis::grants_only_principals(&policy, &["arn:aws:iam::1:role/r".into()], true);
                let _ = analysis::trusts_only_service(&policy, "sagemaker.amazonaws.com");
                let _ = analysis::s3_only_via_access_points(&[&policy], &["arn:aws:s3:us-east-1:2:accesspoint/a".into()]);
                let _ = analysis::no_admin_wildcards(&[&policy]);
                let _ = analysis::actions_within(&policy, &["s3:Get*".into()]);
                let _ = analysis::resources_within(&policy, &["*".into()]);
                let _ = analysis::not_full_access(&policy);
            }
        }
    }
}
