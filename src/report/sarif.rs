//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning, with small hand-written types.
//!
//! - One result per failing (rule, resource); passes, skips and waivers are not alerts.
//! - Results that could not be evaluated are `error` results of the separate rule
//!   [`NOT_EVALUATED_RULE`], and every collection gap is a tool execution notification, so an
//!   incomplete scan is visible (GitHub closes alerts that disappear from an upload).
//! - Cloud resources have no file: each gets a stable repo-relative pseudo-path
//!   `aws/<account>/<region>/<service>/<type>/<id>` with `startLine` 1, the ARN in the message and
//!   in `logicalLocations`, and `partialFingerprints.primaryLocationLineHash` = the finding's
//!   sha256 fingerprint (rule id + resource identity), so alerts never merge and survive re-runs.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::findings::report::RuleInfo;
use crate::findings::{Finding, Report, Severity, Status, sha256_hex};

/// The rule under which not-evaluated results are reported.
pub const NOT_EVALUATED_RULE: &str = "XS-SCAN-INCOMPLETE";
/// GitHub code scanning keeps at most this many results per run.
pub const MAX_RESULTS: usize = 25_000;
const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    automation_details: AutomationDetails,
    invocations: Vec<Invocation>,
    results: Vec<SarifResult>,
    properties: RunProperties,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: String,
    semantic_version: String,
    information_uri: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: Vec<String>,
    precision: &'static str,
    #[serde(rename = "security-severity")]
    security_severity: String,
}

#[derive(Serialize)]
struct AutomationDetails {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    partial_fingerprints: Fingerprints,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_state: Option<&'static str>,
    properties: ResultProperties,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    logical_locations: Vec<LogicalLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation {
    name: String,
    fully_qualified_name: String,
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fingerprints {
    primary_location_line_hash: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties {
    resource_type: String,
    account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// The account's place in the organization, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    ou_path: Option<String>,
    severity: Severity,
    status: Status,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunProperties {
    report_id: String,
    scope: String,
    incomplete: bool,
    summary: std::collections::BTreeMap<Status, usize>,
}

/// What GitHub reads as `security-severity`.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Info => "0.0",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// `Notebook direct internet access disabled` -> `NotebookDirectInternetAccessDisabled`.
fn pascal_case(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |f| {
                f.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Characters kept as they are in a pseudo-path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The stable repo-relative pseudo-path of a resource.
pub fn pseudo_path(finding: &Finding) -> String {
    let r = &finding.resource;
    let segments = [
        r.account.as_str(),
        r.region.as_deref().unwrap_or("global"),
        r.resource_type.service(),
        r.resource_type.as_str(),
        if r.id == "*" { "all" } else { r.id.as_str() },
    ];
    let encoded: Vec<String> = segments
        .iter()
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    format!("aws/{}", encoded.join("/"))
}

fn rule(info: &RuleInfo) -> Rule {
    let mut tags = vec![
        "security".to_string(),
        "aws".to_string(),
        info.resource_type.clone(),
    ];
    tags.extend(info.frameworks.iter().cloned());
    let references: String = info
        .references
        .iter()
        .map(|r| format!("- <{r}>\n"))
        .collect();
    Rule {
        id: info.id.clone(),
        name: pascal_case(&info.title),
        short_description: Text {
            text: info.title.clone(),
        },
        full_description: Text {
            text: info.description.clone(),
        },
        help: Help {
            text: format!(
                "{}\n\nWhy: {}\n\nRemediation: {}",
                info.description, info.rationale, info.remediation
            ),
            markdown: format!(
                "**{}** ({})\n\n{}\n\n### Why it matters\n{}\n\n### Remediation\n{}\n\n### References\n{}",
                info.title,
                info.severity,
                info.description,
                info.rationale,
                info.remediation,
                references
            ),
        },
        help_uri: info.references.first().cloned(),
        default_configuration: Configuration {
            level: level(info.severity),
        },
        properties: RuleProperties {
            tags,
            precision: "very-high",
            security_severity: security_severity(info.severity).to_string(),
        },
    }
}

fn location(finding: &Finding) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: pseudo_path(finding),
            },
            region: Region { start_line: 1 },
        },
        logical_locations: vec![LogicalLocation {
            name: finding.resource.id.clone(),
            fully_qualified_name: finding.resource.arn.clone(),
            kind: "resource",
        }],
    }
}

fn properties(finding: &Finding, report: &Report) -> ResultProperties {
    ResultProperties {
        resource_type: finding.resource.resource_type.as_str().to_string(),
        account: finding.resource.account.clone(),
        region: finding.resource.region.clone(),
        ou_path: report
            .ou_path(&finding.resource.account)
            .map(str::to_string),
        severity: finding.severity(),
        status: finding.status,
    }
}

/// Renders the report as a SARIF log (pretty JSON).
pub fn render(report: &Report) -> String {
    let mut rules: Vec<Rule> = report.rules.iter().map(rule).collect();
    let incomplete_index = rules.len();
    rules.push(Rule {
        id: NOT_EVALUATED_RULE.into(),
        name: "ScanIncomplete".into(),
        short_description: Text {
            text: "A rule could not be evaluated on a resource".into(),
        },
        full_description: Text {
            text: "The data a rule needs was not collected (access denied, throttling, an unreachable account) or a policy could not be parsed. The resource was not checked: this is not a pass.".into(),
        },
        help: Help {
            text: "Grant the scanner the permissions `xscan permissions` prints, make the account reachable, then scan again.".into(),
            markdown: "Grant the scanner the permissions `xscan permissions` prints, make the account reachable, then scan again. **Do not treat an incomplete scan as complete**: alerts of resources that were not evaluated would be closed.".into(),
        },
        help_uri: None,
        default_configuration: Configuration { level: "error" },
        properties: RuleProperties {
            tags: vec!["xscan".into(), "scan-incomplete".into()],
            precision: "very-high",
            security_severity: "0.0".into(),
        },
    });
    let rule_index = |id: &str| {
        report
            .rules
            .iter()
            .position(|r| r.id == id)
            .unwrap_or(incomplete_index)
    };
    let mut results: Vec<SarifResult> = Vec::new();
    for finding in &report.results {
        match finding.status {
            Status::Fail => results.push(SarifResult {
                rule_id: finding.rule_id().to_string(),
                rule_index: rule_index(finding.rule_id()),
                level: level(finding.severity()),
                message: Text {
                    text: format!(
                        "{}: {} ({})",
                        finding.title(),
                        finding.message,
                        finding.resource.arn
                    ),
                },
                locations: vec![location(&finding)],
                partial_fingerprints: Fingerprints {
                    primary_location_line_hash: finding.fingerprint().to_string(),
                },
                baseline_state: finding.baseline_state.map(|s| s.sarif()),
                properties: properties(&finding, report),
            }),
            Status::Error => results.push(SarifResult {
                rule_id: NOT_EVALUATED_RULE.into(),
                rule_index: incomplete_index,
                level: "error",
                message: Text {
                    text: format!(
                        "{} was not evaluated on {}: {}",
                        finding.rule_id(),
                        finding.resource.arn,
                        finding.message
                    ),
                },
                locations: vec![location(&finding)],
                partial_fingerprints: Fingerprints {
                    primary_location_line_hash: sha256_hex(
                        format!("{NOT_EVALUATED_RULE}\0{}", finding.fingerprint()).as_bytes(),
                    ),
                },
                baseline_state: finding.baseline_state.map(|s| s.sarif()),
                properties: properties(&finding, report),
            }),
            Status::Pass | Status::Skipped | Status::Waived => {}
        }
    }
    let mut notifications: Vec<Notification> = report
        .scan
        .collection_gaps
        .iter()
        .map(|gap| Notification {
            level: "error",
            message: Text {
                text: format!(
                    "not collected: account {} {} {}:{}{}: {}",
                    gap.account,
                    gap.region.as_deref().unwrap_or("global"),
                    gap.service,
                    gap.api_call,
                    gap.resource_id
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    gap.error
                ),
            },
        })
        .collect();
    if results.len() > MAX_RESULTS {
        notifications.push(Notification {
            level: "warning",
            message: Text {
                text: format!(
                    "{} results exceed GitHub's limit of {MAX_RESULTS} per run; the first {MAX_RESULTS} (by rule and resource) are included — see the JSON report for all",
                    results.len()
                ),
            },
        });
        results.truncate(MAX_RESULTS);
    }
    let log = Log {
        schema: SCHEMA_URI,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "xscan",
                    version: report.tool.version.clone(),
                    semantic_version: report.tool.version.clone(),
                    information_uri: report.tool.information_uri.clone(),
                    rules,
                },
            },
            automation_details: AutomationDetails {
                id: format!("xscan/{}/", report.scan.scope),
            },
            invocations: vec![Invocation {
                execution_successful: !report.summary.incomplete,
                tool_execution_notifications: notifications,
            }],
            results,
            properties: RunProperties {
                report_id: report.report_id.clone(),
                scope: report.scan.scope.clone(),
                incomplete: report.summary.incomplete,
                summary: report.summary.by_status.clone(),
            },
        }],
    };
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}
