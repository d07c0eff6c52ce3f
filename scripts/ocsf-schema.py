"""Regenerates schemas/ocsf-1.5.0-compliance-finding.schema.json from py-ocsf-models (the OCSF
models Prowler uses), for the tests that validate `xscan --format ocsf`. Not run by CI.

Usage: python3 -m venv /tmp/v && /tmp/v/bin/pip install py-ocsf-models==0.10.0 &&
       /tmp/v/bin/python scripts/ocsf-schema.py
"""

import json
import pathlib

from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

schema = ComplianceFinding.model_json_schema()
schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
schema["$comment"] = (
    "OCSF 1.5.0 Compliance Finding (class 2003), generated from the Pydantic models of "
    "py-ocsf-models 0.10.0 (Prowler's OCSF models) by scripts/ocsf-schema.py. Extra attributes "
    "(the cloud profile) are allowed, as OCSF profiles add them."
)
out = pathlib.Path(__file__).resolve().parent.parent / "schemas" / "ocsf-1.5.0-compliance-finding.schema.json"
out.write_text(json.dumps(schema, indent=1, sort_keys=True))
