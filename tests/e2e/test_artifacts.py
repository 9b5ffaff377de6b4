"""The artifact store (docs/builds.md "Artifacts") against the deployed stack: a build's
workspace travels from one worker to another through it, an `artifact` action saves
files that a later build restores; bytes go straight to S3 through presigned URLs,
which refuse bytes that do not hash to the blob's name; the same bytes are stored
once; another account and another project's job token cannot reach a project's
artifacts; `cairn artifact put/get` move a file and check its SHA-256."""

import base64
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request

from conftest import api_call, cairn_cli
from debs import run_id
from test_builds import CLI, build, put_project, start, wait_build, workers, ops  # noqa: F401


def http(method, url, data=None, headers=None, auth=None):
    req = urllib.request.Request(url, data=data, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if auth is not None:
        req.add_header("authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def bearer(stack, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    status, raw = http(method, f"{stack.api}{path}", data,
                       {"content-type": "application/json"}, f"Bearer {token}")
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}


def put_blob(upload, data):
    """PUT `data` to a presigned upload, with the headers it was signed with."""
    headers = {k: v for k, v in upload["headers"].items() if k != "content-length"}
    return http("PUT", upload["url"], data, headers)


def test_a_workspace_travels_between_workers_and_an_artifact_between_builds(
        stack, user, workers):  # noqa: F811
    project = f"carry-{run_id()}"
    made = ("pipelines:\n  - name: p\n    actions:\n"
            "      - action: shell\n        labels: [carry-a]\n"
            "        script: |\n          echo one > made-on-a.txt\n"
            "          mkdir -p tree/sub && echo leaf > tree/sub/leaf.txt\n"
            "          ln -s sub/leaf.txt tree/link\n"
            "      - action: artifact\n        labels: [carry-b]\n        save: tree\n"
            "        paths: [tree]\n"
            "      - action: shell\n        labels: [carry-b]\n"
            "        script: |\n          test \"$(cat made-on-a.txt)\" = one\n"
            "          test \"$(cat tree/link)\" = leaf\n          echo carried\n")
    assert put_project(stack, user, project, made)[0] == 201
    workers.start("w-carry-a", "carry-a")
    workers.start("w-carry-b", "carry-b")
    first = wait_build(stack, user, start(stack, user, project))
    assert first["state"] == "succeeded", json.dumps(first, indent=1)
    steps = first["steps"]
    assert [s["worker"] for s in steps] == ["w-carry-a", "w-carry-b", "w-carry-b"]
    saved = steps[1]["outputs"]
    assert saved["artifact"] == "tree" and saved["files"] == 1, saved
    # The second worker restored what the first left; the third step found it in place.
    assert "restoring the workspace saved after step 0" in _step_log(stack, user, first, 1)
    assert "restoring" not in _step_log(stack, user, first, 2)
    # The artifact is the project's, recorded with the build that saved it.
    status, listing, _ = api_call(stack, "GET", f"/v1/projects/{project}/artifacts", user=user)
    assert status == 200, listing
    [tree] = listing["artifacts"]
    assert (tree["name"], tree["sha256"], tree["build"]) == ("tree", saved["sha256"], first["id"])
    # A later build restores it (on any worker) and finds the files, link and all.
    uses = ("pipelines:\n  - name: p\n    actions:\n"
            "      - action: artifact\n        restore: tree\n"
            "      - action: shell\n        labels: [carry-a]\n"
            "        script: test \"$(cat tree/sub/leaf.txt)\" = leaf && test -L tree/link\n")
    assert put_project(stack, user, project, uses)[0] == 200
    second = wait_build(stack, user, start(stack, user, project))
    assert second["state"] == "succeeded", json.dumps(second, indent=1)
    assert second["steps"][0]["outputs"]["sha256"] == saved["sha256"]
    # A missing artifact fails its step with a clear reason.
    missing = uses.replace("restore: tree", "restore: nothing-here")
    assert put_project(stack, user, project, missing)[0] == 200
    failed = wait_build(stack, user, start(stack, user, project))
    assert failed["state"] == "failed", failed
    assert "no artifact nothing-here" in failed["steps"][0]["error"], failed["steps"][0]


def _step_log(stack, user, done, step):
    req = urllib.request.Request(f"{stack.api}/v1/builds/{done['id']}/log?step={step}")
    req.add_header("authorization", "Basic " + base64.b64encode(
        f"{user[0]}:{user[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode(errors="replace")


def test_blobs_are_checked_stored_once_and_kept_to_their_project(stack, user, ops):  # noqa: F811
    project, other = f"store-{run_id()}", f"store-other-{run_id()}"
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            "        labels: [store-test]\n        script: 'true'\n")
    assert put_project(stack, user, project, text)[0] == 201
    assert put_project(stack, user, other, text)[0] == 201
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    status, answer, _ = api_call(stack, "POST", f"/v1/projects/{project}/blobs",
                                 {"sha256": sha, "size": len(data)}, user)
    assert status == 200 and answer["stored"] is False, answer
    upload = answer["upload"]
    # Bytes that do not hash to the name are refused by S3 itself.
    tampered = bytearray(data)
    tampered[0] ^= 1
    status, raw = put_blob(upload, bytes(tampered))
    assert status == 400, (status, raw[:300])
    status, body, _ = api_call(stack, "PUT", f"/v1/projects/{project}/artifacts/data",
                               {"sha256": sha}, user)
    assert status == 400 and "upload it first" in body["detail"], body
    status, raw = put_blob(upload, data)
    assert status == 200, raw[:300]
    # The same bytes again: nothing to send.
    status, again, _ = api_call(stack, "POST", f"/v1/projects/{project}/blobs",
                                {"sha256": sha, "size": len(data)}, user)
    assert status == 200 and again["stored"] is True and again["upload"] is None, again
    status, named, _ = api_call(stack, "PUT", f"/v1/projects/{project}/artifacts/data",
                                {"sha256": sha}, user)
    assert status == 200 and named["size"] == len(data), named
    status, shown, _ = api_call(stack, "GET", f"/v1/projects/{project}/artifacts/data",
                                user=user)
    assert status == 200, shown
    status, raw = http("GET", shown["download"]["url"])
    assert status == 200 and raw == data
    # Another project of the same owner has its own blobs: the bytes are not there.
    status, body, _ = api_call(stack, "PUT", f"/v1/projects/{other}/artifacts/data",
                               {"sha256": sha}, user)
    assert status == 400, body
    # Bad input.
    for path, body, code in [
        (f"/v1/projects/{project}/blobs", {"sha256": "XYZ", "size": 1}, 400),
        (f"/v1/projects/{project}/blobs", {"sha256": sha, "size": 6 << 30}, 413),
        (f"/v1/projects/{project}/blobs", {"sha256": sha}, 400),
        ("/v1/projects/no-such-project/blobs", {"sha256": sha, "size": 1}, 404),
    ]:
        status, answer, _ = api_call(stack, "POST", path, body, user)
        assert status == code, (path, body, status, answer)
    status, body, _ = api_call(stack, "PUT", f"/v1/projects/{project}/artifacts/..hidden",
                               {"sha256": sha}, user)
    assert status == 400, body
    # Another account: no such project.
    stranger, password = "e2e-stranger", base64.b16encode(os.urandom(8)).decode()
    cairn_cli("user", "add", stranger, "--table", stack.table, stdin=password.encode())
    status, body, _ = api_call(stack, "GET", f"/v1/projects/{project}/artifacts/data",
                               user=(stranger, password))
    assert status == 404, body
    # A job's token reaches its own project's artifacts only, and only while the job runs.
    build_id = start(stack, user, other)
    status, job = bearer(stack, ops[1], "POST", "/v1/work",
                         {"worker": "e2e-store", "labels": ["store-test"], "wait": 15})
    assert status == 200 and job["build"] == build_id, job
    token = job["token"]
    assert bearer(stack, token, "GET", f"/v1/projects/{other}/artifacts")[0] == 200
    status, body = bearer(stack, token, "GET", f"/v1/projects/{project}/artifacts/data")
    assert status == 403, body
    status, body = bearer(stack, token, "POST", f"/v1/projects/{project}/blobs",
                          {"sha256": sha, "size": len(data)})
    assert status == 403, body
    base = f"/v1/builds/{build_id}/jobs/{job['job']}"
    # A workspace that was never uploaded is not accepted as the job's.
    status, body = bearer(stack, token, "POST", f"{base}/result",
                          {"exit_code": 0, "workspace": {"sha256": sha, "size": len(data)}})
    assert status == 400 and "upload it first" in body["detail"], body
    assert bearer(stack, token, "POST", f"{base}/result", {"exit_code": 0})[0] == 200
    assert bearer(stack, token, "GET", f"/v1/projects/{other}/artifacts")[0] == 401
    assert wait_build(stack, user, build_id)["state"] == "succeeded"


def test_the_cli_puts_and_gets_a_file_once(stack, user, tmp_path):
    project = f"cli-art-{run_id()}"
    text = "pipelines:\n  - name: p\n    actions:\n      - action: shell\n        script: 'true'\n"
    assert put_project(stack, user, project, text)[0] == 201
    status, body, _ = api_call(stack, "POST", "/v1/tokens",
                               {"scopes": [f"artifacts:{project}"], "description": "e2e"}, user)
    assert status == 201, body
    env = {k: v for k, v in os.environ.items() if k != "CAIRN_CONFIG"}
    env.update(CAIRN_API_URL=stack.api, CAIRN_TOKEN=body["token"])
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(5 << 20))

    def cli(*args):
        return subprocess.run([CLI, "artifact", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    first = cli("put", project, "big", str(source))
    assert first.returncode == 0 and "uploaded" in first.stderr, first.stderr
    second = cli("put", project, "big-again", str(source))
    assert second.returncode == 0 and "nothing sent" in second.stderr, second.stderr
    out = tmp_path / "back.bin"
    got = cli("get", project, "big-again", "--output", str(out))
    assert got.returncode == 0 and "checked" in got.stderr, got.stderr
    assert out.read_bytes() == source.read_bytes()
    listed = cli("list", project)
    assert listed.returncode == 0 and {line.split("\t")[0] for line in
                                       listed.stdout.splitlines()} == {"big", "big-again"}
    assert cli("delete", project, "big").returncode == 0
    gone = cli("get", project, "big", "--output", str(tmp_path / "gone"))
    assert gone.returncode != 0 and "no artifact big" in gone.stderr, gone.stderr
