"""Shared fixtures: the deployed stack's URLs, an upload account, real .deb files,
an isolated apt client, and for source archives git origins, a callback receiver and
API helpers."""

import base64
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("CAIRN_CACHE", pathlib.Path.home() / ".cache/cairn"))
STATE = pathlib.Path(os.environ.get("CAIRN_STATE", CACHE / "state"))
AWS_ENV = {
    "AWS_ENDPOINT_URL": "http://localhost:4566",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
SYNC_TIMEOUT = 90


def read_env(path: pathlib.Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v.strip("'\"")
    return env


class Stack:
    def __init__(self):
        env = read_env(STATE / "cairn.env")
        self.api = env["CAIRN_API_URL"]
        self.repo_base = env["CAIRN_REPO_BASE_URL"]
        self.table = env["CAIRN_TABLE"]
        self.public_key = pathlib.Path(env["CAIRN_SIGNING_PUBLIC_KEY"])
        # Source archives (docs/archives.md); absent from stacks deployed before them.
        self.archive_base = env.get("CAIRN_ARCHIVE_BASE_URL")
        self.callback_secret_file = env.get("CAIRN_CALLBACK_SECRET_FILE")
        self.callback_max_attempts = int(env.get("CAIRN_CALLBACK_MAX_ATTEMPTS", "4"))
        self.repo_bucket = env.get("CAIRN_REPO_BUCKET")
        self.supported_repos_file = env.get("CAIRN_SUPPORTED_REPOS_FILE")

    @property
    def callback_secret(self) -> bytes:
        """The key of callback signatures: the bytes of the file cairn.env names."""
        assert self.callback_secret_file, \
            f"CAIRN_CALLBACK_SECRET_FILE missing from {STATE / 'cairn.env'}"
        return pathlib.Path(self.callback_secret_file).read_bytes()

    def public_key_armored(self) -> pathlib.Path:
        """The deployed signing key, armoured (dnf's gpgkey= wants armour)."""
        import tempfile

        path = self.public_key.with_suffix(".pub.asc")
        if not path.exists():
            with tempfile.TemporaryDirectory() as home:
                gpg = ["gpg", "--homedir", home, "--batch", "--quiet"]
                subprocess.run([*gpg, "--import", str(self.public_key)], check=True,
                               capture_output=True)
                out = subprocess.run([*gpg, "--armor", "--export"], check=True,
                                     capture_output=True).stdout
                subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"],
                               capture_output=True)
            path.write_bytes(out)
        return path

    def fetch(self, url: str):
        """GET without credentials: (status, body bytes)."""
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def repo_file(self, repo: str, rel: str):
        root = "/".join(repo.split("/")[:3])
        return self.fetch(f"{self.repo_base}/{root}/{rel}")

    def listing(self, repo: str) -> dict:
        status, body = self.fetch(f"{self.api}/{repo}")
        assert status == 200, body
        return json.loads(body)

    def packages_index(self, repo: str, arch="amd64") -> dict:
        """Parsed dists/<suite>/main/binary-<arch>/Packages: {filename-basename: stanza}."""
        suite = repo.split("/")[3]
        status, body = self.repo_file(repo, f"dists/{suite}/main/binary-{arch}/Packages")
        if status != 200:
            return {}
        out = {}
        for para in body.decode().split("\n\n"):
            fields = parse_stanza(para)
            if "Filename" in fields:
                out[fields["Filename"].rsplit("/", 1)[-1]] = fields
        return out

    def wait_published(self, repo: str, filenames, timeout=SYNC_TIMEOUT) -> dict:
        """Waits until the signed metadata names an index listing `filenames`: the
        canonical Packages is written before InRelease, so seeing it is not enough."""
        deadline = time.time() + timeout
        wanted = set(filenames)
        suite = repo.split("/")[3]
        index = {}
        while time.time() < deadline:
            index = self.packages_index(repo)
            if wanted <= set(index):
                _, packages = self.repo_file(repo, f"dists/{suite}/main/binary-amd64/Packages")
                status, inrelease = self.repo_file(repo, f"dists/{suite}/InRelease")
                digest = hashlib.sha256(packages).hexdigest()
                if status == 200 and f" {digest} ".encode() in inrelease:
                    return index
            time.sleep(0.5)
        missing = wanted - set(index)
        raise AssertionError(f"not published within {timeout}s: {sorted(missing)}")


    def dir_file(self, repo: str, rel: str):
        """A file of a YUM or Helm repository: `{repo}/{rel}`."""
        return self.fetch(f"{self.repo_base}/{repo}/{rel}")

    def yum_locations(self, repo: str, arch: str) -> dict:
        """{location href: version} from the primary.xml that repomd.xml names now."""
        import gzip
        import re
        import xml.etree.ElementTree as ET

        status, repomd = self.dir_file(repo, f"{arch}/repodata/repomd.xml")
        if status != 200:
            return {}
        href = re.search(rb'<data type="primary">.*?<location href="([^"]+)"', repomd, re.S)
        assert href, repomd
        status, primary = self.dir_file(repo, f"{arch}/{href.group(1).decode()}")
        assert status == 200, f"repomd.xml names a missing primary ({status})"
        ns = {"c": "http://linux.duke.edu/metadata/common"}
        if href.group(1).endswith(b".zst"):
            primary = subprocess.run(["zstd", "-dc"], input=primary, check=True,
                                     capture_output=True).stdout
        else:
            primary = gzip.decompress(primary)
        root = ET.fromstring(primary)
        out = {}
        for pkg in root.findall("c:package", ns):
            v = pkg.find("c:version", ns).attrib
            out[pkg.find("c:location", ns).attrib["href"]] = f"{v['ver']}-{v['rel']}"
        return out

    def wait_yum(self, repo: str, arch: str, present=(), absent=(), timeout=SYNC_TIMEOUT):
        """Waits until the signed repodata of `repo`/`arch` lists every file of `present`
        (as Packages/<name>) and none of `absent`."""
        deadline = time.time() + timeout
        want = {f"Packages/{f}" for f in present}
        gone = {f"Packages/{f}" for f in absent}
        seen = {}
        while time.time() < deadline:
            seen = self.yum_locations(repo, arch)
            if want <= set(seen) and not (gone & set(seen)):
                status, _ = self.dir_file(repo, f"{arch}/repodata/repomd.xml.asc")
                if status == 200:
                    return seen
            time.sleep(0.5)
        raise AssertionError(f"{repo}/{arch} not as expected within {timeout}s: "
                             f"missing {sorted(want - set(seen))}, "
                             f"still listed {sorted(gone & set(seen))}")


def parse_stanza(text: str) -> dict:
    fields, last = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line
        else:
            k, _, v = line.partition(":")
            last = k
            fields[k] = v.strip()
    return fields


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: generated requests; runs after every other test")


def pytest_collection_modifyitems(config, items):
    """Fuzzing last: what it creates must not meet the other tests' assertions."""
    items.sort(key=lambda item: item.get_closest_marker("fuzz") is not None)


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack()


def cairn_cli(*args, stdin=b""):
    env = dict(os.environ, **AWS_ENV)
    return subprocess.run(
        [str(ROOT / "target/release/cairn"), *args],
        input=stdin, env=env, check=True, capture_output=True,
    )


@pytest.fixture(scope="session")
def user(stack):
    """An upload account with an argon2 hash (written by `cairn user add`)."""
    name, password = "e2e-uploader", base64.b16encode(os.urandom(8)).decode()
    cairn_cli("user", "add", name, "--table", stack.table, stdin=password.encode())
    return name, password


@pytest.fixture(scope="session")
def rws_user(stack):
    """An account migrated from RWS: a werkzeug pbkdf2:sha256 hash made by werkzeug."""
    from werkzeug.security import generate_password_hash

    name, password = "e2e-rws", "rws-" + os.urandom(4).hex()
    h = generate_password_hash(password, method="pbkdf2:sha256")
    assert h.startswith("pbkdf2:sha256:")
    cairn_cli("user", "add", name, "--table", stack.table, "--hash", h)
    return name, password


def curl(*args) -> tuple:
    """Runs curl, returning (http status, body)."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
        check=True, capture_output=True,
    ).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code), body


def upload(stack, repo, files, user=None, product=None, method="PUT"):
    args = ["-X", method]
    if user:
        args += ["-u", f"{user[0]}:{user[1]}"]
    if product:
        args += ["-F", f"product={product}"]
    for name, path in files:
        args += ["-F", f"{name}=@{path}"]
    status, body = curl(*args, f"{stack.api}/{repo}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body.decode(errors="replace")}


def sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def real_debs() -> dict:
    """hello, figlet and tree as Debian ships them (apt-get download, cached)."""
    target = CACHE / "debs"
    target.mkdir(parents=True, exist_ok=True)
    names = ["hello", "figlet", "tree"]
    found = {}
    for n in names:
        hits = sorted(target.glob(f"{n}_*.deb"))
        if not hits:
            os.chmod(target, 0o777)
            subprocess.run(["apt-get", "download", "-q", n], cwd=target, check=True,
                           capture_output=True)
            hits = sorted(target.glob(f"{n}_*.deb"))
        found[n] = hits[-1]
    return found


class Apt:
    """apt-get isolated from the host's configuration (see docs/testing.md)."""

    def __init__(self, root: pathlib.Path, source: str, key: pathlib.Path):
        self.root = root
        for d in ["apt.conf.d", "trusted.gpg.d", "preferences.d", "state/lists/partial",
                  "cache/archives/partial", "log", "downloads"]:
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "status").write_text("")
        (root / "apt.conf").write_text(
            f'Dir::Etc::main "/dev/null";\nDir::Etc::parts "{root}/apt.conf.d";\n')
        shutil.copy(key, root / "key.gpg")
        (root / "sources.list").write_text(source.replace("KEY", str(root / "key.gpg")) + "\n")
        os.chmod(root / "downloads", 0o777)
        for p in [root, root / "state", root / "state/lists", root / "state/lists/partial",
                  root / "cache", root / "cache/archives", root / "cache/archives/partial"]:
            os.chmod(p, 0o777)

    def run(self, *args, cwd=None, check=True):
        r = self.root
        opts = [
            f"-oDir::Etc::sourcelist={r}/sources.list", "-oDir::Etc::sourceparts=-",
            f"-oDir::Etc::trusted={r}/trusted.gpg", f"-oDir::Etc::trustedparts={r}/trusted.gpg.d",
            f"-oDir::Etc::preferences={r}/preferences",
            f"-oDir::Etc::preferencesparts={r}/preferences.d",
            f"-oDir::State={r}/state", f"-oDir::State::lists={r}/state/lists",
            f"-oDir::State::status={r}/status", f"-oDir::Cache={r}/cache",
            f"-oDir::Cache::archives={r}/cache/archives", f"-oDir::Log={r}/log",
            "-oAPT::Architecture=amd64", "-oAPT::Architectures::=amd64",
            "-oAcquire::Languages=none", "-oAcquire::Retries=0",
        ]
        tool, *rest = args
        env = dict(os.environ, APT_CONFIG=str(r / "apt.conf"))
        proc = subprocess.run([tool, *opts, *rest], cwd=cwd, env=env, capture_output=True,
                              text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} {rest} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def update(self):
        return self.run("apt-get", "update", "--error-on=any")

    def download(self, package) -> pathlib.Path:
        d = self.root / "downloads"
        self.run("apt-get", "download", package, cwd=d)
        hits = sorted(d.glob(f"{package}_*.deb"))
        assert hits, f"apt-get download {package} wrote nothing"
        return hits[-1]


@pytest.fixture
def apt_for(stack, tmp_path):
    """apt_for(repo) -> an Apt client whose only source is that Cairn suite, trusting only
    the key the stack was deployed with."""

    def make(repo: str, key: pathlib.Path = None, name: str = ""):
        kind, series, dist, suite = repo.split("/")
        source = (f"deb [signed-by=KEY arch=amd64] {stack.repo_base}/{kind}/{series}/{dist} "
                  f"{suite} main")
        return Apt(tmp_path / f"apt-{suite}{name}", source, key or stack.public_key)

    return make


# --- source archives (docs/archives.md) ----------------------------------------------------

ARCHIVE_TIMEOUT = 60  # the API itself answers within ArchiveWaitSeconds (25 s)
FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="session")
def git_origin(tmp_path_factory):
    """Smart-HTTP git origins on 127.0.0.1:18418 (gitorigin.GitOrigin), for the session."""
    from gitorigin import GitOrigin

    try:
        origin = GitOrigin(tmp_path_factory.mktemp("origins")).start()
    except OSError as e:
        pytest.fail(f"cannot serve git origins on 127.0.0.1:18418: {e}")
    yield origin
    origin.stop()


@pytest.fixture(scope="session")
def callback_receiver():
    """The callback receiver on 127.0.0.1:18419 (receiver.CallbackReceiver)."""
    from receiver import CallbackReceiver

    try:
        rx = CallbackReceiver().start()
    except OSError as e:
        pytest.fail(f"cannot receive callbacks on 127.0.0.1:18419: {e}")
    yield rx
    rx.stop()


def api_call(stack, method: str, path: str, body=None, user=None, timeout=ARCHIVE_TIMEOUT):
    """A JSON request to the API: (status, parsed body, headers). `user` is (name, password)
    sent as Basic credentials; a body that is not JSON comes back as {"raw": text}."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{stack.api}{path}", data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if user:
        token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        req.add_header("authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, headers = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, headers = e.code, e.read(), e.headers
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return status, parsed, headers


def archive(stack, user, body, timeout=ARCHIVE_TIMEOUT):
    """POST /v1/archives: (status, json)."""
    status, parsed, _ = api_call(stack, "POST", "/v1/archives", body, user, timeout)
    return status, parsed


def clone(stack, user, body, timeout=ARCHIVE_TIMEOUT):
    """POST /clone (Repour-compatible): (status, json)."""
    status, parsed, _ = api_call(stack, "POST", "/clone", body, user, timeout)
    return status, parsed


def cancel(stack, user, op_id, timeout=30):
    """POST /cancel/{id}: (status, json)."""
    status, parsed, _ = api_call(stack, "POST", f"/cancel/{op_id}", None, user, timeout)
    return status, parsed


def operation(stack, user, op_id, timeout=30):
    """GET /v1/operations/{id}: (status, json)."""
    status, parsed, _ = api_call(stack, "GET", f"/v1/operations/{op_id}", None, user, timeout)
    return status, parsed


def archive_info(stack, user, name, timeout=30):
    """GET /v1/archives/{name}: (status, json)."""
    status, parsed, _ = api_call(stack, "GET", f"/v1/archives/{name}", None, user, timeout)
    return status, parsed


def wait_operation(stack, user, op_id, until=FINAL, timeout=180) -> dict:
    """Polls GET /v1/operations/{id} until its status is one of `until`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        status, last = operation(stack, user, op_id)
        assert status == 200, (status, last)
        if last.get("status") in until:
            return last
        time.sleep(0.5)
    raise AssertionError(f"operation {op_id} not {until} within {timeout}s: {last}")


def settle(stack, user, status, body, timeout=180):
    """A synchronous answer as it would be had the API waited long enough: a 202 naming an
    operation (still queued/running after ArchiveWaitSeconds) is followed to its end and
    replaced by (its http_status, its result)."""
    if status == 202 and "operation" in body and "callback" not in body:
        op = wait_operation(stack, user, body["id"], timeout=timeout)
        return op["http_status"], op["result"]
    return status, body


def archive_done(stack, user, body, timeout=180):
    """POST /v1/archives, then settle(): (final status, final body)."""
    return settle(stack, user, *archive(stack, user, body), timeout=timeout)


def clone_done(stack, user, body, timeout=180):
    return settle(stack, user, *clone(stack, user, body), timeout=timeout)


def problem_text(body: dict) -> str:
    """Everything a problem body says (title, detail, ...), for message assertions."""
    return " ".join(str(v) for k, v in body.items() if k not in ("status", "callback"))
