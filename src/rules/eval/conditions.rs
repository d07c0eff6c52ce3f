//! The conditions a check is made of, on one resource: field tests, list quantifiers,
//! relations to other resources (with what a relation cannot see), and perimeter paths.

use serde_json::{Value, json};

use crate::findings::{Evidence, PathAnswer, PathsEvidence};
use crate::model::ResourceType;

use super::super::spec::{EachTest, FieldTest, Quantifier, RelatedTest, Relation};
use super::{Evaluator, Outcome, Scope, SharedPath, Verdict, quantify, render};

impl<'a> Evaluator<'a> {
    pub(super) fn field(&self, test: &FieldTest, scope: Scope<'_>) -> Verdict {
        let path = format!("{}{}", scope.prefix, test.path);
        let observed = match self.read(scope, &test.path) {
            Ok(v) => v,
            Err(reason) => return Verdict::new(Outcome::Error, reason, Vec::new()),
        };
        let observed: &Value = &observed;
        let evidence = vec![Evidence {
            path: path.as_str().into(),
            value: self.evidence_of(scope, &path, observed).into(),
        }];
        let shown = render(observed);
        // What was expected, put in words only for a failure (most results pass).
        let (ok, expectation): (bool, Expectation) = if let Some(expected) = &test.equals {
            let expected = self.resolve(expected, scope);
            (observed == &expected, Expectation::Equals(expected))
        } else if let Some(unexpected) = &test.not_equals {
            let unexpected = self.resolve(unexpected, scope);
            (observed != &unexpected, Expectation::NotEquals(unexpected))
        } else if let Some(set) = &test.one_of {
            let set = self.resolve(set, scope);
            let ok = match &set {
                Value::Array(items) => items.contains(observed),
                one => one == observed,
            };
            (ok, Expectation::OneOf(set))
        } else if let Some(set) = &test.not_one_of {
            let set = self.resolve(set, scope);
            let ok = match &set {
                Value::Array(items) => !items.contains(observed),
                one => one != observed,
            };
            (ok, Expectation::NotOneOf(set))
        } else if let Some(glob) = &test.matches {
            let glob = match self.resolve_str(glob, scope) {
                Value::String(g) => g,
                other => other.to_string(),
            };
            let ok = observed
                .as_str()
                .is_some_and(|s| crate::policy::wildcard::glob_match(&glob, s));
            (ok, Expectation::Matches(glob))
        } else if let Some(present) = test.present {
            (
                observed.is_null() != present,
                Expectation::Said(if present {
                    "expected to be set"
                } else {
                    "expected to be unset"
                }),
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
                Expectation::Said(if empty {
                    "expected to be empty"
                } else {
                    "expected not to be empty"
                }),
            )
        } else if let Some(item) = &test.contains {
            let item = self.resolve(item, scope);
            let ok = observed.as_array().is_some_and(|a| match &item {
                Value::Array(any_of) => any_of.iter().any(|i| a.contains(i)),
                single => a.contains(single),
            });
            (ok, Expectation::Contains(item))
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
                format!("{path} is {shown}, {}", expectation.text()),
                evidence,
            )
        }
    }

    pub(super) fn each(&self, test: &EachTest, scope: Scope<'_>) -> Verdict {
        let read = self.read(scope, &test.path);
        let list = match read.as_deref() {
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
            Err(reason) => return Verdict::new(Outcome::Error, reason.clone(), Vec::new()),
        };
        let verdicts = list.iter().enumerate().map(|(i, item)| {
            let prefix = format!("{}{}[{i}].", scope.prefix, test.path);
            self.condition(
                &test.check,
                Scope {
                    entry: scope.entry,
                    value: Some(item),
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

    pub(super) fn related(&self, test: &RelatedTest, scope: Scope<'_>) -> Verdict {
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
            path: label.as_str().into(),
            value: json!(ids).into(),
        }];
        let verdicts = related.entries.iter().map(|&i| {
            let prefix = format!("{label} {}: ", self.index.entries[i].id);
            match &test.check {
                Some(check) => self.condition(
                    check,
                    Scope {
                        entry: i,
                        value: None,
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
        let unknowns = self.relation_unknowns(scope.entry, test.relation, &related.unknown);
        let stands = match (test.quantifier, v.outcome) {
            (_, Outcome::Error) => true,
            (Quantifier::Any, Outcome::Pass) => true,
            (Quantifier::All | Quantifier::None, Outcome::Fail) => !related.entries.is_empty(),
            _ => false,
        };
        if !unknowns.is_empty() && !stands {
            evidence.push(Evidence {
                path: format!("{label} (not collected)").into(),
                value: json!(unknowns).into(),
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
    pub(super) fn path(
        &self,
        question: crate::rules::spec::PathQuestion,
        scope: Scope<'_>,
    ) -> Verdict {
        use crate::paths::{Answer, HopDecision};
        use crate::rules::spec::PathQuestion as Q;
        let Some(paths) = self.paths_of(scope.entry) else {
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
        let mine: Vec<&SharedPath> = paths
            .iter()
            .filter(|p| p.kind == kind && p.question.starts_with(prefix))
            .collect();
        // The first hop that does not let the request through decides, else the last.
        let decided = |p: &SharedPath| {
            p.hops
                .iter()
                .find(|h| h.decision != HopDecision::Passes)
                .or(p.hops.last())
                .cloned()
        };
        // The answers and the hop that decided each (`xscan paths` shows every hop), and for
        // the intended path the chain of hops the diagram draws. Both are the notebook's own
        // shared hops: what a notebook's evidence adds is the few that are its own.
        let answers = mine
            .iter()
            .map(|p| {
                self.share_answer(PathAnswer {
                    question: p.question.clone(),
                    answer: p.answer,
                    decided_by: decided(p),
                })
            })
            .collect();
        let chain = match (kind, mine.first()) {
            ("intended", Some(first)) => Some(first.hops.clone()),
            _ => None,
        };
        let evidence = vec![Evidence {
            path: format!("paths {kind}").into(),
            value: PathsEvidence { answers, chain }.into(),
        }];
        let deciding = |p: &SharedPath| {
            decided(p)
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
        let layers_holding = |p: &SharedPath| {
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
    /// notebook that could use the resource but whose configuration (or listing) is missing;
    /// `related_unknown` is what the index could not tell while following it
    /// ([`super::super::index::Related::unknown`]), placed with the populations it concerns.
    fn relation_unknowns(
        &self,
        from: usize,
        relation: Relation,
        related_unknown: &[String],
    ) -> Vec<String> {
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
                // A subnet the snapshot routes through more than one table.
                out.extend(related_unknown.iter().cloned());
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
                // Notebooks that may use this route table, their subnet routed by two.
                out.extend(related_unknown.iter().cloned());
                for &n in self.index.notebooks_with_errors() {
                    let notebook = &self.index.entries[n];
                    let in_scope = any_account
                        || (notebook.account == e.account && notebook.region == e.region);
                    if let Some(error) = notebook
                        .collection_errors
                        .as_deref()
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
            && let Some(error) = e
                .collection_errors
                .as_deref()
                .and_then(|errors| errors.get(field))
        {
            out.push(format!(
                "{field} of {} could not be collected: {error}",
                e.id
            ));
        }
        out
    }
}

/// What a field test expected, put in words when it fails.
enum Expectation {
    Equals(Value),
    NotEquals(Value),
    OneOf(Value),
    NotOneOf(Value),
    Matches(String),
    Contains(Value),
    Said(&'static str),
}

impl Expectation {
    fn text(&self) -> String {
        match self {
            Self::Equals(v) => format!("expected {}", render(v)),
            Self::NotEquals(v) => format!("must not be {}", render(v)),
            Self::OneOf(v) => format!("expected one of {}", render(v)),
            Self::NotOneOf(v) => format!("must not be one of {}", render(v)),
            Self::Matches(glob) => format!("expected to match `{glob}`"),
            Self::Contains(v) => format!("expected to contain {}", render(v)),
            Self::Said(text) => (*text).to_string(),
        }
    }
}
