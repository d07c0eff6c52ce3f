"""Loaded by Cloud Custodian's Python in the benchmarks (PYTHONPATH=bench/c7n-site): S3 Control
requests lose the account-id host label botocore adds (`{AccountId}.127.0.0.1` does not
resolve), as xscan's own emulator setting does."""

import os
import sys

import botocore.session

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "emulator"))
from s3control_host import strip_account_label  # noqa: E402

_create_client = botocore.session.Session.create_client


def create_client(self, service_name, *args, **kwargs):
    client = _create_client(self, service_name, *args, **kwargs)
    if service_name == "s3control":
        client.meta.events.register("before-send.s3-control", strip_account_label)
    return client


botocore.session.Session.create_client = create_client
