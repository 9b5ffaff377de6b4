"""Source-archive benchmark (tests/bench/archive.sh drives it): Cairn's POST /v1/archives
beside Repour's mechanism (git clone + git push), and the bytes a builder downloads.

Subcommands:
  generate            make (or find in the cache) the seeded origin repository; print its stats
  serve               serve the origin over smart HTTP on 127.0.0.1:18418 until interrupted
  run --parts P,...   measure: baseline, cairn, bytes (cairn and bytes need the stack)
  selftest            the counting proxy in front of `python3 -m http.server` serving a
                      dumb-HTTP repository laid out as the docs describe (one parentless
                      commit and one self-contained pack per tree): validates the bytes
                      part without the stack; its figures are an emulation, not Cairn's

Only the standard library; git >= 2.30. Every git command runs with an isolated
configuration (GIT_CONFIG_GLOBAL=/dev/null, GIT_CONFIG_NOSYSTEM=1).
"""

import argparse
import base64
import datetime
import http.client
import http.server
import json
import math
import os
import pathlib
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # nothing written into tests/
ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("CAIRN_CACHE", pathlib.Path.home() / ".cache/cairn"))
STATE = pathlib.Path(os.environ.get("CAIRN_STATE", CACHE / "state"))
BENCH = CACHE / "bench"
LS_ENDPOINT = os.environ.get("CAIRN_ENDPOINT", "http://localhost:4566")

# Bump when the generator changes what it writes (the cache is keyed by it).
GENERATOR_VERSION = 1
SEED = 20240611
N_COMMITS = 400
N_DIRS = 300
TARGET_FILES = 8000
INITIAL_FILES = 5600
N_TAGS = 10
MAX_PACK = 32 * 1024 * 1024  # the local stack's archive size limit

ORIGIN_HOST, ORIGIN_PORT = "127.0.0.1", 18418  # the only origin port the local stack allows
ORIGIN_REPO = "bench.git"

AWS_ENV = {
    "AWS_ENDPOINT_URL": LS_ENDPOINT,
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PAGER": "",
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def die(msg):
    log(f"archive_bench: error: {msg}")
    sys.exit(1)


# --- git with an isolated configuration ---------------------------------------------

def git_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.org",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.org",
               LC_ALL="C")
    env.update(extra or {})
    return env


def git(*args, cwd=None, input=None, env=None, text=True):
    p = subprocess.run(["git", *args], cwd=cwd, input=input, env=git_env(env),
                       capture_output=True, text=text)
    if p.returncode != 0:
        err = p.stderr if text else p.stderr.decode(errors="replace")
        raise SystemExit(f"git {' '.join(map(str, args))} failed ({p.returncode}):\n{err}")
    return p.stdout.strip() if text else p.stdout


def timed(fn, *a, **k):
    t0 = time.monotonic()
    out = fn(*a, **k)
    return time.monotonic() - t0, out


def pack_bytes(gitdir: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in (gitdir / "objects/pack").glob("*.pack"))


def count_objects(gitdir) -> dict:
    out = git("count-objects", "-v", cwd=gitdir)
    return {k: int(v) for k, v in (l.split(": ") for l in out.splitlines())}


# --- the generated origin repository ------------------------------------------------

WORDS = """
account action active adapter address agent alloc anchor apply archive arena array
assert async atom attach audit auth backend batch bind bitmap block body bound bucket
buffer build bundle byte cache call cancel capacity cell chain channel check chunk
cipher claim class client clock close cluster codec column commit config connect
context copy core count cursor data debug decode default delta depth digest dirty
dispatch domain driver dump edge emit encode entry error event expire export extent
field file filter flag flush format frame future gate graph guard handle hash header
heap hint host index init inode input inner insert key kind label layer layout lease
length level limit line link list load local lock log lookup loop manifest map mark
match member merge message meta method mirror mode module mount name node notify
object offset option order origin output owner packet page parse parser partition
patch path peer pending plan pool port prefix probe process queue range reader record
reduce region register release remote render replica report request reset resolve
result retry root route rule scan schema scope segment select send server session
shard signal size slot snapshot socket source span stage state status store stream
string sync table target task timer token trace track tree type update value vector
version view watch window worker writer zone
""".split()
VERBS = ("add fix handle refactor rename remove move document test simplify split "
         "speed up clean up validate cache retry log").split(" ")
LANG_BY_TOP = {
    "src": ["rs"] * 6 + ["py", "c"], "crates": ["rs"] * 7 + ["toml"], "lib": ["c", "c", "h", "py"],
    "include": ["h"], "tests": ["py", "py", "rs", "sh"], "docs": ["md"],
    "tools": ["py", "sh"], "scripts": ["sh", "py"], "examples": ["rs", "py", "c", "js"],
    "web": ["js", "js", "json"], "bench": ["rs", "py"],
}
EXT_SUFFIX = {"rs": ".rs", "py": ".py", "c": ".c", "h": ".h", "sh": ".sh", "md": ".md",
              "js": ".js", "json": ".json", "toml": ".toml"}


class Gen:
    """Source-like text: identifiers from a fixed vocabulary in language-shaped lines."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def ident(self, parts=None):
        n = parts or self.r.choice((1, 2, 2, 2, 3))
        return "_".join(self.r.choice(WORDS) for _ in range(n))

    def camel(self):
        return "".join(w.capitalize() for w in self.ident(self.r.choice((1, 2, 2))).split("_"))

    def sentence(self):
        words = [self.r.choice(WORDS) for _ in range(self.r.randint(4, 12))]
        return (" ".join(words)).capitalize() + "."

    def expr(self):
        r = self.r
        k = r.randrange(7)
        if k == 0:
            return str(r.choice((0, 1, 2, 8, 16, 64, 255, 1024, r.randrange(10000))))
        if k == 1:
            return f'"{self.ident()}"'
        if k == 2:
            return f"{self.ident()}({self.ident(1)}, {r.randrange(100)})"
        if k == 3:
            return f"{self.ident(1)}.{self.ident()}"
        if k == 4:
            return f"{self.ident(1)} {r.choice('+-*/%')} {self.ident(1)}"
        if k == 5:
            return f"{self.ident(1)}[{r.randrange(32)}]"
        return self.ident()

    def stmt(self, lang, ind):
        r, sp = self.r, " " * ind
        k = r.randrange(10)
        if k == 0:
            c = {"py": "#", "sh": "#", "toml": "#"}.get(lang, "//")
            return f"{sp}{c} {self.sentence()}"
        if lang == "py":
            return sp + r.choice([
                f"{self.ident()} = {self.expr()}", f"self.{self.ident()} = {self.expr()}",
                f"return {self.expr()}", f"{self.ident()}.append({self.expr()})",
                f"if {self.ident()} is None:\n{sp}    raise ValueError(\"{self.sentence()}\")",
                f"for {self.ident(1)} in {self.ident()}:\n{sp}    {self.ident()}({self.ident(1)})",
                f"log.debug(\"{self.ident()}: %s\", {self.expr()})"])
        if lang == "sh":
            return sp + r.choice([
                f"{self.ident().upper()}=\"${{{self.ident().upper()}:-{self.ident(1)}}}\"",
                f"{self.ident(1)} --{self.ident(1)} \"${self.ident(1)}\" >/dev/null",
                f"[[ -f \"${self.ident(1)}/{self.ident()}\" ]] || die \"{self.sentence()}\"",
                f"echo \"{self.sentence()}\""])
        if lang == "rs":
            return sp + r.choice([
                f"let {self.ident()} = {self.expr()};", f"let mut {self.ident()} = Vec::new();",
                f"{self.ident()}.push({self.expr()});", f"self.{self.ident()} = {self.expr()};",
                f"if {self.ident()} > {r.randrange(100)} {{\n{sp}    return Err(Error::{self.camel()});\n{sp}}}",
                f"for {self.ident(1)} in &self.{self.ident()} {{\n{sp}    {self.ident()}({self.ident(1)})?;\n{sp}}}",
                f"tracing::debug!({self.ident(1)} = %{self.ident(1)}, \"{self.sentence()}\");",
                f"{self.ident()}(&mut {self.ident(1)}, {self.expr()})?;"])
        if lang == "js":
            return sp + r.choice([
                f"const {self.ident()} = {self.expr()};", f"let {self.ident()} = [];",
                f"{self.ident()}.push({self.expr()});", f"return {self.expr()};",
                f"if (!{self.ident()}) {{\n{sp}  throw new Error(\"{self.sentence()}\");\n{sp}}}"])
        return sp + r.choice([  # c, h
            f"int {self.ident()} = {self.expr()};", f"{self.ident()}->{self.ident()} = {self.expr()};",
            f"if ({self.ident()} < {r.randrange(100)})\n{sp}    return -E{self.ident(1).upper()};",
            f"memcpy({self.ident(1)}, {self.ident(1)}, sizeof(*{self.ident(1)}));",
            f"for (i = 0; i < {self.ident()}; i++)\n{sp}    {self.ident()}(&{self.ident(1)}[i]);",
            f"{self.ident()}({self.expr()});"])

    def block(self, lang):
        """One top-level item (function, struct, section...) as a list of lines."""
        r = self.r
        body = [self.stmt(lang, 4 if lang != "js" else 2) for _ in range(r.randint(2, 14))]
        name = self.ident()
        if lang == "rs":
            if r.random() < 0.25:
                fields = [f"    pub {self.ident()}: {r.choice(['u32', 'u64', 'String', 'bool', 'Vec<u8>', 'Option<String>'])},"
                          for _ in range(r.randint(2, 8))]
                return [f"/// {self.sentence()}", "#[derive(Debug, Clone)]",
                        f"pub struct {self.camel()} {{", *fields, "}", ""]
            return [f"/// {self.sentence()}",
                    f"pub fn {name}(&self, {self.ident(1)}: &{r.choice(['str', '[u8]', 'Path'])}) -> Result<{r.choice(['usize', '()', 'String'])}, Error> {{",
                    *body, "    Ok(Default::default())", "}", ""]
        if lang == "py":
            if r.random() < 0.2:
                return [f"class {self.camel()}:", f'    """{self.sentence()}"""', "",
                        f"    def {name}(self, {self.ident(1)}):",
                        *["    " + b for b in body], ""]
            return [f"def {name}({self.ident(1)}, {self.ident(1)}={self.expr()}):",
                    f'    """{self.sentence()}"""', *body, ""]
        if lang == "sh":
            return [f"{name}() {{", *body, "}", ""]
        if lang == "js":
            return [f"export function {self.camel()}({self.ident(1)}, {self.ident(1)}) {{",
                    *[b.replace("    ", "  ") for b in body], "}", ""]
        if lang == "md":
            return [f"## {self.sentence()[:-1]}", "",
                    *[self.sentence() + " " + self.sentence() for _ in range(r.randint(1, 5))],
                    "", f"- `{self.ident()}`: {self.sentence()}", ""]
        if lang in ("json", "toml"):
            sep = '": ' if lang == "json" else " = "
            q = '  "' if lang == "json" else ""
            return [f"{q}{self.ident()}{sep}\"{self.ident()}\"{',' if lang == 'json' else ''}"
                    for _ in range(r.randint(3, 12))]
        if lang == "h":
            return [f"/* {self.sentence()} */",
                    f"int {name}(struct {self.ident()} *{self.ident(1)}, size_t {self.ident(1)});", ""]
        return [f"/* {self.sentence()} */",
                f"static int {name}(struct {self.ident()} *{self.ident(1)})", "{",
                *body, "    return 0;", "}", ""]

    def header(self, lang):
        if lang == "json":
            return ["{"]
        c = {"py": "#", "sh": "#", "toml": "#", "md": "<!--", "c": "/*", "h": "/*"}.get(lang, "//")
        lines = [f"{c} SPDX-License-Identifier: Apache-2.0" + (" -->" if c == "<!--" else
                                                                 " */" if c == "/*" else "")]
        if lang == "sh":
            lines = ["#!/usr/bin/env bash", *lines, "set -euo pipefail"]
        if lang == "rs":
            lines += [f"//! {self.sentence()}", "",
                      *[f"use crate::{self.ident(1)}::{self.camel()};" for _ in range(self.r.randint(1, 5))],
                      "use std::collections::HashMap;"]
        if lang == "py":
            lines += [f'"""{self.sentence()}"""', "", "import logging", "import os",
                      *[f"from .{self.ident(1)} import {self.ident()}" for _ in range(self.r.randint(0, 4))],
                      "", "log = logging.getLogger(__name__)"]
        if lang in ("c", "h"):
            lines += [f"#include <{self.r.choice(['stdint', 'string', 'stdlib', 'errno'])}.h>",
                      f'#include "{self.ident()}.h"']
        if lang == "md":
            lines = [f"# {self.sentence()[:-1]}"]
        return lines + [""]

    def size(self):
        # Log-normal, median 1.4 KB; a long tail up to 64 KB.
        return int(min(64000, max(80, math.exp(self.r.gauss(math.log(1400), 0.95)))))

    def file(self, lang):
        target = self.size()
        lines = self.header(lang)
        n = sum(len(l) + 1 for l in lines)
        while n < target:
            b = self.block(lang)
            lines += b
            n += sum(len(l) + 1 for l in b)
        if lang == "json":
            lines.append('  "end": true\n}')
        return "\n".join(lines) + "\n"

    def edit(self, text, lang):
        """A few hunks: lines replaced, inserted or deleted."""
        lines = text.split("\n")
        for _ in range(self.r.choice((1, 1, 1, 2, 2, 3))):
            at = self.r.randrange(len(lines))
            k = self.r.randrange(3)
            if k == 0:
                lines[at:at + self.r.randint(1, 3)] = self.stmt(lang, 4).split("\n")
            elif k == 1:
                lines[at:at] = [l for _ in range(self.r.randint(1, 4)) for l in self.stmt(lang, 4).split("\n")]
            elif len(lines) > 10:
                del lines[at:at + self.r.randint(1, 4)]
        out = "\n".join(lines)
        return out if out.endswith("\n") else out + "\n"


def make_dirs(rng: random.Random, gen: Gen):
    tops = list(LANG_BY_TOP)
    dirs = {t: LANG_BY_TOP[t] for t in tops}
    order = list(tops)
    while len(order) < N_DIRS:
        parent = rng.choice(order)
        if parent.count("/") >= 3:
            continue
        d = f"{parent}/{gen.ident(rng.choice((1, 1, 2)))}"
        if d in dirs:
            continue
        dirs[d] = dirs[parent.split("/")[0]]
        order.append(d)
    # Zipf-ish weights: some directories hold many files, most a few.
    weights = [1.0 / (1 + (i % 97)) ** 0.6 for i in range(len(order))]
    return order, dirs, weights


def new_path(rng, gen, files, order, dirs, weights):
    while True:
        d = rng.choices(order, weights)[0]
        lang = rng.choice(dirs[d])
        p = f"{d}/{gen.ident()}{EXT_SUFFIX[lang]}"
        if p not in files:
            return p, lang


def fast_import_stream(seed: int):
    """Yields fast-import commands (bytes) for the whole history; returns via .stats."""
    rng = random.Random(seed)
    gen = Gen(rng)
    order, dirs, weights = make_dirs(rng, gen)
    files = {}  # path -> (lang, text)
    authors = [(f"{gen.camel()} {gen.camel()}", f"{gen.ident(1)}@example.org") for _ in range(12)]
    t0 = 1_600_000_000
    tag_at = {round((i + 1) * N_COMMITS / N_TAGS): f"bench-t{i + 1:02d}" for i in range(N_TAGS)}
    adds_left = TARGET_FILES - INITIAL_FILES
    out = []

    def blob(path, text):
        data = text.encode()
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))

    for c in range(1, N_COMMITS + 1):
        if c == 1:
            changes = []
            for _ in range(INITIAL_FILES):
                p, lang = new_path(rng, gen, files, order, dirs, weights)
                files[p] = (lang, gen.file(lang))
                changes.append(p)
            msg = "Initial import\n"
            deleted = []
        else:
            paths = list(files)
            n_mod = min(len(paths), int(rng.expovariate(1 / 7)) + 1)
            changes = []
            for p in rng.sample(paths, n_mod):
                lang, text = files[p]
                files[p] = (lang, gen.edit(text, lang))
                changes.append(p)
            remaining = N_COMMITS - c + 1
            n_add = adds_left // remaining + (1 if rng.random() < (adds_left % remaining) / remaining else 0)
            deleted = []
            if rng.random() < 0.08:
                victim = rng.choice(paths)
                if victim not in changes:
                    del files[victim]
                    deleted.append(victim)
                    n_add += 1
            for _ in range(n_add):
                p, lang = new_path(rng, gen, files, order, dirs, weights)
                files[p] = (lang, gen.file(lang))
                changes.append(p)
            adds_left -= n_add - len(deleted)
            area = changes[0].split("/")[1] if "/" in changes[0] else changes[0]
            msg = f"{area}: {rng.choice(VERBS)} {gen.ident()}\n\n{gen.sentence()}\n"
        name, email = authors[rng.randrange(len(authors))]
        when = t0 + c * 21_600 + rng.randrange(3600)
        m = msg.encode()
        out.append(b"commit refs/heads/main\nmark :%d\n" % c)
        out.append(f"author {name} <{email}> {when} +0000\n".encode())
        out.append(f"committer {name} <{email}> {when} +0000\n".encode())
        out.append(b"data %d\n%s\n" % (len(m), m))
        if c > 1:
            out.append(b"from :%d\n" % (c - 1))
        for p in deleted:
            out.append(b"D %s\n" % p.encode())
        for p in changes:
            blob(p, files[p][1])
        out.append(b"\n")
        if c in tag_at:
            out.append(b"reset refs/tags/%s\nfrom :%d\n\n" % (tag_at[c].encode(), c))
        yield b"".join(out)
        out.clear()
    sizes = sorted(len(t) for _, t in files.values())
    fast_import_stream.stats = {
        "files": len(files), "dirs": len({p.rsplit('/', 1)[0] for p in files}),
        "commits": N_COMMITS, "tree_bytes": sum(sizes),
        "median_file_bytes": sizes[len(sizes) // 2], "p90_file_bytes": sizes[int(len(sizes) * 0.9)],
        "max_file_bytes": sizes[-1], "tags": [tag_at[k] for k in sorted(tag_at)],
    }


def origin_root(seed=SEED) -> pathlib.Path:
    return BENCH / f"archive-origin-v{GENERATOR_VERSION}-s{seed}"


def generate(seed=SEED) -> dict:
    """The origin repository (bare, served as /bench.git), generated once per version."""
    root = origin_root(seed)
    stats_file = root / "stats.json"
    if stats_file.exists():
        return json.loads(stats_file.read_text())
    BENCH.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="archive-origin-", dir=BENCH))
    repo = tmp / ORIGIN_REPO
    log(f"generating the origin repository (generator v{GENERATOR_VERSION}, seed {seed}) in {repo}")
    t0 = time.monotonic()
    git("init", "-q", "--bare", "--initial-branch=main", str(repo))
    git("config", "gc.auto", "0", cwd=repo)
    p = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=repo, env=git_env(),
                         stdin=subprocess.PIPE)
    for chunk in fast_import_stream(seed):
        p.stdin.write(chunk)
    p.stdin.write(b"done\n")
    p.stdin.close()
    if p.wait() != 0:
        die("git fast-import failed")
    stats = dict(fast_import_stream.stats)
    t1 = time.monotonic()
    # A real server's repository is packed with deltas (fast-import's own pack barely is).
    git("repack", "-a", "-d", "-f", "-q", "--window=50", "--depth=50", cwd=repo)
    git("fsck", "--no-progress", "--connectivity-only", cwd=repo)
    stats.update(
        generator_version=GENERATOR_VERSION, seed=seed, head=git("rev-parse", "main", cwd=repo),
        tree=git("rev-parse", "main^{tree}", cwd=repo), pack_bytes=pack_bytes(repo),
        objects=count_objects(repo)["in-pack"],
        tag_commits={t: git("rev-parse", f"{t}^{{commit}}", cwd=repo) for t in stats["tags"]},
        generate_s=round(t1 - t0, 1), repack_s=round(time.monotonic() - t1, 1))
    if stats["pack_bytes"] >= MAX_PACK:
        die(f"generated pack is {stats['pack_bytes']} bytes, over {MAX_PACK}: lower the sizes")
    (tmp / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    log(f"generated in {stats['generate_s']} s + repack {stats['repack_s']} s: "
        f"{stats['files']} files, {stats['dirs']} dirs, pack {stats['pack_bytes']} bytes, "
        f"head {stats['head']}")
    return stats


# --- the origin: smart HTTP --------------------------------------------------------------

def read_body(handler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    n = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(n) if n else b""


class GitBackendHandler(http.server.BaseHTTPRequestHandler):
    """`git http-backend` as CGI (the minimal equivalent of tests/e2e/gitorigin.py)."""
    protocol_version = "HTTP/1.1"
    project_root = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.cgi()

    do_POST = do_GET

    def cgi(self):
        path, _, query = self.path.partition("?")
        body = read_body(self)
        env = git_env({
            "GIT_PROJECT_ROOT": str(self.project_root), "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command, "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        })
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        out = p.stdout
        ends = [i for i in (out.find(b"\r\n\r\n"), out.find(b"\n\n")) if i >= 0]
        if p.returncode != 0 and not ends:
            self.send_error(500, p.stderr.decode(errors="replace")[:200])
            return
        cut = min(ends)
        head = out[:cut]
        payload = out[cut + (4 if out[cut:cut + 4] == b"\r\n\r\n" else 2):]
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_origin(root: pathlib.Path):
    """Smart HTTP on 127.0.0.1:18418 serving root (GIT_PROJECT_ROOT). Reuses
    tests/e2e/gitorigin.py when it exists and has a usable entry point."""
    # What tests/e2e/gitorigin.py sets on its origins: shallow fetches and wants of
    # any commit id (a ref given as a commit id), protocol v2.
    repo = root / ORIGIN_REPO
    for key, value in [("uploadpack.allowAnySHA1InWant", "true"),
                       ("uploadpack.allowReachableSHA1InWant", "true"),
                       ("uploadpack.allowTipSHA1InWant", "true"),
                       ("uploadpack.allowFilter", "true"), ("http.uploadpack", "true"),
                       ("protocol.version", "2")]:
        git("config", key, value, cwd=repo)
    sys.path.insert(0, str(ROOT / "tests/e2e"))
    try:
        import gitorigin  # noqa: F401
    except ImportError:
        gitorigin = None
    finally:
        sys.path.pop(0)
    if gitorigin is not None:
        started = _start_gitorigin(gitorigin, root)
        if started is not None:
            return started
        log("tests/e2e/gitorigin.py has no entry point this helper knows: using its own server")
    GitBackendHandler.project_root = root
    try:
        srv = Server((ORIGIN_HOST, ORIGIN_PORT), GitBackendHandler)
    except OSError as e:
        die(f"cannot listen on {ORIGIN_HOST}:{ORIGIN_PORT} ({e}): is another origin running?")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "own (archive_bench.py GitBackendHandler)"


def _start_gitorigin(mod, root):
    """tests/e2e/gitorigin.py's GitOrigin(root, port).start() / .stop()."""
    cls = getattr(mod, "GitOrigin", None)
    if cls is None or not hasattr(cls, "start"):
        return None
    try:
        origin = cls(root, port=ORIGIN_PORT).start()
    except OSError as e:
        die(f"cannot listen on {ORIGIN_HOST}:{ORIGIN_PORT} ({e}): is another origin running?")
    return origin, "tests/e2e/gitorigin.py (GitOrigin)"


# --- the counting reverse proxy ---------------------------------------------------------

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "content-length", "host"}


class CountingProxy:
    """A reverse proxy on 127.0.0.1:<ephemeral> in front of `upstream` (scheme://host:port),
    recording per request the bytes it sends back: status line + headers, and body."""

    def __init__(self, upstream: str):
        u = urllib.parse.urlsplit(upstream)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.records, self.lock = [], threading.Lock()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.forward(self)

            do_POST = do_HEAD = do_GET

        self.srv = Server(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, upstream_url: str) -> str:
        u = urllib.parse.urlsplit(upstream_url)
        return urllib.parse.urlunsplit(("http", f"127.0.0.1:{self.port}", u.path, u.query, ""))

    def forward(self, h):
        body = read_body(h)
        req_bytes = len(h.requestline) + 2 + len(bytes(h.headers)) + len(body)
        conn_cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(self.netloc, timeout=300)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        headers["Host"] = self.netloc
        t0 = time.monotonic()
        try:
            conn.request(h.command, h.path, body=body if body or h.command == "POST" else None,
                         headers=headers)
            r = conn.getresponse()
            data = r.read()
            rheaders = r.getheaders()
            status, reason = r.status, r.reason
        except OSError as e:
            status, reason, rheaders, data = 502, "Bad Gateway", [], str(e).encode()
        finally:
            conn.close()
        length = len(data)
        if h.command == "HEAD":
            length = next((int(v) for k, v in rheaders if k.lower() == "content-length"), 0)
            data = b""
        head = f"HTTP/1.1 {status} {reason}\r\n"
        for k, v in rheaders:
            if k.lower() not in HOP:
                head += f"{k}: {v}\r\n"
        head += f"Content-Length: {length}\r\n\r\n"
        hb = head.encode("latin-1")
        h.wfile.write(hb + data)
        h.wfile.flush()
        with self.lock:
            self.records.append({"method": h.command, "path": h.path, "status": status,
                                 "req_bytes": req_bytes, "header_bytes": len(hb),
                                 "body_bytes": len(data), "s": time.monotonic() - t0})

    def reset(self):
        with self.lock:
            out, self.records = self.records, []
        return out

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def category(path: str) -> str:
    p = path.split("?", 1)[0]
    if p.endswith("/info/refs"):
        return "info/refs" + ("?service=git-upload-pack" if "service=" in path else "")
    if p.endswith("/git-upload-pack"):
        return "git-upload-pack (POST)"
    if p.endswith("/HEAD"):
        return "HEAD (file)"
    if p.endswith("/objects/info/packs"):
        return "objects/info/packs"
    if "/objects/info/" in p:
        return "objects/info/" + p.rsplit("/", 1)[1]
    if p.endswith(".idx"):
        return "objects/pack/*.idx"
    if p.endswith(".pack"):
        return "objects/pack/*.pack"
    if re.search(r"/objects/[0-9a-f]{2}/[0-9a-f]{38}$", p):
        return "objects/xx/... (loose)"
    return p


def summarize(records):
    cats = {}
    for r in records:
        c = cats.setdefault(category(r["path"]), {"requests": 0, "statuses": {}, "header_bytes": 0,
                                                  "body_bytes": 0, "req_bytes": 0})
        c["requests"] += 1
        c["statuses"][r["status"]] = c["statuses"].get(r["status"], 0) + 1
        for k in ("header_bytes", "body_bytes", "req_bytes"):
            c[k] += r[k]
    return cats


# --- measurements ------------------------------------------------------------------------

def median(xs):
    return statistics.median(xs) if xs else None


class Results:
    def __init__(self):
        self.rows = []  # (section, metric, value, note)
        self.tables = []  # (title, header, rows)

    def add(self, section, metric, value, note="", kind="s"):
        """kind: s (seconds), B (bytes), x (ratio), n (a count)."""
        self.rows.append((section, metric, value, note, kind))
        v = f"{value:.3f}" if isinstance(value, float) else value
        key = re.sub(r"[^A-Za-z0-9.+/-]+", "_", metric).strip("_")
        print(f"RESULT archive section={section} metric={key} {kind}={v}", flush=True)


def fmt_s(v):
    return "-" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def fmt_b(v):
    if v is None:
        return "-"
    if v < 10 * 1024:
        return f"{v:,} B"
    if v < 10 * 1024 * 1024:
        return f"{v / 1024:,.1f} KiB ({v:,} B)"
    return f"{v / 1048576:,.2f} MiB ({v:,} B)"


def baseline(res, runs, origin_url, work):
    """Repour's mechanism: clone from the origin, push the ref to a fresh bare repository."""
    # Repour's clone_git: `git clone -- <url> <dir>` (with checkout), `git checkout <ref>`,
    # `git push target <ref>`; its shallow path is `git clone --branch <ref> --depth 1`.
    # "full, no checkout" separates the transfer from writing ~8,000 files.
    for variant, clone_args, push_ref in [
        ("full", [], "main:refs/heads/main"),
        ("full, no checkout", ["--no-checkout"], "main:refs/heads/main"),
        ("depth1", ["--depth", "1", "--branch", "main"], "main:refs/heads/main"),
    ]:
        clones, pushes, totals = [], [], []
        for i in range(runs):
            d = pathlib.Path(tempfile.mkdtemp(prefix="baseline-", dir=work))
            git("init", "-q", "--bare", str(d / "internal.git"))
            if variant == "depth1":
                git("config", "receive.shallowUpdate", "true", cwd=d / "internal.git")
            tc, _ = timed(git, "clone", "-q", *clone_args, origin_url, str(d / "src"))
            tp, _ = timed(git, "push", "-q", str(d / "internal.git"), push_ref, cwd=d / "src")
            if i == 0:
                res.add("baseline", f"{variant}: pack pushed to the internal repository",
                        pack_bytes(d / "internal.git"), kind="B")
            shutil.rmtree(d)
            clones.append(tc)
            pushes.append(tp)
            totals.append(tc + tp)
            log(f"baseline {variant} run {i + 1}: clone {tc:.2f}s push {tp:.2f}s")
        res.add("baseline", f"{variant}: git clone", median(clones), f"median of {runs}")
        res.add("baseline", f"{variant}: git push", median(pushes), f"median of {runs}")
        res.add("baseline", f"{variant}: clone + push", median(totals), f"median of {runs}")
        if "no checkout" in variant:
            continue  # the same bytes as full
        # The bytes that clone moves (an untimed extra clone through the counting proxy).
        proxy = CountingProxy(origin_url)
        d = pathlib.Path(tempfile.mkdtemp(prefix="baseline-bytes-", dir=work))
        try:
            git("clone", "-q", "--no-checkout", *clone_args, proxy.url(origin_url), str(d / "src"))
            records = proxy.reset()
        finally:
            proxy.close()
            shutil.rmtree(d)
        res.add("baseline", f"{variant}: clone wire bytes (smart HTTP)",
                sum(r["header_bytes"] + r["body_bytes"] for r in records),
                f"{len(records)} requests", kind="B")


class Api:
    def __init__(self, env):
        self.api = env["CAIRN_API_URL"].rstrip("/")
        self.archive_base = env["CAIRN_ARCHIVE_BASE_URL"].rstrip("/")
        self.auth = None

    def tarball_size(self, url):
        """GET tarball -> 302 -> the object's size (the redirect followed without credentials)."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        req = urllib.request.Request(url, method="GET", headers={"Authorization": self.auth})
        try:
            with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
                return len(r.read())
        except urllib.error.HTTPError as e:
            if e.code not in (301, 302, 303, 307) or not e.headers.get("Location"):
                log(f"tarball {url}: {e.code} {e.read()[:200]!r}")
                return None
            location = urllib.parse.urljoin(url, e.headers["Location"])
        with urllib.request.urlopen(location, timeout=60) as r:
            return len(r.read())

    def login(self, user, password):
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method, path, body=None, timeout=120):
        url = path if path.startswith("http") else self.api + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError as e:
            die(f"{method} {url}: {e!r}")

    def archive(self, name, url, ref):
        """POST /v1/archives synchronously: (seconds to the final answer, body, how)."""
        t0 = time.monotonic()
        status, body = self.call("POST", "/v1/archives", {"name": name, "url": url, "ref": ref})
        how = "sync"
        if status == 202:  # still queued or running after ArchiveWaitSeconds: poll
            op = json.loads(body)
            how = "202+poll"
            while True:
                s, b = self.call("GET", op["operation"])
                o = json.loads(b)
                if o.get("status") in ("succeeded", "failed", "cancelled"):
                    status, body = o.get("http_status") or s, json.dumps(o.get("result")).encode()
                    break
                if time.monotonic() - t0 > 600:
                    die(f"archive {name} {ref}: operation {op['id']} not done after 600 s")
                time.sleep(0.2)
        dt = time.monotonic() - t0
        if status != 200:
            die(f"POST /v1/archives {name} {ref} answered {status}: {body[:600]!r}")
        return dt, json.loads(body), how


def cairn_env():
    f = STATE / "cairn.env"
    if not f.exists():
        die(f"{f} is missing: the stack is not deployed. Start it with localstack/up.sh")
    env = {}
    for line in f.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v.strip("'\"")
    for k in ("CAIRN_API_URL", "CAIRN_TABLE", "CAIRN_ARCHIVE_BASE_URL"):
        if not env.get(k):
            die(f"{f} has no {k}: redeploy the stack with the archives feature (localstack/up.sh)")
    return env


def add_user(env):
    if os.environ.get("ARCHIVE_BENCH_USER"):  # "name:password" of an existing account
        return tuple(os.environ["ARCHIVE_BENCH_USER"].split(":", 1))
    binary = ROOT / "target/release/cairn"
    if not binary.exists():
        die(f"{binary} is missing: cargo build --release --locked -p cairn")
    user, password = "bench-archive", os.urandom(12).hex()
    p = subprocess.run([str(binary), "user", "add", user, "--table", env["CAIRN_TABLE"]],
                       input=password.encode(), env=dict(os.environ, **AWS_ENV), capture_output=True)
    if p.returncode != 0:
        die(f"cairn user add failed: {p.stderr.decode(errors='replace')}")
    return user, password


def run_id():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%m%d%H%M%S") + os.urandom(2).hex()


def cairn(res, runs, api, origin_url, stats):
    rid = run_id()
    firsts, hows = [], set()
    last = None
    for i in range(runs):
        dt, body, how = api.archive(f"bench-{rid}-{i}", origin_url, "main")
        hows.add(how)
        if body.get("created") is not True:
            die(f"first archive of bench-{rid}-{i} answered created={body.get('created')}")
        if body["tree"] != stats["tree"]:
            die(f"archived tree {body['tree']} is not the origin's {stats['tree']}")
        firsts.append(dt)
        last = (f"bench-{rid}-{i}", body)
        log(f"cairn archive run {i + 1}: {dt:.2f}s ({how}) tag {body['tag']}")
    res.add("cairn", "POST /v1/archives, new name (ref main)", median(firsts),
            f"median of {runs}, {'/'.join(sorted(hows))}")
    repeats = []
    name, first = last
    for i in range(runs):
        dt, body, how = api.archive(name, origin_url, "main")
        if body.get("created") is not False or body["tag"] != first["tag"]:
            die(f"repeat archive of {name} answered created={body.get('created')} tag={body.get('tag')}"
                f" (first tag {first['tag']})")
        repeats.append(dt)
        log(f"cairn repeat run {i + 1}: {dt:.2f}s ({how})")
    res.add("cairn", "POST /v1/archives, repeat (tree already archived)", median(repeats),
            f"median of {runs}, created=false")


def http_size(url):
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(r.headers.get("Content-Length", -1))


def bytes_part(res, api, origin_url, stats, work, clone_index):
    """Ten trees into one name, then one clone of one of them through the counting proxy."""
    name = f"bench-bytes-{run_id()}"
    tags = stats["tags"]
    archived, times = [], []
    for i, t in enumerate(tags):
        ref = t if i % 2 == 0 else stats["tag_commits"][t]  # tags and commit ids alternately
        dt, body, how = api.archive(name, origin_url, ref)
        if body.get("created") is not True:
            die(f"archive of {t} into {name} answered created={body.get('created')}")
        archived.append((t, body))
        times.append(dt)
        log(f"archived {t} ({ref[:12]}) into {name}: {dt:.2f}s ({how}) -> {body['tag']}")
    res.add("cairn", "POST /v1/archives, first tree of a name (bench-t01)", times[0])
    res.add("cairn", "POST /v1/archives, a further tree into that name", median(times[1:]),
            f"median of {len(tags) - 1} (bench-t02..t10; tags and commit ids alternately)")
    origin_tag, body = archived[clone_index]
    readonly = body["url"]["readonly"]
    if not readonly.startswith(api.archive_base):
        log(f"note: readonly URL {readonly} is not under CAIRN_ARCHIVE_BASE_URL {api.archive_base}")
    tarball = api.tarball_size(body["tarball"])
    if tarball is not None:
        res.add("bytes", f"cairn: tarball of {origin_tag} ({body['tarball'].rsplit('/', 1)[1]})",
                tarball, kind="B")
    cats = clone_through_proxy(res, readonly, body["tag"], body["tree"], origin_tag, origin_url,
                               stats, work, source="cairn")
    if body["url"].get("tree"):
        tree_repo_bytes(res, body["url"]["tree"], body["tag"], body["tree"], origin_tag, work)
    return cats


def tree_repo_bytes(res, url, tag, tree, origin_tag, work):
    """The same clone from the tree's own one-tag repository (url.tree)."""
    u = urllib.parse.urlsplit(url)
    proxy = CountingProxy(f"{u.scheme}://{u.netloc}")
    d = pathlib.Path(tempfile.mkdtemp(prefix="bytes-tree-", dir=work))
    try:
        dt, _ = timed(git, "clone", "-q", "--branch", tag, "--single-branch", "--no-tags",
                      proxy.url(url), str(d / "dumb"))
        records = proxy.reset()
    finally:
        proxy.close()
    got = git("rev-parse", "HEAD^{tree}", cwd=d / "dumb")
    if got != tree:
        die(f"clone of {tag} from {url} has tree {got}, expected {tree}")
    total = sum(r["header_bytes"] + r["body_bytes"] for r in records)
    own = sum(r["body_bytes"] for r in records if r["path"].endswith(".pack") and r["status"] == 200)
    idx = sum(1 for r in records if r["path"].endswith(".idx"))
    res.add("bytes", "cairn tree URL: dumb clone, all responses (headers + bodies)", total,
            f"{origin_tag}; {len(records)} requests, {idx} idx file(s)", kind="B")
    res.add("bytes", "cairn tree URL: dumb clone wall time", dt)
    if own:
        res.add("bytes", "cairn tree URL: dumb clone total / its own .pack", total / own, kind="x")
    shutil.rmtree(d)


def clone_through_proxy(res, readonly, tag, tree, origin_tag, origin_url, stats, work, source):
    u = urllib.parse.urlsplit(readonly)
    proxy = CountingProxy(f"{u.scheme}://{u.netloc}")
    d = pathlib.Path(tempfile.mkdtemp(prefix="bytes-", dir=work))
    try:
        dt, _ = timed(git, "clone", "-q", "--branch", tag, "--single-branch", "--no-tags",
                      proxy.url(readonly), str(d / "dumb"))
        records = proxy.reset()
    finally:
        proxy.close()
    got = git("rev-parse", "HEAD^{tree}", cwd=d / "dumb")
    if got != tree:
        die(f"clone of {tag} has tree {got}, expected {tree}")
    origin_tree = git("rev-parse", f"{origin_tag}^{{tree}}", cwd=origin_root() / ORIGIN_REPO)
    if got != origin_tree:
        die(f"clone of {tag} has tree {got}, the origin's {origin_tag} has {origin_tree}")
    cats = summarize(records)
    total = sum(r["header_bytes"] + r["body_bytes"] for r in records)
    packs_fetched = [r for r in records if r["path"].endswith(".pack") and r["status"] == 200]
    # Every pack of the repository, sized with HEAD requests (not through the proxy).
    base = readonly.rstrip("/")
    listing = b""
    try:
        with urllib.request.urlopen(f"{base}/objects/info/packs", timeout=30) as r:
            listing = r.read()
    except urllib.error.URLError as e:
        log(f"objects/info/packs: {e}")
    all_packs = {}
    for line in listing.decode().splitlines():
        if line.startswith("P "):
            pname = line[2:].strip()
            all_packs[pname] = http_size(f"{base}/objects/pack/{pname}")
    own = sum(r["body_bytes"] for r in packs_fetched)
    idx = sum(r["body_bytes"] for r in records if r["path"].endswith(".idx"))
    res.add("bytes", f"{source}: dumb clone, all responses (headers + bodies)", total,
            f"{origin_tag}; {len(records)} requests", kind="B")
    res.add("bytes", f"{source}: dumb clone, .pack bodies", own,
            f"{len(packs_fetched)} pack(s) fetched", kind="B")
    res.add("bytes", f"{source}: dumb clone, .idx bodies", idx,
            f"{sum(1 for r in records if r['path'].endswith('.idx'))} idx file(s)", kind="B")
    res.add("bytes", f"{source}: dumb clone wall time", dt)
    if all_packs:
        res.add("bytes", f"{source}: packs in the repository", len(all_packs),
                "sizes " + ", ".join(f"{v:,}" for v in sorted(all_packs.values())), kind="n")
    res.tables.append((
        f"Bytes of `git clone --branch {tag[:18]}… --single-branch --no-tags` ({source}, tree of {origin_tag}), per path",
        ["path", "requests", "status", "response headers", "response bodies", "request bytes"],
        [[c, v["requests"], ", ".join(f"{k}×{n}" for k, n in sorted(v["statuses"].items())),
          fmt_b(v["header_bytes"]), fmt_b(v["body_bytes"]), fmt_b(v["req_bytes"])]
         for c, v in sorted(cats.items())] +
        [["**total**", len(records), "", fmt_b(sum(v["header_bytes"] for v in cats.values())),
          fmt_b(sum(v["body_bytes"] for v in cats.values())),
          fmt_b(sum(v["req_bytes"] for v in cats.values()))]]))
    # The reference: a plain shallow clone of the same tag from the origin (smart HTTP),
    # counted through a proxy too, and its own pack (what `git count-objects` calls size-pack).
    oproxy = CountingProxy(origin_url)
    try:
        git("clone", "-q", "--depth", "1", "--branch", origin_tag, "--no-tags",
            oproxy.url(origin_url), str(d / "smart"))
        orecords = oproxy.reset()
    finally:
        oproxy.close()
    smart_wire = sum(r["header_bytes"] + r["body_bytes"] for r in orecords)
    co = count_objects(d / "smart/.git")
    res.add("bytes", "origin: git clone --depth 1, wire bytes (smart HTTP)", smart_wire,
            f"{len(orecords)} requests", kind="B")
    res.add("bytes", "origin: git clone --depth 1, size of its pack", pack_bytes(d / "smart/.git"),
            f"count-objects: size-pack {co['size-pack']} KiB, {co['in-pack']} objects", kind="B")
    raw = sum(int(l.split()[3]) for l in git("ls-tree", "-r", "-l", "HEAD", cwd=d / "smart").splitlines())
    tgz = subprocess.run("git archive --format=tar HEAD | gzip -n -9 | wc -c", shell=True,
                         cwd=d / "smart", env=git_env(), capture_output=True, text=True, check=True)
    res.add("bytes", "tree: file contents, uncompressed", raw, kind="B")
    res.add("bytes", "tree: git archive --format=tar, gzip -9", int(tgz.stdout), kind="B")
    if own:
        res.add("bytes", f"{source}: dumb clone total / its own .pack", total / own, kind="x")
    res.add("bytes", f"{source}: dumb clone total / origin depth-1 wire bytes", total / smart_wire,
            kind="x")
    shutil.rmtree(d)
    return cats


def selftest(res, stats, work, origin_url, clone_index):
    d = pathlib.Path(tempfile.mkdtemp(prefix="selftest-", dir=work))
    # The emulation needs only the tags' objects: fetch them from the origin into a
    # scratch repository, then pack each tree alone into the served one.
    root = d / "www"
    repo = root / "git/emul.git"
    scratch = d / "scratch.git"
    git("init", "-q", "--bare", str(scratch))
    git("fetch", "-q", "--no-tags", origin_url,
        *[f"refs/tags/{t}:refs/tags/{t}" for t in stats["tags"]], cwd=scratch)
    git("init", "-q", "--bare", str(repo))
    fixed = {"GIT_AUTHOR_NAME": "Cairn", "GIT_AUTHOR_EMAIL": "cairn@localhost",
             "GIT_COMMITTER_NAME": "Cairn", "GIT_COMMITTER_EMAIL": "cairn@localhost",
             "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}
    tags = {}
    for t in stats["tags"]:
        tree = git("rev-parse", f"{t}^{{tree}}", cwd=scratch)
        commit = git("commit-tree", tree, "-m", "Archived by Cairn", cwd=scratch, env=fixed)
        objs = git("rev-list", "--objects", commit, cwd=scratch)
        # Whole objects, no deltas, every object of the tree: as shared/cairn-archive writes.
        git("pack-objects", "-q", "--window=0", str(repo / "objects/pack/pack"), cwd=scratch,
            input=objs + "\n")
        tags[t] = (f"cairn-{commit}", tree)
        git("update-ref", f"refs/tags/cairn-{commit}", commit, cwd=repo)
    git("symbolic-ref", "HEAD", f"refs/tags/{tags[stats['tags'][-1]][0]}", cwd=repo)
    git("update-server-info", cwd=repo)
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                            "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        t = stats["tags"][clone_index]
        tag, tree = tags[t]
        clone_through_proxy(res, f"http://127.0.0.1:{port}/git/emul.git", tag, tree, t,
                            origin_url, stats, work, source="emulated")
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(d)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    die(f"nothing listens on 127.0.0.1:{port}")


LOAD_AT_START = " ".join(open("/proc/loadavg").read().split()[:3])


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1048576 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    gitv = git("--version")
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB, {platform.system()} {platform.release()}, "
            f"{gitv}, load average {LOAD_AT_START} at the start, "
            f"{' '.join(open('/proc/loadavg').read().split()[:3])} at the end, "
            f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def markdown(res, stats, runs, parts, origin_impl):
    out = ["", "## Source archive benchmark", "",
           f"Machine: {machine()}.", "",
           f"Origin: generated repository (generator v{stats['generator_version']}, seed {stats['seed']}): "
           f"{stats['files']:,} files in {stats['dirs']} directories, {stats['commits']} commits, "
           f"tree {fmt_b(stats['tree_bytes'])}, median file {stats['median_file_bytes']:,} B "
           f"(p90 {stats['p90_file_bytes']:,} B), packed {fmt_b(stats['pack_bytes'])} "
           f"({stats['objects']:,} objects); served over smart HTTP at "
           f"http://{ORIGIN_HOST}:{ORIGIN_PORT}/{ORIGIN_REPO} by {origin_impl}. "
           f"Parts: {', '.join(parts)}; N = {runs}.", "",
           "| section | metric | value | note |", "|---|---|---|---|"]
    for section, metric, value, note, kind in res.rows:
        v = {"s": fmt_s, "B": fmt_b, "x": lambda x: f"{x:.2f}x"}.get(kind, str)(value)
        out.append(f"| {section} | {metric} | {v} | {note} |")
    for title, header, rows in res.tables:
        out += ["", f"{title}:", "", "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate")
    sub.add_parser("serve")
    for name in ("run", "selftest"):
        p = sub.add_parser(name)
        p.add_argument("--runs", type=int, default=int(os.environ.get("ARCHIVE_RUNS", 3)))
        p.add_argument("--clone-index", type=int, default=int(os.environ.get("ARCHIVE_CLONE_INDEX", -1)),
                       help="which of the ten archived trees to clone (default: the last)")
        p.add_argument("--parts", default="baseline,cairn,bytes")
        p.add_argument("--markdown-out")
    args = ap.parse_args()

    stats = generate()
    if args.cmd == "generate":
        print(json.dumps(stats, indent=1))
        return
    srv, origin_impl = start_origin(origin_root())
    origin_url = f"http://{ORIGIN_HOST}:{ORIGIN_PORT}/{ORIGIN_REPO}"
    if args.cmd == "serve":
        log(f"serving {origin_url} ({origin_impl}); Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return
    # The origin answers before anything is timed.
    head = git("ls-remote", origin_url, "refs/heads/main").split()[0]
    if head != stats["head"]:
        die(f"origin serves main={head}, expected {stats['head']}")
    parts = ["selftest"] if args.cmd == "selftest" else [p for p in args.parts.split(",") if p]
    work = BENCH / "work"
    shutil.rmtree(work, ignore_errors=True)  # what a failed run left
    work.mkdir(parents=True)
    res = Results()
    api = None
    if {"cairn", "bytes"} & set(parts):
        env = cairn_env()
        api = Api(env)
        try:
            status, _ = api.call("GET", "/v1/archives/bench-probe-unknown", timeout=10)
        except OSError as e:
            die(f"the API at {api.api} is unreachable ({e}). Start the stack: localstack/up.sh")
        api.login(*add_user(env))
    t0 = time.monotonic()
    for part in parts:
        log(f"== {part}")
        if part == "baseline":
            baseline(res, args.runs, origin_url, work)
        elif part == "cairn":
            cairn(res, args.runs, api, origin_url, stats)
        elif part == "bytes":
            bytes_part(res, api, origin_url, stats, work, args.clone_index)
        elif part == "selftest":
            selftest(res, stats, work, origin_url, args.clone_index)
        else:
            die(f"unknown part {part}")
    log(f"measured in {time.monotonic() - t0:.1f} s")
    md = markdown(res, stats, args.runs, parts, origin_impl)
    print(md)
    if args.markdown_out:
        pathlib.Path(args.markdown_out).write_text(md)


if __name__ == "__main__":
    main()
