"""Done-means 3: wrong credentials, malformed packages, path tricks and conflicting
content are refused with a clear error, and the repository does not change."""

import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import SYNC_TIMEOUT, upload
from debs import control_text, make_deb, run_id

REPO = "release/2.11/ubuntu/noble"


@pytest.fixture
def snapshot(stack, user, tmp_path):
    """Ensures the suite is published, then returns a function that captures what a
    client can see of it (listing + signed metadata)."""
    seed = tmp_path / f"cairn-seed_1.0_all.deb"
    seed.write_bytes(make_deb("cairn-seed", "1.0"))
    status, body = upload(stack, REPO, [(seed.name, seed)], user=user, product="cairn-seed")
    assert status in (200, 201), body
    stack.wait_published(REPO, [seed.name])
    # Settled: an earlier test's upload (its own sync) must not publish mid-test.
    deadline = time.time() + SYNC_TIMEOUT
    while time.time() < deadline:
        sync = stack.listing(REPO)["sync"]
        if sync["published_seq"] >= sync["change_seq"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{REPO} did not settle within {SYNC_TIMEOUT}s: {sync}")

    def take():
        listing = stack.listing(REPO)
        return (
            listing["packages"],
            stack.repo_file(REPO, "dists/noble/InRelease"),
            stack.repo_file(REPO, "dists/noble/main/binary-amd64/Packages"),
        )

    return take


def raw_upload(stack, user, field_name: bytes, content: bytes):
    """A hand-made multipart body, for names curl cannot send (NUL bytes)."""
    boundary = b"cairnboundary" + run_id().encode()
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + field_name +
            b"\"; filename=\"" + field_name + b"\"\r\nContent-Type: application/octet-stream"
            b"\r\n\r\n" + content + b"\r\n--" + boundary + b"--\r\n")
    req = urllib.request.Request(f"{stack.api}/{REPO}", data=body, method="PUT")
    req.add_header("content-type", "multipart/form-data; boundary=" + boundary.decode())
    token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    req.add_header("authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_wrong_or_missing_credentials_store_nothing(stack, user, snapshot, tmp_path):
    before = snapshot()
    deb = tmp_path / "cairn-auth_1.0_all.deb"
    deb.write_bytes(make_deb("cairn-auth", "1.0"))
    for creds in [None, (user[0], "wrong-password"), ("nobody", "x")]:
        status, body = upload(stack, REPO, [(deb.name, deb)], user=creds, product="cairn-auth")
        assert status == 401, body
        assert "password" in body["detail"] or "credentials" in body["detail"]
    assert snapshot() == before
    assert deb.name not in [p["filename"] for p in before[0]]


def test_rws_werkzeug_hash_is_accepted(stack, rws_user, tmp_path):
    deb = tmp_path / "cairn-rws_1.0_all.deb"
    deb.write_bytes(make_deb("cairn-rws", "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=rws_user, product="cairn-rws")
    assert status in (200, 201), body


@pytest.mark.parametrize("case,expected", [
    ("truncated", "truncated"),
    ("not-ar", "not an ar archive"),
    ("no-package-field", "no Package field"),
    ("no-control", "no control"),
])
def test_malformed_packages_are_refused(stack, user, snapshot, tmp_path, real_debs, case,
                                        expected):
    before = snapshot()
    name = f"cairn-bad-{case}"
    if case == "truncated":
        good = real_debs["hello"].read_bytes()
        content = good[: len(good) // 2]
    elif case == "not-ar":
        content = b"#!/bin/sh\necho definitely not a package\n"
    elif case == "no-package-field":
        content = make_deb(name, "1.0", control=control_text(name, "1.0").split("\n", 1)[1])
    else:
        from debs import ar
        content = ar([("debian-binary", b"2.0\n"), ("data.tar", b"\0" * 1024)])
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(content)
    status, body = upload(stack, REPO, [(path.name, path)], user=user, product="cairn-bad")
    assert status == 400, body
    assert expected in body["detail"], body
    assert path.name in body["detail"], "the message names the file"
    assert snapshot() == before


@pytest.mark.parametrize("field_name,expected", [
    (b"../escape_1.0_all.deb", "'..'"),
    (b"dir/escape_1.0_all.deb", "path separator"),
    (b"nul\x00byte_1.0_all.deb", "NUL"),
])
def test_path_tricks_are_refused(stack, user, snapshot, field_name, expected):
    before = snapshot()
    status, body = raw_upload(stack, user, field_name, make_deb("cairn-trick", "1.0"))
    assert status == 400, body
    assert expected in body["detail"], body
    assert snapshot() == before


def test_same_name_other_content_conflicts_identical_is_noop(stack, user, snapshot, tmp_path):
    name = "cairn-immutable-" + run_id()
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(make_deb(name, "1.0", payload=b"first\n"))
    status, body = upload(stack, REPO, [(path.name, path)], user=user, product=name)
    assert status == 201, body
    index = stack.wait_published(REPO, [path.name])
    before = snapshot()

    status, body = upload(stack, REPO, [(path.name, path)], user=user, product=name)
    assert status == 200, body
    assert body["packages"][0]["status"] == "unchanged"

    path.write_bytes(make_deb(name, "1.0", payload=b"second\n"))
    status, body = upload(stack, REPO, [(path.name, path)], user=user, product=name)
    assert status == 409, body
    assert "immutable" in body["detail"]
    assert snapshot() == before
    assert stack.packages_index(REPO)[path.name] == index[path.name]


def test_same_file_name_twice_in_one_form_stores_nothing(stack, user, snapshot, tmp_path):
    before = snapshot()
    a, b = tmp_path / "a.deb", tmp_path / "b.deb"
    a.write_bytes(make_deb("cairn-twice", "1.0", payload=b"a"))
    b.write_bytes(make_deb("cairn-twice", "1.0", payload=b"b"))
    name = "cairn-twice_1.0_all.deb"
    status, body = upload(stack, REPO, [(name, a), (name, b)], user=user, product="cairn-twice")
    assert status == 400 and "appears twice" in body["detail"], body
    assert snapshot() == before


def test_unknown_repository_and_empty_form(stack, user, tmp_path):
    deb = tmp_path / "cairn-x_1.0_all.deb"
    deb.write_bytes(make_deb("cairn-x", "1.0"))
    status, body = upload(stack, "release/9.9/ubuntu/noble", [(deb.name, deb)], user=user)
    assert status == 404 and "9.9" in body["detail"], body
    status, body = upload(stack, REPO, [], user=user, product="x")
    assert status == 400 and "no package file" in body["detail"], body
