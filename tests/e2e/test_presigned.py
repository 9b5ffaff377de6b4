"""Done-means 2: a package above the API limit is refused by the API with a pointer to
presigned uploads, goes through a presigned S3 upload, and installs the same way."""

import json
import time

from conftest import curl, sha256
from debs import big_deb, run_id

REPO = "release/2.11/ubuntu/focal"


def presigned_upload(stack, user, path, product=None, timeout=90, repo=REPO):
    """Asks for a ticket, PUTs the file to its presigned URL, and polls the ticket until
    ingest has decided. Returns (HTTP status of the last poll, ticket state)."""
    request = {"repository": repo, "filename": path.name}
    if product:
        request["product"] = product
    status, body = curl("-u", f"{user[0]}:{user[1]}", "-H", "content-type: application/json",
                        "-d", json.dumps(request), f"{stack.api}/v1/uploads")
    assert status == 201, body
    ticket = json.loads(body)
    status, body = curl("-X", "PUT", "-T", str(path), ticket["upload_url"])
    assert status == 200, body
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = curl("-u", f"{user[0]}:{user[1]}", f"{stack.api}{ticket['status_url']}")
        state = json.loads(body)
        if state["status"] not in ("waiting", "ingesting"):
            break
        time.sleep(0.5)
    return status, state


def test_big_package_through_presigned_upload(stack, user, apt_for, tmp_path):
    name = "cairn-big-" + run_id()
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(big_deb(name, "1.0", 5 * 1024 * 1024))

    status, body = curl("-u", f"{user[0]}:{user[1]}", "-F", f"{path.name}=@{path}",
                        "-X", "PUT", f"{stack.api}/{REPO}")
    assert status == 413, body
    assert b"/v1/uploads" in body

    _, state = presigned_upload(stack, user, path, product=name)
    assert state["status"] == "stored", state

    index = stack.wait_published(REPO, [path.name])
    assert index[path.name]["SHA256"] == sha256(path)
    apt = apt_for(REPO)
    apt.update()
    assert sha256(apt.download(name)) == sha256(path)


def test_presigned_malformed_package_is_refused_and_reported(stack, user, tmp_path):
    name = "cairn-bad-" + run_id()
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(b"this is not a debian package at all\n" * 1000)
    before = stack.listing(REPO)["packages"]
    status, state = presigned_upload(stack, user, path, timeout=60)
    assert state["status"] == "failed", state
    assert status == 422
    assert "not an ar archive" in state["message"]
    assert stack.listing(REPO)["packages"] == before


def test_presigned_rpm_and_chart_through_an_anchor(stack, user, tmp_path):
    """The presigned path serves every format, anchors included: one staged RPM lands
    in both series the `enabled` anchor names; a chart lands in its repository."""
    from charts import make_chart
    from debs import run_id
    from rpms import build_rpm
    from test_helm import wait_index

    rpm = build_rpm(tmp_path, f"cairn-pre-{run_id()}", noarch=True)["binary"]
    status, state = presigned_upload(stack, user, rpm, repo="pre-release/enabled/el/8")
    assert (status, state["status"]) == (200, "stored"), state
    for repo in ["pre-release/2.11/el/8", "pre-release/3.0/el/8"]:
        stack.wait_yum(repo, "x86_64", present=[rpm.name])

    chart = tmp_path / f"cairn-pre-{run_id()}-0.1.0.tgz"
    chart.write_bytes(make_chart(chart.name[: -len("-0.1.0.tgz")], "0.1.0"))
    status, state = presigned_upload(stack, user, chart, repo="pre-release/2.11/helm/stable")
    assert (status, state["status"]) == (200, "stored"), state
    wait_index(stack, "pre-release/2.11/helm/stable", present=[chart.name[:-4]])
