//! The AWS Organization the accounts belong to, as read from its management account or a
//! delegated administrator: its id, the OU tree, the accounts (with their tags and, when they
//! were discovered, their role in the pattern) and its service and resource control policies
//! with their targets. A part that could not be read is named in `collection_errors` (and a
//! gap of the scan), never left as an empty map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AccountRole, PolicyRecord};

/// `collection_errors` keys: what each part of the organization is.
pub const PART_ORGANIZATION: &str = "organization";
pub const PART_TREE: &str = "tree";
pub const PART_TAGS: &str = "tags";
pub const PART_SCPS: &str = "service_control_policies";
pub const PART_RCPS: &str = "resource_control_policies";
/// Every part, in reading order.
pub const ORGANIZATION_PARTS: [&str; 5] = [
    PART_ORGANIZATION,
    PART_TREE,
    PART_TAGS,
    PART_SCPS,
    PART_RCPS,
];

/// One organization.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSnapshot {
    /// `o-...`; `None` when DescribeOrganization failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_account_id: Option<String>,
    /// `r-...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// OUs by id.
    #[serde(default)]
    pub units: BTreeMap<String, OrganizationalUnit>,
    /// Accounts by id.
    #[serde(default)]
    pub accounts: BTreeMap<String, OrganizationAccount>,
    /// SCPs and RCPs by policy id (`p-...`).
    #[serde(default)]
    pub policies: BTreeMap<String, OrganizationPolicy>,
    /// The parts that could not be read (see the `PART_*` keys), with the error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_errors: BTreeMap<String, String>,
}

/// An organizational unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationalUnit {
    pub name: String,
    /// The root's or another OU's id.
    pub parent_id: String,
}

/// A member (or the management) account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationAccount {
    #[serde(default)]
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    /// The root's or an OU's id.
    pub parent_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Its role in the pattern when discovery put it in scope; `None`: out of scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<AccountRole>,
}

/// The two kinds of organization policy that decide access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrganizationPolicyType {
    ServiceControlPolicy,
    ResourceControlPolicy,
}

impl OrganizationPolicyType {
    /// The `PolicyType` value of the Organizations API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceControlPolicy => "SERVICE_CONTROL_POLICY",
            Self::ResourceControlPolicy => "RESOURCE_CONTROL_POLICY",
        }
    }

    /// The `collection_errors` key of this kind of policy.
    pub fn part(self) -> &'static str {
        match self {
            Self::ServiceControlPolicy => PART_SCPS,
            Self::ResourceControlPolicy => PART_RCPS,
        }
    }
}

/// An SCP or RCP with its document and the roots, OUs and accounts it is attached to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPolicy {
    pub name: String,
    pub policy_type: OrganizationPolicyType,
    #[serde(default)]
    pub aws_managed: bool,
    /// The document as read.
    pub policy: PolicyRecord,
    /// Root, OU and account ids.
    #[serde(default)]
    pub targets: Vec<String>,
}

impl OrganizationSnapshot {
    /// What of an account's view (the rule index's `account` resource) could not be read, by
    /// the view's field: besides the parts named like fields (`service_control_policies`,
    /// `resource_control_policies`, `tags`), the levels' policies and the OU path are made of
    /// the tree and the organization, so a field fails with any part it is made of. Without
    /// this an unread tree left `service_control_policies` empty, not unknown, for a rule that
    /// reads it.
    pub fn account_view_errors(&self) -> BTreeMap<String, String> {
        let mut errors = self.collection_errors.clone();
        let fields: [(&str, &[&str]); 8] = [
            (PART_SCPS, &[PART_ORGANIZATION, PART_TREE, PART_SCPS]),
            (PART_RCPS, &[PART_ORGANIZATION, PART_TREE, PART_RCPS]),
            ("ou_path", &[PART_ORGANIZATION, PART_TREE]),
            ("org_path", &[PART_ORGANIZATION, PART_TREE]),
            ("status", &[PART_TREE]),
            (PART_TAGS, &[PART_TREE, PART_TAGS]),
            ("management_account", &[PART_ORGANIZATION]),
            ("organization_id", &[PART_ORGANIZATION]),
        ];
        for (field, parts) in fields {
            let failed = parts.iter().find_map(|part| {
                self.collection_errors
                    .get(*part)
                    .map(|error| format!("the organization's {part}: {error}"))
            });
            if let Some(error) = failed {
                errors.insert(field.to_string(), error);
            }
        }
        errors
    }

    /// The levels above `account`, root first: the root, each OU down to the account's
    /// parent, then the account itself. `Err` when the tree was not read or does not reach the
    /// account (an account outside the organization, or a broken parent chain).
    pub fn levels(&self, account: &str) -> Result<Vec<String>, String> {
        if let Some(error) = self.collection_errors.get(PART_TREE) {
            return Err(format!("the organization's tree was not read ({error})"));
        }
        let Some(member) = self.accounts.get(account) else {
            return Err(format!(
                "account {account} is not in organization {}",
                self.id.as_deref().unwrap_or("(unknown)")
            ));
        };
        let mut levels = vec![account.to_string()];
        let mut parent = member.parent_id.clone();
        // A tree is at most five OUs deep; the bound stops a cycle in a hand-edited snapshot.
        for _ in 0..=16 {
            levels.push(parent.clone());
            if Some(&parent) == self.root_id.as_ref() {
                levels.reverse();
                return Ok(levels);
            }
            match self.units.get(&parent) {
                Some(unit) => parent = unit.parent_id.clone(),
                None => break,
            }
        }
        Err(format!(
            "the parents of account {account} do not lead to the root of the organization"
        ))
    }

    /// `Root/OU/OU` for an account (names, as people read them), when the tree reaches it.
    pub fn ou_path(&self, account: &str) -> Option<String> {
        let levels = self.levels(account).ok()?;
        let names: Vec<&str> = levels[..levels.len() - 1]
            .iter()
            .map(|id| {
                if Some(id) == self.root_id.as_ref() {
                    "Root"
                } else {
                    self.units.get(id).map_or(id.as_str(), |u| u.name.as_str())
                }
            })
            .collect();
        Some(names.join("/"))
    }

    /// `o-xxx/r-xxx/ou-xxx/.../` as `aws:PrincipalOrgPaths` and `aws:ResourceOrgPaths` give it.
    pub fn org_path(&self, account: &str) -> Option<String> {
        let levels = self.levels(account).ok()?;
        let mut path = format!("{}/", self.id.as_deref()?);
        for id in &levels[..levels.len() - 1] {
            path.push_str(id);
            path.push('/');
        }
        Some(path)
    }

    /// The policies of `kind` above `account`, each with the level (root, OU or account id) it
    /// is attached at, root first; `Err` as for [`policy_levels`](Self::policy_levels).
    pub fn attached_policies(
        &self,
        account: &str,
        kind: OrganizationPolicyType,
    ) -> Result<Vec<(String, &str, &OrganizationPolicy)>, String> {
        let levels = self.policy_levels(account, kind)?;
        Ok(self
            .levels(account)?
            .into_iter()
            .zip(levels)
            .flat_map(|(level, policies)| {
                policies
                    .into_iter()
                    .map(move |(id, policy)| (level.clone(), id, policy))
            })
            .collect())
    }

    /// The values AWS gives `aws:PrincipalOrgID`/`aws:ResourceOrgID` and
    /// `aws:PrincipalOrgPaths`/`aws:ResourceOrgPaths` for `account`: the organization's id and
    /// the account's path; `Err` with why they are not known (not described, tree not read,
    /// an account outside this organization — in another or none).
    pub fn org_keys(&self, account: &str) -> Result<(String, String), String> {
        if let Some(error) = self.collection_errors.get(PART_ORGANIZATION) {
            return Err(format!("the organization was not described ({error})"));
        }
        let id = self
            .id
            .clone()
            .ok_or_else(|| "the organization has no id".to_string())?;
        self.levels(account)?;
        let path = self
            .org_path(account)
            .ok_or_else(|| format!("account {account} has no path in {id}"))?;
        Ok((id, path))
    }

    /// The policies of `kind` attached at each level above `account`, root first; `Err` when
    /// the tree or those policies were not all read.
    pub fn policy_levels(
        &self,
        account: &str,
        kind: OrganizationPolicyType,
    ) -> Result<Vec<Vec<(&str, &OrganizationPolicy)>>, String> {
        // Without the organization's description, its management account (which SCPs and
        // RCPs spare) is unknown.
        if let Some(error) = self.collection_errors.get(PART_ORGANIZATION) {
            return Err(format!("the organization was not described ({error})"));
        }
        if let Some(error) = self.collection_errors.get(kind.part()) {
            return Err(format!(
                "the organization's {} were not read ({error})",
                kind.part().replace('_', " ")
            ));
        }
        let levels = self.levels(account)?;
        Ok(levels
            .iter()
            .map(|level| {
                self.policies
                    .iter()
                    .filter(|(_, p)| p.policy_type == kind && p.targets.contains(level))
                    .map(|(id, p)| (id.as_str(), p))
                    .collect()
            })
            .collect())
    }
}

/// Parsed policies of each level, root first.
pub type ParsedLevels = Vec<Vec<std::sync::Arc<crate::policy::Policy>>>;

impl OrganizationSnapshot {
    /// [`policy_levels`](Self::policy_levels), each document parsed; `Err` with why they
    /// cannot be known (unread, or an invalid document).
    pub fn parsed_levels(
        &self,
        account: &str,
        kind: OrganizationPolicyType,
    ) -> Result<ParsedLevels, String> {
        self.policy_levels(account, kind)?
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|(id, p)| {
                        p.policy.policy(&format!("{} {id}", p.name)).map_err(|e| {
                            e.to_string().lines().next().unwrap_or_default().to_string()
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Adds to `request` the organization keys AWS gives it — `aws:PrincipalOrgID` and
    /// `aws:PrincipalOrgPaths` for the principal's account, `aws:ResourceOrgID` and
    /// `aws:ResourceOrgPaths` for `resource_account` — and marks unknown those this
    /// organization cannot tell (an account outside it, an unread tree). Keys already given
    /// are kept.
    pub fn add_org_keys(
        &self,
        request: &mut crate::policy::Request,
        resource_account: Option<&str>,
    ) {
        let principal_account = request.principal.account().map(str::to_string);
        for (id_key, paths_key, account) in [
            (
                "aws:PrincipalOrgID",
                "aws:PrincipalOrgPaths",
                principal_account.as_deref(),
            ),
            (
                "aws:ResourceOrgID",
                "aws:ResourceOrgPaths",
                resource_account,
            ),
        ] {
            if request.context.get(id_key).is_some() {
                continue;
            }
            match account.map(|a| self.org_keys(a)) {
                Some(Ok((id, path))) => {
                    request.context.add(id_key, &id);
                    request.context.add(paths_key, &path);
                }
                Some(Err(reason)) => {
                    request.context.set_unknown(id_key, &reason);
                    request.context.set_unknown(paths_key, &reason);
                }
                None => {
                    request
                        .context
                        .set_unknown(id_key, "the account is not known");
                    request
                        .context
                        .set_unknown(paths_key, "the account is not known");
                }
            }
        }
    }
}

/// The organization's layers of one request: the SCP levels above the principal's account, the
/// RCP levels above the resource's, and what the organization cannot tell.
#[derive(Debug, Default)]
pub struct RequestLayers {
    pub scps: ParsedLevels,
    pub rcps: ParsedLevels,
    /// Accounts outside this organization, whose own policies are not known (they could only
    /// deny further).
    pub warnings: Vec<String>,
}

impl OrganizationSnapshot {
    /// The layers of `request` (its principal's account and `resource_account`), its org-ID
    /// keys added; `Err` with why when the organization was not read well enough to tell them.
    pub fn request_layers(
        &self,
        request: &mut crate::policy::Request,
        resource_account: Option<&str>,
    ) -> Result<RequestLayers, String> {
        let principal_account = request.principal.account().map(str::to_string);
        let mut layers = RequestLayers::default();
        for (account, kind) in [
            (
                principal_account.as_deref(),
                OrganizationPolicyType::ServiceControlPolicy,
            ),
            (
                resource_account,
                OrganizationPolicyType::ResourceControlPolicy,
            ),
        ] {
            let Some(account) = account else {
                continue;
            };
            let levels = if !self.accounts.contains_key(account)
                && self.collection_errors.is_empty()
            {
                layers.warnings.push(format!(
                    "account {account} is not in organization {}: its own {}, if any, are not known (they could only deny further)",
                    self.id.as_deref().unwrap_or("(unknown)"),
                    kind.part().replace('_', " ")
                ));
                Vec::new()
            } else {
                self.parsed_levels(account, kind).map_err(|reason| {
                    format!(
                        "the {} above {account} are not known: {reason}",
                        kind.part().replace('_', " ")
                    )
                })?
            };
            match kind {
                OrganizationPolicyType::ServiceControlPolicy => layers.scps = levels,
                OrganizationPolicyType::ResourceControlPolicy => layers.rcps = levels,
            }
        }
        self.add_org_keys(request, resource_account);
        Ok(layers)
    }
}

/// Marks the organization keys of `request` unknown: no organization was read.
pub fn unknown_org_keys(request: &mut crate::policy::Request, reason: &str) {
    for key in [
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
    ] {
        if request.context.get(key).is_none() {
            request.context.set_unknown(key, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> OrganizationSnapshot {
        let unit = |name: &str, parent: &str| OrganizationalUnit {
            name: name.into(),
            parent_id: parent.into(),
        };
        let account = |parent: &str| OrganizationAccount {
            name: String::new(),
            status: "ACTIVE".into(),
            parent_id: parent.into(),
            tags: BTreeMap::new(),
            scope: None,
        };
        OrganizationSnapshot {
            id: Some("o-abcdefghij".into()),
            management_account_id: Some("999999999999".into()),
            root_id: Some("r-root".into()),
            units: BTreeMap::from([
                ("ou-ml".into(), unit("ML", "r-root")),
                ("ou-consumers".into(), unit("Consumers", "ou-ml")),
            ]),
            accounts: BTreeMap::from([
                ("111111111111".into(), account("ou-consumers")),
                ("222222222222".into(), account("r-root")),
                ("333333333333".into(), account("ou-gone")),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn levels_run_from_the_root_to_the_account() {
        let org = tree();
        assert_eq!(
            org.levels("111111111111").unwrap(),
            ["r-root", "ou-ml", "ou-consumers", "111111111111"]
        );
        assert_eq!(org.ou_path("111111111111").unwrap(), "Root/ML/Consumers");
        assert_eq!(org.ou_path("222222222222").unwrap(), "Root");
        assert_eq!(
            org.org_path("111111111111").unwrap(),
            "o-abcdefghij/r-root/ou-ml/ou-consumers/"
        );
        // A parent that is not in the tree, or an account outside it, has no levels.
        assert!(org.levels("333333333333").is_err());
        assert!(org.levels("444444444444").is_err());
    }

    #[test]
    fn unread_parts_are_errors_not_empty_levels() {
        let mut org = tree();
        org.collection_errors
            .insert(PART_SCPS.into(), "AccessDeniedException".into());
        assert!(
            org.policy_levels("111111111111", OrganizationPolicyType::ServiceControlPolicy)
                .is_err()
        );
        let rcps = org
            .policy_levels(
                "111111111111",
                OrganizationPolicyType::ResourceControlPolicy,
            )
            .unwrap();
        assert_eq!(rcps.len(), 4);
        org.collection_errors
            .insert(PART_TREE.into(), "AccessDeniedException".into());
        assert!(org.ou_path("111111111111").is_none());
        let mut undescribed = tree();
        undescribed
            .collection_errors
            .insert(PART_ORGANIZATION.into(), "IncompleteResponse".into());
        assert!(
            undescribed
                .policy_levels(
                    "111111111111",
                    OrganizationPolicyType::ResourceControlPolicy
                )
                .is_err()
        );
    }
}
