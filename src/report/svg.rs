//! The perimeter diagram: per consumer VPC, notebook → security group → route table →
//! gateway endpoint → (account boundary) → access point → bucket, each hop coloured by the
//! worst result about it (fail, not evaluated, waived, pass), linking to its rule's findings in
//! the HTML report; paths that leave the perimeter drawn in red to where they lead. Notebooks
//! that share every hop and every answer are one box. Built from the report alone (the path
//! rules' evidence and the results): no evaluation here, no script, no external reference, the
//! same bytes for the same report; legible in print (text labels, not colour alone).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::findings::{Report, Status};

/// XML text: markup escaped, characters a reader cannot see shown as escapes.
fn x(text: &str) -> String {
    crate::text::visible(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Shortens a label to fit its box.
fn short(text: &str, max: usize) -> String {
    let name = text.rsplit(['/', ':']).next().unwrap_or(text);
    if name.chars().count() <= max {
        name.to_string()
    } else {
        format!("{}…", name.chars().take(max - 1).collect::<String>())
    }
}

/// Severity order of statuses for a hop's colour: the worst wins.
fn rank(status: Status) -> u8 {
    match status {
        Status::Fail => 4,
        Status::Error => 3,
        Status::Waived => 2,
        Status::Pass => 1,
        Status::Skipped => 0,
    }
}

fn style(status: Option<Status>) -> (&'static str, &'static str, &'static str) {
    // (fill, stroke, label)
    match status {
        Some(Status::Fail) => ("#fde2e1", "#b42318", "FAIL"),
        Some(Status::Error) => ("#fef0c7", "#b54708", "NOT EVALUATED"),
        Some(Status::Waived) => ("#e0eaff", "#3538cd", "WAIVED"),
        Some(Status::Pass) => ("#dcfae6", "#067647", "PASS"),
        _ => ("#f2f4f7", "#475467", "—"),
    }
}

/// One hop's box content.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Box_ {
    layer: String,
    resource: String,
}

/// A notebook's chain and egress answers.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    chain: Vec<Box_>,
    /// Open egress paths: (label, rule id).
    open: Vec<(String, String)>,
}

const LAYERS: [(&str, &str); 6] = [
    ("notebook", "Notebook"),
    ("security_group", "Security group"),
    ("route_table", "Route table"),
    ("vpc_endpoint", "Gateway endpoint"),
    ("access_point", "Access point"),
    ("bucket", "Bucket"),
];

/// The worst status of the results about each resource (by id and by ARN), and its rule's
/// anchor: built once, so that a diagram of thousands of boxes reads each result once.
type Worst = std::collections::HashMap<String, (Status, String)>;

fn worst_index(report: &Report) -> Worst {
    let mut index: Worst = std::collections::HashMap::new();
    for f in &report.results {
        for key in [&f.resource.id, &f.resource.arn] {
            let entry = index
                .entry(key.clone())
                .or_insert((f.status, f.rule_id().to_string()));
            if rank(f.status) > rank(entry.0) {
                *entry = (f.status, f.rule_id().to_string());
            }
        }
    }
    index
}

/// The worst status of any result about `resource` (an id or an ARN), and its rule's anchor.
fn worst(index: &Worst, resource: &str) -> (Option<Status>, Option<String>) {
    match index.get(resource) {
        Some((status, rule)) => (Some(*status), Some(format!("rule-{rule}"))),
        None => (None, None),
    }
}

/// The diagrams, one `<svg>` per consumer VPC (empty when the report has no path results).
pub fn render_sections(report: &Report) -> Vec<(String, String)> {
    // (account, region, vpc/subnet key) -> rows -> notebooks
    let mut groups: BTreeMap<(String, String, String), BTreeMap<Row, Vec<String>>> =
        BTreeMap::new();
    // The notebooks' open egress paths, read once.
    let failing: std::collections::HashSet<(String, String, String)> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| {
            (
                r.rule_id().to_string(),
                r.resource.account.clone(),
                r.resource.id.clone(),
            )
        })
        .collect();
    for f in report
        .results
        .iter()
        .filter(|f| f.rule_id() == "XS-PATH-001")
    {
        let Some(hops) = f
            .evidence
            .iter()
            .find(|e| &*e.path == "paths intended")
            .and_then(|e| e.value.to_json()["chain"].as_array().cloned())
        else {
            continue;
        };
        let mut chain = Vec::new();
        for (layer, _) in LAYERS.iter().skip(1) {
            if let Some(h) = hops.iter().find(|h| h["layer"] == *layer) {
                chain.push(Box_ {
                    layer: layer.to_string(),
                    resource: h["resource"].as_str().unwrap_or("").to_string(),
                });
            }
        }
        let subnet = hops
            .iter()
            .find(|h| h["layer"] == "notebook")
            .and_then(|h| h["detail"].as_str())
            .unwrap_or("")
            .trim_start_matches("in subnet ")
            .to_string();
        let mut open = Vec::new();
        for (rule, label) in [
            ("XS-SM-001", "Internet (direct access)"),
            ("XS-PATH-002", "Internet (around the endpoint)"),
            ("XS-PATH-003", "Other accounts' S3"),
        ] {
            let key = (
                rule.to_string(),
                f.resource.account.clone(),
                f.resource.id.clone(),
            );
            if failing.contains(&key) {
                open.push((label.to_string(), rule.to_string()));
            }
        }
        groups
            .entry((
                f.resource.account.clone(),
                f.resource.region.clone().unwrap_or_default(),
                subnet,
            ))
            .or_default()
            .entry(Row { chain, open })
            .or_default()
            .push(f.resource.id.clone());
    }
    let index = worst_index(report);
    let mut out = Vec::new();
    for ((account, region, subnet), rows) in groups {
        let title = format!("Account {account}, {region}, subnet {subnet}");
        out.push((title.clone(), section(&index, &title, &rows)));
    }
    out
}

const COL: i32 = 156;
const BOX_W: i32 = 142;
const BOX_H: i32 = 54;
const ROW_H: i32 = 96;

/// Rows drawn per subnet: beyond, the diagram says how many notebooks it leaves to
/// `xscan paths` (a diagram of thousands of distinct chains is read by nobody).
const MAX_ROWS: usize = 100;

fn section(index: &Worst, title: &str, rows: &BTreeMap<Row, Vec<String>>) -> String {
    let width = COL * 6 + BOX_W + 20 + 40;
    let hidden: usize = rows.values().skip(MAX_ROWS).map(Vec::len).sum();
    let drawn = rows.len().min(MAX_ROWS);
    let height = 70 + ROW_H * drawn as i32 + if hidden > 0 { 30 } else { 0 };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"perimeter\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
        x(title)
    );
    for (i, (_, name)) in LAYERS.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"18\" font-weight=\"bold\">{name}</text>",
            20 + COL * i as i32
        );
    }
    // The account boundary between the endpoint and the access point.
    let boundary = 20 + COL * 4 - 10;
    let _ = writeln!(
        s,
        "<line x1=\"{boundary}\" y1=\"26\" x2=\"{boundary}\" y2=\"{}\" stroke=\"#101828\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{}\" font-style=\"italic\">account boundary</text>",
        height - 10,
        boundary + 4,
        height - 14
    );
    if hidden > 0 {
        let _ = writeln!(
            s,
            "<text x=\"20\" y=\"{}\" font-style=\"italic\">… and {hidden} more notebook(s) with other chains: `xscan paths` lists every one</text>",
            36 + ROW_H * drawn as i32 + 10
        );
    }
    for (r, (row, notebooks)) in rows.iter().take(MAX_ROWS).enumerate() {
        let y = 36 + ROW_H * r as i32;
        let label = if notebooks.len() == 1 {
            notebooks[0].clone()
        } else {
            format!("{} notebooks", notebooks.len())
        };
        let notebook_status = notebooks
            .iter()
            .map(|n| worst(index, n))
            .max_by_key(|(s, _)| s.map_or(0, rank))
            .unwrap_or((None, None));
        let mut boxes = vec![(label, notebooks.join(", "), notebook_status)];
        for b in &row.chain {
            boxes.push((
                short(&b.resource, 22),
                b.resource.clone(),
                worst(index, &b.resource),
            ));
        }
        for (i, (label, full, (status, anchor))) in boxes.iter().enumerate() {
            let bx = 20 + COL * i as i32;
            let (fill, stroke, word) = style(*status);
            let open = anchor
                .as_ref()
                .map(|a| format!("<a href=\"#{}\">", x(a)))
                .unwrap_or_default();
            let close = if anchor.is_some() { "</a>" } else { "" };
            let _ = writeln!(
                s,
                "{open}<g><title>{}</title><rect x=\"{bx}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" font-weight=\"bold\" fill=\"{stroke}\">{word}</text></g>{close}",
                x(full),
                bx + 8,
                y + 22,
                x(label),
                bx + 8,
                y + 42
            );
            if i > 0 {
                let _ = writeln!(
                    s,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{bx}\" y2=\"{}\" stroke=\"#475467\" stroke-width=\"1.5\"/>",
                    bx - (COL - BOX_W),
                    y + BOX_H / 2,
                    y + BOX_H / 2
                );
            }
        }
        // Open egress: red, from the notebook, under the row, to where it leads.
        for (k, (label, rule)) in row.open.iter().enumerate() {
            let tx = 20 + COL * 6;
            let ty = y + k as i32 * 28;
            let lane = y + BOX_H + 8 + k as i32 * 6;
            let nx = 20 + BOX_W / 2;
            let _ = writeln!(
                s,
                "<a href=\"#rule-{}\"><polyline points=\"{nx},{} {nx},{lane} {},{lane} {},{} {tx},{}\" fill=\"none\" stroke=\"#d92d20\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/><rect x=\"{tx}\" y=\"{ty}\" width=\"{}\" height=\"24\" rx=\"4\" fill=\"#fee4e2\" stroke=\"#d92d20\"/><text x=\"{}\" y=\"{}\" fill=\"#b42318\">OPEN: {}</text></a>",
                x(rule),
                y + BOX_H,
                tx - 12,
                tx - 12,
                ty + 12,
                ty + 12,
                BOX_W + 20,
                tx + 6,
                ty + 16,
                x(label)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// `--format svg`: one SVG for the estate (every VPC's diagram stacked).
pub fn render(report: &Report) -> String {
    let sections = render_sections(report);
    if sections.is_empty() {
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 40\" width=\"400\" height=\"40\"><text x=\"10\" y=\"25\" font-family=\"sans-serif\">No notebook path in this report (perimeter paths need the configuration).</text></svg>\n".into();
    }
    let mut y = 0;
    let mut body = String::new();
    let mut width = 0;
    for (title, svg) in &sections {
        let h = svg
            .split("height=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(100);
        let w = svg
            .split("width=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(100);
        width = width.max(w);
        let _ = writeln!(
            body,
            "<g transform=\"translate(0 {})\"><text x=\"20\" y=\"16\" font-family=\"sans-serif\" font-size=\"13\" font-weight=\"bold\">{}</text><g transform=\"translate(0 24)\">{}</g></g>",
            y,
            x(title),
            svg
        );
        y += h + 40;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {y}\" width=\"{width}\" height=\"{y}\">\n{body}</svg>\n"
    )
}
