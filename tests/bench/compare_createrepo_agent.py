"""Drives createrepo-agent (PyPI `createrepo-agent`, the Python binding of the
daemon) for the comparison benchmark (tests/bench/compare.sh). Run with the
interpreter of its venv.

  compare_createrepo_agent.py seed CLUSTER DIR COUNT
      adds the first COUNT .rpm files of DIR (by name) to the x86_64 repository
      of the cluster directory and commits: a full build, printed as `seed_s=`.
  compare_createrepo_agent.py add CLUSTER NEW1 NEW2
      cold: a new agent (it loads the cluster's metadata) adds NEW1 and commits;
      warm: the same agent then adds NEW2 and commits. Then both are removed
      again (not timed), so the cluster is back to its seeded package set.
      Prints `cold_s= warm_s=`.

Every commit rewrites repodata/ and, since the seed step leaves a detached
signature beside repomd.xml, re-signs repomd.xml with the key that made it
(gpgme, in $GNUPGHOME).
"""

import gzip
import pathlib
import re
import sys
import time

import createrepo_agent

ARCHES = ("x86_64",)


def primary_count(cluster: pathlib.Path) -> int:
    """Packages listed by the published primary.xml of the x86_64 repository."""
    repodata = cluster / "x86_64" / "repodata"
    repomd = (repodata / "repomd.xml").read_text()
    href = re.search(r'<data type="primary">.*?<location href="([^"]+)"', repomd, re.S).group(1)
    with gzip.open(cluster / "x86_64" / href, "rt") as f:
        head = f.read(4096)
    return int(re.search(r'packages="(\d+)"', head).group(1))


def nevra_name(path: str) -> str:
    # cairnbench-90000-1.0-1.x86_64.rpm -> cairnbench-90000
    return pathlib.Path(path).name.rsplit("-", 2)[0]


def seed(cluster: pathlib.Path, packages: list) -> None:
    started = time.perf_counter()
    with createrepo_agent.Server(str(cluster)):
        with createrepo_agent.Client(str(cluster)) as client:
            for p in packages:
                client.add(p, ARCHES)
            client.commit()
    took = time.perf_counter() - started
    count = primary_count(cluster)
    if count != len(packages):
        raise SystemExit(f"createrepo-agent published {count} packages, expected {len(packages)}")
    print(f"seed_s={took:.3f} packages={count}")


def add(cluster: pathlib.Path, first: str, second: str) -> None:
    before = primary_count(cluster)
    started = time.perf_counter()
    with createrepo_agent.Server(str(cluster)):
        with createrepo_agent.Client(str(cluster)) as client:
            client.add(first, ARCHES)
            client.commit()
            cold = time.perf_counter() - started
            after_cold = primary_count(cluster)
            started = time.perf_counter()
            client.add(second, ARCHES)
            client.commit()
            warm = time.perf_counter() - started
            after_warm = primary_count(cluster)
            for p in (first, second):
                client.remove_name(nevra_name(p), ARCHES)
            client.commit()
    if (after_cold, after_warm) != (before + 1, before + 2):
        raise SystemExit(
            f"createrepo-agent listed {before} -> {after_cold} -> {after_warm} packages"
        )
    if primary_count(cluster) != before:
        raise SystemExit("createrepo-agent did not remove the added packages")
    print(f"cold_s={cold:.3f} warm_s={warm:.3f} packages={before}")


def main() -> None:
    mode, cluster = sys.argv[1], pathlib.Path(sys.argv[2])
    if mode == "seed":
        count = int(sys.argv[4])
        packages = sorted(str(p) for p in pathlib.Path(sys.argv[3]).glob("*.rpm"))[:count]
        if len(packages) != count:
            raise SystemExit(f"{sys.argv[3]} has fewer than {count} packages")
        seed(cluster, packages)
    elif mode == "add":
        add(cluster, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
