"""S3 Control on an emulator: botocore's endpoint rules put the account id in the host
(`{AccountId}.127.0.0.1`), which does not resolve; moto routes S3 Control by path, so the label
is dropped before sending. Used by seed.py and by the benchmark's Cloud Custodian runs."""


def strip_account_label(request, **_):
    scheme, rest = request.url.split("://", 1)
    host, path = rest.split("/", 1)
    labels = host.split(".", 1)
    if len(labels) == 2 and labels[0].isdigit() and len(labels[0]) == 12:
        request.url = f"{scheme}://{labels[1]}/{path}"
        request.headers["Host"] = labels[1]
