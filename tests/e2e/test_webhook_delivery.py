"""Webhook delivery (docs/events.md, "Delivery") against the deployed stack, with a
receiver on 127.0.0.1:18419 (the local stack's OutboundAllowList) and signatures
checked with the `standardwebhooks` package from PyPI, not with Cairn's code. The local
stack shortens the schedule: retries after 1, 1, 1, 2, 2, 3, 3, 4 s, a webhook failing
for 12 s is disabled, an attempt times out after 3 s."""

import hashlib
import time

import pytest
from conftest import api_call, upload
from debs import make_deb, run_id

REPO = "release/2.11/ubuntu/jammy"


@pytest.fixture
def hooks(stack, user):
    """hooks(url, events, subjects=()) -> (id, secret); deleted after the test."""
    made = []

    def make(url, events, subjects=()):
        status, body, _ = api_call(stack, "POST", "/v1/webhooks",
                                   {"url": url, "events": events, "subjects": list(subjects)}, user)
        assert status == 201, body
        made.append(body["id"])
        return body["id"], body["secret"]

    yield make
    for hook_id in made:
        api_call(stack, "DELETE", f"/v1/webhooks/{hook_id}", user=user)


def verified(secret, hit) -> dict:
    """The payload, after standardwebhooks verified the hit's signature."""
    from standardwebhooks.webhooks import Webhook
    return Webhook(secret).verify(hit.body, {k: v for k, v in hit.headers.items()})


def ping(stack, user, hook_id):
    status, body, _ = api_call(stack, "POST", f"/v1/webhooks/{hook_id}/ping", user=user)
    assert status == 202, body
    return body["event_id"]


def hook_state(stack, user, hook_id) -> dict:
    status, body, _ = api_call(stack, "GET", f"/v1/webhooks/{hook_id}", user=user)
    assert status == 200, body
    return body


def wait_until(check, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached within {timeout}s")


def test_each_publication_is_one_signed_event_with_the_release_apt_reads(
        stack, user, callback_receiver, hooks, tmp_path, apt_for):
    rx = callback_receiver
    path = rx.new_path("wh")
    _, secret = hooks(rx.url(path), ["repository.published"], [f"repository:{REPO}"])
    name = f"cairn-wh-{run_id()}"
    deb = tmp_path / f"{name}_1.0_all.deb"
    deb.write_bytes(make_deb(name, "1.0"))
    status, body = upload(stack, REPO, [(deb.name, deb)], user=user)
    assert status == 201, body

    def announced():
        return [h for h in rx.requests(path) if deb.name in h.json()["data"]["added"]]
    hit = wait_until(announced, what="the publication's webhook")[0]
    payload = verified(secret, hit)
    assert payload["type"] == "repository.published" and payload["id"] == hit.headers["webhook-id"]
    time.sleep(3)  # a duplicate would have arrived by now
    ids = {h.headers["webhook-id"] for h in announced()}
    assert len(ids) == 1, "exactly one event announces the publication"
    publications = {}
    for h in rx.requests(path):
        event = h.json()
        publications.setdefault(event["data"]["publication"], set()).add(event["id"])
    assert all(len(v) == 1 for v in publications.values()), publications

    (release_key, digest), = [(m["key"], m["sha256"]) for m in payload["data"]["metadata"]]
    status, release = stack.repo_file(REPO, "dists/jammy/Release")
    newer = [h for h in rx.requests(path)
             if h.json()["data"]["publication"] > payload["data"]["publication"]]
    if not newer:  # nothing published since: the bucket holds what the event names
        assert hashlib.sha256(release).hexdigest() == digest
        apt = apt_for(REPO)
        apt.update()
        inrelease = next((apt.root / "state/lists").glob("*_dists_jammy_InRelease")).read_bytes()
        signed = inrelease.split(b"\n\n", 1)[1].split(b"\n-----BEGIN PGP SIGNATURE-----")[0]
        assert hashlib.sha256(signed + b"\n").hexdigest() == digest


def test_retries_keep_the_id_and_the_log_redelivery_and_replay_say_what_happened(
        stack, user, callback_receiver, hooks):
    rx = callback_receiver
    path = rx.new_path("wh")
    hook_id, secret = hooks(rx.url(path), ["ping"])
    rx.fail_first(path, 2, 500)
    event_id = ping(stack, user, hook_id)
    hits = rx.wait_for(path, count=3, timeout=60)
    assert [h.answered for h in hits[:3]] == [500, 500, 200]
    assert {h.headers["webhook-id"] for h in hits} == {event_id}
    for h in hits:
        verified(secret, h)
    seq = hits[0].json()["seq"]

    status, log, _ = api_call(stack, "GET", f"/v1/webhooks/{hook_id}/deliveries", user=user)
    assert status == 200, log
    assert [a["http_status"] for a in log["attempts"] if a["seq"] == seq] == [200, 500, 500]
    status, one, _ = api_call(stack, "GET", f"/v1/webhooks/{hook_id}/deliveries/{seq}", user=user)
    assert status == 200 and [a["attempt"] for a in one["attempts"]] == [1, 2, 3], one
    assert one["attempts"][0]["response"] and one["attempts"][0]["duration_ms"] >= 0

    status, body, _ = api_call(stack, "POST",
                               f"/v1/webhooks/{hook_id}/deliveries/{seq}/redeliver", user=user)
    assert status == 202, body
    hits = rx.wait_for(path, count=4, timeout=60)
    assert hits[3].headers["webhook-id"] == event_id and hits[3].answered == 200
    status, body, _ = api_call(stack, "POST", f"/v1/webhooks/{hook_id}/replay",
                               {"since": seq - 1}, user)
    assert status == 202 and body["queued"] == 1, body
    hits = rx.wait_for(path, count=5, timeout=60)
    assert hits[4].headers["webhook-id"] == event_id
    time.sleep(2)
    assert len(rx.requests(path)) == 5, "redeliver and replay each sent exactly one more"


def test_gone_disables_at_once_and_a_dead_endpoint_after_the_failure_period(
        stack, user, callback_receiver, hooks):
    rx = callback_receiver
    gone, dead, watcher = rx.new_path("gone"), rx.new_path("dead"), rx.new_path("watch")
    rx.fail_first(gone, 1000, 410)
    rx.fail_first(dead, 10 ** 6, 500)
    gone_id, _ = hooks(rx.url(gone), ["ping"])
    dead_id, _ = hooks(rx.url(dead), ["ping"])
    _, watch_secret = hooks(rx.url(watcher), ["webhook.disabled"])

    ping(stack, user, gone_id)
    rx.wait_for(gone, count=1, timeout=60)
    state = wait_until(lambda: (s := hook_state(stack, user, gone_id)) and not s["enabled"] and s,
                       what="410 disabling the webhook")
    assert "410" in state["disabled_reason"]
    time.sleep(3)
    assert len(rx.requests(gone)) == 1, "one attempt, no retry after 410"

    ping(stack, user, dead_id)
    state = wait_until(lambda: (s := hook_state(stack, user, dead_id)) and not s["enabled"] and s,
                       timeout=90, what="the dead webhook being disabled")
    assert "every delivery failed" in state["disabled_reason"], state
    assert len(rx.requests(dead)) >= 3, "retried before giving up"

    def told(hook_id):
        return [h for h in rx.requests(watcher) if h.json()["data"]["webhook"] == hook_id]
    for hook_id in (gone_id, dead_id):
        hit = wait_until(lambda: told(hook_id), what=f"webhook.disabled for {hook_id}")[0]
        payload = verified(watch_secret, hit)
        assert payload["type"] == "webhook.disabled" and payload["data"]["owner"] == user[0]


def test_a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends(
        stack, user, callback_receiver, hooks):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
    rx = callback_receiver
    path = rx.new_path("rot")
    hook_id, old = hooks(rx.url(path), ["ping"])
    status, rotated, _ = api_call(stack, "POST", f"/v1/webhooks/{hook_id}/rotate",
                                  {"grace_seconds": 8}, user)
    assert status == 200, rotated
    new = rotated["secret"]
    ping(stack, user, hook_id)
    during = rx.wait_for(path, count=1, timeout=60)[0]
    verified(old, during)
    verified(new, during)
    time.sleep(9)
    ping(stack, user, hook_id)
    after = rx.wait_for(path, count=2, timeout=60)[1]
    verified(new, after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, dict(after.headers))


def test_a_receiver_that_hangs_past_the_timeout_loses_nothing(stack, user, callback_receiver,
                                                             hooks):
    """The local stack gives an attempt 3 s: a receiver that holds the first two requests
    for 8 s gets the event again, same webhook-id, and the log shows the timeouts."""
    rx = callback_receiver
    path = rx.new_path("hang")
    hook_id, secret = hooks(rx.url(path), ["ping"])
    rx.hang_first(path, 2, 8)
    event_id = ping(stack, user, hook_id)
    hits = rx.wait_for(path, count=3, timeout=90)
    assert {h.headers["webhook-id"] for h in hits} == {event_id}
    verified(secret, hits[2])
    seq = hits[0].json()["seq"]

    def log():
        status, one, _ = api_call(stack, "GET", f"/v1/webhooks/{hook_id}/deliveries/{seq}",
                                  user=user)
        return status == 200 and any(a["http_status"] == 200 for a in one["attempts"]) and one
    one = wait_until(log, what="a delivered attempt in the log")
    timeouts = [a for a in one["attempts"] if a["http_status"] is None]
    assert len(timeouts) >= 2 and all("no response" in a["error"] for a in timeouts), one
