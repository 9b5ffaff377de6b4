"""Regression tests for an adversarial probe's findings: what a client downloads must be
what the signed metadata says, one package's upload or deletion must never touch another
package's files, races must not leave stored-but-unpublished or mis-described files,
over-long inputs are 4xx, tickets and operations belong to their account, `cairn verify`
does not pass an unpublished repository, and a package's file name matches its contents.

Each test checks the end state a client sees (signed index vs the bytes served), not only
status codes. Every test uses its own repositories (nobody else uploads there) and
unique package names, so the file can run again against a stack holding earlier runs."""

import gzip
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (AWS_ENV, ROOT, api_call, archive, cairn_cli, cancel, curl, operation,
                      parse_stanza, upload)
from debs import _tar as debs_tar, control_text, make_deb, run_id
from rpms import build_rpm

# One repository per test, none used elsewhere in the suite or the benchmarks.
REPO_ARCH_SOURCE = "live/2.11/debian/bullseye"    # 1a
REPO_DSC_STEAL = "live/2.11/debian/bookworm"      # 1b
REPO_ORIG_RACE = "live/2.11/debian/trixie"        # 2
REPO_PRESIGN_RACE = "live/2.11/ubuntu/focal"      # 3
REPO_MULTI_RACE = "live/2.11/ubuntu/jammy"        # 4
ANCHOR_REPO = "live/enabled/el/8"                 # 5: -> live/2.11/el/8, live/3.0/el/8
REPO_LONG = "live/2.11/ubuntu/noble"              # 5
REPO_README = "live/3.0/ubuntu/focal"             # 5
REPO_NAMES_DEB = "live/3.0/ubuntu/noble"          # 6
REPO_NAMES_RPM = "live/2.11/el/9"                 # 6
MINE = {REPO_ARCH_SOURCE, REPO_DSC_STEAL, REPO_ORIG_RACE, REPO_PRESIGN_RACE, REPO_MULTI_RACE,
        "live/2.11/el/8", "live/3.0/el/8", REPO_LONG, REPO_README, REPO_NAMES_DEB,
        REPO_NAMES_RPM}

SETTLE_TIMEOUT = 90


# --- helpers: the signed view of a repository ---------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def signed_release(stack, repo) -> str:
    """The Release text InRelease signs, verified with the deployed key; None if absent."""
    suite = repo.split("/")[3]
    status, inrelease = stack.repo_file(repo, f"dists/{suite}/InRelease")
    if status != 200:
        return None
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "InRelease"
        path.write_bytes(inrelease)
        proc = subprocess.run(["gpgv", "--keyring", str(stack.public_key), "--output", "-",
                               str(path)], capture_output=True)
    assert proc.returncode == 0, f"{repo}: InRelease does not verify: {proc.stderr.decode()}"
    return proc.stdout.decode()


def signed_index(stack, repo, rel) -> bytes:
    """dists/<suite>/<rel> exactly as the signed Release names it (its gzip form fetched
    by hash, so it is the index of that Release even while a newer one is being
    written; the plain text has no by-hash copy); None if the Release does not name
    `rel`."""
    release = signed_release(stack, repo)
    if release is None or "SHA256:\n" not in release:
        return None
    suite = repo.split("/")[3]
    listed = {}
    for line in release.split("SHA256:\n", 1)[1].splitlines():
        if not line.startswith(" "):
            break
        digest, size, name = line.split()
        listed[name] = (digest, int(size))
    if rel not in listed or f"{rel}.gz" not in listed:
        return None
    digest, size = listed[f"{rel}.gz"]
    folder = rel.rsplit("/", 1)[0]
    status, packed = stack.repo_file(repo, f"dists/{suite}/{folder}/by-hash/SHA256/{digest}")
    assert status == 200, f"{repo}: by-hash copy of {rel}.gz missing ({status})"
    assert sha(packed) == digest and len(packed) == size, f"{repo}: {rel}.gz by-hash mismatch"
    body = gzip.decompress(packed)
    assert (sha(body), len(body)) == listed[rel], f"{repo}: {rel}.gz does not hold {rel}"
    return body
    suite = repo.split("/")[3]
    for line in release.split("SHA256:\n", 1)[1].splitlines():
        if not line.startswith(" "):
            break
        digest, size, name = line.split()
        if name != rel:
            continue
        folder = rel.rsplit("/", 1)[0]
        status, body = stack.repo_file(repo, f"dists/{suite}/{folder}/by-hash/SHA256/{digest}")
        assert status == 200, f"{repo}: by-hash copy of {rel} missing ({status})"
        assert sha(body) == digest and len(body) == int(size), f"{repo}: {rel} by-hash mismatch"
        return body
    return None


def stanzas(text: bytes) -> list:
    return [s for s in (parse_stanza(p) for p in text.decode().split("\n\n")) if s]


def signed_packages(stack, repo) -> dict:
    """{file name: stanza} of the signed binary-amd64 Packages index ({} if none)."""
    body = signed_index(stack, repo, "main/binary-amd64/Packages")
    if body is None:
        return {}
    return {s["Filename"].rsplit("/", 1)[-1]: s for s in stanzas(body) if "Filename" in s}


def signed_sources(stack, repo) -> list:
    """Stanzas of the signed Sources index ([] if none)."""
    body = signed_index(stack, repo, "main/source/Sources")
    return [] if body is None else stanzas(body)


def checksums(stanza: dict, field="Checksums-Sha256") -> dict:
    """{file name: sha256} of a Sources stanza's checksum list."""
    out = {}
    for line in stanza.get(field, "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[2]] = parts[0]
    return out


def wait_until(check, timeout, what):
    """Polls `check()` (returning a true value when done) every 0.5 s."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s")


def wait_signed_packages(stack, repo, present=(), absent=(), timeout=SETTLE_TIMEOUT) -> dict:
    def check():
        index = signed_packages(stack, repo)
        if set(present) <= set(index) and not set(absent) & set(index):
            return index or {"": None}
        return None
    index = wait_until(check, timeout,
                       f"{repo}: signed Packages with {sorted(present)} and without "
                       f"{sorted(absent)}")
    index.pop("", None)
    return index


def wait_settled(stack, repo, timeout=SETTLE_TIMEOUT) -> dict:
    """Waits until every noted change of `repo` is published (published_seq ==
    change_seq); returns the listing."""
    def check():
        listing = stack.listing(repo)
        sync = listing["sync"]
        return listing if sync["published_seq"] == sync["change_seq"] else None
    return wait_until(check, timeout, f"{repo}: sync settled")


def record(stack, repo, filename):
    """GET /{repo}/{file}: (status, json)."""
    status, body = curl(f"{stack.api}/{repo}/{filename}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body.decode(errors="replace")}


def delete(stack, user, repo, filename):
    status, body = curl("-X", "DELETE", "-u", f"{user[0]}:{user[1]}",
                        f"{stack.api}/{repo}/{filename}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body.decode(errors="replace")}


def wait_record_gone(stack, repo, filename, timeout=SETTLE_TIMEOUT):
    """A deleted package's record goes after its files: wait for that."""
    wait_until(lambda: record(stack, repo, filename)[0] == 404, timeout,
               f"{repo}/{filename} record removed after DELETE")


def pool_state(stack, repo, filename) -> str:
    """What a client gets for a package the signed Packages lists: '' if the pool bytes
    match the signed size and SHA-256, else a description of the difference."""
    index = signed_packages(stack, repo)
    if filename not in index:
        return f"{filename} not in the signed Packages"
    stanza = index[filename]
    status, data = stack.repo_file(repo, stanza["Filename"])
    if status != 200:
        return f"{stanza['Filename']} listed in the signed Packages but GET gives {status}"
    if sha(data) != stanza["SHA256"] or len(data) != int(stanza["Size"]):
        return (f"{stanza['Filename']}: pool has {len(data)} bytes sha256 {sha(data)[:16]}, "
                f"signed Packages says {stanza['Size']} bytes sha256 {stanza['SHA256'][:16]}")
    return ""


def listed_names(stack, repo) -> dict:
    """{file name: sha256} of the ready packages GET /{repo} lists."""
    return {p["filename"]: p["sha256"] for p in stack.listing(repo)["packages"]}


def seed_victim(stack, user, tmp_path, repo, product, rid):
    """A published .deb in pool dir `product`: (file name, its bytes)."""
    name = f"cairn-victim-{rid}"
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(make_deb(name, "1.0", payload=f"victim {rid}\n".encode()))
    status, body = upload(stack, repo, [(path.name, path)], user=user, product=product)
    assert status == 201, body
    wait_signed_packages(stack, repo, present=[path.name])
    assert pool_state(stack, repo, path.name) == ""
    return path.name, path.read_bytes()


def victim_damage(stack, repo, victim, victim_bytes) -> list:
    """Everything wrong with the victim package as a client sees it."""
    problems = []
    state = pool_state(stack, repo, victim)
    if state:
        problems.append(state)
    else:
        stanza = signed_packages(stack, repo)[victim]
        if stanza["SHA256"] != sha(victim_bytes):
            problems.append(f"{victim}: signed Packages has another SHA-256")
    if listed_names(stack, repo).get(victim) != sha(victim_bytes):
        problems.append(f"{victim} no longer listed by GET /{repo}")
    return problems


def delete_then_victim_damage(stack, user, repo, filename, victim, victim_bytes) -> list:
    """Deletes an accepted attacker package, waits for the sync that removes it, and
    returns what that did to the victim."""
    status, body = delete(stack, user, repo, filename)
    assert status == 202, body
    wait_record_gone(stack, repo, filename)
    wait_settled(stack, repo)
    return victim_damage(stack, repo, victim, victim_bytes)


# --- 1a ------------------------------------------------------------------------------------


def test_binary_deb_with_architecture_source_is_refused(stack, user, tmp_path):
    """Finding 1a: a binary .deb whose control says `Architecture: source` (with a `Files:`
    field naming another package's .deb in the same pool directory) is refused with 400
    and nothing is stored; deleting it could otherwise delete the other package."""
    rid = run_id()
    product = f"cairn-int1a-{rid}"
    repo = REPO_ARCH_SOURCE
    victim, victim_bytes = seed_victim(stack, user, tmp_path, repo, product, rid)

    evil_name = f"cairn-archsrc-{rid}"
    evil = tmp_path / f"{evil_name}_1.0_source.deb"
    files = f"Files:\n {md5(victim_bytes)} {len(victim_bytes)} {victim}\n"
    evil.write_bytes(make_deb(evil_name, "1.0", control=control_text(
        evil_name, "1.0", arch="source", extra=files)))
    before = listed_names(stack, repo)
    status, body = upload(stack, repo, [(evil.name, evil)], user=user, product=product)

    problems = []
    if status in (200, 201):
        # The damage path: delete the accepted package and see what else goes with it.
        problems += [f"after DELETE of {evil.name}: {p}" for p in
                     delete_then_victim_damage(stack, user, repo, evil.name, victim,
                                               victim_bytes)]
    else:
        # Refused: nothing of it stored.
        if record(stack, repo, evil.name)[0] != 404:
            problems.append(f"{evil.name} has a record after being refused")
        if listed_names(stack, repo) != before:
            problems.append("the listing changed after a refused upload")
        pool = f"pool/{repo.split('/')[3]}/main/c/{product}/{evil.name}"
        if stack.repo_file(repo, pool)[0] == 200:
            problems.append(f"{pool} exists after a refused upload")
        problems += victim_damage(stack, repo, victim, victim_bytes)
    if status != 400:
        problems.insert(0, f"upload of a binary .deb with Architecture: source got {status} "
                           f"{body}, expected 400")
    assert not problems, "; ".join(problems)


# --- 1b ------------------------------------------------------------------------------------


def test_dsc_listing_another_packages_deb_cannot_delete_it(stack, user, tmp_path):
    """Finding 1b: a .dsc listing another package's existing .deb (same product, so same
    pool directory) as a file already in the pool is either refused (400), or deleting
    the .dsc leaves that .deb downloadable with identical bytes and listed in Packages."""
    rid = run_id()
    product = f"cairn-int1b-{rid}"
    repo = REPO_DSC_STEAL
    victim, victim_bytes = seed_victim(stack, user, tmp_path, repo, product, rid)

    src = f"cairn-thief-{rid}"
    dsc = tmp_path / f"{src}_1.0.dsc"
    dsc.write_text(
        f"Format: 3.0 (native)\nSource: {src}\nBinary: {src}\nArchitecture: all\n"
        f"Version: 1.0\nMaintainer: Cairn Tests <tests@example.org>\n"
        f"Standards-Version: 4.6.2\n"
        f"Checksums-Sha256:\n {sha(victim_bytes)} {len(victim_bytes)} {victim}\n"
        f"Files:\n {md5(victim_bytes)} {len(victim_bytes)} {victim}\n")
    before = listed_names(stack, repo)
    status, body = upload(stack, repo, [(dsc.name, dsc)], user=user, product=product)

    problems = []
    if status in (200, 201):
        # Accepted: published in Sources, then deleted; the victim must survive.
        wait_until(lambda: any(s.get("Package") == src for s in signed_sources(stack, repo)),
                   SETTLE_TIMEOUT, f"{src} in the signed Sources")
        problems += [f"accepted {dsc.name} listing {victim}, then deleted it: {p}" for p in
                     delete_then_victim_damage(stack, user, repo, dsc.name, victim,
                                               victim_bytes)]
    elif status == 400:
        if listed_names(stack, repo) != before:
            problems.append("the listing changed after a refused upload")
        problems += victim_damage(stack, repo, victim, victim_bytes)
    else:
        problems.append(f"upload of the .dsc got {status} {body}, expected 400 or 201")
    assert not problems, "; ".join(problems)


# --- 2 -------------------------------------------------------------------------------------


def tarball(files: dict) -> bytes:
    """A .tar.gz of `files`, built as the .deb members are."""
    return debs_tar(files, compress=True)


def test_concurrent_dscs_sharing_an_orig_name_publish_one_content(stack, user, tmp_path):
    """Finding 2: eight .dsc uploads (different versions) listing the same .orig tarball
    name with different bytes, sent at once: one content wins, every other upload gets
    409, and the pool tarball's bytes match every SHA-256 the signed Sources lists."""
    rid = run_id()
    src = f"cairn-orig-{rid}"
    repo = REPO_ORIG_RACE
    orig_name = f"{src}_1.0.orig.tar.gz"
    forms, origs = [], []
    for i in range(1, 9):
        d = tmp_path / f"v{i}"
        d.mkdir()
        orig = d / orig_name
        orig.write_bytes(tarball({f"{src}-1.0/README": f"variant {i} {rid}\n".encode()}))
        deb_tar = d / f"{src}_1.0-{i}.debian.tar.gz"
        deb_tar.write_bytes(tarball({"debian/changelog": f"{src} (1.0-{i})\n".encode()}))
        listed = [orig, deb_tar]
        dsc = d / f"{src}_1.0-{i}.dsc"
        dsc.write_text(
            f"Format: 3.0 (quilt)\nSource: {src}\nBinary: {src}\nArchitecture: all\n"
            f"Version: 1.0-{i}\nMaintainer: Cairn Tests <tests@example.org>\n"
            f"Standards-Version: 4.6.2\nChecksums-Sha256:\n"
            + "".join(f" {sha(p.read_bytes())} {p.stat().st_size} {p.name}\n" for p in listed)
            + "Files:\n"
            + "".join(f" {md5(p.read_bytes())} {p.stat().st_size} {p.name}\n" for p in listed))
        forms.append([(p.name, p) for p in [dsc, *listed]])
        origs.append(sha(orig.read_bytes()))

    barrier = threading.Barrier(len(forms))

    def send(form):
        barrier.wait()
        return upload(stack, repo, form, user=user)

    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        results = list(pool.map(send, forms))
    statuses = [s for s, _ in results]
    accepted = [i for i, s in enumerate(statuses) if s in (200, 201)]

    problems = []
    if sorted(statuses) != [201] + [409] * 7:
        problems.append(f"statuses {statuses}, expected one 201 and seven 409")
    # End state: every published version is in the signed Sources, and every SHA-256 it
    # lists for the .orig name is the pool tarball's.
    versions = {f"1.0-{i + 1}" for i in accepted}

    def published():
        mine = [s for s in signed_sources(stack, repo) if s.get("Package") == src]
        return mine if versions <= {s.get("Version") for s in mine} else None
    mine = wait_until(published, SETTLE_TIMEOUT, f"{sorted(versions)} in the signed Sources") \
        if versions else []
    listed_shas = {checksums(s).get(orig_name) for s in mine} - {None}
    if mine:
        status, pool_bytes = stack.repo_file(repo, f"{mine[0]['Directory']}/{orig_name}")
        if status != 200:
            problems.append(f"{orig_name} listed in Sources but GET gives {status}")
        elif listed_shas != {sha(pool_bytes)}:
            problems.append(f"signed Sources lists {len(listed_shas)} SHA-256s for {orig_name} "
                            f"over {len(mine)} stanzas; the pool file matches "
                            f"{len(listed_shas & {sha(pool_bytes)})} of them")
        elif len(accepted) == 1 and sha(pool_bytes) != origs[accepted[0]]:
            problems.append("the pool tarball is not the accepted upload's")
    assert not problems, "; ".join(problems)


# --- 3 -------------------------------------------------------------------------------------


def presign(stack, user, repo, filename, product=None, json_type=True):
    request = {"repository": repo, "filename": filename}
    if product:
        request["product"] = product
    args = ["-u", f"{user[0]}:{user[1]}"]
    if json_type:
        args += ["-H", "content-type: application/json"]
    status, body = curl(*args, "-d", json.dumps(request), f"{stack.api}/v1/uploads")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body.decode(errors="replace")}


def ticket_state(stack, user, ticket):
    status, body = curl("-u", f"{user[0]}:{user[1]}", f"{stack.api}{ticket['status_url']}")
    return status, json.loads(body)


def wait_ticket(stack, user, ticket, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, state = ticket_state(stack, user, ticket)
        if state.get("status") not in ("waiting", "ingesting"):
            return status, state
        time.sleep(0.5)
    raise AssertionError(f"ticket {ticket['id']} still waiting after {timeout}s")


def test_presigned_second_put_cannot_change_the_published_bytes(stack, user, tmp_path):
    """Finding 3: a second PUT of other valid bytes to a presigned URL 0-0.2 s after the
    first: the pool file must be the bytes the signed Packages and the package record
    describe, and the ticket ends `stored` (one object per ticket: the later PUT is
    ignored or refused). Ten rounds, so that some hit the ingest of the first object."""
    rid = run_id()
    repo = REPO_PRESIGN_RACE
    rounds = []
    # Seconds between the first PUT's answer and the second PUT: the ingest of a few MiB
    # takes about 0.1-0.2 s here, so some second PUTs land while the first is ingested.
    for i, delay in enumerate([0.0, 0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2]):
        name = f"cairn-race-{rid}-{i}"
        first = tmp_path / f"first-{i}" / f"{name}_1.0_all.deb"
        second = tmp_path / f"second-{i}" / first.name
        for p in (first, second):
            p.parent.mkdir()
            # Large enough that the worker is still reading the first object when the
            # second PUT lands.
            p.write_bytes(make_deb(name, "1.0", payload=os.urandom(4 << 20)))
        status, ticket = presign(stack, user, repo, first.name, product=name)
        assert status == 201, ticket
        status, body = curl("-X", "PUT", "-T", str(first), ticket["upload_url"])
        assert status == 200, body
        time.sleep(delay)
        curl("-X", "PUT", "-T", str(second), ticket["upload_url"])
        # Its answer is not checked: refusing it (e.g. 412) is as good as ignoring it.
        rounds.append((first.name, ticket, {sha(first.read_bytes()), sha(second.read_bytes())}))

    for _, ticket, _ in rounds:
        wait_ticket(stack, user, ticket)
    time.sleep(3)  # the second object's event, if any, is handled by now
    problems = []
    stored = []
    for filename, ticket, shas in rounds:
        _, state = ticket_state(stack, user, ticket)
        if state["status"] != "stored":
            problems.append(f"{filename}: ticket {state['status']} ({state.get('message')})")
        status, rec = record(stack, repo, filename)
        if status != 200:
            problems.append(f"{filename}: no package record ({status})")
            continue
        if rec["sha256"] not in shas:
            problems.append(f"{filename}: record sha256 is neither upload's")
        stored.append((filename, rec))
    if stored:
        try:
            wait_signed_packages(stack, repo, present=[f for f, _ in stored], timeout=60)
        except AssertionError as e:
            problems.append(str(e))
        index = signed_packages(stack, repo)
        for filename, rec in stored:
            state = pool_state(stack, repo, filename)
            if state:
                problems.append(state)
            elif (index[filename]["SHA256"], int(index[filename]["Size"])) != \
                    (rec["sha256"], rec["size"]):
                problems.append(f"{filename}: record and signed Packages disagree")
    assert not problems, "; ".join(problems)


# --- 4 -------------------------------------------------------------------------------------


def test_partly_stored_multi_file_upload_is_published_and_reported(stack, user, tmp_path):
    """Finding 4: a form with files a, b racing another upload that takes name b with
    other bytes: whatever GET /{repo} lists as ready is in the signed index once the sync
    settles, and a 409 body names the files it stored (`stored`, a list)."""
    rid = run_id()
    repo = REPO_MULTI_RACE
    # Seconds the single upload starts after the pair: early ones take b before the pair
    # checks it (a clean 409), late ones after the pair stored it (409 for the single);
    # in between, b is taken while the pair is storing a.
    delays = [0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.1, 1.3]
    jobs = []
    for i, delay in enumerate(delays):
        a_name, b_name = f"cairn-pair-a-{rid}-{i}", f"cairn-pair-b-{rid}-{i}"
        d = tmp_path / f"r{i}"
        (d / "x").mkdir(parents=True)
        (d / "y").mkdir()
        a = d / "x" / f"{a_name}_1.0_all.deb"
        a.write_bytes(make_deb(a_name, "1.0", payload=os.urandom(2 << 20)))
        b = d / "x" / f"{b_name}_1.0_all.deb"
        b.write_bytes(make_deb(b_name, "1.0", payload=b"from the pair\n"))
        b2 = d / "y" / b.name
        b2.write_bytes(make_deb(b_name, "1.0", payload=b"from the single\n"))
        jobs.append((delay, [(a.name, a), (b.name, b)], [(b2.name, b2)]))

    def pair(job):
        return upload(stack, repo, job[1], user=user)

    def single(job):
        time.sleep(job[0])
        return upload(stack, repo, job[2], user=user)

    with ThreadPoolExecutor(max_workers=2 * len(jobs)) as pool:
        pairs = [pool.submit(pair, j) for j in jobs]
        singles = [pool.submit(single, j) for j in jobs]
        results = [(p.result(), s.result()) for p, s in zip(pairs, singles)]

    problems = []
    ours = set()
    for job, ((p_status, p_body), (s_status, s_body)) in zip(jobs, results):
        ours |= {n for n, _ in job[1]}
        for status, body, form in [(p_status, p_body, job[1]), (s_status, s_body, job[2])]:
            if status not in (201, 409):
                problems.append(f"{[n for n, _ in form]}: {status} {body}")
            if status != 409:
                continue
            if not isinstance(body.get("stored"), list):
                problems.append(f"409 for {[n for n, _ in form]} without a `stored` list: "
                                f"{body.get('detail')}")
    listing = wait_settled(stack, repo)
    ready = {p["filename"]: p["sha256"] for p in listing["packages"] if p["filename"] in ours}
    index = signed_packages(stack, repo)
    unpublished = sorted(set(ready) - set(index))
    if unpublished:
        problems.append(f"listed as ready but not in the signed Packages after the sync "
                        f"settled: {unpublished}")
    for name, digest in ready.items():
        if name in index and (index[name]["SHA256"] != digest or pool_state(stack, repo, name)):
            problems.append(f"{name}: listing, signed Packages and pool disagree")
    # A 409 must name what it stored: every file of its form now listed with its bytes.
    for job, ((p_status, p_body), (s_status, s_body)) in zip(jobs, results):
        for status, body, form in [(p_status, p_body, job[1]), (s_status, s_body, job[2])]:
            if status != 409 or not isinstance(body.get("stored"), list):
                continue
            kept = {n for n, path in form
                    if ready.get(n) == sha(pathlib.Path(path).read_bytes())}
            if kept != set(body["stored"]):
                problems.append(f"409 says stored {body['stored']}, listing has {sorted(kept)}")
    for job, ((p_status, _), (s_status, _)) in zip(jobs, results):
        a_name = job[1][0][0]
        print(f"delay {job[0]}: pair {p_status}, single {s_status}, "
              f"a {'listed' if a_name in ready else 'absent'}")
    assert not problems, "; ".join(problems)


# --- 5: anchor delete ----------------------------------------------------------------------


def test_anchor_delete_of_a_file_in_some_series(stack, user, tmp_path):
    """Finding 5 (anchors): DELETE through an anchor of a file in none of its series is 404
    and changes nothing; of a file in some of them it is 202 with one result per series,
    the series lacking it marked `"status": "absent"`, and the file leaves the others."""
    series = ["live/2.11/el/8", "live/3.0/el/8"]
    rpm = build_rpm(tmp_path, f"cairn-anchordel-{run_id()}", noarch=True)["binary"]
    # In none of the series: 404, nothing changes.
    before = {r: listed_names(stack, r) for r in series}
    status, body = delete(stack, user, ANCHOR_REPO, rpm.name)
    problems = []
    if status != 404:
        problems.append(f"DELETE of a file in no series got {status} {body}, expected 404")
    # Only in the first series (the one the anchor names first).
    status, body = upload(stack, series[0], [(rpm.name, rpm)], user=user)
    assert status == 201, body
    stack.wait_yum(series[0], "x86_64", present=[rpm.name])
    before = {r: listed_names(stack, r) for r in series}
    status, body = delete(stack, user, ANCHOR_REPO, rpm.name)
    if status != 202:
        problems.append(f"DELETE of a file in {series[0]} only got {status} {body}, "
                        f"expected 202")
    else:
        results = {r.get("repository"): r for r in body.get("deleted", [])}
        if set(results) != set(series):
            problems.append(f"202 body lists {sorted(results)}, expected {series}")
        elif results[series[1]].get("status") != "absent" or \
                results[series[0]].get("status") == "absent":
            problems.append(f"per-series results {body}: {series[1]} should be absent")
    # End state: out of the first series' signed metadata and bucket, the other untouched.
    try:
        stack.wait_yum(series[0], "x86_64", absent=[rpm.name], timeout=60)
    except AssertionError as e:
        problems.append(str(e))
    if listed_names(stack, series[1]) != before[series[1]]:
        problems.append(f"{series[1]} changed")
    assert not problems, "; ".join(problems)


# --- 5: over-long inputs -------------------------------------------------------------------


LONG_CASES = [
    # id, method, path (after the API base), credentials, accepted statuses
    ("user-3000-repo-api", "POST", f"/{REPO_LONG}", "long-user", (401,)),
    ("user-3000-archive-api", "GET", f"/v1/operations/{uuid.uuid4()}", "long-user", (401,)),
    # 1,100 characters: past DynamoDB's 1,024-byte sort key (PKG#<file>), which is where
    # the 5xx starts (a 1,000-character name still fits and gets 404).
    ("file-1100-get", "GET", f"/{REPO_LONG}/{'a' * 1096}.deb", None, (400, 404)),
    ("file-1100-delete", "DELETE", f"/{REPO_LONG}/{'a' * 1096}.deb", "user", (400, 404)),
    ("ticket-3000", "GET", f"/v1/uploads/{'a' * 3000}", "user", (404,)),
    ("operation-3000", "GET", f"/v1/operations/{'a' * 3000}", "user", (404,)),
    ("cancel-3000", "POST", f"/cancel/{'a' * 3000}", "user", (404,)),
]


@pytest.mark.parametrize("case", LONG_CASES, ids=[c[0] for c in LONG_CASES])
def test_over_long_inputs_are_client_errors(stack, user, case):
    """Finding 5 (over-long inputs): a 3,000-character user name, a 1,100-character file
    name, a 3,000-character ticket or operation id are 4xx (401/400/404), never 5xx, and
    change nothing."""
    _, method, path, creds, expected = case
    creds = {"user": user, "long-user": ("u" * 3000, "pw"), None: None}[creds]
    before = stack.listing(REPO_LONG)["packages"]
    status, body, _ = api_call(stack, method, path, None, creds)
    assert status in expected, f"{method} {path[:60]}...: {status} {body}, expected {expected}"
    assert stack.listing(REPO_LONG)["packages"] == before


# --- 5: ownership of tickets and operations ------------------------------------------------


@pytest.fixture(scope="module")
def other_user(stack):
    """A second upload account, made the way conftest makes `user`."""
    name, password = "e2e-other-" + os.urandom(3).hex(), os.urandom(8).hex()
    cairn_cli("user", "add", name, "--table", stack.table, stdin=password.encode())
    return name, password


def test_tickets_and_operations_belong_to_their_account(stack, user, other_user, git_origin,
                                                         callback_receiver):
    """Finding 5 (ownership): account B gets 404 reading account A's upload ticket or
    operation, and 404 cancelling A's queued operation, which stays queued."""
    problems = []
    # An upload ticket of A.
    status, ticket = presign(stack, user, REPO_README, f"cairn-own-{run_id()}_1.0_all.deb")
    assert status == 201, ticket
    assert ticket_state(stack, user, ticket)[0] == 200
    status, body = ticket_state(stack, other_user, ticket)
    if status != 404:
        problems.append(f"B reading A's ticket got {status} {body}")

    # A running operation of A, and one queued behind it (same name: same FIFO group).
    rx = callback_receiver
    name = f"e2e-own-{uuid.uuid4().hex[:10]}"
    other = f"e2e-own-other-{uuid.uuid4().hex[:10]}"
    _, url = git_origin.make_origin(name, {"README": f"{name}\n"})
    _, other_url = git_origin.make_origin(other, {"README": f"{other}\n"})
    git_origin.set_delay(name, 10)
    try:
        status, body = archive(stack, user, {"name": name, "url": url, "ref": "main",
                                             "callback": {"url": rx.url(rx.new_path())}})
        assert status == 202, body
        running = body["callback"]["id"]
        git_origin.wait_for_request(name, 1, timeout=60)
        status, body = archive(stack, user, {"name": name, "url": other_url, "ref": "main",
                                             "callback": {"url": rx.url(rx.new_path())}})
        assert status == 202, body
        queued = body["callback"]["id"]
        status, op = operation(stack, user, queued)
        assert status == 200 and op["status"] == "queued", op

        for op_id in (running, queued):
            status, body = operation(stack, other_user, op_id)
            if status != 404:
                problems.append(f"B reading A's operation got {status} "
                                f"(status {body.get('status')})")
        status, body = cancel(stack, other_user, queued)
        if status != 404:
            problems.append(f"B cancelling A's queued operation got {status} {body}")
        status, op = operation(stack, user, queued)
        if op.get("status") == "cancelled":
            problems.append("A's queued operation was cancelled by B")
        # Clean up: A cancels its own queued operation.
        cancel(stack, user, queued)
    finally:
        git_origin.set_delay(name, 0)
    assert not problems, "; ".join(problems)


# --- 5: cairn verify on a never-published repository ---------------------------------------


def all_repos() -> dict:
    """Every repository of the deployed SupportedRepos (template default), by format."""
    kinds, series = ["release", "pre-release", "live"], ["2.11", "3.0"]
    dists = {"deb": {"ubuntu": ["focal", "jammy", "noble"],
                     "debian": ["bullseye", "bookworm", "trixie"]},
             "rpm": {"el": ["8", "9"], "fedora": ["40", "41"]},
             "helm": {"helm": ["stable"]}}
    return {fmt: [f"{k}/{s}/{d}/{v}" for k in reversed(kinds) for s in reversed(series)
                  for d, vs in ds.items() for v in vs]
            for fmt, ds in dists.items()}


def never_published(stack, fmt) -> str:
    for repo in all_repos()[fmt]:
        if repo in MINE:
            continue
        listing = stack.listing(repo)
        if listing["packages"] or listing["sync"]["publish_count"]:
            continue
        suite = repo.split("/")[3]
        probes = [stack.repo_file(repo, f"dists/{suite}/InRelease"),
                  stack.dir_file(repo, "index.yaml"),
                  stack.dir_file(repo, "x86_64/repodata/repomd.xml")]
        if all(s != 200 for s, _ in probes):
            return repo
    pytest.skip(f"every {fmt} repository of the stack has been published")


@pytest.mark.parametrize("fmt", ["deb", "rpm", "helm"])
def test_verify_refuses_a_never_published_repository(stack, fmt):
    """Finding 5 (verify): `cairn verify` on a repository that exists in SupportedRepos
    but was never published exits non-zero with a message, not "0 problem(s)"."""
    repo = never_published(stack, fmt)
    env = dict(AWS_ENV, PATH="/usr/bin:/bin")
    proc = subprocess.run(
        [str(ROOT / "target/release/cairn"), "verify", repo, "--bucket",
         stack.repo_base.rsplit("/", 1)[1], "--keyring", str(stack.public_key)],
        env=env, capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0, f"cairn verify {repo} exited 0: {out}"
    assert out and "panicked" not in out, out


# --- 5: the README's presigned example -----------------------------------------------------


def test_readme_presigned_example_works_as_written(stack, user, tmp_path):
    """Finding 5 (README): the README's presigned example (`curl -s -u user:pw -H
    'content-type: application/json' -d '{"repository":...}' .../v1/uploads`) gives 201
    with an upload_url, and the package PUT there is published with its bytes. Without
    the JSON content type the answer says what is missing.

    (LocalStack's API Gateway re-encodes an application/x-www-form-urlencoded body
    before the Lambda sees it, so `curl -d` alone cannot work there; AWS passes it.)"""
    readme = (ROOT / "README.md").read_text()
    assert "-H 'content-type: application/json' -d '{\"repository\"" in readme
    name = f"cairn-readme-{run_id()}"
    path = tmp_path / f"{name}_1.0_all.deb"
    path.write_bytes(make_deb(name, "1.0"))
    status, refused = presign(stack, user, REPO_README, path.name, product=name,
                              json_type=False)
    if status != 201:
        assert status == 400 and "content-type: application/json" in refused["detail"], refused
    status, ticket = presign(stack, user, REPO_README, path.name, product=name)
    assert status == 201 and "upload_url" in ticket, (status, ticket)
    status, body = curl("-X", "PUT", "-T", str(path), ticket["upload_url"])
    assert status == 200, body
    _, state = wait_ticket(stack, user, ticket)
    assert state["status"] == "stored", state
    wait_signed_packages(stack, REPO_README, present=[path.name])
    assert pool_state(stack, REPO_README, path.name) == ""
    assert signed_packages(stack, REPO_README)[path.name]["SHA256"] == sha(path.read_bytes())


# --- 6 -------------------------------------------------------------------------------------


def test_file_name_must_match_the_package(stack, user, tmp_path):
    """Finding 6: a .deb must be named {Package}_{Version without epoch}_{Architecture}.deb
    and an RPM {name}-{version}-{release}.{arch}.rpm (.src.rpm for source RPMs); otherwise
    400 naming the expected name, nothing stored. Conforming names (epoch) are accepted."""
    rid = run_id()
    problems = []

    def refused(repo, path, expected):
        before = listed_names(stack, repo)
        status, body = upload(stack, repo, [(path.name, path)], user=user)
        if status != 400:
            problems.append(f"{path.name}: {status}, expected 400 naming {expected}")
        elif expected not in body.get("detail", ""):
            problems.append(f"{path.name}: 400 without the expected name {expected}: {body}")
        if record(stack, repo, path.name)[0] != 404 or listed_names(stack, repo) != before:
            problems.append(f"{path.name}: stored although misnamed")

    # .deb: X's name, Y's contents.
    x, y = f"cairn-x-{rid}", f"cairn-y-{rid}"
    d = tmp_path / "deb"
    d.mkdir()
    wrong = d / f"{x}_1.0_amd64.deb"
    wrong.write_bytes(make_deb(y, "9.9", arch="amd64"))
    refused(REPO_NAMES_DEB, wrong, f"{y}_9.9_amd64.deb")
    # The epoch is not part of the file name: this one is right and is published.
    e = f"cairn-epoch-{rid}"
    right = d / f"{e}_2.0-1_amd64.deb"
    right.write_bytes(make_deb(e, "1:2.0-1", arch="amd64"))
    status, body = upload(stack, REPO_NAMES_DEB, [(right.name, right)], user=user)
    if status != 201:
        problems.append(f"{right.name} (Version 1:2.0-1) refused: {status} {body}")
    else:
        wait_signed_packages(stack, REPO_NAMES_DEB, present=[right.name])
        if pool_state(stack, REPO_NAMES_DEB, right.name):
            problems.append(pool_state(stack, REPO_NAMES_DEB, right.name))
    # RPMs: a binary and a source package under other versions' names.
    built = build_rpm(tmp_path, f"cairn-rpmname-{rid}", source=True)
    binary, source = built["binary"], built["source"]
    for good, bad_name in [(binary, binary.name.replace("-1.0-1.", "-2.0-1.")),
                           (source, source.name.replace("-1.0-1.src", "-1.0-7.src"))]:
        bad = tmp_path / "rpm" / bad_name
        bad.parent.mkdir(exist_ok=True)
        shutil.copy(good, bad)
        refused(REPO_NAMES_RPM, bad, good.name)
    assert not problems, "; ".join(problems)
