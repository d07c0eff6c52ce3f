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

/// #14: each result carries its account's OU path where its format has room for it — OCSF
/// (an account label, still valid against the schema), ASFF (`ProductFields`), SARIF (result
/// properties), JSON (`scan.accounts`) — when the organization was read (the compliant
/// fixture holds one).
#[test]
fn results_carry_the_ou_path_of_their_account() {
    // One failure, so that SARIF has a result to carry it.
    let dir = temp_dir("ou-path-formats");
    let snapshot = patched_snapshot(&dir, "drifted.json", |s| {
        notebook(s)["direct_internet_access"] = "Enabled".into();
    });
    let config = root().join("rules/fixtures/xscan.yaml");
    let render_text = |format: &str| {
        let out = xscan(&[
            "scan",
            "--snapshot",
            &snapshot,
            "--config",
            config.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(out.status.code(), Some(1), "{format}");
        stdout(&out)
    };
    let render = |format: &str| serde_json::from_str::<Value>(&render_text(format)).unwrap();
    let consumer_path = "Root/ML/Consumers";
    let ocsf = render("ocsf");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/ocsf-1.5.0-compliance-finding.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for event in ocsf.as_array().unwrap() {
        assert!(validator.is_valid(event), "{event}");
        let account = &event["cloud"]["account"];
        let expected = match account["uid"].as_str().unwrap() {
            "111111111111" => "ou_path:Root/ML/Consumers",
            _ => "ou_path:Root/ML/Data",
        };
        assert_eq!(account["labels"][0], expected, "{event}");
    }
    let asff = render("asff");
    assert!(asff.as_array().unwrap().iter().all(|f| {
        f["ProductFields"]["xscan/ou_path"]
            .as_str()
            .is_some_and(|p| p.starts_with("Root/ML/"))
    }));
    let sarif = render("sarif");
    let json = render("json");
    let accounts = json["scan"]["accounts"].as_array().unwrap();
    assert!(
        accounts
            .iter()
            .any(|a| a["ou_path"] == consumer_path && a["tags"]["xscan-role"] == "consumer")
    );
    let junit = render_text("junit");
    assert!(
        junit.contains("<system-out>ou_path: Root/ML/Consumers</system-out>"),
        "{junit}"
    );
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "the drifted notebook");
    assert_eq!(results[0]["properties"]["ouPath"], consumer_path);
}
