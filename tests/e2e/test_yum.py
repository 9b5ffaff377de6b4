"""Issue 3, done-means 1, 3 and 5 for YUM: real dnf (isolated, repo_gpgcheck=1, key from
file://) lists, downloads and installs uploaded RPMs; anchors, deletion and retention;
malformed RPMs are refused and change nothing."""

import hashlib
import subprocess
import time

import pytest

from conftest import curl, sha256, upload
from debs import run_id
from rpms import Dnf, broken_rpms, build_rpm

REPO = "release/3.0/el/9"


@pytest.fixture
def dnf_for(stack, tmp_path):
    clients = []

    def make(repo: str, arch: str = "x86_64", name: str = "cairn"):
        d = Dnf(tmp_path / f"dnf-{name}", f"{stack.repo_base}/{repo}/{arch}",
                stack.public_key_armored(), name=name)
        clients.append(d)
        return d

    yield make
    for d in clients:
        d.close()


def test_dnf_installs_a_package_with_its_dependency(stack, user, dnf_for, tmp_path):
    rid = run_id()
    dep_name, app_name = f"cairn-dep-{rid}", f"cairn-app-{rid}"
    dep = build_rpm(tmp_path, dep_name, noarch=True)
    app = build_rpm(tmp_path, app_name, requires=[f"{dep_name} >= 1.0"], source=True)
    files = [dep["binary"], app["binary"], app["source"]]
    status, body = upload(stack, REPO, [(f.name, f) for f in files], user=user)
    assert status == 201, body
    assert {p["status"] for p in body["packages"]} == {"stored"}

    x86 = stack.wait_yum(REPO, "x86_64", present=[dep["binary"].name, app["binary"].name])
    # noarch is published into every architecture, the source package only in SRPMS.
    arm = stack.wait_yum(REPO, "aarch64", present=[dep["binary"].name])
    assert f"Packages/{app['binary'].name}" not in arm
    srpms = stack.wait_yum(REPO, "SRPMS", present=[app["source"].name])
    assert f"Packages/{dep['binary'].name}" not in srpms
    assert x86[f"Packages/{app['binary'].name}"] == "1.0-1"

    dnf = dnf_for(REPO)
    dnf.run("makecache")
    available = dnf.run("repoquery", "--available", "--qf", "%{name}-%{version}-%{release}.%{arch}").stdout
    assert f"{app_name}-1.0-1.x86_64" in available, available
    assert f"{dep_name}-1.0-1.noarch" in available, available

    dest = dnf.root / "downloads"
    dnf.run("download", app_name, f"--destdir={dest}")
    got = sorted(dest.glob(f"{app_name}-*.rpm"))
    assert got and sha256(got[0]) == sha256(app["binary"])

    dnf.run("install", app_name)
    installed = dnf.root / "installroot"
    assert (installed / f"usr/bin/{app_name}").exists()
    assert (installed / f"usr/share/{dep_name}/VERSION").read_text().strip() == f"{dep_name} 1.0"


def test_dnf_reads_zstd_repodata(stack, user, dnf_for, tmp_path):
    """fedora repositories publish zstd repodata (template.yaml): dnf reads it."""
    repo = "release/3.0/fedora/41"
    name = f"cairn-zst-{run_id()}"
    rpm = build_rpm(tmp_path, name, noarch=True)["binary"]
    status, body = upload(stack, repo, [(rpm.name, rpm)], user=user)
    assert status == 201, body
    stack.wait_yum(repo, "x86_64", present=[rpm.name])
    _, repomd = stack.dir_file(repo, "x86_64/repodata/repomd.xml")
    assert b"-primary.xml.zst" in repomd and b".xml.gz" not in repomd, repomd
    dnf = dnf_for(repo, name="cairn-zst")
    dnf.run("makecache")
    available = dnf.run("repoquery", "--available").stdout
    assert f"{name}-0:1.0-1.noarch" in available, available


def test_dnf_refuses_metadata_signed_by_another_key(stack, user, tmp_path):
    """repo_gpgcheck=1 is real: a client that trusts a different key fails."""
    other = tmp_path / "gnupg"
    other.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(other), "--batch", "--passphrase", "",
                    "--quick-gen-key", "Other <other@example.org>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    key = tmp_path / "other.asc"
    key.write_bytes(subprocess.run(["gpg", "--homedir", str(other), "--armor", "--export"],
                                   check=True, capture_output=True).stdout)
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "gpg-agent"],
                   capture_output=True)
    rpm = build_rpm(tmp_path, f"cairn-sig-{run_id()}", noarch=True)
    status, body = upload(stack, REPO, [(rpm["binary"].name, rpm["binary"])], user=user)
    assert status == 201, body
    stack.wait_yum(REPO, "x86_64", present=[rpm["binary"].name])
    dnf = Dnf(tmp_path / "dnf-wrong-key", f"{stack.repo_base}/{REPO}/x86_64", key)
    try:
        result = dnf.run("makecache", check=False)
    finally:
        dnf.close()
    assert result.returncode != 0
    assert "GPG" in result.stderr or "signature" in result.stderr.lower(), result.stderr


def test_repomd_signature_and_checksums(stack, user, tmp_path):
    """repomd.xml.asc verifies with gpgv; every file repomd.xml names has its checksum."""
    import gzip
    import re

    rpm = build_rpm(tmp_path, f"cairn-sum-{run_id()}", noarch=True)
    status, body = upload(stack, REPO, [(rpm["binary"].name, rpm["binary"])], user=user)
    assert status == 201, body
    stack.wait_yum(REPO, "x86_64", present=[rpm["binary"].name])
    _, repomd = stack.dir_file(REPO, "x86_64/repodata/repomd.xml")
    _, asc = stack.dir_file(REPO, "x86_64/repodata/repomd.xml.asc")
    (tmp_path / "repomd.xml").write_bytes(repomd)
    (tmp_path / "repomd.xml.asc").write_bytes(asc)
    subprocess.run(["gpgv", "--keyring", str(stack.public_key), str(tmp_path / "repomd.xml.asc"),
                    str(tmp_path / "repomd.xml")], check=True, capture_output=True)
    entries = re.findall(rb'<data type="(\w+)">\s*<checksum type="sha256">(\w+)</checksum>\s*'
                         rb'<open-checksum type="sha256">(\w+)</open-checksum>\s*'
                         rb'<location href="([^"]+)"', repomd)
    assert {e[0] for e in entries} == {b"primary", b"filelists", b"other"}, repomd
    for _kind, checksum, open_checksum, href in entries:
        status, data = stack.dir_file(REPO, f"x86_64/{href.decode()}")
        assert status == 200
        assert hashlib.sha256(data).hexdigest() == checksum.decode()
        assert hashlib.sha256(gzip.decompress(data)).hexdigest() == open_checksum.decode()


def test_anchor_upload_lands_in_every_anchored_repository(stack, user, tmp_path):
    rpm = build_rpm(tmp_path, f"cairn-anchor-{run_id()}", noarch=True)
    status, body = upload(stack, "release/enabled/el/8", [(rpm["binary"].name, rpm["binary"])],
                          user=user)
    assert status == 201, body
    assert body["repositories"] == ["release/2.11/el/8", "release/3.0/el/8"]
    for repo in body["repositories"]:
        stack.wait_yum(repo, "x86_64", present=[rpm["binary"].name])
        status, data = stack.dir_file(repo, f"x86_64/Packages/{rpm['binary'].name}")
        assert status == 200 and hashlib.sha256(data).hexdigest() == sha256(rpm["binary"])


def test_delete_removes_from_metadata_then_from_the_bucket(stack, user, tmp_path):
    repo = "release/3.0/el/8"
    rpm = build_rpm(tmp_path, f"cairn-del-{run_id()}", noarch=True)
    name = rpm["binary"].name
    status, body = upload(stack, repo, [(name, rpm["binary"])], user=user)
    assert status == 201, body
    stack.wait_yum(repo, "x86_64", present=[name])

    status, _ = curl("-X", "DELETE", f"{stack.api}/{repo}/{name}")
    assert status == 401
    status, body = curl("-X", "DELETE", "-u", f"{user[0]}:{user[1]}", f"{stack.api}/{repo}/{name}")
    assert status == 202, body
    stack.wait_yum(repo, "x86_64", absent=[name])
    stack.wait_yum(repo, "aarch64", absent=[name])
    # The sync deletes the noarch copies one after the other: wait for every one of them.
    deadline = time.time() + 30
    while time.time() < deadline:
        if all(stack.dir_file(repo, f"{arch}/Packages/{name}")[0] != 200
               for arch in ["x86_64", "aarch64"]):
            break
        time.sleep(0.5)
    for arch in ["x86_64", "aarch64"]:
        assert stack.dir_file(repo, f"{arch}/Packages/{name}")[0] in (403, 404)
    status, body = curl("-X", "DELETE", "-u", f"{user[0]}:{user[1]}", f"{stack.api}/{repo}/{name}")
    assert status == 404, body


def test_retention_keeps_the_newest_versions(stack, user, tmp_path):
    """live/3.0/el/9 keeps 2 versions per package (template.yaml): after 3 uploads the
    oldest leaves the metadata, and its file leaves the bucket only after that."""
    repo = "live/3.0/el/9"
    name = f"cairn-ret-{run_id()}"
    builds = [build_rpm(tmp_path, name, version=v, noarch=True)["binary"]
              for v in ["1.0", "1.10", "1.9"]]
    for rpm in builds:
        status, body = upload(stack, repo, [(rpm.name, rpm)], user=user)
        assert status == 201, body
    oldest = builds[0].name
    deadline = time.time() + 90
    while time.time() < deadline:
        listed = stack.yum_locations(repo, "x86_64")
        file_status = stack.dir_file(repo, f"x86_64/Packages/{oldest}")[0]
        # Never a published file that metadata still names gone from the bucket.
        if f"Packages/{oldest}" in listed:
            assert file_status == 200, "a listed package's file disappeared"
        mine = sorted(v for href, v in listed.items() if href.startswith(f"Packages/{name}-"))
        if mine == ["1.10-1", "1.9-1"] and file_status != 200:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"retention did not converge: {mine}, file status {file_status}")


@pytest.mark.parametrize("damage", ["bad lead magic", "truncated header",
                                    "index entry outside the store"])
def test_malformed_rpm_is_refused_and_nothing_changes(stack, user, tmp_path, damage):
    good = build_rpm(tmp_path, f"cairn-bad-{run_id()}", noarch=True)["binary"]
    bad = tmp_path / "bad" / good.name
    bad.parent.mkdir()
    bad.write_bytes(broken_rpms(good.read_bytes())[damage])
    before = stack.listing(REPO)["packages"]
    status, body = upload(stack, REPO, [(bad.name, bad)], user=user)
    assert status == 400, body
    assert good.name in body["detail"], body
    assert stack.listing(REPO)["packages"] == before
    assert stack.dir_file(REPO, f"x86_64/Packages/{good.name}")[0] in (403, 404)


def test_published_repo_file_works_as_downloaded(stack, user, dnf_for, tmp_path):
    """The README calls `cairn.repo` ready: dnf uses it exactly as downloaded (the key
    comes from the repository, imported on first use with -y) and finds the package."""
    name = f"cairn-ready-{run_id()}"
    rpm = build_rpm(tmp_path, name, noarch=True)["binary"]
    status, body = upload(stack, REPO, [(rpm.name, rpm)], user=user)
    assert status == 201, body
    stack.wait_yum(REPO, "x86_64", present=[rpm.name])
    status, repo_file = stack.dir_file(REPO, "cairn.repo")
    assert status == 200
    assert b"gpgkey=http" in repo_file and b"repo_gpgcheck=1" in repo_file, repo_file
    dnf = dnf_for(REPO, name="ready")
    # Only the downloaded file: no locally provided key.
    for old in (dnf.root / "repos.d").glob("*.repo"):
        old.unlink()
    (dnf.root / "repos.d" / "cairn.repo").write_bytes(repo_file)
    dnf.run("makecache")
    available = dnf.run("repoquery", "--available", "--qf", "%{name}").stdout
    assert name in available, available
