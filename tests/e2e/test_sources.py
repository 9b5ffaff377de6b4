"""Issue 3: Debian source packages (.dsc + the files it lists, as RWS accepts them) are
published in a signed Sources index that `apt-get source` uses; incomplete or
inconsistent source uploads are refused."""

import hashlib
import subprocess
import time

from conftest import Apt, upload
from debs import run_id

REPO = "pre-release/2.11/debian/bookworm"

CONTROL = """\
Source: {name}
Section: misc
Priority: optional
Maintainer: Cairn Tests <tests@example.org>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2

Package: {name}
Architecture: all
Description: Cairn source package test
 Built by the Cairn end-to-end tests.
"""


def build_source(tmp_path, name, version="1.0"):
    """A 3.0 (native) source package made by dpkg-source: {.dsc: path, .tar.xz: path}."""
    tree = tmp_path / f"{name}-{version}"
    (tree / "debian/source").mkdir(parents=True)
    (tree / "debian/source/format").write_text("3.0 (native)\n")
    (tree / "debian/control").write_text(CONTROL.format(name=name))
    (tree / "debian/changelog").write_text(
        f"{name} ({version}) unstable; urgency=medium\n\n  * Test.\n\n"
        f" -- Cairn Tests <tests@example.org>  Sat, 21 Nov 2026 10:00:00 +0000\n")
    (tree / "debian/rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    (tree / "debian/rules").chmod(0o755)
    (tree / "README").write_text(f"{name} {version}\n")
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=tmp_path, check=True,
                   capture_output=True)
    return {
        "dsc": tmp_path / f"{name}_{version}.dsc",
        "tar": tmp_path / f"{name}_{version}.tar.xz",
    }


def wait_sources(stack, name, timeout=90):
    """Waits until the signed InRelease names a Sources index listing `name`."""
    deadline = time.time() + timeout
    suite = REPO.split("/")[3]
    while time.time() < deadline:
        status, sources = stack.repo_file(REPO, f"dists/{suite}/main/source/Sources")
        if status == 200 and f"Package: {name}\n".encode() in sources:
            _, inrelease = stack.repo_file(REPO, f"dists/{suite}/InRelease")
            if f" {hashlib.sha256(sources).hexdigest()} ".encode() in inrelease:
                return
        time.sleep(0.5)
    raise AssertionError(f"{name} not in a signed Sources index within {timeout}s")


def test_apt_get_source_downloads_an_uploaded_source_package(stack, user, tmp_path):
    name = f"cairn-src-{run_id()}"
    src = build_source(tmp_path, name)
    status, body = upload(stack, REPO, [(p.name, p) for p in src.values()], user=user)
    assert status == 201, body

    kind, series, dist, suite = REPO.split("/")
    root = f"{stack.repo_base}/{kind}/{series}/{dist}"
    lines = (f"deb [signed-by=KEY arch=amd64] {root} {suite} main\n"
             f"deb-src [signed-by=KEY] {root} {suite} main")
    wait_sources(stack, name)
    apt = Apt(tmp_path / "apt", lines, stack.public_key)
    apt.update()
    shown = apt.run("apt-cache", "showsrc", name).stdout
    assert f"Package: {name}" in shown, shown
    d = apt.root / "downloads"
    apt.run("apt-get", "source", "--download-only", name, cwd=d)
    for path in src.values():
        got = d / path.name
        assert got.exists(), sorted(p.name for p in d.iterdir())
        assert hashlib.sha256(got.read_bytes()).digest() == \
            hashlib.sha256(path.read_bytes()).digest()


def test_incomplete_or_inconsistent_source_uploads_are_refused(stack, user, tmp_path):
    name = f"cairn-srcbad-{run_id()}"
    src = build_source(tmp_path, name)
    before = stack.listing(REPO)["packages"]
    # The .dsc without the tarball it lists.
    status, body = upload(stack, REPO, [(src["dsc"].name, src["dsc"])], user=user)
    assert status == 400 and src["tar"].name in body["detail"], body
    # A tarball without a .dsc.
    status, body = upload(stack, REPO, [(src["tar"].name, src["tar"])], user=user)
    assert status == 400 and "not listed by any .dsc" in body["detail"], body
    # A tarball whose bytes differ from what the .dsc lists.
    other = tmp_path / "other" / src["tar"].name
    other.parent.mkdir()
    other.write_bytes(src["tar"].read_bytes() + b"x")
    status, body = upload(stack, REPO, [(src["dsc"].name, src["dsc"]), (other.name, other)],
                          user=user)
    assert status == 400 and "does not match" in body["detail"], body
    assert stack.listing(REPO)["packages"] == before
