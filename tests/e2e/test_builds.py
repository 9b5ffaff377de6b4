"""Builds (docs/builds.md) against the deployed stack with real `cairn worker` processes:
a project file with a mistake is refused with its line; a build archives a git ref
from an allow-listed origin, makes a .deb of it on a worker with dpkg-deb, publishes it, a webhook receiver hears build.finished and
repository.published, and a real apt-get installs the package; a failing command stops
the build with its exit code and stderr; a cancelled build's action is killed; a worker
killed mid-action loses its job to another worker; a job's token ends with its job; a
50 MB log is stored whole and readable while its step runs; an adjust step's tree is
archived beside the original (only by its job's own token), and stock git clones both. The local stack gives a
worker 6 s without a heartbeat (BuildLeaseSeconds)."""

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from conftest import ROOT, api_call, archive_info, cairn_cli
from debs import run_id
from gitorigin import EXEC, SYMLINK, git, git_env, parse_ls_tree
from test_webhook_delivery import hooks, verified, wait_until  # noqa: F401 (fixture)

CLI = str(ROOT / "target/release/cairn")
REPO = "release/2.11/ubuntu/noble"


@pytest.fixture(scope="module")
def ops(stack):
    """An administrator, and a token of its with the worker scope."""
    name, password = "e2e-ops", base64.b16encode(os.urandom(8)).decode()
    cairn_cli("user", "add", name, "--table", stack.table, "--role", "admin",
              stdin=password.encode())
    status, body, _ = api_call(stack, "POST", "/v1/tokens",
                               {"scopes": ["worker"], "description": "e2e workers"},
                               (name, password))
    assert status == 201, body
    return (name, password), body["token"]


class Workers:
    """`cairn worker` processes, each in a process group of its own (so killing one
    kills it, not the test)."""

    def __init__(self, stack, token, tmp_path):
        self.stack, self.token, self.tmp = stack, token, tmp_path
        self.procs = {}

    def start(self, name, *labels):
        env = {k: v for k, v in os.environ.items() if k != "CAIRN_CONFIG"}
        env.update(CAIRN_API_URL=self.stack.api, CAIRN_TOKEN=self.token)
        args = [CLI, "worker", "--name", name, "--workdir", str(self.tmp / name)]
        for label in labels:
            args += ["--label", label]
        log = open(self.tmp / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(args, env=env, stdout=log, stderr=log,
                                            start_new_session=True)
        return self.procs[name]

    def kill(self, name):
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def log(self, name):
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self):
        for proc in self.procs.values():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()


@pytest.fixture
def workers(stack, ops, tmp_path):
    w = Workers(stack, ops[1], tmp_path)
    yield w
    w.stop()


def put_project(stack, user, name, text):
    req = urllib.request.Request(f"{stack.api}/v1/projects/{name}", data=text.encode(),
                                 method="PUT")
    req.add_header("content-type", "application/yaml")
    req.add_header("authorization", "Basic " + base64.b64encode(
        f"{user[0]}:{user[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start(stack, user, project, **parameters):
    status, body, _ = api_call(stack, "POST", f"/v1/projects/{project}/builds",
                               {"parameters": parameters}, user)
    assert status == 201, body
    return body["id"]


def build(stack, user, build_id):
    status, body, _ = api_call(stack, "GET", f"/v1/builds/{build_id}", user=user)
    assert status == 200, body
    return body


def wait_build(stack, user, build_id, states=("succeeded", "failed", "cancelled"), timeout=180):
    return wait_until(lambda: (lambda b: b if b["state"] in states else None)(
        build(stack, user, build_id)), timeout=timeout, what=f"build {build_id} {states}")


def read_log(stack, user, build_id, step, offset=0):
    req = urllib.request.Request(
        f"{stack.api}/v1/builds/{build_id}/log?step={step}&offset={offset}")
    req.add_header("authorization", "Basic " + base64.b64encode(
        f"{user[0]}:{user[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return (r.read(), int(r.headers["cairn-log-next-offset"]),
                r.headers["cairn-log-complete"] == "true")


def test_a_project_file_with_a_mistake_is_refused_with_its_line(stack, user, tmp_path):
    bad = "pipelines:\n  - name: p\n    actions:\n      - action: shell\n        script: x\n" \
          "      - action: compile\n"
    status, body = put_project(stack, user, f"bad-{run_id()}", bad)
    assert status == 400 and body["line"] == 6, body
    assert 'unknown action "compile"' in body["detail"], body
    loop = "pipelines:\n  - name: a\n    actions:\n      - action: pipeline\n" \
           "        pipeline: b\n  - name: b\n    actions:\n      - action: pipeline\n" \
           "        pipeline: a\n"
    status, body = put_project(stack, user, f"bad-{run_id()}", loop)
    assert status == 400 and "loop: a -> b -> a" in body["detail"], body
    status, body = put_project(stack, user, "Bad%20Name", bad.replace("compile", "shell"))
    assert status == 400, body
    # The CLI shows the line before it sends anything.
    path = tmp_path / "project.yaml"
    path.write_text("project: x\n" + bad)
    out = subprocess.run([CLI, "apply", str(path)], capture_output=True,
                         env=dict(os.environ, CAIRN_API_URL=stack.api, CAIRN_TOKEN="cairn_x"))
    assert out.returncode == 1 and b"line 7" in out.stderr, out


DEB_PROJECT = """\
parameters:
  package: NAME
  version: "1.0"
  repo: REPO
  origin: ORIGIN
pipelines:
  - name: build
    actions:
      - action: archive
        origin: ${origin}
        ref: v${version}
        name: ${package}
      - action: shell
        name: dpkg-deb
        labels: [dpkg]
        script: |
          mkdir -p pkg/DEBIAN pkg/usr/share/$package out
          cp src/greeting.txt pkg/usr/share/$package/greeting.txt
          echo "built by cairn build $CAIRN_BUILD" > pkg/usr/share/$package/README
          printf 'Package: %s\\nVersion: %s\\nArchitecture: all\\nMaintainer: e2e <e2e@example.org>\\nDescription: built by a Cairn build\\n' "$package" "$version" > pkg/DEBIAN/control
          dpkg-deb --build --root-owner-group pkg "out/${package}_${version}_all.deb"
          echo built >&2
  - name: ship
    actions:
      - action: publish
        repository: ${repo}
        files: [out/*.deb]
"""


def apt_install(apt, package):
    """apt-get install into a root of its own: dpkg --root, apt's status is that root's."""
    root = apt.root / "root"
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"]:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    return apt.run("apt-get", "install", "-y", "--no-install-recommends",
                   f"-oDir::State::status={root}/var/lib/dpkg/status",
                   f"-oDPkg::Options::=--root={root}", "-oDPkg::Options::=--force-not-root",
                   f"-oDPkg::Options::=--log={apt.root}/dpkg.log", "-oDPkg::Use-Pty=0",
                   "-oDPkg::Chroot-Directory=/", package)


def test_a_build_archives_makes_a_deb_on_a_worker_publishes_it_and_apt_installs_it(
        stack, user, workers, git_origin, callback_receiver, hooks, apt_for):  # noqa: F811
    rx = callback_receiver
    project, package = f"hello-{run_id()}", f"cairn-built-{run_id()}"
    greeting = f"hello from {package}\n"
    _, origin = git_origin.make_origin(package, {"greeting.txt": greeting})
    git_origin.tag(package, "v1.0")
    path = rx.new_path("builds")
    _, secret = hooks(rx.url(path), ["build.*", "repository.published"],
                      [f"build:{project}", f"repository:{REPO}"])
    text = DEB_PROJECT.replace("NAME", package).replace("REPO", REPO).replace("ORIGIN", origin)
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-deb", "dpkg", "arch=amd64")
    build_id = start(stack, user, project)
    done = wait_build(stack, user, build_id)
    assert done["state"] == "succeeded", json.dumps(done, indent=1)
    archived, shell, publish = done["steps"]
    # Provenance: the archived tree's tag and SWHID, the build, the worker.
    tree = git_origin.tree_of(package, "v1.0")
    assert archived["outputs"]["swhid"] == f"swh:1:dir:{tree}", archived
    assert archived["outputs"]["tag"].startswith("cairn-") and archived["worker"] == "w-deb"
    assert archived["outputs"]["origin"]["ref"] == "v1.0"
    assert (shell["exit_code"], shell["worker"], shell["state"]) == (0, "w-deb", "succeeded")
    assert publish["outputs"]["published"] == [f"out/{package}_1.0_all.deb"]
    assert publish["outputs"]["repository"] == REPO
    log, _, complete = read_log(stack, user, build_id, 1)
    assert complete and b"dpkg-deb: building package" in log and b"built" in log, log
    # The webhook receiver hears the build's events and the publication of its package.
    def heard():
        kinds = {}
        for hit in rx.requests(path):
            event = hit.json()
            kinds.setdefault(event["type"], []).append((hit, event))
        published = [e for _, e in kinds.get("repository.published", [])
                     if f"{package}_1.0_all.deb" in " ".join(e["data"]["added"])]
        return (kinds, published) if "build.finished" in kinds and published else None
    kinds, _ = wait_until(heard, timeout=120, what="build.finished and repository.published")
    hit, finished = kinds["build.finished"][0]
    assert verified(secret, hit)["data"]["build"] == build_id
    assert finished["data"]["state"] == "succeeded"
    assert "build.started" in kinds and len(kinds["build.action.finished"]) == 3
    # A real apt-get installs what the build made.
    apt = apt_for(REPO, name=package)
    apt.update()
    apt_install(apt, package)
    readme = apt.root / f"root/usr/share/{package}/README"
    assert readme.read_text().strip() == f"built by cairn build {build_id}"
    installed = apt.root / f"root/usr/share/{package}/greeting.txt"
    assert installed.read_text() == greeting, "the archived tree is what was built"


ADJUST_PROJECT = """\
pipelines:
  - name: adjust
    actions:
      - action: archive
        origin: ORIGIN
        ref: v1.0
        name: NAME
      - action: shell
        script: |
          echo adjusted > src/ADJUSTED
          sed -i 's/hello/HELLO/' src/greeting.txt
      - action: archive
        from: src
        name: NAME
"""


def test_an_adjust_step_s_tree_is_archived_beside_the_original(
        stack, user, ops, workers, git_origin, tmp_path):
    project, name = f"adjust-{run_id()}", f"adjusted-{run_id()}"
    files = {"greeting.txt": "hello\n", "bin/run.sh": (EXEC, b"#!/bin/sh\necho run\n"),
             "link": (SYMLINK, b"greeting.txt")}
    _, origin = git_origin.make_origin(name, files)
    git_origin.tag(name, "v1.0")
    text = ADJUST_PROJECT.replace("NAME", name).replace("ORIGIN", origin)
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-adjust")
    build_id = start(stack, user, project)
    done = wait_build(stack, user, build_id)
    assert done["state"] == "succeeded", json.dumps(done, indent=1)
    original, _, adjusted = done["steps"]
    before, after = original["outputs"], adjusted["outputs"]
    assert after["tag"].startswith("cairn-") and after["tag"] != before["tag"]
    assert after["created"] is True
    assert after["origin"]["build"] == {
        "project": project, "build": build_id, "job": adjusted["job"], "step": 2,
        "adjusted_from": before["tag"]}, after
    # Both trees are in the name's repository: stock git clones each by its tag.
    status, info = archive_info(stack, user, name)
    assert status == 200, info
    env = git_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    trees = {}
    for which, tag in (("original", before["tag"]), ("adjusted", after["tag"])):
        dest = tmp_path / which
        git("clone", "-q", "--branch", tag, "--single-branch", "--no-tags",
            info["url"]["readonly"], str(dest), env=env)
        listing = parse_ls_tree(git("ls-tree", "-r", "-z", "HEAD", cwd=dest, env=env).stdout)
        trees[which] = {
            path: (mode, os.readlink(dest / path).encode() if mode == SYMLINK
                   else (dest / path).read_bytes())
            for mode, _, _, path in listing}
    assert trees["original"]["greeting.txt"][1] == b"hello\n"
    assert trees["adjusted"]["greeting.txt"][1] == b"HELLO\n"
    assert trees["adjusted"]["ADJUSTED"][1] == b"adjusted\n"
    assert trees["adjusted"]["bin/run.sh"][0] == EXEC, "the executable bit survives"
    assert trees["adjusted"]["link"] == (SYMLINK, b"greeting.txt"), "the link stays a link"
    # The same adjustment again: the same tree, so the same tag, nothing new.
    again = wait_build(stack, user, start(stack, user, project))
    assert again["state"] == "succeeded", json.dumps(again, indent=1)
    assert again["steps"][2]["outputs"]["tag"] == after["tag"]
    assert again["steps"][2]["outputs"]["created"] is False
    # Only the job's own token archives a workspace, while its job runs: the owner's
    # password is refused for the ended job, the worker credential lacks the scope.
    body = {"build": build_id, "job": adjusted["job"], "sha256": "0" * 64}
    path = f"/v1/archives/{name}/workspace"
    status, problem, _ = api_call(stack, "POST", path, body, user)
    assert status == 403 and "own token" in problem["detail"], problem
    status, problem, _ = api_call(stack, "POST", path, body, ("worker", ops[1]))
    assert status == 403 and "archive" in problem["detail"], problem
    status, problem, _ = api_call(stack, "POST", path, dict(body, sha256="nope"), user)
    assert status == 400 and "sha256" in problem["detail"], problem


def test_a_failing_command_stops_the_build_with_its_exit_code_and_stderr(
        stack, user, workers):
    project = f"fails-{run_id()}"
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            "        script: |\n          echo to stdout\n          echo broken >&2\n"
            "          exit 7\n      - action: shell\n        script: echo never\n")
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-fail")
    done = wait_build(stack, user, start(stack, user, project))
    assert done["state"] == "failed" and done["error"] == "step 1 (shell) exited 7", done
    assert done["steps"][0]["exit_code"] == 7
    assert done["steps"][0]["stderr_tail"].strip() == "broken"
    assert done["steps"][1]["state"] == "skipped"
    assert done["steps"][0]["attempts"] == 1, "a failing command is never retried"


def test_a_cancelled_build_kills_its_running_action(stack, user, workers, tmp_path):
    project = f"cancel-{run_id()}"
    marker = tmp_path / "pid"
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            f"        script: echo $$ > {marker}; sleep 300\n")
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-cancel")
    build_id = start(stack, user, project)
    wait_until(lambda: marker.exists() and marker.read_text().strip(), timeout=60,
               what="the action to start")
    pid = int(marker.read_text())
    status, body, _ = api_call(stack, "POST", f"/v1/builds/{build_id}/cancel", user=user)
    assert status == 200 and body["state"] == "cancelled", body
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30,
               what="the cancelled action's process to be killed")
    status, body, _ = api_call(stack, "POST", f"/v1/builds/{build_id}/cancel", user=user)
    assert status == 409, body


def test_a_worker_killed_mid_action_loses_its_job_to_another(stack, user, workers, tmp_path):
    project = f"lost-{run_id()}"
    marker = tmp_path / "started"
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            f"        script: echo $CAIRN_JOB >> {marker}; sleep 8; echo finished\n")
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-doomed")
    build_id = start(stack, user, project)
    wait_until(lambda: marker.exists(), timeout=60, what="the first attempt to start")
    workers.kill("w-doomed")
    workers.start("w-heir")
    done = wait_build(stack, user, build_id, timeout=120)
    assert done["state"] == "succeeded", done
    step = done["steps"][0]
    # A poll still open for a worker of an earlier test (the API cannot tell it is gone)
    # may take the job first: unacknowledged, it returns after the lease, uncounted.
    assert (step["worker"], step["attempts"]) == ("w-heir", 2), step
    runs = marker.read_text().split()
    assert len(runs) == len(set(runs)) == 2, "ran on the killed worker, then on its heir"


def test_a_job_token_works_for_its_job_only_and_ends_with_it(stack, user, ops):
    admin, worker_token = ops
    project = f"tokens-{run_id()}"
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            "        labels: [token-test]\n        script: 'true'\n")
    assert put_project(stack, user, project, text)[0] == 201
    build_id = start(stack, user, project)

    def as_token(token, method, path, body=None):
        req = urllib.request.Request(f"{stack.api}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("authorization", f"Bearer {token}")
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, raw = as_token(worker_token, "POST", "/v1/work",
                           {"worker": "e2e-hand", "labels": ["token-test"], "wait": 10})
    assert status == 200, raw
    job = json.loads(raw)
    assert job["build"] == build_id
    base = f"/v1/builds/{build_id}/jobs/{job['job']}"
    # The worker's own credential does not report on the job; the job's token does.
    assert as_token(worker_token, "POST", f"{base}/heartbeat")[0] == 403
    assert as_token(job["token"], "POST", f"{base}/heartbeat")[0] == 200
    # The job's token is not the owner's: no projects, no builds, no uploads elsewhere.
    assert as_token(job["token"], "GET", f"/v1/projects/{project}")[0] == 404
    assert as_token(job["token"], "POST", f"/v1/projects/{project}/builds", {})[0] in (403, 404)
    assert as_token(job["token"], "POST", "/v1/tokens", {"scopes": ["builds"]})[0] == 403
    status, raw = as_token(job["token"], "POST", f"{base}/result", {"exit_code": 0})
    assert status == 200 and json.loads(raw)["state"] == "succeeded", raw
    # Ended with its job.
    assert as_token(job["token"], "POST", f"{base}/result", {"exit_code": 0})[0] == 401
    assert as_token(job["token"], "POST", f"{base}/heartbeat")[0] == 401
    # A report for a job nobody holds is refused.
    assert as_token(worker_token, "POST", f"/v1/builds/{build_id}/jobs/job_x/result",
                    {"exit_code": 0})[0] == 404


LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU\n"


def test_a_50_mb_log_is_stored_whole_and_readable_while_its_step_runs(stack, user, workers):
    project = f"biglog-{run_id()}"
    size = 50 * 1000 * 1000
    text = ("pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
            f"        script: yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
            f" | head -c {size}; sleep 15\n")
    assert put_project(stack, user, project, text)[0] == 201
    workers.start("w-log")
    build_id = start(stack, user, project)
    offset, first_complete = 0, None

    def caught_up():
        nonlocal offset
        while True:
            chunk, offset_next, complete = read_log(stack, user, build_id, 0, offset)
            at = offset % len(LINE)
            assert chunk == (LINE * (len(chunk) // len(LINE) + 2))[at:at + len(chunk)]
            offset = offset_next
            if not chunk:
                return (offset, complete) if offset >= size else None

    offset_seen, first_complete = wait_until(caught_up, timeout=240,
                                             what="the whole log while the step runs")
    assert offset_seen == size
    assert build(stack, user, build_id)["steps"][0]["state"] == "running"
    assert not first_complete, "the step still runs: the log is not complete yet"
    done = wait_build(stack, user, build_id, timeout=120)
    assert done["state"] == "succeeded", done
    _, end, complete = read_log(stack, user, build_id, 0, size)
    assert (end, complete) == (size, True)


def test_built_in_steps_run_on_the_build_step_lambda_with_the_workspace_carried(
        stack, user, workers):
    project = f"lambda-{run_id()}"
    text = ("pipelines:\n  - name: p\n    actions:\n"
            "      - action: shell\n        labels: [after-lambda]\n"
            "        script: mkdir -p d && echo made on a worker > d/a.txt\n"
            "      - action: artifact\n        runner: lambda\n        save: made\n"
            "        paths: [d]\n"
            "      - action: shell\n        labels: [after-lambda]\n"
            "        script: test \"$(cat d/a.txt)\" = 'made on a worker'\n"
            "      - action: artifact\n        runner: lambda\n        restore: not-saved\n")
    assert put_project(stack, user, project, text)[0] == 201
    # A script never runs on the shared Lambda.
    status, body = put_project(stack, user, project, text.replace(
        "artifact\n        runner: lambda\n        save: made\n        paths: [d]",
        "shell\n        runner: lambda\n        script: env"))
    assert status == 400 and "a shell step runs on a worker" in body["detail"], body
    workers.start("w-after-lambda", "after-lambda")
    done = wait_build(stack, user, start(stack, user, project))
    steps = done["steps"]
    assert [s["worker"] for s in steps] == ["w-after-lambda", "lambda", "w-after-lambda",
                                            "lambda"], steps
    assert done["state"] == "failed", done
    assert [s["state"] for s in steps] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert "no artifact not-saved" in steps[3]["error"], steps[3]
    assert steps[1]["outputs"]["files"] == 1, steps[1]
    # The Lambda restored what the worker left, and its log says so.
    log, _, complete = read_log(stack, user, done["id"], 1)
    assert complete and b"restoring the workspace saved after step 0" in log, log
    assert b"saved made: 1 files" in log, log
    status, shown, _ = api_call(stack, "GET", f"/v1/projects/{project}/artifacts/made",
                                user=user)
    assert status == 200 and shown["build"] == done["id"], shown
