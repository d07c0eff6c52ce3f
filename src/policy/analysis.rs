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

fn is_wildcard_principal(entry: &PrincipalEntry) -> bool {
    match entry {
        PrincipalEntry::Everyone => true,
        PrincipalEntry::Aws(v) | PrincipalEntry::Service(v) | PrincipalEntry::Federated(v) => {
            v.contains('*') || v.contains('?')
        }
        PrincipalEntry::CanonicalUser(_) => false,
    }
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
    let allowed: Vec<Pattern> = allowed.iter().map(|a| Pattern::glob(a)).collect();
    let mut failures = Vec::new();
    for statement in allows(policy) {
        match &statement.resource {
            Some(r) if !r.negated => {
                for item in &r.items {
                    if !allowed.iter().any(|a| a.subsumes(&Pattern::glob(item))) {
                        failures.push(format!(
                            "{}: allows resource `{item}` outside {:?}",
                            statement.label(),
                            allowed_text(&allowed)
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

fn allowed_text(allowed: &[Pattern]) -> Vec<String> {
    allowed.iter().map(ToString::to_string).collect()
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
