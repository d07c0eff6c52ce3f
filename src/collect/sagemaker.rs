//! SageMaker notebook instances: list, then describe each (concurrently).

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use crate::model::{CollectionErrors, CollectionGap, NotebookInstance, ResourceType};

use super::{Calls, detail_gap, error_text, listing_gap};

/// Fields a failed DescribeNotebookInstance leaves unknown.
const DETAIL_FIELDS: [&str; 8] = [
    "subnet_id",
    "security_groups",
    "direct_internet_access",
    "root_access",
    "kms_key_id",
    "role_arn",
    "platform_identifier",
    "imds_version",
];

pub(crate) async fn collect(
    sdk: &SdkConfig,
    calls: &Calls,
    account: &str,
    region: &str,
) -> (BTreeMap<String, NotebookInstance>, Vec<CollectionGap>) {
    let client = aws_sdk_sagemaker::Client::from_conf(
        super::client_config!(aws_sdk_sagemaker, sdk, calls, "sagemaker").build(),
    );
    let mut summaries = Vec::new();
    let mut pages = client.list_notebook_instances().into_paginator().send();
    loop {
        match calls
            .run("sagemaker:ListNotebookInstances", pages.next())
            .await
        {
            None => break,
            Some(Ok(page)) => summaries.extend(page.notebook_instances().iter().cloned()),
            Some(Err(e)) => {
                let gap = listing_gap(
                    account,
                    Some(region),
                    "sagemaker",
                    "ListNotebookInstances",
                    &[ResourceType::SagemakerNotebook],
                    error_text(&e),
                );
                return (BTreeMap::new(), vec![gap]);
            }
        }
    }
    let described = futures::future::join_all(summaries.iter().map(|summary| {
        let client = client.clone();
        let name = summary
            .notebook_instance_name()
            .unwrap_or_default()
            .to_string();
        async move {
            let result = calls
                .run(
                    "sagemaker:DescribeNotebookInstance",
                    client
                        .describe_notebook_instance()
                        .notebook_instance_name(&name)
                        .send(),
                )
                .await;
            (name, result)
        }
    }))
    .await;
    let mut notebooks = BTreeMap::new();
    let mut gaps = Vec::new();
    for (summary, (name, result)) in summaries.iter().zip(described) {
        let arn = summary
            .notebook_instance_arn()
            .unwrap_or_default()
            .to_string();
        let notebook = match result {
            Ok(d) => NotebookInstance {
                name: name.clone(),
                arn: d.notebook_instance_arn().map_or(arn, str::to_string),
                status: d.notebook_instance_status().map(|s| s.as_str().into()),
                subnet_id: d.subnet_id().map(Into::into),
                security_groups: d.security_groups().to_vec(),
                direct_internet_access: d.direct_internet_access().map(|v| v.as_str().into()),
                root_access: d.root_access().map(|v| v.as_str().into()),
                kms_key_id: d.kms_key_id().map(Into::into),
                role_arn: d.role_arn().map(Into::into),
                platform_identifier: d.platform_identifier().map(Into::into),
                imds_version: d.instance_metadata_service_configuration().and_then(|c| {
                    c.minimum_instance_metadata_service_version()
                        .map(Into::into)
                }),
                collection_errors: CollectionErrors::new(),
            },
            Err(e) => {
                let error = error_text(&e);
                gaps.push(detail_gap(
                    account,
                    Some(region),
                    "sagemaker",
                    "DescribeNotebookInstance",
                    &name,
                    error.clone(),
                ));
                NotebookInstance {
                    name: name.clone(),
                    arn,
                    status: summary
                        .notebook_instance_status()
                        .map(|s| s.as_str().into()),
                    collection_errors: DETAIL_FIELDS
                        .iter()
                        .map(|f| (f.to_string(), error.clone()))
                        .collect(),
                    ..Default::default()
                }
            }
        };
        notebooks.insert(name, notebook);
    }
    (notebooks, gaps)
}
