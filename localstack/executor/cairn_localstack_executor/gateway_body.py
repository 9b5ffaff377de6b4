"""Lets LocalStack's API Gateway pass a multipart body without a boundary through.

API Gateway hands a REST API's body to the Lambda proxy integration as it came.
LocalStack 4.13.1 instead re-encodes `multipart/form-data` bodies
(`rolo.request.restore_payload`, which install.sh patches to do so for every method,
not only POST), and on a `Content-Type: multipart/form-data` without `boundary=` that
function raises IndexError: the gateway answered 500 before any Cairn function ran
(found by schemathesis, tests/e2e/test_fuzz.py, on every route). With this hook such a
body reaches the function as sent, and the function refuses it. Bodies with a boundary
keep LocalStack's own handling.
"""

from localstack.runtime import hooks


@hooks.on_infra_start()
def cairn_gateway_body_without_boundary():
    from localstack.services.apigateway.next_gen.execute_api.handlers import parse

    original = parse.restore_payload

    def restore_payload(request):
        if request.mimetype == "multipart/form-data" and "boundary" not in request.mimetype_params:
            return request.get_data(parse_form_data=False)
        return original(request)

    parse.restore_payload = restore_payload
