"""Issue 3, done-means 6: 50 concurrent uploads spread over 5 repositories of three
formats all end up in their repository's signed metadata, and nothing else changes."""

import time
from concurrent.futures import ThreadPoolExecutor

from charts import make_chart
from conftest import upload
from debs import make_deb, run_id
from rpms import build_rpm
from test_helm import wait_index

DEB_REPOS = ["release/2.11/ubuntu/focal", "release/2.11/debian/trixie"]
RPM_REPOS = ["release/2.11/el/9", "release/2.11/fedora/41"]
HELM_REPO = "release/2.11/helm/stable"
# Repositories nobody uploads to here: they must not change at all.
UNTOUCHED = ["release/2.11/ubuntu/noble", "release/2.11/fedora/40"]


def test_fifty_concurrent_uploads_over_five_repositories(stack, user, tmp_path):
    rid = run_id()
    jobs = []  # (repo, path)
    for repo in DEB_REPOS:
        for i in range(10):
            name = f"cairn-mix-{rid}-{i}"
            p = tmp_path / repo.replace("/", "_") / f"{name}_1.0_all.deb"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(make_deb(name, "1.0", payload=f"{repo} {i}\n".encode()))
            jobs.append((repo, p))
    for n, repo in enumerate(RPM_REPOS):
        for i in range(10):
            built = build_rpm(tmp_path / f"rpm{n}", f"cairn-mix-{rid}-{n}-{i}", noarch=True)
            jobs.append((repo, built["binary"]))
    for i in range(10):
        p = tmp_path / "charts" / f"cairn-mix-{rid}-{i}-1.0.{i}.tgz"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(make_chart(f"cairn-mix-{rid}-{i}", f"1.0.{i}"))
        jobs.append((HELM_REPO, p))
    assert len(jobs) == 50

    def seen(repo):
        return sorted(p["filename"] for p in stack.listing(repo)["packages"])

    before = {repo: seen(repo) for repo in DEB_REPOS + RPM_REPOS + [HELM_REPO]}
    untouched_before = {repo: (seen(repo), stack.listing(repo)["sync"]) for repo in UNTOUCHED}

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(
            lambda job: upload(stack, job[0], [(job[1].name, job[1])], user=user), jobs))
    assert [s for s, _ in results] == [201] * 50, [b for s, b in results if s != 201]

    mine = {}
    for repo, path in jobs:
        mine.setdefault(repo, []).append(path.name)
    for repo in DEB_REPOS:
        stack.wait_published(repo, mine[repo])
    for repo in RPM_REPOS:
        for arch in ["x86_64", "aarch64"]:
            stack.wait_yum(repo, arch, present=mine[repo])
    wait_index(stack, HELM_REPO, present=[n[:-4] for n in mine[HELM_REPO]])

    # Every repository holds exactly what it held plus its own ten packages.
    for repo, names in mine.items():
        assert seen(repo) == sorted(before[repo] + names), repo
    # The repositories published exactly that set, nothing from the others.
    for repo in DEB_REPOS:
        index = stack.packages_index(repo)
        assert set(index) == set(before[repo] + mine[repo]), repo
    for repo in RPM_REPOS:
        listed = {h.split("/", 1)[1] for h in stack.yum_locations(repo, "x86_64")}
        assert listed == set(before[repo] + mine[repo]), repo
    index = wait_index(stack, HELM_REPO)
    for repo, names in mine.items():
        if repo != HELM_REPO:
            assert not any(n.rsplit(".", 1)[0] in index for n in names)
    time.sleep(2)
    for repo, (names, sync) in untouched_before.items():
        assert (seen(repo), stack.listing(repo)["sync"]) == (names, sync), repo
