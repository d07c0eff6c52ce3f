//! Results that depend on something not collected or not configured are `error`, never a
//! pass or a fail (issue "Verdicts that agree with AWS", item 3).

use crate::common::{
    COMPLIANT, CONFIG, patched_snapshot, result_of, root, scan_json, temp_dir, xscan,
};

#[test]
fn security_groups_are_not_judged_against_prefix_lists_that_could_not_be_listed() {
    let dir = temp_dir("verdict-prefix-gap");
    let snapshot = patched_snapshot(&dir, "gap.json", |s| {
        s["accounts"]["111111111111"]["regions"]["us-east-1"]["prefix_lists"] =
            serde_json::json!({});
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "region": "us-east-1", "service": "ec2",
            "api_call": "DescribeManagedPrefixLists", "resource_types": ["prefix_list"],
            "error": "Throttling: Rate exceeded"
        }]);
    });
    let (report, code) = scan_json(&snapshot, &[]);
    assert_eq!(code, 3, "an incomplete scan");
    let result = result_of(&report, "XS-NET-001", "sg-0c0ffee0000000a01");
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("DescribeManagedPrefixLists"),
        "{result}"
    );
}

#[test]
fn expected_roles_are_not_taken_from_the_notebooks_they_judge() {
    let dir = temp_dir("verdict-exec-roles");
    let config = std::fs::read_to_string(root().join(CONFIG))
        .unwrap()
        .replace(
            "execution_roles: [\"arn:aws:iam::111111111111:role/xscan-sagemaker-exec\"]",
            "execution_roles: []",
        );
    assert!(config.contains("execution_roles: []"));
    let path = dir.join("xscan.yaml");
    std::fs::write(&path, config).unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = result_of(&report, "XS-SM-005", "ml-notebook-1");
    assert_eq!(result["status"], "error", "{result}");
    assert_eq!(out.status.code(), Some(3));
    // With the roles configured, the same notebook passes.
    let (report, _) = scan_json(COMPLIANT, &[]);
    assert_eq!(
        result_of(&report, "XS-SM-005", "ml-notebook-1")["status"],
        "pass"
    );
}
