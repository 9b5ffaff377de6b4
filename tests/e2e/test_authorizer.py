"""The API Gateway Lambda authorizer (docs/access.md, "Where the check runs").

LocalStack stores authorizers and does not invoke them, so the deployed function is
invoked here as API Gateway would (a REQUEST authorizer event) and its answers are
checked; the template is checked to put exactly the routes that always take
credentials behind it (the OpenAPI description says which those are)."""

import base64
import json
import os
import pathlib
import re
import subprocess

from conftest import AWS_ENV, CACHE
from debs import run_id
from test_tokens import api, basic, issue

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARN = "arn:aws:execute-api:us-east-1:000000000000:abc123/v1/PUT/release/2.11/ubuntu/focal"
ROUTE = re.compile(r'Properties: \{ RestApiId: !Ref Api, Path: ("?)(.+?)\1, Method: (\w+)'
                   r'(, Auth: \{ Authorizer: (\w+) \})? \}')


def routes_behind_the_authorizer() -> tuple[set, set]:
    """(every API route of template.yaml, those naming the authorizer)."""
    every, behind = set(), set()
    for line in (ROOT / "template.yaml").read_text().splitlines():
        if "RestApiId: !Ref Api" not in line:
            continue
        m = ROUTE.search(line)
        assert m, f"an API event line this test cannot read: {line.strip()}"
        route = (m.group(3).upper(), m.group(2))
        every.add(route)
        if m.group(5):
            assert m.group(5) == "CairnAuthorizer", line
            behind.add(route)
    return every, behind


def test_exactly_the_routes_that_always_take_credentials_are_behind_the_authorizer():
    spec = json.loads((ROOT / "docs/openapi.json").read_text())
    mandatory, documented = set(), set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            documented.add((method.upper(), path))
            if op.get("security") == [{"basic": []}]:
                mandatory.add((method.upper(), path))
    # Client credentials may come in the form body (client_secret_post).
    mandatory.discard(("POST", "/v1/oauth/token"))
    every, behind = routes_behind_the_authorizer()
    assert behind == mandatory, (sorted(behind - mandatory), sorted(mandatory - behind))
    # Anonymous reads (public listings, the files read path, the event stream) stay
    # outside: API Gateway would answer them 401 without calling anything.
    for route in [("GET", "/v1/files/{key+}"), ("GET", "/v1/events"),
                  ("GET", "/{kind}/{series}/{dist}/{ver}"), ("GET", "/v1/repositories")]:
        assert route in every and route not in behind, route
    assert documented <= every, sorted(documented - every)


def function_name() -> str:
    out = subprocess.run(
        [str(CACHE / "localstack-venv/bin/aws"), "cloudformation", "describe-stack-resource",
         "--stack-name", os.environ.get("CAIRN_STACK", "cairn"),
         "--logical-resource-id", "Authorizer", "--output", "json"],
        env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    return json.loads(out.stdout)["StackResourceDetail"]["PhysicalResourceId"]


def authorize(name: str, headers: dict, tmp_path) -> tuple[bool, dict]:
    """Invokes the authorizer: (succeeded, its answer or its error)."""
    event = {"type": "REQUEST", "methodArn": ARN, "headers": headers,
             "httpMethod": "PUT", "path": "/release/2.11/ubuntu/focal"}
    out = tmp_path / f"answer-{run_id()}.json"
    done = subprocess.run(
        [str(CACHE / "localstack-venv/bin/aws"), "lambda", "invoke", "--function-name", name,
         "--payload", json.dumps(event),
         "--output", "json", str(out)],
        env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    meta = json.loads(done.stdout)
    return "FunctionError" not in meta, json.loads(out.read_text())


def test_the_authorizer_allows_the_stage_for_good_credentials_and_refuses_the_rest(
        stack, user, tmp_path):
    name = function_name()
    token = issue(stack, user, ["upload:release/2.11/*", "read"])
    for header in (f"Bearer {token['token']}", basic(user),
                   "Basic " + base64.b64encode(f"ci:{token['token']}".encode()).decode()):
        ok, answer = authorize(name, {"Authorization": header}, tmp_path)
        assert ok, answer
        assert answer["principalId"] == user[0], answer
        statement = answer["policyDocument"]["Statement"][0]
        assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow",
                             "Resource": "arn:aws:execute-api:us-east-1:000000000000:abc123/v1/*"}
        carried = json.loads(answer["context"]["cairn_principal"])
        assert carried["name"] == user[0], carried
        if header.startswith("Bearer"):
            assert carried["token"] == token["id"], carried
            assert sorted(carried["scopes"]) == ["read:*", "upload:release/2.11/*"], carried
    # The header in another case is found too.
    ok, _ = authorize(name, {"authorization": f"Bearer {token['token']}"}, tmp_path)
    assert ok
    # Wrong password, garbage, no header, a revoked token: "Unauthorized" (a 401).
    status, _ = api(stack, "DELETE", f"/v1/tokens/{token['id']}", basic(user))
    assert status in (200, 204)
    for headers in ({"Authorization": basic((user[0], "wrong"))},
                    {"Authorization": "Bearer cairn_nonsense"},
                    {"Authorization": f"Bearer {token['token']}"},
                    {}):
        ok, answer = authorize(name, headers, tmp_path)
        assert not ok and answer.get("errorMessage") == "Unauthorized", (headers, answer)
