"""The IAM rules template.yaml keeps (issue 13, docs/operations.md "Permissions"):

- every function runs with a role of its own, declared in the template, so SAM adds
  no AWS-managed policy (AWSLambdaBasicExecutionRole and AWSLambdaSQSQueueExecutionRole
  grant on every log group and every queue of the account);
- no role has a managed policy;
- every wildcard in an Action or Resource is justified by a `# wildcard: <why>`
  comment on its line or in the comment lines right above it.

    python -m unittest discover -s tests/iam     (needs PyYAML: the SAM CLI venv has it)
"""

import pathlib
import unittest

import yaml

TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "template.yaml"


class Located(str):
    """A string that remembers the template line it was written on (0-based)."""

    line: int


class Loader(yaml.SafeLoader):
    pass


def _scalar(loader, node):
    value = Located(loader.construct_scalar(node))
    value.line = node.start_mark.line
    return value


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = _scalar(loader, node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, _scalar)
Loader.add_multi_constructor("!", _tag)


def load(text: str) -> dict:
    return yaml.load(text, Loader=Loader)


def strings(value):
    """Every string inside a value (an intrinsic function's arguments included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def justified(lines: list[str], line: int) -> bool:
    """A `# wildcard:` comment on the line, or right above it; for an item of a block
    list, right above the list's key."""
    if "# wildcard:" in lines[line]:
        return True
    above = line - 1
    if lines[line].strip().startswith("- "):
        while above >= 0 and lines[above].strip().startswith("- "):
            above -= 1
        if above >= 0 and lines[above].rstrip().endswith(":"):
            above -= 1
    while above >= 0 and lines[above].strip().startswith("#"):
        if "# wildcard:" in lines[above]:
            return True
        above -= 1
    return False


def problems(text: str) -> list[str]:
    """What the template does against the rules above, one message per fault."""
    lines = text.splitlines()
    resources = load(text)["Resources"]
    found = []
    for name, resource in resources.items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function":
            role = props.get("Role")
            target = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
            if resources.get(target, {}).get("Type") != "AWS::IAM::Role":
                found.append(f"{name}: Role must be !GetAtt <a role of this template>.Arn")
            if "Policies" in props:
                found.append(f"{name}: Policies are ignored next to a Role: put them in the role")
        if kind == "AWS::IAM::Role":
            if props.get("ManagedPolicyArns"):
                found.append(f"{name}: managed policies grant more than the function uses")
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    for field in ("Action", "Resource", "NotAction", "NotResource"):
                        for value in strings(statement.get(field, [])):
                            if "*" in value and not justified(lines, value.line):
                                found.append(f"{name}: line {value.line + 1}: wildcard in "
                                             f"{field} without a '# wildcard: <why>' comment: "
                                             f"{value}")
    return found


class TemplateIam(unittest.TestCase):
    def test_template_follows_the_rules(self):
        self.assertEqual(problems(TEMPLATE.read_text()), [])

    def test_every_function_has_a_role(self):
        resources = load(TEMPLATE.read_text())["Resources"]
        functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
        self.assertGreater(len(functions), 10)

    def test_an_unjustified_wildcard_is_found(self):
        text = ROLE.replace("  # wildcard: the objects of the bucket", "")
        self.assertEqual(len(problems(text)), 1)
        self.assertIn("line 15", problems(text)[0])

    def test_a_justified_wildcard_passes(self):
        self.assertEqual(problems(ROLE), [])

    def test_a_function_without_its_own_role_is_found(self):
        text = ROLE + "  Other:\n    Type: AWS::Serverless::Function\n    Properties:\n" \
            "      Policies: [{ DynamoDBCrudPolicy: { TableName: t } }]\n"
        self.assertEqual(len(problems(text)), 2)

    def test_a_reason_above_a_block_list_covers_its_items(self):
        text = ROLE.replace('Resource: !Sub "${Bucket.Arn}/*"  # wildcard: the objects of the bucket',
                            '# wildcard: the objects of two buckets\n                Resource:\n'
                            '                  - !Sub "${Bucket.Arn}/*"\n'
                            '                  - !Sub "${Other.Arn}/*"')
        self.assertEqual(problems(text), [])
        self.assertEqual(len(problems(text.replace("# wildcard: the", "# the"))), 2)

    def test_a_wildcard_action_needs_a_reason_too(self):
        text = ROLE.replace("Action: s3:GetObject", "Action: s3:*")
        self.assertEqual(len(problems(text)), 1)


ROLE = """Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt FnRole.Arn
  FnRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: fn
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !Sub "${Bucket.Arn}/*"  # wildcard: the objects of the bucket
"""


if __name__ == "__main__":
    unittest.main()
