//! Renderers: each takes a finished [`Report`](crate::findings::Report) and only renders it —
//! no evaluation happens here. One file per format; `rules` and `evaluation` print the rule
//! commands' and `policy eval`'s results the same way.

pub mod asff;
pub mod evaluation;
pub mod html;
pub mod json;
pub mod junit;
pub mod ocsf;
pub mod paths;
pub mod rules;
pub mod sarif;
pub mod svg;
pub mod table;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A terminal table of failures and errors, with a summary.
    Table,
    /// The frozen `xscan.report/v1` JSON document.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning (failures and not-evaluated results).
    Sarif,
    /// A self-contained HTML evidence report for auditors.
    Html,
    /// OCSF 1.5.0 Compliance Findings (class 2003), a JSON array, for SIEMs.
    Ocsf,
    /// AWS Security Finding Format: the `Findings` of a Security Hub BatchImportFindings call.
    Asff,
    /// JUnit XML for CI test reports.
    Junit,
    /// The perimeter diagram of the consumer notebooks' paths, one SVG for the estate.
    Svg,
}
