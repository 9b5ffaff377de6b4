"""The `cairn` CLI against the deployed stack (docs/cli.md), the real binary:
`login` stores a token 0600, `push` uploads by form or presigned and `--wait`s for the
signed index, `token create|list|revoke` manage tokens, and the exit codes say what
happened (1 refused, 2 no login, 3 credentials refused, 5 wait timed out)."""

import json
import os
import stat
import subprocess

from conftest import ROOT, curl
from debs import make_deb, run_id

REPO = "release/2.11/debian/bullseye"
CLI = str(ROOT / "target/release/cairn")


def cairn(*args, config, stdin=b"", env=None):
    full = {k: v for k, v in os.environ.items() if k not in ("CAIRN_API_URL", "CAIRN_TOKEN")}
    full.update({"CAIRN_CONFIG": str(config)}, **(env or {}))
    return subprocess.run([CLI, *args], input=stdin, env=full, capture_output=True, timeout=600)


def deb(tmp_path, prefix, size=0):
    name = f"{prefix}-{run_id()}"
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(make_deb(name, "1.0", payload=os.urandom(size) if size else b"hello\n"))
    return path


def listing(stack, repo=REPO):
    status, body = curl(f"{stack.api}/{repo}")
    assert status == 200, body
    return json.loads(body)


def test_login_push_wait_and_tokens_with_the_real_binary(stack, user, tmp_path):
    config = tmp_path / "cfg" / "config.json"
    # Not logged in: exit 2 and what to do.
    out = cairn("whoami", config=config)
    assert out.returncode == 2, out
    assert b"cairn login" in out.stderr

    out = cairn("login", "--api", stack.api, "--user", user[0], config=config,
                stdin=user[1].encode())
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = json.loads(config.read_text())
    assert saved["api"] == stack.api and saved["token"].startswith("cairn_")
    out = cairn("whoami", config=config)
    assert out.returncode == 0 and out.stdout.startswith(user[0].encode()), out

    # A small file by form, a larger one presigned; --wait returns once published.
    small = deb(tmp_path, "cairn-cli-a")
    large = deb(tmp_path, "cairn-cli-b", size=64 * 1024)
    out = cairn("push", str(small), str(large), "--repo", REPO, "--wait",
                "--presign-above", "32768", config=config)
    assert out.returncode == 0, out.stderr
    assert b"ingesting" in out.stderr, "the large file went through a presigned upload"
    names = {p["filename"] for p in listing(stack)["packages"]}
    assert {small.name, large.name} <= names
    index = stack.packages_index(REPO)
    assert small.name in index and large.name in index, \
        "the published index lists both files when --wait returns"

    # A refused file: exit 1, the others still go.
    bad = tmp_path / "broken_1.0_all.deb"
    bad.write_bytes(b"not a package")
    good = deb(tmp_path, "cairn-cli-c")
    out = cairn("push", str(bad), str(good), "--repo", REPO, config=config)
    assert out.returncode == 1, out
    assert good.name in {p["filename"] for p in listing(stack)["packages"]}

    # --wait that cannot be met: exit 5.
    late = deb(tmp_path, "cairn-cli-d")
    out = cairn("push", str(late), "--repo", REPO, "--wait", "--timeout", "0", config=config)
    assert out.returncode == 5, out

    # Tokens: create prints the token alone; a token for another series is refused
    # (exit 3); revoked, it is refused too.
    out = cairn("token", "create", "--scope", "upload:release/3.0/*", "--description", "cli",
                config=config)
    assert out.returncode == 0, out.stderr
    token = out.stdout.decode().strip()
    assert token.startswith("cairn_") and "\n" not in token
    env = {"CAIRN_API_URL": stack.api, "CAIRN_TOKEN": token}
    other = deb(tmp_path, "cairn-cli-e")
    out = cairn("push", str(other), "--repo", REPO, config=tmp_path / "none.json", env=env)
    assert out.returncode == 3, out
    assert b"upload:release/2.11/debian/bullseye" in out.stderr
    token_id = token[len("cairn_"):].split("_")[0]
    out = cairn("token", "list", config=config)
    assert out.returncode == 0 and token_id.encode() in out.stdout, out
    assert token.encode() not in out.stdout
    out = cairn("token", "revoke", token_id, config=config)
    assert out.returncode == 0, out.stderr
    out = cairn("whoami", config=tmp_path / "none.json", env=env)
    assert out.returncode == 3, out
