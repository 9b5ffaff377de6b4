"""Unit tests of tests/iam/check.py's reading of calls and policies (no stack needed).

    python -m unittest discover -s tests/iam
"""

import unittest

from check import allowed, required

REGION, ACCOUNT = "us-east-1", "000000000000"


def call(service, operation, **resource):
    return {"service": service, "signing_name": service, "operation": operation,
            "resource": resource}


class Required(unittest.TestCase):
    def test_a_transaction_checks_each_item(self):
        record = call("dynamodb", "TransactWriteItems",
                      TransactItems=[["Put", "t"], ["ConditionCheck", "t"], ["Update", "u"]])
        self.assertEqual(required(record, REGION, ACCOUNT), [
            ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:000000000000:table/t"),
            ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:000000000000:table/t"),
            ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:000000000000:table/u"),
        ])

    def test_a_copy_reads_its_source_and_writes_its_target(self):
        record = call("s3", "CopyObject", Bucket="b", Key="new/k",
                      CopySource="staging/incoming%2Fx.deb?versionId=1")
        self.assertEqual(required(record, REGION, ACCOUNT), [
            ("s3:PutObject", "arn:aws:s3:::b/new/k"),
            ("s3:GetObject", "arn:aws:s3:::staging/incoming/x.deb"),
        ])

    def test_renamed_actions(self):
        self.assertEqual(required(call("s3", "ListObjectsV2", Bucket="b"), REGION, ACCOUNT),
                         [("s3:ListBucket", "arn:aws:s3:::b")])
        self.assertEqual(required(call("s3", "HeadObject", Bucket="b", Key="k"), REGION, ACCOUNT),
                         [("s3:GetObject", "arn:aws:s3:::b/k")])
        record = call("sqs", "SendMessageBatch",
                      QueueUrl="http://localhost:4566/000000000000/q.fifo")
        self.assertEqual(required(record, REGION, ACCOUNT),
                         [("sqs:SendMessage", "arn:aws:sqs:us-east-1:000000000000:q.fifo")])

    def test_a_secret_named_without_arn_gets_a_suffix(self):
        record = call("secretsmanager", "CreateSecret", Name="cairn/s/repositories/x")
        ((action, arn),) = required(record, REGION, ACCOUNT)
        self.assertEqual(action, "secretsmanager:CreateSecret")
        self.assertTrue(arn.startswith("arn:aws:secretsmanager:us-east-1:000000000000:secret:"
                                       "cairn/s/repositories/x-"))


class Allowed(unittest.TestCase):
    STATEMENTS = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "dynamodb:GetItem",
         "Resource": ["arn:aws:dynamodb:us-east-1:000000000000:table/t"]},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/locked/*"},
    ]

    def test_allow_needs_action_and_resource(self):
        self.assertTrue(allowed(self.STATEMENTS, "s3:GetObject", "arn:aws:s3:::b/x/y"))
        self.assertFalse(allowed(self.STATEMENTS, "s3:DeleteObject", "arn:aws:s3:::b/x"))
        self.assertFalse(allowed(self.STATEMENTS, "s3:GetObject", "arn:aws:s3:::other/x"))
        self.assertFalse(allowed(self.STATEMENTS, "dynamodb:GetItem",
                                 "arn:aws:dynamodb:us-east-1:000000000000:table/t2"))

    def test_actions_ignore_case_resources_do_not(self):
        self.assertTrue(allowed(self.STATEMENTS, "S3:getobject", "arn:aws:s3:::b/x"))
        self.assertFalse(allowed(self.STATEMENTS, "s3:GetObject", "arn:aws:s3:::B/x"))

    def test_deny_wins(self):
        self.assertFalse(allowed(self.STATEMENTS, "s3:PutObject", "arn:aws:s3:::b/locked/k"))

    def test_a_bucket_grant_is_not_an_object_grant(self):
        statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"}]
        self.assertFalse(allowed(statements, "s3:GetObject", "arn:aws:s3:::b/k"))

    def test_conditions_are_never_a_grant(self):
        statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                       "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]
        self.assertFalse(allowed(statements, "s3:GetObject", "arn:aws:s3:::b/k"))


if __name__ == "__main__":
    unittest.main()
