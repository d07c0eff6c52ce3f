//! Request evaluation: identity, resource and VPC endpoint policies combined as the IAM User
//! Guide's "Policy evaluation logic" documents it. An explicit Deny anywhere wins; every
//! endpoint policy must allow; within one account the identity or the resource policy may
//! allow; across accounts both must.

use super::condition::{RequestContext, Truth, evaluate_clause, expand};
use super::document::{Effect, Policy, PolicyKind, PolicyVersion, Statement};
use super::principal::{AwsIdentity, PrincipalMatch, RequestPrincipal, entry_matches};

/// A request to authorize.
#[derive(Debug, Clone)]
pub struct Request {
    pub principal: RequestPrincipal,
    /// `service:Action`, compared case-insensitively.
    pub action: String,
    pub resource: String,
    /// The owner of the resource when its ARN carries no account (S3 buckets and objects).
    pub resource_account: Option<String>,
    /// Context keys given by the caller; derived keys are added unless given.
    pub context: RequestContext,
}

impl Request {
    pub fn new(principal: RequestPrincipal, action: &str, resource: &str) -> Self {
        Self {
            principal,
            action: action.to_string(),
            resource: resource.to_string(),
            resource_account: None,
            context: RequestContext::default(),
        }
    }

    /// The account owning the resource: given (`--resource-account`, or an
    /// `aws:ResourceAccount` context value), or read from the ARN. `None` when the ARN has no
    /// account (S3 buckets) or names it with a wildcard.
    pub fn resource_owner(&self) -> Option<String> {
        self.resource_account
            .clone()
            .or_else(|| {
                self.context
                    .get("aws:ResourceAccount")
                    .and_then(|v| (v.len() == 1).then(|| v[0].clone()))
            })
            .or_else(|| {
                self.resource
                    .split(':')
                    .nth(4)
                    .filter(|a| !a.is_empty() && !a.contains(['*', '?']))
                    .map(str::to_string)
            })
    }

    /// The caller's context plus the keys AWS derives from the request.
    fn effective_context(&self) -> RequestContext {
        let mut context = self.context.clone();
        if let RequestPrincipal::Aws {
            account, identity, ..
        } = &self.principal
        {
            context.set_default("aws:PrincipalAccount", account);
            if let Some(arn) = self.principal.principal_arn() {
                context.set_default("aws:PrincipalArn", &arn);
            }
            if let AwsIdentity::User { name } = identity {
                context.set_default("aws:username", name);
            }
        }
        if let RequestPrincipal::Service { name } = &self.principal {
            context.set_default("aws:PrincipalServiceName", name);
        }
        if let Some(owner) = self.resource_owner() {
            context.set_default("aws:ResourceAccount", &owner);
            if self.action.to_lowercase().starts_with("s3:") {
                context.set_default("s3:ResourceAccount", &owner);
            }
        }
        context
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Decision {
    Allowed,
    ExplicitlyDenied,
    ImplicitlyDenied,
    /// The engine could not decide (an unsupported operator, an uncomparable value).
    Indeterminate,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Allowed => "Allowed",
            Decision::ExplicitlyDenied => "ExplicitlyDenied",
            Decision::ImplicitlyDenied => "ImplicitlyDenied",
            Decision::Indeterminate => "Indeterminate",
        })
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementRef {
    pub policy: String,
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    /// `matched`, or `indeterminate: <reason>`.
    pub outcome: String,
}

/// The decision with what explains it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub reason: String,
    pub statements: Vec<StatementRef>,
    pub warnings: Vec<String>,
}

/// The policies that apply to a request.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    /// The principal's identity policies.
    pub identity: Vec<&'a Policy>,
    /// The resource's policy (bucket, access point, role trust), if any.
    pub resource: Option<(&'a Policy, PolicyKind)>,
    /// VPC endpoint policies on the request's path.
    pub endpoint: Vec<&'a Policy>,
}

/// How one statement applies to a request.
struct StatementOutcome {
    applies: Truth,
    principal: PrincipalMatch,
}

fn any_truth(items: impl Iterator<Item = Truth>) -> Truth {
    let mut unknown = None;
    for t in items {
        match t {
            Truth::True => return Truth::True,
            Truth::Unknown(r) => unknown = Some(r),
            Truth::False => {}
        }
    }
    unknown.map_or(Truth::False, Truth::Unknown)
}

fn statement_outcome(
    statement: &Statement,
    policy: &Policy,
    kind: PolicyKind,
    request: &Request,
    context: &RequestContext,
) -> StatementOutcome {
    let principal = match (kind, &statement.principal) {
        (PolicyKind::Identity, _) => PrincipalMatch::Direct,
        // AWS refuses such a document (see `Policy::statement_without_principal`): whom it
        // would apply to is not known.
        (_, None) => {
            return StatementOutcome {
                applies: Truth::Unknown(format!(
                    "{} has no Principal, which AWS requires in resource-based and endpoint policies",
                    statement.label()
                )),
                principal: PrincipalMatch::Direct,
            };
        }
        (_, Some(block)) if block.negated => {
            let named = block
                .entries
                .iter()
                .any(|e| entry_matches(e, &request.principal, kind, true) != PrincipalMatch::No);
            if named {
                PrincipalMatch::No
            } else {
                PrincipalMatch::Direct
            }
        }
        (_, Some(block)) => block
            .entries
            .iter()
            .map(|e| entry_matches(e, &request.principal, kind, false))
            .fold(PrincipalMatch::No, |best, m| match (best, m) {
                (PrincipalMatch::Direct, _) | (_, PrincipalMatch::Direct) => PrincipalMatch::Direct,
                (PrincipalMatch::Account, _) | (_, PrincipalMatch::Account) => {
                    PrincipalMatch::Account
                }
                (PrincipalMatch::Unknown, _) | (_, PrincipalMatch::Unknown) => {
                    PrincipalMatch::Unknown
                }
                _ => PrincipalMatch::No,
            }),
    };
    let no = StatementOutcome {
        applies: Truth::False,
        principal,
    };
    if principal == PrincipalMatch::No {
        return no;
    }
    let action_named = statement
        .action
        .items
        .iter()
        .any(|pattern| super::wildcard::glob_match_ignore_case(pattern, &request.action));
    if action_named == statement.action.negated {
        return no;
    }
    if let Some(resource) = &statement.resource {
        let named = resource.items.iter().any(|item| {
            // Without a policy variable the item is its own pattern (as `expand` makes it).
            if policy.version == PolicyVersion::V2008 || !item.contains("${") {
                super::wildcard::glob_match(item, &request.resource)
            } else {
                expand(item, context, policy.version, true)
                    .is_some_and(|p| p.matches(&request.resource))
            }
        });
        if named == resource.negated {
            return no;
        }
    }
    let principal_truth = if principal == PrincipalMatch::Unknown {
        Truth::Unknown(format!(
            "{} names the caller by ARN in a gateway endpoint policy, where AWS documents only \"*\" with aws:PrincipalArn (an account there means its root user only)",
            statement.label()
        ))
    } else {
        Truth::True
    };
    let applies = statement
        .conditions
        .iter()
        .fold(principal_truth, |acc, clause| {
            acc.and(evaluate_clause(clause, context, policy.version))
        });
    StatementOutcome { applies, principal }
}

/// What one policy says about a request.
struct PolicyVerdict {
    deny: Truth,
    /// Some Allow applies (by any principal match).
    allow: Truth,
    /// Some Allow applies naming the principal directly (not only its account).
    allow_direct: Truth,
    allows: Vec<StatementRef>,
    denies: Vec<StatementRef>,
    unknown: Vec<StatementRef>,
}

fn statement_ref(policy: &Policy, statement: &Statement, outcome: String) -> StatementRef {
    StatementRef {
        policy: policy.name.clone(),
        index: statement.index,
        sid: statement.sid.clone(),
        effect: statement.effect,
        outcome,
    }
}

fn evaluate_policy(
    policy: &Policy,
    kind: PolicyKind,
    request: &Request,
    context: &RequestContext,
) -> PolicyVerdict {
    let mut verdict = PolicyVerdict {
        deny: Truth::False,
        allow: Truth::False,
        allow_direct: Truth::False,
        allows: Vec::new(),
        denies: Vec::new(),
        unknown: Vec::new(),
    };
    for statement in &policy.statements {
        let outcome = statement_outcome(statement, policy, kind, request, context);
        let truth = outcome.applies;
        match &truth {
            Truth::False => continue,
            Truth::True => {
                let r = statement_ref(policy, statement, "matched".into());
                match statement.effect {
                    Effect::Allow => verdict.allows.push(r),
                    Effect::Deny => verdict.denies.push(r),
                }
            }
            Truth::Unknown(reason) => verdict.unknown.push(statement_ref(
                policy,
                statement,
                format!("indeterminate: {reason}"),
            )),
        }
        match statement.effect {
            Effect::Deny => verdict.deny = any_truth([verdict.deny.clone(), truth].into_iter()),
            Effect::Allow => {
                if outcome.principal == PrincipalMatch::Direct {
                    verdict.allow_direct =
                        any_truth([verdict.allow_direct.clone(), truth.clone()].into_iter());
                }
                verdict.allow = any_truth([verdict.allow.clone(), truth].into_iter());
            }
        }
    }
    verdict
}

/// How a service lets a resource policy and identity policies combine for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// The default: within one account an identity policy or a resource policy naming the
    /// principal allows; across accounts both must.
    Default,
    /// Role trust policies and KMS key policies must allow the principal themselves, even
    /// within the account: naming the principal allows, naming only its account lets its
    /// identity policies decide (IAM User Guide, "Policy evaluation logic": "Role trust
    /// policies and KMS key policies are exceptions ... they must explicitly allow access").
    ResourcePolicyRequired,
}

/// The kind of trust that applies to `request`, or a decision AWS makes outside the policies.
fn service_rules(request: &Request, policies: &PolicySet<'_>) -> Result<Trust, Evaluation> {
    let action = request.action.to_ascii_lowercase();
    let resource = request.resource.as_str();
    let outside = |decision: Decision, reason: String| Evaluation {
        decision,
        reason,
        statements: Vec::new(),
        warnings: Vec::new(),
    };
    // STS API Reference, GetCallerIdentity: "No permissions are required to perform this
    // operation. If an administrator attaches a policy to your identity that explicitly denies
    // access to the sts:GetCallerIdentity action, you can still perform this operation."
    if action == "sts:getcalleridentity" {
        return Err(match request.principal {
            RequestPrincipal::Aws { .. } => outside(
                Decision::Allowed,
                "sts:GetCallerIdentity needs no permission: AWS answers it even when a policy denies it (STS API Reference, GetCallerIdentity)".into(),
            ),
            _ => outside(
                Decision::Indeterminate,
                "sts:GetCallerIdentity is answered for any signed request of an IAM identity; this principal has no credentials to sign with".into(),
            ),
        });
    }
    let arn: Vec<&str> = resource.splitn(6, ':').collect();
    let (service, account, path) = match arn.as_slice() {
        ["arn", _, service, _, account, path] => (*service, *account, *path),
        _ => ("", "", ""),
    };
    // IAM User Guide, "AWS managed policies": AWS creates and administers them; customers
    // cannot change them. Reads follow the caller's identity policies.
    if service == "iam" && account == "aws" {
        let reads = ["iam:get", "iam:list", "iam:simulate", "iam:generate"];
        if !reads.iter().any(|prefix| action.starts_with(prefix)) {
            return Err(outside(
                Decision::Indeterminate,
                format!(
                    "{resource} is an AWS managed policy: AWS owns it and refuses {} from any customer, whatever the policies say (IAM User Guide, \"AWS managed policies\"); xscan does not model that refusal as a policy decision",
                    request.action
                ),
            ));
        }
    }
    // IAM User Guide, "Using service-linked roles": the service defines the role; its trust
    // and permissions policies cannot be edited and it is deleted only through the service.
    if service == "iam" && path.starts_with("role/aws-service-role/") {
        const LOCKED: &[&str] = &[
            "iam:putrolepolicy",
            "iam:deleterolepolicy",
            "iam:attachrolepolicy",
            "iam:detachrolepolicy",
            "iam:updateassumerolepolicy",
            "iam:putrolepermissionsboundary",
            "iam:deleterolepermissionsboundary",
            "iam:deleterole",
        ];
        if LOCKED.contains(&action.as_str()) {
            return Err(outside(
                Decision::Indeterminate,
                format!(
                    "{resource} is a service-linked role: IAM refuses {} on it (UnmodifiableEntity) whatever the policies say (IAM User Guide, \"Using service-linked roles\")",
                    request.action
                ),
            ));
        }
    }
    let assumes_role = matches!(
        action.as_str(),
        "sts:assumerole"
            | "sts:assumerolewithsaml"
            | "sts:assumerolewithwebidentity"
            | "sts:tagsession"
            | "sts:setsourceidentity"
            | "sts:setcontext"
    );
    if assumes_role && service == "iam" && path.starts_with("role/") {
        if policies.resource.is_none() {
            return Err(outside(
                Decision::Indeterminate,
                format!(
                    "the trust policy of {resource} decides {}; pass it with --resource-policy",
                    request.action
                ),
            ));
        }
        return Ok(Trust::ResourcePolicyRequired);
    }
    if service == "kms" && path.starts_with("key/") {
        if policies.resource.is_none() {
            return Err(outside(
                Decision::Indeterminate,
                format!(
                    "the key policy of {resource} decides {} (every KMS key has one; KMS grants are not modelled); pass it with --resource-policy",
                    request.action
                ),
            ));
        }
        return Ok(Trust::ResourcePolicyRequired);
    }
    Ok(Trust::Default)
}

/// Statements whose resource element names specific resources, when the request's resource is
/// itself a pattern (`*`, `arn:aws:s3:::b/*`): whether the pattern's resources fall under them
/// is not one answer.
fn pattern_resource_statements(request: &Request, policies: &PolicySet<'_>) -> Vec<String> {
    if !request.resource.contains(['*', '?']) {
        return Vec::new();
    }
    let all = policies
        .identity
        .iter()
        .chain(policies.resource.iter().map(|(p, _)| p))
        .chain(policies.endpoint.iter());
    let mut specific = Vec::new();
    for policy in all {
        for statement in &policy.statements {
            let named =
                statement.action.items.iter().any(|pattern| {
                    super::wildcard::glob_match_ignore_case(pattern, &request.action)
                }) != statement.action.negated;
            let everything = statement
                .resource
                .as_ref()
                .is_none_or(|r| !r.negated && r.items.iter().any(|i| i == "*"));
            if named && !everything {
                specific.push(format!("{} {}", policy.name, statement.label()));
            }
        }
    }
    specific
}

/// The AWS Organizations policies on a request's path: service control policies (on the
/// principal's account) and resource control policies (on the resource's account), each by
/// level of the organization tree, root first — the root, every OU down to the account, and
/// the account itself.
#[derive(Debug, Clone, Default)]
pub struct Organization<'a> {
    /// SCPs of each level; a level allows what any of its SCPs allows.
    pub scp_levels: Vec<Vec<&'a Policy>>,
    /// RCPs of each level. AWS attaches `RCPFullAWSAccess` to every level and custom RCPs may
    /// only deny, so only their Deny statements decide.
    pub rcp_levels: Vec<Vec<&'a Policy>>,
    /// The management account: neither SCPs nor RCPs apply to its principals or resources.
    pub management_account: Option<String>,
}

/// Services whose resources RCPs govern (AWS Organizations User Guide, "Resource control
/// policies": "List of AWS services that support RCPs").
const RCP_SERVICES: &[&str] = &["s3", "sts", "kms", "sqs", "secretsmanager"];
/// Services AWS has added to that list since; xscan does not know which version of the list a
/// reader's organization sees, so an RCP Deny on them is Indeterminate.
const RCP_SERVICES_LATER: &[&str] = &["ecr", "aoss", "cognito-identity", "dynamodb", "logs"];

/// Service-linked roles are neither restricted by SCPs nor by RCPs. Their names start with
/// `AWSServiceRoleFor` and their paths with `/aws-service-role/`.
fn is_service_linked(principal: &RequestPrincipal) -> bool {
    match principal {
        RequestPrincipal::Aws { arn, identity, .. } => {
            arn.contains(":role/aws-service-role/")
                || matches!(identity, AwsIdentity::AssumedRole { role_name, .. } | AwsIdentity::Role { name: role_name } if role_name.starts_with("AWSServiceRoleFor"))
        }
        _ => false,
    }
}

/// Evaluates `request` against the policies that apply to it, in an account outside any
/// organization (or one whose SCPs and RCPs are not given).
pub fn evaluate(request: &Request, policies: &PolicySet<'_>) -> Evaluation {
    evaluate_in(request, policies, &Organization::default())
}

/// Evaluates `request` against the policies that apply to it and the organization's SCPs and
/// RCPs: an explicit Deny in any of them wins; every SCP level must allow (IAM User Guide,
/// "Policy evaluation logic"; AWS Organizations User Guide, "SCP evaluation").
///
/// Where AWS decides by a rule beyond the documents (requests that need no permission, role
/// trust and KMS key policies, AWS-owned resources) the rule is applied or, where xscan does
/// not model it, the answer is `Indeterminate` naming it. A request whose resource is a
/// pattern is answered only where every statement that could apply names every resource;
/// one whose resource has no known owner only where the answer is the same for a same-account
/// and a cross-account owner.
pub fn evaluate_in(
    request: &Request,
    policies: &PolicySet<'_>,
    organization: &Organization<'_>,
) -> Evaluation {
    let trust = match service_rules(request, policies) {
        Ok(trust) => trust,
        Err(decided) => return decided,
    };
    let specific = pattern_resource_statements(request, policies);
    let evaluation = match request.resource_owner() {
        // AWS-owned resources (managed policies): reads are the caller's identity policies'
        // to allow, as for its own resources (writes were answered above).
        Some(owner) if owner == "aws" => {
            evaluate_with(request, policies, organization, trust, Some(true))
        }
        Some(_) => evaluate_with(request, policies, organization, trust, None),
        // `*` is how actions without a resource (s3:ListAllMyBuckets, ec2:Describe*) are
        // asked: they act in the caller's own account.
        None if request.resource == "*" => {
            evaluate_with(request, policies, organization, trust, Some(true))
        }
        None if request.principal.account().is_none() => {
            evaluate_with(request, policies, organization, trust, None)
        }
        None => {
            // Both possible owners; the answer stands only if they agree.
            let same = evaluate_with(request, policies, organization, trust, Some(true));
            let other = evaluate_with(request, policies, organization, trust, Some(false));
            if same.decision == other.decision {
                same
            } else {
                Evaluation {
                    decision: Decision::Indeterminate,
                    reason: format!(
                        "the resource's owner is unknown (its ARN names no account) and decides: {} if it is the principal's account, {} if not; pass --resource-account",
                        same.decision, other.decision
                    ),
                    statements: same
                        .statements
                        .into_iter()
                        .chain(other.statements)
                        .collect(),
                    warnings: same.warnings,
                }
            }
        }
    };
    if !specific.is_empty() && evaluation.decision != Decision::ExplicitlyDenied {
        return Evaluation {
            decision: Decision::Indeterminate,
            reason: format!(
                "the request's resource `{}` is a pattern, and {} name specific resources: whether they cover it is not one answer; ask about one resource",
                request.resource,
                specific.join(", ")
            ),
            statements: Vec::new(),
            warnings: evaluation.warnings,
        };
    }
    evaluation
}

/// [`evaluate`] once the trust model is known; `same_account` overrides the owner comparison
/// when the owner is unknown.
fn evaluate_with(
    request: &Request,
    policies: &PolicySet<'_>,
    organization: &Organization<'_>,
    trust: Trust,
    same_account_override: Option<bool>,
) -> Evaluation {
    let context = request.effective_context();
    let management = organization.management_account.as_deref();
    let linked = is_service_linked(&request.principal);
    // SCPs restrict the principals of member accounts (not the management account's, not
    // service-linked roles); principals outside AWS accounts have none.
    let scp_applies = !organization.scp_levels.is_empty()
        && !linked
        && request
            .principal
            .account()
            .is_some_and(|a| Some(a) != management);
    let scp_levels: Vec<Vec<PolicyVerdict>> = if scp_applies {
        organization
            .scp_levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|p| evaluate_policy(p, PolicyKind::Identity, request, &context))
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    // RCPs restrict access to the resources of member accounts, for the services that support
    // them; an unknown owner leaves their reach unknown.
    let service = request
        .action
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let owner_for_rcp = request.resource_owner();
    let rcp_reach = if organization.rcp_levels.is_empty() || linked {
        None
    } else if RCP_SERVICES.contains(&service.as_str()) {
        Some(true)
    } else if RCP_SERVICES_LATER.contains(&service.as_str()) {
        Some(false)
    } else {
        None
    };
    let rcp_verdicts: Vec<PolicyVerdict> = match rcp_reach {
        Some(_) if owner_for_rcp.as_deref() != management || management.is_none() => organization
            .rcp_levels
            .iter()
            .flatten()
            .map(|p| evaluate_policy(p, PolicyKind::Resource, request, &context))
            .collect(),
        _ => Vec::new(),
    };
    let rcp_certain = rcp_reach == Some(true) && owner_for_rcp.is_some();
    let rcp_deny = rcp_verdicts.iter().fold(Truth::False, |acc, v| {
        let deny = match (&v.deny, rcp_certain) {
            (Truth::True, false) => Truth::Unknown(
                "an RCP denies this, but whether RCPs govern this service or this resource's account is not known (AWS has added services to the RCP list over time; pass --resource-account)".into(),
            ),
            (d, _) => d.clone(),
        };
        any_truth([acc, deny].into_iter())
    });
    let scp_deny = any_truth(scp_levels.iter().flatten().map(|v| v.deny.clone()));
    let scp_allow = scp_levels.iter().fold(Truth::True, |acc, level| {
        acc.and(any_truth(level.iter().map(|v| v.allow.clone())))
    });
    let mut warnings: Vec<String> = Vec::new();
    let identity: Vec<PolicyVerdict> = policies
        .identity
        .iter()
        .map(|p| evaluate_policy(p, PolicyKind::Identity, request, &context))
        .collect();
    let resource = policies
        .resource
        .map(|(p, kind)| evaluate_policy(p, kind, request, &context));
    let endpoint: Vec<PolicyVerdict> = policies
        .endpoint
        .iter()
        .map(|p| evaluate_policy(p, PolicyKind::Endpoint, request, &context))
        .collect();
    for p in policies.identity.iter().chain(policies.endpoint.iter()) {
        warnings.extend(p.warnings.iter().cloned());
    }
    if let Some((p, _)) = policies.resource {
        warnings.extend(p.warnings.iter().cloned());
    }
    if matches!(
        request.principal,
        RequestPrincipal::Anonymous | RequestPrincipal::Service { .. }
    ) && !policies.identity.is_empty()
    {
        warnings.push(
            "identity policies were given for a principal that has none; they are ignored".into(),
        );
    }
    let all: Vec<&PolicyVerdict> = identity
        .iter()
        .chain(resource.iter())
        .chain(endpoint.iter())
        .chain(scp_levels.iter().flatten())
        .chain(rcp_verdicts.iter())
        .collect();
    let unknown: Vec<StatementRef> = all.iter().flat_map(|v| v.unknown.iter().cloned()).collect();

    let deny = any_truth(
        identity
            .iter()
            .chain(resource.iter())
            .chain(endpoint.iter())
            .map(|v| v.deny.clone())
            .chain([scp_deny, rcp_deny]),
    );
    if deny == Truth::True {
        return Evaluation {
            decision: Decision::ExplicitlyDenied,
            reason: "an explicit Deny applies; an explicit Deny overrides every Allow".into(),
            statements: all.iter().flat_map(|v| v.denies.iter().cloned()).collect(),
            warnings,
        };
    }

    let owner = request.resource_owner();
    let (identity_allow, resource_allow_any, resource_allow_direct) = (
        match &request.principal {
            // The root user has every permission in its own account.
            RequestPrincipal::Aws {
                identity: AwsIdentity::Root,
                ..
            } => Truth::True,
            RequestPrincipal::Aws { .. } => any_truth(identity.iter().map(|v| v.allow.clone())),
            _ => Truth::False,
        },
        resource.as_ref().map_or(Truth::False, |v| v.allow.clone()),
        resource
            .as_ref()
            .map_or(Truth::False, |v| v.allow_direct.clone()),
    );
    let same_account = match (
        same_account_override,
        request.principal.account(),
        owner.as_deref(),
    ) {
        (Some(given), _, _) => given,
        (None, Some(p), Some(o)) => p == o,
        _ => false,
    };
    let (grant, grant_reason) = match &request.principal {
        RequestPrincipal::Aws { .. } if same_account && trust == Trust::ResourcePolicyRequired => (
            any_truth(
                [
                    resource_allow_direct,
                    identity_allow.clone().and(resource_allow_any.clone()),
                ]
                .into_iter(),
            ),
            "a role trust policy or KMS key policy must allow: naming the principal allows, naming its account lets its identity policies decide",
        ),
        RequestPrincipal::Aws { .. } if same_account => (
            any_truth([identity_allow.clone(), resource_allow_direct].into_iter()),
            "within one account, an identity policy or a resource policy naming the principal must allow",
        ),
        RequestPrincipal::Aws { .. } => (
            identity_allow.clone().and(resource_allow_any),
            "across accounts, both the principal's identity policies and the resource policy must allow",
        ),
        _ => (
            resource_allow_direct,
            "a principal without identity policies needs a resource policy that names it",
        ),
    };
    let endpoint_allow = endpoint
        .iter()
        .fold(Truth::True, |acc, v| acc.and(v.allow.clone()));
    let allowed = grant
        .clone()
        .and(endpoint_allow.clone())
        .and(scp_allow.clone());
    let allow_statements = || {
        all.iter()
            .flat_map(|v| v.allows.iter().cloned())
            .collect::<Vec<_>>()
    };
    match (allowed, deny) {
        (Truth::True, Truth::False) => Evaluation {
            decision: Decision::Allowed,
            reason: format!("allowed: {grant_reason}, and every endpoint policy allows"),
            statements: allow_statements(),
            warnings,
        },
        (Truth::False, deny) => {
            if let Truth::Unknown(r) = deny {
                warnings.push(format!("a Deny statement could not be evaluated ({r}); the request is denied either way"));
            }
            let reason = if scp_allow == Truth::False {
                "a level of the organization has no SCP that allows it (every level from the root to the account must allow; implicit deny)".to_string()
            } else if endpoint_allow == Truth::False {
                "no statement of a VPC endpoint policy allows it (implicit deny)".to_string()
            } else {
                format!("no applicable Allow: {grant_reason} (implicit deny)")
            };
            Evaluation {
                decision: Decision::ImplicitlyDenied,
                reason,
                statements: Vec::new(),
                warnings,
            }
        }
        _ => Evaluation {
            decision: Decision::Indeterminate,
            reason: "a statement that decides the outcome could not be evaluated".into(),
            statements: unknown,
            warnings,
        },
    }
}

/// The layers of an S3 request made through an access point: the identity policies and the
/// endpoint policies on the path, the access point policy, and the bucket policy behind it.
#[derive(Debug, Clone, Default)]
pub struct AccessPointLayers<'a> {
    pub identity: Vec<&'a Policy>,
    pub endpoint: Vec<&'a Policy>,
    pub access_point: Option<&'a Policy>,
    pub bucket_policy: Option<&'a Policy>,
    pub bucket: String,
    pub bucket_account: String,
}

/// Evaluates an S3 request whose resource is an access point ARN (or an object under it), as
/// the S3 User Guide documents: the access point policy and the bucket policy must both allow
/// (the bucket usually by delegating to the owner's access points), every endpoint policy must
/// allow both the access point and the bucket resource, and an explicit Deny anywhere wins.
pub fn evaluate_via_access_point(request: &Request, layers: &AccessPointLayers<'_>) -> Evaluation {
    evaluate_via_access_point_in(request, layers, &Organization::default())
}

/// [`evaluate_via_access_point`] with the organization's SCPs and RCPs.
pub fn evaluate_via_access_point_in(
    request: &Request,
    layers: &AccessPointLayers<'_>,
    organization: &Organization<'_>,
) -> Evaluation {
    let (access_point_arn, object_key) = match request.resource.split_once("/object/") {
        Some((ap, key)) => (ap.to_string(), Some(key.to_string())),
        None => (request.resource.clone(), None),
    };
    let ap_account = access_point_arn
        .split(':')
        .nth(4)
        .unwrap_or_default()
        .to_string();
    let mut base = request.clone();
    base.context
        .set_default("s3:DataAccessPointArn", &access_point_arn);
    base.context
        .set_default("s3:DataAccessPointAccount", &ap_account);
    base.resource_account = Some(ap_account);
    let ap_layer = evaluate_in(
        &base,
        &PolicySet {
            identity: layers.identity.clone(),
            resource: layers.access_point.map(|p| (p, PolicyKind::AccessPoint)),
            endpoint: layers.endpoint.clone(),
        },
        organization,
    );
    // The bucket side: the identity was checked against the access point; what remains is
    // whether the bucket policy lets the request through (and no Deny stops it).
    let identity_checked = Policy::allow_all("(identity, checked at the access point)", false);
    let mut bucket_request = base.clone();
    bucket_request.resource = match &object_key {
        Some(key) => format!("arn:aws:s3:::{}/{key}", layers.bucket),
        None => format!("arn:aws:s3:::{}", layers.bucket),
    };
    bucket_request.resource_account = Some(layers.bucket_account.clone());
    bucket_request
        .context
        .set("s3:ResourceAccount", vec![layers.bucket_account.clone()]);
    bucket_request
        .context
        .set("aws:ResourceAccount", vec![layers.bucket_account.clone()]);
    let bucket_layer = evaluate_in(
        &bucket_request,
        &PolicySet {
            identity: vec![&identity_checked],
            resource: layers.bucket_policy.map(|p| (p, PolicyKind::Resource)),
            endpoint: layers.endpoint.clone(),
        },
        organization,
    );
    let mut warnings = ap_layer.warnings.clone();
    warnings.extend(bucket_layer.warnings.iter().cloned());
    warnings.dedup();
    let both = |a: &Evaluation, b: &Evaluation| {
        let mut all = a.statements.clone();
        all.extend(b.statements.iter().cloned());
        all
    };
    use Decision::*;
    let (decision, reason, statements) = match (ap_layer.decision, bucket_layer.decision) {
        (ExplicitlyDenied, _) | (_, ExplicitlyDenied) => (
            ExplicitlyDenied,
            format!("access point: {}; bucket: {}", ap_layer.reason, bucket_layer.reason),
            [&ap_layer, &bucket_layer]
                .iter()
                .filter(|e| e.decision == ExplicitlyDenied)
                .flat_map(|e| e.statements.iter().cloned())
                .collect(),
        ),
        (Allowed, Allowed) => (
            Allowed,
            "the access point policy and the bucket policy both allow, as does every endpoint policy".into(),
            both(&ap_layer, &bucket_layer),
        ),
        (ImplicitlyDenied, _) => (ImplicitlyDenied, format!("access point layer: {}", ap_layer.reason), Vec::new()),
        (_, ImplicitlyDenied) => (ImplicitlyDenied, format!("bucket layer: {}", bucket_layer.reason), Vec::new()),
        _ => (
            Indeterminate,
            "a statement that decides the outcome could not be evaluated".into(),
            both(&ap_layer, &bucket_layer),
        ),
    };
    Evaluation {
        decision,
        reason,
        statements,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, v: serde_json::Value) -> Policy {
        Policy::from_value(name, &v).unwrap()
    }

    fn request(principal: &str, action: &str, resource: &str) -> Request {
        Request::new(
            RequestPrincipal::parse(principal).unwrap(),
            action,
            resource,
        )
    }

    const ROLE: &str = "arn:aws:iam::111111111111:role/Exec";
    const AP_OBJECT: &str =
        "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1/object/data.csv";

    fn allow_all_identity() -> Policy {
        policy(
            "id",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
    }

    // STS API Reference, GetCallerIdentity: "No permissions are required to perform this
    // operation ... you can still perform this operation" when a policy denies it.
    #[test]
    fn get_caller_identity_needs_no_permission() {
        let deny = policy(
            "deny",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}),
        );
        let set = PolicySet {
            identity: vec![&deny],
            ..Default::default()
        };
        let r = request(ROLE, "sts:GetCallerIdentity", "*");
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
        let r = request(ROLE, "sts:GetCallerIdentity", "*");
        assert_eq!(
            evaluate(&r, &PolicySet::default()).decision,
            Decision::Allowed
        );
        let r = request("anonymous", "sts:GetCallerIdentity", "*");
        assert_eq!(evaluate(&r, &set).decision, Decision::Indeterminate);
    }

    // IAM User Guide, "Policy evaluation logic" (same account): "Role trust policies and KMS
    // key policies are exceptions ... because they must explicitly allow access for
    // principals"; a trust policy naming the account lets identity policies decide.
    #[test]
    fn role_trust_policies_must_allow_even_within_the_account() {
        let identity = allow_all_identity();
        let role = "arn:aws:iam::111111111111:role/Target";
        let trusts_service = policy(
            "trust",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        );
        let trusts_account = policy(
            "trust",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole"}]}),
        );
        let trusts_role = policy(
            "trust",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": ROLE}, "Action": "sts:AssumeRole"}]}),
        );
        let r = request(ROLE, "sts:AssumeRole", role);
        let eval = |identity: Vec<&Policy>, trust: Option<&Policy>| {
            evaluate(
                &r,
                &PolicySet {
                    identity,
                    resource: trust.map(|t| (t, PolicyKind::Resource)),
                    endpoint: Vec::new(),
                },
            )
            .decision
        };
        // Identity allows everything, but the trust policy names only the service.
        assert_eq!(
            eval(vec![&identity], Some(&trusts_service)),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            eval(vec![&identity], Some(&trusts_account)),
            Decision::Allowed
        );
        assert_eq!(
            eval(vec![], Some(&trusts_account)),
            Decision::ImplicitlyDenied
        );
        assert_eq!(eval(vec![], Some(&trusts_role)), Decision::Allowed);
        // Without the trust policy the answer is not known.
        assert_eq!(eval(vec![&identity], None), Decision::Indeterminate);
    }

    // AWS KMS Developer Guide, "Key policies in AWS KMS": "Unless the key policy explicitly
    // allows it, you cannot use IAM policies to allow access to a KMS key."
    #[test]
    fn kms_key_policies_must_allow_or_delegate_to_the_account() {
        let identity = allow_all_identity();
        let key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let only_admin = policy(
            "key",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:role/KeyAdmin"}, "Action": "kms:*", "Resource": "*"}]}),
        );
        let delegates = policy(
            "key",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]}),
        );
        let r = request(ROLE, "kms:Decrypt", key);
        let eval = |key_policy: Option<&Policy>| {
            evaluate(
                &r,
                &PolicySet {
                    identity: vec![&identity],
                    resource: key_policy.map(|k| (k, PolicyKind::Resource)),
                    endpoint: Vec::new(),
                },
            )
            .decision
        };
        assert_eq!(eval(Some(&only_admin)), Decision::ImplicitlyDenied);
        assert_eq!(eval(Some(&delegates)), Decision::Allowed);
        assert_eq!(eval(None), Decision::Indeterminate);
        // kms:ListKeys acts on "*": identity policies decide.
        let r = request(ROLE, "kms:ListKeys", "*");
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
    }

    // IAM User Guide, "AWS managed policies" (customers cannot change them) and "Using
    // service-linked roles" (their policies cannot be edited).
    #[test]
    fn aws_owned_resources_are_not_changed_by_customer_policies() {
        let identity = allow_all_identity();
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let managed = "arn:aws:iam::aws:policy/AdministratorAccess";
        let r = request(ROLE, "iam:CreatePolicyVersion", managed);
        let e = evaluate(&r, &set);
        assert_eq!(e.decision, Decision::Indeterminate);
        assert!(e.reason.contains("AWS managed policy"), "{}", e.reason);
        let r = request(ROLE, "iam:GetPolicyVersion", managed);
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
        let linked = "arn:aws:iam::111111111111:role/aws-service-role/sagemaker.amazonaws.com/AWSServiceRoleForAmazonSageMakerNotebooks";
        let r = request(ROLE, "iam:AttachRolePolicy", linked);
        assert_eq!(evaluate(&r, &set).decision, Decision::Indeterminate);
        let r = request(ROLE, "iam:GetRole", linked);
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
    }

    // AWS PrivateLink guide, "Principals for gateway endpoints": an account id or root ARN
    // grants the account's root user only; other principals are granted with "*" and
    // aws:PrincipalArn. An IAM ARN as Principal is not a documented form: Indeterminate.
    #[test]
    fn gateway_endpoint_principals() {
        let identity = allow_all_identity();
        let by_account = policy(
            "vpce",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "111111111111"}, "Action": "s3:*", "Resource": "*"}]}),
        );
        let by_arn = policy(
            "vpce",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "*"}]}),
        );
        let by_condition = policy(
            "vpce",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": "*", "Action": "s3:*", "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}}]}),
        );
        let mut r = request(
            "arn:aws:sts::111111111111:assumed-role/Exec/nb",
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        r.resource_account = Some("111111111111".into());
        let eval = |endpoint: &Policy| {
            evaluate(
                &r,
                &PolicySet {
                    identity: vec![&identity],
                    resource: None,
                    endpoint: vec![endpoint],
                },
            )
            .decision
        };
        assert_eq!(eval(&by_account), Decision::ImplicitlyDenied);
        assert_eq!(eval(&by_arn), Decision::Indeterminate);
        assert_eq!(eval(&by_condition), Decision::Allowed);
    }

    // AWS PrivateLink guide, "Control access to VPC endpoints using endpoint policies": "It
    // must contain a Principal element." Without one, whom it applies to is not known.
    #[test]
    fn endpoint_statement_without_principal_is_not_guessed() {
        let identity = allow_all_identity();
        let no_principal = policy(
            "vpce",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        );
        assert!(
            no_principal
                .statement_without_principal(PolicyKind::Endpoint)
                .is_some()
        );
        let mut r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        r.resource_account = Some("111111111111".into());
        let set = PolicySet {
            identity: vec![&identity],
            resource: None,
            endpoint: vec![&no_principal],
        };
        assert_eq!(evaluate(&r, &set).decision, Decision::Indeterminate);
    }

    // An S3 object ARN names no account: same account, the identity policy suffices; across
    // accounts the bucket policy must allow too. Unknown owner: no confident answer.
    #[test]
    fn unknown_owner_is_indeterminate_when_it_decides() {
        let identity = allow_all_identity();
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        let e = evaluate(&r, &set);
        assert_eq!(e.decision, Decision::Indeterminate, "{}", e.reason);
        assert!(e.reason.contains("--resource-account"), "{}", e.reason);
        let mut r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        r.context.add("aws:ResourceAccount", "111111111111");
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
        // Nothing allows: denied whoever owns it.
        let r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(
            evaluate(&r, &PolicySet::default()).decision,
            Decision::ImplicitlyDenied
        );
    }

    // A pattern as the request's resource: answered only when every statement that could
    // apply covers every resource.
    #[test]
    fn pattern_resources_are_answered_only_when_unambiguous() {
        let specific = policy(
            "id",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/public/*"}]}),
        );
        let set = PolicySet {
            identity: vec![&specific],
            ..Default::default()
        };
        let mut r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/*");
        r.resource_account = Some("111111111111".into());
        assert_eq!(evaluate(&r, &set).decision, Decision::Indeterminate);
        let all = allow_all_identity();
        let set = PolicySet {
            identity: vec![&all],
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
    }

    fn full_access() -> Policy {
        policy(
            "FullAWSAccess",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
    }

    // AWS Organizations User Guide, "SCP evaluation" / "Inheritance for SCPs": for a permission
    // to be allowed, there must be an explicit Allow at every level from the root through each
    // OU to the account; an explicit Deny at any level wins; SCPs never grant.
    #[test]
    fn scps_need_an_allow_at_every_level_and_their_deny_wins() {
        let identity = allow_all_identity();
        let root = full_access();
        let s3_only = policy(
            "ou",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        );
        let deny_delete = policy(
            "deny",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]}),
        );
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let org = Organization {
            scp_levels: vec![vec![&root], vec![&s3_only], vec![&root, &deny_delete]],
            ..Default::default()
        };
        let decide = |action: &str, resource: &str, org: &Organization<'_>| {
            let mut r = request(ROLE, action, resource);
            r.resource_account = Some("111111111111".into());
            evaluate_in(&r, &set, org).decision
        };
        assert_eq!(
            decide("s3:GetObject", "arn:aws:s3:::b/k", &org),
            Decision::Allowed
        );
        assert_eq!(
            decide("ec2:RunInstances", "*", &org),
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            decide("s3:DeleteBucket", "arn:aws:s3:::b", &org),
            Decision::ExplicitlyDenied
        );
        // SCPs never grant: without the identity policy nothing is allowed.
        let mut r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        r.resource_account = Some("111111111111".into());
        assert_eq!(
            evaluate_in(&r, &PolicySet::default(), &org).decision,
            Decision::ImplicitlyDenied
        );
        // "SCPs don't affect users or roles in the management account" and "SCPs don't
        // affect service-linked roles".
        let management = Organization {
            management_account: Some("111111111111".into()),
            ..org.clone()
        };
        assert_eq!(
            decide("ec2:RunInstances", "*", &management),
            Decision::Allowed
        );
        let linked = request(
            "arn:aws:sts::111111111111:assumed-role/AWSServiceRoleForAmazonSageMakerNotebooks/s",
            "ec2:RunInstances",
            "*",
        );
        assert_eq!(evaluate_in(&linked, &set, &org).decision, Decision::Allowed);
    }

    // AWS Organizations User Guide, "Resource control policies": RCPs restrict access to the
    // resources of member accounts for the supported services (S3, STS, KMS, SQS, Secrets
    // Manager); RCPFullAWSAccess is attached everywhere, so custom RCPs only deny; they never
    // grant. The data-perimeter example denies principals outside the organization.
    #[test]
    fn rcps_deny_principals_outside_the_organization() {
        let identity = allow_all_identity();
        let bucket = policy(
            "bucket",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}),
        );
        let perimeter = policy(
            "rcp",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": ["s3:*", "dynamodb:*", "ec2:*"], "Resource": "*",
                "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-example"},
                              "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]}),
        );
        let org = Organization {
            rcp_levels: vec![vec![&perimeter]],
            ..Default::default()
        };
        let set = PolicySet {
            identity: vec![&identity],
            resource: Some((&bucket, PolicyKind::Resource)),
            endpoint: Vec::new(),
        };
        let decide = |org_id: &str, action: &str, resource: &str| {
            let mut r = request("arn:aws:iam::999999999999:role/Outsider", action, resource);
            r.resource_account = Some("222222222222".into());
            r.context.add("aws:PrincipalOrgID", org_id);
            evaluate_in(&r, &set, &org).decision
        };
        assert_eq!(
            decide("o-other", "s3:GetObject", "arn:aws:s3:::b/k"),
            Decision::ExplicitlyDenied
        );
        assert_eq!(
            decide("o-example", "s3:GetObject", "arn:aws:s3:::b/k"),
            Decision::Allowed
        );
        // EC2 is not governed by RCPs: the Deny does not apply.
        assert_eq!(
            decide(
                "o-other",
                "ec2:DescribeInstances",
                "arn:aws:ec2:us-east-1:222222222222:instance/i-1"
            ),
            Decision::Allowed
        );
        // DynamoDB joined the list later: not a confident answer.
        assert_eq!(
            decide(
                "o-other",
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:222222222222:table/t"
            ),
            Decision::Indeterminate
        );
        // Not on resources of the management account.
        let management = Organization {
            management_account: Some("222222222222".into()),
            ..org.clone()
        };
        let mut r = request(
            "arn:aws:iam::999999999999:role/Outsider",
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        r.resource_account = Some("222222222222".into());
        r.context.add("aws:PrincipalOrgID", "o-other");
        assert_eq!(
            evaluate_in(&r, &set, &management).decision,
            Decision::Allowed
        );
    }

    // IAM User Guide, "Policy evaluation logic": explicit deny overrides allow.
    #[test]
    fn explicit_deny_wins() {
        let identity = policy(
            "id",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}),
        );
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let r = request(ROLE, "s3:DeleteObject", "arn:aws:s3:::b/k");
        assert_eq!(evaluate(&r, &set).decision, Decision::ExplicitlyDenied);
        let mut r = request(ROLE, "S3:getobject", "arn:aws:s3:::b/k");
        r.resource_account = Some("111111111111".into());
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
        let r = request(ROLE, "ec2:RunInstances", "*");
        assert_eq!(evaluate(&r, &set).decision, Decision::ImplicitlyDenied);
    }

    // IAM User Guide, "Cross-account policy evaluation logic": both sides must allow.
    #[test]
    fn cross_account_needs_both_sides() {
        let identity = policy(
            "id",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
        );
        let ap = policy(
            "ap",
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1/object/*"}]}),
        );
        let r = request(ROLE, "s3:GetObject", AP_OBJECT);
        let both = PolicySet {
            identity: vec![&identity],
            resource: Some((&ap, PolicyKind::AccessPoint)),
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &both).decision, Decision::Allowed);
        let resource_only = PolicySet {
            resource: Some((&ap, PolicyKind::AccessPoint)),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&r, &resource_only).decision,
            Decision::ImplicitlyDenied
        );
        // A session of the role is covered by the role ARN.
        let session = request(
            "arn:aws:sts::111111111111:assumed-role/Exec/nb",
            "s3:GetObject",
            AP_OBJECT,
        );
        assert_eq!(evaluate(&session, &both).decision, Decision::Allowed);
    }

    // Same account: a resource policy naming the principal is enough; naming only the account
    // delegates to identity policies.
    #[test]
    fn same_account_resource_policy() {
        let by_role = policy(
            "bucket",
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/R"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
        );
        let by_account = policy(
            "bucket",
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
        );
        let mut r = request(
            "arn:aws:iam::222222222222:role/R",
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        r.resource_account = Some("222222222222".into());
        let set = |p| PolicySet {
            resource: Some((p, PolicyKind::Resource)),
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &set(&by_role)).decision, Decision::Allowed);
        assert_eq!(
            evaluate(&r, &set(&by_account)).decision,
            Decision::ImplicitlyDenied
        );
    }

    // AWS PrivateLink guide: the endpoint policy only narrows; without an Allow there, denied.
    #[test]
    fn endpoint_policy_must_allow() {
        let identity = policy(
            "id",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        );
        let endpoint = policy(
            "vpce",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:ResourceAccount": "222222222222"}}}]}),
        );
        let set = PolicySet {
            identity: vec![&identity],
            endpoint: vec![&endpoint],
            ..Default::default()
        };
        let mut r = request(
            "arn:aws:iam::111111111111:role/Exec",
            "s3:GetObject",
            "arn:aws:s3:::other/k",
        );
        r.resource_account = Some("111111111111".into());
        assert_eq!(evaluate(&r, &set).decision, Decision::ImplicitlyDenied);
        r.resource = "arn:aws:s3:::mine/k".into();
        r.resource_account = Some("111111111111".into());
        let e = evaluate(&r, &set);
        assert!(e.reason.contains("endpoint"), "{}", e.reason);
    }

    // "Principal": "*" includes anonymous callers; Deny statements do not grant.
    #[test]
    fn anonymous_and_deny_star() {
        let bucket = policy(
            "bucket",
            json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
                   "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
        );
        let mut r = request("anonymous", "s3:GetObject", "arn:aws:s3:::b/k");
        r.resource_account = Some("222222222222".into());
        let set = PolicySet {
            resource: Some((&bucket, PolicyKind::Resource)),
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &set).decision, Decision::ImplicitlyDenied);
        r.context.add("aws:SecureTransport", "false");
        assert_eq!(evaluate(&r, &set).decision, Decision::ExplicitlyDenied);
    }

    // IAM User Guide, "NotPrincipal": with Allow it grants everyone not listed.
    #[test]
    fn not_principal_with_allow_grants_everyone_else() {
        let bucket = policy(
            "bucket",
            json!({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:role/Admin"}, "Action": "s3:GetObject", "Resource": "*"}]}),
        );
        let mut r = request("anonymous", "s3:GetObject", "arn:aws:s3:::b/k");
        r.resource_account = Some("222222222222".into());
        let set = PolicySet {
            resource: Some((&bucket, PolicyKind::Resource)),
            ..Default::default()
        };
        assert_eq!(evaluate(&r, &set).decision, Decision::Allowed);
    }

    #[test]
    fn unsupported_operator_is_indeterminate_not_a_guess() {
        let identity = policy(
            "id",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringFuzzy": {"aws:x": "y"}}}]}),
        );
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let mut r = request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k");
        r.resource_account = Some("111111111111".into());
        let e = evaluate(&r, &set);
        assert_eq!(e.decision, Decision::Indeterminate);
        assert_eq!(e.statements.len(), 1);
    }

    // S3 User Guide, "Configuring IAM policies for using access points": delegation from the
    // bucket, the access point grant, and the endpoint policy must allow both resources.
    #[test]
    fn access_point_layers_combine() {
        let ap = "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1";
        let identity = policy(
            "id",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("{ap}/object/*")}]}),
        );
        let ap_policy = policy(
            "ap",
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": format!("{ap}/object/*")}]}),
        );
        let delegation = policy(
            "bucket",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*",
            "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"], "Condition": {"StringEquals": {"s3:DataAccessPointAccount": "222222222222"}}}]}),
        );
        let no_delegation = policy(
            "bucket",
            json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}]}),
        );
        let ap_only_endpoint = policy(
            "vpce",
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": format!("{ap}/object/*")}]}),
        );
        let both_endpoint = policy(
            "vpce",
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": [format!("{ap}/object/*"), "arn:aws:s3:::test-bucket-1/*".to_string()]}]}),
        );
        let request = request(
            "arn:aws:sts::111111111111:assumed-role/Exec/nb",
            "s3:GetObject",
            AP_OBJECT,
        );
        let layers = |bucket, endpoint| AccessPointLayers {
            identity: vec![&identity],
            endpoint,
            access_point: Some(&ap_policy),
            bucket_policy: Some(bucket),
            bucket: "test-bucket-1".into(),
            bucket_account: "222222222222".into(),
        };
        assert_eq!(
            evaluate_via_access_point(&request, &layers(&delegation, vec![&both_endpoint]))
                .decision,
            Decision::Allowed
        );
        assert_eq!(
            evaluate_via_access_point(&request, &layers(&delegation, vec![])).decision,
            Decision::Allowed
        );
        let e = evaluate_via_access_point(&request, &layers(&delegation, vec![&ap_only_endpoint]));
        assert_eq!(e.decision, Decision::ImplicitlyDenied);
        assert!(e.reason.starts_with("bucket layer"), "{}", e.reason);
        let e = evaluate_via_access_point(&request, &layers(&no_delegation, vec![]));
        assert_eq!(e.decision, Decision::ImplicitlyDenied);
    }

    #[test]
    fn not_action_and_not_resource() {
        let identity = policy(
            "id",
            json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"}]}),
        );
        let set = PolicySet {
            identity: vec![&identity],
            ..Default::default()
        };
        let own = |resource: &str| {
            let mut r = request(ROLE, "s3:GetObject", resource);
            r.resource_account = Some("111111111111".into());
            r
        };
        assert_eq!(
            evaluate(&own("arn:aws:s3:::b/k"), &set).decision,
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&own("arn:aws:s3:::secret/k"), &set).decision,
            Decision::ImplicitlyDenied
        );
        assert_eq!(
            evaluate(&request(ROLE, "IAM:CreateUser", "*"), &set).decision,
            Decision::ImplicitlyDenied
        );
    }
}
