"""Repositories as resources on the deployed stack (docs/access.md, "Repositories"):
created through the API, published by metadata-sync and read by apt; two accounts with
different selectors list different repositories; a private repository is 404 to those who
do not see it; an upload to a path that is no repository is told how to create one;
deleting a repository with packages needs force and takes its files."""

import json
import os
import time
import urllib.parse

from conftest import ROOT, SYNC_TIMEOUT, cairn_cli, curl, upload
from debs import make_deb, run_id
from test_tokens import api, basic

CLI = str(ROOT / "target/release/cairn")


def account(stack, name, role, *selectors):
    password = os.urandom(8).hex()
    args = ["user", "add", name, "--table", stack.table, "--role", role]
    for s in selectors:
        args += ["--selector", s]
    cairn_cli(*args, stdin=password.encode())
    return name, password


def create(stack, who, path, **extra):
    status, body = api(stack, "POST", "/v1/repositories", basic(who),
                       {"format": "apt", "path": path, **extra})
    assert status == 201, body
    return body


def mine(listing, prefix):
    return sorted(r["path"] for r in listing["repositories"] if r["path"].startswith(prefix))


def test_selectors_visibility_and_a_created_repository_apt_reads(stack, user, apt_for,
                                                                  tmp_path):
    run = run_id()
    prefix = f"e2e-{run}"
    dba = account(stack, f"e2e-dba-{run}", "reader", f"team=db-{run}")
    web = account(stack, f"e2e-web-{run}", "reader", f"team in (web-{run}),env=prod")
    public = f"{prefix}/pub/debian/bookworm"
    db = f"{prefix}/db/debian/bookworm"
    webrepo = f"{prefix}/web/debian/bookworm"
    created = create(stack, user, public, description="public, created")
    assert created["owners"] == [user[0]] and created["sync"]["queued"] is True
    create(stack, user, db, visibility="private", labels={"team": f"db-{run}"})
    create(stack, user, webrepo, visibility="private",
           labels={"team": f"web-{run}", "env": "prod"})

    # Two selectors, two listings; the anonymous see the public one only.
    _, as_dba = api(stack, "GET", "/v1/repositories", basic(dba))
    _, as_web = api(stack, "GET", "/v1/repositories", basic(web))
    status, anonymous = curl(f"{stack.api}/v1/repositories")
    assert status == 200
    assert mine(as_dba, prefix) == [db, public]
    assert mine(as_web, prefix) == [public, webrepo]
    assert mine(json.loads(anonymous), prefix) == [public]
    query = urllib.parse.quote(f"team in (db-{run},web-{run})")
    _, as_owner = api(stack, "GET", f"/v1/repositories?selector={query}", basic(user))
    assert mine(as_owner, prefix) == [db, webrepo]
    status, body = api(stack, "GET", "/v1/repositories?selector=team%20in%20(x", basic(user))
    assert status == 400 and "selector" in body["detail"], body

    # A private repository is absent to those who do not see it: 404, as nothing is.
    for who in [None, web]:
        args = ["-H", f"Authorization: {basic(who)}"] if who else []
        for path in [f"/v1/repositories/{db}", f"/{db}"]:
            status, out = curl(*args, f"{stack.api}{path}")
            assert status == 404, (who, path, out)
    status, out = curl("-H", f"Authorization: {basic(dba)}", f"{stack.api}/{db}")
    assert status == 200, out

    # Created and public: its owner uploads, metadata-sync publishes, apt installs.
    name = f"cairn-created-{run}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, public, [(deb.name, deb)], user=user)
    assert status == 201, body
    stack.wait_published(public, [deb.name])
    apt = apt_for(public)
    apt.update()
    assert apt.download(name).read_bytes() == deb.read_bytes()

    # Not a repository: 404 saying how to make one; nothing stored.
    status, body = upload(stack, f"{prefix}/nothing/debian/bookworm", [(deb.name, deb)],
                          user=user)
    assert status == 404 and "POST /v1/repositories" in body["detail"], body


def test_deleting_a_repository_with_packages_needs_force_and_takes_its_files(
        stack, user, tmp_path):
    run = run_id()
    repo = f"e2e-{run}/del/debian/bookworm"
    create(stack, user, repo)
    name = f"cairn-doomed-{run}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, repo, [(deb.name, deb)], user=user)
    assert status == 201, body
    pool_url = body["packages"][0]["url"]
    stack.wait_published(repo, [deb.name])
    assert stack.fetch(pool_url)[0] == 200

    # Someone else's: 403 naming the owner; without force: 409 saying how.
    other = account(stack, f"e2e-other-{run}", "uploader")
    status, body = api(stack, "DELETE", f"/v1/repositories/{repo}?force=true", basic(other))
    assert status == 403 and user[0] in body["detail"], body
    status, body = api(stack, "DELETE", f"/v1/repositories/{repo}", basic(user))
    assert status == 409 and "force" in body["detail"], body
    status, body = api(stack, "DELETE", f"/v1/repositories/{repo}?force=true", basic(user))
    assert status == 202 and body["packages"] == 1, body
    # No more uploads while it goes.
    status, body = upload(stack, repo, [(deb.name, deb)], user=user)
    assert status in (404, 409), body

    deadline = time.time() + SYNC_TIMEOUT
    while time.time() < deadline:
        status, _ = api(stack, "GET", f"/v1/repositories/{repo}", basic(user))
        if status == 404:
            break
        time.sleep(1)
    assert status == 404, "the repository's record outlived its packages"
    assert stack.fetch(pool_url)[0] in (403, 404), "its package file went with it"
    suite = repo.split("/")[3]
    assert stack.repo_file(repo, f"dists/{suite}/InRelease")[0] in (403, 404)
    # The path is free again.
    create(stack, user, repo)
    status, _ = api(stack, "DELETE", f"/v1/repositories/{repo}", basic(user))
    assert status == 204


def test_cairn_repo_commands_with_the_real_binary(stack, user, tmp_path):
    import subprocess

    config = tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if k not in ("CAIRN_API_URL", "CAIRN_TOKEN")}
    env["CAIRN_CONFIG"] = str(config)

    def cairn(*args, stdin=b""):
        return subprocess.run([CLI, *args], input=stdin, env=env, capture_output=True,
                              timeout=120)

    out = cairn("login", "--api", stack.api, "--user", user[0], stdin=user[1].encode())
    assert out.returncode == 0, out.stderr
    run = run_id()
    path = f"e2e-{run}/cli/el/9"
    out = cairn("repo", "create", path, "--format", "yum", "--private",
                "--label", f"team=cli-{run}", "--description", "from the CLI")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split()[:3] == [path, "yum", "private"], out.stdout
    out = cairn("repo", "list", "--selector", f"team=cli-{run}")
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.decode().splitlines()] == [path]
    out = cairn("repo", "show", path)
    assert out.returncode == 0 and json.loads(out.stdout)["description"] == "from the CLI"
    out = cairn("repo", "create", path, "--format", "yum")
    assert out.returncode == 1 and b"already exists" in out.stderr, out
    out = cairn("repo", "list", "--selector", "team in (")
    assert out.returncode == 1 and b"selector" in out.stderr, out
    out = cairn("repo", "delete", path)
    assert out.returncode == 0, out.stderr
    out = cairn("repo", "show", path)
    assert out.returncode == 1 and b"404" in out.stderr, out


def test_an_upload_creates_its_repository_where_the_deployment_allows(stack, user, apt_for,
                                                                      tmp_path):
    """The local stack's AutoCreateRepositories is e2e-auto/*: there the first upload
    creates a public repository its uploader owns, in the files' format, and apt reads
    it; a malformed package creates nothing; elsewhere the same upload is a 404."""
    run = run_id()
    path = f"e2e-auto/{run}/debian/bookworm"
    name = f"cairn-auto-{run}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, f"e2e-{run}/manual/debian/bookworm", [(deb.name, deb)],
                          user=user)
    assert status == 404 and "POST /v1/repositories" in json.dumps(body), body
    broken = tmp_path / f"{name}-broken_1.0_all.deb"
    broken.write_bytes(b"!<arch>\nnot really")
    bad_path = f"e2e-auto/{run}/bad/bookworm"
    status, body = upload(stack, bad_path, [(broken.name, broken)], user=user)
    assert status == 400, body
    assert api(stack, "GET", f"/v1/repositories/{bad_path}", basic(user))[0] == 404

    status, body = upload(stack, path, [(deb.name, deb)], user=user)
    assert status == 201, body
    status, shown = api(stack, "GET", f"/v1/repositories/{path}", basic(user))
    assert status == 200, shown
    assert (shown["format"], shown["owners"], shown["visibility"]) == \
        ("apt", [user[0]], "public")
    stack.wait_published(path, [deb.name])
    apt = apt_for(path)
    apt.update()
    assert apt.download(name).name == deb.name
