"""Starts moto's server with one compatibility fix for the AWS SDK for Rust.

moto 5.2.5 names the XML root of REST-XML responses without a payload member
`<{Operation}Response>`; AWS (and the Smithy model the Rust SDK is generated from) uses the
output shape's name, and the Rust SDK rejects any other root ("encountered invalid XML root").
botocore ignores the root, which is why moto's own tests do not see it. This launcher renames
the root for the operations xscan calls, then runs `moto.server.main(argv)` unchanged.

Usage: python moto_server.py -H 127.0.0.1 -p PORT
"""

import sys

from moto.core import serialize
from moto.server import main

# Operation -> the root element AWS sends (from the SDK's generated deserializers).
EXPECTED_ROOTS = {
    "ListAccessPoints": "ListAccessPointsResult",
    "GetAccessPoint": "GetAccessPointResult",
    "GetAccessPointPolicy": "GetAccessPointPolicyResult",
    "GetAccessPointPolicyStatus": "GetAccessPointPolicyStatusResult",
    "GetBucketVersioning": "VersioningConfiguration",
}

_original = serialize.BaseXMLSerializer._serialized_result_to_response


def _serialized_result_to_response(self, resp, result, shape, serialized_result):
    expected = EXPECTED_ROOTS.get(self.operation_model.name)
    has_payload = shape is not None and "payload" in shape.serialization
    if expected is None or has_payload:
        return _original(self, resp, result, shape, serialized_result)
    wrapper = {expected: serialized_result}
    self._serialize_namespace_attribute(wrapper[expected])
    resp["body"] = self._serialize_body(wrapper)
    resp["headers"]["Content-Type"] = self.CONTENT_TYPE
    return resp


serialize.BaseXMLSerializer._serialized_result_to_response = _serialized_result_to_response

if __name__ == "__main__":
    main(sys.argv[1:])
