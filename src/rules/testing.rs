//! Rule test cases: each case patches the pack's compliant fixture estate (JSON Patch) and
//! states the verdict expected per resource. Run by `xscan rules test` and by `cargo test`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Config;
use crate::findings::{Finding, Status};
use crate::model::Snapshot;

use super::spec::{Condition, Quantifier, RuleTest, WhenAbsent};
use super::{Evaluator, LoadedRule, RulePack};

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseOutcome {
    pub rule_id: String,
    pub case: String,
    /// Empty when the case passed.
    pub problems: Vec<String>,
}

impl CaseOutcome {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why the tests could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestSetupError {
    #[error(
        "the rule pack {0} has no fixtures/compliant.snapshot.json or fixtures/xscan.yaml\nhelp: rule tests patch that fixture estate; copy rules/fixtures/ from the xscan repository"
    )]
    MissingFixtures(String),
    #[error("fixture is invalid: {0}\nhelp: fix rules/fixtures/")]
    InvalidFixture(String),
}

/// The pack's fixture estate (as JSON, to patch) and configuration, both checked.
pub(crate) fn fixtures(pack: &RulePack) -> Result<(Value, Config), TestSetupError> {
    let (Some(snapshot_text), Some(config_text)) = (&pack.fixture_snapshot, &pack.fixture_config)
    else {
        return Err(TestSetupError::MissingFixtures(pack.source.clone()));
    };
    let base: Value = serde_json::from_str(snapshot_text)
        .map_err(|e| TestSetupError::InvalidFixture(e.to_string()))?;
    let config = Config::from_yaml("fixtures/xscan.yaml", config_text)
        .map_err(|e| TestSetupError::InvalidFixture(e.to_string()))?;
    Snapshot::from_json("fixtures/compliant.snapshot.json", snapshot_text)
        .map_err(|e| TestSetupError::InvalidFixture(e.to_string()))?;
    Ok((base, config))
}

/// Runs every test case of every rule in the pack.
pub fn run_pack(pack: &RulePack) -> Result<Vec<CaseOutcome>, TestSetupError> {
    let (base, config) = fixtures(pack)?;
    let mut outcomes = Vec::new();
    for rule in &pack.rules {
        for case in &rule.spec.tests {
            outcomes.push(run_case(rule, case, &base, &config));
        }
    }
    Ok(outcomes)
}

fn run_case(rule: &LoadedRule, case: &RuleTest, base: &Value, config: &Config) -> CaseOutcome {
    let mut outcome = CaseOutcome {
        rule_id: rule.spec.id.clone(),
        case: case.name.clone(),
        problems: Vec::new(),
    };
    let mut document = base.clone();
    let patch: Result<json_patch::Patch, _> =
        serde_json::from_value(Value::Array(case.patch.clone()));
    match patch {
        Ok(patch) => {
            if let Err(e) = json_patch::patch(&mut document, &patch) {
                outcome
                    .problems
                    .push(format!("the patch does not apply: {e}"));
                return outcome;
            }
        }
        Err(e) => {
            outcome
                .problems
                .push(format!("the patch is not valid JSON Patch: {e}"));
            return outcome;
        }
    }
    let snapshot: Snapshot = match serde_json::from_value(document) {
        Ok(s) => s,
        Err(e) => {
            outcome
                .problems
                .push(format!("the patched snapshot is invalid: {e}"));
            return outcome;
        }
    };
    let overridden;
    let config = match &case.perimeter {
        Some(values) => match with_perimeter(config, values) {
            Ok(c) => {
                overridden = c;
                &overridden
            }
            Err(e) => {
                outcome.problems.push(e);
                return outcome;
            }
        },
        None => config,
    };
    let accounts = config.account_roles();
    let evaluator = Evaluator::new(&snapshot, config.parameters(&snapshot), accounts)
        .with_parameter_gaps(config.parameter_gaps(&snapshot))
        .with_perimeter(config);
    let findings = evaluator.evaluate_rule(rule);
    outcome.problems = compare(&case.expect, &findings);
    outcome
}

/// The fixture configuration with some `perimeter` values replaced (a case's `perimeter:`).
fn with_perimeter(
    config: &Config,
    values: &serde_json::Map<String, Value>,
) -> Result<Config, String> {
    let mut document =
        serde_json::to_value(config).map_err(|e| format!("the configuration: {e}"))?;
    for (key, value) in values {
        document["perimeter"][key] = value.clone();
    }
    serde_json::from_value(document).map_err(|e| format!("the case's perimeter is invalid: {e}"))
}

fn compare(expect: &super::spec::Expectation, findings: &[Finding]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expected: BTreeMap<&str, Status> = BTreeMap::new();
    for (status, ids) in [
        (Status::Pass, &expect.pass),
        (Status::Fail, &expect.fail),
        (Status::Error, &expect.error),
        (Status::Skipped, &expect.skipped),
    ] {
        for id in ids {
            expected.insert(id, status);
        }
    }
    for (id, status) in &expected {
        let matching: Vec<&Finding> = findings.iter().filter(|f| f.resource.id == *id).collect();
        if matching.is_empty() {
            problems.push(format!(
                "expected {status} for {id}, but there is no result for it"
            ));
        }
        for f in matching {
            if f.status != *status {
                problems.push(format!(
                    "expected {status} for {id}, got {}: {}",
                    f.status, f.message
                ));
            }
        }
    }
    for f in findings
        .iter()
        .filter(|f| !expected.contains_key(f.resource.id.as_str()))
    {
        match expect.others {
            Some(status) if status == f.status => {}
            Some(status) => problems.push(format!(
                "expected {status} for the other resources; {} is {}: {}",
                f.resource.id, f.status, f.message
            )),
            None => problems.push(format!(
                "unexpected result for {}: {}: {}",
                f.resource.id, f.status, f.message
            )),
        }
    }
    problems
}

/// One mutation of a rule's check: where, what was changed, and the changed check.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Where in the check (`check.all[1].field(state)`).
    pub path: String,
    /// What was changed (`forced true`, `all -> any`, `quantifier any -> all`, ...).
    pub mutation: String,
    pub check: Condition,
}

/// A mutant no test case of its rule tells apart from the rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Survivor {
    pub rule_id: String,
    pub path: String,
    pub mutation: String,
}

/// What the mutation run found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MutationReport {
    pub mutants: usize,
    pub killed: usize,
    pub survivors: Vec<Survivor>,
    /// Rules whose own cases fail: their mutants would all be "killed" by a broken case, so
    /// they are not mutated (and the run fails).
    pub broken_rules: Vec<String>,
}

const QUANTIFIERS: [Quantifier; 3] = [Quantifier::All, Quantifier::Any, Quantifier::None];

fn quantifier_name(q: Quantifier) -> &'static str {
    match q {
        Quantifier::All => "all",
        Quantifier::Any => "any",
        Quantifier::None => "none",
    }
}

/// How a quantifier mutation is named.
fn swap(from: Quantifier, to: Quantifier) -> String {
    format!(
        "quantifier {} -> {}",
        quantifier_name(from),
        quantifier_name(to)
    )
}

/// Every single-point mutation of `condition`: each leaf forced true and forced false, each
/// field test negated, each quantifier replaced by the others, each `all`/`any` swapped, each
/// `not` removed, each analysis's `when_absent` flipped.
pub fn mutants(condition: &Condition, path: &str) -> Vec<Mutant> {
    let mut out = Vec::new();
    let mut push = |path: String, mutation: String, check: Condition| {
        out.push(Mutant {
            path,
            mutation,
            check,
        })
    };
    let forced = |push: &mut dyn FnMut(String, String, Condition), path: &str| {
        push(
            path.to_string(),
            "forced true".into(),
            Condition::Forced(true),
        );
        push(
            path.to_string(),
            "forced false".into(),
            Condition::Forced(false),
        );
    };
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            let is_all = matches!(condition, Condition::All(_));
            let rebuild = |items: Vec<Condition>| {
                if is_all {
                    Condition::All(items)
                } else {
                    Condition::Any(items)
                }
            };
            let name = if is_all { "all" } else { "any" };
            if items.len() > 1 {
                push(
                    path.to_string(),
                    format!("{name} -> {}", if is_all { "any" } else { "all" }),
                    if is_all {
                        Condition::Any(items.clone())
                    } else {
                        Condition::All(items.clone())
                    },
                );
            }
            for (i, item) in items.iter().enumerate() {
                for m in mutants(item, &format!("{path}.{name}[{i}]")) {
                    let mut changed = items.clone();
                    changed[i] = m.check;
                    push(m.path, m.mutation, rebuild(changed));
                }
            }
        }
        Condition::Not(inner) => {
            push(path.to_string(), "not removed".into(), (**inner).clone());
            for m in mutants(inner, &format!("{path}.not")) {
                push(m.path, m.mutation, Condition::Not(Box::new(m.check)));
            }
        }
        Condition::Field(test) => {
            let here = format!("{path}.field({})", test.path);
            forced(&mut push, &here);
            push(
                here,
                "negated".into(),
                Condition::Not(Box::new(condition.clone())),
            );
        }
        Condition::Each(test) => {
            let here = format!("{path}.each({})", test.path);
            forced(&mut push, &here);
            for q in QUANTIFIERS.into_iter().filter(|q| *q != test.quantifier) {
                let mut changed = test.clone();
                changed.quantifier = q;
                push(
                    here.clone(),
                    swap(test.quantifier, q),
                    Condition::Each(changed),
                );
            }
            for m in mutants(&test.check, &format!("{here}.check")) {
                let mut changed = test.clone();
                changed.check = Box::new(m.check);
                push(m.path, m.mutation, Condition::Each(changed));
            }
        }
        Condition::Related(test) => {
            let here = format!("{path}.related({})", test.relation.as_str());
            forced(&mut push, &here);
            // Without a check every related entry holds, so `all` with `non_empty` and `any`
            // mean the same: that swap is an equivalent mutant, not a missing test.
            let equivalent = |a: Quantifier, b: Quantifier| {
                test.check.is_none()
                    && test.non_empty
                    && matches!(
                        (a, b),
                        (Quantifier::All, Quantifier::Any) | (Quantifier::Any, Quantifier::All)
                    )
            };
            for q in QUANTIFIERS
                .into_iter()
                .filter(|q| *q != test.quantifier && !equivalent(test.quantifier, *q))
            {
                let mut changed = test.clone();
                changed.quantifier = q;
                push(
                    here.clone(),
                    swap(test.quantifier, q),
                    Condition::Related(changed),
                );
            }
            if let Some(check) = &test.check {
                for m in mutants(check, &format!("{here}.check")) {
                    let mut changed = test.clone();
                    changed.check = Some(Box::new(m.check));
                    push(m.path, m.mutation, Condition::Related(changed));
                }
            }
        }
        Condition::Analysis(call) => {
            let here = format!("{path}.analysis({})", call.name.as_str());
            forced(&mut push, &here);
            if call.name.organization_field().is_some() {
                // No policy to be absent: each probe action and context is a clause instead.
                for (field, value) in [("actions", &call.actions), ("context", &call.context)] {
                    let Some(Value::Array(items)) = value else {
                        continue;
                    };
                    for i in (0..items.len()).filter(|_| items.len() > 1) {
                        let mut fewer = (**call).clone();
                        let mut kept = items.clone();
                        kept.remove(i);
                        match field {
                            "actions" => fewer.actions = Some(Value::Array(kept)),
                            _ => fewer.context = Some(Value::Array(kept)),
                        }
                        push(
                            here.clone(),
                            format!("{field}[{i}] removed"),
                            Condition::Analysis(Box::new(fewer)),
                        );
                    }
                }
                return out;
            }
            let mut flipped = (**call).clone();
            flipped.when_absent = match call.when_absent {
                WhenAbsent::Fail => WhenAbsent::Pass,
                WhenAbsent::Pass => WhenAbsent::Fail,
            };
            push(
                here,
                format!("when_absent flipped to {:?}", flipped.when_absent).to_lowercase(),
                Condition::Analysis(Box::new(flipped)),
            );
        }
        Condition::Path(test) => {
            let here = format!("{path}.path({:?})", test.question).to_lowercase();
            forced(&mut push, &here);
        }
        Condition::Forced(_) => {}
    }
    out
}

/// Runs every rule's test cases against every mutant of its check. A mutant is killed when
/// at least one case fails with it.
pub fn run_mutants(pack: &RulePack) -> Result<MutationReport, TestSetupError> {
    let (base, config) = fixtures(pack)?;
    let mut report = MutationReport::default();
    for rule in &pack.rules {
        if rule
            .spec
            .tests
            .iter()
            .any(|case| !run_case(rule, case, &base, &config).passed())
        {
            report.broken_rules.push(rule.spec.id.clone());
            continue;
        }
        for mutant in mutants(&rule.spec.check, "check") {
            let mut mutated = rule.clone();
            mutated.spec.check = mutant.check;
            report.mutants += 1;
            let killed = mutated
                .spec
                .tests
                .iter()
                .any(|case| !run_case(&mutated, case, &base, &config).passed());
            if killed {
                report.killed += 1;
            } else {
                report.survivors.push(Survivor {
                    rule_id: rule.spec.id.clone(),
                    path: mutant.path,
                    mutation: mutant.mutation,
                });
            }
        }
    }
    Ok(report)
}
