"""Done-means 4: 20 concurrent uploads into one suite all end up in Packages, with one
consistent, signed Release; the burst is coalesced into fewer rebuilds than uploads."""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import parse_stanza, upload
from debs import make_deb, run_id

REPO = "release/3.0/debian/bookworm"


def test_twenty_concurrent_uploads(stack, user, apt_for, tmp_path):
    rid = run_id()
    paths = []
    for i in range(20):
        name = f"cairn-burst-{rid}-{i:02d}"
        p = tmp_path / f"{name}_1.0_all.deb"
        p.write_bytes(make_deb(name, "1.0", payload=f"{name}\n".encode()))
        paths.append((name, p))
    before = stack.listing(REPO)["sync"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(
            lambda np: upload(stack, REPO, [(np[1].name, np[1])], user=user, product=np[0]),
            paths))
    assert [s for s, _ in results] == [201] * 20, results

    index = stack.wait_published(REPO, [p.name for _, p in paths])
    assert len(index) >= 20

    # One consistent, signed Release: its hashes match the indexes served beside it.
    status, inrelease = stack.repo_file(REPO, "dists/bookworm/InRelease")
    assert status == 200
    (tmp_path / "InRelease").write_bytes(inrelease)
    release = subprocess.run(["gpgv", "--keyring", str(stack.public_key), "--output", "-",
                              str(tmp_path / "InRelease")], capture_output=True,
                             check=True).stdout.decode()
    sha_section = release.split("SHA256:\n", 1)[1]
    import hashlib
    for line in sha_section.splitlines():
        if not line.startswith(" "):
            break
        digest, size, rel = line.split()
        s, body = stack.repo_file(REPO, f"dists/bookworm/{rel}")
        if "." not in rel.rsplit("/", 1)[1]:
            # The plain text has no by-hash copy (apt fetches a compressed form).
            assert s == 200 and hashlib.sha256(body).hexdigest() == digest, rel
            continue
        s2, by_hash = stack.repo_file(REPO, f"dists/bookworm/{rel.rsplit('/', 1)[0]}"
                                             f"/by-hash/SHA256/{digest}")
        assert s2 == 200 and hashlib.sha256(by_hash).hexdigest() == digest, rel
        assert len(by_hash) == int(size)

    apt = apt_for(REPO)
    apt.update()
    shown = apt.run("apt-cache", "show", *[n for n, _ in paths]).stdout
    assert len([p for p in shown.split("\n\n") if parse_stanza(p)]) == 20

    # The state item is updated just after InRelease is written: let it settle.
    deadline = time.time() + 30
    after = stack.listing(REPO)["sync"]
    while after["published_seq"] != after["change_seq"] and time.time() < deadline:
        time.sleep(0.2)
        after = stack.listing(REPO)["sync"]
    rebuilds = after["publish_count"] - before["publish_count"]
    print(f"20 concurrent uploads -> {rebuilds} metadata rebuild(s)")
    assert 1 <= rebuilds < 20, after
    assert after["published_seq"] == after["change_seq"]
