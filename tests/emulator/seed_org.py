"""Seeds an AWS Organization into a moto server, as its management account would with boto3.

Management account MGMT (reached by assuming a role into it) creates the organization, OUs
ML > Consumers, ML > Data and Sandbox (under the root), four accounts (consumer-a and
consumer-b in Consumers, dataset in Data, sandbox in Sandbox; tags xscan-role=consumer/data),
an SCP with the consumer guardrails on Consumers and an identity-perimeter RCP on Data. moto
creates the accounts with random ids and attaches FullAWSAccess / RCPFullAWSAccess to every
root, OU and account, as AWS does. Prints the ids as JSON.

Usage: python seed_org.py --endpoint URL --management ACCOUNT
"""

import argparse
import json

from seed import session_for


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--management", required=True)
    args = parser.parse_args()
    org = session_for(args.endpoint, args.management).client(
        "organizations", endpoint_url=args.endpoint)
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = org.list_roots()["Roots"][0]["Id"]
    for policy_type in ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"):
        try:
            org.enable_policy_type(RootId=root, PolicyType=policy_type)
        except org.exceptions.PolicyTypeAlreadyEnabledException:
            pass

    def unit(parent, name):
        return org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

    ml = unit(root, "ML")
    consumers = unit(ml, "Consumers")
    data = unit(ml, "Data")
    sandbox = unit(root, "Sandbox")

    def account(name, parent, tags):
        status = org.create_account(
            Email=f"{name}@example.com", AccountName=name,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["CreateAccountStatus"]
        account_id = status["AccountId"]
        org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        return account_id

    ids = {
        "organization": org_id,
        "root": root,
        "ml": ml,
        "consumers": consumers,
        "data_ou": data,
        "sandbox_ou": sandbox,
        "consumer": account("consumer-a", consumers, {"xscan-role": "consumer"}),
        "excluded": account("consumer-b", consumers, {"xscan-role": "consumer"}),
        "data": account("dataset", data, {"xscan-role": "data"}),
        "sandbox": account("sandbox", sandbox, {}),
    }
    guardrails = {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyNotebooksWithDirectInternet", "Effect": "Deny",
         "Action": ["sagemaker:CreateNotebookInstance"], "Resource": "*",
         "Condition": {"StringEquals": {"sagemaker:DirectInternetAccess": "Enabled"}}},
        {"Sid": "DenyNotebooksOutsideAVpc", "Effect": "Deny",
         "Action": ["sagemaker:CreateNotebookInstance"], "Resource": "*",
         "Condition": {"Null": {"sagemaker:VpcSubnets": "true"}}},
        {"Sid": "EnforceResourcePerimeter", "Effect": "Deny", "Action": ["s3:*"], "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {"aws:ResourceOrgID": org_id}}},
    ]}
    identity = {"Version": "2012-10-17", "Statement": [
        {"Sid": "EnforceIdentityPerimeter", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:*", "sqs:*", "kms:*", "secretsmanager:*", "sts:*"], "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": org_id},
                       "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}},
    ]}
    for name, kind, document, target in (
        ("ml-consumer-guardrails", "SERVICE_CONTROL_POLICY", guardrails, consumers),
        ("dataset-identity-perimeter", "RESOURCE_CONTROL_POLICY", identity, data),
    ):
        policy = org.create_policy(Name=name, Description=name, Type=kind,
                                   Content=json.dumps(document))["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=policy, TargetId=target)
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
