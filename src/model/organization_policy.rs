//! The `organization_policy` resource type: each SCP and RCP of the organization, with its
//! document and the roots, OUs and accounts it is attached to, so that rules (and custom
//! rules) can hold the policies themselves, not only their effect on an account. Derived from
//! the organization part; its population is unknown when the organization or a kind of policy
//! could not be listed.

use serde_json::{Value, json};

use super::account_view::role_in_scope;
use super::{
    AccountRole, DerivedKind, DerivedResource, OrganizationPolicyType, OrganizationSnapshot,
    PART_ORGANIZATION, Snapshot,
};

/// The `organization_policy` type.
pub struct OrganizationPolicyView;

impl DerivedKind for OrganizationPolicyView {
    const FIELDS: &'static [&'static str] = &[
        "id",
        "name",
        "policy_type",
        "aws_managed",
        "targets",
        "policy",
    ];

    /// One per policy, held by the management account.
    fn derive<'a>(
        snapshot: &'a Snapshot,
        org: &'a OrganizationSnapshot,
        role_of: &dyn Fn(&str) -> Option<AccountRole>,
    ) -> Vec<DerivedResource<'a>> {
        let management = org.management_account_id.as_deref().unwrap_or("");
        let role = role_in_scope(snapshot, org, role_of, management);
        org.policies
            .iter()
            .map(|(id, p)| DerivedResource {
                account: management,
                id,
                arn: policy_arn(org, id, p.policy_type, p.aws_managed),
                account_role: role,
                view: json!({
                    "id": id,
                    "name": p.name,
                    "policy_type": p.policy_type,
                    "aws_managed": p.aws_managed,
                    "targets": p.targets,
                    "policy": p.policy,
                    "account": management,
                    "region": Value::Null,
                    "account_role": role.map(AccountRole::as_str),
                }),
                collection_errors: Default::default(),
            })
            .collect()
    }

    fn population_error(org: &OrganizationSnapshot) -> Option<String> {
        [
            PART_ORGANIZATION,
            OrganizationPolicyType::ServiceControlPolicy.part(),
            OrganizationPolicyType::ResourceControlPolicy.part(),
        ]
        .into_iter()
        .find_map(|part| {
            org.collection_errors
                .get(part)
                .map(|error| format!("the organization's {part} could not be read: {error}"))
        })
    }
}

/// A policy's ARN, in the pattern the Organizations API gives `PolicySummary.Arn`
/// (<https://docs.aws.amazon.com/organizations/latest/APIReference/API_PolicySummary.html>):
/// `arn:aws:organizations::<management account>:policy/<organization>/<type>/<id>`, and for an
/// AWS managed policy `arn:aws:organizations::aws:policy/<type>/<id>`, the type in lower case
/// (`service_control_policy`).
fn policy_arn(
    org: &OrganizationSnapshot,
    id: &str,
    kind: OrganizationPolicyType,
    aws_managed: bool,
) -> String {
    let kind = kind.as_str().to_ascii_lowercase();
    if aws_managed {
        format!("arn:aws:organizations::aws:policy/{kind}/{id}")
    } else {
        format!(
            "arn:aws:organizations::{}:policy/{}/{kind}/{id}",
            org.management_account_id.as_deref().unwrap_or(""),
            org.id.as_deref().unwrap_or("")
        )
    }
}
