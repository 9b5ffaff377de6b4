"""plux entry point: `LAMBDA_RUNTIME_EXECUTOR=cairn-process` selects this executor."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "cairn-process"

    def load(self, *args, **kwargs):
        # Imported lazily, like LocalStack's own docker plugin, so that listing plugins stays cheap.
        from cairn_localstack_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor
