//! Rule test cases: each case patches the pack's compliant fixture estate (JSON Patch) and
//! states the verdict expected per resource. Run by `xscan rules test` and by `cargo test`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Config;
use crate::findings::{Finding, Status};
use crate::model::Snapshot;

use super::spec::RuleTest;
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

/// Runs every test case of every rule in the pack.
pub fn run_pack(pack: &RulePack) -> Result<Vec<CaseOutcome>, TestSetupError> {
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
    let accounts = config
        .accounts
        .iter()
        .map(|a| (a.id.clone(), a.role))
        .collect();
    let evaluator = Evaluator::new(&snapshot, config.parameters(&snapshot), accounts);
    let findings = evaluator.evaluate_rule(rule);
    outcome.problems = compare(&case.expect, &findings);
    outcome
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
