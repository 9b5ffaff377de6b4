"""Issue 3, done-means 4: during a key rotation the repository is signed by both keys,
and an apt client trusting only the old key and one trusting only the new key both
verify it; so do dnf (repomd.xml.asc) and helm (a chart's .prov). The key secret holds
both keys during the test and the old key alone afterwards."""

import os
import subprocess
import tempfile
import time

import pytest

from conftest import AWS_ENV, CACHE, STATE, read_env, upload
from debs import make_deb, run_id

REPO = "pre-release/2.11/ubuntu/jammy"


def gpg_key(home: str, uid: str):
    subprocess.run(["gpg", "--homedir", home, "--batch", "--quiet", "--passphrase", "",
                    "--quick-gen-key", uid, "rsa3072", "sign", "never"], check=True)
    secret = subprocess.run(["gpg", "--homedir", home, "--batch", "--armor",
                             "--export-secret-keys", uid], check=True,
                            capture_output=True, text=True).stdout
    public = subprocess.run(["gpg", "--homedir", home, "--batch", "--export", uid],
                            check=True, capture_output=True).stdout
    armored = subprocess.run(["gpg", "--homedir", home, "--batch", "--armor", "--export", uid],
                             check=True, capture_output=True).stdout
    return secret, public, armored


def set_signing_keys(signing_keys: str):
    """Rotation as operators do it: a new value of the key secret, no redeploy (warm
    workers re-read it; every 2 s on the local stack)."""
    env = read_env(STATE / "cairn.env")
    subprocess.run([str(CACHE / "localstack-venv/bin/aws"), "--endpoint-url",
                    AWS_ENV["AWS_ENDPOINT_URL"], "secretsmanager", "put-secret-value",
                    "--secret-id", env["CAIRN_SIGNING_KEY_SECRET"],
                    "--secret-string", signing_keys],
                   check=True, capture_output=True, env=dict(os.environ, **AWS_ENV))


@pytest.fixture(scope="module")
def rotation(tmp_path_factory):
    """One redeploy with both keys for the module; yields the new public key (binary;
    the armoured copy sits beside it as new.asc)."""
    tmp_path = tmp_path_factory.mktemp("rotation")
    old_secret = (STATE / "signing-key.asc").read_text()
    with tempfile.TemporaryDirectory() as home:
        new_secret, new_public, new_armored = gpg_key(
            home, "Cairn rotation test <new@cairn.invalid>")
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    new_key = tmp_path / "new.gpg"
    new_key.write_bytes(new_public)
    (tmp_path / "new.asc").write_bytes(new_armored)
    set_signing_keys(old_secret + "\n" + new_secret)
    time.sleep(3)  # longer than the local refresh interval: the next sync re-reads
    try:
        yield new_key
    finally:
        set_signing_keys(old_secret)


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


def good_signatures(tmp_path, signed: bytes, keyrings, detached_data: bytes = None) -> int:
    """How many signatures of `signed` gpgv accepts with the given keyrings."""
    both = tmp_path / "both-keys.gpg"
    both.write_bytes(b"".join(k.read_bytes() for k in keyrings))
    sig = tmp_path / "signed"
    sig.write_bytes(signed)
    args = ["gpgv", "--status-fd", "1", "--keyring", str(both), str(sig)]
    if detached_data is not None:
        data = tmp_path / "data"
        data.write_bytes(detached_data)
        args.append(str(data))
    out = subprocess.run(args, capture_output=True, text=True).stdout
    return out.count("[GNUPG:] GOODSIG")


def test_dnf_and_helm_verify_with_either_key_during_rotation(stack, user, rotation, tmp_path):
    from charts import make_chart
    from rpms import Dnf, build_rpm
    from test_helm import Helm, wait_index

    keys = [stack.public_key, rotation]
    rpm_repo, helm_repo = "pre-release/2.11/el/9", "pre-release/2.11/helm/stable"
    rpm = build_rpm(tmp_path, f"cairn-rotation-{run_id()}", noarch=True)["binary"]
    status, body = upload(stack, rpm_repo, [(rpm.name, rpm)], user=user)
    assert status == 201, body
    stack.wait_yum(rpm_repo, "x86_64", present=[rpm.name])
    _, repomd = stack.dir_file(rpm_repo, "x86_64/repodata/repomd.xml")
    _, asc = stack.dir_file(rpm_repo, "x86_64/repodata/repomd.xml.asc")
    assert good_signatures(tmp_path, asc, keys, repomd) == 2

    for label, armored in [("old", stack.public_key_armored()),
                           ("new", rotation.with_name("new.asc"))]:
        dnf = Dnf(tmp_path / f"dnf-{label}", f"{stack.repo_base}/{rpm_repo}/x86_64", armored)
        try:
            dnf.run("makecache")
            assert rpm.name.split("-1.0-")[0] in dnf.run("repoquery", "--available").stdout
        finally:
            dnf.close()

    name = f"cairn-rotation-{run_id()}"
    chart = tmp_path / f"{name}-1.0.0.tgz"
    chart.write_bytes(make_chart(name, "1.0.0"))
    status, body = upload(stack, helm_repo, [(chart.name, chart)], user=user)
    assert status == 201, body
    wait_index(stack, helm_repo, present=[f"{name}-1.0.0"])
    _, prov = stack.dir_file(helm_repo, chart.name + ".prov")
    assert good_signatures(tmp_path, prov, keys) == 2
    for label, keyring in [("old", stack.public_key), ("new", rotation)]:
        helm = Helm(tmp_path / f"helm-{label}")
        helm.run("repo", "add", "cairn", f"{stack.repo_base}/{helm_repo}")
        dest = tmp_path / f"pulled-{label}"
        dest.mkdir()
        helm.run("pull", f"cairn/{name}", "--version", "1.0.0", "--verify",
                 "--keyring", str(keyring), "--destination", str(dest))
