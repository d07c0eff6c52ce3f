"""Turns on IAM enforcement in a moto server for a least-privilege test.

Creates, in every given account, the role `xscan-audit` with the given policy (what
`xscan permissions` prints, possibly minus an action), and in the scanner account a user allowed
to assume those roles; prints the user's access key as JSON; then asks moto to enforce IAM
from the next request on (POST /moto-api/reset-auth with 0).

Usage: python enforce.py --endpoint URL --scanner ACCOUNT --policy FILE ACCOUNT...
"""

import argparse
import json
import urllib.request

from seed import REGION, client, session_for


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--scanner", required=True)
    parser.add_argument("--policy", required=True)
    parser.add_argument("accounts", nargs="+")
    args = parser.parse_args()
    policy = json.loads(open(args.policy).read())
    # moto authorizes some S3 reads under other action names than AWS does: unmapped bucket
    # sub-resources (?encryption, ?ownershipControls, ?publicAccessBlock) as s3:ListBucket, and
    # S3 Control's account GetPublicAccessBlock as s3:GetPublicAccessBlock. Grant those aliases
    # so that only the action the test removed is missing.
    policy["Statement"][0]["Action"] += ["s3:ListBucket", "s3:GetPublicAccessBlock"]
    policy = json.dumps(policy)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{args.scanner}:root"},
        "Action": "sts:AssumeRole"}]})
    for account in args.accounts:
        iam = client(session_for(args.endpoint, account), "iam", args.endpoint)
        iam.create_role(RoleName="xscan-audit", AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName="xscan-audit", PolicyName="xscan", PolicyDocument=policy)
    iam = client(session_for(args.endpoint, args.scanner), "iam", args.endpoint)
    iam.create_user(UserName="xscan")
    iam.put_user_policy(UserName="xscan", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:GetCallerIdentity"],
            "Resource": "*"}]}))
    key = iam.create_access_key(UserName="xscan")["AccessKey"]
    print(json.dumps({"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}))
    request = urllib.request.Request(f"{args.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


if __name__ == "__main__":
    main()
