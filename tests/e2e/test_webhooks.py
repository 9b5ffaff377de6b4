"""Webhook subscriptions (docs/events.md, "Webhooks") against the deployed stack: the
secret is shown once and is a Standard Webhooks secret; a subscription is its owner's;
URLs to private, loopback and link-local addresses, other schemes and URLs with
credentials are refused with 400 and nothing is stored; management needs credentials."""

from conftest import api_call


def hooks_of(stack, user) -> list:
    status, body, _ = api_call(stack, "GET", "/v1/webhooks", user=user)
    assert status == 200, body
    return body["webhooks"]


def test_a_subscription_is_its_owners_and_its_secret_is_shown_once(stack, user, rws_user):
    status, created, _ = api_call(stack, "POST", "/v1/webhooks", {
        "url": "http://127.0.0.1:18419/hooks/ci", "events": ["package.*"],
        "subjects": ["repository:release/3.0/*"], "description": "CI"}, user)
    assert status == 201, created
    hook_id, secret = created["id"], created["secret"]
    assert secret.startswith("whsec_")
    from standardwebhooks.webhooks import Webhook  # the receiver's library parses it
    Webhook(secret)
    try:
        assert hook_id in [h["id"] for h in hooks_of(stack, user)]
        status, shown, _ = api_call(stack, "GET", f"/v1/webhooks/{hook_id}", user=user)
        assert status == 200 and "whsec_" not in str(shown), shown
        # Another account does not see it, cannot change it.
        assert hook_id not in [h["id"] for h in hooks_of(stack, rws_user)]
        for method, path, body in [("GET", f"/v1/webhooks/{hook_id}", None),
                                   ("PATCH", f"/v1/webhooks/{hook_id}", {"enabled": False}),
                                   ("POST", f"/v1/webhooks/{hook_id}/rotate", None),
                                   ("DELETE", f"/v1/webhooks/{hook_id}", None)]:
            status, problem, _ = api_call(stack, method, path, body, rws_user)
            assert status == 404, (method, path, problem)
        status, rotated, _ = api_call(stack, "POST", f"/v1/webhooks/{hook_id}/rotate",
                                      {"grace_seconds": 60}, user)
        assert status == 200 and rotated["secret"] != secret, rotated
        assert len(rotated["secrets"]) == 2 and rotated["secrets"][1]["expires_at"], rotated
        status, changed, _ = api_call(stack, "PATCH", f"/v1/webhooks/{hook_id}",
                                      {"events": ["repository.published"]}, user)
        assert status == 200 and changed["events"] == ["repository.published"], changed
    finally:
        status, _, _ = api_call(stack, "DELETE", f"/v1/webhooks/{hook_id}", user=user)
        assert status == 204
    assert hook_id not in [h["id"] for h in hooks_of(stack, user)]


def test_hostile_urls_and_anonymous_calls_are_refused_and_store_nothing(stack, user):
    before = hooks_of(stack, user)
    for url in ["http://127.0.0.1:8080/", "http://localhost:8080/hooks",
                "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook",
                "http://192.168.1.1/hook", "http://[::1]/hook", "http://[fd00::1]/hook",
                "http://0x7f000001/hook", "http://2130706433/hook", "http://100.64.0.1/hook",
                "ftp://127.0.0.1/hook", "file:///etc/passwd", "gopher://example.org/",
                "http://user:pw@127.0.0.1:18419/hooks", "https://user@example.org/hook",
                "http://127.0.0.1:18420/hooks"]:
        status, problem, _ = api_call(stack, "POST", "/v1/webhooks",
                                      {"url": url, "events": ["*"]}, user)
        assert status == 400, (url, problem)
        assert "refused" in problem["detail"], (url, problem)
    status, problem, _ = api_call(stack, "POST", "/v1/webhooks",
                                  {"url": "http://127.0.0.1:18419/hooks", "events": ["*"]})
    assert status == 401, problem
    status, problem, _ = api_call(stack, "GET", "/v1/webhooks")
    assert status == 401, problem
    assert hooks_of(stack, user) == before
