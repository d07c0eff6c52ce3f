//! IAM: only the roles the rules need (the notebooks' execution roles and configured roles),
//! with their trust policy, inline policies and attached managed policies' default versions.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;

use crate::model::{AttachedPolicy, CollectionErrors, CollectionGap, IamRole, PolicyRecord};

use super::{Calls, detail_gap, error_text};

pub(crate) async fn roles(
    sdk: &SdkConfig,
    calls: &Calls,
    account: &str,
    names: &BTreeSet<String>,
) -> (BTreeMap<String, IamRole>, Vec<CollectionGap>) {
    let client = aws_sdk_iam::Client::from_conf(
        super::client_config!(aws_sdk_iam, sdk, calls, "iam").build(),
    );
    let results =
        futures::future::join_all(names.iter().map(|name| role(&client, calls, account, name)))
            .await;
    let mut roles = BTreeMap::new();
    let mut gaps = Vec::new();
    for (role, role_gaps) in results {
        gaps.extend(role_gaps);
        roles.insert(role.name.clone(), role);
    }
    (roles, gaps)
}

async fn role(
    client: &aws_sdk_iam::Client,
    calls: &Calls,
    account: &str,
    name: &str,
) -> (IamRole, Vec<CollectionGap>) {
    let mut gaps = Vec::new();
    let mut errors = CollectionErrors::new();
    let mut role = IamRole {
        name: name.to_string(),
        arn: format!("arn:aws:iam::{account}:role/{name}"),
        ..Default::default()
    };
    let mut fail = |field: &str, api: &str, error: String, errors: &mut CollectionErrors| {
        gaps.push(detail_gap(account, None, "iam", api, name, error.clone()));
        errors.insert(field.to_string(), error);
    };
    match calls
        .run("iam:GetRole", client.get_role().role_name(name).send())
        .await
    {
        Ok(output) => {
            if let Some(r) = output.role() {
                role.arn = r.arn().to_string();
                role.role_id = Some(r.role_id().to_string());
                role.trust_policy = r
                    .assume_role_policy_document()
                    .map(|doc| PolicyRecord::from_raw(&format!("{name} trust policy"), doc));
            }
        }
        Err(e) => {
            let error = error_text(&e);
            for field in [
                "trust_policy",
                "inline_policies",
                "attached_policies",
                "identity_policies",
            ] {
                fail(field, "GetRole", error.clone(), &mut errors);
            }
            role.collection_errors = errors;
            return (role, gaps);
        }
    }

    // Inline policies.
    let mut inline_names = Vec::new();
    let mut pages = client
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    let mut inline_failed = None;
    loop {
        match calls.run("iam:ListRolePolicies", pages.next()).await {
            None => break,
            Some(Ok(page)) => inline_names.extend(page.policy_names().iter().cloned()),
            Some(Err(e)) => {
                inline_failed = Some(error_text(&e));
                break;
            }
        }
    }
    if let Some(error) = inline_failed {
        fail(
            "inline_policies",
            "ListRolePolicies",
            error.clone(),
            &mut errors,
        );
        fail("identity_policies", "ListRolePolicies", error, &mut errors);
    } else {
        let documents = futures::future::join_all(inline_names.iter().map(|policy| {
            calls.run(
                "iam:GetRolePolicy",
                client
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send(),
            )
        }))
        .await;
        for (policy, result) in inline_names.iter().zip(documents) {
            match result {
                Ok(output) => {
                    role.inline_policies.insert(
                        policy.clone(),
                        PolicyRecord::from_raw(
                            &format!("{name} inline policy {policy}"),
                            output.policy_document(),
                        ),
                    );
                }
                Err(e) => {
                    let error = error_text(&e);
                    fail(
                        "inline_policies",
                        "GetRolePolicy",
                        error.clone(),
                        &mut errors,
                    );
                    fail("identity_policies", "GetRolePolicy", error, &mut errors);
                }
            }
        }
    }

    // Attached managed policies: the default version's document.
    let mut attached = Vec::new();
    let mut pages = client
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    loop {
        match calls
            .run("iam:ListAttachedRolePolicies", pages.next())
            .await
        {
            None => break,
            Some(Ok(page)) => attached.extend(page.attached_policies().iter().cloned()),
            Some(Err(e)) => {
                let error = error_text(&e);
                fail(
                    "attached_policies",
                    "ListAttachedRolePolicies",
                    error.clone(),
                    &mut errors,
                );
                fail(
                    "identity_policies",
                    "ListAttachedRolePolicies",
                    error,
                    &mut errors,
                );
                break;
            }
        }
    }
    let documents = futures::future::join_all(attached.iter().map(|p| async {
        let arn = p.policy_arn().unwrap_or_default().to_string();
        let version = calls
            .run("iam:GetPolicy", client.get_policy().policy_arn(&arn).send())
            .await
            .map_err(|e| ("GetPolicy", error_text(&e)))?
            .policy()
            .and_then(|p| p.default_version_id().map(str::to_string))
            .ok_or(("GetPolicy", "the policy has no default version".to_string()))?;
        let document = calls
            .run(
                "iam:GetPolicyVersion",
                client
                    .get_policy_version()
                    .policy_arn(&arn)
                    .version_id(&version)
                    .send(),
            )
            .await
            .map_err(|e| ("GetPolicyVersion", error_text(&e)))?
            .policy_version()
            .and_then(|v| v.document().map(str::to_string));
        Ok::<_, (&str, String)>((version, document))
    }))
    .await;
    for (p, result) in attached.iter().zip(documents) {
        let policy_name = p.policy_name().unwrap_or_default().to_string();
        let label = format!("{name} attached policy {policy_name}");
        role.attached_policies.push(match result {
            Ok((version, document)) => AttachedPolicy {
                arn: p.policy_arn().unwrap_or_default().to_string(),
                name: policy_name,
                default_version_id: Some(version),
                document: document.map(|d| PolicyRecord::from_raw(&label, &d)),
            },
            Err((api, error)) => {
                // The document stays null: analyses of the role's policies report `error`.
                gaps.push(detail_gap(account, None, "iam", api, name, error));
                AttachedPolicy {
                    arn: p.policy_arn().unwrap_or_default().to_string(),
                    name: policy_name,
                    default_version_id: None,
                    document: None,
                }
            }
        });
    }
    role.collection_errors = errors;
    (role, gaps)
}
