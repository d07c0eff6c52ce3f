//! Perimeter paths (`xscan paths`): the scenarios of the perimeter-paths issue, each a patch of
//! the compliant fixture, answered hop by hop.

use serde_json::{Value, json};

use xscan::paths::{Answer, HopDecision, PathResult};

use crate::common::{COMPLIANT, CONFIG, root};

const REGION: &str = "/accounts/111111111111/regions/us-east-1";
const EP: &str = "/accounts/111111111111/regions/us-east-1/vpc_endpoints/vpce-0c0ffee0000000a01";
const AP: &str = "/accounts/222222222222/regions/us-east-1/s3_access_points/test-ap-1";

fn paths(change: impl FnOnce(&mut Value)) -> Vec<PathResult> {
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(COMPLIANT)).unwrap()).unwrap();
    change(&mut value);
    let snapshot: xscan::model::Snapshot = serde_json::from_value(value).unwrap();
    let config = xscan::config::Config::from_yaml(
        "xscan.yaml",
        &std::fs::read_to_string(root().join(CONFIG)).unwrap(),
    )
    .unwrap();
    xscan::paths::analyze(&snapshot, &config, None)
}

fn find<'a>(results: &'a [PathResult], question: &str) -> &'a PathResult {
    results
        .iter()
        .find(|r| r.question.starts_with(question))
        .unwrap_or_else(|| panic!("no path {question}: {results:#?}"))
}

/// The first hop that does not pass, as (layer, decision).
fn decided_by(r: &PathResult) -> Option<(&'static str, HopDecision)> {
    r.hops
        .iter()
        .find(|h| h.decision != HopDecision::Passes)
        .map(|h| (h.layer, h.decision))
}

fn policy(document: Value) -> Value {
    json!({"document": document})
}

#[test]
fn the_compliant_pattern_reaches_the_dataset_and_nothing_leaves() {
    let results = paths(|_| {});
    for question in ["s3:GetObject through", "s3:ListBucket through"] {
        assert_eq!(
            find(&results, question).answer,
            Answer::Allowed,
            "{question}"
        );
    }
    for question in [
        "direct internet",
        "out of the VPC",
        "s3:PutObject to a bucket",
    ] {
        assert_eq!(
            find(&results, question).answer,
            Answer::Refused,
            "{question}"
        );
    }
}

// AWS PrivateLink guide, "Principals for gateway endpoints": an account as principal grants its
// root user only, so the notebook's role is refused at the endpoint: the pattern is broken.
#[test]
fn an_account_principal_on_a_gateway_endpoint_breaks_the_pattern() {
    let results = paths(|s| {
        *s.pointer_mut(&format!("{EP}/policy")).unwrap() = policy(json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "s3:*", "Resource": "*"}]}));
    });
    let read = find(&results, "s3:GetObject through");
    assert_eq!(read.answer, Answer::Refused);
    assert_eq!(
        decided_by(read),
        Some(("vpc_endpoint", HopDecision::Refuses))
    );
}

#[test]
fn access_point_network_origin_vpc_versus_internet() {
    let other_vpc = paths(|s| {
        *s.pointer_mut(&format!("{AP}/network_origin")).unwrap() = json!("VPC");
        *s.pointer_mut(&format!("{AP}/vpc_id")).unwrap() = json!("vpc-0ther");
    });
    let read = find(&other_vpc, "s3:GetObject through");
    assert_eq!(
        decided_by(read),
        Some(("access_point", HopDecision::Refuses))
    );
    let own_vpc = paths(|s| {
        *s.pointer_mut(&format!("{AP}/network_origin")).unwrap() = json!("VPC");
        *s.pointer_mut(&format!("{AP}/vpc_id")).unwrap() = json!("vpc-0c0ffee0000000a01");
    });
    assert_eq!(
        find(&own_vpc, "s3:GetObject through").answer,
        Answer::Allowed
    );
    let internet = paths(|s| {
        *s.pointer_mut(&format!("{AP}/network_origin")).unwrap() = json!("Internet");
    });
    assert_eq!(
        find(&internet, "s3:GetObject through").answer,
        Answer::Allowed
    );
}

#[test]
fn a_bucket_policy_pinned_to_the_notebooks_endpoint() {
    let pinned = |vpce: &str| {
        let vpce = vpce.to_string();
        paths(move |s| {
            let bucket = s
                .pointer_mut("/accounts/222222222222/s3_buckets/test-bucket-1/policy")
                .unwrap();
            let mut document = bucket["document"].clone();
            document["Statement"].as_array_mut().unwrap().push(json!({
                "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"],
                "Condition": {"StringNotEquals": {"aws:SourceVpce": vpce}}}));
            *bucket = policy(document);
        })
    };
    assert_eq!(
        find(&pinned("vpce-0c0ffee0000000a01"), "s3:GetObject through").answer,
        Answer::Allowed
    );
    let other = pinned("vpce-0ther");
    let read = find(&other, "s3:GetObject through");
    assert_eq!(decided_by(read), Some(("bucket", HopDecision::Refuses)));
}

#[test]
fn a_role_that_reads_the_bucket_directly_but_not_through_the_access_point() {
    let results = paths(|s| {
        let role = s
            .pointer_mut("/accounts/111111111111/iam_roles/xscan-sagemaker-exec/inline_policies")
            .unwrap();
        *role = json!({"direct": policy(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::test-bucket-1", "arn:aws:s3:::test-bucket-1/*"]}]}))});
    });
    let read = find(&results, "s3:GetObject through");
    assert_eq!(
        decided_by(read),
        Some(("identity_policy", HopDecision::Refuses))
    );
}

#[test]
fn a_nat_route_with_open_egress_is_a_path_out_and_egress_alone_is_not() {
    let open_egress = |s: &mut Value| {
        *s.pointer_mut(&format!(
            "{REGION}/security_groups/sg-0c0ffee0000000a01/egress"
        ))
        .unwrap() = json!([{"protocol": "tcp", "from_port": 443, "to_port": 443,
                "target_type": "cidr_ipv4", "target": "0.0.0.0/0"}]);
    };
    // SG egress to 0.0.0.0/0 on 443 only: no route out, the route table holds.
    let results = paths(open_egress);
    let out = find(&results, "out of the VPC");
    assert_eq!(out.answer, Answer::Refused);
    assert_eq!(decided_by(out), Some(("route_table", HopDecision::Refuses)));
    // A second route table, with a NAT route, now associated with the notebook's subnet.
    let results = paths(|s| {
        open_egress(s);
        let tables = s.pointer_mut(&format!("{REGION}/route_tables")).unwrap();
        tables["rtb-0c0ffee0000000a01"]["subnet_ids"] = json!([]);
        tables["rtb-0c0ffee0000000a03"] = json!({"id": "rtb-0c0ffee0000000a03",
            "vpc_id": "vpc-0c0ffee0000000a01", "main": false,
            "subnet_ids": ["subnet-0c0ffee0000000a01"],
            "routes": [{"destination_cidr": "0.0.0.0/0", "target": "nat-0c0ffee", "target_type": "nat_gateway", "state": "active"}]});
    });
    assert_eq!(
        find(&results, "out of the VPC").answer,
        Answer::Allowed,
        "open"
    );
    // And the dataset is no longer reached through the endpoint (it is not on that table).
    let read = find(&results, "s3:GetObject through");
    assert_eq!(
        decided_by(read),
        Some(("route_table", HopDecision::Refuses))
    );
}

#[test]
fn an_endpoint_policy_fenced_by_a_deny_stops_writes_to_other_accounts() {
    let wide_role = |s: &mut Value| {
        *s.pointer_mut("/accounts/111111111111/iam_roles/xscan-sagemaker-exec/inline_policies")
            .unwrap() = json!({"wide": policy(json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))});
    };
    let fenced = paths(|s| {
        wide_role(s);
        *s.pointer_mut(&format!("{EP}/policy")).unwrap() =
            policy(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:ResourceAccount": "222222222222"}}}]}));
    });
    let write = find(&fenced, "s3:PutObject to a bucket");
    assert_eq!(write.answer, Answer::Refused);
    assert_eq!(
        decided_by(write),
        Some(("vpc_endpoint", HopDecision::Refuses))
    );
    assert_eq!(
        find(&fenced, "s3:GetObject through").answer,
        Answer::Allowed
    );
    // Without the fence the role writes anywhere through the endpoint — unless the
    // organization's SCP resource perimeter (aws:ResourceOrgID, on the consumers' OU of the
    // fixture) refuses buckets of other organizations.
    let open_endpoint = |s: &mut Value| {
        wide_role(s);
        *s.pointer_mut(&format!("{EP}/policy")).unwrap() = policy(json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}));
    };
    let held_by_scp = paths(open_endpoint);
    let write = find(&held_by_scp, "s3:PutObject to a bucket");
    assert_eq!(write.answer, Answer::Refused);
    assert_eq!(decided_by(write), Some(("scp", HopDecision::Refuses)));
    let open = paths(|s| {
        open_endpoint(s);
        s.pointer_mut("/organization/policies/p-guardrails/policy/document/Statement")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .remove(2);
    });
    assert_eq!(
        find(&open, "s3:PutObject to a bucket").answer,
        Answer::Allowed
    );
}

#[test]
fn what_was_not_collected_is_not_evaluated() {
    let results = paths(|s| {
        let ap = s.pointer_mut(AP).unwrap();
        ap["policy"] = Value::Null;
        ap["collection_errors"] = json!({"policy": "AccessDenied"});
    });
    assert_eq!(
        find(&results, "s3:GetObject through").answer,
        Answer::NotEvaluated
    );
}

/// The diagram: deterministic, escaped, grouped, and in the HTML report.
#[test]
fn the_perimeter_diagram_groups_escapes_and_is_in_the_report() {
    let dir = crate::common::temp_dir("perimeter-svg");
    let snapshot = crate::common::patched_snapshot(&dir, "fifty.json", |s| {
        let notebooks = s
            .pointer_mut(&format!("{REGION}/sagemaker_notebooks"))
            .unwrap();
        let template = notebooks["ml-notebook-1"].clone();
        for i in 0..50 {
            let mut nb = template.clone();
            let name = format!("nb-{i}");
            nb["name"] = json!(name);
            nb["arn"] = json!(format!(
                "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/{name}"
            ));
            notebooks[&name] = nb;
        }
        let mut evil = template.clone();
        evil["name"] = json!("<script>alert(1)</script>");
        evil["direct_internet_access"] = json!("Enabled");
        notebooks["<script>alert(1)</script>"] = evil;
    });
    let render = |format: &str| {
        let out = crate::common::xscan(&[
            "scan",
            "--snapshot",
            &snapshot,
            "--config",
            CONFIG,
            "--format",
            format,
        ]);
        crate::common::stdout(&out)
    };
    let svg = render("svg");
    assert_eq!(svg, render("svg"), "the same bytes every time");
    assert!(
        svg.contains("51 notebooks"),
        "the compliant notebooks share one box"
    );
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "names escaped"
    );
    assert!(!svg.contains("<script"), "no script");
    assert!(svg.contains("OPEN: Internet (direct access)"));
    assert!(
        !svg.contains("http://")
            || svg.matches("http://").count() == svg.matches("http://www.w3.org/2000/svg").count()
    );
    let html = render("html");
    assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"perimeter\""));
    assert!(
        html.contains("href=\"#rule-XS-SM-001\""),
        "boxes link to their findings"
    );
}

#[test]
fn a_deleted_access_point_breaks_the_pattern_and_an_unlisted_one_is_unknown() {
    let deleted = paths(|s| {
        s.pointer_mut("/accounts/222222222222/regions/us-east-1/s3_access_points")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("test-ap-1");
    });
    assert_eq!(
        find(&deleted, "s3:GetObject through").answer,
        Answer::Refused
    );
    let unlisted = paths(|s| {
        *s.pointer_mut("/accounts/222222222222/regions/us-east-1/s3_access_points")
            .unwrap() = json!({});
        s["metadata"]["collection_gaps"] = json!([{"account": "222222222222", "region": "us-east-1",
            "service": "s3control", "api_call": "ListAccessPoints", "resource_types": ["s3_access_point"],
            "error": "AccessDenied"}]);
    });
    assert_eq!(
        find(&unlisted, "s3:GetObject through").answer,
        Answer::NotEvaluated
    );
}

/// The path rules find each notebook's paths alone, while `xscan paths` finds them all at
/// once: on the example estate (an organization, a drifted notebook) and on the compliant
/// fixture with a notebook in the data account too, both give the same paths, and none for a
/// notebook outside the consumer accounts or the snapshot.
#[test]
fn one_notebook_alone_has_the_paths_the_whole_analysis_gives_it() {
    let read = |path: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
    };
    let mut with_data_notebook = read(COMPLIANT);
    let notebook = with_data_notebook
        .pointer(&format!("{REGION}/sagemaker_notebooks/ml-notebook-1"))
        .unwrap()
        .clone();
    with_data_notebook["accounts"]["222222222222"]["regions"]["us-east-1"]["sagemaker_notebooks"] =
        json!({"ml-notebook-1": notebook});
    for (snapshot, config) in [
        (read("examples/estate.snapshot.json"), "examples/xscan.yaml"),
        (with_data_notebook, CONFIG),
    ] {
        let snapshot: xscan::model::Snapshot = serde_json::from_value(snapshot).unwrap();
        let config = xscan::config::Config::load(&root().join(config)).expect("config");
        let all = xscan::paths::analyze(&snapshot, &config, None);
        assert!(!all.is_empty());
        let perimeter = xscan::paths::Perimeter::new(&snapshot, &config);
        let mut seen = 0;
        for (account, a) in &snapshot.accounts {
            for (region, r) in &a.regions {
                for name in r.sagemaker_notebooks.keys() {
                    let alone = perimeter.paths_of(account, region, name);
                    let from_all: Vec<&PathResult> = all
                        .iter()
                        .filter(|p| {
                            &*p.account == account && &*p.region == region && &*p.notebook == name
                        })
                        .collect();
                    assert_eq!(
                        serde_json::to_value(&alone).unwrap(),
                        serde_json::to_value(&from_all).unwrap(),
                        "{account} {region} {name}"
                    );
                    seen += alone.len();
                }
            }
        }
        assert_eq!(seen, all.len(), "every path is some notebook's");
        assert!(
            perimeter
                .paths_of("111111111111", "us-east-1", "no-such-notebook")
                .is_empty()
        );
        // The data account's notebook (in the second case) is outside the perimeter's paths.
        assert!(
            all.iter().all(|p| &*p.account == "111111111111"),
            "{all:#?}"
        );
    }
}
