//! Baselines: every classification, in every output, and the exit code under each --fail-on.

use serde_json::Value;

use crate::common::{
    COMPLIANT, CONFIG, ESTATE, assert_valid_report, scan_json, stdout, temp_dir, xscan,
};

fn state_of<'a>(report: &'a Value, rule: &str, id: &str) -> &'a Value {
    &crate::common::result_of(report, rule, id)["baseline_state"]
}

#[test]
fn drift_from_compliant_to_drifted_and_back() {
    let dir = temp_dir("drift");
    let (compliant, _) = scan_json(COMPLIANT, &[]);
    let baseline = dir.join("baseline.json");
    std::fs::write(&baseline, compliant.to_string()).unwrap();
    let baseline = baseline.to_str().unwrap();

    // The drifted estate against the compliant baseline (a JSON report).
    let (report, code) = scan_json(ESTATE, &["--baseline", baseline]);
    assert_eq!(code, 3, "the error still makes it incomplete");
    assert_eq!(state_of(&report, "XS-SM-001", "ml-notebook-2"), "new");
    assert_eq!(state_of(&report, "XS-SM-001", "ml-notebook-1"), "unchanged");
    assert_eq!(
        state_of(&report, "XS-NET-001", "sg-0c0ffee0000000a01"),
        "changed"
    );
    assert_eq!(state_of(&report, "XS-S3AP-002", "test-ap-1"), "changed");
    let drift = &report["drift"];
    assert_eq!(drift["baseline_report_id"], compliant["report_id"]);
    assert!(drift["counts"]["new"].as_u64().unwrap() >= 5);

    // Back to compliant, against the drifted estate given as a snapshot: failures resolved.
    let (back, code) = scan_json(COMPLIANT, &["--baseline", ESTATE]);
    assert_eq!(code, 0);
    assert_eq!(
        state_of(&back, "XS-NET-001", "sg-0c0ffee0000000a01"),
        "resolved"
    );
    let resolved = back["drift"]["resolved"].as_array().unwrap();
    assert!(
        resolved.iter().any(|r| r["rule_id"] == "XS-SM-001"
            && r["resource"]["id"] == "ml-notebook-2"
            && r["current_status"].is_null()),
        "a failing notebook that is gone is resolved"
    );
    assert!(
        resolved
            .iter()
            .any(|r| r["rule_id"] == "XS-S3-005" && r["previous_status"] == "error")
    );
}

/// A scan compared with its own JSON report finds nothing new or changed: the evidence read
/// back from JSON equals the scan's, the path rules' typed evidence included.
#[test]
fn a_scan_against_its_own_report_is_unchanged() {
    let dir = temp_dir("drift-self");
    let (first, _) = scan_json(ESTATE, &[]);
    let baseline = dir.join("baseline.json");
    std::fs::write(&baseline, first.to_string()).unwrap();
    let (again, _) = scan_json(ESTATE, &["--baseline", baseline.to_str().unwrap()]);
    let results = again["results"].as_array().unwrap();
    let paths = results
        .iter()
        .filter(|r| r["rule_id"].as_str().unwrap().starts_with("XS-PATH"))
        .filter(|r| !r["evidence"].as_array().unwrap().is_empty())
        .count();
    assert!(paths >= 4, "the estate's notebooks have path evidence");
    let moved: Vec<&Value> = results
        .iter()
        .filter(|r| r["baseline_state"] != "unchanged")
        .collect();
    assert!(moved.is_empty(), "{moved:#?}");
}

#[test]
fn fail_on_decides_the_exit_code() {
    let dir = temp_dir("fail-on");
    // Without the example's collection gap: these exit codes are about failures alone.
    let estate = crate::common::estate_without_gaps();
    // Baseline = the drifted estate itself (high and above, so no errors): nothing new.
    let (same, code) = scan_json(&estate, &["--min-severity", "high"]);
    assert_eq!(code, 1);
    let baseline = dir.join("same.json");
    std::fs::write(&baseline, same.to_string()).unwrap();
    let b = baseline.to_str().unwrap();
    assert_eq!(
        scan_json(
            &estate,
            &[
                "--min-severity",
                "high",
                "--baseline",
                b,
                "--fail-on",
                "any"
            ]
        )
        .1,
        1
    );
    assert_eq!(
        scan_json(
            &estate,
            &[
                "--min-severity",
                "high",
                "--baseline",
                b,
                "--fail-on",
                "new"
            ]
        )
        .1,
        0,
        "no new failures"
    );
    assert_eq!(
        scan_json(
            &estate,
            &[
                "--min-severity",
                "high",
                "--baseline",
                b,
                "--fail-on",
                "none"
            ]
        )
        .1,
        0
    );
    // Against the compliant baseline, the failures are new.
    let (compliant, _) = scan_json(COMPLIANT, &["--min-severity", "high"]);
    let clean = dir.join("clean.json");
    std::fs::write(&clean, compliant.to_string()).unwrap();
    assert_eq!(
        scan_json(
            &estate,
            &[
                "--min-severity",
                "high",
                "--baseline",
                clean.to_str().unwrap(),
                "--fail-on",
                "new"
            ]
        )
        .1,
        1
    );
    // Errors still mean incomplete whatever --fail-on says.
    assert_eq!(
        scan_json(&estate, &["--baseline", b, "--fail-on", "none"]).1,
        3
    );
    // A file that is neither: exit 2.
    let out = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--baseline",
        CONFIG,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_output_shows_the_drift() {
    let table = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--baseline",
        COMPLIANT,
    ]);
    assert!(
        stdout(&table).contains("since baseline"),
        "{}",
        stdout(&table)
    );
    let sarif = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--baseline",
        COMPLIANT,
        "--format",
        "sarif",
    ]);
    let log = crate::sarif::check_sarif(&stdout(&sarif));
    let states: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["baselineState"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"new") && states.contains(&"updated"),
        "{states:?}"
    );
    let html = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--baseline",
        COMPLIANT,
        "--format",
        "html",
    ]);
    let html = stdout(&html);
    assert!(html.contains("Changes since the baseline"));
    let (json, _) = scan_json(ESTATE, &["--baseline", COMPLIANT]);
    assert_valid_report(&json);
}

#[test]
fn diff_shows_field_and_policy_changes_and_ignores_reordering() {
    use crate::common::{access_point, notebook, patched_snapshot};
    let dir = temp_dir("diff");
    let drifted = patched_snapshot(&dir, "drifted.json", |s| {
        notebook(s)["direct_internet_access"] = "Enabled".into();
        let statement = &mut access_point(s)["policy"]["document"]["Statement"][0];
        statement["Principal"] = "*".into();
    });
    let out = xscan(&["diff", COMPLIANT, &drifted]);
    assert_eq!(out.status.code(), Some(1), "changes: exit 1");
    let text = stdout(&out);
    assert!(
        text.contains("~ sagemaker_notebook 111111111111/us-east-1/ml-notebook-1"),
        "{text}"
    );
    assert!(
        text.contains("direct_internet_access: \"Disabled\" -> \"Enabled\""),
        "{text}"
    );
    assert!(
        text.contains("~ s3_access_point 222222222222/us-east-1/test-ap-1"),
        "{text}"
    );
    assert!(text.contains("policy: policy changed"), "{text}");
    assert!(text.contains("+      \"Principal\": \"*\""), "{text}");
    assert!(text.ends_with("0 added, 0 removed, 2 modified\n"), "{text}");

    // Statements, keys and list entries reordered, raw text re-encoded: no change.
    let reordered = patched_snapshot(&dir, "reordered.json", |s| {
        let policy = &mut access_point(s)["policy"];
        policy["raw"] = "re-encoded".into();
        policy["document"]["Statement"]
            .as_array_mut()
            .unwrap()
            .reverse();
    });
    let out = xscan(&["diff", COMPLIANT, &reordered]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "0 added, 0 removed, 0 modified\n");

    // Added and removed resources, as JSON.
    let removed = patched_snapshot(&dir, "removed.json", |s| {
        s["accounts"]["111111111111"]["regions"]["us-east-1"]["sagemaker_notebooks"]
            .as_object_mut()
            .unwrap()
            .clear();
    });
    let out = xscan(&["diff", COMPLIANT, &removed, "--format", "json"]);
    let changes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(changes[0]["change"], "removed");
    assert_eq!(changes[0]["id"], "ml-notebook-1");
    let out = xscan(&["diff", &removed, COMPLIANT, "--format", "json"]);
    let changes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(changes[0]["change"], "added");
}

#[test]
fn a_snapshot_baseline_links_changed_findings_to_their_configuration_change() {
    use crate::common::{notebook, patched_snapshot};
    let dir = temp_dir("drift-links");
    let drifted = patched_snapshot(&dir, "drifted.json", |s| {
        notebook(s)["direct_internet_access"] = "Enabled".into();
    });
    let (report, code) = scan_json(&drifted, &["--baseline", COMPLIANT, "--fail-on", "new"]);
    assert_eq!(code, 1);
    assert_valid_report(&report);
    let changes = report["drift"]["config_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["fields"][0]["field"], "direct_internet_access");
    let html = stdout(&xscan(&[
        "scan",
        "--snapshot",
        &drifted,
        "--config",
        CONFIG,
        "--format",
        "html",
        "--baseline",
        COMPLIANT,
    ]));
    let anchor = html
        .split("<article class=\"change\" id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a configuration change section");
    assert!(html.contains(&format!("href=\"#{anchor}\">configuration change</a>")));
    assert!(html.contains(&format!(
        "href=\"#{anchor}\">configuration change since the baseline</a>"
    )));
    let table = stdout(&xscan(&[
        "scan",
        "--snapshot",
        &drifted,
        "--config",
        CONFIG,
        "--baseline",
        COMPLIANT,
    ]));
    assert!(
        table.contains("configuration since baseline: 0 added, 0 removed, 1 modified"),
        "{table}"
    );
}

/// #14: `xscan diff` sees the organization: a guardrail SCP detached from the consumers' OU
/// is a change of each account under it (the policy named), an account moved to another OU a
/// change of its OU path; an unchanged organization is no change.
#[test]
fn diff_shows_organization_changes_per_account() {
    let dir = temp_dir("diff-organization");
    let old = crate::common::patched_snapshot(&dir, "old.json", |_| {});
    let same = crate::common::patched_snapshot(&dir, "same.json", |_| {});
    let new = crate::common::patched_snapshot(&dir, "new.json", |s| {
        s["organization"]["policies"]["p-guardrails"]["targets"] = serde_json::json!([]);
        s["organization"]["accounts"]["222222222222"]["parent_id"] = "ou-a1b2-ml".into();
    });
    let out = xscan(&["diff", &old, &same]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = xscan(&["diff", &old, &new, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let changes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let of = |account: &str| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["resource_type"] == "account" && c["account"] == account)
            .unwrap_or_else(|| panic!("{account}: {changes:#}"))
            .clone()
    };
    let consumer = of("111111111111");
    let removed = consumer["fields"].as_array().unwrap().iter().any(|f| {
        f["field"]
            .as_str()
            .unwrap()
            .contains("service_control_policies.ou-a1b2-consumers ml-consumer-guardrails")
    });
    assert!(removed, "{consumer:#}");
    let data = of("222222222222");
    assert!(
        data["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "ou_path" && f["new"] == "Root/ML"),
        "{data:#}"
    );
}
