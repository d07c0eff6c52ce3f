//! `xscan paths`: the perimeter paths, hop by hop, as text or JSON. Values from AWS are made
//! visible ([`crate::text::visible`]).

use crate::paths::{Answer, HopDecision, PathResult};
use crate::text::visible as v;

/// Renders the paths; `json` for a JSON array.
pub fn render(results: &[PathResult], json: bool) -> String {
    if json {
        let mut text = serde_json::to_string_pretty(results).unwrap_or_default();
        text.push('\n');
        return text;
    }
    let mut out = String::new();
    for r in results {
        let verdict = match (r.kind, r.answer) {
            ("intended", Answer::Allowed) => "REACHES the dataset",
            ("intended", Answer::Refused) => "BROKEN: cannot read the dataset",
            ("egress", Answer::Allowed) => "OPEN: a path leaves the perimeter",
            ("egress", Answer::Refused) => "closed",
            ("layers", Answer::Allowed) => "held by two layers or more",
            ("layers", Answer::Refused) => "held by one layer or none (defence in depth lost)",
            (_, Answer::NotEvaluated) => "NOT EVALUATED",
            _ => "",
        };
        out.push_str(&format!(
            "{} ({} {}) — {}: {verdict}\n",
            v(&r.notebook),
            v(&r.account),
            v(&r.region),
            v(&r.question)
        ));
        let mut decided = false;
        for h in &r.hops {
            let mark = match h.decision {
                HopDecision::Passes => "passes ",
                HopDecision::Refuses => "REFUSES",
                HopDecision::NotEvaluated => "UNKNOWN",
            };
            // After the hop that decided, the rest is context.
            let context = if decided && r.kind != "layers" {
                " (after the deciding hop)"
            } else {
                ""
            };
            out.push_str(&format!(
                "    {mark} {:<16} {}: {}{context}\n",
                h.layer,
                v(&h.resource),
                v(&h.detail)
            ));
            decided |= h.decision != HopDecision::Passes;
        }
    }
    if results.is_empty() {
        out.push_str("no notebook in the consumer accounts\n");
    }
    out
}
