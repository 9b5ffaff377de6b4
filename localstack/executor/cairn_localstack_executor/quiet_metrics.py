"""Keeps LocalStack's own metrics to the ones Cairn's alarms are tested with.

With CloudWatch enabled, LocalStack publishes a metric for every SQS SendMessage,
ReceiveMessage and DeleteMessage (NumberOfMessagesSent, ...) and two for every Lambda
invocation (Invocations, Errors), each a PutMetricData inside the one LocalStack
process that also serves every other call. The e2e suite's fifty concurrent uploads
timed out when CloudWatch was added (measured: it passed without CloudWatch, failed
with it and the queues' approximate metrics every 5 s, passed with them every 60 s and
these two publishers off; the publishers were not tried on their own). The alarms the
suite checks watch only the approximate queue metrics (ApproximateNumberOfMessagesVisible,
every SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL seconds), which stay.
`CAIRN_SQS_CALL_METRICS=1` keeps LocalStack's per-call metrics.
"""

import os

from localstack.runtime import hooks


@hooks.on_infra_start(should_load=lambda: os.environ.get("CAIRN_SQS_CALL_METRICS", "0") != "1")
def cairn_quiet_sqs_call_metrics():
    from localstack.services.sqs import provider

    provider.CloudwatchDispatcher.dispatch_sqs_metric = lambda self, *args, **kwargs: None

    from localstack.services.lambda_.invocation import metrics

    metrics.publish_lambda_metric = lambda *args, **kwargs: None
