//! The HTML evidence report: self-contained, escaped, complete, and verifiable.

use scraper::{Html, Selector};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{CONFIG, ESTATE, example_report, root, stderr, temp_dir, xscan};

fn render(snapshot: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "scan",
        "--snapshot",
        snapshot,
        "--config",
        CONFIG,
        "--format",
        "html",
    ];
    args.extend_from_slice(extra);
    let out = xscan(&args);
    assert!(matches!(out.status.code(), Some(0..=3)), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn report_is_self_contained_complete_and_verifiable() {
    let html = render(ESTATE, &[]);
    let document = Html::parse_document(&html);
    // No external requests: no src at all, links only to anchors in the page.
    for element in document.select(&Selector::parse("[src], [href]").unwrap()) {
        assert!(
            element.value().attr("src").is_none(),
            "src found: {:?}",
            element.value()
        );
        let href = element.value().attr("href").unwrap();
        assert!(href.starts_with('#'), "external href {href}");
    }
    let csp = document
        .select(&Selector::parse("meta[http-equiv='Content-Security-Policy']").unwrap())
        .next()
        .expect("CSP meta");
    assert!(
        csp.value()
            .attr("content")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    // The embedded JSON matches the hash shown, and is the full report.
    let script = document
        .select(&Selector::parse("script#xscan-report").unwrap())
        .next()
        .unwrap();
    let text: String = script.text().collect();
    let shown: String = document
        .select(&Selector::parse("#xscan-report-sha256").unwrap())
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(hex::encode(Sha256::digest(text.as_bytes())), shown);
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["schema_version"], "xscan.report/v1");
    // Every rule and every resource appears, passes included.
    for rule in report["rules"].as_array().unwrap() {
        assert!(html.contains(&format!("id=\"rule-{}\"", rule["id"].as_str().unwrap())));
    }
    for result in report["results"].as_array().unwrap() {
        assert!(html.contains(result["resource"]["arn"].as_str().unwrap()));
    }
    assert!(html.contains("Not evaluated — the scan is incomplete"));
    assert!(html.contains("arn:aws:sts::111111111111:assumed-role/xscan-audit/xscan"));
    assert!(
        html.contains(
            report["method"]["rule_files"][0]["sha256"]
                .as_str()
                .unwrap()
        )
    );
}

#[test]
fn same_input_renders_the_same_bytes() {
    assert_eq!(render(ESTATE, &[]), render(ESTATE, &[]));
}

#[test]
fn values_from_aws_are_escaped() {
    let mut snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(ESTATE)).unwrap()).unwrap();
    let notebooks =
        &mut snapshot["accounts"]["111111111111"]["regions"]["us-east-1"]["sagemaker_notebooks"];
    let mut evil = notebooks["ml-notebook-2"].clone();
    evil["name"] = "<script>alert(1)</script>".into();
    evil["arn"] =
        "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/<img src=x onerror=alert(1)>"
            .into();
    evil["direct_internet_access"] = "</script><script>alert(2)</script>".into();
    notebooks["evil"] = evil;
    let dir = temp_dir("html-escape");
    let path = dir.join("evil.json");
    std::fs::write(&path, snapshot.to_string()).unwrap();
    let html = render(path.to_str().unwrap(), &[]);
    assert!(!html.contains("<script>alert"), "unescaped script");
    assert!(!html.contains("<img"), "unescaped img");
    assert!(
        html.contains("&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;") || html.contains("&lt;img"),
        "escaped text is shown"
    );
    // Exactly one script element: the JSON island, which stays intact.
    let document = Html::parse_document(&html);
    let scripts: Vec<_> = document
        .select(&Selector::parse("script").unwrap())
        .collect();
    assert_eq!(scripts.len(), 1);
    let text: String = scripts[0].text().collect();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert!(report["results"].as_array().unwrap().iter().any(|r| {
        r["resource"]["arn"]
            .as_str()
            .unwrap()
            .ends_with("<img src=x onerror=alert(1)>")
    }));
}

#[test]
fn template_dir_overrides_the_built_in_templates() {
    let dir = temp_dir("templates");
    let page = std::fs::read_to_string(root().join("reports/report.html.hbs"))
        .unwrap()
        .replace("compliance evidence", "ACME Bank evidence");
    std::fs::write(dir.join("report.html.hbs"), page).unwrap();
    let html = render(ESTATE, &["--template-dir", dir.to_str().unwrap()]);
    assert!(html.contains("ACME Bank evidence"));
    let out = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "html",
        "--template-dir",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("help:"));
}

/// 10,000 results render into one file whose size grows linearly (about 1.5 KB per result with
/// its evidence, half of it the embedded JSON), with passing resources collapsed under their rule.
#[test]
fn ten_thousand_results_render() {
    let mut report = example_report();
    let templates: Vec<_> = report.results.to_vec().unwrap();
    report.results = (0..10_000)
        .map(|i| {
            let template = &templates[i % templates.len()];
            let mut resource = xscan::findings::ResourceRef::clone(&template.resource);
            resource.arn = format!("{}-{i}", resource.arn);
            xscan::findings::Finding::of_rule(
                template.rule.clone(),
                template.status,
                resource,
                template.message.clone(),
                template.evidence.to_vec(),
            )
        })
        .collect();
    report.summary = xscan::findings::Summary::of(&report.results);
    let options = xscan::report::html::HtmlOptions {
        signing_key_id: None,
        envelope_name: None,
        generated_at: report.scan.finished_at,
        host: "test".into(),
        command_line: "xscan".into(),
        template_dir: None,
    };
    let html = xscan::report::html::render(&report, &options).unwrap();
    let per_result = html.len() / 10_000;
    eprintln!(
        "10,000 results: {} bytes ({per_result} bytes per result)",
        html.len()
    );
    assert!(per_result < 4_000, "{per_result} bytes per result");
    assert!(html.contains(&format!(
        "{}-9999",
        templates[9999 % templates.len()].resource.arn
    )));
}
