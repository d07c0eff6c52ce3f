"""Seeds the seed architecture into a moto server, as an operator would with boto3.

Consumer account: VPC, subnet, route table, S3 gateway endpoint with a policy restricted to the
data account, a security group whose only egress is the S3 prefix list, the SageMaker
execution role, a notebook. Data account: the bucket (Block Public Access, encryption,
ownership enforced, versioning, delegation + TLS-only policy), the access point granting only
the execution role, the account public access block.

--drift NAME applies one drift (see DRIFTS); with --existing, the drift is applied to an estate
seeded earlier instead (as a later change would; ap-write and bucket-no-tls). --notebooks N seeds N notebooks (and as many
security groups), --endpoints N that many S3 gateway endpoints (each on its own route table) and
--access-points N that many access points, for benchmarks.

Usage: python seed.py --endpoint URL --consumer ACCOUNT --data ACCOUNT --bucket NAME [--drift NAME]
"""

import argparse
import json

import boto3
from botocore.config import Config

from s3control_host import strip_account_label

REGION = "us-east-1"
DRIFTS = [
    "direct-internet",
    "root-access",
    "egress-open",
    "endpoint-open",
    "ap-public",
    "ap-write",
    "bucket-no-delegation",
    "bucket-no-tls",
    "trust-widened",
    "role-direct-bucket",
]


def session_for(endpoint, account):
    """Credentials that land in `account`: moto maps an assumed role's keys to its account."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/xscan-seed",
                            RoleSessionName="seed")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


def client(session, service, endpoint):
    c = session.client(service, endpoint_url=endpoint,
                       config=Config(inject_host_prefix=False, s3={"addressing_style": "path"}))
    if service == "s3control":
        c.meta.events.register("before-send.s3-control", strip_account_label)
    return c


def seed_consumer(endpoint, consumer, data, bucket, ap_arn, drift, notebooks, endpoints=1,
                  managed_policy=False):
    s = session_for(endpoint, consumer)
    ec2 = client(s, "ec2", endpoint)
    iam = client(s, "iam", endpoint)
    sm = client(s, "sagemaker", endpoint)

    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    lists = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{REGION}.s3"]}])["PrefixLists"]
    prefix_list = lists[0]["PrefixListId"]

    endpoint_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyDataAccountResources", "Effect": "Allow", "Principal": "*",
        "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*",
        "Condition": {"StringEquals": {"s3:ResourceAccount": data}}}]}
    if drift == "endpoint-open":
        endpoint_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                            VpcEndpointType="Gateway", RouteTableIds=[rtb],
                            PolicyDocument=json.dumps(endpoint_policy))
    # More S3 gateway endpoints (benchmarks), each on its own route table, as AWS requires.
    for _ in range(1, endpoints):
        extra = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                                VpcEndpointType="Gateway", RouteTableIds=[extra],
                                PolicyDocument=json.dumps(endpoint_policy))

    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    if drift == "trust-widened":
        trust["Statement"][0]["Principal"]["AWS"] = "arn:aws:iam::333333333333:root"
    role_arn = iam.create_role(RoleName="xscan-sagemaker-exec",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    inline = {"Version": "2012-10-17", "Statement": [{
        "Sid": "DatasetThroughAccessPoint", "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [ap_arn, ap_arn + "/object/*"]}]}
    if drift == "role-direct-bucket":
        inline["Statement"].append({"Effect": "Allow", "Action": "s3:GetObject",
                                    "Resource": f"arn:aws:s3:::{bucket}/*"})
    iam.put_role_policy(RoleName="xscan-sagemaker-exec", PolicyName="dataset-access",
                        PolicyDocument=json.dumps(inline))
    if managed_policy:
        # A customer managed policy for the notebook's logs, as execution roles usually carry.
        logs = {"Version": "2012-10-17", "Statement": [{
            "Sid": "NotebookLogs", "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:{REGION}:{consumer}:log-group:/aws/sagemaker/*"}]}
        policy_arn = iam.create_policy(PolicyName="xscan-sagemaker-logs",
                                       PolicyDocument=json.dumps(logs))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="xscan-sagemaker-exec", PolicyArn=policy_arn)

    for i in range(notebooks):
        sg = ec2.create_security_group(GroupName=f"xscan-notebook-{i}", Description="notebook",
                                       VpcId=vpc)["GroupId"]
        ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "PrefixListIds": [{"PrefixListId": prefix_list}]}])
        if drift == "egress-open" and i == 0:
            ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                 "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        name = "ml-notebook-1" if i == 0 else f"ml-notebook-{i + 1}"
        sm.create_notebook_instance(
            NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=role_arn,
            SubnetId=subnet, SecurityGroupIds=[sg],
            DirectInternetAccess="Enabled" if drift == "direct-internet" and i == 0 else "Disabled",
            RootAccess="Enabled" if drift == "root-access" and i == 0 else "Disabled",
            KmsKeyId=f"arn:aws:kms:{REGION}:{consumer}:key/0c0ffee0-0000-4000-8000-00000000a001")
    return role_arn


def seed_data(endpoint, data, bucket, ap_name, role_arn, drift, access_points):
    s = session_for(endpoint, data)
    s3 = client(s, "s3", endpoint)
    s3control = client(s, "s3control", endpoint)
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
             "BlockPublicPolicy": True, "RestrictPublicBuckets": True}

    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    statements = [{"Sid": "DelegateToAccessPoints", "Effect": "Allow", "Principal": {"AWS": "*"},
                   "Action": "*", "Resource": resources,
                   "Condition": {"StringEquals": {"s3:DataAccessPointAccount": data}}}]
    if drift == "bucket-no-delegation":
        del statements[0]["Condition"]
    if drift != "bucket-no-tls":
        statements.append({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
                           "Action": "s3:*", "Resource": resources,
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))

    for i in range(access_points):
        name = ap_name if i == 0 else f"{ap_name}-{i + 1}"
        s3control.create_access_point(AccountId=data, Name=name, Bucket=bucket,
                                      PublicAccessBlockConfiguration=block)
        arn = f"arn:aws:s3:{REGION}:{data}:accesspoint/{name}"
        principal = "*" if drift == "ap-public" and i == 0 else {"AWS": role_arn}
        actions = ["s3:GetObject", "s3:PutObject"] if drift == "ap-write" and i == 0 else "s3:GetObject"
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "ConsumerReadObjects", "Effect": "Allow", "Principal": principal,
             "Action": actions, "Resource": arn + "/object/*"},
            {"Sid": "ConsumerList", "Effect": "Allow", "Principal": principal,
             "Action": "s3:ListBucket", "Resource": arn}]}
        s3control.put_access_point_policy(AccountId=data, Name=name, Policy=json.dumps(policy))
    s3control.put_public_access_block(AccountId=data, PublicAccessBlockConfiguration=block)


def drift_existing(endpoint, consumer, data, bucket, ap_name, drift):
    """Applies a drift to an estate seeded earlier, as a later change in the account would."""
    s = session_for(endpoint, data)
    if drift == "ap-write":
        s3control = client(s, "s3control", endpoint)
        arn = f"arn:aws:s3:{REGION}:{data}:accesspoint/{ap_name}"
        principal = {"AWS": f"arn:aws:iam::{consumer}:role/xscan-sagemaker-exec"}
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "ConsumerReadObjects", "Effect": "Allow", "Principal": principal,
             "Action": ["s3:GetObject", "s3:PutObject"], "Resource": arn + "/object/*"},
            {"Sid": "ConsumerList", "Effect": "Allow", "Principal": principal,
             "Action": "s3:ListBucket", "Resource": arn}]}
        s3control.put_access_point_policy(AccountId=data, Name=ap_name, Policy=json.dumps(policy))
    elif drift == "bucket-no-tls":
        s3 = client(s, "s3", endpoint)
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        policy["Statement"] = [st for st in policy["Statement"] if st.get("Sid") != "DenyInsecureTransport"]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    else:
        raise SystemExit(f"--existing supports ap-write and bucket-no-tls, not {drift}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--access-point", default="test-ap-1")
    parser.add_argument("--drift", choices=DRIFTS)
    parser.add_argument("--notebooks", type=int, default=1)
    parser.add_argument("--access-points", type=int, default=1)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--existing", action="store_true")
    parser.add_argument("--managed-policy", action="store_true",
                        help="attach a customer managed (logs) policy to the execution role")
    args = parser.parse_args()
    if args.existing:
        drift_existing(args.endpoint, args.consumer, args.data, args.bucket, args.access_point,
                       args.drift)
        return
    ap_arn = f"arn:aws:s3:{REGION}:{args.data}:accesspoint/{args.access_point}"
    role_arn = seed_consumer(args.endpoint, args.consumer, args.data, args.bucket, ap_arn,
                             args.drift, args.notebooks, args.endpoints, args.managed_policy)
    seed_data(args.endpoint, args.data, args.bucket, args.access_point, role_arn, args.drift,
              args.access_points)


if __name__ == "__main__":
    main()
