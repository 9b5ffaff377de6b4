"""Builds small but real .deb files (ar + control.tar.gz + data.tar) for tests,
and deliberately broken ones."""

import gzip
import io
import os
import tarfile
import time


def _tar(files: dict, compress: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def ar(members: list) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = (
            f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        )
        assert len(header) == 60
        out += header + data
        if len(data) % 2:
            out += b"\n"
    return bytes(out)


def control_text(name, version, arch="all", depends=None, extra=""):
    lines = [
        f"Package: {name}",
        f"Version: {version}",
        f"Architecture: {arch}",
        "Maintainer: Cairn Tests <tests@cairn.invalid>",
        "Installed-Size: 1",
    ]
    if depends:
        lines.append(f"Depends: {depends}")
    lines.append("Section: misc")
    lines.append("Priority: optional")
    lines.append(f"Description: Cairn test package {name}\n Built by the Cairn test suite.")
    return "\n".join(lines) + "\n" + extra


def make_deb(name, version, arch="all", payload=b"hello\n", control=None) -> bytes:
    control = control if control is not None else control_text(name, version, arch)
    ctrl = _tar({"./control": control.encode()}, compress=True)
    data = _tar({f"./usr/share/doc/{name}/payload": payload}, compress=False)
    return ar([("debian-binary", b"2.0\n"), ("control.tar.gz", ctrl), ("data.tar", data)])


def big_deb(name, version, size) -> bytes:
    """A package whose data is `size` bytes of incompressible noise."""
    return make_deb(name, version, payload=os.urandom(size))


def run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + os.urandom(2).hex()
