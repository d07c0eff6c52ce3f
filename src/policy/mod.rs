//! IAM policy semantics: parsing and normalization of policy documents, request evaluation as
//! AWS documents it, and the analyses the rule pack calls (public grants, endpoint perimeter,
//! access point delegation, allowed actions, trust).

pub mod analysis;
pub mod condition;
pub mod document;
pub mod eval;
pub mod principal;
pub mod wildcard;

pub use condition::{RequestContext, Truth};
pub use document::{Effect, Policy, PolicyKind, PolicyVersion, PrincipalEntry, Statement};
pub use eval::{Decision, Evaluation, PolicySet, Request, StatementRef, evaluate};
pub use principal::RequestPrincipal;

/// An invalid policy document or evaluation input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    message: String,
}

impl PolicyError {
    /// A problem in document `document`, optionally in one statement.
    pub fn new(document: &str, statement: Option<usize>, problem: impl Into<String>) -> Self {
        let location = match statement {
            Some(index) => format!("policy `{document}`, statement {index}"),
            None => format!("policy `{document}`"),
        };
        Self {
            message: format!(
                "{location}: {}\nhelp: IAM policy grammar is described in the IAM User Guide, \"IAM JSON policy element reference\"",
                problem.into()
            ),
        }
    }

    /// A problem with evaluation input (the message carries its own help line).
    pub fn input(message: String) -> Self {
        Self { message }
    }
}
