//! The `account` resource type: each account in scope as the organization sees it, with its
//! place in the tree and the SCPs and RCPs of each level above it. Derived from the
//! organization part, not collected in the account, so it is known even for an account that
//! could not be reached.

use serde_json::{Value, json};

use super::{
    AccountRole, DerivedKind, DerivedResource, OrganizationPolicyType, OrganizationSnapshot,
    Snapshot,
};

/// The `account` type.
pub struct AccountView;

impl DerivedKind for AccountView {
    const FIELDS: &'static [&'static str] = &[
        "id",
        "name",
        "status",
        "organization_id",
        "management_account",
        "ou_path",
        "org_path",
        "tags",
        "service_control_policies",
        "resource_control_policies",
    ];

    /// One per account in scope: discovered, or collected or configured with a role.
    fn derive<'a>(
        snapshot: &'a Snapshot,
        org: &'a OrganizationSnapshot,
        role_of: &dyn Fn(&str) -> Option<AccountRole>,
    ) -> Vec<DerivedResource<'a>> {
        let mut ids: Vec<&'a str> = org
            .accounts
            .iter()
            .filter(|(id, a)| a.scope.is_some() || role_of(id).is_some())
            .map(|(id, _)| id.as_str())
            .chain(
                snapshot
                    .accounts
                    .iter()
                    .filter(|(id, a)| a.role.or_else(|| role_of(id)).is_some())
                    .map(|(id, _)| id.as_str()),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        // By the view's fields, each failing with the parts it is made of.
        let errors = org.account_view_errors();
        ids.into_iter()
            .map(|id| {
                let member = org.accounts.get(id);
                let role = role_in_scope(snapshot, org, role_of, id);
                let name = member
                    .map(|m| m.name.as_str())
                    .filter(|n| !n.is_empty())
                    .or_else(|| snapshot.accounts.get(id).and_then(|a| a.name.as_deref()));
                DerivedResource {
                    account: id,
                    id,
                    arn: format!(
                        "arn:aws:organizations::{}:account/{}/{id}",
                        org.management_account_id.as_deref().unwrap_or(""),
                        org.id.as_deref().unwrap_or("")
                    ),
                    account_role: role,
                    view: account_view(org, id, name, role),
                    collection_errors: errors.clone(),
                }
            })
            .collect()
    }
}

/// An account's role: the snapshot's, else the configuration's, else the one discovery gave it.
pub(super) fn role_in_scope(
    snapshot: &Snapshot,
    org: &OrganizationSnapshot,
    role_of: &dyn Fn(&str) -> Option<AccountRole>,
    id: &str,
) -> Option<AccountRole> {
    snapshot
        .accounts
        .get(id)
        .and_then(|a| a.role)
        .or_else(|| role_of(id))
        .or_else(|| org.accounts.get(id).and_then(|m| m.scope))
}

/// An account's view: its place in the organization and the SCPs and RCPs of each level above
/// it (root first), each with its level's id.
fn account_view(
    org: &OrganizationSnapshot,
    id: &str,
    name: Option<&str>,
    role: Option<AccountRole>,
) -> Value {
    let member = org.accounts.get(id);
    let levels = |kind: OrganizationPolicyType| -> Value {
        match org.attached_policies(id, kind) {
            Ok(attached) => attached
                .into_iter()
                .map(|(level, policy_id, p)| {
                    json!({"name": p.name, "id": policy_id, "level": level, "raw": p.policy.raw, "document": p.policy.document})
                })
                .collect(),
            Err(_) => Value::Null,
        }
    };
    json!({
        "id": id,
        "name": name,
        "status": member.map(|m| m.status.as_str()),
        "organization_id": org.id,
        "management_account": org.management_account_id,
        "ou_path": org.ou_path(id),
        "org_path": org.org_path(id),
        "tags": member.map(|m| &m.tags),
        "service_control_policies": levels(OrganizationPolicyType::ServiceControlPolicy),
        "resource_control_policies": levels(OrganizationPolicyType::ResourceControlPolicy),
        "account": id,
        "region": Value::Null,
        "account_role": role.map(AccountRole::as_str),
    })
}
