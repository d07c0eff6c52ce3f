//! Questions about an AWS Organization's perimeter, answered by the evaluator with every other
//! layer opened wide, so that only the layer asked about can refuse:
//! - do the SCPs above an account stop its principals from an action (a guardrail such as
//!   "no notebook with direct internet", a resource perimeter on `aws:ResourceOrgID`)?
//! - do a bucket's policy and the RCPs above its account refuse principals from outside the
//!   organization even when something grants them (an identity perimeter on
//!   `aws:PrincipalOrgID`)?
//!
//! Each probe is one request per (action, context); the answer holds only when every request is
//! refused, is broken when one is allowed, and is unknown when the evaluator cannot decide.

use std::collections::BTreeMap;

use super::eval::{Decision, Evaluation, Organization, PolicySet, Request, evaluate_in};
use super::{Policy, PolicyKind, RequestPrincipal};

/// The answer to a perimeter question, with the requests that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every request was refused.
    Holds(Vec<String>),
    /// At least one request was allowed (those are listed).
    Broken(Vec<String>),
    /// The evaluator could not decide one request (and none was allowed).
    Unknown(Vec<String>),
}

/// One request of a probe: the action, the resource, and context keys (a key left out is
/// absent from the request, which is how a principal or resource outside any organization
/// looks).
#[derive(Debug, Clone)]
pub struct ProbeRequest<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a BTreeMap<String, String>,
}

/// An organization id no organization has: the probes' "another organization".
pub const OUTSIDE_ORG_ID: &str = "o-xscanoutside00";

fn describe(request: &ProbeRequest<'_>, evaluation: &Evaluation) -> String {
    let context = if request.context.is_empty() {
        String::new()
    } else {
        let keys: Vec<String> = request
            .context
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(" with {}", keys.join(", "))
    };
    format!(
        "{} on {}{context}: {} ({})",
        request.action, request.resource, evaluation.decision, evaluation.reason
    )
}

fn answer(outcomes: Vec<(Decision, String)>) -> Answer {
    Answer::combine(
        outcomes
            .into_iter()
            .map(|(decision, reason)| match decision {
                Decision::Allowed => Answer::Broken(vec![reason]),
                Decision::Indeterminate => Answer::Unknown(vec![reason]),
                Decision::ExplicitlyDenied | Decision::ImplicitlyDenied => {
                    Answer::Holds(vec![reason])
                }
            }),
    )
}

impl Answer {
    /// The answer of several questions asked together: broken if one is (with the reasons of
    /// those), else unknown if one is, else it holds (with every reason).
    pub fn combine(answers: impl IntoIterator<Item = Answer>) -> Answer {
        let (mut broken, mut unknown, mut holds) = (Vec::new(), Vec::new(), Vec::new());
        for answer in answers {
            match answer {
                Answer::Broken(r) => broken.extend(r),
                Answer::Unknown(r) => unknown.extend(r),
                Answer::Holds(r) => holds.extend(r),
            }
        }
        if !broken.is_empty() {
            Answer::Broken(broken)
        } else if !unknown.is_empty() {
            Answer::Unknown(unknown)
        } else {
            Answer::Holds(holds)
        }
    }
}

/// Whether the SCPs (`scp_levels`, root first) stop an ordinary role of `account` (not a
/// service-linked role) from each request, whatever its identity policies and the resource's
/// policy allow. SCPs do not apply to the management account (AWS Organizations User Guide,
/// "Service control policies (SCPs)"), so there every request is allowed.
pub fn scps_deny(
    account: &str,
    scp_levels: &[Vec<&Policy>],
    management_account: Option<&str>,
    requests: &[ProbeRequest<'_>],
) -> Answer {
    let identity = Policy::allow_all("identity policies (any)", false);
    let resource = Policy::allow_all("resource policy (any)", true);
    let organization = Organization {
        scp_levels: scp_levels.to_vec(),
        rcp_levels: Vec::new(),
        management_account: management_account.map(str::to_string),
    };
    let principal = RequestPrincipal::parse(&format!("arn:aws:iam::{account}:role/xscan-probe"));
    let Ok(principal) = principal else {
        return Answer::Unknown(vec![format!("`{account}` is not an account id")]);
    };
    let outcomes = requests
        .iter()
        .map(|probe| {
            let mut request = Request::new(principal.clone(), probe.action, probe.resource);
            for (key, value) in probe.context {
                request.context.add(key, value);
            }
            let policies = PolicySet {
                identity: vec![&identity],
                resource: Some((&resource, PolicyKind::Resource)),
                endpoint: Vec::new(),
            };
            let evaluation = evaluate_in(&request, &policies, &organization);
            // With everything else open, only the SCPs refuse: an implicit deny is an SCP
            // level without an Allow.
            let decision = match evaluation.decision {
                Decision::ImplicitlyDenied => Decision::ExplicitlyDenied,
                d => d,
            };
            (decision, describe(probe, &evaluation))
        })
        .collect();
    answer(outcomes)
}

/// Whether a principal outside the organization is refused each request on a resource of
/// `resource_account`, by the resource's policy (`resource_policy`) or the RCPs above its
/// account (`rcp_levels`, root first), even when a statement grants it everything: the probe
/// adds that grant to the resource policy, so only an explicit Deny refuses. RCPs do not apply
/// to the management account's resources.
pub fn denies_outside_principals(
    resource_account: &str,
    resource_policy: Option<&Policy>,
    rcp_levels: &[Vec<&Policy>],
    management_account: Option<&str>,
    requests: &[ProbeRequest<'_>],
) -> Answer {
    let outsider = ["999999999999", "999999999998"]
        .into_iter()
        .find(|a| *a != resource_account)
        .unwrap_or("999999999999");
    let Ok(principal) =
        RequestPrincipal::parse(&format!("arn:aws:iam::{outsider}:role/xscan-outsider"))
    else {
        return Answer::Unknown(vec!["the outside principal could not be formed".into()]);
    };
    let identity = Policy::allow_all("identity policies (any)", false);
    let mut granted = resource_policy
        .cloned()
        .unwrap_or_else(|| Policy::allow_all("resource policy", true));
    let mut grant = Policy::allow_all("a grant to anyone", true).statements;
    for statement in &mut grant {
        statement.index = granted.statements.len();
        statement.sid = Some("xscan-probe-grant".into());
    }
    granted.statements.extend(grant);
    let organization = Organization {
        scp_levels: Vec::new(),
        rcp_levels: rcp_levels.to_vec(),
        management_account: management_account.map(str::to_string),
    };
    let outcomes = requests
        .iter()
        .map(|probe| {
            let mut request = Request::new(principal.clone(), probe.action, probe.resource);
            request.resource_account = Some(resource_account.to_string());
            for (key, value) in probe.context {
                request.context.add(key, value);
            }
            let policies = PolicySet {
                identity: vec![&identity],
                resource: Some((&granted, PolicyKind::Resource)),
                endpoint: Vec::new(),
            };
            let evaluation = evaluate_in(&request, &policies, &organization);
            // The added grant allows everything: an implicit deny here is not a refusal the
            // estate makes, and xscan cannot say what it is.
            let decision = match evaluation.decision {
                Decision::ImplicitlyDenied => Decision::Indeterminate,
                d => d,
            };
            (decision, describe(probe, &evaluation))
        })
        .collect();
    answer(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, document: serde_json::Value) -> Policy {
        Policy::from_value(name, &document).unwrap()
    }

    fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// AWS Organizations User Guide, "Example SCPs for Amazon SageMaker AI" (deny notebook
    /// instances with direct internet access) and "Inheritance for service control policies"
    /// (every level must allow; `FullAWSAccess` at the root and each OU).
    #[test]
    fn a_guardrail_scp_denies_and_a_level_without_allow_denies_too() {
        let full = policy(
            "FullAWSAccess",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        );
        let guardrail = policy(
            "deny-direct-internet",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
                "Action": "sagemaker:CreateNotebookInstance", "Resource": "*",
                "Condition": {"StringEquals": {"sagemaker:DirectInternetAccess": "Enabled"}}}]}),
        );
        let enabled = context(&[("sagemaker:DirectInternetAccess", "Enabled")]);
        let disabled = context(&[("sagemaker:DirectInternetAccess", "Disabled")]);
        let resource = "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/probe";
        let probe = |c| ProbeRequest {
            action: "sagemaker:CreateNotebookInstance",
            resource,
            context: c,
        };
        // Root and OU allow everything; the OU also carries the guardrail.
        let levels = vec![vec![&full], vec![&full, &guardrail], vec![&full]];
        assert!(matches!(
            scps_deny("111111111111", &levels, None, &[probe(&enabled)]),
            Answer::Holds(_)
        ));
        // The guardrail does not stop a notebook without direct internet.
        assert!(matches!(
            scps_deny("111111111111", &levels, None, &[probe(&disabled)]),
            Answer::Broken(_)
        ));
        // Without the guardrail, the request is allowed.
        let open = vec![vec![&full], vec![&full], vec![&full]];
        assert!(matches!(
            scps_deny("111111111111", &open, None, &[probe(&enabled)]),
            Answer::Broken(_)
        ));
        // A level (the account) with no SCP allowing anything: everything is denied.
        let gap = vec![vec![&full], vec![&full], vec![]];
        assert!(matches!(
            scps_deny("111111111111", &gap, None, &[probe(&disabled)]),
            Answer::Holds(_)
        ));
        // SCPs do not apply to the management account.
        assert!(matches!(
            scps_deny(
                "111111111111",
                &levels,
                Some("111111111111"),
                &[probe(&enabled)]
            ),
            Answer::Broken(_)
        ));
    }

    /// AWS Organizations User Guide, "Resource control policies (RCPs)", and the data
    /// perimeter example RCP (aws-samples/data-perimeter-policy-examples,
    /// `resource_control_policies/identity_perimeter_rcp.json`): deny principals whose
    /// `aws:PrincipalOrgID` is not the organization's.
    #[test]
    fn an_rcp_on_principal_org_id_refuses_outsiders_even_with_a_grant() {
        let perimeter = policy(
            "identity-perimeter",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                "Action": ["s3:*", "sqs:*", "kms:*", "secretsmanager:*", "sts:*"], "Resource": "*",
                "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abcdefghij"},
                              "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]}),
        );
        let other_org = context(&[("aws:PrincipalOrgID", OUTSIDE_ORG_ID)]);
        let no_org = context(&[]);
        let requests = [
            ProbeRequest {
                action: "s3:GetObject",
                resource: "arn:aws:s3:::test-bucket-1/probe",
                context: &other_org,
            },
            ProbeRequest {
                action: "s3:GetObject",
                resource: "arn:aws:s3:::test-bucket-1/probe",
                context: &no_org,
            },
        ];
        let bucket_policy = policy(
            "bucket",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                "Action": "*", "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"],
                "Condition": {"StringEquals": {"s3:DataAccessPointAccount": "222222222222"}}}]}),
        );
        assert!(matches!(
            denies_outside_principals(
                "222222222222",
                Some(&bucket_policy),
                &[vec![&perimeter]],
                None,
                &requests
            ),
            Answer::Holds(_)
        ));
        // Without the RCP, the grant lets the outsider in.
        assert!(matches!(
            denies_outside_principals("222222222222", Some(&bucket_policy), &[], None, &requests),
            Answer::Broken(_)
        ));
        // RCPs do not apply to the management account's resources.
        assert!(matches!(
            denies_outside_principals(
                "222222222222",
                Some(&bucket_policy),
                &[vec![&perimeter]],
                Some("222222222222"),
                &requests
            ),
            Answer::Broken(_)
        ));
        // The same Deny in the bucket policy itself is a perimeter too.
        let mut with_deny = bucket_policy.clone();
        let mut deny = perimeter.statements.clone();
        deny[0].index = 1;
        with_deny.statements.extend(deny);
        assert!(matches!(
            denies_outside_principals("222222222222", Some(&with_deny), &[], None, &requests),
            Answer::Holds(_)
        ));
    }
}
