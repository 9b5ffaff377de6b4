"""Source archives (docs/archives.md): trees from git origins (real git, served by
gitorigin.py on 127.0.0.1:18418) are archived into immutable repositories that stock git
clones over plain HTTP from S3; the same tree gets the same tag; callbacks are signed,
retried and cancellable; unsafe URLs, unknown refs, oversized origins, missing credentials
and bad names are refused without fetching anything; Repour's /clone keeps history."""

import hashlib
import json
import os
import re
import stat
import subprocess
import tarfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (api_call, archive, archive_done, archive_info, cancel, clone,
                      clone_done, operation, problem_text, wait_operation)
from gitorigin import EXEC, FILE, SYMLINK, git, git_env, git_out, parse_ls_tree
from receiver import TcpTrap, verify_signature

TRAP_PORT = 18420  # not in the stack's OutboundAllowList (18418 and 18419 are)
ARCHIVE_MAX = 32 << 20  # the local stack's ArchiveMaxBytes


def unique(prefix: str) -> str:
    return f"e2e-{prefix}-{uuid.uuid4().hex[:10]}"


def sample_files(seed: str) -> dict:
    """A small tree with what trees can hold: nested folders, an executable, a symlink,
    an empty file, binary bytes, spaces and non-ASCII in names; `seed` makes it unique."""
    return {
        "README.md": f"# {seed}\n",
        "src/main.c": "int main(void) { return 0; }\n",
        "bin/run.sh": (EXEC, b"#!/bin/sh\necho run\n"),
        "link-to-readme": (SYMLINK, b"README.md"),
        "empty": b"",
        "data/blob.bin": bytes(range(256)) * 8 + seed.encode(),
        "docs/with space.txt": "spaces\n",
        "docs/\u00fcn\u00efcode.txt": "unicode\n",
        "deep/a/b/c/d.txt": "deep\n",
    }


def entry(value):
    if isinstance(value, tuple):
        mode, content = value
    else:
        mode, content = FILE, value
    return mode, content.encode() if isinstance(content, str) else content


@pytest.fixture
def genv(tmp_path):
    """git client environment: no host or user configuration, no proxies."""
    home = tmp_path / "home"
    home.mkdir()
    return git_env(home)


def clone_tag(url: str, tag: str, dest, env):
    """Exactly what builders run (docs/archives.md)."""
    git("clone", "-q", "--branch", tag, "--single-branch", "--no-tags", url, dest, env=env)


def clone_tree(dest, env) -> list:
    return parse_ls_tree(git("ls-tree", "-r", "-z", "HEAD", cwd=dest, env=env).stdout)


def assert_checkout(dest, files: dict):
    """The work tree holds exactly `files`: same paths, bytes, executable bits, links."""
    seen = set()
    for top, dirs, names in os.walk(dest):
        if ".git" in dirs and os.path.samefile(top, dest):
            dirs.remove(".git")
        for n in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            seen.add(os.path.relpath(os.path.join(top, n), dest))
    assert seen == set(files), (sorted(seen ^ set(files)))
    for path, value in files.items():
        mode, content = entry(value)
        full = os.path.join(dest, path)
        if mode == SYMLINK:
            assert os.readlink(full) == content.decode(), path
            continue
        assert not os.path.islink(full), path
        with open(full, "rb") as f:
            assert f.read() == content, path
        assert bool(os.stat(full).st_mode & stat.S_IXUSR) == (mode == EXEC), path


def assert_archive_commit(dest, body, env):
    """The archive commit: the answer's id, the answer's tree, no parent."""
    assert git_out("rev-parse", "HEAD", cwd=dest, env=env) == body["commit"]
    assert git_out("rev-parse", f"{body['tag']}^{{commit}}", cwd=dest, env=env) == body["commit"]
    raw = git_out("cat-file", "commit", body["commit"], cwd=dest, env=env)
    headers = raw.split("\n\n", 1)[0].splitlines()
    assert headers[0] == f"tree {body['tree']}", raw
    assert not [h for h in headers if h.startswith("parent ")], raw
    assert git_out("rev-list", "--count", "HEAD", cwd=dest, env=env) == "1"
    git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)


def fetch_tarball(url: str, dest):
    """The public tarball URL, fetched without credentials (curl -L)."""
    subprocess.run(["curl", "-sS", "-f", "-L", "-o", str(dest), url], check=True,
                   capture_output=True)


def tarball_redirect(stack, user, name: str, tag: str) -> str:
    """GET /v1/archives/{name}/{tag}.tar.gz must answer 302: its Location."""
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          "-u", f"{user[0]}:{user[1]}",
                          f"{stack.api}/v1/archives/{name}/{tag}.tar.gz"],
                         check=True, capture_output=True).stdout.decode()
    code, _, location = out.partition(" ")
    assert code == "302" and location, out
    return location


def assert_tarball(path, prefix: str, files: dict):
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    assert members
    assert all(m.name == prefix.rstrip("/") or m.name.startswith(prefix) for m in members), \
        [m.name for m in members if not m.name.startswith(prefix)]
    mtimes = {m.mtime for m in members}
    assert len(mtimes) == 1, f"one fixed mtime, got {sorted(mtimes)}"
    assert abs(mtimes.pop() - time.time()) > 86400, "a fixed mtime, not the time of writing"
    got = {m.name[len(prefix):]: m for m in members if not m.isdir()}
    assert set(got) == set(files), sorted(set(got) ^ set(files))
    with tarfile.open(path, "r:gz") as tar:
        for rel, value in files.items():
            mode, content = entry(value)
            m = got[rel]
            if mode == SYMLINK:
                assert m.issym() and m.linkname == content.decode(), rel
                continue
            assert m.isfile(), rel
            assert tar.extractfile(m).read() == content, rel
            assert bool(m.mode & 0o100) == (mode == EXEC), (rel, oct(m.mode))


def tar_contents(path, prefix: str) -> list:
    """[(path below prefix, type, mode, mtime, sha256 or link target)], sorted."""
    out = []
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b""
            out.append((m.name[len(prefix):], m.type, m.mode, m.mtime,
                        m.linkname or hashlib.sha256(data).hexdigest()))
    return sorted(out)


def archive_tags(stack, user, name) -> set:
    status, info = archive_info(stack, user, name)
    if status == 404:
        return set()
    assert status == 200, info
    return set(re.findall(r"cairn-[0-9a-f]{40}", json.dumps(info)))


# --- a: one archive, cloned with stock git -------------------------------------------------


def test_archive_branch_clones_to_the_exact_tree(stack, user, git_origin, genv, tmp_path):
    name = unique("tree")
    files = sample_files(name)
    _, url = git_origin.make_origin(name, files)
    origin_commit = git_origin.rev_parse(name, "main")
    origin_tree = git_origin.tree_of(name, "main")

    status, body = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200, body
    assert re.fullmatch(r"[0-9a-f]{40}", body["commit"]), body
    assert body["name"] == name
    assert body["tag"] == f"cairn-{body['commit']}"
    assert body["tree"] == origin_tree
    assert body["swhid"] == f"swh:1:dir:{origin_tree}"
    assert body["url"]["readonly"] == f"{stack.archive_base}/git/{name}.git"
    assert body["tarball"] == f"{stack.archive_base}/tarballs/{name}/{body['tag']}.tar.gz"
    assert body["origin"]["url"] == url
    assert body["origin"]["ref"] == "main"
    assert body["origin"]["commit"] == origin_commit
    assert body["submodules"] == []
    assert body["created"] is True
    assert git_origin.requests(name), "the origin was fetched through the test server"

    dest = tmp_path / "src"
    clone_tag(body["url"]["readonly"], body["tag"], dest, genv)
    clone_tree_id = git_out("rev-parse", f"{body['tag']}^{{tree}}", cwd=dest, env=genv)
    assert clone_tree_id == origin_tree
    assert "swh:1:dir:" + clone_tree_id == body["swhid"]
    assert clone_tree(dest, genv) == git_origin.ls_tree(name, origin_commit)
    assert_checkout(dest, files)
    assert_archive_commit(dest, body, genv)

    # The tree's own one-tag repository: the same tree, and only that tag in it.
    assert body["url"]["tree"] == f"{stack.archive_base}/trees/{name}/{body['tag']}.git"
    listed = git_out("ls-remote", body["url"]["tree"], env=genv).splitlines()
    assert listed == [f"{body['commit']}\tHEAD",
                      f"{body['commit']}\trefs/tags/{body['tag']}"], listed
    own = tmp_path / "own"
    clone_tag(body["url"]["tree"], body["tag"], own, genv)
    assert git_out("rev-parse", "HEAD^{tree}", cwd=own, env=genv) == origin_tree
    assert_checkout(own, files)

    tarball = tmp_path / "src.tar.gz"
    fetch_tarball(body["tarball"], tarball)
    assert tarball_redirect(stack, user, name, body["tag"]) == body["tarball"]
    assert_tarball(tarball, f"{name}-{body['tag']}/", files)

    assert archive_tags(stack, user, name) == {body["tag"]}


# --- b: new content, new tag; same tree, same tag ------------------------------------------


def test_new_tree_new_tag_same_tree_same_tag(stack, user, git_origin, genv, tmp_path):
    name = unique("history")
    files1 = sample_files(name + "-one")
    _, url = git_origin.make_origin(name, files1)
    first = git_origin.rev_parse(name, "main")
    git_origin.tag(name, "before-rewrite", first)  # keeps the old commit advertised

    status, one = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200 and one["created"] is True, one

    files2 = {"NEW.md": "rewritten\n", "src/other.py": "print('other')\n",
              "bin/tool": (EXEC, b"#!/bin/sh\n")}
    second = git_origin.force_push(name, files2)
    status, two = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200, two
    assert two["created"] is True
    assert two["tag"] != one["tag"] and two["commit"] != one["commit"]
    assert two["tree"] == git_origin.tree_of(name, second)
    assert two["origin"]["commit"] == second
    assert two["url"]["readonly"] == one["url"]["readonly"]

    # The old tag still clones to the old tree, the new one to the new tree.
    for body, files, commit_id in [(one, files1, first), (two, files2, second)]:
        dest = tmp_path / body["tag"]
        clone_tag(body["url"]["readonly"], body["tag"], dest, genv)
        assert clone_tree(dest, genv) == git_origin.ls_tree(name, commit_id)
        assert_checkout(dest, files)
        assert_archive_commit(dest, body, genv)

    # The new tree under other refs and another commit: the same tag, created false.
    other = git_origin.commit(name, {}, "same tree, another commit", branch="other",
                              parents=["main"])
    assert other != second and git_origin.tree_of(name, other) == two["tree"]
    git_origin.tag(name, "v2.0", other)
    for ref in ["other", "v2.0", "refs/tags/v2.0", "refs/heads/other", other]:
        status, again = archive_done(stack, user, {"name": name, "url": url, "ref": ref})
        assert status == 200, (ref, again)
        for key in ("tag", "commit", "tree", "swhid"):
            assert again[key] == two[key], (ref, key, again)
        assert again["created"] is False, (ref, again)
        assert again["origin"]["commit"] == other, (ref, again)
        assert again["origin"]["ref"] == ref

    # The first tree again, by commit id: the first tag.
    status, back = archive_done(stack, user, {"name": name, "url": url, "ref": first})
    assert status == 200, back
    assert (back["tag"], back["created"]) == (one["tag"], False), back

    assert archive_tags(stack, user, name) == {one["tag"], two["tag"]}

    # The archive commit is a function of the tree alone: another repository, same tag.
    copy = unique("history-copy")
    _, copy_url = git_origin.make_origin(copy, files2, message="unrelated history")
    status, elsewhere = archive_done(stack, user, {"name": copy, "url": copy_url, "ref": "main"})
    assert status == 200, elsewhere
    assert (elsewhere["tag"], elsewhere["commit"], elsewhere["created"]) == \
        (two["tag"], two["commit"], True), elsewhere
    assert elsewhere["url"]["readonly"] == f"{stack.archive_base}/git/{copy}.git"

    # Reproducible tarballs: the same tree gives the same members, modes and mtime.
    assert elsewhere["tarball"] == f"{stack.archive_base}/tarballs/{copy}/{two['tag']}.tar.gz"
    fetch_tarball(two["tarball"], tmp_path / "two.tar.gz")
    fetch_tarball(elsewhere["tarball"], tmp_path / "copy.tar.gz")
    assert_tarball(tmp_path / "two.tar.gz", f"{name}-{two['tag']}/", files2)
    assert tar_contents(tmp_path / "two.tar.gz", f"{name}-{two['tag']}/") == \
        tar_contents(tmp_path / "copy.tar.gz", f"{copy}-{two['tag']}/")


# --- c: concurrent requests for one tree ---------------------------------------------------


def test_ten_concurrent_archives_of_one_tree(stack, user, git_origin):
    name = unique("burst")
    _, url = git_origin.make_origin(name, sample_files(name))
    request = {"name": name, "url": url, "ref": "main"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: archive(stack, user, request), range(10)))
    assert [s for s, _ in results] == [200] * 10, results
    keys = ("name", "tag", "commit", "tree", "swhid")
    answers = {tuple(b[k] for k in keys) for _, b in results}
    assert len(answers) == 1, answers
    (answer,) = answers
    assert answer[3] == git_origin.tree_of(name, "main")
    # One of them made it (or all ten share one operation that made it).
    assert any(b["created"] for _, b in results), results
    assert archive_tags(stack, user, name) == {answer[1]}


def test_slow_archive_answers_202_and_the_operation_has_the_result(stack, user, git_origin):
    name = unique("slow")
    _, url = git_origin.make_origin(name, {"README": "slow\n"})
    git_origin.set_delay(name, 35)  # longer than ArchiveWaitSeconds (25 s)
    try:
        started = time.time()
        status, body = archive(stack, user, {"name": name, "url": url, "ref": "main"})
        waited = time.time() - started
    finally:
        git_origin.set_delay(name, 0)
    assert status == 202, body
    assert body["status"] in ("queued", "running"), body
    # A path under the API base URL (the API does not know its public URL).
    assert body["operation"] == f"/v1/operations/{body['id']}", body
    assert waited >= 20, f"answered after {waited:.1f}s: it should wait for the result first"
    op = wait_operation(stack, user, body["id"], timeout=180)
    assert op["kind"] == "archive" and op["status"] == "succeeded", op
    assert op["http_status"] == 200, op
    assert op["result"]["tree"] == git_origin.tree_of(name, "main"), op
    assert op["result"]["created"] is True, op


# --- d: callbacks and cancellation ---------------------------------------------------------


def check_callback(stack, hit, op_id: str, status: int) -> dict:
    """A delivered callback: its id header, a valid signature over the exact body, made
    recently, and the body's callback member."""
    assert hit.headers.get("x-cairn-callback-id") == op_id, hit.headers
    sig = hit.headers.get("x-cairn-signature")
    assert sig, hit.headers
    secret = stack.callback_secret
    assert verify_signature(secret, sig, hit.body, tolerance=300, now=hit.time), sig
    assert not verify_signature(secret, sig, hit.body + b" ")
    assert not verify_signature(secret + b"x", sig, hit.body)
    # The same secret signs Standard Webhooks headers, which the PyPI library checks.
    import base64

    from standardwebhooks.webhooks import Webhook
    assert hit.headers.get("webhook-id") == op_id
    Webhook("whsec_" + base64.b64encode(secret).decode()).verify(hit.body, dict(hit.headers))
    body = hit.json()
    assert body["callback"]["status"] == status, body
    assert body["callback"]["id"] == op_id, body
    return body


def submitted(status, body) -> str:
    """The operation id of a 202 answer to a request with a callback."""
    assert status == 202, body
    assert list(body) == ["callback"] and list(body["callback"]) == ["id"], body
    op_id = body["callback"]["id"]
    assert isinstance(op_id, str) and op_id, body
    return op_id


def wait_delivered(stack, user, op_id, timeout=60) -> dict:
    deadline = time.time() + timeout
    op = None
    while time.time() < deadline:
        status, op = operation(stack, user, op_id)
        assert status == 200, op
        if op.get("callback", {}).get("delivered"):
            return op
        time.sleep(0.5)
    raise AssertionError(f"callback of {op_id} not marked delivered within {timeout}s: {op}")


def test_callback_gets_the_signed_result(stack, user, git_origin, callback_receiver):
    rx = callback_receiver
    name = unique("callback")
    _, url = git_origin.make_origin(name, sample_files(name))
    path = rx.new_path()
    request = {"name": name, "url": url, "ref": "main", "callback": {"url": rx.url(path)}}
    op_id = submitted(*archive(stack, user, request))

    (hit,) = rx.wait_for(path, 1, timeout=120)
    assert hit.method == "POST"
    body = check_callback(stack, hit, op_id, 200)
    assert body["name"] == name
    assert body["tree"] == git_origin.tree_of(name, "main")
    assert body["tag"] == f"cairn-{body['commit']}"
    assert body["created"] is True

    op = wait_delivered(stack, user, op_id)
    assert op["id"] == op_id and op["kind"] == "archive", op
    assert op["status"] == "succeeded" and op["http_status"] == 200, op
    assert op["result"] == {k: v for k, v in body.items() if k != "callback"}, op
    assert op["request"]["name"] == name and op["request"]["url"] == url, op
    assert op["created_at"] and op["updated_at"], op
    assert op["callback"]["url"] == rx.url(path), op
    assert op["callback"]["method"] == "POST", op
    assert len(op["callback"]["attempts"]) == 1, op

    # The result is real: a synchronous request now finds the tree archived.
    status, sync = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200 and sync["created"] is False and sync["tag"] == body["tag"], sync
    time.sleep(2)
    assert len(rx.requests(path)) == 1, "delivered once"


def test_callback_is_retried_after_5xx(stack, user, git_origin, callback_receiver):
    rx = callback_receiver
    name = unique("retry")
    _, url = git_origin.make_origin(name, sample_files(name))
    path = rx.new_path()
    rx.fail_first(path, 2)
    request = {"name": name, "url": url, "ref": "main",
               "callback": {"url": rx.url(path), "method": "PUT"}}
    op_id = submitted(*archive(stack, user, request))

    hits = rx.wait_for(path, 3, timeout=120)
    assert [h.answered for h in hits] == [500, 500, 200], [(h.answered, h.time) for h in hits]
    assert [h.method for h in hits] == ["PUT"] * 3
    bodies = [check_callback(stack, h, op_id, 200) for h in hits]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["tree"] == git_origin.tree_of(name, "main")
    assert hits[0].time < hits[1].time < hits[2].time

    op = wait_delivered(stack, user, op_id)
    attempts = op["callback"]["attempts"]
    assert len(attempts) == 3, op
    shown = [json.dumps(a) for a in attempts]
    assert "500" in shown[0] and "500" in shown[1] and "200" in shown[2], attempts
    time.sleep(3)
    assert len(rx.requests(path)) == 3, "nothing after the successful attempt"


def wait_quiet(rx, path, quiet=15, timeout=180) -> list:
    """The requests to `path` once none has arrived for `quiet` seconds."""
    deadline = time.time() + timeout
    seen, since = len(rx.requests(path)), time.time()
    while time.time() - since < quiet:
        assert time.time() < deadline, f"callbacks to {path} never stopped"
        time.sleep(0.5)
        now = len(rx.requests(path))
        if now != seen:
            seen, since = now, time.time()
    return rx.requests(path)


def wait_attempts(stack, user, op_id, count, timeout=30) -> dict:
    deadline = time.time() + timeout
    while True:
        status, op = operation(stack, user, op_id)
        assert status == 200, op
        if len(op["callback"]["attempts"]) >= count or time.time() > deadline:
            return op
        time.sleep(0.5)


def wait_delivery(stack, user, op_id, timeout=120) -> dict:
    """The operation once its callback delivery reached a final state."""
    deadline = time.time() + timeout
    while True:
        status, op = operation(stack, user, op_id)
        assert status == 200, op
        if op["callback"]["delivery"] in ("delivered", "failed"):
            return op
        assert time.time() < deadline, f"delivery of {op_id} still pending: {op}"
        time.sleep(0.5)


def test_callback_retry_policy(stack, user, git_origin, callback_receiver):
    """408, 429 and 5xx are retried; another 4xx is an answer, not retried. The five
    cases run at once; each ends in a final delivery state, so no quiet period is needed."""
    rx = callback_receiver
    cases = []
    for answer, retried in [(429, True), (408, True), (503, True), (404, False), (400, False)]:
        name = unique(f"policy{answer}")
        _, url = git_origin.make_origin(name, {"README": f"{answer}\n"})
        path = rx.new_path()
        rx.fail_first(path, 1, status=answer)
        op_id = submitted(*archive(stack, user, {"name": name, "url": url, "ref": "main",
                                                 "callback": {"url": rx.url(path)}}))
        cases.append((answer, retried, path, op_id))
    for answer, retried, path, op_id in cases:
        op = wait_delivery(stack, user, op_id)
        hits = rx.requests(path)
        assert [h.answered for h in hits] == ([answer, 200] if retried else [answer]), (answer, hits)
        for h in hits:
            check_callback(stack, h, op_id, 200)
        assert len(op["callback"]["attempts"]) == len(hits), op
        assert op["callback"]["delivered"] is retried, op


def test_callback_gives_up_and_records_every_attempt(stack, user, git_origin,
                                                     callback_receiver):
    rx = callback_receiver
    name = unique("giveup")
    _, url = git_origin.make_origin(name, {"README": "never delivered\n"})
    path = rx.new_path()
    rx.fail_first(path, 1000, status=503)
    op_id = submitted(*archive(stack, user, {"name": name, "url": url, "ref": "main",
                                             "callback": {"url": rx.url(path)}}))
    op = wait_delivery(stack, user, op_id)
    hits = rx.requests(path)
    # Exactly CallbackMaxAttempts attempts (up.sh deploys 4), then the dead-letter queue.
    assert len(hits) == stack.callback_max_attempts, hits
    assert all(h.answered == 503 for h in hits), hits
    assert op["status"] == "succeeded", op  # the archive itself worked
    assert op["callback"]["delivered"] is False, op
    assert [a["http_status"] for a in op["callback"]["attempts"]] == [503] * len(hits), op


def test_cancel_queued_operation(stack, user, git_origin, callback_receiver):
    rx = callback_receiver
    name = unique("cancel")
    _, url = git_origin.make_origin(name, sample_files(name))
    # The queued request fetches from another origin: it must never be contacted.
    other = unique("cancel-other")
    _, other_url = git_origin.make_origin(other, sample_files(other))
    git_origin.set_delay(name, 15)
    path_a, path_b = rx.new_path(), rx.new_path()
    try:
        id_a = submitted(*archive(stack, user, {"name": name, "url": url, "ref": "main",
                                                "callback": {"url": rx.url(path_a)}}))
        git_origin.wait_for_request(name, 1, timeout=60)  # A's worker is fetching
        status, op_a = operation(stack, user, id_a)
        assert status == 200 and op_a["status"] == "running", op_a

        id_b = submitted(*archive(stack, user, {"name": name, "url": other_url, "ref": "main",
                                                "callback": {"url": rx.url(path_b)}}))
        assert id_b != id_a
        status, op_b = operation(stack, user, id_b)
        assert status == 200 and op_b["status"] == "queued", op_b

        status, cancelled = cancel(stack, user, id_b)
        assert status == 200, cancelled
        assert cancelled["status"] == "cancelled", cancelled
        status, running = cancel(stack, user, id_a)
        assert status == 409, running
    finally:
        git_origin.set_delay(name, 0)

    (hit_b,) = rx.wait_for(path_b, 1, timeout=60)
    body_b = check_callback(stack, hit_b, id_b, 409)
    assert body_b["title"] == "cancelled", body_b
    status, op_b = operation(stack, user, id_b)
    assert status == 200 and op_b["status"] == "cancelled", op_b

    # A goes on and succeeds; then it is finished: 409 as well.
    (hit_a,) = rx.wait_for(path_a, 1, timeout=180)
    body_a = check_callback(stack, hit_a, id_a, 200)
    assert body_a["tree"] == git_origin.tree_of(name, "main")
    assert wait_operation(stack, user, id_a)["status"] == "succeeded"
    status, finished = cancel(stack, user, id_a)
    assert status == 409, finished

    # B never ran: still cancelled, one callback, its origin never contacted.
    time.sleep(3)
    status, op_b = operation(stack, user, id_b)
    assert op_b["status"] == "cancelled", op_b
    assert len(rx.requests(path_b)) == 1
    assert git_origin.requests(other) == []

    unknown = str(uuid.uuid4())
    assert cancel(stack, user, unknown)[0] == 404
    assert operation(stack, user, unknown)[0] == 404


# --- e: refusals ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def never_fetched(git_origin):
    """A real origin the refused requests point at: its request log must stay empty."""
    name = unique("refused")
    path, url = git_origin.make_origin(name, {"README": "never fetched\n"})
    yield name, path, url
    assert git_origin.requests(name) == [], "a refused request reached the origin"


@pytest.fixture(scope="module")
def trap():
    """Records any connection to port 18420 (127.0.0.1 and ::1)."""
    with TcpTrap(TRAP_PORT) as t:
        yield t


URL_WORDS = ("url", "scheme", "http", "address", "host", "allow", "refuse", "not permitted",
             "private", "loopback", "forbidden", "credentials", "local")


def refused_urls(repo_path, origin_name):
    p = f"127.0.0.1:{TRAP_PORT}"
    return {
        "file-etc": "file:///etc",
        "file-origin": f"file://{repo_path}",  # would succeed if opened
        "local-path": "/srv/git/x.git",
        "local-origin": str(repo_path),  # would succeed if opened
        "ssh": f"ssh://git@{p}/x.git",
        "scp-like": "git@127.0.0.1:x.git",
        "git": f"git://{p}/x.git",
        "ftp": f"ftp://{p}/x.git",
        "credentials": f"http://user:secret@127.0.0.1:18418/{origin_name}.git",
        "loopback-port": f"http://{p}/x.git",
        "localhost-port": f"http://localhost:{TRAP_PORT}/x.git",
        "ipv6-loopback": f"http://[::1]:{TRAP_PORT}/x.git",
        "zero": f"http://0.0.0.0:{TRAP_PORT}/x.git",
        "short-ipv4": f"http://127.1:{TRAP_PORT}/x.git",
        "decimal-ipv4": f"http://2130706433:{TRAP_PORT}/x.git",
        "v4-mapped": f"http://[::ffff:127.0.0.1]:{TRAP_PORT}/x.git",
        "metadata": "http://169.254.169.254/latest/meta-data/x.git",
        "private": f"http://10.11.12.13:{TRAP_PORT}/x.git",
        "cgnat": "http://100.64.0.1/x.git",
        "documentation": "http://192.0.2.10/x.git",
        "ula": "http://[fd00::1]/x.git",
        "not-a-url": "not a url",
    }


@pytest.mark.parametrize("case", list(refused_urls("/x", "x")))
def test_unsafe_urls_are_refused_without_connecting(stack, user, git_origin, never_fetched,
                                                    trap, case):
    origin_name, repo_path, _ = never_fetched
    url = refused_urls(repo_path, origin_name)[case]
    before = len(trap.connections)
    name = unique("refused")
    status, body, headers = api_call(stack, "POST", "/v1/archives",
                                     {"name": name, "url": url, "ref": "main"}, user)
    assert status == 400, (url, body)
    assert headers.get("content-type", "").startswith("application/problem+json"), headers
    text = problem_text(body).lower()
    assert any(w in text for w in URL_WORDS), (url, body)
    time.sleep(0.5)
    assert trap.connections[before:] == [], f"{url} made a connection"
    assert git_origin.requests(origin_name) == [], f"{url} reached the origin"
    assert archive_tags(stack, user, name) == set()


def test_redirect_to_a_refused_address_is_not_followed(stack, user, git_origin, trap):
    name = unique("redirect")
    _, url = git_origin.make_origin(name, {"README": "moved\n"})
    git_origin.set_redirect(name, f"http://127.0.0.1:{TRAP_PORT}/x.git")
    before = len(trap.connections)
    status, body = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 400, body
    time.sleep(0.5)
    assert trap.connections[before:] == [], "followed a redirect to a refused address"
    assert archive_tags(stack, user, name) == set()


@pytest.mark.parametrize("ref", ["no-such-branch", "refs/tags/v9.9"])
def test_unknown_ref_is_404_naming_it(stack, user, git_origin, ref):
    name = unique("noref")
    _, url = git_origin.make_origin(name, {"README": "x\n"})
    status, body = archive_done(stack, user, {"name": name, "url": url, "ref": ref})
    assert status == 404, body
    assert f"ref '{ref}' does not exist in {url}" in problem_text(body), body
    assert archive_tags(stack, user, name) == set()


def test_origin_over_the_size_limit_is_refused(stack, user, git_origin):
    name = unique("huge")
    _, url = git_origin.make_origin(name, {"README": "big\n",
                                           "blob.bin": os.urandom(40 << 20)})
    status, body = archive_done(stack, user, {"name": name, "url": url, "ref": "main"},
                                timeout=300)
    assert status == 400, body
    text = problem_text(body)
    assert any(s in text for s in ("32 MiB", "32MiB", str(ARCHIVE_MAX))), body
    assert archive_tags(stack, user, name) == set()


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v1/archives", "archive"),
    ("POST", "/clone", "clone"),
    ("GET", "/v1/operations/{op}", None),
    ("POST", "/cancel/{op}", None),
    ("GET", "/v1/archives/{name}", None),
])
def test_credentials_are_required(stack, user, git_origin, never_fetched, method, path, body):
    origin_name, _, url = never_fetched
    name = unique("noauth")
    payload = {
        "archive": {"name": name, "url": url, "ref": "main"},
        "clone": {"type": "git", "originRepoUrl": url, "ref": "main", "name": name},
        None: None,
    }[body]
    path = path.format(op=uuid.uuid4(), name=name)
    for creds in [None, (user[0], "wrong-password"), ("nobody", "x")]:
        status, answer, _ = api_call(stack, method, path, payload, creds)
        assert status == 401, (path, creds, answer)
    assert git_origin.requests(origin_name) == []


@pytest.mark.parametrize("bad", ["../x", "..", "x.git", "-x", ".x", "_x", "a/b", "", "x y",
                                 "x\u00e9", pytest.param("a" * 101, id="101-chars"),
                                 pytest.param("x\x00", id="nul")])
def test_bad_names_are_refused(stack, user, git_origin, never_fetched, bad):
    origin_name, _, url = never_fetched
    status, body = archive(stack, user, {"name": bad, "url": url, "ref": "main"})
    assert status == 400, (bad, body)
    assert "name" in problem_text(body).lower(), body
    assert git_origin.requests(origin_name) == []


# --- f: Repour's /clone --------------------------------------------------------------------


def ls_remote(url, env) -> dict:
    out = git_out("ls-remote", url, env=env)
    return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines())}


def test_clone_keeps_refs_and_history(stack, user, git_origin, genv, tmp_path):
    up = unique("upstream")
    name = unique("repour")
    _, url = git_origin.make_origin(up, {"README": "one\n"})
    c1 = git_origin.rev_parse(up, "main")
    c2 = git_origin.commit(up, {"README": "two\n", "src/a.txt": "a\n"}, "second")
    c3 = git_origin.commit(up, {"src/b.txt": (EXEC, b"#!/bin/sh\n")}, "third")
    tag_obj = git_origin.tag(up, "v1.0", c2, message="release 1.0")
    target = f"{stack.archive_base}/git/{name}.git"

    def check_clone(ref, expected_head, dirname):
        dest = tmp_path / dirname
        git("clone", "-q", "--branch", ref, "--single-branch", target, dest, env=genv)
        assert git_out("rev-parse", "HEAD", cwd=dest, env=genv) == expected_head
        assert git_out("rev-parse", "--is-shallow-repository", cwd=dest, env=genv) == "false"
        history = git_out("rev-list", "HEAD", cwd=dest, env=genv).split()
        assert history == git_origin.log(up, expected_head), "the full upstream history"
        assert clone_tree(dest, genv) == git_origin.ls_tree(up, expected_head)
        git("fsck", "--no-dangling", cwd=dest, env=genv)
        return dest

    # A tag stays a tag (the same annotated tag object), with its history.
    req = {"type": "git", "originRepoUrl": url, "ref": "v1.0", "name": name}
    status, body = clone_done(stack, user, req)
    assert status == 200, body
    assert body["type"] == "git" and body["ref"] in ("v1.0", "refs/tags/v1.0"), body
    assert body["originRepoUrl"] == url and body["targetRepoUrl"] == target, body
    assert body["commit"] == c2, body
    dest = check_clone("v1.0", c2, "tag")
    assert git_out("rev-parse", "refs/tags/v1.0", cwd=dest, env=genv) == tag_obj
    assert git_out("cat-file", "-t", "refs/tags/v1.0", cwd=dest, env=genv) == "tag"
    assert git_out("rev-list", "--count", "HEAD", cwd=dest, env=genv) == "2"

    # A branch stays a branch.
    status, body = clone_done(stack, user, dict(req, ref="main"))
    assert status == 200, body
    assert body["ref"] in ("main", "refs/heads/main") and body["commit"] == c3, body
    check_clone("main", c3, "branch")
    assert len(git_origin.log(up, "main")) == 3

    # A commit id becomes branch-<id>.
    status, body = clone_done(stack, user, dict(req, ref=c1))
    assert status == 200, body
    assert body["ref"] in (f"branch-{c1}", f"refs/heads/branch-{c1}") and body["commit"] == c1
    check_clone(f"branch-{c1}", c1, "commit")

    refs = ls_remote(target, genv)
    assert refs["refs/heads/main"] == c3
    assert refs[f"refs/heads/branch-{c1}"] == c1
    assert refs["refs/tags/v1.0"] == tag_obj
    assert refs.get("refs/tags/v1.0^{}", c2) == c2

    # The same ref at the same commit again is fine; a published ref never moves.
    status, body = clone_done(stack, user, dict(req, ref="main"))
    assert status == 200 and body["commit"] == c3, body
    c4 = git_origin.commit(up, {"README": "four\n"}, "fourth")
    status, body = clone_done(stack, user, dict(req, ref="main"))
    assert status == 409, body
    assert ls_remote(target, genv)["refs/heads/main"] == c3
    assert c4 not in ls_remote(target, genv).values()


def test_clone_with_callback(stack, user, git_origin, callback_receiver):
    rx = callback_receiver
    up, name = unique("upstream"), unique("repour-cb")
    _, url = git_origin.make_origin(up, {"README": "cb\n"})
    head = git_origin.rev_parse(up, "main")
    path = rx.new_path()
    op_id = submitted(*clone(stack, user, {"type": "git", "originRepoUrl": url, "ref": "main",
                                           "name": name, "callback": {"url": rx.url(path)}}))
    (hit,) = rx.wait_for(path, 1, timeout=120)
    body = check_callback(stack, hit, op_id, 200)
    assert body["targetRepoUrl"] == f"{stack.archive_base}/git/{name}.git", body
    assert body["commit"] == head, body
    op = wait_operation(stack, user, op_id)
    assert op["kind"] == "clone" and op["status"] == "succeeded", op
