"""Issue 3, done-means 4: during a key rotation the repository is signed by both keys,
and an apt client trusting only the old key and one trusting only the new key both
verify it. The stack is redeployed with the old key alone afterwards."""

import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, STATE, upload
from debs import make_deb, run_id

REPO = "pre-release/2.11/ubuntu/jammy"


def gpg_key(home: str, uid: str):
    subprocess.run(["gpg", "--homedir", home, "--batch", "--quiet", "--passphrase", "",
                    "--quick-gen-key", uid, "ed25519", "sign", "never"], check=True)
    secret = subprocess.run(["gpg", "--homedir", home, "--batch", "--armor",
                             "--export-secret-keys", uid], check=True,
                            capture_output=True, text=True).stdout
    public = subprocess.run(["gpg", "--homedir", home, "--batch", "--export", uid],
                            check=True, capture_output=True).stdout
    return secret, public


def deploy(signing_key: str):
    subprocess.run([str(ROOT / "localstack/deploy.sh"), f"SigningKeyArmored={signing_key}"],
                   check=True, capture_output=True)


@pytest.fixture
def rotation(tmp_path):
    old_secret = (STATE / "signing-key.asc").read_text()
    with tempfile.TemporaryDirectory() as home:
        new_secret, new_public = gpg_key(home, "Cairn rotation test <new@cairn.invalid>")
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    new_key = tmp_path / "new.gpg"
    new_key.write_bytes(new_public)
    deploy(old_secret + "\n" + new_secret)
    try:
        yield new_key
    finally:
        deploy(old_secret)


def test_both_keys_verify_during_rotation(stack, user, apt_for, rotation, tmp_path):
    name = "cairn-rotation-" + run_id()
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=user, product=name)
    assert status == 201, body
    stack.wait_published(REPO, [deb.name])

    # Wait for an InRelease carrying two signatures (the worker restarted with both keys).
    deadline = time.time() + 60
    while time.time() < deadline:
        _, inrelease = stack.repo_file(REPO, "dists/jammy/InRelease")
        (tmp_path / "InRelease").write_bytes(inrelease)
        both = tmp_path / "both.gpg"
        both.write_bytes(stack.public_key.read_bytes() + rotation.read_bytes())
        status = subprocess.run(["gpgv", "--status-fd", "1", "--keyring", str(both),
                                 str(tmp_path / "InRelease")], capture_output=True,
                                text=True).stdout
        if status.count("[GNUPG:] GOODSIG") == 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("InRelease never carried two signatures")

    # The published keyring holds both public keys.
    _, keyring = stack.repo_file(REPO, "cairn-archive-keyring.gpg")
    (tmp_path / "published.gpg").write_bytes(keyring)
    shown = subprocess.run(["gpg", "--homedir", str(tmp_path), "--batch", "--with-colons",
                            "--show-keys", str(tmp_path / "published.gpg")],
                           capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[0] for line in shown.splitlines()].count("pub") == 2, shown

    for label, key in [("old", stack.public_key), ("new", rotation)]:
        apt = apt_for(REPO, key=key, name=label)
        apt.update()
        policy = apt.run("apt-cache", "policy", name).stdout
        assert "Candidate: 1.0" in policy, f"{label} key: {policy}"
