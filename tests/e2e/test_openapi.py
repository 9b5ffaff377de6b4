"""The OpenAPI description (docs/openapi.json, generated from the route descriptions by
`cairn openapi`) is what the deployed API serves at GET /v1/openapi.json, to anyone."""

import json
import pathlib

from conftest import curl

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_deployed_api_serves_its_openapi_description(stack):
    status, body = curl("-H", "Origin: https://docs.example.org", f"{stack.api}/v1/openapi.json")
    assert status == 200, body[:300]
    served = json.loads(body)
    assert served == json.loads((ROOT / "docs/openapi.json").read_text())
    assert served["openapi"].startswith("3.1")
    assert "/v1/openapi.json" in served["paths"]
