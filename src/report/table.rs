//! `--format table`: a summary, then one row per failing or unevaluated result, then the
//! collection gaps. Colour only when the caller says the output is a terminal.

use tabled::settings::object::Columns;
use tabled::settings::{Modify, Style, Width};
use tabled::{Table, Tabled};

use crate::findings::{Report, Status};
use crate::text::visible as v;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "STATUS")]
    status: String,
    #[tabled(rename = "SEVERITY")]
    severity: String,
    #[tabled(rename = "RULE")]
    rule: String,
    #[tabled(rename = "RESOURCE")]
    resource: String,
    #[tabled(rename = "WHY")]
    message: String,
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn status_cell(status: Status, color: bool) -> String {
    let code = match status {
        Status::Fail => "1;31",
        Status::Error => "1;33",
        Status::Pass => "32",
        Status::Waived => "36",
        Status::Skipped => "2",
    };
    paint(&status.as_str().to_uppercase(), code, color)
}

/// Shortens long messages for the terminal; JSON and HTML carry them whole.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Renders the report for a terminal.
pub fn render(report: &Report, color: bool) -> String {
    let s = &report.summary;
    let mut out = String::new();
    out.push_str(&format!(
        "xscan {} — scope {} — {} account(s), {} region(s), {} rule(s), {} result(s)\n",
        v(&report.tool.version),
        v(&report.scan.scope),
        report.scan.accounts.len(),
        report.scan.regions.len(),
        report.rules.len(),
        s.total
    ));
    // Where each account sits in the organization, when it was read.
    let placed: Vec<String> = report
        .scan
        .accounts
        .iter()
        .filter_map(|a| a.ou_path.as_ref().map(|p| format!("{} {}", v(&a.id), v(p))))
        .collect();
    if !placed.is_empty() {
        out.push_str(&format!("organization: {}\n", placed.join(", ")));
    }
    out.push_str(&format!(
        "{} {}  {} {}  {} {}  {} {}  {} {}\n",
        paint("pass", "32", color),
        s.count(Status::Pass),
        paint("fail", "1;31", color),
        s.count(Status::Fail),
        paint("error", "1;33", color),
        s.count(Status::Error),
        paint("skipped", "2", color),
        s.count(Status::Skipped),
        paint("waived", "36", color),
        s.count(Status::Waived),
    ));
    if let Some(drift) = &report.drift {
        let count = |state| drift.counts.get(&state).copied().unwrap_or(0);
        use crate::findings::BaselineState as B;
        out.push_str(&format!(
            "since baseline {} ({}): {} new, {} changed, {} unchanged, {} resolved\n",
            v(&drift.baseline_report_id),
            drift
                .baseline_finished_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            count(B::New),
            count(B::Changed),
            count(B::Unchanged),
            count(B::Resolved)
        ));
        if !drift.config_changes.is_empty() {
            use crate::findings::report::ChangeKind as C;
            let changed = |kind| {
                drift
                    .config_changes
                    .iter()
                    .filter(|c| c.change == kind)
                    .count()
            };
            out.push_str(&format!(
                "configuration since baseline: {} added, {} removed, {} modified resource(s) (`xscan diff` shows them)\n",
                changed(C::Added),
                changed(C::Removed),
                changed(C::Modified)
            ));
        }
    }
    if let Some(waivers) = &report.waivers {
        use crate::findings::report::WaiverState as W;
        let count = |state| waivers.waivers.iter().filter(|w| w.state == state).count();
        out.push_str(&format!(
            "waivers ({}, as of {}): {} active, {} expired, {} stale\n",
            v(&waivers.path),
            waivers.as_of,
            count(W::Active),
            count(W::Expired),
            count(W::Stale)
        ));
        for w in waivers.waivers.iter().filter(|w| w.state != W::Active) {
            out.push_str(&format!(
                "  {} waiver {} ({}:{}, {} on {}): {}\n",
                paint(w.state.as_str(), "1;33", color),
                v(&w.ticket),
                v(&waivers.path),
                w.line,
                v(&w.rule),
                v(&w.resource),
                match w.state {
                    W::Expired => format!(
                        "expired {}, no longer applies to {} failing result(s)",
                        w.expires,
                        w.matched.len()
                    ),
                    _ => "matches no failing result; remove it".to_string(),
                }
            ));
        }
    }
    let rows: Vec<Row> = report
        .results
        .iter()
        .filter(|f| matches!(f.status, Status::Fail | Status::Error))
        .map(|f| Row {
            status: match f.baseline_state {
                Some(state) => format!("{}\n{}", status_cell(f.status, color), state.as_str()),
                None => status_cell(f.status, color),
            },
            severity: f.severity().to_string(),
            rule: v(f.rule_id()).into_owned(),
            resource: format!(
                "{}\n{} {}",
                v(&f.resource.arn),
                f.resource.resource_type,
                v(f.resource.region.as_deref().unwrap_or("global"))
            ),
            message: shorten(&v(&f.message), 300),
        })
        .collect();
    if rows.is_empty() {
        out.push_str("\nNo failing or unevaluated results.\n");
    } else {
        let mut table = Table::new(rows);
        table
            .with(Style::sharp())
            .with(Modify::new(Columns::one(3)).with(Width::wrap(60)))
            .with(Modify::new(Columns::one(4)).with(Width::wrap(72)));
        out.push('\n');
        out.push_str(&table.to_string());
        out.push('\n');
    }
    if !report.scan.collection_gaps.is_empty() {
        out.push_str(&format!(
            "\n{} — these parts of the scope were not evaluated:\n",
            paint("Scan incomplete", "1;33", color)
        ));
        for gap in &report.scan.collection_gaps {
            out.push_str(&format!(
                "  - account {} {} {}:{}: {}\n",
                v(&gap.account),
                v(gap.region.as_deref().unwrap_or("global")),
                v(&gap.service),
                v(&gap.api_call),
                v(&gap.error)
            ));
        }
    }
    out
}
