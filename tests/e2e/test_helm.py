"""Issue 3, done-means 2 and 5 for Helm: real helm v3 adds the Cairn chart repository,
searches it, and pulls with --verify (provenance signed by Cairn, or the uploader's own);
malformed charts are refused and change nothing."""

import os
import pathlib
import re
import subprocess
import time

import pytest

from charts import chart_yaml, tgz
from conftest import CACHE, upload
from debs import run_id

REPO = "release/3.0/helm/stable"
HELM = pathlib.Path(os.environ.get("CAIRN_HELM", CACHE / "tools/bin/helm"))


class Helm:
    """helm with every config, cache and data folder inside `root`."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, KUBECONFIG="/dev/null")
        for var, sub in [("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"),
                         ("HELM_DATA_HOME", "data"), ("HELM_PLUGINS", "plugins"),
                         ("HELM_REGISTRY_CONFIG", "registry.json"),
                         ("HELM_REPOSITORY_CONFIG", "repositories.yaml"),
                         ("HELM_REPOSITORY_CACHE", "repository")]:
            self.env[var] = str(root / sub)

    def run(self, *args, cwd=None, check=True):
        assert HELM.exists(), f"{HELM} missing: run tests/clients/install-helm.sh"
        proc = subprocess.run([str(HELM), *args], cwd=cwd or self.root, env=self.env,
                              capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {args} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def package(self, name: str, version: str, sign_with=None) -> pathlib.Path:
        work = self.root / "charts"
        work.mkdir(exist_ok=True)
        if not (work / name).exists():
            self.run("create", name, cwd=work)
        args = ["package", name, "--version", version, "--destination", str(work)]
        if sign_with:
            keyring, uid = sign_with
            args += ["--sign", "--key", uid, "--keyring", str(keyring)]
        self.run(*args, cwd=work)
        return work / f"{name}-{version}.tgz"


@pytest.fixture
def helm(tmp_path):
    return Helm(tmp_path / "helm")


def wait_index(stack, repo, present=(), absent=(), timeout=90):
    """Waits until index.yaml lists every `name-version` in present and none in absent."""
    deadline = time.time() + timeout
    listed = set()
    while time.time() < deadline:
        status, body = stack.dir_file(repo, "index.yaml")
        if status == 200:
            listed = set(re.findall(r"^\s+- (\S+\.tgz)$", body.decode(), re.M))
            listed = {u.rsplit("/", 1)[-1][:-4] for u in listed}
            if set(present) <= listed and not (set(absent) & listed):
                return body.decode()
        time.sleep(0.5)
    raise AssertionError(f"index.yaml not as expected: listed {sorted(listed)}")


def keyring(stack, tmp_path) -> pathlib.Path:
    status, body = stack.dir_file(REPO, "cairn-keyring.gpg")
    assert status == 200
    path = tmp_path / "cairn-keyring.gpg"
    path.write_bytes(body)
    return path


def test_helm_adds_searches_and_pulls_verified(stack, user, helm, tmp_path):
    name = f"cairn-demo-{run_id()}"
    charts = [helm.package(name, v) for v in ["0.1.0", "0.2.0"]]
    status, body = upload(stack, REPO, [(c.name, c) for c in charts], user=user)
    assert status == 201, body
    wait_index(stack, REPO, present=[f"{name}-0.1.0", f"{name}-0.2.0"])

    helm.run("repo", "add", "cairn", f"{stack.repo_base}/{REPO}")
    found = helm.run("search", "repo", f"cairn/{name}", "--versions").stdout
    versions = re.findall(rf"cairn/{name}\s+(\S+)", found)
    assert versions == ["0.2.0", "0.1.0"], found

    dest = tmp_path / "pulled"
    dest.mkdir()
    helm.run("pull", f"cairn/{name}", "--version", "0.2.0", "--verify",
             "--keyring", str(keyring(stack, tmp_path)), "--destination", str(dest))
    assert (dest / f"{name}-0.2.0.tgz").read_bytes() == charts[1].read_bytes()


def test_uploaded_provenance_is_kept(stack, user, helm, tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Chart Author <author@example.org>", "rsa3072",
                    "sign", "never"], check=True, capture_output=True)
    secring, pubring = tmp_path / "secring.gpg", tmp_path / "pubring.gpg"
    secring.write_bytes(subprocess.run([*gpg, "--export-secret-keys"], check=True,
                                       capture_output=True).stdout)
    pubring.write_bytes(subprocess.run([*gpg, "--export"], check=True,
                                       capture_output=True).stdout)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)

    name = f"cairn-signed-{run_id()}"
    chart = helm.package(name, "1.0.0", sign_with=(secring, "Chart Author"))
    prov = chart.with_name(chart.name + ".prov")
    assert prov.exists()
    status, body = upload(stack, REPO, [(chart.name, chart), (prov.name, prov)], user=user)
    assert status == 201, body
    wait_index(stack, REPO, present=[f"{name}-1.0.0"])
    assert stack.dir_file(REPO, prov.name) == (200, prov.read_bytes())

    helm.run("repo", "add", "cairn", f"{stack.repo_base}/{REPO}")
    (tmp_path / "pulled").mkdir()
    helm.run("pull", f"cairn/{name}", "--version", "1.0.0", "--verify",
             "--keyring", str(pubring), "--destination", str(tmp_path / "pulled"))

    # A provenance file for other bytes is refused, and the chart with it.
    other = helm.package(f"cairn-other-{run_id()}", "1.0.0")
    status, body = upload(stack, REPO, [(other.name, other),
                                        (other.name + ".prov", prov)], user=user)
    assert status == 400, body
    assert "prov" in body["detail"], body
    status, _ = stack.dir_file(REPO, other.name)
    assert status in (403, 404)


@pytest.mark.parametrize("case", ["no Chart.yaml", "name mismatch", "version mismatch",
                                  "path traversal", "not gzip"])
def test_malformed_chart_is_refused_and_nothing_changes(stack, user, tmp_path, case):
    name = f"cairn-bad-{run_id()}"
    filename = f"{name}-1.0.0.tgz"
    data = {
        "no Chart.yaml": tgz({f"{name}/values.yaml": b"a: 1\n"}),
        "name mismatch": tgz({f"{name}/Chart.yaml": chart_yaml(name + "x", "1.0.0")}),
        "version mismatch": tgz({f"{name}/Chart.yaml": chart_yaml(name, "1.0.1")}),
        "path traversal": tgz({f"{name}/Chart.yaml": chart_yaml(name, "1.0.0"),
                               f"{name}/../../evil": b"x"}),
        "not gzip": b"this is not a chart",
    }[case]
    path = tmp_path / filename
    path.write_bytes(data)
    before = stack.listing(REPO)["packages"]
    status, body = upload(stack, REPO, [(filename, path)], user=user)
    assert status == 400, body
    assert filename in body["detail"], body
    assert stack.listing(REPO)["packages"] == before
    assert stack.dir_file(REPO, filename)[0] in (403, 404)
