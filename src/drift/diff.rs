//! Configuration drift between two snapshots: per resource, added, removed, or modified with
//! the fields that changed (old -> new). Policy documents are compared semantically — keys,
//! statements and list entries in any order, a single value or a one-element list — and a
//! changed policy is shown as a line diff of the normalized documents.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use similar::TextDiff;

pub use crate::findings::report::{ChangeKind, FieldChange, ResourceChange};
use crate::model::{ResourceItem, ResourceType, Snapshot};

/// Resource key: (type, account, region, id).
type Key<'a> = (ResourceType, &'a str, Option<&'a str>, &'a str);

/// A resource of one side of a diff: a collected resource, read as JSON only when it is
/// compared (two snapshots' every resource as JSON at once was several times the snapshots),
/// or an account as the organization places it.
enum Side<'a> {
    Collected(ResourceItem<'a>),
    Account(Value),
}

impl Side<'_> {
    fn to_json(&self) -> Cow<'_, Value> {
        match self {
            Side::Collected(item) => Cow::Owned(item.to_json()),
            Side::Account(value) => Cow::Borrowed(value),
        }
    }
}

/// Every resource of a snapshot keyed by identity (a bucket is keyed without its region, as it
/// is not a regional resource).
fn resources(snapshot: &Snapshot) -> BTreeMap<Key<'_>, Side<'_>> {
    let mut out: BTreeMap<Key<'_>, Side<'_>> = snapshot
        .resources()
        .map(|item| {
            let t = item.resource_type();
            let region = item.region.filter(|_| t.is_regional());
            ((t, item.account, region, item.id), Side::Collected(item))
        })
        .collect();
    if let Some(org) = &snapshot.organization {
        for (id, account) in &org.accounts {
            out.insert(
                (ResourceType::Account, id.as_str(), None, id.as_str()),
                Side::Account(organization_account(org, id, account)),
            );
        }
    }
    out
}

/// An account as the organization places it: OU path, status, tags and the SCPs and RCPs
/// above it, keyed `level policy-name` so that a detached guardrail reads as one removal.
fn organization_account(
    org: &crate::model::OrganizationSnapshot,
    id: &str,
    account: &crate::model::OrganizationAccount,
) -> Value {
    use crate::model::OrganizationPolicyType as Kind;
    let policies = |kind: Kind| -> Value {
        match org.attached_policies(id, kind) {
            Ok(attached) => Value::Object(
                attached
                    .into_iter()
                    .map(|(level, policy_id, p)| {
                        (
                            format!("{level} {} ({policy_id})", p.name),
                            serde_json::to_value(&p.policy).unwrap_or(Value::Null),
                        )
                    })
                    .collect(),
            ),
            Err(reason) => Value::String(format!("not read: {reason}")),
        }
    };
    serde_json::json!({
        "name": account.name,
        "status": account.status,
        "ou_path": org.ou_path(id),
        "tags": account.tags,
        "service_control_policies": policies(Kind::ServiceControlPolicy),
        "resource_control_policies": policies(Kind::ResourceControlPolicy),
    })
}

/// Compares two snapshots; changes in resource-key order.
pub fn diff_snapshots(old: &Snapshot, new: &Snapshot) -> Vec<ResourceChange> {
    let before = resources(old);
    let after = resources(new);
    let mut changes = Vec::new();
    let change = |key: &Key, kind: ChangeKind, fields: Vec<FieldChange>| ResourceChange {
        resource_type: key.0,
        account: key.1.to_string(),
        region: key.2.map(str::to_string),
        id: key.3.to_string(),
        change: kind,
        fields,
    };
    for (key, old_value) in &before {
        match after.get(key) {
            None => changes.push(change(key, ChangeKind::Removed, Vec::new())),
            Some(new_value) => {
                let mut fields = Vec::new();
                diff_values("", &old_value.to_json(), &new_value.to_json(), &mut fields);
                if !fields.is_empty() {
                    changes.push(change(key, ChangeKind::Modified, fields));
                }
            }
        }
    }
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        changes.push(change(key, ChangeKind::Added, Vec::new()));
    }
    changes.sort_by(|a, b| a.key().cmp(&b.key()));
    changes
}

/// A stored policy (`{raw, document}`): its document, when that is all the object holds.
fn policy_document(value: &Value) -> Option<&Value> {
    let map = value.as_object()?;
    let document = map.get("document")?;
    map.keys()
        .all(|k| k == "document" || k == "raw")
        .then_some(document)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends the differences between `old` and `new` under `path`.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    if let (Some(a), Some(b)) = (policy_document(old), policy_document(new)) {
        // Read the policies as the scan does: a document the engine refuses (say, a condition
        // value in nested arrays, which the scan turns into errors) is never "equal" to one it
        // accepts, however alike their canonical forms.
        let valid = |d: &Value| crate::policy::Policy::from_value(path, d).is_ok();
        let (a, b) = if valid(a) == valid(b) {
            (normalize_policy(a), normalize_policy(b))
        } else {
            (a.clone(), b.clone())
        };
        if a != b {
            out.push(FieldChange {
                field: path.to_string(),
                old: None,
                new: None,
                policy_diff: Some(policy_diff(&a, &b)),
            });
        }
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                diff_values(
                    &join(path, key),
                    va,
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
            for (key, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                diff_values(&join(path, key), &Value::Null, vb, out);
            }
        }
        _ => out.push(FieldChange {
            field: path.to_string(),
            old: Some(old.clone()),
            new: Some(new.clone()),
            policy_diff: None,
        }),
    }
}

/// The policy in a canonical form: object keys sorted; every list sorted and deduplicated, and
/// a one-element list the same as its element (IAM gives order and that choice no meaning).
pub fn normalize_policy(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, normalize_policy(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => {
            // Statements with a Sid sort by it, so an edited statement keeps its place in
            // the diff; everything else by its canonical text.
            let mut items: Vec<(String, String, Value)> = items
                .iter()
                .map(|v| {
                    let v = normalize_policy(v);
                    let text = v.to_string();
                    let key = match v.get("Sid").and_then(Value::as_str) {
                        Some(sid) => format!("0{sid}"),
                        None => format!("1{text}"),
                    };
                    (key, text, v)
                })
                .collect();
            items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            items.dedup_by(|a, b| a.1 == b.1);
            if items.len() == 1 {
                items.remove(0).2
            } else {
                Value::Array(items.into_iter().map(|(_, _, v)| v).collect())
            }
        }
        other => other.clone(),
    }
}

/// A unified line diff of two normalized policies.
fn policy_diff(old: &Value, new: &Value) -> String {
    let pretty = |v: &Value| format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default());
    let (a, b) = (pretty(old), pretty(new));
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("old", "new")
        .to_string()
}

/// The changes as text, one resource per block (`xscan diff`).
/// Values are made visible ([`crate::text::visible`]): they come from AWS.
pub fn render_text(changes: &[ResourceChange]) -> String {
    use crate::text::visible;
    let mut out = String::new();
    for c in changes {
        let sign = match c.change {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => '~',
        };
        out.push_str(&format!(
            "{sign} {} {}\n",
            c.resource_type.as_str(),
            visible(&c.label())
        ));
        for f in &c.fields {
            match &f.policy_diff {
                Some(diff) => {
                    out.push_str(&format!("    {}: policy changed\n", visible(&f.field)));
                    for line in diff.lines() {
                        out.push_str(&format!("      {}\n", visible(line)));
                    }
                }
                None => out.push_str(&format!(
                    "    {}: {} -> {}\n",
                    visible(&f.field),
                    visible(&compact(f.old.as_ref())),
                    visible(&compact(f.new.as_ref()))
                )),
            }
        }
    }
    let count = |k| changes.iter().filter(|c| c.change == k).count();
    out.push_str(&format!(
        "{} added, {} removed, {} modified\n",
        count(ChangeKind::Added),
        count(ChangeKind::Removed),
        count(ChangeKind::Modified)
    ));
    out
}

fn compact(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reordering_a_policy_is_not_a_change() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*",
             "Principal": {"AWS": ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"]}},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Principal": "*"}]});
        let b = json!({"Statement": [
            {"Principal": "*", "Resource": ["*"], "Action": "s3:*", "Effect": "Deny"},
            {"Resource": "*", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
             "Principal": {"AWS": ["arn:aws:iam::1:role/b", "arn:aws:iam::1:role/a"]}}],
            "Version": "2012-10-17"});
        assert_eq!(normalize_policy(&a), normalize_policy(&b));
        let c = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": "s3:*", "Resource": "*", "Principal": "*"}});
        assert_ne!(normalize_policy(&a), normalize_policy(&c));
    }

    #[test]
    fn an_invalid_policy_never_equals_a_valid_one() {
        let record = |document: Value| json!({"policy": {"raw": null, "document": document}});
        let valid = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        let mut nested = valid.clone();
        nested["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = json!([[[["false"]]]]);
        assert!(crate::policy::Policy::from_value("p", &nested).is_err());
        let mut out = Vec::new();
        diff_values("", &record(valid), &record(nested), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].field, "policy");
    }

    #[test]
    fn fields_and_policies_are_compared() {
        let mut fields = Vec::new();
        let policy = |resource: &str| json!({"raw": "x", "document": {"Statement": [{"Effect": "Allow", "Resource": resource}]}});
        diff_values(
            "",
            &json!({"direct_internet_access": "Disabled", "policy": policy("arn:aws:s3:::b/*"), "tags": {"a": "1"}}),
            &json!({"direct_internet_access": "Enabled", "policy": policy("*"), "tags": {"a": "1"}}),
            &mut fields,
        );
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert_eq!(fields[0].field, "direct_internet_access");
        assert_eq!(fields[0].new, Some(json!("Enabled")));
        let diff = fields[1].policy_diff.as_deref().unwrap();
        assert!(diff.contains("-") && diff.contains("+"), "{diff}");
        assert!(diff.contains("\"Resource\": \"*\""), "{diff}");
        // Re-encoded raw text with the same document is no change.
        let mut none = Vec::new();
        diff_values(
            "",
            &json!({"policy": {"raw": "a", "document": {"x": [1, 2]}}}),
            &json!({"policy": {"raw": "b", "document": {"x": [2, 1]}}}),
            &mut none,
        );
        assert!(none.is_empty(), "{none:?}");
    }
}
