//! Golden outputs of the example estate: the table, JSON, SARIF, HTML, OCSF, ASFF and JUnit
//! renderings are compared with `tests/it/snapshots/`, so every change to an output is reviewed
//! as a diff (`INSTA_UPDATE=always cargo test --test it golden` rewrites them; review with git).

use std::process::Command;

use crate::common::{CONFIG, ESTATE, root};

fn render(format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args([
            "scan",
            "--snapshot",
            ESTATE,
            "--config",
            CONFIG,
            "--format",
            format,
        ])
        .current_dir(root())
        .env_clear()
        .env("HOSTNAME", "golden-host")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn golden_outputs_of_the_example_estate() {
    for format in [
        "table", "json", "sarif", "html", "ocsf", "asff", "junit", "svg",
    ] {
        insta::assert_snapshot!(format!("example-{format}"), render(format));
    }
}
