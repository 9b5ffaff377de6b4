"""Indexes are published in compressed pieces (gzip members and zstd frames one after
the other, xz blocks in one stream; shared/cairn-core/src/publish/pieces.rs), so that a
publication compresses only the piece that changed. Stock clients must read them: apt
every encoding of a `Packages` index cut into several pieces, here (this test found
that apt reads only the first of concatenated xz streams). dnf: every repodata
document is at least three pieces, its head, its packages and its tail, so every dnf
test in test_yum.py reads them, gzip and zstd."""

import itertools
import lzma
import re
import zlib

from conftest import upload
from debs import make_deb, run_id

REPO = "live/3.0/debian/bookworm"
SPAN = 128  # PIECE_SPAN


def ends_piece(filename: str) -> bool:
    """The server's rule (FNV-1a 64 of the file name)."""
    h = 0xCBF29CE484222325
    for b in filename.encode():
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h % SPAN == 0


def xz_blocks(data: bytes) -> int:
    """Blocks in a one-stream xz file: the record count of the index its footer finds."""
    assert data[:6] == b"\xfd7zXZ\x00" and data[-2:] == b"YZ"
    backward = (int.from_bytes(data[-8:-4], "little") + 1) * 4
    index = data[-12 - backward:-12]
    assert index[0] == 0
    count, shift, pos = 0, 0, 1
    while True:
        byte = index[pos]
        count |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return count


def members(data: bytes, new) -> int:
    count = 0
    while data:
        d = new()
        d.decompress(data)
        data = d.unused_data
        count += 1
    return count


def test_apt_reads_every_encoding_of_an_index_in_pieces(stack, user, apt_for, tmp_path):
    rid = run_id()
    # A package whose name ends a piece, sorted before two that do not: three packages
    # (plus whatever earlier runs left in the suite) in at least two pieces.
    first = next(n for n in (f"cairn-piece-{rid}-a{k}" for k in itertools.count())
                 if ends_piece(f"{n}_1.0_all.deb"))
    names = [first] + [n for n in (f"cairn-piece-{rid}-b{k}" for k in range(50))
                       if not ends_piece(f"{n}_1.0_all.deb")][:2]
    for name in names:
        path = tmp_path / f"{name}_1.0_all.deb"
        path.write_bytes(make_deb(name, "1.0", payload=f"{name}\n".encode()))
        status, body = upload(stack, REPO, [(path.name, path)], user=user, product=name)
        assert status == 201, body
    stack.wait_published(REPO, [f"{n}_1.0_all.deb" for n in names])

    base = "dists/bookworm/main/binary-amd64/Packages"
    sizes = {}
    for ext in ["gz", "xz", "zst"]:
        status, body = stack.repo_file(REPO, f"{base}.{ext}")
        assert status == 200, ext
        sizes[ext] = len(body)
        if ext == "gz":
            assert members(body, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)) >= 2
        if ext == "xz":
            assert members(body, lzma.LZMADecompressor) == 1 and xz_blocks(body) >= 2

    for ext in ["gz", "xz", "zst"]:
        apt = apt_for(REPO, name=ext)
        out = apt.run("apt-get", "update", "--error-on=any",
                      f"-oAcquire::CompressionTypes::Order::={ext}").stdout
        # apt says what it fetched and its size: this encoding's file.
        got = re.search(r"bookworm/main amd64 Packages \[([0-9.]+) (B|kB)\]", out)
        assert got, out
        size = float(got.group(1)) * (1000 if got.group(2) == "kB" else 1)
        assert abs(size - sizes[ext]) <= (50 if got.group(2) == "kB" else 0), (ext, out, sizes)
        shown = apt.run("apt-cache", "policy", *names).stdout
        for name in names:
            assert re.search(rf"^{re.escape(name)}:\n\s+Installed: \(none\)\n\s+Candidate: 1\.0",
                             shown, re.M), (ext, shown)
