//! The one integration-test binary: the rule pack, rule loading errors, the CLI end to end, and
//! the JSON report schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attest;
#[path = "../awssim/mod.rs"]
mod awssim;
mod cli;
mod common;
mod deadline;
mod drift;
mod emulator;
mod faults;
mod formats;
mod fuzz;
mod golden;
mod hardening;
mod history;
mod html;
mod loading;
mod loopback;
mod paths;
mod rule_pack;
mod sarif;
mod simulated;
mod spill;
mod verdicts;
mod waivers;
