"""The executor enforcing MemorySize end to end, without a LocalStack server: a
ProcessRuntimeExecutor runs the test fixture's bootstrap (localstack/test-fixture/fn) as
LocalStack would, with a fake function version. Needs localstack-core importable:

    ~/.cache/cairn/localstack-venv/bin/python -P -m unittest discover -s localstack/executor/tests -v
"""

import json
import os
import shutil
import sys
import tempfile
import unittest
import uuid
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # these sources, not an installed copy
FIXTURE_BOOTSTRAP = HERE.parents[1] / "test-fixture" / "fn" / "bootstrap"

try:
    from localstack.aws.api.lambda_ import PackageType

    from cairn_localstack_executor.executor import ProcessRuntimeExecutor
except ImportError as e:  # plain python3 without the LocalStack venv
    ProcessRuntimeExecutor = None
    IMPORT_ERROR = e


@unittest.skipIf(ProcessRuntimeExecutor is None, "localstack-core not importable")
class ExecutorMemoryTest(unittest.TestCase):
    def setUp(self):
        self.state = Path(tempfile.mkdtemp(prefix="cairn-executor-test-"))
        self.addCleanup(shutil.rmtree, self.state, ignore_errors=True)
        os.environ["CAIRN_STATE"] = str(self.state)
        self.code = self.state / "code"
        self.code.mkdir()
        shutil.copy(FIXTURE_BOOTSTRAP, self.code / "bootstrap")
        os.chmod(self.code / "bootstrap", 0o755)

    def executor(self, memory_size, environment=None):
        code = SimpleNamespace(get_unzipped_code_location=lambda: str(self.code))
        version = SimpleNamespace(
            id=SimpleNamespace(function_name="memtest", qualifier="$LATEST"),
            config=SimpleNamespace(
                package_type=PackageType.Zip,
                environment={"FIXTURE_ROLE": "echo", **(environment or {})},
                memory_size=memory_size,
                timeout=10,
                runtime="provided.al2023",
                code=code,
            ),
        )
        ex = ProcessRuntimeExecutor(str(uuid.uuid4()), version)
        ex.start({"AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "memtest",
                  "TABLE_NAME": "unused"})
        self.addCleanup(ex.stop)
        return ex

    @staticmethod
    def invoke(ex, event):
        rid = str(uuid.uuid4())
        result = ex.invoke({
            "invoke-id": rid,
            "invoked-function-arn": "arn:aws:lambda:us-east-1:000000000000:function:memtest",
            "payload": json.dumps(event),
        })
        return rid, result, json.loads(result.payload)

    def log(self):
        return (self.state / "lambda-logs" / "memtest.log").read_text()

    def test_over_memory_size_is_killed_and_the_next_invocation_starts_afresh(self):
        ex = self.executor(128)
        first_pid = ex.proc.pid
        _, result, body = self.invoke(ex, {"alloc_mb": 48})
        self.assertFalse(result.is_error, body)
        self.assertEqual(ex.proc.pid, first_pid)

        rid, result, body = self.invoke(ex, {"alloc_mb": 320})
        self.assertTrue(result.is_error)
        self.assertEqual(body["errorType"], "Runtime.OutOfMemory")
        self.assertEqual(body["errorMessage"],
                         f"RequestId: {rid} Error: Runtime exited with error: signal: killed")
        log = self.log()
        self.assertRegex(log, r"\[cairn\] out of memory: bootstrap pid=\d+ resident \d+ MB .*> MemorySize 128 MB")
        self.assertIn(f"bootstrap pid={first_pid} ended (signal 9)", log)
        self.assertRegex(log, rf"REPORT RequestId: {rid}\t.*Memory Size: 128 MB\tMax Memory Used: \d+ MB"
                              r"\tStatus: error\tError Type: Runtime.OutOfMemory")

        _, result, body = self.invoke(ex, {"after": "oom"})
        self.assertFalse(result.is_error, body)
        self.assertTrue(body["ok"])
        self.assertNotEqual(ex.proc.pid, first_pid)

    def test_opt_out_in_the_function_environment(self):
        ex = self.executor(128, {"CAIRN_LAMBDA_ENFORCE_MEMORY": "0"})
        _, result, body = self.invoke(ex, {"alloc_mb": 320})
        self.assertFalse(result.is_error, body)
        self.assertIn("memory-limit=off", self.log())


if __name__ == "__main__":
    unittest.main()
