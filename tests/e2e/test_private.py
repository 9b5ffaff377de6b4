"""Private repositories read by stock clients with a read-scoped token (docs/access.md,
"Private repositories"): apt (auth.conf), dnf (username/password in the .repo) and helm
(repo add --username --password, pull --verify) read them through the API's read path,
and fail without the token; the files are not at their public URLs in the bucket."""

import json
import time
import urllib.parse

from conftest import SYNC_TIMEOUT, curl, upload
from debs import make_deb, run_id
from rpms import Dnf, build_rpm
from test_helm import Helm
from test_tokens import api, basic, issue


def create_private(stack, user, fmt, path):
    status, body = api(stack, "POST", "/v1/repositories", basic(user),
                       {"format": fmt, "path": path, "visibility": "private"})
    assert status == 201, body


def wait_published(stack, user, repo, filename, timeout=SYNC_TIMEOUT):
    """Until the repository's listing (as its owner) has the file and the publication
    caught up with the last change."""
    deadline = time.time() + timeout
    body = {}
    while time.time() < deadline:
        status, out = curl("-u", f"{user[0]}:{user[1]}", f"{stack.api}/{repo}")
        body = json.loads(out) if status == 200 else {}
        sync = body.get("sync", {})
        names = {p["filename"] for p in body.get("packages", [])}
        if filename in names and sync.get("published_seq", 0) >= sync.get("change_seq", 1):
            return body
        time.sleep(1)
    raise AssertionError(f"{filename} not published in {repo}: {body}")


def files(stack, key):
    return f"{stack.api}/v1/files/{key}"


def test_apt_reads_a_private_repository_with_a_token_in_auth_conf(stack, user, apt_for,
                                                                   tmp_path):
    run = run_id()
    repo = f"e2e-{run}/priv/debian/bookworm"
    create_private(stack, user, "apt", repo)
    name = f"cairn-private-{run}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, repo, [(deb.name, deb)], user=user)
    assert status == 201, body
    listing = wait_published(stack, user, repo, deb.name)
    assert listing["apt_source"].split()[2] == files(stack, repo.rsplit("/", 1)[0])
    pool_url = listing["packages"][0]["url"]
    assert pool_url.startswith(f"{stack.api}/v1/files/")
    key = pool_url[len(f"{stack.api}/v1/files/"):]
    # Not in the bucket's public part; the read path asks for credentials.
    assert stack.fetch(f"{stack.repo_base}/{key}")[0] in (403, 404)
    assert curl(pool_url)[0] == 401
    token = issue(stack, user, [f"read:{repo}"])["token"]

    root = repo.rsplit("/", 1)[0]
    apt = apt_for(repo, name="-private")
    (apt.root / "sources.list").write_text(
        f"deb [signed-by={apt.root}/key.gpg arch=amd64] {files(stack, root)} bookworm main\n")
    # Without the token: apt cannot read the index.
    failed = apt.run("apt-get", "update", "--error-on=any", check=False)
    assert failed.returncode != 0, failed.stdout
    # With it, in auth.conf as apt_auth.conf(5) describes (machine host/path).
    url = urllib.parse.urlsplit(stack.api)
    (apt.root / "auth.conf").write_text(
        f"machine {url.scheme}://{url.netloc}{url.path}/v1/files/{root}\n"
        f"login apt\npassword {token}\n")
    (apt.root / "auth.conf").chmod(0o644)
    with open(apt.root / "apt.conf", "a") as conf:
        conf.write(f'Dir::Etc::netrc "{apt.root}/auth.conf";\n'
                   f'Dir::Etc::netrcparts "{apt.root}/auth.conf.d";\n')
    (apt.root / "auth.conf.d").mkdir(exist_ok=True)
    apt.update()
    assert apt.download(name).read_bytes() == deb.read_bytes()

    # A token of the same account without `read`: 403; another account's: 404.
    upload_only = issue(stack, user, [f"upload:{repo}"])["token"]
    assert curl("-u", f"x:{upload_only}", pool_url)[0] == 403


def test_dnf_reads_a_private_repository_with_username_and_password(stack, user, tmp_path):
    run = run_id()
    repo = f"e2e-{run}/priv/el/9"
    create_private(stack, user, "yum", repo)
    rpm = build_rpm(tmp_path, f"cairn-private-{run}", noarch=True)["binary"]
    status, body = upload(stack, repo, [(rpm.name, rpm)], user=user)
    assert status == 201, body
    wait_published(stack, user, repo, rpm.name)
    token = issue(stack, user, [f"read:{repo}"])["token"]
    baseurl = files(stack, f"{repo}/x86_64")

    without = Dnf(tmp_path / "dnf-anon", baseurl, stack.public_key_armored(), name="priv")
    try:
        assert without.run("makecache", check=False).returncode != 0
    finally:
        without.close()
    dnf = Dnf(tmp_path / "dnf-token", baseurl, stack.public_key_armored(), name="priv",
              extra=f"username=dnf\npassword={token}\n")
    try:
        dnf.run("makecache")
        dest = dnf.root / "downloads"
        dnf.run("download", rpm.name.split("-1.0")[0], f"--destdir={dest}")
        assert (dest / rpm.name).read_bytes() == rpm.read_bytes()
    finally:
        dnf.close()


def test_helm_pulls_verified_from_a_private_repository(stack, user, tmp_path):
    run = run_id()
    repo = f"e2e-{run}/priv/helm/stable"
    create_private(stack, user, "helm", repo)
    helm = Helm(tmp_path / "helm")
    name = f"cairn-private-{run}"
    chart = helm.package(name, "0.1.0")
    status, body = upload(stack, repo, [(chart.name, chart)], user=user)
    assert status == 201, body
    wait_published(stack, user, repo, chart.name)
    token = issue(stack, user, [f"read:{repo}"])["token"]
    url = files(stack, repo)

    refused = helm.run("repo", "add", "anon", url, check=False)
    assert refused.returncode != 0, refused.stdout
    helm.run("repo", "add", "priv", url, "--username", "helm", "--password", token)
    found = helm.run("search", "repo", f"priv/{name}").stdout
    assert name in found, found
    status, keyring = curl("-L", "-u", f"helm:{token}", f"{url}/cairn-keyring.gpg")
    assert status == 200
    (tmp_path / "keyring.gpg").write_bytes(keyring)
    dest = tmp_path / "pulled"
    dest.mkdir()
    helm.run("pull", f"priv/{name}", "--version", "0.1.0", "--verify",
             "--keyring", str(tmp_path / "keyring.gpg"), "--destination", str(dest))
    assert (dest / chart.name).read_bytes() == chart.read_bytes()


def test_git_clones_a_private_archive_with_a_token_and_not_without(stack, user, git_origin,
                                                                   tmp_path):
    """An archive repository made private before its first archive: its git repositories
    and tarballs are read through the API's read path with a read token (git follows
    the redirects of packs with http.followRedirects=true), not from the bucket."""
    from conftest import archive_done, cairn_cli
    from gitorigin import git, git_env
    from test_archive import assert_checkout, sample_files, unique

    name = unique("private")
    status, body = api(stack, "POST", "/v1/repositories", basic(user),
                       {"format": "archive", "name": name, "visibility": "private"})
    assert status == 201, body
    assert (body["path"], body["format"], body["name"]) == (f"archive/{name}", "archive", name)
    files = sample_files(name)
    _, origin = git_origin.make_origin(name, files)
    status, body = archive_done(stack, user, {"name": name, "url": origin, "ref": "main"})
    assert status == 200, body
    tag = body["tag"]
    read_path = f"{stack.api}/v1/files"
    assert body["url"]["tree"] == f"{read_path}/trees/{name}/{tag}.git"
    assert body["url"]["readonly"] == f"{read_path}/git/{name}.git"
    assert body["tarball"] == f"{read_path}/tarballs/{name}/{tag}.tar.gz"
    # Nothing at the public keys of the archive bucket.
    for key in (f"trees/{name}/{tag}.git/info/refs", f"git/{name}.git/info/refs",
                f"tarballs/{name}/{tag}.tar.gz"):
        assert stack.fetch(f"{stack.archive_base}/{key}")[0] in (403, 404), key

    env = git_env(tmp_path / "home")
    (tmp_path / "home").mkdir()

    def clone(url, dest):
        return git("-c", "http.followRedirects=true", "clone", "-q", "--branch", tag,
                   "--single-branch", "--no-tags", url, dest, env=env, check=False)

    def with_token(url, token):
        scheme, rest = url.split("://", 1)
        return f"{scheme}://cairn:{token}@{rest}"

    # Without credentials, or with a token for another archive: no clone.
    failed = clone(body["url"]["tree"], tmp_path / "anonymous")
    assert failed.returncode != 0, failed.stdout
    other = issue(stack, user, ["read:archive/someone-else"])["token"]
    failed = clone(with_token(body["url"]["tree"], other), tmp_path / "other")
    assert failed.returncode != 0, failed.stdout
    # With a read token: both repositories clone to the archived tree.
    token = issue(stack, user, [f"read:archive/{name}"])["token"]
    for which in ("tree", "readonly"):
        dest = tmp_path / which
        done = clone(with_token(body["url"][which], token), dest)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert_checkout(dest, files)
    # The tarball, with the token as the password; the archive API shows it to the owner.
    status, out = curl("-L", "-u", f"cairn:{token}", body["tarball"])
    assert status == 200 and out[:2] == b"\x1f\x8b", (status, out[:200])
    assert curl("-L", body["tarball"])[0] == 401
    status, shown = api(stack, "GET", f"/v1/archives/{name}", basic(user))
    assert status == 200 and tag in json.dumps(shown), shown
    # A stranger's account sees no such archive, and cannot archive under the name.
    stranger = ("e2e-stranger", "not-the-owner-" + run_id())
    cairn_cli("user", "add", stranger[0], "--table", stack.table,
              stdin=stranger[1].encode())
    status, shown = api(stack, "GET", f"/v1/archives/{name}", basic(stranger))
    assert status == 404, shown
    status, refused = api(stack, "POST", "/v1/archives", basic(stranger),
                          {"name": name, "url": origin, "ref": "main"})
    assert status == 404, refused
    # Archives are immutable: the repository stays, whatever force says.
    status, kept = api(stack, "DELETE", f"/v1/repositories/archive/{name}?force=true",
                       basic(user))
    assert status == 409 and "immutable" in json.dumps(kept), kept


def test_archive_writes_follow_the_claim_of_their_name(stack, user, git_origin):
    """An archive repository claims its name with an item of the name's partition
    (docs/data-model.md, "Archive name claims"); an operation accepted for the name as
    a public one that finds it claimed when it writes records nothing and fails with
    409; deleting the empty repository releases the claim."""
    from test_archive import sample_files, unique
    from test_tokens import aws
    from conftest import archive_done

    def claim(name):
        return aws(stack, "get-item", "--consistent-read", "--key",
                   json.dumps({"pk": {"S": f"ARCHIVE#{name}"}, "sk": {"S": "!CLAIM"}}))

    name = unique("claimed")
    status, body = api(stack, "POST", "/v1/repositories", basic(user),
                       {"format": "archive", "name": name, "visibility": "private"})
    assert status == 201, body
    storage = claim(name)["Item"]["storage"]["S"]
    assert len(storage) >= 16, storage
    status, body = api(stack, "DELETE", f"/v1/repositories/archive/{name}", basic(user))
    assert status in (200, 204), body
    assert "Item" not in claim(name)

    # A repository's claim lands after the API took a public request for the name
    # (written here straight into the table, as the racing creation would).
    raced = unique("raced")
    _, origin = git_origin.make_origin(raced, sample_files(raced))
    aws(stack, "put-item", "--item",
        json.dumps({"pk": {"S": f"ARCHIVE#{raced}"}, "sk": {"S": "!CLAIM"},
                    "storage": {"S": "0" * 32}}))
    status, body = archive_done(stack, user, {"name": raced, "url": origin, "ref": "main"})
    assert status == 409 and "claimed" in json.dumps(body), (status, body)
    items = aws(stack, "query", "--consistent-read", "--key-condition-expression", "pk = :pk",
                "--expression-attribute-values",
                json.dumps({":pk": {"S": f"ARCHIVE#{raced}"}}))["Items"]
    assert [i["sk"]["S"] for i in items] == ["!CLAIM"], items
