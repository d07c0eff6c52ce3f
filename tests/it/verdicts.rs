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

/// The compliant fixture with `change`, scanned: the report and the exit code.
fn scan_patched(
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> (serde_json::Value, i32) {
    let dir = temp_dir(name);
    let snapshot = patched_snapshot(&dir, "snapshot.json", change);
    scan_json(&snapshot, &[])
}

fn status<'a>(report: &'a serde_json::Value, rule: &str, id: &str) -> &'a str {
    result_of(report, rule, id)["status"].as_str().unwrap()
}

const REGION: &str = "/accounts/111111111111/regions/us-east-1";

/// DescribeNotebookInstance failed: what the notebook uses is unknown, so the security group,
/// subnet, route table and endpoint are not "used by no notebook" (skipped) but not evaluated.
#[test]
fn a_notebook_that_could_not_be_described_leaves_what_it_uses_unknown() {
    let (report, code) = scan_patched("verdict-describe-failed", |s| {
        let notebook = s
            .pointer_mut(&format!("{REGION}/sagemaker_notebooks/ml-notebook-1"))
            .unwrap();
        let error = "AccessDeniedException: not authorized";
        let mut errors = serde_json::Map::new();
        for field in [
            "subnet_id",
            "security_groups",
            "direct_internet_access",
            "root_access",
            "kms_key_id",
            "role_arn",
            "platform_identifier",
            "imds_version",
        ] {
            errors.insert(field.into(), error.into());
        }
        if let Some(o) = notebook.as_object_mut() {
            o.retain(|k, _| ["name", "arn", "status"].contains(&k.as_str()));
        }
        notebook["collection_errors"] = serde_json::Value::Object(errors);
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "region": "us-east-1", "service": "sagemaker",
            "api_call": "DescribeNotebookInstance", "resource_id": "ml-notebook-1", "error": error
        }]);
    });
    assert_eq!(code, 3);
    for (rule, id) in [
        ("XS-NET-001", "sg-0c0ffee0000000a01"),
        ("XS-NET-002", "sg-0c0ffee0000000a01"),
        ("XS-IAM-001", "xscan-sagemaker-exec"),
        ("XS-SM-001", "ml-notebook-1"),
        ("XS-NET-005", "ml-notebook-1"),
    ] {
        assert_eq!(
            status(&report, rule, id),
            "error",
            "{rule} {id}: {}",
            result_of(&report, rule, id)
        );
    }
}

/// DescribeRouteTables failed: the notebook's endpoint is unknown, not missing.
#[test]
fn route_tables_that_could_not_be_listed_do_not_mean_no_endpoint() {
    let (report, code) = scan_patched("verdict-route-tables", |s| {
        *s.pointer_mut(&format!("{REGION}/route_tables")).unwrap() = serde_json::json!({});
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "region": "us-east-1", "service": "ec2",
            "api_call": "DescribeRouteTables", "resource_types": ["route_table"],
            "error": "RequestLimitExceeded: Request limit exceeded."
        }]);
    });
    assert_eq!(code, 3);
    let result = result_of(&report, "XS-NET-005", "ml-notebook-1");
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("DescribeRouteTables"),
        "{result}"
    );
}

/// ListNotebookInstances failed: the execution role's users are unknown, so the role rules are
/// not evaluated rather than skipped as "used by no notebook".
#[test]
fn a_failed_notebook_listing_leaves_the_role_rules_unevaluated() {
    let (report, code) = scan_patched("verdict-notebook-listing", |s| {
        *s.pointer_mut(&format!("{REGION}/sagemaker_notebooks"))
            .unwrap() = serde_json::json!({});
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "region": "us-east-1", "service": "sagemaker",
            "api_call": "ListNotebookInstances", "resource_types": ["sagemaker_notebook"],
            "error": "ThrottlingException: Rate exceeded"
        }]);
    });
    assert_eq!(code, 3);
    for rule in ["XS-IAM-001", "XS-IAM-002", "XS-IAM-003"] {
        assert_eq!(
            status(&report, rule, "xscan-sagemaker-exec"),
            "error",
            "{rule}"
        );
    }
    assert_eq!(
        status(&report, "XS-NET-001", "sg-0c0ffee0000000a01"),
        "error"
    );
}

/// `rules test --mutants`: the pack kills every mutant; a rule whose cases cannot tell a
/// mutant apart is reported and the exit code is 1.
#[test]
fn mutation_testing_finds_checks_no_case_can_fail() {
    let out = xscan(&["rules", "test", "--mutants"]);
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("survived: 0"), "{text}");

    let dir = temp_dir("mutants-weak-rule");
    let rules = dir.join("rules");
    std::fs::create_dir_all(rules.join("fixtures")).unwrap();
    for f in ["compliant.snapshot.json", "xscan.yaml"] {
        std::fs::copy(
            root().join("rules/fixtures").join(f),
            rules.join("fixtures").join(f),
        )
        .unwrap();
    }
    // XS-SM-001 with its failing case removed: "forced true" survives.
    let rule = std::fs::read_to_string(
        root().join("rules/sagemaker/XS-SM-001-notebook-direct-internet-disabled.yaml"),
    )
    .unwrap();
    let weak = &rule[..rule.find("tests:").unwrap()];
    std::fs::write(
        rules.join("XS-SM-001.yaml"),
        format!(
            "{weak}tests:\n  - name: compliant passes\n    expect: {{pass: [ml-notebook-1]}}\n"
        ),
    )
    .unwrap();
    let out = xscan(&["rules", "test", "--mutants", rules.to_str().unwrap()]);
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("SURVIVED XS-SM-001"), "{text}");
    assert!(text.contains("forced true"), "{text}");
}
