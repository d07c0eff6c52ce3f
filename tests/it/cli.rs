//! The binary end to end: the README's scan of the example estate, exit codes, the JSON report
//! against its schema, `rules` subcommands and `policy eval`.

use serde_json::Value;

use crate::common::{
    CONFIG, ESTATE, assert_valid_report, root, scan_json, stderr, stdout, temp_dir, xscan, xscan_in,
};

#[test]
fn example_estate_shows_passes_failures_and_a_not_evaluated_result() {
    let out = xscan(&["scan", "--snapshot", ESTATE, "--config", CONFIG]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("XS-SM-001"), "{text}");
    assert!(text.contains("Scan incomplete"), "{text}");
    assert!(!text.contains("\x1b["), "no colour when not a terminal");
}

#[test]
fn json_report_validates_against_its_schema() {
    let (report, code) = scan_json(ESTATE, &[]);
    assert_eq!(code, 3);
    assert_valid_report(&report);
    assert_eq!(report["schema_version"], "xscan.report/v1");
}

#[test]
fn collection_gaps_are_errors_never_passes() {
    let (report, _) = scan_json(ESTATE, &[]);
    let results = report["results"].as_array().unwrap();
    let encryption: Vec<&Value> = results
        .iter()
        .filter(|r| r["rule_id"] == "XS-S3-005")
        .collect();
    assert_eq!(encryption.len(), 1);
    assert_eq!(encryption[0]["status"], "error");
    assert!(
        encryption[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not evaluated")
    );
    assert_eq!(report["summary"]["incomplete"], true);
}

#[test]
fn every_result_has_evidence_and_a_distinct_fingerprint() {
    let (report, _) = scan_json(ESTATE, &[]);
    let results = report["results"].as_array().unwrap();
    let mut fingerprints: Vec<&str> = results
        .iter()
        .map(|r| r["fingerprint"].as_str().unwrap())
        .collect();
    let n = fingerprints.len();
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), n);
    for r in results.iter().filter(|r| r["status"] == "fail") {
        assert!(!r["evidence"].as_array().unwrap().is_empty(), "{r}");
    }
}

#[test]
fn same_inputs_render_the_same_bytes() {
    let a = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "json",
    ]);
    let b = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "json",
    ]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn exit_codes() {
    // Failures only (the error's rule is below the threshold): 1.
    let (_, code) = scan_json(
        &crate::common::estate_without_gaps(),
        &["--min-severity", "high"],
    );
    assert_eq!(code, 1);
    // A collection gap makes the scan incomplete even when its rule is not run: 3.
    let (_, code) = scan_json(ESTATE, &["--min-severity", "high"]);
    assert_eq!(code, 3);
    // --exit-zero: 0 whatever the findings.
    let (_, code) = scan_json(ESTATE, &["--exit-zero"]);
    assert_eq!(code, 0);
    // The compliant fixture: 0.
    let out = xscan(&[
        "scan",
        "--snapshot",
        "rules/fixtures/compliant.snapshot.json",
        "--config",
        "rules/fixtures/xscan.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Usage and input errors: 2, with a help line.
    for args in [
        vec!["scan", "--snapshot", "missing.json", "--config", CONFIG],
        vec!["scan", "--snapshot", ESTATE, "--config", "missing.yaml"],
        vec![
            "scan",
            "--snapshot",
            ESTATE,
            "--config",
            CONFIG,
            "--min-severity",
            "urgent",
        ],
        vec!["scan", "--snapshot", CONFIG, "--config", CONFIG],
    ] {
        let out = xscan(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = xscan(&["scan", "--snapshot", "missing.json", "--config", CONFIG]);
    assert!(stderr(&out).contains("help:"), "{}", stderr(&out));
}

#[test]
fn without_a_config_perimeter_rules_are_not_evaluated() {
    let (report, _) = {
        let out = xscan(&["scan", "--snapshot", ESTATE, "--format", "json"]);
        (
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            out.status.code(),
        )
    };
    let role_rule: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule_id"] == "XS-SM-005")
        .collect();
    assert!(
        role_rule.iter().all(|r| r["status"] == "error"),
        "{role_rule:?}"
    );
}

#[test]
fn bare_xscan_reads_xscan_yaml_and_output_goes_to_a_file() {
    let dir = temp_dir("bare");
    std::fs::copy(root().join(CONFIG), dir.join("xscan.yaml")).unwrap();
    std::fs::copy(root().join(ESTATE), dir.join("estate.json")).unwrap();
    let out = xscan_in(
        &dir,
        &[
            "--snapshot",
            "estate.json",
            "--format",
            "json",
            "--output",
            "report.json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["scan"]["scope"], "ml-platform-example");
    assert!(report["method"]["config_sha256"].is_string());
}

#[test]
fn rules_list_explain_and_test() {
    let out = xscan(&["rules", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("XS-NET-006"));
    let out = xscan(&["rules", "explain", "xs-net-006"]);
    let text = stdout(&out);
    assert!(
        text.contains("Why it matters")
            && text.contains("Remediation")
            && text.contains("restricted_to_account"),
        "{text}"
    );
    let out = xscan(&["rules", "explain", "XS-NOPE-001"]);
    assert_eq!(out.status.code(), Some(2));
    let out = xscan(&["rules", "test"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(" 0 failed"), "{}", stdout(&out));
    let out = xscan(&["rules", "test", "rules"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn rules_test_reports_a_broken_rule_directory() {
    let dir = temp_dir("broken-rules");
    std::fs::write(dir.join("a.yaml"), "id: XS-T-001\ntitle: t\nbogus: 1\n").unwrap();
    let out = xscan(&["rules", "test", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a.yaml:"), "{}", stderr(&out));
}

fn write_policy(dir: &std::path::Path, name: &str, doc: Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn policy_eval_cross_account_through_endpoint() {
    let dir = temp_dir("policy-eval");
    let ap = "arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1";
    let identity = write_policy(
        &dir,
        "identity.json",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("{ap}/object/*")}]}),
    );
    let resource = write_policy(
        &dir,
        "ap.json",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "Consumer", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:role/exec"}, "Action": "s3:GetObject", "Resource": format!("{ap}/object/*")}]}),
    );
    let endpoint = write_policy(
        &dir,
        "vpce.json",
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"s3:ResourceAccount": "222222222222"}}}]}),
    );
    let object = format!("{ap}/object/data.csv");
    let base = [
        "policy",
        "eval",
        "--policy",
        &identity,
        "--resource-policy",
        &resource,
        "--access-point",
        "--endpoint-policy",
        &endpoint,
        "--action",
        "s3:GetObject",
        "--resource",
        &object,
        "--format",
        "json",
    ];
    let run = |principal: &str| {
        let mut args = base.to_vec();
        args.extend(["--principal", principal]);
        let out = xscan(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let allowed = run("arn:aws:sts::111111111111:assumed-role/exec/notebook");
    assert_eq!(allowed["decision"], "Allowed");
    assert!(!allowed["statements"].as_array().unwrap().is_empty());
    assert_eq!(
        run("arn:aws:iam::111111111111:role/other")["decision"],
        "ImplicitlyDenied"
    );
    assert_eq!(run("anonymous")["decision"], "ImplicitlyDenied");

    let text = xscan(&[
        "policy",
        "eval",
        "--policy",
        &identity,
        "--principal",
        "arn:aws:iam::111111111111:role/exec",
        "--action",
        "s3:PutObject",
        "--resource",
        &object,
    ]);
    assert!(
        stdout(&text).starts_with("Decision: ImplicitlyDenied"),
        "{}",
        stdout(&text)
    );

    let bad = write_policy(
        &dir,
        "bad.json",
        serde_json::json!({"Statement": [{"Effect": "Permit", "Action": "*"}]}),
    );
    let out = xscan(&[
        "policy",
        "eval",
        "--policy",
        &bad,
        "--principal",
        "anonymous",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("statement 0") && stderr(&out).contains("help:"),
        "{}",
        stderr(&out)
    );
    let out = xscan(&[
        "policy",
        "eval",
        "--principal",
        "bob",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// The report schema lists exactly the resource types xscan has (`ResourceType::ALL`): a new
/// type cannot be added without the schema.
#[test]
fn the_report_schema_lists_every_resource_type() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::root().join("schemas/report-v1.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = schema["$defs"]["resource_type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let known: Vec<&str> = xscan::model::ResourceType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(listed, known);
}
