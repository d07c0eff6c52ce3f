//! Signed runs: `xscan keygen`, `--sign` on scan and collect, and `xscan verify` catching each
//! kind of tampering (issue "Evidence a regulator can verify offline").

use std::path::Path;

use crate::common::{COMPLIANT, CONFIG, ESTATE, stderr, stdout, temp_dir, xscan};

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let prefix = dir.join(name);
    let out = xscan(&["keygen", "--output", prefix.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (
        format!("{}.key", prefix.display()),
        format!("{}.pub", prefix.display()),
    )
}

fn verify(args: &[&str]) -> (i32, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let out = xscan(&all);
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// Scans a copy of the example estate placed beside the output (so it is attested too).
fn signed_scan(dir: &Path, key: &str, format: &str, file: &str) -> String {
    let output = dir.join(file);
    let snapshot = dir.join("snapshot.json");
    if !snapshot.exists() {
        std::fs::copy(crate::common::root().join(ESTATE), &snapshot).unwrap();
    }
    let out = xscan(&[
        "scan",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--config",
        CONFIG,
        "--format",
        format,
        "--output",
        output.to_str().unwrap(),
        "--sign",
        key,
    ]);
    // The example estate has a collection gap: exit 3, report and envelope written.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    format!("{}.dsse.json", output.display())
}

#[test]
fn keys_are_private_and_the_html_names_the_key() {
    let dir = temp_dir("attest-keys");
    let (key, public) = keygen(&dir, "signer");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    }
    // keygen refuses to overwrite a key.
    let out = xscan(&["keygen", "--output", dir.join("signer").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let envelope = signed_scan(&dir, &key, "html", "report.html");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let (code, text) = verify(&["--key", &public, &envelope]);
    assert_eq!(code, 0, "{text}");
    let key_id = text
        .split("signed by ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(html.contains(key_id), "the HTML shows the key id");
    assert!(html.contains("xscan verify --key SIGNER.pub report.html.dsse.json"));
}

#[test]
fn verify_catches_every_kind_of_tampering() {
    let dir = temp_dir("attest-tamper");
    let (key, public) = keygen(&dir, "signer");
    let (other_key, _) = keygen(&dir, "other");
    let envelope = signed_scan(&dir, &key, "json", "report.json");
    assert_eq!(verify(&["--key", &public, &envelope]).0, 0);
    let report = dir.join("report.json");
    let original = std::fs::read(&report).unwrap();

    // One byte changed in the report; then in the snapshot beside it.
    let mut changed = original.clone();
    changed[10] ^= 1;
    std::fs::write(&report, &changed).unwrap();
    let (code, text) = verify(&["--key", &public, &envelope]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("report.json changed"), "{text}");
    std::fs::write(&report, &original).unwrap();
    let snapshot = dir.join("snapshot.json");
    let snapshot_text = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, [&snapshot_text[..], b" "].concat()).unwrap();
    let (code, text) = verify(&["--key", &public, &envelope]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("snapshot.json changed"), "{text}");

    // An artifact missing.
    std::fs::remove_file(&snapshot).unwrap();
    let (code, text) = verify(&["--key", &public, &envelope]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("snapshot.json is missing"), "{text}");
    std::fs::write(&snapshot, &snapshot_text).unwrap();
    assert_eq!(verify(&["--key", &public, &envelope]).0, 0);

    // The predicate edited (counts lowered) without re-signing.
    let text = std::fs::read_to_string(&envelope).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine.decode(value["payload"].as_str().unwrap()).unwrap();
    let mut statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"]["counts"]["fail"] = 0.into();
    value["payload"] = engine
        .encode(serde_json::to_vec(&statement).unwrap())
        .into();
    std::fs::write(&envelope, value.to_string()).unwrap();
    let (code, text_out) = verify(&["--key", &public, &envelope]);
    assert_eq!(code, 1, "{text_out}");
    assert!(text_out.contains("no valid signature"), "{text_out}");
    std::fs::write(&envelope, &text).unwrap();

    // Re-signed with another key: the verifier's key did not sign it.
    let resigned = signed_scan(&dir, &other_key, "json", "report.json");
    let (code, text) = verify(&["--key", &public, &resigned]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signed by:"), "{text}");

    // Unusable input: exit 2.
    let (code, _) = verify(&["--key", &public, dir.join("report.json").to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _) = verify(&["--key", &key, &resigned]);
    assert_eq!(code, 2, "a private key is not a public key");
}

#[test]
fn a_key_that_cannot_sign_leaves_nothing_behind() {
    let dir = temp_dir("attest-bad-key");
    std::fs::write(dir.join("bad.key"), "not a key").unwrap();
    let output = dir.join("report.json");
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--format",
        "json",
        "--output",
        output.to_str().unwrap(),
        "--sign",
        dir.join("bad.key").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!output.exists(), "no unsigned output");
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--sign",
        "env:NOPE",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_key_can_come_from_the_environment() {
    let dir = temp_dir("attest-env");
    let (key, public) = keygen(&dir, "signer");
    let pem = std::fs::read_to_string(&key).unwrap();
    let output = dir.join("report.sarif");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args([
            "scan",
            "--snapshot",
            COMPLIANT,
            "--config",
            CONFIG,
            "--format",
            "sarif",
            "--output",
            output.to_str().unwrap(),
            "--sign",
            "env:XSCAN_SIGNING_KEY",
        ])
        .current_dir(crate::common::root())
        .env_clear()
        .env("XSCAN_SIGNING_KEY", pem)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let envelope = format!("{}.dsse.json", output.display());
    assert_eq!(verify(&["--key", &public, &envelope]).0, 0);
}

#[test]
fn a_history_is_a_chain_that_shows_removed_and_reordered_runs() {
    let dir = temp_dir("attest-history");
    let (key, public) = keygen(&dir, "signer");
    let history = dir.join("history");
    for _ in 0..3 {
        let out = xscan(&[
            "scan",
            "--snapshot",
            COMPLIANT,
            "--config",
            CONFIG,
            "--history",
            history.to_str().unwrap(),
            "--sign",
            &key,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // Run directories are named by the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let h = history.to_str().unwrap();
    let (code, text) = verify(&["--key", &public, "--history", h]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 run(s)"), "{text}");

    let mut runs: Vec<_> = std::fs::read_dir(&history)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("20"))
        .collect();
    runs.sort();
    // Re-ordered: the first and second runs swap names.
    let swap = history.join("swap");
    std::fs::rename(&runs[0], &swap).unwrap();
    std::fs::rename(&runs[1], &runs[0]).unwrap();
    std::fs::rename(&swap, &runs[1]).unwrap();
    let (code, text) = verify(&["--key", &public, "--history", h]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("chain is broken"), "{text}");
    std::fs::rename(&runs[1], &swap).unwrap();
    std::fs::rename(&runs[0], &runs[1]).unwrap();
    std::fs::rename(&swap, &runs[0]).unwrap();
    assert_eq!(verify(&["--key", &public, "--history", h]).0, 0);

    // Removed: the middle run deleted.
    std::fs::remove_dir_all(&runs[1]).unwrap();
    let (code, text) = verify(&["--key", &public, "--history", h]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("chain is broken"), "{text}");
}
