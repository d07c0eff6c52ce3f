//! The rule pack: every rule's test cases pass; loading errors carry file:line:col.

use xscan::rules::{RulePack, testing};

fn pack() -> RulePack {
    RulePack::load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_rule_test_case_passes() {
    let outcomes = testing::run_pack(&pack()).unwrap();
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| format!("{} / {}: {}", o.rule_id, o.case, o.problems.join(" | ")))
        .collect();
    assert!(failures.is_empty(), "{} failing case(s):\n{}", failures.len(), failures.join("\n"));
    assert!(outcomes.len() >= 60, "only {} cases", outcomes.len());
}
