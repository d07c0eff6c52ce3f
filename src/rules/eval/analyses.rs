//! The policy analyses a check calls: on the policy records of a resource (the analyses of
//! `crate::policy::analysis`), and on the organization's policies above an account (probe
//! requests of `crate::policy::organization`); and the note a failure gets when an
//! organization rule mitigates it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::findings::{Evidence, EvidenceValue, Finding, Status};
use crate::model::{PolicyField, PolicyRecord, ResourceType, parse_record};
use crate::policy::{Policy, PolicyError, PolicyKind, analysis};

use super::super::LoadedRule;
use super::super::index::View;
use super::super::spec::{AnalysisCall, AnalysisName, WhenAbsent};
use super::{Evaluator, EvidenceOf, Outcome, ReadAt, Scope, Verdict};

/// A policy record as the analyses read it: its document and the raw text AWS returned.
#[derive(Clone, Copy)]
struct RecordParts<'v> {
    document: Option<&'v Value>,
    /// The document as the snapshot holds it, when read typed: its evidence shares it.
    held: Option<&'v Arc<Value>>,
    raw: Option<&'v str>,
}

/// What a policy field holds: no policy, one, or a list (for the evidence's shape).
#[derive(Clone, Copy)]
enum Shape {
    Absent,
    One,
    Many,
}

impl<'a> Evaluator<'a> {
    /// The parsed policy of a record (`document`, `raw`), the `index`th record read at `at`,
    /// kept by where it was read while its entry is.
    fn policy_of(
        &self,
        at: &ReadAt,
        index: usize,
        RecordParts { document, raw, .. }: RecordParts<'_>,
        name: &str,
    ) -> Result<Arc<Policy>, PolicyError> {
        let (entry, path) = at;
        let key = (path.clone(), index);
        if let Some(cached) = self.cache_of(*entry, |c| c.policies.get(&key).cloned()) {
            return cached;
        }
        // Parsed outside the lock: another worker may parse the same record meanwhile, and
        // both get the same result.
        let parsed = parse_record(name, document, raw);
        self.cache_of(*entry, |c| c.policies.insert(key, parsed.clone()));
        parsed
    }

    pub(super) fn analysis(&self, call: &AnalysisCall, scope: Scope<'_>) -> Verdict {
        if call.name.organization_field().is_some() {
            return self.organization_analysis(call, scope);
        }
        let entry = self.entry(scope);
        let path = format!("{}{}", scope.prefix, call.policy);
        let label = |name: Option<&str>| match name {
            Some(name) => format!("{} {path} {name}", entry.id),
            None => format!("{} {path}", entry.id),
        };
        // The records, typed from the snapshot where the resource holds them (no JSON copy of
        // each document per rule), else from the JSON view (lists inside it, derived views).
        let typed = match (&entry.view, scope.value) {
            (View::Collected(resource), None) if !call.policy.contains('.') => {
                resource.policy_field(&call.policy)
            }
            _ => None,
        };
        let json;
        let (shape, records): (Shape, Vec<(String, RecordParts<'_>)>) = match typed {
            Some(field) => {
                if let Some(reason) = self.uncollected(scope, &call.policy) {
                    return Verdict::new(Outcome::Error, reason, Vec::new());
                }
                let parts = |r: Option<&'a PolicyRecord>| -> RecordParts<'a> {
                    RecordParts {
                        document: r.and_then(|r| r.document.as_deref()),
                        held: r.and_then(|r| r.document.as_ref()),
                        raw: r.and_then(|r| r.raw.as_deref()),
                    }
                };
                match field {
                    PolicyField::One(None) => (Shape::Absent, Vec::new()),
                    PolicyField::One(record) => (Shape::One, vec![(label(None), parts(record))]),
                    PolicyField::Many(records) => (
                        Shape::Many,
                        records
                            .into_iter()
                            .map(|(name, r)| (label(Some(name)), parts(r)))
                            .collect(),
                    ),
                }
            }
            None => {
                json = match self.read(scope, &call.policy) {
                    Ok(v) => v,
                    Err(reason) => return Verdict::new(Outcome::Error, reason, Vec::new()),
                };
                fn of(r: &Value) -> RecordParts<'_> {
                    RecordParts {
                        document: r.get("document"),
                        held: None,
                        raw: r.get("raw").and_then(Value::as_str),
                    }
                }
                match &*json {
                    Value::Null => (Shape::Absent, Vec::new()),
                    // A list of records (a role's identity policies).
                    Value::Array(items) => (
                        Shape::Many,
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let name = r
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .map_or_else(|| format!("{i}"), str::to_string);
                                (label(Some(&name)), of(r))
                            })
                            .collect(),
                    ),
                    record => (Shape::One, vec![(label(None), of(record))]),
                }
            }
        };
        let at: ReadAt = (scope.entry, path.clone());
        // One document the snapshot holds is cited as it is held, not copied.
        let held = match (shape, records.first()) {
            (Shape::One, Some((_, record))) => record.held,
            _ => None,
        };
        let mut evidence = vec![Evidence {
            path: path.as_str().into(),
            value: EvidenceValue::Json(match held {
                Some(held) => Arc::clone(held),
                None => self.shared(at.clone(), EvidenceOf::Documents, || {
                    let document = |r: &RecordParts<'_>| r.document.cloned().unwrap_or(Value::Null);
                    match shape {
                        Shape::Absent => Value::Null,
                        Shape::One => records.first().map_or(Value::Null, |(_, r)| document(r)),
                        Shape::Many => {
                            Value::Array(records.iter().map(|(_, r)| document(r)).collect())
                        }
                    }
                }),
            }),
        }];
        let mut missing = Vec::new();
        let mut policies = Vec::new();
        for (index, (name, record)) in records.iter().enumerate() {
            if record.document.is_none_or(Value::is_null) && record.raw.is_none() {
                missing.push(name.clone());
                continue;
            }
            match self.policy_of(&at, index, *record, name) {
                Ok(p) => policies.push(p),
                Err(e) => {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    return Verdict::new(
                        Outcome::Error,
                        format!("invalid policy document: {first}"),
                        evidence,
                    );
                }
            }
        }
        if !missing.is_empty() {
            return Verdict::new(
                Outcome::Error,
                format!("policy documents not collected: {}", missing.join(", ")),
                evidence,
            );
        }
        if policies.is_empty() {
            return match call.when_absent {
                WhenAbsent::Pass => Verdict::new(
                    Outcome::Pass,
                    format!("{path}: no policy (nothing is granted)"),
                    evidence,
                ),
                WhenAbsent::Fail => {
                    Verdict::new(Outcome::Fail, format!("{path}: no policy is set"), evidence)
                }
            };
        }
        let refs: Vec<&Policy> = policies.iter().map(Arc::as_ref).collect();
        let kind = match call.kind {
            Some(crate::rules::spec::PolicyAttachment::AccessPoint) => PolicyKind::AccessPoint,
            Some(crate::rules::spec::PolicyAttachment::Resource) | None => PolicyKind::Resource,
        };
        let attached_as = match call.name {
            AnalysisName::RestrictedToAccount | AnalysisName::NotFullAccess => PolicyKind::Endpoint,
            AnalysisName::S3OnlyViaAccessPoints | AnalysisName::NoAdminWildcards => {
                PolicyKind::Identity
            }
            _ => kind,
        };
        if let Some(statement) = refs
            .iter()
            .find_map(|p| p.statement_without_principal(attached_as))
        {
            return Verdict::new(
                Outcome::Error,
                format!(
                    "invalid policy document: {} has no Principal, which AWS requires in resource-based and endpoint policies (it would refuse this document)",
                    statement.label()
                ),
                evidence,
            );
        }
        let account = self.string(call.account.as_ref(), scope);
        // Every policy must pass; the reasons shown are those of the side that decided.
        let per_policy = |f: &dyn Fn(&Policy) -> analysis::Verdict| -> analysis::Verdict {
            let verdicts: Vec<analysis::Verdict> = refs.iter().map(|p| f(p)).collect();
            let passed = verdicts.iter().all(|v| v.passed);
            let reasons = verdicts
                .into_iter()
                .filter(|v| v.passed == passed)
                .flat_map(|v| v.reasons)
                .collect();
            analysis::Verdict { passed, reasons }
        };
        let result = match call.name {
            AnalysisName::NotPublic => per_policy(&|p| analysis::not_public(p, kind)),
            AnalysisName::GrantsOnlyPrincipals => {
                let principals = self.strings(call.principals.as_ref(), scope);
                evidence.push(Evidence {
                    path: "expected principals".into(),
                    value: json!(principals).into(),
                });
                per_policy(&|p| analysis::grants_only_principals(p, &principals, call.require_all))
            }
            AnalysisName::RestrictedToAccount => {
                let buckets = self.strings(call.known_buckets.as_ref(), scope);
                let exceptions = self.strings(call.exceptions.as_ref(), scope);
                let organization = self.string(call.organization.as_ref(), scope);
                per_policy(&|p| {
                    analysis::restricted_to_account_or_organization(
                        p,
                        &account,
                        &buckets,
                        &exceptions,
                        Some(&organization),
                    )
                })
            }
            AnalysisName::NotFullAccess => per_policy(&analysis::not_full_access),
            AnalysisName::DelegatesToAccessPoints => {
                per_policy(&|p| analysis::delegates_to_access_points(p, &account))
            }
            AnalysisName::DeniesInsecureTransport => {
                let bucket = self.string(call.bucket.as_ref(), scope);
                per_policy(&|p| analysis::denies_insecure_transport(p, &bucket, &account))
            }
            AnalysisName::ActionsWithin => {
                let actions = self.strings(call.actions.as_ref(), scope);
                per_policy(&|p| analysis::actions_within(p, &actions))
            }
            AnalysisName::ResourcesWithin => {
                let resources = self.strings(call.resources.as_ref(), scope);
                per_policy(&|p| analysis::resources_within(p, &resources))
            }
            AnalysisName::S3OnlyViaAccessPoints => {
                let access_points = self.strings(call.access_points.as_ref(), scope);
                analysis::s3_only_via_access_points(&refs, &access_points)
            }
            AnalysisName::NoAdminWildcards => analysis::no_admin_wildcards(&refs),
            AnalysisName::TrustsOnlyService => {
                let service = self.string(call.service.as_ref(), scope);
                per_policy(&|p| analysis::trusts_only_service(p, &service))
            }
            // Answered by `organization_analysis`.
            AnalysisName::ScpsDeny | AnalysisName::DeniesOutsidePrincipals => {
                return Verdict::new(
                    Outcome::Error,
                    format!("{} is an analysis of the organization", call.name.as_str()),
                    evidence,
                );
            }
        };
        evidence.push(Evidence {
            path: format!("{} {}", call.name.as_str(), path).into(),
            value: json!(result.reasons).into(),
        });
        let message = format!("{path}: {}", result.reasons.join("; "));
        Verdict::new(
            if result.passed {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            message,
            evidence,
        )
    }
}

impl Evaluator<'_> {
    /// The probe contexts of an analysis: one map, or a list of maps; none: one request
    /// without extra keys.
    fn probe_contexts(
        &self,
        call: &AnalysisCall,
        scope: Scope<'_>,
    ) -> Vec<BTreeMap<String, String>> {
        let given = call.context.as_ref().map(|c| self.resolve(c, scope));
        let maps: Vec<Value> = match given {
            None => vec![json!({})],
            Some(Value::Array(items)) => items,
            Some(one) => vec![one],
        };
        maps.iter()
            .map(|m| {
                m.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// `scps_deny` and `denies_outside_principals`: questions to the organization's policies
    /// above the account (and, for the second, its buckets' policies), by probe requests.
    fn organization_analysis(&self, call: &AnalysisCall, scope: Scope<'_>) -> Verdict {
        use crate::model::OrganizationPolicyType as Kind;
        use crate::policy::organization::{self as perimeter, Answer, ProbeRequest};
        let entry = self.entry(scope);
        let account = entry.account;
        let field = call.policy.as_str();
        let mut evidence = vec![Evidence {
            path: field.into(),
            value: self
                .shared((scope.entry, field.to_string()), EvidenceOf::Itself, || {
                    entry.field(field).map_or(Value::Null, Cow::into_owned)
                })
                .into(),
        }];
        let Some(org) = self.snapshot.organization.as_ref() else {
            return Verdict::new(
                Outcome::Error,
                "the organization was not collected (no `organization:` in the configuration)"
                    .into(),
                evidence,
            );
        };
        let kind = match call.name {
            AnalysisName::ScpsDeny => Kind::ServiceControlPolicy,
            _ => Kind::ResourceControlPolicy,
        };
        let parsed = match org.parsed_levels(account, kind) {
            Ok(levels) => levels,
            Err(reason) => {
                return Verdict::new(Outcome::Error, format!("not evaluated: {reason}"), evidence);
            }
        };
        let level_refs: Vec<Vec<&Policy>> = parsed
            .iter()
            .map(|l| l.iter().map(Arc::as_ref).collect())
            .collect();
        let actions = self.strings(call.actions.as_ref(), scope);
        let contexts = self.probe_contexts(call, scope);
        let management = org.management_account_id.as_deref();
        let answer = match call.name {
            AnalysisName::ScpsDeny => {
                let resources = self.strings(call.resources.as_ref(), scope);
                let requests: Vec<ProbeRequest<'_>> = actions
                    .iter()
                    .flat_map(|action| resources.iter().map(move |resource| (action, resource)))
                    .flat_map(|(action, resource)| {
                        contexts.iter().map(move |context| ProbeRequest {
                            action,
                            resource,
                            context,
                        })
                    })
                    .collect();
                perimeter::scps_deny(account, &level_refs, management, &requests)
            }
            _ => {
                // Each dataset bucket of this account, with its own policy.
                let buckets = self.strings(call.bucket.as_ref(), scope);
                let Some(collected) = self.snapshot.accounts.get(account) else {
                    return Verdict::new(
                        Outcome::Error,
                        format!(
                            "not evaluated: account {account} was not collected, so its buckets' policies are unknown"
                        ),
                        evidence,
                    );
                };
                let mut answers = Vec::new();
                for bucket in &buckets {
                    let Some(record) = collected.s3_buckets.get(bucket) else {
                        let gaps =
                            self.snapshot
                                .population_gaps(ResourceType::S3Bucket, account, None);
                        if !gaps.is_empty() {
                            answers.push(Answer::Unknown(vec![format!(
                                "bucket {bucket} could not be read ({})",
                                gaps.iter()
                                    .map(|g| format!("{}: {}", g.api_call, g.error))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )]));
                        }
                        continue;
                    };
                    if let Some(error) = record.collection_errors.get("policy") {
                        answers.push(Answer::Unknown(vec![format!(
                            "the policy of bucket {bucket} was not collected ({error})"
                        )]));
                        continue;
                    }
                    let policy = match record
                        .policy
                        .as_ref()
                        .map(|p| p.policy(&format!("{bucket} bucket policy")))
                    {
                        Some(Ok(p)) => Some(p),
                        Some(Err(e)) => {
                            let first =
                                e.to_string().lines().next().unwrap_or_default().to_string();
                            return Verdict::new(
                                Outcome::Error,
                                format!("invalid policy document: {first}"),
                                evidence,
                            );
                        }
                        None => None,
                    };
                    evidence.push(Evidence {
                        path: format!("bucket {bucket} policy").into(),
                        value: record
                            .policy
                            .as_ref()
                            .and_then(|p| p.document.clone())
                            .unwrap_or_else(|| Arc::new(Value::Null))
                            .into(),
                    });
                    let resource = format!("arn:aws:s3:::{bucket}/xscan-probe");
                    let requests: Vec<ProbeRequest<'_>> = actions
                        .iter()
                        .flat_map(|action| {
                            let resource = resource.as_str();
                            contexts.iter().map(move |context| ProbeRequest {
                                action,
                                resource,
                                context,
                            })
                        })
                        .collect();
                    answers.push(perimeter::denies_outside_principals(
                        account,
                        policy.as_deref(),
                        &level_refs,
                        management,
                        &requests,
                    ));
                }
                if answers.is_empty() {
                    return Verdict::new(
                        Outcome::Error,
                        format!(
                            "not evaluated: none of the buckets {} is in account {account}",
                            buckets.join(", ")
                        ),
                        evidence,
                    );
                }
                Answer::combine(answers)
            }
        };
        let (outcome, reasons, verb) = match answer {
            Answer::Holds(r) => (Outcome::Pass, r, "refused"),
            Answer::Broken(r) => (Outcome::Fail, r, "allowed"),
            Answer::Unknown(r) => (Outcome::Error, r, "not decided"),
        };
        evidence.push(Evidence {
            path: format!("{} {field}", call.name.as_str()).into(),
            value: json!(reasons).into(),
        });
        Verdict::new(
            outcome,
            format!("{field}: {verb}: {}", reasons.join("; ")),
            evidence,
        )
    }
}

/// Failures that an organization rule holding in the same account keeps from being exploited
/// or repeated say so (message and evidence); they stay failures.
pub(super) fn note_mitigations(rules: &[LoadedRule], findings: &mut [Finding]) {
    let mut mitigations = Mitigations::new(rules);
    findings.iter().for_each(|f| mitigations.note_holding(f));
    findings.iter_mut().for_each(|f| mitigations.apply(f));
}

/// The rules that mitigate others (`mitigated_by`), and which of them hold in which account.
pub(super) struct Mitigations<'r> {
    by_rule: HashMap<&'r str, &'r [crate::rules::spec::Mitigation]>,
    /// (rule id, account) of each account rule that passes.
    holding: std::collections::HashSet<(String, String)>,
}

impl<'r> Mitigations<'r> {
    pub(super) fn new(rules: &'r [LoadedRule]) -> Self {
        Self {
            by_rule: rules
                .iter()
                .filter(|r| !r.spec.mitigated_by.is_empty())
                .map(|r| (r.spec.id.as_str(), r.spec.mitigated_by.as_slice()))
                .collect(),
            holding: std::collections::HashSet::new(),
        }
    }

    /// Notes `finding` when it is an account rule that holds.
    pub(super) fn note_holding(&mut self, finding: &Finding) {
        if finding.status == Status::Pass && finding.resource.resource_type == ResourceType::Account
        {
            self.holding.insert((
                finding.rule_id().to_string(),
                finding.resource.account.clone(),
            ));
        }
    }

    /// Whether a result of `rule_id` with `status` may be one [`Mitigations::apply`] changes.
    pub(super) fn may_apply(&self, rule_id: &str, status: Status) -> bool {
        !self.holding.is_empty() && status == Status::Fail && self.by_rule.contains_key(rule_id)
    }

    /// Says so in `finding` when it fails and a rule that mitigates it holds in its account.
    pub(super) fn apply(&self, finding: &mut Finding) {
        if self.holding.is_empty() || finding.status != Status::Fail {
            return;
        }
        let Some(list) = self.by_rule.get(finding.rule_id()) else {
            return;
        };
        for mitigation in list.iter() {
            if self
                .holding
                .contains(&(mitigation.rule.clone(), finding.resource.account.clone()))
            {
                finding.message = format!(
                    "{} — mitigated, still a finding: {} holds in account {} ({})",
                    finding.message, mitigation.rule, finding.resource.account, mitigation.because
                )
                .into();
                let mut evidence = finding.evidence.to_vec();
                evidence.push(Evidence {
                    path: format!("mitigated_by {}", mitigation.rule).into(),
                    value: json!(mitigation.because).into(),
                });
                finding.evidence = evidence.into();
            }
        }
    }
}
