//! The rule pack: every rule's test cases pass, every rule has a passing and a failing case,
//! and the list of ids is frozen (ids are never renamed or reused).

use xscan::findings::Status;
use xscan::rules::{RulePack, testing};

use crate::common::root;

fn pack() -> RulePack {
    RulePack::load_dir(&root().join("rules")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_rule_test_case_passes() {
    let outcomes = testing::run_pack(&pack()).unwrap();
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| format!("{} / {}: {}", o.rule_id, o.case, o.problems.join(" | ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(outcomes.len() >= 90, "only {} cases", outcomes.len());
}

#[test]
fn every_rule_has_a_passing_and_a_failing_case() {
    for rule in &pack().rules {
        let pass = rule.spec.tests.iter().any(|t| !t.expect.pass.is_empty());
        let fail = rule.spec.tests.iter().any(|t| !t.expect.fail.is_empty());
        assert!(
            pass && fail,
            "{} needs a pass case and a fail case",
            rule.spec.id
        );
    }
}

#[test]
fn embedded_pack_is_the_repository_pack() {
    let embedded = RulePack::embedded().unwrap();
    let on_disk = pack();
    let ids = |p: &RulePack| {
        p.rules
            .iter()
            .map(|r| (r.spec.id.clone(), r.sha256.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&embedded), ids(&on_disk));
}

/// Rule ids are stable: renaming or dropping one breaks users' waivers and alert history.
#[test]
fn rule_ids_are_frozen() {
    let ids: Vec<String> = pack().rules.iter().map(|r| r.spec.id.clone()).collect();
    let expected = [
        "XS-IAM-001",
        "XS-IAM-002",
        "XS-IAM-003",
        "XS-NET-001",
        "XS-NET-002",
        "XS-NET-003",
        "XS-NET-004",
        "XS-NET-005",
        "XS-NET-006",
        "XS-NET-007",
        "XS-ORG-001",
        "XS-ORG-002",
        "XS-ORG-003",
        "XS-ORG-004",
        "XS-PATH-001",
        "XS-PATH-002",
        "XS-PATH-003",
        "XS-PATH-004",
        "XS-S3-001",
        "XS-S3-002",
        "XS-S3-003",
        "XS-S3-004",
        "XS-S3-005",
        "XS-S3-006",
        "XS-S3-007",
        "XS-S3AP-001",
        "XS-S3AP-002",
        "XS-S3AP-003",
        "XS-S3AP-004",
        "XS-S3AP-005",
        "XS-SM-001",
        "XS-SM-002",
        "XS-SM-003",
        "XS-SM-004",
        "XS-SM-005",
    ];
    assert_eq!(ids, expected);
}

#[test]
fn compliant_fixture_has_no_failures_or_errors() {
    let pack = pack();
    let snapshot =
        xscan::model::Snapshot::from_json("fixture", pack.fixture_snapshot.as_deref().unwrap())
            .unwrap();
    let config =
        xscan::config::Config::from_yaml("fixture", pack.fixture_config.as_deref().unwrap())
            .unwrap();
    let report = xscan::scan::run(&xscan::scan::ScanInputs {
        snapshot: &snapshot,
        snapshot_sha256: "0".repeat(64),
        pack: &pack,
        config: Some(&config),
        config_sha256: None,
        min_severity: xscan::findings::Severity::Info,
        spill_at: xscan::findings::results::SPILL_AT,
    })
    .unwrap();
    let bad: Vec<_> = report
        .results
        .iter()
        .filter(|f| matches!(f.status, Status::Fail | Status::Error))
        .map(|f| format!("{} {}: {}", f.rule_id(), f.resource.id, f.message))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // One pass per rule: the compliant fixture has one resource of each type in scope.
    assert_eq!(report.summary.count(Status::Pass), pack.rules.len());
}

/// `evaluate_all` goes resource by resource on several threads; the results must not depend on
/// it: the same as one rule after the other, in rule order, on the example estate (failures, an error, skipped
/// results) and on the compliant fixture; and the same again when they are spilled.
#[test]
fn parallel_evaluation_equals_one_rule_after_the_other() {
    let pack = pack();
    let estates = [
        (
            std::fs::read_to_string(root().join("examples/estate.snapshot.json")).unwrap(),
            xscan::config::Config::load(&root().join("examples/xscan.yaml")).unwrap(),
        ),
        (
            pack.fixture_snapshot.clone().unwrap(),
            fixture_config(&pack),
        ),
        (many_resources_and_a_gap(&pack), fixture_config(&pack)),
    ];
    for (text, config) in estates {
        let snapshot = xscan::model::Snapshot::from_json("estate", &text).unwrap();
        let accounts: Vec<_> = config.account_roles();
        let parameters = config.parameters(&snapshot);
        // With the perimeter, so that the path rules (whose paths `evaluate_all` finds and
        // drops per notebook) are compared too.
        let evaluator =
            xscan::rules::Evaluator::new(&snapshot, parameters, accounts).with_perimeter(&config);
        let one_by_one: Vec<_> = pack
            .rules
            .iter()
            .flat_map(|r| evaluator.evaluate_rule(r))
            .collect();
        let all = evaluator.evaluate_all(&pack.rules);
        assert!(all.iter().any(|f| f.status == Status::Pass));
        assert!(
            all.iter()
                .any(|f| f.rule_id().starts_with("XS-PATH") && f.status != Status::Error),
            "the path rules found paths"
        );
        if text.contains("eu-west-1") {
            // The third estate: several runs of a type, and results on an unlisted population.
            let runs = all
                .iter()
                .filter(|f| f.rule_id() == "XS-S3AP-004" && f.status != Status::Error)
                .count();
            assert!(runs > 2 * 256, "{runs} access points evaluated");
            assert!(
                all.iter()
                    .any(|f| f.resource.region.as_deref() == Some("eu-west-1")
                        && f.status == Status::Error),
                "the unlisted population has its results"
            );
        }
        assert_eq!(all.len(), one_by_one.len());
        assert_eq!(all, one_by_one);
        // Spilled as a large scan's results are, read back: the same, in the same order (the
        // unlisted population's results among the runs' by ARN).
        let spilled = evaluator.evaluate_results(&pack.rules, 0).unwrap();
        assert!(spilled.is_spilled());
        assert_eq!(spilled.to_vec().unwrap(), all);
    }
}

fn fixture_config(pack: &RulePack) -> xscan::config::Config {
    xscan::config::Config::from_yaml("fixture", pack.fixture_config.as_deref().unwrap()).unwrap()
}

/// The fixture with 600 access points and 300 security groups (several runs of a type, as
/// `evaluate_all` shares them out), and access points and security groups that could not be
/// listed in another region (results on an unlisted population, placed after a rule's runs).
fn many_resources_and_a_gap(pack: &RulePack) -> String {
    let mut snapshot: serde_json::Value =
        serde_json::from_str(pack.fixture_snapshot.as_deref().unwrap()).unwrap();
    let data = &mut snapshot["accounts"]["222222222222"]["regions"]["us-east-1"];
    let access_point = data["s3_access_points"]["test-ap-1"].clone();
    for i in 0..600 {
        let name = format!("ap-{i:03}");
        let mut copy = access_point.clone();
        copy["name"] = serde_json::json!(name);
        copy["arn"] = serde_json::json!(format!(
            "arn:aws:s3:us-east-1:222222222222:accesspoint/{name}"
        ));
        data["s3_access_points"][&name] = copy;
    }
    let consumer = &mut snapshot["accounts"]["111111111111"]["regions"]["us-east-1"];
    let group = consumer["security_groups"]["sg-0c0ffee0000000a01"].clone();
    for i in 0..300 {
        let id = format!("sg-{i:017x}");
        let mut copy = group.clone();
        copy["id"] = serde_json::json!(id);
        consumer["security_groups"][&id] = copy;
    }
    snapshot["metadata"]["collection_gaps"] = serde_json::json!([{
        "account": "111111111111", "region": "eu-west-1", "service": "ec2",
        "api_call": "DescribeSecurityGroups", "resource_types": ["security_group", "s3_access_point"],
        "error": "AccessDenied"
    }]);
    snapshot.to_string()
}

/// The committed rule pages are what `xscan rules docs` generates: a stale page fails here
/// (regenerate with `cargo run -- rules docs`).
#[test]
fn rule_docs_are_generated_and_current() {
    let pack = xscan::rules::RulePack::embedded().unwrap();
    let generated = xscan::rules::docs::generate(&pack);
    let dir = crate::common::root().join("docs/rules");
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    committed.sort();
    let expected: Vec<String> = generated.keys().cloned().collect();
    assert_eq!(
        committed, expected,
        "docs/rules/ holds exactly the generated pages"
    );
    for (name, text) in &generated {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            &on_disk == text,
            "docs/rules/{name} is stale: run `cargo run -- rules docs`"
        );
    }
    assert_eq!(generated.len(), pack.rules.len() + 1);
}
