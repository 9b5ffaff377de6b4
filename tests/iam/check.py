"""Checks what each function did against what its deployed role allows.

    python tests/iam/check.py [LOG]     # default: $CAIRN_STATE/api-calls.jsonl

LocalStack does not enforce IAM, so a policy that lacks an action would only fail on
AWS. The local stack logs every AWS call a function makes (localstack/README.md, "The
API call log"), including the calls LocalStack makes with the function's role (event
source mappings polling its queue). For each call this script works out the IAM
actions and resource ARNs AWS would check (a TransactWriteItems checks each item's
action, a CopyObject reads the source and writes the target, a batch send is a
SendMessage) and evaluates them against the inline policies of the function's role,
read back from LocalStack's IAM. Exit status 1 names every call the policy would
refuse; actions granted but never used are listed for information (the e2e suite
does not reach every path).

Needs boto3 (the SAM CLI's virtualenv has it) and the running local stack.
"""

from __future__ import annotations

import collections
import fnmatch
import json
import os
import pathlib
import sys
import urllib.parse

PREFIX = "CAIRNFN"

# Operations whose IAM action has another name.
RENAMED = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadBucket"): "ListBucket",
}
# The action each kind of TransactWriteItems entry needs.
TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem"}


def required(record: dict, region: str, account: str) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs AWS would authorize for one logged call."""
    service = record.get("signing_name") or record["service"]
    operation = record["operation"]
    resource = record.get("resource") or {}
    if service == "dynamodb":
        def table(name):
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        if operation == "TransactWriteItems":
            return [(f"dynamodb:{TRANSACT.get(kind, kind)}", table(name))
                    for kind, name in resource.get("TransactItems", []) if name]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [(f"dynamodb:{operation}", table(name))
                    for name in resource.get("TableNames", [])]
        return [(f"dynamodb:{operation}", table(resource.get("TableName", "")))]
    if service == "sqs":
        name = resource.get("QueueUrl", "").rstrip("/").rsplit("/", 1)[-1]
        action = RENAMED.get(("sqs", operation), operation)
        return [(f"sqs:{action}", f"arn:aws:sqs:{region}:{account}:{name}")]
    if service == "s3":
        bucket, key = resource.get("Bucket", ""), resource.get("Key")
        action = RENAMED.get(("s3", operation), operation)
        if action == "ListBucket" or key is None:
            return [(f"s3:{action}", f"arn:aws:s3:::{bucket}")]
        target = f"arn:aws:s3:::{bucket}/{key}"
        if operation == "CopyObject":
            source = urllib.parse.unquote(resource.get("CopySource", "")).lstrip("/")
            source = source.split("?versionId=", 1)[0]
            return [("s3:PutObject", target), ("s3:GetObject", f"arn:aws:s3:::{source}")]
        return [(f"s3:{action}", target)]
    if service == "secretsmanager":
        name = resource.get("SecretId") or resource.get("Name") or ""
        # A secret's ARN ends in a random six-character suffix.
        arn = name if name.startswith("arn:") else \
            f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        return [(f"secretsmanager:{operation}", arn)]
    return [(f"{service}:{operation}", "*")]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_insensitive: bool = False) -> bool:
    # IAM's wildcards: * any run of characters, ? one character (no [..] classes).
    pattern = pattern.replace("[", "[[]")
    if case_insensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def allowed(statements: list[dict], action: str, resource: str) -> bool:
    """Identity-policy evaluation without conditions: an explicit Deny wins, else any
    Allow whose Action and Resource match."""
    verdict = False
    for statement in statements:
        if "Condition" in statement or "NotAction" in statement or "NotResource" in statement:
            continue  # Cairn's policies use none of these; never count them as a grant
        if not any(_matches(a, action, True) for a in _as_list(statement.get("Action", []))):
            continue
        if not any(_matches(r, resource) for r in _as_list(statement.get("Resource", []))):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            verdict = True
    return verdict


def function_key(name: str) -> str:
    return PREFIX + "".join(c for c in name if c.isalnum())


def default_log() -> pathlib.Path:
    cache = pathlib.Path(os.environ.get("CAIRN_CACHE", pathlib.Path.home() / ".cache/cairn"))
    return pathlib.Path(os.environ.get("CAIRN_STATE", cache / "state")) / "api-calls.jsonl"


def role_statements(iam, role_name: str) -> tuple[list[dict], list[str]]:
    statements = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(urllib.parse.unquote(document))
        statements += _as_list(document.get("Statement", []))
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]]
    return statements, attached


def main() -> int:
    import boto3

    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_log()
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    lam = session.client("lambda", endpoint_url=endpoint)
    iam = session.client("iam", endpoint_url=endpoint)
    functions = {}
    for page in lam.get_paginator("list_functions").paginate():
        for config in page["Functions"]:
            functions[function_key(config["FunctionName"])] = config

    calls = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        calls[record["key"]][json.dumps(record, sort_keys=True)] += 1
    if not calls:
        print(f"iam check: no calls logged in {path} (is CAIRN_API_CALL_LOG off?)")
        return 1

    failures = 0
    for key in sorted(calls):
        config = functions.get(key)
        if config is None:
            print(f"{key}: not a deployed function (an older stack?): skipped")
            continue
        arn = config["FunctionArn"].split(":")
        region, account = arn[3], arn[4]
        statements, attached = role_statements(iam, config["Role"].rsplit("/", 1)[-1])
        used, refused = set(), collections.Counter()
        for text, count in calls[key].items():
            record = json.loads(text)
            for action, resource in required(record, region, account):
                used.add(action.lower())
                if not allowed(statements, action, resource):
                    refused[(action, resource)] += count
        granted = {a.lower() for s in statements if s.get("Effect") == "Allow"
                   for a in _as_list(s.get("Action", []))}
        name = config["FunctionName"]
        if attached:
            print(f"{name}: managed policies attached: {', '.join(attached)}")
            failures += 1
        for (action, resource), count in sorted(refused.items()):
            print(f"{name}: REFUSED on AWS: {action} on {resource} ({count} call(s))")
            failures += 1
        unused = sorted(a for a in granted - used if not a.startswith("logs:"))
        status = "ok" if not refused else "MISSING GRANTS"
        print(f"{name}: {sum(calls[key].values())} calls, {len(used)} actions: {status}"
              + (f"; granted, not seen in this run: {', '.join(unused)}" if unused else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
