//! OCSF, ASFF and JUnit outputs: each result where it belongs, valid against the format's
//! schema (OCSF here; ASFF against botocore's model and JUnit with junitparser in
//! scripts/test.sh), and hostile strings carried safely.

use serde_json::Value;

use crate::common::{CONFIG, ESTATE, notebook, patched_snapshot, root, stdout, temp_dir, xscan};

fn render(snapshot: &str, format: &str) -> String {
    let out = xscan(&[
        "scan",
        "--snapshot",
        snapshot,
        "--config",
        CONFIG,
        "--format",
        format,
    ]);
    assert!(matches!(out.status.code(), Some(0..=3)), "{format}");
    stdout(&out)
}

#[test]
fn ocsf_compliance_findings_validate_against_the_schema() {
    let events: Vec<Value> = serde_json::from_str(&render(ESTATE, "ocsf")).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/ocsf-1.5.0-compliance-finding.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let report: Value = serde_json::from_str(&render(ESTATE, "json")).unwrap();
    assert_eq!(events.len(), report["results"].as_array().unwrap().len());
    for event in &events {
        let errors: Vec<String> = validator
            .iter_errors(event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{event}");
        assert_eq!(event["class_uid"], 2003);
        assert_eq!(event["type_uid"], 200301);
        assert_eq!(event["cloud"]["provider"], "AWS");
    }
    let failing = events
        .iter()
        .find(|e| e["compliance"]["control"] == "XS-SM-001" && e["compliance"]["status_id"] == 3)
        .expect("the direct-internet notebook fails");
    assert_eq!(failing["severity_id"], 4, "high");
    assert!(
        !failing["compliance"]["standards"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        events.iter().any(|e| e["compliance"]["status_id"] == 2),
        "the not-evaluated result is a Warning (missing information)"
    );
}

#[test]
fn asff_findings_have_what_security_hub_requires() {
    let findings: Vec<Value> = serde_json::from_str(&render(ESTATE, "asff")).unwrap();
    assert!(!findings.is_empty());
    for f in &findings {
        for key in [
            "SchemaVersion",
            "Id",
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "Types",
            "CreatedAt",
            "UpdatedAt",
            "Severity",
            "Title",
            "Description",
            "Resources",
        ] {
            assert!(f.get(key).is_some(), "{key} missing: {f}");
        }
        let account = f["AwsAccountId"].as_str().unwrap();
        assert!(
            f["ProductArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{account}:product/{account}/default")),
            "{f}"
        );
        assert!(f.to_string().len() < 240 * 1024);
    }
    let ids: std::collections::BTreeSet<&str> =
        findings.iter().map(|f| f["Id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        findings.len(),
        "stable, distinct ids (fingerprints)"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["Compliance"]["Status"] == "FAILED")
    );
    assert!(
        findings
            .iter()
            .any(|f| f["Compliance"]["Status"] == "NOT_AVAILABLE")
    );
}

#[test]
fn junit_reports_failures_errors_and_skips_and_escapes_hostile_names() {
    let dir = temp_dir("junit-hostile");
    let snapshot = patched_snapshot(&dir, "hostile.json", |s| {
        let nb = notebook(s);
        nb["direct_internet_access"] = "Enabled".into();
        nb["arn"] = "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/x\"/><evil a='1'>&\u{1b}[2J\u{0}".into();
    });
    let xml = render(&snapshot, "junit");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(!xml.contains("<evil"), "markup escaped");
    assert!(
        !xml.contains('\u{1b}') && !xml.contains('\u{0}'),
        "no raw controls"
    );
    assert!(xml.contains("&quot;/&gt;&lt;evil a=&apos;1&apos;&gt;&amp;\\u{1b}[2J\\u{0}"));
    assert!(xml.contains("<failure message="));
    let estate = render(ESTATE, "junit");
    assert!(estate.contains("<error message=") && estate.contains("<skipped message="));
    let suites = estate.matches("<testsuite ").count();
    let report: Value = serde_json::from_str(&render(ESTATE, "json")).unwrap();
    assert_eq!(suites, report["rules"].as_array().unwrap().len());
    assert_eq!(
        estate.matches("<testcase ").count(),
        report["results"].as_array().unwrap().len()
    );
}
