//! `--format json`: the `xscan.report/v1` document (schema: `schemas/report-v1.schema.json`).

use crate::findings::Report;

/// Pretty JSON with stable key order; the same report renders the same bytes.
pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// Canonical compact JSON: what integrity hashes are computed over.
pub fn canonical(report: &Report) -> String {
    serde_json::to_string(report).unwrap_or_default()
}
