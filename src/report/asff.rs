//! `--format asff`: AWS Security Finding Format for Security Hub's `BatchImportFindings`, one
//! finding per failing, waived or not-evaluated result (passes are imported as PASSED too, so
//! that Security Hub archives what was fixed). xscan stays read-only: it writes the findings;
//! a separate step imports them (README: `aws securityhub batch-import-findings`, 100 at a
//! time). Validated in the tests against botocore's model of `BatchImportFindings`.

use serde_json::{Value, json};

use crate::findings::{Report, Severity, Status};

/// Security Hub refuses a finding over 240 KB: evidence is cut to stay well below.
const MAX_FINDING_BYTES: usize = 200 * 1024;

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

fn resource_type(t: &str) -> &'static str {
    match t {
        "sagemaker_notebook" => "AwsSageMakerNotebookInstance",
        "security_group" => "AwsEc2SecurityGroup",
        "subnet" => "AwsEc2Subnet",
        "vpc" => "AwsEc2Vpc",
        "route_table" => "AwsEc2RouteTable",
        "vpc_endpoint" => "Other",
        "iam_role" => "AwsIamRole",
        "s3_bucket" => "AwsS3Bucket",
        "s3_access_point" => "AwsS3AccessPoint",
        "s3_account_settings" => "AwsS3AccountPublicAccessBlock",
        _ => "Other",
    }
}

/// Renders the findings as the `Findings` list of a BatchImportFindings request.
pub fn render(report: &Report) -> String {
    let time = report
        .scan
        .finished_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let findings: Vec<Value> = report
        .results
        .iter()
        .filter(|f| f.status != Status::Skipped)
        .map(|f| {
            let rule = report.rules.iter().find(|r| *r.id == *f.rule_id());
            let region = f
                .resource
                .region
                .clone()
                .unwrap_or_else(|| report.scan.regions.first().cloned().unwrap_or_else(|| "us-east-1".into()));
            let (compliance, workflow, record) = match f.status {
                Status::Pass => ("PASSED", "RESOLVED", "ARCHIVED"),
                Status::Fail => ("FAILED", "NEW", "ACTIVE"),
                Status::Error => ("NOT_AVAILABLE", "NEW", "ACTIVE"),
                Status::Waived => ("FAILED", "SUPPRESSED", "ACTIVE"),
                Status::Skipped => ("NOT_AVAILABLE", "NEW", "ARCHIVED"),
            };
            let mut evidence: serde_json::Map<String, Value> = serde_json::Map::new();
            for e in f.evidence.iter() {
                let text = e.value.to_string();
                // ProductFields values are strings of at most 5,000 characters.
                let cut: String = text.chars().take(4_000).collect();
                evidence.insert(format!("xscan/evidence/{}", evidence.len()), json!(format!("{}: {cut}", e.path)));
            }
            if let Some(ou_path) = report.ou_path(&f.resource.account) {
                evidence.insert("xscan/ou_path".into(), json!(ou_path));
            }
            let mut finding = json!({
                "SchemaVersion": "2018-10-08",
                "Id": f.fingerprint(),
                "ProductArn": format!("arn:aws:securityhub:{region}:{}:product/{}/default", f.resource.account, f.resource.account),
                "GeneratorId": f.rule_id(),
                "AwsAccountId": f.resource.account,
                "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
                "CreatedAt": time,
                "UpdatedAt": time,
                "Severity": {"Label": label(f.severity())},
                "Title": f.title().chars().take(256).collect::<String>(),
                "Description": f.message.chars().take(1024).collect::<String>(),
                "Remediation": {"Recommendation": {"Text": rule.map(|r| r.remediation.chars().take(512).collect::<String>()).unwrap_or_default()}},
                "ProductFields": evidence,
                "Resources": [{
                    "Type": resource_type(f.resource.resource_type.as_str()),
                    "Id": f.resource.arn,
                    "Partition": "aws",
                    "Region": region,
                }],
                "Compliance": {
                    "Status": compliance,
                    "RelatedRequirements": rule.map(|r| r.frameworks.iter().take(32).cloned().collect::<Vec<_>>()).unwrap_or_default(),
                },
                "Workflow": {"Status": workflow},
                "RecordState": record,
            });
            if let Some(uri) = rule.and_then(|r| r.references.first()) {
                finding["Remediation"]["Recommendation"]["Url"] = json!(uri);
            }
            // Stay under Security Hub's size limit: drop the evidence first.
            if finding.to_string().len() > MAX_FINDING_BYTES {
                finding["ProductFields"] = json!({"xscan/evidence": "cut: the evidence is in the JSON report"});
            }
            finding
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&findings).unwrap_or_default();
    text.push('\n');
    text
}
