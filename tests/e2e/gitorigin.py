"""Git origins for the archive tests: bare repositories made with real git, served over
smart HTTP by `git http-backend` (one CGI process per request) on 127.0.0.1:18418, the
address the local stack's OutboundAllowList lets the archive worker reach.

    origin = GitOrigin(root).start()
    path, url = origin.make_origin("demo", {"README": "hi\\n", "bin/x": (EXEC, b"#!/bin/sh\\n")})
    origin.commit("demo", {"README": "hello\\n", "bin/x": None}, "second")   # None deletes
    origin.force_push("demo", {"other": b"unrelated\\n"})                     # new root commit
    origin.tag("demo", "v1.0")                                               # annotated
    origin.requests("demo")       # what clients asked for: [{"method", "path", ...}]
    origin.set_delay("demo", 15)  # every request for demo.git waits 15 s first
    origin.stop()

The server speaks protocol v0 and v2 (`Git-Protocol` header), serves shallow fetches and
wants of any commit id (uploadpack.allowAnySHA1InWant). Every git command here runs with an
isolated configuration (GIT_CONFIG_GLOBAL=/dev/null, GIT_CONFIG_NOSYSTEM=1) and fixed
author/committer identities and dates.

`python3 gitorigin.py --self-test` clones, shallow-fetches, ls-remotes with protocol v2 and
fetches a commit by id with depth 1 through the server, with the real git client.
"""

import os
import pathlib
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler

from httpserver import BackgroundServer

HOST = "127.0.0.1"
DEFAULT_PORT = 18418
FILE, EXEC, SYMLINK = "100644", "100755", "120000"

# Fixed identities and dates: the same files, parents and message give the same commit.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Cairn Origin",
    "GIT_AUTHOR_EMAIL": "origin@example.org",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_NAME": "Cairn Origin",
    "GIT_COMMITTER_EMAIL": "origin@example.org",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


def git_env(home=None, **extra) -> dict:
    """An environment for git that ignores the host's configuration and proxies."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home or tempfile.gettempdir()),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        **GIT_IDENTITY,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def git(*args, cwd=None, input=None, env=None, check=True) -> subprocess.CompletedProcess:
    """Runs git isolated from the host configuration; stdout/stderr are bytes."""
    proc = subprocess.run(["git", *map(str, args)], cwd=cwd, input=input, capture_output=True,
                          env=env or git_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout.decode(errors='replace')}"
                             f"{proc.stderr.decode(errors='replace')}")
    return proc


def git_out(*args, **kw) -> str:
    return git(*args, **kw).stdout.decode().strip()


# --- repositories -------------------------------------------------------------------------


def repo_path(root, name) -> pathlib.Path:
    return pathlib.Path(root) / f"{name}.git"


def origin_url(name, port=DEFAULT_PORT, host=HOST) -> str:
    return f"http://{host}:{port}/{name}.git"


def _entry(value):
    """A files-dict value -> (mode, bytes); None stays None (delete)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        mode, content = value
    else:
        mode, content = FILE, value
    if isinstance(content, str):
        content = content.encode()
    if mode not in (FILE, EXEC, SYMLINK):
        raise ValueError(f"unsupported mode {mode}")
    return mode, content


def _tree(repo: pathlib.Path, files: dict, base=None) -> str:
    """Writes a tree: `base` (a tree-ish, or None for empty) with `files` applied."""
    with tempfile.TemporaryDirectory() as tmp:
        env = git_env(GIT_INDEX_FILE=pathlib.Path(tmp) / "index", GIT_DIR=repo)
        if base:
            git("read-tree", base, env=env)
        else:
            git("read-tree", "--empty", env=env)
        lines = []
        for path, value in files.items():
            e = _entry(value)
            if e is None:
                lines.append(f"0 {'0' * 40}\t{path}")
                continue
            mode, content = e
            blob = git_out("hash-object", "-w", "--stdin", input=content, env=env)
            lines.append(f"{mode} {blob}\t{path}")
        if lines:
            git("update-index", "-z", "--index-info",
                input=b"".join(line.encode() + b"\0" for line in lines), env=env)
        return git_out("write-tree", env=env)


def _commit(repo, tree, parents, message) -> str:
    args = ["commit-tree", tree, "-m", message]
    for p in parents:
        args += ["-p", p]
    return git_out(*args, env=git_env(GIT_DIR=repo))


def rev_parse(root, name, rev) -> str:
    return git_out("rev-parse", "--verify", "--end-of-options", rev,
                   env=git_env(GIT_DIR=repo_path(root, name)))


def tree_of(root, name, rev) -> str:
    return rev_parse(root, name, f"{rev}^{{tree}}")


def ls_tree(root, name, rev) -> list:
    """[(mode, type, object id, path)] of every entry under `rev`, recursively."""
    out = git("ls-tree", "-r", "-z", rev, env=git_env(GIT_DIR=repo_path(root, name))).stdout
    return parse_ls_tree(out)


def parse_ls_tree(out: bytes) -> list:
    rows = []
    for rec in out.split(b"\0"):
        if rec:
            meta, _, path = rec.partition(b"\t")
            mode, kind, oid = meta.decode().split()
            rows.append((mode, kind, oid, path.decode()))
    return rows


def make_origin(root, name, files: dict, branch="main", message="initial",
                port=DEFAULT_PORT):
    """A bare repository `name`.git under `root` whose `branch` (also HEAD) holds `files`
    ({path: bytes | str | (mode, bytes)}) in one root commit. Returns (path, url)."""
    repo = repo_path(root, name)
    if repo.exists():
        raise FileExistsError(repo)
    git("init", "-q", "--bare", "-b", branch, repo)
    env = git_env(GIT_DIR=repo)
    for key, value in [
        ("uploadpack.allowAnySHA1InWant", "true"),
        ("uploadpack.allowReachableSHA1InWant", "true"),
        ("uploadpack.allowTipSHA1InWant", "true"),
        ("uploadpack.allowFilter", "true"),
        ("http.uploadpack", "true"),
        ("protocol.version", "2"),
    ]:
        git("config", key, value, env=env)
    head = _commit(repo, _tree(repo, files), [], message)
    git("update-ref", f"refs/heads/{branch}", head, env=env)
    return repo, origin_url(name, port)


def commit(root, name, files: dict, message="change", branch="main", parents=None) -> str:
    """A commit on top of `branch` (or of `parents`, a list of revisions) whose tree is the
    parent's with `files` applied (a None value deletes the path); moves `branch` to it."""
    repo = repo_path(root, name)
    env = git_env(GIT_DIR=repo)
    if parents is None:
        has = git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", env=env, check=False)
        parents = [has.stdout.decode().strip()] if has.returncode == 0 else []
    else:
        parents = [git_out("rev-parse", "--verify", p, env=env) for p in parents]
    tree = _tree(repo, files, base=parents[0] if parents else None)
    new = _commit(repo, tree, parents, message)
    git("update-ref", f"refs/heads/{branch}", new, env=env)
    return new


def force_push(root, name, files: dict, message="rewritten", branch="main") -> str:
    """Replaces `branch`'s history with one new root commit holding exactly `files`."""
    repo = repo_path(root, name)
    new = _commit(repo, _tree(repo, files), [], message)
    git("update-ref", f"refs/heads/{branch}", new, env=git_env(GIT_DIR=repo))
    return new


def tag(root, name, tag_name, target="HEAD", message=None, annotated=True) -> str:
    """Tags `target`; annotated by default. Returns what refs/tags/<tag> points at."""
    env = git_env(GIT_DIR=repo_path(root, name))
    if annotated:
        git("tag", "-a", "-m", message or f"tag {tag_name}", tag_name, target, env=env)
    else:
        git("tag", tag_name, target, env=env)
    return git_out("rev-parse", f"refs/tags/{tag_name}", env=env)


def set_branch(root, name, branch, target) -> str:
    env = git_env(GIT_DIR=repo_path(root, name))
    oid = git_out("rev-parse", "--verify", f"{target}^{{commit}}", env=env)
    git("update-ref", f"refs/heads/{branch}", oid, env=env)
    return oid


# --- the server ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cairn-test-origin/1"

    def log_message(self, fmt, *args):  # quiet; the origin keeps its own log
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_HEAD(self):
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _plain(self, code, text, extra=()):
        body = text.encode()
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self):
        origin: "GitOrigin" = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        parts = [p for p in path.split("/") if p]
        name = parts[0][:-4] if parts and parts[0].endswith(".git") else None
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": split.path,
            "query": split.query,
            "git_protocol": self.headers.get("Git-Protocol"),
            "user_agent": self.headers.get("User-Agent"),
            "client": self.client_address[0],
            "content_encoding": self.headers.get("Content-Encoding"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "status": None,
        }
        origin._record(name, entry)
        body = self._read_body()
        entry["request_bytes"] = len(body)
        delay = origin._delay_for(name)
        if delay:
            time.sleep(delay)
        redirect = origin._redirect_for(name)
        if redirect:
            rest = path[len(f"/{name}.git"):]
            location = redirect + rest + (f"?{split.query}" if split.query else "")
            entry["status"] = 302
            self._plain(302, "moved\n", [("Location", location)])
            return
        if name is None or not repo_path(origin.root, name).is_dir():
            entry["status"] = 404
            self._plain(404, "no such repository\n")
            return

        env = git_env(
            origin.root,
            GIT_PROJECT_ROOT=origin.root,
            GIT_HTTP_EXPORT_ALL="1",
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL=self.request_version,
            SERVER_NAME=HOST,
            SERVER_PORT=str(self.server.server_address[1]),
            PATH_INFO=path,
            QUERY_STRING=split.query,
            REQUEST_METHOD=self.command,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR=self.client_address[0],
        )
        for header, var in [("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
                            ("Accept", "HTTP_ACCEPT"),
                            ("User-Agent", "HTTP_USER_AGENT")]:
            if self.headers.get(header):
                env[var] = self.headers[header]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]

        proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        errors = []

        def feed():
            try:
                proc.stdin.write(body)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()

        feeder = threading.Thread(target=feed, daemon=True)
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        feeder.start()
        drain.start()
        try:
            status, headers = 200, []
            while True:
                line = proc.stdout.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
                if key.strip().lower() == "status":
                    status = int(value.strip().split()[0])
                else:
                    headers.append((key.strip(), value.strip()))
            entry["status"] = status
            self.send_response(status)
            length = None
            for k, v in headers:
                if k.lower() == "content-length":
                    length = int(v)
                if k.lower() not in ("transfer-encoding", "connection"):
                    self.send_header(k, v)
            chunked = length is None and self.command != "HEAD"
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                while True:
                    data = proc.stdout.read1(65536)
                    if not data:
                        break
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                    entry["bytes"] = entry.get("bytes", 0) + len(data)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            entry["aborted"] = True
            self.close_connection = True
            proc.kill()
        finally:
            proc.stdout.close()
            proc.wait()
            feeder.join(5)
            drain.join(5)
            entry["stderr"] = b"".join(e for e in errors if e).decode(errors="replace")


class GitOrigin(BackgroundServer):
    """The smart-HTTP server plus the repository helpers for repositories under `root`."""

    handler = _Handler
    thread_name = "git-origin"

    def __init__(self, root, port=DEFAULT_PORT, host=HOST):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._log = {}
        self._delays = {}
        self._redirects = {}

    # lifecycle

    # request log, delays, redirects
    def _record(self, name, entry):
        with self._lock:
            self._log.setdefault(name, []).append(entry)

    def _delay_for(self, name) -> float:
        with self._lock:
            return self._delays.get(name, 0)

    def _redirect_for(self, name):
        with self._lock:
            return self._redirects.get(name)

    def requests(self, name) -> list:
        """Every request for `name`.git so far: dicts with time, method, path, query,
        git_protocol, status (None while it is being answered), stderr."""
        with self._lock:
            return [dict(e) for e in self._log.get(name, [])]

    def clear_log(self, name):
        with self._lock:
            self._log.pop(name, None)

    def wait_for_request(self, name, count=1, timeout=60) -> list:
        deadline = time.time() + timeout
        while time.time() < deadline:
            seen = self.requests(name)
            if len(seen) >= count:
                return seen
            time.sleep(0.1)
        raise AssertionError(f"{count} request(s) for {name}.git expected within {timeout}s, "
                             f"got {self.requests(name)}")

    def set_delay(self, name, seconds: float):
        """Every request for `name`.git arriving from now on waits `seconds` before it is
        answered (0 removes the delay; requests already waiting keep theirs)."""
        with self._lock:
            if seconds:
                self._delays[name] = seconds
            else:
                self._delays.pop(name, None)

    def set_redirect(self, name, base):
        """Requests for `name`.git answer 302 to `base` + the rest of the path (None: off)."""
        with self._lock:
            if base:
                self._redirects[name] = base
            else:
                self._redirects.pop(name, None)

    # repositories
    def url(self, name) -> str:
        return origin_url(name, self.port, self.host)

    def path(self, name) -> pathlib.Path:
        return repo_path(self.root, name)

    def make_origin(self, name, files, branch="main", message="initial"):
        return make_origin(self.root, name, files, branch, message, port=self.port)

    def commit(self, name, files, message="change", branch="main", parents=None) -> str:
        return commit(self.root, name, files, message, branch, parents)

    def force_push(self, name, files, message="rewritten", branch="main") -> str:
        return force_push(self.root, name, files, message, branch)

    def tag(self, name, tag_name, target="HEAD", message=None, annotated=True) -> str:
        return tag(self.root, name, tag_name, target, message, annotated)

    def set_branch(self, name, branch, target) -> str:
        return set_branch(self.root, name, branch, target)

    def rev_parse(self, name, rev) -> str:
        return rev_parse(self.root, name, rev)

    def tree_of(self, name, rev) -> str:
        return tree_of(self.root, name, rev)

    def ls_tree(self, name, rev) -> list:
        return ls_tree(self.root, name, rev)

    def log(self, name, rev) -> list:
        """Commit ids reachable from `rev`, newest first."""
        return git_out("rev-list", rev, env=git_env(GIT_DIR=self.path(name))).split()


# --- self-test ----------------------------------------------------------------------------


def self_test(port=DEFAULT_PORT):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        origin = GitOrigin(tmp / "origins", port=port).start()
        try:
            env = git_env(tmp)
            path, url = origin.make_origin("demo", {
                "README.md": "hello\n",
                "src/lib.rs": b"pub fn f() {}\n",
                "bin/run": (EXEC, b"#!/bin/sh\necho run\n"),
                "link": (SYMLINK, b"README.md"),
            })
            first = origin.rev_parse("demo", "main")
            second = origin.commit("demo", {"README.md": "hello again\n", "src/lib.rs": None,
                                            "docs/a b.txt": "space\n"}, "second")
            third = origin.commit("demo", {"CHANGES": "3\n"}, "third")
            tag_obj = origin.tag("demo", "v1.0", second)
            assert origin.log("demo", "main") == [third, second, first]

            # full clone, protocol v2
            git("-c", "protocol.version=2", "clone", "-q", url, tmp / "full", env=env)
            assert git_out("rev-parse", "HEAD", cwd=tmp / "full", env=env) == third
            assert (tmp / "full/bin/run").stat().st_mode & 0o111
            assert os.readlink(tmp / "full/link") == "README.md"
            assert (tmp / "full/docs/a b.txt").read_text() == "space\n"
            assert not (tmp / "full/src/lib.rs").exists()
            assert git_out("rev-list", "--count", "HEAD", cwd=tmp / "full", env=env) == "3"
            v2 = [e for e in origin.requests("demo") if e["git_protocol"] == "version=2"]
            assert v2, origin.requests("demo")

            # protocol v0 too
            git("-c", "protocol.version=0", "clone", "-q", "--bare", url, tmp / "v0", env=env)

            # ls-remote with protocol v2, and a raw v2 capability advertisement
            refs = git_out("-c", "protocol.version=2", "ls-remote", url, env=env)
            assert f"{third}\trefs/heads/main" in refs, refs
            assert f"{tag_obj}\trefs/tags/v1.0" in refs, refs
            assert f"{second}\trefs/tags/v1.0^{{}}" in refs, refs
            req = urllib.request.Request(f"{url}/info/refs?service=git-upload-pack",
                                         headers={"Git-Protocol": "version=2"})
            with urllib.request.urlopen(req, timeout=10) as r:
                adv = r.read()
            assert b"version 2" in adv and b"shallow" in adv, adv

            # shallow fetch of a branch
            git("init", "-q", tmp / "shallow", env=env)
            git("-c", "protocol.version=2", "fetch", "-q", "--depth", "1", url, "main",
                cwd=tmp / "shallow", env=env)
            assert git_out("rev-parse", "FETCH_HEAD", cwd=tmp / "shallow", env=env) == third
            assert git_out("rev-list", "--count", "FETCH_HEAD", cwd=tmp / "shallow",
                           env=env) == "1"

            # a commit id wanted directly, depth 1 (v2 and v0)
            for version in ("2", "0"):
                d = tmp / f"bysha{version}"
                git("init", "-q", d, env=env)
                git("-c", f"protocol.version={version}", "fetch", "-q", "--depth", "1", url,
                    first, cwd=d, env=env)
                assert git_out("rev-parse", "FETCH_HEAD", cwd=d, env=env) == first
                assert git_out("rev-list", "--count", "FETCH_HEAD", cwd=d, env=env) == "1"
                assert git_out("rev-parse", "FETCH_HEAD^{tree}", cwd=d, env=env) == \
                    origin.tree_of("demo", first)

            # force push: an unrelated root commit; the old commit is still wantable by id
            new = origin.force_push("demo", {"other": b"unrelated\n"})
            assert origin.log("demo", "main") == [new]
            git("-C", tmp / "full", "fetch", "-q", "origin", env=env)
            assert git_out("rev-parse", "origin/main", cwd=tmp / "full", env=env) == new
            d = tmp / "unreachable"
            git("init", "-q", d, env=env)
            git("fetch", "-q", "--depth", "1", url, first, cwd=d, env=env)

            # big request bodies: > 1 KiB is gzipped by git, > http.postBuffer is chunked
            origin.make_origin("many", {"a": "a\n"})
            base = origin.rev_parse("many", "main")
            stream = b"".join(
                b"commit refs/heads/b%04d\ncommitter C <c@example.org> 1700000000 +0000\n"
                b"data 1\n%d\nfrom %s\nM 100644 inline f\ndata 2\n%02d\n\n"
                % (i, i % 10, base.encode(), i % 100) for i in range(1600))
            git("fast-import", "--quiet", input=stream,
                env=git_env(GIT_DIR=origin.path("many")))
            for n, extra in enumerate([[], ["-c", "http.postBuffer=70000"]]):
                origin.clear_log("many")
                git(*extra, "clone", "-q", "--mirror", origin.url("many"), tmp / f"many{n}",
                    env=env)
                heads = git_out("for-each-ref", "refs/heads", cwd=tmp / f"many{n}", env=env)
                assert len(heads.splitlines()) == 1601
                posts = [e for e in origin.requests("many") if e["method"] == "POST"]
                assert posts and all(e["status"] == 200 for e in posts), posts
                if n == 0:
                    assert any(e["content_encoding"] == "gzip" for e in posts), posts
                else:
                    assert any(e["transfer_encoding"] == "chunked" for e in posts), posts

            # a delay, the request log, 404s
            origin.set_delay("demo", 1.5)
            t0 = time.time()
            git("ls-remote", url, env=env)
            assert time.time() - t0 >= 1.5
            origin.set_delay("demo", 0)
            log = origin.requests("demo")
            assert all(e["status"] == 200 for e in log), [(e["path"], e["status"]) for e in log]
            assert {e["method"] for e in log} == {"GET", "POST"}
            bad = git("ls-remote", origin.url("missing"), env=env, check=False)
            assert bad.returncode != 0
            assert origin.requests("missing")[0]["status"] == 404

            # a redirect answers 302 with the rest of the path
            origin.set_redirect("demo", "http://127.0.0.1:9/elsewhere.git")
            req = urllib.request.Request(f"{url}/info/refs?service=git-upload-pack")
            opener = urllib.request.build_opener(_NoRedirect)
            try:
                opener.open(req, timeout=10)
                raise AssertionError("no redirect")
            except urllib.error.HTTPError as e:
                assert e.code == 302
                assert e.headers["Location"] == ("http://127.0.0.1:9/elsewhere.git/info/refs"
                                                  "?service=git-upload-pack")
            origin.set_redirect("demo", None)
        finally:
            origin.stop()
    print("gitorigin self-test: ok")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--port", type=int, default=None,
                    help=f"default {DEFAULT_PORT}; the self-test takes a free port")
    ap.add_argument("--root", help="serve the bare repositories in this folder")
    a = ap.parse_args()
    if a.self_test:
        self_test(a.port or 0)
    elif a.root:
        server = GitOrigin(a.root, port=a.port or DEFAULT_PORT).start()
        print(f"serving {a.root} on http://{HOST}:{server.port}/<name>.git")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.stop()
    else:
        ap.print_help()
