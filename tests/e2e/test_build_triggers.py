"""What starts builds besides the API, and the live log (docs/builds.md, "Triggers" and
"The live log"), against the deployed stack: a new archive of a name starts the build
of the project that listens to it, once, with the archive's tag as a parameter; a due
schedule starts one build however many times the controller looks at it; a step's
output arrives on the event stream while the step runs."""

import base64
import json
import os
import subprocess
import time
import urllib.request

from conftest import api_call, archive_done, cairn_cli
from debs import run_id
from test_builds import ops, put_project, read_log, wait_build, workers  # noqa: F401
from test_webhook_delivery import wait_until

LOCALSTACK_AWS = os.path.expanduser("~/.cache/cairn/localstack-venv/bin/aws")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://localhost:4566"}


def builds_of(stack, user, project):
    status, body, _ = api_call(stack, "GET", f"/v1/builds?project={project}", user=user)
    assert status == 200, body
    return body["builds"]


def cancel_all(stack, user, project):
    for b in builds_of(stack, user, project):
        if b["state"] in ("queued", "running"):
            api_call(stack, "POST", f"/v1/builds/{b['id']}/cancel", {}, user)


def test_a_new_archive_of_a_name_starts_the_build_that_listens_to_it_once(
        stack, user, workers, git_origin):  # noqa: F811
    project, name = f"on-archive-{run_id()}", f"trig-{run_id()}"
    text = f"""\
parameters:
  ref: none
triggers:
  - event: archive.created
    archive: {name}
    parameters: {{ref: '${{event.tag}}'}}
pipelines:
  - name: p
    actions:
      - action: shell
        script: echo "built $ref"
"""
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-trig")
    _, url = git_origin.make_origin(name, {"README": "triggered\n"})
    status, archived = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200 and archived["created"], archived
    started = wait_until(lambda: builds_of(stack, user, project) or None, timeout=120,
                         what="the triggered build")
    assert len(started) == 1, started
    build = wait_build(stack, user, started[0]["id"])
    assert build["state"] == "succeeded", json.dumps(build, indent=1)
    assert build["trigger"]["kind"] == "event", build["trigger"]
    assert build["parameters"]["ref"] == archived["tag"]
    log, _, _ = read_log(stack, user, build["id"], 0)
    assert log == f"built {archived['tag']}\n".encode(), log
    # The same tree again is no new archive; another name is not this project's.
    status, again = archive_done(stack, user, {"name": name, "url": url, "ref": "main"})
    assert status == 200 and not again["created"], again
    other = f"{name}-other"
    _, other_url = git_origin.make_origin(other, {"README": "other\n"})
    assert archive_done(stack, user, {"name": other, "url": other_url, "ref": "main"})[0] == 200
    time.sleep(20)  # the dispatcher and the controller run within seconds
    assert len(builds_of(stack, user, project)) == 1


def invoke_schedules(tmp_path):
    """Invokes the build controller as its minute rule does: the builds it started."""
    out = subprocess.run(
        [LOCALSTACK_AWS, "cloudformation", "describe-stack-resource",
         "--stack-name", os.environ.get("CAIRN_STACK", "cairn"),
         "--logical-resource-id", "BuildController", "--output", "json"],
        env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    name = json.loads(out.stdout)["StackResourceDetail"]["PhysicalResourceId"]
    answer = tmp_path / f"answer-{run_id()}.json"
    done = subprocess.run(
        [LOCALSTACK_AWS, "lambda", "invoke", "--function-name", name,
         "--payload", '{"schedules": true}',
         "--output", "json", str(answer)],
        env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    assert "FunctionError" not in json.loads(done.stdout), answer.read_text()
    return json.loads(answer.read_text())["started"]


def test_a_due_schedule_starts_one_build_however_often_it_is_looked_at(
        stack, user, tmp_path):
    project = f"nightly-{run_id()}"
    text = """\
parameters:
  channel: stable
triggers:
  - schedule: '* * * * *'
    parameters: {channel: nightly}
pipelines:
  - name: p
    actions:
      - action: shell
        labels: [nobody-has-this]
        script: echo "$channel"
"""
    assert put_project(stack, user, project, text)[0] == 201
    due = (int(time.time()) // 60 + 1) * 60
    time.sleep(max(0, due - time.time()) + 1)
    try:
        # The rule may have looked already; however many looks, one build for the minute.
        for _ in range(3):
            invoke_schedules(tmp_path)
        builds = [b for b in builds_of(stack, user, project)
                  if b["trigger"]["by"] == f"* * * * * at {due}"]
        assert len(builds) == 1, builds
        assert builds[0]["trigger"]["kind"] == "schedule"
        assert builds[0]["parameters"]["channel"] == "nightly"
    finally:
        # No schedule, no more builds; the one waiting for a worker is cancelled.
        assert put_project(stack, user, project, text.split("triggers:")[0]
                           + "pipelines:" + text.split("pipelines:")[1])[0] == 200
        cancel_all(stack, user, project)


def follow(stack, user, query, after, seconds):
    """One long-poll of the event stream: (events, cursor)."""
    req = urllib.request.Request(f"{stack.api}/v1/events?{query}")
    req.add_header("accept", "text/event-stream")
    req.add_header("last-event-id", str(after))
    req.add_header("authorization", "Basic " + base64.b64encode(
        f"{user[0]}:{user[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=seconds) as r:
        body = r.read().decode()
    events, cursor = [], after
    for block in body.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("id: "):
                cursor = int(line[4:])
            elif line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events, cursor


def test_a_step_s_output_is_live_on_the_event_stream(stack, user, workers):  # noqa: F811
    other = ("e2e-other-" + os.urandom(3).hex(), os.urandom(8).hex())
    cairn_cli("user", "add", other[0], "--table", stack.table, stdin=other[1].encode())
    project = f"live-{run_id()}"
    text = """\
pipelines:
  - name: p
    actions:
      - action: shell
        script: for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i"; sleep 2; done
"""
    assert put_project(stack, user, project, text)[0] == 201
    status, head, _ = api_call(stack, "GET", f"/v1/events?subject=build:{project}&last=1",
                               user=user)
    assert status == 200, head
    cursor = int(head["next"])
    workers.start("w-live")
    status, body, _ = api_call(stack, "POST", f"/v1/projects/{project}/builds", {}, user)
    assert status == 201, body
    build_id, seen = body["id"], ""
    deadline = time.time() + 120
    while "line 2" not in seen and time.time() < deadline:
        events, cursor = follow(stack, user, f"subject=build:{project}&types=log.appended",
                                cursor, 60)
        for e in events:
            assert e["type"] == "log.appended" and e["data"]["build"] == build_id, e
            seen += e["data"]["text"]
    assert "line 1\nline 2\n" in seen, seen
    status, now, _ = api_call(stack, "GET", f"/v1/builds/{build_id}", user=user)
    assert now["steps"][0]["state"] == "running", "heard while the step still runs"
    done = wait_build(stack, user, build_id)
    assert done["state"] == "succeeded", done
    # Another account does not hear this project's log, nor does an anonymous reader.
    status, theirs, _ = api_call(stack, "GET", f"/v1/events?subject=build:{project}&last=100",
                                 user=other)
    assert status == 200 and theirs["events"] == [], theirs
    status, _, _ = api_call(stack, "GET", f"/v1/events?subject=build:{project}&last=100")
    assert status == 401
