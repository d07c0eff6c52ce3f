//! Rule loading errors: every problem reported at once, each with file:line:column.

use xscan::rules::RulePack;

const GOOD: &str = r#"id: XS-T-001
title: t
severity: high
resource_type: sagemaker_notebook
description: d
rationale: r
remediation: m
check:
  field: {path: direct_internet_access, equals: Disabled}
tests:
  - name: n
    expect: {pass: [x]}
"#;

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let files = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    match RulePack::from_files("test", files) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn a_good_rule_loads() {
    assert!(errors(&[("a.yaml", GOOD)]).is_empty());
}

#[test]
fn malformed_yaml_has_a_position() {
    let e = errors(&[("bad.yaml", "id: XS-T-001\ntitle: [unclosed\n")]);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("bad.yaml:"), "{e:?}");
    assert!(
        e[0].split(':').nth(1).unwrap().parse::<usize>().unwrap() >= 2,
        "{e:?}"
    );
}

#[test]
fn unknown_fields_are_rejected_with_position() {
    let bad = GOOD.replace("rationale: r", "rationale: r\nseverty: low");
    let e = errors(&[("a.yaml", &bad)]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("a.yaml:7:1:"), "{e:?}");
    assert!(e[0].contains("unknown field `severty`"), "{e:?}");
    let nested = GOOD.replace("equals: Disabled", "equal: Disabled");
    let e = errors(&[("b.yaml", &nested)]);
    assert!(e[0].starts_with("b.yaml:9:"), "{e:?}");
    assert!(e[0].contains("equal"), "{e:?}");
}

#[test]
fn unknown_resource_type_and_operator_names() {
    let e = errors(&[(
        "a.yaml",
        &GOOD.replace("sagemaker_notebook", "sagemaker_notepad"),
    )]);
    assert!(e[0].starts_with("a.yaml:4:"), "{e:?}");
    assert!(
        e[0].contains("unknown variant `sagemaker_notepad`"),
        "{e:?}"
    );
    let e = errors(&[("b.yaml", &GOOD.replace("  field: {path", "  feild: {path"))]);
    assert!(e[0].contains("unknown variant `feild`"), "{e:?}");
}

#[test]
fn semantic_errors_point_at_the_offending_text() {
    let e = errors(&[(
        "a.yaml",
        &GOOD.replace("path: direct_internet_access", "path: direct_internet"),
    )]);
    assert!(e[0].starts_with("a.yaml:9:"), "{e:?}");
    assert!(e[0].contains("unknown field `direct_internet`"), "{e:?}");
    let e = errors(&[(
        "b.yaml",
        &GOOD.replace("equals: Disabled", "equals: Disabled, present: true"),
    )]);
    assert!(e[0].contains("exactly one operator"), "{e:?}");
    let relation = GOOD.replace(
        "  field: {path: direct_internet_access, equals: Disabled}",
        "  related: {relation: bucket, quantifier: any}",
    );
    let e = errors(&[("c.yaml", &relation)]);
    assert!(e[0].contains("relation `bucket` does not apply"), "{e:?}");
    let analysis = GOOD.replace(
        "  field: {path: direct_internet_access, equals: Disabled}",
        "  analysis: {name: trusts_only_service, policy: role_arn}",
    );
    let e = errors(&[("d.yaml", &analysis)]);
    assert!(e[0].contains("needs the argument `service`"), "{e:?}");
}

#[test]
fn duplicate_ids_and_several_errors_at_once() {
    let bad = GOOD.replace("severity: high", "severity: urgent");
    let e = errors(&[("a.yaml", GOOD), ("b.yaml", GOOD), ("c.yaml", &bad)]);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().any(|m| m
            .starts_with("b.yaml:1:1: duplicate rule id `XS-T-001` (already defined in a.yaml)")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("c.yaml:3:") && m.contains("urgent")),
        "{e:?}"
    );
}

#[test]
fn rules_without_tests_are_rejected() {
    let untested = GOOD.split("tests:").next().unwrap().to_string();
    let e = errors(&[("a.yaml", &untested)]);
    assert!(e[0].contains("no test cases"), "{e:?}");
}

/// `mitigated_by` names a rule of the pack about accounts; anything else is a located error.
#[test]
fn a_mitigation_must_name_an_account_rule_of_the_pack() {
    let mitigated = |rule: &str| {
        GOOD.replace(
            "tests:",
            &format!("mitigated_by:\n  - rule: {rule}\n    because: b\ntests:"),
        )
    };
    let account_rule = GOOD
        .replace("XS-T-001", "XS-T-002")
        .replace(
            "resource_type: sagemaker_notebook",
            "resource_type: account",
        )
        .replace(
            "  field: {path: direct_internet_access, equals: Disabled}",
            "  field: {path: ou_path, present: true}",
        );
    assert!(
        errors(&[
            ("a.yaml", &mitigated("XS-T-002")),
            ("b.yaml", &account_rule)
        ])
        .is_empty()
    );
    let e = errors(&[("a.yaml", &mitigated("XS-T-404"))]);
    assert!(
        e.len() == 1 && e[0].starts_with("a.yaml:11:11:") && e[0].contains("is not in the pack"),
        "{e:?}"
    );
    let notebook_rule = GOOD.replace("XS-T-001", "XS-T-003");
    let e = errors(&[
        ("a.yaml", &mitigated("XS-T-003")),
        ("c.yaml", &notebook_rule),
    ]);
    assert!(
        e.len() == 1 && e[0].contains("is not a rule about accounts"),
        "{e:?}"
    );
}

/// The analysis registry: an argument an analysis does not take is refused where it is
/// written, naming what the analysis takes; a missing required one too.
#[test]
fn analysis_arguments_are_checked_against_the_registry() {
    let analysis = |args: &str| {
        GOOD.replace(
            "  field: {path: direct_internet_access, equals: Disabled}",
            &format!("  analysis:\n    name: not_public\n    policy: policy\n{args}"),
        )
        .replace(
            "resource_type: sagemaker_notebook",
            "resource_type: s3_bucket",
        )
    };
    assert!(errors(&[("a.yaml", &analysis("    kind: resource\n"))]).is_empty());
    let e = errors(&[("a.yaml", &analysis("    bucket: b\n"))]);
    assert!(
        e.len() == 1
            && e[0].starts_with("a.yaml:12:5:")
            && e[0].contains("analysis `not_public` takes no argument `bucket` (it takes `kind`)"),
        "{e:?}"
    );
    let missing = GOOD.replace(
        "  field: {path: direct_internet_access, equals: Disabled}",
        "  analysis: {name: actions_within, policy: policy}",
    );
    let e = errors(&[("a.yaml", &missing)]);
    assert!(
        e.iter().any(|m| m.contains("needs the argument `actions`")),
        "{e:?}"
    );
}

/// A typed argument: `kind` is `resource` or `access_point`, refused otherwise where written.
#[test]
fn an_analysis_kind_is_typed() {
    let rule = GOOD
        .replace(
            "  field: {path: direct_internet_access, equals: Disabled}",
            "  analysis: {name: not_public, policy: policy, kind: bucket}",
        )
        .replace(
            "resource_type: sagemaker_notebook",
            "resource_type: s3_bucket",
        );
    let e = errors(&[("a.yaml", &rule)]);
    assert!(
        e.len() == 1
            && e[0].starts_with("a.yaml:")
            && e[0].contains("bucket")
            && e[0].contains("access_point"),
        "{e:?}"
    );
}
