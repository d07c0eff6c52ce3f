//! SARIF output: valid against the official OASIS 2.1.0 schema (draft-04, formats checked) and
//! GitHub code scanning's ingestion rules.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{
    CONFIG, ESTATE, example_report, root, stderr, stdout, temp_dir, xscan, xscan_in,
};

/// Validates a SARIF log against the schema and GitHub's rules; returns it parsed.
pub fn check_sarif(text: &str) -> Value {
    let sarif: Value = serde_json::from_str(text).expect("SARIF is JSON");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");

    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "xscan");
    assert!(
        run["automationDetails"]["id"]
            .as_str()
            .unwrap()
            .ends_with('/'),
        "category id ends with /"
    );
    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        rule_ids.len(),
        rule_ids.iter().collect::<BTreeSet<_>>().len(),
        "rule ids unique"
    );
    for rule in rules {
        let severity: f64 = rule["properties"]["security-severity"]
            .as_str()
            .expect("security-severity is a string")
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&severity));
        assert!(
            rule["shortDescription"]["text"].is_string() && rule["help"]["markdown"].is_string()
        );
    }
    let results = run["results"].as_array().unwrap();
    assert!(results.len() <= 25_000);
    let mut fingerprints = BTreeSet::new();
    for result in results {
        let rule_id = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[index], rule_id);
        let physical = &result["locations"][0]["physicalLocation"];
        let uri = physical["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("aws/") && !uri.contains("://") && !uri.contains(' '),
            "{uri}"
        );
        assert!(physical["region"]["startLine"].as_u64().unwrap() >= 1);
        let logical = &result["locations"][0]["logicalLocations"][0];
        assert_eq!(logical["kind"], "resource");
        assert!(
            result["message"]["text"]
                .as_str()
                .unwrap()
                .contains(logical["fullyQualifiedName"].as_str().unwrap())
        );
        let fingerprint = result["partialFingerprints"]["primaryLocationLineHash"]
            .as_str()
            .unwrap();
        assert!(
            fingerprints.insert(fingerprint.to_string()),
            "fingerprint {fingerprint} repeats"
        );
    }
    sarif
}

#[test]
fn example_estate_sarif_is_valid_and_complete() {
    let out = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "sarif",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "failures and errors still set the exit code"
    );
    let sarif = check_sarif(&stdout(&out));
    let run = &sarif["runs"][0];
    let results = run["results"].as_array().unwrap();
    let failing: Vec<&str> = results
        .iter()
        .filter(|r| r["ruleId"] != "XS-SCAN-INCOMPLETE")
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(
        failing.len(),
        // Five drifts, and XS-PATH-004 on both notebooks: the open security group egress
        // leaves the route table alone against a way out.
        7,
        "one result per failing (rule, resource): {failing:?}"
    );
    let incomplete: Vec<&Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "XS-SCAN-INCOMPLETE")
        .collect();
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0]["level"], "error");
    assert!(
        incomplete[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("XS-S3-005")
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    assert!(
        !run["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(run["automationDetails"]["id"], "xscan/ml-platform-example/");
    // Every rule of the pack is described, with framework tags.
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    // Every rule of the pack and XS-SCAN-INCOMPLETE.
    assert_eq!(
        rules.len(),
        xscan::rules::RulePack::embedded().unwrap().rules.len() + 1
    );
    let sm001 = rules.iter().find(|r| r["id"] == "XS-SM-001").unwrap();
    assert_eq!(sm001["properties"]["security-severity"], "8.0");
    assert!(
        sm001["properties"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "security-hub:SageMaker.2")
    );
}

#[test]
fn sarif_exit_zero_and_output_file() {
    let dir = temp_dir("sarif-out");
    let path = dir.join("xscan.sarif");
    let out = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "sarif",
        "--exit-zero",
        "--output",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_sarif(&std::fs::read_to_string(path).unwrap());
}

#[test]
fn bare_xscan_format_sarif_reads_xscan_yaml() {
    let dir = temp_dir("sarif-bare");
    std::fs::copy(root().join(CONFIG), dir.join("xscan.yaml")).unwrap();
    std::fs::copy(root().join(ESTATE), dir.join("estate.json")).unwrap();
    let out = xscan_in(&dir, &["--format", "sarif", "--snapshot", "estate.json"]);
    check_sarif(&stdout(&out));
}

#[test]
fn sarif_stays_within_githubs_result_limit() {
    let mut report = example_report();
    let template = report
        .results
        .iter()
        .find(|f| f.status == xscan::findings::Status::Fail)
        .unwrap()
        .clone();
    report.results = (0..25_010)
        .map(|i| {
            let mut resource = xscan::findings::ResourceRef::clone(&template.resource);
            resource.id = format!("sg-{i:017}");
            resource.arn = format!("arn:aws:ec2:us-east-1:111111111111:security-group/sg-{i:017}");
            xscan::findings::Finding::of_rule(
                template.rule.clone(),
                template.status,
                resource,
                template.message.clone(),
                vec![],
            )
        })
        .collect();
    let sarif: Value = serde_json::from_str(&xscan::report::sarif::render(&report)).unwrap();
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len(),
        25_000
    );
    let notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["message"]["text"].as_str().unwrap().contains("25000"))
    );
}
