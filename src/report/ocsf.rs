//! `--format ocsf`: one OCSF Compliance Finding (class 2003, OCSF 1.5.0) per result, as a JSON
//! array, for SIEMs and data lakes that ingest OCSF (Amazon Security Lake among them). The
//! cloud profile carries the account and region. Validated in the tests against
//! `schemas/ocsf-1.5.0-compliance-finding.schema.json`.

use serde_json::{Value, json};

use crate::findings::{Report, Severity, Status};

/// The OCSF release the events follow.
pub const OCSF_VERSION: &str = "1.5.0";

fn severity_id(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// The compliance status: Pass 1, Fail 3; not evaluated is Warning 2 ("did not yield a result
/// due to missing information"); skipped (not applicable) and waived are Other 99.
fn compliance_status(status: Status) -> (u8, &'static str) {
    match status {
        Status::Pass => (1, "Pass"),
        Status::Fail => (3, "Fail"),
        Status::Error => (2, "Warning"),
        Status::Skipped => (99, "Not applicable"),
        Status::Waived => (99, "Waived"),
    }
}

/// Renders every result.
pub fn render(report: &Report) -> String {
    let time = report.scan.finished_at.timestamp_millis();
    let events: Vec<Value> = report
        .results
        .iter()
        .map(|f| {
            let rule = report.rules.iter().find(|r| *r.id == *f.rule_id());
            let (status_id, status) = compliance_status(f.status);
            let standards: Vec<String> = rule.map(|r| r.frameworks.clone()).unwrap_or_default();
            let evidence: serde_json::Map<String, Value> = f
                .evidence
                .iter()
                .map(|e| (e.path.to_string(), e.value.to_json().into_owned()))
                .collect();
            let region = f.resource.region.clone().unwrap_or_else(|| "global".into());
            // Derived (a sha256), and named twice below.
            let fingerprint = f.fingerprint();
            json!({
                "activity_id": 1,
                "activity_name": "Create",
                "category_uid": 2,
                "category_name": "Findings",
                "class_uid": 2003,
                "class_name": "Compliance Finding",
                "type_uid": 200301,
                "type_name": "Compliance Finding: Create",
                "time": time,
                "severity_id": severity_id(f.severity()),
                "severity": f.severity().as_str(),
                // The finding's workflow state: a waived failure is suppressed.
                "status_id": if f.status == Status::Waived { 3 } else { 1 },
                "status": if f.status == Status::Waived { "Suppressed" } else { "New" },
                "message": f.message,
                "metadata": {
                    "version": OCSF_VERSION,
                    "profiles": ["cloud"],
                    "product": {
                        "name": report.tool.name,
                        "vendor_name": "xscan",
                        "version": report.tool.version,
                        "url_string": report.tool.information_uri,
                    },
                    "uid": fingerprint,
                    "correlation_uid": report.report_id,
                },
                "finding_info": {
                    "uid": fingerprint,
                    "title": f.title(),
                    "desc": rule.map(|r| r.description.clone()).unwrap_or_default(),
                    "types": [f.resource.resource_type.as_str()],
                    "created_time": time,
                },
                "compliance": {
                    "control": f.rule_id(),
                    "standards": standards,
                    "status_id": status_id,
                    "status": status,
                    "desc": f.message,
                },
                "remediation": {
                    "desc": rule.map(|r| r.remediation.clone()).unwrap_or_default(),
                    "references": rule.map(|r| r.references.clone()).unwrap_or_default(),
                },
                "resources": [{
                    "uid": f.resource.arn,
                    "name": f.resource.id,
                    "type": f.resource.resource_type.as_str(),
                    "region": region,
                    "cloud_partition": "aws",
                }],
                "cloud": {
                    "provider": "AWS",
                    "region": region,
                    "account": account(report, &f.resource.account),
                },
                "evidences": [{"name": "observed values", "data": evidence}],
                "unmapped": {"xscan_status": f.status.as_str()},
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&events).unwrap_or_default();
    text.push('\n');
    text
}

/// The OCSF account object: its OU path, when the organization was read, as a label.
fn account(report: &Report, id: &str) -> Value {
    let mut account = json!({"uid": id, "type_id": 10, "type": "AWS Account"});
    if let Some(ou_path) = report.ou_path(id) {
        account["labels"] = json!([format!("ou_path:{ou_path}")]);
    }
    account
}
