"""Storage that does not grow forever, and no 404 for a client mid-update: the APT
by-hash copies and YUM repodata files a publication stops naming stay for the grace
period (SupersededGraceSeconds, 20 s on the local stack: infra/samconfig.toml), then
the metadata sync deletes them. What the current publication names is never deleted,
and stock apt and dnf still read the repository afterwards."""

import re
import time

from conftest import upload
from debs import make_deb, run_id
from rpms import build_rpm
from test_yum import dnf_for  # noqa: F401  (fixture)

APT_REPO = "live/3.0/debian/bookworm"
YUM_REPO = "live/3.0/el/9"
GRACE = 20


def by_hash_keys(stack) -> set:
    """dists/bookworm/... keys of the by-hash copies the current InRelease names (the
    compressed indexes: the plain text has none)."""
    status, inrelease = stack.repo_file(APT_REPO, "dists/bookworm/InRelease")
    assert status == 200
    text = inrelease.decode()
    keys = set()
    for line in text.split("SHA256:\n", 1)[1].splitlines():
        if not line.startswith(" "):
            break
        digest, _size, path = line.split()
        folder, name = path.rsplit("/", 1)
        if "." in name:
            keys.add(f"dists/bookworm/{folder}/by-hash/SHA256/{digest}")
    return keys


def repodata_keys(stack) -> set:
    """9/x86_64/repodata/... files the current repomd.xml names (repo_file is relative
    to <kind>/<series>/<dist>)."""
    status, repomd = stack.repo_file(YUM_REPO, "9/x86_64/repodata/repomd.xml")
    assert status == 200
    hrefs = re.findall(r'<location href="([^"]+)"', repomd.decode())
    assert hrefs
    return {f"9/x86_64/{h}" for h in hrefs}


def status_of(stack, repo, key) -> int:
    return stack.repo_file(repo, key)[0]


def publish_both(stack, user, tmp_path, tag) -> float:
    """Uploads one new .deb and one new .rpm, waits until both are published; returns
    the time (after both) from which the previous publications count as superseded."""
    name = f"cairn-gone-{run_id()}-{tag}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0", payload=f"{name}\n".encode()))
    status, body = upload(stack, APT_REPO, [(deb.name, deb)], user=user, product=name)
    assert status == 201, body
    rpm = build_rpm(tmp_path, name, noarch=True)["binary"]
    status, body = upload(stack, YUM_REPO, [(rpm.name, rpm)], user=user)
    assert status == 201, body
    stack.wait_published(APT_REPO, [deb.name])
    stack.wait_yum(YUM_REPO, "x86_64", present=[rpm.name])
    return time.time()


def wait_gone(stack, repo, keys, timeout=30):
    deadline = time.time() + timeout
    left = set(keys)
    while left and time.time() < deadline:
        left = {k for k in left if status_of(stack, repo, k) != 404}
        if left:
            time.sleep(1)
    assert not left, f"{repo}: still served after the grace period: {sorted(left)}"


def test_superseded_metadata_outlives_the_grace_period_then_goes(
        stack, user, apt_for, dnf_for, tmp_path):  # noqa: F811
    publish_both(stack, user, tmp_path, "a")
    first_apt, first_yum = by_hash_keys(stack), repodata_keys(stack)

    publish_both(stack, user, tmp_path, "b")
    second_apt, second_yum = by_hash_keys(stack), repodata_keys(stack)
    old_apt, old_yum = first_apt - second_apt, first_yum - second_yum
    assert old_apt and old_yum, "each publication changes an index"
    # A client that read the first InRelease or repomd.xml still finds what it names.
    for key in first_apt:
        assert status_of(stack, APT_REPO, key) == 200, key
    for key in first_yum:
        assert status_of(stack, YUM_REPO, key) == 200, key

    # Past the grace period, the next publication's sync prunes them...
    time.sleep(GRACE + 2)
    superseded_second = publish_both(stack, user, tmp_path, "c")
    wait_gone(stack, APT_REPO, old_apt - by_hash_keys(stack))
    wait_gone(stack, YUM_REPO, old_yum - repodata_keys(stack))
    # ...but not what the second publication named (superseded just now, within the
    # grace period), nor anything the current one names.
    assert time.time() - superseded_second < GRACE, "too slow to tell"
    for key in second_apt | by_hash_keys(stack):
        assert status_of(stack, APT_REPO, key) == 200, key
    for key in second_yum | repodata_keys(stack):
        assert status_of(stack, YUM_REPO, key) == 200, key

    # Stock clients read what is left.
    apt = apt_for(APT_REPO)
    apt.run("apt-get", "update", "--error-on=any")
    dnf = dnf_for(YUM_REPO)
    dnf.run("makecache")
