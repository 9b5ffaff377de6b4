"""Builds small but real RPMs with rpmbuild (binary, noarch and source), and
deliberately broken ones."""

import os
import pathlib
import struct
import subprocess
import textwrap

SPEC = """\
Name: {name}
Version: {version}
Release: 1
Summary: Cairn test package {name}
License: MIT
URL: https://example.org/{name}
Group: Development/Tools
{buildarch}
AutoReqProv: no
{requires}
Provides: {name}-capability = {version}
%global debug_package %{{nil}}

%description
Package {name} {version}, built by the Cairn end-to-end tests.

%install
mkdir -p %{{buildroot}}/usr/share/{name} %{{buildroot}}/usr/bin
echo '{name} {version}' > %{{buildroot}}/usr/share/{name}/VERSION
printf '#!/bin/sh\\necho {name} {version}\\n' > %{{buildroot}}/usr/bin/{name}
chmod 755 %{{buildroot}}/usr/bin/{name}

%files
%dir /usr/share/{name}
/usr/share/{name}/VERSION
/usr/bin/{name}

%changelog
* Sat Nov 21 2026 Cairn Tests <tests@example.org> - {version}-1
- Built for the end-to-end tests.
"""


def build_rpm(workdir: pathlib.Path, name: str, version: str = "1.0", noarch=False,
              requires=None, source=False) -> dict:
    """Builds `name`; returns {"binary": path, "source": path or None}."""
    top = workdir / f"rpmbuild-{name}-{version}"
    for d in ["SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "BUILDROOT"]:
        (top / d).mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(SPEC.format(
        name=name, version=version,
        buildarch="BuildArch: noarch" if noarch else "",
        requires="\n".join(f"Requires: {r}" for r in (requires or [])),
    ))
    env = dict(os.environ, HOME=str(top))
    subprocess.run(
        ["rpmbuild", "-ba" if source else "-bb", "--define", f"_topdir {top}",
         "--define", "_build_id_links none", str(spec)],
        check=True, capture_output=True, env=env,
    )
    binary = sorted((top / "RPMS").rglob("*.rpm"))
    srpm = sorted((top / "SRPMS").glob("*.src.rpm"))
    assert binary, f"rpmbuild wrote no binary rpm for {name}"
    return {"binary": binary[0], "source": srpm[0] if srpm else None}


def main_header_offset(data: bytes) -> int:
    """Offset of the main header: after the 96-byte lead and the padded signature header."""
    nindex, hsize = struct.unpack(">II", data[96 + 8:96 + 16])
    sig = 16 + 16 * nindex + hsize
    return 96 + sig + (-sig % 8)


def broken_rpms(good: bytes) -> dict:
    """Damaged copies of a valid RPM: {description: bytes}."""
    main = main_header_offset(good)
    bad_lead = b"\x00\x00\x00\x00" + good[4:]
    truncated = good[: main + 40]
    nindex, _hsize = struct.unpack(">II", good[main + 8:main + 16])
    assert nindex > 0
    outside = bytearray(good)
    # First index entry: tag, type, offset, count. Point its offset far past the store.
    entry = main + 16
    outside[entry + 8:entry + 12] = struct.pack(">I", 0x7FFF0000)
    return {
        "bad lead magic": bad_lead,
        "truncated header": truncated,
        "index entry outside the store": bytes(outside),
    }


DNF_CONF = textwrap.dedent("""\
    [main]
    gpgcheck=0
    installonly_limit=3
    clean_requirements_on_remove=True
    best=True
    skip_if_unavailable=False
    metadata_expire=0
    install_weak_deps=False
    persistdir={root}/persist
    logdir={root}/log
    varsdir={root}/vars
    pluginconfpath={root}/plugins
    reposdir={root}/repos.d
    cachedir={root}/cache
    """)


class Dnf:
    """dnf isolated from the host: its own config, cache, repos and install root."""

    def __init__(self, root: pathlib.Path, baseurl: str, key: pathlib.Path, name="cairn",
                 extra=""):
        self.root = root
        for d in ["persist", "log", "vars", "plugins", "repos.d", "cache", "installroot",
                  "downloads"]:
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "dnf.conf").write_text(DNF_CONF.format(root=root))
        (root / "key.asc").write_bytes(key.read_bytes())
        (root / "repos.d" / f"{name}.repo").write_text(textwrap.dedent(f"""\
            [{name}]
            name={name}
            baseurl={baseurl}
            enabled=1
            gpgcheck=0
            repo_gpgcheck=1
            gpgkey=file://{root}/key.asc
            """) + extra)

    def run(self, *args, check=True):
        cmd = ["dnf", "-c", str(self.root / "dnf.conf"),
               f"--installroot={self.root}/installroot", "--releasever=test",
               f"--setopt=cachedir={self.root}/cache", f"--setopt=reposdir={self.root}/repos.d",
               "--disableplugin=*", "--enableplugin=download", "-y", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"dnf {args} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def close(self):
        """Stops the gpg-agents dnf started for the repository keyrings."""
        for home in self.root.rglob("pubring"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                           capture_output=True)
