"""External Helm repositories on the deployed stack (docs/access.md, "External Helm
repositories"): created only when their URL serves a valid index.yaml with the given
credentials (nothing stored otherwise), indexed by the indexer Lambda into apps and
versions (GET /v1/apps), re-indexed incrementally (an unchanged index changes nothing,
a new version appears after the next run), hostile indexes and private or link-local
URLs refused, every run recorded as a repository.indexed event."""

import json
import time

import pytest

from chartserver import ChartServer, index_yaml
from debs import run_id
from test_tokens import api, basic


@pytest.fixture(scope="module")
def charts():
    try:
        server = ChartServer().start()
    except OSError as e:
        pytest.fail(f"cannot serve charts on 127.0.0.1:18421: {e}")
    yield server
    server.stop()


def create(stack, user, name, url, credentials=None, **extra):
    body = {"format": "external-helm", "name": name, "url": url, **extra}
    if credentials:
        body["credentials"] = {"username": credentials[0], "password": credentials[1]}
    return api(stack, "POST", "/v1/repositories", basic(user), body)


def runs(stack, user, name, count, timeout=120) -> list:
    """The repository's index runs, once there are at least `count`."""
    deadline = time.time() + timeout
    events = []
    while time.time() < deadline:
        status, body = api(stack, "GET", f"/v1/repositories/external/{name}/events", basic(user))
        assert status == 200, body
        events = [e for e in body["events"] if e["type"] == "repository.indexed"]
        if len(events) >= count:
            return events
        time.sleep(1)
    raise AssertionError(f"{count} index runs of {name} not seen in {timeout}s: {events}")


def apps(stack, user, query) -> dict:
    status, body = api(stack, "GET", f"/v1/apps?q={query}", basic(user))
    assert status == 200, body
    return {(a["name"], a["repository"]): a for a in body["apps"]}


def versions(stack, user, app, repository) -> list:
    status, body = api(stack, "GET", f"/v1/apps/{app}/versions", basic(user))
    assert status == 200, body
    return [v["version"] for v in body["versions"] if v["repository"] == repository]


def test_an_external_repository_is_checked_indexed_and_reindexed(stack, user, charts):
    run = run_id()
    name, chart = f"e2e-{run}", f"nginx-{run}"
    path = f"external/{name}"
    creds = ("ci", f"pw-{run}")
    url = charts.serve(f"/{run}/stable",
                       index_yaml([(chart, "1.0.0"), (chart, "1.1.0"), ("redis", "7.0.0")]),
                       credentials=creds)
    junk = charts.serve(f"/{run}/junk", "<html><body>not an index</body></html>")

    # Refused with a clear message, and nothing stored: wrong or no credentials, no index.
    for credentials, target, words in [
        ((creds[0], "wrong"), url, "refused the credentials"),
        (None, url, "refused the credentials"),
        (None, junk, "index.yaml"),
        (None, f"http://127.0.0.1:18421/{run}/nothing", "HTTP 404"),
    ]:
        status, body = create(stack, user, name, target, credentials)
        assert status == 400 and words in json.dumps(body), (target, body)
        assert api(stack, "GET", f"/v1/repositories/{path}", basic(user))[0] == 404
    # The check alone.
    status, body = api(stack, "POST", "/v1/repositories/validate", basic(user),
                       {"url": url, "credentials": {"username": creds[0], "password": creds[1]}})
    assert status == 200 and (body["charts"], body["versions"]) == (2, 3), body

    status, created = create(stack, user, name, url, creds)
    assert status == 201, created
    assert (created["path"], created["username"], created["url"]) == (path, "ci", url)
    assert creds[1] not in json.dumps(created)
    status, shown = api(stack, "GET", f"/v1/repositories/{path}", basic(user))
    assert status == 200 and creds[1] not in json.dumps(shown), shown

    first = runs(stack, user, name, 1)[-1]
    assert (first["data"]["status"], first["data"]["added"]) == ("indexed", 3), first
    listed = apps(stack, user, chart)
    assert listed[(chart, path)]["latest_version"] == "1.1.0", listed
    assert versions(stack, user, chart, path) == ["1.1.0", "1.0.0"]
    _, before = api(stack, "GET", f"/v1/repositories/{path}", basic(user))

    # The same index again: an unchanged run; the index state is not rewritten.
    status, queued = api(stack, "POST", f"/v1/repositories/{path}/index", basic(user))
    assert status == 202, queued
    again = runs(stack, user, name, 2)[-1]
    assert again["data"]["status"] == "unchanged", again
    _, after = api(stack, "GET", f"/v1/repositories/{path}", basic(user))
    assert after["index"] == before["index"], (before, after)

    # A new version appears after the next run.
    charts.serve(f"/{run}/stable",
                 index_yaml([(chart, "1.0.0"), (chart, "1.1.0"), (chart, "1.2.0"),
                             ("redis", "7.0.0")]),
                 credentials=creds)
    api(stack, "POST", f"/v1/repositories/{path}/index", basic(user))
    third = runs(stack, user, name, 3)[-1]
    assert (third["data"]["status"], third["data"]["added"]) == ("indexed", 1), third
    assert versions(stack, user, chart, path) == ["1.2.0", "1.1.0", "1.0.0"]

    # A hostile index later: a failed run with its reason; nothing indexed changes.
    laughs = "apiVersion: v1\na: &a [" + ",".join(["lol"] * 50) + "]\n"
    for prev, label in zip("abcdef", "bcdefg"):
        laughs += f"{label}: &{label} [" + ",".join([f"*{prev}"] * 50) + "]\n"
    charts.serve(f"/{run}/stable", laughs + "entries: {}\n", credentials=creds)
    api(stack, "POST", f"/v1/repositories/{path}/index", basic(user))
    failed = runs(stack, user, name, 4)[-1]
    assert failed["data"]["status"] == "failed" and "nodes" in failed["data"]["error"], failed
    assert versions(stack, user, chart, path) == ["1.2.0", "1.1.0", "1.0.0"]
    _, shown = api(stack, "GET", f"/v1/repositories/{path}", basic(user))
    assert shown["last_run"]["status"] == "failed", shown

    # Deleting it takes its apps.
    status, _ = api(stack, "DELETE", f"/v1/repositories/{path}", basic(user))
    assert status == 204
    assert (chart, path) not in apps(stack, user, chart)


def test_private_link_local_and_hostile_sources_are_refused(stack, user, charts):
    run = run_id()
    name = f"e2e-bad-{run}"
    deep = "apiVersion: v1\nentries: " + "[" * 200 + "]" * 200 + "\n"
    big = charts.serve(f"/{run}/big", b"apiVersion: v1\nentries: {}\n" + b"#" * (17 << 20))
    for url, words in [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://10.0.0.7/charts", "10.0.0.7"),
        ("http://127.0.0.1:18422/charts", "127.0.0.1"),
        ("file:///etc/passwd", "http or https"),
        (f"http://ci:pw@127.0.0.1:18421/{run}", "credentials"),
        (charts.serve(f"/{run}/deep", deep), "deep"),
        (big, "larger than"),
    ]:
        status, body = create(stack, user, name, url)
        assert 400 <= status < 500 and words in json.dumps(body), (url, status, body)
        assert api(stack, "GET", f"/v1/repositories/external/{name}", basic(user))[0] == 404
    # A malformed request body.
    status, body = api(stack, "POST", "/v1/repositories", basic(user),
                       {"format": "external-helm", "name": name})
    assert status == 400 and "url" in json.dumps(body), body


def test_cairns_own_helm_repositories_are_indexed_into_apps(stack, user, tmp_path):
    """A chart uploaded to one of Cairn's Helm repositories becomes an app once its
    publication is indexed (metadata-sync asks the indexer after each publication)."""
    from charts import make_chart
    from conftest import curl, upload

    repo = "release/3.0/helm/stable"
    name = f"cairn-app-{run_id()}"
    chart = tmp_path / f"{name}-0.3.0.tgz"
    chart.write_bytes(make_chart(name, "0.3.0"))
    status, body = upload(stack, repo, [(chart.name, chart)], user=user)
    assert status == 201, body
    deadline = time.time() + 120
    found = {}
    while time.time() < deadline:
        found = apps(stack, user, name)
        if (name, repo) in found:
            break
        time.sleep(1)
    assert found.get((name, repo), {}).get("latest_version") == "0.3.0", found
    assert versions(stack, user, name, repo) == ["0.3.0"]
    # Anonymous readers see a configured repository's apps too.
    status, out = curl(f"{stack.api}/v1/apps?q={name}")
    body = json.loads(out)
    assert status == 200 and [a["name"] for a in body["apps"]] == [name], body
