"""Issue 3: `cairn verify` checks a published repository of each format (signatures with
the trusted keyring; every file the metadata names, with its size and SHA-256) and names
what is wrong after tampering."""

import subprocess
import urllib.request

import pytest

from charts import make_chart
from conftest import ROOT, AWS_ENV, upload
from debs import make_deb, run_id
from rpms import build_rpm
from test_helm import wait_index


def cairn_verify(stack, repo, keyring=None):
    env = dict(AWS_ENV, PATH="/usr/bin:/bin")
    proc = subprocess.run(
        [str(ROOT / "target/release/cairn"), "verify", repo, "--bucket",
         stack.repo_base.rsplit("/", 1)[1], "--keyring", str(keyring or stack.public_key)],
        env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def s3_put(stack, key, body: bytes):
    """Overwrites an object behind Cairn's back (LocalStack does not check credentials)."""
    req = urllib.request.Request(f"{stack.repo_base}/{key}", data=body, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200


def publish_one(stack, user, tmp_path, fmt):
    rid = run_id()
    if fmt == "deb":
        repo = "pre-release/3.0/ubuntu/focal"
        path = tmp_path / f"cairn-verify-{rid}_1.0_all.deb"
        path.write_bytes(make_deb(f"cairn-verify-{rid}", "1.0"))
        status, body = upload(stack, repo, [(path.name, path)], user=user)
        assert status == 201, body
        stack.wait_published(repo, [path.name])
        key = f"pre-release/3.0/ubuntu/{stack.packages_index(repo)[path.name]['Filename']}"
    elif fmt in ("rpm", "rpm-zstd"):
        # fedora repositories publish zstd repodata (template.yaml).
        repo = "pre-release/3.0/el/9" if fmt == "rpm" else "pre-release/3.0/fedora/41"
        path = build_rpm(tmp_path, f"cairn-verify-{rid}", noarch=True)["binary"]
        status, body = upload(stack, repo, [(path.name, path)], user=user)
        assert status == 201, body
        stack.wait_yum(repo, "aarch64", present=[path.name])
        key = f"{repo}/aarch64/Packages/{path.name}"
    else:
        repo = "pre-release/3.0/helm/stable"
        path = tmp_path / f"cairn-verify-{rid}-1.0.0.tgz"
        path.write_bytes(make_chart(f"cairn-verify-{rid}", "1.0.0"))
        status, body = upload(stack, repo, [(path.name, path)], user=user)
        assert status == 201, body
        wait_index(stack, repo, present=[path.name[:-4]])
        key = f"{repo}/{path.name}"
    return repo, key, path.read_bytes()


@pytest.mark.parametrize("fmt", ["deb", "rpm", "rpm-zstd", "helm"])
def test_verify_passes_then_names_a_tampered_file(stack, user, tmp_path, fmt):
    repo, key, original = publish_one(stack, user, tmp_path, fmt)
    code, out = cairn_verify(stack, repo)
    assert code == 0, out
    assert " 0 problem(s)" in out, out

    s3_put(stack, key, original + b"tampered")
    try:
        code, out = cairn_verify(stack, repo)
        assert code == 1, out
        # index.yaml records no size, only the digest.
        wrong = "sha256 " if fmt == "helm" else f"size {len(original) + 8}"
        assert f"PROBLEM: {key}: {wrong}" in out, out
    finally:
        s3_put(stack, key, original)
    code, out = cairn_verify(stack, repo)
    assert code == 0, out


def test_verify_refuses_metadata_signed_by_another_key(stack, user, tmp_path):
    repo, _, _ = publish_one(stack, user, tmp_path, "rpm")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Other <o@example.org>", "rsa2048", "sign",
                    "never"], check=True, capture_output=True)
    other = tmp_path / "other.gpg"
    other.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
    code, out = cairn_verify(stack, repo, keyring=other)
    assert code == 1, out
    assert "repomd.xml.asc: signing failed: no signature by a trusted key" in out or \
        "no signature by a trusted key" in out, out
