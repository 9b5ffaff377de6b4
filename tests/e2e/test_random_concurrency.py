"""Issue 9: a seeded randomized concurrency run on the deployed stack, then the
invariant checker. Many clients mix API and presigned uploads (with second PUTs of
other bytes), multi-file forms, source packages sharing an .orig tarball whose bytes
clash, anchors, re-uploads, deletes and re-syncs; afterwards every repository they
touched settles and `cairn fsck` finds nothing wrong.

The seed is printed; rerun one with CAIRN_CHAOS_SEED=<seed>. The budget is
CAIRN_CHAOS_SECONDS (default 40); tests/bench/chaos.sh runs longer ones."""

import os
import random

from chaos import Chaos
from conftest import ROOT


def test_random_concurrent_workload_keeps_every_invariant(stack, user, capsys):
    seed = int(os.environ.get("CAIRN_CHAOS_SEED") or random.randrange(1, 10**6))
    seconds = float(os.environ.get("CAIRN_CHAOS_SECONDS", "40"))
    chaos = Chaos(stack, user, seed, seconds)
    with capsys.disabled():
        print(f"\nCAIRN_CHAOS_SEED={seed}")
    counts = chaos.run()
    assert not chaos.server_errors, f"seed {seed}: 5xx answers: {chaos.server_errors[:5]}"
    if chaos.storage_errors:
        with capsys.disabled():
            print(f"seed {seed}: the bucket answered {len(chaos.storage_errors)} presigned "
                  "PUT(s) with 5xx (LocalStack S3, see docs/testing.md)")
    assert sum(n for (a, s), n in counts.items() if s in (200, 201)) > 0, counts
    chaos.wait_settled()
    result = chaos.fsck(str(ROOT / "target/release/cairn"), stack.supported_repos_file,
                        stack.public_key)
    assert result.returncode == 0, \
        f"seed {seed}: fsck found problems:\n{result.stdout}\n{result.stderr}"
