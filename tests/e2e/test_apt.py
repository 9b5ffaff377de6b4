"""Done-means 1 and 5: real .deb files uploaded with curl are installable with a real,
isolated apt that verifies the signature; Cairn's stanzas match apt-ftparchive's."""

import subprocess

from conftest import ROOT, parse_stanza, sha256, upload

REPO = "release/2.11/ubuntu/jammy"


def test_curl_upload_then_apt_verifies_and_downloads(stack, user, real_debs, apt_for):
    for name, path in real_debs.items():
        status, body = upload(stack, REPO, [(path.name, path)], user=user, product=name)
        assert status in (200, 201), body  # 200: already there from an earlier run
        (pkg,) = body["packages"]
        assert pkg["sha256"] == sha256(path)
        assert pkg["status"] in ("stored", "unchanged")

    index = stack.wait_published(REPO, [p.name for p in real_debs.values()])
    for path in real_debs.values():
        assert index[path.name]["SHA256"] == sha256(path)
        assert index[path.name]["Filename"].startswith("pool/jammy/main/")

    apt = apt_for(REPO)
    apt.update()
    for name, path in real_debs.items():
        policy = apt.run("apt-cache", "policy", name).stdout
        assert "Candidate: (none)" not in policy and "Candidate:" in policy, policy
        fetched = apt.download(name)
        assert sha256(fetched) == sha256(path), f"{name}: downloaded file differs"


def test_inrelease_is_clearsigned_release_and_detached_signature_verifies(stack, user,
                                                                          real_debs, tmp_path):
    # Make sure the suite has been published at least once.
    stack.wait_published(REPO, [p.name for p in real_debs.values()])
    s1, inrelease = stack.repo_file(REPO, "dists/jammy/InRelease")
    s2, release = stack.repo_file(REPO, "dists/jammy/Release")
    s3, release_gpg = stack.repo_file(REPO, "dists/jammy/Release.gpg")
    assert (s1, s2, s3) == (200, 200, 200)
    (tmp_path / "InRelease").write_bytes(inrelease)
    (tmp_path / "Release").write_bytes(release)
    (tmp_path / "Release.gpg").write_bytes(release_gpg)
    keyring = str(stack.public_key)
    out = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-",
                          str(tmp_path / "InRelease")], capture_output=True, check=True)
    assert out.stdout == release, "InRelease's signed text must be Release byte for byte"
    subprocess.run(["gpgv", "--keyring", keyring, str(tmp_path / "Release.gpg"),
                    str(tmp_path / "Release")], capture_output=True, check=True)
    fields = parse_stanza(release.decode())
    assert fields["Acquire-By-Hash"] == "yes"
    assert fields["Suite"] == "jammy"
    # The published keyring is the configured key.
    s4, published_key = stack.repo_file(REPO, "cairn-archive-keyring.gpg")
    assert s4 == 200 and published_key == stack.public_key.read_bytes()


def test_stanzas_agree_with_apt_ftparchive(real_debs, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    for path in real_debs.values():
        (pool / path.name).write_bytes(path.read_bytes())
    reference = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=tmp_path,
                               capture_output=True, text=True, check=True).stdout
    theirs = {}
    for para in reference.split("\n\n"):
        f = parse_stanza(para)
        if f:
            theirs[f["Filename"]] = f
    assert len(theirs) == len(real_debs)
    for path in real_debs.values():
        rel = f"pool/{path.name}"
        ours = parse_stanza(subprocess.run(
            [str(ROOT / "target/release/cairn"), "inspect", str(pool / path.name),
             "--filename", rel], capture_output=True, text=True, check=True).stdout)
        assert ours == theirs[rel], f"{path.name}: fields differ"


def test_human_page_lists_packages_and_the_sources_line(stack, real_debs):
    stack.wait_published(REPO, [p.name for p in real_debs.values()])
    listing = stack.listing(REPO)
    status, page = stack.fetch(listing["page"])
    assert status == 200
    page = page.decode()
    root = f"{stack.repo_base}/release/2.11/ubuntu"
    assert (f"deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] {root} jammy main"
            in page)
    for name, path in real_debs.items():
        assert f">{name}</a>" in page
        assert f'href="{root}/pool/jammy/main/{name[0]}/{name}/{path.name}"' in page
