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
    // The rule as bundled, and as written with spaces inside the reference, which resolves
    // to the same parameter and so must carry the same gap.
    let spaced = dir.join("spaced");
    std::fs::create_dir_all(&spaced).unwrap();
    let bundled = "rules/network/XS-NET-001-sg-egress-only-s3-prefix-list.yaml";
    let text = std::fs::read_to_string(root().join(bundled)).unwrap();
    assert!(text.contains("\"${region.s3_prefix_lists}\""));
    std::fs::write(
        spaced.join("XS-NET-001.yaml"),
        text.replace("${region.s3_prefix_lists}", "${ region.s3_prefix_lists }"),
    )
    .unwrap();
    for extra in [vec![], vec!["--rules", spaced.to_str().unwrap()]] {
        let (report, code) = scan_json(&snapshot, &extra);
        assert_eq!(code, 3, "an incomplete scan ({extra:?})");
        let result = result_of(&report, "XS-NET-001", "sg-0c0ffee0000000a01");
        assert_eq!(result["status"], "error", "{extra:?}: {result}");
        assert!(
            result["message"]
                .as_str()
                .unwrap()
                .contains("DescribeManagedPrefixLists"),
            "{result}"
        );
    }
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
    // Alone in its pack: without its mitigation, whose rule is not there.
    let weak = &rule[..rule
        .find("mitigated_by:")
        .or_else(|| rule.find("tests:"))
        .unwrap()];
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

/// Status of every result of `snapshot`, keyed by (rule, account, region, id); and whether the
/// report says the scan is incomplete.
type Statuses = std::collections::BTreeMap<(String, String, String, String), (String, String)>;

fn statuses(snapshot: &serde_json::Value) -> Option<(Statuses, bool)> {
    use std::sync::OnceLock;
    static PACK: OnceLock<xscan::rules::RulePack> = OnceLock::new();
    static CONFIG_: OnceLock<xscan::config::Config> = OnceLock::new();
    let pack = PACK.get_or_init(|| xscan::rules::RulePack::embedded().unwrap());
    let config = CONFIG_.get_or_init(|| {
        xscan::config::Config::from_yaml(
            "xscan.yaml",
            &std::fs::read_to_string(root().join(CONFIG)).unwrap(),
        )
        .unwrap()
    });
    let snapshot: xscan::model::Snapshot = serde_json::from_value(snapshot.clone()).ok()?;
    let report = xscan::scan::run(&xscan::scan::ScanInputs {
        snapshot: &snapshot,
        snapshot_sha256: String::new(),
        pack,
        config: Some(config),
        config_sha256: None,
        min_severity: xscan::findings::Severity::Info,
        spill_at: xscan::findings::results::SPILL_AT,
    })
    .unwrap();
    let map = report
        .results
        .iter()
        .map(|f| {
            (
                (
                    f.rule_id().to_string(),
                    f.resource.account.clone(),
                    f.resource.region.clone().unwrap_or_default(),
                    f.resource.id.clone(),
                ),
                (f.status.as_str().to_string(), f.message.to_string()),
            )
        })
        .collect();
    Some((map, report.summary.incomplete))
}

/// Every way to lose one collected item of `base`: each population of each account and region
/// (its resources gone, a gap recorded) and each field of each resource that records field
/// errors (named in `collection_errors`, with a gap).
fn removals(base: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    use serde_json::{Value, json};
    let mut out = Vec::new();
    let gap = |account: &str, region: Option<&str>, types: Vec<String>, id: Option<&str>| {
        let mut g = json!({"account": account, "service": "test", "api_call": "Removed",
            "error": "removed by the test"});
        if let Some(r) = region {
            g["region"] = r.into();
        }
        if !types.is_empty() {
            g["resource_types"] = json!(types);
        }
        if let Some(id) = id {
            g["resource_id"] = id.into();
        }
        g
    };
    let with_gap = |mut s: Value, g: Value| {
        s["metadata"]["collection_gaps"]
            .as_array_mut()
            .unwrap()
            .push(g);
        s
    };
    let accounts = base["accounts"].as_object().unwrap();
    for (account, snapshot) in accounts {
        let mut places: Vec<(String, Option<String>)> =
            vec![(format!("/accounts/{account}"), None)];
        for region in snapshot["regions"].as_object().unwrap().keys() {
            places.push((
                format!("/accounts/{account}/regions/{region}"),
                Some(region.clone()),
            ));
        }
        for (place, region) in places {
            let Some(object) = base.pointer(&place).and_then(Value::as_object) else {
                continue;
            };
            for (key, population) in object {
                let Some(resources) = population.as_object() else {
                    continue;
                };
                if key == "regions" || key == "s3_account_settings" {
                    continue;
                }
                let type_name = key.trim_end_matches('s').to_string();
                let mut s = base.clone();
                *s.pointer_mut(&format!("{place}/{key}")).unwrap() = json!({});
                out.push((
                    format!("population {place}/{key}"),
                    with_gap(s, gap(account, region.as_deref(), vec![type_name], None)),
                ));
                for (id, resource) in resources {
                    let Some(fields) = resource.as_object() else {
                        continue;
                    };
                    if !fields.contains_key("collection_errors")
                        && !matches!(
                            key.as_str(),
                            "sagemaker_notebooks"
                                | "vpc_endpoints"
                                | "iam_roles"
                                | "s3_buckets"
                                | "s3_access_points"
                        )
                    {
                        continue;
                    }
                    for field in fields.keys().filter(|f| {
                        !["name", "arn", "id", "collection_errors"].contains(&f.as_str())
                    }) {
                        let mut s = base.clone();
                        let pointer = format!("{place}/{key}/{id}");
                        let r = s.pointer_mut(&pointer).unwrap();
                        r["collection_errors"][field] = "removed by the test".into();
                        out.push((
                            format!("field {pointer}/{field}"),
                            with_gap(s, gap(account, region.as_deref(), Vec::new(), Some(id))),
                        ));
                    }
                }
            }
        }
        if snapshot
            .get("s3_account_settings")
            .is_some_and(|v| v.is_object())
        {
            for field in snapshot["s3_account_settings"].as_object().unwrap().keys() {
                if field == "collection_errors" {
                    continue;
                }
                let mut s = base.clone();
                s["accounts"][account]["s3_account_settings"]["collection_errors"][field] =
                    "removed by the test".into();
                out.push((
                    format!("field /accounts/{account}/s3_account_settings/{field}"),
                    with_gap(s, gap(account, None, Vec::new(), Some(account))),
                ));
            }
        }
    }
    out
}

/// Issue "Verdicts", item 3: whatever single item is missing, every result keeps its verdict
/// or becomes `error`, and the scan says it is incomplete (exit code 3).
#[test]
fn losing_any_collected_item_turns_results_into_errors_never_other_verdicts() {
    for estate in [COMPLIANT, crate::common::ESTATE] {
        let base: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(estate)).unwrap()).unwrap();
        let (baseline, _) = statuses(&base).unwrap();
        let variants = removals(&base);
        assert!(variants.len() > 40, "{estate}: {} variants", variants.len());
        let mut violations = Vec::new();
        for (what, snapshot) in &variants {
            let Some((results, incomplete)) = statuses(snapshot) else {
                violations.push(format!("{what}: the snapshot no longer loads"));
                continue;
            };
            if !incomplete {
                violations.push(format!("{what}: the scan does not say it is incomplete"));
            }
            for (key, (status, message)) in &results {
                if status == "error" {
                    continue;
                }
                match baseline.get(key) {
                    Some((before, _)) if before == status => {}
                    before => violations.push(format!(
                        "{what}: {key:?} was {:?}, now {status}: {message}",
                        before.map(|b| &b.0)
                    )),
                }
            }
            for (key, (before, _)) in &baseline {
                let population_error = results.iter().any(|((rule, account, _, id), (s, _))| {
                    rule == &key.0 && account == &key.1 && id == "*" && s == "error"
                });
                if !results.contains_key(key) && before != "skipped" && !population_error {
                    violations.push(format!(
                        "{what}: {key:?} ({before}) vanished without an error"
                    ));
                }
            }
        }
        assert!(
            violations.is_empty(),
            "{estate}: {} of {} removals broke the invariant:\n{}",
            violations.len(),
            variants.len(),
            violations.join("\n")
        );
    }
}

/// Issue "Verdicts", item 5: over the compliant fixture and every patch of every rule's test
/// cases, no two results contradict each other about the same policy (a perimeter that is
/// "full access", an access point granting only the roles that is "public", a delegating
/// bucket policy that is "public").
#[test]
fn one_policy_one_answer_across_every_test_patch() {
    let pack = xscan::rules::RulePack::embedded().unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(COMPLIANT)).unwrap()).unwrap();
    let mut patched = vec![("fixture".to_string(), base.clone())];
    for rule in &pack.rules {
        for case in &rule.spec.tests {
            let mut document = base.clone();
            let patch: json_patch::Patch =
                serde_json::from_value(serde_json::Value::Array(case.patch.clone())).unwrap();
            json_patch::patch(&mut document, &patch).unwrap();
            patched.push((format!("{} / {}", rule.spec.id, case.name), document));
        }
    }
    // (stronger rule passes) => (weaker rule passes), on the same resource.
    let implications = [
        ("XS-NET-006", "XS-NET-007"),
        ("XS-S3AP-002", "XS-S3AP-005"),
        ("XS-S3-003", "XS-S3-007"),
    ];
    let mut contradictions = Vec::new();
    for (name, document) in &patched {
        let Some((results, _)) = statuses(document) else {
            continue;
        };
        for (strong, weak) in implications {
            for ((rule, account, region, id), (status, _)) in &results {
                if rule != strong || status != "pass" {
                    continue;
                }
                let key = (
                    weak.to_string(),
                    account.clone(),
                    region.clone(),
                    id.clone(),
                );
                if let Some((other, message)) = results.get(&key)
                    && other == "fail"
                {
                    contradictions.push(format!(
                        "{name}: {strong} passes {id} but {weak} fails it: {message}"
                    ));
                }
            }
        }
    }
    assert!(patched.len() > 100, "{}", patched.len());
    assert!(contradictions.is_empty(), "{}", contradictions.join("\n"));
}

/// Execution roles derived from the notebooks (none configured) carry the notebooks' gaps: the
/// access point's grant cannot be judged against a list that may miss a role.
#[test]
fn derived_execution_roles_carry_the_gaps_of_the_notebooks() {
    let dir = temp_dir("verdict-derived-roles");
    let config = std::fs::read_to_string(root().join(CONFIG))
        .unwrap()
        .replace(
            "execution_roles: [\"arn:aws:iam::111111111111:role/xscan-sagemaker-exec\"]",
            "execution_roles: []",
        );
    let config_path = dir.join("xscan.yaml");
    std::fs::write(&config_path, config).unwrap();
    let snapshot = patched_snapshot(&dir, "gap.json", |s| {
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "region": "us-east-1", "service": "sagemaker",
            "api_call": "DescribeNotebookInstance", "resource_id": "ml-notebook-9",
            "error": "ThrottlingException: Rate exceeded"
        }]);
    });
    let scan = |snapshot: &str| {
        let out = xscan(&[
            "scan",
            "--snapshot",
            snapshot,
            "--config",
            config_path.to_str().unwrap(),
            "--format",
            "json",
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = scan(&snapshot);
    let result = result_of(&report, "XS-S3AP-002", "test-ap-1");
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("ml-notebook-9"),
        "{result}"
    );
    // Without the gap, the derived roles are complete and the access point passes.
    let report = scan(COMPLIANT);
    assert_eq!(
        result_of(&report, "XS-S3AP-002", "test-ap-1")["status"],
        "pass"
    );
}

/// A policy allowing every action on every resource (identity or SCP).
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

/// Writes `text` to `dir/name`; returns the path as an argument.
fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `policy eval --scp/--rcp`: one file per level (a JSON array holds a level's several
/// policies); a level with no Allow denies, an RCP Deny wins, the management account is exempt.
#[test]
fn policy_eval_takes_the_organization_layers() {
    let dir = temp_dir("policy-eval-org");
    let write = |name: &str, text: &str| write_file(&dir, name, text);
    let identity = write("identity.json", ALLOW_ALL);
    let root = write("root.json", ALLOW_ALL);
    let ou = write(
        "ou.json",
        r#"[{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}},
            {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}}]"#,
    );
    let eval = |action: &str, extra: &[&str]| {
        let mut args = vec![
            "policy",
            "eval",
            "--policy",
            &identity,
            "--principal",
            "arn:aws:iam::111111111111:role/Exec",
            "--action",
            action,
            "--resource",
            "*",
            "--scp",
            &root,
            "--scp",
            &ou,
        ];
        args.extend_from_slice(extra);
        let out = xscan(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            crate::common::stderr(&out)
        );
        crate::common::stdout(&out)
    };
    assert!(eval("sagemaker:CreateNotebookInstance", &[]).contains("Decision: Allowed"));
    let denied = eval("ec2:RunInstances", &[]);
    assert!(denied.contains("Decision: ImplicitlyDenied"), "{denied}");
    assert!(denied.contains("every level"), "{denied}");
    assert!(
        eval(
            "ec2:RunInstances",
            &["--management-account", "111111111111"]
        )
        .contains("Decision: Allowed")
    );
}

/// #14: a failure that an organization rule holding in the same account keeps from being
/// exploited or repeated says so, and stays a failure (XS-SM-001 with the XS-ORG-001 SCP
/// guardrail; XS-NET-007 with the XS-ORG-003 resource perimeter); without the guardrail, the
/// same failure says nothing of it.
#[test]
fn a_failure_an_scp_mitigates_says_so_and_stays_a_failure() {
    let pack = xscan::rules::RulePack::embedded().unwrap();
    let run = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut snapshot: serde_json::Value =
            serde_json::from_str(pack.fixture_snapshot.as_deref().unwrap()).unwrap();
        patch(&mut snapshot);
        let snapshot = xscan::model::Snapshot::from_json("fixture", &snapshot.to_string()).unwrap();
        let config = xscan::config::Config::from_yaml(
            "fixture.yaml",
            pack.fixture_config.as_deref().unwrap(),
        )
        .unwrap();
        let accounts = config.account_roles();
        let evaluator =
            xscan::rules::Evaluator::new(&snapshot, config.parameters(&snapshot), accounts);
        let held = evaluator.evaluate_all(&pack.rules);
        // Spilled results (a large scan's) are noted alike.
        let spilled = evaluator.evaluate_results(&pack.rules, 0).unwrap();
        assert!(spilled.is_spilled());
        assert_eq!(spilled.to_vec().unwrap(), held);
        held
    };
    let drift = |s: &mut serde_json::Value| {
        *s.pointer_mut("/accounts/111111111111/regions/us-east-1/sagemaker_notebooks/ml-notebook-1/direct_internet_access")
            .unwrap() = "Enabled".into();
        *s.pointer_mut(
            "/accounts/111111111111/regions/us-east-1/vpc_endpoints/vpce-0c0ffee0000000a01/policy",
        )
        .unwrap() = serde_json::json!({"document": {"Version": "2008-10-17", "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}});
    };
    let find = |findings: &[xscan::findings::Finding], rule: &str| {
        findings
            .iter()
            .find(|f| f.rule_id() == rule)
            .unwrap()
            .clone()
    };
    let guarded = run(&drift);
    for (rule, by) in [("XS-SM-001", "XS-ORG-001"), ("XS-NET-007", "XS-ORG-003")] {
        let finding = find(&guarded, rule);
        assert_eq!(finding.status, xscan::findings::Status::Fail, "{rule}");
        assert!(
            finding
                .message
                .contains(&format!("mitigated, still a finding: {by} holds")),
            "{rule}: {}",
            finding.message
        );
        assert!(
            finding
                .evidence
                .iter()
                .any(|e| *e.path == format!("mitigated_by {by}")),
            "{rule}"
        );
    }
    let unguarded = run(&|s| {
        drift(s);
        s.pointer_mut("/organization/policies")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("p-guardrails");
    });
    for rule in ["XS-SM-001", "XS-NET-007"] {
        let finding = find(&unguarded, rule);
        assert_eq!(finding.status, xscan::findings::Status::Fail);
        assert!(
            !finding.message.contains("mitigated"),
            "{}",
            finding.message
        );
    }
}

/// #14: `policy eval --organization SNAPSHOT` takes the SCPs, RCPs, management account and
/// org keys from a collected organization (the compliant fixture's): the consumer's role reads
/// the dataset (its `aws:PrincipalOrgID` is the organization's, so the identity-perimeter RCP
/// does not deny); an outsider is denied by that RCP once its organization is given, and is
/// Indeterminate while it is not known, with a warning that its own SCPs are not known; a
/// write to another organization's bucket is denied by the consumers' SCP.
#[test]
fn policy_eval_reads_the_organization_from_a_snapshot() {
    let dir = temp_dir("policy-eval-org-snapshot");
    let write = |name: &str, text: &str| write_file(&dir, name, text);
    let identity = write("identity.json", ALLOW_ALL);
    let grant = write(
        "grant.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
    );
    let eval = |principal: &str, action: &str, resource: &str, owner: &str, extra: &[&str]| {
        let mut args = vec![
            "policy",
            "eval",
            "--policy",
            &identity,
            "--resource-policy",
            &grant,
            "--principal",
            principal,
            "--action",
            action,
            "--resource",
            resource,
            "--resource-account",
            owner,
            "--organization",
            crate::common::COMPLIANT,
        ];
        args.extend_from_slice(extra);
        let out = xscan(&args);
        (out.status.code(), crate::common::stdout(&out))
    };
    let consumer = "arn:aws:iam::111111111111:role/xscan-sagemaker-exec";
    let outsider = "arn:aws:iam::888888888888:role/outsider";
    let object = "arn:aws:s3:::test-bucket-1/data.csv";
    let (code, text) = eval(consumer, "s3:GetObject", object, "222222222222", &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Decision: Allowed"), "{text}");
    let (_, text) = eval(outsider, "s3:GetObject", object, "222222222222", &[]);
    assert!(text.contains("Decision: Indeterminate"), "{text}");
    assert!(text.contains("not in organization o-a1b2c3d4e5"), "{text}");
    let (_, text) = eval(
        outsider,
        "s3:GetObject",
        object,
        "222222222222",
        &["--context", "aws:PrincipalOrgID=o-zzzzzzzzzz"],
    );
    assert!(text.contains("Decision: ExplicitlyDenied"), "{text}");
    assert!(text.contains("dataset-identity-perimeter"), "{text}");
    let (_, text) = eval(
        consumer,
        "s3:PutObject",
        "arn:aws:s3:::elsewhere/x",
        "888888888888",
        &["--context", "aws:ResourceOrgID=o-zzzzzzzzzz"],
    );
    assert!(text.contains("Decision: ExplicitlyDenied"), "{text}");
    assert!(text.contains("ml-consumer-guardrails"), "{text}");
    // The flags that give the layers by hand cannot be mixed with a snapshot's.
    let (code, _) = eval(
        consumer,
        "s3:GetObject",
        object,
        "222222222222",
        &["--management-account", "999999999999"],
    );
    assert_eq!(code, Some(2));
}

/// An organization whose tree could not be read: an account's OU path and the SCPs of its
/// levels are unknown, so a rule that reads them is `error` — not a pass on an empty list or a
/// missing path (the organization's parts are named in `organization.collection_errors`).
/// https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListOrganizationalUnitsForParent.html
#[test]
fn account_fields_made_of_an_unread_organization_tree_are_unknown() {
    let dir = temp_dir("verdict-org-tree");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |id: &str, check: &str| {
        format!(
            "id: {id}\ntitle: t\nseverity: high\nresource_type: account\ndescription: d\nrationale: r\nremediation: m\ncheck:\n{check}\ntests:\n  - name: n\n    expect: {{pass: [\"111111111111\"]}}\n"
        )
    };
    std::fs::write(
        rules.join("ou.yaml"),
        rule(
            "XS-T-OU",
            "  not: {field: {path: ou_path, equals: Root/Sandbox}}",
        ),
    )
    .unwrap();
    std::fs::write(
        rules.join("scp.yaml"),
        rule(
            "XS-T-SCP",
            "  each: {path: service_control_policies, quantifier: none, check: {field: {path: name, equals: AllowEverythingSandbox}}}",
        ),
    )
    .unwrap();
    std::fs::write(
        rules.join("rcp.yaml"),
        rule(
            "XS-T-RCP",
            "  each: {path: resource_control_policies, quantifier: none, check: {field: {path: name, equals: AllowEverythingSandbox}}}",
        ),
    )
    .unwrap();
    std::fs::write(
        rules.join("tags.yaml"),
        rule(
            "XS-T-TAG",
            "  not: {field: {path: tags.environment, equals: sandbox}}",
        ),
    )
    .unwrap();
    let rules_arg = rules.to_str().unwrap().to_string();
    let all = ["XS-T-OU", "XS-T-SCP", "XS-T-RCP", "XS-T-TAG"];
    // Read whole: all pass.
    let (report, _) = scan_json(COMPLIANT, &["--rules", &rules_arg]);
    for rule in all {
        assert_eq!(status(&report, rule, "111111111111"), "pass", "{rule}");
    }
    // The tree unread: all unknown.
    let snapshot = patched_snapshot(&dir, "tree.json", |s| {
        s["organization"]["units"] = serde_json::json!({});
        s["organization"]["collection_errors"] = serde_json::json!({
            "tree": "organizations:ListOrganizationalUnitsForParent: AccessDeniedException"
        });
    });
    let (report, code) = scan_json(&snapshot, &["--rules", &rules_arg]);
    assert_eq!(code, 3);
    for rule in all {
        let result = result_of(&report, rule, "111111111111");
        assert_eq!(result["status"], "error", "{rule}: {result}");
        assert!(
            result["message"]
                .as_str()
                .unwrap()
                .contains("ListOrganizationalUnitsForParent"),
            "{result}"
        );
    }
}

/// The `organization_policy` type (src/model/organization_policy.rs): each SCP and RCP is a
/// resource custom rules can hold; its population is unknown when its kind could not be
/// listed, and without an organization it is not evaluated. Policy analyses are refused on it
/// (an SCP has no Principal), with the rule's location.
#[test]
fn organization_policies_are_resources_a_rule_can_hold() {
    let dir = temp_dir("verdict-org-policy");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("attached.yaml"),
        "id: XS-T-POL\ntitle: Customer managed policies are attached\nseverity: high\nresource_type: organization_policy\ndescription: d\nrationale: r\nremediation: m\napplies_to:\n  when: {field: {path: aws_managed, equals: false}}\ncheck:\n  all:\n    - not: {field: {path: targets, equals: []}}\n    - field: {path: policy.document.Version, equals: \"2012-10-17\"}\ntests:\n  - name: n\n    expect: {pass: [p-guardrails]}\n",
    )
    .unwrap();
    let rules_arg = rules.to_str().unwrap().to_string();
    let (report, code) = scan_json(COMPLIANT, &["--rules", &rules_arg]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(status(&report, "XS-T-POL", "p-guardrails"), "pass");
    assert_eq!(status(&report, "XS-T-POL", "p-identity"), "pass");
    assert_eq!(status(&report, "XS-T-POL", "p-FullAWSAccess"), "skipped");
    let guardrails = result_of(&report, "XS-T-POL", "p-guardrails");
    assert_eq!(
        guardrails["resource"]["arn"],
        "arn:aws:organizations::999999999999:policy/o-a1b2c3d4e5/service_control_policy/p-guardrails"
    );
    assert_eq!(guardrails["resource"]["account"], "999999999999");
    assert_eq!(
        result_of(&report, "XS-T-POL", "p-FullAWSAccess")["resource"]["arn"],
        "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess"
    );

    // Detached: fails.
    let snapshot = patched_snapshot(&dir, "detached.json", |s| {
        s["organization"]["policies"]["p-guardrails"]["targets"] = serde_json::json!([]);
    });
    let (report, code) = scan_json(&snapshot, &["--rules", &rules_arg]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(status(&report, "XS-T-POL", "p-guardrails"), "fail");
    assert_eq!(status(&report, "XS-T-POL", "p-identity"), "pass");

    // The SCPs could not be listed: the policies that are there are judged, and the
    // population is unknown, not empty.
    let snapshot = patched_snapshot(&dir, "unlisted.json", |s| {
        let policies = s["organization"]["policies"].as_object_mut().unwrap();
        policies.retain(|_, p| p["policy_type"] == "RESOURCE_CONTROL_POLICY");
        s["organization"]["collection_errors"] = serde_json::json!({
            "service_control_policies": "organizations:ListPolicies: AccessDeniedException"
        });
    });
    let (report, code) = scan_json(&snapshot, &["--rules", &rules_arg]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(status(&report, "XS-T-POL", "p-identity"), "pass");
    let unknown = result_of(&report, "XS-T-POL", "*");
    assert_eq!(unknown["status"], "error", "{unknown}");
    assert_eq!(unknown["resource"]["account"], "999999999999");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("ListPolicies"),
        "{unknown}"
    );

    // No organization in the snapshot: not evaluated, said for each configured account.
    let snapshot = patched_snapshot(&dir, "no-org.json", |s| {
        s.as_object_mut().unwrap().remove("organization");
    });
    let (report, _) = scan_json(&snapshot, &["--rules", &rules_arg]);
    let skipped = result_of(&report, "XS-T-POL", "111111111111");
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .contains("organization is not in scope")
    );

    // A policy analysis on it is refused when the rule is loaded.
    std::fs::write(
        rules.join("analysis.yaml"),
        "id: XS-T-POL2\ntitle: t\nseverity: high\nresource_type: organization_policy\ndescription: d\nrationale: r\nremediation: m\ncheck:\n  analysis: {name: not_full_access, policy: policy}\ntests:\n  - name: n\n    expect: {pass: [p-guardrails]}\n",
    )
    .unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--rules",
        &rules_arg,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("analysis.yaml") && err.contains("does not apply to `organization_policy`"),
        "{err}"
    );
}

/// A subnet has at most one route table association, and a VPC one main route table
/// (https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#subnet-route-tables).
/// A snapshot naming two (edited by hand, or read while an association was replaced between
/// two pages) does not say which one routes the notebook: the rules that follow the subnet to
/// its table, the rules on either table that ask whether a notebook uses it, and the paths all
/// answer `error`, rather than the rules picking one table and the paths the other.
#[test]
fn a_subnet_routed_by_two_tables_is_not_evaluated() {
    let dir = temp_dir("verdict-two-route-tables");
    let snapshot = patched_snapshot(&dir, "two-tables.json", |s| {
        let tables = &mut s["accounts"]["111111111111"]["regions"]["us-east-1"]["route_tables"];
        tables["rtb-0c0ffee0000000a03"] = serde_json::json!({
            "id": "rtb-0c0ffee0000000a03", "vpc_id": "vpc-0c0ffee0000000a01", "main": false,
            "subnet_ids": ["subnet-0c0ffee0000000a01"],
            "routes": [{"destination_cidr": "0.0.0.0/0", "target": "igw-0c0ffee0000000a01",
                        "target_type": "internet_gateway", "state": "active"}]
        });
    });
    let (report, code) = scan_json(&snapshot, &[]);
    assert_eq!(code, 3, "an incomplete scan");
    let why = "subnet subnet-0c0ffee0000000a01 is associated with route tables rtb-0c0ffee0000000a01, rtb-0c0ffee0000000a03";
    for (rule, id) in [
        // The notebook's gateway endpoints are found through its subnet's table.
        ("XS-NET-005", "ml-notebook-1"),
        // Either table may carry the notebook's traffic.
        ("XS-NET-003", "rtb-0c0ffee0000000a01"),
        ("XS-NET-003", "rtb-0c0ffee0000000a03"),
        // The path to the dataset goes through the table to the endpoint.
        ("XS-PATH-001", "ml-notebook-1"),
    ] {
        let result = result_of(&report, rule, id);
        assert_eq!(result["status"], "error", "{rule} {id}: {result}");
        assert!(
            result.to_string().contains(why),
            "{rule} {id} names both tables: {result}"
        );
    }
    // Out of the VPC, the security group refuses whatever the table routes: a layer that
    // refuses decides, the unknown one does not matter.
    let around = result_of(&report, "XS-PATH-002", "ml-notebook-1");
    assert_eq!(around["status"], "pass", "{around}");
    assert!(
        around
            .to_string()
            .contains("\"decided_by\":{\"layer\":\"security_group\""),
        "{around}"
    );
    // The main table, which no subnet of a notebook falls back to, is not in question.
    let main = result_of(&report, "XS-NET-003", "rtb-0c0ffee0000000a02");
    assert_eq!(main["status"], "skipped", "{main}");
}
