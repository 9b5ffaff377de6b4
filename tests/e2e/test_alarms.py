"""Alarms (infra/monitoring.yaml, docs/operations.md "Alarms") on the deployed stack: a
message forced into each dead-letter queue shows in the metric its alarm watches, and
the alarm goes to ALARM. LocalStack publishes the queues' metrics once a minute
(start.sh) and evaluates an alarm once per period (60 s), so this takes up to two
minutes or so.
The queues are purged afterwards."""

import json
import os
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

from conftest import AWS_ENV, CACHE

TIMEOUT = 300


def aws(service, *args) -> dict:
    out = subprocess.run([str(CACHE / "localstack-venv/bin/aws"), service, *args,
                          "--endpoint-url", AWS_ENV["AWS_ENDPOINT_URL"], "--output", "json"],
                         env=dict(os.environ, **AWS_ENV), check=True, capture_output=True)
    return json.loads(out.stdout or b"{}")


STACK = os.environ.get("CAIRN_STACK", "cairn")


def dead_letter_queues() -> dict:
    """Role -> queue URL, from the stack's DeadLetterQueues output."""
    stack = aws("cloudformation", "describe-stacks", "--stack-name", STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    return json.loads(outputs["DeadLetterQueues"])


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def alarm_for(queue: str) -> dict:
    """The one metric alarm that watches this queue's visible messages."""
    alarms = [a for a in aws("cloudwatch", "describe-alarms")["MetricAlarms"]
              if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
              and {"Name": "QueueName", "Value": queue} in a.get("Dimensions", [])]
    assert len(alarms) == 1, f"alarms on {queue}: {[a['AlarmName'] for a in alarms]}"
    return alarms[0]


def visible_maximum(queue: str) -> float:
    now = datetime.now(timezone.utc)
    stats = aws("cloudwatch", "get-metric-statistics", "--namespace", "AWS/SQS",
                "--metric-name", "ApproximateNumberOfMessagesVisible",
                "--dimensions", f"Name=QueueName,Value={queue}",
                "--start-time", (now - timedelta(minutes=5)).isoformat(),
                "--end-time", (now + timedelta(minutes=1)).isoformat(),
                "--period", "60", "--statistics", "Maximum")
    return max((p["Maximum"] for p in stats.get("Datapoints", [])), default=0.0)


def test_every_dead_letter_queue_has_an_alarm_that_fires():
    queues = dead_letter_queues()
    assert set(queues) == {"sync", "ingest", "archive", "index", "callback", "dispatch",
                           "delivery", "build"}
    alarms = {role: alarm_for(queue_name(url)) for role, url in queues.items()}
    for role, alarm in alarms.items():
        assert alarm["Namespace"] == "AWS/SQS", role
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
        assert alarm["AlarmActions"], f"the {role} alarm notifies no one"

    try:
        for role, url in queues.items():
            args = ["send-message", "--queue-url", url,
                    "--message-body", json.dumps({"test": "forced into a dead-letter queue"})]
            if url.endswith(".fifo"):
                args += ["--message-group-id", "alarm-test",
                         "--message-deduplication-id", uuid.uuid4().hex]
            aws("sqs", *args)

        pending = dict(queues)
        seen_metric = set()
        deadline = time.monotonic() + TIMEOUT
        while pending and time.monotonic() < deadline:
            for role, url in list(pending.items()):
                name = queue_name(url)
                if role not in seen_metric and visible_maximum(name) >= 1:
                    seen_metric.add(role)
                state = aws("cloudwatch", "describe-alarms", "--alarm-names",
                            alarms[role]["AlarmName"])["MetricAlarms"][0]["StateValue"]
                if state == "ALARM":
                    seen_metric.add(role)
                    del pending[role]
            time.sleep(3)
        assert seen_metric == set(queues), \
            f"no ApproximateNumberOfMessagesVisible >= 1 for {set(queues) - seen_metric}"
        assert not pending, f"alarms not in ALARM after {TIMEOUT} s: " \
            f"{[alarms[r]['AlarmName'] for r in pending]}"
    finally:
        for url in queues.values():
            aws("sqs", "purge-queue", "--queue-url", url)


def test_function_errors_and_unpublished_changes_have_alarms():
    alarms = aws("cloudwatch", "describe-alarms")["MetricAlarms"]
    functions = {f["FunctionName"] for f in aws("lambda", "list-functions")["Functions"]
                 if f["FunctionName"].startswith(f"{STACK}-")}
    watched = {d["Value"] for a in alarms if a.get("MetricName") == "Errors"
               for d in a.get("Dimensions", []) if d["Name"] == "FunctionName"}
    assert len(functions) >= 15
    assert functions <= watched, f"functions without an Errors alarm: {functions - watched}"
    oldest = [a for a in alarms if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert len(oldest) == 1
    assert oldest[0]["Dimensions"][0]["Value"].startswith(f"{STACK}-SyncQueue")
