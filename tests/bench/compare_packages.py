"""Generates the package sets of the comparison benchmark (tests/bench/compare.sh):
COUNT tiny but valid .deb or .rpm files named cairnbench-00000 ... plus a few
extra ones (cairnbench-9xxxx) to add in the incremental runs. Every tool of the
comparison reads the same files.

  compare_packages.py deb DIR COUNT EXTRA
  compare_packages.py rpm DIR COUNT EXTRA TEMPLATE_DIR

Files already there are kept, so a rerun only checks names. The .debs come from
tests/e2e/debs.py. The .rpms are copies of one package that rpmbuild builds once
into TEMPLATE_DIR (named cairnbench-XXXXX, with an uncompressed payload so that
the name also appears verbatim in the file list of the cpio archive), with the
name replaced in place by another of the same length and every digest rpm checks
(header SHA-1 and SHA-256, payload SHA-256, MD5) recomputed: `rpm -K` accepts
each copy. Generating 10,000 of them takes seconds where 10,000 rpmbuild runs
would take an hour.
"""

import hashlib
import os
import pathlib
import struct
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
from debs import make_deb  # noqa: E402

TOKEN = b"cairnbench-XXXXX"

# Signature header tags (rpm's rpmtag.h).
SIG_SHA1 = 269
SIG_SHA256 = 273
SIG_MD5 = 1004
# Main header tags.
PAYLOAD_DIGEST = 5092
PAYLOAD_DIGEST_ALT = 5097


SPEC = """\
Name: cairnbench-XXXXX
Version: 1.0
Release: 1
Summary: Cairn comparison benchmark package cairnbench-XXXXX
License: MIT
URL: https://example.org/cairnbench-XXXXX
Group: Development/Tools
AutoReqProv: no
Requires: bash
Provides: cairnbench-XXXXX-capability = 1.0
%global debug_package %{nil}
%global _binary_payload w.ufdio
%global _buildhost bench.cairn.invalid

%description
Package cairnbench-XXXXX, one of a generated set for the Cairn comparison benchmark.

%install
mkdir -p %{buildroot}/usr/share/cairnbench-XXXXX
echo 'cairn benchmark package' > %{buildroot}/usr/share/cairnbench-XXXXX/README

%files
%dir /usr/share/cairnbench-XXXXX
/usr/share/cairnbench-XXXXX/README

%changelog
* Sat Nov 21 2026 Cairn Bench <bench@cairn.invalid> - 1.0-1
- Generated for the comparison benchmark.
"""


def template_rpm(top: pathlib.Path) -> pathlib.Path:
    """The template package, built by rpmbuild under `top` the first time."""
    built = sorted((top / "RPMS").rglob("cairnbench-XXXXX-*.rpm"))
    if built:
        return built[0]
    for d in ["SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "BUILDROOT"]:
        (top / d).mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / "cairnbench.spec"
    spec.write_text(SPEC)
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_build_id_links none",
         "--target", "x86_64", str(spec)],
        check=True, capture_output=True, env=dict(os.environ, HOME=str(top)),
    )
    return sorted((top / "RPMS").rglob("cairnbench-XXXXX-*.rpm"))[0]


def name(i: int) -> str:
    return f"cairnbench-{i:05d}"


def indexes(count: int, extra: int) -> list:
    return list(range(count)) + [90000 + k for k in range(extra)]


def write_debs(out: pathlib.Path, count: int, extra: int) -> None:
    for i in indexes(count, extra):
        n = name(i)
        path = out / f"{n}_1.0-1_amd64.deb"
        if not path.exists():
            path.write_bytes(make_deb(n, "1.0-1", arch="amd64", payload=f"{n}\n".encode()))


def header_span(data: bytes, start: int):
    """(index entries {tag: (type, offset, count)}, data store start, header end)."""
    if data[start:start + 3] != b"\x8e\xad\xe8":
        raise ValueError(f"no header magic at {start}")
    nindex, hsize = struct.unpack(">II", data[start + 8:start + 16])
    entries = {}
    for k in range(nindex):
        tag, typ, off, cnt = struct.unpack(">IIII", data[start + 16 + 16 * k:start + 32 + 16 * k])
        entries[tag] = (typ, off, cnt)
    store = start + 16 + 16 * nindex
    return entries, store, store + hsize


def put_value(buf: bytearray, entries, store: int, tag: int, value: bytes) -> None:
    """Overwrites a string (or first string of an array) or binary value in place."""
    _typ, off, _cnt = entries[tag]
    at = store + off
    if buf[at:at + len(value)] == value:
        return
    end = at + len(value)
    if entries[tag][0] in (6, 8, 9) and buf[end] != 0:
        raise ValueError(f"tag {tag}: new value is not the length of the old one")
    buf[at:end] = value


def vary_rpm(template: bytes, new_name: str) -> bytes:
    replacement = new_name.encode()
    assert len(replacement) == len(TOKEN)
    buf = bytearray(template.replace(TOKEN, replacement))
    sig_entries, sig_store, sig_end = header_span(buf, 96)
    main_start = sig_end + (-(sig_end - 96) % 8)
    main_entries, main_store, main_end = header_span(buf, main_start)
    payload = bytes(buf[main_end:])
    payload_sha256 = hashlib.sha256(payload).hexdigest().encode()
    for tag in (PAYLOAD_DIGEST, PAYLOAD_DIGEST_ALT):
        if tag in main_entries:
            put_value(buf, main_entries, main_store, tag, payload_sha256)
    header = bytes(buf[main_start:main_end])
    put_value(buf, sig_entries, sig_store, SIG_SHA1, hashlib.sha1(header).hexdigest().encode())
    put_value(buf, sig_entries, sig_store, SIG_SHA256, hashlib.sha256(header).hexdigest().encode())
    put_value(buf, sig_entries, sig_store, SIG_MD5, hashlib.md5(header + payload).digest())
    return bytes(buf)


def write_rpms(out: pathlib.Path, count: int, extra: int, template_path: pathlib.Path) -> None:
    template = template_path.read_bytes()
    if TOKEN not in template:
        raise SystemExit(f"{template_path} does not contain {TOKEN!r}")
    for i in indexes(count, extra):
        n = name(i)
        path = out / f"{n}-1.0-1.x86_64.rpm"
        if not path.exists():
            path.write_bytes(vary_rpm(template, n))


def main() -> None:
    kind, out, count, extra = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    out.mkdir(parents=True, exist_ok=True)
    if kind == "deb":
        write_debs(out, count, extra)
    elif kind == "rpm":
        write_rpms(out, count, extra, template_rpm(pathlib.Path(sys.argv[5])))
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
