//! Pure evaluation: snapshot + rules + parameters -> findings. Never prints, never fails as a
//! whole: every (rule, resource) in scope gets pass, fail, error or skipped, with the evidence
//! it was decided on. Missing inputs become `error`, never `pass`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use serde_json::{Value, json};

use crate::findings::{Evidence, Finding, ResourceRef, Status};
use crate::model::{AccountRole, ResourceType, Snapshot, parse_record};
use crate::policy::{Policy, PolicyError, PolicyKind, analysis};

use super::LoadedRule;
use super::index::{Entry, SnapshotIndex};
use super::spec::{
    AnalysisCall, AnalysisName, Condition, EachTest, FieldTest, Quantifier, RelatedTest, Relation,
    WhenAbsent,
};

/// The three outcomes of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Error,
}

/// An outcome with its explanation and the values it was decided on.
#[derive(Debug, Clone)]
struct Verdict {
    outcome: Outcome,
    message: String,
    evidence: Vec<Evidence>,
}

impl Verdict {
    fn new(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Self {
        Self {
            outcome,
            message,
            evidence,
        }
    }
}

/// Where a condition is evaluated: a resource, and the value paths are relative to (the
/// resource itself, or one element of a list inside it).
#[derive(Clone, Copy)]
struct Scope<'v> {
    entry: usize,
    value: &'v Value,
    /// Prefix for evidence paths (`egress[2].`, `subnet subnet-1: `).
    prefix: &'v str,
    /// True at the resource's top level (collection errors apply to its fields).
    top_level: bool,
}

/// A region (None: account-wide) and why its population is unknown.
type RegionGap = (Option<String>, String);

/// Evaluates rules over one snapshot.
pub struct Evaluator<'a> {
    snapshot: &'a Snapshot,
    index: SnapshotIndex<'a>,
    parameters: BTreeMap<String, Value>,
    configured_accounts: Vec<(String, AccountRole)>,
    /// Parsed policies by the address of their record in a view (views live as long as `self`).
    policy_cache: Mutex<HashMap<usize, Result<Arc<Policy>, PolicyError>>>,
    /// Evidence values by the address they were read from, so that a document that is evidence
    /// for several rules and results is held once.
    shared_evidence: Mutex<HashMap<(usize, EvidenceOf), Arc<Value>>>,
    /// Parameters whose derivation met a collection gap, with the reason.
    parameter_gaps: BTreeMap<String, String>,
    /// The perimeter paths of the notebooks (`path` checks) by (account, region, notebook),
    /// when a configuration gave them.
    paths: Option<HashMap<(String, String, String), Vec<crate::paths::PathResult>>>,
}

/// What a shared evidence value holds of the value at its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EvidenceOf {
    /// The value itself.
    Itself,
    /// The `document` of a policy record, or of each record of a list.
    Documents,
}

impl<'a> Evaluator<'a> {
    /// Builds the index. `accounts` are the accounts in scope with their roles (from the
    /// config); one missing from the snapshot makes every rule that applies to it `error`.
    pub fn new(
        snapshot: &'a Snapshot,
        parameters: BTreeMap<String, Value>,
        accounts: Vec<(String, AccountRole)>,
    ) -> Self {
        let roles = accounts.clone();
        let role_of =
            move |account: &str| roles.iter().find(|(id, _)| id == account).map(|(_, r)| *r);
        Self {
            snapshot,
            index: SnapshotIndex::build(snapshot, &role_of),
            parameters,
            configured_accounts: accounts,
            policy_cache: Mutex::new(HashMap::new()),
            shared_evidence: Mutex::new(HashMap::new()),
            parameter_gaps: BTreeMap::new(),
            paths: None,
        }
    }

    /// The notebooks' perimeter paths, for `path` checks ([`crate::paths::analyze`]).
    pub fn with_paths(mut self, paths: Vec<crate::paths::PathResult>) -> Self {
        let mut by_notebook: HashMap<(String, String, String), Vec<crate::paths::PathResult>> =
            HashMap::new();
        for path in paths {
            by_notebook
                .entry((
                    path.account.clone(),
                    path.region.clone(),
                    path.notebook.clone(),
                ))
                .or_default()
                .push(path);
        }
        self.paths = Some(by_notebook);
        self
    }

    /// Parameters derived from data that was not all collected, with why: a rule reading one
    /// is `error` (see [`crate::config::Config::parameter_gaps`]).
    pub fn with_parameter_gaps(mut self, gaps: BTreeMap<String, String>) -> Self {
        self.parameter_gaps = gaps;
        self
    }

    /// Number of indexed resources.
    pub fn resource_count(&self) -> usize {
        self.index.entries.len()
    }

    /// Evaluates every rule; results are ordered by rule, then resource ARN. Rules are shared
    /// out to one worker per core; the order of the results does not depend on it.
    pub fn evaluate_all(&self, rules: &[LoadedRule]) -> Vec<Finding> {
        // The results are most of a scan's memory: their room is taken once (a result per
        // resource of each rule's type; unlisted populations may add a few), and each rule's
        // results move there as soon as the rules before it are done.
        let expected = rules
            .iter()
            .map(|r| self.index.of_type(r.spec.resource_type).len())
            .sum();
        let mut all = Vec::with_capacity(expected);
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, rules.len().max(1));
        let next = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel::<(usize, Vec<Finding>)>();
        // A worker that panics drops its sender; the scope then re-raises the panic.
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let (sender, next) = (sender.clone(), &next);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(rule) = rules.get(i) else { break };
                        if sender.send((i, self.evaluate_rule(rule))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut done: BTreeMap<usize, Vec<Finding>> = BTreeMap::new();
            let mut wanted = 0;
            for (i, findings) in receiver {
                done.insert(i, findings);
                while let Some(findings) = done.remove(&wanted) {
                    all.extend(findings);
                    wanted += 1;
                }
            }
        });
        note_mitigations(rules, &mut all);
        all
    }

    /// `value` (read from a view or the parameters) as shared evidence.
    fn evidence_of(&self, value: &Value) -> Arc<Value> {
        if !matches!(value, Value::Array(_) | Value::Object(_)) {
            return Arc::new(value.clone());
        }
        self.shared(value, EvidenceOf::Itself, || value.clone())
    }

    /// The shared evidence `what` of the value at `at`, made once.
    fn shared(&self, at: &Value, what: EvidenceOf, make: impl FnOnce() -> Value) -> Arc<Value> {
        let key = (at as *const Value as usize, what);
        let mut cache = self
            .shared_evidence
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.entry(key).or_insert_with(|| Arc::new(make())).clone()
    }

    /// Evaluates one rule over every resource of its type, plus an `error` result for each
    /// account/region whose population of that type is unknown.
    pub fn evaluate_rule(&self, rule: &LoadedRule) -> Vec<Finding> {
        let spec = &rule.spec;
        let mut findings = Vec::with_capacity(self.index.of_type(spec.resource_type).len());
        let finding = |status, resource, message: String, evidence| {
            Finding::new(
                &spec.id,
                &spec.title,
                spec.severity,
                status,
                resource,
                message,
                evidence,
            )
        };
        let read = self.read_parameters(rule);
        // `${perimeter.*}` parameters the rule reads that the configuration does not provide.
        let missing: Vec<&str> = read
            .iter()
            .filter(|name| name.starts_with("perimeter.") && !self.parameters.contains_key(*name))
            .map(String::as_str)
            .collect();
        let gapped: Vec<String> = read
            .iter()
            .filter_map(|name| {
                self.parameter_gaps
                    .get(name)
                    .map(|why| format!("{name} {why}"))
            })
            .collect();
        // Read as `parameter` resolves it (trimmed), so `${ region.s3_prefix_lists }` counts too.
        let reads_prefix_lists = read.iter().any(|name| name == "region.s3_prefix_lists");
        for &i in self.index.of_type(spec.resource_type) {
            let entry = &self.index.entries[i];
            // A parameter derived from collected data carries that data's gaps: with the
            // prefix lists unknown, "egress only to the S3 prefix list" cannot be judged.
            let prefix_list_gaps: Vec<String> = if reads_prefix_lists {
                self.snapshot
                    .population_gaps(ResourceType::PrefixList, entry.account, entry.region)
                    .iter()
                    .map(|g| format!("{}:{}: {}", g.service, g.api_call, g.error))
                    .collect()
            } else {
                Vec::new()
            };
            let verdict = if !gapped.is_empty() {
                (
                    Status::Error,
                    format!("not evaluated: {}", gapped.join("; ")),
                    Vec::new(),
                )
            } else if !prefix_list_gaps.is_empty() {
                (
                    Status::Error,
                    format!(
                        "not evaluated: the rule compares with the region's S3 managed prefix lists, which could not be listed ({})",
                        prefix_list_gaps.join("; ")
                    ),
                    vec![Evidence {
                        path: "collection_gap".into(),
                        value: Arc::new(json!(prefix_list_gaps)),
                    }],
                )
            } else if missing.is_empty() {
                self.evaluate_resource(rule, i)
            } else {
                (
                    Status::Error,
                    format!(
                        "not evaluated: the rule needs {} from the configuration",
                        missing.join(", ")
                    ),
                    Vec::new(),
                )
            };
            findings.push(finding(
                verdict.0,
                resource_ref(entry),
                verdict.1,
                verdict.2,
            ));
        }
        // Without an organization in scope there is nothing to judge the accounts on: say so
        // for each, rather than leaving the rule without a result.
        if spec.resource_type == ResourceType::Account && self.snapshot.organization.is_none() {
            for (account, _) in &self.configured_accounts {
                findings.push(finding(
                    Status::Skipped,
                    ResourceRef {
                        resource_type: ResourceType::Account,
                        id: account.clone(),
                        arn: format!("arn:aws:organizations:::account/{account}"),
                        account: account.clone(),
                        region: None,
                    },
                    "not evaluated: the organization is not in scope (no `organization:` in the configuration), so its SCPs and RCPs were not read".into(),
                    Vec::new(),
                ));
            }
        }
        // Populations that could not be listed, and configured accounts never collected.
        for (account, gap_regions) in self.unknown_populations(spec.resource_type) {
            let role = self.role_of(&account);
            if !spec.applies_to.as_ref().is_none_or(|a| {
                a.account_roles.is_empty() || role.is_some_and(|r| a.account_roles.contains(&r))
            }) {
                continue;
            }
            for (region, reason) in gap_regions {
                let resource = ResourceRef {
                    resource_type: spec.resource_type,
                    id: "*".into(),
                    arn: format!(
                        "arn:aws:{}:{}:{account}:{}/*",
                        spec.resource_type.service(),
                        region.as_deref().unwrap_or(""),
                        spec.resource_type.as_str()
                    ),
                    account: account.clone(),
                    region: region.clone(),
                };
                findings.push(finding(
                    Status::Error,
                    resource,
                    format!("not evaluated: the {} resources of this account could not be listed ({reason})", spec.resource_type),
                    vec![Evidence {
                        path: "collection_gap".into(),
                        value: Arc::new(json!(reason)),
                    }],
                ));
            }
        }
        findings.sort_by(|a, b| a.resource.arn.cmp(&b.resource.arn));
        findings
    }

    /// `${...}` parameters the rule reads (check and applies_to).
    fn read_parameters(&self, rule: &LoadedRule) -> Vec<String> {
        let text =
            serde_json::to_string(&(&rule.spec.check, &rule.spec.applies_to)).unwrap_or_default();
        let mut names: Vec<String> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| {
                rest.split_once('}')
                    .map(|(name, _)| name.trim().to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn role_of(&self, account: &str) -> Option<AccountRole> {
        self.snapshot
            .accounts
            .get(account)
            .and_then(|a| a.role)
            .or_else(|| {
                self.configured_accounts
                    .iter()
                    .find(|(id, _)| id == account)
                    .map(|(_, r)| *r)
            })
    }

    /// (account, [(region, reason)]) whose population of `t` is unknown; one entry per
    /// (account, region), reasons joined.
    fn unknown_populations(&self, t: ResourceType) -> Vec<(String, Vec<RegionGap>)> {
        let mut out: Vec<(String, Vec<RegionGap>)> = Vec::new();
        let mut add = |account: &str, region: Option<String>, reason: String| {
            let index = match out.iter().position(|(a, _)| a == account) {
                Some(i) => i,
                None => {
                    out.push((account.to_string(), Vec::new()));
                    out.len() - 1
                }
            };
            let regions = &mut out[index].1;
            match regions.iter_mut().find(|(r, _)| *r == region) {
                Some((_, existing)) => {
                    existing.push_str("; ");
                    existing.push_str(&reason);
                }
                None => regions.push((region, reason)),
            }
        };
        for gap in &self.snapshot.metadata.collection_gaps {
            if gap.resource_types.contains(&t) {
                add(
                    &gap.account,
                    gap.region.clone(),
                    format!("{}:{} failed: {}", gap.service, gap.api_call, gap.error),
                );
            }
        }
        // An account's organization view does not depend on reaching the account.
        let accounts_listed = if t == ResourceType::Account {
            &[][..]
        } else {
            &self.configured_accounts[..]
        };
        for (account, _) in accounts_listed {
            let explained = self
                .snapshot
                .metadata
                .collection_gaps
                .iter()
                .any(|g| &g.account == account && g.resource_types.contains(&t));
            if !self.snapshot.accounts.contains_key(account) && !explained {
                add(account, None, "the account was not collected".into());
            }
        }
        out
    }

    fn evaluate_resource(&self, rule: &LoadedRule, i: usize) -> (Status, String, Vec<Evidence>) {
        let entry = &self.index.entries[i];
        let scope = Scope {
            entry: i,
            value: &entry.view,
            prefix: "",
            top_level: true,
        };
        if let Some(applies) = &rule.spec.applies_to {
            if !applies.account_roles.is_empty()
                && !entry
                    .account_role
                    .is_some_and(|r| applies.account_roles.contains(&r))
            {
                let role = entry
                    .account_role
                    .map_or("not in scope", AccountRole::as_str);
                return (
                    Status::Skipped,
                    format!("not applicable: account {} is {role}", entry.account),
                    vec![Evidence {
                        path: "account_role".into(),
                        value: Arc::new(json!(entry.account_role.map(AccountRole::as_str))),
                    }],
                );
            }
            if let Some(when) = &applies.when {
                let v = self.condition(when, scope);
                match v.outcome {
                    Outcome::Fail => {
                        return (
                            Status::Skipped,
                            format!("not applicable: {}", v.message),
                            v.evidence,
                        );
                    }
                    Outcome::Error => {
                        return (
                            Status::Error,
                            format!("not evaluated: {}", v.message),
                            v.evidence,
                        );
                    }
                    Outcome::Pass => {}
                }
            }
        }
        let v = self.condition(&rule.spec.check, scope);
        let status = match v.outcome {
            Outcome::Pass => Status::Pass,
            Outcome::Fail => Status::Fail,
            Outcome::Error => Status::Error,
        };
        let message = if status == Status::Error {
            format!("not evaluated: {}", v.message)
        } else {
            v.message
        };
        (status, message, v.evidence)
    }

    fn condition(&self, condition: &Condition, scope: Scope<'_>) -> Verdict {
        match condition {
            Condition::All(items) => combine_all(items.iter().map(|c| self.condition(c, scope))),
            Condition::Any(items) => combine_any(items.iter().map(|c| self.condition(c, scope))),
            Condition::Not(inner) => {
                let v = self.condition(inner, scope);
                let outcome = match v.outcome {
                    Outcome::Pass => Outcome::Fail,
                    Outcome::Fail => Outcome::Pass,
                    Outcome::Error => Outcome::Error,
                };
                let message = if outcome == Outcome::Fail {
                    format!("must not hold: {}", v.message)
                } else {
                    v.message
                };
                Verdict::new(outcome, message, v.evidence)
            }
            Condition::Field(test) => self.field(test, scope),
            Condition::Each(test) => self.each(test, scope),
            Condition::Related(test) => self.related(test, scope),
            Condition::Analysis(call) => self.analysis(call, scope),
            Condition::Path(test) => self.path(test.question, scope),
            Condition::Forced(holds) => Verdict::new(
                if *holds { Outcome::Pass } else { Outcome::Fail },
                format!("(mutant: forced {})", if *holds { "true" } else { "false" }),
                Vec::new(),
            ),
        }
    }

    fn entry(&self, scope: Scope<'_>) -> &Entry<'a> {
        &self.index.entries[scope.entry]
    }

    /// Reads a dotted path (or a `${perimeter.*}` parameter); `Err` when the field could not
    /// be collected.
    fn read<'v>(&'v self, scope: Scope<'v>, path: &str) -> Result<&'v Value, String> {
        static NULL: Value = Value::Null;
        if let Some(name) = path.strip_prefix("${").and_then(|p| p.strip_suffix('}')) {
            return Ok(self.parameters.get(name.trim()).unwrap_or(&NULL));
        }
        if scope.top_level {
            let first = path.split('.').next().unwrap_or(path);
            if let Some(error) = self
                .entry(scope)
                .collection_errors
                .and_then(|e| e.get(first))
            {
                return Err(format!(
                    "{}{first} could not be collected: {error}",
                    scope.prefix
                ));
            }
        }
        let mut value = scope.value;
        for segment in path.split('.') {
            value = match value {
                Value::Object(map) => map.get(segment).unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        Ok(value)
    }

    /// Substitutes `${...}` parameters in a rule value.
    fn resolve(&self, value: &Value, scope: Scope<'_>) -> Value {
        match value {
            Value::String(s) => self.resolve_str(s, scope),
            Value::Array(items) => {
                // A parameter that is a list is spliced into the surrounding list.
                let mut out = Vec::new();
                for item in items {
                    match self.resolve(item, scope) {
                        Value::Array(inner) if matches!(item, Value::String(s) if s.starts_with("${")) => {
                            out.extend(inner)
                        }
                        other => out.push(other),
                    }
                }
                Value::Array(out)
            }
            other => other.clone(),
        }
    }

    fn parameter(&self, name: &str, scope: Scope<'_>) -> Value {
        let entry = self.entry(scope);
        match name {
            "resource.account" => json!(entry.account),
            "resource.region" => json!(entry.region),
            "resource.id" => json!(entry.id),
            "resource.arn" => json!(entry.arn),
            // The collected organization's id (null without one).
            "organization.id" => json!(
                self.snapshot
                    .organization
                    .as_ref()
                    .and_then(|o| o.id.as_deref())
            ),
            "region.s3_prefix_lists" => json!(
                self.index
                    .s3_prefix_lists(entry.account, entry.region.unwrap_or(""))
            ),
            other => self.parameters.get(other).cloned().unwrap_or(Value::Null),
        }
    }

    fn resolve_str(&self, s: &str, scope: Scope<'_>) -> Value {
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !name.contains("${")
        {
            return self.parameter(name.trim(), scope);
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push_str(&rest[..start]);
            match self.parameter(rest[start + 2..start + len].trim(), scope) {
                Value::String(v) => out.push_str(&v),
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Value::String(out)
    }

    fn field(&self, test: &FieldTest, scope: Scope<'_>) -> Verdict {
        let path = format!("{}{}", scope.prefix, test.path);
        let observed = match self.read(scope, &test.path) {
            Ok(v) => v,
            Err(reason) => return Verdict::new(Outcome::Error, reason, Vec::new()),
        };
        let evidence = vec![Evidence {
            path: path.clone(),
            value: self.evidence_of(observed),
        }];
        let shown = render(observed);
        let (ok, expectation) = if let Some(expected) = &test.equals {
            let expected = self.resolve(expected, scope);
            (
                observed == &expected,
                format!("expected {}", render(&expected)),
            )
        } else if let Some(unexpected) = &test.not_equals {
            let unexpected = self.resolve(unexpected, scope);
            (
                observed != &unexpected,
                format!("must not be {}", render(&unexpected)),
            )
        } else if let Some(set) = &test.one_of {
            let set = self.resolve(set, scope);
            let items = set.as_array().cloned().unwrap_or_else(|| vec![set.clone()]);
            (
                items.contains(observed),
                format!("expected one of {}", render(&set)),
            )
        } else if let Some(set) = &test.not_one_of {
            let set = self.resolve(set, scope);
            let items = set.as_array().cloned().unwrap_or_else(|| vec![set.clone()]);
            (
                !items.contains(observed),
                format!("must not be one of {}", render(&set)),
            )
        } else if let Some(glob) = &test.matches {
            let glob = match self.resolve_str(glob, scope) {
                Value::String(g) => g,
                other => other.to_string(),
            };
            let ok = observed
                .as_str()
                .is_some_and(|s| crate::policy::wildcard::glob_match(&glob, s));
            (ok, format!("expected to match `{glob}`"))
        } else if let Some(present) = test.present {
            (
                observed.is_null() != present,
                if present {
                    "expected to be set".into()
                } else {
                    "expected to be unset".into()
                },
            )
        } else if let Some(empty) = test.empty {
            let is_empty = match observed {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            (
                is_empty == empty,
                if empty {
                    "expected to be empty".into()
                } else {
                    "expected not to be empty".into()
                },
            )
        } else if let Some(item) = &test.contains {
            let item = self.resolve(item, scope);
            let ok = observed.as_array().is_some_and(|a| match &item {
                Value::Array(any_of) => any_of.iter().any(|i| a.contains(i)),
                single => a.contains(single),
            });
            (ok, format!("expected to contain {}", render(&item)))
        } else {
            return Verdict::new(
                Outcome::Error,
                format!("{path}: the test has no operator"),
                evidence,
            );
        };
        if ok {
            Verdict::new(Outcome::Pass, format!("{path} is {shown}"), evidence)
        } else {
            Verdict::new(
                Outcome::Fail,
                format!("{path} is {shown}, {expectation}"),
                evidence,
            )
        }
    }

    fn each(&self, test: &EachTest, scope: Scope<'_>) -> Verdict {
        let list = match self.read(scope, &test.path) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => {
                return quantify(
                    test.quantifier,
                    false,
                    std::iter::empty(),
                    &format!("{}{}", scope.prefix, test.path),
                );
            }
            Ok(other) => {
                return Verdict::new(
                    Outcome::Error,
                    format!(
                        "{}{} is not a list: {}",
                        scope.prefix,
                        test.path,
                        render(other)
                    ),
                    Vec::new(),
                );
            }
            Err(reason) => return Verdict::new(Outcome::Error, reason, Vec::new()),
        };
        let verdicts = list.iter().enumerate().map(|(i, item)| {
            let prefix = format!("{}{}[{i}].", scope.prefix, test.path);
            self.condition(
                &test.check,
                Scope {
                    entry: scope.entry,
                    value: item,
                    prefix: &prefix,
                    top_level: false,
                },
            )
        });
        quantify(
            test.quantifier,
            false,
            verdicts,
            &format!("{}{}", scope.prefix, test.path),
        )
    }

    fn related(&self, test: &RelatedTest, scope: Scope<'_>) -> Verdict {
        let Some(target) = test.relation.target(self.entry(scope).resource_type) else {
            return Verdict::new(
                Outcome::Error,
                format!("relation {} does not apply here", test.relation.as_str()),
                Vec::new(),
            );
        };
        let related = self.index.related(scope.entry, test.relation);
        let label = format!("{}{}", scope.prefix, test.relation.as_str());
        // An empty answer from a population that could not be listed is unknown, not empty.
        if related.entries.is_empty() {
            for (account, region) in &related.consulted {
                let gaps = self
                    .snapshot
                    .population_gaps(target, account, region.as_deref());
                if let Some(gap) = gaps.first() {
                    return Verdict::new(
                        Outcome::Error,
                        format!(
                            "{label}: the {target} resources of {account} could not be listed ({}:{}: {})",
                            gap.service, gap.api_call, gap.error
                        ),
                        Vec::new(),
                    );
                }
                if !self.snapshot.accounts.contains_key(account)
                    && self.configured_accounts.iter().any(|(a, _)| a == account)
                {
                    return Verdict::new(
                        Outcome::Error,
                        format!("{label}: account {account} was not collected"),
                        Vec::new(),
                    );
                }
            }
        }
        let ids: Vec<&str> = related
            .entries
            .iter()
            .map(|&i| self.index.entries[i].id)
            .collect();
        let mut evidence = vec![Evidence {
            path: label.clone(),
            value: Arc::new(json!(ids)),
        }];
        let verdicts = related.entries.iter().map(|&i| {
            let prefix = format!("{label} {}: ", self.index.entries[i].id);
            match &test.check {
                Some(check) => self.condition(
                    check,
                    Scope {
                        entry: i,
                        value: &self.index.entries[i].view,
                        prefix: &prefix,
                        top_level: true,
                    },
                ),
                None => Verdict::new(Outcome::Pass, format!("{prefix}found"), Vec::new()),
            }
        });
        let mut v = quantify(test.quantifier, test.non_empty, verdicts, &label);
        evidence.append(&mut v.evidence);
        // What the relation passes through but was not collected: the answer over the known
        // entries stands only where no unknown entry could change it.
        let unknowns = self.relation_unknowns(scope.entry, test.relation);
        let stands = match (test.quantifier, v.outcome) {
            (_, Outcome::Error) => true,
            (Quantifier::Any, Outcome::Pass) => true,
            (Quantifier::All | Quantifier::None, Outcome::Fail) => !related.entries.is_empty(),
            _ => false,
        };
        if !unknowns.is_empty() && !stands {
            evidence.push(Evidence {
                path: format!("{label} (not collected)"),
                value: Arc::new(json!(unknowns)),
            });
            return Verdict::new(
                Outcome::Error,
                format!(
                    "{label}: not evaluated: {}{}",
                    unknowns[0],
                    if unknowns.len() > 1 {
                        format!(" (and {} more)", unknowns.len() - 1)
                    } else {
                        String::new()
                    }
                ),
                evidence,
            );
        }
        v.evidence = evidence;
        v
    }

    /// A `path` check on a notebook: the intended paths must all be allowed; an egress path
    /// of the asked kind must not be open. Not evaluated anywhere on a path: `error`.
    fn path(&self, question: crate::rules::spec::PathQuestion, scope: Scope<'_>) -> Verdict {
        use crate::paths::{Answer, HopDecision};
        use crate::rules::spec::PathQuestion as Q;
        let entry = self.entry(scope);
        let Some(paths) = &self.paths else {
            return Verdict::new(
                Outcome::Error,
                "perimeter paths need the configuration (its access points and account roles)"
                    .into(),
                Vec::new(),
            );
        };
        let (kind, prefix) = match question {
            Q::Intended => ("intended", ""),
            Q::DirectInternet => ("egress", "direct internet"),
            Q::AroundEndpoint => ("egress", "out of the VPC"),
            Q::ThroughEndpoint => ("egress", "s3:"),
            Q::Layers => ("layers", ""),
        };
        let key = (
            entry.account.to_string(),
            entry.region.unwrap_or_default().to_string(),
            entry.id.to_string(),
        );
        let mine: Vec<&crate::paths::PathResult> = paths
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|p| p.kind == kind && p.question.starts_with(prefix))
            .collect();
        // The answers and the hop that decided each (`xscan paths` shows every hop), and for
        // the intended path the chain of hops the diagram draws: the evidence of every notebook
        // of a large estate stays small.
        let answers: Vec<Value> = mine
            .iter()
            .map(|p| {
                let decided = p
                    .hops
                    .iter()
                    .find(|h| h.decision != HopDecision::Passes)
                    .or(p.hops.last());
                json!({"question": p.question, "answer": p.answer, "decided_by": decided})
            })
            .collect();
        let mut value = json!({"answers": answers});
        if kind == "intended"
            && let Some(first) = mine.first()
        {
            value["chain"] = Value::Array(
                first
                    .hops
                    .iter()
                    .map(|h| {
                        let mut hop =
                            json!({"layer": h.layer, "resource": h.resource, "decision": h.decision});
                        if h.layer == "notebook" {
                            hop["detail"] = json!(h.detail);
                        }
                        hop
                    })
                    .collect(),
            );
        }
        let evidence = vec![Evidence {
            path: format!("paths {kind}"),
            value: Arc::new(value),
        }];
        let deciding = |p: &crate::paths::PathResult| {
            p.hops
                .iter()
                .find(|h| h.decision != HopDecision::Passes)
                .or(p.hops.last())
                .map(|h| format!("{} {}: {}", h.layer, h.resource, h.detail))
                .unwrap_or_default()
        };
        if let Some(p) = mine.iter().find(|p| p.answer == Answer::NotEvaluated) {
            return Verdict::new(
                Outcome::Error,
                format!("not evaluated: {}: {}", p.question, deciding(p)),
                evidence,
            );
        }
        if mine.is_empty() {
            // An egress question the notebook has no route for (no subnet, no endpoint) holds.
            return match question {
                Q::Intended => Verdict::new(
                    Outcome::Error,
                    "no intended path was computed for this notebook".into(),
                    evidence,
                ),
                _ => Verdict::new(Outcome::Pass, "no such path".into(), evidence),
            };
        }
        let (bad, good) = match kind {
            "intended" => (Answer::Refused, "reaches the dataset"),
            "layers" => (Answer::Refused, "held by two layers or more"),
            _ => (Answer::Allowed, "closed"),
        };
        let layers_holding = |p: &crate::paths::PathResult| {
            let holding: Vec<String> = p
                .hops
                .iter()
                .filter(|h| h.decision == HopDecision::Refuses)
                .map(|h| format!("{} {}", h.layer, h.resource))
                .collect();
            if holding.is_empty() {
                "held by no layer".to_string()
            } else {
                format!("held by one layer alone: {}", holding.join(", "))
            }
        };
        match mine.iter().find(|p| p.answer == bad) {
            Some(p) => Verdict::new(
                Outcome::Fail,
                match kind {
                    "layers" => format!("{}: {}", p.question, layers_holding(p)),
                    "intended" => format!("{}: refused — {}", p.question, deciding(p)),
                    _ => format!("{}: open — {}", p.question, deciding(p)),
                },
                evidence,
            ),
            None => Verdict::new(
                Outcome::Pass,
                mine.iter()
                    .map(|p| format!("{}: {good}", p.question))
                    .collect::<Vec<_>>()
                    .join("; "),
                evidence,
            ),
        }
    }

    /// What following `relation` from `from` depends on that was not collected: the source's
    /// own fields the relation reads, the populations it passes through (subnets and route
    /// tables on the way to an endpoint), and for the reverse relation to notebooks every
    /// notebook that could use the resource but whose configuration (or listing) is missing.
    fn relation_unknowns(&self, from: usize, relation: Relation) -> Vec<String> {
        use ResourceType as T;
        let e = &self.index.entries[from];
        let mut out = Vec::new();
        let population =
            |out: &mut Vec<String>, t: ResourceType, account: &str, region: Option<&str>| {
                for g in self.snapshot.population_gaps(t, account, region) {
                    out.push(format!(
                        "the {t} resources of {account} could not be listed ({}:{}: {})",
                        g.service, g.api_call, g.error
                    ));
                }
            };
        let field_read = match relation {
            Relation::Subnet
            | Relation::RouteTable
            | Relation::Vpc
            | Relation::GatewayEndpoints
                if e.resource_type == T::SagemakerNotebook =>
            {
                Some("subnet_id")
            }
            Relation::SecurityGroups => Some("security_groups"),
            Relation::ExecutionRole => Some("role_arn"),
            Relation::Bucket => Some("bucket"),
            _ => None,
        };
        match relation {
            Relation::RouteTable | Relation::GatewayEndpoints => {
                population(&mut out, T::Subnet, e.account, e.region);
                population(&mut out, T::RouteTable, e.account, e.region);
                if relation == Relation::GatewayEndpoints {
                    population(&mut out, T::VpcEndpoint, e.account, e.region);
                }
            }
            Relation::Vpc => population(&mut out, T::Subnet, e.account, e.region),
            Relation::Notebooks => {
                // Which notebook field ties a notebook to this resource.
                let tie = match e.resource_type {
                    T::SecurityGroup => "security_groups",
                    T::IamRole => "role_arn",
                    _ => "subnet_id",
                };
                let any_account = e.resource_type == T::IamRole;
                if any_account {
                    for gap in &self.snapshot.metadata.collection_gaps {
                        if gap.resource_types.contains(&T::SagemakerNotebook) {
                            out.push(format!(
                                "the {} resources of {} could not be listed ({}:{}: {})",
                                T::SagemakerNotebook,
                                gap.account,
                                gap.service,
                                gap.api_call,
                                gap.error
                            ));
                        }
                    }
                } else {
                    population(&mut out, T::SagemakerNotebook, e.account, e.region);
                }
                if matches!(e.resource_type, T::RouteTable | T::VpcEndpoint) {
                    population(&mut out, T::Subnet, e.account, e.region);
                    population(&mut out, T::RouteTable, e.account, e.region);
                }
                for &n in self.index.of_type(T::SagemakerNotebook) {
                    let notebook = &self.index.entries[n];
                    let in_scope = any_account
                        || (notebook.account == e.account && notebook.region == e.region);
                    if let Some(error) = notebook
                        .collection_errors
                        .and_then(|errors| errors.get(tie))
                        .filter(|_| in_scope)
                    {
                        out.push(format!(
                            "notebook {} of {} may use it, but its {tie} could not be collected: {error}",
                            notebook.id, notebook.account
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(field) = field_read
            && let Some(error) = e.collection_errors.and_then(|errors| errors.get(field))
        {
            out.push(format!(
                "{field} of {} could not be collected: {error}",
                e.id
            ));
        }
        out
    }

    fn strings(&self, value: Option<&Value>, scope: Scope<'_>) -> Vec<String> {
        match value.map(|v| self.resolve(v, scope)) {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn string(&self, value: Option<&Value>, scope: Scope<'_>) -> String {
        self.strings(value, scope)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The parsed policy in a record view (`{raw, document}`), cached by address.
    fn policy_of(&self, record: &Value, name: &str) -> Result<Arc<Policy>, PolicyError> {
        let key = record as *const Value as usize;
        let cache = || {
            self.policy_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(cached) = cache().get(&key) {
            return cached.clone();
        }
        // Parsed outside the lock: another worker may parse the same record meanwhile, and
        // both get the same result.
        let parsed = parse_record(
            name,
            record.get("document"),
            record.get("raw").and_then(Value::as_str),
        );
        cache().insert(key, parsed.clone());
        parsed
    }

    fn analysis(&self, call: &AnalysisCall, scope: Scope<'_>) -> Verdict {
        if call.name.organization_field().is_some() {
            return self.organization_analysis(call, scope);
        }
        let entry = self.entry(scope);
        let path = format!("{}{}", scope.prefix, call.policy);
        let field = match self.read(scope, &call.policy) {
            Ok(v) => v,
            Err(reason) => return Verdict::new(Outcome::Error, reason, Vec::new()),
        };
        // One record, or a list of records (a role's identity policies).
        let records: Vec<(String, &Value)> = match field {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let name = r
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("{i}"), str::to_string);
                    (format!("{} {path} {name}", entry.id), r)
                })
                .collect(),
            record => vec![(format!("{} {path}", entry.id), record)],
        };
        let mut evidence = vec![Evidence {
            path: path.clone(),
            value: self.shared(field, EvidenceOf::Documents, || match field {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|r| r.get("document").cloned().unwrap_or(Value::Null))
                        .collect(),
                ),
                Value::Null => Value::Null,
                record => record.get("document").cloned().unwrap_or(Value::Null),
            }),
        }];
        let mut missing = Vec::new();
        let mut policies = Vec::new();
        for (name, record) in &records {
            if record.get("document").is_none_or(Value::is_null)
                && record.get("raw").is_none_or(Value::is_null)
            {
                missing.push(name.clone());
                continue;
            }
            match self.policy_of(record, name) {
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
        let kind = match call.kind.as_deref() {
            Some("access_point") => PolicyKind::AccessPoint,
            _ => PolicyKind::Resource,
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
                    value: Arc::new(json!(principals)),
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
            path: format!("{} {}", call.name.as_str(), path),
            value: Arc::new(json!(result.reasons)),
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
            path: field.to_string(),
            value: self.shared(
                entry.view.get(field).unwrap_or(&Value::Null),
                EvidenceOf::Itself,
                || entry.view.get(field).cloned().unwrap_or(Value::Null),
            ),
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
                        path: format!("bucket {bucket} policy"),
                        value: Arc::new(
                            record
                                .policy
                                .as_ref()
                                .and_then(|p| p.document.clone())
                                .unwrap_or(Value::Null),
                        ),
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
                let mut broken = Vec::new();
                let mut unknown = Vec::new();
                let mut holds = Vec::new();
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
        };
        let (outcome, reasons, verb) = match answer {
            Answer::Holds(r) => (Outcome::Pass, r, "refused"),
            Answer::Broken(r) => (Outcome::Fail, r, "allowed"),
            Answer::Unknown(r) => (Outcome::Error, r, "not decided"),
        };
        evidence.push(Evidence {
            path: format!("{} {field}", call.name.as_str()),
            value: Arc::new(json!(reasons)),
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
fn note_mitigations(rules: &[LoadedRule], findings: &mut [Finding]) {
    let holding: std::collections::HashSet<(String, String)> = findings
        .iter()
        .filter(|f| f.status == Status::Pass && f.resource.resource_type == ResourceType::Account)
        .map(|f| (f.rule_id.clone(), f.resource.account.clone()))
        .collect();
    if holding.is_empty() {
        return;
    }
    let mitigations: HashMap<&str, &[super::spec::Mitigation]> = rules
        .iter()
        .filter(|r| !r.spec.mitigated_by.is_empty())
        .map(|r| (r.spec.id.as_str(), r.spec.mitigated_by.as_slice()))
        .collect();
    for finding in findings.iter_mut().filter(|f| f.status == Status::Fail) {
        let Some(list) = mitigations.get(finding.rule_id.as_str()) else {
            continue;
        };
        for mitigation in list.iter() {
            if holding.contains(&(mitigation.rule.clone(), finding.resource.account.clone())) {
                finding.message.push_str(&format!(
                    " — mitigated, still a finding: {} holds in account {} ({})",
                    mitigation.rule, finding.resource.account, mitigation.because
                ));
                finding.evidence.push(Evidence {
                    path: format!("mitigated_by {}", mitigation.rule),
                    value: Arc::new(json!(mitigation.because)),
                });
            }
        }
    }
}

fn resource_ref(entry: &Entry<'_>) -> ResourceRef {
    ResourceRef {
        resource_type: entry.resource_type,
        id: entry.id.to_string(),
        arn: entry.arn.clone(),
        account: entry.account.to_string(),
        region: entry.region.map(str::to_string),
    }
}

/// Compact rendering of a value for messages.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "unset".into(),
        other => other.to_string(),
    }
}

fn combine_all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut evidence = Vec::new();
    let mut failing = Vec::new();
    let mut errors = Vec::new();
    let mut passing = Vec::new();
    for v in verdicts {
        evidence.extend(v.evidence);
        match v.outcome {
            Outcome::Fail => failing.push(v.message),
            Outcome::Error => errors.push(v.message),
            Outcome::Pass => passing.push(v.message),
        }
    }
    // A definite failure stands even if another part could not be evaluated.
    if !failing.is_empty() {
        Verdict::new(Outcome::Fail, failing.join("; "), evidence)
    } else if !errors.is_empty() {
        Verdict::new(Outcome::Error, errors.join("; "), evidence)
    } else {
        Verdict::new(Outcome::Pass, passing.join("; "), evidence)
    }
}

/// Stops at the first verdict that passes: the rest are not evaluated.
fn combine_any(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut evidence = Vec::new();
    let mut messages = Vec::new();
    let mut error = false;
    for v in verdicts {
        evidence.extend(v.evidence);
        match v.outcome {
            Outcome::Pass => return Verdict::new(Outcome::Pass, v.message, evidence),
            Outcome::Error => error = true,
            Outcome::Fail => {}
        }
        messages.push(v.message);
    }
    let message = format!("none holds: {}", messages.join("; "));
    Verdict::new(
        if error { Outcome::Error } else { Outcome::Fail },
        message,
        evidence,
    )
}

fn quantify(
    quantifier: Quantifier,
    non_empty: bool,
    verdicts: impl Iterator<Item = Verdict>,
    label: &str,
) -> Verdict {
    let mut verdicts = verdicts.peekable();
    if verdicts.peek().is_none() {
        return match (quantifier, non_empty) {
            (Quantifier::Any, _) | (_, true) => {
                Verdict::new(Outcome::Fail, format!("{label}: none found"), Vec::new())
            }
            _ => Verdict::new(Outcome::Pass, format!("{label}: none"), Vec::new()),
        };
    }
    match quantifier {
        Quantifier::All => combine_all(verdicts),
        Quantifier::Any => combine_any(verdicts),
        Quantifier::None => {
            let flipped = verdicts.map(|v| match v.outcome {
                Outcome::Pass => Verdict::new(
                    Outcome::Fail,
                    format!("must not hold: {}", v.message),
                    v.evidence,
                ),
                Outcome::Fail => Verdict::new(Outcome::Pass, v.message, v.evidence),
                Outcome::Error => v,
            });
            combine_all(flipped)
        }
    }
}
