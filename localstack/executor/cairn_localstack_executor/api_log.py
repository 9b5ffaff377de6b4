"""Records every AWS API call a Cairn function makes, for the IAM check.

LocalStack's free edition does not enforce IAM, so a missing permission would only
show on AWS. The executor gives each function process its own access key id
(`CAIRNFN<function name>`, see executor.py); this hook adds a request handler to
LocalStack's gateway that appends one JSON line per call to
`$CAIRN_STATE/api-calls.jsonl`: the caller's key, service, operation, the main
resource parameters and the answer's status. `tests/iam/check.py` compares that log
with each function's deployed role policy.

`CAIRN_API_CALL_LOG=0` in LocalStack's environment turns it off.
"""

import json
import os
import threading
from pathlib import Path

from localstack.runtime import hooks

KEY_PREFIX = "CAIRNFN"
_LOCK = threading.Lock()
# Request parameters that name the resource a call acts on (strings only: bodies and
# DynamoDB key maps are skipped).
_RESOURCE_PARAMS = ("TableName", "QueueUrl", "Bucket", "Key", "CopySource", "SecretId", "Name",
                    "FunctionName", "KeyId", "LogGroupName")


def log_path() -> Path:
    # The executor module imports LocalStack's Lambda service: loaded when first used.
    from cairn_localstack_executor.executor import state_dir

    return state_dir() / "api-calls.jsonl"


def _caller(ctx) -> str | None:
    args = ctx.request.args
    # Presigned URLs carry the key in the query (the Authorization header LocalStack
    # injects for them names no one).
    if "X-Amz-Credential" in args:
        return args["X-Amz-Credential"].split("/", 1)[0]
    if "AWSAccessKeyId" in args:
        return args["AWSAccessKeyId"]
    from localstack.utils.aws.request_context import extract_access_key_id_from_auth_header

    return extract_access_key_id_from_auth_header(ctx.request.headers)


def _function_key(internal) -> str | None:
    """The key of the function an internal call is made for: LocalStack's event source
    mappings poll a queue (and Lambda sends to a dead-letter queue) with the function's
    role, naming the function as the source (as AWS does)."""
    if not internal or internal.get("service_principal") != "lambda":
        return None
    source = str(internal.get("source_arn") or "")
    parts = source.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        return None
    from cairn_localstack_executor.executor import function_access_key

    return function_access_key(parts[6])


def _capture(chain, ctx, response):
    """Request phase, after parsing and before the provider runs (DynamoDB's provider
    rewrites the Authorization header in place)."""
    try:
        if not ctx.service or not ctx.operation:
            return
        internal = ctx.internal_request_params
        key = _caller(ctx)
        if not key or not key.startswith(KEY_PREFIX):
            key = _function_key(internal)
        if not key:
            return
        request = ctx.service_request if isinstance(ctx.service_request, dict) else {}
        resource = {k: request[k] for k in _RESOURCE_PARAMS if isinstance(request.get(k), str)}
        if isinstance(request.get("RequestItems"), dict):
            resource["TableNames"] = sorted(request["RequestItems"])
        if isinstance(request.get("TransactItems"), list):
            resource["TransactItems"] = [
                [op, (item or {}).get("TableName")]
                for entry in request["TransactItems"] if isinstance(entry, dict)
                for op, item in entry.items()
            ]
        ctx.cairn_call = {
            "key": key,
            "service": ctx.service.service_name,
            "signing_name": ctx.service.signing_name,
            "operation": ctx.operation.name,
            "resource": resource,
            # Calls LocalStack makes for the function (event source mappings polling
            # its queue with its role) are the function's permissions on AWS too.
            "internal": dict(internal) if internal is not None else None,
        }
    except Exception:  # never let the log break a request
        return


def _write(chain, ctx, response):
    try:
        record = ctx.get("cairn_call")
        if record is None:
            return
        record["status"] = response.status_code
        if ctx.service_exception is not None:
            record["error"] = ctx.service_exception.code
        line = json.dumps(record, default=str) + "\n"
        with _LOCK, open(log_path(), "a") as out:
            out.write(line)
    except Exception:
        return


@hooks.on_infra_start(should_load=lambda: os.environ.get("CAIRN_API_CALL_LOG", "1") != "0")
def cairn_api_call_log():
    from localstack.aws import handlers

    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")  # state is fresh on every start: so is the log
    handlers.serve_custom_service_request_handlers.append(_capture)
    handlers.run_custom_response_handlers.append(_write)
