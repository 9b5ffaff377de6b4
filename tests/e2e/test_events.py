"""Events (docs/events.md): each committed change is in the event log once, with the
data a receiver acts on; the log is read as JSON pages and followed with curl -N as
Server-Sent Events, resuming after Last-Event-ID without losing or repeating events."""

import glob
import hashlib
import json
import subprocess
import time

from conftest import curl, sha256, upload
from debs import make_deb, run_id

REPO = "release/2.11/ubuntu/jammy"
SUBJECT = f"repository:{REPO}"


def page(stack, query: str, user=None) -> dict:
    args = ["-u", f"{user[0]}:{user[1]}"] if user else []
    status, body = curl(*args, f"{stack.api}/v1/events?{query}")
    assert status == 200, body
    return json.loads(body)


def cursor_now(stack, subject=SUBJECT) -> str:
    """The cursor after the last event of `subject` so far."""
    after = "0"
    while True:
        got = page(stack, f"subject={subject}&after={after}&limit=1000")
        if got["next"] == after:
            return after
        after = got["next"]


def wait_events(stack, after: str, until, timeout=90) -> list:
    """Events of REPO after `after` until `until(events)` holds."""
    deadline = time.time() + timeout
    events = []
    while time.time() < deadline:
        got = page(stack, f"subject={SUBJECT}&after={after}&limit=1000")
        events += got["events"]
        after = got["next"]
        if until(events):
            return events
        time.sleep(0.3)
    raise AssertionError(f"events not seen within {timeout}s: {events}")


def published_with(name):
    return lambda events: any(e["type"] == "repository.published" and name in e["data"]["added"]
                              for e in events)


def test_an_upload_is_stored_then_published_with_the_release_apt_reads(stack, user, tmp_path,
                                                                       apt_for):
    start = cursor_now(stack)
    name = f"cairn-evt-{run_id()}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=user)
    assert status == 201, body

    events = wait_events(stack, start, published_with(deb.name))
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "ordered, no repeats"
    stored = [e for e in events if e["type"] == "package.stored"
              and e["data"]["filename"] == deb.name]
    assert len(stored) == 1, events
    assert stored[0]["data"]["sha256"] == sha256(deb)
    assert stored[0]["data"]["repository"] == REPO and stored[0]["subject"] == SUBJECT
    assert stored[0]["id"].startswith("evt_") and stored[0]["timestamp"].endswith("Z")
    published = [e for e in events if e["type"] == "repository.published"
                 and deb.name in e["data"]["added"]]
    assert len(published) == 1, "exactly one publication announces the package"
    assert stored[0]["seq"] < published[0]["seq"]
    data = published[0]["data"]
    assert data["format"] == "deb" and data["publication"] >= 1

    # The Release the event names is the one in the bucket and the one apt verifies.
    (release_key, digest), = [(m["key"], m["sha256"]) for m in data["metadata"]]
    assert release_key == "release/2.11/ubuntu/dists/jammy/Release"
    apt = apt_for(REPO)
    apt.update()
    lists = glob.glob(str(apt.root / "state/lists/*_dists_jammy_InRelease"))
    assert lists, "apt kept no InRelease"
    inrelease = open(lists[0], "rb").read()
    signed = inrelease.split(b"\n\n", 1)[1].split(b"\n-----BEGIN PGP SIGNATURE-----")[0] + b"\n"
    later = page(stack, f"subject={SUBJECT}&after={published[0]['seq']}&types=repository.published")
    if not later["events"]:  # no newer publication replaced it before apt read it
        assert hashlib.sha256(signed).hexdigest() == digest
    status, release = stack.repo_file(REPO, "dists/jammy/Release")
    assert status == 200
    if not later["events"]:
        assert hashlib.sha256(release).hexdigest() == digest


def sse(stack, query: str, last_event_id=None):
    """Starts `curl -N` on the event stream; returns the process."""
    args = ["curl", "-sS", "-N", "-H", "Accept: text/event-stream"]
    if last_event_id:
        args += ["-H", f"Last-Event-ID: {last_event_id}"]
    return subprocess.Popen([*args, f"{stack.api}/v1/events?{query}"], stdout=subprocess.PIPE)


def parse_sse(raw: bytes) -> list:
    """(id, event) pairs of an event-stream body; comment-only blocks give (id, None)."""
    out = []
    for block in raw.decode().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
        if "id" in fields:
            out.append((fields["id"], json.loads(fields["data"]) if "data" in fields else None))
    return out


def test_curl_follows_the_stream_and_resumes_after_last_event_id(stack, user, tmp_path):
    start = cursor_now(stack)
    follower = sse(stack, f"subject={SUBJECT}&after={start}")
    time.sleep(1)  # the request is waiting in the Lambda
    name = f"cairn-sse-{run_id()}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=user)
    committed = time.time()
    assert status == 201, body
    out, _ = follower.communicate(timeout=60)
    print(f"commit -> curl -N got the answer: {time.time() - committed:.2f} s")
    got = [(i, e) for i, e in parse_sse(out) if e]
    assert any(e["type"] == "package.stored" and e["data"]["filename"] == deb.name
               for _, e in got), out
    assert all(int(i) == e["seq"] for i, e in got), "id: is the event's cursor"

    # Reconnect as EventSource does: Last-Event-ID wins over the URL's cursor, and the
    # stream goes on exactly after it until the publication arrives.
    last = parse_sse(out)[-1][0]
    seen = [int(i) for i, _ in got]
    deadline = time.time() + 90
    while time.time() < deadline:
        follower = sse(stack, f"subject={SUBJECT}&after={start}", last_event_id=last)
        out, _ = follower.communicate(timeout=60)
        blocks = parse_sse(out)
        assert blocks, out
        for i, e in blocks:
            if e:
                assert int(i) > int(last), f"repeated event {i} after {last}"
                seen.append(int(i))
        last = blocks[-1][0]
        if any(e and e["type"] == "repository.published" and deb.name in e["data"]["added"]
               for _, e in blocks):
            break
    else:
        raise AssertionError("the publication never reached the stream")
    assert seen == sorted(set(seen)), f"lost order or repeated: {seen}"
    # Nothing the JSON log holds between the two points was skipped by the stream.
    logged = [e["seq"] for e in page(stack, f"subject={SUBJECT}&after={start}&limit=1000")["events"]
              if e["seq"] <= int(last)]
    assert logged == seen, (logged, seen)


def test_event_reads_that_are_refused(stack, user):
    for query, status, words in [
        ("subject=archive:demo", 401, b"credentials"),
        ("subject=operation:x", 401, b"credentials"),
        ("types=nonsense", 400, b"unknown event type"),
        ("after=-1", 400, b"cursor"),
        ("subject=user:alice", 400, b"subject kind"),
    ]:
        got, body = curl(f"{stack.api}/v1/events?{query}")
        assert got == status and words in body, (query, got, body)
    got, body = curl("-u", f"{user[0]}:wrong", f"{stack.api}/v1/events")
    assert got == 401, body
    # With credentials an archive's events are readable (none yet is fine).
    got, body = curl("-u", f"{user[0]}:{user[1]}", f"{stack.api}/v1/events?subject=archive:demo")
    assert got == 200, body


def test_an_archive_and_its_operation_are_events_for_their_readers(stack, user, rws_user,
                                                                   git_origin):
    from conftest import archive_done

    name = f"evt-{run_id()}"
    _, url = git_origin.make_origin(name, {"README": b"events\n"})
    # Where the log is now: a page from the log's start may not reach this test's
    # events on a stack that has run builds (every log chunk is an event).
    start = page(stack, "last=1", user)["next"]
    status, body = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200, body

    def created():
        return [e for e in page(stack, f"subject=archive:{name}&after=0", user)["events"]
                if e["type"] == "archive.created"]
    deadline = time.time() + 30
    while not created() and time.time() < deadline:
        time.sleep(0.5)
    (event,) = created()
    assert event["data"]["tag"] == body["tag"] and event["data"]["tree"] == body["tree"]
    assert event["data"]["swhid"] == body["swhid"]
    # Archive events need credentials.
    got, _ = curl(f"{stack.api}/v1/events?subject=archive:{name}")
    assert got == 401

    # The operation's end is its owner's event only.
    mine = [e for e in page(stack, f"types=operation.finished&after={start}&limit=1000",
                            user)["events"]
            if e["data"]["name"] == name]
    assert [e["data"]["status"] for e in mine] == ["succeeded"], mine
    assert mine[0]["data"]["owner"] == user[0]
    theirs = page(stack, f"types=operation.finished&after={start}&limit=1000",
                  rws_user)["events"]
    assert not [e for e in theirs if e["data"]["name"] == name]
