"""Checks a `sam build` output: every function of the built template has a `bootstrap`
that is an executable ELF for the expected architecture, and SAM's own zip routine
(what `sam deploy` uploads) puts it at the zip's root, executable.

    python tests/infra/check_build.py BUILD_DIR arm64|x86_64    (the SAM CLI's venv)
"""

import os
import pathlib
import stat
import sys
import tempfile
import zipfile

from samcli.lib.package.utils import make_zip
from samcli.yamlhelper import yaml_parse

# ELF e_machine values.
MACHINES = {"arm64": 183, "x86_64": 62}


def elf_machine(path: pathlib.Path) -> int | None:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    return int.from_bytes(head[18:20], order)


def check(build_dir: pathlib.Path, arch: str) -> list[str]:
    template = yaml_parse((build_dir / "template.yaml").read_text())
    problems, count = [], 0
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        count += 1
        code = build_dir / resource["Properties"]["CodeUri"]
        bootstrap = code / "bootstrap"
        if not bootstrap.is_file():
            problems.append(f"{name}: no bootstrap in {code}")
            continue
        if not os.access(bootstrap, os.X_OK):
            problems.append(f"{name}: bootstrap is not executable")
        machine = elf_machine(bootstrap)
        if machine != MACHINES[arch]:
            problems.append(f"{name}: bootstrap is ELF machine {machine}, not {arch}")
        with tempfile.TemporaryDirectory() as scratch:
            archive = make_zip(os.path.join(scratch, name), str(code))
            with zipfile.ZipFile(archive) as zf:
                info = zf.getinfo("bootstrap") if "bootstrap" in zf.namelist() else None
                if info is None:
                    problems.append(f"{name}: the zip has no bootstrap at its root")
                elif not (info.external_attr >> 16) & stat.S_IXUSR:
                    problems.append(f"{name}: bootstrap is not executable in the zip")
    if count < 15:
        problems.append(f"only {count} functions in the built template")
    return problems


def main() -> int:
    build_dir, arch = pathlib.Path(sys.argv[1]), sys.argv[2]
    problems = check(build_dir, arch)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"sam build ({arch}): every function's bootstrap is an executable {arch} ELF, "
              "at the root of its zip")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
