"""Access tokens (docs/access.md) on the deployed stack: a token scoped to upload into
release/2.11/* uploads there (as Bearer and as the Basic password), gets 403 elsewhere
and on every management route; a revoked or expired token gets 401; the table keeps
only the secret's SHA-256."""

import hashlib
import json
import os
import subprocess

from conftest import AWS_ENV, CACHE, curl, upload
from debs import make_deb, run_id

ALLOWED = "release/2.11/ubuntu/focal"
OTHER = "release/3.0/ubuntu/focal"


def aws(stack, *args) -> dict:
    """The AWS CLI of the LocalStack install, against the deployed table."""
    out = subprocess.run([str(CACHE / "localstack-venv/bin/aws"), "dynamodb", *args,
                          "--table-name", stack.table, "--output", "json"],
                         env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    return json.loads(out.stdout or b"{}")


def api(stack, method, path, auth, body=None):
    args = ["-X", method, "-H", f"Authorization: {auth}"]
    if body is not None:
        args += ["-H", "content-type: application/json", "-d", json.dumps(body)]
    status, out = curl(*args, f"{stack.api}{path}")
    try:
        return status, json.loads(out)
    except ValueError:
        return status, {"raw": out.decode(errors="replace")}


def basic(user) -> str:
    import base64
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


def issue(stack, user, scopes, **extra):
    status, body = api(stack, "POST", "/v1/tokens", basic(user),
                       {"scopes": scopes, "description": "e2e", **extra})
    assert status == 201, body
    return body


def deb(tmp_path, prefix):
    name = f"{prefix}-{run_id()}"
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(make_deb(name, "1.0"))
    return path


def test_a_scoped_token_uploads_where_it_may_and_nowhere_else(stack, user, tmp_path):
    issued = issue(stack, user, [f"upload:release/2.11/*"])
    token = issued["token"]
    bearer = f"Bearer {token}"

    # Where it may: as Bearer (curl -H) and as the Basic password (curl -u).
    first = deb(tmp_path, "cairn-tok-a")
    status, out = curl("-X", "PUT", "-H", f"Authorization: {bearer}",
                       "-F", f"{first.name}=@{first}", f"{stack.api}/{ALLOWED}")
    assert status == 201, out
    second = deb(tmp_path, "cairn-tok-b")
    status, body = upload(stack, ALLOWED, [(second.name, second)], user=("ci", token))
    assert status == 201, body

    # Elsewhere, and every management route: 403 naming the missing scope; nothing stored.
    third = deb(tmp_path, "cairn-tok-c")
    status, body = upload(stack, OTHER, [(third.name, third)], user=("ci", token))
    assert status == 403, body
    assert f"upload:{OTHER}" in body["detail"]
    status, out = curl(f"{stack.api}/{OTHER}/{third.name}")
    assert status == 404, out
    for method, path, payload, scope in [
        ("DELETE", f"/{ALLOWED}/{first.name}", None, f"delete:{ALLOWED}"),
        ("POST", "/v1/webhooks", {"url": "https://93.184.215.14/h", "events": ["ping"]},
         "webhooks"),
        ("GET", "/v1/webhooks", None, "webhooks"),
        ("POST", "/v1/tokens", {"scopes": ["upload:release/2.11/*"]}, "tokens"),
        ("GET", "/v1/tokens", None, "tokens"),
        ("POST", "/v1/archives", {"name": "tok", "url": "https://93.184.215.14/r.git",
                                  "ref": "main"}, "archive:tok"),
        ("GET", "/v1/events?subject=webhook:wh_x", None, "events"),
    ]:
        status, body = api(stack, method, path, bearer, payload)
        assert status == 403, (method, path, body)
        assert f"scope {scope}" in body["detail"], (method, path, body)
    status, body = api(stack, "GET", f"/{ALLOWED}/{first.name}", bearer)
    assert status == 200, "not deleted"

    # The table holds the secret's SHA-256 only, in the lookup item and the listing.
    token_id, secret = token[len("cairn_"):].split("_", 1)
    item = aws(stack, "get-item", "--consistent-read", "--key",
               json.dumps({"pk": {"S": f"TOKEN#{token_id}"}, "sk": {"S": "TOKEN"}}))["Item"]
    listed = aws(stack, "get-item", "--consistent-read", "--key",
                 json.dumps({"pk": {"S": f"USER#{user[0]}"}, "sk": {"S": f"TOKEN#{token_id}"}}))
    for stored in (item, listed["Item"]):
        text = json.dumps(stored)
        assert secret not in text and token not in text
        assert json.loads(stored["doc"]["S"])["secret_sha256"] == \
            hashlib.sha256(secret.encode()).hexdigest()


def test_revoked_and_expired_tokens_are_refused(stack, user, tmp_path):
    token = issue(stack, user, ["tokens", "upload:release/2.11/*"])["token"]
    token_id = token[len("cairn_"):].split("_", 1)[0]
    status, body = api(stack, "GET", "/v1/tokens", f"Bearer {token}")
    assert status == 200 and token_id in [t["id"] for t in body["tokens"]], body
    assert token not in json.dumps(body), "never the token in a listing"

    status, _ = api(stack, "DELETE", f"/v1/tokens/{token_id}", f"Bearer {token}")
    assert status == 204
    package = deb(tmp_path, "cairn-tok-revoked")
    status, body = upload(stack, ALLOWED, [(package.name, package)], user=("ci", token))
    assert status == 401, body
    assert "revoked" in body["detail"]
    status, body = api(stack, "GET", "/v1/tokens", basic(user))
    assert token_id not in [t["id"] for t in body["tokens"]]

    # Expired: the record's expiry moved into the past, as time would.
    token = issue(stack, user, ["upload:release/2.11/*"])["token"]
    token_id = token[len("cairn_"):].split("_", 1)[0]
    key = {"pk": {"S": f"TOKEN#{token_id}"}, "sk": {"S": "TOKEN"}}
    item = aws(stack, "get-item", "--consistent-read", "--key", json.dumps(key))["Item"]
    doc = json.loads(item["doc"]["S"])
    doc["expires_at"] = doc["created_at"] - 1
    item["doc"]["S"] = json.dumps(doc)
    aws(stack, "put-item", "--item", json.dumps(item))
    status, body = upload(stack, ALLOWED, [(package.name, package)], user=("ci", token))
    assert status == 401, body
    assert "expired" in body["detail"]


def test_a_token_cannot_hold_more_than_its_issuer(stack, user):
    narrow = issue(stack, user, ["tokens", "upload:release/2.11/*"])["token"]
    status, body = api(stack, "POST", "/v1/tokens", f"Bearer {narrow}",
                       {"scopes": ["upload:release/*"]})
    assert status == 403, body
    assert "upload:release/*" in body["detail"]
    status, body = api(stack, "POST", "/v1/tokens", basic(user), {"scopes": ["admin"]})
    assert status == 403, body
    for bad in ({"scopes": []}, {"scopes": ["upload:a*b"]}, {"scopes": ["fly"]},
                {"scopes": ["tokens"], "expires_in": 5}):
        status, body = api(stack, "POST", "/v1/tokens", basic(user), bad)
        assert status == 400, (bad, body)


def test_client_credentials_give_a_job_a_short_lived_token(stack, user, tmp_path):
    """OAuth 2.0 client credentials (RFC 6749, 4.4) with curl, as a stock client sends it."""
    status, out = curl("-u", f"{user[0]}:{user[1]}", "-d", "grant_type=client_credentials",
                       "--data-urlencode", "scope=upload:release/2.11/*", "-d", "expires_in=600",
                       f"{stack.api}/v1/oauth/token")
    assert status == 200, out
    answer = json.loads(out)
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600
    assert answer["scope"] == "upload:release/2.11/*"
    package = deb(tmp_path, "cairn-tok-job")
    status, body = upload(stack, ALLOWED, [(package.name, package)],
                          user=("job", answer["access_token"]))
    assert status == 201, body
    status, out = curl("-u", f"{user[0]}:wrong", "-d", "grant_type=client_credentials",
                       f"{stack.api}/v1/oauth/token")
    assert status == 401 and json.loads(out)["error"] == "invalid_client", out
    status, out = curl("-u", f"{user[0]}:{user[1]}", "-d", "grant_type=client_credentials",
                       "-d", "scope=admin", f"{stack.api}/v1/oauth/token")
    assert status == 400 and json.loads(out)["error"] == "invalid_scope", out
