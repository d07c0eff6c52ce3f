//! Signed attestations of a run, verifiable offline: an in-toto Statement (v1) whose subjects
//! are the run's files (name and sha256) and whose predicate says who scanned what, when, with
//! which rules and what came out, in a DSSE envelope signed with Ed25519. Under `--history`
//! each run's predicate names the digest of the previous run's envelope: a hash chain, so a run
//! edited, removed or re-ordered later breaks it.
//!
//! Keys are PKCS#8 (private, `PREFIX.key`) and SPKI (public, `PREFIX.pub`) PEM files, which
//! OpenSSL reads too. A key's id is the sha256 of its 32 raw public-key bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::findings::{Report, Status, sha256_hex};

/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// xscan's predicate, versioned (docs/attestation.md describes it).
pub const PREDICATE_TYPE: &str = "https://github.com/xscan/xscan/attestation/scan/v1";
/// The envelope of a history run, inside the run's directory.
pub const RUN_ENVELOPE: &str = "run.dsse.json";

/// Errors of signing and verifying.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("cannot read {what} {path}: {source}\nhelp: {help}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
        help: &'static str,
    },
    #[error("{what} is not a usable key: {problem}\nhelp: {help}")]
    Key {
        what: String,
        problem: String,
        help: &'static str,
    },
    #[error("cannot write {path}: {source}\nhelp: check that the directory exists and is writable")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a DSSE envelope of an xscan attestation: {problem}\nhelp: pass files written by `--sign` (`*.dsse.json`)"
    )]
    Envelope { path: String, problem: String },
    #[error("cannot create a key: {0}\nhelp: the operating system's random source failed")]
    Random(String),
}

/// A signing key with its id.
pub struct SigningIdentity {
    key: SigningKey,
    pub key_id: String,
}

/// The key id: sha256 of the raw public key, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())
}

const KEY_HELP: &str = "create a key pair with `xscan keygen --output PREFIX`; --sign takes PREFIX.key, or env:VARIABLE holding its PEM text";

impl SigningIdentity {
    /// Reads the private key: a PKCS#8 PEM file, or `env:NAME` for the PEM text in a variable
    /// (CI secrets).
    pub fn load(spec: &str) -> Result<Self, AttestError> {
        let (what, text) = match spec.strip_prefix("env:") {
            Some(name) => (
                format!("environment variable {name}"),
                std::env::var(name).map_err(|e| AttestError::Key {
                    what: format!("environment variable {name}"),
                    problem: e.to_string(),
                    help: KEY_HELP,
                })?,
            ),
            None => (
                format!("key file {spec}"),
                std::fs::read_to_string(spec).map_err(|source| AttestError::Read {
                    what: "signing key",
                    path: spec.to_string(),
                    source,
                    help: KEY_HELP,
                })?,
            ),
        };
        let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| AttestError::Key {
            what,
            problem: e.to_string(),
            help: KEY_HELP,
        })?;
        let key_id = key_id(&key.verifying_key());
        Ok(Self { key, key_id })
    }

    /// Signs `statement` into a DSSE envelope.
    pub fn envelope(&self, statement: &Value) -> Value {
        let payload = serde_json::to_vec(statement).unwrap_or_default();
        let signature = self.key.sign(&pae(PAYLOAD_TYPE, &payload));
        serde_json::json!({
            "payloadType": PAYLOAD_TYPE,
            "payload": BASE64.encode(&payload),
            "signatures": [{"keyid": self.key_id, "sig": BASE64.encode(signature.to_bytes())}],
        })
    }
}

/// DSSE's pre-authentication encoding: what is signed.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Writes a new key pair: `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (SPKI PEM).
/// Returns the key id.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf, String), AttestError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AttestError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    // PKCS#8 v1 (the private key alone), the form OpenSSL writes and reads.
    let private = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(Default::default())
    .map_err(|e| AttestError::Random(e.to_string()))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| AttestError::Random(e.to_string()))?;
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| AttestError::Write { path, source }
    };
    {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&key_path).map_err(write_err(&key_path))?;
        file.write_all(private.as_bytes())
            .map_err(write_err(&key_path))?;
    }
    std::fs::write(&pub_path, public.as_bytes()).map_err(write_err(&pub_path))?;
    Ok((key_path, pub_path, key_id(&key.verifying_key())))
}

/// Reads a public key (SPKI PEM).
pub fn load_public(path: &Path) -> Result<VerifyingKey, AttestError> {
    let text = std::fs::read_to_string(path).map_err(|source| AttestError::Read {
        what: "public key",
        path: path.display().to_string(),
        source,
        help: "pass the PREFIX.pub written by `xscan keygen`",
    })?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| AttestError::Key {
        what: format!("public key {}", path.display()),
        problem: e.to_string(),
        help: "pass the PREFIX.pub written by `xscan keygen`",
    })
}

/// One file of a run.
pub struct Artifact<'a> {
    /// The file's name, relative to the envelope's directory.
    pub name: String,
    pub contents: &'a [u8],
}

/// Who ran the scan and how, besides the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunFacts {
    pub command: String,
    pub host: String,
    /// The previous run's envelope (history), `sha256:<hex>`.
    pub previous_envelope: Option<String>,
}

/// The in-toto Statement of a run: its files as subjects, and the predicate.
pub fn statement(artifacts: &[Artifact<'_>], predicate: Value) -> Value {
    let subjects: Vec<Value> = artifacts
        .iter()
        .map(|a| serde_json::json!({"name": a.name, "digest": {"sha256": sha256_hex(a.contents)}}))
        .collect();
    serde_json::json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    })
}

/// The predicate of a scan: scope, accounts and the identity used in each, regions, times,
/// tool, rule pack, configuration and snapshot digests, counts by status, and the run facts.
pub fn scan_predicate(report: &Report, facts: &RunFacts) -> Value {
    let counts: BTreeMap<&str, usize> = [
        Status::Pass,
        Status::Fail,
        Status::Error,
        Status::Skipped,
        Status::Waived,
    ]
    .into_iter()
    .map(|s| (s.as_str(), report.summary.count(s)))
    .collect();
    let identities: BTreeMap<&str, Option<&str>> = report
        .scan
        .accounts
        .iter()
        .map(|a| (a.id.as_str(), a.caller_arn.as_deref()))
        .collect();
    serde_json::json!({
        "kind": "scan",
        "tool": {"name": report.tool.name, "version": report.tool.version},
        "scope": report.scan.scope,
        "accounts": identities.keys().collect::<Vec<_>>(),
        "collection_identities": identities,
        "regions": report.scan.regions,
        "started_at": report.scan.started_at,
        "finished_at": report.scan.finished_at,
        "rule_pack_sha256": report.method.rule_pack_sha256,
        "config_sha256": report.method.config_sha256,
        "snapshot_sha256": report.method.snapshot_sha256,
        "report_id": report.report_id,
        "counts": counts,
        "incomplete": report.summary.incomplete,
        "collection_gaps": report.scan.collection_gaps.len(),
        "command": facts.command,
        "host": facts.host,
        "previous_envelope": facts.previous_envelope,
    })
}

/// The predicate of a collection (`xscan collect`): what was collected, from where, when.
pub fn collect_predicate(snapshot: &crate::model::Snapshot, facts: &RunFacts) -> Value {
    let m = &snapshot.metadata;
    let identities: BTreeMap<&str, &str> = m
        .caller_identities
        .iter()
        .map(|(account, identity)| (account.as_str(), identity.arn.as_str()))
        .collect();
    serde_json::json!({
        "kind": "collect",
        "tool": {"name": "xscan", "version": m.tool_version},
        "scope": m.scope,
        "accounts": snapshot.accounts.keys().collect::<Vec<_>>(),
        "collection_identities": identities,
        "regions": m.regions,
        "started_at": m.started_at,
        "finished_at": m.finished_at,
        "rule_pack_sha256": m.provenance.as_ref().map(|p| p.rule_pack_sha256.clone()),
        "config_sha256": m.provenance.as_ref().and_then(|p| p.config_sha256.clone()),
        "collection_gaps": m.collection_gaps.len(),
        "incomplete": !m.collection_gaps.is_empty(),
        "command": facts.command,
        "host": facts.host,
        "previous_envelope": facts.previous_envelope,
    })
}

/// What verifying one envelope found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Problems, each a sentence (empty: everything holds).
    pub problems: Vec<String>,
    /// The signing key ids the envelope carries.
    pub key_ids: Vec<String>,
    /// `previous_envelope` of the predicate.
    pub previous: Option<String>,
    /// The subjects (name, sha256).
    pub subjects: Vec<(String, String)>,
}

/// Reads an envelope file: the envelope and the Statement inside (not yet verified).
fn read_envelope(path: &Path) -> Result<(Value, Vec<u8>, Value), AttestError> {
    let bad = |problem: String| AttestError::Envelope {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|source| AttestError::Read {
        what: "envelope",
        path: path.display().to_string(),
        source,
        help: "pass files written by `--sign` (`*.dsse.json`)",
    })?;
    let envelope = crate::input::parse_json(&text).map_err(|p| bad(p.to_string()))?;
    if envelope["payloadType"] != PAYLOAD_TYPE {
        return Err(bad(format!("payloadType is not {PAYLOAD_TYPE}")));
    }
    let payload = envelope["payload"]
        .as_str()
        .and_then(|p| BASE64.decode(p).ok())
        .ok_or_else(|| bad("the payload is not base64".into()))?;
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| bad(format!("the payload is not JSON: {e}")))?;
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        return Err(bad("the payload is not an xscan in-toto Statement".into()));
    }
    Ok((envelope, payload, statement))
}

/// Verifies an envelope with `key`: a signature by it over the payload, and every subject
/// beside the envelope with the recorded sha256.
pub fn verify(path: &Path, key: &VerifyingKey) -> Result<Checked, AttestError> {
    let (envelope, payload, statement) = read_envelope(path)?;
    let mut checked = Checked::default();
    let expected_id = key_id(key);
    let message = pae(PAYLOAD_TYPE, &payload);
    let mut signed_by_key = false;
    for signature in envelope["signatures"].as_array().into_iter().flatten() {
        let id = signature["keyid"].as_str().unwrap_or("").to_string();
        let valid = signature["sig"]
            .as_str()
            .and_then(|s| BASE64.decode(s).ok())
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .is_some_and(|sig| key.verify(&message, &sig).is_ok());
        signed_by_key |= valid;
        checked.key_ids.push(id);
    }
    if !signed_by_key {
        checked.problems.push(format!(
            "{}: no valid signature by key {expected_id} (signed by: {}); the envelope was re-signed or its payload edited",
            path.display(),
            if checked.key_ids.is_empty() {
                "nobody".to_string()
            } else {
                checked.key_ids.join(", ")
            }
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    for subject in statement["subject"].as_array().into_iter().flatten() {
        let name = subject["name"].as_str().unwrap_or("").to_string();
        let digest = subject["digest"]["sha256"]
            .as_str()
            .unwrap_or("")
            .to_string();
        // Subjects are plain names beside the envelope: nothing outside its directory.
        if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
            checked.problems.push(format!(
                "{}: subject `{name}` is not a file name",
                path.display()
            ));
            continue;
        }
        match std::fs::read(dir.join(&name)) {
            Ok(bytes) if sha256_hex(&bytes) == digest => {}
            Ok(bytes) => checked.problems.push(format!(
                "{}: {name} changed (sha256 {} now, {digest} signed)",
                path.display(),
                sha256_hex(&bytes)
            )),
            Err(e) => checked
                .problems
                .push(format!("{}: {name} is missing ({e})", path.display())),
        }
        checked.subjects.push((name, digest));
    }
    checked.previous = statement["predicate"]["previous_envelope"]
        .as_str()
        .map(str::to_string);
    Ok(checked)
}

/// Verifies every run of a history directory and the chain between them, oldest first.
/// Returns the runs checked and the problems.
pub fn verify_history(dir: &Path, key: &VerifyingKey) -> Result<(usize, Vec<String>), AttestError> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| AttestError::Read {
            what: "history directory",
            path: dir.display().to_string(),
            source,
            help: "pass the directory given to `scan --history`",
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(['1', '2']))
        })
        .collect();
    runs.sort();
    let mut problems = Vec::new();
    let mut previous: Option<String> = None;
    for run in &runs {
        let envelope = run.join(RUN_ENVELOPE);
        if !envelope.is_file() {
            problems.push(format!(
                "{}: the run is not signed ({RUN_ENVELOPE} is missing)",
                run.display()
            ));
            previous = None;
            continue;
        }
        let checked = verify(&envelope, key)?;
        problems.extend(checked.problems);
        if checked.previous != previous {
            problems.push(format!(
                "{}: the chain is broken: the run names {} as the previous run's envelope, but the run before it in the directory is {}; a run was removed, added or re-ordered",
                run.display(),
                checked.previous.as_deref().unwrap_or("none"),
                previous.as_deref().unwrap_or("none")
            ));
        }
        let bytes = std::fs::read(&envelope).map_err(|source| AttestError::Read {
            what: "envelope",
            path: envelope.display().to_string(),
            source,
            help: "pass the directory given to `scan --history`",
        })?;
        previous = Some(format!("sha256:{}", sha256_hex(&bytes)));
    }
    Ok((runs.len(), problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
