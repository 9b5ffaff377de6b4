"""A seeded, time-bounded randomized workload against the deployed stack: many
clients mixing API and presigned uploads (some re-PUT with other bytes), multi-file
forms, source packages sharing an .orig tarball with clashing bytes, anchors,
re-uploads of taken names with other bytes, deletes and re-syncs. Afterwards every
touched repository must settle and pass `cairn fsck` (the invariant checker).

Used by tests/e2e/test_random_concurrency.py (small budget) and by
tests/bench/chaos.sh (longer runs, several seeds)."""

import hashlib
import json
import os
import random
import subprocess
import threading
import time
import urllib.error
import urllib.request

from debs import make_deb

# A dedicated pair of repositories (no other test uploads there) and the anchor
# that names both.
REPOS = ["pre-release/2.11/debian/trixie", "pre-release/3.0/debian/trixie"]
ANCHOR = "pre-release/enabled/debian/trixie"
PRODUCT = "chaos"


def _md5(b):
    return hashlib.md5(b).hexdigest()


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def source_package(prefix, revision, orig_variant):
    """A hand-written 3.0 (quilt) source package: {filename: bytes}. Every revision
    of one prefix lists the same .orig tarball name; `orig_variant` picks its bytes."""
    name = f"{prefix}-src"
    orig_name = f"{name}_1.0.orig.tar.gz"
    orig = f"orig {name} variant {orig_variant}\n".encode() * 8
    debian_name = f"{name}_1.0-{revision}.debian.tar.xz"
    debian = f"debian dir {name} {revision}\n".encode()
    files = [(orig_name, orig), (debian_name, debian)]
    sha_lines = "".join(f" {_sha(b)} {len(b)} {n}\n" for n, b in files)
    md5_lines = "".join(f" {_md5(b)} {len(b)} {n}\n" for n, b in files)
    dsc = (
        "Format: 3.0 (quilt)\n"
        f"Source: {name}\n"
        f"Binary: {name}\n"
        "Architecture: any\n"
        f"Version: 1.0-{revision}\n"
        "Maintainer: Cairn Tests <tests@cairn.invalid>\n"
        "Standards-Version: 4.6.2\n"
        f"Checksums-Sha256:\n{sha_lines}"
        f"Files:\n{md5_lines}"
    ).encode()
    return {f"{name}_1.0-{revision}.dsc": dsc, orig_name: orig, debian_name: debian}


class Chaos:
    def __init__(self, stack, user, seed, seconds, clients=6, log=print):
        self.stack, self.user, self.seed = stack, user, seed
        self.seconds, self.clients, self.log = seconds, clients, log
        self.prefix = f"c{seed % 100000:05d}{os.urandom(2).hex()}"
        self.lock = threading.Lock()
        self.counts = {}
        self.server_errors = []
        # 5xx from the bucket itself (a presigned PUT): not Cairn's answer. LocalStack's
        # S3 answers 500 ("I/O operation on closed file") to a PUT racing a read of the
        # same key; counted and reported, not a failure of the service under test.
        self.storage_errors = []
        self.uploaded = set()

    # HTTP -------------------------------------------------------------------
    def _auth(self):
        import base64

        token = base64.b64encode(f"{self.user[0]}:{self.user[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(self, method, url, body=None, headers=None, auth=True):
        headers = dict(headers or {})
        if auth:
            headers.update(self._auth())
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def multipart(self, files, product=PRODUCT):
        boundary = "chaos" + os.urandom(8).hex()
        out = bytearray()
        fields = [("product", None, product.encode())] + [(n, n, b) for n, b in files]
        for name, filename, data in fields:
            out += f"--{boundary}\r\n".encode()
            disposition = f'form-data; name="{name}"'
            if filename:
                disposition += f'; filename="{filename}"'
            out += f"Content-Disposition: {disposition}\r\n\r\n".encode()
            out += data + b"\r\n"
        out += f"--{boundary}--\r\n".encode()
        return bytes(out), f"multipart/form-data; boundary={boundary}"

    def note(self, action, status, body=b""):
        with self.lock:
            self.counts[(action, status)] = self.counts.get((action, status), 0) + 1
            if status >= 500:
                errors = self.storage_errors if action.startswith("presigned-") \
                    else self.server_errors
                errors.append((action, status, body[:300]))

    # Actions ----------------------------------------------------------------
    def deb(self, rng):
        name = f"{self.prefix}-p{rng.randrange(5)}"
        version = f"1.{rng.randrange(3)}"
        variant = rng.randrange(2)
        body = make_deb(name, version, arch="amd64", payload=f"variant {variant}\n".encode())
        return f"{name}_{version}_amd64.deb", body

    def target(self, rng):
        return rng.choice(REPOS + [ANCHOR])

    def act_upload(self, rng, files_per_form=1):
        files = dict(self.deb(rng) for _ in range(files_per_form))
        body, ctype = self.multipart(list(files.items()))
        status, out = self.request("PUT", f"{self.stack.api}/{self.target(rng)}", body,
                                   {"Content-Type": ctype})
        self.note("upload" if files_per_form == 1 else "multi", status, out)
        with self.lock:
            self.uploaded.update(files)

    def act_source(self, rng):
        files = source_package(self.prefix, rng.randrange(1, 5), rng.randrange(2))
        body, ctype = self.multipart(list(files.items()))
        status, out = self.request("PUT", f"{self.stack.api}/{self.target(rng)}", body,
                                   {"Content-Type": ctype})
        self.note("source", status, out)
        with self.lock:
            self.uploaded.update(n for n in files if n.endswith(".dsc"))

    def act_presigned(self, rng):
        filename, data = self.deb(rng)
        request = json.dumps({"repository": self.target(rng), "filename": filename,
                              "product": PRODUCT}).encode()
        status, out = self.request("POST", f"{self.stack.api}/v1/uploads", request,
                                   {"Content-Type": "application/json"})
        self.note("presign", status, out)
        if status != 201:
            return
        url = json.loads(out)["upload_url"]
        status, _ = self.request("PUT", url, data, auth=False)
        self.note("presigned-put", status)
        if rng.random() < 0.5:
            # A second PUT to the same URL with other bytes.
            time.sleep(rng.uniform(0.05, 0.25))
            other = make_deb(filename.split("_")[0], filename.split("_")[1], arch="amd64",
                             payload=os.urandom(16))
            status, _ = self.request("PUT", url, other, auth=False)
            self.note("presigned-reput", status)
        with self.lock:
            self.uploaded.add(filename)

    def act_delete(self, rng):
        with self.lock:
            if not self.uploaded:
                return
            filename = rng.choice(sorted(self.uploaded))
        status, out = self.request("DELETE", f"{self.stack.api}/{self.target(rng)}/{filename}")
        self.note("delete", status, out)

    def act_resync(self, rng):
        status, out = self.request("POST", f"{self.stack.api}/{self.target(rng)}")
        self.note("resync", status, out)

    def client(self, index, deadline):
        rng = random.Random(self.seed * 1000 + index)
        actions = [
            (self.act_upload, 30), (lambda r: self.act_upload(r, 3), 10),
            (self.act_source, 15), (self.act_presigned, 15),
            (self.act_delete, 20), (self.act_resync, 5),
        ]
        population = [a for a, _ in actions]
        weights = [w for _, w in actions]
        while time.time() < deadline:
            rng.choices(population, weights)[0](rng)

    # Run and check ----------------------------------------------------------
    def run(self):
        self.log(f"chaos: seed {self.seed}, {self.clients} clients, {self.seconds}s, "
                 f"names {self.prefix}-*")
        deadline = time.time() + self.seconds
        threads = [threading.Thread(target=self.client, args=(i, deadline), daemon=True)
                   for i in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summary = ", ".join(f"{a} {s}: {n}" for (a, s), n in sorted(self.counts.items()))
        self.log(f"chaos: requests: {summary}")
        return self.counts

    def wait_settled(self, timeout=180):
        """Waits until each repository's published sequence caught up with its
        changes (and presigned uploads have been ingested)."""
        deadline = time.time() + timeout
        stable = 0
        while time.time() < deadline:
            settled = True
            for repo in REPOS:
                status, body = self.request("GET", f"{self.stack.api}/{repo}", auth=False)
                sync = json.loads(body)["sync"] if status == 200 else {}
                if sync.get("published_seq", -1) < sync.get("change_seq", 0) or \
                        not sync.get("published_at"):
                    settled = False
            stable = stable + 1 if settled else 0
            # Settled twice in a row, some seconds apart: late ingests had their chance.
            if stable >= 3:
                return
            time.sleep(2)
        raise AssertionError(f"repositories did not settle within {timeout}s")

    def fsck(self, cli, supported_repos_file, keyring):
        return subprocess.run(
            [cli, "fsck", *REPOS, "--table", self.stack.table,
             "--bucket", self.stack.repo_bucket, "--keyring", str(keyring),
             "--supported-repos", f"@{supported_repos_file}", "--grace-seconds", "0"],
            capture_output=True, text=True,
            env=dict(os.environ, AWS_ENDPOINT_URL="http://localhost:4566",
                     AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                     AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true"),
        )
