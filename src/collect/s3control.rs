//! S3 Control: the access points of a region with their public access block, policy and policy
//! status, and the account-level public access block.

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use crate::model::{
    CollectionErrors, CollectionGap, PolicyRecord, PublicAccessBlock, ResourceType, S3AccessPoint,
    S3AccountSettings,
};

use super::{Calls, Session, detail_gap, error_code, error_text, listing_gap};

fn flags(c: &aws_sdk_s3control::types::PublicAccessBlockConfiguration) -> PublicAccessBlock {
    PublicAccessBlock {
        block_public_acls: c.block_public_acls().unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
        block_public_policy: c.block_public_policy().unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
    }
}

pub(crate) async fn access_points(
    sdk: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
    region: &str,
) -> (BTreeMap<String, S3AccessPoint>, Vec<CollectionGap>) {
    let client = session.s3control(sdk);
    let mut listed = Vec::new();
    let mut pages = client
        .list_access_points()
        .account_id(account)
        .into_paginator()
        .send();
    loop {
        match calls.run("s3:ListAccessPoints", pages.next()).await {
            None => break,
            Some(Ok(page)) => listed.extend(page.access_point_list().iter().cloned()),
            Some(Err(e)) => {
                let gap = listing_gap(
                    account,
                    Some(region),
                    "s3control",
                    "ListAccessPoints",
                    &[ResourceType::S3AccessPoint],
                    error_text(&e),
                );
                return (BTreeMap::new(), vec![gap]);
            }
        }
    }
    let details = futures::future::join_all(listed.iter().map(|ap| {
        let client = client.clone();
        let name = ap.name().to_string();
        async move {
            tokio::join!(
                calls.run(
                    "s3:GetAccessPoint",
                    client
                        .get_access_point()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
                calls.run(
                    "s3:GetAccessPointPolicy",
                    client
                        .get_access_point_policy()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
                calls.run(
                    "s3:GetAccessPointPolicyStatus",
                    client
                        .get_access_point_policy_status()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
            )
        }
    }))
    .await;
    let mut out = BTreeMap::new();
    let mut gaps = Vec::new();
    for (ap, (detail, policy, status)) in listed.iter().zip(details) {
        let name = ap.name().to_string();
        let mut errors = CollectionErrors::new();
        let mut point = S3AccessPoint {
            name: name.clone(),
            arn: ap.access_point_arn().map_or_else(
                || format!("arn:aws:s3:{region}:{account}:accesspoint/{name}"),
                str::to_string,
            ),
            bucket: ap.bucket().to_string(),
            bucket_account: ap.bucket_account_id().map(str::to_string),
            network_origin: ap.network_origin().as_str().to_string(),
            vpc_id: ap.vpc_configuration().map(|v| v.vpc_id().to_string()),
            ..Default::default()
        };
        match detail {
            Ok(d) => point.public_access_block = d.public_access_block_configuration().map(flags),
            Err(e) => {
                let error = error_text(&e);
                gaps.push(detail_gap(
                    account,
                    Some(region),
                    "s3control",
                    "GetAccessPoint",
                    &name,
                    error.clone(),
                ));
                errors.insert("public_access_block".into(), error);
            }
        }
        match policy {
            Ok(p) => {
                point.policy = p
                    .policy()
                    .map(|doc| PolicyRecord::from_raw(&format!("{name} access point policy"), doc))
            }
            Err(e) if error_code(&e).as_deref() == Some("NoSuchAccessPointPolicy") => {}
            Err(e) => {
                let error = error_text(&e);
                gaps.push(detail_gap(
                    account,
                    Some(region),
                    "s3control",
                    "GetAccessPointPolicy",
                    &name,
                    error.clone(),
                ));
                errors.insert("policy".into(), error);
            }
        }
        match status {
            Ok(s) => point.policy_status_is_public = s.policy_status().map(|p| p.is_public()),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchAccessPointPolicy") => {}
            Err(e) => gaps.push(detail_gap(
                account,
                Some(region),
                "s3control",
                "GetAccessPointPolicyStatus",
                &name,
                error_text(&e),
            )),
        }
        point.collection_errors = errors;
        out.insert(name, point);
    }
    (out, gaps)
}

pub(crate) async fn account_settings(
    sdk: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
) -> (Option<S3AccountSettings>, Vec<CollectionGap>) {
    let client = session.s3control(sdk);
    match calls
        .run(
            "s3:GetAccountPublicAccessBlock",
            client.get_public_access_block().account_id(account).send(),
        )
        .await
    {
        Ok(o) => (
            Some(S3AccountSettings {
                public_access_block: o.public_access_block_configuration().map(flags),
                collection_errors: CollectionErrors::new(),
            }),
            Vec::new(),
        ),
        Err(e) if error_code(&e).as_deref() == Some("NoSuchPublicAccessBlockConfiguration") => {
            (Some(S3AccountSettings::default()), Vec::new())
        }
        Err(e) => {
            let error = error_text(&e);
            let gap = detail_gap(
                account,
                None,
                "s3control",
                "GetPublicAccessBlock",
                account,
                error.clone(),
            );
            (
                Some(S3AccountSettings {
                    public_access_block: None,
                    collection_errors: CollectionErrors::from([(
                        "public_access_block".to_string(),
                        error,
                    )]),
                }),
                vec![gap],
            )
        }
    }
}
