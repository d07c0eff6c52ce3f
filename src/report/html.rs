//! `--format html`: the self-contained evidence report for auditors, rendered with handlebars
//! from `reports/` (compiled in; `--template-dir` overrides for corporate branding).
//!
//! No external requests (a Content-Security-Policy forbids them; references are shown as text),
//! every value from AWS escaped (no triple-brace output anywhere), passes as well as failures,
//! and the canonical JSON result embedded with its sha256 so anyone can check it. The same
//! report and options render the same bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde::Serialize;

use crate::findings::report::{
    ChangeKind, Drift, MethodInfo, RuleInfo, ScanInfo, ToolInfo, WaiverOutcome, WaiverReport,
};
use crate::findings::{
    BaselineState, Finding, Report, ResourceRef, Severity, Status, Summary, sha256_hex,
};

/// Errors rendering the report.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error(
        "cannot read template {path}: {source}\nhelp: --template-dir must contain report.html.hbs (and may contain style.css.hbs); copy them from reports/"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "template error: {0}\nhelp: check the templates in --template-dir against reports/report.html.hbs"
    )]
    Template(String),
    #[error(transparent)]
    Results(#[from] crate::findings::ResultsError),
}

/// What the report shows besides the scan report itself.
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Shown as "report generated"; by default the scan's finish time, so that the same input
    /// renders the same bytes (set SOURCE_DATE_EPOCH for another fixed time).
    pub generated_at: DateTime<Utc>,
    pub host: String,
    /// The command line (xscan takes no secrets as arguments).
    pub command_line: String,
    pub template_dir: Option<PathBuf>,
    /// The signing key's id when the run is signed (`--sign`): the report shows it and how to
    /// verify the envelope written beside the report.
    pub signing_key_id: Option<String>,
    /// The envelope's file name, for the verify command shown.
    pub envelope_name: Option<String>,
}

const STATUSES: [Status; 5] = [
    Status::Fail,
    Status::Error,
    Status::Pass,
    Status::Skipped,
    Status::Waived,
];

#[derive(Serialize)]
struct GapView {
    account: String,
    region: String,
    service: String,
    api_call: String,
    resource: String,
    error: String,
}

#[derive(Serialize)]
struct SeverityRow {
    severity: Severity,
    counts: Vec<usize>,
}

#[derive(Serialize)]
struct ResultView {
    status: Status,
    resource: Arc<ResourceRef>,
    message: Arc<str>,
    evidence_text: String,
    /// For waived results: ticket, approver, expiry and justification.
    waiver_text: Option<String>,
    /// Anchor of the configuration change of this resource since the baseline, if any.
    change_anchor: Option<String>,
}

#[derive(Serialize)]
struct RuleView<'a> {
    info: &'a RuleInfo,
    anchor: String,
    counts: Vec<usize>,
    attention: Vec<ResultView>,
    passing: Vec<ResultView>,
    passing_count: usize,
}

#[derive(Serialize)]
struct DriftCount {
    state: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct DriftChange {
    state: &'static str,
    status: String,
    rule_id: String,
    arn: String,
    message: String,
    change_anchor: Option<String>,
}

#[derive(Serialize)]
struct CountView {
    #[serde(rename = "type")]
    resource_type: String,
    count: usize,
}

/// The report as the template sees it: everything but the results, which it reads per rule
/// (`rules[].attention` and `rules[].passing`). Handlebars reads its data as one JSON value,
/// and the results a second time as JSON were most of a large report's memory.
#[derive(Serialize)]
struct ReportHead<'a> {
    schema_version: &'a str,
    report_id: &'a str,
    tool: &'a ToolInfo,
    scan: &'a ScanInfo,
    method: &'a MethodInfo,
    rules: &'a [RuleInfo],
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'a Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waivers: Option<&'a WaiverReport>,
}

impl<'a> ReportHead<'a> {
    fn of(report: &'a Report) -> Self {
        let Report {
            schema_version,
            report_id,
            tool,
            scan,
            method,
            rules,
            summary,
            drift,
            waivers,
            // The one field left out (a field added to `Report` fails to compile here).
            results: _,
        } = report;
        Self {
            schema_version,
            report_id,
            tool,
            scan,
            method,
            rules,
            summary,
            drift: drift.as_ref(),
            waivers: waivers.as_ref(),
        }
    }
}

#[derive(Serialize)]
struct View<'a> {
    report: ReportHead<'a>,
    generated_at: String,
    host: &'a str,
    command_line: &'a str,
    has_diagrams: bool,
    signing_key_id: Option<&'a str>,
    envelope_name: Option<&'a str>,
    verdict_class: &'static str,
    verdict_text: String,
    gaps: Vec<GapView>,
    statuses: Vec<&'static str>,
    severity_rows: Vec<SeverityRow>,
    total_counts: Vec<usize>,
    rules: Vec<RuleView<'a>>,
    resource_counts: Vec<CountView>,
    rule_files_count: usize,
    drift_counts: Vec<DriftCount>,
    /// New and changed failing results, then resolved ones.
    drift_changes: Vec<DriftChange>,
    config_changes: Vec<ConfigChangeView>,
    waivers: Vec<WaiverView<'a>>,
    json_sha256: String,
}

/// The JSON embedded in the report: canonical compact JSON with `<`, `>` and `&` written as
/// `\u` escapes, so it cannot end the script element; still valid JSON of the same report.
pub fn embedded_json(report: &Report) -> String {
    // Escaped as it is written: a large report's JSON is hundreds of megabytes, and a copy
    // per replaced character was most of the page's memory.
    let mut out = ScriptSafe(Vec::new());
    // The same text `json::canonical` makes (compact, no error for a report), escaped.
    if serde_json::to_writer(&mut out, report).is_err() {
        return String::new();
    }
    // Cannot fail: JSON is UTF-8, and only ASCII bytes were replaced by ASCII.
    String::from_utf8(out.0).unwrap_or_default()
}

/// Writes JSON with `<`, `>` and `&` as `\u` escapes. They are ASCII, so they are never part
/// of a longer UTF-8 sequence, and in JSON they only occur inside strings, where an escape
/// reads back as the same character.
struct ScriptSafe(Vec<u8>);

impl std::io::Write for ScriptSafe {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &b in bytes {
            match b {
                b'<' => self.0.extend_from_slice(b"\\u003c"),
                b'>' => self.0.extend_from_slice(b"\\u003e"),
                b'&' => self.0.extend_from_slice(b"\\u0026"),
                b => self.0.push(b),
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn needs_attention(status: Status) -> bool {
    matches!(status, Status::Fail | Status::Error | Status::Waived)
}

fn evidence_text(finding: &Finding) -> String {
    finding
        .evidence
        .iter()
        .map(|e| format!("{}: {}", e.path, e.value))
        .collect::<Vec<_>>()
        .join("\n")
}

fn result_view(finding: &Finding, report: &Report) -> ResultView {
    ResultView {
        status: finding.status,
        resource: finding.resource.clone(),
        message: finding.message.clone(),
        evidence_text: evidence_text(finding),
        waiver_text: finding.waiver.as_ref().map(|w| {
            format!(
                "Waived by {} (approver {}, expires {}): {}",
                w.ticket, w.approver, w.expires, w.justification
            )
        }),
        change_anchor: change_anchor(report, &finding.resource),
    }
}

/// The anchor of the configuration change of `resource` since the baseline, if there is one.
fn change_anchor(report: &Report, resource: &ResourceRef) -> Option<String> {
    report
        .drift
        .as_ref()?
        .config_changes
        .iter()
        .find(|c| c.is_about(resource))
        .map(|c| c.anchor())
}

#[derive(Serialize)]
struct WaiverView<'a> {
    outcome: &'a WaiverOutcome,
    state: &'static str,
    matched: usize,
}

#[derive(Serialize)]
struct FieldChangeView {
    field: String,
    old: String,
    new: String,
    policy_diff: Option<String>,
}

#[derive(Serialize)]
struct ConfigChangeView {
    anchor: String,
    change: &'static str,
    resource_type: &'static str,
    label: String,
    fields: Vec<FieldChangeView>,
}

fn config_change_views(report: &Report) -> Vec<ConfigChangeView> {
    let Some(drift) = &report.drift else {
        return Vec::new();
    };
    let text = |v: &Option<serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "(none)".to_string(),
        Some(v) => v.to_string(),
    };
    drift
        .config_changes
        .iter()
        .map(|c| ConfigChangeView {
            anchor: c.anchor(),
            change: match c.change {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Modified => "modified",
            },
            resource_type: c.resource_type.as_str(),
            label: c.label(),
            fields: c
                .fields
                .iter()
                .map(|f| FieldChangeView {
                    field: f.field.clone(),
                    old: text(&f.old),
                    new: text(&f.new),
                    policy_diff: f.policy_diff.clone(),
                })
                .collect(),
        })
        .collect()
}

fn template(dir: Option<&Path>, name: &str, embedded: &'static str) -> Result<String, HtmlError> {
    if let Some(dir) = dir {
        let path = dir.join(name);
        if path.exists() || name == "report.html.hbs" {
            return std::fs::read_to_string(&path).map_err(|source| HtmlError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    }
    Ok(embedded.to_string())
}

fn embedded_file(name: &str) -> &'static str {
    crate::embedded::REPORT_FILES
        .iter()
        .find(|(path, _)| path.ends_with(name))
        .map_or("", |(_, text)| text)
}

/// A helper writing `text` as it is: only for text made safe for its place beforehand (the
/// JSON island, the SVG diagrams whose names are escaped by `svg`).
fn raw_helper(text: String) -> Box<dyn handlebars::HelperDef + Send + Sync> {
    Box::new(
        move |_: &Helper,
              _: &Handlebars,
              _: &Context,
              _: &mut RenderContext,
              out: &mut dyn Output|
              -> HelperResult {
            out.write(&text)
                .map_err(|e| RenderErrorReason::Other(e.to_string()).into())
        },
    )
}

/// Renders the evidence report.
pub fn render(report: &Report, options: &HtmlOptions) -> Result<String, HtmlError> {
    let dir = options.template_dir.as_deref();
    let mut registry = Handlebars::new();
    registry.set_strict_mode(false);
    // HTML forbids control characters and a reader cannot see bidi overrides: AWS values show
    // them as visible escapes (line feeds and tabs of pretty-printed evidence stay).
    registry.register_escape_fn(|text| handlebars::html_escape(&crate::text::visible_lines(text)));
    let page = template(dir, "report.html.hbs", embedded_file("report.html.hbs"))?;
    let style = template(dir, "style.css.hbs", embedded_file("style.css.hbs"))?;
    registry
        .register_template_string("report", page)
        .map_err(|e| HtmlError::Template(e.to_string()))?;
    registry
        .register_partial("style", style)
        .map_err(|e| HtmlError::Template(e.to_string()))?;
    let script = embedded_json(report);
    let json_sha256 = sha256_hex(script.as_bytes());
    // The perimeter diagrams: SVG built from the report by `svg`, its text already escaped.
    let diagrams: String = super::svg::render_sections(report)
        .into_iter()
        .map(|(title, svg)| {
            format!(
                "<figure class=\"perimeter\"><figcaption>{}</figcaption>\n{svg}</figure>\n",
                handlebars::html_escape(&crate::text::visible(&title))
            )
        })
        .collect();
    let has_diagrams = !diagrams.is_empty();
    registry.register_helper("perimeter_diagrams", raw_helper(diagrams));
    // Unescaped output: JSON already made safe for a script element above.
    registry.register_helper("json_text", raw_helper(script));

    // Every count and view in one pass over the results (a spilled report's are read back
    // once, and each is dropped once its view is made).
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
    let status_at = |status: Status| STATUSES.iter().position(|s| *s == status);
    let mut severity_counts = vec![vec![0usize; STATUSES.len()]; severities.len()];
    let mut total_counts = vec![0usize; STATUSES.len()];
    let mut rules: Vec<RuleView<'_>> = report
        .rules
        .iter()
        .map(|info| RuleView {
            info,
            anchor: format!("rule-{}", info.id),
            counts: vec![0usize; STATUSES.len()],
            attention: Vec::new(),
            passing: Vec::new(),
            passing_count: 0,
        })
        .collect();
    let mut drift_changes = Vec::new();
    for f in report.results.iter() {
        let at = status_at(f.status);
        let severity = severities.iter().position(|s| *s == f.severity());
        for counts in [
            Some(&mut total_counts),
            severity.map(|s| &mut severity_counts[s]),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(i) = at {
                counts[i] += 1;
            }
        }
        if let Some(rule) = rules.iter_mut().find(|r| r.info.id == f.rule_id()) {
            if let Some(i) = at {
                rule.counts[i] += 1;
            }
            // Waived failures stay in sight, with their waiver.
            if needs_attention(f.status) {
                rule.attention.push(result_view(&f, report));
            } else {
                rule.passing.push(result_view(&f, report));
                rule.passing_count += 1;
            }
        }
        if let Some(state @ (BaselineState::New | BaselineState::Changed)) = f.baseline_state
            && report.drift.is_some()
            && matches!(f.status, Status::Fail | Status::Error)
        {
            drift_changes.push(DriftChange {
                state: state.as_str(),
                status: f.status.as_str().into(),
                rule_id: f.rule_id().to_string(),
                arn: f.resource.arn.clone(),
                message: f.message.to_string(),
                change_anchor: change_anchor(report, &f.resource),
            });
        }
    }
    report.results.check()?;
    let severity_rows = severities
        .iter()
        .zip(severity_counts)
        .map(|(s, counts)| SeverityRow {
            severity: *s,
            counts,
        })
        .filter(|row| row.counts.iter().any(|n| *n > 0))
        .collect();
    let summary = &report.summary;
    let (verdict_class, verdict_text) = if summary.incomplete {
        (
            "error",
            format!(
                "Incomplete: {} result(s) could not be evaluated; {} failing",
                summary.count(Status::Error),
                summary.count(Status::Fail)
            ),
        )
    } else if summary.count(Status::Fail) > 0 {
        (
            "fail",
            format!("{} failing result(s)", summary.count(Status::Fail)),
        )
    } else {
        (
            "pass",
            "No failing result; every rule was evaluated".to_string(),
        )
    };
    let view = View {
        report: ReportHead::of(report),
        generated_at: options
            .generated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        host: &options.host,
        command_line: &options.command_line,
        has_diagrams,
        signing_key_id: options.signing_key_id.as_deref(),
        envelope_name: options.envelope_name.as_deref(),
        verdict_class,
        verdict_text,
        gaps: report
            .scan
            .collection_gaps
            .iter()
            .map(|g| GapView {
                account: g.account.clone(),
                region: g.region.clone().unwrap_or_else(|| "global".into()),
                service: g.service.clone(),
                api_call: g.api_call.clone(),
                resource: g.resource_id.clone().unwrap_or_else(|| {
                    if g.resource_types.is_empty() {
                        "—".into()
                    } else {
                        format!(
                            "all {}",
                            g.resource_types
                                .iter()
                                .map(|t| t.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                }),
                error: g.error.clone(),
            })
            .collect(),
        statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
        severity_rows,
        total_counts,
        rules,
        resource_counts: report
            .scan
            .resource_counts
            .iter()
            .map(|(t, n)| CountView {
                resource_type: t.clone(),
                count: *n,
            })
            .collect(),
        rule_files_count: report.method.rule_files.len(),
        drift_counts: report.drift.as_ref().map_or_else(Vec::new, |d| {
            [
                BaselineState::New,
                BaselineState::Changed,
                BaselineState::Unchanged,
                BaselineState::Resolved,
            ]
            .iter()
            .map(|s| DriftCount {
                state: s.as_str(),
                count: d.counts.get(s).copied().unwrap_or(0),
            })
            .collect()
        }),
        drift_changes: report.drift.as_ref().map_or_else(Vec::new, |d| {
            let mut changes = std::mem::take(&mut drift_changes);
            changes.extend(d.resolved.iter().map(|r| DriftChange {
                state: BaselineState::Resolved.as_str(),
                status: r.current_status.map_or("gone", Status::as_str).into(),
                rule_id: r.rule_id.clone(),
                arn: r.resource.arn.clone(),
                message: format!("was {}", r.previous_status),
                change_anchor: change_anchor(report, &r.resource),
            }));
            changes
        }),
        config_changes: config_change_views(report),
        waivers: report.waivers.as_ref().map_or_else(Vec::new, |w| {
            w.waivers
                .iter()
                .map(|outcome| WaiverView {
                    outcome,
                    state: outcome.state.as_str(),
                    matched: outcome.matched.len(),
                })
                .collect()
        }),
        json_sha256,
    };
    registry
        .render("report", &view)
        .map_err(|e| HtmlError::Template(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escaping as the JSON is written gives what escaping the written text gives, whatever
    /// the characters around (multi-byte ones included), and reads back as the same JSON.
    #[test]
    fn script_safe_json_is_the_canonical_json_escaped() {
        let value = serde_json::json!({
            "a<b": "</script><!-- & é 日本 \u{202e} \"q\" >",
            "list": ["&amp;", "<", ">", "plain"],
        });
        let canonical = serde_json::to_string(&value).unwrap();
        let mut out = ScriptSafe(Vec::new());
        serde_json::to_writer(&mut out, &value).unwrap();
        let escaped = String::from_utf8(out.0).unwrap();
        assert_eq!(
            escaped,
            canonical
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026")
        );
        assert!(!escaped.contains(['<', '>', '&']));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&escaped).unwrap(),
            value
        );
    }
}
