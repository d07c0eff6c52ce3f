//! xscan: a compliance drift scanner for cross-account AWS data access.
//!
//! The pipeline: a [`model::Snapshot`] (collected live or loaded from a file) is evaluated by
//! [`rules`] against the YAML rule pack, using the IAM semantics of [`policy`]; the
//! [`findings`] are rendered by [`report`]. Everything after collection runs offline.

pub mod attest;
pub mod cli;
pub mod collect;
pub mod config;
pub mod drift;

/// Files compiled into the binary by build.rs: the rule pack and the report templates.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub mod findings;
pub mod input;
pub mod model;
pub mod paths;
pub mod policy;
pub mod report;
pub mod rules;
pub mod scan;
pub mod text;
