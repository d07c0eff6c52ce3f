//! AWS Organizations: the organization, its OU tree, accounts with their tags, and its SCPs and
//! RCPs with their documents and targets, read from the management account or a delegated
//! administrator. A part that fails is named in the organization's `collection_errors` and is
//! a gap of the scan: rules that need it answer `error`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::PolicyType;

use crate::model::{
    CollectionGap, OrganizationAccount, OrganizationPolicy, OrganizationPolicyType,
    OrganizationSnapshot, OrganizationalUnit, PART_ORGANIZATION, PART_TAGS, PART_TREE,
    PolicyRecord,
};

use super::{Calls, error_text, incomplete};

/// A tree deeper than AWS allows (five OU levels) is not walked further.
const MAX_DEPTH: usize = 8;

/// Reads the organization. `reader` is the account whose identity reads it (for gaps).
pub(crate) async fn collect(
    sdk: &SdkConfig,
    calls: &Calls,
    reader: &str,
) -> (OrganizationSnapshot, Vec<CollectionGap>) {
    let client = Client::from_conf(
        super::client_config!(aws_sdk_organizations, sdk, calls, "organizations").build(),
    );
    let mut org = OrganizationSnapshot::default();
    let mut gaps = Vec::new();
    let mut fail = |org: &mut OrganizationSnapshot, part: &str, api: &str, error: String| {
        tracing::warn!(api, %error, "organization read failed");
        gaps.push(CollectionGap {
            account: reader.to_string(),
            region: None,
            service: "organizations".into(),
            api_call: api.into(),
            resource_types: Vec::new(),
            resource_id: Some(part.to_string()),
            error: error.clone(),
        });
        org.collection_errors
            .entry(part.to_string())
            .or_insert(error);
    };

    match calls
        .run(
            "organizations:DescribeOrganization",
            client.describe_organization().send(),
        )
        .await
    {
        Ok(output) => match output.organization() {
            // The management account decides whom SCPs and RCPs spare: without it, nothing.
            Some(o)
                if o.id().is_some_and(|id| !id.is_empty())
                    && o.master_account_id().is_some_and(|id| !id.is_empty()) =>
            {
                org.id = o.id().map(str::to_string);
                org.management_account_id = o.master_account_id().map(str::to_string);
            }
            _ => fail(
                &mut org,
                PART_ORGANIZATION,
                "DescribeOrganization",
                incomplete("the organization has no id or no management account"),
            ),
        },
        Err(e) => {
            // Without the organization nothing else can be read: one gap, every part unknown.
            let error = error_text(&e);
            fail(
                &mut org,
                PART_ORGANIZATION,
                "DescribeOrganization",
                error.clone(),
            );
            for part in crate::model::ORGANIZATION_PARTS {
                org.collection_errors
                    .entry(part.to_string())
                    .or_insert_with(|| error.clone());
            }
            return (org, gaps);
        }
    }

    if let Err((api, error)) = tree(&client, calls, &mut org).await {
        fail(&mut org, PART_TREE, api, error);
    }
    let tagged = tags(&client, calls, &org.accounts).await;
    for (id, result) in tagged {
        match result {
            Ok(tags) => {
                if let Some(account) = org.accounts.get_mut(&id) {
                    account.tags = tags;
                }
            }
            Err(error) => fail(
                &mut org,
                PART_TAGS,
                "ListTagsForResource",
                format!("{id}: {error}"),
            ),
        }
    }
    for kind in [
        OrganizationPolicyType::ServiceControlPolicy,
        OrganizationPolicyType::ResourceControlPolicy,
    ] {
        match policies(&client, calls, kind).await {
            Ok(policies) => org.policies.extend(policies),
            Err((api, error)) => fail(&mut org, kind.part(), api, error),
        }
    }
    (org, gaps)
}

type Failure = (&'static str, String);

/// The root, every OU under it (breadth first) and the accounts of each.
async fn tree(
    client: &Client,
    calls: &Calls,
    org: &mut OrganizationSnapshot,
) -> Result<(), Failure> {
    let roots = calls
        .run("organizations:ListRoots", client.list_roots().send())
        .await
        .map_err(|e| ("ListRoots", error_text(&e)))?;
    let root = roots
        .roots()
        .first()
        .and_then(|r| r.id())
        .filter(|id| !id.is_empty())
        .ok_or(("ListRoots", incomplete("the organization has no root")))?
        .to_string();
    org.root_id = Some(root.clone());
    let mut level = vec![root];
    for _ in 0..MAX_DEPTH {
        if level.is_empty() {
            return Ok(());
        }
        let mut next = Vec::new();
        for parent in &level {
            let mut token = None;
            loop {
                let page = calls
                    .run(
                        "organizations:ListOrganizationalUnitsForParent",
                        client
                            .list_organizational_units_for_parent()
                            .parent_id(parent)
                            .set_next_token(token.take())
                            .send(),
                    )
                    .await
                    .map_err(|e| ("ListOrganizationalUnitsForParent", error_text(&e)))?;
                for unit in page.organizational_units() {
                    let id = unit.id().filter(|id| !id.is_empty()).ok_or((
                        "ListOrganizationalUnitsForParent",
                        incomplete("an OU has no id"),
                    ))?;
                    org.units.insert(
                        id.to_string(),
                        OrganizationalUnit {
                            name: unit.name().unwrap_or_default().to_string(),
                            parent_id: parent.clone(),
                        },
                    );
                    next.push(id.to_string());
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut token = None;
            loop {
                let page = calls
                    .run(
                        "organizations:ListAccountsForParent",
                        client
                            .list_accounts_for_parent()
                            .parent_id(parent)
                            .set_next_token(token.take())
                            .send(),
                    )
                    .await
                    .map_err(|e| ("ListAccountsForParent", error_text(&e)))?;
                for account in page.accounts() {
                    let id = account
                        .id()
                        .filter(|id| !id.is_empty())
                        .ok_or(("ListAccountsForParent", incomplete("an account has no id")))?;
                    // `State` replaces the deprecated `Status`; either says whether it is active.
                    let status = account
                        .state()
                        .map(|s| s.as_str().to_string())
                        .or_else(|| account.status().map(|s| s.as_str().to_string()))
                        .ok_or((
                            "ListAccountsForParent",
                            incomplete(&format!("account {id} has no status")),
                        ))?;
                    org.accounts.insert(
                        id.to_string(),
                        OrganizationAccount {
                            name: account.name().unwrap_or_default().to_string(),
                            status,
                            parent_id: parent.clone(),
                            tags: BTreeMap::new(),
                            scope: None,
                        },
                    );
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        level = next;
    }
    Err((
        "ListOrganizationalUnitsForParent",
        format!("the OU tree is deeper than {MAX_DEPTH} levels (AWS allows five)"),
    ))
}

/// Each account's tags (role selectors may read them; they travel on results).
async fn tags(
    client: &Client,
    calls: &Calls,
    accounts: &BTreeMap<String, OrganizationAccount>,
) -> Vec<(String, Result<BTreeMap<String, String>, String>)> {
    futures::future::join_all(accounts.keys().map(|id| async move {
        let mut tags = BTreeMap::new();
        let mut token = None;
        loop {
            match calls
                .run(
                    "organizations:ListTagsForResource",
                    client
                        .list_tags_for_resource()
                        .resource_id(id)
                        .set_next_token(token.take())
                        .send(),
                )
                .await
            {
                Ok(page) => {
                    for tag in page.tags() {
                        tags.insert(tag.key().to_string(), tag.value().to_string());
                    }
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        return (id.clone(), Ok(tags));
                    }
                }
                Err(e) => return (id.clone(), Err(error_text(&e))),
            }
        }
    }))
    .await
}

/// Every policy of `kind`, with its document and targets.
async fn policies(
    client: &Client,
    calls: &Calls,
    kind: OrganizationPolicyType,
) -> Result<BTreeMap<String, OrganizationPolicy>, Failure> {
    let filter = PolicyType::from(kind.as_str());
    let mut summaries = Vec::new();
    let mut token = None;
    loop {
        let page = calls
            .run(
                "organizations:ListPolicies",
                client
                    .list_policies()
                    .filter(filter.clone())
                    .set_next_token(token.take())
                    .send(),
            )
            .await
            .map_err(|e| ("ListPolicies", error_text(&e)))?;
        for summary in page.policies() {
            let id = summary
                .id()
                .filter(|id| !id.is_empty())
                .ok_or(("ListPolicies", incomplete("a policy has no id")))?;
            summaries.push((
                id.to_string(),
                summary.name().unwrap_or_default().to_string(),
                summary.aws_managed(),
            ));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut policies = BTreeMap::new();
    for (id, name, aws_managed) in summaries {
        let described = calls
            .run(
                "organizations:DescribePolicy",
                client.describe_policy().policy_id(&id).send(),
            )
            .await
            .map_err(|e| ("DescribePolicy", format!("{id}: {}", error_text(&e))))?;
        let content = described.policy().and_then(|p| p.content()).ok_or((
            "DescribePolicy",
            incomplete(&format!("policy {id} has no content")),
        ))?;
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let page = calls
                .run(
                    "organizations:ListTargetsForPolicy",
                    client
                        .list_targets_for_policy()
                        .policy_id(&id)
                        .set_next_token(token.take())
                        .send(),
                )
                .await
                .map_err(|e| ("ListTargetsForPolicy", format!("{id}: {}", error_text(&e))))?;
            for target in page.targets() {
                let target_id = target.target_id().filter(|t| !t.is_empty()).ok_or((
                    "ListTargetsForPolicy",
                    incomplete(&format!("a target of policy {id} has no id")),
                ))?;
                targets.push(target_id.to_string());
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        targets.sort();
        policies.insert(
            id,
            OrganizationPolicy {
                policy: PolicyRecord::from_raw(&name, content),
                name,
                policy_type: kind,
                aws_managed,
                targets,
            },
        );
    }
    Ok(policies)
}
