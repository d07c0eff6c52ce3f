//! `xscan policy eval` for the terminal: the decision, its reason, the statements that
//! decided it and the evaluator's warnings, with control characters made visible.

use crate::policy::Evaluation;

/// The evaluation as text.
pub fn text(evaluation: &Evaluation) -> String {
    use crate::text::visible as v;
    let mut out = format!(
        "Decision: {}\nReason:   {}\n",
        evaluation.decision,
        v(&evaluation.reason)
    );
    if !evaluation.statements.is_empty() {
        out.push_str("Statements:\n");
        for s in &evaluation.statements {
            let sid = s
                .sid
                .as_ref()
                .map(|x| format!(" (Sid \"{}\")", v(x)))
                .unwrap_or_default();
            out.push_str(&format!(
                "  - {} statement {}{sid}: {:?} {}\n",
                v(&s.policy),
                s.index,
                s.effect,
                v(&s.outcome)
            ));
        }
    }
    for w in &evaluation.warnings {
        out.push_str(&format!("warning: {}\n", v(w)));
    }
    out
}
